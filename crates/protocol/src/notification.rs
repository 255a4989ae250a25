//! Server notifications.
//!
//! Notifications that advance a space cursor (`sync`, `membership`, `file`)
//! carry `prev` and `cursor` and the complete items between them. A client
//! whose cursor equals `prev` applies the items and moves to `cursor`; any
//! other client has missed something and pulls. So a lost or reordered
//! notification costs a pull, never data.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::binary::{Bytes, WrappedKey};
use crate::codes::wire_strings;
use crate::epoch::SealedEpochKey;
use crate::files::FileMeta;
use crate::membership::MembershipEntry;

/// `sync`: another connection pushed to a subscribed space.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncNotification {
    /// The space.
    pub space: Uuid,
    /// Space cursor before the write.
    pub prev: u64,
    /// Space cursor after it; the cursor of every record listed.
    pub cursor: u64,
    /// The records written (a null blob is a deletion).
    pub records: Vec<SyncedRecord>,
    /// Epoch keys sealed to this connection's DID stored by the write
    /// (`epoch.begin`); omitted when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<SealedEpochKey>,
}

/// A record version in a `sync` notification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncedRecord {
    /// The record.
    pub id: Uuid,
    /// The record envelope, or null if the record was deleted.
    pub blob: Option<Bytes>,
    /// The wrapped record key; null exactly when `blob` is.
    pub dek: Option<WrappedKey>,
}

/// `membership`: an entry was appended to a subscribed space's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MembershipNotification {
    /// The space.
    pub space: Uuid,
    /// Space cursor before the append.
    pub prev: u64,
    /// Space cursor of the entry.
    pub cursor: u64,
    /// The entry.
    pub entry: MembershipEntry,
}

/// `file`: a file upload completed in a subscribed space.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileNotification {
    /// The space.
    pub space: Uuid,
    /// Space cursor before the upload completed.
    pub prev: u64,
    /// Space cursor of the file.
    pub cursor: u64,
    /// The file.
    pub file: FileMeta,
}

wire_strings! {
    /// Why access ended.
    pub enum RevokedReason {
        /// A capability in the chain was revoked (`cap.revoke`).
        CapabilityRevoked = "capability_revoked",
        /// A capability in the chain expired.
        CapabilityExpired = "capability_expired",
        /// The session's access token expired (the connection closes with 4001).
        TokenExpired = "token_expired",
    }
}

/// `revoked`: subscriptions ended because authorization changed. The server
/// then closes with 4002 (or 4001 for `token_expired`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevokedNotification {
    /// The spaces no longer accessible.
    pub spaces: Vec<Uuid>,
    /// Why.
    pub reason: RevokedReason,
}

/// `presence`: a peer set its presence (also sent for every present peer
/// right after `subscribe`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresenceNotification {
    /// The space.
    pub space: Uuid,
    /// The peer's connection, assigned by the server (a user's devices
    /// share a DID but not a peer id).
    pub peer: Uuid,
    /// The peer's DID, as authenticated by the server.
    pub did: String,
    /// Encrypted presence state.
    pub data: Bytes,
}

/// `presence.leave`: a peer cleared its presence or disconnected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresenceLeaveNotification {
    /// The space.
    pub space: Uuid,
    /// The peer.
    pub peer: Uuid,
}

/// `event`: a peer sent an ephemeral event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventNotification {
    /// The space.
    pub space: Uuid,
    /// The sending connection.
    pub peer: Uuid,
    /// The sender's DID, as authenticated by the server.
    pub did: String,
    /// Encrypted event.
    pub data: Bytes,
}

/// `invitation`: an invitation arrived in the caller's mailbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvitationNotification {
    /// The invitation.
    pub invitation: crate::invitation::Invitation,
}
