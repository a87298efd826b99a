//! The current set of credentials, as every reader sees it.
//!
//! Sources replace their whole part at once ([`Inventory::publish`]);
//! readers (metrics, the web page) take an immutable [`Snapshot`] and
//! never wait for a scan, never parse, never touch a file.

use crate::credential::{ErrorEntry, Timestamp};
use crate::scan::{Assembled, Part, assemble};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};

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
    expected: Vec<&'static str>,
    reports: Mutex<BTreeMap<&'static str, SourceReport>>,
    current: RwLock<Arc<Snapshot>>,
}

impl Inventory {
    /// `sources`: the names that must report once before the inventory is ready.
    pub fn new(sources: &[&'static str]) -> Self {
        Inventory {
            expected: sources.to_vec(),
            reports: Mutex::new(BTreeMap::new()),
            current: RwLock::new(Arc::new(Snapshot::empty())),
        }
    }

    /// Replaces `source`'s part of the inventory and publishes a new snapshot.
    pub fn publish(&self, source: &'static str, report: SourceReport) {
        let mut reports = self.reports.lock().unwrap_or_else(|p| p.into_inner());
        reports.insert(source, report);
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
                        },
                    )
                })
                .collect(),
            errors: reports
                .iter()
                .flat_map(|(name, r)| r.errors.iter().map(move |e| (*name, e.clone())))
                .collect(),
            ready: self.expected.iter().all(|s| reports.contains_key(s)),
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
