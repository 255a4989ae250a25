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
use axum::serve::ListenerExt;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::auth::TokenVerifier;
use crate::fanout::ephemeral::EphemeralRelay;
use crate::files::FileStorage;
use crate::hub::{ConnId, Hub};
use crate::metrics::Metrics;
use crate::presence::{Outlets, Presence};
use crate::ratelimit::{Rate, RateLimiter};
use crate::store::Store;
use crate::store::sqlite::CHECKPOINT_EVERY;

/// Per-connection and per-user limits of this server.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Outbound queue per connection, in frames: this many of its own
    /// frames (responses, pull chunks), which then wait for room, and as
    /// many notifications; a subscriber whose notifications fall this far
    /// behind is closed with 4006.
    pub queue_frames: usize,
    /// Outbound queue per connection, in bytes, with the same two shares
    /// as `queue_frames` (see [`crate::outbox`]).
    pub queue_bytes: usize,
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
    /// Tombstones older than this are dropped; a client whose cursor is
    /// older than the oldest kept tombstone pulls the space from scratch.
    pub tombstone_horizon: Duration,
    /// How often tombstones are compacted.
    pub compaction_interval: Duration,
    /// Bytes of ciphertext (record blobs and files) one user's spaces may
    /// store; `None`: unlimited.
    pub storage_quota: Option<u64>,
    /// A presence entry ends this long after its last `presence.set`
    /// (clients re-send it every half of this as a heartbeat).
    pub presence_ttl: Duration,
    /// `presence.set` calls allowed per second per connection (also the
    /// burst); more are refused with `rate_limited`.
    pub presence_per_second: u32,
    /// `event.send` calls allowed per second per connection (also the
    /// burst); more are refused with `rate_limited`.
    pub events_per_second: u32,
    /// How far ahead an invitation's `expires_at` may be.
    pub invitation_max_lifetime: Duration,
    /// Unexpired invitations one mailbox may hold; more are refused with
    /// `rate_limited`.
    pub invitations_per_mailbox: u32,
    /// Invitations one user may create per hour (also the burst), per
    /// server instance; more are refused with `rate_limited`.
    pub invitations_per_hour: u32,
    /// How often expired invitations are deleted.
    pub invitation_sweep: Duration,
    /// `push` requests one user may make per second (also the burst),
    /// per server instance; more are refused with `rate_limited`.
    pub pushes_per_second: u32,
    /// `membership.append` and `space.create` requests one user may make
    /// per minute (also the burst), per server instance.
    pub membership_per_minute: u32,
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
            queue_bytes: 16 << 20,
            max_inflight: 32,
            subscriptions_per_socket: 1000,
            sockets_per_user: 32,
            auth_timeout: sealbase_protocol::AUTH_TIMEOUT,
            keepalive: Duration::from_secs(30),
            pull_page: 2000,
            read_buffer: 4096,
            tombstone_horizon: Duration::from_secs(30 * 86_400),
            compaction_interval: Duration::from_secs(3600),
            storage_quota: None,
            presence_ttl: Duration::from_secs(60),
            presence_per_second: 20,
            events_per_second: 100,
            invitation_max_lifetime: Duration::from_secs(30 * 24 * 3600),
            invitations_per_mailbox: 1000,
            invitations_per_hour: 100,
            invitation_sweep: Duration::from_secs(60),
            pushes_per_second: 100,
            membership_per_minute: 60,
            max_file_size: 1 << 30,
            file_sweep_every: Some(Duration::from_secs(6 * 3600)),
            orphan_grace: Duration::from_secs(3600),
        }
    }
}

/// Most keys each rate limiter tracks (see [`crate::ratelimit`]).
const LIMITER_KEYS: usize = 1 << 20;

/// How long shutdown waits for the WebSocket sessions to end after their
/// close frames (1001) and for what they leave for other instances to be
/// relayed: a client that stops reading cannot hold it longer.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Counts the WebSocket sessions alive, so shutdown can wait for them.
#[derive(Debug, Clone)]
pub(crate) struct LiveSessions(watch::Sender<usize>);

/// One live session; dropping it ends the session's count.
#[derive(Debug)]
pub(crate) struct LiveSession(watch::Sender<usize>);

impl LiveSessions {
    fn new() -> Self {
        Self(watch::channel(0).0)
    }

    /// Counts a session until the returned guard drops.
    pub(crate) fn enter(&self) -> LiveSession {
        self.0.send_modify(|n| *n += 1);
        LiveSession(self.0.clone())
    }

