//! Record envelope v1 (DESIGN.md §3.2).
//!
//! A record on the wire is
//! `0x01 ‖ nonce (12) ‖ AES-256-GCM(DEK, pad(plaintext), aad)` with
//! `aad = "sealbase/v1/record" ‖ space_id (16) ‖ record_id (16)`, so a blob
//! only opens under the space and record id it was sealed for. The plaintext
//! is normally the CBOR of a [`RecordEnvelope`]: collection, schema version,
//! Automerge `save()` bytes and the author's signature.
//!
//! Padding hides the exact size from the server: `pad` writes a 4-byte
//! big-endian length, the plaintext and zero bytes up to a bucket size (powers
//! of two from 256 bytes to 1 MiB, then whole MiB). Padding is only checked
//! after GCM has authenticated the body, so padding errors are no oracle.
//!
//! Invariant: [`open_record`] returns plaintext only if the tag verified under
//! this DEK *and* this (space, record) binding, and the padding is well formed.

use core::ops::Range;

use rand_core::CryptoRngCore;
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use zeroize::{Zeroize, Zeroizing};

use crate::gcm;
use crate::identity::{Did, Identity, SIGNATURE_LEN};
use crate::keys::Dek;

/// Version byte of the record blob format.
pub const VERSION: u8 = 0x01;
/// AES-GCM nonce length.
pub const NONCE_LEN: usize = crate::gcm::NONCE_LEN;
/// AES-GCM tag length.
pub const TAG_LEN: usize = crate::gcm::TAG_LEN;
/// Shortest well-formed blob: version, nonce and tag around an empty body.
pub const MIN_BLOB_LEN: usize = 1 + NONCE_LEN + TAG_LEN;
/// Domain-separation prefix of the blob's associated data.
pub const RECORD_AAD_PREFIX: &[u8] = b"sealbase/v1/record";
/// Domain-separation prefix of the authorship signature's message.
pub const RECORD_SIG_PREFIX: &[u8] = b"sealbase/v1/record-sig";
/// Version of the CBOR inner envelope (its `v` field).
pub const RECORD_ENVELOPE_VERSION: u64 = 1;
/// Length of one Automerge change hash (a head).
pub const HEAD_LEN: usize = 32;

/// Length of the big-endian length prefix inside the padded body.
pub const LEN_PREFIX: usize = 4;
/// Smallest padding bucket.
pub const MIN_BUCKET: usize = 256;
/// Up to this size buckets are powers of two; above it, multiples of it.
pub const LARGE_BUCKET_STEP: usize = 1 << 20;
/// Largest padded body a record may have (64 MiB). Files do not go through
/// record envelopes (they are chunked), so a record never needs more.
pub const MAX_PADDED_LEN: usize = 64 << 20;
/// Largest blob [`open_record`] accepts.
pub const MAX_BLOB_LEN: usize = 1 + NONCE_LEN + MAX_PADDED_LEN + TAG_LEN;

/// Why a record blob or envelope was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    /// The blob is shorter than version ‖ nonce ‖ tag (29 bytes), or the
    /// decrypted body is shorter than its 4-byte length prefix.
    #[error("record blob is truncated")]
    Truncated,
    /// The first byte is not a blob version this code knows.
    #[error("unsupported record blob version {0:#04x}")]
    UnsupportedVersion(u8),
    /// The GCM tag did not verify: wrong DEK, a blob sealed for another space
    /// or record id, or tampered bytes. GCM cannot tell these apart, and this
    /// error deliberately does not try to.
    #[error("record blob failed authentication (wrong key, wrong space/record, or tampered)")]
    Authentication,
    /// The authenticated body is not a well-formed padding (names the check).
    #[error("record padding is malformed: {0}")]
    BadPadding(PaddingError),
    /// The plaintext or blob exceeds [`MAX_PADDED_LEN`].
    #[error("record exceeds the maximum size")]
    TooLarge,
    /// The authorship signature does not verify under the envelope's author DID.
    #[error("record author signature does not verify")]
    BadAuthorSignature,
    /// The CBOR envelope's `v` field is not a version this code knows.
    #[error("unsupported record envelope version {0}")]
    UnsupportedEnvelopeVersion(u64),
    /// The inner envelope is not the expected CBOR (the message says where).
    #[error("malformed record envelope: {0}")]
    MalformedEnvelope(String),
}

