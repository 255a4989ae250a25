//! Realtime fanout inside one server process.
//!
//! Every connection owns a bounded outbound queue ([`crate::outbox`]). A
//! notification is encoded once and the same bytes (`Bytes`,
//! reference-counted) are offered to every subscriber of the space. A
//! subscriber whose notification backlog is full has fallen behind: it is
//! not skipped silently but closed with 4006 (slow consumer), so it
//! reconnects and pulls instead of missing changes.
//!
//! Besides spaces, the hub knows each connection's mailbox (its personal
//! space id), where invitations for it are delivered live.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use uuid::Uuid;

use crate::outbox::{Outbox, Refused};

/// Identifies one connection for the lifetime of the process.
pub type ConnId = u64;

/// The fanout's handle on one connection: its outbound queue, which also
/// closes it.
pub type Subscriber = Arc<Outbox>;

/// Counters the hub keeps for `/metrics`.
#[derive(Debug, Default)]
pub struct HubStats {
    /// Notifications offered to a subscriber.
    pub delivered: AtomicU64,
    /// Subscribers closed because their queue was full.
    pub slow_consumers: AtomicU64,
}

/// Subscribers per space, and the latest cursor this process knows of for
/// each subscribed space (kept only while it has subscribers); connections
/// per mailbox.
#[derive(Debug, Default)]
struct Spaces {
    subscribers: HashMap<Uuid, HashMap<ConnId, Subscriber>>,
    cursors: HashMap<Uuid, u64>,
    mailboxes: HashMap<Uuid, HashMap<ConnId, Subscriber>>,
}

/// Space → subscribers.
#[derive(Debug, Default)]
pub struct Hub {
    spaces: Mutex<Spaces>,
    next_id: AtomicU64,
    /// Fanout counters.
    pub stats: HubStats,
}

