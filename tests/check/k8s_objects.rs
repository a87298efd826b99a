//! Kubernetes Secrets and ConfigMaps as `kubectl get -o yaml|json` prints
//! them: TLS, service-account-token and bootstrap-token Secrets, Opaque
//! values sniffed by content, ConfigMap PEM, nested kubeconfigs, and the
//! Helm release Secrets that are skipped.

use crate::support::*;
use serde_json::{Value, json};
use time::macros::datetime;

/// A Secret object with base64 `data`.
pub(super) fn secret(namespace: &str, name: &str, kind: &str, data: &[(&str, &[u8])]) -> Value {
    let data: serde_json::Map<String, Value> = data
        .iter()
        .map(|(k, v)| (k.to_string(), Value::String(b64(v))))
        .collect();
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "type": kind,
        "data": data,
    })
}

fn config_map(namespace: &str, name: &str, data: &[(&str, &str)]) -> Value {
    let data: serde_json::Map<String, Value> = data
        .iter()
        .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
        .collect();
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace},
        "data": data,
    })
}

/// `kind: List` with these items, as `kubectl get ... -o json` prints it.
pub(super) fn list(items: Vec<Value>) -> Value {
    json!({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""}, "items": items})
}

/// The same document as YAML. JSON is YAML; re-indenting it block style
/// is what kubectl does, and it keeps the test honest about YAML input.
fn to_yaml(doc: &Value) -> String {
    fn emit(v: &Value, indent: usize, out: &mut String) {
        let pad = " ".repeat(indent);
        match v {
            Value::Object(map) => {
                for (k, v) in map {
                    match v {
                        Value::Object(m) if !m.is_empty() => {
                            out.push_str(&format!("{pad}{k}:\n"));
                            emit(v, indent + 2, out);
                        }
                        Value::Array(a) if !a.is_empty() => {
                            out.push_str(&format!("{pad}{k}:\n"));
                            emit(v, indent, out);
                        }
                        Value::String(s) if s.contains('\n') => {
                            out.push_str(&format!("{pad}{k}: |\n"));
                            for line in s.lines() {
                                out.push_str(&format!("{pad}  {line}\n"));
                            }
                        }
                        _ => out.push_str(&format!("{pad}{k}: {v}\n")),
                    }
                }
            }
            Value::Array(items) => {
                for item in items {
                    let mut inner = String::new();
                    emit(item, indent + 2, &mut inner);
                    out.push_str(&format!("{pad}- {}", &inner[indent + 2..]));
                }
            }
            other => out.push_str(&format!("{pad}{other}\n")),
        }
    }
    let mut out = String::new();
    emit(doc, 0, &mut out);
    out
}

struct Tls {
    root: Cert,
    intermediate: Cert,
    leaf: Cert,
}

fn tls_chain() -> Tls {
    let root = Cert::ca(
        "cluster-root",
        datetime!(2020-01-01 0:00 UTC),
        datetime!(2030-01-01 0:00 UTC),
    );
    let intermediate = root.issue(
        "letsencrypt-r11",
        datetime!(2024-03-13 0:00 UTC),
        datetime!(2027-03-12 23:59:59 UTC),
    );
    let leaf = intermediate.issue(
        "shop.example",
        datetime!(2026-03-20 0:00 UTC),
        datetime!(2026-06-18 0:00 UTC),
    );
    Tls {
        root,
        intermediate,
        leaf,
    }
}

fn tls_secret(tls: &Tls) -> Value {
    secret(
        "web",
        "ingress-tls",
        "kubernetes.io/tls",
        &[
            (
                "tls.crt",
                bundle(&[&tls.leaf, &tls.intermediate]).as_bytes(),
            ),
            ("tls.key", tls.leaf.key_pem.as_bytes()),
            ("ca.crt", tls.root.pem.as_bytes()),
        ],
    )
}

fn assert_tls_secret(report: &Report, path: &str, tls: &Tls) {
    let crt = "secret web/ingress-tls tls.crt";
    assert_fields(
        report.credential(path, Some(crt), Some(0)),
        json!({
            "kind": "x509", "source": "secret", "subject": "CN=shop.example",
            "issuer": "CN=letsencrypt-r11", "not_after": "2026-06-18T00:00:00Z",
            "expires_in_seconds": 17 * DAY, "status": "warning",
            "fingerprint": tls.leaf.fingerprint(),
        }),
    );
    assert_fields(
        report.credential(path, Some(crt), Some(1)),
        json!({"source": "secret", "subject": "CN=letsencrypt-r11",
               "not_after": "2027-03-12T23:59:59Z", "fingerprint": tls.intermediate.fingerprint()}),
    );
    assert_fields(
        report.credential(path, Some("secret web/ingress-tls ca.crt"), Some(0)),
        json!({"source": "secret", "subject": "CN=cluster-root", "not_after": "2030-01-01T00:00:00Z",
               "fingerprint": tls.root.fingerprint()}),
    );
}

