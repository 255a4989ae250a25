//! Server storage: one small API, one module per backend.
//!
//! [`Store`] dispatches to [`sqlite`] (the embedded default, WAL mode) or
//! [`postgres`] (production, many server instances), chosen by the URL
//! scheme of `DATABASE_URL`. Handlers call these methods and never see SQL.
//!
//! Invariants every backend keeps:
//! - every space has one monotonic cursor; a push batch moves it by exactly
//!   one and every record of the batch gets that cursor;
//! - a push is atomic: either every change is written or none, and it is
//!   refused as a conflict when any `expected_cursor` differs from the
//!   record's current cursor (0 = the record must not exist);
//! - records are keyed by `(space, id)`, never by id alone;
//! - a deleted record stays as a tombstone (no blob, no key) at the cursor
//!   of its deletion, and the push that deletes it removes its files' rows in
//!   the same transaction (their objects are deleted after the commit);
//! - a file row is inserted only after its object is complete, in one
//!   transaction that moves the space cursor by one; files are immutable, so
//!   a second insert of the same `(space, id)` writes nothing;
//! - pulls read in `(cursor, id)` order straight from an index, a page at a
//!   time, so the first record comes back without sorting the space.

pub mod postgres;
pub mod sqlite;

use sealbase_protocol::{
    Bytes, Change, FileMeta, Hash, KeyOwner, MembershipEntry, RecipientKey, RecordCursor,
    SealedEpochKey, WrappedDek, WrappedKey,
};
use uuid::Uuid;

/// What went wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed or is unreachable.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// Reading a pull page of a SQLite file failed.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The thread reading a pull page of a SQLite file is gone.
    #[error("database reader thread failed")]
    ReaderFailed,
    /// Applying migrations failed.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// `DATABASE_URL` names no supported backend.
    #[error("unsupported DATABASE_URL {0:?}: use sqlite://PATH or postgres://…")]
    UnsupportedUrl(String),
    /// The space exists but is not this user's personal space.
    #[error("space {0} is not this user's personal space")]
    NotOwner(Uuid),
    /// The space does not exist (a push to it writes nothing).
    #[error("no such space {0}")]
    NoSuchSpace(Uuid),
    /// The write would take the space's billed user past the storage quota.
    #[error("storage quota exceeded: {used} of {quota} bytes used, this write needs {needed} more")]
    QuotaExceeded {
        /// Bytes the user's spaces store now.
        used: u64,
        /// The configured quota.
        quota: u64,
        /// Bytes the refused write adds.
        needed: u64,
    },
    /// A stored value is not what this version wrote (e.g. a wrapped key of
    /// the wrong length).
    #[error("corrupt stored value: {0}")]
    Corrupt(&'static str),
}

/// Whose a space is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpaceKind {
    /// A user's personal space: only that user's tokens reach it.
    Personal {
        /// The user.
        owner: Uuid,
    },
    /// A shared space: capability chains rooted at this DID reach it.
    Shared {
        /// The creator's `did:key`.
        root_did: String,
    },
}

/// A space and its current cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpaceInfo {
    /// The space.
    pub id: Uuid,
    /// Personal or shared.
    pub kind: SpaceKind,
    /// The cursor of its latest write (0: nothing written yet).
    pub cursor: u64,
    /// Tombstones with a cursor up to this one may have been compacted away:
    /// a pull from an older non-zero cursor must start over (`reset`).
    pub compacted: u64,
}

/// The outcome of a push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushOutcome {
    /// Written at `cursor`; `prev` was the space cursor before.
    Applied {
        /// The space cursor before the batch.
        prev: u64,
        /// The new space cursor (the cursor of every record in the batch).
        cursor: u64,
        /// Files of the records this batch deleted: their rows are gone,
        /// their objects are the caller's to delete.
        removed_files: Vec<FileObject>,
    },
    /// Nothing written: these records have moved on (cursor 0: absent).
    Conflict(Vec<RecordCursor>),
}

