//! Email delivery: verification and recovery codes, and notices.
//!
//! Three mailers: `console` writes the message to the log; `dev` also keeps
//! the last messages in memory, readable at `GET /dev/mail?to=…` (only in
//! `--dev`, so end-to-end tests and developers can read codes); `smtp` sends
//! through an SMTP server with lettre (implicit TLS or STARTTLS).
//!
//! Sending never blocks the request that caused it beyond the SMTP
//! handshake, and a failed send is reported to the client as a server error
//! (the code is then useless, so nothing is lost by retrying).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::Context;
use lettre::message::Mailbox;
use lettre::transport::smtp::AsyncSmtpTransport;
use lettre::{AsyncTransport, Message, Tokio1Executor};
use serde::Serialize;

use crate::config::{Config, MailerKind};

/// Messages the dev mailer keeps.
const DEV_KEEP: usize = 256;

/// One email.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mail {
    /// Recipient address.
    pub to: String,
    /// Subject line.
    pub subject: String,
    /// Plain-text body.
    pub body: String,
}

/// Where emails go.
#[derive(Clone)]
pub enum Mailer {
    /// The log.
    Console,
    /// The log and memory.
    Dev(Arc<Mutex<VecDeque<Mail>>>),
    /// SMTP.
    Smtp {
        /// Transport (pooled connections).
        transport: AsyncSmtpTransport<Tokio1Executor>,
        /// Sender.
        from: Mailbox,
    },
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Console => "Mailer::Console",
            Self::Dev(_) => "Mailer::Dev",
            Self::Smtp { .. } => "Mailer::Smtp",
        })
    }
}

/// Checks an SMTP URL without connecting.
pub fn check_smtp_url(url: &str) -> anyhow::Result<()> {
    AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
        .map(|_| ())
        .context("--smtp-url / SEALBASE_SMTP_URL is not a valid smtp:// or smtps:// URL")
}

impl Mailer {
    /// The mailer `config` asks for (validated already).
    pub fn from_config(config: &Config) -> anyhow::Result<Self> {
        Ok(match config.mailer_kind() {
            MailerKind::Console => Self::Console,
            MailerKind::Dev => Self::dev(),
            MailerKind::Smtp => {
                let url = config.smtp_url.as_deref().context("no SMTP URL")?;
                let from = config.mail_from.as_deref().context("no sender address")?;
                Self::Smtp {
                    transport: AsyncSmtpTransport::<Tokio1Executor>::from_url(url)?.build(),
                    from: from.parse().context("sender address")?,
                }
            }
        })
    }

    /// A dev mailer with an empty memory.
    pub fn dev() -> Self {
        Self::Dev(Arc::new(Mutex::new(VecDeque::new())))
    }

    /// Sends `mail`.
    pub async fn send(&self, mail: Mail) -> anyhow::Result<()> {
        match self {
            Self::Console => {
                tracing::info!(to = %mail.to, subject = %mail.subject, body = %mail.body, "email (console mailer)");
            }
            Self::Dev(memory) => {
                tracing::info!(to = %mail.to, subject = %mail.subject, body = %mail.body, "email (dev mailer)");
                let mut memory = memory.lock().unwrap_or_else(PoisonError::into_inner);
                if memory.len() == DEV_KEEP {
                    memory.pop_front();
                }
                memory.push_back(mail);
            }
            Self::Smtp { transport, from } => {
                let message = Message::builder()
                    .from(from.clone())
                    .to(mail.to.parse().context("recipient address")?)
                    .subject(mail.subject)
                    .body(mail.body)
                    .context("building the email")?;
                transport.send(message).await.context("SMTP delivery")?;
            }
        }
        Ok(())
    }

    /// Dev mailer: messages sent to `to`, oldest first (empty for others).
    pub fn sent_to(&self, to: &str) -> Vec<Mail> {
        match self {
            Self::Dev(memory) => memory
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .iter()
                .filter(|m| m.to.eq_ignore_ascii_case(to))
                .cloned()
                .collect(),
            _ => Vec::new(),
        }
    }

    /// Whether this mailer exposes messages over HTTP.
    pub fn is_dev(&self) -> bool {
        matches!(self, Self::Dev(_))
    }
}
