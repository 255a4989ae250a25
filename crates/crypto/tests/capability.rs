//! Capability chains: every check of `verify_chain` and `parse`, each error
//! variant reached on purpose. Runs natively and under wasm32 (Node).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod jose_support;

use jose_support::{
    OTHER_SPACE, Replay, SPACE, b64, claims, forge, forge_with_header, ident, swap_payload,
};
use sealbase_crypto::capability::{HEADER_B64, MAX_CHAIN_DEPTH, MAX_TOKEN_LEN};
use sealbase_crypto::{
    Capability, CapabilityError, CapabilityToken, Identity, TokenHash, VerifiedCapability,
    verify_chain,
};

const EXP: u64 = 2_000_000_000;
const NOW: u64 = 1_700_000_000;

fn rng(n: u8) -> Replay {
    Replay::new(&[n; 16 * 16])
}

/// root → alice (admin) → bob (write) → carol (read), expiries shrinking.
fn three_links() -> (CapabilityToken, CapabilityToken, CapabilityToken) {
    let (root, alice, bob, carol) = (ident("root"), ident("alice"), ident("bob"), ident("carol"));
    let mut r = rng(1);
    let t0 =
        CapabilityToken::issue_root(&root, &alice.did(), SPACE, Capability::Admin, EXP, &mut r)
            .unwrap();
    let t1 = t0
        .delegate(&alice, &bob.did(), Capability::Write, EXP - 100, &mut r)
        .unwrap();
    let t2 = t1
        .delegate(&bob, &carol.did(), Capability::Read, EXP - 200, &mut r)
        .unwrap();
    (t0, t1, t2)
}

fn verify(
    token: &CapabilityToken,
    audience: &Identity,
    now: u64,
) -> Result<VerifiedCapability, CapabilityError> {
    verify_chain(
        token,
        &ident("root").did(),
        SPACE,
        &audience.did(),
        now,
        |_| false,
    )
}

fn parse_and_verify(
    compact: &str,
    audience: &Identity,
) -> Result<VerifiedCapability, CapabilityError> {
    verify(&CapabilityToken::parse(compact)?, audience, NOW)
}

