//! `auth` and `token.refresh`: the session of a connection.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::limits::{self, Limit, Validate, ValidationError};

/// `auth` params. Must be the first request on a connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthParams {
    /// An access token from the accounts server (compact JWS).
    pub token: String,
}

impl Validate for AuthParams {
    fn validate(&self) -> Result<(), ValidationError> {
        check_token(&self.token)
    }
}

/// `auth` result: who the connection is and what it may send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// The account (`sub` of the token).
    pub user: Uuid,
    /// The user's personal space in this app.
    pub personal_space: Uuid,
    /// The user's `did:key` in this app; capability audiences must match it.
    pub did: String,
    /// When the access token expires (Unix seconds). Refresh before, with
    /// `token.refresh`, or the server closes with 4001.
    pub expires_at: u64,
    /// The server's clock (Unix seconds) when it answered, so a client can
    /// schedule the refresh despite clock skew.
    pub server_time: u64,
    /// Limits this server enforces: never above the protocol's constants.
    pub limits: SessionLimits,
}

/// Limits a server announces in the session (each at most the protocol
/// constant of the same name; a server may choose lower ones).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionLimits {
    /// Largest frame in bytes ([`crate::MAX_FRAME_LEN`]).
    pub max_frame: u32,
    /// Largest record blob in bytes ([`crate::MAX_BLOB_LEN`]).
    pub max_blob: u32,
    /// Most changes per push ([`crate::MAX_PUSH_CHANGES`]).
    pub max_push_changes: u32,
    /// Most spaces per subscribe or pull ([`crate::MAX_SPACES_PER_REQUEST`]).
    pub max_spaces: u32,
    /// Largest presence payload ([`crate::MAX_PRESENCE_LEN`]).
    pub max_presence: u32,
    /// Largest event payload ([`crate::MAX_EVENT_LEN`]).
    pub max_event: u32,
}

impl Default for SessionLimits {
    /// The protocol's own limits.
    fn default() -> Self {
        let n = |v: usize| u32::try_from(v).unwrap_or(u32::MAX);
        Self {
            max_frame: n(crate::MAX_FRAME_LEN),
            max_blob: n(crate::MAX_BLOB_LEN),
            max_push_changes: n(crate::MAX_PUSH_CHANGES),
            max_spaces: n(crate::MAX_SPACES_PER_REQUEST),
            max_presence: n(crate::MAX_PRESENCE_LEN),
            max_event: n(crate::MAX_EVENT_LEN),
        }
    }
}

/// `token.refresh` params: a fresh access token for the same user and app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRefreshParams {
    /// The new access token.
    pub token: String,
}

impl Validate for TokenRefreshParams {
    fn validate(&self) -> Result<(), ValidationError> {
        check_token(&self.token)
    }
}

/// `token.refresh` result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRefreshed {
    /// When the new token expires (Unix seconds).
    pub expires_at: u64,
}

fn check_token(token: &str) -> Result<(), ValidationError> {
    if token.is_empty() {
        return Err(ValidationError::Empty { field: "token" });
    }
    limits::check(Limit::Token, token.len())
}
