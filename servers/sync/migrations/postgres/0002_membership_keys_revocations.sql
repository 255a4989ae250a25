-- Shared-space state (PostgreSQL). Mirrors ../sqlite/0002_membership_keys_revocations.sql.
-- Every row here takes the space cursor of the write that made it.

-- The newest begun epoch and whether its rotation is complete (every record
-- key rewrapped). A space starts at epoch 1, complete.
ALTER TABLE spaces ADD COLUMN epoch bigint NOT NULL DEFAULT 1 CHECK (epoch >= 1 AND epoch <= 4294967295);
ALTER TABLE spaces ADD COLUMN epoch_complete boolean NOT NULL DEFAULT true;

-- The membership log: opaque entries chained by SHA-256 of their ciphertext.
CREATE TABLE membership (
    space_id    uuid   NOT NULL REFERENCES spaces (id),
    cursor      bigint NOT NULL CHECK (cursor > 0),
    prev_hash   bytea  CHECK (prev_hash IS NULL OR octet_length(prev_hash) = 32),
    hash        bytea  NOT NULL CHECK (octet_length(hash) = 32),
    ciphertext  bytea  NOT NULL,
    PRIMARY KEY (space_id, cursor)
);

-- Epoch keys sealed to each member's DID.
CREATE TABLE sealed_keys (
    space_id  uuid   NOT NULL REFERENCES spaces (id),
    epoch     bigint NOT NULL CHECK (epoch >= 1),
    did       text   NOT NULL,
    cursor    bigint NOT NULL CHECK (cursor > 0),
    sealed    bytea  NOT NULL,
    PRIMARY KEY (space_id, did, epoch)
);
CREATE INDEX sealed_keys_by_cursor ON sealed_keys (space_id, cursor);

-- Revoked capability tokens: SHA-256 of the compact token.
CREATE TABLE revocations (
    space_id    uuid  NOT NULL REFERENCES spaces (id),
    token_hash  bytea NOT NULL CHECK (octet_length(token_hash) = 32),
    PRIMARY KEY (space_id, token_hash)
);
