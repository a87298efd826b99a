//! PKCS#12 stores as the real tools write them: the `openssl pkcs12` CLI
//! (every `-legacy`, `-nomac`, `NONE` and cipher form), OpenSSL's library
//! with a NULL password (`PKCS12_create(NULL, …)`, through ctypes), Python
//! `cryptography`'s writers, and the JDK's keytool with each protection
//! algorithm it offers. Every certificate is read with its exact
//! `not_after`; a wrong password and an algorithm lapse cannot run are
//! told apart.
//!
//! The stores are generated at run time: the tools must be installed
//! (`openssl`, `python3` with `cryptography`, `keytool`).

use crate::support::*;
use std::process::Command;
use time::macros::datetime;

/// A leaf and its CA written as PEM (`leaf.pem`, `leaf.key`, `ca.pem`),
/// the inputs every tool below reads.
fn inputs(s: &Scratch) {
    let ca = Cert::ca(
        "p12-root",
        datetime!(2020-01-01 0:00 UTC),
        datetime!(2030-01-01 0:00 UTC),
    );
    let leaf = ca.issue(
        "p12.example",
        datetime!(2026-01-01 0:00 UTC),
        datetime!(2027-03-01 12:00 UTC),
    );
    s.write("leaf.pem", &leaf.pem);
    s.write("leaf.key", &leaf.key_pem);
    s.write("ca.pem", &ca.pem);
}

/// What every store holding the chain must give, sorted by subject.
const CHAIN: [(&str, &str); 2] = [
    ("CN=p12-root", "2030-01-01T00:00:00Z"),
    ("CN=p12.example", "2027-03-01T12:00:00Z"),
];

