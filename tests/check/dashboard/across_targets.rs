//! Many nodes and many clusters: each credential panel shows a credential
//! once per cluster however many targets (DaemonSet pods, replicas) export
//! it. promtool evaluates every credential query of the dashboard, as
//! Grafana sends it with All selected, over series shaped as two clusters'
//! lapse write them, and compares every sample exactly.

use super::{dashboard, expressions, substitute, substitutions};
use crate::support::Scratch;
use crate::support::prometheus::{PROMTOOL, require};
use serde_json::{Value, json};
use std::process::{Command, Stdio};

/// The labels a scrape target (or a renamed DaemonSet `node`) adds.
const TARGETS: &str =
    "without (instance, pod, node, job, container, endpoint, service, namespace, exported_node)";

const CA: &str = r#"kind="x509",source="file",path="/etc/kubernetes/pki/ca.crt",index="0",subject_cn="kubernetes""#;
const TOKEN: &str = r#"kind="jwt",source="secret",path="/api/v1/namespaces/ci/secrets/deployer",entry="secret ci/deployer token",object_namespace="ci",name="deployer",key="token",subject="system:serviceaccount:ci:deployer""#;

/// east: the CA on three nodes of a DaemonSet (one scraped by annotations,
/// so its node label arrived as exported_node), 100,000 s left of 400,000;
/// a token without expiry read by two replicas. west: one lapse, its CA
/// lapsed 100,000 s ago, no lapse_credential_info.
fn input_series() -> Vec<Value> {
    let mut series = Vec::new();
    let mut add = |s: String, values: &str| series.push(json!({"series": s, "values": values}));
    // The CA as one target exports it: expires_in, validity and info.
    let ca_copy = |add: &mut dyn FnMut(String, &str), t: &str| {
        add(
            format!("lapse_credential_expires_in_seconds{{{t},{CA}}}"),
            "100000x5",
        );
        add(
            format!("lapse_credential_validity_seconds{{{t},{CA}}}"),
            "400000x5",
        );
        add(
            format!(r#"lapse_credential_info{{{t},{CA},serial="01",fingerprint="e1e1"}}"#),
            "1x5",
        );
    };
    for (instance, node) in [("10.1.0.11", "east-1"), ("10.1.0.12", "east-2")] {
        let t = format!(
            r#"cluster="east",job="lapse-nodes",instance="{instance}:10070",node="{node}""#
        );
        ca_copy(&mut add, &t);
    }
    let t = r#"cluster="east",job="kubernetes-pods",instance="10.1.0.13:10070",namespace="lapse",pod="lapse-nodes-c",node="east-3",exported_node="east-3""#;
    ca_copy(&mut add, t);
    for pod in ["lapse-0", "lapse-1"] {
        let t = format!(
            r#"cluster="east",job="lapse",instance="{pod}:10070",namespace="lapse",pod="{pod}""#
        );
        add(format!("lapse_credential_no_expiry{{{t},{TOKEN}}}"), "1x5");
        add(
            format!(r#"lapse_credential_info{{{t},{TOKEN},fingerprint="d3d3"}}"#),
            "1x5",
        );
    }
    let t = r#"cluster="west",job="lapse",instance="10.2.0.5:10070""#;
    add(
        format!("lapse_credential_expires_in_seconds{{{t},{CA}}}"),
        "-100000x5",
    );
    add(
        format!("lapse_credential_validity_seconds{{{t},{CA}}}"),
        "400000x5",
    );
    series
}

/// Every credential query's exact result, by panel / refId.
fn expected(panel: &str) -> Vec<(String, f64)> {
    let east = format!(r#"cluster="east",{CA}"#);
    let west = format!(r#"cluster="west",{CA}"#);
    let one = |labels: &str, v: f64| vec![(format!("{{{labels}}}"), v)];
    match panel {
        r#""Expired" / "A""# | r#""Critical" / "A""# | r#""No expiry" / "A""# => one("", 1.0),
        r#""Warning" / "A""# | r#""OK" / "A""# => one("", 0.0),
        r#""Upcoming expiries by kind" / "A""#
        | r#""Upcoming expiries by kind" / "B""#
        | r#""Upcoming expiries by kind" / "C""# => one(r#"kind="x509""#, 1.0),
        r#""Soonest to lapse" / "A""# => vec![
            (format!("{{{west}}}"), -100000.0),
            (format!("{{{east}}}"), 100000.0),
        ],
        r#""Tokens that never expire" / "A""# => one(
            &format!(r#"cluster="east",{TOKEN},fingerprint="d3d3""#),
            1.0,
        ),
        r#""Validity window and share used" / "A""# => vec![
            (format!("{{{east}}}"), 400000.0),
            (format!("{{{west}}}"), 400000.0),
        ],
        r#""Validity window and share used" / "B""#
        | r#""Short-lived credentials: share of validity used" / "A""# => {
            vec![(format!("{{{east}}}"), 0.75), (format!("{{{west}}}"), 1.25)]
        }
        other => panic!("{other}: no expected result; add one"),
    }
}

/// Every credential query aggregates the target labels away before it
/// lists or counts (a join's info side too).
#[test]
fn credential_queries_aggregate_the_target_labels_away() {
    let d = dashboard();
    for (panel, expr) in expressions(&d) {
        for family in [
            "lapse_credential_expires_in_seconds",
            "lapse_credential_validity_seconds",
            "lapse_credential_no_expiry",
        ] {
            let uses = expr.matches(&format!("({family}{{")).count()
                + expr.matches(&format!(" {family}{{")).count();
            let aggregated = expr.matches(&format!("{TARGETS} ({family}{{")).count();
            assert_eq!(uses, aggregated, "{panel}: {family} per target: {expr}");
        }
        let info = expr.matches("lapse_credential_info{").count();
        let deduplicated = expr
            .matches(
                "topk without (instance, pod, node, job, container, endpoint, service, namespace, \
                 exported_node, serial, fingerprint) (1, lapse_credential_info{",
            )
            .count();
        assert_eq!(info, deduplicated, "{panel}: info per target: {expr}");
    }
}

#[test]
fn credential_panels_show_a_credential_once_per_cluster_however_many_targets_see_it() {
    require(PROMTOOL);
    let d = dashboard();
    let values = substitutions(&d);
    let tests: Vec<Value> = expressions(&d)
        .into_iter()
        .filter(|(_, expr)| expr.contains("lapse_credential_"))
        .map(|(panel, expr)| {
            let samples: Vec<Value> = expected(&panel)
                .into_iter()
                .map(|(labels, value)| json!({"labels": labels, "value": value}))
                .collect();
            json!({"expr": substitute(&expr, &values), "eval_time": "2m", "exp_samples": samples})
        })
        .collect();
    assert_eq!(tests.len(), 13, "credential queries");
    let file = json!({
        "rule_files": [],
        "evaluation_interval": "1m",
        "tests": [{"interval": "1m", "input_series": input_series(), "promql_expr_test": tests}],
    });
    let s = Scratch::new();
    s.write("dashboard.test.yml", file.to_string());
    let out = Command::new(PROMTOOL)
        .args(["test", "rules", "dashboard.test.yml"])
        .current_dir(s.path("."))
        .env_clear()
        .stdin(Stdio::null())
        .output()
        .expect("run promtool");
    assert!(
        out.status.success(),
        "promtool test rules over the dashboard's queries failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
