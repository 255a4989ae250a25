-- Invitations (PostgreSQL). Mirrors ../sqlite/0003_invitations.sql.
-- A sealed payload waiting in a recipient's mailbox (the recipient's personal
-- space id) until it expires or is deleted by its recipient or its sender.
-- Times are Unix seconds.

CREATE TABLE invitations (
    id          uuid   NOT NULL PRIMARY KEY,
    -- creation order: listings are oldest first
    seq         bigint NOT NULL GENERATED ALWAYS AS IDENTITY UNIQUE,
    mailbox     uuid   NOT NULL,
    -- the user who created it (may withdraw it)
    sender      uuid   NOT NULL,
    payload     bytea  NOT NULL,
    created_at  bigint NOT NULL,
    expires_at  bigint NOT NULL CHECK (expires_at > created_at)
);

CREATE INDEX invitations_by_mailbox ON invitations (mailbox, seq);
CREATE INDEX invitations_by_expiry ON invitations (expires_at);
