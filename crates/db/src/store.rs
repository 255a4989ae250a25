//! The local store: one SQLite database per app and user.
//!
//! Each collection is a table of rows `(id, json, created_at, updated_at,
//! deleted, seq, schema_version)`, clustered by id (`WITHOUT ROWID`), where
//! `json` is the record's current state materialised (fields plus `id`,
//! `createdAt`, `updatedAt`) in SQLite's binary JSONB, which queries read;
//! the record's Automerge document (`save()` bytes) sits in a second table
//! keyed by id, read only to change or sync the record; declared indexes
//! are SQLite expression indexes on `json_extract(json, …)`, partial on
//! live rows, `UNIQUE` where declared.
//!
//! Invariants: `json` is always exactly the JSON of `doc` plus the automatic
//! fields; every write validates the resulting record against the schema
//! before anything is stored, and a refused write changes nothing (one
//! transaction per write); deleted rows keep their document (a tombstone)
//! and leave every query. The store reads no clock and draws no randomness
//! of its own: [`Env`] supplies both.

use std::collections::HashMap;

use automerge::{ActorId, AutoCommit};
use rusqlite::{Connection, OptionalExtension, params, params_from_iter};
use serde_json::{Map, Value};

use crate::cached::{Cached, STATEMENT_CACHE};
use crate::doc;
use crate::query::{self, Query, QueryError};
use crate::schema::{Collection, SchemaError};

/// Version of the store's own tables (SQLite `user_version`); a store
/// written by a newer version is refused rather than misread.
pub const STORE_FORMAT: i64 = 2;

/// A schema migration: a record's fields at version `v` to version `v + 1`.
pub type Migration = Box<dyn Fn(Map<String, Value>) -> Result<Map<String, Value>, String> + Send>;

/// The outside world the store needs: time and randomness.
pub trait Env {
    /// Unix milliseconds now.
    fn now_ms(&self) -> i64;
    /// Fills `buf` with cryptographically secure random bytes.
    fn fill_random(&self, buf: &mut [u8]);
}

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// SQLite failed.
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The schema or the record was refused.
    #[error(transparent)]
    Schema(#[from] SchemaError),
    /// The query was refused.
    #[error(transparent)]
    Query(#[from] QueryError),
    /// No collection with this name was defined.
    #[error("unknown collection {0:?}")]
    UnknownCollection(String),
    /// No live record with this id.
    #[error("no record {id} in {collection}")]
    NotFound {
        /// The collection.
        collection: String,
        /// The id.
        id: String,
    },
    /// A unique index already has a record with these values.
    #[error("a record with the same {index} already exists in {collection}")]
    Unique {
        /// The collection.
        collection: String,
        /// The index's fields.
        index: String,
    },
    /// The store was written by a newer Sealbase.
    #[error("the store has format {0}, newer than this version reads ({STORE_FORMAT})")]
    NewerFormat(i64),
    /// A migration failed or is missing; names the record and versions.
    #[error("cannot migrate {collection} record {id} from schema version {from}: {reason}")]
    Migration {
        /// The collection.
        collection: String,
        /// The record.
        id: String,
        /// Its version.
        from: u32,
        /// Why.
        reason: String,
    },
    /// A remote document's heads differ from the heads its author signed.
    #[error("record {id}: the document's heads differ from the signed heads")]
    HeadsMismatch {
        /// The record.
        id: String,
    },
    /// A remote record names another collection than the local one.
    #[error("record {id} is in {local}, not {remote}")]
    CollectionMismatch {
        /// The record.
        id: String,
        /// Its collection here.
        local: String,
        /// The collection the remote version names.
        remote: String,
    },
    /// The record is on the server in another space already.
    #[error("record {id} is already synced to space {space}")]
    AlreadySynced {
        /// The record.
        id: String,
        /// The space it is in.
        space: String,
    },
    /// A stored document does not load (corruption).
    #[error("stored document is corrupt: {0}")]
    Corrupt(String),
}

fn am(e: automerge::AutomergeError) -> DbError {
    DbError::Corrupt(e.to_string())
}

/// An open store.
pub struct Db<E: Env> {
    pub(crate) conn: Connection,
    pub(crate) env: E,
    collections: HashMap<String, Collection>,
    author: Option<String>,
    events: Vec<Change>,
    migrations: HashMap<String, std::collections::BTreeMap<u32, Migration>>,
    live: HashMap<LiveQueryId, Live>,
    next_live: LiveQueryId,
    evaluations: u64,
}

/// Names a live query.
pub type LiveQueryId = u64;

struct Live {
    collection: String,
    query: Query,
    ids: std::collections::HashSet<String>,
    result: Vec<Value>,
    changed: bool,
}

/// One entry of the change feed: a record's latest change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The collection.
    pub collection: String,
    /// The record.
    pub id: String,
    /// Position in the feed (increases with every local write).
    pub seq: i64,
    /// The change was a deletion.
    pub deleted: bool,
}

/// One version of a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    /// The change that made it (hex); pass it to [`Db::get_at`].
    pub hash: String,
    /// Who made it (the author's DID), when the writer set one.
    pub author: Option<String>,
    /// When, Unix milliseconds (the writer's clock).
    pub time: i64,
}

