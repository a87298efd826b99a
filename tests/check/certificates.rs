//! X.509 in every container lapse reads from plain files: PEM (single,
//! bundle, with prose and CRLF), DER whatever its name, PKCS#12; keys,
//! requests and public keys are skipped without complaint.

use crate::support::*;
use serde_json::json;
use time::macros::datetime;

fn root_ca() -> Cert {
    Cert::ca(
        "lapse-test-root",
        datetime!(2020-01-01 0:00 UTC),
        datetime!(2030-01-01 0:00 UTC),
    )
}

#[test]
fn pem_single_certificate() {
    let s = Scratch::new();
    let ca = root_ca();
    let leaf = ca.issue(
        "web.example",
        datetime!(2026-01-01 0:00 UTC),
        datetime!(2026-06-13 4:00 UTC),
    );
    s.write("web.pem", &leaf.pem);

    let report = s.check().arg("web.pem").json();

    report.assert_no_errors().assert_credential_count(1);
    assert_fields(
        report.credential("web.pem", None, Some(0)),
        json!({
            "kind": "x509",
            "source": "file",
            "subject": "CN=web.example",
            "issuer": "CN=lapse-test-root",
            "not_before": "2026-01-01T00:00:00Z",
            "not_after": "2026-06-13T04:00:00Z",
            "expires_in_seconds": 12 * DAY + 4 * HOUR,
            "expiry_source": "embedded",
            "status": "warning",
            "fingerprint": leaf.fingerprint(),
        }),
    );
}

#[test]
fn pem_bundle_gives_one_finding_per_certificate() {
    let s = Scratch::new();
    let root = root_ca();
    let intermediate = root.issue(
        "lapse-test-intermediate",
        datetime!(2024-01-01 0:00 UTC),
        datetime!(2028-01-01 0:00 UTC),
    );
    let leaf = intermediate.issue(
        "api.example",
        datetime!(2026-03-01 0:00 UTC),
        datetime!(2026-09-01 0:00 UTC),
    );
    s.write("chain.pem", bundle(&[&leaf, &intermediate, &root]));

    let report = s.check().arg("chain.pem").json();

    report.assert_no_errors().assert_credential_count(3);
    let expected = [
        (
            &leaf,
            "CN=api.example",
            "CN=lapse-test-intermediate",
            "2026-09-01T00:00:00Z",
        ),
        (
            &intermediate,
            "CN=lapse-test-intermediate",
            "CN=lapse-test-root",
            "2028-01-01T00:00:00Z",
        ),
        (
            &root,
            "CN=lapse-test-root",
            "CN=lapse-test-root",
            "2030-01-01T00:00:00Z",
        ),
    ];
    for (index, (cert, subject, issuer, not_after)) in expected.into_iter().enumerate() {
        assert_fields(
            report.credential("chain.pem", None, Some(index as u64)),
            json!({
                "subject": subject,
                "issuer": issuer,
                "not_after": not_after,
                "status": "ok",
                "fingerprint": cert.fingerprint(),
            }),
        );
    }
}

#[test]
fn pem_with_prose_before_the_armour_and_crlf_line_ends() {
    let s = Scratch::new();
    let cert = root_ca().issue(
        "crlf.example",
        datetime!(2026-05-01 0:00 UTC),
        datetime!(2026-06-04 0:00 UTC),
    );
    // What `openssl x509 -text` prints above the PEM, saved on Windows.
    let text = format!(
        "Certificate:\n    Data:\n        Version: 3 (0x2)\n        Issuer: CN = lapse-test-root\n        \
         Validity\n            Not Before: May  1 00:00:00 2026 GMT\n            \
         Not After : Jun  4 00:00:00 2026 GMT\n        Subject: CN = crlf.example\n{}",
        cert.pem
    )
    .replace('\n', "\r\n");
    s.write("described.crt", text);

    let report = s.check().arg("described.crt").json();

    report.assert_no_errors().assert_credential_count(1);
    assert_fields(
        report.credential("described.crt", None, Some(0)),
        json!({
            "subject": "CN=crlf.example",
            "not_after": "2026-06-04T00:00:00Z",
            "expires_in_seconds": 3 * DAY,
            "status": "critical",
            "fingerprint": cert.fingerprint(),
        }),
    );
}

