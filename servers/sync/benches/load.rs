//! Load generator for the sync server: `just bench-sync` (or
//! `cargo bench -p sealbase-sync --bench load -- [sqlite|postgres] [--quick]`).
//!
//! It starts the real `sealbase-sync` binary (release build) as a child
//! process on a fresh database, drives it over real WebSockets from this
//! process and prints one line per figure. The server is a separate process
//! so its memory can be read from `/proc/PID/status`; client and server
//! still share the machine's two cores, as in the upstream measurements the
//! goals in the sync server issue compare against.
//!
//! After the notification figures it prints the machine's floor for the
//! same deliveries: the same number of loopback connections and bytes per
//! frame, written by plain threads with no server in between
//! (`support/epoll.rs`). A machine whose floor is above a goal cannot show
//! any server meeting it.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    unreachable_pub
)]

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "support/epoll.rs"]
mod epoll;

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{Client, Incoming, User};
use futures_util::StreamExt;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use sealbase_crypto::Identity;
use sealbase_protocol::{
    CallResult, Change, Frame, Notification, PullChunk, PullParams, PullSpace, PushParams,
    PushResult, Uuid, WrappedKey,
};
use sealbase_sync::testing::TestIssuer;
use tokio::sync::Notify;
use tokio_tungstenite::MaybeTlsStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::FrameHeader;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};

