//! The HTTP server: shared state, routes, middleware (security headers,
//! CORS, body limit), errors, sessions and client addresses.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header, request::Parts};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use axum::{Json, Router};
use sealbase_auth::api::ErrorBody;
use sealbase_ratelimit::{Rate, RateLimiter};
use sealbase_token::{KeySource, TokenVerifier, VerifierConfig};
use tower_http::limit::RequestBodyLimitLayer;

use crate::config::Config;
use crate::keys::ServerSecrets;
use crate::mail::Mailer;
use crate::store::{SessionRow, Store, StoreError};
use crate::{account, discovery, oauth, web};

/// Largest request body (JSON and forms are a few KiB at most).
pub const MAX_BODY: usize = 64 * 1024;
/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "sealbase_session";
/// Most keys each rate limiter tracks.
const LIMITER_KEYS: usize = 100_000;

/// Settings the handlers read.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Issuer URL (no trailing slash).
    pub issuer: String,
    /// `aud` of access tokens.
    pub audience: String,
    /// Sync server URL for discovery.
    pub sync_url: Option<String>,
    /// Access token lifetime, seconds.
    pub access_ttl: u64,
    /// Refresh token lifetime, seconds.
    pub refresh_ttl: u64,
    /// Session lifetime, seconds.
    pub session_ttl: u64,
    /// Client IP from `X-Forwarded-For`.
    pub trust_proxy: bool,
    /// Static files of the web UI.
    pub web_dir: Option<std::path::PathBuf>,
}

impl Settings {
    /// Settings from a validated config.
    pub fn from_config(config: &Config) -> Self {
        Self {
            issuer: config.issuer(),
            audience: config.token_audience.clone(),
            sync_url: config.sync_url.clone(),
            access_ttl: config.access_token_ttl,
            refresh_ttl: config.refresh_token_days * 86_400,
            session_ttl: config.session_days * 86_400,
            trust_proxy: config.trust_proxy,
            web_dir: config.web_dir.clone(),
        }
    }

    /// Whether cookies get `Secure` (an https issuer).
    pub fn secure_cookies(&self) -> bool {
        self.issuer.starts_with("https://")
    }

    /// The issuer's origin (scheme, host, port), for `Origin` checks.
    pub fn origin(&self) -> String {
        url::Url::parse(&self.issuer)
            .map(|u| u.origin().ascii_serialization())
            .unwrap_or_default()
    }
}

/// Per-IP rate limits.
#[derive(Debug)]
pub struct Limits {
    /// Login starts.
    pub login: RateLimiter<IpAddr>,
    /// Signup and recovery starts (each sends an email).
    pub code_send: RateLimiter<IpAddr>,
    /// Code entries.
    pub code_check: RateLimiter<IpAddr>,
    /// Token endpoint and revocation.
    pub token: RateLimiter<IpAddr>,
    /// Key directory lookups.
    pub directory: RateLimiter<IpAddr>,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            login: RateLimiter::new(Rate::new(20, Duration::from_secs(3)), LIMITER_KEYS),
            code_send: RateLimiter::new(Rate::new(5, Duration::from_secs(60)), LIMITER_KEYS),
            code_check: RateLimiter::new(Rate::new(20, Duration::from_secs(3)), LIMITER_KEYS),
            token: RateLimiter::new(Rate::new(60, Duration::from_millis(500)), LIMITER_KEYS),
            directory: RateLimiter::new(Rate::new(60, Duration::from_secs(1)), LIMITER_KEYS),
        }
    }
}

/// Everything the handlers share.
pub struct Inner {
    /// Database.
    pub store: Store,
    /// Long-term keys.
    pub secrets: ServerSecrets,
    /// Verifies our own access tokens (userinfo, directory).
    pub verifier: TokenVerifier,
    /// Email.
    pub mailer: Mailer,
    /// Settings.
    pub settings: Settings,
    /// Rate limits.
    pub limits: Limits,
    /// Seconds added to the system clock (tests move time forward).
    pub clock_offset: AtomicI64,
}

/// Cheap to clone.
#[derive(Clone)]
pub struct AppState(pub Arc<Inner>);

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    /// Builds the state.
    pub fn new(
        store: Store,
        secrets: ServerSecrets,
        mailer: Mailer,
        settings: Settings,
        limits: Limits,
    ) -> anyhow::Result<Self> {
        let mut verifier = VerifierConfig::new(
            settings.issuer.clone(),
            KeySource::Static(secrets.jwks.clone()),
        );
        verifier.audience = Some(settings.audience.clone());
        let verifier = TokenVerifier::new(verifier)?;
        Ok(Self(Arc::new(Inner {
            store,
            secrets,
            verifier,
            mailer,
            settings,
            limits,
            clock_offset: AtomicI64::new(0),
        })))
    }

    /// Unix seconds now.
    pub fn now(&self) -> i64 {
        let system = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        system.saturating_add(self.clock_offset.load(Ordering::Relaxed))
    }

    /// Moves this server's clock (tests: expiry and lockout).
    pub fn advance_clock(&self, secs: i64) {
        self.clock_offset.fetch_add(secs, Ordering::Relaxed);
    }
}