/// One record as stored: its latest version, or its tombstone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordRow {
    /// The record.
    pub id: Uuid,
    /// The cursor of the push that wrote (or deleted) it.
    pub cursor: u64,
    /// The blob and its 44-byte wrapped key; `None` for a tombstone.
    pub version: Option<(Vec<u8>, [u8; 44])>,
}

/// What a compaction pass removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Compaction {
    /// Spaces whose `compacted` cursor moved.
    pub spaces: u64,
    /// Tombstones dropped.
    pub tombstones: u64,
}

/// Tombstones dropped per transaction, so compacting a large space never
/// holds the (SQLite) write lock or a space's row lock for long.
const COMPACT_BATCH: i64 = 5_000;

/// The storage backend.
#[derive(Debug, Clone)]
pub enum Store {
    /// Embedded SQLite.
    Sqlite(sqlite::SqliteStore),
    /// PostgreSQL.
    Postgres(postgres::PostgresStore),
}

/// A cursor as the databases store it (`BIGINT`/`INTEGER`, i.e. `i64`).
/// `None` when it is beyond anything a store can hold.
fn cursor_to_db(cursor: u64) -> Option<i64> {
    i64::try_from(cursor).ok()
}

/// Unix seconds now, as stored (tombstone times).
fn unix_now() -> i64 {
    i64::try_from(crate::unix_now()).unwrap_or(i64::MAX)
}

/// Bytes of the blobs a batch writes.
fn blob_bytes(changes: &[Change]) -> i64 {
    changes
        .iter()
        .filter_map(|c| c.blob.as_ref())
        .fold(0i64, |sum, b| {
            sum.saturating_add(i64::try_from(b.len()).unwrap_or(i64::MAX))
        })
}

/// Refuses growing `billed`'s usage from `used` by `delta` past `quota`.
fn check_quota(quota: Option<i64>, used: i64, delta: i64) -> Result<(), StoreError> {
    match quota {
        Some(quota) if delta > 0 && used.saturating_add(delta) > quota => {
            Err(StoreError::QuotaExceeded {
                used: used.max(0).unsigned_abs(),
                quota: quota.max(0).unsigned_abs(),
                needed: delta.unsigned_abs(),
            })
        }
        _ => Ok(()),
    }
}

/// A stored cursor back as a protocol cursor; a negative one was never written
/// by this code (the schema forbids it).
fn cursor_from_db(cursor: i64) -> Result<u64, StoreError> {
    u64::try_from(cursor).map_err(|_| StoreError::Corrupt("negative cursor"))
}

/// The bounds of a pull page as stored values: rows with
/// `(cursor, id) > (lower.0, lower.1)` and `cursor <= upper`, or `None` when
/// nothing can match.
///
/// `since` and `after` collapse into the one exclusive lower bound the index
/// is walked from: `(since, max id)` skips exactly the rows at `since`.
fn pull_bounds(since: u64, upto: u64, after: Option<(u64, Uuid)>) -> Option<((i64, Uuid), i64)> {
    // Stored cursors fit in i64: a lower bound beyond it selects nothing, an
    // upper bound beyond it everything.
    let mut lower = (cursor_to_db(since)?, Uuid::from_u128(u128::MAX));
    if let Some((cursor, id)) = after {
        lower = lower.max((cursor_to_db(cursor)?, id));
    }
    let upper = cursor_to_db(upto).unwrap_or(i64::MAX);
    Some((lower, upper))
}

/// The byte budget of a pull page, applied as its rows are read: a row is
/// in the page while the blob bytes ahead of it are under `max`.
#[derive(Debug, Clone, Copy)]
struct PageBudget {
    max: u64,
    used: u64,
}

impl PageBudget {
    fn new(max: u64) -> Self {
        Self { max, used: 0 }
    }

