//! `pull`: everything that changed in some spaces since a cursor, streamed.
//!
//! For each space, in the order requested, the server sends the chunk
//! `pull.begin`, then the changed items in cursor order (`pull.record`,
//! `pull.tombstone`, `pull.membership`, `pull.key`, `pull.file`), then
//! `pull.commit`; after the last space, the final response ([`PullResult`]).
//! A client applies a space's items and moves its cursor only on
//! `pull.commit`, so an interrupted pull leaves the cursor where it was.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::binary::{Bytes, WrappedKey};
use crate::epoch::SealedEpochKey;
use crate::files::FileMeta;
use crate::limits::{self, Validate, ValidationError};
use crate::membership::MembershipEntry;
use crate::space::SpaceDenied;

/// `pull` params.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullParams {
    /// The spaces, each with the cursor to pull from.
    pub spaces: Vec<PullSpace>,
}

/// One space to pull.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullSpace {
    /// The space.
    pub id: Uuid,
    /// The client's cursor: items with a greater cursor are sent (0: all).
    pub since: u64,
    /// Capability for a shared space.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cap: Option<String>,
}

impl Validate for PullParams {
    fn validate(&self) -> Result<(), ValidationError> {
        limits::check_space_list(&self.spaces, |s| s.id, |s| s.cap.as_ref())
    }
}

/// `pull` final result, after every chunk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullResult {
    /// Spaces refused (no chunks were sent for them).
    pub denied: Vec<SpaceDenied>,
}

/// Chunk `pull.begin`: the items of `space` follow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullBegin {
    /// The space.
    pub space: Uuid,
    /// The `since` the items start after (0 when `reset`).
    pub since: u64,
    /// The space cursor this pull reads up to.
    pub cursor: u64,
    /// The requested `since` is older than the server's tombstone horizon:
    /// every live item is sent from 0, and the client must drop the records
    /// of this space that the pull does not mention.
    pub reset: bool,
}

/// Chunk `pull.record`: the current version of a record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PulledRecord {
    /// The space.
    pub space: Uuid,
    /// The record.
    pub id: Uuid,
    /// The record's cursor (the cursor of the push that wrote it).
    pub cursor: u64,
    /// The record envelope.
    pub blob: Bytes,
    /// The wrapped record key.
    pub dek: WrappedKey,
}

/// Chunk `pull.tombstone`: a deleted record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PulledTombstone {
    /// The space.
    pub space: Uuid,
    /// The record.
    pub id: Uuid,
    /// Cursor of the deletion.
    pub cursor: u64,
}

/// Chunk `pull.membership`: a membership log entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PulledMembership {
    /// The space.
    pub space: Uuid,
    /// The entry.
    pub entry: MembershipEntry,
}

/// Chunk `pull.key`: an epoch key sealed to the caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PulledKey {
    /// The space.
    pub space: Uuid,
    /// The key.
    pub key: SealedEpochKey,
}

/// Chunk `pull.file`: a file's metadata (its bytes move over HTTP).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PulledFile {
    /// The space.
    pub space: Uuid,
    /// The file.
    pub file: FileMeta,
}

/// Chunk `pull.commit`: the items of `space` are complete up to `cursor`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullCommit {
    /// The space.
    pub space: Uuid,
    /// The client's new cursor for the space.
    pub cursor: u64,
    /// The server stopped at a page boundary: pull again from `cursor`.
    pub more: bool,
}
