//! PKCS#7 / CMS certificate bundles (`.p7b`, `.p7c`, `-----BEGIN
//! PKCS7-----`, `-----BEGIN CMS-----`, a Windows CA's certreq response):
//! the certificates of a signed-data structure, in the order it lists them.
//!
//! Our own reader over BER, not a crate's: OpenSSL's streaming output
//! (`openssl cms -sign -stream`) uses indefinite lengths, and all a bundle
//! needs is the outline down to its `certificates` field. Signatures are
//! never checked and signed content is never looked at. Errors name the
//! structure's problem, never its bytes.

use super::cert::certificate_from_der;
use super::der;
use super::record::{Context, MAX_CREDENTIALS, Parsed};
use crate::credential::{ErrorReason, Source};

/// `1.2.840.113549.1.7`, the PKCS#7 content types, as OID content bytes.
const PKCS7_ARC: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07];
/// `1.2.840.113549.1.7.2`: signed data, the one that carries certificates.
const SIGNED_DATA: u8 = 2;
/// Indefinite lengths nest no deeper than this.
const MAX_NESTING: usize = 32;

/// True when `b` starts like a PKCS#7 ContentInfo: a SEQUENCE (of any
/// length form) whose first element is a PKCS#7 content-type OID.
pub(crate) fn is_pkcs7(b: &[u8]) -> bool {
    let Some(inner) = content_start(b) else {
        return false;
    };
    inner.len() > 2 + PKCS7_ARC.len()
        && inner[0] == 0x06
        && usize::from(inner[1]) == PKCS7_ARC.len() + 1
        && inner[2..].starts_with(PKCS7_ARC)
}

/// The bytes after the outer SEQUENCE's header, whatever its length form.
fn content_start(b: &[u8]) -> Option<&[u8]> {
    if b.first() != Some(&0x30) {
        return None;
    }
    if b.get(1) == Some(&0x80) {
        return b.get(2..);
    }
    let (_, header, _) = der::header(b)?;
    b.get(header..)
}

/// One BER element.
#[derive(Debug, PartialEq)]
struct Element<'a> {
    tag: u8,
    content: &'a [u8],
    /// Header, content and any end-of-contents octets.
    whole: &'a [u8],
}

type Problem = &'static str;

/// One BER tag-length-value and what follows it. Indefinite lengths are
/// followed to their end-of-contents.
fn tlv(b: &[u8], nesting: usize) -> Result<(Element<'_>, &[u8]), Problem> {
    let tag = *b.first().ok_or("is truncated")?;
    if tag & 0x1f == 0x1f {
        return Err("uses a multi-byte tag");
    }
    if b.get(1) == Some(&0x80) {
        if tag & 0x20 == 0 {
            return Err("gives a primitive value an indefinite length");
        }
        if nesting >= MAX_NESTING {
            return Err("is nested too deeply");
        }
        let start = &b[2..];
        let mut rest = start;
        loop {
            if rest.starts_with(&[0, 0]) {
                let content = &start[..start.len() - rest.len()];
                let whole = &b[..b.len() - rest.len() + 2];
                return Ok((
                    Element {
                        tag,
                        content,
                        whole,
                    },
                    &rest[2..],
                ));
            }
            rest = tlv(rest, nesting + 1)?.1;
        }
    }
    let (_, header, len) = der::header(b).ok_or("is truncated")?;
    let end = header.checked_add(len).ok_or("is truncated")?;
    if end > b.len() {
        return Err("is truncated");
    }
    let element = Element {
        tag,
        content: &b[header..end],
        whole: &b[..end],
    };
    Ok((element, &b[end..]))
}

/// The elements of a constructed value's content.
fn elements(mut b: &[u8]) -> Result<Vec<Element<'_>>, Problem> {
    let mut out = Vec::new();
    while !b.is_empty() {
        let (element, rest) = tlv(b, 0)?;
        out.push(element);
        b = rest;
    }
    Ok(out)
}

