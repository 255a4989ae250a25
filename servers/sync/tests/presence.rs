//! Presence and ephemeral events over real sockets, on SQLite and on
//! PostgreSQL, and between two instances sharing one PostgreSQL database.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[macro_use]
mod common;

use std::time::{Duration, Instant};

use base64::Engine as _;
use common::{Backend, Client, Incoming, TempDir, TestServer, User, http_get, now};
use sealbase_crypto::{Capability, CapabilityToken, OsRng};
use sealbase_protocol::{
    CallResult, CapRevokeParams, Change, ClientRequest, ErrorBody, ErrorCode, EventNotification,
    EventSendParams, Frame, Hash, MAX_EVENT_LEN, MAX_PRESENCE_LEN, Notification,
    PresenceClearParams, PresenceLeaveNotification, PresenceNotification, PresenceSetParams,
    PushParams, SpaceCreateParams, UnsubscribeParams, Uuid, WrappedKey,
};
use sealbase_sync::Limits;
use sealbase_sync::store::Store;
use sealbase_sync::testing::TestIssuer;
use sha2::{Digest, Sha256};

// ---------------------------------------------------------------------------
// Harness

/// A server on a database whose URL (and files) the test can inspect.
struct Env {
    server: TestServer,
    url: String,
    backend: Backend,
    _dir: Option<TempDir>,
}

async fn env(backend: Backend, name: &str, limits: Limits) -> Env {
    let (url, dir) = match backend {
        Backend::Sqlite => {
            let dir = std::env::temp_dir().join(format!(
                "sealbase-presence-{}-{name}-{}",
                std::process::id(),
                now_nanos()
            ));
            (
                format!("sqlite://{}/sync.db", dir.display()),
                Some(TempDir::new(dir)),
            )
        }
        Backend::Postgres => (sealbase_pgtest::database(name).url(), None),
    };
    let store = Store::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    let issuer = TestIssuer::generate("test-key-1").unwrap();
    Env {
        server: TestServer::start_on(store, issuer, limits).await,
        url,
        backend,
        _dir: dir,
    }
}

fn now_nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

/// Whether `needle` is anywhere in the database: every file of a SQLite
/// database (main file and WAL), every row of every table on Postgres.
async fn database_contains(env: &Env, needle: &[u8]) -> bool {
    match env.backend {
        Backend::Sqlite => {
            let path = env.url.trim_start_matches("sqlite://");
            ["", "-wal", "-shm"].iter().any(|suffix| {
                std::fs::read(format!("{path}{suffix}"))
                    .map(|bytes| bytes.windows(needle.len()).any(|w| w == needle))
                    .unwrap_or(false)
            })
        }
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(&env.url).await.unwrap();
            let tables: Vec<String> = sqlx::query_scalar(
                "SELECT table_name::text FROM information_schema.tables
                 WHERE table_schema = 'public' AND table_type = 'BASE TABLE'",
            )
            .fetch_all(&pool)
            .await
            .unwrap();
            assert!(tables.iter().any(|t| t == "records"), "{tables:?}");
            let hex: String = needle.iter().map(|b| format!("{b:02x}")).collect();
            for table in tables {
                // bytea prints as hex in a row's text form.
                let hits: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                    "SELECT count(*) FROM \"{table}\" AS r WHERE r::text LIKE '%' || $1 || '%'"
                )))
                .bind(&hex)
                .fetch_one(&pool)
                .await
                .unwrap();
                if hits > 0 {
                    return true;
                }
            }
            pool.close().await;
            false
        }
    }
}

fn set(space: Uuid, cap: Option<&CapabilityToken>, data: &[u8]) -> PresenceSetParams {
    PresenceSetParams {
        space,
        cap: cap.map(ToString::to_string),
        data: data.to_vec().into(),
    }
}

fn event(space: Uuid, cap: Option<&CapabilityToken>, data: &[u8]) -> EventSendParams {
    EventSendParams {
        space,
        cap: cap.map(ToString::to_string),
        data: data.to_vec().into(),
    }
}

async fn ok(client: &mut Client, request: impl Into<ClientRequest>) {
    client.call(request).await.unwrap();
}

