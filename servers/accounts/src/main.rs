//! `sealbase-accounts`: see `sealbase-accounts --help` and docs/operations.md.

use clap::Parser;
use rand_core::OsRng;
use sealbase_accounts::config::{
    Cli, ClientCommand, Command, Config, LogFormat, SigningKeyCommand,
};
use sealbase_accounts::keys::KeyFile;
use sealbase_accounts::service::{now, register_client, run};
use sealbase_accounts::store::Store;

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
        Command::Serve => run(config, shutdown_signal()).await,
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
    match cmd {
        ClientCommand::Add {
            id,
            name,
            redirect_uris,
            scopes,
        } => {
            register_client(&store, &id, &name, redirect_uris, scopes).await?;
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
