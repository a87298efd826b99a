//! The reader on stores built here: by p12-keystore (PBES2, a MAC) and by
//! hand, DER node by node, for the shapes no tool on the test machine
//! writes (an unknown cipher with no MAC, deep nesting, SDSI bags); and
//! every truncation and byte flip of a real store, which must end in an
//! error entry, never a panic.

use super::oid;
use crate::credential::ErrorReason;
use crate::parse::{Parsed, parse_file, parse_file_with};

fn cert_der() -> Vec<u8> {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["p12.example".into()]).unwrap();
    params.not_after = rcgen::date_time_ymd(2031, 5, 17);
    params.self_signed(&key).unwrap().der().to_vec()
}

fn written(password: &str) -> Vec<u8> {
    crate::parse::test_stores::pkcs12(password, 16)
}

/// One DER TLV (lengths up to 64 KiB).
fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    match content.len() {
        n if n < 0x80 => out.push(n as u8),
        n if n < 0x100 => out.extend([0x81, n as u8]),
        n => out.extend([0x82, (n >> 8) as u8, n as u8]),
    }
    out.extend_from_slice(content);
    out
}

fn seq(items: &[Vec<u8>]) -> Vec<u8> {
    der(0x30, &items.concat())
}

fn content_info(kind: &[u8], content: Vec<u8>) -> Vec<u8> {
    seq(&[der(0x06, kind), der(0xa0, &content)])
}

/// A PFX without a MAC over the given authenticated-safe parts.
fn pfx(parts: &[Vec<u8>]) -> Vec<u8> {
    let auth_safe = seq(parts);
    seq(&[
        der(0x02, &[3]),
        content_info(oid::DATA, der(0x04, &auth_safe)),
    ])
}

fn cert_bag(cert: &[u8]) -> Vec<u8> {
    let value = seq(&[
        der(0x06, oid::X509_CERTIFICATE),
        der(0xa0, &der(0x04, cert)),
    ]);
    seq(&[der(0x06, oid::CERT_BAG), der(0xa0, &value)])
}

fn plain(bags: &[Vec<u8>]) -> Vec<u8> {
    content_info(oid::DATA, der(0x04, &seq(bags)))
}

fn only_error(parsed: &Parsed) -> (ErrorReason, &str) {
    assert_eq!(parsed.errors.len(), 1, "{parsed:?}");
    (parsed.errors[0].reason, parsed.errors[0].message.as_str())
}

fn not_afters(parsed: &Parsed) -> Vec<String> {
    parsed
        .credentials
        .iter()
        .map(|c| format!("{:?}", c.not_after))
        .collect()
}

#[test]
fn a_configured_password_opens_and_a_wrong_one_is_a_password_error() {
    let store = written("pw");
    let opened = parse_file_with("a.p12", &store, &["nope".into(), "pw".into()]);
    assert!(opened.errors.is_empty(), "{opened:?}");
    assert_eq!(opened.credentials.len(), 1);
    assert_eq!(
        opened.credentials[0].not_after,
        Some(1_936_742_400) // 2031-05-17T00:00:00Z
    );
    let locked = parse_file_with("a.p12", &store, &["nope".into()]);
    assert_eq!(
        only_error(&locked),
        (
            ErrorReason::Password,
            "PKCS#12 store: none of the configured passwords opens it"
        )
    );
}

#[test]
fn an_unknown_cipher_is_a_parse_error_naming_it() {
    // encryptedData under pbeWithSHAAnd128BitRC4, no MAC.
    let mut rc4 = oid::PKCS12_PBE_PREFIX.to_vec();
    rc4.push(1);
    let alg = seq(&[der(0x06, &rc4), seq(&[der(0x04, &[7; 8]), der(0x02, &[8])])]);
    let info = seq(&[der(0x06, oid::DATA), alg, der(0x80, &[0; 200])]);
    let encrypted = content_info(oid::ENCRYPTED_DATA, seq(&[der(0x02, &[0]), info]));
    let parsed = parse_file("rc4.p12", &pfx(&[encrypted]));
    assert_eq!(
        only_error(&parsed),
        (
            ErrorReason::Parse,
            "PKCS#12: unsupported encryption PBE-SHA1-RC4-128"
        )
    );
}

