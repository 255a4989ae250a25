//! Storage: every SQL statement of the accounts server, on SQLite or
//! Postgres through sqlx's `Any` driver.
//!
//! The statements are written once in the SQL both databases share
//! (`$n` parameters, `ON CONFLICT`, `RETURNING`); only the migrations differ
//! in column types. Handlers never see SQL: they call the methods here.
//!
//! Invariants this module keeps:
//! - bearer secrets (session and refresh tokens, authorization codes, signup,
//!   recovery, login and request ids) are only ever stored as SHA-256
//!   hashes, which the caller computes ([`crate::secret`]);
//! - a state change that must happen once (consuming a code, rotating a
//!   refresh token, finishing a signup) is one conditional `UPDATE`, so two
//!   concurrent requests cannot both succeed;
//! - a password change or recovery bumps the account's credentials version,
//!   and removes its sessions and revokes its refresh families in the same
//!   transaction.

use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions, AnyRow};
// Interpolated SQL here only ever splices in constant column names and lists.
use sqlx::{AnyPool, AssertSqlSafe, Row};
use uuid::Uuid;

/// Which database a URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// `sqlite://…`
    Sqlite,
    /// `postgres://…` or `postgresql://…`
    Postgres,
}

impl Backend {
    /// The backend of `url`, or `None` for any other scheme.
    pub fn of_url(url: &str) -> Option<Self> {
        if url.starts_with("sqlite:") {
            Some(Self::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Self::Postgres)
        } else {
            None
        }
    }
}

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database refused or failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// Migrations failed.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A stored value does not parse (a corrupted row).
    #[error("stored {0} is corrupt")]
    Corrupt(&'static str),
}

type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The accounts database.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
}

fn uuid_col(row: &AnyRow, col: &str) -> Result<Uuid> {
    let text: String = row.try_get(col)?;
    Uuid::from_str(&text).map_err(|_| StoreError::Corrupt("uuid"))
}

fn opt_uuid_col(row: &AnyRow, col: &str) -> Result<Option<Uuid>> {
    let text: Option<String> = row.try_get(col)?;
    text.map(|t| Uuid::from_str(&t).map_err(|_| StoreError::Corrupt("uuid")))
        .transpose()
}

/// An account row.
#[derive(Clone)]
pub struct AccountRow {
    /// Account id.
    pub id: Uuid,
    /// Handle (lower case).
    pub username: String,
    /// Verified email (lower case).
    pub email: String,
    /// OPAQUE password file.
    pub password_file: Vec<u8>,
    /// `ARK` wrapped under the export key's wrapping key.
    pub wrapped_ark: Vec<u8>,
    /// `ARK` wrapped under the recovery key.
    pub recovery_blob: Vec<u8>,
    /// SHA-256 of the `ARK` proof.
    pub ark_proof_hash: Vec<u8>,
    /// Bumped by every password change and recovery.
    pub credentials_version: i64,
}

impl std::fmt::Debug for AccountRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountRow")
            .field("id", &self.id)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

impl AccountRow {
    fn from_row(row: &AnyRow) -> Result<Self> {
        Ok(Self {
            id: uuid_col(row, "id")?,
            username: row.try_get("username")?,
            email: row.try_get("email")?,
            password_file: row.try_get("password_file")?,
            wrapped_ark: row.try_get("wrapped_ark")?,
            recovery_blob: row.try_get("recovery_blob")?,
            ark_proof_hash: row.try_get("ark_proof_hash")?,
            credentials_version: row.try_get("credentials_version")?,
        })
    }
}

const ACCOUNT_COLUMNS: &str = "id, username, email, password_file, wrapped_ark, recovery_blob, \
     ark_proof_hash, credentials_version";

/// Why an account could not be created.
#[derive(Debug, PartialEq, Eq)]
pub enum CreateAccount {
    /// Created.
    Created,
    /// The username is taken.
    UsernameTaken,
    /// The email already has an account.
    EmailTaken,
}

/// What an emailed code is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodePurpose {
    /// Signup: proves the email.
    Signup,
    /// Recovery: proves control of the account's email.
    Recovery,
}

impl CodePurpose {
    fn as_str(self) -> &'static str {
        match self {
            Self::Signup => "signup",
            Self::Recovery => "recovery",
        }
    }
}

/// An emailed code in flight.
#[derive(Debug, Clone)]
pub struct CodeRow {
    /// Email it went to.
    pub email: String,
    /// Signup: the wanted username.
    pub username: Option<String>,
    /// Recovery: the account (none for a decoy recovery).
    pub account_id: Option<Uuid>,
    /// HMAC of the code.
    pub code_hash: Vec<u8>,
    /// Wrong guesses so far.
    pub attempts: i64,
    /// When the code was entered correctly.
    pub verified_at: Option<i64>,
    /// When the flow finished.
    pub consumed_at: Option<i64>,
    /// Unix seconds after which it is void.
    pub expires_at: i64,
}

