//! The parsers' shared record: what one parse produced ([`Parsed`]), the
//! files a document points at ([`FileRef`]), where the bytes being parsed
//! sit ([`Context`]), and small accessors over YAML/JSON trees. Every
//! parser module builds on this one; it uses none of them.

use crate::credential::{Credential, ErrorEntry, ErrorReason, ObjectRef, Source};
use serde_json::Value;
use std::path::PathBuf;
use std::sync::Arc;

/// Nested containers (a kubeconfig inside a Secret inside a List) are
/// followed this deep and no deeper.
pub(crate) const MAX_DEPTH: u8 = 4;

/// Error entries kept per parse (one file, one Kubernetes object); past
/// it they are counted, and [`Parsed::finish`] adds one entry saying how
/// many were dropped. 13,000 entries from one Secret of empty PEM blocks
/// would otherwise each be kept, logged, counted and rendered.
pub const MAX_ERRORS: usize = 100;
/// Credentials kept per parse of a small input; a larger one may keep one
/// per [`BYTES_PER_ITEM`] of its length. A CA bundle holds some 150; a
/// dump of a whole cluster's Secrets tens of thousands.
pub const MAX_CREDENTIALS: usize = 10_000;
/// Files one parse may point at (a kubeconfig's `client-certificate`,
/// `tokenFile`, exec caches): each is a read and a parse of its own.
pub const MAX_REFS: usize = 1_000;
/// PEM blocks scanned per parse of a small input, certificates and keys
/// alike (a bundle of `MAX_CREDENTIALS` certificates with their keys
/// fits); a larger one may scan one per [`BYTES_PER_ITEM`].
pub const MAX_PEM_BLOCKS: usize = 2 * MAX_CREDENTIALS;
/// YAML/JSON documents read per parse of a small input: a stream's
/// documents, a List's items, and documents nested in Secret or ConfigMap
/// values; a larger one may read one per [`BYTES_PER_ITEM`].
pub const MAX_DOCUMENTS: usize = 10_000;
/// The fewest input bytes a credential, a PEM block or a document takes in
/// any file written for use: the smallest PEM block (an Ed25519 key) takes
/// 119, a Kubernetes object more. What one input yields beyond one per 64
/// of its bytes is amplification (YAML aliases replaying a bundle), and
/// stops at the caps, which so grow with the input but not with its
/// aliases.
pub const BYTES_PER_ITEM: usize = 64;

/// Which per-parse cap was reached; each is reported once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Cap {
    Credentials,
    Refs,
    PemBlocks,
    Documents,
}

impl Cap {
    fn bit(self) -> u8 {
        1 << self as u8
    }

    /// The cap for an input of `len` bytes (0 when not known).
    fn limit(self, len: usize) -> usize {
        let floor = match self {
            Cap::Credentials => MAX_CREDENTIALS,
            Cap::Refs => return MAX_REFS,
            Cap::PemBlocks => MAX_PEM_BLOCKS,
            Cap::Documents => MAX_DOCUMENTS,
        };
        floor.max(len / BYTES_PER_ITEM)
    }

    fn message(self, limit: usize) -> String {
        match self {
            Cap::Credentials => format!("more than {limit} credentials; the rest were not read"),
            Cap::Refs => format!("refers to more than {limit} files; the rest were not read"),
            Cap::PemBlocks => format!("more than {limit} PEM blocks; the rest were not read"),
            Cap::Documents => {
                format!("more than {limit} YAML/JSON documents; the rest were not read")
            }
        }
    }
}

/// Everything one parse produced.
#[derive(Debug, Default)]
pub struct Parsed {
    pub credentials: Vec<Credential>,
    pub errors: Vec<ErrorEntry>,
    pub refs: Vec<FileRef>,
    /// Error entries past [`MAX_ERRORS`], counted, not kept.
    dropped_errors: usize,
    /// Caps already reported, one bit each.
    capped: u8,
    pem_blocks: usize,
    documents: usize,
    /// Bytes of the input, when known: the caps grow with it.
    input_len: usize,
    /// PKCS#12 key-derivation iterations spent so far.
    pub(crate) p12_work: u64,
    /// The path the last credential was given, shared with the next of
    /// the same file: one copy per file, not one per credential.
    path: Option<Arc<str>>,
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
    /// An empty result for parsing an input of `len` bytes: its caps on
    /// credentials, PEM blocks and documents grow with `len`.
    /// [`Parsed::default`] has the caps of a small input.
    pub(crate) fn for_input(len: usize) -> Parsed {
        Parsed {
            input_len: len,
            ..Parsed::default()
        }
    }