async fn refused(client: &mut Client, request: impl Into<ClientRequest>) -> ErrorBody {
    client.call(request).await.unwrap_err()
}

/// Like `Client::call`, but keeps the notifications that arrive before the
/// response.
async fn call_keeping(
    client: &mut Client,
    request: impl Into<ClientRequest>,
) -> (Result<CallResult, ErrorBody>, Vec<Notification>) {
    let request = request.into();
    let method = request.method();
    let id = client.send(request).await;
    let mut kept = Vec::new();
    loop {
        match client.next().await {
            Incoming::Response(r) if r.id == id => {
                let result = r
                    .outcome
                    .map(|raw| CallResult::from_raw(method, &raw).unwrap());
                return (result, kept);
            }
            Incoming::Notification(n) => kept.push(n),
            Incoming::Closed(code) => panic!("closed ({code:?}) while waiting for {id}"),
            Incoming::Response(_) | Incoming::Chunk(..) => {}
        }
    }
}

async fn subscribed(client: &mut Client, space: Uuid, cap: Option<&CapabilityToken>) {
    let s = client.subscribe(space, cap.map(ToString::to_string)).await;
    assert!(s.denied.is_empty(), "denied: {:?}", s.denied);
}

async fn presence(client: &mut Client) -> PresenceNotification {
    match client.notification().await {
        Notification::Presence(p) => p,
        other => panic!("expected presence, got {other:?}"),
    }
}

async fn leave(client: &mut Client) -> PresenceLeaveNotification {
    match client.notification().await {
        Notification::PresenceLeave(l) => l,
        other => panic!("expected presence.leave, got {other:?}"),
    }
}

async fn event_notification(client: &mut Client) -> EventNotification {
    match client.notification().await {
        Notification::Event(e) => e,
        other => panic!("expected event, got {other:?}"),
    }
}

/// Fails if anything arrives on `client` within `ms`.
async fn nothing_within(client: &mut Client, ms: u64) {
    if let Ok(incoming) = tokio::time::timeout(Duration::from_millis(ms), client.next()).await {
        panic!("expected silence, got {incoming:?}");
    }
}

/// Every notification arriving within `ms`.
async fn notifications_within(client: &mut Client, ms: u64) -> Vec<Notification> {
    let until = Instant::now() + Duration::from_millis(ms);
    let mut out = Vec::new();
    while let Ok(incoming) = tokio::time::timeout_at(until.into(), client.next()).await {
        match incoming {
            Incoming::Notification(n) => out.push(n),
            Incoming::Closed(code) => panic!("closed ({code:?})"),
            _ => {}
        }
    }
    out
}

async fn close(mut client: Client) {
    client.ws.close(None).await.unwrap();
    // Drain until the server's close arrives.
    let _ = tokio::time::timeout(Duration::from_secs(5), client.closed()).await;
}

/// A shared space created by `root`, and a capability granting `cap` on it
/// to `to`.
async fn shared_space(root_client: &mut Client, space: Uuid) {
    let r = root_client
        .call(SpaceCreateParams {
            id: space,
            entry: b"genesis".to_vec().into(),
            key: b"sealed epoch 1".to_vec().into(),
        })
        .await
        .unwrap();
    assert!(matches!(r, CallResult::SpaceCreate(_)), "{r:?}");
}

fn grant(root: &User, to: &User, space: Uuid, cap: Capability) -> CapabilityToken {
    CapabilityToken::issue_root(
        &root.identity,
        &to.identity.did(),
        space,
        cap,
        now() + 3600,
        &mut OsRng,
    )
    .unwrap()
}

// ---------------------------------------------------------------------------
// Both backends

