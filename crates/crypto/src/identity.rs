//! App identities: an Ed25519 signing key and an X25519 agreement key, both
//! derived from the app key, and the `did:key` form of the signing key.
//!
//! A DID is `did:key:z` followed by base58btc of the multicodec prefix for
//! Ed25519 public keys (`0xed 0x01`, the varint of 0xed) and the 32-byte key.
//! Parsing accepts exactly that and nothing else; verification is strict
//! (`verify_strict`), so small-order keys and malleable signatures fail.

use core::fmt;
use core::str::FromStr;

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use x25519_dalek::{PublicKey as X25519Public, StaticSecret};

use crate::kdf;
use crate::keys::AppKey;

/// Length of an Ed25519 signature.
pub const SIGNATURE_LEN: usize = 64;

const DID_KEY_PREFIX: &str = "did:key:z";
/// Multicodec `ed25519-pub` (0xed) as an unsigned varint.
const MULTICODEC_ED25519_PUB: [u8; 2] = [0xed, 0x01];

/// Why a DID or a signature was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    /// The string does not start with `did:key:z` (base58btc multibase).
    #[error("not a did:key with base58btc multibase")]
    NotDidKey,
    /// The multibase body is not valid base58btc.
    #[error("did:key body is not valid base58btc")]
    BadBase58,
    /// The multicodec prefix is not Ed25519 (0xed).
    #[error("did:key is not an Ed25519 key (multicodec 0xed)")]
    UnsupportedKeyType,
    /// The key bytes have the wrong length or are not a valid point.
    #[error("did:key holds an invalid Ed25519 public key")]
    BadPublicKey,
    /// A signature has the wrong length.
    #[error("signature must be {SIGNATURE_LEN} bytes")]
    BadSignatureLength,
    /// The signature does not verify under this DID.
    #[error("signature does not verify")]
    BadSignature,
}

/// A user's identity inside one app: signs with Ed25519, agrees keys with X25519.
#[derive(Clone)]
pub struct Identity {
    signing: SigningKey,
    agreement: StaticSecret,
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("did", &self.did())
            .finish_non_exhaustive()
    }
}

impl Identity {
    /// Derives the app identity from `AK` (info strings in [`kdf::info`]).
    pub fn from_app_key(ak: &AppKey) -> Self {
        let seed = kdf::identity_ed25519_seed(ak);
        let x = kdf::identity_x25519_secret(ak);
        Self::from_secrets(&seed, &x)
    }

    /// Builds an identity from an Ed25519 seed and an X25519 secret.
    pub fn from_secrets(ed25519_seed: &[u8; 32], x25519_secret: &[u8; 32]) -> Self {
        Self {
            signing: SigningKey::from_bytes(ed25519_seed),
            agreement: StaticSecret::from(*x25519_secret),
        }
    }

    /// A fresh random identity (tests, ephemeral devices).
    pub fn generate(rng: &mut impl rand_core::CryptoRngCore) -> Self {
        let mut seed = zeroize::Zeroizing::new([0u8; 32]);
        let mut x = zeroize::Zeroizing::new([0u8; 32]);
        rng.fill_bytes(seed.as_mut());
        rng.fill_bytes(x.as_mut());
        Self::from_secrets(&seed, &x)
    }

    /// The `did:key` of the signing key.
    pub fn did(&self) -> Did {
        Did(self.signing.verifying_key())
    }

    /// Signs `message` (Ed25519, deterministic).
    pub fn sign(&self, message: &[u8]) -> [u8; SIGNATURE_LEN] {
        self.signing.sign(message).to_bytes()
    }

    /// The X25519 public key others seal to.
    pub fn agreement_public(&self) -> AgreementPublicKey {
        AgreementPublicKey(X25519Public::from(&self.agreement).to_bytes())
    }

    /// The X25519 secret, for opening sealed boxes and JWEs addressed here.
    pub fn agreement_secret(&self) -> &StaticSecret {
        &self.agreement
    }
}

/// An X25519 public key.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct AgreementPublicKey(pub [u8; 32]);

