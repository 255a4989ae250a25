//! The throwaway cluster really runs, and databases are isolated.

#[test]
fn databases_are_separate_and_usable() {
    let a = sealbase_pgtest::database("isolation a");
    let b = sealbase_pgtest::database("isolation b");
    assert_ne!(a.name(), b.name());
    assert_eq!(a.port(), b.port(), "one cluster per process");

    let cluster = sealbase_pgtest::cluster();
    cluster
        .psql(
            a.name(),
            "CREATE TABLE t (v int); INSERT INTO t VALUES (41), (1)",
        )
        .unwrap();
    assert_eq!(
        cluster.psql(a.name(), "SELECT sum(v) FROM t").unwrap(),
        "42"
    );
    let err = cluster.psql(b.name(), "SELECT * FROM t").unwrap_err();
    assert!(err.contains("does not exist"), "{err}");
    assert_eq!(
        cluster.psql(a.name(), "SHOW server_version_num").unwrap()[..2],
        *"15"
    );
}

#[test]
fn urls_name_the_database_and_socket() {
    let db = sealbase_pgtest::database("urls");
    assert!(db.url().ends_with(&format!(":{}/{}", db.port(), db.name())));
    assert!(
        db.socket_url()
            .contains(&*db.socket_dir().to_string_lossy())
    );
    // The Unix socket exists where the URL says.
    let sock = db.socket_dir().join(format!(".s.PGSQL.{}", db.port()));
    assert!(sock.exists(), "{} missing", sock.display());
}
