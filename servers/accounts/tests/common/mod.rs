//! Test harness: a real accounts server on a real socket, on SQLite or
//! Postgres, with the dev mailer, and the native client.
#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use rand_core::OsRng;
use sealbase_accounts::keys::KeyFile;
use sealbase_accounts::mail::Mailer;
use sealbase_accounts::store::{ClientRow, Store};
use sealbase_accounts::{AppState, Limits, Settings, router, serve};
use sealbase_auth::client::{AccountsClient, AppAuthorization, AppSession, SignedIn};
use sealbase_ratelimit::{Rate, RateLimiter};
use sqlx::Row;
use std::time::Duration;

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The first app's id and redirect URI.
pub const TASKS: &str = "tasks";
pub const TASKS_REDIRECT: &str = "http://localhost:5173/callback";
/// A second app.
pub const NOTES: &str = "notes";
pub const NOTES_REDIRECT: &str = "https://notes.example/cb";
/// A password used throughout.
pub const PASSWORD: &str = "correct horse battery staple";

pub struct Harness {
    pub state: AppState,
    pub issuer: String,
    pub http: reqwest::Client,
    pub jwks: String,
    pub sqlite_dir: Option<std::path::PathBuf>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Harness {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(dir) = &self.sqlite_dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

fn unique() -> String {
    let mut b = [0u8; 8];
    rand_core::RngCore::fill_bytes(&mut OsRng, &mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl Harness {
    /// A server whose per-IP limits do not get in the way of the flows
    /// (every test client comes from 127.0.0.1).
    pub async fn start(backend: Backend, name: &str) -> Self {
        let wide = || RateLimiter::new(Rate::new(100_000, Duration::from_millis(1)), 1000);
        let limits = Limits {
            login: wide(),
            code_send: wide(),
            code_check: wide(),
            token: wide(),
            directory: wide(),
        };
        Self::start_with(backend, name, limits).await
    }

    pub async fn start_with(backend: Backend, name: &str, limits: Limits) -> Self {
        let (url, sqlite_dir) = match backend {
            Backend::Sqlite => {
                let dir =
                    std::env::temp_dir().join(format!("sealbase-accounts-{name}-{}", unique()));
                (format!("sqlite://{}/accounts.db", dir.display()), Some(dir))
            }
            Backend::Postgres => (sealbase_pgtest::database(name).url(), None),
        };
        let store = Store::connect(&url, 8).await.unwrap();
        store.migrate().await.unwrap();
        for (id, name, redirect, scopes) in [
            (
                TASKS,
                "Tasks",
                TASKS_REDIRECT,
                "sync profile directory email",
            ),
            (NOTES, "Notes", NOTES_REDIRECT, "sync profile"),
        ] {
            store
                .upsert_client(
                    &ClientRow {
                        id: id.into(),
                        name: name.into(),
                        redirect_uris: vec![redirect.into()],
                        scopes: scopes.split(' ').map(str::to_owned).collect(),
                    },
                    0,
                )
                .await
                .unwrap();
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = format!("http://{}", listener.local_addr().unwrap());
        let keys = KeyFile::generate(&mut OsRng, 0).unwrap();
        let secrets = keys.secrets().unwrap();
        let jwks = secrets.jwks.clone();
        let settings = Settings {
            issuer: issuer.clone(),
            audience: "sealbase-sync".into(),
            sync_url: Some("ws://127.0.0.1:8081/api/v1/ws".into()),
            access_ttl: 600,
            refresh_ttl: 30 * 86_400,
            session_ttl: 14 * 86_400,
            trust_proxy: false,
            web_dir: None,
        };
        let state = AppState::new(store, secrets, Mailer::dev(), settings, limits).unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let app = router(state.clone());
        tokio::spawn(async move {
            serve(listener, app, async {
                let _ = rx.await;
            })
            .await
            .unwrap();
        });
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Self {
            state,
            issuer,
            http,
            jwks,
            sqlite_dir,
            shutdown: Some(tx),
        }
    }

    pub fn client(&self) -> AccountsClient {
        AccountsClient::new(&self.issuer)
    }

    /// The last code mailed to `email`.
    pub fn last_code(&self, email: &str) -> String {
        let mails = self.state.mailer.sent_to(email);
        let body = &mails.last().expect("a mail was sent").body;
        body.split(|c: char| !c.is_ascii_digit())
            .find(|w| w.len() == 6)
            .expect("a 6-digit code in the mail")
            .to_owned()
    }

    /// Signs up `username`; returns the signed-in client, ARK and recovery key.
    pub async fn sign_up(&self, username: &str) -> (AccountsClient, SignedIn, String) {
        let email = format!("{username}@example.com");
        let mut client = self.client();
        let started = client.signup_start(username, &email).await.unwrap();
        let code = self.last_code(&email);
        let (signed_in, recovery) = client
            .signup_finish(&started.signup_id, &code, PASSWORD)
            .await
            .unwrap();
        (client, signed_in, recovery.to_string())
    }

    /// Authorizes `client_id` for the signed-in user and exchanges the code.
    pub async fn authorize(
        &self,
        user: &AccountsClient,
        signed_in: &SignedIn,
        client_id: &str,
        redirect: &str,
        scope: &str,
    ) -> (AppAuthorization, AppSession) {
        let auth = AppAuthorization::new(client_id, redirect, scope);
        let location = user
            .open_authorize(&auth.authorize_url(&self.issuer))
            .await
            .unwrap();
        let request_id = location
            .strip_prefix("/consent?request=")
            .unwrap_or_else(|| panic!("not sent to consent: {location}"));
        let request = user.authorization_request(request_id).await.unwrap();
        let back = user.consent(&signed_in.ark, &request, true).await.unwrap();
        let code = auth.code_from_redirect(&self.issuer, &back).unwrap();
        let session = auth
            .exchange(&self.http, &self.issuer, &code)
            .await
            .unwrap();
        (auth, session)
    }

    /// Every value of every table, as bytes (a logical dump).
    pub async fn dump(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for table in [
            "accounts",
            "email_codes",
            "login_states",
            "login_throttle",
            "sessions",
            "clients",
            "authorization_requests",
            "authorization_codes",
            "grants",
            "refresh_families",
            "refresh_tokens",
        ] {
            let rows = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT * FROM {table}")))
                .fetch_all(self.state.store.pool())
                .await
                .unwrap();
            for row in rows {
                for i in 0..row.len() {
                    if let Ok(Some(b)) = row.try_get::<Option<Vec<u8>>, _>(i) {
                        out.extend_from_slice(&b);
                    } else if let Ok(Some(s)) = row.try_get::<Option<String>, _>(i) {
                        out.extend_from_slice(s.as_bytes());
                    }
                    out.push(b'|');
                }
            }
        }
        if let Some(dir) = &self.sqlite_dir {
            for entry in std::fs::read_dir(dir).unwrap() {
                out.extend(std::fs::read(entry.unwrap().path()).unwrap());
            }
        }
        out
    }
}

/// Runs an async test body on both backends.
#[macro_export]
macro_rules! both_backends {
    ($name:ident, $body:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$body(
                    $crate::common::Backend::Sqlite,
                    concat!(stringify!($name), "_sqlite"),
                )
                .await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$body(
                    $crate::common::Backend::Postgres,
                    concat!(stringify!($name), "_pg"),
                )
                .await;
            }
        }
    };
}
