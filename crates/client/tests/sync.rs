//! The sync engine end to end: real sync server, real sockets, store files,
//! engines on their own threads.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::{Device, Server, TempDir, User};
use sealbase_client::Phase;
use sealbase_crypto::{
    Dek, OsRng, RecordEnvelope, WrappedKey, kdf, open_record, seal_record, seal_record_envelope,
    unwrap_dek,
};
use sealbase_protocol::Uuid;
use serde_json::json;

fn multi() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn edits_flow_between_live_devices() {
    multi().block_on(async {
        let server = Server::start().await;
        let user = User::new(1);
        let dir = TempDir::new("live");
        let a = Device::start(&server.url(), &server.issuer, &user, &dir.0.join("a.db"));
        let b = Device::start(&server.url(), &server.issuer, &user, &dir.0.join("b.db"));
        a.settled().await;
        b.settled().await;

        let id = a.insert(json!({"title": "milk", "body": "2 litres"}));
        b.wait("the insert", |d| d.get(&id).is_some()).await;
        assert_eq!(b.get(&id).unwrap()["body"], "2 litres");

        a.patch(&id, json!({"title": "oat milk"}));
        b.wait("the patch", |d| d.get(&id).unwrap()["title"] == "oat milk")
            .await;

        b.patch(&id, json!({"done": true}));
        a.wait("the reverse patch", |d| d.get(&id).unwrap()["done"] == true)
            .await;

        a.handle.write(|db| db.delete("notes", &id)).unwrap();
        b.wait("the deletion", |d| d.get(&id).is_none()).await;
        a.settled().await;
        b.settled().await;
        // Realtime: applied from notifications, nothing quarantined.
        assert_eq!(b.status().quarantined, 0);
        assert_eq!(a.status().connections, 1);
        assert_eq!(b.status().connections, 1);
        // Local history names the author of each change.
        let history = b.handle.read(|db| db.history("notes", &id)).unwrap();
        let did = user.identity().did().to_string();
        assert!(history.len() >= 3);
        assert!(
            history
                .iter()
                .all(|v| v.author.as_deref() == Some(did.as_str()))
        );
    });
}

#[test]
fn fresh_device_pulls_everything_and_a_reload_pulls_nothing_twice() {
    multi().block_on(async {
        let server = Server::start().await;
        let user = User::new(2);
        let dir = TempDir::new("fresh");
        let a = Device::start(&server.url(), &server.issuer, &user, &dir.0.join("a.db"));
        let mut ids = Vec::new();
        for n in 0..25 {
            ids.push(a.insert(json!({"title": format!("note {n}"), "n": n})));
        }
        a.settled().await;
        // Deleted after it reached the server: a tombstone there.
        a.handle.write(|db| db.delete("notes", &ids[3])).unwrap();
        a.settled().await;

        let path = dir.0.join("c.db");
        let c = Device::start(&server.url(), &server.issuer, &user, &path);
        c.wait("everything", |d| d.count() == 24).await;
        c.settled().await;
        assert_eq!(c.status().pulled, 25, "24 records and one tombstone");
        assert!(c.get(&ids[3]).is_none());
        let before = c.all();
        c.stop();

        // Reopen the same store: the cursor was kept, so nothing comes
        // again and nothing is pushed.
        let c = Device::start(&server.url(), &server.issuer, &user, &path);
        c.settled().await;
        let status = c.status();
        assert_eq!((status.pulled, status.pushed), (0, 0), "{status:?}");
        assert_eq!(c.all(), before);

        // And it is still live.
        let id = a.insert(json!({"title": "after reload"}));
        c.wait("a new record", |d| d.get(&id).is_some()).await;
        assert_eq!(c.status().pulled, 1);
    });
}

