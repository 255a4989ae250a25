//! Key rotation: `epoch.begin`, `epoch.complete`, `keys.get`, `deks.get`,
//! `deks.rewrap`.
//!
//! Rotation: an admin draws `E_{n+1}`, calls `epoch.begin` with it sealed to
//! every remaining member; from then on the server refuses record and file
//! keys wrapped under an older epoch (`stale_epoch`). The admin loops
//! `deks.get` / `deks.rewrap` until no key under an older epoch is left, then
//! calls `epoch.complete`.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::binary::{Bytes, WrappedKey};
use crate::limits::{self, Limit, Validate, ValidationError};

/// An epoch key sealed to one member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecipientKey {
    /// The member's DID.
    pub did: String,
    /// The epoch key sealed to the member's X25519 key.
    pub sealed: Bytes,
}

/// An epoch key sealed to the caller, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedEpochKey {
    /// The epoch (1, 2, …).
    pub epoch: u32,
    /// Space cursor at which it was stored.
    pub cursor: u64,
    /// The sealed key.
    pub sealed: Bytes,
}

/// `epoch.begin` params (admin only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EpochBeginParams {
    /// The space.
    pub space: Uuid,
    /// Admin capability.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cap: Option<String>,
    /// The new epoch: the current one plus 1 (else `stale_epoch`).
    pub epoch: u32,
    /// The new key sealed to each remaining member.
    pub keys: Vec<RecipientKey>,
}

impl Validate for EpochBeginParams {
    fn validate(&self) -> Result<(), ValidationError> {
        limits::check_cap(self.cap.as_ref())?;
        if self.epoch == 0 {
            return Err(ValidationError::ZeroEpoch);
        }
        limits::non_empty("keys", &self.keys)?;
        limits::check(Limit::EpochRecipients, self.keys.len())?;
        for key in &self.keys {
            limits::check(Limit::Did, key.did.len())?;
            crate::space::check_sealed(&key.sealed)?;
        }
        Ok(())
    }
}

/// `epoch.begin` result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EpochBegun {
    /// Space cursor before the sealed keys were stored.
    pub prev: u64,
    /// Space cursor of the sealed keys.
    pub cursor: u64,
}

/// `epoch.complete` params (admin only). Result: [`crate::Empty`]; fails with
/// `conflict` while keys under an older epoch remain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EpochCompleteParams {
    /// The space.
    pub space: Uuid,
    /// Admin capability.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cap: Option<String>,
    /// The epoch begun.
    pub epoch: u32,
}

impl Validate for EpochCompleteParams {
    fn validate(&self) -> Result<(), ValidationError> {
        limits::check_cap(self.cap.as_ref())?;
        if self.epoch == 0 {
            return Err(ValidationError::ZeroEpoch);
        }
        Ok(())
    }
}

/// `keys.get` params: the caller's sealed epoch keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeysGetParams {
    /// The space.
    pub space: Uuid,
    /// Capability for the space.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cap: Option<String>,
}

impl Validate for KeysGetParams {
    fn validate(&self) -> Result<(), ValidationError> {
        limits::check_cap(self.cap.as_ref())
    }
}

/// `keys.get` result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EpochKeys {
    /// The newest begun epoch: new keys must be wrapped under it.
    pub current: u32,
    /// Every epoch key sealed to the caller's DID, oldest first.
    pub keys: Vec<SealedEpochKey>,
}

/// Whether a wrapped key belongs to a record or a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyOwner {
    /// A record's DEK.
    Record,
    /// A file's key.
    File,
}

/// A wrapped record or file key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WrappedDek {
    /// Record or file id.
    pub id: Uuid,
    /// Record or file.
    pub owner: KeyOwner,
    /// Cursor of the record or file version the key belongs to; a rewrap
    /// applies only if it is still current.
    pub cursor: u64,
    /// The wrapped key.
    pub dek: WrappedKey,
}

/// `deks.get` params (admin only): keys still wrapped under an older epoch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeksGetParams {
    /// The space.
    pub space: Uuid,
    /// Admin capability.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cap: Option<String>,
    /// Return keys wrapped under an epoch below this one.
    pub below_epoch: u32,
}

impl Validate for DeksGetParams {
    fn validate(&self) -> Result<(), ValidationError> {
        limits::check_cap(self.cap.as_ref())
    }
}

/// `deks.get` result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deks {
    /// At most [`crate::MAX_REWRAP_BATCH`] keys.
    pub deks: Vec<WrappedDek>,
    /// More remain; rewrap these, then ask again.
    pub more: bool,
}

/// `deks.rewrap` params (admin only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeksRewrapParams {
    /// The space.
    pub space: Uuid,
    /// Admin capability.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cap: Option<String>,
    /// The keys wrapped under the new epoch, with the cursor `deks.get` gave.
    pub deks: Vec<WrappedDek>,
}

impl Validate for DeksRewrapParams {
    fn validate(&self) -> Result<(), ValidationError> {
        limits::check_cap(self.cap.as_ref())?;
        limits::non_empty("deks", &self.deks)?;
        limits::check(Limit::RewrapBatch, self.deks.len())?;
        if self.deks.iter().any(|d| d.dek.epoch() == 0) {
            return Err(ValidationError::ZeroEpoch);
        }
        Ok(())
    }
}

/// `deks.rewrap` result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeksRewrapped {
    /// How many keys were replaced.
    pub rewrapped: u32,
    /// Keys not replaced because their record or file changed since
    /// `deks.get` (the new version already uses a current key).
    pub skipped: Vec<Uuid>,
}
