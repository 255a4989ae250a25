//! X25519 sealed boxes: epoch keys and invitations sealed to one member.
//!
//! `0x01 ‖ ephemeral X25519 public (32) ‖ nonce (12) ‖
//! AES-256-GCM(k, plaintext, aad = "sealbase/v1/seal" ‖ context)` with
//! `k = HKDF-SHA256(ikm = X25519(eph, recipient), salt = eph_pub ‖ recipient_pub,
//! info = "sealbase/v1/seal")`.
//!
//! `context` is chosen by the caller and binds the box to its use (for epoch
//! keys: `"epoch-key" ‖ space (16) ‖ epoch (u32 BE)`), so a box sealed for one
//! space or epoch does not open as another. A box is anonymous: it proves
//! nothing about the sender. Authenticity comes from where it is referenced
//! (a signed membership entry). Shared secrets from low-order points are
//! refused on both sides.

use rand_core::CryptoRngCore;
use uuid::Uuid;
use x25519_dalek::{PublicKey, SharedSecret, StaticSecret};
use zeroize::Zeroizing;

use crate::envelope::{NONCE_LEN, TAG_LEN};
use crate::gcm;
use crate::identity::AgreementPublicKey;
use crate::kdf;
use crate::keys::EpochKey;

/// Version byte of the sealed box.
pub const SEALED_VERSION: u8 = 0x01;
/// Bytes a sealed box adds to its plaintext: version, ephemeral key, nonce, tag.
pub const SEALED_OVERHEAD: usize = 1 + 32 + NONCE_LEN + TAG_LEN;
/// Domain-separation prefix of the associated data.
pub const SEAL_AAD_PREFIX: &[u8] = b"sealbase/v1/seal";
/// Context prefix of a sealed epoch key.
pub const EPOCH_KEY_CONTEXT: &[u8] = b"epoch-key";

/// Why sealing or opening failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// Shorter than version ‖ ephemeral key ‖ nonce ‖ tag (61 bytes).
    #[error("sealed box is truncated")]
    Truncated,
    /// The first byte is not a version this code knows.
    #[error("unsupported sealed box version {0:#04x}")]
    UnsupportedVersion(u8),
    /// The X25519 result is all zeros: one side used a low-order point.
    #[error("X25519 shared secret is not contributory (low-order public key)")]
    NonContributory,
    /// The GCM tag did not verify: not sealed to this key, another context,
    /// or tampered bytes; GCM cannot tell these apart.
    #[error("sealed box failed authentication (wrong recipient, wrong context, or tampered)")]
    Authentication,
    /// The plaintext is too long for AES-GCM.
    #[error("plaintext too large to seal")]
    TooLarge,
    /// The box opened but does not hold a 32-byte key (holds the length seen).
    #[error("sealed key must be 32 bytes, got {0}")]
    BadKeyLength(usize),
}

/// `HKDF-SHA256(ikm = shared, salt = eph_pub ‖ recipient_pub, info = SEAL)`,
/// after refusing a non-contributory shared secret.
fn seal_key(
    shared: SharedSecret,
    ephemeral_public: &PublicKey,
    recipient_public: &PublicKey,
) -> Result<Zeroizing<[u8; 32]>, SealError> {
    if !shared.was_contributory() {
        return Err(SealError::NonContributory);
    }
    let salt = [
        ephemeral_public.as_bytes().as_slice(),
        recipient_public.as_bytes().as_slice(),
    ]
    .concat();
    Ok(kdf::hkdf32(
        shared.as_bytes(),
        &salt,
        &[kdf::info::SEAL.as_bytes()],
    ))
}

fn seal_aad(context: &[u8]) -> Vec<u8> {
    [SEAL_AAD_PREFIX, context].concat()
}

/// Seals `plaintext` to `recipient` under a fresh ephemeral key and nonce.
pub fn seal(
    recipient: &AgreementPublicKey,
    plaintext: &[u8],
    context: &[u8],
    rng: &mut impl CryptoRngCore,
) -> Result<Vec<u8>, SealError> {
    let mut secret = Zeroizing::new([0u8; 32]);
    rng.fill_bytes(secret.as_mut());
    let ephemeral = StaticSecret::from(*secret);
    let mut nonce = [0u8; NONCE_LEN];
    rng.fill_bytes(&mut nonce);
    seal_with_ephemeral(recipient, plaintext, context, &ephemeral, &nonce)
}

/// Seals with a caller-chosen ephemeral secret and nonce. Only for test
/// vectors: reusing an ephemeral secret for the same recipient reuses `k`.
pub fn seal_with_ephemeral(
    recipient: &AgreementPublicKey,
    plaintext: &[u8],
    context: &[u8],
    ephemeral: &StaticSecret,
    nonce: &[u8; NONCE_LEN],
) -> Result<Vec<u8>, SealError> {
    let ephemeral_public = PublicKey::from(ephemeral);
    let recipient = PublicKey::from(*recipient.as_bytes());
    let key = seal_key(
        ephemeral.diffie_hellman(&recipient),
        &ephemeral_public,
        &recipient,
    )?;
    let header = 1 + 32 + NONCE_LEN;
    let mut out = Zeroizing::new(Vec::with_capacity(
        plaintext.len().saturating_add(SEALED_OVERHEAD),
    ));
    out.push(SEALED_VERSION);
    out.extend_from_slice(ephemeral_public.as_bytes());
    out.extend_from_slice(nonce);
    out.extend_from_slice(plaintext);
    let body = out.get_mut(header..).ok_or(SealError::Truncated)?;
    let tag = gcm::encrypt(key.as_slice(), nonce, &seal_aad(context), body)
        .map_err(|_| SealError::TooLarge)?;
    out.extend_from_slice(&tag);
    Ok(core::mem::take(&mut *out))
}

