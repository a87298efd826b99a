//! The real consumers: a Prometheus server (Debian's `prometheus`
//! package) scrapes `lapse serve` and answers queries with the exact
//! values, and `promtool check metrics` accepts the exposition.
//!
//! CI installs the package; a machine without it fails these tests with a
//! message saying so instead of skipping them silently.

use crate::support::prometheus::{PROMETHEUS, PROMTOOL, Prometheus, require};
use crate::support::*;
use serde_json::{Value, json};
use std::process::{Command, Stdio};
use time::macros::datetime;

/// A tree that exercises every kind of series: a certificate, a chain, a
/// token without expiry, a broken file and colliding labels.
fn varied_tree(s: &Scratch) -> Cert {
    let ca = Cert::ca(
        "prom-ca",
        datetime!(2025-01-01 0:00 UTC),
        datetime!(2040-01-01 0:00 UTC),
    );
    let web = ca.issue(
        "web.example",
        datetime!(2025-07-01 0:00 UTC),
        datetime!(2031-07-01 12:34 UTC),
    );
    s.write("certs/web.crt", &web.pem);
    s.write("certs/chain.pem", bundle(&[&web, &ca]));
    s.write(
        "certs/forever.jwt",
        jwt(json!({"sub": "forever"}), "sig-prom"),
    );
    s.write("certs/broken.crt", &web.pem[..web.pem.len() / 2]);
    let user = format!(
        "- name: dup\n  user:\n    client-certificate-data: {}\n",
        b64(&web.pem)
    );
    s.write(
        "kube/config",
        format!("apiVersion: v1\nkind: Config\nusers:\n{user}{user}"),
    );
    web
}

/// The one sample's value in a result vector.
#[track_caller]
fn only_value(result: &[Value]) -> f64 {
    assert_eq!(result.len(), 1, "expected one series: {result:#?}");
    result[0]["value"][1]
        .as_str()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("not a sample: {result:#?}"))
}

#[test]
fn prometheus_scrapes_lapse_and_reads_exact_values() {
    require(PROMETHEUS);
    let s = Scratch::new();
    let web = varied_tree(&s);
    let not_after = unix(datetime!(2031-07-01 12:34 UTC));
    let before = unix_now();
    let lapse = s.serve().args(["certs", "kube/config"]).start();
    let prometheus = Prometheus::start(&s, lapse.port);

    // The fingerprint is on lapse_credential_info; the README's join
    // brings it to any family.
    let selector = format!(
        "{{path=\"certs/web.crt\",fingerprint=\"{}\"}}",
        web.fingerprint_label()
    );
    let join = |family: &str| {
        format!(
            "{family} * ignoring(serial, fingerprint) group_left(serial, fingerprint) \
             lapse_credential_info{selector}"
        )
    };
    let result = prometheus.query_until_present(&join("lapse_credential_validity_seconds"));
    assert_eq!(
        only_value(&result),
        (not_after - unix(datetime!(2025-07-01 0:00 UTC))) as f64,
        "{result:#?}"
    );
    let labels = &result[0]["metric"];
    assert_fields(
        labels,
        json!({
            "job": "lapse", "instance": format!("127.0.0.1:{}", lapse.port), "kind": "x509",
            "source": "file", "path": "certs/web.crt", "index": "0", "subject_cn": "web.example",
            "issuer_cn": "prom-ca", "fingerprint": web.fingerprint_label(),
        }),
    );
    let serial = labels["serial"].as_str().unwrap_or_default();
    assert!(
        !serial.is_empty() && serial.chars().all(|c| c.is_ascii_hexdigit()),
        "{labels}"
    );
    // The value series carry neither (a renewal keeps their identity).
    let plain = prometheus.query("lapse_credential_validity_seconds{path=\"certs/web.crt\"}");
    assert_fields(
        &plain[0]["metric"],
        json!({
            "__name__": "lapse_credential_validity_seconds", "job": "lapse",
            "instance": format!("127.0.0.1:{}", lapse.port), "kind": "x509", "source": "file",
            "path": "certs/web.crt", "index": "0", "subject_cn": "web.example", "issuer_cn": "prom-ca",
        }),
    );

    let expires_in = only_value(&prometheus.query(&join("lapse_credential_expires_in_seconds")));
    let after = unix_now();
    let (low, high) = ((not_after - after) as f64, (not_after - before) as f64);
    assert!(
        (low..=high).contains(&expires_in),
        "lapse_credential_expires_in_seconds via Prometheus = {expires_in}, expected within [{low}, {high}]"
    );

    // Everything else on the page made it in too: colliding labels, a
    // series without expiry, counters and the gauge of files in error.
    assert_eq!(
        only_value(
            &prometheus.query("count(lapse_credential_expires_in_seconds{path=\"kube/config\"})")
        ),
        2.0
    );
    assert_eq!(
        only_value(&prometheus.query("lapse_credential_no_expiry{path=\"certs/forever.jwt\"}")),
        1.0
    );
    assert_eq!(only_value(&prometheus.query("lapse_file_errors")), 1.0);
    assert!(
        only_value(&prometheus.query("lapse_errors_total{source=\"files\",reason=\"parse\"}"))
            >= 1.0
    );
    assert_eq!(only_value(&prometheus.query("up{job=\"lapse\"}")), 1.0);
    let targets = prometheus.get("/api/v1/targets").expect("targets").body;
    let targets: Value = serde_json::from_str(&targets).expect("targets JSON");
    let target = &targets["data"]["activeTargets"][0];
    assert_eq!(target["health"], "up", "{target:#}");
    assert_eq!(target["lastError"], "", "{target:#}");
}

#[test]
fn promtool_accepts_the_exposition() {
    require(PROMTOOL);
    let s = Scratch::new();
    varied_tree(&s);
    let lapse = s.serve().args(["certs", "kube/config"]).start();
    let page = lapse.get("/metrics");
    assert_eq!(page.status, 200);
    assert_contains(&page.body, "lapse_credential_no_expiry{");
    assert_contains(&page.body, "lapse_file_errors 1");

    let mut promtool = Command::new(PROMTOOL)
        .args(["check", "metrics"])
        .env_clear()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool");
    std::io::Write::write_all(
        &mut promtool.stdin.take().expect("promtool's stdin"),
        page.body.as_bytes(),
    )
    .expect("write to promtool");
    let out = promtool.wait_with_output().expect("wait for promtool");
    assert!(
        out.status.success(),
        "promtool check metrics failed ({})\n--- stdout ---\n{}\n--- stderr ---\n{}\n--- /metrics ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        page.body
    );
}
