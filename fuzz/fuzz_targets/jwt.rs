//! Token text: JWTs built from fuzz bytes (header and payload JSON, so
//! the fuzzer reaches claim parsing), EKS and Fernet tokens, and raw text.
//! The signature and the token's text must never show in the result.
#![no_main]

use lapse::parse::{FileRef, RefKind, fuzzing, parse_file, parse_reference, token_credential};
use lapse_fuzz::{absent_from, b64url, check};
use libfuzzer_sys::fuzz_target;

const SIGNATURE: &str = "c2lnbmF0dXJlLW5ldmVyLXNob3du";

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let token = match mode % 4 {
        // header.payload.signature, split where the second byte says.
        0 => {
            let Some((&at, rest)) = rest.split_first() else {
                return;
            };
            let at = (at as usize).min(rest.len());
            let (header, payload) = rest.split_at(at);
            format!("{}.{}.{SIGNATURE}", b64url(header), b64url(payload))
        }
        1 => format!("k8s-aws-v1.{}", b64url(rest)),
        // A Fernet token: 0x80, then the creation time, then ciphertext.
        2 => {
            let mut raw = vec![0x80];
            raw.extend_from_slice(rest);
            b64url(&raw)
        }
        _ => match std::str::from_utf8(rest) {
            Ok(text) => text.to_string(),
            Err(_) => return,
        },
    };
    let planted = if mode % 4 == 3 {
        Vec::new()
    } else {
        let mut p = absent_from(rest, &[SIGNATURE]);
        if token.len() >= 16 {
            p.push(token.as_str());
        }
        p
    };
    let name = "token";
    let parsed = fuzzing::token(name, &token);
    check(name, &parsed, &planted);
    assert_eq!(
        parsed.credentials.len() + parsed.errors.len(),
        1,
        "one token gives one credential or one error: {parsed:?}"
    );
    if let Ok(c) = token_credential(&token) {
        let shown = format!("{c:?}");
        for p in &planted {
            assert!(!shown.contains(p));
        }
    }
    check(name, &parse_file(name, token.as_bytes()), &planted);
    let r = FileRef {
        path: name.into(),
        from: "kubeconfig".into(),
        entry: "users[u].tokenFile".into(),
        kind: RefKind::Token,
        source: lapse::credential::Source::Kubeconfig,
        optional: false,
    };
    check(name, &parse_reference(&r, token.as_bytes()), &planted);
});
