//! Keys and key parameters of every type, DER and PEM, made by `openssl`
//! and Python's `cryptography`: recognised, adding nothing and no error
//! entry whatever the file is named, while a truncated or corrupt
//! certificate stays an error entry.

use crate::support::*;
use serde_json::json;
use std::process::Command;
use time::macros::datetime;

/// Runs `openssl` in the scratch directory.
pub(super) fn openssl(s: &Scratch, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(s.path(""))
        .output()
        .expect("run openssl");
    assert_success(&format!("openssl {}", args.join(" ")), &out);
}

/// Runs a Python script in the scratch directory.
pub(super) fn python(s: &Scratch, script: &str) {
    let out = Command::new("python3")
        .args(["-c", script])
        .current_dir(s.path(""))
        .output()
        .expect("run python3");
    assert_success("python3", &out);
}

/// Every key and parameter file `openssl` writes, DER and PEM; returns
/// the DER files' names.
fn openssl_keys(s: &Scratch) -> Vec<String> {
    let mut der = Vec::new();
    let mut make = |name: &str, args: &[&str]| {
        // `-out` right after the command: `dhparam` wants its size last.
        let all = [&args[..1], &["-out", name], &args[1..]].concat();
        openssl(s, &all);
        if name.ends_with(".der") {
            der.push(name.to_string());
        }
    };
    make(
        "rsa8.pem",
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:1024",
        ],
    );
    for (name, args) in [
        ("rsa1.pem", &["rsa", "-traditional"][..]),
        ("rsa1.der", &["rsa", "-traditional", "-outform", "DER"]),
        ("rsapub1.pem", &["rsa", "-RSAPublicKey_out"]),
        (
            "rsapub1.der",
            &["rsa", "-RSAPublicKey_out", "-outform", "DER"],
        ),
        ("rsaspki.der", &["pkey", "-pubout", "-outform", "DER"]),
        (
            "rsa8.der",
            &["pkcs8", "-topk8", "-nocrypt", "-outform", "DER"],
        ),
        (
            "rsa8enc.der",
            &["pkcs8", "-topk8", "-passout", "pass:x", "-outform", "DER"],
        ),
        ("rsa8enc.pem", &["pkcs8", "-topk8", "-passout", "pass:x"]),
    ] {
        make(name, &[args, &["-in", "rsa8.pem"]].concat());
    }
    for curve in ["prime256v1", "secp384r1", "secp521r1"] {
        let sec1 = format!("{curve}.pem");
        make(&sec1, &["ecparam", "-name", curve, "-genkey", "-noout"]);
        for (suffix, args) in [
            ("sec1.der", &["ec", "-outform", "DER"][..]),
            ("p8.der", &["pkey", "-outform", "DER"]),
            ("pub.der", &["pkey", "-pubout", "-outform", "DER"]),
            (
                "enc.der",
                &["pkcs8", "-topk8", "-passout", "pass:x", "-outform", "DER"],
            ),
        ] {
            make(
                &format!("{curve}-{suffix}"),
                &[args, &["-in", &sec1]].concat(),
            );
        }
    }
    for algorithm in ["ed25519", "ed448", "x25519", "x448"] {
        let key = format!("{algorithm}.der");
        make(
            &key,
            &["genpkey", "-algorithm", algorithm, "-outform", "DER"],
        );
        make(
            &format!("{algorithm}.pem"),
            &["pkey", "-inform", "DER", "-in", &key],
        );
        make(
            &format!("{algorithm}-pub.der"),
            &[
                "pkey", "-inform", "DER", "-in", &key, "-pubout", "-outform", "DER",
            ],
        );
        make(
            &format!("{algorithm}-enc.der"),
            &[
                "pkcs8", "-topk8", "-inform", "DER", "-in", &key, "-passout", "pass:x", "-outform",
                "DER",
            ],
        );
    }
    make(
        "dsaparam.pem",
        &[
            "genpkey",
            "-genparam",
            "-algorithm",
            "DSA",
            "-pkeyopt",
            "dsa_paramgen_bits:1024",
        ],
    );
    make(
        "dsaparam.der",
        &["dsaparam", "-in", "dsaparam.pem", "-outform", "DER"],
    );
    make("dsa.pem", &["genpkey", "-paramfile", "dsaparam.pem"]);
    make("dsa.der", &["dsa", "-in", "dsa.pem", "-outform", "DER"]);
    make("dsa8.der", &["pkey", "-in", "dsa.pem", "-outform", "DER"]);
    make(
        "ffdhe2048.der",
        &[
            "genpkey",
            "-genparam",
            "-algorithm",
            "DH",
            "-pkeyopt",
            "group:ffdhe2048",
            "-outform",
            "DER",
        ],
    );
    make(
        "dhx.der",
        &[
            "genpkey",
            "-genparam",
            "-algorithm",
            "DHX",
            "-pkeyopt",
            "dh_paramgen_prime_len:1024",
            "-outform",
            "DER",
        ],
    );
    make("dh.pem", &["dhparam", "-dsaparam", "1024"]);
    make("dh.der", &["dhparam", "-in", "dh.pem", "-outform", "DER"]);
    der
}

