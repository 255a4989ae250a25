//! Local store figures (criterion): put and patch of one record, an indexed
//! query and an unindexed scan over 100,000 records. Figures:
//! docs/benchmarks.md.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

#[path = "../tests/common/mod.rs"]
mod common;

use common::TestEnv;
use criterion::{Criterion, criterion_group, criterion_main};
use sealbase_db::{Db, Direction, Query};
use serde_json::json;

const N: usize = 100_000;

fn store() -> Db<TestEnv> {
    let mut db = Db::open_in_memory(TestEnv::new(0, 1)).unwrap();
    db.define(
        serde_json::from_value(json!({
            "name": "todos", "version": 1,
            "fields": {
                "title": {"type": "string"}, "done": {"type": "boolean"},
                "owner": {"type": "string"}, "priority": {"type": "integer"}
            },
            "indexes": [{"fields": ["owner", "priority"]}]
        }))
        .unwrap(),
    )
    .unwrap();
    db
}

fn bench(c: &mut Criterion) {
    let mut db = store();
    let started = std::time::Instant::now();
    let mut ids = Vec::new();
    for i in 0..N {
        let r = db
            .insert(
                "todos",
                json!({"title": format!("task {i}"), "done": i.is_multiple_of(3),
                "owner": format!("user{}", i % 1000), "priority": (i % 5) as i64}),
            )
            .unwrap();
        if i.is_multiple_of(100) {
            ids.push(r["id"].as_str().unwrap().to_owned());
        }
    }
    eprintln!(
        "filled {N} records in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let mut g = c.benchmark_group("db");
    g.bench_function("insert one record", |b| {
        b.iter(|| {
            db.insert(
                "todos",
                json!({"title": "x", "done": false, "owner": "zed", "priority": 1}),
            )
            .unwrap()
        })
    });
    // Patches spread over 1,000 records (each record's document grows with
    // its history; one record patched thousands of times costs more).
    let mut turn = 0usize;
    g.bench_function("patch one field", |b| {
        b.iter(|| {
            turn += 1;
            let id = &ids[turn % ids.len()];
            db.patch("todos", id, json!({"done": turn.is_multiple_of(2)}))
                .unwrap()
        })
    });
    let indexed = Query {
        filter: json!({"owner": "user42", "priority": {"$gte": 2}}),
        sort: vec![("priority".into(), Direction::Desc)],
        ..Query::default()
    };
    g.bench_function("indexed query at 100k (60 hits)", |b| {
        b.iter(|| db.find("todos", &indexed).unwrap())
    });
    let scan = Query {
        filter: json!({"title": "task 99999"}),
        ..Query::default()
    };
    g.bench_function("unindexed scan at 100k", |b| {
        b.iter(|| db.find("todos", &scan).unwrap())
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = bench
}
criterion_main!(benches);
