//! The authorization matrix: every space-scoped method, tried by every kind
//! of caller that must not get through, on SQLite and on PostgreSQL. Each
//! refusal is checked to return nothing (no result data, no pull chunks, no
//! notifications) and to change nothing.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[macro_use]
mod common;

use std::time::Duration;

use common::{Backend, Client, Incoming, TestServer, User, now};
use sealbase_crypto::{Capability, CapabilityToken, OsRng};
use sealbase_protocol::{
    CallResult, CapRevokeParams, Change, ClientRequest, DeksGetParams, DeksRewrapParams,
    EpochBeginParams, EpochCompleteParams, ErrorCode, EventSendParams, Hash, KeyOwner,
    KeysGetParams, MembershipAppendParams, MembershipListParams, PresenceSetParams, PullParams,
    PullSpace, PushParams, PushResult, RecipientKey, SpaceCreateParams, SpaceRef, SubscribeParams,
    Uuid, WrappedDek, WrappedKey,
};
use sha2::{Digest, Sha256};

/// The least a request needs on a shared space.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Need {
    Read,
    Write,
    Admin,
}

fn dek(epoch: u32) -> WrappedKey {
    let mut bytes = [7u8; 44];
    bytes[..4].copy_from_slice(&epoch.to_be_bytes());
    WrappedKey::from(bytes)
}

fn genesis_hash() -> Hash {
    Hash(Sha256::digest(b"genesis").into())
}

/// Every space-scoped request, aimed at `space` with `cap`, and what it
/// needs. Requests that would change something change something visible
/// (a record, a log entry, an epoch, a key), so a refusal that still wrote
/// shows up in [`snapshot`].
fn requests(space: Uuid, cap: Option<&CapabilityToken>) -> Vec<(Need, ClientRequest)> {
    let cap = cap.map(ToString::to_string);
    vec![
        (
            Need::Read,
            SubscribeParams {
                spaces: vec![SpaceRef {
                    id: space,
                    cap: cap.clone(),
                }],
            }
            .into(),
        ),
        (
            Need::Read,
            PullParams {
                spaces: vec![PullSpace {
                    id: space,
                    since: 0,
                    cap: cap.clone(),
                }],
            }
            .into(),
        ),
        (
            Need::Read,
            MembershipListParams {
                space,
                cap: cap.clone(),
                since: 0,
            }
            .into(),
        ),
        (
            Need::Read,
            KeysGetParams {
                space,
                cap: cap.clone(),
            }
            .into(),
        ),
        (
            Need::Read,
            MembershipAppendParams {
                space,
                cap: cap.clone(),
                prev_hash: genesis_hash(),
                ciphertext: b"intruder entry".to_vec().into(),
            }
            .into(),
        ),
        (
            Need::Write,
            PushParams {
                space,
                cap: cap.clone(),
                changes: vec![Change {
                    id: Uuid::from_u128(0xbad),
                    blob: Some(b"intruder".to_vec().into()),
                    dek: Some(dek(1)),
                    expected_cursor: 0,
                }],
            }
            .into(),
        ),
        (
            Need::Write,
            PresenceSetParams {
                space,
                cap: cap.clone(),
                data: b"here".to_vec().into(),
            }
            .into(),
        ),
        (
            Need::Write,
            EventSendParams {
                space,
                cap: cap.clone(),
                data: b"ping".to_vec().into(),
            }
            .into(),
        ),
        (
            Need::Admin,
            CapRevokeParams {
                space,
                cap: cap.clone(),
                token_hash: Hash([9; 32]),
            }
            .into(),
        ),
        (
            Need::Admin,
            EpochBeginParams {
                space,
                cap: cap.clone(),
                epoch: 2,
                keys: vec![RecipientKey {
                    did: "did:key:z6MkIntruder".into(),
                    sealed: b"sealed".to_vec().into(),
                }],
            }
            .into(),
        ),
        (
            Need::Admin,
            EpochCompleteParams {
                space,
                cap: cap.clone(),
                epoch: 1,
            }
            .into(),
        ),
        (
            Need::Admin,
            DeksGetParams {
                space,
                cap: cap.clone(),
                below_epoch: 2,
            }
            .into(),
        ),
        (
            Need::Admin,
            DeksRewrapParams {
                space,
                cap,
                deks: vec![WrappedDek {
                    id: Uuid::from_u128(1),
                    owner: KeyOwner::Record,
                    cursor: 2,
                    dek: dek(2),
                }],
            }
            .into(),
        ),
    ]
}