impl<E: Env> std::fmt::Debug for Db<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("collections", &self.collections.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

pub(crate) fn table(collection: &str) -> String {
    format!("\"c_{collection}\"")
}

/// Documents live apart from the rows queries scan, so a scan reads only
/// the small materialised state, in id order.
pub(crate) fn docs_table(collection: &str) -> String {
    format!("\"c_{collection}_docs\"")
}

fn index_name(collection: &str, fields: &[String]) -> String {
    let joined: String = fields
        .iter()
        .map(|f| f.replace('.', "__"))
        .collect::<Vec<_>>()
        .join("_");
    format!("\"c_{collection}_i_{joined}\"")
}

impl<E: Env> Db<E> {
    /// Opens (or creates) the store at `path`.
    pub fn open(path: &str, env: E) -> Result<Self, DbError> {
        Self::from_connection(Connection::open(path)?, env)
    }

    /// An in-memory store (tests, ephemeral use).
    pub fn open_in_memory(env: E) -> Result<Self, DbError> {
        Self::from_connection(Connection::open_in_memory()?, env)
    }

    fn from_connection(conn: Connection, env: E) -> Result<Self, DbError> {
        let format: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
        if format > STORE_FORMAT {
            return Err(DbError::NewerFormat(format));
        }
        // The browser build has no WAL (its VFS cannot share memory): the
        // pragma leaves the rollback journal there.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // In WAL mode NORMAL cannot corrupt the database; a power cut may
        // only lose the last commits, which sync brings back. With the
        // browser's rollback journal NORMAL syncs less than FULL, which
        // costs 15 % per put there (docs/benchmarks.md); the browser
        // decides what OPFS keeps across a crash anyway.
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        crate::regexp::register(&conn)?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS sealbase_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS sealbase_collections (
                 name TEXT PRIMARY KEY, version INTEGER NOT NULL, schema TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS sealbase_seq (id INTEGER PRIMARY KEY CHECK (id = 1), seq INTEGER NOT NULL);
             INSERT OR IGNORE INTO sealbase_seq (id, seq) VALUES (1, 0);",
        )?;
        crate::sync::create_tables(&conn, format)?;
        conn.pragma_update(None, "user_version", STORE_FORMAT)?;
        Ok(Self {
            conn,
            env,
            collections: HashMap::new(),
            author: None,
            events: Vec::new(),
            migrations: HashMap::new(),
            live: HashMap::new(),
            next_live: 1,
            evaluations: 0,
        })
    }

    /// Declares a collection: checks the schema, creates its table and
    /// indexes (idempotent).
    pub fn define(&mut self, collection: Collection) -> Result<(), DbError> {
        collection.check()?;
        let t = table(&collection.name);
        let tx = self.conn.savepoint()?;
        tx.execute_batch(&format!(
            "CREATE TABLE IF NOT EXISTS {t} (
                 id TEXT PRIMARY KEY,
                 json BLOB NOT NULL,
                 created_at INTEGER NOT NULL,
                 updated_at INTEGER NOT NULL,
                 deleted INTEGER NOT NULL DEFAULT 0,
                 seq INTEGER NOT NULL,
                 schema_version INTEGER NOT NULL) WITHOUT ROWID;
             CREATE TABLE IF NOT EXISTS {d} (id TEXT PRIMARY KEY, doc BLOB NOT NULL);
             CREATE INDEX IF NOT EXISTS \"c_{name}_seq\" ON {t} (seq);",
            d = docs_table(&collection.name),
            name = collection.name
        ))?;
        for index in &collection.indexes {
            let exprs: Vec<String> = index.fields.iter().map(|f| query::field_expr(f)).collect();
            let unique = if index.unique { "UNIQUE " } else { "" };
            tx.execute_batch(&format!(
                "CREATE {unique}INDEX IF NOT EXISTS {} ON {t} ({}) WHERE deleted = 0;",
                index_name(&collection.name, &index.fields),
                exprs.join(", ")
            ))?;
        }
        tx.exec(
            "INSERT INTO sealbase_collections (name, version, schema) VALUES (?1, ?2, ?3)
             ON CONFLICT (name) DO UPDATE SET version = ?2, schema = ?3",
            params![
                collection.name,
                collection.version,
                serde_json::to_string(&collection).unwrap_or_default()
            ],
        )?;
        tx.commit()?;
        self.collections.insert(collection.name.clone(), collection);
        Ok(())
    }

    /// [`Db::define`] for a schema whose version moved on: every stored
    /// record written under an older version is migrated, step by step
    /// (`migrations[&v]` takes version `v` to `v + 1`), validated, and
    /// persisted as a change of its document. Returns how many records
    /// were migrated. A record whose migration fails stays as it was and
    /// the error names it; defining again retries.
    ///
    /// The migrations are kept: a record that arrives through [`Db::merge`]
    /// written under an older version is migrated the same way first.
    pub fn define_migrated(
        &mut self,
        collection: Collection,
        migrations: std::collections::BTreeMap<u32, Migration>,
    ) -> Result<usize, DbError> {
        let result = self.migrate_stored(&collection, &migrations);
        self.migrations.insert(collection.name.clone(), migrations);
        result
    }

    fn migrate_stored(
        &mut self,
        collection: &Collection,
        migrations: &std::collections::BTreeMap<u32, Migration>,
    ) -> Result<usize, DbError> {
        self.define(collection.clone())?;
        let stale: Vec<(String, u32)> = {
            let mut stmt = self.conn.prepare(&format!(
                "SELECT id, schema_version FROM {} WHERE deleted = 0 AND schema_version < ?1 ORDER BY id",
                table(&collection.name)
            ))?;
            let rows =
                stmt.query_map([collection.version], |row| Ok((row.get(0)?, row.get(1)?)))?;
            rows.collect::<Result<Vec<_>, _>>()?
        };
        for (id, from) in &stale {
            let (mut d, created) = self.load(&collection.name, id)?;
            migrate_document(&mut d, collection, id, *from, migrations)?;
            let now = self.env.now_ms();
            self.commit(&mut d, now);
            self.store(collection, id, &mut d, created, now, false)?;
        }
        Ok(stale.len())
    }

    pub(crate) fn collection(&self, name: &str) -> Result<&Collection, DbError> {
        self.collections
            .get(name)
            .ok_or_else(|| DbError::UnknownCollection(name.to_owned()))
    }

    fn new_id(&self) -> String {
        let mut bytes = [0u8; 16];
        self.env.fill_random(&mut bytes);
        uuid::Builder::from_random_bytes(bytes)
            .into_uuid()
            .to_string()
    }

    fn new_doc(&self) -> AutoCommit {
        let mut actor = [0u8; 16];
        self.env.fill_random(&mut actor);
        AutoCommit::new().with_actor(ActorId::from(actor.as_slice()))
    }

    /// The collections defined in this session.
    pub(crate) fn collection_names(&self) -> Vec<String> {
        self.collections.keys().cloned().collect()
    }

    /// Records `did` as the author of every later local change.
    pub fn set_author(&mut self, did: Option<String>) {
        self.author = did;
    }

    fn commit(&self, doc: &mut AutoCommit, now: i64) {
        let mut options = automerge::transaction::CommitOptions::default().with_time(now);
        if let Some(author) = &self.author {
            options = options.with_message(author.clone());
        }
        doc.commit_with(options);
    }

    /// Inserts a new record; returns it with its automatic fields.
    pub fn insert(&mut self, collection: &str, record: Value) -> Result<Value, DbError> {
        let schema = self.collection(collection)?.clone();
        schema.validate(&record)?;
        let Value::Object(fields) = record else {
            return Err(SchemaError::NotAnObject.into());
        };
        let id = self.new_id();
        self.create(&schema, &id, &fields)
    }

    /// Inserts a new record under a caller-chosen id (a UUID where the
    /// record syncs, e.g. an id shared with another object); an id in use
    /// (even by a deleted record) is refused.
    pub fn insert_with_id(
        &mut self,
        collection: &str,
        id: &str,
        record: Value,
    ) -> Result<Value, DbError> {
        let schema = self.collection(collection)?.clone();
        schema.validate(&record)?;
        let Value::Object(fields) = record else {
            return Err(SchemaError::NotAnObject.into());
        };
        let taken: bool = self.conn.row(
            &format!(
                "SELECT EXISTS (SELECT 1 FROM {} WHERE id = ?1)",
                table(collection)
            ),
            [id],
            |row| row.get(0),
        )?;
        if taken {
            return Err(DbError::Unique {
                collection: collection.to_owned(),
                index: "id".into(),
            });
        }
        self.create(&schema, id, &fields)
    }

    fn create(
        &mut self,
        schema: &Collection,
        id: &str,
        fields: &Map<String, Value>,
    ) -> Result<Value, DbError> {
        let now = self.env.now_ms();
        let mut d = self.new_doc();
        doc::replace(&mut d, &schema.fields, fields).map_err(am)?;
        self.commit(&mut d, now);
        self.store(schema, id, &mut d, now, now, true)
    }

    /// The live record `id`, if any.
    pub fn get(&self, collection: &str, id: &str) -> Result<Option<Value>, DbError> {
        self.collection(collection)?;
        let json: Option<String> = self
            .conn
            .row(
                &format!(
                    "SELECT json(json) FROM {} WHERE id = ?1 AND deleted = 0",
                    table(collection)
                ),
                [id],
                |row| row.get(0),
            )
            .optional()?;
        json.map(|j| serde_json::from_str(&j).map_err(|e| DbError::Corrupt(e.to_string())))
            .transpose()
    }

    /// A live record's document, ready for a local change (with a fresh
    /// actor id for this session's edits).
    fn load(&self, collection: &str, id: &str) -> Result<(AutoCommit, i64), DbError> {
        let (mut d, created) = self.load_document(collection, id, true)?;
        let mut actor = [0u8; 16];
        self.env.fill_random(&mut actor);
        d.set_actor(ActorId::from(actor.as_slice()));
        Ok((d, created))
    }

    /// Changes the given fields of a record (`null` removes an optional
    /// field); the result must still satisfy the schema.
    pub fn patch(&mut self, collection: &str, id: &str, patch: Value) -> Result<Value, DbError> {
        let schema = self.collection(collection)?.clone();
        let Value::Object(patch) = patch else {
            return Err(SchemaError::NotAnObject.into());
        };
        for auto in crate::schema::AUTO_FIELDS {
            if patch.contains_key(*auto) {
                return Err(SchemaError::AutoField((*auto).to_owned()).into());
            }
        }
        let (mut d, created) = self.load(collection, id)?;
        doc::apply_patch(&mut d, &schema.fields, &patch).map_err(am)?;
        schema.validate(&Value::Object(doc::to_json(&d).map_err(am)?))?;
        let now = self.env.now_ms();
        self.commit(&mut d, now);
        self.store(&schema, id, &mut d, created, now, false)
    }

    /// Merges a remote version of a record (its Automerge document, as
    /// pulled by sync) into the local one: both sides' changes are kept and
    /// the CRDT resolves conflicts, so local edits not yet pushed survive. A
    /// record not known here is created; a deleted one stays deleted (its
    /// document still merges). The merged state must satisfy the schema, or
    /// nothing is stored.
    ///
    /// `version` is the schema version the remote writer used (the record
    /// envelope carries it): an older one is migrated first, with the
    /// migrations given to [`Db::define_migrated`]; a newer one is refused
    /// (this app is older than the writer), and nothing is stored.
    pub fn merge(
        &mut self,
        collection: &str,
        id: &str,
        remote: &[u8],
        version: u32,
    ) -> Result<Value, DbError> {
        let outcome =
            self.merge_document(collection, id, remote, version, None, &SyncMark::Local)?;
        Ok(outcome.record)
    }

    /// The merge behind [`Db::merge`] and [`Db::merge_remote`]. With
    /// `heads`, the remote document must have exactly these heads (the
    /// ones its author signed). `mark` says how the sync bookkeeping
    /// changes.
    pub(crate) fn merge_document(
        &mut self,
        collection: &str,
        id: &str,
        remote: &[u8],
        version: u32,
        heads: Option<&[[u8; 32]]>,
        mark: &SyncMark,
    ) -> Result<Merged, DbError> {
        let schema = self.collection(collection)?.clone();
        let mut incoming = AutoCommit::load(remote).map_err(am)?;
        if let Some(signed) = heads {
            let mut signed = signed.to_vec();
            signed.sort_unstable();
            signed.dedup();
            if sorted_heads(&mut incoming) != signed {
                return Err(DbError::HeadsMismatch { id: id.to_owned() });
            }
        }
        if version > schema.version {
            return Err(DbError::Migration {
                collection: collection.to_owned(),
                id: id.to_owned(),
                from: version,
                reason: format!(
                    "written by schema version {version}, newer than {}",
                    schema.version
                ),
            });
        }
        let migrated = version < schema.version;
        if migrated {
            let no_migrations = std::collections::BTreeMap::new();
            let migrations = self.migrations.get(collection).unwrap_or(&no_migrations);
            let mut actor = [0u8; 16];
            self.env.fill_random(&mut actor);
            incoming.set_actor(ActorId::from(actor.as_slice()));
            migrate_document(&mut incoming, &schema, id, version, migrations)?;
            self.commit(&mut incoming, self.env.now_ms());
        }
        let remote_heads = sorted_heads(&mut incoming);
        let existing = self.load_row(collection, id)?;
        let now = self.env.now_ms();
        let (mut d, created, updated, new, deleted) = match existing {
            Some(mut row) => {
                let before = row.doc.get_heads();
                row.doc.merge(&mut incoming).map_err(am)?;
                if row.doc.get_heads() == before {
                    // Nothing new: only the bookkeeping moves.
                    let dirty = row.deleted || sorted_heads(&mut row.doc) != remote_heads;
                    crate::sync::mark_unchanged(&self.conn, id, mark, dirty)?;
                    let mut json = doc::to_json(&row.doc).map_err(am)?;
                    add_auto_fields(&mut json, id, row.created, row.updated);
                    return Ok(Merged {
                        record: Value::Object(json),
                        changed: false,
                        deleted: row.deleted,
                    });
                }
                let latest = row
                    .doc
                    .get_changes_meta(&before)
                    .iter()
                    .map(|c| c.timestamp)
                    .max()
                    .unwrap_or(now);
                (
                    row.doc,
                    row.created,
                    row.updated.max(latest),
                    false,
                    row.deleted,
                )
            }
            None => {
                let times: Vec<i64> = incoming
                    .get_changes_meta(&[])
                    .iter()
                    .map(|c| c.timestamp)
                    .collect();
                let created = times.iter().copied().min().unwrap_or(now);
                let updated = times.iter().copied().max().unwrap_or(now);
                (incoming, created, updated, true, false)
            }
        };
        let fields = doc::to_json(&d).map_err(am)?;
        let fields = Value::Object(fields);
        schema.validate(&fields)?;
        let Value::Object(fields) = fields else {
            return Err(SchemaError::NotAnObject.into());
        };
        // Delete wins: a record deleted here stays deleted, and is still
        // pending so the tombstone reaches the server.
        let dirty = deleted || sorted_heads(&mut d) != remote_heads;
        let mark = mark.with_dirty(dirty);
        // A new record that needed no migration is stored as it came.
        let known = (new && !migrated).then_some((fields, remote));
        let record = self.store_marked(
            &schema, id, &mut d, created, updated, new, &mark, deleted, known,
        )?;
        Ok(Merged {
            record,
            changed: true,
            deleted,
        })
    }

    /// Replaces every field of a record.
    pub fn put(&mut self, collection: &str, id: &str, record: Value) -> Result<Value, DbError> {
        let schema = self.collection(collection)?.clone();
        schema.validate(&record)?;
        let Value::Object(fields) = record else {
            return Err(SchemaError::NotAnObject.into());
        };
        let (mut d, created) = self.load(collection, id)?;
        doc::replace(&mut d, &schema.fields, &fields).map_err(am)?;
        let now = self.env.now_ms();
        self.commit(&mut d, now);
        self.store(&schema, id, &mut d, created, now, false)
    }

    /// Deletes a record (its document stays as a tombstone). `false` if
    /// there was no live record.
    pub fn delete(&mut self, collection: &str, id: &str) -> Result<bool, DbError> {
        self.collection(collection)?;
        let tx = self.conn.savepoint()?;
        let seq = next_seq(&tx)?;
        let n = tx.exec(
            &format!(
                "UPDATE {} SET deleted = 1, updated_at = ?2, seq = ?3 WHERE id = ?1 AND deleted = 0",
                table(collection)
            ),
            params![id, self.env.now_ms(), seq],
        )?;
        if n == 1 {
            crate::sync::mark_deleted(&tx, id, seq, &SyncMark::Local)?;
        }
        tx.commit()?;
        if n == 1 {
            self.after_write(collection, id, true, seq)?;
        }
        Ok(n == 1)
    }

    fn store(
        &mut self,
        schema: &Collection,
        id: &str,
        d: &mut AutoCommit,
        created: i64,
        updated: i64,
        new: bool,
    ) -> Result<Value, DbError> {
        self.store_marked(
            schema,
            id,
            d,
            created,
            updated,
            new,
            &SyncMark::Local,
            false,
            None,
        )
    }

    /// Writes a record's state and document, and its sync bookkeeping.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn store_marked(
        &mut self,
        schema: &Collection,
        id: &str,
        d: &mut AutoCommit,
        created: i64,
        updated: i64,
        new: bool,
        mark: &SyncMark,
        deleted: bool,
        known: Option<(Map<String, Value>, &[u8])>,
    ) -> Result<Value, DbError> {
        // `known`: the document's fields and saved bytes, when the caller
        // has them already (a pulled record stored as it came).
        let (mut json, bytes) = match known {
            Some((fields, bytes)) => (fields, bytes.to_vec()),
            None => (doc::to_json(d).map_err(am)?, d.save()),
        };
        add_auto_fields(&mut json, id, created, updated);
        let text = Value::Object(json.clone()).to_string();
        let t = table(&schema.name);
        let tx = self.conn.savepoint()?;
        let seq = next_seq(&tx)?;
        let result = if new {
            tx.exec(
                &format!(
                    "INSERT INTO {t} (id, json, created_at, updated_at, deleted, seq, schema_version)
                     VALUES (?1, jsonb(?2), ?3, ?4, 0, ?5, ?6)"
                ),
                params![id, text, created, updated, seq, schema.version],
            )
        } else {
            tx.exec(
                &format!(
                    "UPDATE {t} SET json = jsonb(?2), updated_at = ?3, seq = ?4, \
                     schema_version = ?5 WHERE id = ?1"
                ),
                params![id, text, updated, seq, schema.version],
            )
        }
        .and_then(|_| {
            tx.exec(
                &format!(
                    "INSERT INTO {} (id, doc) VALUES (?1, ?2) \
                     ON CONFLICT (id) DO UPDATE SET doc = ?2",
                    docs_table(&schema.name)
                ),
                params![id, bytes],
            )
        })
        .and_then(|_| {
            crate::sync::mark_written(&tx, id, &schema.name, seq, &heads_bytes(d), mark)
        });
        match result {
            Ok(_) => {}
            Err(rusqlite::Error::SqliteFailure(e, msg))
                if e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE =>
            {
                let index = unique_index_of(schema, msg.as_deref());
                return Err(DbError::Unique {
                    collection: schema.name.clone(),
                    index,
                });
            }
            Err(e) => return Err(e.into()),
        }
        tx.commit()?;
        self.after_write(&schema.name, id, deleted, seq)?;
        Ok(Value::Object(json))
    }

    /// Records matching `q`, in its order.
    pub fn find(&self, collection: &str, q: &Query) -> Result<Vec<Value>, DbError> {
        let (sql, params) = self.select_sql(collection, q, "json(json)")?;
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt.query_map(params_from_iter(params), |row| row.get::<_, String>(0))?;
        let mut out = Vec::new();
        for row in rows {
            out.push(serde_json::from_str(&row?).map_err(|e| DbError::Corrupt(e.to_string()))?);
        }
        Ok(out)
    }

    /// How many live records match `filter`.
    pub fn count(&self, collection: &str, filter: &Value) -> Result<u64, DbError> {
        let schema = self.collection(collection)?;
        let c = query::compile_filter(schema, filter)?;
        let sql = format!(
            "SELECT COUNT(*) FROM {} AS r WHERE deleted = 0 AND ({})",
            table(collection),
            c.sql
        );
        let n: i64 = self
            .conn
            .row(&sql, params_from_iter(c.params), |row| row.get(0))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// SQLite's plan for `q` (one line per step), to check index use.
    pub fn explain(&self, collection: &str, q: &Query) -> Result<Vec<String>, DbError> {
        let (sql, params) = self.select_sql(collection, q, "json(json)")?;
        let mut stmt = self.conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?;
        let rows = stmt.query_map(params_from_iter(params), |row| row.get::<_, String>(3))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(Into::into)
    }

    fn select_sql(
        &self,
        collection: &str,
        q: &Query,
        columns: &str,
    ) -> Result<(String, Vec<rusqlite::types::Value>), DbError> {
        let schema = self.collection(collection)?;
        let c = query::compile_filter(schema, &q.filter)?;
        let order = query::compile_sort(schema, &q.sort)?;
        let mut sql = format!(
            "SELECT {columns} FROM {} AS r WHERE deleted = 0 AND ({}) ORDER BY {order}",
            table(collection),
            c.sql
        );
        let mut params = c.params;
        match (q.limit, q.offset) {
            (None, None) => {}
            (limit, offset) => {
                sql.push_str(" LIMIT ? OFFSET ?");
                params.push(rusqlite::types::Value::Integer(
                    limit.map_or(-1, |l| i64::try_from(l).unwrap_or(i64::MAX)),
                ));
                params.push(rusqlite::types::Value::Integer(
                    offset.map_or(0, |o| i64::try_from(o).unwrap_or(i64::MAX)),
                ));
            }
        }
        Ok((sql, params))
    }

    /// Reacts to a committed write: queues its event and re-evaluates the
    /// live queries it can affect (the record was in their result, or
    /// matches their filter now); others are not touched.
    pub(crate) fn after_write(
        &mut self,
        collection: &str,
        id: &str,
        deleted: bool,
        seq: i64,
    ) -> Result<(), DbError> {
        self.events.push(Change {
            collection: collection.to_owned(),
            id: id.to_owned(),
            seq,
            deleted,
        });
        let ids: Vec<LiveQueryId> = self
            .live
            .iter()
            .filter(|(_, l)| l.collection == collection)
            .map(|(k, _)| *k)
            .collect();
        for key in ids {
            let Some(live) = self.live.get(&key) else {
                continue;
            };
            let affected =
                live.ids.contains(id) || (!deleted && self.matches(collection, &live.query, id)?);
            if !affected {
                continue;
            }
            self.reevaluate(key)?;
        }
        Ok(())
    }

    /// Runs live query `key` again; marks it changed if its result did.
    fn reevaluate(&mut self, key: LiveQueryId) -> Result<(), DbError> {
        let Some(live) = self.live.get(&key) else {
            return Ok(());
        };
        let (collection, query) = (live.collection.clone(), live.query.clone());
        let result = self.find(&collection, &query)?;
        self.evaluations += 1;
        if let Some(live) = self.live.get_mut(&key)
            && live.result != result
        {
            live.ids = result
                .iter()
                .filter_map(|r| r["id"].as_str().map(str::to_owned))
                .collect();
            live.result = result;
            live.changed = true;
        }
        Ok(())
    }

    /// Whether live record `id` satisfies `query`'s filter (same SQL as
    /// [`Db::find`]).
    fn matches(&self, collection: &str, query: &Query, id: &str) -> Result<bool, DbError> {
        let schema = self.collection(collection)?;
        let c = query::compile_filter(schema, &query.filter)?;
        let sql = format!(
            "SELECT 1 FROM {} AS r WHERE id = ? AND deleted = 0 AND ({})",
            table(collection),
            c.sql
        );
        let mut params = vec![rusqlite::types::Value::Text(id.to_owned())];
        params.extend(c.params);
        Ok(self
            .conn
            .row(&sql, params_from_iter(params), |_| Ok(()))
            .optional()?
            .is_some())
    }

    /// Starts a live query; returns its id and current result.
    pub fn observe(
        &mut self,
        collection: &str,
        query: Query,
    ) -> Result<(LiveQueryId, Vec<Value>), DbError> {
        let result = self.find(collection, &query)?;
        let id = self.next_live;
        self.next_live += 1;
        self.live.insert(
            id,
            Live {
                collection: collection.to_owned(),
                query,
                ids: result
                    .iter()
                    .filter_map(|r| r["id"].as_str().map(str::to_owned))
                    .collect(),
                result: result.clone(),
                changed: false,
            },
        );
        Ok((id, result))
    }

    /// Ends a live query.
    pub fn unobserve(&mut self, id: LiveQueryId) {
        self.live.remove(&id);
    }

    /// Live queries whose result changed since the last call, with their
    /// new results.
    pub fn take_live_updates(&mut self) -> Vec<(LiveQueryId, Vec<Value>)> {
        let mut out: Vec<(LiveQueryId, Vec<Value>)> = self
            .live
            .iter_mut()
            .filter(|(_, l)| l.changed)
            .map(|(k, l)| {
                l.changed = false;
                (*k, l.result.clone())
            })
            .collect();
        out.sort_by_key(|(k, _)| *k);
        out
    }

    pub(crate) fn events_len(&self) -> usize {
        self.events.len()
    }

    /// After a rolled-back batch: its events never happened, and live
    /// queries are evaluated again from what is stored.
    pub(crate) fn rolled_back(&mut self, events: usize) -> Result<(), DbError> {
        self.events.truncate(events);
        let keys: Vec<LiveQueryId> = self.live.keys().copied().collect();
        for key in keys {
            self.reevaluate(key)?;
        }
        Ok(())
    }

    /// Change events (one per committed write) since the last call.
    pub fn take_events(&mut self) -> Vec<Change> {
        std::mem::take(&mut self.events)
    }

    /// How many times live queries were re-run (diagnostics and tests).
    pub fn live_evaluations(&self) -> u64 {
        self.evaluations
    }

    /// The feed position of the latest local write (0 before any).
    pub fn cursor(&self) -> Result<i64, DbError> {
        Ok(self
            .conn
            .row("SELECT seq FROM sealbase_seq WHERE id = 1", [], |row| {
                row.get(0)
            })?)
    }

    /// Records written or deleted after `cursor`, oldest first, at most
    /// `limit`: each record once, at its latest change. An incremental
    /// indexer keeps the last `seq` it saw and asks again from there.
    pub fn changes_since(&self, cursor: i64, limit: usize) -> Result<Vec<Change>, DbError> {
        let mut names: Vec<&String> = self.collections.keys().collect();
        names.sort();
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let parts: Vec<String> = names
            .iter()
            .map(|name| {
                format!(
                    "SELECT '{name}' AS collection, id, seq, deleted FROM {} WHERE seq > ?1",
                    table(name)
                )
            })
            .collect();
        let sql = format!("{} ORDER BY seq LIMIT ?2", parts.join(" UNION ALL "));
        let mut stmt = self.conn.prepare(&sql)?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = stmt.query_map(params![cursor, limit], |row| {
            Ok(Change {
                collection: row.get(0)?,
                id: row.get(1)?,
                seq: row.get(2)?,
                deleted: row.get::<_, i64>(3)? != 0,
            })
        })?;
        rows.collect::<Result<Vec<_>, _>>().map_err(Into::into)
    }

    /// A record's document and creation time; with `live_only`, deleted
    /// records count as missing.
    fn load_document(
        &self,
        collection: &str,
        id: &str,
        live_only: bool,
    ) -> Result<(AutoCommit, i64), DbError> {
        let live = if live_only { " AND r.deleted = 0" } else { "" };
        let row: Option<(Vec<u8>, i64)> = self
            .conn
            .row(
                &format!(
                    "SELECT d.doc, r.created_at FROM {} AS r JOIN {} AS d ON d.id = r.id \
                     WHERE r.id = ?1{live}",
                    table(collection),
                    docs_table(collection)
                ),
                [id],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()?;
        let (bytes, created) = row.ok_or_else(|| DbError::NotFound {
            collection: collection.to_owned(),
            id: id.to_owned(),
        })?;
        Ok((AutoCommit::load(&bytes).map_err(am)?, created))
    }

    /// A record's document, times and deletion flag, if it exists.
    pub(crate) fn load_row(&self, collection: &str, id: &str) -> Result<Option<Row>, DbError> {
        let row: Option<(Vec<u8>, i64, i64, bool)> = self
            .conn
            .row(
                &format!(
                    "SELECT d.doc, r.created_at, r.updated_at, r.deleted FROM {} AS r \
                     JOIN {} AS d ON d.id = r.id WHERE r.id = ?1",
                    table(collection),
                    docs_table(collection)
                ),
                [id],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)),
            )
            .optional()?;
        row.map(|(bytes, created, updated, deleted)| {
            Ok(Row {
                doc: AutoCommit::load(&bytes).map_err(am)?,
                created,
                updated,
                deleted,
            })
        })
        .transpose()
    }

    /// Every version of a record, oldest first (also after its deletion,
    /// until compaction).
    pub fn history(&self, collection: &str, id: &str) -> Result<Vec<Version>, DbError> {
        self.collection(collection)?;
        let (mut d, _) = self.load_document(collection, id, false)?;
        // Metadata only: the changes' operations are not rebuilt.
        Ok(d.get_changes_meta(&[])
            .iter()
            .map(|c| Version {
                hash: c.hash.to_string(),
                author: c.message.as_deref().map(str::to_owned),
                time: c.timestamp,
            })
            .collect())
    }

    /// The record as it was at `version` (a hash from [`Db::history`]):
    /// its fields and `id`.
    pub fn get_at(&self, collection: &str, id: &str, version: &str) -> Result<Value, DbError> {
        self.collection(collection)?;
        let (mut d, _) = self.load_document(collection, id, false)?;
        let hash: automerge::ChangeHash = version.parse().map_err(|_| DbError::NotFound {
            collection: collection.to_owned(),
            id: format!("{id} at {version}"),
        })?;
        if d.get_change_by_hash(&hash).is_none() {
            return Err(DbError::NotFound {
                collection: collection.to_owned(),
                id: format!("{id} at {version}"),
            });
        }
        let then = d.fork_at(&[hash]).map_err(am)?;
        let mut json = doc::to_json(&then).map_err(am)?;
        json.insert("id".into(), Value::String(id.to_owned()));
        Ok(Value::Object(json))
    }

    /// The Automerge document of a record (live or deleted), for sync.
    pub fn document(&self, collection: &str, id: &str) -> Result<Option<Vec<u8>>, DbError> {
        self.collection(collection)?;
        Ok(self
            .conn
            .row(
                &format!("SELECT doc FROM {} WHERE id = ?1", docs_table(collection)),
                [id],
                |row| row.get(0),
            )
            .optional()?)
    }
}

