//! The sync server over real sockets, on SQLite and on PostgreSQL.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[macro_use]
mod common;

use std::time::Duration;

use futures_util::SinkExt;

use common::{Backend, Client, Incoming, TestServer, http_get};
use sealbase_protocol::{
    CallResult, Change, ErrorCode, Notification, PullChunk, PullParams, PullSpace, PushParams,
    PushResult, RecordCursor, TokenRefreshParams, Uuid, WrappedKey,
};
use sealbase_sync::Limits;

fn dek(epoch: u32) -> WrappedKey {
    let mut bytes = [7u8; 44];
    bytes[..4].copy_from_slice(&epoch.to_be_bytes());
    WrappedKey::from(bytes)
}

fn change(id: u128, blob: &[u8], expected_cursor: u64) -> Change {
    Change {
        id: Uuid::from_u128(id),
        blob: Some(blob.to_vec().into()),
        dek: Some(dek(1)),
        expected_cursor,
    }
}

fn push(space: Uuid, changes: Vec<Change>) -> PushParams {
    PushParams {
        space,
        cap: None,
        changes,
    }
}

/// A user (seed 1) signed in on two devices, and her personal space.
async fn two_devices(server: &TestServer) -> (Client, Client, Uuid) {
    let alice = server.user(1);
    let (first, _) = server.client(&alice).await;
    let (second, _) = server.client(&alice).await;
    (first, second, alice.personal_space)
}

async fn pull_all(client: &mut Client, space: Uuid, since: u64) -> (Vec<PullChunk>, CallResult) {
    let id = client
        .send(PullParams {
            spaces: vec![PullSpace {
                id: space,
                since,
                cap: None,
            }],
        })
        .await;
    let mut chunks = Vec::new();
    loop {
        match client.next().await {
            Incoming::Chunk(chunk_id, chunk) if chunk_id == id => chunks.push(chunk),
            Incoming::Response(r) if r.id == id => {
                let result =
                    CallResult::from_raw(sealbase_protocol::Method::Pull, &r.outcome.unwrap())
                        .unwrap();
                return (chunks, result);
            }
            Incoming::Closed(code) => panic!("closed {code:?}"),
            _ => {}
        }
    }
}

async fn auth_returns_the_session(backend: Backend) {
    let server = TestServer::start(backend, "auth_session").await;
    let alice = server.user(1);
    let (_client, session) = server.client(&alice).await;
    assert_eq!(session.user, alice.id);
    assert_eq!(session.personal_space, alice.personal_space);
    assert_eq!(session.did, alice.identity.did().to_string());
    assert!(session.expires_at > common::now());
}

async fn auth_failures_close_with_4000(backend: Backend) {
    let limits = Limits {
        auth_timeout: Duration::from_millis(300),
        ..Limits::default()
    };
    let server = TestServer::start_with(backend, "auth_failures", limits).await;
    let alice = server.user(1);

    // Silence past the timeout.
    let mut c = Client::connect(&server.url()).await;
    assert_eq!(c.closed().await, Some(4000));

    // Another request first.
    let mut c = Client::connect(&server.url()).await;
    c.send(push(alice.personal_space, vec![change(1, b"x", 0)]))
        .await;
    assert_eq!(c.closed().await, Some(4000));

    // A token from an issuer we do not trust.
    let other = server.issuer.impostor().unwrap();
    let forged = common::mint(&other, &alice, common::now() + 60);
    let mut c = Client::connect(&server.url()).await;
    c.send(sealbase_protocol::AuthParams { token: forged })
        .await;
    assert_eq!(c.closed().await, Some(4000));

    // An expired token.
    let mut c = Client::connect(&server.url()).await;
    let expired = common::mint(&server.issuer, &alice, common::now() - 120);
    c.send(sealbase_protocol::AuthParams { token: expired })
        .await;
    assert_eq!(c.closed().await, Some(4000));

    // Garbage.
    let mut c = Client::connect(&server.url()).await;
    c.send_raw(vec![0xff, 0x00, 0x13]).await;
    assert_eq!(c.closed().await, Some(4000));

    // The server still serves everyone else.
    let (_c, session) = server.client(&alice).await;
    assert_eq!(session.user, alice.id);
}

