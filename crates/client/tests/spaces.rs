//! Shared spaces end to end: three users' engines against a real sync
//! server (SQLite, real sockets), trusting a test token issuer.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::time::Duration;

use common::{Device, Server, TempDir, User};
use sealbase_client::spaces::{Invitee, SpaceStatus};
use sealbase_crypto::capability::Capability;
use sealbase_crypto::{EpochKey, WrappedKey, open_record, unwrap_dek};
use sealbase_protocol::Uuid;
use serde_json::json;

fn invitee(user: &User, handle: &str) -> Invitee {
    let identity = user.identity();
    Invitee {
        handle: handle.into(),
        did: identity.did(),
        x25519: identity.agreement_public(),
        mailbox: user.personal_space,
    }
}

async fn wait_status(device: &Device, space: Uuid, status: SpaceStatus) {
    device
        .wait(&format!("space {space} {status:?}"), |d| {
            d.handle
                .spaces()
                .unwrap()
                .iter()
                .any(|s| s.id == space && s.status == status)
        })
        .await;
}

/// Inserts a note into `space` and returns its id.
fn note_in(device: &Device, space: Uuid, title: &str) -> String {
    // One write: the engine never sees the record outside the space.
    device
        .handle
        .write(|db| {
            let v = db.insert("notes", json!({ "title": title }))?;
            let id = v["id"].as_str().unwrap_or_default().to_owned();
            db.assign_space(&id, &space.to_string())?;
            Ok(id)
        })
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invite_collaborate_remove_and_lock_out() {
    let server = Server::start().await;
    let dir = TempDir::new("spaces");
    let (ada, bo, cy) = (User::new(1), User::new(2), User::new(3));
    let a = Device::start(&server.url(), &server.issuer, &ada, &dir.0.join("a.db"));
    let b = Device::start(&server.url(), &server.issuer, &bo, &dir.0.join("b.db"));
    let c = Device::start(&server.url(), &server.issuer, &cy, &dir.0.join("c.db"));
    for d in [&a, &b, &c] {
        d.settled().await;
    }

    let space = a.handle.create_space("Trip").await.unwrap();
    a.handle
        .invite(space, invitee(&bo, "bo"), Capability::Write)
        .await
        .unwrap();
    a.handle
        .invite(space, invitee(&cy, "cy"), Capability::Read)
        .await
        .unwrap();
    // The invitees learn of it live.
    wait_status(&b, space, SpaceStatus::Invited).await;
    wait_status(&c, space, SpaceStatus::Invited).await;
    assert_eq!(b.handle.spaces().unwrap()[0].name, "Trip");
    b.handle.accept(space).await.unwrap();
    c.handle.decline(space).await.unwrap();
    wait_status(&c, space, SpaceStatus::Declined).await;

    let members = a.handle.members(space).await.unwrap();
    let status = |u: &User| {
        members
            .member(&u.identity().did())
            .map(|m| (m.status.as_str(), m.role))
    };
    assert_eq!(status(&ada), Some(("joined", Capability::Admin)));
    assert_eq!(status(&bo), Some(("joined", Capability::Write)));
    assert_eq!(status(&cy), Some(("declined", Capability::Read)));
    assert!(members.ignored.is_empty(), "{:?}", members.ignored);
    // Bo folds the same list from the same signed log.
    let seen_by_bo = b.handle.members(space).await.unwrap();
    assert_eq!(seen_by_bo.members, members.members);

    // Both read and write.
    let from_ada = note_in(&a, space, "from ada");
    b.wait("ada's note", |d| d.get(&from_ada).is_some()).await;
    let from_bo = note_in(&b, space, "from bo");
    a.wait("bo's note", |d| d.get(&from_bo).is_some()).await;
    // The personal space stays private.
    let private = a.insert(json!({"title": "private"}));
    a.settled().await;

    // Only an admin removes.
    let refused = b
        .handle
        .remove_member(space, ada.identity().did())
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("admin"), "{refused}");

    a.handle
        .remove_member(space, bo.identity().did())
        .await
        .unwrap();
    wait_status(&b, space, SpaceStatus::Removed).await;
    let members = a.handle.members(space).await.unwrap();
    assert_eq!(
        members
            .member(&bo.identity().did())
            .map(|m| m.status.as_str()),
        Some("removed")
    );
    assert_eq!(members.epoch, 2);

    let after = note_in(&a, space, "after bo left");
    a.settled().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(b.get(&after).is_none());
    assert!(b.get(&private).is_none());
    // Bo's later writes to the space go nowhere.
    let late = b.insert(json!({"title": "late"}));
    assert!(b.handle.assign(&late, space).is_ok());

    // Forward lock-out: every key bo ever held, plus the server's whole
    // database after the new writes, decrypts nothing of the space now.
    let bo_keys: Vec<(u32, EpochKey)> = b
        .handle
        .spaces()
        .unwrap()
        .into_iter()
        .find(|s| s.id == space)
        .unwrap()
        .keys
        .into_iter()
        .collect();
    assert_eq!(bo_keys.iter().map(|(e, _)| *e).collect::<Vec<_>>(), vec![1]);
    let conn = rusqlite::Connection::open(server.db_path()).unwrap();
    let mut rows = conn
        .prepare("SELECT id, blob, dek FROM records WHERE space_id = ?1 AND blob IS NOT NULL")
        .unwrap();
    let rows: Vec<(Vec<u8>, Vec<u8>, Vec<u8>)> = rows
        .query_map([space.as_bytes().as_slice()], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(rows.len(), 3, "ada's, bo's and the new note");
    for (id, blob, dek) in &rows {
        let id = Uuid::from_slice(id).unwrap();
        let wrapped = WrappedKey::from_bytes(dek).unwrap();
        assert_eq!(wrapped.epoch(), 2, "every key rewrapped to the new epoch");
        for (_, key) in &bo_keys {
            let opened = unwrap_dek(key, &wrapped)
                .ok()
                .and_then(|dek| open_record(&dek, &space, &id, blob).ok());
            assert!(opened.is_none(), "bo's old key opened record {id}");
        }
    }
    assert!(!rows.is_empty());
    let sealed: Vec<(u32, Vec<u8>)> = conn
        .prepare("SELECT epoch, sealed FROM sealed_keys WHERE space_id = ?1")
        .unwrap()
        .query_map([space.as_bytes().as_slice()], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let bo_identity = bo.identity();
    for (epoch, box_) in &sealed {
        let opened =
            sealbase_crypto::open_epoch_key(bo_identity.agreement_secret(), &space, *epoch, box_);
        // Epoch 1 reached bo inside his invitation, epoch 2 never.
        assert!(opened.is_err(), "epoch {epoch} sealed to bo");
    }
    // The membership entries written after the removal are sealed under
    // the new epoch too.
    let entries: Vec<Vec<u8>> = conn
        .prepare("SELECT ciphertext FROM membership WHERE space_id = ?1 ORDER BY cursor")
        .unwrap()
        .query_map([space.as_bytes().as_slice()], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let last = entries.last().unwrap();
    assert_eq!(
        sealbase_crypto::membership::entry_epoch(last).unwrap(),
        2,
        "the removal entry"
    );

    // Ada still reads everything; rotation keeps data readable.
    a.handle.rotate(space).await.unwrap();
    a.handle.rotate(space).await.unwrap();
    assert_eq!(a.handle.members(space).await.unwrap().epoch, 4);
    let fourth = note_in(&a, space, "epoch four");
    a.settled().await;
    // A second device of ada's learns the space, its keys and its
    // records through her personal space.
    let a2 = Device::start(&server.url(), &server.issuer, &ada, &dir.0.join("a2.db"));
    for id in [&from_ada, &from_bo, &after, &fourth] {
        a2.wait("every note on ada's second device", |d| d.get(id).is_some())
            .await;
    }

    // Re-invitation after removal works.
    a.handle
        .invite(space, invitee(&bo, "bo"), Capability::Write)
        .await
        .unwrap();
    wait_status(&b, space, SpaceStatus::Invited).await;
    b.handle.accept(space).await.unwrap();
    b.wait("the notes written while away", |d| d.get(&fourth).is_some())
        .await;
    let back = note_in(&b, space, "back again");
    a.wait("bo's note after re-joining", |d| d.get(&back).is_some())
        .await;
    // Cy never joined: nothing of the space reached cy.
    assert!(c.get(&from_ada).is_none());
}
