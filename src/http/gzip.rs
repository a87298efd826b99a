//! gzip for the pages the server sends: which content coding a client's
//! `Accept-Encoding` asks for, and a page's parts compressed once each and
//! joined into one gzip stream per response.
//!
//! Each part is compressed on its own into raw DEFLATE blocks ended by a
//! full flush (byte-aligned, no final block, no shared dictionary), so
//! parts compressed apart, and kept as long as the part is kept, follow one
//! another in one valid DEFLATE stream. A response is then the 10-byte
//! header, the parts, an empty final block and the trailer: the parts'
//! CRC-32s combined and the total length. No part is compressed per scrape.
//!
//! Sees only rendered pages, never a request's credentials.

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};
use hyper::body::Bytes;

/// The content codings lapse can send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    Identity,
    Gzip,
}

/// Every part is compressed at zlib's fastest level. At 100,000 files
/// the first scrape after a change compresses some 80 MiB of text: 1.0-1.3 s
/// at level 6, 0.54-0.60 s at level 1, for a gzip page of 6.2 MB rather than
/// 5.4 (BENCHMARKS.md, issue 15's sixth step). A rotation is seen sooner.
fn compression() -> Compression {
    Compression::fast()
}

/// The gzip header: DEFLATE, no name, no modification time (so the same
/// page is the same bytes), "unknown" operating system.
const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

/// A final DEFLATE block with nothing in it (fixed Huffman, end of block).
const FINAL_BLOCK: [u8; 2] = [0x03, 0x00];

/// What `Accept-Encoding` (RFC 9110 §12.5.3) asks for: gzip when it is at
/// least as welcome as identity, identity when that is not refused, and
/// `None` when both are refused (`identity;q=0` or `*;q=0`, gzip not
/// named). No header, or an empty one, is identity.
pub fn negotiate(accept_encoding: Option<&str>) -> Option<Coding> {
    let Some(header) = accept_encoding else {
        return Some(Coding::Identity);
    };
    let (mut gzip, mut identity, mut star) = (None, None, None);
    for element in header.split(',') {
        let mut parts = element.split(';');
        let coding = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
        let mut q = Some(1.0_f32);
        for param in parts {
            if let Some((name, value)) = param.split_once('=')
                && name.trim().eq_ignore_ascii_case("q")
            {
                q = value
                    .trim()
                    .parse::<f32>()
                    .ok()
                    .filter(|q| (0.0..=1.0).contains(q));
            }
        }
        // A malformed q-value drops its element, as if it were not sent.
        let Some(q) = q else { continue };
        match coding.as_str() {
            "gzip" | "x-gzip" => gzip = Some(q),
            "identity" => identity = Some(q),
            "*" => star = Some(q),
            _ => {}
        }
    }
    let gzip = gzip.or(star).unwrap_or(0.0);
    let identity = identity.or(star).unwrap_or(1.0);
    if gzip > 0.0 && gzip >= identity {
        Some(Coding::Gzip)
    } else if identity > 0.0 {
        Some(Coding::Identity)
    } else {
        None
    }
}

/// One part of a page, compressed: DEFLATE blocks that any other part's
/// may follow, with what the trailer needs of the text they hold.
#[derive(Clone)]
pub struct Deflated {
    pub bytes: Bytes,
    crc: crc32fast::Hasher,
    len: u64,
}

/// A part being compressed as its text is written, so the text need not
/// be kept whole.
pub struct Deflater {
    compress: Compress,
    out: Vec<u8>,
    crc: crc32fast::Hasher,
    len: u64,
}

impl Default for Deflater {
    fn default() -> Self {
        Self::new()
    }
}

impl Deflater {
    pub fn new() -> Self {
        Deflater {
            compress: Compress::new(compression(), false),
            out: Vec::new(),
            crc: crc32fast::Hasher::new(),
            len: 0,
        }
    }