/// The router.
pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/signup/start", post(account::signup_start))
        .route("/signup/verify", post(account::signup_verify))
        .route("/signup/finish", post(account::signup_finish))
        .route("/login/start", post(account::login_start))
        .route("/login/finish", post(account::login_finish))
        .route("/logout", post(account::logout))
        .route("/account", get(account::me))
        .route("/password/start", post(account::password_start))
        .route("/password/finish", post(account::password_finish))
        .route("/recovery/start", post(account::recovery_start))
        .route("/recovery/verify", post(account::recovery_verify))
        .route("/recovery/finish", post(account::recovery_finish))
        .route("/oauth/requests/{id}", get(oauth::request_info))
        .route("/oauth/consent", post(oauth::consent))
        .route("/directory/{handle}", get(oauth::directory));
    let mut app = Router::new()
        .nest(sealbase_auth::api::PREFIX, api)
        .route("/oauth/authorize", get(oauth::authorize))
        .route("/oauth/token", post(oauth::token))
        .route("/oauth/revoke", post(oauth::revoke))
        .route(
            "/oauth/userinfo",
            get(oauth::userinfo).post(oauth::userinfo),
        )
        .route("/.well-known/jwks.json", get(discovery::jwks))
        .route("/.well-known/sealbase", get(discovery::sealbase))
        .route(
            "/.well-known/oauth-authorization-server",
            get(discovery::authorization_server),
        )
        .route(
            "/.well-known/openid-configuration",
            get(discovery::authorization_server),
        )
        .route("/.well-known/webfinger", get(discovery::webfinger))
        .route("/health", get(discovery::health));
    if state.mailer.is_dev() {
        app = app.route("/dev/mail", get(discovery::dev_mail));
    }
    app = web::routes(app, &state);
    app.layer(middleware::from_fn_with_state(state.clone(), cors))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            security_headers,
        ))
        .layer(RequestBodyLimitLayer::new(MAX_BODY))
        .with_state(state)
}

/// Security headers on every response; `no-store` on everything but static
/// files.
async fn security_headers(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    let set = |h: &mut HeaderMap, name: HeaderName, value: &'static str| {
        h.entry(name).or_insert(HeaderValue::from_static(value));
    };
    set(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(h, header::REFERRER_POLICY, "no-referrer");
    set(h, header::X_FRAME_OPTIONS, "DENY");
    set(
        h,
        header::CONTENT_SECURITY_POLICY,
        "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; \
         img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; \
         form-action 'self'; object-src 'none'",
    );
    set(
        h,
        HeaderName::from_static("cross-origin-opener-policy"),
        "same-origin",
    );
    if state.settings.secure_cookies() {
        set(
            h,
            header::STRICT_TRANSPORT_SECURITY,
            "max-age=31536000; includeSubDomains",
        );
    }
    if !path.starts_with("/assets/") {
        set(h, header::CACHE_CONTROL, "no-store");
    }
    response
}

/// Paths an app calls from its own origin (cross-origin).
fn app_facing(path: &str) -> bool {
    path.starts_with("/oauth/token")
        || path.starts_with("/oauth/revoke")
        || path.starts_with("/oauth/userinfo")
        || path.starts_with("/api/v1/directory/")
}

/// CORS: discovery documents to anyone; the endpoints apps call (token,
/// revoke, userinfo, directory) to the origins of registered redirect URIs;
/// nothing else (the session API is same-origin only, and needs no CORS).
async fn cors(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    let origin = request
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let public = path.starts_with("/.well-known/");
    let allowed = match (&origin, public, app_facing(&path)) {
        (Some(_), true, _) => Some(HeaderValue::from_static("*")),
        (Some(origin), false, true) => match registered_origin(&state, origin).await {
            true => HeaderValue::from_str(origin).ok(),
            false => None,
        },
        _ => None,
    };
    let preflight = request.method() == Method::OPTIONS
        && request
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    let mut response = if preflight {
        match &allowed {
            Some(_) => StatusCode::NO_CONTENT.into_response(),
            None => StatusCode::FORBIDDEN.into_response(),
        }
    } else {
        next.run(request).await
    };
    let h = response.headers_mut();
    h.append(header::VARY, HeaderValue::from_static("Origin"));
    if let Some(allowed) = allowed {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allowed);
        if preflight {
            h.insert(
                header::ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static("GET, POST"),
            );
            h.insert(
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                HeaderValue::from_static("authorization, content-type"),
            );
            h.insert(
                header::ACCESS_CONTROL_MAX_AGE,
                HeaderValue::from_static("600"),
            );
        }
    }
    response
}

async fn registered_origin(state: &AppState, origin: &str) -> bool {
    let Ok(clients) = state.store.clients().await else {
        return false;
    };
    clients.iter().any(|c| {
        c.redirect_uris.iter().any(|uri| {
            url::Url::parse(uri).is_ok_and(|u| u.origin().ascii_serialization() == origin)
        })
    })
}

// ---------------------------------------------------------------------------
// Errors

