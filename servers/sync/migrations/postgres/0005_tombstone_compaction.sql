-- Tombstone compaction (PostgreSQL). Mirrors ../sqlite/0005_tombstone_compaction.sql.

-- When a record was deleted (Unix seconds; NULL while it is live). Compaction
-- drops tombstones older than the configured horizon.
ALTER TABLE records ADD COLUMN deleted_at bigint;
UPDATE records SET deleted_at = extract(epoch FROM now())::bigint WHERE blob IS NULL;
ALTER TABLE records ADD CONSTRAINT records_deleted_at CHECK ((blob IS NULL) = (deleted_at IS NOT NULL));
CREATE INDEX records_tombstones ON records (deleted_at) WHERE deleted_at IS NOT NULL;

-- Tombstones with a cursor up to this one may have been dropped: a pull from
-- an older (non-zero) cursor starts over from 0 (`reset`).
ALTER TABLE spaces ADD COLUMN compacted bigint NOT NULL DEFAULT 0 CHECK (compacted >= 0);
