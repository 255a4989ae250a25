//! Signup, login, sessions, password change and recovery (JSON API).
//!
//! Invariants:
//! - the server never sees a password, `ARK` or recovery key: it receives
//!   OPAQUE messages, `ARK` wrapped twice, and a proof of holding `ARK`
//!   whose SHA-256 it keeps;
//! - a login for an unknown handle runs the same OPAQUE steps and the same
//!   failure counting as for a known one, and fails the same way at the last
//!   step;
//! - `ARK` is re-wrapped, never replaced: a password change or recovery must
//!   present the proof for the stored `ARK`;
//! - a password change or recovery ends every session and refresh token of
//!   the account (credentials version).

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rand_core::OsRng;
use sealbase_auth::api::{self, B64};
use sealbase_auth::{PasswordFile, ServerLoginState, opaque};
use sealbase_crypto::wrap::WRAPPED_ARK_LEN;
use sha2::Digest;
use uuid::Uuid;

use crate::secret;
use crate::server::{
    ApiError, ApiResult, AppState, ClientIp, SignedIn, clear_session_cookie, limit, session_cookie,
};
use crate::store::{AccountRow, CodePurpose, CreateAccount, NewCode, Throttle};

/// Seconds an emailed code stays valid.
pub const CODE_TTL: i64 = 15 * 60;
/// Wrong guesses allowed per code.
pub const CODE_ATTEMPTS: i64 = 5;
/// Codes sent to one address per hour.
pub const CODES_PER_HOUR: i64 = 5;
/// Seconds between OPAQUE login steps.
pub const LOGIN_TTL: i64 = 120;
/// Failures that lock a handle...
pub const LOCKOUT_FAILURES: i64 = 8;
/// ...within this window, seconds.
pub const LOCKOUT_WINDOW: i64 = 15 * 60;
/// First lockout, seconds; each later one doubles.
pub const LOCKOUT_BASE: i64 = 15 * 60;
/// Longest lockout, seconds.
pub const LOCKOUT_MAX: i64 = 24 * 3600;
/// A day after a lockout ended, the escalation starts over.
pub const LOCKOUT_FORGET: i64 = 24 * 3600;

/// A fresh random v4 UUID.
pub fn random_uuid() -> Uuid {
    let mut bytes = [0u8; 16];
    rand_core::RngCore::fill_bytes(&mut OsRng, &mut bytes);
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}

/// Folds and checks a handle: 3–32 of `a-z 0-9 _ -`, starting with a letter.
pub fn normalize_username(input: &str) -> ApiResult<String> {
    let name = input.trim().to_ascii_lowercase();
    let ok = (3..=32).contains(&name.len())
        && name.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if ok {
        Ok(name)
    } else {
        Err(ApiError::bad_request(
            "invalid_username",
            "a username is 3–32 letters, digits, _ or -, starting with a letter",
        ))
    }
}

/// Folds and checks an email address.
pub fn normalize_email(input: &str) -> ApiResult<String> {
    let email = input.trim().to_ascii_lowercase();
    if email.len() <= 254 && email.parse::<lettre::Address>().is_ok() {
        Ok(email)
    } else {
        Err(ApiError::bad_request(
            "invalid_email",
            "not an email address",
        ))
    }
}

fn check_wrapped(bytes: &[u8], what: &'static str) -> ApiResult<()> {
    if bytes.len() == WRAPPED_ARK_LEN
        && bytes.first() == Some(&sealbase_crypto::wrap::ARK_WRAP_VERSION)
    {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            "invalid_request",
            format!("{what} is not a version-1 wrapped key of {WRAPPED_ARK_LEN} bytes"),
        ))
    }
}

fn check_proof(proof: &[u8]) -> ApiResult<()> {
    if proof.len() == 32 {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            "invalid_request",
            "ark_proof must be 32 bytes",
        ))
    }
}

fn opaque_error(e: opaque::OpaqueError) -> ApiError {
    match e {
        opaque::OpaqueError::Malformed(what) => {
            ApiError::bad_request("invalid_request", format!("malformed {what}"))
        }
        other => ApiError::internal(other),
    }
}

fn api_account(a: &AccountRow) -> api::Account {
    api::Account {
        id: a.id,
        username: a.username.clone(),
        email: a.email.clone(),
    }
}

