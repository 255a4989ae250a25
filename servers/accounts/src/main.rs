//! `sealbase-accounts`: see `sealbase-accounts --help` and docs/operations.md.

use clap::Parser;
use rand_core::OsRng;
use sealbase_accounts::config::{
    Cli, ClientCommand, Command, Config, DEFAULT_SCOPES, KNOWN_SCOPES, LogFormat,
    SigningKeyCommand, valid_client_id, valid_redirect_uri,
};
use sealbase_accounts::keys::KeyFile;
use sealbase_accounts::mail::Mailer;
use sealbase_accounts::store::{ClientRow, Store};
use sealbase_accounts::{AppState, Limits, Settings, router, serve};

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let config = cli.config;
    init_logging(config.log_format);
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => run(config).await,
        Command::Migrate => {
            let store = Store::connect(&config.database_url, 2).await?;
            store.migrate().await?;
            println!("migrations applied");
            Ok(())
        }
        Command::Keygen { force } => {
            let file = KeyFile::generate(&mut OsRng, now())?;
            file.save(&config.keys_file, force)?;
            println!("wrote {}", config.keys_file.display());
            Ok(())
        }
        Command::SigningKey(cmd) => signing_key(&config, cmd),
        Command::Client(cmd) => client(&config, cmd).await,
    }
}

async fn run(config: Config) -> anyhow::Result<()> {
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
    serve(listener, router(state), shutdown_signal()).await?;
    sweeper.abort();
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { () = ctrl_c => {}, () = term => {} }
    tracing::info!("shutting down");
}

fn signing_key(config: &Config, cmd: SigningKeyCommand) -> anyhow::Result<()> {
    let mut file = KeyFile::load(&config.keys_file)?;
    match cmd {
        SigningKeyCommand::List => {
            for (kid, state, created) in file.signing_keys() {
                println!("{kid}\t{state:?}\tcreated {created}");
            }
            return Ok(());
        }
        SigningKeyCommand::Add => {
            let kid = file.add_signing_key(now())?;
            println!("added {kid} (published; activate it once verifiers refreshed their JWKS)");
        }
        SigningKeyCommand::Activate { kid } => {
            file.activate(&kid)?;
            println!("{kid} now signs; retire the previous key after the access token lifetime");
        }
        SigningKeyCommand::Retire { kid } => {
            file.retire(&kid)?;
            println!("retired {kid}");
        }
    }
    file.save(&config.keys_file, true)?;
    println!("restart the accounts server to use the change");
    Ok(())
}

async fn client(config: &Config, cmd: ClientCommand) -> anyhow::Result<()> {
    let store = Store::connect(&config.database_url, 2).await?;
    store.migrate().await?;
    let now = i64::try_from(now()).unwrap_or(i64::MAX);
    match cmd {
        ClientCommand::Add {
            id,
            name,
            redirect_uris,
            scopes,
        } => {
            anyhow::ensure!(
                valid_client_id(&id),
                "client id must be 1–64 of a-z 0-9 - _ ."
            );
            anyhow::ensure!(!name.trim().is_empty(), "the client needs a name");
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
            store
                .upsert_client(
                    &ClientRow {
                        id: id.clone(),
                        name,
                        redirect_uris,
                        scopes,
                    },
                    now,
                )
                .await?;
            println!("registered client {id}");
        }
        ClientCommand::List => {
            for c in store.clients().await? {
                println!(
                    "{}\t{}\t{}\t{}",
                    c.id,
                    c.name,
                    c.redirect_uris.join(" "),
                    c.scopes.join(" ")
                );
            }
        }
        ClientCommand::Remove { id } => {
            anyhow::ensure!(store.delete_client(&id).await?, "no client {id}");
            println!("removed client {id}");
        }
    }
    Ok(())
}
