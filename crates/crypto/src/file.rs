//! File body v1: chunked encryption of file bodies (DESIGN.md §3.1, file
//! key; docs/protocol.md §8).
//!
//! File bodies are streamed over HTTP in both directions and read with
//! `Range` on chunk boundaries, so each chunk opens on its own:
//!
//! `0x01 ‖ prefix (8) ‖ chunk 0 ‖ chunk 1 ‖ … ‖ chunk n-1`
//!
//! where chunk `i` is `AES-256-GCM(file key, plaintext i, aad) ‖ tag (16)`
//! under the nonce `prefix ‖ i (u32 BE)`, with
//! `aad = "sealbase/v1/file" ‖ space (16) ‖ file (16) ‖ i (u32 BE) ‖ last (1)`.
//! Every chunk holds [`FILE_CHUNK_LEN`] plaintext bytes except the final
//! one, which holds 1 to [`FILE_CHUNK_LEN`] bytes, or none if the file is
//! empty (then it is the only chunk). So the layout is a function of the
//! plaintext length ([`sealed_file_len`], [`plain_file_len`]) and a reader
//! finds any chunk's bytes from the sealed length alone ([`sealed_span`]).
//!
//! A file key encrypts exactly one file (a changed body gets a new key), so
//! the chunk index alone keeps nonces unique; the random prefix is a second
//! line of defence. The index and `last` in the associated data make
//! reordered, dropped, duplicated or appended chunks fail to open, and a
//! body truncated at a chunk boundary fails because its new final chunk was
//! sealed with `last = 0`. Space and file id make a body moved to another
//! file or space fail.
//!
//! Invariant: [`FileOpener::open_chunk`] returns plaintext only if the tag
//! verified for this (space, file, index, last) under this key and prefix;
//! [`open_file`] returns a whole file only if every chunk did, in order,
//! and the final one was sealed as final.

use rand_core::CryptoRngCore;
use uuid::Uuid;
use zeroize::{Zeroize, Zeroizing};

use crate::gcm::{self, NONCE_LEN, TAG_LEN};
use crate::keys::FileKey;

/// Version byte of a file body.
pub const FILE_VERSION: u8 = 0x01;
/// Plaintext bytes per chunk (the final chunk may be shorter, and is empty
/// only in an empty file).
pub const FILE_CHUNK_LEN: usize = 256 * 1024;
/// Bytes before the first chunk: version and nonce prefix.
pub const FILE_HEADER_LEN: usize = 1 + 8;
/// A full chunk, sealed: plaintext and tag.
pub const SEALED_CHUNK_LEN: usize = FILE_CHUNK_LEN + 16;
/// Length of the random nonce prefix in the header.
pub const NONCE_PREFIX_LEN: usize = 8;
/// Domain-separation prefix of a chunk's associated data.
pub const FILE_AAD_PREFIX: &[u8] = b"sealbase/v1/file";
/// Most chunks a file may have: the index is a u32 in nonce and
/// associated data (about 1 PiB of plaintext).
pub const MAX_FILE_CHUNKS: u64 = u32::MAX as u64;

const HEADER: u64 = FILE_HEADER_LEN as u64;
const CHUNK: u64 = FILE_CHUNK_LEN as u64;
const SEALED_CHUNK: u64 = SEALED_CHUNK_LEN as u64;
const TAG: u64 = TAG_LEN as u64;

/// Why a file body could not be sealed or opened, or a length or range was
/// refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FileError {
    /// The first byte is not a version this code knows.
    #[error("unsupported file body version {0:#04x}")]
    Version(u8),
    /// The header is shorter than 9 bytes, the body shorter than the header
    /// and one tag, or a sealed chunk shorter than its tag.
    #[error("file body is truncated")]
    Truncated,
    /// The sealed length is not one any file has (a partial tag after the
    /// last full chunk, or an empty final chunk after full ones).
    #[error("sealed file length is not that of any file")]
    Length,
    /// A chunk has the wrong size for its place: a non-final chunk that is
    /// not exactly full, a chunk longer than full, or an empty final chunk
    /// that is not the only chunk.
    #[error("file chunk has the wrong size for its position")]
    ChunkSize,
    /// The GCM tag did not verify: another key, space, file id, index, or
    /// final flag (a reordered, dropped or appended chunk), another header,
    /// or tampered bytes. GCM cannot tell which.
    #[error("file chunk failed authentication (wrong key, space, file, position, or tampered)")]
    Authentication,
    /// The chunk index does not fit: a file has at most [`MAX_FILE_CHUNKS`]
    /// chunks.
    #[error("file has more chunks than a u32 index can number")]
    TooManyChunks,
    /// The final chunk is already sealed.
    #[error("file sealer already sealed its final chunk")]
    Finished,
    /// The requested plaintext range holds no byte of the file.
    #[error("range holds no byte of the file")]
    Range,
}

