//! Presence: who is in a space right now. Held in memory only, never
//! stored.
//!
//! A connection that sets presence in a space is a *peer* there, named by a
//! random UUID the server draws for that (connection, space): stable for
//! the connection's life in that space, unrelated across spaces, so a peer
//! id links nothing. Its state is the client's encrypted payload, kept here
//! as the encoded `presence` notification, ready to send.
//!
//! Invariants:
//! - a space's entries change, and the notifications each change causes
//!   are queued (to local subscribers and to other instances), under that
//!   space's lock: every queue sees a space's presence changes in the
//!   order the registry made them (spaces do not wait for each other);
//! - a snapshot sent at subscribe is taken and queued under that lock too,
//!   after the subscription exists, so nothing it shows is followed by an
//!   older state (see [`Presence::send_snapshot`]);
//! - an entry lives until `presence.clear`, `unsubscribe`, disconnect, a
//!   revoked or expired capability, or `ttl` without a new `presence.set`;
//!   every removal sends `presence.leave` here and to the other instances;
//! - no entry outlives a connection's cleanup (see
//!   [`Presence::disconnect`]);
//! - peers of other instances are kept with when they were last heard of,
//!   and dropped (with `presence.leave`) when not heard of for
//!   [`Presence::remote_ttl`], so a dead instance's peers disappear.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use sealbase_crypto::{TokenHash, VerifiedCapability};
use sealbase_protocol::{Frame, Notification, PresenceLeaveNotification};
use uuid::Uuid;

use crate::fanout::ephemeral::{Ephemeral, EphemeralRelay};
use crate::hub::{ConnId, Hub};
use crate::metrics::PresenceCounts;
use crate::outbox::Outbox;
use crate::server::AppState;

/// Fewest sweeps per TTL: a stale entry outlives its TTL by at most a
/// quarter of it (and never more than [`MAX_SWEEP`]).
const SWEEPS_PER_TTL: u32 = 4;

/// Longest time between sweeps.
const MAX_SWEEP: Duration = Duration::from_secs(5);

/// Shortest time between sweeps.
const MIN_SWEEP: Duration = Duration::from_millis(50);

/// Snapshot attempts before giving up on sending it atomically.
const SNAPSHOT_ATTEMPTS: usize = 3;

/// A peer of this instance.
#[derive(Debug)]
struct Local {
    peer: Uuid,
    /// The encoded `presence` notification.
    frame: Bytes,
    /// The capability chain that allowed it (`None`: personal space).
    grant: Option<Arc<VerifiedCapability>>,
    set_at: Instant,
}

/// A peer of another instance.
#[derive(Debug)]
struct Remote {
    frame: Bytes,
    seen: Instant,
}

/// The peers of one space.
#[derive(Debug, Default)]
struct Room {
    local: HashMap<ConnId, Local>,
    remote: HashMap<Uuid, Remote>,
    /// Removed from the registry by the sweep (it was empty): whoever
    /// still holds it looks the space up again.
    retired: bool,
}

impl Room {
    fn is_empty(&self) -> bool {
        self.local.is_empty() && self.remote.is_empty()
    }

    /// Every peer's presence but `skip`'s.
    fn frames(&self, skip: ConnId) -> Vec<Bytes> {
        self.local
            .iter()
            .filter(|(conn, _)| **conn != skip)
            .map(|(_, l)| l.frame.clone())
            .chain(self.remote.values().map(|r| r.frame.clone()))
            .collect()
    }
}

/// A presence change made by a connection of this instance.
#[derive(Debug)]
pub(crate) struct Update {
    /// The connection.
    pub(crate) conn: ConnId,
    /// Its peer id in the space.
    pub(crate) peer: Uuid,
    /// The encoded `presence` notification.
    pub(crate) frame: Bytes,
    /// What authorized it (`None`: personal space).
    pub(crate) grant: Option<Arc<VerifiedCapability>>,
}

