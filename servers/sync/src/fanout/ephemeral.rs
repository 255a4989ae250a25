//! Presence and events between instances, over Postgres `NOTIFY` on
//! [`EPHEMERAL_CHANNEL`](crate::store::postgres::EPHEMERAL_CHANNEL).
//!
//! Presence and events are never stored, so unlike pushes they travel
//! whole: the instance a client is connected to encodes the `presence` or
//! `event` notification once, and every other instance publishes those
//! same bytes to its own subscribers. Payloads are opaque ciphertext from
//! the clients; nothing here reads them.
//!
//! A NOTIFY payload is text shorter than 8000 bytes, so a frame is base64
//! encoded and cut into parts of at most [`CHUNK`] characters. Each part
//! is one payload:
//!
//! ```text
//! s1 <instance> <seq> <index> <count> <kind> <space> <peer> <chunk>
//! ```
//!
//! `instance`, `space` and `peer` are 32 hex digits; `seq` numbers the
//! sender's messages (so no two payloads are alike, which Postgres would
//! fold into one); `index` < `count` ≤ [`MAX_PARTS`] are decimal; `kind` is
//! `p` (presence: frame), `l` (presence.leave: no frame, the receiver
//! encodes it), `e` (event: frame) or `h` (hello: an instance started
//! listening and asks the others to announce their peers again).
//!
//! Invariants:
//! - all parts of a message go out in one statement, hence one
//!   transaction, which Postgres delivers consecutively and in order;
//!   messages leave an instance in the order they were queued;
//! - a receiver ignores its own instance's payloads, reassembles at most
//!   [`MAX_PENDING`] messages at once (the oldest partial one is dropped
//!   to make room) and drops a message whose parts do not arrive in order;
//! - the outgoing queue is bounded in messages and in bytes; when it is
//!   full a message is dropped and counted, never waited for (presence
//!   heals at the next heartbeat, events are best effort).

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::server::AppState;
use crate::store::postgres::PostgresStore;

/// Base64 characters per part; with the header (under 140 bytes) a
/// payload stays well below Postgres' 8000-byte limit.
pub(crate) const CHUNK: usize = 7600;

/// Most parts per message: a 64 KiB event frame takes 12.
pub(crate) const MAX_PARTS: usize = 16;

/// Messages being reassembled at once. Parts of one message arrive
/// consecutively, so more than one is pending only if parts were lost.
pub(crate) const MAX_PENDING: usize = 8;

/// Most messages waiting to be sent to the other instances.
const QUEUE: usize = 16 * 1024;

/// Most bytes of frames waiting to be sent to the other instances.
const QUEUE_BYTES: usize = 32 * 1024 * 1024;

/// Most payloads per statement.
const BATCH: usize = 256;

/// Format tag of every payload.
const TAG: &str = "s1";

/// What one instance tells the others.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Ephemeral {
    /// A peer's presence: the encoded `presence` notification.
    Presence {
        /// The space.
        space: Uuid,
        /// The peer.
        peer: Uuid,
        /// The notification frame, as sent to clients.
        frame: Bytes,
    },
    /// A peer left.
    Leave {
        /// The space.
        space: Uuid,
        /// The peer.
        peer: Uuid,
    },
    /// An event: the encoded `event` notification.
    Event {
        /// The space.
        space: Uuid,
        /// The sender.
        peer: Uuid,
        /// The notification frame, as sent to clients.
        frame: Bytes,
    },
    /// The sender (re)started listening: announce your peers again.
    Hello,
}

impl Ephemeral {
    fn kind(&self) -> char {
        match self {
            Ephemeral::Presence { .. } => 'p',
            Ephemeral::Leave { .. } => 'l',
            Ephemeral::Event { .. } => 'e',
            Ephemeral::Hello => 'h',
        }
    }

    /// Bytes it holds while queued (its frame and a fixed overhead).
    fn size(&self) -> usize {
        self.parts().2.len() + 64
    }

