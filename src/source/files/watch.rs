//! Which paths `lapse serve` watches, and noticing when a watch has gone
//! blind: a root deleted and created again, a symlinked root swapped to a
//! new target, or a watch that could not be added at all.
//!
//! After every scan [`Watches::update`] re-checks what it watches: a path
//! that now names another directory (or that an event named itself) is
//! watched afresh. A watch that cannot be added (the kernel's
//! `fs.inotify.max_user_watches`, `files.max_watches`, any other error)
//! is logged at warn once, counted, and its path polled: the source then
//! rescans every [`POLL`] and tries the watch again. Nothing here reads
//! a file's bytes.

use crate::telemetry::SelfMetrics;
use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use std::collections::{BTreeSet, HashMap};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How often polled paths are rescanned and their watch tried again.
pub const POLL: Duration = Duration::from_secs(5);

/// A watched path: what it named when the watch was added, and how many
/// inotify watches it took (a recursive watch: one per directory).
struct Watched {
    id: Option<(u64, u64)>,
    cost: usize,
}

fn identity(path: &Path) -> Option<(u64, u64)> {
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// The watcher and what it watches.
pub struct Watches {
    watcher: RecommendedWatcher,
    watched: HashMap<PathBuf, Watched>,
    /// Paths whose watch could not be added.
    polled: BTreeSet<PathBuf>,
    /// Inotify watches added, against `max`.
    used: usize,
    max: Option<usize>,
    /// Whether [`Watches::update`] ran before.
    started: bool,
    /// The source's name, for its metrics.
    source: &'static str,
}

impl Watches {
    pub fn new(source: &'static str, watcher: RecommendedWatcher, max: Option<usize>) -> Self {
        Watches {
            watcher,
            watched: HashMap::new(),
            polled: BTreeSet::new(),
            used: 0,
            max,
            started: false,
            source,
        }
    }

    /// Whether some path is polled: the source then rescans every [`POLL`].
    pub fn polling(&self) -> bool {
        !self.polled.is_empty()
    }

    /// Watches what `roots` and `deps` need; `touched` are the paths events
    /// named since the last update. True when a path was watched afresh
    /// (replaced, or polled until now): a change between the last scan and
    /// this watch was missed, so the caller scans once more.
    pub fn update(
        &mut self,
        roots: &[PathBuf],
        deps: &[PathBuf],
        touched: &[PathBuf],
        metrics: &SelfMetrics,
    ) -> bool {
        let wanted = wanted(roots, deps);
        let mut renewed = false;
        // A path that names something else now (deleted, created again,
        // a symlink swapped), or that an event named, is watched afresh.
        let stale: Vec<PathBuf> = self
            .watched
            .iter()
            .filter(|(path, w)| touched.contains(path) || identity(path) != w.id)
            .map(|(path, _)| path.clone())
            .collect();
        for path in stale {
            let _ = self.watcher.unwatch(&path);
            if let Some(w) = self.watched.remove(&path) {
                self.used -= w.cost;
            }
            tracing::debug!(path = %path.display(), "watch renewed");
            renewed = true;
        }
        let wanted_paths: BTreeSet<&PathBuf> = wanted.iter().map(|(p, _)| p).collect();
        self.polled.retain(|p| wanted_paths.contains(p));
        for (path, mode) in &wanted {
            if self.watched.contains_key(path) {
                continue;
            }
            match self.add(path, *mode) {
                Ok(cost) => {
                    self.used += cost;
                    let id = identity(path);
                    self.watched.insert(path.clone(), Watched { id, cost });
                    if self.polled.remove(path) {
                        tracing::info!(path = %path.display(), "watched again; no longer polled");
                        renewed = true;
                    }
                    // A root that appeared (created again, or late).
                    renewed |= self.started && roots.contains(path);
                }
                Err(error) => {
                    if self.polled.insert(path.clone()) {
                        tracing::warn!(
                            path = %path.display(),
                            %error,
                            "not watched; polled every {}s until a watch can be added",
                            POLL.as_secs()
                        );
                        metrics.count_watch_failure(self.source);
                    }
                }
            }
        }
        metrics.watch_polled(self.source, self.polled.len());
        self.started = true;
        renewed
    }

    /// Adds one watch; its cost in inotify watches.
    fn add(&mut self, path: &Path, mode: RecursiveMode) -> Result<usize, String> {
        let cost = match (self.max, mode) {
            (None, _) => 0,
            (Some(_), RecursiveMode::NonRecursive) => 1,
            (Some(_), RecursiveMode::Recursive) => walkdir::WalkDir::new(path)
                .follow_links(true)
                .into_iter()
                .filter_map(Result::ok)
                .filter(|e| e.file_type().is_dir())
                .count()
                .max(1),
        };
        if let Some(max) = self.max
            && self.used + cost > max
        {
            return Err(format!("files.max_watches ({max}) reached"));
        }
        self.watcher.watch(path, mode).map_err(|e| e.to_string())?;
        Ok(cost)
    }
}

/// What to watch, in order: each root (a directory recursively, then its
/// parent directory, where it can be deleted, created and swapped; a
/// file through its directory), then each referenced file's directory.
/// A directory already watched through a root is not added again under
/// another name: events are named after the path first watched.
fn wanted(roots: &[PathBuf], deps: &[PathBuf]) -> Vec<(PathBuf, RecursiveMode)> {
    let real_roots: Vec<PathBuf> = roots
        .iter()
        .filter(|r| r.is_dir())
        .filter_map(|r| std::fs::canonicalize(r).ok())
        .collect();
    let mut wanted: Vec<(PathBuf, RecursiveMode)> = Vec::new();
    for root in roots {
        if root.is_dir() {
            wanted.push((root.clone(), RecursiveMode::Recursive));
            if let Some(parent) = plain_parent(root).filter(|p| p.is_dir()) {
                wanted.push((parent, RecursiveMode::NonRecursive));
            }
        } else {
            parent_of(root, &mut wanted);
        }
    }
    for dep in deps {
        if dep.is_dir() {
            wanted.push((dep.clone(), RecursiveMode::NonRecursive));
        }
        parent_of(dep, &mut wanted);
    }
    wanted.retain(|(path, _)| {
        let real = std::fs::canonicalize(path).unwrap_or_else(|_| path.clone());
        roots.iter().any(|r| r == path) || !real_roots.iter().any(|r| real.starts_with(r))
    });
    let mut seen = BTreeSet::new();
    wanted.retain(|(path, _)| seen.insert(path.clone()));
    wanted
}

/// `a/b` → `a`; `b` → `.`.
fn plain_parent(path: &Path) -> Option<PathBuf> {
    match path.parent() {
        Some(p) if p.as_os_str().is_empty() => Some(PathBuf::from(".")),
        Some(p) => Some(p.to_path_buf()),
        None => None,
    }
}

fn parent_of(path: &Path, wanted: &mut Vec<(PathBuf, RecursiveMode)>) {
    let Some(parent) = plain_parent(path) else {
        return;
    };
    if parent.is_dir() {
        wanted.push((parent, RecursiveMode::NonRecursive));
    }
    // A symlinked file (kubelet-client-current.pem) changes where it points.
    if let Ok(real) = std::fs::canonicalize(path)
        && let Some(dir) = real.parent()
    {
        wanted.push((dir.to_path_buf(), RecursiveMode::NonRecursive));
    }
}
