//! One connection's outbound frames, already encoded, and the reason it
//! closes.
//!
//! Two kinds of traffic share the socket, in one first-in first-out order:
//! - the connection's own frames (responses, pull chunks, the presence
//!   snapshot at subscribe), which wait for room: a client that reads
//!   slowly slows down its own requests and nothing else;
//! - notifications caused by other connections, which never wait: a
//!   connection whose backlog of notifications is over the limit has fallen
//!   behind and is closed with 4006 (slow consumer), never skipped silently.
//!
//! Each kind is bounded in frames and in bytes, separately: a pull that
//! fills its share while the client drains it does not make that client a
//! slow consumer of the space's notifications, and a slow reader of large
//! records holds at most about twice the byte limit here (a frame larger
//! than the limit is still taken when its kind has nothing queued).
//!
//! The writer task is woken only when the queue goes from empty to not
//! empty or a close is requested; it then takes a batch of frames at once.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::task::{Poll, Waker};

use bytes::Bytes;
use sealbase_protocol::CloseCode;
use tokio::sync::Notify;

/// How much one connection may have queued, per kind of traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboxLimits {
    /// Frames of each kind.
    pub frames: usize,
    /// Bytes of each kind.
    pub bytes: usize,
}

/// Frames the writer takes at once (one socket flush per batch).
const BATCH_FRAMES: usize = 64;

/// Bytes the writer takes at once (at least one frame).
const BATCH_BYTES: usize = 1 << 20;

/// Why a notification was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The connection's notification backlog is full: it is being closed
    /// with 4006.
    SlowConsumer,
    /// The connection is closing.
    Closing,
}

/// What the writer should do next.
#[derive(Debug)]
pub enum Next {
    /// Frames were moved into the batch.
    Frames,
    /// Close the socket with this code and reason.
    Close(u16, String),
}

#[derive(Debug, Default, Clone, Copy)]
struct Usage {
    frames: usize,
    bytes: usize,
}

impl Usage {
    /// Whether one more frame of `len` bytes (or `frames` reserved slots)
    /// stays within `limits`; a kind with nothing queued takes anything.
    fn admits(self, frames: usize, len: usize, limits: OutboxLimits) -> bool {
        self.frames == 0
            || (self.frames + frames <= limits.frames
                && self.bytes.saturating_add(len) <= limits.bytes)
    }

    fn add(&mut self, len: usize) {
        self.frames += 1;
        self.bytes += len;
    }

    fn remove(&mut self, len: usize) {
        self.frames -= 1;
        self.bytes -= len;
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Own,
    Notification,
}

#[derive(Debug, Default)]
struct Queue {
    frames: VecDeque<(Bytes, Kind)>,
    /// Own frames queued, plus slots reserved for them.
    own: Usage,
    notifications: Usage,
    /// The writer, when it waits for frames.
    writer: Option<Waker>,
    /// Some sender waits for room for its own frames.
    blocked: bool,
}

impl Queue {
    fn push(&mut self, frame: Bytes, kind: Kind) {
        match kind {
            Kind::Own => self.own.add(frame.len()),
            Kind::Notification => self.notifications.add(frame.len()),
        }
        self.frames.push_back((frame, kind));
    }

    fn pop(&mut self) -> Option<(Bytes, Kind)> {
        let (frame, kind) = self.frames.pop_front()?;
        match kind {
            Kind::Own => self.own.remove(frame.len()),
            Kind::Notification => self.notifications.remove(frame.len()),
        }
        Some((frame, kind))
    }
}

/// Releases the lock, then wakes the writer if it was waiting.
fn wake_writer(mut queue: MutexGuard<'_, Queue>) {
    let writer = queue.writer.take();
    drop(queue);
    if let Some(writer) = writer {
        writer.wake();
    }
}

/// The outbound side of one connection: its queue, and its close request.
#[derive(Debug)]
pub struct Outbox {
    queue: Mutex<Queue>,
    /// Senders of own frames waiting for room.
    room: Notify,
    /// The close requested, if any; the first request wins.
    close: OnceLock<(u16, String)>,
    /// Wakes the reader (and anyone else) waiting for a close.
    closing: Notify,
    limits: OutboxLimits,
}

impl Outbox {
    /// An empty outbox bounded by `limits` per kind of traffic.
    pub fn new(limits: OutboxLimits) -> Self {
        Self {
            queue: Mutex::new(Queue::default()),
            room: Notify::new(),
            close: OnceLock::new(),
            closing: Notify::new(),
            limits: OutboxLimits {
                frames: limits.frames.max(1),
                bytes: limits.bytes.max(1),
            },
        }
    }

    fn queue(&self) -> MutexGuard<'_, Queue> {
        // Every update leaves the queue consistent before it can panic
        // (there is nothing that panics under this lock), so poisoning is
        // moot.
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The most frames of one kind this outbox holds.
    pub fn max_frames(&self) -> usize {
        self.limits.frames
    }

