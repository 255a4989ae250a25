//! Statement caching for the store's fixed SQL.
//!
//! `Connection::execute` and `query_row` prepare their statement on every
//! call; preparing costs more than running for the small statements a
//! record write or merge makes (in the browser about 0.4 ms a record of a
//! cold sync went to preparation). These take the statement from the
//! connection's cache instead, keyed by the SQL text. SQLite re-prepares
//! a cached statement itself when the schema changes.

use rusqlite::{Connection, Params, Row};

/// Statements cached per connection: the store's fixed statements, the
/// sync bookkeeping ones and a few per collection, with room to spare.
pub(crate) const STATEMENT_CACHE: usize = 128;

/// `execute` and `query_row` through the statement cache.
pub(crate) trait Cached {
    /// Runs `sql` once with `params`; the number of rows changed.
    fn exec(&self, sql: &str, params: impl Params) -> rusqlite::Result<usize>;
    /// The first row of `sql` mapped by `f` (`QueryReturnedNoRows` if none).
    fn row<T>(
        &self,
        sql: &str,
        params: impl Params,
        f: impl FnOnce(&Row<'_>) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T>;
}

impl Cached for Connection {
    fn exec(&self, sql: &str, params: impl Params) -> rusqlite::Result<usize> {
        self.prepare_cached(sql)?.execute(params)
    }

    fn row<T>(
        &self,
        sql: &str,
        params: impl Params,
        f: impl FnOnce(&Row<'_>) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T> {
        self.prepare_cached(sql)?.query_row(params, f)
    }
}
