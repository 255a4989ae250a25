//! `Range: bytes=…` on file downloads (RFC 9110 §14), one range per request.
//!
//! A range in another unit, or several ranges at once, is ignored (the
//! whole body is sent, which RFC 9110 allows); a malformed or unsatisfiable
//! byte range is refused with 416. Ranges are not aligned to encryption
//! chunks here: clients ask for the chunk boundaries they need.

use std::ops::Range;

/// What a `Range` header asks of a body of `size` bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Ranged {
    /// The whole body (no range, or one that is ignored).
    Whole,
    /// These bytes (non-empty, within the body).
    Part(Range<u64>),
    /// No byte of the body is in the range, or the range does not parse.
    Unsatisfiable,
}

/// Interprets the `Range` header value `header` for a body of `size` bytes.
pub(crate) fn parse(header: Option<&[u8]>, size: u64) -> Ranged {
    let Some(header) = header else {
        return Ranged::Whole;
    };
    let Ok(header) = std::str::from_utf8(header) else {
        return Ranged::Unsatisfiable;
    };
    let header = header.trim();
    let Some((unit, set)) = header.split_once('=') else {
        return Ranged::Unsatisfiable;
    };
    if !unit.trim().eq_ignore_ascii_case("bytes") {
        return Ranged::Whole;
    }
    if set.contains(',') {
        return Ranged::Whole;
    }
    let Some((first, last)) = set.trim().split_once('-') else {
        return Ranged::Unsatisfiable;
    };
    let number = |s: &str| -> Option<u64> {
        let s = s.trim();
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    };
    match (first.trim().is_empty(), last.trim().is_empty()) {
        // bytes=-n: the last n bytes.
        (true, false) => match number(last) {
            Some(n) if n > 0 && size > 0 => Ranged::Part(size.saturating_sub(n)..size),
            _ => Ranged::Unsatisfiable,
        },
        // bytes=a-: from a to the end.
        (false, true) => match number(first) {
            Some(a) if a < size => Ranged::Part(a..size),
            _ => Ranged::Unsatisfiable,
        },
        // bytes=a-b: a to b inclusive, b clamped to the end.
        (false, false) => match (number(first), number(last)) {
            (Some(a), Some(b)) if a <= b && a < size => {
                Ranged::Part(a..b.saturating_add(1).min(size))
            }
            _ => Ranged::Unsatisfiable,
        },
        (true, true) => Ranged::Unsatisfiable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(header: &str, size: u64) -> Ranged {
        parse(Some(header.as_bytes()), size)
    }

    #[test]
    fn single_byte_ranges() {
        assert_eq!(parse(None, 10), Ranged::Whole);
        assert_eq!(p("bytes=0-0", 10), Ranged::Part(0..1));
        assert_eq!(p("bytes=2-5", 10), Ranged::Part(2..6));
        assert_eq!(p("bytes=2-500", 10), Ranged::Part(2..10));
        assert_eq!(p("bytes=7-", 10), Ranged::Part(7..10));
        assert_eq!(p("bytes=-3", 10), Ranged::Part(7..10));
        assert_eq!(p("bytes=-30", 10), Ranged::Part(0..10));
        assert_eq!(p(" Bytes = 1 - 2 ", 10), Ranged::Part(1..3));
    }

    #[test]
    fn unsatisfiable_and_malformed() {
        assert_eq!(p("bytes=10-", 10), Ranged::Unsatisfiable);
        assert_eq!(p("bytes=10-20", 10), Ranged::Unsatisfiable);
        assert_eq!(p("bytes=5-2", 10), Ranged::Unsatisfiable);
        assert_eq!(p("bytes=-0", 10), Ranged::Unsatisfiable);
        assert_eq!(p("bytes=0-", 0), Ranged::Unsatisfiable);
        assert_eq!(p("bytes=-1", 0), Ranged::Unsatisfiable);
        assert_eq!(p("bytes=-", 10), Ranged::Unsatisfiable);
        assert_eq!(p("bytes=a-b", 10), Ranged::Unsatisfiable);
        assert_eq!(p("bytes=+1-2", 10), Ranged::Unsatisfiable);
        assert_eq!(p("bytes=1", 10), Ranged::Unsatisfiable);
        assert_eq!(p("bytes", 10), Ranged::Unsatisfiable);
        assert_eq!(
            p("bytes=99999999999999999999999-", 10),
            Ranged::Unsatisfiable
        );
        assert_eq!(parse(Some(&[0xff, 0xfe]), 10), Ranged::Unsatisfiable);
    }

    #[test]
    fn ignored_ranges_send_everything() {
        assert_eq!(p("items=0-5", 10), Ranged::Whole);
        assert_eq!(p("bytes=0-1,4-5", 10), Ranged::Whole);
    }
}
