//! Native runtime pieces (feature `native`): a WebSocket transport over
//! tokio-tungstenite, the system clock and randomness, a thread to run
//! the engine on, and file transfers over reqwest ([`FileClient`]).

use std::time::{SystemTime, UNIX_EPOCH};

use futures::{SinkExt, StreamExt};
use sealbase_crypto::{OsRng, RngCore};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use sealbase_crypto::file::{FILE_CHUNK_LEN, FILE_HEADER_LEN, SEALED_CHUNK_LEN};
use sealbase_protocol::{FILE_KEY_HEADER, Uuid};

use crate::error::SyncError;
use crate::files::{FileAccess, Opening, http_error};
use crate::transport::{Connector, Received, Runtime, Transport, TransportError};

/// The system clock, the OS's randomness and tokio's timers: the
/// environment of a native store and engine.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemEnv;

impl sealbase_db::Env for SystemEnv {
    fn now_ms(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    }

    fn fill_random(&self, buf: &mut [u8]) {
        OsRng.fill_bytes(buf);
    }
}

impl Runtime for SystemEnv {
    fn now_ms(&self) -> i64 {
        sealbase_db::Env::now_ms(self)
    }

    async fn sleep(&self, ms: u64) {
        tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
    }
}

/// Opens WebSockets with tokio-tungstenite.
#[derive(Debug, Clone, Copy, Default)]
pub struct WsConnector;

/// A tokio-tungstenite WebSocket.
pub struct WsTransport {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl std::fmt::Debug for WsTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WsTransport").finish_non_exhaustive()
    }
}

impl Connector for WsConnector {
    type Transport = WsTransport;

    async fn connect(&self, url: &str) -> Result<WsTransport, TransportError> {
        let mut request = url
            .into_client_request()
            .map_err(|e| TransportError(format!("bad sync URL {url:?}: {e}")))?;
        request.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            HeaderValue::from_static(sealbase_protocol::SUBPROTOCOL),
        );
        let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
            .max_message_size(Some(sealbase_protocol::MAX_FRAME_LEN))
            .read_buffer_size(64 * 1024);
        let (ws, response) =
            tokio_tungstenite::connect_async_with_config(request, Some(config), true)
                .await
                .map_err(|e| TransportError(format!("connecting to {url}: {e}")))?;
        let agreed = response
            .headers()
            .get("sec-websocket-protocol")
            .and_then(|v| v.to_str().ok());
        if agreed != Some(sealbase_protocol::SUBPROTOCOL) {
            return Err(TransportError(format!(
                "the server at {url} did not agree to subprotocol {}",
                sealbase_protocol::SUBPROTOCOL
            )));
        }
        Ok(WsTransport { ws })
    }
}

impl Transport for WsTransport {
    async fn send(&mut self, frame: Vec<u8>) -> Result<(), TransportError> {
        self.ws
            .send(Message::Binary(frame.into()))
            .await
            .map_err(|e| TransportError(e.to_string()))
    }

    async fn recv(&mut self) -> Result<Received, TransportError> {
        loop {
            // `next` is cancel-safe: a frame is only taken when returned.
            match self.ws.next().await {
                None => {
                    return Ok(Received::Closed {
                        code: None,
                        reason: "connection ended".into(),
                    });
                }
                Some(Err(e)) => return Err(TransportError(e.to_string())),
                Some(Ok(Message::Binary(bytes))) => return Ok(Received::Frame(bytes.into())),
                Some(Ok(Message::Close(frame))) => {
                    return Ok(Received::Closed {
                        code: frame.as_ref().map(|f| u16::from(f.code)),
                        reason: frame.map(|f| f.reason.to_string()).unwrap_or_default(),
                    });
                }
                Some(Ok(Message::Text(_))) => {
                    return Err(TransportError("text frame from the server".into()));
                }
                // Pings are answered by tungstenite itself.
                Some(Ok(_)) => {}
            }
        }
    }

    async fn close(&mut self) {
        let _ = self.ws.close(None).await;
    }
}

/// Runs `engine` on a new thread with its own single-threaded tokio
/// runtime; the thread ends when the engine stops.
pub fn spawn<F>(name: &str, engine: F) -> std::io::Result<std::thread::JoinHandle<()>>
where
    F: FnOnce() -> std::pin::Pin<Box<dyn std::future::Future<Output = ()>>> + Send + 'static,
{
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime.block_on(engine()),
                Err(e) => eprintln!("sealbase sync: cannot start a runtime: {e}"),
            }
        })
}

