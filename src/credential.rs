//! The credential record every part of lapse shares.
//!
//! A [`Credential`] says what a credential is, where it lives and when it
//! lapses. It never holds token text or key material: the parser that saw
//! those bytes keeps only their SHA-256 [`Fingerprint`].

use serde::Serialize;
use sha2::{Digest, Sha256};
use std::fmt;
use std::sync::Arc;

mod identity;
pub use identity::{Identity, IssuerTable, Names};

/// Seconds since the Unix epoch, UTC.
pub type Timestamp = i64;

/// What sort of credential was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    X509,
    Jwt,
    BootstrapToken,
    OpaqueToken,
}

impl Kind {
    pub const ALL: [Kind; 4] = [
        Kind::X509,
        Kind::Jwt,
        Kind::BootstrapToken,
        Kind::OpaqueToken,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::X509 => "x509",
            Kind::Jwt => "jwt",
            Kind::BootstrapToken => "bootstrap-token",
            Kind::OpaqueToken => "opaque-token",
        }
    }
}

/// The kind of container the credential was read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    File,
    Kubeconfig,
    Secret,
    Configmap,
}

impl Source {
    pub const ALL: [Source; 4] = [
        Source::File,
        Source::Kubeconfig,
        Source::Secret,
        Source::Configmap,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Source::File => "file",
            Source::Kubeconfig => "kubeconfig",
            Source::Secret => "secret",
            Source::Configmap => "configmap",
        }
    }
}

/// `Display` and `FromStr` from `as_str` and `ALL`: one spelling, used by
/// labels, JSON, the page and lapse.yaml alike.
macro_rules! spelled {
    ($t:ty) => {
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $t {
            type Err = String;

            /// The error lists every spelling: `"pgp": use x509, jwt, … or opaque-token`.
            fn from_str(text: &str) -> Result<Self, String> {
                Self::ALL
                    .into_iter()
                    .find(|v| v.as_str() == text)
                    .ok_or_else(|| format!("{text:?}: use {}", one_of(Self::ALL.map(<$t>::as_str))))
            }
        }
    };
}

/// `a, b, c or d`.
fn one_of<const N: usize>(names: [&str; N]) -> String {
    match names.split_last() {
        Some((last, [])) => last.to_string(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    }
}

spelled!(Kind);
spelled!(Source);

/// How the expiry was learnt.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ExpirySource {
    /// The credential itself (or the file that carries it) states its expiry.
    Embedded,
    /// Issue time plus a declared lifetime.
    ValidityWindow,
    /// Nothing says when it lapses.
    None,
}

impl ExpirySource {
    pub fn as_str(self) -> &'static str {
        match self {
            ExpirySource::Embedded => "embedded",
            ExpirySource::ValidityWindow => "validity-window",
            ExpirySource::None => "none",
        }
    }
}

/// A SHA-256 digest of the credential's bytes (DER for certificates, the
/// token text for tokens). It identifies a credential without revealing it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    pub fn of(bytes: &[u8]) -> Self {
        Fingerprint(Sha256::digest(bytes).into())
    }

    /// The first `n` hex digits, for labels and narrow tables.
    pub fn short(&self, n: usize) -> String {
        let mut hex = hex_lower(&self.0[..n.div_ceil(2).min(32)]);
        hex.truncate(n);
        hex
    }
}

/// Lower-case hex. `hex::encode` goes through a `char` iterator and was
/// the most expensive step of writing a fingerprint.
pub fn hex_lower(bytes: &[u8]) -> String {
    let mut out = Vec::with_capacity(bytes.len() * 2);
    push_hex(&mut out, bytes);
    String::from_utf8(out).unwrap_or_default() // ASCII digits only
}

fn push_hex(out: &mut Vec<u8>, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for &b in bytes {
        out.extend_from_slice(&[DIGITS[usize::from(b >> 4)], DIGITS[usize::from(b & 0x0f)]]);
    }
}

