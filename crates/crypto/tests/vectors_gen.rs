//! Regenerates the JSON vectors in `tests/vectors/` from fixed inputs.
//!
//! By default it only checks that the committed files equal what the code
//! produces now; `SEALBASE_WRITE_VECTORS=1 cargo test -p sealbase-crypto --test
//! vectors_gen` rewrites them. Every input is `SHA-256("sealbase-vector/" ‖
//! label)` (or a prefix of it), so the files are reproducible byte for byte.
#![cfg(not(target_arch = "wasm32"))]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::type_complexity
)]

mod common;

use aes_gcm::aead::{AeadInOut, KeyInit};
use common::*;
use hkdf::Hkdf;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use sealbase_crypto::capability::{Capability, CapabilityToken};
use sealbase_crypto::channel::{self, ChannelError, ChannelKind};
use sealbase_crypto::envelope::{self, RecordEnvelope};
use sealbase_crypto::file::{self, FileError, FileSealer};
use sealbase_crypto::identity::Did;
use sealbase_crypto::kdf::{self, info};
use sealbase_crypto::membership::{self, EntryHash};
use sealbase_crypto::{
    AccountRootKey, AgreementPublicKey, AppKey, Dek, EpochKey, FileKey, Identity, RecoveryKey,
    Uuid, dek, sealed, wrap,
};
use sealbase_crypto::{EntryBody, InvitationPayload, MembershipError, SignedEntry};
use serde::Serialize;
use serde_bytes::ByteArray;
use sha2::{Digest, Sha256};
use x25519_dalek::{PublicKey, StaticSecret};

fn det(label: &str) -> [u8; 32] {
    Sha256::digest(format!("sealbase-vector/{label}")).into()
}

fn det12(label: &str) -> [u8; 12] {
    det(label)[..12].try_into().unwrap()
}

fn det_uuid(label: &str) -> Uuid {
    uuid::Builder::from_random_bytes(det(label)[..16].try_into().unwrap()).into_uuid()
}

fn hx(b: impl AsRef<[u8]>) -> String {
    hex::encode(b)
}

fn hkdf_raw(ikm: &[u8], salt: &[u8], info: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    Hkdf::<Sha256>::new(Some(salt), ikm)
        .expand(info, &mut out)
        .unwrap();
    out
}

fn check_or_write<T: Serialize>(file: &str, value: &T) {
    // The directory at run time: a test binary built from another checkout
    // that shares the target directory must still read this one's files.
    let root = std::env::var("CARGO_MANIFEST_DIR")
        .unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_owned());
    let path = format!("{root}/tests/vectors/{file}");
    let mut json = serde_json::to_string_pretty(value).unwrap();
    json.push('\n');
    if std::env::var_os("SEALBASE_WRITE_VECTORS").is_some_and(|v| v == "1") {
        std::fs::write(&path, &json).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{path}: {e}; run with SEALBASE_WRITE_VECTORS=1"));
    let committed: serde_json::Value = serde_json::from_str(&committed).unwrap();
    assert_eq!(
        committed,
        serde_json::to_value(value).unwrap(),
        "{file} differs from the generator; if the change is intended, rerun with SEALBASE_WRITE_VECTORS=1"
    );
}

fn raw_gcm_blob(dek: &Dek, nonce: &[u8; 12], aad: &[u8], body: &[u8]) -> Vec<u8> {
    let cipher = aes_gcm::Aes256Gcm::new_from_slice(dek.as_bytes()).unwrap();
    let mut buf = body.to_vec();
    let tag = cipher
        .encrypt_inout_detached(
            &aes_gcm::Nonce::from(*nonce),
            aad,
            buf.as_mut_slice().into(),
        )
        .unwrap();
    let mut blob = vec![1u8];
    blob.extend_from_slice(nonce);
    blob.extend_from_slice(&buf);
    blob.extend_from_slice(&tag);
    blob
}

#[test]
fn envelope_vectors() {
    let dek = Dek::from_bytes(det("envelope/dek"));
    let space = det_uuid("envelope/space");
    let record = det_uuid("envelope/record");
    let aad = envelope::record_aad(&space, &record);
    let mut cases = Vec::new();
    let mut positive = |name: &str, plaintext: &[u8]| {
        let nonce = det12(&format!("envelope/nonce/{name}"));
        let blob =
            envelope::seal_record_with_nonce(&dek, &space, &record, plaintext, &nonce).unwrap();
        let case = EnvelopeCase {
            name: name.into(),
            dek: hx(dek.as_bytes()),
            space: space.to_string(),
            record: record.to_string(),
            aad: hx(&aad),
            nonce: hx(nonce),
            plaintext: Some(hx(plaintext)),
            padded_len: Some(envelope::padded_len(plaintext.len()).unwrap()),
            blob: hx(&blob),
            error: None,
        };
        cases.push(case);
        blob
    };
    positive("empty", b"");
    let hello = positive("short text", b"hello, sealbase");
    positive("251 bytes", &pattern(251));
    positive("252 bytes fills the first bucket", &pattern(252));
    positive("253 bytes spills into 512", &pattern(253));
    positive("1000 bytes", &pattern(1000));

    let negative =
        |name: &str, dek: &Dek, space: &Uuid, record: &Uuid, blob: Vec<u8>, error: &str| {
            EnvelopeCase {
                name: name.into(),
                dek: hx(dek.as_bytes()),
                space: space.to_string(),
                record: record.to_string(),
                aad: hx(envelope::record_aad(space, record)),
                nonce: hx(blob.get(1..13).unwrap_or(&[])),
                plaintext: None,
                padded_len: None,
                blob: hx(&blob),
                error: Some(error.into()),
            }
        };
    let other = det_uuid("envelope/other-record");
    cases.push(negative(
        "wrong record id",
        &dek,
        &space,
        &other,
        hello.clone(),
        "Authentication",
    ));
    cases.push(negative(
        "space and record swapped",
        &dek,
        &record,
        &space,
        hello.clone(),
        "Authentication",
    ));
    cases.push(negative(
        "wrong dek",
        &Dek::from_bytes(det("envelope/other-dek")),
        &space,
        &record,
        hello.clone(),
        "Authentication",
    ));
    let mut flipped = hello.clone();
    flipped[100] ^= 0x01;
    cases.push(negative(
        "ciphertext bit flipped",
        &dek,
        &space,
        &record,
        flipped,
        "Authentication",
    ));
    let mut tag = hello.clone();
    *tag.last_mut().unwrap() ^= 0x80;
    cases.push(negative(
        "tag bit flipped",
        &dek,
        &space,
        &record,
        tag,
        "Authentication",
    ));
    cases.push(negative(
        "truncated to 28 bytes",
        &dek,
        &space,
        &record,
        hello[..28].to_vec(),
        "Truncated",
    ));
    let mut v2 = hello.clone();
    v2[0] = 2;
    cases.push(negative(
        "version 2",
        &dek,
        &space,
        &record,
        v2,
        "UnsupportedVersion(2)",
    ));
    // Authentic bodies with broken padding, sealed with raw AES-GCM.
    let nonce = det12("envelope/nonce/bad-padding");
    let mut nonzero = envelope::pad(b"pad").unwrap().to_vec();
    nonzero[200] = 1;
    cases.push(negative(
        "non-zero padding byte",
        &dek,
        &space,
        &record,
        raw_gcm_blob(&dek, &nonce, &aad, &nonzero),
        "BadPadding(NonZeroPadding)",
    ));
    let mut long_prefix = envelope::pad(b"pad").unwrap().to_vec();
    long_prefix[..4].copy_from_slice(&253u32.to_be_bytes());
    cases.push(negative(
        "length prefix past the body",
        &dek,
        &space,
        &record,
        raw_gcm_blob(&dek, &nonce, &aad, &long_prefix),
        "BadPadding(LengthPrefix)",
    ));
    let mut odd = vec![0u8; 300];
    odd[3] = 3;
    cases.push(negative(
        "body of 300 bytes is no bucket",
        &dek,
        &space,
        &record,
        raw_gcm_blob(&dek, &nonce, &aad, &odd),
        "BadPadding(BucketSize)",
    ));
    cases.push(negative(
        "authentic empty body",
        &dek,
        &space,
        &record,
        raw_gcm_blob(&dek, &nonce, &aad, &[]),
        "Truncated",
    ));

    check_or_write(
        "envelope.json",
        &VectorFile {
            description: "Record blob v1: 0x01 ‖ nonce(12) ‖ AES-256-GCM(dek, pad(plaintext), aad), aad = \"sealbase/v1/record\" ‖ space(16) ‖ record(16). pad = u32 BE len ‖ plaintext ‖ zeros to a bucket (powers of two from 256 to 1 MiB, then multiples of 1 MiB). Negative cases name the EnvelopeError variant open_record returns.".into(),
            cases,
        },
    );
}