    /// Whether the next row belongs in the page.
    fn has_room(&self) -> bool {
        self.used < self.max
    }

    /// Counts a row's blob (`None`: a tombstone, which weighs nothing).
    fn take(&mut self, blob: Option<&[u8]>) {
        self.used = self.used.saturating_add(blob.map_or(0, |b| b.len() as u64));
    }
}

/// Bytes of the blobs in `rows`.
pub fn page_bytes(rows: &[RecordRow]) -> u64 {
    rows.iter()
        .filter_map(|row| row.version.as_ref())
        .fold(0u64, |sum, (blob, _)| sum.saturating_add(blob.len() as u64))
}

/// A record version as stored: the blob and its wrapped key.
type Version = (Vec<u8>, [u8; 44]);

/// The stored half of a record version: the blob, and the wrapped key that
/// must be exactly 44 bytes. Both `None` is a tombstone.
fn record_version(
    blob: Option<Vec<u8>>,
    dek: Option<Vec<u8>>,
) -> Result<Option<Version>, StoreError> {
    match (blob, dek) {
        (None, None) => Ok(None),
        (Some(blob), Some(dek)) => {
            let dek = <[u8; 44]>::try_from(dek.as_slice())
                .map_err(|_| StoreError::Corrupt("wrapped key is not 44 bytes"))?;
            Ok(Some((blob, dek)))
        }
        _ => Err(StoreError::Corrupt(
            "record has a blob without a key or a key without a blob",
        )),
    }
}

/// The space kind from its stored columns.
fn space_kind(
    kind: &str,
    owner_user: Option<Uuid>,
    root_did: Option<String>,
) -> Result<SpaceKind, StoreError> {
    match (kind, owner_user, root_did) {
        ("personal", Some(owner), None) => Ok(SpaceKind::Personal { owner }),
        ("shared", None, Some(root_did)) => Ok(SpaceKind::Shared { root_did }),
        _ => Err(StoreError::Corrupt(
            "space kind does not match its owner columns",
        )),
    }
}

/// Whether an existing space may be returned as `owner`'s personal space.
fn check_personal(info: SpaceInfo, owner: Uuid) -> Result<SpaceInfo, StoreError> {
    match &info.kind {
        SpaceKind::Personal { owner: o } if *o == owner => Ok(info),
        _ => Err(StoreError::NotOwner(info.id)),
    }
}

/// Calls the same method on whichever backend this is.
macro_rules! dispatch {
    ($self:expr, $s:ident => $call:expr) => {
        match $self {
            Store::Sqlite($s) => $call,
            Store::Postgres($s) => $call,
        }
    };
}

// After `dispatch!`, which it uses.
pub mod invitations;
pub use invitations::{CreateOutcome, ListedInvitation, NewInvitation};

