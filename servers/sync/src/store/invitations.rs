//! Invitations: sealed payloads waiting in a recipient's mailbox.
//!
//! A mailbox id is the recipient's personal space id for the app (the
//! accounts key directory publishes it); the payload is opaque. Each row
//! also keeps who created it (a user id), so that the sender can withdraw
//! it, and when it was created and expires.
//!
//! Invariants every backend keeps:
//! - ids are unique; an id whose invitation has expired is free again;
//! - creating is idempotent: the same id with the same mailbox and payload
//!   changes nothing and succeeds; the same id with anything else is a
//!   conflict;
//! - a mailbox never holds more unexpired invitations than the cap given
//!   at creation (checked and inserted in one transaction, serialized per
//!   mailbox);
//! - listings return unexpired invitations in creation order;
//! - on Postgres, a created invitation is announced on
//!   [`super::postgres::INVITATION_CHANNEL`] inside its transaction, so
//!   other instances hear of it exactly when it commits.

use sealbase_protocol::Invitation;
use uuid::Uuid;

use super::{Store, StoreError};

/// A new invitation and its sender.
#[derive(Debug, Clone, Copy)]
pub struct NewInvitation<'a> {
    /// Chosen by the sender.
    pub id: Uuid,
    /// The recipient's mailbox (personal space id).
    pub mailbox: Uuid,
    /// The user who creates it.
    pub sender: Uuid,
    /// Sealed to the recipient.
    pub payload: &'a [u8],
    /// Creation time, Unix seconds.
    pub created_at: u64,
    /// Expiry, Unix seconds (after `created_at`).
    pub expires_at: u64,
}

/// The outcome of creating an invitation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateOutcome {
    /// Stored.
    Created,
    /// The same invitation (id, mailbox, payload) was already there.
    Duplicate,
    /// The id is taken by another invitation.
    Conflict,
    /// The mailbox holds the maximum number of unexpired invitations.
    MailboxFull,
}

/// A listed invitation and its position in its mailbox (creation order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedInvitation {
    /// Position to list on from.
    pub seq: u64,
    /// The invitation.
    pub invitation: Invitation,
}

/// A time or sequence as the databases store it (`i64`); beyond that range
/// it cannot be stored.
pub(super) fn to_db(value: u64) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::Corrupt("value beyond 2^63"))
}

/// A stored time or sequence back as `u64`.
pub(super) fn from_db(value: i64) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| StoreError::Corrupt("negative time or sequence"))
}

impl Store {
    /// Creates `invitation` unless its mailbox already holds `mailbox_cap`
    /// unexpired ones at `invitation.created_at` (see the module
    /// invariants).
    pub async fn create_invitation(
        &self,
        invitation: NewInvitation<'_>,
        mailbox_cap: u32,
    ) -> Result<CreateOutcome, StoreError> {
        dispatch!(self, s => s.create_invitation(invitation, mailbox_cap).await)
    }

    /// The invitation with this id, if it exists and is unexpired at `now`.
    pub async fn invitation(&self, id: Uuid, now: u64) -> Result<Option<Invitation>, StoreError> {
        dispatch!(self, s => s.invitation(id, now).await)
    }

    /// Unexpired invitations of `mailbox` at `now` after position `after`
    /// (0: from the start), in creation order, at most `limit`.
    pub async fn invitations(
        &self,
        mailbox: Uuid,
        now: u64,
        after: u64,
        limit: u32,
    ) -> Result<Vec<ListedInvitation>, StoreError> {
        dispatch!(self, s => s.invitations(mailbox, now, after, limit).await)
    }

    /// Deletes invitation `id` if it is in `mailbox` or was created by
    /// `sender`; whether it did.
    pub async fn delete_invitation(
        &self,
        id: Uuid,
        mailbox: Uuid,
        sender: Uuid,
    ) -> Result<bool, StoreError> {
        dispatch!(self, s => s.delete_invitation(id, mailbox, sender).await)
    }

    /// Deletes up to `limit` invitations expired at `now`; how many.
    pub async fn delete_expired_invitations(
        &self,
        now: u64,
        limit: u32,
    ) -> Result<u64, StoreError> {
        dispatch!(self, s => s.delete_expired_invitations(now, limit).await)
    }
}
