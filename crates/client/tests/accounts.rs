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
#[path = "../../../servers/accounts/tests/common/mod.rs"]
mod harness;

use std::sync::Mutex;
use std::time::Duration;

use common::TempDir;
use harness::{Backend, Harness, PASSWORD, TASKS, TASKS_REDIRECT};
use sealbase_auth::client::AccountsClient;
use sealbase_client::native::{SystemEnv, WsConnector, spawn};
use sealbase_client::spaces::{Invitee, SpaceStatus};
use sealbase_client::{Phase, SyncConfig, SyncEngine, SyncHandle, SyncKeys, TokenSource};
use sealbase_crypto::capability::Capability;
use sealbase_sync::auth::{KeySource, TokenVerifier, VerifierConfig};
use serde_json::json;

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
        let response = sealbase_auth::client::refresh(&self.http, &self.issuer, TASKS, &refresh)
            .await
            .map_err(|e| e.to_string())?;
        *self.refresh.lock().unwrap() = response.refresh_token;
        Ok(response.access_token)
    }
}

/// A sync server that trusts the accounts server's published keys.
async fn start_sync(issuer: &str) -> (sealbase_sync::RunningServer, TempDir, String) {
    let mut config = VerifierConfig::new(
        issuer.to_owned(),
        KeySource::Remote {
            url: format!("{issuer}/.well-known/jwks.json"),
        },
    );
    config.audience = Some("sealbase-sync".into());
    let sync_dir = TempDir::new("accounts-sync");
    let store =
        sealbase_sync::store::Store::connect(&format!("sqlite://{}/sync.db", sync_dir.0.display()))
            .await
            .unwrap();
    store.migrate().await.unwrap();
    let sync = sealbase_sync::start(sealbase_sync::Settings {
        listen: "127.0.0.1:0".parse().unwrap(),
        store,
        verifier: TokenVerifier::new(config).unwrap(),
        files: sealbase_sync::files::FileStorage::local(&sync_dir.0.join("files")).unwrap(),
        limits: sealbase_sync::Limits::default(),
        cors_origins: Vec::new(),
    })
    .await
    .unwrap();
    let url = format!("ws://{}{}", sync.local_addr(), sealbase_protocol::WS_PATH);
    (sync, sync_dir, url)
}

/// An engine on a store file named after `name` in `dir`, on its own thread.
fn start_engine(
    dir: &TempDir,
    name: &str,
    url: &str,
    keys: SyncKeys,
    tokens: OAuthTokens,
) -> (SyncHandle<SystemEnv>, std::thread::JoinHandle<()>) {
    let path = dir.0.join(format!("{name}.db"));
    let mut db = sealbase_db::Db::open(path.to_str().unwrap(), SystemEnv).unwrap();
    common::define(&mut db);
    let (engine, handle) = SyncEngine::new(
        SyncConfig::new(url),
        keys,
        db,
        WsConnector,
        SystemEnv,
        tokens,
    );
    let thread = spawn(name, move || Box::pin(engine.run())).unwrap();
    (handle, thread)
}

/// Runs `test` on a two-worker runtime (the servers' tasks run on the
/// workers while the test body waits on this thread).
fn on_runtime<F: std::future::Future>(test: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(test)
}