impl Store {
    /// Opens the database named by `url` (`sqlite://path`, `sqlite::memory:`,
    /// `postgres://…` or `postgresql://…`). SQLite creates the file (and its
    /// directory) if missing. Does not migrate; call [`Store::migrate`].
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        if url.starts_with("sqlite:") {
            Ok(Store::Sqlite(sqlite::SqliteStore::connect(url).await?))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Store::Postgres(
                postgres::PostgresStore::connect(url).await?,
            ))
        } else {
            Err(StoreError::UnsupportedUrl(url.to_owned()))
        }
    }

    /// Copies SQLite's write-ahead log into the database file (see
    /// [`sqlite::SqliteStore::checkpoint`]); `None` where there is nothing
    /// of the kind to do (Postgres checkpoints on its own, an in-memory
    /// SQLite database has no log).
    pub async fn checkpoint(&self) -> Result<Option<sqlite::WalCheckpoint>, StoreError> {
        match self {
            Store::Sqlite(s) => s.checkpoint().await,
            Store::Postgres(_) => Ok(None),
        }
    }

    /// Closes every connection once those in use are returned; calls after
    /// this fail. On SQLite the database file is then complete on its own
    /// (the write-ahead log is copied into it and removed), so it can be
    /// copied as is.
    pub async fn close(&self) {
        match self {
            Store::Sqlite(s) => s.close().await,
            Store::Postgres(p) => p.close().await,
        }
    }

    /// Whether the store keeps a SQLite write-ahead log the server must
    /// checkpoint (a database file; not Postgres, not in memory).
    pub fn has_wal(&self) -> bool {
        match self {
            Store::Sqlite(s) => s.has_wal(),
            Store::Postgres(_) => false,
        }
    }

    /// The backend's name, for logs and metrics.
    pub fn backend(&self) -> &'static str {
        match self {
            Store::Sqlite(_) => "sqlite",
            Store::Postgres(_) => "postgres",
        }
    }

    /// The same database, with pushes announced as coming from server
    /// instance `instance` (Postgres; SQLite has one process and announces
    /// nothing).
    pub fn with_instance(&self, instance: Uuid) -> Self {
        match self {
            Store::Sqlite(s) => Store::Sqlite(s.clone()),
            Store::Postgres(s) => Store::Postgres(s.with_instance(instance)),
        }
    }

    /// The same database, refusing writes that would take a user's spaces
    /// past `quota` bytes of ciphertext (`None`: unlimited). A space counts
    /// against its owner (personal) or creator (shared).
    pub fn with_quota(&self, quota: Option<u64>) -> Self {
        let quota = quota.map(|q| i64::try_from(q).unwrap_or(i64::MAX));
        match self {
            Store::Sqlite(s) => Store::Sqlite(s.with_quota(quota)),
            Store::Postgres(s) => Store::Postgres(s.with_quota(quota)),
        }
    }

    /// Bytes of ciphertext stored in the spaces that count against `user`.
    pub async fn usage(&self, user: Uuid) -> Result<u64, StoreError> {
        dispatch!(self, s => s.usage(user).await)
    }

    /// Applies pending migrations.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        dispatch!(self, s => s.migrate().await)
    }

    /// Checks the database answers (for `/health`).
    pub async fn ping(&self) -> Result<(), StoreError> {
        dispatch!(self, s => s.ping().await)
    }

    /// Returns the user's personal space, creating it on first use. Fails
    /// with [`StoreError::NotOwner`] if `space` exists and is anything else.
    pub async fn ensure_personal_space(
        &self,
        space: Uuid,
        owner: Uuid,
    ) -> Result<SpaceInfo, StoreError> {
        dispatch!(self, s => s.ensure_personal_space(space, owner).await)
    }

    /// The space, if it exists.
    pub async fn space(&self, space: Uuid) -> Result<Option<SpaceInfo>, StoreError> {
        dispatch!(self, s => s.space(space).await)
    }

    /// Writes a batch atomically (see the module invariants). The space must
    /// exist; `changes` are already validated (`Validate`), non-empty and
    /// have unique ids.
    pub async fn push(&self, space: Uuid, changes: &[Change]) -> Result<PushOutcome, StoreError> {
        dispatch!(self, s => s.push(space, changes).await)
    }

    /// Records and tombstones of `space` with `since < cursor <= upto`, in
    /// `(cursor, id)` order, starting after `after` (the last row of the
    /// previous page), at most `limit` rows. The page also ends after the
    /// row whose blob takes the page's blob bytes to `max_bytes` or more, so
    /// a page of large blobs stays small (its first row is always there).
    pub async fn pull_page(
        &self,
        space: Uuid,
        since: u64,
        upto: u64,
        after: Option<(u64, Uuid)>,
        limit: u32,
        max_bytes: u64,
    ) -> Result<Vec<RecordRow>, StoreError> {
        dispatch!(self, s => s.pull_page(space, since, upto, after, limit, max_bytes).await)
    }
}

