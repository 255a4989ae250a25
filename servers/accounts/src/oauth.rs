//! OAuth 2.0 for public clients (RFC 6749 with PKCE, RFC 7636), key
//! delivery (DESIGN §6), userinfo and the key directory.
//!
//! Flow: the app sends the browser to `/oauth/authorize`; we validate the
//! request (an unknown client or a redirect URI that is not registered
//! exactly gets an error page, never a redirect; every other error goes back
//! to the app per RFC 6749 §4.1.2.1), store it, and send the browser to the
//! consent page (through sign-in if needed). The consent page, holding `ARK`
//! after the OPAQUE login, derives the app key, seals it to the app's
//! ephemeral key and posts the JWE with its answer; we issue a one-minute,
//! single-use code. The app redeems it at `/oauth/token` with the PKCE
//! verifier (which also proves the bound key) and receives the tokens and,
//! once, the JWE.
//!
//! Refresh tokens rotate on every use; presenting a used one revokes its
//! whole family (RFC 9700 §4.14.2), as does replaying a code.

use std::collections::HashMap;

use axum::Form;
use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use rand_core::OsRng;
use sealbase_auth::api::{self, B64};
use sealbase_auth::{directory as attestation, pkce};
use sealbase_crypto::{AgreementPublicKey, Did, jwe};
use sealbase_token::{AccessClaims, AccessToken};
use std::str::FromStr;

use crate::account::{normalize_username, random_uuid};
use crate::config::KNOWN_SCOPES;
use crate::secret;
use crate::server::{ApiError, ApiResult, AppState, ClientIp, SignedIn, limit, session_token};
use crate::store::{AuthRequestRow, CodeGrantRow, FamilyRow, GrantRow, Redeem, Refresh};
use crate::web;

/// Seconds an authorization request waits for consent.
pub const REQUEST_TTL: i64 = 10 * 60;
/// Seconds an authorization code lives.
pub const CODE_TTL: i64 = 60;
/// Longest `state` accepted.
const MAX_STATE_LEN: usize = 1024;

/// `redirect_uri` with `params` appended to its query.
fn with_query(redirect_uri: &str, params: &[(&str, &str)]) -> String {
    let mut url = match url::Url::parse(redirect_uri) {
        Ok(url) => url,
        Err(_) => return redirect_uri.to_owned(),
    };
    {
        let mut query = url.query_pairs_mut();
        for (k, v) in params {
            query.append_pair(k, v);
        }
    }
    url.to_string()
}

fn error_redirect(
    issuer: &str,
    redirect_uri: &str,
    state: Option<&str>,
    error: &str,
    description: &str,
) -> Response {
    let mut params = vec![("error", error), ("error_description", description)];
    if let Some(state) = state {
        params.push(("state", state));
    }
    params.push(("iss", issuer));
    Redirect::to(&with_query(redirect_uri, &params)).into_response()
}

