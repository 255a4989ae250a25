//! Access-token verification: every check with a token josekit minted, and
//! the remote JWKS cache against a local HTTP server that counts requests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use josekit::jws::JwsHeader;
use josekit::{Map, Value};
use sealbase_sync::auth::{AuthError, JwksError, KeySource, TokenVerifier, VerifierConfig};
use sealbase_sync::testing::{TEST_AUDIENCE, TEST_ISSUER, TestClaims, TestIssuer, jwks_json};

const NOW: u64 = 1_800_000_000;
const SKEW: u64 = 30;

fn issuer(kid: &str) -> TestIssuer {
    TestIssuer::generate(kid).unwrap()
}

/// Mints `claims` after `edit` changed their JSON.
fn mint_edited(issuer: &TestIssuer, edit: impl FnOnce(&mut Map<String, Value>)) -> String {
    let mut json = TestClaims::new(NOW).to_json();
    edit(&mut json);
    issuer.mint_json(&json).unwrap()
}

/// Unpadded base64url, to forge headers josekit would not produce.
fn b64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = |i: usize| u32::from(chunk.get(i).copied().unwrap_or(0));
        let n = (b(0) << 16) | (b(1) << 8) | b(2);
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

/// `token` with its header replaced by `header_json`.
fn with_header(token: &str, header_json: &str) -> String {
    let rest = token.split_once('.').unwrap().1;
    format!("{}.{rest}", b64url(header_json.as_bytes()))
}

async fn verify(
    verifier: &TokenVerifier,
    token: &str,
) -> Result<sealbase_sync::auth::AccessToken, AuthError> {
    verifier.verify(token, NOW).await
}

// ---------------------------------------------------------------- static keys

#[tokio::test]
async fn a_valid_token_verifies_to_its_claims() {
    let issuer = issuer("k1");
    let verifier = issuer.verifier().unwrap();
    let mut claims = TestClaims::new(NOW);
    claims.scope = vec!["sync".into(), "files".into()];
    let token = issuer.mint(&claims).unwrap();
    let access = verify(&verifier, &token).await.unwrap();
    assert_eq!(access.user, claims.user);
    assert_eq!(access.personal_space, claims.personal_space);
    assert_eq!(access.did, claims.did);
    assert_eq!(access.client_id, claims.client_id);
    assert_eq!(access.scope, ["sync", "files"]);
    assert_eq!(access.expires_at, claims.expires_at);
    // Clones share one configuration and key set.
    assert_eq!(verify(&verifier.clone(), &token).await.unwrap(), access);
}

#[tokio::test]
async fn size_is_checked_before_parsing() {
    let issuer = issuer("k1");
    let verifier = issuer.verifier().unwrap();
    assert_eq!(
        verify(&verifier, &"a".repeat(8 * 1024 + 1)).await,
        Err(AuthError::TooLarge)
    );
    // A valid token padded past the limit with a huge claim.
    let big = mint_edited(&issuer, |c| {
        c.insert("pad".into(), Value::from("x".repeat(8 * 1024)));
    });
    assert_eq!(verify(&verifier, &big).await, Err(AuthError::TooLarge));
    // The limit is configurable.
    let mut config = issuer.verifier_config();
    config.max_token_len = 100;
    let small = TokenVerifier::new(config).unwrap();
    let (token, _) = issuer.mint_now(NOW).unwrap();
    assert_eq!(verify(&small, &token).await, Err(AuthError::TooLarge));
}