    fn parts(&self) -> (Uuid, Uuid, &[u8]) {
        match self {
            Ephemeral::Presence { space, peer, frame }
            | Ephemeral::Event { space, peer, frame } => (*space, *peer, frame),
            Ephemeral::Leave { space, peer } => (*space, *peer, &[]),
            Ephemeral::Hello => (Uuid::nil(), Uuid::nil(), &[]),
        }
    }
}

/// The payloads of message `seq` of `instance`, in order. `None` if the
/// frame needs more than [`MAX_PARTS`] parts (nothing v1 sends does).
pub(crate) fn encode(instance: Uuid, seq: u64, message: &Ephemeral) -> Option<Vec<String>> {
    let (space, peer, frame) = message.parts();
    let body = BASE64.encode(frame);
    let count = body.len().div_ceil(CHUNK).max(1);
    if count > MAX_PARTS {
        return None;
    }
    let kind = message.kind();
    let mut payloads = Vec::with_capacity(count);
    let mut rest = body.as_str();
    for index in 0..count {
        // Base64 is ASCII, so any byte index is a character boundary.
        let (chunk, tail) = rest.split_at(rest.len().min(CHUNK));
        rest = tail;
        payloads.push(format!(
            "{TAG} {} {seq} {index} {count} {kind} {} {} {chunk}",
            instance.simple(),
            space.simple(),
            peer.simple(),
        ));
    }
    Some(payloads)
}

/// One received payload, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Part<'a> {
    /// The sending instance.
    pub(crate) instance: Uuid,
    seq: u64,
    index: usize,
    count: usize,
    kind: char,
    /// The space (nil for hello).
    pub(crate) space: Uuid,
    peer: Uuid,
    chunk: &'a str,
}

impl<'a> Part<'a> {
    /// Parses a payload; `None` if it is not one of ours.
    pub(crate) fn parse(payload: &'a str) -> Option<Self> {
        let mut fields = payload.splitn(9, ' ');
        if fields.next()? != TAG {
            return None;
        }
        let instance = Uuid::try_parse(fields.next()?).ok()?;
        let seq = fields.next()?.parse().ok()?;
        let index: usize = fields.next()?.parse().ok()?;
        let count: usize = fields.next()?.parse().ok()?;
        let mut kind = fields.next()?.chars();
        let (Some(kind), None) = (kind.next(), kind.next()) else {
            return None;
        };
        let space = Uuid::try_parse(fields.next()?).ok()?;
        let peer = Uuid::try_parse(fields.next()?).ok()?;
        let chunk = fields.next()?;
        if index >= count || count > MAX_PARTS || !matches!(kind, 'p' | 'l' | 'e' | 'h') {
            return None;
        }
        Some(Self {
            instance,
            seq,
            index,
            count,
            kind,
            space,
            peer,
            chunk,
        })
    }

    /// Whether this part belongs to an event (receivers without
    /// subscribers for its space skip those).
    pub(crate) fn is_event(&self) -> bool {
        self.kind == 'e'
    }
}

/// A message whose first parts have arrived.
#[derive(Debug)]
struct Pending {
    instance: Uuid,
    seq: u64,
    kind: char,
    space: Uuid,
    peer: Uuid,
    count: usize,
    next: usize,
    body: String,
}

/// Puts parts back together; see the module invariants.
#[derive(Debug, Default)]
pub(crate) struct Reassembler {
    pending: VecDeque<Pending>,
}

impl Reassembler {
    /// Takes one part; returns the message it completes, if any.
    pub(crate) fn push(&mut self, part: Part<'_>) -> Option<Ephemeral> {
        let position = self
            .pending
            .iter()
            .position(|p| p.instance == part.instance && p.seq == part.seq);
        let mut pending = match position {
            Some(i) => self.pending.remove(i)?,
            None if part.index == 0 => Pending {
                instance: part.instance,
                seq: part.seq,
                kind: part.kind,
                space: part.space,
                peer: part.peer,
                count: part.count,
                next: 0,
                body: String::new(),
            },
            // Its beginning was lost (or dropped to make room).
            None => return None,
        };
        let fits = part.index == pending.next
            && part.count == pending.count
            && part.kind == pending.kind
            && part.space == pending.space
            && part.peer == pending.peer;
        if !fits {
            tracing::debug!(instance = %part.instance, seq = part.seq, "dropping a message with parts out of order");
            return None;
        }
        pending.body.push_str(part.chunk);
        pending.next += 1;
        if pending.next < pending.count {
            if self.pending.len() >= MAX_PENDING {
                self.pending.pop_front();
            }
            self.pending.push_back(pending);
            return None;
        }
        pending.finish()
    }

