//! `sealbase`: the accounts server and the sync server in one process, on
//! SQLite under one data directory, in development mode (keys made on
//! first start, emailed codes in the log and at `/dev/mail`). Each server
//! listens on its own address, as in production, and the sync server
//! trusts the accounts server's published keys (JWKS) like any other
//! verifier. See docs/operations.md.
#![forbid(unsafe_code)]

mod apps;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;

/// Sealbase for development: accounts + sync on SQLite under one directory.
#[derive(Debug, Parser)]
#[command(name = "sealbase", version)]
struct Cli {
    /// Where the databases, keys and files live (created if missing).
    #[arg(long, env = "SEALBASE_DATA_DIR", default_value = "./data")]
    data_dir: PathBuf,
    /// The accounts server's address (its `http://` URL is the issuer).
    #[arg(
        long,
        env = "SEALBASE_ACCOUNTS_LISTEN",
        default_value = "127.0.0.1:8080"
    )]
    accounts_listen: SocketAddr,
    /// The sync server's address.
    #[arg(long, env = "SEALBASE_SYNC_LISTEN", default_value = "127.0.0.1:8081")]
    sync_listen: SocketAddr,
    /// The accounts web UI (a directory with index.html and the built
    /// wasm, `just web`); without it only the API is served.
    #[arg(long, env = "SEALBASE_ACCOUNTS_WEB_DIR")]
    web_dir: Option<PathBuf>,
    /// An app to register as an OAuth client on start, `ID=REDIRECT_URI`
    /// (repeatable; registering again updates it). The sync server answers
    /// CORS for the redirect URI's origin.
    #[arg(long = "app", value_name = "ID=REDIRECT_URI", value_parser = parse_app)]
    apps: Vec<(String, String)>,
    /// A built web app to serve, `ID=DIR` (repeatable): each on its own
    /// origin, registered as OAuth client ID with that origin as its
    /// redirect URI (see docs/operations.md).
    #[arg(long = "web-app", value_name = "ID=DIR", value_parser = apps::parse)]
    web_apps: Vec<apps::WebApp>,
    /// The first web app's address; the next ones take the next ports.
    #[arg(long, env = "SEALBASE_APPS_LISTEN", default_value = "127.0.0.1:8090")]
    apps_listen: SocketAddr,
}

fn parse_app(s: &str) -> Result<(String, String), String> {
    let (id, uri) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?} is not ID=REDIRECT_URI"))?;
    Ok((id.to_owned(), uri.to_owned()))
}

/// Ctrl-C or SIGTERM.
async fn stop_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        if let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = ctrl_c.await;
}

/// Waits until something accepts connections at `addr`.
async fn listening(addr: SocketAddr, what: &str) -> anyhow::Result<()> {
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    anyhow::bail!("the {what} did not start listening on {addr}")
}

/// The origin of an http(s) redirect URI (a web app's pages call the
/// sync server's file routes from there); none for app schemes.
fn web_origin(uri: &str) -> Option<String> {
    let (scheme, rest) = uri.split_once("://")?;
    if !matches!(scheme, "http" | "https") {
        return None;
    }
    let authority = rest.split(['/', '?', '#']).next()?;
    Some(format!("{scheme}://{authority}"))
}