#[test]
fn concurrent_offline_edits_merge_fields_and_characters() {
    multi().block_on(async {
        let server = Server::start().await;
        let user = User::new(3);
        let dir = TempDir::new("merge");
        let (pa, pb) = (dir.0.join("a.db"), dir.0.join("b.db"));
        let a = Device::start(&server.url(), &server.issuer, &user, &pa);
        let b = Device::start(&server.url(), &server.issuer, &user, &pb);
        let id = a.insert(json!({"title": "plan", "body": "hello world", "done": false}));
        b.wait("the record", |d| d.get(&id).is_some()).await;
        a.settled().await;
        b.settled().await;
        a.stop();
        b.stop();

        // Both offline: different fields, and the same text in two places.
        let a = Device::start("ws://127.0.0.1:9/", &server.issuer, &user, &pa);
        let b = Device::start("ws://127.0.0.1:9/", &server.issuer, &user, &pb);
        a.patch(
            &id,
            json!({"title": "holiday plan", "body": "hello brave world"}),
        );
        b.patch(&id, json!({"done": true, "body": "hello world!"}));
        a.wait("offline with one pending record", |d| {
            let s = d.status();
            s.phase == Phase::Offline && s.pending == 1
        })
        .await;
        a.stop();
        b.stop();

        let a = Device::start(&server.url(), &server.issuer, &user, &pa);
        let b = Device::start(&server.url(), &server.issuer, &user, &pb);
        for d in [&a, &b] {
            d.wait("the merge", |d| {
                let r = d.get(&id).unwrap();
                r["title"] == "holiday plan"
                    && r["done"] == true
                    && r["body"] == "hello brave world!"
            })
            .await;
        }
        a.settled().await;
        b.settled().await;
        let strip = |mut v: serde_json::Value| {
            v.as_object_mut().unwrap().remove("updatedAt");
            v
        };
        assert_eq!(strip(a.get(&id).unwrap()), strip(b.get(&id).unwrap()));
    });
}

#[test]
fn offline_writes_sync_when_the_server_comes_back() {
    multi().block_on(async {
        // Reserve a port, then leave it closed: the device starts offline.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let url = format!("ws://{addr}{}", sealbase_protocol::WS_PATH);
        let user = User::new(4);
        let dir = TempDir::new("offline");
        let issuer = sealbase_sync::testing::TestIssuer::generate("offline").unwrap();
        let a = Device::start(&url, &issuer, &user, &dir.0.join("a.db"));
        let id = a.insert(json!({"title": "written offline"}));
        a.wait("a retry scheduled", |d| {
            let s = d.status();
            s.phase == Phase::Offline && s.retry_in_ms.is_some() && s.last_error.is_some()
        })
        .await;
        assert_eq!(a.status().pending, 1);

        let server = Server::start_with(addr, TempDir::new("offline-server"), issuer).await;
        a.handle.reconnect();
        a.settled().await;
        let b = Device::start(&server.url(), &server.issuer, &user, &dir.0.join("b.db"));
        b.wait("the offline write", |d| d.get(&id).is_some()).await;
    });
}

#[test]
fn delete_wins_over_a_concurrent_edit() {
    multi().block_on(async {
        let server = Server::start().await;
        let user = User::new(5);
        let dir = TempDir::new("delete");
        let (pa, pb) = (dir.0.join("a.db"), dir.0.join("b.db"));
        let a = Device::start(&server.url(), &server.issuer, &user, &pa);
        let b = Device::start(&server.url(), &server.issuer, &user, &pb);
        let edited_offline = a.insert(json!({"title": "one"}));
        let deleted_offline = a.insert(json!({"title": "two"}));
        b.wait("both", |d| d.count() == 2).await;
        a.settled().await;
        b.settled().await;
        b.stop();

        // B is offline: A deletes the first record; B edits it. Then A
        // edits the second while B deletes it.
        let b = Device::start("ws://127.0.0.1:9/", &server.issuer, &user, &pb);
        a.handle
            .write(|db| db.delete("notes", &edited_offline))
            .unwrap();
        b.patch(&edited_offline, json!({"title": "one, edited"}));
        a.patch(&deleted_offline, json!({"title": "two, edited"}));
        b.handle
            .write(|db| db.delete("notes", &deleted_offline))
            .unwrap();
        a.settled().await;
        b.stop();

        let b = Device::start(&server.url(), &server.issuer, &user, &pb);
        b.settled().await;
        a.wait("the second deletion", |d| d.get(&deleted_offline).is_none())
            .await;
        a.settled().await;
        for d in [&a, &b] {
            assert!(d.get(&edited_offline).is_none());
            assert!(d.get(&deleted_offline).is_none());
            assert_eq!(d.count(), 0);
        }
        // The losing edits are still in the history.
        let history = b
            .handle
            .read(|db| db.history("notes", &edited_offline))
            .unwrap();
        let last = history.last().unwrap().hash.clone();
        let old = b
            .handle
            .read(|db| db.get_at("notes", &edited_offline, &last))
            .unwrap();
        assert_eq!(old["title"], "one, edited");

        // A third device sees both as gone.
        let c = Device::start(&server.url(), &server.issuer, &user, &dir.0.join("c.db"));
        c.settled().await;
        assert_eq!(c.count(), 0);
    });
}