async fn without_the_subprotocol_there_is_no_socket(backend: Backend) {
    let server = TestServer::start(backend, "no_subprotocol").await;
    let result = tokio_tungstenite::connect_async(server.url()).await;
    match result {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 400);
        }
        other => panic!("expected HTTP 400, got {other:?}"),
    }
}

/// Sends `request` (HTTP/1.1, written out by hand) to the server and
/// returns the response's head.
async fn raw_http(server: &TestServer, request: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = server.http("").trim_start_matches("http://").to_owned();
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut byte))
            .await
            .expect("the server answers")
            .unwrap();
        assert_eq!(n, 1, "connection closed inside the response head");
        head.push(byte[0]);
    }
    String::from_utf8(head).unwrap().to_ascii_lowercase()
}

/// The upgrade follows RFC 6455 §4.2: what is not a version 13 handshake
/// offering `sealbase.v1` gets an HTTP refusal; a good one gets 101 with the
/// accept key the RFC's example gives.
async fn only_a_websocket_handshake_upgrades(backend: Backend) {
    let server = TestServer::start(backend, "handshake").await;
    let path = sealbase_protocol::WS_PATH;
    let request = |extra: &str| format!("GET {path} HTTP/1.1\r\nHost: sync.test\r\n{extra}\r\n");
    let good = "Connection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\
                Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
                Sec-WebSocket-Protocol: other, sealbase.v1\r\n";
    let head = raw_http(&server, &request(good)).await;
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(
        head.contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo=\r\n"),
        "{head}"
    );
    assert!(
        head.contains("sec-websocket-protocol: sealbase.v1\r\n"),
        "{head}"
    );

    let refusals = [
        ("", "400"),
        (
            &good.replace("keep-alive, Upgrade", "keep-alive")[..],
            "400",
        ),
        (
            &good.replace("Upgrade: websocket", "Upgrade: h2c")[..],
            "400",
        ),
        (&good.replace("Version: 13", "Version: 8")[..], "426"),
        (
            &good.replace("dGhlIHNhbXBsZSBub25jZQ==", "c2hvcnQ=")[..],
            "400",
        ),
        (&good.replace("Sec-WebSocket-Key", "X-Key")[..], "400"),
        (
            &good.replace("other, sealbase.v1", "sealbase.v2")[..],
            "400",
        ),
    ];
    for (headers, status) in refusals {
        let head = raw_http(&server, &request(headers)).await;
        assert!(
            head.starts_with(&format!("http/1.1 {status}")),
            "{headers:?}: {head}"
        );
        if status == "426" {
            assert!(head.contains("sec-websocket-version: 13\r\n"), "{head}");
        }
    }
    let head = raw_http(
        &server,
        &format!("POST {path} HTTP/1.1\r\nHost: sync.test\r\nContent-Length: 0\r\n{good}\r\n"),
    )
    .await;
    assert!(head.starts_with("http/1.1 405"), "{head}");

    // The server still serves sockets after the refusals.
    let alice = server.user(1);
    let (mut c, _) = server.client(&alice).await;
    assert!(matches!(
        c.call(push(alice.personal_space, vec![change(1, b"one", 0)]))
            .await
            .unwrap(),
        CallResult::Push(PushResult::Applied { .. })
    ));
}