/// Runs `program` in the scratch directory; the test fails if it does.
fn run(s: &Scratch, program: &str, args: &[&str]) {
    let out = Command::new(program)
        .args(args)
        .current_dir(s.path(""))
        .output()
        .unwrap_or_else(|e| panic!("run {program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn python(s: &Scratch, script: &str) {
    run(s, "python3", &["-c", script]);
}

/// `openssl pkcs12 -export` of the chain into `<name>.p12`, with `extra`.
fn openssl_export(s: &Scratch, name: &str, extra: &[&str]) {
    let out = format!("{name}.p12");
    let mut args = vec![
        "pkcs12",
        "-export",
        "-in",
        "leaf.pem",
        "-inkey",
        "leaf.key",
        "-certfile",
        "ca.pem",
        "-name",
        "leaf",
        "-out",
        &out,
    ];
    args.extend_from_slice(extra);
    run(s, "openssl", &args);
}

/// `keytool -importkeystore` of `src.p12` (password `secret`) into
/// `<name>.p12` with the store password `secret` and the given system
/// properties: what the JDK itself writes.
fn keytool_copy(s: &Scratch, name: &str, properties: &[&str]) {
    let dest = format!("{name}.p12");
    let mut args: Vec<String> = properties.iter().map(|p| format!("-J-D{p}")).collect();
    for a in [
        "-importkeystore",
        "-noprompt",
        "-srckeystore",
        "src.p12",
        "-srcstoretype",
        "PKCS12",
        "-srcstorepass",
        "secret",
        "-destkeystore",
        &dest,
        "-deststoretype",
        "PKCS12",
        "-deststorepass",
        "secret",
    ] {
        args.push(a.to_string());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run(s, "keytool", &args);
}

/// `(subject, not_after)` of every credential at `path`, sorted.
fn certificates(report: &Report, path: &str) -> Vec<(String, String)> {
    let mut found: Vec<(String, String)> = report
        .credentials()
        .iter()
        .filter(|c| c["path"] == path)
        .map(|c| {
            (
                c["subject"].as_str().unwrap_or_default().to_string(),
                c["not_after"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    found.sort();
    found
}

#[track_caller]
fn assert_chain(report: &Report, path: &str, expected: &[(&str, &str)]) {
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(s, n)| (s.to_string(), n.to_string()))
        .collect();
    assert_eq!(
        certificates(report, path),
        expected,
        "certificates of {path}\n{}",
        report.dump()
    );
}

/// `keystore_passwords: [secret.pass, changeit.pass]`.
fn configure_passwords(s: &Scratch) {
    s.write("secret.pass", "secret\n");
    s.write("changeit.pass", "changeit\n");
    s.write(
        "lapse.yaml",
        "keystore_passwords: [secret.pass, changeit.pass]\n",
    );
}

#[test]
fn openssl_cli_stores_with_the_empty_password() {
    let s = Scratch::new();
    inputs(&s);
    let forms: &[(&str, &[&str])] = &[
        ("default", &[]),
        ("legacy", &["-legacy"]),
        ("nomac", &["-nomac"]),
        ("legacy-nomac", &["-legacy", "-nomac"]),
        ("plain", &["-keypbe", "NONE", "-certpbe", "NONE"]),
        (
            "plain-nomac",
            &["-keypbe", "NONE", "-certpbe", "NONE", "-nomac"],
        ),
        ("rc2-128", &["-legacy", "-certpbe", "PBE-SHA1-RC2-128"]),
        ("2des", &["-legacy", "-certpbe", "PBE-SHA1-2DES"]),
        ("3des", &["-certpbe", "PBE-SHA1-3DES", "-macalg", "sha1"]),
        (
            "aes128-sha512",
            &["-certpbe", "AES-128-CBC", "-macalg", "sha512"],
        ),
        (
            "aes192-sha384",
            &["-certpbe", "AES-192-CBC", "-macalg", "sha384"],
        ),
        ("one-iteration", &["-legacy", "-noiter", "-nomaciter"]),
        ("mac-sha224", &["-macalg", "sha224"]),
    ];
    let mut paths = Vec::new();
    for (name, extra) in forms {
        let mut args = extra.to_vec();
        args.extend_from_slice(&["-passout", "pass:"]);
        openssl_export(&s, name, &args);
        paths.push(format!("{name}.p12"));
    }

    let report = s.check().args(&paths).json();

    report.assert_no_errors().assert_code(0);
    for path in &paths {
        assert_chain(&report, path, &CHAIN);
    }
}

/// OpenSSL's `PKCS12_create(NULL, …)` — what pyOpenSSL's
/// `PKCS12.export(passphrase=None)` called — keys its MAC and its PBES1
/// parts with no password bytes at all, unlike `""` (two zero bytes).
const LIBRARY_NULL_PASSWORD: &str = r#"
import ctypes
c = ctypes.CDLL("libcrypto.so.3")
vp, ci = ctypes.c_void_p, ctypes.c_int
c.BIO_new_mem_buf.restype = vp; c.BIO_new_mem_buf.argtypes = [ctypes.c_char_p, ci]
for f in ("PEM_read_bio_X509", "PEM_read_bio_PrivateKey"):
    getattr(c, f).restype = vp; getattr(c, f).argtypes = [vp] * 4
c.OPENSSL_sk_new_null.restype = vp
c.OPENSSL_sk_push.argtypes = [vp, vp]
c.PKCS12_create.restype = vp
c.PKCS12_create.argtypes = [ctypes.c_char_p, ctypes.c_char_p, vp, vp, vp] + [ci] * 5
c.i2d_PKCS12.argtypes = [vp, ctypes.POINTER(ctypes.c_char_p)]
c.OBJ_txt2nid.argtypes = [ctypes.c_char_p]
c.OSSL_PROVIDER_load.restype = vp; c.OSSL_PROVIDER_load.argtypes = [vp, ctypes.c_char_p]
c.OSSL_PROVIDER_load(None, b"legacy"); c.OSSL_PROVIDER_load(None, b"default")
def load(fn, path):
    data = open(path, "rb").read()
    return getattr(c, fn)(c.BIO_new_mem_buf(data, len(data)), None, None, None)
key = load("PEM_read_bio_PrivateKey", "leaf.key")
leaf = load("PEM_read_bio_X509", "leaf.pem")
ca = c.OPENSSL_sk_new_null(); c.OPENSSL_sk_push(ca, load("PEM_read_bio_X509", "ca.pem"))
for name, cert_pbe, key_pbe in [
    ("null-default", 0, 0),
    ("null-legacy", c.OBJ_txt2nid(b"PBE-SHA1-RC2-40"), c.OBJ_txt2nid(b"PBE-SHA1-3DES")),
    ("null-3des", c.OBJ_txt2nid(b"PBE-SHA1-3DES"), c.OBJ_txt2nid(b"PBE-SHA1-3DES")),
]:
    p12 = c.PKCS12_create(None, b"leaf", key, leaf, ca, key_pbe, cert_pbe, 0, 0, 0)
    assert p12, name
    n = c.i2d_PKCS12(p12, None)
    buf = ctypes.create_string_buffer(n)
    ptr = ctypes.c_char_p(ctypes.addressof(buf))
    c.i2d_PKCS12(p12, ctypes.byref(ptr))
    open(name + ".p12", "wb").write(buf.raw[:n])
"#;

#[test]
fn openssl_library_stores_with_a_null_password() {
    let s = Scratch::new();
    inputs(&s);
    python(&s, LIBRARY_NULL_PASSWORD);
    let paths = ["null-default.p12", "null-legacy.p12", "null-3des.p12"];

    let report = s.check().args(paths).json();

    report.assert_no_errors().assert_code(0);
    for path in paths {
        assert_chain(&report, path, &CHAIN);
    }
}

/// Python `cryptography`'s writers: no encryption, and each algorithm its
/// PKCS#12 builder offers with the password `secret`.
const CRYPTOGRAPHY_WRITERS: &str = r#"
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization as s
from cryptography.hazmat.primitives.serialization import pkcs12
key = s.load_pem_private_key(open("leaf.key", "rb").read(), None)
leaf = x509.load_pem_x509_certificate(open("leaf.pem", "rb").read())
ca = x509.load_pem_x509_certificate(open("ca.pem", "rb").read())
def builder():
    return s.PrivateFormat.PKCS12.encryption_builder()
for name, enc in [
    ("cryptography-none", s.NoEncryption()),
    ("cryptography-best", s.BestAvailableEncryption(b"secret")),
    ("cryptography-3des", builder().kdf_rounds(2048)
        .key_cert_algorithm(pkcs12.PBES.PBESv1SHA1And3KeyTripleDESCBC)
        .hmac_hash(hashes.SHA1()).build(b"secret")),
    ("cryptography-aes", builder().kdf_rounds(5000)
        .key_cert_algorithm(pkcs12.PBES.PBESv2SHA256AndAES256CBC).build(b"secret")),
]:
    data = pkcs12.serialize_key_and_certificates(b"leaf", key, leaf, [ca], enc)
    open(name + ".p12", "wb").write(data)
open("cryptography-certs-only.p12", "wb").write(
    pkcs12.serialize_key_and_certificates(None, None, None, [leaf, ca], s.NoEncryption()))
"#;

#[test]
fn cryptography_writers_with_no_or_a_configured_password() {
    let s = Scratch::new();
    inputs(&s);
    configure_passwords(&s);
    python(&s, CRYPTOGRAPHY_WRITERS);
    let paths = [
        "cryptography-none.p12",
        "cryptography-best.p12",
        "cryptography-3des.p12",
        "cryptography-aes.p12",
        "cryptography-certs-only.p12",
    ];

    let report = s
        .check()
        .args(["--config", "lapse.yaml"])
        .args(paths)
        .json();

    report.assert_no_errors().assert_code(0);
    for path in paths {
        assert_chain(&report, path, &CHAIN);
    }
}

#[test]
fn keytool_stores_with_every_protection_algorithm() {
    let s = Scratch::new();
    inputs(&s);
    configure_passwords(&s);
    openssl_export(&s, "src", &["-passout", "pass:secret"]);
    let p = "keystore.pkcs12";
    let forms: &[(&str, &[String])] = &[
        ("java-default", &[]),
        (
            "java-hmac-sha1-aes",
            &[
                format!("{p}.certProtectionAlgorithm=PBEWithHmacSHA1AndAES_256"),
                format!("{p}.keyProtectionAlgorithm=PBEWithHmacSHA1AndAES_256"),
            ],
        ),
        (
            "java-hmac-sha1-aes128-mac-sha1",
            &[
                format!("{p}.certProtectionAlgorithm=PBEWithHmacSHA1AndAES_128"),
                format!("{p}.macAlgorithm=HmacPBESHA1"),
            ],
        ),
        (
            "java-legacy",
            &[
                format!("{p}.certProtectionAlgorithm=PBEWithSHA1AndRC2_40"),
                format!("{p}.keyProtectionAlgorithm=PBEWithSHA1AndDESede"),
                format!("{p}.macAlgorithm=HmacPBESHA1"),
            ],
        ),
        (
            "java-3des-mac-sha256",
            &[
                format!("{p}.certProtectionAlgorithm=PBEWithSHA1AndDESede"),
                format!("{p}.macAlgorithm=HmacPBESHA256"),
            ],
        ),
        (
            "java-certs-unprotected",
            &[format!("{p}.certProtectionAlgorithm=NONE")],
        ),
    ];
    let mut paths = Vec::new();
    for (name, properties) in forms {
        let properties: Vec<&str> = properties.iter().map(String::as_str).collect();
        keytool_copy(&s, name, &properties);
        paths.push(format!("{name}.p12"));
    }
    // A truststore: `-importcert` of a CA certificate only.
    run(
        &s,
        "keytool",
        &[
            "-importcert",
            "-noprompt",
            "-alias",
            "root",
            "-file",
            "ca.pem",
            "-keystore",
            "truststore.p12",
            "-storetype",
            "PKCS12",
            "-storepass",
            "changeit",
        ],
    );

    let report = s
        .check()
        .args(["--config", "lapse.yaml"])
        .args(&paths)
        .arg("truststore.p12")
        .json();

    report.assert_no_errors().assert_code(0);
    for path in &paths {
        assert_chain(&report, path, &CHAIN);
    }
    assert_chain(&report, "truststore.p12", &CHAIN[..1]);
}

/// keytool without a MAC and without certificate protection: no password
/// is needed to read the certificates, whichever one it was written with.
#[test]
fn keytool_store_without_mac_or_certificate_protection_needs_no_password() {
    let s = Scratch::new();
    inputs(&s);
    openssl_export(&s, "src", &["-passout", "pass:secret"]);
    keytool_copy(
        &s,
        "java-open",
        &[
            "keystore.pkcs12.certProtectionAlgorithm=NONE",
            "keystore.pkcs12.macAlgorithm=NONE",
        ],
    );

    let report = s.check().arg("java-open.p12").json();

    report.assert_no_errors().assert_code(0);
    assert_chain(&report, "java-open.p12", &CHAIN);
}

#[test]
fn a_wrong_password_says_so_and_never_shows_it() {
    let s = Scratch::new();
    inputs(&s);
    configure_passwords(&s);
    let pass = "pass:Tr0ub4dor-not-configured";
    openssl_export(&s, "aes", &["-passout", pass]);
    openssl_export(&s, "legacy", &["-legacy", "-passout", pass]);
    openssl_export(
        &s,
        "nomac",
        &["-nomac", "-certpbe", "AES-256-CBC", "-passout", pass],
    );
    openssl_export(
        &s,
        "nomac-legacy",
        &[
            "-nomac",
            "-legacy",
            "-certpbe",
            "PBE-SHA1-RC2-40",
            "-passout",
            pass,
        ],
    );
    let locked = ["aes.p12", "legacy.p12", "nomac.p12", "nomac-legacy.p12"];

    let report = s
        .check()
        .args(["--config", "lapse.yaml"])
        .args(locked)
        .json();
    let unconfigured = s.check().arg("aes.p12").json();

    report.assert_credential_count(0).assert_code(3);
    for path in locked {
        assert_eq!(
            report.reason(path, None),
            "PKCS#12 store: none of the configured passwords opens it"
        );
    }
    assert_eq!(
        unconfigured.reason("aes.p12", None),
        "PKCS#12 store is password-protected and no password is configured"
    );
    for text in [&report.stdout, &report.stderr] {
        for secret in ["Tr0ub4dor", "secret", "changeit"] {
            assert!(!text.contains(secret), "{secret} shown in:\n{text}");
        }
    }
}

/// Certificates stored unencrypted (`-certpbe NONE`, or `-nomac`, which
/// OpenSSL 3 writes without certificate encryption) need no password; a
/// MAC no configured password verifies is said, the certificates still
/// reported.
#[test]
fn unencrypted_certificates_are_read_whatever_the_password() {
    let s = Scratch::new();
    inputs(&s);
    configure_passwords(&s);
    let pass = "pass:Tr0ub4dor-not-configured";
    openssl_export(&s, "plain", &["-certpbe", "NONE", "-passout", pass]);
    openssl_export(&s, "nomac", &["-nomac", "-passout", pass]);

    let report = s
        .check()
        .args(["--config", "lapse.yaml", "plain.p12", "nomac.p12"])
        .json();
    let unconfigured = s.check().args(["plain.p12", "nomac.p12"]).json();

    assert_chain(&report, "plain.p12", &CHAIN);
    assert_chain(&report, "nomac.p12", &CHAIN);
    report.assert_error_count(1);
    assert_eq!(
        report.reason("plain.p12", None),
        "PKCS#12 store: none of the configured passwords verifies its MAC; its unencrypted certificates are reported unverified"
    );
    unconfigured.assert_no_errors().assert_code(0);
    assert_chain(&unconfigured, "plain.p12", &CHAIN);
    assert_chain(&unconfigured, "nomac.p12", &CHAIN);
}

#[test]
fn an_algorithm_lapse_cannot_run_is_named_not_a_wrong_password() {
    let s = Scratch::new();
    inputs(&s);
    configure_passwords(&s);
    openssl_export(
        &s,
        "rc4",
        &[
            "-legacy",
            "-certpbe",
            "PBE-SHA1-RC4-128",
            "-passout",
            "pass:",
        ],
    );
    openssl_export(
        &s,
        "camellia",
        &["-certpbe", "CAMELLIA-256-CBC", "-passout", "pass:secret"],
    );
    openssl_export(
        &s,
        "rc4-nomac",
        &[
            "-legacy",
            "-nomac",
            "-certpbe",
            "PBE-SHA1-RC4-40",
            "-passout",
            "pass:",
        ],
    );

    let report = s
        .check()
        .args([
            "--config",
            "lapse.yaml",
            "rc4.p12",
            "camellia.p12",
            "rc4-nomac.p12",
        ])
        .json();

    report.assert_credential_count(0).assert_code(3);
    assert_eq!(
        report.reason("rc4.p12", None),
        "PKCS#12: unsupported encryption PBE-SHA1-RC4-128"
    );
    assert_eq!(
        report.reason("camellia.p12", None),
        "PKCS#12: unsupported encryption PBES2 with CAMELLIA-256-CBC"
    );
    assert_eq!(
        report.reason("rc4-nomac.p12", None),
        "PKCS#12: unsupported encryption PBE-SHA1-RC4-40"
    );
}
