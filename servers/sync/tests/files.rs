//! File transfers over real HTTP, on SQLite and on PostgreSQL: round trips,
//! ranges, idempotency, limits, key checks, authorization, notifications,
//! pulls, rotation, deletion with records, the orphan sweep, and a 200 MiB
//! file streamed both ways in bounded memory.
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
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use common::{Backend, Client, Incoming, TestServer, User, now};
use futures_util::StreamExt;
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use reqwest::StatusCode;
use sealbase_crypto::{Capability, CapabilityToken, OsRng};
use sealbase_protocol::{
    CallResult, CapRevokeParams, Change, DeksGetParams, DeksRewrapParams, EpochBeginParams,
    EpochCompleteParams, ErrorCode, Hash, KeyOwner, Notification, PullChunk, PullParams, PullSpace,
    PushParams, PushResult, RecipientKey, SpaceCreateParams, Uuid, WrappedDek, WrappedKey,
};
use sealbase_sync::Limits;
use serde_json::Value;
use sha2::{Digest, Sha256};

fn dek(epoch: u32) -> WrappedKey {
    let mut bytes = [0x5au8; 44];
    bytes[..4].copy_from_slice(&epoch.to_be_bytes());
    WrappedKey::from(bytes)
}

fn b64(key: &WrappedKey) -> String {
    URL_SAFE_NO_PAD.encode(key.as_bytes())
}

fn id(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

fn random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; len];
    ChaCha20Rng::seed_from_u64(seed).fill_bytes(&mut bytes);
    bytes
}

/// A file request under construction.
struct Req<'a> {
    server: &'a TestServer,
    token: Option<String>,
    cap: Option<String>,
    key: Option<String>,
    record: Option<String>,
    headers: Vec<(&'static str, String)>,
}

impl<'a> Req<'a> {
    fn new(server: &'a TestServer, user: &User) -> Self {
        Self {
            server,
            token: Some(server.token(user, 3600)),
            cap: None,
            key: Some(b64(&dek(1))),
            record: Some(id(0xaa).hyphenated().to_string()),
            headers: Vec::new(),
        }
    }

    fn cap(mut self, cap: &CapabilityToken) -> Self {
        self.cap = Some(cap.to_string());
        self
    }

    fn key(mut self, key: &WrappedKey) -> Self {
        self.key = Some(b64(key));
        self
    }

    fn record(mut self, record: Uuid) -> Self {
        self.record = Some(record.hyphenated().to_string());
        self
    }

    fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    fn build(&self, method: reqwest::Method, space: Uuid, file: Uuid) -> reqwest::RequestBuilder {
        self.build_path(method, &format!("/api/v1/spaces/{space}/files/{file}"))
    }

    fn build_path(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let mut request = reqwest::Client::new().request(method, self.server.http(path));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(cap) = &self.cap {
            request = request.header("Sealbase-Capability", cap);
        }
        for (name, value) in &self.headers {
            request = request.header(*name, value);
        }
        request
    }

    async fn put(
        &self,
        space: Uuid,
        file: Uuid,
        body: impl Into<reqwest::Body>,
    ) -> reqwest::Response {
        let mut request = self.build(reqwest::Method::PUT, space, file);
        if let Some(key) = &self.key {
            request = request.header("Sealbase-File-Key", key);
        }
        if let Some(record) = &self.record {
            request = request.header("Sealbase-Record", record);
        }
        request.body(body).send().await.unwrap()
    }

    async fn get(&self, space: Uuid, file: Uuid) -> reqwest::Response {
        self.build(reqwest::Method::GET, space, file)
            .send()
            .await
            .unwrap()
    }

    async fn head(&self, space: Uuid, file: Uuid) -> reqwest::Response {
        self.build(reqwest::Method::HEAD, space, file)
            .send()
            .await
            .unwrap()
    }
}

/// The JSON body of a response.
async fn json(response: reqwest::Response) -> Value {
    response.json().await.unwrap()
}

/// Asserts an error response: its status and protocol code.
async fn refused(response: reqwest::Response, status: StatusCode, code: &str) -> Value {
    assert_eq!(response.status(), status, "{response:?}");
    let body = json(response).await;
    assert_eq!(body["code"], code, "{body}");
    assert!(body["message"].is_string(), "{body}");
    body
}

fn header<'r>(response: &'r reqwest::Response, name: &str) -> &'r str {
    response
        .headers()
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_str()
        .unwrap()
}

/// Stored objects under the server's files directory.
fn objects(server: &TestServer) -> Vec<std::path::PathBuf> {
    fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(&server.files_dir, &mut out);
    out
}

/// Waits (up to 10 s) until `done` holds.
async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < Duration::from_secs(10), "never: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn push(
    client: &mut Client,
    space: Uuid,
    cap: Option<&CapabilityToken>,
    changes: Vec<Change>,
) -> (u64, u64) {
    let r = client
        .call(PushParams {
            space,
            cap: cap.map(ToString::to_string),
            changes,
        })
        .await
        .unwrap();
    let CallResult::Push(PushResult::Applied { prev, cursor }) = r else {
        panic!("push not applied: {r:?}")
    };
    (prev, cursor)
}

fn record(n: u128, expected_cursor: u64) -> Change {
    Change {
        id: id(n),
        blob: Some(b"record".to_vec().into()),
        dek: Some(dek(1)),
        expected_cursor,
    }
}

fn tombstone(n: u128, expected_cursor: u64) -> Change {
    Change {
        id: id(n),
        blob: None,
        dek: None,
        expected_cursor,
    }
}

/// The cursor of `space` as `subscribe` reports it.
async fn cursor_of(client: &mut Client, space: Uuid, cap: Option<&CapabilityToken>) -> u64 {
    let subscribed = client.subscribe(space, cap.map(ToString::to_string)).await;
    assert!(subscribed.denied.is_empty(), "{subscribed:?}");
    subscribed.spaces[0].cursor
}