/// Where the chunks covering a plaintext range sit in the sealed body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SealedSpan {
    /// Index of the first chunk in `[start, end)`; it holds plaintext from
    /// `first_chunk * FILE_CHUNK_LEN`.
    pub first_chunk: u64,
    /// First sealed byte (a chunk boundary, after the header).
    pub start: u64,
    /// One past the last sealed byte (a chunk boundary or the end of the
    /// body); for HTTP, `Range: bytes=start-(end - 1)`.
    pub end: u64,
}

/// Chunk count and plaintext length of a sealed body of a given length.
struct Layout {
    chunks: u64,
    plain_len: u64,
}

fn layout(sealed_len: u64) -> Result<Layout, FileError> {
    if sealed_len < HEADER + TAG {
        return Err(FileError::Truncated);
    }
    let body = sealed_len - HEADER;
    let chunks = body.div_ceil(SEALED_CHUNK);
    if chunks > MAX_FILE_CHUNKS {
        return Err(FileError::TooManyChunks);
    }
    let full = body / SEALED_CHUNK;
    let plain_len = match body % SEALED_CHUNK {
        // The final chunk is full.
        0 => full * CHUNK,
        // A final chunk needs at least its tag, and may be empty only alone.
        1..TAG => return Err(FileError::Length),
        TAG if full > 0 => return Err(FileError::Length),
        rest => full * CHUNK + (rest - TAG),
    };
    Ok(Layout { chunks, plain_len })
}

/// The sealed length of a file of `plain_len` bytes: header, every chunk's
/// plaintext, and one tag per chunk (a zero-length file has one empty
/// chunk: 25 bytes). Saturates at `u64::MAX` for lengths no file can have.
pub fn sealed_file_len(plain_len: u64) -> u64 {
    let chunks = plain_len.div_ceil(CHUNK).max(1);
    HEADER
        .saturating_add(plain_len)
        .saturating_add(chunks.saturating_mul(TAG))
}

/// The plaintext length of a sealed body of `sealed_len` bytes: the inverse
/// of [`sealed_file_len`], refusing lengths it never produces.
pub fn plain_file_len(sealed_len: u64) -> Result<u64, FileError> {
    layout(sealed_len).map(|l| l.plain_len)
}

/// How many chunks a sealed body of `sealed_len` bytes has; chunk `i` is
/// the final one (`last`) if `i + 1` equals it.
pub fn file_chunk_count(sealed_len: u64) -> Result<u64, FileError> {
    layout(sealed_len).map(|l| l.chunks)
}

/// The sealed byte range `[start, end)` and first chunk index that cover
/// plaintext bytes `[plain_start, plain_end)` of a file whose sealed length
/// is `sealed_len`. `plain_end` is clamped to the file; a range that then
/// holds no byte (`plain_start` at or past the end, or an empty range) is
/// [`FileError::Range`], as HTTP answers 416 for it. The header is not in
/// the span: a reader gets it separately (or starts at 0).
pub fn sealed_span(
    sealed_len: u64,
    plain_start: u64,
    plain_end: u64,
) -> Result<SealedSpan, FileError> {
    let layout = layout(sealed_len)?;
    let plain_end = plain_end.min(layout.plain_len);
    if plain_start >= plain_end {
        return Err(FileError::Range);
    }
    // Both indices are below `layout.chunks` ≤ u32::MAX: no overflow.
    let first_chunk = plain_start / CHUNK;
    let last_chunk = (plain_end - 1) / CHUNK;
    Ok(SealedSpan {
        first_chunk,
        start: HEADER + first_chunk * SEALED_CHUNK,
        end: (HEADER + (last_chunk + 1) * SEALED_CHUNK).min(sealed_len),
    })
}

