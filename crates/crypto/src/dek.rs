//! Record and file key wrapping (DESIGN.md §3.1).
//!
//! A wrapped key is `epoch (u32 BE) ‖ AES-KW(E_epoch, key)`: exactly 44 bytes
//! (RFC 3394 key wrap with AES-256, 32-byte key + 8-byte integrity block).
//! The server reads the epoch prefix to check that a push or a rewrap targets
//! the space's current epoch; it never holds an epoch key.
//!
//! The epoch prefix is not authenticated on its own: a changed prefix only
//! makes the reader pick another epoch key, and AES-KW's integrity check then
//! fails. Record keys and file keys share the format (both are random keys
//! under the same epoch key).

use aes_kw::KekAes256;
use zeroize::Zeroizing;

use crate::keys::{Dek, EpochKey, FileKey};

/// Length of a wrapped key: 4-byte epoch + 40-byte AES-KW output.
pub const WRAPPED_KEY_LEN: usize = 44;
const EPOCH_LEN: usize = 4;
const KW_LEN: usize = 40;

/// Why a wrapped key was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DekWrapError {
    /// The input is not exactly 44 bytes (holds the length seen).
    #[error("wrapped key must be {WRAPPED_KEY_LEN} bytes, got {0}")]
    BadLength(usize),
    /// AES-KW's integrity check failed: wrong epoch key or tampered bytes.
    #[error("wrapped key failed the AES-KW integrity check (wrong epoch key or tampered)")]
    Unwrap,
}

/// `epoch (u32 BE) ‖ AES-KW(E_epoch, key)`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct WrappedKey {
    epoch: u32,
    wrapped: [u8; KW_LEN],
}

impl core::fmt::Debug for WrappedKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("WrappedKey")
            .field("epoch", &self.epoch)
            .finish_non_exhaustive()
    }
}

impl WrappedKey {
    /// Parses the 44-byte wire form. Only the length is checked here; the
    /// integrity check happens on unwrap.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DekWrapError> {
        let bytes: &[u8; WRAPPED_KEY_LEN] = bytes
            .try_into()
            .map_err(|_| DekWrapError::BadLength(bytes.len()))?;
        let (epoch, wrapped) = bytes
            .split_first_chunk::<EPOCH_LEN>()
            .ok_or(DekWrapError::BadLength(WRAPPED_KEY_LEN))?;
        let wrapped: [u8; KW_LEN] = wrapped
            .try_into()
            .map_err(|_| DekWrapError::BadLength(WRAPPED_KEY_LEN))?;
        Ok(Self {
            epoch: u32::from_be_bytes(*epoch),
            wrapped,
        })
    }

    /// The epoch whose key wraps this key.
    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    /// The 44-byte wire form.
    pub fn to_bytes(&self) -> [u8; WRAPPED_KEY_LEN] {
        let mut out = [0u8; WRAPPED_KEY_LEN];
        let (epoch, wrapped) = out.split_at_mut(EPOCH_LEN);
        epoch.copy_from_slice(&self.epoch.to_be_bytes());
        wrapped.copy_from_slice(&self.wrapped);
        out
    }
}

/// The epoch prefix of a wrapped key, after checking its length: the server's
/// cheap check that a DEK was wrapped for the current epoch.
pub fn wrapped_epoch(bytes: &[u8]) -> Result<u32, DekWrapError> {
    WrappedKey::from_bytes(bytes).map(|w| w.epoch())
}

fn wrap_raw(epoch: u32, epoch_key: &EpochKey, key: &[u8; 32]) -> WrappedKey {
    let kek = KekAes256::new(epoch_key.as_bytes().into());
    let mut wrapped = [0u8; KW_LEN];
    // A 32-byte key is a whole number of semiblocks and `wrapped` is exactly
    // 8 bytes longer, the only two conditions under which wrap fails.
    #[allow(clippy::expect_used)]
    kek.wrap(key, &mut wrapped)
        .expect("32-byte key into a 40-byte buffer always wraps");
    WrappedKey { epoch, wrapped }
}

