//! The sync engine: one loop per app and user that keeps the local store
//! and the user's spaces on the sync server in step.
//!
//! Per connection: authenticate, subscribe, pull (from the space's stored
//! cursor, until `pull.commit` without `more`), push every pending record
//! (batches under the frame and batch limits, each change naming the
//! cursor it was merged with), then stay live: a `sync` notification whose
//! `prev` is the local cursor is applied directly, any other means a gap
//! and a pull; a local write (the handle's [`SyncHandle::write`]) triggers
//! a push; the access token is refreshed before it expires. When the
//! socket drops, the engine waits (exponential backoff with jitter) and
//! starts over; everything it needs is in the store, so a restart, a
//! reload or a crash resumes where it was.
//!
//! Pulled versions are decrypted and their signatures checked before the
//! store sees them; a version that fails (tampered, wrongly signed, not
//! this user's, invalid for the schema) goes to the store's quarantine
//! with the reason and sync carries on.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use futures::channel::{mpsc, oneshot};
use futures::{FutureExt, StreamExt};
use sealbase_db::{Db, DbError, Env, RemoteRecord};
use sealbase_protocol::{
    AuthParams, ClientRequest, CloseCode, ErrorCode, Notification, PullChunk, PullParams,
    PullSpace, PushParams, PushResult, Session, SpaceRef, SubscribeParams, Subscribed,
    SyncedRecord, TokenRefreshParams, TokenRefreshed, Uuid,
};

use sealbase_crypto::Did;
use sealbase_crypto::capability::Capability;

use sealbase_crypto::EpochKey;
use sealbase_crypto::channel::ChannelKind;
use sealbase_protocol::{Bytes, EventSendParams, PresenceClearParams, PresenceSetParams};

use crate::checks::{Checks, Item, Opened};
use crate::codec;
use crate::error::SyncError;
use crate::files::{self, FileAccess};
use crate::keys::{PERSONAL_EPOCH, SyncKeys};
use crate::members::{Folded, MemberStatus};
use crate::presence::{self, Board, Ephemeral, Peer, Speakers};
use crate::rpc::{Conn, PullEvent};
use crate::spaces::{self, Invitee, Ops, Shared, SpaceInfo, SpaceStatus};
use crate::status::{Phase, StatusCell, SyncStatus};
use crate::transport::{Connector, Runtime, TokenSource, Transport};

/// Bytes a change adds to a `push` frame besides its blob: its map keys,
/// id, wrapped key and cursor (about 90), rounded up.
const CHANGE_OVERHEAD: usize = 128;

/// Engine settings.
#[derive(Debug, Clone)]
pub struct SyncConfig {
    /// The sync server's WebSocket URL (`wss://…/api/v1/ws`).
    pub url: String,
    /// First reconnect delay, ms (doubles per failed attempt).
    pub backoff_min_ms: u64,
    /// Longest reconnect delay, ms.
    pub backoff_max_ms: u64,
    /// Pulled records applied per store transaction.
    pub apply_batch: usize,
    /// Push rounds that may end in a conflict before the engine gives up
    /// on this connection (and retries after a backoff).
    pub max_conflict_rounds: u32,
    /// Scheduled rotation: an admin device rotates a shared space's key
    /// once its current epoch is this old (ms). `None`: only on removal
    /// and when asked.
    pub rotate_every_ms: Option<u64>,
}

impl SyncConfig {
    /// Defaults for `url`: backoff 0.5 s to 30 s, 512 records per
    /// transaction, 8 conflict rounds.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            backoff_min_ms: 500,
            backoff_max_ms: 30_000,
            apply_batch: 512,
            max_conflict_rounds: 8,
            rotate_every_ms: None,
        }
    }
}

/// What the app tells the engine.
enum Control {
    /// Local records changed: push.
    Changed,
    /// Try to connect now (the network is back).
    Reconnect,
    /// The platform says the network is gone: drop the socket now rather
    /// than when it times out, and wait for `Reconnect` or the backoff.
    Offline,
    /// End the loop.
    Stop,
    /// A shared-space operation to run on the connection.
    Op(Box<SpaceOp>),
}

/// Presence is sent again this often: half the server's default TTL.
pub const PRESENCE_HEARTBEAT_MS: u64 = 30_000;

/// Done operations report this.
#[derive(Debug)]
enum OpDone {
    Created(Uuid),
    Done,
    Members(Box<Folded>),
    Access(Box<FileAccess>),
}

type Reply = oneshot::Sender<Result<OpDone, SyncError>>;

/// Shared-space operations (see [`crate::spaces`]).
enum SpaceOp {
    Create(String, Reply),
    Invite(Uuid, Box<Invitee>, Capability, Reply),
    Answer(Uuid, bool, Reply),
    Remove(Uuid, Did, Reply),
    Rotate(Uuid, Reply),
    Members(Uuid, Reply),
    Presence(Uuid, Option<Vec<u8>>, Reply),
    Event(Uuid, Vec<u8>, Reply),
    /// `None`: the personal space.
    Access(Option<Uuid>, Reply),
}

impl SpaceOp {
    fn reply(self: Box<Self>, result: Result<OpDone, SyncError>) {
        let reply = match *self {
            Self::Create(_, r)
            | Self::Invite(_, _, _, r)
            | Self::Answer(_, _, r)
            | Self::Remove(_, _, r)
            | Self::Rotate(_, r)
            | Self::Members(_, r)
            | Self::Presence(_, _, r)
            | Self::Event(_, _, r)
            | Self::Access(_, r) => r,
        };
        let _ = reply.send(result);
    }
}

fn went_offline() -> SyncError {
    SyncError::Transport(crate::transport::TransportError(
        "the device went offline".into(),
    ))
}

/// Milliseconds from `now_ms` (this device's clock) until an access token
/// that expires at `expires_at` (seconds, by the server's clock) should be
/// refreshed: a minute before it expires, or half-way through what is left
/// for short-lived tokens, and never sooner than 500 ms.
///
/// Both the expiry and the measured clock skew are whole seconds, so the
/// server's clock may be up to a second ahead of the estimate; that second
/// is taken off what is left before the margin is applied, so the refresh
/// cannot race the server's 4001 close at the expiry instant.
fn refresh_delay_ms(now_ms: i64, skew_s: i64, expires_at: u64) -> u64 {
    let expires_ms = i64::try_from(expires_at)
        .unwrap_or(i64::MAX)
        .saturating_mul(1000);
    let server_now_ms = now_ms.saturating_add(skew_s.saturating_mul(1000));
    let left = expires_ms
        .saturating_sub(server_now_ms)
        .saturating_sub(1000);
    let left = u64::try_from(left).unwrap_or(0);
    let margin = (left / 2).min(60_000);
    (left - margin).max(500)
}

fn ms_i64(ms: u64) -> i64 {
    i64::try_from(ms).unwrap_or(i64::MAX)
}

fn lock<E: Env>(db: &Mutex<Db<E>>) -> MutexGuard<'_, Db<E>> {
    // A panic while the lock was held left the connection usable (every
    // write is one transaction); carry on.
    db.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The app's side of a running engine: the store (shared with the
/// engine), the status, and the controls. Cheap to clone.
pub struct SyncHandle<E: Env> {
    db: Arc<Mutex<Db<E>>>,
    control: mpsc::UnboundedSender<Control>,
    status: StatusCell,
    board: Arc<Mutex<Board>>,
}

impl<E: Env> Clone for SyncHandle<E> {
    fn clone(&self) -> Self {
        Self {
            db: self.db.clone(),
            control: self.control.clone(),
            status: self.status.clone(),
            board: self.board.clone(),
        }
    }
}

