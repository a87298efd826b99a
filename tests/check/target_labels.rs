//! Target labels a scrape attaches (what a ServiceMonitor, the
//! `prometheus.io/scrape` annotations or a multi-cluster setup put on
//! lapse's target) never collide with lapse's own: one real Prometheus
//! scrapes the same `lapse serve` twice, once plainly and once with
//! `namespace`, `pod`, `node`, `service`, `container`, `endpoint` and
//! `cluster` attached, and every series arrives with the same labels in
//! both jobs apart from those, none renamed to `exported_*`.

use super::k8s_objects::{list, secret};

use crate::support::prometheus::{PROMETHEUS, Prometheus, require, value};
use crate::support::*;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use time::macros::datetime;

/// What the labelled job attaches, as the chart's ServiceMonitor and a
/// cluster's external labels would.
pub const TARGET_LABELS: [(&str, &str); 7] = [
    ("namespace", "lapse"),
    ("pod", "lapse-0"),
    ("node", "worker-1"),
    ("service", "lapse"),
    ("container", "lapse"),
    ("endpoint", "http"),
    ("cluster", "east"),
];

/// A series' labels as a map (`__name__` included).
fn labels(series: &Value) -> BTreeMap<String, String> {
    series["metric"]
        .as_object()
        .unwrap_or_else(|| panic!("not a series: {series}"))
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
        .collect()
}

/// The labels without the ones the scrape attached.
fn own(mut l: BTreeMap<String, String>) -> BTreeMap<String, String> {
    l.retain(|k, _| k != "job" && k != "instance" && !TARGET_LABELS.iter().any(|(t, _)| t == k));
    l
}

fn map(pairs: Value) -> BTreeMap<String, String> {
    pairs
        .as_object()
        .expect("an object")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().expect("a string").to_string()))
        .collect()
}

/// `kubectl get secrets -A -o json` with one TLS Secret, kube-system/ingress-tls, holding `cert`.
pub(super) fn ingress_dump(cert: &Cert) -> Value {
    list(vec![secret(
        "kube-system",
        "ingress-tls",
        "kubernetes.io/tls",
        &[
            ("tls.crt", cert.pem.as_bytes()),
            ("tls.key", cert.key_pem.as_bytes()),
        ],
    )])
}

