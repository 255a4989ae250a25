//! Files: encrypted bodies attached to records, moved over HTTP
//! (docs/protocol.md §8), never over the WebSocket.
//!
//! A file is sealed on the device in 256 KiB chunks under a fresh file key
//! ([`sealbase_crypto::file`]); the key travels wrapped under the space's
//! current epoch key (`Sealbase-File-Key`), so a rotation rewraps it with
//! the record keys and a removed member, who never gets a later epoch key,
//! cannot open files uploaded or rewrapped after the removal. The server
//! stores and streams ciphertext; it checks the capability of every
//! request.
//!
//! This module holds what does not depend on an HTTP client: the request
//! each transfer makes and the sealing and opening of bodies. The native
//! transfers over reqwest are in `native::FileClient`.

use std::collections::BTreeMap;

use base64::Engine as _;
use sealbase_crypto::capability::Capability;
use sealbase_crypto::file::{FileOpener, FileSealer};
use sealbase_crypto::{EpochKey, FileKey, OsRng, WrappedKey, unwrap_file_key, wrap_file_key};
use sealbase_protocol::{
    CAPABILITY_HEADER, ErrorBody, ErrorCode, FILE_KEY_HEADER, FILES_PATH_PREFIX, RECORD_HEADER,
    Uuid, WS_PATH,
};

use crate::error::SyncError;

/// What a file transfer in one space needs, from
/// [`crate::SyncHandle::file_access`]. Holds secrets: keep it no longer
/// than the transfer.
pub struct FileAccess {
    /// The sync server's HTTP base (`https://host`).
    pub url: String,
    /// The space.
    pub space: Uuid,
    /// An access token.
    pub token: String,
    /// The capability (shared spaces).
    pub cap: Option<String>,
    /// The space's current epoch (new files are wrapped under it).
    pub epoch: u32,
    /// Every epoch key held for the space.
    pub keys: BTreeMap<u32, EpochKey>,
    /// The user's role in the space.
    pub role: Capability,
}

impl std::fmt::Debug for FileAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileAccess")
            .field("url", &self.url)
            .field("space", &self.space)
            .field("epoch", &self.epoch)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

/// The HTTP base of the sync server whose WebSocket URL is `ws_url`.
pub fn http_base(ws_url: &str) -> Result<String, SyncError> {
    let rest = if let Some(rest) = ws_url.strip_prefix("wss://") {
        format!("https://{rest}")
    } else if let Some(rest) = ws_url.strip_prefix("ws://") {
        format!("http://{rest}")
    } else {
        return Err(SyncError::Refused(format!(
            "{ws_url:?} is not a ws:// or wss:// URL"
        )));
    };
    Ok(rest
        .strip_suffix(WS_PATH)
        .unwrap_or(&rest)
        .trim_end_matches('/')
        .to_owned())
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
}

