-- Shared-space state (SQLite). Mirrors ../postgres/0002_membership_keys_revocations.sql.
-- Every row here takes the space cursor of the write that made it.

-- The newest begun epoch and whether its rotation is complete (every record
-- key rewrapped). A space starts at epoch 1, complete.
ALTER TABLE spaces ADD COLUMN epoch INTEGER NOT NULL DEFAULT 1 CHECK (epoch >= 1);
ALTER TABLE spaces ADD COLUMN epoch_complete INTEGER NOT NULL DEFAULT 1 CHECK (epoch_complete IN (0, 1));

-- The membership log: opaque entries chained by SHA-256 of their ciphertext.
CREATE TABLE membership (
    space_id    BLOB    NOT NULL REFERENCES spaces (id),
    cursor      INTEGER NOT NULL CHECK (cursor > 0),
    prev_hash   BLOB    CHECK (prev_hash IS NULL OR length(prev_hash) = 32),
    hash        BLOB    NOT NULL CHECK (length(hash) = 32),
    ciphertext  BLOB    NOT NULL,
    PRIMARY KEY (space_id, cursor)
) STRICT;

-- Epoch keys sealed to each member's DID.
CREATE TABLE sealed_keys (
    space_id  BLOB    NOT NULL REFERENCES spaces (id),
    epoch     INTEGER NOT NULL CHECK (epoch >= 1),
    did       TEXT    NOT NULL,
    cursor    INTEGER NOT NULL CHECK (cursor > 0),
    sealed    BLOB    NOT NULL,
    PRIMARY KEY (space_id, did, epoch)
) STRICT;
CREATE INDEX sealed_keys_by_cursor ON sealed_keys (space_id, cursor);

-- Revoked capability tokens: SHA-256 of the compact token.
CREATE TABLE revocations (
    space_id    BLOB NOT NULL REFERENCES spaces (id),
    token_hash  BLOB NOT NULL CHECK (length(token_hash) = 32),
    PRIMARY KEY (space_id, token_hash)
) STRICT;
