//! The embedded SQLite backend (WAL mode, zero setup).
//!
//! SQLite has one writer at a time. Every write goes through `writer`, a
//! pool of exactly one connection, and opens its transaction with
//! `BEGIN IMMEDIATE`: concurrent pushes queue fairly in the pool instead of
//! upgrading read locks mid-transaction (which fails with `SQLITE_BUSY`) or
//! spinning in SQLite's busy handler. Reads go through `reader`, a few
//! connections that WAL lets run alongside the writer. Ids are stored as
//! their 16 big-endian bytes, so BLOB order is UUID order.

// Interpolated SQL here only ever splices in constant column lists.
use sqlx::AssertSqlSafe;
use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{QueryBuilder, Sqlite, Transaction};

mod invitations;
mod pages;

use pages::{PageQuery, PageReader};
use std::sync::Arc;

use super::{
    AppendOutcome, BeginOutcome, Change, Compaction, CompleteOutcome, EpochState, FileInsert,
    FileObject, FileRow, KeyOwner, MembershipEntry, NewFile, PageBudget, PushOutcome, RecipientKey,
    RecordCursor, RecordRow, SealedEpochKey, SpaceInfo, StoreError, Uuid, WrappedDek, blob_bytes,
    check_personal, check_quota, cursor_from_db, cursor_to_db, epoch_from_db, epoch_prefix,
    hash_from_db, membership_entry, pull_bounds, record_version, size_from_db, size_to_db,
    space_kind, unix_now, wrapped_from_db,
};

/// How long a statement waits for a lock held by another connection (or
/// process) before failing with `SQLITE_BUSY`.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Read connections: enough for concurrent pulls, few enough that page
/// caches stay warm.
const READERS: u32 = 4;
/// How much of the database file each connection may memory-map.
const MMAP_BYTES: u64 = 256 << 20;
/// Rows buffered between a connection's thread and the async caller (a
/// pull page is at most 500 rows).
const ROW_BUFFER: usize = 512;

/// How often the server copies committed WAL frames into the database
/// file (see [`SqliteStore::checkpoint`]).
pub const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);

/// Rows per multi-row statement: six parameters each stays far below
/// SQLite's limit of 32,766 bound parameters.
const ROWS_PER_STATEMENT: usize = 1000;

/// A SQLite database file (or a private in-memory database).
#[derive(Debug, Clone)]
pub struct SqliteStore {
    /// The single connection every write goes through.
    writer: SqlitePool,
    /// Connections for reads (the writer itself for an in-memory database).
    reader: SqlitePool,
    /// Pull pages of a database file, read on blocking threads (`None` for
    /// an in-memory database, which only the pools' connection can see).
    pages: Option<Arc<PageReader>>,
    /// Bytes a user's spaces may store.
    quota: Option<i64>,
    /// The connection WAL checkpoints run on (`None` in memory, which has
    /// no WAL).
    checkpointer: Option<SqlitePool>,
}

/// What a WAL checkpoint found and did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WalCheckpoint {
    /// Frames in the write-ahead log.
    pub frames: u64,
    /// Of those, the frames now in the database file.
    pub copied: u64,
    /// Whether the checkpoint could not start (another one was running).
    pub busy: bool,
}

/// A space row: kind, owner_user, root_did, cursor, compacted.
type SpaceRow = (String, Option<Vec<u8>>, Option<String>, i64, i64);

/// One page of a pull: `?1` space, after `(?2, ?3)` = (cursor, id), up to
/// cursor `?4`, at most `?5` rows, in `records_by_cursor` order. The page's
/// byte budget is applied while its rows are read (SQLite stops there).
pub const PULL_PAGE: &str = "SELECT id, cursor, blob, dek FROM records
     WHERE space_id = ?1
       AND (cursor, id) > (?2, ?3)
       AND cursor <= ?4
     ORDER BY cursor, id
     LIMIT ?5";

/// A record row: id, cursor, blob, dek.
type RecordTuple = (Vec<u8>, i64, Option<Vec<u8>>, Option<Vec<u8>>);

