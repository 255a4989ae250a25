//! The PostgreSQL backend (production; many server instances share it).
//!
//! A push locks its space row (`FOR UPDATE`), so pushes to one space
//! serialize across every instance while pushes to different spaces run in
//! parallel. Each step of a push is one statement whatever the batch size:
//! the current cursors of all its records are read with `= ANY($2)` and the
//! batch is written with one `INSERT … SELECT FROM UNNEST(…)`.
//!
//! Every applied push and every recorded file upload also sends a
//! [`PushSignal`] on [`CHANNEL`] with `pg_notify` inside its transaction, so
//! the signal is delivered exactly when (and only if) the write commits, in
//! commit order. It names the space, the cursors and the instance that wrote
//! it, never content; listeners read the records or file at those cursors.
//! Created invitations are announced the same way on
//! [`INVITATION_CHANNEL`]. Presence and events, which are never stored,
//! travel whole (already encrypted by clients) on [`EPHEMERAL_CHANNEL`];
//! their format is [`crate::fanout`]'s business, this module only sends
//! and receives the payloads.

// Interpolated SQL here only ever splices in constant column lists.
use futures_util::TryStreamExt;
use sqlx::AssertSqlSafe;
use std::collections::HashMap;
use std::time::Duration;

use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::postgres::types::Oid;
use sqlx::postgres::{
    PgArgumentBuffer, PgHasArrayType, PgListener, PgPool, PgPoolOptions, PgTypeInfo, PgValueFormat,
    PgValueRef,
};
use sqlx::{Decode, Encode, Postgres, Transaction, Type};

mod invitations;

use super::{
    AppendOutcome, BeginOutcome, Change, Compaction, CompleteOutcome, EpochState, FileInsert,
    FileObject, FileRow, KeyOwner, MembershipEntry, NewFile, PageBudget, PushOutcome, RecipientKey,
    RecordCursor, RecordRow, SealedEpochKey, SpaceInfo, StoreError, Uuid, WrappedDek, blob_bytes,
    check_personal, check_quota, cursor_from_db, cursor_to_db, epoch_from_db, epoch_prefix,
    hash_from_db, membership_entry, pull_bounds, record_version, size_from_db, size_to_db,
    space_kind, unix_now, wrapped_from_db,
};

/// Connections per server instance. Postgres serves a few hundred in
/// total; several instances share them.
const MAX_CONNECTIONS: u32 = 16;

/// Connections per server instance that read pull pages (on top of
/// [`MAX_CONNECTIONS`]).
const PULL_CONNECTIONS: u32 = 4;

/// How long a request waits for a free connection before failing.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// The `LISTEN/NOTIFY` channel that carries [`PushSignal`]s.
pub const CHANNEL: &str = "sealbase_sync";

/// The channel that carries [`InvitationSignal`]s.
pub const INVITATION_CHANNEL: &str = "sealbase_invitation";

/// The channel that carries presence and events between instances.
pub const EPHEMERAL_CHANNEL: &str = "sealbase_ephemeral";

/// The channel that carries [`RevocationSignal`]s.
pub const REVOCATION_CHANNEL: &str = "sealbase_revocation";

/// A PostgreSQL database.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
    /// Connections that read pull pages, with [`PULL_PAGE_SETTINGS`] set for
    /// their whole session: a page is one round trip, not four (begin,
    /// settings, query, commit).
    pages: PgPool,
    /// The server instance pushing through this handle, named in every
    /// [`PushSignal`] so it can ignore its own.
    instance: Uuid,
    /// Bytes a user's spaces may store.
    quota: Option<i64>,
}

/// What a committed push or file upload announces on [`CHANNEL`]: enough to
/// read the batch (or file) back (`prev < cursor <= cursor`), nothing of its
/// content. About 130 bytes
/// of JSON, far below Postgres' 8000-byte payload limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PushSignal {
    /// The server instance that applied the push.
    pub instance: Uuid,
    /// The space written.
    pub space: Uuid,
    /// The space cursor before the push.
    pub prev: u64,
    /// The space cursor after it.
    pub cursor: u64,
}

/// What a committed invitation announces on [`INVITATION_CHANNEL`]: enough
/// to find the recipient's connections and read the row back, nothing of
/// its payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct InvitationSignal {
    /// The server instance that stored it.
    pub instance: Uuid,
    /// The invitation.
    pub id: Uuid,
    /// The recipient's mailbox.
    pub mailbox: Uuid,
}

/// What a committed capability revocation announces on
/// [`REVOCATION_CHANNEL`]: the space and the revoked token's hash (a hash
/// of a token, not a secret: revocations are stored the same way).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RevocationSignal {
    /// The server instance that stored it.
    pub instance: Uuid,
    /// The space.
    pub space: Uuid,
    /// SHA-256 of the revoked compact token, in hex.
    pub token_hash: String,
}

