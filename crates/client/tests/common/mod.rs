//! End-to-end harness: a real sync server (SQLite, on a real socket)
//! trusting a test issuer, and devices: a store file plus a sync engine on
//! its own thread, as a native app runs it.
#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sealbase_client::native::{SystemEnv, WsConnector, WsTransport, spawn};
use sealbase_client::spaces::{Invitee, SpaceStatus};
use sealbase_client::{
    Connector, Received, SyncConfig, SyncEngine, SyncHandle, SyncKeys, SyncStatus, TokenSource,
    Transport, TransportError,
};
use sealbase_crypto::{AppKey, Identity};
use sealbase_db::Db;
use sealbase_protocol::Uuid;
use sealbase_sync::testing::{TestClaims, TestIssuer};
use sealbase_sync::{Limits, RunningServer, Settings};
use serde_json::json;

pub fn now_s() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn unique() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}

/// Every file below `path`.
pub fn files_under(path: &std::path::Path) -> Vec<PathBuf> {
    if path.is_dir() {
        std::fs::read_dir(path)
            .unwrap()
            .flat_map(|e| files_under(&e.unwrap().path()))
            .collect()
    } else {
        vec![path.to_owned()]
    }
}

/// A directory removed at drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(what: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("sealbase-client-{what}-{}", unique()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A sync server on SQLite.
pub struct Server {
    pub server: RunningServer,
    pub issuer: TestIssuer,
    pub dir: TempDir,
}

impl Server {
    pub async fn start() -> Self {
        Self::start_at("127.0.0.1:0".parse().unwrap(), TempDir::new("server")).await
    }

    /// A server listening on `listen`, keeping its data in `dir`.
    pub async fn start_at(listen: std::net::SocketAddr, dir: TempDir) -> Self {
        let issuer = TestIssuer::generate("client-test").unwrap();
        Self::start_with(listen, dir, issuer).await
    }

    pub async fn start_with(
        listen: std::net::SocketAddr,
        dir: TempDir,
        issuer: TestIssuer,
    ) -> Self {
        let url = format!("sqlite://{}/sync.db", dir.0.display());
        let store = sealbase_sync::store::Store::connect(&url).await.unwrap();
        store.migrate().await.unwrap();
        let files = sealbase_sync::files::FileStorage::local(&dir.0.join("files")).unwrap();
        let server = sealbase_sync::start(Settings {
            listen,
            store,
            verifier: issuer.verifier().unwrap(),
            files,
            limits: Limits::default(),
            cors_origins: Vec::new(),
        })
        .await
        .unwrap();
        Self {
            server,
            issuer,
            dir,
        }
    }

    pub fn url(&self) -> String {
        format!(
            "ws://{}{}",
            self.server.local_addr(),
            sealbase_protocol::WS_PATH
        )
    }

    /// One device per user (store files `0.db`, `1.db`, … in `dir`), each
    /// live with nothing pending.
    pub async fn devices<const N: usize>(&self, dir: &TempDir, users: [&User; N]) -> [Device; N] {
        let devices = users.map(|u| {
            let n = u.personal_space.as_u128() >> 64;
            Device::start(&self.url(), &self.issuer, u, &dir.0.join(format!("{n}.db")))
        });
        for d in &devices {
            d.settled().await;
        }
        devices
    }

    /// The server's SQLite database (to tamper with, as a breached server would).
    pub fn db_path(&self) -> PathBuf {
        self.dir.0.join("sync.db")
    }
}

/// Someone to invite: the key directory's entry for `user`.
pub fn invitee(user: &User, handle: &str) -> Invitee {
    let identity = user.identity();
    Invitee {
        handle: handle.into(),
        did: identity.did(),
        x25519: identity.agreement_public(),
        mailbox: user.personal_space,
    }
}

pub async fn wait_status(device: &Device, space: Uuid, status: SpaceStatus) {
    device
        .wait(&format!("space {space} {status:?}"), |d| {
            d.handle
                .spaces()
                .unwrap()
                .iter()
                .any(|s| s.id == space && s.status == status)
        })
        .await;
}

