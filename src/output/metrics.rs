//! `/metrics`: one series per credential per family, computed at scrape
//! time from a snapshot, plus lapse's view of itself.
//!
//! Self-observation (counters, the scan-duration histogram, build info)
//! lives in a prometheus-client registry. The per-credential families are
//! written directly: each credential's label set is escaped once, when its
//! file changes, and kept in the reader's [`LabelCache`], so a scrape of
//! 100,000 credentials only formats numbers. Both are OpenMetrics text; the
//! classic Prometheus text format is derived from it for clients that ask.
//!
//! The page is made of parts a reader may keep and share while what each
//! depends on stays the same: every credential family (the snapshot, and
//! for two of them the second, see [`family_uses_now`]), the sources'
//! families (the snapshot) and lapse's own metrics (any counter).
//!
//! Never a failed page: two credentials whose labels would collide get a
//! distinguishing `index` instead.

use crate::credential::{Credential, Timestamp};
use crate::inventory::Part;
use crate::inventory::Snapshot;
use crate::logging::plain::plain;
use crate::telemetry::SelfMetrics;
use std::collections::{HashMap, HashSet};
use std::fmt::Write;
use std::sync::{Arc, Mutex, Weak};

pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Writes `value` in Prometheus's float syntax.
fn number(out: &mut String, value: f64) {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        let _ = write!(out, "{}", value as i64);
    } else {
        let _ = write!(out, "{value}");
    }
}

/// Escapes a label value (`\`, `"`, newline), after control characters
/// are made plain text (`\r`, `\x1b`), so a CN cannot carry a terminal
/// sequence into dashboards, alert annotations and their mails.
fn escape(out: &mut String, value: &str) {
    for ch in plain(value).chars() {
        match ch {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// The label set identifying a credential, escaped and ready to write.
pub fn label_set(c: &Credential, index_suffix: Option<usize>) -> String {
    let object = c.object.as_ref();
    let index = match (c.index, index_suffix) {
        (Some(i), None) => i.to_string(),
        (Some(i), Some(n)) => format!("{i}~{n}"),
        (None, None) => String::new(),
        (None, Some(n)) => format!("~{n}"),
    };
    let labels: [(&str, &str); 12] = [
        ("kind", c.kind.as_str()),
        ("source", c.source.as_str()),
        ("path", &c.path),
        ("entry", c.entry.as_deref().unwrap_or("")),
        ("index", &index),
        (
            "namespace",
            object.map(|o| o.namespace.as_str()).unwrap_or(""),
        ),
        ("name", object.map(|o| o.name.as_str()).unwrap_or("")),
        ("key", object.map(|o| o.key.as_str()).unwrap_or("")),
        ("subject_cn", c.identity.subject_cn.as_deref().unwrap_or("")),
        ("issuer_cn", c.identity.issuer_cn.as_deref().unwrap_or("")),
        ("serial", c.identity.serial.as_deref().unwrap_or("")),
        ("fingerprint", &c.fingerprint.short(16)),
    ];
    let mut out = String::with_capacity(256);
    for (i, (k, v)) in labels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(k);
        out.push_str("=\"");
        escape(&mut out, v);
        out.push('"');
    }
    for (k, v) in object.map(|o| o.labels.as_slice()).unwrap_or_default() {
        out.push_str(",secret_label_");
        out.extend(k.chars().map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        }));
        out.push_str("=\"");
        escape(&mut out, v);
        out.push('"');
    }
    out
}

/// Label sets kept by the metrics reader between scrapes. A snapshot's
/// rows are worked out once (every label set escaped, repeats renamed),
/// and a part that is in the next snapshot too keeps its label sets, so a
/// scrape of an unchanged snapshot only formats numbers and one that
/// follows a change escapes only the changed files' labels.
#[derive(Default)]
pub struct LabelCache {
    state: Mutex<Option<Arc<Rows>>>,
}

impl std::fmt::Debug for LabelCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LabelCache")
    }
}

