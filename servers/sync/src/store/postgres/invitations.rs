//! Invitations on PostgreSQL (see [`crate::store::invitations`]).
//!
//! Creation holds a transaction-scoped advisory lock on the mailbox, so the
//! count of pending invitations and the insert cannot interleave with
//! another creation into the same mailbox on any instance. A created
//! invitation is announced with an [`InvitationSignal`] on
//! [`INVITATION_CHANNEL`] inside the transaction.

use sealbase_protocol::Invitation;
use uuid::Uuid;

use super::{INVITATION_CHANNEL, InvitationSignal, PgUuid, PostgresStore};
use crate::store::StoreError;
use crate::store::invitations::{CreateOutcome, ListedInvitation, NewInvitation, from_db, to_db};

/// The first key of this module's advisory locks (the second is taken from
/// the mailbox id); two-key advisory locks never collide with the one-key
/// locks sqlx's migrator takes.
const MAILBOX_LOCK_CLASS: i32 = 0x5eab_0003;

/// An invitation row: seq, id, mailbox, payload, expires_at.
type InvitationRow = (i64, PgUuid, PgUuid, Vec<u8>, i64);

fn listed(
    (seq, id, mailbox, payload, expires_at): InvitationRow,
) -> Result<ListedInvitation, StoreError> {
    Ok(ListedInvitation {
        seq: from_db(seq)?,
        invitation: Invitation {
            id: id.0,
            mailbox: mailbox.0,
            payload: payload.into(),
            expires_at: from_db(expires_at)?,
        },
    })
}

/// The second advisory lock key for a mailbox: 32 bits of its id (mailboxes
/// sharing them only wait for each other briefly).
fn mailbox_lock_key(mailbox: Uuid) -> i32 {
    let [.., a, b, c, d] = mailbox.into_bytes();
    i32::from_be_bytes([a, b, c, d])
}

impl PostgresStore {
    /// See [`crate::store::Store::create_invitation`].
    pub(crate) async fn create_invitation(
        &self,
        new: NewInvitation<'_>,
        mailbox_cap: u32,
    ) -> Result<CreateOutcome, StoreError> {
        let now = to_db(new.created_at)?;
        let expires_at = to_db(new.expires_at)?;
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1, $2)")
            .bind(MAILBOX_LOCK_CLASS)
            .bind(mailbox_lock_key(new.mailbox))
            .execute(&mut *tx)
            .await?;

        // An expired invitation no longer holds its id.
        sqlx::query("DELETE FROM invitations WHERE id = $1 AND expires_at <= $2")
            .bind(PgUuid(new.id))
            .bind(now)
            .execute(&mut *tx)
            .await?;
        if let Some(outcome) = existing(&mut tx, &new).await? {
            tx.rollback().await?;
            return Ok(outcome);
        }
        let pending: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM invitations WHERE mailbox = $1 AND expires_at > $2",
        )
        .bind(PgUuid(new.mailbox))
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        if pending >= i64::from(mailbox_cap) {
            tx.rollback().await?;
            return Ok(CreateOutcome::MailboxFull);
        }
        let inserted = sqlx::query(
            "INSERT INTO invitations (id, mailbox, sender, payload, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(PgUuid(new.id))
        .bind(PgUuid(new.mailbox))
        .bind(PgUuid(new.sender))
        .bind(new.payload)
        .bind(now)
        .bind(expires_at)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if !inserted {
            // The same id went into another mailbox concurrently (another
            // lock) and committed first.
            let outcome = existing(&mut tx, &new)
                .await?
                .unwrap_or(CreateOutcome::Conflict);
            tx.rollback().await?;
            return Ok(outcome);
        }
        let signal = serde_json::to_string(&InvitationSignal {
            instance: self.instance,
            id: new.id,
            mailbox: new.mailbox,
        })
        .map_err(|_| StoreError::Corrupt("invitation signal does not encode"))?;
        // Delivered by Postgres at COMMIT, never on rollback.
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(INVITATION_CHANNEL)
            .bind(signal)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(CreateOutcome::Created)
    }

    /// See [`crate::store::Store::invitation`].
    pub(crate) async fn invitation(
        &self,
        id: Uuid,
        now: u64,
    ) -> Result<Option<Invitation>, StoreError> {
        let row: Option<InvitationRow> = sqlx::query_as(
            "SELECT seq, id, mailbox, payload, expires_at FROM invitations
             WHERE id = $1 AND expires_at > $2",
        )
        .bind(PgUuid(id))
        .bind(to_db(now)?)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| listed(row).map(|l| l.invitation)).transpose()
    }

    /// See [`crate::store::Store::invitations`].
    pub(crate) async fn invitations(
        &self,
        mailbox: Uuid,
        now: u64,
        after: u64,
        limit: u32,
    ) -> Result<Vec<ListedInvitation>, StoreError> {
        let rows: Vec<InvitationRow> = sqlx::query_as(
            "SELECT seq, id, mailbox, payload, expires_at FROM invitations
             WHERE mailbox = $1 AND seq > $2 AND expires_at > $3
             ORDER BY seq LIMIT $4",
        )
        .bind(PgUuid(mailbox))
        .bind(to_db(after)?)
        .bind(to_db(now)?)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(listed).collect()
    }

    /// See [`crate::store::Store::delete_invitation`].
    pub(crate) async fn delete_invitation(
        &self,
        id: Uuid,
        mailbox: Uuid,
        sender: Uuid,
    ) -> Result<bool, StoreError> {
        let deleted =
            sqlx::query("DELETE FROM invitations WHERE id = $1 AND (mailbox = $2 OR sender = $3)")
                .bind(PgUuid(id))
                .bind(PgUuid(mailbox))
                .bind(PgUuid(sender))
                .execute(&self.pool)
                .await?
                .rows_affected();
        Ok(deleted == 1)
    }

    /// See [`crate::store::Store::delete_expired_invitations`].
    pub(crate) async fn delete_expired_invitations(
        &self,
        now: u64,
        limit: u32,
    ) -> Result<u64, StoreError> {
        let deleted = sqlx::query(
            "DELETE FROM invitations WHERE id IN (
                 SELECT id FROM invitations WHERE expires_at <= $1 LIMIT $2
             )",
        )
        .bind(to_db(now)?)
        .bind(i64::from(limit))
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(deleted)
    }
}

/// What an invitation already stored under `new.id` makes of `new`.
async fn existing(
    tx: &mut sqlx::Transaction<'static, sqlx::Postgres>,
    new: &NewInvitation<'_>,
) -> Result<Option<CreateOutcome>, StoreError> {
    let row: Option<(PgUuid, Vec<u8>)> =
        sqlx::query_as("SELECT mailbox, payload FROM invitations WHERE id = $1")
            .bind(PgUuid(new.id))
            .fetch_optional(&mut **tx)
            .await?;
    Ok(row.map(|(mailbox, payload)| {
        if mailbox.0 == new.mailbox && payload == new.payload {
            CreateOutcome::Duplicate
        } else {
            CreateOutcome::Conflict
        }
    }))
}
