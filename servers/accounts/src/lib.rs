//! The Sealbase accounts server: OPAQUE signup and login with email codes,
//! sessions, password change and recovery that re-wrap the account root key,
//! an OAuth 2.0 authorization server for public clients (PKCE S256 only,
//! refresh rotation with reuse detection, EdDSA access tokens and JWKS), key
//! delivery to apps as JWEs it cannot open, the key directory and discovery.
//!
//! What it never holds: a password, an account root key, an app key or a
//! recovery key in the clear. See `docs/security.md` (accounts) and
//! `docs/operations.md`.
//!
//! Layout: [`config`] (CLI and environment), [`keys`] (the key file),
//! [`store`] (all SQL, SQLite and Postgres), [`server`] (state, routes,
//! middleware), [`account`] (signup, login, password, recovery), [`oauth`]
//! (authorize, consent, token, revoke, userinfo, directory), [`discovery`],
//! [`mail`], [`secret`] (bearer secrets and codes), [`web`], [`service`]
//! (start-up and serving, client registration).
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod account;
pub mod config;
pub mod discovery;
pub mod keys;
pub mod mail;
pub mod oauth;
pub mod secret;
pub mod server;
pub mod service;
pub mod store;
pub mod web;

pub use server::{AppState, Limits, Settings, router, serve};
