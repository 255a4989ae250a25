//! Web apps served by `sealbase --web-app ID=DIR`: each on an origin of
//! its own (one port each, counting up from `--apps-listen`), so apps never
//! share storage, OPFS databases or sessions, as on separate hosts in
//! production. Each is registered as an OAuth client whose redirect URI is
//! its origin, and is served `/config.json`: where the accounts and sync
//! servers are, and the other apps (for the launchpad).

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Json};
use axum::routing::get;
use serde_json::{Value, json};
use tower_http::services::{ServeDir, ServeFile};
use tower_http::set_header::SetResponseHeaderLayer;

/// An app to serve: its OAuth client id and its built files.
#[derive(Debug, Clone)]
pub(crate) struct WebApp {
    /// The OAuth `client_id` (and the name in URLs and logs).
    pub id: String,
    /// The directory holding its `index.html` (e.g. `examples/tasks/dist`).
    pub dir: PathBuf,
}

/// Parses `ID=DIR`.
pub(crate) fn parse(s: &str) -> Result<WebApp, String> {
    let (id, dir) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?} is not ID=DIR"))?;
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return Err(format!("{id:?} is not an app id (letters, digits, -)"));
    }
    Ok(WebApp {
        id: id.to_owned(),
        dir: PathBuf::from(dir),
    })
}

/// An app with its address.
#[derive(Debug, Clone)]
pub(crate) struct Placed {
    /// The app.
    pub app: WebApp,
    /// Where it is served.
    pub addr: SocketAddr,
    /// Its name and description (from `app.json` in its directory).
    pub name: String,
    /// What it is for.
    pub description: String,
}

impl Placed {
    /// Its origin, which is also its redirect URI (with `/`).
    pub(crate) fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }
}

/// Gives each app its port (`base`, `base + 1`, …) and reads its
/// `app.json`; refuses a directory without `index.html`.
pub(crate) fn place(apps: &[WebApp], base: SocketAddr) -> anyhow::Result<Vec<Placed>> {
    let mut placed = Vec::new();
    for (i, app) in apps.iter().enumerate() {
        let index = app.dir.join("index.html");
        anyhow::ensure!(
            index.is_file(),
            "{} has no index.html: build the app first (`just apps`)",
            app.dir.display()
        );
        let meta: Value = std::fs::read_to_string(app.dir.join("app.json"))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or(Value::Null);
        let offset = u16::try_from(i).context("too many apps")?;
        let port = base
            .port()
            .checked_add(offset)
            .context("app ports past 65535")?;
        placed.push(Placed {
            app: app.clone(),
            addr: SocketAddr::new(base.ip(), port),
            name: meta
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or(&app.id)
                .to_owned(),
            description: meta
                .get("description")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
        });
    }
    Ok(placed)
}

/// The Content-Security-Policy of an app's pages: its own scripts and
/// wasm, network only to its origin and the two servers (the sync
/// server's WebSocket, and its origin for file transfers over HTTP).
fn csp(accounts: &str, sync: &str, sync_origin: &str) -> String {
    format!(
        "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; worker-src 'self'; \
         connect-src 'self' {accounts} {sync} {sync_origin}; img-src 'self' data: blob:; \
         style-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; \
         form-action 'self' {accounts}"
    )
}

/// Serves every app until `stop` resolves.
pub(crate) async fn serve(
    apps: Vec<Placed>,
    accounts_url: String,
    sync_url: String,
    sync_origin: String,
    stop: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<Vec<tokio::task::JoinHandle<()>>> {
    let directory: Vec<Value> = apps
        .iter()
        .map(|p| {
            json!({"id": p.app.id, "name": p.name, "description": p.description, "url": p.url()})
        })
        .collect();
    let policy = HeaderValue::from_str(&csp(&accounts_url, &sync_url, &sync_origin))
        .context("the server URLs do not fit a header")?;
    let mut tasks = Vec::new();
    for placed in apps {
        let config = json!({
            "appId": placed.app.id,
            "accountsUrl": accounts_url,
            "syncUrl": sync_url,
            "apps": directory,
        });
        // Unknown paths are the app's own routes: answer index.html.
        let files = ServeDir::new(&placed.app.dir)
            .fallback(ServeFile::new(placed.app.dir.join("index.html")));
        let router = Router::new()
            .route(
                "/config.json",
                get(move || async move { Json(config.clone()).into_response() }),
            )
            .fallback_service(files)
            .layer(SetResponseHeaderLayer::overriding(
                header::CONTENT_SECURITY_POLICY,
                policy.clone(),
            ))
            .layer(SetResponseHeaderLayer::overriding(
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ))
            .layer(SetResponseHeaderLayer::overriding(
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            ))
            // Rebuilt apps must be picked up on reload.
            .layer(SetResponseHeaderLayer::if_not_present(
                header::CACHE_CONTROL,
                HeaderValue::from_static("no-cache"),
            ));
        let listener = tokio::net::TcpListener::bind(placed.addr)
            .await
            .with_context(|| format!("app {} cannot listen on {}", placed.app.id, placed.addr))?;
        let mut stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(async move {
                    let _ = stop.wait_for(|s| *s).await;
                })
                .await;
        }));
    }
    Ok(tasks)
}