#[test]
fn pem_with_a_short_comment_before_the_armour() {
    let s = Scratch::new();
    let cert = root_ca().issue(
        "commented.example",
        datetime!(2026-05-01 0:00 UTC),
        datetime!(2026-08-01 0:00 UTC),
    );
    s.write(
        "commented.pem",
        format!(
            "subject=CN = commented.example\r\nissuer=CN = lapse-test-root\r\n{}",
            cert.pem
        )
        .replace('\n', "\r\n"),
    );

    let report = s.check().arg("commented.pem").json();

    report.assert_no_errors().assert_credential_count(1);
    assert_fields(
        report.credential("commented.pem", None, Some(0)),
        json!({"not_after": "2026-08-01T00:00:00Z", "fingerprint": cert.fingerprint()}),
    );
}

#[test]
fn der_is_recognised_by_content_not_by_name() {
    let s = Scratch::new();
    let cert = root_ca().issue(
        "der.example",
        datetime!(2025-06-01 0:00 UTC),
        datetime!(2026-05-29 0:00 UTC),
    );
    s.write("cert.bin", &cert.der);

    let report = s.check().arg("cert.bin").json();

    report.assert_no_errors().assert_credential_count(1);
    assert_fields(
        report.credential("cert.bin", None, Some(0)),
        json!({
            "kind": "x509",
            "subject": "CN=der.example",
            "not_before": "2025-06-01T00:00:00Z",
            "not_after": "2026-05-29T00:00:00Z",
            "expires_in_seconds": -3 * DAY,
            "status": "expired",
            "fingerprint": cert.fingerprint(),
        }),
    );
}

