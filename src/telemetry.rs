//! lapse's own metrics: errors counted by source and reason, scan
//! durations, notifications, build information, and on Linux the
//! `process_*` metrics every Prometheus client library exports
//! ([`process`]). Sources and the notifier
//! count into one [`SelfMetrics`]; the `/metrics` reader encodes it after
//! the credential families. Error reasons come from [`ErrorReason`]
//! itself, so a new reason is counted, and starts at 0, everywhere.

mod process;

pub use process::{release_free_memory, tune_allocator};

use crate::credential::ErrorReason;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

/// What `lapse --version` prints after `lapse `: the version, then the
/// revision, the build date (`SOURCE_DATE_EPOCH`, else the commit's) and
/// the compiler, one a line, as Prometheus's tools print theirs.
pub const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    "\n  revision:   ",
    env!("LAPSE_REVISION"),
    "\n  build date: ",
    env!("LAPSE_BUILD_DATE"),
    "\n  rustc:      ",
    env!("LAPSE_RUSTC_VERSION"),
    "\n  platform:   ",
    env!("LAPSE_TARGET"),
);

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
    notify: NotifyMetrics,
    watches: WatchMetrics,
}

/// The notifier's delivery outcomes beyond attempts: warnings still owed,
/// and recipients refused for good. Registered only when a channel is
/// configured (without one they could only ever read 0).
#[derive(Clone, Default)]
struct NotifyMetrics {
    owed: Gauge,
    refused_total: Family<[(&'static str, &'static str); 2], Counter>,
}

impl NotifyMetrics {
    fn register(&self, registry: &mut Registry) {
        registry.register(
            "lapse_notifications_owed",
            "Credentials whose latest warning a recipient refused for good (550, 551, 553); \
             offered again when lapse restarts or reloads",
            self.owed.clone(),
        );
        registry.register(
            "lapse_notifications_refused",
            "Recipients the mail server refused for good, by channel and reason \
             (mailbox_unavailable 550, user_not_local 551, mailbox_name_not_allowed 553)",
            self.refused_total.clone(),
        );
    }
}

/// The file watcher's blind spots: paths whose watch could not be added.
struct WatchMetrics {
    failures_total: Family<SourceOnly, Counter>,
    polled: Family<SourceOnly, Gauge>,
}

impl WatchMetrics {
    fn register(registry: &mut Registry) -> Self {
        let failures_total = Family::<SourceOnly, Counter>::default();
        registry.register(
            "lapse_watch_failures",
            "Paths whose filesystem watch could not be added (each time one starts being polled)",
            failures_total.clone(),
        );
        let polled = Family::<SourceOnly, Gauge>::default();
        registry.register(
            "lapse_watch_polled_paths",
            "Paths polled because a filesystem watch could not be added",
            polled.clone(),
        );
        WatchMetrics {
            failures_total,
            polled,
        }
    }
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
    /// `sources`: each source's name and the error reasons it can count
    /// (their counters start at 0).
    pub fn new(sources: &[(&'static str, &[ErrorReason])], channels: &[&'static str]) -> Self {
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
                ("rustversion", env!("LAPSE_RUST_SEMVER")),
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
        let notify = NotifyMetrics::default();
        if !channels.is_empty() {
            notify.register(&mut registry);
        }
        for channel in channels {
            for result in ["sent", "failed"] {
                let _ =
                    notifications_total.get_or_create(&[("channel", channel), ("result", result)]);
            }
        }
        // Every (source, reason) exists from the start, at zero, so rate()
        // and increase() see the first error.
        for (source, reasons) in sources {
            for reason in reasons.iter() {
                let _ =
                    errors_total.get_or_create(&[("source", source), ("reason", reason.as_str())]);
            }
        }
        let watches = WatchMetrics::register(&mut registry);
        SelfMetrics {
            registry,
            errors_total,
            scan_duration,
            notifications_total,
            notifications_pending,
            notify,
            watches,
        }
    }

    /// How many credentials' warnings are owed right now.
    pub fn set_notifications_owed(&self, owed: usize) {
        self.notify.owed.set(owed as i64);
    }

    /// How many credentials' warnings are owed, as last set.
    pub fn notifications_owed(&self) -> usize {
        usize::try_from(self.notify.owed.get()).unwrap_or(0)
    }

    /// Makes `reasons` exist at 0 for `channel`, so the first refusal is seen by increase().
    pub fn start_refusals(&self, channel: &'static str, reasons: &[&'static str]) {
        for reason in reasons {
            let _ = self
                .notify
                .refused_total
                .get_or_create(&[("channel", channel), ("reason", reason)]);
        }
    }

    pub fn count_refusal(&self, channel: &'static str, reason: &'static str) {
        self.notify
            .refused_total
            .get_or_create(&[("channel", channel), ("reason", reason)])
            .inc();
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

    pub fn count_error(&self, source: &'static str, reason: ErrorReason) {
        self.errors_total
            .get_or_create(&[("source", source), ("reason", reason.as_str())])
            .inc();
    }

    pub fn observe_scan(&self, source: &'static str, seconds: f64) {
        self.scan_duration
            .get_or_create(&[("source", source)])
            .observe(seconds);
    }

    /// A source that watches starts its watch series at 0.
    pub fn watching(&self, source: &'static str) {
        let _ = self
            .watches
            .failures_total
            .get_or_create(&[("source", source)]);
        self.watch_polled(source, 0);
    }

    /// A path of `source` could not be watched and is now polled.
    pub fn count_watch_failure(&self, source: &'static str) {
        self.watches
            .failures_total
            .get_or_create(&[("source", source)])
            .inc();
    }

    /// How many paths `source` polls now.
    pub fn watch_polled(&self, source: &'static str, paths: usize) {
        self.watches
            .polled
            .get_or_create(&[("source", source)])
            .set(paths as i64);
    }

    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Ends with `# EOF`: this is the last part of the page.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        in_label_order(&out)
    }
}

