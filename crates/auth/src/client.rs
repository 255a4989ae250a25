//! A native client for every account flow over HTTP (feature `client`):
//! signup, login, password change, recovery, and OAuth with key delivery,
//! both the user's side (what the consent page does) and the app's side.
//! Tests and tools use it to run exactly the steps a browser runs.

use rand_core::OsRng;
use reqwest::StatusCode;
use sealbase_crypto::{AccountRootKey, AppKey};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::api::{self, B64, ErrorBody};
use crate::app::RedirectError;
use crate::directory;
use crate::flow::{self, FlowError};
use crate::opaque::{self, OpaqueError};

/// Why a client call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The request did not complete.
    #[error("HTTP: {0}")]
    Http(#[from] reqwest::Error),
    /// The server answered with an error.
    #[error("{status}: {}: {}", body.error, body.error_description.as_deref().unwrap_or(""))]
    Api {
        /// HTTP status.
        status: u16,
        /// The error body.
        body: ErrorBody,
        /// `Retry-After`, seconds.
        retry_after: Option<u64>,
    },
    /// OPAQUE failed on the client (e.g. wrong password: the server's
    /// answer did not authenticate).
    #[error("OPAQUE: {0}")]
    Opaque(#[from] OpaqueError),
    /// Key work failed.
    #[error(transparent)]
    Flow(#[from] FlowError),
    /// The server answered something this client cannot use.
    #[error("unexpected answer: {0}")]
    Unexpected(String),
}

impl ClientError {
    /// The API error code, if this is an API error.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Api { body, .. } => Some(&body.error),
            _ => None,
        }
    }

    /// The HTTP status, if this is an API error.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Api { status, .. } => Some(*status),
            _ => None,
        }
    }
}

type Result<T, E = ClientError> = std::result::Result<T, E>;

/// A signed-in user: the session and the account root key.
pub struct SignedIn {
    /// The session.
    pub session: api::Session,
    /// The account root key (memory only).
    pub ark: AccountRootKey,
}

impl std::fmt::Debug for SignedIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignedIn")
            .field("account", &self.session.account)
            .finish_non_exhaustive()
    }
}

/// The user's side: talks to the accounts server with a session token.
#[derive(Debug, Clone)]
pub struct AccountsClient {
    base: String,
    http: reqwest::Client,
    session: Option<String>,
}

async fn decode<T: DeserializeOwned>(response: reqwest::Response) -> Result<T> {
    let status = response.status();
    if status.is_success() {
        return Ok(response.json().await?);
    }
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let text = response.text().await?;
    let body = serde_json::from_str(&text).unwrap_or(ErrorBody {
        error: "http_error".into(),
        error_description: Some(text),
        retry_after: None,
    });
    Err(ClientError::Api {
        status: status.as_u16(),
        body,
        retry_after,
    })
}

impl AccountsClient {
    /// A client of the accounts server at `base` (its issuer URL).
    pub fn new(base: &str) -> Self {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        Self {
            base: base.trim_end_matches('/').to_owned(),
            http,
            session: None,
        }
    }

    /// The base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The current session token.
    pub fn session_token(&self) -> Option<&str> {
        self.session.as_deref()
    }

    /// Uses `token` as the session from now on.
    pub fn set_session_token(&mut self, token: Option<String>) {
        self.session = token;
    }

