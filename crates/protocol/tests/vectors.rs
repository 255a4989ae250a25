//! Golden encodings (`tests/vectors/frames.json`): the exact bytes of a few
//! frames, pinned so that any change to the wire format is deliberate. These
//! also run under wasm32 in Node; data comes in through `include_str!`.
//!
//! The valid frames are generated from [`expected`]: after an intended
//! format change (or a new vector in [`NAMES`]),
//! `SEALBASE_WRITE_VECTORS=1 cargo test -p sealbase-protocol --test vectors`
//! rewrites their hex; the invalid vectors are kept as they are.
// Test helpers outside #[test] fns: clippy.toml's test allowances do not reach them.
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

use sealbase_protocol::*;
use serde::{Deserialize, Serialize};

#[derive(Deserialize, Serialize)]
struct Vectors {
    frames: Vec<Valid>,
    invalid: Vec<Invalid>,
}

#[derive(Deserialize, Serialize)]
struct Valid {
    name: String,
    hex: String,
}

#[derive(Deserialize, Serialize)]
struct Invalid {
    name: String,
    hex: String,
    error: String,
}

fn vectors() -> Vectors {
    serde_json::from_str(include_str!("vectors/frames.json")).unwrap()
}

fn id(n: u8) -> Uuid {
    Uuid::from_bytes([n; 16])
}

fn dek(epoch: u32) -> WrappedKey {
    let mut k = [0xd0; 44];
    k[..4].copy_from_slice(&epoch.to_be_bytes());
    WrappedKey(k)
}

/// The valid vectors, in file order (the generator check runs natively).
#[cfg(not(target_arch = "wasm32"))]
const NAMES: &[&str] = &[
    "auth request",
    "auth response",
    "push request",
    "push applied",
    "push conflict",
    "error response",
    "sync notification",
    "pull request",
    "pull.begin chunk",
    "pull.record chunk",
    "pull.commit chunk",
    "pull response",
    "presence notification",
    "membership.append request",
    "file notification",
    "pull.file chunk",
];

fn file_meta() -> FileMeta {
    FileMeta {
        id: id(0x66),
        record: id(0x33),
        cursor: 8,
        size: 262_172,
        dek: dek(1),
    }
}

