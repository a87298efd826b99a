//! Where file bytes come from: a recursive walk with include/exclude
//! globs, symlinks followed with loop protection, each file once, and a
//! size cap on every read.
//!
//! Every problem becomes an [`ErrorEntry`] naming the path; nothing here
//! aborts a scan.

use super::read::{self, Accept, LocalDev};
pub use super::read::{Signature, io_error};
use crate::credential::{ErrorEntry, ErrorReason};
use globset::{Glob, GlobSet, GlobSetBuilder};
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::path::{Component, Path, PathBuf};

/// Include/exclude globs. A pattern without `/` matches file names; one
/// with `/` matches whole paths.
#[derive(Debug, Default, Clone)]
pub struct Filter {
    include: Option<GlobSet>,
    exclude: Option<GlobSet>,
}

fn glob_set(patterns: &[String]) -> Result<Option<GlobSet>, String> {
    if patterns.is_empty() {
        return Ok(None);
    }
    let mut builder = GlobSetBuilder::new();
    for p in patterns {
        let glob = Glob::new(p).map_err(|e| format!("invalid glob {p:?}: {}", e.kind()))?;
        builder.add(glob);
    }
    builder.build().map(Some).map_err(|e| e.to_string())
}

impl Filter {
    pub fn new(include: &[String], exclude: &[String]) -> Result<Self, String> {
        Ok(Filter {
            include: glob_set(include)?,
            exclude: glob_set(exclude)?,
        })
    }

    fn matches(set: &GlobSet, path: &Path) -> bool {
        set.is_match(path) || path.file_name().is_some_and(|n| set.is_match(n))
    }

    fn excluded(&self, path: &Path) -> bool {
        self.exclude
            .as_ref()
            .is_some_and(|s| Self::matches(s, path))
    }

    fn wanted_file(&self, path: &Path) -> bool {
        !self.excluded(path) && self.include.as_ref().is_none_or(|s| Self::matches(s, path))
    }
}

/// The files under `roots`, each once, and the problems met on the way.
///
/// A file reached by several paths (symlinks, the atomic-writer layout of
/// mounted Secrets: `tls.crt` → `..data/tls.crt` → `..2024_…/tls.crt`) is
/// reported under its plainest path: fewest `..`-hidden components, then
/// a name that says "certificate" (`Foo.pem` over the hash link
/// `a1b2c3d4.0` in `/etc/ssl/certs`), then shortest. Files named on the
/// command line are always read; walked files pass the filter.
///
/// Rotated certificates the kubelet has superseded are left out: beside
/// `kubelet-client-current.pem` (a link to the newest dated file), older
/// `kubelet-client-<date>.pem` files are history, not credentials in use.
pub fn discover(roots: &[PathBuf], filter: &Filter) -> (Vec<Found>, Vec<ErrorEntry>) {
    let (paths, mut errors) = walk(roots, filter);
    let mut found = Vec::with_capacity(paths.len());
    for (path, local_dev) in paths {
        match std::fs::metadata(&path) {
            Ok(meta) => found.push(Found {
                path,
                sig: Signature::of(&meta),
                local_dev,
            }),
            Err(e) => errors.push(io_error(&path, &e)),
        }
    }
    dedupe(&mut found, |f| (&f.path, f.sig.id()));
    (found, errors)
}

/// The paths under `roots` that name regular files (symlinks followed) and
/// pass the filter, and the roots that are not directories, unsorted and
/// not yet stat'ed: the walk reads directories only. With each path, its
/// directory's device when that is a local filesystem and the path is no
/// symlink ([`read::local_dir`]): such a file may be read in place.
pub fn walk(roots: &[PathBuf], filter: &Filter) -> (Vec<(PathBuf, LocalDev)>, Vec<ErrorEntry>) {
    let mut paths = Vec::new();
    let errors = walk_each(roots, filter, &mut |p, local| paths.push((p, local)));
    (paths, errors)
}