/// Which padding check failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PaddingError {
    /// The padded size is not one of the bucket sizes.
    #[error("padded size is not a bucket size")]
    BucketSize,
    /// The length prefix points past the end of the body.
    #[error("length prefix exceeds the padded body")]
    LengthPrefix,
    /// A padding byte after the plaintext is not zero.
    #[error("non-zero padding byte")]
    NonZeroPadding,
}

/// The padded size for a plaintext of `plaintext_len` bytes: the smallest
/// power of two ≥ 256 that holds `4 + plaintext_len` while ≤ 1 MiB, above
/// that the next multiple of 1 MiB.
pub fn padded_len(plaintext_len: usize) -> Result<usize, EnvelopeError> {
    let need = plaintext_len
        .checked_add(LEN_PREFIX)
        .ok_or(EnvelopeError::TooLarge)?;
    let total = if need <= MIN_BUCKET {
        MIN_BUCKET
    } else if need <= LARGE_BUCKET_STEP {
        need.next_power_of_two()
    } else {
        need.div_ceil(LARGE_BUCKET_STEP)
            .checked_mul(LARGE_BUCKET_STEP)
            .ok_or(EnvelopeError::TooLarge)?
    };
    if total > MAX_PADDED_LEN {
        return Err(EnvelopeError::TooLarge);
    }
    Ok(total)
}

/// Whether `total` is a size [`pad`] can produce for some plaintext.
pub fn is_bucket_size(total: usize) -> bool {
    (MIN_BUCKET..=MAX_PADDED_LEN).contains(&total)
        && if total <= LARGE_BUCKET_STEP {
            total.is_power_of_two()
        } else {
            total.is_multiple_of(LARGE_BUCKET_STEP)
        }
}

/// `len (u32 BE) ‖ plaintext ‖ zeros`, padded to its bucket.
pub fn pad(plaintext: &[u8]) -> Result<Zeroizing<Vec<u8>>, EnvelopeError> {
    let mut out = Zeroizing::new(Vec::new());
    pad_into(&mut out, plaintext)?;
    Ok(out)
}

/// Appends `pad(plaintext)` to `out` (reserving first, so `out` never
/// reallocates and leaves plaintext copies behind).
fn pad_into(out: &mut Vec<u8>, plaintext: &[u8]) -> Result<(), EnvelopeError> {
    let total = padded_len(plaintext.len())?;
    let prefix = u32::try_from(plaintext.len()).map_err(|_| EnvelopeError::TooLarge)?;
    let start = out.len();
    out.reserve_exact(total);
    out.extend_from_slice(&prefix.to_be_bytes());
    out.extend_from_slice(plaintext);
    out.resize(start + total, 0);
    Ok(())
}

/// The plaintext inside a padded body. Any bucket size is accepted, not only
/// the smallest one for this length, so a writer may pad further.
pub fn unpad(padded: &[u8]) -> Result<&[u8], EnvelopeError> {
    let range = unpad_range(padded)?;
    padded.get(range).ok_or(EnvelopeError::Truncated)
}

fn unpad_range(padded: &[u8]) -> Result<Range<usize>, EnvelopeError> {
    let (prefix, rest) = padded
        .split_first_chunk::<LEN_PREFIX>()
        .ok_or(EnvelopeError::Truncated)?;
    if !is_bucket_size(padded.len()) {
        return Err(EnvelopeError::BadPadding(PaddingError::BucketSize));
    }
    let len = usize::try_from(u32::from_be_bytes(*prefix))
        .map_err(|_| EnvelopeError::BadPadding(PaddingError::LengthPrefix))?;
    let (_, padding) = rest
        .split_at_checked(len)
        .ok_or(EnvelopeError::BadPadding(PaddingError::LengthPrefix))?;
    // The body is already authenticated, so this need not be constant time;
    // OR-folding 64-byte chunks lets the compiler vectorise the scan.
    if padding
        .chunks(64)
        .any(|chunk| chunk.iter().fold(0u8, |acc, &b| acc | b) != 0)
    {
        return Err(EnvelopeError::BadPadding(PaddingError::NonZeroPadding));
    }
    Ok(LEN_PREFIX..LEN_PREFIX + len)
}

/// `"sealbase/v1/record" ‖ space (16) ‖ record (16)`.
pub fn record_aad(space: &Uuid, record: &Uuid) -> Vec<u8> {
    [RECORD_AAD_PREFIX, space.as_bytes(), record.as_bytes()].concat()
}

