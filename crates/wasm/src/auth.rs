//! The account flows (see `docs/accounts.md`).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand_core::OsRng;
use sealbase_auth::flow;
use sealbase_auth::opaque::{self, ClientLoginState, ClientRegistrationState, ExportKey};
use sealbase_crypto::AccountRootKey;
use wasm_bindgen::prelude::*;
use zeroize::Zeroizing;

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn unb64(text: &str, what: &str) -> Result<Vec<u8>, JsError> {
    URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|_| JsError::new(&format!("{what} is not base64url")))
}

fn js(e: impl std::fmt::Display) -> JsError {
    JsError::new(&e.to_string())
}

/// The account root key, held in wasm memory only.
#[wasm_bindgen]
pub struct AccountKey(AccountRootKey);

#[wasm_bindgen]
impl AccountKey {
    /// Opens the recovery blob (base64url) with the user's recovery key text.
    #[wasm_bindgen(js_name = fromRecovery)]
    pub fn from_recovery(recovery_key: &str, recovery_blob: &str) -> Result<AccountKey, JsError> {
        let blob = unb64(recovery_blob, "recovery_blob")?;
        flow::open_recovery(recovery_key, &blob)
            .map(AccountKey)
            .map_err(js)
    }

    /// What the consent page posts for `client_id`: the app identity
    /// (attested for `handle`) and, if the app sent `key_x25519`, its app
    /// key sealed to it.
    pub fn consent(
        &self,
        handle: &str,
        client_id: &str,
        key_x25519: Option<String>,
    ) -> Result<ConsentKeys, JsError> {
        let keys = flow::consent_keys(
            &mut OsRng,
            &self.0,
            handle,
            client_id,
            key_x25519.as_deref(),
        )
        .map_err(js)?;
        Ok(ConsentKeys {
            did: keys.identity.did,
            x25519: b64(&keys.identity.x25519.0),
            attestation: b64(&keys.identity.attestation.0),
            key_jwe: keys.key_jwe,
        })
    }
}

/// The consent page's approval material.
#[wasm_bindgen(getter_with_clone)]
pub struct ConsentKeys {
    /// `did:key` of the app identity.
    pub did: String,
    /// Its X25519 public key (base64url).
    pub x25519: String,
    /// The directory attestation (base64url).
    pub attestation: String,
    /// The sealed app key, if the app asked for it.
    #[wasm_bindgen(js_name = keyJwe)]
    pub key_jwe: Option<String>,
}

/// OPAQUE registration (signup, password change, recovery).
#[wasm_bindgen]
pub struct Registration {
    state: Option<ClientRegistrationState>,
    request: String,
}

fn finish_registration(
    state: &mut Option<ClientRegistrationState>,
    password: &str,
    response: &str,
) -> Result<(Vec<u8>, ExportKey), JsError> {
    let state = state
        .take()
        .ok_or_else(|| JsError::new("this registration was already finished"))?;
    let response = unb64(response, "registration_response")?;
    opaque::client_registration_finish(&mut OsRng, state, password.as_bytes(), &response)
        .map_err(js)
}

#[wasm_bindgen]
impl Registration {
    /// Step 1 for `password`.
    #[wasm_bindgen(constructor)]
    pub fn new(password: &str) -> Result<Registration, JsError> {
        let (request, state) =
            opaque::client_registration_start(&mut OsRng, password.as_bytes()).map_err(js)?;
        Ok(Self {
            state: Some(state),
            request: b64(&request),
        })
    }

    /// `registration_request` (base64url).
    #[wasm_bindgen(getter)]
    pub fn request(&self) -> String {
        self.request.clone()
    }

    /// Signup step 3: finishes registration (Argon2id) and makes a new
    /// `ARK` and recovery key.
    #[wasm_bindgen(js_name = finishSignup)]
    pub fn finish_signup(
        &mut self,
        password: &str,
        response: &str,
    ) -> Result<SignupResult, JsError> {
        let (upload, export_key) = finish_registration(&mut self.state, password, response)?;
        let keys = flow::signup_keys(&mut OsRng, &export_key);
        Ok(SignupResult {
            upload: b64(&upload),
            wrapped_ark: b64(&keys.wrapped_ark),
            recovery_blob: b64(&keys.recovery_blob),
            ark_proof: b64(keys.ark_proof.as_ref()),
            recovery_key: keys.recovery_key,
            ark: Some(keys.ark),
        })
    }

    /// Password change or recovery: finishes registration and re-wraps
    /// `ark` for the new password.
    #[wasm_bindgen(js_name = finishRewrap)]
    pub fn finish_rewrap(
        &mut self,
        password: &str,
        response: &str,
        ark: &AccountKey,
    ) -> Result<RewrapResult, JsError> {
        let (upload, export_key) = finish_registration(&mut self.state, password, response)?;
        let rewrapped = flow::rewrap_ark(&mut OsRng, &ark.0, &export_key);
        Ok(RewrapResult {
            upload: b64(&upload),
            wrapped_ark: b64(&rewrapped.wrapped_ark),
            ark_proof: b64(rewrapped.ark_proof.as_ref()),
        })
    }
}

