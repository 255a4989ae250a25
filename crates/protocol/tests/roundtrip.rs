#![cfg(not(target_arch = "wasm32"))]
//! Property tests: every frame and message type survives encode → decode,
//! binary fields encode as byte strings, and decoding never panics.
// Test helpers outside #[test] fns: clippy.toml's test allowances do not reach them.
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

use proptest::collection::vec;
use proptest::prelude::*;
use sealbase_protocol::*;

fn uuid() -> impl Strategy<Value = Uuid> {
    any::<u128>().prop_map(Uuid::from_u128)
}
fn bytes(max: usize) -> impl Strategy<Value = Bytes> {
    vec(any::<u8>(), 0..=max).prop_map(Bytes)
}
fn hash() -> impl Strategy<Value = Hash> {
    any::<[u8; 32]>().prop_map(Hash)
}
fn wrapped() -> impl Strategy<Value = WrappedKey> {
    (any::<[u8; 32]>(), any::<[u8; 12]>()).prop_map(|(a, b)| {
        let mut k = [0u8; 44];
        k[..32].copy_from_slice(&a);
        k[32..].copy_from_slice(&b);
        WrappedKey(k)
    })
}
fn text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9:._-]{0,24}|\\PC{0,8}"
}
fn cap() -> impl Strategy<Value = Option<String>> {
    proptest::option::of(text())
}
fn error_code() -> impl Strategy<Value = ErrorCode> {
    prop_oneof![
        proptest::sample::select(ErrorCode::KNOWN.to_vec()),
        "[a-z_]{1,12}".prop_map(|s| ErrorCode::from_wire(&s)),
    ]
}
fn error_body() -> impl Strategy<Value = ErrorBody> {
    (error_code(), text()).prop_map(|(code, message)| ErrorBody { code, message })
}
fn space_denied() -> impl Strategy<Value = SpaceDenied> {
    (uuid(), error_body()).prop_map(|(id, error)| SpaceDenied { id, error })
}
fn membership_entry() -> impl Strategy<Value = MembershipEntry> {
    (
        any::<u64>(),
        proptest::option::of(hash()),
        hash(),
        bytes(64),
    )
        .prop_map(|(cursor, prev_hash, hash, ciphertext)| MembershipEntry {
            cursor,
            prev_hash,
            hash,
            ciphertext,
        })
}
fn sealed_epoch_key() -> impl Strategy<Value = SealedEpochKey> {
    (any::<u32>(), any::<u64>(), bytes(64)).prop_map(|(epoch, cursor, sealed)| SealedEpochKey {
        epoch,
        cursor,
        sealed,
    })
}
fn file_meta() -> impl Strategy<Value = FileMeta> {
    (uuid(), uuid(), any::<u64>(), any::<u64>(), wrapped()).prop_map(
        |(id, record, cursor, size, dek)| FileMeta {
            id,
            record,
            cursor,
            size,
            dek,
        },
    )
}
fn wrapped_dek() -> impl Strategy<Value = WrappedDek> {
    (uuid(), any::<bool>(), any::<u64>(), wrapped()).prop_map(|(id, file, cursor, dek)| {
        WrappedDek {
            id,
            owner: if file {
                KeyOwner::File
            } else {
                KeyOwner::Record
            },
            cursor,
            dek,
        }
    })
}
fn invitation() -> impl Strategy<Value = Invitation> {
    (uuid(), uuid(), bytes(64), any::<u64>()).prop_map(|(id, mailbox, payload, expires_at)| {
        Invitation {
            id,
            mailbox,
            payload,
            expires_at,
        }
    })
}
fn record_or_delete() -> impl Strategy<Value = (Option<Bytes>, Option<WrappedKey>)> {
    proptest::option::of((bytes(64), wrapped())).prop_map(|o| match o {
        Some((b, k)) => (Some(b), Some(k)),
        None => (None, None),
    })
}

