-- Accounts server schema (Postgres). The SQLite migration is the same
-- schema with INTEGER and BLOB. Secrets that clients present later (session
-- and refresh tokens, codes, signup and recovery ids) are stored hashed.

CREATE TABLE accounts (
    id TEXT PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    email TEXT NOT NULL UNIQUE,
    password_file BYTEA NOT NULL,
    wrapped_ark BYTEA NOT NULL,
    recovery_blob BYTEA NOT NULL,
    ark_proof_hash BYTEA NOT NULL,
    credentials_version BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE email_codes (
    id_hash BYTEA PRIMARY KEY,
    purpose TEXT NOT NULL,
    email TEXT NOT NULL,
    username TEXT,
    account_id TEXT,
    code_hash BYTEA NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    verified_at BIGINT,
    consumed_at BIGINT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX email_codes_by_email ON email_codes (email, created_at);
CREATE INDEX email_codes_by_expiry ON email_codes (expires_at);

CREATE TABLE login_states (
    id_hash BYTEA PRIMARY KEY,
    username TEXT NOT NULL,
    account_id TEXT,
    state BYTEA NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX login_states_by_expiry ON login_states (expires_at);

CREATE TABLE login_throttle (
    username TEXT PRIMARY KEY,
    window_start BIGINT NOT NULL,
    failures BIGINT NOT NULL,
    lockouts BIGINT NOT NULL,
    locked_until BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE sessions (
    token_hash BYTEA PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    credentials_version BIGINT NOT NULL,
    auth_time BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX sessions_by_account ON sessions (account_id);

CREATE TABLE clients (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    redirect_uris TEXT NOT NULL,
    scopes TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE authorization_requests (
    id_hash BYTEA PRIMARY KEY,
    client_id TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    redirect_uri TEXT NOT NULL,
    scope TEXT NOT NULL,
    state TEXT NOT NULL,
    code_challenge TEXT NOT NULL,
    key_x25519 TEXT,
    account_id TEXT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX authorization_requests_by_expiry ON authorization_requests (expires_at);

CREATE TABLE authorization_codes (
    code_hash BYTEA PRIMARY KEY,
    client_id TEXT NOT NULL,
    account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    redirect_uri TEXT NOT NULL,
    scope TEXT NOT NULL,
    code_challenge TEXT NOT NULL,
    key_x25519 TEXT,
    key_jwe TEXT,
    credentials_version BIGINT NOT NULL,
    family_id TEXT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT
);
CREATE INDEX authorization_codes_by_expiry ON authorization_codes (expires_at);

CREATE TABLE grants (
    account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    client_id TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    personal_space_id TEXT NOT NULL UNIQUE,
    did TEXT NOT NULL,
    x25519 BYTEA NOT NULL,
    attestation BYTEA NOT NULL,
    scope TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (account_id, client_id)
);

CREATE TABLE refresh_families (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    client_id TEXT NOT NULL,
    scope TEXT NOT NULL,
    credentials_version BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT,
    revoked_reason TEXT
);
CREATE INDEX refresh_families_by_account ON refresh_families (account_id);

CREATE TABLE refresh_tokens (
    token_hash BYTEA PRIMARY KEY,
    family_id TEXT NOT NULL REFERENCES refresh_families (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT
);
CREATE INDEX refresh_tokens_by_family ON refresh_tokens (family_id);