async fn presence_reaches_other_subscribers_not_the_setter(backend: Backend) {
    let env = env(backend, "presence_relay", Limits::default()).await;
    let server = &env.server;
    let alice = server.user(1);
    let space = alice.personal_space;
    let (mut setter, _) = server.client(&alice).await;
    let (mut watcher, _) = server.client(&alice).await;
    subscribed(&mut setter, space, None).await;
    subscribed(&mut watcher, space, None).await;

    ok(&mut setter, set(space, None, b"cursor at 1,1")).await;
    let first = presence(&mut watcher).await;
    assert_eq!(first.space, space);
    assert_eq!(first.did, alice.identity.did().to_string());
    assert_eq!(first.data.as_slice(), b"cursor at 1,1");
    nothing_within(&mut setter, 300).await;

    // A new state (or a heartbeat) comes from the same peer.
    ok(&mut setter, set(space, None, b"cursor at 2,2")).await;
    let second = presence(&mut watcher).await;
    assert_eq!(second.peer, first.peer);
    assert_eq!(second.data.as_slice(), b"cursor at 2,2");
    nothing_within(&mut setter, 100).await;
}

async fn subscribing_brings_a_snapshot_of_present_peers(backend: Backend) {
    let env = env(backend, "presence_snapshot", Limits::default()).await;
    let server = &env.server;
    let alice = server.user(1);
    let space = alice.personal_space;
    let (mut one, _) = server.client(&alice).await;
    let (mut two, _) = server.client(&alice).await;
    // Presence needs no subscription of the setter's own.
    ok(&mut one, set(space, None, b"one")).await;
    ok(&mut two, set(space, None, b"two")).await;
    ok(&mut two, set(space, None, b"two, later")).await;

    let (mut newcomer, _) = server.client(&alice).await;
    subscribed(&mut newcomer, space, None).await;
    let mut seen = [presence(&mut newcomer).await, presence(&mut newcomer).await];
    seen.sort_by(|a, b| a.data.as_slice().cmp(b.data.as_slice()));
    assert_eq!(seen[0].data.as_slice(), b"one");
    assert_eq!(seen[1].data.as_slice(), b"two, later");
    assert_ne!(seen[0].peer, seen[1].peer);
    nothing_within(&mut newcomer, 300).await;

    // Nobody present in another space: no snapshot.
    let bob = server.user(2);
    let (mut bob_client, _) = server.client(&bob).await;
    subscribed(&mut bob_client, bob.personal_space, None).await;
    nothing_within(&mut bob_client, 300).await;
}

async fn clear_unsubscribe_and_disconnect_send_leave(backend: Backend) {
    let env = env(backend, "presence_leave", Limits::default()).await;
    let server = &env.server;
    let alice = server.user(1);
    let space = alice.personal_space;
    let (mut watcher, _) = server.client(&alice).await;
    subscribed(&mut watcher, space, None).await;
    let (mut peer, _) = server.client(&alice).await;
    subscribed(&mut peer, space, None).await;

    ok(&mut peer, set(space, None, b"here")).await;
    let id = presence(&mut watcher).await.peer;
    ok(&mut peer, PresenceClearParams { space }).await;
    assert_eq!(
        leave(&mut watcher).await,
        PresenceLeaveNotification { space, peer: id }
    );
    // Clearing again says nothing.
    ok(&mut peer, PresenceClearParams { space }).await;
    nothing_within(&mut watcher, 200).await;

    // The peer id is the connection's for the space, across sets.
    ok(&mut peer, set(space, None, b"back")).await;
    assert_eq!(presence(&mut watcher).await.peer, id);
    ok(
        &mut peer,
        UnsubscribeParams {
            spaces: vec![space],
        },
    )
    .await;
    assert_eq!(leave(&mut watcher).await.peer, id);

    ok(&mut peer, set(space, None, b"again")).await;
    assert_eq!(presence(&mut watcher).await.peer, id);
    close(peer).await;
    assert_eq!(leave(&mut watcher).await.peer, id);
    nothing_within(&mut watcher, 200).await;

    // A connection dropped without a close handshake leaves too.
    let (mut abrupt, _) = server.client(&alice).await;
    ok(&mut abrupt, set(space, None, b"abrupt")).await;
    let abrupt_id = presence(&mut watcher).await.peer;
    assert_ne!(abrupt_id, id, "peer ids are per connection");
    drop(abrupt);
    assert_eq!(leave(&mut watcher).await.peer, abrupt_id);
}

