//! The WebSocket under a connection: the HTTP/1.1 upgrade (RFC 6455 §4.2)
//! and the byte stream the WebSocket codec writes to.
//!
//! The codec (tungstenite) hands every frame to the stream as a write of its
//! own. On a bare TCP socket each of those writes is a system call and, on
//! loopback, a pass through both ends' TCP stacks: a pull of 20,000 records
//! cost 20,000 `sendto` calls. [`Coalesced`] gathers the writes between two
//! flushes into one buffer of up to [`COALESCE_BYTES`] and writes it at once;
//! the connection's writer flushes after each batch it takes from the
//! outbox, so a burst of frames leaves in a few large writes and a single
//! notification still leaves at once. The buffer is freed whenever it has
//! been written out, so an idle socket holds none.
//!
//! axum's own upgrade extractor cannot be given such a stream, hence the
//! upgrade here: the same checks, and the accept key from tungstenite.
//!
//! The codec copies each outgoing frame into a write buffer of its own,
//! which keeps the capacity of the largest frame for the connection's life.
//! A message larger than [`FRAGMENT_BYTES`] therefore leaves as fragments
//! of that size ([`messages`], RFC 6455 §5.4): a 4 MiB `sync` notification
//! to a thousand subscribers would otherwise leave 4 MiB behind in each.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use sealbase_protocol::MAX_FRAME_LEN;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

use crate::server::AppState;

/// The largest WebSocket frame the server writes; longer messages are
/// fragmented.
pub(crate) const FRAGMENT_BYTES: usize = 16 << 10;

/// A connection's WebSocket.
pub(crate) type Socket = WebSocketStream<Coalesced<TokioIo<hyper::upgrade::Upgraded>>>;

/// Bytes gathered before they are written without waiting for a flush: the
/// most a loopback or LAN segment carries at once.
pub(crate) const COALESCE_BYTES: usize = 64 << 10;

/// `GET /api/v1/ws`: upgrades to a protocol v1 connection.
///
/// Refusals, before any socket exists: 400 for a request that is not a
/// WebSocket handshake or does not offer the `sealbase.v1` subprotocol, 426
/// (with `Sec-WebSocket-Version: 13`) for another protocol version or a
/// connection that cannot be upgraded (not HTTP/1.1).
pub(crate) async fn upgrade(State(app): State<Arc<AppState>>, mut req: Request) -> Response {
    let key = match check_handshake(req.headers()) {
        Ok(key) => key,
        Err((status, reason)) => return refusal(status, reason),
    };
    let Some(on_upgrade) = req.extensions_mut().remove::<OnUpgrade>() else {
        return refusal(
            StatusCode::UPGRADE_REQUIRED,
            "this connection cannot be upgraded to a WebSocket",
        );
    };
    let config = WebSocketConfig::default()
        .read_buffer_size(app.limits.read_buffer)
        // Every frame goes straight to `Coalesced`, which does the batching
        // and frees its buffer once written (tungstenite's own write buffer
        // would keep its largest size for the socket's lifetime).
        .write_buffer_size(0)
        .max_message_size(Some(MAX_FRAME_LEN))
        .max_frame_size(Some(MAX_FRAME_LEN));
    // Counted from here: shutdown waits for a session whose upgrade it
    // finds under way.
    let live = app.live.enter();
    tokio::spawn(async move {
        let _live = live;
        let upgraded = match on_upgrade.await {
            Ok(upgraded) => upgraded,
            Err(e) => {
                tracing::debug!(error = %e, "WebSocket upgrade failed");
                return;
            }
        };
        let io = Coalesced::new(TokioIo::new(upgraded));
        let socket = WebSocketStream::from_raw_socket(io, Role::Server, Some(config)).await;
        super::run(app, socket).await;
    });
    let mut response = StatusCode::SWITCHING_PROTOCOLS.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(header::SEC_WEBSOCKET_ACCEPT, key);
    headers.insert(
        header::SEC_WEBSOCKET_PROTOCOL,
        HeaderValue::from_static(sealbase_protocol::SUBPROTOCOL),
    );
    response
}

