//! One full scan: discover files, read each under the size cap, parse,
//! follow the files parsed documents refer to, and collect credentials
//! and error entries. A bad file never stops the scan.

use crate::credential::{Credential, ErrorEntry, ErrorReason, Source};
use crate::parse::{self, FileRef, Parsed, RefKind};
use crate::source::files::{self, Filter};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Files larger than this are not read unless configured otherwise:
/// `kubectl get secrets -A -o yaml` dumps run to megabytes.
pub const DEFAULT_MAX_FILE_SIZE: u64 = 16 << 20;

#[derive(Debug, Clone)]
pub struct ScanOptions {
    pub filter: Filter,
    pub max_file_size: u64,
    /// `$HOME`, for `~/` in kubeconfig references.
    pub home: Option<PathBuf>,
}

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions {
            filter: Filter::default(),
            max_file_size: DEFAULT_MAX_FILE_SIZE,
            home: std::env::var_os("HOME").map(PathBuf::from),
        }
    }
}

/// What a scan found.
#[derive(Debug, Default)]
pub struct ScanResult {
    pub credentials: Vec<Credential>,
    pub errors: Vec<ErrorEntry>,
}

impl ScanResult {
    fn absorb(&mut self, parsed: Parsed) -> Vec<FileRef> {
        self.credentials.extend(parsed.credentials);
        self.errors.extend(parsed.errors);
        parsed.refs
    }

    /// Sorted: soonest expiry first; errors by path.
    pub fn sort(&mut self) {
        self.credentials
            .sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
        self.errors
            .sort_by(|a, b| (&a.path, &a.entry, &a.message).cmp(&(&b.path, &b.entry, &b.message)));
    }
}

/// Scans files and directories. `stdin` is parsed as one more file named `-`.
pub fn scan(roots: &[PathBuf], stdin: Option<&[u8]>, opts: &ScanOptions) -> ScanResult {
    let (paths, walk_errors) = files::discover(roots, &opts.filter);
    let mut result = ScanResult {
        errors: walk_errors,
        ..Default::default()
    };
    let mut refs = Vec::new();
    if let Some(bytes) = stdin {
        refs.extend(result.absorb(parse::parse_file("-", bytes)));
    }
    for parsed in parse_all(&paths, opts.max_file_size) {
        refs.extend(result.absorb(parsed));
    }
    let walked = result.credentials.len();
    follow_refs(refs, &paths, opts, &mut result);
    drop_plain_duplicates(&mut result.credentials, walked);
    result.sort();
    result
}

/// A certificate or token file that a kubeconfig points at, and that the
/// walk also reached, is reported once: with the kubeconfig's entry, which
/// says what depends on it. `walked` splits walk findings from reference
/// findings.
fn drop_plain_duplicates(creds: &mut Vec<Credential>, walked: usize) {
    let referenced: HashSet<_> = creds[walked..]
        .iter()
        .filter(|c| c.source == Source::Kubeconfig)
        .map(|c| c.fingerprint)
        .collect();
    if referenced.is_empty() {
        return;
    }
    let by_file: HashSet<_> = creds[walked..]
        .iter()
        .filter(|c| referenced.contains(&c.fingerprint))
        .filter_map(|c| Some((file_id(Path::new(&c.path))?, c.fingerprint)))
        .collect();
    let mut i = 0;
    creds.retain(|c| {
        i += 1;
        let plain = i <= walked && c.source == Source::File && c.entry.is_none();
        !(plain
            && referenced.contains(&c.fingerprint)
            && file_id(Path::new(&c.path)).is_some_and(|id| by_file.contains(&(id, c.fingerprint))))
    });
}

/// Reads and parses files on every core; order of results is not kept.
fn parse_all(paths: &[PathBuf], cap: u64) -> Vec<Parsed> {
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(paths.len().max(1));
    let next = AtomicUsize::new(0);
    let results = Mutex::new(Vec::with_capacity(paths.len()));
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                let mut local = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(path) = paths.get(i) else { break };
                    local.push(parse_path(path, cap));
                }
                results
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .extend(local);
            });
        }
    });
    results.into_inner().unwrap_or_else(|p| p.into_inner())
}

fn parse_path(path: &Path, cap: u64) -> Parsed {
    tracing::debug!(path = %path.display(), "reading");
    match files::read_capped(path, cap) {
        Ok(bytes) => parse::parse_file(&path.to_string_lossy(), &bytes),
        Err(e) => Parsed {
            errors: vec![e],
            ..Default::default()
        },
    }
}

/// The identity of the file at `path` (symlinks followed).
fn file_id(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// Reads what kubeconfigs point at: certificate and token files, and the
/// exec plugins' token caches. Each referenced file is read once per entry.
/// A cache is parsed as a file of its own, so one the scan has already
/// read (`lapse check ~/.kube`), or that another kubeconfig pointed at,
/// is not read again: it would be reported twice.
fn follow_refs(
    refs: Vec<FileRef>,
    scanned: &[PathBuf],
    opts: &ScanOptions,
    result: &mut ScanResult,
) {
    let mut done = HashSet::new();
    let mut caches_read: Option<HashSet<(u64, u64)>> = None;
    for mut r in refs {
        if let (Ok(rest), Some(home)) = (r.path.strip_prefix("~"), &opts.home) {
            r.path = home.join(rest);
        }
        if !done.insert((r.path.clone(), r.entry.clone())) {
            continue;
        }
        if r.kind == RefKind::Any {
            let read = caches_read
                .get_or_insert_with(|| scanned.iter().filter_map(|p| file_id(p)).collect());
            if r.path.is_dir() {
                let (paths, errors) =
                    files::discover(std::slice::from_ref(&r.path), &Filter::default());
                result.errors.extend(errors);
                let unread: Vec<PathBuf> = paths
                    .into_iter()
                    .filter(|p| file_id(p).is_none_or(|id| read.insert(id)))
                    .collect();
                for parsed in parse_all(&unread, opts.max_file_size) {
                    result.absorb(parsed);
                }
                continue;
            }
            if file_id(&r.path).is_some_and(|id| !read.insert(id)) {
                continue;
            }
        }
        match files::read_capped(&r.path, opts.max_file_size) {
            Ok(bytes) => {
                result.absorb(parse::parse_reference(&r, &bytes));
            }
            Err(e) if r.optional && e.reason == ErrorReason::NotFound => {}
            Err(e) => result.errors.push(ErrorEntry {
                path: r.from.clone(),
                entry: Some(r.entry.clone()),
                reason: e.reason,
                message: format!("{}: {}", e.path, e.message),
            }),
        }
    }
}
