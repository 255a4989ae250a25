//! The keys sync uses, all derived from the app key (DESIGN.md §3.1).

use sealbase_crypto::{AppKey, Did, EpochKey, Identity, kdf};

/// Epoch number of the personal space's only key.
pub const PERSONAL_EPOCH: u32 = 1;

/// The user's identity in this app and the personal space's epoch key.
#[derive(Clone)]
pub struct SyncKeys {
    identity: Identity,
    personal: EpochKey,
}

impl std::fmt::Debug for SyncKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncKeys")
            .field("did", &self.identity.did())
            .finish_non_exhaustive()
    }
}

impl SyncKeys {
    /// Derives everything from the app key.
    pub fn from_app_key(ak: &AppKey) -> Self {
        Self {
            identity: Identity::from_app_key(ak),
            personal: kdf::personal_epoch_key(ak),
        }
    }

    /// The signing identity (its DID is the user's `did:key` in this app).
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// The user's DID in this app.
    pub fn did(&self) -> Did {
        self.identity.did()
    }

    /// The personal space's epoch key.
    pub fn personal_epoch_key(&self) -> &EpochKey {
        &self.personal
    }
}
