//! Java keystores (JKS, JCEKS) as the JDK's keytool writes them, alone and
//! inside Secrets and ConfigMaps, and PEM saved as UTF-16. pyjks reads every
//! store too: its certificates, in file order, are what lapse must list.

use crate::support::*;
use serde_json::{Value, json};
use std::process::Command;
use time::macros::datetime;

const STORE_PASSWORD: &str = "store-pass-41";

/// Runs keytool in the scratch directory, in UTC (`-startdate` is local time).
fn keytool(s: &Scratch, args: &[&str]) {
    let out = Command::new("keytool")
        .args(args)
        .current_dir(s.path("."))
        .env("TZ", "UTC")
        .output()
        .expect("run keytool");
    assert_success(&format!("keytool {}", args.join(" ")), &out);
}

/// `keytool -importcert` of `cert` as a trusted entry `alias`.
fn import_ca(s: &Scratch, store: &str, storetype: &str, alias: &str, cert: &Cert) {
    let pem = format!("{alias}.pem");
    s.write(&pem, &cert.pem);
    keytool(
        s,
        &[
            "-importcert",
            "-noprompt",
            "-alias",
            alias,
            "-file",
            &pem,
            "-keystore",
            store,
            "-storetype",
            storetype,
            "-storepass",
            STORE_PASSWORD,
        ],
    );
}

/// `(alias, kind, certificate fingerprints)` of every entry, in file order,
/// as pyjks reads the store (checking its integrity hash with `password`).
fn pyjks(s: &Scratch, store: &str, password: &str) -> Vec<(String, String, Vec<String>)> {
    let script = r#"
import hashlib, json, sys, jks
ks = jks.KeyStore.load(sys.argv[1], sys.argv[2], try_decrypt_keys=False)
fp = lambda der: "sha256:" + hashlib.sha256(der).hexdigest()
out = []
for alias, e in ks.entries.items():
    if isinstance(e, jks.TrustedCertEntry):
        out.append([alias, "trusted", [fp(e.cert)]])
    elif isinstance(e, jks.PrivateKeyEntry):
        out.append([alias, "key", [fp(c[1]) for c in e.cert_chain]])
    else:
        out.append([alias, "secret", []])
print(json.dumps(out))
"#;
    let out = Command::new("python3")
        .args(["-c", script, &s.abs(store), password])
        .output()
        .expect("run python3");
    serde_json::from_str(&assert_success("pyjks", &out)).expect("pyjks printed JSON")
}

/// Every certificate pyjks finds, in order: lapse's `#index` order.
fn oracle_fingerprints(entries: &[(String, String, Vec<String>)]) -> Vec<String> {
    entries.iter().flat_map(|e| e.2.clone()).collect()
}

fn fingerprints(report: &Report, path: &str, entry: Option<&str>) -> Vec<String> {
    (0..report.credentials().len() as u64)
        .filter_map(|i| {
            report
                .credentials()
                .iter()
                .find(|c| c["path"] == path && c["entry"] == json!(entry) && c["index"] == i)
        })
        .map(|c| c["fingerprint"].as_str().unwrap_or_default().to_string())
        .collect()
}

fn two_cas() -> (Cert, Cert) {
    (
        Cert::ca(
            "jks-root-one",
            datetime!(2025-01-01 0:00 UTC),
            datetime!(2027-03-04 5:06:07 UTC),
        ),
        Cert::ca(
            "jks-root-two",
            datetime!(2025-02-01 0:00 UTC),
            datetime!(2026-06-20 12:00 UTC),
        ),
    )
}