    fn with_session(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.session {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    async fn post<B: Serialize, T: DeserializeOwned>(&self, path: &str, body: &B) -> Result<T> {
        let url = format!("{}{}{path}", self.base, api::PREFIX);
        decode(
            self.with_session(self.http.post(url))
                .json(body)
                .send()
                .await?,
        )
        .await
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        let url = format!("{}{}{path}", self.base, api::PREFIX);
        decode(self.with_session(self.http.get(url)).send().await?).await
    }

    /// Signup step 1: a code goes to `email`.
    pub async fn signup_start(&self, username: &str, email: &str) -> Result<api::SignupStarted> {
        self.post(
            "/signup/start",
            &api::SignupStart {
                username: username.into(),
                email: email.into(),
            },
        )
        .await
    }

    /// Signup steps 2–3: the emailed code, OPAQUE registration, a fresh
    /// `ARK` and recovery key. Signs in; returns the recovery key to show.
    pub async fn signup_finish(
        &mut self,
        signup_id: &str,
        code: &str,
        password: &str,
    ) -> Result<(SignedIn, zeroize::Zeroizing<String>)> {
        let (request, reg) = opaque::client_registration_start(&mut OsRng, password.as_bytes())?;
        let response: api::RegistrationResponse = self
            .post(
                "/signup/verify",
                &api::SignupVerify {
                    signup_id: signup_id.into(),
                    code: code.into(),
                    registration_request: B64(request),
                },
            )
            .await?;
        let (upload, export_key) = opaque::client_registration_finish(
            &mut OsRng,
            reg,
            password.as_bytes(),
            &response.registration_response.0,
        )?;
        let keys = flow::signup_keys(&mut OsRng, &export_key);
        let session: api::Session = self
            .post(
                "/signup/finish",
                &api::SignupFinish {
                    signup_id: signup_id.into(),
                    registration_upload: B64(upload),
                    wrapped_ark: B64(keys.wrapped_ark),
                    recovery_blob: B64(keys.recovery_blob),
                    ark_proof: B64(keys.ark_proof.to_vec()),
                },
            )
            .await?;
        self.session = Some(session.session_token.clone());
        Ok((
            SignedIn {
                session,
                ark: keys.ark,
            },
            keys.recovery_key,
        ))
    }

    /// OPAQUE login; unwraps `ARK`.
    pub async fn login(&mut self, username: &str, password: &str) -> Result<SignedIn> {
        let (request, state) = opaque::client_login_start(&mut OsRng, password.as_bytes())?;
        let started: api::LoginStarted = self
            .post(
                "/login/start",
                &api::LoginStart {
                    username: username.into(),
                    credential_request: B64(request),
                },
            )
            .await?;
        // A wrong password (or unknown user) fails here, on the client; the
        // finalization is still sent so the server counts the failure.
        let finish = opaque::client_login_finish(
            &mut OsRng,
            state,
            password.as_bytes(),
            &started.credential_response.0,
        );
        let (finalization, export_key) = match finish {
            Ok(f) => (f.finalization, Some(f.export_key)),
            Err(OpaqueError::Authentication) => (vec![0u8; 64], None),
            Err(e) => return Err(e.into()),
        };
        let logged_in: api::LoggedIn = self
            .post(
                "/login/finish",
                &api::LoginFinish {
                    login_id: started.login_id,
                    credential_finalization: B64(finalization),
                },
            )
            .await?;
        let export_key = export_key.ok_or_else(|| {
            ClientError::Unexpected(
                "the server accepted a login the client could not finish".into(),
            )
        })?;
        let ark = flow::open_ark(&export_key, &logged_in.wrapped_ark.0)?;
        self.session = Some(logged_in.session.session_token.clone());
        Ok(SignedIn {
            session: logged_in.session,
            ark,
        })
    }

    /// Ends the session.
    pub async fn logout(&mut self) -> Result<()> {
        let url = format!("{}{}/logout", self.base, api::PREFIX);
        let response = self.with_session(self.http.post(url)).send().await?;
        if !response.status().is_success() {
            return decode::<serde_json::Value>(response).await.map(|_| ());
        }
        self.session = None;
        Ok(())
    }

    /// The signed-in account.
    pub async fn account(&self) -> Result<api::Account> {
        self.get("/account").await
    }

    /// Changes the password (the session must be from a login within the
    /// last 10 minutes); `ARK` is re-wrapped, not replaced. Every other
    /// session ends; this client gets the new one.
    pub async fn change_password(
        &mut self,
        ark: &AccountRootKey,
        new_password: &str,
    ) -> Result<api::Session> {
        let (request, reg) =
            opaque::client_registration_start(&mut OsRng, new_password.as_bytes())?;
        let response: api::RegistrationResponse = self
            .post(
                "/password/start",
                &api::RegistrationStart {
                    registration_request: B64(request),
                },
            )
            .await?;
        let (upload, export_key) = opaque::client_registration_finish(
            &mut OsRng,
            reg,
            new_password.as_bytes(),
            &response.registration_response.0,
        )?;
        let rewrapped = flow::rewrap_ark(&mut OsRng, ark, &export_key);
        let session: api::Session = self
            .post(
                "/password/finish",
                &api::Rewrap {
                    registration_upload: B64(upload),
                    wrapped_ark: B64(rewrapped.wrapped_ark),
                    ark_proof: B64(rewrapped.ark_proof.to_vec()),
                    recovery_blob: None,
                },
            )
            .await?;
        self.session = Some(session.session_token.clone());
        Ok(session)
    }

    /// Recovery step 1: a code goes to `email` if it has an account.
    pub async fn recovery_start(&self, email: &str) -> Result<api::RecoveryStarted> {
        self.post(
            "/recovery/start",
            &api::RecoveryStart {
                email: email.into(),
            },
        )
        .await
    }

    /// Recovery steps 2–3: the emailed code and the recovery key open `ARK`;
    /// it is re-wrapped under the new password. Signs in.
    pub async fn recover(
        &mut self,
        recovery_id: &str,
        code: &str,
        recovery_key: &str,
        new_password: &str,
    ) -> Result<SignedIn> {
        let (request, reg) =
            opaque::client_registration_start(&mut OsRng, new_password.as_bytes())?;
        let verified: api::RecoveryVerified = self
            .post(
                "/recovery/verify",
                &api::RecoveryVerify {
                    recovery_id: recovery_id.into(),
                    code: code.into(),
                    registration_request: B64(request),
                },
            )
            .await?;
        let ark = flow::open_recovery(recovery_key, &verified.recovery_blob.0)?;
        let (upload, export_key) = opaque::client_registration_finish(
            &mut OsRng,
            reg,
            new_password.as_bytes(),
            &verified.registration_response.0,
        )?;
        let rewrapped = flow::rewrap_ark(&mut OsRng, &ark, &export_key);
        let session: api::Session = self
            .post(
                "/recovery/finish",
                &api::RecoveryFinish {
                    recovery_id: recovery_id.into(),
                    rewrap: api::Rewrap {
                        registration_upload: B64(upload),
                        wrapped_ark: B64(rewrapped.wrapped_ark),
                        ark_proof: B64(rewrapped.ark_proof.to_vec()),
                        recovery_blob: None,
                    },
                },
            )
            .await?;
        self.session = Some(session.session_token.clone());
        Ok(SignedIn { session, ark })
    }

    /// Opens an authorization URL as the signed-in user's browser would and
    /// returns where the server sends the browser next (`Location`).
    pub async fn open_authorize(&self, url: &str) -> Result<String> {
        let response = self.with_session(self.http.get(url)).send().await?;
        if response.status() != StatusCode::SEE_OTHER && !response.status().is_redirection() {
            let status = response.status().as_u16();
            let text = response.text().await.unwrap_or_default();
            return Err(ClientError::Unexpected(format!(
                "authorize answered {status}: {text}"
            )));
        }
        response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .ok_or_else(|| ClientError::Unexpected("authorize redirect without Location".into()))
    }

    /// The pending request the consent page shows.
    pub async fn authorization_request(
        &self,
        request_id: &str,
    ) -> Result<api::AuthorizationRequest> {
        self.get(&format!("/oauth/requests/{request_id}")).await
    }

    /// Answers a request as the consent page does: on approval, publishes
    /// the app identity and seals the app key to the app. Returns the URL
    /// the browser goes to (the app's redirect URI with code or error).
    pub async fn consent(
        &self,
        ark: &AccountRootKey,
        request: &api::AuthorizationRequest,
        approve: bool,
    ) -> Result<String> {
        let account = self.account().await?;
        let mut body = api::Consent {
            request_id: request.request_id.clone(),
            approve,
            identity: None,
            key_jwe: None,
        };
        if approve {
            let keys = flow::consent_keys(
                &mut OsRng,
                ark,
                &account.username,
                &request.client_id,
                request.key_x25519.as_deref(),
            )?;
            body.identity = Some(keys.identity);
            body.key_jwe = keys.key_jwe;
        }
        let done: api::ConsentDone = self.post("/oauth/consent", &body).await?;
        Ok(done.redirect_to)
    }

    /// Looks `handle` up in the key directory with an app's access token
    /// and checks the entry's attestation.
    pub async fn directory(
        &self,
        access_token: &str,
        client_id: &str,
        handle: &str,
    ) -> Result<api::DirectoryEntry> {
        let url = format!("{}{}/directory/{handle}", self.base, api::PREFIX);
        let entry: api::DirectoryEntry =
            decode(self.http.get(url).bearer_auth(access_token).send().await?).await?;
        directory::verify_entry(&entry, client_id)
            .map_err(|e| ClientError::Unexpected(e.to_string()))?;
        Ok(entry)
    }
}

/// What the app holds after the code exchange.
pub struct AppSession {
    /// The token response.
    pub tokens: api::TokenResponse,
    /// The app key, opened from the JWE and checked against `did`.
    pub app_key: AppKey,
}

impl std::fmt::Debug for AppSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppSession")
            .field("did", &self.tokens.did)
            .finish_non_exhaustive()
    }
}

