//! Presence and ephemeral events: `presence.set`, `presence.clear`,
//! `event.send`, and the presence snapshot a subscriber gets.
//!
//! Both need `write` on the space (the personal space: the session's own
//! token), are rate limited per connection before anything else is done,
//! and are relayed encoded once: to the space's other subscribers here
//! (through the hub's bounded queues: a slow consumer is closed with 4006)
//! and to the other instances. Neither is ever stored.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use sealbase_crypto::Capability;
use sealbase_protocol::{
    Empty, ErrorBody, ErrorCode, EventNotification, EventSendParams, Frame, Notification,
    PresenceClearParams, PresenceNotification, PresenceSetParams,
};
use uuid::Uuid;

use super::Conn;
use crate::fanout::ephemeral::Ephemeral;
use crate::hub::ConnId;
use crate::presence::Update;
use crate::ratelimit::RateLimiter;

/// Takes a token from `limiter` for this connection, or refuses with
/// `rate_limited` saying when to retry.
fn limit(conn: &Conn, limiter: &RateLimiter<ConnId>, what: &str) -> Result<(), ErrorBody> {
    super::rate_limit(&conn.app, limiter, &conn.id, what)
}

fn encode(notification: &Notification) -> Result<Bytes, ErrorBody> {
    Frame::notification(notification)
        .and_then(|f| f.encode())
        .map(Bytes::from)
        .map_err(|e| {
            tracing::error!(error = %e, "cannot encode a notification");
            ErrorBody::new(ErrorCode::Internal, "cannot encode the notification")
        })
}

/// `presence.set`: replaces the caller's presence in the space.
pub(super) async fn set(conn: &Arc<Conn>, p: PresenceSetParams) -> Result<Empty, ErrorBody> {
    let app = &conn.app;
    limit(conn, &app.limiters.presence, "presence updates")?;
    let grant = conn
        .authorize(p.space, p.cap.as_deref(), Capability::Write)
        .await?;
    let peer = conn.peer(p.space);
    let frame = encode(&Notification::Presence(PresenceNotification {
        space: p.space,
        peer,
        did: conn.did.to_string(),
        data: p.data,
    }))?;
    let update = Update {
        conn: conn.id,
        peer,
        frame,
        grant,
    };
    // False only once the connection is closing; nobody waits for the answer.
    app.presence
        .set(app.outlets(), &conn.closed, p.space, update, Instant::now());
    Ok(Empty {})
}

/// `presence.clear`: the caller leaves the space's presence (nothing to
/// authorize: it only removes the caller's own entry).
pub(super) fn clear(conn: &Conn, p: PresenceClearParams) -> Result<Empty, ErrorBody> {
    conn.app
        .presence
        .clear(conn.app.outlets(), p.space, conn.id);
    Ok(Empty {})
}

/// `event.send`: relays an event to the space's other subscribers.
pub(super) async fn send_event(conn: &Arc<Conn>, p: EventSendParams) -> Result<Empty, ErrorBody> {
    let app = &conn.app;
    limit(conn, &app.limiters.events, "events")?;
    conn.authorize(p.space, p.cap.as_deref(), Capability::Write)
        .await?;
    let peer = conn.peer(p.space);
    let frame = encode(&Notification::Event(EventNotification {
        space: p.space,
        peer,
        did: conn.did.to_string(),
        data: p.data,
    }))?;
    app.hub.publish(p.space, &frame, Some(conn.id));
    app.relay.send(Ephemeral::Event {
        space: p.space,
        peer,
        frame,
    });
    app.metrics
        .events
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    Ok(Empty {})
}

/// After `subscribe`: every other peer present in each subscribed space.
pub(super) async fn snapshot(conn: &Conn, spaces: &[Uuid]) {
    for space in spaces {
        conn.app
            .presence
            .send_snapshot(*space, conn.id, &conn.outbox)
            .await;
    }
}
