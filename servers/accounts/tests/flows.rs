//! The account flows end to end over HTTP, on SQLite and on Postgres.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use common::{Backend, Harness, NOTES, NOTES_REDIRECT, PASSWORD, TASKS, TASKS_REDIRECT};
use sealbase_auth::client::{self, AppAuthorization, ClientError};
use sealbase_crypto::kdf::app_key;

const SCOPE: &str = "sync profile directory";

fn assert_code(result: Result<impl std::fmt::Debug, ClientError>, status: u16, code: &str) {
    match result {
        Err(e) => {
            assert_eq!(e.status(), Some(status), "{e}");
            assert_eq!(e.code(), Some(code), "{e}");
        }
        Ok(v) => panic!("expected {status} {code}, got {v:?}"),
    }
}

async fn full_flow(backend: Backend, name: &str) {
    let h = Harness::start(backend, name).await;
    let (mut alice, signed_in, recovery_key) = h.sign_up("alice").await;
    assert_eq!(signed_in.session.account.username, "alice");

    // A fresh login yields the same ARK.
    let mut again = h.client();
    let login = again.login("Alice", PASSWORD).await.unwrap();
    assert_eq!(login.ark.as_bytes(), signed_in.ark.as_bytes());

    // Authorize, consent, exchange: the app receives exactly AK.
    let (auth, app) = h
        .authorize(&alice, &signed_in, TASKS, TASKS_REDIRECT, SCOPE)
        .await;
    let expected_ak = app_key(&signed_in.ark, TASKS);
    assert_eq!(app.app_key.as_bytes(), expected_ak.as_bytes());
    let tokens = &app.tokens;
    assert_eq!(tokens.token_type, "Bearer");
    assert_eq!(tokens.scope, SCOPE);
    let info = client::userinfo(&h.http, &h.issuer, &tokens.access_token)
        .await
        .unwrap();
    assert_eq!(info.sub, signed_in.session.account.id);
    assert_eq!(info.did, tokens.did);
    assert_eq!(info.personal_space_id, tokens.personal_space_id);
    assert_eq!(info.email, None, "no email scope asked");

    // The JWE is relayed once: a second authorization delivers a new one,
    // and the personal space and did stay the same.
    let (_, app2) = h
        .authorize(&alice, &signed_in, TASKS, TASKS_REDIRECT, SCOPE)
        .await;
    assert_eq!(app2.tokens.personal_space_id, tokens.personal_space_id);
    assert_eq!(app2.tokens.did, tokens.did);

    // Refresh rotates; reusing the old refresh token revokes the family.
    let r1 = client::refresh(&h.http, &h.issuer, TASKS, &tokens.refresh_token)
        .await
        .unwrap();
    assert_ne!(r1.refresh_token, tokens.refresh_token);
    assert_eq!(r1.key_jwe, None, "the key is delivered only once");
    let r2 = client::refresh(&h.http, &h.issuer, TASKS, &r1.refresh_token)
        .await
        .unwrap();
    assert_code(
        client::refresh(&h.http, &h.issuer, TASKS, &tokens.refresh_token).await,
        400,
        "invalid_grant",
    );
    assert_code(
        client::refresh(&h.http, &h.issuer, TASKS, &r2.refresh_token).await,
        400,
        "invalid_grant",
    );
    // The other authorization's family is untouched; revoking it works.
    let other = client::refresh(&h.http, &h.issuer, TASKS, &app2.tokens.refresh_token)
        .await
        .unwrap();
    client::revoke(&h.http, &h.issuer, TASKS, &other.refresh_token)
        .await
        .unwrap();
    assert_code(
        client::refresh(&h.http, &h.issuer, TASKS, &other.refresh_token).await,
        400,
        "invalid_grant",
    );
    let _ = auth;

    // The database holds no password, ARK, AK or recovery key in any form.
    let dump = h.dump().await;
    let ark = signed_in.ark.as_bytes().to_vec();
    let ak = expected_ak.as_bytes().to_vec();
    let recovery_raw = sealbase_crypto::wrap::parse_recovery_key(&recovery_key).unwrap();
    for (what, secret) in [
        ("password", PASSWORD.as_bytes().to_vec()),
        ("ARK", ark),
        ("AK", ak),
        ("recovery key", recovery_raw.as_bytes().to_vec()),
        ("recovery key text", recovery_key.as_bytes().to_vec()),
        (
            "session token",
            alice.session_token().unwrap().as_bytes().to_vec(),
        ),
    ] {
        for form in [
            secret.clone(),
            hex_of(&secret).into_bytes(),
            URL_SAFE_NO_PAD.encode(&secret).into_bytes(),
            STANDARD.encode(&secret).into_bytes(),
        ] {
            assert!(!contains(&dump, &form), "the dump contains the {what}");
        }
    }
    alice.logout().await.unwrap();
    assert_code(alice.account().await, 401, "unauthenticated");
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

both_backends!(full_flow_delivers_the_app_key, full_flow);

async fn oauth_refusals(backend: Backend, name: &str) {
    let h = Harness::start(backend, name).await;
    let (alice, signed_in, _) = h.sign_up("alice").await;

    // Unknown client or unregistered redirect: an error page, never a redirect.
    let auth = AppAuthorization::new(TASKS, "https://evil.example/cb", SCOPE);
    let r = h
        .http
        .get(auth.authorize_url(&h.issuer))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.headers().get("location").is_none());
    let auth = AppAuthorization::new("nope", TASKS_REDIRECT, SCOPE);
    let r = h
        .http
        .get(auth.authorize_url(&h.issuer))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    // Errors the app can hear about go back to it (RFC 6749 §4.1.2.1).
    let good = AppAuthorization::new(TASKS, TASKS_REDIRECT, SCOPE);
    let url = good.authorize_url(&h.issuer);
    for (mangle, error) in [
        (
            ("code_challenge_method=S256", "code_challenge_method=plain"),
            "invalid_request",
        ),
        (("&code_challenge_method=S256", ""), "invalid_request"),
        (
            ("response_type=code", "response_type=token"),
            "unsupported_response_type",
        ),
        (
            ("scope=sync+profile+directory", "scope=sync+admin"),
            "invalid_scope",
        ),
        (("key_x25519=", "key_x25519=AA"), "invalid_request"),
    ] {
        let bad = url.replacen(mangle.0, mangle.1, 1);
        assert_ne!(bad, url, "{mangle:?} did not apply");
        let location = alice.open_authorize(&bad).await.unwrap();
        assert!(location.starts_with(TASKS_REDIRECT), "{location}");
        let e = good.code_from_redirect(&h.issuer, &location);
        assert_code(e, 302, error);
    }
    // Without state: an error redirect with no state at all.
    let location = alice
        .open_authorize(&url.replacen(&format!("state={}", good.secrets.state), "state=", 1))
        .await
        .unwrap();
    assert!(
        location.contains("error=invalid_request") && !location.contains("state="),
        "{location}"
    );
    // notes may not ask for the directory scope.
    let notes = AppAuthorization::new(NOTES, NOTES_REDIRECT, "sync directory");
    let location = alice
        .open_authorize(&notes.authorize_url(&h.issuer))
        .await
        .unwrap();
    assert_code(
        notes.code_from_redirect(&h.issuer, &location),
        302,
        "invalid_scope",
    );

    // Denying consent.
    let deny = AppAuthorization::new(TASKS, TASKS_REDIRECT, SCOPE);
    let location = alice
        .open_authorize(&deny.authorize_url(&h.issuer))
        .await
        .unwrap();
    let request = alice
        .authorization_request(location.strip_prefix("/consent?request=").unwrap())
        .await
        .unwrap();
    let back = alice
        .consent(&signed_in.ark, &request, false)
        .await
        .unwrap();
    assert_code(
        deny.code_from_redirect(&h.issuer, &back),
        302,
        "access_denied",
    );

    // Code-level refusals.
    async fn code_for(
        h: &Harness,
        user: &sealbase_auth::client::AccountsClient,
        ark: &sealbase_auth::client::SignedIn,
        auth: &AppAuthorization,
    ) -> String {
        let location = user
            .open_authorize(&auth.authorize_url(&h.issuer))
            .await
            .unwrap();
        let request = user
            .authorization_request(location.strip_prefix("/consent?request=").unwrap())
            .await
            .unwrap();
        let back = user.consent(&ark.ark, &request, true).await.unwrap();
        auth.code_from_redirect(&h.issuer, &back).unwrap()
    }
    let token = |params: Vec<(&'static str, String)>| {
        let h = &h;
        async move {
            let p: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
            client::token_request(&h.http, &h.issuer, &p).await
        }
    };
    let redeem =
        |_: &AppAuthorization, code: &str, verifier: &str, redirect: &str, client_id: &str| {
            vec![
                ("grant_type", "authorization_code".to_owned()),
                ("code", code.to_owned()),
                ("redirect_uri", redirect.to_owned()),
                ("client_id", client_id.to_owned()),
                ("code_verifier", verifier.to_owned()),
            ]
        };

    // Wrong verifier; the code is then spent.
    let a = AppAuthorization::new(TASKS, TASKS_REDIRECT, SCOPE);
    let code = code_for(&h, &alice, &signed_in, &a).await;
    let wrong = sealbase_auth::pkce::new_verifier(&mut rand_core::OsRng);
    assert_code(
        token(redeem(&a, &code, &wrong, TASKS_REDIRECT, TASKS)).await,
        400,
        "invalid_grant",
    );
    assert_code(
        token(redeem(
            &a,
            &code,
            &a.secrets.verifier,
            TASKS_REDIRECT,
            TASKS,
        ))
        .await,
        400,
        "invalid_grant",
    );
    // Missing verifier.
    let b = AppAuthorization::new(TASKS, TASKS_REDIRECT, SCOPE);
    let code = code_for(&h, &alice, &signed_in, &b).await;
    let mut no_verifier = redeem(&b, &code, &b.secrets.verifier, TASKS_REDIRECT, TASKS);
    no_verifier.retain(|(k, _)| *k != "code_verifier");
    assert_code(token(no_verifier).await, 400, "invalid_request");
    // Redirect mismatch and another client's code.
    let c = AppAuthorization::new(TASKS, TASKS_REDIRECT, SCOPE);
    let code = code_for(&h, &alice, &signed_in, &c).await;
    assert_code(
        token(redeem(
            &c,
            &code,
            &c.secrets.verifier,
            NOTES_REDIRECT,
            TASKS,
        ))
        .await,
        400,
        "invalid_grant",
    );
    let d = AppAuthorization::new(TASKS, TASKS_REDIRECT, SCOPE);
    let code = code_for(&h, &alice, &signed_in, &d).await;
    assert_code(
        token(redeem(
            &d,
            &code,
            &d.secrets.verifier,
            TASKS_REDIRECT,
            NOTES,
        ))
        .await,
        400,
        "invalid_grant",
    );
    // Replay: the second use fails and revokes what the first one got.
    let e = AppAuthorization::new(TASKS, TASKS_REDIRECT, SCOPE);
    let code = code_for(&h, &alice, &signed_in, &e).await;
    let first = e.exchange(&h.http, &h.issuer, &code).await.unwrap();
    assert_code(
        e.exchange(&h.http, &h.issuer, &code).await,
        400,
        "invalid_grant",
    );
    assert_code(
        client::refresh(&h.http, &h.issuer, TASKS, &first.tokens.refresh_token).await,
        400,
        "invalid_grant",
    );
    // Expired code.
    let f = AppAuthorization::new(TASKS, TASKS_REDIRECT, SCOPE);
    let code = code_for(&h, &alice, &signed_in, &f).await;
    h.state.advance_clock(61);
    assert_code(
        f.exchange(&h.http, &h.issuer, &code).await,
        400,
        "invalid_grant",
    );
    // The key binding: a key_x25519 swapped on the way no longer matches
    // the challenge, so the code is refused before anything is relayed.
    let g = AppAuthorization::new(TASKS, TASKS_REDIRECT, SCOPE);
    let attacker = sealbase_auth::flow::DeliveryKey::generate(&mut rand_core::OsRng);
    let swapped =
        g.authorize_url(&h.issuer)
            .replacen(&g.secrets.delivery.public, &attacker.public, 1);
    let location = alice.open_authorize(&swapped).await.unwrap();
    let request = alice
        .authorization_request(location.strip_prefix("/consent?request=").unwrap())
        .await
        .unwrap();
    assert_eq!(
        request.key_x25519.as_deref(),
        Some(attacker.public.as_str())
    );
    let back = alice.consent(&signed_in.ark, &request, true).await.unwrap();
    let code = g.code_from_redirect(&h.issuer, &back).unwrap();
    assert_code(
        g.exchange(&h.http, &h.issuer, &code).await,
        400,
        "invalid_grant",
    );
    // And a JWE for another key does not open with the app's key.
    let i = AppAuthorization::new(TASKS, TASKS_REDIRECT, SCOPE);
    let keys = sealbase_auth::flow::consent_keys(
        &mut rand_core::OsRng,
        &signed_in.ark,
        "alice",
        TASKS,
        Some(&attacker.public),
    )
    .unwrap();
    assert!(
        i.secrets
            .delivery
            .open(&keys.key_jwe.unwrap(), &keys.identity.did)
            .is_err()
    );
    // A consent whose JWE names another key is refused by the server.
    let j = AppAuthorization::new(TASKS, TASKS_REDIRECT, SCOPE);
    let location = alice
        .open_authorize(&j.authorize_url(&h.issuer))
        .await
        .unwrap();
    let mut request = alice
        .authorization_request(location.strip_prefix("/consent?request=").unwrap())
        .await
        .unwrap();
    request.key_x25519 = Some(attacker.public.clone());
    assert_code(
        alice.consent(&signed_in.ark, &request, true).await,
        400,
        "invalid_jwe",
    );
}

