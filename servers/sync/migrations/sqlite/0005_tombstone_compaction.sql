-- Tombstone compaction (SQLite). Mirrors ../postgres/0005_tombstone_compaction.sql.

-- When a record was deleted (Unix seconds; NULL while it is live). Compaction
-- drops tombstones older than the configured horizon.
ALTER TABLE records ADD COLUMN deleted_at INTEGER;
UPDATE records SET deleted_at = unixepoch() WHERE blob IS NULL;
CREATE INDEX records_tombstones ON records (deleted_at) WHERE deleted_at IS NOT NULL;

-- Tombstones with a cursor up to this one may have been dropped: a pull from
-- an older (non-zero) cursor starts over from 0 (`reset`).
ALTER TABLE spaces ADD COLUMN compacted INTEGER NOT NULL DEFAULT 0 CHECK (compacted >= 0);