/// The driver allocates like the server does (see `src/main.rs`), so the
/// two cores it shares with the server are not spent in malloc's locks.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Server {
    child: Child,
    addr: String,
    issuer: TestIssuer,
    _dir: common::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    async fn start(backend: &str) -> Server {
        let dir = std::env::temp_dir().join(format!("sealbase-sync-load-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let issuer = TestIssuer::generate("load-key").unwrap();
        let jwks = dir.join("jwks.json");
        std::fs::write(&jwks, issuer.jwks_json()).unwrap();
        let url = match backend {
            "sqlite" => format!("sqlite://{}/sync.db", dir.display()),
            _ => sealbase_pgtest::database("load").url(),
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        let config = issuer.verifier_config();
        let child = Command::new(env!("CARGO_BIN_EXE_sealbase-sync"))
            .args(["serve", "--listen", &addr, "--database-url", &url])
            .args(["--issuer", &config.issuer])
            .arg("--jwks-file")
            .arg(&jwks)
            .arg("--files-dir")
            .arg(dir.join("files"))
            .args(["--queue-frames", "4096", "--sockets-per-user", "10000"])
            // The load generator pushes far faster than any one app would.
            .args(["--push-rate", "10000"])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let server = Server {
            child,
            addr,
            issuer,
            _dir: common::TempDir::new(dir),
        };
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(&server.addr).await.is_ok() {
                return server;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("sealbase-sync did not start");
    }

    fn url(&self) -> String {
        format!("ws://{}{}", self.addr, sealbase_protocol::WS_PATH)
    }

    async fn client(&self, user: &User) -> Client {
        let mut c = Client::connect(&self.url()).await;
        c.auth(&common::mint(&self.issuer, user, common::now() + 3600))
            .await
            .unwrap();
        c
    }

    /// Resident memory of the server process, in KiB.
    fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn user(seed: u64) -> User {
    User {
        id: Uuid::from_u128(u128::from(seed) << 64 | 1),
        personal_space: Uuid::from_u128(u128::from(seed) << 64 | 2),
        identity: Identity::generate(&mut ChaCha20Rng::seed_from_u64(seed)),
    }
}

fn batch(first: u64, n: u64, blob: &[u8]) -> Vec<Change> {
    (first..first + n)
        .map(|i| Change {
            id: Uuid::from_u128(u128::from(i) + 1),
            blob: Some(blob.to_vec().into()),
            dek: Some(WrappedKey::from([1u8; 44])),
            expected_cursor: 0,
        })
        .collect()
}

async fn push(c: &mut Client, space: Uuid, changes: Vec<Change>) -> (u64, u64) {
    match c
        .call(PushParams {
            space,
            cap: None,
            changes,
        })
        .await
        .unwrap()
    {
        CallResult::Push(PushResult::Applied { prev, cursor }) => (prev, cursor),
        other => panic!("push failed: {other:?}"),
    }
}

/// Records/s pushing 1 KiB blobs in batches of 100 from `clients` clients,
/// each into its own user's personal space, and the CPU per record.
async fn push_throughput(server: &Server, clients: u64, batches: u64, seed: u64) -> (f64, Cpu) {
    let blob = vec![0x5au8; 1024];
    let mut conns = Vec::new();
    for i in 0..clients {
        let u = user(seed + i);
        let c = server.client(&u).await;
        conns.push((c, u.personal_space));
    }
    let server_pid = server.child.id().to_string();
    let (server_cpu, driver_cpu) = (cpu_seconds(&server_pid), own_cpu_seconds());
    let started = Instant::now();
    let tasks: Vec<_> = conns
        .into_iter()
        .map(|(mut c, space)| {
            let blob = blob.clone();
            tokio::spawn(async move {
                for b in 0..batches {
                    push(&mut c, space, batch(b * 100, 100, &blob)).await;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let records = (clients * batches * 100) as f64;
    let rate = records / started.elapsed().as_secs_f64();
    let cpu = Cpu {
        server_us: (cpu_seconds(&server_pid) - server_cpu) * 1e6 / records,
        driver_us: (own_cpu_seconds() - driver_cpu) * 1e6 / records,
    };
    (rate, cpu)
}

/// (records/s, time to first record, CPU per record) pulling `n` records
/// from cursor 0: the medians of `runs` pulls of the same space, and the CPU
/// over all of them.
async fn pull_from_zero(server: &Server, n: u64, runs: usize) -> (f64, Duration, Cpu) {
    let u = user(2000);
    let mut c = server.client(&u).await;
    let blob = vec![0x5au8; 1024];
    for b in 0..n / 500 {
        push(&mut c, u.personal_space, batch(b * 500, 500, &blob)).await;
    }
    let mut rates = Vec::new();
    let mut firsts = Vec::new();
    let server_pid = server.child.id().to_string();
    let (server_cpu, driver_cpu) = (cpu_seconds(&server_pid), own_cpu_seconds());
    for _ in 0..runs {
        let started = Instant::now();
        let id = c
            .send(PullParams {
                spaces: vec![PullSpace {
                    id: u.personal_space,
                    since: 0,
                    cap: None,
                }],
            })
            .await;
        let mut first = None;
        let mut records = 0u64;
        loop {
            match c.next().await {
                Incoming::Chunk(i, PullChunk::Record(_)) if i == id => {
                    first.get_or_insert_with(|| started.elapsed());
                    records += 1;
                }
                Incoming::Response(r) if r.id == id => break,
                _ => {}
            }
        }
        assert_eq!(records, n);
        rates.push(n as f64 / started.elapsed().as_secs_f64());
        firsts.push(first.unwrap_or_default());
    }
    let records = (n * runs as u64) as f64;
    let cpu = Cpu {
        server_us: (cpu_seconds(&server_pid) - server_cpu) * 1e6 / records,
        driver_us: (own_cpu_seconds() - driver_cpu) * 1e6 / records,
    };
    rates.sort_by(f64::total_cmp);
    firsts.sort();
    (rates[runs / 2], firsts[runs / 2], cpu)
}

/// How the notification scenario's subscribers read their sockets.
#[derive(Clone, Copy, PartialEq)]
enum Readers {
    /// A tokio task per subscriber reading through tokio-tungstenite, as a
    /// Rust client on a device would.
    Tasks,
    /// Two threads on `epoll` reading every subscriber's socket
    /// (`support/epoll.rs`): the least driver CPU per delivery, so the two
    /// shared cores go to the server.
    Epoll,
}

/// p50 and p99 of push → `sync` arrival across `subscribers` connections.
///
/// Every subscriber's frames are decoded (WebSocket, then CBOR) and each
/// `sync` is checked to carry the next cursor. The writer waits for the
/// last subscriber of one push before the next push, woken once per push:
/// the arrivals themselves wake nobody, so the driver spends its CPU on the
/// sockets, not on reporting.
async fn notification_latency(
    server: &Server,
    subscribers: usize,
    pushes: u64,
    readers: Readers,
) -> Notified {
    let u = user(3000 + subscribers as u64 + 10_000 * u64::from(readers == Readers::Epoll));
    let space = u.personal_space;
    let rounds = pushes as usize;
    let mut clients = Vec::with_capacity(subscribers);
    for _ in 0..subscribers {
        let mut c = server.client(&u).await;
        c.subscribe(space, None).await;
        clients.push(c);
    }
    let frame_len = Arc::new(AtomicUsize::new(0));
    let tasks = Arc::new(Arrivals::default());
    let threads = Arc::new(epoll::Delivered::default());
    let (mut task_readers, mut thread_readers) = (Vec::new(), Vec::new());
    match readers {
        Readers::Tasks => {
            for mut c in clients {
                let (arrived, frame_len) = (tasks.clone(), frame_len.clone());
                task_readers.push(tokio::spawn(async move {
                    let mut at = Vec::with_capacity(rounds);
                    while at.len() < rounds {
                        let msg = c.ws.next().await.expect("socket closed").unwrap();
                        let Message::Binary(bytes) = msg else {
                            continue;
                        };
                        if let Some(cursor) = sync_cursor(&bytes) {
                            at.push(Instant::now());
                            frame_len.store(ws_frame_len(bytes.len()), Ordering::Relaxed);
                            assert_eq!(cursor, at.len() as u64, "a sync per push, in order");
                            arrived.one(subscribers);
                        }
                    }
                    at
                }));
            }
        }
        Readers::Epoll => {
            // The handshake, auth and subscribe went through tungstenite;
            // nothing has been sent since, so its buffers are empty and the
            // socket is taken over as it is.
            let sockets = clients
                .into_iter()
                .map(|c| match c.ws.into_inner() {
                    MaybeTlsStream::Plain(s) => s.into_std().unwrap(),
                    _ => unreachable!("the load generator connects without TLS"),
                })
                .collect();
            let frame_len = frame_len.clone();
            let mut cursors = vec![0u64; subscribers];
            let parse = move |socket: usize, pending: &mut Vec<u8>| {
                let mut arrived = 0;
                while let Some((header, start, end)) = ws_frame(pending) {
                    if header.opcode == OpCode::Data(Data::Binary)
                        && let Some(cursor) = sync_cursor(&pending[start..end])
                    {
                        cursors[socket] += 1;
                        assert_eq!(cursor, cursors[socket], "a sync per push, in order");
                        frame_len.store(end, Ordering::Relaxed);
                        arrived += 1;
                    }
                    pending.drain(..end);
                }
                arrived
            };
            thread_readers = epoll::read_rounds(sockets, 2, rounds, &threads, parse);
        }
    }
    let mut writer = server.client(&u).await;
    let blob = vec![0x5au8; 1024];
    let mut sent = Vec::new();
    let server_pid = server.child.id().to_string();
    let (server_cpu, driver_cpu) = (cpu_seconds(&server_pid), own_cpu_seconds());
    for p in 0..pushes {
        let waiting = tasks.all.notified();
        sent.push(Instant::now());
        push(&mut writer, space, batch(p * 10, 1, &blob)).await;
        // Every subscriber receives this push's notification before the
        // next push.
        match readers {
            Readers::Tasks => tokio::time::timeout(Duration::from_secs(10), waiting)
                .await
                .expect("not every subscriber got the sync within 10 s"),
            Readers::Epoll => tokio::task::block_in_place(|| {
                threads.wait_for(subscribers * (p as usize + 1));
            }),
        }
    }
    let deliveries = (pushes * subscribers as u64) as f64;
    let cpu = Cpu {
        server_us: (cpu_seconds(&server_pid) - server_cpu) * 1e6 / deliveries,
        driver_us: (own_cpu_seconds() - driver_cpu) * 1e6 / deliveries,
    };
    let arrivals = match readers {
        Readers::Tasks => {
            let mut all = Vec::new();
            for r in task_readers {
                all.push(r.await.unwrap());
            }
            all
        }
        Readers::Epoll => epoll::join_rounds(thread_readers),
    };
    let mut samples = Vec::new();
    let mut last = vec![Duration::ZERO; sent.len()];
    for at in arrivals {
        for (i, (at, sent)) in at.iter().zip(&sent).enumerate() {
            let latency = at.duration_since(*sent);
            samples.push(latency);
            last[i] = last[i].max(latency);
        }
    }
    samples.sort();
    last.sort();
    let pick = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize];
    Notified {
        p50: pick(0.5),
        p99: pick(0.99),
        last_p50: last[last.len() / 2],
        cpu,
        frame_len: frame_len.load(Ordering::Relaxed),
    }
}

/// The cursor of a `sync` notification frame; `None` for any other frame.
fn sync_cursor(frame: &[u8]) -> Option<u64> {
    let Frame::Notification(n) = sealbase_protocol::decode(frame).unwrap() else {
        return None;
    };
    match Notification::from_raw(&n).unwrap() {
        Notification::Sync(sync) => Some(sync.cursor),
        _ => None,
    }
}

/// The first complete WebSocket frame in `bytes`: its header and where its
/// payload starts and ends. Frames from a server are not masked.
fn ws_frame(bytes: &[u8]) -> Option<(FrameHeader, usize, usize)> {
    let mut cursor = std::io::Cursor::new(bytes);
    let (header, len) = FrameHeader::parse(&mut cursor).unwrap()?;
    assert!(
        header.mask.is_none() && header.is_final,
        "one unmasked frame per message"
    );
    let start = cursor.position() as usize;
    let end = start + usize::try_from(len).unwrap();
    (end <= bytes.len()).then_some((header, start, end))
}

/// What the notification scenario measured.
struct Notified {
    p50: Duration,
    p99: Duration,
    /// The median over pushes of the push's last delivery.
    last_p50: Duration,
    cpu: Cpu,
    /// Bytes on the wire of one `sync` notification (WebSocket header and
    /// CBOR frame).
    frame_len: usize,
}

/// Length of a server-to-client (unmasked) WebSocket binary frame carrying
/// `payload` bytes (RFC 6455 §5.2).
fn ws_frame_len(payload: usize) -> usize {
    payload
        + match payload {
            0..=125 => 2,
            126..=65535 => 4,
            _ => 10,
        }
}

/// Counts the subscribers that received the current push's `sync`; the
/// last one wakes the writer.
#[derive(Default)]
struct Arrivals {
    count: AtomicUsize,
    all: Notify,
}

impl Arrivals {
    fn one(&self, subscribers: usize) {
        if (self.count.fetch_add(1, Ordering::AcqRel) + 1).is_multiple_of(subscribers) {
            self.all.notify_one();
        }
    }
}

/// CPU time per item (a delivered notification, a pushed or pulled
/// record), in the server and in this driver.
struct Cpu {
    server_us: f64,
    driver_us: f64,
}

/// CPU seconds of this process so far.
fn own_cpu_seconds() -> f64 {
    cpu_seconds("self")
}

/// User + system CPU seconds of process `pid` (all its threads) so far.
fn cpu_seconds(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the parenthesised command name; utime and stime are the
    // 14th and 15th of the line, in USER_HZ (100 per second on Linux).
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    ticks as f64 / 100.0
}

/// Server RSS growth per idle authenticated socket, in KiB.
async fn idle_memory(server: &Server, sockets: usize) -> f64 {
    let u = user(4000);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = server.rss_kib();
    let mut conns = Vec::new();
    for _ in 0..sockets {
        conns.push(server.client(&u).await);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = server.rss_kib();
    drop(conns);
    (after.saturating_sub(before)) as f64 / sockets as f64
}

/// Server memory each subscriber still holds (KiB) once one `sync`
/// notification of a 2 MiB record has reached `subscribers` sockets: what a
/// large frame leaves behind in a connection's write path.
async fn memory_after_large_notification(server: &Server, subscribers: usize) -> f64 {
    let u = user(5000);
    let space = u.personal_space;
    let mut readers = Vec::new();
    for _ in 0..subscribers {
        let mut c = server.client(&u).await;
        c.subscribe(space, None).await;
        readers.push(c);
    }
    let mut writer = server.client(&u).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = server.rss_kib();
    push(&mut writer, space, batch(0, 1, &vec![0x5au8; 2 << 20])).await;
    let tasks: Vec<_> = readers
        .into_iter()
        .map(|mut c| {
            tokio::spawn(async move {
                loop {
                    let msg = c.ws.next().await.expect("socket closed").unwrap();
                    if let Message::Binary(bytes) = &msg
                        && sync_cursor(bytes).is_some()
                    {
                        return c;
                    }
                }
            })
        })
        .collect();
    let mut readers = Vec::new();
    for t in tasks {
        readers.push(t.await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = server.rss_kib();
    drop(readers);
    after.saturating_sub(before) as f64 / subscribers as f64
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let mut backends: Vec<&str> = ["sqlite", "postgres"]
        .into_iter()
        .filter(|b| args.iter().any(|a| a == b))
        .collect();
    if backends.is_empty() {
        backends = vec!["sqlite", "postgres"];
    }
    // `--only push|pull|notify|memory` runs one scenario (e.g. under a
    // profiler).
    let only = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1))
        .cloned();
    let run = |name: &str| only.as_deref().is_none_or(|o| o == name);
    // The value after `flag`, a number.
    let number = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .map(|n| {
                n.parse::<usize>()
                    .unwrap_or_else(|_| panic!("{flag} takes a number"))
            })
    };
    // `--pull-runs N` repeats the pull N times (default 5; more for a
    // profile in which the pulls outweigh filling the space).
    let pull_runs = number("--pull-runs").unwrap_or(5);
    // `--subscribers N` and `--pushes N` replace the notification
    // scenario's 100 and 1,000 subscribers and its 50 pushes.
    let subscriber_counts = number("--subscribers").map_or(vec![100, 1000], |n| vec![n]);
    // `--readers epoll` has the notification scenario's subscribers read
    // on two epoll threads instead of a tokio task each (`--readers both`
    // runs both); without it, the tasks, then the floor.
    let readers_flag = args
        .iter()
        .position(|a| a == "--readers")
        .and_then(|i| args.get(i + 1))
        .cloned();
    let readers_wanted = |name: &str| match readers_flag.as_deref() {
        None => name == "tasks",
        Some("both") => true,
        Some(r) => r == name,
    };
    let scale: u64 = if quick { 10 } else { 1 };
    let uscale = scale as usize;
    for backend in backends {
        println!("== {backend}");
        // Memory first, on a fresh process, before other scenarios leave
        // freed-but-retained heap behind.
        for sockets in [1000usize, 5000] {
            if !run("memory") {
                break;
            }
            let server = Server::start(backend).await;
            let per = idle_memory(&server, sockets / uscale).await;
            println!(
                "idle memory, {} authenticated sockets: {per:.1} KiB per socket",
                sockets / uscale
            );
        }
        if run("memory") {
            let server = Server::start(backend).await;
            let subscribers = 200 / uscale;
            let per = memory_after_large_notification(&server, subscribers).await;
            println!(
                "memory kept after one 2 MiB notification to {subscribers} subscribers: \
                 {per:.1} KiB per subscriber"
            );
        }
        let server = Server::start(backend).await;
        if run("push") {
            for (clients, batches, seed) in [(1, 200, 1000), (16, 50, 1100)] {
                let (rate, cpu) = push_throughput(&server, clients, batches / scale, seed).await;
                println!(
                    "push, {clients} client{}, 100 x 1 KiB per batch: {rate:.0} records/s \
                     (CPU per record: server {:.2} us, driver {:.2} us)",
                    if clients == 1 { "" } else { "s" },
                    cpu.server_us,
                    cpu.driver_us,
                );
            }
        }
        if run("pull") {
            let (rate, first, cpu) = pull_from_zero(&server, 20_000 / scale, pull_runs).await;
            println!(
                "pull from 0 of {} records (median of {pull_runs}): {rate:.0} records/s, \
                 first record after {:.2} ms (CPU per record: server {:.2} us, driver {:.2} us)",
                20_000 / scale,
                first.as_secs_f64() * 1e3,
                cpu.server_us,
                cpu.driver_us,
            );
        }
        for &subscribers in &subscriber_counts {
            if !run("notify") {
                break;
            }
            let pushes = number("--pushes").map_or(50 / scale, |n| n as u64);
            let mut frame_len = 0;
            for (readers, name) in [(Readers::Tasks, "tasks"), (Readers::Epoll, "epoll")] {
                if !readers_wanted(name) {
                    continue;
                }
                let n = notification_latency(&server, subscribers / uscale, pushes, readers).await;
                println!(
                    "push -> sync notification, {} subscribers ({name}): p50 {:.2} ms, \
                     p99 {:.2} ms, last of a push {:.2} ms (median) \
                     (CPU per delivery: server {:.1} us, driver {:.1} us)",
                    subscribers / uscale,
                    ms(n.p50),
                    ms(n.p99),
                    ms(n.last_p50),
                    n.cpu.server_us,
                    n.cpu.driver_us,
                );
                frame_len = n.frame_len;
            }
            // The same deliveries with no server: the machine's floor.
            for (writers, readers) in [(1, 2), (2, 2)] {
                if readers_flag.as_deref() == Some("epoll") {
                    break;
                }
                let f = epoll::floor(
                    subscribers / uscale,
                    pushes as usize,
                    frame_len,
                    writers,
                    readers,
                    own_cpu_seconds,
                );
                println!(
                    "  floor ({writers} writer / {readers} reader threads, {frame_len} bytes): \
                     p50 {:.2} ms, p99 {:.2} ms (CPU per delivery {:.1} us)",
                    ms(f.p50),
                    ms(f.p99),
                    f.cpu_us
                );
            }
        }
    }
}