/// The rows of one snapshot.
struct Rows {
    snapshot: Weak<Snapshot>,
    /// Each part's label sets, in the snapshot's part order. The `Weak`
    /// keeps the part's allocation, so its address names it until dropped.
    parts: Vec<(Weak<Part>, Arc<[String]>)>,
    /// (part, credential, a renamed label set for a repeat) per visible credential.
    rows: Vec<(u32, u32, Option<Box<str>>)>,
}

impl Rows {
    fn labels(&self, part: u32, credential: u32) -> &str {
        &self.parts[part as usize].1[credential as usize]
    }
}

impl LabelCache {
    fn rows(&self, snapshot: &Arc<Snapshot>) -> Arc<Rows> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(rows) = state.as_ref()
            && Weak::ptr_eq(&rows.snapshot, &Arc::downgrade(snapshot))
        {
            return rows.clone();
        }
        let known: HashMap<*const Part, &Arc<[String]>> = state
            .iter()
            .flat_map(|r| r.parts.iter())
            .map(|(weak, labels)| (weak.as_ptr(), labels))
            .collect();
        let parts: Vec<(Weak<Part>, Arc<[String]>)> = snapshot
            .assembled
            .parts
            .iter()
            .map(|p| {
                let labels = known
                    .get(&Arc::as_ptr(p))
                    .map(|l| (*l).clone())
                    .unwrap_or_else(|| p.credentials.iter().map(|c| label_set(c, None)).collect());
                (Arc::downgrade(p), labels)
            })
            .collect();
        drop(known);
        // Distinct label sets, whatever the inputs: a repeat gets `index="N~k"`.
        let mut rows = Vec::new();
        let mut seen: HashSet<&str> = HashSet::new();
        let mut renamed: HashSet<String> = HashSet::new();
        for (pi, ci, c) in snapshot.assembled.visible() {
            let labels = parts[pi].1[ci].as_str();
            if seen.insert(labels) {
                rows.push((pi as u32, ci as u32, None));
                continue;
            }
            let fresh = (2..)
                .map(|n| label_set(c, Some(n)))
                .find(|l| !seen.contains(l.as_str()) && !renamed.contains(l))
                .unwrap_or_default();
            renamed.insert(fresh.clone());
            rows.push((pi as u32, ci as u32, Some(fresh.into_boxed_str())));
        }
        drop(seen);
        let rows = Arc::new(Rows {
            snapshot: Arc::downgrade(snapshot),
            parts,
            rows,
        });
        *state = Some(rows.clone());
        rows
    }
}

/// One gauge family: which credentials it covers and the value of each.
struct CredentialFamily {
    name: &'static str,
    help: &'static str,
    value: fn(&Credential, Timestamp) -> Option<f64>,
    /// Whether `value` reads its `now`.
    uses_now: bool,
}

const CREDENTIAL_FAMILIES: &[CredentialFamily] = &[
    CredentialFamily {
        name: "lapse_credential_expires_in_seconds",
        help: "Seconds until the credential lapses (negative once it has); computed at scrape time",
        value: |c, now| c.expires_in(now).map(|s| s as f64),
        uses_now: true,
    },
    CredentialFamily {
        name: "lapse_credential_not_after_timestamp_seconds",
        help: "When the credential lapses, as a Unix timestamp",
        value: |c, _| c.not_after.map(|t| t as f64),
        uses_now: false,
    },
    CredentialFamily {
        name: "lapse_credential_not_before_timestamp_seconds",
        help: "When the credential became valid (or was issued), as a Unix timestamp",
        value: |c, _| c.not_before.map(|t| t as f64),
        uses_now: false,
    },
    CredentialFamily {
        name: "lapse_credential_validity_seconds",
        help: "The whole validity window, not_after minus not_before",
        value: |c, _| c.validity_window().map(|s| s as f64),
        uses_now: false,
    },
    CredentialFamily {
        name: "lapse_credential_expired",
        help: "1 if the credential has lapsed, else 0",
        value: |c, now| c.expires_in(now).map(|s| if s <= 0 { 1.0 } else { 0.0 }),
        uses_now: true,
    },
    CredentialFamily {
        name: "lapse_credential_no_expiry",
        help: "1 for a credential that never lapses (or whose expiry nothing states)",
        value: |c, _| c.not_after.is_none().then_some(1.0),
        uses_now: false,
    },
    CredentialFamily {
        name: "lapse_credential_warn_after_timestamp_seconds",
        help: "Bound service-account tokens: when the kubelet should have rotated it",
        value: |c, _| c.warn_after.map(|t| t as f64),
        uses_now: false,
    },
];

