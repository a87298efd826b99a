//! The alerting rules in `alerts/`: promtool checks them and runs their
//! unit tests (`alerts/lapse.rules.test.yml`), every alert has a case that
//! fires and one that must not, the Alertmanager example routes them, and a
//! real Prometheus evaluating the rules over a real `lapse serve` raises the
//! expiry alerts for the right files.
//!
//! promtool and prometheus come from Debian's `prometheus` package, which
//! CI installs; without it these tests fail saying so. So does amtool
//! (Debian's `prometheus-alertmanager`), which checks the Alertmanager example.

use crate::support::prometheus::{PROMETHEUS, PROMTOOL, Prometheus, require};
use crate::support::*;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
use time::OffsetDateTime;

const AMTOOL: &str = "/usr/bin/amtool";
/// Prometheus starts, scrapes, evaluates the rules and raises the alerts within this.
const ALERT_DEADLINE: Duration = Duration::from_secs(60);

fn alerts_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("alerts")
}

fn rules_file() -> PathBuf {
    alerts_dir().join("lapse.rules.yml")
}

/// Runs `binary args…` in `alerts/` with a clean environment.
fn run(binary: &str, args: &[&str]) -> Output {
    Command::new(binary)
        .args(args)
        .env_clear()
        .current_dir(alerts_dir())
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run {binary}: {e}"))
}

fn yaml(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {path:?}: {e}"));
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("parse {path:?}: {e}"))
}

/// Every rule of the `lapse` group, by alert name (the `lapse-summary`
/// group records, see [`recording_rules`]).
fn rules() -> BTreeMap<String, Value> {
    let file = yaml(&rules_file());
    let groups = file["groups"].as_array().expect("groups");
    assert_eq!(groups.len(), 2, "two groups: {groups:#?}");
    assert_eq!(groups[0]["name"], "lapse");
    groups[0]["rules"]
        .as_array()
        .expect("rules")
        .iter()
        .map(|r| {
            let name = r["alert"].as_str().expect("alerting rules only");
            (name.to_string(), r.clone())
        })
        .collect()
}

#[test]
fn promtool_checks_the_rules() {
    require(PROMTOOL);
    let out = run(PROMTOOL, &["check", "rules", "lapse.rules.yml"]);
    let stdout = assert_success("promtool check rules alerts/lapse.rules.yml", &out);
    assert_contains(&stdout, "SUCCESS: 20 rules found");
}