/// `GET /oauth/authorize`
pub async fn authorize(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let mut params: HashMap<String, String> = HashMap::new();
    let mut repeated = false;
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        repeated |= params.insert(k.into_owned(), v.into_owned()).is_some();
    }
    let get = |k: &str| params.get(k).map(String::as_str).filter(|v| !v.is_empty());

    // Without a known client and an exactly registered redirect URI, the
    // user sees the error: redirecting could send it anywhere.
    let Some(client_id) = get("client_id") else {
        return Ok(web::error_page(
            StatusCode::BAD_REQUEST,
            "The app did not say who it is (no client_id).",
        ));
    };
    let Some(client) = state.store.client(client_id).await? else {
        return Ok(web::error_page(
            StatusCode::BAD_REQUEST,
            "This app is not registered here.",
        ));
    };
    let Some(redirect_uri) = get("redirect_uri") else {
        return Ok(web::error_page(
            StatusCode::BAD_REQUEST,
            "The app gave no redirect_uri.",
        ));
    };
    if !client.redirect_uris.iter().any(|u| u == redirect_uri) {
        return Ok(web::error_page(
            StatusCode::BAD_REQUEST,
            "The app's redirect_uri is not one it registered.",
        ));
    }
    let issuer = state.settings.issuer.as_str();
    let app_state = get("state");
    let fail = |error: &str, description: &str| {
        Ok(error_redirect(
            issuer,
            redirect_uri,
            app_state,
            error,
            description,
        ))
    };
    if repeated {
        return fail("invalid_request", "a parameter was repeated");
    }
    match get("response_type") {
        Some("code") => {}
        Some(_) => {
            return fail(
                "unsupported_response_type",
                "only response_type=code is supported",
            );
        }
        None => return fail("invalid_request", "response_type is required"),
    }
    let Some(app_state) = app_state else {
        return fail("invalid_request", "state is required");
    };
    if app_state.len() > MAX_STATE_LEN {
        return fail("invalid_request", "state is too long");
    }
    match get("code_challenge_method") {
        Some(pkce::METHOD) => {}
        Some(_) => {
            return fail(
                "invalid_request",
                "only code_challenge_method=S256 is supported",
            );
        }
        None => {
            return fail(
                "invalid_request",
                "PKCE is required: code_challenge_method=S256",
            );
        }
    }
    let Some(challenge) = get("code_challenge").filter(|c| pkce::is_valid_challenge(c)) else {
        return fail(
            "invalid_request",
            "code_challenge must be an S256 challenge",
        );
    };
    let scopes: Vec<&str> = match get("scope") {
        Some(scope) => scope.split(' ').filter(|s| !s.is_empty()).collect(),
        None => client.scopes.iter().map(String::as_str).collect(),
    };
    if scopes.is_empty()
        || scopes
            .iter()
            .any(|s| !KNOWN_SCOPES.contains(s) || !client.scopes.iter().any(|c| c == s))
    {
        return fail(
            "invalid_scope",
            "a requested scope is unknown or not allowed for this app",
        );
    }
    let key_x25519 = match get("key_x25519") {
        None => None,
        Some(key) => match parse_key(key) {
            Some(_) => Some(key.to_owned()),
            None => {
                return fail(
                    "invalid_request",
                    "key_x25519 must be 32 bytes of base64url",
                );
            }
        },
    };
    let account = match session_token(&headers) {
        Some((token, _)) => state
            .store
            .session(&secret::hash(&token), state.now())
            .await?
            .map(|s| s.account.id),
        None => None,
    };
    let request_id = secret::token(&mut OsRng);
    let now = state.now();
    let mut unique: Vec<&str> = Vec::with_capacity(scopes.len());
    for scope in &scopes {
        if !unique.contains(scope) {
            unique.push(scope);
        }
    }
    state
        .store
        .insert_auth_request(
            &secret::hash(&request_id),
            &AuthRequestRow {
                client_id: client.id.clone(),
                redirect_uri: redirect_uri.to_owned(),
                scope: unique.join(" "),
                state: app_state.to_owned(),
                code_challenge: challenge.to_owned(),
                key_x25519,
                account_id: account,
                expires_at: now + REQUEST_TTL,
            },
            now,
        )
        .await?;
    let consent = format!("/consent?request={request_id}");
    let target = match account {
        Some(_) => consent,
        None => format!(
            "/login?{}",
            url::form_urlencoded::Serializer::new(String::new())
                .append_pair("next", &consent)
                .finish()
        ),
    };
    Ok(Redirect::to(&target).into_response())
}

fn parse_key(text: &str) -> Option<AgreementPublicKey> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .ok()?;
    let bytes: [u8; 32] = bytes.try_into().ok()?;
    Some(AgreementPublicKey(bytes))
}

/// `GET /api/v1/oauth/requests/{id}`: what the consent page shows.
pub async fn request_info(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(id): Path<String>,
) -> ApiResult<Json<api::AuthorizationRequest>> {
    let account = &signed_in.session.account;
    let request = state
        .store
        .claim_auth_request(&secret::hash(&id), account.id, state.now())
        .await?
        .ok_or_else(unknown_request)?;
    let client = state
        .store
        .client(&request.client_id)
        .await?
        .ok_or_else(unknown_request)?;
    let granted_before = state.store.grant(account.id, &client.id).await?.is_some();
    Ok(Json(api::AuthorizationRequest {
        request_id: id,
        client_id: client.id,
        client_name: client.name,
        redirect_uri: request.redirect_uri,
        scope: request.scope.split(' ').map(str::to_owned).collect(),
        key_x25519: request.key_x25519,
        granted_before,
    }))
}

fn unknown_request() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "unknown_request",
        "this authorization request expired or was answered; start again from the app",
    )
}

