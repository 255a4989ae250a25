//! The Sealbase sync engine: keeps a local store ([`sealbase_db::Db`]) in
//! step with the user's spaces on a sync server, end to end encrypted.
//!
//! The app writes to its local store through a [`SyncHandle`] and never
//! waits for the network; [`SyncEngine::run`] pulls, merges and pushes in
//! the background. Records cross the network only as sealed, signed
//! envelopes (DESIGN.md §3.2): [`codec`] is the boundary.
//!
//! The engine is runtime-agnostic: it needs a [`Connector`] (WebSocket),
//! a [`Runtime`] (clock and timers) and a [`TokenSource`] (access tokens),
//! all traits, so the same code runs natively (feature `native`:
//! tokio-tungstenite, [`native::spawn`]) and in a browser worker.
//!
//! What it refuses: pulled versions that do not decrypt, are not signed by
//! this user's identity, whose document does not match the signed heads,
//! or that break the schema. They are quarantined in the store with the
//! reason (see [`sealbase_db::Db::quarantined`]) and the status reports
//! them; the rest of the space syncs on.
//!
//! Delete versus concurrent edit: delete wins (see [`sealbase_db::sync`]).
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod checks;
pub mod codec;
mod engine;
mod error;
pub mod files;
mod keys;
pub mod members;
#[cfg(feature = "native")]
pub mod native;
pub mod presence;
mod rpc;
pub mod spaces;
mod status;
mod transport;

pub use engine::{PRESENCE_HEARTBEAT_MS, SyncConfig, SyncEngine, SyncHandle};
pub use error::SyncError;
pub use keys::{PERSONAL_EPOCH, SyncKeys};
pub use sealbase_crypto::SignatureCheck;
pub use status::{Phase, StatusCell, SyncStatus};
pub use transport::{
    Connector, Received, Runtime, SignatureAnswer, TokenSource, Transport, TransportError,
};