#[test]
fn devices_authorized_at_the_accounts_server_sync() {
    on_runtime(async {
        let dir = TempDir::new("accounts");
        let accounts = Harness::start(Backend::Sqlite, "client-e2e").await;
        let issuer = accounts.issuer.clone();
        // Sign up (the code comes through the dev mailer).
        accounts.sign_up("ada").await;

        let (_sync, _sync_dir, url) = start_sync(&issuer).await;

        let http = accounts.http.clone();
        let mut handles = Vec::new();
        let mut threads = Vec::new();
        let mut spaces = Vec::new();
        for device in ["laptop", "phone"] {
            // Each device signs in and authorizes the app (key delivery).
            let mut user = AccountsClient::new(&issuer);
            let signed_in = user.login("ada", PASSWORD).await.unwrap();
            let (_, session) = accounts
                .authorize(&user, &signed_in, TASKS, TASKS_REDIRECT, "sync profile")
                .await;
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
            let (handle, thread) = start_engine(&dir, device, &url, keys, tokens);
            threads.push(thread);
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
        // The phone may apply the note while its first pull is still
        // finishing (the push lands between its pull pages), so wait for
        // both devices to reach `Live` rather than expecting it already.
        for handle in &handles {
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            let status = loop {
                let status = handle.status();
                if status.phase == Phase::Live || std::time::Instant::now() >= deadline {
                    break status;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            };
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

/// Invitation by handle with nothing stood in: ada finds bob in the
/// accounts server's key directory (attestation checked), invites him,
/// and bob's engine, authorized at the same accounts server, joins and
/// syncs the space.
#[test]
fn invite_by_handle_through_the_key_directory() {
    on_runtime(async {
        let dir = TempDir::new("directory");
        let accounts = Harness::start(Backend::Sqlite, "client-directory").await;
        let issuer = accounts.issuer.clone();
        let (_sync, _sync_dir, url) = start_sync(&issuer).await;
        let mut handles = Vec::new();
        let mut threads = Vec::new();
        let mut access = Vec::new();
        for name in ["ada", "bob"] {
            let (user, signed_in, _) = accounts.sign_up(name).await;
            let (_, session) = accounts
                .authorize(&user, &signed_in, TASKS, TASKS_REDIRECT, "sync directory")
                .await;
            access.push(session.tokens.access_token.clone());
            let tokens = OAuthTokens {
                http: accounts.http.clone(),
                issuer: issuer.clone(),
                refresh: Mutex::new(session.tokens.refresh_token.clone()),
                first: Mutex::new(Some(session.tokens.access_token.clone())),
            };
            let keys = SyncKeys::from_app_key(&session.app_key);
            let (handle, thread) = start_engine(&dir, name, &url, keys, tokens);
            threads.push(thread);
            handles.push(handle);
        }
        let (ada, bo) = (&handles[0], &handles[1]);
        let wait = |what: &'static str, done: &dyn Fn() -> bool| {
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            while !done() {
                assert!(std::time::Instant::now() < deadline, "timed out: {what}");
                std::thread::sleep(Duration::from_millis(20));
            }
        };
        wait("both live", &|| {
            ada.status().phase == Phase::Live && bo.status().phase == Phase::Live
        });

        let lookup = AccountsClient::new(&issuer);
        let entry = lookup.directory(&access[0], TASKS, "bob").await.unwrap();
        let invitee = Invitee::from_directory(&entry, TASKS).unwrap();
        // An entry whose key was swapped (a lying directory) is refused.
        let mut forged = entry.clone();
        forged.x25519.0[0] ^= 1;
        assert!(Invitee::from_directory(&forged, TASKS).is_err());
        // So is the entry checked for another app.
        assert!(Invitee::from_directory(&entry, "notes").is_err());

        let space = ada.create_space("Groceries").await.unwrap();
        ada.invite(space, invitee, Capability::Write).await.unwrap();
        wait("bo's invitation", &|| {
            bo.spaces()
                .unwrap()
                .iter()
                .any(|s| s.id == space && s.status == SpaceStatus::Invited)
        });
        bo.accept(space).await.unwrap();
        let id = ada
            .write(|db| {
                let v = db.insert("notes", json!({"title": "milk"}))?;
                let id = v["id"].as_str().unwrap_or_default().to_owned();
                db.assign_space(&id, &space.to_string())?;
                Ok(id)
            })
            .unwrap();
        wait("ada's note at bo's", &|| {
            bo.read(|db| db.get("notes", &id)).unwrap().is_some()
        });
        let members = bo.members(space).await.unwrap();
        let invited: Vec<_> = members
            .members
            .values()
            .filter(|m| !m.handle.is_empty())
            .map(|m| (m.handle.as_str(), m.status.as_str()))
            .collect();
        assert!(invited.contains(&("bob", "joined")), "{invited:?}");

        for handle in &handles {
            handle.stop();
        }
        for thread in threads {
            thread.join().unwrap();
        }
    });
}
