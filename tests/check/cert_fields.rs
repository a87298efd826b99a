//! What a certificate's fields read as: names in every ASN.1 string type
//! (never an error string), and RFC 5280's notAfter of 99991231235959Z,
//! which means "no well-defined expiration date".

use super::keys::{openssl, python};
use crate::support::*;
use serde_json::json;

/// Self-signed certificates from Python's `cryptography`, one per
/// `(file, not_after, names)`; `names` are `x509.NameAttribute` lists.
fn cryptography_certificate(s: &Scratch, file: &str, not_after: &str, names: &str) {
    python(
        s,
        &format!(
            "import datetime\n\
             from cryptography import x509\n\
             from cryptography.x509.name import _ASN1Type as T\n\
             from cryptography.x509.oid import NameOID as N\n\
             from cryptography.hazmat.primitives import hashes, serialization\n\
             from cryptography.hazmat.primitives.asymmetric import ec\n\
             key = ec.generate_private_key(ec.SECP256R1())\n\
             name = x509.Name([{names}])\n\
             cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)\n\
                 .public_key(key.public_key()).serial_number(7)\n\
                 .not_valid_before(datetime.datetime(2026, 1, 1))\n\
                 .not_valid_after(datetime.datetime({not_after}))\n\
                 .sign(key, hashes.SHA256()))\n\
             open('{file}', 'wb').write(cert.public_bytes(serialization.Encoding.DER))\n"
        ),
    );
}

#[test]
fn a_not_after_of_99991231235959z_is_no_expiry() {
    let s = Scratch::new();
    cryptography_certificate(
        &s,
        "forever.der",
        "9999, 12, 31, 23, 59, 59",
        "x509.NameAttribute(N.COMMON_NAME, 'forever.example')",
    );

    let report = s.check().arg("forever.der").json();

    report
        .assert_no_errors()
        .assert_credential_count(1)
        .assert_code(0);
    assert_fields(
        report.credential("forever.der", None, Some(0)),
        json!({
            "subject": "CN=forever.example",
            "not_before": "2026-01-01T00:00:00Z",
            "not_after": null,
            "expires_in_seconds": null,
            "expiry_source": "none",
            "status": "no-expiry",
        }),
    );
    let table = s.check().arg("forever.der").run();
    let row = table
        .stdout
        .lines()
        .find(|l| l.contains("forever.example"))
        .unwrap_or_else(|| panic!("no row:\n{}", table.stdout));
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cells[..4], ["no-expiry", "-", "never", "x509"], "{row}");
    assert_contains(
        &table.stdout,
        "  └ notAfter 99991231235959Z: no well-defined expiration date (RFC 5280), it never expires",
    );

    let server = s.serve().arg("forever.der").start();
    let m = server.metrics();
    assert_eq!(
        m.value("lapse_credential_no_expiry", &[("path", "forever.der")]),
        1.0
    );
    assert!(
        m.find(
            "lapse_credential_expires_in_seconds",
            &[("path", "forever.der")]
        )
        .is_empty(),
        "{}",
        m.text
    );
}

#[test]
fn names_in_every_string_type_read_as_text() {
    let s = Scratch::new();
    cryptography_certificate(
        &s,
        "wide.der",
        "2027, 1, 1",
        "x509.NameAttribute(N.COMMON_NAME, 'Zürich ☃', _type=T.BMPString), \
         x509.NameAttribute(N.ORGANIZATION_NAME, 'Ünïcode 𝄞', _type=T.UniversalString)",
    );
    // cryptography writes a T61String's text as UTF-8.
    cryptography_certificate(
        &s,
        "t61-utf8.der",
        "2027, 1, 1",
        "x509.NameAttribute(N.COMMON_NAME, 'Zürich', _type=T.T61String)",
    );
    // OpenSSL, told `string_mask = nombstr`, writes Latin-1 input as a
    // T61String of Latin-1 bytes.
    s.write(
        "t61.cnf",
        b"prompt = no\ndistinguished_name = dn\nstring_mask = nombstr\n[dn]\nCN = Z\xfcrich\n",
    );
    openssl(
        &s,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "t61.key",
            "-config",
            "t61.cnf",
            "-days",
            "30",
            "-out",
            "t61-latin1.pem",
        ],
    );
    // Latin-1 bytes in a UTF8String and a PrintableString, as some CAs
    // write them: a cryptography certificate with one byte changed in
    // each name (lapse does not check signatures).
    cryptography_certificate(
        &s,
        "ascii.der",
        "2027, 1, 1",
        "x509.NameAttribute(N.COMMON_NAME, 'ZXrich'), \
         x509.NameAttribute(N.ORGANIZATION_NAME, 'ZYrich', _type=T.PrintableString)",
    );
    let der = std::fs::read(s.path("ascii.der")).unwrap();
    let patched = hex::encode(&der)
        .replace(
            &hex::encode(b"\x0c\x06ZXrich"),
            &hex::encode(b"\x0c\x06Z\xfcrich"),
        )
        .replace(
            &hex::encode(b"\x13\x06ZYrich"),
            &hex::encode(b"\x13\x06Z\xfcrich"),
        );
    assert_ne!(patched, hex::encode(&der));
    s.write("latin1.der", hex::decode(patched).unwrap());
    let paths = ["wide.der", "t61-utf8.der", "t61-latin1.pem", "latin1.der"];

    let report = s.check().args(paths).json();

    report.assert_no_errors().assert_credential_count(4);
    for (path, subject) in [
        ("wide.der", "CN=Zürich ☃, O=Ünïcode 𝄞"),
        ("t61-utf8.der", "CN=Zürich"),
        ("t61-latin1.pem", "CN=Zürich"),
        ("latin1.der", "CN=Z\u{fffd}rich, O=Z\u{fffd}rich"),
    ] {
        assert_fields(
            report.credential(path, None, Some(0)),
            json!({"subject": subject, "issuer": subject}),
        );
    }
    // The table names a certificate by its CN.
    let table = s.check().arg("wide.der").run();
    assert_contains(&table.stdout, "Zürich ☃");
}