/// Creates shared space `space` with `root` as its root; returns root's
/// admin capability.
async fn shared_space(client: &mut Client, root: &User, space: Uuid) -> CapabilityToken {
    let r = client
        .call(SpaceCreateParams {
            id: space,
            entry: b"genesis".to_vec().into(),
            key: b"sealed epoch 1".to_vec().into(),
        })
        .await
        .unwrap();
    assert!(matches!(r, CallResult::SpaceCreate(_)), "{r:?}");
    grant(root, root, space, Capability::Admin)
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

async fn upload_and_download_round_trip(backend: Backend) {
    let server = TestServer::start(backend, "files_round_trip").await;
    let alice = server.user(1);
    let space = alice.personal_space;
    let file = id(0xf1);
    let body = random_bytes(1, 1024 * 1024 + 7);

    let r = Req::new(&server, &alice)
        .record(id(0xa1))
        .put(space, file, body.clone())
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(header(&r, "sealbase-cursor"), "1");
    let etag = header(&r, "etag").to_owned();
    let stored = json(r).await;
    assert_eq!(stored["id"], file.hyphenated().to_string());
    assert_eq!(stored["record"], id(0xa1).hyphenated().to_string());
    assert_eq!(stored["cursor"], 1);
    assert_eq!(stored["prev"], 0);
    assert_eq!(stored["size"], body.len() as u64);
    assert_eq!(stored["dek"], b64(&dek(1)));

    let r = Req::new(&server, &alice).get(space, file).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(&r, "content-length"), body.len().to_string());
    assert_eq!(header(&r, "sealbase-file-key"), b64(&dek(1)));
    assert_eq!(
        header(&r, "sealbase-record"),
        id(0xa1).hyphenated().to_string()
    );
    assert_eq!(header(&r, "sealbase-cursor"), "1");
    assert_eq!(header(&r, "accept-ranges"), "bytes");
    assert_eq!(header(&r, "etag"), etag);
    assert_eq!(r.bytes().await.unwrap().as_ref(), body.as_slice());

    let r = Req::new(&server, &alice).head(space, file).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(&r, "content-length"), body.len().to_string());
    assert_eq!(header(&r, "sealbase-file-key"), b64(&dek(1)));
    assert_eq!(header(&r, "sealbase-cursor"), "1");
    assert_eq!(header(&r, "etag"), etag);
    assert!(r.bytes().await.unwrap().is_empty());

    // Revalidation of a cached copy.
    let r = Req::new(&server, &alice)
        .header("If-None-Match", etag.clone())
        .get(space, file)
        .await;
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED);

    // An empty file is a file too.
    let r = Req::new(&server, &alice)
        .put(space, id(0xf2), Vec::new())
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = Req::new(&server, &alice).get(space, id(0xf2)).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.bytes().await.unwrap().is_empty());

    let r = Req::new(&server, &alice).get(space, id(0xf3)).await;
    refused(r, StatusCode::NOT_FOUND, "not_found").await;

    let metrics = reqwest::get(server.http("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("sealbase_sync_file_uploads_total 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains(&format!(
            "sealbase_sync_file_received_bytes_total {}",
            body.len()
        )),
        "{metrics}"
    );
    assert!(
        metrics.contains("sealbase_sync_file_requests_total{method=\"put\"} 2"),
        "{metrics}"
    );
}

async fn ranges_are_honoured(backend: Backend) {
    let server = TestServer::start(backend, "files_ranges").await;
    let alice = server.user(1);
    let space = alice.personal_space;
    let file = id(0xf1);
    let body = random_bytes(2, 1000);
    let r = Req::new(&server, &alice)
        .put(space, file, body.clone())
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);

    for (range, expect, content_range) in [
        ("bytes=0-99", 0..100, "bytes 0-99/1000"),
        ("bytes=500-599", 500..600, "bytes 500-599/1000"),
        ("bytes=-100", 900..1000, "bytes 900-999/1000"),
        ("bytes=990-", 990..1000, "bytes 990-999/1000"),
        ("bytes=995-5000", 995..1000, "bytes 995-999/1000"),
    ] {
        let r = Req::new(&server, &alice)
            .header("Range", range)
            .get(space, file)
            .await;
        assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT, "{range}");
        assert_eq!(header(&r, "content-range"), content_range);
        assert_eq!(header(&r, "content-length"), expect.len().to_string());
        assert_eq!(r.bytes().await.unwrap().as_ref(), &body[expect], "{range}");
    }

    for range in [
        "bytes=1000-",
        "bytes=2000-3000",
        "bytes=-0",
        "bytes=5-1",
        "bytes=x-y",
    ] {
        let r = Req::new(&server, &alice)
            .header("Range", range)
            .get(space, file)
            .await;
        assert_eq!(header(&r, "content-range"), "bytes */1000", "{range}");
        refused(r, StatusCode::RANGE_NOT_SATISFIABLE, "bad_request").await;
    }

    // Several ranges, or another unit: the whole body.
    for range in ["bytes=0-1,5-6", "items=0-1"] {
        let r = Req::new(&server, &alice)
            .header("Range", range)
            .get(space, file)
            .await;
        assert_eq!(r.status(), StatusCode::OK, "{range}");
        assert_eq!(r.bytes().await.unwrap().len(), 1000);
    }

    // If-Range with a stale validator: the whole body; with the current one: the range.
    let etag = header(&Req::new(&server, &alice).head(space, file).await, "etag").to_owned();
    let r = Req::new(&server, &alice)
        .header("Range", "bytes=0-9")
        .header("If-Range", "\"stale\"")
        .get(space, file)
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = Req::new(&server, &alice)
        .header("Range", "bytes=0-9")
        .header("If-Range", etag)
        .get(space, file)
        .await;
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(r.bytes().await.unwrap().as_ref(), &body[..10]);

    // HEAD answers as GET would.
    let r = Req::new(&server, &alice)
        .header("Range", "bytes=-10")
        .head(space, file)
        .await;
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(header(&r, "content-length"), "10");
    assert_eq!(header(&r, "content-range"), "bytes 990-999/1000");
}

