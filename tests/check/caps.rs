//! Caps on what one input can cost: error entries per file and per object;
//! credentials, PEM blocks and documents per file (growing with its size,
//! not with its aliases); PKCS#12 key-derivation work. Each cap, when
//! reached, is one error entry naming the file; nothing past it is kept or
//! computed.

use crate::support::*;
use serde_json::json;
use std::process::Command;

const EMPTY_BLOCK: &str = "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n";

/// 1 MiB of empty certificate blocks.
fn empty_blocks() -> (String, usize) {
    let n = (1 << 20) / EMPTY_BLOCK.len();
    (EMPTY_BLOCK.repeat(n), n)
}

type Place = (String, Option<String>, String);

/// `(path, entry, reason)` of every error entry, sorted.
fn places(errors: &[serde_json::Value]) -> Vec<Place> {
    let mut all: Vec<Place> = errors
        .iter()
        .map(|e| {
            (
                e["path"].as_str().unwrap().to_string(),
                e["entry"].as_str().map(str::to_string),
                e["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    all.sort();
    all
}

/// The first 100 blocks' errors at `entry`, and the one for the rest.
fn expected(path: &str, entry: Option<&str>, rest: &str) -> Vec<Place> {
    let mut all: Vec<Place> = (0..100)
        .map(|i| {
            let message = format!("certificate #{i}: not a valid X.509 certificate (truncated)");
            (path.to_string(), entry.map(str::to_string), message)
        })
        .collect();
    all.push((path.to_string(), None, rest.to_string()));
    all.sort();
    all
}

#[test]
fn a_file_of_empty_pem_blocks_gives_a_hundred_errors_and_a_count_of_the_rest() {
    let s = Scratch::new();
    let (blocks, n) = empty_blocks();
    assert_eq!(n, 19_418);
    s.write("blocks.pem", blocks);

    let report = s.check().arg("blocks.pem").json();

    report
        .assert_credential_count(0)
        .assert_error_count(101)
        .assert_code(3);
    assert_eq!(
        places(report.errors()),
        expected(
            "blocks.pem",
            None,
            "19318 more errors were dropped (at most 100 are kept per file or object)"
        ),
    );
}

#[test]
fn a_secret_of_empty_pem_blocks_in_a_file_gives_a_hundred_errors() {
    let s = Scratch::new();
    let (blocks, _) = empty_blocks();
    let doc = json!({
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"namespace": "web", "name": "junk"},
        "data": {"ca.crt": b64(&blocks)},
    });
    s.write("secret.json", doc.to_string());

    let report = s.check().arg("secret.json").json();

    report.assert_error_count(101).assert_code(3);
    assert_eq!(
        places(report.errors()),
        expected(
            "secret.json",
            Some("secret web/junk ca.crt"),
            "19318 more errors were dropped (at most 100 are kept per file or object)"
        ),
    );
}

/// A PKCS#12 store made by `openssl pkcs12 -export -iter ITER`, locked
/// with `password`.
fn openssl_p12(s: &Scratch, name: &str, iter: u32, password: &str) {
    let key = s.path("key.pem");
    let cert = s.path("cert.pem");
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .output()
            .expect("run openssl");
        assert_success("openssl", &out);
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-subj",
        "/CN=p12",
        "-days",
        "30",
        "-keyout",
        key.to_str().unwrap(),
        "-out",
        cert.to_str().unwrap(),
    ]);
    let iter = iter.to_string();
    let out = s.path(name);
    let pass = format!("pass:{password}");
    run(&[
        "pkcs12",
        "-export",
        "-iter",
        &iter,
        "-in",
        cert.to_str().unwrap(),
        "-inkey",
        key.to_str().unwrap(),
        "-passout",
        &pass,
        "-out",
        out.to_str().unwrap(),
    ]);
}

#[test]
fn a_pkcs12_store_above_the_iteration_cap_is_not_opened() {
    let s = Scratch::new();
    openssl_p12(&s, "slow.p12", 100_001, "");

    let report = s.check().arg("slow.p12").json();

    report
        .assert_credential_count(0)
        .assert_error_count(1)
        .assert_code(3);
    assert_fields(
        &report.errors()[0],
        json!({"path": "slow.p12", "entry": null, "reason": "PKCS#12 store asks for 100001 key-derivation iterations, more than lapse's cap of 100000; not opened"}),
    );
}

#[test]
fn a_pkcs12_store_at_the_iteration_cap_opens() {
    let s = Scratch::new();
    openssl_p12(&s, "ok.p12", 100_000, "");

    let report = s.check().arg("ok.p12").json();

    report.assert_credential_count(1).assert_no_errors();
}

/// Twelve passwords to try ("", NULL and ten configured), 100,000
/// iterations a wrong try and 200,000 for the MAC and certificates of one
/// that opens it: the work cap stops after nine.
#[test]
fn trying_passwords_stops_at_the_work_cap() {
    let s = Scratch::new();
    s.mkdir("stores");
    openssl_p12(&s, "stores/locked.p12", 100_000, "not-configured");
    let mut files = Vec::new();
    for i in 0..10 {
        s.write(&format!("p{i}.pass"), format!("wrong-{i}\n"));
        files.push(format!("p{i}.pass"));
    }
    s.write(
        "lapse.yaml",
        format!(
            "files:\n  paths: [stores]\nkeystore_passwords: [{}]\n",
            files.join(", ")
        ),
    );

    let report = s.check().args(["--config", "lapse.yaml"]).json();

    report.assert_credential_count(0).assert_error_count(1);
    assert_fields(
        &report.errors()[0],
        json!({"reason": "PKCS#12 store: 9 of 12 passwords tried, none opens it; trying more would pass the cap of 1000000 key-derivation iterations per file"}),
    );
}

#[test]
fn trying_every_password_within_the_work_cap_says_none_opens_it() {
    let s = Scratch::new();
    s.mkdir("stores");
    openssl_p12(&s, "stores/locked.p12", 2048, "not-configured");
    s.write("p.pass", "wrong\n");
    s.write(
        "lapse.yaml",
        "files:\n  paths: [stores]\nkeystore_passwords: [p.pass]\n",
    );

    let report = s.check().args(["--config", "lapse.yaml"]).json();

    report.assert_error_count(1);
    assert_fields(
        &report.errors()[0],
        json!({"reason": "PKCS#12 store: none of the configured passwords opens it"}),
    );
}

/// A kubeconfig naming 150 token files that do not exist: each reference
/// is its own error, and together they are capped like one file's.
#[test]
fn a_kubeconfig_naming_many_missing_files_gives_a_hundred_errors_and_a_count() {
    let s = Scratch::new();
    let users: String = (0..150)
        .map(|i| format!("- name: u{i:03}\n  user:\n    tokenFile: gone/{i:03}.token\n"))
        .collect();
    s.write(
        "kube/config",
        format!("apiVersion: v1\nkind: Config\nusers:\n{users}"),
    );

    let report = s.check().arg("kube/config").json();

    report.assert_error_count(101).assert_code(3);
    assert_eq!(
        report.reason("kube/config", Some("users[u000].tokenFile")),
        "kube/gone/000.token: no such file or directory"
    );
    assert_eq!(
        report.reason("kube/config", Some("users[u099].tokenFile")),
        "kube/gone/099.token: no such file or directory"
    );
    assert_eq!(
        report.reason("kube/config", None),
        "50 more errors in the files it refers to were dropped (at most 100 are kept)"
    );
}

/// A certificate from `openssl req -x509`, PEM, valid ten years from now.
fn openssl_cert_pem(s: &Scratch) -> String {
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args(["-nodes", "-subj", "/CN=bundle", "-days", "3650", "-keyout"])
        .arg(s.path("key.pem"))
        .output()
        .expect("run openssl");
    assert_success("openssl", &out)
}

/// `lapse check` judged an hour from now, when the certificates above are
/// fine.
fn check_soon(s: &Scratch) -> Lapse {
    let soon = time::OffsetDateTime::now_utc() + time::Duration::hours(1);
    let soon = soon
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    s.check_at(&soon)
}

/// 10,400 certificates in one PEM file (5.9 MB): past the small-input cap
/// of 10,000, read whole, since the cap grows with the file.
#[test]
fn a_bundle_of_10400_certificates_is_read_whole() {
    let s = Scratch::new();
    s.write("bundle.pem", openssl_cert_pem(&s).repeat(10_400));

    let report = check_soon(&s).arg("bundle.pem").json();

    report
        .assert_credential_count(10_400)
        .assert_no_errors()
        .assert_code(0);
}

/// A YAML anchor holding 130 certificates, named by 99 aliases: 13,000
/// certificates from 75 KB. The cap does not grow with aliases: 10,000
/// are kept, and one entry says the rest were not read.
#[test]
fn aliases_replaying_a_bundle_stop_at_the_credential_cap() {
    let s = Scratch::new();
    let body: String = openssl_cert_pem(&s)
        .repeat(130)
        .lines()
        .map(|l| format!("  {l}\n"))
        .collect();
    let refs = vec!["*b"; 99].join(", ");
    s.write(
        "aliased.yaml",
        format!("pem: &b |\n{body}again: [{refs}]\n"),
    );

    let report = check_soon(&s).arg("aliased.yaml").json();

    report
        .assert_credential_count(10_000)
        .assert_error_count(1)
        .assert_code(3);
    assert_fields(
        &report.errors()[0],
        json!({"path": "aliased.yaml", "entry": null, "reason": "more than 10000 credentials; the rest were not read"}),
    );
}
