//! Frames: the outer CBOR map of every WebSocket message, and its errors.
//!
//! [`decode`] checks the size limit first, then walks the whole frame with
//! the strict CBOR walker (no allocation proportional to claimed lengths, no
//! recursion past [`crate::MAX_NESTING_DEPTH`]), and only then splits the
//! map. Payloads (`params`, `result`, `data`) stay encoded as [`RawValue`]s
//! until the typed layer decodes them straight into their Rust types, so a
//! hostile payload never becomes a generic value tree.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::cbor::{self, CborError, Reader};
use crate::codes::{ErrorBody, ErrorCode};
use crate::limits::MAX_FRAME_LEN;

/// Frame `type` of a request.
pub const TYPE_REQUEST: u64 = 0;
/// Frame `type` of a response.
pub const TYPE_RESPONSE: u64 = 1;
/// Frame `type` of a notification.
pub const TYPE_NOTIFICATION: u64 = 2;
/// Frame `type` of a stream chunk.
pub const TYPE_CHUNK: u64 = 3;

/// One encoded CBOR item that passed the strict walker: definite lengths, no
/// tags, valid UTF-8, nesting within bounds.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct RawValue(Vec<u8>);

impl RawValue {
    /// Wraps encoded CBOR after checking it is one acceptable item.
    pub fn from_cbor(bytes: Vec<u8>) -> Result<Self, CborError> {
        // A payload sits one level inside the frame map.
        cbor::check_item(&bytes, 1)?;
        Ok(Self(bytes))
    }

    /// Encodes a value (params, result or chunk data).
    pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Self, EncodeError> {
        // Most payloads fit; larger ones (records) grow from here in a few
        // doublings rather than a dozen.
        let mut bytes = Vec::with_capacity(256);
        encode_into(value, &mut bytes)?;
        Ok(Self(bytes))
    }

    /// Wraps what [`encode_into`] wrote into an empty vector (so checked).
    pub(crate) fn from_encoded(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    /// The empty map `{}`: params of methods without parameters.
    pub fn empty_map() -> Self {
        Self(vec![0xa0])
    }

    /// Decodes into `T`. `context` names what is decoded, for the error.
    pub fn decode<T: DeserializeOwned>(&self, context: &str) -> Result<T, DecodeError> {
        // Every typed decode reads through `&mut &[u8]`, one reader type, so
        // the browser module holds one copy of the deserializer per type.
        let mut bytes = self.0.as_slice();
        ciborium::from_reader(&mut bytes).map_err(|e| DecodeError::Invalid {
            context: context.to_owned(),
            message: e.to_string(),
        })
    }

    /// Decodes into a generic CBOR value, for tools and tests. The typed
    /// layer never goes through this: a value tree of many tiny items can
    /// take tens of times the encoded size in memory.
    pub fn to_value(&self) -> Result<ciborium::Value, DecodeError> {
        self.decode("value")
    }

    /// The encoded bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl core::fmt::Debug for RawValue {
    /// Hex of the first 64 bytes: never decodes, so logging a hostile frame
    /// costs no more than its size.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "RawValue[{}](", self.0.len())?;
        for b in self.0.iter().take(64) {
            write!(f, "{b:02x}")?;
        }
        if self.0.len() > 64 {
            f.write_str("…")?;
        }
        f.write_str(")")
    }
}

/// Appends `value` to `out` as one CBOR item a payload may be (checked as
/// [`RawValue::from_cbor`] checks).
pub(crate) fn encode_into<T: Serialize + ?Sized>(
    value: &T,
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    let start = out.len();
    ciborium::into_writer(value, &mut *out).map_err(|e| EncodeError::Serialize(e.to_string()))?;
    // Our types never produce tags or indefinite lengths, but a caller's
    // type could; refuse it here rather than send a frame peers reject.
    cbor::check_item(out.get(start..).unwrap_or_default(), 1).map_err(EncodeError::Cbor)
}

