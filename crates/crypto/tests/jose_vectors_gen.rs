//! Generates `tests/vectors/capability.json` and `tests/vectors/jwe.json`.
//!
//! `SEALBASE_WRITE_VECTORS=1 cargo test -p sealbase-crypto --test jose_vectors_gen`
//! rewrites them; a plain run regenerates in memory and requires the
//! committed files to match, so a format change cannot slip in unnoticed.
//! `tests/jose_vectors.rs` then checks every case (natively and in wasm32).
#![cfg(not(target_arch = "wasm32"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod jose_support;

use jose_support::{
    NAMES, OTHER_SPACE, Replay, SPACE, b64, claims, ed25519_seed, forge, forge_with_header, ident,
    swap_payload, unb64, x25519_secret,
};
use sealbase_crypto::capability::HEADER_JSON;
use sealbase_crypto::{
    Capability, CapabilityError, CapabilityToken, Did, JweOptions, TokenHash, jwe, verify_chain,
};
use serde_json::{Value, json};
use x25519_dalek::{PublicKey, StaticSecret};

const NOW: u64 = 1_700_000_000;
const EXP: [u64; 3] = [2_000_000_000, 1_950_000_000, 1_900_000_000];

fn did(name: &str) -> Did {
    ident(name).did()
}

/// (name, token, root, space, audience, now, revoked): `verify_chain`'s inputs.
type VerifyCase = (
    String,
    String,
    &'static str,
    sealbase_crypto::Uuid,
    &'static str,
    u64,
    Vec<TokenHash>,
);