/// Inserts a note into `space` and returns its id.
pub fn note_in(device: &Device, space: Uuid, title: &str) -> String {
    // One write: the engine never sees the record outside the space.
    device
        .handle
        .write(|db| {
            let v = db.insert("notes", json!({ "title": title }))?;
            let id = v["id"].as_str().unwrap_or_default().to_owned();
            db.assign_space(&id, &space.to_string())?;
            Ok(id)
        })
        .unwrap()
}

/// A user of the app: ids as the accounts server assigns them and the app
/// key every device of theirs receives.
#[derive(Clone)]
pub struct User {
    pub id: Uuid,
    pub personal_space: Uuid,
    pub app_key: [u8; 32],
}

impl User {
    pub fn new(seed: u8) -> Self {
        Self {
            id: Uuid::from_u128(u128::from(seed) << 64 | 1),
            personal_space: Uuid::from_u128(u128::from(seed) << 64 | 2),
            app_key: [seed; 32],
        }
    }

    pub fn keys(&self) -> SyncKeys {
        SyncKeys::from_app_key(&AppKey::from_bytes(self.app_key))
    }

    pub fn identity(&self) -> Identity {
        Identity::from_app_key(&AppKey::from_bytes(self.app_key))
    }
}

/// Mints a fresh token for the user at every call, `lifetime` seconds long.
#[derive(Clone)]
pub struct Tokens {
    pub issuer: Arc<TestIssuer>,
    pub user: User,
    pub lifetime: u64,
    pub minted: Arc<std::sync::atomic::AtomicU64>,
}

impl TokenSource for Tokens {
    async fn access_token(&self) -> Result<String, String> {
        self.minted
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let now = now_s();
        let claims = TestClaims {
            user: self.user.id,
            personal_space: self.user.personal_space,
            did: self.user.identity().did(),
            issued_at: now,
            expires_at: now + self.lifetime,
            ..TestClaims::new(now)
        };
        self.issuer.mint(&claims).map_err(|e| e.to_string())
    }
}

/// The app's collections.
pub fn define(db: &mut Db<SystemEnv>) {
    db.define(
        serde_json::from_value(json!({
            "name": "notes", "version": 1,
            "fields": {
                "title": {"type": "string"},
                "body": {"type": "text", "optional": true},
                "done": {"type": "boolean", "optional": true},
                "n": {"type": "integer", "optional": true}
            },
            "indexes": [{"fields": ["n"]}]
        }))
        .unwrap(),
    )
    .unwrap();
}

/// A device: a store file and a running engine.
pub struct Device {
    pub handle: SyncHandle<SystemEnv>,
    pub tokens: Tokens,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Device {
    /// Opens (or reopens) the store at `path` and starts syncing to `url`.
    pub fn start(url: &str, issuer: &TestIssuer, user: &User, path: &std::path::Path) -> Self {
        Self::start_with(url, issuer, user, path, 3600, |_| {})
    }

    pub fn start_with(
        url: &str,
        issuer: &TestIssuer,
        user: &User,
        path: &std::path::Path,
        lifetime: u64,
        tune: impl FnOnce(&mut SyncConfig),
    ) -> Self {
        Self::start_through(url, issuer, user, path, lifetime, tune, WsConnector)
    }

    /// [`Self::start_with`] over another connector (e.g. [`Cut`]).
    pub fn start_through<C: Connector + Send + 'static>(
        url: &str,
        issuer: &TestIssuer,
        user: &User,
        path: &std::path::Path,
        lifetime: u64,
        tune: impl FnOnce(&mut SyncConfig),
        connector: C,
    ) -> Self {
        let mut db = Db::open(path.to_str().unwrap(), SystemEnv).unwrap();
        define(&mut db);
        let tokens = Tokens {
            issuer: Arc::new(issuer.clone()),
            user: user.clone(),
            lifetime,
            minted: Arc::default(),
        };
        let mut config = SyncConfig::new(url);
        config.backoff_min_ms = 100;
        config.backoff_max_ms = 1000;
        tune(&mut config);
        let (engine, handle) = SyncEngine::new(
            config,
            user.keys(),
            db,
            connector,
            SystemEnv,
            tokens.clone(),
        );
        let thread = spawn("sync", move || Box::pin(engine.run())).unwrap();
        Self {
            handle,
            tokens,
            thread: Some(thread),
        }
    }

