//! Membership log entries and invitations of shared spaces (DESIGN.md §3.4).
//!
//! **Entry.** What `space.create` and `membership.append` carry as
//! `entry` / `ciphertext`:
//!
//! `0x01 ‖ epoch (u32 BE) ‖ nonce (12) ‖ AES-256-GCM(K, pad(cbor(signed)), aad)`
//!
//! with `K = HKDF(E_epoch, "sealbase/v1/membership")` and
//! `aad = "sealbase/v1/membership" ‖ space (16) ‖ prev_hash (32; zeros for
//! the genesis entry) ‖ epoch (u32 BE)`. The server links entries by
//! `hash = SHA-256(ciphertext)`; binding `prev_hash` into the associated
//! data means an entry cannot be replayed elsewhere in the chain or in
//! another space. `pad` is the record envelope's padding, so entry kinds
//! do not show in their sizes.
//!
//! The plaintext is the canonical CBOR map `{a: author DID, b: body (CBOR
//! bytes), v: 1, sig: Ed25519}`; the author signs
//! `"sealbase/v1/membership-sig" ‖ space ‖ prev_hash ‖ epoch ‖ body` with
//! the same bytes as the associated data, so the signature covers where
//! the entry sits. The body is one of [`EntryBody`]; whether its author was
//! allowed to write it is for the reader to decide when folding the log
//! (the server sees none of this).
//!
//! **Invitation.** Sealed to the invitee's X25519 key
//! ([`crate::sealed`], context `"invitation" ‖ invitation id (16)`): the
//! canonical CBOR map `{c: capability token, i: inviter DID, k: [{e: epoch,
//! k: key}], n: space name, r: role, s: space id (16 bytes), v: 1}`. A
//! sealed box proves nothing about its sender: the invitee trusts it only
//! once the space's signed log holds an `invite` entry for it by an admin,
//! with the same capability.

use rand_core::CryptoRngCore;
use serde::{Deserialize, Serialize};
use serde_bytes::ByteArray;
use sha2::{Digest, Sha256};
use uuid::Uuid;
use x25519_dalek::StaticSecret;
use zeroize::{Zeroize, Zeroizing};

use crate::capability::Capability;
use crate::envelope::{self, NONCE_LEN, TAG_LEN};
use crate::gcm;
use crate::identity::{AgreementPublicKey, Did, Identity, SIGNATURE_LEN};
use crate::kdf;
use crate::keys::EpochKey;
use crate::sealed::{self, SealError};

/// Version byte of a sealed membership entry.
pub const ENTRY_VERSION: u8 = 0x01;
/// Version (`v`) of the signed entry and of the invitation payload.
pub const PAYLOAD_VERSION: u64 = 1;
/// Domain-separation prefix of an entry's associated data.
pub const ENTRY_AAD_PREFIX: &[u8] = b"sealbase/v1/membership";
/// Domain-separation prefix of an entry's signed message.
pub const ENTRY_SIG_PREFIX: &[u8] = b"sealbase/v1/membership-sig";
/// Context prefix of a sealed invitation.
pub const INVITATION_CONTEXT: &[u8] = b"invitation";
/// Bytes before the ciphertext: version, epoch, nonce.
pub const ENTRY_HEADER_LEN: usize = 1 + 4 + NONCE_LEN;
/// The `prev_hash` of the genesis entry, in associated data and signature.
pub const GENESIS_PREV: [u8; 32] = [0; 32];

/// SHA-256 of an entry's ciphertext: its place in the chain.
pub type EntryHash = [u8; 32];

/// Why an entry or invitation could not be made or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MembershipError {
    /// Shorter than its header and tag.
    #[error("membership entry is truncated")]
    Truncated,
    /// The first byte is not a version this code knows.
    #[error("unsupported membership entry version {0:#04x}")]
    UnsupportedVersion(u8),
    /// The GCM tag did not verify: another key, space or chain position,
    /// or tampered bytes.
    #[error(
        "membership entry failed authentication (wrong epoch key, space or position, or tampered)"
    )]
    Authentication,
    /// The padding around the plaintext is invalid.
    #[error("membership entry padding is invalid: {0}")]
    Padding(String),
    /// The CBOR inside is not an entry or invitation of the known shape.
    #[error("malformed membership payload: {0}")]
    Malformed(String),
    /// The payload's `v` is not one this code knows.
    #[error("unsupported membership payload version {0}")]
    UnsupportedPayloadVersion(u64),
    /// The author's signature does not verify.
    #[error("membership entry signature does not verify")]
    BadSignature,
    /// The entry or invitation is too large to seal.
    #[error("membership payload too large")]
    TooLarge,
    /// The sealed invitation did not open.
    #[error("invitation: {0}")]
    Seal(#[from] SealError),
}

