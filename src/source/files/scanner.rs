//! Scanning: discover files, read each under the size cap, parse it (with
//! the `tokens:` rules that name it), follow the files parsed documents
//! refer to.
//!
//! A [`Scanner`] remembers what each file looked like and re-reads only
//! what changed (a new signature, or a changed file it refers to), so
//! `lapse serve` can rescan on every filesystem event and `lapse check`
//! is simply one scan. A bad file never stops a scan, and nothing here
//! looks inside bytes: that is [`crate::parse`]'s.

use super::read::{self, Accept, LocalDev};
use super::walk::{self, Filter, Found, Signature};
use crate::credential::{Credential, ErrorEntry, ErrorReason};
use crate::inventory::{FileId, Origin, Part, SourceReport, Via};
use crate::parse::{self, FileRef, MAX_ERRORS, RefKind, TokenRule};
use crate::paths::{PathKey, SharedPath};
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Files larger than this are not read unless configured otherwise:
/// `kubectl get secrets -A -o yaml` dumps run to megabytes.
pub const DEFAULT_MAX_FILE_SIZE: u64 = 16 << 20;

#[derive(Debug, Clone)]
pub struct ScanOptions {
    pub filter: Filter,
    pub max_file_size: u64,
    /// `$HOME`, for `~/` in kubeconfig references.
    pub home: Option<PathBuf>,
    pub token_rules: Vec<TokenRule>,
    /// PKCS#12 passwords from configuration.
    pub passwords: Vec<String>,
    /// How long one file's read may take (`files.read_timeout`).
    pub read_timeout: std::time::Duration,
    /// The most inotify watches `serve` adds (`files.max_watches`); `None`:
    /// only the kernel's limit.
    pub max_watches: Option<usize>,
}

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions {
            filter: Filter::default(),
            max_file_size: DEFAULT_MAX_FILE_SIZE,
            home: std::env::var_os("HOME").map(PathBuf::from),
            token_rules: Vec::new(),
            passwords: Vec::new(),
            read_timeout: read::DEFAULT_READ_TIMEOUT,
            max_watches: None,
        }
    }
}

impl ScanOptions {
    /// Reads `path` under the cap and the deadline; `named`: a root,
    /// which may be a pipe; `local_dev`: a walked file on a local
    /// filesystem, read in place (see [`read`]).
    fn read(
        &self,
        path: &Path,
        named: bool,
        local_dev: LocalDev,
    ) -> Result<(Vec<u8>, Signature), ErrorEntry> {
        let (cap, timeout) = (self.max_file_size, self.read_timeout);
        match (named, local_dev) {
            (true, _) => read::read(path, cap, Accept::Named, timeout),
            (false, Some(dev)) => read::read_local(path, cap, dev, timeout),
            (false, None) => read::read(path, cap, Accept::Regular, timeout),
        }
    }
}

struct FileState {
    sig: Signature,
    /// Files the part depends on (references, caches) and how they looked.
    deps: Box<[(PathBuf, Option<Signature>)]>,
    part: Arc<Part>,
}

/// What one [`Scanner::scan`] changed.
#[derive(Debug, Default)]
pub struct ScanDelta {
    /// Files read and parsed (new or changed).
    pub parsed: usize,
    /// Files gone since the last scan.
    pub removed: usize,
    /// Error entries met for the first time (walk errors new since the
    /// last walk, and errors in files parsed now): what counters count.
    pub new_errors: Vec<ErrorEntry>,
}

impl ScanDelta {
    pub fn changed(&self) -> bool {
        self.parsed > 0 || self.removed > 0 || !self.new_errors.is_empty()
    }
}

/// What an event asks to rescan.
enum Scope {
    Full,
    Path(PathBuf),
    Dependencies,
    Ignore,
}

fn deps_changed(deps: &[(PathBuf, Option<Signature>)]) -> bool {
    deps.iter().any(|(dep, sig)| Signature::stat(dep) != *sig)
}

