//! Certificate stores that are not PEM: JKS and JCEKS keystores (the magic
//! is put in front of the fuzz bytes, so every input reaches the entry
//! walk) and PKCS#7 / CMS bundles. Byte 0: bit 0 picks PKCS#7, bit 1 JCEKS
//! over JKS, bit 2 configures a password. The password never shows.
#![no_main]

use lapse::parse::{fuzzing, parse_file_with};
use lapse_fuzz::{absent_from, check};
use libfuzzer_sys::fuzz_target;

const PASSWORD: &str = "jks-Pa55word-planted";

fuzz_target!(|data: &[u8]| {
    let Some((&flags, bytes)) = data.split_first() else {
        return;
    };
    let passwords = if flags & 4 == 4 {
        vec![PASSWORD.to_string()]
    } else {
        Vec::new()
    };
    let planted = absent_from(bytes, &[PASSWORD]);
    let (name, input, parsed) = if flags & 1 == 1 {
        let name = "pki/ca.p7b";
        (name, bytes.to_vec(), fuzzing::pkcs7(name, bytes))
    } else {
        let magic: &[u8] = if flags & 2 == 2 {
            &[0xce, 0xce, 0xce, 0xce]
        } else {
            &[0xfe, 0xed, 0xfe, 0xed]
        };
        let input = [magic, bytes].concat();
        let name = "java/truststore.jks";
        let parsed = fuzzing::keystore(name, &input, &passwords);
        (name, input, parsed)
    };
    check(name, &parsed, &planted);
    for (i, c) in parsed.credentials.iter().enumerate() {
        assert_eq!(c.kind, lapse::credential::Kind::X509);
        assert!(c.index.is_some(), "certificate #{i} without an index");
    }
    check(name, &parse_file_with(name, &input, &passwords), &planted);
});
