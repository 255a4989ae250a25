//! Key derivations (DESIGN.md §3.1).
//!
//! Every derivation is HKDF-SHA256 with an empty salt and a fixed ASCII info
//! string from [`info`]. The strings are part of the format: changing one
//! changes every key below it, so they are pinned by test vectors and listed
//! in `docs/security.md`.

use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::keys::{AccountRootKey, AppKey, ArkWrappingKey, ChannelKey, EpochKey, RecoveryKey};

/// The HKDF info strings, one per derived key.
pub mod info {
    /// Key that wraps `ARK`, from the OPAQUE export key.
    pub const ARK_WRAP_OPAQUE: &str = "sealbase/v1/ark-wrap/opaque";
    /// Key that wraps `ARK`, from the user's recovery key.
    pub const ARK_WRAP_RECOVERY: &str = "sealbase/v1/ark-wrap/recovery";
    /// Proof of holding `ARK`, shown to the accounts server when `ARK` is
    /// re-wrapped (password change, recovery); the server keeps only its hash.
    pub const ARK_PROOF: &str = "sealbase/v1/ark-proof";
    /// App key prefix; the OAuth `client_id` (UTF-8) follows directly.
    pub const APP: &str = "sealbase/v1/app";
    /// Ed25519 identity seed, from the app key.
    pub const IDENTITY_ED25519: &str = "sealbase/v1/identity/ed25519";
    /// X25519 agreement secret, from the app key.
    pub const IDENTITY_X25519: &str = "sealbase/v1/identity/x25519";
    /// Personal space epoch key, from the app key.
    pub const PERSONAL_EPOCH: &str = "sealbase/v1/personal-epoch";
    /// Channel key (presence, ephemeral events), from an epoch key.
    pub const CHANNEL: &str = "sealbase/v1/channel";
    /// Membership log entries of one epoch.
    pub const MEMBERSHIP: &str = "sealbase/v1/membership";
    /// Sealed-box key, from an X25519 shared secret (salt: ephemeral public
    /// key ‖ recipient public key).
    pub const SEAL: &str = "sealbase/v1/seal";
}

/// HKDF-SHA256 with empty salt, 32-byte output.
pub(crate) fn hkdf32(ikm: &[u8], salt: &[u8], info: &[&[u8]]) -> Zeroizing<[u8; 32]> {
    let hk = Hkdf::<Sha256>::new(Some(salt), ikm);
    let mut out = Zeroizing::new([0u8; 32]);
    // 32 bytes is far below HKDF-SHA256's 8160-byte limit, so expand cannot fail.
    #[allow(clippy::expect_used)]
    hk.expand_multi_info(info, out.as_mut())
        .expect("32-byte HKDF output is always valid");
    out
}

/// `HKDF(export_key, "sealbase/v1/ark-wrap/opaque")`: the key that wraps `ARK`
/// for password login. `export_key` is OPAQUE's export key (64 bytes with
/// SHA-512), which only the client ever sees.
pub fn ark_wrapping_key_from_export_key(export_key: &[u8]) -> ArkWrappingKey {
    ArkWrappingKey::from_bytes(*hkdf32(
        export_key,
        &[],
        &[info::ARK_WRAP_OPAQUE.as_bytes()],
    ))
}

/// `HKDF(recovery_key, "sealbase/v1/ark-wrap/recovery")`: the key that wraps
/// the recovery copy of `ARK`.
pub fn ark_wrapping_key_from_recovery_key(recovery_key: &RecoveryKey) -> ArkWrappingKey {
    ArkWrappingKey::from_bytes(*hkdf32(
        recovery_key.as_bytes(),
        &[],
        &[info::ARK_WRAP_RECOVERY.as_bytes()],
    ))
}

/// `HKDF(ARK, "sealbase/v1/ark-proof")`: lets the accounts server check that
/// a client re-wrapping `ARK` (password change, recovery) holds the same
/// `ARK`, without learning it. The server stores only SHA-256 of the proof,
/// so a database dump cannot be replayed as a proof; the proof itself says
/// nothing about `ARK` (HKDF is one-way).
pub fn ark_proof(ark: &AccountRootKey) -> Zeroizing<[u8; 32]> {
    hkdf32(ark.as_bytes(), &[], &[info::ARK_PROOF.as_bytes()])
}

/// `AK = HKDF(ARK, "sealbase/v1/app" ‖ client_id)`.
pub fn app_key(ark: &AccountRootKey, client_id: &str) -> AppKey {
    AppKey::from_bytes(*hkdf32(
        ark.as_bytes(),
        &[],
        &[info::APP.as_bytes(), client_id.as_bytes()],
    ))
}

/// The personal space's (only) epoch key, `HKDF(AK, "sealbase/v1/personal-epoch")`.
pub fn personal_epoch_key(ak: &AppKey) -> EpochKey {
    EpochKey::from_bytes(*hkdf32(
        ak.as_bytes(),
        &[],
        &[info::PERSONAL_EPOCH.as_bytes()],
    ))
}

/// `HKDF(E_n, "sealbase/v1/channel")`.
pub fn channel_key(epoch_key: &EpochKey) -> ChannelKey {
    ChannelKey::from_bytes(*hkdf32(
        epoch_key.as_bytes(),
        &[],
        &[info::CHANNEL.as_bytes()],
    ))
}

/// `HKDF(E_n, "sealbase/v1/membership")`: seals the membership log
/// entries written under epoch `n`.
pub fn membership_key(epoch_key: &EpochKey) -> Zeroizing<[u8; 32]> {
    hkdf32(epoch_key.as_bytes(), &[], &[info::MEMBERSHIP.as_bytes()])
}

/// Ed25519 seed of the app identity, `HKDF(AK, "sealbase/v1/identity/ed25519")`.
pub(crate) fn identity_ed25519_seed(ak: &AppKey) -> Zeroizing<[u8; 32]> {
    hkdf32(ak.as_bytes(), &[], &[info::IDENTITY_ED25519.as_bytes()])
}

/// X25519 secret of the app identity, `HKDF(AK, "sealbase/v1/identity/x25519")`.
pub(crate) fn identity_x25519_secret(ak: &AppKey) -> Zeroizing<[u8; 32]> {
    hkdf32(ak.as_bytes(), &[], &[info::IDENTITY_X25519.as_bytes()])
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn app_keys_differ_per_client() {
        let ark = AccountRootKey::from_bytes([7; 32]);
        assert_ne!(app_key(&ark, "tasks"), app_key(&ark, "notes"));
        assert_eq!(app_key(&ark, "tasks"), app_key(&ark, "tasks"));
    }

    #[test]
    fn derivations_are_domain_separated() {
        let ak = AppKey::from_bytes([9; 32]);
        let epoch = personal_epoch_key(&ak);
        assert_ne!(epoch.as_bytes(), &*identity_ed25519_seed(&ak));
        assert_ne!(&*identity_ed25519_seed(&ak), &*identity_x25519_secret(&ak));
    }
}