/// What an entry says. Who may say what is the reader's rule (see the
/// client's log fold): `create` only as genesis by the space's root;
/// `invite`, `remove` and `rotate` by admins; `accept` and `decline` by
/// the invitee itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "k", rename_all = "snake_case", deny_unknown_fields)]
pub enum EntryBody {
    /// The genesis entry: the space and its name.
    Create {
        /// The space's display name.
        name: String,
        /// The root's X25519 key: rotations seal epoch keys to it.
        x25519: ByteArray<32>,
    },
    /// `member` is invited with `role`; `cap` is the capability token
    /// delegated to it (its audience is `member`).
    Invite {
        /// The invitee's DID.
        member: Did,
        /// The invitee's X25519 key (from the key directory): rotations
        /// seal later epoch keys to it.
        x25519: ByteArray<32>,
        /// The invitee's handle, for display.
        handle: String,
        /// The role granted.
        role: Capability,
        /// The capability token delegated to `member` (compact form).
        cap: String,
    },
    /// The author accepts its pending invitation.
    Accept,
    /// The author declines its pending invitation.
    Decline,
    /// `member` is removed; `revoked` are the hashes of the capability
    /// tokens revoked with it.
    Remove {
        /// The removed member's DID.
        member: Did,
        /// SHA-256 of each revoked token's compact form.
        revoked: Vec<ByteArray<32>>,
    },
    /// The epoch key was rotated to `epoch` and sealed to `members`.
    Rotate {
        /// The new epoch.
        epoch: u32,
        /// Every DID the new key was sealed to.
        members: Vec<Did>,
    },
}

/// A signed entry, opened (or about to be sealed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedEntry {
    author: Did,
    body: EntryBody,
    body_cbor: Vec<u8>,
    signature: [u8; SIGNATURE_LEN],
}

#[derive(Serialize)]
struct SignedOut<'a> {
    a: &'a Did,
    b: &'a serde_bytes::Bytes,
    v: u64,
    sig: ByteArray<SIGNATURE_LEN>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignedIn {
    a: Did,
    b: serde_bytes::ByteBuf,
    v: u64,
    sig: ByteArray<SIGNATURE_LEN>,
}

/// Reads only `v`, so an unknown version is reported as such.
#[derive(Deserialize)]
struct VersionProbe {
    v: u64,
}

fn malformed(e: impl core::fmt::Display) -> MembershipError {
    MembershipError::Malformed(e.to_string())
}

/// Decodes exactly one CBOR item of type `T` after checking its `v`.
fn decode_versioned<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, MembershipError> {
    let probe: VersionProbe = ciborium::from_reader(&mut { bytes }).map_err(malformed)?;
    if probe.v != PAYLOAD_VERSION {
        return Err(MembershipError::UnsupportedPayloadVersion(probe.v));
    }
    let mut rest = bytes;
    let value: T = ciborium::from_reader(&mut rest).map_err(malformed)?;
    if !rest.is_empty() {
        return Err(malformed(format_args!(
            "{} trailing bytes after the payload",
            rest.len()
        )));
    }
    Ok(value)
}

/// `prefix ‖ space ‖ prev ‖ epoch`: shared by the associated data and
/// the signed message.
fn position(prefix: &[u8], space: &Uuid, prev: Option<&EntryHash>, epoch: u32) -> Vec<u8> {
    [
        prefix,
        space.as_bytes(),
        prev.unwrap_or(&GENESIS_PREV),
        &epoch.to_be_bytes(),
    ]
    .concat()
}