both_backends!(oauth_refusals_follow_the_rfcs, oauth_refusals);

async fn login_refusals(backend: Backend, name: &str) {
    let h = Harness::start(backend, name).await;
    let (_alice, _, _) = h.sign_up("alice").await;
    let mut c = h.client();
    assert_code(
        c.login("alice", "wrong password").await,
        401,
        "invalid_credentials",
    );
    assert_code(
        c.login("nobody", PASSWORD).await,
        401,
        "invalid_credentials",
    );

    // An unknown user's first answer has the same shape and size.
    let start = |user: &str| {
        let (req, _) =
            sealbase_auth::opaque::client_login_start(&mut rand_core::OsRng, b"pw").unwrap();
        let body = serde_json::json!({"username": user, "credential_request": URL_SAFE_NO_PAD.encode(req)});
        let url = format!("{}/api/v1/login/start", h.issuer);
        let http = h.http.clone();
        async move {
            let r = http.post(url).json(&body).send().await.unwrap();
            (r.status(), r.json::<serde_json::Value>().await.unwrap())
        }
    };
    let (s1, known) = start("alice").await;
    let (s2, unknown) = start("nobody-here").await;
    assert_eq!((s1.as_u16(), s2.as_u16()), (200, 200));
    let keys = |v: &serde_json::Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&known), keys(&unknown));
    assert_eq!(
        known["credential_response"].as_str().unwrap().len(),
        unknown["credential_response"].as_str().unwrap().len()
    );

    // Lockout: 8 failures in the window lock the handle, known or not, with
    // 429 and Retry-After; the next lockout is twice as long.
    for user in ["alice", "nobody"] {
        // One failure each already happened above.
        for _ in 1..8 {
            assert_code(
                c.login(user, "wrong password").await,
                401,
                "invalid_credentials",
            );
        }
        match c.login(user, PASSWORD).await {
            Err(ClientError::Api {
                status: 429,
                body,
                retry_after,
            }) => {
                assert_eq!(body.error, "locked");
                let secs = retry_after.expect("Retry-After header");
                assert!((890..=900).contains(&secs), "{secs}");
            }
            other => panic!("expected a lockout, got {other:?}"),
        }
    }
    h.state.advance_clock(901);
    for _ in 0..7 {
        assert_code(
            c.login("alice", "wrong password").await,
            401,
            "invalid_credentials",
        );
    }
    assert_code(
        c.login("alice", "wrong password").await,
        401,
        "invalid_credentials",
    );
    match c.login("alice", PASSWORD).await {
        Err(ClientError::Api {
            status: 429,
            retry_after,
            ..
        }) => {
            let secs = retry_after.unwrap();
            assert!((1790..=1800).contains(&secs), "escalated: {secs}");
        }
        other => panic!("expected a longer lockout, got {other:?}"),
    }
    h.state.advance_clock(1801);
    let ok = c.login("alice", PASSWORD).await.unwrap();
    assert_eq!(ok.session.account.username, "alice");
}