/// The file source's memory between scans.
pub struct Scanner {
    opts: ScanOptions,
    /// By [`PathKey`]: a directory's files are one range of the map.
    files: BTreeMap<PathKey, FileState>,
    walk_errors: Vec<ErrorEntry>,
    /// The roots last scanned: named on purpose, so they may be pipes.
    roots: Vec<PathBuf>,
}

impl Scanner {
    pub fn new(opts: ScanOptions) -> Self {
        Scanner {
            opts,
            files: BTreeMap::new(),
            walk_errors: Vec::new(),
            roots: Vec::new(),
        }
    }

    /// Walks `roots`; re-reads files that are new or whose signature, or a
    /// referenced file's, changed; forgets files that are gone.
    pub fn scan(&mut self, roots: &[PathBuf]) -> ScanDelta {
        self.roots = roots.to_vec();
        self.scan_scopes(roots, true)
    }

    /// Rescans only what filesystem events touched: the directory of each
    /// changed path (inside a walked directory), a root file, or the files
    /// that refer to a changed file. Falls back to a full scan when an
    /// event cannot be placed. Events on paths lapse does not read are ignored.
    pub fn rescan_events(&mut self, roots: &[PathBuf], events: &[PathBuf]) -> ScanDelta {
        self.roots = roots.to_vec();
        let mut scopes: Vec<PathBuf> = Vec::new();
        for event in events {
            match self.scope_for(roots, event) {
                Scope::Full => return self.scan(roots),
                Scope::Path(p) => scopes.push(p),
                Scope::Dependencies | Scope::Ignore => {}
            }
        }
        scopes.sort();
        scopes.dedup();
        // A scope inside another is covered by it.
        let mut outer: Vec<PathBuf> = Vec::new();
        for s in scopes {
            if !outer.iter().any(|o| s.starts_with(o)) {
                outer.push(s);
            }
        }
        self.scan_scopes(&outer, false)
    }

    fn tracked_under(&self, dir: &Path) -> bool {
        self.files
            .range(PathKey::of(dir)..)
            .next()
            .is_some_and(|(p, _)| p.0.starts_with(dir) && *p.0 != *dir)
    }

    fn scope_for(&self, roots: &[PathBuf], event: &Path) -> Scope {
        for root in roots {
            if root == event {
                return if root.is_dir() {
                    Scope::Full
                } else {
                    Scope::Path(root.clone())
                };
            }
            if root.is_dir() {
                if !event.starts_with(root) {
                    continue;
                }
                let mut dir = event.parent();
                while let Some(d) = dir {
                    if d == root.as_path() || !d.starts_with(root) {
                        return Scope::Full;
                    }
                    if self.tracked_under(d) {
                        return Scope::Path(d.to_path_buf());
                    }
                    dir = d.parent();
                }
                return Scope::Full;
            }
            // A file root is replaced through its directory (rename, `..data`
            // swap), here or where its symlink points.
            let same_dir = |r: &Path| r.parent().is_some_and(|p| Some(p) == event.parent());
            if same_dir(root) || std::fs::canonicalize(root).is_ok_and(|real| same_dir(&real)) {
                return Scope::Path(root.clone());
            }
        }
        let touches = |dep: &Path| {
            dep == event || dep.parent() == event.parent() || dep.parent() == Some(event)
        };
        if self
            .files
            .values()
            .any(|s| s.deps.iter().any(|(d, _)| touches(d)))
        {
            Scope::Dependencies
        } else {
            Scope::Ignore
        }
    }