#[test]
fn plain_bags_nested_and_sdsi_bags_skipped() {
    let cert = cert_der();
    let sdsi = {
        let mut kind = oid::X509_CERTIFICATE.to_vec();
        *kind.last_mut().unwrap() = 2;
        let value = seq(&[der(0x06, &kind), der(0xa0, &der(0x16, b"sdsi"))]);
        seq(&[der(0x06, oid::CERT_BAG), der(0xa0, &value)])
    };
    let nest = |bag: Vec<u8>, depth: usize| {
        (0..depth).fold(bag, |inner, _| {
            seq(&[der(0x06, oid::SAFE_CONTENTS_BAG), der(0xa0, &seq(&[inner]))])
        })
    };
    let store = pfx(&[plain(&[sdsi, nest(cert_bag(&cert), 4)])]);
    let parsed = parse_file("nested.p12", &store);
    assert!(parsed.errors.is_empty(), "{parsed:?}");
    assert_eq!(parsed.credentials.len(), 1);

    let deep = pfx(&[plain(&[nest(cert_bag(&cert), 5)])]);
    assert_eq!(
        only_error(&parse_file("deep.p12", &deep)),
        (ErrorReason::Parse, "PKCS#12: safe contents nest too deep")
    );
}

#[test]
fn public_key_modes_are_named() {
    let cert = cert_der();
    let enveloped = content_info(oid::ENVELOPED_DATA, seq(&[der(0x02, &[0])]));
    let store = pfx(&[plain(&[cert_bag(&cert)]), enveloped]);
    assert_eq!(
        only_error(&parse_file("env.p12", &store)),
        (
            ErrorReason::Parse,
            "PKCS#12: unsupported public-key privacy mode (envelopedData)"
        )
    );
}

/// Every prefix and every single-byte flip of a real store: an error
/// entry or the certificate, never a panic; a flip never yields a
/// certificate the store does not hold.
#[test]
fn truncations_and_flips_never_panic() {
    let store = written("");
    let whole = parse_file("s.p12", &store);
    assert!(whole.errors.is_empty(), "{whole:?}");
    let expected = not_afters(&whole);
    for end in 0..store.len() {
        let parsed = parse_file("s.p12", &store[..end]);
        assert!(parsed.credentials.is_empty());
    }
    for at in 0..store.len() {
        let mut flipped = store.clone();
        flipped[at] ^= 0x41;
        let parsed = parse_file("s.p12", &flipped);
        let got = not_afters(&parsed);
        assert!(got.is_empty() || got == expected, "flip at {at}: {got:?}");
    }
}

/// A TLV with a four-byte length, for contents past 64 KiB.
fn der4(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag, 0x84];
    out.extend((content.len() as u32).to_be_bytes());
    out.extend_from_slice(content);
    out
}

/// The encrypted part (its whole ContentInfo TLV) of a store p12-keystore
/// wrote: PBES2 at `iterations`, no MAC worth speaking of.
fn encrypted_part(iterations: u32) -> Vec<u8> {
    use crate::parse::der::tlv;
    use p12_keystore::{Certificate, KeyStore, KeyStoreEntry};
    let mut ks = KeyStore::new();
    let cert = Certificate::from_der(&cert_der()).unwrap();
    ks.add_entry("c", KeyStoreEntry::Certificate(cert));
    let store = ks
        .writer("")
        .encryption_iterations(iterations)
        .mac_iterations(1)
        .write()
        .unwrap();
    let (_, pfx, _) = tlv(&store).unwrap();
    let (_, content) = super::content_info(super::children(pfx)[1].1).unwrap();
    let (_, items, _) = tlv(super::octets(content).unwrap()).unwrap();
    let mut rest = items;
    while let Some((_, inner, next)) = tlv(rest) {
        if super::content_info(inner).unwrap().0 == oid::ENCRYPTED_DATA {
            return rest[..rest.len() - next.len()].to_vec();
        }
        rest = next;
    }
    panic!("no encrypted part")
}

