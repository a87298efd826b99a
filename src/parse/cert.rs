//! One X.509 certificate's DER into a [`Credential`]: its validity, names,
//! serial and fingerprint. Nothing here decodes containers; PEM, PKCS#12,
//! PKCS#7 and the other stores hand their certificates' DER to this module.
//!
//! Names are always text, never an error: each value is decoded as its
//! string type says, and a byte that cannot be decoded becomes U+FFFD.

use crate::credential::{Credential, Fingerprint, Identity, IssuerTable, Kind, Names, Timestamp};
use std::sync::Arc;
use x509_parser::asn1_rs::Tag;
use x509_parser::objects::{oid_registry, oid2abbrev};
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::x509::{AttributeTypeAndValue, X509Name};

/// RFC 5280 4.1.2.5: a notAfter of 99991231235959Z means the certificate
/// "has no well-defined expiration date".
const NO_WELL_DEFINED_EXPIRATION: Timestamp = 253_402_300_799;

/// One attribute value as text. BMPString is UTF-16, UniversalString
/// UTF-32, T61String UTF-8 or else Latin-1; the other string types are
/// ASCII or UTF-8. Anything else is hex, as
/// x509-parser writes it.
fn value_text(attr: &AttributeTypeAndValue) -> String {
    let value = attr.attr_value();
    let data = value.data;
    match value.tag() {
        Tag::BmpString => {
            let units = data.chunks(2).map(|c| {
                if c.len() == 2 {
                    u16::from_be_bytes([c[0], c[1]])
                } else {
                    0xfffd
                }
            });
            char::decode_utf16(units)
                .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
                .collect()
        }
        Tag::UniversalString => data
            .chunks(4)
            .map(|c| {
                <[u8; 4]>::try_from(c)
                    .ok()
                    .and_then(|c| char::from_u32(u32::from_be_bytes(c)))
                    .unwrap_or(char::REPLACEMENT_CHARACTER)
            })
            .collect(),
        // OpenSSL writes Latin-1 there, Python's cryptography UTF-8.
        Tag::T61String | Tag::VideotexString => match std::str::from_utf8(data) {
            Ok(text) => text.to_string(),
            Err(_) => data.iter().map(|&b| char::from(b)).collect(),
        },
        Tag::Utf8String
        | Tag::NumericString
        | Tag::PrintableString
        | Tag::Ia5String
        | Tag::VisibleString
        | Tag::GraphicString
        | Tag::GeneralString
        | Tag::ObjectDescriptor => String::from_utf8_lossy(data).into_owned(),
        _ => crate::credential::hex_lower(value.as_bytes()).to_ascii_uppercase(),
    }
}

fn name_cn(name: &X509Name) -> Option<String> {
    name.iter_common_name().next().map(value_text)
}

/// `CN=a, O=b`, multi-valued RDNs joined with ` + `: x509-parser's
/// layout, with values from [`value_text`].
fn dn(name: &X509Name) -> Option<String> {
    let registry = oid_registry();
    let rdns: Vec<String> = name
        .iter_rdn()
        .map(|rdn| {
            rdn.iter()
                .map(|attr| {
                    let kind = oid2abbrev(attr.attr_type(), registry)
                        .map(str::to_string)
                        .unwrap_or_else(|_| format!("{:?}", attr.attr_type()));
                    format!("{kind}={}", value_text(attr))
                })
                .collect::<Vec<_>>()
                .join(" + ")
        })
        .collect();
    let s = rdns.join(", ");
    (!s.is_empty()).then_some(s)
}

thread_local! {
    /// Issuer names repeat (one CA signs a directory of certificates), and
    /// formatting a name was a sixth of parsing a certificate: each
    /// issuer's text is made once per thread, keyed by its DER, and shared
    /// by every certificate it issued.
    static ISSUER_TEXT: std::cell::RefCell<IssuerTable<Vec<u8>>> = std::cell::RefCell::default();
}

/// The issuer's DN and CN, formatted as [`dn`] and [`name_cn`] do.
fn issuer_text(name: &X509Name) -> Option<Arc<Names>> {
    let make = || {
        let (dn, cn) = (dn(name), name_cn(name));
        (dn.is_some() || cn.is_some()).then(|| {
            Arc::new(Names {
                dn: dn.map(String::into_boxed_str),
                cn: cn.map(String::into_boxed_str),
            })
        })
    };
    ISSUER_TEXT.with(|table| table.borrow_mut().get_or(name.as_raw(), make))
}

/// One certificate from DER. Trailing bytes (the `TRUSTED CERTIFICATE`
/// auxiliary data) are allowed.
pub(crate) fn certificate_from_der(der: &[u8]) -> Result<Credential, String> {
    let (rest, cert) = X509Certificate::from_der(der)
        .map_err(|e| format!("not a valid X.509 certificate ({})", x509_problem(&e)))?;
    let cert_der = &der[..der.len() - rest.len()];
    let validity = cert.validity();
    let not_before: Timestamp = validity.not_before.timestamp();
    let not_after: Timestamp = validity.not_after.timestamp();
    let mut c = Credential::new(Kind::X509, Fingerprint::of(cert_der));
    c = if not_after == NO_WELL_DEFINED_EXPIRATION {
        c.expiring(None).with_note(
            "notAfter 99991231235959Z: no well-defined expiration date (RFC 5280), it never expires",
        )
    } else {
        c.expiring(Some(not_after))
    };
    c.not_before = Some(not_before);
    c.identity = Identity::new(
        dn(cert.subject()).as_deref(),
        name_cn(cert.subject()).as_deref(),
        Some(&crate::credential::hex_lower(cert.raw_serial())),
        issuer_text(cert.issuer()),
    );
    Ok(c)
}

fn x509_problem(e: &x509_parser::nom::Err<x509_parser::error::X509Error>) -> String {
    match e {
        x509_parser::nom::Err::Incomplete(_) => "truncated".into(),
        x509_parser::nom::Err::Error(e) | x509_parser::nom::Err::Failure(e) => e.to_string(),
    }
}
