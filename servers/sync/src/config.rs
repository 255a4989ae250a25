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
    /// Outbound queue per connection, in frames, for its own responses and
    /// pull chunks and, separately, for notifications (a subscriber whose
    /// notifications fall this far behind is closed with 4006).
    #[arg(
        long,
        global = true,
        env = "SEALBASE_SYNC_QUEUE_FRAMES",
        default_value_t = 1024
    )]
    pub queue_frames: usize,
    /// Outbound queue per connection, in bytes, with the same two shares as
    /// `--queue-frames`: bytes, or with a suffix (KiB, MiB, GiB, KB, MB, GB).
    #[arg(
        long,
        global = true,
        env = "SEALBASE_SYNC_QUEUE_BYTES",
        default_value = "16MiB",
        value_parser = parse_size
    )]
    pub queue_bytes: u64,
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
    /// Seconds a presence entry lives without a new `presence.set`
    /// (clients re-send it every half of this).
    #[arg(
        long,
        global = true,
        env = "SEALBASE_PRESENCE_TTL",
        default_value_t = 60
    )]
    pub presence_ttl: u64,
    /// `presence.set` calls allowed per second per connection.
    #[arg(
        long,
        global = true,
        env = "SEALBASE_PRESENCE_RATE",
        default_value_t = 20
    )]
    pub presence_rate: u32,
    /// `event.send` calls allowed per second per connection.
    #[arg(
        long,
        global = true,
        env = "SEALBASE_EVENT_RATE",
        default_value_t = 100
    )]
    pub event_rate: u32,
    /// Days ahead an invitation may expire, at most.
    #[arg(
        long,
        global = true,
        env = "SEALBASE_INVITATION_MAX_DAYS",
        default_value_t = 30
    )]
    pub invitation_max_days: u32,
    /// Unexpired invitations one mailbox may hold.
    #[arg(
        long,
        global = true,
        env = "SEALBASE_INVITATION_MAILBOX_CAP",
        default_value_t = 1000
    )]
    pub invitation_mailbox_cap: u32,
    /// Invitations one user may create per hour (per server instance).
    #[arg(
        long,
        global = true,
        env = "SEALBASE_INVITATION_RATE",
        default_value_t = 100
    )]
    pub invitation_rate: u32,
    /// `push` requests one user may make per second (per instance).
    #[arg(long, global = true, env = "SEALBASE_PUSH_RATE", default_value_t = 100)]
    pub push_rate: u32,
    /// `membership.append` and `space.create` requests one user may make
    /// per minute (per instance).
    #[arg(
        long,
        global = true,
        env = "SEALBASE_MEMBERSHIP_RATE",
        default_value_t = 60
    )]
    pub membership_rate: u32,
    /// Directory for file bytes (when no --files-url is given).
    #[arg(
        long,
        global = true,
        env = "SEALBASE_FILES_DIR",
        default_value = "./data/files"
    )]
    pub files_dir: PathBuf,
    /// Origins whose pages may call the file routes (CORS), e.g.
    /// `http://localhost:5173`; comma-separated in the environment; `*`
    /// for any. None by default (same-origin pages need none).
    #[arg(
        long = "cors-origin",
        global = true,
        env = "SEALBASE_SYNC_CORS_ORIGINS",
        value_delimiter = ','
    )]
    pub cors_origins: Vec<String>,
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

/// Bounds of the presence TTL, in seconds: a heartbeat every TTL/2 must be
/// at least a second apart; beyond an hour a vanished peer lingers too long.
const PRESENCE_TTL_SECS: std::ops::RangeInclusive<u64> = 2..=3600;

/// Largest per-second rate for presence and events.
const MAX_RATE_PER_SECOND: u32 = 10_000;

/// Longest invitation lifetime, in days.
const MAX_INVITATION_DAYS: u32 = 365;

