//! Access tokens: the accounts server's EdDSA JWTs, issued with
//! [`TokenSigner`] and verified with [`TokenVerifier`].
//!
//! A connection authenticates with an access token (DESIGN §6): a short-lived
//! JWT signed with Ed25519 by a key the accounts server publishes in its JWKS,
//! named by `kid` in the JWS header. [`TokenVerifier::verify`] turns a token
//! into an [`AccessToken`] or an [`AuthError`] naming the first check that
//! failed.
//!
//! Invariants this module keeps:
//! - only `alg: EdDSA` with an Ed25519 key from the configured key set is ever
//!   used to verify; the header's `alg` never selects the algorithm, so `none`,
//!   HMAC and RSA tokens cannot confuse it;
//! - no claim is read before the signature has been verified;
//! - errors and logs never contain the token (nor any part of it);
//! - with a remote JWKS, the accounts server sees at most one fetch per
//!   `refetch_interval`, however many tokens with unknown `kid`s arrive, and
//!   concurrent refetches coalesce into one request.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod issue;
pub use issue::{AccessClaims, SignError, TokenSigner};

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use josekit::jwk::Jwk;
use josekit::jws::EdDSA;
use josekit::jws::alg::eddsa::EddsaJwsVerifier;
use josekit::{JoseError, jwt};
use sealbase_crypto::Did;
use serde_json::{Map, Value};
use uuid::Uuid;

/// Longest token accepted by default; ours are well under 1 KiB.
pub const DEFAULT_MAX_TOKEN_LEN: usize = 8 * 1024;
/// Default allowed clock difference between the accounts server and us.
pub const DEFAULT_CLOCK_SKEW_SECS: u64 = 30;
/// Default minimum time between two JWKS fetches.
pub const DEFAULT_REFETCH_INTERVAL: Duration = Duration::from_secs(30);
/// Default age after which a fetched JWKS is refreshed, so keys the accounts
/// server withdrew stop being accepted without a restart.
pub const DEFAULT_MAX_KEY_AGE: Duration = Duration::from_secs(300);
/// Default time limit of one JWKS fetch; below the 5 s auth deadline of a
/// connection so a slow accounts server fails the fetch, not the session.
pub const DEFAULT_FETCH_TIMEOUT: Duration = Duration::from_secs(3);
/// Largest JWKS document read; a handful of keys is under 2 KiB.
pub const MAX_JWKS_LEN: usize = 64 * 1024;

/// Why a token was refused. Each variant names one check; none carries any
/// part of the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// Longer than the configured limit (checked before any parsing).
    #[error("access token is too large")]
    TooLarge,
    /// Not a compact JWS with a JSON header and payload.
    #[error("access token is malformed")]
    Malformed,
    /// The header's `alg` is not `EdDSA`.
    #[error("access token algorithm is not EdDSA")]
    UnsupportedAlgorithm,
    /// No `kid`, or a `kid` the accounts server does not publish.
    #[error("access token is signed by an unknown key")]
    UnknownKey,
    /// The signature does not verify under the key named by `kid`.
    #[error("access token signature does not verify")]
    BadSignature,
    /// `iss` is not the configured issuer.
    #[error("access token has the wrong issuer")]
    WrongIssuer,
    /// `aud` does not contain the configured audience.
    #[error("access token has the wrong audience")]
    WrongAudience,
    /// `exp` has passed (beyond the allowed clock skew).
    #[error("access token has expired")]
    Expired,
    /// `iat` or `nbf` lies in the future (beyond the allowed clock skew).
    #[error("access token is not valid yet")]
    NotYetValid,
    /// A required claim is missing or does not parse; names the claim.
    #[error("access token claim `{0}` is missing or invalid")]
    BadClaim(&'static str),
    /// The key set could not be fetched, so the token cannot be checked.
    #[error("access token keys are unavailable")]
    KeysUnavailable,
}

/// Why a JWKS could not be used.
#[derive(Debug, thiserror::Error)]
pub enum JwksError {
    /// Not a JSON object with a `keys` array.
    #[error("JWKS is not a JSON object with a `keys` array")]
    Malformed,
    /// No key in the set is an Ed25519 signing key with a `kid`.
    #[error("JWKS holds no Ed25519 signing key with a kid")]
    NoUsableKey,
    /// The document is larger than [`MAX_JWKS_LEN`].
    #[error("JWKS is larger than {MAX_JWKS_LEN} bytes")]
    TooLarge,
    /// The HTTP request failed (connection, timeout, body).
    #[error("JWKS fetch failed: {0}")]
    Fetch(#[source] reqwest::Error),
    /// The server answered with a status other than 200.
    #[error("JWKS fetch returned HTTP {0}")]
    Status(u16),
}

/// Where the accounts server's public keys come from.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// A JWKS document given at start (tests, single-box deployments).
    Static(String),
    /// A JWKS URL, fetched on first use, refreshed when it grows old or a
    /// token names an unknown `kid`, never more than once per
    /// [`VerifierConfig::refetch_interval`].
    Remote {
        /// The JWKS URL (`…/.well-known/jwks.json` of the accounts server).
        url: String,
    },
}