/// Sends `request` and checks it is refused: an error (`forbidden` or
/// `not_found`) or, for `subscribe`/`pull`, the space listed as denied;
/// never a pull chunk or any other result data.
async fn assert_refused(client: &mut Client, space: Uuid, request: ClientRequest, who: &str) {
    let method = request.method();
    let id = client.send(request).await;
    loop {
        match client.next().await {
            Incoming::Chunk(chunk_id, chunk) if chunk_id == id => {
                panic!("{who}: {method:?} streamed {chunk:?}")
            }
            Incoming::Response(r) if r.id == id => {
                match r.outcome {
                    Err(e) => assert!(
                        matches!(e.code, ErrorCode::Forbidden | ErrorCode::NotFound),
                        "{who}: {method:?} failed with {e:?}, not a refusal"
                    ),
                    Ok(raw) => match CallResult::from_raw(method, &raw).unwrap() {
                        CallResult::Subscribe(s) => {
                            assert!(s.spaces.is_empty(), "{who}: subscribed {s:?}");
                            assert_eq!(s.denied.len(), 1, "{who}");
                            assert_eq!(s.denied[0].id, space);
                        }
                        CallResult::Pull(p) => {
                            assert_eq!(p.denied.len(), 1, "{who}: pull {p:?}");
                            assert_eq!(p.denied[0].id, space);
                        }
                        other => panic!("{who}: {method:?} answered {other:?}"),
                    },
                }
                return;
            }
            Incoming::Notification(n) => panic!("{who}: notification {n:?}"),
            Incoming::Closed(code) => panic!("{who}: closed {code:?} during {method:?}"),
            _ => {}
        }
    }
}

/// Sends `request` and checks it is not refused for lack of rights (it may
/// still fail for other reasons, e.g. a `conflict`).
async fn assert_allowed(client: &mut Client, request: ClientRequest, who: &str) {
    let method = request.method();
    let id = client.send(request).await;
    loop {
        match client.next().await {
            Incoming::Response(r) if r.id == id => {
                match r.outcome {
                    Err(e) => assert!(
                        !matches!(e.code, ErrorCode::Forbidden | ErrorCode::NotFound),
                        "{who}: {method:?} refused: {e:?}"
                    ),
                    Ok(raw) => match CallResult::from_raw(method, &raw).unwrap() {
                        CallResult::Subscribe(s) => assert!(s.denied.is_empty(), "{who}: {s:?}"),
                        CallResult::Pull(p) => assert!(p.denied.is_empty(), "{who}: {p:?}"),
                        _ => {}
                    },
                }
                return;
            }
            Incoming::Closed(code) => panic!("{who}: closed {code:?} during {method:?}"),
            _ => {}
        }
    }
}

/// Everything the space holds, as its owner pulls it.
async fn snapshot(client: &mut Client, space: Uuid, cap: &CapabilityToken) -> Vec<String> {
    let id = client
        .send(PullParams {
            spaces: vec![PullSpace {
                id: space,
                since: 0,
                cap: Some(cap.to_string()),
            }],
        })
        .await;
    let mut items = Vec::new();
    loop {
        match client.next().await {
            Incoming::Chunk(chunk_id, chunk) if chunk_id == id => items.push(format!("{chunk:?}")),
            Incoming::Response(r) if r.id == id => return items,
            Incoming::Closed(code) => panic!("closed {code:?}"),
            _ => {}
        }
    }
}

