//! Sealbase account authentication, shared by the accounts server, the native
//! client and the browser (through wasm): one implementation of each step.
//!
//! [`opaque`] fixes the OPAQUE suite (RFC 9807: ristretto255 OPRF, TripleDH
//! with SHA-512, Argon2id key stretching on the client) and wraps each step
//! of registration and login in byte-in, byte-out functions. The password
//! never leaves the client; the server keeps a password file from which no
//! password can be recovered without an offline dictionary attack through
//! Argon2id, and the client gets OPAQUE's export key, from which
//! `sealbase-crypto` derives the key that wraps the account root key.
//!
//! Like `sealbase-crypto`, this crate reads no clock and draws no randomness
//! of its own: callers pass an RNG in.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod api;
pub mod app;
#[cfg(feature = "client")]
pub mod client;
pub mod directory;
pub mod flow;
pub mod opaque;
pub mod pkce;

pub use opaque::{
    ClientLoginState, ClientRegistrationState, ExportKey, LoginFinish, OpaqueError, PasswordFile,
    ServerKeys, ServerLoginState,
};
