//! The Grafana dashboard `dashboards/lapse.json`: every panel is titled
//! and queried, every variable it names is defined and every one defined is
//! used, credential queries honour the kind/source/object_namespace/cluster/
//! instance filters, only default families are read, no import-time input
//! is left for file-provisioned Grafana to resolve — and every PromQL
//! expression, with the variables substituted,
//! is valid and returns data from a real Prometheus that has scraped a real
//! `lapse serve` over a tree with a credential in every state.
//!
//! Prometheus comes from Debian's `prometheus` package (CI installs it);
//! without it the query test fails saying so.

use crate::support::prometheus::{PROMETHEUS, Prometheus, percent_encode, require};
use crate::support::*;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};
use time::OffsetDateTime;

/// The filter every query over a credential family carries.
const CREDENTIAL_FILTER: [&str; 5] = [
    r#"kind=~"$kind""#,
    r#"source=~"$source""#,
    r#"object_namespace=~"$object_namespace""#,
    r#"cluster=~"$cluster""#,
    r#"instance=~"$instance""#,
];
/// The filter every query over lapse's own metrics carries: their `source`
/// is a scanner (`files`, `kubernetes`), not a credential's source.
/// `cluster=~".*"` (All) also matches a series without the label, so one
/// cluster without external labels shows everything.
const INSTANCE_FILTER: [&str; 2] = [r#"cluster=~"$cluster""#, r#"instance=~"$instance""#];
/// The variables that filter, each matching everything with All.
const FILTERS: [&str; 5] = ["cluster", "kind", "source", "object_namespace", "instance"];
/// Variables Grafana defines itself, and what the test puts in their place.
const BUILTINS: [(&str, &str); 3] = [
    ("__rate_interval", "1m"),
    ("__interval", "15s"),
    ("__range", "1h"),
];
/// Status counts end in this so an empty count shows 0, not "No data".
const ZERO_FALLBACK: &str = " or vector(0)";
/// Every query has returned data within this, once Prometheus holds two
/// scans' worth of samples.
const QUERY_DEADLINE: Duration = Duration::from_secs(20);

fn dashboard() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("dashboards/lapse.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path:?}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parse {path:?}: {e}"))
}

/// Every panel that is not a row, rows' nested panels included.
fn panels(dashboard: &Value) -> Vec<&Value> {
    fn walk<'a>(list: &'a Value, out: &mut Vec<&'a Value>) {
        for panel in list.as_array().into_iter().flatten() {
            if panel["type"] == "row" {
                walk(&panel["panels"], out);
            } else {
                out.push(panel);
            }
        }
    }
    let mut out = Vec::new();
    walk(&dashboard["panels"], &mut out);
    out
}

/// Every target's expression, named by its panel and refId.
fn expressions(dashboard: &Value) -> Vec<(String, String)> {
    panels(dashboard)
        .iter()
        .flat_map(|panel| {
            panel["targets"]
                .as_array()
                .into_iter()
                .flatten()
                .map(move |t| {
                    let name = format!("{} / {}", panel["title"], t["refId"]);
                    (name, t["expr"].as_str().unwrap_or("").to_string())
                })
        })
        .collect()
}

fn variables(dashboard: &Value) -> BTreeMap<String, &Value> {
    dashboard["templating"]["list"]
        .as_array()
        .expect("templating.list")
        .iter()
        .map(|v| (v["name"].as_str().expect("a variable name").to_string(), v))
        .collect()
}

/// Each `$name`, `${name}` or `${name:format}` in `text`: its byte range and name.
fn references(text: &str) -> Vec<(std::ops::Range<usize>, &str)> {
    let ident = |s: &str| {
        s.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(s.len())
    };
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(at) = text[from..].find('$').map(|i| from + i) {
        let rest = &text[at + 1..];
        if let Some(inner) = rest.strip_prefix('{') {
            let close = inner
                .find('}')
                .unwrap_or_else(|| panic!("unclosed ${{ in {text}"));
            let name = inner[..close].split(':').next().unwrap_or("");
            found.push((at..at + 3 + close, name));
            from = at + 3 + close;
        } else {
            let len = ident(rest);
            if len > 0 {
                found.push((at..at + 1 + len, &rest[..len]));
            }
            from = at + 1 + len;
        }
    }
    found
}

