//! Sync bookkeeping: what the sync engine needs from the store.
//!
//! Every record has a row in `sealbase_sync`: its space (`NULL` until it is
//! first pushed: the user's personal space), the server cursor of the
//! version it last merged or pushed, its local feed position (`seq`), its
//! sorted Automerge heads, and `dirty`: local changes the server lacks. A
//! local write sets `dirty`; merging a pulled version clears it only when
//! the merged document is exactly the server's; a push acknowledgement
//! clears it only if the record did not change while the push was in
//! flight (same `seq`). Each space's pull cursor is in `sealbase_spaces`;
//! records that failed to open or merge are in `sealbase_quarantine` with
//! the reason, so one bad record never blocks the rest.
//!
//! Delete versus concurrent edit: **delete wins**. A pulled tombstone
//! deletes the local record even if it has unpushed edits, and a pulled
//! version of a record deleted here merges into its document but the
//! record stays deleted and its tombstone is pushed. Either way the edits
//! are kept in the document, so [`Db::history`] and [`Db::get_at`] still
//! show them until compaction.

use rusqlite::{Connection, OptionalExtension, params};

use crate::cached::Cached;
use crate::store::{Db, DbError, Env, Merged, SyncMark, docs_table, next_seq, table};

/// Creates the sync tables; a store of format 1 (before sync) gets a row
/// for every record, all pending.
pub(crate) fn create_tables(conn: &Connection, format: i64) -> Result<(), DbError> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS sealbase_sync (
             id TEXT PRIMARY KEY,
             collection TEXT NOT NULL,
             space TEXT,
             cursor INTEGER NOT NULL DEFAULT 0,
             seq INTEGER NOT NULL,
             dirty INTEGER NOT NULL,
             heads BLOB NOT NULL) WITHOUT ROWID;
         CREATE INDEX IF NOT EXISTS sealbase_sync_pending ON sealbase_sync (seq) WHERE dirty = 1;
         CREATE TABLE IF NOT EXISTS sealbase_spaces (space TEXT PRIMARY KEY, cursor INTEGER NOT NULL);
         CREATE TABLE IF NOT EXISTS sealbase_quarantine (
             space TEXT NOT NULL,
             id TEXT NOT NULL,
             cursor INTEGER NOT NULL,
             error TEXT NOT NULL,
             at INTEGER NOT NULL,
             PRIMARY KEY (space, id));",
    )?;
    if format == 1 {
        let names: Vec<String> = {
            let mut stmt = conn.prepare("SELECT name FROM sealbase_collections")?;
            let rows = stmt.query_map([], |row| row.get(0))?;
            rows.collect::<Result<_, _>>()?
        };
        for name in names {
            conn.exec(
                &format!(
                    "INSERT OR IGNORE INTO sealbase_sync (id, collection, space, cursor, seq, dirty, heads)
                     SELECT id, ?1, NULL, 0, seq, 1, x'' FROM {}",
                    table(&name)
                ),
                [&name],
            )?;
        }
    }
    Ok(())
}

fn cursor_to_db(cursor: u64) -> i64 {
    i64::try_from(cursor).unwrap_or(i64::MAX)
}

fn cursor_from_db(cursor: i64) -> u64 {
    u64::try_from(cursor).unwrap_or(0)
}

/// Bookkeeping of a write that stored a new state.
pub(crate) fn mark_written(
    conn: &Connection,
    id: &str,
    collection: &str,
    seq: i64,
    heads: &[u8],
    mark: &SyncMark,
) -> Result<usize, rusqlite::Error> {
    match mark {
        SyncMark::Local => conn.exec(
            "INSERT INTO sealbase_sync (id, collection, space, cursor, seq, dirty, heads)
             VALUES (?1, ?2, NULL, 0, ?3, 1, ?4)
             ON CONFLICT (id) DO UPDATE SET seq = ?3, dirty = 1, heads = ?4",
            params![id, collection, seq, heads],
        ),
        SyncMark::Remote {
            space,
            cursor,
            dirty,
        } => conn.exec(
            "INSERT INTO sealbase_sync (id, collection, space, cursor, seq, dirty, heads)
             VALUES (?1, ?2, ?5, ?6, ?3, ?7, ?4)
             ON CONFLICT (id) DO UPDATE SET seq = ?3, dirty = ?7, heads = ?4, space = ?5, cursor = ?6",
            params![id, collection, seq, heads, space, cursor_to_db(*cursor), dirty],
        ),
    }
}