/// Where presence changes go: this instance's subscribers and the others.
#[derive(Clone, Copy)]
pub(crate) struct Outlets<'a> {
    /// Local subscribers.
    pub(crate) hub: &'a Hub,
    /// Other instances.
    pub(crate) relay: &'a EphemeralRelay,
}

/// See the module docs.
#[derive(Debug)]
pub(crate) struct Presence {
    /// Rooms by space. A room is locked on its own: spaces never wait for
    /// each other, only the brief lookup here is shared.
    rooms: Mutex<HashMap<Uuid, Arc<Mutex<Room>>>>,
    ttl: Duration,
}

/// Every update leaves the maps consistent before anything can panic, so a
/// poisoned lock is still good.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The `presence.leave` notification, encoded.
fn leave_frame(space: Uuid, peer: Uuid) -> Option<Bytes> {
    let notification = Notification::PresenceLeave(PresenceLeaveNotification { space, peer });
    match Frame::notification(&notification).and_then(|f| f.encode()) {
        Ok(bytes) => Some(Bytes::from(bytes)),
        Err(e) => {
            tracing::error!(error = %e, "cannot encode presence.leave");
            None
        }
    }
}

/// Tells local subscribers (but `skip`) and, if `relay`, the other
/// instances that `peer` left `space`.
fn announce_leave(out: Outlets<'_>, space: Uuid, peer: Uuid, skip: Option<ConnId>, relay: bool) {
    if let Some(frame) = leave_frame(space, peer) {
        out.hub.publish(space, &frame, skip);
    }
    if relay {
        out.relay.send(Ephemeral::Leave { space, peer });
    }
}

impl Presence {
    /// An empty registry whose entries expire `ttl` after their last set.
    pub(crate) fn new(ttl: Duration) -> Self {
        Self {
            rooms: Mutex::new(HashMap::new()),
            ttl,
        }
    }

    /// How often [`Presence::sweep`] should run.
    pub(crate) fn sweep_interval(&self) -> Duration {
        (self.ttl / SWEEPS_PER_TTL).clamp(MIN_SWEEP, MAX_SWEEP)
    }

    /// How long another instance's peer lives without news: its own
    /// instance sweeps it after `ttl` (plus up to a sweep interval) and
    /// says so; this covers an instance that died first.
    pub(crate) fn remote_ttl(&self) -> Duration {
        self.ttl + self.sweep_interval() * 2
    }

    /// Runs `f` on `space`'s room (created if missing), locked.
    fn in_room<R>(&self, space: Uuid, f: impl FnOnce(&mut Room) -> R) -> R {
        let mut f = Some(f);
        loop {
            let room = lock(&self.rooms).entry(space).or_default().clone();
            let mut room = lock(&room);
            // A room retired by the sweep between the lookup and the lock
            // is no longer in the map: look again.
            if !room.retired
                && let Some(f) = f.take()
            {
                return f(&mut room);
            }
        }
    }

    /// `space`'s room, if it has one.
    fn room(&self, space: Uuid) -> Option<Arc<Mutex<Room>>> {
        lock(&self.rooms).get(&space).cloned()
    }

    /// Every room.
    fn all_rooms(&self) -> Vec<(Uuid, Arc<Mutex<Room>>)> {
        lock(&self.rooms)
            .iter()
            .map(|(space, room)| (*space, room.clone()))
            .collect()
    }

    /// Sets `update.conn`'s presence in `space` and tells the space's other
    /// subscribers and the other instances. Does nothing (and returns
    /// false) once the connection is `closed`.
    pub(crate) fn set(
        &self,
        out: Outlets<'_>,
        closed: &AtomicBool,
        space: Uuid,
        update: Update,
        now: Instant,
    ) -> bool {
        self.in_room(space, |room| {
            // Read under the room lock; see `disconnect`.
            if closed.load(Ordering::SeqCst) {
                return false;
            }
            let Update {
                conn,
                peer,
                frame,
                grant,
            } = update;
            out.hub.publish(space, &frame, Some(conn));
            out.relay.send(Ephemeral::Presence {
                space,
                peer,
                frame: frame.clone(),
            });
            room.local.insert(
                conn,
                Local {
                    peer,
                    frame,
                    grant,
                    set_at: now,
                },
            );
            true
        })
    }