/// The checks of RFC 6455 §4.2.1 and the subprotocol; the value of
/// `Sec-WebSocket-Accept` if they pass, the refusal if not.
fn check_handshake(headers: &HeaderMap) -> Result<HeaderValue, (StatusCode, &'static str)> {
    let bad = |reason: &'static str| (StatusCode::BAD_REQUEST, reason);
    let tokens = |name: header::HeaderName| {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect::<Vec<_>>()
    };
    if !tokens(header::CONNECTION)
        .iter()
        .any(|t| t.eq_ignore_ascii_case("upgrade"))
    {
        return Err(bad("a WebSocket handshake needs `Connection: upgrade`"));
    }
    if !tokens(header::UPGRADE)
        .iter()
        .any(|t| t.eq_ignore_ascii_case("websocket"))
    {
        return Err(bad("a WebSocket handshake needs `Upgrade: websocket`"));
    }
    if headers.get(header::SEC_WEBSOCKET_VERSION) != Some(&HeaderValue::from_static("13")) {
        return Err((
            StatusCode::UPGRADE_REQUIRED,
            "this server speaks WebSocket version 13",
        ));
    }
    // The key is 16 random bytes in base64 (§4.1); anything else is not a
    // client following the protocol.
    let key = headers
        .get(header::SEC_WEBSOCKET_KEY)
        .filter(|key| {
            base64::engine::general_purpose::STANDARD
                .decode(key.as_bytes())
                .is_ok_and(|nonce| nonce.len() == 16)
        })
        .ok_or_else(|| bad("a WebSocket handshake needs a Sec-WebSocket-Key of 16 bytes"))?;
    if !tokens(header::SEC_WEBSOCKET_PROTOCOL).contains(&sealbase_protocol::SUBPROTOCOL) {
        return Err(bad(
            "this endpoint speaks the WebSocket subprotocol sealbase.v1 only",
        ));
    }
    HeaderValue::from_str(&derive_accept_key(key.as_bytes()))
        .map_err(|_| bad("invalid Sec-WebSocket-Key"))
}

/// A refused handshake; 426 names the version this server speaks.
fn refusal(status: StatusCode, reason: &'static str) -> Response {
    let mut response = (status, reason).into_response();
    if status == StatusCode::UPGRADE_REQUIRED {
        response.headers_mut().insert(
            header::SEC_WEBSOCKET_VERSION,
            HeaderValue::from_static("13"),
        );
    }
    response
}

/// The WebSocket frames that carry one binary message: the message itself
/// up to [`FRAGMENT_BYTES`], else a binary frame and continuation frames of
/// that size, the last one final. The pieces share `bytes` (no copy).
pub(crate) fn messages(bytes: bytes::Bytes) -> impl Iterator<Item = Message> {
    let len = bytes.len();
    let pieces = len.div_ceil(FRAGMENT_BYTES).max(1);
    (0..pieces).map(move |i| {
        if pieces == 1 {
            return Message::Binary(bytes.clone());
        }
        let start = i * FRAGMENT_BYTES;
        let end = len.min(start + FRAGMENT_BYTES);
        let opcode = if i == 0 { Data::Binary } else { Data::Continue };
        Message::Frame(Frame::message(
            bytes.slice(start..end),
            OpCode::Data(opcode),
            i + 1 == pieces,
        ))
    })
}

/// A byte stream whose writes are gathered until a flush (or until
/// [`COALESCE_BYTES`] are waiting) and then written at once.
pub(crate) struct Coalesced<S> {
    inner: S,
    /// Bytes written to this stream and not yet to `inner`; empty and
    /// unallocated once written out.
    pending: Vec<u8>,
    /// How much of `pending` `inner` has taken.
    sent: usize,
}

impl<S> Coalesced<S> {
    pub(crate) fn new(inner: S) -> Self {
        Self {
            inner,
            pending: Vec::new(),
            sent: 0,
        }
    }
}

