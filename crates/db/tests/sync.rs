//! The store's sync bookkeeping: what is pending, what a push
//! acknowledgement and a pulled version do to it, delete versus concurrent
//! edit, the signed-heads check, quarantine and batches.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::TestEnv;
use sealbase_db::{Db, DbError, RemoteRecord};
use serde_json::json;

const SPACE: &str = "00000000-0000-0000-0000-0000000000aa";

fn db(seed: u64) -> Db<TestEnv> {
    let mut db = Db::open_in_memory(TestEnv::new(1_000, seed)).unwrap();
    db.define(
        serde_json::from_value(json!({
            "name": "notes", "version": 1,
            "fields": {"title": {"type": "string"}, "body": {"type": "text", "optional": true}}
        }))
        .unwrap(),
    )
    .unwrap();
    db.define(
        serde_json::from_value(json!({
            "name": "tags", "version": 1, "fields": {"name": {"type": "string"}}
        }))
        .unwrap(),
    )
    .unwrap();
    db
}

/// Inserts a note; returns its id.
fn note(db: &mut Db<TestEnv>, fields: serde_json::Value) -> String {
    db.insert("notes", fields).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// What a server would hold after `from` pushed its pending version of `id`.
struct Pushed {
    doc: Vec<u8>,
    heads: Vec<[u8; 32]>,
    cursor: u64,
}

fn push(from: &mut Db<TestEnv>, id: &str, cursor: u64) -> Pushed {
    let pending = from.pending(100).unwrap();
    let p = pending.iter().find(|p| p.id == id).unwrap();
    from.mark_pushed(id, p.seq, SPACE, cursor).unwrap();
    Pushed {
        doc: p.doc.clone(),
        heads: p.heads.clone(),
        cursor,
    }
}

fn pull(into: &mut Db<TestEnv>, id: &str, v: &Pushed) -> Result<sealbase_db::Merged, DbError> {
    into.merge_remote(&RemoteRecord {
        space: SPACE,
        id,
        cursor: v.cursor,
        collection: "notes",
        schema_version: 1,
        doc: &v.doc,
        heads: &v.heads,
    })
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn local_writes_are_pending_until_acknowledged() {
    let mut a = db(1);
    assert_eq!(a.pending_count().unwrap(), 0);
    let id = note(&mut a, json!({"title": "x"}));
    let pending = a.pending(10).unwrap();
    assert_eq!(pending.len(), 1);
    let p = &pending[0];
    assert_eq!(
        (p.id.as_str(), p.cursor, p.deleted, p.space.as_deref()),
        (id.as_str(), 0, false, None)
    );
    assert_eq!(p.schema_version, 1);
    assert!(!p.heads.is_empty());

    // An edit while the push is in flight keeps the record pending.
    a.patch("notes", &id, json!({"title": "y"})).unwrap();
    a.mark_pushed(&id, p.seq, SPACE, 7).unwrap();
    assert_eq!(a.pending_count().unwrap(), 1);
    assert_eq!(a.record_cursor(&id).unwrap(), 7);
    let again = a.pending(10).unwrap();
    assert_eq!(
        (again[0].cursor, again[0].space.as_deref()),
        (7, Some(SPACE))
    );
    a.mark_pushed(&id, again[0].seq, SPACE, 8).unwrap();
    assert_eq!(a.pending_count().unwrap(), 0);

    a.delete("notes", &id).unwrap();
    let gone = a.pending(10).unwrap();
    assert!(gone[0].deleted);
    assert_eq!(gone[0].cursor, 8);
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn a_pulled_version_is_clean_unless_local_edits_remain() {
    let mut a = db(1);
    let mut b = db(2);
    let id = a
        .insert("notes", json!({"title": "x", "body": "hello"}))
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let v1 = push(&mut a, &id, 1);

    let merged = pull(&mut b, &id, &v1).unwrap();
    assert!(merged.changed && !merged.deleted);
    assert_eq!(
        b.pending_count().unwrap(),
        0,
        "exactly the server's version"
    );
    assert_eq!(b.record_cursor(&id).unwrap(), 1);
    // The same version again changes nothing.
    assert!(!pull(&mut b, &id, &v1).unwrap().changed);
    assert!(
        b.take_events().len() == 1,
        "one event for the first merge only"
    );

    // A local edit, then an older server version: still pending.
    b.patch("notes", &id, json!({"body": "hello world"}))
        .unwrap();
    a.patch("notes", &id, json!({"title": "x2"})).unwrap();
    let v2 = push(&mut a, &id, 2);
    pull(&mut b, &id, &v2).unwrap();
    assert_eq!(b.pending_count().unwrap(), 1);
    let p = &b.pending(10).unwrap()[0];
    assert_eq!(p.cursor, 2, "pushes against the version it merged");
    let record = b.get("notes", &id).unwrap().unwrap();
    assert_eq!(
        (record["title"].as_str(), record["body"].as_str()),
        (Some("x2"), Some("hello world"))
    );
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn the_document_must_have_the_signed_heads() {
    let mut a = db(1);
    let mut b = db(2);
    let id = note(&mut a, json!({"title": "x"}));
    let mut v = push(&mut a, &id, 1);
    v.heads = vec![[9; 32]];
    match pull(&mut b, &id, &v) {
        Err(DbError::HeadsMismatch { id: got }) => assert_eq!(got, id),
        other => panic!("{other:?}"),
    }
    assert!(b.get("notes", &id).unwrap().is_none());
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn a_record_keeps_its_collection() {
    let mut a = db(1);
    let mut b = db(2);
    let id = note(&mut a, json!({"title": "x"}));
    let v = push(&mut a, &id, 1);
    pull(&mut b, &id, &v).unwrap();
    let err = b
        .merge_remote(&RemoteRecord {
            space: SPACE,
            id: &id,
            cursor: 2,
            collection: "tags",
            schema_version: 1,
            doc: &v.doc,
            heads: &v.heads,
        })
        .unwrap_err();
    assert!(matches!(err, DbError::CollectionMismatch { .. }), "{err}");
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn delete_wins_both_ways() {
    let mut a = db(1);
    let mut b = db(2);
    let id = note(&mut a, json!({"title": "x"}));
    let v1 = push(&mut a, &id, 1);
    pull(&mut b, &id, &v1).unwrap();

    // A pulled tombstone deletes a record with unpushed edits.
    b.patch("notes", &id, json!({"title": "edited"})).unwrap();
    assert!(b.apply_remote_delete(SPACE, &id, 2).unwrap());
    assert!(b.get("notes", &id).unwrap().is_none());
    assert_eq!(b.pending_count().unwrap(), 0);
    let history = b.history("notes", &id).unwrap();
    let edit = b
        .get_at("notes", &id, &history.last().unwrap().hash)
        .unwrap();
    assert_eq!(edit["title"], "edited");

    // A pulled version of a record deleted here merges, stays deleted and
    // pending (its tombstone must reach the server).
    let mut c = db(3);
    pull(&mut c, &id, &v1).unwrap();
    c.delete("notes", &id).unwrap();
    a.patch("notes", &id, json!({"title": "a edit"})).unwrap();
    let v2 = push(&mut a, &id, 3);
    let merged = pull(&mut c, &id, &v2).unwrap();
    assert!(merged.deleted);
    assert!(c.get("notes", &id).unwrap().is_none());
    let pending = c.pending(10).unwrap();
    assert!(pending[0].deleted);
    assert_eq!(pending[0].cursor, 3);
}

#[cfg(not(target_arch = "wasm32"))]
#[test]
fn space_cursors_and_quarantine_persist() {
    let path = std::env::temp_dir().join(format!("sealbase-db-sync-{}.db", std::process::id()));
    let _ = std::fs::remove_file(&path);
    {
        let mut d = db(1);
        assert_eq!(d.space_cursor(SPACE).unwrap(), 0);
        drop(d);
        d = Db::open(path.to_str().unwrap(), TestEnv::new(1, 1)).unwrap();
        d.set_space_cursor(SPACE, 41).unwrap();
        d.set_space_cursor(SPACE, 42).unwrap();
        d.quarantine(SPACE, "r1", 5, "bad signature").unwrap();
        d.quarantine(SPACE, "r1", 6, "still bad").unwrap();
    }
    let d = Db::open(path.to_str().unwrap(), TestEnv::new(1, 1)).unwrap();
    assert_eq!(d.space_cursor(SPACE).unwrap(), 42);
    let q = d.quarantined().unwrap();
    assert_eq!(q.len(), 1);
    assert_eq!((q[0].cursor, q[0].error.as_str()), (6, "still bad"));
    drop(d);
    let _ = std::fs::remove_file(&path);
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn a_reset_drops_what_the_server_no_longer_has() {
    let mut a = db(1);
    let mut b = db(2);
    let kept = note(&mut a, json!({"title": "kept"}));
    let gone = note(&mut a, json!({"title": "gone"}));
    let v1 = push(&mut a, &kept, 1);
    let v2 = push(&mut a, &gone, 1);
    pull(&mut b, &kept, &v1).unwrap();
    pull(&mut b, &gone, &v2).unwrap();
    let local = note(&mut b, json!({"title": "local only"}));
    let seen = std::collections::HashSet::from([kept.clone()]);
    assert_eq!(b.reset_space(SPACE, true, &seen).unwrap(), 1);
    assert!(b.get("notes", &gone).unwrap().is_none());
    assert!(b.get("notes", &kept).unwrap().is_some());
    assert!(
        b.get("notes", &local).unwrap().is_some(),
        "local work is kept and pushed"
    );
    assert_eq!(b.pending(10).unwrap()[0].id, local);
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn a_failed_batch_changes_nothing() {
    let mut a = db(1);
    a.insert("notes", json!({"title": "before"})).unwrap();
    a.take_events();
    let err = a
        .batch(|db| {
            db.insert("notes", json!({"title": "inside"}))?;
            db.set_space_cursor(SPACE, 9)?;
            db.insert("notes", json!({"title": 5}))
        })
        .unwrap_err();
    assert!(matches!(err, DbError::Schema(_)), "{err}");
    assert_eq!(a.count("notes", &json!({})).unwrap(), 1);
    assert_eq!(a.space_cursor(SPACE).unwrap(), 0);
    assert_eq!(a.pending_count().unwrap(), 1);
    assert!(a.take_events().is_empty());

    let n = a
        .batch(|db| {
            for i in 0..10 {
                db.insert("notes", json!({"title": format!("n{i}")}))?;
            }
            db.count("notes", &json!({}))
        })
        .unwrap();
    assert_eq!(n, 11);
    assert_eq!(a.take_events().len(), 10);
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn compaction_removes_only_synced_old_tombstones() {
    let mut a = db(1);
    let mut ids = Vec::new();
    for t in ["synced", "pending", "live"] {
        ids.push(note(&mut a, json!({"title": t})));
    }
    for id in &ids {
        push(&mut a, id, 1);
    }
    a.delete("notes", &ids[0]).unwrap();
    push(&mut a, &ids[0], 2);
    a.delete("notes", &ids[1]).unwrap();
    // Too recent: nothing goes.
    assert_eq!(a.compact(0).unwrap(), 0);
    assert_eq!(a.compact(i64::MAX).unwrap(), 1);
    assert!(
        a.history("notes", &ids[0]).is_err(),
        "history gone with the tombstone"
    );
    assert!(
        a.history("notes", &ids[1]).is_ok(),
        "its deletion is not on the server yet"
    );
    assert!(a.get("notes", &ids[2]).unwrap().is_some());
    assert_eq!(a.pending(10).unwrap().len(), 1);
}