/// Creates a session for `account` and answers with it (and its cookie).
async fn new_session<T: serde::Serialize>(
    state: &AppState,
    account: &AccountRow,
    auth_time: i64,
    status: StatusCode,
    body: impl FnOnce(api::Session) -> T,
) -> ApiResult<Response> {
    let token = secret::token(&mut OsRng);
    let now = state.now();
    let ttl = state.settings.session_ttl;
    let expires = now.saturating_add(i64::try_from(ttl).unwrap_or(i64::MAX));
    state
        .store
        .insert_session(&secret::hash(&token), account, auth_time, now, expires)
        .await?;
    let cookie = session_cookie(&state.settings, &token, ttl);
    let session = api::Session {
        session_token: token,
        expires_in: ttl,
        account: api_account(account),
    };
    let mut response = (status, Json(body(session))).into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    Ok(response)
}

/// Emails a fresh code for a new flow, or (with `decoy`) stores a code
/// nobody receives, so the answer does not reveal whether the address has
/// an account. Returns the flow id.
async fn start_code_flow(
    state: &AppState,
    purpose: CodePurpose,
    email: &str,
    username: Option<&str>,
    account_id: Option<Uuid>,
    mail: Option<(String, String)>,
) -> ApiResult<String> {
    let now = state.now();
    let sent = state.store.codes_sent_since(email, now - 3600).await?;
    if sent >= CODES_PER_HOUR {
        return Err(ApiError::too_many(
            "too_many_codes",
            "too many codes were sent to this address; try again later",
            3600,
        ));
    }
    let flow_id = secret::token(&mut OsRng);
    let flow_hash = secret::hash(&flow_id);
    let code = secret::code(&mut OsRng);
    let code_hash = state.secrets.code_key.hash(&flow_hash, &code);
    state
        .store
        .insert_code(NewCode {
            id_hash: &flow_hash,
            purpose,
            email,
            username,
            account_id,
            code_hash: &code_hash,
            now,
            expires_at: now + CODE_TTL,
        })
        .await?;
    if let Some((subject, body)) = mail {
        let body = body.replace("{code}", &code);
        state
            .mailer
            .send(crate::mail::Mail {
                to: email.to_owned(),
                subject: subject.replace("{code}", &code),
                body,
            })
            .await
            .map_err(ApiError::internal)?;
    }
    Ok(flow_id)
}

/// Checks an entered code against a flow; marks it verified on success.
async fn check_code(
    state: &AppState,
    purpose: CodePurpose,
    flow_id: &str,
    code: &str,
) -> ApiResult<crate::store::CodeRow> {
    let flow_hash = secret::hash(flow_id);
    let Some(row) = state.store.code(&flow_hash, purpose).await? else {
        return Err(ApiError::bad_request(
            "invalid_code",
            "unknown or expired code",
        ));
    };
    let now = state.now();
    if row.consumed_at.is_some() || row.expires_at < now {
        return Err(ApiError::bad_request(
            "code_expired",
            "the code expired; ask for a new one",
        ));
    }
    if row.verified_at.is_some() {
        return Ok(row);
    }
    let Some(attempts) = state
        .store
        .spend_code_attempt(&flow_hash, CODE_ATTEMPTS)
        .await?
    else {
        return Err(ApiError::bad_request(
            "too_many_attempts",
            "too many wrong codes; ask for a new one",
        ));
    };
    let decoy = purpose == CodePurpose::Recovery && row.account_id.is_none();
    let code = code.trim();
    if decoy
        || code.len() != 6
        || !state
            .secrets
            .code_key
            .verify(&flow_hash, code, &row.code_hash)
    {
        let left = CODE_ATTEMPTS - attempts;
        return Err(ApiError::bad_request(
            "invalid_code",
            format!("wrong code; {left} attempts left"),
        ));
    }
    state.store.mark_code_verified(&flow_hash, now).await?;
    Ok(row)
}

// ---------------------------------------------------------------------------
// Signup

/// `POST /api/v1/signup/start`
pub async fn signup_start(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Json(req): Json<api::SignupStart>,
) -> ApiResult<Json<api::SignupStarted>> {
    let username = normalize_username(&req.username)?;
    let email = normalize_email(&req.email)?;
    limit(&state.limits.code_send, ip)?;
    let existing = state.store.account_by_email(&email).await?;
    let mail = match existing {
        None => (
            "Your Sealbase code: {code}".to_owned(),
            format!(
                "Your verification code is {{code}}.\n\nIt finishes the signup of \"{username}\" \
                 and expires in 15 minutes. If you did not sign up, ignore this email."
            ),
        ),
        Some(account) => (
            "Sealbase signup attempt".to_owned(),
            format!(
                "Someone tried to sign up with this address, which already belongs to the \
                 account \"{}\". If it was you, sign in or recover your account instead. \
                 Otherwise, ignore this email.",
                account.username
            ),
        ),
    };
    let signup_id = start_code_flow(
        &state,
        CodePurpose::Signup,
        &email,
        Some(&username),
        None,
        Some(mail),
    )
    .await?;
    Ok(Json(api::SignupStarted {
        signup_id,
        expires_in: CODE_TTL as u64,
    }))
}

