-- Invitations (SQLite). Mirrors ../postgres/0003_invitations.sql.
-- A sealed payload waiting in a recipient's mailbox (the recipient's personal
-- space id) until it expires or is deleted by its recipient or its sender.
-- Times are Unix seconds.

CREATE TABLE invitations (
    -- creation order: listings are oldest first
    seq         INTEGER NOT NULL PRIMARY KEY,
    id          BLOB    NOT NULL UNIQUE CHECK (length(id) = 16),
    mailbox     BLOB    NOT NULL CHECK (length(mailbox) = 16),
    -- the user who created it (may withdraw it)
    sender      BLOB    NOT NULL CHECK (length(sender) = 16),
    payload     BLOB    NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL CHECK (expires_at > created_at)
) STRICT;

CREATE INDEX invitations_by_mailbox ON invitations (mailbox, seq);
CREATE INDEX invitations_by_expiry ON invitations (expires_at);
