//! Each per-parse cap of `record.rs` and `pkcs12_cost.rs`, reached: what is
//! kept, and the one error entry that says the rest was not read.

use super::record::{BYTES_PER_ITEM, MAX_CREDENTIALS, MAX_DOCUMENTS, MAX_REFS};
use super::{Parsed, parse_file, parse_file_with};
use crate::credential::ErrorReason;

fn cert_pem() -> String {
    let key = rcgen::KeyPair::generate().unwrap();
    rcgen::CertificateParams::new(vec!["cap.example".into()])
        .unwrap()
        .self_signed(&key)
        .unwrap()
        .pem()
}

/// The one error entry of `parsed`, as (reason, message).
fn only_error(parsed: &Parsed) -> (ErrorReason, &str) {
    assert_eq!(parsed.errors.len(), 1, "{:?}", parsed.errors);
    (parsed.errors[0].reason, parsed.errors[0].message.as_str())
}

/// 10,005 real certificates, each 500-odd bytes: a large bundle keeps
/// every one.
#[test]
fn a_bundle_past_the_small_input_cap_is_read_whole() {
    let bundle = cert_pem().repeat(MAX_CREDENTIALS + 5);
    let parsed = parse_file("bundle.pem", bundle.as_bytes());
    assert_eq!(parsed.credentials.len(), MAX_CREDENTIALS + 5);
    assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
}

/// A YAML anchor holding 130 certificates, named 99 times: 13,000 from
/// some 75 KB, which allows 10,000 (the floor; 75 KB / 64 is less).
#[test]
fn credentials_past_the_cap_are_not_kept() {
    let bundle = cert_pem().repeat(130);
    let body: String = bundle.lines().map(|l| format!("  {l}\n")).collect();
    let refs = vec!["*b"; 99].join(", ");
    let text = format!("pem: &b |\n{body}again: [{refs}]\n");
    assert!(text.len() / BYTES_PER_ITEM < MAX_CREDENTIALS);
    let parsed = parse_file("aliased.yaml", text.as_bytes());
    assert_eq!(parsed.credentials.len(), MAX_CREDENTIALS);
    assert_eq!(
        only_error(&parsed),
        (
            ErrorReason::TooLarge,
            "more than 10000 credentials; the rest were not read"
        )
    );
}

/// 10,005 TLS Secrets (a certificate and a key each) in a List: past all
/// three small-input caps (credentials, PEM blocks, documents), and read
/// whole, as `kubectl get secrets -A -o json` prints them.
#[test]
fn a_list_of_10005_tls_secrets_is_read_whole() {
    use base64::Engine;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let key = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n-----END PRIVATE KEY-----\n";
    let (crt, key) = (b64(&cert_pem()), b64(key));
    let items: Vec<String> = (0..MAX_DOCUMENTS + 5)
        .map(|i| {
            format!(
                r#"{{"apiVersion":"v1","kind":"Secret","type":"kubernetes.io/tls","metadata":{{"namespace":"web","name":"s{i}"}},"data":{{"tls.crt":"{crt}","tls.key":"{key}"}}}}"#
            )
        })
        .collect();
    let list = format!(
        r#"{{"apiVersion":"v1","kind":"List","items":[{}]}}"#,
        items.join(",")
    );
    let parsed = parse_file("secrets.json", list.as_bytes());
    assert!(parsed.errors.is_empty(), "{:?}", &parsed.errors[..1]);
    assert_eq!(parsed.credentials.len(), MAX_DOCUMENTS + 5);
    assert_eq!(
        parsed.credentials[MAX_DOCUMENTS + 4].entry.as_deref(),
        Some("secret web/s10004 tls.crt")
    );
}