async fn put_is_idempotent(backend: Backend) {
    let server = TestServer::start(backend, "files_idempotent").await;
    let alice = server.user(1);
    let (mut ws, _) = server.client(&alice).await;
    let space = alice.personal_space;
    let file = id(0xf1);
    let body = random_bytes(3, 300_000);

    let first = Req::new(&server, &alice)
        .put(space, file, body.clone())
        .await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let mut first = json(first).await;
    // A retry (same file, same record) stores nothing new and answers 200.
    let again = Req::new(&server, &alice)
        .put(space, file, body.clone())
        .await;
    assert_eq!(again.status(), StatusCode::OK);
    assert_eq!(header(&again, "sealbase-cursor"), "1");
    let again = json(again).await;
    assert_eq!(first["prev"], 0);
    first.as_object_mut().unwrap().remove("prev");
    assert_eq!(again, first);
    // Even with another body: files are immutable.
    let r = Req::new(&server, &alice)
        .put(space, file, b"other".to_vec())
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = Req::new(&server, &alice).get(space, file).await;
    assert_eq!(r.bytes().await.unwrap().as_ref(), body.as_slice());
    // The same id for another record is a clash.
    let r = Req::new(&server, &alice)
        .record(id(0xbb))
        .put(space, file, body.clone())
        .await;
    refused(r, StatusCode::CONFLICT, "conflict").await;

    assert_eq!(objects(&server).len(), 1);
    assert_eq!(cursor_of(&mut ws, space, None).await, 1);
}

async fn racing_puts_store_one_file(backend: Backend) {
    let server = TestServer::start(backend, "files_race").await;
    let alice = server.user(1);
    let space = alice.personal_space;
    let body = random_bytes(4, 6 << 20);
    for round in 0..3u128 {
        let file = id(0xf0 + round);
        let puts = (0..3).map(|_| {
            let req = Req::new(&server, &alice);
            let body = body.clone();
            async move {
                let r = req.put(space, file, body).await;
                let status = r.status();
                (status, json(r).await)
            }
        });
        let answers = futures_util::future::join_all(puts).await;
        let created = answers
            .iter()
            .filter(|(s, _)| *s == StatusCode::CREATED)
            .count();
        assert_eq!(created, 1, "{answers:?}");
        assert!(
            answers
                .iter()
                .all(|(s, _)| *s == StatusCode::CREATED || *s == StatusCode::OK)
        );
        // Every answer describes the one stored file.
        let cursors: Vec<&Value> = answers.iter().map(|(_, j)| &j["cursor"]).collect();
        assert!(cursors.iter().all(|c| *c == cursors[0]), "{answers:?}");
        let r = Req::new(&server, &alice).get(space, file).await;
        assert_eq!(
            Sha256::digest(r.bytes().await.unwrap()),
            Sha256::digest(&body)
        );
    }
    // Losers' objects are deleted: one object per file.
    assert_eq!(objects(&server).len(), 3, "{:?}", objects(&server));
    let metrics = reqwest::get(server.http("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let received = metrics
        .lines()
        .find_map(|l| l.strip_prefix("sealbase_sync_file_received_bytes_total "))
        .unwrap();
    // Above 3 × 6 MiB when some loser uploaded before finding the row taken.
    eprintln!("racing uploads received {received} bytes for 3 files of 6 MiB");
}

async fn the_size_limit_holds(backend: Backend) {
    let limits = Limits {
        max_file_size: 1 << 20,
        ..Limits::default()
    };
    let server = TestServer::start_with(backend, "files_limit", limits).await;
    let alice = server.user(1);
    let (mut ws, _) = server.client(&alice).await;
    let space = alice.personal_space;

    // Declared too large: refused before any byte of the body is read.
    let addr = server.server.local_addr();
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "PUT /api/v1/spaces/{space}/files/{} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\n\
         Sealbase-File-Key: {}\r\nSealbase-Record: {}\r\nContent-Length: {}\r\n\r\n",
        id(0xf1),
        server.token(&alice, 3600),
        b64(&dek(1)),
        id(0xaa),
        (1u64 << 20) + 1,
    );
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    tcp.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&answer).contains("payload_too_large") {
        let n = tokio::time::timeout(Duration::from_secs(10), tcp.read(&mut buf))
            .await
            .expect("no answer to an oversized Content-Length")
            .unwrap();
        assert!(
            n > 0,
            "closed without an answer: {}",
            String::from_utf8_lossy(&answer)
        );
        answer.extend_from_slice(&buf[..n]);
    }
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");

    // Chunked, growing past the limit mid-stream: aborted, nothing stored.
    let chunks = futures_util::stream::iter(
        (0..17).map(|_| Ok::<_, std::io::Error>(Bytes::from(vec![7u8; 64 * 1024]))),
    )
    .chain(futures_util::stream::pending());
    let r = Req::new(&server, &alice)
        .put(space, id(0xf2), reqwest::Body::wrap_stream(chunks))
        .await;
    refused(r, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;

    for file in [id(0xf1), id(0xf2)] {
        let r = Req::new(&server, &alice).get(space, file).await;
        refused(r, StatusCode::NOT_FOUND, "not_found").await;
    }
    assert!(objects(&server).is_empty(), "{:?}", objects(&server));
    assert_eq!(cursor_of(&mut ws, space, None).await, 0);

    // Exactly the limit, chunked, is fine.
    let chunks = futures_util::stream::iter(
        (0..16).map(|_| Ok::<_, std::io::Error>(Bytes::from(vec![7u8; 64 * 1024]))),
    );
    let r = Req::new(&server, &alice)
        .put(space, id(0xf3), reqwest::Body::wrap_stream(chunks))
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(json(r).await["size"], 1 << 20);
}

async fn key_and_record_headers_are_checked(backend: Backend) {
    let server = TestServer::start(backend, "files_headers").await;
    let alice = server.user(1);
    let space = alice.personal_space;
    let file = id(0xf1);

    let mut no_key = Req::new(&server, &alice);
    no_key.key = None;
    let r = no_key.put(space, file, b"x".to_vec()).await;
    let body = refused(r, StatusCode::BAD_REQUEST, "bad_request").await;
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("sealbase-file-key")
    );

    let mut bad = Req::new(&server, &alice);
    bad.key = Some("not base64!".into());
    refused(
        bad.put(space, file, b"x".to_vec()).await,
        StatusCode::BAD_REQUEST,
        "bad_request",
    )
    .await;
    let mut short = Req::new(&server, &alice);
    short.key = Some(URL_SAFE_NO_PAD.encode([1u8; 43]));
    refused(
        short.put(space, file, b"x".to_vec()).await,
        StatusCode::BAD_REQUEST,
        "bad_request",
    )
    .await;
    let mut padded = Req::new(&server, &alice);
    padded.key = Some(base64::engine::general_purpose::URL_SAFE.encode(dek(1).as_bytes()));
    refused(
        padded.put(space, file, b"x".to_vec()).await,
        StatusCode::BAD_REQUEST,
        "bad_request",
    )
    .await;

    let mut no_record = Req::new(&server, &alice);
    no_record.record = None;
    let body = refused(
        no_record.put(space, file, b"x".to_vec()).await,
        StatusCode::BAD_REQUEST,
        "bad_request",
    )
    .await;
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("sealbase-record")
    );
    let mut bad_record = Req::new(&server, &alice);
    bad_record.record = Some("record-1".into());
    refused(
        bad_record.put(space, file, b"x".to_vec()).await,
        StatusCode::BAD_REQUEST,
        "bad_request",
    )
    .await;

    let r = Req::new(&server, &alice)
        .build_path(
            reqwest::Method::GET,
            &format!("/api/v1/spaces/{space}/files/not-a-uuid"),
        )
        .send()
        .await
        .unwrap();
    refused(r, StatusCode::BAD_REQUEST, "bad_request").await;

    assert!(objects(&server).is_empty());
    let r = Req::new(&server, &alice).get(space, file).await;
    refused(r, StatusCode::NOT_FOUND, "not_found").await;
}

