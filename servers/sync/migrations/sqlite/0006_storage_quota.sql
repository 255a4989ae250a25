-- Per-user storage accounting (SQLite). Mirrors ../postgres/0006_storage_quota.sql.

-- The user whose quota a space's bytes count against: the owner of a personal
-- space, the creator of a shared one (NULL for shared spaces created before
-- this migration, which count against nobody).
ALTER TABLE spaces ADD COLUMN billed_user BLOB CHECK (billed_user IS NULL OR length(billed_user) = 16);
-- Bytes of ciphertext the space stores (record blobs and files).
ALTER TABLE spaces ADD COLUMN bytes INTEGER NOT NULL DEFAULT 0 CHECK (bytes >= 0);

UPDATE spaces SET billed_user = owner_user WHERE kind = 'personal';
UPDATE spaces SET bytes = coalesce(
    (SELECT sum(length(blob)) FROM records WHERE records.space_id = spaces.id), 0);
CREATE INDEX spaces_by_billed_user ON spaces (billed_user) WHERE billed_user IS NOT NULL;