/// `"sealbase/v1/file" ‖ space (16) ‖ file (16) ‖ index (u32 BE) ‖ last (1)`.
pub fn file_chunk_aad(space: &Uuid, file: &Uuid, index: u32, last: bool) -> Vec<u8> {
    [
        FILE_AAD_PREFIX,
        space.as_bytes(),
        file.as_bytes(),
        &index.to_be_bytes(),
        &[u8::from(last)],
    ]
    .concat()
}

fn chunk_nonce(prefix: &[u8; NONCE_PREFIX_LEN], index: u32) -> [u8; NONCE_LEN] {
    let mut nonce = [0u8; NONCE_LEN];
    let (head, tail) = nonce.split_at_mut(NONCE_PREFIX_LEN);
    head.copy_from_slice(prefix);
    tail.copy_from_slice(&index.to_be_bytes());
    nonce
}

/// A chunk index that fits the format (below [`MAX_FILE_CHUNKS`]).
fn chunk_index(index: u64) -> Result<u32, FileError> {
    u32::try_from(index)
        .ok()
        .filter(|&i| i < u32::MAX)
        .ok_or(FileError::TooManyChunks)
}

fn len64(len: usize) -> u64 {
    u64::try_from(len).unwrap_or(u64::MAX)
}

/// Seals one file body chunk by chunk, in order. Streams: the caller sends
/// [`Self::header`] first, then each sealed chunk as it is made.
pub struct FileSealer {
    key: FileKey,
    space: Uuid,
    file: Uuid,
    prefix: [u8; NONCE_PREFIX_LEN],
    next: u64,
    finished: bool,
}

impl core::fmt::Debug for FileSealer {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("FileSealer")
            .field("file", &self.file)
            .field("next", &self.next)
            .field("finished", &self.finished)
            .finish_non_exhaustive()
    }
}

impl FileSealer {
    /// A sealer for `file` of `space` under its (fresh, single-use) file
    /// key, with a random nonce prefix.
    pub fn new(key: &FileKey, space: &Uuid, file: &Uuid, rng: &mut impl CryptoRngCore) -> Self {
        let mut prefix = [0u8; NONCE_PREFIX_LEN];
        rng.fill_bytes(&mut prefix);
        Self::new_with_prefix(key, space, file, prefix)
    }

    /// [`Self::new`] with a caller-chosen prefix: only for test vectors.
    pub fn new_with_prefix(
        key: &FileKey,
        space: &Uuid,
        file: &Uuid,
        prefix: [u8; NONCE_PREFIX_LEN],
    ) -> Self {
        Self {
            key: key.clone(),
            space: *space,
            file: *file,
            prefix,
            next: 0,
            finished: false,
        }
    }

    /// `0x01 ‖ prefix`: the first bytes of the body.
    pub fn header(&self) -> [u8; FILE_HEADER_LEN] {
        let mut header = [0u8; FILE_HEADER_LEN];
        let (version, prefix) = header.split_at_mut(1);
        version.fill(FILE_VERSION);
        prefix.copy_from_slice(&self.prefix);
        header
    }

    /// Seals the next chunk, `ciphertext ‖ tag`. A non-final chunk must
    /// hold exactly [`FILE_CHUNK_LEN`] bytes; the final one (`last`) at
    /// most that, and nothing only if it is the first (an empty file), so
    /// a streaming caller reads one chunk ahead to know which is final.
    /// After the final chunk every call is [`FileError::Finished`]; a
    /// refused call changes nothing.
    pub fn seal_chunk(&mut self, plain: &[u8], last: bool) -> Result<Vec<u8>, FileError> {
        let mut out = Vec::new();
        self.seal_chunk_into(plain, last, &mut out)?;
        Ok(out)
    }