#[test]
fn record_envelope_vectors() {
    let mut cases = Vec::new();
    let mut reject_cases = Vec::new();
    let dek = Dek::from_bytes(det("record-envelope/dek"));
    let space = det_uuid("record-envelope/space");
    let record = det_uuid("record-envelope/record");
    let inputs: [(&str, &str, u32, Vec<u8>, Vec<[u8; 32]>); 3] = [
        (
            "tasks record with two heads",
            "tasks",
            1,
            pattern(40),
            vec![det("head/b"), det("head/a")],
        ),
        ("no heads, empty doc", "notes", 0, vec![], vec![]),
        (
            "unicode collection",
            "tâches/📋",
            7,
            pattern(300),
            vec![det("head/c")],
        ),
    ];
    let mut first = None;
    for (name, collection, schema, doc, heads) in inputs {
        let seed = det(&format!("record-envelope/signer/{name}"));
        let xsecret = det(&format!("record-envelope/signer-x/{name}"));
        let id = Identity::from_secrets(&seed, &xsecret);
        let env = RecordEnvelope::sign(
            &id,
            &space,
            &record,
            collection,
            schema,
            doc.clone(),
            heads.clone(),
        )
        .unwrap();
        let cbor = env.to_cbor().unwrap();
        let nonce = det12(&format!("record-envelope/nonce/{name}"));
        let blob = envelope::seal_record_with_nonce(&dek, &space, &record, &cbor, &nonce).unwrap();
        cases.push(RecordEnvelopeCase {
            name: name.into(),
            signer_ed25519_seed: hx(seed),
            signer_x25519_secret: hx(xsecret),
            did: id.did().to_string(),
            space: space.to_string(),
            record: record.to_string(),
            collection: collection.into(),
            schema_version: schema,
            doc: hx(&doc),
            heads: heads.iter().map(hx).collect(),
            signed_message: hx(&*env.signed_message(&space, &record).unwrap()),
            signature: hx(env.signature()),
            cbor: hx(&*cbor),
            dek: hx(dek.as_bytes()),
            nonce: hx(nonce),
            blob: hx(&blob),
        });
        if first.is_none() {
            first = Some(cbor.to_vec());
        }
    }
    let good = first.unwrap();
    let value: ciborium::Value = ciborium::from_reader(&good[..]).unwrap();
    let edit = |f: &dyn Fn(&mut Vec<(ciborium::Value, ciborium::Value)>)| {
        let mut v = value.clone();
        f(v.as_map_mut().unwrap());
        let mut out = Vec::new();
        ciborium::into_writer(&v, &mut out).unwrap();
        out
    };
    let set = |key: &'static str, new: ciborium::Value| {
        edit(&move |m| {
            for (k, v) in m.iter_mut() {
                if k.as_text() == Some(key) {
                    *v = new.clone();
                }
            }
        })
    };
    let reject = |name: &str, cbor: Vec<u8>, record: &Uuid, error: &str| RecordEnvelopeRejectCase {
        name: name.into(),
        space: space.to_string(),
        record: record.to_string(),
        cbor: hx(cbor),
        error: error.into(),
    };
    reject_cases.push(reject(
        "version 2",
        set("v", 2.into()),
        &record,
        "UnsupportedEnvelopeVersion(2)",
    ));
    reject_cases.push(reject(
        "collection relabelled",
        set("c", "notes".into()),
        &record,
        "BadAuthorSignature",
    ));
    reject_cases.push(reject(
        "schema version changed",
        set("s", 2.into()),
        &record,
        "BadAuthorSignature",
    ));
    reject_cases.push(reject(
        "heads dropped",
        set("h", ciborium::Value::Array(vec![])),
        &record,
        "BadAuthorSignature",
    ));
    reject_cases.push(reject(
        "other record id",
        good.clone(),
        &det_uuid("other"),
        "BadAuthorSignature",
    ));
    reject_cases.push(reject(
        "unknown key",
        edit(&|m| m.push(("x".into(), 1.into()))),
        &record,
        "MalformedEnvelope",
    ));
    reject_cases.push(reject(
        "missing signature",
        edit(&|m| m.retain(|(k, _)| k.as_text() != Some("sig"))),
        &record,
        "MalformedEnvelope",
    ));
    reject_cases.push(reject(
        "doc as text instead of bytes",
        set("d", "automerge".into()),
        &record,
        "MalformedEnvelope",
    ));
    reject_cases.push(reject(
        "author is not a did:key",
        set("a", "did:web:example.com".into()),
        &record,
        "MalformedEnvelope",
    ));
    let mut trailing = good.clone();
    trailing.push(0xf6);
    reject_cases.push(reject(
        "trailing bytes",
        trailing,
        &record,
        "MalformedEnvelope",
    ));
    reject_cases.push(reject(
        "truncated",
        good[..good.len() - 3].to_vec(),
        &record,
        "MalformedEnvelope",
    ));
    reject_cases.push(reject(
        "not a map",
        vec![0x83, 1, 2, 3],
        &record,
        "MalformedEnvelope",
    ));

    check_or_write(
        "record-envelope.json",
        &RecordEnvelopeFile {
            description: "Record envelope (CBOR inside the record blob): canonical map {a: did:key string, c: collection, d: Automerge bytes, h: [32-byte heads, sorted], s: schema version, v: 1, sig: 64-byte Ed25519}. signed_message = \"sealbase/v1/record-sig\" ‖ space(16) ‖ record(16) ‖ u32 BE len(c) ‖ c ‖ u32 BE s ‖ u32 BE count(h) ‖ sorted heads. blob = seal_record_with_nonce(dek, space, record, cbor, nonce). reject_cases name the EnvelopeError of from_cbor followed by verify(space, record).".into(),
            cases,
            reject_cases,
        },
    );
}

#[test]
fn kdf_vectors() {
    let mut cases = Vec::new();
    let mut push = |name: &str, function: &str, ikm: &[u8], info: &[u8], output: [u8; 32]| {
        assert_eq!(hkdf_raw(ikm, &[], info), output, "{name}");
        cases.push(KdfCase {
            name: name.into(),
            function: function.into(),
            ikm: hx(ikm),
            salt: String::new(),
            info: hx(info),
            info_text: String::from_utf8(info.to_vec()).unwrap(),
            output: hx(output),
        });
    };
    let mut export_key = det("kdf/export-key").to_vec();
    export_key.extend_from_slice(&det("kdf/export-key/2"));
    push(
        "ARK wrapping key from a 64-byte OPAQUE export key",
        "ark_wrapping_key_from_export_key",
        &export_key,
        info::ARK_WRAP_OPAQUE.as_bytes(),
        *kdf::ark_wrapping_key_from_export_key(&export_key).as_bytes(),
    );
    let recovery = RecoveryKey::from_bytes(det("kdf/recovery-key"));
    push(
        "ARK wrapping key from the recovery key",
        "ark_wrapping_key_from_recovery_key",
        recovery.as_bytes(),
        info::ARK_WRAP_RECOVERY.as_bytes(),
        *kdf::ark_wrapping_key_from_recovery_key(&recovery).as_bytes(),
    );
    let ark = AccountRootKey::from_bytes(det("kdf/ark"));
    push(
        "proof of holding ARK",
        "ark_proof",
        ark.as_bytes(),
        info::ARK_PROOF.as_bytes(),
        *kdf::ark_proof(&ark),
    );
    let mut app_keys = Vec::new();
    for client in ["tasks", "com.example.notes"] {
        let ak = kdf::app_key(&ark, client);
        push(
            &format!("app key for client_id {client:?}"),
            "app_key",
            ark.as_bytes(),
            format!("{}{client}", info::APP).as_bytes(),
            *ak.as_bytes(),
        );
        app_keys.push(ak);
    }
    let ak = &app_keys[0];
    push(
        "personal space epoch key",
        "personal_epoch_key",
        ak.as_bytes(),
        info::PERSONAL_EPOCH.as_bytes(),
        *kdf::personal_epoch_key(ak).as_bytes(),
    );
    let epoch = EpochKey::from_bytes(det("kdf/epoch-key"));
    push(
        "channel key",
        "channel_key",
        epoch.as_bytes(),
        info::CHANNEL.as_bytes(),
        *kdf::channel_key(&epoch).as_bytes(),
    );
    let mut identities = Vec::new();
    for (i, ak) in app_keys.iter().enumerate() {
        let seed = hkdf_raw(ak.as_bytes(), &[], info::IDENTITY_ED25519.as_bytes());
        let xsecret = hkdf_raw(ak.as_bytes(), &[], info::IDENTITY_X25519.as_bytes());
        push(
            &format!("identity Ed25519 seed (app key {i})"),
            "identity_ed25519_seed",
            ak.as_bytes(),
            info::IDENTITY_ED25519.as_bytes(),
            seed,
        );
        push(
            &format!("identity X25519 secret (app key {i})"),
            "identity_x25519_secret",
            ak.as_bytes(),
            info::IDENTITY_X25519.as_bytes(),
            xsecret,
        );
        let id = Identity::from_app_key(ak);
        assert_eq!(id.did(), Identity::from_secrets(&seed, &xsecret).did());
        identities.push(IdentityCase {
            name: format!("identity of app key {i}"),
            app_key: hx(ak.as_bytes()),
            ed25519_seed: hx(seed),
            ed25519_public: hx(id.did().public_key().as_bytes()),
            did: id.did().to_string(),
            x25519_secret: hx(xsecret),
            x25519_public: hx(id.agreement_public().as_bytes()),
        });
    }
    check_or_write(
        "kdf.json",
        &KdfFile {
            description: "Every HKDF-SHA256 derivation of kdf.rs: output = HKDF(ikm, salt = empty, info), 32 bytes. The app key's info is \"sealbase/v1/app\" ‖ client_id (UTF-8). identities: Ed25519 public key and did:key from the seed, X25519 public key from the secret (RFC 7748 clamping). The seal KDF (non-empty salt) is pinned in sealed.json.".into(),
            cases,
            identities,
        },
    );
}

