//! Shared helpers for the JOSE integration tests: fixed identities, a
//! replaying RNG (so vectors can pin nonces, IVs and ephemeral keys) and a
//! hand-rolled JWS builder for forging links the API refuses to make.
#![allow(dead_code)]

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand_core::{CryptoRng, RngCore};
use sealbase_crypto::capability::HEADER_B64;
use sealbase_crypto::{Identity, Uuid};

/// The space every capability vector is about.
pub(crate) const SPACE: Uuid = Uuid::from_u128(0x5ea1_ba5e_0000_4000_8000_0000_0000_0001);
/// Another space, for resource mismatches.
pub(crate) const OTHER_SPACE: Uuid = Uuid::from_u128(0x5ea1_ba5e_0000_4000_8000_0000_0000_0002);

/// Names of the fixed identities, in seed order (seed byte = index + 1).
pub(crate) const NAMES: [&str; 5] = ["root", "alice", "bob", "carol", "mallory"];

/// Ed25519 seed of a named identity.
pub(crate) fn ed25519_seed(name: &str) -> [u8; 32] {
    let index = NAMES.iter().position(|n| *n == name).unwrap();
    [u8::try_from(index).unwrap() + 1; 32]
}

/// X25519 secret of a named identity.
pub(crate) fn x25519_secret(name: &str) -> [u8; 32] {
    let index = NAMES.iter().position(|n| *n == name).unwrap();
    [u8::try_from(index).unwrap() + 0x41; 32]
}

/// A named, fixed identity.
pub(crate) fn ident(name: &str) -> Identity {
    Identity::from_secrets(&ed25519_seed(name), &x25519_secret(name))
}

/// An RNG that plays back fixed bytes and then fails loudly (tests only).
pub(crate) struct Replay {
    bytes: Vec<u8>,
    at: usize,
}

impl Replay {
    /// Plays back `bytes`.
    pub(crate) fn new(bytes: &[u8]) -> Self {
        Self {
            bytes: bytes.to_vec(),
            at: 0,
        }
    }
}

impl RngCore for Replay {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0; 4];
        self.fill_bytes(&mut b);
        u32::from_le_bytes(b)
    }
    fn next_u64(&mut self) -> u64 {
        let mut b = [0; 8];
        self.fill_bytes(&mut b);
        u64::from_le_bytes(b)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        let end = self.at + dest.len();
        dest.copy_from_slice(&self.bytes[self.at..end]);
        self.at = end;
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl CryptoRng for Replay {}

/// Unpadded base64url.
pub(crate) fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Unpadded base64url decode (test input is trusted).
pub(crate) fn unb64(text: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(text).unwrap()
}

/// A compact JWS with our header and `payload`, signed by `signer`: builds
/// links the API would refuse to (escalations, broken chains).
pub(crate) fn forge(signer: &Identity, payload: &serde_json::Value) -> String {
    forge_with_header(signer, HEADER_B64, payload)
}

/// [`forge`] with an arbitrary (already base64url) header part.
pub(crate) fn forge_with_header(
    signer: &Identity,
    header_b64: &str,
    payload: &serde_json::Value,
) -> String {
    let input = format!(
        "{header_b64}.{}",
        b64(&serde_json::to_vec(payload).unwrap())
    );
    let sig = signer.sign(input.as_bytes());
    format!("{input}.{}", b64(&sig))
}

/// The claims object of a link, as JSON.
pub(crate) fn claims(
    iss: &Identity,
    aud: &Identity,
    cap: &str,
    space: Uuid,
    exp: u64,
    nonce: [u8; 16],
    prf: Option<&str>,
) -> serde_json::Value {
    let mut v = serde_json::json!({
        "iss": iss.did().to_string(),
        "aud": aud.did().to_string(),
        "cap": cap,
        "res": format!("space:{}", space.hyphenated()),
        "exp": exp,
        "nnc": b64(&nonce),
    });
    if let Some(prf) = prf {
        v["prf"] = serde_json::Value::String(prf.to_owned());
    }
    v
}

/// Replaces the payload of a compact token, keeping its header and signature.
pub(crate) fn swap_payload(compact: &str, payload: &serde_json::Value) -> String {
    let parts: Vec<&str> = compact.split('.').collect();
    format!(
        "{}.{}.{}",
        parts[0],
        b64(&serde_json::to_vec(payload).unwrap()),
        parts[2]
    )
}

/// RFC 7518 §4.6.2 OtherInfo, built independently of the crate.
pub(crate) fn other_info(enc: &str, apu: &[u8], apv: &[u8], key_bits: u32) -> Vec<u8> {
    let mut out = Vec::new();
    for field in [enc.as_bytes(), apu, apv] {
        out.extend_from_slice(&u32::try_from(field.len()).unwrap().to_be_bytes());
        out.extend_from_slice(field);
    }
    out.extend_from_slice(&key_bits.to_be_bytes());
    out
}
