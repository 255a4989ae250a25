/*
 * Force-included into SQLite's wasm32 build (scripts/cargo-wasm sets
 * CFLAGS_wasm32_unknown_unknown="-include …/sqlite-lean.h"). The
 * sqlite-wasm-rs build passes a full-featured set of -D options and no
 * way to change them; forced includes are read after the command line,
 * so these #undefs take the extensions back out. The store uses none of
 * them (plain tables, expression indexes, JSONB, REGEXP from Rust), and
 * they are a large part of the browser module.
 */
#undef SQLITE_ENABLE_FTS5
#undef SQLITE_ENABLE_RTREE
#undef SQLITE_ENABLE_SESSION
#undef SQLITE_ENABLE_PREUPDATE_HOOK
#undef SQLITE_ENABLE_DBSTAT_VTAB
#undef SQLITE_ENABLE_DBPAGE_VTAB
#undef SQLITE_ENABLE_BYTECODE_VTAB
#undef SQLITE_ENABLE_STMTVTAB
#undef SQLITE_ENABLE_UNLOCK_NOTIFY
#undef SQLITE_ENABLE_OFFSET_SQL_FUNC
#undef SQLITE_ENABLE_COLUMN_METADATA
#undef SQLITE_ENABLE_UNKNOWN_SQL_FUNCTION
#undef SQLITE_ENABLE_MATH_FUNCTIONS
/*
 * Omissions that need no regenerated parser, so they hold in the
 * amalgamation. WAL: the SAH-pool VFS has no shared memory, so the store's
 * `journal_mode=WAL` keeps the rollback journal in the browser with or
 * without it (WAL under exclusive locking lost data across reloads).
 * The rest are APIs and pragmas neither rusqlite's features in use nor the
 * store call: UTF-16, sqlite3_complete, declared types, get_table,
 * progress handlers, compile-option lists, Tcl variables, deserialize,
 * incremental blobs, authorizers, integrity checks, introspection pragmas.
 * The date and time functions stay: without them SQLite needs libc's
 * strftime/gmtime, which wasm32-unknown-unknown does not have.
 */
#define SQLITE_OMIT_WAL 1
#define SQLITE_OMIT_UTF16 1
#define SQLITE_OMIT_COMPLETE 1
#define SQLITE_OMIT_DECLTYPE 1
#define SQLITE_OMIT_GET_TABLE 1
#define SQLITE_OMIT_PROGRESS_CALLBACK 1
#define SQLITE_OMIT_COMPILEOPTION_DIAGS 1
#define SQLITE_OMIT_TCL_VARIABLE 1
#define SQLITE_OMIT_DESERIALIZE 1
#define SQLITE_OMIT_INCRBLOB 1
#define SQLITE_OMIT_AUTHORIZATION 1
#define SQLITE_OMIT_INTEGRITY_CHECK 1
#define SQLITE_OMIT_INTROSPECTION_PRAGMAS 1
