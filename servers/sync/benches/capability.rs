//! The cost of the server's authorization check for a shared space
//! (`Access::authorize`): with the chain already verified and cached, and
//! without (a chain seen for the first time, verified link by link), at
//! chain depths 1, 3 and 8. The space's root and revoked set are in memory
//! in both cases, as they are after a space's first request.
//!
//! Part of `just bench` (or `cargo bench -p sealbase-sync --bench capability`).
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    unreachable_pub
)]

use criterion::{BatchSize, BenchmarkId, Criterion, black_box, criterion_group, criterion_main};
use sealbase_crypto::{Capability, CapabilityToken, Did, Identity, OsRng};
use sealbase_sync::access::Access;
use sealbase_sync::store::Store;
use uuid::Uuid;

struct Setup {
    rt: tokio::runtime::Runtime,
    store: Store,
    space: Uuid,
    root: Identity,
    holders: Vec<Identity>,
}

impl Setup {
    fn new() -> Setup {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let root = Identity::generate(&mut OsRng);
        let space = Uuid::from_u128(0x5ace);
        let store = rt.block_on(async {
            let store = Store::connect("sqlite::memory:").await.unwrap();
            store.migrate().await.unwrap();
            store
                .create_space(
                    space,
                    Uuid::from_u128(1),
                    &root.did().to_string(),
                    b"genesis",
                    &[0; 32],
                    b"key",
                )
                .await
                .unwrap();
            store
        });
        let holders = (0..8).map(|_| Identity::generate(&mut OsRng)).collect();
        Setup {
            rt,
            store,
            space,
            root,
            holders,
        }
    }

    /// A fresh chain of `depth` links from the root to the last holder of
    /// the chain (returned with it).
    fn chain(&self, depth: usize) -> (CapabilityToken, Did) {
        let exp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 3600;
        let mut token = CapabilityToken::issue_root(
            &self.root,
            &self.holders[0].did(),
            self.space,
            Capability::Write,
            exp,
            &mut OsRng,
        )
        .unwrap();
        for i in 1..depth {
            token = token
                .delegate(
                    &self.holders[i - 1],
                    &self.holders[i].did(),
                    Capability::Write,
                    exp,
                    &mut OsRng,
                )
                .unwrap();
        }
        (token, self.holders[depth - 1].did())
    }

    fn authorize(&self, access: &Access, token: &str, did: &Did) {
        let granted = self
            .rt
            .block_on(access.authorize(
                &self.store,
                Uuid::from_u128(2),
                did,
                self.space,
                Some(token),
                Capability::Write,
            ))
            .unwrap();
        assert!(granted.is_some());
    }
}

fn authorize(c: &mut Criterion) {
    let setup = Setup::new();
    let mut group = c.benchmark_group("authorize shared space");
    for depth in [1usize, 3, 8] {
        let (token, did) = setup.chain(depth);
        let token = token.to_string();
        let access = Access::default();
        setup.authorize(&access, &token, &did);
        group.bench_function(BenchmarkId::new("cached", depth), |b| {
            b.iter(|| setup.authorize(&access, black_box(&token), &did));
        });
        group.bench_function(BenchmarkId::new("uncached", depth), |b| {
            b.iter_batched(
                || {
                    // Root and revocations warm, this chain never seen.
                    let access = Access::default();
                    let (warm, warm_did) = setup.chain(1);
                    setup.authorize(&access, &warm.to_string(), &warm_did);
                    let (fresh, did) = setup.chain(depth);
                    (access, fresh.to_string(), did)
                },
                |(access, fresh, did)| setup.authorize(&access, black_box(&fresh), &did),
                BatchSize::PerIteration,
            );
        });
    }
    group.finish();
}

criterion_group!(benches, authorize);
criterion_main!(benches);