impl SqliteStore {
    /// Opens (creating if missing) the database at `url`.
    pub(crate) async fn connect(url: &str) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // With WAL, NORMAL loses at most the last commits on power loss,
            // never consistency; FULL would fsync every push.
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT)
            // Reads map the database file instead of copying every page
            // through read(2) into a per-connection cache; pages are shared
            // with the OS cache (address space, not heap).
            .pragma("mmap_size", MMAP_BYTES.to_string())
            // A whole pull page crosses from SQLite's thread to the server's
            // without the worker stalling for the reader to catch up.
            .row_buffer_size(ROW_BUFFER);

        if url.contains(":memory:") || url.contains("mode=memory") {
            // Every connection would get its own empty database: keep one,
            // forever, and use it for reads too.
            let pool = SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
                .connect_with(options)
                .await?;
            return Ok(Self {
                writer: pool.clone(),
                reader: pool,
                pages: None,
                quota: None,
                checkpointer: None,
            });
        }

        let file = options.get_filename();
        if let Some(dir) = file.parent().filter(|d| *d != Path::new("")) {
            tokio::fs::create_dir_all(dir)
                .await
                .map_err(|e| StoreError::Database(sqlx::Error::Io(e)))?;
        }
        // The writer connects first: it creates the file and switches it to WAL
        // before any reader opens it.
        // Commits never checkpoint on the writer (SQLite's default does so
        // every 1,000 WAL pages, in the commit that crosses the line, which
        // then waits for the copy and its fsync): the server runs them on a
        // connection of their own (`checkpoint`).
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone().pragma("wal_autocheckpoint", "0"))
            .await?;
        let checkpointer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await?;
        let pages = Some(Arc::new(PageReader::new(file)));
        let reader = SqlitePoolOptions::new()
            .max_connections(READERS)
            .connect_with(options)
            .await?;
        Ok(Self {
            writer,
            reader,
            pages,
            quota: None,
            checkpointer: Some(checkpointer),
        })
    }

    /// Copies the committed frames of the write-ahead log into the database
    /// file: a PASSIVE checkpoint, which waits for no reader or writer and
    /// which none waits for, copying what no open read still needs. The
    /// writer never checkpoints (`wal_autocheckpoint` is 0 on it), so the
    /// server calls this every [`CHECKPOINT_EVERY`]; with nothing new in
    /// the log it reads the log's header and returns. Once everything is
    /// copied, the next write starts the log from its beginning again.
    /// `None` for an in-memory database.
    pub(crate) async fn checkpoint(&self) -> Result<Option<WalCheckpoint>, StoreError> {
        let Some(pool) = &self.checkpointer else {
            return Ok(None);
        };
        let (busy, frames, copied): (i64, i64, i64) =
            sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
                .fetch_one(pool)
                .await?;
        Ok(Some(WalCheckpoint {
            frames: frames.max(0).unsigned_abs(),
            copied: copied.max(0).unsigned_abs(),
            busy: busy != 0,
        }))
    }

    /// See [`super::Store::close`]. The writer closes last: the last
    /// connection to a database in WAL mode copies the whole log into the
    /// database file and removes it.
    pub(crate) async fn close(&self) {
        if let Some(pages) = &self.pages {
            pages.close().await;
        }
        self.reader.close().await;
        if let Some(checkpointer) = &self.checkpointer {
            checkpointer.close().await;
        }
        self.writer.close().await;
    }

    /// See [`super::Store::has_wal`].
    pub(crate) fn has_wal(&self) -> bool {
        self.checkpointer.is_some()
    }

    /// See [`super::Store::with_quota`].
    pub(crate) fn with_quota(&self, quota: Option<i64>) -> Self {
        Self {
            quota,
            ..self.clone()
        }
    }

    /// See [`super::Store::usage`].
    pub(crate) async fn usage(&self, user: Uuid) -> Result<u64, StoreError> {
        let used: i64 =
            sqlx::query_scalar("SELECT coalesce(sum(bytes), 0) FROM spaces WHERE billed_user = ?1")
                .bind(user.as_bytes().as_slice())
                .fetch_one(&self.reader)
                .await?;
        Ok(used.max(0).unsigned_abs())
    }

    /// Applies the embedded migrations in `migrations/sqlite`.
    pub(crate) async fn migrate(&self) -> Result<(), StoreError> {
        sqlx::migrate!("./migrations/sqlite")
            .run(&self.writer)
            .await?;
        Ok(())
    }

    /// Checks both pools answer.
    pub(crate) async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.reader).await?;
        sqlx::query("SELECT 1").execute(&self.writer).await?;
        Ok(())
    }

    /// Returns `owner`'s personal space `space`, creating it on first use.
    pub(crate) async fn ensure_personal_space(
        &self,
        space: Uuid,
        owner: Uuid,
    ) -> Result<SpaceInfo, StoreError> {
        // Almost every call finds the space: read first, without the write lock.
        if let Some(info) = self.space(space).await? {
            return check_personal(info, owner);
        }
        // A concurrent first use may insert it between our read and insert:
        // ignore the conflict and read whichever row won.
        sqlx::query(
            "INSERT INTO spaces (id, kind, owner_user, billed_user) VALUES (?1, 'personal', ?2, ?2)
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(space.as_bytes().as_slice())
        .bind(owner.as_bytes().as_slice())
        .execute(&self.writer)
        .await?;
        let row = fetch_space(&self.writer, space).await?;
        check_personal(row.ok_or(StoreError::Corrupt("space vanished"))?, owner)
    }

    /// The space, if it exists.
    pub(crate) async fn space(&self, space: Uuid) -> Result<Option<SpaceInfo>, StoreError> {
        fetch_space(&self.reader, space).await
    }

    /// Writes `changes` atomically at the next space cursor, or reports
    /// every conflicting record and writes nothing.
    pub(crate) async fn push(
        &self,
        space: Uuid,
        changes: &[Change],
    ) -> Result<PushOutcome, StoreError> {
        // Take the write lock now, so the checks below stay true until COMMIT.
        // Dropping the transaction on any early return (or cancellation)
        // rolls it back before the connection is reused.
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let space_id = space.as_bytes().as_slice();

        let found: Option<(i64, Option<Vec<u8>>)> =
            sqlx::query_as("SELECT cursor, billed_user FROM spaces WHERE id = ?1")
                .bind(space_id)
                .fetch_optional(&mut *tx)
                .await?;
        let Some((prev, billed)) = found else {
            tx.rollback().await?;
            return Err(StoreError::NoSuchSpace(space));
        };
        let next = prev
            .checked_add(1)
            .ok_or(StoreError::Corrupt("space cursor at its maximum"))?;

        // Check every expectation first (the write lock keeps them true),
        // then write the whole batch: a few statements per batch, not one
        // round trip to SQLite's worker thread per record.
        let mut current: HashMap<Uuid, i64> = HashMap::with_capacity(changes.len());
        // Bytes the batch adds: new blobs less the blobs they replace.
        let mut delta = blob_bytes(changes);
        for part in changes.chunks(ROWS_PER_STATEMENT) {
            let mut query = QueryBuilder::<Sqlite>::new(
                "SELECT id, cursor, coalesce(length(blob), 0) FROM records WHERE space_id = ",
            );
            query.push_bind(space_id).push(" AND id IN (");
            let mut ids = query.separated(", ");
            for change in part {
                ids.push_bind(change.id.as_bytes().as_slice());
            }
            query.push(")");
            let rows: Vec<(Vec<u8>, i64, i64)> = query.build_query_as().fetch_all(&mut *tx).await?;
            for (id, cursor, size) in rows {
                current.insert(uuid_from_db(&id)?, cursor);
                delta = delta.saturating_sub(size);
            }
        }
        let mut conflicts = Vec::new();
        for change in changes {
            let now = current.get(&change.id).copied().unwrap_or(0);
            if cursor_to_db(change.expected_cursor) != Some(now) {
                conflicts.push(RecordCursor {
                    id: change.id,
                    cursor: cursor_from_db(now)?,
                });
            }
        }
        if !conflicts.is_empty() {
            tx.rollback().await?;
            return Ok(PushOutcome::Conflict(conflicts));
        }

        // Dropping `tx` on a refusal rolls the batch back.
        check_usage(&mut tx, self.quota, billed.as_deref(), delta).await?;

        let deleted_at = unix_now();
        for part in changes.chunks(ROWS_PER_STATEMENT) {
            let mut query = QueryBuilder::<Sqlite>::new(
                "INSERT INTO records (space_id, id, cursor, blob, dek, deleted_at) ",
            );
            query.push_values(part, |mut row, change| {
                row.push_bind(space_id)
                    .push_bind(change.id.as_bytes().as_slice())
                    .push_bind(next)
                    .push_bind(change.blob.as_ref().map(|b| b.as_slice()))
                    .push_bind(change.dek.as_ref().map(|d| d.as_bytes().as_slice()))
                    .push_bind(change.blob.is_none().then_some(deleted_at));
            });
            query.push(
                " ON CONFLICT (space_id, id) DO UPDATE SET cursor = excluded.cursor,
                   blob = excluded.blob, dek = excluded.dek, deleted_at = excluded.deleted_at",
            );
            query.build().execute(&mut *tx).await?;
        }

        let deleted: Vec<Uuid> = changes
            .iter()
            .filter(|c| c.blob.is_none())
            .map(|c| c.id)
            .collect();
        let (removed_files, freed) = remove_files_of(&mut tx, space, &deleted).await?;
        let delta = delta.saturating_sub(freed);
        sqlx::query("UPDATE spaces SET cursor = ?2, bytes = max(bytes + ?3, 0) WHERE id = ?1")
            .bind(space_id)
            .bind(next)
            .bind(delta)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(PushOutcome::Applied {
            prev: cursor_from_db(prev)?,
            cursor: cursor_from_db(next)?,
            removed_files,
        })
    }

    /// A page of `space`'s records with `since < cursor <= upto` in
    /// `(cursor, id)` order, after `after`.
    pub(crate) async fn pull_page(
        &self,
        space: Uuid,
        since: u64,
        upto: u64,
        after: Option<(u64, Uuid)>,
        limit: u32,
        max_bytes: u64,
    ) -> Result<Vec<RecordRow>, StoreError> {
        let Some(((after_cursor, after_id), upto)) = pull_bounds(since, upto, after) else {
            return Ok(Vec::new());
        };
        if let Some(pages) = &self.pages {
            return pages
                .read(PageQuery {
                    space,
                    after_cursor,
                    after_id,
                    upto,
                    limit,
                    max_bytes,
                })
                .await;
        }

        let rows: Vec<RecordTuple> = sqlx::query_as(PULL_PAGE)
            .bind(space.as_bytes().as_slice())
            .bind(after_cursor)
            .bind(after_id.as_bytes().as_slice())
            .bind(upto)
            .bind(i64::from(limit))
            .fetch_all(&self.reader)
            .await?;

        // An in-memory database (tests, development): the whole page was
        // read; the byte budget cuts it here.
        let mut budget = PageBudget::new(max_bytes);
        rows.into_iter()
            .take_while(|(_, _, blob, _)| {
                let within = budget.has_room();
                budget.take(blob.as_deref());
                within
            })
            .map(|(id, cursor, blob, dek)| {
                Ok(RecordRow {
                    id: uuid_from_db(&id)?,
                    cursor: cursor_from_db(cursor)?,
                    version: record_version(blob, dek)?,
                })
            })
            .collect()
    }
}

