//! File transfers: `PUT | GET | HEAD /api/v1/spaces/{space}/files/{file}`
//! (`docs/protocol.md` §8).
//!
//! File bytes are ciphertext the client encrypted in 256 KiB chunks; here
//! they are streamed both ways between the HTTP body and the object store
//! ([`storage`]), never held whole in memory. Requests are authorized like
//! WebSocket requests: the bearer access token, plus for a shared space the
//! capability chain in `Sealbase-Capability` checked through the same cache
//! (`read` for GET/HEAD, `write` for PUT).
//!
//! Invariants:
//! - a file row exists only once its object is complete: an upload is
//!   written to its own object, then recorded in one transaction that moves
//!   the space cursor; an upload that fails, is too large, loses a race for
//!   its id or finds its record deleted leaves nothing (its object is
//!   deleted, or aborted before it ever exists);
//! - files are immutable: a `PUT` of a stored file id stores nothing and
//!   answers 200 with the stored metadata, so a retry after a lost response
//!   succeeds;
//! - deleting a record (a push tombstone) removes its files' rows in the
//!   push's transaction; their objects are deleted right after the commit,
//!   and whatever that misses (a crash, a storage error, an upload recorded
//!   nowhere) is an object without a row, removed by [`sweep`].

mod range;
pub mod storage;
mod sweep;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use sealbase_crypto::Capability;
use sealbase_protocol::{
    CAPABILITY_HEADER, CURSOR_HEADER, ErrorBody, ErrorCode, FILE_KEY_HEADER, FileNotification,
    Frame, MAX_TOKEN_LEN, Notification, RECORD_HEADER, WrappedKey,
};
use uuid::Uuid;

use crate::auth::AccessToken;
use crate::server::AppState;
use crate::store::{FileInsert, FileObject, FileRow, NewFile, StoreError};
use range::Ranged;
pub use storage::{FileStorage, StorageError};
pub(crate) use sweep::run as sweep;

/// Longest wait for the next piece of an upload's body before giving up on
/// it (a stalled client must not hold an upload open forever).
const BODY_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Most of a refused upload's body read before answering (see [`put`]).
const DRAIN_ON_ERROR: u64 = 1 << 20;

/// An HTTP error: a status and the protocol's `{code, message}` as JSON.
#[derive(Debug)]
struct HttpError {
    status: StatusCode,
    code: ErrorCode,
    message: String,
    /// `Content-Range: bytes */size` on 416.
    size: Option<u64>,
}

impl HttpError {
    fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            size: None,
        }
    }

    fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, ErrorCode::BadRequest, message)
    }

    fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized, message)
    }

    fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, message)
    }

    fn too_large(limit: u64) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::PayloadTooLarge,
            format!("files are limited to {limit} bytes on this server"),
        )
    }

    fn internal(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::Internal,
            message,
        )
    }

    /// A store failure, mapped as for WebSocket requests.
    fn store(e: StoreError) -> Self {
        crate::session::store_error(e).into()
    }

    fn objects(e: &object_store::Error) -> Self {
        tracing::error!(error = %e, "file store error");
        Self::internal("file storage error")
    }
}