    /// Appends the sealed chunk to `out`.
    fn seal_chunk_into(
        &mut self,
        plain: &[u8],
        last: bool,
        out: &mut Vec<u8>,
    ) -> Result<(), FileError> {
        if self.finished {
            return Err(FileError::Finished);
        }
        let index = chunk_index(self.next)?;
        let full = plain.len() == FILE_CHUNK_LEN;
        let fits = if last {
            plain.len() <= FILE_CHUNK_LEN && (index == 0 || !plain.is_empty())
        } else {
            full
        };
        if !fits {
            return Err(FileError::ChunkSize);
        }
        let start = out.len();
        out.reserve_exact(plain.len() + TAG_LEN);
        out.extend_from_slice(plain);
        let nonce = chunk_nonce(&self.prefix, index);
        let aad = file_chunk_aad(&self.space, &self.file, index, last);
        let sealed = match out.get_mut(start..) {
            Some(body) => gcm::encrypt(self.key.as_bytes(), &nonce, &aad, body).ok(),
            None => None,
        };
        let Some(tag) = sealed else {
            // Unreachable for a 256 KiB chunk; never leave plaintext behind.
            if let Some(body) = out.get_mut(start..) {
                body.zeroize();
            }
            out.truncate(start);
            return Err(FileError::ChunkSize);
        };
        out.extend_from_slice(&tag);
        self.next += 1;
        self.finished = last;
        Ok(())
    }
}

/// Opens the chunks of one file body, in any order (for `Range` reads).
pub struct FileOpener {
    key: FileKey,
    space: Uuid,
    file: Uuid,
    prefix: [u8; NONCE_PREFIX_LEN],
}

impl core::fmt::Debug for FileOpener {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("FileOpener")
            .field("file", &self.file)
            .finish_non_exhaustive()
    }
}

impl FileOpener {
    /// Reads the header from the first [`FILE_HEADER_LEN`] bytes of
    /// `header` (anything after it is ignored, so the start of a body can
    /// be passed as it is) and checks the version.
    pub fn new(key: &FileKey, space: &Uuid, file: &Uuid, header: &[u8]) -> Result<Self, FileError> {
        let (&version, rest) = header.split_first().ok_or(FileError::Truncated)?;
        if version != FILE_VERSION {
            return Err(FileError::Version(version));
        }
        let prefix = rest
            .first_chunk::<NONCE_PREFIX_LEN>()
            .ok_or(FileError::Truncated)?;
        Ok(Self {
            key: key.clone(),
            space: *space,
            file: *file,
            prefix: *prefix,
        })
    }

    /// Opens chunk `index` (`ciphertext ‖ tag`); `last` says whether it is
    /// the file's final chunk ([`file_chunk_count`] of the sealed length).
    /// Checks, in order: index, size for its position, GCM tag.
    pub fn open_chunk(
        &self,
        index: u64,
        sealed: &[u8],
        last: bool,
    ) -> Result<Zeroizing<Vec<u8>>, FileError> {
        let mut out = Zeroizing::new(Vec::new());
        self.open_chunk_into(index, sealed, last, &mut out)?;
        Ok(out)
    }

    /// Appends the opened chunk to `out`; on failure `out` is unchanged.
    fn open_chunk_into(
        &self,
        index: u64,
        sealed: &[u8],
        last: bool,
        out: &mut Vec<u8>,
    ) -> Result<(), FileError> {
        let index = chunk_index(index)?;
        if sealed.len() < TAG_LEN {
            return Err(FileError::Truncated);
        }
        let fits = if last {
            sealed.len() <= SEALED_CHUNK_LEN && (index == 0 || sealed.len() > TAG_LEN)
        } else {
            sealed.len() == SEALED_CHUNK_LEN
        };
        if !fits {
            return Err(FileError::ChunkSize);
        }
        let (ciphertext, tag) = sealed
            .split_last_chunk::<TAG_LEN>()
            .ok_or(FileError::Truncated)?;
        let start = out.len();
        out.extend_from_slice(ciphertext);
        let nonce = chunk_nonce(&self.prefix, index);
        let aad = file_chunk_aad(&self.space, &self.file, index, last);
        let opened = match out.get_mut(start..) {
            Some(body) => gcm::decrypt(self.key.as_bytes(), &nonce, &aad, body, tag).is_ok(),
            None => false,
        };
        if !opened {
            // Still ciphertext: nothing to wipe.
            out.truncate(start);
            return Err(FileError::Authentication);
        }
        Ok(())
    }
}

