//! The storage API's contract, run once against SQLite (a temporary file)
//! and once against PostgreSQL (a throwaway cluster from `sealbase-pgtest`).
//!
//! Each scenario is written once as `async fn scenario(db: Db)`; the
//! `scenarios!` macro generates `sqlite::scenario` and `postgres::scenario`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use sealbase_protocol::{Bytes, Change, RecordCursor, WrappedKey};
use sealbase_sync::store::{Compaction, PushOutcome, RecordRow, SpaceKind, Store, StoreError};
use uuid::Uuid;

// ---------------------------------------------------------------------------
// Harness

/// A migrated store and the URL it was opened from (for the few checks that
/// must look under the API).
struct Db {
    store: Store,
    url: String,
    /// Removes the SQLite file when the test ends.
    _cleanup: Option<TempFile>,
}

/// A SQLite database file (and its WAL and shared-memory files) removed on drop.
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let mut path = self.0.clone().into_os_string();
            path.push(suffix);
            let _ = std::fs::remove_file(path);
        }
        if let Some(dir) = self.0.parent() {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

fn temp_sqlite_path(name: &str) -> PathBuf {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    // A directory that does not exist yet: connect must create it.
    std::env::temp_dir()
        .join(format!("sealbase-store-{}-{n}-{name}", std::process::id()))
        .join("sync.db")
}

async fn open(url: String, cleanup: Option<TempFile>) -> Db {
    let store = Store::connect(&url).await.expect("connect");
    store.migrate().await.expect("migrate");
    Db {
        store,
        url,
        _cleanup: cleanup,
    }
}

async fn sqlite_db(name: &str) -> Db {
    let path = temp_sqlite_path(name);
    let url = format!("sqlite://{}", path.display());
    open(url, Some(TempFile(path))).await
}

async fn postgres_db(name: &str) -> Db {
    let name = name.to_owned();
    let url = tokio::task::spawn_blocking(move || sealbase_pgtest::database(&name).url())
        .await
        .expect("pgtest");
    open(url, None).await
}

/// Generates, for each scenario, a test on SQLite and one on PostgreSQL.
macro_rules! scenarios {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::sqlite_db(stringify!($name)).await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::postgres_db(stringify!($name)).await).await;
                }
            )*
        }
    };
}

scenarios!(
    ping,
    migrations_are_idempotent,
    personal_space_created_once,
    personal_space_of_another_user_is_refused,
    shared_space_is_not_personal,
    push_moves_the_cursor_by_one,
    conflicting_batch_writes_nothing,
    create_when_exists_conflicts,
    delete_leaves_a_tombstone,
    pull_pages_in_cursor_order,
    pull_page_ends_at_its_byte_budget,
    push_to_missing_space,
    concurrent_pushes_serialize,
    concurrent_creates_of_one_record,
    large_blob_round_trip,
    pull_reads_the_index,
    compaction_drops_old_tombstones,
    compaction_works_in_batches,
    storage_quota_counts_blobs_per_user,
);

// ---------------------------------------------------------------------------
// Helpers

fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

fn random_id(rng: &mut ChaCha8Rng) -> Uuid {
    let mut bytes = [0; 16];
    rng.fill_bytes(&mut bytes);
    Uuid::from_bytes(bytes)
}

fn dek_for(blob: &[u8]) -> [u8; 44] {
    let mut dek = [0; 44];
    dek[..4].copy_from_slice(&1u32.to_be_bytes());
    for (d, b) in dek[4..].iter_mut().zip(blob.iter().cycle()) {
        *d = *b;
    }
    dek
}

fn put(id: Uuid, expected_cursor: u64, blob: &[u8]) -> Change {
    Change {
        id,
        blob: Some(Bytes(blob.to_vec())),
        dek: Some(WrappedKey(dek_for(blob))),
        expected_cursor,
    }
}

fn delete(id: Uuid, expected_cursor: u64) -> Change {
    Change {
        id,
        blob: None,
        dek: None,
        expected_cursor,
    }
}

fn applied(prev: u64, cursor: u64) -> PushOutcome {
    PushOutcome::Applied {
        prev,
        cursor,
        removed_files: Vec::new(),
    }
}

fn row(id: Uuid, cursor: u64, blob: Option<&[u8]>) -> RecordRow {
    RecordRow {
        id,
        cursor,
        version: blob.map(|b| (b.to_vec(), dek_for(b))),
    }
}

