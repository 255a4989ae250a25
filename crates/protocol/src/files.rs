//! File metadata and the HTTP names of file transfers. File bytes never
//! travel over the WebSocket: they move over
//! `PUT|GET|HEAD /api/v1/spaces/{space}/files/{file}`, encrypted client-side
//! in [`crate::FILE_CHUNK_LEN`] chunks. A completed upload moves the space
//! cursor like any other write and is announced as [`FileMeta`] in the
//! `file` notification and the `pull.file` chunk.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::binary::WrappedKey;

/// HTTP path prefix of file transfers; append `{space}/files/{file}`.
pub const FILES_PATH_PREFIX: &str = "/api/v1/spaces/";

/// HTTP header carrying the capability token on file requests.
pub const CAPABILITY_HEADER: &str = "sealbase-capability";

/// HTTP header carrying the wrapped file key (base64url, no padding) on `PUT`
/// and returned on `GET`/`HEAD`.
pub const FILE_KEY_HEADER: &str = "sealbase-file-key";

/// HTTP header naming (hyphenated UUID) the record a file belongs to:
/// required on `PUT`, returned on `GET`/`HEAD`. Deleting the record deletes
/// its files.
pub const RECORD_HEADER: &str = "sealbase-record";

/// HTTP header carrying the space cursor at which a file was stored,
/// returned on `GET`/`HEAD` and `PUT`.
pub const CURSOR_HEADER: &str = "sealbase-cursor";

/// A stored file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileMeta {
    /// The file.
    pub id: Uuid,
    /// The record the file belongs to (deleting it deletes the file).
    pub record: Uuid,
    /// Space cursor at which the upload completed.
    pub cursor: u64,
    /// Size of the stored (encrypted) body in bytes.
    pub size: u64,
    /// The file key wrapped under an epoch key.
    pub dek: WrappedKey,
}