/// `POST /api/v1/signup/verify`
pub async fn signup_verify(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Json(req): Json<api::SignupVerify>,
) -> ApiResult<Json<api::RegistrationResponse>> {
    limit(&state.limits.code_check, ip)?;
    let row = check_code(&state, CodePurpose::Signup, &req.signup_id, &req.code).await?;
    let username = row.username.unwrap_or_default();
    if state.store.username_taken(&username).await? {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "username_taken",
            "this username is taken; start again with another one",
        ));
    }
    let response = opaque::server_registration_response(
        &state.secrets.opaque,
        &req.registration_request.0,
        username.as_bytes(),
    )
    .map_err(opaque_error)?;
    Ok(Json(api::RegistrationResponse {
        registration_response: B64(response),
    }))
}

/// `POST /api/v1/signup/finish`
pub async fn signup_finish(
    State(state): State<AppState>,
    Json(req): Json<api::SignupFinish>,
) -> ApiResult<Response> {
    check_wrapped(&req.wrapped_ark.0, "wrapped_ark")?;
    check_wrapped(&req.recovery_blob.0, "recovery_blob")?;
    check_proof(&req.ark_proof.0)?;
    let file =
        opaque::server_registration_finish(&req.registration_upload.0).map_err(opaque_error)?;
    let flow_hash = secret::hash(&req.signup_id);
    let row = state
        .store
        .code(&flow_hash, CodePurpose::Signup)
        .await?
        .filter(|r| r.verified_at.is_some())
        .ok_or_else(|| ApiError::bad_request("invalid_request", "verify the emailed code first"))?;
    let account = AccountRow {
        id: random_uuid(),
        username: row.username.unwrap_or_default(),
        email: row.email,
        password_file: file.to_bytes(),
        wrapped_ark: req.wrapped_ark.0,
        recovery_blob: req.recovery_blob.0,
        ark_proof_hash: secret::ark_proof_hash(&req.ark_proof.0),
        credentials_version: 1,
    };
    let now = state.now();
    match state.store.finish_signup(&flow_hash, &account, now).await? {
        None => Err(ApiError::bad_request(
            "code_expired",
            "this signup expired or was already finished",
        )),
        Some(CreateAccount::UsernameTaken) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "username_taken",
            "this username is taken; start again with another one",
        )),
        Some(CreateAccount::EmailTaken) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "email_taken",
            "this address already has an account; sign in or recover it",
        )),
        Some(CreateAccount::Created) => {
            tracing::info!(account = %account.id, "account created");
            new_session(&state, &account, now, StatusCode::CREATED, |s| s).await
        }
    }
}

// ---------------------------------------------------------------------------
// Login

fn locked(t: &Throttle, now: i64) -> ApiResult<()> {
    if t.locked_until > now {
        return Err(ApiError::too_many(
            "locked",
            "too many failed sign-ins; try again later",
            u64::try_from(t.locked_until - now).unwrap_or(1),
        ));
    }
    Ok(())
}

/// The counter after one more failure at `now`.
pub fn after_failure(mut t: Throttle, now: i64) -> Throttle {
    if t.locked_until > 0 && now - t.locked_until > LOCKOUT_FORGET {
        t.lockouts = 0;
    }
    if now - t.window_start > LOCKOUT_WINDOW {
        t.window_start = now;
        t.failures = 0;
    }
    t.failures += 1;
    if t.failures >= LOCKOUT_FAILURES {
        let shift = u32::try_from(t.lockouts.min(16)).unwrap_or(16);
        t.locked_until = now + LOCKOUT_BASE.saturating_mul(1 << shift).min(LOCKOUT_MAX);
        t.lockouts += 1;
        t.failures = 0;
        t.window_start = now;
    }
    t
}

