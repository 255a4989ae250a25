//! `push`: write record versions to a space, atomically per batch.
//!
//! Conflict model: every change names the record cursor its author last saw
//! (`expected_cursor`, 0 for a record that must not exist yet). If any record
//! in the batch has moved on, nothing is written and the result names every
//! conflicting record with its current cursor; the client pulls, merges the
//! Automerge documents and pushes again. Because the CRDT merge is lossless,
//! this compare-and-set only protects against overwriting a version the
//! author never merged.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::binary::{Bytes, WrappedKey};
use crate::limits::{self, Limit, Validate, ValidationError};

/// `push` params.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushParams {
    /// The space.
    pub space: Uuid,
    /// Capability (`write` or above) for a shared space.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cap: Option<String>,
    /// The changes, applied all or none.
    pub changes: Vec<Change>,
}

/// One record version, or a deletion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// The record.
    pub id: Uuid,
    /// The record envelope (`0x01 ‖ nonce ‖ ciphertext`), or null to delete
    /// the record (leaving a tombstone).
    pub blob: Option<Bytes>,
    /// The record key wrapped under the space's current epoch; null exactly
    /// when `blob` is null.
    pub dek: Option<WrappedKey>,
    /// The record's cursor as the author last saw it; 0 if the record is new.
    pub expected_cursor: u64,
}

impl Validate for PushParams {
    fn validate(&self) -> Result<(), ValidationError> {
        limits::check_cap(self.cap.as_ref())?;
        limits::non_empty("changes", &self.changes)?;
        limits::check(Limit::PushChanges, self.changes.len())?;
        for change in &self.changes {
            if change.blob.is_some() != change.dek.is_some() {
                return Err(ValidationError::DekBlobMismatch { id: change.id });
            }
            if let Some(blob) = &change.blob {
                if blob.is_empty() {
                    return Err(ValidationError::Empty { field: "blob" });
                }
                limits::check(Limit::Blob, blob.len())?;
            }
            if change.dek.is_some_and(|dek| dek.epoch() == 0) {
                return Err(ValidationError::ZeroEpoch);
            }
        }
        limits::unique("changes", self.changes.iter().map(|c| c.id))
    }
}

/// `push` result: `{applied: {prev, cursor}}` or `{conflict: {records}}`.
///
/// A conflict is an expected outcome of concurrent editing, so it is a
/// result carrying data, not an error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PushResult {
    /// Every change was written at one new cursor.
    Applied {
        /// The space cursor just before this batch. If it equals the
        /// client's cursor, the client may move to `cursor`; otherwise other
        /// writes came between and it must pull.
        prev: u64,
        /// The new space cursor, now the cursor of every record in the batch.
        cursor: u64,
    },
    /// Nothing was written.
    Conflict {
        /// Each record whose cursor differs from `expected_cursor`.
        records: Vec<RecordCursor>,
    },
}

/// A record and its current cursor (0: the record does not exist).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordCursor {
    /// The record.
    pub id: Uuid,
    /// Its current cursor on the server.
    pub cursor: u64,
}