/// A PFX without a MAC whose authenticated safe is `auth_safe`.
fn pfx_of(auth_safe: &[u8]) -> Vec<u8> {
    let info = [der4(0x06, oid::DATA), der4(0xa0, &der4(0x04, auth_safe))].concat();
    der4(0x30, &[der4(0x02, &[3]), der4(0x30, &info)].concat())
}

/// Forty encrypted parts at the iteration cap cost 4,000,000 iterations,
/// four times the per-file cap. The cost walk refuses them as they are;
/// a store shaped so that the walk misses them (a byte after the
/// authenticated safe, or more bags before them than the walk visits)
/// must not buy that work either: the trailing byte makes the store
/// invalid, and the reader's own budget stops the padded one at the cap.
#[test]
fn parts_the_cost_walk_cannot_see_are_held_to_the_cap() {
    let parts = encrypted_part(100_000).repeat(40);

    let whole = parse_file("many.p12", &pfx_of(&der4(0x30, &parts)));
    assert_eq!(whole.credentials.len(), 0);
    assert_eq!(
        only_error(&whole),
        (
            ErrorReason::TooLarge,
            "PKCS#12 store: 0 of 1 passwords tried, none opens it; trying more would pass the cap of 1000000 key-derivation iterations per file"
        )
    );

    let mut trailing = der4(0x30, &parts);
    trailing.push(0);
    let parsed = parse_file("trailing.p12", &pfx_of(&trailing));
    assert_eq!(parsed.credentials.len(), 0);
    assert_eq!(
        only_error(&parsed),
        (
            ErrorReason::Parse,
            "PKCS#12: the authenticated safe does not parse"
        )
    );

    let junk: Vec<Vec<u8>> = (0..4000)
        .map(|_| seq(&[der(0x06, &[1]), der(0xa0, &[])]))
        .collect();
    let padding = content_info(oid::DATA, der4(0x04, &der4(0x30, &junk.concat())));
    let padded = der4(0x30, &[padding, parts].concat());
    assert_eq!(crate::parse::pkcs12_cost::of(&pfx_of(&padded)).open, 0);
    let parsed = parse_file("padded.p12", &pfx_of(&padded));
    assert_eq!(parsed.credentials.len(), 0);
    assert_eq!(
        only_error(&parsed),
        (
            ErrorReason::TooLarge,
            "PKCS#12 store: 0 of 1 passwords tried, none opens it; trying more would pass the cap of 1000000 key-derivation iterations per file"
        )
    );
}

/// A MAC digest of the wrong length matches no password: the store is
/// damaged, which is no reason to chase passwords.
#[test]
fn a_mac_digest_of_the_wrong_length_is_damage_not_a_wrong_password() {
    use crate::parse::der::tlv;
    let store = written("");
    // The MAC data is the PFX's third element: SEQUENCE { DigestInfo {
    // alg, OCTET STRING digest }, salt, iterations }. Rebuild it with the
    // digest cut to 5 bytes.
    let (_, pfx, _) = tlv(&store).unwrap();
    let kids = super::children(pfx);
    let mac = kids[2].1;
    let mac_items = super::children(mac);
    let digest_info = super::children(mac_items[0].1);
    let info = seq(&[
        der(0x30, digest_info[0].1),
        der(0x04, &digest_info[1].1[..5]),
    ]);
    let rest: Vec<Vec<u8>> = mac_items[1..].iter().map(|(t, c)| der(*t, c)).collect();
    let new_mac = seq(&[vec![info], rest].concat());
    let rebuilt = der4(
        0x30,
        &[der(0x02, &[3]), der4(0x30, kids[1].1), new_mac].concat(),
    );
    let parsed = parse_file("short-mac.p12", &rebuilt);
    assert_eq!(
        only_error(&parsed),
        (
            ErrorReason::Parse,
            "PKCS#12: the MAC's digest has the wrong length"
        )
    );
}
