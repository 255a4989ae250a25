//! Sync figures (docs/benchmarks.md): cold sync of 10k records from a real
//! sync server into an empty store (pull + decrypt + verify + merge +
//! index), and merge throughput without the network (open + verify +
//! merge, for new records and for records edited on both sides).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::{Device, Server, TempDir, User};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use sealbase_client::PERSONAL_EPOCH;
use sealbase_client::codec::{open_personal, seal_change};
use sealbase_client::native::SystemEnv;
use sealbase_db::{Db, RemoteRecord};
use sealbase_protocol::Uuid;
use serde_json::json;

const RECORDS: usize = 10_000;

fn cold_sync(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let user = User::new(42);
    let dir = TempDir::new("bench");
    let server = runtime.block_on(async {
        let server = Server::start().await;
        let a = Device::start(&server.url(), &server.issuer, &user, &dir.0.join("a.db"));
        a.handle
            .write(|db| {
                db.batch(|db| {
                    for n in 0..RECORDS {
                        db.insert(
                            "notes",
                            json!({"title": format!("note {n}"), "body": "some text to sync", "n": n}),
                        )?;
                    }
                    Ok(())
                })
            })
            .unwrap();
        a.settled().await;
        a.stop();
        server
    });

    let mut group = c.benchmark_group("sync");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(30));
    group.bench_function("cold sync 10k records", |b| {
        b.iter_custom(|iterations| {
            let mut total = Duration::ZERO;
            for i in 0..iterations {
                let path = dir.0.join(format!(
                    "cold-{i}-{}.db",
                    Instant::now().elapsed().as_nanos()
                ));
                let start = Instant::now();
                let device = Device::start(&server.url(), &server.issuer, &user, &path);
                runtime.block_on(async {
                    device
                        .wait("10k", |d| {
                            let s = d.status();
                            s.pulled == RECORDS as u64 && s.phase == sealbase_client::Phase::Live
                        })
                        .await;
                });
                total += start.elapsed();
                assert_eq!(device.count(), RECORDS as u64);
                device.stop();
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
                }
            }
            total
        });
    });
    group.finish();
}

/// 1000 sealed versions of new records, and the store they came from.
fn sealed(user: &User, space: &Uuid) -> (Db<SystemEnv>, Vec<sealbase_protocol::Change>) {
    let mut db = Db::open_in_memory(SystemEnv).unwrap();
    common::define(&mut db);
    db.batch(|db| {
        for n in 0..1000 {
            db.insert(
                "notes",
                json!({"title": format!("note {n}"), "body": "hello world", "n": n}),
            )?;
        }
        Ok(())
    })
    .unwrap();
    let keys = user.keys();
    let changes = db
        .pending(1000)
        .unwrap()
        .iter()
        .map(|p| seal(&keys, space, p))
        .collect();
    (db, changes)
}

fn apply(db: &mut Db<SystemEnv>, user: &User, space: &Uuid, changes: &[sealbase_protocol::Change]) {
    let keys = user.keys();
    let space_key = space.to_string();
    db.batch(|db| {
        for change in changes {
            let envelope = open_personal(
                &keys,
                space,
                &change.id,
                change.blob.as_ref().unwrap().as_slice(),
                change.dek.as_ref().unwrap(),
            )
            .unwrap();
            let id = change.id.to_string();
            db.merge_remote(&RemoteRecord {
                space: &space_key,
                id: &id,
                cursor: 1,
                collection: envelope.collection(),
                schema_version: envelope.schema_version(),
                doc: envelope.doc(),
                heads: envelope.heads(),
            })?;
        }
        Ok(())
    })
    .unwrap();
}

fn merge(c: &mut Criterion) {
    let user = User::new(43);
    let space = user.personal_space;
    let (_, fresh) = sealed(&user, &space);

    let mut group = c.benchmark_group("sync");
    group.sample_size(20);
    group.bench_function("open+verify+merge 1000 new records", |b| {
        b.iter_batched(
            || {
                let mut db = Db::open_in_memory(SystemEnv).unwrap();
                common::define(&mut db);
                db
            },
            |mut db| apply(&mut db, &user, &space, &fresh),
            BatchSize::PerIteration,
        );
    });

    // Both sides edited every record since they last synced: the remote
    // edit merges into a local document with its own unpushed change.
    let (mut origin, first) = sealed(&user, &space);
    let ids: Vec<String> = first.iter().map(|c| c.id.to_string()).collect();
    origin
        .batch(|db| {
            for p in db.pending(1000)? {
                db.mark_pushed(&p.id, p.seq, &space.to_string(), 1)?;
            }
            for id in &ids {
                db.patch("notes", id, json!({"title": "remote edit"}))?;
            }
            Ok(())
        })
        .unwrap();
    let keys = user.keys();
    let remote: Vec<sealbase_protocol::Change> = origin
        .pending(1000)
        .unwrap()
        .iter()
        .map(|p| seal(&keys, &space, p))
        .collect();
    group.bench_function("open+verify+merge 1000 concurrent edits", |b| {
        b.iter_batched(
            || {
                let mut db = Db::open_in_memory(SystemEnv).unwrap();
                common::define(&mut db);
                apply(&mut db, &user, &space, &first);
                db.batch(|db| {
                    for id in &ids {
                        db.patch("notes", id, json!({"body": "local edit"}))?;
                    }
                    Ok(())
                })
                .unwrap();
                db
            },
            |mut db| apply(&mut db, &user, &space, &remote),
            BatchSize::PerIteration,
        );
    });
    group.finish();
}

criterion_group!(benches, merge, cold_sync);
criterion_main!(benches);

/// Seals a pending personal record as the engine does.
fn seal(
    keys: &sealbase_client::SyncKeys,
    space: &Uuid,
    p: &sealbase_db::Pending,
) -> sealbase_protocol::Change {
    seal_change(
        keys.identity(),
        PERSONAL_EPOCH,
        keys.personal_epoch_key(),
        space,
        p,
    )
    .unwrap()
}