impl Config {
    /// Checks the settings that need no I/O.
    pub fn validate(&self) -> anyhow::Result<()> {
        match &self.issuer {
            None => bail!("set the token issuer with --issuer or SEALBASE_ISSUER"),
            Some(i) if i.trim().is_empty() => bail!("--issuer / SEALBASE_ISSUER is empty"),
            Some(_) => {}
        }
        if let Some(bad) = self
            .cors_origins
            .iter()
            .find(|o| !crate::cors::valid_origin(o))
        {
            bail!(
                "--cors-origin / SEALBASE_SYNC_CORS_ORIGINS {bad:?} is not an origin (scheme://host[:port], no path) or *"
            );
        }
        if self.jwks_url.is_none() && self.jwks_file.is_none() {
            bail!(
                "set where the issuer's keys are: --jwks-url (SEALBASE_JWKS_URL) or --jwks-file (SEALBASE_JWKS_FILE)"
            );
        }
        if self.queue_frames == 0 {
            bail!("--queue-frames must be at least 1");
        }
        if usize::try_from(self.queue_bytes).map_or(true, |b| b < sealbase_protocol::MAX_FRAME_LEN)
        {
            bail!(
                "--queue-bytes must be at least the largest frame ({} bytes)",
                sealbase_protocol::MAX_FRAME_LEN
            );
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
        if !PRESENCE_TTL_SECS.contains(&self.presence_ttl) {
            bail!(
                "--presence-ttl / SEALBASE_PRESENCE_TTL must be between {} and {} seconds",
                PRESENCE_TTL_SECS.start(),
                PRESENCE_TTL_SECS.end()
            );
        }
        for (flag, rate) in [
            (
                "--presence-rate / SEALBASE_PRESENCE_RATE",
                self.presence_rate,
            ),
            ("--event-rate / SEALBASE_EVENT_RATE", self.event_rate),
            ("--push-rate / SEALBASE_PUSH_RATE", self.push_rate),
        ] {
            if !(1..=MAX_RATE_PER_SECOND).contains(&rate) {
                bail!("{flag} must be between 1 and {MAX_RATE_PER_SECOND} per second");
            }
        }
        if !(1..=MAX_INVITATION_DAYS).contains(&self.invitation_max_days) {
            bail!(
                "--invitation-max-days / SEALBASE_INVITATION_MAX_DAYS must be between 1 and {MAX_INVITATION_DAYS}"
            );
        }
        if self.invitation_mailbox_cap == 0 {
            bail!("--invitation-mailbox-cap / SEALBASE_INVITATION_MAILBOX_CAP must be at least 1");
        }
        if !(1..=MAX_RATE_PER_SECOND).contains(&self.membership_rate) {
            bail!(
                "--membership-rate / SEALBASE_MEMBERSHIP_RATE must be between 1 and {MAX_RATE_PER_SECOND} per minute"
            );
        }
        if self.invitation_rate == 0 {
            bail!("--invitation-rate / SEALBASE_INVITATION_RATE must be at least 1");
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
                // Checked above: at least a frame, at most the address space.
                queue_bytes: usize::try_from(self.queue_bytes).unwrap_or(usize::MAX),
                sockets_per_user: self.sockets_per_user,
                keepalive: Duration::from_secs(self.keepalive_secs),
                tombstone_horizon: Duration::from_secs(self.tombstone_horizon_days * 86_400),
                compaction_interval: Duration::from_secs(self.compaction_interval_secs),
                storage_quota: self
                    .storage_quota_mib
                    .map(|mib| mib.saturating_mul(1 << 20)),
                presence_ttl: Duration::from_secs(self.presence_ttl),
                presence_per_second: self.presence_rate,
                events_per_second: self.event_rate,
                invitation_max_lifetime: Duration::from_secs(
                    u64::from(self.invitation_max_days) * 24 * 3600,
                ),
                invitations_per_mailbox: self.invitation_mailbox_cap,
                invitations_per_hour: self.invitation_rate,
                pushes_per_second: self.push_rate,
                membership_per_minute: self.membership_rate,
                max_file_size: self.max_file_size,
                file_sweep_every: (self.files_sweep_hours > 0)
                    .then(|| Duration::from_secs(self.files_sweep_hours.saturating_mul(3600))),
                ..Limits::default()
            },
            cors_origins: self.cors_origins.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(extra: &[&str]) -> anyhow::Result<Config> {
        let mut args = vec![
            "sealbase-sync",
            "--issuer",
            "https://accounts.example",
            "--jwks-file",
            "/dev/null",
        ];
        args.extend_from_slice(extra);
        let cli = Cli::try_parse_from(args)?;
        cli.config.validate()?;
        Ok(cli.config)
    }

    #[test]
    fn presence_event_and_invitation_settings_are_checked() {
        let config = parse(&[]).unwrap();
        assert_eq!(config.presence_ttl, 60);
        assert_eq!(config.presence_rate, 20);
        assert_eq!(config.event_rate, 100);
        assert_eq!(config.invitation_max_days, 30);
        assert_eq!(config.invitation_mailbox_cap, 1000);
        assert_eq!(config.invitation_rate, 100);
        let config = parse(&["--presence-ttl", "10", "--event-rate", "5"]).unwrap();
        assert_eq!((config.presence_ttl, config.event_rate), (10, 5));

        for bad in [
            &["--presence-ttl", "1"][..],
            &["--presence-ttl", "3601"],
            &["--presence-rate", "0"],
            &["--event-rate", "0"],
            &["--event-rate", "10001"],
            &["--invitation-max-days", "0"],
            &["--invitation-max-days", "366"],
            &["--invitation-mailbox-cap", "0"],
            &["--invitation-rate", "0"],
        ] {
            let err = parse(bad).unwrap_err().to_string();
            assert!(err.contains(bad[0]), "{bad:?}: {err}");
        }
    }

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