    /// Records a credential found at `field` (relative to `ctx`).
    pub(crate) fn add(
        &mut self,
        ctx: &Context,
        source: Source,
        field: &str,
        index: Option<u32>,
        mut cred: Credential,
    ) {
        cred.path = match &self.path {
            Some(p) if **p == *ctx.path => p.clone(),
            _ => self.path.insert(Arc::from(ctx.path)).clone(),
        };
        cred.source = source;
        cred.entry = ctx.entry_for(field).map(String::into_boxed_str);
        cred.index = index;
        cred.object = ctx.object.clone().map(Box::new);
        if self.credentials.len() >= Cap::Credentials.limit(self.input_len) {
            self.cap_reached(ctx, Cap::Credentials);
            return;
        }
        self.credentials.push(cred);
    }

    /// Records a file this parse points at, up to [`MAX_REFS`].
    pub(crate) fn add_ref(&mut self, ctx: &Context, r: FileRef) {
        if self.refs.len() >= Cap::Refs.limit(self.input_len) {
            self.cap_reached(ctx, Cap::Refs);
            return;
        }
        self.refs.push(r);
    }

    /// Counts one PEM block; false once the cap ([`MAX_PEM_BLOCKS`], or
    /// more for a large input) was reached.
    pub(crate) fn take_pem_block(&mut self, ctx: &Context) -> bool {
        self.take(ctx, Cap::PemBlocks)
    }

    /// Counts one YAML/JSON document; false once the cap ([`MAX_DOCUMENTS`],
    /// or more for a large input) was reached.
    pub(crate) fn take_document(&mut self, ctx: &Context) -> bool {
        self.take(ctx, Cap::Documents)
    }

    fn take(&mut self, ctx: &Context, cap: Cap) -> bool {
        let max = cap.limit(self.input_len);
        let count = match cap {
            Cap::PemBlocks => &mut self.pem_blocks,
            Cap::Documents => &mut self.documents,
            // Counted by the length of their vectors.
            Cap::Credentials | Cap::Refs => return true,
        };
        if *count >= max {
            self.cap_reached(ctx, cap);
            return false;
        }
        *count += 1;
        true
    }

    /// One entry per cap, kept whatever the error count: it says why the
    /// rest of the input was not read.
    fn cap_reached(&mut self, ctx: &Context, cap: Cap) {
        if self.capped & cap.bit() != 0 {
            return;
        }
        self.capped |= cap.bit();
        self.errors.push(ErrorEntry {
            path: ctx.path.to_string(),
            entry: None,
            reason: ErrorReason::TooLarge,
            message: cap.message(cap.limit(self.input_len)),
        });
    }

    pub(crate) fn error(
        &mut self,
        ctx: &Context,
        field: &str,
        reason: ErrorReason,
        message: impl Into<String>,
    ) {
        if self.errors.len() - self.capped.count_ones() as usize >= MAX_ERRORS {
            self.dropped_errors += 1;
            return;
        }
        self.errors.push(ErrorEntry {
            path: ctx.path.to_string(),
            entry: ctx.entry_for(field),
            reason,
            message: message.into(),
        });
    }

    /// Closes one parse of `path`: the entry for errors past [`MAX_ERRORS`].
    pub(crate) fn finish(mut self, path: &str) -> Parsed {
        if self.dropped_errors > 0 {
            self.errors.push(ErrorEntry {
                path: path.to_string(),
                entry: None,
                reason: ErrorReason::TooLarge,
                message: format!(
                    "{} more errors were dropped (at most {MAX_ERRORS} are kept per file or object)",
                    self.dropped_errors
                ),
            });
        }
        self
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