#[test]
fn dek_wrap_vectors() {
    let mut cases = Vec::new();
    // RFC 3394 §4.6 (KEK and key data from the RFC).
    let rfc_kek = EpochKey::from_bytes(arr32(
        "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
    ));
    let rfc_key = arr32("00112233445566778899aabbccddeeff000102030405060708090a0b0c0d0e0f");
    let inputs = [
        (
            "RFC 3394 4.6 key data at epoch 0",
            "dek",
            0u32,
            rfc_kek.clone(),
            rfc_key,
        ),
        (
            "record key at epoch 1",
            "dek",
            1,
            EpochKey::from_bytes(det("dek-wrap/e1")),
            det("dek-wrap/dek"),
        ),
        (
            "file key at epoch 0x01020304",
            "file",
            0x0102_0304,
            EpochKey::from_bytes(det("dek-wrap/e2")),
            det("dek-wrap/file"),
        ),
        (
            "record key at epoch u32::MAX",
            "dek",
            u32::MAX,
            EpochKey::from_bytes(det("dek-wrap/e3")),
            det("dek-wrap/dek3"),
        ),
    ];
    let mut first = None;
    for (name, kind, epoch, ek, key) in inputs {
        let w = if kind == "dek" {
            dek::wrap_dek(epoch, &ek, &Dek::from_bytes(key))
        } else {
            dek::wrap_file_key(epoch, &ek, &FileKey::from_bytes(key))
        };
        if epoch == 1 {
            first = Some((w.to_bytes(), ek.clone()));
        }
        cases.push(DekWrapCase {
            name: name.into(),
            kind: kind.into(),
            epoch,
            epoch_key: hx(ek.as_bytes()),
            key: Some(hx(key)),
            wrapped: hx(w.to_bytes()),
            error: None,
        });
    }
    let (good, ek) = first.unwrap();
    let neg = |name: &str, ek: &EpochKey, wrapped: &[u8], error: &str| DekWrapCase {
        name: name.into(),
        kind: "dek".into(),
        epoch: 1,
        epoch_key: hx(ek.as_bytes()),
        key: None,
        wrapped: hx(wrapped),
        error: Some(error.into()),
    };
    cases.push(neg(
        "wrong epoch key",
        &EpochKey::from_bytes(det("dek-wrap/e2")),
        &good,
        "Unwrap",
    ));
    let mut t = good;
    t[10] ^= 0x04;
    cases.push(neg("tampered", &ek, &t, "Unwrap"));
    cases.push(neg("43 bytes", &ek, &good[..43], "BadLength(43)"));
    let mut long = good.to_vec();
    long.push(0);
    cases.push(neg("45 bytes", &ek, &long, "BadLength(45)"));
    check_or_write(
        "dek-wrap.json",
        &VectorFile {
            description: "Record/file key wrap: epoch (u32 BE) ‖ AES-KW(epoch_key, key) (RFC 3394, AES-256), 44 bytes. The server reads only the 4-byte epoch prefix. Negative cases name the DekWrapError of WrappedKey::from_bytes then unwrap.".into(),
            cases,
        },
    );
}

#[test]
fn ark_wrap_vectors() {
    let mut cases = Vec::new();
    let ark = AccountRootKey::from_bytes(det("ark-wrap/ark"));
    let mut export_key = det("kdf/export-key").to_vec();
    export_key.extend_from_slice(&det("kdf/export-key/2"));
    let from_password = kdf::ark_wrapping_key_from_export_key(&export_key);
    let from_recovery =
        kdf::ark_wrapping_key_from_recovery_key(&RecoveryKey::from_bytes(det("kdf/recovery-key")));
    let mut good = None;
    for (name, kek) in [
        (
            "wrapped under the OPAQUE-derived key of kdf.json",
            &from_password,
        ),
        (
            "wrapped under the recovery-derived key of kdf.json",
            &from_recovery,
        ),
    ] {
        let nonce = det12(&format!("ark-wrap/nonce/{name}"));
        let w = wrap::wrap_ark_with_nonce(kek, &ark, &nonce);
        good.get_or_insert(w);
        cases.push(ArkWrapCase {
            name: name.into(),
            kek: hx(kek.as_bytes()),
            nonce: hx(nonce),
            ark: Some(hx(ark.as_bytes())),
            wrapped: hx(w),
            error: None,
        });
    }
    let good = good.unwrap();
    let neg =
        |name: &str, kek: &sealbase_crypto::ArkWrappingKey, w: &[u8], error: &str| ArkWrapCase {
            name: name.into(),
            kek: hx(kek.as_bytes()),
            nonce: hx(w.get(1..13).unwrap_or(&[])),
            ark: None,
            wrapped: hx(w),
            error: Some(error.into()),
        };
    cases.push(neg(
        "wrong password",
        &from_recovery,
        &good,
        "Authentication",
    ));
    let mut t = good;
    t[20] ^= 1;
    cases.push(neg("tampered", &from_password, &t, "Authentication"));
    cases.push(neg(
        "60 bytes",
        &from_password,
        &good[..60],
        "BadLength(60)",
    ));
    let mut v = good;
    v[0] = 0;
    cases.push(neg(
        "version 0",
        &from_password,
        &v,
        "UnsupportedVersion(0)",
    ));
    check_or_write(
        "ark-wrap.json",
        &VectorFile {
            description: "ARK wrap: 0x01 ‖ nonce(12) ‖ AES-256-GCM(kek, ARK, aad = \"sealbase/v1/ark\"), 61 bytes. kek comes from kdf.json (OPAQUE export key or recovery key). Negative cases name the ArkWrapError of unwrap_ark.".into(),
            cases,
        },
    );
}

#[test]
fn recovery_key_vectors() {
    let mut cases = Vec::new();
    let keys = [
        ("all zeros", [0u8; 32]),
        ("all 0xff", [0xff; 32]),
        ("random-looking", det("recovery-key/1")),
    ];
    for (name, bytes) in keys {
        let shown = wrap::format_recovery_key(&RecoveryKey::from_bytes(bytes));
        cases.push(RecoveryKeyCase {
            name: name.into(),
            input: shown.to_string(),
            key: Some(hx(bytes)),
            canonical: true,
            error: None,
        });
    }
    let bytes = det("recovery-key/1");
    let shown = wrap::format_recovery_key(&RecoveryKey::from_bytes(bytes)).to_string();
    let accept = |name: &str, input: String| RecoveryKeyCase {
        name: name.into(),
        input,
        key: Some(hx(bytes)),
        canonical: false,
        error: None,
    };
    cases.push(accept(
        "groups separated by spaces",
        shown.replace('-', " "),
    ));
    cases.push(accept(
        "no separators, surrounding whitespace",
        format!(" \t{}\n", shown.replace('-', "")),
    ));
    cases.push(accept(
        "en dashes from a word processor",
        shown.replace('-', "\u{2013}"),
    ));
    let reject = |name: &str, input: String, error: String| RecoveryKeyCase {
        name: name.into(),
        input,
        key: None,
        canonical: false,
        error: Some(error),
    };
    // A substitution that stays inside the alphabet: a typo.
    let mut typo: Vec<char> = shown.chars().collect();
    typo[3] = if typo[3] == 'z' { 'y' } else { 'z' };
    cases.push(reject(
        "one character mistyped",
        typo.into_iter().collect(),
        "Checksum".into(),
    ));
    cases.push(reject(
        "one character missing",
        shown.chars().skip(1).collect(),
        "Checksum".into(),
    ));
    let lower = shown.to_lowercase().replace('l', "k");
    if lower != shown {
        cases.push(reject(
            "lower-cased (base58 is case-sensitive)",
            lower,
            "Checksum".into(),
        ));
    }
    cases.push(reject(
        "zero is not base58",
        format!("0{}", &shown[1..]),
        "InvalidCharacter { character: '0', position: 0 }".into(),
    ));
    cases.push(reject("empty", String::new(), "BadLength".into()));
    let v2 = bs58::encode(bytes).with_check_version(2).into_string();
    cases.push(reject("version byte 2", v2, "UnsupportedVersion(2)".into()));
    let short = bs58::encode(&bytes[..16])
        .with_check_version(1)
        .into_string();
    cases.push(reject("16-byte key", short, "BadLength".into()));
    for c in &cases {
        let parsed = wrap::parse_recovery_key(&c.input);
        match &c.error {
            None => assert_eq!(
                hx(parsed.unwrap().as_bytes()),
                *c.key.as_ref().unwrap(),
                "{}",
                c.name
            ),
            Some(e) => assert_eq!(error_name(&parsed.unwrap_err()), *e, "{}", c.name),
        }
    }
    check_or_write(
        "recovery-key.json",
        &VectorFile {
            description: "Recovery key display: base58check (bitcoin alphabet, double-SHA-256 checksum) of 0x01 ‖ key(32), in groups of 5 joined by '-'. Parsing ignores whitespace and dashes (ASCII and U+2010..U+2014, U+2212), nothing else. canonical = input is exactly format_recovery_key(key). Negative cases name the RecoveryKeyError.".into(),
            cases,
        },
    );
}