fn family_header(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {help}.");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn sample(out: &mut String, name: &str, labels: &str, value: f64) {
    out.push_str(name);
    out.push('{');
    out.push_str(labels);
    out.push_str("} ");
    number(out, value);
    out.push('\n');
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
    render_families(snapshot, labels, now, &all_families(), &mut |_, text| {
        page.push_str(&text)
    });
    page.push_str(&render_sources(snapshot));
    page.push_str(&render_self(self_metrics, openmetrics));
    page
}

/// How many per-credential families the page has, in page order: the
/// page is each of them, then [`render_sources`], then [`render_self`].
pub const FAMILIES: usize = CREDENTIAL_FAMILIES.len();

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

/// Renders the credential families `which` (indices below [`FAMILIES`]),
/// handing each one's whole text to `emit` with its index.
pub fn render_families(
    snapshot: &Arc<Snapshot>,
    labels: &LabelCache,
    now: Timestamp,
    which: &[usize],
    emit: &mut dyn FnMut(usize, String),
) {
    let cached = labels.rows(snapshot);
    let parts = &snapshot.assembled.parts;
    let rows: Vec<(&Credential, &str)> = cached
        .rows
        .iter()
        .map(|(pi, ci, renamed)| {
            let c = &parts[*pi as usize].credentials[*ci as usize];
            (
                c,
                renamed
                    .as_deref()
                    .unwrap_or_else(|| cached.labels(*pi, *ci)),
            )
        })
        .collect();
    for &i in which {
        let family = &CREDENTIAL_FAMILIES[i];
        let mut out = String::with_capacity(64 + rows.len() * 256);
        family_header(&mut out, family.name, family.help, "gauge");
        for (c, labels) in &rows {
            if let Some(v) = (family.value)(c, now) {
                sample(&mut out, family.name, labels, v);
            }
        }
        emit(i, out);
    }
}

/// The sources' families and `lapse_file_errors`: what follows the
/// credential families, and changes only with the snapshot.
pub fn render_sources(snapshot: &Snapshot) -> String {
    let mut out = String::new();
    family_header(
        &mut out,
        "lapse_source_up",
        "1 if the source's last scan succeeded, else 0",
        "gauge",
    );
    for (name, status) in &snapshot.sources {
        sample(
            &mut out,
            "lapse_source_up",
            &format!("source=\"{name}\""),
            if status.up { 1.0 } else { 0.0 },
        );
    }
    family_header(
        &mut out,
        "lapse_source_last_scan_timestamp_seconds",
        "When the source's last scan finished, as a Unix timestamp",
        "gauge",
    );
    for (name, status) in &snapshot.sources {
        if let Some(t) = status.last_scan {
            sample(
                &mut out,
                "lapse_source_last_scan_timestamp_seconds",
                &format!("source=\"{name}\""),
                t as f64,
            );
        }
    }
    family_header(
        &mut out,
        "lapse_source_rescan_interval_seconds",
        "How often the source scans at the least; a last scan older than three of these is a stalled source",
        "gauge",
    );
    for (name, status) in &snapshot.sources {
        if let Some(i) = status.rescan_interval {
            sample(
                &mut out,
                "lapse_source_rescan_interval_seconds",
                &format!("source=\"{name}\""),
                i as f64,
            );
        }
    }
    let error_paths: HashSet<&str> = snapshot.all_errors().map(|e| e.path.as_str()).collect();
    family_header(
        &mut out,
        "lapse_file_errors",
        "Paths currently in error (unreadable or undecodable)",
        "gauge",
    );
    let _ = writeln!(out, "lapse_file_errors {}", error_paths.len());

    out
}

