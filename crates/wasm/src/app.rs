//! The app's side of OAuth 2.0 with PKCE and key delivery
//! (`sealbase_auth::app`): the authorization request, the redirect checks,
//! the token request's form, and opening the delivered app key.

use rand_core::OsRng;
use sealbase_auth::app::AppAuthorization as Authorization;
use sealbase_crypto::{AppKey, Identity};
use wasm_bindgen::prelude::*;

fn js(e: impl std::fmt::Display) -> JsError {
    JsError::new(&e.to_string())
}

/// An authorization in progress: PKCE verifier, `state`, and the
/// ephemeral key the app key is delivered to.
#[wasm_bindgen]
pub struct AppAuthorization(Authorization);

#[wasm_bindgen]
impl AppAuthorization {
    /// Fresh secrets for `clientId`, `redirectUri` and `scope`.
    #[wasm_bindgen(constructor)]
    pub fn new(client_id: &str, redirect_uri: &str, scope: &str) -> AppAuthorization {
        Self(Authorization::generate(
            client_id,
            redirect_uri,
            scope,
            &mut OsRng,
        ))
    }

    /// The URL of the authorization request at `issuer`.
    #[wasm_bindgen(js_name = authorizeUrl)]
    pub fn authorize_url(&self, issuer: &str) -> String {
        self.0.authorize_url(issuer)
    }

    /// The authorization as text, to keep across the redirect.
    pub fn save(&self) -> String {
        self.0.save().to_string()
    }

    /// The authorization [`Self::save`] wrote.
    pub fn restore(saved: &str) -> Result<AppAuthorization, JsError> {
        Authorization::restore(saved).map(Self).map_err(js)
    }

    /// The code in the redirect back (`url`), after checking `state` and
    /// `iss`; throws on an OAuth error answer.
    #[wasm_bindgen(js_name = codeFromRedirect)]
    pub fn code_from_redirect(&self, issuer: &str, url: &str) -> Result<String, JsError> {
        self.0.redirect_code(issuer, url).map_err(js)
    }

    /// The body of the code exchange at `POST /oauth/token`
    /// (`application/x-www-form-urlencoded`).
    #[wasm_bindgen(js_name = tokenRequest)]
    pub fn token_request(&self, code: &str) -> String {
        form_body(self.0.token_form(code))
    }

    /// `code_verifier`.
    #[wasm_bindgen(getter)]
    pub fn verifier(&self) -> String {
        self.0.secrets.verifier.clone()
    }
    /// `state`.
    #[wasm_bindgen(getter)]
    pub fn state(&self) -> String {
        self.0.secrets.state.clone()
    }
    /// `key_x25519`.
    #[wasm_bindgen(getter, js_name = keyX25519)]
    pub fn key_x25519(&self) -> String {
        self.0.secrets.delivery.public.clone()
    }
    /// `code_challenge`, bound to `key_x25519`.
    #[wasm_bindgen(getter)]
    pub fn challenge(&self) -> String {
        self.0.secrets.challenge()
    }

    /// Opens the delivered `key_jwe` and checks it derives `did`; returns
    /// the app key's 32 bytes (for the SDK's wrapped key storage).
    #[wasm_bindgen(js_name = openAppKey)]
    pub fn open_app_key(&self, key_jwe: &str, did: &str) -> Result<Vec<u8>, JsError> {
        self.0
            .open_app_key(key_jwe, did)
            .map(|ak| ak.as_bytes().to_vec())
            .map_err(js)
    }
}

/// The `did:key` of a 32-byte app key (to check a stored session).
#[wasm_bindgen(js_name = didOfAppKey)]
pub fn did_of_app_key(app_key: &[u8]) -> Result<String, JsError> {
    let bytes: [u8; 32] = app_key
        .try_into()
        .map_err(|_| JsError::new("an app key is 32 bytes"))?;
    Ok(Identity::from_app_key(&AppKey::from_bytes(bytes))
        .did()
        .to_string())
}

/// A form as an `application/x-www-form-urlencoded` body.
fn form_body(form: Vec<(&'static str, String)>) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish()
}
