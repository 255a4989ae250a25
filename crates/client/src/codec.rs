//! The encryption boundary: a pending local record becomes a signed,
//! sealed protocol change, and a pulled blob becomes a verified envelope.
//! Plaintext never leaves this module towards the network.

use std::collections::BTreeMap;

use sealbase_crypto::capability::Capability;
use sealbase_crypto::{
    Dek, EnvelopeError, EpochKey, Identity, OsRng, RecordEnvelope, SignatureCheck, WrappedKey,
    open_record_envelope_unchecked, seal_record_envelope, unwrap_dek, wrap_dek,
};
use sealbase_db::Pending;
use sealbase_protocol::{Bytes, Change, Uuid};

use crate::keys::SyncKeys;
use crate::members::Folded;

/// Seals a pending record for `space`: a fresh DEK, the envelope signed by
/// `identity` over the document's heads, the DEK wrapped under the
/// space's current epoch key (`epoch`, `epoch_key`). A deletion is a
/// tombstone (no blob).
pub fn seal_change(
    identity: &Identity,
    epoch: u32,
    epoch_key: &EpochKey,
    space: &Uuid,
    pending: &Pending,
) -> Result<Change, String> {
    let id = Uuid::parse_str(&pending.id)
        .map_err(|_| format!("record id {:?} is not a UUID", pending.id))?;
    if pending.deleted {
        return Ok(Change {
            id,
            blob: None,
            dek: None,
            expected_cursor: pending.cursor,
        });
    }
    let envelope = RecordEnvelope::sign(
        identity,
        space,
        &id,
        pending.collection.clone(),
        pending.schema_version,
        pending.doc.clone(),
        pending.heads.clone(),
    )
    .map_err(|e| e.to_string())?;
    let dek = Dek::generate(&mut OsRng);
    let blob =
        seal_record_envelope(&dek, space, &id, &envelope, &mut OsRng).map_err(|e| e.to_string())?;
    let wrapped = wrap_dek(epoch, epoch_key, &dek);
    Ok(Change {
        id,
        blob: Some(Bytes(blob)),
        dek: Some(sealbase_protocol::WrappedKey(wrapped.to_bytes())),
        expected_cursor: pending.cursor,
    })
}

/// Opens a pulled version of record `id` in the personal space `space`:
/// unwraps its DEK, decrypts (the AAD binds space and id), decodes the
/// envelope and checks the authorship signature, and that the author is
/// this user (only the user's own identity writes a personal space). The
/// caller still checks the document against the signed heads (the store
/// does, on merge).
pub fn open_personal(
    keys: &SyncKeys,
    space: &Uuid,
    id: &Uuid,
    blob: &[u8],
    dek: &sealbase_protocol::WrappedKey,
) -> Result<RecordEnvelope, String> {
    checked(open_personal_unchecked(keys, space, id, blob, dek)?)
}

/// [`open_personal`] but for the signature check, which is returned for
/// the caller to run before it uses the envelope.
pub fn open_personal_unchecked(
    keys: &SyncKeys,
    space: &Uuid,
    id: &Uuid,
    blob: &[u8],
    dek: &sealbase_protocol::WrappedKey,
) -> Result<(RecordEnvelope, SignatureCheck), String> {
    let (envelope, check) = open_under(|_| Ok(keys.personal_epoch_key()), space, id, blob, dek)?;
    if envelope.author() != &keys.did() {
        return Err(format!(
            "signed by {}, which is not this user's identity",
            envelope.author()
        ));
    }
    Ok((envelope, check))
}

/// Opens a pulled version of record `id` in shared space `space`: the DEK
/// unwraps under the key of the epoch it names, the envelope decrypts and
/// its signature verifies, and its author is someone the space's signed
/// log granted `write` or `admin` (a member removed later keeps the
/// versions it wrote while a member).
pub fn open_shared(
    keys: &BTreeMap<u32, EpochKey>,
    folded: &Folded,
    space: &Uuid,
    id: &Uuid,
    blob: &[u8],
    dek: &sealbase_protocol::WrappedKey,
) -> Result<RecordEnvelope, String> {
    checked(open_shared_unchecked(keys, folded, space, id, blob, dek)?)
}

/// [`open_shared`] but for the signature check, which is returned for the
/// caller to run before it uses the envelope.
pub fn open_shared_unchecked(
    keys: &BTreeMap<u32, EpochKey>,
    folded: &Folded,
    space: &Uuid,
    id: &Uuid,
    blob: &[u8],
    dek: &sealbase_protocol::WrappedKey,
) -> Result<(RecordEnvelope, SignatureCheck), String> {
    let (envelope, check) = open_under(
        |epoch| {
            keys.get(&epoch)
                .ok_or_else(|| format!("no key for epoch {epoch}"))
        },
        space,
        id,
        blob,
        dek,
    )?;
    let writer = folded
        .member(envelope.author())
        .is_some_and(|m| m.role >= Capability::Write);
    if !writer {
        return Err(format!(
            "signed by {}, who may not write this space",
            envelope.author()
        ));
    }
    Ok((envelope, check))
}

/// The error a failed signature check gives (as [`open_personal`] and
/// [`open_shared`] report it).
pub fn bad_signature() -> String {
    EnvelopeError::BadAuthorSignature.to_string()
}

fn checked((envelope, check): (RecordEnvelope, SignatureCheck)) -> Result<RecordEnvelope, String> {
    check.require().map_err(|e| e.to_string())?;
    Ok(envelope)
}

/// Unwraps the DEK under the key `key_for` gives for its epoch, decrypts
/// and decodes the envelope; its signature is still to be checked.
fn open_under<'k>(
    key_for: impl FnOnce(u32) -> Result<&'k EpochKey, String>,
    space: &Uuid,
    id: &Uuid,
    blob: &[u8],
    dek: &sealbase_protocol::WrappedKey,
) -> Result<(RecordEnvelope, SignatureCheck), String> {
    let wrapped = WrappedKey::from_bytes(dek.as_bytes()).map_err(|e| e.to_string())?;
    let dek = unwrap_dek(key_for(wrapped.epoch())?, &wrapped).map_err(|e| e.to_string())?;
    open_record_envelope_unchecked(&dek, space, id, blob).map_err(|e| e.to_string())
}
