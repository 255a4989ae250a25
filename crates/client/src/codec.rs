//! The encryption boundary: a pending local record becomes a signed,
//! sealed protocol change, and a pulled blob becomes a verified envelope.
//! Plaintext never leaves this module towards the network.

use sealbase_crypto::{
    Dek, OsRng, RecordEnvelope, WrappedKey, open_record_envelope, seal_record_envelope, unwrap_dek,
    wrap_dek,
};
use sealbase_db::Pending;
use sealbase_protocol::{Bytes, Change, Uuid};

use crate::keys::{PERSONAL_EPOCH, SyncKeys};

/// Seals a pending record for `space`: a fresh DEK, the envelope signed by
/// this identity over the document's heads, the DEK wrapped under the
/// space's epoch key. A deletion is a tombstone (no blob).
pub fn seal_change(keys: &SyncKeys, space: &Uuid, pending: &Pending) -> Result<Change, String> {
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
        keys.identity(),
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
    let wrapped = wrap_dek(PERSONAL_EPOCH, keys.personal_epoch_key(), &dek);
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
    let wrapped = WrappedKey::from_bytes(dek.as_bytes()).map_err(|e| e.to_string())?;
    let dek = unwrap_dek(keys.personal_epoch_key(), &wrapped).map_err(|e| e.to_string())?;
    let envelope = open_record_envelope(&dek, space, id, blob).map_err(|e| e.to_string())?;
    if envelope.author() != &keys.did() {
        return Err(format!(
            "signed by {}, which is not this user's identity",
            envelope.author()
        ));
    }
    Ok(envelope)
}