async fn new_space(db: &Db, seed: u64) -> Uuid {
    let mut rng = rng(seed);
    let space = random_id(&mut rng);
    db.store
        .ensure_personal_space(space, random_id(&mut rng))
        .await
        .unwrap();
    space
}

/// Everything in `space` after `since`, one unbounded page.
async fn pull_all(db: &Db, space: Uuid, since: u64) -> Vec<RecordRow> {
    db.store
        .pull_page(space, since, u64::MAX, None, u32::MAX, u64::MAX)
        .await
        .unwrap()
}

/// Inserts a shared space under the API (no store method creates one yet).
async fn insert_shared_space(db: &Db, space: Uuid, root_did: &str) {
    if db.url.starts_with("sqlite:") {
        let pool = sqlx::SqlitePool::connect(&db.url).await.unwrap();
        sqlx::query("INSERT INTO spaces (id, kind, root_did) VALUES (?1, 'shared', ?2)")
            .bind(space.as_bytes().as_slice())
            .bind(root_did)
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
    } else {
        let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
        sqlx::query("INSERT INTO spaces (id, kind, root_did) VALUES ($1::uuid, 'shared', $2)")
            .bind(space.to_string())
            .bind(root_did)
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
    }
}

// ---------------------------------------------------------------------------
// Scenarios

async fn ping(db: Db) {
    db.store.ping().await.unwrap();
    // Only a SQLite file has a write-ahead log to copy.
    let checkpoint = db.store.checkpoint().await.unwrap();
    assert_eq!(
        checkpoint.is_some(),
        db.url.starts_with("sqlite:"),
        "{checkpoint:?}"
    );
}

async fn migrations_are_idempotent(db: Db) {
    let space = new_space(&db, 1).await;
    db.store
        .push(space, &[put(Uuid::from_u128(1), 0, b"a")])
        .await
        .unwrap();
    // Already migrated once by the harness; twice more changes nothing.
    db.store.migrate().await.unwrap();
    db.store.migrate().await.unwrap();
    assert_eq!(
        pull_all(&db, space, 0).await,
        vec![row(Uuid::from_u128(1), 1, Some(b"a"))]
    );
}

async fn personal_space_created_once(db: Db) {
    let (space, owner) = (Uuid::from_u128(10), Uuid::from_u128(20));
    assert_eq!(db.store.space(space).await.unwrap(), None);

    let first = db.store.ensure_personal_space(space, owner).await.unwrap();
    assert_eq!(first.id, space);
    assert_eq!(first.kind, SpaceKind::Personal { owner });
    assert_eq!(first.cursor, 0);

    db.store
        .push(space, &[put(Uuid::from_u128(1), 0, b"x")])
        .await
        .unwrap();
    let again = db.store.ensure_personal_space(space, owner).await.unwrap();
    assert_eq!(again.cursor, 1, "a second call finds the existing space");
    assert_eq!(db.store.space(space).await.unwrap(), Some(again));
}

async fn personal_space_of_another_user_is_refused(db: Db) {
    let space = Uuid::from_u128(10);
    db.store
        .ensure_personal_space(space, Uuid::from_u128(20))
        .await
        .unwrap();
    let err = db
        .store
        .ensure_personal_space(space, Uuid::from_u128(21))
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::NotOwner(s) if s == space),
        "{err:?}"
    );
}

async fn shared_space_is_not_personal(db: Db) {
    let space = Uuid::from_u128(30);
    insert_shared_space(&db, space, "did:key:z6Mkroot").await;
    let info = db.store.space(space).await.unwrap().unwrap();
    assert_eq!(
        info.kind,
        SpaceKind::Shared {
            root_did: "did:key:z6Mkroot".into()
        }
    );
    let err = db
        .store
        .ensure_personal_space(space, Uuid::from_u128(20))
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::NotOwner(s) if s == space),
        "{err:?}"
    );
}