    /// Scans `scopes` (all roots when `full`); files tracked under a scope
    /// but no longer found are forgotten. Files elsewhere are re-read only
    /// if something they refer to changed.
    fn scan_scopes(&mut self, scopes: &[PathBuf], full: bool) -> ScanDelta {
        if full && self.files.is_empty() {
            return self.first_scan(scopes);
        }
        let (mut found, walk_errors) = walk::discover(scopes, &self.opts.filter);
        let in_scope = |p: &Path| full || scopes.iter().any(|s| p.starts_with(s));
        let mut delta = ScanDelta::default();
        let old_walk: HashSet<(&str, &str)> = self
            .walk_errors
            .iter()
            .map(|e| (e.path.as_str(), e.message.as_str()))
            .collect();
        delta.new_errors.extend(
            walk_errors
                .iter()
                .filter(|e| !old_walk.contains(&(e.path.as_str(), e.message.as_str())))
                .cloned(),
        );
        let present: HashSet<&Path> = found.iter().map(|f| f.path.as_path()).collect();
        if full {
            let before = self.files.len();
            self.files.retain(|p, _| present.contains(&*p.0));
            delta.removed = before - self.files.len();
        } else {
            // Only the tracked files under each scope: a range of the map.
            let gone: Vec<PathKey> = scopes
                .iter()
                .flat_map(|scope| {
                    self.files
                        .range(PathKey::of(scope)..)
                        .take_while(move |(p, _)| p.0.starts_with(scope))
                        .map(|(p, _)| p.clone())
                })
                .filter(|p| !present.contains(&*p.0))
                .collect();
            for p in &gone {
                self.files.remove(p);
            }
            delta.removed = gone.len();
            // A file also reached outside the scopes keeps its plainer path
            // until the next full scan settles it.
            let ids: HashSet<FileId> = found.iter().map(|f| f.sig.id()).collect();
            let elsewhere: HashSet<FileId> = self
                .files
                .iter()
                .filter(|(p, s)| ids.contains(&s.sig.id()) && !in_scope(&p.0))
                .map(|(_, s)| s.sig.id())
                .collect();
            found.retain(|f| !elsewhere.contains(&f.sig.id()));
            let dependents: Vec<Found> = self
                .files
                .iter()
                .filter(|(p, s)| !s.deps.is_empty() && !in_scope(&p.0) && deps_changed(&s.deps))
                .filter_map(|(p, _)| {
                    Some(Found {
                        path: p.0.to_path_buf(),
                        sig: Signature::stat(&p.0)?,
                        local_dev: None,
                    })
                })
                .collect();
            found.extend(dependents);
        }
        let stale: Vec<&Found> = found
            .iter()
            .filter(|f| match self.files.get(&PathKey::of(&f.path)) {
                None => true,
                Some(state) => state.sig != f.sig || deps_changed(&state.deps),
            })
            .collect();
        let (opts, roots) = (&self.opts, &self.roots);
        let scanned = crate::par::map(&stale, |f| {
            let named = roots.contains(&f.path);
            (f.sig, scan_file(f, named, opts))
        });
        delta.parsed = scanned.len();
        let states = scanned.into_iter().map(|(sig, (part, deps))| {
            delta.new_errors.extend(part.errors.iter().cloned());
            let state = FileState {
                sig,
                deps: deps.into(),
                part: Arc::new(part),
            };
            (PathKey(state.part.path.clone()), state)
        });
        self.files.extend(states);
        if full {
            self.walk_errors = walk_errors;
        } else {
            self.walk_errors.retain(|e| !in_scope(Path::new(&e.path)));
            self.walk_errors.extend(walk_errors);
        }
        delta
    }

    /// The first scan: see [`read_all`].
    fn first_scan(&mut self, roots: &[PathBuf]) -> ScanDelta {
        let (kept, walk_errors) =
            read_all(roots, &self.opts, |f| f, |f| (&*f.part.path, f.sig.id()));
        let mut delta = ScanDelta {
            parsed: kept.len(),
            new_errors: walk_errors.clone(),
            ..Default::default()
        };
        self.files = kept
            .into_iter()
            .map(|f| {
                delta.new_errors.extend(f.part.errors.iter().cloned());
                let key = PathKey(f.part.path.clone());
                let state = FileState {
                    sig: f.sig,
                    deps: f.deps.into(),
                    part: f.part,
                };
                (key, state)
            })
            .collect();
        self.walk_errors = walk_errors;
        delta
    }

    /// Every part, in path order.
    pub fn parts(&self) -> Vec<Arc<Part>> {
        self.files.values().map(|s| s.part.clone()).collect()
    }