/// The HTTP status of a protocol error code.
fn status_of(code: &ErrorCode) -> StatusCode {
    match code {
        ErrorCode::BadRequest => StatusCode::BAD_REQUEST,
        ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
        ErrorCode::Forbidden => StatusCode::FORBIDDEN,
        ErrorCode::NotFound | ErrorCode::MethodNotFound => StatusCode::NOT_FOUND,
        ErrorCode::Conflict | ErrorCode::StaleEpoch => StatusCode::CONFLICT,
        ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::QuotaExceeded => StatusCode::INSUFFICIENT_STORAGE,
        ErrorCode::Internal | ErrorCode::Other(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<ErrorBody> for HttpError {
    fn from(e: ErrorBody) -> Self {
        Self::new(status_of(&e.code), e.code, e.message)
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({
            "code": self.code.as_str(),
            "message": self.message,
        });
        let mut response = (self.status, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"sealbase\""),
            );
        }
        if let Some(size) = self.size
            && let Ok(value) = HeaderValue::from_str(&format!("bytes */{size}"))
        {
            headers.insert(header::CONTENT_RANGE, value);
        }
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }
}

type Result<T, E = HttpError> = std::result::Result<T, E>;

/// The space and file ids of the path.
fn ids(Path((space, file)): Path<(String, String)>) -> Result<(Uuid, Uuid)> {
    let parse = |s: &str, what: &str| {
        Uuid::try_parse(s)
            .map_err(|_| HttpError::bad_request(format!("the {what} id is not a UUID")))
    };
    Ok((parse(&space, "space")?, parse(&file, "file")?))
}

/// A header as text, if present.
fn text<'h>(headers: &'h HeaderMap, name: &str) -> Result<Option<&'h str>> {
    headers
        .get(name)
        .map(|v| {
            v.to_str()
                .map_err(|_| HttpError::bad_request(format!("{name} is not ASCII")))
        })
        .transpose()
}

/// The caller's verified access token (`Authorization: Bearer …`).
async fn authenticate(app: &AppState, headers: &HeaderMap) -> Result<AccessToken> {
    let value = text(headers, header::AUTHORIZATION.as_str())?.ok_or_else(|| {
        HttpError::unauthorized("an Authorization: Bearer access token is required")
    })?;
    let token = value
        .split_once(' ')
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .ok_or_else(|| HttpError::unauthorized("the Authorization scheme must be Bearer"))?;
    app.verifier
        .verify(token, crate::unix_now())
        .await
        .map_err(|e| HttpError::unauthorized(e.to_string()))
}

/// Authorizes `token` for `need` on `space` through the same checks as the
/// WebSocket. Returns whether the space is shared (a personal space has no
/// epochs to check keys against).
async fn authorize(
    app: &AppState,
    token: &AccessToken,
    space: Uuid,
    headers: &HeaderMap,
    need: Capability,
) -> Result<bool> {
    if space == token.personal_space {
        // The personal space exists from the first use of its token, over
        // HTTP as over the WebSocket.
        return match app.store.ensure_personal_space(space, token.user).await {
            Ok(_) => Ok(false),
            Err(StoreError::NotOwner(_)) => Err(HttpError::new(
                StatusCode::FORBIDDEN,
                ErrorCode::Forbidden,
                "the personal space id is taken",
            )),
            Err(e) => Err(HttpError::store(e)),
        };
    }
    let cap = text(headers, CAPABILITY_HEADER)?;
    if cap.is_some_and(|c| c.len() > MAX_TOKEN_LEN) {
        return Err(HttpError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::PayloadTooLarge,
            format!("{CAPABILITY_HEADER} is longer than {MAX_TOKEN_LEN} bytes"),
        ));
    }
    let grant = app
        .access
        .authorize(
            &app.store,
            token.personal_space,
            &token.did,
            space,
            cap,
            need,
        )
        .await?;
    Ok(grant.is_some())
}

/// The wrapped file key of a `PUT`.
fn file_key(headers: &HeaderMap) -> Result<WrappedKey> {
    let value = text(headers, FILE_KEY_HEADER)?.ok_or_else(|| {
        HttpError::bad_request(format!(
            "{FILE_KEY_HEADER} (the wrapped file key) is required"
        ))
    })?;
    let bytes = URL_SAFE_NO_PAD.decode(value.trim()).map_err(|_| {
        HttpError::bad_request(format!(
            "{FILE_KEY_HEADER} is not base64url without padding"
        ))
    })?;
    WrappedKey::try_from(bytes.as_slice()).map_err(|_| {
        HttpError::bad_request(format!(
            "{FILE_KEY_HEADER} must decode to {} bytes, not {}",
            sealbase_protocol::WRAPPED_KEY_LEN,
            bytes.len()
        ))
    })
}