/// The outcome of a membership append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppendOutcome {
    /// Appended at `cursor`; `prev` was the space cursor before.
    Appended {
        /// The space cursor before the append.
        prev: u64,
        /// The entry's cursor.
        cursor: u64,
    },
    /// Nothing written: `prev_hash` is not the chain head, which is this
    /// (`None`: the log is empty).
    Conflict(Option<[u8; 32]>),
}

impl Store {
    /// Creates shared space `space` rooted at `root_did`, with its genesis
    /// membership entry (`hash` = SHA-256 of `entry`) and the epoch-1 key
    /// sealed to the root, all at cursor 1. Returns the creation cursor, also
    /// for a retry with identical content; `None` if the id is taken by
    /// anything else (another creator, other content, a personal space).
    pub async fn create_space(
        &self,
        space: Uuid,
        creator: Uuid,
        root_did: &str,
        entry: &[u8],
        hash: &[u8; 32],
        key: &[u8],
    ) -> Result<Option<u64>, StoreError> {
        dispatch!(self, s => s.create_space(space, creator, root_did, entry, hash, key).await)
    }

    /// Appends an entry if `prev_hash` is the chain head, at the next space
    /// cursor. Fails with [`StoreError::NoSuchSpace`] if the space is absent.
    pub async fn append_membership(
        &self,
        space: Uuid,
        prev_hash: &[u8; 32],
        hash: &[u8; 32],
        ciphertext: &[u8],
    ) -> Result<AppendOutcome, StoreError> {
        dispatch!(self, s => s.append_membership(space, prev_hash, hash, ciphertext).await)
    }

    /// Membership entries with `cursor > since`, in chain order, at most
    /// `limit`.
    pub async fn membership_page(
        &self,
        space: Uuid,
        since: u64,
        limit: u32,
    ) -> Result<Vec<MembershipEntry>, StoreError> {
        dispatch!(self, s => s.membership_page(space, since, limit).await)
    }

    /// Stores a revoked token hash for `space` (idempotent).
    pub async fn revoke(&self, space: Uuid, token_hash: &[u8; 32]) -> Result<(), StoreError> {
        dispatch!(self, s => s.revoke(space, token_hash).await)
    }

    /// Every revoked token hash of `space`.
    pub async fn revocations(&self, space: Uuid) -> Result<Vec<[u8; 32]>, StoreError> {
        dispatch!(self, s => s.revocations(space).await)
    }

    /// Drops the tombstones deleted before `cutoff` (Unix seconds), in at
    /// most `max_spaces` spaces per call. Each affected space's `compacted`
    /// cursor first moves up to its newest such tombstone, in the
    /// transaction that drops the first of them, so a pull from an older
    /// cursor is answered with `reset` instead of silently missing deletes.
    /// Idempotent; safe to run on several instances at once.
    pub async fn compact(&self, cutoff: u64, max_spaces: u32) -> Result<Compaction, StoreError> {
        let cutoff = cursor_to_db(cutoff).unwrap_or(i64::MAX);
        match self {
            Store::Sqlite(s) => s.compact(cutoff, i64::from(max_spaces)).await,
            Store::Postgres(s) => s.compact(cutoff, i64::from(max_spaces)).await,
        }
    }
}

/// A stored 32-byte hash.
fn hash_from_db(bytes: &[u8]) -> Result<[u8; 32], StoreError> {
    <[u8; 32]>::try_from(bytes).map_err(|_| StoreError::Corrupt("hash is not 32 bytes"))
}

/// A membership row (cursor, prev_hash, hash, ciphertext) as a protocol entry.
fn membership_entry(
    cursor: i64,
    prev_hash: Option<Vec<u8>>,
    hash: Vec<u8>,
    ciphertext: Vec<u8>,
) -> Result<MembershipEntry, StoreError> {
    Ok(MembershipEntry {
        cursor: cursor_from_db(cursor)?,
        prev_hash: prev_hash
            .as_deref()
            .map(hash_from_db)
            .transpose()?
            .map(Hash),
        hash: Hash(hash_from_db(&hash)?),
        ciphertext: Bytes(ciphertext),
    })
}