impl SqliteStore {
    /// See [`super::Store::compact`].
    pub(crate) async fn compact(
        &self,
        cutoff: i64,
        max_spaces: i64,
    ) -> Result<Compaction, StoreError> {
        let found: Vec<(Vec<u8>, i64)> = sqlx::query_as(
            "SELECT space_id, MAX(cursor) FROM records
             WHERE deleted_at IS NOT NULL AND deleted_at < ?1
             GROUP BY space_id LIMIT ?2",
        )
        .bind(cutoff)
        .bind(max_spaces)
        .fetch_all(&self.reader)
        .await?;
        let mut done = Compaction::default();
        for (space, upto) in found {
            done.spaces += 1;
            loop {
                let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
                sqlx::query("UPDATE spaces SET compacted = max(compacted, ?2) WHERE id = ?1")
                    .bind(&space)
                    .bind(upto)
                    .execute(&mut *tx)
                    .await?;
                let removed = sqlx::query(
                    "DELETE FROM records WHERE rowid IN (
                        SELECT rowid FROM records
                        WHERE space_id = ?1 AND cursor <= ?2 AND deleted_at IS NOT NULL
                        LIMIT ?3)",
                )
                .bind(&space)
                .bind(upto)
                .bind(super::COMPACT_BATCH)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                tx.commit().await?;
                done.tombstones += removed;
                if removed < super::COMPACT_BATCH.unsigned_abs() {
                    break;
                }
            }
        }
        Ok(done)
    }
}

