//! Limits of protocol v1 and the validation that enforces them.
//!
//! Server and client call the same [`Validate`] code, so a request the
//! client accepts is never rejected by the server for a limit (short of the
//! lower limits a server may announce in [`crate::SessionLimits`]).

use core::fmt;
use core::time::Duration;

use uuid::Uuid;

use crate::codes::ErrorCode;

/// One KiB.
const KIB: usize = 1024;
/// One MiB.
const MIB: usize = 1024 * KIB;

/// Largest WebSocket message (one frame), in bytes. Checked before any
/// parsing; larger frames close the connection with 4005.
pub const MAX_FRAME_LEN: usize = 4 * MIB;

/// Bytes a record envelope adds around its padded plaintext: version byte
/// (1), nonce (12) and AES-GCM tag (16).
pub const RECORD_ENVELOPE_OVERHEAD: usize = 1 + 12 + 16;

/// Largest padded plaintext of a record: the 3 MiB padding bucket. The next
/// bucket (4 MiB) could not fit in a frame; 3 MiB leaves ~1 MiB for the frame
/// envelope, a 16 KiB capability and the other changes of a batch.
pub const MAX_RECORD_PLAINTEXT_LEN: usize = 3 * MIB;

/// Largest record blob: the largest padded plaintext plus the envelope.
/// Anything bigger belongs in a file (streamed over HTTP in chunks).
pub const MAX_BLOB_LEN: usize = MAX_RECORD_PLAINTEXT_LEN + RECORD_ENVELOPE_OVERHEAD;

/// Most changes in one `push` (one atomic transaction on the server). A batch
/// must also fit in one frame, whichever comes first.
pub const MAX_PUSH_CHANGES: usize = 1000;

/// Most spaces named in one `subscribe`, `unsubscribe` or `pull`. With a
/// maximum-size capability per space this still fits in a frame.
pub const MAX_SPACES_PER_REQUEST: usize = 200;

/// Largest presence payload (an encrypted cursor position or status; the
/// server fans it out at high rate, so it is kept small).
pub const MAX_PRESENCE_LEN: usize = 4 * KIB;

/// Largest ephemeral event payload (`event.send`).
pub const MAX_EVENT_LEN: usize = 64 * KIB;

/// Largest access token or capability token (compact JWS), in bytes. A
/// capability embeds its parent chain, so it grows with delegation depth.
pub const MAX_TOKEN_LEN: usize = 16 * KIB;

/// Largest DID string (`did:key:z…` for Ed25519 is 56 bytes).
pub const MAX_DID_LEN: usize = 256;

/// Largest membership log entry ciphertext.
pub const MAX_MEMBERSHIP_ENTRY_LEN: usize = 64 * KIB;

/// Largest sealed epoch key (an ephemeral X25519 key, nonce, 32-byte key and
/// tag are about 100 bytes; the rest is room for a versioned format).
pub const MAX_SEALED_KEY_LEN: usize = 512;

/// Most recipients of one `epoch.begin` (members of a shared space).
pub const MAX_EPOCH_RECIPIENTS: usize = 1000;

/// Most keys in one `deks.rewrap`.
pub const MAX_REWRAP_BATCH: usize = 1000;

/// Largest sealed invitation payload.
pub const MAX_INVITATION_LEN: usize = 64 * KIB;

/// Size of a plaintext chunk of an encrypted file (files move over HTTP,
/// encrypted chunk by chunk; `Range` requests align to chunk boundaries).
pub const FILE_CHUNK_LEN: usize = 256 * KIB;

/// How long the server waits for the `auth` request after the WebSocket
/// opens before closing with 4000.
pub const AUTH_TIMEOUT: Duration = Duration::from_secs(5);

/// A limit a request can exceed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Limit {
    /// [`MAX_BLOB_LEN`].
    Blob,
    /// [`MAX_PUSH_CHANGES`].
    PushChanges,
    /// [`MAX_SPACES_PER_REQUEST`].
    Spaces,
    /// [`MAX_PRESENCE_LEN`].
    Presence,
    /// [`MAX_EVENT_LEN`].
    Event,
    /// [`MAX_TOKEN_LEN`].
    Token,
    /// [`MAX_DID_LEN`].
    Did,
    /// [`MAX_MEMBERSHIP_ENTRY_LEN`].
    MembershipEntry,
    /// [`MAX_SEALED_KEY_LEN`].
    SealedKey,
    /// [`MAX_EPOCH_RECIPIENTS`].
    EpochRecipients,
    /// [`MAX_REWRAP_BATCH`].
    RewrapBatch,
    /// [`MAX_INVITATION_LEN`].
    Invitation,
}

