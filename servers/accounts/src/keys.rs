//! The key file: the server's long-term secrets, kept outside the database.
//!
//! ```json
//! { "version": 1,
//!   "opaque_server_keys": "<base64url of sealbase_auth::ServerKeys>",
//!   "code_key": "<base64url, 32 bytes>",
//!   "signing_keys": [ { "kid": "…", "state": "active", "created_at": 0,
//!                       "jwk": { "kty": "OKP", "crv": "Ed25519", "x": "…", "d": "…" } } ] }
//! ```
//!
//! Signing keys roll over without a gap: `add` publishes a key (`next`) in
//! the JWKS before it signs anything, so every verifier has it cached by the
//! time `activate` makes it sign; the previous key stays published
//! (`previous`) until `retire`, after the longest access token it signed has
//! expired. Exactly one key is `active`.
//!
//! A database dump without this file cannot complete a login, mint a token
//! or check an emailed code; this file without the database holds no user
//! data. The file is written with mode 0600.

use std::path::Path;

use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use josekit::jwk::Jwk;
use rand_core::{CryptoRngCore, OsRng};
use sealbase_auth::ServerKeys;
use sealbase_token::TokenSigner;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::secret::CodeKey;

/// Version of the key file format.
pub const KEY_FILE_VERSION: u32 = 1;

/// Where a signing key is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyState {
    /// Published, not signing yet.
    Next,
    /// Signs new tokens (exactly one).
    Active,
    /// Published, no longer signing; retire once its tokens expired.
    Previous,
}

#[derive(Serialize, Deserialize)]
struct SigningKeyEntry {
    kid: String,
    state: KeyState,
    created_at: u64,
    jwk: Map<String, Value>,
}

#[derive(Serialize, Deserialize)]
struct KeyFileJson {
    version: u32,
    opaque_server_keys: String,
    code_key: String,
    signing_keys: Vec<SigningKeyEntry>,
}

/// The loaded key file.
pub struct KeyFile {
    json: KeyFileJson,
}

impl std::fmt::Debug for KeyFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyFile")
            .field(
                "kids",
                &self
                    .json
                    .signing_keys
                    .iter()
                    .map(|k| &k.kid)
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// The keys a running server uses.
pub struct ServerSecrets {
    /// OPAQUE server setup.
    pub opaque: ServerKeys,
    /// HMAC key of emailed codes.
    pub code_key: CodeKey,
    /// Signs access tokens.
    pub signer: TokenSigner,
    /// The published JWKS document.
    pub jwks: String,
}

impl std::fmt::Debug for ServerSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerSecrets")
            .field("signer", &self.signer)
            .finish_non_exhaustive()
    }
}

