//! Protocol v1's CBOR policy, on top of ciborium's low-level layer.
//!
//! Every frame passes through [`Reader`] before serde sees any of it. The
//! walker allocates nothing, so a hostile length costs at most one pass over
//! the bytes actually received, and it refuses everything protocol v1 never
//! produces: indefinite lengths, tags, unassigned simple values, invalid
//! UTF-8, trailing bytes and nesting deeper than [`MAX_NESTING_DEPTH`]. What
//! it accepts, ciborium can then decode without surprises (ciborium itself
//! silently skips tags and accepts arrays of integers where bytes are
//! expected; the walker and our byte types close both doors).

/// Deepest nesting of arrays and maps accepted in a frame, the frame map
/// itself counting as level 1. Protocol v1 needs 5; the rest is headroom for
/// fields added by later minor versions.
pub const MAX_NESTING_DEPTH: usize = 16;

use ciborium_ll::{Decoder, Encoder, Header};

pub(crate) const MAJOR_UINT: u8 = 0;
pub(crate) const MAJOR_BYTES: u8 = 2;
pub(crate) const MAJOR_TEXT: u8 = 3;
pub(crate) const MAJOR_ARRAY: u8 = 4;
pub(crate) const MAJOR_MAP: u8 = 5;
const MAJOR_NEGATIVE: u8 = 1;
const MAJOR_SIMPLE: u8 = 7;

/// Why bytes are not a CBOR item protocol v1 accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CborError {
    /// The input ends inside an item.
    #[error("input ends inside a CBOR item")]
    Truncated,
    /// Bytes follow the single top-level item.
    #[error("bytes follow the CBOR item")]
    TrailingBytes,
    /// Not well-formed CBOR: additional information 28–30, which RFC 8949
    /// reserves.
    #[error("malformed CBOR header")]
    Malformed,
    /// An indefinite-length string, array or map, or a stray break.
    #[error("indefinite-length items are not allowed")]
    Indefinite,
    /// A tag (major type 6); protocol v1 uses none.
    #[error("CBOR tags are not allowed")]
    Tag,
    /// Arrays and maps nest deeper than [`MAX_NESTING_DEPTH`].
    #[error("nesting deeper than {MAX_NESTING_DEPTH}")]
    TooDeep,
    /// A text string that is not UTF-8.
    #[error("text string is not valid UTF-8")]
    InvalidUtf8,
    /// A simple value other than false, true, null and undefined.
    #[error("unassigned simple value {0}")]
    SimpleValue(u8),
}

