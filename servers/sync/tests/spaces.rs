//! Shared spaces over real sockets, on SQLite and on PostgreSQL: creation,
//! capability checks, revocation and the membership log.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[macro_use]
mod common;

use common::{Backend, Client, Incoming, TestServer, User, now};
use sealbase_crypto::{Capability, CapabilityToken, OsRng};
use sealbase_protocol::{
    CallResult, CapRevokeParams, Change, DeksGetParams, DeksRewrapParams, EpochBeginParams,
    EpochBegun, EpochCompleteParams, ErrorCode, Hash, KeysGetParams, MembershipAppendParams,
    MembershipListParams, Notification, PullChunk, PullParams, PullSpace, PushParams, PushResult,
    RecipientKey, RevokedReason, SealedEpochKey, SpaceCreateParams, SpaceCreated, Uuid, WrappedDek,
    WrappedKey,
};
use sha2::{Digest, Sha256};

fn sha256(bytes: &[u8]) -> Hash {
    Hash(Sha256::digest(bytes).into())
}

fn dek(epoch: u32) -> WrappedKey {
    let mut bytes = [7u8; 44];
    bytes[..4].copy_from_slice(&epoch.to_be_bytes());
    WrappedKey::from(bytes)
}

fn push(space: Uuid, cap: &CapabilityToken, id: u128, expected_cursor: u64) -> PushParams {
    push_epoch(space, cap, id, expected_cursor, 1)
}

fn push_epoch(
    space: Uuid,
    cap: &CapabilityToken,
    id: u128,
    expected_cursor: u64,
    epoch: u32,
) -> PushParams {
    PushParams {
        space,
        cap: Some(cap.to_string()),
        changes: vec![Change {
            id: Uuid::from_u128(id),
            blob: Some(b"blob".to_vec().into()),
            dek: Some(dek(epoch)),
            expected_cursor,
        }],
    }
}

fn create_params(space: Uuid, entry: &[u8]) -> SpaceCreateParams {
    SpaceCreateParams {
        id: space,
        entry: entry.to_vec().into(),
        key: b"sealed epoch 1".to_vec().into(),
    }
}

async fn create(client: &mut Client, space: Uuid) -> SpaceCreated {
    match client.call(create_params(space, b"genesis")).await.unwrap() {
        CallResult::SpaceCreate(created) => created,
        other => panic!("unexpected {other:?}"),
    }
}

/// A root capability: `root` grants `cap` on `space` to `to` for an hour.
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

async fn subscribe(client: &mut Client, space: Uuid, cap: &CapabilityToken) -> CallResult {
    CallResult::Subscribe(client.subscribe(space, Some(cap.to_string())).await)
}

async fn subscribed(client: &mut Client, space: Uuid, cap: &CapabilityToken) {
    let CallResult::Subscribe(s) = subscribe(client, space, cap).await else {
        panic!()
    };
    assert!(s.denied.is_empty(), "denied: {:?}", s.denied);
    assert_eq!(s.spaces.len(), 1);
}

async fn creation_is_idempotent_and_ids_cannot_be_taken(backend: Backend) {
    let server = TestServer::start(backend, "space_create").await;
    let alice = server.user(1);
    let bob = server.user(2);
    let (mut a, _) = server.client(&alice).await;
    let (mut b, _) = server.client(&bob).await;
    let space = Uuid::from_u128(0x5ace);

    let created = create(&mut a, space).await;
    assert_eq!(created.cursor, 1);
    assert_eq!(created.hash, sha256(b"genesis"));
    // A retry of the same creation succeeds with the same answer.
    assert_eq!(create(&mut a, space).await, created);

    // Other content, another caller, or a personal space id: conflict.
    let err = a
        .call(create_params(space, b"another genesis"))
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::Conflict);
    let err = b.call(create_params(space, b"genesis")).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::Conflict);
    for personal in [alice.personal_space, bob.personal_space] {
        let err = b
            .call(create_params(personal, b"genesis"))
            .await
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::Conflict);
    }
    // Alice's personal space is still hers.
    drop(a);
    let (mut a, session) = server.client(&alice).await;
    assert_eq!(session.personal_space, alice.personal_space);
    let own = a
        .call(PushParams {
            space: alice.personal_space,
            cap: None,
            changes: vec![Change {
                id: Uuid::from_u128(1),
                blob: Some(b"x".to_vec().into()),
                dek: Some(dek(1)),
                expected_cursor: 0,
            }],
        })
        .await
        .unwrap();
    assert!(matches!(own, CallResult::Push(PushResult::Applied { .. })));
}

