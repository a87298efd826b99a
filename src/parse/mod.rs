//! Pure parsers: bytes in, credentials out. No I/O, no clock.
//!
//! [`parse_file`] recognises content by what it is, never by file name:
//! PEM, DER, PKCS#12, JWT, kubeconfigs, Kubernetes objects and the token
//! caches in `FORMATS.md`. Files a parser refers to (a kubeconfig's
//! `client-certificate` path) come back as [`FileRef`]s for the caller to
//! read and hand to [`parse_reference`]. Token text and key material never
//! leave this module: credentials carry fingerprints, and error messages
//! name what is wrong without quoting the input.

#[cfg(test)]
mod caps_tests;
mod cert;
mod der;
#[doc(hidden)]
pub mod fuzzing;
mod java_serial;
mod jks;
mod jwt;
mod k8s_object;
mod kubeconfig;
mod pkcs12;
mod pkcs12_cost;
mod pkcs7;
#[cfg(test)]
mod properties;
mod record;
#[cfg(test)]
mod robustness;
mod sniff;
#[cfg(test)]
mod test_stores;
mod token_files;
pub mod token_rules;
mod x509;

pub use jwt::token_credential;
pub use k8s_object::{K8sKind, K8sObject};
pub use kubeconfig::CACHE_SUFFIX;
pub use record::{FileRef, MAX_ERRORS, Parsed, RefKind};
pub use sniff::looks_like_credential_name;
pub use token_rules::{IssuedAt, TokenRule};
pub use x509::parse_pem_blocks;

use record::Context;

use crate::credential::ErrorReason;
use serde_json::Value;

/// Parses one file's bytes. `path` is only a label (and the base for
/// relative references); nothing is read.
pub fn parse_file(path: &str, bytes: &[u8]) -> Parsed {
    parse_file_with(path, bytes, &[])
}

/// [`parse_file`] with configured PKCS#12 passwords.
pub fn parse_file_with(path: &str, bytes: &[u8], passwords: &[String]) -> Parsed {
    file(path, bytes, passwords, None)
}

/// [`parse_file_with`], then the `tokens:` rules of lapse.yaml that name
/// this file (see [`token_rules`]): tokens without a stated expiry get the
/// declared lifetime. `mtime` is the file's modification time in Unix
/// seconds, when there is a file. A rule reads the document this parse
/// already read (its `issued_at: field:`, and its token).
pub fn parse_file_with_rules(
    path: &str,
    bytes: &[u8],
    passwords: &[String],
    rules: &[&TokenRule],
    mtime: Option<i64>,
) -> Parsed {
    if rules.is_empty() {
        return parse_file_with(path, bytes, passwords);
    }
    // Kept for every rule: a document is also where a rule finds its token.
    let mut doc = None;
    let mut out = file(path, bytes, passwords, Some(&mut doc));
    token_rules::apply(path, bytes, doc.as_ref(), mtime, rules, &mut out);
    out
}

/// One file's bytes; with `keep`, its first YAML/JSON document too.
fn file(
    path: &str,
    bytes: &[u8],
    passwords: &[String],
    keep: Option<&mut Option<Value>>,
) -> Parsed {
    let mut out = Parsed::for_input(bytes.len());
    let ctx = Context {
        passwords,
        ..Context::file(path)
    };
    if !sniff::parse_bytes(&ctx, bytes, keep, &mut out) && looks_like_credential_name(path) {
        out.error(
            &ctx,
            "",
            ErrorReason::Parse,
            "named like a certificate or token, but holds no format lapse recognises",
        );
    }
    out.finish(path)
}

/// Parses one document already read as a tree, as a file holding it would
/// be read. `path` names where it lives.
pub fn parse_document(path: &str, doc: &Value, passwords: &[String]) -> Parsed {
    let mut out = Parsed::default();
    let ctx = Context {
        passwords,
        ..Context::file(path)
    };
    sniff::document(&ctx, doc, &mut out);
    out.finish(path)
}

/// Parses one Secret or ConfigMap whose values are already decoded (an
/// object from the API). `path` names where it lives. A document holding
/// the same object, base64 and all, gives the same result through
/// [`parse_document`].
pub fn parse_object(path: &str, obj: &K8sObject, passwords: &[String]) -> Parsed {
    let mut out = Parsed::default();
    let ctx = Context {
        passwords,
        ..Context::file(path)
    };
    k8s_object::object(&ctx, obj, sniff::value, &mut out);
    out.finish(path)
}

/// Parses a file that a kubeconfig (or cache rule) pointed at.
pub fn parse_reference(r: &FileRef, bytes: &[u8]) -> Parsed {
    let path = r.path.to_string_lossy();
    let ctx = Context {
        path: &path,
        source: r.source,
        entry: Some(r.entry.clone()),
        object: None,
        depth: 1,
        passwords: &[],
    };
    let mut out = Parsed::for_input(bytes.len());
    match r.kind {
        RefKind::Certificates => x509::certificates(&ctx, r.source, "", bytes, &mut out),
        RefKind::Token => match std::str::from_utf8(bytes) {
            Ok(text) if !text.trim().is_empty() => {
                jwt::add_token(&ctx, r.source, "", text.trim(), &mut out)
            }
            Ok(_) => out.error(&ctx, "", ErrorReason::Parse, "token file is empty"),
            Err(_) => out.error(&ctx, "", ErrorReason::Parse, "token file is not text"),
        },
        RefKind::Any => {
            sniff::parse_bytes(&Context::file(&path), bytes, None, &mut out);
        }
    }
    out.finish(&path)
}
