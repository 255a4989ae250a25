//! wasm-bindgen bindings of the Sealbase crates for the browser. No logic of
//! its own: every function converts arguments, calls `sealbase-db`,
//! `sealbase-client`, `sealbase-auth` or `sealbase-crypto`, and converts the
//! result.
//!
//! - [`app`]: the app's side of OAuth with key delivery (both builds).
//! - [`sdk`] (feature `sdk`): the browser SDK's store ([`sdk::Store`]): the
//!   local database on SQLite, in OPFS through the SAH-pool VFS inside a
//!   dedicated worker, and the sync engine over the browser's WebSocket.
//!   `js/` (the npm package `sealbase`) wraps it.
//! - [`auth`] (feature `ui`): the account flows the accounts web UI runs:
//!   OPAQUE registration and login, `ARK` generation, wrapping and
//!   recovery, consent (app key derivation, attestation, JWE).
//!
//! Binary values of the account flows cross the boundary as unpadded
//! base64url strings, the form the accounts API uses; records, queries and
//! schemas cross as plain JavaScript values in the store's JSON form.
//! Secrets (`ARK`, export keys, epoch keys) stay inside wasm objects and
//! never become JavaScript values, except the recovery key text, shown to
//! the user once, and the app key, which the SDK keeps wrapped under a
//! non-extractable WebCrypto key.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod app;
#[cfg(feature = "ui")]
pub mod auth;
#[cfg(feature = "sdk")]
pub mod sdk;
