//! The client's key work in each account flow, without any I/O: what the
//! accounts web UI (through wasm) and the native client (`client` feature)
//! both do between their HTTP calls. One implementation of each step.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand_core::CryptoRngCore;
use sealbase_crypto::kdf::{
    app_key, ark_proof, ark_wrapping_key_from_export_key, ark_wrapping_key_from_recovery_key,
};
use sealbase_crypto::wrap::{
    ArkWrapError, RecoveryKeyError, format_recovery_key, parse_recovery_key, unwrap_ark, wrap_ark,
};
use sealbase_crypto::{
    AccountRootKey, AgreementPublicKey, AppKey, Identity, JweError, JweOptions, RecoveryKey, jwe,
};
use x25519_dalek::StaticSecret;
use zeroize::Zeroizing;

use crate::api::{B64, IdentityKeys};
use crate::directory::{self, AttestationError};

/// Why a flow step failed on the client.
#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    /// The wrapped `ARK` does not open with this key (wrong password-derived
    /// key or recovery key, or a corrupted blob).
    #[error("the account key does not open: {0}")]
    Unwrap(#[from] ArkWrapError),
    /// The recovery key text is not a recovery key.
    #[error("not a recovery key: {0}")]
    RecoveryKey(#[from] RecoveryKeyError),
    /// A JWE could not be made or opened.
    #[error("app key JWE: {0}")]
    Jwe(#[from] JweError),
    /// The app's `key_x25519` is not 32 bytes of base64url.
    #[error("the app's key_x25519 is not a 32-byte base64url key")]
    BadAppKey,
    /// The delivered app key does not belong to the identity the server
    /// published for it.
    #[error("the delivered app key does not match the published identity")]
    IdentityMismatch,
    /// The handle or client id is too long to attest.
    #[error(transparent)]
    Attestation(#[from] AttestationError),
}

/// What signup uploads, and the recovery key to show the user once.
pub struct SignupKeys {
    /// `ARK` wrapped under the export key's wrapping key.
    pub wrapped_ark: Vec<u8>,
    /// `ARK` wrapped under the recovery key.
    pub recovery_blob: Vec<u8>,
    /// Proof of holding `ARK`.
    pub ark_proof: Zeroizing<[u8; 32]>,
    /// The recovery key, formatted for the user (shown once, never sent).
    pub recovery_key: Zeroizing<String>,
    /// The new account root key (kept in memory for the session).
    pub ark: AccountRootKey,
}

impl std::fmt::Debug for SignupKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignupKeys").finish_non_exhaustive()
    }
}

/// Signup: a fresh `ARK` and recovery key, `ARK` wrapped under both.
pub fn signup_keys(rng: &mut impl CryptoRngCore, export_key: &[u8]) -> SignupKeys {
    let ark = AccountRootKey::generate(rng);
    let recovery = RecoveryKey::generate(rng);
    let wrapped_ark = wrap_ark(&ark_wrapping_key_from_export_key(export_key), &ark, rng).to_vec();
    let recovery_blob =
        wrap_ark(&ark_wrapping_key_from_recovery_key(&recovery), &ark, rng).to_vec();
    SignupKeys {
        wrapped_ark,
        recovery_blob,
        ark_proof: ark_proof(&ark),
        recovery_key: format_recovery_key(&recovery),
        ark,
    }
}

/// Login: `ARK` from the wrapped copy and OPAQUE's export key.
pub fn open_ark(export_key: &[u8], wrapped_ark: &[u8]) -> Result<AccountRootKey, FlowError> {
    Ok(unwrap_ark(
        &ark_wrapping_key_from_export_key(export_key),
        wrapped_ark,
    )?)
}

/// Recovery: `ARK` from the recovery blob and the user's recovery key text.
pub fn open_recovery(
    recovery_key: &str,
    recovery_blob: &[u8],
) -> Result<AccountRootKey, FlowError> {
    let key = parse_recovery_key(recovery_key)?;
    Ok(unwrap_ark(
        &ark_wrapping_key_from_recovery_key(&key),
        recovery_blob,
    )?)
}

/// What a password change or recovery uploads: the same `ARK` under the new
/// export key, and the proof that it is the account's `ARK`.
pub struct Rewrapped {
    /// `ARK` wrapped under the new export key's wrapping key.
    pub wrapped_ark: Vec<u8>,
    /// Proof of holding `ARK`.
    pub ark_proof: Zeroizing<[u8; 32]>,
}

/// Re-wraps `ARK` for a new password.
pub fn rewrap_ark(
    rng: &mut impl CryptoRngCore,
    ark: &AccountRootKey,
    new_export_key: &[u8],
) -> Rewrapped {
    Rewrapped {
        wrapped_ark: wrap_ark(&ark_wrapping_key_from_export_key(new_export_key), ark, rng).to_vec(),
        ark_proof: ark_proof(ark),
    }
}

/// What the consent page posts for an approval.
#[derive(Debug)]
pub struct ConsentKeys {
    /// The app identity's public keys, attested.
    pub identity: IdentityKeys,
    /// `AK` sealed to the app's ephemeral key, if it asked for it.
    pub key_jwe: Option<String>,
}

/// Parses a `key_x25519` parameter.
pub fn parse_app_key(text: &str) -> Result<AgreementPublicKey, FlowError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|_| FlowError::BadAppKey)?;
    let bytes: [u8; 32] = bytes.try_into().map_err(|_| FlowError::BadAppKey)?;
    Ok(AgreementPublicKey(bytes))
}

