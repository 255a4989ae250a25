//! The `sealbase` binary as a developer runs it: both servers come up on
//! one data directory, an app registered with `--app` can be authorized
//! at the accounts server (signup with the emailed code, OPAQUE login,
//! consent with key delivery) and then syncs with the sync server, which
//! trusts the accounts server's keys and answers CORS for the app's
//! origin; SIGTERM stops both cleanly, and a restart keeps the keys and
//! the data.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sealbase_auth::client::{AccountsClient, AppAuthorization};
use sealbase_client::native::{SystemEnv, WsConnector, spawn};
use sealbase_client::{Phase, SyncConfig, SyncEngine, SyncKeys, TokenSource};

const APP: &str = "tasks";
const REDIRECT: &str = "http://localhost:5173/callback";
const PASSWORD: &str = "correct horse battery staple";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Sealbase {
    child: Child,
    accounts: String,
    sync: String,
}

impl Sealbase {
    fn start(data: &std::path::Path, accounts: u16, sync: u16) -> Self {
        let child = Command::new(env!("CARGO_BIN_EXE_sealbase"))
            .arg("--data-dir")
            .arg(data)
            .args(["--accounts-listen", &format!("127.0.0.1:{accounts}")])
            .args(["--sync-listen", &format!("127.0.0.1:{sync}")])
            .args(["--app", &format!("{APP}={REDIRECT}")])
            .env_remove("DATABASE_URL")
            .env_remove("SEALBASE_ISSUER")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Self {
            child,
            accounts: format!("http://127.0.0.1:{accounts}"),
            sync: format!("127.0.0.1:{sync}"),
        }
    }

