//! Each per-parse cap of `record.rs` and `pkcs12_cost.rs`, reached: what is
//! kept, and the one error entry that says the rest was not read.

use super::record::{MAX_CREDENTIALS, MAX_DOCUMENTS, MAX_REFS};
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

#[test]
fn credentials_past_the_cap_are_not_kept() {
    let bundle = cert_pem().repeat(MAX_CREDENTIALS + 5);
    let parsed = parse_file("bundle.pem", bundle.as_bytes());
    assert_eq!(parsed.credentials.len(), MAX_CREDENTIALS);
    assert_eq!(
        only_error(&parsed),
        (
            ErrorReason::TooLarge,
            "more than 10000 credentials; the rest were not read"
        )
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
    // A YAML stream stops at the YAML library's own budget (1,024
    // documents); a List's items do not.
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
    use p12_keystore::{Certificate, KeyStore, KeyStoreEntry, PrivateKey, PrivateKeyChain};
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["p12.example".into()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let chain = [Certificate::from_der(cert.der()).unwrap()];
    let key = PrivateKey::from_der(&key.serialize_der()).unwrap();
    let mut keystore = KeyStore::new();
    keystore.add_entry(
        "leaf",
        KeyStoreEntry::PrivateKeyChain(PrivateKeyChain::new("key-1", key, chain)),
    );
    keystore
        .writer(password)
        .encryption_iterations(iterations)
        .mac_iterations(iterations)
        .write()
        .unwrap()
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