/// A space's key epoch: the newest begun one and whether its rotation is
/// complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochState {
    /// The newest begun epoch.
    pub current: u32,
    /// Every record and file key has been rewrapped to `current`.
    pub complete: bool,
}

/// The outcome of `epoch.begin`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BeginOutcome {
    /// The new epoch and its sealed keys were stored at `cursor`.
    Begun {
        /// The space cursor before.
        prev: u64,
        /// The cursor of the sealed keys.
        cursor: u64,
    },
    /// The requested epoch is not current + 1.
    NotNext(EpochState),
    /// The current epoch's rotation is not complete yet.
    Unfinished(EpochState),
}

/// The outcome of `epoch.complete`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompleteOutcome {
    /// The epoch is (now) complete.
    Complete,
    /// The epoch is not the current one.
    NotCurrent(EpochState),
    /// Some record or file key is still wrapped under an older epoch.
    KeysRemain,
}

/// An epoch as stored.
fn epoch_from_db(epoch: i64) -> Result<u32, StoreError> {
    u32::try_from(epoch).map_err(|_| StoreError::Corrupt("epoch out of range"))
}

/// The 4-byte prefix every key wrapped under an epoch below `epoch` sorts
/// below (byte order of a big-endian u32 is numeric order).
fn epoch_prefix(epoch: u32) -> [u8; 4] {
    epoch.to_be_bytes()
}

/// A stored 44-byte wrapped key.
fn wrapped_from_db(dek: &[u8]) -> Result<WrappedKey, StoreError> {
    WrappedKey::try_from(dek).map_err(|_| StoreError::Corrupt("wrapped key is not 44 bytes"))
}

impl Store {
    /// The space's epoch state, if the space exists.
    pub async fn epoch(&self, space: Uuid) -> Result<Option<EpochState>, StoreError> {
        dispatch!(self, s => s.epoch(space).await)
    }

    /// Begins `epoch` (must be current + 1, with the current one complete)
    /// and stores its key sealed to each recipient, at the next cursor.
    /// Recipients' DIDs are distinct.
    pub async fn begin_epoch(
        &self,
        space: Uuid,
        epoch: u32,
        keys: &[RecipientKey],
    ) -> Result<BeginOutcome, StoreError> {
        dispatch!(self, s => s.begin_epoch(space, epoch, keys).await)
    }

    /// Marks `epoch` complete if it is current and no record or file key of
    /// the space is wrapped under an older one.
    pub async fn complete_epoch(
        &self,
        space: Uuid,
        epoch: u32,
    ) -> Result<CompleteOutcome, StoreError> {
        dispatch!(self, s => s.complete_epoch(space, epoch).await)
    }

    /// Epoch keys of `space` sealed to `did`, oldest first.
    pub async fn sealed_keys(
        &self,
        space: Uuid,
        did: &str,
    ) -> Result<Vec<SealedEpochKey>, StoreError> {
        dispatch!(self, s => s.sealed_keys(space, did).await)
    }

    /// Record and file keys of `space` wrapped under an epoch below `below`,
    /// by id (then owner, records first), at most `limit`.
    pub async fn deks_below(
        &self,
        space: Uuid,
        below: u32,
        limit: u32,
    ) -> Result<Vec<WrappedDek>, StoreError> {
        dispatch!(self, s => s.deks_below(space, below, limit).await)
    }

    /// Replaces each record or file key whose record or file is still at the
    /// given cursor; returns how many were replaced and the ids skipped. The
    /// space cursor does not move.
    pub async fn rewrap(
        &self,
        space: Uuid,
        deks: &[WrappedDek],
    ) -> Result<(u32, Vec<Uuid>), StoreError> {
        dispatch!(self, s => s.rewrap(space, deks).await)
    }
}