async fn capabilities_grant_what_they_say(backend: Backend) {
    let server = TestServer::start(backend, "space_caps").await;
    let alice = server.user(1);
    let bob = server.user(2);
    let carol = server.user(3);
    let (mut a, _) = server.client(&alice).await;
    let (mut b, _) = server.client(&bob).await;
    let (mut c, _) = server.client(&carol).await;
    let space = Uuid::from_u128(0x5ace);
    create(&mut a, space).await;

    // The root writes with a capability it issued to itself.
    let root = grant(&alice, &alice, space, Capability::Admin);
    let r = a.call(push(space, &root, 1, 0)).await.unwrap();
    assert_eq!(
        r,
        CallResult::Push(PushResult::Applied { prev: 1, cursor: 2 })
    );

    // A write capability pushes; the same chain again comes from the cache.
    let write = grant(&alice, &bob, space, Capability::Write);
    for (id, expected) in [(2, 0), (3, 0)] {
        let r = b.call(push(space, &write, id, expected)).await.unwrap();
        assert!(matches!(r, CallResult::Push(PushResult::Applied { .. })));
    }

    // A read capability subscribes but cannot push.
    let read = grant(&alice, &carol, space, Capability::Read);
    subscribed(&mut c, space, &read).await;
    let err = c.call(push(space, &read, 4, 0)).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::Forbidden);

    // Someone else's capability (wrong audience) is refused, cached or not.
    let err = c.call(push(space, &write, 4, 0)).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::Forbidden);
    assert!(err.message.contains("not addressed"), "{}", err.message);
    let CallResult::Subscribe(s) = subscribe(&mut b, space, &read).await else {
        panic!()
    };
    assert_eq!(s.denied[0].error.code, ErrorCode::Forbidden);

    // No capability, an expired one, one rooted elsewhere: refused.
    let mut bare = push(space, &write, 4, 0);
    bare.cap = None;
    assert_eq!(b.call(bare).await.unwrap_err().code, ErrorCode::Forbidden);
    let expired = CapabilityToken::issue_root(
        &alice.identity,
        &bob.identity.did(),
        space,
        Capability::Write,
        now() - 1,
        &mut OsRng,
    )
    .unwrap();
    let err = b.call(push(space, &expired, 4, 0)).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::Forbidden);
    assert!(err.message.contains("expired"), "{}", err.message);
    let forged = grant(&carol, &bob, space, Capability::Write);
    let err = b.call(push(space, &forged, 4, 0)).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::Forbidden);
    assert!(err.message.contains("root"), "{}", err.message);

    // A delegated read capability cannot be escalated by its holder.
    let delegated = write
        .delegate(
            &bob.identity,
            &carol.identity.did(),
            Capability::Read,
            now() + 60,
            &mut OsRng,
        )
        .unwrap();
    subscribed(&mut c, space, &delegated).await;
    let err = c.call(push(space, &delegated, 4, 0)).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::Forbidden);
}