/// A truststore lists every CA certificate, with no password configured
/// (today: `0 credentials`, exit 0).
#[test]
fn a_jks_truststore_lists_every_ca_certificate_without_a_password() {
    let s = Scratch::new();
    let (one, two) = two_cas();
    import_ca(&s, "truststore.jks", "JKS", "one", &one);
    import_ca(&s, "truststore.jks", "JKS", "two", &two);
    let oracle = pyjks(&s, "truststore.jks", STORE_PASSWORD);

    let report = s.check().arg("truststore.jks").json();

    report.assert_no_errors().assert_credential_count(2);
    assert_eq!(
        fingerprints(&report, "truststore.jks", None),
        oracle_fingerprints(&oracle)
    );
    for (cert, not_after, status) in [
        (&one, "2027-03-04T05:06:07Z", "ok"),
        (&two, "2026-06-20T12:00:00Z", "warning"),
    ] {
        let c = report
            .credentials()
            .iter()
            .find(|c| c["fingerprint"] == cert.fingerprint())
            .expect("each CA is listed");
        assert_fields(
            c,
            json!({"kind": "x509", "not_after": not_after, "status": status, "source": "file"}),
        );
    }
    assert_eq!(report.code, 1, "a warning: exit 1\n{}", report.stderr);
}

/// JCEKS: a secret-key entry (a serialized SealedObject with no length in
/// front) sits before the certificates, and lapse walks past it.
#[test]
fn a_jceks_store_lists_the_certificates_after_a_secret_key() {
    let s = Scratch::new();
    let (one, two) = two_cas();
    import_ca(&s, "app.jceks", "JCEKS", "one", &one);
    import_ca(&s, "app.jceks", "JCEKS", "two", &two);
    keytool(
        &s,
        &[
            "-genseckey",
            "-alias",
            "secret",
            "-keyalg",
            "AES",
            "-keysize",
            "128",
            "-keystore",
            "app.jceks",
            "-storetype",
            "JCEKS",
            "-storepass",
            STORE_PASSWORD,
            "-keypass",
            STORE_PASSWORD,
        ],
    );
    let oracle = pyjks(&s, "app.jceks", STORE_PASSWORD);
    let kinds: Vec<&str> = oracle.iter().map(|e| e.1.as_str()).collect();
    assert_eq!(
        kinds,
        ["secret", "trusted", "trusted"],
        "the secret key comes first"
    );

    let report = s.check().arg("app.jceks").json();

    report.assert_no_errors().assert_credential_count(2);
    assert_eq!(
        fingerprints(&report, "app.jceks", None),
        oracle_fingerprints(&oracle)
    );
}

/// A key entry's chain of three (leaf, intermediate, root), imported from
/// a PKCS#12 store, and a `-genkeypair` entry with the validity asked for.
#[test]
fn key_entries_list_every_certificate_of_their_chain() {
    let s = Scratch::new();
    let root = Cert::ca(
        "chain-root",
        datetime!(2025-01-01 0:00 UTC),
        datetime!(2030-01-01 0:00 UTC),
    );
    let intermediate = root.issue(
        "chain-intermediate",
        datetime!(2025-01-01 0:00 UTC),
        datetime!(2028-07-01 0:00 UTC),
    );
    let leaf = intermediate.issue(
        "chain.example",
        datetime!(2026-01-01 0:00 UTC),
        datetime!(2026-06-05 8:00 UTC),
    );
    s.write("leaf.pem", &leaf.pem);
    s.write("leaf.key", &leaf.key_pem);
    s.write("chain.pem", bundle(&[&intermediate, &root]));
    let out = Command::new("openssl")
        .args(["pkcs12", "-export", "-inkey", "leaf.key", "-in", "leaf.pem"])
        .args([
            "-certfile",
            "chain.pem",
            "-name",
            "server",
            "-out",
            "leaf.p12",
        ])
        .args(["-passout", &format!("pass:{STORE_PASSWORD}")])
        .current_dir(s.path("."))
        .output()
        .expect("run openssl");
    assert_success("openssl pkcs12 -export", &out);
    keytool(
        &s,
        &[
            "-importkeystore",
            "-noprompt",
            "-srckeystore",
            "leaf.p12",
            "-srcstoretype",
            "PKCS12",
            "-srcstorepass",
            STORE_PASSWORD,
            "-destkeystore",
            "server.jks",
            "-deststoretype",
            "JKS",
            "-deststorepass",
            STORE_PASSWORD,
        ],
    );
    keytool(
        &s,
        &[
            "-genkeypair",
            "-alias",
            "self",
            "-keyalg",
            "EC",
            "-dname",
            "CN=self.example",
            "-startdate",
            "2026/01/01 00:00:00",
            "-validity",
            "90",
            "-keystore",
            "self.jks",
            "-storetype",
            "JKS",
            "-storepass",
            STORE_PASSWORD,
            "-keypass",
            STORE_PASSWORD,
        ],
    );
    let oracle = pyjks(&s, "server.jks", STORE_PASSWORD);
    assert_eq!(oracle.len(), 1);
    assert_eq!(
        oracle[0].2,
        [
            leaf.fingerprint(),
            intermediate.fingerprint(),
            root.fingerprint()
        ]
    );

    let report = s.check().args(["server.jks", "self.jks"]).json();

    report.assert_no_errors().assert_credential_count(4);
    let expect = [
        (0, "CN=chain.example", "2026-06-05T08:00:00Z", "critical"),
        (1, "CN=chain-intermediate", "2028-07-01T00:00:00Z", "ok"),
        (2, "CN=chain-root", "2030-01-01T00:00:00Z", "ok"),
    ];
    for (index, subject, not_after, status) in expect {
        assert_fields(
            report.credential("server.jks", None, Some(index)),
            json!({"subject": subject, "not_after": not_after, "status": status,
                   "fingerprint": oracle[0].2[index as usize]}),
        );
    }
    assert_fields(
        report.credential("self.jks", None, Some(0)),
        json!({"subject": "CN=self.example", "not_before": "2026-01-01T00:00:00Z",
               "not_after": "2026-04-01T00:00:00Z", "status": "expired"}),
    );
}