    /// Compresses the next piece of the part's text. `None` only if the
    /// compressor fails, which it does not on memory it was given.
    pub fn write(&mut self, piece: &[u8]) -> Option<()> {
        self.crc.update(piece);
        self.len += piece.len() as u64;
        let mut input = piece;
        while !input.is_empty() {
            self.out.reserve(input.len() / 4 + 64);
            let before = self.compress.total_in();
            self.compress
                .compress_vec(input, &mut self.out, FlushCompress::None)
                .ok()?;
            input = &input[(self.compress.total_in() - before) as usize..];
        }
        Some(())
    }

    /// The part's blocks, ended by a full flush.
    pub fn finish(mut self) -> Option<Deflated> {
        // Flushed until the output no longer fills the space it was given.
        loop {
            self.out.reserve(64);
            self.compress
                .compress_vec(&[], &mut self.out, FlushCompress::Full)
                .ok()?;
            if self.out.len() < self.out.capacity() {
                break;
            }
        }
        self.out.shrink_to_fit();
        Some(Deflated {
            bytes: Bytes::from(self.out),
            crc: self.crc,
            len: self.len,
        })
    }
}

/// Compresses `text` (a part's pieces, in order) into blocks ended by a
/// full flush. `None` only if the compressor fails, which it does not on
/// memory it was given.
pub fn deflate(text: &[Bytes]) -> Option<Deflated> {
    let mut deflater = Deflater::new();
    for piece in text {
        deflater.write(piece)?;
    }
    deflater.finish()
}

impl Deflated {
    /// How many bytes of text the part holds.
    pub fn text_len(&self) -> u64 {
        self.len
    }

    /// The part's text again, in pieces of at most `piece` bytes, each
    /// inflated only when the previous one has been taken: a client that
    /// reads slowly holds one piece, not the part. Ends early only if the
    /// blocks are not DEFLATE, which those [`Deflater`] made are.
    pub fn inflate(&self, piece: usize) -> impl Iterator<Item = Bytes> + Send + Sync + 'static {
        let input = self.bytes.clone();
        let mut at = 0;
        let mut left = self.len;
        let mut decompress = Decompress::new(false);
        std::iter::from_fn(move || {
            if left == 0 {
                return None;
            }
            let want = piece.min(usize::try_from(left).unwrap_or(piece));
            let mut out = Vec::with_capacity(want);
            while out.len() < want {
                let before = (decompress.total_in(), out.len());
                decompress
                    .decompress_vec(&input[at..], &mut out, FlushDecompress::None)
                    .ok()?;
                at += (decompress.total_in() - before.0) as usize;
                if (decompress.total_in(), out.len()) == before {
                    // Neither input taken nor output made: the part ended
                    // before the length it was made with.
                    return None;
                }
            }
            left -= out.len() as u64;
            Some(Bytes::from(out))
        })
    }
}

/// The bytes a gzip response starts with.
pub fn header() -> Bytes {
    Bytes::from_static(&HEADER)
}

/// The bytes a gzip response of `parts`, in order, ends with.
pub fn trailer<'a>(parts: impl IntoIterator<Item = &'a Deflated>) -> Bytes {
    let mut crc = crc32fast::Hasher::new();
    let mut len: u64 = 0;
    for part in parts {
        crc.combine(&part.crc);
        len = len.wrapping_add(part.len);
    }
    let mut out = Vec::with_capacity(10);
    out.extend_from_slice(&FINAL_BLOCK);
    out.extend_from_slice(&crc.finalize().to_le_bytes());
    // ISIZE is the length modulo 2^32.
    out.extend_from_slice(&(len as u32).to_le_bytes());
    Bytes::from(out)
}