/// The record a `PUT` attaches its file to.
fn record(headers: &HeaderMap) -> Result<Uuid> {
    let value = text(headers, RECORD_HEADER)?.ok_or_else(|| {
        HttpError::bad_request(format!("{RECORD_HEADER} (the record id) is required"))
    })?;
    Uuid::try_parse(value.trim())
        .map_err(|_| HttpError::bad_request(format!("{RECORD_HEADER} is not a UUID")))
}

/// The declared body length, if any.
fn content_length(headers: &HeaderMap) -> Result<Option<u64>> {
    text(headers, header::CONTENT_LENGTH.as_str())?
        .map(|v| {
            v.trim()
                .parse::<u64>()
                .map_err(|_| HttpError::bad_request("Content-Length is not a number"))
        })
        .transpose()
}

/// A stored file's strong validator: its upload is immutable.
fn etag(row: &FileRow) -> String {
    format!("\"{}\"", row.upload.simple())
}

/// Whether an `If-None-Match` / `If-Range` value names `etag` (`W/` tags
/// compare weakly, as `If-None-Match` requires).
fn matches_etag(value: &str, etag: &str) -> bool {
    value
        .split(',')
        .map(str::trim)
        .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag)
}

fn header_value(value: impl ToString) -> HeaderValue {
    // Only used for ASCII we format ourselves (numbers, UUIDs, base64url).
    HeaderValue::from_str(&value.to_string()).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The headers describing a stored file (GET, HEAD, PUT).
fn describe(headers: &mut HeaderMap, row: &FileRow) {
    let set = |headers: &mut HeaderMap, name: &'static str, value: HeaderValue| {
        headers.insert(HeaderName::from_static(name), value);
    };
    set(
        headers,
        FILE_KEY_HEADER,
        header_value(URL_SAFE_NO_PAD.encode(row.dek.as_bytes())),
    );
    set(
        headers,
        RECORD_HEADER,
        header_value(row.record.hyphenated()),
    );
    set(headers, CURSOR_HEADER, header_value(row.cursor));
    headers.insert(header::ETAG, header_value(etag(row)));
    // Authorized content: caches may keep it but must ask again.
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-cache"),
    );
}

/// The JSON answer to a `PUT`; `prev` only when this request stored it.
fn stored(status: StatusCode, row: &FileRow, prev: Option<u64>) -> Response {
    let mut body = serde_json::json!({
        "id": row.id.hyphenated().to_string(),
        "record": row.record.hyphenated().to_string(),
        "cursor": row.cursor,
        "size": row.size,
        "dek": URL_SAFE_NO_PAD.encode(row.dek.as_bytes()),
    });
    if let (Some(prev), Some(map)) = (prev, body.as_object_mut()) {
        map.insert("prev".to_owned(), prev.into());
    }
    let mut response = (status, axum::Json(body)).into_response();
    describe(response.headers_mut(), row);
    response
}

/// The answer when the file id is already stored: the same record means a
/// retry (200, nothing stored); another record is an id clash.
fn existing(row: &FileRow, record: Uuid) -> Result<Response> {
    if row.record != record {
        return Err(HttpError::new(
            StatusCode::CONFLICT,
            ErrorCode::Conflict,
            "this file id is taken by a file of another record",
        ));
    }
    Ok(stored(StatusCode::OK, row, None))
}

/// `PUT /api/v1/spaces/{space}/files/{file}`: stores a file.
pub(crate) async fn put(
    State(app): State<Arc<AppState>>,
    path: Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    app.metrics.file_puts.fetch_add(1, Ordering::Relaxed);
    let mut body = Some(body);
    let response = upload(&app, path, &headers, &mut body)
        .await
        .unwrap_or_else(IntoResponse::into_response);
    if let Some(body) = body {
        // Answered before reading the body. Closing on unread bytes can
        // reset the connection before the client reads the answer, so read
        // them first: all of a retried upload (its 200 must arrive), a
        // little of a refused one.
        let budget = if response.status().is_success() {
            app.limits.max_file_size
        } else {
            DRAIN_ON_ERROR
        };
        if content_length(&headers)
            .ok()
            .flatten()
            .is_none_or(|len| len <= budget)
        {
            drain(body, budget).await;
        }
    }
    response
}