async fn push_moves_the_cursor_by_one(db: Db) {
    let space = new_space(&db, 2).await;
    let (a, b, c) = (Uuid::from_u128(1), Uuid::from_u128(2), Uuid::from_u128(3));

    let outcome = db
        .store
        .push(space, &[put(a, 0, b"a1"), put(b, 0, b"b1")])
        .await;
    assert_eq!(outcome.unwrap(), applied(0, 1));
    let outcome = db
        .store
        .push(space, &[put(a, 1, b"a2"), put(c, 0, b"c2")])
        .await;
    assert_eq!(outcome.unwrap(), applied(1, 2));
    let outcome = db.store.push(space, &[put(c, 2, b"c3")]).await;
    assert_eq!(outcome.unwrap(), applied(2, 3));

    assert_eq!(db.store.space(space).await.unwrap().unwrap().cursor, 3);
    assert_eq!(
        pull_all(&db, space, 0).await,
        vec![
            row(b, 1, Some(b"b1")),
            row(a, 2, Some(b"a2")),
            row(c, 3, Some(b"c3"))
        ]
    );
}

async fn conflicting_batch_writes_nothing(db: Db) {
    let space = new_space(&db, 3).await;
    let [a, b, c, d, e] = [1, 2, 3, 4, 5].map(Uuid::from_u128);
    db.store
        .push(
            space,
            &[put(a, 0, b"a1"), put(b, 0, b"b1"), put(e, 0, b"e1")],
        )
        .await
        .unwrap();

    let batch = [
        put(a, 1, b"a2"), // fine
        put(b, 0, b"b2"), // b exists at 1
        put(c, 0, b"c2"), // fine: new
        put(d, 7, b"d2"), // d does not exist
        delete(e, 3),     // e is at 1
    ];
    let outcome = db.store.push(space, &batch).await.unwrap();
    assert_eq!(
        outcome,
        PushOutcome::Conflict(vec![
            RecordCursor { id: b, cursor: 1 },
            RecordCursor { id: d, cursor: 0 },
            RecordCursor { id: e, cursor: 1 },
        ])
    );

    // Nothing of the batch landed, not even the changes that matched.
    assert_eq!(db.store.space(space).await.unwrap().unwrap().cursor, 1);
    assert_eq!(
        pull_all(&db, space, 0).await,
        vec![
            row(a, 1, Some(b"a1")),
            row(b, 1, Some(b"b1")),
            row(e, 1, Some(b"e1"))
        ]
    );

    // The next push still gets the next cursor.
    let outcome = db.store.push(space, &[put(c, 0, b"c2")]).await.unwrap();
    assert_eq!(outcome, applied(1, 2));
}

async fn create_when_exists_conflicts(db: Db) {
    let space = new_space(&db, 4).await;
    let x = Uuid::from_u128(9);
    assert_eq!(
        db.store.push(space, &[put(x, 0, b"one")]).await.unwrap(),
        applied(0, 1)
    );
    assert_eq!(
        db.store.push(space, &[put(x, 0, b"two")]).await.unwrap(),
        PushOutcome::Conflict(vec![RecordCursor { id: x, cursor: 1 }])
    );
    assert_eq!(pull_all(&db, space, 0).await, vec![row(x, 1, Some(b"one"))]);
}

async fn delete_leaves_a_tombstone(db: Db) {
    let space = new_space(&db, 5).await;
    let (x, y) = (Uuid::from_u128(1), Uuid::from_u128(2));
    db.store.push(space, &[put(x, 0, b"x1")]).await.unwrap();

    assert_eq!(
        db.store.push(space, &[delete(x, 1)]).await.unwrap(),
        applied(1, 2)
    );
    assert_eq!(pull_all(&db, space, 0).await, vec![row(x, 2, None)]);
    assert_eq!(pull_all(&db, space, 1).await, vec![row(x, 2, None)]);
    assert_eq!(pull_all(&db, space, 2).await, vec![]);

    // A tombstone exists: creating over it conflicts, writing at its cursor works.
    assert_eq!(
        db.store.push(space, &[put(x, 0, b"x3")]).await.unwrap(),
        PushOutcome::Conflict(vec![RecordCursor { id: x, cursor: 2 }])
    );
    // Deleting a record that never existed just records the tombstone.
    assert_eq!(
        db.store.push(space, &[delete(y, 0)]).await.unwrap(),
        applied(2, 3)
    );
    assert_eq!(
        db.store.push(space, &[put(x, 2, b"x4")]).await.unwrap(),
        applied(3, 4)
    );
    assert_eq!(
        pull_all(&db, space, 0).await,
        vec![row(y, 3, None), row(x, 4, Some(b"x4"))]
    );
}

