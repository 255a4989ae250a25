//! Shape of the JSON test vectors, shared by the generator (`vectors_gen.rs`,
//! native only) and the checker (`vectors.rs`, native and wasm32). Bytes are
//! lowercase hex; ids are UUID strings.
#![allow(dead_code, unreachable_pub, missing_docs)]

use serde::{Deserialize, Serialize};

/// One vector file: what it pins, then its cases.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct VectorFile<C> {
    pub description: String,
    pub cases: Vec<C>,
}

/// `envelope.json`: record blobs. Positive cases have `plaintext` and
/// `padded_len`; negative cases have `error` (the `EnvelopeError` variant).
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct EnvelopeCase {
    pub name: String,
    pub dek: String,
    pub space: String,
    pub record: String,
    /// `"sealbase/v1/record" ‖ space ‖ record`, spelled out for other implementations.
    pub aad: String,
    pub nonce: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plaintext: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub padded_len: Option<usize>,
    pub blob: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `record-envelope.json`: signed CBOR envelopes and their sealed blobs.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct RecordEnvelopeCase {
    pub name: String,
    pub signer_ed25519_seed: String,
    pub signer_x25519_secret: String,
    pub did: String,
    pub space: String,
    pub record: String,
    pub collection: String,
    pub schema_version: u32,
    pub doc: String,
    /// As passed to `sign` (any order); the envelope stores them sorted.
    pub heads: Vec<String>,
    pub signed_message: String,
    pub signature: String,
    pub cbor: String,
    pub dek: String,
    pub nonce: String,
    pub blob: String,
}

/// `record-envelope.json` negative cases: CBOR that must be rejected.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct RecordEnvelopeRejectCase {
    pub name: String,
    pub space: String,
    pub record: String,
    pub cbor: String,
    pub error: String,
}

/// `record-envelope.json` holds both kinds of cases.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct RecordEnvelopeFile {
    pub description: String,
    pub cases: Vec<RecordEnvelopeCase>,
    pub reject_cases: Vec<RecordEnvelopeRejectCase>,
}

/// `kdf.json`: every HKDF-SHA256 derivation (32-byte output). `info` is the
/// full info input (for the app key: prefix ‖ client_id).
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct KdfCase {
    pub name: String,
    pub function: String,
    pub ikm: String,
    pub salt: String,
    pub info: String,
    pub info_text: String,
    pub output: String,
}

/// `kdf.json`: the app identity derived from an app key.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct IdentityCase {
    pub name: String,
    pub app_key: String,
    pub ed25519_seed: String,
    pub ed25519_public: String,
    pub did: String,
    pub x25519_secret: String,
    pub x25519_public: String,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct KdfFile {
    pub description: String,
    pub cases: Vec<KdfCase>,
    pub identities: Vec<IdentityCase>,
}

/// `dek-wrap.json`: `epoch ‖ AES-KW(epoch key, key)`.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct DekWrapCase {
    pub name: String,
    /// `dek` or `file`.
    pub kind: String,
    pub epoch: u32,
    pub epoch_key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    pub wrapped: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `ark-wrap.json`: `0x01 ‖ nonce ‖ AES-256-GCM(kek, ARK, "sealbase/v1/ark")`.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct ArkWrapCase {
    pub name: String,
    pub kek: String,
    pub nonce: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ark: Option<String>,
    pub wrapped: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `recovery-key.json`: display strings, accepted spellings and rejections.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct RecoveryKeyCase {
    pub name: String,
    pub input: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Set when `input` is exactly what `format_recovery_key(key)` shows.
    #[serde(default)]
    pub canonical: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `sealed.json`: X25519 sealed boxes.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct SealedCase {
    pub name: String,
    pub recipient_secret: String,
    pub recipient_public: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ephemeral_secret: Option<String>,
    pub ephemeral_public: String,
    /// `HKDF(X25519, salt = eph_pub ‖ recipient_pub, "sealbase/v1/seal")`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    pub nonce: String,
    pub context: String,
    /// `"sealbase/v1/seal" ‖ context`.
    pub aad: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plaintext: Option<String>,
    pub sealed: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `did.json`: valid and invalid did:key strings.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct DidCase {
    pub name: String,
    pub did: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The variant name of an error as the vectors spell it: its `Debug` form,
/// without free-text messages (e.g. `MalformedEnvelope`).
pub fn error_name(e: &impl core::fmt::Debug) -> String {
    let s = format!("{e:?}");
    match s.find("(\"") {
        Some(i) => s.get(..i).unwrap_or(&s).to_owned(),
        None => s,
    }
}

pub fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap()
}

pub fn arr32(s: &str) -> [u8; 32] {
    unhex(s).try_into().unwrap()
}

pub fn arr12(s: &str) -> [u8; 12] {
    unhex(s).try_into().unwrap()
}

pub fn uuid(s: &str) -> uuid::Uuid {
    s.parse().unwrap()
}
