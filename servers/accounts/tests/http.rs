//! HTTP behaviour around the flows: discovery, headers, CORS, cookies,
//! per-IP limits, and bad input (always a clear 4xx, never a 500).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::{Backend, Harness};
use sealbase_accounts::Limits;
use serde_json::{Value, json};

async fn discovery(backend: Backend, name: &str) {
    let h = Harness::start(backend, name).await;
    let get = |path: &str| h.http.get(format!("{}{path}", h.issuer)).send();

    let d: Value = get("/.well-known/sealbase")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(d["issuer"], h.issuer);
    assert_eq!(d["protocol_version"], 1);
    assert_eq!(d["jwks_uri"], format!("{}/.well-known/jwks.json", h.issuer));
    assert_eq!(d["sync_url"], "ws://127.0.0.1:8081/api/v1/ws");
    let m: Value = get("/.well-known/oauth-authorization-server")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(m["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(m["token_endpoint"], format!("{}/oauth/token", h.issuer));
    let o: Value = get("/.well-known/openid-configuration")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(o, m);
    let jwks = get("/.well-known/jwks.json").await.unwrap();
    assert_eq!(jwks.headers()["content-type"], "application/jwk-set+json");
    let jwks: Value = jwks.json().await.unwrap();
    assert_eq!(jwks["keys"][0]["crv"], "Ed25519");
    assert!(jwks["keys"][0].get("d").is_none());

    // WebFinger answers the same for any well-formed handle on this host.
    let host = h
        .issuer
        .trim_start_matches("http://")
        .split(':')
        .next()
        .unwrap()
        .to_owned();
    h.sign_up("alice").await;
    let a = get(&format!(
        "/.well-known/webfinger?resource=acct:alice@{host}"
    ))
    .await
    .unwrap();
    let b = get(&format!("/.well-known/webfinger?resource=acct:zed@{host}"))
        .await
        .unwrap();
    assert_eq!((a.status().as_u16(), b.status().as_u16()), (200, 200));
    let (a, b): (Value, Value) = (a.json().await.unwrap(), b.json().await.unwrap());
    assert_eq!(a["links"], b["links"]);
    let other = get("/.well-known/webfinger?resource=acct:alice@elsewhere.example")
        .await
        .unwrap();
    assert_eq!(other.status(), 404);

    let health = get("/health").await.unwrap();
    assert_eq!(health.status(), 200);
    let headers = health.headers();
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(headers["referrer-policy"], "no-referrer");
    assert!(
        headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
    assert_eq!(headers["cache-control"], "no-store");

    // CORS: app endpoints to registered origins only; discovery to anyone.
    let preflight = |path: &str, origin: &str| {
        h.http
            .request(reqwest::Method::OPTIONS, format!("{}{path}", h.issuer))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .send()
    };
    let ok = preflight("/oauth/token", "http://localhost:5173")
        .await
        .unwrap();
    assert_eq!(ok.status(), 204);
    assert_eq!(
        ok.headers()["access-control-allow-origin"],
        "http://localhost:5173"
    );
    let evil = preflight("/oauth/token", "https://evil.example")
        .await
        .unwrap();
    assert_eq!(evil.status(), 403);
    assert!(evil.headers().get("access-control-allow-origin").is_none());
    let session_api = preflight("/api/v1/login/start", "http://localhost:5173")
        .await
        .unwrap();
    assert!(
        session_api
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    let wk = h
        .http
        .get(format!("{}/.well-known/sealbase", h.issuer))
        .header("origin", "https://anyone.example")
        .send()
        .await
        .unwrap();
    assert_eq!(wk.headers()["access-control-allow-origin"], "*");
}

both_backends!(discovery_headers_and_cors, discovery);

async fn cookies_and_bad_input(backend: Backend, name: &str) {
    let h = Harness::start(backend, name).await;
    let (alice, _, _) = h.sign_up("alice").await;
    let token = alice.session_token().unwrap().to_owned();
    let cookie = format!("sealbase_session={token}");
    let url = |p: &str| format!("{}{p}", h.issuer);

    // The cookie works from our own pages, not from another origin.
    let mine = h
        .http
        .get(url("/api/v1/account"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(mine.status(), 200);
    let foreign = h
        .http
        .post(url("/api/v1/logout"))
        .header("cookie", &cookie)
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), 403);
    let no_origin = h
        .http
        .post(url("/api/v1/logout"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(
        no_origin.status(),
        403,
        "a state change by cookie needs our Origin"
    );
    let ours = h
        .http
        .post(url("/api/v1/logout"))
        .header("cookie", &cookie)
        .header("origin", &h.issuer)
        .send()
        .await
        .unwrap();
    assert_eq!(ours.status(), 204);
    assert!(
        ours.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );

    // Not signed in: authorize sends the browser through sign-in, then back
    // to the consent page.
    let auth =
        sealbase_auth::client::AppAuthorization::new("tasks", common::TASKS_REDIRECT, "sync");
    let r = h
        .http
        .get(auth.authorize_url(&h.issuer))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let location = r.headers()["location"].to_str().unwrap();
    assert!(
        location.starts_with("/login?next=%2Fconsent%3Frequest%3D"),
        "{location}"
    );

    // Bad input: a clear 4xx with an error code, never a 500.
    let cases: Vec<(&str, Value)> = vec![
        (
            "/api/v1/login/start",
            json!({"username": "alice", "credential_request": "!!"}),
        ),
        (
            "/api/v1/login/start",
            json!({"username": "alice", "credential_request": "AAAA"}),
        ),
        ("/api/v1/login/start", json!({"username": "alice"})),
        (
            "/api/v1/login/finish",
            json!({"login_id": "x", "credential_finalization": "AAAA"}),
        ),
        (
            "/api/v1/signup/start",
            json!({"username": "ok_name", "email": "@"}),
        ),
        (
            "/api/v1/signup/verify",
            json!({"signup_id": "x", "code": "1", "registration_request": "AAAA"}),
        ),
        (
            "/api/v1/signup/finish",
            json!({"signup_id": "x", "registration_upload": "AAAA", "wrapped_ark": "AAAA", "recovery_blob": "AAAA", "ark_proof": "AAAA"}),
        ),
        (
            "/api/v1/recovery/verify",
            json!({"recovery_id": "x", "code": "123456", "registration_request": "AAAA"}),
        ),
        (
            "/api/v1/oauth/consent",
            json!({"request_id": "x", "approve": true}),
        ),
    ];
    for (path, body) in cases {
        let r = h.http.post(url(path)).json(&body).send().await.unwrap();
        let status = r.status().as_u16();
        assert!((400..500).contains(&status), "{path} {body}: {status}");
        if status != 422 && status != 415 {
            let e: Value = r.json().await.unwrap();
            assert!(e["error"].is_string(), "{path}: {e}");
        }
    }
    // A malformed handle at login is answered like an unknown one and
    // stored only as a digest.
    let (req, _) = sealbase_auth::opaque::client_login_start(&mut rand_core::OsRng, b"pw").unwrap();
    let long = "x".repeat(20_000);
    let r = h
        .http
        .post(url("/api/v1/login/start"))
        .json(&json!({"username": long, "credential_request": base64_url(&req)}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let stored: i64 = sqlx::query_scalar("SELECT MAX(LENGTH(username)) FROM login_states")
        .fetch_one(h.state.store.pool())
        .await
        .unwrap();
    assert!(stored < 100, "{stored}");

    let huge = "a".repeat(100 * 1024);
    // Its own connection: the server closes it after refusing the body.
    let r = reqwest::Client::new()
        .post(url("/api/v1/login/start"))
        .header("content-type", "application/json")
        .body(format!("{{\"username\":\"{huge}\"}}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    let r = h
        .http
        .post(url("/oauth/token"))
        .form(&[("grant_type", "password"), ("client_id", "tasks")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"], "unsupported_grant_type");
    let r = h
        .http
        .post(url("/oauth/token"))
        .form(&[("grant_type", "refresh_token")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"], "invalid_client");
}

both_backends!(cookies_csrf_and_bad_input, cookies_and_bad_input);

async fn per_ip_limits(backend: Backend, name: &str) {
    let h = Harness::start_with(backend, name, Limits::default()).await;
    let url = format!("{}/api/v1/signup/start", h.issuer);
    let mut statuses = Vec::new();
    for i in 0..6 {
        let r = h
            .http
            .post(&url)
            .json(&json!({"username": format!("user{i}"), "email": format!("u{i}@example.com")}))
            .send()
            .await
            .unwrap();
        statuses.push((r.status().as_u16(), r.headers().get("retry-after").cloned()));
    }
    assert!(statuses[..5].iter().all(|(s, _)| *s == 200), "{statuses:?}");
    let (status, retry) = &statuses[5];
    assert_eq!(*status, 429);
    let secs: u64 = retry.as_ref().unwrap().to_str().unwrap().parse().unwrap();
    assert!((1..=61).contains(&secs), "{secs}");
}

both_backends!(per_ip_limits_answer_429, per_ip_limits);

async fn pages_without_ui(backend: Backend, name: &str) {
    let h = Harness::start(backend, name).await;
    for page in sealbase_accounts::web::PAGES {
        let r = h
            .http
            .get(format!("{}{page}", h.issuer))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 503, "{page}");
        assert!(r.text().await.unwrap().contains("build-wasm.sh ui"));
    }
    let r = h
        .http
        .get(format!("{}/assets/app.js", h.issuer))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

both_backends!(pages_answer_503_until_the_ui_is_built, pages_without_ui);

fn base64_url(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}
