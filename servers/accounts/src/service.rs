//! Running the accounts server as a service: start-up (keys, database,
//! migrations, mailer), the expiry sweep, serving until `shutdown`; and
//! registering an OAuth client with the checks the CLI applies. Shared by
//! `sealbase-accounts` and the combined `sealbase` binary.

use std::future::Future;

use crate::config::{Config, DEFAULT_SCOPES, KNOWN_SCOPES, valid_client_id, valid_redirect_uri};
use crate::keys::KeyFile;
use crate::mail::Mailer;
use crate::store::{ClientRow, Store};
use crate::{AppState, Limits, Settings, router, serve};

/// Unix seconds now.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Validates `config`, opens (or, with `--dev`, creates) the key file and
/// the database, migrates it, and serves until `shutdown` completes.
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    config.validate()?;
    let keys = KeyFile::load_or_create(&config.keys_file, config.dev, now())?;
    let secrets = keys.secrets()?;
    let store = Store::connect(&config.database_url, 16).await?;
    store.migrate().await?;
    let mailer = Mailer::from_config(&config)?;
    let settings = Settings::from_config(&config);
    let issuer = settings.issuer.clone();
    let state = AppState::new(store.clone(), secrets, mailer, settings, Limits::default())?;
    let sweeper = {
        let state = state.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(300));
            loop {
                tick.tick().await;
                if let Err(e) = state.store.purge_expired(state.now()).await {
                    tracing::warn!(error = %e, "expiry sweep failed");
                }
            }
        })
    };
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    tracing::info!(listen = %listener.local_addr()?, %issuer, "accounts server ready");
    let served = serve(listener, router(state), shutdown).await;
    sweeper.abort();
    // Requests are done: close the connections, so that a SQLite database
    // is left whole in its file (its write-ahead log copied in, removed).
    store.pool().close().await;
    served?;
    Ok(())
}

/// Registers (or updates) a public OAuth client: the id, a name, exact
/// redirect URIs and scopes (`DEFAULT_SCOPES` when empty), each checked.
pub async fn register_client(
    store: &Store,
    id: &str,
    name: &str,
    redirect_uris: Vec<String>,
    scopes: Vec<String>,
) -> anyhow::Result<()> {
    anyhow::ensure!(
        valid_client_id(id),
        "client id must be 1–64 of a-z 0-9 - _ ."
    );
    anyhow::ensure!(!name.trim().is_empty(), "the client needs a name");
    anyhow::ensure!(!redirect_uris.is_empty(), "the client needs a redirect URI");
    for uri in &redirect_uris {
        valid_redirect_uri(uri).map_err(anyhow::Error::msg)?;
    }
    let scopes = if scopes.is_empty() {
        DEFAULT_SCOPES.iter().map(|s| (*s).to_owned()).collect()
    } else {
        scopes
    };
    for s in &scopes {
        anyhow::ensure!(
            KNOWN_SCOPES.contains(&s.as_str()),
            "unknown scope {s} (known: {})",
            KNOWN_SCOPES.join(", ")
        );
    }
    let now = i64::try_from(now()).unwrap_or(i64::MAX);
    store
        .upsert_client(
            &ClientRow {
                id: id.to_owned(),
                name: name.to_owned(),
                redirect_uris,
                scopes,
            },
            now,
        )
        .await?;
    Ok(())
}
