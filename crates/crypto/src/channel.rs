//! Channel payload v1: presence and ephemeral events of a space
//! (DESIGN.md §3.1, channel key).
//!
//! The sync server relays these as opaque bytes and never stores them, so
//! everything it must not learn is inside the ciphertext:
//!
//! `0x01 ‖ epoch (u32 BE) ‖ nonce (12) ‖ AES-256-GCM(channel_key(E_epoch),
//! pad(cbor), aad) ‖ tag (16)`
//!
//! with `aad = "sealbase/v1/channel" ‖ space (16) ‖ kind (1) ‖ epoch (u32 BE)`
//! and `cbor` the canonical map `{a: author DID, d: data, k: kind, s:
//! signature}`. The author signs `"sealbase/v1/channel-sig" ‖ space ‖ kind ‖
//! epoch ‖ data`: every member holds the channel key, so GCM alone only
//! proves that *some* member (or a breached server holding a member's
//! device) wrote it; the signature pins the author, and binding space, kind
//! and epoch into both means a payload cannot be re-attributed, moved to
//! another space or epoch, or turned from presence into an event.
//!
//! `pad` is the record envelope's, so sizes leak only the bucket.
//!
//! Invariant: [`open_channel`] returns a message only if the tag verified
//! under this epoch's channel key for this (space, kind, epoch), the padding
//! and the CBOR are well formed (one canonical encoding), the inner kind is
//! the expected one, and the author's Ed25519 signature verifies.

use ciborium::Value;
use rand_core::CryptoRngCore;
use serde::Serialize;
use serde_bytes::{ByteArray, Bytes};
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::envelope::{self, EnvelopeError, PaddingError};
use crate::gcm::{self, NONCE_LEN, TAG_LEN};
use crate::identity::{Did, Identity, IdentityError, SIGNATURE_LEN};
use crate::kdf;
use crate::keys::EpochKey;

/// Version byte of a channel payload.
pub const CHANNEL_VERSION: u8 = 0x01;
/// Bytes before the ciphertext: version, epoch, nonce.
pub const CHANNEL_HEADER_LEN: usize = 1 + 4 + 12;
/// Domain-separation prefix of a payload's associated data.
pub const CHANNEL_AAD_PREFIX: &[u8] = b"sealbase/v1/channel";
/// Domain-separation prefix of the author's signed message.
pub const CHANNEL_SIG_PREFIX: &[u8] = b"sealbase/v1/channel-sig";
/// Largest sealed presence payload the sync server relays (`MAX_PRESENCE_LEN`).
pub const MAX_PRESENCE_BLOB_LEN: usize = 4 * 1024;
/// Largest sealed event payload the sync server relays (`MAX_EVENT_LEN`).
pub const MAX_EVENT_BLOB_LEN: usize = 64 * 1024;

/// CBOR overhead around `data` in the inner map, for data of 256 to 65535
/// bytes: map header 1, `a` 2 + 2 + 56 (an Ed25519 `did:key` is always 56
/// characters), `d` 2 + 3, `k` 2 + 1, `s` 2 + 2 + 64.
const CBOR_OVERHEAD: usize = 137;

/// Whether a payload is presence state or an ephemeral event. Its byte
/// (`0x01` / `0x02`) is bound into the associated data and the signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelKind {
    /// Presence state (`presence.set`).
    Presence,
    /// An ephemeral event (`event.send`).
    Event,
}

impl ChannelKind {
    /// The byte that stands for this kind in associated data, signature and
    /// the inner map's `k`.
    pub const fn as_byte(self) -> u8 {
        match self {
            Self::Presence => 0x01,
            Self::Event => 0x02,
        }
    }

    /// Largest sealed payload of this kind the sync server relays
    /// ([`MAX_PRESENCE_BLOB_LEN`], [`MAX_EVENT_BLOB_LEN`]).
    pub const fn max_blob_len(self) -> usize {
        match self {
            Self::Presence => MAX_PRESENCE_BLOB_LEN,
            Self::Event => MAX_EVENT_BLOB_LEN,
        }
    }