/// With passwords configured, the integrity hash is checked: the right
/// one among them is silent; when none matches the certificates still
/// count and an error says so. No password appears anywhere.
#[test]
fn configured_passwords_check_the_integrity_hash() {
    let s = Scratch::new();
    let (one, _) = two_cas();
    s.mkdir("stores");
    import_ca(&s, "stores/truststore.jks", "JKS", "one", &one);
    s.write("wrong.pass", "wrong-pass-17\n");
    s.write("also-wrong.pass", "changeit\n");
    s.write("right.pass", format!("{STORE_PASSWORD}\n"));
    s.write(
        "right.yaml",
        "files:\n  paths: [stores]\nkeystore_passwords: [wrong.pass, right.pass]\n",
    );
    s.write(
        "wrong.yaml",
        "files:\n  paths: [stores]\nkeystore_passwords: [wrong.pass, also-wrong.pass]\n",
    );

    let right = s.check().args(["--config", "right.yaml"]).json();
    let wrong = s.check().args(["--config", "wrong.yaml"]).json();
    let text = s.check().args(["--config", "wrong.yaml"]).run();

    right.assert_no_errors().assert_credential_count(1);
    wrong.assert_credential_count(1).assert_error_count(1);
    assert_fields(
        wrong.error("stores/truststore.jks", None),
        json!({"reason": "JKS keystore: integrity check failed with every configured password (2 tried)"}),
    );
    assert_fields(
        &wrong.credentials()[0],
        json!({"not_after": "2027-03-04T05:06:07Z", "fingerprint": one.fingerprint()}),
    );
    assert_eq!(wrong.code, 3, "an error entry: exit 3");
    for output in [
        &right.stdout,
        &right.stderr,
        &wrong.stdout,
        &wrong.stderr,
        &text.stdout,
        &text.stderr,
    ] {
        for secret in [STORE_PASSWORD, "wrong-pass-17", "changeit"] {
            assert!(!output.contains(secret), "a password leaked:\n{output}");
        }
    }
}