/// A stored file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRow {
    /// The file.
    pub id: Uuid,
    /// The record it belongs to.
    pub record: Uuid,
    /// The space cursor of its upload.
    pub cursor: u64,
    /// Bytes of the stored (encrypted) body.
    pub size: u64,
    /// The wrapped file key.
    pub dek: WrappedKey,
    /// Names the object holding the bytes (unique per upload).
    pub upload: Uuid,
}

impl FileRow {
    /// The metadata clients see.
    pub fn meta(&self) -> FileMeta {
        FileMeta {
            id: self.id,
            record: self.record,
            cursor: self.cursor,
            size: self.size,
            dek: self.dek,
        }
    }
}

/// A completed upload to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewFile {
    /// The file.
    pub id: Uuid,
    /// The record it belongs to.
    pub record: Uuid,
    /// Bytes of the stored body.
    pub size: u64,
    /// The wrapped file key.
    pub dek: WrappedKey,
    /// Names the object already written.
    pub upload: Uuid,
    /// The user who uploaded it.
    pub uploader: Uuid,
}

/// The outcome of recording an upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileInsert {
    /// Recorded at `cursor`; `prev` was the space cursor before.
    Inserted {
        /// The space cursor before the upload.
        prev: u64,
        /// The file's cursor.
        cursor: u64,
    },
    /// Nothing written: the file id is already stored (files are immutable).
    Exists(FileRow),
    /// Nothing written: the record is deleted (its files would be deleted
    /// with it).
    RecordDeleted,
}

/// An object that holds (or held) a file's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileObject {
    /// The space.
    pub space: Uuid,
    /// The file.
    pub id: Uuid,
    /// The upload that wrote the object.
    pub upload: Uuid,
}

/// A file size as stored.
fn size_to_db(size: u64) -> Result<i64, StoreError> {
    i64::try_from(size).map_err(|_| StoreError::Corrupt("file size beyond i64"))
}

/// A stored file size.
fn size_from_db(size: i64) -> Result<u64, StoreError> {
    u64::try_from(size).map_err(|_| StoreError::Corrupt("negative file size"))
}

impl Store {
    /// The file, if stored.
    pub async fn file(&self, space: Uuid, id: Uuid) -> Result<Option<FileRow>, StoreError> {
        dispatch!(self, s => s.file(space, id).await)
    }

    /// Records a completed upload at the next space cursor, unless the file
    /// id is taken or the record is deleted (see [`FileInsert`]). Fails with
    /// [`StoreError::NoSuchSpace`] if the space is absent.
    pub async fn insert_file(&self, space: Uuid, file: &NewFile) -> Result<FileInsert, StoreError> {
        dispatch!(self, s => s.insert_file(space, file).await)
    }

    /// Files of `space` with `since < cursor <= upto`, in cursor order, at
    /// most `limit`.
    pub async fn files_page(
        &self,
        space: Uuid,
        since: u64,
        upto: u64,
        limit: u32,
    ) -> Result<Vec<FileRow>, StoreError> {
        dispatch!(self, s => s.files_page(space, since, upto, limit).await)
    }

    /// Removes the rows of every file belonging to one of `records` in one
    /// transaction and returns their objects, for the caller to delete. The
    /// space cursor does not move: clients learn of it from the records'
    /// tombstones. (A push that deletes records does this itself.)
    pub async fn delete_files_of_records(
        &self,
        space: Uuid,
        records: &[Uuid],
    ) -> Result<Vec<FileObject>, StoreError> {
        dispatch!(self, s => s.delete_files_of_records(space, records).await)
    }

    /// Which of `uploads` name a stored file (the rest are orphaned objects).
    pub async fn known_uploads(&self, uploads: &[Uuid]) -> Result<Vec<Uuid>, StoreError> {
        dispatch!(self, s => s.known_uploads(uploads).await)
    }
}