fn request() -> impl Strategy<Value = ClientRequest> {
    prop_oneof![
        text().prop_map(|token| AuthParams { token }.into()),
        text().prop_map(|token| TokenRefreshParams { token }.into()),
        vec(
            (uuid(), cap()).prop_map(|(id, cap)| SpaceRef { id, cap }),
            0..4
        )
        .prop_map(|spaces| SubscribeParams { spaces }.into()),
        vec(uuid(), 0..4).prop_map(|spaces| UnsubscribeParams { spaces }.into()),
        (
            uuid(),
            cap(),
            vec(
                (uuid(), record_or_delete(), any::<u64>()).prop_map(
                    |(id, (blob, dek), expected_cursor)| {
                        Change {
                            id,
                            blob,
                            dek,
                            expected_cursor,
                        }
                    }
                ),
                0..4
            )
        )
            .prop_map(|(space, cap, changes)| PushParams {
                space,
                cap,
                changes
            }
            .into()),
        vec(
            (uuid(), any::<u64>(), cap()).prop_map(|(id, since, cap)| PullSpace { id, since, cap }),
            0..4
        )
        .prop_map(|spaces| PullParams { spaces }.into()),
        (uuid(), bytes(64), bytes(64)).prop_map(|(id, entry, key)| SpaceCreateParams {
            id,
            entry,
            key
        }
        .into()),
        (uuid(), cap(), hash(), bytes(64)).prop_map(|(space, cap, prev_hash, ciphertext)| {
            MembershipAppendParams {
                space,
                cap,
                prev_hash,
                ciphertext,
            }
            .into()
        }),
        (uuid(), cap(), any::<u64>()).prop_map(|(space, cap, since)| MembershipListParams {
            space,
            cap,
            since
        }
        .into()),
        (uuid(), cap(), hash()).prop_map(|(space, cap, token_hash)| CapRevokeParams {
            space,
            cap,
            token_hash
        }
        .into()),
        (
            uuid(),
            cap(),
            any::<u32>(),
            vec(
                (text(), bytes(32)).prop_map(|(did, sealed)| RecipientKey { did, sealed }),
                0..3
            )
        )
            .prop_map(|(space, cap, epoch, keys)| EpochBeginParams {
                space,
                cap,
                epoch,
                keys
            }
            .into()),
        (uuid(), cap(), any::<u32>()).prop_map(|(space, cap, epoch)| EpochCompleteParams {
            space,
            cap,
            epoch
        }
        .into()),
        (uuid(), cap()).prop_map(|(space, cap)| KeysGetParams { space, cap }.into()),
        (uuid(), cap(), any::<u32>()).prop_map(|(space, cap, below_epoch)| DeksGetParams {
            space,
            cap,
            below_epoch
        }
        .into()),
        (uuid(), cap(), vec(wrapped_dek(), 0..3)).prop_map(|(space, cap, deks)| DeksRewrapParams {
            space,
            cap,
            deks
        }
        .into()),
        (uuid(), uuid(), bytes(64), any::<u64>()).prop_map(|(id, mailbox, payload, expires_at)| {
            InvitationCreateParams {
                id,
                mailbox,
                payload,
                expires_at,
            }
            .into()
        }),
        Just(InvitationListParams {}.into()),
        uuid().prop_map(|id| InvitationDeleteParams { id }.into()),
        (uuid(), cap(), bytes(64)).prop_map(|(space, cap, data)| PresenceSetParams {
            space,
            cap,
            data
        }
        .into()),
        uuid().prop_map(|space| PresenceClearParams { space }.into()),
        (uuid(), cap(), bytes(64)).prop_map(|(space, cap, data)| EventSendParams {
            space,
            cap,
            data
        }
        .into()),
    ]
}

