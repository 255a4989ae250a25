-- Spaces and their records (SQLite). Mirrors ../postgres/0001_spaces_and_records.sql:
-- ids are 16-byte BLOBs (big-endian UUID bytes, so they sort like Postgres uuids),
-- cursors INTEGER (i64), times Unix seconds. Membership, keys and files come in
-- later migrations and share the space cursor.

CREATE TABLE spaces (
    id          BLOB    NOT NULL PRIMARY KEY CHECK (length(id) = 16),
    kind        TEXT    NOT NULL CHECK (kind IN ('personal', 'shared')),
    -- personal spaces: the owning user; shared spaces: the creator's did:key
    owner_user  BLOB    CHECK (owner_user IS NULL OR length(owner_user) = 16),
    root_did    TEXT,
    -- the cursor of the latest write; every write moves it up
    cursor      INTEGER NOT NULL DEFAULT 0 CHECK (cursor >= 0),
    created_at  INTEGER NOT NULL DEFAULT (unixepoch()),
    CHECK (
        (kind = 'personal' AND owner_user IS NOT NULL AND root_did IS NULL)
        OR (kind = 'shared' AND owner_user IS NULL AND root_did IS NOT NULL)
    )
) STRICT;

-- One row per record: its latest version, or a tombstone (blob and dek NULL).
-- A rowid table rather than WITHOUT ROWID: blobs are up to 3 MiB, far past the
-- row size where a clustered key pays off.
CREATE TABLE records (
    space_id  BLOB    NOT NULL REFERENCES spaces (id),
    id        BLOB    NOT NULL CHECK (length(id) = 16),
    cursor    INTEGER NOT NULL CHECK (cursor > 0),
    blob      BLOB,
    -- epoch (u32 BE) || AES-KW(epoch key, DEK)
    dek       BLOB    CHECK (dek IS NULL OR length(dek) = 44),
    CHECK ((blob IS NULL) = (dek IS NULL)),
    PRIMARY KEY (space_id, id)
) STRICT;

-- Pulls walk this index in (cursor, id) order: no sort, keyset pagination.
CREATE INDEX records_by_cursor ON records (space_id, cursor, id);