/// What [`TokenVerifier`] accepts. Build with [`VerifierConfig::new`] and
/// adjust the public fields.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct VerifierConfig {
    /// Required value of `iss`.
    pub issuer: String,
    /// If set, `aud` (a string or an array) must contain it.
    pub audience: Option<String>,
    /// Allowed clock difference in seconds, applied to `exp`, `iat`, `nbf`.
    pub clock_skew_secs: u64,
    /// Longest token accepted, in bytes.
    pub max_token_len: usize,
    /// Where the verifying keys come from.
    pub keys: KeySource,
    /// Remote keys: minimum time between two fetches.
    pub refetch_interval: Duration,
    /// Remote keys: age after which the cached set is refreshed on next use.
    pub max_key_age: Duration,
    /// Remote keys: time limit of one fetch.
    pub fetch_timeout: Duration,
}

impl VerifierConfig {
    /// A configuration with the defaults above and no audience check.
    pub fn new(issuer: impl Into<String>, keys: KeySource) -> Self {
        Self {
            issuer: issuer.into(),
            audience: None,
            clock_skew_secs: DEFAULT_CLOCK_SKEW_SECS,
            max_token_len: DEFAULT_MAX_TOKEN_LEN,
            keys,
            refetch_interval: DEFAULT_REFETCH_INTERVAL,
            max_key_age: DEFAULT_MAX_KEY_AGE,
            fetch_timeout: DEFAULT_FETCH_TIMEOUT,
        }
    }
}

/// A verified access token: who connects, with which app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessToken {
    /// The account (`sub`).
    pub user: Uuid,
    /// The account's personal space (`personal_space_id`).
    pub personal_space: Uuid,
    /// The user's identity in this app (`did`).
    pub did: Did,
    /// The app (`client_id`).
    pub client_id: String,
    /// Granted scopes (`scope`, space-separated or an array; empty if absent).
    pub scope: Vec<String>,
    /// Unix seconds after which the token is no longer valid (`exp`).
    pub expires_at: u64,
}

/// Verifies access tokens. Cheap to clone: clones share the key cache.
#[derive(Clone)]
pub struct TokenVerifier {
    inner: Arc<Inner>,
}

struct Inner {
    issuer: String,
    audience: Option<String>,
    clock_skew_secs: u64,
    max_token_len: usize,
    keys: Keys,
}

enum Keys {
    Static(Arc<KeySet>),
    Remote(Arc<RemoteKeys>),
}

impl fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys = match &self.inner.keys {
            Keys::Static(set) => format!("static ({} kids)", set.len()),
            Keys::Remote(remote) => format!("remote ({})", remote.url),
        };
        f.debug_struct("TokenVerifier")
            .field("issuer", &self.inner.issuer)
            .field("audience", &self.inner.audience)
            .field("keys", &keys)
            .finish_non_exhaustive()
    }
}

impl TokenVerifier {
    /// Builds a verifier. A static JWKS is parsed here and must hold at least
    /// one usable key; a remote one is fetched on first use.
    pub fn new(config: VerifierConfig) -> Result<Self, JwksError> {
        let keys = match config.keys {
            KeySource::Static(jwks) => Keys::Static(Arc::new(KeySet::parse(jwks.as_bytes())?)),
            KeySource::Remote { url } => {
                let client = reqwest::Client::builder()
                    .timeout(config.fetch_timeout)
                    .build()
                    .map_err(JwksError::Fetch)?;
                Keys::Remote(Arc::new(RemoteKeys {
                    url,
                    client,
                    refetch_interval: config.refetch_interval,
                    max_key_age: config.max_key_age,
                    cache: RwLock::new(Cache::default()),
                    refresh: Arc::new(tokio::sync::Mutex::new(None)),
                }))
            }
        };
        Ok(Self {
            inner: Arc::new(Inner {
                issuer: config.issuer,
                audience: config.audience,
                clock_skew_secs: config.clock_skew_secs,
                max_token_len: config.max_token_len,
                keys,
            }),
        })
    }

