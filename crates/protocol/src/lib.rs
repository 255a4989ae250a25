//! Sealbase sync protocol v1: the wire contract between the sync server and
//! its clients (natively and in the browser as wasm32).
//!
//! Every WebSocket binary message on `GET /api/v1/ws` (subprotocol
//! `sealbase.v1`) is one CBOR map, a [`Frame`]: a request, a response, a
//! notification or a stream chunk. This crate encodes and decodes frames,
//! and gives every method, result, notification and stream chunk a Rust type
//! ([`ClientRequest`], [`CallResult`], [`Notification`], [`PullChunk`]). It
//! also fixes the error codes, close codes and limits, and validates requests
//! against the limits ([`Validate`]) so server and client enforce one set of
//! rules. `docs/protocol.md` is the reference for other implementations.
//!
//! Decoding is two steps: [`decode`] splits a frame and keeps its payload as
//! a [`RawValue`] (still encoded), then the typed layer decodes the payload
//! into its type (`ClientRequest::from_raw`, `Notification::from_raw`, …).
//! A server can thus answer `method_not_found` and `bad_request` apart, and a
//! client can ignore notifications newer than itself.
//!
//! ```
//! use sealbase_protocol::{decode, ClientRequest, Frame, PushParams, Validate, Uuid};
//!
//! // Client: build, validate and encode a request.
//! let push = PushParams { space: Uuid::nil(), cap: None, changes: vec![] };
//! assert!(push.validate().is_err()); // an empty batch breaks a rule
//! let bytes = Frame::request(7, &push.into()).unwrap().encode().unwrap();
//!
//! // Server: decode the frame, then the typed request.
//! let Frame::Request(raw) = decode(&bytes).unwrap() else { unreachable!() };
//! match ClientRequest::from_raw(&raw) {
//!     Ok(ClientRequest::Push(params)) => assert!(params.changes.is_empty()),
//!     Ok(_) => unreachable!(),
//!     Err(e) => { let _code = e.error_code(); /* answer with this code */ }
//! }
//! ```
//!
//! What it refuses to do:
//! - IO, clocks, randomness, crypto: it moves bytes it is given. Blobs, keys
//!   and payloads are opaque byte strings here; `sealbase-crypto` opens them.
//! - Lenient CBOR: indefinite lengths, tags, unassigned simple values and
//!   binary fields encoded as arrays of integers are all rejected, so each
//!   message has one encoding.
//!
//! Invariants:
//! - decoding never panics and checks [`MAX_FRAME_LEN`] before reading;
//!   allocations are bounded by the bytes received (hostile lengths fail
//!   before allocating), nesting by [`MAX_NESTING_DEPTH`];
//! - ids (spaces, records, files, invitations, mailboxes, users, peers) are
//!   16-byte CBOR byte strings, binary fields are CBOR byte strings, cursors
//!   are unsigned integers;
//! - unknown map keys are ignored and unknown error codes decode to
//!   [`ErrorCode::Other`], so a newer peer adding fields does not break an
//!   older one; unknown methods, notifications and chunk names are typed
//!   errors;
//! - `decode(encode(frame)) == frame`, pinned by golden vectors in
//!   `tests/vectors/`.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod binary;
mod cbor;
mod codes;
mod epoch;
mod files;
mod frame;
mod invitation;
mod limits;
mod membership;
mod notification;
mod presence;
mod pull;
mod push;
mod rpc;
mod session;
mod space;

/// WebSocket subprotocol of protocol v1.
pub const SUBPROTOCOL: &str = "sealbase.v1";

/// HTTP path of the WebSocket endpoint.
pub const WS_PATH: &str = "/api/v1/ws";

pub use binary::{Bytes, HASH_LEN, Hash, WRAPPED_KEY_LEN, WrappedKey};
pub use cbor::{CborError, MAX_NESTING_DEPTH};
pub use codes::{CloseCode, ErrorBody, ErrorCode};
pub use epoch::{
    Deks, DeksGetParams, DeksRewrapParams, DeksRewrapped, EpochBeginParams, EpochBegun,
    EpochCompleteParams, EpochKeys, KeyOwner, KeysGetParams, RecipientKey, SealedEpochKey,
    WrappedDek,
};
pub use files::{
    CAPABILITY_HEADER, CURSOR_HEADER, FILE_KEY_HEADER, FILES_PATH_PREFIX, FileMeta, RECORD_HEADER,
};
pub use frame::{
    DecodeError, EncodeError, Frame, RawChunk, RawNotification, RawRequest, RawResponse, RawValue,
    TYPE_CHUNK, TYPE_NOTIFICATION, TYPE_REQUEST, TYPE_RESPONSE, decode,
};
pub use invitation::{
    Invitation, InvitationCreateParams, InvitationDeleteParams, InvitationList,
    InvitationListParams,
};
pub use limits::{
    AUTH_TIMEOUT, FILE_CHUNK_LEN, Limit, MAX_BLOB_LEN, MAX_DID_LEN, MAX_EPOCH_RECIPIENTS,
    MAX_EVENT_LEN, MAX_FRAME_LEN, MAX_INVITATION_LEN, MAX_MEMBERSHIP_ENTRY_LEN, MAX_PRESENCE_LEN,
    MAX_PUSH_CHANGES, MAX_RECORD_PLAINTEXT_LEN, MAX_REWRAP_BATCH, MAX_SEALED_KEY_LEN,
    MAX_SPACES_PER_REQUEST, MAX_TOKEN_LEN, RECORD_ENVELOPE_OVERHEAD, Validate, ValidationError,
};
pub use membership::{
    MembershipAppendParams, MembershipAppended, MembershipEntry, MembershipList,
    MembershipListParams,
};
pub use notification::{
    EventNotification, FileNotification, InvitationNotification, MembershipNotification,
    PresenceLeaveNotification, PresenceNotification, RevokedNotification, RevokedReason,
    SyncNotification, SyncedRecord,
};
pub use presence::{EventSendParams, PresenceClearParams, PresenceSetParams};
pub use pull::{
    PullBegin, PullCommit, PullParams, PullResult, PullSpace, PulledFile, PulledKey,
    PulledMembership, PulledRecord, PulledTombstone,
};
pub use push::{Change, PushParams, PushResult, RecordCursor};
pub use rpc::{Call, CallResult, ClientRequest, Method, Notification, PullChunk};
pub use session::{AuthParams, Session, SessionLimits, TokenRefreshParams, TokenRefreshed};
pub use space::{
    CapRevokeParams, Empty, SpaceCreateParams, SpaceCreated, SpaceCursor, SpaceDenied, SpaceRef,
    SubscribeParams, Subscribed, UnsubscribeParams,
};
pub use uuid::Uuid;