/// [`walk`], handing each path to `found` as soon as it is met.
pub fn walk_each(
    roots: &[PathBuf],
    filter: &Filter,
    found: &mut dyn FnMut(PathBuf, LocalDev),
) -> Vec<ErrorEntry> {
    let mut errors = Vec::new();
    for root in roots {
        let meta = match std::fs::metadata(root) {
            Ok(m) => m,
            Err(e) => {
                errors.push(io_error(root, &e));
                continue;
            }
        };
        if !meta.is_dir() {
            // Named on the command line: read it even when it is not a
            // regular file (`lapse check <(kubectl get secrets -o yaml)`).
            found(root.clone(), None);
            continue;
        }
        // By depth, the directories above the entry at hand: the walk is
        // depth-first, so the last directory met one level up is the parent.
        let mut dirs: Vec<LocalDev> = Vec::new();
        let walk = walkdir::WalkDir::new(root)
            .follow_links(true)
            .into_iter()
            .filter_entry(|e| e.depth() == 0 || !filter.excluded(e.path()));
        for entry in walk {
            match entry {
                Ok(e) if e.file_type().is_file() && filter.wanted_file(e.path()) => {
                    let parent = e.depth().checked_sub(1).and_then(|d| dirs.get(d));
                    let local = parent.copied().flatten().filter(|_| !e.path_is_symlink());
                    found(e.into_path(), local);
                }
                Ok(e) if e.file_type().is_dir() => {
                    dirs.truncate(e.depth());
                    dirs.push(read::local_dir(e.path()));
                }
                Ok(e) if !filter.wanted_file(e.path()) => {}
                // FIFOs, sockets, devices (symlinks followed): never opened,
                // and said so.
                Ok(e) => {
                    let refused = e.metadata().ok();
                    if let Some(why) = refused.and_then(|m| read::refusal(&m, Accept::Regular)) {
                        errors.push(ErrorEntry {
                            path: e.path().display().to_string(),
                            entry: None,
                            reason: ErrorReason::Read,
                            message: why.to_string(),
                        });
                    }
                }
                Err(err) => errors.push(walk_error(&err)),
            }
        }
    }
    errors
}

/// Each file once, under its plainest path (see [`discover`]), in path
/// order, superseded kubelet rotations left out, in place. `key`: an
/// item's path and file identity; the rest of an item rides along (what
/// was already read from the path, if anything).
pub fn dedupe<T>(items: &mut Vec<T>, key: impl Fn(&T) -> (&Path, (u64, u64))) {
    let mut best: HashMap<(u64, u64), usize> = HashMap::with_capacity(items.len());
    let mut keep = vec![false; items.len()];
    for (i, item) in items.iter().enumerate() {
        let (path, id) = key(item);
        match best.entry(id) {
            Entry::Vacant(v) => {
                v.insert(i);
                keep[i] = true;
            }
            Entry::Occupied(mut o) => {
                let j = *o.get();
                if rank(path) < rank(key(&items[j]).0) {
                    keep[j] = false;
                    keep[i] = true;
                    o.insert(i);
                }
            }
        }
    }
    drop(best);
    let mut kept = keep.into_iter();
    items.retain(|_| kept.next().unwrap_or(false));
    // One sort at the end (the walk itself is unsorted), in the scanner's
    // map order, so that map is built in one pass. Paths are unique now
    // (a path names one file), so an unstable sort gives the one order.
    items.sort_unstable_by(|a, b| crate::paths::cmp(key(a).0, key(b).0));
    drop_superseded_rotations(items, |item| key(item).0);
}

/// A file the walk found, with what it looked like then.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    pub path: PathBuf,
    pub sig: Signature,
    /// See [`walk`]: where the file may be read in place.
    pub local_dev: LocalDev,
}

/// Lower is plainer.
fn rank(path: &Path) -> (usize, bool, usize, PathBuf) {
    let hidden = path
        .components()
        .filter(|c| matches!(c, Component::Normal(n) if n.to_string_lossy().starts_with("..")))
        .count();
    let unnamed = !crate::parse::looks_like_credential_name(&path.to_string_lossy());
    (hidden, unnamed, path.as_os_str().len(), path.to_path_buf())
}

/// Removes `<prefix>-<anything>.pem` beside a kept `<prefix>-current.pem`.
/// The file `-current.pem` links to was folded into it by the dedupe, so
/// every sibling still listed is an older rotation.
fn drop_superseded_rotations<T>(files: &mut Vec<T>, path: impl Fn(&T) -> &Path) {
    let current: Vec<(PathBuf, String)> = files
        .iter()
        .map(&path)
        .filter_map(|p| {
            let name = p.file_name()?.to_str()?;
            let prefix = name.strip_suffix("current.pem")?;
            (prefix.ends_with('-') && prefix.len() > 1).then(|| {
                (
                    p.parent().unwrap_or(Path::new("")).to_path_buf(),
                    prefix.to_string(),
                )
            })
        })
        .collect();
    if current.is_empty() {
        return;
    }
    files.retain(|f| {
        let p = path(f);
        let (Some(dir), Some(name)) = (p.parent(), p.file_name().and_then(|n| n.to_str())) else {
            return true;
        };
        let superseded = current.iter().any(|(d, prefix)| {
            d == dir
                && name.starts_with(prefix.as_str())
                && name.ends_with(".pem")
                && !name.ends_with("current.pem")
        });
        if superseded {
            tracing::debug!(path = %p.display(), "superseded rotation; skipped");
        }
        !superseded
    });
}

