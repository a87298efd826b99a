//! Every parser behind `parse_file`: content sniffing, PEM, DER, PKCS#12,
//! JWT, kubeconfig, Kubernetes objects and token caches. The first byte
//! picks the file name, since names decide only whether unrecognised
//! content is an error, and how a referenced file is read.
#![no_main]

use lapse::credential::Source;
use lapse::parse::{FileRef, RefKind, parse_file, parse_reference};
use lapse_fuzz::check;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, bytes)) = data.split_first() else {
        return;
    };
    let name = match pick % 4 {
        0 => "input",
        1 => "tls.crt",
        2 => "token",
        _ => "dir/config",
    };
    check(name, &parse_file(name, bytes), &[]);
    let kind = match pick / 4 % 3 {
        0 => RefKind::Certificates,
        1 => RefKind::Token,
        _ => RefKind::Any,
    };
    let r = FileRef {
        path: name.into(),
        from: "kubeconfig".into(),
        entry: "users[x].client-certificate".into(),
        kind,
        source: Source::Kubeconfig,
        optional: false,
    };
    let parsed = parse_reference(&r, bytes);
    check(name, &parsed, &[]);
    if kind != RefKind::Any {
        for c in &parsed.credentials {
            assert_eq!(c.source, Source::Kubeconfig);
        }
    }
});
