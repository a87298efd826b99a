//! `/metrics`: one series per credential per family, computed at scrape
//! time from a snapshot, plus lapse's view of itself.
//!
//! Self-observation (counters, the scan-duration histogram, build info)
//! lives in a prometheus-client registry. The per-credential families are
//! written directly from the credentials, a label set at a time; the
//! reader's [`LabelCache`] works out once per snapshot which label sets
//! repeat (see there). Both are OpenMetrics text; the
//! classic Prometheus text format is derived from it for clients that ask.
//!
//! The page is made of parts a reader may keep and share while what each
//! depends on stays the same: every credential family (the snapshot, and
//! for two of them the second, see [`family_uses_now`]), the sources'
//! families (the snapshot) and lapse's own metrics (any counter).
//!
//! A label whose value is empty is not written (Prometheus reads a missing
//! label as empty), and no credential label is named after a target label
//! (`namespace`, `pod`, `node`, `instance`, `job`, `cluster`, …), so
//! Prometheus never renames one to `exported_*`.
//!
//! Never a failed page: two credentials whose labels would collide get a
//! distinguishing `index` instead.

pub mod config;
pub mod families;
mod text;

use crate::credential::{Credential, Kind, Timestamp};
use crate::inventory::Part;
use crate::inventory::{Snapshot, SourceStatus};
use crate::telemetry::SelfMetrics;
pub use config::{Descriptive, MetricsConfig};
use families::CREDENTIAL_FAMILIES;
pub use families::FAMILIES;
use std::collections::{HashMap, HashSet};
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex, Weak};
use text::{family_header, label, sample};

pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What a label set is written for: a value family, or
/// `lapse_credential_info`, which also carries `serial` and `fingerprint`
/// (every family does with `metrics.descriptive_labels: every_series`).
#[derive(Clone, Copy)]
struct Layout {
    descriptive: bool,
    /// The `~N` a repeated label set's `index` gets, 0 for none.
    suffix: u32,
}

/// Writes the label set identifying a credential, escaped, into `out`.
fn write_label_set(out: &mut String, c: &Credential, layout: Layout) {
    let object = c.object.as_ref();
    let mut digits = [0u8; 48];
    let index = index_text(&mut digits, c.index, layout.suffix);
    // A certificate's principal is its subject_cn; a token's, its subject.
    let subject = match c.kind {
        Kind::X509 => None,
        _ => c.identity.subject(),
    };
    let labels: [(&str, &str); 11] = [
        ("kind", c.kind.as_str()),
        ("source", c.source.as_str()),
        ("path", &c.path),
        ("entry", c.entry.as_deref().unwrap_or("")),
        ("index", index),
        (
            "object_namespace",
            object.map(|o| o.namespace.as_str()).unwrap_or(""),
        ),
        ("name", object.map(|o| o.name.as_str()).unwrap_or("")),
        ("key", object.map(|o| o.key.as_str()).unwrap_or("")),
        ("subject_cn", c.identity.subject_cn().unwrap_or("")),
        ("issuer_cn", c.identity.issuer_cn().unwrap_or("")),
        ("subject", subject.unwrap_or("")),
    ];
    for (k, v) in labels.iter().filter(|(_, v)| !v.is_empty()) {
        label(out, k, v);
    }
    if layout.descriptive {
        let fingerprint = c.fingerprint.short(16);
        let descriptive = [
            ("serial", c.identity.serial().unwrap_or("")),
            ("fingerprint", fingerprint.as_str()),
        ];
        for (k, v) in descriptive.iter().filter(|(_, v)| !v.is_empty()) {
            label(out, k, v);
        }
    }
    let mut name = String::new();
    for (k, v) in object.map(|o| o.labels.as_slice()).unwrap_or_default() {
        name.clear();
        name.push_str("secret_label_");
        name.extend(k.chars().map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        }));
        label(out, &name, v);
    }
}