/// Starts chunk frame `{type: 3, id, name, data: ...}` in `out`, up to the
/// `data` key: the payload follows.
pub(crate) fn write_chunk_head(out: &mut Vec<u8>, id: u32, name: &str) {
    cbor::write_header(out, cbor::MAJOR_MAP, 4);
    cbor::write_text(out, "type");
    cbor::write_header(out, cbor::MAJOR_UINT, TYPE_CHUNK);
    cbor::write_text(out, "id");
    cbor::write_header(out, cbor::MAJOR_UINT, u64::from(id));
    cbor::write_text(out, "name");
    cbor::write_text(out, name);
    cbor::write_text(out, "data");
}

/// An encoded frame within [`MAX_FRAME_LEN`].
pub(crate) fn within_limit(frame: Vec<u8>) -> Result<Vec<u8>, EncodeError> {
    if frame.len() > MAX_FRAME_LEN {
        return Err(EncodeError::FrameTooLarge { len: frame.len() });
    }
    Ok(frame)
}

/// `{type: 0, id, method, params}`: a call expecting one response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawRequest {
    /// Chosen by the sender, unique among its requests in flight on this
    /// connection; echoed in the response and stream chunks.
    pub id: u32,
    /// Method name, e.g. `"push"`.
    pub method: String,
    /// Method parameters (a map).
    pub params: RawValue,
}

/// `{type: 1, id, result}` or `{type: 1, id, error: {code, message}}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawResponse {
    /// The request's id.
    pub id: u32,
    /// The result, or the error.
    pub outcome: Result<RawValue, ErrorBody>,
}

/// `{type: 2, method, params}`: a one-way message, either direction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawNotification {
    /// Notification name, e.g. `"sync"`.
    pub method: String,
    /// Its parameters (a map).
    pub params: RawValue,
}

/// `{type: 3, id, name, data}`: one item of a stream, sent before the final
/// response of request `id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawChunk {
    /// The request's id.
    pub id: u32,
    /// Chunk name, e.g. `"pull.record"`.
    pub name: String,
    /// Chunk payload (a map).
    pub data: RawValue,
}

/// One WebSocket binary message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// Type 0.
    Request(RawRequest),
    /// Type 1.
    Response(RawResponse),
    /// Type 2.
    Notification(RawNotification),
    /// Type 3.
    Chunk(RawChunk),
}