    /// Verifies `token` at Unix time `now` (seconds). Async because an
    /// unknown `kid` may need a JWKS fetch; must run inside a tokio runtime.
    ///
    /// Checks, in order: size; compact JWS shape and JSON header; `alg` is
    /// `EdDSA`; no `crit`; `kid` present and known (refetching a remote set
    /// if allowed); signature; `iss`; `aud`; `exp`; `iat` and `nbf`; `sub`,
    /// `personal_space_id`, `did`, `client_id`, `scope`.
    pub async fn verify(&self, token: &str, now: u64) -> Result<AccessToken, AuthError> {
        let inner = &*self.inner;
        if token.len() > inner.max_token_len {
            return Err(AuthError::TooLarge);
        }
        let kid = check_header(token)?;
        let keys = match &inner.keys {
            Keys::Static(set) if set.contains(&kid) => Arc::clone(set),
            Keys::Static(_) => return Err(AuthError::UnknownKey),
            Keys::Remote(remote) => remote.keys_for(&kid).await?,
        };
        let claims = verify_signature(token, &keys, &kid)?;
        inner.check_claims(&claims, now)
    }
}

/// Checks the protected header before any key is looked up; returns the `kid`.
fn check_header(token: &str) -> Result<String, AuthError> {
    // Exactly three parts: a five-part JWE or a JSON serialization is not ours.
    if token.bytes().filter(|b| *b == b'.').count() != 2 {
        return Err(AuthError::Malformed);
    }
    let header = jwt::decode_header(token).map_err(|_| AuthError::Malformed)?;
    match header.claim("alg") {
        Some(Value::String(alg)) if alg == "EdDSA" => {}
        Some(Value::String(_)) => return Err(AuthError::UnsupportedAlgorithm),
        _ => return Err(AuthError::Malformed),
    }
    // We understand no header extension, and RFC 7515 §4.1.11 says a
    // critical one we do not understand makes the JWS invalid.
    if header.claim("crit").is_some() {
        return Err(AuthError::Malformed);
    }
    match header.claim("kid") {
        Some(Value::String(kid)) if !kid.is_empty() => Ok(kid.clone()),
        _ => Err(AuthError::UnknownKey),
    }
}

/// Verifies the signature with the keys published under `kid` and returns the
/// claims. josekit also re-checks `alg` against the verifier's algorithm.
fn verify_signature(
    token: &str,
    keys: &KeySet,
    kid: &str,
) -> Result<Map<String, Value>, AuthError> {
    let mut result = Err(AuthError::UnknownKey);
    for verifier in keys.get(kid) {
        match jwt::decode_with_verifier(token, verifier) {
            Ok((payload, _)) => return Ok(payload.into()),
            // A JWKS may (unwisely) reuse a kid: any key under it may match.
            Err(JoseError::InvalidSignature(_)) => result = Err(AuthError::BadSignature),
            // The payload is only parsed after the signature checked out, so
            // this is a signed but malformed token (or a bad base64 part).
            Err(_) => return Err(AuthError::Malformed),
        }
    }
    result
}

impl Inner {
    fn check_claims(
        &self,
        claims: &Map<String, Value>,
        now: u64,
    ) -> Result<AccessToken, AuthError> {
        if claims.get("iss").and_then(Value::as_str) != Some(self.issuer.as_str()) {
            return Err(AuthError::WrongIssuer);
        }
        if let Some(expected) = &self.audience {
            let ok = match claims.get("aud") {
                Some(Value::String(aud)) => aud == expected,
                Some(Value::Array(auds)) => auds.iter().any(|a| a.as_str() == Some(expected)),
                _ => false,
            };
            if !ok {
                return Err(AuthError::WrongAudience);
            }
        }
        let skew = self.clock_skew_secs;
        let exp = time_claim(claims, "exp")?.ok_or(AuthError::BadClaim("exp"))?;
        if now >= exp.saturating_add(skew) {
            return Err(AuthError::Expired);
        }
        let iat = time_claim(claims, "iat")?.ok_or(AuthError::BadClaim("iat"))?;
        let nbf = time_claim(claims, "nbf")?;
        if iat.max(nbf.unwrap_or(0)) > now.saturating_add(skew) {
            return Err(AuthError::NotYetValid);
        }
        Ok(AccessToken {
            user: uuid_claim(claims, "sub")?,
            personal_space: uuid_claim(claims, "personal_space_id")?,
            did: claims
                .get("did")
                .and_then(Value::as_str)
                .and_then(|did| Did::from_str(did).ok())
                .ok_or(AuthError::BadClaim("did"))?,
            client_id: claims
                .get("client_id")
                .and_then(Value::as_str)
                .filter(|id| !id.is_empty())
                .ok_or(AuthError::BadClaim("client_id"))?
                .to_owned(),
            scope: scope_claim(claims)?,
            expires_at: exp,
        })
    }
}

