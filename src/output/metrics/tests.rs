//! The page's label sets and families, for each `metrics:` choice.

use super::*;
use crate::credential::{Fingerprint, ObjectRef, Source};
use crate::inventory::files_snapshot;

const NOW: Timestamp = 1_800_000_000;

fn secret_certificate() -> Credential {
    let mut c = Credential::new(Kind::X509, Fingerprint::of(b"cert")).expiring(Some(NOW + 86_400));
    c.not_before = Some(NOW - 86_400);
    c.source = Source::Secret;
    c.path = "kubernetes".into();
    c.index = Some(0);
    c.object = Some(Box::new(ObjectRef {
        namespace: "kube-system".into(),
        name: "etcd".into(),
        key: "tls.crt".into(),
        labels: vec![("app.kubernetes.io/name".into(), "etcd".into())],
    }));
    c.identity.set_subject(Some("CN=etcd"));
    c.identity.set_subject_cn(Some("etcd"));
    c.identity.set_issuer_cn(Some("etcd-ca"));
    c.identity.set_serial(Some("1f"));
    c
}

fn jwt() -> Credential {
    let mut c = Credential::new(Kind::Jwt, Fingerprint::of(b"token")).expiring(Some(NOW - 10));
    c.source = Source::Kubeconfig;
    c.path = "/home/ci/.kube/config".into();
    c.entry = Some("users[ci].token".into());
    c.identity
        .set_subject(Some("system:serviceaccount:ci:deployer"));
    c
}

fn page(config: MetricsConfig, credentials: Vec<Credential>) -> String {
    let snapshot = files_snapshot(credentials, Vec::new(), Some(NOW));
    let cache = LabelCache::new(config);
    let mut out = String::new();
    render_families(&snapshot, &cache, NOW, &all_families(), &mut out);
    out.push_str(&render_sources(&snapshot, &cache));
    out.lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| format!("{l}\n"))
        .collect()
}

#[test]
fn empty_labels_are_left_out_and_a_renewal_changes_only_the_info_series() {
    let fp_cert = Fingerprint::of(b"cert").short(16);
    let fp_jwt = Fingerprint::of(b"token").short(16);
    let cert = "kind=\"x509\",source=\"secret\",path=\"kubernetes\",index=\"0\",\
                object_namespace=\"kube-system\",name=\"etcd\",key=\"tls.crt\",\
                subject_cn=\"etcd\",issuer_cn=\"etcd-ca\"";
    let jwt_labels = "kind=\"jwt\",source=\"kubeconfig\",path=\"/home/ci/.kube/config\",\
                      entry=\"users[ci].token\",subject=\"system:serviceaccount:ci:deployer\"";
    let sl = ",secret_label_app_kubernetes_io_name=\"etcd\"";
    assert_eq!(
        page(MetricsConfig::default(), vec![secret_certificate(), jwt()]),
        format!(
            "lapse_credential_expires_in_seconds{{{cert}{sl}}} 86400\n\
             lapse_credential_expires_in_seconds{{{jwt_labels}}} -10\n\
             lapse_credential_validity_seconds{{{cert}{sl}}} 172800\n\
             lapse_credential_info{{{cert},serial=\"1f\",fingerprint=\"{fp_cert}\"{sl}}} 1\n\
             lapse_credential_info{{{jwt_labels},fingerprint=\"{fp_jwt}\"}} 1\n\
             lapse_source_up{{source=\"files\"}} 1\n\
             lapse_source_last_scan_timestamp_seconds{{source=\"files\"}} 1800000000\n\
             lapse_file_errors 0\n"
        )
    );
}

#[test]
fn every_family_every_series_and_constant_labels() {
    let config = MetricsConfig {
        families: vec![true; FAMILIES],
        descriptive: Descriptive::EverySeries,
        labels: vec![("node".into(), "worker-1".into())],
    };
    let fp = Fingerprint::of(b"token").short(16);
    let l = format!(
        "node=\"worker-1\",kind=\"jwt\",source=\"kubeconfig\",path=\"/home/ci/.kube/config\",\
         entry=\"users[ci].token\",subject=\"system:serviceaccount:ci:deployer\",fingerprint=\"{fp}\""
    );
    assert_eq!(
        page(config, vec![jwt()]),
        format!(
            "lapse_credential_expires_in_seconds{{{l}}} -10\n\
             lapse_credential_not_after_timestamp_seconds{{{l}}} 1799999990\n\
             lapse_credential_expired{{{l}}} 1\n\
             lapse_credential_info{{{l}}} 1\n\
             lapse_source_up{{node=\"worker-1\",source=\"files\"}} 1\n\
             lapse_source_last_scan_timestamp_seconds{{node=\"worker-1\",source=\"files\"}} 1800000000\n\
             lapse_file_errors{{node=\"worker-1\"}} 0\n"
        )
    );
}

