//! Property tests: the JOSE parsers never panic, and no single-character
//! change to a valid token or JWE is accepted.
#![cfg(not(target_arch = "wasm32"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod jose_support;

use std::sync::OnceLock;

use jose_support::{Replay, SPACE, ident};
use proptest::prelude::*;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use sealbase_crypto::{Capability, CapabilityToken, JweOptions, jwe, verify_chain};
use x25519_dalek::StaticSecret;

const EXP: u64 = 2_000_000_000;

fn chain() -> &'static CapabilityToken {
    static CHAIN: OnceLock<CapabilityToken> = OnceLock::new();
    CHAIN.get_or_init(|| {
        let (root, alice, bob, carol) =
            (ident("root"), ident("alice"), ident("bob"), ident("carol"));
        let mut rng = Replay::new(&[3; 48]);
        CapabilityToken::issue_root(&root, &alice.did(), SPACE, Capability::Admin, EXP, &mut rng)
            .unwrap()
            .delegate(&alice, &bob.did(), Capability::Write, EXP - 1, &mut rng)
            .unwrap()
            .delegate(&bob, &carol.did(), Capability::Read, EXP - 2, &mut rng)
            .unwrap()
    })
}

fn recipient() -> StaticSecret {
    StaticSecret::from([0x42; 32])
}

fn sealed() -> &'static str {
    static JWE: OnceLock<String> = OnceLock::new();
    JWE.get_or_init(|| {
        let public = sealbase_crypto::AgreementPublicKey(
            x25519_dalek::PublicKey::from(&recipient()).to_bytes(),
        );
        let options = JweOptions {
            kid: Some("k".into()),
            apu: Some(b"u".to_vec()),
            apv: Some(b"v".to_vec()),
        };
        jwe::encrypt(
            &public,
            b"app key",
            &options,
            &mut ChaCha20Rng::seed_from_u64(1),
        )
        .unwrap()
    })
}

/// Replaces the character at `index` (modulo length) with `with`.
fn mutate(text: &str, index: usize, with: char) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    let i = index % chars.len();
    chars[i] = with;
    chars.into_iter().collect()
}

const JOSE_LIKE: &str = "[A-Za-z0-9_\\-.=+/ ]{0,4096}";

proptest! {
    #[test]
    fn capability_parse_never_panics(s in "\\PC{0,2048}") {
        let _ = CapabilityToken::parse(&s);
    }

    #[test]
    fn capability_parse_never_panics_on_jose_like_input(s in JOSE_LIKE) {
        let _ = CapabilityToken::parse(&s);
    }

    #[test]
    fn no_single_character_change_to_a_token_is_accepted(
        index in any::<usize>(),
        with in proptest::char::range('!', '~'),
    ) {
        let original = chain().as_str();
        let mutated = mutate(original, index, with);
        prop_assume!(mutated != original);
        prop_assert!(CapabilityToken::parse(&mutated).is_err());
    }

    #[test]
    fn verify_chain_never_panics_and_never_widens(now in any::<u64>(), aud in 0usize..5) {
        let names = ["root", "alice", "bob", "carol", "mallory"];
        let audience = ident(names[aud]).did();
        let root = ident("root").did();
        if let Ok(v) = verify_chain(chain(), &root, SPACE, &audience, now, |_| false) {
            prop_assert_eq!(v.cap, Capability::Read);
            prop_assert!(now < v.expires_at);
            prop_assert_eq!(names[aud], "carol");
        }
    }

    #[test]
    fn jwe_decrypt_never_panics(s in JOSE_LIKE) {
        let _ = jwe::decrypt(&s, &recipient());
    }

    #[test]
    fn no_single_character_change_to_a_jwe_is_accepted(
        index in any::<usize>(),
        with in proptest::char::range('!', '~'),
    ) {
        let original = sealed();
        let mutated = mutate(original, index, with);
        prop_assume!(mutated != original);
        prop_assert!(jwe::decrypt(&mutated, &recipient()).is_err());
    }

    #[test]
    fn jwe_round_trips(
        plaintext in proptest::collection::vec(any::<u8>(), 0..512),
        apu in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..64)),
        apv in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..64)),
        kid in proptest::option::of("\\PC{0,32}"),
        seed in any::<u64>(),
    ) {
        let secret = recipient();
        let public = sealbase_crypto::AgreementPublicKey(x25519_dalek::PublicKey::from(&secret).to_bytes());
        let options = JweOptions { kid, apu, apv };
        let compact = jwe::encrypt(&public, &plaintext, &options, &mut ChaCha20Rng::seed_from_u64(seed)).unwrap();
        let (opened, header) = jwe::decrypt_with_header(&compact, &secret).unwrap();
        prop_assert_eq!(opened.as_slice(), plaintext.as_slice());
        prop_assert_eq!(header.kid, options.kid);
        prop_assert_eq!(header.apu, options.apu);
        prop_assert_eq!(header.apv, options.apv);
    }
}