/// Reads and drops up to `budget` bytes of an unwanted body.
async fn drain(body: Body, budget: u64) {
    let mut body = body.into_data_stream();
    let mut read = 0u64;
    while read <= budget {
        match tokio::time::timeout(BODY_IDLE_TIMEOUT, body.next()).await {
            Ok(Some(Ok(bytes))) => read = read.saturating_add(bytes.len() as u64),
            _ => return,
        }
    }
}

async fn upload(
    app: &Arc<AppState>,
    path: Path<(String, String)>,
    headers: &HeaderMap,
    body: &mut Option<Body>,
) -> Result<Response> {
    let (space, id) = ids(path)?;
    let token = authenticate(app, headers).await?;
    let shared = authorize(app, &token, space, headers, Capability::Write).await?;
    let dek = file_key(headers)?;
    let record = record(headers)?;
    // A retry of a stored file answers without reading the body again,
    // even if its key has gone stale since (the stored one is rewrapped by
    // the rotation).
    if let Some(row) = app.store.file(space, id).await.map_err(HttpError::store)? {
        return existing(&row, record);
    }
    if shared {
        crate::session::check_epoch(&app.store, space, std::iter::once(&dek)).await?;
    }
    let limit = app.limits.max_file_size;
    if content_length(headers)?.is_some_and(|len| len > limit) {
        return Err(HttpError::too_large(limit));
    }

    let object = FileObject {
        space,
        id,
        upload: crate::random_uuid(),
    };
    let Some(body) = body.take() else {
        return Err(HttpError::internal("the request body was taken"));
    };
    let size = receive(app, &object, body).await?;
    let file = NewFile {
        id,
        record,
        size,
        dek,
        upload: object.upload,
        uploader: token.user,
    };
    let (prev, cursor) = match app.store.insert_file(space, &file).await {
        Ok(FileInsert::Inserted { prev, cursor }) => (prev, cursor),
        Ok(FileInsert::Exists(row)) => {
            // Lost a race with another PUT of this file.
            discard(app, &object).await;
            return existing(&row, record);
        }
        Ok(FileInsert::RecordDeleted) => {
            discard(app, &object).await;
            return Err(HttpError::new(
                StatusCode::CONFLICT,
                ErrorCode::Conflict,
                "the record this file belongs to is deleted",
            ));
        }
        Err(e) => {
            discard(app, &object).await;
            return Err(HttpError::store(e));
        }
    };
    app.metrics.file_uploads.fetch_add(1, Ordering::Relaxed);
    let row = FileRow {
        id,
        record,
        cursor,
        size,
        dek: file.dek,
        upload: object.upload,
    };
    announce(app, space, prev, &row);
    tracing::debug!(%space, file = %id, size, cursor, "file stored");
    Ok(stored(StatusCode::CREATED, &row, Some(prev)))
}

/// Deletes an upload that was recorded nowhere (the sweep takes it if this
/// fails).
async fn discard(app: &AppState, object: &FileObject) {
    if let Err(e) = app.files.delete(object).await {
        tracing::warn!(space = %object.space, file = %object.id, error = %e, "cannot delete an unrecorded upload");
    }
}