async fn push_then_pull_round_trips(backend: Backend) {
    let server = TestServer::start(backend, "push_pull").await;
    let alice = server.user(1);
    let (mut c, _) = server.client(&alice).await;
    let space = alice.personal_space;

    let r = c
        .call(push(
            space,
            vec![change(1, b"one", 0), change(2, b"two", 0)],
        ))
        .await
        .unwrap();
    assert_eq!(
        r,
        CallResult::Push(PushResult::Applied { prev: 0, cursor: 1 })
    );
    let r = c
        .call(push(
            space,
            vec![
                change(1, b"one v2", 1),
                Change {
                    id: Uuid::from_u128(2),
                    blob: None,
                    dek: None,
                    expected_cursor: 1,
                },
            ],
        ))
        .await
        .unwrap();
    assert_eq!(
        r,
        CallResult::Push(PushResult::Applied { prev: 1, cursor: 2 })
    );

    let (chunks, result) = pull_all(&mut c, space, 0).await;
    assert_eq!(
        result,
        CallResult::Pull(sealbase_protocol::PullResult { denied: vec![] })
    );
    assert!(matches!(&chunks[0], PullChunk::Begin(b) if b.cursor == 2 && b.since == 0 && !b.reset));
    match (&chunks[1], &chunks[2]) {
        (PullChunk::Record(r), PullChunk::Tombstone(t))
        | (PullChunk::Tombstone(t), PullChunk::Record(r)) => {
            assert_eq!(r.id, Uuid::from_u128(1));
            assert_eq!(r.blob.as_slice(), b"one v2");
            assert_eq!(r.cursor, 2);
            assert_eq!(t.id, Uuid::from_u128(2));
            assert_eq!(t.cursor, 2);
        }
        other => panic!("unexpected items {other:?}"),
    }
    assert!(matches!(&chunks[3], PullChunk::Commit(c) if c.cursor == 2 && !c.more));
    assert_eq!(chunks.len(), 4);

    // From the latest cursor there is nothing new.
    let (chunks, _) = pull_all(&mut c, space, 2).await;
    assert_eq!(chunks.len(), 2);
}

async fn pulls_stream_in_cursor_order_across_pages(backend: Backend) {
    let limits = Limits {
        pull_page: 7,
        ..Limits::default()
    };
    let server = TestServer::start_with(backend, "pull_pages", limits).await;
    let alice = server.user(1);
    let (mut c, _) = server.client(&alice).await;
    let space = alice.personal_space;
    for batch in 0..10u128 {
        let changes = (0..5u128)
            .map(|i| change(batch * 100 + i, b"r", 0))
            .collect();
        c.call(push(space, changes)).await.unwrap();
    }
    let (chunks, _) = pull_all(&mut c, space, 3).await;
    let cursors: Vec<u64> = chunks
        .iter()
        .filter_map(|c| match c {
            PullChunk::Record(r) => Some(r.cursor),
            _ => None,
        })
        .collect();
    assert_eq!(cursors.len(), 35, "batches 4..=10, five records each");
    assert!(cursors.windows(2).all(|w| w[0] <= w[1]));
    assert_eq!(cursors.first(), Some(&4));
    assert_eq!(cursors.last(), Some(&10));
}

async fn conflicts_name_each_record(backend: Backend) {
    let server = TestServer::start(backend, "conflicts").await;
    let alice = server.user(1);
    let (mut c, _) = server.client(&alice).await;
    let space = alice.personal_space;
    c.call(push(space, vec![change(1, b"a", 0), change(2, b"b", 0)]))
        .await
        .unwrap();
    let r = c
        .call(push(
            space,
            vec![change(1, b"a2", 0), change(2, b"b2", 1), change(3, b"c", 5)],
        ))
        .await
        .unwrap();
    let CallResult::Push(PushResult::Conflict { mut records }) = r else {
        panic!("expected a conflict, got {r:?}");
    };
    records.sort_by_key(|r| r.id);
    assert_eq!(
        records,
        vec![
            RecordCursor {
                id: Uuid::from_u128(1),
                cursor: 1
            },
            RecordCursor {
                id: Uuid::from_u128(3),
                cursor: 0
            },
        ]
    );
    // Nothing of the batch was written.
    let (chunks, _) = pull_all(&mut c, space, 0).await;
    assert!(matches!(&chunks[0], PullChunk::Begin(b) if b.cursor == 1));
}

