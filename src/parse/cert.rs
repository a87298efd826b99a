//! One X.509 certificate's DER into a [`Credential`]: its validity, names,
//! serial and fingerprint. Nothing here decodes containers; PEM, PKCS#12
//! and the other stores hand their certificates' DER to this module.

use crate::credential::{Credential, Fingerprint, Identity, Kind, Timestamp};
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::x509::X509Name;

fn name_cn(name: &X509Name) -> Option<String> {
    name.iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .map(str::to_string)
}

fn dn(name: &X509Name) -> Option<String> {
    let s = name.to_string();
    (!s.is_empty()).then_some(s)
}

type NameText = (Option<String>, Option<String>);

thread_local! {
    /// Issuer names repeat (one CA signs a directory of certificates), and
    /// formatting a name was a sixth of parsing a certificate: each
    /// issuer's text is made once per thread, keyed by its DER. Bounded.
    static ISSUER_TEXT: std::cell::RefCell<std::collections::HashMap<Vec<u8>, NameText>> =
        std::cell::RefCell::default();
}

/// The issuer's DN and CN, formatted as [`dn`] and [`name_cn`] do.
fn issuer_text(name: &X509Name) -> NameText {
    ISSUER_TEXT.with(|cache| {
        let mut cache = cache.borrow_mut();
        if let Some(hit) = cache.get(name.as_raw()) {
            return hit.clone();
        }
        let text = (dn(name), name_cn(name));
        if cache.len() >= 256 {
            cache.clear();
        }
        cache.insert(name.as_raw().to_vec(), text.clone());
        text
    })
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
    let mut c = Credential::new(Kind::X509, Fingerprint::of(cert_der)).expiring(Some(not_after));
    c.not_before = Some(not_before);
    let (issuer, issuer_cn) = issuer_text(cert.issuer());
    c.identity = Identity {
        subject: dn(cert.subject()),
        issuer,
        subject_cn: name_cn(cert.subject()),
        issuer_cn,
        serial: Some(crate::credential::hex_lower(cert.raw_serial())),
    };
    Ok(c)
}

fn x509_problem(e: &x509_parser::nom::Err<x509_parser::error::X509Error>) -> String {
    match e {
        x509_parser::nom::Err::Incomplete(_) => "truncated".into(),
        x509_parser::nom::Err::Error(e) | x509_parser::nom::Err::Failure(e) => e.to_string(),
    }
}