    /// Clears `conn`'s presence in `space`, if any.
    pub(crate) fn clear(&self, out: Outlets<'_>, space: Uuid, conn: ConnId) {
        let Some(room) = self.room(space) else {
            return;
        };
        let mut room = lock(&room);
        if let Some(local) = room.local.remove(&conn) {
            announce_leave(out, space, local.peer, Some(conn), true);
        }
    }

    /// A connection's cleanup: clears its presence in `spaces`.
    ///
    /// The caller marks the connection closed (`SeqCst`) *before* reading
    /// `spaces` (the spaces where it has a peer id, which `set` callers
    /// record before calling `set`). A concurrent `set` then either sees
    /// the mark under its room lock, or recorded its space in time for
    /// this to find and clear its entry.
    pub(crate) fn disconnect(
        &self,
        out: Outlets<'_>,
        conn: ConnId,
        spaces: impl IntoIterator<Item = Uuid>,
    ) {
        for space in spaces {
            self.clear(out, space, conn);
        }
    }

    /// Removes the presence in `space` of every connection whose
    /// capability chain contains the revoked `hash`.
    pub(crate) fn revoke(&self, out: Outlets<'_>, space: Uuid, hash: &TokenHash) {
        let Some(room) = self.room(space) else {
            return;
        };
        let mut room = lock(&room);
        room.local.retain(|conn, local| {
            let revoked = local.grant.as_ref().is_some_and(|g| g.chain.contains(hash));
            if revoked {
                announce_leave(out, space, local.peer, Some(*conn), true);
            }
            !revoked
        });
    }

    /// Removes local entries not set within the TTL (or whose capability
    /// expired by `unix_now`) and remote ones not heard of within
    /// [`Presence::remote_ttl`], announcing each departure, then retires
    /// empty rooms. Returns how many entries went.
    pub(crate) fn sweep(&self, out: Outlets<'_>, now: Instant, unix_now: u64) -> usize {
        let remote_ttl = self.remote_ttl();
        let mut removed = 0;
        for (space, room) in self.all_rooms() {
            let mut room = lock(&room);
            room.local.retain(|_, local| {
                let stale = now.saturating_duration_since(local.set_at) >= self.ttl
                    || local
                        .grant
                        .as_ref()
                        .is_some_and(|g| g.expires_at <= unix_now);
                if stale {
                    removed += 1;
                    announce_leave(out, space, local.peer, None, true);
                }
                !stale
            });
            room.remote.retain(|peer, remote| {
                let stale = now.saturating_duration_since(remote.seen) >= remote_ttl;
                if stale {
                    removed += 1;
                    // Its own instance tells the others, if it still can.
                    announce_leave(out, space, *peer, None, false);
                }
                !stale
            });
        }
        // Map lock, then room lock: the only place both are held, in this
        // order (`in_room` releases the map before locking a room).
        lock(&self.rooms).retain(|_, room| {
            let mut room = lock(room);
            if room.is_empty() {
                room.retired = true;
            }
            !room.retired
        });
        removed
    }