async fn pull_pages_in_cursor_order(db: Db) {
    let space = new_space(&db, 6).await;
    let mut rng = rng(6);
    // The model: id -> (cursor, blob or tombstone).
    let mut model: HashMap<Uuid, (u64, Option<Vec<u8>>)> = HashMap::new();
    let mut ids = Vec::new();

    // 12 pushes of 30 changes: new records, and from the fourth push on,
    // updates and deletes of earlier ones, so cursors interleave with ids.
    for push in 1..=12u64 {
        let mut batch = Vec::new();
        for i in 0..30u64 {
            let reuse = push > 3 && i % 3 == 0;
            let id = if reuse {
                ids[usize::try_from(rng.next_u32()).unwrap() % ids.len()]
            } else {
                let id = random_id(&mut rng);
                ids.push(id);
                id
            };
            if batch.iter().any(|c: &Change| c.id == id) {
                continue;
            }
            let expected = model.get(&id).map_or(0, |(c, _)| *c);
            let change = if reuse && i % 2 == 0 {
                delete(id, expected)
            } else {
                put(id, expected, format!("{push}-{i}").as_bytes())
            };
            batch.push(change);
        }
        assert_eq!(
            db.store.push(space, &batch).await.unwrap(),
            applied(push - 1, push)
        );
        for c in batch {
            model.insert(c.id, (push, c.blob.map(|b| b.0)));
        }
    }
    assert!(model.len() > 250, "{} records", model.len());

    for (since, upto) in [
        (0, 12),
        (3, 7),
        (0, 1),
        (11, 12),
        (12, 12),
        (5, 4),
        (0, u64::MAX),
    ] {
        let mut expected: Vec<RecordRow> = model
            .iter()
            .filter(|(_, (c, _))| since < *c && *c <= upto)
            .map(|(id, (c, blob))| row(*id, *c, blob.as_deref()))
            .collect();
        expected.sort_by_key(|r| (r.cursor, r.id));

        let mut got = Vec::new();
        let mut after = None;
        loop {
            let page = db
                .store
                .pull_page(space, since, upto, after, 50, u64::MAX)
                .await
                .unwrap();
            assert!(page.len() <= 50);
            let Some(last) = page.last() else { break };
            after = Some((last.cursor, last.id));
            let full = page.len() == 50;
            got.extend(page);
            if !full {
                break;
            }
        }
        assert_eq!(got.len(), expected.len(), "since {since} upto {upto}");
        assert_eq!(got, expected, "since {since} upto {upto}");
    }
}

/// A page ends after the row whose blob reaches the byte budget; tombstones
/// weigh nothing; walking pages under a budget still returns every row once.
async fn pull_page_ends_at_its_byte_budget(db: Db) {
    let space = new_space(&db, 12).await;
    let ids: Vec<Uuid> = (1..=6u128).map(Uuid::from_u128).collect();
    let blob = vec![3u8; 1000];
    // Cursor 1: ids 1-5 with 1000-byte blobs. Cursor 2: id 3 deleted.
    let batch: Vec<Change> = ids[..5].iter().map(|id| put(*id, 0, &blob)).collect();
    assert_eq!(db.store.push(space, &batch).await.unwrap(), applied(0, 1));
    assert_eq!(
        db.store.push(space, &[delete(ids[2], 1)]).await.unwrap(),
        applied(1, 2)
    );
    let page = |max_bytes: u64, after: Option<(u64, Uuid)>| {
        let store = db.store.clone();
        async move {
            store
                .pull_page(space, 0, u64::MAX, after, 100, max_bytes)
                .await
                .unwrap()
        }
    };
    let ids_of = |rows: &[RecordRow]| rows.iter().map(|r| r.id).collect::<Vec<_>>();
    // Live rows in order: 1, 2, 4, 5 (cursor 1), then tombstone 3 (cursor 2).
    assert_eq!(ids_of(&page(1, None).await), [ids[0]]);
    assert_eq!(ids_of(&page(1000, None).await), [ids[0]]);
    assert_eq!(ids_of(&page(1001, None).await), [ids[0], ids[1]]);
    assert_eq!(ids_of(&page(3000, None).await), [ids[0], ids[1], ids[3]]);
    // A row is in the page while the blob bytes ahead of it are under the
    // budget: the tombstone has 4000 ahead of it.
    assert_eq!(
        ids_of(&page(3001, None).await),
        [ids[0], ids[1], ids[3], ids[4]]
    );
    assert_eq!(
        ids_of(&page(4001, None).await),
        [ids[0], ids[1], ids[3], ids[4], ids[2]]
    );
    assert_eq!(page(u64::MAX, None).await.len(), 5);
    // Paging with a budget of two blobs walks everything once.
    let mut got = Vec::new();
    let mut after = None;
    loop {
        let rows = page(2000, after).await;
        let Some(last) = rows.last() else { break };
        assert!(rows.len() <= 2, "{rows:?}");
        after = Some((last.cursor, last.id));
        got.extend(ids_of(&rows));
    }
    assert_eq!(got, [ids[0], ids[1], ids[3], ids[4], ids[2]]);
}