both_backends!(login_refusals_and_lockout, login_refusals);

async fn password_and_recovery(backend: Backend, name: &str) {
    let h = Harness::start(backend, name).await;
    let (mut alice, signed_in, recovery_key) = h.sign_up("alice").await;
    let ark = signed_in.ark.as_bytes().to_vec();
    let (_, app) = h
        .authorize(&alice, &signed_in, TASKS, TASKS_REDIRECT, SCOPE)
        .await;
    let mut second_device = h.client();
    second_device.login("alice", PASSWORD).await.unwrap();

    // A stale session may not change the password.
    h.state.advance_clock(601);
    let e = alice
        .change_password(&signed_in.ark, "new password one")
        .await;
    assert_code(e, 403, "reauthenticate");
    let fresh = alice.login("alice", PASSWORD).await.unwrap();
    // The wrong ARK is refused and nothing changes.
    let other_ark = sealbase_crypto::AccountRootKey::from_bytes([9; 32]);
    assert_code(
        alice.change_password(&other_ark, "new password one").await,
        403,
        "ark_mismatch",
    );
    alice
        .change_password(&fresh.ark, "new password one")
        .await
        .unwrap();

    // Old sessions and refresh tokens are gone; the old password too.
    assert_code(second_device.account().await, 401, "unauthenticated");
    assert_code(
        client::refresh(&h.http, &h.issuer, TASKS, &app.tokens.refresh_token).await,
        400,
        "invalid_grant",
    );
    assert_code(
        h.client().login("alice", PASSWORD).await,
        401,
        "invalid_credentials",
    );
    let after = h.client().login("alice", "new password one").await.unwrap();
    assert_eq!(
        after.ark.as_bytes().to_vec(),
        ark,
        "ARK kept: data stays readable"
    );
    assert!(
        alice.account().await.is_ok(),
        "the changing client keeps a session"
    );

    // Recovery: unknown addresses get the same answer and no mail.
    let mut r = h.client();
    let unknown = r.recovery_start("nobody@example.com").await.unwrap();
    assert!(h.state.mailer.sent_to("nobody@example.com").is_empty());
    assert_code(
        r.recover(&unknown.recovery_id, "000000", &recovery_key, "x")
            .await,
        400,
        "invalid_code",
    );
    let started = r.recovery_start("alice@example.com").await.unwrap();
    assert_eq!(started.recovery_id.len(), unknown.recovery_id.len());
    // A wrong recovery key fails on the client; nothing changes.
    let code = h.last_code("alice@example.com");
    let wrong_key = sealbase_crypto::wrap::format_recovery_key(
        &sealbase_crypto::RecoveryKey::from_bytes([3; 32]),
    );
    assert!(matches!(
        r.recover(&started.recovery_id, &code, &wrong_key, "new password two")
            .await,
        Err(ClientError::Flow(_))
    ));
    let recovered = r
        .recover(
            &started.recovery_id,
            &code,
            &recovery_key,
            "new password two",
        )
        .await
        .unwrap();
    assert_eq!(recovered.ark.as_bytes().to_vec(), ark);
    assert_code(alice.account().await, 401, "unauthenticated");
    let after = h.client().login("alice", "new password two").await.unwrap();
    assert_eq!(after.ark.as_bytes().to_vec(), ark);
    // The recovery cannot be used twice.
    assert_code(
        r.recover(
            &started.recovery_id,
            &code,
            &recovery_key,
            "new password three",
        )
        .await,
        400,
        "code_expired",
    );
}