/// Every string in `v`, with where it sits.
fn strings<'a>(v: &'a Value, at: String, out: &mut Vec<(String, &'a str)>) {
    match v {
        Value::String(s) => out.push((at, s)),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                strings(item, format!("{at}[{i}]"), out);
            }
        }
        Value::Object(map) => {
            for (k, item) in map {
                strings(item, format!("{at}.{k}"), out);
            }
        }
        _ => {}
    }
}

/// `text` with each variable replaced by `values[name]`; panics on one it does not know.
fn substitute(text: &str, values: &BTreeMap<&str, String>) -> String {
    let mut out = String::new();
    let mut last = 0;
    for (range, name) in references(text) {
        let value = values
            .get(name)
            .unwrap_or_else(|| panic!("${name} has no value to substitute in {text}"));
        out.push_str(&text[last..range.start]);
        out.push_str(value);
        last = range.end;
    }
    out.push_str(&text[last..]);
    out
}

/// What the test puts in place of each variable: match everything, and
/// the thresholds' defaults.
fn substitutions(dashboard: &Value) -> BTreeMap<&'static str, String> {
    let vars = variables(dashboard);
    let threshold = |name: &str| {
        vars[name]["current"]["value"]
            .as_str()
            .unwrap_or_else(|| panic!("${name} has no current value"))
            .to_string()
    };
    let mut values: BTreeMap<&str, String> = BTreeMap::new();
    for name in FILTERS {
        values.insert(name, ".*".to_string());
    }
    values.insert("warning", threshold("warning"));
    values.insert("critical", threshold("critical"));
    for (name, value) in BUILTINS {
        values.insert(name, value.to_string());
    }
    values
}

#[test]
fn every_panel_is_titled_and_queries_prometheus() {
    let d = dashboard();
    assert_eq!(d["uid"], "lapse");
    let schema = d["schemaVersion"].as_i64().unwrap_or(0);
    assert!(
        (36..=41).contains(&schema),
        "schemaVersion {schema}: Grafana 10 and 11 import 36–41"
    );
    // No import-time input: a file-provisioned Grafana (the chart's
    // sidecar ConfigMap) never resolves `${DS_PROMETHEUS}`; the datasource
    // variable picks the default Prometheus.
    assert!(d.get("__inputs").is_none(), "__inputs: {:#}", d["__inputs"]);
    assert!(
        !serde_json::to_string(&d).unwrap().contains("DS_PROMETHEUS"),
        "an import-time input is referenced"
    );
    let requires: BTreeSet<(String, String)> = d["__requires"]
        .as_array()
        .expect("__requires")
        .iter()
        .map(|r| {
            let field = |k: &str| r[k].as_str().unwrap_or("").to_string();
            (field("type"), field("id"))
        })
        .collect();
    for needed in [("grafana", "grafana"), ("datasource", "prometheus")] {
        assert!(
            requires.contains(&(needed.0.into(), needed.1.into())),
            "__requires lacks {needed:?}: {requires:?}"
        );
    }

    let panels = panels(&d);
    assert!(panels.len() >= 10, "only {} panels", panels.len());
    let mut ids = BTreeSet::new();
    for panel in &panels {
        let title = panel["title"].as_str().unwrap_or("");
        assert!(
            !title.trim().is_empty(),
            "a panel without a title: {panel:#}"
        );
        assert!(ids.insert(panel["id"].to_string()), "{title}: id reused");
        let kind = panel["type"].as_str().expect("a panel type");
        assert!(
            requires.contains(&("panel".into(), kind.into())),
            "{title}: panel type {kind} is not in __requires"
        );
        assert_eq!(panel["datasource"]["uid"], "${datasource}", "{title}");
        let targets = panel["targets"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        assert!(!targets.is_empty(), "{title}: no targets");
        let mut refs = BTreeSet::new();
        for t in targets {
            assert!(refs.insert(t["refId"].to_string()), "{title}: refId reused");
            assert_eq!(t["datasource"]["uid"], "${datasource}", "{title}: {t:#}");
            let expr = t["expr"].as_str().unwrap_or("");
            assert!(!expr.trim().is_empty(), "{title}: a target without expr");
        }
    }
}

/// Panels laid out side by side, as Grafana would place them: inside the
/// 24-column grid and never on top of one another.
#[test]
fn panels_fit_the_grid_without_overlapping() {
    let d = dashboard();
    let boxes: Vec<(String, [i64; 4])> = d["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .map(|p| {
            let g = &p["gridPos"];
            let n = |k: &str| {
                g[k].as_i64()
                    .unwrap_or_else(|| panic!("{}: gridPos.{k}", p["title"]))
            };
            (p["title"].to_string(), [n("x"), n("y"), n("w"), n("h")])
        })
        .collect();
    for (title, [x, _, w, h]) in &boxes {
        assert!(
            *x >= 0 && *w > 0 && *h > 0 && x + w <= 24,
            "{title}: outside the grid"
        );
    }
    for (i, (a, [ax, ay, aw, ah])) in boxes.iter().enumerate() {
        for (b, [bx, by, bw, bh]) in &boxes[i + 1..] {
            let apart = ax + aw <= *bx || bx + bw <= *ax || ay + ah <= *by || by + bh <= *ay;
            assert!(apart, "{a} and {b} overlap");
        }
    }
}

