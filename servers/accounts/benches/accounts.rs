//! Server-side cost of a login and of a token (criterion): the OPAQUE steps
//! the accounts server runs per login, signing an access token, and
//! verifying one (what the sync server and userinfo do per token).
//! Client-side Argon2id runs in the untimed setup. Figures: docs/benchmarks.md.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use rand_core::OsRng;
use sealbase_accounts::keys::KeyFile;
use sealbase_auth::opaque;
use sealbase_token::{AccessClaims, KeySource, TokenVerifier, VerifierConfig};
use uuid::Uuid;

fn bench(c: &mut Criterion) {
    let keys = KeyFile::generate(&mut OsRng, 0).unwrap().secrets().unwrap();
    let server = &keys.opaque;
    let id = b"alice";
    // A registered password file.
    let (req, reg) = opaque::client_registration_start(&mut OsRng, b"pw").unwrap();
    let resp = opaque::server_registration_response(server, &req, id).unwrap();
    let (upload, _) = opaque::client_registration_finish(&mut OsRng, reg, b"pw", &resp).unwrap();
    let file = opaque::server_registration_finish(&upload).unwrap();

    let mut g = c.benchmark_group("accounts");
    g.sample_size(50);
    g.bench_function("login_start (server)", |b| {
        b.iter_batched(
            || opaque::client_login_start(&mut OsRng, b"pw").unwrap().0,
            |request| {
                opaque::server_login_start(&mut OsRng, server, Some(&file), &request, id).unwrap()
            },
            BatchSize::SmallInput,
        )
    });
    g.bench_function("login_finish (server)", |b| {
        b.iter_batched(
            || {
                let (request, state) = opaque::client_login_start(&mut OsRng, b"pw").unwrap();
                let (response, server_state) =
                    opaque::server_login_start(&mut OsRng, server, Some(&file), &request, id)
                        .unwrap();
                let done =
                    opaque::client_login_finish(&mut OsRng, state, b"pw", &response).unwrap();
                (server_state, done.finalization)
            },
            |(state, finalization)| opaque::server_login_finish(state, &finalization).unwrap(),
            BatchSize::SmallInput,
        )
    });
    let claims = AccessClaims {
        issuer: "https://accounts.example".into(),
        audience: "sealbase-sync".into(),
        subject: Uuid::from_u128(1),
        client_id: "tasks".into(),
        scope: "sync profile directory".into(),
        did: "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK".into(),
        personal_space_id: Uuid::from_u128(2),
        issued_at: 4_000_000_000,
        expires_at: 4_000_000_600,
        token_id: Uuid::from_u128(3),
    };
    g.bench_function("access token sign", |b| {
        b.iter(|| keys.signer.sign(&claims).unwrap())
    });
    let token = keys.signer.sign(&claims).unwrap();
    let mut config =
        VerifierConfig::new(claims.issuer.clone(), KeySource::Static(keys.jwks.clone()));
    config.audience = Some("sealbase-sync".into());
    let verifier = TokenVerifier::new(config).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    g.bench_function("access token verify", |b| {
        b.iter(|| rt.block_on(verifier.verify(&token, 4_000_000_100)).unwrap())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