/// The `lapse-summary` group: what it records, each tested with exact
/// values in lapse.rules.test.yml.
#[test]
fn recording_rules_are_named_by_level_and_tested() {
    let file = yaml(&rules_file());
    let group = &file["groups"][1];
    assert_eq!(group["name"], "lapse-summary");
    let records: Vec<(String, String)> = group["rules"]
        .as_array()
        .expect("rules")
        .iter()
        .map(|r| {
            (
                r["record"]
                    .as_str()
                    .expect("recording rules only")
                    .to_string(),
                r["labels"]["status"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    let want: Vec<(String, String)> = [
        ("cluster:lapse_credentials:count", "expired"),
        ("cluster:lapse_credentials:count", "critical"),
        ("cluster:lapse_credentials:count", "warning"),
        ("cluster:lapse_credentials:count", "ok"),
        ("cluster:lapse_credentials:count", "no_expiry"),
        ("cluster:lapse_credential_expires_in_seconds:min", ""),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(records, want);
    let tests = yaml(&alerts_dir().join("lapse.rules.test.yml"));
    let tested: BTreeSet<&str> = tests["tests"]
        .as_array()
        .expect("tests")
        .iter()
        .flat_map(|g| g["promql_expr_test"].as_array().into_iter().flatten())
        .map(|t| t["expr"].as_str().expect("expr"))
        .collect();
    for (record, _) in &want {
        assert!(tested.contains(record.as_str()), "{record} untested");
    }
}

/// Shipped rules read only the default families (README.md, "Metrics"),
/// and the credential alerts aggregate away every target label.
#[test]
fn rules_use_only_default_families_and_fire_once_per_credential_per_cluster() {
    let text = std::fs::read_to_string(rules_file()).expect("read the rules");
    for opt_in in [
        "lapse_credential_expired",
        "lapse_credential_not_after_timestamp_seconds",
        "lapse_credential_not_before_timestamp_seconds",
    ] {
        assert!(!text.contains(opt_in), "{opt_in} is opt-in");
    }
    assert!(
        !text.contains("$labels.namespace"),
        "namespace is object_namespace"
    );
    let rules = rules();
    let targets = "without (instance, pod, node, job, container, endpoint, service, namespace)";
    for name in [
        "LapseCredentialExpiringSoon",
        "LapseCredentialExpiringCritical",
        "LapseCredentialExpired",
        "LapseTokenWithoutExpiry",
        "LapseCredentialNotYetValid",
    ] {
        let expr = rules[name]["expr"].as_str().expect("expr");
        // Every use of a credential family is aggregated.
        let uses = expr.matches("(lapse_credential_").count();
        let aggregated = expr
            .matches(&format!("{targets} (lapse_credential_"))
            .count();
        assert_eq!(uses, aggregated, "{name}: {expr}");
        assert!(uses >= 2, "{name}: {expr}");
        assert_contains(expr, "group_left (serial, fingerprint)");
        assert!(!expr.contains("job=\""), "{name}: {expr}");
    }
    for name in ["LapseAbsent", "LapseClusterAbsent"] {
        let expr = rules[name]["expr"].as_str().expect("expr");
        assert!(!expr.contains("job="), "{name} names a job: {expr}");
    }
}

#[test]
fn promtool_rule_unit_tests_pass() {
    require(PROMTOOL);
    let out = run(PROMTOOL, &["test", "rules", "lapse.rules.test.yml"]);
    let stdout = assert_success("promtool test rules alerts/lapse.rules.test.yml", &out);
    assert_contains(&stdout, "SUCCESS");
}

#[test]
fn every_alert_is_labelled_annotated_and_tested_both_ways() {
    let rules = rules();
    let expected: BTreeSet<&str> = [
        "LapseAbsent",
        "LapseClusterAbsent",
        "LapseConfigReloadFailed",
        "LapseCredentialExpired",
        "LapseCredentialExpiringCritical",
        "LapseCredentialExpiringSoon",
        "LapseCredentialNotYetValid",
        "LapseFileErrors",
        "LapseNotificationsFailing",
        "LapseNotificationsUndeliverable",
        "LapseReadErrors",
        "LapseSourceDown",
        "LapseSourceStale",
        "LapseTokenWithoutExpiry",
    ]
    .into();
    assert_eq!(
        rules.keys().map(String::as_str).collect::<BTreeSet<_>>(),
        expected
    );
    for (name, rule) in &rules {
        let severity = rule["labels"]["severity"].as_str().unwrap_or("");
        assert!(
            ["warning", "critical"].contains(&severity),
            "{name}: severity {severity:?}"
        );
        for annotation in ["summary", "description"] {
            assert!(
                rule["annotations"][annotation]
                    .as_str()
                    .is_some_and(|a| a.contains("{{")),
                "{name}: {annotation} names nothing"
            );
        }
    }

    // Each alert has a test case where it fires (with labels and rendered
    // annotations) and one where it must not.
    let tests = yaml(&alerts_dir().join("lapse.rules.test.yml"));
    let mut fires: BTreeSet<String> = BTreeSet::new();
    let mut silent: BTreeSet<String> = BTreeSet::new();
    for group in tests["tests"].as_array().expect("tests") {
        for case in group["alert_rule_test"].as_array().into_iter().flatten() {
            let name = case["alertname"].as_str().expect("alertname").to_string();
            let alerts = case["exp_alerts"].as_array().expect("exp_alerts");
            if alerts.is_empty() {
                silent.insert(name);
                continue;
            }
            for alert in alerts {
                assert_eq!(
                    alert["exp_labels"]["severity"], rules[&name]["labels"]["severity"],
                    "{name}: {alert:#}"
                );
                for annotation in ["summary", "description"] {
                    assert!(
                        alert["exp_annotations"][annotation].is_string(),
                        "{name}: the test does not check the rendered {annotation}: {alert:#}"
                    );
                }
            }
            fires.insert(name);
        }
    }
    let all: BTreeSet<String> = rules.keys().cloned().collect();
    assert_eq!(fires, all, "alerts with a test where they fire");
    assert_eq!(silent, all, "alerts with a test where they must not fire");
}

/// The expiry windows partition the time left: warning, then critical, then expired.
#[test]
fn expiry_windows_meet_without_overlap() {
    let rules = rules();
    let expr = |name: &str| rules[name]["expr"].as_str().expect("expr").to_string();
    let soon = expr("LapseCredentialExpiringSoon");
    let critical = expr("LapseCredentialExpiringCritical");
    assert_contains(&soon, "(lapse_credential_expires_in_seconds) <= 30 * 86400");
    assert_contains(&soon, "(lapse_credential_expires_in_seconds) > 7 * 86400");
    assert_contains(
        &critical,
        "(lapse_credential_expires_in_seconds) <= 7 * 86400",
    );
    assert_contains(&critical, "(lapse_credential_expires_in_seconds) > 0");
    assert_contains(
        &expr("LapseCredentialExpired"),
        "(lapse_credential_expires_in_seconds) >= 0",
    );
}

#[test]
fn alertmanager_example_mails_lapse_alerts_by_severity() {
    let path = alerts_dir().join("alertmanager.example.yml");
    let config = yaml(&path);
    for key in ["smtp_smarthost", "smtp_from"] {
        assert!(config["global"][key].is_string(), "global.{key}");
    }
    let route = &config["route"];
    assert_eq!(
        route["group_by"],
        json!(["alertname", "cluster", "object_namespace"])
    );
    let receivers: BTreeMap<&str, &Value> = config["receivers"]
        .as_array()
        .expect("receivers")
        .iter()
        .map(|r| (r["name"].as_str().expect("receiver name"), r))
        .collect();
    assert!(receivers.contains_key(route["receiver"].as_str().expect("route.receiver")));
    let mut routed = BTreeMap::new();
    for sub in route["routes"].as_array().expect("route.routes") {
        let matchers: Vec<&str> = sub["matchers"]
            .as_array()
            .expect("matchers")
            .iter()
            .map(|m| m.as_str().expect("a matcher"))
            .collect();
        let severity = matchers
            .iter()
            .find_map(|m| m.strip_prefix("severity=\""))
            .and_then(|m| m.strip_suffix('"'))
            .unwrap_or_else(|| panic!("a route without a severity: {matchers:?}"));
        assert!(matchers.contains(&"alertname=~\"Lapse.+\""), "{matchers:?}");
        let receiver = sub["receiver"].as_str().expect("receiver");
        let mail = &receivers[receiver]["email_configs"][0]["to"];
        assert!(mail.is_string(), "{receiver} mails nobody");
        assert!(
            sub["repeat_interval"].is_string(),
            "{receiver}: repeat_interval"
        );
        routed.insert(severity.to_string(), receiver.to_string());
    }
    assert_eq!(
        routed.keys().map(String::as_str).collect::<Vec<_>>(),
        ["critical", "warning"]
    );

    assert!(
        Path::new(AMTOOL).exists(),
        "{AMTOOL} is missing: install Debian's prometheus-alertmanager package (CI does)"
    );
    let file = path.to_str().expect("a UTF-8 path");
    assert_success("amtool check-config", &run(AMTOOL, &["check-config", file]));
    let config_flag = format!("--config.file={file}");
    for (labels, receiver) in [
        (
            ["alertname=LapseCredentialExpired", "severity=critical"],
            &routed["critical"],
        ),
        (
            ["alertname=LapseCredentialExpiringSoon", "severity=warning"],
            &routed["warning"],
        ),
        (
            ["alertname=SomethingElse", "severity=critical"],
            &"default".to_string(),
        ),
    ] {
        let mut args = vec!["config", "routes", "test", config_flag.as_str()];
        args.extend(labels);
        let got = assert_success("amtool config routes test", &run(AMTOOL, &args));
        assert_eq!(got.trim(), receiver, "{labels:?}");
    }
}

/// A running Prometheus evaluating `alerts/lapse.rules.yml`; killed on drop.
/// The alert named `name` for the credential at `path`, if Prometheus has it.
fn alert<'a>(alerts: &'a [Value], name: &str, path: &str) -> Option<&'a Value> {
    alerts
        .iter()
        .find(|a| a["labels"]["alertname"] == name && a["labels"]["path"] == path)
}

#[test]
fn prometheus_raises_the_expiry_alerts_over_a_real_lapse() {
    require(PROMETHEUS);
    let s = Scratch::new();
    let now = OffsetDateTime::now_utc();
    let day = time::Duration::days(1);
    let ca = Cert::ca("alerts-ca", now - 400 * day, now + 3650 * day);
    let expired = ca.issue("old.example", now - 91 * day, now - day);
    let soon = ca.issue("soon.example", now - 30 * day, now + 3 * day);
    let fine = ca.issue("fine.example", now - 30 * day, now + 300 * day);
    s.write("certs/expired.crt", &expired.pem);
    s.write("certs/soon.crt", &soon.pem);
    s.write("certs/fine.crt", &fine.pem);
    s.write(
        "certs/forever.jwt",
        jwt(json!({"sub": "deployer"}), "sig-alerts"),
    );

    let lapse = s.serve().arg("certs").start();
    let prometheus = Prometheus::start_with_rules(&s, lapse.port, Some(&rules_file()));

    let started = Instant::now();
    let alerts = loop {
        let alerts = prometheus.api("/api/v1/alerts")["alerts"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let expired_up = alert(&alerts, "LapseCredentialExpired", "certs/expired.crt")
            .is_some_and(|a| a["state"] == "pending" || a["state"] == "firing");
        let soon_up = alert(&alerts, "LapseCredentialExpiringCritical", "certs/soon.crt")
            .is_some_and(|a| a["state"] == "pending" || a["state"] == "firing");
        let forever_up = alert(&alerts, "LapseTokenWithoutExpiry", "certs/forever.jwt")
            .is_some_and(|a| a["state"] == "pending" || a["state"] == "firing");
        // Rule groups evaluate on offsets of their own: one that ran before
        // the first scrape holds a pending `LapseAbsent` until its next
        // evaluation, which must clear it.
        let lapse_seen_up = alerts.iter().all(|a| a["labels"]["path"].is_string());
        if expired_up && soon_up && forever_up && lapse_seen_up {
            println!(
                "alerts raised {} ms after Prometheus was ready",
                started.elapsed().as_millis()
            );
            break alerts;
        }
        if started.elapsed() > ALERT_DEADLINE {
            panic!(
                "no LapseCredentialExpired for certs/expired.crt, LapseCredentialExpiringCritical \
                 for certs/soon.crt and LapseTokenWithoutExpiry for certs/forever.jwt, or an alert \
                 about lapse itself still active, after {ALERT_DEADLINE:?}\n--- alerts ---\n{alerts:#?}\n\
                 --- rules ---\n{:#}\n--- targets ---\n{:#}\n--- log ---\n{}",
                prometheus.api("/api/v1/rules"),
                prometheus.api("/api/v1/targets"),
                prometheus.log()
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    };

    let expired_alert = alert(&alerts, "LapseCredentialExpired", "certs/expired.crt").unwrap();
    // No `for:`: firing at once.
    assert_eq!(expired_alert["state"], "firing", "{expired_alert:#}");
    assert_fields(
        &expired_alert["labels"],
        json!({
            "severity": "critical", "kind": "x509", "source": "file",
            "path": "certs/expired.crt", "index": "0", "subject_cn": "old.example",
            "issuer_cn": "alerts-ca", "fingerprint": expired.fingerprint_label(),
        }),
    );
    // One per credential: the target's labels are aggregated away.
    for target in ["job", "instance"] {
        assert!(
            expired_alert["labels"][target].is_null(),
            "{expired_alert:#}"
        );
    }
    let summary = expired_alert["annotations"]["summary"]
        .as_str()
        .unwrap_or("");
    assert!(
        summary.starts_with("x509 old.example in certs/expired.crt expired 1d 0h "),
        "{summary}"
    );

    let soon_alert = alert(&alerts, "LapseCredentialExpiringCritical", "certs/soon.crt").unwrap();
    // `for: 5m`: pending for the length of this test.
    assert_eq!(soon_alert["state"], "pending", "{soon_alert:#}");
    assert_fields(
        &soon_alert["labels"],
        json!({
            "severity": "critical", "path": "certs/soon.crt", "subject_cn": "soon.example",
            "fingerprint": soon.fingerprint_label(),
        }),
    );
    let summary = soon_alert["annotations"]["summary"].as_str().unwrap_or("");
    assert!(
        summary.starts_with("x509 soon.example in certs/soon.crt expires in 2d 23h "),
        "{summary}"
    );
    let description = soon_alert["annotations"]["description"]
        .as_str()
        .unwrap_or("");
    assert_contains(
        description,
        &format!(
            "It lives in certs/soon.crt. Fingerprint {}, serial ",
            soon.fingerprint_label()
        ),
    );

    // `for: 1h`; the token's kind matched.
    let forever_alert = alert(&alerts, "LapseTokenWithoutExpiry", "certs/forever.jwt").unwrap();
    assert_eq!(forever_alert["state"], "pending", "{forever_alert:#}");
    assert_fields(
        &forever_alert["labels"],
        json!({"severity": "warning", "kind": "jwt", "path": "certs/forever.jwt"}),
    );
    assert_eq!(
        forever_alert["annotations"]["summary"],
        "jwt in certs/forever.jwt never expires"
    );

    // Nothing else about these credentials: not the healthy one, not the
    // warning for the other two, and lapse itself is up.
    let about_credentials: BTreeSet<(String, String)> = alerts
        .iter()
        .filter(|a| a["labels"]["path"].is_string())
        .map(|a| {
            (
                a["labels"]["alertname"].as_str().unwrap_or("").to_string(),
                a["labels"]["path"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert_eq!(
        about_credentials,
        [
            ("LapseCredentialExpired".into(), "certs/expired.crt".into()),
            (
                "LapseCredentialExpiringCritical".into(),
                "certs/soon.crt".into()
            ),
            ("LapseTokenWithoutExpiry".into(), "certs/forever.jwt".into()),
        ]
        .into(),
        "{alerts:#?}"
    );
    let others: Vec<&Value> = alerts
        .iter()
        .filter(|a| !a["labels"]["path"].is_string())
        .collect();
    assert!(others.is_empty(), "{others:#?}");

    // Every rule evaluates without error against lapse's real series.
    let rules = prometheus.api("/api/v1/rules");
    let groups = rules["groups"].as_array().expect("groups");
    assert_eq!(groups.len(), 2, "{rules:#}");
    for rule in groups
        .iter()
        .flat_map(|g| g["rules"].as_array().expect("rules"))
    {
        assert_eq!(rule["health"], "ok", "{rule:#}");
    }
}
