//! Configuration from CLI flags and environment variables, validated before
//! anything starts.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::auth::{KeySource, TokenVerifier, VerifierConfig};
use crate::files::FileStorage;
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
    /// Directory for file bytes (when no --files-url is given).
    #[arg(
        long,
        global = true,
        env = "SEALBASE_FILES_DIR",
        default_value = "./data/files"
    )]
    pub files_dir: PathBuf,
    /// S3-compatible storage for file bytes instead of --files-dir:
    /// `s3://BUCKET` or `s3://BUCKET/PREFIX`; credentials, region and
    /// endpoint from the standard AWS_* variables.
    #[arg(long, global = true, env = "SEALBASE_FILES_URL")]
    pub files_url: Option<String>,
    /// Largest file accepted: bytes, or with a suffix (KiB, MiB, GiB, KB, MB, GB).
    #[arg(
        long,
        global = true,
        env = "SEALBASE_MAX_FILE_SIZE",
        default_value = "1GiB",
        value_parser = parse_size
    )]
    pub max_file_size: u64,
    /// Hours between sweeps of the file store for orphaned objects (0: never).
    #[arg(
        long,
        global = true,
        env = "SEALBASE_FILES_SWEEP_HOURS",
        default_value_t = 6
    )]
    pub files_sweep_hours: u64,
}

/// A byte size: digits, optionally followed by a unit.
fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let digits = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (number, unit) = s.split_at(digits);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{s:?} is not a size (e.g. 1073741824, 512MiB, 1GiB)"))?;
    let scale: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kib" | "k" => 1 << 10,
        "mib" | "m" => 1 << 20,
        "gib" | "g" => 1 << 30,
        "tib" | "t" => 1 << 40,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        _ => {
            return Err(format!(
                "{s:?} is not a size (e.g. 1073741824, 512MiB, 1GiB)"
            ));
        }
    };
    number
        .checked_mul(scale)
        .ok_or_else(|| format!("{s:?} is too large"))
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
        if self.max_file_size == 0 {
            bail!("--max-file-size must be at least 1 byte");
        }
        if let Some(url) = &self.files_url
            && !url.starts_with("s3://")
        {
            bail!(
                "--files-url / SEALBASE_FILES_URL must be s3://BUCKET or s3://BUCKET/PREFIX, not {url:?}"
            );
        }
        Ok(())
    }

    /// Opens the file store (S3 if `--files-url` is set, else the
    /// directory) and checks it works with a probe object.
    pub async fn files(&self) -> anyhow::Result<FileStorage> {
        let files = match &self.files_url {
            Some(url) => FileStorage::s3(url).with_context(|| {
                "cannot configure S3 file storage from --files-url and the AWS_* variables"
                    .to_string()
            })?,
            None => FileStorage::local(&self.files_dir)?,
        };
        files.check().await.with_context(|| {
            let hint = if self.files_url.is_some() {
                "check the bucket, AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, AWS_REGION and (for non-AWS storage) AWS_ENDPOINT_URL"
            } else {
                "check the directory is writable (--files-dir / SEALBASE_FILES_DIR)"
            };
            format!("file storage is not usable; {hint}")
        })?;
        Ok(files)
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
        let files = self.files().await?;
        let store = self.store().await?;
        store.migrate().await.context("database migration failed")?;
        Ok(Settings {
            listen: self.listen,
            store,
            verifier,
            files,
            limits: Limits {
                queue_frames: self.queue_frames,
                sockets_per_user: self.sockets_per_user,
                keepalive: Duration::from_secs(self.keepalive_secs),
                max_file_size: self.max_file_size,
                file_sweep_every: (self.files_sweep_hours > 0)
                    .then(|| Duration::from_secs(self.files_sweep_hours.saturating_mul(3600))),
                ..Limits::default()
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes_parse_with_units() {
        assert_eq!(parse_size("1073741824"), Ok(1 << 30));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("512 MiB"), Ok(512 << 20));
        assert_eq!(parse_size("2gb"), Ok(2_000_000_000));
        assert!(parse_size("1.5GiB").is_err());
        assert!(parse_size("GiB").is_err());
        assert!(parse_size("99999999999TiB").is_err());
    }
}