    pub fn walk_errors(&self) -> &[ErrorEntry] {
        &self.walk_errors
    }

    /// Paths the parts depend on outside the walked roots (referenced
    /// files, caches): a watcher should watch their directories too.
    pub fn dependencies(&self) -> Vec<PathBuf> {
        let mut deps: Vec<PathBuf> = self
            .files
            .values()
            .flat_map(|s| s.deps.iter().map(|(p, _)| p.clone()))
            .collect();
        deps.sort();
        deps.dedup();
        deps
    }
}

/// Every file under `roots` read and parsed, each once, in path order,
/// with the walk's errors. Nothing is known beforehand, so each file's
/// signature comes from its open file instead of a stat of its path first:
/// that halves the metadata calls and moves all of them onto the workers.
/// A file reached twice (a symlink) is parsed twice and kept once.
///
/// `keep` makes what is kept of each file (`key`: its path and identity,
/// for the dedupe) on the worker that read it: a one-shot read keeps only
/// the part.
fn read_all<T: Send>(
    roots: &[PathBuf],
    opts: &ScanOptions,
    keep: impl Fn(ReadFile) -> T + Sync,
    key: impl Fn(&T) -> (&Path, FileId),
) -> (Vec<T>, Vec<ErrorEntry>) {
    // Files are read while the walk goes on.
    let (per_worker, mut walk_errors) = crate::par::map_streamed(
        |emit| walk::walk_each(roots, &opts.filter, &mut |path, local| emit((path, local))),
        |(path, local_dev): (PathBuf, LocalDev)| {
            tracing::trace!(path = %path.display(), "reading");
            let named = roots.contains(&path);
            let ((part, deps), sig) = match opts.read(&path, named, local_dev) {
                Ok((bytes, sig)) => (scan_bytes(&path, &bytes, Some(sig), opts), sig),
                // Unreadable but there: an error part, as later scans give it.
                Err(e) => {
                    let sig = Signature::stat(&path).ok_or_else(|| Box::new(e.clone()))?;
                    let part = Part {
                        path: path.into(),
                        errors: Box::new([e]),
                        ..Default::default()
                    };
                    ((part, Vec::new()), sig)
                }
            };
            // Boxed: a vector of results is as wide as its widest member.
            Ok::<_, Box<ErrorEntry>>(keep(ReadFile {
                sig,
                part: Arc::new(part),
                deps,
            }))
        },
    );
    // One copy, of small records, at its exact size; each worker's vector
    // is freed once emptied.
    let mut read = Vec::with_capacity(per_worker.iter().map(Vec::len).sum());
    for r in per_worker.into_iter().flatten() {
        match r {
            Ok(item) => read.push(item),
            Err(e) => walk_errors.push(*e),
        }
    }
    walk::dedupe(&mut read, key);
    (read, walk_errors)
}

/// One-shot read of files and directories, as a report for the
/// inventory; `stdin` is parsed as a file named `-`. What a [`Scanner`]'s
/// first scan reads, without the map it keeps for later scans.
pub fn read_once(roots: &[PathBuf], stdin: Option<&[u8]>, opts: &ScanOptions) -> SourceReport {
    let stdin = stdin.map(|bytes| scan_bytes(Path::new("-"), bytes, None, opts).0);
    // What the file gave, with its identity for the dedupe: 24 bytes a
    // file, not the 80 of what a scanner keeps.
    let keep = |f: ReadFile| (f.sig.id(), f.part);
    let (files, walk_errors) = read_all(roots, opts, keep, |(id, part)| (&*part.path, *id));
    let parts: Vec<Arc<Part>> = stdin
        .into_iter()
        .map(Arc::new)
        .chain(files.into_iter().map(|(_, part)| part))
        .collect();
    SourceReport {
        parts,
        errors: walk_errors,
        up: true,
        last_scan: Some(crate::timefmt::now()),
    }
}

type Deps = Vec<(PathBuf, Option<Signature>)>;

/// A file the first scan read: how it looked, what it gave (its path is
/// the part's), what it depends on.
struct ReadFile {
    sig: Signature,
    part: Arc<Part>,
    deps: Deps,
}

