//! Bearer secrets and emailed codes.
//!
//! Every secret a client presents later (session and refresh tokens,
//! authorization codes, signup/recovery/login/request ids) is 32 random
//! bytes, base64url, and the database keeps only its SHA-256 ([`hash`]):
//! a dump cannot be replayed. 32 random bytes need no salt or slow hash.
//!
//! Emailed codes have only 6 digits, so a plain hash would fall to 10⁶
//! guesses offline; they are stored as HMAC-SHA256 under the server's code
//! key ([`CodeKey`], kept in the key file, not the database).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use rand_core::CryptoRngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A fresh bearer secret: 32 random bytes, base64url.
pub fn token(rng: &mut impl CryptoRngCore) -> String {
    let mut bytes = [0u8; 32];
    rng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// What the database keeps of a bearer secret.
pub fn hash(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

/// A fresh 6-digit code, uniformly drawn.
pub fn code(rng: &mut impl CryptoRngCore) -> String {
    // Rejection sampling: 4,294,000,000 is the largest multiple of 10^6
    // below 2^32, so every code is equally likely.
    loop {
        let n = rng.next_u32();
        if n < 4_294_000_000 {
            return format!("{:06}", n % 1_000_000);
        }
    }
}

/// HMAC key for emailed codes.
#[derive(Clone)]
pub struct CodeKey(pub [u8; 32]);

impl std::fmt::Debug for CodeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CodeKey(..)")
    }
}

impl CodeKey {
    fn mac(&self, flow_hash: &[u8], code: &str) -> Hmac<Sha256> {
        // A fixed 32-byte key is always accepted.
        #[allow(clippy::expect_used)]
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(b"sealbase/v1/email-code\0");
        mac.update(flow_hash);
        mac.update(code.as_bytes());
        mac
    }

    /// The stored form of `code` for the flow `flow_hash`.
    pub fn hash(&self, flow_hash: &[u8], code: &str) -> Vec<u8> {
        self.mac(flow_hash, code).finalize().into_bytes().to_vec()
    }

    /// Whether `code` matches `stored` (constant time).
    pub fn verify(&self, flow_hash: &[u8], code: &str, stored: &[u8]) -> bool {
        let computed = self.hash(flow_hash, code);
        computed.ct_eq(stored).into()
    }
}

/// SHA-256 of an `ARK` proof (what the database keeps).
pub fn ark_proof_hash(proof: &[u8]) -> Vec<u8> {
    Sha256::digest(proof).to_vec()
}

/// Whether `proof` hashes to `stored` (constant time).
pub fn ark_proof_matches(proof: &[u8], stored: &[u8]) -> bool {
    ark_proof_hash(proof).ct_eq(stored).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::OsRng;

    #[test]
    fn codes_are_six_digits() {
        for _ in 0..1000 {
            let c = code(&mut OsRng);
            assert_eq!(c.len(), 6);
            assert!(c.bytes().all(|b| b.is_ascii_digit()));
        }
    }

    #[test]
    fn code_hash_is_keyed_and_bound_to_the_flow() {
        let key = CodeKey([7; 32]);
        let stored = key.hash(b"flow-a", "123456");
        assert!(key.verify(b"flow-a", "123456", &stored));
        assert!(!key.verify(b"flow-a", "123457", &stored));
        assert!(!key.verify(b"flow-b", "123456", &stored));
        assert!(!CodeKey([8; 32]).verify(b"flow-a", "123456", &stored));
        assert_ne!(stored, Sha256::digest(b"123456").to_vec());
    }
}