#[test]
fn sealed_vectors() {
    let mut cases = Vec::new();
    let recipient_secret = det("sealed/recipient");
    let recipient = StaticSecret::from(recipient_secret);
    let recipient_public = PublicKey::from(&recipient).to_bytes();
    let space = det_uuid("sealed/space");
    let epoch_key = EpochKey::from_bytes(det("sealed/epoch-key"));
    let inputs: [(&str, Vec<u8>, Vec<u8>); 3] = [
        (
            "epoch key for epoch 3",
            sealed::epoch_key_context(&space, 3),
            epoch_key.as_bytes().to_vec(),
        ),
        ("empty context, empty plaintext", vec![], vec![]),
        ("invitation payload", b"invitation".to_vec(), pattern(100)),
    ];
    let mut first = None;
    for (name, context, plaintext) in inputs {
        let eph_secret = det(&format!("sealed/ephemeral/{name}"));
        let eph = StaticSecret::from(eph_secret);
        let eph_public = PublicKey::from(&eph);
        let nonce = det12(&format!("sealed/nonce/{name}"));
        let boxed = sealed::seal_with_ephemeral(
            &AgreementPublicKey(recipient_public),
            &plaintext,
            &context,
            &eph,
            &nonce,
        )
        .unwrap();
        let shared = eph.diffie_hellman(&PublicKey::from(recipient_public));
        let salt = [eph_public.as_bytes().as_slice(), &recipient_public].concat();
        let key = hkdf_raw(shared.as_bytes(), &salt, info::SEAL.as_bytes());
        first.get_or_insert((boxed.clone(), context.clone()));
        cases.push(SealedCase {
            name: name.into(),
            recipient_secret: hx(recipient_secret),
            recipient_public: hx(recipient_public),
            ephemeral_secret: Some(hx(eph_secret)),
            ephemeral_public: hx(eph_public.as_bytes()),
            key: Some(hx(key)),
            nonce: hx(nonce),
            aad: hx([sealed::SEAL_AAD_PREFIX, &context].concat()),
            context: hx(&context),
            plaintext: Some(hx(&plaintext)),
            sealed: hx(&boxed),
            error: None,
        });
    }
    let (good, good_context) = first.unwrap();
    let neg =
        |name: &str, secret: [u8; 32], boxed: &[u8], context: &[u8], error: &str| SealedCase {
            name: name.into(),
            recipient_secret: hx(secret),
            recipient_public: hx(PublicKey::from(&StaticSecret::from(secret)).as_bytes()),
            ephemeral_secret: None,
            ephemeral_public: hx(boxed.get(1..33).unwrap_or(&[])),
            key: None,
            nonce: hx(boxed.get(33..45).unwrap_or(&[])),
            aad: hx([sealed::SEAL_AAD_PREFIX, context].concat()),
            context: hx(context),
            plaintext: None,
            sealed: hx(boxed),
            error: Some(error.into()),
        };
    cases.push(neg(
        "epoch 4 context",
        recipient_secret,
        &good,
        &sealed::epoch_key_context(&space, 4),
        "Authentication",
    ));
    cases.push(neg(
        "another recipient",
        det("sealed/other"),
        &good,
        &good_context,
        "Authentication",
    ));
    let mut t = good.clone();
    t[50] ^= 0x10;
    cases.push(neg(
        "tampered ciphertext",
        recipient_secret,
        &t,
        &good_context,
        "Authentication",
    ));
    let mut e = good.clone();
    e[5] ^= 0x01;
    cases.push(neg(
        "tampered ephemeral key",
        recipient_secret,
        &e,
        &good_context,
        "Authentication",
    ));
    cases.push(neg(
        "60 bytes",
        recipient_secret,
        &good[..60],
        &good_context,
        "Truncated",
    ));
    let mut v = good.clone();
    v[0] = 2;
    cases.push(neg(
        "version 2",
        recipient_secret,
        &v,
        &good_context,
        "UnsupportedVersion(2)",
    ));
    let mut low = good.clone();
    low[1..33].copy_from_slice(&[0; 32]);
    cases.push(neg(
        "low-order ephemeral key (zero)",
        recipient_secret,
        &low,
        &good_context,
        "NonContributory",
    ));
    check_or_write(
        "sealed.json",
        &VectorFile {
            description: "Sealed box: 0x01 ‖ eph_pub(32) ‖ nonce(12) ‖ AES-256-GCM(key, plaintext, aad = \"sealbase/v1/seal\" ‖ context), key = HKDF-SHA256(ikm = X25519(eph, recipient), salt = eph_pub ‖ recipient_pub, info = \"sealbase/v1/seal\"). Epoch keys use context \"epoch-key\" ‖ space(16) ‖ epoch u32 BE. Negative cases name the SealError of open.".into(),
            cases,
        },
    );
}

#[test]
fn did_vectors() {
    let mut cases = Vec::new();
    for (name, seed) in [
        ("seed of 32 zero bytes", [0u8; 32]),
        ("seed 0x01..", [1u8; 32]),
        ("derived seed", det("did/seed")),
    ] {
        let id = Identity::from_secrets(&seed, &[0; 32]);
        cases.push(DidCase {
            name: name.into(),
            did: id.did().to_string(),
            public_key: Some(hx(id.did().public_key().as_bytes())),
            error: None,
        });
    }
    let b58 = |b: &[u8]| format!("did:key:z{}", bs58::encode(b).into_string());
    let key = *Identity::from_secrets(&[1; 32], &[0; 32])
        .did()
        .public_key()
        .as_bytes();
    let mut x25519 = vec![0xec, 0x01];
    x25519.extend_from_slice(&key);
    let mut short = vec![0xed, 0x01];
    short.extend_from_slice(&key[..31]);
    let mut long = vec![0xed, 0x01];
    long.extend_from_slice(&key);
    long.push(0);
    // y = 2 is not on the curve (the RFC 8032 decoding check fails).
    let mut not_point = vec![0xed, 0x01];
    not_point.extend_from_slice(&{
        let mut y = [0u8; 32];
        y[0] = 2;
        y
    });
    let valid = b58(&{
        let mut v = vec![0xed, 0x01];
        v.extend_from_slice(&key);
        v
    });
    let invalid = [
        ("did:web", "did:web:example.com".to_string(), "NotDidKey"),
        (
            "base64url multibase",
            valid.replacen("did:key:z", "did:key:u", 1),
            "NotDidKey",
        ),
        (
            "upper-case method",
            valid.replacen("did:key", "DID:KEY", 1),
            "NotDidKey",
        ),
        ("0 is not base58", "did:key:z6Mk0".to_string(), "BadBase58"),
        ("X25519 multicodec", b58(&x25519), "UnsupportedKeyType"),
        ("31-byte key", b58(&short), "BadPublicKey"),
        ("33-byte key", b58(&long), "BadPublicKey"),
        ("not a curve point", b58(&not_point), "BadPublicKey"),
        (
            "overlong body",
            format!("{valid}{}", "1".repeat(40)),
            "BadPublicKey",
        ),
    ];
    for (name, did, error) in invalid {
        assert_eq!(
            error_name(&did.parse::<Did>().unwrap_err()),
            error,
            "{name}"
        );
        cases.push(DidCase {
            name: name.into(),
            did,
            public_key: None,
            error: Some(error.into()),
        });
    }
    check_or_write(
        "did.json",
        &VectorFile {
            description: "did:key for Ed25519: \"did:key:z\" ‖ base58btc(0xed 0x01 ‖ public key(32)). public_key is the Ed25519 key of Identity::from_secrets(seed, _) for valid cases; invalid cases name the IdentityError of parsing.".into(),
            cases,
        },
    );
}

#[test]
fn app_key_type_is_what_kdf_json_says() {
    // Guard against a kdf.json case silently naming the wrong function.
    let ak = AppKey::from_bytes([1; 32]);
    assert_eq!(
        kdf::personal_epoch_key(&ak).as_bytes(),
        &hkdf_raw(&[1; 32], &[], info::PERSONAL_EPOCH.as_bytes())
    );
}

/// `version ‖ epoch ‖ nonce ‖ AES-256-GCM(key, padded, aad)` with raw
/// AES-GCM (the layout of membership entries and channel payloads), for
/// ciphertexts `seal_entry_with_nonce` / `seal_channel_with_nonce` would
/// refuse to make.
fn raw_sealed(
    version: u8,
    key: &[u8; 32],
    epoch: u32,
    nonce: &[u8; 12],
    aad: &[u8],
    padded: &[u8],
) -> Vec<u8> {
    let cipher = aes_gcm::Aes256Gcm::new_from_slice(key).unwrap();
    let mut buf = padded.to_vec();
    let tag = cipher
        .encrypt_inout_detached(
            &aes_gcm::Nonce::from(*nonce),
            aad,
            buf.as_mut_slice().into(),
        )
        .unwrap();
    let mut out = vec![version];
    out.extend_from_slice(&epoch.to_be_bytes());
    out.extend_from_slice(nonce);
    out.extend_from_slice(&buf);
    out.extend_from_slice(&tag);
    out
}

fn cbor(value: &impl Serialize) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::into_writer(value, &mut out).unwrap();
    out
}

fn body_case(body: &EntryBody) -> MembershipBody {
    let mut c = MembershipBody {
        k: String::new(),
        name: None,
        member: None,
        x25519: None,
        handle: None,
        role: None,
        cap: None,
        revoked: None,
        epoch: None,
        members: None,
    };
    c.k = match body {
        EntryBody::Create { name, x25519 } => {
            c.name = Some(name.clone());
            c.x25519 = Some(hx(**x25519));
            "create"
        }
        EntryBody::Invite {
            member,
            x25519,
            handle,
            role,
            cap,
        } => {
            c.member = Some(member.to_string());
            c.x25519 = Some(hx(**x25519));
            c.handle = Some(handle.clone());
            c.role = Some(role.as_str().into());
            c.cap = Some(cap.clone());
            "invite"
        }
        EntryBody::Accept => "accept",
        EntryBody::Decline => "decline",
        EntryBody::Remove { member, revoked } => {
            c.member = Some(member.to_string());
            c.revoked = Some(revoked.iter().map(|h| hx(**h)).collect());
            "remove"
        }
        EntryBody::Rotate { epoch, members } => {
            c.epoch = Some(*epoch);
            c.members = Some(members.iter().map(ToString::to_string).collect());
            "rotate"
        }
    }
    .into();
    c
}

