-- Files (PostgreSQL). Mirrors ../sqlite/0004_files.sql.
-- One row per stored file. The encrypted bytes live in the object store under
-- {space}/{id}/{upload}; the row is written only once that object is complete,
-- in the transaction that moves the space cursor, so a row always has its
-- bytes (objects without a row are swept). Files are immutable: a new
-- version of an attachment is a new file id.

CREATE TABLE files (
    space_id    uuid        NOT NULL REFERENCES spaces (id),
    id          uuid        NOT NULL,
    -- the record the file belongs to; a push that deletes the record deletes it
    record_id   uuid        NOT NULL,
    -- the space cursor of the upload
    cursor      bigint      NOT NULL CHECK (cursor > 0),
    -- bytes of the stored (encrypted) body, for quotas
    size        bigint      NOT NULL CHECK (size >= 0),
    -- epoch (u32 BE) || AES-KW(epoch key, file key)
    dek         bytea       NOT NULL CHECK (octet_length(dek) = 44),
    -- names the object; unique per PUT, so a lost race never shares an object
    upload      uuid        NOT NULL UNIQUE,
    -- the user whose token uploaded it (quotas)
    uploader    uuid        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (space_id, id)
);

-- Pulls and fanout read files in cursor order.
CREATE INDEX files_by_cursor ON files (space_id, cursor);
-- Deleting a record finds its files.
CREATE INDEX files_by_record ON files (space_id, record_id);
