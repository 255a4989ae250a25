//! The store end to end on SQLite: validation, writes, every filter
//! operator, sorting, paging, counting, index use and uniqueness.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::TestEnv;
use sealbase_db::{Db, DbError, Direction, Query, SchemaError};
use serde_json::{Value, json};

fn db() -> Db<TestEnv> {
    let mut db = Db::open_in_memory(TestEnv::new(1_000, 7)).unwrap();
    db.define(
        serde_json::from_value(json!({
            "name": "todos", "version": 1,
            "fields": {
                "title": {"type": "string"},
                "done": {"type": "boolean"},
                "priority": {"type": "integer", "optional": true},
                "score": {"type": "number", "optional": true},
                "notes": {"type": "text", "optional": true},
                "tags": {"type": "array", "items": {"type": "string"}, "optional": true},
                "meta": {"type": "object", "optional": true, "fields": {
                    "owner": {"type": "string"}, "due": {"type": "date", "optional": true}}},
                "slug": {"type": "string", "optional": true}
            },
            "indexes": [
                {"fields": ["done", "priority"]},
                {"fields": ["meta.owner"]},
                {"fields": ["slug"], "unique": true}
            ]
        }))
        .unwrap(),
    )
    .unwrap();
    db
}

fn seed(db: &mut Db<TestEnv>) -> Vec<Value> {
    let rows = [
        json!({"title": "buy milk", "done": false, "priority": 2, "score": 1.5, "tags": ["home", "shop"], "meta": {"owner": "ann"}}),
        json!({"title": "write report", "done": true, "priority": 1, "score": 9.0, "tags": ["work"], "meta": {"owner": "bob", "due": 5}}),
        json!({"title": "call mom", "done": false, "priority": 3, "tags": [], "notes": "ask about Sunday"}),
        json!({"title": "Fix bike", "done": false, "tags": ["home"], "meta": {"owner": "ann"}}),
        json!({"title": "pay rent", "done": true, "priority": 2, "score": -3.0}),
    ];
    rows.into_iter()
        .map(|r| db.insert("todos", r).unwrap())
        .collect()
}

