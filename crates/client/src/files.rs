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
//! each transfer makes and the sealing and opening of bodies ([`Opening`]
//! takes a download apart as it arrives). The native transfers over
//! reqwest are in `native::FileClient`; the browser's over `fetch` in the
//! wasm crate.

use std::collections::BTreeMap;

use base64::Engine as _;
use sealbase_crypto::capability::Capability;
use sealbase_crypto::file::{FILE_HEADER_LEN, FileOpener, FileSealer, SEALED_CHUNK_LEN};
use sealbase_crypto::{EpochKey, FileKey, OsRng, WrappedKey, unwrap_file_key, wrap_file_key};
use sealbase_protocol::{
    CAPABILITY_HEADER, ErrorBody, ErrorCode, FILE_KEY_HEADER, FILES_PATH_PREFIX, RECORD_HEADER,
    Uuid, WS_PATH,
};

use crate::error::SyncError;

/// Plaintext opened from a download (wiped when dropped).
pub type Plain = zeroize::Zeroizing<Vec<u8>>;

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

/// A downloaded body opened as it arrives: [`Opening::feed`] the pieces
/// in order, then [`Opening::finish`]. Each chunk is authenticated before
/// its plaintext is handed out, so nothing unverified leaves; a body that
/// is truncated, reordered, extended or of another file fails. At most
/// one sealed chunk is buffered.
pub struct Opening {
    file: Uuid,
    key: FileKey,
    space: Uuid,
    opener: Option<FileOpener>,
    buf: Vec<u8>,
    index: u64,
    chunks: u64,
    expected: u64,
    opened: u64,
}

impl Opening {
    /// Starts opening `file` of `access`'s space, whose `Sealbase-File-Key`
    /// answer header is `key_header` and whose sealed body is `sealed_len`
    /// bytes (the answer's `Content-Length`).
    pub fn new(
        access: &FileAccess,
        file: Uuid,
        key_header: &str,
        sealed_len: u64,
    ) -> Result<Self, SyncError> {
        let key = access.file_key(key_header)?;
        let shape =
            |e: sealbase_crypto::file::FileError| SyncError::Protocol(format!("file {file}: {e}"));
        let expected = sealbase_crypto::file::plain_file_len(sealed_len).map_err(shape)?;
        let chunks = sealbase_crypto::file::file_chunk_count(sealed_len).map_err(shape)?;
        Ok(Self {
            file,
            key,
            space: access.space,
            opener: None,
            buf: Vec::with_capacity(SEALED_CHUNK_LEN),
            index: 0,
            chunks,
            expected,
            opened: 0,
        })
    }

    /// The plaintext length the body announces.
    pub fn plain_len(&self) -> u64 {
        self.expected
    }

    /// Takes the next `piece` of the body; returns the chunks it completed,
    /// opened.
    pub fn feed(&mut self, piece: &[u8]) -> Result<Vec<Plain>, SyncError> {
        self.buf.extend_from_slice(piece);
        self.open_ready(false)
    }

    /// The body ended: opens the last chunk and checks nothing is missing.
    pub fn finish(mut self) -> Result<Vec<Plain>, SyncError> {
        let last = self.open_ready(true)?;
        if self.index != self.chunks || self.opened != self.expected || !self.buf.is_empty() {
            return Err(SyncError::Protocol(format!(
                "file {} ended after {} of {} bytes",
                self.file, self.opened, self.expected
            )));
        }
        Ok(last)
    }