/// The associated data of an entry at this position.
pub fn entry_aad(space: &Uuid, prev: Option<&EntryHash>, epoch: u32) -> Vec<u8> {
    position(ENTRY_AAD_PREFIX, space, prev, epoch)
}

impl SignedEntry {
    /// Signs `body` as `identity`'s entry at this position of `space`'s
    /// log (after `prev`, `None` for the genesis entry), to be sealed
    /// under `epoch`.
    pub fn sign(
        identity: &Identity,
        space: &Uuid,
        prev: Option<&EntryHash>,
        epoch: u32,
        body: EntryBody,
    ) -> Result<Self, MembershipError> {
        let mut body_cbor = Vec::new();
        ciborium::into_writer(&body, &mut body_cbor).map_err(malformed)?;
        let mut entry = Self {
            author: identity.did(),
            body,
            body_cbor,
            signature: [0; SIGNATURE_LEN],
        };
        entry.signature = identity.sign(&entry.signed_message(space, prev, epoch));
        Ok(entry)
    }

    /// The exact bytes the author signs at this position.
    pub fn signed_message(&self, space: &Uuid, prev: Option<&EntryHash>, epoch: u32) -> Vec<u8> {
        let mut message = position(ENTRY_SIG_PREFIX, space, prev, epoch);
        message.extend_from_slice(&self.body_cbor);
        message
    }

    /// Verifies the author's signature at this position.
    pub fn verify(
        &self,
        space: &Uuid,
        prev: Option<&EntryHash>,
        epoch: u32,
    ) -> Result<(), MembershipError> {
        self.author
            .verify(&self.signed_message(space, prev, epoch), &self.signature)
            .map_err(|_| MembershipError::BadSignature)
    }

    /// Who signed the entry.
    pub fn author(&self) -> &Did {
        &self.author
    }

    /// What it says.
    pub fn body(&self) -> &EntryBody {
        &self.body
    }

    /// The Ed25519 signature.
    pub fn signature(&self) -> &[u8; SIGNATURE_LEN] {
        &self.signature
    }

    /// Canonical CBOR `{a, b, v: 1, sig}`.
    pub fn to_cbor(&self) -> Result<Zeroizing<Vec<u8>>, MembershipError> {
        let mut out = Zeroizing::new(Vec::with_capacity(self.body_cbor.len() + 160));
        ciborium::into_writer(
            &SignedOut {
                a: &self.author,
                b: serde_bytes::Bytes::new(&self.body_cbor),
                v: PAYLOAD_VERSION,
                sig: ByteArray::new(self.signature),
            },
            &mut *out,
        )
        .map_err(malformed)?;
        Ok(out)
    }

    /// Decodes [`Self::to_cbor`]'s form (the signature is not checked
    /// here: see [`Self::verify`]).
    pub fn from_cbor(bytes: &[u8]) -> Result<Self, MembershipError> {
        let wire: SignedIn = decode_versioned(bytes)?;
        if wire.v != PAYLOAD_VERSION {
            return Err(MembershipError::UnsupportedPayloadVersion(wire.v));
        }
        let body_cbor = wire.b.into_vec();
        let mut rest = body_cbor.as_slice();
        let body: EntryBody = ciborium::from_reader(&mut rest).map_err(malformed)?;
        if !rest.is_empty() {
            return Err(malformed("trailing bytes after the entry body"));
        }
        Ok(Self {
            author: wire.a,
            body,
            body_cbor,
            signature: wire.sig.into_array(),
        })
    }
}

fn entry_key(epoch_key: &EpochKey) -> Zeroizing<[u8; 32]> {
    kdf::membership_key(epoch_key)
}

/// Seals a signed entry under `epoch`'s key at this position. Refuses an
/// entry whose signature does not verify there (readers would drop it).
pub fn seal_entry(
    epoch_key: &EpochKey,
    epoch: u32,
    space: &Uuid,
    prev: Option<&EntryHash>,
    entry: &SignedEntry,
    rng: &mut impl CryptoRngCore,
) -> Result<Vec<u8>, MembershipError> {
    let mut nonce = [0u8; NONCE_LEN];
    rng.fill_bytes(&mut nonce);
    seal_entry_with_nonce(epoch_key, epoch, space, prev, entry, &nonce)
}

