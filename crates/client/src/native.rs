//! Native runtime pieces (feature `native`): a WebSocket transport over
//! tokio-tungstenite, the system clock and randomness, and a thread to run
//! the engine on.

use std::time::{SystemTime, UNIX_EPOCH};

use futures::{SinkExt, StreamExt};
use sealbase_crypto::{OsRng, RngCore};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

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
