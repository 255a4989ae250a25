//! Invitations over real sockets, on SQLite and on PostgreSQL, and between
//! two instances sharing one PostgreSQL database.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[macro_use]
mod common;

use std::time::Duration;

use common::{Backend, Client, TestServer, now};
use sealbase_protocol::{
    CallResult, ErrorCode, Invitation, InvitationCreateParams, InvitationDeleteParams,
    InvitationListParams, MAX_INVITATION_LEN, Notification, Uuid,
};
use sealbase_sync::Limits;

fn create(id: u128, mailbox: Uuid, payload: &[u8], expires_at: u64) -> InvitationCreateParams {
    InvitationCreateParams {
        id: Uuid::from_u128(id),
        mailbox,
        payload: payload.to_vec().into(),
        expires_at,
    }
}

async fn list(client: &mut Client) -> Vec<Invitation> {
    match client.call(InvitationListParams {}).await.unwrap() {
        CallResult::InvitationList(list) => list.invitations,
        other => panic!("unexpected {other:?}"),
    }
}

fn ids(invitations: &[Invitation]) -> Vec<u128> {
    invitations.iter().map(|i| i.id.as_u128()).collect()
}

async fn delete(client: &mut Client, id: u128) -> Result<(), ErrorCode> {
    client
        .call(InvitationDeleteParams {
            id: Uuid::from_u128(id),
        })
        .await
        .map(|_| ())
        .map_err(|e| e.code)
}

async fn invitation(client: &mut Client) -> Invitation {
    match client.notification().await {
        Notification::Invitation(n) => n.invitation,
        other => panic!("expected invitation, got {other:?}"),
    }
}

/// Fails if anything arrives on `client` within `ms`.
async fn nothing_within(client: &mut Client, ms: u64) {
    if let Ok(incoming) = tokio::time::timeout(Duration::from_millis(ms), client.next()).await {
        panic!("expected silence, got {incoming:?}");
    }
}

/// An hour from now.
fn later() -> u64 {
    now() + 3600
}

async fn created_listed_and_deleted_by_the_recipient(backend: Backend) {
    let server = TestServer::start(backend, "invitation_basics").await;
    let alice = server.user(1);
    let bob = server.user(2);
    let (mut a, _) = server.client(&alice).await;
    let (mut b, session) = server.client(&bob).await;
    // The mailbox is the personal space.
    let mailbox = session.personal_space;

    let expires_at = later();
    a.call(create(1, mailbox, b"sealed for bob", expires_at))
        .await
        .unwrap();
    let listed = list(&mut b).await;
    assert_eq!(
        listed,
        vec![Invitation {
            id: Uuid::from_u128(1),
            mailbox,
            payload: b"sealed for bob".to_vec().into(),
            expires_at,
        }]
    );
    // Alice's own mailbox is empty: nothing she sent is listed there.
    assert!(list(&mut a).await.is_empty());

    assert_eq!(delete(&mut b, 1).await, Ok(()));
    assert!(list(&mut b).await.is_empty());
    assert_eq!(delete(&mut b, 1).await, Err(ErrorCode::NotFound));

    // Empty and oversized payloads are refused before anything is stored.
    let err = a.call(create(2, mailbox, b"", later())).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::BadRequest);
    let big = vec![0u8; MAX_INVITATION_LEN + 1];
    let err = a.call(create(2, mailbox, &big, later())).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::PayloadTooLarge);
    a.call(create(2, mailbox, &big[1..], later()))
        .await
        .unwrap();
    assert_eq!(ids(&list(&mut b).await), vec![2]);
}

async fn creation_is_idempotent_and_ids_conflict(backend: Backend) {
    let server = TestServer::start(backend, "invitation_idempotent").await;
    let alice = server.user(1);
    let bob = server.user(2);
    let carol = server.user(3);
    let (mut a, _) = server.client(&alice).await;
    let (mut b, _) = server.client(&bob).await;
    let expires_at = later();

    a.call(create(1, bob.personal_space, b"x", expires_at))
        .await
        .unwrap();
    // A retry (even with another expiry) changes nothing and succeeds.
    a.call(create(1, bob.personal_space, b"x", expires_at))
        .await
        .unwrap();
    a.call(create(1, bob.personal_space, b"x", expires_at + 5))
        .await
        .unwrap();
    let listed = list(&mut b).await;
    assert_eq!(ids(&listed), vec![1]);
    assert_eq!(listed[0].expires_at, expires_at);

    // The same id with another payload or mailbox is taken.
    for other in [
        create(1, bob.personal_space, b"y", expires_at),
        create(1, carol.personal_space, b"x", expires_at),
    ] {
        let err = a.call(other).await.unwrap_err();
        assert_eq!(err.code, ErrorCode::Conflict, "{err:?}");
    }
    let (mut c, _) = server.client(&carol).await;
    assert!(list(&mut c).await.is_empty());
}