#[test]
fn membership_vectors() {
    let ident = |who: &str| {
        let seed = det(&format!("membership/{who}/ed25519"));
        let xsecret = det(&format!("membership/{who}/x25519"));
        (Identity::from_secrets(&seed, &xsecret), seed, xsecret)
    };
    let root = ident("root");
    let bob = ident("bob");
    let carol = ident("carol");
    let space = det_uuid("membership/space");
    let space_name = "Trip to Lisbon";
    let epoch_keys = [
        EpochKey::from_bytes(det("membership/epoch-key/1")),
        EpochKey::from_bytes(det("membership/epoch-key/2")),
        EpochKey::from_bytes(det("membership/epoch-key/3")),
    ];
    let epoch_key = |epoch: u32| &epoch_keys[epoch as usize - 1];

    // The root holds an admin token to itself and delegates to invitees.
    let exp = 1_900_000_000;
    let mut rng = ChaCha20Rng::from_seed(det("membership/capability-rng"));
    let root_token = CapabilityToken::issue_root(
        &root.0,
        &root.0.did(),
        space,
        Capability::Admin,
        exp,
        &mut rng,
    )
    .unwrap();
    let bob_token = root_token
        .delegate(&root.0, &bob.0.did(), Capability::Write, exp, &mut rng)
        .unwrap();
    let carol_token = root_token
        .delegate(&root.0, &carol.0.did(), Capability::Admin, exp, &mut rng)
        .unwrap();

    let mut cases = Vec::new();
    let mut entry = |name: &str,
                     author: &(Identity, [u8; 32], [u8; 32]),
                     prev: Option<EntryHash>,
                     epoch: u32,
                     body: EntryBody| {
        let (id, seed, xsecret) = author;
        let ek = epoch_key(epoch);
        let key = hkdf_raw(ek.as_bytes(), &[], info::MEMBERSHIP.as_bytes());
        assert_eq!(*kdf::membership_key(ek), key);
        let position = [
            space.as_bytes().as_slice(),
            &prev.unwrap_or([0; 32]),
            &epoch.to_be_bytes(),
        ]
        .concat();
        let aad = [b"sealbase/v1/membership".as_slice(), &position].concat();
        assert_eq!(membership::entry_aad(&space, prev.as_ref(), epoch), aad);
        let body_cbor = cbor(&body);
        let signed = SignedEntry::sign(id, &space, prev.as_ref(), epoch, body.clone()).unwrap();
        let message = [
            b"sealbase/v1/membership-sig".as_slice(),
            &position,
            &body_cbor,
        ]
        .concat();
        assert_eq!(signed.signed_message(&space, prev.as_ref(), epoch), message);
        assert_eq!(*signed.signature(), id.sign(&message));
        let signed_cbor = signed.to_cbor().unwrap();
        let nonce = det12(&format!("membership/nonce/{name}"));
        let ct =
            membership::seal_entry_with_nonce(ek, epoch, &space, prev.as_ref(), &signed, &nonce)
                .unwrap();
        let padded = envelope::pad(&signed_cbor).unwrap();
        assert_eq!(
            raw_sealed(
                membership::ENTRY_VERSION,
                &key,
                epoch,
                &nonce,
                &aad,
                &padded
            ),
            ct
        );
        let hash = membership::entry_hash(&ct);
        assert_eq!(hash, <[u8; 32]>::from(Sha256::digest(&ct)));
        cases.push(MembershipEntryCase {
            name: name.into(),
            author_ed25519_seed: hx(seed),
            author_x25519_secret: hx(xsecret),
            author_did: id.did().to_string(),
            space: space.to_string(),
            prev_hash: prev.map(hx),
            epoch,
            epoch_key: hx(ek.as_bytes()),
            membership_key: hx(key),
            aad: hx(&aad),
            nonce: hx(nonce),
            body: body_case(&body),
            body_cbor: hx(&body_cbor),
            signed_message: hx(&message),
            signature: hx(signed.signature()),
            signed_cbor: hx(&*signed_cbor),
            ciphertext: hx(&ct),
            entry_hash: hx(hash),
        });
        (hash, ct, signed)
    };

    // One log: create, invite bob, rotate to 2, bob accepts, bob removed,
    // rotate to 3; plus a decline in place of the accept.
    let (h1, genesis, _) = entry(
        "genesis create",
        &root,
        None,
        1,
        EntryBody::Create {
            name: space_name.into(),
            x25519: ByteArray::new(*root.0.agreement_public().as_bytes()),
        },
    );
    let (h2, _, _) = entry(
        "invite bob as writer",
        &root,
        Some(h1),
        1,
        EntryBody::Invite {
            member: bob.0.did(),
            x25519: ByteArray::new(*bob.0.agreement_public().as_bytes()),
            handle: "bob".into(),
            role: Capability::Write,
            cap: bob_token.as_str().into(),
        },
    );
    let (h3, _, _) = entry(
        "rotate to epoch 2",
        &root,
        Some(h2),
        2,
        EntryBody::Rotate {
            epoch: 2,
            members: vec![root.0.did(), bob.0.did()],
        },
    );
    let (h4, accept, accept_signed) = entry("bob accepts", &bob, Some(h3), 2, EntryBody::Accept);
    entry(
        "bob declines (instead of accepting)",
        &bob,
        Some(h3),
        2,
        EntryBody::Decline,
    );
    let (h5, _, _) = entry(
        "remove bob",
        &root,
        Some(h4),
        2,
        EntryBody::Remove {
            member: bob.0.did(),
            revoked: vec![ByteArray::new(*bob_token.hash().as_bytes())],
        },
    );
    entry(
        "rotate to epoch 3",
        &root,
        Some(h5),
        3,
        EntryBody::Rotate {
            epoch: 3,
            members: vec![root.0.did()],
        },
    );

    let mut reject_cases = Vec::new();
    let mut reject =
        |name: &str, ek: &EpochKey, space: &Uuid, prev: Option<EntryHash>, ct: &[u8]| {
            let error = membership::open_entry(ek, space, prev.as_ref(), ct).unwrap_err();
            reject_cases.push(MembershipRejectCase {
                name: name.into(),
                space: space.to_string(),
                prev_hash: prev.map(hx),
                epoch_key: hx(ek.as_bytes()),
                ciphertext: hx(ct),
                error: membership_error_name(&error),
            });
            error
        };
    use MembershipError as E;
    let e2 = epoch_key(2);
    assert_eq!(
        reject("wrong prev hash", e2, &space, Some(h2), &accept),
        E::Authentication
    );
    assert_eq!(
        reject(
            "genesis read after an entry",
            epoch_key(1),
            &space,
            Some(h1),
            &genesis
        ),
        E::Authentication
    );
    assert_eq!(
        reject("non-genesis read as genesis", e2, &space, None, &accept),
        E::Authentication
    );
    assert_eq!(
        reject(
            "another space",
            e2,
            &det_uuid("membership/other-space"),
            Some(h3),
            &accept
        ),
        E::Authentication
    );
    assert_eq!(
        reject(
            "another epoch's key",
            epoch_key(1),
            &space,
            Some(h3),
            &accept
        ),
        E::Authentication
    );
    let mut relabelled = accept.clone();
    relabelled[4] ^= 0x01;
    assert_eq!(
        reject(
            "epoch byte flipped (2 to 3)",
            e2,
            &space,
            Some(h3),
            &relabelled
        ),
        E::Authentication
    );
    let mut tag = accept.clone();
    *tag.last_mut().unwrap() ^= 0x80;
    assert_eq!(
        reject("tag bit flipped", e2, &space, Some(h3), &tag),
        E::Authentication
    );
    let mut v2 = accept.clone();
    v2[0] = 0x02;
    assert_eq!(
        reject("version byte 0x02", e2, &space, Some(h3), &v2),
        E::UnsupportedVersion(2)
    );
    assert_eq!(
        reject("truncated to 32 bytes", e2, &space, Some(h3), &accept[..32]),
        E::Truncated
    );
    assert_eq!(
        reject("truncated to 4 bytes", e2, &space, Some(h3), &accept[..4]),
        E::Truncated
    );
    // Authentic ciphertexts (raw AES-GCM) whose plaintext must be refused.
    let key2 = *kdf::membership_key(e2);
    let aad3 = membership::entry_aad(&space, Some(&h3), 2);
    let nonce = det12("membership/nonce/raw");
    let raw = |plain: &[u8]| {
        raw_sealed(
            membership::ENTRY_VERSION,
            &key2,
            2,
            &nonce,
            &aad3,
            &envelope::pad(plain).unwrap(),
        )
    };
    // Signed at h2's position, sealed at h3's.
    let elsewhere = SignedEntry::sign(&bob.0, &space, Some(&h2), 2, EntryBody::Accept).unwrap();
    assert_eq!(
        reject(
            "signed for another position",
            e2,
            &space,
            Some(h3),
            &raw(&elsewhere.to_cbor().unwrap())
        ),
        E::BadSignature
    );
    let signed_value: ciborium::Value =
        ciborium::from_reader(&accept_signed.to_cbor().unwrap()[..]).unwrap();
    let set = |key: &str, new: ciborium::Value| {
        let mut v = signed_value.clone();
        for (k, val) in v.as_map_mut().unwrap() {
            if k.as_text() == Some(key) {
                *val = new.clone();
            }
        }
        cbor(&v)
    };
    assert_eq!(
        reject(
            "signed entry with v: 2",
            e2,
            &space,
            Some(h3),
            &raw(&set("v", 2.into()))
        ),
        E::UnsupportedPayloadVersion(2)
    );
    let unknown_kind = cbor(&ciborium::Value::Map(vec![("k".into(), "promote".into())]));
    assert!(matches!(
        reject(
            "unknown body kind",
            e2,
            &space,
            Some(h3),
            &raw(&set("b", ciborium::Value::Bytes(unknown_kind)))
        ),
        E::Malformed(_)
    ));
    let mut bad_padding = envelope::pad(&accept_signed.to_cbor().unwrap())
        .unwrap()
        .to_vec();
    *bad_padding.last_mut().unwrap() = 1;
    assert!(matches!(
        reject(
            "non-zero padding byte",
            e2,
            &space,
            Some(h3),
            &raw_sealed(
                membership::ENTRY_VERSION,
                &key2,
                2,
                &nonce,
                &aad3,
                &bad_padding
            )
        ),
        E::Padding(_)
    ));

    let mut invitations = Vec::new();
    let mut invitation_reject_cases = Vec::new();
    let mut first = None;
    for (name, invitee, role, token, keys) in [
        (
            "bob invited as writer at epoch 1",
            &bob,
            Capability::Write,
            &bob_token,
            vec![(1u32, epoch_key(1))],
        ),
        (
            "carol invited as admin after two rotations",
            &carol,
            Capability::Admin,
            &carol_token,
            vec![(1, epoch_key(1)), (2, epoch_key(2)), (3, epoch_key(3))],
        ),
    ] {
        let id = det_uuid(&format!("membership/invitation/{name}"));
        let payload = InvitationPayload {
            space,
            name: space_name.into(),
            inviter: root.0.did(),
            role,
            cap: token.as_str().into(),
            keys: keys.iter().map(|(e, k)| (*e, (*k).clone())).collect(),
        };
        let payload_cbor = membership::invitation_to_cbor(&payload).unwrap();
        let context = membership::invitation_context(&id);
        assert_eq!(context, [b"invitation".as_slice(), id.as_bytes()].concat());
        let eph_secret = det(&format!("membership/invitation-ephemeral/{name}"));
        let nonce = det12(&format!("membership/invitation-nonce/{name}"));
        let recipient = invitee.0.agreement_public();
        let boxed = sealed::seal_with_ephemeral(
            &recipient,
            &payload_cbor,
            &context,
            &StaticSecret::from(eph_secret),
            &nonce,
        )
        .unwrap();
        assert_eq!(
            membership::open_invitation(invitee.0.agreement_secret(), &id, &boxed).unwrap(),
            payload
        );
        first.get_or_insert((id, invitee.2, boxed.clone(), eph_secret, recipient));
        invitations.push(InvitationCase {
            name: name.into(),
            invitation: id.to_string(),
            space: space.to_string(),
            space_name: space_name.into(),
            inviter: root.0.did().to_string(),
            role: role.as_str().into(),
            cap: token.as_str().into(),
            keys: keys
                .iter()
                .map(|(e, k)| InvitationKey {
                    epoch: *e,
                    key: hx(k.as_bytes()),
                })
                .collect(),
            payload_cbor: hx(&*payload_cbor),
            recipient_secret: hx(invitee.2),
            recipient_public: hx(recipient.as_bytes()),
            ephemeral_secret: hx(eph_secret),
            nonce: hx(nonce),
            context: hx(&context),
            sealed: hx(&boxed),
        });
    }
    let (id, secret, boxed, eph_secret, recipient) = first.unwrap();
    let mut reject_invitation = |name: &str, id: &Uuid, secret: [u8; 32], boxed: &[u8]| {
        let error =
            membership::open_invitation(&StaticSecret::from(secret), id, boxed).unwrap_err();
        invitation_reject_cases.push(InvitationRejectCase {
            name: name.into(),
            invitation: id.to_string(),
            recipient_secret: hx(secret),
            sealed: hx(boxed),
            error: membership_error_name(&error),
        });
        error
    };
    assert_eq!(
        reject_invitation(
            "another invitation id",
            &det_uuid("membership/other-invitation"),
            secret,
            &boxed
        ),
        E::Seal(sealed::SealError::Authentication)
    );
    assert_eq!(
        reject_invitation("another recipient", &id, carol.2, &boxed),
        E::Seal(sealed::SealError::Authentication)
    );
    let opened = sealed::open(
        &StaticSecret::from(secret),
        &boxed,
        &membership::invitation_context(&id),
    )
    .unwrap();
    let payload_value: ciborium::Value = ciborium::from_reader(opened.as_slice()).unwrap();
    let mut v2 = payload_value;
    for (k, val) in v2.as_map_mut().unwrap() {
        if k.as_text() == Some("v") {
            *val = 2.into();
        }
    }
    let v2_boxed = sealed::seal_with_ephemeral(
        &recipient,
        &cbor(&v2),
        &membership::invitation_context(&id),
        &StaticSecret::from(eph_secret),
        &det12("membership/invitation-nonce/v2"),
    )
    .unwrap();
    assert_eq!(
        reject_invitation("payload with v: 2", &id, secret, &v2_boxed),
        E::UnsupportedPayloadVersion(2)
    );

    check_or_write(
        "membership.json",
        &MembershipFile {
            description: "Membership log entries and invitations (docs/protocol.md, Membership entry and invitation formats). Entry: 0x01 ‖ epoch (u32 BE) ‖ nonce(12) ‖ AES-256-GCM(membership_key, pad(signed_cbor), aad), membership_key = HKDF-SHA256(ikm = epoch_key, salt = empty, info = \"sealbase/v1/membership\"), aad = \"sealbase/v1/membership\" ‖ space(16) ‖ prev_hash(32, zeros when null) ‖ epoch (u32 BE); pad is the record envelope's. signed_cbor = {a: author did:key, b: body_cbor, v: 1, sig: Ed25519(signed_message)}, signed_message = \"sealbase/v1/membership-sig\" ‖ space ‖ prev_hash ‖ epoch ‖ body_cbor. body_cbor is the CBOR map of body, kind in key k. entry_hash = SHA-256(ciphertext); the cases form one chain (the decline replaces the accept). reject_cases name the MembershipError of open_entry. Invitation: sealed box (sealed.json) of payload_cbor = {c: cap, i: inviter, k: [{e: epoch, k: key}], n: space name, r: role, s: space(16), v: 1} to the invitee's X25519 key, context = \"invitation\" ‖ invitation id(16); invitation_reject_cases name the MembershipError of open_invitation.".into(),
            cases,
            reject_cases,
            invitations,
            invitation_reject_cases,
        },
    );
}