/// Keys as Python's `cryptography` writes them, encrypted with
/// `BestAvailableEncryption` and not.
const CRYPTOGRAPHY_KEYS: &str = r#"
from cryptography.hazmat.primitives import serialization as s
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
keys = {
    "py-ed25519": ed25519.Ed25519PrivateKey.generate(),
    "py-p256": ec.generate_private_key(ec.SECP256R1()),
    "py-rsa": rsa.generate_private_key(public_exponent=65537, key_size=1024),
}
for name, key in keys.items():
    for enc, fmt in [("DER", s.Encoding.DER), ("PEM", s.Encoding.PEM)]:
        ext = enc.lower()
        open(f"{name}-enc.{ext}", "wb").write(key.private_bytes(
            fmt, s.PrivateFormat.PKCS8, s.BestAvailableEncryption(b"pw")))
        open(f"{name}-p8.{ext}", "wb").write(key.private_bytes(
            fmt, s.PrivateFormat.PKCS8, s.NoEncryption()))
        open(f"{name}-pub.{ext}", "wb").write(key.public_key().public_bytes(
            fmt, s.PublicFormat.SubjectPublicKeyInfo))
open("py-rsa-pkcs1.der", "wb").write(keys["py-rsa"].private_bytes(
    s.Encoding.DER, s.PrivateFormat.TraditionalOpenSSL, s.NoEncryption()))
"#;

#[test]
fn der_and_pem_keys_of_every_type_add_nothing_and_no_error() {
    let s = Scratch::new();
    let der = openssl_keys(&s);
    python(&s, CRYPTOGRAPHY_KEYS);
    // Each DER key again as `.key`, `.pem` and with no extension at all.
    let mut names: Vec<String> = std::fs::read_dir(s.path(""))
        .expect("list scratch")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n != "home")
        .collect();
    for name in der.iter().chain(
        names
            .clone()
            .iter()
            .filter(|n| n.starts_with("py-") && n.ends_with(".der")),
    ) {
        let bytes = std::fs::read(s.path(name)).expect("read key");
        let stem = name.trim_end_matches(".der");
        for renamed in [
            format!("{stem}.key"),
            format!("{stem}.der.pem"),
            format!("{stem}-noext"),
        ] {
            s.write(&renamed, &bytes);
            names.push(renamed);
        }
    }
    names.sort();
    assert!(names.len() > 100, "{names:?}");
    let cert = Cert::ca(
        "beside-the-keys",
        datetime!(2026-01-01 0:00 UTC),
        datetime!(2027-01-01 0:00 UTC),
    );
    s.write("tls.crt", &cert.pem);

    let report = s.check().args(&names).arg("tls.crt").json();

    report
        .assert_no_errors()
        .assert_credential_count(1)
        .assert_code(0);
    assert_fields(
        report.credential("tls.crt", None, Some(0)),
        json!({"not_after": "2027-01-01T00:00:00Z", "fingerprint": cert.fingerprint()}),
    );
}