    /// Sends `space`'s current peers (but its own) to connection `conn`
    /// that just subscribed to it (after its subscription reached the
    /// hub).
    ///
    /// Room in the queue is reserved first, then the peers are read and
    /// queued under the room lock, so no change can slip between the read
    /// and the queueing. If the room grew meanwhile it tries again; if it
    /// never fits, the snapshot is sent without that guarantee (a stale
    /// entry then heals at the peer's next heartbeat).
    pub(crate) async fn send_snapshot(&self, space: Uuid, conn: ConnId, outbox: &Outbox) {
        let mut frames = Vec::new();
        for _ in 0..SNAPSHOT_ATTEMPTS {
            let Some(room) = self.room(space) else {
                return;
            };
            let present = {
                let room = lock(&room);
                room.local.len() + room.remote.len()
            };
            if present == 0 {
                return;
            }
            let Some(held) = outbox.reserve(present).await else {
                // The connection is going away.
                return;
            };
            let room = lock(&room);
            // A retired room is empty; its successor has only newer state,
            // which reaches this subscriber as it happens.
            frames = room.frames(conn);
            if frames.len() <= held.len() {
                held.send(frames);
                return;
            }
        }
        if !outbox.send_all(frames).await {
            return;
        }
        if outbox.reason().is_none() {
            tracing::debug!(%space, "presence snapshot sent without ordering guarantee");
        }
    }

    /// Another instance's peer set its presence: remember it and tell the
    /// space's subscribers here.
    pub(crate) fn remote_set(
        &self,
        hub: &Hub,
        space: Uuid,
        peer: Uuid,
        frame: Bytes,
        now: Instant,
    ) {
        self.in_room(space, |room| {
            hub.publish(space, &frame, None);
            room.remote.insert(peer, Remote { frame, seen: now });
        });
    }

    /// Another instance's peer left.
    pub(crate) fn remote_leave(&self, hub: &Hub, space: Uuid, peer: Uuid) {
        let Some(room) = self.room(space) else {
            return;
        };
        let mut room = lock(&room);
        if room.remote.remove(&peer).is_some()
            && let Some(frame) = leave_frame(space, peer)
        {
            hub.publish(space, &frame, None);
        }
    }

    /// Sends every local peer's presence to the other instances again (one
    /// of them started listening).
    pub(crate) fn announce_all(&self, relay: &EphemeralRelay) {
        for (space, room) in self.all_rooms() {
            let room = lock(&room);
            for local in room.local.values() {
                relay.send(Ephemeral::Presence {
                    space,
                    peer: local.peer,
                    frame: local.frame.clone(),
                });
            }
        }
    }

    /// Present peers, local and remote.
    pub(crate) fn counts(&self) -> PresenceCounts {
        self.all_rooms()
            .iter()
            .fold(PresenceCounts::default(), |acc, (_, room)| {
                let room = lock(room);
                PresenceCounts {
                    local: acc.local + room.local.len(),
                    remote: acc.remote + room.remote.len(),
                }
            })
    }
}

/// Runs [`Presence::sweep`] every [`Presence::sweep_interval`] until the
/// server shuts down.
pub(crate) async fn sweep(app: Arc<AppState>) {
    let mut ticker = crate::server::Ticker::new(&app, app.presence.sweep_interval());
    while ticker.tick().await {
        app.presence
            .sweep(app.outlets(), Instant::now(), crate::unix_now());
    }
}

#[cfg(test)]
mod tests {
    use sealbase_crypto::Capability;
    use sealbase_protocol::{PresenceNotification, decode};

    use super::*;
    use crate::hub::Subscriber;
    use crate::outbox::OutboxLimits;

    fn id(n: u8) -> Uuid {
        Uuid::from_bytes([n; 16])
    }

    fn outbox(frames: usize) -> Subscriber {
        Arc::new(Outbox::new(OutboxLimits {
            frames,
            bytes: 1 << 20,
        }))
    }

    /// A subscriber, and the same queue to read what it was sent.
    fn subscriber(frames: usize) -> (Subscriber, Subscriber) {
        let queue = outbox(frames);
        (queue.clone(), queue)
    }

    fn presence_frame(space: Uuid, peer: Uuid, data: &[u8]) -> Bytes {
        let n = Notification::Presence(PresenceNotification {
            space,
            peer,
            did: "did:key:z6Mk".to_owned(),
            data: data.to_vec().into(),
        });
        Bytes::from(Frame::notification(&n).unwrap().encode().unwrap())
    }