pub use crate::app::AppAuthorization;

impl AppAuthorization {
    /// A new authorization with fresh secrets.
    pub fn new(client_id: &str, redirect_uri: &str, scope: &str) -> Self {
        Self::generate(client_id, redirect_uri, scope, &mut OsRng)
    }

    /// The code from the redirect back to the app, after checking `state`
    /// and `iss` (RFC 9207). An `error` answer becomes [`ClientError::Api`].
    pub fn code_from_redirect(&self, issuer: &str, redirect_to: &str) -> Result<String> {
        self.redirect_code(issuer, redirect_to)
            .map_err(|e| match e {
                RedirectError::Denied { error, description } => ClientError::Api {
                    status: 302,
                    body: ErrorBody {
                        error,
                        error_description: description,
                        retry_after: None,
                    },
                    retry_after: None,
                },
                other => ClientError::Unexpected(other.to_string()),
            })
    }

    /// Redeems `code` at the token endpoint and opens the delivered key.
    pub async fn exchange(
        &self,
        http: &reqwest::Client,
        issuer: &str,
        code: &str,
    ) -> Result<AppSession> {
        let form = self.token_form(code);
        let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let tokens = token_request(http, issuer, &form).await?;
        let jwe = tokens
            .key_jwe
            .as_deref()
            .ok_or_else(|| ClientError::Unexpected("no key_jwe in the token response".into()))?;
        let app_key = self.open_app_key(jwe, &tokens.did)?;
        Ok(AppSession { tokens, app_key })
    }
}