/// [`seal_entry`] with a caller-chosen nonce: only for test vectors.
pub fn seal_entry_with_nonce(
    epoch_key: &EpochKey,
    epoch: u32,
    space: &Uuid,
    prev: Option<&EntryHash>,
    entry: &SignedEntry,
    nonce: &[u8; NONCE_LEN],
) -> Result<Vec<u8>, MembershipError> {
    entry.verify(space, prev, epoch)?;
    let cbor = entry.to_cbor()?;
    let padded = envelope::pad(&cbor).map_err(|_| MembershipError::TooLarge)?;
    let mut out = Vec::with_capacity(ENTRY_HEADER_LEN + padded.len() + TAG_LEN);
    out.push(ENTRY_VERSION);
    out.extend_from_slice(&epoch.to_be_bytes());
    out.extend_from_slice(nonce);
    out.extend_from_slice(&padded);
    let body = out
        .get_mut(ENTRY_HEADER_LEN..)
        .ok_or(MembershipError::Truncated)?;
    let tag = gcm::encrypt(
        entry_key(epoch_key).as_slice(),
        nonce,
        &entry_aad(space, prev, epoch),
        body,
    )
    .map_err(|_| MembershipError::TooLarge)?;
    out.extend_from_slice(&tag);
    Ok(out)
}

/// The epoch an entry was sealed under (its header; unauthenticated until
/// [`open_entry`] succeeds).
pub fn entry_epoch(ciphertext: &[u8]) -> Result<u32, MembershipError> {
    let (&version, rest) = ciphertext.split_first().ok_or(MembershipError::Truncated)?;
    if version != ENTRY_VERSION {
        return Err(MembershipError::UnsupportedVersion(version));
    }
    let epoch = rest.first_chunk::<4>().ok_or(MembershipError::Truncated)?;
    Ok(u32::from_be_bytes(*epoch))
}

/// SHA-256 of the ciphertext, as the server computes it.
pub fn entry_hash(ciphertext: &[u8]) -> EntryHash {
    Sha256::digest(ciphertext).into()
}

/// Opens an entry at this position with the key of the epoch its header
/// names ([`entry_epoch`]), decodes it and verifies its signature.
pub fn open_entry(
    epoch_key: &EpochKey,
    space: &Uuid,
    prev: Option<&EntryHash>,
    ciphertext: &[u8],
) -> Result<SignedEntry, MembershipError> {
    let epoch = entry_epoch(ciphertext)?;
    if ciphertext.len() < ENTRY_HEADER_LEN + TAG_LEN {
        return Err(MembershipError::Truncated);
    }
    let nonce = ciphertext
        .get(5..ENTRY_HEADER_LEN)
        .and_then(|n| <[u8; NONCE_LEN]>::try_from(n).ok())
        .ok_or(MembershipError::Truncated)?;
    let rest = ciphertext
        .get(ENTRY_HEADER_LEN..)
        .ok_or(MembershipError::Truncated)?;
    let (body, tag) = rest
        .split_last_chunk::<TAG_LEN>()
        .ok_or(MembershipError::Truncated)?;
    let mut plain = Zeroizing::new(body.to_vec());
    gcm::decrypt(
        entry_key(epoch_key).as_slice(),
        &nonce,
        &entry_aad(space, prev, epoch),
        &mut plain,
        tag,
    )
    .map_err(|_| MembershipError::Authentication)?;
    let cbor = envelope::unpad(&plain).map_err(|e| MembershipError::Padding(e.to_string()))?;
    let entry = SignedEntry::from_cbor(cbor)?;
    entry.verify(space, prev, epoch)?;
    Ok(entry)
}

/// What an invitation tells its invitee.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvitationPayload {
    /// The shared space.
    pub space: Uuid,
    /// Its display name.
    pub name: String,
    /// Who invited (an admin of the space).
    pub inviter: Did,
    /// The role granted.
    pub role: Capability,
    /// The capability token delegated to the invitee (compact form).
    pub cap: String,
    /// Every epoch key of the space so far, oldest first: the log and the
    /// records are readable from the start.
    pub keys: Vec<(u32, EpochKey)>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireKey {
    e: u32,
    k: ByteArray<32>,
}

