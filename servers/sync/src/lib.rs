//! The Sealbase sync server: protocol v1 (`docs/protocol.md`) over WebSocket,
//! on SQLite or PostgreSQL.
//!
//! It stores and relays ciphertext only: record blobs, file bodies, wrapped
//! keys, membership entries, sealed keys, invitations, presence and events
//! are opaque bytes here (presence and events are never stored). What it
//! enforces is who may read and write each space (access tokens from a
//! trusted issuer, capability chains for shared spaces), the per-space
//! cursor order, and the protocol's limits.
//!
//! Layout: [`config`] (CLI and environment), [`auth`] (access tokens),
//! [`store`] (one module per database backend; handlers never see SQL),
//! [`outbox`] (one connection's bounded outbound queue), [`hub`] (realtime
//! fanout in one process), [`fanout`] (between instances
//! over Postgres `LISTEN/NOTIFY`), `access` (capability cache and
//! revocations), `presence` (who is present where, in memory only),
//! `mailbox` (live delivery and expiry of invitations), [`ratelimit`]
//! (keyed token buckets), [`session`] (one WebSocket connection), [`files`]
//! (file transfers over HTTP and their object store), [`server`] (routes
//! and lifecycle).
#![deny(missing_docs)]

pub mod access;
/// Access token verification (the shared `sealbase-token` crate).
pub use sealbase_token as auth;
pub mod config;
pub mod cors;
pub mod fanout;
pub mod files;
pub mod hub;
mod mailbox;
pub mod metrics;
pub mod outbox;
mod presence;
/// Keyed token buckets (the shared `sealbase-ratelimit` crate).
pub use sealbase_ratelimit as ratelimit;
pub mod server;
pub mod session;
pub mod store;
#[doc(hidden)]
pub mod testing;

pub use config::Config;
pub use server::{Limits, RunningServer, Settings, start};

/// Unix seconds now (0 if the clock is before 1970).
pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A random (version 4) UUID from the OS random source.
pub(crate) fn random_uuid() -> uuid::Uuid {
    use rand_core::RngCore;
    let mut bytes = [0u8; 16];
    rand_core::OsRng.fill_bytes(&mut bytes);
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}