/// No frame arrives for a while.
async fn assert_quiet(client: &mut Client, who: &str) {
    if let Ok(frame) = tokio::time::timeout(Duration::from_millis(300), client.next()).await {
        panic!("{who}: unexpected {frame:?}");
    }
}

fn grant(root: &User, to: &User, space: Uuid, cap: Capability, ttl: u64) -> CapabilityToken {
    CapabilityToken::issue_root(
        &root.identity,
        &to.identity.did(),
        space,
        cap,
        now() + ttl,
        &mut OsRng,
    )
    .unwrap()
}

async fn every_method_refuses_every_outsider(backend: Backend) {
    let server = TestServer::start(backend, "authz_matrix").await;
    let [alice, bob, carol, dave, erin, frank, mallory] =
        [1, 2, 3, 4, 5, 6, 7].map(|i| server.user(i));
    let (mut a, _) = server.client(&alice).await;
    let space = Uuid::from_u128(0x5ace);
    let created = a
        .call(SpaceCreateParams {
            id: space,
            entry: b"genesis".to_vec().into(),
            key: b"sealed epoch 1".to_vec().into(),
        })
        .await
        .unwrap();
    assert!(matches!(created, CallResult::SpaceCreate(_)));
    let admin = grant(&alice, &alice, space, Capability::Admin, 3600);
    let r = a
        .call(PushParams {
            space,
            cap: Some(admin.to_string()),
            changes: vec![Change {
                id: Uuid::from_u128(1),
                blob: Some(b"secret".to_vec().into()),
                dek: Some(dek(1)),
                expected_cursor: 0,
            }],
        })
        .await
        .unwrap();
    assert!(matches!(r, CallResult::Push(PushResult::Applied { .. })));
    // Alice's personal space holds something too.
    a.call(PushParams {
        space: alice.personal_space,
        cap: None,
        changes: vec![Change {
            id: Uuid::from_u128(2),
            blob: Some(b"diary".to_vec().into()),
            dek: Some(dek(1)),
            expected_cursor: 0,
        }],
    })
    .await
    .unwrap();

    let reader = grant(&alice, &bob, space, Capability::Read, 3600);
    let writer = grant(&alice, &carol, space, Capability::Write, 3600);
    let revoked = grant(&alice, &dave, space, Capability::Write, 3600);
    let removed = grant(&alice, &erin, space, Capability::Admin, 3600);
    let expiring = grant(&alice, &frank, space, Capability::Admin, 1);

    // Erin is a member with a live subscription until she is removed:
    // her capability is revoked (which ends the subscription at once) and
    // the next epoch's key is sealed to the remaining members only.
    let (mut e, _) = server.client(&erin).await;
    assert!(
        e.subscribe(space, Some(removed.to_string()))
            .await
            .denied
            .is_empty()
    );
    for hash in [revoked.hash(), removed.hash()] {
        a.call(CapRevokeParams {
            space,
            cap: Some(admin.to_string()),
            token_hash: Hash(hash.0),
        })
        .await
        .unwrap();
    }
    assert!(matches!(
        e.notification().await,
        sealbase_protocol::Notification::Revoked(_)
    ));
    assert_eq!(e.closed().await, Some(4002));
    let before = snapshot(&mut a, space, &admin).await;
    assert!(!before.is_empty());

    // No token at all: the first frame must be `auth`; anything else
    // closes the connection with 4000 before any answer.
    for (_, request) in requests(space, Some(&admin)) {
        let method = request.method();
        let mut c = Client::connect(&server.url()).await;
        c.send(request).await;
        match c.next().await {
            Incoming::Closed(code) => assert_eq!(code, Some(4000), "{method:?}"),
            other => panic!("unauthenticated {method:?} got {other:?}"),
        }
    }

    // Another user: no capability, someone else's capability, or another
    // user's personal space.
    let (mut m, _) = server.client(&mallory).await;
    for (_, request) in requests(space, None) {
        assert_refused(&mut m, space, request, "no capability").await;
    }
    for (_, request) in requests(space, Some(&reader)) {
        assert_refused(&mut m, space, request, "another member's capability").await;
    }
    for (_, request) in requests(alice.personal_space, None) {
        assert_refused(
            &mut m,
            alice.personal_space,
            request,
            "another user's space",
        )
        .await;
    }

    // Members below the level a method needs.
    let (mut b, _) = server.client(&bob).await;
    let (mut c, _) = server.client(&carol).await;
    for (client, cap, level, who) in [
        (&mut b, &reader, Need::Read, "read capability"),
        (&mut c, &writer, Need::Write, "write capability"),
    ] {
        for (need, request) in requests(space, Some(cap)) {
            if need > level {
                assert_refused(client, space, request, who).await;
            }
        }
    }

    // A revoked capability, and a removed member reconnecting with theirs.
    let (mut d, _) = server.client(&dave).await;
    let (mut e, _) = server.client(&erin).await;
    for (client, cap, who) in [
        (&mut d, &revoked, "revoked capability"),
        (&mut e, &removed, "removed member"),
    ] {
        for (_, request) in requests(space, Some(cap)) {
            assert_refused(client, space, request, who).await;
        }
    }

    // An expired capability.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (mut f, _) = server.client(&frank).await;
    for (_, request) in requests(space, Some(&expiring)) {
        assert_refused(&mut f, space, request, "expired capability").await;
    }

    // An expired access token: the connection is told and closed with 4001,
    // and a new one cannot authenticate with it.
    let mut g = Client::connect(&server.url()).await;
    g.auth(&server.token(&frank, 1)).await.unwrap();
    let mut got_revoked = false;
    loop {
        match g.next().await {
            Incoming::Notification(sealbase_protocol::Notification::Revoked(_)) => {
                got_revoked = true;
            }
            Incoming::Closed(code) => {
                assert_eq!(code, Some(4001));
                break;
            }
            other => panic!("expired session got {other:?}"),
        }
    }
    assert!(got_revoked);
    let mut g = Client::connect(&server.url()).await;
    let expired = common::mint(&server.issuer, &alice, now() - 120);
    g.send(sealbase_protocol::AuthParams { token: expired })
        .await;
    assert_eq!(g.closed().await, Some(4000));

    // Nothing any refused caller sent was stored, and none of them heard
    // of Alice's next write.
    assert_eq!(snapshot(&mut a, space, &admin).await, before);
    a.call(PushParams {
        space,
        cap: Some(admin.to_string()),
        changes: vec![Change {
            id: Uuid::from_u128(3),
            blob: Some(b"later".to_vec().into()),
            dek: Some(dek(1)),
            expected_cursor: 0,
        }],
    })
    .await
    .unwrap();
    for (client, who) in [
        (&mut m, "mallory"),
        (&mut b, "bob (never subscribed)"),
        (&mut d, "dave"),
        (&mut e, "erin"),
        (&mut f, "frank"),
    ] {
        assert_quiet(client, who).await;
    }

    // The matrix can tell allowed from refused: members at the right level
    // get through.
    for (need, request) in requests(space, Some(&reader)) {
        if need == Need::Read && !matches!(request, ClientRequest::MembershipAppend(_)) {
            assert_allowed(&mut b, request, "reader").await;
        }
    }
    for (need, request) in requests(space, Some(&writer)) {
        if need == Need::Write {
            assert_allowed(&mut c, request, "writer").await;
        }
    }
    for (need, request) in requests(space, Some(&admin)) {
        if need == Need::Admin {
            assert_allowed(&mut a, request, "admin").await;
        }
    }
}

both_backends!(every_method_refuses_every_outsider);