    /// Resolves once no session is alive.
    async fn ended(&self) {
        let _ = self.0.subscribe().wait_for(|n| *n == 0).await;
    }
}

impl Drop for LiveSession {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

/// The rate limits this server enforces, by connection or by user.
#[derive(Debug)]
pub(crate) struct Limiters {
    /// `presence.set`, per connection.
    pub(crate) presence: RateLimiter<ConnId>,
    /// `event.send`, per connection.
    pub(crate) events: RateLimiter<ConnId>,
    /// `invitation.create`, per sending user.
    pub(crate) invitations: RateLimiter<Uuid>,
    /// `push`, per user.
    pub(crate) pushes: RateLimiter<Uuid>,
    /// `membership.append` (and `space.create`), per user.
    pub(crate) membership: RateLimiter<Uuid>,
}

impl Limiters {
    fn new(limits: &Limits) -> Self {
        Self {
            presence: RateLimiter::new(Rate::per_second(limits.presence_per_second), LIMITER_KEYS),
            events: RateLimiter::new(Rate::per_second(limits.events_per_second), LIMITER_KEYS),
            invitations: RateLimiter::new(
                Rate::per_hour(limits.invitations_per_hour),
                LIMITER_KEYS,
            ),
            pushes: RateLimiter::new(Rate::per_second(limits.pushes_per_second), LIMITER_KEYS),
            membership: RateLimiter::new(
                Rate::new(
                    limits.membership_per_minute,
                    Duration::from_secs(60) / limits.membership_per_minute.max(1),
                ),
                LIMITER_KEYS,
            ),
        }
    }

    /// Forgets a closed connection.
    pub(crate) fn forget(&self, conn: ConnId) {
        self.presence.forget(&conn);
        self.events.forget(&conn);
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
    /// Origins whose pages may call the file routes (CORS; `*` for any).
    pub cors_origins: Vec<String>,
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
    /// Who is present where (memory only).
    pub(crate) presence: Presence,
    /// Presence and events to the other instances (Postgres).
    pub(crate) relay: EphemeralRelay,
    pub(crate) limiters: Limiters,
    /// See [`Settings::cors_origins`].
    pub(crate) cors_origins: Vec<String>,
    sockets: Mutex<HashMap<Uuid, usize>>,
    /// The WebSocket sessions alive (upgraded, not yet ended).
    pub(crate) live: LiveSessions,
}

impl AppState {
    /// Where presence changes go.
    pub(crate) fn outlets(&self) -> Outlets<'_> {
        Outlets {
            hub: &self.hub,
            relay: &self.relay,
        }
    }

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
    /// server to finish: HTTP requests done, WebSocket sessions ended (for
    /// at most [`DRAIN_TIMEOUT`]). The store stays open for its owner to
    /// [`Store::close`].
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
    let instance = crate::random_uuid();
    let store = settings
        .store
        .with_instance(instance)
        .with_quota(settings.limits.storage_quota);
    let (relay, outgoing) = match &store {
        Store::Postgres(_) => {
            let (relay, outgoing) = EphemeralRelay::new();
            (relay, Some(outgoing))
        }
        Store::Sqlite(_) => (EphemeralRelay::disabled(), None),
    };
    let state = Arc::new(AppState {
        store: store.clone(),
        verifier: settings.verifier,
        hub: Hub::default(),
        access: crate::access::Access::default(),
        presence: Presence::new(settings.limits.presence_ttl),
        relay,
        limiters: Limiters::new(&settings.limits),
        files: settings.files,
        limits: settings.limits,
        metrics: Metrics {
            sqlite_wal: store.has_wal(),
            ..Metrics::default()
        },
        shutdown: shutdown_rx.clone(),
        cors_origins: settings.cors_origins,
        sockets: Mutex::new(HashMap::new()),
        live: LiveSessions::new(),
    });
    if store.has_wal() {
        tokio::spawn(checkpointer(state.clone()));
    }
    // The relay's sender and how to have it finish, on Postgres.
    let mut relay_task = None;
    if let Store::Postgres(pg) = store {
        if let Some(outgoing) = outgoing {
            let (finish, finishing) = tokio::sync::oneshot::channel();
            let task = tokio::spawn(crate::fanout::ephemeral::send(
                pg.clone(),
                instance,
                outgoing,
                finishing,
            ));
            relay_task = Some((finish, task));
        }
        tokio::spawn(crate::fanout::run(state.clone(), pg));
    }
    tokio::spawn(compactor(state.clone()));
    tokio::spawn(crate::presence::sweep(state.clone()));
    tokio::spawn(crate::mailbox::sweep(state.clone()));
    if let Some(every) = state.limits.file_sweep_every {
        tokio::spawn(crate::files::sweep(state.clone(), every));
    }
    let state_files = state.files.description().to_owned();
    let live = state.live.clone();
    let app = router(state);
    let mut stop = shutdown_rx;
    // Frames are written whole, one per notification or response: Nagle's
    // algorithm would hold a frame back until the client acknowledged the
    // previous one, up to its delayed-ACK timeout.
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::warn!(error = %e, "cannot set TCP_NODELAY");
        }
    });
    let task = tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stop.wait_for(|down| *down).await;
            })
            .await;
        // HTTP requests are done; the WebSocket sessions got the same
        // signal and are closing with 1001 after what they had queued.
        let deadline = tokio::time::Instant::now() + DRAIN_TIMEOUT;
        if tokio::time::timeout_at(deadline, live.ended())
            .await
            .is_err()
        {
            tracing::warn!(
                timeout = ?DRAIN_TIMEOUT,
                "WebSocket sessions still open after the drain timeout; stopping without them"
            );
        }
        // The ended sessions' peers leaving reach the other instances now,
        // not after their presence expires there.
        if let Some((finish, task)) = relay_task {
            let _ = finish.send(());
            if tokio::time::timeout_at(deadline, task).await.is_err() {
                tracing::warn!("presence and events still queued for other instances at shutdown");
            }
        }
        served
    });
    tracing::info!(%addr, %instance, files = %state_files, "sync server listening");
    Ok(RunningServer {
        addr,
        shutdown,
        task,
    })
}