#[tokio::test]
async fn malformed_tokens_are_refused() {
    let issuer = issuer("k1");
    let verifier = issuer.verifier().unwrap();
    let (token, _) = issuer.mint_now(NOW).unwrap();
    let bad_header = format!("!!!.{}", token.split_once('.').unwrap().1);
    let not_json = with_header(&token, "not json");
    let array_header = with_header(&token, r#"["EdDSA"]"#);
    let alg_number = with_header(&token, r#"{"alg":1,"kid":"k1"}"#);
    let no_alg = with_header(&token, r#"{"kid":"k1"}"#);
    let five_parts = format!("{token}.a.b");
    for bad in [
        "",
        "abc",
        "a.b",
        ".",
        "..",
        five_parts.as_str(),
        bad_header.as_str(),
        not_json.as_str(),
        array_header.as_str(),
        alg_number.as_str(),
        no_alg.as_str(),
    ] {
        assert_eq!(
            verify(&verifier, bad).await,
            Err(AuthError::Malformed),
            "{bad:?}"
        );
    }
    // Signed by the right key, but the payload is not a JSON object.
    let mut header = JwsHeader::new();
    header.set_key_id("k1");
    for payload in [&b"[1,2]"[..], b"not json", b""] {
        let signed = issuer.sign_payload(&header, payload).unwrap();
        assert_eq!(verify(&verifier, &signed).await, Err(AuthError::Malformed));
    }
    // A broken signature part is malformed, not a bad signature.
    let (head, _) = token.rsplit_once('.').unwrap();
    let bad_sig = format!("{head}.!!!");
    assert_eq!(verify(&verifier, &bad_sig).await, Err(AuthError::Malformed));
}

#[tokio::test]
async fn only_eddsa_is_accepted() {
    let issuer = issuer("k1");
    let verifier = issuer.verifier().unwrap();
    let claims = TestClaims::new(NOW);
    let none = issuer.mint_unsigned(&claims).unwrap();
    assert!(none.ends_with('.'), "{none}");
    assert_eq!(
        verify(&verifier, &none).await,
        Err(AuthError::UnsupportedAlgorithm)
    );
    // HMAC keyed with the published public key: the algorithm-confusion forgery.
    let hs = issuer.mint_hs256(&claims).unwrap();
    assert_eq!(
        verify(&verifier, &hs).await,
        Err(AuthError::UnsupportedAlgorithm)
    );
    // A valid EdDSA token relabelled: the header decides nothing.
    let valid = issuer.mint(&claims).unwrap();
    for alg in ["RS256", "ES256", "HS256", "none", "eddsa", "Ed25519"] {
        let relabelled = with_header(&valid, &format!(r#"{{"alg":"{alg}","kid":"k1"}}"#));
        assert_eq!(
            verify(&verifier, &relabelled).await,
            Err(AuthError::UnsupportedAlgorithm),
            "{alg}"
        );
    }
}

#[tokio::test]
async fn critical_header_extensions_are_refused() {
    let issuer = issuer("k1");
    let verifier = issuer.verifier().unwrap();
    let mut header = JwsHeader::new();
    header
        .set_claim("crit", Some(serde_json::json!(["exp"])))
        .unwrap();
    header.set_claim("exp", Some(Value::from(NOW))).unwrap();
    let token = issuer
        .mint_with_header(header, &TestClaims::new(NOW).to_json())
        .unwrap();
    assert_eq!(verify(&verifier, &token).await, Err(AuthError::Malformed));
}

#[tokio::test]
async fn the_key_must_be_named_and_known() {
    let issuer = issuer("k1");
    let verifier = issuer.verifier().unwrap();
    let (token, _) = issuer.mint_now(NOW).unwrap();
    for header in [
        r#"{"alg":"EdDSA"}"#,
        r#"{"alg":"EdDSA","kid":""}"#,
        r#"{"alg":"EdDSA","kid":"k2"}"#,
    ] {
        assert_eq!(
            verify(&verifier, &with_header(&token, header)).await,
            Err(AuthError::UnknownKey),
            "{header}"
        );
    }
    let (stranger, _) = self::issuer("k2").mint_now(NOW).unwrap();
    assert_eq!(
        verify(&verifier, &stranger).await,
        Err(AuthError::UnknownKey)
    );
}

#[tokio::test]
async fn signatures_must_verify_under_the_named_key() {
    let issuer = issuer("k1");
    let verifier = issuer.verifier().unwrap();
    let claims = TestClaims::new(NOW);
    let forged = issuer.mint_with_wrong_key(&claims).unwrap();
    assert_eq!(
        verify(&verifier, &forged).await,
        Err(AuthError::BadSignature)
    );
    // Someone else's claims under our signature.
    let ours = issuer.mint(&claims).unwrap();
    let theirs = issuer.mint(&TestClaims::new(NOW)).unwrap();
    let (our_header, rest) = ours.split_once('.').unwrap();
    let our_sig = rest.split_once('.').unwrap().1;
    let their_payload = theirs.split('.').nth(1).unwrap();
    let spliced = format!("{our_header}.{their_payload}.{our_sig}");
    assert_eq!(
        verify(&verifier, &spliced).await,
        Err(AuthError::BadSignature)
    );
    // A header change breaks the signature too (typ dropped, same alg and kid).
    let rewrapped = with_header(&ours, r#"{"kid":"k1","alg":"EdDSA"}"#);
    assert_eq!(
        verify(&verifier, &rewrapped).await,
        Err(AuthError::BadSignature)
    );
}

#[tokio::test]
async fn the_issuer_must_match() {
    let issuer = issuer("k1");
    let verifier = issuer.verifier().unwrap();
    for iss in [
        Some(Value::from("https://evil.test")),
        Some(Value::from("")),
        None,
    ] {
        let token = mint_edited(&issuer, |c| match iss {
            Some(iss) => {
                c.insert("iss".into(), iss);
            }
            None => {
                c.remove("iss");
            }
        });
        assert_eq!(verify(&verifier, &token).await, Err(AuthError::WrongIssuer));
    }
}

#[tokio::test]
async fn the_audience_may_be_a_string_or_an_array() {
    let issuer = issuer("k1");
    let verifier = issuer.verifier().unwrap();
    let with_aud = |aud: Option<Value>| {
        mint_edited(&issuer, |c| match aud {
            Some(aud) => {
                c.insert("aud".into(), aud);
            }
            None => {
                c.remove("aud");
            }
        })
    };
    let string = with_aud(Some(Value::from(TEST_AUDIENCE)));
    let array = with_aud(Some(serde_json::json!(["other", TEST_AUDIENCE])));
    assert!(verify(&verifier, &string).await.is_ok());
    assert!(verify(&verifier, &array).await.is_ok());
    let wrong = [
        with_aud(Some(Value::from("other"))),
        with_aud(Some(serde_json::json!(["other", "more"]))),
        with_aud(Some(serde_json::json!([]))),
        with_aud(None),
    ];
    for token in &wrong {
        assert_eq!(
            verify(&verifier, token).await,
            Err(AuthError::WrongAudience)
        );
    }
    // Without a configured audience, any (or no) audience is accepted.
    let mut config = issuer.verifier_config();
    config.audience = None;
    let any = TokenVerifier::new(config).unwrap();
    for token in wrong.iter().chain([&string, &array]) {
        assert!(verify(&any, token).await.is_ok());
    }
}

#[tokio::test]
async fn expiry_allows_the_clock_skew_and_no_more() {
    let issuer = issuer("k1");
    let verifier = issuer.verifier().unwrap();
    let with_exp = |exp: u64| {
        let mut claims = TestClaims::new(NOW - 600);
        claims.expires_at = exp;
        issuer.mint(&claims).unwrap()
    };
    assert!(verify(&verifier, &with_exp(NOW + 1)).await.is_ok());
    assert!(
        verify(&verifier, &with_exp(NOW)).await.is_ok(),
        "within skew"
    );
    assert!(
        verify(&verifier, &with_exp(NOW - SKEW + 1)).await.is_ok(),
        "within skew"
    );
    assert_eq!(
        verify(&verifier, &with_exp(NOW - SKEW)).await,
        Err(AuthError::Expired)
    );
    assert_eq!(
        verify(&verifier, &issuer.mint_expired(NOW).unwrap()).await,
        Err(AuthError::Expired)
    );
    // With no skew, exp is the first second the token is invalid.
    let mut config = issuer.verifier_config();
    config.clock_skew_secs = 0;
    let strict = TokenVerifier::new(config).unwrap();
    assert!(verify(&strict, &with_exp(NOW + 1)).await.is_ok());
    assert_eq!(
        verify(&strict, &with_exp(NOW)).await,
        Err(AuthError::Expired)
    );
}

#[tokio::test]
async fn tokens_from_the_future_are_not_valid_yet() {
    let issuer = issuer("k1");
    let verifier = issuer.verifier().unwrap();
    let issued = |iat: u64| issuer.mint(&TestClaims::new(iat)).unwrap();
    assert!(
        verify(&verifier, &issued(NOW + SKEW)).await.is_ok(),
        "within skew"
    );
    assert_eq!(
        verify(&verifier, &issued(NOW + SKEW + 1)).await,
        Err(AuthError::NotYetValid)
    );
    let nbf = |nbf: u64| {
        mint_edited(&issuer, |c| {
            c.insert("nbf".into(), Value::from(nbf));
        })
    };
    assert!(verify(&verifier, &nbf(NOW + SKEW)).await.is_ok());
    assert_eq!(
        verify(&verifier, &nbf(NOW + SKEW + 1)).await,
        Err(AuthError::NotYetValid)
    );
}

#[tokio::test]
async fn each_claim_is_checked_by_name() {
    let issuer = issuer("k1");
    let verifier = issuer.verifier().unwrap();
    let user = TestClaims::new(NOW).user;
    // A did:key of an X25519 key (multicodec 0xec, "z6LS…"), not Ed25519.
    let x25519_did = "did:key:z6LSeu9HkTHSfLLeUs2nnzUSNedgDUevfNQgQjQC23ZCit6F";
    let cases: Vec<(&str, Option<Value>, &str)> = vec![
        ("sub", None, "sub"),
        ("sub", Some(Value::from("alice")), "sub"),
        ("sub", Some(Value::from(user.simple().to_string())), "sub"),
        ("sub", Some(Value::from(user.urn().to_string())), "sub"),
        ("personal_space_id", None, "personal_space_id"),
        (
            "personal_space_id",
            Some(Value::from(7)),
            "personal_space_id",
        ),
        (
            "personal_space_id",
            Some(Value::from("not-a-uuid-but-36-characters-long!!")),
            "personal_space_id",
        ),
        ("did", None, "did"),
        ("did", Some(Value::from("did:web:example.com")), "did"),
        ("did", Some(Value::from(x25519_did)), "did"),
        ("did", Some(serde_json::json!({"id": "did:key:z"})), "did"),
        ("client_id", None, "client_id"),
        ("client_id", Some(Value::from("")), "client_id"),
        ("client_id", Some(Value::from(3)), "client_id"),
        ("scope", Some(Value::from(1)), "scope"),
        ("scope", Some(serde_json::json!(["sync", 2])), "scope"),
        ("exp", None, "exp"),
        ("exp", Some(Value::from(1.9e9)), "exp"),
        ("iat", None, "iat"),
        ("iat", Some(Value::from(1.7e9)), "iat"),
        ("nbf", Some(Value::from(1.7e9)), "nbf"),
    ];
    for (claim, value, named) in cases {
        let token = mint_edited(&issuer, |c| match value.clone() {
            Some(value) => {
                c.insert(claim.into(), value);
            }
            None => {
                c.remove(claim);
            }
        });
        assert_eq!(
            verify(&verifier, &token).await,
            Err(AuthError::BadClaim(named)),
            "{claim} = {value:?}"
        );
    }
    // Scope: absent is empty, an array is taken as is, a string is split.
    for (scope, expected) in [
        (None, vec![]),
        (Some(serde_json::json!(["a", "b"])), vec!["a", "b"]),
        (Some(Value::from("  a  b ")), vec!["a", "b"]),
    ] {
        let token = mint_edited(&issuer, |c| match scope {
            Some(scope) => {
                c.insert("scope".into(), scope);
            }
            None => {
                c.remove("scope");
            }
        });
        assert_eq!(verify(&verifier, &token).await.unwrap().scope, expected);
    }
    // Upper-case hyphenated UUIDs are the same id.
    let upper = mint_edited(&issuer, |c| {
        c.insert(
            "sub".into(),
            Value::from(user.hyphenated().to_string().to_uppercase()),
        );
    });
    assert_eq!(verify(&verifier, &upper).await.unwrap().user, user);
}

#[tokio::test]
async fn errors_never_carry_the_token() {
    let issuer = issuer("k1");
    let verifier = issuer.verifier().unwrap();
    let claims = TestClaims::new(NOW);
    for token in [
        issuer.mint_unsigned(&claims).unwrap(),
        issuer.mint_with_wrong_key(&claims).unwrap(),
        issuer.mint_expired(NOW).unwrap(),
        "x.y.z".to_owned(),
    ] {
        let err = verify(&verifier, &token).await.unwrap_err();
        for part in token.split('.').filter(|p| p.len() > 3) {
            assert!(!format!("{err} {err:?}").contains(part), "{err:?}");
        }
    }
}

#[tokio::test]
async fn a_jwks_with_two_keys_accepts_either() {
    let (old, new) = (issuer("2025-01"), issuer("2025-02"));
    let mut config = VerifierConfig::new(TEST_ISSUER, KeySource::Static(jwks_json(&[&old, &new])));
    config.audience = Some(TEST_AUDIENCE.into());
    let verifier = TokenVerifier::new(config).unwrap();
    for issuer in [&old, &new] {
        let (token, claims) = issuer.mint_now(NOW).unwrap();
        assert_eq!(verify(&verifier, &token).await.unwrap().user, claims.user);
    }
    let (retired, _) = issuer("2024-12").mint_now(NOW).unwrap();
    assert_eq!(
        verify(&verifier, &retired).await,
        Err(AuthError::UnknownKey)
    );
}

#[tokio::test]
async fn only_ed25519_signing_keys_of_a_jwks_are_used() {
    let good = issuer("good");
    let mut entries = vec![good.public_jwk()];
    // Same key material under other kids, each disqualified by one field.
    let mut variant = |kid: &str, edit: &dyn Fn(&mut Map<String, Value>)| {
        let mut jwk = good.public_jwk().as_object().unwrap().clone();
        jwk.insert("kid".into(), Value::from(kid));
        edit(&mut jwk);
        entries.push(Value::Object(jwk));
    };
    variant("alg-es256", &|j| {
        j.insert("alg".into(), Value::from("ES256"));
    });
    variant("use-enc", &|j| {
        j.insert("use".into(), Value::from("enc"));
    });
    variant("ops-sign", &|j| {
        j.insert("key_ops".into(), serde_json::json!(["sign"]));
    });
    variant("ops-verify", &|j| {
        j.insert("key_ops".into(), serde_json::json!(["verify"]));
    });
    variant("crv-x25519", &|j| {
        j.insert("crv".into(), Value::from("X25519"));
    });
    variant("kty-ec", &|j| {
        j.insert("kty".into(), Value::from("EC"));
    });
    variant("short-x", &|j| {
        j.insert("x".into(), Value::from("AAAA"));
    });
    variant("no-alg", &|j| {
        j.remove("alg");
        j.remove("use");
    });
    entries.push(serde_json::json!({"kty": "RSA", "kid": "rsa", "n": "AQAB", "e": "AQAB"}));
    entries.push(serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": "junk"}));
    entries.push(Value::from(42));
    let jwks = serde_json::json!({ "keys": entries }).to_string();
    let mut config = VerifierConfig::new(TEST_ISSUER, KeySource::Static(jwks));
    config.audience = Some(TEST_AUDIENCE.into());
    let verifier = TokenVerifier::new(config).unwrap();

    let claims = TestClaims::new(NOW);
    for (kid, expected) in [
        ("good", Ok(())),
        ("ops-verify", Ok(())),
        ("no-alg", Ok(())),
        ("alg-es256", Err(AuthError::UnknownKey)),
        ("use-enc", Err(AuthError::UnknownKey)),
        ("ops-sign", Err(AuthError::UnknownKey)),
        ("crv-x25519", Err(AuthError::UnknownKey)),
        ("kty-ec", Err(AuthError::UnknownKey)),
        ("short-x", Err(AuthError::UnknownKey)),
    ] {
        // The same private key signs under each kid.
        let token = sign_under_kid(&good, kid, &claims);
        assert_eq!(
            verify(&verifier, &token).await.map(|_| ()),
            expected,
            "{kid}"
        );
    }
}

/// `claims` signed by `issuer`'s key but naming `kid` in the header.
fn sign_under_kid(issuer: &TestIssuer, kid: &str, claims: &TestClaims) -> String {
    let mut header = JwsHeader::new();
    header.set_key_id(kid);
    header.set_algorithm("EdDSA");
    let payload = serde_json::to_vec(&Value::Object(claims.to_json())).unwrap();
    issuer.sign_payload(&header, &payload).unwrap()
}

#[tokio::test]
async fn unusable_static_jwks_is_a_configuration_error() {
    let static_keys = |jwks: &str| {
        TokenVerifier::new(VerifierConfig::new(
            TEST_ISSUER,
            KeySource::Static(jwks.into()),
        ))
    };
    assert!(matches!(static_keys("not json"), Err(JwksError::Malformed)));
    assert!(matches!(
        static_keys(r#"{"keys": 1}"#),
        Err(JwksError::Malformed)
    ));
    assert!(matches!(
        static_keys(r#"{"keys": []}"#),
        Err(JwksError::NoUsableKey)
    ));
    let big = format!(r#"{{"keys": [], "pad": "{}"}}"#, "x".repeat(64 * 1024));
    assert!(matches!(static_keys(&big), Err(JwksError::TooLarge)));
}

// ---------------------------------------------------------------- remote keys

/// A JWKS endpoint on 127.0.0.1 that counts requests; with no body it
/// answers 500.
#[derive(Clone)]
struct JwksServer {
    url: String,
    hits: Arc<AtomicUsize>,
    body: Arc<Mutex<Option<String>>>,
    delay: Arc<Mutex<Duration>>,
}

impl JwksServer {
    async fn start(body: Option<String>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = Self {
            url: format!("http://{addr}/.well-known/jwks.json"),
            hits: Arc::default(),
            body: Arc::new(Mutex::new(body)),
            delay: Arc::default(),
        };
        let app = Router::new()
            .route("/.well-known/jwks.json", get(serve_jwks))
            .with_state(server.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        server
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    fn publish(&self, body: Option<String>) {
        *self.body.lock().unwrap() = body;
    }

    fn delay(&self, delay: Duration) {
        *self.delay.lock().unwrap() = delay;
    }

    fn verifier(&self, refetch_interval: Duration) -> TokenVerifier {
        TokenVerifier::new(remote_config(&self.url, refetch_interval)).unwrap()
    }
}

async fn serve_jwks(State(server): State<JwksServer>) -> Result<String, StatusCode> {
    server.hits.fetch_add(1, Ordering::SeqCst);
    let delay = *server.delay.lock().unwrap();
    tokio::time::sleep(delay).await;
    let body = server.body.lock().unwrap().clone();
    body.ok_or(StatusCode::INTERNAL_SERVER_ERROR)
}

fn remote_config(url: &str, refetch_interval: Duration) -> VerifierConfig {
    let mut config = VerifierConfig::new(TEST_ISSUER, KeySource::Remote { url: url.into() });
    config.audience = Some(TEST_AUDIENCE.into());
    config.refetch_interval = refetch_interval;
    config
}

fn token(issuer: &TestIssuer) -> String {
    issuer.mint_now(NOW).unwrap().0
}

const INTERVAL: Duration = Duration::from_millis(400);
const PAST_INTERVAL: Duration = Duration::from_millis(450);

#[tokio::test]
async fn remote_keys_are_fetched_on_first_use_and_cached() {
    let a = issuer("a");
    let server = JwksServer::start(Some(a.jwks_json())).await;
    let verifier = server.verifier(Duration::ZERO);
    assert_eq!(
        server.hits(),
        0,
        "nothing is fetched before a token arrives"
    );
    for _ in 0..5 {
        verify(&verifier, &token(&a)).await.unwrap();
    }
    verify(&verifier.clone(), &token(&a)).await.unwrap();
    assert_eq!(server.hits(), 1);
}

#[tokio::test]
async fn an_unknown_kid_refetches_at_most_once_per_interval() {
    let (a, b) = (issuer("a"), issuer("b"));
    let server = JwksServer::start(Some(a.jwks_json())).await;
    let verifier = server.verifier(INTERVAL);
    verify(&verifier, &token(&a)).await.unwrap();
    assert_eq!(server.hits(), 1);

    // The accounts server rotates in b. Right after the first fetch, the
    // interval has not passed: b is unknown for now.
    server.publish(Some(jwks_json(&[&a, &b])));
    assert_eq!(
        verify(&verifier, &token(&b)).await,
        Err(AuthError::UnknownKey)
    );
    assert_eq!(server.hits(), 1);

    // Once it has, b's kid triggers one refetch and verifies.
    tokio::time::sleep(PAST_INTERVAL).await;
    verify(&verifier, &token(&b)).await.unwrap();
    assert_eq!(server.hits(), 2);
    verify(&verifier, &token(&a)).await.unwrap();

    // A flood of random kids within the interval costs no request.
    for kid in ["c", "d", "e", "f"] {
        assert_eq!(
            verify(&verifier, &token(&issuer(kid))).await,
            Err(AuthError::UnknownKey)
        );
    }
    assert_eq!(server.hits(), 2);

    // After the interval, one more refetch: still unknown.
    tokio::time::sleep(PAST_INTERVAL).await;
    assert_eq!(
        verify(&verifier, &token(&issuer("c"))).await,
        Err(AuthError::UnknownKey)
    );
    assert_eq!(server.hits(), 3);
}

#[tokio::test]
async fn a_failed_fetch_is_keys_unavailable() {
    let a = issuer("a");
    let server = JwksServer::start(None).await;
    let verifier = server.verifier(Duration::ZERO);
    let huge = format!(r#"{{"keys": [], "pad": "{}"}}"#, "x".repeat(64 * 1024));
    let bodies = [
        None,
        Some("not json".to_owned()),
        Some(r#"{"keys": []}"#.to_owned()),
        Some(issuer("other").jwks_json().replace("Ed25519", "X25519")),
        Some(huge),
    ];
    for (i, body) in bodies.into_iter().enumerate() {
        server.publish(body);
        assert_eq!(
            verify(&verifier, &token(&a)).await,
            Err(AuthError::KeysUnavailable),
            "body {i}"
        );
        assert_eq!(server.hits(), i + 1);
    }
    // Within the interval, a failed fetch is not retried but still reported.
    let limited = server.verifier(Duration::from_secs(30));
    server.publish(None);
    for _ in 0..3 {
        assert_eq!(
            verify(&limited, &token(&a)).await,
            Err(AuthError::KeysUnavailable)
        );
    }
    assert_eq!(server.hits(), 6);

    // Nothing listening at all.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/jwks.json", closed.local_addr().unwrap());
    drop(closed);
    let verifier = TokenVerifier::new(remote_config(&url, Duration::ZERO)).unwrap();
    assert_eq!(
        verify(&verifier, &token(&a)).await,
        Err(AuthError::KeysUnavailable)
    );
}

#[tokio::test]
async fn a_failed_refetch_keeps_the_keys_already_known() {
    let (a, b) = (issuer("a"), issuer("b"));
    let server = JwksServer::start(Some(a.jwks_json())).await;
    let verifier = server.verifier(Duration::ZERO);
    verify(&verifier, &token(&a)).await.unwrap();
    server.publish(None);
    assert_eq!(
        verify(&verifier, &token(&b)).await,
        Err(AuthError::KeysUnavailable)
    );
    assert_eq!(server.hits(), 2);
    verify(&verifier, &token(&a)).await.unwrap();
    assert_eq!(server.hits(), 2, "a known, fresh key needs no fetch");
    // Back up: the unknown kid is looked up again.
    server.publish(Some(jwks_json(&[&a, &b])));
    verify(&verifier, &token(&b)).await.unwrap();
    assert_eq!(server.hits(), 3);
}

#[tokio::test]
async fn old_keys_are_refreshed_so_withdrawn_keys_stop_working() {
    let (a, b) = (issuer("a"), issuer("b"));
    let server = JwksServer::start(Some(jwks_json(&[&a, &b]))).await;
    let mut config = remote_config(&server.url, Duration::ZERO);
    config.max_key_age = Duration::from_millis(200);
    let verifier = TokenVerifier::new(config).unwrap();
    verify(&verifier, &token(&b)).await.unwrap();

    // b is withdrawn; once the cached set is old, the next token refreshes it.
    server.publish(Some(a.jwks_json()));
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(
        verify(&verifier, &token(&b)).await,
        Err(AuthError::UnknownKey)
    );
    assert_eq!(server.hits(), 2);
    verify(&verifier, &token(&a)).await.unwrap();
    assert_eq!(server.hits(), 2);

    // If the refresh fails, the old keys keep working.
    server.publish(None);
    tokio::time::sleep(Duration::from_millis(250)).await;
    verify(&verifier, &token(&a)).await.unwrap();
    assert_eq!(server.hits(), 3);
}

#[tokio::test]
async fn concurrent_refetches_coalesce_into_one_request() {
    let (a, b) = (issuer("a"), issuer("b"));
    let server = JwksServer::start(Some(a.jwks_json())).await;
    server.delay(Duration::from_millis(200));
    // No rate limit: only coalescing keeps this to one request per round.
    let verifier = server.verifier(Duration::ZERO);
    let tokens: Vec<String> = (0..16).map(|_| token(&a)).collect();
    let results = futures_util::future::join_all(tokens.iter().map(|t| verify(&verifier, t))).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(server.hits(), 1);

    server.publish(Some(jwks_json(&[&a, &b])));
    let tokens: Vec<String> = (0..16).map(|_| token(&b)).collect();
    let tasks: Vec<_> = tokens
        .into_iter()
        .map(|t| {
            let verifier = verifier.clone();
            tokio::spawn(async move { verifier.verify(&t, NOW).await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert_eq!(server.hits(), 2);
}

#[tokio::test]
async fn a_caller_that_gives_up_does_not_cancel_the_fetch() {
    let a = issuer("a");
    let server = JwksServer::start(Some(a.jwks_json())).await;
    server.delay(Duration::from_millis(300));
    let verifier = server.verifier(Duration::from_secs(30));
    // Like a connection hitting its auth deadline mid-fetch.
    let gave_up =
        tokio::time::timeout(Duration::from_millis(50), verify(&verifier, &token(&a))).await;
    assert!(gave_up.is_err());
    // The fetch went on; the next caller gets its result, not a rate limit.
    verify(&verifier, &token(&a)).await.unwrap();
    assert_eq!(server.hits(), 1);
}