    /// Messages being reassembled.
    #[cfg(test)]
    fn pending(&self) -> usize {
        self.pending.len()
    }
}

impl Pending {
    fn finish(self) -> Option<Ephemeral> {
        let frame = || BASE64.decode(&self.body).ok().map(Bytes::from);
        Some(match self.kind {
            'p' => Ephemeral::Presence {
                space: self.space,
                peer: self.peer,
                frame: frame()?,
            },
            'e' => Ephemeral::Event {
                space: self.space,
                peer: self.peer,
                frame: frame()?,
            },
            'l' => Ephemeral::Leave {
                space: self.space,
                peer: self.peer,
            },
            'h' => Ephemeral::Hello,
            _ => return None,
        })
    }
}

/// The outgoing side: a bounded queue drained by [`send`] (Postgres only;
/// on SQLite there is no other instance and the relay is disabled).
#[derive(Debug, Default)]
pub(crate) struct EphemeralRelay {
    queue: Option<mpsc::Sender<Ephemeral>>,
    /// Bytes queued and not yet taken by [`send`].
    queued: Arc<AtomicUsize>,
    /// Messages dropped because the queue was full.
    dropped: AtomicU64,
}

/// The receiving end of an [`EphemeralRelay`], drained by [`send`].
#[derive(Debug)]
pub(crate) struct Outgoing {
    messages: mpsc::Receiver<Ephemeral>,
    queued: Arc<AtomicUsize>,
}

impl Outgoing {
    async fn recv(&mut self) -> Option<Ephemeral> {
        let message = self.messages.recv().await?;
        self.queued.fetch_sub(message.size(), Ordering::Relaxed);
        Some(message)
    }

    fn try_recv(&mut self) -> Option<Ephemeral> {
        let message = self.messages.try_recv().ok()?;
        self.queued.fetch_sub(message.size(), Ordering::Relaxed);
        Some(message)
    }
}

impl EphemeralRelay {
    /// A relay that sends nothing (a single instance).
    pub(crate) fn disabled() -> Self {
        Self::default()
    }

    /// A relay and the receiving end [`send`] drains.
    pub(crate) fn new() -> (Self, Outgoing) {
        let (queue, messages) = mpsc::channel(QUEUE);
        let queued = Arc::new(AtomicUsize::new(0));
        (
            Self {
                queue: Some(queue),
                queued: queued.clone(),
                dropped: AtomicU64::new(0),
            },
            Outgoing { messages, queued },
        )
    }