async fn rotation_covers_file_keys(backend: Backend) {
    let server = TestServer::start(backend, "files_rotation").await;
    let alice = server.user(1);
    let bob = server.user(2);
    let (mut a, _) = server.client(&alice).await;
    let space = id(0x5ace);
    let admin = shared_space(&mut a, &alice, space).await;
    let bobs = grant(&alice, &bob, space, Capability::Write);

    let r = Req::new(&server, &bob)
        .cap(&bobs)
        .put(space, id(0xf1), b"one".to_vec())
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(json(r).await["cursor"], 2);

    let r = a
        .call(EpochBeginParams {
            space,
            cap: Some(admin.to_string()),
            epoch: 2,
            keys: vec![RecipientKey {
                did: alice.identity.did().to_string(),
                sealed: b"a2".to_vec().into(),
            }],
        })
        .await
        .unwrap();
    assert!(matches!(r, CallResult::EpochBegin(_)), "{r:?}");

    // Keys under the old epoch are refused, as for a push; a future epoch too.
    let r = Req::new(&server, &bob)
        .cap(&bobs)
        .put(space, id(0xf2), b"two".to_vec())
        .await;
    refused(r, StatusCode::CONFLICT, "stale_epoch").await;
    let r = Req::new(&server, &bob)
        .cap(&bobs)
        .key(&dek(3))
        .put(space, id(0xf2), b"two".to_vec())
        .await;
    refused(r, StatusCode::BAD_REQUEST, "bad_request").await;
    assert_eq!(objects(&server).len(), 1);
    let r = Req::new(&server, &bob)
        .cap(&bobs)
        .key(&dek(2))
        .put(space, id(0xf2), b"two".to_vec())
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);

    // The old file key must be rewrapped before the epoch completes.
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
    assert_eq!(
        old.deks,
        vec![WrappedDek {
            id: id(0xf1),
            owner: KeyOwner::File,
            cursor: 2,
            dek: dek(1),
        }]
    );
    let rewrapped = WrappedKey::from({
        let mut k = [0x77u8; 44];
        k[..4].copy_from_slice(&2u32.to_be_bytes());
        k
    });
    let CallResult::DeksRewrap(done) = a
        .call(DeksRewrapParams {
            space,
            cap: Some(admin.to_string()),
            deks: vec![
                WrappedDek {
                    dek: rewrapped,
                    ..old.deks[0].clone()
                },
                // A file whose cursor moved on (here: never was) is skipped.
                WrappedDek {
                    id: id(0xf2),
                    owner: KeyOwner::File,
                    cursor: 1,
                    dek: rewrapped,
                },
            ],
        })
        .await
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(done.rewrapped, 1);
    assert_eq!(done.skipped, vec![id(0xf2)]);
    let r = Req::new(&server, &bob)
        .cap(&bobs)
        .head(space, id(0xf1))
        .await;
    assert_eq!(header(&r, "sealbase-file-key"), b64(&rewrapped));
    let CallResult::DeksGet(rest) = a.call(deks_get).await.unwrap() else {
        panic!()
    };
    assert!(rest.deks.is_empty());
    assert!(matches!(
        a.call(complete).await.unwrap(),
        CallResult::EpochComplete(_)
    ));
}

