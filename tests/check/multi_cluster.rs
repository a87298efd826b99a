//! Many clusters, for real: two clusters, "east" and "west", each with its
//! own lapse (east also a node DaemonSet of two, labelled with the node's
//! name as the downward API would), each scraped by its own Prometheus in
//! agent mode with `external_labels: {cluster: …}` remote-writing to one
//! central Prometheus that evaluates the shipped rules. Every dashboard
//! query, with `$cluster` set to each cluster, returns that cluster's data
//! only, and the aggregated alerts fire once per credential per cluster.
//!
//! Certificates are dated relative to now so each one's status is
//! deterministic; the rules' `for:` durations are set to 0 in the copy
//! the central Prometheus loads, so alerts fire at their first evaluation.

use super::target_labels::ingress_dump;
use crate::support::prometheus::{
    PROMETHEUS, Prometheus, dashboard, expressions, label, percent_encode, references, require,
    shipped_rules_firing_at_once, substitute, value, values_for, variables,
};
use crate::support::*;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;
use time::OffsetDateTime;

const CLUSTERS: [&str; 2] = ["east", "west"];

/// Credentials per status and cluster, each counted once however many
/// nodes see it: (status, east, west).
const COUNTS: [(&str, f64, f64); 5] = [
    ("expired", 1.0, 0.0),
    ("critical", 1.0, 1.0),
    ("warning", 1.0, 1.0),
    ("ok", 2.0, 1.0),
    ("no expiry", 0.0, 1.0),
];

/// The credential alerts that must fire, exactly: (alert, cluster, path).
const ALERTS: [(&str, &str, &str); 6] = [
    ("LapseCredentialExpired", "east", "certs/expired.crt"),
    (
        "LapseCredentialExpiringCritical",
        "east",
        "node/kubelet-ca.crt",
    ),
    ("LapseCredentialExpiringCritical", "west", "certs/api.crt"),
    ("LapseCredentialExpiringSoon", "east", "certs/common.crt"),
    ("LapseCredentialExpiringSoon", "west", "certs/common.crt"),
    ("LapseTokenWithoutExpiry", "west", "certs/forever.jwt"),
];

/// One cluster: its lapse servers (by job), the agent scraping them, and
/// the directory they run in (dropped last).
struct Cluster {
    _agent: Prometheus,
    lapses: Vec<(&'static str, Server)>,
    name: &'static str,
    _scratch: Scratch,
}

impl Cluster {
    fn instances(&self) -> BTreeSet<String> {
        self.lapses
            .iter()
            .map(|(_, l)| format!("127.0.0.1:{}", l.port))
            .collect()
    }