async fn subscribers_get_pushes_in_real_time(backend: Backend) {
    let server = TestServer::start(backend, "realtime").await;
    let (mut phone, mut laptop, space) = two_devices(&server).await;
    let subscribed = phone.subscribe(space, None).await;
    assert_eq!(subscribed.spaces[0].cursor, 0);

    laptop
        .call(push(space, vec![change(9, b"hello", 0)]))
        .await
        .unwrap();
    let Notification::Sync(sync) = phone.notification().await else {
        panic!("expected sync")
    };
    assert_eq!((sync.space, sync.prev, sync.cursor), (space, 0, 1));
    assert_eq!(sync.records[0].blob.as_ref().unwrap().as_slice(), b"hello");

    // The pusher is not notified of its own write, and a second push shows
    // the continuity the client checks (prev = its cursor).
    laptop
        .call(push(space, vec![change(9, b"again", 1)]))
        .await
        .unwrap();
    let Notification::Sync(sync) = phone.notification().await else {
        panic!()
    };
    assert_eq!((sync.prev, sync.cursor), (1, 2));
}

async fn another_users_space_is_refused(backend: Backend) {
    let server = TestServer::start(backend, "authorization").await;
    let alice = server.user(1);
    let mallory = server.user(2);
    let (_a, _) = server.client(&alice).await;
    let (mut m, _) = server.client(&mallory).await;

    let err = m
        .call(push(alice.personal_space, vec![change(1, b"evil", 0)]))
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::Forbidden);

    let s = m.subscribe(alice.personal_space, None).await;
    assert!(s.spaces.is_empty());
    assert_eq!(s.denied[0].error.code, ErrorCode::Forbidden);

    let (chunks, result) = pull_all(&mut m, alice.personal_space, 0).await;
    assert!(chunks.is_empty(), "nothing of alice's space is returned");
    let CallResult::Pull(p) = result else {
        panic!()
    };
    assert_eq!(p.denied[0].error.code, ErrorCode::Forbidden);
}

