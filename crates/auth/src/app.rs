//! The app's side of OAuth 2.0 with PKCE and key delivery, without I/O: the
//! authorization request, the checks on the redirect back, the token
//! endpoint's form fields, and opening the delivered app key. The native
//! client (`client` feature) and the browser SDK (through wasm) both send
//! exactly these requests.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand_core::CryptoRngCore;
use sealbase_crypto::AppKey;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::flow::{AppSecrets, DeliveryKey, FlowError};
use crate::pkce;

/// Version of [`AppAuthorization::save`]'s format.
pub const SAVED_VERSION: u8 = 1;

/// Why the redirect back to the app was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RedirectError {
    /// `state` is missing or not the one sent (a forged or crossed redirect).
    #[error("state does not match")]
    State,
    /// `iss` is missing or not the expected issuer (RFC 9207 mix-up defence).
    #[error("iss does not match the issuer")]
    Issuer,
    /// The server answered with an OAuth error (e.g. the user denied).
    #[error("{error}: {}", description.as_deref().unwrap_or(""))]
    Denied {
        /// The `error` code.
        error: String,
        /// `error_description`.
        description: Option<String>,
    },
    /// No `code` in the redirect.
    #[error("no code in the redirect")]
    NoCode,
}

/// Why saved secrets could not be restored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RestoreError {
    /// Not the saved form (or damaged).
    #[error("not a saved authorization: {0}")]
    Format(String),
    /// Saved by a newer version.
    #[error("saved authorization version {0} is not supported")]
    Version(u8),
}

/// An app's authorization in progress: where it goes, and its secrets
/// (PKCE verifier, `state`, key delivery key).
#[derive(Debug)]
pub struct AppAuthorization {
    /// The app's `client_id`.
    pub client_id: String,
    /// Its redirect URI.
    pub redirect_uri: String,
    /// Scopes asked for.
    pub scope: String,
    /// PKCE verifier, `state` and key delivery key.
    pub secrets: AppSecrets,
}

#[derive(Serialize, Deserialize)]
struct Saved {
    v: u8,
    client_id: String,
    redirect_uri: String,
    scope: String,
    verifier: String,
    state: String,
    delivery: String,
}

impl AppAuthorization {
    /// A new authorization with fresh secrets from `rng`.
    pub fn generate(
        client_id: &str,
        redirect_uri: &str,
        scope: &str,
        rng: &mut impl CryptoRngCore,
    ) -> Self {
        Self {
            client_id: client_id.into(),
            redirect_uri: redirect_uri.into(),
            scope: scope.into(),
            secrets: AppSecrets::generate(rng),
        }
    }

    /// The URL to send the browser to.
    pub fn authorize_url(&self, issuer: &str) -> String {
        let challenge = self.secrets.challenge();
        let query = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs([
                ("response_type", "code"),
                ("client_id", &self.client_id),
                ("redirect_uri", &self.redirect_uri),
                ("scope", &self.scope),
                ("state", &self.secrets.state),
                ("code_challenge", &challenge),
                ("code_challenge_method", pkce::METHOD),
                ("key_x25519", &self.secrets.delivery.public),
            ])
            .finish();
        format!("{}/oauth/authorize?{query}", issuer.trim_end_matches('/'))
    }