    /// Queues a notification without waiting. A full notification backlog
    /// closes the connection with 4006.
    pub fn notify(&self, frame: Bytes) -> Result<(), Refused> {
        let refused = self.offer(frame)?;
        if refused.is_some() {
            self.kill(CloseCode::SlowConsumer, "outbound queue full");
            return Err(Refused::SlowConsumer);
        }
        Ok(())
    }

    /// Queues a notice that comes just before a close the caller requests
    /// (such as `revoked`): if the backlog is full the notice is dropped,
    /// and the connection is left for that close.
    pub fn notify_before_close(&self, frame: Bytes) {
        let _ = self.offer(frame);
    }

    /// Queues a notification if it fits; gives it back if the backlog is
    /// full.
    fn offer(&self, frame: Bytes) -> Result<Option<Bytes>, Refused> {
        if self.close.get().is_some() {
            return Err(Refused::Closing);
        }
        let mut queue = self.queue();
        if !queue.notifications.admits(1, frame.len(), self.limits) {
            return Ok(Some(frame));
        }
        queue.push(frame, Kind::Notification);
        wake_writer(queue);
        Ok(None)
    }

    /// Queues one of the connection's own frames, waiting for room. Returns
    /// false if the connection is closing.
    pub async fn send(&self, frame: Bytes) -> bool {
        self.send_all(vec![frame]).await
    }

    /// Queues the connection's own frames in order, waiting for room as
    /// needed; the writer wakes once for as many as fit. Returns false if
    /// the connection is closing (the rest are dropped).
    pub async fn send_all(&self, frames: Vec<Bytes>) -> bool {
        let mut frames = frames.into_iter().peekable();
        while frames.peek().is_some() {
            let room = self.room.notified();
            tokio::pin!(room);
            // Registered before looking, so room made meanwhile is not missed.
            room.as_mut().enable();
            if self.close.get().is_some() {
                return false;
            }
            let waiting = {
                let mut queue = self.queue();
                let mut queued = false;
                while let Some(frame) =
                    frames.next_if(|f| queue.own.admits(1, f.len(), self.limits))
                {
                    queue.push(frame, Kind::Own);
                    queued = true;
                }
                let waiting = frames.peek().is_some();
                queue.blocked |= waiting;
                if queued {
                    wake_writer(queue);
                }
                waiting
            };
            if waiting {
                tokio::select! {
                    () = room => {}
                    _ = self.killed() => return false,
                }
            }
        }
        true
    }

    /// Waits until `slots` own frames fit (`slots` is capped at
    /// [`Outbox::max_frames`]) and holds them, so frames prepared under a
    /// lock can then be queued without waiting. `None` if the connection
    /// is closing.
    pub async fn reserve(&self, slots: usize) -> Option<Reservation<'_>> {
        let slots = slots.min(self.limits.frames);
        loop {
            let room = self.room.notified();
            tokio::pin!(room);
            room.as_mut().enable();
            if self.close.get().is_some() {
                return None;
            }
            {
                let mut queue = self.queue();
                if queue.own.admits(slots, 0, self.limits) {
                    queue.own.frames += slots;
                    return Some(Reservation {
                        outbox: self,
                        slots,
                    });
                }
                queue.blocked = true;
            }
            tokio::select! {
                () = room => {}
                _ = self.killed() => return None,
            }
        }
    }

    /// Waits for frames or a close request. Frames are moved into `batch`
    /// (up to a batch's worth); after a close request, [`Next::Close`] is
    /// returned and whatever is still queued stays for [`Outbox::drain`].
    pub async fn next(&self, batch: &mut Vec<Bytes>) -> Next {
        poll_fn(|cx| {
            if let Some((code, reason)) = self.close.get() {
                return Poll::Ready(Next::Close(*code, reason.clone()));
            }
            let mut queue = self.queue();
            if queue.frames.is_empty() {
                if !queue
                    .writer
                    .as_ref()
                    .is_some_and(|w| w.will_wake(cx.waker()))
                {
                    queue.writer = Some(cx.waker().clone());
                }
                drop(queue);
                // A close requested between the check and the registration
                // took no waker: look again.
                return match self.close.get() {
                    Some((code, reason)) => Poll::Ready(Next::Close(*code, reason.clone())),
                    None => Poll::Pending,
                };
            }
            self.take(&mut queue, batch);
            Poll::Ready(Next::Frames)
        })
        .await
    }

    /// Moves everything still queued into `batch` (before a close frame).
    pub fn drain(&self, batch: &mut Vec<Bytes>) {
        let mut queue = self.queue();
        while !queue.frames.is_empty() {
            self.take(&mut queue, batch);
        }
    }