/// The clock of a background task: ticks every `period` until the server
/// shuts down; a late tick delays the next ones instead of bunching them
/// up.
pub(crate) struct Ticker {
    interval: tokio::time::Interval,
    shutdown: watch::Receiver<bool>,
}

impl Ticker {
    /// The first tick at once.
    pub(crate) fn new(app: &AppState, period: Duration) -> Self {
        Self::first_at(app, tokio::time::Instant::now(), period)
    }

    /// The first tick a whole period from now.
    pub(crate) fn after_a_period(app: &AppState, period: Duration) -> Self {
        Self::first_at(app, tokio::time::Instant::now() + period, period)
    }

    fn first_at(app: &AppState, first: tokio::time::Instant, period: Duration) -> Self {
        let mut interval = tokio::time::interval_at(first, period);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Self {
            interval,
            shutdown: app.shutdown.clone(),
        }
    }

    /// Waits for the next tick; false once the server shuts down.
    pub(crate) async fn tick(&mut self) -> bool {
        tokio::select! {
            _ = self.shutdown.wait_for(|down| *down) => false,
            _ = self.interval.tick() => true,
        }
    }
}

/// Copies SQLite's write-ahead log into the database file every
/// [`CHECKPOINT_EVERY`], so that no push waits for a checkpoint (see
/// [`crate::store::sqlite::SqliteStore::checkpoint`]).
async fn checkpointer(app: Arc<AppState>) {
    let mut ticker = Ticker::new(&app, CHECKPOINT_EVERY);
    while ticker.tick().await {
        match app.store.checkpoint().await {
            Ok(Some(done)) => app.metrics.observe_checkpoint(done),
            Ok(None) => return,
            Err(e) => tracing::warn!(error = %e, "WAL checkpoint failed; retrying next interval"),
        }
    }
}

/// Compacts tombstones past the horizon every `compaction_interval`, until
/// shutdown.
async fn compactor(app: Arc<AppState>) {
    let mut ticker = Ticker::new(&app, app.limits.compaction_interval);
    while ticker.tick().await {
        let cutoff = crate::unix_now().saturating_sub(app.limits.tombstone_horizon.as_secs());
        // Spaces in bounded passes, so one pass never runs unbounded.
        loop {
            match app.store.compact(cutoff, 100).await {
                Ok(done) => {
                    app.metrics.observe_compaction(done.tombstones);
                    if done.tombstones > 0 {
                        tracing::info!(
                            spaces = done.spaces,
                            tombstones = done.tombstones,
                            "compacted tombstones"
                        );
                    }
                    if done.spaces < 100 {
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "tombstone compaction failed; retrying next interval");
                    break;
                }
            }
        }
    }
}

fn router(state: Arc<AppState>) -> Router {
    let cors = axum::middleware::from_fn_with_state(state.clone(), crate::cors::cors);
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
        .layer(cors)
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
        app.metrics
            .render(&app.hub, app.presence.counts(), app.relay.dropped()),
    )
}