/// Seals `plaintext` for (space, record) under a fresh random nonce.
pub fn seal_record(
    dek: &Dek,
    space: &Uuid,
    record: &Uuid,
    plaintext: &[u8],
    rng: &mut impl CryptoRngCore,
) -> Result<Vec<u8>, EnvelopeError> {
    let mut nonce = [0u8; NONCE_LEN];
    rng.fill_bytes(&mut nonce);
    seal_record_with_nonce(dek, space, record, plaintext, &nonce)
}

/// Seals with a caller-chosen nonce. Only for test vectors: reusing a nonce
/// under one DEK breaks GCM, and [`seal_record`] is the only safe entry point.
pub fn seal_record_with_nonce(
    dek: &Dek,
    space: &Uuid,
    record: &Uuid,
    plaintext: &[u8],
    nonce: &[u8; NONCE_LEN],
) -> Result<Vec<u8>, EnvelopeError> {
    let total = padded_len(plaintext.len())?;
    let header = 1 + NONCE_LEN;
    // The buffer holds plaintext until it is encrypted in place; reserve the
    // whole blob up front so it never reallocates.
    let mut blob = Zeroizing::new(Vec::with_capacity(header + total + TAG_LEN));
    blob.push(VERSION);
    blob.extend_from_slice(nonce);
    pad_into(&mut blob, plaintext)?;
    let body = blob.get_mut(header..).ok_or(EnvelopeError::Truncated)?;
    let tag = gcm::encrypt(dek.as_bytes(), nonce, &record_aad(space, record), body)
        .map_err(|_| EnvelopeError::TooLarge)?;
    blob.extend_from_slice(&tag);
    Ok(core::mem::take(&mut *blob))
}

/// Opens a blob sealed for (space, record) and returns the unpadded plaintext.
///
/// Checks, in order: version byte, minimum length, maximum length, GCM tag
/// (with the space/record binding), padding.
///
/// The plaintext is returned as a plain `Vec`, not zeroized: record content
/// is not key material, and the client keeps it in plaintext anyway (its
/// local database and Automerge documents), so wiping this one copy would
/// buy nothing and cost about a third of the time of opening a large record.
pub fn open_record(
    dek: &Dek,
    space: &Uuid,
    record: &Uuid,
    blob: &[u8],
) -> Result<Vec<u8>, EnvelopeError> {
    let (&version, rest) = blob.split_first().ok_or(EnvelopeError::Truncated)?;
    if version != VERSION {
        return Err(EnvelopeError::UnsupportedVersion(version));
    }
    if blob.len() < MIN_BLOB_LEN {
        return Err(EnvelopeError::Truncated);
    }
    if blob.len() > MAX_BLOB_LEN {
        return Err(EnvelopeError::TooLarge);
    }
    let (nonce, sealed) = rest
        .split_first_chunk::<NONCE_LEN>()
        .ok_or(EnvelopeError::Truncated)?;
    let (ciphertext, tag) = sealed
        .split_last_chunk::<TAG_LEN>()
        .ok_or(EnvelopeError::Truncated)?;
    let mut body = ciphertext.to_vec();
    gcm::decrypt(
        dek.as_bytes(),
        nonce,
        &record_aad(space, record),
        &mut body,
        tag,
    )
    .map_err(|_| EnvelopeError::Authentication)?;
    let range = unpad_range(&body)?;
    // Shift in place: no new allocation.
    body.truncate(range.end);
    body.drain(..range.start);
    Ok(body)
}

/// The signed, CBOR-encoded content of a record version.
///
/// The author signs `"sealbase/v1/record-sig" ‖ space (16) ‖ record (16) ‖
/// u32 BE len(collection) ‖ collection ‖ u32 BE schema_version ‖
/// u32 BE count(heads) ‖ heads sorted ascending (32 each)`. Collection and
/// schema version are covered so a writer cannot relabel another author's
/// version. The Automerge bytes are bound only through their heads: checking
/// that `heads` are the heads of `doc` is the client's job (it owns
/// Automerge), and a client must do it before trusting the authorship.
///
/// Collection name and document are record content: they are zeroized on drop.
#[derive(Clone, PartialEq, Eq)]
pub struct RecordEnvelope {
    collection: String,
    schema_version: u32,
    doc: Vec<u8>,
    author: Did,
    heads: Vec<[u8; HEAD_LEN]>,
    signature: [u8; SIGNATURE_LEN],
}

