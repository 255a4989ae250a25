//! The SMTP mailer against a minimal SMTP server on a local socket: the
//! code mail really leaves through SMTP (lettre), with the configured
//! sender.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use clap::Parser;
use sealbase_accounts::config::Cli;
use sealbase_accounts::mail::{Mail, Mailer};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// Accepts one SMTP session and returns the envelope and message it got.
async fn smtp_sink(listener: TcpListener) -> (Vec<String>, String) {
    let (socket, _) = listener.accept().await.unwrap();
    let (read, mut write) = socket.into_split();
    let mut lines = BufReader::new(read).lines();
    let mut envelope = Vec::new();
    let mut data = String::new();
    write.write_all(b"220 sink ESMTP\r\n").await.unwrap();
    while let Some(line) = lines.next_line().await.unwrap() {
        let verb = line
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        match verb.as_str() {
            "EHLO" | "HELO" => write
                .write_all(b"250-sink\r\n250 8BITMIME\r\n")
                .await
                .unwrap(),
            "MAIL" | "RCPT" => {
                envelope.push(line.clone());
                write.write_all(b"250 ok\r\n").await.unwrap();
            }
            "DATA" => {
                write.write_all(b"354 go on\r\n").await.unwrap();
                while let Some(body) = lines.next_line().await.unwrap() {
                    if body == "." {
                        break;
                    }
                    data.push_str(&body);
                    data.push('\n');
                }
                write.write_all(b"250 queued\r\n").await.unwrap();
            }
            "QUIT" => {
                write.write_all(b"221 bye\r\n").await.unwrap();
                break;
            }
            _ => write.write_all(b"250 ok\r\n").await.unwrap(),
        }
    }
    (envelope, data)
}

/// The mailer a production configuration (validated) builds for a local
/// SMTP server on `port`.
fn smtp_mailer(port: u16, from: &str) -> Mailer {
    let cli = Cli::try_parse_from([
        "sealbase-accounts",
        "--issuer",
        "https://accounts.example",
        "--smtp-url",
        &format!("smtp://127.0.0.1:{port}"),
        "--mail-from",
        from,
    ])
    .unwrap();
    cli.config.validate().unwrap();
    Mailer::from_config(&cli.config).unwrap()
}

#[tokio::test]
async fn the_smtp_mailer_delivers_through_smtp() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let sink = tokio::spawn(smtp_sink(listener));
    let mailer = smtp_mailer(port, "Sealbase <accounts@example.com>");
    assert!(!mailer.is_dev());
    mailer
        .send(Mail {
            to: "alice@example.com".into(),
            subject: "Your Sealbase code: 123456".into(),
            body: "Your verification code is 123456.".into(),
        })
        .await
        .unwrap();
    drop(mailer);
    let (envelope, data) = tokio::time::timeout(std::time::Duration::from_secs(10), sink)
        .await
        .expect("the SMTP session ended")
        .unwrap();
    assert!(
        envelope
            .iter()
            .any(|l| l.contains("<accounts@example.com>")),
        "{envelope:?}"
    );
    assert!(
        envelope.iter().any(|l| l.contains("<alice@example.com>")),
        "{envelope:?}"
    );
    assert!(
        data.contains("Subject: Your Sealbase code: 123456"),
        "{data}"
    );
    assert!(data.contains("Your verification code is 123456."), "{data}");
    assert!(
        data.contains("From: Sealbase <accounts@example.com>"),
        "{data}"
    );
}

#[tokio::test]
async fn an_unreachable_smtp_server_is_an_error_not_a_silent_loss() {
    // A port nobody listens on.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mailer = smtp_mailer(port, "accounts@example.com");
    let sent = mailer
        .send(Mail {
            to: "alice@example.com".into(),
            subject: "x".into(),
            body: "y".into(),
        })
        .await;
    assert!(sent.is_err());
}