async fn revocation_refuses_and_evicts(backend: Backend) {
    let server = TestServer::start(backend, "space_revoke").await;
    let alice = server.user(1);
    let bob = server.user(2);
    let carol = server.user(3);
    let dave = server.user(4);
    let (mut a, _) = server.client(&alice).await;
    let (mut b, _) = server.client(&bob).await;
    let (mut c, _) = server.client(&carol).await;
    let (mut d, _) = server.client(&dave).await;
    let space = Uuid::from_u128(0x5ace);
    create(&mut a, space).await;
    let admin = grant(&alice, &alice, space, Capability::Admin);
    let bobs = grant(&alice, &bob, space, Capability::Write);
    let carols = grant(&alice, &carol, space, Capability::Read);
    // Dave's chain runs through Bob's token.
    let daves = bobs
        .delegate(
            &bob.identity,
            &dave.identity.did(),
            Capability::Read,
            now() + 600,
            &mut OsRng,
        )
        .unwrap();

    // Bob's push verifies (and caches) his chain before the revocation.
    let r = b.call(push(space, &bobs, 1, 0)).await.unwrap();
    assert!(matches!(r, CallResult::Push(PushResult::Applied { .. })));
    subscribed(&mut b, space, &bobs).await;
    subscribed(&mut c, space, &carols).await;
    subscribed(&mut d, space, &daves).await;

    // Only an admin may revoke.
    let err = b
        .call(CapRevokeParams {
            space,
            cap: Some(bobs.to_string()),
            token_hash: Hash(carols.hash().0),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::Forbidden);

    let r = a
        .call(CapRevokeParams {
            space,
            cap: Some(admin.to_string()),
            token_hash: Hash(bobs.hash().0),
        })
        .await
        .unwrap();
    assert!(matches!(r, CallResult::CapRevoke(_)));

    // Bob and Dave are told, then closed with 4002.
    for client in [&mut b, &mut d] {
        let Notification::Revoked(revoked) = client.notification().await else {
            panic!()
        };
        assert_eq!(revoked.spaces, vec![space]);
        assert_eq!(revoked.reason, RevokedReason::CapabilityRevoked);
        assert_eq!(client.closed().await, Some(4002));
    }

    // Reconnecting does not bring the capability back.
    let (mut b, _) = server.client(&bob).await;
    let err = b.call(push(space, &bobs, 2, 0)).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::Forbidden);
    assert!(err.message.contains("revoked"), "{}", err.message);
    let CallResult::Subscribe(s) = subscribe(&mut b, space, &bobs).await else {
        panic!()
    };
    assert_eq!(s.denied[0].error.code, ErrorCode::Forbidden);

    // Carol's independent chain still works and she still hears writes.
    let r = a.call(push(space, &admin, 3, 0)).await.unwrap();
    assert!(matches!(r, CallResult::Push(PushResult::Applied { .. })));
    let Notification::Sync(sync) = c.notification().await else {
        panic!()
    };
    assert_eq!(sync.space, space);
}

async fn membership_is_a_compare_and_set_chain(backend: Backend) {
    let server = TestServer::start(backend, "space_membership").await;
    let alice = server.user(1);
    let bob = server.user(2);
    let (mut a, _) = server.client(&alice).await;
    let (mut b, _) = server.client(&bob).await;
    let space = Uuid::from_u128(0x5ace);
    let genesis = create(&mut a, space).await;
    let admin = grant(&alice, &alice, space, Capability::Admin);
    let bobs = grant(&alice, &bob, space, Capability::Read);
    subscribed(&mut b, space, &bobs).await;

    let append = |prev_hash: Hash, ciphertext: &[u8]| MembershipAppendParams {
        space,
        cap: Some(admin.to_string()),
        prev_hash,
        ciphertext: ciphertext.to_vec().into(),
    };
    let CallResult::MembershipAppend(second) =
        a.call(append(genesis.hash, b"invite bob")).await.unwrap()
    else {
        panic!()
    };
    assert_eq!((second.prev, second.cursor), (1, 2));
    assert_eq!(second.hash, sha256(b"invite bob"));

    let Notification::Membership(m) = b.notification().await else {
        panic!()
    };
    assert_eq!((m.prev, m.cursor), (1, 2));
    assert_eq!(m.entry.prev_hash, Some(genesis.hash));
    assert_eq!(m.entry.ciphertext.as_slice(), b"invite bob");

    // Building on an old head is a conflict that names the current one.
    let err = a
        .call(append(genesis.hash, b"racing entry"))
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::Conflict);
    let head_hex: String = second.hash.0.iter().map(|x| format!("{x:02x}")).collect();
    assert!(err.message.contains(&head_hex), "{}", err.message);

    // The cursor is shared with records.
    let r = a.call(push(space, &admin, 1, 0)).await.unwrap();
    assert_eq!(
        r,
        CallResult::Push(PushResult::Applied { prev: 2, cursor: 3 })
    );
    // A read capability can append (an invitee's accept).
    let CallResult::MembershipAppend(third) = b
        .call(MembershipAppendParams {
            space,
            cap: Some(bobs.to_string()),
            prev_hash: second.hash,
            ciphertext: b"bob accepts".to_vec().into(),
        })
        .await
        .unwrap()
    else {
        panic!()
    };
    assert_eq!((third.prev, third.cursor), (3, 4));

    let list = |since| MembershipListParams {
        space,
        cap: Some(bobs.to_string()),
        since,
    };
    let CallResult::MembershipList(all) = b.call(list(0)).await.unwrap() else {
        panic!()
    };
    assert!(!all.more);
    let cursors: Vec<u64> = all.entries.iter().map(|e| e.cursor).collect();
    assert_eq!(cursors, vec![1, 2, 4]);
    assert_eq!(all.entries[0].prev_hash, None);
    assert_eq!(all.entries[0].hash, genesis.hash);
    assert_eq!(all.entries[2].prev_hash, Some(second.hash));
    let CallResult::MembershipList(tail) = b.call(list(2)).await.unwrap() else {
        panic!()
    };
    assert_eq!(tail.entries.len(), 1);
    assert_eq!(tail.entries[0].hash, third.hash);

    // Without a capability for the space: refused.
    let carol = server.user(3);
    let (mut c, _) = server.client(&carol).await;
    let err = c
        .call(MembershipListParams {
            space,
            cap: None,
            since: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::Forbidden);
}