/// What signup uploads, the recovery key to show, and the new `ARK`.
#[wasm_bindgen]
pub struct SignupResult {
    upload: String,
    wrapped_ark: String,
    recovery_blob: String,
    ark_proof: String,
    recovery_key: Zeroizing<String>,
    ark: Option<AccountRootKey>,
}

#[wasm_bindgen]
impl SignupResult {
    /// `registration_upload`.
    #[wasm_bindgen(getter)]
    pub fn upload(&self) -> String {
        self.upload.clone()
    }
    /// `wrapped_ark`.
    #[wasm_bindgen(getter, js_name = wrappedArk)]
    pub fn wrapped_ark(&self) -> String {
        self.wrapped_ark.clone()
    }
    /// `recovery_blob`.
    #[wasm_bindgen(getter, js_name = recoveryBlob)]
    pub fn recovery_blob(&self) -> String {
        self.recovery_blob.clone()
    }
    /// `ark_proof`.
    #[wasm_bindgen(getter, js_name = arkProof)]
    pub fn ark_proof(&self) -> String {
        self.ark_proof.clone()
    }
    /// The recovery key, to show the user once.
    #[wasm_bindgen(getter, js_name = recoveryKey)]
    pub fn recovery_key(&self) -> String {
        self.recovery_key.to_string()
    }
    /// The new `ARK` (once).
    #[wasm_bindgen(js_name = takeAccountKey)]
    pub fn take_account_key(&mut self) -> Result<AccountKey, JsError> {
        self.ark
            .take()
            .map(AccountKey)
            .ok_or_else(|| JsError::new("the account key was already taken"))
    }
}

/// What a password change or recovery uploads.
#[wasm_bindgen(getter_with_clone)]
pub struct RewrapResult {
    /// `registration_upload`.
    pub upload: String,
    /// `wrapped_ark`.
    #[wasm_bindgen(js_name = wrappedArk)]
    pub wrapped_ark: String,
    /// `ark_proof`.
    #[wasm_bindgen(js_name = arkProof)]
    pub ark_proof: String,
}

/// OPAQUE login.
#[wasm_bindgen]
pub struct Login {
    state: Option<ClientLoginState>,
    request: String,
}

#[wasm_bindgen]
impl Login {
    /// Step 1 for `password`.
    #[wasm_bindgen(constructor)]
    pub fn new(password: &str) -> Result<Login, JsError> {
        let (request, state) =
            opaque::client_login_start(&mut OsRng, password.as_bytes()).map_err(js)?;
        Ok(Self {
            state: Some(state),
            request: b64(&request),
        })
    }

    /// `credential_request` (base64url).
    #[wasm_bindgen(getter)]
    pub fn request(&self) -> String {
        self.request.clone()
    }

    /// Step 3 (Argon2id). A wrong password or unknown user gives a result
    /// whose `ok` is false; its finalization is still sent, so the server
    /// counts the failure.
    pub fn finish(&mut self, password: &str, response: &str) -> Result<LoginResult, JsError> {
        let state = self
            .state
            .take()
            .ok_or_else(|| JsError::new("this login was already finished"))?;
        let response = unb64(response, "credential_response")?;
        match opaque::client_login_finish(&mut OsRng, state, password.as_bytes(), &response) {
            Ok(done) => Ok(LoginResult {
                finalization: b64(&done.finalization),
                export_key: Some(done.export_key),
            }),
            Err(opaque::OpaqueError::Authentication) => Ok(LoginResult {
                finalization: b64(&[0u8; 64]),
                export_key: None,
            }),
            Err(e) => Err(js(e)),
        }
    }
}

/// The client's end of a login.
#[wasm_bindgen]
pub struct LoginResult {
    finalization: String,
    export_key: Option<ExportKey>,
}

#[wasm_bindgen]
impl LoginResult {
    /// `credential_finalization`.
    #[wasm_bindgen(getter)]
    pub fn finalization(&self) -> String {
        self.finalization.clone()
    }
    /// Whether the server's answer authenticated (the password was right).
    #[wasm_bindgen(getter)]
    pub fn ok(&self) -> bool {
        self.export_key.is_some()
    }
    /// `ARK` from the `wrapped_ark` the server returned.
    #[wasm_bindgen(js_name = openAccountKey)]
    pub fn open_account_key(&self, wrapped_ark: &str) -> Result<AccountKey, JsError> {
        let export_key = self
            .export_key
            .as_ref()
            .ok_or_else(|| JsError::new("the login did not authenticate"))?;
        let wrapped = unb64(wrapped_ark, "wrapped_ark")?;
        flow::open_ark(export_key, &wrapped)
            .map(AccountKey)
            .map_err(js)
    }
}
