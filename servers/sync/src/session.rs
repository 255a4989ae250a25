//! One WebSocket connection: the auth handshake, concurrent requests,
//! streamed pulls, notifications and the reasons a connection closes.
//!
//! A connection is two tasks. The reader decodes frames and spawns one task
//! per request (bounded by a semaphore, so a client cannot pile up work); a
//! long pull therefore never holds up a push. The writer owns the socket's
//! sink and drains the connection's [`Outbox`], which responses, stream
//! chunks and notifications all go through; it also sends keepalive pings
//! and the close frame. Responses and chunks wait for room in the outbox
//! (backpressure on this connection only); notifications from other
//! connections never wait: if their share of the outbox is full the
//! connection is closed with 4006.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use sealbase_crypto::{Capability, Did, VerifiedCapability};
use sealbase_protocol::{
    AuthParams, ClientRequest, CloseCode, Empty, ErrorBody, ErrorCode, Frame, Notification,
    PullBegin, PullChunk, PullCommit, PullParams, PullResult, PulledRecord, PulledTombstone,
    PushParams, PushResult, RawRequest, RevokedNotification, RevokedReason, Session, SessionLimits,
    SpaceCursor, SpaceDenied, SubscribeParams, Subscribed, SyncNotification, SyncedRecord,
    TokenRefreshParams, TokenRefreshed, UnsubscribeParams, Validate,
};
use tokio::sync::Semaphore;
use uuid::Uuid;

use crate::auth::AccessToken;
use crate::hub::{ConnId, Subscriber};
use crate::outbox::{Next, Outbox, OutboxLimits};
use crate::server::AppState;
use crate::store::{PushOutcome, RecordRow, SpaceInfo, Store, StoreError, page_bytes};
use crate::{random_uuid, unix_now};

mod invitations;
mod presence;
mod socket;
mod spaces;

use socket::Socket;
pub(crate) use socket::upgrade;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;

pub(crate) use spaces::check_epoch;

/// Rows in a pull's first page: small, so the first record leaves quickly;
/// later pages grow to [`crate::server::Limits::pull_page`].
const FIRST_PULL_PAGE: u32 = 32;

/// Blob bytes of a pull page (it ends after the row that reaches this):
/// about 4,000 records of 1 KiB, one of the largest. With the next page read
/// while the current one is sent, a pull holds two pages.
const PULL_PAGE_BYTES: u64 = 4 << 20;

/// What request handlers share about their connection.
struct Conn {
    app: Arc<AppState>,
    id: ConnId,
    user: Uuid,
    personal_space: Uuid,
    did: Did,
    expires_at: AtomicU64,
    /// Outbound frames; also where the connection's close is requested.
    outbox: Arc<Outbox>,
    subscriptions: Mutex<HashSet<Uuid>>,
    /// This connection's peer id in each space where it set presence or
    /// sent an event.
    peers: Mutex<HashMap<Uuid, Uuid>>,
    /// Set when the connection's presence is cleaned up; `presence.set`s
    /// still running take no effect after that.
    closed: AtomicBool,
}

impl Conn {
    fn subscriptions(&self) -> MutexGuard<'_, HashSet<Uuid>> {
        // Every update is a single insert or remove; a poisoned lock still
        // holds a consistent set.
        self.subscriptions.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The connection's peer id in `space`: drawn at random on first use,
    /// then stable for the connection's life.
    fn peer(&self, space: Uuid) -> Uuid {
        let mut peers = self.peers.lock().unwrap_or_else(|p| p.into_inner());
        *peers.entry(space).or_insert_with(random_uuid)
    }

    /// The spaces where this connection has a peer id.
    fn peer_spaces(&self) -> Vec<Uuid> {
        let peers = self.peers.lock().unwrap_or_else(|p| p.into_inner());
        peers.keys().copied().collect()
    }

    /// Subscriber handle for the hub.
    fn subscriber(&self) -> Subscriber {
        self.outbox.clone()
    }

    /// Queues a frame, waiting for room (responses and chunks).
    async fn send(&self, frame: &Frame) {
        match frame.encode() {
            Ok(bytes) => {
                // A closing outbox means the connection is going away.
                self.outbox.send(Bytes::from(bytes)).await;
            }
            Err(e) => {
                tracing::error!(conn = self.id, error = %e, "cannot encode a frame");
                self.outbox
                    .kill(CloseCode::ProtocolError, "internal encoding error");
            }
        }
    }