    /// Largest `data` that seals within [`Self::max_blob_len`]: the padded
    /// body must be a bucket, so this is the largest bucket that fits the
    /// blob (2 KiB for presence, 32 KiB for events) minus the overhead
    /// (1907 and 32627 bytes).
    pub const fn max_data_len(self) -> usize {
        let room = self.max_blob_len() - CHANNEL_HEADER_LEN - TAG_LEN;
        // The largest power of two ≤ room (both limits are below 1 MiB).
        let bucket = 1usize << (usize::BITS - 1 - room.leading_zeros());
        bucket - envelope::LEN_PREFIX - CBOR_OVERHEAD
    }
}

/// An opened channel payload: who wrote what, of which kind, under which
/// epoch. Data is app content: it never shows in `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct ChannelMessage {
    /// Presence or event (checked against what the caller expected).
    pub kind: ChannelKind,
    /// The epoch whose key sealed it.
    pub epoch: u32,
    /// The member whose signature verified.
    pub author: Did,
    /// The app's payload.
    pub data: Vec<u8>,
}

impl core::fmt::Debug for ChannelMessage {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ChannelMessage")
            .field("kind", &self.kind)
            .field("epoch", &self.epoch)
            .field("author", &self.author)
            .field("data_len", &self.data.len())
            .finish()
    }
}

/// Why a channel payload could not be sealed or opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChannelError {
    /// Shorter than version ‖ epoch ‖ nonce ‖ tag (33 bytes), or empty.
    #[error("channel payload is truncated")]
    Truncated,
    /// The first byte is not a version this code knows.
    #[error("unsupported channel payload version {0:#04x}")]
    Version(u8),
    /// The GCM tag did not verify: another epoch key, space, kind or epoch,
    /// or tampered bytes (GCM cannot tell which).
    #[error(
        "channel payload failed authentication (wrong epoch key, space, kind or epoch, or tampered)"
    )]
    Authentication,
    /// The authenticated body is not a well-formed padding (names the check;
    /// a body shorter than the length prefix is no bucket size either).
    #[error("channel payload padding is malformed: {0}")]
    Padding(PaddingError),
    /// The inner CBOR is not the canonical `{a, d, k, s}` map (the message
    /// says what is wrong).
    #[error("malformed channel payload: {0}")]
    Encoding(String),
    /// The inner kind is not the one the caller expected (a member sealed
    /// an inner kind that differs from the associated data's).
    #[error("channel payload is not of the expected kind")]
    Kind,
    /// The author is not an Ed25519 `did:key`.
    #[error("channel payload author: {0}")]
    Did(IdentityError),
    /// The author's signature does not verify over (space, kind, epoch, data).
    #[error("channel payload signature does not verify")]
    Signature,
    /// Sealed, the payload would exceed its kind's wire limit
    /// ([`ChannelKind::max_data_len`]).
    #[error("channel payload exceeds the wire limit of its kind")]
    TooLarge,
}

/// CBOR shape of the inner map, fields in canonical (RFC 8949 §4.2.1) order.
#[derive(Serialize)]
struct WireOut<'a> {
    a: &'a str,
    d: &'a Bytes,
    k: u64,
    s: &'a ByteArray<SIGNATURE_LEN>,
}

fn encoding(e: impl core::fmt::Display) -> ChannelError {
    ChannelError::Encoding(e.to_string())
}

/// `prefix ‖ space ‖ kind ‖ epoch`: shared by associated data and signature.
fn binding(prefix: &[u8], space: &Uuid, kind: ChannelKind, epoch: u32) -> Vec<u8> {
    [
        prefix,
        space.as_bytes(),
        &[kind.as_byte()],
        &epoch.to_be_bytes(),
    ]
    .concat()
}

/// `"sealbase/v1/channel" ‖ space (16) ‖ kind (1) ‖ epoch (u32 BE)`.
pub fn channel_aad(space: &Uuid, kind: ChannelKind, epoch: u32) -> Vec<u8> {
    binding(CHANNEL_AAD_PREFIX, space, kind, epoch)
}

/// `"sealbase/v1/channel-sig" ‖ space ‖ kind ‖ epoch ‖ data`. Only `data`
/// has a variable length and it comes last, so the message is unambiguous.
fn signed_message(space: &Uuid, kind: ChannelKind, epoch: u32, data: &[u8]) -> Zeroizing<Vec<u8>> {
    let mut message = Zeroizing::new(binding(CHANNEL_SIG_PREFIX, space, kind, epoch));
    message.extend_from_slice(data);
    message
}

