//! Interop with josekit (OpenSSL-backed), a JOSE implementation we did not
//! write: each direction of the key-delivery JWE, and capability tokens
//! verified and produced by josekit's EdDSA JWT code.
#![cfg(not(target_arch = "wasm32"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod jose_support;

use jose_support::{Replay, SPACE, b64, claims, ed25519_seed, ident, unb64};
use josekit::jwe::{ECDH_ES, ECDH_ES_A256KW, JweHeader as JkJweHeader};
use josekit::jwk::Jwk;
use josekit::jws::{EdDSA, JwsHeader};
use josekit::jwt::{self, JwtPayload};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use sealbase_crypto::capability::HEADER_B64;
use sealbase_crypto::{
    Capability, CapabilityToken, Did, Identity, JweError, JweOptions, jwe, verify_chain,
};
use x25519_dalek::{PublicKey, StaticSecret};

const EXP: u64 = 2_000_000_000;
const NOW: u64 = 1_700_000_000;

fn recipient() -> Identity {
    Identity::from_secrets(&[7; 32], &[8; 32])
}

fn josekit_private_x25519(secret: &StaticSecret) -> Jwk {
    let public = PublicKey::from(secret);
    Jwk::from_bytes(
        serde_json::json!({
            "kty": "OKP",
            "crv": "X25519",
            "d": b64(&secret.to_bytes()),
            "x": b64(public.as_bytes()),
        })
        .to_string(),
    )
    .unwrap()
}

fn josekit_public_ed25519(did: &Did) -> Jwk {
    Jwk::from_bytes(
        serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": b64(did.public_key().as_bytes())})
            .to_string(),
    )
    .unwrap()
}

fn josekit_private_ed25519(name: &str) -> Jwk {
    let id = ident(name);
    Jwk::from_bytes(
        serde_json::json!({
            "kty": "OKP",
            "crv": "Ed25519",
            "d": b64(&ed25519_seed(name)),
            "x": b64(id.did().public_key().as_bytes()),
        })
        .to_string(),
    )
    .unwrap()
}

/// josekit seals to the public JWK our helper produced.
fn josekit_encrypt(
    plaintext: &[u8],
    enc: &str,
    zip: bool,
    kid: Option<&str>,
    apu: Option<&[u8]>,
    apv: Option<&[u8]>,
) -> String {
    let jwk = Jwk::from_bytes(jwe::x25519_public_jwk(&recipient().agreement_public())).unwrap();
    let mut encrypter = ECDH_ES.encrypter_from_jwk(&jwk).unwrap();
    if let Some(kid) = kid {
        encrypter.set_key_id(kid);
    }
    if let Some(apu) = apu {
        encrypter.set_agreement_partyuinfo(apu);
    }
    if let Some(apv) = apv {
        encrypter.set_agreement_partyvinfo(apv);
    }
    let mut header = JkJweHeader::new();
    header.set_content_encryption(enc);
    if zip {
        header.set_compression("DEF");
    }
    josekit::jwe::serialize_compact(plaintext, &header, &encrypter).unwrap()
}

#[test]
fn josekit_encrypts_we_decrypt() {
    let secret = recipient();
    for round in 0..8u8 {
        let plaintext = vec![round; 32];
        let (kid, apu, apv): (Option<&str>, Option<&[u8]>, Option<&[u8]>) = match round % 3 {
            0 => (None, None, None),
            1 => (Some("k"), Some(b"Alice"), Some(b"Bob")),
            _ => (None, None, Some(&[0xff, 0, 1])),
        };
        let compact = josekit_encrypt(&plaintext, "A256GCM", false, kid, apu, apv);
        let (opened, header) =
            jwe::decrypt_with_header(&compact, secret.agreement_secret()).unwrap();
        assert_eq!(opened.as_slice(), plaintext.as_slice(), "round {round}");
        assert_eq!(header.kid.as_deref(), kid);
        assert_eq!(header.apu.as_deref(), apu);
        assert_eq!(header.apv.as_deref(), apv);
    }
}

#[test]
fn josekit_jwes_outside_our_profile_are_refused() {
    let secret = recipient();
    let open = |c: &str| jwe::decrypt(c, secret.agreement_secret()).map(|_| ());
    assert_eq!(
        open(&josekit_encrypt(b"ak", "A256GCM", true, None, None, None)),
        Err(JweError::CompressionRefused)
    );
    assert_eq!(
        open(&josekit_encrypt(b"ak", "A128GCM", false, None, None, None)),
        Err(JweError::UnsupportedEncryption)
    );
    let jwk = Jwk::from_bytes(jwe::x25519_public_jwk(&secret.agreement_public())).unwrap();
    let kw = ECDH_ES_A256KW.encrypter_from_jwk(&jwk).unwrap();
    let mut header = JkJweHeader::new();
    header.set_content_encryption("A256GCM");
    let wrapped = josekit::jwe::serialize_compact(b"ak", &header, &kw).unwrap();
    assert_eq!(open(&wrapped), Err(JweError::UnsupportedAlgorithm));
}