    /// The code from the redirect back to the app (`redirect_to`, the full
    /// URL or its query), after checking `state` and `iss`.
    pub fn redirect_code(&self, issuer: &str, redirect_to: &str) -> Result<String, RedirectError> {
        let query = redirect_to.split_once('?').map_or(redirect_to, |(_, q)| q);
        let query = query.split('#').next().unwrap_or_default();
        let params: std::collections::HashMap<String, String> =
            url::form_urlencoded::parse(query.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
        if params.get("state") != Some(&self.secrets.state) {
            return Err(RedirectError::State);
        }
        if params.get("iss").map(String::as_str) != Some(issuer.trim_end_matches('/')) {
            return Err(RedirectError::Issuer);
        }
        if let Some(error) = params.get("error") {
            return Err(RedirectError::Denied {
                error: error.clone(),
                description: params.get("error_description").cloned(),
            });
        }
        params.get("code").cloned().ok_or(RedirectError::NoCode)
    }

    /// The form of the code exchange at `POST /oauth/token`.
    pub fn token_form(&self, code: &str) -> Vec<(&'static str, String)> {
        vec![
            ("grant_type", "authorization_code".into()),
            ("code", code.into()),
            ("redirect_uri", self.redirect_uri.clone()),
            ("client_id", self.client_id.clone()),
            ("code_verifier", self.secrets.verifier.clone()),
        ]
    }

    /// Opens the token response's `key_jwe` and checks it derives `did`.
    pub fn open_app_key(&self, key_jwe: &str, did: &str) -> Result<AppKey, FlowError> {
        self.secrets.delivery.open(key_jwe, did)
    }

    /// The authorization as text, to keep across the redirect (e.g. in the
    /// tab's `sessionStorage`): JSON with a version, holding the verifier,
    /// `state` and the delivery key's secret. It opens only the key
    /// delivered for this one authorization.
    pub fn save(&self) -> Zeroizing<String> {
        let delivery = self.secrets.delivery.secret_bytes();
        let saved = Saved {
            v: SAVED_VERSION,
            client_id: self.client_id.clone(),
            redirect_uri: self.redirect_uri.clone(),
            scope: self.scope.clone(),
            verifier: self.secrets.verifier.clone(),
            state: self.secrets.state.clone(),
            delivery: URL_SAFE_NO_PAD.encode(*delivery),
        };
        // Serializing plain strings cannot fail.
        Zeroizing::new(serde_json::to_string(&saved).unwrap_or_default())
    }

    /// The authorization [`Self::save`] wrote.
    pub fn restore(saved: &str) -> Result<Self, RestoreError> {
        let saved: Saved =
            serde_json::from_str(saved).map_err(|e| RestoreError::Format(e.to_string()))?;
        if saved.v != SAVED_VERSION {
            return Err(RestoreError::Version(saved.v));
        }
        let secret: [u8; 32] = URL_SAFE_NO_PAD
            .decode(&saved.delivery)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| RestoreError::Format("delivery key is not 32 bytes".into()))?;
        if !pkce::is_valid_verifier(&saved.verifier) {
            return Err(RestoreError::Format("bad verifier".into()));
        }
        Ok(Self {
            client_id: saved.client_id,
            redirect_uri: saved.redirect_uri,
            scope: saved.scope,
            secrets: AppSecrets {
                verifier: saved.verifier,
                state: saved.state,
                delivery: DeliveryKey::from_secret_bytes(secret),
            },
        })
    }
}

/// The form of a refresh at `POST /oauth/token`.
pub fn refresh_form(client_id: &str, refresh_token: &str) -> Vec<(&'static str, String)> {
    vec![
        ("grant_type", "refresh_token".into()),
        ("refresh_token", refresh_token.into()),
        ("client_id", client_id.into()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::SeedableRng;

    fn auth() -> AppAuthorization {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(7);
        AppAuthorization::generate("tasks", "http://localhost:5173/", "sync", &mut rng)
    }

    #[test]
    fn authorize_url_carries_the_bound_challenge() {
        let a = auth();
        let url = a.authorize_url("http://127.0.0.1:8080/");
        assert!(url.starts_with("http://127.0.0.1:8080/oauth/authorize?response_type=code&"));
        let challenge = pkce::challenge(&a.secrets.verifier, Some(&a.secrets.delivery.public));
        assert!(url.contains(&format!("code_challenge={challenge}")));
        assert!(url.contains("redirect_uri=http%3A%2F%2Flocalhost%3A5173%2F"));
        assert!(url.contains(&format!("key_x25519={}", a.secrets.delivery.public)));
    }

    #[test]
    fn redirect_checks_state_and_issuer() {
        let a = auth();
        let iss = "http://127.0.0.1:8080";
        let state = a.secrets.state.clone();
        let ok = format!(
            "http://localhost:5173/?code=abc&state={state}&iss=http%3A%2F%2F127.0.0.1%3A8080"
        );
        assert_eq!(a.redirect_code(iss, &ok).unwrap(), "abc");
        let crossed = format!("?code=abc&state=other&iss={iss}");
        assert_eq!(a.redirect_code(iss, &crossed), Err(RedirectError::State));
        let mixed = format!("?code=abc&state={state}&iss=http://evil");
        assert_eq!(a.redirect_code(iss, &mixed), Err(RedirectError::Issuer));
        let denied = format!("?error=access_denied&state={state}&iss={iss}");
        assert!(
            matches!(a.redirect_code(iss, &denied), Err(RedirectError::Denied { error, .. }) if error == "access_denied")
        );
        let none = format!("?state={state}&iss={iss}");
        assert_eq!(a.redirect_code(iss, &none), Err(RedirectError::NoCode));
    }

    #[test]
    fn saved_authorization_restores_the_same_secrets() {
        let a = auth();
        let saved = a.save();
        assert!(saved.starts_with("{\"v\":1,"));
        let b = AppAuthorization::restore(&saved).unwrap();
        assert_eq!(b.secrets.verifier, a.secrets.verifier);
        assert_eq!(b.secrets.state, a.secrets.state);
        assert_eq!(b.secrets.delivery.public, a.secrets.delivery.public);
        assert_eq!(b.token_form("c"), a.token_form("c"));
        assert!(matches!(
            AppAuthorization::restore("{}"),
            Err(RestoreError::Format(_))
        ));
        let newer = saved.replacen("\"v\":1", "\"v\":2", 1);
        assert_eq!(
            AppAuthorization::restore(&newer).unwrap_err(),
            RestoreError::Version(2)
        );
    }
}
