//! Test harness: a real server on a real socket, on either backend, and a
//! protocol v1 client over tokio-tungstenite.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use sealbase_crypto::Identity;
use sealbase_protocol::{
    AuthParams, CallResult, ClientRequest, Frame, Method, Notification, PullChunk, RawResponse,
    Session, Uuid,
};
use sealbase_sync::store::Store;
use sealbase_sync::testing::{TestClaims, TestIssuer};
use sealbase_sync::{Limits, RunningServer, Settings};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Which database a test runs on.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Backend {
    Sqlite,
    Postgres,
}

/// A fresh, migrated store.
pub(crate) async fn store(backend: Backend, name: &str) -> (Store, Option<TempDir>) {
    let mut temp = None;
    let url = match backend {
        Backend::Sqlite => {
            let dir = std::env::temp_dir().join(format!(
                "sealbase-sync-test-{}-{name}-{}",
                std::process::id(),
                Uuid::from_u128(rand_u128()).simple()
            ));
            let url = format!("sqlite://{}/sync.db", dir.display());
            temp = Some(TempDir(dir));
            url
        }
        Backend::Postgres => sealbase_pgtest::database(name).url(),
    };
    let store = Store::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    (store, temp)
}

/// A directory removed when the test ends.
pub(crate) struct TempDir(std::path::PathBuf);

impl TempDir {
    pub(crate) fn new(path: std::path::PathBuf) -> Self {
        Self(path)
    }

    pub(crate) fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn rand_u128() -> u128 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(1);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    nanos ^ u128::from(N.fetch_add(1, Ordering::Relaxed)) << 64
}

/// A server and the issuer whose tokens it trusts.
pub(crate) struct TestServer {
    pub(crate) server: RunningServer,
    pub(crate) issuer: TestIssuer,
    /// The database this server uses (another server can share it).
    pub(crate) store: Store,
    /// The directory holding this server's file bytes.
    pub(crate) files_dir: std::path::PathBuf,
    _dir: Option<TempDir>,
    _files: Option<TempDir>,
}

impl TestServer {
    pub(crate) async fn start(backend: Backend, name: &str) -> Self {
        Self::start_with(backend, name, Limits::default()).await
    }

    pub(crate) async fn start_with(backend: Backend, name: &str, limits: Limits) -> Self {
        let issuer = TestIssuer::generate("test-key-1").unwrap();
        let (store, dir) = store(backend, name).await;
        let mut server = Self::start_on(store, issuer, limits).await;
        server._dir = dir;
        server
    }

    /// Another server instance on the same database, trusting the same
    /// issuer (as a second process behind a load balancer would).
    pub(crate) async fn start_on(store: Store, issuer: TestIssuer, limits: Limits) -> Self {
        let files_dir = std::env::temp_dir().join(format!(
            "sealbase-sync-files-{}-{}",
            std::process::id(),
            Uuid::from_u128(rand_u128()).simple()
        ));
        let files = sealbase_sync::files::FileStorage::local(&files_dir).unwrap();
        let mut server = Self::start_with_files(store, issuer, limits, files, Vec::new()).await;
        server._files = Some(TempDir(files_dir.clone()));
        server.files_dir = files_dir;
        server
    }

    /// A server keeping file bytes in `files` (`files_dir` stays empty),
    /// answering CORS for `cors_origins`.
    pub(crate) async fn start_with_files(
        store: Store,
        issuer: TestIssuer,
        limits: Limits,
        files: sealbase_sync::files::FileStorage,
        cors_origins: Vec<String>,
    ) -> Self {
        let verifier = issuer.verifier().unwrap();
        let server = sealbase_sync::start(Settings {
            listen: "127.0.0.1:0".parse().unwrap(),
            store: store.clone(),
            verifier,
            files,
            limits,
            cors_origins,
        })
        .await
        .unwrap();
        Self {
            server,
            issuer,
            store,
            files_dir: std::path::PathBuf::new(),
            _files: None,
            _dir: None,
        }
    }

    /// Shuts the server down as its binary does on SIGTERM: sockets closed
    /// with 1001 and drained, then the store closed. Gives back the SQLite
    /// database's directory, kept until the guard drops.
    pub(crate) async fn shut_down(self) -> Option<TempDir> {
        self.server.shutdown().await.unwrap();
        self.store.close().await;
        self._dir
    }

    pub(crate) fn url(&self) -> String {
        format!(
            "ws://{}{}",
            self.server.local_addr(),
            sealbase_protocol::WS_PATH
        )
    }

    pub(crate) fn http(&self, path: &str) -> String {
        format!("http://{}{}", self.server.local_addr(), path)
    }

    /// A new user with a valid token for one hour.
    pub(crate) fn user(&self, seed: u64) -> User {
        let identity = Identity::generate(&mut ChaCha20Rng::seed_from_u64(seed));
        User {
            id: Uuid::from_u128(u128::from(seed) << 64 | 1),
            personal_space: Uuid::from_u128(u128::from(seed) << 64 | 2),
            identity,
        }
    }

    pub(crate) fn token(&self, user: &User, expires_in: u64) -> String {
        mint(&self.issuer, user, now() + expires_in)
    }

    /// Connects and authenticates `user`.
    pub(crate) async fn client(&self, user: &User) -> (Client, Session) {
        let mut client = Client::connect(&self.url()).await;
        let session = client.auth(&self.token(user, 3600)).await.unwrap();
        (client, session)
    }
}

/// A token for `user` from `issuer`, valid until `expires_at`.
pub(crate) fn mint(issuer: &TestIssuer, user: &User, expires_at: u64) -> String {
    let claims = TestClaims {
        user: user.id,
        personal_space: user.personal_space,
        did: user.identity.did(),
        issued_at: now().min(expires_at),
        expires_at,
        ..TestClaims::new(now())
    };
    issuer.mint(&claims).unwrap()
}

