//! File transfers in the browser: the client crate's requests and
//! sealing (`sealbase_client::files`) over `fetch`.
//!
//! An upload reads the app's `Blob` a chunk at a time and seals each
//! chunk as it goes; the sealed pieces become the parts of a new `Blob`,
//! which the browser sends with its length (Chromium streams request
//! bodies only over HTTP/2, so a `ReadableStream` body is not an option
//! on a plain development server). A download reads the answer's stream
//! and opens each chunk as it completes, so no ciphertext is held beyond
//! one chunk and nothing unverified reaches the page; the plaintext
//! chunks become the parts of the `Blob` handed back.

use sealbase_client::SyncError;
use sealbase_client::files::{FileAccess, Header, Opening, http_error};
use sealbase_crypto::file::{FILE_CHUNK_LEN, file_chunk_count, sealed_file_len};
use sealbase_protocol::FILE_KEY_HEADER;
use uuid::Uuid;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

use super::json::thrown_text;

#[wasm_bindgen]
extern "C" {
    /// The global `fetch` (window or worker).
    #[wasm_bindgen(js_name = fetch)]
    fn fetch_request(request: &web_sys::Request) -> js_sys::Promise;
}

fn transport(e: JsValue) -> SyncError {
    SyncError::Transport(sealbase_client::TransportError(thrown_text(
        &e,
        "the browser refused the request",
    )))
}

async fn fetch(
    method: &str,
    url: &str,
    headers: &[Header],
    body: Option<&web_sys::Blob>,
) -> Result<web_sys::Response, SyncError> {
    let init = web_sys::RequestInit::new();
    init.set_method(method);
    let h = web_sys::Headers::new().map_err(transport)?;
    for (name, value) in headers {
        h.set(name, value).map_err(transport)?;
    }
    init.set_headers(&h);
    if let Some(body) = body {
        init.set_body(body);
    }
    // Tokens travel in a header; cookies are never needed.
    init.set_credentials(web_sys::RequestCredentials::Omit);
    let request = web_sys::Request::new_with_str_and_init(url, &init).map_err(transport)?;
    let response = JsFuture::from(fetch_request(&request))
        .await
        .map_err(transport)?;
    Ok(response.unchecked_into())
}

/// A refused answer as the protocol's error.
async fn refused(method: &'static str, response: &web_sys::Response) -> SyncError {
    let body = match response.array_buffer() {
        Ok(promise) => JsFuture::from(promise)
            .await
            .map(|b| js_sys::Uint8Array::new(&b).to_vec())
            .unwrap_or_default(),
        Err(_) => Vec::new(),
    };
    http_error(method, response.status(), &body)
}

/// Uploads `body` as a new file of `record` (its space's access) and
/// returns the file id.
pub(super) async fn upload(
    access: &FileAccess,
    record: Uuid,
    body: &web_sys::Blob,
) -> Result<Uuid, SyncError> {
    let mut upload = access.upload(record)?;
    // Blob sizes are whole numbers of bytes below 2^53.
    let len = body.size() as u64;
    let chunks = file_chunk_count(sealed_file_len(len))
        .map_err(|e| SyncError::Refused(format!("the file is too large: {e}")))?;
    let parts = js_sys::Array::new();
    parts.push(&js_sys::Uint8Array::from(&upload.sealer.header()[..]));
    for index in 0..chunks {
        let start = index * FILE_CHUNK_LEN as u64;
        let end = (start + FILE_CHUNK_LEN as u64).min(len);
        let slice = body
            .slice_with_f64_and_f64(start as f64, end as f64)
            .map_err(transport)?;
        let plain = JsFuture::from(slice.array_buffer())
            .await
            .map_err(transport)?;
        let plain = js_sys::Uint8Array::new(&plain).to_vec();
        if plain.len() as u64 != end - start {
            return Err(SyncError::Refused(
                "the file changed while it was read".into(),
            ));
        }
        let sealed = upload
            .sealer
            .seal_chunk(&plain, index + 1 == chunks)
            .map_err(|e| SyncError::Refused(format!("cannot seal the file: {e}")))?;
        parts.push(&js_sys::Uint8Array::from(&sealed[..]));
    }
    let bag = web_sys::BlobPropertyBag::new();
    bag.set_type("application/octet-stream");
    let sealed =
        web_sys::Blob::new_with_u8_array_sequence_and_options(&parts, &bag).map_err(transport)?;
    let response = fetch("PUT", &upload.url, &upload.headers, Some(&sealed)).await?;
    if !response.ok() {
        return Err(refused("file.put", &response).await);
    }
    Ok(upload.file)
}

/// Downloads `file` of the access's space, opened, as a `Blob` of MIME
/// type `kind` (empty: none).
pub(super) async fn download(
    access: &FileAccess,
    file: Uuid,
    kind: &str,
) -> Result<web_sys::Blob, SyncError> {
    let response = fetch("GET", &access.file_url(&file), &access.headers(), None).await?;
    if !response.ok() {
        return Err(refused("file.get", &response).await);
    }
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .ok()
            .flatten()
            .ok_or_else(|| SyncError::Protocol(format!("the answer has no {name} header")))
    };
    let sealed_len: u64 = header("content-length")?
        .trim()
        .parse()
        .map_err(|_| SyncError::Protocol("the Content-Length is not a number".into()))?;
    let mut opening = Opening::new(access, file, &header(FILE_KEY_HEADER)?, sealed_len)?;
    let parts = js_sys::Array::new();
    let push = |plain: Vec<sealbase_client::files::Plain>| {
        for chunk in plain {
            parts.push(&js_sys::Uint8Array::from(&chunk[..]));
        }
    };
    let body = response
        .body()
        .ok_or_else(|| SyncError::Protocol("the answer has no body".into()))?;
    let reader: web_sys::ReadableStreamDefaultReader = body.get_reader().unchecked_into();
    loop {
        let next = JsFuture::from(reader.read()).await.map_err(transport)?;
        let done = js_sys::Reflect::get(&next, &"done".into())
            .map_err(transport)?
            .is_truthy();
        if done {
            break;
        }
        let value = js_sys::Reflect::get(&next, &"value".into()).map_err(transport)?;
        let piece = js_sys::Uint8Array::new(&value).to_vec();
        push(opening.feed(&piece)?);
    }
    push(opening.finish()?);
    let bag = web_sys::BlobPropertyBag::new();
    bag.set_type(kind);
    web_sys::Blob::new_with_u8_array_sequence_and_options(&parts, &bag).map_err(transport)
}