/// File transfers over HTTP with reqwest, streamed both ways: at most two
/// chunks of a file are in memory at once.
#[derive(Debug, Clone, Default)]
pub struct FileClient {
    http: reqwest::Client,
}

/// A file body being read and sealed chunk by chunk.
struct Sealing<R> {
    reader: R,
    sealer: sealbase_crypto::file::FileSealer,
    header: Option<Vec<u8>>,
    pending: Option<Vec<u8>>,
    done: bool,
}

impl<R: tokio::io::AsyncRead + Unpin> Sealing<R> {
    /// Reads up to a whole chunk (less only at the end).
    async fn read_chunk(&mut self) -> std::io::Result<Vec<u8>> {
        use tokio::io::AsyncReadExt;
        let mut chunk = vec![0u8; FILE_CHUNK_LEN];
        let mut filled = 0;
        while filled < FILE_CHUNK_LEN {
            let Some(rest) = chunk.get_mut(filled..) else {
                break;
            };
            let n = self.reader.read(rest).await?;
            if n == 0 {
                break;
            }
            filled += n;
        }
        chunk.truncate(filled);
        Ok(chunk)
    }

    fn seal(&mut self, plain: &[u8], last: bool) -> std::io::Result<Vec<u8>> {
        self.done = last;
        self.sealer
            .seal_chunk(plain, last)
            .map_err(|e| std::io::Error::other(e.to_string()))
    }

    /// The next piece of the sealed body: the header, then each chunk (a
    /// chunk is sealed once the next one shows whether it is the last).
    async fn next(&mut self) -> std::io::Result<Option<Vec<u8>>> {
        if self.done {
            return Ok(None);
        }
        if let Some(header) = self.header.take() {
            return Ok(Some(header));
        }
        loop {
            match self.pending.take() {
                Some(plain) if plain.len() < FILE_CHUNK_LEN => {
                    return self.seal(&plain, true).map(Some);
                }
                Some(plain) => {
                    let next = self.read_chunk().await?;
                    let last = next.is_empty();
                    if !last {
                        self.pending = Some(next);
                    }
                    return self.seal(&plain, last).map(Some);
                }
                None => self.pending = Some(self.read_chunk().await?),
            }
        }
    }
}

fn transport(e: impl std::fmt::Display) -> SyncError {
    SyncError::Transport(TransportError(e.to_string()))
}

fn header_text(response: &reqwest::Response, name: &str) -> Result<String, SyncError> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .ok_or_else(|| SyncError::Protocol(format!("the answer has no {name} header")))
}

impl FileClient {
    /// A client with reqwest's defaults.
    pub fn new() -> Self {
        Self::default()
    }

    fn request(
        &self,
        method: reqwest::Method,
        url: &str,
        headers: &[crate::files::Header],
    ) -> reqwest::RequestBuilder {
        let mut request = self.http.request(method, url);
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        request
    }

    async fn refused(method: &'static str, response: reqwest::Response) -> SyncError {
        let status = response.status().as_u16();
        let body = response.bytes().await.unwrap_or_default();
        http_error(method, status, &body)
    }

    /// Uploads `body` (read to its end) as a new file of `record` in the
    /// access's space and returns the file id. `len`, when known, is the
    /// plaintext length (sent as the sealed `Content-Length`; otherwise
    /// the body is chunked).
    pub async fn upload<R>(
        &self,
        access: &FileAccess,
        record: Uuid,
        body: R,
        len: Option<u64>,
    ) -> Result<Uuid, SyncError>
    where
        R: tokio::io::AsyncRead + Send + Unpin + 'static,
    {
        let upload = access.upload(record)?;
        let state = Sealing {
            reader: body,
            header: Some(upload.sealer.header().to_vec()),
            sealer: upload.sealer,
            pending: None,
            done: false,
        };
        let stream = futures::stream::try_unfold(state, |mut state| async move {
            Ok::<_, std::io::Error>(state.next().await?.map(|piece| (piece, state)))
        });
        let mut request = self
            .request(reqwest::Method::PUT, &upload.url, &upload.headers)
            .body(reqwest::Body::wrap_stream(stream));
        if let Some(len) = len {
            request = request.header(
                "content-length",
                sealbase_crypto::file::sealed_file_len(len),
            );
        }
        let response = request.send().await.map_err(transport)?;
        if !response.status().is_success() {
            return Err(Self::refused("file.put", response).await);
        }
        Ok(upload.file)
    }

    /// Uploads `bytes` as a new file of `record`.
    pub async fn upload_bytes(
        &self,
        access: &FileAccess,
        record: Uuid,
        bytes: Vec<u8>,
    ) -> Result<Uuid, SyncError> {
        let len = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
        self.upload(access, record, std::io::Cursor::new(bytes), Some(len))
            .await
    }

