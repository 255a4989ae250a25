//! The AES-256-GCM calls shared by every format of this crate, so there is
//! one place that touches the AEAD API.

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce, Tag};

/// AES-GCM nonce length.
pub(crate) const NONCE_LEN: usize = 12;
/// AES-GCM tag length.
pub(crate) const TAG_LEN: usize = 16;

/// The key is not 32 bytes, the message exceeds what GCM can encrypt under
/// one nonce, or (decrypting) the tag does not verify.
#[derive(Debug)]
pub(crate) struct GcmError;

/// Encrypts `buf` in place and returns the tag.
pub(crate) fn encrypt(
    key: &[u8],
    nonce: &[u8; NONCE_LEN],
    aad: &[u8],
    buf: &mut [u8],
) -> Result<[u8; TAG_LEN], GcmError> {
    let cipher = Aes256Gcm::new_from_slice(key).map_err(|_| GcmError)?;
    let tag = cipher
        .encrypt_inout_detached(&Nonce::from(*nonce), aad, buf.into())
        .map_err(|_| GcmError)?;
    Ok(tag.into())
}

/// Decrypts `buf` in place if `tag` verifies; on failure `buf` is left as
/// ciphertext.
pub(crate) fn decrypt(
    key: &[u8],
    nonce: &[u8; NONCE_LEN],
    aad: &[u8],
    buf: &mut [u8],
    tag: &[u8; TAG_LEN],
) -> Result<(), GcmError> {
    let cipher = Aes256Gcm::new_from_slice(key).map_err(|_| GcmError)?;
    cipher
        .decrypt_inout_detached(&Nonce::from(*nonce), aad, buf.into(), &Tag::from(*tag))
        .map_err(|_| GcmError)
}