fn walk_error(err: &walkdir::Error) -> ErrorEntry {
    let path = err.path().unwrap_or(Path::new("")).to_path_buf();
    if let Some(ancestor) = err.loop_ancestor() {
        return ErrorEntry {
            path: path.display().to_string(),
            entry: None,
            reason: ErrorReason::Loop,
            message: format!("symlink loop back to {}; not followed", ancestor.display()),
        };
    }
    match err.io_error() {
        Some(io) => io_error(&path, io),
        None => ErrorEntry {
            path: path.display().to_string(),
            entry: None,
            reason: ErrorReason::Read,
            message: err.to_string(),
        },
    }
}

/// Reads at most `cap` bytes of a path named on purpose (pipes and
/// devices too), within the default deadline; see [`super::read`].
pub fn read_capped(path: &Path, cap: u64) -> Result<Vec<u8>, ErrorEntry> {
    read::read(path, cap, Accept::Named, read::DEFAULT_READ_TIMEOUT).map(|(bytes, _)| bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walked_files_carry_their_local_directory_unless_symlinked() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        std::fs::write(dir.path().join("a.crt"), b"a").unwrap();
        std::fs::write(sub.join("b.crt"), b"b").unwrap();
        std::os::unix::fs::symlink(sub.join("b.crt"), dir.path().join("c.crt")).unwrap();
        let dev = std::fs::metadata(dir.path()).unwrap().dev();
        let (mut paths, errors) = walk(&[dir.path().to_path_buf()], &Filter::default());
        paths.sort();
        assert!(errors.is_empty());
        let names: Vec<(String, LocalDev)> = paths
            .iter()
            .map(|(p, l)| {
                (
                    p.strip_prefix(dir.path()).unwrap().display().to_string(),
                    *l,
                )
            })
            .collect();
        assert_eq!(
            names,
            [
                ("a.crt".to_string(), Some(dev)),
                ("c.crt".to_string(), None),
                ("sub/b.crt".to_string(), Some(dev)),
            ]
        );
        // A file named on purpose is never read in place.
        let file = dir.path().join("a.crt");
        let (paths, _) = walk(std::slice::from_ref(&file), &Filter::default());
        assert_eq!(paths, [(file, None)]);
    }

    #[test]
    fn plainest_path_wins() {
        let visible = Path::new("/m/tls.crt");
        let data = Path::new("/m/..data/tls.crt");
        let stamped = Path::new("/m/..2026_11_22_10_00_00.123/tls.crt");
        assert!(rank(visible) < rank(data));
        assert!(rank(data) < rank(stamped));
        let named = Path::new("/etc/ssl/certs/Example_Root.pem");
        let hash = Path::new("/etc/ssl/certs/a1b2c3d4.0");
        assert!(rank(named) < rank(hash));
        let current = Path::new("/var/lib/kubelet/pki/kubelet-client-current.pem");
        let dated = Path::new("/var/lib/kubelet/pki/kubelet-client-2026-01-01-00-00-00.pem");
        assert!(rank(current) < rank(dated));
    }

    #[test]
    fn superseded_rotations_are_dropped() {
        let sig = Signature {
            dev: 0,
            ino: 0,
            size: 0,
            mtime: 0,
            ctime: 0,
            mtime_nsec: 0,
            ctime_nsec: 0,
        };
        let mut files: Vec<Found> = [
            "/pki/kubelet-client-2025-01-01-00-00-00.pem",
            "/pki/kubelet-client-current.pem",
            "/pki/kubelet-server-2025-01-01-00-00-00.pem",
            "/pki/kubelet.crt",
            "/other/kubelet-client-2025-01-01-00-00-00.pem",
        ]
        .iter()
        .map(|p| Found {
            path: PathBuf::from(p),
            sig,
            local_dev: None,
        })
        .collect();
        drop_superseded_rotations(&mut files, |f| &f.path);
        let kept: Vec<&str> = files.iter().map(|f| f.path.to_str().unwrap()).collect();
        assert_eq!(
            kept,
            [
                "/pki/kubelet-client-current.pem",
                "/pki/kubelet-server-2025-01-01-00-00-00.pem",
                "/pki/kubelet.crt",
                "/other/kubelet-client-2025-01-01-00-00-00.pem",
            ]
        );
    }
}