    /// Downloads `file`, opening it chunk by chunk into `out`; returns the
    /// plaintext length. Nothing unverified is written: each chunk is
    /// authenticated before it is.
    pub async fn download<W>(
        &self,
        access: &FileAccess,
        file: Uuid,
        out: &mut W,
    ) -> Result<u64, SyncError>
    where
        W: tokio::io::AsyncWrite + Unpin,
    {
        use tokio::io::AsyncWriteExt;
        let response = self
            .request(
                reqwest::Method::GET,
                &access.file_url(&file),
                &access.headers(),
            )
            .send()
            .await
            .map_err(transport)?;
        if !response.status().is_success() {
            return Err(Self::refused("file.get", response).await);
        }
        let sealed_len = response
            .content_length()
            .ok_or_else(|| SyncError::Protocol("the file has no Content-Length".into()))?;
        let mut opening = Opening::new(
            access,
            file,
            &header_text(&response, FILE_KEY_HEADER)?,
            sealed_len,
        )?;
        let mut written = 0u64;
        let mut stream = response.bytes_stream();
        while let Some(piece) = stream.next().await.transpose().map_err(transport)? {
            for plain in opening.feed(&piece)? {
                out.write_all(&plain).await.map_err(transport)?;
                written += plain.len() as u64;
            }
        }
        for plain in opening.finish()? {
            out.write_all(&plain).await.map_err(transport)?;
            written += plain.len() as u64;
        }
        out.flush().await.map_err(transport)?;
        Ok(written)
    }

    /// Downloads `file` whole into memory.
    pub async fn download_bytes(
        &self,
        access: &FileAccess,
        file: Uuid,
    ) -> Result<Vec<u8>, SyncError> {
        let mut out = Vec::new();
        self.download(access, file, &mut out).await?;
        Ok(out)
    }

    async fn get_range(
        &self,
        access: &FileAccess,
        file: Uuid,
        start: u64,
        end: u64,
    ) -> Result<reqwest::Response, SyncError> {
        let response = self
            .request(
                reqwest::Method::GET,
                &access.file_url(&file),
                &access.headers(),
            )
            .header("range", format!("bytes={start}-{}", end.saturating_sub(1)))
            .send()
            .await
            .map_err(transport)?;
        if response.status().as_u16() != 206 {
            return Err(Self::refused("file.get", response).await);
        }
        Ok(response)
    }

    /// Plaintext bytes `[start, end)` of `file` (clamped to its end),
    /// fetching only the chunks that cover them (two range requests: the
    /// file header, then the chunks).
    pub async fn read_range(
        &self,
        access: &FileAccess,
        file: Uuid,
        start: u64,
        end: u64,
    ) -> Result<Vec<u8>, SyncError> {
        let head = self
            .get_range(access, file, 0, FILE_HEADER_LEN as u64)
            .await?;
        let key = access.file_key(&header_text(&head, FILE_KEY_HEADER)?)?;
        let total = header_text(&head, "content-range")?
            .rsplit('/')
            .next()
            .and_then(|n| n.parse::<u64>().ok())
            .ok_or_else(|| SyncError::Protocol("a Content-Range without a size".into()))?;
        let header = head.bytes().await.map_err(transport)?;
        let opener = access.opener(&file, &key, &header)?;
        let span = sealbase_crypto::file::sealed_span(total, start, end)
            .map_err(|e| SyncError::Refused(format!("file {file}: {e}")))?;
        let body = self
            .get_range(access, file, span.start, span.end)
            .await?
            .bytes()
            .await
            .map_err(transport)?;
        let chunks = sealbase_crypto::file::file_chunk_count(total)
            .map_err(|e| SyncError::Protocol(format!("file {file}: {e}")))?;
        let mut plain = Vec::new();
        for (i, sealed) in body.chunks(SEALED_CHUNK_LEN).enumerate() {
            let index = span.first_chunk + i as u64;
            let opened = opener
                .open_chunk(index, sealed, index + 1 == chunks)
                .map_err(|e| SyncError::Refused(format!("file {file}: {e}")))?;
            plain.extend_from_slice(&opened);
        }
        let offset = span.first_chunk * FILE_CHUNK_LEN as u64;
        let from = usize::try_from(start.saturating_sub(offset)).unwrap_or(usize::MAX);
        let to = usize::try_from(end.saturating_sub(offset)).unwrap_or(usize::MAX);
        Ok(plain
            .get(from.min(plain.len())..to.min(plain.len()))
            .unwrap_or_default()
            .to_vec())
    }
}