    /// Stops the engine and waits for its thread (the store closes).
    pub fn stop(mut self) {
        self.handle.stop();
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap();
        }
    }

    pub fn status(&self) -> SyncStatus {
        self.handle.status()
    }

    pub fn insert(&self, record: serde_json::Value) -> String {
        let v = self.handle.write(|db| db.insert("notes", record)).unwrap();
        v["id"].as_str().unwrap().to_owned()
    }

    pub fn patch(&self, id: &str, patch: serde_json::Value) {
        self.handle
            .write(|db| db.patch("notes", id, patch))
            .unwrap();
    }

    pub fn get(&self, id: &str) -> Option<serde_json::Value> {
        self.handle.read(|db| db.get("notes", id)).unwrap()
    }

    pub fn count(&self) -> u64 {
        self.handle
            .read(|db| db.count("notes", &json!({})))
            .unwrap()
    }

    /// Everything, without the local timestamps.
    pub fn all(&self) -> Vec<serde_json::Value> {
        let q = sealbase_db::Query {
            filter: json!({}),
            sort: vec![("id".into(), sealbase_db::Direction::Asc)],
            limit: None,
            offset: None,
        };
        self.handle.read(|db| db.find("notes", &q)).unwrap()
    }

    /// Waits until `ready` holds (polling), or fails with the status.
    pub async fn wait(&self, what: &str, ready: impl Fn(&Device) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !ready(self) {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; status {:?}",
                self.status()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until connected, with nothing left to push.
    pub async fn settled(&self) {
        self.wait("live with nothing pending", |d| {
            let s = d.status();
            s.phase == sealbase_client::Phase::Live && s.pending == 0
        })
        .await;
    }
}

impl Drop for Device {
    fn drop(&mut self) {
        self.handle.stop();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A connector whose sockets fail instead of sending any request for
/// `method`, as a device that crashes at that point would: the request
/// never reaches the server.
#[derive(Clone)]
pub struct Cut {
    pub method: &'static str,
    pub cuts: Arc<std::sync::atomic::AtomicU64>,
}

impl Cut {
    pub fn new(method: &'static str) -> Self {
        Self {
            method,
            cuts: Arc::default(),
        }
    }
}

pub struct CutTransport {
    inner: WsTransport,
    cut: Cut,
}

impl Connector for Cut {
    type Transport = CutTransport;
    async fn connect(&self, url: &str) -> Result<CutTransport, TransportError> {
        Ok(CutTransport {
            inner: WsConnector.connect(url).await?,
            cut: self.clone(),
        })
    }
}

impl Transport for CutTransport {
    async fn send(&mut self, frame: Vec<u8>) -> Result<(), TransportError> {
        if let Ok(sealbase_protocol::Frame::Request(r)) = sealbase_protocol::decode(&frame)
            && r.method == self.cut.method
        {
            self.cut
                .cuts
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            self.inner.close().await;
            return Err(TransportError(format!("cut before {}", r.method)));
        }
        self.inner.send(frame).await
    }

    async fn recv(&mut self) -> Result<Received, TransportError> {
        self.inner.recv().await
    }

    async fn close(&mut self) {
        self.inner.close().await;
    }
}

/// A connector that counts the bytes of every frame its sockets send and
/// receive.
#[derive(Clone, Default)]
pub struct Counting {
    pub sent: Arc<std::sync::atomic::AtomicU64>,
    pub received: Arc<std::sync::atomic::AtomicU64>,
}

pub struct CountingTransport {
    inner: WsTransport,
    counts: Counting,
}

impl Connector for Counting {
    type Transport = CountingTransport;
    async fn connect(&self, url: &str) -> Result<CountingTransport, TransportError> {
        Ok(CountingTransport {
            inner: WsConnector.connect(url).await?,
            counts: self.clone(),
        })
    }
}

impl Transport for CountingTransport {
    async fn send(&mut self, frame: Vec<u8>) -> Result<(), TransportError> {
        self.counts
            .sent
            .fetch_add(frame.len() as u64, std::sync::atomic::Ordering::Relaxed);
        self.inner.send(frame).await
    }

    async fn recv(&mut self) -> Result<Received, TransportError> {
        let received = self.inner.recv().await?;
        if let Received::Frame(frame) = &received {
            self.counts
                .received
                .fetch_add(frame.len() as u64, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(received)
    }

    async fn close(&mut self) {
        self.inner.close().await;
    }
}
