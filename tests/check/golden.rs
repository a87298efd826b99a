//! The golden `/metrics` page: the fixture tree `tests/golden/tree/`
//! (written by `tests/golden/make_tree.py`, every byte reproducible),
//! scanned and published as `lapse serve` does, rendered at a pinned
//! "now", must equal `tests/golden/metrics.txt` byte for byte — and
//! promtool must accept it. `LAPSE_BLESS=1` rewrites the expected file.

use crate::support::prometheus::{PROMTOOL, require};
use lapse::credential::ErrorReason;
use lapse::inventory::{Inventory, SourceReport};
use lapse::output::metrics::{LabelCache, render};
use lapse::source::files::scanner::{ScanOptions, Scanner};
use lapse::telemetry::SelfMetrics;
use std::path::{Path, PathBuf};

/// 2026-12-01T00:00:00Z.
const NOW: i64 = 1_796_083_200;

fn page(openmetrics: bool) -> String {
    pages(openmetrics, 1).remove(0)
}

/// `n` renderings through one label cache: the first builds the rows, the
/// others reuse them (a new snapshot of the same parts for the last one).
fn pages(openmetrics: bool, n: usize) -> Vec<String> {
    let root = PathBuf::from("tests/golden/tree");
    let mut scanner = Scanner::new(ScanOptions {
        home: None,
        ..ScanOptions::default()
    });
    let delta = scanner.scan(std::slice::from_ref(&root));
    let reasons = ErrorReason::counted_by(true, false);
    let metrics = SelfMetrics::new(&[("files", &reasons)], &[]);
    for e in &delta.new_errors {
        metrics.count_error("files", e.reason);
    }
    let inventory = Inventory::new(&["files"]).with_rescan_interval("files", 300);
    // As the file source publishes after a scan.
    let publish = || {
        let report = SourceReport {
            parts: scanner.parts(),
            errors: scanner.walk_errors().to_vec(),
            up: true,
            last_scan: Some(NOW - 5),
        };
        inventory.publish("files", report);
    };
    publish();
    let cache = LabelCache::default();
    let build = format!(
        "revision=\"{}\",rustversion=\"{}\"",
        env!("LAPSE_REVISION"),
        env!("LAPSE_RUST_SEMVER")
    );
    (0..n)
        .map(|i| {
            if i > 0 && i == n - 1 {
                publish();
            }
            let snapshot = inventory.snapshot();
            let page = render(&snapshot, &cache, &metrics, NOW, openmetrics);
            // The build line names the revision and the Rust this binary was built with.
            page.replace(&build, "revision=\"REVISION\",rustversion=\"RUSTVERSION\"")
        })
        .collect()
}

fn golden(name: &str, got: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("LAPSE_BLESS").is_some() {
        std::fs::write(&path, got).expect("write the golden file");
    }
    let want = std::fs::read_to_string(&path).expect("read the golden file");
    if got != want {
        let first = got
            .lines()
            .zip(want.lines())
            .position(|(g, w)| g != w)
            .unwrap_or(got.lines().count().min(want.lines().count()));
        panic!(
            "{name} differs from line {}:\n--- expected\n{}\n--- got\n{}",
            first + 1,
            want.lines()
                .skip(first)
                .take(5)
                .collect::<Vec<_>>()
                .join("\n"),
            got.lines()
                .skip(first)
                .take(5)
                .collect::<Vec<_>>()
                .join("\n"),
        );
    }
}

#[test]
fn the_metrics_page_is_the_golden_one_byte_for_byte() {
    let openmetrics = page(true);
    golden("metrics.openmetrics.txt", &openmetrics);
    golden("metrics.txt", &page(false));
    // Rendering again from the reader's cache, for the same snapshot and
    // for a new snapshot of the same parts, gives the same page.
    let again = pages(true, 3);
    assert_eq!(
        again,
        [openmetrics.clone(), openmetrics.clone(), openmetrics]
    );
}

#[test]
fn promtool_accepts_the_golden_page() {
    require(PROMTOOL);
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/metrics.txt");
    let out = std::process::Command::new(PROMTOOL)
        .args(["check", "metrics"])
        .stdin(std::fs::File::open(&path).expect("golden file"))
        .output()
        .expect("run promtool");
    let stderr = String::from_utf8_lossy(&out.stderr);
    // promtool's linter only asks for help text and units; never a failure.
    assert!(out.status.success(), "promtool check metrics:\n{stderr}");
}