async fn bad_input_gets_errors_and_closes(backend: Backend) {
    let server = TestServer::start(backend, "bad_input").await;
    let alice = server.user(1);
    let (mut c, _) = server.client(&alice).await;

    // Unknown method: an error, the connection stays.
    let frame = sealbase_protocol::Frame::Request(sealbase_protocol::RawRequest {
        id: 77,
        method: "no.such.method".into(),
        params: sealbase_protocol::RawValue::empty_map(),
    });
    c.send_raw(frame.encode().unwrap()).await;
    let Incoming::Response(r) = c.next().await else {
        panic!()
    };
    assert_eq!(r.outcome.unwrap_err().code, ErrorCode::MethodNotFound);

    // Params of the wrong shape: bad_request.
    let frame = sealbase_protocol::Frame::Request(sealbase_protocol::RawRequest {
        id: 78,
        method: "push".into(),
        params: sealbase_protocol::RawValue::encode(&vec![1, 2, 3]).unwrap(),
    });
    c.send_raw(frame.encode().unwrap()).await;
    let Incoming::Response(r) = c.next().await else {
        panic!()
    };
    assert_eq!(r.outcome.unwrap_err().code, ErrorCode::BadRequest);

    // A rule broken: blob without key.
    let err = c
        .call(push(
            alice.personal_space,
            vec![Change {
                id: Uuid::from_u128(1),
                blob: Some(b"x".to_vec().into()),
                dek: None,
                expected_cursor: 0,
            }],
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::BadRequest);

    // Truncated CBOR: the connection closes with 4005.
    let mut frame = sealbase_protocol::Frame::Request(sealbase_protocol::RawRequest {
        id: 79,
        method: "push".into(),
        params: sealbase_protocol::RawValue::empty_map(),
    })
    .encode()
    .unwrap();
    frame.truncate(frame.len() - 3);
    c.send_raw(frame).await;
    assert_eq!(c.closed().await, Some(4005));

    // A text frame closes with 4005 too; others are unaffected.
    let (mut c2, _) = server.client(&alice).await;
    c2.ws
        .send(tokio_tungstenite::tungstenite::Message::Text("hi".into()))
        .await
        .unwrap();
    assert_eq!(c2.closed().await, Some(4005));
    let (mut c3, _) = server.client(&alice).await;
    c3.call(push(alice.personal_space, vec![change(1, b"fine", 0)]))
        .await
        .unwrap();
}

async fn expired_tokens_close_with_4001_unless_refreshed(backend: Backend) {
    let server = TestServer::start(backend, "expiry").await;
    let alice = server.user(1);

    // Refreshed in time: the connection lives on.
    let mut c = Client::connect(&server.url()).await;
    c.auth(&server.token(&alice, 2)).await.unwrap();
    let r = c
        .call(TokenRefreshParams {
            token: server.token(&alice, 3600),
        })
        .await
        .unwrap();
    assert!(matches!(r, CallResult::TokenRefresh(t) if t.expires_at > common::now() + 3000));

    // Not refreshed: revoked, then 4001.
    let mut d = Client::connect(&server.url()).await;
    d.auth(&server.token(&alice, 2)).await.unwrap();
    d.subscribe(alice.personal_space, None).await;
    let Notification::Revoked(revoked) = d.notification().await else {
        panic!()
    };
    assert_eq!(revoked.spaces, vec![alice.personal_space]);
    assert_eq!(d.closed().await, Some(4001));

    // The refreshed one still works after the first token's expiry.
    tokio::time::sleep(Duration::from_millis(500)).await;
    c.call(push(alice.personal_space, vec![change(1, b"x", 0)]))
        .await
        .unwrap();

    // Refreshing with another user's token is refused.
    let bob = server.user(2);
    let err = c
        .call(TokenRefreshParams {
            token: server.token(&bob, 3600),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::Unauthorized);
}

async fn slow_consumers_are_closed_not_skipped(backend: Backend) {
    // Two frames of notifications: the queue is full by count.
    let by_frames = Limits {
        queue_frames: 2,
        ..Limits::default()
    };
    fills_until_closed(backend, "slow_consumer_frames", by_frames).await;
    // Room for a thousand frames but 4 MiB: full by bytes, 1 MiB records.
    let by_bytes = Limits {
        queue_bytes: 4 << 20,
        ..Limits::default()
    };
    fills_until_closed(backend, "slow_consumer_bytes", by_bytes).await;
}

/// A subscriber that stops reading while 1 MiB records are pushed: the
/// notifications fill the socket buffers and then its queue, and it is
/// closed with 4006 while the pushes all succeed.
async fn fills_until_closed(backend: Backend, name: &str, limits: Limits) {
    let server = TestServer::start_with(backend, name, limits).await;
    let (mut reader, mut writer, space) = two_devices(&server).await;
    reader.subscribe(space, None).await;
    let blob = vec![0x42u8; 1 << 20];
    let mut cursor = 0;
    for i in 0..40u128 {
        let r = writer
            .call(push(space, vec![change(i, &blob, 0)]))
            .await
            .unwrap();
        let CallResult::Push(PushResult::Applied { cursor: c, .. }) = r else {
            panic!()
        };
        cursor = c;
    }
    assert_eq!(cursor, 40);
    assert_eq!(reader.closed().await, Some(4006));
}

async fn a_slow_pull_leaves_room_for_notifications(backend: Backend) {
    let limits = Limits {
        queue_frames: 8,
        ..Limits::default()
    };
    let server = TestServer::start_with(backend, "pull_room", limits).await;
    let alice = server.user(1);
    let (mut writer, _) = server.client(&alice).await;
    let space = alice.personal_space;
    let blob = vec![0x42u8; 1 << 20];
    for i in 0..30u128 {
        writer
            .call(push(space, vec![change(i, &blob, 0)]))
            .await
            .unwrap();
    }
    let (mut reader, _) = server.client(&alice).await;
    reader.subscribe(space, None).await;
    let pull = reader
        .send(PullParams {
            spaces: vec![PullSpace {
                id: space,
                since: 0,
                cap: None,
            }],
        })
        .await;
    // The reader does not read yet: 30 MiB of chunks fill the socket
    // buffers and then the connection's room for its own frames, where the
    // pull waits.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for i in 0..3u128 {
        writer
            .call(push(space, vec![change(100 + i, b"small", 0)]))
            .await
            .unwrap();
    }
    // The notifications had room of their own: nothing was closed, the
    // pull completes and every `sync` arrives.
    let (mut records, mut syncs, mut done) = (0, 0, false);
    while !done || syncs < 3 {
        match reader.next().await {
            Incoming::Chunk(id, PullChunk::Record(_)) if id == pull => records += 1,
            Incoming::Response(r) if r.id == pull => done = true,
            Incoming::Notification(Notification::Sync(_)) => syncs += 1,
            Incoming::Closed(code) => panic!("closed with {code:?} during a pull"),
            _ => {}
        }
    }
    assert_eq!((records, syncs), (30, 3));
}

/// Frames larger than the server's 16 KiB fragment leave as fragmented
/// messages (so no connection's write buffer keeps a large frame's size);
/// a client gets them whole: a `sync` notification and a pull chunk of a
/// 600 KiB record carry the exact bytes.
async fn large_frames_arrive_whole(backend: Backend) {
    let server = TestServer::start(backend, "large_frames").await;
    let (mut reader, mut writer, space) = two_devices(&server).await;
    reader.subscribe(space, None).await;
    let blob: Vec<u8> = (0..600 * 1024u32).map(|i| (i % 251) as u8).collect();
    writer
        .call(push(space, vec![change(1, &blob, 0)]))
        .await
        .unwrap();
    match reader.next().await {
        Incoming::Notification(Notification::Sync(sync)) => {
            assert_eq!(sync.records.len(), 1);
            assert_eq!(sync.records[0].blob.as_ref().unwrap().as_slice(), blob);
        }
        other => panic!("expected the sync notification, got {other:?}"),
    }
    let (chunks, _) = pull_all(&mut reader, space, 0).await;
    let pulled: Vec<&[u8]> = chunks
        .iter()
        .filter_map(|c| match c {
            PullChunk::Record(r) => Some(r.blob.as_slice()),
            _ => None,
        })
        .collect();
    assert_eq!(pulled, [blob.as_slice()]);
}

async fn health_answers(backend: Backend) {
    let server = TestServer::start(backend, "health").await;
    let body = http_get(&server.http("/health")).await;
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    let metrics = http_get(&server.http("/metrics")).await;
    assert!(metrics.contains("sealbase_sync_connections"), "{metrics}");
}

/// On SQLite the server copies the write-ahead log into the database file
/// in the background (commits never do): a checkpoint after a push finds
/// the push's pages and copies them all. Postgres has no such log here.
async fn the_sqlite_log_is_checkpointed_in_the_background(backend: Backend) {
    let server = TestServer::start(backend, "checkpoints").await;
    let alice = server.user(1);
    let (mut client, _) = server.client(&alice).await;
    client
        .call(push(alice.personal_space, vec![change(1, &[9; 20_000], 0)]))
        .await
        .unwrap();
    let value = |metrics: &str, name: &str| -> Option<u64> {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
    };
    let metrics = http_get(&server.http("/metrics")).await;
    let checkpoints = value(&metrics, "sealbase_sync_sqlite_checkpoints_total");
    if matches!(backend, Backend::Postgres) {
        assert_eq!(checkpoints, None, "{metrics}");
        return;
    }
    // Exported from the start; the first checkpoint may not have run yet.
    let after_push = checkpoints.expect("SQLite exports its checkpoint count");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let metrics = http_get(&server.http("/metrics")).await;
        let count = value(&metrics, "sealbase_sync_sqlite_checkpoints_total").unwrap();
        // Two more: the second started after the push had committed.
        if count >= after_push + 2 {
            let frames = value(&metrics, "sealbase_sync_sqlite_wal_frames").unwrap();
            let pending = value(&metrics, "sealbase_sync_sqlite_wal_pending_frames").unwrap();
            assert!(frames >= 5, "the push's pages (a 20 kB blob): {metrics}");
            assert_eq!(pending, 0, "{metrics}");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no checkpoint ran: {metrics}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Graceful shutdown: live sockets get 1001, the listener closes, the
/// sessions end before `shutdown` returns, and closing the store then
/// leaves a SQLite database whole in its file, with nothing lost.
async fn shutdown_closes_sockets_then_the_store(backend: Backend) {
    let server = TestServer::start(backend, "shutdown").await;
    let alice = server.user(1);
    let space = alice.personal_space;
    let (mut client, _) = server.client(&alice).await;
    client
        .call(push(space, vec![change(1, &[7; 5_000], 0)]))
        .await
        .unwrap();
    // A pull leaves reader connections open in the store.
    let (chunks, _) = pull_all(&mut client, space, 0).await;
    assert!(chunks.iter().any(|c| matches!(c, PullChunk::Record(_))));
    let addr = server.server.local_addr();
    let store = server.store.clone();
    let dir = tokio::time::timeout(Duration::from_secs(20), server.shut_down())
        .await
        .expect("shutdown drains within its timeout");
    assert_eq!(client.closed().await, Some(1001));
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "still accepting after shutdown"
    );
    assert!(store.ping().await.is_err(), "the store is closed");
    let Some(dir) = dir else {
        return;
    };
    let file = dir.path().join("sync.db");
    assert!(file.exists());
    assert!(
        !dir.path().join("sync.db-wal").exists(),
        "the log was copied into the database and removed"
    );
    let reopened = sealbase_sync::store::Store::connect(&format!("sqlite://{}", file.display()))
        .await
        .unwrap();
    let rows = reopened
        .pull_page(space, 0, u64::MAX, None, 10, u64::MAX)
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].id, Uuid::from_u128(1));
    assert_eq!(rows[0].version.as_ref().unwrap().0, [7; 5_000]);
    reopened.close().await;
}