fn board(board: &Mutex<Board>) -> MutexGuard<'_, Board> {
    board
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl<E: Env> SyncHandle<E> {
    /// Runs `f` on the store and tells the engine to push what it changed.
    pub fn write<R>(&self, f: impl FnOnce(&mut Db<E>) -> Result<R, DbError>) -> Result<R, DbError> {
        let result = f(&mut lock(&self.db));
        let _ = self.control.unbounded_send(Control::Changed);
        result
    }

    /// Runs `f` on the store (queries, history, observers).
    pub fn read<R>(&self, f: impl FnOnce(&mut Db<E>) -> R) -> R {
        f(&mut lock(&self.db))
    }

    /// The current status.
    pub fn status(&self) -> SyncStatus {
        self.status.get()
    }

    /// The status, to listen to.
    pub fn status_cell(&self) -> &StatusCell {
        &self.status
    }

    /// Connects now if offline (skips the backoff delay).
    pub fn reconnect(&self) {
        let _ = self.control.unbounded_send(Control::Reconnect);
    }

    /// The device lost its network (the browser's `offline` event): the
    /// engine closes its socket at once and reports `Offline`, instead of
    /// waiting for the dead connection to fail, then retries with backoff
    /// (or at once on [`Self::reconnect`]). Writes stay pending meanwhile.
    pub fn offline(&self) {
        let _ = self.control.unbounded_send(Control::Offline);
    }

    /// Ends the engine's loop (it closes its socket and returns).
    pub fn stop(&self) {
        let _ = self.control.unbounded_send(Control::Stop);
    }

    async fn op(&self, make: impl FnOnce(Reply) -> SpaceOp) -> Result<OpDone, SyncError> {
        let (tx, rx) = oneshot::channel();
        self.control
            .unbounded_send(Control::Op(Box::new(make(tx))))
            .map_err(|_| SyncError::Refused("the sync engine has stopped".into()))?;
        rx.await
            .map_err(|_| SyncError::Refused("the sync engine has stopped".into()))?
    }

    /// Creates a shared space named `name` with this user as its root
    /// and only admin; returns its id. Needs a connection.
    pub async fn create_space(&self, name: &str) -> Result<Uuid, SyncError> {
        match self.op(|r| SpaceOp::Create(name.to_owned(), r)).await? {
            OpDone::Created(id) => Ok(id),
            other => Err(SyncError::Protocol(format!("unexpected {other:?}"))),
        }
    }

    /// Invites `invitee` (from the accounts key directory) into `space`
    /// with `role`. Admins only.
    pub async fn invite(
        &self,
        space: Uuid,
        invitee: Invitee,
        role: Capability,
    ) -> Result<(), SyncError> {
        self.op(|r| SpaceOp::Invite(space, Box::new(invitee), role, r))
            .await
            .map(drop)
    }

    /// Accepts the invitation to `space` (see [`Self::spaces`]).
    pub async fn accept(&self, space: Uuid) -> Result<(), SyncError> {
        self.op(|r| SpaceOp::Answer(space, true, r)).await.map(drop)
    }

    /// Declines the invitation to `space`.
    pub async fn decline(&self, space: Uuid) -> Result<(), SyncError> {
        self.op(|r| SpaceOp::Answer(space, false, r))
            .await
            .map(drop)
    }

    /// Removes `member` from `space` (admins only): revokes its access,
    /// rotates the key without it, records the removal.
    pub async fn remove_member(&self, space: Uuid, member: Did) -> Result<(), SyncError> {
        self.op(|r| SpaceOp::Remove(space, member, r))
            .await
            .map(drop)
    }

    /// Rotates `space`'s key now (admins only).
    pub async fn rotate(&self, space: Uuid) -> Result<(), SyncError> {
        self.op(|r| SpaceOp::Rotate(space, r)).await.map(drop)
    }

    /// The member list of a joined space, folded from its signed log.
    pub async fn members(&self, space: Uuid) -> Result<Folded, SyncError> {
        match self.op(|r| SpaceOp::Members(space, r)).await? {
            OpDone::Members(folded) => Ok(*folded),
            other => Err(SyncError::Protocol(format!("unexpected {other:?}"))),
        }
    }

    /// Sets this device's presence in `space` (the personal space or a
    /// joined shared space where the user may write) to `data`, sealed
    /// under the space's channel key; the engine sends it again every
    /// [`PRESENCE_HEARTBEAT_MS`] and after every reconnect until
    /// [`Self::clear_presence`]. Needs a connection.
    pub async fn set_presence(&self, space: Uuid, data: Vec<u8>) -> Result<(), SyncError> {
        self.op(|r| SpaceOp::Presence(space, Some(data), r))
            .await
            .map(drop)
    }

    /// Ends this device's presence in `space`.
    pub async fn clear_presence(&self, space: Uuid) -> Result<(), SyncError> {
        self.op(|r| SpaceOp::Presence(space, None, r))
            .await
            .map(drop)
    }

    /// Sends an ephemeral event (never stored) to the other devices
    /// subscribed to `space` now, sealed under its channel key.
    pub async fn send_event(&self, space: Uuid, data: Vec<u8>) -> Result<(), SyncError> {
        self.op(|r| SpaceOp::Event(space, data, r)).await.map(drop)
    }

    /// The peers present in `space` (other connections, verified).
    pub fn presence(&self, space: Uuid) -> Vec<Peer> {
        board(&self.board).present(&space)
    }

    /// Presence changes and events as they arrive.
    pub fn ephemeral(&self) -> mpsc::UnboundedReceiver<Ephemeral> {
        board(&self.board).listen()
    }

    /// What a file transfer in `space` needs: an access token, the
    /// capability, and the space's keys. Needs a connection (the keys
    /// must be current).
    pub async fn file_access(&self, space: Uuid) -> Result<FileAccess, SyncError> {
        self.access(Some(space)).await
    }

    /// [`Self::file_access`] for the space record `id` is in (the personal
    /// space unless it was put into a shared one): files belong to the
    /// record that refers to them.
    pub async fn record_file_access(&self, id: &str) -> Result<FileAccess, SyncError> {
        let space = lock(&self.db).record_space(id)?.ok_or_else(|| {
            SyncError::Refused(format!("there is no record {id:?} to attach a file to"))
        })?;
        let space = match space {
            Some(space) => Some(Uuid::parse_str(&space).map_err(|_| {
                SyncError::Protocol(format!("record {id:?} is in a space named {space:?}"))
            })?),
            None => None,
        };
        self.access(space).await
    }

    async fn access(&self, space: Option<Uuid>) -> Result<FileAccess, SyncError> {
        match self.op(|r| SpaceOp::Access(space, r)).await? {
            OpDone::Access(access) => Ok(*access),
            other => Err(SyncError::Protocol(format!("unexpected {other:?}"))),
        }
    }

    /// The user's spaces (created, joined, invited to, declined, removed
    /// from), as stored in the personal space.
    pub fn spaces(&self) -> Result<Vec<SpaceInfo>, DbError> {
        spaces::list(&lock(&self.db))
    }

    /// Puts a record that was never synced into a joined shared space.
    pub fn assign(&self, id: &str, space: Uuid) -> Result<(), DbError> {
        self.write(|db| db.assign_space(id, &space.to_string()))
    }

    /// Moves live records of `collection` into `to` (a joined shared
    /// space where this user may write; `None`: the personal space). Each
    /// record becomes a new record in `to` with the same fields and history
    /// (its Automerge document), and the original is deleted where it was;
    /// records already in `to` stay as they are. Returns the records' ids
    /// in `to`, in order. All or nothing, in one local transaction; works
    /// offline (the engine pushes both sides when it can).
    ///
    /// A record that seems never to have reached the server moves the same
    /// way: its first push may be in flight, and the deletion of the
    /// original is what takes it out of the old space if it lands.
    pub fn move_records(
        &self,
        collection: &str,
        ids: &[&str],
        to: Option<Uuid>,
    ) -> Result<Vec<String>, SyncError> {
        let mut db = lock(&self.db);
        let writable = |db: &Db<E>, space: &str| -> Result<(), SyncError> {
            let Ok(id) = Uuid::parse_str(space) else {
                return Err(SyncError::Refused(format!("{space:?} is not a space id")));
            };
            match spaces::get(db, &id)? {
                // Not a shared space the user knows: the personal space.
                None => Ok(()),
                Some(info)
                    if info.status == SpaceStatus::Joined && info.role >= Capability::Write =>
                {
                    Ok(())
                }
                Some(info) => Err(SyncError::Refused(format!(
                    "space {id} is {} for you ({:?}): records cannot move in or out",
                    info.role.as_str(),
                    info.status
                ))),
            }
        };
        if let Some(to) = to {
            match spaces::get(&db, &to)? {
                Some(_) => writable(&db, &to.to_string())?,
                None => {
                    return Err(SyncError::Refused(format!(
                        "{to} is not one of your shared spaces"
                    )));
                }
            }
        }
        let target = to.map(|t| t.to_string());
        let mut checked = Vec::with_capacity(ids.len());
        for id in ids {
            if collection == spaces::SPACES {
                return Err(SyncError::Refused("space records do not move".into()));
            }
            let Some(from) = db.record_space(id)? else {
                return Err(DbError::NotFound {
                    collection: collection.to_owned(),
                    id: (*id).to_owned(),
                }
                .into());
            };
            if let Some(from) = &from {
                writable(&db, from)?;
            }
            checked.push((*id, from));
        }
        let moved = db.batch(|db| {
            let mut moved = Vec::with_capacity(checked.len());
            for (id, from) in &checked {
                let here = match (from, &target) {
                    (None, None) => true,
                    (Some(from), Some(to)) => from == to,
                    // A shared space's record moving to the personal space.
                    _ => false,
                };
                if here {
                    moved.push((*id).to_owned());
                } else {
                    let new_id = spaces::random_uuid().to_string();
                    db.copy_record(collection, id, &new_id)?;
                    if let Some(to) = &target {
                        db.assign_space(&new_id, to)?;
                    }
                    db.delete(collection, id)?;
                    moved.push(new_id);
                }
            }
            Ok(moved)
        })?;
        drop(db);
        let _ = self.control.unbounded_send(Control::Changed);
        Ok(moved)
    }
}