async fn presence_expires_without_a_heartbeat(backend: Backend) {
    let limits = Limits {
        presence_ttl: Duration::from_secs(1),
        ..Limits::default()
    };
    let env = env(backend, "presence_ttl", limits).await;
    let server = &env.server;
    let alice = server.user(1);
    let space = alice.personal_space;
    let (mut watcher, _) = server.client(&alice).await;
    subscribed(&mut watcher, space, None).await;
    let (mut quiet, _) = server.client(&alice).await;
    let (mut beating, _) = server.client(&alice).await;

    ok(&mut quiet, set(space, None, b"quiet")).await;
    let quiet_id = presence(&mut watcher).await.peer;
    let started = Instant::now();
    ok(&mut beating, set(space, None, b"beating")).await;
    let beating_id = presence(&mut watcher).await.peer;

    // The beating peer re-sets every TTL/2; the quiet one goes silent.
    let mut leaves = Vec::new();
    let mut heartbeats = 0;
    while started.elapsed() < Duration::from_millis(2600) {
        ok(&mut beating, set(space, None, b"beating")).await;
        for n in notifications_within(&mut watcher, 500).await {
            match n {
                Notification::PresenceLeave(l) => leaves.push((l.peer, started.elapsed())),
                Notification::Presence(p) => {
                    assert_eq!(p.peer, beating_id);
                    heartbeats += 1;
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    }
    assert!(heartbeats >= 4, "heartbeats are relayed too");
    assert_eq!(leaves.len(), 1, "{leaves:?}");
    let (peer, at) = leaves[0];
    assert_eq!(peer, quiet_id);
    assert!(
        at >= Duration::from_millis(900) && at < Duration::from_millis(2000),
        "left after {at:?}"
    );

    // A peer that expired can come back.
    ok(&mut quiet, set(space, None, b"back")).await;
    let back = loop {
        let p = presence(&mut watcher).await;
        if p.peer == quiet_id {
            break p;
        }
    };
    assert_eq!(back.data.as_slice(), b"back");
}

async fn peer_ids_are_per_space(backend: Backend) {
    let env = env(backend, "presence_peer_ids", Limits::default()).await;
    let server = &env.server;
    let alice = server.user(1);
    let bob = server.user(2);
    let shared = Uuid::from_u128(0x5ace);
    let (mut a, _) = server.client(&alice).await;
    shared_space(&mut a, shared).await;
    let bob_cap = grant(&alice, &bob, shared, Capability::Read);
    let (mut watch_personal, _) = server.client(&alice).await;
    subscribed(&mut watch_personal, alice.personal_space, None).await;
    let (mut watch_shared, _) = server.client(&bob).await;
    subscribed(&mut watch_shared, shared, Some(&bob_cap)).await;

    ok(&mut a, set(alice.personal_space, None, b"p")).await;
    // The root creates its own capabilities; a self-issued root token
    // works for the creator.
    let own = grant(&alice, &alice, shared, Capability::Admin);
    ok(&mut a, set(shared, Some(&own), b"s")).await;
    let in_personal = presence(&mut watch_personal).await;
    let in_shared = presence(&mut watch_shared).await;
    assert_eq!(in_personal.did, in_shared.did, "the DID is the same");
    assert_ne!(in_personal.peer, in_shared.peer, "peer ids are per space");

    // Events carry the same peer id as presence in that space.
    ok(&mut a, event(shared, Some(&own), b"e")).await;
    assert_eq!(
        event_notification(&mut watch_shared).await.peer,
        in_shared.peer
    );
    ok(&mut a, event(alice.personal_space, None, b"e")).await;
    assert_eq!(
        event_notification(&mut watch_personal).await.peer,
        in_personal.peer
    );
}

async fn oversized_or_too_frequent_presence_is_refused(backend: Backend) {
    let limits = Limits {
        presence_per_second: 5,
        ..Limits::default()
    };
    let env = env(backend, "presence_limits", limits).await;
    let server = &env.server;
    let alice = server.user(1);
    let space = alice.personal_space;
    let (mut c, _) = server.client(&alice).await;

    let err = refused(&mut c, set(space, None, &vec![0; MAX_PRESENCE_LEN + 1])).await;
    assert_eq!(err.code, ErrorCode::PayloadTooLarge);
    ok(&mut c, set(space, None, &vec![0; MAX_PRESENCE_LEN])).await;
    for _ in 0..4 {
        ok(&mut c, set(space, None, b"x")).await;
    }
    let err = refused(&mut c, set(space, None, b"x")).await;
    assert_eq!(err.code, ErrorCode::RateLimited, "{err:?}");
    // One more every 200 ms.
    tokio::time::sleep(Duration::from_millis(250)).await;
    ok(&mut c, set(space, None, b"x")).await;
    // The limit is per connection.
    let (mut other, _) = server.client(&alice).await;
    ok(&mut other, set(space, None, b"x")).await;
    let metrics = http_get(&server.http("/metrics")).await;
    assert!(
        metrics.contains("sealbase_sync_rate_limited_total 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("sealbase_sync_presence_peers 2"),
        "{metrics}"
    );
}

async fn events_are_refused_over_size_or_rate(backend: Backend) {
    let limits = Limits {
        events_per_second: 3,
        ..Limits::default()
    };
    let env = env(backend, "event_limits", limits).await;
    let server = &env.server;
    let alice = server.user(1);
    let space = alice.personal_space;
    let (mut c, _) = server.client(&alice).await;
    let err = refused(&mut c, event(space, None, &vec![0; MAX_EVENT_LEN + 1])).await;
    assert_eq!(err.code, ErrorCode::PayloadTooLarge);
    ok(&mut c, event(space, None, &vec![0; MAX_EVENT_LEN])).await;
    ok(&mut c, event(space, None, b"2")).await;
    ok(&mut c, event(space, None, b"3")).await;
    let err = refused(&mut c, event(space, None, b"4")).await;
    assert_eq!(err.code, ErrorCode::RateLimited);
    // Presence has its own budget.
    ok(&mut c, set(space, None, b"x")).await;
}

async fn read_only_capabilities_cannot_set_presence_or_send_events(backend: Backend) {
    let env = env(backend, "presence_caps", Limits::default()).await;
    let server = &env.server;
    let alice = server.user(1);
    let bob = server.user(2);
    let carol = server.user(3);
    let space = Uuid::from_u128(0x5ace);
    let (mut a, _) = server.client(&alice).await;
    shared_space(&mut a, space).await;
    let read = grant(&alice, &bob, space, Capability::Read);
    let write = grant(&alice, &bob, space, Capability::Write);
    let (mut b, _) = server.client(&bob).await;
    let (mut c, _) = server.client(&carol).await;

    for err in [
        refused(&mut b, set(space, Some(&read), b"x")).await,
        refused(&mut b, event(space, Some(&read), b"x")).await,
        refused(&mut b, set(space, None, b"x")).await,
        refused(&mut c, event(space, None, b"x")).await,
        // Someone else's token is not Carol's.
        refused(&mut c, set(space, Some(&write), b"x")).await,
        // Someone else's personal space.
        refused(&mut c, set(alice.personal_space, None, b"x")).await,
        refused(&mut c, event(alice.personal_space, None, b"x")).await,
    ] {
        assert_eq!(err.code, ErrorCode::Forbidden, "{err:?}");
    }
    let err = refused(&mut b, set(Uuid::from_u128(0xdead), None, b"x")).await;
    assert_eq!(err.code, ErrorCode::NotFound);

    // With write, both work; the read-only subscriber sees them.
    let (mut watcher, _) = server.client(&bob).await;
    subscribed(&mut watcher, space, Some(&read)).await;
    ok(&mut b, set(space, Some(&write), b"hello")).await;
    ok(&mut b, event(space, Some(&write), b"wave")).await;
    assert_eq!(presence(&mut watcher).await.data.as_slice(), b"hello");
    assert_eq!(
        event_notification(&mut watcher).await.data.as_slice(),
        b"wave"
    );
}

async fn revoking_a_capability_ends_presence(backend: Backend) {
    let env = env(backend, "presence_revoke", Limits::default()).await;
    let server = &env.server;
    let alice = server.user(1);
    let bob = server.user(2);
    let space = Uuid::from_u128(0x5ace);
    let (mut a, _) = server.client(&alice).await;
    shared_space(&mut a, space).await;
    let admin = grant(&alice, &alice, space, Capability::Admin);
    subscribed(&mut a, space, Some(&admin)).await;
    let write = grant(&alice, &bob, space, Capability::Write);

    // One of Bob's connections is subscribed through the capability, the
    // other only set presence with it.
    let (mut subscribed_bob, _) = server.client(&bob).await;
    subscribed(&mut subscribed_bob, space, Some(&write)).await;
    ok(&mut subscribed_bob, set(space, Some(&write), b"s")).await;
    let (mut present_bob, _) = server.client(&bob).await;
    ok(&mut present_bob, set(space, Some(&write), b"p")).await;
    let mut peers = vec![presence(&mut a).await.peer, presence(&mut a).await.peer];
    peers.sort();

    let (result, early) = call_keeping(
        &mut a,
        CapRevokeParams {
            space,
            cap: Some(admin.to_string()),
            token_hash: Hash(Sha256::digest(write.to_string().as_bytes()).into()),
        },
    )
    .await;
    result.unwrap();
    let mut left: Vec<Uuid> = early
        .into_iter()
        .map(|n| match n {
            Notification::PresenceLeave(l) => l.peer,
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    while left.len() < 2 {
        left.push(leave(&mut a).await.peer);
    }
    left.sort();
    assert_eq!(left, peers);
    assert_eq!(subscribed_bob.closed().await, Some(4002));
    // The other connection stays, but cannot come back with that chain.
    let err = refused(&mut present_bob, set(space, Some(&write), b"p")).await;
    assert_eq!(err.code, ErrorCode::Forbidden);
    nothing_within(&mut a, 300).await;
}

async fn events_reach_other_subscribers_and_are_never_stored(backend: Backend) {
    let env = env(backend, "events_relay", Limits::default()).await;
    let server = &env.server;
    let alice = server.user(1);
    let space = alice.personal_space;
    let (mut sender, _) = server.client(&alice).await;
    let (mut watcher, _) = server.client(&alice).await;
    subscribed(&mut sender, space, None).await;
    subscribed(&mut watcher, space, None).await;

    let event_marker: Vec<u8> = b"EVENT-MARKER-"
        .iter()
        .copied()
        .chain(rand_bytes(32))
        .collect();
    let presence_marker: Vec<u8> = b"PRESENCE-MARKER-"
        .iter()
        .copied()
        .chain(rand_bytes(32))
        .collect();
    ok(&mut sender, event(space, None, &event_marker)).await;
    let e = event_notification(&mut watcher).await;
    assert_eq!(e.space, space);
    assert_eq!(e.did, alice.identity.did().to_string());
    assert_eq!(e.data.as_slice(), event_marker.as_slice());
    ok(&mut sender, set(space, None, &presence_marker)).await;
    presence(&mut watcher).await;
    nothing_within(&mut sender, 300).await;

    // Nothing of either reached the database...
    assert!(!database_contains(&env, &event_marker).await);
    assert!(!database_contains(&env, &presence_marker).await);
    // ...though a stored record is found by the same search.
    let record_marker: Vec<u8> = b"RECORD-MARKER-"
        .iter()
        .copied()
        .chain(rand_bytes(32))
        .collect();
    ok(
        &mut sender,
        PushParams {
            space,
            cap: None,
            changes: vec![Change {
                id: Uuid::from_u128(1),
                blob: Some(record_marker.clone().into()),
                dek: Some(WrappedKey::from([7u8; 44])),
                expected_cursor: 0,
            }],
        },
    )
    .await;
    assert!(database_contains(&env, &record_marker).await);

    let metrics = http_get(&server.http("/metrics")).await;
    assert!(
        metrics.contains("sealbase_sync_events_total 1"),
        "{metrics}"
    );
}

fn rand_bytes(n: usize) -> Vec<u8> {
    use rand_core::RngCore;
    let mut bytes = vec![0u8; n];
    rand_core::OsRng.fill_bytes(&mut bytes);
    bytes
}

both_backends!(
    presence_reaches_other_subscribers_not_the_setter,
    subscribing_brings_a_snapshot_of_present_peers,
    clear_unsubscribe_and_disconnect_send_leave,
    presence_expires_without_a_heartbeat,
    peer_ids_are_per_space,
    oversized_or_too_frequent_presence_is_refused,
    events_are_refused_over_size_or_rate,
    read_only_capabilities_cannot_set_presence_or_send_events,
    revoking_a_capability_ends_presence,
    events_reach_other_subscribers_and_are_never_stored,
);

// ---------------------------------------------------------------------------
// Two instances on one PostgreSQL database

/// Two instances sharing one fresh database and one issuer.
async fn pair(name: &str, limits: Limits) -> (Env, TestServer) {
    let a = env(Backend::Postgres, name, limits.clone()).await;
    let b = TestServer::start_on(a.server.store.clone(), a.server.issuer.clone(), limits).await;
    (a, b)
}

/// Alice on both instances, once they have settled: her personal space,
/// a client on A, and one on B subscribed to that space.
async fn alice_on_both(a: &TestServer, b: &TestServer) -> (User, Uuid, Client, Client) {
    settle().await;
    let alice = a.user(1);
    let space = alice.personal_space;
    let (on_a, _) = a.client(&alice).await;
    let (mut on_b, _) = b.client(&alice).await;
    subscribed(&mut on_b, space, None).await;
    (alice, space, on_a, on_b)
}

/// Waits until `instance`'s listener is up (its hello was heard): the first
/// presence relayed to it after start must not race its LISTEN.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(300)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_crosses_instances() {
    let (a, b) = pair("presence_cross", Limits::default()).await;
    let (alice, space, mut on_a, mut on_b) = alice_on_both(&a.server, &b).await;

    ok(&mut on_a, set(space, None, b"from a")).await;
    let p = presence(&mut on_b).await;
    assert_eq!(p.data.as_slice(), b"from a");
    assert_eq!(p.did, alice.identity.did().to_string());
    let peer = p.peer;

    // A later subscriber on B gets A's peer in its snapshot.
    let (mut late, _) = b.client(&alice).await;
    subscribed(&mut late, space, None).await;
    assert_eq!(presence(&mut late).await.peer, peer);

    // And B's own peers reach A's subscribers.
    subscribed(&mut on_a, space, None).await;
    ok(&mut late, set(space, None, b"from b")).await;
    let from_b = presence(&mut on_a).await;
    assert_eq!(from_b.data.as_slice(), b"from b");
    assert_eq!(presence(&mut on_b).await.peer, from_b.peer);

    ok(&mut on_a, PresenceClearParams { space }).await;
    assert_eq!(leave(&mut on_b).await.peer, peer);
    assert_eq!(leave(&mut late).await.peer, peer);
    ok(&mut on_a, set(space, None, b"again")).await;
    assert_eq!(presence(&mut on_b).await.peer, peer);
    close(on_a).await;
    assert_eq!(leave(&mut on_b).await.peer, peer);
    nothing_within(&mut on_b, 300).await;

    let metrics = http_get(&b.http("/metrics")).await;
    assert!(
        metrics.contains("sealbase_sync_presence_remote_peers 0"),
        "{metrics}"
    );
    assert!(
        metrics.contains("sealbase_sync_presence_peers 1"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_cross_instances_whole_and_in_order() {
    let (a, b) = pair("events_cross", Limits::default()).await;
    let (alice, space, mut sender, mut on_b) = alice_on_both(&a.server, &b).await;

    // Over NOTIFY's 8000-byte payload limit, up to the protocol's 64 KiB,
    // between small ones.
    let large: Vec<u8> = (0..MAX_EVENT_LEN).map(|i| (i % 253) as u8).collect();
    let medium = rand_bytes(9000);
    let sent = vec![
        b"first".to_vec(),
        large,
        b"third".to_vec(),
        medium,
        b"last".to_vec(),
    ];
    for data in &sent {
        ok(&mut sender, event(space, None, data)).await;
    }
    for data in &sent {
        let e = event_notification(&mut on_b).await;
        assert_eq!(e.data.len(), data.len());
        assert!(
            e.data.as_slice() == data.as_slice(),
            "event of {} bytes altered",
            data.len()
        );
        assert_eq!(e.did, alice.identity.did().to_string());
    }
    nothing_within(&mut on_b, 300).await;
    nothing_within(&mut sender, 100).await;
    let metrics = http_get(&b.http("/metrics")).await;
    assert!(
        metrics.contains("sealbase_sync_events_remote_total 5"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopping_instance_tells_the_others_its_peers_left() {
    // Presence lasts 60 s without a heartbeat: only the stopping instance
    // saying so can end it sooner.
    let limits = Limits {
        events_per_second: 10_000,
        ..Limits::default()
    };
    let a = env(Backend::Postgres, "presence_shutdown", limits.clone()).await;
    // B has a pool of its own, which A closing its store leaves alone.
    let b_store = Store::connect(&a.url).await.unwrap();
    let b = TestServer::start_on(b_store, a.server.issuer.clone(), limits).await;
    let (_, space, mut on_a, mut on_b) = alice_on_both(&a.server, &b).await;
    ok(&mut on_a, set(space, None, b"on a")).await;
    let peer = presence(&mut on_b).await.peer;

    // Events of the largest size, accepted (queued for the relay) just
    // before A stops, so that A's relay is still sending when it does.
    let sent = 40;
    for n in 0..sent {
        ok(&mut on_a, event(space, None, &vec![n; MAX_EVENT_LEN])).await;
    }
    // A stops as its binary does: sockets closed and drained, then its
    // store closed.
    let Env { server: a, .. } = a;
    let _ = a.shut_down().await;
    assert_eq!(on_a.closed().await, Some(1001));
    // Everything A accepted reaches B, then the peer's leave.
    let mut received = 0;
    let left = loop {
        let next = tokio::time::timeout(Duration::from_secs(10), on_b.notification())
            .await
            .expect("B hears the rest of A's events and that A's peer left");
        match next {
            Notification::Event(e) => {
                assert_eq!(e.data.as_slice(), vec![received; MAX_EVENT_LEN]);
                received += 1;
            }
            Notification::PresenceLeave(left) => break left,
            other => panic!("unexpected {other:?}"),
        }
    };
    assert_eq!(received, sent);
    assert_eq!(left.peer, peer);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_instance_s_peers_expire() {
    let limits = Limits {
        presence_ttl: Duration::from_secs(1),
        ..Limits::default()
    };
    let a = env(Backend::Postgres, "presence_dead_instance", limits).await;
    settle().await;
    let alice = a.server.user(1);
    let space = alice.personal_space;
    let (mut watcher, _) = a.server.client(&alice).await;
    subscribed(&mut watcher, space, None).await;

    // An instance that announces a peer once and then dies (written by
    // hand, in the relay's format).
    let dead_instance = Uuid::from_u128(0xdead);
    let peer = Uuid::from_u128(0xbeef);
    let frame = Frame::notification(&Notification::Presence(PresenceNotification {
        space,
        peer,
        did: "did:key:z6Mkghost".to_owned(),
        data: b"ghost".to_vec().into(),
    }))
    .unwrap()
    .encode()
    .unwrap();
    let payload = format!(
        "s1 {} 1 0 1 p {} {} {}",
        dead_instance.simple(),
        space.simple(),
        peer.simple(),
        base64::engine::general_purpose::STANDARD.encode(frame)
    );
    let admin = sqlx::PgPool::connect(&a.url).await.unwrap();
    sqlx::query("SELECT pg_notify('sealbase_ephemeral', $1)")
        .bind(&payload)
        .execute(&admin)
        .await
        .unwrap();
    let started = Instant::now();
    let p = presence(&mut watcher).await;
    assert_eq!((p.peer, p.data.as_slice()), (peer, &b"ghost"[..]));
    // Its instance never says it left; this one notices the silence
    // (TTL 1 s plus two sweep intervals of 250 ms).
    assert_eq!(leave(&mut watcher).await.peer, peer);
    let after = started.elapsed();
    assert!(
        after >= Duration::from_millis(1400) && after < Duration::from_millis(3000),
        "{after:?}"
    );
}
