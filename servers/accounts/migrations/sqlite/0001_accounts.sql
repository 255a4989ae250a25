-- Accounts server schema (SQLite). The Postgres migration is the same
-- schema with BIGINT and BYTEA. Secrets that clients present later (session
-- and refresh tokens, codes, signup and recovery ids) are stored hashed.

CREATE TABLE accounts (
    id TEXT PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    email TEXT NOT NULL UNIQUE,
    password_file BLOB NOT NULL,
    wrapped_ark BLOB NOT NULL,
    recovery_blob BLOB NOT NULL,
    ark_proof_hash BLOB NOT NULL,
    credentials_version INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE email_codes (
    id_hash BLOB PRIMARY KEY,
    purpose TEXT NOT NULL,
    email TEXT NOT NULL,
    username TEXT,
    account_id TEXT,
    code_hash BLOB NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    verified_at INTEGER,
    consumed_at INTEGER,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX email_codes_by_email ON email_codes (email, created_at);
CREATE INDEX email_codes_by_expiry ON email_codes (expires_at);

CREATE TABLE login_states (
    id_hash BLOB PRIMARY KEY,
    username TEXT NOT NULL,
    account_id TEXT,
    state BLOB NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX login_states_by_expiry ON login_states (expires_at);

CREATE TABLE login_throttle (
    username TEXT PRIMARY KEY,
    window_start INTEGER NOT NULL,
    failures INTEGER NOT NULL,
    lockouts INTEGER NOT NULL,
    locked_until INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE sessions (
    token_hash BLOB PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    credentials_version INTEGER NOT NULL,
    auth_time INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX sessions_by_account ON sessions (account_id);

CREATE TABLE clients (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    redirect_uris TEXT NOT NULL,
    scopes TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE authorization_requests (
    id_hash BLOB PRIMARY KEY,
    client_id TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    redirect_uri TEXT NOT NULL,
    scope TEXT NOT NULL,
    state TEXT NOT NULL,
    code_challenge TEXT NOT NULL,
    key_x25519 TEXT,
    account_id TEXT,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX authorization_requests_by_expiry ON authorization_requests (expires_at);

CREATE TABLE authorization_codes (
    code_hash BLOB PRIMARY KEY,
    client_id TEXT NOT NULL,
    account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    redirect_uri TEXT NOT NULL,
    scope TEXT NOT NULL,
    code_challenge TEXT NOT NULL,
    key_x25519 TEXT,
    key_jwe TEXT,
    credentials_version INTEGER NOT NULL,
    family_id TEXT,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at INTEGER
);
CREATE INDEX authorization_codes_by_expiry ON authorization_codes (expires_at);

CREATE TABLE grants (
    account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    client_id TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    personal_space_id TEXT NOT NULL UNIQUE,
    did TEXT NOT NULL,
    x25519 BLOB NOT NULL,
    attestation BLOB NOT NULL,
    scope TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (account_id, client_id)
);

CREATE TABLE refresh_families (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    client_id TEXT NOT NULL,
    scope TEXT NOT NULL,
    credentials_version INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER,
    revoked_reason TEXT
);
CREATE INDEX refresh_families_by_account ON refresh_families (account_id);

CREATE TABLE refresh_tokens (
    token_hash BLOB PRIMARY KEY,
    family_id TEXT NOT NULL REFERENCES refresh_families (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at INTEGER
);
CREATE INDEX refresh_tokens_by_family ON refresh_tokens (family_id);
