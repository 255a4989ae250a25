//! Property tests (native only: proptest needs threads and a clock).
#![cfg(not(target_arch = "wasm32"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use proptest::prelude::*;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use sealbase_crypto::envelope::{self, EnvelopeError, RecordEnvelope};
use sealbase_crypto::file::{self, FileOpener};
use sealbase_crypto::{
    AccountRootKey, ArkWrappingKey, ChannelKind, Dek, EpochKey, FileKey, Identity, RecoveryKey,
    Uuid, channel, dek, sealed, wrap,
};

const SPACE: Uuid = Uuid::from_bytes([0x11; 16]);
const RECORD: Uuid = Uuid::from_bytes([0x22; 16]);

fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn pad_unpad_round_trip(data in proptest::collection::vec(any::<u8>(), 0..5000)) {
        let padded = envelope::pad(&data).unwrap();
        let total = padded.len();
        prop_assert!(envelope::is_bucket_size(total));
        prop_assert!(total >= data.len() + 4);
        // Smallest bucket: half of it (or 256) would not fit.
        prop_assert!(total == 256 || total / 2 < data.len() + 4);
        prop_assert_eq!(envelope::unpad(&padded).unwrap(), &data[..]);
    }

    #[test]
    fn padded_len_is_monotonic_bucket(len in 0usize..(70 << 20)) {
        match envelope::padded_len(len) {
            Ok(total) => {
                prop_assert!(envelope::is_bucket_size(total));
                prop_assert!(total >= len + 4);
                if total > 1 << 20 {
                    prop_assert!(total - (1 << 20) < len + 4);
                }
            }
            Err(e) => {
                prop_assert_eq!(e, EnvelopeError::TooLarge);
                prop_assert!(len + 4 > envelope::MAX_PADDED_LEN);
            }
        }
    }

    #[test]
    fn record_round_trip(data in proptest::collection::vec(any::<u8>(), 0..2000), key: [u8; 32], seed: u64) {
        let dek = Dek::from_bytes(key);
        let blob = envelope::seal_record(&dek, &SPACE, &RECORD, &data, &mut rng(seed)).unwrap();
        prop_assert_eq!(blob.len(), 1 + 12 + envelope::padded_len(data.len()).unwrap() + 16);
        prop_assert_eq!(&*envelope::open_record(&dek, &SPACE, &RECORD, &blob).unwrap(), &data);
    }

    #[test]
    fn record_bit_flip_or_truncation_is_rejected(data in proptest::collection::vec(any::<u8>(), 0..600), bit: usize, cut: usize) {
        let dek = Dek::from_bytes([3; 32]);
        let blob = envelope::seal_record(&dek, &SPACE, &RECORD, &data, &mut rng(1)).unwrap();
        let mut flipped = blob.clone();
        let bit = bit % (blob.len() * 8);
        flipped[bit / 8] ^= 1 << (bit % 8);
        prop_assert!(envelope::open_record(&dek, &SPACE, &RECORD, &flipped).is_err());
        let cut = cut % blob.len();
        prop_assert!(envelope::open_record(&dek, &SPACE, &RECORD, &blob[..cut]).is_err());
    }

    #[test]
    fn open_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let dek = Dek::from_bytes([4; 32]);
        let _ = envelope::open_record(&dek, &SPACE, &RECORD, &bytes);
        let mut versioned = bytes.clone();
        versioned.insert(0, 1);
        prop_assert!(envelope::open_record(&dek, &SPACE, &RECORD, &versioned).is_err());
        let _ = envelope::unpad(&bytes);
        let _ = RecordEnvelope::from_cbor(&bytes);
        let _ = dek::WrappedKey::from_bytes(&bytes);
        let _ = dek::wrapped_epoch(&bytes);
        let _ = wrap::unwrap_ark(&ArkWrappingKey::from_bytes([5; 32]), &bytes);
        let id = Identity::from_secrets(&[6; 32], &[7; 32]);
        let _ = sealed::open(id.agreement_secret(), &bytes, b"ctx");
        let _ = sealed::open_epoch_key(id.agreement_secret(), &SPACE, 0, &bytes);
        let _ = channel::channel_epoch(&bytes);
        for kind in [ChannelKind::Presence, ChannelKind::Event] {
            prop_assert!(channel::open_channel(&EpochKey::from_bytes([8; 32]), &SPACE, kind, &versioned).is_err());
        }
        let fk = FileKey::from_bytes([9; 32]);
        let _ = file::open_file(&fk, &SPACE, &RECORD, &bytes);
        prop_assert!(file::open_file(&fk, &SPACE, &RECORD, &versioned).is_err());
        if let Ok(opener) = FileOpener::new(&fk, &SPACE, &RECORD, &versioned) {
            for (index, last) in [(0, true), (0, false), (1, true), (u64::MAX, true)] {
                prop_assert!(opener.open_chunk(index, &bytes, last).is_err());
            }
        }
        if let Ok(s) = core::str::from_utf8(&bytes) {
            let _ = wrap::parse_recovery_key(s);
            let _ = s.parse::<sealbase_crypto::Did>();
        }
    }

    #[test]
    fn parse_recovery_key_never_panics(s in "\\PC{0,80}") {
        let _ = wrap::parse_recovery_key(&s);
    }

    #[test]
    fn recovery_key_round_trip(key: [u8; 32]) {
        let key = RecoveryKey::from_bytes(key);
        let shown = wrap::format_recovery_key(&key);
        prop_assert_eq!(wrap::parse_recovery_key(&shown).unwrap(), key);
    }

    #[test]
    fn cbor_envelope_round_trip(
        collection in "\\PC{0,40}",
        schema: u32,
        doc in proptest::collection::vec(any::<u8>(), 0..300),
        heads in proptest::collection::vec(any::<[u8; 32]>(), 0..5),
    ) {
        let id = Identity::from_secrets(&[8; 32], &[9; 32]);
        let env = RecordEnvelope::sign(&id, &SPACE, &RECORD, collection, schema, doc, heads).unwrap();
        let cbor = env.to_cbor().unwrap();
        let back = RecordEnvelope::from_cbor(&cbor).unwrap();
        prop_assert_eq!(&back, &env);
        prop_assert!(back.verify(&SPACE, &RECORD).is_ok());
        let dek = Dek::from_bytes([1; 32]);
        let blob = envelope::seal_record_envelope(&dek, &SPACE, &RECORD, &env, &mut rng(2)).unwrap();
        prop_assert_eq!(envelope::open_record_envelope(&dek, &SPACE, &RECORD, &blob).unwrap(), env);
    }

    #[test]
    fn sealed_round_trip_and_tamper(
        data in proptest::collection::vec(any::<u8>(), 0..300),
        context in proptest::collection::vec(any::<u8>(), 0..40),
        seed: u64,
        bit: usize,
    ) {
        let id = Identity::generate(&mut rng(seed));
        let boxed = sealed::seal(&id.agreement_public(), &data, &context, &mut rng(seed ^ 1)).unwrap();
        prop_assert_eq!(&*sealed::open(id.agreement_secret(), &boxed, &context).unwrap(), &data);
        let mut flipped = boxed.clone();
        let bit = bit % (boxed.len() * 8);
        flipped[bit / 8] ^= 1 << (bit % 8);
        prop_assert!(sealed::open(id.agreement_secret(), &flipped, &context).is_err());
        prop_assert!(sealed::open(id.agreement_secret(), &boxed[..boxed.len() - 1], &context).is_err());
    }

    #[test]
    fn key_wraps_round_trip_and_reject_flips(key: [u8; 32], kek: [u8; 32], epoch: u32, bit in 0usize..(61 * 8)) {
        let ek = EpochKey::from_bytes(kek);
        let w = dek::wrap_dek(epoch, &ek, &Dek::from_bytes(key));
        prop_assert_eq!(dek::wrapped_epoch(&w.to_bytes()), Ok(epoch));
        prop_assert_eq!(dek::unwrap_dek(&ek, &w).unwrap(), Dek::from_bytes(key));
        let mut kw = w.to_bytes();
        let kw_bit = 32 + bit % (40 * 8);
        kw[kw_bit / 8] ^= 1 << (kw_bit % 8);
        let tampered = dek::WrappedKey::from_bytes(&kw).unwrap();
        prop_assert_eq!(dek::unwrap_dek(&ek, &tampered), Err(dek::DekWrapError::Unwrap));

        let akek = ArkWrappingKey::from_bytes(kek);
        let ark = AccountRootKey::from_bytes(key);
        let wrapped = wrap::wrap_ark(&akek, &ark, &mut rng(epoch.into()));
        prop_assert_eq!(wrap::unwrap_ark(&akek, &wrapped).unwrap(), ark);
        let mut flipped = wrapped;
        flipped[bit / 8] ^= 1 << (bit % 8);
        prop_assert!(wrap::unwrap_ark(&akek, &flipped).is_err());
    }

    #[test]
    fn channel_round_trip_and_tamper(
        data in proptest::collection::vec(any::<u8>(), 0..2000),
        event: bool,
        epoch: u32,
        seed: u64,
        bit: usize,
    ) {
        let kind = if event { ChannelKind::Event } else { ChannelKind::Presence };
        let id = Identity::generate(&mut rng(seed));
        let ek = EpochKey::from_bytes([6; 32]);
        let sealed = channel::seal_channel(&id, &SPACE, epoch, &ek, kind, &data, &mut rng(seed ^ 1));
        if data.len() > kind.max_data_len() {
            prop_assert_eq!(sealed, Err(channel::ChannelError::TooLarge));
            return Ok(());
        }
        let blob = sealed.unwrap();
        prop_assert_eq!(channel::channel_epoch(&blob), Ok(epoch));
        prop_assert!(envelope::is_bucket_size(blob.len() - channel::CHANNEL_HEADER_LEN - 16));
        let opened = channel::open_channel(&ek, &SPACE, kind, &blob).unwrap();
        prop_assert_eq!((opened.author, opened.epoch, &opened.data), (id.did(), epoch, &data));
        let mut flipped = blob.clone();
        let bit = bit % (blob.len() * 8);
        flipped[bit / 8] ^= 1 << (bit % 8);
        prop_assert!(channel::open_channel(&ek, &SPACE, kind, &flipped).is_err());
    }

    #[test]
    fn file_lengths_are_a_bijection(plain_len in 0u64..(1 << 50), sealed_len: u64) {
        let sealed = file::sealed_file_len(plain_len);
        prop_assert_eq!(file::plain_file_len(sealed), Ok(plain_len));
        if let Ok(plain) = file::plain_file_len(sealed_len) {
            prop_assert_eq!(file::sealed_file_len(plain), sealed_len);
        }
        let near = 9 + plain_len / 1000 * (file::SEALED_CHUNK_LEN as u64);
        for len in near..near + 40 {
            if let Ok(plain) = file::plain_file_len(len) {
                prop_assert_eq!(file::sealed_file_len(plain), len);
            }
        }
    }

    #[test]
    fn sealed_span_is_the_covering_chunks(
        plain_len in 0u64..(20 * 262_144),
        a in 0u64..(21 * 262_144),
        b in 0u64..(21 * 262_144),
    ) {
        let (c, s) = (file::FILE_CHUNK_LEN as u64, file::SEALED_CHUNK_LEN as u64);
        let sealed_len = file::sealed_file_len(plain_len);
        let count = file::file_chunk_count(sealed_len).unwrap();
        match file::sealed_span(sealed_len, a, b) {
            Ok(span) => {
                let end = b.min(plain_len);
                prop_assert!(a < end);
                prop_assert_eq!(span.first_chunk, a / c);
                prop_assert_eq!(span.start, 9 + span.first_chunk * s);
                let last = (end - 1) / c;
                prop_assert!(last < count);
                let chunk_end = if last + 1 == count { sealed_len } else { 9 + (last + 1) * s };
                prop_assert_eq!(span.end, chunk_end);
                prop_assert!(span.end <= sealed_len);
            }
            Err(e) => {
                prop_assert_eq!(e, file::FileError::Range);
                prop_assert!(a >= b.min(plain_len));
            }
        }
    }

    #[test]
    fn file_round_trip_and_tamper(
        plain in proptest::collection::vec(any::<u8>(), 0..3000),
        key: [u8; 32],
        seed: u64,
        bit: usize,
    ) {
        let fk = FileKey::from_bytes(key);
        let sealed = file::seal_file(&fk, &SPACE, &RECORD, &plain, &mut rng(seed)).unwrap();
        prop_assert_eq!(sealed.len() as u64, file::sealed_file_len(plain.len() as u64));
        prop_assert_eq!(&*file::open_file(&fk, &SPACE, &RECORD, &sealed).unwrap(), &plain);
        let mut flipped = sealed.clone();
        let bit = bit % (sealed.len() * 8);
        flipped[bit / 8] ^= 1 << (bit % 8);
        prop_assert!(file::open_file(&fk, &SPACE, &RECORD, &flipped).is_err());
        prop_assert!(file::open_file(&fk, &SPACE, &RECORD, &sealed[..sealed.len() - 1]).is_err());
    }
}