    fn notification(bytes: &Bytes) -> Notification {
        match decode(bytes).unwrap() {
            Frame::Notification(n) => Notification::from_raw(&n).unwrap(),
            other => panic!("not a notification: {other:?}"),
        }
    }

    fn update(conn: ConnId, peer: Uuid, space: Uuid, data: &[u8]) -> Update {
        Update {
            conn,
            peer,
            frame: presence_frame(space, peer, data),
            grant: None,
        }
    }

    #[tokio::test]
    async fn set_clear_and_snapshot() {
        let hub = Hub::default();
        let relay = EphemeralRelay::disabled();
        let out = Outlets {
            hub: &hub,
            relay: &relay,
        };
        let presence = Presence::new(Duration::from_secs(60));
        let space = id(1);
        let (watcher, rx) = subscriber(8);
        hub.subscribe(space, 9, watcher);
        let open = AtomicBool::new(false);
        let now = Instant::now();

        assert!(presence.set(out, &open, space, update(1, id(11), space, b"a"), now));
        assert!(presence.set(out, &open, space, update(2, id(12), space, b"b"), now));
        // Re-setting replaces.
        assert!(presence.set(out, &open, space, update(1, id(11), space, b"a2"), now));
        assert_eq!(
            presence.counts(),
            PresenceCounts {
                local: 2,
                remote: 0
            }
        );
        for _ in 0..3 {
            assert!(matches!(
                notification(&rx.recv().await),
                Notification::Presence(_)
            ));
        }

        // A newcomer's snapshot holds the current state of each peer.
        let snap = outbox(8);
        presence.send_snapshot(space, 9, &snap).await;
        let mut seen = Vec::new();
        while let Some(frame) = snap.try_recv() {
            let Notification::Presence(p) = notification(&frame) else {
                panic!()
            };
            seen.push((p.peer, p.data.as_slice().to_vec()));
        }
        seen.sort();
        assert_eq!(
            seen,
            vec![(id(11), b"a2".to_vec()), (id(12), b"b".to_vec())]
        );
        // A peer's own entry is not in its snapshot.
        presence.send_snapshot(space, 1, &snap).await;
        let Notification::Presence(p) = notification(&snap.try_recv().unwrap()) else {
            panic!()
        };
        assert_eq!(p.peer, id(12));
        assert!(snap.try_recv().is_none());

        presence.clear(out, space, 1);
        let Notification::PresenceLeave(leave) = notification(&rx.recv().await) else {
            panic!()
        };
        assert_eq!(leave.peer, id(11));
        presence.clear(out, space, 1);
        assert!(rx.try_recv().is_none(), "clearing twice says nothing");

        // After cleanup, a late set takes no effect.
        let closed = AtomicBool::new(false);
        closed.store(true, Ordering::SeqCst);
        presence.disconnect(out, 2, [space]);
        assert!(matches!(
            notification(&rx.recv().await),
            Notification::PresenceLeave(_)
        ));
        assert!(!presence.set(out, &closed, space, update(2, id(12), space, b"late"), now));
        assert_eq!(presence.counts(), PresenceCounts::default());
        presence.send_snapshot(space, 9, &snap).await;
        assert!(snap.try_recv().is_none());
    }