/// Runs the migration steps from `from` to the collection's version on a
/// document's fields, validates the result and writes it into the
/// document (uncommitted).
fn migrate_document(
    d: &mut AutoCommit,
    collection: &Collection,
    id: &str,
    from: u32,
    migrations: &std::collections::BTreeMap<u32, Migration>,
) -> Result<(), DbError> {
    let failed = |reason: String| DbError::Migration {
        collection: collection.name.clone(),
        id: id.to_owned(),
        from,
        reason,
    };
    let mut fields = doc::to_json(d).map_err(am)?;
    for version in from..collection.version {
        let step = migrations
            .get(&version)
            .ok_or_else(|| failed(format!("no migration from version {version}")))?;
        fields = step(fields).map_err(failed)?;
    }
    collection
        .validate(&Value::Object(fields.clone()))
        .map_err(|e| failed(e.to_string()))?;
    doc::replace(d, &collection.fields, &fields).map_err(am)
}

pub(crate) fn next_seq(tx: &Connection) -> Result<i64, rusqlite::Error> {
    tx.row(
        "UPDATE sealbase_seq SET seq = seq + 1 WHERE id = 1 RETURNING seq",
        [],
        |row| row.get(0),
    )
}

/// Names the unique index SQLite reported (by its fields), or all of them.
fn unique_index_of(schema: &Collection, message: Option<&str>) -> String {
    let unique: Vec<&crate::schema::Index> = schema.indexes.iter().filter(|i| i.unique).collect();
    let found = unique.iter().find(|i| {
        message.is_some_and(|m| {
            i.fields.iter().all(|f| {
                m.contains(&format!("'$.{f}'")) || m.contains(&index_name(&schema.name, &i.fields))
            })
        })
    });
    match (found, unique.as_slice()) {
        (Some(i), _) | (None, [i]) => i.fields.join(", "),
        _ => "unique fields".to_owned(),
    }
}

