//! Bad input: each problem is an error entry naming the file (and the
//! entry inside it), nothing panics, and every other file is still read.

use crate::support::*;
use serde_json::json;
use time::macros::datetime;

fn good_cert() -> Cert {
    Cert::ca(
        "good",
        datetime!(2026-01-01 0:00 UTC),
        datetime!(2027-01-01 0:00 UTC),
    )
}

/// The first half of a certificate's PEM: no END line.
fn truncated(cert: &Cert) -> String {
    cert.pem[..cert.pem.len() / 2].to_string()
}

#[test]
fn truncated_pem_is_an_error_and_the_complete_certificate_before_it_counts() {
    let s = Scratch::new();
    let (first, second) = (good_cert(), good_cert());
    s.write("cut.pem", format!("{}{}", first.pem, truncated(&second)));
    s.write("only-cut.crt", truncated(&second));

    let report = s.check().args(["cut.pem", "only-cut.crt"]).json();

    report
        .assert_credential_count(1)
        .assert_error_count(2)
        .assert_code(3);
    assert_fields(
        report.credential("cut.pem", None, Some(0)),
        json!({"fingerprint": first.fingerprint(), "not_after": "2027-01-01T00:00:00Z"}),
    );
    assert_eq!(
        report.reason("cut.pem", None),
        "certificate #1: PEM block CERTIFICATE has no matching END line (truncated?)"
    );
    assert_eq!(
        report.reason("only-cut.crt", None),
        "certificate #0: PEM block CERTIFICATE has no matching END line (truncated?)"
    );
}

#[test]
fn corrupt_base64_inside_pem_armour() {
    let s = Scratch::new();
    let cert = good_cert();
    let body_start = cert.pem.find('\n').unwrap() + 1;
    let mut pem = cert.pem.clone();
    pem.replace_range(body_start..body_start + 4, "!!!!");
    s.write("corrupt.crt", pem);

    let report = s.check().arg("corrupt.crt").json();

    report.assert_credential_count(0).assert_code(3);
    assert_eq!(
        report.reason("corrupt.crt", None),
        "certificate #0: PEM block CERTIFICATE: invalid base64 (bad character at offset 0)"
    );
}

#[test]
fn truncated_der_is_an_error() {
    let s = Scratch::new();
    let cert = good_cert();
    s.write("cut.der", &cert.der[..cert.der.len() - 20]);

    let report = s.check().arg("cut.der").json();

    report.assert_credential_count(0).assert_error_count(1);
    assert_eq!(
        report.reason("cut.der", None),
        "DER data is truncated (its length runs past the end)"
    );
}

#[test]
fn invalid_base64_in_kubeconfig_data_names_the_entry() {
    let s = Scratch::new();
    let ok = good_cert();
    s.write(
        "config",
        format!(
            "apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers:\n\
             - name: x\n  user:\n    client-certificate-data: LS0tLS1CRUdJTi%%%not-base64\n\
             - name: y\n  user:\n    client-certificate-data: {}\n",
            b64(&ok.pem)
        ),
    );

    let report = s.check().arg("config").json();

    report.assert_credential_count(1).assert_error_count(1);
    assert_eq!(
        report.reason("config", Some("users[x].client-certificate-data")),
        "invalid base64 (bad character at offset 14)"
    );
    assert_fields(
        report.credential("config", Some("users[y].client-certificate-data"), Some(0)),
        json!({"fingerprint": ok.fingerprint()}),
    );
}

#[test]
fn kubeconfig_data_that_is_base64_but_not_a_certificate() {
    let s = Scratch::new();
    s.write(
        "config",
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    certificate-authority-data: {}\n",
            b64("just some words, no certificate")
        ),
    );

    let report = s.check().arg("config").json();

    report.assert_credential_count(0);
    assert_eq!(
        report.reason("config", Some("clusters[c].certificate-authority-data")),
        "no certificate found (expected PEM, DER or PKCS#12)"
    );
}