async fn push_to_missing_space(db: Db) {
    let space = Uuid::from_u128(404);
    let err = db
        .store
        .push(space, &[put(Uuid::from_u128(1), 0, b"x")])
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::NoSuchSpace(s) if s == space),
        "{err:?}"
    );
    assert_eq!(db.store.space(space).await.unwrap(), None);
    assert_eq!(pull_all(&db, space, 0).await, vec![]);
}

async fn concurrent_pushes_serialize(db: Db) {
    let space = new_space(&db, 7).await;
    const PER_TASK: u64 = 25;
    let tasks: Vec<_> = (0..2u128)
        .map(|task| {
            let store = db.store.clone();
            tokio::spawn(async move {
                let mut outcomes = Vec::new();
                for i in 0..PER_TASK {
                    // Two records per batch, disjoint across tasks.
                    let base = task << 64 | u128::from(i) << 1;
                    let batch = [
                        put(Uuid::from_u128(base), 0, b"v"),
                        put(Uuid::from_u128(base | 1), 0, b"w"),
                    ];
                    outcomes.push(store.push(space, &batch).await.unwrap());
                }
                outcomes
            })
        })
        .collect();
    let mut cursors = Vec::new();
    for task in tasks {
        for outcome in task.await.unwrap() {
            let PushOutcome::Applied { prev, cursor, .. } = outcome else {
                panic!("disjoint records never conflict: {outcome:?}");
            };
            assert_eq!(prev + 1, cursor);
            cursors.push(cursor);
        }
    }
    cursors.sort_unstable();
    assert_eq!(cursors, (1..=2 * PER_TASK).collect::<Vec<_>>());
    assert_eq!(
        db.store.space(space).await.unwrap().unwrap().cursor,
        2 * PER_TASK
    );
    assert_eq!(
        pull_all(&db, space, 0).await.len(),
        4 * usize::try_from(PER_TASK).unwrap()
    );
}

async fn concurrent_creates_of_one_record(db: Db) {
    let space = new_space(&db, 8).await;
    for round in 0..10u128 {
        let id = Uuid::from_u128(round + 1);
        let tasks: Vec<_> = [b"left".as_slice(), b"right".as_slice()]
            .into_iter()
            .map(|blob| {
                let store = db.store.clone();
                let change = put(id, 0, blob);
                tokio::spawn(async move { store.push(space, &[change]).await.unwrap() })
            })
            .collect();
        let mut outcomes = Vec::new();
        for task in tasks {
            outcomes.push(task.await.unwrap());
        }
        let cursor = u64::try_from(round).unwrap() + 1;
        let winners = outcomes
            .iter()
            .filter(|o| **o == applied(cursor - 1, cursor))
            .count();
        let losers = outcomes
            .iter()
            .filter(|o| **o == PushOutcome::Conflict(vec![RecordCursor { id, cursor }]))
            .count();
        assert_eq!((winners, losers), (1, 1), "{outcomes:?}");
    }
}

async fn large_blob_round_trip(db: Db) {
    let space = new_space(&db, 9).await;
    let mut blob = vec![0; 3 * 1024 * 1024 + 29];
    rng(9).fill_bytes(&mut blob);
    let id = Uuid::from_u128(77);
    assert_eq!(
        db.store.push(space, &[put(id, 0, &blob)]).await.unwrap(),
        applied(0, 1)
    );
    assert_eq!(pull_all(&db, space, 0).await, vec![row(id, 1, Some(&blob))]);
}

