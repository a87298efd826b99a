//! `/metrics`: one series per credential per family, computed at scrape
//! time from a snapshot, plus lapse's view of itself.
//!
//! Self-observation (counters, the scan-duration histogram, build info)
//! lives in a prometheus-client registry. The per-credential families are
//! written directly: each credential's label set is escaped once, when its
//! file changes, and cached in its part, so a scrape of 100,000
//! credentials only formats numbers. Both are OpenMetrics text; the
//! classic Prometheus text format is derived from it for clients that ask.
//!
//! Never a failed page: two credentials whose labels would collide get a
//! distinguishing `index` instead.

use crate::credential::{Credential, Timestamp};
use crate::inventory::Snapshot;
use crate::scan::Part;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;
use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt::Write;

pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Label values of `lapse_errors_total{reason}`: a small fixed set.
pub const ERROR_REASONS: &[&str] = &[
    "read",
    "not_found",
    "loop",
    "too_large",
    "parse",
    "password",
];

type SourceReason = [(&'static str, &'static str); 2];
type SourceOnly = [(&'static str, &'static str); 1];
type HistogramFamily = Family<SourceOnly, Histogram, fn() -> Histogram>;

/// lapse's own counters and histograms.
pub struct SelfMetrics {
    registry: Registry,
    errors_total: Family<SourceReason, Counter>,
    scan_duration: HistogramFamily,
    notifications_total: Family<[(&'static str, &'static str); 2], Counter>,
    notifications_pending: Gauge,
}

impl std::fmt::Debug for SelfMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SelfMetrics")
    }
}

fn scan_histogram() -> Histogram {
    // 1 ms … ~16 s.
    Histogram::new(exponential_buckets(0.001, 4.0, 8))
}

impl SelfMetrics {
    /// `channels`: the notification channels configured (their counters start at 0).
    pub fn new(sources: &[&'static str], channels: &[&'static str]) -> Self {
        let mut registry = Registry::default();
        let errors_total = Family::<SourceReason, Counter>::default();
        registry.register(
            "lapse_errors",
            "Credentials that could not be read, by source and reason (each occurrence once)",
            errors_total.clone(),
        );
        let scan_duration: HistogramFamily = Family::new_with_constructor(scan_histogram);
        registry.register(
            "lapse_scan_duration_seconds",
            "Time one scan of a source took",
            scan_duration.clone(),
        );
        registry.register(
            "lapse_build",
            "lapse's version and the revision it was built from",
            Info::new([
                ("version", env!("CARGO_PKG_VERSION")),
                ("revision", env!("LAPSE_REVISION")),
            ]),
        );
        let notifications_total = Family::<[(&'static str, &'static str); 2], Counter>::default();
        registry.register(
            "lapse_notifications",
            "Notifications by channel and result (sent, failed: each attempt once)",
            notifications_total.clone(),
        );
        let notifications_pending = Gauge::default();
        registry.register(
            "lapse_notifications_pending",
            "Notifications waiting to be delivered",
            notifications_pending.clone(),
        );
        for channel in channels {
            for result in ["sent", "failed"] {
                let _ =
                    notifications_total.get_or_create(&[("channel", channel), ("result", result)]);
            }
        }
        // Every (source, reason) exists from the start, at zero, so rate()
        // and increase() see the first error.
        for source in sources {
            for reason in ERROR_REASONS {
                let _ = errors_total.get_or_create(&[("source", source), ("reason", reason)]);
            }
        }
        SelfMetrics {
            registry,
            errors_total,
            scan_duration,
            notifications_total,
            notifications_pending,
        }
    }

    pub fn count_notification(&self, channel: &'static str, result: &'static str) {
        self.notifications_total
            .get_or_create(&[("channel", channel), ("result", result)])
            .inc();
    }

    /// `delta` messages joined (+) or left (−) the delivery queue.
    pub fn notifications_queued(&self, delta: i64) {
        self.notifications_pending.inc_by(delta);
    }

    pub fn count_error(&self, source: &'static str, reason: &'static str) {
        self.errors_total
            .get_or_create(&[("source", source), ("reason", reason)])
            .inc();
    }

    pub fn observe_scan(&self, source: &'static str, seconds: f64) {
        self.scan_duration
            .get_or_create(&[("source", source)])
            .observe(seconds);
    }

