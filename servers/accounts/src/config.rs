//! Configuration from CLI flags and environment variables, validated before
//! anything starts.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};

/// `sealbase-accounts`: the Sealbase accounts server.
#[derive(Debug, Parser)]
#[command(name = "sealbase-accounts", version, about)]
pub struct Cli {
    /// What to do (default: serve).
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Settings.
    #[command(flatten)]
    pub config: Config,
}

/// Subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Migrate the database, then serve.
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Create the key file (OPAQUE server setup, code key, first signing key).
    Keygen {
        /// Replace an existing key file. Every password file becomes useless:
        /// only for a server without accounts.
        #[arg(long)]
        force: bool,
    },
    /// Manage access-token signing keys (rollover: add, wait, activate,
    /// wait, retire).
    #[command(subcommand)]
    SigningKey(SigningKeyCommand),
    /// Manage OAuth clients (apps).
    #[command(subcommand)]
    Client(ClientCommand),
}

/// `signing-key …`
#[derive(Debug, Clone, Subcommand)]
pub enum SigningKeyCommand {
    /// Add a new key, published in the JWKS but not yet signing.
    Add,
    /// Make a published key the one that signs (the previous active key
    /// stays published until retired).
    Activate {
        /// Key id.
        kid: String,
    },
    /// Stop publishing a key that no longer signs.
    Retire {
        /// Key id.
        kid: String,
    },
    /// List keys and their state.
    List,
}

/// `client …`
#[derive(Debug, Clone, Subcommand)]
pub enum ClientCommand {
    /// Register (or update) a public client.
    Add {
        /// `client_id`: 1–64 of `a-z 0-9 - _ .`.
        #[arg(long)]
        id: String,
        /// Display name shown on the consent page.
        #[arg(long)]
        name: String,
        /// Exact redirect URI (repeat for several).
        #[arg(long = "redirect-uri", required = true)]
        redirect_uris: Vec<String>,
        /// Scope the client may ask for (repeat; default: sync profile directory).
        #[arg(long = "scope")]
        scopes: Vec<String>,
    },
    /// List clients.
    List,
    /// Remove a client, its grants and its refresh tokens.
    Remove {
        /// `client_id`.
        id: String,
    },
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// How verification and recovery codes are delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MailerKind {
    /// Printed to the log (development).
    Console,
    /// Printed to the log and kept in memory, readable at `/dev/mail`
    /// (development and tests only; refused without `--dev`).
    Dev,
    /// SMTP (production).
    Smtp,
}

/// Scopes a client gets when registered without `--scope`.
pub const DEFAULT_SCOPES: &[&str] = &["sync", "profile", "directory"];
/// Every scope this server knows.
pub const KNOWN_SCOPES: &[&str] = &["sync", "profile", "email", "directory"];

