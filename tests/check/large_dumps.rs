//! Whole-cluster dumps: `kubectl get secrets -A -o yaml` of thousands of
//! TLS Secrets, as a List and as a `---` stream, read whole whatever their
//! number of objects; and the YAML limits that remain (aliases, nesting),
//! each named when reached.
//!
//! The dumps come from `bench/large_dump.py write` (Python's
//! `cryptography`): Secret I holds certificate `CN=host-I.example.com`,
//! not_after 2027-01-01 + I hours, except the first K, which expired at
//! 2026-01-01 + I hours.

use crate::support::*;
use std::process::Command;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use time::macros::datetime;

/// Writes a dump of `n` Secrets (`--stream`: a `---` stream) to `name`.
fn write_dump(s: &Scratch, name: &str, n: usize, expired: usize, stream: bool) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/bench/large_dump.py");
    let mut cmd = Command::new("python3");
    cmd.args([script, "write", &n.to_string()])
        .arg(s.path(name))
        .args(["--expired", &expired.to_string()]);
    if stream {
        cmd.arg("--stream");
    }
    let out = cmd.output().expect("run python3");
    assert_success("bench/large_dump.py", &out);
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap()
}

/// `(entry, not_after, status)` of every certificate the dump holds.
fn expected(n: usize, expired: usize) -> Vec<(String, String, String)> {
    let mut all: Vec<_> = (0..n)
        .map(|i| {
            let hours = time::Duration::hours(i as i64);
            let (not_after, status) = if i < expired {
                (datetime!(2026-01-01 0:00 UTC) + hours, "expired")
            } else {
                (datetime!(2027-01-01 0:00 UTC) + hours, "ok")
            };
            (
                format!("secret ns-{}/web-{i}-tls tls.crt", i % 100),
                rfc3339(not_after),
                status.to_string(),
            )
        })
        .collect();
    all.sort();
    all
}

fn found(report: &Report) -> Vec<(String, String, String)> {
    let mut all: Vec<_> = report
        .credentials()
        .iter()
        .map(|c| {
            (
                c["entry"].as_str().unwrap().to_string(),
                c["not_after"].as_str().unwrap().to_string(),
                c["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    all.sort();
    all
}

fn assert_whole_dump(name: &str, n: usize, expired: usize, stream: bool) {
    let s = Scratch::new();
    write_dump(&s, name, n, expired, stream);

    let report = s.check().arg(name).json();

    report
        .assert_no_errors()
        .assert_credential_count(n)
        .assert_code(2);
    assert_eq!(found(&report), expected(n, expired));
    assert!(report.credentials().iter().all(|c| c["path"] == name));
    // The key every Secret holds never reaches the report, whole or in part.
    let text = std::fs::read_to_string(s.path(name)).unwrap();
    let key = text
        .split("tls.key: ")
        .nth(1)
        .unwrap()
        .lines()
        .next()
        .unwrap();
    let report_text = report.dump();
    let middle = &key[key.len() / 2..][..40];
    assert!(!report_text.contains(middle), "the key leaked");
}

/// 6,000 TLS Secrets, 9.7 MB: past the YAML library's default node budget
/// (250,000), which once made the whole file one "invalid YAML" entry.
#[test]
fn a_kubectl_list_of_6000_tls_secrets_gives_every_certificate() {
    assert_whole_dump("secrets.yaml", 6_000, 10, false);
}

/// 1,100 Secrets as a `---` stream, 1.7 MB: past the library's default
/// of 1,024 documents.
#[test]
fn a_stream_of_1100_secrets_gives_every_certificate() {
    assert_whole_dump("stream.yaml", 1_100, 3, true);
}

/// The single error entry of a file that fails at a YAML limit.
fn limit_error(name: &str, text: &str) -> String {
    let s = Scratch::new();
    s.write(name, text);
    let report = s.check().arg(name).json();
    report
        .assert_credential_count(0)
        .assert_error_count(1)
        .assert_code(3);
    assert_eq!(report.errors()[0]["path"], name);
    report.errors()[0]["reason"].as_str().unwrap().to_string()
}

/// A billion laughs, padded to 4 MB with a comment: limits that grow with
/// the input's length do not let its aliases grow with it.
#[test]
fn a_padded_billion_laughs_fails_at_the_alias_limit() {
    let mut text = String::from("token: &a0 [lol]\n");
    for level in 1..=40 {
        text.push_str(&format!("l{level}: &a{level} [*a{0}, *a{0}]\n", level - 1));
    }
    text.push_str(&format!("# {}\n", "x".repeat(4 << 20)));
    assert_eq!(
        limit_error("laughs.yaml", &text),
        "YAML: aliases expand to more than 250000 events (alias-bomb guard)"
    );
}

/// 50,001 aliases to 6,000 anchors (few enough per anchor to pass the
/// ratio guard): the alias count is the limit.
#[test]
fn more_than_50000_aliases_fail_at_the_alias_count() {
    let mut text = String::from("certificate:\n");
    for i in 0..6_000 {
        text.push_str(&format!("  a{i}: &a{i} x\n"));
    }
    let refs: Vec<String> = (0..50_001).map(|i| format!("*a{}", i % 6_000)).collect();
    text.push_str(&format!("refs: [{}]\n", refs.join(", ")));
    assert_eq!(
        limit_error("aliases.yaml", &text),
        "YAML: more than 50000 aliases (alias-bomb guard)"
    );
}

/// Many aliases of one anchor: the ratio guard.
#[test]
fn a_hundred_aliases_of_one_anchor_fail_at_the_ratio_guard() {
    let refs = vec!["*a"; 100].join(", ");
    let text = format!("token: &a [x, y]\nrefs: [{refs}]\n");
    assert_eq!(
        limit_error("ratio.yaml", &text),
        "YAML: more than 10 aliases per anchor (alias-bomb guard)"
    );
}

/// Block and flow nesting past 64 levels.
#[test]
fn nesting_deeper_than_64_fails_at_the_depth_limit() {
    let flow = format!("token: {}x{}\n", "[".repeat(65), "]".repeat(65));
    assert_eq!(
        limit_error("flow.yaml", &flow),
        "YAML: nesting deeper than 64"
    );
    let flow = format!("token: {}x{}\n", "[".repeat(3_000), "]".repeat(3_000));
    assert_eq!(
        limit_error("flow3000.yaml", &flow),
        "YAML: nesting deeper than 64"
    );
    let mut block = String::from("token:\n");
    for level in 1..=70 {
        block.push_str(&" ".repeat(level));
        block.push_str("a:\n");
    }
    assert_eq!(
        limit_error("block.yaml", &block),
        "YAML: nesting deeper than 64"
    );
}