/// `text` as one whole gzip stream.
pub fn gzip_whole(text: &[Bytes]) -> Option<Bytes> {
    let part = deflate(text)?;
    let trailer = trailer([&part]);
    Some([&HEADER[..], &part.bytes, &trailer].concat().into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn gunzip(bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        // One member only: what follows it would be left unread.
        let mut d = flate2::read::GzDecoder::new(bytes);
        d.read_to_end(&mut out).expect("valid gzip");
        let mut rest = Vec::new();
        d.into_inner()
            .read_to_end(&mut rest)
            .expect("read the rest");
        assert!(rest.is_empty(), "{} bytes after the member", rest.len());
        out
    }

    #[test]
    fn parts_compressed_apart_make_one_gzip_member() {
        let a: Vec<Bytes> = vec![
            Bytes::from("# HELP a x\n"),
            Bytes::from("a 1\n".repeat(5000)),
        ];
        let b: Vec<Bytes> = vec![Bytes::from("b{x=\"y\"} 2\n".repeat(300))];
        let empty: Vec<Bytes> = vec![];
        let parts: Vec<Deflated> = [&a, &empty, &b]
            .iter()
            .map(|p| deflate(p).unwrap())
            .collect();
        let mut stream = header().to_vec();
        for p in &parts {
            stream.extend_from_slice(&p.bytes);
        }
        stream.extend_from_slice(&trailer(&parts));
        let plain: Vec<u8> = a.iter().chain(&b).flat_map(|b| b.to_vec()).collect();
        assert_eq!(gunzip(&stream), plain);
        assert!(stream.len() < plain.len() / 20, "{} bytes", stream.len());
        assert_eq!(
            gunzip(&gzip_whole(&[Bytes::from("hello\n")]).unwrap()),
            b"hello\n"
        );
        assert_eq!(gunzip(&gzip_whole(&[]).unwrap()), b"");
    }

    #[test]
    fn a_part_is_inflated_back_piece_by_piece() {
        let text: Vec<u8> = (0..300_000u32)
            .flat_map(|i| format!("s{{i=\"{i}\"}} {}\n", i % 7).into_bytes())
            .collect();
        let mut deflater = Deflater::new();
        for chunk in text.chunks(70_000) {
            deflater.write(chunk).unwrap();
        }
        let part = deflater.finish().unwrap();
        assert_eq!(part.text_len(), text.len() as u64);
        let pieces: Vec<Bytes> = part.inflate(1 << 20).collect();
        let sizes: Vec<usize> = pieces.iter().map(Bytes::len).collect();
        let whole = text.len() / (1 << 20);
        assert_eq!(sizes.len(), whole + 1);
        assert!(sizes[..whole].iter().all(|n| *n == 1 << 20));
        assert_eq!(sizes[whole], text.len() % (1 << 20));
        assert_eq!(pieces.concat(), text);
        assert_eq!(deflate(&[]).unwrap().inflate(10).count(), 0);
    }

    #[test]
    fn accept_encoding_is_negotiated_by_q_value() {
        use Coding::*;
        let cases: [(Option<&str>, Option<Coding>); 17] = [
            (None, Some(Identity)),
            (Some(""), Some(Identity)),
            (Some("gzip"), Some(Gzip)),
            // What Prometheus sends.
            (Some("gzip"), Some(Gzip)),
            (Some("GZIP"), Some(Gzip)),
            (Some("x-gzip"), Some(Gzip)),
            (Some("deflate, gzip;q=1.0, *;q=0.5"), Some(Gzip)),
            (Some("br, deflate"), Some(Identity)),
            (Some("gzip;q=0"), Some(Identity)),
            (Some("gzip;q=0.5, identity"), Some(Identity)),
            (Some("gzip;q=0.5, identity;q=0.5"), Some(Gzip)),
            (Some("identity;q=0"), None),
            (Some("identity;q=0, gzip"), Some(Gzip)),
            (Some("*"), Some(Gzip)),
            (Some("*;q=0"), None),
            (Some("*;q=0, identity"), Some(Identity)),
            (Some("gzip;q=lots"), Some(Identity)),
        ];
        for (header, want) in cases {
            assert_eq!(negotiate(header), want, "{header:?}");
        }
    }
}