/// `kubectl get secret -o yaml` of a Kafka/Elasticsearch-style Secret: the
/// truststore in `data`, its password beside it; and a ConfigMap's
/// `binaryData`.
#[test]
fn keystores_in_secrets_and_config_maps_are_read() {
    let s = Scratch::new();
    let (one, two) = two_cas();
    import_ca(&s, "truststore.jks", "JKS", "one", &one);
    import_ca(&s, "truststore.jks", "JKS", "two", &two);
    let store = std::fs::read(s.path("truststore.jks")).expect("read the store");
    let order = oracle_fingerprints(&pyjks(&s, "truststore.jks", STORE_PASSWORD));
    s.write(
        "secrets.yaml",
        format!(
            "apiVersion: v1\nitems:\n- apiVersion: v1\n  data:\n    truststore.jks: {}\n    truststore.password: {}\n  kind: Secret\n  metadata:\n    name: kafka-cluster-ca\n    namespace: kafka\n  type: Opaque\n- apiVersion: v1\n  data:\n    truststore.jks: {}\n    truststore.password: {}\n  kind: Secret\n  metadata:\n    name: es-transport\n    namespace: elastic\n  type: Opaque\n- apiVersion: v1\n  binaryData:\n    cacerts: {}\n  kind: ConfigMap\n  metadata:\n    name: java-cacerts\n    namespace: app\nkind: List\nmetadata:\n  resourceVersion: \"\"\n",
            b64(&store),
            b64(STORE_PASSWORD),
            b64(&store),
            b64("not-the-password"),
            b64(&store),
        ),
    );

    let report = s.check().arg("secrets.yaml").json();

    report.assert_credential_count(6).assert_error_count(1);
    for entry in [
        "secret kafka/kafka-cluster-ca truststore.jks",
        "secret elastic/es-transport truststore.jks",
        "configmap app/java-cacerts cacerts",
    ] {
        assert_eq!(
            fingerprints(&report, "secrets.yaml", Some(entry)),
            order,
            "{entry}"
        );
    }
    assert_fields(
        report.credential(
            "secrets.yaml",
            Some("secret kafka/kafka-cluster-ca truststore.jks"),
            Some(0),
        ),
        json!({"source": "secret", "not_after": not_after_of(&order[0], &one, &two)}),
    );
    assert_fields(
        report.error(
            "secrets.yaml",
            Some("secret elastic/es-transport truststore.jks"),
        ),
        json!({"reason": "JKS keystore: integrity check failed with every configured password (1 tried)"}),
    );
    for secret in [STORE_PASSWORD, "not-the-password"] {
        assert!(!report.stdout.contains(secret) && !report.stderr.contains(secret));
    }
}

fn not_after_of(fingerprint: &str, one: &Cert, _two: &Cert) -> Value {
    if fingerprint == one.fingerprint() {
        json!("2027-03-04T05:06:07Z")
    } else {
        json!("2026-06-20T12:00:00Z")
    }
}

/// A store cut short, of an unknown version or with an unknown entry tag
/// is an error entry naming JKS; the certificates before the damage count.
#[test]
fn damaged_stores_are_error_entries_naming_the_format() {
    let s = Scratch::new();
    let (one, two) = two_cas();
    import_ca(&s, "good.jks", "JKS", "one", &one);
    import_ca(&s, "good.jks", "JKS", "two", &two);
    let good = std::fs::read(s.path("good.jks")).expect("read the store");
    let first = &pyjks(&s, "good.jks", STORE_PASSWORD)[0].2[0];
    // Into the second certificate: the hash and 100 bytes of it gone.
    s.write("truncated.jks", &good[..good.len() - 120]);
    let mut version = good.clone();
    version[4..8].copy_from_slice(&3u32.to_be_bytes());
    s.write("version.jks", &version);
    let mut tag = good.clone();
    tag[12..16].copy_from_slice(&7u32.to_be_bytes());
    s.write("tag.jks", &tag);
    s.write("header.jks", &good[..10]);

    let report = s
        .check()
        .args(["truncated.jks", "version.jks", "tag.jks", "header.jks"])
        .json();

    report.assert_credential_count(1).assert_error_count(4);
    assert_fields(
        report.credential("truncated.jks", None, Some(0)),
        json!({"fingerprint": first}),
    );
    for (path, message) in [
        (
            "truncated.jks",
            "JKS keystore: truncated (entry #1, certificate #1 runs past the end)",
        ),
        (
            "version.jks",
            "JKS keystore: version 3 is not one lapse reads (1 or 2)",
        ),
        (
            "tag.jks",
            "JKS keystore: entry #0 has unknown tag 7; the entries after it were not read",
        ),
        (
            "header.jks",
            "JKS keystore: truncated (its header runs past the end)",
        ),
    ] {
        assert_fields(report.error(path, None), json!({"reason": message}));
    }
}