async fn pulls_behind_the_compaction_horizon_start_over(backend: Backend) {
    let server = TestServer::start(backend, "compaction_reset").await;
    let alice = server.user(1);
    let (mut client, _) = server.client(&alice).await;
    let space = alice.personal_space;
    let call = |r: CallResult| match r {
        CallResult::Push(PushResult::Applied { cursor, .. }) => cursor,
        other => panic!("{other:?}"),
    };
    let deletion = |id: u128, expected_cursor: u64| Change {
        id: Uuid::from_u128(id),
        blob: None,
        dek: None,
        expected_cursor,
    };
    call(
        client
            .call(push(space, vec![change(1, b"a", 0), change(2, b"b", 0)]))
            .await
            .unwrap(),
    );
    call(
        client
            .call(push(space, vec![deletion(1, 1)]))
            .await
            .unwrap(),
    );
    call(
        client
            .call(push(space, vec![change(3, b"c", 0)]))
            .await
            .unwrap(),
    );

    // The tombstone of record 1 (cursor 2) is dropped.
    let cutoff = common::now() + 10;
    let done = server.store.compact(cutoff, 100).await.unwrap();
    assert_eq!(done.tombstones, 1);

    // A device that last synced at cursor 1 never saw that delete: it must
    // start over and drop what the pull does not mention.
    let (chunks, _) = pull_all(&mut client, space, 1).await;
    let PullChunk::Begin(begin) = &chunks[0] else {
        panic!("{chunks:?}")
    };
    assert!(begin.reset);
    assert_eq!((begin.since, begin.cursor), (0, 3));
    let ids: Vec<Uuid> = chunks
        .iter()
        .filter_map(|c| match c {
            PullChunk::Record(r) => Some(r.id),
            _ => None,
        })
        .collect();
    assert_eq!(ids, vec![Uuid::from_u128(2), Uuid::from_u128(3)]);

    // Devices at or past the compacted cursor pull incrementally.
    for since in [2, 3] {
        let (chunks, _) = pull_all(&mut client, space, since).await;
        let PullChunk::Begin(begin) = &chunks[0] else {
            panic!("{chunks:?}")
        };
        assert!(!begin.reset, "since {since}");
        assert_eq!(begin.since, since);
    }
}

