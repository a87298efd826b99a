//! Pure parsers: bytes in, credentials out. No I/O, no clock.
//!
//! [`parse_file`] recognises content by what it is, never by file name:
//! PEM, DER, PKCS#12, JWT, kubeconfigs, Kubernetes objects and the token
//! caches in `FORMATS.md`. Files a parser refers to (a kubeconfig's
//! `client-certificate` path) come back as [`FileRef`]s for the caller to
//! read and hand to [`parse_reference`]. Token text and key material never
//! leave this module: credentials carry fingerprints, and error messages
//! name what is wrong without quoting the input.

#[doc(hidden)]
pub mod fuzzing;
mod jwt;
mod k8s_object;
mod kubeconfig;
#[cfg(test)]
mod properties;
#[cfg(test)]
mod robustness;
mod sniff;
mod token_files;
pub mod token_rules;
mod x509;

pub use jwt::token_credential;
pub use k8s_object::{K8sKind, K8sObject};
pub use sniff::looks_like_credential_name;
pub use token_rules::{IssuedAt, TokenRule};
pub use x509::parse_pem_blocks;

use crate::credential::{Credential, ErrorEntry, ErrorReason, ObjectRef, Source};
use serde_json::Value;
use std::path::PathBuf;

/// Nested containers (a kubeconfig inside a Secret inside a List) are
/// followed this deep and no deeper.
const MAX_DEPTH: u8 = 4;

/// Everything one parse produced.
#[derive(Debug, Default)]
pub struct Parsed {
    pub credentials: Vec<Credential>,
    pub errors: Vec<ErrorEntry>,
    pub refs: Vec<FileRef>,
}

/// What a referenced file is expected to hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefKind {
    /// One or more certificates (PEM or DER).
    Certificates,
    /// A token as text.
    Token,
    /// Any credential-bearing file or directory (token caches).
    Any,
}

/// A file that a parsed document points at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileRef {
    /// Resolved against the referring file's directory.
    pub path: PathBuf,
    /// The referring file, for error entries.
    pub from: String,
    /// The field that holds the reference, e.g. `users[ci].client-certificate`.
    pub entry: String,
    pub kind: RefKind,
    pub source: Source,
    /// A cache that may legitimately be absent: no error when missing.
    pub optional: bool,
}

/// Where the bytes being parsed sit: which file, which object, which field.
#[derive(Clone, Debug)]
pub(crate) struct Context<'a> {
    pub path: &'a str,
    pub source: Source,
    pub entry: Option<String>,
    pub object: Option<ObjectRef>,
    pub depth: u8,
    /// Configured PKCS#12 passwords, tried after an empty one and any
    /// password stored beside the keystore.
    pub passwords: &'a [String],
}

impl<'a> Context<'a> {
    fn file(path: &'a str) -> Self {
        Context {
            path,
            source: Source::File,
            entry: None,
            object: None,
            depth: 0,
            passwords: &[],
        }
    }

    /// The entry for a field below this context's entry.
    pub fn entry_for(&self, field: &str) -> Option<String> {
        match (&self.entry, field.is_empty()) {
            (Some(e), true) => Some(e.clone()),
            (Some(e), false) => Some(format!("{e} {field}")),
            (None, true) => None,
            (None, false) => Some(field.to_string()),
        }
    }

    /// A context for a field inside this one.
    pub fn child(&self, field: &str) -> Context<'a> {
        Context {
            entry: self.entry_for(field),
            depth: self.depth + 1,
            ..self.clone()
        }
    }

    /// Containers found inside Secrets or ConfigMaps keep that source.
    pub fn source_or(&self, own: Source) -> Source {
        if self.source == Source::File {
            own
        } else {
            self.source
        }
    }
}

impl Parsed {
    /// Records a credential found at `field` (relative to `ctx`).
    pub(crate) fn add(
        &mut self,
        ctx: &Context,
        source: Source,
        field: &str,
        index: Option<u32>,
        mut cred: Credential,
    ) {
        cred.path = ctx.path.to_string();
        cred.source = source;
        cred.entry = ctx.entry_for(field);
        cred.index = index;
        cred.object = ctx.object.clone();
        self.credentials.push(cred);
    }

    pub(crate) fn error(
        &mut self,
        ctx: &Context,
        field: &str,
        reason: ErrorReason,
        message: impl Into<String>,
    ) {
        self.errors.push(ErrorEntry {
            path: ctx.path.to_string(),
            entry: ctx.entry_for(field),
            reason,
            message: message.into(),
        });
    }

    fn absorb(&mut self, other: Parsed) {
        self.credentials.extend(other.credentials);
        self.errors.extend(other.errors);
        self.refs.extend(other.refs);
    }
}

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
/// seconds, when there is a file. An `issued_at: field:` rule reads the
/// document this parse already read.
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
    let mut doc = None;
    let wants_doc = rules
        .iter()
        .any(|r| matches!(r.issued_at, IssuedAt::Field(_)));
    let mut out = file(path, bytes, passwords, wants_doc.then_some(&mut doc));
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
    let mut out = Parsed::default();
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
    out
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
    out
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
    k8s_object::object(&ctx, obj, &mut out);
    out
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
    let mut out = Parsed::default();
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
            let mut inner = Parsed::default();
            sniff::parse_bytes(&Context::file(&path), bytes, None, &mut inner);
            out.absorb(inner);
        }
    }
    out
}

// Small accessors over a parsed YAML/JSON tree.

pub(crate) fn get<'v>(v: &'v Value, key: &str) -> Option<&'v Value> {
    v.as_object()?.get(key)
}

pub(crate) fn get_str<'v>(v: &'v Value, key: &str) -> Option<&'v str> {
    get(v, key)?.as_str()
}

/// A non-empty string field.
pub(crate) fn field<'v>(v: &'v Value, key: &str) -> Option<&'v str> {
    get_str(v, key).filter(|s| !s.trim().is_empty())
}