#[test]
fn a_missing_referenced_file_is_an_error_on_the_kubeconfig_entry() {
    let s = Scratch::new();
    s.write(
        "kube/config",
        "apiVersion: v1\nkind: Config\nclusters: []\nusers:\n- name: ops\n  user:\n    client-certificate: certs/ops.crt\n",
    );

    let report = s.check().arg("kube/config").json();

    report
        .assert_credential_count(0)
        .assert_error_count(1)
        .assert_code(3);
    assert_eq!(
        report.reason("kube/config", Some("users[ops].client-certificate")),
        "kube/certs/ops.crt: no such file or directory"
    );
}

#[test]
fn random_bytes_are_an_error_when_named_like_a_certificate_and_skipped_otherwise() {
    let s = Scratch::new();
    s.write("x.crt", noise(700));
    s.write("x.bin", noise(700));

    let report = s.check().args(["x.crt", "x.bin"]).json();

    report.assert_credential_count(0).assert_error_count(1);
    assert_eq!(
        report.reason("x.crt", None),
        "named like a certificate or token, but holds no format lapse recognises"
    );
}

#[test]
fn prose_and_empty_files_are_skipped_quietly() {
    let s = Scratch::new();
    s.write(
        "notes.txt",
        "Rotate the ingress certificate before the freeze.\n",
    );
    s.write("empty.crt", "");

    let report = s.check().args(["notes.txt", "empty.crt"]).json();

    report
        .assert_no_errors()
        .assert_credential_count(0)
        // Nothing to check is not a clean bill of health.
        .assert_code(3);
}

#[test]
fn broken_yaml_in_a_kubeconfig() {
    let s = Scratch::new();
    s.write(
        "broken-config",
        "apiVersion: v1\nkind: Config\nusers:\n- name: x\n  user:\n    token: abc\n   bad: [unclosed\n",
    );
    s.write("ok.pem", good_cert().pem);

    let report = s.check().args(["broken-config", "ok.pem"]).json();

    report.assert_credential_count(1).assert_error_count(1);
    assert_contains(
        &report.reason("broken-config", None),
        "invalid YAML at line ",
    );
}

#[test]
fn broken_json_token_cache() {
    let s = Scratch::new();
    s.write(
        "cache.json",
        r#"{"access_token": "ya29.x", "token_expiry": "2026-06-01T00:00:00Z""#,
    );

    let report = s.check().arg("cache.json").json();

    report.assert_credential_count(0);
    assert_eq!(
        report.reason("cache.json", None),
        "invalid JSON at line 1 column 65"
    );
}

#[test]
fn a_jwt_with_a_non_numeric_exp_is_an_error() {
    let s = Scratch::new();
    s.write(
        "bad.jwt",
        jwt(json!({"sub": "x", "exp": "tomorrow"}), "sig-bad-exp"),
    );

    let report = s.check().arg("bad.jwt").json();

    report.assert_credential_count(0);
    assert_eq!(
        report.reason("bad.jwt", None),
        "JWT claim exp is not a NumericDate"
    );
}

#[test]
fn invalid_base64_in_a_secret_names_the_key() {
    let s = Scratch::new();
    let ok = good_cert();
    s.write(
        "secret.yaml",
        format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: tls\n  namespace: web\ntype: kubernetes.io/tls\n\
             data:\n  tls.crt: \"not*base64\"\n  ca.crt: {}\n",
            b64(&ok.pem)
        ),
    );

    let report = s.check().arg("secret.yaml").json();

    report.assert_credential_count(1).assert_error_count(1);
    assert_eq!(
        report.reason("secret.yaml", Some("secret web/tls tls.crt")),
        "data: invalid base64 (bad character at offset 3)"
    );
}

#[test]
fn a_file_over_the_size_cap_is_an_error_that_names_the_cap() {
    let s = Scratch::new();
    let big = good_cert();
    s.write(
        "big.pem",
        format!("{}{}", "# padding\n".repeat(200), big.pem),
    );
    s.write("small.pem", good_cert().pem);

    let report = s
        .check()
        .args(["big.pem", "small.pem", "--max-file-size", "1KiB"])
        .json();

    report.assert_credential_count(1).assert_error_count(1);
    assert_eq!(
        report.reason("big.pem", None),
        "larger than the 1 KiB size cap; not read"
    );
}

