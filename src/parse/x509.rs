//! Certificate material in PEM (bundles, text around the armour, CRLF and
//! CR-only line ends) and DER: finds the blocks, tells DER shapes apart
//! and hands PKCS#12 stores to [`pkcs12`], PKCS#7 bundles to [`pkcs7`] and
//! certificates to [`super::cert`]. Keys of every type, in PEM or DER, are
//! recognised and add nothing.
//!
//! The PEM scanner is our own, not a crate's, so that one broken block in a
//! bundle becomes one error entry while the blocks around it still count,
//! and so that key blocks are skipped without ever being decoded.

pub(crate) use super::cert::certificate_from_der;
use super::record::{Context, Parsed};
use super::{der, pkcs7, pkcs12};
use crate::credential::{ErrorReason, Source};
use base64::Engine;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use x509_parser::prelude::{CertificateRevocationList, FromDer, X509CertificationRequest};
use x509_parser::x509::SubjectPublicKeyInfo;

/// Standard base64 that tolerates missing padding.
pub(crate) const B64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// One armoured block. `der` is `None` for blocks that are not
/// certificates or PKCS#7 bundles (keys, requests): those are never decoded.
#[derive(Debug)]
pub struct PemBlock {
    pub label: String,
    pub der: Option<Result<Vec<u8>, String>>,
}

fn is_certificate_label(label: &str) -> bool {
    matches!(
        label,
        "CERTIFICATE" | "X509 CERTIFICATE" | "TRUSTED CERTIFICATE"
    ) || is_pkcs7_label(label)
}

/// RFC 7468's `PKCS7` and `CMS`, and OpenSSL's older spelling.
fn is_pkcs7_label(label: &str) -> bool {
    matches!(label, "PKCS7" | "CMS" | "PKCS #7 SIGNED DATA")
}

/// Finds every `-----BEGIN x-----` … `-----END x-----` block, tolerating
/// text before and between blocks, CRLF and CR-only line ends, indentation
/// and RFC 1421 headers. A block without its END line is returned with an error.
pub fn parse_pem_blocks(bytes: &[u8]) -> Vec<PemBlock> {
    pem_blocks(bytes).collect()
}

/// [`parse_pem_blocks`], one block at a time, so a caller can stop early.
fn pem_blocks(bytes: &[u8]) -> impl Iterator<Item = PemBlock> + '_ {
    let mut lines = lines(bytes).map(trim_ascii);
    // One buffer for every block's base64, sized once.
    let mut body = Vec::with_capacity(bytes.len().min(1 << 16));
    std::iter::from_fn(move || {
        let label = lines
            .by_ref()
            .find_map(|line| armour(line, b"-----BEGIN "))?;
        let wanted = is_certificate_label(&label);
        body.clear();
        let mut closed = false;
        for line in lines.by_ref() {
            if let Some(end) = armour(line, b"-----END ") {
                closed = end == label;
                break;
            }
            // RFC 1421 headers (`Proc-Type: ...`) carry no base64.
            if wanted && memchr::memchr(b':', line).is_none() {
                body.extend_from_slice(line);
            }
        }
        let der =
            if !closed {
                Some(Err(format!(
                    "PEM block {label} has no matching END line (truncated?)"
                )))
            } else if wanted {
                Some(B64.decode(&body).map_err(|e| {
                    format!("PEM block {label}: invalid base64 ({})", base64_problem(&e))
                }))
            } else {
                None
            };
        Some(PemBlock { label, der })
    })
}

/// Decodes standard base64, ignoring whitespace (wrapped lines). The error
/// names the problem's position, never the input.
pub(crate) fn decode_b64(text: &str) -> Result<Vec<u8>, String> {
    let compact: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    B64.decode(&compact)
        .map_err(|e| format!("invalid base64 ({})", base64_problem(&e)))
}

/// Describes a base64 error by position only, never by the bytes.
pub(crate) fn base64_problem(e: &base64::DecodeError) -> String {
    match e {
        base64::DecodeError::InvalidByte(offset, _) => format!("bad character at offset {offset}"),
        base64::DecodeError::InvalidLength(_) => "wrong length".into(),
        base64::DecodeError::InvalidLastSymbol { offset, .. } => {
            format!("bad final character at offset {offset}")
        }
        base64::DecodeError::InvalidPadding => "bad padding".into(),
    }
}

