//! SQLite's `REGEXP` operator for `$regex`, with Rust's `regex` syntax
//! (linear time: no catastrophic backtracking on hostile patterns). Each
//! statement compiles its pattern once.

use std::sync::Arc;

use regex::Regex;
use rusqlite::Connection;
use rusqlite::functions::FunctionFlags;

/// Registers `regexp(pattern, value)` (what `value REGEXP pattern` calls).
pub(crate) fn register(conn: &Connection) -> rusqlite::Result<()> {
    conn.create_scalar_function(
        "regexp",
        2,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        |ctx| {
            let re: Arc<Regex> = ctx.get_or_create_aux(0, |pattern| -> Result<_, BoxError> {
                Ok(Regex::new(pattern.as_str()?)?)
            })?;
            Ok(match ctx.get_raw(1) {
                rusqlite::types::ValueRef::Text(t) => {
                    std::str::from_utf8(t).is_ok_and(|text| re.is_match(text))
                }
                // Numbers, nulls and blobs never match a pattern.
                _ => false,
            })
        },
    )
}

type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;
