//! Every parser behind `parse_file`: content sniffing, PEM, DER, PKCS#12,
//! JWT, kubeconfig, Kubernetes objects and token caches. The first byte
//! picks the file name, since names decide only whether unrecognised
//! content is an error.
#![no_main]

use lapse::parse::{FileRef, RefKind, parse_file, parse_reference};
use lapse::credential::Source;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, bytes)) = data.split_first() else { return };
    let name = match pick % 4 {
        0 => "input",
        1 => "tls.crt",
        2 => "token",
        _ => "dir/config",
    };
    let parsed = parse_file(name, bytes);
    for c in &parsed.credentials {
        assert!(c.path == name);
    }
    let kind = match pick % 3 {
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
    let _ = parse_reference(&r, bytes);
});