/// The server's stored blob and wrapped key of a record.
fn stored(server: &Server, id: &str) -> (Vec<u8>, Vec<u8>) {
    let conn = rusqlite::Connection::open(server.db_path()).unwrap();
    let id = Uuid::parse_str(id).unwrap();
    conn.query_row(
        "SELECT blob, dek FROM records WHERE id = ?1",
        [id.as_bytes().as_slice()],
        |row| Ok((row.get(0)?, row.get(1)?)),
    )
    .unwrap()
}

fn replace_blob(server: &Server, id: &str, blob: &[u8]) {
    let conn = rusqlite::Connection::open(server.db_path()).unwrap();
    let id = Uuid::parse_str(id).unwrap();
    let n = conn
        .execute(
            "UPDATE records SET blob = ?2 WHERE id = ?1",
            rusqlite::params![id.as_bytes().as_slice(), blob],
        )
        .unwrap();
    assert_eq!(n, 1);
}

#[test]
fn tampered_or_wrongly_signed_versions_are_quarantined() {
    multi().block_on(async {
        let server = Server::start().await;
        let user = User::new(6);
        let dir = TempDir::new("tamper");
        let a = Device::start(&server.url(), &server.issuer, &user, &dir.0.join("a.db"));
        let ids: Vec<String> = (0..5)
            .map(|n| a.insert(json!({"title": format!("secret {n}"), "body": "x"})))
            .collect();
        a.settled().await;
        a.stop();

        let space = user.personal_space;
        let epoch_key = kdf::personal_epoch_key(&sealbase_crypto::AppKey::from_bytes(user.app_key));
        let open = |id: &str| {
            let (blob, dek) = stored(&server, id);
            let dek = unwrap_dek(&epoch_key, &WrappedKey::from_bytes(&dek).unwrap()).unwrap();
            let record = Uuid::parse_str(id).unwrap();
            let plain = open_record(&dek, &space, &record, &blob).unwrap();
            (dek, record, plain)
        };

        // 0: one ciphertext byte flipped.
        let (mut blob, _) = stored(&server, &ids[0]);
        let last = blob.len() - 20;
        blob[last] ^= 1;
        replace_blob(&server, &ids[0], &blob);

        // 1: signature bytes changed (re-encrypted with the right key, as
        // only a key holder could; the signature check must still fail).
        let (dek, record, mut plain) = open(&ids[1]);
        let end = plain.len() - 1;
        plain[end] ^= 1;
        replace_blob(
            &server,
            &ids[1],
            &seal_record(&dek, &space, &record, &plain, &mut OsRng).unwrap(),
        );

        // 2: validly signed, but by another identity.
        let (dek, record, plain) = open(&ids[2]);
        let original = RecordEnvelope::from_cbor(&plain).unwrap();
        let stranger = sealbase_crypto::Identity::generate(&mut OsRng);
        let forged = RecordEnvelope::sign(
            &stranger,
            &space,
            &record,
            "notes",
            1,
            original.doc().to_vec(),
            original.heads().to_vec(),
        )
        .unwrap();
        replace_blob(
            &server,
            &ids[2],
            &seal_record_envelope(&dek, &space, &record, &forged, &mut OsRng).unwrap(),
        );

        // 3: signed by the user, but the document is another one than the
        // signed heads name.
        let (dek, record, _) = open(&ids[3]);
        let (_, _, other) = open(&ids[4]);
        let other = RecordEnvelope::from_cbor(&other).unwrap();
        let mismatched = RecordEnvelope::sign(
            &user.identity(),
            &space,
            &record,
            "notes",
            1,
            other.doc().to_vec(),
            original.heads().to_vec(),
        )
        .unwrap();
        replace_blob(
            &server,
            &ids[3],
            &seal_record_envelope(&dek, &space, &record, &mismatched, &mut OsRng).unwrap(),
        );
        let _ = Dek::from_bytes([0; 32]);

        let c = Device::start(&server.url(), &server.issuer, &user, &dir.0.join("c.db"));
        c.settled().await;
        let status = c.status();
        assert_eq!(status.quarantined, 4, "{status:?}");
        assert!(status.last_error.is_some());
        assert_eq!(c.count(), 1, "only the untouched record");
        assert!(c.get(&ids[4]).is_some());
        let quarantined = c.handle.read(|db| db.quarantined()).unwrap();
        let reason = |id: &str| {
            quarantined
                .iter()
                .find(|q| q.id == *id)
                .map(|q| q.error.clone())
                .unwrap()
        };
        assert!(
            reason(&ids[0]).contains("authentication"),
            "{}",
            reason(&ids[0])
        );
        assert!(reason(&ids[1]).contains("signature"), "{}", reason(&ids[1]));
        assert!(
            reason(&ids[2]).contains("not this user's identity"),
            "{}",
            reason(&ids[2])
        );
        assert!(reason(&ids[3]).contains("heads"), "{}", reason(&ids[3]));

        // The writer's next valid version replaces a refused one.
        let a = Device::start(&server.url(), &server.issuer, &user, &dir.0.join("a.db"));
        a.settled().await;
        a.patch(&ids[0], json!({"title": "secret 0, again"}));
        c.wait("the valid version", |d| d.get(&ids[0]).is_some())
            .await;
        assert_eq!(c.get(&ids[0]).unwrap()["title"], "secret 0, again");
        assert_eq!(c.handle.read(|db| db.quarantined()).unwrap().len(), 3);
    });
}

