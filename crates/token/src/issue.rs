//! Issuing access tokens (the accounts server's side).
//!
//! A token is a compact JWS, `alg: EdDSA` (Ed25519), `typ: at+jwt`
//! (RFC 9068), `kid` naming the signing key in the issuer's JWKS, with the
//! claims [`AccessClaims`] lists. [`crate::TokenVerifier`] is its inverse;
//! one crate holds both so the claim names exist once.

use josekit::jwk::Jwk;
use josekit::jws::alg::eddsa::EddsaJwsSigner;
use josekit::jws::{EdDSA, JwsHeader};
use josekit::jwt::{self, JwtPayload};
use serde_json::Value;
use uuid::Uuid;

/// Why a token could not be signed.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    /// The private JWK is not an Ed25519 `OKP` key with `d`.
    #[error("signing key is not an Ed25519 private JWK: {0}")]
    BadKey(String),
    /// josekit refused the payload (never for our claims).
    #[error("token could not be signed: {0}")]
    Sign(String),
}

/// The claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessClaims {
    /// `iss`: the accounts server's issuer URL.
    pub issuer: String,
    /// `aud`: who accepts it (the sync service).
    pub audience: String,
    /// `sub`: the account.
    pub subject: Uuid,
    /// `client_id`: the app.
    pub client_id: String,
    /// `scope`, space-separated.
    pub scope: String,
    /// `did`: the user's identity in this app.
    pub did: String,
    /// `personal_space_id`.
    pub personal_space_id: Uuid,
    /// `iat`, Unix seconds.
    pub issued_at: u64,
    /// `exp`, Unix seconds.
    pub expires_at: u64,
    /// `jti`: unique token id.
    pub token_id: Uuid,
}

/// Signs access tokens with one Ed25519 key.
pub struct TokenSigner {
    kid: String,
    signer: EddsaJwsSigner,
}

impl std::fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSigner")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl TokenSigner {
    /// A signer for a private Ed25519 JWK (`kty: OKP`, `crv: Ed25519`, `d`,
    /// `x`); tokens name it `kid`.
    pub fn from_private_jwk(kid: impl Into<String>, jwk: &Jwk) -> Result<Self, SignError> {
        if jwk.key_type() != "OKP" || jwk.curve() != Some("Ed25519") || jwk.parameter("d").is_none()
        {
            return Err(SignError::BadKey(
                "expected kty OKP, crv Ed25519 and d".into(),
            ));
        }
        let signer = EdDSA
            .signer_from_jwk(jwk)
            .map_err(|e| SignError::BadKey(e.to_string()))?;
        Ok(Self {
            kid: kid.into(),
            signer,
        })
    }

    /// The key id tokens carry.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// Signs `claims`.
    pub fn sign(&self, claims: &AccessClaims) -> Result<String, SignError> {
        let mut header = JwsHeader::new();
        header.set_token_type("at+jwt");
        header.set_key_id(&self.kid);
        let mut payload = JwtPayload::new();
        payload.set_issuer(&claims.issuer);
        payload.set_subject(claims.subject.to_string());
        payload.set_audience(vec![claims.audience.clone()]);
        payload.set_jwt_id(claims.token_id.to_string());
        // Integer NumericDates (josekit's setters write floats for iat).
        let extra = [
            ("iat", Value::from(claims.issued_at)),
            ("exp", Value::from(claims.expires_at)),
            ("client_id", Value::String(claims.client_id.clone())),
            ("scope", Value::String(claims.scope.clone())),
            ("did", Value::String(claims.did.clone())),
            (
                "personal_space_id",
                Value::String(claims.personal_space_id.to_string()),
            ),
        ];
        for (name, value) in extra {
            payload
                .set_claim(name, Some(value))
                .map_err(|e| SignError::Sign(e.to_string()))?;
        }
        jwt::encode_with_signer(&payload, &header, &self.signer)
            .map_err(|e| SignError::Sign(e.to_string()))
    }
}