#[test]
fn short_der_keys_are_skipped_and_their_bytes_never_shown() {
    let s = Scratch::new();
    openssl(
        &s,
        &[
            "genpkey",
            "-algorithm",
            "ed25519",
            "-outform",
            "DER",
            "-out",
            "id.der",
        ],
    );
    openssl(
        &s,
        &[
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-outform",
            "DER",
            "-out",
            "ec.key",
        ],
    );
    let ed = std::fs::read(s.path("id.der")).unwrap();
    let ec = std::fs::read(s.path("ec.key")).unwrap();
    assert!(ed.len() < 128 && ec.len() < 128, "short-form outer lengths");

    let out = s
        .check()
        .args(["-vvv", "--format", "json", "id.der", "ec.key"])
        .run();

    let text = format!("{}{}", out.stdout, out.stderr);
    for key in [&ed, &ec] {
        // The private scalar: the last 32 bytes of an Ed25519 key, and
        // bytes 7..39 of a SEC1 P-256 key.
        let secret = if key.len() == 48 {
            &key[16..]
        } else {
            &key[7..39]
        };
        for needle in [hex::encode(secret), b64(secret), b64(key)] {
            assert!(!text.contains(&needle), "key bytes in output:\n{text}");
        }
    }
    assert_contains(&out.stdout, "\"errors\": []");
}

#[test]
fn truncated_and_corrupt_certificates_stay_errors_beside_keys() {
    let s = Scratch::new();
    let cert = Cert::ca(
        "cut.example",
        datetime!(2026-01-01 0:00 UTC),
        datetime!(2027-01-01 0:00 UTC),
    );
    s.write("cut.der", &cert.der[..cert.der.len() / 2]);
    // Byte 8 is the TBSCertificate's `[0]` version tag: the outline is
    // still a certificate's, its content is not.
    let mut corrupt = cert.der.clone();
    assert_eq!(corrupt[8], 0xa0);
    corrupt[8] = 0x05;
    s.write("corrupt.der", &corrupt);
    s.write("key.der", &cert.key_der);

    let report = s.check().args(["cut.der", "corrupt.der", "key.der"]).json();

    report.assert_credential_count(0).assert_error_count(2);
    assert_eq!(
        report.reason("cut.der", None),
        "DER data is truncated (its length runs past the end)"
    );
    assert_contains(
        &report.reason("corrupt.der", None),
        "DER: not a valid X.509 certificate",
    );
}

/// A CRL, as `openssl ca -gencrl` and cryptography write it, in DER (its
/// outline is a certificate's: a signed SEQUENCE) and PEM: recognised and
/// skipped, like a key. lapse does not read CRLs.
#[test]
fn crls_in_der_and_pem_add_nothing_and_no_error() {
    let s = Scratch::new();
    python(
        &s,
        r#"
import datetime
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
key = ec.generate_private_key(ec.SECP256R1())
name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "crl.example")])
revoked = x509.RevokedCertificateBuilder().serial_number(7).revocation_date(
    datetime.datetime(2026, 2, 1, tzinfo=datetime.timezone.utc)).build()
crl = (x509.CertificateRevocationListBuilder().issuer_name(name)
    .last_update(datetime.datetime(2026, 2, 1, tzinfo=datetime.timezone.utc))
    .next_update(datetime.datetime(2026, 3, 1, tzinfo=datetime.timezone.utc))
    .add_revoked_certificate(revoked).sign(key, hashes.SHA256()))
open("ca.crl", "wb").write(crl.public_bytes(serialization.Encoding.DER))
open("ca.crl.der", "wb").write(crl.public_bytes(serialization.Encoding.DER))
open("ca-crl.pem", "wb").write(crl.public_bytes(serialization.Encoding.PEM))
"#,
    );

    let report = s
        .check()
        .args(["ca.crl", "ca.crl.der", "ca-crl.pem"])
        .arg("--allow-empty")
        .json();

    report.assert_credential_count(0).assert_error_count(0);
}