impl Drop for RecordEnvelope {
    fn drop(&mut self) {
        self.collection.zeroize();
        self.doc.zeroize();
    }
}

impl core::fmt::Debug for RecordEnvelope {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // Content stays out of logs: only sizes and public metadata.
        f.debug_struct("RecordEnvelope")
            .field("collection_len", &self.collection.len())
            .field("schema_version", &self.schema_version)
            .field("doc_len", &self.doc.len())
            .field("author", &self.author)
            .field("heads", &self.heads.len())
            .finish_non_exhaustive()
    }
}

/// CBOR shape of the envelope. Fields are declared in RFC 8949 §4.2.1
/// deterministic key order (shorter keys first, then bytewise), so ciborium
/// writes a canonical map.
#[derive(Serialize)]
struct WireOut<'a> {
    a: &'a Did,
    c: &'a str,
    d: &'a serde_bytes::Bytes,
    h: Vec<serde_bytes::ByteArray<HEAD_LEN>>,
    s: u32,
    v: u64,
    sig: serde_bytes::ByteArray<SIGNATURE_LEN>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireIn {
    a: Did,
    c: String,
    d: serde_bytes::ByteBuf,
    h: Vec<serde_bytes::ByteArray<HEAD_LEN>>,
    s: u32,
    v: u64,
    sig: serde_bytes::ByteArray<SIGNATURE_LEN>,
}

/// Reads only `v`, so an unknown version is reported as such even when the
/// rest of the map has another shape.
#[derive(Deserialize)]
struct VersionProbe {
    v: u64,
}

impl RecordEnvelope {
    /// Signs a new envelope. `heads` are sorted and deduplicated (they are a
    /// set); the signature covers them sorted.
    pub fn sign(
        identity: &Identity,
        space: &Uuid,
        record: &Uuid,
        collection: impl Into<String>,
        schema_version: u32,
        doc: Vec<u8>,
        mut heads: Vec<[u8; HEAD_LEN]>,
    ) -> Result<Self, EnvelopeError> {
        heads.sort_unstable();
        heads.dedup();
        let mut env = Self {
            collection: collection.into(),
            schema_version,
            doc,
            author: identity.did(),
            heads,
            signature: [0; SIGNATURE_LEN],
        };
        let message = env.signed_message(space, record)?;
        env.signature = identity.sign(&message);
        Ok(env)
    }

    /// The exact bytes the author signs for this envelope under (space, record).
    pub fn signed_message(
        &self,
        space: &Uuid,
        record: &Uuid,
    ) -> Result<Zeroizing<Vec<u8>>, EnvelopeError> {
        let mut heads = self.heads.clone();
        heads.sort_unstable();
        let collection_len =
            u32::try_from(self.collection.len()).map_err(|_| EnvelopeError::TooLarge)?;
        let head_count = u32::try_from(heads.len()).map_err(|_| EnvelopeError::TooLarge)?;
        let mut msg = Zeroizing::new(Vec::with_capacity(
            RECORD_SIG_PREFIX.len() + 32 + 12 + self.collection.len() + heads.len() * HEAD_LEN,
        ));
        msg.extend_from_slice(RECORD_SIG_PREFIX);
        msg.extend_from_slice(space.as_bytes());
        msg.extend_from_slice(record.as_bytes());
        msg.extend_from_slice(&collection_len.to_be_bytes());
        msg.extend_from_slice(self.collection.as_bytes());
        msg.extend_from_slice(&self.schema_version.to_be_bytes());
        msg.extend_from_slice(&head_count.to_be_bytes());
        for head in &heads {
            msg.extend_from_slice(head);
        }
        Ok(msg)
    }

    /// Verifies the authorship signature for (space, record).
    pub fn verify(&self, space: &Uuid, record: &Uuid) -> Result<(), EnvelopeError> {
        self.signature_check(space, record)?.require()
    }

    /// The authorship signature for (space, record) with the key and
    /// message it must verify under, to be checked later or elsewhere
    /// (the browser SDK checks them in a second worker).
    pub fn signature_check(
        &self,
        space: &Uuid,
        record: &Uuid,
    ) -> Result<SignatureCheck, EnvelopeError> {
        Ok(SignatureCheck {
            author: self.author,
            message: self.signed_message(space, record)?,
            signature: self.signature,
        })
    }