async fn epochs_rotate_and_keys_follow(backend: Backend) {
    let server = TestServer::start(backend, "space_epochs").await;
    let alice = server.user(1);
    let bob = server.user(2);
    let (mut a, _) = server.client(&alice).await;
    let (mut b, _) = server.client(&bob).await;
    let space = Uuid::from_u128(0x5ace);
    create(&mut a, space).await;
    let admin = grant(&alice, &alice, space, Capability::Admin);
    let bobs = grant(&alice, &bob, space, Capability::Write);
    subscribed(&mut b, space, &bobs).await;
    for id in [1, 2] {
        a.call(push(space, &admin, id, 0)).await.unwrap();
    }
    let _ = b.notification().await;
    let _ = b.notification().await;

    let keys = |cap: &CapabilityToken| KeysGetParams {
        space,
        cap: Some(cap.to_string()),
    };
    let CallResult::KeysGet(k) = a.call(keys(&admin)).await.unwrap() else {
        panic!()
    };
    assert_eq!(k.current, 1);
    assert_eq!(
        k.keys,
        vec![SealedEpochKey {
            epoch: 1,
            cursor: 1,
            sealed: b"sealed epoch 1".to_vec().into(),
        }]
    );

    let begin = |epoch: u32| EpochBeginParams {
        space,
        cap: Some(admin.to_string()),
        epoch,
        keys: vec![
            RecipientKey {
                did: alice.identity.did().to_string(),
                sealed: b"a2".to_vec().into(),
            },
            RecipientKey {
                did: bob.identity.did().to_string(),
                sealed: b"b2".to_vec().into(),
            },
        ],
    };
    let err = a.call(begin(3)).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::StaleEpoch);
    let mut by_bob = begin(2);
    by_bob.cap = Some(bobs.to_string());
    assert_eq!(b.call(by_bob).await.unwrap_err().code, ErrorCode::Forbidden);
    let r = a.call(begin(2)).await.unwrap();
    assert_eq!(r, CallResult::EpochBegin(EpochBegun { prev: 3, cursor: 4 }));

    // Bob hears of the new epoch with his own sealed key only.
    let Notification::Sync(sync) = b.notification().await else {
        panic!()
    };
    assert_eq!((sync.prev, sync.cursor), (3, 4));
    assert!(sync.records.is_empty());
    assert_eq!(
        sync.keys,
        vec![SealedEpochKey {
            epoch: 2,
            cursor: 4,
            sealed: b"b2".to_vec().into(),
        }]
    );

    // One rotation at a time.
    assert_eq!(
        a.call(begin(3)).await.unwrap_err().code,
        ErrorCode::Conflict
    );
    // Pushes must use the new epoch.
    let err = b.call(push_epoch(space, &bobs, 3, 0, 1)).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::StaleEpoch);
    let err = b.call(push_epoch(space, &bobs, 3, 0, 3)).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::BadRequest);
    let r = b.call(push_epoch(space, &bobs, 3, 0, 2)).await.unwrap();
    assert_eq!(
        r,
        CallResult::Push(PushResult::Applied { prev: 4, cursor: 5 })
    );

    // Not complete while records 1 and 2 keep epoch-1 keys.
    let complete = EpochCompleteParams {
        space,
        cap: Some(admin.to_string()),
        epoch: 2,
    };
    assert_eq!(
        a.call(complete.clone()).await.unwrap_err().code,
        ErrorCode::Conflict
    );
    let deks_get = DeksGetParams {
        space,
        cap: Some(admin.to_string()),
        below_epoch: 2,
    };
    let CallResult::DeksGet(old) = a.call(deks_get.clone()).await.unwrap() else {
        panic!()
    };
    assert!(!old.more);
    let old_ids: Vec<(Uuid, u64)> = old.deks.iter().map(|d| (d.id, d.cursor)).collect();
    assert_eq!(
        old_ids,
        vec![(Uuid::from_u128(1), 2), (Uuid::from_u128(2), 3)]
    );

    // Record 2 changes before the rewrap reaches it: it is skipped.
    let r = b.call(push_epoch(space, &bobs, 2, 3, 2)).await.unwrap();
    assert_eq!(
        r,
        CallResult::Push(PushResult::Applied { prev: 5, cursor: 6 })
    );
    let rewrap = |epoch: u32| DeksRewrapParams {
        space,
        cap: Some(admin.to_string()),
        deks: old
            .deks
            .iter()
            .map(|d| WrappedDek {
                dek: dek(epoch),
                ..d.clone()
            })
            .collect(),
    };
    assert_eq!(
        a.call(rewrap(1)).await.unwrap_err().code,
        ErrorCode::StaleEpoch
    );
    let CallResult::DeksRewrap(done) = a.call(rewrap(2)).await.unwrap() else {
        panic!()
    };
    assert_eq!(done.rewrapped, 1);
    assert_eq!(done.skipped, vec![Uuid::from_u128(2)]);

    let CallResult::DeksGet(rest) = a.call(deks_get).await.unwrap() else {
        panic!()
    };
    assert!(rest.deks.is_empty());
    let r = a.call(complete).await.unwrap();
    assert!(matches!(r, CallResult::EpochComplete(_)));

    // Rewrapping did not move the cursor.
    let CallResult::Subscribe(s) = subscribe(&mut a, space, &admin).await else {
        panic!()
    };
    assert_eq!(s.spaces[0].cursor, 6);
    // Bob holds only the epoch keys sealed to him.
    let CallResult::KeysGet(k) = b.call(keys(&bobs)).await.unwrap() else {
        panic!()
    };
    assert_eq!(k.current, 2);
    assert_eq!(k.keys.len(), 1);
    assert_eq!(k.keys[0].epoch, 2);
}