    fn encode(&self) -> String {
        let mut out = String::new();
        // Ends with `# EOF`: this is the last part of the page.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// Writes `value` in Prometheus's float syntax.
fn number(out: &mut String, value: f64) {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        let _ = write!(out, "{}", value as i64);
    } else {
        let _ = write!(out, "{value}");
    }
}

/// Escapes a label value (`\`, `"`, newline).
fn escape(out: &mut String, value: &str) {
    for ch in value.chars() {
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

fn part_labels(part: &Part) -> &[String] {
    part.rendered.get_or_init(|| {
        part.credentials
            .iter()
            .map(|c| label_set(c, None))
            .collect()
    })
}

/// One gauge family: which credentials it covers and the value of each.
struct CredentialFamily {
    name: &'static str,
    help: &'static str,
    value: fn(&Credential, Timestamp) -> Option<f64>,
}

const CREDENTIAL_FAMILIES: &[CredentialFamily] = &[
    CredentialFamily {
        name: "lapse_credential_expires_in_seconds",
        help: "Seconds until the credential lapses (negative once it has); computed at scrape time",
        value: |c, now| c.expires_in(now).map(|s| s as f64),
    },
    CredentialFamily {
        name: "lapse_credential_not_after_timestamp_seconds",
        help: "When the credential lapses, as a Unix timestamp",
        value: |c, _| c.not_after.map(|t| t as f64),
    },
    CredentialFamily {
        name: "lapse_credential_not_before_timestamp_seconds",
        help: "When the credential became valid (or was issued), as a Unix timestamp",
        value: |c, _| c.not_before.map(|t| t as f64),
    },
    CredentialFamily {
        name: "lapse_credential_validity_seconds",
        help: "The whole validity window, not_after minus not_before",
        value: |c, _| c.validity_window().map(|s| s as f64),
    },
    CredentialFamily {
        name: "lapse_credential_expired",
        help: "1 if the credential has lapsed, else 0",
        value: |c, now| c.expires_in(now).map(|s| if s <= 0 { 1.0 } else { 0.0 }),
    },
    CredentialFamily {
        name: "lapse_credential_no_expiry",
        help: "1 for a credential that never lapses (or whose expiry nothing states)",
        value: |c, _| c.not_after.is_none().then_some(1.0),
    },
    CredentialFamily {
        name: "lapse_credential_warn_after_timestamp_seconds",
        help: "Bound service-account tokens: when the kubelet should have rotated it",
        value: |c, _| c.warn_after.map(|t| t as f64),
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
    snapshot: &Snapshot,
    self_metrics: &SelfMetrics,
    now: Timestamp,
    openmetrics: bool,
) -> String {
    let mut page = String::new();
    render_chunks(snapshot, self_metrics, now, openmetrics, &mut |chunk| {
        page.push_str(&chunk)
    });
    page
}

/// Pieces of the page handed out as they fill, so a large page is sent
/// while it is written and never held whole.
pub const CHUNK_BYTES: usize = 256 * 1024;

/// Renders the page in chunks of about [`CHUNK_BYTES`], in order.
pub fn render_chunks(
    snapshot: &Snapshot,
    self_metrics: &SelfMetrics,
    now: Timestamp,
    openmetrics: bool,
    emit: &mut dyn FnMut(String),
) {
    let flush = |out: &mut String, emit: &mut dyn FnMut(String)| {
        if out.len() >= CHUNK_BYTES {
            emit(std::mem::replace(
                out,
                String::with_capacity(CHUNK_BYTES + 4096),
            ));
        }
    };
    let visible: Vec<(&Credential, &str)> = {
        let labels: Vec<&[String]> = snapshot
            .assembled
            .parts
            .iter()
            .map(|p| part_labels(p))
            .collect();
        snapshot
            .assembled
            .visible()
            .map(|(pi, ci, c)| (c, labels[pi][ci].as_str()))
            .collect()
    };
    // Distinct label sets, whatever the inputs: a repeat gets `index="N~k"`.
    let mut seen: HashSet<&str> = HashSet::with_capacity(visible.len());
    let mut renamed: HashSet<String> = HashSet::new();
    let mut rows: Vec<(&Credential, Cow<str>)> = Vec::with_capacity(visible.len());
    for (c, labels) in &visible {
        if seen.insert(labels) {
            rows.push((c, Cow::Borrowed(labels)));
            continue;
        }
        let fresh = (2..)
            .map(|n| label_set(c, Some(n)))
            .find(|l| !seen.contains(l.as_str()) && !renamed.contains(l))
            .unwrap_or_default();
        renamed.insert(fresh.clone());
        rows.push((c, Cow::Owned(fresh)));
    }
    let mut out = String::with_capacity(CHUNK_BYTES + 4096);
    for family in CREDENTIAL_FAMILIES {
        family_header(&mut out, family.name, family.help, "gauge");
        for (c, labels) in &rows {
            if let Some(v) = (family.value)(c, now) {
                sample(&mut out, family.name, labels, v);
                flush(&mut out, emit);
            }
        }
    }

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
    let error_paths: HashSet<&str> = snapshot.all_errors().map(|e| e.path.as_str()).collect();
    family_header(
        &mut out,
        "lapse_file_errors",
        "Paths currently in error (unreadable or undecodable)",
        "gauge",
    );
    let _ = writeln!(out, "lapse_file_errors {}", error_paths.len());

    let registry = self_metrics.encode();
    if openmetrics {
        out.push_str(&registry);
    } else {
        out.push_str(&classic(&registry));
    }
    emit(out);
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
        escape(&mut out, "a\"b\\c\nd");
        assert_eq!(out, "a\\\"b\\\\c\\nd");
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
