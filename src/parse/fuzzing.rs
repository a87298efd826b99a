//! Fuzzing entry points: one per parser family, so each `fuzz/` target
//! reaches its parser without first having to pass content sniffing.
//!
//! Thin wrappers over the crate-internal parsers, not an API: nothing in
//! lapse calls them and they may change with the parsers. Like the parsers
//! they do no I/O.

use super::record::{Context, Parsed};
use super::{jks, k8s_object, kubeconfig, pkcs7, sniff, token_files, x509};
use crate::credential::Source;
use serde_json::Value;

fn context<'a>(path: &'a str, passwords: &'a [String]) -> Context<'a> {
    Context {
        passwords,
        ..Context::file(path)
    }
}

/// PEM (bundle), DER or PKCS#12 bytes, as a kubeconfig's
/// `client-certificate` file is read: the configured `passwords` are tried
/// on a PKCS#12 store after the empty one.
pub fn certificates(path: &str, bytes: &[u8], passwords: &[String]) -> Parsed {
    let mut out = Parsed::default();
    x509::certificates(&context(path, passwords), Source::File, "", bytes, &mut out);
    out.finish(path)
}

/// A JKS or JCEKS store (anything after the magic the fuzzer likes); the
/// configured `passwords` check its integrity hash.
pub fn keystore(path: &str, bytes: &[u8], passwords: &[String]) -> Parsed {
    let mut out = Parsed::default();
    jks::add_certificates(
        &context(path, passwords),
        Source::File,
        "",
        bytes,
        &[],
        &mut out,
    );
    out.finish(path)
}

/// PKCS#7 / CMS DER (or BER) as a bundle's reader sees it, without the
/// sniffing that routes it there.
pub fn pkcs7(path: &str, bytes: &[u8]) -> Parsed {
    let mut out = Parsed::default();
    pkcs7::add_certificates(
        &Context::file(path),
        Source::File,
        "",
        bytes,
        &mut 0,
        &mut out,
    );
    out.finish(path)
}

/// One token's text (JWT, EKS, Fernet, bootstrap or opaque).
pub fn token(path: &str, text: &str) -> Parsed {
    let mut out = Parsed::default();
    super::jwt::add_token(&Context::file(path), Source::File, "", text, &mut out);
    out.finish(path)
}

/// YAML (or JSON) text as the parsers read it: every document, or the
/// error message lapse would report.
pub fn documents(text: &str) -> Result<Vec<Value>, String> {
    crate::yaml::documents(text)
}

/// A document read as a kubeconfig, whatever its `kind`.
pub fn kubeconfig(path: &str, doc: &Value) -> Parsed {
    let mut out = Parsed::default();
    kubeconfig::parse(&Context::file(path), doc, &mut out);
    out.finish(path)
}

/// A document read as a Secret, whatever its `kind` or `type`.
pub fn secret(path: &str, doc: &Value, passwords: &[String]) -> Parsed {
    let mut out = Parsed::default();
    k8s_object::secret(&context(path, passwords), doc, sniff::value, &mut out);
    out.finish(path)
}

/// A document read as a ConfigMap, whatever its `kind`.
pub fn config_map(path: &str, doc: &Value) -> Parsed {
    let mut out = Parsed::default();
    k8s_object::config_map(&Context::file(path), doc, sniff::value, &mut out);
    out.finish(path)
}

/// A document offered to the token-cache recognisers (MOC login files,
/// cloudconfig, OpenStack output, Keystone bodies, gke/kubelogin caches,
/// ExecCredential).
pub fn token_cache(path: &str, doc: &Value) -> Parsed {
    let mut out = Parsed::default();
    token_files::parse(&Context::file(path), doc, &mut out);
    out.finish(path)
}