async fn expiring_capabilities_end_subscriptions(backend: Backend) {
    let server = TestServer::start(backend, "space_cap_expiry").await;
    let alice = server.user(1);
    let bob = server.user(2);
    let carol = server.user(3);
    let (mut a, _) = server.client(&alice).await;
    let (mut b, _) = server.client(&bob).await;
    let (mut c, _) = server.client(&carol).await;
    let space = Uuid::from_u128(0x5ace);
    create(&mut a, space).await;
    let admin = grant(&alice, &alice, space, Capability::Admin);
    let short = CapabilityToken::issue_root(
        &alice.identity,
        &bob.identity.did(),
        space,
        Capability::Read,
        now() + 2,
        &mut OsRng,
    )
    .unwrap();
    subscribed(&mut b, space, &short).await;
    subscribed(
        &mut c,
        space,
        &grant(&alice, &carol, space, Capability::Read),
    )
    .await;

    let Notification::Revoked(revoked) = b.notification().await else {
        panic!()
    };
    assert_eq!(revoked.spaces, vec![space]);
    assert_eq!(revoked.reason, RevokedReason::CapabilityExpired);
    assert_eq!(b.closed().await, Some(4002));

    // Carol's longer capability keeps her subscribed.
    a.call(push(space, &admin, 1, 0)).await.unwrap();
    let Notification::Sync(sync) = c.notification().await else {
        panic!()
    };
    assert_eq!(sync.space, space);
}