/// Cursor over a byte slice that reads CBOR headers and whole items.
///
/// Headers are parsed by `ciborium-ll` (ciborium's own low-level layer);
/// this type only adds protocol v1's policy on top and skips bodies by
/// slicing, so nothing is copied or allocated.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// Takes `n` bytes without copying; fails before allocating anything.
    fn take(&mut self, n: u64) -> Result<&'a [u8], CborError> {
        let n = usize::try_from(n).map_err(|_| CborError::Truncated)?;
        let end = self.pos.checked_add(n).ok_or(CborError::Truncated)?;
        let slice = self.buf.get(self.pos..end).ok_or(CborError::Truncated)?;
        self.pos = end;
        Ok(slice)
    }

    /// Reads one header: its major type and argument (length, value or
    /// simple-value number). Rejects indefinite lengths, tags, unassigned
    /// simple values and reserved encodings.
    pub(crate) fn header(&mut self) -> Result<(u8, u64), CborError> {
        let rest = self.buf.get(self.pos..).ok_or(CborError::Truncated)?;
        let mut decoder = Decoder::from(rest);
        let header = decoder.pull().map_err(|e| match e {
            ciborium_ll::Error::Io(_) => CborError::Truncated,
            // Additional information 28–30 is reserved by RFC 8949.
            ciborium_ll::Error::Syntax(_)
                if rest
                    .first()
                    .is_some_and(|b| (28..=30).contains(&(b & 0x1f))) =>
            {
                CborError::Malformed
            }
            // Otherwise a length that does not fit `usize` (32-bit targets):
            // necessarily beyond the input, as it is on 64-bit targets.
            ciborium_ll::Error::Syntax(_) => CborError::Truncated,
        })?;
        self.pos += decoder.offset();
        let len = |n: usize| u64::try_from(n).map_err(|_| CborError::Truncated);
        match header {
            Header::Positive(v) => Ok((MAJOR_UINT, v)),
            Header::Negative(v) => Ok((MAJOR_NEGATIVE, v)),
            Header::Bytes(Some(n)) => Ok((MAJOR_BYTES, len(n)?)),
            Header::Text(Some(n)) => Ok((MAJOR_TEXT, len(n)?)),
            Header::Array(Some(n)) => Ok((MAJOR_ARRAY, len(n)?)),
            Header::Map(Some(n)) => Ok((MAJOR_MAP, len(n)?)),
            Header::Bytes(None)
            | Header::Text(None)
            | Header::Array(None)
            | Header::Map(None)
            | Header::Break => Err(CborError::Indefinite),
            Header::Tag(_) => Err(CborError::Tag),
            // false, true, null, undefined
            Header::Simple(v @ 20..=23) => Ok((MAJOR_SIMPLE, u64::from(v))),
            Header::Simple(v) => Err(CborError::SimpleValue(v)),
            Header::Float(_) => Ok((MAJOR_SIMPLE, 0)),
        }
    }

    /// Skips one complete item; `depth` counts the containers around it.
    fn skip_item(&mut self, depth: usize) -> Result<(), CborError> {
        let (major, arg) = self.header()?;
        match major {
            MAJOR_BYTES => self.take(arg).map(|_| ()),
            MAJOR_TEXT => self.text(arg).map(|_| ()),
            MAJOR_ARRAY | MAJOR_MAP => {
                let depth = depth + 1;
                if depth > MAX_NESTING_DEPTH {
                    return Err(CborError::TooDeep);
                }
                let per_entry = if major == MAJOR_MAP { 2 } else { 1 };
                // Each item takes at least one byte, so a hostile count ends
                // in `Truncated` after at most one pass over the input.
                let mut remaining = arg;
                while remaining > 0 {
                    for _ in 0..per_entry {
                        self.skip_item(depth)?;
                    }
                    remaining -= 1;
                }
                Ok(())
            }
            // Integers, simple values and floats have no body.
            _ => Ok(()),
        }
    }

    /// Reads one complete item at nesting `depth` and returns its bytes.
    pub(crate) fn item(&mut self, depth: usize) -> Result<&'a [u8], CborError> {
        let start = self.pos;
        self.skip_item(depth)?;
        self.buf.get(start..self.pos).ok_or(CborError::Truncated)
    }

    /// Reads the body of a text string whose header was just read.
    pub(crate) fn text(&mut self, len: u64) -> Result<&'a str, CborError> {
        core::str::from_utf8(self.take(len)?).map_err(|_| CborError::InvalidUtf8)
    }

    /// Fails unless the whole input has been consumed.
    pub(crate) fn finish(&self) -> Result<(), CborError> {
        if self.pos == self.buf.len() {
            Ok(())
        } else {
            Err(CborError::TrailingBytes)
        }
    }
}

/// Checks that `bytes` is exactly one acceptable item, nested in `depth`
/// containers.
pub(crate) fn check_item(bytes: &[u8], depth: usize) -> Result<(), CborError> {
    let mut reader = Reader::new(bytes);
    reader.skip_item(depth)?;
    reader.finish()
}

/// Decodes `bytes` as exactly one unsigned integer.
pub(crate) fn read_uint(bytes: &[u8]) -> Option<u64> {
    let mut reader = Reader::new(bytes);
    match reader.header() {
        Ok((MAJOR_UINT, value)) if reader.finish().is_ok() => Some(value),
        _ => None,
    }
}