    /// Starts the agent scraping every lapse every second, remote-writing
    /// to `central` with this cluster's external label.
    fn start(
        name: &'static str,
        scratch: Scratch,
        lapses: Vec<(&'static str, Server)>,
        central: &Prometheus,
    ) -> Cluster {
        let mut jobs: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for (job, lapse) in &lapses {
            jobs.entry(job)
                .or_default()
                .push(format!("'127.0.0.1:{}'", lapse.port));
        }
        let scrape: String = jobs
            .iter()
            .map(|(job, targets)| {
                format!(
                    "- job_name: {job}\n  static_configs:\n  - targets: [{}]\n",
                    targets.join(", ")
                )
            })
            .collect();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  external_labels:\n    cluster: {name}\n\
             scrape_configs:\n{scrape}\
             remote_write:\n- url: http://127.0.0.1:{}/api/v1/write\n  \
             queue_config:\n    batch_send_deadline: 1s\n    min_backoff: 100ms\n    max_backoff: 1s\n  \
             metadata_config:\n    send: false\n",
            central.port()
        );
        let agent = Prometheus::with_config(&scratch, &format!("agent-{name}"), config)
            .agent()
            .start();
        Cluster {
            _agent: agent,
            lapses,
            name,
            _scratch: scratch,
        }
    }
}

/// `count by (cluster) (EXPR)` as a map.
fn count_by_cluster(p: &Prometheus, expr: &str) -> BTreeMap<String, f64> {
    p.query(&format!("count by (cluster) ({expr})"))
        .iter()
        .map(|s| (label(s, "cluster").to_string(), value(s)))
        .collect()
}

#[test]
fn two_clusters_through_remote_write_to_a_central_prometheus() {
    require(PROMETHEUS);
    let started = Instant::now();
    let now = OffsetDateTime::now_utc();
    let day = time::Duration::days(1);
    let year_ago = now - 365 * day;
    let ca = Cert::ca("mc-ca", now - 400 * day, now + 3650 * day);
    let common = ca.issue("common.example", year_ago, now + 20 * day);
    let kubelet_ca = ca.issue("kubelet-ca", year_ago, now + 3 * day);

    let central_dir = Scratch::new();
    let rule_files: String = shipped_rules_firing_at_once(&central_dir)
        .iter()
        .map(|f| format!("- {f:?}\n"))
        .collect();
    let central = Prometheus::with_config(
        &central_dir,
        "central",
        format!("global:\n  evaluation_interval: 1s\nrule_files:\n{rule_files}"),
    )
    .flag("--web.enable-remote-write-receiver")
    .start();

    // East: a cluster-wide lapse (files and a Secret in kube-system) and a
    // DaemonSet of two on the nodes, which all have the kubelet CA.
    let east_dir = Scratch::new();
    east_dir.write("certs/common.crt", &common.pem);
    let expired = ca.issue("old.east.example", year_ago, now - day);
    east_dir.write("certs/expired.crt", &expired.pem);
    let ingress = ca.issue("ingress.east.example", year_ago, now + 200 * day);
    let dump = ingress_dump(&ingress);
    east_dir.write("dump.json", dump.to_string());
    // Short-lived (60 days), 40 days left: OK, and on the short-lived panel.
    let short = ca.issue("short.east.example", now - 20 * day, now + 40 * day);
    east_dir.write("certs/short.crt", &short.pem);
    east_dir.write("node/kubelet-ca.crt", &kubelet_ca.pem);
    let east_lapses = vec![
        (
            "lapse",
            east_dir.serve().args(["certs", "dump.json"]).start(),
        ),
        (
            "lapse-node",
            east_dir
                .serve()
                .args(["--metrics.label", "node=worker-1", "node"])
                .start(),
        ),
        (
            "lapse-node",
            east_dir
                .serve()
                .args(["--metrics.label", "node=worker-2", "node"])
                .start(),
        ),
    ];
    let mut east = Cluster::start("east", east_dir, east_lapses, &central);

    // West: the same common certificate at the same path, and its own.
    let west_dir = Scratch::new();
    west_dir.write("certs/common.crt", &common.pem);
    let api = ca.issue("api.west.example", year_ago, now + 2 * day);
    west_dir.write("certs/api.crt", &api.pem);
    let fine = ca.issue("ok.west.example", year_ago, now + 400 * day);
    west_dir.write("certs/ok.crt", &fine.pem);
    west_dir.write(
        "certs/forever.jwt",
        jwt(json!({"sub": "deployer"}), "sig-multi-cluster"),
    );
    let west_lapses = vec![("lapse", west_dir.serve().arg("certs").start())];
    let west = Cluster::start("west", west_dir, west_lapses, &central);
    let clusters = [&east, &west];
    println!(
        "everything started after {} ms",
        started.elapsed().as_millis()
    );

    // Everything reached the central Prometheus: 3 and 1 lapse servers,
    // and every credential series (the kubelet CA's once per node).
    let want = |e: f64, w: f64| BTreeMap::from([("east".to_string(), e), ("west".to_string(), w)]);
    central.wait_until("every series at the central Prometheus", |p| {
        let seen = [
            (count_by_cluster(p, "lapse_build_info"), want(3.0, 1.0)),
            (count_by_cluster(p, "lapse_credential_info"), want(6.0, 4.0)),
            (
                count_by_cluster(p, "lapse_credential_expires_in_seconds"),
                want(6.0, 3.0),
            ),
            (
                count_by_cluster(p, "lapse_credential_validity_seconds"),
                want(6.0, 3.0),
            ),
            (
                count_by_cluster(p, "lapse_credential_no_expiry"),
                want(0.0, 1.0),
            ),
        ];
        let missing: Vec<String> = seen
            .iter()
            .filter(|(got, want)| {
                want.iter()
                    .any(|(c, n)| got.get(c).copied().unwrap_or(0.0) != *n)
            })
            .map(|(got, want)| format!("{got:?} (want {want:?})"))
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(missing.join("; "))
        }
    });
    let complete = OffsetDateTime::now_utc();
    println!(
        "all series central after {} ms",
        started.elapsed().as_millis()
    );