#[test]
fn ten_thousand_records_sync_to_a_fresh_device() {
    multi().block_on(async {
        let server = Server::start().await;
        let user = User::new(7);
        let dir = TempDir::new("10k");
        let a = Device::start(&server.url(), &server.issuer, &user, &dir.0.join("a.db"));
        a.handle
            .write(|db| {
                db.batch(|db| {
                    for n in 0..10_000 {
                        db.insert("notes", json!({"title": format!("note {n}"), "n": n}))?;
                    }
                    Ok(())
                })
            })
            .unwrap();
        a.settled().await;
        assert_eq!(a.status().pushed, 10_000);

        let b = Device::start(&server.url(), &server.issuer, &user, &dir.0.join("b.db"));
        b.wait("10k records", |d| d.count() == 10_000).await;
        b.settled().await;
        assert_eq!(b.status().pulled, 10_000);
        let q = sealbase_db::Query {
            filter: json!({"n": {"$gte": 9_990}}),
            sort: vec![("n".into(), sealbase_db::Direction::Asc)],
            limit: None,
            offset: None,
        };
        let last = b.handle.read(|db| db.find("notes", &q)).unwrap();
        assert_eq!(last.len(), 10);
        assert_eq!(last[9]["title"], "note 9999");
    });
}

#[test]
fn the_token_is_refreshed_on_the_open_connection() {
    multi().block_on(async {
        let server = Server::start().await;
        let user = User::new(8);
        let dir = TempDir::new("refresh");
        // Four-second tokens: without `token.refresh` the server closes
        // the socket (4001) when the first expires.
        let a = Device::start_with(
            &server.url(),
            &server.issuer,
            &user,
            &dir.0.join("a.db"),
            4,
            |_| {},
        );
        let b = Device::start(&server.url(), &server.issuer, &user, &dir.0.join("b.db"));
        a.settled().await;
        tokio::time::sleep(std::time::Duration::from_secs(9)).await;
        let status = a.status();
        assert_eq!(status.connections, 1, "{status:?}");
        assert!(a.tokens.minted.load(std::sync::atomic::Ordering::Relaxed) >= 3);
        let id = b.insert(json!({"title": "still live"}));
        a.wait("a record after the refreshes", |d| d.get(&id).is_some())
            .await;
        assert_eq!(a.status().connections, 1);
    });
}

#[test]
fn a_session_for_another_identity_is_refused() {
    multi().block_on(async {
        let server = Server::start().await;
        let user = User::new(9);
        let dir = TempDir::new("identity");
        // The token says user 9, but the app key is user 10's.
        let mut wrong = User::new(10);
        wrong.id = user.id;
        wrong.personal_space = user.personal_space;
        let mut db = sealbase_db::Db::open(
            dir.0.join("a.db").to_str().unwrap(),
            sealbase_client::native::SystemEnv,
        )
        .unwrap();
        common::define(&mut db);
        let tokens = common::Tokens {
            issuer: std::sync::Arc::new(server.issuer.clone()),
            user: user.clone(),
            lifetime: 60,
            minted: std::sync::Arc::default(),
        };
        let (engine, handle) = sealbase_client::SyncEngine::new(
            sealbase_client::SyncConfig::new(server.url()),
            wrong.keys(),
            db,
            sealbase_client::native::WsConnector,
            sealbase_client::native::SystemEnv,
            tokens,
        );
        let thread =
            sealbase_client::native::spawn("sync", move || Box::pin(engine.run())).unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let s = handle.status();
            if s.phase == Phase::Offline {
                assert!(s.last_error.unwrap().contains("app key"));
                break;
            }
            assert!(std::time::Instant::now() < deadline, "{s:?}");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        handle.stop();
        thread.join().unwrap();
    });
}