/// Reads one space through `pool`.
async fn fetch_space(pool: &SqlitePool, space: Uuid) -> Result<Option<SpaceInfo>, StoreError> {
    let row: Option<SpaceRow> = sqlx::query_as(
        "SELECT kind, owner_user, root_did, cursor, compacted FROM spaces WHERE id = ?1",
    )
    .bind(space.as_bytes().as_slice())
    .fetch_optional(pool)
    .await?;
    let Some((kind, owner_user, root_did, cursor, compacted)) = row else {
        return Ok(None);
    };
    let owner_user = owner_user.as_deref().map(uuid_from_db).transpose()?;
    Ok(Some(SpaceInfo {
        id: space,
        kind: space_kind(&kind, owner_user, root_did)?,
        cursor: cursor_from_db(cursor)?,
        compacted: cursor_from_db(compacted)?,
    }))
}

/// Refuses a write adding `delta` bytes to `billed`'s spaces past `quota`.
async fn check_usage(
    tx: &mut Transaction<'static, Sqlite>,
    quota: Option<i64>,
    billed: Option<&[u8]>,
    delta: i64,
) -> Result<(), StoreError> {
    let (Some(_), Some(billed)) = (quota, billed) else {
        return Ok(());
    };
    if delta <= 0 {
        return Ok(());
    }
    let used: i64 =
        sqlx::query_scalar("SELECT coalesce(sum(bytes), 0) FROM spaces WHERE billed_user = ?1")
            .bind(billed)
            .fetch_one(&mut **tx)
            .await?;
    check_quota(quota, used, delta)
}

/// A stored 16-byte id.
fn uuid_from_db(bytes: &[u8]) -> Result<Uuid, StoreError> {
    Uuid::from_slice(bytes).map_err(|_| StoreError::Corrupt("id is not 16 bytes"))
}

/// A membership row: cursor, prev_hash, hash, ciphertext.
type MembershipTuple = (i64, Option<Vec<u8>>, Vec<u8>, Vec<u8>);

