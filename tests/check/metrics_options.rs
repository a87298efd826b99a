//! What `/metrics` writes, chosen in lapse.yaml (`metrics:`) or by flags
//! (`--metrics.families`, `--metrics.label`): constant labels on every
//! series, opt-in families, serial and fingerprint on every series, and
//! clear start-up errors naming the field.

use super::serve_http::one_cert;
use crate::support::*;
use serde_json::json;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};
use time::macros::datetime;

const DEADLINE: Duration = Duration::from_secs(30);

/// A certificate (serve_http's, certs/web.crt, 2025-06-01 to 2031-06-01)
/// and a JWT whose `sub` names a service account.
fn tree(s: &Scratch) -> Cert {
    let leaf = one_cert(s);
    let token = jwt(
        json!({"sub": "system:serviceaccount:ci:deployer", "iat": 1_780_000_000, "exp": 1_900_000_000}),
        "options-signature",
    );
    s.write("certs/ci.jwt", &token);
    leaf
}

fn families(m: &Exposition) -> BTreeSet<&str> {
    m.samples
        .iter()
        .map(|s| s.name.as_str())
        .filter(|n| n.starts_with("lapse_credential_"))
        .collect()
}

#[test]
fn constant_labels_from_flags_are_on_every_series_and_every_family_is_opt_in() {
    let s = Scratch::new();
    let leaf = tree(&s);
    let server = s
        .serve()
        .args([
            "--metrics.label",
            "node=worker-1",
            "--metrics.label",
            "zone=eu-1a",
        ])
        .args(["--metrics.families", "all", "certs"])
        .start();
    let m = server.metrics();
    // Every series lapse writes: the credentials', the sources', its own.
    for sample in &m.samples {
        assert_eq!(sample.label("node"), "worker-1", "{sample:?}");
        assert_eq!(sample.label("zone"), "eu-1a", "{sample:?}");
    }
    for own in [
        "lapse_build_info",
        "lapse_source_up",
        "lapse_file_errors",
        "process_open_fds",
    ] {
        assert_eq!(
            m.find(own, &[("node", "worker-1")]).len(),
            1,
            "{own}\n{}",
            m.text
        );
    }
    assert_eq!(
        families(&m),
        BTreeSet::from([
            "lapse_credential_expired",
            "lapse_credential_expires_in_seconds",
            "lapse_credential_info",
            "lapse_credential_not_after_timestamp_seconds",
            "lapse_credential_not_before_timestamp_seconds",
            "lapse_credential_validity_seconds",
        ])
    );
    m.assert_window(
        &[
            ("path", "certs/web.crt"),
            ("fingerprint", &leaf.fingerprint_label()),
        ],
        unix(datetime!(2025-06-01 0:00 UTC)),
        unix(datetime!(2031-06-01 0:00 UTC)),
    );
    // A token's principal is its `subject` label, so an alert can name it.
    let token = m.one(
        "lapse_credential_expires_in_seconds",
        &[("path", "certs/ci.jwt")],
    );
    assert_eq!(token.label("subject"), "system:serviceaccount:ci:deployer");
    assert_eq!(token.label("kind"), "jwt");
    assert_eq!(
        m.value(
            "lapse_credential_not_after_timestamp_seconds",
            &[("path", "certs/ci.jwt")]
        ),
        1_900_000_000.0
    );
    assert_eq!(
        m.value(
            "lapse_credential_validity_seconds",
            &[("path", "certs/ci.jwt")]
        ),
        120_000_000.0
    );
    // The certificate's principal is its subject_cn; no `subject` label.
    let cert = m.one(
        "lapse_credential_validity_seconds",
        &[("path", "certs/web.crt")],
    );
    assert_eq!(cert.label("subject_cn"), "web.example");
    assert!(!cert.labels.contains_key("subject"), "{cert:?}");
}

#[test]
fn the_metrics_section_picks_families_and_puts_fingerprints_on_every_series() {
    let s = Scratch::new();
    let leaf = tree(&s);
    s.write(
        "lapse.yaml",
        "metrics:\n  families: [lapse_credential_expires_in_seconds]\n  \
         descriptive_labels: every_series\n  labels: {cluster: east}\n",
    );
    let server = s.serve().args(["--config", "lapse.yaml", "certs"]).start();
    let m = server.metrics();
    assert_eq!(
        families(&m),
        BTreeSet::from(["lapse_credential_expires_in_seconds"])
    );
    let cert = m.one(
        "lapse_credential_expires_in_seconds",
        &[("path", "certs/web.crt")],
    );
    assert_eq!(cert.label("fingerprint"), leaf.fingerprint_label());
    assert_eq!(cert.label("cluster"), "east");
    assert!(!cert.label("serial").is_empty(), "{cert:?}");
    assert_eq!(m.value("lapse_source_up", &[("cluster", "east")]), 1.0);
}

#[test]
fn a_bad_metrics_section_or_flag_is_refused_naming_the_field() {
    let s = Scratch::new();
    tree(&s);
    s.write(
        "lapse.yaml",
        "metrics:\n  families: [expired, not_after]\n  descriptive_labels: nowhere\n  \
         labels: {fingerprint: x, ok_label: fine}\n",
    );
    let out = s
        .serve()
        .args(["--config", "lapse.yaml", "certs"])
        .run_to_exit(Duration::from_secs(5));
    out.assert_code(3);
    for problem in [
        "lapse.yaml: metrics.families[1]: unknown family \"not_after\" (expected one of: expires_in_seconds,",
        "lapse.yaml: metrics.descriptive_labels: \"nowhere\": expected info or every_series",
        "lapse.yaml: metrics.labels.fingerprint: \"fingerprint\" is a label lapse writes itself; pick another name",
    ] {
        assert_contains(&out.stderr, problem);
    }
    assert_eq!(out.stderr.lines().count(), 3, "{}", out.stderr);

    let out = s
        .serve()
        .args(["--metrics.label", "kind=x", "certs"])
        .run_to_exit(Duration::from_secs(5));
    out.assert_code(3);
    assert_contains(
        &out.stderr,
        "invalid value 'kind=x' for '--metrics.label <NAME=VALUE>': \"kind\" is a label lapse writes itself",
    );
}

#[test]
fn a_reload_keeps_the_metrics_choices_until_restart_and_says_so() {
    let s = Scratch::new();
    tree(&s);
    s.write("lapse.yaml", "metrics: {labels: {node: a}}\n");
    let server = s.serve().args(["--config", "lapse.yaml", "certs"]).start();
    s.write("lapse.yaml", "metrics: {labels: {node: b}}\n");
    server.signal("HUP");
    let line = "metrics: families and labels not applied: they change only on restart";
    let started = Instant::now();
    while !server.stderr().contains(line) {
        assert!(
            started.elapsed() < DEADLINE,
            "not logged: {line:?}\n{}",
            server.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let m = server.metrics();
    assert_eq!(
        m.find("lapse_credential_info", &[("node", "a")]).len(),
        2,
        "{}",
        m.text
    );
    assert!(m.find("lapse_credential_info", &[("node", "b")]).is_empty());
}