/// Streams the request body into a new object, enforcing the size limit.
/// Returns the body's length once the object is complete; on any failure
/// the object is abandoned.
async fn receive(app: &AppState, object: &FileObject, body: Body) -> Result<u64> {
    let limit = app.limits.max_file_size;
    let mut upload = app.files.begin(object);
    let mut body = body.into_data_stream();
    let mut size = 0u64;
    loop {
        let next = match tokio::time::timeout(BODY_IDLE_TIMEOUT, body.next()).await {
            Ok(next) => next,
            Err(_) => {
                upload.abort().await;
                return Err(HttpError::new(
                    StatusCode::REQUEST_TIMEOUT,
                    ErrorCode::BadRequest,
                    "the request body stalled",
                ));
            }
        };
        let bytes = match next {
            None => break,
            Some(Ok(bytes)) => bytes,
            Some(Err(e)) => {
                upload.abort().await;
                tracing::debug!(error = %e, "upload body failed");
                return Err(HttpError::bad_request("the request body failed"));
            }
        };
        let len = bytes.len() as u64;
        size = size.saturating_add(len);
        if size > limit {
            upload.abort().await;
            return Err(HttpError::too_large(limit));
        }
        app.metrics.file_bytes_in.fetch_add(len, Ordering::Relaxed);
        if let Err(e) = upload.write(bytes).await {
            upload.abort().await;
            return Err(HttpError::objects(&e));
        }
    }
    if let Err(e) = upload.finish().await {
        // Complete or not, nothing may stay (e.g. a failed fsync).
        discard(app, object).await;
        return Err(HttpError::objects(&e));
    }
    Ok(size)
}

/// Sends `file` to the space's subscribers here (other instances read it
/// back from the signal the insert sent).
fn announce(app: &AppState, space: Uuid, prev: u64, row: &FileRow) {
    let notification = Notification::File(FileNotification {
        space,
        prev,
        cursor: row.cursor,
        file: row.meta(),
    });
    match Frame::notification(&notification).and_then(|f| f.encode()) {
        // An HTTP upload has no connection to skip: the uploader's own
        // sockets hear of it too.
        Ok(bytes) => app.hub.publish(space, &Bytes::from(bytes), None),
        Err(e) => tracing::warn!(error = %e, "file notification not sent"),
    }
    app.hub.observe(space, row.cursor);
}

/// Deletes the objects of files whose rows are gone, in the background;
/// failures are logged and left to the sweep.
pub(crate) fn delete_later(app: &Arc<AppState>, objects: Vec<FileObject>) {
    if objects.is_empty() {
        return;
    }
    let app = app.clone();
    tokio::spawn(async move {
        for object in objects {
            match app.files.delete(&object).await {
                Ok(()) => {
                    app.metrics
                        .file_objects_deleted
                        .fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => tracing::warn!(
                    space = %object.space,
                    file = %object.id,
                    error = %e,
                    "cannot delete a deleted record's file; the sweep will retry"
                ),
            }
        }
    });
}

/// What GET and HEAD resolve before sending anything.
struct Found {
    row: FileRow,
    object: FileObject,
    range: Option<std::ops::Range<u64>>,
}

/// Authorizes a read and resolves conditional and range headers. `Err`
/// carries a complete response (an error, or 304).
async fn find(
    app: &AppState,
    path: Path<(String, String)>,
    headers: &HeaderMap,
) -> std::result::Result<Found, Response> {
    let fail = |e: HttpError| e.into_response();
    let (space, id) = ids(path).map_err(fail)?;
    let token = authenticate(app, headers).await.map_err(fail)?;
    authorize(app, &token, space, headers, Capability::Read)
        .await
        .map_err(fail)?;
    let row = app
        .store
        .file(space, id)
        .await
        .map_err(|e| fail(HttpError::store(e)))?
        .ok_or_else(|| fail(HttpError::not_found("no such file")))?;
    let tag = etag(&row);
    if let Some(value) = text(headers, header::IF_NONE_MATCH.as_str()).map_err(fail)?
        && matches_etag(value, &tag)
    {
        let mut response = StatusCode::NOT_MODIFIED.into_response();
        describe(response.headers_mut(), &row);
        return Err(response);
    }
    // A Range applies only while the If-Range validator still matches.
    let if_range = text(headers, header::IF_RANGE.as_str()).map_err(fail)?;
    let range_header = match if_range {
        Some(value) if value.trim() != tag => None,
        _ => headers.get(header::RANGE).map(HeaderValue::as_bytes),
    };
    let range = match range::parse(range_header, row.size) {
        Ranged::Whole => None,
        Ranged::Part(range) => Some(range),
        Ranged::Unsatisfiable => {
            let mut error = HttpError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                ErrorCode::BadRequest,
                format!("the range is not within the file's {} bytes", row.size),
            );
            error.size = Some(row.size);
            return Err(fail(error));
        }
    };
    let object = FileObject {
        space,
        id,
        upload: row.upload,
    };
    Ok(Found { row, object, range })
}