    /// Queues already-encoded frames together: the writer wakes once for
    /// the lot instead of once per frame.
    async fn send_all(&self, frames: Vec<Bytes>) {
        // A closing outbox means the connection is going away.
        self.outbox.send_all(frames).await;
    }

    async fn respond<T: serde::Serialize>(&self, id: u32, result: Result<T, ErrorBody>) {
        let frame = match result {
            Ok(value) => Frame::result(id, &value).unwrap_or_else(|e| {
                tracing::error!(conn = self.id, error = %e, "cannot encode a result");
                Frame::error(id, ErrorBody::new(ErrorCode::Internal, "result too large"))
            }),
            Err(error) => Frame::error(id, error),
        };
        self.send(&frame).await;
    }

    /// May this connection act on `space` with at least `need`? Returns
    /// the verified chain that grants it (`None` for the personal space).
    async fn authorize(
        &self,
        space: Uuid,
        cap: Option<&str>,
        need: Capability,
    ) -> Result<Option<Arc<VerifiedCapability>>, ErrorBody> {
        self.app
            .access
            .authorize(
                &self.app.store,
                self.personal_space,
                &self.did,
                space,
                cap,
                need,
            )
            .await
    }
}

fn internal(e: &StoreError) -> ErrorBody {
    tracing::error!(error = %e, "store error");
    ErrorBody::new(ErrorCode::Internal, "storage error")
}

/// Takes a token from `limiter` for `key`, or refuses with `rate_limited`
/// (counted in the metrics).
pub(crate) fn rate_limit<K: Eq + std::hash::Hash + Clone>(
    app: &AppState,
    limiter: &crate::ratelimit::RateLimiter<K>,
    key: &K,
    what: &str,
) -> Result<(), ErrorBody> {
    limiter.check(key).map_err(|limited| {
        app.metrics
            .rate_limited
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let rate = limiter.rate();
        ErrorBody::new(
            ErrorCode::RateLimited,
            format!(
                "more than {} {what} per {} s; retry in {} ms",
                rate.capacity(),
                (rate.interval() * rate.capacity()).as_secs().max(1),
                limited.retry_after.as_millis().max(1)
            ),
        )
    })
}

/// A store failure as the client sees it.
pub(crate) fn store_error(e: StoreError) -> ErrorBody {
    match e {
        StoreError::NoSuchSpace(_) => ErrorBody::new(ErrorCode::NotFound, "no such space"),
        e @ StoreError::QuotaExceeded { .. } => {
            ErrorBody::new(ErrorCode::QuotaExceeded, e.to_string())
        }
        e => internal(&e),
    }
}

fn bad_request(e: &impl std::fmt::Display) -> ErrorBody {
    ErrorBody::new(ErrorCode::BadRequest, e.to_string())
}

async fn run(app: Arc<AppState>, socket: Socket) {
    let (sink, mut stream) = socket.split();
    let outbox = Arc::new(Outbox::new(OutboxLimits {
        frames: app.limits.queue_frames,
        bytes: app.limits.queue_bytes,
    }));
    let writer = tokio::spawn(writer(
        sink,
        outbox.clone(),
        app.limits.keepalive,
        app.shutdown.clone(),
    ));
    app.metrics.connections.fetch_add(1, Ordering::Relaxed);

    if let Some(conn) = handshake(&app, &mut stream, &outbox).await {
        let conn = Arc::new(conn);
        serve(&conn, &mut stream).await;
        app.hub.close_mailbox(conn.personal_space, conn.id);
        for space in conn.subscriptions().drain() {
            app.hub.unsubscribe(space, conn.id);
            app.access.release(space, conn.id);
        }
        // Requests still running cannot set presence after this: mark the
        // connection closed first, then read where it has peers (see
        // `Presence::disconnect`).
        conn.closed.store(true, Ordering::SeqCst);
        app.presence
            .disconnect(app.outlets(), conn.id, conn.peer_spaces());
        app.limiters.forget(conn.id);
        app.release_socket(conn.user);
    }
    // Request tasks may still hold the outbox; the writer stops on this.
    outbox.close_with(1000, "bye");
    let _ = writer.await;
    app.metrics.connections.fetch_sub(1, Ordering::Relaxed);
}

