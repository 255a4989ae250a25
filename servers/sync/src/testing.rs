//! Test support, not part of the server's interface: a stand-in for the
//! accounts server that mints real EdDSA access tokens with josekit (an
//! implementation independent of our verifier's checks), and the bad tokens
//! the verifier must refuse.
//!
//! Everything returns josekit's errors rather than panicking, so library
//! code stays panic-free; tests unwrap.

use std::fmt;

use josekit::jwk::Jwk;
use josekit::jwk::KeyPair as _;
use josekit::jwk::alg::ed::EdCurve;
use josekit::jws::{self, EdDSA, HS256, JwsHeader};
use josekit::jwt::{self, JwtPayload};
use josekit::{JoseError, Map, Value};
use sealbase_crypto::{Did, Identity, OsRng};
use uuid::Uuid;

use crate::auth::{JwksError, KeySource, TokenVerifier, VerifierConfig};

/// `iss` of test tokens.
pub const TEST_ISSUER: &str = "https://accounts.sealbase.test";
/// `aud` of test tokens, and the audience [`TestIssuer::verifier_config`] expects.
pub const TEST_AUDIENCE: &str = "sealbase-sync";
/// `client_id` of test tokens.
pub const TEST_CLIENT_ID: &str = "tasks";
/// Lifetime of test tokens, in seconds.
pub const TEST_LIFETIME: u64 = 300;

/// The claims of a test access token. Fields are public so a test can bend
/// one; [`TestClaims::to_json`] gives the JSON to tamper with further.
#[derive(Debug, Clone)]
pub struct TestClaims {
    /// `iss`.
    pub issuer: String,
    /// `sub`.
    pub user: Uuid,
    /// `personal_space_id`.
    pub personal_space: Uuid,
    /// `did`.
    pub did: Did,
    /// `client_id`.
    pub client_id: String,
    /// `scope`, joined with spaces.
    pub scope: Vec<String>,
    /// `aud`: omitted if empty, a string if one, an array otherwise.
    pub audience: Vec<String>,
    /// `iat`.
    pub issued_at: u64,
    /// `exp`.
    pub expires_at: u64,
}

impl TestClaims {
    /// Valid claims issued at `now` for a fresh random user, space and DID.
    pub fn new(now: u64) -> Self {
        Self {
            issuer: TEST_ISSUER.to_owned(),
            user: crate::random_uuid(),
            personal_space: crate::random_uuid(),
            did: Identity::generate(&mut OsRng).did(),
            client_id: TEST_CLIENT_ID.to_owned(),
            scope: vec!["sync".to_owned()],
            audience: vec![TEST_AUDIENCE.to_owned()],
            issued_at: now,
            expires_at: now.saturating_add(TEST_LIFETIME),
        }
    }

    /// The claims as a JWT payload object.
    pub fn to_json(&self) -> Map<String, Value> {
        let mut map = Map::new();
        let mut put = |name: &str, value: Value| {
            map.insert(name.to_owned(), value);
        };
        put("iss", Value::from(self.issuer.as_str()));
        put("sub", Value::from(self.user.hyphenated().to_string()));
        put(
            "personal_space_id",
            Value::from(self.personal_space.hyphenated().to_string()),
        );
        put("did", Value::from(self.did.to_string()));
        put("client_id", Value::from(self.client_id.as_str()));
        put("scope", Value::from(self.scope.join(" ")));
        match self.audience.as_slice() {
            [] => {}
            [one] => put("aud", Value::from(one.as_str())),
            many => put("aud", Value::from(many.to_vec())),
        }
        put("iat", Value::from(self.issued_at));
        put("exp", Value::from(self.expires_at));
        map
    }
}

/// An Ed25519 signing key with a `kid`, as the accounts server holds one.
#[derive(Clone)]
pub struct TestIssuer {
    kid: String,
    private: Jwk,
    public: Jwk,
}

impl fmt::Debug for TestIssuer {
    // Never print the private JWK.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestIssuer")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl TestIssuer {
    /// A fresh random key pair published under `kid`.
    pub fn generate(kid: impl Into<String>) -> Result<Self, JoseError> {
        let kid = kid.into();
        let mut pair = EdDSA.generate_key_pair(EdCurve::Ed25519)?;
        pair.set_key_id(Some(kid.clone()));
        Ok(Self {
            kid,
            private: pair.to_jwk_key_pair(),
            public: pair.to_jwk_public_key(),
        })
    }

    /// A different key under the same `kid`: its tokens must fail the
    /// signature check, not the key lookup.
    pub fn impostor(&self) -> Result<Self, JoseError> {
        Self::generate(self.kid.clone())
    }