impl SqliteStore {
    /// See [`super::Store::create_space`].
    pub(crate) async fn create_space(
        &self,
        space: Uuid,
        creator: Uuid,
        root_did: &str,
        entry: &[u8],
        hash: &[u8; 32],
        key: &[u8],
    ) -> Result<Option<u64>, StoreError> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let id = space.as_bytes().as_slice();
        let inserted = sqlx::query(
            "INSERT INTO spaces (id, kind, root_did, cursor, billed_user)
             VALUES (?1, 'shared', ?2, 1, ?3)
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(id)
        .bind(root_did)
        .bind(creator.as_bytes().as_slice())
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if !inserted {
            // A retry is the same creator with the same genesis entry and key.
            let same: Option<i64> = sqlx::query_scalar(
                "SELECT 1 FROM spaces s
                 JOIN membership m ON m.space_id = s.id AND m.cursor = 1
                 JOIN sealed_keys k ON k.space_id = s.id AND k.epoch = 1 AND k.did = s.root_did
                 WHERE s.id = ?1 AND s.kind = 'shared' AND s.root_did = ?2
                   AND m.ciphertext = ?3 AND k.sealed = ?4",
            )
            .bind(id)
            .bind(root_did)
            .bind(entry)
            .bind(key)
            .fetch_optional(&mut *tx)
            .await?;
            tx.rollback().await?;
            return Ok(same.map(|_| 1));
        }
        sqlx::query(
            "INSERT INTO membership (space_id, cursor, prev_hash, hash, ciphertext)
             VALUES (?1, 1, NULL, ?2, ?3)",
        )
        .bind(id)
        .bind(hash.as_slice())
        .bind(entry)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO sealed_keys (space_id, epoch, did, cursor, sealed) VALUES (?1, 1, ?2, 1, ?3)",
        )
        .bind(id)
        .bind(root_did)
        .bind(key)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(1))
    }

    /// See [`super::Store::append_membership`].
    pub(crate) async fn append_membership(
        &self,
        space: Uuid,
        prev_hash: &[u8; 32],
        hash: &[u8; 32],
        ciphertext: &[u8],
    ) -> Result<AppendOutcome, StoreError> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let id = space.as_bytes().as_slice();
        let prev: Option<i64> = sqlx::query_scalar("SELECT cursor FROM spaces WHERE id = ?1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(prev) = prev else {
            tx.rollback().await?;
            return Err(StoreError::NoSuchSpace(space));
        };
        let head: Option<Vec<u8>> = sqlx::query_scalar(
            "SELECT hash FROM membership WHERE space_id = ?1 ORDER BY cursor DESC LIMIT 1",
        )
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let head = head.as_deref().map(hash_from_db).transpose()?;
        if head.as_ref() != Some(prev_hash) {
            tx.rollback().await?;
            return Ok(AppendOutcome::Conflict(head));
        }
        let next = prev
            .checked_add(1)
            .ok_or(StoreError::Corrupt("space cursor at its maximum"))?;
        sqlx::query(
            "INSERT INTO membership (space_id, cursor, prev_hash, hash, ciphertext)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .bind(id)
        .bind(next)
        .bind(prev_hash.as_slice())
        .bind(hash.as_slice())
        .bind(ciphertext)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE spaces SET cursor = ?2 WHERE id = ?1")
            .bind(id)
            .bind(next)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(AppendOutcome::Appended {
            prev: cursor_from_db(prev)?,
            cursor: cursor_from_db(next)?,
        })
    }

    /// See [`super::Store::membership_page`].
    pub(crate) async fn membership_page(
        &self,
        space: Uuid,
        since: u64,
        limit: u32,
    ) -> Result<Vec<MembershipEntry>, StoreError> {
        let Some(since) = cursor_to_db(since) else {
            return Ok(Vec::new());
        };
        let rows: Vec<MembershipTuple> = sqlx::query_as(
            "SELECT cursor, prev_hash, hash, ciphertext FROM membership
             WHERE space_id = ?1 AND cursor > ?2 ORDER BY cursor LIMIT ?3",
        )
        .bind(space.as_bytes().as_slice())
        .bind(since)
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await?;
        rows.into_iter()
            .map(|(c, p, h, x)| membership_entry(c, p, h, x))
            .collect()
    }

    /// See [`super::Store::revoke`].
    pub(crate) async fn revoke(
        &self,
        space: Uuid,
        token_hash: &[u8; 32],
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO revocations (space_id, token_hash) VALUES (?1, ?2)
             ON CONFLICT DO NOTHING",
        )
        .bind(space.as_bytes().as_slice())
        .bind(token_hash.as_slice())
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// See [`super::Store::revocations`].
    pub(crate) async fn revocations(&self, space: Uuid) -> Result<Vec<[u8; 32]>, StoreError> {
        let rows: Vec<Vec<u8>> =
            sqlx::query_scalar("SELECT token_hash FROM revocations WHERE space_id = ?1")
                .bind(space.as_bytes().as_slice())
                .fetch_all(&self.writer)
                .await?;
        rows.iter().map(|h| hash_from_db(h)).collect()
    }
}