/// Waits for `auth` as the first frame (DESIGN §4): anything else, a bad
/// token or silence past the timeout closes with 4000.
async fn handshake(
    app: &Arc<AppState>,
    stream: &mut SplitStream<Socket>,
    outbox: &Arc<Outbox>,
) -> Option<Conn> {
    let first = tokio::select! {
        msg = tokio::time::timeout(app.limits.auth_timeout, stream.next()) => msg,
        _ = outbox.killed() => return None,
    };
    let bytes = match first {
        Ok(Some(Ok(Message::Binary(bytes)))) => bytes,
        Err(_) => {
            outbox.kill(CloseCode::AuthFailed, "no auth request in time");
            return None;
        }
        Ok(Some(Ok(_))) => {
            outbox.kill(
                CloseCode::AuthFailed,
                "the first frame must be a binary auth request",
            );
            return None;
        }
        Ok(None | Some(Err(_))) => return None,
    };
    let (id, params) = match sealbase_protocol::decode(&bytes) {
        Ok(Frame::Request(raw)) => match ClientRequest::from_raw(&raw) {
            Ok(ClientRequest::Auth(params)) => (raw.id, params),
            _ => {
                outbox.kill(CloseCode::AuthFailed, "the first request must be auth");
                return None;
            }
        },
        _ => {
            outbox.kill(
                CloseCode::AuthFailed,
                "the first frame must be an auth request",
            );
            return None;
        }
    };
    let token = match authenticate(app, &params).await {
        Ok(token) => token,
        Err(reason) => {
            tracing::info!(%reason, "auth failed");
            outbox.kill(CloseCode::AuthFailed, reason);
            return None;
        }
    };
    if !app.claim_socket(token.user) {
        outbox.kill(
            CloseCode::TooManyConnections,
            "too many connections for this user",
        );
        return None;
    }
    let space = match app
        .store
        .ensure_personal_space(token.personal_space, token.user)
        .await
    {
        Ok(space) => space,
        Err(e) => {
            app.release_socket(token.user);
            let reason = match e {
                StoreError::NotOwner(_) => "the personal space id is taken",
                _ => {
                    tracing::error!(error = %e, "store error during auth");
                    "server storage unavailable"
                }
            };
            outbox.kill(CloseCode::AuthFailed, reason);
            return None;
        }
    };
    let conn = Conn {
        id: app.hub.connection_id(),
        app: app.clone(),
        user: token.user,
        personal_space: space.id,
        did: token.did,
        expires_at: AtomicU64::new(token.expires_at),
        outbox: outbox.clone(),
        subscriptions: Mutex::new(HashSet::new()),
        peers: Mutex::new(HashMap::new()),
        closed: AtomicBool::new(false),
    };
    // Invitations for this user and app are delivered here live.
    app.hub
        .open_mailbox(conn.personal_space, conn.id, conn.subscriber());
    let session = Session {
        user: conn.user,
        personal_space: conn.personal_space,
        did: conn.did.to_string(),
        expires_at: token.expires_at,
        server_time: unix_now(),
        limits: SessionLimits::default(),
    };
    conn.respond(id, Ok(session)).await;
    Some(conn)
}

async fn authenticate(app: &AppState, params: &AuthParams) -> Result<AccessToken, String> {
    params.validate().map_err(|e| e.to_string())?;
    app.verifier
        .verify(&params.token, unix_now())
        .await
        .map_err(|e| e.to_string())
}