impl Limit {
    /// The largest allowed value.
    pub const fn max(self) -> usize {
        match self {
            Limit::Blob => MAX_BLOB_LEN,
            Limit::PushChanges => MAX_PUSH_CHANGES,
            Limit::Spaces => MAX_SPACES_PER_REQUEST,
            Limit::Presence => MAX_PRESENCE_LEN,
            Limit::Event => MAX_EVENT_LEN,
            Limit::Token => MAX_TOKEN_LEN,
            Limit::Did => MAX_DID_LEN,
            Limit::MembershipEntry => MAX_MEMBERSHIP_ENTRY_LEN,
            Limit::SealedKey => MAX_SEALED_KEY_LEN,
            Limit::EpochRecipients => MAX_EPOCH_RECIPIENTS,
            Limit::RewrapBatch => MAX_REWRAP_BATCH,
            Limit::Invitation => MAX_INVITATION_LEN,
        }
    }

    /// Name of the limited quantity, for messages.
    pub const fn name(self) -> &'static str {
        match self {
            Limit::Blob => "blob bytes",
            Limit::PushChanges => "changes per push",
            Limit::Spaces => "spaces per request",
            Limit::Presence => "presence payload bytes",
            Limit::Event => "event payload bytes",
            Limit::Token => "token bytes",
            Limit::Did => "DID bytes",
            Limit::MembershipEntry => "membership entry bytes",
            Limit::SealedKey => "sealed key bytes",
            Limit::EpochRecipients => "epoch recipients",
            Limit::RewrapBatch => "keys per rewrap",
            Limit::Invitation => "invitation payload bytes",
        }
    }

    /// Whether the limit is on a byte size (exceeding it is
    /// `payload_too_large`) rather than a count (`bad_request`).
    pub const fn is_size(self) -> bool {
        !matches!(
            self,
            Limit::PushChanges | Limit::Spaces | Limit::EpochRecipients | Limit::RewrapBatch
        )
    }
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A request that breaks a rule of protocol v1.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ValidationError {
    /// A size or count exceeds its limit.
    #[error("{limit}: {actual} exceeds the limit of {}", limit.max())]
    TooLarge {
        /// Which limit.
        limit: Limit,
        /// The offending size or count.
        actual: usize,
    },
    /// A field that must not be empty is.
    #[error("{field} must not be empty")]
    Empty {
        /// The field.
        field: &'static str,
    },
    /// A list names the same id twice.
    #[error("{field} names {id} twice")]
    Duplicate {
        /// The list.
        field: &'static str,
        /// The repeated id.
        id: Uuid,
    },
    /// A push change has a blob without a key or a key without a blob.
    #[error("change {id}: dek must be present exactly when blob is")]
    DekBlobMismatch {
        /// The record.
        id: Uuid,
    },
    /// Epoch numbers start at 1.
    #[error("epoch 0 does not exist")]
    ZeroEpoch,
}

impl ValidationError {
    /// The error code a server answers with.
    pub fn error_code(&self) -> ErrorCode {
        match self {
            ValidationError::TooLarge { limit, .. } if limit.is_size() => {
                ErrorCode::PayloadTooLarge
            }
            _ => ErrorCode::BadRequest,
        }
    }
}

/// Rules a message must satisfy beyond decoding.
pub trait Validate {
    /// Checks every limit and rule; the first broken one is returned.
    fn validate(&self) -> Result<(), ValidationError> {
        Ok(())
    }
}

/// Fails if `actual` exceeds `limit`.
pub(crate) fn check(limit: Limit, actual: usize) -> Result<(), ValidationError> {
    if actual > limit.max() {
        Err(ValidationError::TooLarge { limit, actual })
    } else {
        Ok(())
    }
}

/// Fails if a list is empty.
pub(crate) fn non_empty<T>(field: &'static str, list: &[T]) -> Result<(), ValidationError> {
    if list.is_empty() {
        Err(ValidationError::Empty { field })
    } else {
        Ok(())
    }
}

/// Checks an optional capability token's size.
pub(crate) fn check_cap(cap: Option<&String>) -> Result<(), ValidationError> {
    cap.map_or(Ok(()), |cap| check(Limit::Token, cap.len()))
}

/// The rules of every request naming spaces with their capabilities
/// (`subscribe`, `pull`): not empty, at most [`Limit::Spaces`] entries, each
/// capability within [`Limit::Token`], no space twice.
pub(crate) fn check_space_list<T>(
    spaces: &[T],
    id: impl Fn(&T) -> Uuid,
    cap: impl Fn(&T) -> Option<&String>,
) -> Result<(), ValidationError> {
    non_empty("spaces", spaces)?;
    check(Limit::Spaces, spaces.len())?;
    for space in spaces {
        check_cap(cap(space))?;
    }
    unique("spaces", spaces.iter().map(id))
}

/// Fails if an id repeats.
pub(crate) fn unique(
    field: &'static str,
    ids: impl Iterator<Item = Uuid>,
) -> Result<(), ValidationError> {
    let mut ids: Vec<Uuid> = ids.collect();
    ids.sort_unstable();
    match ids.windows(2).find(|w| w.first() == w.get(1)) {
        Some(w) => Err(ValidationError::Duplicate {
            field,
            id: w.first().copied().unwrap_or_default(),
        }),
        None => Ok(()),
    }
}
