//! The current set of credentials, as every reader sees it, and the
//! record sources publish into it: a [`Part`] per file or object.
//!
//! Sources replace their whole part at once ([`Inventory::publish`]);
//! readers (metrics, the web page) take an immutable [`Snapshot`] and
//! never wait for a scan, never parse, never touch a file.

use crate::credential::{Credential, ErrorEntry, Fingerprint, Source, Timestamp};
use crate::paths::SharedPath;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};

/// A file's identity: (device, inode).
pub type FileId = (u64, u64);

/// How a credential in a [`Part`] was reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    /// In the file itself.
    Own,
    /// In a file the document refers to (a kubeconfig's `client-certificate`).
    Reference,
    /// In an exec plugin's token cache; `exec`: the position, in the same
    /// part, of the exec user the cache belongs to (listed with an unknown
    /// expiry until its cache is found).
    Cache { exec: Option<u32> },
}

/// A kubeconfig entry that uses a credential kept in another file: a
/// user's `client-certificate` or `tokenFile`, or an exec user whose
/// plugin cache holds the token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Use {
    /// The kubeconfig.
    pub path: String,
    /// The field in it: `users[ci].client-certificate`, `users[gke].exec`.
    pub entry: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Origin {
    /// The file the credential's bytes came from.
    pub file: Option<FileId>,
    pub via: Via,
}

/// Everything found in one file and the files it refers to.
#[derive(Debug)]
pub struct Part {
    /// Shared with the file source's key for the file.
    pub path: SharedPath,
    pub credentials: Box<[Credential]>,
    /// The file the part's own credentials were read from (`None` for an
    /// object or standard input).
    pub file: Option<FileId>,
    /// How the last `reached.len()` credentials were reached (references,
    /// token caches), one each; the ones before are the part's own. Most
    /// parts have none, and so keep no origin at all.
    pub reached: Box<[Origin]>,
    pub errors: Box<[ErrorEntry]>,
}

impl Part {
    /// Has the credentials that name the part's path carry the part's
    /// copy of it: one allocation for the file map, the part and them.
    pub fn share_path(&mut self) {
        let Some(text) = self.path.text() else { return };
        for c in &mut self.credentials {
            if *c.path == **text && !Arc::ptr_eq(&c.path, text) {
                c.path = text.clone();
            }
        }
    }

    /// How each credential was reached, in order.
    pub fn origins(&self) -> impl Iterator<Item = Origin> + '_ {
        let own = Origin {
            file: self.file,
            via: Via::Own,
        };
        let owned = self.credentials.len().saturating_sub(self.reached.len());
        std::iter::repeat_n(own, owned).chain(self.reached.iter().copied())
    }
}

impl Default for Part {
    fn default() -> Self {
        Part {
            path: Path::new("").into(),
            credentials: Box::default(),
            file: None,
            reached: Box::default(),
            errors: Box::default(),
        }
    }
}

/// One source's latest report.
#[derive(Debug, Clone, Default)]
pub struct SourceReport {
    pub parts: Vec<Arc<Part>>,
    /// Problems that belong to no part (walk errors, an unreachable API).
    pub errors: Vec<ErrorEntry>,
    pub up: bool,
    /// When the last scan finished.
    pub last_scan: Option<Timestamp>,
}

/// An immutable view of every source.
pub struct Snapshot {
    pub assembled: Assembled,
    /// Source name → its standing (parts are in `assembled`).
    pub sources: BTreeMap<&'static str, SourceStatus>,
    /// Errors that belong to no part, by source.
    pub errors: Vec<(&'static str, ErrorEntry)>,
    /// True once every source has completed a first scan.
    pub ready: bool,
}

#[derive(Debug, Clone, Copy)]
pub struct SourceStatus {
    pub up: bool,
    pub last_scan: Option<Timestamp>,
    /// How often the source scans at the least (seconds), so that a last
    /// scan older than a few of these shows a stalled source.
    pub rescan_interval: Option<i64>,
}

impl Snapshot {
    fn empty() -> Self {
        Snapshot {
            assembled: assemble(Vec::new()),
            sources: BTreeMap::new(),
            errors: Vec::new(),
            ready: false,
        }
    }