/// `POST /api/v1/oauth/consent`
pub async fn consent(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Json(req): Json<api::Consent>,
) -> ApiResult<Json<api::ConsentDone>> {
    let account = &signed_in.session.account;
    let id_hash = secret::hash(&req.request_id);
    let now = state.now();
    let request = state
        .store
        .claim_auth_request(&id_hash, account.id, now)
        .await?
        .ok_or_else(unknown_request)?;
    let issuer = state.settings.issuer.as_str();
    if !req.approve {
        if !state.store.delete_auth_request(&id_hash).await? {
            return Err(unknown_request());
        }
        let params = [
            ("error", "access_denied"),
            ("error_description", "the user declined"),
            ("state", request.state.as_str()),
            ("iss", issuer),
        ];
        return Ok(Json(api::ConsentDone {
            redirect_to: with_query(&request.redirect_uri, &params),
        }));
    }
    let identity = req.identity.as_ref().ok_or_else(|| {
        ApiError::bad_request("invalid_request", "approval must publish the app identity")
    })?;
    let did = Did::from_str(&identity.did)
        .map_err(|_| ApiError::bad_request("invalid_request", "identity.did is not a did:key"))?;
    let x25519: [u8; 32] = identity.x25519.0.as_slice().try_into().map_err(|_| {
        ApiError::bad_request("invalid_request", "identity.x25519 must be 32 bytes")
    })?;
    let x25519 = AgreementPublicKey(x25519);
    attestation::verify(
        &did,
        &x25519,
        &account.username,
        &request.client_id,
        &identity.attestation.0,
    )
    .map_err(|_| {
        ApiError::bad_request(
            "invalid_attestation",
            "the identity attestation does not verify",
        )
    })?;
    let existing = state.store.grant(account.id, &request.client_id).await?;
    if let Some(existing) = &existing
        && existing.did != identity.did
    {
        return Err(ApiError::bad_request(
            "identity_mismatch",
            "this identity differs from the one published before for this app",
        ));
    }
    let key_jwe = match (&request.key_x25519, &req.key_jwe) {
        (None, None) => None,
        (None, Some(_)) => {
            return Err(ApiError::bad_request(
                "invalid_request",
                "the app asked for no key",
            ));
        }
        (Some(_), None) => {
            return Err(ApiError::bad_request(
                "invalid_request",
                "the app asked for its key: key_jwe is required",
            ));
        }
        (Some(key), Some(sealed)) => {
            let header = jwe::inspect(sealed).map_err(|e| {
                ApiError::bad_request("invalid_jwe", format!("key_jwe is not a valid JWE: {e}"))
            })?;
            let expected = parse_key(key).map(|k| jwe::x25519_jwk_thumbprint(&k));
            if header.kid.is_none() || header.kid != expected {
                return Err(ApiError::bad_request(
                    "invalid_jwe",
                    "key_jwe must name the app's key (kid = its JWK thumbprint)",
                ));
            }
            Some(sealed.clone())
        }
    };
    if !state.store.delete_auth_request(&id_hash).await? {
        return Err(unknown_request());
    }
    let code = secret::token(&mut OsRng);
    let grant = GrantRow {
        account_id: account.id,
        client_id: request.client_id.clone(),
        personal_space_id: existing
            .as_ref()
            .map_or_else(random_uuid, |g| g.personal_space_id),
        did: identity.did.clone(),
        x25519: x25519.as_bytes().to_vec(),
        attestation: identity.attestation.0.clone(),
        scope: request.scope.clone(),
    };
    let code_row = CodeGrantRow {
        client_id: request.client_id.clone(),
        account_id: account.id,
        redirect_uri: request.redirect_uri.clone(),
        scope: request.scope.clone(),
        code_challenge: request.code_challenge.clone(),
        key_x25519: request.key_x25519.clone(),
        key_jwe,
        credentials_version: account.credentials_version,
        expires_at: now + CODE_TTL,
    };
    state
        .store
        .grant_and_issue_code(&grant, &secret::hash(&code), &code_row, now)
        .await?;
    let params = [
        ("code", code.as_str()),
        ("state", request.state.as_str()),
        ("iss", issuer),
    ];
    Ok(Json(api::ConsentDone {
        redirect_to: with_query(&request.redirect_uri, &params),
    }))
}

/// An RFC 6749 §5.2 error of the token endpoint.
fn token_error(code: &'static str, description: &str) -> ApiError {
    let status = if code == "invalid_client" {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::BAD_REQUEST
    };
    ApiError::new(status, code, description)
}

fn invalid_grant(description: &str) -> ApiError {
    token_error("invalid_grant", description)
}

/// Signs an access token for a grant.
fn access_token(state: &AppState, grant: &GrantRow, scope: &str) -> ApiResult<(String, u64)> {
    let now = u64::try_from(state.now()).unwrap_or(0);
    let ttl = state.settings.access_ttl;
    let claims = AccessClaims {
        issuer: state.settings.issuer.clone(),
        audience: state.settings.audience.clone(),
        subject: grant.account_id,
        client_id: grant.client_id.clone(),
        scope: scope.to_owned(),
        did: grant.did.clone(),
        personal_space_id: grant.personal_space_id,
        issued_at: now,
        expires_at: now + ttl,
        token_id: random_uuid(),
    };
    let token = state
        .secrets
        .signer
        .sign(&claims)
        .map_err(ApiError::internal)?;
    Ok((token, ttl))
}