/// How a connection ended without an error.
enum Exit {
    Stop,
    Reconnect,
}

/// The loop. Build it with [`SyncEngine::new`] and drive [`SyncEngine::run`]
/// on any executor (natively, [`crate::native::spawn`] gives it a thread).
pub struct SyncEngine<E: Env, C, R, T> {
    config: SyncConfig,
    keys: SyncKeys,
    db: Arc<Mutex<Db<E>>>,
    connector: C,
    runtime: R,
    tokens: T,
    status: StatusCell,
    control: mpsc::UnboundedReceiver<Control>,
    /// Local records the server refused, with the reason.
    rejected: HashMap<String, String>,
    /// Server time minus local time, seconds (from `auth`).
    skew: i64,
    /// The personal space of the current session.
    personal: Uuid,
    /// Joined shared spaces, while connected.
    shared: BTreeMap<Uuid, Shared>,
    /// Peers present, and the app's listeners.
    board: Arc<Mutex<Board>>,
    /// This device's presence per space, sent again on every heartbeat.
    own_presence: BTreeMap<Uuid, Vec<u8>>,
    /// When the next heartbeat and scheduled-rotation check are due
    /// (local Unix ms).
    housekeeping_at: i64,
    /// The engine itself changed a record of the personal space (a
    /// space's keys or status): push it.
    personal_changed: bool,
}

