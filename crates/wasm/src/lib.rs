//! wasm-bindgen bindings of the Sealbase crates for the browser. No logic of
//! its own: every function converts arguments, calls `sealbase-auth` or
//! `sealbase-crypto`, and converts the result.
//!
//! Today it binds the account flows the accounts web UI runs ([`auth`]):
//! OPAQUE registration and login, `ARK` generation, wrapping and recovery,
//! consent (app key derivation, attestation, JWE), and the app's side of key
//! delivery. Binary values cross the boundary as unpadded base64url strings,
//! the form the accounts API uses. Secrets (`ARK`, export keys) stay inside
//! wasm objects and never become JavaScript values, except the recovery key
//! text, which exists to be shown to the user once.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod auth;