impl Fingerprint {
    /// `sha256:` and 64 hex digits, as Display writes it, without the
    /// formatting machinery (it runs once per credential in a report).
    pub fn text(&self) -> String {
        let mut out = Vec::with_capacity(71);
        out.extend_from_slice(b"sha256:");
        push_hex(&mut out, &self.0);
        String::from_utf8(out).unwrap_or_default() // ASCII only
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Serialize for Fingerprint {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// The Kubernetes object a credential was read from.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct ObjectRef {
    pub namespace: String,
    pub name: String,
    pub key: String,
    /// Kubernetes labels an operator chose to copy onto metrics
    /// (`kubernetes.copy_labels`), as (label, value).
    pub labels: Vec<(String, String)>,
}

/// One credential found somewhere.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credential {
    pub kind: Kind,
    pub source: Source,
    /// The file it was read from (`-` for standard input); shared by the
    /// credentials of one file.
    pub path: Arc<str>,
    /// Where inside that file, e.g. `users[deployer].token`.
    pub entry: Option<Box<str>>,
    /// Position in a bundle (certificates only).
    pub index: Option<u32>,
    /// Boxed: most credentials are read from files, and the record is
    /// kept for each of them.
    pub object: Option<Box<ObjectRef>>,
    pub identity: Identity,
    pub not_before: Option<Timestamp>,
    /// `None` when nothing says it ever lapses.
    pub not_after: Option<Timestamp>,
    pub expiry_source: ExpirySource,
    pub fingerprint: Fingerprint,
    rare: Option<Box<Rare>>,
}

/// Fields few credentials have, boxed so that the others do not carry them.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
struct Rare {
    warn_after: Option<Timestamp>,
    note: Option<Box<str>>,
}

impl Credential {
    /// A credential with only its kind and fingerprint known; parsers fill in the rest.
    pub fn new(kind: Kind, fingerprint: Fingerprint) -> Self {
        Credential {
            kind,
            source: Source::File,
            path: Arc::from(""),
            entry: None,
            index: None,
            object: None,
            identity: Identity::default(),
            not_before: None,
            not_after: None,
            expiry_source: ExpirySource::None,
            fingerprint,
            rare: None,
        }
    }

    /// Kubernetes bound tokens: when the kubelet should have rotated it.
    pub fn warn_after(&self) -> Option<Timestamp> {
        self.rare.as_ref()?.warn_after
    }

    /// A short remark for people (never secret text), e.g. why the expiry is unknown.
    pub fn note(&self) -> Option<&str> {
        self.rare.as_ref()?.note.as_deref()
    }

    pub fn set_warn_after(&mut self, at: Option<Timestamp>) {
        self.rare_mut(|r| r.warn_after = at);
    }

    pub fn set_note(&mut self, note: Option<String>) {
        self.rare_mut(|r| r.note = note.map(String::into_boxed_str));
    }

    /// Changes the rare fields; a record left with none drops the box.
    fn rare_mut(&mut self, change: impl FnOnce(&mut Rare)) {
        let mut rare = self.rare.take().unwrap_or_default();
        change(&mut rare);
        if *rare != Rare::default() {
            self.rare = Some(rare);
        }
    }

    /// Sets an embedded expiry.
    pub fn expiring(mut self, not_after: Option<Timestamp>) -> Self {
        self.not_after = not_after;
        self.expiry_source = if not_after.is_some() {
            ExpirySource::Embedded
        } else {
            ExpirySource::None
        };
        self
    }

    pub fn with_note(mut self, note: impl Into<String>) -> Self {
        self.set_note(Some(note.into()));
        self
    }

    /// Seconds left at `now`; negative once lapsed, `None` if it never lapses.
    pub fn expires_in(&self, now: Timestamp) -> Option<i64> {
        self.not_after.map(|t| t - now)
    }

    /// The whole validity window, not_after − not_before, when both are known.
    pub fn validity_window(&self) -> Option<i64> {
        Some(self.not_after? - self.not_before?)
    }

    /// Expired first (nothing is worse), then not yet valid (every TLS
    /// client refuses it today), then by time left.
    pub fn status(&self, now: Timestamp, thresholds: &Thresholds) -> Status {
        match self.expiry_status(now, thresholds) {
            Status::Expired => Status::Expired,
            _ if self.not_before.is_some_and(|from| from > now) => Status::NotYetValid,
            by_expiry => by_expiry,
        }
    }