fn add_auto_fields(json: &mut Map<String, Value>, id: &str, created: i64, updated: i64) {
    json.insert("id".into(), Value::String(id.to_owned()));
    json.insert("createdAt".into(), Value::from(created));
    json.insert("updatedAt".into(), Value::from(updated));
}

/// A document's heads, sorted (as they are signed).
pub(crate) fn sorted_heads(d: &mut AutoCommit) -> Vec<[u8; 32]> {
    let mut heads: Vec<[u8; 32]> = d.get_heads().into_iter().map(|h| h.0).collect();
    heads.sort_unstable();
    heads
}

/// The heads as stored: 32 bytes each, sorted.
fn heads_bytes(d: &mut AutoCommit) -> Vec<u8> {
    sorted_heads(d).concat()
}

/// A stored record, loaded.
pub(crate) struct Row {
    pub(crate) doc: AutoCommit,
    pub(crate) created: i64,
    pub(crate) updated: i64,
    pub(crate) deleted: bool,
}

/// What a merge did.
#[derive(Debug, Clone, PartialEq)]
pub struct Merged {
    /// The record after the merge (with its automatic fields).
    pub record: Value,
    /// The merge added changes (false: the local document had them all).
    pub changed: bool,
    /// The record is deleted here (delete wins over concurrent edits).
    pub deleted: bool,
}

/// How a write changes a record's sync bookkeeping.
#[derive(Debug, Clone)]
pub(crate) enum SyncMark {
    /// A local edit: the record is pending.
    Local,
    /// A version from the server at `cursor` in `space`; pending only if
    /// the merged document has changes the server's lacks.
    Remote {
        space: String,
        cursor: u64,
        dirty: bool,
    },
}

impl SyncMark {
    fn with_dirty(&self, dirty: bool) -> SyncMark {
        match self {
            SyncMark::Local => SyncMark::Local,
            SyncMark::Remote { space, cursor, .. } => SyncMark::Remote {
                space: space.clone(),
                cursor: *cursor,
                dirty,
            },
        }
    }
}