/// Seals a whole file held in memory (small files, tests): header and
/// every chunk, [`sealed_file_len`] bytes.
pub fn seal_file(
    key: &FileKey,
    space: &Uuid,
    file: &Uuid,
    plain: &[u8],
    rng: &mut impl CryptoRngCore,
) -> Result<Vec<u8>, FileError> {
    seal_all(FileSealer::new(key, space, file, rng), plain)
}

fn seal_all(mut sealer: FileSealer, plain: &[u8]) -> Result<Vec<u8>, FileError> {
    let total =
        usize::try_from(sealed_file_len(len64(plain.len()))).map_err(|_| FileError::Length)?;
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&sealer.header());
    if plain.is_empty() {
        sealer.seal_chunk_into(&[], true, &mut out)?;
    }
    let mut chunks = plain.chunks(FILE_CHUNK_LEN).peekable();
    while let Some(chunk) = chunks.next() {
        sealer.seal_chunk_into(chunk, chunks.peek().is_none(), &mut out)?;
    }
    Ok(out)
}

/// Opens a whole sealed file held in memory. Checks the header, that the
/// length is one a file has, then every chunk in order, the final one as
/// final.
pub fn open_file(
    key: &FileKey,
    space: &Uuid,
    file: &Uuid,
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>, FileError> {
    let opener = FileOpener::new(key, space, file, sealed)?;
    let layout = layout(len64(sealed.len()))?;
    let body = sealed.get(FILE_HEADER_LEN..).ok_or(FileError::Truncated)?;
    let capacity = usize::try_from(layout.plain_len).map_err(|_| FileError::Length)?;
    let mut out = Zeroizing::new(Vec::with_capacity(capacity));
    for (index, chunk) in (0u64..).zip(body.chunks(SEALED_CHUNK_LEN)) {
        opener.open_chunk_into(index, chunk, index + 1 == layout.chunks, &mut out)?;
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use rand_core::OsRng;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    const SPACE: Uuid = Uuid::from_bytes([1; 16]);
    const FILE: Uuid = Uuid::from_bytes([2; 16]);
    const OTHER: Uuid = Uuid::from_bytes([3; 16]);
    const S: u64 = SEALED_CHUNK_LEN as u64;
    const C: u64 = FILE_CHUNK_LEN as u64;

    fn key() -> FileKey {
        FileKey::from_bytes([7; 32])
    }

    fn pattern(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 7 + 3) as u8).collect()
    }

    fn seal(plain: &[u8]) -> Vec<u8> {
        seal_file(&key(), &SPACE, &FILE, plain, &mut OsRng).unwrap()
    }

    fn open(sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, FileError> {
        open_file(&key(), &SPACE, &FILE, sealed)
    }

    /// Header, then chunk `i` of `sealed` for each `i` of `order`.
    fn reassemble(sealed: &[u8], order: &[usize]) -> Vec<u8> {
        let mut out = sealed[..FILE_HEADER_LEN].to_vec();
        let chunks: Vec<&[u8]> = sealed[FILE_HEADER_LEN..].chunks(SEALED_CHUNK_LEN).collect();
        for &i in order {
            out.extend_from_slice(chunks[i]);
        }
        out
    }

    #[test]
    fn round_trips_at_every_layout_boundary() {
        for n in [
            0,
            1,
            5,
            FILE_CHUNK_LEN - 1,
            FILE_CHUNK_LEN,
            FILE_CHUNK_LEN + 1,
        ] {
            let plain = pattern(n);
            let sealed = seal(&plain);
            assert_eq!(len64(sealed.len()), sealed_file_len(len64(n)), "{n}");
            assert_eq!(plain_file_len(len64(sealed.len())), Ok(len64(n)), "{n}");
            assert_eq!(*open(&sealed).unwrap(), plain, "{n}");
        }
        assert_eq!(sealed_file_len(0), 25);
        assert_eq!(sealed_file_len(C), 9 + S);
        assert_eq!(sealed_file_len(2 * C + 5), 9 + 2 * S + 21);
        assert_eq!(sealed_file_len(u64::MAX), u64::MAX);
    }

    #[test]
    fn lengths_no_file_has_are_refused() {
        for len in [0, 9, 24] {
            assert_eq!(plain_file_len(len), Err(FileError::Truncated), "{len}");
        }
        assert_eq!(plain_file_len(25), Ok(0));
        assert_eq!(plain_file_len(26), Ok(1));
        assert_eq!(plain_file_len(9 + S), Ok(C));
        for rest in 1..16 {
            assert_eq!(plain_file_len(9 + S + rest), Err(FileError::Length));
        }
        // An empty final chunk after a full one.
        assert_eq!(plain_file_len(9 + S + 16), Err(FileError::Length));
        assert_eq!(plain_file_len(9 + S + 17), Ok(C + 1));
        assert_eq!(file_chunk_count(25), Ok(1));
        assert_eq!(file_chunk_count(9 + S), Ok(1));
        assert_eq!(file_chunk_count(9 + S + 17), Ok(2));
        let most = 9 + MAX_FILE_CHUNKS * S;
        assert_eq!(plain_file_len(most), Ok(MAX_FILE_CHUNKS * C));
        assert_eq!(plain_file_len(most + 17), Err(FileError::TooManyChunks));
        assert_eq!(plain_file_len(u64::MAX), Err(FileError::TooManyChunks));
    }

    #[test]
    fn sealed_span_covers_the_range_on_chunk_boundaries() {
        let three = sealed_file_len(2 * C + 5);
        let span = |a, b| sealed_span(three, a, b);
        let whole = SealedSpan {
            first_chunk: 0,
            start: 9,
            end: three,
        };
        assert_eq!(span(0, u64::MAX), Ok(whole));
        assert_eq!(span(0, 2 * C + 5), Ok(whole));
        assert_eq!(
            span(0, 1),
            Ok(SealedSpan {
                first_chunk: 0,
                start: 9,
                end: 9 + S
            })
        );
        assert_eq!(span(0, C), span(0, 1));
        assert_eq!(
            span(C - 1, C + 1),
            Ok(SealedSpan {
                first_chunk: 0,
                start: 9,
                end: 9 + 2 * S
            })
        );
        assert_eq!(
            span(C, C + 1),
            Ok(SealedSpan {
                first_chunk: 1,
                start: 9 + S,
                end: 9 + 2 * S
            })
        );
        let tail = SealedSpan {
            first_chunk: 2,
            start: 9 + 2 * S,
            end: three,
        };
        assert_eq!(span(2 * C, 2 * C + 1), Ok(tail));
        assert_eq!(span(2 * C + 4, 2 * C + 5), Ok(tail));
        assert_eq!(span(2 * C + 4, u64::MAX), Ok(tail));
        assert_eq!(span(2 * C + 5, u64::MAX), Err(FileError::Range));
        assert_eq!(span(7, 7), Err(FileError::Range));
        assert_eq!(span(8, 7), Err(FileError::Range));

        // Exactly one full chunk: its end is the body's end.
        let one = sealed_file_len(C);
        let only = SealedSpan {
            first_chunk: 0,
            start: 9,
            end: 9 + S,
        };
        assert_eq!(sealed_span(one, 0, C), Ok(only));
        assert_eq!(sealed_span(one, C - 1, C + 100), Ok(only));
        assert_eq!(sealed_span(one, C, C + 1), Err(FileError::Range));

        // An empty file has no byte to read.
        assert_eq!(sealed_span(25, 0, 0), Err(FileError::Range));
        assert_eq!(sealed_span(25, 0, 10), Err(FileError::Range));
        assert_eq!(
            sealed_span(26, 0, 10),
            Ok(SealedSpan {
                first_chunk: 0,
                start: 9,
                end: 26
            })
        );
        assert_eq!(sealed_span(24, 0, 10), Err(FileError::Truncated));
        assert_eq!(sealed_span(9 + S + 3, 0, 10), Err(FileError::Length));
    }

    #[test]
    fn a_span_opens_on_its_own() {
        let plain = pattern(2 * FILE_CHUNK_LEN + 5);
        let sealed = seal(&plain);
        let len = len64(sealed.len());
        let count = file_chunk_count(len).unwrap();
        let opener = FileOpener::new(&key(), &SPACE, &FILE, &sealed[..FILE_HEADER_LEN]).unwrap();
        let (a, b) = (C - 10, 2 * C + 2);
        let span = sealed_span(len, a, b).unwrap();
        let bytes = &sealed[span.start as usize..span.end as usize];
        let mut read = Vec::new();
        for (i, chunk) in (span.first_chunk..).zip(bytes.chunks(SEALED_CHUNK_LEN)) {
            read.extend_from_slice(&opener.open_chunk(i, chunk, i + 1 == count).unwrap());
        }
        let offset = (a - span.first_chunk * C) as usize;
        assert_eq!(
            &read[offset..offset + (b - a) as usize],
            &plain[a as usize..b as usize]
        );
    }

    #[test]
    fn refuses_another_key_space_file_or_header() {
        let sealed = seal(b"hello, file");
        assert!(open(&sealed).is_ok());
        let auth = Err(FileError::Authentication);
        assert_eq!(
            open_file(&FileKey::from_bytes([8; 32]), &SPACE, &FILE, &sealed),
            auth
        );
        assert_eq!(open_file(&key(), &OTHER, &FILE, &sealed), auth);
        assert_eq!(open_file(&key(), &SPACE, &OTHER, &sealed), auth);
        assert_eq!(open_file(&key(), &FILE, &SPACE, &sealed), auth);
        for i in 1..sealed.len() {
            let mut flipped = sealed.clone();
            flipped[i] ^= 0x20;
            assert_eq!(open(&flipped), auth, "byte {i}");
        }
        let mut v2 = sealed.clone();
        v2[0] = 2;
        assert_eq!(open(&v2), Err(FileError::Version(2)));
        assert_eq!(open(&[]), Err(FileError::Truncated));
        assert_eq!(open(&sealed[..5]), Err(FileError::Truncated));
        assert_eq!(open(&sealed[..9]), Err(FileError::Truncated));
        assert_eq!(open(&sealed[..24]), Err(FileError::Truncated));
        // Cut inside the chunk: a shorter but well-formed length.
        assert_eq!(open(&sealed[..sealed.len() - 1]), auth);
        assert_eq!(
            FileOpener::new(&key(), &SPACE, &FILE, &sealed[..8]).unwrap_err(),
            FileError::Truncated
        );
    }

    #[test]
    fn refuses_reordered_dropped_and_extra_chunks() {
        let sealed = seal(&pattern(2 * FILE_CHUNK_LEN + 5));
        assert_eq!(reassemble(&sealed, &[0, 1, 2]), sealed);
        let auth = Err(FileError::Authentication);
        assert_eq!(open(&reassemble(&sealed, &[1, 0, 2])), auth);
        assert_eq!(open(&reassemble(&sealed, &[0, 2])), auth);
        // Final chunk dropped: the new final chunk was not sealed as final.
        assert_eq!(open(&reassemble(&sealed, &[0, 1])), auth);
        assert_eq!(open(&reassemble(&sealed, &[0])), auth);
        // A chunk repeated or appended.
        assert_eq!(open(&reassemble(&sealed, &[0, 0, 1, 2])), auth);
        assert_eq!(open(&reassemble(&sealed, &[0, 1, 1, 2])), auth);
        assert_eq!(open(&reassemble(&sealed, &[0, 1, 2, 2])), auth);
        let mut extended = sealed.clone();
        extended.extend_from_slice(&[0; 16]);
        assert_eq!(open(&extended), auth);

        // One full chunk, then an empty final chunk: not a length any file has.
        let one = seal(&pattern(FILE_CHUNK_LEN));
        let mut empty_tail = one.clone();
        empty_tail.extend_from_slice(&seal(b"")[9..]);
        assert_eq!(open(&empty_tail), Err(FileError::Length));
        // The chunks of another upload of the same file under the same key.
        let again = seal(&pattern(2 * FILE_CHUNK_LEN + 5));
        let mut mixed = sealed[..9 + SEALED_CHUNK_LEN].to_vec();
        mixed.extend_from_slice(&again[9 + SEALED_CHUNK_LEN..]);
        assert_eq!(open(&mixed), auth);
    }

    #[test]
    fn open_chunk_checks_index_size_and_position() {
        let sealed = seal(&pattern(FILE_CHUNK_LEN + 5));
        let opener = FileOpener::new(&key(), &SPACE, &FILE, &sealed).unwrap();
        let (c0, c1) = sealed[9..].split_at(SEALED_CHUNK_LEN);
        assert_eq!(
            *opener.open_chunk(0, c0, false).unwrap(),
            pattern(FILE_CHUNK_LEN)
        );
        assert_eq!(opener.open_chunk(1, c1, true).unwrap().len(), 5);
        let auth = Err(FileError::Authentication);
        assert_eq!(opener.open_chunk(0, c0, true), auth);
        assert_eq!(opener.open_chunk(1, c0, false), auth);
        assert_eq!(opener.open_chunk(0, c1, true), auth);
        assert_eq!(opener.open_chunk(1, c1, false), Err(FileError::ChunkSize));
        assert_eq!(
            opener.open_chunk(1, &c1[..15], true),
            Err(FileError::Truncated)
        );
        assert_eq!(
            opener.open_chunk(1, &c1[..16], true),
            Err(FileError::ChunkSize)
        );
        let mut long = c0.to_vec();
        long.push(0);
        assert_eq!(opener.open_chunk(0, &long, true), Err(FileError::ChunkSize));
        assert_eq!(
            opener.open_chunk(u64::from(u32::MAX), c1, true),
            Err(FileError::TooManyChunks)
        );
        assert_eq!(
            opener.open_chunk(u64::MAX, c1, true),
            Err(FileError::TooManyChunks)
        );
    }

    #[test]
    fn sealer_enforces_chunk_sizes_order_and_finish() {
        let mut sealer = FileSealer::new(&key(), &SPACE, &FILE, &mut OsRng);
        assert_eq!(
            sealer.seal_chunk(b"short", false),
            Err(FileError::ChunkSize)
        );
        assert_eq!(
            sealer.seal_chunk(&pattern(FILE_CHUNK_LEN + 1), true),
            Err(FileError::ChunkSize)
        );
        // Refused calls changed nothing: the next chunk is still chunk 0.
        let c0 = sealer.seal_chunk(&pattern(FILE_CHUNK_LEN), false).unwrap();
        assert_eq!(c0.len(), SEALED_CHUNK_LEN);
        assert_eq!(sealer.seal_chunk(b"", true), Err(FileError::ChunkSize));
        let c1 = sealer.seal_chunk(b"end", true).unwrap();
        assert_eq!(sealer.seal_chunk(b"more", true), Err(FileError::Finished));
        let mut body = sealer.header().to_vec();
        body.extend_from_slice(&c0);
        body.extend_from_slice(&c1);
        let mut plain = pattern(FILE_CHUNK_LEN);
        plain.extend_from_slice(b"end");
        assert_eq!(*open(&body).unwrap(), plain);

        let mut empty = FileSealer::new_with_prefix(&key(), &SPACE, &FILE, [4; 8]);
        assert_eq!(empty.header(), [1, 4, 4, 4, 4, 4, 4, 4, 4]);
        let c = empty.seal_chunk(b"", true).unwrap();
        assert_eq!(c.len(), 16);
        assert_eq!(
            open(&[empty.header().as_slice(), &c].concat())
                .unwrap()
                .len(),
            0
        );

        let mut full = FileSealer::new(&key(), &SPACE, &FILE, &mut OsRng);
        full.next = u64::from(u32::MAX);
        assert_eq!(full.seal_chunk(b"x", true), Err(FileError::TooManyChunks));
        full.next = u64::from(u32::MAX) - 1;
        assert!(full.seal_chunk(b"x", true).is_ok());
    }

    #[test]
    fn nonces_are_prefix_and_index() {
        assert_eq!(
            chunk_nonce(&[0xaa; 8], 0x0102_0304),
            [0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 1, 2, 3, 4]
        );
        let aad = file_chunk_aad(&SPACE, &FILE, 2, true);
        assert_eq!(aad.len(), 16 + 32 + 5);
        assert!(aad.starts_with(b"sealbase/v1/file"));
        assert_eq!(&aad[48..], &[0, 0, 0, 2, 1]);
    }
}
