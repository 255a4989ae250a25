//! Realtime fanout between two server instances on one PostgreSQL database.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::time::{Duration, Instant};

use common::{Backend, Client, TestServer, User};
use sealbase_protocol::{
    CallResult, Change, Notification, PushParams, PushResult, SyncNotification, Uuid, WrappedKey,
};
use sealbase_sync::Limits;
use sealbase_sync::store::Store;

/// Two instances sharing one fresh database and one issuer.
async fn pair(name: &str) -> (TestServer, TestServer) {
    let a = TestServer::start(Backend::Postgres, name).await;
    let b = TestServer::start_on(a.store.clone(), a.issuer.clone(), Limits::default()).await;
    (a, b)
}

fn change(id: u128, blob: &[u8], expected_cursor: u64) -> Change {
    Change {
        id: Uuid::from_u128(id),
        blob: Some(blob.to_vec().into()),
        dek: Some(WrappedKey::from([7u8; 44])),
        expected_cursor,
    }
}

fn tombstone(id: u128, expected_cursor: u64) -> Change {
    Change {
        id: Uuid::from_u128(id),
        blob: None,
        dek: None,
        expected_cursor,
    }
}

async fn push(client: &mut Client, space: Uuid, changes: Vec<Change>) -> (u64, u64) {
    let r = client
        .call(PushParams {
            space,
            cap: None,
            changes,
        })
        .await
        .unwrap();
    let CallResult::Push(PushResult::Applied { prev, cursor }) = r else {
        panic!("push not applied: {r:?}")
    };
    (prev, cursor)
}

/// A client of `server` for `user`, subscribed to `space`.
async fn subscriber(server: &TestServer, user: &User, space: Uuid) -> Client {
    let (mut client, _) = server.client(user).await;
    let subscribed = client.subscribe(space, None).await;
    assert_eq!(subscribed.spaces.len(), 1, "{subscribed:?}");
    client
}

async fn sync(client: &mut Client) -> SyncNotification {
    match client.notification().await {
        Notification::Sync(sync) => sync,
        other => panic!("expected sync, got {other:?}"),
    }
}

