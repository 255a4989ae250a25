//! Checks every case of `tests/vectors/*.json` against the implementation.
//! Runs natively and under wasm32 in Node (vectors are compiled in; no
//! filesystem, threads or clock).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use aes_gcm::aead::{AeadInOut, KeyInit};
use common::*;
use sealbase_crypto::capability::Capability;
use sealbase_crypto::channel::{self, ChannelMessage};
use sealbase_crypto::envelope::{self, RecordEnvelope};
use sealbase_crypto::file::{self, FileOpener, FileSealer};
use sealbase_crypto::identity::Did;
use sealbase_crypto::kdf;
use sealbase_crypto::membership;
use sealbase_crypto::{
    AccountRootKey, AgreementPublicKey, AppKey, ArkWrappingKey, Dek, EntryBody, EpochKey, FileKey,
    Identity, InvitationPayload, RecoveryKey, SignedEntry, dek, sealed, wrap,
};
use serde_bytes::ByteArray;
use sha2::{Digest, Sha256};
use x25519_dalek::StaticSecret;

fn load<T: serde::de::DeserializeOwned>(json: &str) -> T {
    serde_json::from_str(json).unwrap()
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn envelope_cases() {
    let file: VectorFile<EnvelopeCase> = load(include_str!("vectors/envelope.json"));
    assert!(file.cases.len() >= 10);
    for c in &file.cases {
        let dek = Dek::from_bytes(arr32(&c.dek));
        let (space, record) = (uuid(&c.space), uuid(&c.record));
        assert_eq!(
            hex::encode(envelope::record_aad(&space, &record)),
            c.aad,
            "{}",
            c.name
        );
        let blob = unhex(&c.blob);
        let opened = envelope::open_record(&dek, &space, &record, &blob);
        match (&c.error, &c.plaintext) {
            (None, Some(plaintext)) => {
                let plaintext = unhex(plaintext);
                assert_eq!(*opened.unwrap(), plaintext, "{}", c.name);
                let padded_len = c.padded_len.unwrap();
                assert_eq!(envelope::padded_len(plaintext.len()), Ok(padded_len));
                assert_eq!(blob.len(), 1 + 12 + padded_len + 16, "{}", c.name);
                let resealed = envelope::seal_record_with_nonce(
                    &dek,
                    &space,
                    &record,
                    &plaintext,
                    &arr12(&c.nonce),
                )
                .unwrap();
                assert_eq!(resealed, blob, "{}", c.name);
            }
            (Some(error), _) => assert_eq!(error_name(&opened.unwrap_err()), *error, "{}", c.name),
            (None, None) => panic!("{}: case has neither plaintext nor error", c.name),
        }
    }
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn record_envelope_cases() {
    let file: RecordEnvelopeFile = load(include_str!("vectors/record-envelope.json"));
    for c in &file.cases {
        let id = Identity::from_secrets(
            &arr32(&c.signer_ed25519_seed),
            &arr32(&c.signer_x25519_secret),
        );
        assert_eq!(id.did().to_string(), c.did, "{}", c.name);
        let (space, record) = (uuid(&c.space), uuid(&c.record));
        let heads: Vec<[u8; 32]> = c.heads.iter().map(|h| arr32(h)).collect();
        let env = RecordEnvelope::sign(
            &id,
            &space,
            &record,
            c.collection.as_str(),
            c.schema_version,
            unhex(&c.doc),
            heads,
        )
        .unwrap();
        assert_eq!(
            hex::encode(&*env.signed_message(&space, &record).unwrap()),
            c.signed_message
        );
        assert_eq!(hex::encode(env.signature()), c.signature, "{}", c.name);
        assert_eq!(hex::encode(&*env.to_cbor().unwrap()), c.cbor, "{}", c.name);
        let decoded = RecordEnvelope::from_cbor(&unhex(&c.cbor)).unwrap();
        assert_eq!(decoded, env);
        let dek = Dek::from_bytes(arr32(&c.dek));
        let blob = unhex(&c.blob);
        let opened = envelope::open_record_envelope(&dek, &space, &record, &blob).unwrap();
        assert_eq!(opened, env, "{}", c.name);
        assert_eq!(opened.collection(), c.collection);
        assert_eq!(hex::encode(opened.doc()), c.doc);
        assert_eq!(opened.author().to_string(), c.did);
        let resealed = envelope::seal_record_with_nonce(
            &dek,
            &space,
            &record,
            &unhex(&c.cbor),
            &arr12(&c.nonce),
        )
        .unwrap();
        assert_eq!(resealed, blob);
    }
    assert!(file.reject_cases.len() >= 8);
    for c in &file.reject_cases {
        let result = RecordEnvelope::from_cbor(&unhex(&c.cbor))
            .and_then(|env| env.verify(&uuid(&c.space), &uuid(&c.record)));
        assert_eq!(error_name(&result.unwrap_err()), c.error, "{}", c.name);
    }
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn kdf_cases() {
    let file: KdfFile = load(include_str!("vectors/kdf.json"));
    let mut seen = Vec::new();
    for c in &file.cases {
        assert!(c.salt.is_empty());
        assert_eq!(hex::encode(c.info_text.as_bytes()), c.info, "{}", c.name);
        let ikm = unhex(&c.ikm);
        let out = match c.function.as_str() {
            "ark_wrapping_key_from_export_key" => {
                *kdf::ark_wrapping_key_from_export_key(&ikm).as_bytes()
            }
            "ark_wrapping_key_from_recovery_key" => {
                *kdf::ark_wrapping_key_from_recovery_key(&RecoveryKey::from_bytes(arr32(&c.ikm)))
                    .as_bytes()
            }
            "app_key" => {
                let client = c.info_text.strip_prefix(kdf::info::APP).unwrap();
                *kdf::app_key(&AccountRootKey::from_bytes(arr32(&c.ikm)), client).as_bytes()
            }
            "ark_proof" => *kdf::ark_proof(&AccountRootKey::from_bytes(arr32(&c.ikm))),
            "personal_epoch_key" => {
                *kdf::personal_epoch_key(&AppKey::from_bytes(arr32(&c.ikm))).as_bytes()
            }
            "channel_key" => *kdf::channel_key(&EpochKey::from_bytes(arr32(&c.ikm))).as_bytes(),
            // Crate-private; checked through the identities below.
            "identity_ed25519_seed" | "identity_x25519_secret" => arr32(&c.output),
            other => panic!("unknown function {other}"),
        };
        assert_eq!(hex::encode(out), c.output, "{}", c.name);
        seen.push(c.function.clone());
    }
    for f in [
        "ark_wrapping_key_from_export_key",
        "ark_wrapping_key_from_recovery_key",
        "app_key",
        "ark_proof",
        "personal_epoch_key",
        "channel_key",
        "identity_ed25519_seed",
        "identity_x25519_secret",
    ] {
        assert!(seen.iter().any(|s| s == f), "kdf.json lacks {f}");
    }
    for i in &file.identities {
        let id = Identity::from_app_key(&AppKey::from_bytes(arr32(&i.app_key)));
        assert_eq!(id.did().to_string(), i.did, "{}", i.name);
        assert_eq!(
            hex::encode(id.did().public_key().as_bytes()),
            i.ed25519_public
        );
        assert_eq!(
            hex::encode(id.agreement_public().as_bytes()),
            i.x25519_public
        );
        let from_seeds = Identity::from_secrets(&arr32(&i.ed25519_seed), &arr32(&i.x25519_secret));
        assert_eq!(from_seeds.did(), id.did());
        assert_eq!(from_seeds.agreement_public(), id.agreement_public());
        // The seeds must be the HKDF outputs listed above.
        assert!(
            file.cases
                .iter()
                .any(|c| c.output == i.ed25519_seed && c.ikm == i.app_key)
        );
        assert!(
            file.cases
                .iter()
                .any(|c| c.output == i.x25519_secret && c.ikm == i.app_key)
        );
    }
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn dek_wrap_cases() {
    let file: VectorFile<DekWrapCase> = load(include_str!("vectors/dek-wrap.json"));
    for c in &file.cases {
        let ek = EpochKey::from_bytes(arr32(&c.epoch_key));
        let bytes = unhex(&c.wrapped);
        let result = dek::WrappedKey::from_bytes(&bytes).and_then(|w| {
            assert_eq!(w.epoch(), c.epoch, "{}", c.name);
            assert_eq!(dek::wrapped_epoch(&bytes), Ok(c.epoch));
            assert_eq!(w.to_bytes().as_slice(), bytes.as_slice());
            if c.kind == "dek" {
                dek::unwrap_dek(&ek, &w).map(|k| *k.as_bytes())
            } else {
                dek::unwrap_file_key(&ek, &w).map(|k| *k.as_bytes())
            }
        });
        match (&c.error, &c.key) {
            (None, Some(key)) => {
                assert_eq!(hex::encode(result.unwrap()), *key, "{}", c.name);
                let rewrapped = if c.kind == "dek" {
                    dek::wrap_dek(c.epoch, &ek, &Dek::from_bytes(arr32(key)))
                } else {
                    dek::wrap_file_key(c.epoch, &ek, &FileKey::from_bytes(arr32(key)))
                };
                assert_eq!(hex::encode(rewrapped.to_bytes()), c.wrapped, "{}", c.name);
            }
            (Some(error), _) => assert_eq!(error_name(&result.unwrap_err()), *error, "{}", c.name),
            (None, None) => panic!("{}: neither key nor error", c.name),
        }
    }
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn ark_wrap_cases() {
    let file: VectorFile<ArkWrapCase> = load(include_str!("vectors/ark-wrap.json"));
    for c in &file.cases {
        let kek = ArkWrappingKey::from_bytes(arr32(&c.kek));
        let result = wrap::unwrap_ark(&kek, &unhex(&c.wrapped));
        match (&c.error, &c.ark) {
            (None, Some(ark)) => {
                assert_eq!(hex::encode(result.unwrap().as_bytes()), *ark, "{}", c.name);
                let again = wrap::wrap_ark_with_nonce(
                    &kek,
                    &AccountRootKey::from_bytes(arr32(ark)),
                    &arr12(&c.nonce),
                );
                assert_eq!(hex::encode(again), c.wrapped, "{}", c.name);
            }
            (Some(error), _) => assert_eq!(error_name(&result.unwrap_err()), *error, "{}", c.name),
            (None, None) => panic!("{}: neither ark nor error", c.name),
        }
    }
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn recovery_key_cases() {
    let file: VectorFile<RecoveryKeyCase> = load(include_str!("vectors/recovery-key.json"));
    for c in &file.cases {
        let result = wrap::parse_recovery_key(&c.input);
        match (&c.error, &c.key) {
            (None, Some(key)) => {
                let parsed = result.unwrap();
                assert_eq!(hex::encode(parsed.as_bytes()), *key, "{}", c.name);
                if c.canonical {
                    assert_eq!(*wrap::format_recovery_key(&parsed), c.input, "{}", c.name);
                }
            }
            (Some(error), _) => assert_eq!(error_name(&result.unwrap_err()), *error, "{}", c.name),
            (None, None) => panic!("{}: neither key nor error", c.name),
        }
    }
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn sealed_cases() {
    let file: VectorFile<SealedCase> = load(include_str!("vectors/sealed.json"));
    for c in &file.cases {
        let secret = StaticSecret::from(arr32(&c.recipient_secret));
        assert_eq!(
            hex::encode(x25519_dalek::PublicKey::from(&secret).as_bytes()),
            c.recipient_public
        );
        let context = unhex(&c.context);
        assert_eq!(
            hex::encode([sealed::SEAL_AAD_PREFIX, &context].concat()),
            c.aad
        );
        let boxed = unhex(&c.sealed);
        let result = sealed::open(&secret, &boxed, &context);
        match (&c.error, &c.plaintext) {
            (None, Some(plaintext)) => {
                assert_eq!(hex::encode(&*result.unwrap()), *plaintext, "{}", c.name);
                let eph = StaticSecret::from(arr32(c.ephemeral_secret.as_ref().unwrap()));
                let again = sealed::seal_with_ephemeral(
                    &AgreementPublicKey(arr32(&c.recipient_public)),
                    &unhex(plaintext),
                    &context,
                    &eph,
                    &arr12(&c.nonce),
                )
                .unwrap();
                assert_eq!(again, boxed, "{}", c.name);
            }
            (Some(error), _) => assert_eq!(error_name(&result.unwrap_err()), *error, "{}", c.name),
            (None, None) => panic!("{}: neither plaintext nor error", c.name),
        }
    }
    // The epoch-key case opens through the typed helper too.
    let c = &file.cases[0];
    let context = unhex(&c.context);
    assert!(context.starts_with(sealed::EPOCH_KEY_CONTEXT));
    let space = sealbase_crypto::Uuid::from_slice(&context[9..25]).unwrap();
    let epoch = u32::from_be_bytes(context[25..29].try_into().unwrap());
    let secret = StaticSecret::from(arr32(&c.recipient_secret));
    let key = sealed::open_epoch_key(&secret, &space, epoch, &unhex(&c.sealed)).unwrap();
    assert_eq!(hex::encode(key.as_bytes()), *c.plaintext.as_ref().unwrap());
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn did_cases() {
    let file: VectorFile<DidCase> = load(include_str!("vectors/did.json"));
    for c in &file.cases {
        let result = c.did.parse::<Did>();
        match (&c.error, &c.public_key) {
            (None, Some(pk)) => {
                let did = result.unwrap();
                assert_eq!(hex::encode(did.public_key().as_bytes()), *pk, "{}", c.name);
                assert_eq!(did.to_string(), c.did);
                assert_eq!(Did::from_public_bytes(&unhex(pk)).unwrap(), did);
            }
            (Some(error), _) => assert_eq!(error_name(&result.unwrap_err()), *error, "{}", c.name),
            (None, None) => panic!("{}: neither public_key nor error", c.name),
        }
    }
}

/// `read`, `write` or `admin`.
fn role(s: &str) -> Capability {
    serde_json::from_value(serde_json::Value::String(s.to_owned())).unwrap()
}

/// The entry body a `membership.json` case spells out field by field
/// (`None` for an unknown kind).
fn membership_body(b: &MembershipBody) -> Option<EntryBody> {
    let did = |s: &Option<String>| s.as_deref().unwrap().parse::<Did>().unwrap();
    let x25519 = |s: &Option<String>| ByteArray::new(arr32(s.as_deref().unwrap()));
    Some(match b.k.as_str() {
        "create" => EntryBody::Create {
            name: b.name.clone().unwrap(),
            x25519: x25519(&b.x25519),
        },
        "invite" => EntryBody::Invite {
            member: did(&b.member),
            x25519: x25519(&b.x25519),
            handle: b.handle.clone().unwrap(),
            role: role(b.role.as_deref().unwrap()),
            cap: b.cap.clone().unwrap(),
        },
        "accept" => EntryBody::Accept,
        "decline" => EntryBody::Decline,
        "remove" => EntryBody::Remove {
            member: did(&b.member),
            revoked: b
                .revoked
                .as_ref()
                .unwrap()
                .iter()
                .map(|h| ByteArray::new(arr32(h)))
                .collect(),
        },
        "rotate" => EntryBody::Rotate {
            epoch: b.epoch.unwrap(),
            members: b
                .members
                .as_ref()
                .unwrap()
                .iter()
                .map(|d| d.parse().unwrap())
                .collect(),
        },
        _ => return None,
    })
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn membership_cases() {
    let file: MembershipFile = load(include_str!("vectors/membership.json"));
    let mut kinds = Vec::new();
    let mut hashes: Vec<&str> = Vec::new();
    for c in &file.cases {
        let id = Identity::from_secrets(
            &arr32(&c.author_ed25519_seed),
            &arr32(&c.author_x25519_secret),
        );
        assert_eq!(id.did().to_string(), c.author_did, "{}", c.name);
        let space = uuid(&c.space);
        let prev = c.prev_hash.as_deref().map(arr32);
        // The cases form one chain: every prev_hash is an earlier entry's hash.
        match &c.prev_hash {
            None => assert!(hashes.is_empty(), "{}: a second genesis", c.name),
            Some(p) => assert!(hashes.contains(&p.as_str()), "{}: unknown prev", c.name),
        }
        let ek = EpochKey::from_bytes(arr32(&c.epoch_key));
        assert_eq!(
            hex::encode(*kdf::membership_key(&ek)),
            c.membership_key,
            "{}",
            c.name
        );
        assert_eq!(
            hex::encode(membership::entry_aad(&space, prev.as_ref(), c.epoch)),
            c.aad,
            "{}",
            c.name
        );
        let ct = unhex(&c.ciphertext);
        assert_eq!(membership::entry_epoch(&ct), Ok(c.epoch), "{}", c.name);
        assert_eq!(hex::encode(&ct[5..17]), c.nonce, "{}", c.name);
        assert!(envelope::is_bucket_size(
            ct.len() - membership::ENTRY_HEADER_LEN - 16
        ));
        let opened = membership::open_entry(&ek, &space, prev.as_ref(), &ct).unwrap();
        assert_eq!(opened.author().to_string(), c.author_did, "{}", c.name);
        let body = membership_body(&c.body).unwrap();
        assert_eq!(opened.body(), &body, "{}", c.name);
        let mut body_cbor = Vec::new();
        ciborium::into_writer(opened.body(), &mut body_cbor).unwrap();
        assert_eq!(hex::encode(&body_cbor), c.body_cbor, "{}", c.name);
        // Ed25519 is deterministic: signing again gives the same entry.
        let signed = SignedEntry::sign(&id, &space, prev.as_ref(), c.epoch, body).unwrap();
        assert_eq!(
            hex::encode(signed.signed_message(&space, prev.as_ref(), c.epoch)),
            c.signed_message,
            "{}",
            c.name
        );
        assert_eq!(hex::encode(signed.signature()), c.signature, "{}", c.name);
        assert_eq!(signed, opened, "{}", c.name);
        assert_eq!(
            hex::encode(&*signed.to_cbor().unwrap()),
            c.signed_cbor,
            "{}",
            c.name
        );
        assert_eq!(
            SignedEntry::from_cbor(&unhex(&c.signed_cbor)).unwrap(),
            opened
        );
        let resealed = membership::seal_entry_with_nonce(
            &ek,
            c.epoch,
            &space,
            prev.as_ref(),
            &signed,
            &arr12(&c.nonce),
        )
        .unwrap();
        assert_eq!(resealed, ct, "{}", c.name);
        assert_eq!(
            hex::encode(membership::entry_hash(&ct)),
            c.entry_hash,
            "{}",
            c.name
        );
        hashes.push(&c.entry_hash);
        kinds.push(c.body.k.as_str());
    }
    for k in ["create", "invite", "accept", "decline", "remove", "rotate"] {
        assert!(kinds.contains(&k), "membership.json lacks a {k} entry");
    }
    assert!(file.reject_cases.len() >= 10);
    for c in &file.reject_cases {
        let result = membership::open_entry(
            &EpochKey::from_bytes(arr32(&c.epoch_key)),
            &uuid(&c.space),
            c.prev_hash.as_deref().map(arr32).as_ref(),
            &unhex(&c.ciphertext),
        );
        assert_eq!(
            membership_error_name(&result.unwrap_err()),
            c.error,
            "{}",
            c.name
        );
    }
    for c in &file.invitations {
        let id = uuid(&c.invitation);
        let context = membership::invitation_context(&id);
        assert_eq!(hex::encode(&context), c.context, "{}", c.name);
        let secret = StaticSecret::from(arr32(&c.recipient_secret));
        assert_eq!(
            hex::encode(x25519_dalek::PublicKey::from(&secret).as_bytes()),
            c.recipient_public
        );
        let payload = membership::open_invitation(&secret, &id, &unhex(&c.sealed)).unwrap();
        let expected = InvitationPayload {
            space: uuid(&c.space),
            name: c.space_name.clone(),
            inviter: c.inviter.parse().unwrap(),
            role: role(&c.role),
            cap: c.cap.clone(),
            keys: c
                .keys
                .iter()
                .map(|k| (k.epoch, EpochKey::from_bytes(arr32(&k.key))))
                .collect(),
        };
        assert_eq!(payload, expected, "{}", c.name);
        let cbor = membership::invitation_to_cbor(&payload).unwrap();
        assert_eq!(hex::encode(&*cbor), c.payload_cbor, "{}", c.name);
        assert_eq!(membership::invitation_from_cbor(&cbor).unwrap(), expected);
        let again = sealed::seal_with_ephemeral(
            &AgreementPublicKey(arr32(&c.recipient_public)),
            &cbor,
            &context,
            &StaticSecret::from(arr32(&c.ephemeral_secret)),
            &arr12(&c.nonce),
        )
        .unwrap();
        assert_eq!(hex::encode(again), c.sealed, "{}", c.name);
    }
    assert!(!file.invitation_reject_cases.is_empty());
    for c in &file.invitation_reject_cases {
        let result = membership::open_invitation(
            &StaticSecret::from(arr32(&c.recipient_secret)),
            &uuid(&c.invitation),
            &unhex(&c.sealed),
        );
        assert_eq!(
            membership_error_name(&result.unwrap_err()),
            c.error,
            "{}",
            c.name
        );
    }
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn channel_cases() {
    use ciborium::Value;
    let file: ChannelFile = load(include_str!("vectors/channel.json"));
    let mut kinds = Vec::new();
    for c in &file.cases {
        let id = Identity::from_secrets(
            &arr32(&c.author_ed25519_seed),
            &arr32(&c.author_x25519_secret),
        );
        assert_eq!(id.did().to_string(), c.author_did, "{}", c.name);
        let (space, kind) = (uuid(&c.space), channel_kind(&c.kind).unwrap());
        let ek = EpochKey::from_bytes(arr32(&c.epoch_key));
        let key = kdf::channel_key(&ek);
        assert_eq!(hex::encode(key.as_bytes()), c.channel_key, "{}", c.name);
        assert_eq!(
            hex::encode(channel::channel_aad(&space, kind, c.epoch)),
            c.aad,
            "{}",
            c.name
        );
        let data = unhex(&c.data);
        let message = [
            b"sealbase/v1/channel-sig".as_slice(),
            space.as_bytes(),
            &[kind.as_byte()],
            &c.epoch.to_be_bytes(),
            &data,
        ]
        .concat();
        assert_eq!(hex::encode(&message), c.signed_message, "{}", c.name);
        // Ed25519 is deterministic.
        assert_eq!(hex::encode(id.sign(&message)), c.signature, "{}", c.name);
        let map = Value::Map(vec![
            ("a".into(), Value::Text(c.author_did.clone())),
            ("d".into(), Value::Bytes(data.clone())),
            ("k".into(), Value::Integer(kind.as_byte().into())),
            ("s".into(), Value::Bytes(unhex(&c.signature))),
        ]);
        let mut cbor = Vec::new();
        ciborium::into_writer(&map, &mut cbor).unwrap();
        assert_eq!(hex::encode(&cbor), c.cbor, "{}", c.name);

        let blob = unhex(&c.blob);
        assert_eq!(channel::channel_epoch(&blob), Ok(c.epoch), "{}", c.name);
        assert_eq!(
            hex::encode(&blob[5..channel::CHANNEL_HEADER_LEN]),
            c.nonce,
            "{}",
            c.name
        );
        // Independently: raw AES-GCM opens the body to pad(cbor).
        let mut body = blob[channel::CHANNEL_HEADER_LEN..blob.len() - 16].to_vec();
        aes_gcm::Aes256Gcm::new_from_slice(key.as_bytes())
            .unwrap()
            .decrypt_inout_detached(
                &aes_gcm::Nonce::from(arr12(&c.nonce)),
                &unhex(&c.aad),
                body.as_mut_slice().into(),
                &aes_gcm::Tag::from(<[u8; 16]>::try_from(&blob[blob.len() - 16..]).unwrap()),
            )
            .unwrap();
        assert_eq!(
            envelope::unpad(&body).unwrap(),
            cbor.as_slice(),
            "{}",
            c.name
        );

        let opened = channel::open_channel(&ek, &space, kind, &blob).unwrap();
        assert_eq!(
            opened,
            ChannelMessage {
                kind,
                epoch: c.epoch,
                author: id.did(),
                data: data.clone(),
            },
            "{}",
            c.name
        );
        let resealed = channel::seal_channel_with_nonce(
            &id,
            &space,
            c.epoch,
            &ek,
            kind,
            &data,
            arr12(&c.nonce),
        )
        .unwrap();
        assert_eq!(resealed, blob, "{}", c.name);
        kinds.push(kind);
    }
    assert!(kinds.contains(&sealbase_crypto::ChannelKind::Presence));
    assert!(kinds.contains(&sealbase_crypto::ChannelKind::Event));
    assert!(file.reject_cases.len() >= 20);
    for c in &file.reject_cases {
        let result = channel::open_channel(
            &EpochKey::from_bytes(arr32(&c.epoch_key)),
            &uuid(&c.space),
            channel_kind(&c.kind).unwrap(),
            &unhex(&c.blob),
        );
        assert_eq!(error_name(&result.unwrap_err()), c.error, "{}", c.name);
    }
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn file_cases() {
    let vectors: FileVectorFile = load(include_str!("vectors/file.json"));
    let chunk = file::FILE_CHUNK_LEN;
    // Sealed chunks of every case, rebuilt from its inputs.
    let mut sealed: Vec<(&str, Vec<Vec<u8>>)> = Vec::new();
    for c in &vectors.cases {
        let key = FileKey::from_bytes(arr32(&c.key));
        let (space, file_id) = (uuid(&c.space), uuid(&c.file));
        let plain = match &c.plaintext {
            Some(h) => unhex(h),
            None => pattern(c.plain_len as usize),
        };
        assert_eq!(plain.len() as u64, c.plain_len, "{}", c.name);
        assert_eq!(
            hex::encode(Sha256::digest(&plain)),
            c.plaintext_sha256,
            "{}",
            c.name
        );
        let prefix: [u8; 8] = unhex(&c.prefix).try_into().unwrap();
        let mut sealer = FileSealer::new_with_prefix(&key, &space, &file_id, prefix);
        let header = sealer.header();
        assert_eq!(hex::encode(header), c.header, "{}", c.name);
        let opener = FileOpener::new(&key, &space, &file_id, &header).unwrap();
        let parts: Vec<&[u8]> = if plain.is_empty() {
            vec![&[]]
        } else {
            plain.chunks(chunk).collect()
        };
        assert_eq!(parts.len(), c.chunks.len(), "{}", c.name);
        let mut body = header.to_vec();
        let mut chunks = Vec::new();
        for (part, cc) in parts.iter().zip(&c.chunks) {
            let index = cc.index;
            assert_eq!(index as usize, chunks.len(), "{}", c.name);
            assert_eq!(cc.last, index as usize + 1 == parts.len(), "{}", c.name);
            assert_eq!(
                hex::encode([prefix.as_slice(), &index.to_be_bytes()].concat()),
                cc.nonce
            );
            assert_eq!(
                hex::encode(file::file_chunk_aad(&space, &file_id, index, cc.last)),
                cc.aad,
                "{}",
                c.name
            );
            let s = sealer.seal_chunk(part, cc.last).unwrap();
            assert_eq!(s.len(), cc.sealed_len, "{}", c.name);
            assert_eq!(
                hex::encode(Sha256::digest(&s)),
                cc.sealed_sha256,
                "{}",
                c.name
            );
            if let Some(h) = &cc.sealed {
                assert_eq!(hex::encode(&s), *h, "{}", c.name);
            }
            assert_eq!(
                &*opener.open_chunk(index.into(), &s, cc.last).unwrap(),
                part,
                "{}",
                c.name
            );
            body.extend_from_slice(&s);
            chunks.push(s);
        }
        assert_eq!(body.len() as u64, c.sealed_len, "{}", c.name);
        assert_eq!(file::sealed_file_len(c.plain_len), c.sealed_len);
        assert_eq!(file::plain_file_len(c.sealed_len), Ok(c.plain_len));
        assert_eq!(
            file::file_chunk_count(c.sealed_len),
            Ok(c.chunks.len() as u64)
        );
        assert_eq!(
            hex::encode(Sha256::digest(&body)),
            c.sealed_sha256,
            "{}",
            c.name
        );
        assert_eq!(
            *file::open_file(&key, &space, &file_id, &body).unwrap(),
            plain,
            "{}",
            c.name
        );
        sealed.push((&c.name, chunks));
    }
    assert!(vectors.cases.iter().any(|c| c.plain_len == 0));
    assert!(vectors.cases.iter().any(|c| c.chunks.len() == 3));

    assert!(vectors.reject_cases.len() >= 15);
    for c in &vectors.reject_cases {
        let body: Vec<u8> = c
            .parts
            .iter()
            .flat_map(|p| match (&p.hex, &p.case, p.chunk) {
                (Some(h), None, None) => unhex(h),
                (None, Some(name), Some(i)) => {
                    let (_, chunks) = sealed.iter().find(|(n, _)| n == name).unwrap();
                    chunks[i as usize].clone()
                }
                _ => panic!("{}: a part is hex or a case's chunk", c.name),
            })
            .collect();
        let result = file::open_file(
            &FileKey::from_bytes(arr32(&c.key)),
            &uuid(&c.space),
            &uuid(&c.file),
            &body,
        );
        assert_eq!(error_name(&result.unwrap_err()), c.error, "{}", c.name);
    }

    for l in &vectors.lengths {
        let got = file::plain_file_len(l.sealed_len);
        match (l.plain_len, &l.error) {
            (Some(plain), None) => {
                assert_eq!(got, Ok(plain));
                assert_eq!(file::sealed_file_len(plain), l.sealed_len);
            }
            (None, Some(error)) => assert_eq!(error_name(&got.unwrap_err()), *error),
            _ => panic!("length case with neither plain_len nor error"),
        }
    }
    for s in &vectors.spans {
        let got = file::sealed_span(s.sealed_len, s.plain_start, s.plain_end);
        match &s.error {
            None => assert_eq!(
                got,
                Ok(file::SealedSpan {
                    first_chunk: s.first_chunk.unwrap(),
                    start: s.start.unwrap(),
                    end: s.end.unwrap(),
                }),
                "{s:?}"
            ),
            Some(error) => assert_eq!(error_name(&got.unwrap_err()), *error, "{s:?}"),
        }
    }
}