fn encode_inner(
    author: &str,
    data: &[u8],
    kind: u64,
    signature: &ByteArray<SIGNATURE_LEN>,
) -> Result<Zeroizing<Vec<u8>>, ChannelError> {
    let mut out = Zeroizing::new(Vec::with_capacity(data.len() + CBOR_OVERHEAD));
    ciborium::into_writer(
        &WireOut {
            a: author,
            d: Bytes::new(data),
            k: kind,
            s: signature,
        },
        &mut *out,
    )
    .map_err(encoding)?;
    Ok(out)
}

/// Seals `data` as `author`'s payload of `kind` for `space` under `epoch`'s
/// channel key, with a fresh random nonce.
///
/// The channel key is shared by every member for a whole epoch and nonces
/// are random, so one epoch must not carry more than 2³² payloads (GCM's
/// bound for random nonces); rotation keeps epochs far below that.
pub fn seal_channel(
    author: &Identity,
    space: &Uuid,
    epoch: u32,
    epoch_key: &EpochKey,
    kind: ChannelKind,
    data: &[u8],
    rng: &mut impl CryptoRngCore,
) -> Result<Vec<u8>, ChannelError> {
    let mut nonce = [0u8; NONCE_LEN];
    rng.fill_bytes(&mut nonce);
    seal_channel_with_nonce(author, space, epoch, epoch_key, kind, data, nonce)
}

/// [`seal_channel`] with a caller-chosen nonce. Only for test vectors: a
/// repeated nonce under one channel key breaks GCM.
pub fn seal_channel_with_nonce(
    author: &Identity,
    space: &Uuid,
    epoch: u32,
    epoch_key: &EpochKey,
    kind: ChannelKind,
    data: &[u8],
    nonce: [u8; 12],
) -> Result<Vec<u8>, ChannelError> {
    if data.len() > kind.max_data_len() {
        return Err(ChannelError::TooLarge);
    }
    let signature = ByteArray::new(author.sign(&signed_message(space, kind, epoch, data)));
    let cbor = encode_inner(
        &author.did().to_string(),
        data,
        kind.as_byte().into(),
        &signature,
    )?;
    let padded = envelope::pad(&cbor).map_err(|_| ChannelError::TooLarge)?;
    let len = CHANNEL_HEADER_LEN + padded.len() + TAG_LEN;
    if len > kind.max_blob_len() {
        return Err(ChannelError::TooLarge);
    }
    // Plaintext until encrypted in place: reserve it all so it never moves.
    let mut out = Zeroizing::new(Vec::with_capacity(len));
    out.push(CHANNEL_VERSION);
    out.extend_from_slice(&epoch.to_be_bytes());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&padded);
    let body = out
        .get_mut(CHANNEL_HEADER_LEN..)
        .ok_or(ChannelError::Truncated)?;
    let key = kdf::channel_key(epoch_key);
    let tag = gcm::encrypt(
        key.as_bytes(),
        &nonce,
        &channel_aad(space, kind, epoch),
        body,
    )
    .map_err(|_| ChannelError::TooLarge)?;
    out.extend_from_slice(&tag);
    Ok(core::mem::take(&mut *out))
}

/// The epoch a payload names in its header, to pick the key to open it
/// with. Unauthenticated until [`open_channel`] succeeds.
pub fn channel_epoch(blob: &[u8]) -> Result<u32, ChannelError> {
    let (&version, rest) = blob.split_first().ok_or(ChannelError::Truncated)?;
    if version != CHANNEL_VERSION {
        return Err(ChannelError::Version(version));
    }
    let epoch = rest.first_chunk::<4>().ok_or(ChannelError::Truncated)?;
    Ok(u32::from_be_bytes(*epoch))
}