fn no_store(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// `POST /oauth/token` (form-encoded, RFC 6749 §4.1.3 and §6).
pub async fn token(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Form(form): Form<HashMap<String, String>>,
) -> ApiResult<Response> {
    limit(&state.limits.token, ip)?;
    let get = |k: &str| form.get(k).map(String::as_str).filter(|v| !v.is_empty());
    let Some(client_id) = get("client_id") else {
        return Err(token_error(
            "invalid_client",
            "client_id is required (public clients)",
        ));
    };
    if state.store.client(client_id).await?.is_none() {
        return Err(token_error("invalid_client", "unknown client"));
    }
    let now = state.now();
    let refresh_ttl = i64::try_from(state.settings.refresh_ttl).unwrap_or(i64::MAX);
    let body = match get("grant_type") {
        Some("authorization_code") => {
            let code =
                get("code").ok_or_else(|| token_error("invalid_request", "code is required"))?;
            let redirect_uri = get("redirect_uri")
                .ok_or_else(|| token_error("invalid_request", "redirect_uri is required"))?;
            let verifier = get("code_verifier").ok_or_else(|| {
                token_error("invalid_request", "code_verifier is required (PKCE)")
            })?;
            let code_hash = secret::hash(code);
            let grant_row = match state.store.redeem_code(&code_hash, now).await? {
                Redeem::Fresh(row) => row,
                Redeem::Replayed => {
                    tracing::warn!(
                        client = client_id,
                        "authorization code replayed; its tokens are revoked"
                    );
                    return Err(invalid_grant("the code was already used"));
                }
                Redeem::Unknown => return Err(invalid_grant("unknown code")),
            };
            if grant_row.client_id != client_id {
                return Err(invalid_grant("the code was issued to another client"));
            }
            if grant_row.expires_at < now {
                return Err(invalid_grant("the code expired"));
            }
            if grant_row.redirect_uri != redirect_uri {
                return Err(invalid_grant(
                    "redirect_uri differs from the authorization request",
                ));
            }
            if !pkce::verify(
                &grant_row.code_challenge,
                verifier,
                grant_row.key_x25519.as_deref(),
            ) {
                return Err(invalid_grant("code_verifier does not match the challenge"));
            }
            let account = state
                .store
                .account(grant_row.account_id)
                .await?
                .filter(|a| a.credentials_version == grant_row.credentials_version)
                .ok_or_else(|| invalid_grant("the account's credentials changed"))?;
            let grant = state
                .store
                .grant(account.id, client_id)
                .await?
                .ok_or_else(|| invalid_grant("the grant was withdrawn"))?;
            let refresh = secret::token(&mut OsRng);
            let family = FamilyRow {
                id: random_uuid(),
                account_id: account.id,
                client_id: client_id.to_owned(),
                scope: grant_row.scope.clone(),
            };
            state
                .store
                .start_family(
                    &code_hash,
                    &family,
                    account.credentials_version,
                    &secret::hash(&refresh),
                    now,
                    now.saturating_add(refresh_ttl),
                )
                .await?;
            let (access, expires_in) = access_token(&state, &grant, &grant_row.scope)?;
            api::TokenResponse {
                access_token: access,
                token_type: "Bearer".into(),
                expires_in,
                refresh_token: refresh,
                scope: grant_row.scope,
                did: grant.did,
                personal_space_id: grant.personal_space_id,
                key_jwe: grant_row.key_jwe,
            }
        }
        Some("refresh_token") => {
            let presented = get("refresh_token")
                .ok_or_else(|| token_error("invalid_request", "refresh_token is required"))?;
            let next = secret::token(&mut OsRng);
            let family = match state
                .store
                .rotate_refresh(
                    &secret::hash(presented),
                    client_id,
                    &secret::hash(&next),
                    now,
                    now.saturating_add(refresh_ttl),
                )
                .await?
            {
                Refresh::Rotated(family) => family,
                Refresh::Reused => {
                    tracing::warn!(client = client_id, "refresh token reused; family revoked");
                    return Err(invalid_grant(
                        "refresh token already used; the session is revoked",
                    ));
                }
                Refresh::Invalid => return Err(invalid_grant("invalid refresh token")),
            };
            let scope = match get("scope") {
                None => family.scope.clone(),
                Some(asked) => {
                    let granted: Vec<&str> = family.scope.split(' ').collect();
                    if asked.split(' ').any(|s| !granted.contains(&s)) {
                        return Err(token_error("invalid_scope", "more scope than was granted"));
                    }
                    asked.to_owned()
                }
            };
            let grant = state
                .store
                .grant(family.account_id, client_id)
                .await?
                .ok_or_else(|| invalid_grant("the grant was withdrawn"))?;
            let (access, expires_in) = access_token(&state, &grant, &scope)?;
            api::TokenResponse {
                access_token: access,
                token_type: "Bearer".into(),
                expires_in,
                refresh_token: next,
                scope,
                did: grant.did,
                personal_space_id: grant.personal_space_id,
                key_jwe: None,
            }
        }
        Some(_) => {
            return Err(token_error(
                "unsupported_grant_type",
                "use authorization_code or refresh_token",
            ));
        }
        None => return Err(token_error("invalid_request", "grant_type is required")),
    };
    Ok(no_store(Json(body).into_response()))
}

/// `POST /oauth/revoke` (RFC 7009): revokes a refresh token's family.
/// Answers 200 for unknown tokens and for access tokens (they expire on
/// their own within minutes).
pub async fn revoke(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Form(form): Form<HashMap<String, String>>,
) -> ApiResult<StatusCode> {
    limit(&state.limits.token, ip)?;
    let Some(token) = form.get("token").filter(|t| !t.is_empty()) else {
        return Err(token_error("invalid_request", "token is required"));
    };
    let Some(client_id) = form.get("client_id").filter(|t| !t.is_empty()) else {
        return Err(token_error(
            "invalid_client",
            "client_id is required (public clients)",
        ));
    };
    state
        .store
        .revoke_refresh(&secret::hash(token), client_id, state.now())
        .await?;
    Ok(StatusCode::OK)
}

/// The access token of a request, verified.
async fn bearer(state: &AppState, headers: &HeaderMap) -> ApiResult<AccessToken> {
    let invalid = |description: &str| {
        let mut e = ApiError::new(StatusCode::UNAUTHORIZED, "invalid_token", description);
        e.www_authenticate = Some(format!(
            "Bearer error=\"invalid_token\", error_description=\"{description}\""
        ));
        e
    };
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| {
            let mut e = ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_request",
                "an access token is required",
            );
            e.www_authenticate = Some("Bearer".into());
            e
        })?;
    let now = u64::try_from(state.now()).unwrap_or(0);
    state
        .verifier
        .verify(token.trim(), now)
        .await
        .map_err(|e| invalid(&e.to_string()))
}