/// The channel payload's inner map, built from its parts.
fn channel_map(author: &Did, data: &[u8], kind: u8, signature: &[u8]) -> ciborium::Value {
    use ciborium::Value;
    Value::Map(vec![
        ("a".into(), Value::Text(author.to_string())),
        ("d".into(), Value::Bytes(data.to_vec())),
        ("k".into(), Value::Integer(kind.into())),
        ("s".into(), Value::Bytes(signature.to_vec())),
    ])
}

fn channel_message(space: &Uuid, kind: ChannelKind, epoch: u32, data: &[u8]) -> Vec<u8> {
    [
        b"sealbase/v1/channel-sig".as_slice(),
        space.as_bytes(),
        &[kind.as_byte()],
        &epoch.to_be_bytes(),
        data,
    ]
    .concat()
}

#[test]
fn channel_vectors() {
    let ident = |who: &str| {
        let seed = det(&format!("channel/{who}/ed25519"));
        let xsecret = det(&format!("channel/{who}/x25519"));
        (Identity::from_secrets(&seed, &xsecret), seed, xsecret)
    };
    let alice = ident("alice");
    let bob = ident("bob");
    let space = det_uuid("channel/space");
    let epoch_key = |epoch: u32| EpochKey::from_bytes(det(&format!("channel/epoch-key/{epoch}")));

    let mut cases = Vec::new();
    let mut positive = |name: &str,
                        author: &(Identity, [u8; 32], [u8; 32]),
                        epoch: u32,
                        kind: ChannelKind,
                        data: &[u8]| {
        let (id, seed, xsecret) = author;
        let ek = epoch_key(epoch);
        let key = hkdf_raw(ek.as_bytes(), &[], info::CHANNEL.as_bytes());
        assert_eq!(kdf::channel_key(&ek).as_bytes(), &key);
        let aad = [
            b"sealbase/v1/channel".as_slice(),
            space.as_bytes(),
            &[kind.as_byte()],
            &epoch.to_be_bytes(),
        ]
        .concat();
        assert_eq!(channel::channel_aad(&space, kind, epoch), aad);
        let message = channel_message(&space, kind, epoch, data);
        let signature = id.sign(&message);
        let inner = cbor(&channel_map(&id.did(), data, kind.as_byte(), &signature));
        let nonce = det12(&format!("channel/nonce/{name}"));
        let blob =
            channel::seal_channel_with_nonce(id, &space, epoch, &ek, kind, data, nonce).unwrap();
        let padded = envelope::pad(&inner).unwrap();
        assert_eq!(
            raw_sealed(channel::CHANNEL_VERSION, &key, epoch, &nonce, &aad, &padded),
            blob
        );
        let opened = channel::open_channel(&ek, &space, kind, &blob).unwrap();
        assert_eq!(opened.author, id.did());
        assert_eq!(opened.data, data);
        cases.push(ChannelCase {
            name: name.into(),
            author_ed25519_seed: hx(seed),
            author_x25519_secret: hx(xsecret),
            author_did: id.did().to_string(),
            space: space.to_string(),
            epoch,
            epoch_key: hx(ek.as_bytes()),
            channel_key: hx(key),
            kind: channel_kind_name(kind),
            data: hx(data),
            aad: hx(&aad),
            signed_message: hx(&message),
            signature: hx(signature),
            cbor: hx(&inner),
            nonce: hx(nonce),
            blob: hx(&blob),
        });
        blob
    };
    let presence = positive(
        "presence, short",
        &alice,
        1,
        ChannelKind::Presence,
        br#"{"cursor":[3,14],"status":"editing"}"#,
    );
    positive("event, empty data", &bob, 2, ChannelKind::Event, b"");
    positive(
        "event of 300 bytes spills into the 512 bucket",
        &alice,
        2,
        ChannelKind::Event,
        &pattern(300),
    );
    positive(
        "presence at epoch 4000000000",
        &bob,
        4_000_000_000,
        ChannelKind::Presence,
        b"away",
    );

    let mut reject_cases = Vec::new();
    let mut reject = |name: &str, ek: &EpochKey, space: &Uuid, kind: ChannelKind, blob: &[u8]| {
        let error = channel::open_channel(ek, space, kind, blob).unwrap_err();
        reject_cases.push(ChannelRejectCase {
            name: name.into(),
            space: space.to_string(),
            kind: channel_kind_name(kind),
            epoch_key: hx(ek.as_bytes()),
            blob: hx(blob),
            error: error_name(&error),
        });
        error
    };
    use ChannelError as E;
    let (e1, p) = (epoch_key(1), ChannelKind::Presence);
    assert_eq!(
        reject("another epoch's key", &epoch_key(2), &space, p, &presence),
        E::Authentication
    );
    assert_eq!(
        reject(
            "another space",
            &e1,
            &det_uuid("channel/other-space"),
            p,
            &presence
        ),
        E::Authentication
    );
    assert_eq!(
        reject(
            "presence opened as an event",
            &e1,
            &space,
            ChannelKind::Event,
            &presence
        ),
        E::Authentication
    );
    let mut relabelled = presence.clone();
    relabelled[4] = 2;
    assert_eq!(
        reject("header epoch changed (1 to 2)", &e1, &space, p, &relabelled),
        E::Authentication
    );
    assert_eq!(
        reject(
            "header epoch changed, opened with that epoch's key",
            &epoch_key(2),
            &space,
            p,
            &relabelled
        ),
        E::Authentication
    );
    let mut flipped = presence.clone();
    flipped[40] ^= 0x01;
    assert_eq!(
        reject("ciphertext bit flipped", &e1, &space, p, &flipped),
        E::Authentication
    );
    let mut tag = presence.clone();
    *tag.last_mut().unwrap() ^= 0x80;
    assert_eq!(
        reject("tag bit flipped", &e1, &space, p, &tag),
        E::Authentication
    );
    assert_eq!(
        reject("truncated to 32 bytes", &e1, &space, p, &presence[..32]),
        E::Truncated
    );
    assert_eq!(reject("empty", &e1, &space, p, &[]), E::Truncated);
    let mut v2 = presence.clone();
    v2[0] = 0x02;
    assert_eq!(reject("version 2", &e1, &space, p, &v2), E::Version(2));

    // Authentic ciphertexts (raw AES-GCM under the channel key, as any
    // member could make) whose plaintext must be refused.
    let key1 = hkdf_raw(e1.as_bytes(), &[], info::CHANNEL.as_bytes());
    let aad = channel::channel_aad(&space, p, 1);
    let nonce = det12("channel/nonce/raw");
    let raw_padded =
        |padded: &[u8]| raw_sealed(channel::CHANNEL_VERSION, &key1, 1, &nonce, &aad, padded);
    let raw = |plain: &[u8]| raw_padded(&envelope::pad(plain).unwrap());
    let data = b"here".as_slice();
    let signed = |id: &Identity, space: &Uuid, kind: ChannelKind, epoch: u32, data: &[u8]| {
        id.sign(&channel_message(space, kind, epoch, data))
    };
    let good_sig = signed(&alice.0, &space, p, 1, data);
    let good = channel_map(&alice.0.did(), data, 1, &good_sig);
    assert_eq!(
        channel::open_channel(&e1, &space, p, &raw(&cbor(&good)))
            .unwrap()
            .data,
        data
    );
    let edit = |f: &dyn Fn(&mut Vec<(ciborium::Value, ciborium::Value)>)| {
        let mut v = good.clone();
        f(v.as_map_mut().unwrap());
        cbor(&v)
    };
    let set = |key: &'static str, new: ciborium::Value| {
        edit(&move |m| {
            for (k, v) in m.iter_mut() {
                if k.as_text() == Some(key) {
                    *v = new.clone();
                }
            }
        })
    };
    let event_sig = signed(&alice.0, &space, ChannelKind::Event, 1, data);
    assert_eq!(
        reject(
            "inner kind event under presence associated data",
            &e1,
            &space,
            p,
            &raw(&cbor(&channel_map(&alice.0.did(), data, 2, &event_sig)))
        ),
        E::Kind
    );
    assert_eq!(
        reject(
            "author replaced by another member",
            &e1,
            &space,
            p,
            &raw(&set("a", bob.0.did().to_string().into()))
        ),
        E::Signature
    );
    assert_eq!(
        reject(
            "data replaced",
            &e1,
            &space,
            p,
            &raw(&set("d", ciborium::Value::Bytes(b"gone".to_vec())))
        ),
        E::Signature
    );
    assert_eq!(
        reject(
            "signature made for another epoch",
            &e1,
            &space,
            p,
            &raw(&cbor(&channel_map(
                &alice.0.did(),
                data,
                1,
                &signed(&alice.0, &space, p, 2, data)
            )))
        ),
        E::Signature
    );
    assert_eq!(
        reject(
            "signature made for another space",
            &e1,
            &space,
            p,
            &raw(&cbor(&channel_map(
                &alice.0.did(),
                data,
                1,
                &signed(&alice.0, &det_uuid("channel/other-space"), p, 1, data)
            )))
        ),
        E::Signature
    );
    assert_eq!(
        reject(
            "signature made for an event",
            &e1,
            &space,
            p,
            &raw(&cbor(&channel_map(&alice.0.did(), data, 1, &event_sig)))
        ),
        E::Signature
    );
    assert_eq!(
        reject(
            "author is not a did:key",
            &e1,
            &space,
            p,
            &raw(&set("a", "did:web:example.com".into()))
        ),
        E::Did(sealbase_crypto::IdentityError::NotDidKey)
    );
    let encoding = |name: &str, plain: Vec<u8>| {
        let e = channel::open_channel(&e1, &space, p, &raw(&plain)).unwrap_err();
        assert!(matches!(e, E::Encoding(_)), "{name}: {e:?}");
        plain
    };
    for (name, plain) in [
        ("unknown key", edit(&|m| m.push(("x".into(), 1.into())))),
        (
            "missing signature",
            edit(&|m| m.retain(|(k, _)| k.as_text() != Some("s"))),
        ),
        ("data as text", set("d", "here".into())),
        (
            "signature of 63 bytes",
            set("s", ciborium::Value::Bytes(good_sig[..63].to_vec())),
        ),
        ("keys out of canonical order", edit(&|m| m.swap(0, 1))),
        (
            "duplicate key",
            edit(&|m| {
                let first = m[0].clone();
                m.push(first);
            }),
        ),
        ("not a map", cbor(&ciborium::Value::Array(vec![]))),
    ] {
        let plain = encoding(name, plain);
        reject(name, &e1, &space, p, &raw(&plain));
    }
    let mut trailing = cbor(&good);
    trailing.push(0xf6);
    reject(
        "trailing bytes",
        &e1,
        &space,
        p,
        &raw(&encoding("trailing", trailing)),
    );
    let mut nonzero = envelope::pad(&cbor(&good)).unwrap().to_vec();
    nonzero[255] = 1;
    assert_eq!(
        reject(
            "non-zero padding byte",
            &e1,
            &space,
            p,
            &raw_padded(&nonzero)
        ),
        E::Padding(envelope::PaddingError::NonZeroPadding)
    );
    let mut long_prefix = envelope::pad(&cbor(&good)).unwrap().to_vec();
    long_prefix[..4].copy_from_slice(&253u32.to_be_bytes());
    assert_eq!(
        reject(
            "length prefix past the body",
            &e1,
            &space,
            p,
            &raw_padded(&long_prefix)
        ),
        E::Padding(envelope::PaddingError::LengthPrefix)
    );
    assert_eq!(
        reject(
            "body of 300 bytes is no bucket",
            &e1,
            &space,
            p,
            &raw_padded(&[0; 300])
        ),
        E::Padding(envelope::PaddingError::BucketSize)
    );

    check_or_write(
        "channel.json",
        &ChannelFile {
            description: "Channel payload v1 (presence and ephemeral events): 0x01 ‖ epoch (u32 BE) ‖ nonce(12) ‖ AES-256-GCM(channel_key, pad(cbor), aad), channel_key = HKDF-SHA256(ikm = epoch_key, salt = empty, info = \"sealbase/v1/channel\"), aad = \"sealbase/v1/channel\" ‖ space(16) ‖ kind (0x01 presence, 0x02 event) ‖ epoch (u32 BE); pad is the record envelope's. cbor = canonical map {a: author did:key, d: data, k: kind byte, s: Ed25519(signed_message)}, signed_message = \"sealbase/v1/channel-sig\" ‖ space ‖ kind ‖ epoch ‖ data. reject_cases name the ChannelError of open_channel(epoch_key, space, kind, blob).".into(),
            cases,
            reject_cases,
        },
    );
}