/// The reader loop after a successful handshake.
async fn serve(conn: &Arc<Conn>, stream: &mut SplitStream<Socket>) {
    let inflight = Arc::new(Semaphore::new(conn.app.limits.max_inflight));
    let idle_limit = conn.app.limits.keepalive.saturating_mul(3);
    loop {
        let expires_at = conn.expires_at.load(Ordering::Relaxed);
        let until_expiry = Duration::from_secs(expires_at.saturating_sub(unix_now()));
        let msg = tokio::select! {
            msg = tokio::time::timeout(idle_limit, stream.next()) => msg,
            _ = conn.outbox.killed() => return,
            _ = tokio::time::sleep(until_expiry) => {
                if conn.expires_at.load(Ordering::Relaxed) <= unix_now() {
                    expire(conn).await;
                    return;
                }
                continue;
            }
        };
        let bytes = match msg {
            Ok(Some(Ok(Message::Binary(bytes)))) => bytes,
            // A raw frame is what tungstenite gives only to those writing
            // them; a reader never sees one.
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)))) => continue,
            Ok(Some(Ok(Message::Text(_)))) => {
                conn.outbox
                    .kill(CloseCode::ProtocolError, "text frames are not allowed");
                return;
            }
            Ok(Some(Ok(Message::Close(_)) | Err(_)) | None) => return,
            Err(_) => {
                conn.outbox
                    .kill(CloseCode::ProtocolError, "no traffic, not even pongs");
                return;
            }
        };
        conn.app.metrics.frames_in.fetch_add(1, Ordering::Relaxed);
        let raw = match sealbase_protocol::decode(&bytes) {
            Ok(Frame::Request(raw)) => raw,
            // v1 defines no client notifications; unknown ones are ignored.
            Ok(Frame::Notification(_)) => continue,
            Ok(Frame::Response(_) | Frame::Chunk(_)) => {
                conn.outbox.kill(
                    CloseCode::ProtocolError,
                    "unexpected frame type from a client",
                );
                return;
            }
            Err(e) => {
                conn.outbox
                    .kill(CloseCode::ProtocolError, format!("undecodable frame: {e}"));
                return;
            }
        };
        // Waiting here stops reading: a client with too much in flight is
        // slowed down, not buffered.
        let Ok(permit) = inflight.clone().acquire_owned().await else {
            return;
        };
        let conn = conn.clone();
        tokio::spawn(async move {
            handle(&conn, raw).await;
            drop(permit);
        });
    }
}

/// The access token ran out without `token.refresh`: tell the client which
/// subscriptions end, then close with 4001.
async fn expire(conn: &Arc<Conn>) {
    let spaces: Vec<Uuid> = conn.subscriptions().iter().copied().collect();
    let notification = Notification::Revoked(RevokedNotification {
        spaces,
        reason: RevokedReason::TokenExpired,
    });
    if let Ok(frame) = Frame::notification(&notification) {
        conn.send(&frame).await;
    }
    conn.outbox
        .kill(CloseCode::TokenExpired, "access token expired");
}