/// Opens a payload of `kind` for `space` with the key of the epoch its
/// header names ([`channel_epoch`]).
///
/// Checks, in order: version, length, GCM tag (binding space, kind and
/// epoch), padding, CBOR shape, inner kind, author DID, signature.
pub fn open_channel(
    epoch_key: &EpochKey,
    space: &Uuid,
    kind: ChannelKind,
    blob: &[u8],
) -> Result<ChannelMessage, ChannelError> {
    let epoch = channel_epoch(blob)?;
    if blob.len() < CHANNEL_HEADER_LEN + TAG_LEN {
        return Err(ChannelError::Truncated);
    }
    let (header, sealed) = blob
        .split_at_checked(CHANNEL_HEADER_LEN)
        .ok_or(ChannelError::Truncated)?;
    let nonce = header
        .last_chunk::<NONCE_LEN>()
        .ok_or(ChannelError::Truncated)?;
    let (ciphertext, tag) = sealed
        .split_last_chunk::<TAG_LEN>()
        .ok_or(ChannelError::Truncated)?;
    let mut plain = Zeroizing::new(ciphertext.to_vec());
    let key = kdf::channel_key(epoch_key);
    gcm::decrypt(
        key.as_bytes(),
        nonce,
        &channel_aad(space, kind, epoch),
        &mut plain,
        tag,
    )
    .map_err(|_| ChannelError::Authentication)?;
    let cbor = envelope::unpad(&plain).map_err(|e| match e {
        EnvelopeError::BadPadding(p) => ChannelError::Padding(p),
        _ => ChannelError::Padding(PaddingError::BucketSize),
    })?;
    let inner = Inner::decode(cbor)?;
    if inner.kind != u64::from(kind.as_byte()) {
        return Err(ChannelError::Kind);
    }
    let author: Did = inner.author.parse().map_err(ChannelError::Did)?;
    author
        .verify(
            &signed_message(space, kind, epoch, &inner.data),
            inner.signature.as_slice(),
        )
        .map_err(|_| ChannelError::Signature)?;
    Ok(ChannelMessage {
        kind,
        epoch,
        author,
        data: inner.data,
    })
}

/// The inner map, checked for shape but not yet for meaning.
struct Inner {
    author: String,
    data: Vec<u8>,
    kind: u64,
    signature: ByteArray<SIGNATURE_LEN>,
}