async fn expiry_is_bounded_and_expired_invitations_go(backend: Backend) {
    let limits = Limits {
        invitation_max_lifetime: Duration::from_secs(600),
        invitation_sweep: Duration::from_millis(200),
        ..Limits::default()
    };
    let server = TestServer::start_with(backend, "invitation_expiry", limits).await;
    let alice = server.user(1);
    let bob = server.user(2);
    let (mut a, _) = server.client(&alice).await;
    let (mut b, _) = server.client(&bob).await;
    let mailbox = bob.personal_space;

    for expires_at in [0, now() - 1, now(), now() + 700] {
        let err = a
            .call(create(1, mailbox, b"x", expires_at))
            .await
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::BadRequest, "expires_at {expires_at}");
    }
    a.call(create(1, mailbox, b"x", now() + 600)).await.unwrap();
    a.call(create(2, mailbox, b"soon", now() + 2))
        .await
        .unwrap();
    assert_eq!(ids(&list(&mut b).await), vec![1, 2]);

    // Past its expiry it is no longer listed, and the sweep deletes it.
    tokio::time::sleep(Duration::from_millis(3100)).await;
    assert_eq!(ids(&list(&mut b).await), vec![1]);
    let mut swept = false;
    for _ in 0..50 {
        // `now = 0`: expired rows would still be found.
        if server
            .store
            .invitation(Uuid::from_u128(2), 0)
            .await
            .unwrap()
            .is_none()
        {
            swept = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(swept, "the expired invitation is still stored");
    assert!(
        server
            .store
            .invitation(Uuid::from_u128(1), 0)
            .await
            .unwrap()
            .is_some()
    );
    // An expired id is free again.
    a.call(create(2, mailbox, b"renewed", now() + 60))
        .await
        .unwrap();
    assert_eq!(list(&mut b).await[1].payload.as_slice(), b"renewed");
}

async fn recipients_are_notified_live(backend: Backend) {
    let server = TestServer::start(backend, "invitation_live").await;
    let alice = server.user(1);
    let bob = server.user(2);
    let (mut a, _) = server.client(&alice).await;
    let (mut a_other, _) = server.client(&alice).await;
    // Two connections of Bob's, subscribed to nothing.
    let (mut b1, _) = server.client(&bob).await;
    let (mut b2, _) = server.client(&bob).await;

    let expires_at = later();
    a.call(create(7, bob.personal_space, b"hello bob", expires_at))
        .await
        .unwrap();
    let expected = Invitation {
        id: Uuid::from_u128(7),
        mailbox: bob.personal_space,
        payload: b"hello bob".to_vec().into(),
        expires_at,
    };
    assert_eq!(invitation(&mut b1).await, expected);
    assert_eq!(invitation(&mut b2).await, expected);
    nothing_within(&mut a_other, 200).await;

    // A retry is not a new invitation.
    a.call(create(7, bob.personal_space, b"hello bob", expires_at))
        .await
        .unwrap();
    nothing_within(&mut b1, 300).await;

    // An invitation to oneself reaches one's other connections, not the
    // creating one.
    a.call(create(8, alice.personal_space, b"note to self", expires_at))
        .await
        .unwrap();
    assert_eq!(invitation(&mut a_other).await.id, Uuid::from_u128(8));
    nothing_within(&mut a, 200).await;
}

async fn only_the_recipient_or_the_sender_may_delete(backend: Backend) {
    let server = TestServer::start(backend, "invitation_delete").await;
    let alice = server.user(1);
    let bob = server.user(2);
    let carol = server.user(3);
    let (mut a, _) = server.client(&alice).await;
    let (mut b, _) = server.client(&bob).await;
    let (mut c, _) = server.client(&carol).await;
    a.call(create(1, bob.personal_space, b"one", later()))
        .await
        .unwrap();
    a.call(create(2, bob.personal_space, b"two", later()))
        .await
        .unwrap();

    // A stranger cannot tell it exists.
    assert_eq!(delete(&mut c, 1).await, Err(ErrorCode::NotFound));
    assert_eq!(delete(&mut c, 99).await, Err(ErrorCode::NotFound));
    assert_eq!(ids(&list(&mut b).await), vec![1, 2]);
    // The sender withdraws one; the recipient deletes the other.
    assert_eq!(delete(&mut a, 1).await, Ok(()));
    assert_eq!(ids(&list(&mut b).await), vec![2]);
    assert_eq!(delete(&mut b, 2).await, Ok(()));
    assert!(list(&mut b).await.is_empty());
    assert_eq!(delete(&mut a, 2).await, Err(ErrorCode::NotFound));
}

async fn mailboxes_are_capped_and_senders_rate_limited(backend: Backend) {
    let limits = Limits {
        invitations_per_mailbox: 3,
        invitations_per_hour: 6,
        ..Limits::default()
    };
    let server = TestServer::start_with(backend, "invitation_limits", limits).await;
    let alice = server.user(1);
    let bob = server.user(2);
    let carol = server.user(3);
    let dave = server.user(4);
    let (mut a, _) = server.client(&alice).await;
    let (mut b, _) = server.client(&bob).await;
    let (mut d, _) = server.client(&dave).await;

    for id in 1..=3 {
        a.call(create(id, bob.personal_space, b"x", later()))
            .await
            .unwrap();
    }
    // Bob's mailbox is full, for any sender.
    let err = a
        .call(create(4, bob.personal_space, b"x", later()))
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::RateLimited, "{err:?}");
    let err = d
        .call(create(5, bob.personal_space, b"x", later()))
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::RateLimited);
    // Room again once Bob deletes one.
    assert_eq!(delete(&mut b, 1).await, Ok(()));
    d.call(create(5, bob.personal_space, b"x", later()))
        .await
        .unwrap();

    // Alice has used 4 of her 6 per hour (refusals count too); the next
    // two pass, then she is limited whatever the mailbox.
    a.call(create(10, carol.personal_space, b"x", later()))
        .await
        .unwrap();
    a.call(create(11, carol.personal_space, b"x", later()))
        .await
        .unwrap();
    let err = a
        .call(create(12, dave.personal_space, b"x", later()))
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::RateLimited);
    assert!(err.message.contains("per hour"), "{}", err.message);
    // Others are not.
    d.call(create(13, carol.personal_space, b"x", later()))
        .await
        .unwrap();
}

