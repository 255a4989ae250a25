//! Per-record cost of a pull stream's frames: encoding a `pull.record` chunk
//! with a 1 KiB blob (through a `Frame` and its `RawValue`, and straight
//! into the frame as the server does) and decoding it as a client does
//! (strict walk of the frame, then the typed payload).
//!
//! `cargo bench -p sealbase-protocol --bench frames`.
#![allow(missing_docs, clippy::unwrap_used, unreachable_pub)]

use criterion::{Criterion, black_box, criterion_group, criterion_main};
use sealbase_protocol::{Frame, PullChunk, PulledRecord, Uuid, WrappedKey, decode};

fn record() -> PullChunk {
    PullChunk::Record(PulledRecord {
        space: Uuid::from_u128(0x5ace),
        id: Uuid::from_u128(42),
        cursor: 123_456,
        blob: vec![0x5a; 1024].into(),
        dek: WrappedKey::from([7u8; 44]),
    })
}

fn frames(c: &mut Criterion) {
    let chunk = record();
    c.bench_function("pull.record 1 KiB: Frame::chunk + encode", |b| {
        b.iter(|| {
            Frame::chunk(7, black_box(&chunk))
                .unwrap()
                .encode()
                .unwrap()
        })
    });
    c.bench_function("pull.record 1 KiB: encode_frame", |b| {
        b.iter(|| black_box(&chunk).encode_frame(7).unwrap())
    });
    let bytes = chunk.encode_frame(7).unwrap();
    c.bench_function("pull.record 1 KiB: decode + typed payload", |b| {
        b.iter(|| {
            let Frame::Chunk(raw) = decode(black_box(&bytes)).unwrap() else {
                unreachable!("a chunk frame")
            };
            PullChunk::from_raw(&raw).unwrap()
        })
    });
}

criterion_group!(benches, frames);
criterion_main!(benches);