    /// Every error entry now standing.
    pub fn all_errors(&self) -> impl Iterator<Item = &ErrorEntry> {
        let part_errors = self.assembled.parts.iter().flat_map(|p| p.errors.iter());
        self.errors.iter().map(|(_, e)| e).chain(part_errors)
    }
}

pub struct Inventory {
    /// Sources that must report once before the inventory is ready.
    expected: Mutex<Vec<&'static str>>,
    intervals: Mutex<BTreeMap<&'static str, i64>>,
    reports: Mutex<BTreeMap<&'static str, SourceReport>>,
    current: RwLock<Arc<Snapshot>>,
}

impl Inventory {
    /// `sources`: the names that must report once before the inventory is ready.
    pub fn new(sources: &[&'static str]) -> Self {
        Inventory {
            expected: Mutex::new(sources.to_vec()),
            intervals: Mutex::default(),
            reports: Mutex::new(BTreeMap::new()),
            current: RwLock::new(Arc::new(Snapshot::empty())),
        }
    }

    /// Declares how often `source` scans at the least, in seconds.
    pub fn with_rescan_interval(mut self, source: &'static str, seconds: i64) -> Self {
        (self.intervals.get_mut().unwrap_or_else(|p| p.into_inner())).insert(source, seconds);
        self
    }

    /// Replaces `source`'s part of the inventory and publishes a new snapshot.
    pub fn publish(&self, source: &'static str, report: SourceReport) {
        let mut reports = self.reports.lock().unwrap_or_else(|p| p.into_inner());
        reports.insert(source, report);
        self.republish(&reports);
    }

    /// Marks `source` down with `error`, keeping its last credentials
    /// exported (they are still the best knowledge there is) and its other
    /// standing errors; the source's next report replaces all of it.
    pub fn mark_down(&self, source: &'static str, error: ErrorEntry) {
        let mut reports = self.reports.lock().unwrap_or_else(|p| p.into_inner());
        let report = reports.entry(source).or_default();
        report.up = false;
        report.errors.retain(|e| e.reason != error.reason);
        report.errors.push(error);
        self.republish(&reports);
    }

    /// Removes `source` and what it reported: a reload turned it off.
    pub fn retire(&self, source: &'static str) {
        let mut reports = self.reports.lock().unwrap_or_else(|p| p.into_inner());
        reports.remove(source);
        (self.expected.lock().unwrap_or_else(|p| p.into_inner())).retain(|s| *s != source);
        self.republish(&reports);
    }

    /// As [`Inventory::with_rescan_interval`], once running: a reload changed it.
    pub fn set_rescan_interval(&self, source: &'static str, seconds: i64) {
        let reports = self.reports.lock().unwrap_or_else(|p| p.into_inner());
        (self.intervals.lock().unwrap_or_else(|p| p.into_inner())).insert(source, seconds);
        self.republish(&reports);
    }

    fn republish(&self, reports: &BTreeMap<&'static str, SourceReport>) {
        let intervals = self.intervals.lock().unwrap_or_else(|p| p.into_inner());
        let parts: Vec<Arc<Part>> = reports
            .values()
            .flat_map(|r| r.parts.iter().cloned())
            .collect();
        let snapshot = Snapshot {
            assembled: assemble(parts),
            sources: reports
                .iter()
                .map(|(name, r)| {
                    (
                        *name,
                        SourceStatus {
                            up: r.up,
                            last_scan: r.last_scan,
                            rescan_interval: intervals.get(name).copied(),
                        },
                    )
                })
                .collect(),
            errors: reports
                .iter()
                .flat_map(|(name, r)| r.errors.iter().map(move |e| (*name, e.clone())))
                .collect(),
            ready: self
                .expected
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
                .all(|s| reports.contains_key(s)),
        };
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(snapshot);
    }

    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// The current set, with what is reported twice hidden.
pub struct Assembled {
    pub parts: Vec<Arc<Part>>,
    /// (part, credential) indices not to report.
    pub hidden: HashSet<(usize, usize)>,
    /// The kubeconfig entries that use each reported credential kept in a
    /// file of its own, in part order; absent for the rest.
    pub uses: HashMap<(usize, usize), Vec<Use>>,
}

impl Assembled {
    /// The kubeconfig entries that use the credential at (part, credential).
    pub fn used_by(&self, part: usize, credential: usize) -> &[Use] {
        self.uses
            .get(&(part, credential))
            .map_or(&[], Vec::as_slice)
    }

    pub fn credentials(&self) -> impl Iterator<Item = &Credential> {
        self.visible().map(|(_, _, c)| c)
    }

    /// (part index, credential index, credential) for everything reported.
    pub fn visible(&self) -> impl Iterator<Item = (usize, usize, &Credential)> {
        self.parts.iter().enumerate().flat_map(move |(pi, p)| {
            p.credentials
                .iter()
                .enumerate()
                .filter(move |(ci, _)| !self.hidden.contains(&(pi, *ci)))
                .map(move |(ci, c)| (pi, ci, c))
        })
    }
}

/// Applies the rules that make each credential appear once, with every
/// kubeconfig entry that uses it:
/// - a file a kubeconfig points at, also reached by the walk, is reported
///   with the kubeconfig's entry only;
/// - a file several entries point at (two users, two kubeconfigs) is
///   reported once, at the first of them, used by all;
/// - a token cache the walk reached is reported as walked, and a cache
///   two users or kubeconfigs share is reported once, used by all;
/// - an exec user whose cache was found is reported by what the cache
///   holds, not again with an unknown expiry.
pub fn assemble(parts: Vec<Arc<Part>>) -> Assembled {
    let mut hidden = HashSet::new();
    let mut uses: HashMap<(usize, usize), Vec<Use>> = HashMap::new();
    // Every rule needs a credential reached through a kubeconfig reference
    // or a token cache; a tree of plain files has none, and is done here.
    let followed = |o: &Origin| o.via != Via::Own && o.file.is_some();
    if !parts.iter().any(|p| p.reached.iter().any(followed)) {
        return Assembled {
            parts,
            hidden,
            uses,
        };
    }
    // The same credential in the same file: the first copy is reported.
    type Key = (FileId, Fingerprint, Option<u32>);
    let key = |id: FileId, c: &Credential| (id, c.fingerprint, c.index);
    let mut walked_files: HashSet<FileId> = HashSet::new();
    let mut walked: HashMap<Key, (usize, usize)> = HashMap::new();
    let mut referenced: HashSet<(FileId, Fingerprint)> = HashSet::new();
    for (pi, p) in parts.iter().enumerate() {
        for (ci, (c, o)) in p.credentials.iter().zip(p.origins()).enumerate() {
            match (o.via, o.file) {
                (Via::Own, Some(id)) => {
                    walked_files.insert(id);
                    walked.entry(key(id, c)).or_insert((pi, ci));
                }
                (Via::Reference, Some(id)) => {
                    referenced.insert((id, c.fingerprint));
                }
                _ => {}
            }
        }
    }
    let mut first: HashMap<Key, (usize, usize)> = HashMap::new();
    for (pi, p) in parts.iter().enumerate() {
        let kubeconfig = p.path.to_string_lossy();
        for (ci, (c, o)) in p.credentials.iter().zip(p.origins()).enumerate() {
            let Some(id) = o.file else { continue };
            let user = match o.via {
                Via::Own => {
                    if c.source == Source::File
                        && c.entry.is_none()
                        && referenced.contains(&(id, c.fingerprint))
                    {
                        hidden.insert((pi, ci));
                    }
                    continue;
                }
                Via::Reference => c.entry.clone(),
                Via::Cache { exec } => {
                    let exec = exec.map(|i| i as usize);
                    if let Some(i) = exec.filter(|&i| i < p.credentials.len()) {
                        hidden.insert((pi, i));
                    }
                    exec.and_then(|i| p.credentials.get(i)?.entry.clone())
                }
            };
            let shown = match o.via {
                Via::Cache { .. } if walked_files.contains(&id) => walked.get(&key(id, c)).copied(),
                _ => Some(*first.entry(key(id, c)).or_insert((pi, ci))),
            };
            if shown != Some((pi, ci)) {
                hidden.insert((pi, ci));
            }
            if let (Some(shown), Some(entry)) = (shown, user) {
                let use_ = Use {
                    path: kubeconfig.to_string(),
                    entry: entry.into(),
                };
                let list = uses.entry(shown).or_default();
                if !list.contains(&use_) {
                    list.push(use_);
                }
            }
        }
    }
    Assembled {
        parts,
        hidden,
        uses,
    }
}

/// For tests elsewhere: a snapshot of one `files` source whose one part
/// holds `credentials` (each its part's own) and `errors`, scanned at
/// `last_scan`.
#[cfg(test)]
pub fn files_snapshot(
    credentials: Vec<Credential>,
    errors: Vec<ErrorEntry>,
    last_scan: Option<Timestamp>,
) -> Arc<Snapshot> {
    let inventory = Inventory::new(&["files"]);
    let part = Part {
        path: Path::new("tree").into(),
        credentials: credentials.into(),
        errors: errors.into(),
        ..Part::default()
    };
    inventory.publish(
        "files",
        SourceReport {
            parts: vec![Arc::new(part)],
            errors: Vec::new(),
            up: true,
            last_scan,
        },
    );
    inventory.snapshot()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credential::{Credential, Kind};

    fn cred(path: &str, entry: Option<&str>, bytes: &[u8]) -> Credential {
        let mut c = Credential::new(Kind::X509, Fingerprint::of(bytes));
        c.path = path.into();
        c.entry = entry.map(Box::from);
        c
    }

    fn part(path: &str, found: Vec<(Credential, Via, Option<FileId>)>) -> Arc<Part> {
        let (credentials, origins): (Vec<_>, Vec<_>) = found
            .into_iter()
            .map(|(c, via, file)| (c, Origin { file, via }))
            .unzip();
        Arc::new(Part {
            path: Path::new(path).into(),
            credentials: credentials.into(),
            reached: origins.into(),
            ..Part::default()
        })
    }

    fn used(path: &str, entry: &str) -> Use {
        Use {
            path: path.into(),
            entry: entry.into(),
        }
    }

    #[test]
    fn a_part_gives_its_own_credentials_its_file_then_the_reached_their_origins() {
        let cache = Origin {
            file: Some((1, 20)),
            via: Via::Cache { exec: Some(1) },
        };
        let p = Part {
            path: Path::new("kubeconfig").into(),
            credentials: Box::new([
                cred("a", None, b"1"),
                cred("a", None, b"2"),
                cred("c", None, b"3"),
            ]),
            file: Some((1, 10)),
            reached: Box::new([cache]),
            ..Part::default()
        };
        let own = Origin {
            file: Some((1, 10)),
            via: Via::Own,
        };
        assert_eq!(p.origins().collect::<Vec<_>>(), vec![own, own, cache]);
        let bare = Part {
            credentials: Box::new([cred("-", None, b"1")]),
            ..Part::default()
        };
        let stdin = Origin {
            file: None,
            via: Via::Own,
        };
        assert_eq!(bare.origins().collect::<Vec<_>>(), vec![stdin]);
    }

    /// One is kept for every file and object lapse reads.
    #[cfg(target_pointer_width = "64")]
    #[test]
    fn a_part_stays_small() {
        assert_eq!(std::mem::size_of::<Part>(), 96);
    }

    #[test]
    fn one_file_two_kubeconfigs_use_is_reported_once_with_both_uses() {
        let crt = Some((1, 10));
        let a = part(
            "a.conf",
            vec![(
                cred("/pki/c.crt", Some("users[a].client-certificate"), b"c"),
                Via::Reference,
                crt,
            )],
        );
        let walked = part(
            "/pki/c.crt",
            vec![(cred("/pki/c.crt", None, b"c"), Via::Own, crt)],
        );
        let b = part(
            "b.conf",
            vec![(
                cred("/pki/c.crt", Some("users[b].client-certificate"), b"c"),
                Via::Reference,
                crt,
            )],
        );
        let assembled = assemble(vec![walked, a, b]);
        assert_eq!(assembled.hidden, HashSet::from([(0, 0), (2, 0)]));
        assert_eq!(
            assembled.used_by(1, 0),
            [
                used("a.conf", "users[a].client-certificate"),
                used("b.conf", "users[b].client-certificate"),
            ]
        );
        assert!(assembled.used_by(0, 0).is_empty());
    }

    #[test]
    fn an_exec_user_whose_cache_was_found_is_reported_by_the_cache() {
        let cache = Some((1, 20));
        let config = part(
            "config",
            vec![
                (
                    cred("config", Some("users[gke].exec"), b"exec"),
                    Via::Own,
                    Some((1, 2)),
                ),
                (
                    cred("config", Some("users[eks].exec"), b"eks"),
                    Via::Own,
                    Some((1, 2)),
                ),
                (
                    cred("cache", Some("access_token"), b"t"),
                    Via::Cache { exec: Some(0) },
                    cache,
                ),
            ],
        );
        let assembled = assemble(vec![config]);
        assert_eq!(assembled.hidden, HashSet::from([(0, 0)]));
        assert_eq!(assembled.used_by(0, 2), [used("config", "users[gke].exec")]);
    }
}
