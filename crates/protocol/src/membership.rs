//! `membership.append` and `membership.list`: the space's hash-chained log.
//!
//! The server never reads entries; it keeps the chain shape: it computes
//! `hash = SHA-256(ciphertext)` itself and appends only if `prev_hash` is
//! the current head (compare-and-set, else `conflict`).

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::binary::{Bytes, Hash};
use crate::limits::{self, Validate, ValidationError};

/// One entry of the log as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MembershipEntry {
    /// Space cursor at which the entry was appended.
    pub cursor: u64,
    /// Hash of the previous entry; null for the genesis entry.
    pub prev_hash: Option<Hash>,
    /// SHA-256 of `ciphertext`, computed by the server.
    pub hash: Hash,
    /// The signed, encrypted entry.
    pub ciphertext: Bytes,
}

/// `membership.append` params.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MembershipAppendParams {
    /// The space.
    pub space: Uuid,
    /// Capability for the space.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cap: Option<String>,
    /// The chain head the client built on.
    pub prev_hash: Hash,
    /// The signed, encrypted entry.
    pub ciphertext: Bytes,
}

impl Validate for MembershipAppendParams {
    fn validate(&self) -> Result<(), ValidationError> {
        limits::check_cap(self.cap.as_ref())?;
        crate::space::check_entry(&self.ciphertext)
    }
}

/// `membership.append` result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MembershipAppended {
    /// Space cursor before the append (see [`crate::PushResult::Applied`]).
    pub prev: u64,
    /// Space cursor of the new entry.
    pub cursor: u64,
    /// The new head: SHA-256 of the ciphertext.
    pub hash: Hash,
}

/// `membership.list` params.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MembershipListParams {
    /// The space.
    pub space: Uuid,
    /// Capability for the space.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cap: Option<String>,
    /// Return entries with a cursor greater than this (0: the whole log).
    pub since: u64,
}

impl Validate for MembershipListParams {
    fn validate(&self) -> Result<(), ValidationError> {
        limits::check_cap(self.cap.as_ref())
    }
}

/// `membership.list` result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MembershipList {
    /// Entries in chain order.
    pub entries: Vec<MembershipEntry>,
    /// More entries follow; list again from the last cursor.
    pub more: bool,
}