async fn lists_are_oldest_first_and_fit_in_a_frame(backend: Backend) {
    let server = TestServer::start(backend, "invitation_list").await;
    let alice = server.user(1);
    let bob = server.user(2);
    let (mut a, _) = server.client(&alice).await;
    let (mut b, _) = server.client(&bob).await;

    // Ids in no particular order: the listing follows creation.
    let order = [5u128, 3, 9, 1];
    for id in order {
        a.call(create(id, bob.personal_space, b"x", later()))
            .await
            .unwrap();
    }
    assert_eq!(ids(&list(&mut b).await), order.to_vec());
    for id in order {
        assert_eq!(delete(&mut b, id).await, Ok(()));
    }

    // 70 invitations of 64 KiB do not fit in one 4 MiB frame: the list
    // holds the oldest that do; the rest come once those are deleted.
    let payload = vec![0xabu8; MAX_INVITATION_LEN];
    for id in 100..170u128 {
        a.call(create(id, bob.personal_space, &payload, later()))
            .await
            .unwrap();
    }
    let first = list(&mut b).await;
    assert!(first.len() >= 55 && first.len() < 70, "{}", first.len());
    assert_eq!(
        ids(&first),
        (100..100 + first.len() as u128).collect::<Vec<_>>()
    );
    for i in &first {
        assert_eq!(delete(&mut b, i.id.as_u128()).await, Ok(()));
    }
    let rest = list(&mut b).await;
    assert_eq!(
        ids(&rest),
        (100 + first.len() as u128..170).collect::<Vec<_>>()
    );
}

both_backends!(
    created_listed_and_deleted_by_the_recipient,
    creation_is_idempotent_and_ids_conflict,
    expiry_is_bounded_and_expired_invitations_go,
    recipients_are_notified_live,
    only_the_recipient_or_the_sender_may_delete,
    mailboxes_are_capped_and_senders_rate_limited,
    lists_are_oldest_first_and_fit_in_a_frame,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invitations_reach_recipients_on_another_instance() {
    let a = TestServer::start(Backend::Postgres, "invitation_cross").await;
    let b = TestServer::start_on(a.store.clone(), a.issuer.clone(), Limits::default()).await;
    let alice = a.user(1);
    let bob = a.user(2);
    let (mut sender, _) = a.client(&alice).await;
    let (mut on_b, _) = b.client(&bob).await;
    let (mut on_a, _) = a.client(&bob).await;
    // Let B's listener come up.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let expires_at = later();
    sender
        .call(create(1, bob.personal_space, b"across", expires_at))
        .await
        .unwrap();
    let expected = Invitation {
        id: Uuid::from_u128(1),
        mailbox: bob.personal_space,
        payload: b"across".to_vec().into(),
        expires_at,
    };
    assert_eq!(invitation(&mut on_b).await, expected);
    assert_eq!(invitation(&mut on_a).await, expected);
    // Exactly once on each instance.
    nothing_within(&mut on_b, 300).await;
    nothing_within(&mut on_a, 100).await;
    assert_eq!(list(&mut on_b).await, vec![expected]);

    // Withdrawn on A before B's recipient looked: gone on B too.
    sender
        .call(create(2, bob.personal_space, b"withdrawn", expires_at))
        .await
        .unwrap();
    assert_eq!(invitation(&mut on_b).await.id, Uuid::from_u128(2));
    assert_eq!(delete(&mut sender, 2).await, Ok(()));
    assert_eq!(ids(&list(&mut on_b).await), vec![1]);
}