/// `POST /api/v1/login/start`
pub async fn login_start(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Json(req): Json<api::LoginStart>,
) -> ApiResult<Json<api::LoginStarted>> {
    limit(&state.limits.login, ip)?;
    // A malformed handle cannot exist; answer like an unknown one, keyed by
    // a digest so arbitrary input never reaches the tables at full length.
    let username = normalize_username(&req.username).unwrap_or_else(|_| {
        format!(
            "invalid:{}",
            hex::encode(sha2::Sha256::digest(req.username.as_bytes()))
        )
    });
    let now = state.now();
    locked(&state.store.throttle(&username).await?, now)?;
    let account = state.store.account_by_username(&username).await?;
    let file = account
        .as_ref()
        .map(|a| PasswordFile::from_bytes(&a.password_file))
        .transpose()
        .map_err(ApiError::internal)?;
    let (response, login_state) = opaque::server_login_start(
        &mut OsRng,
        &state.secrets.opaque,
        file.as_ref(),
        &req.credential_request.0,
        username.as_bytes(),
    )
    .map_err(opaque_error)?;
    let login_id = secret::token(&mut OsRng);
    state
        .store
        .insert_login_state(
            &secret::hash(&login_id),
            &username,
            account.map(|a| a.id),
            &login_state.to_bytes(),
            now + LOGIN_TTL,
        )
        .await?;
    Ok(Json(api::LoginStarted {
        login_id,
        credential_response: B64(response),
    }))
}

/// `POST /api/v1/login/finish`
pub async fn login_finish(
    State(state): State<AppState>,
    Json(req): Json<api::LoginFinish>,
) -> ApiResult<Response> {
    let now = state.now();
    let Some((username, account_id, stored)) = state
        .store
        .take_login_state(&secret::hash(&req.login_id), now)
        .await?
    else {
        return Err(ApiError::bad_request(
            "login_expired",
            "this sign-in attempt expired; start again",
        ));
    };
    let throttle = state.store.throttle(&username).await?;
    locked(&throttle, now)?;
    let login_state = ServerLoginState::from_bytes(&stored).map_err(ApiError::internal)?;
    let proved = match opaque::server_login_finish(login_state, &req.credential_finalization.0) {
        Ok(()) => true,
        Err(opaque::OpaqueError::Malformed(what)) => {
            return Err(ApiError::bad_request(
                "invalid_request",
                format!("malformed {what}"),
            ));
        }
        Err(_) => false,
    };
    let account = match (proved, account_id) {
        (true, Some(id)) => state.store.account(id).await?,
        _ => None,
    };
    let Some(account) = account else {
        let next = after_failure(throttle, now);
        state.store.set_throttle(&username, next, now).await?;
        tracing::info!(
            failures = next.failures,
            locked = next.locked_until > now,
            "failed sign-in"
        );
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
            "wrong username or password",
        ));
    };
    if throttle != Throttle::default() {
        let cleared = Throttle {
            lockouts: throttle.lockouts,
            ..Throttle::default()
        };
        state.store.set_throttle(&username, cleared, now).await?;
    }
    let wrapped_ark = account.wrapped_ark.clone();
    new_session(&state, &account, now, StatusCode::OK, |session| {
        api::LoggedIn {
            session,
            wrapped_ark: B64(wrapped_ark),
        }
    })
    .await
}

/// `POST /api/v1/logout`
pub async fn logout(State(state): State<AppState>, signed_in: SignedIn) -> ApiResult<Response> {
    state.store.delete_session(&signed_in.token_hash).await?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    if let Ok(value) = HeaderValue::from_str(&clear_session_cookie(&state.settings)) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    Ok(response)
}

/// `GET /api/v1/account`
pub async fn me(signed_in: SignedIn) -> Json<api::Account> {
    Json(api_account(&signed_in.session.account))
}

// ---------------------------------------------------------------------------
// Password change

fn require_fresh(state: &AppState, signed_in: &SignedIn) -> ApiResult<()> {
    let age = state.now() - signed_in.session.auth_time;
    if age > i64::try_from(api::FRESH_AUTH_SECS).unwrap_or(i64::MAX) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "reauthenticate",
            "sign in again before changing the password",
        ));
    }
    Ok(())
}

/// `POST /api/v1/password/start`
pub async fn password_start(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Json(req): Json<api::RegistrationStart>,
) -> ApiResult<Json<api::RegistrationResponse>> {
    require_fresh(&state, &signed_in)?;
    let response = opaque::server_registration_response(
        &state.secrets.opaque,
        &req.registration_request.0,
        signed_in.session.account.username.as_bytes(),
    )
    .map_err(opaque_error)?;
    Ok(Json(api::RegistrationResponse {
        registration_response: B64(response),
    }))
}

fn check_rewrap(account: &AccountRow, req: &api::Rewrap) -> ApiResult<PasswordFile> {
    check_wrapped(&req.wrapped_ark.0, "wrapped_ark")?;
    if let Some(blob) = &req.recovery_blob {
        check_wrapped(&blob.0, "recovery_blob")?;
    }
    check_proof(&req.ark_proof.0)?;
    if !secret::ark_proof_matches(&req.ark_proof.0, &account.ark_proof_hash) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "ark_mismatch",
            "the key does not match this account's root key; nothing was changed",
        ));
    }
    opaque::server_registration_finish(&req.registration_upload.0).map_err(opaque_error)
}

