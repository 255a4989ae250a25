//! What the engine needs from the network: a way to open a WebSocket to
//! the sync server, and the socket itself (binary frames in and out).
//! Natively that is [`crate::native::WsConnector`]; in a browser worker, a
//! `WebSocket` binding implements the same traits.

use std::future::Future;

use sealbase_crypto::SignatureCheck;

/// Something that arrived on the socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// One binary frame (a CBOR protocol frame).
    Frame(Vec<u8>),
    /// The socket closed, with the peer's close code if it sent one.
    Closed {
        /// WebSocket close code (4000–4007 are the protocol's).
        code: Option<u16>,
        /// The close reason.
        reason: String,
    },
}

/// The socket failed (not a clean close).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("transport: {0}")]
pub struct TransportError(pub String);

/// An open WebSocket carrying protocol v1 frames.
pub trait Transport {
    /// Sends one binary frame.
    fn send(&mut self, frame: Vec<u8>) -> impl Future<Output = Result<(), TransportError>>;
    /// The next frame or the close. Must be cancel-safe: dropping the
    /// future before it completes loses nothing.
    fn recv(&mut self) -> impl Future<Output = Result<Received, TransportError>>;
    /// Closes the socket (normal closure).
    fn close(&mut self) -> impl Future<Output = ()>;
}

/// Opens sockets to the sync server.
pub trait Connector {
    /// The socket type.
    type Transport: Transport;
    /// Connects to `url` (`ws://` or `wss://…/api/v1/ws`) with subprotocol
    /// `sealbase.v1`.
    fn connect(&self, url: &str) -> impl Future<Output = Result<Self::Transport, TransportError>>;
}

/// The answer of [`Runtime::check_signatures`]: one flag per check, in
/// order, or `None` if the checker failed (the engine then checks them
/// itself).
pub type SignatureAnswer = futures::future::LocalBoxFuture<'static, Option<Vec<bool>>>;

/// The engine's clock and timers, and where pulled records' signatures
/// are checked.
pub trait Runtime {
    /// Unix milliseconds now.
    fn now_ms(&self) -> i64;
    /// Completes after `ms` milliseconds.
    fn sleep(&self, ms: u64) -> impl Future<Output = ()>;
    /// Starts checking `checks` somewhere else, so that the engine goes on
    /// decrypting and merging meanwhile (the browser SDK uses a second
    /// worker: the signature checks are a third of a cold sync there).
    /// `None`, the default, means the engine checks them itself, at once.
    /// Nothing of a record is applied before its check has passed.
    fn check_signatures(&self, checks: &[SignatureCheck]) -> Option<SignatureAnswer> {
        let _ = checks;
        None
    }
}

/// Where access tokens come from (the app's OAuth session: a refresh
/// token exchanged at the accounts server when the current one nears
/// expiry).
pub trait TokenSource {
    /// A valid access token for the sync server.
    fn access_token(&self) -> impl Future<Output = Result<String, String>>;
}