/// The `index` label's value: the credential's index, then `~suffix`
/// for a repeated label set; written into `buf` without allocating.
fn index_text(buf: &mut [u8; 48], index: Option<u32>, suffix: u32) -> &str {
    fn digits(buf: &mut [u8], at: &mut usize, mut n: u64) {
        let start = *at;
        loop {
            buf[*at] = b'0' + (n % 10) as u8;
            *at += 1;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        buf[start..*at].reverse();
    }
    let mut at = 0;
    if let Some(i) = index {
        digits(buf, &mut at, u64::from(i));
    }
    if suffix > 0 {
        buf[at] = b'~';
        at += 1;
        digits(buf, &mut at, u64::from(suffix));
    }
    std::str::from_utf8(&buf[..at]).unwrap_or_default()
}

/// Which label sets a snapshot's series carry, worked out once per
/// snapshot: every credential's label set is hashed, repeats get a
/// distinguishing `index` suffix, and a part that is in the next snapshot
/// too keeps its hashes, so a change rehashes only the changed files'.
/// The label text itself is not kept (at 100,000 credentials it was
/// 21 MB): each render writes it again from the credential. The reader's
/// [`MetricsConfig`] is fixed for its life.
pub struct LabelCache {
    config: MetricsConfig,
    /// The constant labels, escaped.
    constants: String,
    hasher: std::hash::RandomState,
    state: Mutex<Option<Arc<Rows>>>,
}

impl Default for LabelCache {
    fn default() -> Self {
        LabelCache::new(MetricsConfig::default())
    }
}

impl std::fmt::Debug for LabelCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LabelCache")
    }
}

/// The rows of one snapshot.
struct Rows {
    snapshot: Weak<Snapshot>,
    /// The snapshot's parts, in order. A `Weak` keeps the part's
    /// allocation, so its address names it until dropped.
    parts: Vec<Weak<Part>>,
    /// Where each part's hashes start in `hashes`.
    starts: Vec<u32>,
    /// Every credential's label-set hash, part after part.
    hashes: Vec<u64>,
    /// (part, credential, index suffix or 0) per visible credential.
    rows: Vec<(u32, u32, u32)>,
}

impl LabelCache {
    pub fn new(config: MetricsConfig) -> Self {
        LabelCache {
            constants: text::constant_labels(&config.labels),
            config,
            hasher: std::hash::RandomState::new(),
            state: Mutex::new(None),
        }
    }

    pub fn config(&self) -> &MetricsConfig {
        &self.config
    }

    /// How a value family's label set is laid out, with `suffix`.
    fn value_layout(&self, suffix: u32) -> Layout {
        Layout {
            descriptive: self.config.descriptive == Descriptive::EverySeries,
            suffix,
        }
    }

    fn hash(&self, c: &Credential, suffix: u32, scratch: &mut String) -> u64 {
        scratch.clear();
        write_label_set(scratch, c, self.value_layout(suffix));
        self.hasher.hash_one(scratch.as_str())
    }