    async fn ready(&self, http: &reqwest::Client) {
        let deadline = Instant::now() + Duration::from_secs(60);
        for url in [
            format!("{}/health", self.accounts),
            format!("http://{}/health", self.sync),
        ] {
            loop {
                if let Ok(r) = http.get(&url).send().await
                    && r.status().is_success()
                {
                    break;
                }
                assert!(Instant::now() < deadline, "{url} never answered");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }

    /// SIGTERM, then the exit status.
    fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "sealbase did not stop on SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Sealbase {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn get_json(http: &reqwest::Client, url: String) -> serde_json::Value {
    http.get(url).send().await.unwrap().json().await.unwrap()
}

async fn get_text(http: &reqwest::Client, url: String) -> String {
    http.get(url).send().await.unwrap().text().await.unwrap()
}

struct Token(String);

impl TokenSource for Token {
    async fn access_token(&self) -> Result<String, String> {
        Ok(self.0.clone())
    }
}

/// The app: a store with one collection at `path`, its engine on a thread.
fn app(
    path: &std::path::Path,
    sync_url: &str,
    session: &sealbase_auth::client::AppSession,
) -> (
    sealbase_client::SyncHandle<SystemEnv>,
    std::thread::JoinHandle<()>,
) {
    let mut db = sealbase_db::Db::open(path.to_str().unwrap(), SystemEnv).unwrap();
    db.define(
        serde_json::from_value(serde_json::json!({
            "name": "todos", "version": 1, "fields": {"title": {"type": "string"}}
        }))
        .unwrap(),
    )
    .unwrap();
    let (engine, handle) = SyncEngine::new(
        SyncConfig::new(sync_url),
        SyncKeys::from_app_key(&session.app_key),
        db,
        WsConnector,
        SystemEnv,
        Token(session.tokens.access_token.clone()),
    );
    let thread = spawn("app", move || Box::pin(engine.run())).unwrap();
    (handle, thread)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_servers_in_one_binary_authorize_and_sync() {
    let data = std::env::temp_dir().join(format!("sealbase-binary-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    let (accounts_port, sync_port) = (free_port(), free_port());
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let server = Sealbase::start(&data, accounts_port, sync_port);
    server.ready(&http).await;
    let issuer = server.accounts.clone();

    let discovery: serde_json::Value =
        get_json(&http, format!("{issuer}/.well-known/sealbase")).await;
    let sync_url = format!("ws://{}/api/v1/ws", server.sync);
    assert_eq!(discovery["sync_url"], sync_url.as_str());
    assert_eq!(discovery["issuer"], issuer.as_str());
    // The registered app's origin may call the sync server's file routes.
    let preflight = |origin: &'static str| {
        http.request(
            reqwest::Method::OPTIONS,
            format!(
                "http://{}/api/v1/spaces/00000000-0000-0000-0000-000000000001/files/00000000-0000-0000-0000-000000000002",
                server.sync
            ),
        )
        .header("origin", origin)
        .header("access-control-request-method", "PUT")
        .send()
    };
    assert_eq!(
        preflight("http://localhost:5173").await.unwrap().status(),
        204
    );
    assert_eq!(
        preflight("http://localhost:9999").await.unwrap().status(),
        403
    );
    let jwks = get_text(&http, format!("{issuer}/.well-known/jwks.json")).await;

    // Sign up with the code from the dev mailer, then authorize the app.
    let mut user = AccountsClient::new(&issuer);
    let started = user.signup_start("ada", "ada@example.com").await.unwrap();
    let mails: serde_json::Value =
        get_json(&http, format!("{issuer}/dev/mail?to=ada@example.com")).await;
    let body = mails.as_array().unwrap().last().unwrap()["body"]
        .as_str()
        .unwrap()
        .to_owned();
    let code = body
        .split(|c: char| !c.is_ascii_digit())
        .find(|w| w.len() == 6)
        .unwrap();
    let (signed_in, _) = user
        .signup_finish(&started.signup_id, code, PASSWORD)
        .await
        .unwrap();
    let auth = AppAuthorization::new(APP, REDIRECT, "sync");
    let location = user
        .open_authorize(&auth.authorize_url(&issuer))
        .await
        .unwrap();
    let request_id = location.strip_prefix("/consent?request=").unwrap();
    let request = user.authorization_request(request_id).await.unwrap();
    let back = user.consent(&signed_in.ark, &request, true).await.unwrap();
    let code = auth.code_from_redirect(&issuer, &back).unwrap();
    let session = auth.exchange(&http, &issuer, &code).await.unwrap();

    // The app syncs with the sync server of the same binary.
    let (handle, thread) = app(&data.join("app.db"), &sync_url, &session);
    handle
        .write(|db| db.insert("todos", serde_json::json!({"title": "try sealbase"})))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let s = handle.status();
        if s.phase == Phase::Live && s.pending == 0 && s.pushed >= 1 {
            break;
        }
        assert!(Instant::now() < deadline, "{s:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    handle.stop();
    thread.join().unwrap();

    // SIGTERM stops both; a restart keeps the keys and the records.
    assert!(server.terminate().success());
    // Both servers closed their stores once drained: each database is
    // whole in its file, its write-ahead log copied in and removed.
    for db in ["sync.db", "accounts.db"] {
        assert!(data.join(db).exists(), "{db}");
        assert!(
            !data.join(format!("{db}-wal")).exists(),
            "{db}-wal left behind"
        );
    }
    let server = Sealbase::start(&data, accounts_port, sync_port);
    server.ready(&http).await;
    let again = get_text(&http, format!("{issuer}/.well-known/jwks.json")).await;
    assert_eq!(again, jwks, "the signing keys survive a restart");
    let (handle, thread) = app(&data.join("app2.db"), &sync_url, &session);
    let deadline = Instant::now() + Duration::from_secs(30);
    while handle
        .read(|db| db.count("todos", &serde_json::json!({})))
        .unwrap()
        != 1
    {
        assert!(Instant::now() < deadline, "{:?}", handle.status());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    handle.stop();
    thread.join().unwrap();
    assert!(server.terminate().success());
    let _ = std::fs::remove_dir_all(&data);
}