/// Why bytes are not a frame, or a payload is not the type it should be.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The frame exceeds [`MAX_FRAME_LEN`]; nothing was parsed.
    #[error("frame of {len} bytes exceeds the limit of {MAX_FRAME_LEN}")]
    FrameTooLarge {
        /// Its length.
        len: usize,
    },
    /// Not well-formed CBOR of the kind v1 accepts.
    #[error("malformed CBOR: {0}")]
    Cbor(#[from] CborError),
    /// The frame is not a CBOR map.
    #[error("frame is not a CBOR map")]
    NotAMap,
    /// A key of the frame map is not a text string.
    #[error("frame map has a non-text key")]
    NonTextKey,
    /// A key appears twice in the frame map.
    #[error("frame map repeats key {0:?}")]
    DuplicateKey(String),
    /// A field the frame type requires is missing.
    #[error("frame lacks field {0:?}")]
    MissingField(&'static str),
    /// A frame field has the wrong CBOR type or is out of range.
    #[error("frame field {0:?} has the wrong type or is out of range")]
    InvalidField(&'static str),
    /// `type` is not 0–3.
    #[error("unknown frame type {0}")]
    UnknownFrameType(u64),
    /// A response has both `result` and `error`, or neither.
    #[error("a response needs exactly one of result and error")]
    ResultXorError,
    /// A request names a method v1 does not have.
    #[error("unknown method {0:?}")]
    UnknownMethod(String),
    /// A notification v1 does not have (receivers ignore these).
    #[error("unknown notification {0:?}")]
    UnknownNotification(String),
    /// A stream chunk name v1 does not have.
    #[error("unknown stream chunk {0:?}")]
    UnknownChunk(String),
    /// A payload does not match its type (missing field, wrong type…).
    #[error("invalid {context}: {message}")]
    Invalid {
        /// What was decoded (method, notification or chunk name).
        context: String,
        /// The decoder's explanation.
        message: String,
    },
}

impl DecodeError {
    /// The error code a server answers a bad request with.
    pub fn error_code(&self) -> ErrorCode {
        match self {
            DecodeError::FrameTooLarge { .. } => ErrorCode::PayloadTooLarge,
            DecodeError::UnknownMethod(_) => ErrorCode::MethodNotFound,
            _ => ErrorCode::BadRequest,
        }
    }
}

/// Why a frame could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// The encoded frame would exceed [`MAX_FRAME_LEN`].
    #[error("encoded frame of {len} bytes exceeds the limit of {MAX_FRAME_LEN}")]
    FrameTooLarge {
        /// Its length.
        len: usize,
    },
    /// The value could not be serialized.
    #[error("cannot serialize: {0}")]
    Serialize(String),
    /// The value serialized to CBOR that v1 does not accept.
    #[error("value encodes to CBOR v1 refuses: {0}")]
    Cbor(CborError),
}

impl Frame {
    /// Encodes the frame as one CBOR map, keys in the order of the spec.
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        // The envelope's keys and small values, then the payload copied once.
        let payload = match self {
            Frame::Request(r) => r.params.as_bytes().len() + r.method.len(),
            Frame::Response(r) => r.outcome.as_ref().map_or(64, |v| v.as_bytes().len()),
            Frame::Notification(n) => n.params.as_bytes().len() + n.method.len(),
            Frame::Chunk(c) => c.data.as_bytes().len() + c.name.len(),
        };
        let mut out = Vec::with_capacity(48 + payload);
        let map = |out: &mut Vec<u8>, n: u64| cbor::write_header(out, cbor::MAJOR_MAP, n);
        let uint = |out: &mut Vec<u8>, key: &str, v: u64| {
            cbor::write_text(out, key);
            cbor::write_header(out, cbor::MAJOR_UINT, v);
        };
        let text = |out: &mut Vec<u8>, key: &str, v: &str| {
            cbor::write_text(out, key);
            cbor::write_text(out, v);
        };
        let raw = |out: &mut Vec<u8>, key: &str, v: &RawValue| {
            cbor::write_text(out, key);
            out.extend_from_slice(v.as_bytes());
        };
        match self {
            Frame::Request(r) => {
                map(&mut out, 4);
                uint(&mut out, "type", TYPE_REQUEST);
                uint(&mut out, "id", u64::from(r.id));
                text(&mut out, "method", &r.method);
                raw(&mut out, "params", &r.params);
            }
            Frame::Response(r) => {
                map(&mut out, 3);
                uint(&mut out, "type", TYPE_RESPONSE);
                uint(&mut out, "id", u64::from(r.id));
                match &r.outcome {
                    Ok(result) => raw(&mut out, "result", result),
                    Err(error) => {
                        cbor::write_text(&mut out, "error");
                        map(&mut out, 2);
                        text(&mut out, "code", error.code.as_str());
                        text(&mut out, "message", &error.message);
                    }
                }
            }
            Frame::Notification(n) => {
                map(&mut out, 3);
                uint(&mut out, "type", TYPE_NOTIFICATION);
                text(&mut out, "method", &n.method);
                raw(&mut out, "params", &n.params);
            }
            Frame::Chunk(c) => {
                write_chunk_head(&mut out, c.id, &c.name);
                out.extend_from_slice(c.data.as_bytes());
            }
        }
        within_limit(out)
    }

    /// The frame's `type` number.
    pub fn frame_type(&self) -> u64 {
        match self {
            Frame::Request(_) => TYPE_REQUEST,
            Frame::Response(_) => TYPE_RESPONSE,
            Frame::Notification(_) => TYPE_NOTIFICATION,
            Frame::Chunk(_) => TYPE_CHUNK,
        }
    }
}