    /// The collection name.
    pub fn collection(&self) -> &str {
        &self.collection
    }

    /// The schema version the document was written with.
    pub fn schema_version(&self) -> u32 {
        self.schema_version
    }

    /// The Automerge `save()` bytes.
    pub fn doc(&self) -> &[u8] {
        &self.doc
    }

    /// Takes the Automerge bytes out, leaving the envelope's copy empty.
    pub fn take_doc(&mut self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(core::mem::take(&mut self.doc))
    }

    /// The author's DID.
    pub fn author(&self) -> &Did {
        &self.author
    }

    /// The Automerge heads the author signed, sorted ascending.
    pub fn heads(&self) -> &[[u8; HEAD_LEN]] {
        &self.heads
    }

    /// The Ed25519 authorship signature.
    pub fn signature(&self) -> &[u8; SIGNATURE_LEN] {
        &self.signature
    }

    /// Encodes as a canonical CBOR map
    /// `{a: did string, c: collection, d: bytes, h: [bytes32], s: schema, v: 1, sig: bytes64}`.
    pub fn to_cbor(&self) -> Result<Zeroizing<Vec<u8>>, EnvelopeError> {
        let wire = WireOut {
            a: &self.author,
            c: &self.collection,
            d: serde_bytes::Bytes::new(&self.doc),
            h: self
                .heads
                .iter()
                .map(|h| serde_bytes::ByteArray::new(*h))
                .collect(),
            s: self.schema_version,
            v: RECORD_ENVELOPE_VERSION,
            sig: serde_bytes::ByteArray::new(self.signature),
        };
        // Generous estimate so the buffer holding plaintext rarely reallocates.
        let estimate =
            128 + self.collection.len() + self.doc.len() + self.heads.len() * (HEAD_LEN + 2);
        let mut out = Zeroizing::new(Vec::with_capacity(estimate));
        ciborium::into_writer(&wire, &mut *out)
            .map_err(|e| EnvelopeError::MalformedEnvelope(e.to_string()))?;
        Ok(out)
    }

    /// Decodes the CBOR map written by [`Self::to_cbor`]. Rejects an unknown
    /// `v`, unknown or missing keys, wrong types and trailing bytes. Does not
    /// verify the signature (see [`Self::verify`]).
    pub fn from_cbor(bytes: &[u8]) -> Result<Self, EnvelopeError> {
        let malformed = |e: ciborium::de::Error<std::io::Error>| {
            EnvelopeError::MalformedEnvelope(e.to_string())
        };
        let probe: VersionProbe = ciborium::from_reader(&mut { bytes }).map_err(malformed)?;
        if probe.v != RECORD_ENVELOPE_VERSION {
            return Err(EnvelopeError::UnsupportedEnvelopeVersion(probe.v));
        }
        let mut rest = bytes;
        let wire: WireIn = ciborium::from_reader(&mut rest).map_err(malformed)?;
        if !rest.is_empty() {
            return Err(EnvelopeError::MalformedEnvelope(format!(
                "{} trailing bytes after the envelope",
                rest.len()
            )));
        }
        if wire.v != RECORD_ENVELOPE_VERSION {
            return Err(EnvelopeError::UnsupportedEnvelopeVersion(wire.v));
        }
        Ok(Self {
            collection: wire.c,
            schema_version: wire.s,
            doc: wire.d.into_vec(),
            author: wire.a,
            heads: wire.h.into_iter().map(|h| h.into_array()).collect(),
            signature: wire.sig.into_array(),
        })
    }
}

/// Encodes an already signed `envelope`, then seals it for (space, record).
/// Refuses an envelope whose signature does not verify for this (space,
/// record), since readers would reject the blob anyway.
pub fn seal_record_envelope(
    dek: &Dek,
    space: &Uuid,
    record: &Uuid,
    envelope: &RecordEnvelope,
    rng: &mut impl CryptoRngCore,
) -> Result<Vec<u8>, EnvelopeError> {
    envelope.verify(space, record)?;
    let cbor = envelope.to_cbor()?;
    seal_record(dek, space, record, &cbor, rng)
}

