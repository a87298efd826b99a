//! Mutated inputs never panic the parsers and never make them quote a
//! secret. A deterministic mutation loop over one seed of every format, so
//! it runs on stable in every `cargo test`; coverage-guided fuzzing lives
//! in `fuzz/`.

use super::{FileRef, RefKind, parse_file, parse_reference};
use crate::credential::Source;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

const TOKEN_SECRET: &str = "0123456789abcdef";
const REFRESH: &str = "opaque-refresh-7f3e9c1d2b";

/// xorshift64*: reproducible, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn jwt() -> String {
    format!(
        "{}.{}.c2lnbmF0dXJl",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256"}"#),
        URL_SAFE_NO_PAD.encode(r#"{"sub":"a","exp":1800000000,"iat":1700000000}"#)
    )
}

/// One DER element: tag, definite length, content.
fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let len = content.len();
    let mut out = vec![tag];
    if len < 0x80 {
        out.push(len as u8);
    } else {
        out.extend([0x82, (len >> 8) as u8, len as u8]);
    }
    out.extend_from_slice(content);
    out
}

/// A PKCS#7 signed-data holding `cert`, as `openssl crl2pkcs7` writes it;
/// with `streamed`, the outer layers use BER's indefinite lengths.
fn pkcs7(cert: &[u8], streamed: bool) -> Vec<u8> {
    let signed_data_oid = [
        0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02,
    ];
    let data_oid = [
        0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01,
    ];
    let signed = [
        tlv(0x02, &[1]),
        tlv(0x31, &[]),
        tlv(0x30, &data_oid),
        tlv(0xa0, cert),
        tlv(0x31, &[]),
    ]
    .concat();
    if streamed {
        let open = |tag: u8| [tag, 0x80];
        return [
            &open(0x30)[..],
            &signed_data_oid,
            &open(0xa0),
            &open(0x30),
            &signed,
            &[0; 6],
        ]
        .concat();
    }
    tlv(
        0x30,
        &[&signed_data_oid[..], &tlv(0xa0, &tlv(0x30, &signed))].concat(),
    )
}

fn seeds() -> Vec<Vec<u8>> {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["a.example".to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let pem = cert.pem();
    let der = cert.der().to_vec();
    let token = jwt();
    let kubeconfig = format!(
        "apiVersion: v1\nkind: Config\ncontexts: []\nclusters:\n- name: c\n  cluster:\n    certificate-authority-data: {}\nusers:\n- name: u\n  user:\n    token: {token}\n    auth-provider:\n      name: oidc\n      config:\n        id-token: {token}\n        refresh-token: {REFRESH}\n",
        STANDARD.encode(&pem)
    );
    let list = format!(
        r#"{{"kind":"List","items":[{{"kind":"Secret","type":"kubernetes.io/tls","metadata":{{"name":"s","namespace":"n"}},"data":{{"tls.crt":"{}","tls.key":"{}"}}}},{{"kind":"Secret","type":"bootstrap.kubernetes.io/token","metadata":{{"name":"bootstrap-token-abcdef"}},"data":{{"token-id":"{}","token-secret":"{}","expiration":"{}"}}}}]}}"#,
        STANDARD.encode(&pem),
        STANDARD.encode(key.serialize_pem()),
        STANDARD.encode("abcdef"),
        STANDARD.encode(TOKEN_SECRET),
        STANDARD.encode("2026-01-01T00:00:00Z"),
    );
    let moc = format!(
        "name: n\ntoken: {token}\ncertificate: {}\ncloudfqdn: x\n",
        STANDARD.encode(&pem)
    );
    let cache = format!(
        r#"{{"access_token":"ya29.{REFRESH}","token_expiry":"2026-07-08T04:00:54.123456789Z"}}"#
    );
    let ed25519 = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    let p7 = pkcs7(&der, false);
    let p7_pem = format!(
        "-----BEGIN PKCS7-----\n{}\n-----END PKCS7-----\n",
        STANDARD.encode(&p7)
    );
    vec![
        p7.clone(),
        pkcs7(&der, true),
        p7_pem.into_bytes(),
        ed25519.serialize_der(),
        pem.clone().into_bytes(),
        format!("{pem}{}", key.serialize_pem()).into_bytes(),
        der,
        token.into_bytes(),
        kubeconfig.into_bytes(),
        list.into_bytes(),
        moc.into_bytes(),
        cache.into_bytes(),
        br#"{"expires":"2026-07-08T04:00:54+0000","id":"gAAAAAB"}"#.to_vec(),
    ]
}

fn mutate(rng: &mut Rng, input: &[u8]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        if out.is_empty() {
            out.push(rng.next() as u8);
            continue;
        }
        let at = rng.below(out.len());
        match rng.below(6) {
            0 => out[at] ^= 1 << rng.below(8),
            1 => out[at] = rng.next() as u8,
            2 => out.truncate(at),
            3 => {
                let len = rng.below(64).min(out.len() - at);
                let chunk = out[at..at + len].to_vec();
                let to = rng.below(out.len());
                out.splice(to..to, chunk);
            }
            4 => {
                out.remove(at);
            }
            _ => out.insert(at, b"\n:-[{\"'=.\x30\x82"[rng.below(11)]),
        }
    }
    out
}

#[test]
fn mutated_inputs_never_panic_or_leak() {
    let seeds = seeds();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let names = ["input", "tls.crt", "token", "dir/config"];
    for round in 0..30_000 {
        let seed = &seeds[round % seeds.len()];
        let input = mutate(&mut rng, seed);
        let name = names[rng.below(names.len())];
        let parsed = parse_file(name, &input);
        for e in &parsed.errors {
            assert!(
                !e.message.contains(TOKEN_SECRET),
                "round {round}: {}",
                e.message
            );
            assert!(!e.message.contains(REFRESH), "round {round}: {}", e.message);
            assert!(!e.message.contains("eyJ"), "round {round}: {}", e.message);
        }
        let r = FileRef {
            path: name.into(),
            from: "k".into(),
            entry: "e".into(),
            kind: [RefKind::Certificates, RefKind::Token, RefKind::Any][round % 3],
            source: Source::Kubeconfig,
            optional: false,
        };
        let _ = parse_reference(&r, &input);
    }
}

/// The PKCS#7 seeds are what they claim: one certificate each, whether
/// DER, BER with indefinite lengths or PEM, and the fuzzing entry point
/// reads the DER alike.
#[test]
fn pkcs7_seeds_give_their_certificate() {
    let s = seeds();
    for seed in &s[..3] {
        let parsed = parse_file("bundle.p7b", seed);
        assert_eq!(
            (parsed.credentials.len(), parsed.errors.len()),
            (1, 0),
            "{parsed:?}"
        );
    }
    assert_eq!(super::fuzzing::pkcs7("x", &s[1]).credentials.len(), 1);
    let key = parse_file("id.der", &s[3]);
    assert!(
        key.credentials.is_empty() && key.errors.is_empty(),
        "{key:?}"
    );
}