/// The DER of every certificate a PKCS#7 structure carries, in order.
/// Content types other than signed data, and signed data without a
/// `certificates` field, carry none.
fn certificate_ders(b: &[u8]) -> Result<Vec<&[u8]>, Problem> {
    let outer = tlv(b, 0)?.0;
    if outer.tag != 0x30 {
        return Err("is not a ContentInfo SEQUENCE");
    }
    let info = elements(outer.content)?;
    let oid = match info.first() {
        Some(e) if e.tag == 0x06 => e.content,
        _ => return Err("has no content type"),
    };
    if oid.get(..PKCS7_ARC.len()) != Some(PKCS7_ARC)
        || oid.get(PKCS7_ARC.len()) != Some(&SIGNED_DATA)
    {
        return Ok(Vec::new());
    }
    // A degenerate ContentInfo without its [0] content holds nothing.
    let Some(explicit) = info.get(1) else {
        return Ok(Vec::new());
    };
    if explicit.tag != 0xa0 {
        return Err("does not hold its signed data in a [0] field");
    }
    let signed = tlv(explicit.content, 0)?.0;
    if signed.tag != 0x30 {
        return Err("holds signed data that is not a SEQUENCE");
    }
    let fields = elements(signed.content)?;
    let tags: Vec<u8> = fields.iter().map(|e| e.tag).collect();
    if !tags.starts_with(&[0x02, 0x31, 0x30]) {
        return Err("lacks the version, digest algorithms or content of signed data");
    }
    let Some(certificates) = fields.get(3).filter(|e| e.tag == 0xa0) else {
        return Ok(Vec::new()); // no certificates: CRLs only, or nothing
    };
    Ok(elements(certificates.content)?
        .into_iter()
        // Attribute certificates and other choices are tagged [1]..[3].
        .filter(|e| e.tag == 0x30)
        .map(|e| e.whole)
        .collect())
}

/// Adds the certificates of one PKCS#7 structure, numbered on from
/// `index` (so that a PEM file's blocks number on across them).
pub(crate) fn add_certificates(
    ctx: &Context,
    source: Source,
    field: &str,
    bytes: &[u8],
    index: &mut u32,
    out: &mut Parsed,
) {
    let ders = match certificate_ders(bytes) {
        Ok(ders) => ders,
        Err(problem) => {
            out.error(
                ctx,
                field,
                ErrorReason::Parse,
                format!("PKCS#7: not a valid certificate bundle (the structure {problem})"),
            );
            return;
        }
    };
    if ders.is_empty() {
        tracing::debug!(path = ctx.path, "PKCS#7 without certificates");
    }
    for der in ders {
        // Past the cap, one more add reports it; decoding stops there.
        let capped = out.credentials.len() >= MAX_CREDENTIALS;
        match certificate_from_der(der) {
            Ok(c) => out.add(ctx, source, field, Some(*index), c),
            Err(e) => out.error(
                ctx,
                field,
                ErrorReason::Parse,
                format!("PKCS#7 certificate #{index}: {e}"),
            ),
        }
        *index += 1;
        if capped {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{certificate_ders, is_pkcs7, tlv};

    #[test]
    fn indefinite_lengths_are_followed_to_their_end() {
        // [0] { SEQUENCE(indefinite) { INTEGER 5 } } then a trailing byte.
        let b = [0xa0, 0x80, 0x30, 0x80, 0x02, 0x01, 0x05, 0, 0, 0, 0, 0xff];
        let (element, rest) = tlv(&b, 0).unwrap();
        assert_eq!(element.tag, 0xa0);
        assert_eq!(element.content, &b[2..9]);
        assert_eq!(element.whole, &b[..11]);
        assert_eq!(rest, &[0xff]);
        assert_eq!(tlv(&[0x30, 0x80, 0x02, 0x01], 0), Err("is truncated"));
        assert!(tlv(&[0x04, 0x80, 0, 0], 0).is_err());
        let deep: Vec<u8> = std::iter::repeat_n([0x30u8, 0x80], 40).flatten().collect();
        assert!(tlv(&deep, 0).is_err());
    }

    #[test]
    fn content_types_other_than_signed_data_hold_nothing() {
        // ContentInfo { pkcs7-data }
        let data = [
            0x30, 0x0b, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01,
        ];
        assert!(is_pkcs7(&data));
        assert_eq!(certificate_ders(&data), Ok(vec![]));
        assert!(!is_pkcs7(b"0\x0b\x06\x09not pkcs7"));
    }
}
