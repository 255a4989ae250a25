//! Key directory attestations.
//!
//! At consent the user's page publishes, for `(handle, client_id)`, the app
//! identity's `did:key` and X25519 public key. It signs them with the
//! identity's Ed25519 key, so whoever looks the entry up (to invite that
//! user) can check that the X25519 key belongs to the DID and was published
//! for this handle and app, without trusting the accounts server for it:
//!
//! ```text
//! message = "sealbase/v1/directory" ‖ 0x00
//!           ‖ u16be(len handle) ‖ handle ‖ u16be(len client_id) ‖ client_id
//!           ‖ x25519 public key (32)
//! attestation = Ed25519(identity, message)   (64 bytes)
//! ```
//!
//! The label carries the format version.

use sealbase_crypto::{AgreementPublicKey, Did, Identity};

/// Domain separation label (and format version) of the signed message.
pub const LABEL: &[u8] = b"sealbase/v1/directory";
/// Length of an attestation.
pub const ATTESTATION_LEN: usize = 64;

/// Why an attestation was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AttestationError {
    /// The handle or client id is longer than 65,535 bytes.
    #[error("handle or client id is too long")]
    TooLong,
    /// The signature does not verify for this DID and message.
    #[error("directory attestation does not verify")]
    BadSignature,
    /// The entry's DID is not a `did:key` of an Ed25519 key.
    #[error("the directory entry's did is not an Ed25519 did:key")]
    Did,
    /// The entry's X25519 key is not 32 bytes.
    #[error("the directory entry's X25519 key is not 32 bytes")]
    Key,
}

fn message(
    handle: &str,
    client_id: &str,
    x25519: &AgreementPublicKey,
) -> Result<Vec<u8>, AttestationError> {
    let handle_len = u16::try_from(handle.len()).map_err(|_| AttestationError::TooLong)?;
    let client_len = u16::try_from(client_id.len()).map_err(|_| AttestationError::TooLong)?;
    let mut m = Vec::with_capacity(LABEL.len() + 5 + handle.len() + client_id.len() + 32);
    m.extend_from_slice(LABEL);
    m.push(0);
    m.extend_from_slice(&handle_len.to_be_bytes());
    m.extend_from_slice(handle.as_bytes());
    m.extend_from_slice(&client_len.to_be_bytes());
    m.extend_from_slice(client_id.as_bytes());
    m.extend_from_slice(x25519.as_bytes());
    Ok(m)
}

/// Signs the identity's agreement key for `(handle, client_id)`.
pub fn attest(
    identity: &Identity,
    handle: &str,
    client_id: &str,
) -> Result<[u8; ATTESTATION_LEN], AttestationError> {
    Ok(identity.sign(&message(handle, client_id, &identity.agreement_public())?))
}

/// Checks an attestation made by [`attest`].
pub fn verify(
    did: &Did,
    x25519: &AgreementPublicKey,
    handle: &str,
    client_id: &str,
    attestation: &[u8],
) -> Result<(), AttestationError> {
    did.verify(&message(handle, client_id, x25519)?, attestation)
        .map_err(|_| AttestationError::BadSignature)
}

/// Checks a key directory entry for `client_id`: its DID parses, its
/// X25519 key has the right length, and the DID attested that key for
/// this handle and app. Returns the DID and the key.
pub fn verify_entry(
    entry: &crate::api::DirectoryEntry,
    client_id: &str,
) -> Result<(Did, AgreementPublicKey), AttestationError> {
    let did = entry
        .did
        .parse::<Did>()
        .map_err(|_| AttestationError::Did)?;
    let x25519: [u8; 32] = entry
        .x25519
        .0
        .as_slice()
        .try_into()
        .map_err(|_| AttestationError::Key)?;
    let x25519 = AgreementPublicKey(x25519);
    verify(
        &did,
        &x25519,
        &entry.handle,
        client_id,
        &entry.attestation.0,
    )?;
    Ok((did, x25519))
}
