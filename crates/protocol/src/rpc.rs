//! The typed layer: every method, notification and stream chunk of v1, tied
//! to its name on the wire and its Rust types.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::codes::ErrorBody;
use crate::epoch::*;
use crate::frame::{
    DecodeError, EncodeError, Frame, RawChunk, RawNotification, RawRequest, RawResponse, RawValue,
    encode_into, within_limit, write_chunk_head,
};
use crate::invitation::*;
use crate::limits::{Validate, ValidationError};
use crate::membership::*;
use crate::notification::*;
use crate::presence::*;
use crate::pull::*;
use crate::push::*;
use crate::session::*;
use crate::space::*;

/// A method's params type, tied to the method and its result type.
pub trait Call: Serialize + DeserializeOwned + Validate + Into<ClientRequest> {
    /// The method.
    const METHOD: Method;
    /// The result type.
    type Output: Serialize + DeserializeOwned;
}

macro_rules! methods {
    ($( $(#[$doc:meta])* $variant:ident = $name:literal, $params:ty => $output:ty; )*) => {
        /// A method of protocol v1.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Method {
            $( $(#[$doc])* $variant, )*
        }

        impl Method {
            /// Every method.
            pub const ALL: &'static [Method] = &[$(Method::$variant),*];

            /// The method's name on the wire.
            pub const fn as_str(self) -> &'static str {
                match self { $(Method::$variant => $name,)* }
            }

            /// The method with this wire name.
            pub fn from_name(name: &str) -> Option<Method> {
                match name { $($name => Some(Method::$variant),)* _ => None }
            }
        }

        /// A request with typed params, one variant per method.
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum ClientRequest {
            $( $(#[$doc])* $variant($params), )*
        }

        /// A typed result, one variant per method.
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum CallResult {
            $( $(#[$doc])* $variant($output), )*
        }

        $(
            impl Call for $params {
                const METHOD: Method = Method::$variant;
                type Output = $output;
            }

            impl From<$params> for ClientRequest {
                fn from(params: $params) -> Self {
                    ClientRequest::$variant(params)
                }
            }
        )*

        impl ClientRequest {
            /// The request's method.
            pub fn method(&self) -> Method {
                match self { $(ClientRequest::$variant(_) => Method::$variant,)* }
            }

            /// Decodes a raw request's params. An unknown method is
            /// [`DecodeError::UnknownMethod`] (answer `method_not_found`);
            /// params of the wrong shape are [`DecodeError::Invalid`]
            /// (answer `bad_request`). See [`DecodeError::error_code`].
            pub fn from_raw(raw: &RawRequest) -> Result<Self, DecodeError> {
                let method = Method::from_name(&raw.method)
                    .ok_or_else(|| DecodeError::UnknownMethod(raw.method.clone()))?;
                Ok(match method {
                    $(Method::$variant => ClientRequest::$variant(raw.params.decode($name)?),)*
                })
            }

            /// Encodes the params.
            pub fn params(&self) -> Result<RawValue, EncodeError> {
                match self { $(ClientRequest::$variant(p) => RawValue::encode(p),)* }
            }

            /// Builds the raw request with id `id`.
            pub fn to_raw(&self, id: u32) -> Result<RawRequest, EncodeError> {
                Ok(RawRequest { id, method: self.method().as_str().to_owned(), params: self.params()? })
            }

            /// Checks every limit and rule of the method's params.
            pub fn validate(&self) -> Result<(), ValidationError> {
                match self { $(ClientRequest::$variant(p) => p.validate(),)* }
            }
        }

        impl CallResult {
            /// The method this result answers.
            pub fn method(&self) -> Method {
                match self { $(CallResult::$variant(_) => Method::$variant,)* }
            }

            /// Decodes the result of a request whose method the caller knows.
            pub fn from_raw(method: Method, raw: &RawValue) -> Result<Self, DecodeError> {
                Ok(match method {
                    $(Method::$variant => CallResult::$variant(raw.decode(concat!($name, " result"))?),)*
                })
            }

            /// Encodes the result.
            pub fn to_raw(&self) -> Result<RawValue, EncodeError> {
                match self { $(CallResult::$variant(r) => RawValue::encode(r),)* }
            }
        }
    };
}

methods! {
    /// `auth`: authenticate the connection; must be the first frame.
    Auth = "auth", AuthParams => Session;
    /// `token.refresh`: replace the session's access token before it expires.
    TokenRefresh = "token.refresh", TokenRefreshParams => TokenRefreshed;
    /// `subscribe`: receive notifications for spaces.
    Subscribe = "subscribe", SubscribeParams => Subscribed;
    /// `unsubscribe`: stop receiving notifications for spaces.
    Unsubscribe = "unsubscribe", UnsubscribeParams => Empty;
    /// `push`: write records, atomically per batch.
    Push = "push", PushParams => PushResult;
    /// `pull`: stream changes since a cursor (chunks `pull.*`).
    Pull = "pull", PullParams => PullResult;
    /// `space.create`: create a shared space.
    SpaceCreate = "space.create", SpaceCreateParams => SpaceCreated;
    /// `membership.append`: append to the membership log (compare-and-set).
    MembershipAppend = "membership.append", MembershipAppendParams => MembershipAppended;
    /// `membership.list`: read the membership log.
    MembershipList = "membership.list", MembershipListParams => MembershipList;
    /// `cap.revoke`: revoke a capability token.
    CapRevoke = "cap.revoke", CapRevokeParams => Empty;
    /// `epoch.begin`: start a key rotation.
    EpochBegin = "epoch.begin", EpochBeginParams => EpochBegun;
    /// `epoch.complete`: finish a key rotation.
    EpochComplete = "epoch.complete", EpochCompleteParams => Empty;
    /// `keys.get`: my sealed epoch keys.
    KeysGet = "keys.get", KeysGetParams => EpochKeys;
    /// `deks.get`: keys still wrapped under an older epoch.
    DeksGet = "deks.get", DeksGetParams => Deks;
    /// `deks.rewrap`: replace wrapped keys with ones under the new epoch.
    DeksRewrap = "deks.rewrap", DeksRewrapParams => DeksRewrapped;
    /// `invitation.create`: leave a sealed invitation in a mailbox.
    InvitationCreate = "invitation.create", InvitationCreateParams => Empty;
    /// `invitation.list`: invitations in my mailbox.
    InvitationList = "invitation.list", InvitationListParams => InvitationList;
    /// `invitation.delete`: remove an invitation from my mailbox.
    InvitationDelete = "invitation.delete", InvitationDeleteParams => Empty;
    /// `presence.set`: set my presence in a space.
    PresenceSet = "presence.set", PresenceSetParams => Empty;
    /// `presence.clear`: clear my presence in a space.
    PresenceClear = "presence.clear", PresenceClearParams => Empty;
    /// `event.send`: send an ephemeral event to a space.
    EventSend = "event.send", EventSendParams => Empty;
}

/// Declares an enum of named payloads (notifications, stream chunks).
macro_rules! named_payloads {
    (
        $(#[$meta:meta])*
        pub enum $name:ident ($unknown:ident) {
            $( $(#[$doc:meta])* $variant:ident = $wire:literal, $payload:ty; )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum $name {
            $( $(#[$doc])* $variant($payload), )*
        }

        impl $name {
            /// Every wire name.
            pub const NAMES: &'static [&'static str] = &[$($wire),*];

            /// The wire name.
            pub const fn name(&self) -> &'static str {
                match self { $($name::$variant(_) => $wire,)* }
            }

            /// Decodes a payload by wire name.
            pub fn decode(name: &str, payload: &RawValue) -> Result<Self, DecodeError> {
                match name {
                    $($wire => Ok($name::$variant(payload.decode($wire)?)),)*
                    other => Err(DecodeError::$unknown(other.to_owned())),
                }
            }

            /// Encodes the payload.
            pub fn payload(&self) -> Result<RawValue, EncodeError> {
                let mut bytes = Vec::with_capacity(256);
                self.payload_into(&mut bytes)?;
                Ok(RawValue::from_encoded(bytes))
            }

            /// Appends the encoded payload to `out`.
            fn payload_into(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
                match self { $($name::$variant(p) => encode_into(p, out),)* }
            }
        }

        $(
            impl From<$payload> for $name {
                fn from(payload: $payload) -> Self {
                    $name::$variant(payload)
                }
            }
        )*
    };
}

named_payloads! {
    /// A server notification with typed params. An unknown name decodes to
    /// [`DecodeError::UnknownNotification`], which clients ignore.
    pub enum Notification (UnknownNotification) {
        /// `sync`.
        Sync = "sync", SyncNotification;
        /// `membership`.
        Membership = "membership", MembershipNotification;
        /// `file`.
        File = "file", FileNotification;
        /// `revoked`.
        Revoked = "revoked", RevokedNotification;
        /// `presence`.
        Presence = "presence", PresenceNotification;
        /// `presence.leave`.
        PresenceLeave = "presence.leave", PresenceLeaveNotification;
        /// `event`.
        Event = "event", EventNotification;
        /// `invitation`.
        Invitation = "invitation", InvitationNotification;
    }
}

impl Notification {
    /// Decodes a raw notification.
    pub fn from_raw(raw: &RawNotification) -> Result<Self, DecodeError> {
        Self::decode(&raw.method, &raw.params)
    }

    /// Builds the raw notification.
    pub fn to_raw(&self) -> Result<RawNotification, EncodeError> {
        Ok(RawNotification {
            method: self.name().to_owned(),
            params: self.payload()?,
        })
    }
}

named_payloads! {
    /// A chunk of a `pull` stream with typed data.
    pub enum PullChunk (UnknownChunk) {
        /// `pull.begin`.
        Begin = "pull.begin", PullBegin;
        /// `pull.record`.
        Record = "pull.record", PulledRecord;
        /// `pull.tombstone`.
        Tombstone = "pull.tombstone", PulledTombstone;
        /// `pull.membership`.
        Membership = "pull.membership", PulledMembership;
        /// `pull.key`.
        Key = "pull.key", PulledKey;
        /// `pull.file`.
        File = "pull.file", PulledFile;
        /// `pull.commit`.
        Commit = "pull.commit", PullCommit;
    }
}

impl PullChunk {
    /// Decodes a raw chunk.
    pub fn from_raw(raw: &RawChunk) -> Result<Self, DecodeError> {
        Self::decode(&raw.name, &raw.data)
    }

    /// Builds the raw chunk for request `id`.
    pub fn to_raw(&self, id: u32) -> Result<RawChunk, EncodeError> {
        Ok(RawChunk {
            id,
            name: self.name().to_owned(),
            data: self.payload()?,
        })
    }

    /// Encodes this chunk of request `id` as a whole frame, the same bytes
    /// as `Frame::chunk(id, self)?.encode()`, with the payload serialized
    /// straight into the frame: the path of a pull stream, where a record's
    /// blob is then copied once instead of three times.
    pub fn encode_frame(&self, id: u32) -> Result<Vec<u8>, EncodeError> {
        let payload = match self {
            PullChunk::Record(r) => r.blob.len() + 96,
            _ => 160,
        };
        let mut out = Vec::with_capacity(32 + self.name().len() + payload);
        write_chunk_head(&mut out, id, self.name());
        self.payload_into(&mut out)?;
        within_limit(out)
    }
}

impl Frame {
    /// A request frame.
    pub fn request(id: u32, request: &ClientRequest) -> Result<Frame, EncodeError> {
        request.to_raw(id).map(Frame::Request)
    }

    /// A successful response frame.
    pub fn result<T: Serialize + ?Sized>(id: u32, result: &T) -> Result<Frame, EncodeError> {
        Ok(Frame::Response(RawResponse {
            id,
            outcome: Ok(RawValue::encode(result)?),
        }))
    }

    /// An error response frame.
    pub fn error(id: u32, error: ErrorBody) -> Frame {
        Frame::Response(RawResponse {
            id,
            outcome: Err(error),
        })
    }

    /// A notification frame.
    pub fn notification(notification: &Notification) -> Result<Frame, EncodeError> {
        notification.to_raw().map(Frame::Notification)
    }

    /// A stream chunk frame of request `id`.
    pub fn chunk(id: u32, chunk: &PullChunk) -> Result<Frame, EncodeError> {
        chunk.to_raw(id).map(Frame::Chunk)
    }
}