#[test]
fn list_dump_with_every_kind_of_secret_and_a_configmap() {
    let s = Scratch::new();
    let tls = tls_chain();
    let legacy = jwt(
        json!({"iss": "kubernetes/serviceaccount", "sub": "system:serviceaccount:ci:deployer"}),
        "sig-legacy",
    );
    let rejected = jwt(
        json!({"iss": "kubernetes/serviceaccount", "sub": "system:serviceaccount:ci:old"}),
        "sig-rejected",
    );
    let mut invalid_since = secret(
        "ci",
        "old-token",
        "kubernetes.io/service-account-token",
        &[("token", rejected.as_bytes()), ("namespace", b"ci")],
    );
    invalid_since["metadata"]["labels"] =
        json!({"kubernetes.io/legacy-token-invalid-since": "2026-01-01"});
    let upstream = Cert::ca(
        "upstream-ca",
        datetime!(2025-01-01 0:00 UTC),
        datetime!(2026-08-01 0:00 UTC),
    );
    let root_ca = Cert::ca(
        "kubernetes",
        datetime!(2025-01-01 0:00 UTC),
        datetime!(2035-01-01 0:00 UTC),
    );
    let helm_payload = Cert::ca(
        "never-reported",
        datetime!(2025-01-01 0:00 UTC),
        datetime!(2026-06-02 0:00 UTC),
    );
    let dump = list(vec![
        tls_secret(&tls),
        secret(
            "ci",
            "deployer-token",
            "kubernetes.io/service-account-token",
            &[
                ("token", legacy.as_bytes()),
                ("ca.crt", root_ca.pem.as_bytes()),
                ("namespace", b"ci"),
            ],
        ),
        invalid_since,
        secret(
            "kube-system",
            "bootstrap-token-abcdef",
            "bootstrap.kubernetes.io/token",
            &[
                ("token-id", b"abcdef"),
                ("token-secret", b"0123456789abcdef"),
                ("expiration", b"2026-06-02T00:00:00Z"),
                ("usage-bootstrap-authentication", b"true"),
            ],
        ),
        secret(
            "web",
            "upstream",
            "Opaque",
            &[("upstream-bundle", upstream.pem.as_bytes())],
        ),
        config_map(
            "kube-system",
            "kube-root-ca.crt",
            &[("ca.crt", &root_ca.pem)],
        ),
        secret(
            "web",
            "sh.helm.release.v1.shop.v3",
            "helm.sh/release.v1",
            &[("release", helm_payload.pem.as_bytes())],
        ),
    ]);
    s.write("dump.yaml", to_yaml(&dump));

    let report = s.check().arg("dump.yaml").json();

    report.assert_no_errors().assert_credential_count(9);
    assert_tls_secret(&report, "dump.yaml", &tls);
    assert_fields(
        report.credential("dump.yaml", Some("secret ci/deployer-token token"), None),
        json!({
            "kind": "jwt", "source": "secret", "subject": "system:serviceaccount:ci:deployer",
            "not_after": null, "expiry_source": "none", "status": "no-expiry",
            "fingerprint": sha256(&legacy),
        }),
    );
    assert_fields(
        report.credential(
            "dump.yaml",
            Some("secret ci/deployer-token ca.crt"),
            Some(0),
        ),
        json!({"kind": "x509", "source": "secret", "not_after": "2035-01-01T00:00:00Z"}),
    );
    assert_fields(
        report.credential("dump.yaml", Some("secret ci/old-token token"), None),
        json!({
            "kind": "jwt", "not_after": "2026-01-01T00:00:00Z",
            "expires_in_seconds": -151 * DAY, "status": "expired",
            "fingerprint": sha256(&rejected),
        }),
    );
    assert_fields(
        report.credential(
            "dump.yaml",
            Some("secret kube-system/bootstrap-token-abcdef token-secret"),
            None,
        ),
        json!({
            "kind": "bootstrap-token", "source": "secret", "subject": "abcdef",
            "not_after": "2026-06-02T00:00:00Z", "expires_in_seconds": DAY,
            "expiry_source": "embedded", "status": "critical",
            "fingerprint": sha256("abcdef.0123456789abcdef"),
        }),
    );
    assert_fields(
        report.credential(
            "dump.yaml",
            Some("secret web/upstream upstream-bundle"),
            Some(0),
        ),
        json!({"kind": "x509", "source": "secret", "subject": "CN=upstream-ca",
               "not_after": "2026-08-01T00:00:00Z", "fingerprint": upstream.fingerprint()}),
    );
    assert_fields(
        report.credential(
            "dump.yaml",
            Some("configmap kube-system/kube-root-ca.crt ca.crt"),
            Some(0),
        ),
        json!({"kind": "x509", "source": "configmap", "subject": "CN=kubernetes",
               "not_after": "2035-01-01T00:00:00Z", "fingerprint": root_ca.fingerprint()}),
    );
}