/// The frame each named vector encodes.
fn expected(name: &str) -> Frame {
    match name {
        "auth request" => Frame::request(
            1,
            &AuthParams {
                token: "eyJ.token.sig".into(),
            }
            .into(),
        )
        .unwrap(),
        "auth response" => Frame::result(
            1,
            &Session {
                user: id(0x11),
                personal_space: id(0x22),
                did: "did:key:z6Mk".into(),
                expires_at: 1_700_000_900,
                server_time: 1_700_000_000,
                limits: SessionLimits::default(),
            },
        )
        .unwrap(),
        "push request" => Frame::request(
            7,
            &PushParams {
                space: id(0x22),
                cap: None,
                changes: vec![
                    Change {
                        id: id(0x33),
                        blob: Some(Bytes(vec![1, 2, 3])),
                        dek: Some(dek(1)),
                        expected_cursor: 0,
                    },
                    Change {
                        id: id(0x44),
                        blob: None,
                        dek: None,
                        expected_cursor: 5,
                    },
                ],
            }
            .into(),
        )
        .unwrap(),
        "push applied" => Frame::result(7, &PushResult::Applied { prev: 5, cursor: 6 }).unwrap(),
        "push conflict" => Frame::result(
            7,
            &PushResult::Conflict {
                records: vec![RecordCursor {
                    id: id(0x44),
                    cursor: 6,
                }],
            },
        )
        .unwrap(),
        "error response" => Frame::error(
            9,
            ErrorBody::new(ErrorCode::Forbidden, "capability does not grant write"),
        ),
        "sync notification" => Frame::notification(
            &SyncNotification {
                space: id(0x22),
                prev: 6,
                cursor: 7,
                records: vec![SyncedRecord {
                    id: id(0x33),
                    blob: Some(Bytes(vec![9, 9])),
                    dek: Some(dek(1)),
                }],
                keys: vec![],
            }
            .into(),
        )
        .unwrap(),
        "pull request" => Frame::request(
            8,
            &PullParams {
                spaces: vec![PullSpace {
                    id: id(0x22),
                    since: 0,
                    cap: Some("cap.jws.sig".into()),
                }],
            }
            .into(),
        )
        .unwrap(),
        "pull.begin chunk" => Frame::chunk(
            8,
            &PullBegin {
                space: id(0x22),
                since: 0,
                cursor: 7,
                reset: false,
            }
            .into(),
        )
        .unwrap(),
        "pull.record chunk" => Frame::chunk(
            8,
            &PulledRecord {
                space: id(0x22),
                id: id(0x33),
                cursor: 7,
                blob: Bytes(vec![9, 9]),
                dek: dek(1),
            }
            .into(),
        )
        .unwrap(),
        "pull.commit chunk" => Frame::chunk(
            8,
            &PullCommit {
                space: id(0x22),
                cursor: 7,
                more: false,
            }
            .into(),
        )
        .unwrap(),
        "pull response" => Frame::result(8, &PullResult { denied: vec![] }).unwrap(),
        "presence notification" => Frame::notification(
            &PresenceNotification {
                space: id(0x22),
                peer: id(0x55),
                did: "did:key:z6Mk".into(),
                data: Bytes(vec![0xaa]),
            }
            .into(),
        )
        .unwrap(),
        "membership.append request" => Frame::request(
            10,
            &MembershipAppendParams {
                space: id(0x22),
                cap: None,
                prev_hash: Hash([0xab; 32]),
                ciphertext: Bytes(vec![0xee; 4]),
            }
            .into(),
        )
        .unwrap(),
        "file notification" => Frame::notification(
            &FileNotification {
                space: id(0x22),
                prev: 7,
                cursor: 8,
                file: file_meta(),
            }
            .into(),
        )
        .unwrap(),
        "pull.file chunk" => Frame::chunk(
            8,
            &PulledFile {
                space: id(0x22),
                file: file_meta(),
            }
            .into(),
        )
        .unwrap(),
        other => panic!("no expected frame for vector {other:?}"),
    }
}