fn unwrap_raw(
    epoch_key: &EpochKey,
    wrapped: &WrappedKey,
) -> Result<Zeroizing<[u8; 32]>, DekWrapError> {
    let kek = KekAes256::new(epoch_key.as_bytes().into());
    let mut key = Zeroizing::new([0u8; 32]);
    kek.unwrap(&wrapped.wrapped, key.as_mut())
        .map_err(|_| DekWrapError::Unwrap)?;
    Ok(key)
}

/// Wraps a record key under epoch `epoch`'s key.
pub fn wrap_dek(epoch: u32, epoch_key: &EpochKey, dek: &Dek) -> WrappedKey {
    wrap_raw(epoch, epoch_key, dek.as_bytes())
}

/// Unwraps a record key. The caller picks `epoch_key` by [`WrappedKey::epoch`].
pub fn unwrap_dek(epoch_key: &EpochKey, wrapped: &WrappedKey) -> Result<Dek, DekWrapError> {
    unwrap_raw(epoch_key, wrapped).map(|k| Dek::from_bytes(*k))
}

/// Wraps a file key under epoch `epoch`'s key.
pub fn wrap_file_key(epoch: u32, epoch_key: &EpochKey, key: &FileKey) -> WrappedKey {
    wrap_raw(epoch, epoch_key, key.as_bytes())
}

/// Unwraps a file key. The caller picks `epoch_key` by [`WrappedKey::epoch`].
pub fn unwrap_file_key(
    epoch_key: &EpochKey,
    wrapped: &WrappedKey,
) -> Result<FileKey, DekWrapError> {
    unwrap_raw(epoch_key, wrapped).map(|k| FileKey::from_bytes(*k))
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    /// RFC 3394 §4.6: 256 bits of key data with a 256-bit KEK.
    #[test]
    fn rfc3394_known_answer() {
        let kek = EpochKey::from_bytes(
            hex::decode("000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F")
                .unwrap()
                .try_into()
                .unwrap(),
        );
        let dek = Dek::from_bytes(
            hex::decode("00112233445566778899AABBCCDDEEFF000102030405060708090A0B0C0D0E0F")
                .unwrap()
                .try_into()
                .unwrap(),
        );
        let w = wrap_dek(7, &kek, &dek);
        assert_eq!(
            hex::encode_upper(&w.to_bytes()[4..]),
            "28C9F404C4B810F4CBCCB35CFB87F8263F5786E2D80ED326CBC7F0E71A99F43BFB988B9B7A02DD21"
        );
        assert_eq!(&w.to_bytes()[..4], &[0, 0, 0, 7]);
        assert_eq!(unwrap_dek(&kek, &w).unwrap(), dek);
    }

    #[test]
    fn parse_and_errors() {
        let ek = EpochKey::from_bytes([1; 32]);
        let w = wrap_file_key(0x0102_0304, &ek, &FileKey::from_bytes([2; 32]));
        let bytes = w.to_bytes();
        assert_eq!(wrapped_epoch(&bytes), Ok(0x0102_0304));
        assert_eq!(WrappedKey::from_bytes(&bytes), Ok(w));
        assert_eq!(
            wrapped_epoch(&bytes[..43]),
            Err(DekWrapError::BadLength(43))
        );
        assert_eq!(
            WrappedKey::from_bytes(&[0; 45]),
            Err(DekWrapError::BadLength(45))
        );
        assert_eq!(
            unwrap_file_key(&EpochKey::from_bytes([3; 32]), &w),
            Err(DekWrapError::Unwrap)
        );
        let mut tampered = bytes;
        tampered[20] ^= 1;
        let tampered = WrappedKey::from_bytes(&tampered).unwrap();
        assert_eq!(unwrap_file_key(&ek, &tampered), Err(DekWrapError::Unwrap));
        assert!(!format!("{w:?}").contains(&hex::encode(&bytes[4..8])));
    }
}
