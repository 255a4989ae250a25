//! `sealbase-sync`: see `sealbase-sync --help`.

use clap::Parser;
use sealbase_sync::config::{Cli, Command, LogFormat};

/// Pull pages are allocated on one worker thread and freed on the socket
/// writer's; glibc's malloc then contends on its arena locks.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt().with_env_filter(filter);
    match cli.config.log_format {
        LogFormat::Json => logs.json().init(),
        LogFormat::Text => logs.init(),
    }

    match cli.command.unwrap_or(Command::Serve) {
        Command::Migrate => {
            let store = cli.config.store().await?;
            store.migrate().await?;
            tracing::info!(backend = store.backend(), "migrations applied");
            Ok(())
        }
        Command::Serve => {
            let settings = cli.config.settings().await?;
            let store = settings.store.clone();
            let server = sealbase_sync::start(settings).await?;
            let stop = server.shutdown_handle();
            tokio::spawn(async move {
                shutdown_signal().await;
                tracing::info!("shutting down: closing connections");
                let _ = stop.send(true);
            });
            let served = server.wait().await;
            // Every session has ended: a SQLite database is left whole in
            // its file, a Postgres session ends cleanly.
            store.close().await;
            served?;
            Ok(())
        }
    }
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