/// Opens a blob, decodes the envelope and verifies its authorship signature.
/// The caller still checks that `heads` match `doc` and that the author may
/// write this space.
pub fn open_record_envelope(
    dek: &Dek,
    space: &Uuid,
    record: &Uuid,
    blob: &[u8],
) -> Result<RecordEnvelope, EnvelopeError> {
    let (envelope, check) = open_record_envelope_unchecked(dek, space, record, blob)?;
    check.require()?;
    Ok(envelope)
}

/// [`open_record_envelope`] without the signature check: decrypts and
/// decodes, and returns the envelope with the [`SignatureCheck`] that must
/// pass before anything of the envelope is used.
pub fn open_record_envelope_unchecked(
    dek: &Dek,
    space: &Uuid,
    record: &Uuid,
    blob: &[u8],
) -> Result<(RecordEnvelope, SignatureCheck), EnvelopeError> {
    let cbor = open_record(dek, space, record, blob)?;
    let envelope = RecordEnvelope::from_cbor(&cbor)?;
    let check = envelope.signature_check(space, record)?;
    Ok((envelope, check))
}

/// A record's authorship signature, the author's key and the exact message
/// signed ([`RecordEnvelope::signed_message`]). [`Self::verify`] checks it
/// strictly, as [`Did::verify`]; [`verify_signature`] does the same from
/// the raw parts (what another worker receives).
pub struct SignatureCheck {
    author: Did,
    message: Zeroizing<Vec<u8>>,
    signature: [u8; SIGNATURE_LEN],
}

impl SignatureCheck {
    /// Whether the signature verifies (strict Ed25519).
    pub fn verify(&self) -> bool {
        self.author.verify(&self.message, &self.signature).is_ok()
    }

    /// [`Self::verify`] as a result: a bad signature is
    /// [`EnvelopeError::BadAuthorSignature`].
    pub fn require(&self) -> Result<(), EnvelopeError> {
        if self.verify() {
            Ok(())
        } else {
            Err(EnvelopeError::BadAuthorSignature)
        }
    }

    /// The author's raw Ed25519 public key.
    pub fn public_key(&self) -> &[u8; 32] {
        self.author.public_key().as_bytes()
    }

    /// The signed message.
    pub fn message(&self) -> &[u8] {
        &self.message
    }

    /// The signature.
    pub fn signature(&self) -> &[u8; SIGNATURE_LEN] {
        &self.signature
    }
}

impl core::fmt::Debug for SignatureCheck {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // The message holds the collection name: only its length is shown.
        f.debug_struct("SignatureCheck")
            .field("author", &self.author)
            .field("message_len", &self.message.len())
            .finish_non_exhaustive()
    }
}