/// A new emailed code.
#[derive(Debug)]
pub struct NewCode<'a> {
    /// SHA-256 of the flow id given to the client.
    pub id_hash: &'a [u8],
    /// What it is for.
    pub purpose: CodePurpose,
    /// Where it goes.
    pub email: &'a str,
    /// Signup: the wanted username.
    pub username: Option<&'a str>,
    /// Recovery: the account.
    pub account_id: Option<Uuid>,
    /// HMAC of the code.
    pub code_hash: &'a [u8],
    /// Now.
    pub now: i64,
    /// Expiry.
    pub expires_at: i64,
}

/// A failed-login counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Throttle {
    /// Start of the current counting window.
    pub window_start: i64,
    /// Failures in the window.
    pub failures: i64,
    /// Lockouts so far (each one longer than the last).
    pub lockouts: i64,
    /// Unix seconds until which logins are refused.
    pub locked_until: i64,
}

/// A valid session.
#[derive(Debug, Clone)]
pub struct SessionRow {
    /// The account.
    pub account: AccountRow,
    /// When the user last proved their password.
    pub auth_time: i64,
    /// Expiry.
    pub expires_at: i64,
}

/// A registered OAuth client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRow {
    /// `client_id`.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Exact redirect URIs.
    pub redirect_uris: Vec<String>,
    /// Scopes it may ask for.
    pub scopes: Vec<String>,
}

/// A pending authorization request.
#[derive(Debug, Clone)]
pub struct AuthRequestRow {
    /// The app.
    pub client_id: String,
    /// Exact redirect URI (already matched).
    pub redirect_uri: String,
    /// Scopes, space-separated.
    pub scope: String,
    /// The app's `state`.
    pub state: String,
    /// PKCE challenge.
    pub code_challenge: String,
    /// The app's ephemeral X25519 key, base64url.
    pub key_x25519: Option<String>,
    /// The account it was shown to, once a signed-in user opened it.
    pub account_id: Option<Uuid>,
    /// Expiry.
    pub expires_at: i64,
}

/// An issued authorization code.
#[derive(Debug, Clone)]
pub struct CodeGrantRow {
    /// The app.
    pub client_id: String,
    /// The user.
    pub account_id: Uuid,
    /// Redirect URI it was issued for.
    pub redirect_uri: String,
    /// Scopes, space-separated.
    pub scope: String,
    /// PKCE challenge.
    pub code_challenge: String,
    /// Bound X25519 key.
    pub key_x25519: Option<String>,
    /// The sealed app key, relayed once.
    pub key_jwe: Option<String>,
    /// Credentials version at consent.
    pub credentials_version: i64,
    /// Expiry.
    pub expires_at: i64,
}

/// Result of redeeming an authorization code.
#[derive(Debug)]
pub enum Redeem {
    /// First use: the grant.
    Fresh(CodeGrantRow),
    /// The code was used before; the family it started (if any) has been
    /// revoked.
    Replayed,
    /// No such code.
    Unknown,
}

/// A user's grant to an app: the app identity and personal space.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantRow {
    /// The user.
    pub account_id: Uuid,
    /// The app.
    pub client_id: String,
    /// Personal space (and mailbox) id.
    pub personal_space_id: Uuid,
    /// `did:key`.
    pub did: String,
    /// X25519 public key.
    pub x25519: Vec<u8>,
    /// Directory attestation.
    pub attestation: Vec<u8>,
    /// Scopes granted, space-separated.
    pub scope: String,
}

impl GrantRow {
    fn from_row(row: &AnyRow) -> Result<Self> {
        Ok(Self {
            account_id: uuid_col(row, "account_id")?,
            client_id: row.try_get("client_id")?,
            personal_space_id: uuid_col(row, "personal_space_id")?,
            did: row.try_get("did")?,
            x25519: row.try_get("x25519")?,
            attestation: row.try_get("attestation")?,
            scope: row.try_get("scope")?,
        })
    }
}

/// A refresh token family (one per authorization).
#[derive(Debug, Clone)]
pub struct FamilyRow {
    /// Family id.
    pub id: Uuid,
    /// The user.
    pub account_id: Uuid,
    /// The app.
    pub client_id: String,
    /// Scopes, space-separated.
    pub scope: String,
}