    /// The `kid`.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public JWK (`kty: OKP, crv: Ed25519, alg: EdDSA, use: sig, kid, x`).
    pub fn public_jwk(&self) -> Value {
        Value::Object(self.public.as_ref().clone())
    }

    /// A JWKS holding this key only.
    pub fn jwks_json(&self) -> String {
        jwks_json(&[self])
    }

    /// A configuration accepting this issuer's tokens from a static JWKS,
    /// with [`TEST_ISSUER`] and [`TEST_AUDIENCE`].
    pub fn verifier_config(&self) -> VerifierConfig {
        let mut config = VerifierConfig::new(TEST_ISSUER, KeySource::Static(self.jwks_json()));
        config.audience = Some(TEST_AUDIENCE.to_owned());
        config
    }

    /// A verifier built from [`TestIssuer::verifier_config`].
    pub fn verifier(&self) -> Result<TokenVerifier, JwksError> {
        TokenVerifier::new(self.verifier_config())
    }

    /// A valid access token with `claims`.
    pub fn mint(&self, claims: &TestClaims) -> Result<String, JoseError> {
        self.mint_json(&claims.to_json())
    }

    /// A valid access token for a fresh user, issued at `now`.
    pub fn mint_now(&self, now: u64) -> Result<(String, TestClaims), JoseError> {
        let claims = TestClaims::new(now);
        Ok((self.mint(&claims)?, claims))
    }

    /// A token signed by this key over arbitrary claims.
    pub fn mint_json(&self, claims: &Map<String, Value>) -> Result<String, JoseError> {
        self.mint_with_header(JwsHeader::new(), claims)
    }

    /// A token signed by this key with extra header parameters; `alg` and
    /// `kid` are set by the signer.
    pub fn mint_with_header(
        &self,
        mut header: JwsHeader,
        claims: &Map<String, Value>,
    ) -> Result<String, JoseError> {
        header.set_token_type("JWT");
        let signer = EdDSA.signer_from_jwk(&self.private)?;
        jwt::encode_with_signer(&JwtPayload::from_map(claims.clone())?, &header, &signer)
    }

    /// A compact JWS signed by this key over arbitrary payload bytes (for
    /// tokens that are signed but not a JWT, e.g. a non-object payload).
    /// The header's `kid` is kept if set, else this issuer's is used.
    pub fn sign_payload(&self, header: &JwsHeader, payload: &[u8]) -> Result<String, JoseError> {
        let mut signer = EdDSA.signer_from_jwk(&self.private)?;
        if header.key_id().is_some() {
            signer.remove_key_id();
        }
        jws::serialize_compact(payload, header, &signer)
    }

    /// A token that expired a minute before `now` (beyond the default skew).
    pub fn mint_expired(&self, now: u64) -> Result<String, JoseError> {
        let mut claims = TestClaims::new(now.saturating_sub(TEST_LIFETIME + 60));
        claims.expires_at = now.saturating_sub(60);
        self.mint(&claims)
    }

    /// The same claims signed by another key under this `kid`.
    pub fn mint_with_wrong_key(&self, claims: &TestClaims) -> Result<String, JoseError> {
        self.impostor()?.mint(claims)
    }

    /// `alg: none` with this `kid` and an empty signature.
    pub fn mint_unsigned(&self, claims: &TestClaims) -> Result<String, JoseError> {
        let mut header = JwsHeader::new();
        header.set_token_type("JWT");
        header.set_key_id(self.kid.clone());
        jwt::encode_unsecured(&JwtPayload::from_map(claims.to_json())?, &header)
    }

    /// `alg: HS256` keyed with the public key as published, the classic
    /// algorithm-confusion forgery against verifiers that let `alg` choose.
    pub fn mint_hs256(&self, claims: &TestClaims) -> Result<String, JoseError> {
        let secret = self
            .public
            .parameter("x")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let mut signer = HS256.signer_from_bytes(secret.as_bytes())?;
        signer.set_key_id(self.kid.clone());
        let mut header = JwsHeader::new();
        header.set_token_type("JWT");
        jwt::encode_with_signer(&JwtPayload::from_map(claims.to_json())?, &header, &signer)
    }
}

/// A JWKS (`{"keys": [...]}`) publishing the public keys of `issuers`.
pub fn jwks_json(issuers: &[&TestIssuer]) -> String {
    let keys: Vec<Value> = issuers.iter().map(|issuer| issuer.public_jwk()).collect();
    serde_json::json!({ "keys": keys }).to_string()
}