async fn handle(conn: &Arc<Conn>, raw: RawRequest) {
    let id = raw.id;
    let request = match ClientRequest::from_raw(&raw) {
        Ok(request) => request,
        Err(e) => {
            conn.respond::<Empty>(id, Err(ErrorBody::new(e.error_code(), e.to_string())))
                .await;
            return;
        }
    };
    if let Err(e) = request.validate() {
        conn.respond::<Empty>(id, Err(ErrorBody::new(e.error_code(), e.to_string())))
            .await;
        return;
    }
    match request {
        ClientRequest::Auth(_) => {
            conn.respond::<Empty>(
                id,
                Err(bad_request(&"already authenticated; use token.refresh")),
            )
            .await;
        }
        ClientRequest::TokenRefresh(p) => {
            let result = refresh(conn, p).await;
            conn.respond(id, result).await;
        }
        ClientRequest::Subscribe(p) => {
            let result = subscribe(conn, p).await;
            let spaces: Vec<Uuid> = match &result {
                Ok(subscribed) => subscribed.spaces.iter().map(|s| s.id).collect(),
                Err(_) => Vec::new(),
            };
            conn.respond(id, result).await;
            // Who is there already: after the response, so the client
            // knows the subscription when the peers arrive.
            presence::snapshot(conn, &spaces).await;
        }
        ClientRequest::Unsubscribe(p) => {
            let result = unsubscribe(conn, p);
            conn.respond(id, result).await;
        }
        ClientRequest::Push(p) => {
            let result = push(conn, p).await;
            conn.respond(id, result).await;
        }
        ClientRequest::Pull(p) => {
            let result = pull(conn, id, p).await;
            conn.respond(id, result).await;
        }
        ClientRequest::SpaceCreate(p) => {
            let result = spaces::create(conn, p).await;
            conn.respond(id, result).await;
        }
        ClientRequest::MembershipAppend(p) => {
            let result = spaces::append(conn, p).await;
            conn.respond(id, result).await;
        }
        ClientRequest::MembershipList(p) => {
            let result = spaces::list(conn, p).await;
            conn.respond(id, result).await;
        }
        ClientRequest::CapRevoke(p) => {
            let result = spaces::revoke(conn, p).await;
            conn.respond(id, result).await;
        }
        ClientRequest::EpochBegin(p) => {
            let result = spaces::begin_epoch(conn, p).await;
            conn.respond(id, result).await;
        }
        ClientRequest::EpochComplete(p) => {
            let result = spaces::complete_epoch(conn, p).await;
            conn.respond(id, result).await;
        }
        ClientRequest::KeysGet(p) => {
            let result = spaces::keys(conn, p).await;
            conn.respond(id, result).await;
        }
        ClientRequest::DeksGet(p) => {
            let result = spaces::deks(conn, p).await;
            conn.respond(id, result).await;
        }
        ClientRequest::DeksRewrap(p) => {
            let result = spaces::rewrap(conn, p).await;
            conn.respond(id, result).await;
        }
        ClientRequest::InvitationCreate(p) => {
            let result = invitations::create(conn, p).await;
            conn.respond(id, result).await;
        }
        ClientRequest::InvitationList(_) => {
            let result = invitations::list(conn).await;
            conn.respond(id, result).await;
        }
        ClientRequest::InvitationDelete(p) => {
            let result = invitations::delete(conn, p).await;
            conn.respond(id, result).await;
        }
        ClientRequest::PresenceSet(p) => {
            let result = presence::set(conn, p).await;
            conn.respond(id, result).await;
        }
        ClientRequest::PresenceClear(p) => {
            let result = presence::clear(conn, p);
            conn.respond(id, result).await;
        }
        ClientRequest::EventSend(p) => {
            let result = presence::send_event(conn, p).await;
            conn.respond(id, result).await;
        }
    }
}

async fn refresh(conn: &Conn, p: TokenRefreshParams) -> Result<TokenRefreshed, ErrorBody> {
    let token = conn
        .app
        .verifier
        .verify(&p.token, unix_now())
        .await
        .map_err(|e| ErrorBody::new(ErrorCode::Unauthorized, e.to_string()))?;
    if token.user != conn.user
        || token.personal_space != conn.personal_space
        || token.did != conn.did
    {
        return Err(ErrorBody::new(
            ErrorCode::Unauthorized,
            "the new token is for another user or app",
        ));
    }
    conn.expires_at.store(token.expires_at, Ordering::Relaxed);
    Ok(TokenRefreshed {
        expires_at: token.expires_at,
    })
}

/// Authorizes reading `space` (subscribe, pull) and reads its state. The
/// inner `Err` is a per-space refusal; the outer one a storage failure.
async fn readable(
    conn: &Conn,
    space: Uuid,
    cap: Option<&str>,
) -> Result<Result<(Option<Arc<VerifiedCapability>>, SpaceInfo), SpaceDenied>, ErrorBody> {
    let grant = match conn.authorize(space, cap, Capability::Read).await {
        Ok(grant) => grant,
        Err(error) => return Ok(Err(SpaceDenied { id: space, error })),
    };
    match conn.app.store.space(space).await {
        Ok(Some(info)) => Ok(Ok((grant, info))),
        Ok(None) => Ok(Err(SpaceDenied {
            id: space,
            error: ErrorBody::new(ErrorCode::NotFound, "no such space"),
        })),
        Err(e) => Err(internal(&e)),
    }
}