impl<E, C, R, T> SyncEngine<E, C, R, T>
where
    E: Env,
    C: Connector,
    R: Runtime,
    T: TokenSource,
{
    /// An engine for `db` (whose local changes are signed as this user's
    /// from now on) and the handle to use it.
    pub fn new(
        config: SyncConfig,
        keys: SyncKeys,
        mut db: Db<E>,
        connector: C,
        runtime: R,
        tokens: T,
    ) -> (Self, SyncHandle<E>) {
        db.set_author(Some(keys.did().to_string()));
        // A constant declaration: it cannot fail but for a store error,
        // which the first sync reports again.
        let _ = db.define_migrated(spaces::spaces_collection(), spaces::spaces_migrations());
        let db = Arc::new(Mutex::new(db));
        let (tx, rx) = mpsc::unbounded();
        let status = StatusCell::default();
        let board = Arc::new(Mutex::new(Board::default()));
        let handle = SyncHandle {
            db: db.clone(),
            control: tx,
            status: status.clone(),
            board: board.clone(),
        };
        let engine = Self {
            config,
            keys,
            db,
            connector,
            runtime,
            tokens,
            status,
            control: rx,
            rejected: HashMap::new(),
            skew: 0,
            personal: Uuid::nil(),
            shared: BTreeMap::new(),
            board,
            own_presence: BTreeMap::new(),
            housekeeping_at: 0,
            personal_changed: false,
        };
        (engine, handle)
    }

    /// Syncs until [`SyncHandle::stop`] (or every handle is dropped).
    pub async fn run(mut self) {
        let mut failures: u32 = 0;
        loop {
            self.status.update(|s| {
                s.phase = Phase::Connecting;
                s.retry_in_ms = None;
            });
            let mut established = false;
            let outcome = self.connection(&mut established).await;
            if established {
                failures = 0;
            }
            match outcome {
                Ok(Exit::Stop) => break,
                Ok(Exit::Reconnect) => continue,
                Err(error) => {
                    failures = failures.saturating_add(1);
                    let delay = self.backoff(failures);
                    let message = error.to_string();
                    self.refresh_pending();
                    self.status.update(|s| {
                        s.phase = Phase::Offline;
                        s.last_error = Some(message);
                        s.retry_in_ms = Some(delay);
                    });
                    if self.wait(delay).await {
                        break;
                    }
                }
            }
        }
        self.status.update(|s| {
            s.phase = Phase::Stopped;
            s.retry_in_ms = None;
        });
    }

    /// Full jitter over an exponential ceiling: uniformly in [d/2, d].
    fn backoff(&self, failures: u32) -> u64 {
        let exp = failures.saturating_sub(1).min(20);
        let ceiling = self
            .config
            .backoff_min_ms
            .saturating_mul(1 << exp)
            .min(self.config.backoff_max_ms)
            .max(1);
        let mut random = [0u8; 8];
        sealbase_crypto::RngCore::fill_bytes(&mut sealbase_crypto::OsRng, &mut random);
        let half = ceiling / 2;
        half + u64::from_le_bytes(random) % (ceiling - half + 1)
    }

    /// Sleeps `ms` unless told to reconnect (returns false) or stop (true).
    async fn wait(&mut self, ms: u64) -> bool {
        let sleep = self.runtime.sleep(ms).fuse();
        futures::pin_mut!(sleep);
        loop {
            let control = self.control.next().fuse();
            futures::pin_mut!(control);
            futures::select_biased! {
                c = control => match c {
                    None | Some(Control::Stop) => return true,
                    Some(Control::Reconnect) => return false,
                    Some(Control::Offline) => {}
                    // Stays pending in the store; pushed once connected.
                    Some(Control::Changed) => self.refresh_pending(),
                    Some(Control::Op(op)) => op.reply(Err(SyncError::Refused(
                        "offline: space operations need a connection to the sync server".into(),
                    ))),
                },
                () = sleep => return false,
            }
        }
    }

    fn refresh_pending(&self) {
        let pending = lock(&self.db).pending_count().unwrap_or(0);
        let rejected = u64::try_from(self.rejected.len()).unwrap_or(u64::MAX);
        self.status.update(|s| {
            s.pending = pending.saturating_sub(rejected);
            s.rejected = rejected;
        });
    }

    async fn connection(&mut self, established: &mut bool) -> Result<Exit, SyncError> {
        let token = self.tokens.access_token().await.map_err(SyncError::Token)?;
        let transport = self.connector.connect(&self.config.url).await?;
        let mut conn = Conn::new(transport);
        let result = self.session(&mut conn, token, established).await;
        conn.close().await;
        // The server tells everyone present again after the next subscribe.
        board(&self.board).clear(None);
        match result {
            // An expired token is routine: reconnect with a fresh one.
            Err(e) if e.close_code() == Some(CloseCode::TokenExpired) => Ok(Exit::Reconnect),
            other => other,
        }
    }

    async fn session<X: Transport>(
        &mut self,
        conn: &mut Conn<X>,
        token: String,
        established: &mut bool,
    ) -> Result<Exit, SyncError> {
        let session: Session = conn.call(ClientRequest::Auth(AuthParams { token })).await?;
        let did = self.keys.did().to_string();
        if session.did != did {
            return Err(SyncError::WrongIdentity {
                session: session.did,
                keys: did,
            });
        }
        *established = true;
        let now_s = self.runtime.now_ms() / 1000;
        self.skew = i64::try_from(session.server_time).unwrap_or(i64::MAX) - now_s;
        let mut expires_at = session.expires_at;
        self.status.update(|s| s.connections += 1);
        let space = session.personal_space;
        let limits = session.limits;

        let subscribed: Subscribed = conn
            .call(ClientRequest::Subscribe(SubscribeParams {
                spaces: vec![SpaceRef {
                    id: space,
                    cap: None,
                }],
            }))
            .await?;
        if let Some(denied) = subscribed.denied.first() {
            return Err(SyncError::Denied(denied.error.message.clone()));
        }

        self.personal = space;
        self.shared.clear();
        self.pull(conn, space).await?;
        self.push(conn, space, &limits).await?;
        self.open_spaces(conn, &limits).await?;
        self.check_mailbox(conn).await?;
        // Presence set before a reconnect, and any rotation due.
        self.housekeeping_at = 0;
        self.housekeeping(conn, &limits).await?;
        self.push_personal_changes(conn, &limits).await?;
        self.live();
        let mut refresh_at = self.runtime.now_ms() + ms_i64(self.refresh_delay(expires_at));

        loop {
            while let Some(n) = conn.take_notification() {
                self.notification(conn, &limits, n).await?;
            }
            self.push_personal_changes(conn, &limits).await?;
            let now = self.runtime.now_ms();
            let wake_at = refresh_at.min(self.housekeeping_at);
            let wake_in = u64::try_from(wake_at.saturating_sub(now)).unwrap_or(0);
            enum Event {
                Frame(Result<Option<sealbase_protocol::Frame>, SyncError>),
                Control(Option<Control>),
                Timer,
            }
            let event = {
                let recv = conn.recv().fuse();
                let control = self.control.next().fuse();
                let timer = self.runtime.sleep(wake_in).fuse();
                futures::pin_mut!(recv, control, timer);
                futures::select_biased! {
                    c = control => Event::Control(c),
                    f = recv => Event::Frame(f),
                    () = timer => Event::Timer,
                }
            };
            match event {
                // Notifications were queued by `recv`; stray responses and
                // chunks (none are expected between requests) are dropped.
                Event::Frame(frame) => {
                    frame?;
                }
                Event::Control(None | Some(Control::Stop)) => return Ok(Exit::Stop),
                Event::Control(Some(Control::Reconnect)) => {}
                Event::Control(Some(Control::Offline)) => return Err(went_offline()),
                Event::Control(Some(Control::Changed)) => {
                    // Coalesce a burst of writes into one push.
                    let mut ops = Vec::new();
                    while let Ok(c) = self.control.try_recv() {
                        match c {
                            Control::Stop => return Ok(Exit::Stop),
                            Control::Offline => return Err(went_offline()),
                            Control::Op(op) => ops.push(op),
                            Control::Changed | Control::Reconnect => {}
                        }
                    }
                    self.push_all(conn, &limits).await?;
                    for op in ops {
                        self.run_op(conn, &limits, op).await?;
                    }
                    self.live();
                }
                Event::Control(Some(Control::Op(op))) => {
                    self.run_op(conn, &limits, op).await?;
                    self.live();
                }
                Event::Timer => {
                    if self.runtime.now_ms() >= refresh_at {
                        let token = self.tokens.access_token().await.map_err(SyncError::Token)?;
                        let refreshed: TokenRefreshed = conn
                            .call(ClientRequest::TokenRefresh(TokenRefreshParams { token }))
                            .await?;
                        expires_at = refreshed.expires_at;
                        refresh_at = self.runtime.now_ms() + ms_i64(self.refresh_delay(expires_at));
                    }
                    if self.runtime.now_ms() >= self.housekeeping_at {
                        self.housekeeping(conn, &limits).await?;
                    }
                }
            }
        }
    }

    fn refresh_delay(&self, expires_at: u64) -> u64 {
        refresh_delay_ms(self.runtime.now_ms(), self.skew, expires_at)
    }

    fn live(&mut self) {
        self.refresh_pending();
        let now = self.runtime.now_ms();
        self.status.update(|s| {
            s.phase = Phase::Live;
            s.synced_at = Some(now);
            s.retry_in_ms = None;
        });
    }

    /// Pulls `space` from its stored cursor until the server has nothing
    /// more.
    async fn pull<X: Transport>(
        &mut self,
        conn: &mut Conn<X>,
        space: Uuid,
    ) -> Result<(), SyncError> {
        self.status.update(|s| s.phase = Phase::Pulling);
        let space_key = space.to_string();
        let personal = space == self.personal;
        let cap = match self.shared.get(&space) {
            Some(shared) => Some(shared.cap.clone()),
            None if personal => None,
            None => return Ok(()),
        };
        loop {
            let since = lock(&self.db).space_cursor(&space_key)?;
            let mut reset = false;
            let mut seen: HashSet<String> = HashSet::new();
            let mut commit = None;
            // Versions are decrypted as they arrive; their signatures are
            // checked in batches (elsewhere, if the runtime can), and
            // batches are applied in order once checked.
            let mut checks = Checks::new(self.config.apply_batch);
            let id = conn
                .start_pull(PullParams {
                    spaces: vec![PullSpace {
                        id: space,
                        since,
                        cap: cap.clone(),
                    }],
                })
                .await?;
            let result = loop {
                let chunk = match conn.next_pull(id).await? {
                    PullEvent::Chunk(chunk) => chunk,
                    PullEvent::Done(result) => break result,
                };
                match chunk {
                    PullChunk::Begin(begin) if begin.space == space => reset = begin.reset,
                    PullChunk::Record(r) if r.space == space => {
                        if reset {
                            seen.insert(r.id.to_string());
                        }
                        let opened = self.open(space, r.id, r.cursor, &r.blob.0, &r.dek);
                        checks.push(opened, &self.runtime);
                    }
                    PullChunk::Tombstone(t) if t.space == space => {
                        let tombstone = Item::Tombstone {
                            id: t.id,
                            cursor: t.cursor,
                        };
                        checks.push(Opened::Ready(tombstone), &self.runtime);
                    }
                    PullChunk::Commit(c) if c.space == space => commit = Some(c),
                    PullChunk::Key(k) if k.space == space => {
                        if let Some(shared) = self.shared.get_mut(&space) {
                            spaces::open_keys(
                                self.keys.identity(),
                                &space,
                                std::slice::from_ref(&k.key),
                                &mut shared.keys,
                            );
                        }
                    }
                    PullChunk::Membership(m) if m.space == space => {
                        if let Some(shared) = self.shared.get_mut(&space) {
                            shared.folded.apply(
                                &space,
                                std::slice::from_ref(&m.entry),
                                &shared.keys,
                            );
                        }
                    }
                    // Files are listed by the files API.
                    _ => {}
                }
                while let Some(items) = checks.next_due().await {
                    lock(&self.db).batch(|db| self.apply(db, &space_key, items))?;
                }
            };
            // The rest, then the stream's cursor.
            while let Some(items) = checks.next_left(&self.runtime).await {
                lock(&self.db).batch(|db| self.apply(db, &space_key, items))?;
            }
            let mut more = false;
            if let Some(commit) = commit {
                lock(&self.db).batch(|db| {
                    if reset {
                        db.reset_space(&space_key, personal, &seen)?;
                    }
                    db.set_space_cursor(&space_key, commit.cursor)
                })?;
                more = commit.more;
            }
            if let Some(denied) = result.denied.first() {
                if personal {
                    return Err(SyncError::Denied(denied.error.message.clone()));
                }
                self.lose_space(space, &denied.error.message)?;
                return Ok(());
            }
            if !more {
                return self.after_fold(space);
            }
        }
    }

    /// Decrypts one pulled version and checks all but its signature (that
    /// check comes with the version's batch).
    fn open(
        &self,
        space: Uuid,
        id: Uuid,
        cursor: u64,
        blob: &[u8],
        dek: &sealbase_protocol::WrappedKey,
    ) -> Opened {
        let opened = match self.shared.get(&space) {
            Some(shared) => {
                codec::open_shared_unchecked(&shared.keys, &shared.folded, &space, &id, blob, dek)
            }
            None => codec::open_personal_unchecked(&self.keys, &space, &id, blob, dek),
        };
        match opened {
            Ok((envelope, check)) => Opened::Unchecked {
                id,
                cursor,
                envelope: Box::new(envelope),
                check: Box::new(check),
            },
            Err(error) => Opened::Ready(Item::Refused { id, cursor, error }),
        }
    }

    /// Applies opened items to the store (inside the caller's batch).
    /// Records the store refuses are quarantined; only a store failure is
    /// an error.
    fn apply(&self, db: &mut Db<E>, space: &str, items: Vec<Item>) -> Result<(), DbError> {
        let mut pulled = 0u64;
        let mut refused: Vec<String> = Vec::new();
        for item in items {
            match item {
                Item::Record {
                    id,
                    cursor,
                    envelope,
                } => {
                    let id = id.to_string();
                    let remote = RemoteRecord {
                        space,
                        id: &id,
                        cursor,
                        collection: envelope.collection(),
                        schema_version: envelope.schema_version(),
                        doc: envelope.doc(),
                        heads: envelope.heads(),
                    };
                    match db.merge_remote(&remote) {
                        Ok(_) => pulled += 1,
                        Err(DbError::Sqlite(e)) => return Err(DbError::Sqlite(e)),
                        Err(e) => {
                            let error = e.to_string();
                            db.quarantine(space, &id, cursor, &error)?;
                            refused.push(format!("record {id}: {error}"));
                        }
                    }
                }
                Item::Tombstone { id, cursor } => {
                    db.apply_remote_delete(space, &id.to_string(), cursor)?;
                    pulled += 1;
                }
                Item::Refused { id, cursor, error } => {
                    let id = id.to_string();
                    db.quarantine(space, &id, cursor, &error)?;
                    refused.push(format!("record {id}: {error}"));
                }
            }
        }
        let quarantined = u64::try_from(db.quarantined()?.len()).unwrap_or(u64::MAX);
        self.status.update(|s| {
            s.pulled += pulled;
            s.quarantined = quarantined;
            if let Some(last) = refused.pop() {
                s.last_error = Some(last);
            }
        });
        Ok(())
    }

    /// Handles a server notification.
    async fn notification<X: Transport>(
        &mut self,
        conn: &mut Conn<X>,
        limits: &sealbase_protocol::SessionLimits,
        notification: Notification,
    ) -> Result<(), SyncError> {
        let sync = match notification {
            Notification::Sync(sync) => sync,
            Notification::Membership(m) => {
                let local = lock(&self.db).space_cursor(&m.space.to_string())?;
                let Some(shared) = self.shared.get_mut(&m.space) else {
                    return Ok(());
                };
                if m.prev == local {
                    shared
                        .folded
                        .apply(&m.space, std::slice::from_ref(&m.entry), &shared.keys);
                    lock(&self.db).set_space_cursor(&m.space.to_string(), m.cursor)?;
                    return self.after_fold(m.space);
                }
                self.pull(conn, m.space).await?;
                return Ok(());
            }
            Notification::Revoked(revoked) => {
                for space in revoked.spaces {
                    if self.shared.contains_key(&space) {
                        self.lose_space(space, revoked.reason.as_str())?;
                    }
                }
                return Ok(());
            }
            Notification::Invitation(n) => {
                self.store_invitation(&n.invitation)?;
                return Ok(());
            }
            Notification::Presence(p) => {
                self.heard(p.space, p.peer, &p.did, &p.data.0, ChannelKind::Presence);
                return Ok(());
            }
            Notification::PresenceLeave(l) => {
                board(&self.board).leave(l.space, l.peer);
                return Ok(());
            }
            Notification::Event(e) => {
                self.heard(e.space, e.peer, &e.did, &e.data.0, ChannelKind::Event);
                return Ok(());
            }
            // The file's record says which files exist; the bytes are
            // fetched when the app asks (`crate::files`).
            Notification::File(f) => {
                let local = lock(&self.db).space_cursor(&f.space.to_string())?;
                if f.prev == local {
                    lock(&self.db).set_space_cursor(&f.space.to_string(), f.cursor)?;
                } else if f.cursor > local {
                    self.pull(conn, f.space).await?;
                }
                return Ok(());
            }
        };
        let space = sync.space;
        if space != self.personal && !self.shared.contains_key(&space) {
            return Ok(());
        }
        if let Some(shared) = self.shared.get_mut(&space)
            && spaces::open_keys(self.keys.identity(), &space, &sync.keys, &mut shared.keys)
        {
            self.save_keys(space)?;
        }
        let space_key = space.to_string();
        let local = lock(&self.db).space_cursor(&space_key)?;
        if sync.cursor <= local {
            return Ok(());
        }
        if sync.prev != local {
            // A gap: something came between; the pull brings it all.
            self.pull(conn, space).await?;
        } else {
            let mut checks = Checks::new(sync.records.len());
            for SyncedRecord { id, blob, dek } in &sync.records {
                let opened = match (blob, dek) {
                    (Some(blob), Some(dek)) => self.open(space, *id, sync.cursor, &blob.0, dek),
                    _ => Opened::Ready(Item::Tombstone {
                        id: *id,
                        cursor: sync.cursor,
                    }),
                };
                checks.push(opened, &self.runtime);
            }
            let mut items = Vec::new();
            while let Some(batch) = checks.next_left(&self.runtime).await {
                items.extend(batch);
            }
            lock(&self.db).batch(|db| {
                self.apply(db, &space_key, items)?;
                db.set_space_cursor(&space_key, sync.cursor)
            })?;
        }
        // A pulled change may have merged into a record with local edits.
        self.push(conn, space, limits).await?;
        if space == self.personal {
            // Another device of this user created or joined a space: its
            // record (keys, capability) just arrived; sync it from now on.
            self.open_spaces(conn, limits).await?;
        }
        self.live();
        Ok(())
    }

    /// Pushes every pending record of the personal space.
    async fn push<X: Transport>(
        &mut self,
        conn: &mut Conn<X>,
        space: Uuid,
        limits: &sealbase_protocol::SessionLimits,
    ) -> Result<(), SyncError> {
        let space_key = space.to_string();
        let personal = space == self.personal;
        let cap = self.shared.get(&space).map(|s| s.cap.clone());
        if !personal && cap.is_none() {
            return Ok(());
        }
        let max_changes = usize::try_from(limits.max_push_changes).unwrap_or(1).max(1);
        // Room for the frame's own fields and each change's id, key and
        // cursor; blobs fill the rest.
        let budget = usize::try_from(limits.max_frame)
            .unwrap_or(usize::MAX)
            .saturating_sub(1024);
        let mut conflicts = 0u32;
        loop {
            let batch = {
                let db = lock(&self.db);
                db.pending_in(&space_key, personal, max_changes + self.rejected.len())?
            };
            let mut changes = Vec::new();
            let mut read_at: Vec<(String, i64)> = Vec::new();
            let mut size = 0usize;
            let mut skipped_tombstones = Vec::new();
            for pending in batch {
                if self.rejected.contains_key(&pending.id) {
                    continue;
                }
                if pending.deleted && pending.cursor == 0 {
                    // Created and deleted before it ever reached the server.
                    skipped_tombstones.push((pending.id, pending.seq));
                    continue;
                }
                let sealing = match self.shared.get(&space) {
                    Some(shared) if shared.role < Capability::Write => {
                        Err("this space is read-only for you".to_owned())
                    }
                    Some(shared) => shared
                        .current()
                        .map(|(epoch, key)| (epoch, key.clone()))
                        .ok_or_else(|| "no key for this space".to_owned()),
                    None => Ok((PERSONAL_EPOCH, self.keys.personal_epoch_key().clone())),
                };
                let change = match sealing.and_then(|(epoch, key)| {
                    codec::seal_change(self.keys.identity(), epoch, &key, &space, &pending)
                }) {
                    Ok(change) => change,
                    Err(error) => {
                        self.rejected.insert(pending.id.clone(), error);
                        continue;
                    }
                };
                let len = change.blob.as_ref().map_or(0, |b| b.len()) + CHANGE_OVERHEAD;
                if change
                    .blob
                    .as_ref()
                    .is_some_and(|b| b.len() > limits.max_blob as usize)
                {
                    self.rejected.insert(
                        pending.id.clone(),
                        format!(
                            "the record is {len} bytes sealed, above the server's limit of {}",
                            limits.max_blob
                        ),
                    );
                    continue;
                }
                if !changes.is_empty() && (size + len > budget || changes.len() >= max_changes) {
                    break;
                }
                size += len;
                read_at.push((pending.id, pending.seq));
                changes.push(change);
            }
            if !skipped_tombstones.is_empty() {
                let mut db = lock(&self.db);
                db.batch(|db| {
                    for (id, seq) in &skipped_tombstones {
                        db.mark_pushed(id, *seq, &space_key, 0)?;
                    }
                    Ok(())
                })?;
            }
            if changes.is_empty() {
                if skipped_tombstones.is_empty() {
                    self.report_rejected();
                    return Ok(());
                }
                continue;
            }
            self.status.update(|s| s.phase = Phase::Pushing);
            let count = changes.len();
            let result: Result<PushResult, SyncError> = conn
                .call(ClientRequest::Push(PushParams {
                    space,
                    cap: cap.clone(),
                    changes: changes.clone(),
                }))
                .await;
            match result {
                Ok(PushResult::Applied { prev, cursor }) => {
                    conflicts = 0;
                    if self.acknowledge(&space_key, &read_at, prev, cursor)? {
                        self.pull(conn, space).await?;
                    }
                }
                Ok(PushResult::Conflict { records }) => {
                    conflicts += 1;
                    if conflicts > self.config.max_conflict_rounds {
                        return Err(SyncError::Busy(conflicts));
                    }
                    let local = lock(&self.db).space_cursor(&space_key)?;
                    for record in &records {
                        // A version at or below our cursor that we still
                        // do not have was refused when pulled: pushing
                        // over it would need to merge it first.
                        if record.cursor <= local {
                            let held = lock(&self.db).record_cursor(&record.id.to_string())?;
                            if held != record.cursor {
                                self.rejected.insert(
                                    record.id.to_string(),
                                    format!(
                                        "the server's version (cursor {}) could not be merged here; see the quarantine",
                                        record.cursor
                                    ),
                                );
                            }
                        }
                    }
                    self.pull(conn, space).await?;
                }
                Err(SyncError::Server { error, .. })
                    if error.code == ErrorCode::StaleEpoch && !personal =>
                {
                    // The key rotated meanwhile: fetch it and seal again.
                    conflicts += 1;
                    if conflicts > self.config.max_conflict_rounds {
                        return Err(SyncError::Busy(conflicts));
                    }
                    self.fetch_keys(conn, space).await?;
                }
                Err(SyncError::Server { error, .. })
                    if matches!(
                        error.code,
                        ErrorCode::BadRequest | ErrorCode::PayloadTooLarge
                    ) =>
                {
                    if count == 1 {
                        if let Some((id, _)) = read_at.first() {
                            self.rejected.insert(id.clone(), error.message);
                        }
                    } else {
                        // Find the culprit: push the batch one by one.
                        self.push_each(conn, space, changes, read_at).await?;
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// After a refused batch: each change alone, so only the refused ones
    /// are set aside.
    async fn push_each<X: Transport>(
        &mut self,
        conn: &mut Conn<X>,
        space: Uuid,
        changes: Vec<sealbase_protocol::Change>,
        read_at: Vec<(String, i64)>,
    ) -> Result<(), SyncError> {
        let space_key = space.to_string();
        let cap = self.shared.get(&space).map(|s| s.cap.clone());
        for (change, (id, seq)) in changes.into_iter().zip(read_at) {
            let result: Result<PushResult, SyncError> = conn
                .call(ClientRequest::Push(PushParams {
                    space,
                    cap: cap.clone(),
                    changes: vec![change],
                }))
                .await;
            match result {
                Ok(PushResult::Applied { prev, cursor }) => {
                    // A gap is pulled by the caller's next round.
                    self.acknowledge(&space_key, &[(id, seq)], prev, cursor)?;
                }
                // Pulled and retried by the caller's next round.
                Ok(PushResult::Conflict { .. }) => {}
                Err(SyncError::Server { error, .. }) => {
                    self.rejected.insert(id, error.message);
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// The server applied a push of `records` (id, seq read) at `cursor`:
    /// they are no longer pending (unless edited since), and the space
    /// cursor moves if nothing came between (`prev` is ours). Returns
    /// whether something did (a gap to pull).
    fn acknowledge(
        &self,
        space: &str,
        records: &[(String, i64)],
        prev: u64,
        cursor: u64,
    ) -> Result<bool, DbError> {
        let gap = lock(&self.db).batch(|db| {
            for (id, seq) in records {
                db.mark_pushed(id, *seq, space, cursor)?;
            }
            if db.space_cursor(space)? == prev {
                db.set_space_cursor(space, cursor)?;
                Ok(false)
            } else {
                Ok(true)
            }
        })?;
        let count = u64::try_from(records.len()).unwrap_or(u64::MAX);
        self.status.update(|s| s.pushed += count);
        Ok(gap)
    }

    /// Pushes the personal space, then every joined shared space.
    async fn push_all<X: Transport>(
        &mut self,
        conn: &mut Conn<X>,
        limits: &sealbase_protocol::SessionLimits,
    ) -> Result<(), SyncError> {
        self.push(conn, self.personal, limits).await?;
        let shared: Vec<Uuid> = self.shared.keys().copied().collect();
        for space in shared {
            self.push(conn, space, limits).await?;
        }
        Ok(())
    }

    fn ops<'a, X: Transport>(&'a self, conn: &'a mut Conn<X>) -> Ops<'a, X> {
        let now = self.runtime.now_ms() / 1000;
        Ops {
            conn,
            me: self.keys.identity(),
            now: u64::try_from(now.saturating_add(self.skew)).unwrap_or(0),
            now_ms: self.runtime.now_ms(),
        }
    }

    /// Opens every joined space stored in the personal space: subscribes,
    /// folds its log, finishes an interrupted rotation, pulls, pushes.
    async fn open_spaces<X: Transport>(
        &mut self,
        conn: &mut Conn<X>,
        limits: &sealbase_protocol::SessionLimits,
    ) -> Result<(), SyncError> {
        let joined: Vec<SpaceInfo> = spaces::list(&lock(&self.db))?
            .into_iter()
            .filter(|s| s.status == SpaceStatus::Joined && !self.shared.contains_key(&s.id))
            .collect();
        for info in joined {
            self.open_space(conn, limits, &info).await?;
        }
        Ok(())
    }

    async fn open_space<X: Transport>(
        &mut self,
        conn: &mut Conn<X>,
        limits: &sealbase_protocol::SessionLimits,
        info: &SpaceInfo,
    ) -> Result<(), SyncError> {
        let Some(mut shared) = Shared::from_info(info) else {
            return Ok(());
        };
        let space = info.id;
        let subscribed: Subscribed = conn
            .call(ClientRequest::Subscribe(SubscribeParams {
                spaces: vec![SpaceRef {
                    id: space,
                    cap: Some(shared.cap.clone()),
                }],
            }))
            .await?;
        if let Some(denied) = subscribed.denied.first() {
            if denied.error.code == ErrorCode::Forbidden {
                return self.lose_space(space, &denied.error.message);
            }
            return Err(SyncError::Denied(denied.error.message.clone()));
        }
        {
            let mut ops = self.ops(conn);
            ops.fetch_keys(space, &mut shared).await?;
            ops.refresh_log(space, &mut shared).await?;
            ops.resume_rotation(space, &mut shared).await?;
        }
        self.shared.insert(space, shared);
        self.save_keys(space)?;
        self.pull(conn, space).await?;
        if self.shared.contains_key(&space) {
            self.push(conn, space, limits).await?;
        }
        Ok(())
    }

    /// After the log grew: a device of a removed member stops there.
    fn after_fold(&mut self, space: Uuid) -> Result<(), SyncError> {
        let me = self.keys.did();
        let removed = self.shared.get(&space).is_some_and(|s| {
            s.folded
                .member(&me)
                .is_some_and(|m| m.status == MemberStatus::Removed)
        });
        if removed {
            self.lose_space(space, "removed from the space")?;
        }
        Ok(())
    }

    /// A relayed presence or event: opened and checked, then shown.
    fn heard(&mut self, space: Uuid, peer: Uuid, did: &str, blob: &[u8], kind: ChannelKind) {
        let me = self.keys.did();
        let personal_keys;
        let (keys, speakers) = if space == self.personal {
            personal_keys =
                BTreeMap::from([(PERSONAL_EPOCH, self.keys.personal_epoch_key().clone())]);
            (&personal_keys, Speakers::Me(&me))
        } else if let Some(shared) = self.shared.get(&space) {
            (&shared.keys, Speakers::Members(&shared.folded))
        } else {
            return;
        };
        match presence::open(keys, speakers, &space, kind, did, blob) {
            Ok((did, data)) => {
                let mut board = board(&self.board);
                match kind {
                    ChannelKind::Presence => board.set(Peer {
                        space,
                        peer,
                        did,
                        data,
                        seen_ms: self.runtime.now_ms(),
                    }),
                    ChannelKind::Event => board.event(Ephemeral::Event {
                        space,
                        peer,
                        did,
                        data,
                    }),
                }
            }
            Err(why) => self.status.update(|s| {
                s.last_error = Some(format!(
                    "{kind:?} from {did} in space {space} dropped: {why}"
                ));
            }),
        }
    }

    /// The key, epoch and capability this device speaks with in `space`.
    fn speaking(&self, space: Uuid) -> Result<(u32, EpochKey, Option<String>), SyncError> {
        if space == self.personal {
            return Ok((PERSONAL_EPOCH, self.keys.personal_epoch_key().clone(), None));
        }
        let shared = self
            .shared
            .get(&space)
            .ok_or_else(|| SyncError::Refused(format!("not a member of space {space}")))?;
        if shared.role < Capability::Write {
            return Err(SyncError::Refused(format!(
                "space {space} is read-only for you"
            )));
        }
        let (epoch, key) = shared
            .current()
            .ok_or_else(|| SyncError::Refused(format!("no key for space {space}")))?;
        Ok((epoch, key.clone(), Some(shared.cap.clone())))
    }

    /// Seals `data` for `space`'s channel, within the server's `limit`.
    fn seal_channel(
        &self,
        space: Uuid,
        kind: ChannelKind,
        data: &[u8],
        limit: u32,
    ) -> Result<(Bytes, Option<String>), SyncError> {
        let (epoch, key, cap) = self.speaking(space)?;
        let blob = sealbase_crypto::channel::seal_channel(
            self.keys.identity(),
            &space,
            epoch,
            &key,
            kind,
            data,
            &mut sealbase_crypto::OsRng,
        )
        .map_err(|e| SyncError::Refused(e.to_string()))?;
        if blob.len() > limit as usize {
            return Err(SyncError::Refused(format!(
                "{kind:?} of {} bytes is {} bytes sealed, above the server's limit of {limit}",
                data.len(),
                blob.len()
            )));
        }
        Ok((Bytes(blob), cap))
    }

    async fn send_presence<X: Transport>(
        &mut self,
        conn: &mut Conn<X>,
        limits: &sealbase_protocol::SessionLimits,
        space: Uuid,
        data: &[u8],
    ) -> Result<(), SyncError> {
        let (data, cap) =
            self.seal_channel(space, ChannelKind::Presence, data, limits.max_presence)?;
        conn.request(PresenceSetParams { space, cap, data })
            .await
            .map(drop)
    }

    async fn push_personal_changes<X: Transport>(
        &mut self,
        conn: &mut Conn<X>,
        limits: &sealbase_protocol::SessionLimits,
    ) -> Result<(), SyncError> {
        if std::mem::take(&mut self.personal_changed) {
            self.push(conn, self.personal, limits).await?;
            self.live();
        }
        Ok(())
    }

    /// Due work on a timer: presence heartbeats and scheduled rotations.
    async fn housekeeping<X: Transport>(
        &mut self,
        conn: &mut Conn<X>,
        limits: &sealbase_protocol::SessionLimits,
    ) -> Result<(), SyncError> {
        let presence: Vec<(Uuid, Vec<u8>)> = self
            .own_presence
            .iter()
            .map(|(s, d)| (*s, d.clone()))
            .collect();
        for (space, data) in presence {
            match self.send_presence(conn, limits, space, &data).await {
                Ok(()) => {}
                Err(e) if e.is_connection() => return Err(e),
                Err(e) => {
                    // Lost access meanwhile, or the key moved on: stop.
                    self.own_presence.remove(&space);
                    self.status
                        .update(|s| s.last_error = Some(format!("presence in {space}: {e}")));
                }
            }
        }
        self.scheduled_rotations(conn).await?;
        let now = self.runtime.now_ms();
        let mut next = i64::MAX;
        if !self.own_presence.is_empty() {
            next = now + ms_i64(PRESENCE_HEARTBEAT_MS);
        }
        if let Some(every) = self.config.rotate_every_ms {
            next = next.min(now + ms_i64((every / 4).clamp(250, 60_000)));
        }
        self.housekeeping_at = next;
        Ok(())
    }

    /// Rotates every space this device administers whose epoch is older
    /// than [`SyncConfig::rotate_every_ms`].
    async fn scheduled_rotations<X: Transport>(
        &mut self,
        conn: &mut Conn<X>,
    ) -> Result<(), SyncError> {
        let Some(every) = self.config.rotate_every_ms else {
            return Ok(());
        };
        let me = self.keys.did();
        let now = self.runtime.now_ms();
        let due: Vec<Uuid> = {
            let db = lock(&self.db);
            let mut due = Vec::new();
            for (space, shared) in &self.shared {
                if shared.folded.joined_role(&me) != Some(Capability::Admin) {
                    continue;
                }
                let Some(info) = spaces::get(&db, space)? else {
                    continue;
                };
                if let Some((epoch, at)) = info.rotated
                    && epoch >= shared.folded.epoch
                    && now.saturating_sub(at) >= ms_i64(every)
                {
                    due.push(*space);
                }
            }
            due
        };
        for space in due {
            let Some(mut shared) = self.shared.remove(&space) else {
                continue;
            };
            let result = self.ops(conn).rotate(space, &mut shared, None).await;
            self.shared.insert(space, shared);
            self.save_keys(space)?;
            match result {
                Ok(_) => {}
                Err(e) if e.is_connection() => return Err(e),
                // Another admin rotated first, or lost the right: noted.
                Err(e) => self
                    .status
                    .update(|s| s.last_error = Some(format!("scheduled rotation of {space}: {e}"))),
            }
        }
        Ok(())
    }

    /// Access to `space` ended: stop syncing it and tell the app (its
    /// [`spaces::SPACES`] record turns `removed`).
    fn lose_space(&mut self, space: Uuid, why: &str) -> Result<(), SyncError> {
        self.shared.remove(&space);
        self.own_presence.remove(&space);
        board(&self.board).clear(Some(space));
        let mut db = lock(&self.db);
        if let Some(mut info) = spaces::get(&db, &space)?
            && info.status != SpaceStatus::Removed
        {
            info.status = SpaceStatus::Removed;
            spaces::save(&mut db, &info)?;
            self.personal_changed = true;
        }
        drop(db);
        self.status
            .update(|s| s.last_error = Some(format!("space {space}: {why}")));
        Ok(())
    }

    /// Stores the keys held for `space` in its record if any is new, and
    /// when a newer epoch was first seen.
    fn save_keys(&mut self, space: Uuid) -> Result<(), SyncError> {
        let Some(shared) = self.shared.get(&space) else {
            return Ok(());
        };
        let mut db = lock(&self.db);
        let Some(mut info) = spaces::get(&db, &space)? else {
            return Ok(());
        };
        let new_key = shared.keys.keys().any(|e| !info.keys.contains_key(e));
        let epoch = shared.folded.epoch.max(1);
        let new_epoch = info.rotated.is_none_or(|(seen, _)| seen < epoch);
        if new_key || new_epoch {
            for (epoch, key) in &shared.keys {
                info.keys.insert(*epoch, key.clone());
            }
            if new_epoch {
                info.rotated = Some((epoch, self.runtime.now_ms()));
            }
            spaces::save(&mut db, &info)?;
            self.personal_changed = true;
        }
        Ok(())
    }

    async fn fetch_keys<X: Transport>(
        &mut self,
        conn: &mut Conn<X>,
        space: Uuid,
    ) -> Result<(), SyncError> {
        let Some(mut shared) = self.shared.remove(&space) else {
            return Ok(());
        };
        let result = self.ops(conn).fetch_keys(space, &mut shared).await;
        self.shared.insert(space, shared);
        result?;
        self.save_keys(space)
    }

    /// Stores invitations from the mailbox as `invited` spaces.
    async fn check_mailbox<X: Transport>(&mut self, conn: &mut Conn<X>) -> Result<(), SyncError> {
        let invitations = self.ops(conn).mailbox().await?;
        for invitation in &invitations {
            self.store_invitation(invitation)?;
        }
        Ok(())
    }

    fn store_invitation(
        &mut self,
        invitation: &sealbase_protocol::Invitation,
    ) -> Result<(), SyncError> {
        let info = match spaces::open_mailbox(self.keys.identity(), invitation) {
            Ok(info) => info,
            Err(e) => {
                // Not for us, or not an invitation: leave it.
                self.status
                    .update(|s| s.last_error = Some(format!("invitation {}: {e}", invitation.id)));
                return Ok(());
            }
        };
        let mut db = lock(&self.db);
        let known = spaces::get(&db, &info.id)?;
        let fresh = match &known {
            None => true,
            Some(known) => {
                known.status != SpaceStatus::Joined && known.invitation != info.invitation
            }
        };
        if fresh {
            spaces::save(&mut db, &info)?;
            self.personal_changed = true;
        }
        Ok(())
    }

    /// Runs one space operation and replies; only a connection failure
    /// is returned (the op gets it too).
    async fn run_op<X: Transport>(
        &mut self,
        conn: &mut Conn<X>,
        limits: &sealbase_protocol::SessionLimits,
        op: Box<SpaceOp>,
    ) -> Result<(), SyncError> {
        let result = self.op(conn, limits, &op).await;
        let fatal = match &result {
            Err(e) => e.is_connection(),
            Ok(_) => false,
        };
        let copy = match &result {
            Err(e) if fatal => Some(SyncError::Protocol(e.to_string())),
            _ => None,
        };
        op.reply(result);
        self.push_all(conn, limits).await?;
        match copy {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    async fn op<X: Transport>(
        &mut self,
        conn: &mut Conn<X>,
        limits: &sealbase_protocol::SessionLimits,
        op: &SpaceOp,
    ) -> Result<OpDone, SyncError> {
        let missing = |space: &Uuid| SyncError::Refused(format!("not a member of space {space}"));
        match op {
            SpaceOp::Create(name, _) => {
                let (info, shared) = self.ops(conn).create(name).await?;
                let id = info.id;
                spaces::save(&mut lock(&self.db), &info)?;
                self.open_space(conn, limits, &info).await?;
                drop(shared);
                Ok(OpDone::Created(id))
            }
            SpaceOp::Answer(space, accept, _) => {
                let info = spaces::get(&lock(&self.db), space)?
                    .filter(|i| i.status == SpaceStatus::Invited)
                    .ok_or_else(|| SyncError::Refused(format!("no invitation to {space}")))?;
                self.ops(conn).answer(&info, *accept).await?;
                let mut info = info;
                info.status = if *accept {
                    SpaceStatus::Joined
                } else {
                    SpaceStatus::Declined
                };
                info.invitation = None;
                spaces::save(&mut lock(&self.db), &info)?;
                if *accept {
                    self.open_space(conn, limits, &info).await?;
                }
                Ok(OpDone::Done)
            }
            SpaceOp::Presence(space, Some(data), _) => {
                self.send_presence(conn, limits, *space, data).await?;
                self.own_presence.insert(*space, data.clone());
                self.housekeeping_at = self
                    .housekeeping_at
                    .min(self.runtime.now_ms() + ms_i64(PRESENCE_HEARTBEAT_MS));
                Ok(OpDone::Done)
            }
            SpaceOp::Presence(space, None, _) => {
                self.own_presence.remove(space);
                conn.request(PresenceClearParams { space: *space }).await?;
                Ok(OpDone::Done)
            }
            SpaceOp::Event(space, data, _) => {
                let (data, cap) =
                    self.seal_channel(*space, ChannelKind::Event, data, limits.max_event)?;
                conn.request(EventSendParams {
                    space: *space,
                    cap,
                    data,
                })
                .await?;
                Ok(OpDone::Done)
            }
            SpaceOp::Access(space, _) => {
                let space = &space.unwrap_or(self.personal);
                let token = self.tokens.access_token().await.map_err(SyncError::Token)?;
                let (keys, cap, epoch) = if *space == self.personal {
                    (
                        BTreeMap::from([(PERSONAL_EPOCH, self.keys.personal_epoch_key().clone())]),
                        None,
                        PERSONAL_EPOCH,
                    )
                } else {
                    self.fetch_keys(conn, *space).await?;
                    let shared = self.shared.get(space).ok_or_else(|| missing(space))?;
                    let epoch = shared.current().map_or(0, |(e, _)| e);
                    (shared.keys.clone(), Some(shared.cap.clone()), epoch)
                };
                Ok(OpDone::Access(Box::new(FileAccess {
                    url: files::http_base(&self.config.url)?,
                    space: *space,
                    token,
                    cap,
                    epoch,
                    keys,
                    role: if *space == self.personal {
                        Capability::Admin
                    } else {
                        self.shared.get(space).map_or(Capability::Read, |s| s.role)
                    },
                })))
            }
            SpaceOp::Invite(space, ..)
            | SpaceOp::Remove(space, ..)
            | SpaceOp::Rotate(space, _)
            | SpaceOp::Members(space, _) => {
                let mut shared = self.shared.remove(space).ok_or_else(|| missing(space))?;
                let result = {
                    let mut ops = self.ops(conn);
                    match op {
                        SpaceOp::Invite(_, invitee, role, _) => ops
                            .invite(*space, &mut shared, invitee, *role)
                            .await
                            .map(|()| OpDone::Done),
                        SpaceOp::Remove(_, member, _) => ops
                            .remove(*space, &mut shared, member)
                            .await
                            .map(|()| OpDone::Done),
                        SpaceOp::Rotate(..) => ops
                            .rotate(*space, &mut shared, None)
                            .await
                            .map(|_| OpDone::Done),
                        _ => ops
                            .refresh_log(*space, &mut shared)
                            .await
                            .map(|()| OpDone::Members(Box::new(shared.folded.clone()))),
                    }
                };
                self.shared.insert(*space, shared);
                self.save_keys(*space)?;
                result
            }
        }
    }

    fn report_rejected(&self) {
        let last = self
            .rejected
            .iter()
            .next()
            .map(|(id, why)| format!("record {id} cannot be pushed: {why}"));
        self.refresh_pending();
        if let Some(last) = last {
            self.status.update(|s| s.last_error = Some(last));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::refresh_delay_ms;

    #[test]
    fn long_lived_tokens_refresh_a_minute_before_they_expire() {
        // 15 minutes left by the server's clock, clocks in step.
        let now = 1_000_000_000;
        let expires = 1_000_000 + 900;
        assert_eq!(refresh_delay_ms(now, 0, expires), 899_000 - 60_000);
        // The server is 30 s ahead: the token has 30 s less to live.
        assert_eq!(refresh_delay_ms(now, 30, expires), 869_000 - 60_000);
    }

    #[test]
    fn short_lived_tokens_refresh_with_time_to_spare() {
        // A 4-second token minted late in a second has ~3 s to live by
        // whole-second clocks; the refresh lands well before the expiry.
        for into_second in [0, 250, 999] {
            let now = 1_000_000_000 + into_second;
            let expires = 1_000_000 + 3;
            let delay = refresh_delay_ms(now, 0, expires);
            let left = 3_000 - into_second;
            let spare = u64::try_from(left).unwrap() - delay;
            assert!(spare >= 1_000, "{into_second}: {delay} ms of {left}");
        }
    }

    #[test]
    fn expired_or_absurd_expiries_do_not_spin_or_overflow() {
        assert_eq!(refresh_delay_ms(5_000_000, 0, 0), 500);
        assert_eq!(refresh_delay_ms(5_000_000, 0, 5_000), 500);
        assert_eq!(refresh_delay_ms(i64::MAX, i64::MAX, 10), 500);
        assert!(refresh_delay_ms(0, i64::MIN, u64::MAX) > 0);
    }
}