/// A chain of `len` links over fresh identities; returns it and its leaf holder.
fn chain_of(len: usize) -> (CapabilityToken, Identity) {
    let ids: Vec<Identity> = (0..=len)
        .map(|i| {
            if i == 0 {
                ident("root")
            } else {
                Identity::from_secrets(&[100 + i as u8; 32], &[200; 32])
            }
        })
        .collect();
    let mut r = rng(2);
    let mut token = CapabilityToken::issue_root(
        &ids[0],
        &ids[1].did(),
        SPACE,
        Capability::Admin,
        EXP,
        &mut r,
    )
    .unwrap();
    for i in 1..len {
        token = token
            .delegate(&ids[i], &ids[i + 1].did(), Capability::Write, EXP, &mut r)
            .unwrap();
    }
    (token, ids[len].clone())
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn chains_of_one_three_and_eight_links_verify() {
    for len in [1, 3, MAX_CHAIN_DEPTH] {
        let (token, holder) = chain_of(len);
        let parsed = CapabilityToken::parse(token.as_str()).unwrap();
        assert_eq!(parsed, token);
        assert_eq!(parsed.chain_len(), len);
        let ok = verify(&parsed, &holder, NOW).unwrap();
        let expected_cap = if len == 1 {
            Capability::Admin
        } else {
            Capability::Write
        };
        assert_eq!(ok.cap, expected_cap);
        assert_eq!(ok.space, SPACE);
        assert_eq!(ok.chain, parsed.chain_hashes());
        assert_eq!(ok.chain.last(), Some(&parsed.hash()));
    }
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn verified_chain_reports_leaf_cap_and_earliest_expiry() {
    let (t0, t1, t2) = three_links();
    let ok = verify(&t2, &ident("carol"), NOW).unwrap();
    assert_eq!(ok.cap, Capability::Read);
    assert_eq!(ok.expires_at, EXP - 200);
    assert_eq!(ok.chain, vec![t0.hash(), t1.hash(), t2.hash()]);
    assert_eq!(
        verify(&t1, &ident("bob"), NOW).unwrap().cap,
        Capability::Write
    );
    assert_eq!(
        verify(&t0, &ident("alice"), NOW).unwrap().cap,
        Capability::Admin
    );
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn hash_is_sha256_of_the_exact_compact_string() {
    let (_, _, t2) = three_links();
    assert_eq!(t2.hash(), TokenHash::of_compact(t2.as_str()));
    assert_eq!(t2.to_string(), t2.as_str());
    assert_eq!(t2.as_str().parse::<CapabilityToken>().unwrap(), t2);
    // Independent: hash the bytes ourselves.
    use sha2::Digest;
    let digest: [u8; 32] = sha2::Sha256::digest(t2.as_str().as_bytes()).into();
    assert_eq!(t2.hash().as_bytes(), &digest);
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn expiry_is_checked_on_every_link_and_now_equal_to_exp_is_expired() {
    let (_, _, t2) = three_links();
    let carol = ident("carol");
    assert!(verify(&t2, &carol, EXP - 201).is_ok());
    assert_eq!(
        verify(&t2, &carol, EXP - 200),
        Err(CapabilityError::Expired { depth: 2 })
    );
    assert_eq!(
        verify(&t2, &carol, EXP - 100),
        Err(CapabilityError::Expired { depth: 1 })
    );
    assert_eq!(
        verify(&t2, &carol, EXP),
        Err(CapabilityError::Expired { depth: 0 })
    );
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn revoking_any_link_revokes_the_chain_below_it() {
    let (t0, t1, t2) = three_links();
    let root = ident("root").did();
    let carol = ident("carol").did();
    for (depth, revoked) in [t0.hash(), t1.hash(), t2.hash()].into_iter().enumerate() {
        assert_eq!(
            verify_chain(&t2, &root, SPACE, &carol, NOW, |h| *h == revoked),
            Err(CapabilityError::Revoked { depth })
        );
    }
    // Revoking the middle link leaves its parent usable by its own holder.
    let middle = t1.hash();
    assert!(
        verify_chain(&t0, &root, SPACE, &ident("alice").did(), NOW, |h| *h
            == middle)
        .is_ok()
    );
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn wrong_root_wrong_audience_and_wrong_space_are_refused() {
    let (_, _, t2) = three_links();
    let carol = ident("carol").did();
    assert_eq!(
        verify_chain(&t2, &ident("mallory").did(), SPACE, &carol, NOW, |_| false),
        Err(CapabilityError::WrongRoot)
    );
    assert_eq!(
        verify(&t2, &ident("bob"), NOW),
        Err(CapabilityError::WrongAudience)
    );
    assert_eq!(
        verify_chain(&t2, &ident("root").did(), OTHER_SPACE, &carol, NOW, |_| {
            false
        }),
        Err(CapabilityError::ResourceMismatch { depth: 0 })
    );
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn delegate_refuses_escalation_and_strangers() {
    let (_, t1, _) = three_links();
    let (bob, carol) = (ident("bob"), ident("carol"));
    let mut r = rng(3);
    assert_eq!(
        t1.delegate(&ident("mallory"), &carol.did(), Capability::Read, 1, &mut r),
        Err(CapabilityError::NotHolder)
    );
    assert_eq!(
        t1.delegate(&bob, &carol.did(), Capability::Admin, EXP - 100, &mut r),
        Err(CapabilityError::CapEscalation { depth: 2 })
    );
    assert_eq!(
        t1.delegate(&bob, &carol.did(), Capability::Write, EXP - 99, &mut r),
        Err(CapabilityError::ExpiryEscalation { depth: 2 })
    );
    // Equal rights are fine: attenuation is "at most", not "strictly less".
    assert!(
        t1.delegate(&bob, &carol.did(), Capability::Write, EXP - 100, &mut r)
            .is_ok()
    );
}

/// Links the API refuses to build, signed by hand with valid signatures:
/// only `verify_chain`'s authority checks stand between them and access.
#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn forged_links_fail_the_authority_checks() {
    let (_, t1, _) = three_links();
    let (bob, carol, mallory) = (ident("bob"), ident("carol"), ident("mallory"));
    let parent = Some(t1.as_str());
    let n = [9; 16];
    let cases = [
        (
            forge(
                &bob,
                &claims(&bob, &carol, "admin", SPACE, EXP - 100, n, parent),
            ),
            CapabilityError::CapEscalation { depth: 2 },
        ),
        (
            forge(
                &bob,
                &claims(&bob, &carol, "read", SPACE, EXP - 99, n, parent),
            ),
            CapabilityError::ExpiryEscalation { depth: 2 },
        ),
        (
            forge(
                &bob,
                &claims(&bob, &carol, "read", OTHER_SPACE, 1, n, parent),
            ),
            CapabilityError::ResourceMismatch { depth: 2 },
        ),
        (
            forge(
                &mallory,
                &claims(&mallory, &carol, "read", SPACE, 1, n, parent),
            ),
            CapabilityError::BrokenChain { depth: 2 },
        ),
    ];
    for (compact, expected) in cases {
        assert_eq!(
            parse_and_verify(&compact, &carol),
            Err(expected.clone()),
            "{expected}"
        );
        assert_eq!(expected.depth(), Some(2));
    }
    // Mallory self-issuing a "root" for the space is not rooted at the space.
    let fake_root = forge(
        &mallory,
        &claims(&mallory, &carol, "admin", SPACE, EXP, n, None),
    );
    assert_eq!(
        parse_and_verify(&fake_root, &carol),
        Err(CapabilityError::WrongRoot)
    );
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn tampering_breaks_the_signature_at_the_tampered_depth() {
    let (t0, t1, _) = three_links();
    let (alice, bob) = (ident("alice"), ident("bob"));

    // Flip one signature byte of the leaf (keeping the base64url canonical).
    let (input, sig) = t1.as_str().rsplit_once('.').unwrap();
    let mut sig = jose_support::unb64(sig);
    sig[0] ^= 1;
    let bad_sig = format!("{input}.{}", b64(&sig));
    assert_eq!(
        CapabilityToken::parse(&bad_sig),
        Err(CapabilityError::BadSignature { depth: 1 })
    );

    // Raise the leaf's cap in the payload, keeping the old signature.
    let mut payload = claims(
        &alice,
        &bob,
        "admin",
        SPACE,
        EXP - 100,
        [1; 16],
        Some(t0.as_str()),
    );
    payload["nnc"] = serde_json::Value::String(t1_nonce(&t1));
    let swapped = swap_payload(t1.as_str(), &payload);
    assert_eq!(
        CapabilityToken::parse(&swapped),
        Err(CapabilityError::BadSignature { depth: 1 })
    );

    // Tamper with the root inside a validly signed child: depth 0 fails.
    let mut root_payload = claims(
        &ident("root"),
        &alice,
        "admin",
        SPACE,
        EXP + 1,
        [1; 16],
        None,
    );
    root_payload["nnc"] = serde_json::Value::String(b64(&t0.claims().nonce));
    let bad_root = swap_payload(t0.as_str(), &root_payload);
    let child = forge(
        &alice,
        &claims(&alice, &bob, "write", SPACE, 1, [2; 16], Some(&bad_root)),
    );
    assert_eq!(
        CapabilityToken::parse(&child),
        Err(CapabilityError::BadSignature { depth: 0 })
    );

    // A link signed by someone other than its `iss`.
    let impostor = forge(
        &bob,
        &claims(&alice, &bob, "write", SPACE, 1, [3; 16], Some(t0.as_str())),
    );
    assert_eq!(
        CapabilityToken::parse(&impostor),
        Err(CapabilityError::BadSignature { depth: 1 })
    );
}

fn t1_nonce(t: &CapabilityToken) -> String {
    b64(&t.claims().nonce)
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn foreign_headers_are_refused_at_every_depth() {
    let (t0, _, _) = three_links();
    let (alice, bob) = (ident("alice"), ident("bob"));
    let payload = claims(&ident("root"), &alice, "admin", SPACE, EXP, [4; 16], None);
    let payload_b64 = b64(&serde_json::to_vec(&payload).unwrap());
    let headers = [
        r#"{"alg":"none","typ":"JWT"}"#,
        r#"{"alg":"HS256","typ":"JWT"}"#,
        r#"{"alg":"ES256","typ":"JWT"}"#,
        r#"{"alg":"EdDSA"}"#,
        r#"{"typ":"JWT","alg":"EdDSA"}"#,
        r#"{"alg":"EdDSA","typ":"JWT","crit":["exp"]}"#,
        r#"{"alg":"EdDSA","typ":"JWT","kid":"x"}"#,
        r#"{"alg":"EdDSA", "typ":"JWT"}"#,
    ];
    for header in headers {
        let h = b64(header.as_bytes());
        // alg "none": empty signature part, as an attacker would send it.
        let none = format!("{h}.{payload_b64}.");
        assert_eq!(
            CapabilityToken::parse(&none),
            Err(CapabilityError::UnsupportedHeader),
            "{header}"
        );
        let signed = forge_with_header(&ident("root"), &h, &payload);
        assert_eq!(
            CapabilityToken::parse(&signed),
            Err(CapabilityError::UnsupportedHeader),
            "{header}"
        );
        // The same header on the parent, under a valid child.
        let child = forge(
            &alice,
            &claims(&alice, &bob, "read", SPACE, 1, [5; 16], Some(&signed)),
        );
        assert_eq!(
            CapabilityToken::parse(&child),
            Err(CapabilityError::UnsupportedHeader),
            "{header}"
        );
    }
    // Non-canonical spellings of our own header.
    let rest = t0.as_str().strip_prefix(HEADER_B64).unwrap();
    for header in [
        format!("{HEADER_B64}="),
        HEADER_B64.replace('J', "J "),
        "eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCJ9".to_uppercase(),
    ] {
        assert_eq!(
            CapabilityToken::parse(&format!("{header}{rest}")),
            Err(CapabilityError::UnsupportedHeader)
        );
    }
    assert!(CapabilityToken::parse(t0.as_str()).is_ok());
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn size_and_depth_limits() {
    let too_large = "a".repeat(MAX_TOKEN_LEN + 1);
    assert_eq!(
        CapabilityToken::parse(&too_large),
        Err(CapabilityError::TooLarge)
    );

    let (eight, holder) = chain_of(MAX_CHAIN_DEPTH);
    let ninth = Identity::from_secrets(&[250; 32], &[1; 32]);
    let mut r = rng(6);
    assert_eq!(
        eight.delegate(&holder, &ninth.did(), Capability::Read, 1, &mut r),
        Err(CapabilityError::TooDeep)
    );
    // Forged by hand: still refused by the parser, before any signature work.
    let nine = forge(
        &holder,
        &claims(
            &holder,
            &ninth,
            "read",
            SPACE,
            1,
            [6; 16],
            Some(eight.as_str()),
        ),
    );
    assert!(nine.len() <= MAX_TOKEN_LEN);
    assert_eq!(CapabilityToken::parse(&nine), Err(CapabilityError::TooDeep));
    assert_eq!(CapabilityError::TooDeep.depth(), None);
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn malformed_links_name_the_failing_part() {
    let (t0, _, _) = three_links();
    let (root, alice) = (ident("root"), ident("alice"));
    let good = claims(&root, &alice, "admin", SPACE, EXP, [7; 16], None);
    let malformed = |what| Err(CapabilityError::Malformed { what });

    let with = |key: &str, value: serde_json::Value| {
        let mut p = good.clone();
        p[key] = value;
        forge(&root, &p)
    };
    let without = |key: &str| {
        let mut p = good.clone();
        p.as_object_mut().unwrap().remove(key);
        forge(&root, &p)
    };
    let s = |v: &str| serde_json::Value::String(v.to_owned());
    let upper = format!("space:{}", SPACE.hyphenated())
        .to_uppercase()
        .replace("SPACE", "space");
    let cases: Vec<(String, &str)> = vec![
        ("a.b".into(), "expected three parts"),
        (format!("{}.x", t0.as_str()), "expected three parts"),
        (format!("{HEADER_B64}.e30=.AA"), "payload base64url"),
        (
            t0.as_str().rsplit_once('.').unwrap().0.to_owned() + ".AAAA",
            "signature",
        ),
        (forge_raw(&root, b"not json"), "payload claims"),
        (with("extra", s("x")), "payload claims"),
        (with("prf", serde_json::Value::Null), "payload claims"),
        (with("cap", s("owner")), "payload claims"),
        (with("exp", serde_json::json!(-1)), "payload claims"),
        (with("exp", serde_json::json!(1.5)), "payload claims"),
        (without("exp"), "payload claims"),
        (without("nnc"), "payload claims"),
        (with("iss", s("did:web:example.com")), "iss"),
        (with("aud", s("alice")), "aud"),
        (with("res", s(&upper)), "res"),
        (with("res", s(&SPACE.simple().to_string())), "res"),
        (with("res", s(&format!("space:{}", SPACE.simple()))), "res"),
        (with("nnc", s(&b64(&[1; 15]))), "nnc"),
        (with("nnc", s("AAAAAAAAAAAAAAAAAAAAAA==")), "nnc"),
    ];
    for (compact, what) in cases {
        assert_eq!(
            CapabilityToken::parse(&compact),
            malformed(what),
            "{what}: {compact}"
        );
    }
}

fn forge_raw(signer: &Identity, payload: &[u8]) -> String {
    let input = format!("{HEADER_B64}.{}", b64(payload));
    let sig = signer.sign(input.as_bytes());
    format!("{input}.{}", b64(&sig))
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn error_codes_are_distinct() {
    use CapabilityError as E;
    let all = [
        E::TooLarge,
        E::TooDeep,
        E::Malformed { what: "x" },
        E::UnsupportedHeader,
        E::BadSignature { depth: 0 },
        E::WrongRoot,
        E::BrokenChain { depth: 1 },
        E::CapEscalation { depth: 1 },
        E::ExpiryEscalation { depth: 1 },
        E::ResourceMismatch { depth: 0 },
        E::WrongAudience,
        E::Expired { depth: 0 },
        E::Revoked { depth: 0 },
        E::NotHolder,
    ];
    let mut codes: Vec<&str> = all.iter().map(CapabilityError::code).collect();
    codes.sort_unstable();
    codes.dedup();
    assert_eq!(codes.len(), all.len());
}