    /// Messages dropped so far because the queue was full.
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Queues `message` for the other instances without waiting.
    pub(crate) fn send(&self, message: Ephemeral) {
        let Some(queue) = &self.queue else {
            return;
        };
        let size = message.size();
        let before = self.queued.fetch_add(size, Ordering::Relaxed);
        let refused = before + size > QUEUE_BYTES;
        if refused || queue.try_send(message).is_err() {
            self.queued.fetch_sub(size, Ordering::Relaxed);
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Handles one payload heard on [`EPHEMERAL_CHANNEL`](crate::store::postgres::EPHEMERAL_CHANNEL): ignores this
/// instance's own, skips events for spaces without subscribers here, and
/// applies each completed message.
pub(crate) fn receive(app: &AppState, me: Uuid, parts: &mut Reassembler, payload: &str) {
    let Some(part) = Part::parse(payload) else {
        tracing::debug!("ignoring an unreadable ephemeral payload");
        return;
    };
    if part.instance == me || (part.is_event() && !app.hub.has_subscribers(part.space)) {
        return;
    }
    let Some(message) = parts.push(part) else {
        return;
    };
    match message {
        Ephemeral::Presence { space, peer, frame } => {
            app.presence
                .remote_set(&app.hub, space, peer, frame, std::time::Instant::now());
        }
        Ephemeral::Leave { space, peer } => app.presence.remote_leave(&app.hub, space, peer),
        Ephemeral::Event { space, frame, .. } => {
            app.hub.publish(space, &frame, None);
            app.metrics.events_remote.fetch_add(1, Ordering::Relaxed);
        }
        Ephemeral::Hello => app.presence.announce_all(&app.relay),
    }
}

/// Sends queued messages as `instance`, batching what has piled up into
/// one statement, until every sender is gone or `finish` resolves; then
/// it sends what is still queued (at shutdown: the peers of the sessions
/// that just ended, leaving) and returns.
pub(crate) async fn send(
    store: PostgresStore,
    instance: Uuid,
    mut outgoing: Outgoing,
    mut finish: oneshot::Receiver<()>,
) {
    let mut seq = 0u64;
    let mut batch = Vec::new();
    let mut finishing = false;
    loop {
        let first = if finishing {
            outgoing.try_recv()
        } else {
            tokio::select! {
                message = outgoing.recv() => message,
                _ = &mut finish => {
                    finishing = true;
                    continue;
                }
            }
        };
        let Some(first) = first else {
            return;
        };
        batch.clear();
        let mut next = Some(first);
        while let Some(message) = next {
            seq = seq.wrapping_add(1);
            match encode(instance, seq, &message) {
                Some(payloads) => batch.extend(payloads),
                None => tracing::warn!("an ephemeral message too large to relay was dropped"),
            }
            next = if batch.len() < BATCH {
                outgoing.try_recv()
            } else {
                None
            };
        }
        if let Err(e) = store.notify_ephemeral(&batch).await {
            tracing::warn!(error = %e, payloads = batch.len(), "cannot relay presence and events");
            if finishing {
                return;
            }
            // Do not spin against a database that is down.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> Uuid {
        Uuid::from_bytes([n; 16])
    }

    fn roundtrip(message: &Ephemeral) -> Ephemeral {
        let payloads = encode(id(9), 1, message).unwrap();
        let mut r = Reassembler::default();
        let mut out = None;
        for (i, p) in payloads.iter().enumerate() {
            assert!(p.len() < 8000, "payload {i} is {} bytes", p.len());
            assert!(out.is_none(), "completed before the last part");
            out = r.push(Part::parse(p).unwrap());
        }
        assert_eq!(r.pending(), 0);
        out.unwrap()
    }

    #[test]
    fn every_kind_round_trips() {
        let small = Ephemeral::Presence {
            space: id(1),
            peer: id(2),
            frame: Bytes::from_static(b"presence frame"),
        };
        assert_eq!(encode(id(9), 1, &small).unwrap().len(), 1);
        assert_eq!(roundtrip(&small), small);
        let leave = Ephemeral::Leave {
            space: id(1),
            peer: id(2),
        };
        assert_eq!(roundtrip(&leave), leave);
        assert_eq!(roundtrip(&Ephemeral::Hello), Ephemeral::Hello);
        let empty = Ephemeral::Event {
            space: id(1),
            peer: id(3),
            frame: Bytes::new(),
        };
        assert_eq!(roundtrip(&empty), empty);
    }

    #[test]
    fn a_64_kib_event_is_split_and_reassembled() {
        let frame: Vec<u8> = (0..(64 * 1024 + 300)).map(|i| (i % 251) as u8).collect();
        let event = Ephemeral::Event {
            space: id(1),
            peer: id(2),
            frame: Bytes::from(frame),
        };
        let payloads = encode(id(9), 7, &event).unwrap();
        assert_eq!(payloads.len(), 12);
        let unique: std::collections::HashSet<&String> = payloads.iter().collect();
        assert_eq!(unique.len(), payloads.len(), "no two payloads alike");
        assert_eq!(roundtrip(&event), event);
        // Too large for the format: refused, not cut short.
        let huge = Ephemeral::Event {
            space: id(1),
            peer: id(2),
            frame: Bytes::from(vec![0u8; CHUNK * MAX_PARTS]),
        };
        assert!(encode(id(9), 8, &huge).is_none());
    }

    #[test]
    fn parts_out_of_order_or_orphaned_are_dropped_and_pending_is_bounded() {
        let event = |seq: u64| {
            encode(
                id(9),
                seq,
                &Ephemeral::Event {
                    space: id(1),
                    peer: id(2),
                    frame: Bytes::from(vec![7u8; CHUNK * 2]),
                },
            )
            .unwrap()
        };
        let parts = event(1);
        assert_eq!(parts.len(), 3);
        let mut r = Reassembler::default();
        // A middle part without its beginning.
        assert!(r.push(Part::parse(&parts[1]).unwrap()).is_none());
        assert_eq!(r.pending(), 0);
        // Skipping a part drops the message.
        assert!(r.push(Part::parse(&parts[0]).unwrap()).is_none());
        assert!(r.push(Part::parse(&parts[2]).unwrap()).is_none());
        assert_eq!(r.pending(), 0);
        // Many beginnings never finished: only the newest MAX_PENDING stay.
        let starts: Vec<Vec<String>> = (10..10 + MAX_PENDING as u64 + 3).map(event).collect();
        for s in &starts {
            assert!(r.push(Part::parse(&s[0]).unwrap()).is_none());
        }
        assert_eq!(r.pending(), MAX_PENDING);
        // The oldest was dropped; a recent one still completes.
        assert!(r.push(Part::parse(&starts[0][1]).unwrap()).is_none());
        let last = starts.last().unwrap();
        assert!(r.push(Part::parse(&last[1]).unwrap()).is_none());
        assert!(r.push(Part::parse(&last[2]).unwrap()).is_some());
    }

    #[tokio::test]
    async fn the_outgoing_queue_is_bounded_in_bytes() {
        let (relay, mut outgoing) = EphemeralRelay::new();
        let big = |n: u8| Ephemeral::Event {
            space: id(n),
            peer: id(n),
            frame: Bytes::from(vec![n; 8 * 1024 * 1024]),
        };
        for n in 0..5 {
            relay.send(big(n));
        }
        // 4 × (8 MiB + 64 bytes of overhead) is just over 32 MiB: three
        // are queued, two dropped.
        assert_eq!(relay.dropped(), 2);
        for n in 0..3 {
            assert_eq!(outgoing.recv().await.unwrap(), big(n));
        }
        assert!(outgoing.try_recv().is_none());
        // Taking them freed the room.
        relay.send(big(7));
        assert_eq!(relay.dropped(), 2);
        assert_eq!(outgoing.try_recv().unwrap(), big(7));
        // A disabled relay drops nothing and sends nothing.
        let disabled = EphemeralRelay::disabled();
        disabled.send(big(1));
        assert_eq!(disabled.dropped(), 0);
    }

    #[test]
    fn foreign_payloads_are_not_parts() {
        for bad in [
            "",
            "{\"instance\":1}",
            "s1 x 1 0 1 p 00 00 abc",
            &format!(
                "s2 {} 1 0 1 p {} {} ",
                id(1).simple(),
                id(1).simple(),
                id(1).simple()
            ),
            &format!(
                "s1 {} 1 1 1 p {} {} ",
                id(1).simple(),
                id(1).simple(),
                id(1).simple()
            ),
            &format!(
                "s1 {} 1 0 1 z {} {} ",
                id(1).simple(),
                id(1).simple(),
                id(1).simple()
            ),
            &format!(
                "s1 {} 1 0 99 p {} {} ",
                id(1).simple(),
                id(1).simple(),
                id(1).simple()
            ),
        ] {
            assert!(Part::parse(bad).is_none(), "{bad}");
        }
    }
}
