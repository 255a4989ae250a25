//! Secret key types.
//!
//! Every symmetric secret in Sealbase is 32 bytes, but each has its own type so
//! an epoch key can never be passed where a record key is expected. All of
//! them are zeroized on drop, print as `<redacted>` and compare in constant
//! time. Randomness is always injected (`&mut impl CryptoRngCore`): the crate
//! never reaches for a global RNG, so callers (and tests) decide where
//! entropy comes from.

use rand_core::CryptoRngCore;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

macro_rules! secret_key {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Zeroize, ZeroizeOnDrop)]
        pub struct $name([u8; 32]);

        impl $name {
            /// Wraps existing key bytes.
            pub fn from_bytes(bytes: [u8; 32]) -> Self {
                Self(bytes)
            }

            /// Draws a fresh key from `rng`.
            pub fn generate(rng: &mut impl CryptoRngCore) -> Self {
                let mut bytes = [0u8; 32];
                rng.fill_bytes(&mut bytes);
                Self(bytes)
            }

            /// The raw key bytes. Keep the borrow short; do not copy them out.
            pub fn as_bytes(&self) -> &[u8; 32] {
                &self.0
            }
        }

        impl core::fmt::Debug for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                write!(f, concat!(stringify!($name), "(<redacted>)"))
            }
        }

        impl PartialEq for $name {
            fn eq(&self, other: &Self) -> bool {
                self.0.ct_eq(&other.0).into()
            }
        }

        impl Eq for $name {}
    };
}

secret_key!(
    /// `ARK`: 32 random bytes made at signup. The accounts server only ever
    /// stores it wrapped.
    AccountRootKey
);
secret_key!(
    /// `AK`: derived from `ARK` per OAuth client; delivered to the app once.
    AppKey
);
secret_key!(
    /// A space epoch key: derived for the personal space, fresh random for
    /// every epoch of a shared space.
    EpochKey
);
secret_key!(
    /// A record key: fresh random for every pushed version of a record.
    Dek
);
secret_key!(
    /// A file key: random per file, wrapped like a record key.
    FileKey
);
secret_key!(
    /// Encrypts presence and ephemeral events of one epoch.
    ChannelKey
);
secret_key!(
    /// The recovery key shown to the user once at signup.
    RecoveryKey
);
secret_key!(
    /// A key-encryption key that wraps `ARK` (derived from the OPAQUE export
    /// key or from the recovery key).
    ArkWrappingKey
);

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn debug_never_prints_key_bytes() {
        let k = Dek::from_bytes([0xab; 32]);
        let shown = format!("{k:?}");
        assert_eq!(shown, "Dek(<redacted>)");
        assert!(!shown.contains("ab"));
    }

    #[test]
    fn equality_is_by_value() {
        assert_eq!(EpochKey::from_bytes([1; 32]), EpochKey::from_bytes([1; 32]));
        assert_ne!(EpochKey::from_bytes([1; 32]), EpochKey::from_bytes([2; 32]));
    }
}