/// Lines ended by LF, CRLF or a lone CR (classic Mac OS), found with
/// `memchr` rather than a byte-at-a-time loop: splitting was most of
/// scanning a PEM file.
fn lines(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = Some(bytes);
    std::iter::from_fn(move || {
        let r = rest?;
        match memchr::memchr2(b'\n', b'\r', r) {
            Some(i) => {
                let crlf = r[i] == b'\r' && r.get(i + 1) == Some(&b'\n');
                rest = Some(&r[i + 1 + usize::from(crlf)..]);
                Some(&r[..i])
            }
            None => {
                rest = None;
                Some(r)
            }
        }
    })
}

fn trim_ascii(line: &[u8]) -> &[u8] {
    line.trim_ascii()
}

fn armour(line: &[u8], prefix: &[u8]) -> Option<String> {
    let rest = line.strip_prefix(prefix)?;
    let label = rest.strip_suffix(b"-----")?;
    // RFC 7468 labels: printable words joined by one space or hyphen. A
    // one-line or YAML-folded PEM (`-----BEGIN X----- MIIE… -----END X-----`)
    // is not armour: its "label" would hold the body, key text included,
    // and labels are quoted in error messages.
    let word = |w: &[u8]| !w.is_empty() && w.iter().all(u8::is_ascii_graphic);
    if !label.is_empty() && !label.split(|&b| b == b' ' || b == b'-').all(word) {
        return None;
    }
    std::str::from_utf8(label).ok().map(str::to_string)
}

pub(crate) fn has_pem_armour(bytes: &[u8]) -> bool {
    bytes.windows(11).any(|w| w == b"-----BEGIN ")
}

/// What a DER blob is, judged by its outer structure.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum DerShape {
    /// SEQUENCE { SEQUENCE ... }: a certificate, a CSR or a public key.
    Signed,
    /// SEQUENCE { INTEGER 3, ... }: PKCS#12.
    Pkcs12,
    /// SEQUENCE { INTEGER 0|1, ... }: a private key.
    PrivateKey,
    /// The outer length runs past the end of the data.
    Truncated,
    /// Not DER we know.
    Unknown,
}

/// Sniffs binary DER. Only long-form outer lengths count: every real
/// certificate, key or keystore is over 127 bytes, and this keeps text that
/// happens to start with `0` from looking like DER.
pub(crate) fn der_shape(b: &[u8]) -> DerShape {
    if b.len() < 4 || b[0] != 0x30 || !(0x81..=0x84).contains(&b[1]) {
        return DerShape::Unknown;
    }
    let Some((_, hdr, len)) = der::header(b) else {
        return DerShape::Unknown;
    };
    // Checked: a four-byte length can pass usize::MAX on a 32-bit target.
    let Some(end) = hdr.checked_add(len).filter(|&end| end <= b.len()) else {
        return DerShape::Truncated;
    };
    let inner = &b[hdr..end];
    match der::header(inner) {
        Some((0x30, _, _)) => DerShape::Signed,
        Some((0x02, h, 1)) => match inner.get(h) {
            Some(3) => DerShape::Pkcs12,
            Some(0) | Some(1) => DerShape::PrivateKey,
            _ => DerShape::Unknown,
        },
        _ => DerShape::Unknown,
    }
}

/// Certificates in a blob the caller expects to hold some: PEM (bundle),
/// DER or PKCS#12 with an empty password. Anything else is an error.
pub(crate) fn certificates(
    ctx: &Context,
    source: Source,
    field: &str,
    bytes: &[u8],
    out: &mut Parsed,
) {
    if !add_certificates(ctx, source, field, bytes, &[], out) {
        out.error(
            ctx,
            field,
            ErrorReason::Parse,
            "no certificate found (expected PEM, DER or PKCS#12)",
        );
    }
}