#[test]
fn pkcs12_with_an_empty_password() {
    let s = Scratch::new();
    let ca = root_ca();
    let leaf = ca.issue(
        "p12.example",
        datetime!(2026-01-01 0:00 UTC),
        datetime!(2027-01-01 0:00 UTC),
    );
    s.write("keystore.p12", pkcs12(&[&leaf, &ca], ""));

    let report = s.check().arg("keystore.p12").json();

    report.assert_no_errors().assert_credential_count(2);
    let store_order: Vec<String> = report
        .credentials()
        .iter()
        .map(|c| c["fingerprint"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(store_order, [leaf.fingerprint(), ca.fingerprint()]);
    assert_fields(
        report.credential("keystore.p12", None, Some(0)),
        json!({
            "kind": "x509",
            "source": "file",
            "subject": "CN=p12.example",
            "not_after": "2027-01-01T00:00:00Z",
            "status": "ok",
        }),
    );
    assert_fields(
        report.credential("keystore.p12", None, Some(1)),
        json!({"subject": "CN=lapse-test-root", "not_after": "2030-01-01T00:00:00Z"}),
    );
}

#[test]
fn pem_with_certificate_and_private_key_reports_only_the_certificate() {
    let s = Scratch::new();
    let cert = root_ca().issue(
        "kubelet",
        datetime!(2026-01-01 0:00 UTC),
        datetime!(2026-12-31 0:00 UTC),
    );
    s.write(
        "kubelet-client-current.pem",
        format!("{}{}", cert.pem, cert.key_pem),
    );

    let report = s.check().arg("kubelet-client-current.pem").json();

    report.assert_no_errors().assert_credential_count(1);
    assert_fields(
        report.credential("kubelet-client-current.pem", None, Some(0)),
        json!({"not_after": "2026-12-31T00:00:00Z", "fingerprint": cert.fingerprint()}),
    );
}

#[test]
fn keys_requests_and_public_keys_are_skipped_without_error() {
    let s = Scratch::new();
    let cert = root_ca().issue(
        "apiserver",
        datetime!(2026-01-01 0:00 UTC),
        datetime!(2027-01-01 0:00 UTC),
    );
    s.write("pki/sa.key", &cert.key_pem);
    s.write("pki/sa.pub", cert.public_key_pem());
    s.write("pki/apiserver.csr", cert.csr_pem());
    s.write("pki/apiserver.pem", cert.csr_pem());
    s.write("pki/key.der", &cert.key_der);

    let report = s
        .check()
        .args([
            "pki/sa.key",
            "pki/sa.pub",
            "pki/apiserver.csr",
            "pki/apiserver.pem",
            "pki/key.der",
        ])
        .json();

    report
        .assert_no_errors()
        .assert_credential_count(0)
        // Nothing to check is not a clean bill of health.
        .assert_code(3);
}

#[test]
fn base64_encoded_certificates_are_certificates_not_tokens() {
    let s = Scratch::new();
    let cert = root_ca().issue(
        "jsonpath.example",
        datetime!(2026-01-01 0:00 UTC),
        datetime!(2026-06-11 0:00 UTC),
    );
    // `kubectl get secret -o jsonpath='{.data.tls\.crt}' > tls.crt`
    s.write("tls.crt", b64(&cert.pem));
    // `base64 cert.der`: wrapped at 76 columns.
    let wrapped: Vec<String> = b64(&cert.der)
        .as_bytes()
        .chunks(76)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect();
    s.write("cert.b64", wrapped.join("\n") + "\n");

    let report = s.check().args(["tls.crt", "cert.b64"]).json();

    report.assert_no_errors().assert_credential_count(2);
    for path in ["tls.crt", "cert.b64"] {
        assert_fields(
            report.credential(path, None, Some(0)),
            json!({
                "kind": "x509",
                "subject": "CN=jsonpath.example",
                "not_after": "2026-06-11T00:00:00Z",
                "status": "warning",
                "fingerprint": cert.fingerprint(),
            }),
        );
    }
}

#[test]
fn pem_with_a_byte_order_mark_and_trusted_certificate_armour() {
    let s = Scratch::new();
    let cert = root_ca().issue(
        "bom.example",
        datetime!(2026-01-01 0:00 UTC),
        datetime!(2026-07-01 0:00 UTC),
    );
    s.write("bom.pem", format!("\u{feff}{}", cert.pem));
    // `openssl x509 -trustout` output.
    s.write(
        "trusted.pem",
        cert.pem
            .replace("CERTIFICATE-----", "TRUSTED CERTIFICATE-----"),
    );

    let report = s.check().args(["bom.pem", "trusted.pem"]).json();

    report.assert_no_errors().assert_credential_count(2);
    for path in ["bom.pem", "trusted.pem"] {
        assert_fields(
            report.credential(path, None, Some(0)),
            json!({"not_after": "2026-07-01T00:00:00Z", "fingerprint": cert.fingerprint()}),
        );
    }
}

/// A chain written where `openssl` and Python can read it: `chain.pem`
/// (leaf first), `leaf.key`, and the chain's fingerprints and expiries.
fn chain_on_disk(s: &Scratch) -> Vec<(String, &'static str)> {
    let root = root_ca();
    let intermediate = root.issue(
        "lapse-test-intermediate",
        datetime!(2024-01-01 0:00 UTC),
        datetime!(2028-01-01 0:00 UTC),
    );
    let leaf = intermediate.issue(
        "p7.example",
        datetime!(2026-03-01 0:00 UTC),
        datetime!(2026-06-20 0:00 UTC),
    );
    s.write("chain.pem", bundle(&[&leaf, &intermediate, &root]));
    s.write("rest.pem", bundle(&[&intermediate, &root]));
    s.write("leaf.pem", &leaf.pem);
    s.write("leaf.key", &leaf.key_pem);
    s.write("msg.txt", "signed content\n");
    vec![
        (leaf.fingerprint(), "2026-06-20T00:00:00Z"),
        (intermediate.fingerprint(), "2028-01-01T00:00:00Z"),
        (root.fingerprint(), "2030-01-01T00:00:00Z"),
    ]
}

/// The DER inside one PEM block.
fn decode_pem(pem: &[u8]) -> Vec<u8> {
    use base64::Engine;
    let text = String::from_utf8_lossy(pem);
    let body: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .expect("PEM base64")
}

/// `(index, fingerprint, not_after)` of every credential at `path`.
fn indexed(report: &Report, path: &str) -> Vec<(u64, String, String)> {
    let mut found: Vec<(u64, String, String)> = report
        .credentials()
        .iter()
        .filter(|c| c["path"] == path)
        .map(|c| {
            (
                c["index"].as_u64().expect("an index"),
                c["fingerprint"].as_str().unwrap_or_default().to_string(),
                c["not_after"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    found.sort();
    found
}

#[test]
fn pkcs7_bundles_give_every_certificate() {
    use super::keys::{openssl, python};
    let s = Scratch::new();
    let chain = chain_on_disk(&s);
    let crl2pkcs7 = ["crl2pkcs7", "-nocrl", "-certfile", "chain.pem"];
    openssl(&s, &[&crl2pkcs7[..], &["-out", "chain.p7b"]].concat());
    openssl(
        &s,
        &[&crl2pkcs7[..], &["-outform", "DER", "-out", "chain.p7c"]].concat(),
    );
    // A Windows CA's "Base 64" certificate chain: PKCS#7 under CERTIFICATE armour.
    let p7b = std::fs::read_to_string(s.path("chain.p7b")).unwrap();
    s.write("certnew.p7b", p7b.replace("PKCS7-----", "CERTIFICATE-----"));
    let sign = [
        "cms", "-sign", "-in", "msg.txt", "-signer", "leaf.pem", "-inkey", "leaf.key",
    ];
    let more = ["-certfile", "rest.pem"];
    openssl(
        &s,
        &[&sign[..], &more, &["-outform", "PEM", "-out", "signed.cms"]].concat(),
    );
    // Streaming output: BER with indefinite lengths.
    openssl(
        &s,
        &[
            &sign[..],
            &more,
            &["-outform", "DER", "-stream", "-out", "streamed.p7s"],
        ]
        .concat(),
    );
    python(
        &s,
        "from cryptography import x509\n\
         from cryptography.hazmat.primitives.serialization import Encoding, pkcs7\n\
         certs = x509.load_pem_x509_certificates(open('chain.pem', 'rb').read())\n\
         open('py.p7b', 'wb').write(pkcs7.serialize_certificates(certs, Encoding.PEM))\n\
         open('py-p7', 'wb').write(pkcs7.serialize_certificates(certs, Encoding.DER))\n",
    );
    let paths = [
        "chain.p7b",
        "chain.p7c",
        "certnew.p7b",
        "signed.cms",
        "streamed.p7s",
        "py.p7b",
        "py-p7",
    ];

    let report = s.check().args(paths).json();

    report
        .assert_no_errors()
        .assert_credential_count(3 * paths.len());
    let in_order: Vec<(u64, String, String)> = (0..)
        .zip(&chain)
        .map(|(i, (fp, not_after))| (i, fp.clone(), not_after.to_string()))
        .collect();
    // OpenSSL's bundles keep the order they were given.
    for path in ["chain.p7b", "chain.p7c", "certnew.p7b"] {
        assert_eq!(indexed(&report, path), in_order, "{path}");
    }
    // Signed messages and DER's sorted SET OF may order them otherwise.
    for path in ["signed.cms", "streamed.p7s", "py.p7b", "py-p7"] {
        let mut got: Vec<(String, String)> = indexed(&report, path)
            .into_iter()
            .map(|(_, fp, at)| (fp, at))
            .collect();
        got.sort();
        let mut want: Vec<(String, String)> = chain
            .iter()
            .map(|(fp, at)| (fp.clone(), at.to_string()))
            .collect();
        want.sort();
        assert_eq!(got, want, "{path}");
        let indices: Vec<u64> = indexed(&report, path).iter().map(|x| x.0).collect();
        assert_eq!(indices, [0, 1, 2], "{path}");
    }
    assert_fields(
        report.credential("chain.p7c", None, Some(0)),
        json!({"subject": "CN=p7.example", "issuer": "CN=lapse-test-intermediate", "status": "warning"}),
    );
    // What a message signs is never read, let alone shown.
    let out = s.check().args(["-vvv", "signed.cms", "streamed.p7s"]).run();
    assert!(!format!("{}{}", out.stdout, out.stderr).contains("signed content"));
}

#[test]
fn pkcs7_without_certificates_adds_nothing_and_a_corrupt_one_is_an_error() {
    use super::keys::{openssl, python};
    let s = Scratch::new();
    chain_on_disk(&s);
    openssl(&s, &["crl2pkcs7", "-nocrl", "-out", "empty.p7b"]);
    python(
        &s,
        "import datetime\n\
         from cryptography import x509\n\
         from cryptography.hazmat.primitives import hashes, serialization\n\
         from cryptography.x509.oid import NameOID\n\
         key = serialization.load_pem_private_key(open('leaf.key', 'rb').read(), None)\n\
         name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, 'crl-issuer')])\n\
         crl = (x509.CertificateRevocationListBuilder().issuer_name(name)\n\
             .last_update(datetime.datetime(2026, 1, 1)).next_update(datetime.datetime(2026, 2, 1))\n\
             .sign(key, hashes.SHA256()))\n\
         open('crl.pem', 'wb').write(crl.public_bytes(serialization.Encoding.PEM))\n",
    );
    openssl(&s, &["crl2pkcs7", "-in", "crl.pem", "-out", "crl-only.p7b"]);
    openssl(
        &s,
        &[
            "crl2pkcs7",
            "-nocrl",
            "-certfile",
            "chain.pem",
            "-outform",
            "DER",
            "-out",
            "whole.p7c",
        ],
    );
    let whole = std::fs::read(s.path("whole.p7c")).unwrap();
    s.write("cut.p7c", &whole[..whole.len() - 100]);
    // The leaf's `[0]` version tag broken inside the bundle: that
    // certificate is an error, the other two still count.
    let leaf = decode_pem(&std::fs::read(s.path("leaf.pem")).unwrap());
    let at = whole
        .windows(leaf.len())
        .position(|w| w == leaf.as_slice())
        .expect("the leaf inside the bundle");
    let version = leaf
        .windows(4)
        .position(|w| w == [0xa0, 0x03, 0x02, 0x01])
        .expect("a version field");
    let mut broken = whole.clone();
    broken[at + version] = 0x05;
    s.write("broken-leaf.p7c", &broken);
    // An OCTET STRING where the ContentInfo should be.
    s.write(
        "bad.p7b",
        format!(
            "-----BEGIN PKCS7-----\n{}\n-----END PKCS7-----\n",
            b64([0x04u8, 0x03, 1, 2, 3])
        ),
    );

    let report = s
        .check()
        .args([
            "empty.p7b",
            "crl-only.p7b",
            "cut.p7c",
            "bad.p7b",
            "broken-leaf.p7c",
        ])
        .json();

    report.assert_credential_count(2).assert_error_count(3);
    assert_eq!(
        report.reason("broken-leaf.p7c", None),
        "PKCS#7 certificate #0: not a valid X.509 certificate (invalid serial)"
    );
    let places: Vec<Option<u64>> = report
        .credentials()
        .iter()
        .map(|c| c["index"].as_u64())
        .collect();
    assert_eq!(places, [Some(1), Some(2)]);
    assert_eq!(
        report.reason("cut.p7c", None),
        "PKCS#7: not a valid certificate bundle (the structure is truncated)"
    );
    assert_eq!(
        report.reason("bad.p7b", None),
        "PKCS#7: not a valid certificate bundle (the structure is not a ContentInfo SEQUENCE)"
    );
}

#[test]
fn pem_with_classic_mac_os_line_ends() {
    let s = Scratch::new();
    let root = root_ca();
    let leaf = root.issue(
        "cr.example",
        datetime!(2026-01-01 0:00 UTC),
        datetime!(2026-07-01 0:00 UTC),
    );
    s.write("cr.pem", bundle(&[&leaf, &root]).replace('\n', "\r"));

    let report = s.check().arg("cr.pem").json();

    report.assert_no_errors().assert_credential_count(2);
    assert_fields(
        report.credential("cr.pem", None, Some(0)),
        json!({"not_after": "2026-07-01T00:00:00Z", "fingerprint": leaf.fingerprint()}),
    );
    assert_fields(
        report.credential("cr.pem", None, Some(1)),
        json!({"not_after": "2030-01-01T00:00:00Z", "fingerprint": root.fingerprint()}),
    );
}

/// `openssl x509 -text` output saved with CR line ends: the prose above the
/// armour (`Certificate:`, `Data:`) looks like YAML until the parser fails,
/// and the armour must still be found at the start of a CR-ended line.
#[test]
fn pem_with_prose_above_and_classic_mac_os_line_ends() {
    let s = Scratch::new();
    let root = root_ca();
    let leaf = root.issue(
        "cr-text.example",
        datetime!(2026-01-01 0:00 UTC),
        datetime!(2026-08-01 0:00 UTC),
    );
    let text = format!(
        "Certificate:\n    Data:\n        Version: 3 (0x2)\n        Subject: CN = cr-text.example\n{}",
        bundle(&[&leaf])
    );
    s.write("cr-text.crt", text.replace('\n', "\r"));

    let report = s.check().arg("cr-text.crt").json();

    report.assert_no_errors().assert_credential_count(1);
    assert_fields(
        report.credential("cr-text.crt", None, Some(0)),
        json!({"not_after": "2026-08-01T00:00:00Z", "fingerprint": leaf.fingerprint()}),
    );
}