impl Drop for WireKey {
    fn drop(&mut self) {
        self.k.zeroize();
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireInvitation {
    c: String,
    i: Did,
    k: Vec<WireKey>,
    n: String,
    r: Capability,
    s: ByteArray<16>,
    v: u64,
}

/// `"invitation" ‖ invitation id`: the context a sealed invitation is bound to.
pub fn invitation_context(invitation: &Uuid) -> Vec<u8> {
    [INVITATION_CONTEXT, invitation.as_bytes()].concat()
}

/// The canonical CBOR of an invitation payload.
pub fn invitation_to_cbor(
    payload: &InvitationPayload,
) -> Result<Zeroizing<Vec<u8>>, MembershipError> {
    let wire = WireInvitation {
        c: payload.cap.clone(),
        i: payload.inviter,
        k: payload
            .keys
            .iter()
            .map(|(e, k)| WireKey {
                e: *e,
                k: ByteArray::new(*k.as_bytes()),
            })
            .collect(),
        n: payload.name.clone(),
        r: payload.role,
        s: ByteArray::new(*payload.space.as_bytes()),
        v: PAYLOAD_VERSION,
    };
    let mut out = Zeroizing::new(Vec::new());
    ciborium::into_writer(&wire, &mut *out).map_err(malformed)?;
    Ok(out)
}

/// Decodes [`invitation_to_cbor`]'s form.
pub fn invitation_from_cbor(bytes: &[u8]) -> Result<InvitationPayload, MembershipError> {
    let wire: WireInvitation = decode_versioned(bytes)?;
    Ok(InvitationPayload {
        space: Uuid::from_bytes(*wire.s),
        name: wire.n.clone(),
        inviter: wire.i,
        role: wire.r,
        cap: wire.c.clone(),
        keys: wire
            .k
            .iter()
            .map(|k| (k.e, EpochKey::from_bytes(*k.k)))
            .collect(),
    })
}

/// Seals an invitation (id `invitation`) to the invitee's X25519 key.
pub fn seal_invitation(
    recipient: &AgreementPublicKey,
    invitation: &Uuid,
    payload: &InvitationPayload,
    rng: &mut impl CryptoRngCore,
) -> Result<Vec<u8>, MembershipError> {
    let cbor = invitation_to_cbor(payload)?;
    Ok(sealed::seal(
        recipient,
        &cbor,
        &invitation_context(invitation),
        rng,
    )?)
}

/// Opens an invitation sealed to `recipient` under id `invitation`.
pub fn open_invitation(
    recipient: &StaticSecret,
    invitation: &Uuid,
    sealed_payload: &[u8],
) -> Result<InvitationPayload, MembershipError> {
    let cbor = sealed::open(recipient, sealed_payload, &invitation_context(invitation))?;
    invitation_from_cbor(&cbor)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use rand_core::OsRng;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn identity(n: u8) -> Identity {
        Identity::from_secrets(&[n; 32], &[n.wrapping_add(100); 32])
    }

    #[test]
    fn entries_open_only_at_their_position_with_their_key() {
        let admin = identity(1);
        let space = Uuid::from_bytes([3; 16]);
        let other_space = Uuid::from_bytes([4; 16]);
        let key = EpochKey::from_bytes([5; 32]);
        let prev = [6u8; 32];
        let entry = SignedEntry::sign(&admin, &space, Some(&prev), 2, EntryBody::Accept).unwrap();
        let sealed = seal_entry(&key, 2, &space, Some(&prev), &entry, &mut OsRng).unwrap();
        assert_eq!(entry_epoch(&sealed).unwrap(), 2);
        assert!(envelope::is_bucket_size(sealed.len() - 33));
        let opened = open_entry(&key, &space, Some(&prev), &sealed).unwrap();
        assert_eq!(opened, entry);
        assert_eq!(opened.author(), &admin.did());
        let wrong = [
            open_entry(&EpochKey::from_bytes([7; 32]), &space, Some(&prev), &sealed),
            open_entry(&key, &other_space, Some(&prev), &sealed),
            open_entry(&key, &space, None, &sealed),
            open_entry(&key, &space, Some(&[9; 32]), &sealed),
        ];
        for result in wrong {
            assert_eq!(result.unwrap_err(), MembershipError::Authentication);
        }
        // The epoch in the header is authenticated.
        let mut relabelled = sealed.clone();
        relabelled[4] = 3;
        assert_eq!(
            open_entry(&key, &space, Some(&prev), &relabelled).unwrap_err(),
            MembershipError::Authentication
        );
        let mut tampered = sealed;
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert_eq!(
            open_entry(&key, &space, Some(&prev), &tampered).unwrap_err(),
            MembershipError::Authentication
        );
    }

    #[test]
    fn a_forged_signature_is_refused_before_sealing_and_after_opening() {
        let admin = identity(1);
        let space = Uuid::from_bytes([3; 16]);
        let key = EpochKey::from_bytes([5; 32]);
        let mut entry = SignedEntry::sign(&admin, &space, None, 1, EntryBody::Decline).unwrap();
        // Signed for the genesis position: not valid after another entry.
        assert_eq!(
            seal_entry(&key, 1, &space, Some(&[1; 32]), &entry, &mut OsRng).unwrap_err(),
            MembershipError::BadSignature
        );
        entry.author = identity(2).did();
        assert_eq!(
            seal_entry(&key, 1, &space, None, &entry, &mut OsRng).unwrap_err(),
            MembershipError::BadSignature
        );
    }

    #[test]
    fn garbage_is_an_error_never_a_panic() {
        let key = EpochKey::from_bytes([5; 32]);
        let space = Uuid::from_bytes([3; 16]);
        for len in 0..80 {
            let mut bytes = vec![0x5a; len];
            if let Some(first) = bytes.first_mut() {
                *first = ENTRY_VERSION;
            }
            assert!(open_entry(&key, &space, None, &bytes).is_err());
        }
        assert_eq!(
            entry_epoch(&[2, 0, 0, 0, 1]).unwrap_err(),
            MembershipError::UnsupportedVersion(2)
        );
        assert!(SignedEntry::from_cbor(&[0xa0]).is_err());
        assert!(invitation_from_cbor(&[0xff, 0x00]).is_err());
    }

    #[test]
    fn invitations_round_trip_and_bind_their_id() {
        let invitee = identity(8);
        let payload = InvitationPayload {
            space: Uuid::from_bytes([3; 16]),
            name: "Trip".into(),
            inviter: identity(1).did(),
            role: Capability::Write,
            cap: "token".into(),
            keys: vec![
                (1, EpochKey::from_bytes([1; 32])),
                (2, EpochKey::from_bytes([2; 32])),
            ],
        };
        let id = Uuid::from_bytes([9; 16]);
        let sealed =
            seal_invitation(&invitee.agreement_public(), &id, &payload, &mut OsRng).unwrap();
        let opened = open_invitation(invitee.agreement_secret(), &id, &sealed).unwrap();
        assert_eq!(opened, payload);
        assert_eq!(
            open_invitation(
                invitee.agreement_secret(),
                &Uuid::from_bytes([8; 16]),
                &sealed
            )
            .unwrap_err(),
            MembershipError::Seal(SealError::Authentication)
        );
        assert!(open_invitation(identity(9).agreement_secret(), &id, &sealed).is_err());
    }

    #[test]
    fn every_body_kind_round_trips() {
        let member = identity(2).did();
        let bodies = [
            EntryBody::Create {
                name: "n".into(),
                x25519: ByteArray::new([3; 32]),
            },
            EntryBody::Invite {
                member,
                x25519: ByteArray::new([1; 32]),
                handle: "bo".into(),
                role: Capability::Admin,
                cap: "c".into(),
            },
            EntryBody::Accept,
            EntryBody::Decline,
            EntryBody::Remove {
                member,
                revoked: vec![ByteArray::new([2; 32])],
            },
            EntryBody::Rotate {
                epoch: 4,
                members: vec![member],
            },
        ];
        let space = Uuid::from_bytes([3; 16]);
        for body in bodies {
            let entry = SignedEntry::sign(&identity(1), &space, None, 1, body.clone()).unwrap();
            let back = SignedEntry::from_cbor(&entry.to_cbor().unwrap()).unwrap();
            assert_eq!(back.body(), &body);
            back.verify(&space, None, 1).unwrap();
        }
    }
}