fn scan_file(found: &Found, named: bool, opts: &ScanOptions) -> (Part, Deps) {
    tracing::trace!(path = %found.path.display(), "reading");
    match opts.read(&found.path, named, found.local_dev) {
        Ok((bytes, _)) => scan_bytes(&found.path, &bytes, Some(found.sig), opts),
        Err(e) => (
            Part {
                path: found.path.as_path().into(),
                errors: Box::new([e]),
                ..Default::default()
            },
            Vec::new(),
        ),
    }
}

/// Parses one file's bytes, then what it refers to.
fn scan_bytes(
    path: &Path,
    bytes: &[u8],
    sig: Option<Signature>,
    opts: &ScanOptions,
) -> (Part, Deps) {
    let label = path.to_string_lossy();
    let rules: Vec<&TokenRule> = opts
        .token_rules
        .iter()
        .filter(|r| r.matches_path(path))
        .collect();
    let mtime = sig.map(|s| s.mtime);
    let mut parsed = parse::parse_file_with_rules(&label, bytes, &opts.passwords, &rules, mtime);
    let mut found = Gathered {
        credentials: std::mem::take(&mut parsed.credentials),
        reached: Vec::new(),
        errors: std::mem::take(&mut parsed.errors),
    };
    let own_errors = found.errors.len();
    let deps = follow_refs(parsed.refs, opts, &mut found);
    cap_reference_errors(&mut found, own_errors, &label);
    // Most files hold one credential, in a vector grown to room for four:
    // the part keeps each list at its exact size.
    let mut part = Part {
        path: SharedPath::new(path),
        credentials: found.credentials.into_boxed_slice(),
        file: sig.map(|s| s.id()),
        reached: found.reached.into_boxed_slice(),
        errors: found.errors.into_boxed_slice(),
    };
    part.share_path();
    (part, deps)
}

/// A part's lists while its references are followed.
struct Gathered {
    credentials: Vec<Credential>,
    reached: Vec<Origin>,
    errors: Vec<ErrorEntry>,
}

/// Each referenced file's entries are capped by its own parse; together
/// they are capped again, so a kubeconfig naming a thousand broken files
/// still yields at most [`MAX_ERRORS`] of theirs and one count of the rest.
fn cap_reference_errors(part: &mut Gathered, own_errors: usize, label: &str) {
    let from_refs = part.errors.len() - own_errors;
    if from_refs <= MAX_ERRORS {
        return;
    }
    part.errors.truncate(own_errors + MAX_ERRORS);
    part.errors.push(ErrorEntry {
        path: label.to_string(),
        entry: None,
        reason: ErrorReason::TooLarge,
        message: format!(
            "{} more errors in the files it refers to were dropped (at most {MAX_ERRORS} are kept)",
            from_refs - MAX_ERRORS
        ),
    });
}

