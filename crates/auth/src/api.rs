//! The accounts server's JSON API: request and response bodies, shared by
//! the server and every client (one definition of the wire format).
//!
//! Binary fields travel as unpadded base64url strings ([`B64`]). Every
//! error, from the JSON API and from the OAuth endpoints alike, is an
//! [`ErrorBody`] (`{"error": …, "error_description": …}`, the RFC 6749 §5.2
//! shape). Paths are under [`PREFIX`] except the OAuth and discovery
//! endpoints, whose paths the standards fix.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

/// Version of this API; part of every JSON API path.
pub const VERSION: u32 = 1;
/// Path prefix of the JSON API.
pub const PREFIX: &str = "/api/v1";

/// Bytes as an unpadded base64url string.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct B64(pub Vec<u8>);

impl std::fmt::Debug for B64 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "B64({} bytes)", self.0.len())
    }
}

impl From<Vec<u8>> for B64 {
    fn from(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }
}

impl Serialize for B64 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&URL_SAFE_NO_PAD.encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for B64 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        URL_SAFE_NO_PAD
            .decode(text.as_bytes())
            .map(B64)
            .map_err(|_| serde::de::Error::custom("not unpadded base64url"))
    }
}

/// Every error answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// Machine-readable code (RFC 6749 codes on the OAuth endpoints).
    pub error: String,
    /// Human-readable explanation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_description: Option<String>,
    /// With 429: seconds until a retry can succeed (also in `Retry-After`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
}

/// The signed-in account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// Account id (the `sub` of access tokens).
    pub id: Uuid,
    /// Handle, lower case.
    pub username: String,
    /// Verified email address.
    pub email: String,
}

/// `POST /api/v1/signup/start`: sends a code to `email`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SignupStart {
    /// Wanted handle: 3–32 of `a-z 0-9 _ -`, starting with a letter (upper
    /// case is folded).
    pub username: String,
    /// Where the code goes.
    pub email: String,
}

/// Answer to [`SignupStart`]. The same whether or not the email already has
/// an account (that owner gets a notice instead of a code).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SignupStarted {
    /// Names this signup in the next steps (secret: keep it).
    pub signup_id: String,
    /// Seconds the code stays valid.
    pub expires_in: u64,
}

/// `POST /api/v1/signup/verify`: the emailed code and OPAQUE registration
/// step 1.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SignupVerify {
    /// From [`SignupStarted`].
    pub signup_id: String,
    /// The 6 digits from the email.
    pub code: String,
    /// OPAQUE registration request.
    pub registration_request: B64,
}

/// OPAQUE registration step 2 (signup, password change, recovery).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RegistrationResponse {
    /// OPAQUE registration response.
    pub registration_response: B64,
}

/// `POST /api/v1/signup/finish`: OPAQUE registration step 3 and the
/// wrapped account root key.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SignupFinish {
    /// From [`SignupStarted`].
    pub signup_id: String,
    /// OPAQUE registration upload.
    pub registration_upload: B64,
    /// `ARK` wrapped under the key from OPAQUE's export key.
    pub wrapped_ark: B64,
    /// `ARK` wrapped under the recovery key.
    pub recovery_blob: B64,
    /// `HKDF(ARK, "sealbase/v1/ark-proof")`; the server keeps its SHA-256.
    pub ark_proof: B64,
}

/// A new session (after signup, login, password change or recovery).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Session {
    /// Bearer token of the session (also set as an HttpOnly cookie).
    pub session_token: String,
    /// Seconds until it expires.
    pub expires_in: u64,
    /// Whose session.
    pub account: Account,
}

/// `POST /api/v1/login/start`: OPAQUE login step 1.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoginStart {
    /// Handle.
    pub username: String,
    /// OPAQUE credential request.
    pub credential_request: B64,
}

/// Answer to [`LoginStart`]; identical in shape for unknown users.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoginStarted {
    /// Names this login attempt in the next step.
    pub login_id: String,
    /// OPAQUE credential response.
    pub credential_response: B64,
}

/// `POST /api/v1/login/finish`: OPAQUE login step 3.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoginFinish {
    /// From [`LoginStarted`].
    pub login_id: String,
    /// OPAQUE credential finalization.
    pub credential_finalization: B64,
}

/// Answer to [`LoginFinish`]: a session and the wrapped `ARK`, which only
/// this client (holding the export key) can unwrap.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoggedIn {
    /// The new session.
    #[serde(flatten)]
    pub session: Session,
    /// `ARK` wrapped under the key from OPAQUE's export key.
    pub wrapped_ark: B64,
}

/// `POST /api/v1/password/start` (session, signed in within the last
/// [`FRESH_AUTH_SECS`]): OPAQUE registration step 1 for the new password.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RegistrationStart {
    /// OPAQUE registration request.
    pub registration_request: B64,
}

/// How recent a login must be for a password change, in seconds.
pub const FRESH_AUTH_SECS: u64 = 600;

/// `POST /api/v1/password/finish`: the new OPAQUE record and `ARK`
/// re-wrapped (not replaced). Ends every other session and every refresh
/// token of the account.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Rewrap {
    /// OPAQUE registration upload.
    pub registration_upload: B64,
    /// The same `ARK`, wrapped under the new export key's wrapping key.
    pub wrapped_ark: B64,
    /// Proof that this is the account's `ARK` (see [`SignupFinish::ark_proof`]).
    pub ark_proof: B64,
    /// A new recovery blob, if the recovery key changes too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery_blob: Option<B64>,
}

