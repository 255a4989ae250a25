//! Key-delivery JWE: round trips and every refusal. Runs natively and under
//! wasm32 (Node).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod jose_support;

use jose_support::{Replay, b64, unb64};
use sealbase_crypto::jwe::{self, MAX_JWE_LEN};
use sealbase_crypto::{AgreementPublicKey, Identity, JweError, JweOptions};
use serde_json::{Value, json};

fn recipient() -> Identity {
    Identity::from_secrets(&[1; 32], &[2; 32])
}

/// Ephemeral secret bytes then IV bytes, for `jwe::encrypt`.
fn rng() -> Replay {
    let mut bytes = vec![0x33; 32];
    bytes.extend_from_slice(&[0x44; 12]);
    Replay::new(&bytes)
}

fn sealed(options: &JweOptions) -> String {
    jwe::encrypt(
        &recipient().agreement_public(),
        b"the app key",
        options,
        &mut rng(),
    )
    .unwrap()
}

fn open(compact: &str) -> Result<Vec<u8>, JweError> {
    jwe::decrypt(compact, recipient().agreement_secret()).map(|p| p.to_vec())
}

fn parts(compact: &str) -> Vec<String> {
    compact.split('.').map(str::to_owned).collect()
}

fn header_of(compact: &str) -> Value {
    serde_json::from_slice(&unb64(&parts(compact)[0])).unwrap()
}

/// The same JWE with its protected header replaced by `header`.
fn with_header(compact: &str, header: &Value) -> String {
    let mut p = parts(compact);
    p[0] = b64(&serde_json::to_vec(header).unwrap());
    p.join(".")
}