/// Something another instance (or this one) announced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signal {
    /// A push committed ([`CHANNEL`]).
    Push(PushSignal),
    /// An invitation was created ([`INVITATION_CHANNEL`]).
    Invitation(InvitationSignal),
    /// One payload of [`EPHEMERAL_CHANNEL`], as sent.
    Ephemeral(String),
    /// A capability was revoked ([`REVOCATION_CHANNEL`]).
    Revocation(RevocationSignal),
}

/// A dedicated connection listening on [`CHANNEL`], [`INVITATION_CHANNEL`],
/// [`EPHEMERAL_CHANNEL`] and [`REVOCATION_CHANNEL`].
#[derive(Debug)]
pub struct SignalListener {
    listener: PgListener,
}

impl SignalListener {
    /// The next signal; `None` when the connection was lost and has been
    /// re-established, so signals may have been missed meanwhile. An error
    /// means it could not be re-established: drop this listener and open a
    /// new one later.
    pub async fn next(&mut self) -> Result<Option<Signal>, StoreError> {
        loop {
            let Some(notification) = self.listener.try_recv().await? else {
                return Ok(None);
            };
            let payload = notification.payload();
            let signal = match notification.channel() {
                EPHEMERAL_CHANNEL => return Ok(Some(Signal::Ephemeral(payload.to_owned()))),
                INVITATION_CHANNEL => serde_json::from_str(payload).map(Signal::Invitation),
                REVOCATION_CHANNEL => serde_json::from_str(payload).map(Signal::Revocation),
                _ => serde_json::from_str(payload).map(Signal::Push),
            };
            match signal {
                Ok(signal) => return Ok(Some(signal)),
                // Written by another version, or by hand: not ours to act on.
                Err(e) => tracing::warn!(
                    channel = notification.channel(),
                    error = %e,
                    "ignoring an unreadable signal"
                ),
            }
        }
    }
}

/// A UUID in Postgres' binary `uuid` form (its 16 bytes).
///
/// The workspace builds sqlx without its `uuid` feature; this is the whole
/// of what that feature would add for us.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct PgUuid(Uuid);

/// The built-in OIDs of `uuid` and `uuid[]` (fixed in `pg_type.dat`).
const UUID_OID: Oid = Oid(2950);
const UUID_ARRAY_OID: Oid = Oid(2951);

impl Type<Postgres> for PgUuid {
    fn type_info() -> PgTypeInfo {
        PgTypeInfo::with_oid(UUID_OID)
    }
}

impl PgHasArrayType for PgUuid {
    fn array_type_info() -> PgTypeInfo {
        PgTypeInfo::with_oid(UUID_ARRAY_OID)
    }
}

impl Encode<'_, Postgres> for PgUuid {
    fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
        buf.extend_from_slice(self.0.as_bytes());
        Ok(IsNull::No)
    }
}

impl Decode<'_, Postgres> for PgUuid {
    fn decode(value: PgValueRef<'_>) -> Result<Self, BoxDynError> {
        let uuid = match value.format() {
            PgValueFormat::Binary => Uuid::from_slice(value.as_bytes()?)?,
            PgValueFormat::Text => Uuid::parse_str(value.as_str()?)?,
        };
        Ok(Self(uuid))
    }
}

/// A space row: kind, owner_user, root_did, cursor, compacted.
type SpaceRow = (String, Option<PgUuid>, Option<String>, i64, i64);

/// A record row: id, cursor, blob, dek.
type RecordTuple = (PgUuid, i64, Option<Vec<u8>>, Option<Vec<u8>>);

/// Planner settings of the connections that read [`PULL_PAGE`] (they run
/// nothing else). Rows written since
/// the table was last analyzed (a space filled a moment ago) are estimated
/// at a handful, and the planner then prefers a bitmap scan of every row in
/// range plus a sort to walking the index: 20 ms instead of 0.8 ms per
/// 500-row page of a 20k-record space, on every page. Pages must come in
/// index order, so these connections rule the other plans out.
pub const PULL_PAGE_SETTINGS: &str = "SELECT set_config('enable_bitmapscan', 'off', false),
        set_config('enable_sort', 'off', false)";

/// One page of a pull: `$1` space, after `($2, $3)` = (cursor, id), up to
/// cursor `$4`, at most `$5` rows, in `records_by_cursor` order.
pub const PULL_PAGE: &str = "SELECT id, cursor, blob, dek FROM records
     WHERE space_id = $1
       AND (cursor, id) > ($2, $3)
       AND cursor <= $4
     ORDER BY cursor, id
     LIMIT $5";