fn titles(db: &Db<TestEnv>, filter: Value) -> Vec<String> {
    let q = Query {
        filter,
        sort: vec![("title".into(), Direction::Asc)],
        ..Query::default()
    };
    db.find("todos", &q)
        .unwrap()
        .into_iter()
        .map(|r| r["title"].as_str().unwrap().to_owned())
        .collect()
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn writes_round_trip_with_automatic_fields() {
    let mut db = db();
    let r = db
        .insert("todos", json!({"title": "a", "done": false}))
        .unwrap();
    let id = r["id"].as_str().unwrap().to_owned();
    assert_eq!(r["createdAt"], r["updatedAt"]);
    assert_eq!(db.get("todos", &id).unwrap().unwrap(), r);
    let p = db
        .patch("todos", &id, json!({"done": true, "priority": 4}))
        .unwrap();
    assert_eq!(p["done"], true);
    assert_eq!(p["priority"], 4);
    assert_eq!(p["createdAt"], r["createdAt"]);
    assert!(p["updatedAt"].as_i64() > r["updatedAt"].as_i64());
    let p = db.patch("todos", &id, json!({"priority": null})).unwrap();
    assert!(p.get("priority").is_none());
    let p = db
        .put(
            "todos",
            &id,
            json!({"title": "b", "done": false, "tags": ["x"]}),
        )
        .unwrap();
    assert_eq!(p["title"], "b");
    assert_eq!(p["tags"], json!(["x"]));
    assert!(db.delete("todos", &id).unwrap());
    assert!(!db.delete("todos", &id).unwrap());
    assert_eq!(db.get("todos", &id).unwrap(), None);
    assert!(
        db.document("todos", &id).unwrap().is_some(),
        "the tombstone keeps its document"
    );
    assert!(matches!(
        db.patch("todos", &id, json!({"done": true})),
        Err(DbError::NotFound { .. })
    ));
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn refused_writes_name_the_problem_and_change_nothing() {
    let mut db = db();
    let r = db
        .insert("todos", json!({"title": "a", "done": false}))
        .unwrap();
    let id = r["id"].as_str().unwrap();
    assert!(matches!(
        db.insert("todos", json!({"title": 1, "done": false})),
        Err(DbError::Schema(SchemaError::WrongType { .. }))
    ));
    assert!(matches!(
        db.patch("todos", id, json!({"title": null})),
        Err(DbError::Schema(SchemaError::Missing(f))) if f == "title"
    ));
    assert!(matches!(
        db.patch("todos", id, json!({"id": "x"})),
        Err(DbError::Schema(SchemaError::AutoField(_)))
    ));
    assert_eq!(db.get("todos", id).unwrap().unwrap(), r, "nothing changed");
    assert!(matches!(
        db.insert("nope", json!({})),
        Err(DbError::UnknownCollection(_))
    ));
    assert_eq!(db.count("todos", &Value::Null).unwrap(), 1);
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn every_filter_operator() {
    let mut db = db();
    seed(&mut db);
    assert_eq!(
        titles(&db, json!({"done": true})),
        ["pay rent", "write report"]
    );
    assert_eq!(
        titles(&db, json!({"priority": {"$eq": 2}})),
        ["buy milk", "pay rent"]
    );
    assert_eq!(
        titles(&db, json!({"priority": {"$ne": 2}})),
        ["Fix bike", "call mom", "write report"]
    );
    assert_eq!(
        titles(&db, json!({"priority": {"$gt": 1, "$lte": 3}})),
        ["buy milk", "call mom", "pay rent"]
    );
    assert_eq!(titles(&db, json!({"score": {"$lt": 0}})), ["pay rent"]);
    assert_eq!(
        titles(&db, json!({"score": {"$gte": 1.5}})),
        ["buy milk", "write report"]
    );
    assert_eq!(
        titles(&db, json!({"priority": {"$in": [1, 3]}})),
        ["call mom", "write report"]
    );
    assert_eq!(
        titles(&db, json!({"priority": {"$nin": [1, 3]}})),
        ["Fix bike", "buy milk", "pay rent"]
    );
    assert_eq!(
        titles(&db, json!({"priority": {"$in": []}})),
        Vec::<String>::new()
    );
    assert_eq!(
        titles(&db, json!({"notes": {"$exists": true}})),
        ["call mom"]
    );
    assert_eq!(
        titles(&db, json!({"meta": {"$exists": false}})),
        ["call mom", "pay rent"]
    );
    assert_eq!(titles(&db, json!({"priority": null})), ["Fix bike"]);
    assert_eq!(
        titles(&db, json!({"title": {"$regex": "^[a-z]+ m"}})),
        ["buy milk", "call mom"]
    );
    assert_eq!(
        titles(&db, json!({"title": {"$regex": "^fix", "$options": "i"}})),
        ["Fix bike"]
    );
    assert_eq!(
        titles(&db, json!({"title": {"$contains": "r"}})),
        ["pay rent", "write report"]
    );
    // Arrays element-wise.
    assert_eq!(
        titles(&db, json!({"tags": "home"})),
        ["Fix bike", "buy milk"]
    );
    assert_eq!(
        titles(&db, json!({"tags": {"$contains": "work"}})),
        ["write report"]
    );
    assert_eq!(
        titles(&db, json!({"tags": {"$in": ["shop", "work"]}})),
        ["buy milk", "write report"]
    );
    assert_eq!(
        titles(&db, json!({"tags": {"$ne": "home"}})),
        ["call mom", "pay rent", "write report"]
    );
    // Nested paths and combinators.
    assert_eq!(
        titles(&db, json!({"meta.owner": "ann"})),
        ["Fix bike", "buy milk"]
    );
    assert_eq!(
        titles(&db, json!({"meta.due": {"$gt": 1}})),
        ["write report"]
    );
    assert_eq!(
        titles(&db, json!({"$or": [{"done": true}, {"tags": "shop"}]})),
        ["buy milk", "pay rent", "write report"]
    );
    assert_eq!(
        titles(
            &db,
            json!({"$and": [{"done": false}, {"meta.owner": "ann"}]})
        ),
        ["Fix bike", "buy milk"]
    );
    assert_eq!(
        titles(&db, json!({"$not": {"meta.owner": "ann"}})),
        ["call mom", "pay rent", "write report"]
    );
    // Refusals.
    for (bad, want) in [
        (json!({"nope": 1}), "unknown field"),
        (json!({"title": {"$like": "x"}}), "unknown operator"),
        (json!({"title": {"$regex": "("}}), "invalid $regex"),
        (json!({"$or": []}), "needs"),
        (json!({"title": {"$in": "x"}}), "needs"),
    ] {
        let q = Query {
            filter: bad,
            ..Query::default()
        };
        let e = db.find("todos", &q).unwrap_err().to_string();
        assert!(e.contains(want), "{e}");
    }
}

/// `$regex` is Unicode-aware: `\w`, `\d`, `\s`, `\b`, case folding,
/// general categories (`\p{L}`) and scripts (`\p{Greek}`). In the browser
/// module the other Unicode properties (`\p{Alphabetic}`, ages, break
/// properties) are not built in and are refused as an invalid `$regex`.
#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn regex_is_unicode_aware() {
    let mut db = db();
    for title in [
        "Ärger im Büro",
        "Ωμέγα",
        "日本語 123",
        "plain",
        "١٢٣ digits",
    ] {
        db.insert("todos", json!({"title": title, "done": false}))
            .unwrap();
    }
    let by = |pattern: &str, options: &str| {
        titles(
            &db,
            json!({"title": {"$regex": pattern, "$options": options}}),
        )
    };
    assert_eq!(by(r"^\w+ im\b", ""), ["Ärger im Büro"]);
    assert_eq!(by("^ärger", "i"), ["Ärger im Büro"]);
    assert_eq!(by("^ΩΜΈΓΑ$", "i"), ["Ωμέγα"]);
    assert_eq!(by(r"^\p{Greek}+$", ""), ["Ωμέγα"]);
    assert_eq!(by(r"^\p{Han}+\s", ""), ["日本語 123"]);
    assert_eq!(by(r"^\d+ ", ""), ["١٢٣ digits"]);
    assert_eq!(by(r"^\p{Lu}", ""), ["Ärger im Büro", "Ωμέγα"]);
    assert_eq!(by(r"^\P{L}", ""), ["١٢٣ digits"]);
    // The browser module's `regex` has only these tables; a native build may
    // have more, as other crates in it can enable them (feature unification).
    #[cfg(target_arch = "wasm32")]
    for absent in [r"\p{Alphabetic}", r"\p{Emoji}", r"\p{Age:6.0}"] {
        let q = Query {
            filter: json!({"title": {"$regex": absent}}),
            ..Query::default()
        };
        let e = db.find("todos", &q).unwrap_err().to_string();
        assert!(e.contains("invalid $regex"), "{absent}: {e}");
    }
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn sorting_paging_and_counting() {
    let mut db = db();
    seed(&mut db);
    let q = Query {
        filter: Value::Null,
        sort: vec![
            ("done".into(), Direction::Asc),
            ("priority".into(), Direction::Desc),
        ],
        limit: Some(3),
        offset: Some(1),
    };
    let got: Vec<Value> = db
        .find("todos", &q)
        .unwrap()
        .into_iter()
        .map(|r| r["title"].clone())
        .collect();
    // done=false by priority desc: call mom (3), buy milk (2), Fix bike (null); then done=true.
    assert_eq!(
        got,
        [json!("buy milk"), json!("Fix bike"), json!("pay rent")]
    );
    assert_eq!(db.count("todos", &json!({"done": false})).unwrap(), 3);
    assert_eq!(db.count("todos", &Value::Null).unwrap(), 5);
    let bad = Query {
        sort: vec![("tags".into(), Direction::Asc)],
        ..Query::default()
    };
    assert!(db.find("todos", &bad).is_err());
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn indexed_queries_use_their_index() {
    let mut db = db();
    seed(&mut db);
    let plan = |filter: Value| {
        db.explain(
            "todos",
            &Query {
                filter,
                ..Query::default()
            },
        )
        .unwrap()
        .join(" | ")
    };
    let p = plan(json!({"done": false, "priority": {"$gt": 1}}));
    assert!(
        p.contains("USING INDEX \"c_todos_i_done_priority\"")
            || p.contains("USING INDEX c_todos_i_done_priority"),
        "{p}"
    );
    let p = plan(json!({"meta.owner": "ann"}));
    assert!(p.contains("c_todos_i_meta__owner"), "{p}");
    let p = plan(json!({"title": "call mom"}));
    assert!(p.contains("SCAN"), "an unindexed field scans: {p}");
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn unique_indexes_are_enforced_on_live_records() {
    let mut db = db();
    let a = db
        .insert("todos", json!({"title": "a", "done": false, "slug": "s"}))
        .unwrap();
    match db.insert("todos", json!({"title": "b", "done": false, "slug": "s"})) {
        Err(DbError::Unique { index, .. }) => assert_eq!(index, "slug"),
        other => panic!("expected a unique violation, got {other:?}"),
    }
    let b = db
        .insert("todos", json!({"title": "b", "done": false, "slug": "t"}))
        .unwrap();
    assert!(matches!(
        db.patch("todos", b["id"].as_str().unwrap(), json!({"slug": "s"})),
        Err(DbError::Unique { .. })
    ));
    assert_eq!(
        db.get("todos", b["id"].as_str().unwrap()).unwrap().unwrap()["slug"],
        "t"
    );
    // A deleted record frees its value.
    db.delete("todos", a["id"].as_str().unwrap()).unwrap();
    db.patch("todos", b["id"].as_str().unwrap(), json!({"slug": "s"}))
        .unwrap();
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn text_fields_merge_concurrent_edits_by_character() {
    let mut db = db();
    let r = db
        .insert(
            "todos",
            json!({"title": "t", "done": false, "notes": "hello world"}),
        )
        .unwrap();
    let id = r["id"].as_str().unwrap();
    let base = db.document("todos", id).unwrap().unwrap();
    // Two devices edit the same text from the same state.
    let schema_fields = {
        let c: sealbase_db::Collection = serde_json::from_value(json!({"name": "x", "version": 1,
            "fields": {"notes": {"type": "text"}}}))
        .unwrap();
        c.fields
    };
    let mut a = automerge::AutoCommit::load(&base)
        .unwrap()
        .with_actor(automerge::ActorId::from(&[1u8; 16][..]));
    let mut b = automerge::AutoCommit::load(&base)
        .unwrap()
        .with_actor(automerge::ActorId::from(&[2u8; 16][..]));
    let patch_a = json!({"notes": "hello brave world"});
    let patch_b = json!({"notes": "hello world!"});
    sealbase_db::doc::apply_patch(&mut a, &schema_fields, patch_a.as_object().unwrap()).unwrap();
    sealbase_db::doc::apply_patch(&mut b, &schema_fields, patch_b.as_object().unwrap()).unwrap();
    a.merge(&mut b).unwrap();
    let merged = sealbase_db::doc::to_json(&a).unwrap();
    assert_eq!(merged["notes"], "hello brave world!");
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn the_change_feed_lists_each_changed_record_once_in_order() {
    let mut db = db();
    assert_eq!(db.cursor().unwrap(), 0);
    let a = db
        .insert("todos", json!({"title": "a", "done": false}))
        .unwrap();
    let b = db
        .insert("todos", json!({"title": "b", "done": false}))
        .unwrap();
    let after_b = db.cursor().unwrap();
    let (a_id, b_id) = (a["id"].as_str().unwrap(), b["id"].as_str().unwrap());
    db.patch("todos", a_id, json!({"done": true})).unwrap();
    db.delete("todos", b_id).unwrap();
    let all = db.changes_since(0, 100).unwrap();
    assert_eq!(all.len(), 2, "each record once: {all:?}");
    assert_eq!((all[0].id.as_str(), all[0].deleted), (a_id, false));
    assert_eq!((all[1].id.as_str(), all[1].deleted), (b_id, true));
    assert!(all[0].seq < all[1].seq);
    assert_eq!(all[1].seq, db.cursor().unwrap());
    // An indexer that stopped after b's insert sees exactly what came later.
    let later = db.changes_since(after_b, 100).unwrap();
    assert_eq!(
        later.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
        [a_id, b_id]
    );
    assert_eq!(db.changes_since(db.cursor().unwrap(), 100).unwrap(), []);
    assert_eq!(db.changes_since(0, 1).unwrap().len(), 1);
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn history_and_time_travel_survive_deletion() {
    let mut db = db();
    db.set_author(Some("did:key:z6MkAlice".into()));
    let r = db
        .insert("todos", json!({"title": "draft", "done": false}))
        .unwrap();
    let id = r["id"].as_str().unwrap().to_owned();
    db.patch("todos", &id, json!({"title": "final"})).unwrap();
    db.set_author(Some("did:key:z6MkBob".into()));
    db.patch("todos", &id, json!({"done": true})).unwrap();
    let history = db.history("todos", &id).unwrap();
    assert_eq!(history.len(), 3);
    assert_eq!(history[0].author.as_deref(), Some("did:key:z6MkAlice"));
    assert_eq!(history[2].author.as_deref(), Some("did:key:z6MkBob"));
    assert!(history[0].time <= history[2].time);
    let first = db.get_at("todos", &id, &history[0].hash).unwrap();
    assert_eq!(first["title"], "draft");
    assert_eq!(first["done"], false);
    let second = db.get_at("todos", &id, &history[1].hash).unwrap();
    assert_eq!(
        (second["title"].as_str(), second["done"].as_bool()),
        (Some("final"), Some(false))
    );
    db.delete("todos", &id).unwrap();
    assert_eq!(db.history("todos", &id).unwrap().len(), 3);
    assert_eq!(
        db.get_at("todos", &id, &history[1].hash).unwrap()["title"],
        "final"
    );
    assert!(matches!(
        db.get_at("todos", &id, "00"),
        Err(DbError::NotFound { .. })
    ));
    let unknown = "ab".repeat(32);
    assert!(matches!(
        db.get_at("todos", &id, &unknown),
        Err(DbError::NotFound { .. })
    ));
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn live_queries_rerun_only_when_a_change_can_affect_them() {
    let mut db = db();
    let a = db
        .insert("todos", json!({"title": "a", "done": false, "priority": 1}))
        .unwrap();
    let a_id = a["id"].as_str().unwrap().to_owned();
    db.take_events();
    let open = Query {
        filter: json!({"done": false}),
        sort: vec![("title".into(), Direction::Asc)],
        ..Query::default()
    };
    let (open_id, first) = db.observe("todos", open).unwrap();
    assert_eq!(first.len(), 1);
    let (done_id, none) = db
        .observe(
            "todos",
            Query {
                filter: json!({"done": true}),
                ..Query::default()
            },
        )
        .unwrap();
    assert!(none.is_empty());

    // A new open todo: only the open query re-runs.
    let b = db
        .insert("todos", json!({"title": "b", "done": false}))
        .unwrap();
    assert_eq!(db.live_evaluations(), 1);
    let updates = db.take_live_updates();
    assert_eq!(updates.len(), 1);
    assert_eq!(updates[0].0, open_id);
    assert_eq!(updates[0].1.len(), 2);
    assert!(db.take_live_updates().is_empty(), "reported once");

    // Completing `a` moves it between the two queries: both re-run.
    db.patch("todos", &a_id, json!({"done": true})).unwrap();
    assert_eq!(db.live_evaluations(), 3);
    let updates = db.take_live_updates();
    assert_eq!(
        updates.iter().map(|(k, _)| *k).collect::<Vec<_>>(),
        [open_id, done_id]
    );

    // A change that matches neither before nor after touches nothing.
    let before = db.live_evaluations();
    db.insert("todos", json!({"title": "c", "done": true}))
        .unwrap();
    db.unobserve(done_id);
    db.insert("todos", json!({"title": "d", "done": true}))
        .unwrap();
    assert_eq!(
        db.live_evaluations(),
        before + 1,
        "only the done query ran, once, before it ended"
    );
    db.delete("todos", b["id"].as_str().unwrap()).unwrap();
    let updates = db.take_live_updates();
    assert_eq!(updates.len(), 1);
    assert!(updates[0].1.is_empty());

    let events = db.take_events();
    assert_eq!(events.len(), 5);
    assert!(events.last().unwrap().deleted);
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn merging_keeps_both_sides_and_refuses_what_breaks_the_schema() {
    let mut db = db();
    let r = db
        .insert("todos", json!({"title": "t", "done": false}))
        .unwrap();
    let id = r["id"].as_str().unwrap().to_owned();
    let base = db.document("todos", &id).unwrap().unwrap();
    // Another device sets the priority; we complete the todo meanwhile.
    let mut remote = automerge::AutoCommit::load(&base)
        .unwrap()
        .with_actor(automerge::ActorId::from(&[9u8; 16][..]));
    automerge::transaction::Transactable::put(&mut remote, automerge::ROOT, "priority", 5_i64)
        .unwrap();
    db.patch("todos", &id, json!({"done": true})).unwrap();
    let merged = db.merge("todos", &id, &remote.save(), 1).unwrap();
    assert_eq!(
        (merged["done"].as_bool(), merged["priority"].as_i64()),
        (Some(true), Some(5))
    );
    // A remote state whose title is not a string is refused; nothing changes.
    automerge::transaction::Transactable::put(&mut remote, automerge::ROOT, "title", 7_i64)
        .unwrap();
    assert!(matches!(
        db.merge("todos", &id, &remote.save(), 1),
        Err(DbError::Schema(_))
    ));
    assert_eq!(db.get("todos", &id).unwrap().unwrap()["title"], "t");
    // A record first heard of through a merge is created.
    let fresh = db
        .merge("todos", "00000000-0000-4000-8000-000000000001", &base, 1)
        .unwrap();
    assert_eq!(fresh["title"], "t");
    assert!(matches!(
        db.merge("todos", &id, b"not automerge", 1),
        Err(DbError::Corrupt(_))
    ));
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn schema_migrations_run_once_persist_and_apply_to_merged_records() {
    use sealbase_db::store::Migration;
    use serde_json::Map;
    use std::collections::BTreeMap;

    fn split_name(mut r: Map<String, Value>) -> Result<Map<String, Value>, String> {
        let name = r
            .remove("name")
            .and_then(|v| v.as_str().map(str::to_owned))
            .ok_or("no name")?;
        let (first, last) = name.split_once(' ').ok_or("name has no space")?;
        r.insert("first".into(), json!(first));
        r.insert("last".into(), json!(last));
        Ok(r)
    }
    fn activate(mut r: Map<String, Value>) -> Result<Map<String, Value>, String> {
        r.insert("active".into(), json!(true));
        Ok(r)
    }
    let v1: sealbase_db::Collection =
        serde_json::from_value(json!({"name": "people", "version": 1,
        "fields": {"name": {"type": "string"}}}))
        .unwrap();
    let v3: sealbase_db::Collection = serde_json::from_value(json!({"name": "people", "version": 3,
        "fields": {"first": {"type": "string"}, "last": {"type": "string"}, "active": {"type": "boolean"}}})).unwrap();

    let mut db = Db::open_in_memory(TestEnv::new(1_000, 3)).unwrap();
    db.define(v1.clone()).unwrap();
    let ada = db
        .insert("people", json!({"name": "Ada Lovelace"}))
        .unwrap();
    let id = ada["id"].as_str().unwrap().to_owned();

    // Without the second step nothing is half-migrated.
    let mut partial: BTreeMap<u32, Migration> = BTreeMap::new();
    partial.insert(1, Box::new(split_name));
    let err = db
        .define_migrated(v3.clone(), partial)
        .unwrap_err()
        .to_string();
    assert!(err.contains("no migration from version 2"), "{err}");
    assert_eq!(
        db.get("people", &id).unwrap().unwrap()["name"],
        "Ada Lovelace"
    );

    let full = || {
        let mut m: BTreeMap<u32, Migration> = BTreeMap::new();
        m.insert(1, Box::new(split_name));
        m.insert(2, Box::new(activate));
        m
    };
    assert_eq!(db.define_migrated(v3.clone(), full()).unwrap(), 1);
    let migrated = db.get("people", &id).unwrap().unwrap();
    assert_eq!(
        (migrated["first"].as_str(), migrated["last"].as_str()),
        (Some("Ada"), Some("Lovelace"))
    );
    assert_eq!(migrated["active"], true);
    assert!(migrated.get("name").is_none());
    assert_eq!(
        db.define_migrated(v3, full()).unwrap(),
        0,
        "persisted: nothing left to migrate"
    );
    assert_eq!(
        db.history("people", &id).unwrap().len(),
        2,
        "the migration is a change of the document"
    );

    // A device still on version 1 creates a record; it arrives migrated.
    let mut old = Db::open_in_memory(TestEnv::new(5_000, 99)).unwrap();
    old.define(v1).unwrap();
    let grace = old
        .insert("people", json!({"name": "Grace Hopper"}))
        .unwrap();
    let grace_id = grace["id"].as_str().unwrap();
    let doc = old.document("people", grace_id).unwrap().unwrap();
    let arrived = db.merge("people", grace_id, &doc, 1).unwrap();
    assert_eq!(
        (arrived["first"].as_str(), arrived["active"].as_bool()),
        (Some("Grace"), Some(true))
    );
    // A record from a newer schema than this app knows is refused.
    assert!(matches!(
        db.merge("people", grace_id, &doc, 4),
        Err(DbError::Migration { .. })
    ));
}

#[cfg(not(target_arch = "wasm32"))]
#[test]
fn a_store_from_a_newer_version_is_refused() {
    let path = std::env::temp_dir().join(format!("sealbase-db-format-{}.db", std::process::id()));
    let _ = std::fs::remove_file(&path);
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", sealbase_db::store::STORE_FORMAT + 1)
            .unwrap();
    }
    let env = TestEnv::new(0, 1);
    match Db::open(path.to_str().unwrap(), env) {
        Err(DbError::NewerFormat(n)) => assert_eq!(n, sealbase_db::store::STORE_FORMAT + 1),
        other => panic!("expected NewerFormat, got {other:?}"),
    }
    let _ = std::fs::remove_file(&path);
}