/// The pull query walks `records_by_cursor` in order: no sort step, whatever
/// the page bounds.
async fn pull_reads_the_index(db: Db) {
    let mut rng = rng(10);
    let blob = vec![7u8; 1024];
    let postgres = !db.url.starts_with("sqlite:");
    if postgres {
        // No statistics may appear while the test fills the space, as on a
        // server where a space was filled since the last ANALYZE: the
        // planner then expects a handful of rows.
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
        sqlx::query("ALTER TABLE records SET (autovacuum_enabled = off)")
            .execute(&mut conn)
            .await
            .unwrap();
    }
    let space = new_space(&db, 10).await;
    for push in 1..=20u64 {
        let batch: Vec<Change> = (0..500)
            .map(|_| put(random_id(&mut rng), 0, &blob))
            .collect();
        assert_eq!(
            db.store.push(space, &batch).await.unwrap(),
            applied(push - 1, push)
        );
    }
    let plan = if !postgres {
        let pool = sqlx::SqlitePool::connect(&db.url).await.unwrap();
        sqlx::query("ANALYZE").execute(&pool).await.unwrap();
        let explain = format!(
            "EXPLAIN QUERY PLAN {}",
            sealbase_sync::store::sqlite::PULL_PAGE
        );
        let rows: Vec<(i64, i64, i64, String)> =
            sqlx::query_as(sqlx::AssertSqlSafe(explain.clone()))
                .bind(space.as_bytes().as_slice())
                .bind(5i64)
                .bind(Uuid::max().as_bytes().as_slice())
                .bind(15i64)
                .bind(50i64)
                .fetch_all(&pool)
                .await
                .unwrap();
        pool.close().await;
        rows.into_iter().map(|r| r.3).collect::<Vec<_>>().join("\n")
    } else {
        use sealbase_sync::store::postgres::{PULL_PAGE, PULL_PAGE_SETTINGS};
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
        // The store's query under the settings of the store's pull
        // connections (in a transaction, so the test's changes are undone).
        let mut tx = conn.begin().await.unwrap();
        sqlx::query(PULL_PAGE_SETTINGS)
            .execute(&mut *tx)
            .await
            .unwrap();
        // First the first page as planned right after the fill: without the
        // store's settings this is a bitmap scan of all 10,000 rows and a
        // sort.
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "PREPARE pull (uuid, bigint, uuid, bigint, bigint) AS {PULL_PAGE}"
        )))
        .execute(&mut *tx)
        .await
        .unwrap();
        let explain = format!(
            "EXPLAIN EXECUTE pull ('{space}', 0, '{}', 20, 500)",
            Uuid::nil()
        );
        let fresh: Vec<(String,)> = sqlx::query_as(sqlx::AssertSqlSafe(explain.clone()))
            .fetch_all(&mut *tx)
            .await
            .unwrap();
        sqlx::query("ANALYZE records")
            .execute(&mut *tx)
            .await
            .unwrap();
        // Then the plan a long-lived prepared statement ends up with,
        // whatever the parameter values.
        sqlx::query("SET LOCAL plan_cache_mode = force_generic_plan")
            .execute(&mut *tx)
            .await
            .unwrap();
        let generic: Vec<(String,)> = sqlx::query_as(sqlx::AssertSqlSafe(explain.clone()))
            .fetch_all(&mut *tx)
            .await
            .unwrap();
        tx.rollback().await.unwrap();
        let fresh = fresh
            .into_iter()
            .map(|r| r.0)
            .collect::<Vec<_>>()
            .join("\n");
        let generic = generic
            .into_iter()
            .map(|r| r.0)
            .collect::<Vec<_>>()
            .join("\n");
        for plan in [&fresh, &generic] {
            assert!(
                plan.contains("Index Scan using records_by_cursor"),
                "{plan}"
            );
            assert!(!plan.contains("Bitmap"), "{plan}");
        }
        format!("{fresh}\n{generic}")
    };
    println!("{plan}");
    assert!(plan.contains("records_by_cursor"), "{plan}");
    assert!(!plan.to_lowercase().contains("sort"), "{plan}");
    assert!(!plan.contains("TEMP B-TREE"), "{plan}");
}

// ---------------------------------------------------------------------------
// SQLite only

#[tokio::test]
async fn sqlite_in_memory() {
    let db = open("sqlite::memory:".into(), None).await;
    assert_eq!(
        db.store.checkpoint().await.unwrap(),
        None,
        "no log in memory"
    );
    let space = new_space(&db, 11).await;
    let id = Uuid::from_u128(1);
    assert_eq!(
        db.store.push(space, &[put(id, 0, b"m")]).await.unwrap(),
        applied(0, 1)
    );
    assert_eq!(pull_all(&db, space, 0).await, vec![row(id, 1, Some(b"m"))]);
    // The byte budget holds on the in-memory path too.
    let two = Uuid::from_u128(2);
    assert_eq!(
        db.store.push(space, &[put(two, 0, b"n")]).await.unwrap(),
        applied(1, 2)
    );
    let page = db
        .store
        .pull_page(space, 0, u64::MAX, None, 10, 1)
        .await
        .unwrap();
    assert_eq!(page, vec![row(id, 1, Some(b"m"))]);
}