    /// The status by time left alone, whatever `not_before` says.
    pub fn expiry_status(&self, now: Timestamp, thresholds: &Thresholds) -> Status {
        match self.expires_in(now) {
            None => Status::NoExpiry,
            Some(left) if left <= 0 => Status::Expired,
            Some(left) if left <= thresholds.critical => Status::Critical,
            Some(left) if left <= thresholds.warning => Status::Warning,
            Some(_) => Status::Ok,
        }
    }

    /// A stable order: soonest expiry first, never-expiring last.
    pub fn sort_key(&self) -> impl Ord + '_ {
        (
            self.not_after.is_none(),
            self.not_after,
            &self.path,
            &self.entry,
            self.index,
            self.fingerprint,
        )
    }
}

/// Warning and critical windows, in seconds before not_after.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Thresholds {
    pub warning: i64,
    pub critical: i64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            warning: 30 * 86_400,
            critical: 7 * 86_400,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Ok,
    Warning,
    Critical,
    Expired,
    NoExpiry,
    /// `not_before` is still ahead.
    NotYetValid,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warning => "warning",
            Status::Critical => "critical",
            Status::Expired => "expired",
            Status::NoExpiry => "no-expiry",
            Status::NotYetValid => "not-yet-valid",
        }
    }
}

/// Why something could not be read, as a small fixed set (metric label values).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ErrorReason {
    /// The file could not be opened or read (permissions, I/O).
    Read,
    /// The path does not exist, or a symlink points nowhere.
    NotFound,
    /// A symlink cycle.
    Loop,
    /// Larger than a cap: the file size, or a per-file cap on error
    /// entries, credentials, PEM blocks, documents, references or PKCS#12
    /// key-derivation work (`src/parse/record.rs`, `pkcs12_cost.rs`).
    TooLarge,
    /// Looked like a credential but did not decode.
    Parse,
    /// A PKCS#12 store whose password is missing or wrong.
    Password,
    /// The Kubernetes API refused lapse (401/403): a permission is missing.
    Forbidden,
    /// The Kubernetes API could not be reached or answered with an error.
    Unreachable,
    /// The Kubernetes API asked lapse to slow down (429).
    Throttled,
    /// A watch's resource version expired (410 Gone): lapse re-lists.
    Expired,
    /// The source's task ended or panicked; lapse restarts it with backoff.
    Stopped,
}

/// Where an [`ErrorReason`] can arise, and so which sources count it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReasonScope {
    /// Reading a file (walks and references): file sources only.
    Filesystem,
    /// Decoding bytes, wherever they came from: every source.
    Content,
    /// Talking to an API: API sources only.
    Api,
    /// A source's own task: every source.
    Task,
}

impl ErrorReason {
    /// Every reason, in label order; a test holds it complete.
    pub const ALL: [ErrorReason; 11] = [
        ErrorReason::Read,
        ErrorReason::NotFound,
        ErrorReason::Loop,
        ErrorReason::TooLarge,
        ErrorReason::Parse,
        ErrorReason::Password,
        ErrorReason::Forbidden,
        ErrorReason::Unreachable,
        ErrorReason::Throttled,
        ErrorReason::Expired,
        ErrorReason::Stopped,
    ];

    pub fn scope(self) -> ReasonScope {
        match self {
            ErrorReason::Read | ErrorReason::NotFound | ErrorReason::Loop => {
                ReasonScope::Filesystem
            }
            ErrorReason::TooLarge | ErrorReason::Parse | ErrorReason::Password => {
                ReasonScope::Content
            }
            ErrorReason::Forbidden
            | ErrorReason::Unreachable
            | ErrorReason::Throttled
            | ErrorReason::Expired => ReasonScope::Api,
            ErrorReason::Stopped => ReasonScope::Task,
        }
    }

    /// The reasons a source that reads files (`files`) or an API (`api`) can count.
    pub fn counted_by(files: bool, api: bool) -> Vec<ErrorReason> {
        Self::ALL
            .into_iter()
            .filter(|r| match r.scope() {
                ReasonScope::Filesystem => files,
                ReasonScope::Api => api,
                ReasonScope::Content | ReasonScope::Task => true,
            })
            .collect()
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorReason::Read => "read",
            ErrorReason::NotFound => "not_found",
            ErrorReason::Loop => "loop",
            ErrorReason::TooLarge => "too_large",
            ErrorReason::Parse => "parse",
            ErrorReason::Password => "password",
            ErrorReason::Forbidden => "forbidden",
            ErrorReason::Unreachable => "unreachable",
            ErrorReason::Throttled => "throttled",
            ErrorReason::Expired => "expired",
            ErrorReason::Stopped => "stopped",
        }
    }
}