    /// Moves one batch from the front of the queue into `batch` and frees
    /// its room.
    fn take(&self, queue: &mut Queue, batch: &mut Vec<Bytes>) {
        let (mut taken, mut bytes) = (0, 0);
        let mut own = false;
        while taken < BATCH_FRAMES && (taken == 0 || bytes < BATCH_BYTES) {
            let Some((frame, kind)) = queue.pop() else {
                break;
            };
            taken += 1;
            bytes += frame.len();
            own |= kind == Kind::Own;
            batch.push(frame);
        }
        if own && std::mem::take(&mut queue.blocked) {
            self.room.notify_waiters();
        }
    }

    /// Requests a close with a protocol close code. Later requests are
    /// ignored.
    pub fn kill(&self, code: CloseCode, detail: impl Into<String>) {
        self.close_with(code.code(), detail);
    }

    /// Requests a close with any WebSocket close code (1000 normal, 1001
    /// going away). Later requests are ignored.
    pub fn close_with(&self, code: u16, detail: impl Into<String>) {
        if self.close.set((code, detail.into())).is_ok() {
            self.closing.notify_waiters();
            self.room.notify_waiters();
            wake_writer(self.queue());
        }
    }

    /// The close requested, if any.
    pub fn reason(&self) -> Option<&(u16, String)> {
        self.close.get()
    }

    /// Resolves once a close is requested.
    pub async fn killed(&self) -> (u16, String) {
        loop {
            // Registered before checking, so a close between the check and
            // the await is not missed.
            let notified = self.closing.notified();
            if let Some(r) = self.close.get() {
                return r.clone();
            }
            notified.await;
        }
    }

    /// Takes one queued frame, if any (for tests that stand in for the
    /// writer).
    #[cfg(test)]
    pub(crate) fn try_recv(&self) -> Option<Bytes> {
        let mut queue = self.queue();
        let (frame, kind) = queue.pop()?;
        if kind == Kind::Own && std::mem::take(&mut queue.blocked) {
            self.room.notify_waiters();
        }
        Some(frame)
    }

    /// Waits for one queued frame (for tests that stand in for the writer).
    #[cfg(test)]
    pub(crate) async fn recv(&self) -> Bytes {
        loop {
            if let Some(frame) = self.try_recv() {
                return frame;
            }
            tokio::task::yield_now().await;
        }
    }
}

/// Room for own frames held by [`Outbox::reserve`]; released when sent or
/// dropped.
#[derive(Debug)]
pub struct Reservation<'a> {
    outbox: &'a Outbox,
    slots: usize,
}

