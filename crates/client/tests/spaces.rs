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

use common::{Device, Server, TempDir, User, invitee, note_in, wait_status};
use sealbase_client::presence::Ephemeral;
use sealbase_client::spaces::SpaceStatus;
use sealbase_crypto::capability::Capability;
use sealbase_crypto::{EpochKey, WrappedKey, open_record, unwrap_dek};
use sealbase_protocol::Uuid;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invite_collaborate_remove_and_lock_out() {
    let server = Server::start().await;
    let dir = TempDir::new("spaces");
    let (ada, bo, cy) = (User::new(1), User::new(2), User::new(3));
    let [a, b, c] = server.devices(&dir, [&ada, &bo, &cy]).await;

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

/// Ada's new space with bo joined as a writer.
async fn space_with_bo(a: &Device, b: &Device, bo: &User) -> Uuid {
    let space = a.handle.create_space("Shared").await.unwrap();
    a.handle
        .invite(space, invitee(bo, "bo"), Capability::Write)
        .await
        .unwrap();
    wait_status(b, space, SpaceStatus::Invited).await;
    b.handle.accept(space).await.unwrap();
    space
}

/// The next presence or event heard, within 10 s.
async fn next(rx: &mut futures::channel::mpsc::UnboundedReceiver<Ephemeral>) -> Ephemeral {
    use futures::StreamExt;
    tokio::time::timeout(Duration::from_secs(10), rx.next())
        .await
        .expect("an ephemeral message within 10 s")
        .expect("the engine is running")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_and_events_under_the_channel_key() {
    let server = Server::start().await;
    let dir = TempDir::new("presence");
    let (ada, bo, cy) = (User::new(1), User::new(2), User::new(3));
    let [a, b, c] = server.devices(&dir, [&ada, &bo, &cy]).await;
    let space = space_with_bo(&a, &b, &bo).await;
    // Cy has a space of her own with ada: nothing of the first reaches it.
    let other = a.handle.create_space("Other").await.unwrap();
    a.handle
        .invite(other, invitee(&cy, "cy"), Capability::Write)
        .await
        .unwrap();
    wait_status(&c, other, SpaceStatus::Invited).await;
    c.handle.accept(other).await.unwrap();

    let mut heard_by_bo = b.handle.ephemeral();
    let mut heard_by_cy = c.handle.ephemeral();
    a.handle
        .set_presence(space, b"editing: intro".to_vec())
        .await
        .unwrap();
    let Ephemeral::Presence(peer) = next(&mut heard_by_bo).await else {
        panic!("presence first");
    };
    assert_eq!(peer.space, space);
    assert_eq!(peer.did, ada.identity().did());
    assert_eq!(peer.data, b"editing: intro");
    assert_eq!(b.handle.presence(space), vec![peer.clone()]);
    // The server holds only ciphertext of it.
    assert!(a.handle.presence(space).is_empty(), "no echo of one's own");

    a.handle
        .send_event(space, b"cursor 12,4".to_vec())
        .await
        .unwrap();
    match next(&mut heard_by_bo).await {
        Ephemeral::Event {
            space: s,
            did,
            data,
            peer: p,
        } => {
            assert_eq!(
                (s, did, data),
                (space, ada.identity().did(), b"cursor 12,4".to_vec())
            );
            assert_eq!(p, peer.peer, "the same connection's peer id");
        }
        other => panic!("expected the event, got {other:?}"),
    }
    // Cy hears the event of her own space only.
    a.handle
        .send_event(other, b"hello cy".to_vec())
        .await
        .unwrap();
    match next(&mut heard_by_cy).await {
        Ephemeral::Event { space: s, data, .. } => {
            assert_eq!((s, data), (other, b"hello cy".to_vec()));
        }
        other => panic!("expected cy's event, got {other:?}"),
    }
    assert!(c.handle.presence(space).is_empty());

    // A read-only member cannot speak.
    let refused = {
        let dave = User::new(4);
        let d = Device::start(&server.url(), &server.issuer, &dave, &dir.0.join("d.db"));
        d.settled().await;
        a.handle
            .invite(space, invitee(&dave, "dave"), Capability::Read)
            .await
            .unwrap();
        wait_status(&d, space, SpaceStatus::Invited).await;
        d.handle.accept(space).await.unwrap();
        d.handle.send_event(space, b"x".to_vec()).await.unwrap_err()
    };
    assert!(refused.to_string().contains("read-only"), "{refused}");

    // Presence too large for the server's limit is refused here, clearly.
    let big = a
        .handle
        .set_presence(space, vec![7; 8 * 1024])
        .await
        .unwrap_err();
    assert!(big.to_string().contains("limit"), "{big}");

    a.handle.clear_presence(space).await.unwrap();
    loop {
        match next(&mut heard_by_bo).await {
            Ephemeral::Leave { space: s, peer: p } if s == space && p == peer.peer => break,
            _ => {}
        }
    }
    assert!(b.handle.presence(space).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_in_a_shared_space_and_lock_out() {
    use sealbase_client::native::FileClient;
    let server = Server::start().await;
    let dir = TempDir::new("files");
    let (ada, bo) = (User::new(1), User::new(2));
    let [a, b] = server.devices(&dir, [&ada, &bo]).await;
    let space = space_with_bo(&a, &b, &bo).await;
    let files = FileClient::new();

    // Three chunks, the last one short.
    let body: Vec<u8> = (0..(2 * 256 * 1024 + 1000))
        .map(|i| (i % 251) as u8)
        .collect();
    let record = note_in(&a, space, "with attachment");
    let record = Uuid::parse_str(&record).unwrap();
    let access = a.handle.file_access(space).await.unwrap();
    let file = files
        .upload_bytes(&access, record, body.clone())
        .await
        .unwrap();
    // Bo downloads it whole and in part (across a chunk boundary).
    let access_b = b.handle.file_access(space).await.unwrap();
    assert_eq!(files.download_bytes(&access_b, file).await.unwrap(), body);
    let (start, end) = (256 * 1024 - 10, 256 * 1024 + 10);
    assert_eq!(
        files.read_range(&access_b, file, start, end).await.unwrap(),
        body[start as usize..end as usize]
    );
    // An empty file works too; a streamed body of unknown length as well.
    let empty = files
        .upload_bytes(&access_b, record, Vec::new())
        .await
        .unwrap();
    assert!(
        files
            .download_bytes(&access, empty)
            .await
            .unwrap()
            .is_empty()
    );
    let streamed = files
        .upload(&access_b, record, std::io::Cursor::new(body.clone()), None)
        .await
        .unwrap();
    assert_eq!(files.download_bytes(&access, streamed).await.unwrap(), body);
    // The stored body is ciphertext.
    let stored = common::files_under(&server.dir.0.join("files"));
    assert!(!stored.is_empty());
    for path in &stored {
        let bytes = std::fs::read(path).unwrap();
        assert!(
            !bytes
                .windows(64)
                .any(|w| body.windows(64).next() == Some(w)),
            "plaintext in {path:?}"
        );
    }

    // Bo is removed: the server refuses his old capability, and the file
    // key is rewrapped under an epoch he never gets.
    let old = access_b;
    a.handle
        .remove_member(space, bo.identity().did())
        .await
        .unwrap();
    wait_status(&b, space, SpaceStatus::Removed).await;
    let refused = files.download_bytes(&old, file).await.unwrap_err();
    assert_eq!(
        refused.error_code(),
        Some(&sealbase_protocol::ErrorCode::Forbidden),
        "{refused}"
    );
    assert!(b.handle.file_access(space).await.is_err());
    let access = a.handle.file_access(space).await.unwrap();
    assert_eq!(access.epoch, 2);
    let later = files
        .upload_bytes(&access, record, b"after bo left".to_vec())
        .await
        .unwrap();
    let conn = rusqlite::Connection::open(server.db_path()).unwrap();
    let keys: Vec<(Vec<u8>, Vec<u8>)> = conn
        .prepare("SELECT id, dek FROM files WHERE space_id = ?1")
        .unwrap()
        .query_map([space.as_bytes().as_slice()], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(keys.len(), 4);
    for (id, dek) in &keys {
        let wrapped = WrappedKey::from_bytes(dek).unwrap();
        assert_eq!(
            wrapped.epoch(),
            2,
            "file {:?} rewrapped",
            Uuid::from_slice(id)
        );
        for key in old.keys.values() {
            assert!(sealbase_crypto::unwrap_file_key(key, &wrapped).is_err());
        }
    }
    // Ada still reads everything.
    assert_eq!(files.download_bytes(&access, file).await.unwrap(), body);
    assert_eq!(
        files.download_bytes(&access, later).await.unwrap(),
        b"after bo left"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn move_records_between_spaces() {
    let server = Server::start().await;
    let dir = TempDir::new("move");
    let (ada, bo) = (User::new(1), User::new(2));
    let [a, b] = server.devices(&dir, [&ada, &bo]).await;
    let space = space_with_bo(&a, &b, &bo).await;

    // A synced personal note with some history moves into the space.
    let note = a.insert(json!({"title": "draft"}));
    a.patch(&note, json!({"title": "plan", "done": false}));
    a.settled().await;
    let history = a.handle.read(|db| db.history("notes", &note)).unwrap();
    let moved = a
        .handle
        .move_records("notes", &[note.as_str()], Some(space))
        .unwrap();
    assert_eq!(moved.len(), 1);
    let new_id = &moved[0];
    assert_ne!(new_id, &note, "a synced record becomes a new record there");
    assert!(a.get(&note).is_none(), "the original is gone");
    assert_eq!(a.get(new_id).unwrap()["title"], "plan");
    let kept = a.handle.read(|db| db.history("notes", new_id)).unwrap();
    assert_eq!(kept.len(), history.len(), "history kept");
    b.wait("the moved note", |d| d.get(new_id).is_some()).await;
    assert_eq!(b.get(new_id).unwrap()["done"], false);
    // Ada's other device sees the original deleted and the copy in the space.
    let a2 = Device::start(&server.url(), &server.issuer, &ada, &dir.0.join("a2.db"));
    a2.wait("the copy on ada's second device", |d| {
        d.get(new_id).is_some()
    })
    .await;
    assert!(a2.get(&note).is_none());

    // Bulk: two shared notes (one never pushed) back to the personal space.
    let shared_note = note_in(&b, space, "bo's");
    a.wait("bo's note", |d| d.get(&shared_note).is_some()).await;
    let fresh = note_in(&a, space, "fresh");
    let back = a
        .handle
        .move_records(
            "notes",
            &[new_id.as_str(), shared_note.as_str(), fresh.as_str()],
            None,
        )
        .unwrap();
    assert_eq!(back.len(), 3);
    a.settled().await;
    b.wait("moved out of the space", |d| {
        d.get(new_id).is_none() && d.get(&shared_note).is_none() && d.get(&fresh).is_none()
    })
    .await;
    for id in [new_id, &shared_note, &fresh] {
        assert!(a.get(id).is_none());
    }
    for id in &back {
        assert!(a.get(id).is_some());
        a2.wait("moved back to ada's personal space", |d| {
            d.get(id).is_some()
        })
        .await;
    }
    // Bo (a writer, not in ada's personal space) cannot move into a space
    // he does not know, and nothing moves half way.
    let err = b
        .handle
        .move_records("notes", &[shared_note.as_str()], Some(Uuid::from_u128(9)))
        .unwrap_err();
    assert!(
        err.to_string().contains("not one of your shared spaces"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interrupted_rotation_is_finished_by_the_next_admin_device() {
    use common::Cut;
    let server = Server::start().await;
    let dir = TempDir::new("rotation");
    let (ada, bo) = (User::new(1), User::new(2));
    let a_path = dir.0.join("a.db");
    let b = Device::start(&server.url(), &server.issuer, &bo, &dir.0.join("b.db"));
    b.settled().await;
    let space;
    let first;
    {
        // Ada's device crashes before it rewraps any key.
        let cut = Cut::new("deks.rewrap");
        let a = Device::start_through(
            &server.url(),
            &server.issuer,
            &ada,
            &a_path,
            3600,
            |_| {},
            cut.clone(),
        );
        a.settled().await;
        space = space_with_bo(&a, &b, &bo).await;
        first = note_in(&a, space, "before the rotation");
        b.wait("ada's note", |d| d.get(&first).is_some()).await;
        assert!(a.handle.rotate(space).await.is_err(), "cut mid-rotation");
        assert!(cut.cuts.load(std::sync::atomic::Ordering::Relaxed) >= 1);
        a.stop();
    }
    // Epoch 2 was begun but not completed: keys still under epoch 1.
    let epochs = || -> Vec<u32> {
        let conn = rusqlite::Connection::open(server.db_path()).unwrap();
        let deks: Vec<Vec<u8>> = conn
            .prepare("SELECT dek FROM records WHERE space_id = ?1 AND dek IS NOT NULL")
            .unwrap()
            .query_map([space.as_bytes().as_slice()], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        deks.iter()
            .map(|d| WrappedKey::from_bytes(d).unwrap().epoch())
            .collect()
    };
    assert_eq!(epochs(), vec![1]);
    assert_eq!(b.handle.members(space).await.unwrap().epoch, 1);

    // The same store, restarted normally, finishes it.
    let a = Device::start(&server.url(), &server.issuer, &ada, &a_path);
    a.settled().await;
    let mut folded = a.handle.members(space).await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while folded.epoch != 2 {
        assert!(std::time::Instant::now() < deadline, "rotation not resumed");
        tokio::time::sleep(Duration::from_millis(50)).await;
        folded = a.handle.members(space).await.unwrap();
    }
    assert!(folded.ignored.is_empty(), "{:?}", folded.ignored);
    assert_eq!(epochs(), vec![2]);
    assert_eq!(b.handle.members(space).await.unwrap().epoch, 2);
    // Both still read and write.
    let second = note_in(&a, space, "after the rotation");
    b.wait("the note after the rotation", |d| d.get(&second).is_some())
        .await;
    let from_bo = note_in(&b, space, "bo under epoch 2");
    a.wait("bo's note", |d| d.get(&from_bo).is_some()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_rotation() {
    let server = Server::start().await;
    let dir = TempDir::new("scheduled");
    let (ada, bo) = (User::new(1), User::new(2));
    let a = Device::start_with(
        &server.url(),
        &server.issuer,
        &ada,
        &dir.0.join("a.db"),
        3600,
        |c| c.rotate_every_ms = Some(1500),
    );
    let b = Device::start(&server.url(), &server.issuer, &bo, &dir.0.join("b.db"));
    a.settled().await;
    b.settled().await;
    let space = space_with_bo(&a, &b, &bo).await;
    let note = note_in(&a, space, "kept readable");
    b.wait("the note", |d| d.get(&note).is_some()).await;
    // Two rotations happen on their own.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let epoch = b.handle.members(space).await.unwrap().epoch;
        if epoch >= 3 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "epoch {epoch}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let info = a
        .handle
        .spaces()
        .unwrap()
        .into_iter()
        .find(|s| s.id == space)
        .unwrap();
    assert!(info.rotated.unwrap().0 >= 3);
    // A non-admin never rotates on schedule; bo reads what ada writes now.
    let later = note_in(&a, space, "later");
    b.wait("the later note", |d| d.get(&later).is_some()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_collaborate_and_removal_from_one_space_leaves_the_other() {
    let server = Server::start().await;
    let dir = TempDir::new("three");
    let (ada, bo, cy) = (User::new(1), User::new(2), User::new(3));
    let [a, b, c] = server.devices(&dir, [&ada, &bo, &cy]).await;
    let team = space_with_bo(&a, &b, &bo).await;
    a.handle
        .invite(team, invitee(&cy, "cy"), Capability::Write)
        .await
        .unwrap();
    wait_status(&c, team, SpaceStatus::Invited).await;
    c.handle.accept(team).await.unwrap();
    let side = space_with_bo(&a, &b, &bo).await;

    // Three members write; each sees the others' notes.
    let notes = [
        note_in(&a, team, "ada's"),
        note_in(&b, team, "bo's"),
        note_in(&c, team, "cy's"),
    ];
    for d in [&a, &b, &c] {
        for id in &notes {
            d.wait("every member's note", |d| d.get(id).is_some()).await;
        }
    }
    // A concurrent edit by two members merges.
    b.patch(&notes[2], json!({"done": true}));
    c.patch(&notes[2], json!({"body": "cy's text"}));
    a.wait("both edits merged", |d| {
        d.get(&notes[2])
            .is_some_and(|n| n["done"] == true && n["body"] == "cy's text")
    })
    .await;

    // Bo leaves the side space only.
    a.handle
        .remove_member(side, bo.identity().did())
        .await
        .unwrap();
    wait_status(&b, side, SpaceStatus::Removed).await;
    let status = |s: Uuid| {
        b.handle
            .spaces()
            .unwrap()
            .into_iter()
            .find(|i| i.id == s)
            .unwrap()
            .status
    };
    assert_eq!(status(team), SpaceStatus::Joined);
    let after = note_in(&a, team, "after the side removal");
    b.wait("team notes still reach bo", |d| d.get(&after).is_some())
        .await;
    let from_bo = note_in(&b, team, "bo still writes");
    c.wait("bo's later note", |d| d.get(&from_bo).is_some())
        .await;
    assert_eq!(
        a.handle.members(team).await.unwrap().epoch,
        1,
        "no rotation there"
    );
    let gone = note_in(&a, side, "side after bo");
    a.settled().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(b.get(&gone).is_none());
}

/// A device that stays connected learns of a space the user's other
/// device creates from its record in the personal space, and syncs it at
/// once, without waiting for its next connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connected_device_syncs_a_space_its_twin_creates() {
    let server = Server::start().await;
    let dir = TempDir::new("twin");
    let ada = User::new(1);
    let [a] = server.devices(&dir, [&ada]).await;
    let a2 = Device::start(&server.url(), &server.issuer, &ada, &dir.0.join("a2.db"));
    a.settled().await;
    a2.settled().await;
    let connections = a2.status().connections;

    let space = a.handle.create_space("trip").await.unwrap();
    let note = note_in(&a, space, "tickets");
    a2.wait("the note in the new space", |d| d.get(&note).is_some())
        .await;
    wait_status(&a2, space, SpaceStatus::Joined).await;
    assert_eq!(
        a2.status().connections,
        connections,
        "learnt on the open connection"
    );
    // And it writes there too.
    let reply = note_in(&a2, space, "hotel");
    a.wait("the second device's note", |d| d.get(&reply).is_some())
        .await;
}
