//! Discovery and health: `/.well-known/sealbase`, RFC 8414 metadata (also
//! served as `openid-configuration`; no ID tokens are issued), the JWKS,
//! WebFinger and `/health`; plus the dev mailer's inbox.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sealbase_auth::api;
use serde_json::json;

use crate::config::KNOWN_SCOPES;
use crate::server::{ApiError, ApiResult, AppState};

/// Sync protocol version advertised.
pub const PROTOCOL_VERSION: u32 = 1;

/// `GET /.well-known/jwks.json`
pub async fn jwks(State(state): State<AppState>) -> Response {
    let mut response = state.secrets.jwks.clone().into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/jwk-set+json"),
    );
    // Verifiers may cache briefly; a new key is published well before use.
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    response
}

/// `GET /.well-known/sealbase`
pub async fn sealbase(State(state): State<AppState>) -> Json<api::Discovery> {
    let i = &state.settings.issuer;
    Json(api::Discovery {
        protocol_version: PROTOCOL_VERSION,
        accounts_api_version: api::VERSION,
        issuer: i.clone(),
        sync_url: state.settings.sync_url.clone(),
        jwks_uri: format!("{i}/.well-known/jwks.json"),
        authorization_endpoint: format!("{i}/oauth/authorize"),
        token_endpoint: format!("{i}/oauth/token"),
        revocation_endpoint: format!("{i}/oauth/revoke"),
        userinfo_endpoint: format!("{i}/oauth/userinfo"),
        directory_endpoint: format!("{i}{}/directory", api::PREFIX),
        token_audience: state.settings.audience.clone(),
    })
}

/// `GET /.well-known/oauth-authorization-server` (RFC 8414) and
/// `/.well-known/openid-configuration`.
pub async fn authorization_server(State(state): State<AppState>) -> Json<serde_json::Value> {
    let i = &state.settings.issuer;
    Json(json!({
        "issuer": i,
        "authorization_endpoint": format!("{i}/oauth/authorize"),
        "token_endpoint": format!("{i}/oauth/token"),
        "revocation_endpoint": format!("{i}/oauth/revoke"),
        "userinfo_endpoint": format!("{i}/oauth/userinfo"),
        "jwks_uri": format!("{i}/.well-known/jwks.json"),
        "scopes_supported": KNOWN_SCOPES,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "token_endpoint_auth_methods_supported": ["none"],
        "revocation_endpoint_auth_methods_supported": ["none"],
        "code_challenge_methods_supported": ["S256"],
        "authorization_response_iss_parameter_supported": true,
        "subject_types_supported": ["public"],
        "claims_supported": ["sub", "preferred_username", "email", "did", "personal_space_id"],
    }))
}

/// `GET /.well-known/webfinger?resource=acct:user@host`: for any handle at
/// this host, the same answer (where its accounts server is), so it tells
/// nobody whether an account exists.
pub async fn webfinger(
    State(state): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Response> {
    let resource = q
        .get("resource")
        .ok_or_else(|| ApiError::bad_request("invalid_request", "resource is required"))?;
    let host = url::Url::parse(&state.settings.issuer)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_default();
    let Some((user, at)) = resource
        .strip_prefix("acct:")
        .and_then(|a| a.rsplit_once('@'))
    else {
        return Err(ApiError::bad_request(
            "invalid_request",
            "resource must be acct:user@host",
        ));
    };
    if !at.eq_ignore_ascii_case(&host) || crate::account::normalize_username(user).is_err() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "not an account of this host",
        ));
    }
    let body = json!({
        "subject": resource,
        "links": [
            { "rel": "http://openid.net/specs/connect/1.0/issuer", "href": state.settings.issuer },
            { "rel": "https://sealbase.dev/rel/accounts", "href": format!("{}/.well-known/sealbase", state.settings.issuer) },
        ],
    });
    let mut response = Json(body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/jrd+json"),
    );
    Ok(response)
}

/// `GET /health`: 200 when the database answers.
pub async fn health(State(state): State<AppState>) -> Response {
    match state.store.clients().await {
        Ok(_) => (StatusCode::OK, "ok").into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "health check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable").into_response()
        }
    }
}

/// `GET /dev/mail?to=…` (dev mailer only): messages sent to an address.
pub async fn dev_mail(
    State(state): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Vec<crate::mail::Mail>>> {
    let to = q
        .get("to")
        .ok_or_else(|| ApiError::bad_request("invalid_request", "to is required"))?;
    Ok(Json(state.mailer.sent_to(to)))
}