/// Bookkeeping of a deletion.
pub(crate) fn mark_deleted(
    conn: &Connection,
    id: &str,
    seq: i64,
    mark: &SyncMark,
) -> Result<usize, rusqlite::Error> {
    match mark {
        SyncMark::Local => conn.exec(
            "UPDATE sealbase_sync SET seq = ?2, dirty = 1 WHERE id = ?1",
            params![id, seq],
        ),
        SyncMark::Remote { space, cursor, .. } => conn.exec(
            "UPDATE sealbase_sync SET seq = ?2, dirty = 0, space = ?3, cursor = ?4 WHERE id = ?1",
            params![id, seq, space, cursor_to_db(*cursor)],
        ),
    }
}

/// Bookkeeping of a merge that brought nothing new.
pub(crate) fn mark_unchanged(
    conn: &Connection,
    id: &str,
    mark: &SyncMark,
    dirty: bool,
) -> Result<usize, rusqlite::Error> {
    match mark {
        SyncMark::Local => Ok(0),
        SyncMark::Remote { space, cursor, .. } => conn.exec(
            "UPDATE sealbase_sync SET space = ?2, cursor = ?3, dirty = ?4 WHERE id = ?1",
            params![id, space, cursor_to_db(*cursor), dirty],
        ),
    }
}

/// A pulled version of a record, opened and its signature checked.
#[derive(Debug, Clone, Copy)]
pub struct RemoteRecord<'a> {
    /// The space it was pulled from.
    pub space: &'a str,
    /// The record.
    pub id: &'a str,
    /// Its server cursor.
    pub cursor: u64,
    /// The collection its envelope names.
    pub collection: &'a str,
    /// The schema version its writer used.
    pub schema_version: u32,
    /// The Automerge document (`save()` bytes).
    pub doc: &'a [u8],
    /// The heads its author signed; the document must have exactly these.
    pub heads: &'a [[u8; 32]],
}

/// A record with local changes the server lacks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// The collection.
    pub collection: String,
    /// The record.
    pub id: String,
    /// Its space (`None`: not pushed yet; the personal space).
    pub space: Option<String>,
    /// The server cursor of the version it was last merged with (0: new).
    pub cursor: u64,
    /// Its local feed position; pass it back to [`Db::mark_pushed`].
    pub seq: i64,
    /// The record is deleted (push a tombstone).
    pub deleted: bool,
    /// The schema version of its current state.
    pub schema_version: u32,
    /// The Automerge document (`save()` bytes).
    pub doc: Vec<u8>,
    /// The document's heads, sorted.
    pub heads: Vec<[u8; 32]>,
}

/// A pulled record that could not be applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quarantined {
    /// The space.
    pub space: String,
    /// The record.
    pub id: String,
    /// The server cursor of the refused version.
    pub cursor: u64,
    /// Why it was refused.
    pub error: String,
    /// When, Unix milliseconds.
    pub at: i64,
}

fn heads_from_db(bytes: &[u8]) -> Vec<[u8; 32]> {
    bytes
        .chunks_exact(32)
        .filter_map(|c| <[u8; 32]>::try_from(c).ok())
        .collect()
}