    fn rows(&self, snapshot: &Arc<Snapshot>) -> Arc<Rows> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(rows) = state.as_ref()
            && Weak::ptr_eq(&rows.snapshot, &Arc::downgrade(snapshot))
        {
            return rows.clone();
        }
        let mut scratch = String::new();
        // The previous snapshot's parts, by address, and their hashes.
        let known: HashMap<*const Part, &[u64]> = state
            .iter()
            .flat_map(|r| {
                r.parts.iter().enumerate().map(|(i, weak)| {
                    let end = r.starts.get(i + 1).map_or(r.hashes.len(), |e| *e as usize);
                    (weak.as_ptr(), &r.hashes[r.starts[i] as usize..end])
                })
            })
            .collect();
        let all = &snapshot.assembled.parts;
        let mut hashes: Vec<u64> =
            Vec::with_capacity(all.iter().map(|p| p.credentials.len()).sum());
        let mut starts: Vec<u32> = Vec::with_capacity(all.len());
        for p in all {
            starts.push(hashes.len() as u32);
            match known.get(&Arc::as_ptr(p)) {
                Some(h) => hashes.extend_from_slice(h),
                None => {
                    for c in &p.credentials {
                        hashes.push(self.hash(c, 0, &mut scratch));
                    }
                }
            }
        }
        drop(known);
        let parts: Vec<Weak<Part>> = all.iter().map(Arc::downgrade).collect();
        // Distinct label sets, whatever the inputs: a repeat gets
        // `index="N~k"`. Equal hashes are compared as text.
        let credential =
            |pi: u32, ci: u32| &snapshot.assembled.parts[pi as usize].credentials[ci as usize];
        let mut rows: Vec<(u32, u32, u32)> = Vec::new();
        let mut seen: HashMap<u64, Vec<u32>> = HashMap::new();
        let mut other = String::new();
        for (pi, ci, c) in snapshot.assembled.visible() {
            let (pi, ci) = (pi as u32, ci as u32);
            let mut suffix = 0;
            loop {
                let hash = if suffix == 0 {
                    hashes[starts[pi as usize] as usize + ci as usize]
                } else {
                    self.hash(c, suffix, &mut scratch)
                };
                let same = seen.get(&hash).is_some_and(|earlier| {
                    scratch.clear();
                    write_label_set(&mut scratch, c, self.value_layout(suffix));
                    earlier.iter().any(|&r| {
                        let (epi, eci, es) = rows[r as usize];
                        other.clear();
                        write_label_set(&mut other, credential(epi, eci), self.value_layout(es));
                        other == scratch
                    })
                });
                if !same {
                    seen.entry(hash).or_default().push(rows.len() as u32);
                    rows.push((pi, ci, suffix));
                    break;
                }
                suffix = if suffix == 0 { 2 } else { suffix + 1 };
            }
        }
        drop(seen);
        let rows = Arc::new(Rows {
            snapshot: Arc::downgrade(snapshot),
            parts,
            starts,
            hashes,
            rows,
        });
        *state = Some(rows.clone());
        rows
    }
}

/// Renders the whole page. `openmetrics` picks the format.
pub fn render(
    snapshot: &Arc<Snapshot>,
    labels: &LabelCache,
    self_metrics: &SelfMetrics,
    now: Timestamp,
    openmetrics: bool,
) -> String {
    let mut page = String::new();
    render_families(snapshot, labels, now, &all_families(), &mut page);
    page.push_str(&render_sources(snapshot, labels));
    page.push_str(&render_self(self_metrics, openmetrics, labels));
    page
}

/// Every family's index, in page order.
pub fn all_families() -> Vec<usize> {
    (0..FAMILIES).collect()
}

/// True for the families whose values change with the clock; the others
/// change only with the snapshot, so a reader may keep their text while
/// the snapshot stays the same.
pub fn family_uses_now(family: usize) -> bool {
    CREDENTIAL_FAMILIES[family].uses_now
}

/// How long a piece of a family's text grows before [`render_families`]
/// hands it on: a reader that keeps pieces shares them between clients,
/// and a reader that compresses them never holds a family whole.
pub const PIECE_BYTES: usize = 256 * 1024;

/// Where [`render_families`] puts each family's text, a piece at a time.
pub trait FamilySink {
    /// The next piece of family `family`'s text, about [`PIECE_BYTES`]
    /// long, ending with a whole line.
    fn piece(&mut self, family: usize, text: String);
    /// Family `family` is complete. A family the reader's configuration
    /// leaves out ends with no piece.
    fn end(&mut self, _family: usize) {}
}

/// The whole text, families one after another.
impl FamilySink for String {
    fn piece(&mut self, _family: usize, text: String) {
        self.push_str(&text);
    }
}

