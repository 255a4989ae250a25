//! Criterion benchmarks of the hot crypto paths: `just bench`
//! (figures recorded in docs/benchmarks.md).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use criterion::{BenchmarkId, Criterion, Throughput, black_box, criterion_group, criterion_main};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use sealbase_crypto::{
    Capability, CapabilityToken, Dek, EpochKey, Identity, Uuid, open_record, seal_record,
    unwrap_dek, verify_chain, wrap_dek,
};

const SPACE: Uuid = Uuid::from_bytes([0x5a; 16]);
const RECORD: Uuid = Uuid::from_bytes([0x7e; 16]);

fn envelope(c: &mut Criterion) {
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let dek = Dek::generate(&mut rng);
    let mut group = c.benchmark_group("envelope");
    for (label, size) in [("1KiB", 1024usize), ("64KiB", 64 << 10), ("1MiB", 1 << 20)] {
        let plaintext = vec![0x42u8; size];
        let blob = seal_record(&dek, &SPACE, &RECORD, &plaintext, &mut rng).unwrap();
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(BenchmarkId::new("seal", label), &plaintext, |b, p| {
            b.iter(|| seal_record(&dek, &SPACE, &RECORD, black_box(p), &mut rng).unwrap())
        });
        group.bench_with_input(BenchmarkId::new("open", label), &blob, |b, blob| {
            b.iter(|| open_record(&dek, &SPACE, &RECORD, black_box(blob)).unwrap())
        });
    }
    group.finish();
}

fn dek_wrap(c: &mut Criterion) {
    let mut rng = ChaCha20Rng::seed_from_u64(2);
    let epoch_key = EpochKey::generate(&mut rng);
    let dek = Dek::generate(&mut rng);
    let wrapped = wrap_dek(7, &epoch_key, &dek);
    let mut group = c.benchmark_group("dek");
    group.bench_function("wrap", |b| {
        b.iter(|| wrap_dek(7, &epoch_key, black_box(&dek)))
    });
    group.bench_function("unwrap", |b| {
        b.iter(|| unwrap_dek(&epoch_key, black_box(&wrapped)).unwrap())
    });
    group.finish();
}

fn signatures(c: &mut Criterion) {
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    let id = Identity::generate(&mut rng);
    let did = id.did();
    // The size of a record-signature message with a few heads.
    let message = vec![0x11u8; 22 + 32 + 4 + 5 + 4 + 4 + 3 * 32];
    let sig = id.sign(&message);
    let mut group = c.benchmark_group("ed25519");
    group.bench_function("sign", |b| b.iter(|| id.sign(black_box(&message))));
    group.bench_function("verify", |b| {
        b.iter(|| did.verify(black_box(&message), &sig).unwrap())
    });
    group.finish();
}

/// A chain of `depth` links: root → member 1 → … → member `depth`.
fn chain(depth: usize) -> (Identity, Identity, String) {
    let mut rng = ChaCha20Rng::seed_from_u64(4 + depth as u64);
    let root = Identity::generate(&mut rng);
    let mut holder = Identity::generate(&mut rng);
    let mut token = CapabilityToken::issue_root(
        &root,
        &holder.did(),
        SPACE,
        Capability::Admin,
        4_000_000_000,
        &mut rng,
    )
    .unwrap();
    for _ in 1..depth {
        let next = Identity::generate(&mut rng);
        token = token
            .delegate(
                &holder,
                &next.did(),
                Capability::Write,
                4_000_000_000,
                &mut rng,
            )
            .unwrap();
        holder = next;
    }
    (root, holder, token.as_str().to_owned())
}

fn capabilities(c: &mut Criterion) {
    let mut group = c.benchmark_group("capability_chain_verify");
    for depth in [1usize, 3, 8] {
        let (root, leaf, compact) = chain(depth);
        let (root_did, leaf_did) = (root.did(), leaf.did());
        // What the sync server does on a cache miss: parse (checks every
        // signature) and verify the chain's authority.
        group.bench_with_input(
            BenchmarkId::from_parameter(depth),
            &compact,
            |b, compact| {
                b.iter(|| {
                    let token = CapabilityToken::parse(black_box(compact)).unwrap();
                    verify_chain(&token, &root_did, SPACE, &leaf_did, 1_800_000_000, |_| {
                        false
                    })
                    .unwrap()
                })
            },
        );
    }
    group.finish();
}

criterion_group!(benches, envelope, dek_wrap, signatures, capabilities);
criterion_main!(benches);