fn result() -> impl Strategy<Value = CallResult> {
    let limits = (any::<[u32; 6]>()).prop_map(|l| SessionLimits {
        max_frame: l[0],
        max_blob: l[1],
        max_push_changes: l[2],
        max_spaces: l[3],
        max_presence: l[4],
        max_event: l[5],
    });
    let space_cursor = (uuid(), any::<u64>()).prop_map(|(id, cursor)| SpaceCursor { id, cursor });
    prop_oneof![
        (uuid(), uuid(), text(), any::<u64>(), any::<u64>(), limits).prop_map(
            |(user, personal_space, did, expires_at, server_time, limits)| {
                CallResult::Auth(Session {
                    user,
                    personal_space,
                    did,
                    expires_at,
                    server_time,
                    limits,
                })
            }
        ),
        any::<u64>().prop_map(|expires_at| CallResult::TokenRefresh(TokenRefreshed { expires_at })),
        (vec(space_cursor, 0..3), vec(space_denied(), 0..3))
            .prop_map(|(spaces, denied)| CallResult::Subscribe(Subscribed { spaces, denied })),
        Just(CallResult::Unsubscribe(Empty {})),
        (any::<u64>(), any::<u64>())
            .prop_map(|(prev, cursor)| CallResult::Push(PushResult::Applied { prev, cursor })),
        vec(
            (uuid(), any::<u64>()).prop_map(|(id, cursor)| RecordCursor { id, cursor }),
            0..4
        )
        .prop_map(|records| CallResult::Push(PushResult::Conflict { records })),
        vec(space_denied(), 0..3).prop_map(|denied| CallResult::Pull(PullResult { denied })),
        (any::<u64>(), hash())
            .prop_map(|(cursor, hash)| CallResult::SpaceCreate(SpaceCreated { cursor, hash })),
        (any::<u64>(), any::<u64>(), hash()).prop_map(|(prev, cursor, hash)| {
            CallResult::MembershipAppend(MembershipAppended { prev, cursor, hash })
        }),
        (vec(membership_entry(), 0..3), any::<bool>()).prop_map(|(entries, more)| {
            CallResult::MembershipList(MembershipList { entries, more })
        }),
        Just(CallResult::CapRevoke(Empty {})),
        (any::<u64>(), any::<u64>())
            .prop_map(|(prev, cursor)| CallResult::EpochBegin(EpochBegun { prev, cursor })),
        Just(CallResult::EpochComplete(Empty {})),
        (any::<u32>(), vec(sealed_epoch_key(), 0..3))
            .prop_map(|(current, keys)| CallResult::KeysGet(EpochKeys { current, keys })),
        (vec(wrapped_dek(), 0..3), any::<bool>())
            .prop_map(|(deks, more)| CallResult::DeksGet(Deks { deks, more })),
        (any::<u32>(), vec(uuid(), 0..3)).prop_map(|(rewrapped, skipped)| CallResult::DeksRewrap(
            DeksRewrapped { rewrapped, skipped }
        )),
        Just(CallResult::InvitationCreate(Empty {})),
        vec(invitation(), 0..3)
            .prop_map(|invitations| CallResult::InvitationList(InvitationList { invitations })),
        Just(CallResult::InvitationDelete(Empty {})),
        Just(CallResult::PresenceSet(Empty {})),
        Just(CallResult::PresenceClear(Empty {})),
        Just(CallResult::EventSend(Empty {})),
    ]
}

fn notification() -> impl Strategy<Value = Notification> {
    let synced =
        (uuid(), record_or_delete()).prop_map(|(id, (blob, dek))| SyncedRecord { id, blob, dek });
    let reason = prop_oneof![
        proptest::sample::select(RevokedReason::KNOWN.to_vec()),
        "[a-z_]{1,12}".prop_map(|s| RevokedReason::from_wire(&s)),
    ];
    prop_oneof![
        (
            uuid(),
            any::<u64>(),
            any::<u64>(),
            vec(synced, 0..3),
            vec(sealed_epoch_key(), 0..2)
        )
            .prop_map(|(space, prev, cursor, records, keys)| SyncNotification {
                space,
                prev,
                cursor,
                records,
                keys
            }
            .into()),
        (uuid(), any::<u64>(), any::<u64>(), membership_entry()).prop_map(
            |(space, prev, cursor, entry)| {
                MembershipNotification {
                    space,
                    prev,
                    cursor,
                    entry,
                }
                .into()
            }
        ),
        (uuid(), any::<u64>(), any::<u64>(), file_meta()).prop_map(
            |(space, prev, cursor, file)| FileNotification {
                space,
                prev,
                cursor,
                file
            }
            .into()
        ),
        (vec(uuid(), 0..3), reason).prop_map(|(spaces, reason)| RevokedNotification {
            spaces,
            reason
        }
        .into()),
        (uuid(), uuid(), text(), bytes(64)).prop_map(|(space, peer, did, data)| {
            PresenceNotification {
                space,
                peer,
                did,
                data,
            }
            .into()
        }),
        (uuid(), uuid()).prop_map(|(space, peer)| PresenceLeaveNotification { space, peer }.into()),
        (uuid(), uuid(), text(), bytes(64)).prop_map(|(space, peer, did, data)| {
            EventNotification {
                space,
                peer,
                did,
                data,
            }
            .into()
        }),
        invitation().prop_map(|invitation| InvitationNotification { invitation }.into()),
    ]
}