impl SqliteStore {
    /// See [`super::Store::epoch`].
    pub(crate) async fn epoch(&self, space: Uuid) -> Result<Option<EpochState>, StoreError> {
        let row: Option<(i64, i64)> =
            sqlx::query_as("SELECT epoch, epoch_complete FROM spaces WHERE id = ?1")
                .bind(space.as_bytes().as_slice())
                .fetch_optional(&self.reader)
                .await?;
        row.map(|(epoch, complete)| {
            Ok(EpochState {
                current: epoch_from_db(epoch)?,
                complete: complete != 0,
            })
        })
        .transpose()
    }

    /// See [`super::Store::begin_epoch`].
    pub(crate) async fn begin_epoch(
        &self,
        space: Uuid,
        epoch: u32,
        keys: &[RecipientKey],
    ) -> Result<BeginOutcome, StoreError> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let id = space.as_bytes().as_slice();
        let row: Option<(i64, i64, i64)> =
            sqlx::query_as("SELECT cursor, epoch, epoch_complete FROM spaces WHERE id = ?1")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
        let Some((prev, current, complete)) = row else {
            tx.rollback().await?;
            return Err(StoreError::NoSuchSpace(space));
        };
        let state = EpochState {
            current: epoch_from_db(current)?,
            complete: complete != 0,
        };
        if state.current.checked_add(1) != Some(epoch) {
            tx.rollback().await?;
            return Ok(BeginOutcome::NotNext(state));
        }
        if !state.complete {
            tx.rollback().await?;
            return Ok(BeginOutcome::Unfinished(state));
        }
        let next = prev
            .checked_add(1)
            .ok_or(StoreError::Corrupt("space cursor at its maximum"))?;
        for key in keys {
            sqlx::query(
                "INSERT INTO sealed_keys (space_id, epoch, did, cursor, sealed)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .bind(id)
            .bind(i64::from(epoch))
            .bind(&key.did)
            .bind(next)
            .bind(key.sealed.as_slice())
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query("UPDATE spaces SET cursor = ?2, epoch = ?3, epoch_complete = 0 WHERE id = ?1")
            .bind(id)
            .bind(next)
            .bind(i64::from(epoch))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(BeginOutcome::Begun {
            prev: cursor_from_db(prev)?,
            cursor: cursor_from_db(next)?,
        })
    }

    /// See [`super::Store::complete_epoch`].
    pub(crate) async fn complete_epoch(
        &self,
        space: Uuid,
        epoch: u32,
    ) -> Result<CompleteOutcome, StoreError> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let id = space.as_bytes().as_slice();
        let row: Option<(i64, i64)> =
            sqlx::query_as("SELECT epoch, epoch_complete FROM spaces WHERE id = ?1")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
        let Some((current, complete)) = row else {
            tx.rollback().await?;
            return Err(StoreError::NoSuchSpace(space));
        };
        let state = EpochState {
            current: epoch_from_db(current)?,
            complete: complete != 0,
        };
        if state.current != epoch {
            tx.rollback().await?;
            return Ok(CompleteOutcome::NotCurrent(state));
        }
        let stale: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM records
             WHERE space_id = ?1 AND dek IS NOT NULL AND substr(dek, 1, 4) < ?2
             UNION ALL
             SELECT 1 FROM files WHERE space_id = ?1 AND substr(dek, 1, 4) < ?2
             LIMIT 1",
        )
        .bind(id)
        .bind(epoch_prefix(epoch).as_slice())
        .fetch_optional(&mut *tx)
        .await?;
        if stale.is_some() {
            tx.rollback().await?;
            return Ok(CompleteOutcome::KeysRemain);
        }
        sqlx::query("UPDATE spaces SET epoch_complete = 1 WHERE id = ?1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(CompleteOutcome::Complete)
    }

    /// See [`super::Store::sealed_keys`].
    pub(crate) async fn sealed_keys(
        &self,
        space: Uuid,
        did: &str,
    ) -> Result<Vec<SealedEpochKey>, StoreError> {
        let rows: Vec<(i64, i64, Vec<u8>)> = sqlx::query_as(
            "SELECT epoch, cursor, sealed FROM sealed_keys
             WHERE space_id = ?1 AND did = ?2 ORDER BY epoch",
        )
        .bind(space.as_bytes().as_slice())
        .bind(did)
        .fetch_all(&self.reader)
        .await?;
        rows.into_iter()
            .map(|(epoch, cursor, sealed)| {
                Ok(SealedEpochKey {
                    epoch: epoch_from_db(epoch)?,
                    cursor: cursor_from_db(cursor)?,
                    sealed: sealed.into(),
                })
            })
            .collect()
    }