impl Inner {
    /// Accepts exactly one canonical CBOR map with the text keys `a`
    /// (text), `d` (bytes), `k` (unsigned) and `s` (64 bytes), nothing else.
    fn decode(bytes: &[u8]) -> Result<Self, ChannelError> {
        let mut rest = bytes;
        let value: Value = ciborium::from_reader(&mut rest).map_err(encoding)?;
        if !rest.is_empty() {
            return Err(encoding(format_args!(
                "{} trailing bytes after the map",
                rest.len()
            )));
        }
        let Value::Map(entries) = value else {
            return Err(encoding("not a map"));
        };
        let (mut a, mut d, mut k, mut s) = (None, None, None, None);
        for (key, value) in entries {
            let Value::Text(key) = key else {
                return Err(encoding("a key is not text"));
            };
            let duplicate = match (key.as_str(), value) {
                ("a", Value::Text(v)) => a.replace(v).is_some(),
                ("d", Value::Bytes(v)) => d.replace(v).is_some(),
                ("k", Value::Integer(v)) => {
                    let v = u64::try_from(v).map_err(|_| encoding("k is negative"))?;
                    k.replace(v).is_some()
                }
                ("s", Value::Bytes(v)) => {
                    let v = <[u8; SIGNATURE_LEN]>::try_from(v)
                        .map_err(|_| encoding("s is not 64 bytes"))?;
                    s.replace(ByteArray::new(v)).is_some()
                }
                ("a" | "d" | "k" | "s", _) => {
                    return Err(encoding(format_args!("{key} has the wrong type")));
                }
                _ => return Err(encoding(format_args!("unknown key {key:?}"))),
            };
            if duplicate {
                return Err(encoding(format_args!("duplicate key {key}")));
            }
        }
        let missing = |name: &str| encoding(format_args!("missing key {name}"));
        let inner = Self {
            author: a.ok_or_else(|| missing("a"))?,
            data: d.ok_or_else(|| missing("d"))?,
            kind: k.ok_or_else(|| missing("k"))?,
            signature: s.ok_or_else(|| missing("s"))?,
        };
        // One encoding per message: key order, integer and length forms.
        let canonical = encode_inner(&inner.author, &inner.data, inner.kind, &inner.signature)?;
        if canonical.as_slice() != bytes {
            return Err(encoding("not in canonical form"));
        }
        Ok(inner)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use rand_core::OsRng;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    const SPACE: Uuid = Uuid::from_bytes([1; 16]);
    const OTHER_SPACE: Uuid = Uuid::from_bytes([2; 16]);

    fn identity(n: u8) -> Identity {
        Identity::from_secrets(&[n; 32], &[n.wrapping_add(100); 32])
    }

    fn key(n: u8) -> EpochKey {
        EpochKey::from_bytes([n; 32])
    }

    /// Seals an arbitrary inner plaintext with a valid tag, as a member
    /// holding the channel key could.
    fn raw(kind: ChannelKind, epoch: u32, plaintext: &[u8]) -> Vec<u8> {
        let nonce = [9u8; NONCE_LEN];
        let mut out = vec![CHANNEL_VERSION];
        out.extend_from_slice(&epoch.to_be_bytes());
        out.extend_from_slice(&nonce);
        let mut body = plaintext.to_vec();
        let tag = gcm::encrypt(
            kdf::channel_key(&key(5)).as_bytes(),
            &nonce,
            &channel_aad(&SPACE, kind, epoch),
            &mut body,
        )
        .unwrap();
        out.extend_from_slice(&body);
        out.extend_from_slice(&tag);
        out
    }

    fn raw_inner(kind: ChannelKind, epoch: u32, cbor: &[u8]) -> Vec<u8> {
        raw(kind, epoch, &envelope::pad(cbor).unwrap())
    }

    fn cbor(value: &Value) -> Vec<u8> {
        let mut out = Vec::new();
        ciborium::into_writer(value, &mut out).unwrap();
        out
    }

    /// The inner map of a genuine payload, as a CBOR value to edit.
    fn genuine_map(kind: ChannelKind, epoch: u32, data: &[u8]) -> Vec<(Value, Value)> {
        let id = identity(1);
        let sig = id.sign(&signed_message(&SPACE, kind, epoch, data));
        let bytes = encode_inner(
            &id.did().to_string(),
            data,
            kind.as_byte().into(),
            &ByteArray::new(sig),
        )
        .unwrap();
        let value: Value = ciborium::from_reader(bytes.as_slice()).unwrap();
        value.into_map().unwrap()
    }

    fn open(blob: &[u8]) -> Result<ChannelMessage, ChannelError> {
        open_channel(&key(5), &SPACE, ChannelKind::Presence, blob)
    }

    #[test]
    fn round_trips_for_both_kinds() {
        let id = identity(1);
        for kind in [ChannelKind::Presence, ChannelKind::Event] {
            for data in [&b""[..], b"cursor at 12:4", &[0xa5; 1000]] {
                let blob = seal_channel(&id, &SPACE, 7, &key(5), kind, data, &mut OsRng).unwrap();
                assert_eq!(channel_epoch(&blob), Ok(7));
                assert!(envelope::is_bucket_size(
                    blob.len() - CHANNEL_HEADER_LEN - TAG_LEN
                ));
                let msg = open_channel(&key(5), &SPACE, kind, &blob).unwrap();
                assert_eq!(
                    msg,
                    ChannelMessage {
                        kind,
                        epoch: 7,
                        author: id.did(),
                        data: data.to_vec(),
                    }
                );
            }
        }
    }

    #[test]
    fn sizes_leak_only_the_bucket() {
        let id = identity(1);
        let seal = |n: usize| {
            seal_channel(
                &id,
                &SPACE,
                1,
                &key(5),
                ChannelKind::Event,
                &vec![1; n],
                &mut OsRng,
            )
            .unwrap()
            .len()
        };
        assert_eq!(seal(0), 256 + 33);
        assert_eq!(seal(116), 256 + 33);
        assert_eq!(seal(117), 512 + 33);
    }

    #[test]
    fn wire_limits_are_enforced_at_the_exact_boundary() {
        let id = identity(1);
        for kind in [ChannelKind::Presence, ChannelKind::Event] {
            let max = kind.max_data_len();
            let blob =
                seal_channel(&id, &SPACE, 1, &key(5), kind, &vec![7; max], &mut OsRng).unwrap();
            assert!(blob.len() <= kind.max_blob_len());
            assert_eq!(
                open_channel(&key(5), &SPACE, kind, &blob)
                    .unwrap()
                    .data
                    .len(),
                max
            );
            assert_eq!(
                seal_channel(&id, &SPACE, 1, &key(5), kind, &vec![7; max + 1], &mut OsRng),
                Err(ChannelError::TooLarge)
            );
        }
        assert_eq!(ChannelKind::Presence.max_data_len(), 1907);
        assert_eq!(ChannelKind::Event.max_data_len(), 32627);
    }

    #[test]
    fn opens_only_with_its_key_space_kind_and_epoch() {
        let id = identity(1);
        let blob = seal_channel(
            &id,
            &SPACE,
            3,
            &key(5),
            ChannelKind::Presence,
            b"here",
            &mut OsRng,
        )
        .unwrap();
        assert!(open(&blob).is_ok());
        let auth = Err(ChannelError::Authentication);
        assert_eq!(
            open_channel(&key(6), &SPACE, ChannelKind::Presence, &blob),
            auth
        );
        assert_eq!(
            open_channel(&key(5), &OTHER_SPACE, ChannelKind::Presence, &blob),
            auth
        );
        assert_eq!(
            open_channel(&key(5), &SPACE, ChannelKind::Event, &blob),
            auth
        );
        let mut other_epoch = blob.clone();
        other_epoch[4] ^= 1;
        assert_eq!(channel_epoch(&other_epoch), Ok(2));
        assert_eq!(open(&other_epoch), auth);
        for i in CHANNEL_HEADER_LEN..blob.len() {
            let mut flipped = blob.clone();
            flipped[i] ^= 0x40;
            assert_eq!(open(&flipped), auth, "byte {i}");
        }
        let mut nonce = blob.clone();
        nonce[5] ^= 1;
        assert_eq!(open(&nonce), auth);
    }

    #[test]
    fn header_checks() {
        let blob = seal_channel(
            &identity(1),
            &SPACE,
            3,
            &key(5),
            ChannelKind::Presence,
            b"x",
            &mut OsRng,
        )
        .unwrap();
        assert_eq!(open(&[]), Err(ChannelError::Truncated));
        assert_eq!(channel_epoch(&[]), Err(ChannelError::Truncated));
        assert_eq!(channel_epoch(&[1, 0, 0]), Err(ChannelError::Truncated));
        assert_eq!(open(&blob[..32]), Err(ChannelError::Truncated));
        assert_eq!(open(&blob[..33]), Err(ChannelError::Authentication));
        assert_eq!(
            open(&blob[..blob.len() - 1]),
            Err(ChannelError::Authentication)
        );
        let mut v2 = blob.clone();
        v2[0] = 2;
        assert_eq!(open(&v2), Err(ChannelError::Version(2)));
        assert_eq!(channel_epoch(&v2), Err(ChannelError::Version(2)));
    }

    #[test]
    fn a_member_cannot_relabel_kind_or_author() {
        // Inner kind differs from the associated data's.
        let event = genuine_map(ChannelKind::Event, 3, b"e");
        assert_eq!(
            open(&raw_inner(
                ChannelKind::Presence,
                3,
                &cbor(&Value::Map(event))
            )),
            Err(ChannelError::Kind)
        );
        // Another member's DID on the first member's signed payload.
        let mut map = genuine_map(ChannelKind::Presence, 3, b"p");
        map[0].1 = Value::Text(identity(2).did().to_string());
        assert_eq!(
            open(&raw_inner(
                ChannelKind::Presence,
                3,
                &cbor(&Value::Map(map))
            )),
            Err(ChannelError::Signature)
        );
        // A signature made for another epoch, re-encrypted under this one.
        let map = genuine_map(ChannelKind::Presence, 2, b"p");
        assert_eq!(
            open(&raw_inner(
                ChannelKind::Presence,
                3,
                &cbor(&Value::Map(map))
            )),
            Err(ChannelError::Signature)
        );
        // Data swapped under a valid re-encryption.
        let mut map = genuine_map(ChannelKind::Presence, 3, b"p");
        map[1].1 = Value::Bytes(b"q".to_vec());
        assert_eq!(
            open(&raw_inner(
                ChannelKind::Presence,
                3,
                &cbor(&Value::Map(map))
            )),
            Err(ChannelError::Signature)
        );
        // Whoever re-encrypts an untouched map, its signer stays the author.
        let good = genuine_map(ChannelKind::Presence, 3, b"p");
        assert_eq!(
            open(&raw_inner(
                ChannelKind::Presence,
                3,
                &cbor(&Value::Map(good))
            ))
            .unwrap()
            .author,
            identity(1).did()
        );
    }

    #[test]
    fn inner_map_is_strict() {
        let p = ChannelKind::Presence;
        let good = genuine_map(p, 3, b"p");
        let reject = |map: Vec<(Value, Value)>| open(&raw_inner(p, 3, &cbor(&Value::Map(map))));
        let is_encoding =
            |r: Result<ChannelMessage, ChannelError>| matches!(r, Err(ChannelError::Encoding(_)));
        let mut unknown = good.clone();
        unknown.push((Value::Text("x".into()), Value::Integer(1.into())));
        assert!(is_encoding(reject(unknown)));
        let mut missing = good.clone();
        missing.pop();
        assert!(is_encoding(reject(missing)));
        let mut duplicate = good.clone();
        duplicate.push(good[3].clone());
        assert!(is_encoding(reject(duplicate)));
        let mut text_data = good.clone();
        text_data[1].1 = Value::Text("p".into());
        assert!(is_encoding(reject(text_data)));
        let mut array_data = good.clone();
        array_data[1].1 = Value::Array(vec![Value::Integer(0x70.into())]);
        assert!(is_encoding(reject(array_data)));
        let mut short_sig = good.clone();
        short_sig[3].1 = Value::Bytes(vec![0; 63]);
        assert!(is_encoding(reject(short_sig)));
        let mut negative_kind = good.clone();
        negative_kind[2].1 = Value::Integer((-1).into());
        assert!(is_encoding(reject(negative_kind)));
        let mut reordered = good.clone();
        reordered.swap(0, 1);
        assert!(is_encoding(reject(reordered)));
        let mut tagged = good.clone();
        tagged[1].1 = Value::Tag(24, Box::new(good[1].1.clone()));
        assert!(is_encoding(reject(tagged)));
        let mut int_key = good.clone();
        int_key[0].0 = Value::Integer(0.into());
        assert!(is_encoding(reject(int_key)));
        let array = Value::Array(good.iter().map(|(_, v)| v.clone()).collect());
        assert!(is_encoding(open(&raw_inner(p, 3, &cbor(&array)))));
        let mut trailing = cbor(&Value::Map(good.clone()));
        trailing.push(0xf6);
        assert!(is_encoding(open(&raw_inner(p, 3, &trailing))));
        let mut not_did = good.clone();
        not_did[0].1 = Value::Text("did:web:example.com".into());
        assert_eq!(
            reject(not_did),
            Err(ChannelError::Did(IdentityError::NotDidKey))
        );
        assert!(reject(good).is_ok());
    }

    #[test]
    fn padding_is_checked_after_authentication() {
        let p = ChannelKind::Presence;
        let map = cbor(&Value::Map(genuine_map(p, 3, b"p")));
        let mut nonzero = envelope::pad(&map).unwrap().to_vec();
        nonzero[255] = 1;
        assert_eq!(
            open(&raw(p, 3, &nonzero)),
            Err(ChannelError::Padding(PaddingError::NonZeroPadding))
        );
        let mut long = envelope::pad(&map).unwrap().to_vec();
        long[..4].copy_from_slice(&253u32.to_be_bytes());
        assert_eq!(
            open(&raw(p, 3, &long)),
            Err(ChannelError::Padding(PaddingError::LengthPrefix))
        );
        assert_eq!(
            open(&raw(p, 3, &[0; 300])),
            Err(ChannelError::Padding(PaddingError::BucketSize))
        );
        assert_eq!(
            open(&raw(p, 3, &[])),
            Err(ChannelError::Padding(PaddingError::BucketSize))
        );
    }

    #[test]
    fn debug_hides_data() {
        let msg = ChannelMessage {
            kind: ChannelKind::Event,
            epoch: 1,
            author: identity(1).did(),
            data: b"secret".to_vec(),
        };
        let shown = format!("{msg:?}");
        assert!(shown.contains("data_len: 6"), "{shown}");
        assert!(!shown.contains("[115"), "{shown}");
    }
}