/// Status and headers of a GET or HEAD answer.
fn head_of(found: &Found) -> Response {
    let mut response = Response::new(Body::empty());
    let headers = response.headers_mut();
    describe(headers, &found.row);
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    let length = match &found.range {
        Some(range) => {
            *response.status_mut() = StatusCode::PARTIAL_CONTENT;
            response.headers_mut().insert(
                header::CONTENT_RANGE,
                header_value(format!(
                    "bytes {}-{}/{}",
                    range.start,
                    range.end.saturating_sub(1),
                    found.row.size
                )),
            );
            range.end - range.start
        }
        None => found.row.size,
    };
    response
        .headers_mut()
        .insert(header::CONTENT_LENGTH, header_value(length));
    response
}

/// `GET /api/v1/spaces/{space}/files/{file}`: the file's bytes (or the
/// requested range), streamed from the object store.
pub(crate) async fn get(
    State(app): State<Arc<AppState>>,
    path: Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    app.metrics.file_gets.fetch_add(1, Ordering::Relaxed);
    let found = match find(&app, path, &headers).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let stream = match app.files.read(&found.object, found.range.clone()).await {
        Ok(stream) => stream,
        Err(object_store::Error::NotFound { .. }) => {
            // Deleted with its record since the row was read, or lost.
            let still = app.store.file(found.object.space, found.object.id).await;
            if matches!(still, Ok(Some(_))) {
                tracing::error!(
                    space = %found.object.space,
                    file = %found.object.id,
                    "a stored file's object is missing"
                );
                return HttpError::internal("the file's bytes are missing").into_response();
            }
            return HttpError::not_found("no such file").into_response();
        }
        Err(e) => return HttpError::objects(&e).into_response(),
    };
    let counted = app.clone();
    let stream = stream.inspect_ok(move |chunk| {
        counted
            .metrics
            .file_bytes_out
            .fetch_add(chunk.len() as u64, Ordering::Relaxed);
    });
    let mut response = head_of(&found);
    *response.body_mut() = Body::from_stream(stream);
    response
}

/// `HEAD /api/v1/spaces/{space}/files/{file}`: GET's status and headers
/// (length, key, record, cursor, ETag) without touching the object.
pub(crate) async fn head(
    State(app): State<Arc<AppState>>,
    path: Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    app.metrics.file_heads.fetch_add(1, Ordering::Relaxed);
    match find(&app, path, &headers).await {
        Ok(found) => head_of(&found),
        Err(response) => response,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags_match_strongly_weakly_and_by_star() {
        let tag = "\"abc\"";
        assert!(matches_etag("\"abc\"", tag));
        assert!(matches_etag("\"x\", W/\"abc\"", tag));
        assert!(matches_etag("*", tag));
        assert!(!matches_etag("\"abd\"", tag));
        assert!(!matches_etag("abc", tag));
    }

    #[test]
    fn error_codes_map_to_statuses() {
        assert_eq!(status_of(&ErrorCode::StaleEpoch), StatusCode::CONFLICT);
        assert_eq!(status_of(&ErrorCode::Forbidden), StatusCode::FORBIDDEN);
        assert_eq!(
            status_of(&ErrorCode::PayloadTooLarge),
            StatusCode::PAYLOAD_TOO_LARGE
        );
        assert_eq!(
            status_of(&ErrorCode::RateLimited),
            StatusCode::TOO_MANY_REQUESTS
        );
        assert_eq!(
            status_of(&ErrorCode::Other("x".into())),
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }
}