both_backends!(
    password_change_and_recovery_keep_the_ark,
    password_and_recovery
);

async fn signup_refusals(backend: Backend, name: &str) {
    let h = Harness::start(backend, name).await;
    let c = h.client();
    assert_code(
        c.signup_start("a", "x@example.com").await,
        400,
        "invalid_username",
    );
    assert_code(
        c.signup_start("bob", "not-an-email").await,
        400,
        "invalid_email",
    );
    // Five wrong codes, then the flow is dead.
    let started = c.signup_start("bob", "bob@example.com").await.unwrap();
    let code = h.last_code("bob@example.com");
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let mut attempt = h.client();
    for _ in 0..5 {
        assert_code(
            attempt
                .signup_finish(&started.signup_id, wrong, PASSWORD)
                .await,
            400,
            "invalid_code",
        );
    }
    assert_code(
        attempt
            .signup_finish(&started.signup_id, &code, PASSWORD)
            .await,
        400,
        "too_many_attempts",
    );
    // Expiry.
    let started = c.signup_start("bob", "bob@example.com").await.unwrap();
    let code = h.last_code("bob@example.com");
    h.state.advance_clock(15 * 60 + 1);
    assert_code(
        attempt
            .signup_finish(&started.signup_id, &code, PASSWORD)
            .await,
        400,
        "code_expired",
    );
    // Sends per hour per address.
    for _ in 0..3 {
        c.signup_start("bob", "bob@example.com").await.unwrap();
    }
    assert_code(
        c.signup_start("bob", "bob@example.com").await,
        429,
        "too_many_codes",
    );
    // A taken username is refused after the email is proven; a registered
    // email gets a notice, not a code, under the same answer.
    h.sign_up("carol").await;
    let started = c.signup_start("carol", "dave@example.com").await.unwrap();
    let code = h.last_code("dave@example.com");
    assert_code(
        attempt
            .signup_finish(&started.signup_id, &code, PASSWORD)
            .await,
        409,
        "username_taken",
    );
    let again = c.signup_start("erin", "carol@example.com").await.unwrap();
    assert_eq!(again.expires_in, started.expires_in);
    let notice = h.state.mailer.sent_to("carol@example.com");
    assert!(notice.last().unwrap().body.contains("already belongs"));
}