/// Reads what a kubeconfig points at: certificate and token files, and the
/// exec plugins' token caches. Each referenced file is read once per entry.
fn follow_refs(refs: Vec<FileRef>, opts: &ScanOptions, part: &mut Gathered) -> Deps {
    let mut deps = Vec::new();
    let mut done = HashSet::new();
    let own = part.credentials.len();
    for mut r in refs {
        // A cache's entry names its exec user's: what the cache holds
        // stands for that user (see `inventory::assemble`).
        let exec = r.entry.strip_suffix(parse::CACHE_SUFFIX).and_then(|user| {
            part.credentials[..own]
                .iter()
                .position(|c| c.entry.as_deref() == Some(user))
                .and_then(|i| u32::try_from(i).ok())
        });
        let cache_via = Via::Cache { exec };
        if let (Ok(rest), Some(home)) = (r.path.strip_prefix("~"), &opts.home) {
            r.path = home.join(rest);
        }
        if !done.insert((r.path.clone(), r.entry.clone())) {
            continue;
        }
        let meta = std::fs::metadata(&r.path);
        deps.push((r.path.clone(), meta.as_ref().ok().map(Signature::of)));
        let is_dir = meta.as_ref().is_ok_and(|m| m.is_dir());
        if r.kind == RefKind::Any && is_dir {
            let (found, errors) = walk::discover(std::slice::from_ref(&r.path), &Filter::default());
            part.errors.extend(errors);
            for f in found {
                deps.push((f.path.clone(), Some(f.sig)));
                let (cache, _) = scan_file(&f, false, opts);
                let via = Origin {
                    file: Some(f.sig.id()),
                    via: cache_via,
                };
                part.reached
                    .extend(std::iter::repeat_n(via, cache.credentials.len()));
                part.credentials.extend(cache.credentials);
                part.errors.extend(cache.errors);
            }
            continue;
        }
        // Refused before opening: a device is never opened at all (the
        // open handle is checked again, against a swap).
        let refused = meta
            .as_ref()
            .ok()
            .and_then(|m| read::refusal(m, Accept::Regular));
        let read = match refused {
            Some(why) => Err(ErrorEntry {
                path: r.path.display().to_string(),
                entry: None,
                reason: ErrorReason::Read,
                message: why.to_string(),
            }),
            None => opts.read(&r.path, false, None),
        };
        match read {
            Ok((bytes, _)) => {
                let parsed = parse::parse_reference(&r, &bytes);
                let via = Origin {
                    file: deps.last().and_then(|(_, s)| s.map(|s| s.id())),
                    via: if r.kind == RefKind::Any {
                        cache_via
                    } else {
                        Via::Reference
                    },
                };
                part.reached
                    .extend(std::iter::repeat_n(via, parsed.credentials.len()));
                part.credentials.extend(parsed.credentials);
                part.errors.extend(parsed.errors);
            }
            Err(e) if r.optional && e.reason == ErrorReason::NotFound => {}
            Err(e) => part.errors.push(ErrorEntry {
                path: r.from.clone(),
                entry: Some(r.entry.clone()),
                reason: e.reason,
                message: format!("{}: {}", e.path, e.message),
            }),
        }
    }
    deps
}

#[cfg(test)]
mod tests {
    /// One is kept for every file a serve watches (100,000 at a time).
    #[test]
    fn a_file_state_stays_small() {
        assert_eq!(std::mem::size_of::<super::Signature>(), 48);
        assert_eq!(std::mem::size_of::<super::FileState>(), 72);
        assert_eq!(std::mem::size_of::<crate::paths::PathKey>(), 24);
    }

    /// The part and the credentials of a file share one copy of its path;
    /// a path that is no UTF-8 keeps its bytes, the credentials its lossy
    /// spelling.
    #[test]
    fn a_file_s_credentials_carry_its_part_s_path() {
        use std::os::unix::ffi::OsStrExt;
        use std::sync::Arc;
        let pem = |cn: &str| {
            let key = rcgen::KeyPair::generate().unwrap();
            let params = rcgen::CertificateParams::new(vec![cn.to_string()]).unwrap();
            params.self_signed(&key).unwrap().pem()
        };
        let bundle = pem("a.example") + &pem("b.example");
        let opts = super::ScanOptions::default();
        let path = std::path::Path::new("/etc/pki/bundle.pem");
        let (part, _) = super::scan_bytes(path, bundle.as_bytes(), None, &opts);
        let text = part.path.text().expect("a UTF-8 path is kept as text");
        assert_eq!(&**text, "/etc/pki/bundle.pem");
        assert_eq!(part.credentials.len(), 2);
        assert!(part.credentials.iter().all(|c| Arc::ptr_eq(&c.path, text)));
        assert_eq!(Arc::strong_count(text), 3);

        let odd = std::path::Path::new(std::ffi::OsStr::from_bytes(b"/etc/pki/b\xffd.pem"));
        let (part, _) = super::scan_bytes(odd, bundle.as_bytes(), None, &opts);
        assert_eq!(part.path.text(), None);
        assert_eq!(&*part.path, odd);
        assert_eq!(&*part.credentials[0].path, "/etc/pki/b\u{fffd}d.pem");
    }
}