    // The DaemonSet's series carry the node's name; nothing else renamed.
    let per_node =
        central.query(r#"lapse_credential_expires_in_seconds{path="node/kubelet-ca.crt"}"#);
    let nodes: BTreeSet<(&str, &str, &str)> = per_node
        .iter()
        .map(|s| (label(s, "cluster"), label(s, "job"), label(s, "node")))
        .collect();
    assert_eq!(
        nodes,
        BTreeSet::from([
            ("east", "lapse-node", "worker-1"),
            ("east", "lapse-node", "worker-2")
        ]),
        "{per_node:#?}"
    );
    let secret = central.query(r#"lapse_credential_validity_seconds{path="dump.json"}"#);
    assert_eq!(secret.len(), 1, "{secret:#?}");
    assert_fields(
        &secret[0]["metric"],
        json!({"cluster": "east", "job": "lapse", "object_namespace": "kube-system",
               "name": "ingress-tls", "key": "tls.crt", "subject_cn": "ingress.east.example"}),
    );
    assert_eq!(value(&secret[0]), (200 + 365) as f64 * DAY as f64);

    // An evaluation of every rule group that started after all the data
    // was in: a rule read before it cannot have decided the alerts below.
    central.wait_until("every rule group evaluated over all the data", |p| {
        let starts = p.last_evaluations();
        if starts.iter().all(|at| *at > complete) {
            Ok(())
        } else {
            Err(format!(
                "last evaluations {starts:?}, data complete at {complete}"
            ))
        }
    });
    alerts_fire_once_per_cluster(&central, &kubelet_ca);
    recorded_counts(&central);
    // The soonest per cluster: east's expired certificate (a day ago),
    // west's API certificate (in 2 days).
    let soonest = [("east", now - day), ("west", now + 2 * day)];
    recorded_soonest(&central, now, &soonest);
    // The dashboard (the data and the rules above do not need it).
    dashboard_queries(&central, &clusters);
    one_node_down(&central, &mut east);
    println!(
        "two clusters through remote_write: {} ms in all",
        started.elapsed().as_millis()
    );
}

/// (b): the credential alerts, exactly; none about lapse itself.
fn alerts_fire_once_per_cluster(central: &Prometheus, kubelet_ca: &Cert) {
    let alerts = central.alerts();
    let firing: Vec<&Value> = alerts.iter().filter(|a| a["state"] == "firing").collect();
    let about_credentials: Vec<&Value> = firing
        .iter()
        .copied()
        .filter(|a| {
            let name = a["labels"]["alertname"].as_str().unwrap_or("");
            name.starts_with("LapseCredential") || name.starts_with("LapseToken")
        })
        .collect();
    let mut got: Vec<(String, String, String)> = about_credentials
        .iter()
        .map(|a| {
            let l = |n: &str| a["labels"][n].as_str().unwrap_or("").to_string();
            (l("alertname"), l("cluster"), l("path"))
        })
        .collect();
    got.sort();
    let want: Vec<(String, String, String)> = ALERTS
        .iter()
        .map(|(a, c, p)| (a.to_string(), c.to_string(), p.to_string()))
        .collect();
    assert_eq!(
        got, want,
        "credential alerts firing\n--- all alerts ---\n{alerts:#?}"
    );
    for a in &about_credentials {
        for scrape_label in ["instance", "job", "node", "pod"] {
            assert!(
                a["labels"].get(scrape_label).is_none(),
                "an alert per credential per cluster carries no {scrape_label}: {a:#}"
            );
        }
    }
    let node_ca = about_credentials
        .iter()
        .find(|a| a["labels"]["path"] == "node/kubelet-ca.crt")
        .expect("the kubelet CA's alert");
    assert_fields(
        &node_ca["labels"],
        json!({"severity": "critical", "cluster": "east", "subject_cn": "kubelet-ca",
               "fingerprint": kubelet_ca.fingerprint_label()}),
    );
    let about_lapse: Vec<&&Value> = firing
        .iter()
        .filter(|a| {
            let name = a["labels"]["alertname"].as_str().unwrap_or("");
            name.contains("Absent") || name.starts_with("LapseSource")
        })
        .collect();
    assert!(
        about_lapse.is_empty(),
        "every lapse is up: {about_lapse:#?}"
    );
}

/// `cluster:lapse_credential_expires_in_seconds:min`, where the rules
/// record it: each cluster's soonest not_after less the evaluation time,
/// which lies between `started` and now (±1 s: certificates carry whole
/// seconds).
fn recorded_soonest(
    central: &Prometheus,
    started: OffsetDateTime,
    soonest: &[(&str, OffsetDateTime)],
) {
    let recorded = central.query("cluster:lapse_credential_expires_in_seconds:min");
    if recorded.is_empty() {
        println!("no cluster:lapse_credential_expires_in_seconds:min recorded; not checked");
        return;
    }
    let until = OffsetDateTime::now_utc();
    let got: BTreeMap<&str, f64> = recorded
        .iter()
        .map(|s| (label(s, "cluster"), value(s)))
        .collect();
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        soonest.iter().map(|(c, _)| c).collect::<Vec<_>>(),
        "{recorded:#?}"
    );
    for (cluster, not_after) in soonest {
        let (low, high) = (
            (*not_after - until).whole_seconds() as f64 - 1.0,
            (*not_after - started).whole_seconds() as f64 + 1.0,
        );
        assert!(
            (low..=high).contains(&got[cluster]),
            "soonest in {cluster}: {}, expected within [{low}, {high}]",
            got[cluster]
        );
    }
}

/// A DaemonSet pod gone: LapseAbsent fires once, for that node's target
/// in east; nothing for west, and no cluster-wide absence.
fn one_node_down(central: &Prometheus, east: &mut Cluster) {
    let (job, gone) = east.lapses.remove(2);
    let instance = format!("127.0.0.1:{}", gone.port);
    drop(gone);
    let absent = |p: &Prometheus| -> Vec<Value> {
        p.alerts()
            .into_iter()
            .filter(|a| {
                a["state"] == "firing"
                    && a["labels"]["alertname"]
                        .as_str()
                        .unwrap_or("")
                        .contains("Absent")
            })
            .collect()
    };
    central.wait_until("LapseAbsent for the stopped node's lapse", |p| {
        let firing = absent(p);
        if firing.is_empty() {
            Err("no Absent alert firing".to_string())
        } else {
            Ok(())
        }
    });
    // Its next evaluation too: nothing more, nothing else.
    let fired = OffsetDateTime::now_utc();
    central.wait_until("every rule group evaluated after it fired", |p| {
        if p.last_evaluations().iter().all(|at| *at > fired) {
            Ok(())
        } else {
            Err("not yet".to_string())
        }
    });
    let firing = absent(central);
    assert_eq!(firing.len(), 1, "one Absent alert: {firing:#?}");
    assert_fields(
        &firing[0]["labels"],
        json!({"alertname": "LapseAbsent", "cluster": "east", "job": job, "instance": instance}),
    );
}

/// The per-cluster summary recording rule, where the rules define it.
fn recorded_counts(central: &Prometheus) {
    let recorded = central.query("cluster:lapse_credentials:count");
    if recorded.is_empty() {
        println!("no cluster:lapse_credentials:count recorded; not checked");
        return;
    }
    for (status, e, w) in COUNTS {
        let status = status.replace(' ', "_");
        for (cluster, want) in [("east", e), ("west", w)] {
            let got: Vec<f64> = recorded
                .iter()
                .filter(|s| label(s, "cluster") == cluster && label(s, "status") == status)
                .map(value)
                .collect();
            assert_eq!(
                got,
                vec![want],
                "cluster:lapse_credentials:count{{cluster={cluster},status={status}}}"
            );
        }
    }
}

/// What `$cluster` is set to, the clusters and instances it must see, and
/// the column of [`COUNTS`] to expect (None: their sum).
type Selection<'a> = (String, BTreeSet<&'a str>, BTreeSet<String>, Option<usize>);

