//! Checks every case of `tests/vectors/capability.json` and
//! `tests/vectors/jwe.json` (written by `jose_vectors_gen.rs`). Runs
//! natively and under wasm32 (Node): vectors are compiled in.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod jose_support;

use aes_gcm::aead::AeadInOut;
use aes_gcm::{Aes256Gcm, KeyInit, Nonce, Tag};
use jose_support::{Replay, other_info, unb64};
use sealbase_crypto::capability::HEADER_JSON;
use sealbase_crypto::{
    AgreementPublicKey, Capability, CapabilityToken, Did, Identity, JweOptions, Uuid, jwe,
    verify_chain,
};
use serde_json::Value;
use x25519_dalek::{PublicKey, StaticSecret};

const CAPABILITY: &str = include_str!("vectors/capability.json");
const JWE: &str = include_str!("vectors/jwe.json");

fn hex32(v: &Value) -> [u8; 32] {
    hex::decode(v.as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap()
}

fn cap(v: &Value) -> Capability {
    serde_json::from_value(v.clone()).unwrap()
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn capability_tokens_are_reproduced_byte_for_byte() {
    let v: Value = serde_json::from_str(CAPABILITY).unwrap();
    assert_eq!(v["header"], HEADER_JSON);
    let space: Uuid = v["space"].as_str().unwrap().parse().unwrap();
    let identity = |name: &Value| {
        let entry = &v["identities"][name.as_str().unwrap()];
        let id = Identity::from_secrets(&hex32(&entry["ed25519_seed"]), &[0; 32]);
        assert_eq!(id.did().to_string(), entry["did"]);
        id
    };
    let mut built: Vec<(String, CapabilityToken)> = Vec::new();
    for t in v["tokens"].as_array().unwrap() {
        let signer = identity(&t["signer"]);
        let audience = identity(&t["audience"]).did();
        let mut rng = Replay::new(&hex::decode(t["nonce"].as_str().unwrap()).unwrap());
        let exp = t["exp"].as_u64().unwrap();
        let token = match t["parent"].as_str() {
            None => CapabilityToken::issue_root(
                &signer,
                &audience,
                space,
                cap(&t["cap"]),
                exp,
                &mut rng,
            ),
            Some(parent) => {
                let (_, parent) = built.iter().find(|(n, _)| n == parent).unwrap();
                parent.delegate(&signer, &audience, cap(&t["cap"]), exp, &mut rng)
            }
        }
        .unwrap();
        assert_eq!(token.as_str(), t["compact"], "{}", t["name"]);
        assert_eq!(token.hash().to_string(), t["hash"], "{}", t["name"]);
        assert_eq!(
            CapabilityToken::parse(t["compact"].as_str().unwrap()).unwrap(),
            token
        );
        built.push((t["name"].as_str().unwrap().to_owned(), token));
    }
    assert_eq!(built.len(), 3);
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn capability_verify_cases() {
    let v: Value = serde_json::from_str(CAPABILITY).unwrap();
    let cases = v["verify"].as_array().unwrap();
    assert!(cases.len() >= 20);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let did = |key: &str| case[key].as_str().unwrap().parse::<Did>().unwrap();
        let space: Uuid = case["space"].as_str().unwrap().parse().unwrap();
        let revoked: Vec<String> = serde_json::from_value(case["revoked"].clone()).unwrap();
        let outcome = CapabilityToken::parse(case["token"].as_str().unwrap()).and_then(|t| {
            verify_chain(
                &t,
                &did("root"),
                space,
                &did("audience"),
                case["now"].as_u64().unwrap(),
                |h| revoked.contains(&h.to_string()),
            )
        });
        match (outcome, case.get("result"), case.get("error")) {
            (Ok(got), Some(want), None) => {
                assert_eq!(got.cap, cap(&want["cap"]), "{name}");
                assert_eq!(
                    got.expires_at,
                    want["expires_at"].as_u64().unwrap(),
                    "{name}"
                );
                let chain: Vec<String> = got.chain.iter().map(ToString::to_string).collect();
                assert_eq!(
                    serde_json::to_value(chain).unwrap(),
                    want["chain"],
                    "{name}"
                );
                assert_eq!(got.space, space);
            }
            (Err(got), None, Some(want)) => {
                assert_eq!(got.code(), want["code"], "{name}");
                assert_eq!(
                    serde_json::to_value(got.depth()).unwrap(),
                    want["depth"],
                    "{name}"
                );
            }
            (outcome, _, _) => panic!("{name}: unexpected outcome {outcome:?}"),
        }
    }
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn jwe_cases_reproduce_and_pin_the_concat_kdf() {
    let v: Value = serde_json::from_str(JWE).unwrap();
    let recipient = StaticSecret::from(hex32(&v["recipient"]["x25519_secret"]));
    let public = AgreementPublicKey(PublicKey::from(&recipient).to_bytes());
    assert_eq!(
        jwe::x25519_public_jwk(&public),
        v["recipient"]["public_jwk"]
    );
    assert_eq!(
        jwe::x25519_jwk_thumbprint(&public),
        v["recipient"]["thumbprint"]
    );
    assert_eq!(
        jwe::parse_x25519_public_jwk(v["recipient"]["public_jwk"].as_str().unwrap()),
        Ok(public)
    );
    let bytes = |c: &Value, k: &str| c[k].as_str().map(|s| hex::decode(s).unwrap());
    for case in v["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let ephemeral = StaticSecret::from(hex32(&case["ephemeral_secret"]));
        let iv: [u8; 12] = bytes(case, "iv").unwrap().try_into().unwrap();
        let plaintext = bytes(case, "plaintext").unwrap();
        let options = JweOptions {
            kid: case["kid"].as_str().map(str::to_owned),
            apu: bytes(case, "apu"),
            apv: bytes(case, "apv"),
        };
        let compact =
            jwe::encrypt_with_ephemeral(&public, &plaintext, &options, &ephemeral, iv).unwrap();
        assert_eq!(compact, case["compact"], "{name}");
        let parts: Vec<&str> = compact.split('.').collect();
        assert_eq!(
            String::from_utf8(unb64(parts[0])).unwrap(),
            case["protected_header"],
            "{name}"
        );

        let (opened, header) = jwe::decrypt_with_header(&compact, &recipient).unwrap();
        assert_eq!(opened.as_slice(), plaintext.as_slice(), "{name}");
        assert_eq!(header.kid, options.kid);
        assert_eq!(
            header.epk,
            AgreementPublicKey(PublicKey::from(&ephemeral).to_bytes())
        );

        // The KDF, recomputed without the crate: Z from the recipient side,
        // OtherInfo by hand, Concat KDF from the primitive crate.
        let z = recipient.diffie_hellman(&PublicKey::from(header.epk.0));
        assert_eq!(hex::encode(z.as_bytes()), case["shared_secret"], "{name}");
        let info = other_info(
            "A256GCM",
            options.apu.as_deref().unwrap_or_default(),
            options.apv.as_deref().unwrap_or_default(),
            256,
        );
        assert_eq!(hex::encode(&info), case["other_info"], "{name}");
        let mut cek = [0u8; 32];
        concat_kdf::derive_key_into::<sha2::Sha256>(z.as_bytes(), &info, &mut cek).unwrap();
        assert_eq!(hex::encode(cek), case["cek"], "{name}");

        // And that CEK really is the content key: open the GCM parts by hand.
        let mut buffer = unb64(parts[3]);
        Aes256Gcm::new_from_slice(&cek)
            .unwrap()
            .decrypt_inout_detached(
                &Nonce::try_from(unb64(parts[2]).as_slice()).unwrap(),
                parts[0].as_bytes(),
                buffer.as_mut_slice().into(),
                &Tag::try_from(unb64(parts[4]).as_slice()).unwrap(),
            )
            .unwrap();
        assert_eq!(buffer, plaintext, "{name}");
    }
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn jwe_invalid_cases() {
    let v: Value = serde_json::from_str(JWE).unwrap();
    let recipient = StaticSecret::from(hex32(&v["recipient"]["x25519_secret"]));
    let cases = v["invalid"].as_array().unwrap();
    assert!(cases.len() >= 15);
    for case in cases {
        let err = jwe::decrypt(case["compact"].as_str().unwrap(), &recipient)
            .map(|_| ())
            .unwrap_err();
        assert_eq!(err.code(), case["error"], "{}", case["name"]);
    }
}
