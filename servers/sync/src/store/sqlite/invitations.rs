//! Invitations on SQLite (see [`crate::store::invitations`]). Creation
//! takes the write lock (`BEGIN IMMEDIATE`), which serializes the id check,
//! the mailbox count and the insert.

use sealbase_protocol::Invitation;
use uuid::Uuid;

use super::{SqliteStore, uuid_from_db};
use crate::store::StoreError;
use crate::store::invitations::{CreateOutcome, ListedInvitation, NewInvitation, from_db, to_db};

/// An invitation row: seq, id, mailbox, payload, expires_at.
type InvitationRow = (i64, Vec<u8>, Vec<u8>, Vec<u8>, i64);

fn listed(
    (seq, id, mailbox, payload, expires_at): InvitationRow,
) -> Result<ListedInvitation, StoreError> {
    Ok(ListedInvitation {
        seq: from_db(seq)?,
        invitation: Invitation {
            id: uuid_from_db(&id)?,
            mailbox: uuid_from_db(&mailbox)?,
            payload: payload.into(),
            expires_at: from_db(expires_at)?,
        },
    })
}

impl SqliteStore {
    /// See [`crate::store::Store::create_invitation`].
    pub(crate) async fn create_invitation(
        &self,
        new: NewInvitation<'_>,
        mailbox_cap: u32,
    ) -> Result<CreateOutcome, StoreError> {
        let now = to_db(new.created_at)?;
        let expires_at = to_db(new.expires_at)?;
        let id = new.id.as_bytes().as_slice();
        let mailbox = new.mailbox.as_bytes().as_slice();
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;

        // An expired invitation no longer holds its id.
        sqlx::query("DELETE FROM invitations WHERE id = ?1 AND expires_at <= ?2")
            .bind(id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        let existing: Option<(Vec<u8>, Vec<u8>)> =
            sqlx::query_as("SELECT mailbox, payload FROM invitations WHERE id = ?1")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
        if let Some((stored_mailbox, payload)) = existing {
            tx.rollback().await?;
            return Ok(if stored_mailbox == mailbox && payload == new.payload {
                CreateOutcome::Duplicate
            } else {
                CreateOutcome::Conflict
            });
        }
        let pending: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM invitations WHERE mailbox = ?1 AND expires_at > ?2",
        )
        .bind(mailbox)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        if pending >= i64::from(mailbox_cap) {
            tx.rollback().await?;
            return Ok(CreateOutcome::MailboxFull);
        }
        sqlx::query(
            "INSERT INTO invitations (id, mailbox, sender, payload, created_at, expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )
        .bind(id)
        .bind(mailbox)
        .bind(new.sender.as_bytes().as_slice())
        .bind(new.payload)
        .bind(now)
        .bind(expires_at)
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
             WHERE id = ?1 AND expires_at > ?2",
        )
        .bind(id.as_bytes().as_slice())
        .bind(to_db(now)?)
        .fetch_optional(&self.reader)
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
             WHERE mailbox = ?1 AND seq > ?2 AND expires_at > ?3
             ORDER BY seq LIMIT ?4",
        )
        .bind(mailbox.as_bytes().as_slice())
        .bind(to_db(after)?)
        .bind(to_db(now)?)
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
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
            sqlx::query("DELETE FROM invitations WHERE id = ?1 AND (mailbox = ?2 OR sender = ?3)")
                .bind(id.as_bytes().as_slice())
                .bind(mailbox.as_bytes().as_slice())
                .bind(sender.as_bytes().as_slice())
                .execute(&self.writer)
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
            "DELETE FROM invitations WHERE seq IN (
                 SELECT seq FROM invitations WHERE expires_at <= ?1 LIMIT ?2
             )",
        )
        .bind(to_db(now)?)
        .bind(i64::from(limit))
        .execute(&self.writer)
        .await?
        .rows_affected();
        Ok(deleted)
    }
}