/// Opens a box sealed to `recipient` (an [`crate::Identity`]'s
/// `agreement_secret()`) under `context`. Checks, in order: version byte,
/// length, contributory shared secret, GCM tag.
pub fn open(
    recipient: &StaticSecret,
    sealed: &[u8],
    context: &[u8],
) -> Result<Zeroizing<Vec<u8>>, SealError> {
    let (&version, rest) = sealed.split_first().ok_or(SealError::Truncated)?;
    if version != SEALED_VERSION {
        return Err(SealError::UnsupportedVersion(version));
    }
    if sealed.len() < SEALED_OVERHEAD {
        return Err(SealError::Truncated);
    }
    let (ephemeral_public, rest) = rest.split_first_chunk::<32>().ok_or(SealError::Truncated)?;
    let (nonce, rest) = rest
        .split_first_chunk::<NONCE_LEN>()
        .ok_or(SealError::Truncated)?;
    let (ciphertext, tag) = rest
        .split_last_chunk::<TAG_LEN>()
        .ok_or(SealError::Truncated)?;
    let ephemeral_public = PublicKey::from(*ephemeral_public);
    let recipient_public = PublicKey::from(recipient);
    // The recipient's static secret meets the ephemeral public key; the salt
    // keeps the sender's order.
    let key = seal_key(
        recipient.diffie_hellman(&ephemeral_public),
        &ephemeral_public,
        &recipient_public,
    )?;
    let mut body = Zeroizing::new(ciphertext.to_vec());
    gcm::decrypt(key.as_slice(), nonce, &seal_aad(context), &mut body, tag)
        .map_err(|_| SealError::Authentication)?;
    Ok(body)
}

/// `"epoch-key" ‖ space (16) ‖ epoch (u32 BE)`: the context of a sealed epoch key.
pub fn epoch_key_context(space: &Uuid, epoch: u32) -> Vec<u8> {
    [EPOCH_KEY_CONTEXT, space.as_bytes(), &epoch.to_be_bytes()].concat()
}

/// Seals epoch `epoch`'s key of `space` to one member.
pub fn seal_epoch_key(
    recipient: &AgreementPublicKey,
    space: &Uuid,
    epoch: u32,
    key: &EpochKey,
    rng: &mut impl CryptoRngCore,
) -> Result<Vec<u8>, SealError> {
    seal(
        recipient,
        key.as_bytes(),
        &epoch_key_context(space, epoch),
        rng,
    )
}

/// Opens a sealed epoch key; fails unless it was sealed for this space and epoch.
pub fn open_epoch_key(
    recipient: &StaticSecret,
    space: &Uuid,
    epoch: u32,
    sealed: &[u8],
) -> Result<EpochKey, SealError> {
    let plain = open(recipient, sealed, &epoch_key_context(space, epoch))?;
    let key: [u8; 32] = plain
        .as_slice()
        .try_into()
        .map_err(|_| SealError::BadKeyLength(plain.len()))?;
    let key = Zeroizing::new(key);
    Ok(EpochKey::from_bytes(*key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Identity;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    const SPACE: Uuid = Uuid::from_bytes([4; 16]);

    #[test]
    fn epoch_key_round_trip_and_binding() {
        let id = Identity::from_secrets(&[1; 32], &[2; 32]);
        let mut rng = rand_core::OsRng;
        let key = EpochKey::from_bytes([3; 32]);
        let sealed = seal_epoch_key(&id.agreement_public(), &SPACE, 5, &key, &mut rng).unwrap();
        assert_eq!(sealed.len(), SEALED_OVERHEAD + 32);
        let secret = id.agreement_secret();
        assert_eq!(open_epoch_key(secret, &SPACE, 5, &sealed).unwrap(), key);
        assert_eq!(
            open_epoch_key(secret, &SPACE, 6, &sealed),
            Err(SealError::Authentication)
        );
        assert_eq!(
            open_epoch_key(secret, &Uuid::nil(), 5, &sealed),
            Err(SealError::Authentication)
        );
        let other = Identity::from_secrets(&[1; 32], &[9; 32]);
        assert_eq!(
            open_epoch_key(other.agreement_secret(), &SPACE, 5, &sealed),
            Err(SealError::Authentication)
        );
        assert_eq!(open(secret, &sealed[..60], b""), Err(SealError::Truncated));
        let mut v = sealed.clone();
        v[0] = 0;
        assert_eq!(open(secret, &v, b""), Err(SealError::UnsupportedVersion(0)));
        let short = seal(
            &id.agreement_public(),
            b"short",
            &epoch_key_context(&SPACE, 5),
            &mut rng,
        )
        .unwrap();
        assert_eq!(
            open_epoch_key(secret, &SPACE, 5, &short),
            Err(SealError::BadKeyLength(5))
        );
    }

    #[test]
    fn low_order_points_are_refused() {
        let id = Identity::from_secrets(&[1; 32], &[2; 32]);
        let mut rng = rand_core::OsRng;
        // The identity point (0) and a point of order 8.
        let zero = AgreementPublicKey([0; 32]);
        assert_eq!(
            seal(&zero, b"x", b"", &mut rng),
            Err(SealError::NonContributory)
        );
        let mut low = [0u8; 32];
        low[0] = 1; // u = 1 has order 4
        assert_eq!(
            seal(&AgreementPublicKey(low), b"x", b"", &mut rng),
            Err(SealError::NonContributory)
        );
        let mut forged = vec![SEALED_VERSION];
        forged.extend_from_slice(&[0; 32 + 12 + 16]);
        assert_eq!(
            open(id.agreement_secret(), &forged, b""),
            Err(SealError::NonContributory)
        );
    }
}
