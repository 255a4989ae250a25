//! The whole chain with nothing stood in: a user signs up at the real
//! accounts server, authorizes the app on two devices (each receives the
//! app key through key delivery and its own OAuth tokens), and both sync
//! through a real sync server that trusts the accounts server's JWKS.
//! Access tokens are refreshed with rotating refresh tokens as the engine
//! asks for them.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::sync::Mutex;
use std::time::Duration;

use common::TempDir;
use rand_core::OsRng;
use sealbase_accounts::keys::KeyFile;
use sealbase_accounts::mail::Mailer;
use sealbase_accounts::store::{ClientRow, Store};
use sealbase_accounts::{AppState, Limits, Settings, router, serve};
use sealbase_auth::client::{AccountsClient, AppAuthorization, AppSession};
use sealbase_client::native::{SystemEnv, WsConnector, spawn};
use sealbase_client::{Phase, SyncConfig, SyncEngine, SyncKeys, TokenSource};
use sealbase_ratelimit::{Rate, RateLimiter};
use sealbase_sync::auth::{KeySource, TokenVerifier, VerifierConfig};
use serde_json::json;

const APP: &str = "tasks";
const REDIRECT: &str = "http://localhost:5173/callback";
const PASSWORD: &str = "correct horse battery staple";

/// The app's OAuth session: a refresh token exchanged for a new access
/// token (and a new refresh token: rotation) whenever the engine asks.
struct OAuthTokens {
    http: reqwest::Client,
    issuer: String,
    refresh: Mutex<String>,
    first: Mutex<Option<String>>,
}

impl TokenSource for OAuthTokens {
    async fn access_token(&self) -> Result<String, String> {
        if let Some(token) = self.first.lock().unwrap().take() {
            return Ok(token);
        }
        let refresh = self.refresh.lock().unwrap().clone();
        let response = sealbase_auth::client::refresh(&self.http, &self.issuer, APP, &refresh)
            .await
            .map_err(|e| e.to_string())?;
        *self.refresh.lock().unwrap() = response.refresh_token;
        Ok(response.access_token)
    }
}

async fn accounts_server(dir: &TempDir) -> (AppState, String) {
    let store = Store::connect(&format!("sqlite://{}/accounts.db", dir.0.display()), 4)
        .await
        .unwrap();
    store.migrate().await.unwrap();
    store
        .upsert_client(
            &ClientRow {
                id: APP.into(),
                name: "Tasks".into(),
                redirect_uris: vec![REDIRECT.into()],
                scopes: vec!["sync".into(), "profile".into()],
            },
            0,
        )
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    let secrets = KeyFile::generate(&mut OsRng, 0).unwrap().secrets().unwrap();
    let wide = || RateLimiter::new(Rate::new(100_000, Duration::from_millis(1)), 1000);
    let limits = Limits {
        login: wide(),
        code_send: wide(),
        code_check: wide(),
        token: wide(),
        directory: wide(),
    };
    let settings = Settings {
        issuer: issuer.clone(),
        audience: "sealbase-sync".into(),
        sync_url: None,
        access_ttl: 600,
        refresh_ttl: 86_400,
        session_ttl: 86_400,
        trust_proxy: false,
        web_dir: None,
    };
    let state = AppState::new(store, secrets, Mailer::dev(), settings, limits).unwrap();
    let app = router(state.clone());
    tokio::spawn(async move {
        serve(listener, app, std::future::pending::<()>())
            .await
            .unwrap();
    });
    (state, issuer)
}

/// Signs in and authorizes the app, as the app's first run on a device.
async fn authorize(issuer: &str, http: &reqwest::Client, username: &str) -> AppSession {
    let mut user = AccountsClient::new(issuer);
    let signed_in = user.login(username, PASSWORD).await.unwrap();
    let auth = AppAuthorization::new(APP, REDIRECT, "sync profile");
    let location = user
        .open_authorize(&auth.authorize_url(issuer))
        .await
        .unwrap();
    let request = user
        .authorization_request(location.strip_prefix("/consent?request=").unwrap())
        .await
        .unwrap();
    let back = user.consent(&signed_in.ark, &request, true).await.unwrap();
    let code = auth.code_from_redirect(issuer, &back).unwrap();
    auth.exchange(http, issuer, &code).await.unwrap()
}