/// (a): every panel's query, with `$cluster` set to each cluster, sees
/// that cluster only, and with All (the variable's allValue) both; the
/// status counts are exact (summed for All); the variables offer both
/// clusters and, with one chosen, that cluster's values only.
fn dashboard_queries(central: &Prometheus, clusters: &[&Cluster]) {
    let d = dashboard();
    let vars = variables(&d);
    assert!(
        vars.contains_key("cluster"),
        "dashboards/lapse.json has no $cluster variable; it has {:?}",
        vars.keys().collect::<Vec<_>>()
    );
    let exprs = expressions(&d);
    let mut failures: Vec<String> = Vec::new();
    for (_, title, expr) in &exprs {
        let filtered = references(expr).iter().any(|(_, n)| n == "cluster");
        if expr.contains("lapse_") && !filtered {
            failures.push(format!("{title}: does not select by $cluster: {expr}"));
        }
    }
    let all = vars["cluster"]["allValue"]
        .as_str()
        .unwrap_or(".*")
        .to_string();
    let mut selections: Vec<Selection> = clusters
        .iter()
        .enumerate()
        .map(|(i, c)| {
            (
                c.name.to_string(),
                BTreeSet::from([c.name]),
                c.instances(),
                Some(i),
            )
        })
        .collect();
    selections.push((
        all,
        clusters.iter().map(|c| c.name).collect(),
        clusters.iter().flat_map(|c| c.instances()).collect(),
        None,
    ));
    let mut answered: BTreeSet<&str> = BTreeSet::new();
    for (chosen, names, instances, column) in &selections {
        let values = values_for(&vars, chosen);
        for (kind, title, expr) in &exprs {
            let promql = substitute(expr, &values);
            let fail = |why: String| format!("{title} ($cluster={chosen}): {why}\n    {promql}");
            let result = match central.try_query(&promql) {
                Ok(r) => r,
                Err(why) => {
                    failures.push(fail(why));
                    continue;
                }
            };
            if !result.is_empty() {
                answered.insert(expr);
            }
            for s in &result {
                let (c, instance) = (label(s, "cluster"), label(s, "instance"));
                if (!c.is_empty() && !names.contains(c))
                    || (!instance.is_empty() && !instances.contains(instance))
                {
                    failures.push(fail(format!(
                        "a series of another cluster: {}",
                        s["metric"]
                    )));
                }
            }
            let count = COUNTS
                .iter()
                .find(|(status, _, _)| kind == "stat" && title.eq_ignore_ascii_case(status));
            if let Some((_, east, west)) = count {
                let want = column.map_or(east + west, |i| [*east, *west][i]);
                let got: Vec<f64> = result.iter().map(value).collect();
                if got != vec![want] {
                    failures.push(fail(format!("counts {got:?}, expected [{want}]")));
                }
            }
        }
        let Some(i) = column else { continue };
        let cluster = clusters[*i];
        // A variable's selector with this cluster chosen matches this cluster only.
        for (name, var) in &vars {
            let query = var["query"]["query"]
                .as_str()
                .or_else(|| var["query"].as_str())
                .unwrap_or("");
            let Some(inner) = query
                .strip_prefix("label_values(")
                .and_then(|q| q.strip_suffix(')'))
            else {
                continue;
            };
            let (selector, label_name) = inner.rsplit_once(',').unwrap_or(("", inner));
            let label_name = label_name.trim();
            if name == "cluster" {
                let offered = central.api(&format!("/api/v1/label/{label_name}/values"));
                if offered != json!(CLUSTERS) {
                    failures.push(format!("$cluster offers {offered}, not {CLUSTERS:?}"));
                }
                continue;
            }
            if selector.trim().is_empty() {
                continue;
            }
            let selector = substitute(selector.trim(), &values);
            let series = central.api(&format!(
                "/api/v1/series?match[]={}",
                percent_encode(&selector)
            ));
            let others: Vec<&Value> = series
                .as_array()
                .into_iter()
                .flatten()
                .filter(|s| s["cluster"] != cluster.name)
                .collect();
            if !others.is_empty() {
                failures.push(format!(
                    "${name} with cluster {} offers values of other series: {selector}: {others:?}",
                    cluster.name
                ));
            }
        }
    }
    for (_, title, expr) in &exprs {
        if expr.contains("lapse_credential") && !answered.contains(expr.as_str()) {
            failures.push(format!("{title}: no data for any cluster: {expr}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} problems with dashboards/lapse.json's {} queries against the central Prometheus:\n{}",
        failures.len(),
        exprs.len(),
        failures.join("\n")
    );
}