    fn open_ready(&mut self, end: bool) -> Result<Vec<Plain>, SyncError> {
        if self.opener.is_none() && self.buf.len() >= FILE_HEADER_LEN {
            let header: Vec<u8> = self.buf.drain(..FILE_HEADER_LEN).collect();
            self.opener = Some(
                FileOpener::new(&self.key, &self.space, &self.file, &header)
                    .map_err(|e| SyncError::Refused(format!("file {}: {e}", self.file)))?,
            );
        }
        let mut out = Vec::new();
        let Some(opener) = &self.opener else {
            return Ok(out);
        };
        while self.index < self.chunks
            && (self.buf.len() > SEALED_CHUNK_LEN
                || (self.buf.len() == SEALED_CHUNK_LEN && self.index + 1 < self.chunks)
                || (end && self.index + 1 == self.chunks))
        {
            let take = self.buf.len().min(SEALED_CHUNK_LEN);
            let sealed: Vec<u8> = self.buf.drain(..take).collect();
            let last = self.index + 1 == self.chunks;
            let plain = opener
                .open_chunk(self.index, &sealed, last)
                .map_err(|e| SyncError::Refused(format!("file {}: {e}", self.file)))?;
            self.opened += plain.len() as u64;
            self.index += 1;
            out.push(plain);
        }
        Ok(out)
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

    /// An access to a personal space, a sealed body of `len` bytes of
    /// `file`, and the key header its download answers with.
    fn sealed(len: usize) -> (FileAccess, Uuid, Vec<u8>, Vec<u8>, String) {
        let epoch_key = EpochKey::generate(&mut OsRng);
        let space = crate::spaces::random_uuid();
        let file = crate::spaces::random_uuid();
        let access = FileAccess {
            url: "http://127.0.0.1:1".into(),
            space,
            token: "t".into(),
            cap: None,
            epoch: 1,
            keys: BTreeMap::from([(1, epoch_key.clone())]),
            role: Capability::Admin,
        };
        let key = FileKey::generate(&mut OsRng);
        let plain: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
        let body =
            sealbase_crypto::file::seal_file(&key, &space, &file, &plain, &mut OsRng).unwrap();
        let header = b64().encode(wrap_file_key(1, &epoch_key, &key).to_bytes());
        (access, file, plain, body, header)
    }

    /// Feeds `body` in pieces of `piece` bytes; the opened plaintext.
    fn open_in_pieces(
        access: &FileAccess,
        file: Uuid,
        header: &str,
        body: &[u8],
        piece: usize,
    ) -> Result<Vec<u8>, SyncError> {
        let mut opening = Opening::new(access, file, header, body.len() as u64)?;
        let mut out = Vec::new();
        for p in body.chunks(piece) {
            for chunk in opening.feed(p)? {
                out.extend_from_slice(&chunk);
            }
        }
        for chunk in opening.finish()? {
            out.extend_from_slice(&chunk);
        }
        Ok(out)
    }

    #[test]
    fn opening_any_piece_sizes() {
        let chunk = sealbase_crypto::file::FILE_CHUNK_LEN;
        for len in [
            0,
            1,
            1000,
            chunk - 1,
            chunk,
            chunk + 1,
            2 * chunk,
            2 * chunk + 17,
        ] {
            let (access, file, plain, body, header) = sealed(len);
            for piece in [1usize << 20, SEALED_CHUNK_LEN, 65_536, 4093, 9] {
                if piece < 1000 && len > 2000 {
                    continue; // byte-sized pieces only for the small files
                }
                let opened = open_in_pieces(&access, file, &header, &body, piece).unwrap();
                assert_eq!(opened, plain, "len {len}, pieces of {piece}");
            }
            let opening = Opening::new(&access, file, &header, body.len() as u64).unwrap();
            assert_eq!(opening.plain_len(), len as u64);
        }
    }

    #[test]
    fn opening_hands_out_each_chunk_once_complete() {
        let chunk = sealbase_crypto::file::FILE_CHUNK_LEN;
        let (access, file, plain, body, header) = sealed(2 * chunk + 5);
        let mut opening = Opening::new(&access, file, &header, body.len() as u64).unwrap();
        // Header and the first chunk: opened at once, since more follow.
        let first = opening
            .feed(body.get(..FILE_HEADER_LEN + SEALED_CHUNK_LEN).unwrap())
            .unwrap();
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].as_slice(), plain.get(..chunk).unwrap());
        let rest = opening
            .feed(body.get(FILE_HEADER_LEN + SEALED_CHUNK_LEN..).unwrap())
            .unwrap();
        assert_eq!(rest.len(), 1, "the last chunk waits for the end");
        let last = opening.finish().unwrap();
        assert_eq!(last.len(), 1);
        assert_eq!(last[0].as_slice(), plain.get(2 * chunk..).unwrap());
    }

    #[test]
    fn opening_refuses_bad_bodies() {
        let chunk = sealbase_crypto::file::FILE_CHUNK_LEN;
        let (access, file, _, body, header) = sealed(chunk + 100);
        let n = body.len();
        // Truncated: the announced length is the full one.
        let mut opening = Opening::new(&access, file, &header, n as u64).unwrap();
        let handed = opening.feed(body.get(..n - 1).unwrap()).unwrap();
        assert_eq!(handed.len(), 1, "the complete first chunk is fine");
        assert!(opening.finish().is_err());
        // Extended past the announced length.
        let mut longer = body.clone();
        longer.extend_from_slice(&[0; 40]);
        let mut opening = Opening::new(&access, file, &header, n as u64).unwrap();
        let fed = opening.feed(&longer);
        assert!(fed.is_err() || opening.finish().is_err());
        // A flipped byte in the last chunk: nothing of that chunk comes out.
        let mut tampered = body.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(open_in_pieces(&access, file, &header, &tampered, 65_536).is_err());
        // Another file's id, or another space's key.
        assert!(
            open_in_pieces(
                &access,
                crate::spaces::random_uuid(),
                &header,
                &body,
                65_536
            )
            .is_err()
        );
        let (_, _, _, _, other_header) = sealed(10);
        assert!(Opening::new(&access, file, &other_header, n as u64).is_err());
        // A length no sealed file has.
        assert!(Opening::new(&access, file, &header, 3).is_err());
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