#[test]
fn every_variable_used_is_defined_and_every_one_defined_is_used() {
    let d = dashboard();
    let vars = variables(&d);

    assert_fields(
        vars["datasource"],
        json!({"type": "datasource", "query": "prometheus"}),
    );
    assert_eq!(
        vars["datasource"]["current"],
        json!({}),
        "the default datasource"
    );
    for name in FILTERS {
        let v = vars[name];
        assert_fields(
            v,
            json!({"type": "query", "multi": true, "includeAll": true, "allValue": ".*"}),
        );
        let query = v["query"]["query"].as_str().unwrap_or("");
        assert!(
            query.starts_with("label_values(") && query.ends_with(&format!(", {name})")),
            "${name}: {query}"
        );
    }
    for (name, default) in [("warning", "2592000"), ("critical", "604800")] {
        assert_eq!(vars[name]["type"], "custom", "${name}");
        assert_eq!(vars[name]["current"]["value"], default, "${name}");
        let offered: Vec<&str> = vars[name]["options"]
            .as_array()
            .expect("options")
            .iter()
            .filter_map(|o| o["value"].as_str())
            .collect();
        assert!(offered.contains(&default), "${name} options: {offered:?}");
        for value in offered {
            assert!(
                value.parse::<u64>().is_ok(),
                "${name}: {value} is not seconds"
            );
        }
    }

    let builtins: BTreeSet<&str> = BUILTINS.iter().map(|(n, _)| *n).collect();
    let mut all = Vec::new();
    strings(&d, String::new(), &mut all);
    let mut used: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    let mut undefined = Vec::new();
    // A variable's selected and offered values (`$__all`) are values, not
    // references to check.
    let value_of_a_variable = |at: &str| {
        at.starts_with(".templating.") && (at.contains(".current.") || at.contains(".options["))
    };
    for (at, text) in &all {
        for (_, name) in references(text) {
            let defined = vars.contains_key(name) || builtins.contains(name);
            if !defined && !value_of_a_variable(at) {
                undefined.push(format!("  ${name} at {at}: {text}"));
            }
            used.entry(name).or_default().insert(at.clone());
        }
    }
    assert!(
        undefined.is_empty(),
        "variables referenced but not defined in templating:\n{}",
        undefined.join("\n")
    );
    // Used outside its own definition: a variable only its own query names does nothing.
    for name in vars.keys() {
        let own = format!(".templating.list[{}]", index_of(&d, name));
        let elsewhere = used
            .get(name.as_str())
            .into_iter()
            .flatten()
            .any(|at| !at.starts_with(&own));
        assert!(elsewhere, "${name} is defined but nothing uses it");
    }
}

fn index_of(d: &Value, variable: &str) -> usize {
    d["templating"]["list"]
        .as_array()
        .expect("templating.list")
        .iter()
        .position(|v| v["name"] == variable)
        .expect("the variable")
}

/// Each `lapse_*` metric an expression reads, with the matchers inside its braces.
fn selectors(expr: &str) -> Vec<(&str, &str)> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(at) = expr[from..].find("lapse_").map(|i| from + i) {
        let preceded = expr[..at]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '"' || c == '|');
        let len = expr[at..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(expr.len() - at);
        let name = &expr[at..at + len];
        from = at + len;
        if preceded {
            continue; // inside a label value or another name
        }
        let matchers = expr[from..]
            .strip_prefix('{')
            .and_then(|r| r.split_once('}'))
            .map_or("", |(m, _)| m);
        out.push((name, matchers));
    }
    out
}