impl AgreementPublicKey {
    /// The raw 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for AgreementPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "AgreementPublicKey({})",
            bs58::encode(&self.0).into_string()
        )
    }
}

/// A `did:key` naming an Ed25519 public key.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Did(VerifyingKey);

impl Did {
    /// Wraps a verifying key.
    pub fn from_public_key(key: VerifyingKey) -> Self {
        Self(key)
    }

    /// Parses raw public key bytes.
    pub fn from_public_bytes(bytes: &[u8]) -> Result<Self, IdentityError> {
        let arr: [u8; 32] = bytes.try_into().map_err(|_| IdentityError::BadPublicKey)?;
        VerifyingKey::from_bytes(&arr)
            .map(Self)
            .map_err(|_| IdentityError::BadPublicKey)
    }

    /// The Ed25519 public key.
    pub fn public_key(&self) -> &VerifyingKey {
        &self.0
    }

    /// Verifies an Ed25519 signature strictly.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), IdentityError> {
        let sig: [u8; SIGNATURE_LEN] = signature
            .try_into()
            .map_err(|_| IdentityError::BadSignatureLength)?;
        self.0
            .verify_strict(message, &ed25519_dalek::Signature::from_bytes(&sig))
            .map_err(|_| IdentityError::BadSignature)
    }
}

impl fmt::Display for Did {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut body = Vec::with_capacity(34);
        body.extend_from_slice(&MULTICODEC_ED25519_PUB);
        body.extend_from_slice(self.0.as_bytes());
        write!(f, "{DID_KEY_PREFIX}{}", bs58::encode(body).into_string())
    }
}

impl fmt::Debug for Did {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Did({self})")
    }
}

impl FromStr for Did {
    type Err = IdentityError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let body = s
            .strip_prefix(DID_KEY_PREFIX)
            .ok_or(IdentityError::NotDidKey)?;
        // 34 bytes of base58 are at most 47 characters; refuse long input early.
        if body.len() > 64 {
            return Err(IdentityError::BadPublicKey);
        }
        let bytes = bs58::decode(body)
            .into_vec()
            .map_err(|_| IdentityError::BadBase58)?;
        let key = bytes
            .strip_prefix(&MULTICODEC_ED25519_PUB)
            .ok_or(IdentityError::UnsupportedKeyType)?;
        Self::from_public_bytes(key)
    }
}

impl serde::Serialize for Did {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Did {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn did_round_trips_and_has_ed25519_prefix() {
        let id = Identity::from_secrets(&[1; 32], &[2; 32]);
        let did = id.did();
        let s = did.to_string();
        // Every base58btc Ed25519 did:key starts with z6Mk.
        assert!(s.starts_with("did:key:z6Mk"), "{s}");
        assert_eq!(s.parse::<Did>().unwrap(), did);
    }

    #[test]
    fn did_parse_errors_are_specific() {
        assert_eq!("did:web:x".parse::<Did>(), Err(IdentityError::NotDidKey));
        assert_eq!(
            "did:key:z0OIl".parse::<Did>(),
            Err(IdentityError::BadBase58)
        );
        // X25519 multicodec (0xec) is not a signing key.
        let mut body = vec![0xec, 0x01];
        body.extend_from_slice(&[5; 32]);
        let x = format!("did:key:z{}", bs58::encode(body).into_string());
        assert_eq!(x.parse::<Did>(), Err(IdentityError::UnsupportedKeyType));
        let short = format!("did:key:z{}", bs58::encode([0xed, 0x01, 1]).into_string());
        assert_eq!(short.parse::<Did>(), Err(IdentityError::BadPublicKey));
    }

    #[test]
    fn signatures_verify_only_for_the_signed_message() {
        let id = Identity::from_secrets(&[3; 32], &[4; 32]);
        let sig = id.sign(b"hello");
        assert_eq!(id.did().verify(b"hello", &sig), Ok(()));
        assert_eq!(
            id.did().verify(b"hellp", &sig),
            Err(IdentityError::BadSignature)
        );
        assert_eq!(
            id.did().verify(b"hello", &sig[..63]),
            Err(IdentityError::BadSignatureLength)
        );
    }
}
