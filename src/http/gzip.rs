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

use flate2::{Compress, Compression, FlushCompress};
use hyper::body::Bytes;

/// The content codings lapse can send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    Identity,
    Gzip,
}

/// zlib's default: `/metrics` at 10,000 certificates to a twelfth of its
/// 13.4 MB, at about 90 MB/s on one core (level 1: a tenth, 1.3 MB).
const LEVEL: u32 = 6;

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

/// Compresses `text` (a part's pieces, in order) into blocks ended by a
/// full flush. `None` only if the compressor fails, which it does not on
/// memory it was given.
pub fn deflate(text: &[Bytes]) -> Option<Deflated> {
    let len: usize = text.iter().map(Bytes::len).sum();
    let mut compress = Compress::new(Compression::new(LEVEL), false);
    let mut out = Vec::with_capacity(len / 8 + 64);
    let mut crc = crc32fast::Hasher::new();
    for piece in text {
        crc.update(piece);
        let mut input = &piece[..];
        while !input.is_empty() {
            out.reserve(input.len() / 4 + 64);
            let before = compress.total_in();
            compress
                .compress_vec(input, &mut out, FlushCompress::None)
                .ok()?;
            input = &input[(compress.total_in() - before) as usize..];
        }
    }
    // Flushed until the output no longer fills the space it was given.
    loop {
        out.reserve(64);
        compress
            .compress_vec(&[], &mut out, FlushCompress::Full)
            .ok()?;
        if out.len() < out.capacity() {
            break;
        }
    }
    Some(Deflated {
        bytes: Bytes::from(out),
        crc,
        len: len as u64,
    })
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
