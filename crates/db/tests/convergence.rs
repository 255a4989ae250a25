//! Convergence: three replicas of one record take random concurrent edits
//! and exchange documents in random orders; once everyone has heard from
//! everyone, all three hold the same record, and every text insertion any
//! replica made is in it (nothing acknowledged is lost).
#![cfg(not(target_arch = "wasm32"))]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::TestEnv;
use proptest::prelude::*;
use sealbase_db::Db;
use serde_json::{Value, json};

fn replica(seed: u64) -> Db<TestEnv> {
    let mut db = Db::open_in_memory(TestEnv::new(1_000, seed)).unwrap();
    db.define(
        serde_json::from_value(json!({
            "name": "notes", "version": 1,
            "fields": {
                "title": {"type": "string"},
                "done": {"type": "boolean"},
                "priority": {"type": "integer", "optional": true},
                "body": {"type": "text"},
                "meta": {"type": "object", "optional": true, "fields": {
                    "a": {"type": "integer", "optional": true},
                    "b": {"type": "integer", "optional": true}}}
            }
        }))
        .unwrap(),
    )
    .unwrap();
    db
}

#[derive(Debug, Clone)]
enum Op {
    /// Insert a unique marker into the text at a relative position.
    Type {
        at: usize,
        where_: f64,
    },
    /// Set a scalar field.
    Title {
        at: usize,
        value: u8,
    },
    Done {
        at: usize,
        value: bool,
    },
    Priority {
        at: usize,
        value: Option<i64>,
    },
    /// Set one key of the nested object.
    Meta {
        at: usize,
        key_a: bool,
        value: i64,
    },
    /// Send replica `from`'s document to replica `to`.
    Sync {
        from: usize,
        to: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..3usize, 0.0..1.0f64).prop_map(|(at, where_)| Op::Type { at, where_ }),
        1 => (0..3usize, any::<u8>()).prop_map(|(at, value)| Op::Title { at, value }),
        1 => (0..3usize, any::<bool>()).prop_map(|(at, value)| Op::Done { at, value }),
        1 => (0..3usize, proptest::option::of(-5i64..5)).prop_map(|(at, value)| Op::Priority { at, value }),
        1 => (0..3usize, any::<bool>(), -5i64..5).prop_map(|(at, key_a, value)| Op::Meta { at, key_a, value }),
        3 => (0..3usize, 0..3usize).prop_map(|(from, to)| Op::Sync { from, to }),
    ]
}

fn without_local_fields(mut v: Value) -> Value {
    let map = v.as_object_mut().unwrap();
    map.remove("createdAt");
    map.remove("updatedAt");
    v
}

fn sync(replicas: &mut [Db<TestEnv>], from: usize, to: usize, id: &str) {
    if from == to {
        return;
    }
    let doc = replicas[from].document("notes", id).unwrap().unwrap();
    replicas[to].merge("notes", id, &doc, 1).unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

    #[test]
    fn replicas_converge_and_keep_every_insertion(ops in proptest::collection::vec(op(), 1..24)) {
        let mut replicas = vec![replica(1), replica(2), replica(3)];
        let created = replicas[0].insert("notes", json!({"title": "t", "done": false, "body": "start"})).unwrap();
        let id = created["id"].as_str().unwrap().to_owned();
        sync(&mut replicas, 0, 1, &id);
        sync(&mut replicas, 0, 2, &id);
        let mut markers = Vec::new();
        for (n, op) in ops.iter().enumerate() {
            match *op {
                Op::Type { at, where_ } => {
                    let record = replicas[at].get("notes", &id).unwrap().unwrap();
                    let body: Vec<char> = record["body"].as_str().unwrap().chars().collect();
                    // Only between markers, so one insertion never splits another.
                    let mut safe = vec![0];
                    let mut inside = false;
                    for (i, c) in body.iter().enumerate() {
                        match c {
                            '<' => inside = true,
                            '>' => inside = false,
                            _ => {}
                        }
                        if !inside {
                            safe.push(i + 1);
                        }
                    }
                    let pos = safe[((safe.len() as f64) * where_) as usize % safe.len()];
                    let marker = format!("<{n}>");
                    let mut next: String = body[..pos].iter().collect();
                    next.push_str(&marker);
                    next.extend(&body[pos..]);
                    replicas[at].patch("notes", &id, json!({"body": next})).unwrap();
                    markers.push(marker);
                }
                Op::Title { at, value } => {
                    replicas[at].patch("notes", &id, json!({"title": format!("t{value}")})).unwrap();
                }
                Op::Done { at, value } => {
                    replicas[at].patch("notes", &id, json!({"done": value})).unwrap();
                }
                Op::Priority { at, value } => {
                    replicas[at].patch("notes", &id, json!({"priority": value})).unwrap();
                }
                Op::Meta { at, key_a, value } => {
                    let record = replicas[at].get("notes", &id).unwrap().unwrap();
                    let mut meta = record.get("meta").cloned().unwrap_or_else(|| json!({}));
                    meta[if key_a { "a" } else { "b" }] = json!(value);
                    replicas[at].patch("notes", &id, json!({"meta": meta})).unwrap();
                }
                Op::Sync { from, to } => sync(&mut replicas, from, to, &id),
            }
        }
        // Everyone hears from everyone (twice round, so relayed changes arrive).
        for _ in 0..2 {
            for from in 0..3 {
                for to in 0..3 {
                    sync(&mut replicas, from, to, &id);
                }
            }
        }
        let states: Vec<Value> = replicas
            .iter()
            .map(|r| without_local_fields(r.get("notes", &id).unwrap().unwrap()))
            .collect();
        prop_assert_eq!(&states[0], &states[1]);
        prop_assert_eq!(&states[1], &states[2]);
        let body = states[0]["body"].as_str().unwrap();
        for marker in &markers {
            prop_assert!(body.contains(marker.as_str()), "lost {} in {}", marker, body);
        }
    }
}
