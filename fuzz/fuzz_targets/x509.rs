//! PEM bundles, DER and PKCS#12 stores (with and without a password), as a
//! referenced certificate file and as a whole file. The first byte picks
//! whether a password is configured and whether a private key with a
//! known body is appended: neither may ever show in the result.
#![no_main]

use lapse::parse::{fuzzing, parse_file_with, parse_pem_blocks};
use lapse_fuzz::{absent_from, check};
use libfuzzer_sys::fuzz_target;

const PASSWORD: &str = "p12-Pa55word-planted";
/// Valid base64, so the block parses as far as a key is ever read.
const KEY_BODY: &str = "S3cr3tK3yM4t3r14lN3v3rSh0wnXyZ09";

/// `1.2.840.113549.1.7.2`, PKCS#7 signed data, as its DER encodes it.
const SIGNED_DATA: &[u8] = &[0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02];

fn holds_pkcs7(label: &str, der: &[u8]) -> bool {
    matches!(label, "PKCS7" | "CMS" | "PKCS #7 SIGNED DATA")
        || der.windows(SIGNED_DATA.len()).take(8).any(|w| w == SIGNED_DATA)
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, bytes)) = data.split_first() else {
        return;
    };
    let passwords = if flags & 1 == 1 {
        vec![PASSWORD.to_string()]
    } else {
        Vec::new()
    };
    let mut input = bytes.to_vec();
    if flags & 2 == 2 {
        input.extend_from_slice(
            format!("\n-----BEGIN PRIVATE KEY-----\n{KEY_BODY}\n-----END PRIVATE KEY-----\n")
                .as_bytes(),
        );
    }
    let planted = absent_from(bytes, &[PASSWORD, KEY_BODY]);
    let name = "pki/tls.crt";
    let parsed = fuzzing::certificates(name, &input, &passwords);
    check(name, &parsed, &planted);
    // PEM: at least one certificate or one error per certificate block
    // (keys add nothing), and an error when there is no block at all. A
    // PKCS#7 block, or PKCS#7 under CERTIFICATE armour as Windows CAs write
    // it, holds any number of certificates, so it sets no lower bound.
    if input.windows(11).any(|w| w == b"-----BEGIN ") {
        let blocks = parse_pem_blocks(&input);
        let expected = if blocks.is_empty() {
            1
        } else {
            blocks
                .iter()
                .filter(|b| match &b.der {
                    None => false,
                    Some(Ok(der)) => !holds_pkcs7(&b.label, der),
                    Some(Err(_)) => !matches!(b.label.as_str(), "PKCS7" | "CMS"),
                })
                .count()
        };
        assert!(
            parsed.credentials.len() + parsed.errors.len() >= expected,
            "{parsed:?}"
        );
    }
    for (i, c) in parsed.credentials.iter().enumerate() {
        assert_eq!(c.kind, lapse::credential::Kind::X509);
        assert!(c.index.is_some(), "certificate #{i} without an index");
    }
    check(name, &parse_file_with(name, &input, &passwords), &planted);
});