async fn subscribe(conn: &Arc<Conn>, p: SubscribeParams) -> Result<Subscribed, ErrorBody> {
    let mut spaces = Vec::new();
    let mut denied = Vec::new();
    for space in p.spaces {
        let (grant, cursor) = match readable(conn, space.id, space.cap.as_deref()).await? {
            Ok((grant, info)) => (grant, info.cursor),
            Err(refused) => {
                denied.push(refused);
                continue;
            }
        };
        {
            let mut subs = conn.subscriptions();
            if !subs.contains(&space.id) && subs.len() >= conn.app.limits.subscriptions_per_socket {
                denied.push(SpaceDenied {
                    id: space.id,
                    error: ErrorBody::new(
                        ErrorCode::RateLimited,
                        "too many subscriptions on this connection",
                    ),
                });
                continue;
            }
            subs.insert(space.id);
        }
        let subscriber = conn.subscriber();
        if let Some(grant) = grant {
            // Revoking any link of this chain, or its expiry, ends the
            // subscription.
            conn.app
                .access
                .hold(space.id, conn.id, conn.did, &grant, subscriber.clone());
        }
        conn.app.hub.subscribe(space.id, conn.id, subscriber);
        conn.app.hub.baseline(space.id, cursor);
        spaces.push(SpaceCursor {
            id: space.id,
            cursor,
        });
    }
    Ok(Subscribed { spaces, denied })
}

fn unsubscribe(conn: &Conn, p: UnsubscribeParams) -> Result<Empty, ErrorBody> {
    for space in p.spaces {
        if conn.subscriptions().remove(&space) {
            conn.app.hub.unsubscribe(space, conn.id);
            conn.app.access.release(space, conn.id);
        }
        // Leaving a space's live channel ends presence there.
        conn.app.presence.clear(conn.app.outlets(), space, conn.id);
    }
    Ok(Empty {})
}

async fn push(conn: &Arc<Conn>, p: PushParams) -> Result<PushResult, ErrorBody> {
    rate_limit(&conn.app, &conn.app.limiters.pushes, &conn.user, "pushes")?;
    let grant = conn
        .authorize(p.space, p.cap.as_deref(), Capability::Write)
        .await?;
    if grant.is_some() {
        check_epoch(
            &conn.app.store,
            p.space,
            p.changes.iter().filter_map(|c| c.dek.as_ref()),
        )
        .await?;
    }
    let started = std::time::Instant::now();
    let outcome = conn
        .app
        .store
        .push(p.space, &p.changes)
        .await
        .map_err(store_error)?;
    conn.app
        .metrics
        .observe_push(started.elapsed(), p.changes.len());
    match outcome {
        PushOutcome::Applied {
            prev,
            cursor,
            removed_files,
        } => {
            // The deleted records' files: rows gone with the push, objects now.
            crate::files::delete_later(&conn.app, removed_files);
            let space = p.space;
            // Encoded once, and only if someone here subscribes; every
            // subscriber gets the same bytes.
            conn.app.hub.publish_with(space, Some(conn.id), || {
                let notification = Notification::Sync(SyncNotification {
                    space,
                    prev,
                    cursor,
                    records: p
                        .changes
                        .into_iter()
                        .map(|c| SyncedRecord {
                            id: c.id,
                            blob: c.blob,
                            dek: c.dek,
                        })
                        .collect(),
                    keys: Vec::new(),
                });
                match Frame::notification(&notification).and_then(|f| f.encode()) {
                    Ok(bytes) => Some(Bytes::from(bytes)),
                    // Only a batch at the very edge of the frame limit can
                    // get here; subscribers learn of it from the next
                    // notification's `prev` (or their next pull), as with
                    // any lost notification.
                    Err(e) => {
                        tracing::warn!(error = %e, "sync notification not sent");
                        None
                    }
                }
            });
            conn.app.hub.observe(space, cursor);
            Ok(PushResult::Applied { prev, cursor })
        }
        PushOutcome::Conflict(records) => Ok(PushResult::Conflict { records }),
    }
}

