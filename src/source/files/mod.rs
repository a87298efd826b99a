//! The file source: files and directories on disk, and the files they
//! refer to. For `lapse serve` it runs as a task: a first full scan, then
//! inotify events (debounced) and a periodic full rescan as a safety net.
//!
//! Every event leads to a rescan of the roots, which re-resolves symlinks
//! and atomic-writer `..data` swaps and re-reads only files whose
//! signature changed; a deleted file's series go at once. Scanning runs on
//! the blocking pool, never on the HTTP path. Nothing here parses bytes
//! (that is [`crate::parse`]) or writes a file; a bad file never stops a scan.
//!
//! - [`config`]: the `files:` section and `tokens:` rules of lapse.yaml.
//! - [`scanner`]: what a scan reads and remembers, once or incrementally.
//! - [`pattern`]: roots written as globs, expanded before every scan.
//! - [`walk`]: discovery, filters and signatures.
//! - [`read`]: one file opened safely and read under a cap and a deadline.
//! - [`watch`]: what is watched, re-watched, and polled when it cannot be.

pub mod config;
pub mod pattern;
pub mod read;
pub mod scanner;
pub mod walk;
pub mod watch;

pub use scanner::{DEFAULT_MAX_FILE_SIZE, ScanDelta, ScanOptions, Scanner, read_once};
pub use walk::Filter;

use crate::inventory::{Inventory, SourceReport};
use crate::telemetry::SelfMetrics;
use crate::timefmt::now;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

pub const SOURCE: &str = "files";

/// Events closer together than this are one change.
const QUIET: Duration = Duration::from_millis(100);
/// A steady stream of events still gets a rescan this often.
const MAX_DELAY: Duration = Duration::from_millis(500);

/// What the file source watches and how it reads; cloned to restart it.
#[derive(Clone, Debug)]
pub struct FileSource {
    pub roots: Vec<PathBuf>,
    pub options: ScanOptions,
    pub rescan_interval: Duration,
}

impl FileSource {
    pub async fn run(
        self,
        inventory: Arc<Inventory>,
        metrics: Arc<SelfMetrics>,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) {
        // Changed paths; `None` asks for a full rescan.
        let (tx, mut events) = mpsc::unbounded_channel::<Option<Vec<PathBuf>>>();
        // notify reports absolute paths; roots given relative are tracked
        // relative, so events are given in both forms.
        let cwd = std::env::current_dir().ok();
        let watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
            let message = match res {
                // Our own reads show up as access events: never a change.
                Ok(event)
                    if matches!(event.kind, notify::EventKind::Access(_))
                        && !event.need_rescan() =>
                {
                    return;
                }
                Ok(event) if event.need_rescan() || event.paths.is_empty() => None,
                Ok(event) => Some(
                    event
                        .paths
                        .iter()
                        .flat_map(|p| {
                            let relative = cwd.as_ref().and_then(|c| p.strip_prefix(c).ok());
                            std::iter::once(p.clone()).chain(relative.map(Path::to_path_buf))
                        })
                        .collect(),
                ),
                Err(e) => {
                    tracing::warn!(error = %e, "file watch error; rescanning");
                    None
                }
            };
            let _ = tx.send(message);
        });
        metrics.watching(SOURCE);
        let mut watches = match watcher {
            Ok(w) => Some(watch::Watches::new(SOURCE, w, self.options.max_watches)),
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch files; relying on periodic rescans");
                None
            }
        };
        // The watches are added after the first scan, not before it: every
        // file lapse opens under a watch wakes the watcher thread (notify
        // subscribes to IN_OPEN): 10-17 % of start-up CPU at 100,000 files. A change during that scan is caught by a second,
        // stat-only pass once the watches are in place; only then is the
        // inventory published, so /readyz never says ready unwatched.
        let mut first_pass = watches.is_some();
        // The last scan's expansion; its errors are logged once each.
        let mut expansion = pattern::Expansion::default();
        let mut unmatched = Unmatched::default();
        let mut poll = tokio::time::interval(watch::POLL);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        poll.tick().await; // immediate; polling starts one POLL after this
        let mut scanner = Some(Scanner::new(self.options.clone()));
        let mut interval = tokio::time::interval(self.rescan_interval);
        interval.tick().await; // the first tick is immediate; the first scan is below
        // What changed since the last scan; `None`: scan everything.
        let mut pending: Option<Vec<PathBuf>> = None;
        loop {
            let s = scanner
                .take()
                .expect("scanner is returned after every scan");
            let patterns = self.roots.clone();
            let started = Instant::now();
            let changed = pending.take();
            let full = changed.is_none();
            let previous = expansion.roots.clone();
            let (s, delta, expanded, touched) = match tokio::task::spawn_blocking(move || {
                let mut s = s;
                // Patterns are matched afresh every time: a file that starts
                // or stops matching changes the roots, and that is a full scan.
                let expanded = pattern::expand(&patterns);
                let changed = changed.filter(|_| expanded.roots == previous);
                let touched = changed.clone().unwrap_or_default();
                let delta = match changed {
                    Some(paths) => s.rescan_events(&expanded.roots, &paths),
                    None => s.scan(&expanded.roots),
                };
                (s, delta, expanded, touched)
            })
            .await
            {
                Ok(done) => done,
                Err(e) => {
                    tracing::error!(error = %e, "scan task failed");
                    return;
                }
            };
            unmatched.log(&expanded);
            for e in expanded
                .errors
                .iter()
                .filter(|e| !expansion.errors.contains(e))
            {
                metrics.count_error(SOURCE, e.reason);
                tracing::warn!(path = %e.path, reason = e.reason.as_str(), "{}", e.message);
            }
            expansion = expanded;
            let took = started.elapsed();
            metrics.observe_scan(SOURCE, took.as_secs_f64());
            for e in &delta.new_errors {
                metrics.count_error(SOURCE, e.reason);
                tracing::warn!(path = %e.path, entry = e.entry.as_deref().unwrap_or(""), reason = e.reason.as_str(), "{}", e.message);
            }
            // Watch before publishing: once /readyz says ready, a change
            // must not fall between this scan and the watch on its
            // directory, where only the periodic rescan would find it.
            // A path watched afresh may have changed before its watch:
            // one more full scan right after this one.
            let renewed = watches.as_mut().is_some_and(|w| {
                let (roots, mut deps) = watched(&expansion);
                deps.extend(s.dependencies());
                w.update(&roots, &deps, &touched, &metrics)
            });
            if std::mem::take(&mut first_pass) {
                tracing::debug!(
                    parsed = delta.parsed,
                    scan_ms = took.as_millis() as u64,
                    "first scan done; watching, then checking what changed meanwhile"
                );
                scanner = Some(s);
                continue;
            }
            let publishing = Instant::now();
            inventory.publish(
                SOURCE,
                SourceReport {
                    parts: s.parts(),
                    errors: [s.walk_errors(), &expansion.errors].concat(),
                    up: true,
                    last_scan: Some(now()),
                },
            );
            tracing::debug!(
                parsed = delta.parsed,
                removed = delta.removed,
                scan_ms = took.as_millis() as u64,
                publish_ms = publishing.elapsed().as_millis() as u64,
                "scan done"
            );
            if full {
                crate::telemetry::release_free_memory();
            }
            scanner = Some(s);
            if renewed {
                continue;
            }

            // Wait for a change, the safety-net timer, a poll of paths
            // that could not be watched, or shutdown.
            let polling = watches.as_ref().is_some_and(|w| w.polling());
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = interval.tick() => {}
                _ = poll.tick(), if polling => {}
                got = events.recv() => {
                    let Some(first) = got else { return };
                    pending = debounce(first, &mut events).await;
                }
            }
        }
    }
}

