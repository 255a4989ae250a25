//! Why a sync attempt failed.

use sealbase_protocol::{CloseCode, ErrorBody, ErrorCode};

use crate::transport::TransportError;

/// Why a connection ended or an operation failed. The engine reports it in
/// the status and reconnects (with backoff) unless it was told to stop.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The socket failed or could not be opened.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The server closed the socket.
    #[error("the server closed the connection ({}): {reason}", shown_code(*code))]
    Closed {
        /// The close code.
        code: Option<u16>,
        /// The close reason.
        reason: String,
    },
    /// The server answered a request with an error.
    #[error("{method}: {} ({})", error.message, error.code.as_str())]
    Server {
        /// The method.
        method: &'static str,
        /// The server's error.
        error: ErrorBody,
    },
    /// The server sent something protocol v1 does not allow.
    #[error("protocol: {0}")]
    Protocol(String),
    /// A request this client built breaks a protocol rule.
    #[error("refused locally: {0}")]
    Refused(String),
    /// No access token.
    #[error("access token: {0}")]
    Token(String),
    /// The session is for another identity than this app key's.
    #[error("the server's session is for {session}, but this app key is {keys}")]
    WrongIdentity {
        /// The session's DID.
        session: String,
        /// The keys' DID.
        keys: String,
    },
    /// The personal space was refused.
    #[error("the personal space was refused: {0}")]
    Denied(String),
    /// Pushes kept conflicting with concurrent writers.
    #[error("push conflicted {0} times in a row")]
    Busy(u32),
    /// The local store failed.
    #[error(transparent)]
    Db(#[from] sealbase_db::DbError),
}

impl SyncError {
    /// The close code the server sent, if that is how it ended.
    pub fn close_code(&self) -> Option<CloseCode> {
        match self {
            SyncError::Closed {
                code: Some(code), ..
            } => CloseCode::from_code(*code),
            _ => None,
        }
    }

    /// Whether the connection itself failed (not a refused request).
    pub fn is_connection(&self) -> bool {
        matches!(
            self,
            SyncError::Transport(_) | SyncError::Closed { .. } | SyncError::Protocol(_)
        )
    }

    /// The protocol error code of a server error.
    pub fn error_code(&self) -> Option<&ErrorCode> {
        match self {
            SyncError::Server { error, .. } => Some(&error.code),
            _ => None,
        }
    }
}

/// A close code for a message: "code 4001", or "no code".
fn shown_code(code: Option<u16>) -> String {
    code.map_or_else(|| "no code".to_owned(), |c| format!("code {c}"))
}
