//! `subscribe`, `unsubscribe`, `space.create` and `cap.revoke`.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::binary::{Bytes, Hash};
use crate::codes::ErrorBody;
use crate::limits::{self, Limit, Validate, ValidationError};

/// A result without content: the empty map `{}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Empty {}

/// A space and the capability that grants access to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpaceRef {
    /// The space.
    pub id: Uuid,
    /// Capability token (compact JWS) for a shared space; absent for the
    /// personal space.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cap: Option<String>,
}

/// A space and its current cursor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpaceCursor {
    /// The space.
    pub id: Uuid,
    /// Its cursor.
    pub cursor: u64,
}

/// A space a multi-space request could not serve, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpaceDenied {
    /// The space.
    pub id: Uuid,
    /// Why (`forbidden`, `not_found`, …).
    pub error: ErrorBody,
}

/// `subscribe` params: receive notifications for these spaces.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscribeParams {
    /// The spaces, each with its capability.
    pub spaces: Vec<SpaceRef>,
}

impl Validate for SubscribeParams {
    fn validate(&self) -> Result<(), ValidationError> {
        limits::check_space_list(&self.spaces, |s| s.id, |s| s.cap.as_ref())
    }
}

/// `subscribe` result. Each space is either subscribed or denied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscribed {
    /// Subscribed spaces with their current cursor (pull if it is ahead of
    /// yours).
    pub spaces: Vec<SpaceCursor>,
    /// Spaces refused.
    pub denied: Vec<SpaceDenied>,
}

/// `unsubscribe` params. Result: [`Empty`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnsubscribeParams {
    /// The spaces.
    pub spaces: Vec<Uuid>,
}

impl Validate for UnsubscribeParams {
    fn validate(&self) -> Result<(), ValidationError> {
        limits::non_empty("spaces", &self.spaces)?;
        limits::check(Limit::Spaces, self.spaces.len())
    }
}

/// `space.create` params: a shared space with the caller's DID as root,
/// created atomically with its first membership entry and its epoch-1 key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpaceCreateParams {
    /// New space id, chosen by the client (a retry with the same id and
    /// content is idempotent; another caller's id is `conflict`).
    pub id: Uuid,
    /// Genesis membership entry ciphertext (its `prev_hash` is null).
    pub entry: Bytes,
    /// The epoch-1 key sealed to the creator.
    pub key: Bytes,
}

impl Validate for SpaceCreateParams {
    fn validate(&self) -> Result<(), ValidationError> {
        check_entry(&self.entry)?;
        check_sealed(&self.key)
    }
}

/// `space.create` result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpaceCreated {
    /// The space's cursor after creation.
    pub cursor: u64,
    /// `entry_hash` of the genesis entry: the chain head.
    pub hash: Hash,
}

/// `cap.revoke` params (admin only). Result: [`Empty`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapRevokeParams {
    /// The space.
    pub space: Uuid,
    /// The caller's admin capability.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cap: Option<String>,
    /// SHA-256 of the revoked token's compact serialization (ASCII bytes).
    /// Every chain containing it stops verifying.
    pub token_hash: Hash,
}

impl Validate for CapRevokeParams {
    fn validate(&self) -> Result<(), ValidationError> {
        limits::check_cap(self.cap.as_ref())
    }
}

pub(crate) fn check_entry(entry: &Bytes) -> Result<(), ValidationError> {
    if entry.is_empty() {
        return Err(ValidationError::Empty { field: "entry" });
    }
    limits::check(Limit::MembershipEntry, entry.len())
}

pub(crate) fn check_sealed(key: &Bytes) -> Result<(), ValidationError> {
    if key.is_empty() {
        return Err(ValidationError::Empty {
            field: "sealed key",
        });
    }
    limits::check(Limit::SealedKey, key.len())
}