/// lapse's own metrics, in the format asked for; they change whenever a
/// counter does, so they are encoded for every scrape (a few KiB).
pub fn render_self(self_metrics: &SelfMetrics, openmetrics: bool) -> String {
    let registry = self_metrics.encode();
    if openmetrics {
        registry
    } else {
        classic(&registry)
    }
}

/// OpenMetrics text → classic Prometheus text: no `# EOF` or `# UNIT`,
/// counters and info metrics named as their samples are.
fn classic(openmetrics: &str) -> String {
    let mut out = String::with_capacity(openmetrics.len());
    let mut renames: Vec<(String, String)> = Vec::new();
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, "untyped"));
            let (new_name, new_kind) = match kind {
                "counter" => (format!("{name}_total"), "counter"),
                "info" => (format!("{name}_info"), "gauge"),
                other => (name.to_string(), other),
            };
            renames.retain(|(old, _)| old != name);
            renames.push((name.to_string(), new_name.clone()));
            let _ = writeln!(out, "# TYPE {new_name} {new_kind}");
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            // prometheus-client writes HELP before TYPE: look the kind up ahead.
            let kind = openmetrics
                .lines()
                .find_map(|l| l.strip_prefix(&format!("# TYPE {name} ")))
                .unwrap_or("");
            let new_name = match kind {
                "counter" => format!("{name}_total"),
                "info" => format!("{name}_info"),
                _ => name.to_string(),
            };
            let _ = writeln!(out, "# HELP {new_name} {help}");
            continue;
        }
        // Counters' `_created` samples have no classic equivalent.
        if line
            .split(['{', ' '])
            .next()
            .is_some_and(|n| n.ends_with("_created"))
        {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// True when the client asked for OpenMetrics (Prometheus does by default).
pub fn wants_openmetrics(accept: Option<&str>) -> bool {
    accept.is_some_and(|a| a.contains("application/openmetrics-text"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classic_conversion_renames_counters_and_info() {
        let om = "# HELP lapse_errors Errors.\n# TYPE lapse_errors counter\nlapse_errors_total{source=\"files\",reason=\"parse\"} 2\n\
                  # HELP lapse_build Build.\n# TYPE lapse_build info\nlapse_build_info{version=\"0.1.0\"} 1\n# EOF\n";
        assert_eq!(
            classic(om),
            "# HELP lapse_errors_total Errors.\n# TYPE lapse_errors_total counter\nlapse_errors_total{source=\"files\",reason=\"parse\"} 2\n\
             # HELP lapse_build_info Build.\n# TYPE lapse_build_info gauge\nlapse_build_info{version=\"0.1.0\"} 1\n"
        );
    }

    #[test]
    fn label_values_are_escaped() {
        let mut out = String::new();
        escape(&mut out, "a\"b\\c");
        assert_eq!(out, "a\\\"b\\\\c");
        // Control characters become plain text first (`\n`, `\r`,
        // `\x1b`), whose backslash the exposition then escapes: the label's
        // value reads `kube\rok\n\x1b[2J`, never a carriage return.
        let mut out = String::new();
        escape(&mut out, "kube\rok\n\x1b[2J");
        assert_eq!(out, "kube\\\\rok\\\\n\\\\x1b[2J");
    }

    #[test]
    fn numbers() {
        let mut out = String::new();
        number(&mut out, -3.0);
        out.push(' ');
        number(&mut out, 1.5);
        assert_eq!(out, "-3 1.5");
    }

    #[test]
    fn accept_negotiation() {
        assert!(wants_openmetrics(Some(
            "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.3"
        )));
        assert!(!wants_openmetrics(Some("text/plain")));
        assert!(!wants_openmetrics(None));
    }
}