/// Decodes `bytes` as exactly one text string.
pub(crate) fn read_text(bytes: &[u8]) -> Option<&str> {
    let mut reader = Reader::new(bytes);
    match reader.header() {
        Ok((MAJOR_TEXT, len)) => {
            let text = reader.text(len).ok()?;
            reader.finish().ok()?;
            Some(text)
        }
        _ => None,
    }
}

/// Appends the shortest header for `major` (unsigned, text or map) with
/// argument `arg`, encoded by `ciborium-ll`.
pub(crate) fn write_header(out: &mut Vec<u8>, major: u8, arg: u64) {
    let header = match major {
        MAJOR_MAP => Header::Map(usize::try_from(arg).ok()),
        MAJOR_TEXT => Header::Text(usize::try_from(arg).ok()),
        _ => Header::Positive(arg),
    };
    // Writing into a Vec cannot fail.
    let _ = Encoder::from(out).push(header);
}

/// Appends a text string.
pub(crate) fn write_text(out: &mut Vec<u8>, text: &str) {
    write_header(out, MAJOR_TEXT, text.len() as u64);
    out.extend_from_slice(text.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn header_writer_uses_shortest_form() {
        for (arg, expected) in [
            (0u64, vec![0x00]),
            (23, vec![0x17]),
            (24, vec![0x18, 24]),
            (255, vec![0x18, 0xff]),
            (256, vec![0x19, 1, 0]),
            (65_536, vec![0x1a, 0, 1, 0, 0]),
            (1 << 32, vec![0x1b, 0, 0, 0, 1, 0, 0, 0, 0]),
        ] {
            let mut out = Vec::new();
            write_header(&mut out, MAJOR_UINT, arg);
            assert_eq!(out, expected, "{arg}");
            assert_eq!(read_uint(&out), Some(arg));
        }
    }

    #[test]
    fn rejects_what_v1_never_sends() {
        assert_eq!(check_item(&[0x5f, 0xff], 0), Err(CborError::Indefinite));
        assert_eq!(check_item(&[0xc1, 0x00], 0), Err(CborError::Tag));
        assert_eq!(check_item(&[0x1c], 0), Err(CborError::Malformed));
        assert_eq!(
            check_item(&[0x62, 0xff, 0xfe], 0),
            Err(CborError::InvalidUtf8)
        );
        assert_eq!(check_item(&[0xf0], 0), Err(CborError::SimpleValue(16)));
        assert_eq!(
            check_item(&[0xf8, 0x20], 0),
            Err(CborError::SimpleValue(32))
        );
        assert_eq!(check_item(&[0x00, 0x00], 0), Err(CborError::TrailingBytes));
        assert_eq!(check_item(&[0xff], 0), Err(CborError::Indefinite));
        assert_eq!(check_item(&[0xf6], 0), Ok(()));
        assert_eq!(check_item(&[0xfb, 0, 0, 0, 0, 0, 0, 0, 0], 0), Ok(()));
    }

    #[test]
    fn hostile_lengths_fail_without_allocating() {
        // Byte string claiming 2^64-1 bytes, array and map claiming as many items.
        for bytes in [
            &[0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff][..],
            &[0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00][..],
            &[0xbb, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff][..],
        ] {
            assert_eq!(check_item(bytes, 0), Err(CborError::Truncated));
        }
    }

    #[test]
    fn nesting_is_capped() {
        let ok = [vec![0x81; MAX_NESTING_DEPTH], vec![0x00]].concat();
        assert_eq!(check_item(&ok, 0), Ok(()));
        let deep = [vec![0x81; MAX_NESTING_DEPTH + 1], vec![0x00]].concat();
        assert_eq!(check_item(&deep, 0), Err(CborError::TooDeep));
        let very_deep = vec![0x81; 1_000_000];
        assert_eq!(check_item(&very_deep, 0), Err(CborError::TooDeep));
    }
}