impl<E: Env> Db<E> {
    /// Runs `f` in one transaction: every write inside commits together or
    /// not at all (and is much faster than one transaction each). Nested
    /// calls join the outer transaction.
    pub fn batch<R>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<R, DbError>,
    ) -> Result<R, DbError> {
        if !self.conn.is_autocommit() {
            return f(self);
        }
        self.conn.execute_batch("BEGIN IMMEDIATE")?;
        let events = self.events_len();
        match f(self) {
            Ok(result) => match self.conn.execute_batch("COMMIT") {
                Ok(()) => Ok(result),
                Err(e) => {
                    let _ = self.conn.execute_batch("ROLLBACK");
                    self.rolled_back(events)?;
                    Err(e.into())
                }
            },
            Err(e) => {
                let _ = self.conn.execute_batch("ROLLBACK");
                self.rolled_back(events)?;
                Err(e)
            }
        }
    }

    /// Merges a pulled version (see [`Db::merge`]) and records it as the
    /// server's version at `cursor`. The document's heads must be the
    /// signed heads, and the collection must be the record's collection
    /// here. The record stays pending only if the merged document has
    /// local changes the server's lacks (or it is deleted here: delete
    /// wins). A quarantine entry for the record is cleared.
    pub fn merge_remote(&mut self, remote: &RemoteRecord<'_>) -> Result<Merged, DbError> {
        if let Some(local) = self.sync_collection(remote.id)?
            && local != remote.collection
        {
            return Err(DbError::CollectionMismatch {
                id: remote.id.to_owned(),
                local,
                remote: remote.collection.to_owned(),
            });
        }
        let mark = SyncMark::Remote {
            space: remote.space.to_owned(),
            cursor: remote.cursor,
            dirty: false,
        };
        let merged = self.merge_document(
            remote.collection,
            remote.id,
            remote.doc,
            remote.schema_version,
            Some(remote.heads),
            &mark,
        )?;
        self.conn.exec(
            "DELETE FROM sealbase_quarantine WHERE space = ?1 AND id = ?2",
            params![remote.space, remote.id],
        )?;
        Ok(merged)
    }

    /// Applies a pulled tombstone: the record is deleted here, even with
    /// unpushed edits (delete wins; the edits stay in its history), and is
    /// no longer pending. `false` if the record was not live here.
    pub fn apply_remote_delete(
        &mut self,
        space: &str,
        id: &str,
        cursor: u64,
    ) -> Result<bool, DbError> {
        self.conn.exec(
            "DELETE FROM sealbase_quarantine WHERE space = ?1 AND id = ?2",
            params![space, id],
        )?;
        let Some(collection) = self.sync_collection(id)? else {
            return Ok(false);
        };
        let mark = SyncMark::Remote {
            space: space.to_owned(),
            cursor,
            dirty: false,
        };
        let tx = self.conn.savepoint()?;
        let seq = next_seq(&tx)?;
        let n = tx.exec(
            &format!(
                "UPDATE {} SET deleted = 1, updated_at = ?2, seq = ?3 WHERE id = ?1 AND deleted = 0",
                table(&collection)
            ),
            params![id, self.env.now_ms(), seq],
        )?;
        mark_deleted(&tx, id, seq, &mark)?;
        tx.commit()?;
        if n == 1 && self.collection(&collection).is_ok() {
            self.after_write(&collection, id, true, seq)?;
        }
        Ok(n == 1)
    }

    fn sync_collection(&self, id: &str) -> Result<Option<String>, DbError> {
        Ok(self
            .conn
            .row(
                "SELECT collection FROM sealbase_sync WHERE id = ?1",
                [id],
                |row| row.get(0),
            )
            .optional()?)
    }

    /// Records with local changes the server lacks, oldest change first,
    /// at most `limit`. Records of collections not defined in this session
    /// wait until they are.
    pub fn pending(&self, limit: usize) -> Result<Vec<Pending>, DbError> {
        self.pending_where(None, limit)
    }

    /// [`Self::pending`], only records of `space` (and, when `personal`,
    /// records not assigned to any space yet).
    pub fn pending_in(
        &self,
        space: &str,
        personal: bool,
        limit: usize,
    ) -> Result<Vec<Pending>, DbError> {
        self.pending_where(Some((space, personal)), limit)
    }

    fn pending_where(
        &self,
        space: Option<(&str, bool)>,
        limit: usize,
    ) -> Result<Vec<Pending>, DbError> {
        // Rows are read first (their statement ends before the documents
        // are read), then completed per record.
        let rows: Vec<Pending> = {
            let mut stmt = self.conn.prepare_cached(
                "SELECT id, collection, space, cursor, seq, heads FROM sealbase_sync
                 WHERE dirty = 1 AND (?2 OR space = ?3 OR (?4 AND space IS NULL))
                 ORDER BY seq LIMIT ?1",
            )?;
            let (any, only, personal) = match space {
                None => (true, "", false),
                Some((space, personal)) => (false, space, personal),
            };
            let limit = i64::try_from(limit).unwrap_or(i64::MAX);
            let rows = stmt.query_map(params![limit, any, only, personal], |row| {
                Ok(Pending {
                    id: row.get(0)?,
                    collection: row.get(1)?,
                    space: row.get(2)?,
                    cursor: cursor_from_db(row.get(3)?),
                    seq: row.get(4)?,
                    heads: heads_from_db(&row.get::<_, Vec<u8>>(5)?),
                    deleted: false,
                    schema_version: 0,
                    doc: Vec::new(),
                })
            })?;
            rows.collect::<Result<_, _>>()?
        };
        let mut out = Vec::with_capacity(rows.len());
        for mut pending in rows {
            if self.collection(&pending.collection).is_err() {
                continue;
            }
            let found: Option<(bool, u32, Vec<u8>)> = self
                .conn
                .prepare_cached(&format!(
                    "SELECT r.deleted, r.schema_version, d.doc FROM {} AS r \
                     JOIN {} AS d ON d.id = r.id WHERE r.id = ?1",
                    table(&pending.collection),
                    docs_table(&pending.collection)
                ))?
                .query_row([&pending.id], |row| {
                    Ok((row.get(0)?, row.get(1)?, row.get(2)?))
                })
                .optional()?;
            let Some((deleted, schema_version, doc)) = found else {
                continue;
            };
            if pending.heads.is_empty() {
                // A record written before the store kept heads.
                let mut d = automerge::AutoCommit::load(&doc)
                    .map_err(|e| DbError::Corrupt(e.to_string()))?;
                pending.heads = crate::store::sorted_heads(&mut d);
            }
            pending.deleted = deleted;
            pending.schema_version = schema_version;
            pending.doc = doc;
            out.push(pending);
        }
        Ok(out)
    }

    /// How many records are pending.
    pub fn pending_count(&self) -> Result<u64, DbError> {
        let n: i64 = self.conn.row(
            "SELECT COUNT(*) FROM sealbase_sync WHERE dirty = 1",
            [],
            |row| row.get(0),
        )?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// The server accepted the record's version read at `seq` in `space`,
    /// now at `cursor`. It stays pending if it changed since (another
    /// local edit while the push was in flight).
    pub fn mark_pushed(
        &mut self,
        id: &str,
        seq: i64,
        space: &str,
        cursor: u64,
    ) -> Result<(), DbError> {
        self.conn.exec(
            "UPDATE sealbase_sync SET space = ?3, cursor = ?4, dirty = (seq <> ?2) WHERE id = ?1",
            params![id, seq, space, cursor_to_db(cursor)],
        )?;
        Ok(())
    }

    /// Puts a record that never reached the server into `space` (a
    /// shared space): it is pushed there. A record already on the server
    /// stays where it is (moving it is a new record there and a deletion
    /// here).
    pub fn assign_space(&mut self, id: &str, space: &str) -> Result<(), DbError> {
        let row: Option<(String, Option<String>, i64)> = self
            .conn
            .row(
                "SELECT collection, space, cursor FROM sealbase_sync WHERE id = ?1",
                [id],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
            )
            .optional()?;
        match row {
            None => Err(DbError::NotFound {
                collection: String::new(),
                id: id.to_owned(),
            }),
            Some((_, current, _)) if current.as_deref() == Some(space) => Ok(()),
            Some((_, current, cursor)) if cursor != 0 => Err(DbError::AlreadySynced {
                id: id.to_owned(),
                space: current.unwrap_or_default(),
            }),
            Some(_) => {
                self.conn.exec(
                    "UPDATE sealbase_sync SET space = ?2 WHERE id = ?1",
                    params![id, space],
                )?;
                Ok(())
            }
        }
    }

    /// The space a record belongs to: `None` if there is no such record,
    /// `Some(None)` if it was never assigned (the personal space).
    pub fn record_space(&self, id: &str) -> Result<Option<Option<String>>, DbError> {
        Ok(self
            .conn
            .row(
                "SELECT space FROM sealbase_sync WHERE id = ?1",
                [id],
                |row| row.get(0),
            )
            .optional()?)
    }

    /// A new record `new_id` holding a copy of live record `id`'s document
    /// (its fields and whole history), pending in no space yet; the
    /// original is left as it is. Moving a record between spaces is this,
    /// [`Self::assign_space`] of the copy and a deletion of the original.
    pub fn copy_record(
        &mut self,
        collection: &str,
        id: &str,
        new_id: &str,
    ) -> Result<serde_json::Value, DbError> {
        let version = self.collection(collection)?.version;
        let not_found = || DbError::NotFound {
            collection: collection.to_owned(),
            id: id.to_owned(),
        };
        if self.get(collection, id)?.is_none() {
            return Err(not_found());
        }
        if self.document(collection, new_id)?.is_some() {
            return Err(DbError::Unique {
                collection: collection.to_owned(),
                index: "id".into(),
            });
        }
        let doc = self.document(collection, id)?.ok_or_else(not_found)?;
        self.merge(collection, new_id, &doc, version)
    }

    /// The record's server cursor (0 if unknown or never pushed).
    pub fn record_cursor(&self, id: &str) -> Result<u64, DbError> {
        let cursor: Option<i64> = self
            .conn
            .row(
                "SELECT cursor FROM sealbase_sync WHERE id = ?1",
                [id],
                |row| row.get(0),
            )
            .optional()?;
        Ok(cursor.map_or(0, cursor_from_db))
    }

    /// The space's pull cursor (0: nothing pulled yet).
    pub fn space_cursor(&self, space: &str) -> Result<u64, DbError> {
        let cursor: Option<i64> = self
            .conn
            .row(
                "SELECT cursor FROM sealbase_spaces WHERE space = ?1",
                [space],
                |row| row.get(0),
            )
            .optional()?;
        Ok(cursor.map_or(0, cursor_from_db))
    }

    /// Moves the space's pull cursor.
    pub fn set_space_cursor(&mut self, space: &str, cursor: u64) -> Result<(), DbError> {
        self.conn.exec(
            "INSERT INTO sealbase_spaces (space, cursor) VALUES (?1, ?2)
             ON CONFLICT (space) DO UPDATE SET cursor = ?2",
            params![space, cursor_to_db(cursor)],
        )?;
        Ok(())
    }

    /// After a pull that started over (`reset`): every record of `space`
    /// (or not pushed yet, when `personal`) that the pull did not mention
    /// and that has no local changes is gone from the server, so it is
    /// deleted here; records with local changes become new again (cursor
    /// 0) so they are pushed. Returns how many records were deleted.
    pub fn reset_space(
        &mut self,
        space: &str,
        personal: bool,
        seen: &std::collections::HashSet<String>,
    ) -> Result<usize, DbError> {
        let rows: Vec<(String, bool)> = {
            let mut stmt = self.conn.prepare(
                "SELECT id, dirty FROM sealbase_sync WHERE space = ?1 OR (?2 AND space IS NULL)",
            )?;
            let rows = stmt.query_map(params![space, personal], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })?;
            rows.collect::<Result<_, _>>()?
        };
        let mut deleted = 0;
        for (id, dirty) in rows {
            if seen.contains(&id) {
                continue;
            }
            if dirty {
                self.conn
                    .exec("UPDATE sealbase_sync SET cursor = 0 WHERE id = ?1", [&id])?;
            } else if self.apply_remote_delete(space, &id, 0)? {
                deleted += 1;
            }
        }
        Ok(deleted)
    }

    /// Compacts tombstones: records deleted before `before_ms` whose
    /// deletion the server has (not pending) lose their row, document and
    /// history. Returns how many were removed.
    pub fn compact(&mut self, before_ms: i64) -> Result<usize, DbError> {
        let mut names: Vec<String> = self.collection_names();
        names.sort();
        let tx = self.conn.savepoint()?;
        let mut removed = 0;
        for name in names {
            let ids: Vec<String> = {
                let mut stmt = tx.prepare(&format!(
                    "SELECT r.id FROM {} AS r JOIN sealbase_sync AS s ON s.id = r.id \
                     WHERE r.deleted = 1 AND r.updated_at < ?1 AND s.dirty = 0",
                    table(&name)
                ))?;
                let rows = stmt.query_map([before_ms], |row| row.get(0))?;
                rows.collect::<Result<_, _>>()?
            };
            for id in &ids {
                tx.exec(&format!("DELETE FROM {} WHERE id = ?1", table(&name)), [id])?;
                tx.exec(
                    &format!("DELETE FROM {} WHERE id = ?1", docs_table(&name)),
                    [id],
                )?;
                tx.exec("DELETE FROM sealbase_sync WHERE id = ?1", [id])?;
            }
            removed += ids.len();
        }
        tx.commit()?;
        Ok(removed)
    }

    /// Keeps a pulled record that could not be applied, with the reason
    /// (replacing an older entry for it).
    pub fn quarantine(
        &mut self,
        space: &str,
        id: &str,
        cursor: u64,
        error: &str,
    ) -> Result<(), DbError> {
        self.conn.exec(
            "INSERT INTO sealbase_quarantine (space, id, cursor, error, at) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (space, id) DO UPDATE SET cursor = ?3, error = ?4, at = ?5",
            params![space, id, cursor_to_db(cursor), error, self.env.now_ms()],
        )?;
        Ok(())
    }

    /// Every quarantined record.
    pub fn quarantined(&self) -> Result<Vec<Quarantined>, DbError> {
        let mut stmt = self.conn.prepare(
            "SELECT space, id, cursor, error, at FROM sealbase_quarantine ORDER BY at, space, id",
        )?;
        let rows = stmt.query_map([], |row| {
            Ok(Quarantined {
                space: row.get(0)?,
                id: row.get(1)?,
                cursor: cursor_from_db(row.get(2)?),
                error: row.get(3)?,
                at: row.get(4)?,
            })
        })?;
        rows.collect::<Result<_, _>>().map_err(Into::into)
    }
}