fn chunk() -> impl Strategy<Value = PullChunk> {
    prop_oneof![
        (uuid(), any::<u64>(), any::<u64>(), any::<bool>()).prop_map(
            |(space, since, cursor, reset)| PullBegin {
                space,
                since,
                cursor,
                reset
            }
            .into()
        ),
        (uuid(), uuid(), any::<u64>(), bytes(128), wrapped()).prop_map(
            |(space, id, cursor, blob, dek)| PulledRecord {
                space,
                id,
                cursor,
                blob,
                dek
            }
            .into()
        ),
        (uuid(), uuid(), any::<u64>()).prop_map(|(space, id, cursor)| PulledTombstone {
            space,
            id,
            cursor
        }
        .into()),
        (uuid(), membership_entry())
            .prop_map(|(space, entry)| PulledMembership { space, entry }.into()),
        (uuid(), sealed_epoch_key()).prop_map(|(space, key)| PulledKey { space, key }.into()),
        (uuid(), file_meta()).prop_map(|(space, file)| PulledFile { space, file }.into()),
        (uuid(), any::<u64>(), any::<bool>()).prop_map(|(space, cursor, more)| PullCommit {
            space,
            cursor,
            more
        }
        .into()),
    ]
}

fn frame() -> impl Strategy<Value = Frame> {
    prop_oneof![
        (any::<u32>(), request()).prop_map(|(id, r)| Frame::request(id, &r).unwrap()),
        (any::<u32>(), result()).prop_map(|(id, r)| Frame::Response(RawResponse {
            id,
            outcome: Ok(r.to_raw().unwrap())
        })),
        (any::<u32>(), error_body()).prop_map(|(id, e)| Frame::error(id, e)),
        notification().prop_map(|n| Frame::notification(&n).unwrap()),
        (any::<u32>(), chunk()).prop_map(|(id, c)| Frame::chunk(id, &c).unwrap()),
    ]
}

/// Fails if the value tree holds an array made only of integers (protocol v1
/// has no integer lists, so such an array is a binary field gone wrong), a
/// tag, or a float.
fn assert_no_integer_arrays(value: &ciborium::Value) {
    use ciborium::Value;
    match value {
        Value::Array(items) => {
            assert!(
                items.is_empty() || !items.iter().all(|v| matches!(v, Value::Integer(_))),
                "array of integers: {value:?}"
            );
            items.iter().for_each(assert_no_integer_arrays);
        }
        Value::Map(entries) => {
            for (k, v) in entries {
                assert!(matches!(k, Value::Text(_)), "non-text key {k:?}");
                assert_no_integer_arrays(v);
            }
        }
        Value::Tag(..) | Value::Float(_) => panic!("unexpected {value:?}"),
        _ => {}
    }
}

/// Every field named like an id or binary holds a byte string of the right length.
fn assert_binary_fields(value: &ciborium::Value) {
    use ciborium::Value;
    match value {
        Value::Array(items) => items.iter().for_each(assert_binary_fields),
        Value::Map(entries) => {
            for (k, v) in entries {
                let key = k.as_text().unwrap();
                let expected_len = match key {
                    "id" | "space" | "user" | "personal_space" | "mailbox" | "peer" => {
                        Some(Some(16))
                    }
                    "dek" => Some(Some(44)),
                    "hash" | "prev_hash" | "token_hash" => Some(Some(32)),
                    "blob" | "entry" | "ciphertext" | "sealed" | "payload" | "data" | "key" => {
                        Some(None)
                    }
                    _ => None,
                };
                match (expected_len, v) {
                    (None, _) | (Some(_), Value::Null) => {}
                    // `key` of pull.key and `entry` of pull.membership are maps.
                    (Some(None), Value::Map(_)) if matches!(key, "key" | "data" | "entry") => {}
                    (Some(None), Value::Bytes(_)) => {}
                    (Some(Some(n)), Value::Bytes(b)) => assert_eq!(b.len(), n, "{key}"),
                    (Some(_), other) => panic!("{key} is not a byte string: {other:?}"),
                }
                if let ("spaces" | "skipped", Value::Array(items)) = (key, v) {
                    for item in items {
                        if let Value::Bytes(b) = item {
                            assert_eq!(b.len(), 16);
                        }
                    }
                }
                assert_binary_fields(v);
            }
        }
        _ => {}
    }
}