/// A NumericDate claim as whole seconds; `None` if absent.
fn time_claim(claims: &Map<String, Value>, name: &'static str) -> Result<Option<u64>, AuthError> {
    match claims.get(name) {
        None => Ok(None),
        Some(value) => value.as_u64().map(Some).ok_or(AuthError::BadClaim(name)),
    }
}

/// A UUID claim, in the hyphenated form only (one spelling per id).
fn uuid_claim(claims: &Map<String, Value>, name: &'static str) -> Result<Uuid, AuthError> {
    claims
        .get(name)
        .and_then(Value::as_str)
        .filter(|s| s.len() == 36)
        .and_then(|s| Uuid::try_parse(s).ok())
        .ok_or(AuthError::BadClaim(name))
}

/// `scope` as OAuth's space-separated string, or an array of strings.
fn scope_claim(claims: &Map<String, Value>) -> Result<Vec<String>, AuthError> {
    match claims.get("scope") {
        None => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(s.split_whitespace().map(str::to_owned).collect()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| item.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or(AuthError::BadClaim("scope")),
        Some(_) => Err(AuthError::BadClaim("scope")),
    }
}

/// The usable keys of one JWKS, by `kid`.
#[derive(Default)]
struct KeySet {
    by_kid: HashMap<String, Vec<EddsaJwsVerifier>>,
}

impl KeySet {
    /// Keeps only Ed25519 signing keys with a `kid`; everything else in the
    /// set (RSA, X25519, encryption keys, other algorithms) is skipped.
    fn parse(bytes: &[u8]) -> Result<Self, JwksError> {
        if bytes.len() > MAX_JWKS_LEN {
            return Err(JwksError::TooLarge);
        }
        let doc: Value = serde_json::from_slice(bytes).map_err(|_| JwksError::Malformed)?;
        let keys = doc
            .get("keys")
            .and_then(Value::as_array)
            .ok_or(JwksError::Malformed)?;
        let mut set = Self::default();
        for (kid, verifier) in keys
            .iter()
            .filter_map(Value::as_object)
            .filter_map(usable_key)
        {
            set.by_kid.entry(kid).or_default().push(verifier);
        }
        if set.by_kid.is_empty() {
            return Err(JwksError::NoUsableKey);
        }
        Ok(set)
    }

    fn contains(&self, kid: &str) -> bool {
        self.by_kid.contains_key(kid)
    }

    fn get(&self, kid: &str) -> &[EddsaJwsVerifier] {
        self.by_kid.get(kid).map(Vec::as_slice).unwrap_or_default()
    }

    fn len(&self) -> usize {
        self.by_kid.len()
    }
}

/// An Ed25519 verifier for one JWK, or `None` if the key is not for us.
fn usable_key(jwk: &Map<String, Value>) -> Option<(String, EddsaJwsVerifier)> {
    let text = |name: &str| jwk.get(name).and_then(Value::as_str);
    let absent_or = |name: &str, want: &str| jwk.get(name).is_none() || text(name) == Some(want);
    if text("kty") != Some("OKP") || text("crv") != Some("Ed25519") {
        return None;
    }
    if !absent_or("alg", "EdDSA") || !absent_or("use", "sig") {
        return None;
    }
    if let Some(ops) = jwk.get("key_ops") {
        let ops = ops.as_array()?;
        if !ops.iter().any(|op| op.as_str() == Some("verify")) {
            return None;
        }
    }
    let kid = text("kid").filter(|kid| !kid.is_empty())?;
    // 32 bytes in unpadded base64url; OpenSSL would take other lengths apart.
    let x = text("x").filter(|x| x.len() == 43)?;
    // Rebuild a public-only JWK so nothing else in the entry (a leaked `d`,
    // an `x5u`) reaches the verifier.
    let mut public = Map::new();
    for (name, value) in [("kty", "OKP"), ("crv", "Ed25519"), ("x", x), ("kid", kid)] {
        public.insert(name.to_owned(), Value::String(value.to_owned()));
    }
    let jwk = Jwk::from_map(public).ok()?;
    let verifier = EdDSA.verifier_from_jwk(&jwk).ok()?;
    Some((kid.to_owned(), verifier))
}

/// A JWKS fetched over HTTP, with its refresh policy.
struct RemoteKeys {
    url: String,
    client: reqwest::Client,
    refetch_interval: Duration,
    max_key_age: Duration,
    cache: RwLock<Cache>,
    /// Held for the whole of a fetch, so concurrent refreshes wait for one
    /// fetch instead of starting their own; holds the time of the last
    /// attempt, for the rate limit.
    refresh: Arc<tokio::sync::Mutex<Option<Instant>>>,
}

#[derive(Clone, Default)]
struct Cache {
    keys: Arc<KeySet>,
    fetched_at: Option<Instant>,
    /// Completed fetch attempts, so a waiter can tell one finished meanwhile.
    attempts: u64,
    /// Whether the last attempt failed (the keys are then older, or none).
    last_failed: bool,
}

impl RemoteKeys {
    fn cache(&self) -> Cache {
        // The lock is never held across a panic; recover the data if it were.
        self.cache
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn is_stale(&self, cache: &Cache) -> bool {
        cache
            .fetched_at
            .is_none_or(|at| at.elapsed() >= self.max_key_age)
    }

    /// The key set to verify a token naming `kid` with, refreshing it first
    /// if `kid` is unknown or the set is stale and the rate limit allows.
    async fn keys_for(self: &Arc<Self>, kid: &str) -> Result<Arc<KeySet>, AuthError> {
        let seen = self.cache();
        let known = seen.keys.contains(kid);
        if known && !self.is_stale(&seen) {
            return Ok(seen.keys);
        }
        let mut last_attempt = if known {
            // Stale but usable: one caller refreshes, the others go on with
            // the keys they have rather than queue behind the fetch.
            match Arc::clone(&self.refresh).try_lock_owned() {
                Ok(guard) => guard,
                Err(_) => return Ok(seen.keys),
            }
        } else {
            Arc::clone(&self.refresh).lock_owned().await
        };
        let fetched_meanwhile = self.cache().attempts != seen.attempts;
        let rate_limited = last_attempt.is_some_and(|at| at.elapsed() < self.refetch_interval);
        if !fetched_meanwhile && !rate_limited {
            *last_attempt = Some(Instant::now());
            // The fetch runs as its own task holding the lock, so a caller
            // that gives up (a connection's auth deadline) neither cancels it
            // nor lets the next caller start a second one.
            let this = Arc::clone(self);
            let task = tokio::spawn(async move {
                let outcome = this.fetch().await;
                this.record(outcome);
                drop(last_attempt);
            });
            // The task only ends early if the runtime shuts down; the cache
            // below then tells what is known.
            let _ = task.await;
        } else {
            drop(last_attempt);
            if rate_limited && !known {
                tracing::debug!(url = %self.url, "JWKS refetch for an unknown kid skipped: rate limited");
            }
        }
        let now = self.cache();
        if now.keys.contains(kid) {
            Ok(now.keys)
        } else if now.last_failed {
            Err(AuthError::KeysUnavailable)
        } else {
            Err(AuthError::UnknownKey)
        }
    }

    async fn fetch(&self) -> Result<KeySet, JwksError> {
        let mut response = self
            .client
            .get(&self.url)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(JwksError::Fetch)?;
        if response.status() != reqwest::StatusCode::OK {
            return Err(JwksError::Status(response.status().as_u16()));
        }
        // Read in chunks so a misbehaving server cannot make us buffer more
        // than the limit, whatever Content-Length says.
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(JwksError::Fetch)? {
            if body.len().saturating_add(chunk.len()) > MAX_JWKS_LEN {
                return Err(JwksError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        KeySet::parse(&body)
    }

    /// Stores a fetch outcome. A failed fetch keeps the previous keys: an
    /// accounts server that is briefly down must not log everyone out.
    fn record(&self, outcome: Result<KeySet, JwksError>) {
        let mut cache = self.cache.write().unwrap_or_else(PoisonError::into_inner);
        cache.attempts = cache.attempts.wrapping_add(1);
        match outcome {
            Ok(keys) => {
                tracing::debug!(url = %self.url, kids = keys.len(), "JWKS fetched");
                cache.keys = Arc::new(keys);
                cache.fetched_at = Some(Instant::now());
                cache.last_failed = false;
            }
            Err(error) => {
                tracing::warn!(url = %self.url, %error, "JWKS fetch failed");
                cache.last_failed = true;
            }
        }
    }
}