/// `POST /api/v1/password/finish`
pub async fn password_finish(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Json(req): Json<api::Rewrap>,
) -> ApiResult<Response> {
    require_fresh(&state, &signed_in)?;
    let account = &signed_in.session.account;
    let file = check_rewrap(account, &req)?;
    let now = state.now();
    let version = state
        .store
        .rewrap(
            account.id,
            account.credentials_version,
            &file.to_bytes(),
            &req.wrapped_ark.0,
            req.recovery_blob.as_ref().map(|b| b.0.as_slice()),
            None,
            now,
        )
        .await?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::CONFLICT,
                "conflict",
                "the account changed meanwhile",
            )
        })?;
    tracing::info!(account = %account.id, "password changed");
    let account = AccountRow {
        credentials_version: version,
        ..account.clone()
    };
    new_session(&state, &account, now, StatusCode::OK, |s| s).await
}

// ---------------------------------------------------------------------------
// Recovery

/// `POST /api/v1/recovery/start`
pub async fn recovery_start(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Json(req): Json<api::RecoveryStart>,
) -> ApiResult<Json<api::RecoveryStarted>> {
    let email = normalize_email(&req.email)?;
    limit(&state.limits.code_send, ip)?;
    let account = state.store.account_by_email(&email).await?;
    let mail = account.as_ref().map(|a| {
        (
            "Your Sealbase recovery code: {code}".to_owned(),
            format!(
                "Your recovery code for \"{}\" is {{code}}. It expires in 15 minutes.\n\n\
                 You also need your recovery key. If you did not ask for this, ignore this \
                 email: nothing changes without the code and the key.",
                a.username
            ),
        )
    });
    let recovery_id = start_code_flow(
        &state,
        CodePurpose::Recovery,
        &email,
        None,
        account.map(|a| a.id),
        mail,
    )
    .await?;
    Ok(Json(api::RecoveryStarted {
        recovery_id,
        expires_in: CODE_TTL as u64,
    }))
}

/// `POST /api/v1/recovery/verify`
pub async fn recovery_verify(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Json(req): Json<api::RecoveryVerify>,
) -> ApiResult<Json<api::RecoveryVerified>> {
    limit(&state.limits.code_check, ip)?;
    let row = check_code(&state, CodePurpose::Recovery, &req.recovery_id, &req.code).await?;
    let account = match row.account_id {
        Some(id) => state.store.account(id).await?,
        None => None,
    }
    .ok_or_else(|| ApiError::bad_request("invalid_code", "unknown or expired code"))?;
    let response = opaque::server_registration_response(
        &state.secrets.opaque,
        &req.registration_request.0,
        account.username.as_bytes(),
    )
    .map_err(opaque_error)?;
    Ok(Json(api::RecoveryVerified {
        username: account.username,
        recovery_blob: B64(account.recovery_blob),
        registration_response: B64(response),
    }))
}

/// `POST /api/v1/recovery/finish`
pub async fn recovery_finish(
    State(state): State<AppState>,
    Json(req): Json<api::RecoveryFinish>,
) -> ApiResult<Response> {
    let flow_hash = secret::hash(&req.recovery_id);
    let row = state
        .store
        .code(&flow_hash, CodePurpose::Recovery)
        .await?
        .filter(|r| r.verified_at.is_some() && r.consumed_at.is_none())
        .ok_or_else(|| ApiError::bad_request("invalid_request", "verify the emailed code first"))?;
    let account = match row.account_id {
        Some(id) => state.store.account(id).await?,
        None => None,
    }
    .ok_or_else(|| ApiError::bad_request("invalid_request", "verify the emailed code first"))?;
    let file = check_rewrap(&account, &req.rewrap)?;
    let now = state.now();
    let version = state
        .store
        .rewrap(
            account.id,
            account.credentials_version,
            &file.to_bytes(),
            &req.rewrap.wrapped_ark.0,
            req.rewrap.recovery_blob.as_ref().map(|b| b.0.as_slice()),
            Some(&flow_hash),
            now,
        )
        .await?
        .ok_or_else(|| {
            ApiError::bad_request("code_expired", "this recovery expired or was used")
        })?;
    tracing::info!(account = %account.id, "account recovered");
    let account = AccountRow {
        credentials_version: version,
        ..account
    };
    new_session(&state, &account, now, StatusCode::OK, |s| s).await
}