fn capability_vectors() -> Value {
    let identities: serde_json::Map<String, Value> = NAMES
        .iter()
        .map(|n| {
            (
                (*n).to_owned(),
                json!({"ed25519_seed": hex::encode(ed25519_seed(n)), "did": did(n).to_string()}),
            )
        })
        .collect();

    // root → alice (admin) → bob (write) → carol (read).
    let plan = [
        ("root", "root", "alice", Capability::Admin, [0x10u8; 16]),
        (
            "delegation_1",
            "alice",
            "bob",
            Capability::Write,
            [0x11; 16],
        ),
        ("delegation_2", "bob", "carol", Capability::Read, [0x12; 16]),
    ];
    let mut chain: Vec<CapabilityToken> = Vec::new();
    let mut tokens = Vec::new();
    for (i, (name, signer, audience, cap, nonce)) in plan.iter().enumerate() {
        let mut rng = Replay::new(nonce);
        let token = match chain.last() {
            None => CapabilityToken::issue_root(
                &ident(signer),
                &did(audience),
                SPACE,
                *cap,
                EXP[i],
                &mut rng,
            ),
            Some(parent) => parent.delegate(&ident(signer), &did(audience), *cap, EXP[i], &mut rng),
        }
        .unwrap();
        tokens.push(json!({
            "name": name,
            "signer": signer,
            "audience": audience,
            "cap": cap.as_str(),
            "exp": EXP[i],
            "nonce": hex::encode(nonce),
            "parent": if i == 0 { Value::Null } else { json!(plan[i - 1].0) },
            "compact": token.as_str(),
            "hash": token.hash().to_string(),
        }));
        chain.push(token);
    }
    let [t0, t1, t2] = [&chain[0], &chain[1], &chain[2]];
    let (bob, carol, mallory) = (ident("bob"), ident("carol"), ident("mallory"));

    let mut flipped = unb64(t2.as_str().rsplit_once('.').unwrap().1);
    flipped[0] ^= 1;
    let bad_sig = format!(
        "{}.{}",
        t2.as_str().rsplit_once('.').unwrap().0,
        b64(&flipped)
    );
    let mut raised = claims(
        &bob,
        &carol,
        "admin",
        SPACE,
        EXP[2],
        [0x12; 16],
        Some(t1.as_str()),
    );
    raised["nnc"] = json!(b64(&[0x12; 16]));
    let tampered = swap_payload(t2.as_str(), &raised);
    let leaf = |cap: &str, space, exp| {
        claims(&bob, &carol, cap, space, exp, [0x20; 16], Some(t1.as_str()))
    };
    let header = |h: &str| b64(h.as_bytes());
    let none_payload = b64(&serde_json::to_vec(&leaf("read", SPACE, EXP[2])).unwrap());

    // (name, token, root, space, audience, now, revoked)
    let ok = |name: &str, t: &str, aud: &'static str| {
        (
            name.to_owned(),
            t.to_owned(),
            "root",
            SPACE,
            aud,
            NOW,
            vec![],
        )
    };
    let on_leaf = |name: &str, t: String| (name.to_owned(), t, "root", SPACE, "carol", NOW, vec![]);
    let cases: Vec<VerifyCase> = vec![
        ok("ok_root", t0.as_str(), "alice"),
        ok("ok_depth_2", t1.as_str(), "bob"),
        ok("ok_depth_3", t2.as_str(), "carol"),
        (
            "ok_one_second_before_expiry".into(),
            t2.as_str().into(),
            "root",
            SPACE,
            "carol",
            EXP[2] - 1,
            vec![],
        ),
        (
            "expired_leaf_at_exp".into(),
            t2.as_str().into(),
            "root",
            SPACE,
            "carol",
            EXP[2],
            vec![],
        ),
        (
            "expired_middle".into(),
            t2.as_str().into(),
            "root",
            SPACE,
            "carol",
            EXP[1],
            vec![],
        ),
        (
            "revoked_middle".into(),
            t2.as_str().into(),
            "root",
            SPACE,
            "carol",
            NOW,
            vec![t1.hash()],
        ),
        (
            "revoked_root".into(),
            t2.as_str().into(),
            "root",
            SPACE,
            "carol",
            NOW,
            vec![t0.hash()],
        ),
        (
            "wrong_root".into(),
            t2.as_str().into(),
            "mallory",
            SPACE,
            "carol",
            NOW,
            vec![],
        ),
        (
            "wrong_audience".into(),
            t2.as_str().into(),
            "root",
            SPACE,
            "mallory",
            NOW,
            vec![],
        ),
        (
            "wrong_space".into(),
            t2.as_str().into(),
            "root",
            OTHER_SPACE,
            "carol",
            NOW,
            vec![],
        ),
        on_leaf("cap_escalation", forge(&bob, &leaf("admin", SPACE, EXP[2]))),
        on_leaf(
            "expiry_escalation",
            forge(&bob, &leaf("read", SPACE, EXP[1] + 1)),
        ),
        on_leaf(
            "resource_changed_in_link",
            forge(&bob, &leaf("read", OTHER_SPACE, EXP[2])),
        ),
        on_leaf(
            "broken_chain",
            forge(
                &mallory,
                &claims(
                    &mallory,
                    &carol,
                    "read",
                    SPACE,
                    EXP[2],
                    [0x20; 16],
                    Some(t1.as_str()),
                ),
            ),
        ),
        on_leaf("bad_signature", bad_sig),
        on_leaf("tampered_payload", tampered),
        on_leaf(
            "alg_none",
            format!(
                "{}.{none_payload}.",
                header(r#"{"alg":"none","typ":"JWT"}"#)
            ),
        ),
        on_leaf(
            "alg_hs256",
            format!(
                "{}.{none_payload}.{}",
                header(r#"{"alg":"HS256","typ":"JWT"}"#),
                b64(&[0x5a; 32])
            ),
        ),
        on_leaf(
            "crit_header",
            forge_with_header(
                &bob,
                &header(r#"{"alg":"EdDSA","typ":"JWT","crit":["x"]}"#),
                &leaf("read", SPACE, EXP[2]),
            ),
        ),
        on_leaf(
            "unknown_claim",
            forge(&bob, &{
                let mut p = leaf("read", SPACE, EXP[2]);
                p["extra"] = json!(1);
                p
            }),
        ),
        on_leaf(
            "uppercase_space_id",
            forge(&bob, &{
                let mut p = leaf("read", SPACE, EXP[2]);
                p["res"] = json!(format!(
                    "space:{}",
                    SPACE.hyphenated().to_string().to_uppercase()
                ));
                p
            }),
        ),
    ];

    let verify: Vec<Value> = cases
        .into_iter()
        .map(|(name, compact, root, space, audience, now, revoked)| {
            let outcome = CapabilityToken::parse(&compact).and_then(|t| {
                verify_chain(&t, &did(root), space, &did(audience), now, |h| {
                    revoked.contains(h)
                })
            });
            let mut case = json!({
                "name": name,
                "token": compact,
                "root": did(root).to_string(),
                "space": space.hyphenated().to_string(),
                "audience": did(audience).to_string(),
                "now": now,
                "revoked": revoked.iter().map(ToString::to_string).collect::<Vec<_>>(),
            });
            match outcome {
                Ok(v) => {
                    assert!(name.starts_with("ok_"), "{name} unexpectedly verified");
                    case["result"] = json!({
                        "cap": v.cap.as_str(),
                        "expires_at": v.expires_at,
                        "chain": v.chain.iter().map(ToString::to_string).collect::<Vec<_>>(),
                    });
                }
                Err(e) => {
                    assert!(!name.starts_with("ok_"), "{name}: {e}");
                    case["error"] = error_json(&e);
                }
            }
            case
        })
        .collect();

    json!({
        "description": "Sealbase capability tokens (docs/security.md, Capabilities). Identities are Ed25519 seeds; tokens are issued with the given nonce, exp and space; verify cases give the inputs of verify_chain (parse first) and the expected result or error (code, depth from the root = 0). Hashes are SHA-256 of the compact string, lowercase hex.",
        "header": HEADER_JSON,
        "space": SPACE.hyphenated().to_string(),
        "identities": identities,
        "tokens": tokens,
        "verify": verify,
    })
}

fn error_json(e: &CapabilityError) -> Value {
    json!({"code": e.code(), "depth": e.depth()})
}

fn jwe_vectors() -> Value {
    let recipient = StaticSecret::from(x25519_secret("carol"));
    let recipient_public =
        sealbase_crypto::AgreementPublicKey(PublicKey::from(&recipient).to_bytes());
    let plaintext: Vec<u8> = (0u8..32).collect();
    let plan: [(&str, [u8; 32], [u8; 12], JweOptions); 2] = [
        ("no_options", [0x61; 32], [0x71; 12], JweOptions::default()),
        (
            "kid_apu_apv",
            [0x62; 32],
            [0x72; 12],
            JweOptions {
                kid: Some(jwe::x25519_jwk_thumbprint(&recipient_public)),
                apu: Some(b"sealbase-accounts".to_vec()),
                apv: Some(b"app-ephemeral-key".to_vec()),
            },
        ),
    ];
    let mut cases = Vec::new();
    let mut first = String::new();
    for (name, eph, iv, options) in plan {
        let ephemeral = StaticSecret::from(eph);
        let compact =
            jwe::encrypt_with_ephemeral(&recipient_public, &plaintext, &options, &ephemeral, iv)
                .unwrap();
        let z = ephemeral.diffie_hellman(&PublicKey::from(recipient_public.0));
        let other_info = jose_support::other_info(
            "A256GCM",
            options.apu.as_deref().unwrap_or_default(),
            options.apv.as_deref().unwrap_or_default(),
            256,
        );
        let mut cek = [0u8; 32];
        concat_kdf::derive_key_into::<sha2::Sha256>(z.as_bytes(), &other_info, &mut cek).unwrap();
        let header = String::from_utf8(unb64(compact.split('.').next().unwrap())).unwrap();
        if first.is_empty() {
            first = compact.clone();
        }
        cases.push(json!({
            "name": name,
            "ephemeral_secret": hex::encode(eph),
            "iv": hex::encode(iv),
            "kid": options.kid,
            "apu": options.apu.as_deref().map(hex::encode),
            "apv": options.apv.as_deref().map(hex::encode),
            "plaintext": hex::encode(&plaintext),
            "protected_header": header,
            "shared_secret": hex::encode(z.as_bytes()),
            "other_info": hex::encode(&other_info),
            "cek": hex::encode(cek),
            "compact": compact,
        }));
    }

    let parts: Vec<&str> = first.split('.').collect();
    let header: Value = serde_json::from_slice(&unb64(parts[0])).unwrap();
    let rebuild = |h: &Value| {
        let mut p = parts.clone();
        let h = b64(&serde_json::to_vec(h).unwrap());
        p[0] = &h;
        p.join(".")
    };
    let edit = |f: &dyn Fn(&mut Value)| {
        let mut h = header.clone();
        f(&mut h);
        rebuild(&h)
    };
    let part = |i: usize, v: &str| {
        let mut p = parts.clone();
        p[i] = v;
        p.join(".")
    };
    let flip = |i: usize| {
        let mut b = unb64(parts[i]);
        b[0] ^= 0x80;
        part(i, &b64(&b))
    };
    let invalid = vec![
        ("tampered_tag", flip(4)),
        ("tampered_ciphertext", flip(3)),
        ("tampered_iv", flip(2)),
        (
            "tampered_header_extra_member",
            edit(&|h| h["typ"] = json!("JWE")),
        ),
        (
            "alg_ecdh_es_a256kw",
            edit(&|h| h["alg"] = json!("ECDH-ES+A256KW")),
        ),
        ("alg_dir", edit(&|h| h["alg"] = json!("dir"))),
        ("enc_a128gcm", edit(&|h| h["enc"] = json!("A128GCM"))),
        ("zip_def", edit(&|h| h["zip"] = json!("DEF"))),
        ("crit", edit(&|h| h["crit"] = json!(["exp"]))),
        ("epk_kty_ec", edit(&|h| h["epk"]["kty"] = json!("EC"))),
        (
            "epk_x_31_bytes",
            edit(&|h| h["epk"]["x"] = json!(b64(&[9; 31]))),
        ),
        (
            "epk_low_order_zero",
            edit(&|h| h["epk"]["x"] = json!(b64(&[0; 32]))),
        ),
        ("encrypted_key_present", part(1, "AAAA")),
        ("iv_8_bytes", part(2, &b64(&[0; 8]))),
        ("tag_15_bytes", part(4, &b64(&[0; 15]))),
        ("four_parts", parts[..4].join(".")),
        ("padded_header", part(0, &format!("{}==", parts[0]))),
    ];
    let invalid: Vec<Value> = invalid
        .into_iter()
        .map(|(name, compact)| {
            let err = jwe::decrypt(&compact, &recipient).map(|_| ()).unwrap_err();
            json!({"name": name, "compact": compact, "error": err.code()})
        })
        .collect();

    json!({
        "description": "Sealbase key-delivery JWE (docs/security.md, Key delivery JWE): ECDH-ES with X25519, A256GCM, RFC 7518 Concat KDF. Byte strings are lowercase hex; other_info = len32(\"A256GCM\") || \"A256GCM\" || len32(apu) || apu || len32(apv) || apv || 0x00000100; cek = Concat KDF SHA-256 of shared_secret. Invalid cases are all addressed to the same recipient.",
        "recipient": {
            "x25519_secret": hex::encode(recipient.to_bytes()),
            "public_jwk": jwe::x25519_public_jwk(&recipient_public),
            "thumbprint": jwe::x25519_jwk_thumbprint(&recipient_public),
        },
        "cases": cases,
        "invalid": invalid,
    })
}

fn check_or_write(file: &str, generated: &Value) {
    // The directory at run time: a test binary built from another checkout
    // that shares the target directory must still read this one's files.
    let root = std::env::var_os("CARGO_MANIFEST_DIR").map_or_else(
        || env!("CARGO_MANIFEST_DIR").into(),
        std::path::PathBuf::from,
    );
    let path = root.join("tests/vectors").join(file);
    if std::env::var("SEALBASE_WRITE_VECTORS").as_deref() == Ok("1") {
        let mut text = serde_json::to_string_pretty(generated).unwrap();
        text.push('\n');
        std::fs::write(&path, text).unwrap();
    }
    let committed: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(
        &committed, generated,
        "{file} differs from the generator; rerun with SEALBASE_WRITE_VECTORS=1 only if the format change is intended"
    );
}

#[test]
fn capability_vectors_match_the_generator() {
    check_or_write("capability.json", &capability_vectors());
}

#[test]
fn jwe_vectors_match_the_generator() {
    check_or_write("jwe.json", &jwe_vectors());
}