/// Whether `signature` is a strict Ed25519 signature of `message` under the
/// raw public key `public_key` (false for a malformed key or signature):
/// the check of [`SignatureCheck::verify`] from its parts.
pub fn verify_signature(public_key: &[u8], message: &[u8], signature: &[u8]) -> bool {
    Did::from_public_bytes(public_key).is_ok_and(|did| did.verify(message, signature).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    const SPACE: Uuid = Uuid::from_bytes([1; 16]);
    const RECORD: Uuid = Uuid::from_bytes([2; 16]);

    fn dek() -> Dek {
        Dek::from_bytes([7; 32])
    }

    #[test]
    fn bucket_sizes() {
        assert_eq!(padded_len(0), Ok(256));
        assert_eq!(padded_len(252), Ok(256));
        assert_eq!(padded_len(253), Ok(512));
        assert_eq!(padded_len(1020), Ok(1024));
        assert_eq!(padded_len(1021), Ok(2048));
        assert_eq!(padded_len((1 << 20) - 4), Ok(1 << 20));
        assert_eq!(padded_len((1 << 20) - 3), Ok(2 << 20));
        assert_eq!(padded_len((3 << 20) + 1), Ok(4 << 20));
        assert_eq!(padded_len(MAX_PADDED_LEN - 4), Ok(MAX_PADDED_LEN));
        assert_eq!(padded_len(MAX_PADDED_LEN - 3), Err(EnvelopeError::TooLarge));
        assert_eq!(padded_len(usize::MAX), Err(EnvelopeError::TooLarge));
        assert!(is_bucket_size(3 << 20));
        assert!(!is_bucket_size(768));
        assert!(!is_bucket_size(128));
    }

    #[test]
    fn unpad_names_the_failed_check() {
        assert_eq!(unpad(&[0, 0]), Err(EnvelopeError::Truncated));
        let mut p = pad(b"hello").unwrap().to_vec();
        assert_eq!(unpad(&p), Ok(&b"hello"[..]));
        p.push(0);
        assert_eq!(
            unpad(&p),
            Err(EnvelopeError::BadPadding(PaddingError::BucketSize))
        );
        p.pop();
        p[3] = 253;
        assert_eq!(
            unpad(&p),
            Err(EnvelopeError::BadPadding(PaddingError::LengthPrefix))
        );
        p[3] = 252;
        assert!(unpad(&p).is_ok());
        p[3] = 5;
        p[255] = 1;
        assert_eq!(
            unpad(&p),
            Err(EnvelopeError::BadPadding(PaddingError::NonZeroPadding))
        );
    }

    #[test]
    fn seal_open_round_trip_and_binding() {
        let blob = seal_record_with_nonce(&dek(), &SPACE, &RECORD, b"doc", &[9; 12]).unwrap();
        assert_eq!(blob.len(), 1 + 12 + 256 + 16);
        assert_eq!(
            &*open_record(&dek(), &SPACE, &RECORD, &blob).unwrap(),
            b"doc"
        );
        assert_eq!(
            open_record(&dek(), &RECORD, &SPACE, &blob),
            Err(EnvelopeError::Authentication)
        );
        assert_eq!(
            open_record(&Dek::from_bytes([8; 32]), &SPACE, &RECORD, &blob),
            Err(EnvelopeError::Authentication)
        );
        assert_eq!(
            open_record(&dek(), &SPACE, &RECORD, &blob[..28]),
            Err(EnvelopeError::Truncated)
        );
        assert_eq!(
            open_record(&dek(), &SPACE, &RECORD, &[]),
            Err(EnvelopeError::Truncated)
        );
        let mut v2 = blob.clone();
        v2[0] = 2;
        assert_eq!(
            open_record(&dek(), &SPACE, &RECORD, &v2),
            Err(EnvelopeError::UnsupportedVersion(2))
        );
    }

    fn signed() -> (Identity, RecordEnvelope) {
        let id = Identity::from_secrets(&[3; 32], &[4; 32]);
        let env = RecordEnvelope::sign(
            &id,
            &SPACE,
            &RECORD,
            "tasks",
            2,
            b"automerge".to_vec(),
            vec![[0xbb; 32], [0xaa; 32], [0xbb; 32]],
        )
        .unwrap();
        (id, env)
    }

    #[test]
    fn envelope_signature_binds_every_field() {
        let (_, env) = signed();
        assert_eq!(env.heads(), &[[0xaa; 32], [0xbb; 32]]);
        assert_eq!(env.verify(&SPACE, &RECORD), Ok(()));
        assert_eq!(
            env.verify(&RECORD, &SPACE),
            Err(EnvelopeError::BadAuthorSignature)
        );
        let mut relabeled = env.clone();
        relabeled.collection = "notes".into();
        assert_eq!(
            relabeled.verify(&SPACE, &RECORD),
            Err(EnvelopeError::BadAuthorSignature)
        );
        let mut schema = env.clone();
        schema.schema_version = 3;
        assert_eq!(
            schema.verify(&SPACE, &RECORD),
            Err(EnvelopeError::BadAuthorSignature)
        );
        let mut heads = env.clone();
        heads.heads.pop();
        assert_eq!(
            heads.verify(&SPACE, &RECORD),
            Err(EnvelopeError::BadAuthorSignature)
        );
        // Order of heads on the wire does not matter; the set does.
        let mut reordered = env.clone();
        reordered.heads.reverse();
        assert_eq!(reordered.verify(&SPACE, &RECORD), Ok(()));
        let other = Identity::from_secrets(&[5; 32], &[6; 32]);
        let mut forged = env;
        forged.author = other.did();
        assert_eq!(
            forged.verify(&SPACE, &RECORD),
            Err(EnvelopeError::BadAuthorSignature)
        );
    }

    #[test]
    fn cbor_round_trip_and_rejections() {
        let (_, env) = signed();
        let cbor = env.to_cbor().unwrap();
        assert_eq!(RecordEnvelope::from_cbor(&cbor).unwrap(), env);
        let mut trailing = cbor.to_vec();
        trailing.push(0);
        assert!(matches!(
            RecordEnvelope::from_cbor(&trailing),
            Err(EnvelopeError::MalformedEnvelope(_))
        ));
        assert!(matches!(
            RecordEnvelope::from_cbor(&cbor[..cbor.len() - 1]),
            Err(EnvelopeError::MalformedEnvelope(_))
        ));
        assert!(matches!(
            RecordEnvelope::from_cbor(&[]),
            Err(EnvelopeError::MalformedEnvelope(_))
        ));
        // {"v": 2}
        assert_eq!(
            RecordEnvelope::from_cbor(&[0xa1, 0x61, b'v', 0x02]),
            Err(EnvelopeError::UnsupportedEnvelopeVersion(2))
        );
        // {"v": 1} alone is missing every other field.
        assert!(matches!(
            RecordEnvelope::from_cbor(&[0xa1, 0x61, b'v', 0x01]),
            Err(EnvelopeError::MalformedEnvelope(_))
        ));
    }

    #[test]
    fn sealed_envelope_round_trip() {
        let (_, env) = signed();
        let mut rng = rand_core::OsRng;
        let blob = seal_record_envelope(&dek(), &SPACE, &RECORD, &env, &mut rng).unwrap();
        assert_eq!(
            open_record_envelope(&dek(), &SPACE, &RECORD, &blob).unwrap(),
            env
        );
        // Sealing under another record id is refused up front.
        assert_eq!(
            seal_record_envelope(&dek(), &SPACE, &SPACE, &env, &mut rng),
            Err(EnvelopeError::BadAuthorSignature)
        );
    }

    #[test]
    fn debug_hides_content() {
        let (_, env) = signed();
        let shown = format!("{env:?}");
        assert!(!shown.contains("tasks"), "{shown}");
        let check = env.signature_check(&SPACE, &RECORD).unwrap();
        let shown = format!("{check:?}");
        assert!(!shown.contains("tasks"), "{shown}");
    }

    /// The check handed to another worker is the same check: it passes and
    /// fails exactly where `verify` does, from the parts alone too.
    #[test]
    fn unchecked_open_defers_the_same_check() {
        let (id, env) = signed();
        let mut rng = rand_core::OsRng;
        let blob = seal_record_envelope(&dek(), &SPACE, &RECORD, &env, &mut rng).unwrap();
        let (opened, check) =
            open_record_envelope_unchecked(&dek(), &SPACE, &RECORD, &blob).unwrap();
        assert_eq!(opened, env);
        assert!(check.verify());
        assert_eq!(check.public_key(), id.did().public_key().as_bytes());
        assert_eq!(
            &*env.signed_message(&SPACE, &RECORD).unwrap(),
            check.message()
        );
        assert!(verify_signature(
            check.public_key(),
            check.message(),
            check.signature()
        ));

        // A forged author opens (the envelope is well formed) but its check fails.
        let mut forged = env.clone();
        forged.author = Identity::from_secrets(&[5; 32], &[6; 32]).did();
        let blob = seal_record(
            &dek(),
            &SPACE,
            &RECORD,
            &forged.to_cbor().unwrap(),
            &mut rng,
        )
        .unwrap();
        let (_, check) = open_record_envelope_unchecked(&dek(), &SPACE, &RECORD, &blob).unwrap();
        assert!(!check.verify());
        assert!(!verify_signature(
            check.public_key(),
            check.message(),
            check.signature()
        ));
        assert_eq!(
            open_record_envelope(&dek(), &SPACE, &RECORD, &blob),
            Err(EnvelopeError::BadAuthorSignature)
        );

        // From the parts: any altered byte, a short or malformed part fails.
        let check = env.signature_check(&SPACE, &RECORD).unwrap();
        let (key, msg, sig) = (check.public_key(), check.message(), check.signature());
        let mut bad_msg = msg.to_vec();
        bad_msg[0] ^= 1;
        assert!(!verify_signature(key, &bad_msg, sig));
        let mut bad_sig = *sig;
        bad_sig[10] ^= 1;
        assert!(!verify_signature(key, msg, &bad_sig));
        assert!(!verify_signature(&key[..31], msg, sig));
        assert!(!verify_signature(key, msg, &sig[..63]));
        // A small-order key (the identity point) is refused by the strict check.
        let mut identity_point = [0u8; 32];
        identity_point[0] = 1;
        assert!(!verify_signature(&identity_point, msg, sig));
    }
}