/// Result of presenting a refresh token.
#[derive(Debug)]
pub enum Refresh {
    /// Valid and now used: issue the next one in `family`.
    Rotated(FamilyRow),
    /// Presented before: the whole family has just been revoked.
    Reused,
    /// Unknown, expired, revoked, or its account's credentials changed.
    Invalid,
}

impl Store {
    /// Connects (creating an SQLite file and its directory if needed).
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, anyhow::Error> {
        sqlx::any::install_default_drivers();
        let backend = Backend::of_url(url).ok_or_else(|| {
            anyhow::anyhow!("DATABASE_URL must start with sqlite:// or postgres://")
        })?;
        let mut url = url.to_owned();
        if backend == Backend::Sqlite {
            if let Some(path) = sqlite_path(&url)
                && let Some(dir) = std::path::Path::new(&path).parent()
                && !dir.as_os_str().is_empty()
            {
                std::fs::create_dir_all(dir).map_err(|e| {
                    anyhow::anyhow!("cannot create the database directory {dir:?}: {e}")
                })?;
            }
            if !url.contains("mode=") {
                url.push_str(if url.contains('?') {
                    "&mode=rwc"
                } else {
                    "?mode=rwc"
                });
            }
        }
        let options = AnyConnectOptions::from_str(&url)?;
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // Readers do not block the writer; the busy timeout
                        // (sqlx: 5 s) serialises writers.
                        sqlx::query("PRAGMA journal_mode = WAL")
                            .execute(&mut *conn)
                            .await?;
                        sqlx::query("PRAGMA foreign_keys = ON")
                            .execute(&mut *conn)
                            .await?;
                        sqlx::query("PRAGMA synchronous = NORMAL")
                            .execute(&mut *conn)
                            .await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        Ok(Self { pool, backend })
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The pool (tests read the raw tables through it).
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Applies pending migrations.
    pub async fn migrate(&self) -> Result<()> {
        match self.backend {
            Backend::Sqlite => {
                sqlx::migrate!("./migrations/sqlite")
                    .run(&self.pool)
                    .await?
            }
            Backend::Postgres => {
                sqlx::migrate!("./migrations/postgres")
                    .run(&self.pool)
                    .await?
            }
        }
        Ok(())
    }

    // -- emailed codes ------------------------------------------------------

    /// Codes sent to `email` (any purpose) since `since`.
    pub async fn codes_sent_since(&self, email: &str, since: i64) -> Result<i64> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM email_codes WHERE email = $1 AND created_at >= $2",
        )
        .bind(email)
        .bind(since)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get("n")?)
    }

    /// Stores a new code.
    pub async fn insert_code(&self, code: NewCode<'_>) -> Result<()> {
        sqlx::query(
            "INSERT INTO email_codes (id_hash, purpose, email, username, account_id, code_hash, \
             attempts, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, 0, $7, $8)",
        )
        .bind(code.id_hash)
        .bind(code.purpose.as_str())
        .bind(code.email)
        .bind(code.username)
        .bind(code.account_id.map(|id| id.to_string()))
        .bind(code.code_hash)
        .bind(code.now)
        .bind(code.expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The code flow named by `id_hash`, if it exists for `purpose`.
    pub async fn code(&self, id_hash: &[u8], purpose: CodePurpose) -> Result<Option<CodeRow>> {
        let row = sqlx::query(
            "SELECT email, username, account_id, code_hash, attempts, verified_at, consumed_at, \
             expires_at FROM email_codes WHERE id_hash = $1 AND purpose = $2",
        )
        .bind(id_hash)
        .bind(purpose.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            Ok(CodeRow {
                email: row.try_get("email")?,
                username: row.try_get("username")?,
                account_id: opt_uuid_col(&row, "account_id")?,
                code_hash: row.try_get("code_hash")?,
                attempts: row.try_get("attempts")?,
                verified_at: row.try_get("verified_at")?,
                consumed_at: row.try_get("consumed_at")?,
                expires_at: row.try_get("expires_at")?,
            })
        })
        .transpose()
    }

    /// Counts one guess against the code; returns the new count, or `None`
    /// if `max` guesses were already spent (nothing changes then).
    pub async fn spend_code_attempt(&self, id_hash: &[u8], max: i64) -> Result<Option<i64>> {
        let row = sqlx::query(
            "UPDATE email_codes SET attempts = attempts + 1 \
             WHERE id_hash = $1 AND attempts < $2 RETURNING attempts",
        )
        .bind(id_hash)
        .bind(max)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| r.try_get("attempts").map_err(StoreError::from))
            .transpose()
    }

    /// Marks the code entered correctly.
    pub async fn mark_code_verified(&self, id_hash: &[u8], now: i64) -> Result<()> {
        sqlx::query(
            "UPDATE email_codes SET verified_at = $2 WHERE id_hash = $1 AND verified_at IS NULL",
        )
        .bind(id_hash)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Deletes codes that expired before `before`.
    pub async fn purge_expired(&self, before: i64) -> Result<()> {
        for sql in [
            "DELETE FROM email_codes WHERE expires_at < $1",
            "DELETE FROM login_states WHERE expires_at < $1",
            "DELETE FROM authorization_requests WHERE expires_at < $1",
            "DELETE FROM authorization_codes WHERE expires_at < $1",
            "DELETE FROM sessions WHERE expires_at < $1",
            "DELETE FROM refresh_tokens WHERE expires_at < $1",
        ] {
            sqlx::query(sql).bind(before).execute(&self.pool).await?;
        }
        Ok(())
    }

    // -- accounts -----------------------------------------------------------

    /// Whether `username` is taken.
    pub async fn username_taken(&self, username: &str) -> Result<bool> {
        let row = sqlx::query("SELECT 1 AS one FROM accounts WHERE username = $1")
            .bind(username)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }

    /// The account with `username`.
    pub async fn account_by_username(&self, username: &str) -> Result<Option<AccountRow>> {
        let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE username = $1");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(username)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(AccountRow::from_row).transpose()
    }

    /// The account with `email`.
    pub async fn account_by_email(&self, email: &str) -> Result<Option<AccountRow>> {
        let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE email = $1");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(email)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(AccountRow::from_row).transpose()
    }

    /// The account `id`.
    pub async fn account(&self, id: Uuid) -> Result<Option<AccountRow>> {
        let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = $1");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(AccountRow::from_row).transpose()
    }

    /// Creates the account of a verified signup and consumes the signup, in
    /// one transaction. `Ok(None)` if the signup was consumed meanwhile.
    pub async fn finish_signup(
        &self,
        signup_hash: &[u8],
        account: &AccountRow,
        now: i64,
    ) -> Result<Option<CreateAccount>> {
        let mut tx = self.pool.begin().await?;
        let consumed = sqlx::query(
            "UPDATE email_codes SET consumed_at = $2 WHERE id_hash = $1 AND purpose = 'signup' \
             AND verified_at IS NOT NULL AND consumed_at IS NULL AND expires_at >= $2",
        )
        .bind(signup_hash)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if consumed.rows_affected() != 1 {
            return Ok(None);
        }
        for (column, value, taken) in [
            ("username", &account.username, CreateAccount::UsernameTaken),
            ("email", &account.email, CreateAccount::EmailTaken),
        ] {
            let sql = format!("SELECT 1 AS one FROM accounts WHERE {column} = $1");
            if sqlx::query(AssertSqlSafe(sql))
                .bind(value)
                .fetch_optional(&mut *tx)
                .await?
                .is_some()
            {
                return Ok(Some(taken));
            }
        }
        let inserted = sqlx::query(
            "INSERT INTO accounts (id, username, email, password_file, wrapped_ark, \
             recovery_blob, ark_proof_hash, credentials_version, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) ON CONFLICT DO NOTHING",
        )
        .bind(account.id.to_string())
        .bind(&account.username)
        .bind(&account.email)
        .bind(&account.password_file)
        .bind(&account.wrapped_ark)
        .bind(&account.recovery_blob)
        .bind(&account.ark_proof_hash)
        .bind(account.credentials_version)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if inserted.rows_affected() != 1 {
            // A concurrent signup took the name or email between our check
            // and the insert; the caller reports the name as taken.
            return Ok(Some(CreateAccount::UsernameTaken));
        }
        tx.commit().await?;
        Ok(Some(CreateAccount::Created))
    }

    /// Replaces the password file and the wrapped `ARK` (and optionally the
    /// recovery blob) if the account is still at `expected_version`; bumps
    /// the credentials version, deletes every session and revokes every
    /// refresh family. With `recovery_hash`, also consumes that recovery
    /// flow in the same transaction. Returns the new version, or `None` if
    /// the account changed meanwhile (or the recovery was consumed).
    #[allow(clippy::too_many_arguments)]
    pub async fn rewrap(
        &self,
        account_id: Uuid,
        expected_version: i64,
        password_file: &[u8],
        wrapped_ark: &[u8],
        recovery_blob: Option<&[u8]>,
        recovery_hash: Option<&[u8]>,
        now: i64,
    ) -> Result<Option<i64>> {
        let id = account_id.to_string();
        let mut tx = self.pool.begin().await?;
        if let Some(hash) = recovery_hash {
            let consumed = sqlx::query(
                "UPDATE email_codes SET consumed_at = $2 WHERE id_hash = $1 \
                 AND purpose = 'recovery' AND verified_at IS NOT NULL AND consumed_at IS NULL \
                 AND expires_at >= $2",
            )
            .bind(hash)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            if consumed.rows_affected() != 1 {
                return Ok(None);
            }
        }
        let updated = sqlx::query(
            "UPDATE accounts SET password_file = $3, wrapped_ark = $4, \
             recovery_blob = COALESCE($5, recovery_blob), \
             credentials_version = credentials_version + 1, updated_at = $6 \
             WHERE id = $1 AND credentials_version = $2 RETURNING credentials_version",
        )
        .bind(&id)
        .bind(expected_version)
        .bind(password_file)
        .bind(wrapped_ark)
        .bind(recovery_blob)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = updated else {
            return Ok(None);
        };
        let version: i64 = row.try_get("credentials_version")?;
        sqlx::query("DELETE FROM sessions WHERE account_id = $1")
            .bind(&id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE refresh_families SET revoked_at = $2, revoked_reason = 'credentials changed' \
             WHERE account_id = $1 AND revoked_at IS NULL",
        )
        .bind(&id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(version))
    }

    // -- login --------------------------------------------------------------

    /// Keeps the server's OPAQUE state between the two login requests.
    pub async fn insert_login_state(
        &self,
        id_hash: &[u8],
        username: &str,
        account_id: Option<Uuid>,
        state: &[u8],
        expires_at: i64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO login_states (id_hash, username, account_id, state, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id_hash)
        .bind(username)
        .bind(account_id.map(|id| id.to_string()))
        .bind(state)
        .bind(expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Takes (deletes and returns) a login state that has not expired:
    /// `(username, account, state)`. Each state serves one attempt.
    pub async fn take_login_state(
        &self,
        id_hash: &[u8],
        now: i64,
    ) -> Result<Option<(String, Option<Uuid>, Vec<u8>)>> {
        let row = sqlx::query(
            "DELETE FROM login_states WHERE id_hash = $1 RETURNING username, account_id, state, \
             expires_at",
        )
        .bind(id_hash)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let expires_at: i64 = row.try_get("expires_at")?;
        if expires_at < now {
            return Ok(None);
        }
        Ok(Some((
            row.try_get("username")?,
            opt_uuid_col(&row, "account_id")?,
            row.try_get("state")?,
        )))
    }

    /// The failed-login counter of `username` (known or not).
    pub async fn throttle(&self, username: &str) -> Result<Throttle> {
        let row = sqlx::query(
            "SELECT window_start, failures, lockouts, locked_until FROM login_throttle \
             WHERE username = $1",
        )
        .bind(username)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            Ok(Throttle {
                window_start: row.try_get("window_start")?,
                failures: row.try_get("failures")?,
                lockouts: row.try_get("lockouts")?,
                locked_until: row.try_get("locked_until")?,
            })
        })
        .transpose()
        .map(Option::unwrap_or_default)
    }

    /// Stores the counter of `username`.
    pub async fn set_throttle(&self, username: &str, t: Throttle, now: i64) -> Result<()> {
        sqlx::query(
            "INSERT INTO login_throttle (username, window_start, failures, lockouts, \
             locked_until, updated_at) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (username) DO UPDATE SET window_start = $2, failures = $3, \
             lockouts = $4, locked_until = $5, updated_at = $6",
        )
        .bind(username)
        .bind(t.window_start)
        .bind(t.failures)
        .bind(t.lockouts)
        .bind(t.locked_until)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    // -- sessions -----------------------------------------------------------

    /// Stores a session.
    pub async fn insert_session(
        &self,
        token_hash: &[u8],
        account: &AccountRow,
        auth_time: i64,
        now: i64,
        expires_at: i64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO sessions (token_hash, account_id, credentials_version, auth_time, \
             created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(token_hash)
        .bind(account.id.to_string())
        .bind(account.credentials_version)
        .bind(auth_time)
        .bind(now)
        .bind(expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The session with `token_hash`, if unexpired and issued under the
    /// account's current credentials.
    pub async fn session(&self, token_hash: &[u8], now: i64) -> Result<Option<SessionRow>> {
        let sql = format!(
            "SELECT {}, s.auth_time, s.expires_at FROM sessions s JOIN accounts a \
             ON a.id = s.account_id WHERE s.token_hash = $1 AND s.expires_at >= $2 \
             AND s.credentials_version = a.credentials_version",
            ACCOUNT_COLUMNS
                .split(", ")
                .map(|c| format!("a.{c}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(token_hash)
            .bind(now)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| {
            Ok(SessionRow {
                account: AccountRow::from_row(&row)?,
                auth_time: row.try_get("auth_time")?,
                expires_at: row.try_get("expires_at")?,
            })
        })
        .transpose()
    }

    /// Ends a session.
    pub async fn delete_session(&self, token_hash: &[u8]) -> Result<()> {
        sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
            .bind(token_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    // -- clients ------------------------------------------------------------

    /// Registers or updates a client.
    pub async fn upsert_client(&self, client: &ClientRow, now: i64) -> Result<()> {
        sqlx::query(
            "INSERT INTO clients (id, name, redirect_uris, scopes, created_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO UPDATE SET name = $2, \
             redirect_uris = $3, scopes = $4",
        )
        .bind(&client.id)
        .bind(&client.name)
        .bind(client.redirect_uris.join(" "))
        .bind(client.scopes.join(" "))
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    fn client_from_row(row: &AnyRow) -> Result<ClientRow> {
        let uris: String = row.try_get("redirect_uris")?;
        let scopes: String = row.try_get("scopes")?;
        Ok(ClientRow {
            id: row.try_get("id")?,
            name: row.try_get("name")?,
            redirect_uris: uris.split_whitespace().map(str::to_owned).collect(),
            scopes: scopes.split_whitespace().map(str::to_owned).collect(),
        })
    }

    /// The client `id`.
    pub async fn client(&self, id: &str) -> Result<Option<ClientRow>> {
        let row = sqlx::query("SELECT id, name, redirect_uris, scopes FROM clients WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(Self::client_from_row).transpose()
    }

    /// Every client, by id.
    pub async fn clients(&self) -> Result<Vec<ClientRow>> {
        let rows = sqlx::query("SELECT id, name, redirect_uris, scopes FROM clients ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(Self::client_from_row).collect()
    }

    /// Removes a client (its grants, requests and refresh families go too).
    pub async fn delete_client(&self, id: &str) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM refresh_families WHERE client_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM authorization_codes WHERE client_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let done = sqlx::query("DELETE FROM clients WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    // -- authorization requests and codes ------------------------------------

    /// Stores a validated authorization request.
    pub async fn insert_auth_request(
        &self,
        id_hash: &[u8],
        r: &AuthRequestRow,
        now: i64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO authorization_requests (id_hash, client_id, redirect_uri, scope, state, \
             code_challenge, key_x25519, account_id, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(id_hash)
        .bind(&r.client_id)
        .bind(&r.redirect_uri)
        .bind(&r.scope)
        .bind(&r.state)
        .bind(&r.code_challenge)
        .bind(r.key_x25519.as_deref())
        .bind(r.account_id.map(|id| id.to_string()))
        .bind(now)
        .bind(r.expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// An unexpired authorization request, binding it to `account` if no
    /// account holds it yet. `None` if it is unknown, expired, or another
    /// account's.
    pub async fn claim_auth_request(
        &self,
        id_hash: &[u8],
        account: Uuid,
        now: i64,
    ) -> Result<Option<AuthRequestRow>> {
        sqlx::query(
            "UPDATE authorization_requests SET account_id = $2 \
             WHERE id_hash = $1 AND account_id IS NULL",
        )
        .bind(id_hash)
        .bind(account.to_string())
        .execute(&self.pool)
        .await?;
        let row = sqlx::query(
            "SELECT client_id, redirect_uri, scope, state, code_challenge, key_x25519, \
             account_id, expires_at FROM authorization_requests \
             WHERE id_hash = $1 AND account_id = $2 AND expires_at >= $3",
        )
        .bind(id_hash)
        .bind(account.to_string())
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            Ok(AuthRequestRow {
                client_id: row.try_get("client_id")?,
                redirect_uri: row.try_get("redirect_uri")?,
                scope: row.try_get("scope")?,
                state: row.try_get("state")?,
                code_challenge: row.try_get("code_challenge")?,
                key_x25519: row.try_get("key_x25519")?,
                account_id: opt_uuid_col(&row, "account_id")?,
                expires_at: row.try_get("expires_at")?,
            })
        })
        .transpose()
    }

    /// Ends an authorization request (answered either way). `false` if it
    /// was already answered.
    pub async fn delete_auth_request(&self, id_hash: &[u8]) -> Result<bool> {
        let done = sqlx::query("DELETE FROM authorization_requests WHERE id_hash = $1")
            .bind(id_hash)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Records the user's grant (identity keys, personal space) and issues
    /// the authorization code, in one transaction. A first grant gets a new
    /// personal space id; later ones keep it. Returns the grant.
    pub async fn grant_and_issue_code(
        &self,
        grant: &GrantRow,
        code_hash: &[u8],
        code: &CodeGrantRow,
        now: i64,
    ) -> Result<GrantRow> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO grants (account_id, client_id, personal_space_id, did, x25519, \
             attestation, scope, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) \
             ON CONFLICT (account_id, client_id) DO UPDATE SET did = $4, x25519 = $5, \
             attestation = $6, scope = $7, updated_at = $8",
        )
        .bind(grant.account_id.to_string())
        .bind(&grant.client_id)
        .bind(grant.personal_space_id.to_string())
        .bind(&grant.did)
        .bind(&grant.x25519)
        .bind(&grant.attestation)
        .bind(&grant.scope)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO authorization_codes (code_hash, client_id, account_id, redirect_uri, \
             scope, code_challenge, key_x25519, key_jwe, credentials_version, created_at, \
             expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(code_hash)
        .bind(&code.client_id)
        .bind(code.account_id.to_string())
        .bind(&code.redirect_uri)
        .bind(&code.scope)
        .bind(&code.code_challenge)
        .bind(code.key_x25519.as_deref())
        .bind(code.key_jwe.as_deref())
        .bind(code.credentials_version)
        .bind(now)
        .bind(code.expires_at)
        .execute(&mut *tx)
        .await?;
        let row = sqlx::query(
            "SELECT account_id, client_id, personal_space_id, did, x25519, attestation, scope \
             FROM grants WHERE account_id = $1 AND client_id = $2",
        )
        .bind(grant.account_id.to_string())
        .bind(&grant.client_id)
        .fetch_one(&mut *tx)
        .await?;
        let stored = GrantRow::from_row(&row)?;
        tx.commit().await?;
        Ok(stored)
    }

    /// The grant of `account` to `client_id`.
    pub async fn grant(&self, account: Uuid, client_id: &str) -> Result<Option<GrantRow>> {
        let row = sqlx::query(
            "SELECT account_id, client_id, personal_space_id, did, x25519, attestation, scope \
             FROM grants WHERE account_id = $1 AND client_id = $2",
        )
        .bind(account.to_string())
        .bind(client_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(GrantRow::from_row).transpose()
    }

    /// The grant of the user with `username` to `client_id`.
    pub async fn grant_by_username(
        &self,
        username: &str,
        client_id: &str,
    ) -> Result<Option<GrantRow>> {
        let row = sqlx::query(
            "SELECT g.account_id, g.client_id, g.personal_space_id, g.did, g.x25519, \
             g.attestation, g.scope FROM grants g JOIN accounts a ON a.id = g.account_id \
             WHERE a.username = $1 AND g.client_id = $2",
        )
        .bind(username)
        .bind(client_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(GrantRow::from_row).transpose()
    }

    /// Redeems an authorization code: marks it used and hands out the sealed
    /// app key (then forgets it). A second redemption revokes the refresh
    /// family the first one started.
    pub async fn redeem_code(&self, code_hash: &[u8], now: i64) -> Result<Redeem> {
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(
            "UPDATE authorization_codes SET used_at = $2 WHERE code_hash = $1 AND used_at IS NULL \
             RETURNING client_id, account_id, redirect_uri, scope, code_challenge, key_x25519, \
             key_jwe, credentials_version, expires_at",
        )
        .bind(code_hash)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            let used =
                sqlx::query("SELECT family_id FROM authorization_codes WHERE code_hash = $1")
                    .bind(code_hash)
                    .fetch_optional(&mut *tx)
                    .await?;
            let Some(used) = used else {
                return Ok(Redeem::Unknown);
            };
            let family: Option<String> = used.try_get("family_id")?;
            if let Some(family) = family {
                revoke_family_in(&mut tx, &family, now, "authorization code replayed").await?;
            }
            tx.commit().await?;
            return Ok(Redeem::Replayed);
        };
        sqlx::query("UPDATE authorization_codes SET key_jwe = NULL WHERE code_hash = $1")
            .bind(code_hash)
            .execute(&mut *tx)
            .await?;
        let grant = CodeGrantRow {
            client_id: row.try_get("client_id")?,
            account_id: uuid_col(&row, "account_id")?,
            redirect_uri: row.try_get("redirect_uri")?,
            scope: row.try_get("scope")?,
            code_challenge: row.try_get("code_challenge")?,
            key_x25519: row.try_get("key_x25519")?,
            key_jwe: row.try_get("key_jwe")?,
            credentials_version: row.try_get("credentials_version")?,
            expires_at: row.try_get("expires_at")?,
        };
        tx.commit().await?;
        Ok(Redeem::Fresh(grant))
    }

    // -- refresh tokens -----------------------------------------------------

    /// Starts a refresh family for a redeemed code, with its first token.
    #[allow(clippy::too_many_arguments)]
    pub async fn start_family(
        &self,
        code_hash: &[u8],
        family: &FamilyRow,
        credentials_version: i64,
        token_hash: &[u8],
        now: i64,
        expires_at: i64,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO refresh_families (id, account_id, client_id, scope, \
             credentials_version, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(family.id.to_string())
        .bind(family.account_id.to_string())
        .bind(&family.client_id)
        .bind(&family.scope)
        .bind(credentials_version)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE authorization_codes SET family_id = $2 WHERE code_hash = $1")
            .bind(code_hash)
            .bind(family.id.to_string())
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO refresh_tokens (token_hash, family_id, created_at, expires_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(token_hash)
        .bind(family.id.to_string())
        .bind(now)
        .bind(expires_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Presents a refresh token of `client_id`: on success it is used up and
    /// `next_hash` becomes the family's live token. A token used before
    /// revokes its whole family.
    pub async fn rotate_refresh(
        &self,
        token_hash: &[u8],
        client_id: &str,
        next_hash: &[u8],
        now: i64,
        next_expires_at: i64,
    ) -> Result<Refresh> {
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(
            "SELECT t.family_id, t.expires_at, t.used_at, f.account_id, f.client_id, f.scope, \
             f.revoked_at, f.credentials_version, a.credentials_version AS current_version \
             FROM refresh_tokens t JOIN refresh_families f ON f.id = t.family_id \
             JOIN accounts a ON a.id = f.account_id WHERE t.token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(Refresh::Invalid);
        };
        let family_id: String = row.try_get("family_id")?;
        let family_client: String = row.try_get("client_id")?;
        let revoked: Option<i64> = row.try_get("revoked_at")?;
        let expires_at: i64 = row.try_get("expires_at")?;
        let family_version: i64 = row.try_get("credentials_version")?;
        let current_version: i64 = row.try_get("current_version")?;
        if family_client != client_id
            || revoked.is_some()
            || expires_at < now
            || family_version != current_version
        {
            return Ok(Refresh::Invalid);
        }
        let used = sqlx::query(
            "UPDATE refresh_tokens SET used_at = $2 WHERE token_hash = $1 AND used_at IS NULL",
        )
        .bind(token_hash)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if used.rows_affected() != 1 {
            revoke_family_in(&mut tx, &family_id, now, "refresh token reused").await?;
            tx.commit().await?;
            return Ok(Refresh::Reused);
        }
        sqlx::query(
            "INSERT INTO refresh_tokens (token_hash, family_id, created_at, expires_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(next_hash)
        .bind(&family_id)
        .bind(now)
        .bind(next_expires_at)
        .execute(&mut *tx)
        .await?;
        let family = FamilyRow {
            id: Uuid::from_str(&family_id).map_err(|_| StoreError::Corrupt("uuid"))?,
            account_id: uuid_col(&row, "account_id")?,
            client_id: family_client,
            scope: row.try_get("scope")?,
        };
        tx.commit().await?;
        Ok(Refresh::Rotated(family))
    }

    /// Revokes the family of a refresh token of `client_id` (RFC 7009).
    /// Unknown tokens are ignored.
    pub async fn revoke_refresh(&self, token_hash: &[u8], client_id: &str, now: i64) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(
            "SELECT f.id FROM refresh_tokens t JOIN refresh_families f ON f.id = t.family_id \
             WHERE t.token_hash = $1 AND f.client_id = $2",
        )
        .bind(token_hash)
        .bind(client_id)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(row) = row {
            let family: String = row.try_get("id")?;
            revoke_family_in(&mut tx, &family, now, "revoked by the client").await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Whether the family is revoked (tests and diagnostics).
    pub async fn family_revoked(&self, family: Uuid) -> Result<Option<String>> {
        let row = sqlx::query("SELECT revoked_reason FROM refresh_families WHERE id = $1")
            .bind(family.to_string())
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            Some(row) => row.try_get("revoked_reason")?,
            None => None,
        })
    }
}

async fn revoke_family_in(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    family: &str,
    now: i64,
    reason: &str,
) -> Result<()> {
    sqlx::query(
        "UPDATE refresh_families SET revoked_at = $2, revoked_reason = $3 \
         WHERE id = $1 AND revoked_at IS NULL",
    )
    .bind(family)
    .bind(now)
    .bind(reason)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The file path of an `sqlite:` URL, if it names a file.
fn sqlite_path(url: &str) -> Option<String> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next()?;
    (!path.is_empty() && path != ":memory:").then(|| path.to_owned())
}