/// Adds whatever certificates `bytes` hold. Returns false when the bytes
/// are not certificate material at all (so callers can try other formats).
/// Keys, requests and public keys count as recognised and add nothing.
pub(crate) fn add_certificates(
    ctx: &Context,
    source: Source,
    field: &str,
    bytes: &[u8],
    passwords: &[&str],
    out: &mut Parsed,
) -> bool {
    if has_pem_armour(bytes) {
        let mut any = false;
        let mut index = 0u32;
        for block in pem_blocks(bytes) {
            any = true;
            if !out.take_pem_block(ctx) {
                break;
            }
            match &block.der {
                None => {} // a key or request: recognised, skipped
                // A Windows CA's "Base 64" `.p7b` puts a PKCS#7 bundle
                // under CERTIFICATE armour: content decides.
                Some(Ok(der)) if is_pkcs7_label(&block.label) || pkcs7::is_pkcs7(der) => {
                    pkcs7::add_certificates(ctx, source, field, der, &mut index, out);
                }
                Some(Ok(der)) => {
                    match certificate_from_der(der) {
                        Ok(c) => out.add(ctx, source, field, Some(index), c),
                        Err(e) => out.error(
                            ctx,
                            field,
                            ErrorReason::Parse,
                            format!("certificate #{index}: {e}"),
                        ),
                    }
                    index += 1;
                }
                Some(Err(e)) => {
                    out.error(
                        ctx,
                        field,
                        ErrorReason::Parse,
                        format!("certificate #{index}: {e}"),
                    );
                    index += 1;
                }
            }
        }
        return any;
    }
    if pkcs7::is_pkcs7(bytes) {
        pkcs7::add_certificates(ctx, source, field, bytes, &mut 0, out);
        return true;
    }
    match der_shape(bytes) {
        DerShape::Signed => {
            match certificate_from_der(bytes) {
                Ok(c) => out.add(ctx, source, field, Some(0), c),
                Err(e) => {
                    // A CSR, a public key, an encrypted key or a CRL is
                    // not a credential to watch (CRLs are not read; see
                    // README's "What lapse does not do").
                    if X509CertificationRequest::from_der(bytes).is_err()
                        && CertificateRevocationList::from_der(bytes).is_err()
                        && SubjectPublicKeyInfo::from_der(bytes).is_err()
                        && der::key_shape(bytes).is_none()
                    {
                        out.error(ctx, field, ErrorReason::Parse, format!("DER: {e}"));
                    }
                }
            }
            true
        }
        DerShape::Pkcs12 => {
            pkcs12::add_certificates(ctx, source, field, bytes, passwords, out);
            true
        }
        DerShape::PrivateKey => true,
        DerShape::Truncated => {
            out.error(
                ctx,
                field,
                ErrorReason::Parse,
                "DER data is truncated (its length runs past the end)",
            );
            true
        }
        // Short keys (Ed25519, X25519, P-256 SEC1) have short-form outer
        // lengths, and PKCS#1 public keys and DH or DSA parameters are
        // SEQUENCEs of INTEGERs: recognised by their whole structure.
        DerShape::Unknown => match der::key_shape(bytes) {
            Some(what) => {
                tracing::debug!(path = ctx.path, what, "DER key material; skipped");
                true
            }
            None => false,
        },
    }
}

#[cfg(test)]
mod tests {
    /// The memchr line splitter gives exactly what `split(b'\n')` gives
    /// for LF text, and ends lines at CRLF and at a lone CR as well.
    #[test]
    fn lines_split_like_slice_split() {
        for input in [&b""[..], b"\n", b"a", b"a\n", b"\na\n\nb", b"\n\n\n"] {
            let ours: Vec<&[u8]> = super::lines(input).collect();
            let std: Vec<&[u8]> = input.split(|&b| b == b'\n').collect();
            assert_eq!(ours, std, "{input:?}");
        }
        let mixed: Vec<&[u8]> = super::lines(b"a\nb\r\nc\rd\r\re").collect();
        assert_eq!(mixed, [&b"a"[..], b"b", b"c", b"d", b"", b"e"]);
    }
}
