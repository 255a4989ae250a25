//! Error codes carried in responses and close codes ending a connection.
//!
//! Error codes are strings on the wire so that a newer server can add codes:
//! an unknown code decodes to [`ErrorCode::Other`], never to a failure.

use core::fmt;

use serde::{Deserialize, Serialize};

/// Declares a string-valued enum with a catch-all for values from newer peers.
macro_rules! wire_strings {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$doc:meta])* $variant:ident = $wire:literal, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$doc])* $variant, )*
            /// A value this version does not know (sent by a newer peer).
            Other(String),
        }

        impl $name {
            /// Every known value.
            pub const KNOWN: &'static [$name] = &[$($name::$variant),*];

            /// The wire string.
            pub fn as_str(&self) -> &str {
                match self {
                    $($name::$variant => $wire,)*
                    $name::Other(other) => other,
                }
            }

            /// Parses a wire string; unknown strings become `Other`.
            pub fn from_wire(s: &str) -> Self {
                match s {
                    $($wire => $name::$variant,)*
                    other => $name::Other(other.to_owned()),
                }
            }
        }

        impl ::core::fmt::Display for $name {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct WireVisitor;
                impl ::serde::de::Visitor<'_> for WireVisitor {
                    type Value = $name;
                    fn expecting(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                        f.write_str("a text string")
                    }
                    fn visit_str<E: ::serde::de::Error>(self, v: &str) -> Result<$name, E> {
                        Ok($name::from_wire(v))
                    }
                }
                deserializer.deserialize_str(WireVisitor)
            }
        }
    };
}
pub(crate) use wire_strings;

wire_strings! {
    /// Why a request failed (`error.code` of a response).
    pub enum ErrorCode {
        /// The request is malformed: undecodable params, a violated rule.
        BadRequest = "bad_request",
        /// No valid session: bad or expired token, or `auth` not done.
        Unauthorized = "unauthorized",
        /// Authenticated, but the capability does not grant this.
        Forbidden = "forbidden",
        /// The space, record, invitation or key does not exist.
        NotFound = "not_found",
        /// A compare-and-set failed (membership chain head, duplicate id).
        Conflict = "conflict",
        /// Too many requests; retry later.
        RateLimited = "rate_limited",
        /// A frame, blob or payload exceeds a limit.
        PayloadTooLarge = "payload_too_large",
        /// The method is not one this server knows.
        MethodNotFound = "method_not_found",
        /// A key is wrapped under an epoch older than the space's current one.
        StaleEpoch = "stale_epoch",
        /// The write would exceed the storage quota of the space's owner.
        QuotaExceeded = "quota_exceeded",
        /// The server failed; retry later.
        Internal = "internal",
    }
}

/// The error member of a failed response: `{code, message}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// Machine-readable code.
    pub code: ErrorCode,
    /// Human-readable detail for logs; clients must not parse it.
    pub message: String,
}

impl ErrorBody {
    /// An error with a code and message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

/// WebSocket close codes of protocol v1 (the private 4000–4999 range).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CloseCode {
    /// 4000: the first frame was not a valid `auth`, or none came in time.
    AuthFailed,
    /// 4001: the session's access token expired and was not refreshed.
    TokenExpired,
    /// 4002: access was revoked (capability revoked, member removed).
    AccessRevoked,
    /// 4003: the user has too many open connections.
    TooManyConnections,
    /// 4005: the peer broke the protocol (undecodable frame, text frame,
    /// oversized frame, unknown frame type).
    ProtocolError,
    /// 4006: the client reads too slowly; the server's send queue overflowed.
    SlowConsumer,
    /// 4007: the client exceeded its rate limit repeatedly.
    RateLimited,
}

impl CloseCode {
    /// Every close code.
    pub const ALL: &'static [CloseCode] = &[
        CloseCode::AuthFailed,
        CloseCode::TokenExpired,
        CloseCode::AccessRevoked,
        CloseCode::TooManyConnections,
        CloseCode::ProtocolError,
        CloseCode::SlowConsumer,
        CloseCode::RateLimited,
    ];

    /// The numeric WebSocket close code.
    pub const fn code(self) -> u16 {
        match self {
            CloseCode::AuthFailed => 4000,
            CloseCode::TokenExpired => 4001,
            CloseCode::AccessRevoked => 4002,
            CloseCode::TooManyConnections => 4003,
            CloseCode::ProtocolError => 4005,
            CloseCode::SlowConsumer => 4006,
            CloseCode::RateLimited => 4007,
        }
    }

    /// The close code for a number, if protocol v1 defines it.
    pub fn from_code(code: u16) -> Option<CloseCode> {
        CloseCode::ALL.iter().copied().find(|c| c.code() == code)
    }

    /// Short reason text to send in the close frame.
    pub const fn reason(self) -> &'static str {
        match self {
            CloseCode::AuthFailed => "auth failed",
            CloseCode::TokenExpired => "token expired",
            CloseCode::AccessRevoked => "access revoked",
            CloseCode::TooManyConnections => "too many connections",
            CloseCode::ProtocolError => "protocol error",
            CloseCode::SlowConsumer => "slow consumer",
            CloseCode::RateLimited => "rate limited",
        }
    }
}

impl fmt::Display for CloseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.code(), self.reason())
    }
}