/// `POST /api/v1/recovery/start`: sends a recovery code to the account's
/// email, if there is one.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecoveryStart {
    /// The account's email.
    pub email: String,
}

/// Answer to [`RecoveryStart`]: the same whether or not an account exists.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecoveryStarted {
    /// Names this recovery in the next steps (secret: keep it).
    pub recovery_id: String,
    /// Seconds the code stays valid.
    pub expires_in: u64,
}

/// `POST /api/v1/recovery/verify`: the emailed code and OPAQUE registration
/// step 1 for the new password.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecoveryVerify {
    /// From [`RecoveryStarted`].
    pub recovery_id: String,
    /// The 6 digits from the email.
    pub code: String,
    /// OPAQUE registration request.
    pub registration_request: B64,
}

/// Answer to [`RecoveryVerify`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecoveryVerified {
    /// The account's handle (the OPAQUE credential identifier).
    pub username: String,
    /// `ARK` wrapped under the recovery key.
    pub recovery_blob: B64,
    /// OPAQUE registration response.
    pub registration_response: B64,
}

/// `POST /api/v1/recovery/finish`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecoveryFinish {
    /// From [`RecoveryStarted`].
    pub recovery_id: String,
    /// The new OPAQUE record and the re-wrapped `ARK`.
    #[serde(flatten)]
    pub rewrap: Rewrap,
}

/// `GET /api/v1/oauth/requests/{id}` (session): what the consent page shows.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuthorizationRequest {
    /// The pending request.
    pub request_id: String,
    /// The app.
    pub client_id: String,
    /// The app's display name.
    pub client_name: String,
    /// Where the answer goes.
    pub redirect_uri: String,
    /// Scopes asked for.
    pub scope: Vec<String>,
    /// The app's ephemeral X25519 key (base64url), if it asks for its key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_x25519: Option<String>,
    /// Whether the user already granted this app (its identity is known).
    pub granted_before: bool,
}

/// The app identity's public keys, published at consent.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IdentityKeys {
    /// `did:key` of the identity's Ed25519 key.
    pub did: String,
    /// The identity's X25519 public key.
    pub x25519: B64,
    /// [`crate::directory::attest`] for the account's handle and the app.
    pub attestation: B64,
}

/// `POST /api/v1/oauth/consent` (session).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Consent {
    /// From [`AuthorizationRequest`].
    pub request_id: String,
    /// Allow (`true`) or deny.
    pub approve: bool,
    /// With approval: the app identity's public keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<IdentityKeys>,
    /// With approval and a `key_x25519`: `AK` as a compact JWE to that key
    /// (`ECDH-ES`, `A256GCM`, `kid` = the key's JWK thumbprint).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_jwe: Option<String>,
}

/// Answer to [`Consent`]: where to send the browser.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConsentDone {
    /// The app's redirect URI with `code` and `state` (or `error`).
    pub redirect_to: String,
}

/// `POST /oauth/token` answer (RFC 6749 §5.1 plus Sealbase members).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenResponse {
    /// EdDSA JWT.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds the access token lives.
    pub expires_in: u64,
    /// Single-use refresh token (rotated on every use).
    pub refresh_token: String,
    /// Granted scopes, space-separated.
    pub scope: String,
    /// The user's `did:key` in this app.
    pub did: String,
    /// The user's personal space in this app (also their mailbox).
    pub personal_space_id: Uuid,
    /// Authorization code grant only, once: the app key as a compact JWE to
    /// the app's `key_x25519`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_jwe: Option<String>,
}

/// `GET /oauth/userinfo` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserInfo {
    /// Account id.
    pub sub: Uuid,
    /// Handle.
    pub preferred_username: String,
    /// Email, with scope `email` only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// The user's `did:key` in the calling app.
    pub did: String,
    /// The user's personal space in the calling app.
    pub personal_space_id: Uuid,
}

/// `GET /api/v1/directory/{handle}` answer (access token of the app).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectoryEntry {
    /// The handle looked up.
    pub handle: String,
    /// Their `did:key` in this app.
    pub did: String,
    /// Their X25519 public key in this app.
    pub x25519: B64,
    /// Their mailbox on the sync server (their personal space id).
    pub mailbox_id: Uuid,
    /// [`crate::directory::attest`] over handle, app and X25519 key.
    pub attestation: B64,
}

/// `GET /.well-known/sealbase`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Discovery {
    /// Sync protocol version spoken by `sync_url`.
    pub protocol_version: u32,
    /// Accounts API version.
    pub accounts_api_version: u32,
    /// Issuer of access tokens (`iss`), also this server's base URL.
    pub issuer: String,
    /// Sync server WebSocket URL, if configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_url: Option<String>,
    /// JWKS.
    pub jwks_uri: String,
    /// OAuth authorization endpoint.
    pub authorization_endpoint: String,
    /// OAuth token endpoint.
    pub token_endpoint: String,
    /// OAuth revocation endpoint.
    pub revocation_endpoint: String,
    /// OAuth userinfo endpoint.
    pub userinfo_endpoint: String,
    /// Key directory (append `/{handle}`).
    pub directory_endpoint: String,
    /// `aud` of access tokens.
    pub token_audience: String,
}
