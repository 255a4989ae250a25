//! Sealbase cryptography: every key, envelope and signature in the system.
//!
//! This crate builds for native targets and for `wasm32-unknown-unknown`; the
//! servers and the browser SDK share it, so there is one implementation of
//! each format. It holds no global state, reads no clock and draws no
//! randomness of its own: callers pass `now` and an RNG in.
//!
//! Invariants callers rely on:
//! - every secret type zeroizes on drop and never prints its bytes;
//! - every byte format starts with a version byte (the DEK wrap's epoch
//!   prefix is fixed by the design instead) and is pinned by the vectors in
//!   `tests/vectors/`;
//! - nothing here panics on untrusted input: parsers and `open` functions
//!   return a typed error naming the check that failed.
//!
//! The crate refuses to do anything a vetted primitive crate does not back:
//! AES-256-GCM, AES-KW, HKDF-SHA256, Concat KDF, Ed25519 and X25519 come from
//! RustCrypto and dalek; only their composition lives here.
#![deny(missing_docs)]
#![cfg_attr(not(test), forbid(unsafe_code))]

pub mod capability;
pub mod channel;
pub mod dek;
pub mod envelope;
pub mod file;
mod gcm;
pub mod identity;
pub mod jwe;
pub mod kdf;
pub mod keys;
pub mod membership;
pub mod sealed;
pub mod wrap;

// crypto core
pub use channel::{
    CHANNEL_HEADER_LEN, CHANNEL_VERSION, ChannelError, ChannelKind, ChannelMessage, channel_aad,
    channel_epoch, open_channel, seal_channel, seal_channel_with_nonce,
};
pub use dek::{
    DekWrapError, WrappedKey, unwrap_dek, unwrap_file_key, wrap_dek, wrap_file_key, wrapped_epoch,
};
pub use envelope::{
    EnvelopeError, PaddingError, RecordEnvelope, SignatureCheck, open_record, open_record_envelope,
    open_record_envelope_unchecked, seal_record, seal_record_envelope, verify_signature,
};
pub use file::{
    FILE_CHUNK_LEN, FILE_HEADER_LEN, FILE_VERSION, FileError, FileOpener, FileSealer,
    SEALED_CHUNK_LEN, SealedSpan, file_chunk_count, open_file, plain_file_len, seal_file,
    sealed_file_len, sealed_span,
};
pub use membership::{
    EntryBody, InvitationPayload, MembershipError, SignedEntry, open_entry, open_invitation,
    seal_entry, seal_invitation,
};
pub use sealed::{SealError, open_epoch_key, seal_epoch_key};
pub use wrap::{
    ArkWrapError, RecoveryKeyError, format_recovery_key, parse_recovery_key, unwrap_ark, wrap_ark,
};

pub use identity::{AgreementPublicKey, Did, Identity, IdentityError};
pub use keys::{
    AccountRootKey, AppKey, ArkWrappingKey, ChannelKey, Dek, EpochKey, FileKey, RecoveryKey,
};
pub use rand_core::{CryptoRng, CryptoRngCore, OsRng, RngCore};
pub use uuid::Uuid;

// JOSE: capabilities and key delivery
pub use capability::{
    Capability, CapabilityClaims, CapabilityError, CapabilityToken, TokenHash, VerifiedCapability,
    verify_chain,
};
pub use jwe::{JweError, JweHeader, JweOptions};
