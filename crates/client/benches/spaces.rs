//! Shared-space figures (docs/benchmarks.md), a bench binary rather than
//! criterion: each rotation changes the space, so every run is measured
//! once and reported.
//!
//! - Rotation of a space holding 10,000 records and 1,000 files: time of
//!   `rotate()` on the admin's device and the bytes its socket sent and
//!   received (every record and file key unwrapped, rewrapped and sent
//!   back, the new epoch key sealed to each member, the log entry).
//! - Invite-to-first-sync: from the admin's `invite()` call until the
//!   invitee's device holds the space's newest record (invitation
//!   delivered live, accept, subscribe, pull, decrypt, verify, merge).
//!
//! Run: `cargo bench -p sealbase-client --bench spaces` (`-- --quick` for
//! 1,000 records and 100 files).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::{Counting, Device, Server, TempDir, User, invitee, wait_status};
use sealbase_client::native::FileClient;
use sealbase_client::spaces::SpaceStatus;
use sealbase_crypto::capability::Capability;
use sealbase_protocol::Uuid;
use serde_json::json;

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (records, files) = if quick { (1_000, 100) } else { (10_000, 1_000) };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let server = Server::start().await;
        let dir = TempDir::new("bench-spaces");
        let (ada, bo, cy) = (User::new(1), User::new(2), User::new(3));
        let counting = Counting::default();
        let a = Device::start_through(
            &server.url(),
            &server.issuer,
            &ada,
            &dir.0.join("a.db"),
            3600,
            |_| {},
            counting.clone(),
        );
        let b = Device::start(&server.url(), &server.issuer, &bo, &dir.0.join("b.db"));
        a.settled().await;
        b.settled().await;

        // Rotation cost.
        let space = a.handle.create_space("Bench").await.unwrap();
        a.handle
            .invite(space, invitee(&bo, "bo"), Capability::Write)
            .await
            .unwrap();
        wait_status(&b, space, SpaceStatus::Invited).await;
        b.handle.accept(space).await.unwrap();
        let target = space.to_string();
        let ids: Vec<String> = a
            .handle
            .write(|db| {
                db.batch(|db| {
                    let mut ids = Vec::with_capacity(records);
                    for n in 0..records {
                        let v = db.insert(
                            "notes",
                            json!({"title": format!("note {n}"), "body": "shared text", "n": n}),
                        )?;
                        let id = v["id"].as_str().unwrap_or_default().to_owned();
                        db.assign_space(&id, &target)?;
                        ids.push(id);
                    }
                    Ok(ids)
                })
            })
            .unwrap();
        a.settled().await;
        let access = a.handle.file_access(space).await.unwrap();
        let http = FileClient::new();
        let started = Instant::now();
        for n in 0..files {
            let record = Uuid::parse_str(&ids[n % ids.len()]).unwrap();
            http.upload_bytes(&access, record, vec![n as u8; 1024])
                .await
                .unwrap();
        }
        eprintln!("uploaded {files} files in {:?}", started.elapsed());
        let (sent, received) = (
            counting.sent.load(Ordering::Relaxed),
            counting.received.load(Ordering::Relaxed),
        );
        let started = Instant::now();
        a.handle.rotate(space).await.unwrap();
        let took = started.elapsed();
        let sent = counting.sent.load(Ordering::Relaxed) - sent;
        let received = counting.received.load(Ordering::Relaxed) - received;
        println!(
            "rotation of {records} records + {files} files: {:.2} s, sent {:.2} MiB, received {:.2} MiB ({:.0} bytes sent per key)",
            took.as_secs_f64(),
            sent as f64 / 1048576.0,
            received as f64 / 1048576.0,
            sent as f64 / (records + files) as f64
        );

        // Invite-to-first-sync, median of 10 spaces of 100 records each.
        let c = Device::start(&server.url(), &server.issuer, &cy, &dir.0.join("c.db"));
        c.settled().await;
        let mut samples = Vec::new();
        for round in 0..10 {
            let space = a.handle.create_space(&format!("Round {round}")).await.unwrap();
            let target = space.to_string();
            let last = a
                .handle
                .write(|db| {
                    db.batch(|db| {
                        let mut last = String::new();
                        for n in 0..100 {
                            let v = db.insert("notes", json!({"title": format!("r{round} {n}")}))?;
                            last = v["id"].as_str().unwrap_or_default().to_owned();
                            db.assign_space(&last, &target)?;
                        }
                        Ok(last)
                    })
                })
                .unwrap();
            a.settled().await;
            let started = Instant::now();
            a.handle
                .invite(space, invitee(&cy, "cy"), Capability::Write)
                .await
                .unwrap();
            wait_status(&c, space, SpaceStatus::Invited).await;
            c.handle.accept(space).await.unwrap();
            c.wait("the space's newest record", |d| d.get(&last).is_some())
                .await;
            samples.push(started.elapsed());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        samples.sort();
        println!(
            "invite to first sync (100 records): median {:.1} ms, max {:.1} ms (10 spaces)",
            samples[samples.len() / 2].as_secs_f64() * 1000.0,
            samples[samples.len() - 1].as_secs_f64() * 1000.0
        );
    });
}