/// Renders the credential families `which` (indices below [`FAMILIES`])
/// into `sink`, one family after another.
pub fn render_families(
    snapshot: &Arc<Snapshot>,
    labels: &LabelCache,
    now: Timestamp,
    which: &[usize],
    sink: &mut dyn FamilySink,
) {
    let cached = labels.rows(snapshot);
    let parts = &snapshot.assembled.parts;
    let constants = labels.constants.as_str();
    // Room for one more line past the piece size, so a piece is not grown.
    let fresh = || String::with_capacity(PIECE_BYTES + 4096);
    let mut set = String::new();
    for &i in which {
        if !labels.config.families[i] {
            sink.end(i);
            continue;
        }
        let family = &CREDENTIAL_FAMILIES[i];
        let mut out = fresh();
        family_header(&mut out, family.name, family.help, "gauge");
        for &(pi, ci, suffix) in &cached.rows {
            let c = &parts[pi as usize].credentials[ci as usize];
            if let Some(v) = (family.value)(c, now) {
                let mut layout = labels.value_layout(suffix);
                layout.descriptive |= family.descriptive;
                set.clear();
                write_label_set(&mut set, c, layout);
                sample(&mut out, family.name, constants, &[&set], v);
                if out.len() >= PIECE_BYTES {
                    sink.piece(i, std::mem::replace(&mut out, fresh()));
                }
            }
        }
        if !out.is_empty() {
            out.shrink_to_fit();
            sink.piece(i, out);
        }
        sink.end(i);
    }
}

/// One gauge per source: name, help, value.
type SourceFamily = (&'static str, &'static str, fn(&SourceStatus) -> Option<f64>);

const SOURCE_FAMILIES: [SourceFamily; 3] = [
    (
        "lapse_source_up",
        "1 if the source's last scan succeeded, else 0",
        |s| Some(if s.up { 1.0 } else { 0.0 }),
    ),
    (
        "lapse_source_last_scan_timestamp_seconds",
        "When the source's last scan finished, as a Unix timestamp",
        |s| s.last_scan.map(|t| t as f64),
    ),
    (
        "lapse_source_rescan_interval_seconds",
        "How often the source scans at the least; a last scan older than three of these is a stalled source",
        |s| s.rescan_interval.map(|i| i as f64),
    ),
];

/// The sources' families and `lapse_file_errors`: what follows the
/// credential families, and changes only with the snapshot.
pub fn render_sources(snapshot: &Snapshot, labels: &LabelCache) -> String {
    let constants = labels.constants.as_str();
    let mut out = String::new();
    for (name, help, value) in SOURCE_FAMILIES {
        family_header(&mut out, name, help, "gauge");
        for (source, status) in &snapshot.sources {
            if let Some(v) = value(status) {
                sample(
                    &mut out,
                    name,
                    constants,
                    &[&format!("source=\"{source}\"")],
                    v,
                );
            }
        }
    }
    let error_paths: HashSet<&str> = snapshot.all_errors().map(|e| e.path.as_str()).collect();
    family_header(
        &mut out,
        "lapse_file_errors",
        "Paths currently in error (unreadable or undecodable)",
        "gauge",
    );
    sample(
        &mut out,
        "lapse_file_errors",
        constants,
        &[],
        error_paths.len() as f64,
    );

    out
}

/// lapse's own metrics, in the format asked for, with the constant
/// labels; they change whenever a counter does, so they are encoded for
/// every scrape (a few KiB).
pub fn render_self(self_metrics: &SelfMetrics, openmetrics: bool, labels: &LabelCache) -> String {
    let registry = self_metrics.encode();
    let text = if openmetrics {
        registry
    } else {
        text::classic(&registry)
    };
    text::with_constants(&text, &labels.constants)
}

/// True when the client asked for OpenMetrics (Prometheus does by default).
pub fn wants_openmetrics(accept: Option<&str>) -> bool {
    accept.is_some_and(|a| a.contains("application/openmetrics-text"))
}

#[cfg(test)]
mod tests;