async fn pull(conn: &Arc<Conn>, id: u32, p: PullParams) -> Result<PullResult, ErrorBody> {
    let started = std::time::Instant::now();
    let mut denied = Vec::new();
    let page = conn.app.limits.pull_page;
    for space in p.spaces {
        let (grant, info) = match readable(conn, space.id, space.cap.as_deref()).await? {
            Ok(found) => found,
            Err(refused) => {
                denied.push(refused);
                continue;
            }
        };
        let upto = info.cursor;
        // A client ahead of the server (e.g. a restored database) starts
        // over: it receives everything and drops what is not mentioned. So
        // does one behind the compaction horizon, which would otherwise
        // miss the deletes whose tombstones were dropped.
        let reset = space.since > upto || (space.since > 0 && space.since < info.compacted);
        let since = if reset { 0 } else { space.since };
        // Files, membership entries and sealed keys go between the
        // records, in cursor order.
        let mut extras =
            spaces::PullExtras::load(conn, space.id, since, upto, grant.is_some()).await?;
        chunk(
            conn,
            id,
            PullChunk::Begin(PullBegin {
                space: space.id,
                since,
                cursor: upto,
                reset,
            }),
        )
        .await;
        // Pages start small so the first record leaves at once, then grow;
        // the next page is read while the current one is being sent.
        let store = &conn.app.store;
        let mut out = ChunkBatch::new(conn, id);
        let mut size = FIRST_PULL_PAGE.min(page);
        let mut fetched = PageRead::start(store, space.id, since, upto, None, size);
        loop {
            let rows = fetched.rows().await?;
            let bytes = page_bytes(&rows);
            let full = rows.len() >= size as usize || bytes >= PULL_PAGE_BYTES;
            let last = rows.last().map(|row| (row.cursor, row.id));
            if !full {
                send_rows(&mut out, space.id, rows, &mut extras).await?;
                break;
            }
            // No more rows than the byte budget holds at this page's
            // average blob size: the database then stops about where the
            // budget ends instead of sending rows that would be cut.
            let average = bytes / rows.len().max(1) as u64;
            let fit = PULL_PAGE_BYTES
                .checked_div(average)
                .map_or(u32::MAX, |n| u32::try_from(n).unwrap_or(u32::MAX));
            size = size.saturating_mul(4).min(page).min(fit.max(1));
            fetched = PageRead::start(store, space.id, since, upto, last, size);
            send_rows(&mut out, space.id, rows, &mut extras).await?;
        }
        extras.flush(&mut out, None).await?;
        out.send().await;
        // Compaction may have dropped tombstones this stream was walking
        // towards. Then the client keeps its old cursor and pulls again,
        // and that pull starts over (`reset`).
        let overtaken = since > 0
            && conn
                .app
                .store
                .space(space.id)
                .await
                .map_err(|e| internal(&e))?
                .is_some_and(|now| since < now.compacted);
        chunk(
            conn,
            id,
            PullChunk::Commit(PullCommit {
                space: space.id,
                cursor: if overtaken { since } else { upto },
                more: overtaken,
            }),
        )
        .await;
    }
    conn.app.metrics.observe_pull(started.elapsed());
    Ok(PullResult { denied })
}

/// A pull page read on a task of its own: the database driver's work for
/// the next page (decoding rows included) runs on another worker thread
/// while this one encodes and queues the current page. Dropped unfinished
/// (the pull failed or the socket closed), the read is aborted.
struct PageRead(tokio::task::JoinHandle<Result<Vec<RecordRow>, StoreError>>);

impl PageRead {
    fn start(
        store: &Store,
        space: Uuid,
        since: u64,
        upto: u64,
        after: Option<(u64, Uuid)>,
        limit: u32,
    ) -> Self {
        let store = store.clone();
        Self(tokio::spawn(async move {
            store
                .pull_page(space, since, upto, after, limit, PULL_PAGE_BYTES)
                .await
        }))
    }

    async fn rows(&mut self) -> Result<Vec<RecordRow>, ErrorBody> {
        match (&mut self.0).await {
            Ok(rows) => rows.map_err(|e| internal(&e)),
            Err(e) => {
                tracing::error!(error = %e, "pull page task failed");
                Err(ErrorBody::new(ErrorCode::Internal, "storage error"))
            }
        }
    }
}

impl Drop for PageRead {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Sends one page of a pull, with the extras (files, membership entries,
/// keys) that come before each record in cursor order.
async fn send_rows(
    out: &mut ChunkBatch<'_>,
    space: Uuid,
    rows: Vec<RecordRow>,
    extras: &mut spaces::PullExtras,
) -> Result<(), ErrorBody> {
    for row in rows {
        let item = match row.version {
            Some((blob, dek)) => PullChunk::Record(PulledRecord {
                space,
                id: row.id,
                cursor: row.cursor,
                blob: blob.into(),
                dek: dek.into(),
            }),
            None => PullChunk::Tombstone(PulledTombstone {
                space,
                id: row.id,
                cursor: row.cursor,
            }),
        };
        extras.flush(out, Some(row.cursor)).await?;
        out.push(&item).await;
    }
    out.send().await;
    Ok(())
}

/// Chunks of one pull, encoded as they come and queued in groups.
struct ChunkBatch<'a> {
    conn: &'a Conn,
    id: u32,
    frames: Vec<Bytes>,
}

impl<'a> ChunkBatch<'a> {
    /// Frames queued together (bounded so the first ones leave soon).
    const SIZE: usize = 32;