#[test]
fn we_encrypt_josekit_decrypts() {
    let secret = recipient();
    let decrypter = ECDH_ES
        .decrypter_from_jwk(&josekit_private_x25519(secret.agreement_secret()))
        .unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(42);
    for options in [
        JweOptions::default(),
        JweOptions {
            kid: Some("thumb".into()),
            apu: Some(b"Alice".to_vec()),
            apv: Some(b"Bob".to_vec()),
        },
    ] {
        let compact = jwe::encrypt(
            &secret.agreement_public(),
            b"the app key",
            &options,
            &mut rng,
        )
        .unwrap();
        let (plaintext, header) = josekit::jwe::deserialize_compact(&compact, &decrypter).unwrap();
        assert_eq!(plaintext, b"the app key");
        assert_eq!(header.algorithm(), Some("ECDH-ES"));
        assert_eq!(header.content_encryption(), Some("A256GCM"));
        assert_eq!(header.key_id(), options.kid.as_deref());
        let claim = |name: &str| header.claim(name).and_then(|v| v.as_str()).map(unb64);
        assert_eq!(claim("apu"), options.apu);
        assert_eq!(claim("apv"), options.apv);
    }
}

#[test]
fn our_capability_tokens_verify_in_josekit() {
    let (root, alice, bob) = (ident("root"), ident("alice"), ident("bob"));
    let mut rng = Replay::new(&[5; 32]);
    let t0 =
        CapabilityToken::issue_root(&root, &alice.did(), SPACE, Capability::Admin, EXP, &mut rng)
            .unwrap();
    let t1 = t0
        .delegate(&alice, &bob.did(), Capability::Write, EXP - 1, &mut rng)
        .unwrap();
    for (token, issuer) in [(&t0, &root), (&t1, &alice)] {
        let verifier = EdDSA
            .verifier_from_jwk(&josekit_public_ed25519(&issuer.did()))
            .unwrap();
        let (payload, header) = jwt::decode_with_verifier(token.as_str(), &verifier).unwrap();
        assert_eq!(header.algorithm(), Some("EdDSA"));
        assert_eq!(header.token_type(), Some("JWT"));
        assert_eq!(payload.issuer(), Some(issuer.did().to_string().as_str()));
        let aud = token.claims().audience.to_string();
        assert_eq!(
            payload.claim("aud").and_then(|v| v.as_str()),
            Some(aud.as_str())
        );
        let cap = token.claims().capability.as_str();
        assert_eq!(payload.claim("cap").and_then(|v| v.as_str()), Some(cap));
        // Under someone else's key josekit refuses it too.
        let other = EdDSA
            .verifier_from_jwk(&josekit_public_ed25519(&ident("mallory").did()))
            .unwrap();
        assert!(jwt::decode_with_verifier(token.as_str(), &other).is_err());
    }
}

fn josekit_sign(signer_name: &str, claims: &serde_json::Value) -> String {
    let signer = EdDSA
        .signer_from_jwk(&josekit_private_ed25519(signer_name))
        .unwrap();
    let mut header = JwsHeader::new();
    header.set_algorithm("EdDSA");
    header.set_token_type("JWT");
    let payload = JwtPayload::from_map(claims.as_object().unwrap().clone()).unwrap();
    jwt::encode_with_signer(&payload, &header, &signer).unwrap()
}

#[test]
fn josekit_signed_tokens_verify_here() {
    let (root, alice, bob) = (ident("root"), ident("alice"), ident("bob"));
    let t0 = josekit_sign(
        "root",
        &claims(&root, &alice, "admin", SPACE, EXP, [1; 16], None),
    );
    assert!(t0.starts_with(&format!("{HEADER_B64}.")), "{t0}");
    let t1 = josekit_sign(
        "alice",
        &claims(&alice, &bob, "write", SPACE, EXP - 5, [2; 16], Some(&t0)),
    );
    let token = CapabilityToken::parse(&t1).unwrap();
    let ok = verify_chain(&token, &root.did(), SPACE, &bob.did(), NOW, |_| false).unwrap();
    assert_eq!(ok.cap, Capability::Write);
    assert_eq!(ok.expires_at, EXP - 5);
    assert_eq!(token.chain_len(), 2);
    // josekit's signature over other claims is still refused here.
    let forged = josekit_sign(
        "mallory",
        &claims(&alice, &bob, "write", SPACE, EXP - 5, [2; 16], Some(&t0)),
    );
    assert_eq!(
        CapabilityToken::parse(&forged),
        Err(sealbase_crypto::CapabilityError::BadSignature { depth: 1 })
    );
}