#[test]
fn two_credentials_differing_only_in_fingerprint_stay_two_series() {
    // Same place, same names: only the fingerprint told them apart, and it
    // is no longer on the value series.
    let mut a = jwt();
    let mut b = jwt();
    a.fingerprint = Fingerprint::of(b"a");
    b.fingerprint = Fingerprint::of(b"b");
    let config = MetricsConfig {
        families: families::CREDENTIAL_FAMILIES
            .iter()
            .map(|f| f.name.ends_with("expires_in_seconds"))
            .collect(),
        ..MetricsConfig::default()
    };
    let text = page(config, vec![a, b]);
    let lines: Vec<&str> = text.lines().filter(|l| l.contains("credential")).collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(!lines[0].contains("index="), "{text}");
    assert!(lines[1].contains(",index=\"~2\","), "{text}");
}

#[test]
fn accept_negotiation() {
    assert!(wants_openmetrics(Some(
        "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.3"
    )));
    assert!(!wants_openmetrics(Some("text/plain")));
    assert!(!wants_openmetrics(None));
}

#[test]
fn repeats_are_numbered_in_order_and_odd_values_are_escaped() {
    // Three credentials with one label set: the second and third get
    // `0~2` and `0~3`. A CN with a quote, a backslash, a newline, an
    // escape character and a non-ASCII letter is escaped (the common
    // printable-ASCII value is copied as it is).
    let mut odd = secret_certificate();
    odd.fingerprint = Fingerprint::of(b"odd");
    odd.identity.set_subject_cn(Some("a\"b\\c\nd\x1be-é"));
    let repeats = (0..3).map(|n| {
        let mut c = secret_certificate();
        c.fingerprint = Fingerprint::of(&[n]);
        c
    });
    let config = MetricsConfig {
        families: families::CREDENTIAL_FAMILIES
            .iter()
            .map(|f| f.name.ends_with("expires_in_seconds"))
            .collect(),
        ..MetricsConfig::default()
    };
    let text = page(config, repeats.chain([odd]).collect());
    let base = "kind=\"x509\",source=\"secret\",path=\"kubernetes\",index=\"0";
    let rest = "\",object_namespace=\"kube-system\",name=\"etcd\",key=\"tls.crt\",\
                subject_cn=\"etcd\",issuer_cn=\"etcd-ca\",\
                secret_label_app_kubernetes_io_name=\"etcd\"} 86400\n";
    let series: Vec<&str> = text.lines().filter(|l| l.contains("expires_in")).collect();
    assert_eq!(
        series,
        [
            format!(
                "lapse_credential_expires_in_seconds{{{base}{}",
                rest.trim_end()
            ),
            format!(
                "lapse_credential_expires_in_seconds{{{base}~2{}",
                rest.trim_end()
            ),
            format!(
                "lapse_credential_expires_in_seconds{{{base}~3{}",
                rest.trim_end()
            ),
            "lapse_credential_expires_in_seconds{kind=\"x509\",source=\"secret\",\
             path=\"kubernetes\",index=\"0\",object_namespace=\"kube-system\",name=\"etcd\",\
             key=\"tls.crt\",subject_cn=\"a\\\"b\\\\c\\\\nd\\\\x1be-é\",issuer_cn=\"etcd-ca\",\
             secret_label_app_kubernetes_io_name=\"etcd\"} 86400"
                .to_string(),
        ]
    );
}

#[test]
fn a_part_kept_from_the_last_snapshot_keeps_its_label_set_for_repeats() {
    use crate::inventory::{Inventory, Part, SourceReport};
    let part = |path: &str, fp: &[u8]| {
        let mut c = secret_certificate();
        c.fingerprint = Fingerprint::of(fp);
        Arc::new(Part {
            path: std::path::Path::new(path).into(),
            credentials: Box::new([c]),
            ..Part::default()
        })
    };
    let inventory = Inventory::new(&["files"]);
    let publish = |parts: Vec<Arc<Part>>| {
        inventory.publish(
            "files",
            SourceReport {
                parts,
                errors: Vec::new(),
                up: true,
                last_scan: Some(NOW),
            },
        );
        inventory.snapshot()
    };
    let config = MetricsConfig {
        families: families::CREDENTIAL_FAMILIES
            .iter()
            .map(|f| f.name.ends_with("expires_in_seconds"))
            .collect(),
        ..MetricsConfig::default()
    };
    let cache = LabelCache::new(config);
    let render = |snapshot: &Arc<Snapshot>| {
        let mut out = String::new();
        render_families(snapshot, &cache, NOW, &all_families(), &mut out);
        out.lines()
            .filter(|l| l.starts_with("lapse_"))
            .map(|l| {
                l.split_once("index=")
                    .map_or("", |(_, rest)| &rest[..6])
                    .to_string()
            })
            .collect::<Vec<_>>()
    };
    let kept = part("a", b"a");
    assert_eq!(render(&publish(vec![kept.clone()])), ["\"0\",ob"]);
    // The kept part's hash comes from the last snapshot; the new one
    // repeats its label set and is numbered after it.
    assert_eq!(
        render(&publish(vec![kept.clone(), part("c", b"c")])),
        ["\"0\",ob", "\"0~2\","]
    );
}