// ---- reloads: SIGHUP and the serving certificate

/// How configuration reloads went, as Prometheus reports its own, and
/// the serving certificate's failed re-reads. Made before the rest (the
/// web configuration, read first, counts into it) and added to
/// [`SelfMetrics`] with [`SelfMetrics::with_reload`].
#[derive(Clone, Debug, Default)]
pub struct ReloadMetrics {
    successful: Gauge,
    success_time: Gauge,
    /// Handed to the web configuration's certificate resolver.
    pub certificate_failures: Counter,
}

impl ReloadMetrics {
    /// The configuration was loaded (at start-up, or reloaded) at `now`.
    pub fn succeeded(&self, now: i64) {
        self.successful.set(1);
        self.success_time.set(now);
    }

    /// A reload was refused; the previous configuration stays.
    pub fn failed(&self) {
        self.successful.set(0);
    }
}

impl SelfMetrics {
    /// Adds the `process_*` metrics of this process, read at each scrape
    /// (nothing on systems without `/proc`).
    pub fn with_process(mut self) -> Self {
        if let Some(collector) = process::Process::new() {
            self.registry.register_collector(Box::new(collector));
        }
        self
    }

    pub fn with_reload(mut self, reload: &ReloadMetrics) -> Self {
        self.registry.register(
            "lapse_config_last_reload_successful",
            "Whether the last configuration reload (SIGHUP) succeeded",
            reload.successful.clone(),
        );
        self.registry.register(
            "lapse_config_last_reload_success_timestamp_seconds",
            "When the configuration was last loaded successfully (start-up or SIGHUP)",
            reload.success_time.clone(),
        );
        self.registry.register(
            "lapse_web_certificate_reload_failures",
            "Times a replaced serving certificate or key could not be used (the previous pair kept)",
            reload.certificate_failures.clone(),
        );
        self
    }

    /// The notifier was stopped by a reload: what it had queued is planned
    /// again by the next one, which counts it again.
    pub fn notifier_stopped(&self) {
        self.notifications_pending.set(0);
    }

    /// A source started by a reload: its error counters start at 0, as
    /// those of the sources present at start-up do.
    pub fn declare_source(&self, source: &'static str, reasons: &[ErrorReason]) {
        for reason in reasons {
            let _ = self
                .errors_total
                .get_or_create(&[("source", source), ("reason", reason.as_str())]);
        }
    }
}

/// The same exposition with each family's samples in the order of their
/// label sets. prometheus-client keeps a family's series in a hash map,
/// so two pages of one process listed them in different orders; a
/// histogram's buckets keep their order (`le` is not part of the key).
fn in_label_order(text: &str) -> String {
    fn key(sample: &str) -> String {
        let labels = sample
            .split_once('{')
            .and_then(|(_, rest)| rest.split_once('}'))
            .map(|(labels, _)| labels)
            .unwrap_or("");
        labels
            .split(',')
            .filter(|l| !l.starts_with("le="))
            .collect::<Vec<_>>()
            .join(",")
    }
    let mut out = String::with_capacity(text.len());
    let mut samples: Vec<&str> = Vec::new();
    let flush = |samples: &mut Vec<&str>, out: &mut String| {
        samples.sort_by_cached_key(|s| key(s));
        for s in samples.drain(..) {
            out.push_str(s);
            out.push('\n');
        }
    };
    for line in text.lines() {
        if line.starts_with('#') {
            flush(&mut samples, &mut out);
            out.push_str(line);
            out.push('\n');
        } else {
            samples.push(line);
        }
    }
    flush(&mut samples, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_come_in_label_order_and_buckets_keep_theirs() {
        let text = "# HELP a A.\n# TYPE a counter\na_total{source=\"files\",reason=\"read\"} 0\n\
                    a_total{source=\"files\",reason=\"loop\"} 1\n# HELP h H.\n# TYPE h histogram\n\
                    h_bucket{source=\"z\",le=\"0.1\"} 0\nh_bucket{source=\"z\",le=\"+Inf\"} 0\nh_sum{source=\"z\"} 0\n\
                    h_bucket{source=\"a\",le=\"0.1\"} 1\nh_bucket{source=\"a\",le=\"+Inf\"} 1\nh_sum{source=\"a\"} 1\n# EOF\n";
        assert_eq!(
            in_label_order(text),
            "# HELP a A.\n# TYPE a counter\na_total{source=\"files\",reason=\"loop\"} 1\n\
             a_total{source=\"files\",reason=\"read\"} 0\n# HELP h H.\n# TYPE h histogram\n\
             h_bucket{source=\"a\",le=\"0.1\"} 1\nh_bucket{source=\"a\",le=\"+Inf\"} 1\nh_sum{source=\"a\"} 1\n\
             h_bucket{source=\"z\",le=\"0.1\"} 0\nh_bucket{source=\"z\",le=\"+Inf\"} 0\nh_sum{source=\"z\"} 0\n# EOF\n"
        );
    }
}