/// `POST /oauth/token` with form `params`.
pub async fn token_request(
    http: &reqwest::Client,
    issuer: &str,
    params: &[(&str, &str)],
) -> Result<api::TokenResponse> {
    let url = format!("{}/oauth/token", issuer.trim_end_matches('/'));
    decode(http.post(url).form(params).send().await?).await
}

/// Rotates a refresh token.
pub async fn refresh(
    http: &reqwest::Client,
    issuer: &str,
    client_id: &str,
    refresh_token: &str,
) -> Result<api::TokenResponse> {
    let form = crate::app::refresh_form(client_id, refresh_token);
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    token_request(http, issuer, &form).await
}

/// Revokes a refresh token (and its family).
pub async fn revoke(
    http: &reqwest::Client,
    issuer: &str,
    client_id: &str,
    token: &str,
) -> Result<()> {
    let url = format!("{}/oauth/revoke", issuer.trim_end_matches('/'));
    let response = http
        .post(url)
        .form(&[("token", token), ("client_id", client_id)])
        .send()
        .await?;
    if response.status().is_success() {
        Ok(())
    } else {
        decode::<serde_json::Value>(response).await.map(|_| ())
    }
}

/// `GET /oauth/userinfo`.
pub async fn userinfo(
    http: &reqwest::Client,
    issuer: &str,
    access_token: &str,
) -> Result<api::UserInfo> {
    let url = format!("{}/oauth/userinfo", issuer.trim_end_matches('/'));
    decode(http.get(url).bearer_auth(access_token).send().await?).await
}
