//! Configuration from CLI flags and environment variables, validated before
//! anything starts.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::auth::{KeySource, TokenVerifier, VerifierConfig};
use crate::server::{Limits, Settings};
use crate::store::Store;

/// `sealbase-sync`: the Sealbase sync server.
#[derive(Debug, Parser)]
#[command(name = "sealbase-sync", version, about)]
pub struct Cli {
    /// What to do (default: serve).
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Settings.
    #[command(flatten)]
    pub config: Config,
}

/// Subcommands.
#[derive(Debug, Clone, Copy, Subcommand)]
pub enum Command {
    /// Migrate the database, then serve.
    Serve,
    /// Apply database migrations and exit.
    Migrate,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Server settings (every flag also reads an environment variable).
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Address and port to listen on.
    #[arg(
        long,
        global = true,
        env = "SEALBASE_SYNC_LISTEN",
        default_value = "127.0.0.1:8081"
    )]
    pub listen: SocketAddr,
    /// Database: `sqlite://PATH` (created if missing) or `postgres://…`.
    #[arg(
        long,
        global = true,
        env = "DATABASE_URL",
        default_value = "sqlite://./data/sync.db"
    )]
    pub database_url: String,
    /// Issuer (`iss`) of accepted access tokens: the accounts server URL.
    #[arg(long, global = true, env = "SEALBASE_ISSUER")]
    pub issuer: Option<String>,
    /// Where to fetch the issuer's signing keys (JWKS), e.g.
    /// `https://accounts.example/.well-known/jwks.json`.
    #[arg(
        long,
        global = true,
        env = "SEALBASE_JWKS_URL",
        conflicts_with = "jwks_file"
    )]
    pub jwks_url: Option<String>,
    /// A JWKS file to use instead of fetching one.
    #[arg(long, global = true, env = "SEALBASE_JWKS_FILE")]
    pub jwks_file: Option<PathBuf>,
    /// Required audience (`aud`) of access tokens, if any.
    #[arg(long, global = true, env = "SEALBASE_AUDIENCE")]
    pub audience: Option<String>,
    /// Log format.
    #[arg(
        long,
        global = true,
        env = "SEALBASE_LOG_FORMAT",
        value_enum,
        default_value = "text"
    )]
    pub log_format: LogFormat,
    /// Outbound queue per connection, in frames (a subscriber that falls
    /// this far behind is closed with 4006).
    #[arg(
        long,
        global = true,
        env = "SEALBASE_SYNC_QUEUE_FRAMES",
        default_value_t = 1024
    )]
    pub queue_frames: usize,
    /// Open connections allowed per user.
    #[arg(
        long,
        global = true,
        env = "SEALBASE_SYNC_SOCKETS_PER_USER",
        default_value_t = 32
    )]
    pub sockets_per_user: usize,
    /// Keepalive ping interval in seconds.
    #[arg(
        long,
        global = true,
        env = "SEALBASE_SYNC_KEEPALIVE_SECS",
        default_value_t = 30
    )]
    pub keepalive_secs: u64,
    /// Days a deletion's tombstone is kept. A device offline for longer
    /// re-reads the space from scratch on its next pull.
    #[arg(
        long,
        global = true,
        env = "SEALBASE_TOMBSTONE_HORIZON_DAYS",
        default_value_t = 30
    )]
    pub tombstone_horizon_days: u64,
    /// Seconds between tombstone compaction passes.
    #[arg(
        long,
        global = true,
        env = "SEALBASE_COMPACTION_INTERVAL_SECS",
        default_value_t = 3600
    )]
    pub compaction_interval_secs: u64,
    /// Storage quota per user in MiB (record blobs and files of the spaces
    /// the user owns or created); unset: unlimited.
    #[arg(long, global = true, env = "SEALBASE_STORAGE_QUOTA_MIB")]
    pub storage_quota_mib: Option<u64>,
}

impl Config {
    /// Checks the settings that need no I/O.
    pub fn validate(&self) -> anyhow::Result<()> {
        match &self.issuer {
            None => bail!("set the token issuer with --issuer or SEALBASE_ISSUER"),
            Some(i) if i.trim().is_empty() => bail!("--issuer / SEALBASE_ISSUER is empty"),
            Some(_) => {}
        }
        if self.jwks_url.is_none() && self.jwks_file.is_none() {
            bail!(
                "set where the issuer's keys are: --jwks-url (SEALBASE_JWKS_URL) or --jwks-file (SEALBASE_JWKS_FILE)"
            );
        }
        if self.queue_frames == 0 {
            bail!("--queue-frames must be at least 1");
        }
        if self.sockets_per_user == 0 {
            bail!("--sockets-per-user must be at least 1");
        }
        if self.keepalive_secs == 0 {
            bail!("--keepalive-secs must be at least 1");
        }
        if self.tombstone_horizon_days == 0 || self.tombstone_horizon_days > 36_500 {
            bail!("--tombstone-horizon-days must be between 1 and 36500");
        }
        if self.storage_quota_mib == Some(0) {
            bail!("--storage-quota-mib must be at least 1 (leave it unset for no quota)");
        }
        if self.compaction_interval_secs == 0 {
            bail!("--compaction-interval-secs must be at least 1");
        }
        Ok(())
    }

    /// Opens the database (without migrating).
    pub async fn store(&self) -> anyhow::Result<Store> {
        Store::connect(&self.database_url)
            .await
            .with_context(|| "cannot open the database named by DATABASE_URL".to_string())
    }

    /// Validates, opens and migrates the database, and builds the settings.
    pub async fn settings(&self) -> anyhow::Result<Settings> {
        self.validate()?;
        let keys = match (&self.jwks_url, &self.jwks_file) {
            (Some(url), _) => KeySource::Remote { url: url.clone() },
            (None, Some(path)) => KeySource::Static(
                std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read the JWKS file {}", path.display()))?,
            ),
            (None, None) => bail!("no JWKS configured"),
        };
        let issuer = self.issuer.clone().unwrap_or_default();
        let mut verifier = VerifierConfig::new(issuer, keys);
        verifier.audience = self.audience.clone();
        let verifier =
            TokenVerifier::new(verifier).context("invalid token verification settings")?;
        let store = self.store().await?;
        store.migrate().await.context("database migration failed")?;
        Ok(Settings {
            listen: self.listen,
            store,
            verifier,
            limits: Limits {
                queue_frames: self.queue_frames,
                sockets_per_user: self.sockets_per_user,
                keepalive: Duration::from_secs(self.keepalive_secs),
                tombstone_horizon: Duration::from_secs(self.tombstone_horizon_days * 86_400),
                compaction_interval: Duration::from_secs(self.compaction_interval_secs),
                storage_quota: self
                    .storage_quota_mib
                    .map(|mib| mib.saturating_mul(1 << 20)),
                ..Limits::default()
            },
        })
    }
}
