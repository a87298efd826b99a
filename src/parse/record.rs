//! The parsers' shared record: what one parse produced ([`Parsed`]), the
//! files a document points at ([`FileRef`]), where the bytes being parsed
//! sit ([`Context`]), and small accessors over YAML/JSON trees. Every
//! parser module builds on this one; it uses none of them.

use crate::credential::{Credential, ErrorEntry, ErrorReason, ObjectRef, Source};
use serde_json::Value;
use std::path::PathBuf;

/// Nested containers (a kubeconfig inside a Secret inside a List) are
/// followed this deep and no deeper.
pub(crate) const MAX_DEPTH: u8 = 4;

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
    pub(crate) fn file(path: &'a str) -> Self {
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

    pub(crate) fn absorb(&mut self, other: Parsed) {
        self.credentials.extend(other.credentials);
        self.errors.extend(other.errors);
        self.refs.extend(other.refs);
    }
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