impl<S: AsyncWrite + Unpin> Coalesced<S> {
    /// Writes out everything pending, then frees the buffer.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.sent < self.pending.len() {
            let rest = self.pending.get(self.sent..).unwrap_or_default();
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, rest))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.sent += n;
        }
        self.pending = Vec::new();
        self.sent = 0;
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Coalesced<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.pending.len() + data.len() > COALESCE_BYTES {
            ready!(this.poll_drain(cx))?;
            if data.len() >= COALESCE_BYTES {
                // Large enough to go alone, without a copy.
                return Pin::new(&mut this.inner).poll_write(cx, data);
            }
        }
        this.pending.extend_from_slice(data);
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Coalesced<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Counts the writes that reach it.
    struct Counting {
        bytes: Vec<u8>,
        writes: usize,
        /// Bytes taken per write at most (a socket with little room).
        room: usize,
    }

    impl AsyncWrite for Counting {
        fn poll_write(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            data: &[u8],
        ) -> Poll<io::Result<usize>> {
            let n = data.len().min(self.room);
            self.bytes.extend_from_slice(&data[..n]);
            self.writes += 1;
            Poll::Ready(Ok(n))
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn writes_between_flushes_leave_together_and_in_order() {
        let mut io = Coalesced::new(Counting {
            bytes: Vec::new(),
            writes: 0,
            room: usize::MAX,
        });
        let frames: Vec<Vec<u8>> = (0..40u8).map(|i| vec![i; 1100]).collect();
        for frame in &frames {
            io.write_all(frame).await.unwrap();
        }
        // 40 × 1,100 bytes fit under the limit: nothing written yet.
        assert_eq!(io.inner.writes, 0);
        io.flush().await.unwrap();
        assert_eq!(io.inner.writes, 1);
        assert_eq!(io.inner.bytes, frames.concat());
        assert_eq!(io.pending.capacity(), 0, "the buffer is freed once written");

        // Past the limit, what is gathered goes out before more is taken;
        // a write as large as the limit goes alone.
        io.inner.bytes.clear();
        io.inner.writes = 0;
        let large = vec![7u8; COALESCE_BYTES];
        for frame in &frames[..30] {
            io.write_all(frame).await.unwrap();
        }
        io.write_all(&large).await.unwrap();
        io.write_all(&frames[0]).await.unwrap();
        io.flush().await.unwrap();
        assert_eq!(io.inner.writes, 3);
        let mut expected = frames[..30].concat();
        expected.extend_from_slice(&large);
        expected.extend_from_slice(&frames[0]);
        assert_eq!(io.inner.bytes, expected);
    }

    #[tokio::test]
    async fn partial_writes_resume_where_they_stopped() {
        let mut io = Coalesced::new(Counting {
            bytes: Vec::new(),
            writes: 0,
            room: 1000,
        });
        let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        for piece in data.chunks(700) {
            io.write_all(piece).await.unwrap();
        }
        io.flush().await.unwrap();
        assert_eq!(io.inner.bytes, data);
        assert_eq!(io.inner.writes, 10);
    }

    #[test]
    fn large_messages_leave_in_fragments() {
        let small = bytes::Bytes::from(vec![1u8; FRAGMENT_BYTES]);
        let out: Vec<Message> = messages(small.clone()).collect();
        assert_eq!(out, [Message::Binary(small)]);
        assert_eq!(messages(bytes::Bytes::new()).count(), 1);

        let large: Vec<u8> = (0..2 * FRAGMENT_BYTES + 100)
            .map(|i| (i % 253) as u8)
            .collect();
        let frames: Vec<Frame> = messages(bytes::Bytes::from(large.clone()))
            .map(|m| match m {
                Message::Frame(f) => f,
                other => panic!("expected a raw frame, got {other:?}"),
            })
            .collect();
        let shape: Vec<(OpCode, bool, usize)> = frames
            .iter()
            .map(|f| (f.header().opcode, f.header().is_final, f.payload().len()))
            .collect();
        assert_eq!(
            shape,
            [
                (OpCode::Data(Data::Binary), false, FRAGMENT_BYTES),
                (OpCode::Data(Data::Continue), false, FRAGMENT_BYTES),
                (OpCode::Data(Data::Continue), true, 100),
            ]
        );
        let joined: Vec<u8> = frames.iter().flat_map(|f| f.payload().to_vec()).collect();
        assert_eq!(joined, large);
    }

    #[tokio::test]
    async fn reads_pass_through() {
        let (client, server) = tokio::io::duplex(1024);
        let mut io = Coalesced::new(server);
        let mut client = client;
        client.write_all(b"hello").await.unwrap();
        let mut got = [0u8; 5];
        io.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"hello");
        io.write_all(b"world").await.unwrap();
        io.flush().await.unwrap();
        client.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"world");
    }
}