fn text(path: &std::path::Path) -> anyhow::Result<String> {
    path.to_str()
        .map(str::to_owned)
        .with_context(|| format!("{path:?} is not UTF-8"))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).init();

    std::fs::create_dir_all(&cli.data_dir)
        .with_context(|| format!("creating {}", cli.data_dir.display()))?;
    let data = text(&cli.data_dir)?;
    let sync_url = format!("ws://{}{}", cli.sync_listen, sealbase_protocol::WS_PATH);

    // The accounts server, configured as `sealbase-accounts serve --dev`
    // would be (the same parser, so the same defaults and checks).
    let mut args = vec![
        "sealbase-accounts".to_owned(),
        "--dev".into(),
        "--listen".into(),
        cli.accounts_listen.to_string(),
        "--database-url".into(),
        format!("sqlite://{data}/accounts.db"),
        "--keys-file".into(),
        format!("{data}/accounts-keys.json"),
        "--sync-url".into(),
        sync_url.clone(),
    ];
    if let Some(web) = &cli.web_dir {
        args.extend(["--web-dir".into(), text(web)?]);
    }
    let accounts = sealbase_accounts::config::Cli::try_parse_from(&args)?.config;
    accounts.validate()?;
    let issuer = accounts.issuer();
    let web_apps = apps::place(&cli.web_apps, cli.apps_listen)?;
    // (client id, redirect URI, name shown on the consent page)
    let mut clients: Vec<(String, String, String)> = cli
        .apps
        .iter()
        .map(|(id, uri)| (id.clone(), uri.clone(), id.clone()))
        .collect();
    clients.extend(
        web_apps
            .iter()
            .map(|p| (p.app.id.clone(), p.url(), p.name.clone())),
    );
    if !clients.is_empty() {
        let store = sealbase_accounts::store::Store::connect(&accounts.database_url, 2).await?;
        store.migrate().await?;
        for (id, redirect, name) in &clients {
            sealbase_accounts::service::register_client(
                &store,
                id,
                name,
                vec![redirect.clone()],
                Vec::new(),
            )
            .await
            .with_context(|| format!("registering app {id}"))?;
        }
        store.pool().close().await;
    }
    let (stop_accounts, stopped) = tokio::sync::oneshot::channel::<()>();
    let mut accounts_task = tokio::spawn(sealbase_accounts::service::run(accounts, async {
        let _ = stopped.await;
    }));
    tokio::select! {
        ready = listening(cli.accounts_listen, "accounts server") => ready?,
        ended = &mut accounts_task => {
            ended??;
            anyhow::bail!("the accounts server stopped at start");
        }
    }

    // The sync server, as `sealbase-sync serve` trusting that issuer.
    let sync_args = [
        "sealbase-sync".to_owned(),
        "--listen".into(),
        cli.sync_listen.to_string(),
        "--issuer".into(),
        issuer.clone(),
        "--jwks-url".into(),
        format!("{issuer}/.well-known/jwks.json"),
        "--audience".into(),
        "sealbase-sync".into(),
        "--database-url".into(),
        format!("sqlite://{data}/sync.db"),
        "--files-dir".into(),
        format!("{data}/files"),
    ];
    let mut sync_args = sync_args.to_vec();
    for origin in clients.iter().filter_map(|(_, uri, _)| web_origin(uri)) {
        sync_args.extend(["--cors-origin".into(), origin]);
    }
    let sync = sealbase_sync::config::Cli::try_parse_from(sync_args)?.config;
    let sync = sync.settings().await?;
    let sync_store = sync.store.clone();
    let sync = sealbase_sync::start(sync).await?;
    let stop_sync = sync.shutdown_handle();
    let (stop_apps, apps_stopped) = tokio::sync::watch::channel(false);
    let app_tasks = apps::serve(
        web_apps.clone(),
        issuer.clone(),
        sync_url.clone(),
        format!("http://{}", cli.sync_listen),
        apps_stopped,
    )
    .await?;

    println!();
    println!("Sealbase (development) is running, data in {data}:");
    println!(
        "  accounts  {issuer}   (sign up at {issuer}/signup; discovery: {issuer}/.well-known/sealbase)"
    );
    println!("  sync      {sync_url}");
    for (id, redirect) in &cli.apps {
        println!("  app       {id} -> {redirect}");
    }
    for placed in &web_apps {
        println!("  {:<9} {}", placed.app.id, placed.url());
    }
    println!("  emailed codes: {issuer}/dev/mail?to=ADDRESS");
    println!("Ctrl-C stops both servers.");
    println!();

    let mut sync_done = tokio::spawn(sync.wait());
    let (outcome, accounts_ended, sync_ended) = tokio::select! {
        () = stop_signal() => (Ok(()), false, false),
        ended = &mut accounts_task => (
            match ended {
                Ok(Ok(())) => Err(anyhow::anyhow!("the accounts server stopped")),
                Ok(Err(e)) => Err(e.context("the accounts server failed")),
                Err(e) => Err(e.into()),
            },
            true,
            false,
        ),
        ended = &mut sync_done => (
            match ended {
                Ok(Ok(())) => Err(anyhow::anyhow!("the sync server stopped")),
                Ok(Err(e)) => Err(anyhow::Error::from(e).context("the sync server failed")),
                Err(e) => Err(e.into()),
            },
            false,
            true,
        ),
    };
    tracing::info!("shutting down");
    let _ = stop_apps.send(true);
    for task in app_tasks {
        let _ = task.await;
    }
    // Sockets are closed with a code and requests drained, then the
    // accounts server stops accepting and finishes its requests.
    let _ = stop_sync.send(true);
    if !sync_ended {
        let _ = sync_done.await;
    }
    sync_store.close().await;
    let _ = stop_accounts.send(());
    if !accounts_ended {
        let _ = accounts_task.await;
    }
    outcome
}
