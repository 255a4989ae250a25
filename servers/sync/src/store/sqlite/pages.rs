//! Pull pages of a SQLite file, read on blocking threads through rusqlite.
//!
//! sqlx's SQLite driver runs each connection on a worker thread and hands
//! every row to the async caller on its own, about 6 µs a row: a pull of
//! 20,000 records would spend more on the handoff than on everything else.
//! A pull page is read here instead, whole, on one of tokio's blocking
//! threads, and handed back once. The query is [`super::PULL_PAGE`], the
//! same statement the sqlx path runs for in-memory databases.
//!
//! The connections open the file the store's pools use, after the writer
//! has switched it to WAL, and refuse writes (`query_only`). At most
//! [`super::READERS`] pages are read at once; connections are opened on
//! first use and kept.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OpenFlags, params};
use tokio::sync::Semaphore;

use super::{BUSY_TIMEOUT, MMAP_BYTES, PULL_PAGE, READERS, uuid_from_db};
use crate::store::{PageBudget, RecordRow, StoreError, Uuid, cursor_from_db, record_version};

/// Blocking reader connections for pull pages.
pub(super) struct PageReader {
    /// The database file.
    path: PathBuf,
    /// Connections not reading a page now.
    idle: Mutex<Vec<Connection>>,
    /// One permit per page being read.
    permits: Arc<Semaphore>,
}

impl std::fmt::Debug for PageReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PageReader")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// The bounds of one page, as stored values (see [`crate::store::pull_bounds`]).
#[derive(Debug, Clone, Copy)]
pub(super) struct PageQuery {
    pub space: Uuid,
    pub after_cursor: i64,
    pub after_id: Uuid,
    pub upto: i64,
    pub limit: u32,
    /// The page ends after the row whose blob takes it to this many bytes.
    pub max_bytes: u64,
}

impl PageReader {
    /// Reads pages of the database file at `path` (which must exist).
    pub(super) fn new(path: &Path) -> Self {
        Self {
            path: path.to_path_buf(),
            idle: Mutex::new(Vec::new()),
            permits: Arc::new(Semaphore::new(READERS as usize)),
        }
    }

    /// Waits for the pages being read, then closes every connection; reads
    /// after this fail.
    pub(super) async fn close(&self) {
        // Every permit: no page is being read now, and none starts after.
        if let Ok(all) = self.permits.acquire_many(READERS).await {
            all.forget();
        }
        self.permits.close();
        if let Ok(mut idle) = self.idle.lock() {
            idle.clear();
        }
    }

    /// The rows of one page, in `(cursor, id)` order.
    pub(super) async fn read(
        self: &Arc<Self>,
        query: PageQuery,
    ) -> Result<Vec<RecordRow>, StoreError> {
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|_| StoreError::ReaderFailed)?;
        let this = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let conn = match this.idle.lock().ok().and_then(|mut idle| idle.pop()) {
                Some(conn) => conn,
                None => open(&this.path)?,
            };
            let page = read_page(&conn, query);
            // A connection whose read failed is dropped, not reused.
            if page.is_ok()
                && let Ok(mut idle) = this.idle.lock()
            {
                idle.push(conn);
            }
            page
        })
        .await
        .map_err(|_| StoreError::ReaderFailed)?
    }
}

/// A read-only connection to `path` with the store's read settings.
fn open(path: &Path) -> Result<Connection, StoreError> {
    // Not `SQLITE_OPEN_READ_ONLY`: a WAL reader needs to write the
    // shared-memory index. `query_only` refuses writes instead.
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "query_only", true)?;
    // `mmap_size` answers with the size it set, so it is queried, not updated.
    let _: i64 = conn.query_row(&format!("PRAGMA mmap_size = {MMAP_BYTES}"), [], |row| {
        row.get(0)
    })?;
    Ok(conn)
}

fn read_page(conn: &Connection, q: PageQuery) -> Result<Vec<RecordRow>, StoreError> {
    let mut statement = conn.prepare_cached(PULL_PAGE)?;
    let mut rows = statement.query(params![
        q.space.as_bytes().as_slice(),
        q.after_cursor,
        q.after_id.as_bytes().as_slice(),
        q.upto,
        i64::from(q.limit),
    ])?;
    let mut page = Vec::with_capacity(q.limit.min(1024) as usize);
    let mut budget = PageBudget::new(q.max_bytes);
    while budget.has_room()
        && let Some(row) = rows.next()?
    {
        let id = blob_at(row, 0)?.ok_or(StoreError::Corrupt("record without an id"))?;
        let id = uuid_from_db(id)?;
        let cursor = cursor_from_db(row.get(1)?)?;
        let blob = blob_at(row, 2)?.map(<[u8]>::to_vec);
        budget.take(blob.as_deref());
        let dek = blob_at(row, 3)?.map(<[u8]>::to_vec);
        page.push(RecordRow {
            id,
            cursor,
            version: record_version(blob, dek)?,
        });
    }
    Ok(page)
}

/// Column `i` of `row`, which the schema makes a BLOB or NULL.
fn blob_at<'r>(row: &'r rusqlite::Row<'_>, i: usize) -> Result<Option<&'r [u8]>, StoreError> {
    row.get_ref(i)?
        .as_blob_or_null()
        .map_err(|_| StoreError::Corrupt("record column is not a blob"))
}