#[test]
fn standard_input_over_the_size_cap_is_an_error() {
    let s = Scratch::new();
    let report = s
        .check()
        .args(["-", "--max-file-size", "100"])
        .stdin(good_cert().pem)
        .json();

    report.assert_credential_count(0).assert_code(3);
    assert_eq!(
        report.reason("-", None),
        "larger than the 100 B size cap; not read"
    );
}

#[test]
fn a_password_protected_pkcs12_is_an_error() {
    let s = Scratch::new();
    let cert = good_cert();
    s.write("locked.p12", pkcs12(&[&cert], "s3cret-store-password"));

    let report = s.check().arg("locked.p12").json();

    report.assert_credential_count(0).assert_code(3);
    assert_eq!(
        report.reason("locked.p12", None),
        "PKCS#12 store is password-protected and no password is configured"
    );
}

#[test]
fn one_directory_of_bad_files_beside_a_good_one() {
    let s = Scratch::new();
    let ok = good_cert();
    s.write("mixed/ok.crt", &ok.pem);
    s.write("mixed/cut.crt", truncated(&good_cert()));
    s.write("mixed/noise.crt", noise(300));
    s.write("mixed/noise.bin", noise(300));
    s.write("mixed/locked.p12", pkcs12(&[&good_cert()], "pw"));
    s.write(
        "mixed/kubeconfig",
        "apiVersion: v1\nkind: Config\nclusters: [\n",
    );
    s.symlink("nowhere.crt", "mixed/dangling.crt");

    let report = s.check().arg("mixed").json();

    report
        .assert_credential_count(1)
        .assert_error_count(5)
        .assert_code(3);
    assert_fields(
        report.credential("mixed/ok.crt", None, Some(0)),
        json!({"fingerprint": ok.fingerprint()}),
    );
    let mut errored: Vec<&str> = report
        .errors()
        .iter()
        .filter_map(|e| e["path"].as_str())
        .collect();
    errored.sort();
    assert_eq!(
        errored,
        [
            "mixed/cut.crt",
            "mixed/dangling.crt",
            "mixed/kubeconfig",
            "mixed/locked.p12",
            "mixed/noise.crt"
        ]
    );
}

#[test]
fn unreadable_auth_provider_expiry_fields_are_errors_not_never_expiring_tokens() {
    let s = Scratch::new();
    s.write(
        "config",
        "apiVersion: v1\nkind: Config\nusers:\n\
         - name: gke\n  user:\n    auth-provider:\n      name: gcp\n      config:\n        \
           access-token: ya29.some-token-value\n        expiry: next week\n\
         - name: aks\n  user:\n    auth-provider:\n      name: azure\n      config:\n        \
           access-token: opaque-azure-token-value\n        expires-on: \"2026-06-01 00:00\"\n",
    );

    let report = s.check().arg("config").json();

    report
        .assert_credential_count(0)
        .assert_error_count(2)
        .assert_code(3);
    assert_eq!(
        report.reason("config", Some("users[gke].auth-provider.expiry")),
        "expiry is not an RFC 3339 time"
    );
    assert_eq!(
        report.reason("config", Some("users[aks].auth-provider.expires-on")),
        "expires-on is not Unix seconds"
    );
}

#[test]
fn helm_templates_are_skipped_quietly_though_they_mention_tokens() {
    let s = Scratch::new();
    s.write(
        "chart/templates/secret.yaml",
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {{ .Release.Name }}-tls\ndata:\n  tls.crt: {{ .Values.tls.cert | b64enc }}\n  token: {{ .Values.token }}\n{{- if .Values.extra }}\n  extra: x\n{{- end }}\n",
    );

    let report = s.check().arg("chart").json();

    report
        .assert_no_errors()
        .assert_credential_count(0)
        // Nothing to check is not a clean bill of health.
        .assert_code(3);
}