    /// See [`super::Store::deks_below`].
    pub(crate) async fn deks_below(
        &self,
        space: Uuid,
        below: u32,
        limit: u32,
    ) -> Result<Vec<WrappedDek>, StoreError> {
        // `file` is 0 for records, 1 for files: records first at equal ids.
        let rows: Vec<(Vec<u8>, i64, i64, Vec<u8>)> = sqlx::query_as(
            "SELECT id, 0 AS file, cursor, dek FROM records
             WHERE space_id = ?1 AND dek IS NOT NULL AND substr(dek, 1, 4) < ?2
             UNION ALL
             SELECT id, 1 AS file, cursor, dek FROM files
             WHERE space_id = ?1 AND substr(dek, 1, 4) < ?2
             ORDER BY id, file LIMIT ?3",
        )
        .bind(space.as_bytes().as_slice())
        .bind(epoch_prefix(below).as_slice())
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await?;
        rows.into_iter()
            .map(|(id, file, cursor, dek)| {
                Ok(WrappedDek {
                    id: uuid_from_db(&id)?,
                    owner: if file == 0 {
                        KeyOwner::Record
                    } else {
                        KeyOwner::File
                    },
                    cursor: cursor_from_db(cursor)?,
                    dek: wrapped_from_db(&dek)?,
                })
            })
            .collect()
    }

    /// See [`super::Store::rewrap`].
    pub(crate) async fn rewrap(
        &self,
        space: Uuid,
        deks: &[WrappedDek],
    ) -> Result<(u32, Vec<Uuid>), StoreError> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let mut rewrapped = 0u32;
        let mut skipped = Vec::new();
        for dek in deks {
            let applied = match (dek.owner, cursor_to_db(dek.cursor)) {
                (KeyOwner::Record, Some(cursor)) => {
                    sqlx::query(
                        "UPDATE records SET dek = ?4
                         WHERE space_id = ?1 AND id = ?2 AND cursor = ?3 AND dek IS NOT NULL",
                    )
                    .bind(space.as_bytes().as_slice())
                    .bind(dek.id.as_bytes().as_slice())
                    .bind(cursor)
                    .bind(dek.dek.as_bytes().as_slice())
                    .execute(&mut *tx)
                    .await?
                    .rows_affected()
                        == 1
                }
                (KeyOwner::File, Some(cursor)) => {
                    sqlx::query(
                        "UPDATE files SET dek = ?4
                         WHERE space_id = ?1 AND id = ?2 AND cursor = ?3",
                    )
                    .bind(space.as_bytes().as_slice())
                    .bind(dek.id.as_bytes().as_slice())
                    .bind(cursor)
                    .bind(dek.dek.as_bytes().as_slice())
                    .execute(&mut *tx)
                    .await?
                    .rows_affected()
                        == 1
                }
                // A cursor beyond i64 matches nothing.
                (_, None) => false,
            };
            if applied {
                rewrapped += 1;
            } else {
                skipped.push(dek.id);
            }
        }
        tx.commit().await?;
        Ok((rewrapped, skipped))
    }
}

/// A file row: id, record_id, cursor, size, dek, upload.
type FileTuple = (Vec<u8>, Vec<u8>, i64, i64, Vec<u8>, Vec<u8>);

/// The columns of a [`FileTuple`], in order.
const FILE_COLUMNS: &str = "id, record_id, cursor, size, dek, upload";

fn file_row((id, record, cursor, size, dek, upload): FileTuple) -> Result<FileRow, StoreError> {
    Ok(FileRow {
        id: uuid_from_db(&id)?,
        record: uuid_from_db(&record)?,
        cursor: cursor_from_db(cursor)?,
        size: size_from_db(size)?,
        dek: wrapped_from_db(&dek)?,
        upload: uuid_from_db(&upload)?,
    })
}

/// Removes the file rows of `records` inside `tx`; returns their objects.
async fn remove_files_of(
    tx: &mut Transaction<'static, Sqlite>,
    space: Uuid,
    records: &[Uuid],
) -> Result<(Vec<FileObject>, i64), StoreError> {
    let mut removed = Vec::new();
    let mut freed = 0i64;
    for record in records {
        let rows: Vec<(Vec<u8>, Vec<u8>, i64)> = sqlx::query_as(
            "DELETE FROM files WHERE space_id = ?1 AND record_id = ?2 RETURNING id, upload, size",
        )
        .bind(space.as_bytes().as_slice())
        .bind(record.as_bytes().as_slice())
        .fetch_all(&mut **tx)
        .await?;
        for (id, upload, size) in rows {
            freed = freed.saturating_add(size);
            removed.push(FileObject {
                space,
                id: uuid_from_db(&id)?,
                upload: uuid_from_db(&upload)?,
            });
        }
    }
    Ok((removed, freed))
}