    #[tokio::test]
    async fn stale_entries_and_expired_grants_are_swept() {
        let hub = Hub::default();
        let relay = EphemeralRelay::disabled();
        let out = Outlets {
            hub: &hub,
            relay: &relay,
        };
        let ttl = Duration::from_secs(10);
        let presence = Presence::new(ttl);
        assert_eq!(presence.sweep_interval(), Duration::from_millis(2500));
        let space = id(1);
        let (watcher, rx) = subscriber(8);
        hub.subscribe(space, 9, watcher);
        let open = AtomicBool::new(false);
        let t0 = Instant::now();
        presence.set(out, &open, space, update(1, id(11), space, b"a"), t0);
        let mut expiring = update(2, id(12), space, b"b");
        expiring.grant = Some(Arc::new(VerifiedCapability {
            cap: Capability::Write,
            space,
            expires_at: 1000,
            chain: vec![TokenHash([5; 32])],
        }));
        presence.set(out, &open, space, expiring, t0);
        presence.remote_set(&hub, space, id(21), presence_frame(space, id(21), b"r"), t0);
        while rx.try_recv().is_some() {}

        // The capability expired: that peer goes first.
        assert_eq!(presence.sweep(out, t0 + Duration::from_secs(1), 1000), 1);
        let Notification::PresenceLeave(leave) = notification(&rx.recv().await) else {
            panic!()
        };
        assert_eq!(leave.peer, id(12));
        // A heartbeat keeps a peer; silence past the TTL ends it.
        presence.set(
            out,
            &open,
            space,
            update(1, id(11), space, b"a"),
            t0 + Duration::from_secs(8),
        );
        assert_eq!(presence.sweep(out, t0 + Duration::from_secs(12), 999), 0);
        // Another instance's peer lasts the TTL plus two sweep intervals.
        assert_eq!(presence.remote_ttl(), Duration::from_secs(15));
        assert_eq!(presence.sweep(out, t0 + Duration::from_secs(15), 999), 1);
        assert_eq!(
            presence.counts(),
            PresenceCounts {
                local: 1,
                remote: 0
            }
        );
        assert_eq!(presence.sweep(out, t0 + Duration::from_secs(18), 999), 1);
        assert_eq!(presence.counts(), PresenceCounts::default());
    }

    #[tokio::test]
    async fn revocation_ends_presence_granted_by_the_chain() {
        let hub = Hub::default();
        let relay = EphemeralRelay::disabled();
        let out = Outlets {
            hub: &hub,
            relay: &relay,
        };
        let presence = Presence::new(Duration::from_secs(60));
        let space = id(1);
        let open = AtomicBool::new(false);
        let now = Instant::now();
        let granted = |conn, peer, link: u8| {
            let mut u = update(conn, peer, space, b"x");
            u.grant = Some(Arc::new(VerifiedCapability {
                cap: Capability::Write,
                space,
                expires_at: u64::MAX,
                chain: vec![TokenHash([1; 32]), TokenHash([link; 32])],
            }));
            u
        };
        presence.set(out, &open, space, granted(1, id(11), 2), now);
        presence.set(out, &open, space, granted(2, id(12), 3), now);
        presence.revoke(out, space, &TokenHash([3; 32]));
        assert_eq!(presence.counts().local, 1);
        presence.revoke(out, space, &TokenHash([1; 32]));
        assert_eq!(presence.counts().local, 0);
    }

    #[tokio::test]
    async fn a_snapshot_waits_for_room_in_the_queue() {
        let hub = Hub::default();
        let relay = EphemeralRelay::disabled();
        let out = Outlets {
            hub: &hub,
            relay: &relay,
        };
        let presence = Arc::new(Presence::new(Duration::from_secs(60)));
        let space = id(1);
        let open = AtomicBool::new(false);
        for conn in 0..5u8 {
            presence.set(
                out,
                &open,
                space,
                update(u64::from(conn), id(100 + conn), space, b"x"),
                Instant::now(),
            );
        }
        // Two slots, one taken: the snapshot needs the reader to drain.
        let rx = outbox(2);
        assert!(rx.send(Bytes::from_static(b"earlier")).await);
        let sending = {
            let presence = presence.clone();
            let queue = rx.clone();
            tokio::spawn(async move {
                presence.send_snapshot(space, 99, &queue).await;
            })
        };
        let mut got = Vec::new();
        while got.len() < 6 {
            got.push(rx.recv().await);
        }
        sending.await.unwrap();
        assert_eq!(got[0], Bytes::from_static(b"earlier"));
        assert_eq!(got.len(), 6);
    }
}