/// Pulls `space` from `since`; the items streamed as (kind, cursor).
async fn pull(
    client: &mut Client,
    space: Uuid,
    cap: &CapabilityToken,
    since: u64,
) -> Vec<(&'static str, u64)> {
    let id = client
        .send(PullParams {
            spaces: vec![PullSpace {
                id: space,
                since,
                cap: Some(cap.to_string()),
            }],
        })
        .await;
    let mut items = Vec::new();
    loop {
        match client.next().await {
            Incoming::Chunk(chunk_id, chunk) if chunk_id == id => items.push(match chunk {
                PullChunk::Begin(b) => ("begin", b.cursor),
                PullChunk::Record(r) => ("record", r.cursor),
                PullChunk::Tombstone(t) => ("tombstone", t.cursor),
                PullChunk::Membership(m) => ("membership", m.entry.cursor),
                PullChunk::Key(k) => {
                    assert_eq!(k.key.cursor, if k.key.epoch == 1 { 1 } else { 4 });
                    ("key", k.key.cursor)
                }
                PullChunk::Commit(c) => ("commit", c.cursor),
                other => panic!("unexpected {other:?}"),
            }),
            Incoming::Response(r) if r.id == id => {
                assert!(r.outcome.is_ok());
                return items;
            }
            Incoming::Closed(code) => panic!("closed {code:?}"),
            _ => {}
        }
    }
}

async fn pulls_interleave_membership_and_keys(backend: Backend) {
    let server = TestServer::start(backend, "space_pull").await;
    let alice = server.user(1);
    let bob = server.user(2);
    let (mut a, _) = server.client(&alice).await;
    let (mut b, _) = server.client(&bob).await;
    let space = Uuid::from_u128(0x5ace);
    let genesis = create(&mut a, space).await;
    let admin = grant(&alice, &alice, space, Capability::Admin);
    let bobs = grant(&alice, &bob, space, Capability::Read);
    a.call(push(space, &admin, 1, 0)).await.unwrap();
    a.call(MembershipAppendParams {
        space,
        cap: Some(admin.to_string()),
        prev_hash: genesis.hash,
        ciphertext: b"invite bob".to_vec().into(),
    })
    .await
    .unwrap();
    a.call(EpochBeginParams {
        space,
        cap: Some(admin.to_string()),
        epoch: 2,
        keys: vec![
            RecipientKey {
                did: alice.identity.did().to_string(),
                sealed: b"a2".to_vec().into(),
            },
            RecipientKey {
                did: bob.identity.did().to_string(),
                sealed: b"b2".to_vec().into(),
            },
        ],
    })
    .await
    .unwrap();
    a.call(push_epoch(space, &admin, 2, 0, 2)).await.unwrap();

    let mut items = pull(&mut a, space, &admin, 0).await;
    // Items sharing a cursor come in any order.
    items[1..3].sort_unstable();
    assert_eq!(
        items,
        vec![
            ("begin", 5),
            ("key", 1),
            ("membership", 1),
            ("record", 2),
            ("membership", 3),
            ("key", 4),
            ("record", 5),
            ("commit", 5),
        ]
    );
    // Bob gets only the keys sealed to him.
    assert_eq!(
        pull(&mut b, space, &bobs, 0).await,
        vec![
            ("begin", 5),
            ("membership", 1),
            ("record", 2),
            ("membership", 3),
            ("key", 4),
            ("record", 5),
            ("commit", 5),
        ]
    );
    assert_eq!(
        pull(&mut b, space, &bobs, 3).await,
        vec![("begin", 5), ("key", 4), ("record", 5), ("commit", 5)]
    );
}

both_backends!(
    creation_is_idempotent_and_ids_cannot_be_taken,
    capabilities_grant_what_they_say,
    revocation_refuses_and_evicts,
    membership_is_a_compare_and_set_chain,
    epochs_rotate_and_keys_follow,
    pulls_interleave_membership_and_keys,
    expiring_capabilities_end_subscriptions,
);