/// `GET|POST /oauth/userinfo`
pub async fn userinfo(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> ApiResult<Json<api::UserInfo>> {
    let token = bearer(&state, &headers).await?;
    let account = state.store.account(token.user).await?;
    let grant = state.store.grant(token.user, &token.client_id).await?;
    let (Some(account), Some(grant)) = (account, grant) else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "the account or grant is gone",
        ));
    };
    let email = token
        .scope
        .iter()
        .any(|s| s == "email")
        .then(|| account.email.clone());
    Ok(Json(api::UserInfo {
        sub: account.id,
        preferred_username: account.username,
        email,
        did: grant.did,
        personal_space_id: grant.personal_space_id,
    }))
}

/// `GET /api/v1/directory/{handle}`: another user's identity in the calling
/// app. Unknown handles and users who never used this app get the same 404.
pub async fn directory(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Path(handle): Path<String>,
) -> ApiResult<Json<api::DirectoryEntry>> {
    limit(&state.limits.directory, ip)?;
    let token = bearer(&state, &headers).await?;
    if !token.scope.iter().any(|s| s == "directory") {
        let mut e = ApiError::new(
            StatusCode::FORBIDDEN,
            "insufficient_scope",
            "the directory scope is required",
        );
        e.www_authenticate =
            Some("Bearer error=\"insufficient_scope\", scope=\"directory\"".into());
        return Err(e);
    }
    let not_found = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "no such user in this app",
        )
    };
    let handle = normalize_username(&handle).map_err(|_| not_found())?;
    let grant = state
        .store
        .grant_by_username(&handle, &token.client_id)
        .await?
        .ok_or_else(not_found)?;
    Ok(Json(api::DirectoryEntry {
        handle,
        did: grant.did,
        x25519: B64(grant.x25519),
        mailbox_id: grant.personal_space_id,
        attestation: B64(grant.attestation),
    }))
}
