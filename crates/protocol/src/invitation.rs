//! Invitations: sealed payloads left in a recipient's mailbox.
//!
//! The server stores opaque sealed bytes under the recipient's mailbox id
//! (from the accounts key directory) until they expire or are deleted.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::binary::Bytes;
use crate::limits::{self, Limit, Validate, ValidationError};

/// A stored invitation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invitation {
    /// The invitation.
    pub id: Uuid,
    /// The recipient's mailbox.
    pub mailbox: Uuid,
    /// Sealed to the recipient; only they can open it.
    pub payload: Bytes,
    /// When the server drops it (Unix seconds).
    pub expires_at: u64,
}

/// `invitation.create` params. Result: [`crate::Empty`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvitationCreateParams {
    /// Chosen by the client (a retry is idempotent).
    pub id: Uuid,
    /// The recipient's mailbox.
    pub mailbox: Uuid,
    /// Sealed to the recipient.
    pub payload: Bytes,
    /// When the server may drop it (Unix seconds).
    pub expires_at: u64,
}

impl Validate for InvitationCreateParams {
    fn validate(&self) -> Result<(), ValidationError> {
        if self.payload.is_empty() {
            return Err(ValidationError::Empty { field: "payload" });
        }
        limits::check(Limit::Invitation, self.payload.len())
    }
}

/// `invitation.list` params: the invitations in the caller's mailbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct InvitationListParams {}

impl Validate for InvitationListParams {}

/// `invitation.list` result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvitationList {
    /// Unexpired invitations, oldest first.
    pub invitations: Vec<Invitation>,
}

/// `invitation.delete` params (the recipient, after accepting or declining).
/// Result: [`crate::Empty`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvitationDeleteParams {
    /// The invitation.
    pub id: Uuid,
}

impl Validate for InvitationDeleteParams {}