/// Server settings (every flag also reads an environment variable).
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Address and port to listen on.
    #[arg(
        long,
        global = true,
        env = "SEALBASE_ACCOUNTS_LISTEN",
        default_value = "127.0.0.1:8080"
    )]
    pub listen: SocketAddr,
    /// Database: `sqlite://PATH` (created if missing) or `postgres://…`.
    #[arg(
        long,
        global = true,
        env = "DATABASE_URL",
        default_value = "sqlite://./data/accounts.db"
    )]
    pub database_url: String,
    /// Key file (OPAQUE server setup, code key, signing keys); made by
    /// `keygen`, or on first start with `--dev`.
    #[arg(
        long,
        global = true,
        env = "SEALBASE_ACCOUNTS_KEYS",
        default_value = "./data/accounts-keys.json"
    )]
    pub keys_file: PathBuf,
    /// Public base URL of this server; the `iss` of its tokens. Required
    /// unless `--dev` (then `http://<listen>`). Must be https except on
    /// localhost.
    #[arg(long, global = true, env = "SEALBASE_ISSUER")]
    pub issuer: Option<String>,
    /// Development mode: creates missing keys, allows the dev mailer and
    /// plain http.
    #[arg(long, global = true, env = "SEALBASE_DEV")]
    pub dev: bool,
    /// Mail delivery (default: `dev` with `--dev`, otherwise `smtp`).
    #[arg(long, global = true, env = "SEALBASE_MAILER")]
    pub mailer: Option<MailerKind>,
    /// SMTP server: `smtps://user:pass@host:465` (implicit TLS),
    /// `smtp://user:pass@host:587?tls=required` (STARTTLS).
    #[arg(long, global = true, env = "SEALBASE_SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<String>,
    /// Sender address of emails, e.g. `Sealbase <accounts@example.com>`.
    #[arg(long, global = true, env = "SEALBASE_MAIL_FROM")]
    pub mail_from: Option<String>,
    /// Sync server WebSocket URL advertised in discovery.
    #[arg(long, global = true, env = "SEALBASE_SYNC_URL")]
    pub sync_url: Option<String>,
    /// `aud` of access tokens (the sync server's `--audience`).
    #[arg(
        long,
        global = true,
        env = "SEALBASE_TOKEN_AUDIENCE",
        default_value = "sealbase-sync"
    )]
    pub token_audience: String,
    /// Access token lifetime, seconds (60–3600).
    #[arg(
        long,
        global = true,
        env = "SEALBASE_ACCESS_TOKEN_TTL",
        default_value_t = 600
    )]
    pub access_token_ttl: u64,
    /// Refresh token lifetime, days (1–365).
    #[arg(
        long,
        global = true,
        env = "SEALBASE_REFRESH_TOKEN_DAYS",
        default_value_t = 30
    )]
    pub refresh_token_days: u64,
    /// Sign-in session lifetime, days (1–90).
    #[arg(
        long,
        global = true,
        env = "SEALBASE_SESSION_DAYS",
        default_value_t = 14
    )]
    pub session_days: u64,
    /// Take the client IP from the last `X-Forwarded-For` hop (only behind a
    /// proxy that sets it, such as the bundled Caddy).
    #[arg(long, global = true, env = "SEALBASE_TRUST_PROXY")]
    pub trust_proxy: bool,
    /// Directory of the web UI's static files (HTML, CSS, JS, wasm).
    #[arg(long, global = true, env = "SEALBASE_ACCOUNTS_WEB_DIR")]
    pub web_dir: Option<PathBuf>,
    /// Log format.
    #[arg(
        long,
        global = true,
        env = "SEALBASE_LOG_FORMAT",
        default_value = "text"
    )]
    pub log_format: LogFormat,
}

impl Config {
    /// The mailer in effect.
    pub fn mailer_kind(&self) -> MailerKind {
        self.mailer.unwrap_or(if self.dev {
            MailerKind::Dev
        } else {
            MailerKind::Smtp
        })
    }

    /// The issuer in effect (validated by [`Config::validate`]).
    pub fn issuer(&self) -> String {
        match &self.issuer {
            Some(issuer) => issuer.trim_end_matches('/').to_owned(),
            None => format!("http://{}", self.listen),
        }
    }

    /// Checks everything that can be checked before starting; the message
    /// names the flag and its variable.
    pub fn validate(&self) -> anyhow::Result<()> {
        if crate::store::Backend::of_url(&self.database_url).is_none() {
            bail!("--database-url / DATABASE_URL must start with sqlite:// or postgres://");
        }
        if self.issuer.is_none() && !self.dev {
            bail!("set the public URL with --issuer or SEALBASE_ISSUER (or use --dev)");
        }
        let issuer = self.issuer();
        let url = url::Url::parse(&issuer)
            .with_context(|| format!("--issuer / SEALBASE_ISSUER is not a URL: {issuer}"))?;
        if url.query().is_some() || url.fragment().is_some() || url.cannot_be_a_base() {
            bail!("--issuer / SEALBASE_ISSUER must be a base URL without query or fragment");
        }
        let local = matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
        match url.scheme() {
            "https" => {}
            "http" if self.dev || local => {}
            _ => bail!(
                "--issuer / SEALBASE_ISSUER must use https (http only on localhost or with --dev)"
            ),
        }
        if !(60..=3600).contains(&self.access_token_ttl) {
            bail!("--access-token-ttl / SEALBASE_ACCESS_TOKEN_TTL must be 60–3600 seconds");
        }
        if !(1..=365).contains(&self.refresh_token_days) {
            bail!("--refresh-token-days / SEALBASE_REFRESH_TOKEN_DAYS must be 1–365");
        }
        if !(1..=90).contains(&self.session_days) {
            bail!("--session-days / SEALBASE_SESSION_DAYS must be 1–90");
        }
        if self.token_audience.trim().is_empty() {
            bail!("--token-audience / SEALBASE_TOKEN_AUDIENCE is empty");
        }
        match self.mailer_kind() {
            MailerKind::Dev if !self.dev => {
                bail!("--mailer dev exposes codes over HTTP: only with --dev / SEALBASE_DEV")
            }
            MailerKind::Smtp => {
                let Some(smtp) = &self.smtp_url else {
                    bail!(
                        "the smtp mailer needs --smtp-url / SEALBASE_SMTP_URL (or --mailer console with --dev)"
                    )
                };
                crate::mail::check_smtp_url(smtp)?;
                let Some(from) = &self.mail_from else {
                    bail!("the smtp mailer needs --mail-from / SEALBASE_MAIL_FROM")
                };
                from.parse::<lettre::message::Mailbox>().with_context(|| {
                    format!("--mail-from / SEALBASE_MAIL_FROM is not an address: {from}")
                })?;
            }
            _ => {}
        }
        if let Some(sync) = &self.sync_url {
            let u = url::Url::parse(sync)
                .with_context(|| format!("--sync-url / SEALBASE_SYNC_URL is not a URL: {sync}"))?;
            if !matches!(u.scheme(), "ws" | "wss") {
                bail!("--sync-url / SEALBASE_SYNC_URL must be a ws:// or wss:// URL");
            }
        }
        if let Some(dir) = &self.web_dir
            && !dir.is_dir()
        {
            bail!("--web-dir / SEALBASE_ACCOUNTS_WEB_DIR {dir:?} is not a directory");
        }
        Ok(())
    }
}