#[test]
fn devices_authorized_at_the_accounts_server_sync() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let dir = TempDir::new("accounts");
        let (state, issuer) = accounts_server(&dir).await;

        // Sign up (code by the dev mailer).
        let email = "ada@example.com";
        let mut client = AccountsClient::new(&issuer);
        let started = client.signup_start("ada", email).await.unwrap();
        let mail = state.mailer.sent_to(email).pop().unwrap();
        let code: String = mail
            .body
            .split(|c: char| !c.is_ascii_digit())
            .find(|w| w.len() == 6)
            .unwrap()
            .to_owned();
        client
            .signup_finish(&started.signup_id, &code, PASSWORD)
            .await
            .unwrap();

        // The sync server trusts the accounts server's published keys.
        let mut config = VerifierConfig::new(
            issuer.clone(),
            KeySource::Remote {
                url: format!("{issuer}/.well-known/jwks.json"),
            },
        );
        config.audience = Some("sealbase-sync".into());
        let sync_dir = TempDir::new("accounts-sync");
        let store = sealbase_sync::store::Store::connect(&format!(
            "sqlite://{}/sync.db",
            sync_dir.0.display()
        ))
        .await
        .unwrap();
        store.migrate().await.unwrap();
        let sync = sealbase_sync::start(sealbase_sync::Settings {
            listen: "127.0.0.1:0".parse().unwrap(),
            store,
            verifier: TokenVerifier::new(config).unwrap(),
            files: sealbase_sync::files::FileStorage::local(&sync_dir.0.join("files")).unwrap(),
            limits: sealbase_sync::Limits::default(),
        })
        .await
        .unwrap();
        let url = format!("ws://{}{}", sync.local_addr(), sealbase_protocol::WS_PATH);

        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let mut handles = Vec::new();
        let mut threads = Vec::new();
        let mut spaces = Vec::new();
        for device in ["laptop", "phone"] {
            let session = authorize(&issuer, &http, "ada").await;
            spaces.push(session.tokens.personal_space_id);
            let keys = SyncKeys::from_app_key(&session.app_key);
            assert_eq!(keys.did().to_string(), session.tokens.did);
            let tokens = OAuthTokens {
                http: http.clone(),
                issuer: issuer.clone(),
                refresh: Mutex::new(session.tokens.refresh_token.clone()),
                // The laptop starts with the access token of the code
                // exchange; the phone's first token already comes from
                // the refresh grant (rotation), as after a restart.
                first: Mutex::new(
                    (device == "laptop").then(|| session.tokens.access_token.clone()),
                ),
            };
            let mut db = sealbase_db::Db::open(
                dir.0.join(format!("{device}.db")).to_str().unwrap(),
                SystemEnv,
            )
            .unwrap();
            common::define(&mut db);
            let (engine, handle) = SyncEngine::new(
                SyncConfig::new(url.clone()),
                keys,
                db,
                WsConnector,
                SystemEnv,
                tokens,
            );
            threads.push(spawn(device, move || Box::pin(engine.run())).unwrap());
            handles.push(handle);
        }
        assert_eq!(spaces[0], spaces[1], "one personal space per user and app");

        let id = handles[0]
            .write(|db| db.insert("notes", json!({"title": "from the laptop"})))
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while handles[1]
            .read(|db| db.get("notes", &id))
            .unwrap()
            .is_none()
        {
            assert!(
                std::time::Instant::now() < deadline,
                "{:?}",
                handles[1].status()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        for handle in &handles {
            let status = handle.status();
            assert_eq!(status.phase, Phase::Live, "{status:?}");
            assert_eq!(status.quarantined, 0);
        }

        for handle in &handles {
            handle.stop();
        }
        for thread in threads {
            thread.join().unwrap();
        }
    });
}