async fn pushes_past_the_storage_quota_are_refused(backend: Backend) {
    let limits = Limits {
        storage_quota: Some(1000),
        ..Limits::default()
    };
    let server = TestServer::start_with(backend, "quota", limits).await;
    let alice = server.user(1);
    let (mut client, _) = server.client(&alice).await;
    let space = alice.personal_space;
    client
        .call(push(space, vec![change(1, &[1; 600], 0)]))
        .await
        .unwrap();
    let refused = client
        .call(push(space, vec![change(2, &[2; 600], 0)]))
        .await
        .unwrap_err();
    assert_eq!(refused.code, ErrorCode::QuotaExceeded, "{refused:?}");
    // Nothing of the refused batch was stored; smaller writes still fit.
    let (chunks, _) = pull_all(&mut client, space, 1).await;
    assert!(
        !chunks.iter().any(|c| matches!(c, PullChunk::Record(_))),
        "{chunks:?}"
    );
    client
        .call(push(space, vec![change(2, &[2; 300], 0)]))
        .await
        .unwrap();
}

async fn pushes_and_space_creations_are_rate_limited(backend: Backend) {
    let limits = Limits {
        pushes_per_second: 3,
        membership_per_minute: 2,
        ..Limits::default()
    };
    let server = TestServer::start_with(backend, "push_rate", limits).await;
    let alice = server.user(1);
    let bob = server.user(2);
    let (mut a, _) = server.client(&alice).await;
    let (mut b, _) = server.client(&bob).await;
    let space = alice.personal_space;
    for i in 0..3 {
        a.call(push(space, vec![change(10 + i, b"x", 0)]))
            .await
            .unwrap();
    }
    let refused = a
        .call(push(space, vec![change(20, b"x", 0)]))
        .await
        .unwrap_err();
    assert_eq!(refused.code, ErrorCode::RateLimited, "{refused:?}");
    // Per user: Bob is not slowed down by Alice.
    b.call(push(bob.personal_space, vec![change(1, b"y", 0)]))
        .await
        .unwrap();
    // The bucket refills (3 per second).
    tokio::time::sleep(Duration::from_millis(400)).await;
    a.call(push(space, vec![change(20, b"x", 0)]))
        .await
        .unwrap();

    for i in 0..2u128 {
        a.call(sealbase_protocol::SpaceCreateParams {
            id: Uuid::from_u128(0x5ace + i),
            entry: b"genesis".to_vec().into(),
            key: b"key".to_vec().into(),
        })
        .await
        .unwrap();
    }
    let refused = a
        .call(sealbase_protocol::SpaceCreateParams {
            id: Uuid::from_u128(0x5ace + 9),
            entry: b"genesis".to_vec().into(),
            key: b"key".to_vec().into(),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code, ErrorCode::RateLimited, "{refused:?}");
}

both_backends!(
    auth_returns_the_session,
    auth_failures_close_with_4000,
    without_the_subprotocol_there_is_no_socket,
    only_a_websocket_handshake_upgrades,
    push_then_pull_round_trips,
    pulls_stream_in_cursor_order_across_pages,
    conflicts_name_each_record,
    subscribers_get_pushes_in_real_time,
    another_users_space_is_refused,
    bad_input_gets_errors_and_closes,
    expired_tokens_close_with_4001_unless_refreshed,
    slow_consumers_are_closed_not_skipped,
    a_slow_pull_leaves_room_for_notifications,
    large_frames_arrive_whole,
    health_answers,
    the_sqlite_log_is_checkpointed_in_the_background,
    shutdown_closes_sockets_then_the_store,
    pulls_behind_the_compaction_horizon_start_over,
    pushes_past_the_storage_quota_are_refused,
    pushes_and_space_creations_are_rate_limited,
);