/// The items of a pull of `space` from `since`, as (kind, cursor, id).
async fn pull(client: &mut Client, space: Uuid, since: u64) -> Vec<(&'static str, u64, Uuid)> {
    let id = client
        .send(PullParams {
            spaces: vec![PullSpace {
                id: space,
                since,
                cap: None,
            }],
        })
        .await;
    let mut items = Vec::new();
    loop {
        match client.next().await {
            Incoming::Chunk(chunk_id, chunk) if chunk_id == id => items.push(match chunk {
                PullChunk::Begin(b) => ("begin", b.cursor, b.space),
                PullChunk::Record(r) => ("record", r.cursor, r.id),
                PullChunk::Tombstone(t) => ("tombstone", t.cursor, t.id),
                PullChunk::File(f) => {
                    assert_eq!(f.space, space);
                    ("file", f.file.cursor, f.file.id)
                }
                PullChunk::Commit(c) => ("commit", c.cursor, c.space),
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

async fn uploads_notify_and_pull(backend: Backend) {
    let server = TestServer::start(backend, "files_notify").await;
    let alice = server.user(1);
    let space = alice.personal_space;
    let (mut writer, _) = server.client(&alice).await;
    let (mut watcher, _) = server.client(&alice).await;
    assert_eq!(cursor_of(&mut watcher, space, None).await, 0);

    push(&mut writer, space, None, vec![record(1, 0)]).await;
    let r = Req::new(&server, &alice)
        .record(id(1))
        .put(space, id(0xf1), b"file".to_vec())
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    push(&mut writer, space, None, vec![record(2, 0)]).await;

    let Notification::Sync(first) = watcher.notification().await else {
        panic!()
    };
    assert_eq!((first.prev, first.cursor), (0, 1));
    let Notification::File(file) = watcher.notification().await else {
        panic!("expected a file notification")
    };
    assert_eq!((file.space, file.prev, file.cursor), (space, 1, 2));
    assert_eq!(file.file.id, id(0xf1));
    assert_eq!(file.file.record, id(1));
    assert_eq!(file.file.size, 4);
    assert_eq!(file.file.dek, dek(1));
    let Notification::Sync(last) = watcher.notification().await else {
        panic!()
    };
    assert_eq!((last.prev, last.cursor), (2, 3));

    assert_eq!(
        pull(&mut watcher, space, 0).await,
        vec![
            ("begin", 3, space),
            ("record", 1, id(1)),
            ("file", 2, id(0xf1)),
            ("record", 3, id(2)),
            ("commit", 3, space),
        ]
    );
    assert_eq!(
        pull(&mut watcher, space, 1).await,
        vec![
            ("begin", 3, space),
            ("file", 2, id(0xf1)),
            ("record", 3, id(2)),
            ("commit", 3, space),
        ]
    );
}

async fn deleting_a_record_deletes_its_files(backend: Backend) {
    let server = TestServer::start(backend, "files_delete").await;
    let alice = server.user(1);
    let space = alice.personal_space;
    let (mut ws, _) = server.client(&alice).await;
    push(&mut ws, space, None, vec![record(1, 0), record(2, 0)]).await;
    for (file, of) in [(0xf1, 1), (0xf2, 1), (0xf3, 2)] {
        let r = Req::new(&server, &alice)
            .record(id(of))
            .put(space, id(file), vec![1u8; 1000])
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
    }
    assert_eq!(objects(&server).len(), 3);

    let (_, cursor) = push(&mut ws, space, None, vec![tombstone(1, 1)]).await;
    assert_eq!(cursor, 5);
    for file in [0xf1, 0xf2] {
        let r = Req::new(&server, &alice).get(space, id(file)).await;
        refused(r, StatusCode::NOT_FOUND, "not_found").await;
    }
    let r = Req::new(&server, &alice).get(space, id(0xf3)).await;
    assert_eq!(r.status(), StatusCode::OK);
    eventually("the deleted record's objects are gone", || {
        objects(&server).len() == 1
    })
    .await;

    assert_eq!(
        pull(&mut ws, space, 0).await,
        vec![
            ("begin", 5, space),
            ("record", 1, id(2)),
            ("file", 4, id(0xf3)),
            ("tombstone", 5, id(1)),
            ("commit", 5, space),
        ]
    );
    // No new file for a deleted record.
    let r = Req::new(&server, &alice)
        .record(id(1))
        .put(space, id(0xf4), vec![1u8; 10])
        .await;
    refused(r, StatusCode::CONFLICT, "conflict").await;
    assert_eq!(objects(&server).len(), 1);

    // The store's own deletion, for compaction: rows out, objects listed.
    let removed = server
        .store
        .delete_files_of_records(space, &[id(2), id(9)])
        .await
        .unwrap();
    assert_eq!(removed.len(), 1);
    assert_eq!(removed[0].id, id(0xf3));
    assert!(server.store.file(space, id(0xf3)).await.unwrap().is_none());
}

async fn orphaned_objects_are_swept(backend: Backend) {
    let limits = Limits {
        file_sweep_every: Some(Duration::from_millis(200)),
        // Past the second an upload completes in, short of a test's patience.
        orphan_grace: Duration::from_secs(1),
        ..Limits::default()
    };
    let server = TestServer::start_with(backend, "files_sweep", limits).await;
    let alice = server.user(1);
    let space = alice.personal_space;
    let r = Req::new(&server, &alice)
        .put(space, id(0xf1), b"kept".to_vec())
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);

    // An object no row names (a crash between upload and insert), and a
    // file that is not ours at all.
    let orphan = server
        .files_dir
        .join(space.hyphenated().to_string())
        .join(id(0xf2).hyphenated().to_string())
        .join(id(0x0123).hyphenated().to_string());
    std::fs::create_dir_all(orphan.parent().unwrap()).unwrap();
    std::fs::write(&orphan, b"orphan").unwrap();
    let foreign = server.files_dir.join("README");
    std::fs::write(&foreign, b"not a file object").unwrap();

    eventually("the orphan is swept", || !orphan.exists()).await;
    assert!(foreign.exists());
    let r = Req::new(&server, &alice).get(space, id(0xf1)).await;
    assert_eq!(r.bytes().await.unwrap().as_ref(), b"kept");
    let metrics = reqwest::get(server.http("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("sealbase_sync_file_orphans_swept_total 1"),
        "{metrics}"
    );
}

async fn authorization_is_enforced(backend: Backend) {
    let server = TestServer::start(backend, "files_auth").await;
    let alice = server.user(1);
    let bob = server.user(2);
    let carol = server.user(3);
    let mine = alice.personal_space;
    let body = b"secret bytes".to_vec();
    let r = Req::new(&server, &alice)
        .put(mine, id(0xf1), body.clone())
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);

    // No token, a malformed one, an expired one, one signed by someone else.
    let mut anonymous = Req::new(&server, &alice);
    anonymous.token = None;
    let r = anonymous.get(mine, id(0xf1)).await;
    assert!(header(&r, "www-authenticate").starts_with("Bearer"));
    refused(r, StatusCode::UNAUTHORIZED, "unauthorized").await;
    refused(
        anonymous.put(mine, id(0xf9), body.clone()).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;
    let mut garbage = Req::new(&server, &alice);
    garbage.token = Some("not.a.token".into());
    refused(
        garbage.get(mine, id(0xf1)).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;
    let mut expired = Req::new(&server, &alice);
    expired.token = Some(common::mint(&server.issuer, &alice, now() - 120));
    refused(
        expired.get(mine, id(0xf1)).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;
    assert_eq!(
        expired.head(mine, id(0xf1)).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let mut basic = Req::new(&server, &alice);
    basic.token = None;
    let basic = basic.header("Authorization", "Basic YWxpY2U6cHc=");
    refused(
        basic.get(mine, id(0xf1)).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;
    let forged = sealbase_sync::testing::TestIssuer::generate("test-key-1").unwrap();
    let mut forged_req = Req::new(&server, &alice);
    forged_req.token = Some(common::mint(&forged, &alice, now() + 600));
    refused(
        forged_req.get(mine, id(0xf1)).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;

    // Another user's personal space: neither read nor write.
    refused(
        Req::new(&server, &bob).get(mine, id(0xf1)).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    assert_eq!(
        Req::new(&server, &bob).head(mine, id(0xf1)).await.status(),
        StatusCode::FORBIDDEN
    );
    refused(
        Req::new(&server, &bob)
            .put(mine, id(0xf9), body.clone())
            .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    // A space that does not exist.
    refused(
        Req::new(&server, &bob).get(id(0xdead), id(0xf1)).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;

    // A shared space: read may read, not write; no capability, nothing.
    let (mut a, _) = server.client(&alice).await;
    let shared = id(0x5ace);
    let admin = shared_space(&mut a, &alice, shared).await;
    let r = Req::new(&server, &alice)
        .cap(&admin)
        .put(shared, id(0xf2), body.clone())
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let bobs = grant(&alice, &bob, shared, Capability::Read);
    let r = Req::new(&server, &bob)
        .cap(&bobs)
        .get(shared, id(0xf2))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.bytes().await.unwrap().as_ref(), body.as_slice());
    let body2 = refused(
        Req::new(&server, &bob)
            .cap(&bobs)
            .put(shared, id(0xf3), body.clone())
            .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    assert!(body2["message"].as_str().unwrap().contains("write"));
    refused(
        Req::new(&server, &bob).get(shared, id(0xf2)).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    // A capability for someone else does not work for Bob.
    let carols = grant(&alice, &carol, shared, Capability::Write);
    refused(
        Req::new(&server, &bob)
            .cap(&carols)
            .put(shared, id(0xf3), body.clone())
            .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;

    // Revoked: refused from then on, though the chain was cached.
    let r = a
        .call(CapRevokeParams {
            space: shared,
            cap: Some(admin.to_string()),
            token_hash: Hash(bobs.hash().0),
        })
        .await
        .unwrap();
    assert!(matches!(r, CallResult::CapRevoke(_)));
    refused(
        Req::new(&server, &bob)
            .cap(&bobs)
            .get(shared, id(0xf2))
            .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    assert_eq!(
        Req::new(&server, &bob)
            .cap(&bobs)
            .head(shared, id(0xf2))
            .await
            .status(),
        StatusCode::FORBIDDEN
    );

    // Nothing was stored by any refused request.
    assert_eq!(objects(&server).len(), 2);
    for (space, file) in [(mine, id(0xf9)), (shared, id(0xf3))] {
        assert!(server.store.file(space, file).await.unwrap().is_none());
    }
}

/// Serializes the large-file runs: each measures this process' memory.
static LARGE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Resident memory of this process, in bytes.
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

/// Samples [`rss`] every 10 ms until dropped; the peak growth over the
/// baseline taken at creation.
struct RssPeak {
    baseline: u64,
    peak: std::sync::Arc<std::sync::atomic::AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl RssPeak {
    fn start() -> Self {
        let baseline = rss();
        let peak = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(baseline));
        let seen = peak.clone();
        let task = tokio::spawn(async move {
            loop {
                seen.fetch_max(rss(), std::sync::atomic::Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        });
        Self {
            baseline,
            peak,
            task,
        }
    }

    fn growth(&self) -> u64 {
        self.peak
            .load(std::sync::atomic::Ordering::Relaxed)
            .saturating_sub(self.baseline)
    }
}

impl Drop for RssPeak {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn large_files_stream_in_bounded_memory(backend: Backend) {
    const CHUNK: usize = 1 << 20;
    const CHUNKS: usize = 200;
    const LIMIT: u64 = 64 << 20;
    let _one_at_a_time = LARGE.lock().await;
    let server = TestServer::start(backend, "files_large").await;
    let alice = server.user(1);
    let space = alice.personal_space;
    let file = id(0xf1);
    // Warm up allocator, TLS-free HTTP client and server paths on a small file.
    let r = Req::new(&server, &alice)
        .put(space, id(0xf0), vec![1u8; 3 * CHUNK])
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let _ = Req::new(&server, &alice)
        .get(space, id(0xf0))
        .await
        .bytes()
        .await
        .unwrap();

    let peak = RssPeak::start();
    let sent = std::sync::Arc::new(std::sync::Mutex::new(Sha256::new()));
    let hasher = sent.clone();
    let mut rng = ChaCha20Rng::seed_from_u64(200);
    let body = futures_util::stream::iter(0..CHUNKS).map(move |_| {
        let mut chunk = vec![0u8; CHUNK];
        rng.fill_bytes(&mut chunk);
        hasher.lock().unwrap().update(&chunk);
        Ok::<_, std::io::Error>(Bytes::from(chunk))
    });
    let started = Instant::now();
    let r = Req::new(&server, &alice)
        .put(space, file, reqwest::Body::wrap_stream(body))
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(json(r).await["size"], (CHUNK * CHUNKS) as u64);
    let uploaded = started.elapsed();
    let sent = sent.lock().unwrap().clone().finalize();

    let started = Instant::now();
    let r = Req::new(&server, &alice).get(space, file).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(&r, "content-length"), (CHUNK * CHUNKS).to_string());
    let mut received = Sha256::new();
    let mut len = 0usize;
    let mut stream = r.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.unwrap();
        len += chunk.len();
        received.update(&chunk);
    }
    let downloaded = started.elapsed();
    assert_eq!(len, CHUNK * CHUNKS);
    assert_eq!(received.finalize(), sent);

    // A range deep inside, read from the stored object.
    let r = Req::new(&server, &alice)
        .header(
            "Range",
            format!("bytes={}-{}", 150 * CHUNK, 150 * CHUNK + 9),
        )
        .get(space, file)
        .await;
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(r.bytes().await.unwrap().len(), 10);

    let growth = peak.growth();
    eprintln!(
        "200 MiB: upload {uploaded:?}, download {downloaded:?}, peak RSS growth {} MiB",
        growth >> 20
    );
    assert!(growth < LIMIT, "RSS grew by {} MiB", growth >> 20);
}

async fn files_count_against_the_storage_quota(backend: Backend) {
    let limits = Limits {
        storage_quota: Some(5000),
        ..Limits::default()
    };
    let server = TestServer::start_with(backend, "files_quota", limits).await;
    let alice = server.user(1);
    let space = alice.personal_space;
    let (mut ws, _) = server.client(&alice).await;
    push(&mut ws, space, None, vec![record(1, 0), record(2, 0)]).await;
    let r = Req::new(&server, &alice)
        .record(id(1))
        .put(space, id(0xf1), vec![1u8; 3000])
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    // 3000 bytes of file plus the records' blobs: another 3000 do not fit.
    let r = Req::new(&server, &alice)
        .record(id(2))
        .put(space, id(0xf2), vec![2u8; 3000])
        .await;
    refused(r, StatusCode::INSUFFICIENT_STORAGE, "quota_exceeded").await;
    let r = Req::new(&server, &alice).get(space, id(0xf2)).await;
    refused(r, StatusCode::NOT_FOUND, "not_found").await;
    eventually("the refused upload's object is gone", || {
        objects(&server).len() == 1
    })
    .await;
    // Deleting the record frees its file's bytes.
    push(&mut ws, space, None, vec![tombstone(1, 1)]).await;
    let r = Req::new(&server, &alice)
        .record(id(2))
        .put(space, id(0xf2), vec![2u8; 3000])
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
}

both_backends!(
    upload_and_download_round_trip,
    ranges_are_honoured,
    put_is_idempotent,
    racing_puts_store_one_file,
    the_size_limit_holds,
    key_and_record_headers_are_checked,
    rotation_covers_file_keys,
    uploads_notify_and_pull,
    deleting_a_record_deletes_its_files,
    orphaned_objects_are_swept,
    authorization_is_enforced,
    large_files_stream_in_bounded_memory,
    files_count_against_the_storage_quota,
);

/// With Postgres, an upload to instance A reaches a subscriber of instance
/// B through `LISTEN/NOTIFY`, which reads the file back at its cursor.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_on_one_instance_notifies_the_other() {
    let a = TestServer::start(Backend::Postgres, "files_fanout").await;
    let b = TestServer::start_on(a.store.clone(), a.issuer.clone(), Limits::default()).await;
    let alice = a.user(1);
    let space = alice.personal_space;
    let (mut on_b, _) = b.client(&alice).await;
    assert_eq!(cursor_of(&mut on_b, space, None).await, 0);
    let (mut pusher, _) = a.client(&alice).await;
    push(&mut pusher, space, None, vec![record(1, 0)]).await;
    let Notification::Sync(sync) = on_b.notification().await else {
        panic!()
    };
    assert_eq!(sync.cursor, 1);

    let r = Req::new(&a, &alice)
        .record(id(1))
        .put(space, id(0xf1), b"relayed".to_vec())
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let Notification::File(file) = on_b.notification().await else {
        panic!("expected a relayed file notification")
    };
    assert_eq!((file.space, file.prev, file.cursor), (space, 1, 2));
    assert_eq!(file.file.id, id(0xf1));
    assert_eq!(file.file.record, id(1));
    assert_eq!(file.file.size, 7);

    // And the record's deletion still relays as a plain sync.
    push(&mut pusher, space, None, vec![tombstone(1, 1)]).await;
    let Notification::Sync(sync) = on_b.notification().await else {
        panic!()
    };
    assert_eq!((sync.prev, sync.cursor), (2, 3));
    assert!(sync.records[0].blob.is_none());
}

/// moto's S3 server on a free local port, stopped on drop (installed by
/// `scripts/setup.sh` into `~/.cache/sealbase/venv`).
struct Moto {
    child: std::process::Child,
    endpoint: String,
}

impl Moto {
    async fn start() -> Moto {
        let bin = std::env::var_os("SEALBASE_MOTO_SERVER")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| {
                let home = std::env::var_os("HOME").expect("HOME");
                std::path::PathBuf::from(home).join(".cache/sealbase/venv/bin/moto_server")
            });
        assert!(
            bin.exists(),
            "{} is missing: run ./scripts/setup.sh (it installs moto's S3 server)",
            bin.display()
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = std::process::Command::new(&bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let moto = Moto {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        let start = Instant::now();
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "moto did not start"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        moto
    }

    /// Client settings for this server (moto takes any credentials).
    fn builder(&self) -> object_store::aws::AmazonS3Builder {
        object_store::aws::AmazonS3Builder::new()
            .with_endpoint(&self.endpoint)
            .with_allow_http(true)
            .with_region("us-east-1")
            .with_access_key_id("test")
            .with_secret_access_key("test")
    }

    async fn create_bucket(&self, bucket: &str) {
        let r = reqwest::Client::new()
            .put(format!("{}/{bucket}", self.endpoint))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{:?}", r.status());
    }

    /// Object paths under `prefix` in `bucket`.
    async fn objects(&self, bucket: &str, prefix: &str) -> Vec<String> {
        use object_store::ObjectStore;
        let s3 = self.builder().with_bucket_name(bucket).build().unwrap();
        let prefix = object_store::path::Path::from(prefix);
        s3.list(Some(&prefix))
            .map(|meta| meta.unwrap().location.to_string())
            .collect()
            .await
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// S3-compatible storage, against moto's S3 server: start-time checks,
/// multipart uploads, ranges, aborted uploads and deletion.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_storage() {
    use sealbase_sync::files::FileStorage;
    let moto = Moto::start().await;
    let bucket = "sealbase-test".to_owned();
    moto.create_bucket(&bucket).await;
    // A fresh prefix per run: this run's objects only.
    let prefix = format!(
        "run-{}",
        Uuid::from_u128(u128::from(now()) << 32 | u128::from(std::process::id())).simple()
    );

    // A bucket that does not exist fails the start-time check.
    let missing = FileStorage::s3_with("s3://sealbase-no-such-bucket", moto.builder()).unwrap();
    let err = missing.check().await.unwrap_err();
    eprintln!("missing bucket: {err}");
    assert!(FileStorage::s3("https://example.com/bucket").is_err());

    let files = FileStorage::s3_with(&format!("s3://{bucket}/{prefix}"), moto.builder()).unwrap();
    files.check().await.unwrap();
    let (store, _dir) = common::store(Backend::Sqlite, "files_s3").await;
    let issuer = sealbase_sync::testing::TestIssuer::generate("test-key-1").unwrap();
    let server =
        TestServer::start_with_files(store, issuer, Limits::default(), files, Vec::new()).await;
    let alice = server.user(1);
    let space = alice.personal_space;
    let (mut ws, _) = server.client(&alice).await;
    push(&mut ws, space, None, vec![record(1, 0)]).await;

    // 12 MiB: a multipart upload of three parts; and a small single put.
    let big = random_bytes(12, 12 << 20);
    let r = Req::new(&server, &alice)
        .record(id(1))
        .put(space, id(0xf1), big.clone())
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = Req::new(&server, &alice)
        .record(id(2))
        .put(space, id(0xf2), b"small".to_vec())
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(moto.objects(&bucket, &prefix).await.len(), 2);

    let r = Req::new(&server, &alice).get(space, id(0xf1)).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        Sha256::digest(r.bytes().await.unwrap()),
        Sha256::digest(&big)
    );
    let r = Req::new(&server, &alice)
        .header("Range", format!("bytes={}-{}", 11 << 20, (11 << 20) + 99))
        .get(space, id(0xf1))
        .await;
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        r.bytes().await.unwrap().as_ref(),
        &big[11 << 20..(11 << 20) + 100]
    );
    let r = Req::new(&server, &alice).get(space, id(0xf2)).await;
    assert_eq!(r.bytes().await.unwrap().as_ref(), b"small");

    // Too large mid-stream: the multipart upload is aborted, nothing listed.
    let limited = Limits {
        max_file_size: 6 << 20,
        ..Limits::default()
    };
    let (store, _dir2) = common::store(Backend::Sqlite, "files_s3_limit").await;
    let files =
        FileStorage::s3_with(&format!("s3://{bucket}/{prefix}-limit"), moto.builder()).unwrap();
    let small_server =
        TestServer::start_with_files(store, server.issuer.clone(), limited, files, Vec::new())
            .await;
    let chunks = futures_util::stream::iter(
        (0..8).map(|_| Ok::<_, std::io::Error>(Bytes::from(vec![7u8; 1 << 20]))),
    );
    let r = Req::new(&small_server, &alice)
        .put(space, id(0xf3), reqwest::Body::wrap_stream(chunks))
        .await;
    refused(r, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
    assert!(
        moto.objects(&bucket, &format!("{prefix}-limit"))
            .await
            .is_empty()
    );

    // Deleting the record deletes its object.
    push(&mut ws, space, None, vec![tombstone(1, 1)]).await;
    let start = Instant::now();
    while moto.objects(&bucket, &prefix).await.len() != 1 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "object not deleted"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    refused(
        Req::new(&server, &alice).get(space, id(0xf1)).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
}

/// Browser apps on another origin: listed origins get the preflight and
/// the headers they need to read; others get nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_for_listed_origins_only() {
    const APP: &str = "http://localhost:5173";
    let (store, _dir) = common::store(Backend::Sqlite, "files_cors").await;
    let dir = std::env::temp_dir().join(format!(
        "sealbase-sync-cors-{}-{}",
        std::process::id(),
        now()
    ));
    let files = sealbase_sync::files::FileStorage::local(&dir).unwrap();
    let issuer = sealbase_sync::testing::TestIssuer::generate("test-key-1").unwrap();
    let server =
        TestServer::start_with_files(store, issuer, Limits::default(), files, vec![APP.into()])
            .await;
    let alice = server.user(1);
    let space = alice.personal_space;
    let path = format!("/api/v1/spaces/{space}/files/{}", id(0xc0));
    let preflight = |origin: &'static str| {
        reqwest::Client::new()
            .request(reqwest::Method::OPTIONS, server.http(&path))
            .header("origin", origin)
            .header("access-control-request-method", "PUT")
            .header(
                "access-control-request-headers",
                "authorization, sealbase-file-key, sealbase-record",
            )
            .send()
    };
    let ok = preflight(APP).await.unwrap();
    assert_eq!(ok.status(), StatusCode::NO_CONTENT);
    assert_eq!(header(&ok, "access-control-allow-origin"), APP);
    assert!(header(&ok, "access-control-allow-methods").contains("PUT"));
    let allowed = header(&ok, "access-control-allow-headers");
    for h in [
        "authorization",
        "sealbase-file-key",
        "sealbase-record",
        "sealbase-capability",
        "range",
    ] {
        assert!(allowed.contains(h), "{h} in {allowed}");
    }
    assert!(
        ok.headers()
            .get("access-control-allow-credentials")
            .is_none()
    );
    let refused = preflight("http://evil.example").await.unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert!(
        refused
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );

    // The real requests carry the origin and expose the file headers.
    let r = Req::new(&server, &alice)
        .record(id(1))
        .header("origin", APP)
        .put(space, id(0xc0), b"body".to_vec())
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(header(&r, "access-control-allow-origin"), APP);
    let r = Req::new(&server, &alice)
        .header("origin", APP)
        .get(space, id(0xc0))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(&r, "access-control-allow-origin"), APP);
    let exposed = header(&r, "access-control-expose-headers");
    for h in [
        "sealbase-file-key",
        "sealbase-record",
        "sealbase-cursor",
        "etag",
        "content-range",
    ] {
        assert!(exposed.contains(h), "{h} in {exposed}");
    }
    // Another origin, no origin, and the operator routes: no CORS headers.
    let other = Req::new(&server, &alice)
        .header("origin", "http://evil.example")
        .get(space, id(0xc0))
        .await;
    assert!(other.headers().get("access-control-allow-origin").is_none());
    let plain = Req::new(&server, &alice).get(space, id(0xc0)).await;
    assert!(plain.headers().get("access-control-allow-origin").is_none());
    let health = reqwest::Client::new()
        .get(server.http("/health"))
        .header("origin", APP)
        .send()
        .await
        .unwrap();
    assert!(
        health
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    let _ = std::fs::remove_dir_all(&dir);
}