impl SqliteStore {
    /// See [`super::Store::file`].
    pub(crate) async fn file(&self, space: Uuid, id: Uuid) -> Result<Option<FileRow>, StoreError> {
        let row: Option<FileTuple> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {FILE_COLUMNS} FROM files WHERE space_id = ?1 AND id = ?2"
        )))
        .bind(space.as_bytes().as_slice())
        .bind(id.as_bytes().as_slice())
        .fetch_optional(&self.reader)
        .await?;
        row.map(file_row).transpose()
    }

    /// See [`super::Store::insert_file`].
    pub(crate) async fn insert_file(
        &self,
        space: Uuid,
        file: &NewFile,
    ) -> Result<FileInsert, StoreError> {
        let size = size_to_db(file.size)?;
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let space_id = space.as_bytes().as_slice();
        let found: Option<(i64, Option<Vec<u8>>)> =
            sqlx::query_as("SELECT cursor, billed_user FROM spaces WHERE id = ?1")
                .bind(space_id)
                .fetch_optional(&mut *tx)
                .await?;
        let Some((prev, billed)) = found else {
            tx.rollback().await?;
            return Err(StoreError::NoSuchSpace(space));
        };
        let existing: Option<FileTuple> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {FILE_COLUMNS} FROM files WHERE space_id = ?1 AND id = ?2"
        )))
        .bind(space_id)
        .bind(file.id.as_bytes().as_slice())
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(existing) = existing {
            tx.rollback().await?;
            return Ok(FileInsert::Exists(file_row(existing)?));
        }
        // Under the write lock, so a push deleting the record cannot slip in
        // between this check and the insert.
        let tombstone: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM records WHERE space_id = ?1 AND id = ?2 AND blob IS NULL",
        )
        .bind(space_id)
        .bind(file.record.as_bytes().as_slice())
        .fetch_optional(&mut *tx)
        .await?;
        if tombstone.is_some() {
            tx.rollback().await?;
            return Ok(FileInsert::RecordDeleted);
        }
        check_usage(&mut tx, self.quota, billed.as_deref(), size).await?;
        let next = prev
            .checked_add(1)
            .ok_or(StoreError::Corrupt("space cursor at its maximum"))?;
        sqlx::query(
            "INSERT INTO files (space_id, id, record_id, cursor, size, dek, upload, uploader)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )
        .bind(space_id)
        .bind(file.id.as_bytes().as_slice())
        .bind(file.record.as_bytes().as_slice())
        .bind(next)
        .bind(size)
        .bind(file.dek.as_bytes().as_slice())
        .bind(file.upload.as_bytes().as_slice())
        .bind(file.uploader.as_bytes().as_slice())
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE spaces SET cursor = ?2, bytes = bytes + ?3 WHERE id = ?1")
            .bind(space_id)
            .bind(next)
            .bind(size)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(FileInsert::Inserted {
            prev: cursor_from_db(prev)?,
            cursor: cursor_from_db(next)?,
        })
    }

    /// See [`super::Store::files_page`].
    pub(crate) async fn files_page(
        &self,
        space: Uuid,
        since: u64,
        upto: u64,
        limit: u32,
    ) -> Result<Vec<FileRow>, StoreError> {
        let Some(since) = cursor_to_db(since) else {
            return Ok(Vec::new());
        };
        let upto = cursor_to_db(upto).unwrap_or(i64::MAX);
        let rows: Vec<FileTuple> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {FILE_COLUMNS} FROM files
             WHERE space_id = ?1 AND cursor > ?2 AND cursor <= ?3
             ORDER BY cursor LIMIT ?4"
        )))
        .bind(space.as_bytes().as_slice())
        .bind(since)
        .bind(upto)
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await?;
        rows.into_iter().map(file_row).collect()
    }

    /// See [`super::Store::delete_files_of_records`].
    pub(crate) async fn delete_files_of_records(
        &self,
        space: Uuid,
        records: &[Uuid],
    ) -> Result<Vec<FileObject>, StoreError> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let (removed, freed) = remove_files_of(&mut tx, space, records).await?;
        sqlx::query("UPDATE spaces SET bytes = max(bytes - ?2, 0) WHERE id = ?1")
            .bind(space.as_bytes().as_slice())
            .bind(freed)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(removed)
    }

    /// See [`super::Store::known_uploads`].
    pub(crate) async fn known_uploads(&self, uploads: &[Uuid]) -> Result<Vec<Uuid>, StoreError> {
        // One indexed lookup each: local, and only the sweep asks.
        let mut known = Vec::new();
        for upload in uploads {
            let hit: Option<i64> = sqlx::query_scalar("SELECT 1 FROM files WHERE upload = ?1")
                .bind(upload.as_bytes().as_slice())
                .fetch_optional(&self.reader)
                .await?;
            if hit.is_some() {
                known.push(*upload);
            }
        }
        Ok(known)
    }
}