#[test]
fn every_credential_label_arrives_unrenamed_under_target_labels() {
    require(PROMETHEUS);
    let s = Scratch::new();
    let ca = Cert::ca(
        "labels-ca",
        datetime!(2025-01-01 0:00 UTC),
        datetime!(2040-01-01 0:00 UTC),
    );
    let web = ca.issue(
        "web.example",
        datetime!(2025-07-01 0:00 UTC),
        datetime!(2031-07-01 12:34 UTC),
    );
    let ingress = ca.issue(
        "ingress.example",
        datetime!(2026-01-01 0:00 UTC),
        datetime!(2030-01-01 0:00 UTC),
    );
    s.write("certs/web.crt", &web.pem);
    // A TLS Secret in kube-system, as `kubectl get secrets -A -o json` prints it.
    let dump = ingress_dump(&ingress);
    s.write("dump.json", dump.to_string());
    let (iat, exp) = (
        unix(datetime!(2026-01-01 0:00 UTC)),
        unix(datetime!(2032-01-01 0:00 UTC)),
    );
    s.write(
        "tokens/ci.jwt",
        jwt(
            json!({"sub": "system:serviceaccount:ci:deployer", "iat": iat, "exp": exp}),
            "sig-target-labels",
        ),
    );

    let before = unix_now();
    let lapse = s
        .serve()
        .args(["certs", "dump.json", "tokens/ci.jwt"])
        .start();
    let attached: String = TARGET_LABELS
        .iter()
        .map(|(k, v)| format!("      {k}: {v}\n"))
        .collect();
    let target = format!("['127.0.0.1:{}']", lapse.port);
    let prometheus = Prometheus::with_config(
        &s,
        "prometheus",
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n\
             scrape_configs:\n\
             - job_name: plain\n  static_configs:\n  - targets: {target}\n\
             - job_name: labelled\n  static_configs:\n  - targets: {target}\n    labels:\n{attached}"
        ),
    )
    .start();

    // Each job has scraped all three credentials (and lapse's own series).
    let everything = prometheus.wait_until("both jobs scraped", |p| {
        let counts = p.query("count by (job) (lapse_credential_validity_seconds)");
        let scraped = counts.len() == 2 && counts.iter().all(|c| value(c) == 3.0);
        let series = p.query(r#"{job=~"plain|labelled"}"#);
        if scraped
            && series
                .iter()
                .any(|s| labels(s)["__name__"] == "lapse_build_info")
        {
            Ok(series)
        } else {
            Err(format!("credentials per job: {counts:?}"))
        }
    });
    let after = unix_now();

    // No series of either job has a renamed label, and each job's target
    // labels are exactly what its scrape config attached.
    let mut by_job: BTreeMap<String, BTreeSet<BTreeMap<String, String>>> = BTreeMap::new();
    for series in &everything {
        let l = labels(series);
        let renamed: Vec<&String> = l.keys().filter(|k| k.starts_with("exported_")).collect();
        assert!(renamed.is_empty(), "renamed labels {renamed:?} on {l:?}");
        let job = l["job"].clone();
        for (name, want) in TARGET_LABELS {
            let got = l.get(name).map(String::as_str);
            let want = (job == "labelled").then_some(want);
            assert_eq!(got, want, "{name} on a series of job {job}: {l:?}");
        }
        assert_eq!(l["instance"], format!("127.0.0.1:{}", lapse.port), "{l:?}");
        by_job.entry(job).or_default().insert(own(l));
    }
    assert_eq!(by_job.len(), 2, "{by_job:#?}");
    let (labelled, plain) = (&by_job["labelled"], &by_job["plain"]);
    assert_eq!(
        labelled.symmetric_difference(plain).collect::<Vec<_>>(),
        Vec::<&BTreeMap<String, String>>::new(),
        "series whose labels differ between the plain and the labelled job"
    );

    // Each credential's own labels, exactly, in both jobs.
    let web_labels = json!({
        "kind": "x509", "source": "file", "path": "certs/web.crt", "index": "0",
        "subject_cn": "web.example", "issuer_cn": "labels-ca",
    });
    let secret_labels = json!({
        "kind": "x509", "source": "secret", "path": "dump.json",
        "entry": "secret kube-system/ingress-tls tls.crt", "index": "0",
        "object_namespace": "kube-system", "name": "ingress-tls", "key": "tls.crt",
        "subject_cn": "ingress.example", "issuer_cn": "labels-ca",
    });
    let token_labels = json!({
        "kind": "jwt", "source": "file", "path": "tokens/ci.jwt",
        "subject": "system:serviceaccount:ci:deployer",
    });
    let credentials = [
        (
            &web_labels,
            unix(datetime!(2025-07-01 0:00 UTC)),
            unix(datetime!(2031-07-01 12:34 UTC)),
        ),
        (
            &secret_labels,
            unix(datetime!(2026-01-01 0:00 UTC)),
            unix(datetime!(2030-01-01 0:00 UTC)),
        ),
        (&token_labels, iat, exp),
    ];
    for job in ["plain", "labelled"] {
        let of = |family: &str| -> Vec<Value> {
            everything
                .iter()
                .filter(|s| labels(s)["__name__"] == family && labels(s)["job"] == job)
                .cloned()
                .collect()
        };
        for family in [
            "lapse_credential_validity_seconds",
            "lapse_credential_expires_in_seconds",
            "lapse_credential_info",
        ] {
            let found = of(family);
            assert_eq!(found.len(), 3, "{family} in job {job}: {found:#?}");
        }
        for (want, not_before, not_after) in &credentials {
            let mut want = map((*want).clone());
            let find = |family: &str, want: &BTreeMap<String, String>| -> Value {
                let mut want = want.clone();
                want.insert("__name__".into(), family.into());
                let found: Vec<Value> = of(family)
                    .into_iter()
                    .filter(|s| own(labels(s)) == want)
                    .collect();
                assert_eq!(
                    found.len(),
                    1,
                    "job {job}: one {family} with exactly {want:?}; it has {:#?}",
                    of(family)
                );
                found[0].clone()
            };
            let validity = value(&find("lapse_credential_validity_seconds", &want));
            assert_eq!(
                validity,
                (not_after - not_before) as f64,
                "{want:?} in job {job}"
            );
            let expires_in = value(&find("lapse_credential_expires_in_seconds", &want));
            let (low, high) = ((not_after - after) as f64, (not_after - before) as f64);
            assert!(
                (low..=high).contains(&expires_in),
                "{want:?} in job {job}: expires_in {expires_in}, expected within [{low}, {high}]"
            );
            // The info series adds serial and fingerprint, nothing else.
            let fingerprint = match want["path"].as_str() {
                "certs/web.crt" => web.fingerprint_label(),
                "dump.json" => ingress.fingerprint_label(),
                _ => {
                    let token = std::fs::read_to_string(s.path("tokens/ci.jwt")).expect("token");
                    sha256(token.trim())["sha256:".len()..][..16].to_string()
                }
            };
            want.insert("fingerprint".into(), fingerprint);
            let info = of("lapse_credential_info")
                .into_iter()
                .find(|s| {
                    let mut l = own(labels(s));
                    l.remove("serial");
                    l.remove("__name__");
                    l == want
                })
                .unwrap_or_else(|| {
                    panic!(
                        "job {job}: no lapse_credential_info with {want:?}: {:#?}",
                        of("lapse_credential_info")
                    )
                });
            assert_eq!(value(&info), 1.0, "{info}");
        }
    }
}