impl PostgresStore {
    /// Connects a pool to `url`.
    pub(crate) async fn connect(url: &str) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect(url)
            .await?;
        let pages = PgPoolOptions::new()
            .max_connections(PULL_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .after_connect(|conn, _| {
                Box::pin(async move {
                    sqlx::query(PULL_PAGE_SETTINGS).execute(conn).await?;
                    Ok(())
                })
            })
            .connect_lazy(url)?;
        Ok(Self {
            pool,
            pages,
            instance: Uuid::nil(),
            quota: None,
        })
    }

    /// See [`super::Store::with_quota`].
    pub(crate) fn with_quota(&self, quota: Option<i64>) -> Self {
        Self {
            quota,
            ..self.clone()
        }
    }

    /// See [`super::Store::close`].
    pub(crate) async fn close(&self) {
        self.pages.close().await;
        self.pool.close().await;
    }

    /// See [`super::Store::usage`].
    pub(crate) async fn usage(&self, user: Uuid) -> Result<u64, StoreError> {
        let used: i64 = sqlx::query_scalar(
            "SELECT coalesce(sum(bytes), 0)::bigint FROM spaces WHERE billed_user = $1",
        )
        .bind(PgUuid(user))
        .fetch_one(&self.pool)
        .await?;
        Ok(used.max(0).unsigned_abs())
    }

    /// The same database, pushing as server instance `instance`.
    pub(crate) fn with_instance(&self, instance: Uuid) -> Self {
        Self {
            instance,
            ..self.clone()
        }
    }

    /// The instance named in this handle's push signals.
    pub fn instance(&self) -> Uuid {
        self.instance
    }

    /// Opens a connection (from the pool, held for as long as the listener
    /// lives) listening for push, invitation and ephemeral signals.
    pub async fn listen(&self) -> Result<SignalListener, StoreError> {
        let mut listener = PgListener::connect_with(&self.pool).await?;
        listener
            .listen_all([
                CHANNEL,
                INVITATION_CHANNEL,
                EPHEMERAL_CHANNEL,
                REVOCATION_CHANNEL,
            ])
            .await?;
        Ok(SignalListener { listener })
    }