/// RFC 7638 thumbprint of an Ed25519 public JWK (the `kid`).
fn thumbprint(x: &str) -> String {
    // Members in lexicographic order, no whitespace (RFC 7638 §3.2).
    let canonical = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#);
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

fn new_signing_key(
    rng: &mut impl CryptoRngCore,
    state: KeyState,
    now: u64,
) -> anyhow::Result<SigningKeyEntry> {
    let key = ed25519_dalek::SigningKey::generate(rng);
    let x = URL_SAFE_NO_PAD.encode(key.verifying_key().as_bytes());
    let d = URL_SAFE_NO_PAD.encode(key.to_bytes());
    let kid = thumbprint(&x);
    let serde_json::Value::Object(jwk) = serde_json::json!({
        "kty": "OKP", "crv": "Ed25519", "x": x, "d": d, "kid": kid,
    }) else {
        bail!("JWK is not an object");
    };
    Ok(SigningKeyEntry {
        kid,
        state,
        created_at: now,
        jwk,
    })
}

impl KeyFile {
    /// A new key file: fresh OPAQUE setup, code key and one active signing key.
    pub fn generate(rng: &mut impl CryptoRngCore, now: u64) -> anyhow::Result<Self> {
        let opaque = ServerKeys::generate(rng);
        let mut code_key = [0u8; 32];
        rng.fill_bytes(&mut code_key);
        Ok(Self {
            json: KeyFileJson {
                version: KEY_FILE_VERSION,
                opaque_server_keys: URL_SAFE_NO_PAD.encode(opaque.to_bytes().as_slice()),
                code_key: URL_SAFE_NO_PAD.encode(code_key),
                signing_keys: vec![new_signing_key(rng, KeyState::Active, now)?],
            },
        })
    }

    /// Reads and checks a key file.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the key file {path:?}"))?;
        let json: KeyFileJson = serde_json::from_str(&text)
            .with_context(|| format!("the key file {path:?} is not a Sealbase key file"))?;
        if json.version != KEY_FILE_VERSION {
            bail!(
                "the key file {path:?} has version {}, this server reads {KEY_FILE_VERSION}",
                json.version
            );
        }
        let file = Self { json };
        file.secrets()
            .with_context(|| format!("the key file {path:?} is invalid"))?;
        Ok(file)
    }

    /// Loads `path`, or with `create` makes it first if it does not exist.
    pub fn load_or_create(path: &Path, create: bool, now: u64) -> anyhow::Result<Self> {
        if !path.exists() {
            if !create {
                bail!(
                    "no key file at {path:?}: run `sealbase-accounts keygen` (or start with --dev)"
                );
            }
            let file = Self::generate(&mut OsRng, now)?;
            file.save(path, false)?;
            tracing::info!(path = %path.display(), "created a new key file");
            return Ok(file);
        }
        Self::load(path)
    }

    /// Writes the file (mode 0600). Refuses to replace one unless `replace`.
    pub fn save(&self, path: &Path, replace: bool) -> anyhow::Result<()> {
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir).with_context(|| format!("cannot create {dir:?}"))?;
        }
        let text = serde_json::to_string_pretty(&self.json)?;
        let tmp = path.with_extension("tmp");
        {
            use std::io::Write;
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create(true).truncate(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                options.mode(0o600);
            }
            let mut f = options
                .open(&tmp)
                .with_context(|| format!("cannot write {tmp:?}"))?;
            f.write_all(text.as_bytes())?;
            f.sync_all()?;
        }
        if path.exists() && !replace {
            let _ = std::fs::remove_file(&tmp);
            bail!("{path:?} exists; pass --force to replace it");
        }
        std::fs::rename(&tmp, path).with_context(|| format!("cannot replace {path:?}"))?;
        Ok(())
    }

    /// The keys in use.
    pub fn secrets(&self) -> anyhow::Result<ServerSecrets> {
        let opaque_bytes = URL_SAFE_NO_PAD
            .decode(&self.json.opaque_server_keys)
            .context("opaque_server_keys is not base64url")?;
        let opaque = ServerKeys::from_bytes(&opaque_bytes).context("opaque_server_keys")?;
        let code_key: [u8; 32] = URL_SAFE_NO_PAD
            .decode(&self.json.code_key)
            .ok()
            .and_then(|b| b.try_into().ok())
            .context("code_key is not 32 bytes of base64url")?;
        let mut active = self
            .json
            .signing_keys
            .iter()
            .filter(|k| k.state == KeyState::Active);
        let Some(entry) = active.next() else {
            bail!("no active signing key")
        };
        if active.next().is_some() {
            bail!("more than one active signing key");
        }
        let jwk = Jwk::from_map(entry.jwk.clone()).context("signing key JWK")?;
        let signer = TokenSigner::from_private_jwk(&entry.kid, &jwk)?;
        Ok(ServerSecrets {
            opaque,
            code_key: CodeKey(code_key),
            signer,
            jwks: self.jwks()?,
        })
    }

    /// The public JWKS: every key not retired, without private members.
    pub fn jwks(&self) -> anyhow::Result<String> {
        let mut keys = Vec::new();
        for entry in &self.json.signing_keys {
            let x = entry
                .jwk
                .get("x")
                .and_then(Value::as_str)
                .with_context(|| format!("key {} has no x", entry.kid))?;
            keys.push(serde_json::json!({
                "kty": "OKP", "crv": "Ed25519", "x": x, "kid": entry.kid,
                "use": "sig", "alg": "EdDSA",
            }));
        }
        Ok(serde_json::json!({ "keys": keys }).to_string())
    }

    /// Adds a `next` key; returns its kid.
    pub fn add_signing_key(&mut self, now: u64) -> anyhow::Result<String> {
        let entry = new_signing_key(&mut OsRng, KeyState::Next, now)?;
        let kid = entry.kid.clone();
        self.json.signing_keys.push(entry);
        Ok(kid)
    }

    /// Makes `kid` the active key; the old active one becomes `previous`.
    pub fn activate(&mut self, kid: &str) -> anyhow::Result<()> {
        if !self.json.signing_keys.iter().any(|k| k.kid == kid) {
            bail!("no signing key {kid}");
        }
        for k in &mut self.json.signing_keys {
            if k.kid == kid {
                k.state = KeyState::Active;
            } else if k.state == KeyState::Active {
                k.state = KeyState::Previous;
            }
        }
        Ok(())
    }

    /// Removes a key that does not sign.
    pub fn retire(&mut self, kid: &str) -> anyhow::Result<()> {
        match self.json.signing_keys.iter().find(|k| k.kid == kid) {
            None => bail!("no signing key {kid}"),
            Some(k) if k.state == KeyState::Active => {
                bail!("{kid} is the active key: activate another one first")
            }
            Some(_) => {}
        }
        self.json.signing_keys.retain(|k| k.kid != kid);
        Ok(())
    }

    /// `(kid, state, created_at)` of every key.
    pub fn signing_keys(&self) -> Vec<(String, KeyState, u64)> {
        self.json
            .signing_keys
            .iter()
            .map(|k| (k.kid.clone(), k.state, k.created_at))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rollover_keeps_exactly_one_active_key_and_publishes_the_next() {
        let mut file = KeyFile::generate(&mut OsRng, 1).unwrap();
        let first = file.secrets().unwrap().signer.kid().to_owned();
        let next = file.add_signing_key(2).unwrap();
        assert!(file.jwks().unwrap().contains(&next));
        assert_eq!(file.secrets().unwrap().signer.kid(), first);
        assert!(file.retire(&first).is_err());
        file.activate(&next).unwrap();
        assert_eq!(file.secrets().unwrap().signer.kid(), next);
        assert!(file.jwks().unwrap().contains(&first));
        file.retire(&first).unwrap();
        let jwks = file.jwks().unwrap();
        assert!(!jwks.contains(&first));
        assert!(!jwks.contains("\"d\""), "the JWKS holds no private key");
    }

    #[test]
    fn save_and_load_round_trip_with_private_mode() {
        let dir = std::env::temp_dir().join(format!("sb-keys-{}", crate::account::random_uuid()));
        let path = dir.join("keys.json");
        let file = KeyFile::load_or_create(&path, true, 5).unwrap();
        let again = KeyFile::load(&path).unwrap();
        assert_eq!(file.jwks().unwrap(), again.jwks().unwrap());
        assert!(file.save(&path, false).is_err(), "no silent replacement");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(KeyFile::load_or_create(&dir.join("missing.json"), false, 5).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
