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

/// `membership.json`: an entry body in readable form. `k` is the kind;
/// the other fields are those of that kind (bytes and hashes in hex, DIDs
/// as did:key strings, the role as `read` / `write` / `admin`).
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct MembershipBody {
    pub k: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x25519: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handle: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cap: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub members: Option<Vec<String>>,
}

/// `membership.json`: a signed, sealed membership log entry.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct MembershipEntryCase {
    pub name: String,
    pub author_ed25519_seed: String,
    pub author_x25519_secret: String,
    pub author_did: String,
    pub space: String,
    /// `null` for the genesis entry (32 zero bytes in aad and signature).
    pub prev_hash: Option<String>,
    pub epoch: u32,
    pub epoch_key: String,
    /// `HKDF(epoch_key, salt = empty, "sealbase/v1/membership")`.
    pub membership_key: String,
    /// `"sealbase/v1/membership" ‖ space ‖ prev_hash ‖ epoch (u32 BE)`.
    pub aad: String,
    pub nonce: String,
    pub body: MembershipBody,
    pub body_cbor: String,
    /// `"sealbase/v1/membership-sig" ‖ space ‖ prev_hash ‖ epoch ‖ body_cbor`.
    pub signed_message: String,
    pub signature: String,
    /// `{a: author, b: body_cbor, v: 1, sig: signature}`.
    pub signed_cbor: String,
    pub ciphertext: String,
    /// SHA-256 of `ciphertext`.
    pub entry_hash: String,
}

/// `membership.json`: ciphertexts `open_entry` must refuse.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct MembershipRejectCase {
    pub name: String,
    pub space: String,
    pub prev_hash: Option<String>,
    pub epoch_key: String,
    pub ciphertext: String,
    pub error: String,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct InvitationKey {
    pub epoch: u32,
    pub key: String,
}

/// `membership.json`: an invitation payload sealed to the invitee.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct InvitationCase {
    pub name: String,
    pub invitation: String,
    pub space: String,
    pub space_name: String,
    pub inviter: String,
    pub role: String,
    pub cap: String,
    pub keys: Vec<InvitationKey>,
    /// `{c, i, k: [{e, k}], n, r, s, v: 1}`.
    pub payload_cbor: String,
    pub recipient_secret: String,
    pub recipient_public: String,
    pub ephemeral_secret: String,
    pub nonce: String,
    /// `"invitation" ‖ invitation id (16)`.
    pub context: String,
    pub sealed: String,
}

/// `membership.json`: sealed invitations `open_invitation` must refuse.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct InvitationRejectCase {
    pub name: String,
    pub invitation: String,
    pub recipient_secret: String,
    pub sealed: String,
    pub error: String,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct MembershipFile {
    pub description: String,
    pub cases: Vec<MembershipEntryCase>,
    pub reject_cases: Vec<MembershipRejectCase>,
    pub invitations: Vec<InvitationCase>,
    pub invitation_reject_cases: Vec<InvitationRejectCase>,
}

/// How `membership.json` names a `MembershipError`: the variant, with its
/// version number or inner `SealError` but without free-text messages.
/// Exhaustive, so a new variant has to be named here.
pub fn membership_error_name(e: &sealbase_crypto::MembershipError) -> String {
    use sealbase_crypto::MembershipError as E;
    match e {
        E::Truncated => "Truncated".into(),
        E::UnsupportedVersion(v) => format!("UnsupportedVersion({v})"),
        E::Authentication => "Authentication".into(),
        E::Padding(_) => "Padding".into(),
        E::Malformed(_) => "Malformed".into(),
        E::UnsupportedPayloadVersion(v) => format!("UnsupportedPayloadVersion({v})"),
        E::BadSignature => "BadSignature".into(),
        E::TooLarge => "TooLarge".into(),
        E::Seal(inner) => format!("Seal({})", error_name(inner)),
    }
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

/// `channel.json`: a signed, sealed presence or event payload.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct ChannelCase {
    pub name: String,
    pub author_ed25519_seed: String,
    pub author_x25519_secret: String,
    pub author_did: String,
    pub space: String,
    pub epoch: u32,
    pub epoch_key: String,
    /// `HKDF(epoch_key, salt = empty, "sealbase/v1/channel")`.
    pub channel_key: String,
    /// `presence` (byte 0x01) or `event` (0x02).
    pub kind: String,
    pub data: String,
    /// `"sealbase/v1/channel" ‖ space ‖ kind ‖ epoch (u32 BE)`.
    pub aad: String,
    /// `"sealbase/v1/channel-sig" ‖ space ‖ kind ‖ epoch ‖ data`.
    pub signed_message: String,
    pub signature: String,
    /// `{a: author did:key, d: data, k: kind byte, s: signature}`.
    pub cbor: String,
    pub nonce: String,
    pub blob: String,
}