fn with_part(compact: &str, index: usize, value: &str) -> String {
    let mut p = parts(compact);
    p[index] = value.to_owned();
    p.join(".")
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn round_trip_returns_plaintext_and_authenticated_header() {
    let options = JweOptions {
        kid: Some("app-ephemeral".into()),
        apu: Some(b"sealbase-accounts".to_vec()),
        apv: Some(vec![0, 1, 2, 255]),
    };
    let compact = sealed(&options);
    assert_eq!(compact.split('.').count(), 5);
    assert_eq!(parts(&compact)[1], "", "ECDH-ES has no encrypted key");
    let (plaintext, header) =
        jwe::decrypt_with_header(&compact, recipient().agreement_secret()).unwrap();
    assert_eq!(plaintext.as_slice(), b"the app key");
    assert_eq!(header.kid, options.kid);
    assert_eq!(header.apu, options.apu);
    assert_eq!(header.apv, options.apv);
    assert_eq!(header_of(&compact)["apv"], "AAEC_w");
    // A relay sees the same header without any key, and refuses what
    // decrypt would refuse for its structure.
    assert_eq!(jwe::inspect(&compact).unwrap(), header);
    assert!(jwe::inspect(&with_part(&compact, 2, "AAAA")).is_err());
    assert!(jwe::inspect(&format!("{compact}.x")).is_err());
    assert_eq!(
        open(&sealed(&JweOptions::default())).unwrap(),
        b"the app key"
    );
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn wrong_key_and_tampering_fail_the_tag() {
    let compact = sealed(&JweOptions::default());
    let other = Identity::from_secrets(&[1; 32], &[3; 32]);
    assert_eq!(
        jwe::decrypt(&compact, other.agreement_secret()).map(|_| ()),
        Err(JweError::DecryptionFailed)
    );
    let flip = |index: usize| {
        let mut bytes = unb64(&parts(&compact)[index]);
        bytes[0] ^= 0x80;
        with_part(&compact, index, &b64(&bytes))
    };
    for index in [2, 3, 4] {
        assert_eq!(
            open(&flip(index)),
            Err(JweError::DecryptionFailed),
            "part {index}"
        );
    }
    // Header changes that still parse: an extra member, a kid, an apu. The
    // header is the AAD (and apu feeds the KDF), so each fails the tag.
    let mut h = header_of(&compact);
    h["typ"] = json!("JWE");
    assert_eq!(
        open(&with_header(&compact, &h)),
        Err(JweError::DecryptionFailed)
    );
    let mut h = header_of(&compact);
    h["apu"] = json!("QWxpY2U");
    assert_eq!(
        open(&with_header(&compact, &h)),
        Err(JweError::DecryptionFailed)
    );
    // Another epk (a valid point): different Z, wrong key.
    let mut h = header_of(&compact);
    h["epk"]["x"] = json!(b64(recipient().agreement_public().as_bytes()));
    assert_eq!(
        open(&with_header(&compact, &h)),
        Err(JweError::DecryptionFailed)
    );
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn header_checks_name_what_is_refused() {
    let compact = sealed(&JweOptions::default());
    let base = header_of(&compact);
    let edit = |f: &dyn Fn(&mut Value)| {
        let mut h = base.clone();
        f(&mut h);
        open(&with_header(&compact, &h))
    };
    use JweError as E;
    for alg in ["ECDH-ES+A256KW", "dir", "RSA-OAEP", "none", "ecdh-es"] {
        assert_eq!(
            edit(&|h| h["alg"] = json!(alg)),
            Err(E::UnsupportedAlgorithm),
            "{alg}"
        );
    }
    for enc in ["A128GCM", "A256CBC-HS512", "a256gcm"] {
        assert_eq!(
            edit(&|h| h["enc"] = json!(enc)),
            Err(E::UnsupportedEncryption),
            "{enc}"
        );
    }
    assert_eq!(
        edit(&|h| h["zip"] = json!("DEF")),
        Err(E::CompressionRefused)
    );
    assert_eq!(
        edit(&|h| h["zip"] = Value::Null),
        Err(E::CompressionRefused)
    );
    assert_eq!(
        edit(&|h| h["crit"] = json!(["exp"])),
        Err(E::CriticalHeader)
    );
    assert_eq!(
        edit(&|h| h["epk"]["kty"] = json!("EC")),
        Err(E::UnsupportedKey)
    );
    assert_eq!(
        edit(&|h| h["epk"]["crv"] = json!("X448")),
        Err(E::UnsupportedKey)
    );
    assert_eq!(
        edit(&|h| h["epk"]["d"] = json!("AAAA")),
        Err(E::UnsupportedKey)
    );
    assert_eq!(edit(&|h| h["epk"] = json!("x")), Err(E::UnsupportedKey));
    assert_eq!(
        edit(&|h| h["epk"]["x"] = json!(b64(&[9; 31]))),
        Err(E::BadPublicKey)
    );
    assert_eq!(
        edit(&|h| h["epk"]["x"] = json!(b64(&[9; 33]))),
        Err(E::BadPublicKey)
    );
    assert_eq!(
        edit(&|h| h["epk"]["x"] = json!(format!("{}=", b64(&[9; 32])))),
        Err(E::BadPublicKey)
    );
    assert_eq!(
        edit(&|h| h["apu"] = json!("QWxpY2U=")),
        Err(E::Malformed { part: "apu" })
    );
    assert_eq!(edit(&|h| h["apv"] = json!(5)), Err(E::MalformedHeader));
    assert_eq!(edit(&|h| h["kid"] = Value::Null), Err(E::MalformedHeader));
    assert_eq!(
        edit(&|h| {
            h.as_object_mut().unwrap().remove("alg");
        }),
        Err(E::MalformedHeader)
    );
    let not_json = with_part(&compact, 0, &b64(b"[1,2"));
    assert_eq!(open(&not_json), Err(E::MalformedHeader));
    // A duplicate member is refused rather than resolved.
    let dup = with_part(
        &compact,
        0,
        &b64(
            br#"{"alg":"ECDH-ES","alg":"ECDH-ES","enc":"A256GCM","epk":{"kty":"OKP","crv":"X25519","x":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}}"#,
        ),
    );
    assert_eq!(open(&dup), Err(E::MalformedHeader));
    // Also inside epk, and for members we otherwise ignore.
    let x = b64(&[9; 32]);
    for header in [
        format!(
            r#"{{"alg":"ECDH-ES","enc":"A256GCM","epk":{{"kty":"OKP","crv":"X25519","x":"{x}","x":"{x}"}}}}"#
        ),
        format!(
            r#"{{"alg":"ECDH-ES","enc":"A256GCM","epk":{{"kty":"OKP","crv":"X25519","x":"{x}"}},"typ":"a","typ":"b"}}"#
        ),
    ] {
        assert_eq!(
            open(&with_part(&compact, 0, &b64(header.as_bytes()))),
            Err(E::MalformedHeader)
        );
    }
}

/// Small-order X25519 points (RFC 7748 §7 / libsodium's blocklist): each
/// makes the shared secret all zeros, which anyone can compute.
#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn low_order_keys_are_refused_both_ways() {
    let compact = sealed(&JweOptions::default());
    let mut one = [0u8; 32];
    one[0] = 1;
    let order8: [u8; 32] = [
        0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3, 0xfa, 0xf1, 0x9f, 0xc4,
        0x6a, 0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32, 0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16, 0x5f, 0x49,
        0xb8, 0x00,
    ];
    for point in [[0u8; 32], one, order8] {
        let mut h = header_of(&compact);
        h["epk"]["x"] = json!(b64(&point));
        assert_eq!(
            open(&with_header(&compact, &h)),
            Err(JweError::NonContributory)
        );
        assert_eq!(
            jwe::encrypt(
                &AgreementPublicKey(point),
                b"ak",
                &JweOptions::default(),
                &mut rng()
            ),
            Err(JweError::NonContributory)
        );
    }
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn structure_checks() {
    let compact = sealed(&JweOptions::default());
    let p = parts(&compact);
    use JweError as E;
    let five = E::Malformed {
        part: "expected five parts",
    };
    assert_eq!(open(&p[..4].join(".")), Err(five.clone()), "truncated");
    assert_eq!(open(&format!("{compact}.")), Err(five.clone()), "six parts");
    assert_eq!(open(""), Err(five.clone()));
    assert_eq!(open(&p[0]), Err(five));
    assert_eq!(
        open(&with_part(&compact, 1, "AAAA")),
        Err(E::EncryptedKeyPresent)
    );
    assert_eq!(
        open(&with_part(&compact, 2, &b64(&[0; 8]))),
        Err(E::BadIvLength)
    );
    assert_eq!(open(&with_part(&compact, 2, "")), Err(E::BadIvLength));
    assert_eq!(
        open(&with_part(&compact, 4, &b64(&[0; 15]))),
        Err(E::BadTagLength)
    );
    assert_eq!(open(&with_part(&compact, 4, "")), Err(E::BadTagLength));
    assert_eq!(
        open(&with_part(&compact, 2, "!!")),
        Err(E::Malformed { part: "iv" })
    );
    assert_eq!(
        open(&with_part(&compact, 3, &format!("{}=", p[3]))),
        Err(E::Malformed { part: "ciphertext" })
    );
    assert_eq!(
        open(&with_part(&compact, 4, "a+b/")),
        Err(E::Malformed { part: "tag" })
    );
    assert_eq!(
        open(&with_part(&compact, 0, &format!("{}==", p[0]))),
        Err(E::Malformed {
            part: "protected header"
        })
    );
    // An empty plaintext is fine (empty ciphertext part).
    let empty = jwe::encrypt(
        &recipient().agreement_public(),
        b"",
        &JweOptions::default(),
        &mut rng(),
    )
    .unwrap();
    assert_eq!(open(&empty).unwrap(), b"");
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn size_limit_holds_both_ways() {
    let big = vec![0u8; MAX_JWE_LEN];
    assert_eq!(
        jwe::encrypt(
            &recipient().agreement_public(),
            &big,
            &JweOptions::default(),
            &mut rng()
        ),
        Err(JweError::TooLarge)
    );
    assert_eq!(open(&"a".repeat(MAX_JWE_LEN + 1)), Err(JweError::TooLarge));
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn jwk_helpers() {
    let key = recipient().agreement_public();
    let jwk = jwe::x25519_public_jwk(&key);
    assert_eq!(
        jwk,
        format!(
            r#"{{"crv":"X25519","kty":"OKP","x":"{}"}}"#,
            b64(key.as_bytes())
        )
    );
    assert_eq!(jwe::parse_x25519_public_jwk(&jwk), Ok(key));
    use sha2::Digest;
    assert_eq!(
        jwe::x25519_jwk_thumbprint(&key),
        b64(&sha2::Sha256::digest(jwk.as_bytes()))
    );
    assert_eq!(
        jwe::parse_x25519_public_jwk(&"a".repeat(MAX_JWE_LEN + 1)),
        Err(JweError::TooLarge)
    );
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn error_codes_are_distinct() {
    use JweError as E;
    let all = [
        E::TooLarge,
        E::Malformed { part: "x" },
        E::MalformedHeader,
        E::UnsupportedAlgorithm,
        E::UnsupportedEncryption,
        E::CompressionRefused,
        E::CriticalHeader,
        E::UnsupportedKey,
        E::BadPublicKey,
        E::PrivateKeyInJwk,
        E::EncryptedKeyPresent,
        E::BadIvLength,
        E::BadTagLength,
        E::NonContributory,
        E::DecryptionFailed,
    ];
    let mut codes: Vec<&str> = all.iter().map(JweError::code).collect();
    codes.sort_unstable();
    codes.dedup();
    assert_eq!(codes.len(), all.len());
}
