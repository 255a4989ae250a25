//! Wrapping the account root key, and the recovery key's human form.
//!
//! The accounts server stores `ARK` only as
//! `0x01 ‖ nonce (12) ‖ AES-256-GCM(K, ARK, aad = "sealbase/v1/ark")` (61
//! bytes), once with `K` derived from the OPAQUE export key and once with `K`
//! derived from the recovery key (see [`crate::kdf`]). Password change and
//! recovery re-wrap the same `ARK`.
//!
//! The recovery key is shown to the user once, as base58check (version byte
//! 0x01 inside the checked payload) in dash-separated groups of five. Parsing
//! ignores whitespace and dashes but nothing else (base58 is case-sensitive),
//! and tells a typo (checksum) apart from a wrong version or length.

use rand_core::CryptoRngCore;
use zeroize::Zeroizing;

use crate::envelope::{NONCE_LEN, TAG_LEN};
use crate::gcm;
use crate::keys::{AccountRootKey, ArkWrappingKey, RecoveryKey};

/// Version byte of the wrapped `ARK`.
pub const ARK_WRAP_VERSION: u8 = 0x01;
/// Length of a wrapped `ARK`: version, nonce, 32-byte key, tag.
pub const WRAPPED_ARK_LEN: usize = 1 + NONCE_LEN + 32 + TAG_LEN;
/// Associated data of the `ARK` wrap.
pub const ARK_WRAP_AAD: &[u8] = b"sealbase/v1/ark";

/// Why a wrapped `ARK` was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArkWrapError {
    /// The input is not exactly 61 bytes (holds the length seen).
    #[error("wrapped ARK must be {WRAPPED_ARK_LEN} bytes, got {0}")]
    BadLength(usize),
    /// The first byte is not a version this code knows.
    #[error("unsupported wrapped ARK version {0:#04x}")]
    UnsupportedVersion(u8),
    /// The GCM tag did not verify: wrong wrapping key (wrong password or
    /// recovery key) or tampered bytes; GCM cannot tell these apart.
    #[error("wrapped ARK failed authentication (wrong key or tampered)")]
    Authentication,
}

/// Wraps `ARK` under `kek` with a fresh random nonce.
pub fn wrap_ark(
    kek: &ArkWrappingKey,
    ark: &AccountRootKey,
    rng: &mut impl CryptoRngCore,
) -> [u8; WRAPPED_ARK_LEN] {
    let mut nonce = [0u8; NONCE_LEN];
    rng.fill_bytes(&mut nonce);
    wrap_ark_with_nonce(kek, ark, &nonce)
}

/// Wraps with a caller-chosen nonce. Only for test vectors; use [`wrap_ark`].
pub fn wrap_ark_with_nonce(
    kek: &ArkWrappingKey,
    ark: &AccountRootKey,
    nonce: &[u8; NONCE_LEN],
) -> [u8; WRAPPED_ARK_LEN] {
    let mut out = [0u8; WRAPPED_ARK_LEN];
    let (version, rest) = out.split_at_mut(1);
    let (nonce_out, rest) = rest.split_at_mut(NONCE_LEN);
    let (body, tag_out) = rest.split_at_mut(32);
    version.copy_from_slice(&[ARK_WRAP_VERSION]);
    nonce_out.copy_from_slice(nonce);
    body.copy_from_slice(ark.as_bytes());
    // GCM only fails for messages longer than 2^36 bytes.
    #[allow(clippy::expect_used)]
    let tag = gcm::encrypt(kek.as_bytes(), nonce, ARK_WRAP_AAD, body)
        .expect("a 32-byte message always encrypts");
    tag_out.copy_from_slice(&tag);
    out
}

/// Unwraps `ARK`. Checks the version byte, then the length, then the tag.
pub fn unwrap_ark(kek: &ArkWrappingKey, wrapped: &[u8]) -> Result<AccountRootKey, ArkWrapError> {
    let (&version, rest) = wrapped.split_first().ok_or(ArkWrapError::BadLength(0))?;
    if version != ARK_WRAP_VERSION {
        return Err(ArkWrapError::UnsupportedVersion(version));
    }
    let rest: &[u8; WRAPPED_ARK_LEN - 1] = rest
        .try_into()
        .map_err(|_| ArkWrapError::BadLength(wrapped.len()))?;
    let (nonce, sealed) = rest
        .split_first_chunk::<NONCE_LEN>()
        .ok_or(ArkWrapError::BadLength(wrapped.len()))?;
    let (ciphertext, tag) = sealed
        .split_last_chunk::<TAG_LEN>()
        .ok_or(ArkWrapError::BadLength(wrapped.len()))?;
    let mut key = Zeroizing::new([0u8; 32]);
    key.as_mut_slice().copy_from_slice(ciphertext);
    gcm::decrypt(kek.as_bytes(), nonce, ARK_WRAP_AAD, key.as_mut_slice(), tag)
        .map_err(|_| ArkWrapError::Authentication)?;
    Ok(AccountRootKey::from_bytes(*key))
}