impl Hub {
    /// A fresh connection id.
    pub fn connection_id(&self) -> ConnId {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    fn spaces(&self) -> MutexGuard<'_, Spaces> {
        // A panic while holding this lock cannot leave the map inconsistent
        // (every update is a single insert or remove), so poisoning is moot.
        self.spaces.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds `conn` to the subscribers of `space`.
    pub fn subscribe(&self, space: Uuid, conn: ConnId, subscriber: Subscriber) {
        self.spaces()
            .subscribers
            .entry(space)
            .or_default()
            .insert(conn, subscriber);
    }

    /// Removes `conn` from `space`.
    pub fn unsubscribe(&self, space: Uuid, conn: ConnId) {
        let mut spaces = self.spaces();
        if let Some(subs) = spaces.subscribers.get_mut(&space) {
            subs.remove(&conn);
            if subs.is_empty() {
                spaces.subscribers.remove(&space);
                spaces.cursors.remove(&space);
            }
        }
    }

    /// Records that `space` has reached `cursor` (a subscribe read it, a
    /// push or a notification carried it). Kept only for spaces with
    /// subscribers: it is where the cross-instance fanout resumes after
    /// losing its database connection.
    pub fn observe(&self, space: Uuid, cursor: u64) {
        let mut spaces = self.spaces();
        if spaces.subscribers.contains_key(&space) {
            let known = spaces.cursors.entry(space).or_default();
            *known = (*known).max(cursor);
        }
    }

    /// Records the cursor a subscriber started from, unless the space
    /// already has one: an earlier subscriber may not have been told of
    /// everything up to this newer cursor yet.
    pub fn baseline(&self, space: Uuid, cursor: u64) {
        let mut spaces = self.spaces();
        if spaces.subscribers.contains_key(&space) {
            spaces.cursors.entry(space).or_insert(cursor);
        }
    }

    /// Whether `space` has subscribers in this process.
    pub fn has_subscribers(&self, space: Uuid) -> bool {
        self.spaces().subscribers.contains_key(&space)
    }

    /// The latest cursor observed for `space` (0 if none yet), or `None`
    /// when it has no subscribers here.
    pub fn observed(&self, space: Uuid) -> Option<u64> {
        let spaces = self.spaces();
        spaces
            .subscribers
            .contains_key(&space)
            .then(|| spaces.cursors.get(&space).copied().unwrap_or(0))
    }

    /// Every space with subscribers and the latest cursor observed for it
    /// (spaces with none observed yet are left out).
    pub fn subscribed_cursors(&self) -> Vec<(Uuid, u64)> {
        let spaces = self.spaces();
        spaces
            .subscribers
            .keys()
            .filter_map(|space| spaces.cursors.get(space).map(|c| (*space, *c)))
            .collect()
    }

    /// Offers `frame` to every subscriber of `space` except `skip`. A full
    /// queue closes that subscriber with 4006.
    pub fn publish(&self, space: Uuid, frame: &Bytes, skip: Option<ConnId>) {
        self.publish_with(space, skip, || Some(frame.clone()));
    }

    /// [`Hub::publish`] for a frame that costs something to make: `frame`
    /// runs only when this process has a subscriber of `space` other than
    /// `skip` (a push into a space nobody else watches here encodes
    /// nothing). `None` from it sends nothing.
    pub fn publish_with(
        &self,
        space: Uuid,
        skip: Option<ConnId>,
        frame: impl FnOnce() -> Option<Bytes>,
    ) {
        // Clone the handles so no send (and no encoding) happens under the
        // lock.
        let targets = match self.spaces().subscribers.get(&space) {
            Some(subs) => others(subs, skip),
            None => return,
        };
        if targets.is_empty() {
            return;
        }
        if let Some(frame) = frame() {
            self.offer(targets, &frame);
        }
    }

    /// Registers `conn` as a connection whose mailbox is `mailbox`.
    pub fn open_mailbox(&self, mailbox: Uuid, conn: ConnId, subscriber: Subscriber) {
        self.spaces()
            .mailboxes
            .entry(mailbox)
            .or_default()
            .insert(conn, subscriber);
    }

    /// Forgets `conn`'s mailbox registration.
    pub fn close_mailbox(&self, mailbox: Uuid, conn: ConnId) {
        let mut spaces = self.spaces();
        if let Some(conns) = spaces.mailboxes.get_mut(&mailbox) {
            conns.remove(&conn);
            if conns.is_empty() {
                spaces.mailboxes.remove(&mailbox);
            }
        }
    }

    /// Whether a connection with this mailbox is open in this process.
    pub fn has_mailbox(&self, mailbox: Uuid) -> bool {
        self.spaces().mailboxes.contains_key(&mailbox)
    }

    /// Offers `frame` to every connection whose mailbox is `mailbox`,
    /// except `skip`, with the same slow-consumer rule as [`Hub::publish`].
    pub fn deliver(&self, mailbox: Uuid, frame: &Bytes, skip: Option<ConnId>) {
        let targets = match self.spaces().mailboxes.get(&mailbox) {
            Some(conns) => others(conns, skip),
            None => return,
        };
        self.offer(targets, frame);
    }

    fn offer(&self, targets: Vec<Subscriber>, frame: &Bytes) {
        for sub in targets {
            self.offer_one(&sub, frame.clone());
        }
    }

    /// Offers a frame made for one subscriber (e.g. the epoch keys sealed
    /// to its member), with the same slow-consumer rule and the same
    /// counters as [`Hub::publish`].
    pub fn offer_one(&self, sub: &Subscriber, frame: Bytes) {
        match sub.notify(frame) {
            Ok(()) => {
                self.stats.delivered.fetch_add(1, Ordering::Relaxed);
            }
            // `notify` has closed it with 4006.
            Err(Refused::SlowConsumer) => {
                self.stats.slow_consumers.fetch_add(1, Ordering::Relaxed);
            }
            // The connection is already going away.
            Err(Refused::Closing) => {}
        }
    }

    /// Number of subscriptions (connection × space), for metrics.
    pub fn subscriptions(&self) -> usize {
        self.spaces().subscribers.values().map(HashMap::len).sum()
    }
}

/// Every handle in `subs` but `skip`'s.
fn others(subs: &HashMap<ConnId, Subscriber>, skip: Option<ConnId>) -> Vec<Subscriber> {
    subs.iter()
        .filter(|(id, _)| Some(**id) != skip)
        .map(|(_, s)| s.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use sealbase_protocol::CloseCode;

    use super::*;
    use crate::outbox::OutboxLimits;

    fn subscriber(frames: usize) -> Subscriber {
        Arc::new(Outbox::new(OutboxLimits {
            frames,
            bytes: 1 << 20,
        }))
    }

    #[tokio::test]
    async fn publishes_to_others_and_closes_slow_consumers() {
        let hub = Hub::default();
        let space = Uuid::from_bytes([1; 16]);
        let (a, b, c) = (subscriber(8), subscriber(1), subscriber(8));
        hub.subscribe(space, 1, a.clone());
        hub.subscribe(space, 2, b.clone());
        hub.subscribe(space, 3, c.clone());

        let frame = Bytes::from_static(b"x");
        hub.publish(space, &frame, Some(3));
        assert_eq!(a.try_recv().unwrap(), frame);
        assert!(c.try_recv().is_none(), "the sender is skipped");
        assert!(b.reason().is_none());

        // b's queue (one frame) is now full: the next publish closes it.
        hub.publish(space, &frame, None);
        assert_eq!(b.reason().unwrap().0, CloseCode::SlowConsumer.code());
        assert_eq!(hub.stats.slow_consumers.load(Ordering::Relaxed), 1);

        // A frame made for one subscriber counts the same way.
        let delivered = hub.stats.delivered.load(Ordering::Relaxed);
        let d = subscriber(1);
        hub.offer_one(&d, frame.clone());
        assert_eq!(hub.stats.delivered.load(Ordering::Relaxed), delivered + 1);
        hub.offer_one(&d, frame.clone());
        assert_eq!(d.reason().unwrap().0, CloseCode::SlowConsumer.code());
        assert_eq!(hub.stats.slow_consumers.load(Ordering::Relaxed), 2);

        // Nothing is made for a space with no one to send it to.
        let lonely = Uuid::from_bytes([2; 16]);
        hub.publish_with(lonely, None, || panic!("no subscribers"));
        hub.subscribe(lonely, 5, subscriber(8));
        hub.publish_with(lonely, Some(5), || panic!("only the sender"));
        let mut made = false;
        hub.publish_with(lonely, None, || {
            made = true;
            Some(frame.clone())
        });
        assert!(made, "made for a subscriber");
        hub.unsubscribe(lonely, 5);

        hub.baseline(space, 4);
        hub.baseline(space, 6);
        assert_eq!(hub.subscribed_cursors(), vec![(space, 4)]);
        hub.observe(space, 7);
        hub.observe(space, 5);
        assert_eq!(hub.subscribed_cursors(), vec![(space, 7)]);
        assert_eq!(hub.observed(space), Some(7));

        hub.unsubscribe(space, 1);
        hub.unsubscribe(space, 2);
        hub.unsubscribe(space, 3);
        assert_eq!(hub.subscriptions(), 0);
        assert!(hub.subscribed_cursors().is_empty());
        hub.observe(space, 9);
        assert!(
            !hub.has_subscribers(space),
            "no cursor kept without subscribers"
        );
    }

    #[tokio::test]
    async fn delivers_to_a_mailbox_s_connections_only() {
        let hub = Hub::default();
        let mailbox = Uuid::from_bytes([2; 16]);
        let (a, b, c) = (subscriber(8), subscriber(8), subscriber(8));
        hub.open_mailbox(mailbox, 1, a.clone());
        hub.open_mailbox(mailbox, 2, b.clone());
        hub.open_mailbox(Uuid::from_bytes([3; 16]), 3, c.clone());
        assert!(hub.has_mailbox(mailbox));

        let frame = Bytes::from_static(b"invitation");
        hub.deliver(mailbox, &frame, Some(2));
        assert_eq!(a.try_recv().unwrap(), frame);
        assert!(b.try_recv().is_none(), "the creator is skipped");
        assert!(c.try_recv().is_none(), "another mailbox");

        hub.close_mailbox(mailbox, 1);
        hub.close_mailbox(mailbox, 2);
        assert!(!hub.has_mailbox(mailbox));
        hub.deliver(mailbox, &frame, None);
        assert!(a.try_recv().is_none());
    }
}