/// The fields of a frame map, each still encoded.
#[derive(Default)]
struct Fields<'a> {
    frame_type: Option<&'a [u8]>,
    id: Option<&'a [u8]>,
    method: Option<&'a [u8]>,
    params: Option<&'a [u8]>,
    result: Option<&'a [u8]>,
    error: Option<&'a [u8]>,
    name: Option<&'a [u8]>,
    data: Option<&'a [u8]>,
}

/// Decodes one frame. Checks [`MAX_FRAME_LEN`] before reading anything and
/// never panics. Unknown keys are ignored (a later minor version may add
/// some); repeated keys are an error.
pub fn decode(bytes: &[u8]) -> Result<Frame, DecodeError> {
    if bytes.len() > MAX_FRAME_LEN {
        return Err(DecodeError::FrameTooLarge { len: bytes.len() });
    }
    let mut reader = Reader::new(bytes);
    let (major, entries) = reader.header()?;
    if major != cbor::MAJOR_MAP {
        // Still report malformed CBOR as such.
        cbor::check_item(bytes, 0)?;
        return Err(DecodeError::NotAMap);
    }
    let mut fields = Fields::default();
    let mut remaining = entries;
    while remaining > 0 {
        remaining -= 1;
        let (key_major, key_len) = reader.header()?;
        if key_major != cbor::MAJOR_TEXT {
            return Err(DecodeError::NonTextKey);
        }
        let key = reader.text(key_len)?;
        let value = reader.item(1)?;
        let slot = match key {
            "type" => &mut fields.frame_type,
            "id" => &mut fields.id,
            "method" => &mut fields.method,
            "params" => &mut fields.params,
            "result" => &mut fields.result,
            "error" => &mut fields.error,
            "name" => &mut fields.name,
            "data" => &mut fields.data,
            _ => continue,
        };
        if slot.replace(value).is_some() {
            return Err(DecodeError::DuplicateKey(key.to_owned()));
        }
    }
    reader.finish()?;

    let frame_type = fields.frame_type.ok_or(DecodeError::MissingField("type"))?;
    let frame_type = cbor::read_uint(frame_type).ok_or(DecodeError::InvalidField("type"))?;
    match frame_type {
        TYPE_REQUEST => Ok(Frame::Request(RawRequest {
            id: id(fields.id)?,
            method: text(fields.method, "method")?,
            params: raw(fields.params, "params")?,
        })),
        TYPE_RESPONSE => {
            let outcome = match (fields.result, fields.error) {
                (Some(result), None) => Ok(RawValue(result.to_vec())),
                (None, Some(mut error)) => Err(ciborium::from_reader::<ErrorBody, _>(&mut error)
                    .map_err(|_| DecodeError::InvalidField("error"))?),
                _ => return Err(DecodeError::ResultXorError),
            };
            Ok(Frame::Response(RawResponse {
                id: id(fields.id)?,
                outcome,
            }))
        }
        TYPE_NOTIFICATION => Ok(Frame::Notification(RawNotification {
            method: text(fields.method, "method")?,
            params: raw(fields.params, "params")?,
        })),
        TYPE_CHUNK => Ok(Frame::Chunk(RawChunk {
            id: id(fields.id)?,
            name: text(fields.name, "name")?,
            data: raw(fields.data, "data")?,
        })),
        other => Err(DecodeError::UnknownFrameType(other)),
    }
}

fn id(field: Option<&[u8]>) -> Result<u32, DecodeError> {
    let value = field.ok_or(DecodeError::MissingField("id"))?;
    cbor::read_uint(value)
        .and_then(|v| u32::try_from(v).ok())
        .ok_or(DecodeError::InvalidField("id"))
}

fn text(field: Option<&[u8]>, name: &'static str) -> Result<String, DecodeError> {
    let value = field.ok_or(DecodeError::MissingField(name))?;
    cbor::read_text(value)
        .map(str::to_owned)
        .ok_or(DecodeError::InvalidField(name))
}

fn raw(field: Option<&[u8]>, name: &'static str) -> Result<RawValue, DecodeError> {
    // Already walked as part of the frame.
    field
        .map(|value| RawValue(value.to_vec()))
        .ok_or(DecodeError::MissingField(name))
}