/// Something that looked like a credential but could not be read. The
/// message names what is wrong and never quotes the input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErrorEntry {
    pub path: String,
    pub entry: Option<String>,
    pub reason: ErrorReason,
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_boundaries() {
        let t = Thresholds {
            warning: 100,
            critical: 10,
        };
        let c = |left: i64| Credential::new(Kind::X509, Fingerprint::of(b"x")).expiring(Some(left));
        assert_eq!(c(0).status(0, &t), Status::Expired);
        assert_eq!(c(-5).status(0, &t), Status::Expired);
        assert_eq!(c(1).status(0, &t), Status::Critical);
        assert_eq!(c(10).status(0, &t), Status::Critical);
        assert_eq!(c(11).status(0, &t), Status::Warning);
        assert_eq!(c(100).status(0, &t), Status::Warning);
        assert_eq!(c(101).status(0, &t), Status::Ok);
        let never = Credential::new(Kind::Jwt, Fingerprint::of(b"x"));
        assert_eq!(never.status(0, &t), Status::NoExpiry);
        let mut early = c(1_000);
        early.not_before = Some(1);
        assert_eq!(early.status(0, &t), Status::NotYetValid);
        assert_eq!(early.status(1, &t), Status::Ok);
        early.not_after = Some(5);
        assert_eq!(early.status(0, &t), Status::NotYetValid);
        assert_eq!(early.expiry_status(0, &t), Status::Critical);
        early.not_after = Some(0);
        assert_eq!(early.status(0, &t), Status::Expired);
    }

    #[test]
    fn every_reason_is_in_all_once() {
        // A new variant fails to compile here until it is placed in ALL.
        let position = |r: ErrorReason| match r {
            ErrorReason::Read => 0,
            ErrorReason::NotFound => 1,
            ErrorReason::Loop => 2,
            ErrorReason::TooLarge => 3,
            ErrorReason::Parse => 4,
            ErrorReason::Password => 5,
            ErrorReason::Forbidden => 6,
            ErrorReason::Unreachable => 7,
            ErrorReason::Throttled => 8,
            ErrorReason::Expired => 9,
            ErrorReason::Stopped => 10,
        };
        for (i, r) in ErrorReason::ALL.into_iter().enumerate() {
            assert_eq!(position(r), i, "{r:?}");
        }
    }

    #[test]
    fn kinds_and_sources_have_one_spelling() {
        for k in Kind::ALL {
            assert_eq!(k.to_string().parse::<Kind>(), Ok(k));
        }
        for s in Source::ALL {
            assert_eq!(s.to_string().parse::<Source>(), Ok(s));
        }
        assert_eq!(
            "pgp".parse::<Kind>(),
            Err("\"pgp\": use x509, jwt, bootstrap-token or opaque-token".to_string())
        );
        assert_eq!(
            "disk".parse::<Source>(),
            Err("\"disk\": use file, kubeconfig, secret or configmap".to_string())
        );
    }

    #[test]
    fn fingerprint_renders_as_prefixed_hex() {
        assert_eq!(
            Fingerprint::of(b"abc").to_string(),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(Fingerprint::of(b"abc").short(8), "ba7816bf");
        assert_eq!(Fingerprint::of(b"abc").short(7), "ba7816b");
        assert_eq!(
            Fingerprint::of(b"abc").short(64),
            Fingerprint::of(b"abc").text()["sha256:".len()..]
        );
        assert_eq!(super::hex_lower(&[0x00, 0x0f, 0xa0, 0xff]), "000fa0ff");
    }
}

#[cfg(all(test, target_pointer_width = "64"))]
mod size {
    /// One record is kept per credential found, for as long as it stands:
    /// a field that grows it should be boxed, or earn its place.
    #[test]
    fn a_credential_record_stays_small() {
        assert_eq!(std::mem::size_of::<super::Credential>(), 168);
        assert_eq!(std::mem::size_of::<super::Identity>(), 40);
    }
}