/// Fails if anything arrives on `client` within `ms`.
async fn nothing_within(client: &mut Client, ms: u64) {
    if let Ok(incoming) = tokio::time::timeout(Duration::from_millis(ms), client.next()).await {
        panic!("expected silence, got {incoming:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_on_one_instance_reaches_subscribers_on_the_other() {
    let (a, b) = pair("fanout_reaches").await;
    let alice = a.user(1);
    let space = alice.personal_space;
    let mut on_a = subscriber(&a, &alice, space).await;
    let mut on_b = subscriber(&b, &alice, space).await;
    let (mut pusher, _) = b.client(&alice).await;

    let (prev, cursor) = push(
        &mut pusher,
        space,
        vec![change(1, b"one", 0), change(2, b"two", 0)],
    )
    .await;
    assert_eq!((prev, cursor), (0, 1));

    for client in [&mut on_a, &mut on_b] {
        let sync = sync(client).await;
        assert_eq!((sync.space, sync.prev, sync.cursor), (space, 0, 1));
        let mut blobs: Vec<(Uuid, Vec<u8>)> = sync
            .records
            .iter()
            .map(|r| (r.id, r.blob.as_ref().unwrap().as_slice().to_vec()))
            .collect();
        blobs.sort();
        assert_eq!(
            blobs,
            vec![
                (Uuid::from_u128(1), b"one".to_vec()),
                (Uuid::from_u128(2), b"two".to_vec()),
            ]
        );
        assert!(sync.records.iter().all(|r| r.dek.is_some()));
    }
    // B's own signal is not relayed again on B; the pusher hears nothing.
    nothing_within(&mut on_b, 500).await;
    nothing_within(&mut pusher, 100).await;
    nothing_within(&mut on_a, 100).await;

    // A deletion travels as a record without blob or key.
    push(&mut pusher, space, vec![tombstone(2, 1)]).await;
    let sync = sync(&mut on_a).await;
    assert_eq!((sync.prev, sync.cursor), (1, 2));
    assert_eq!(sync.records.len(), 1);
    assert!(sync.records[0].blob.is_none() && sync.records[0].dek.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushes_arrive_in_order_and_quickly() {
    let (a, b) = pair("fanout_order").await;
    let alice = a.user(1);
    let space = alice.personal_space;
    let mut on_a = subscriber(&a, &alice, space).await;
    let (mut pusher, _) = b.client(&alice).await;

    // One at a time, timing push response → notification on the other
    // instance.
    let mut latencies = Vec::new();
    for n in 1..=20u64 {
        let started = Instant::now();
        push(&mut pusher, space, vec![change(1, &n.to_be_bytes(), n - 1)]).await;
        let acked = started.elapsed();
        let sync = sync(&mut on_a).await;
        latencies.push((acked, started.elapsed()));
        assert_eq!((sync.prev, sync.cursor), (n - 1, n));
        assert_eq!(
            sync.records[0].blob.as_ref().unwrap().as_slice(),
            n.to_be_bytes()
        );
    }
    let first = latencies[0].1;
    let mut total: Vec<Duration> = latencies.iter().map(|(_, t)| *t).collect();
    total.sort();
    println!(
        "cross-instance push→sync over {} pushes: first {first:?}, median {:?}, max {:?} (push round trip median {:?})",
        total.len(),
        total[total.len() / 2],
        total[total.len() - 1],
        {
            let mut acks: Vec<Duration> = latencies.iter().map(|(a, _)| *a).collect();
            acks.sort();
            acks[acks.len() / 2]
        }
    );

    // A burst without waiting: still every cursor, in order.
    for n in 21..=60u64 {
        push(&mut pusher, space, vec![change(u128::from(n), b"burst", 0)]).await;
    }
    for n in 21..=60u64 {
        let sync = sync(&mut on_a).await;
        assert_eq!((sync.prev, sync.cursor), (n - 1, n));
        assert_eq!(sync.records[0].id, Uuid::from_u128(u128::from(n)));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsubscribed_spaces_get_nothing() {
    let (a, b) = pair("fanout_unsubscribed").await;
    let alice = a.user(1);
    let bob = a.user(2);
    let mut alice_on_a = subscriber(&a, &alice, alice.personal_space).await;
    let (mut bob_on_a, _) = a.client(&bob).await;
    let (mut bob_on_b, _) = b.client(&bob).await;

    // Bob is connected to A but subscribed to nothing; Alice only to hers.
    push(
        &mut bob_on_b,
        bob.personal_space,
        vec![change(1, b"bob", 0)],
    )
    .await;
    nothing_within(&mut bob_on_a, 500).await;
    nothing_within(&mut alice_on_a, 100).await;

    // Subscribing later brings later pushes, not earlier ones.
    let subscribed = bob_on_a.subscribe(bob.personal_space, None).await;
    assert_eq!(subscribed.spaces[0].cursor, 1);
    push(&mut bob_on_b, bob.personal_space, vec![change(2, b"b2", 0)]).await;
    let sync = sync(&mut bob_on_a).await;
    assert_eq!((sync.prev, sync.cursor), (1, 2));
    nothing_within(&mut alice_on_a, 300).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_listener_survives_losing_its_connection() {
    let db = sealbase_pgtest::database("fanout_reconnect");
    let connect = || async {
        let store = Store::connect(&db.url()).await.unwrap();
        store.migrate().await.unwrap();
        store
    };
    // Each instance with its own pool, as separate processes would be.
    let issuer = sealbase_sync::testing::TestIssuer::generate("test-key-1").unwrap();
    let a = TestServer::start_on(connect().await, issuer.clone(), Limits::default()).await;
    let b = TestServer::start_on(connect().await, issuer, Limits::default()).await;
    let alice = a.user(1);
    let space = alice.personal_space;
    let mut on_a = subscriber(&a, &alice, space).await;
    let (mut pusher, _) = b.client(&alice).await;
    push(&mut pusher, space, vec![change(1, b"before", 0)]).await;
    assert_eq!(sync(&mut on_a).await.cursor, 1);

    // A write the listeners never hear of (as if its signal had been
    // lost), then every listening connection (A's and B's) killed: on
    // reconnecting, A treats the space as stale and catches up.
    let admin = sqlx::PgPool::connect(&db.url()).await.unwrap();
    let silent = Uuid::from_u128(2);
    sqlx::query(
        "WITH s AS (UPDATE spaces SET cursor = 2 WHERE id = $1::uuid)
         INSERT INTO records (space_id, id, cursor, blob, dek)
         VALUES ($1::uuid, $2::uuid, 2, $3, $4)",
    )
    .bind(space.to_string())
    .bind(silent.to_string())
    .bind(b"missed".to_vec())
    .bind(vec![7u8; 44])
    .execute(&admin)
    .await
    .unwrap();
    nothing_within(&mut on_a, 300).await;
    let killed: Vec<(bool,)> = sqlx::query_as(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE datname = current_database() AND query LIKE 'LISTEN %'",
    )
    .fetch_all(&admin)
    .await
    .unwrap();
    assert_eq!(killed.len(), 2, "one listener per instance");
    let started = Instant::now();
    let sync = sync(&mut on_a).await;
    println!(
        "caught up {:?} after the listener was killed",
        started.elapsed()
    );
    assert_eq!((sync.prev, sync.cursor), (1, 2));
    assert_eq!(sync.records[0].id, silent);
    assert_eq!(sync.records[0].blob.as_ref().unwrap().as_slice(), b"missed");

    // And it keeps listening.
    push(&mut pusher, space, vec![change(3, b"later", 0)]).await;
    let sync = self::sync(&mut on_a).await;
    assert_eq!((sync.prev, sync.cursor), (2, 3));
    assert_eq!(sync.records[0].blob.as_ref().unwrap().as_slice(), b"later");
    nothing_within(&mut on_a, 300).await;
}

/// A capability revoked through one instance stops working on the other at
/// once: the subscriber there is told and closed, and the chain that other
/// instance had verified and cached is refused from then on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_on_one_instance_evicts_on_the_other() {
    use sealbase_crypto::{Capability, CapabilityToken, OsRng};
    use sealbase_protocol::{CapRevokeParams, ErrorCode, Hash, RevokedReason, SpaceCreateParams};
    use sha2::Digest;
    let (a, b) = pair("fanout_revocation").await;
    let alice = a.user(1);
    let bob = a.user(2);
    let space = Uuid::from_u128(0x5ace);
    let (mut on_a, _) = a.client(&alice).await;
    on_a.call(SpaceCreateParams {
        id: space,
        entry: b"genesis".to_vec().into(),
        key: b"sealed".to_vec().into(),
    })
    .await
    .unwrap();
    let grant = |to: &User, cap| {
        CapabilityToken::issue_root(
            &alice.identity,
            &to.identity.did(),
            space,
            cap,
            common::now() + 3600,
            &mut OsRng,
        )
        .unwrap()
    };
    let admin = grant(&alice, Capability::Admin);
    let bobs = grant(&bob, Capability::Write);
    let push_as_bob = |id: u128| PushParams {
        space,
        cap: Some(bobs.to_string()),
        changes: vec![Change {
            dek: Some(WrappedKey::from({
                let mut key = [7u8; 44];
                key[..4].copy_from_slice(&1u32.to_be_bytes());
                key
            })),
            ..change(id, b"bob", 0)
        }],
    };

    // Bob works through instance B: his chain is verified and cached there.
    let (mut on_b, _) = b.client(&bob).await;
    let r = on_b.call(push_as_bob(1)).await.unwrap();
    assert!(matches!(r, CallResult::Push(PushResult::Applied { .. })));
    let (mut watcher, _) = b.client(&bob).await;
    let subscribed = watcher.subscribe(space, Some(bobs.to_string())).await;
    assert!(subscribed.denied.is_empty(), "{subscribed:?}");

    // A membership entry appended through A reaches Bob's subscription on B.
    let appended = on_a
        .call(sealbase_protocol::MembershipAppendParams {
            space,
            cap: Some(admin.to_string()),
            prev_hash: Hash(sha2::Sha256::digest(b"genesis").into()),
            ciphertext: b"bob joins".to_vec().into(),
        })
        .await
        .unwrap();
    let CallResult::MembershipAppend(appended) = appended else {
        panic!("{appended:?}")
    };
    let Notification::Membership(entry) = watcher.notification().await else {
        panic!("expected a relayed membership entry")
    };
    assert_eq!((entry.space, entry.prev, entry.cursor), (space, 2, 3));
    assert_eq!(entry.cursor, appended.cursor);
    assert_eq!(entry.entry.ciphertext.as_slice(), b"bob joins");

    // Alice revokes through instance A.
    on_a.call(CapRevokeParams {
        space,
        cap: Some(admin.to_string()),
        token_hash: Hash(bobs.hash().0),
    })
    .await
    .unwrap();

    // B evicts Bob's subscription...
    let Notification::Revoked(revoked) = watcher.notification().await else {
        panic!("expected revoked")
    };
    assert_eq!(revoked.spaces, vec![space]);
    assert_eq!(revoked.reason, RevokedReason::CapabilityRevoked);
    assert_eq!(watcher.closed().await, Some(4002));
    // ...and no longer accepts the chain it had cached.
    let err = on_b.call(push_as_bob(2)).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::Forbidden, "{err:?}");
}
