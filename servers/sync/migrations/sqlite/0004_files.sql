-- Files (SQLite). Mirrors ../postgres/0004_files.sql.
-- One row per stored file. The encrypted bytes live in the object store under
-- {space}/{id}/{upload}; the row is written only once that object is complete,
-- in the transaction that moves the space cursor, so a row always has its
-- bytes (objects without a row are swept). Files are immutable: a new
-- version of an attachment is a new file id.

CREATE TABLE files (
    space_id    BLOB    NOT NULL REFERENCES spaces (id),
    id          BLOB    NOT NULL CHECK (length(id) = 16),
    -- the record the file belongs to; a push that deletes the record deletes it
    record_id   BLOB    NOT NULL CHECK (length(record_id) = 16),
    -- the space cursor of the upload
    cursor      INTEGER NOT NULL CHECK (cursor > 0),
    -- bytes of the stored (encrypted) body, for quotas
    size        INTEGER NOT NULL CHECK (size >= 0),
    -- epoch (u32 BE) || AES-KW(epoch key, file key)
    dek         BLOB    NOT NULL CHECK (length(dek) = 44),
    -- names the object; unique per PUT, so a lost race never shares an object
    upload      BLOB    NOT NULL UNIQUE CHECK (length(upload) = 16),
    -- the user whose token uploaded it (quotas)
    uploader    BLOB    NOT NULL CHECK (length(uploader) = 16),
    created_at  INTEGER NOT NULL DEFAULT (unixepoch()),
    PRIMARY KEY (space_id, id)
) STRICT;

-- Pulls and fanout read files in cursor order.
CREATE INDEX files_by_cursor ON files (space_id, cursor);
-- Deleting a record finds its files.
CREATE INDEX files_by_record ON files (space_id, record_id);