    /// Sends `payloads` on [`EPHEMERAL_CHANNEL`] in one statement, hence
    /// one transaction: listeners receive them consecutively and in this
    /// order. Each must be shorter than 8000 bytes, and no two alike
    /// (Postgres delivers identical payloads of a transaction once).
    pub async fn notify_ephemeral(&self, payloads: &[String]) -> Result<(), StoreError> {
        if payloads.is_empty() {
            return Ok(());
        }
        // Volatile functions in the select list run after the sort, so the
        // notifications are queued in array order.
        sqlx::query(
            "SELECT pg_notify($1, payload)
             FROM unnest($2::text[]) WITH ORDINALITY AS batch (payload, n)
             ORDER BY n",
        )
        .bind(EPHEMERAL_CHANNEL)
        .bind(payloads)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Applies the embedded migrations in `migrations/postgres` (sqlx holds
    /// an advisory lock meanwhile, so instances starting together are safe).
    pub(crate) async fn migrate(&self) -> Result<(), StoreError> {
        sqlx::migrate!("./migrations/postgres")
            .run(&self.pool)
            .await?;
        Ok(())
    }

    /// Checks the database answers.
    pub(crate) async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Returns `owner`'s personal space `space`, creating it on first use.
    pub(crate) async fn ensure_personal_space(
        &self,
        space: Uuid,
        owner: Uuid,
    ) -> Result<SpaceInfo, StoreError> {
        if let Some(info) = self.space(space).await? {
            return check_personal(info, owner);
        }
        // A concurrent first use may insert it between our read and insert:
        // ignore the conflict and read whichever row won.
        sqlx::query(
            "INSERT INTO spaces (id, kind, owner_user, billed_user) VALUES ($1, 'personal', $2, $2)
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(PgUuid(space))
        .bind(PgUuid(owner))
        .execute(&self.pool)
        .await?;
        let info = self.space(space).await?;
        check_personal(info.ok_or(StoreError::Corrupt("space vanished"))?, owner)
    }

    /// The space, if it exists.
    pub(crate) async fn space(&self, space: Uuid) -> Result<Option<SpaceInfo>, StoreError> {
        let row: Option<SpaceRow> = sqlx::query_as(
            "SELECT kind, owner_user, root_did, cursor, compacted FROM spaces WHERE id = $1",
        )
        .bind(PgUuid(space))
        .fetch_optional(&self.pool)
        .await?;
        let Some((kind, owner_user, root_did, cursor, compacted)) = row else {
            return Ok(None);
        };
        Ok(Some(SpaceInfo {
            id: space,
            kind: space_kind(&kind, owner_user.map(|u| u.0), root_did)?,
            cursor: cursor_from_db(cursor)?,
            compacted: cursor_from_db(compacted)?,
        }))
    }

    /// Writes `changes` atomically at the next space cursor, or reports
    /// every conflicting record and writes nothing.
    pub(crate) async fn push(
        &self,
        space: Uuid,
        changes: &[Change],
    ) -> Result<PushOutcome, StoreError> {
        // Dropping the transaction on any early return (or cancellation)
        // rolls it back.
        let mut tx = self.pool.begin().await?;

        // The row lock serializes pushes to this space until COMMIT, so the
        // cursors read next cannot move under us.
        let found: Option<(i64, Option<PgUuid>)> =
            sqlx::query_as("SELECT cursor, billed_user FROM spaces WHERE id = $1 FOR UPDATE")
                .bind(PgUuid(space))
                .fetch_optional(&mut *tx)
                .await?;
        let Some((prev, billed)) = found else {
            tx.rollback().await?;
            return Err(StoreError::NoSuchSpace(space));
        };
        let next = prev
            .checked_add(1)
            .ok_or(StoreError::Corrupt("space cursor at its maximum"))?;

        let ids: Vec<PgUuid> = changes.iter().map(|c| PgUuid(c.id)).collect();
        let current: Vec<(PgUuid, i64, i64)> = sqlx::query_as(
            "SELECT id, cursor, coalesce(octet_length(blob), 0)::bigint
             FROM records WHERE space_id = $1 AND id = ANY($2)",
        )
        .bind(PgUuid(space))
        .bind(&ids)
        .fetch_all(&mut *tx)
        .await?;
        // Bytes the batch adds: new blobs less the blobs they replace.
        let delta = current.iter().fold(blob_bytes(changes), |d, (_, _, size)| {
            d.saturating_sub(*size)
        });
        let current: HashMap<Uuid, i64> = current.into_iter().map(|(id, c, _)| (id.0, c)).collect();

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
        check_usage(&mut tx, self.quota, billed, delta).await?;

        let blobs: Vec<Option<&[u8]>> = changes
            .iter()
            .map(|c| c.blob.as_ref().map(|b| b.as_slice()))
            .collect();
        let deks: Vec<Option<&[u8]>> = changes
            .iter()
            .map(|c| c.dek.as_ref().map(|d| d.as_bytes().as_slice()))
            .collect();
        sqlx::query(
            "INSERT INTO records (space_id, id, cursor, blob, dek, deleted_at)
             SELECT $1, batch.id, $2, batch.blob, batch.dek,
                    CASE WHEN batch.blob IS NULL THEN $6::bigint END
             FROM UNNEST($3::uuid[], $4::bytea[], $5::bytea[]) AS batch (id, blob, dek)
             ON CONFLICT (space_id, id) DO UPDATE
                SET cursor = EXCLUDED.cursor, blob = EXCLUDED.blob, dek = EXCLUDED.dek,
                    deleted_at = EXCLUDED.deleted_at",
        )
        .bind(PgUuid(space))
        .bind(next)
        .bind(&ids)
        .bind(&blobs)
        .bind(&deks)
        .bind(unix_now())
        .execute(&mut *tx)
        .await?;

        let deleted: Vec<Uuid> = changes
            .iter()
            .filter(|c| c.blob.is_none())
            .map(|c| c.id)
            .collect();
        let (removed_files, freed) = remove_files_of(&mut tx, space, &deleted).await?;
        let delta = delta.saturating_sub(freed);

        sqlx::query("UPDATE spaces SET cursor = $2, bytes = GREATEST(bytes + $3, 0) WHERE id = $1")
            .bind(PgUuid(space))
            .bind(next)
            .bind(delta)
            .execute(&mut *tx)
            .await?;

        let (prev, next) = (cursor_from_db(prev)?, cursor_from_db(next)?);
        self.signal(&mut tx, space, prev, next).await?;
        tx.commit().await?;
        Ok(PushOutcome::Applied {
            prev,
            cursor: next,
            removed_files,
        })
    }

    /// Announces a write of `space` from `prev` to `cursor` on [`CHANNEL`]:
    /// queued now, delivered by Postgres at COMMIT (and never on rollback).
    async fn signal(
        &self,
        tx: &mut Transaction<'static, Postgres>,
        space: Uuid,
        prev: u64,
        cursor: u64,
    ) -> Result<(), StoreError> {
        let signal = serde_json::to_string(&PushSignal {
            instance: self.instance,
            space,
            prev,
            cursor,
        })
        .map_err(|_| StoreError::Corrupt("push signal does not encode"))?;
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(signal)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    /// See [`super::Store::compact`].
    pub(crate) async fn compact(
        &self,
        cutoff: i64,
        max_spaces: i64,
    ) -> Result<Compaction, StoreError> {
        let found: Vec<(PgUuid, i64)> = sqlx::query_as(
            "SELECT space_id, MAX(cursor) FROM records
             WHERE deleted_at IS NOT NULL AND deleted_at < $1
             GROUP BY space_id LIMIT $2",
        )
        .bind(cutoff)
        .bind(max_spaces)
        .fetch_all(&self.pool)
        .await?;
        let mut done = Compaction::default();
        for (space, upto) in found {
            done.spaces += 1;
            loop {
                let mut tx = self.pool.begin().await?;
                sqlx::query("UPDATE spaces SET compacted = GREATEST(compacted, $2) WHERE id = $1")
                    .bind(space)
                    .bind(upto)
                    .execute(&mut *tx)
                    .await?;
                let removed = sqlx::query(
                    "DELETE FROM records WHERE space_id = $1 AND id IN (
                        SELECT id FROM records
                        WHERE space_id = $1 AND cursor <= $2 AND deleted_at IS NOT NULL
                        LIMIT $3)",
                )
                .bind(space)
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

    /// A page of `space`'s records with `since < cursor <= upto` in
    /// `(cursor, id)` order, after `after` ([`PULL_PAGE`] under
    /// [`PULL_PAGE_SETTINGS`]).
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

        // Rows are taken as they arrive and the page ends at the byte
        // budget; the rest of the result is discarded as it arrives (the
        // caller sizes pages so that little is). A running sum in SQL
        // would send nothing past the budget, but costs Postgres a tenth
        // of a pull's throughput.
        let mut rows = sqlx::query_as::<_, RecordTuple>(PULL_PAGE)
            .bind(PgUuid(space))
            .bind(after_cursor)
            .bind(PgUuid(after_id))
            .bind(upto)
            .bind(i64::from(limit))
            .fetch(&self.pages);
        let mut page = Vec::with_capacity(limit.min(1024) as usize);
        let mut budget = PageBudget::new(max_bytes);
        while budget.has_room()
            && let Some((id, cursor, blob, dek)) = rows.try_next().await?
        {
            budget.take(blob.as_deref());
            page.push(RecordRow {
                id: id.0,
                cursor: cursor_from_db(cursor)?,
                version: record_version(blob, dek)?,
            });
        }
        Ok(page)
    }
}

/// A membership row: cursor, prev_hash, hash, ciphertext.
type MembershipTuple = (i64, Option<Vec<u8>>, Vec<u8>, Vec<u8>);

impl PostgresStore {
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
        let mut tx = self.pool.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO spaces (id, kind, root_did, cursor, billed_user)
             VALUES ($1, 'shared', $2, 1, $3)
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(PgUuid(space))
        .bind(root_did)
        .bind(PgUuid(creator))
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if !inserted {
            // A retry is the same creator with the same genesis entry and key.
            let same: Option<i32> = sqlx::query_scalar(
                "SELECT 1 FROM spaces s
                 JOIN membership m ON m.space_id = s.id AND m.cursor = 1
                 JOIN sealed_keys k ON k.space_id = s.id AND k.epoch = 1 AND k.did = s.root_did
                 WHERE s.id = $1 AND s.kind = 'shared' AND s.root_did = $2
                   AND m.ciphertext = $3 AND k.sealed = $4",
            )
            .bind(PgUuid(space))
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
             VALUES ($1, 1, NULL, $2, $3)",
        )
        .bind(PgUuid(space))
        .bind(hash.as_slice())
        .bind(entry)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO sealed_keys (space_id, epoch, did, cursor, sealed) VALUES ($1, 1, $2, 1, $3)",
        )
        .bind(PgUuid(space))
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
        let mut tx = self.pool.begin().await?;
        // The row lock serializes every write to the space, so the head read
        // next stays the head until COMMIT.
        let prev: Option<i64> =
            sqlx::query_scalar("SELECT cursor FROM spaces WHERE id = $1 FOR UPDATE")
                .bind(PgUuid(space))
                .fetch_optional(&mut *tx)
                .await?;
        let Some(prev) = prev else {
            tx.rollback().await?;
            return Err(StoreError::NoSuchSpace(space));
        };
        let head: Option<Vec<u8>> = sqlx::query_scalar(
            "SELECT hash FROM membership WHERE space_id = $1 ORDER BY cursor DESC LIMIT 1",
        )
        .bind(PgUuid(space))
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
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(PgUuid(space))
        .bind(next)
        .bind(prev_hash.as_slice())
        .bind(hash.as_slice())
        .bind(ciphertext)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE spaces SET cursor = $2 WHERE id = $1")
            .bind(PgUuid(space))
            .bind(next)
            .execute(&mut *tx)
            .await?;
        let (prev, next) = (cursor_from_db(prev)?, cursor_from_db(next)?);
        // Other instances read the entry back and notify their subscribers.
        self.signal(&mut tx, space, prev, next).await?;
        tx.commit().await?;
        Ok(AppendOutcome::Appended { prev, cursor: next })
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
             WHERE space_id = $1 AND cursor > $2 ORDER BY cursor LIMIT $3",
        )
        .bind(PgUuid(space))
        .bind(since)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
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
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO revocations (space_id, token_hash) VALUES ($1, $2)
             ON CONFLICT DO NOTHING",
        )
        .bind(PgUuid(space))
        .bind(token_hash.as_slice())
        .execute(&mut *tx)
        .await?;
        // Other instances drop cached chains and evict subscribers holding
        // it as soon as this commits.
        let signal = serde_json::to_string(&RevocationSignal {
            instance: self.instance,
            space,
            token_hash: hex::encode(token_hash),
        })
        .map_err(|_| StoreError::Corrupt("revocation signal does not encode"))?;
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(REVOCATION_CHANNEL)
            .bind(signal)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// See [`super::Store::revocations`].
    pub(crate) async fn revocations(&self, space: Uuid) -> Result<Vec<[u8; 32]>, StoreError> {
        let rows: Vec<Vec<u8>> =
            sqlx::query_scalar("SELECT token_hash FROM revocations WHERE space_id = $1")
                .bind(PgUuid(space))
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(|h| hash_from_db(h)).collect()
    }
}

impl PostgresStore {
    /// See [`super::Store::epoch`].
    pub(crate) async fn epoch(&self, space: Uuid) -> Result<Option<EpochState>, StoreError> {
        let row: Option<(i64, bool)> =
            sqlx::query_as("SELECT epoch, epoch_complete FROM spaces WHERE id = $1")
                .bind(PgUuid(space))
                .fetch_optional(&self.pool)
                .await?;
        row.map(|(epoch, complete)| {
            Ok(EpochState {
                current: epoch_from_db(epoch)?,
                complete,
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
        let mut tx = self.pool.begin().await?;
        let row: Option<(i64, i64, bool)> = sqlx::query_as(
            "SELECT cursor, epoch, epoch_complete FROM spaces WHERE id = $1 FOR UPDATE",
        )
        .bind(PgUuid(space))
        .fetch_optional(&mut *tx)
        .await?;
        let Some((prev, current, complete)) = row else {
            tx.rollback().await?;
            return Err(StoreError::NoSuchSpace(space));
        };
        let state = EpochState {
            current: epoch_from_db(current)?,
            complete,
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
        let dids: Vec<&str> = keys.iter().map(|k| k.did.as_str()).collect();
        let sealed: Vec<&[u8]> = keys.iter().map(|k| k.sealed.as_slice()).collect();
        sqlx::query(
            "INSERT INTO sealed_keys (space_id, epoch, did, cursor, sealed)
             SELECT $1, $2, batch.did, $3, batch.sealed
             FROM UNNEST($4::text[], $5::bytea[]) AS batch (did, sealed)",
        )
        .bind(PgUuid(space))
        .bind(i64::from(epoch))
        .bind(next)
        .bind(&dids)
        .bind(&sealed)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE spaces SET cursor = $2, epoch = $3, epoch_complete = false WHERE id = $1",
        )
        .bind(PgUuid(space))
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
        let mut tx = self.pool.begin().await?;
        // Locked like a push, so no record key lands between check and mark.
        let row: Option<(i64, bool)> =
            sqlx::query_as("SELECT epoch, epoch_complete FROM spaces WHERE id = $1 FOR UPDATE")
                .bind(PgUuid(space))
                .fetch_optional(&mut *tx)
                .await?;
        let Some((current, complete)) = row else {
            tx.rollback().await?;
            return Err(StoreError::NoSuchSpace(space));
        };
        let state = EpochState {
            current: epoch_from_db(current)?,
            complete,
        };
        if state.current != epoch {
            tx.rollback().await?;
            return Ok(CompleteOutcome::NotCurrent(state));
        }
        let stale: Option<i32> = sqlx::query_scalar(
            "SELECT 1 FROM records
             WHERE space_id = $1 AND dek IS NOT NULL AND substring(dek FROM 1 FOR 4) < $2
             UNION ALL
             SELECT 1 FROM files WHERE space_id = $1 AND substring(dek FROM 1 FOR 4) < $2
             LIMIT 1",
        )
        .bind(PgUuid(space))
        .bind(epoch_prefix(epoch).as_slice())
        .fetch_optional(&mut *tx)
        .await?;
        if stale.is_some() {
            tx.rollback().await?;
            return Ok(CompleteOutcome::KeysRemain);
        }
        sqlx::query("UPDATE spaces SET epoch_complete = true WHERE id = $1")
            .bind(PgUuid(space))
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
             WHERE space_id = $1 AND did = $2 ORDER BY epoch",
        )
        .bind(PgUuid(space))
        .bind(did)
        .fetch_all(&self.pool)
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
        // `file` is false for records: records first at equal ids.
        let rows: Vec<(PgUuid, bool, i64, Vec<u8>)> = sqlx::query_as(
            "SELECT id, false AS file, cursor, dek FROM records
             WHERE space_id = $1 AND dek IS NOT NULL AND substring(dek FROM 1 FOR 4) < $2
             UNION ALL
             SELECT id, true AS file, cursor, dek FROM files
             WHERE space_id = $1 AND substring(dek FROM 1 FOR 4) < $2
             ORDER BY id, file LIMIT $3",
        )
        .bind(PgUuid(space))
        .bind(epoch_prefix(below).as_slice())
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(id, file, cursor, dek)| {
                Ok(WrappedDek {
                    id: id.0,
                    owner: if file {
                        KeyOwner::File
                    } else {
                        KeyOwner::Record
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
        let mut tx = self.pool.begin().await?;
        let mut rewrapped = 0u32;
        let mut skipped = Vec::new();
        for dek in deks {
            let applied = match (dek.owner, cursor_to_db(dek.cursor)) {
                (KeyOwner::Record, Some(cursor)) => {
                    sqlx::query(
                        "UPDATE records SET dek = $4
                         WHERE space_id = $1 AND id = $2 AND cursor = $3 AND dek IS NOT NULL",
                    )
                    .bind(PgUuid(space))
                    .bind(PgUuid(dek.id))
                    .bind(cursor)
                    .bind(dek.dek.as_bytes().as_slice())
                    .execute(&mut *tx)
                    .await?
                    .rows_affected()
                        == 1
                }
                (KeyOwner::File, Some(cursor)) => {
                    sqlx::query(
                        "UPDATE files SET dek = $4
                         WHERE space_id = $1 AND id = $2 AND cursor = $3",
                    )
                    .bind(PgUuid(space))
                    .bind(PgUuid(dek.id))
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
type FileTuple = (PgUuid, PgUuid, i64, i64, Vec<u8>, PgUuid);

/// The columns of a [`FileTuple`], in order.
const FILE_COLUMNS: &str = "id, record_id, cursor, size, dek, upload";

fn file_row((id, record, cursor, size, dek, upload): FileTuple) -> Result<FileRow, StoreError> {
    Ok(FileRow {
        id: id.0,
        record: record.0,
        cursor: cursor_from_db(cursor)?,
        size: size_from_db(size)?,
        dek: wrapped_from_db(&dek)?,
        upload: upload.0,
    })
}

/// Refuses a write adding `delta` bytes to `billed`'s spaces past `quota`.
/// Writes to other spaces of the same user may run at once, so a user can
/// overshoot by what those add: a soft limit.
async fn check_usage(
    tx: &mut Transaction<'static, Postgres>,
    quota: Option<i64>,
    billed: Option<PgUuid>,
    delta: i64,
) -> Result<(), StoreError> {
    let (Some(_), Some(billed)) = (quota, billed) else {
        return Ok(());
    };
    if delta <= 0 {
        return Ok(());
    }
    let used: i64 = sqlx::query_scalar(
        "SELECT coalesce(sum(bytes), 0)::bigint FROM spaces WHERE billed_user = $1",
    )
    .bind(billed)
    .fetch_one(&mut **tx)
    .await?;
    check_quota(quota, used, delta)
}

/// Removes the file rows of `records` inside `tx`; returns their objects
/// and the bytes they held.
async fn remove_files_of(
    tx: &mut Transaction<'static, Postgres>,
    space: Uuid,
    records: &[Uuid],
) -> Result<(Vec<FileObject>, i64), StoreError> {
    if records.is_empty() {
        return Ok((Vec::new(), 0));
    }
    let records: Vec<PgUuid> = records.iter().copied().map(PgUuid).collect();
    let rows: Vec<(PgUuid, PgUuid, i64)> = sqlx::query_as(
        "DELETE FROM files WHERE space_id = $1 AND record_id = ANY($2) RETURNING id, upload, size",
    )
    .bind(PgUuid(space))
    .bind(&records)
    .fetch_all(&mut **tx)
    .await?;
    let freed = rows
        .iter()
        .fold(0i64, |sum, (_, _, size)| sum.saturating_add(*size));
    let removed = rows
        .into_iter()
        .map(|(id, upload, _)| FileObject {
            space,
            id: id.0,
            upload: upload.0,
        })
        .collect();
    Ok((removed, freed))
}

impl PostgresStore {
    /// See [`super::Store::file`].
    pub(crate) async fn file(&self, space: Uuid, id: Uuid) -> Result<Option<FileRow>, StoreError> {
        let row: Option<FileTuple> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {FILE_COLUMNS} FROM files WHERE space_id = $1 AND id = $2"
        )))
        .bind(PgUuid(space))
        .bind(PgUuid(id))
        .fetch_optional(&self.pool)
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
        let mut tx = self.pool.begin().await?;
        // Locked like a push: writes to the space serialize, so the record
        // cannot be deleted between the check below and the insert.
        let found: Option<(i64, Option<PgUuid>)> =
            sqlx::query_as("SELECT cursor, billed_user FROM spaces WHERE id = $1 FOR UPDATE")
                .bind(PgUuid(space))
                .fetch_optional(&mut *tx)
                .await?;
        let Some((prev, billed)) = found else {
            tx.rollback().await?;
            return Err(StoreError::NoSuchSpace(space));
        };
        let existing: Option<FileTuple> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {FILE_COLUMNS} FROM files WHERE space_id = $1 AND id = $2"
        )))
        .bind(PgUuid(space))
        .bind(PgUuid(file.id))
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(existing) = existing {
            tx.rollback().await?;
            return Ok(FileInsert::Exists(file_row(existing)?));
        }
        let tombstone: Option<i32> = sqlx::query_scalar(
            "SELECT 1 FROM records WHERE space_id = $1 AND id = $2 AND blob IS NULL",
        )
        .bind(PgUuid(space))
        .bind(PgUuid(file.record))
        .fetch_optional(&mut *tx)
        .await?;
        if tombstone.is_some() {
            tx.rollback().await?;
            return Ok(FileInsert::RecordDeleted);
        }
        check_usage(&mut tx, self.quota, billed, size).await?;
        let next = prev
            .checked_add(1)
            .ok_or(StoreError::Corrupt("space cursor at its maximum"))?;
        sqlx::query(
            "INSERT INTO files (space_id, id, record_id, cursor, size, dek, upload, uploader)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(PgUuid(space))
        .bind(PgUuid(file.id))
        .bind(PgUuid(file.record))
        .bind(next)
        .bind(size)
        .bind(file.dek.as_bytes().as_slice())
        .bind(PgUuid(file.upload))
        .bind(PgUuid(file.uploader))
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE spaces SET cursor = $2, bytes = bytes + $3 WHERE id = $1")
            .bind(PgUuid(space))
            .bind(next)
            .bind(size)
            .execute(&mut *tx)
            .await?;
        let (prev, next) = (cursor_from_db(prev)?, cursor_from_db(next)?);
        self.signal(&mut tx, space, prev, next).await?;
        tx.commit().await?;
        Ok(FileInsert::Inserted { prev, cursor: next })
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
             WHERE space_id = $1 AND cursor > $2 AND cursor <= $3
             ORDER BY cursor LIMIT $4"
        )))
        .bind(PgUuid(space))
        .bind(since)
        .bind(upto)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(file_row).collect()
    }

    /// See [`super::Store::delete_files_of_records`].
    pub(crate) async fn delete_files_of_records(
        &self,
        space: Uuid,
        records: &[Uuid],
    ) -> Result<Vec<FileObject>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let (removed, freed) = remove_files_of(&mut tx, space, records).await?;
        sqlx::query("UPDATE spaces SET bytes = GREATEST(bytes - $2, 0) WHERE id = $1")
            .bind(PgUuid(space))
            .bind(freed)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(removed)
    }

    /// See [`super::Store::known_uploads`].
    pub(crate) async fn known_uploads(&self, uploads: &[Uuid]) -> Result<Vec<Uuid>, StoreError> {
        let uploads: Vec<PgUuid> = uploads.iter().copied().map(PgUuid).collect();
        let known: Vec<PgUuid> =
            sqlx::query_scalar("SELECT upload FROM files WHERE upload = ANY($1)")
                .bind(&uploads)
                .fetch_all(&self.pool)
                .await?;
        Ok(known.into_iter().map(|u| u.0).collect())
    }
}