/// What to watch for `expansion`: the roots it matched and, as roots,
/// each pattern's literal directory that matches can lie below
/// (recursively); the other literal directories, as dependencies (the
/// directory itself, and its parent, where it may be created).
fn watched(expansion: &pattern::Expansion) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let mut roots = expansion.roots.clone();
    let mut dirs = Vec::new();
    for (dir, deep) in &expansion.watch {
        if *deep && dir.is_dir() {
            roots.push(dir.clone());
        } else {
            dirs.push(dir.clone());
        }
    }
    (roots, dirs)
}

/// Patterns that match nothing, each said once at info level when it
/// starts to match nothing (at start: nothing yet is normal for `serve`).
#[derive(Default)]
struct Unmatched(std::collections::BTreeSet<PathBuf>);

impl Unmatched {
    fn log(&mut self, expansion: &pattern::Expansion) {
        let now: std::collections::BTreeSet<PathBuf> =
            expansion.unmatched.iter().cloned().collect();
        for p in now.difference(&self.0) {
            tracing::info!(pattern = %p.display(), "no file matches this pattern yet; watching for one");
        }
        self.0 = now;
    }
}

/// Gathers events until QUIET passes without one, or MAX_DELAY in all.
/// `None` when any of them asked for a full rescan.
async fn debounce(
    first: Option<Vec<PathBuf>>,
    events: &mut mpsc::UnboundedReceiver<Option<Vec<PathBuf>>>,
) -> Option<Vec<PathBuf>> {
    let mut paths = first;
    let deadline = tokio::time::Instant::now() + MAX_DELAY;
    loop {
        let until = (tokio::time::Instant::now() + QUIET).min(deadline);
        match tokio::time::timeout_at(until, events.recv()).await {
            Ok(Some(more)) => {
                paths = match (paths, more) {
                    (Some(mut a), Some(b)) => {
                        a.extend(b);
                        Some(a)
                    }
                    _ => None,
                };
                if tokio::time::Instant::now() >= deadline {
                    return paths;
                }
            }
            _ => return paths,
        }
    }
}
