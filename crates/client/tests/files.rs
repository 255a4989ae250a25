//! Large files stream through the client in both directions: a 48 MiB
//! body is sealed while it is read and opened while it arrives, so the
//! process holds a few chunks of it, never the whole file. Alone in its
//! test binary, so its memory figure is its own.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::{Server, TempDir, User};
use sealbase_client::native::FileClient;
use sealbase_protocol::Uuid;
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;

const SIZE: u64 = 48 << 20;

/// Resident memory of this process, bytes (Linux).
fn rss() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

/// A writer that hashes what it is given and keeps nothing.
struct Hashing(Sha256, u64);

impl tokio::io::AsyncWrite for Hashing {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.0.update(buf);
        self.1 += buf.len() as u64;
        std::task::Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_file_streams_both_ways_in_bounded_memory() {
    let server = Server::start().await;
    let dir = TempDir::new("large-file");
    let ada = User::new(1);
    let [a] = server.devices(&dir, [&ada]).await;
    let access = a.handle.file_access(ada.personal_space).await.unwrap();
    let files = FileClient::new();
    let record = Uuid::from_u128(7);

    // A body that is never in memory: a pattern generated as it is read.
    let body = || tokio::io::repeat(0x5a).take(SIZE);
    let mut expected = Sha256::new();
    let mut reader = body();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = reader.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        expected.update(&buf[..n]);
    }
    let expected = expected.finalize();

    let before = rss();
    let file = files
        .upload(&access, record, body(), Some(SIZE))
        .await
        .unwrap();
    let mut out = Hashing(Sha256::new(), 0);
    let uploaded = rss().saturating_sub(before);
    let len = files.download(&access, file, &mut out).await.unwrap();
    let grown = rss().saturating_sub(before);
    eprintln!(
        "resident memory grew by {} MiB after the upload, {} MiB after the download",
        uploaded >> 20,
        grown >> 20
    );
    assert_eq!((len, out.1), (SIZE, SIZE));
    assert_eq!(out.0.finalize(), expected);
    // The server (same process) streams too; a whole-file buffer anywhere
    // would add at least the file's 48 MiB.
    assert!(
        grown < SIZE / 2,
        "resident memory grew by {} MiB",
        grown >> 20
    );
    // The stored object is the sealed body: header + a tag per chunk.
    let stored = common::files_under(&server.dir.0.join("files"));
    assert_eq!(stored.len(), 1);
    assert_eq!(
        std::fs::metadata(&stored[0]).unwrap().len(),
        sealbase_crypto::file::sealed_file_len(SIZE)
    );
    // The end of the file, read by range (the last chunk only).
    let range = files
        .read_range(&access, file, SIZE - 10, SIZE + 5)
        .await
        .unwrap();
    assert_eq!(range, vec![0x5a; 10]);
}