#[test]
fn json_output_of_kubectl_is_read_too() {
    let s = Scratch::new();
    let tls = tls_chain();
    s.write(
        "secrets.json",
        serde_json::to_string_pretty(&list(vec![tls_secret(&tls)])).unwrap(),
    );

    let report = s.check().arg("secrets.json").json();

    report.assert_no_errors().assert_credential_count(3);
    assert_tls_secret(&report, "secrets.json", &tls);
}

#[test]
fn a_single_secret_object_in_json() {
    let s = Scratch::new();
    let tls = tls_chain();
    s.write("ingress-tls.json", tls_secret(&tls).to_string());

    let report = s.check().arg("ingress-tls.json").json();

    report.assert_no_errors().assert_credential_count(3);
    assert_tls_secret(&report, "ingress-tls.json", &tls);
}

#[test]
fn multi_document_yaml() {
    let s = Scratch::new();
    let tls = tls_chain();
    let root_ca = Cert::ca(
        "kubernetes",
        datetime!(2025-01-01 0:00 UTC),
        datetime!(2035-01-01 0:00 UTC),
    );
    let text = format!(
        "---\n{}---\n{}",
        to_yaml(&tls_secret(&tls)),
        to_yaml(&config_map(
            "default",
            "kube-root-ca.crt",
            &[("ca.crt", &root_ca.pem)]
        ))
    );
    s.write("manifests.yaml", text);

    let report = s.check().arg("manifests.yaml").json();

    report.assert_no_errors().assert_credential_count(4);
    assert_tls_secret(&report, "manifests.yaml", &tls);
    assert_fields(
        report.credential(
            "manifests.yaml",
            Some("configmap default/kube-root-ca.crt ca.crt"),
            Some(0),
        ),
        json!({"source": "configmap", "not_after": "2035-01-01T00:00:00Z"}),
    );
}

#[test]
fn kubeconfig_held_in_a_secret() {
    let s = Scratch::new();
    let ca = Cert::ca(
        "prod-ca",
        datetime!(2025-01-01 0:00 UTC),
        datetime!(2035-01-01 0:00 UTC),
    );
    let admin = ca.issue(
        "prod-admin",
        datetime!(2026-01-01 0:00 UTC),
        datetime!(2026-06-29 0:00 UTC),
    );
    let kubeconfig = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: prod\n  cluster:\n    server: https://prod:6443\n    \
         certificate-authority-data: {}\nusers:\n- name: prod-admin\n  user:\n    client-certificate-data: {}\n    \
         client-key-data: {}\ncontexts: []\ncurrent-context: ''\n",
        b64(&ca.pem),
        b64(&admin.pem),
        b64(&admin.key_pem)
    );
    // Cluster API keeps a workload cluster's admin kubeconfig like this.
    let doc = secret(
        "fleet",
        "prod-kubeconfig",
        "cluster.x-k8s.io/secret",
        &[("value", kubeconfig.as_bytes())],
    );
    s.write("capi.yaml", to_yaml(&doc));

    let report = s.check().arg("capi.yaml").json();

    report.assert_no_errors().assert_credential_count(2);
    assert_fields(
        report.credential(
            "capi.yaml",
            Some("secret fleet/prod-kubeconfig value users[prod-admin].client-certificate-data"),
            Some(0),
        ),
        json!({
            "kind": "x509", "source": "secret", "subject": "CN=prod-admin",
            "not_after": "2026-06-29T00:00:00Z", "expires_in_seconds": 28 * DAY,
            "status": "warning", "fingerprint": admin.fingerprint(),
        }),
    );
    assert_fields(
        report.credential(
            "capi.yaml",
            Some("secret fleet/prod-kubeconfig value clusters[prod].certificate-authority-data"),
            Some(0),
        ),
        json!({"source": "secret", "subject": "CN=prod-ca", "not_after": "2035-01-01T00:00:00Z"}),
    );
}