/// Version byte inside the recovery key's base58check payload.
pub const RECOVERY_KEY_VERSION: u8 = 0x01;
/// Characters per group in the displayed recovery key.
pub const RECOVERY_KEY_GROUP: usize = 5;
/// Separator between groups in the displayed recovery key.
pub const RECOVERY_KEY_SEPARATOR: char = '-';
/// 1 version byte + 32 key bytes + 4 checksum bytes, base58: at most 51
/// characters; decoding uses a larger buffer so an inserted character still
/// reaches the checksum and reads as a typo.
const DECODE_BUF: usize = 64;

/// Why a recovery key did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecoveryKeyError {
    /// A character outside the base58 alphabet (`0`, `O`, `I` and `l` are not
    /// in it). `position` counts characters of the input, from 0.
    #[error("{character:?} at position {position} is not a recovery key character")]
    InvalidCharacter {
        /// The offending character.
        character: char,
        /// Its position in the input, in characters.
        position: usize,
    },
    /// The checksum does not match: most likely a typo.
    #[error("recovery key checksum does not match (check for a typo)")]
    Checksum,
    /// A valid base58check string with another version byte: not a Sealbase
    /// recovery key of this version.
    #[error("unsupported recovery key version {0:#04x}")]
    UnsupportedVersion(u8),
    /// A valid base58check string of the wrong length (or empty input).
    #[error("recovery key has the wrong length")]
    BadLength,
}

const BASE58_ALPHABET: &[u8] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

fn is_separator(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '-' | '\u{2010}' | '\u{2011}' | '\u{2012}' | '\u{2013}' | '\u{2014}' | '\u{2212}'
        )
}

/// The recovery key as shown to the user: base58check of `0x01 ‖ key`, in
/// groups of five joined by `-`.
pub fn format_recovery_key(key: &RecoveryKey) -> Zeroizing<String> {
    let mut encoded = Zeroizing::new([0u8; DECODE_BUF]);
    // 37 bytes encode to at most 51 characters, well inside the buffer.
    #[allow(clippy::expect_used)]
    let len = bs58::encode(key.as_bytes())
        .with_check_version(RECOVERY_KEY_VERSION)
        .onto(&mut encoded[..])
        .expect("a 37-byte payload fits the encode buffer");
    let mut out = Zeroizing::new(String::with_capacity(DECODE_BUF + DECODE_BUF / 4));
    for (i, &c) in encoded.iter().take(len).enumerate() {
        if i > 0 && i % RECOVERY_KEY_GROUP == 0 {
            out.push(RECOVERY_KEY_SEPARATOR);
        }
        out.push(char::from(c));
    }
    out
}