/// Checks a `client_id`.
pub fn valid_client_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.')
        })
}

/// Checks a redirect URI for registration: absolute, no fragment; https, or
/// http on a loopback host (RFC 8252 §7.3), or a private-use scheme with a
/// dot (RFC 8252 §7.1).
pub fn valid_redirect_uri(uri: &str) -> Result<(), String> {
    let url = url::Url::parse(uri).map_err(|e| format!("{uri}: not an absolute URL ({e})"))?;
    if url.fragment().is_some() {
        return Err(format!("{uri}: a redirect URI may not have a fragment"));
    }
    match url.scheme() {
        "https" => Ok(()),
        "http" if matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]")) => Ok(()),
        "http" => Err(format!("{uri}: http is only allowed on localhost")),
        scheme if scheme.contains('.') => Ok(()),
        _ => Err(format!(
            "{uri}: use https, http on localhost, or a reverse-domain scheme"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(extra: &[&str]) -> anyhow::Result<Config> {
        let mut args = vec!["sealbase-accounts"];
        args.extend_from_slice(extra);
        let cli = Cli::try_parse_from(args)?;
        cli.config.validate()?;
        Ok(cli.config)
    }

    #[test]
    fn production_needs_issuer_and_smtp() {
        let e = parse(&[]).unwrap_err().to_string();
        assert!(e.contains("SEALBASE_ISSUER"), "{e}");
        let e = parse(&["--issuer", "https://accounts.example"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("SEALBASE_SMTP_URL"), "{e}");
        let e = parse(&["--issuer", "http://accounts.example", "--mailer", "console"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("https"), "{e}");
        parse(&[
            "--issuer",
            "https://accounts.example",
            "--smtp-url",
            "smtps://u:p@mail.example:465",
            "--mail-from",
            "Sealbase <accounts@example.com>",
        ])
        .unwrap();
    }

    #[test]
    fn dev_mailer_only_in_dev() {
        let e = parse(&["--issuer", "http://localhost:8080", "--mailer", "dev"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("SEALBASE_DEV"), "{e}");
        let c = parse(&["--dev"]).unwrap();
        assert_eq!(c.mailer_kind(), MailerKind::Dev);
        assert_eq!(c.issuer(), "http://127.0.0.1:8080");
    }

    #[test]
    fn limits_are_checked() {
        let e = parse(&["--dev", "--access-token-ttl", "5"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("SEALBASE_ACCESS_TOKEN_TTL"), "{e}");
        let e = parse(&["--dev", "--database-url", "mysql://x"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("DATABASE_URL"), "{e}");
        let e = parse(&["--dev", "--sync-url", "http://x"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("SEALBASE_SYNC_URL"), "{e}");
    }

    #[test]
    fn redirect_uris_and_client_ids() {
        assert!(valid_redirect_uri("https://app.example/cb").is_ok());
        assert!(valid_redirect_uri("http://localhost:5173/cb").is_ok());
        assert!(valid_redirect_uri("com.example.app:/cb").is_ok());
        assert!(valid_redirect_uri("http://app.example/cb").is_err());
        assert!(valid_redirect_uri("https://app.example/cb#x").is_err());
        assert!(valid_redirect_uri("/cb").is_err());
        assert!(valid_client_id("tasks"));
        assert!(!valid_client_id("Tasks"));
        assert!(!valid_client_id(""));
    }
}