pub(crate) struct User {
    pub(crate) id: Uuid,
    pub(crate) personal_space: Uuid,
    pub(crate) identity: Identity,
}

pub(crate) fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// What arrived on a client socket.
#[derive(Debug)]
pub(crate) enum Incoming {
    Response(RawResponse),
    Notification(Notification),
    Chunk(u32, PullChunk),
    Closed(Option<u16>),
}

pub(crate) struct Client {
    pub(crate) ws: Ws,
    next_id: u32,
}

impl Client {
    pub(crate) async fn connect(url: &str) -> Self {
        let mut request = url.into_client_request().unwrap();
        request.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            sealbase_protocol::SUBPROTOCOL.parse().unwrap(),
        );
        // tungstenite zeroes its read buffer before every read: the 128 KiB
        // default costs more than the frames a test reads (a notification
        // is about 1 KiB; larger frames take a few reads).
        let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
            .read_buffer_size(4 * 1024);
        let (ws, response) =
            tokio_tungstenite::connect_async_with_config(request, Some(config), true)
                .await
                .unwrap();
        assert_eq!(
            response.headers().get("sec-websocket-protocol").unwrap(),
            sealbase_protocol::SUBPROTOCOL
        );
        Self { ws, next_id: 1 }
    }

    pub(crate) async fn send_raw(&mut self, bytes: Vec<u8>) {
        self.ws.send(Message::Binary(bytes.into())).await.unwrap();
    }

    /// Sends a request, returns its id.
    pub(crate) async fn send(&mut self, request: impl Into<ClientRequest>) -> u32 {
        let id = self.next_id;
        self.next_id += 1;
        let frame = Frame::request(id, &request.into()).unwrap();
        self.send_raw(frame.encode().unwrap()).await;
        id
    }

    /// The next frame or close, within 10 s.
    pub(crate) async fn next(&mut self) -> Incoming {
        loop {
            let msg = tokio::time::timeout(Duration::from_secs(10), self.ws.next())
                .await
                .expect("nothing arrived within 10 s");
            match msg {
                Some(Ok(Message::Binary(bytes))) => {
                    return match sealbase_protocol::decode(&bytes).unwrap() {
                        Frame::Response(r) => Incoming::Response(r),
                        Frame::Notification(n) => {
                            Incoming::Notification(Notification::from_raw(&n).unwrap())
                        }
                        Frame::Chunk(c) => Incoming::Chunk(c.id, PullChunk::from_raw(&c).unwrap()),
                        Frame::Request(_) => panic!("server sent a request"),
                    };
                }
                Some(Ok(Message::Close(frame))) => {
                    return Incoming::Closed(frame.map(|f| u16::from(f.code)));
                }
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return Incoming::Closed(None),
            }
        }
    }

    /// Sends a request and waits for its response, skipping notifications.
    pub(crate) async fn call(
        &mut self,
        request: impl Into<ClientRequest>,
    ) -> Result<CallResult, sealbase_protocol::ErrorBody> {
        let request = request.into();
        let method = request.method();
        let id = self.send(request).await;
        self.response(id, method).await
    }

    pub(crate) async fn response(
        &mut self,
        id: u32,
        method: Method,
    ) -> Result<CallResult, sealbase_protocol::ErrorBody> {
        loop {
            match self.next().await {
                Incoming::Response(r) if r.id == id => {
                    return r
                        .outcome
                        .map(|raw| CallResult::from_raw(method, &raw).unwrap());
                }
                Incoming::Closed(code) => panic!("closed ({code:?}) while waiting for {id}"),
                _ => continue,
            }
        }
    }

    pub(crate) async fn auth(
        &mut self,
        token: &str,
    ) -> Result<Session, sealbase_protocol::ErrorBody> {
        match self
            .call(AuthParams {
                token: token.to_owned(),
            })
            .await?
        {
            CallResult::Auth(session) => Ok(session),
            other => panic!("unexpected {other:?}"),
        }
    }

    /// Subscribes to one space (with its capability, if shared) and returns
    /// the `subscribe` result, whatever it granted or denied.
    pub(crate) async fn subscribe(
        &mut self,
        space: Uuid,
        cap: Option<String>,
    ) -> sealbase_protocol::Subscribed {
        let r = self
            .call(sealbase_protocol::SubscribeParams {
                spaces: vec![sealbase_protocol::SpaceRef { id: space, cap }],
            })
            .await
            .unwrap();
        match r {
            CallResult::Subscribe(subscribed) => subscribed,
            other => panic!("unexpected {other:?}"),
        }
    }

    /// Reads until the server closes; returns the close code.
    pub(crate) async fn closed(&mut self) -> Option<u16> {
        loop {
            if let Incoming::Closed(code) = self.next().await {
                return code;
            }
        }
    }

    /// The next notification, skipping responses and chunks.
    pub(crate) async fn notification(&mut self) -> Notification {
        loop {
            match self.next().await {
                Incoming::Notification(n) => return n,
                Incoming::Closed(code) => panic!("closed ({code:?}) while waiting"),
                _ => continue,
            }
        }
    }
}

/// Declares one async scenario as a test per backend.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::Backend::Sqlite).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::Backend::Postgres).await;
                }
            )*
        }
    };
}

/// A minimal HTTP/1.1 GET over a raw socket: the whole response.
pub(crate) async fn http_get(url: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_once('/').unwrap();
    let mut s = tokio::net::TcpStream::connect(host).await.unwrap();
    s.write_all(
        format!("GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}