/// PEM saved by Windows PowerShell's `Out-File` (UTF-16LE with a BOM, CRLF)
/// and as UTF-16BE with a BOM (today: an error, exit 3).
#[test]
fn utf16_pem_files_with_a_byte_order_mark_are_read() {
    let s = Scratch::new();
    let cert = Cert::ca(
        "utf16.example",
        datetime!(2025-01-01 0:00 UTC),
        datetime!(2026-09-09 9:09:09 UTC),
    );
    let text = cert.pem.replace('\n', "\r\n");
    let units: Vec<u16> = std::iter::once(0xfeff).chain(text.encode_utf16()).collect();
    s.write(
        "le.pem",
        units
            .iter()
            .flat_map(|u| u.to_le_bytes())
            .collect::<Vec<u8>>(),
    );
    s.write(
        "be.crt",
        units
            .iter()
            .flat_map(|u| u.to_be_bytes())
            .collect::<Vec<u8>>(),
    );

    let report = s.check().args(["le.pem", "be.crt"]).json();

    report.assert_no_errors().assert_credential_count(2);
    for path in ["le.pem", "be.crt"] {
        assert_fields(
            report.credential(path, None, Some(0)),
            json!({"not_after": "2026-09-09T09:09:09Z", "fingerprint": cert.fingerprint()}),
        );
    }
    assert_eq!(report.code, 0);
}

/// `(fingerprint, not_after)` of every certificate in the store, in file
/// order, as pyjks and Python cryptography read them.
fn oracle_not_afters(s: &Scratch, store: &str, password: &str) -> Vec<(String, String)> {
    let script = r#"
import hashlib, json, sys, jks
from cryptography import x509
ks = jks.KeyStore.load(sys.argv[1], sys.argv[2], try_decrypt_keys=False)
ders = []
for e in ks.entries.values():
    if isinstance(e, jks.TrustedCertEntry):
        ders.append(e.cert)
    elif isinstance(e, jks.PrivateKeyEntry):
        ders.extend(c[1] for c in e.cert_chain)
print(json.dumps([["sha256:" + hashlib.sha256(d).hexdigest(),
    x509.load_der_x509_certificate(d).not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ")] for d in ders]))
"#;
    let out = Command::new("python3")
        .args(["-c", script, &s.abs(store), password])
        .output()
        .expect("run python3");
    serde_json::from_str(&assert_success("pyjks", &out)).expect("pyjks printed JSON")
}

/// Debian's JDK truststore (ca-certificates-java, installed with
/// default-jre-headless; store password `changeit`): lapse lists what pyjks
/// and cryptography read, certificate for certificate, and the integrity
/// hash matches when `changeit` is configured.
#[test]
fn the_jdk_cacerts_agrees_with_pyjks() {
    let s = Scratch::new();
    let cacerts = std::fs::read("/etc/ssl/certs/java/cacerts")
        .expect("read /etc/ssl/certs/java/cacerts (Debian's default-jre-headless installs it)");
    assert_eq!(
        cacerts[..4],
        [0xfe, 0xed, 0xfe, 0xed],
        "Debian's cacerts is JKS"
    );
    s.write("cacerts", &cacerts);
    s.write("changeit.pass", "changeit\n");
    s.write(
        "lapse.yaml",
        "files:\n  paths: [cacerts]\nkeystore_passwords: [changeit.pass]\n",
    );
    let oracle = oracle_not_afters(&s, "cacerts", "changeit");
    assert!(oracle.len() > 100, "{} certificates", oracle.len());

    for report in [
        s.check().arg("cacerts").json(),
        s.check().args(["--config", "lapse.yaml"]).json(),
    ] {
        report
            .assert_no_errors()
            .assert_credential_count(oracle.len());
        let listed: Vec<(String, String)> = (0..oracle.len() as u64)
            .map(|i| {
                let c = report.credential("cacerts", None, Some(i));
                (
                    c["fingerprint"].as_str().unwrap_or_default().to_string(),
                    c["not_after"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect();
        assert_eq!(listed, oracle);
    }
}
