-- Spaces and their records (PostgreSQL). Mirrors ../sqlite/0001_spaces_and_records.sql.
-- Membership, keys and files come in later migrations and share the space cursor.

CREATE TABLE spaces (
    id          uuid        PRIMARY KEY,
    kind        text        NOT NULL CHECK (kind IN ('personal', 'shared')),
    -- personal spaces: the owning user; shared spaces: the creator's did:key
    owner_user  uuid,
    root_did    text,
    -- the cursor of the latest write; every write moves it up
    cursor      bigint      NOT NULL DEFAULT 0 CHECK (cursor >= 0),
    created_at  timestamptz NOT NULL DEFAULT now(),
    CHECK (
        (kind = 'personal' AND owner_user IS NOT NULL AND root_did IS NULL)
        OR (kind = 'shared' AND owner_user IS NULL AND root_did IS NOT NULL)
    )
);

-- One row per record: its latest version, or a tombstone (blob and dek NULL).
CREATE TABLE records (
    space_id  uuid   NOT NULL REFERENCES spaces (id),
    id        uuid   NOT NULL,
    cursor    bigint NOT NULL CHECK (cursor > 0),
    blob      bytea,
    -- epoch (u32 BE) || AES-KW(epoch key, DEK)
    dek       bytea  CHECK (dek IS NULL OR octet_length(dek) = 44),
    CHECK ((blob IS NULL) = (dek IS NULL)),
    PRIMARY KEY (space_id, id)
);

-- Ciphertext does not compress: store large blobs out of line without trying.
ALTER TABLE records ALTER COLUMN blob SET STORAGE EXTERNAL;

-- Pulls walk this index in (cursor, id) order: no sort, keyset pagination.
CREATE INDEX records_by_cursor ON records (space_id, cursor, id);