/// A request header, name and value.
pub type Header = (&'static str, String);

/// One upload being prepared: a fresh file id and key, the headers of
/// its `PUT`, and the sealer its body goes through.
pub struct Upload {
    /// The new file's id.
    pub file: Uuid,
    /// The record it belongs to.
    pub record: Uuid,
    /// The `PUT` URL.
    pub url: String,
    /// The `PUT` headers (authorization, capability, wrapped key, record).
    pub headers: Vec<Header>,
    /// Seals the body chunk by chunk (header first).
    pub sealer: FileSealer,
}

impl FileAccess {
    /// The URL of `file` in this space.
    pub fn file_url(&self, file: &Uuid) -> String {
        format!("{}{FILES_PATH_PREFIX}{}/files/{file}", self.url, self.space)
    }

    /// The headers every request of this space carries.
    pub fn headers(&self) -> Vec<Header> {
        let mut headers = vec![("authorization", format!("Bearer {}", self.token))];
        if let Some(cap) = &self.cap {
            headers.push((CAPABILITY_HEADER, cap.clone()));
        }
        headers
    }

    /// A new file for `record`: fresh id and key, the key wrapped under
    /// the current epoch.
    pub fn upload(&self, record: Uuid) -> Result<Upload, SyncError> {
        if self.role < Capability::Write {
            return Err(SyncError::Refused(format!(
                "space {} is read-only for you",
                self.space
            )));
        }
        let epoch_key = self.keys.get(&self.epoch).ok_or_else(|| {
            SyncError::Refused(format!(
                "no key for epoch {} of space {}",
                self.epoch, self.space
            ))
        })?;
        let file = crate::spaces::random_uuid();
        let key = FileKey::generate(&mut OsRng);
        let wrapped = wrap_file_key(self.epoch, epoch_key, &key);
        let sealer = FileSealer::new(&key, &self.space, &file, &mut OsRng);
        let mut headers = self.headers();
        headers.push((FILE_KEY_HEADER, b64().encode(wrapped.to_bytes())));
        headers.push((RECORD_HEADER, record.to_string()));
        Ok(Upload {
            file,
            record,
            url: self.file_url(&file),
            headers,
            sealer,
        })
    }

    /// The file key of a downloaded file, from its `Sealbase-File-Key`.
    pub fn file_key(&self, header: &str) -> Result<FileKey, SyncError> {
        let bytes = b64()
            .decode(header.trim())
            .map_err(|_| SyncError::Protocol("the file key header is not base64url".into()))?;
        let wrapped = WrappedKey::from_bytes(&bytes)
            .map_err(|e| SyncError::Protocol(format!("file key: {e}")))?;
        let epoch_key = self.keys.get(&wrapped.epoch()).ok_or_else(|| {
            SyncError::Refused(format!(
                "the file's key is wrapped under epoch {}, which this device does not hold",
                wrapped.epoch()
            ))
        })?;
        unwrap_file_key(epoch_key, &wrapped)
            .map_err(|e| SyncError::Refused(format!("the file key does not unwrap: {e}")))
    }

    /// An opener for `file` whose sealed body starts with `header`.
    pub fn opener(
        &self,
        file: &Uuid,
        key: &FileKey,
        header: &[u8],
    ) -> Result<FileOpener, SyncError> {
        FileOpener::new(key, &self.space, file, header)
            .map_err(|e| SyncError::Refused(format!("file {file}: {e}")))
    }
}

/// A refused HTTP transfer as a [`SyncError`]: the protocol's JSON error
/// body when there is one.
pub fn http_error(method: &'static str, status: u16, body: &[u8]) -> SyncError {
    let error = serde_json::from_slice::<ErrorBody>(body).unwrap_or_else(|_| {
        let code = match status {
            401 => ErrorCode::Unauthorized,
            403 => ErrorCode::Forbidden,
            404 => ErrorCode::NotFound,
            409 => ErrorCode::Conflict,
            413 => ErrorCode::PayloadTooLarge,
            429 => ErrorCode::RateLimited,
            400..=499 => ErrorCode::BadRequest,
            _ => ErrorCode::Internal,
        };
        ErrorBody {
            code,
            message: format!("HTTP {status}"),
        }
    });
    SyncError::Server { method, error }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn http_base_from_ws_url() {
        assert_eq!(
            http_base("ws://127.0.0.1:8081/api/v1/ws").unwrap(),
            "http://127.0.0.1:8081"
        );
        assert_eq!(
            http_base("wss://sync.example/api/v1/ws").unwrap(),
            "https://sync.example"
        );
        assert!(http_base("http://x/api/v1/ws").is_err());
    }

    #[test]
    fn error_bodies() {
        let e = http_error(
            "file.get",
            403,
            br#"{"code":"forbidden","message":"revoked"}"#,
        );
        assert_eq!(e.error_code(), Some(&ErrorCode::Forbidden));
        let e = http_error("file.get", 404, b"not json");
        assert_eq!(e.error_code(), Some(&ErrorCode::NotFound));
    }
}