/// An error answer: status, code, description, optional `Retry-After`.
#[derive(Debug)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// `error` code.
    pub code: &'static str,
    /// `error_description`.
    pub description: String,
    /// Seconds for `Retry-After`.
    pub retry_after: Option<u64>,
    /// `WWW-Authenticate` value (bearer errors).
    pub www_authenticate: Option<String>,
}

impl ApiError {
    /// An error with a status and code.
    pub fn new(status: StatusCode, code: &'static str, description: impl Into<String>) -> Self {
        Self {
            status,
            code,
            description: description.into(),
            retry_after: None,
            www_authenticate: None,
        }
    }

    /// 400 with `code`.
    pub fn bad_request(code: &'static str, description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, description)
    }

    /// 429 with `Retry-After`.
    pub fn too_many(code: &'static str, description: impl Into<String>, retry_after: u64) -> Self {
        let mut e = Self::new(StatusCode::TOO_MANY_REQUESTS, code, description);
        e.retry_after = Some(retry_after.max(1));
        e
    }

    /// 401 for a missing or invalid session.
    pub fn unauthenticated() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthenticated", "sign in first")
    }

    /// 500; the cause is logged, not sent.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "internal error",
        )
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        Self::internal(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: self.code.to_owned(),
            error_description: Some(self.description),
            retry_after: self.retry_after,
        };
        let mut response = (self.status, Json(body)).into_response();
        let h = response.headers_mut();
        if let Some(secs) = self.retry_after {
            h.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if let Some(value) = self
            .www_authenticate
            .and_then(|v| HeaderValue::from_str(&v).ok())
        {
            h.insert(header::WWW_AUTHENTICATE, value);
        }
        response
    }
}

/// Result of a handler.
pub type ApiResult<T> = Result<T, ApiError>;

// ---------------------------------------------------------------------------
// Client address

/// The client's IP: the peer address, or with `--trust-proxy` the last
/// `X-Forwarded-For` hop (the one our proxy appended).
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub IpAddr);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Self> {
        if state.settings.trust_proxy {
            let forwarded = parts
                .headers
                .get_all("x-forwarded-for")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .filter_map(|hop| hop.trim().parse::<IpAddr>().ok())
                .next_back();
            if let Some(ip) = forwarded {
                return Ok(Self(ip));
            }
        }
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())
            .unwrap_or(IpAddr::from([127, 0, 0, 1]));
        Ok(Self(peer))
    }
}

/// Takes one token for `ip` or answers 429.
pub fn limit(limiter: &RateLimiter<IpAddr>, ip: IpAddr) -> ApiResult<()> {
    limiter.check(&ip).map_err(|limited| {
        ApiError::too_many(
            "rate_limited",
            "too many requests from this address",
            limited.retry_after.as_secs().saturating_add(1),
        )
    })
}

// ---------------------------------------------------------------------------
// Sessions

/// The signed-in user of a request: a session token from
/// `Authorization: Bearer` or from the session cookie. A cookie only counts
/// on a request whose `Origin` (if any) is ours, and a state-changing
/// request with a cookie must carry our `Origin` (CSRF).
#[derive(Debug, Clone)]
pub struct SignedIn {
    /// The session and its account.
    pub session: SessionRow,
    /// The token's hash (for logout).
    pub token_hash: Vec<u8>,
}

/// The session token of a request, if any, and whether it came from a cookie.
pub fn session_token(headers: &HeaderMap) -> Option<(String, bool)> {
    if let Some(token) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|auth| auth.strip_prefix("Bearer "))
    {
        return Some((token.trim().to_owned(), false));
    }
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| (value.to_owned(), true))
}

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Self> {
        let Some((token, cookie)) = session_token(&parts.headers) else {
            return Err(ApiError::unauthenticated());
        };
        if cookie {
            let origin = parts
                .headers
                .get(header::ORIGIN)
                .and_then(|v| v.to_str().ok());
            let ours = origin.is_some_and(|o| o == state.settings.origin());
            let safe = matches!(parts.method, Method::GET | Method::HEAD);
            if !ours && (origin.is_some() || !safe) {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "cross_origin",
                    "session cookies only work from this server's own pages",
                ));
            }
        }
        let token_hash = crate::secret::hash(&token);
        let session = state
            .store
            .session(&token_hash, state.now())
            .await?
            .ok_or_else(ApiError::unauthenticated)?;
        Ok(Self {
            session,
            token_hash,
        })
    }
}

/// The `Set-Cookie` value for a new session.
pub fn session_cookie(settings: &Settings, token: &str, max_age: u64) -> String {
    let secure = if settings.secure_cookies() {
        "; Secure"
    } else {
        ""
    };
    format!("{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}")
}

/// The `Set-Cookie` value that removes the session cookie.
pub fn clear_session_cookie(settings: &Settings) -> String {
    session_cookie(settings, "", 0)
}

/// Serves `router` on `listener` until `shutdown` resolves, with client
/// addresses available to handlers.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // Responses go out as soon as they are written: Nagle's algorithm
    // could hold the tail of one back until the client's delayed ACK.
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::warn!(error = %e, "cannot set TCP_NODELAY");
        }
    });
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
