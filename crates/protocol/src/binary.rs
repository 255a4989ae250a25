//! Binary fields: always CBOR byte strings, never arrays of integers.
//!
//! serde's default for `Vec<u8>` and `[u8; N]` is a sequence, which CBOR
//! encodes as an array of integers (up to twice the size, and slow to parse
//! in JavaScript). These types serialize as byte strings and, unlike
//! ciborium's own byte handling, refuse arrays when decoding, so there is
//! exactly one encoding of every binary field.

use core::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// Length of a wrapped record or file key: `epoch (u32 BE) ‖ AES-KW(E_epoch, key)`.
pub const WRAPPED_KEY_LEN: usize = 44;

/// Length of a SHA-256 hash.
pub const HASH_LEN: usize = 32;

/// An opaque byte string of any length (ciphertext, sealed key, payload).
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Bytes(pub Vec<u8>);

impl Bytes {
    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        &self.0
    }

    /// Number of bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no bytes.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<Vec<u8>> for Bytes {
    fn from(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }
}

impl From<&[u8]> for Bytes {
    fn from(bytes: &[u8]) -> Self {
        Self(bytes.to_vec())
    }
}

impl From<Bytes> for Vec<u8> {
    fn from(bytes: Bytes) -> Self {
        bytes.0
    }
}

impl AsRef<[u8]> for Bytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Bytes[{}](", self.0.len())?;
        write_hex(f, self.0.iter().take(32))?;
        if self.0.len() > 32 {
            f.write_str("…")?;
        }
        f.write_str(")")
    }
}

impl Serialize for Bytes {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct BytesVisitor;
        impl Visitor<'_> for BytesVisitor {
            type Value = Bytes;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a byte string")
            }
            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Bytes, E> {
                Ok(Bytes(v.to_vec()))
            }
            fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Bytes, E> {
                Ok(Bytes(v))
            }
        }
        // `byte_buf`, not `bytes`: ciborium serves `bytes` only up to its
        // 4 KiB scratch buffer, `byte_buf` reads any length in chunks.
        deserializer.deserialize_byte_buf(BytesVisitor)
    }
}

fn write_hex<'a>(f: &mut fmt::Formatter<'_>, bytes: impl Iterator<Item = &'a u8>) -> fmt::Result {
    for b in bytes {
        write!(f, "{b:02x}")?;
    }
    Ok(())
}

struct ArrayVisitor<const N: usize>;

impl<const N: usize> Visitor<'_> for ArrayVisitor<N> {
    type Value = [u8; N];
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a byte string of {N} bytes")
    }
    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<[u8; N], E> {
        <[u8; N]>::try_from(v).map_err(|_| E::invalid_length(v.len(), &self))
    }
}

macro_rules! fixed_bytes {
    ($(#[$doc:meta])* $name:ident, $len:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash)]
        pub struct $name(pub [u8; $len]);

        impl $name {
            /// The bytes.
            pub fn as_bytes(&self) -> &[u8; $len] {
                &self.0
            }
        }

        impl From<[u8; $len]> for $name {
            fn from(bytes: [u8; $len]) -> Self {
                Self(bytes)
            }
        }

        impl TryFrom<&[u8]> for $name {
            type Error = core::array::TryFromSliceError;
            fn try_from(bytes: &[u8]) -> Result<Self, Self::Error> {
                <[u8; $len]>::try_from(bytes).map(Self)
            }
        }

        impl AsRef<[u8]> for $name {
            fn as_ref(&self) -> &[u8] {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}(", stringify!($name))?;
                write_hex(f, self.0.iter())?;
                f.write_str(")")
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_bytes(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                deserializer.deserialize_bytes(ArrayVisitor::<$len>).map(Self)
            }
        }
    };
}

fixed_bytes!(
    /// A SHA-256 hash (membership `entry_hash` and `prev_hash`, capability
    /// token hashes), carried as a 32-byte byte string.
    Hash,
    HASH_LEN
);

fixed_bytes!(
    /// A record or file key wrapped under an epoch key:
    /// `epoch (u32 BE) ‖ AES-KW(E_epoch, key)`, 44 bytes. The server reads
    /// only the epoch prefix.
    WrappedKey,
    WRAPPED_KEY_LEN
);

impl WrappedKey {
    /// The epoch whose key wraps this key (the big-endian 4-byte prefix).
    pub fn epoch(&self) -> u32 {
        let [a, b, c, d, ..] = self.0;
        u32::from_be_bytes([a, b, c, d])
    }
}