both_backends!(signup_refusals_and_limits, signup_refusals);

async fn tokens_and_directory(backend: Backend, name: &str) {
    let h = Harness::start(backend, name).await;
    let (alice, a, _) = h.sign_up("alice").await;
    let (bob, b, _) = h.sign_up("bob").await;
    let (_carol, _, _) = h.sign_up("carol").await;
    let (_, alice_app) = h.authorize(&alice, &a, TASKS, TASKS_REDIRECT, SCOPE).await;
    let (_, bob_app) = h.authorize(&bob, &b, TASKS, TASKS_REDIRECT, SCOPE).await;
    let (_, bob_notes) = h.authorize(&bob, &b, NOTES, NOTES_REDIRECT, "sync").await;

    // Alice finds Bob in tasks; the attestation checks out.
    let entry = alice
        .directory(&alice_app.tokens.access_token, TASKS, "Bob")
        .await
        .unwrap();
    assert_eq!(entry.did, bob_app.tokens.did);
    assert_eq!(entry.mailbox_id, bob_app.tokens.personal_space_id);
    // Carol never used tasks; dave does not exist: the same 404.
    let url = |who: &str| format!("{}/api/v1/directory/{who}", h.issuer);
    let get = |who: &'static str, token: String| {
        let http = h.http.clone();
        let u = url(who);
        async move {
            let r = http.get(u).bearer_auth(token).send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let carol = get("carol", alice_app.tokens.access_token.clone()).await;
    let dave = get("dave", alice_app.tokens.access_token.clone()).await;
    assert_eq!(carol.0, 404);
    assert_eq!(carol, dave);
    // A token without the directory scope, and no token.
    assert_eq!(
        get("alice", bob_notes.tokens.access_token.clone()).await.0,
        403
    );
    assert_eq!(h.http.get(url("bob")).send().await.unwrap().status(), 401);

    // Access tokens verify with an independent JOSE implementation against
    // the published JWKS.
    let jwks: jsonwebtoken::jwk::JwkSet = h
        .http
        .get(format!("{}/.well-known/jwks.json", h.issuer))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = &alice_app.tokens.access_token;
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::EdDSA);
    let jwk = jwks.find(header.kid.as_deref().unwrap()).unwrap();
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
    validation.set_audience(&["sealbase-sync"]);
    validation.set_issuer(&[h.issuer.as_str()]);
    let data = jsonwebtoken::decode::<serde_json::Value>(token, &key, &validation).unwrap();
    let claims = data.claims;
    assert_eq!(claims["sub"], a.session.account.id.to_string());
    assert_eq!(claims["client_id"], TASKS);
    assert_eq!(claims["scope"], SCOPE);
    assert_eq!(claims["did"], alice_app.tokens.did);
    assert_eq!(
        claims["personal_space_id"],
        alice_app.tokens.personal_space_id.to_string()
    );
    assert!(claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap() == 600);

    // A forged token (another key, same kid) and an expired one are refused.
    let other = sealbase_accounts::keys::KeyFile::generate(&mut rand_core::OsRng, 0).unwrap();
    let forger = other.secrets().unwrap();
    let forged_claims = sealbase_token::AccessClaims {
        issuer: h.issuer.clone(),
        audience: "sealbase-sync".into(),
        subject: a.session.account.id,
        client_id: TASKS.into(),
        scope: SCOPE.into(),
        did: alice_app.tokens.did.clone(),
        personal_space_id: alice_app.tokens.personal_space_id,
        issued_at: claims["iat"].as_u64().unwrap(),
        expires_at: claims["exp"].as_u64().unwrap(),
        token_id: alice_app.tokens.personal_space_id,
    };
    let forged = forger.signer.sign(&forged_claims).unwrap();
    let parts: Vec<&str> = forged.split('.').collect();
    let real_header = token.split('.').next().unwrap();
    let forged_same_kid = format!("{real_header}.{}.{}", parts[1], parts[2]);
    for bad in [forged.as_str(), forged_same_kid.as_str()] {
        assert_code(
            client::userinfo(&h.http, &h.issuer, bad).await,
            401,
            "invalid_token",
        );
    }
    h.state.advance_clock(600 + 31);
    assert_code(
        client::userinfo(&h.http, &h.issuer, token).await,
        401,
        "invalid_token",
    );
}

both_backends!(tokens_verify_and_directory_is_uniform, tokens_and_directory);