#[test]
fn every_query_filters_by_the_template_variables() {
    let d = dashboard();
    let mut missing = Vec::new();
    for (panel, expr) in expressions(&d) {
        let found = selectors(&expr);
        assert!(!found.is_empty(), "{panel}: reads no lapse metric: {expr}");
        for (metric, matchers) in found {
            let needed: &[&str] = if metric.starts_with("lapse_credential_") {
                &CREDENTIAL_FILTER
            } else {
                &INSTANCE_FILTER
            };
            for opt_in in ["_expired", "_not_after_timestamp", "_not_before_timestamp"] {
                if metric.contains(opt_in) {
                    missing.push(format!("  {panel}: {metric} is an opt-in family: {expr}"));
                }
            }
            for m in needed {
                if !matchers.contains(m) {
                    missing.push(format!("  {panel}: {metric} lacks {m}: {expr}"));
                }
            }
        }
    }
    assert!(
        missing.is_empty(),
        "unfiltered selectors:\n{}",
        missing.join("\n")
    );
}

/// Unix seconds as the time the certificate builders take.
fn at(unix: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(unix).expect("a valid time")
}

/// A tree with a credential in every state the dashboard counts, one from a
/// Secret (so `object_namespace` has a value), a broken file, and mail that never
/// goes out (a closed port), so every family lapse exports has series.
fn every_state(s: &Scratch) {
    let now = unix_now();
    let ca = Cert::ca("dash-ca", at(now - 400 * DAY), at(now + 3650 * DAY));
    // Three 90-day certificates, so the short-lived view has data.
    for (file, left) in [
        ("expired.crt", -DAY),
        ("critical.crt", 3 * DAY),
        ("warning.crt", 20 * DAY),
    ] {
        let cn = file.trim_end_matches(".crt");
        let cert = ca.issue(
            &format!("{cn}.example"),
            at(now + left - 90 * DAY),
            at(now + left),
        );
        s.write(&format!("certs/{file}"), &cert.pem);
    }
    let healthy = ca.issue("healthy.example", at(now - 30 * DAY), at(now + 335 * DAY));
    s.write("certs/healthy.crt", &healthy.pem);
    s.write(
        "certs/ci.jwt",
        jwt(
            json!({"sub": "ci", "iat": now - 10 * DAY, "exp": now + 50 * DAY}),
            "sig-dash-ci",
        ),
    );
    s.write(
        "certs/forever.jwt",
        jwt(json!({"sub": "forever"}), "sig-dash-forever"),
    );
    let shop = ca.issue("shop.example", at(now - 10 * DAY), at(now + 80 * DAY));
    s.write(
        "certs/shop-tls.yaml",
        format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: shop-tls\n  namespace: shop\n\
             type: kubernetes.io/tls\ndata:\n  tls.crt: {}\n",
            b64(&shop.pem)
        ),
    );
    s.write("certs/broken.crt", &healthy.pem[..healthy.pem.len() / 2]);
    s.write(
        "lapse.yaml",
        format!(
            "files:\n  paths: [certs]\n\
             notify:\n  email:\n    smtp: {{host: 127.0.0.1, port: {}, tls: none}}\n    \
             from: lapse@example.com\n    to: [ops@example.com]\n  \
             thresholds: [30d, 7d]\n  state_file: state/notify-state.json\n  \
             check_interval: 1s\n  retry_interval: 1s\n",
            free_port()
        ),
    );
}