/// Parses a recovery key typed or pasted by the user. Whitespace and dashes
/// anywhere are ignored; everything else must be base58.
pub fn parse_recovery_key(input: &str) -> Result<RecoveryKey, RecoveryKeyError> {
    let mut cleaned = Zeroizing::new(Vec::with_capacity(input.len()));
    for (position, character) in input.chars().enumerate() {
        if is_separator(character) {
            continue;
        }
        match u8::try_from(character) {
            Ok(b) if BASE58_ALPHABET.contains(&b) => {
                if cleaned.len() >= DECODE_BUF * 2 {
                    return Err(RecoveryKeyError::BadLength);
                }
                cleaned.push(b);
            }
            _ => {
                return Err(RecoveryKeyError::InvalidCharacter {
                    character,
                    position,
                });
            }
        }
    }
    let mut decoded = Zeroizing::new([0u8; DECODE_BUF]);
    let len = bs58::decode(&cleaned[..])
        .with_check(Some(RECOVERY_KEY_VERSION))
        .onto(&mut decoded[..])
        .map_err(|e| match e {
            bs58::decode::Error::InvalidChecksum { .. } => RecoveryKeyError::Checksum,
            bs58::decode::Error::InvalidVersion { ver, .. } => {
                RecoveryKeyError::UnsupportedVersion(ver)
            }
            _ => RecoveryKeyError::BadLength,
        })?;
    // `len` counts the version byte and the key, not the checksum.
    if len != 33 {
        return Err(RecoveryKeyError::BadLength);
    }
    let key: [u8; 32] = decoded
        .get(1..33)
        .and_then(|k| k.try_into().ok())
        .ok_or(RecoveryKeyError::BadLength)?;
    let key = Zeroizing::new(key);
    Ok(RecoveryKey::from_bytes(*key))
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn ark_wrap_round_trip_and_errors() {
        let kek = ArkWrappingKey::from_bytes([1; 32]);
        let ark = AccountRootKey::from_bytes([2; 32]);
        let w = wrap_ark_with_nonce(&kek, &ark, &[3; 12]);
        assert_eq!(w[0], 1);
        assert_eq!(unwrap_ark(&kek, &w).unwrap(), ark);
        assert_eq!(
            unwrap_ark(&ArkWrappingKey::from_bytes([9; 32]), &w),
            Err(ArkWrapError::Authentication)
        );
        assert_eq!(unwrap_ark(&kek, &w[..60]), Err(ArkWrapError::BadLength(60)));
        assert_eq!(unwrap_ark(&kek, &[]), Err(ArkWrapError::BadLength(0)));
        let mut v = w;
        v[0] = 2;
        assert_eq!(
            unwrap_ark(&kek, &v),
            Err(ArkWrapError::UnsupportedVersion(2))
        );
        let mut t = w;
        t[30] ^= 0x80;
        assert_eq!(unwrap_ark(&kek, &t), Err(ArkWrapError::Authentication));
    }

    #[test]
    fn recovery_key_round_trip_and_tolerance() {
        let key = RecoveryKey::from_bytes([0x5a; 32]);
        let shown = format_recovery_key(&key);
        assert!(shown.split('-').all(|g| g.len() <= 5 && !g.is_empty()));
        assert_eq!(parse_recovery_key(&shown).unwrap(), key);
        let spaced = shown.replace('-', " ");
        assert_eq!(parse_recovery_key(&format!("  {spaced}\n")).unwrap(), key);
        let joined: String = shown.chars().filter(|c| *c != '-').collect();
        assert_eq!(parse_recovery_key(&joined).unwrap(), key);
    }

    #[test]
    fn recovery_key_errors_are_specific() {
        let key = RecoveryKey::from_bytes([0x11; 32]);
        let shown = format_recovery_key(&key);
        // Case matters in base58: a case change is a typo.
        let flipped: String = shown
            .chars()
            .enumerate()
            .map(|(i, c)| {
                if i == 7 && c.is_ascii_alphabetic() {
                    if c.is_ascii_uppercase() {
                        c.to_ascii_lowercase()
                    } else {
                        c.to_ascii_uppercase()
                    }
                } else {
                    c
                }
            })
            .collect();
        if flipped != *shown && !flipped.contains(['0', 'O', 'I', 'l']) {
            assert_eq!(
                parse_recovery_key(&flipped),
                Err(RecoveryKeyError::Checksum)
            );
        }
        let dropped: String = shown.chars().skip(1).collect();
        assert_eq!(
            parse_recovery_key(&dropped),
            Err(RecoveryKeyError::Checksum)
        );
        let inserted = format!("2{}", &*shown);
        assert_eq!(
            parse_recovery_key(&inserted),
            Err(RecoveryKeyError::Checksum)
        );
        assert_eq!(
            parse_recovery_key("abc0def"),
            Err(RecoveryKeyError::InvalidCharacter {
                character: '0',
                position: 3
            })
        );
        assert_eq!(parse_recovery_key(""), Err(RecoveryKeyError::BadLength));
        let v2 = bs58::encode([0x22; 32]).with_check_version(2).into_string();
        assert_eq!(
            parse_recovery_key(&v2),
            Err(RecoveryKeyError::UnsupportedVersion(2))
        );
        let short = bs58::encode([0x22; 16]).with_check_version(1).into_string();
        assert_eq!(parse_recovery_key(&short), Err(RecoveryKeyError::BadLength));
    }
}