#[test]
fn references_past_the_cap_are_not_followed() {
    let users: String = (0..=MAX_REFS)
        .map(|i| format!("- name: u{i}\n  user:\n    tokenFile: t{i}\n"))
        .collect();
    let kubeconfig = format!("apiVersion: v1\nkind: Config\nusers:\n{users}");
    let parsed = parse_file("dir/config", kubeconfig.as_bytes());
    assert_eq!(parsed.refs.len(), MAX_REFS);
    assert_eq!(
        only_error(&parsed),
        (
            ErrorReason::TooLarge,
            "refers to more than 1000 files; the rest were not read"
        )
    );
}

#[test]
fn documents_past_the_cap_are_not_read() {
    // 30 KB: 10,000 is the floor, far above one per 64 bytes.
    let items = vec!["{}"; MAX_DOCUMENTS + 1].join(",");
    let list = format!(r#"{{"kind":"List","items":[{items}]}}"#);
    let parsed = parse_file("list.json", list.as_bytes());
    assert_eq!(
        only_error(&parsed),
        (
            ErrorReason::TooLarge,
            "more than 10000 YAML/JSON documents; the rest were not read"
        )
    );
}

#[test]
fn pem_blocks_past_the_cap_are_not_scanned() {
    let keys = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n".repeat(20_001);
    let text = format!("{keys}{}", cert_pem());
    let parsed = parse_file("keys.pem", text.as_bytes());
    assert!(parsed.credentials.is_empty());
    assert_eq!(
        only_error(&parsed),
        (
            ErrorReason::TooLarge,
            "more than 20000 PEM blocks; the rest were not read"
        )
    );
}

/// 40,000 PEM blocks of 59 bytes, 2,360,000 bytes: the cap grows to one
/// block per 64 bytes, 36,875, and no further.
#[test]
fn a_large_input_caps_at_one_pem_block_per_64_bytes() {
    let keys = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n".repeat(40_000);
    assert_eq!(keys.len() / BYTES_PER_ITEM, 36_875);
    let parsed = parse_file("keys.pem", keys.as_bytes());
    assert_eq!(
        only_error(&parsed),
        (
            ErrorReason::TooLarge,
            "more than 36875 PEM blocks; the rest were not read"
        )
    );
}

#[test]
fn a_hundred_errors_are_kept_and_the_rest_counted() {
    let blocks = "-----BEGIN CERTIFICATE-----\n!\n-----END CERTIFICATE-----\n".repeat(250);
    let parsed = parse_file("bad.pem", blocks.as_bytes());
    assert_eq!(parsed.errors.len(), 101);
    assert!(
        parsed.errors[..100]
            .iter()
            .all(|e| e.reason == ErrorReason::Parse)
    );
    let last = &parsed.errors[100];
    assert_eq!(
        (last.path.as_str(), last.entry.as_deref()),
        ("bad.pem", None)
    );
    assert_eq!(
        (last.reason, last.message.as_str()),
        (
            ErrorReason::TooLarge,
            "150 more errors were dropped (at most 100 are kept per file or object)"
        )
    );
}

/// A store the library writes with `iterations` everywhere.
fn store(password: &str, iterations: u32) -> Vec<u8> {
    super::test_stores::pkcs12(password, iterations)
}

#[test]
fn pkcs12_caps_are_too_large_entries() {
    let slow = parse_file("slow.p12", &store("", 100_001));
    assert_eq!(
        only_error(&slow),
        (
            ErrorReason::TooLarge,
            "PKCS#12 store asks for 100001 key-derivation iterations, more than lapse's cap of 100000; not opened"
        )
    );
    let passwords: Vec<String> = (0..40).map(|i| format!("wrong-{i}")).collect();
    let locked = parse_file_with("locked.p12", &store("right", 30_000), &passwords);
    // 60,000 for a try that opens it (the MAC and the certificate part; the
    // key is never decrypted), 30,000 for each that does not: 32 of "",
    // NULL and the 40 fit.
    assert_eq!(
        only_error(&locked),
        (
            ErrorReason::TooLarge,
            "PKCS#12 store: 32 of 42 passwords tried, none opens it; trying more would pass the cap of 1000000 key-derivation iterations per file"
        )
    );
}