/// Commits leave checkpoints to `Store::checkpoint` (the server runs it
/// every 250 ms): the log grows past SQLite's own 1,000-page mark without
/// being copied, one checkpoint copies all of it, and the next write starts
/// the log from its beginning.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_checkpoints_run_apart_from_commits() {
    let db = sqlite_db("checkpoints").await;
    // Migrations ran on the writer too; start from a copied log.
    let first = db.store.checkpoint().await.unwrap().unwrap();
    assert_eq!(first.copied, first.frames, "{first:?}");
    let space = new_space(&db, 30).await;
    let blob = vec![7u8; 16 * 1024];
    // 6 MiB of blobs: about 1,600 pages of 4 KiB.
    for batch in 0..4u128 {
        let changes: Vec<Change> = (0..96)
            .map(|i| put(Uuid::from_u128(batch * 1000 + i + 1), 0, &blob))
            .collect();
        db.store.push(space, &changes).await.unwrap();
    }
    // Each batch adds about 480 pages. Had a commit checkpointed on
    // crossing 1,000, the fourth batch would have started the log again.
    let done = db.store.checkpoint().await.unwrap().unwrap();
    assert!(done.frames > 1500, "commits checkpointed: {done:?}");
    assert_eq!(done.copied, done.frames, "{done:?}");
    assert!(!done.busy);
    // Everything is in the database file: reads see it, and the next write
    // reuses the log from the start.
    assert_eq!(pull_all(&db, space, 0).await.len(), 4 * 96);
    db.store
        .push(space, &[put(Uuid::from_u128(99_999), 0, b"small")])
        .await
        .unwrap();
    let next = db.store.checkpoint().await.unwrap().unwrap();
    assert!(next.frames < 20, "the log restarted: {next:?}");
    assert_eq!(next.copied, next.frames);
    // Nothing new: a checkpoint finds nothing to copy.
    assert_eq!(db.store.checkpoint().await.unwrap().unwrap(), next);
}

#[tokio::test]
async fn unsupported_url() {
    let err = Store::connect("mysql://localhost/x").await.unwrap_err();
    assert!(matches!(err, StoreError::UnsupportedUrl(_)), "{err:?}");
}

/// Seconds from now, as compaction cutoffs.
fn from_now(seconds: i64) -> u64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    now.checked_add_signed(seconds).unwrap()
}

async fn compaction_drops_old_tombstones(db: Db) {
    let space = new_space(&db, 20).await;
    let other = new_space(&db, 21).await;
    let (x, y, z) = (Uuid::from_u128(1), Uuid::from_u128(2), Uuid::from_u128(3));
    db.store
        .push(space, &[put(x, 0, b"x"), put(y, 0, b"y"), put(z, 0, b"z")])
        .await
        .unwrap();
    db.store.push(space, &[delete(x, 1)]).await.unwrap();
    db.store.push(space, &[delete(y, 1)]).await.unwrap();
    db.store.push(space, &[put(z, 1, b"z2")]).await.unwrap();
    db.store.push(other, &[put(x, 0, b"live")]).await.unwrap();

    // Nothing is old enough yet.
    assert_eq!(
        db.store.compact(from_now(-3600), 100).await.unwrap(),
        Compaction::default()
    );
    assert_eq!(db.store.space(space).await.unwrap().unwrap().compacted, 0);

    // Past the horizon: both tombstones go, the live records stay, and the
    // space remembers up to where tombstones may be missing.
    assert_eq!(
        db.store.compact(from_now(10), 100).await.unwrap(),
        Compaction {
            spaces: 1,
            tombstones: 2
        }
    );
    let info = db.store.space(space).await.unwrap().unwrap();
    assert_eq!((info.cursor, info.compacted), (4, 3));
    assert_eq!(pull_all(&db, space, 0).await, vec![row(z, 4, Some(b"z2"))]);
    assert_eq!(
        pull_all(&db, other, 0).await,
        vec![row(x, 1, Some(b"live"))]
    );
    assert_eq!(db.store.space(other).await.unwrap().unwrap().compacted, 0);

    // Again: nothing left to do.
    assert_eq!(
        db.store.compact(from_now(10), 100).await.unwrap(),
        Compaction::default()
    );

    // A compacted id is free again; a later tombstone moves `compacted` on.
    assert_eq!(
        db.store
            .push(space, &[put(x, 0, b"x again")])
            .await
            .unwrap(),
        applied(4, 5)
    );
    db.store.push(space, &[delete(z, 4)]).await.unwrap();
    let done = db.store.compact(from_now(10), 100).await.unwrap();
    assert_eq!(done.tombstones, 1);
    let info = db.store.space(space).await.unwrap().unwrap();
    assert_eq!((info.cursor, info.compacted), (6, 6));
    assert_eq!(
        pull_all(&db, space, 0).await,
        vec![row(x, 5, Some(b"x again"))]
    );
}