/// Every sealed chunk of a file, made with the streaming sealer.
fn file_chunks(sealer: &mut FileSealer, plain: &[u8]) -> Vec<Vec<u8>> {
    if plain.is_empty() {
        return vec![sealer.seal_chunk(&[], true).unwrap()];
    }
    let n = plain.len().div_ceil(file::FILE_CHUNK_LEN);
    plain
        .chunks(file::FILE_CHUNK_LEN)
        .enumerate()
        .map(|(i, c)| sealer.seal_chunk(c, i + 1 == n).unwrap())
        .collect()
}

#[test]
fn file_vectors() {
    let space = det_uuid("file/space");
    let file_id = det_uuid("file/file");
    let chunk = file::FILE_CHUNK_LEN;
    let mut cases = Vec::new();
    let mut sealed_chunks: Vec<(String, Vec<u8>, Vec<Vec<u8>>)> = Vec::new();
    for (name, plain, as_hex) in [
        ("empty file", Vec::new(), true),
        ("short text", b"hello, sealbase file".to_vec(), true),
        ("exactly one chunk", pattern(chunk), false),
        ("two chunks and 5 bytes", pattern(2 * chunk + 5), false),
    ] {
        let key = FileKey::from_bytes(det(&format!("file/key/{name}")));
        let prefix: [u8; 8] = det(&format!("file/prefix/{name}"))[..8].try_into().unwrap();
        let mut sealer = FileSealer::new_with_prefix(&key, &space, &file_id, prefix);
        let header = sealer.header();
        assert_eq!(header[0], 1);
        assert_eq!(header[1..], prefix);
        let chunks = file_chunks(&mut sealer, &plain);
        let body = [header.to_vec(), chunks.concat()].concat();
        assert_eq!(
            file::seal_file(&key, &space, &file_id, &plain, &mut FixedPrefix(prefix)).unwrap(),
            body
        );
        assert_eq!(body.len() as u64, file::sealed_file_len(plain.len() as u64));
        assert_eq!(
            *file::open_file(&key, &space, &file_id, &body).unwrap(),
            plain
        );
        let n = chunks.len();
        let chunk_cases = chunks
            .iter()
            .enumerate()
            .map(|(i, sealed)| {
                let index = u32::try_from(i).unwrap();
                let last = i + 1 == n;
                let nonce = [prefix.as_slice(), &index.to_be_bytes()].concat();
                let aad = [
                    b"sealbase/v1/file".as_slice(),
                    space.as_bytes(),
                    file_id.as_bytes(),
                    &index.to_be_bytes(),
                    &[u8::from(last)],
                ]
                .concat();
                assert_eq!(file::file_chunk_aad(&space, &file_id, index, last), aad);
                // Independently: raw AES-GCM of this chunk's plaintext.
                let part = &plain[(i * chunk).min(plain.len())..((i + 1) * chunk).min(plain.len())];
                let cipher = aes_gcm::Aes256Gcm::new_from_slice(key.as_bytes()).unwrap();
                let mut buf = part.to_vec();
                let tag = cipher
                    .encrypt_inout_detached(
                        &aes_gcm::Nonce::from(<[u8; 12]>::try_from(nonce.as_slice()).unwrap()),
                        &aad,
                        buf.as_mut_slice().into(),
                    )
                    .unwrap();
                buf.extend_from_slice(&tag);
                assert_eq!(&buf, sealed);
                FileChunkCase {
                    index,
                    last,
                    nonce: hx(&nonce),
                    aad: hx(&aad),
                    sealed_len: sealed.len(),
                    sealed_sha256: hx(Sha256::digest(sealed)),
                    sealed: (sealed.len() < file::SEALED_CHUNK_LEN).then(|| hx(sealed)),
                }
            })
            .collect();
        cases.push(FileCase {
            name: name.into(),
            key: hx(key.as_bytes()),
            space: space.to_string(),
            file: file_id.to_string(),
            prefix: hx(prefix),
            plain_len: plain.len() as u64,
            plaintext: as_hex.then(|| hx(&plain)),
            plaintext_sha256: hx(Sha256::digest(&plain)),
            header: hx(header),
            chunks: chunk_cases,
            sealed_len: body.len() as u64,
            sealed_sha256: hx(Sha256::digest(&body)),
        });
        sealed_chunks.push((name.to_owned(), header.to_vec(), chunks));
    }

    let find = |name: &str| {
        let (_, header, chunks) = sealed_chunks.iter().find(|(n, ..)| n == name).unwrap();
        let key = FileKey::from_bytes(det(&format!("file/key/{name}")));
        (key, header.clone(), chunks.clone())
    };
    let bytes = |b: &[u8]| FilePart {
        hex: Some(hx(b)),
        case: None,
        chunk: None,
    };
    let of = |case: &str, chunk: u32| FilePart {
        hex: None,
        case: Some(case.into()),
        chunk: Some(chunk),
    };
    let assemble = |parts: &[FilePart]| -> Vec<u8> {
        parts
            .iter()
            .flat_map(|p| match (&p.hex, &p.case, p.chunk) {
                (Some(h), None, None) => hex::decode(h).unwrap(),
                (None, Some(c), Some(i)) => find(c).2[i as usize].clone(),
                _ => unreachable!(),
            })
            .collect()
    };
    let mut reject_cases = Vec::new();
    let mut reject =
        |name: &str, key: &FileKey, space: &Uuid, file_id: &Uuid, parts: Vec<FilePart>| {
            let error = file::open_file(key, space, file_id, &assemble(&parts)).unwrap_err();
            reject_cases.push(FileRejectCase {
                name: name.into(),
                key: hx(key.as_bytes()),
                space: space.to_string(),
                file: file_id.to_string(),
                parts,
                error: error_name(&error),
            });
            error
        };
    use FileError as E;
    let (short_key, short_header, short_chunks) = find("short text");
    let short = || vec![bytes(&short_header), of("short text", 0)];
    assert_eq!(
        reject(
            "wrong file key",
            &FileKey::from_bytes(det("file/other-key")),
            &space,
            &file_id,
            short()
        ),
        E::Authentication
    );
    let other = det_uuid("file/other");
    assert_eq!(
        reject("another file id", &short_key, &space, &other, short()),
        E::Authentication
    );
    assert_eq!(
        reject("another space", &short_key, &other, &file_id, short()),
        E::Authentication
    );
    assert_eq!(
        reject(
            "space and file id swapped",
            &short_key,
            &file_id,
            &space,
            short()
        ),
        E::Authentication
    );
    let mut v2 = short_header.clone();
    v2[0] = 2;
    assert_eq!(
        reject(
            "version 2",
            &short_key,
            &space,
            &file_id,
            vec![bytes(&v2), of("short text", 0)]
        ),
        E::Version(2)
    );
    assert_eq!(
        reject("empty body", &short_key, &space, &file_id, vec![]),
        E::Truncated
    );
    assert_eq!(
        reject(
            "header only",
            &short_key,
            &space,
            &file_id,
            vec![bytes(&short_header)]
        ),
        E::Truncated
    );
    let (empty_key, empty_header, empty_chunks) = find("empty file");
    assert_eq!(
        reject(
            "empty file cut inside its tag",
            &empty_key,
            &space,
            &file_id,
            vec![bytes(&empty_header), bytes(&empty_chunks[0][..15])]
        ),
        E::Truncated
    );
    let c = &short_chunks[0];
    assert_eq!(
        reject(
            "last byte cut",
            &short_key,
            &space,
            &file_id,
            vec![bytes(&short_header), bytes(&c[..c.len() - 1])]
        ),
        E::Authentication
    );
    let mut flipped = c.clone();
    flipped[3] ^= 0x01;
    assert_eq!(
        reject(
            "ciphertext bit flipped",
            &short_key,
            &space,
            &file_id,
            vec![bytes(&short_header), bytes(&flipped)]
        ),
        E::Authentication
    );
    let mut other_prefix = short_header.clone();
    other_prefix[8] ^= 0x01;
    assert_eq!(
        reject(
            "nonce prefix changed",
            &short_key,
            &space,
            &file_id,
            vec![bytes(&other_prefix), of("short text", 0)]
        ),
        E::Authentication
    );

    let big = "two chunks and 5 bytes";
    let (big_key, big_header, _) = find(big);
    let body = |order: &[u32]| {
        let mut parts = vec![bytes(&big_header)];
        parts.extend(order.iter().map(|&i| of(big, i)));
        parts
    };
    for (name, order) in [
        ("chunks 0 and 1 swapped", &[1, 0, 2][..]),
        ("final chunk dropped", &[0, 1]),
        ("only the first chunk", &[0]),
        ("middle chunk dropped", &[0, 2]),
        ("first chunk repeated", &[0, 0, 1, 2]),
        ("final chunk repeated", &[0, 1, 2, 2]),
    ] {
        assert_eq!(
            reject(name, &big_key, &space, &file_id, body(order)),
            E::Authentication,
            "{name}"
        );
    }
    let mut appended = body(&[0, 1, 2]);
    appended.push(bytes(&[0; 16]));
    assert_eq!(
        reject(
            "16 bytes appended after the final chunk",
            &big_key,
            &space,
            &file_id,
            appended
        ),
        E::Authentication
    );
    let one = "exactly one chunk";
    let (one_key, one_header, _) = find(one);
    assert_eq!(
        reject(
            "5 bytes after a full final chunk",
            &one_key,
            &space,
            &file_id,
            vec![bytes(&one_header), of(one, 0), bytes(&[0; 5])]
        ),
        E::Length
    );
    assert_eq!(
        reject(
            "empty final chunk after a full one",
            &one_key,
            &space,
            &file_id,
            vec![bytes(&one_header), of(one, 0), of("empty file", 0)]
        ),
        E::Length
    );

    let c = chunk as u64;
    let s = file::SEALED_CHUNK_LEN as u64;
    let mut lengths = Vec::new();
    for plain_len in [0, 1, c - 1, c, c + 1, 2 * c + 5] {
        let sealed_len = file::sealed_file_len(plain_len);
        assert_eq!(file::plain_file_len(sealed_len), Ok(plain_len));
        lengths.push(FileLengthCase {
            plain_len: Some(plain_len),
            sealed_len,
            error: None,
        });
    }
    for sealed_len in [0, 9, 24, 9 + s + 5, 9 + s + 16] {
        lengths.push(FileLengthCase {
            plain_len: None,
            sealed_len,
            error: Some(error_name(&file::plain_file_len(sealed_len).unwrap_err())),
        });
    }
    let mut spans = Vec::new();
    let three = file::sealed_file_len(2 * c + 5);
    for (sealed_len, plain_start, plain_end) in [
        (three, 0, u64::MAX),
        (three, 0, 1),
        (three, c - 1, c + 1),
        (three, c, 2 * c),
        (three, 2 * c + 4, 2 * c + 5),
        (three, 2 * c + 5, u64::MAX),
        (three, 10, 10),
        (file::sealed_file_len(c), c - 1, c + 100),
        (file::sealed_file_len(c), c, c + 1),
        (25, 0, 0),
        (25, 0, 10),
        (9 + s + 5, 0, 10),
    ] {
        let span = file::sealed_span(sealed_len, plain_start, plain_end);
        spans.push(FileSpanCase {
            sealed_len,
            plain_start,
            plain_end,
            first_chunk: span.as_ref().ok().map(|s| s.first_chunk),
            start: span.as_ref().ok().map(|s| s.start),
            end: span.as_ref().ok().map(|s| s.end),
            error: span.as_ref().err().map(error_name),
        });
    }

    check_or_write(
        "file.json",
        &FileVectorFile {
            description: "File body v1: 0x01 ‖ prefix(8) ‖ chunk 0 ‖ … ‖ chunk n-1. Chunk i = AES-256-GCM(file key, plaintext[i*262144 .. (i+1)*262144], aad) ‖ tag(16), nonce = prefix ‖ i (u32 BE), aad = \"sealbase/v1/file\" ‖ space(16) ‖ file(16) ‖ i (u32 BE) ‖ last (0x01 for the final chunk, else 0x00). Every chunk but the final one holds 262144 bytes; the final one 1 to 262144, or 0 only in an empty file. Large cases give the plaintext as pattern(plain_len) (byte i = (7 i + 3) mod 256) and full chunks only as SHA-256 digests. reject_cases: the body is parts joined (hex, or the sealed chunk of a named case); error is the FileError of open_file. lengths: sealed_file_len / plain_file_len; spans: sealed_span(sealed_len, plain_start, plain_end), a half-open range of the sealed body.".into(),
            cases,
            reject_cases,
            lengths,
            spans,
        },
    );
}

/// An "RNG" that yields a fixed 8-byte prefix, so `seal_file` can be
/// compared with the streaming sealer.
struct FixedPrefix([u8; 8]);

impl rand_core::RngCore for FixedPrefix {
    fn next_u32(&mut self) -> u32 {
        u32::from_le_bytes(self.0[..4].try_into().unwrap())
    }
    fn next_u64(&mut self) -> u64 {
        u64::from_le_bytes(self.0)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        dest.copy_from_slice(&self.0[..dest.len()]);
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl rand_core::CryptoRng for FixedPrefix {}