/// Why the instant query `promql` is not good enough, if it is not:
/// an error, no series, or a series whose value is NaN.
fn problem(prometheus: &Prometheus, promql: &str) -> Option<String> {
    let path = format!("/api/v1/query?query={}", percent_encode(promql));
    let response = match prometheus.get(&path) {
        Ok(r) => r,
        Err(e) => return Some(format!("request failed: {e}")),
    };
    let body: Value = match serde_json::from_str(&response.body) {
        Ok(b) => b,
        Err(e) => return Some(format!("not JSON ({e}): {}", response.body)),
    };
    if body["status"] != "success" {
        return Some(format!("{}: {}", body["errorType"], body["error"]));
    }
    let result = body["data"]["result"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if result.is_empty() {
        return Some("no data".to_string());
    }
    let nan: Vec<&Value> = result.iter().filter(|r| r["value"][1] == "NaN").collect();
    if !nan.is_empty() {
        return Some(format!("NaN for {nan:?}"));
    }
    None
}

#[test]
fn every_dashboard_query_returns_data_from_a_real_prometheus() {
    require(PROMETHEUS);
    let d = dashboard();
    let values = substitutions(&d);
    let s = Scratch::new();
    every_state(&s);
    let lapse = s.serve().args(["--config", "lapse.yaml"]).start();
    let prometheus = Prometheus::start(&s, lapse.port);
    prometheus.query_until_present(r#"lapse_scan_duration_seconds_count{source="files"}"#);

    // A change after the first scrape: a second scan for the duration
    // quantiles and a new error for the hourly increase.
    s.write(
        "certs/late-broken.crt",
        "-----BEGIN CERTIFICATE-----\nMIIB\n",
    );
    prometheus.query_until_present(r#"lapse_scan_duration_seconds_count{source="files"} >= 2"#);
    prometheus.query_until_present("lapse_notifications_pending > 0");

    // Each expression as Grafana sends it; a status count also without
    // its `or vector(0)`, so a 0 the fixture should not give fails too.
    let mut queries: Vec<(String, String)> = Vec::new();
    for (panel, expr) in expressions(&d) {
        let promql = substitute(&expr, &values);
        if let Some(bare) = promql.strip_suffix(ZERO_FALLBACK) {
            queries.push((
                format!("{panel} (without{ZERO_FALLBACK})"),
                bare.to_string(),
            ));
        }
        queries.push((panel, promql));
    }
    let started = Instant::now();
    let failures = loop {
        let failures: Vec<(&str, &str, String)> = queries
            .iter()
            .filter_map(|(panel, promql)| {
                problem(&prometheus, promql).map(|why| (panel.as_str(), promql.as_str(), why))
            })
            .collect();
        // Only data can still arrive; a query Prometheus rejects never passes.
        let invalid = failures
            .iter()
            .any(|(_, _, why)| !why.starts_with("no data") && !why.starts_with("NaN"));
        if failures.is_empty() || invalid || started.elapsed() > QUERY_DEADLINE {
            break failures;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    assert!(
        failures.is_empty(),
        "{} of {} dashboard queries failed against lapse over the fixture tree:\n{}\n--- lapse /metrics ---\n{}",
        failures.len(),
        queries.len(),
        failures
            .iter()
            .map(|(panel, promql, why)| format!("  {panel}: {why}\n    {promql}"))
            .collect::<Vec<_>>()
            .join("\n"),
        lapse.get("/metrics").body
    );
    println!(
        "{} dashboard queries returned data after {} ms",
        queries.len(),
        started.elapsed().as_millis()
    );

    // The variables' own queries offer something to pick.
    for (name, var) in variables(&d) {
        if var["type"] != "query" {
            continue;
        }
        let query = var["query"]["query"].as_str().expect("a query");
        let inner = query
            .strip_prefix("label_values(")
            .and_then(|q| q.strip_suffix(')'))
            .unwrap_or_else(|| panic!("${name}: not label_values(…): {query}"));
        let (selector, label) = inner
            .rsplit_once(',')
            .expect("label_values(selector, label)");
        let selector = substitute(selector.trim(), &values);
        let offered = prometheus.api(&format!(
            "/api/v1/label/{}/values?match[]={}",
            label.trim(),
            percent_encode(&selector)
        ));
        let offered: BTreeSet<&str> = offered
            .as_array()
            .expect("label values")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let expected: &[&str] = match name.as_str() {
            "kind" => &["x509", "jwt"],
            "source" => &["file", "secret"],
            "object_namespace" => &["shop"],
            _ => &[],
        };
        // One Prometheus without external labels: no cluster to offer, and
        // All (`.*`) is what every query above ran with.
        if name == "cluster" {
            assert!(offered.is_empty(), "${name}: {offered:?}");
            continue;
        }
        assert!(!offered.is_empty(), "${name}: {query} offers nothing");
        for want in expected {
            assert!(
                offered.contains(want),
                "${name}: {query} offers {offered:?}, not {want}"
            );
        }
    }
}