/// `channel.json`: blobs `open_channel` must refuse.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct ChannelRejectCase {
    pub name: String,
    pub space: String,
    pub kind: String,
    pub epoch_key: String,
    pub blob: String,
    pub error: String,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct ChannelFile {
    pub description: String,
    pub cases: Vec<ChannelCase>,
    pub reject_cases: Vec<ChannelRejectCase>,
}

/// `file.json`: one sealed chunk of a file case.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct FileChunkCase {
    pub index: u32,
    pub last: bool,
    /// `prefix ‖ index (u32 BE)`.
    pub nonce: String,
    /// `"sealbase/v1/file" ‖ space ‖ file ‖ index (u32 BE) ‖ last`.
    pub aad: String,
    pub sealed_len: usize,
    pub sealed_sha256: String,
    /// `ciphertext ‖ tag` in hex, for chunks shorter than a full one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed: Option<String>,
}

/// `file.json`: a sealed file body.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct FileCase {
    pub name: String,
    pub key: String,
    pub space: String,
    pub file: String,
    pub prefix: String,
    pub plain_len: u64,
    /// The plaintext in hex for short files; absent when it is
    /// `pattern(plain_len)`, byte i = (7 i + 3) mod 256.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plaintext: Option<String>,
    pub plaintext_sha256: String,
    /// `0x01 ‖ prefix`.
    pub header: String,
    pub chunks: Vec<FileChunkCase>,
    pub sealed_len: u64,
    /// SHA-256 of the whole body: header and chunks.
    pub sealed_sha256: String,
}

/// `file.json`: part of a refused body, either bytes given in hex or chunk
/// `chunk` of the file case named `case`.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct FilePart {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hex: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub case: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chunk: Option<u32>,
}

/// `file.json`: bodies `open_file` must refuse; the body is `parts` joined.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct FileRejectCase {
    pub name: String,
    pub key: String,
    pub space: String,
    pub file: String,
    pub parts: Vec<FilePart>,
    pub error: String,
}

/// `file.json`: `sealed_file_len` / `plain_file_len` pairs, or a sealed
/// length `plain_file_len` refuses.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct FileLengthCase {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plain_len: Option<u64>,
    pub sealed_len: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `file.json`: `sealed_span(sealed_len, plain_start, plain_end)`.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct FileSpanCase {
    pub sealed_len: u64,
    pub plain_start: u64,
    pub plain_end: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_chunk: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct FileVectorFile {
    pub description: String,
    pub cases: Vec<FileCase>,
    pub reject_cases: Vec<FileRejectCase>,
    pub lengths: Vec<FileLengthCase>,
    pub spans: Vec<FileSpanCase>,
}

/// `presence` or `event`, as `channel.json` spells the kinds.
pub fn channel_kind(s: &str) -> Option<sealbase_crypto::ChannelKind> {
    match s {
        "presence" => Some(sealbase_crypto::ChannelKind::Presence),
        "event" => Some(sealbase_crypto::ChannelKind::Event),
        _ => None,
    }
}

pub fn channel_kind_name(kind: sealbase_crypto::ChannelKind) -> String {
    match kind {
        sealbase_crypto::ChannelKind::Presence => "presence".into(),
        sealbase_crypto::ChannelKind::Event => "event".into(),
    }
}

/// `n` bytes of the vectors' repeating pattern: byte i is (7 i + 3) mod 256.
pub fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 + 3) as u8).collect()
}