async fn compaction_works_in_batches(db: Db) {
    let space = new_space(&db, 22).await;
    // More tombstones than one compaction transaction drops, written by
    // single pushes larger than one multi-row statement.
    let ids: Vec<Uuid> = (1..=6_500u128).map(Uuid::from_u128).collect();
    let puts: Vec<Change> = ids.iter().map(|id| put(*id, 0, b"v")).collect();
    assert_eq!(db.store.push(space, &puts).await.unwrap(), applied(0, 1));
    let deletes: Vec<Change> = ids.iter().map(|id| delete(*id, 1)).collect();
    assert_eq!(db.store.push(space, &deletes).await.unwrap(), applied(1, 2));
    assert_eq!(pull_all(&db, space, 0).await.len(), 6_500);

    assert_eq!(
        db.store.compact(from_now(10), 100).await.unwrap(),
        Compaction {
            spaces: 1,
            tombstones: 6_500
        }
    );
    assert_eq!(pull_all(&db, space, 0).await, vec![]);
    assert_eq!(db.store.space(space).await.unwrap().unwrap().compacted, 2);
}

async fn storage_quota_counts_blobs_per_user(db: Db) {
    let store = db.store.with_quota(Some(100));
    let mut rng = rng(23);
    let (alice, bob) = (random_id(&mut rng), random_id(&mut rng));
    let (home, bobs) = (random_id(&mut rng), random_id(&mut rng));
    store.ensure_personal_space(home, alice).await.unwrap();
    store.ensure_personal_space(bobs, bob).await.unwrap();
    let (x, y) = (Uuid::from_u128(1), Uuid::from_u128(2));

    store.push(home, &[put(x, 0, &[1; 60])]).await.unwrap();
    assert_eq!(store.usage(alice).await.unwrap(), 60);
    // 60 + 50 > 100: refused, nothing written.
    match store.push(home, &[put(y, 0, &[2; 50])]).await {
        Err(StoreError::QuotaExceeded {
            used: 60,
            quota: 100,
            needed: 50,
        }) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(pull_all(&db, home, 1).await, vec![]);
    // Replacing counts the difference; deleting frees the bytes.
    store
        .push(home, &[put(x, 1, &[3; 10]), put(y, 0, &[2; 50])])
        .await
        .unwrap();
    assert_eq!(store.usage(alice).await.unwrap(), 60);
    store.push(home, &[delete(x, 2)]).await.unwrap();
    assert_eq!(store.usage(alice).await.unwrap(), 50);
    // Another user's quota is their own.
    store.push(bobs, &[put(x, 0, &[4; 90])]).await.unwrap();
    assert_eq!(store.usage(bob).await.unwrap(), 90);

    // A shared space counts against its creator.
    let shared = random_id(&mut rng);
    store
        .create_space(
            shared,
            alice,
            "did:key:z6MkTest",
            b"genesis",
            &[7; 32],
            b"sealed",
        )
        .await
        .unwrap();
    match store.push(shared, &[put(x, 0, &[5; 51])]).await {
        Err(StoreError::QuotaExceeded { used: 50, .. }) => {}
        other => panic!("{other:?}"),
    }
    store.push(shared, &[put(x, 0, &[5; 50])]).await.unwrap();
    assert_eq!(store.usage(alice).await.unwrap(), 100);
    // Without a quota the same store takes anything.
    db.store
        .push(shared, &[put(y, 0, &[6; 500])])
        .await
        .unwrap();
    assert_eq!(db.store.usage(alice).await.unwrap(), 600);
}
