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