fn check_encoding(bytes: &[u8]) {
    let value: ciborium::Value = ciborium::from_reader(bytes).unwrap();
    assert_no_integer_arrays(&value);
    // The frame's own `id` is the request number; ids inside payloads are UUIDs.
    for (key, payload) in value.as_map().unwrap() {
        if matches!(key.as_text(), Some("params" | "result" | "data")) {
            assert_binary_fields(payload);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn requests_round_trip(id in any::<u32>(), request in request()) {
        let bytes = Frame::request(id, &request).unwrap().encode().unwrap();
        check_encoding(&bytes);
        let Frame::Request(raw) = decode(&bytes).unwrap() else { panic!("not a request") };
        prop_assert_eq!(raw.id, id);
        prop_assert_eq!(raw.method.as_str(), request.method().as_str());
        prop_assert_eq!(ClientRequest::from_raw(&raw).unwrap(), request);
    }

    #[test]
    fn results_round_trip(id in any::<u32>(), result in result()) {
        let frame = Frame::Response(RawResponse { id, outcome: Ok(result.to_raw().unwrap()) });
        let bytes = frame.encode().unwrap();
        check_encoding(&bytes);
        let Frame::Response(raw) = decode(&bytes).unwrap() else { panic!("not a response") };
        prop_assert_eq!(raw.id, id);
        let decoded = CallResult::from_raw(result.method(), raw.outcome.as_ref().unwrap()).unwrap();
        prop_assert_eq!(decoded, result);
    }

    #[test]
    fn errors_round_trip(id in any::<u32>(), error in error_body()) {
        let frame = Frame::error(id, error);
        let bytes = frame.encode().unwrap();
        check_encoding(&bytes);
        prop_assert_eq!(decode(&bytes).unwrap(), frame);
    }

    #[test]
    fn notifications_round_trip(notification in notification()) {
        let bytes = Frame::notification(&notification).unwrap().encode().unwrap();
        check_encoding(&bytes);
        let Frame::Notification(raw) = decode(&bytes).unwrap() else { panic!("not a notification") };
        prop_assert_eq!(Notification::from_raw(&raw).unwrap(), notification);
    }

    #[test]
    fn chunks_round_trip(id in any::<u32>(), chunk in chunk()) {
        let bytes = Frame::chunk(id, &chunk).unwrap().encode().unwrap();
        prop_assert_eq!(&chunk.encode_frame(id).unwrap(), &bytes);
        check_encoding(&bytes);
        let Frame::Chunk(raw) = decode(&bytes).unwrap() else { panic!("not a chunk") };
        prop_assert_eq!(raw.id, id);
        prop_assert_eq!(PullChunk::from_raw(&raw).unwrap(), chunk);
    }

    #[test]
    fn frames_round_trip(frame in frame()) {
        let bytes = frame.encode().unwrap();
        prop_assert_eq!(decode(&bytes).unwrap(), frame);
    }

    #[test]
    fn decode_never_panics_on_arbitrary_bytes(bytes in vec(any::<u8>(), 0..512)) {
        exercise(&bytes);
    }

    #[test]
    fn decode_never_panics_on_mutated_frames(
        frame in frame(),
        edits in vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..4), 1..8),
    ) {
        let mut bytes = frame.encode().unwrap();
        for (at, byte, op) in edits {
            let i = if bytes.is_empty() { 0 } else { at.index(bytes.len()) };
            match op {
                0 if !bytes.is_empty() => bytes[i] = byte,
                1 => bytes.insert(i, byte),
                2 if !bytes.is_empty() => { bytes.remove(i); }
                _ => bytes.truncate(i),
            }
        }
        exercise(&bytes);
    }
}

/// Decodes at every layer; whatever decodes must re-encode and decode equal.
fn exercise(bytes: &[u8]) {
    let Ok(frame) = decode(bytes) else { return };
    let again = frame.encode().unwrap();
    assert_eq!(decode(&again).unwrap(), frame);
    match &frame {
        Frame::Request(raw) => {
            if let Ok(request) = ClientRequest::from_raw(raw) {
                let _ = request.validate();
                assert_eq!(
                    ClientRequest::from_raw(&request.to_raw(raw.id).unwrap()).unwrap(),
                    request
                );
            }
        }
        Frame::Response(raw) => {
            if let Ok(result) = &raw.outcome {
                for &method in Method::ALL {
                    if let Ok(typed) = CallResult::from_raw(method, result) {
                        assert_eq!(
                            CallResult::from_raw(method, &typed.to_raw().unwrap()).unwrap(),
                            typed
                        );
                    }
                }
            }
        }
        Frame::Notification(raw) => {
            if let Ok(n) = Notification::from_raw(raw) {
                assert_eq!(Notification::from_raw(&n.to_raw().unwrap()).unwrap(), n);
            }
        }
        Frame::Chunk(raw) => {
            if let Ok(c) = PullChunk::from_raw(raw) {
                assert_eq!(PullChunk::from_raw(&c.to_raw(raw.id).unwrap()).unwrap(), c);
            }
        }
    }
}
