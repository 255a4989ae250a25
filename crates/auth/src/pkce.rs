//! PKCE (RFC 7636, `S256` only) with Sealbase's key binding.
//!
//! An app that wants its app key delivered (DESIGN §6) makes an ephemeral
//! X25519 key pair and sends the public half as `key_x25519` (base64url of
//! the 32 bytes) in the authorization request. The key is bound into the
//! challenge:
//!
//! ```text
//! code_challenge = BASE64URL(SHA-256(code_verifier ‖ "." ‖ key_x25519))
//! ```
//!
//! so a `key_x25519` swapped on the way to the consent page (where the app
//! key is sealed to it) no longer matches the challenge, and the token
//! endpoint, which recomputes the challenge from the verifier and the key
//! it stored, refuses the code before relaying anything. Without
//! `key_x25519` this is plain RFC 7636 `S256`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand_core::CryptoRngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The only challenge method accepted.
pub const METHOD: &str = "S256";
/// Shortest verifier RFC 7636 allows.
pub const MIN_VERIFIER_LEN: usize = 43;
/// Longest verifier RFC 7636 allows.
pub const MAX_VERIFIER_LEN: usize = 128;
/// Length of an `S256` challenge (base64url of 32 bytes).
pub const CHALLENGE_LEN: usize = 43;

/// A fresh verifier: 32 random bytes, base64url (43 characters).
pub fn new_verifier(rng: &mut impl CryptoRngCore) -> String {
    let mut bytes = [0u8; 32];
    rng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Whether `verifier` has RFC 7636's syntax: 43–128 characters of
/// `[A-Za-z0-9-._~]`.
pub fn is_valid_verifier(verifier: &str) -> bool {
    (MIN_VERIFIER_LEN..=MAX_VERIFIER_LEN).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// Whether `challenge` looks like an `S256` challenge (43 base64url
/// characters encoding 32 bytes).
pub fn is_valid_challenge(challenge: &str) -> bool {
    challenge.len() == CHALLENGE_LEN
        && URL_SAFE_NO_PAD
            .decode(challenge)
            .is_ok_and(|bytes| bytes.len() == 32)
}

/// The challenge for `verifier`, bound to `key_x25519` (the request
/// parameter's exact text) when there is one.
pub fn challenge(verifier: &str, key_x25519: Option<&str>) -> String {
    let mut hash = Sha256::new();
    hash.update(verifier.as_bytes());
    if let Some(key) = key_x25519 {
        hash.update(b".");
        hash.update(key.as_bytes());
    }
    URL_SAFE_NO_PAD.encode(hash.finalize())
}

/// Whether `verifier` (well-formed) answers `challenge` for `key_x25519`;
/// compares in constant time.
pub fn verify(challenge_text: &str, verifier: &str, key_x25519: Option<&str>) -> bool {
    if !is_valid_verifier(verifier) {
        return false;
    }
    let expected = challenge(verifier, key_x25519);
    expected.as_bytes().ct_eq(challenge_text.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7636_appendix_b() {
        // RFC 7636 Appendix B: the S256 example.
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        assert_eq!(
            challenge(verifier, None),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        assert!(verify(
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            verifier,
            None
        ));
    }

    #[test]
    fn binding_changes_the_challenge() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let key = "hSDwCYkwp1R0i33ctD73Wg2_Og0mOBr066SpjqqbTmo";
        let bound = challenge(verifier, Some(key));
        assert!(verify(&bound, verifier, Some(key)));
        assert!(!verify(&bound, verifier, None));
        assert!(!verify(
            &bound,
            verifier,
            Some("gSDwCYkwp1R0i33ctD73Wg2_Og0mOBr066SpjqqbTmo")
        ));
        assert!(!verify(&challenge(verifier, None), verifier, Some(key)));
    }

    #[test]
    fn verifier_syntax() {
        assert!(!is_valid_verifier("short"));
        assert!(!is_valid_verifier(&"a".repeat(129)));
        assert!(!is_valid_verifier(&format!("{}+", "a".repeat(50))));
        assert!(is_valid_verifier(&"a~._-".repeat(10)));
        assert!(!verify(&challenge("x", None), "x", None));
        assert!(is_valid_challenge(&challenge("whatever", None)));
        assert!(!is_valid_challenge(
            "plain-verifier-used-as-challenge-is-refused-here"
        ));
    }
}
