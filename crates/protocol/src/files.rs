//! File metadata. File bytes never travel over the WebSocket: they move over
//! `PUT|GET|HEAD /api/v1/spaces/{space}/files/{file}`, encrypted client-side
//! in [`crate::FILE_CHUNK_LEN`] chunks.

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

/// A stored file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileMeta {
    /// The file.
    pub id: Uuid,
    /// Space cursor at which the upload completed.
    pub cursor: u64,
    /// Size of the stored (encrypted) body in bytes.
    pub size: u64,
    /// The file key wrapped under an epoch key.
    pub dek: WrappedKey,
}