    fn new(conn: &'a Conn, id: u32) -> Self {
        Self {
            conn,
            id,
            frames: Vec::with_capacity(Self::SIZE),
        }
    }

    fn conn(&self) -> &'a Conn {
        self.conn
    }

    /// Adds a chunk; queues the group once it is full.
    async fn push(&mut self, item: &PullChunk) {
        match item.encode_frame(self.id) {
            Ok(bytes) => self.frames.push(Bytes::from(bytes)),
            Err(e) => tracing::error!(error = %e, "cannot encode a pull chunk"),
        }
        if self.frames.len() >= Self::SIZE {
            self.send().await;
        }
    }

    /// Queues what has been added.
    async fn send(&mut self) {
        if !self.frames.is_empty() {
            let frames = std::mem::replace(&mut self.frames, Vec::with_capacity(Self::SIZE));
            self.conn.send_all(frames).await;
        }
    }
}

async fn chunk(conn: &Conn, id: u32, item: PullChunk) {
    let mut out = ChunkBatch::new(conn, id);
    out.push(&item).await;
    out.send().await;
}

/// Owns the sink: sends queued frames, keepalive pings and the close frame.
///
/// It sleeps until the outbox has frames or a close (one wake-up for all
/// that queued meanwhile), writes them and flushes once. The futures it
/// waits on live as long as it does, so a wake-up re-registers nothing but
/// the outbox's waker.
async fn writer(
    mut sink: SplitSink<Socket, Message>,
    outbox: Arc<Outbox>,
    keepalive: Duration,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let ping = tokio::time::sleep(keepalive);
    tokio::pin!(ping);
    let stopping = stopped(&mut shutdown);
    tokio::pin!(stopping);
    let mut shutting_down = false;
    let mut batch = Vec::new();
    loop {
        let next = tokio::select! {
            biased;
            next = outbox.next(&mut batch) => next,
            () = &mut stopping, if !shutting_down => {
                // Going away; the close frame goes out on the next turn.
                shutting_down = true;
                outbox.close_with(1001, "server shutting down");
                continue;
            }
            () = &mut ping => {
                ping.as_mut().reset(tokio::time::Instant::now() + keepalive);
                if sink.send(Message::Ping(Bytes::new())).await.is_err() {
                    break;
                }
                continue;
            }
        };
        match next {
            Next::Frames => {
                if !write_all(&mut sink, &mut batch).await {
                    break;
                }
            }
            Next::Close(code, reason) => {
                // Frames queued before the close (e.g. `revoked`) go out
                // first, except for a slow consumer, whose queue is the
                // problem.
                if code != CloseCode::SlowConsumer.code() {
                    outbox.drain(&mut batch);
                    let _ = write_all(&mut sink, &mut batch).await;
                }
                let _ = sink
                    .send(Message::Close(Some(CloseFrame {
                        code: code.into(),
                        reason: reason.into(),
                    })))
                    .await;
                break;
            }
        }
    }
    // Wake the reader if the socket died under the writer.
    outbox.close_with(1000, "connection closed");
}

/// Writes `batch` (emptying it), each frame one binary message (in
/// fragments if large, see `socket::messages`), and flushes once: the
/// socket gathers the burst into a few large writes. False if the socket
/// failed.
async fn write_all(sink: &mut SplitSink<Socket, Message>, batch: &mut Vec<Bytes>) -> bool {
    for bytes in batch.drain(..) {
        for message in socket::messages(bytes) {
            if sink.feed(message).await.is_err() {
                return false;
            }
        }
    }
    sink.flush().await.is_ok()
}

/// Resolves once the server shuts down (the watch guard is dropped here, so
/// the writer future stays `Send`).
async fn stopped(shutdown: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|down| *down).await;
}