impl Reservation<'_> {
    /// The number of frames held.
    pub fn len(&self) -> usize {
        self.slots
    }

    /// Whether no frame is held.
    pub fn is_empty(&self) -> bool {
        self.slots == 0
    }

    /// Queues `frames` (at most [`Reservation::len`] of them, the caller's
    /// promise) in the held room, without waiting.
    pub fn send(mut self, frames: Vec<Bytes>) {
        let outbox = self.outbox;
        let mut queue = outbox.queue();
        queue.own.frames -= std::mem::take(&mut self.slots);
        for frame in frames {
            queue.push(frame, Kind::Own);
        }
        wake_writer(queue);
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if self.slots > 0 {
            let mut queue = self.outbox.queue();
            queue.own.frames -= self.slots;
            if std::mem::take(&mut queue.blocked) {
                self.outbox.room.notify_waiters();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    fn frame(len: usize) -> Bytes {
        Bytes::from(vec![7u8; len])
    }

    const LIMITS: OutboxLimits = OutboxLimits {
        frames: 4,
        bytes: 1000,
    };

    #[tokio::test]
    async fn notifications_over_the_frame_or_byte_limit_close_with_4006() {
        let by_frames = Outbox::new(LIMITS);
        for _ in 0..4 {
            by_frames.notify(frame(10)).unwrap();
        }
        assert_eq!(by_frames.notify(frame(10)), Err(Refused::SlowConsumer));
        assert_eq!(by_frames.reason().unwrap().0, 4006);
        assert_eq!(by_frames.notify(frame(10)), Err(Refused::Closing));

        let by_bytes = Outbox::new(LIMITS);
        by_bytes.notify(frame(600)).unwrap();
        assert_eq!(by_bytes.notify(frame(600)), Err(Refused::SlowConsumer));

        // One frame larger than the byte limit still goes, alone.
        let large = Outbox::new(LIMITS);
        large.notify(frame(5000)).unwrap();
        assert!(large.reason().is_none());
        // A notice before a close is dropped when it does not fit, and
        // leaves the close to the caller.
        large.notify_before_close(frame(1));
        assert!(large.reason().is_none());
        assert_eq!(large.queue().notifications.frames, 1);
        assert_eq!(large.notify(frame(1)), Err(Refused::SlowConsumer));
    }

    #[tokio::test]
    async fn own_frames_do_not_use_the_notifications_room() {
        let outbox = Arc::new(Outbox::new(LIMITS));
        // A pull fills the own-frame room and waits for more.
        let pull = {
            let outbox = outbox.clone();
            tokio::spawn(async move { outbox.send_all((0..8).map(|_| frame(100)).collect()).await })
        };
        while outbox.queue().own.frames < 4 {
            tokio::task::yield_now().await;
        }
        assert!(!pull.is_finished());
        // Notifications still have their own room.
        for _ in 0..4 {
            outbox.notify(frame(100)).unwrap();
        }
        assert!(outbox.reason().is_none());
        // The writer drains; the pull finishes; order is first in, first out.
        let mut got = Vec::new();
        while got.len() < 12 {
            let mut batch = Vec::new();
            match outbox.next(&mut batch).await {
                Next::Frames => got.extend(batch),
                Next::Close(..) => panic!("closed"),
            }
        }
        assert!(pull.await.unwrap());
        assert_eq!(outbox.queue().own.frames, 0);
        assert_eq!(outbox.queue().notifications.frames, 0);
    }

    #[tokio::test]
    async fn own_frames_wait_for_room_in_bytes() {
        let outbox = Arc::new(Outbox::new(LIMITS));
        assert!(outbox.send(frame(900)).await);
        let second = {
            let outbox = outbox.clone();
            tokio::spawn(async move { outbox.send(frame(900)).await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!second.is_finished(), "1,800 bytes exceed the 1,000 limit");
        assert_eq!(outbox.recv().await.len(), 900);
        assert!(second.await.unwrap());
        assert_eq!(outbox.queue().own.bytes, 900);
    }

    #[tokio::test]
    async fn a_close_ends_waiting_senders_and_wakes_the_writer() {
        let full = Arc::new(Outbox::new(LIMITS));
        for _ in 0..4 {
            assert!(full.send(frame(1)).await);
        }
        let blocked = {
            let outbox = full.clone();
            tokio::spawn(async move { outbox.send(frame(1)).await })
        };
        let empty = Arc::new(Outbox::new(LIMITS));
        let writer = {
            let outbox = empty.clone();
            tokio::spawn(async move { outbox.next(&mut Vec::new()).await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!blocked.is_finished() && !writer.is_finished());

        full.kill(CloseCode::AccessRevoked, "revoked");
        full.kill(CloseCode::SlowConsumer, "ignored: the first close wins");
        assert!(!blocked.await.unwrap());
        assert!(!full.send(frame(1)).await);
        let mut left = Vec::new();
        let Next::Close(code, reason) = full.next(&mut left).await else {
            panic!("a close comes before queued frames")
        };
        assert_eq!((code, reason.as_str()), (4002, "revoked"));
        full.drain(&mut left);
        assert_eq!(left.len(), 4, "queued frames stay for the writer to drain");

        empty.close_with(1001, "server shutting down");
        let Next::Close(code, _) = writer.await.unwrap() else {
            panic!("close expected")
        };
        assert_eq!(code, 1001);
    }

    #[tokio::test]
    async fn a_reservation_holds_room_until_sent_or_dropped() {
        let outbox = Outbox::new(LIMITS);
        let held = outbox.reserve(3).await.unwrap();
        assert_eq!(held.len(), 3);
        assert_eq!(outbox.queue().own.frames, 3);
        drop(held);
        assert_eq!(outbox.queue().own.frames, 0);
        let held = outbox.reserve(10).await.unwrap();
        assert_eq!(held.len(), 4, "capped at the frame limit");
        held.send(vec![frame(5), frame(6)]);
        assert_eq!(outbox.queue().own.frames, 2);
        assert_eq!(outbox.try_recv().unwrap().len(), 5);
        assert_eq!(outbox.try_recv().unwrap().len(), 6);
        assert!(outbox.try_recv().is_none());
    }

    #[tokio::test]
    async fn the_writer_takes_bounded_batches() {
        let outbox = Outbox::new(OutboxLimits {
            frames: 1000,
            bytes: 100 << 20,
        });
        for _ in 0..100 {
            outbox.notify(frame(10)).unwrap();
        }
        let mut batch = Vec::new();
        outbox.next(&mut batch).await;
        assert_eq!(batch.len(), BATCH_FRAMES);
        outbox.drain(&mut batch);
        assert_eq!(batch.len(), 100);

        for _ in 0..3 {
            outbox.notify(frame(BATCH_BYTES)).unwrap();
        }
        let mut batch = Vec::new();
        outbox.next(&mut batch).await;
        assert_eq!(batch.len(), 1, "a batch ends once it reaches its bytes");
    }
}