/// Consent: derive `AK` for `client_id`, attest its identity for `handle`,
/// and seal `AK` to the app's `key_x25519` (`kid` = its JWK thumbprint).
pub fn consent_keys(
    rng: &mut impl CryptoRngCore,
    ark: &AccountRootKey,
    handle: &str,
    client_id: &str,
    key_x25519: Option<&str>,
) -> Result<ConsentKeys, FlowError> {
    let ak = app_key(ark, client_id);
    let identity = Identity::from_app_key(&ak);
    let attestation = directory::attest(&identity, handle, client_id)?;
    let key_jwe = match key_x25519 {
        None => None,
        Some(text) => {
            let recipient = parse_app_key(text)?;
            let options = JweOptions {
                kid: Some(jwe::x25519_jwk_thumbprint(&recipient)),
                ..JweOptions::default()
            };
            Some(jwe::encrypt(&recipient, ak.as_bytes(), &options, rng)?)
        }
    };
    Ok(ConsentKeys {
        identity: IdentityKeys {
            did: identity.did().to_string(),
            x25519: B64(identity.agreement_public().as_bytes().to_vec()),
            attestation: B64(attestation.to_vec()),
        },
        key_jwe,
    })
}

/// The app's secrets for one authorization: PKCE verifier, `state`, and the
/// ephemeral key its app key is delivered to. Both the native client and
/// the browser bindings build their authorization requests from this.
#[derive(Debug)]
pub struct AppSecrets {
    /// PKCE verifier (sent at the token endpoint).
    pub verifier: String,
    /// `state` sent and expected back.
    pub state: String,
    /// Key delivery key (`key_x25519` is its public half).
    pub delivery: DeliveryKey,
}

impl AppSecrets {
    /// Fresh secrets.
    pub fn generate(rng: &mut impl CryptoRngCore) -> Self {
        Self {
            verifier: crate::pkce::new_verifier(rng),
            state: crate::pkce::new_verifier(rng),
            delivery: DeliveryKey::generate(rng),
        }
    }

    /// `code_challenge`, bound to `key_x25519`.
    pub fn challenge(&self) -> String {
        crate::pkce::challenge(&self.verifier, Some(&self.delivery.public))
    }
}

/// The app's side of key delivery: an ephemeral X25519 key whose public half
/// goes into the authorization request as `key_x25519`.
pub struct DeliveryKey {
    secret: StaticSecret,
    /// `key_x25519`: base64url of the public key.
    pub public: String,
}

impl std::fmt::Debug for DeliveryKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeliveryKey")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

impl DeliveryKey {
    /// A fresh key.
    pub fn generate(rng: &mut impl CryptoRngCore) -> Self {
        let secret = StaticSecret::random_from_rng(rng);
        let public = x25519_dalek::PublicKey::from(&secret);
        Self {
            public: URL_SAFE_NO_PAD.encode(public.as_bytes()),
            secret,
        }
    }

    /// The key from its secret half (a saved authorization).
    pub fn from_secret_bytes(secret: [u8; 32]) -> Self {
        let secret = StaticSecret::from(secret);
        let public = x25519_dalek::PublicKey::from(&secret);
        Self {
            public: URL_SAFE_NO_PAD.encode(public.as_bytes()),
            secret,
        }
    }

    /// The secret half (to save the authorization across a redirect).
    pub fn secret_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.secret.to_bytes())
    }

    /// Opens the delivered JWE and checks that the app key it holds derives
    /// the identity `expected_did` (the token response's `did`), so a relay
    /// cannot hand the app someone else's key.
    pub fn open(&self, key_jwe: &str, expected_did: &str) -> Result<AppKey, FlowError> {
        let plaintext = jwe::decrypt(key_jwe, &self.secret)?;
        let bytes: [u8; 32] = plaintext
            .as_slice()
            .try_into()
            .map_err(|_| FlowError::IdentityMismatch)?;
        let ak = AppKey::from_bytes(bytes);
        if Identity::from_app_key(&ak).did().to_string() != expected_did {
            return Err(FlowError::IdentityMismatch);
        }
        Ok(ak)
    }
}