/// Rewrites the valid vectors from [`expected`] when `SEALBASE_WRITE_VECTORS=1`;
/// otherwise checks the file lists exactly [`NAMES`].
#[cfg(not(target_arch = "wasm32"))]
#[test]
fn vector_file_matches_the_generator() {
    let mut vectors = vectors();
    if std::env::var_os("SEALBASE_WRITE_VECTORS").is_some_and(|v| v == "1") {
        vectors.frames = NAMES
            .iter()
            .map(|name| Valid {
                name: (*name).to_owned(),
                hex: hex::encode(expected(name).encode().unwrap()),
            })
            .collect();
        let mut json = serde_json::to_string_pretty(&vectors).unwrap();
        json.push('\n');
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/frames.json");
        std::fs::write(path, json).unwrap();
        return;
    }
    let names: Vec<&str> = vectors.frames.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(
        names, NAMES,
        "frames.json differs from the generator; rerun with SEALBASE_WRITE_VECTORS=1 if the change is intended"
    );
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn golden_frames_encode_exactly() {
    for v in vectors().frames {
        let frame = expected(&v.name);
        assert_eq!(hex::encode(frame.encode().unwrap()), v.hex, "{}", v.name);
        assert_eq!(
            decode(&hex::decode(&v.hex).unwrap()).unwrap(),
            frame,
            "{}",
            v.name
        );
    }
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn golden_frames_decode_to_typed_messages() {
    for v in vectors().frames {
        let frame = decode(&hex::decode(&v.hex).unwrap()).unwrap();
        match frame {
            Frame::Request(raw) => {
                let request = ClientRequest::from_raw(&raw).unwrap();
                request.validate().unwrap();
            }
            Frame::Notification(raw) => {
                Notification::from_raw(&raw).unwrap();
            }
            Frame::Chunk(raw) => {
                PullChunk::from_raw(&raw).unwrap();
            }
            Frame::Response(_) => {}
        }
    }
}

/// Short names for the errors the invalid vectors expect.
fn error_name(e: &DecodeError) -> String {
    match e {
        DecodeError::FrameTooLarge { .. } => "frame_too_large".into(),
        DecodeError::Cbor(c) => format!("cbor:{c:?}"),
        DecodeError::NotAMap => "not_a_map".into(),
        DecodeError::NonTextKey => "non_text_key".into(),
        DecodeError::DuplicateKey(k) => format!("duplicate_key:{k}"),
        DecodeError::MissingField(f) => format!("missing_field:{f}"),
        DecodeError::InvalidField(f) => format!("invalid_field:{f}"),
        DecodeError::UnknownFrameType(t) => format!("unknown_frame_type:{t}"),
        DecodeError::ResultXorError => "result_xor_error".into(),
        DecodeError::UnknownMethod(m) => format!("unknown_method:{m}"),
        DecodeError::UnknownNotification(m) => format!("unknown_notification:{m}"),
        DecodeError::UnknownChunk(m) => format!("unknown_chunk:{m}"),
        DecodeError::Invalid { context, .. } => format!("invalid:{context}"),
        _ => "other".into(),
    }
}

/// Decodes through the frame and then the typed layer.
fn decode_fully(bytes: &[u8]) -> Result<(), DecodeError> {
    match decode(bytes)? {
        Frame::Request(raw) => ClientRequest::from_raw(&raw).map(drop),
        Frame::Notification(raw) => Notification::from_raw(&raw).map(drop),
        Frame::Chunk(raw) => PullChunk::from_raw(&raw).map(drop),
        Frame::Response(_) => Ok(()),
    }
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn invalid_vectors_fail_with_the_named_error() {
    for v in vectors().invalid {
        let err = decode_fully(&hex::decode(&v.hex).unwrap()).unwrap_err();
        assert_eq!(error_name(&err), v.error, "{}", v.name);
    }
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn unknown_method_and_bad_params_map_to_distinct_codes() {
    let unknown = RawRequest {
        id: 1,
        method: "push.v2".into(),
        params: RawValue::empty_map(),
    };
    assert_eq!(
        ClientRequest::from_raw(&unknown).unwrap_err().error_code(),
        ErrorCode::MethodNotFound
    );
    let bad = RawRequest {
        id: 1,
        method: "push".into(),
        params: RawValue::empty_map(),
    };
    assert_eq!(
        ClientRequest::from_raw(&bad).unwrap_err().error_code(),
        ErrorCode::BadRequest
    );
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn unknown_error_code_from_a_newer_server_decodes() {
    let frame = Frame::error(
        2,
        ErrorBody::new(ErrorCode::from_wire("storage_on_fire"), ""),
    );
    let bytes = frame.encode().unwrap();
    let Frame::Response(RawResponse {
        outcome: Err(error),
        ..
    }) = decode(&bytes).unwrap()
    else {
        panic!("not an error response")
    };
    assert_eq!(error.code, ErrorCode::Other("storage_on_fire".into()));
    assert_eq!(ErrorCode::from_wire("stale_epoch"), ErrorCode::StaleEpoch);
    assert_eq!(
        ErrorCode::from_wire("quota_exceeded"),
        ErrorCode::QuotaExceeded
    );
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn every_method_and_code_has_its_wire_name() {
    let names: Vec<&str> = Method::ALL.iter().map(|m| m.as_str()).collect();
    assert_eq!(
        names,
        [
            "auth",
            "token.refresh",
            "subscribe",
            "unsubscribe",
            "push",
            "pull",
            "space.create",
            "membership.append",
            "membership.list",
            "cap.revoke",
            "epoch.begin",
            "epoch.complete",
            "keys.get",
            "deks.get",
            "deks.rewrap",
            "invitation.create",
            "invitation.list",
            "invitation.delete",
            "presence.set",
            "presence.clear",
            "event.send",
        ]
    );
    for m in Method::ALL {
        assert_eq!(Method::from_name(m.as_str()), Some(*m));
    }
    assert_eq!(
        Notification::NAMES,
        [
            "sync",
            "membership",
            "file",
            "revoked",
            "presence",
            "presence.leave",
            "event",
            "invitation"
        ]
    );
    let codes: Vec<&str> = ErrorCode::KNOWN.iter().map(|c| c.as_str()).collect();
    assert_eq!(
        codes,
        [
            "bad_request",
            "unauthorized",
            "forbidden",
            "not_found",
            "conflict",
            "rate_limited",
            "payload_too_large",
            "method_not_found",
            "stale_epoch",
            "quota_exceeded",
            "internal",
        ]
    );
    let close: Vec<u16> = CloseCode::ALL.iter().map(|c| c.code()).collect();
    assert_eq!(close, [4000, 4001, 4002, 4003, 4005, 4006, 4007]);
    assert_eq!(CloseCode::from_code(4002), Some(CloseCode::AccessRevoked));
    assert_eq!(CloseCode::from_code(4004), None);
    assert_eq!(SUBPROTOCOL, "sealbase.v1");
    assert_eq!(WS_PATH, "/api/v1/ws");
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn oversized_frames_are_refused_both_ways() {
    let big = vec![0u8; MAX_FRAME_LEN + 1];
    assert_eq!(
        decode(&big),
        Err(DecodeError::FrameTooLarge {
            len: MAX_FRAME_LEN + 1
        })
    );
    let push = PushParams {
        space: id(1),
        cap: None,
        changes: (0..2u8)
            .map(|n| Change {
                id: id(n),
                blob: Some(Bytes(vec![0; MAX_BLOB_LEN])),
                dek: Some(dek(1)),
                expected_cursor: 0,
            })
            .collect(),
    };
    push.validate().unwrap();
    assert!(matches!(
        Frame::request(1, &push.into()).unwrap().encode(),
        Err(EncodeError::FrameTooLarge { .. })
    ));
    // One maximum blob with a maximum capability fits.
    let one = PushParams {
        space: id(1),
        cap: Some("c".repeat(MAX_TOKEN_LEN)),
        changes: vec![Change {
            id: id(2),
            blob: Some(Bytes(vec![0; MAX_BLOB_LEN])),
            dek: Some(dek(1)),
            expected_cursor: 0,
        }],
    };
    one.validate().unwrap();
    let bytes = Frame::request(1, &one.into()).unwrap().encode().unwrap();
    assert!(bytes.len() <= MAX_FRAME_LEN);
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn validation_names_the_limit() {
    let change = |blob: Option<Vec<u8>>, dek_: Option<WrappedKey>| Change {
        id: id(3),
        blob: blob.map(Bytes),
        dek: dek_,
        expected_cursor: 0,
    };
    let push = |changes| PushParams {
        space: id(1),
        cap: None,
        changes,
    };
    assert_eq!(
        push(vec![change(Some(vec![0; MAX_BLOB_LEN + 1]), Some(dek(1)))]).validate(),
        Err(ValidationError::TooLarge {
            limit: Limit::Blob,
            actual: MAX_BLOB_LEN + 1
        })
    );
    assert_eq!(
        push(vec![change(Some(vec![1]), None)]).validate(),
        Err(ValidationError::DekBlobMismatch { id: id(3) })
    );
    assert_eq!(
        push(vec![]).validate(),
        Err(ValidationError::Empty { field: "changes" })
    );
    assert_eq!(
        push(vec![change(None, None), change(None, None)]).validate(),
        Err(ValidationError::Duplicate {
            field: "changes",
            id: id(3)
        })
    );
    let too_many: Vec<Change> = (0..=MAX_PUSH_CHANGES as u128)
        .map(|n| Change {
            id: Uuid::from_u128(n),
            blob: None,
            dek: None,
            expected_cursor: 1,
        })
        .collect();
    let err = push(too_many).validate().unwrap_err();
    assert_eq!(
        err,
        ValidationError::TooLarge {
            limit: Limit::PushChanges,
            actual: MAX_PUSH_CHANGES + 1
        }
    );
    assert_eq!(err.error_code(), ErrorCode::BadRequest);
    let presence = PresenceSetParams {
        space: id(1),
        cap: None,
        data: Bytes(vec![0; MAX_PRESENCE_LEN + 1]),
    };
    let err = ClientRequest::from(presence).validate().unwrap_err();
    assert_eq!(err.error_code(), ErrorCode::PayloadTooLarge);
    let event = EventSendParams {
        space: id(1),
        cap: None,
        data: Bytes(vec![0; MAX_EVENT_LEN]),
    };
    assert_eq!(event.validate(), Ok(()));
    assert_eq!(dek(7).epoch(), 7);
}
