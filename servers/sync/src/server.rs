//! Routes and lifecycle: binds the listener, serves until shut down, and on
//! shutdown stops accepting, closes every WebSocket with 1001 and drains.
//! Routes: the WebSocket, file transfers, health and metrics.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, put};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::auth::TokenVerifier;
use crate::files::FileStorage;
use crate::hub::Hub;
use crate::metrics::Metrics;
use crate::store::Store;

/// Per-connection and per-user limits of this server.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Outbound queue per connection, in frames; a subscriber that falls
    /// this far behind is closed with 4006.
    pub queue_frames: usize,
    /// Requests handled at once per connection.
    pub max_inflight: usize,
    /// Subscriptions per connection.
    pub subscriptions_per_socket: usize,
    /// Open connections per user.
    pub sockets_per_user: usize,
    /// Time allowed for the `auth` request.
    pub auth_timeout: Duration,
    /// Ping interval; a connection silent for three intervals is closed.
    pub keepalive: Duration,
    /// Rows read per database round trip while streaming a pull.
    pub pull_page: u32,
    /// WebSocket read buffer per connection, in bytes (idle memory).
    pub read_buffer: usize,
    /// Largest file body accepted, in bytes.
    pub max_file_size: u64,
    /// How often to sweep the file store for objects without a file row
    /// (`None`: never).
    pub file_sweep_every: Option<Duration>,
    /// Objects younger than this are never swept (an upload completes its
    /// object just before recording it).
    pub orphan_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            queue_frames: 1024,
            max_inflight: 32,
            subscriptions_per_socket: 1000,
            sockets_per_user: 32,
            auth_timeout: sealbase_protocol::AUTH_TIMEOUT,
            keepalive: Duration::from_secs(30),
            pull_page: 500,
            read_buffer: 4096,
            max_file_size: 1 << 30,
            file_sweep_every: Some(Duration::from_secs(6 * 3600)),
            orphan_grace: Duration::from_secs(3600),
        }
    }
}

/// Everything a server needs, validated.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Address to listen on (port 0 picks a free port).
    pub listen: SocketAddr,
    /// The database, already migrated.
    pub store: Store,
    /// Verifies access tokens.
    pub verifier: TokenVerifier,
    /// Where file bytes are stored.
    pub files: FileStorage,
    /// Limits.
    pub limits: Limits,
}

/// State shared by every route and connection.
pub(crate) struct AppState {
    pub(crate) store: Store,
    pub(crate) verifier: TokenVerifier,
    pub(crate) hub: Hub,
    pub(crate) access: crate::access::Access,
    pub(crate) files: FileStorage,
    pub(crate) limits: Limits,
    pub(crate) metrics: Metrics,
    pub(crate) shutdown: watch::Receiver<bool>,
    sockets: Mutex<HashMap<Uuid, usize>>,
}

impl AppState {
    /// Counts a new connection for `user`; false if over the limit.
    pub(crate) fn claim_socket(&self, user: Uuid) -> bool {
        let mut sockets = self.sockets.lock().unwrap_or_else(|p| p.into_inner());
        let n = sockets.entry(user).or_default();
        if *n >= self.limits.sockets_per_user {
            return false;
        }
        *n += 1;
        true
    }

    /// Forgets a connection of `user`.
    pub(crate) fn release_socket(&self, user: Uuid) {
        let mut sockets = self.sockets.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = sockets.get_mut(&user) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                sockets.remove(&user);
            }
        }
    }
}

/// A server running on a background task.
#[derive(Debug)]
pub struct RunningServer {
    addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<std::io::Result<()>>,
}

impl RunningServer {
    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, closes every connection (1001) and waits for the
    /// server to finish.
    pub async fn shutdown(self) -> std::io::Result<()> {
        let _ = self.shutdown.send(true);
        self.task
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))?
    }

    /// Waits until the server stops (after [`RunningServer::shutdown`] from
    /// elsewhere, or an I/O error).
    pub async fn wait(self) -> std::io::Result<()> {
        self.task
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))?
    }

    /// A handle that triggers the same shutdown (e.g. from a signal handler).
    pub fn shutdown_handle(&self) -> watch::Sender<bool> {
        self.shutdown.clone()
    }
}

/// Binds `settings.listen` and serves in the background.
pub async fn start(settings: Settings) -> std::io::Result<RunningServer> {
    let listener = TcpListener::bind(settings.listen).await?;
    let addr = listener.local_addr()?;
    let (shutdown, shutdown_rx) = watch::channel(false);
    // Names this process in its push signals, so it can tell its own apart.
    let instance = {
        use rand_core::RngCore;
        let mut bytes = [0u8; 16];
        rand_core::OsRng.fill_bytes(&mut bytes);
        Uuid::from_bytes(bytes)
    };
    let store = settings.store.with_instance(instance);
    let state = Arc::new(AppState {
        store: store.clone(),
        verifier: settings.verifier,
        hub: Hub::default(),
        access: crate::access::Access::default(),
        files: settings.files,
        limits: settings.limits,
        metrics: Metrics::default(),
        shutdown: shutdown_rx.clone(),
        sockets: Mutex::new(HashMap::new()),
    });
    if let Store::Postgres(pg) = store {
        tokio::spawn(crate::fanout::run(state.clone(), pg));
    }
    if let Some(every) = state.limits.file_sweep_every {
        tokio::spawn(crate::files::sweep(state.clone(), every));
    }
    let state_files = state.files.description().to_owned();
    let app = router(state);
    let mut stop = shutdown_rx;
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stop.wait_for(|down| *down).await;
            })
            .await
    });
    tracing::info!(%addr, %instance, files = %state_files, "sync server listening");
    Ok(RunningServer {
        addr,
        shutdown,
        task,
    })
}

fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route(sealbase_protocol::WS_PATH, get(crate::session::upgrade))
        .route(
            "/api/v1/spaces/{space}/files/{file}",
            put(crate::files::put)
                .get(crate::files::get)
                .head(crate::files::head),
        )
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .with_state(state)
}

/// `GET /health`: 200 when the database answers, 503 otherwise.
async fn health(State(app): State<Arc<AppState>>) -> impl IntoResponse {
    match app.store.ping().await {
        Ok(()) => (StatusCode::OK, "ok\n"),
        Err(e) => {
            tracing::warn!(error = %e, "health check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable\n")
        }
    }
}

/// `GET /metrics`: Prometheus text format.
async fn metrics(State(app): State<Arc<AppState>>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        app.metrics.render(&app.hub),
    )
}