#[test]
fn keystore_in_a_secret_opens_with_the_password_beside_it() {
    let s = Scratch::new();
    let tls = tls_chain();
    let store = pkcs12(&[&tls.leaf, &tls.intermediate], "changeit-keystore-pass");
    let doc = secret(
        "web",
        "shop-keystore",
        "Opaque",
        &[
            ("keystore.p12", &store),
            ("keystore-password", b"changeit-keystore-pass"),
        ],
    );
    s.write("keystore-secret.yaml", to_yaml(&doc));

    let report = s.check().arg("keystore-secret.yaml").json();

    report.assert_no_errors().assert_credential_count(2);
    assert_fields(
        report.credential(
            "keystore-secret.yaml",
            Some("secret web/shop-keystore keystore.p12"),
            Some(0),
        ),
        json!({"source": "secret", "subject": "CN=shop.example", "not_after": "2026-06-18T00:00:00Z",
               "fingerprint": tls.leaf.fingerprint()}),
    );
    assert_fields(
        report.credential(
            "keystore-secret.yaml",
            Some("secret web/shop-keystore keystore.p12"),
            Some(1),
        ),
        json!({"subject": "CN=letsencrypt-r11", "fingerprint": tls.intermediate.fingerprint()}),
    );
}

#[test]
fn string_data_binary_data_der_and_keystores_in_objects() {
    let s = Scratch::new();
    let tls = tls_chain();
    let mut with_string_data = secret("n", "plain", "Opaque", &[]);
    with_string_data["stringData"] = json!({"ca.pem": tls.root.pem});
    let mut binary = config_map("n", "der-bundle", &[]);
    binary["binaryData"] = json!({"ca.der": b64(&tls.intermediate.der)});
    let opaque = secret(
        "n",
        "mixed",
        "Opaque",
        &[
            ("client", &tls.leaf.der),
            ("store.pfx", &pkcs12(&[&tls.leaf], "")),
        ],
    );
    s.write(
        "objects.json",
        list(vec![with_string_data, binary, opaque]).to_string(),
    );

    let report = s.check().arg("objects.json").json();

    report.assert_no_errors().assert_credential_count(4);
    let expect = [
        ("secret n/plain ca.pem", "secret", &tls.root),
        (
            "configmap n/der-bundle ca.der",
            "configmap",
            &tls.intermediate,
        ),
        ("secret n/mixed client", "secret", &tls.leaf),
        ("secret n/mixed store.pfx", "secret", &tls.leaf),
    ];
    for (entry, source, cert) in expect {
        assert_fields(
            report.credential("objects.json", Some(entry), Some(0)),
            json!({"kind": "x509", "source": source, "fingerprint": cert.fingerprint()}),
        );
    }
}

#[test]
fn aks_hci_login_held_in_a_secret() {
    let s = Scratch::new();
    let ca = Cert::ca(
        "MocCloudAgent",
        datetime!(2026-03-01 0:00 UTC),
        datetime!(2027-03-01 0:00 UTC),
    );
    let token = jwt(json!({"exp": 1_788_048_000}), "sig-caph-login");
    let login = format!(
        "name: caph\ntoken: {token}\ncertificate: {}\ncloudfqdn: ca.contoso.local\ncloudport: 55000\n",
        b64(&ca.pem)
    );
    let doc = secret(
        "caph-system",
        "caphlogintoken",
        "Opaque",
        &[("value", login.as_bytes())],
    );
    s.write("caph.yaml", to_yaml(&doc));

    let report = s.check().arg("caph.yaml").json();

    report.assert_no_errors().assert_credential_count(2);
    assert_fields(
        report.credential(
            "caph.yaml",
            Some("secret caph-system/caphlogintoken value token"),
            None,
        ),
        json!({"kind": "jwt", "source": "secret", "not_after": "2026-08-30T00:00:00Z",
               "fingerprint": sha256(&token)}),
    );
    assert_fields(
        report.credential(
            "caph.yaml",
            Some("secret caph-system/caphlogintoken value certificate"),
            Some(0),
        ),
        json!({"kind": "x509", "source": "secret", "fingerprint": ca.fingerprint()}),
    );
}
