//! Property tests on stable, run by every `cargo test`: arbitrary and
//! mutated inputs never panic the parsers, never lose the file name and
//! never make them show a secret; PEM bundles give each certificate; the
//! file read cap and the YAML budget hold. `fuzz/` holds the
//! coverage-guided counterparts, and `write_fuzz_seeds` below writes their
//! seed corpus from the same fixtures.
//!
//! Failures are not persisted (`failure_persistence: None`): a plain
//! `cargo test` would otherwise write `proptest-regressions/` files into
//! `src/`. A failing case prints its minimal input; it becomes an explicit
//! regression test with the bytes inline, as fuzz findings do.

use super::{FileRef, Parsed, RefKind, fuzzing, parse_file, parse_file_with, parse_reference};
use crate::credential::{ErrorReason, Kind, Source};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use proptest::prelude::*;
use proptest::sample::Index;
use std::sync::OnceLock;

// Secrets planted in the fixtures. None may ever appear in a credential,
// an error or a reference.
const BOOTSTRAP_SECRET: &str = "s3cr3tb00tstrap9";
const REFRESH: &str = "opaque-refresh-7f3e9c1d2b";
const P12_PASSWORD: &str = "p12-Pa55word-planted";
const SIGNATURE: &str = "c2lnbmF0dXJlLXBsYW50ZWQ";
const ACCESS_TOKEN: &str = "ya29.planted-access-token-0042";
const KEYSTONE_ID: &str = "gAAAAABplantedKeystoneTokenId";
const EXEC_TOKEN: &str = "exec-token-planted-5a17";

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

struct TestCert {
    pem: String,
    der: Vec<u8>,
    not_after: i64,
    key_pem: String,
    key_der: Vec<u8>,
}

fn cert(cn: &str, not_after: i64) -> TestCert {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec![format!("{cn}.example")]).unwrap();
    params.not_before = time::OffsetDateTime::from_unix_timestamp(not_after - 86_400).unwrap();
    params.not_after = time::OffsetDateTime::from_unix_timestamp(not_after).unwrap();
    let c = params.self_signed(&key).unwrap();
    TestCert {
        pem: c.pem(),
        der: c.der().to_vec(),
        not_after,
        key_pem: key.serialize_pem(),
        key_der: key.serialize_der(),
    }
}

/// A PKCS#12 store holding `c` and its key. Few iterations: the parsers'
/// cost is not under test here.
fn pkcs12(c: &TestCert, password: &str) -> Vec<u8> {
    use p12_keystore::{Certificate, KeyStore, KeyStoreEntry, PrivateKey, PrivateKeyChain};
    let key = PrivateKey::from_der(&c.key_der).unwrap();
    let chain = [Certificate::from_der(&c.der).unwrap()];
    let mut store = KeyStore::new();
    store.add_entry(
        "leaf",
        KeyStoreEntry::PrivateKeyChain(PrivateKeyChain::new("key-1", key, chain)),
    );
    store
        .writer(password)
        .encryption_iterations(16)
        .mac_iterations(16)
        .write()
        .unwrap()
}

fn b64(bytes: impl AsRef<[u8]>) -> String {
    STANDARD.encode(bytes)
}

fn jwt(claims: &str) -> String {
    format!(
        "{}.{}.{SIGNATURE}",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(claims)
    )
}

/// A pool of certificates with distinct, known expiries.
fn pool() -> &'static [TestCert] {
    static POOL: OnceLock<Vec<TestCert>> = OnceLock::new();
    POOL.get_or_init(|| {
        (0..6)
            .map(|i| cert(&format!("c{i}"), 1_700_000_000 + i * 7_777_777 + i * i * 13))
            .collect()
    })
}

/// One seed: the fuzz target it feeds, a file name, and the bytes (for
/// targets that read a leading selector byte, the bytes after it).
struct Seed {
    target: &'static str,
    name: &'static str,
    selector: Option<u8>,
    bytes: Vec<u8>,
}

fn seed(target: &'static str, name: &'static str, bytes: impl Into<Vec<u8>>) -> Seed {
    Seed {
        target,
        name,
        selector: None,
        bytes: bytes.into(),
    }
}

/// Every format lapse reads, each carrying planted secrets.
fn seeds() -> &'static [Seed] {
    static SEEDS: OnceLock<Vec<Seed>> = OnceLock::new();
    SEEDS.get_or_init(build_seeds)
}

fn build_seeds() -> Vec<Seed> {
    let [a, b, ..] = pool() else { unreachable!() };
    let id_token = jwt(r#"{"sub":"alice","iss":"https://idp","exp":1800000000,"iat":1700000000}"#);
    let bound = jwt(
        r#"{"sub":"system:serviceaccount:ns:sa","exp":1800000000,"iat":1700000000,"nbf":1700000000,"kubernetes.io":{"namespace":"ns","serviceaccount":{"name":"sa"},"warnafter":1790000000}}"#,
    );
    let legacy =
        jwt(r#"{"sub":"system:serviceaccount:ci:builder","iss":"kubernetes/serviceaccount"}"#);
    let kubeconfig = format!(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\ncontexts:\n- name: c\n  context: {{cluster: c, user: u}}\nclusters:\n- name: c\n  cluster:\n    server: https://k\n    certificate-authority-data: {ca}\n- name: d\n  cluster:\n    certificate-authority: pki/ca.crt\nusers:\n- name: u\n  user:\n    client-certificate-data: {leaf}\n    client-key-data: {key}\n- name: t\n  user:\n    token: {id_token}\n- name: f\n  user:\n    tokenFile: token\n    client-certificate: pki/client.crt\n- name: oidc\n  user:\n    auth-provider:\n      name: oidc\n      config:\n        id-token: {id_token}\n        refresh-token: {REFRESH}\n- name: gcp\n  user:\n    auth-provider:\n      name: gcp\n      config:\n        access-token: {ACCESS_TOKEN}\n        expiry: \"2026-07-08T04:00:54.123456789Z\"\n- name: azure\n  user:\n    auth-provider:\n      name: azure\n      config:\n        access-token: {id_token}\n        expires-on: \"1800000000\"\n- name: gke\n  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1beta1\n      command: gke-gcloud-auth-plugin\n- name: eks\n  user:\n    exec:\n      command: aws\n      args: [eks, get-token, --cluster-name, x]\n- name: kubelogin\n  user:\n    exec:\n      command: kubectl\n      args: [oidc-login, get-token, --oidc-issuer-url=https://idp]\n",
        ca = b64(&a.pem),
        leaf = b64(format!("{}{}", b.pem, a.pem)),
        key = b64(&b.key_pem),
    );
    let kubeconfig_json = format!(
        r#"{{"kind":"Config","clusters":[{{"name":"c","cluster":{{"certificate-authority-data":"{}"}}}}],"users":[{{"name":"u","user":{{"token":"{bound}","client-key-data":"{}"}}}}]}}"#,
        b64(&a.pem),
        b64(&a.key_pem)
    );
    let tls_secret = format!(
        r#"{{"apiVersion":"v1","kind":"Secret","type":"kubernetes.io/tls","metadata":{{"name":"web","namespace":"prod","annotations":{{"cert-manager.io/certificate-name":"web"}}}},"data":{{"tls.crt":"{}","tls.key":"{}","ca.crt":"{}"}}}}"#,
        b64(format!("{}{}", b.pem, a.pem)),
        b64(&b.key_pem),
        b64(&a.pem)
    );
    let list = format!(
        r#"{{"apiVersion":"v1","kind":"List","items":[{tls_secret},{{"kind":"Secret","type":"bootstrap.kubernetes.io/token","metadata":{{"name":"bootstrap-token-abcdef","namespace":"kube-system"}},"data":{{"token-id":"{}","token-secret":"{}","expiration":"{}","usage-bootstrap-authentication":"{}"}}}},{{"kind":"Secret","type":"kubernetes.io/service-account-token","metadata":{{"name":"builder-token","namespace":"ci","annotations":{{"kubernetes.io/service-account.name":"builder"}},"labels":{{"kubernetes.io/legacy-token-invalid-since":"2026-01-02"}}}},"data":{{"token":"{}","namespace":"{}","ca.crt":"{}"}}}},{{"kind":"Secret","type":"Opaque","metadata":{{"name":"keystore","namespace":"app"}},"data":{{"keystore.p12":"{}","keystore-password":"{}","bundle":"{}"}}}},{{"kind":"ConfigMap","metadata":{{"name":"kube-root-ca.crt","namespace":"default"}},"data":{{"ca.crt":{}}}}}]}}"#,
        b64("abcdef"),
        b64(BOOTSTRAP_SECRET),
        b64("2026-01-01T00:00:00Z"),
        b64("true"),
        b64(&legacy),
        b64("ci"),
        b64(&a.pem),
        b64(pkcs12(b, P12_PASSWORD)),
        b64(P12_PASSWORD),
        b64(&a.der),
        serde_json::to_string(&a.pem).unwrap(),
    );
    let secret_yaml = format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: admin-kubeconfig\n  namespace: kube-system\nstringData:\n  value: |\n{}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ca\ndata:\n  ca.crt: |\n{}\n",
        kubeconfig_json
            .lines()
            .map(|l| format!("    {l}"))
            .collect::<Vec<_>>()
            .join("\n"),
        a.pem
            .lines()
            .map(|l| format!("    {l}"))
            .collect::<Vec<_>>()
            .join("\n"),
    );
    let moc = format!(
        "name: nodeagent-node1\ntoken: {id_token}\ncertificate: {}\nclienttype: ExternalClient\ncloudfqdn: ca.example\ncloudport: 55000\ncloudauthport: 65000\n",
        b64(&a.pem)
    );
    let cloudconfig = format!(
        r#"{{"CloudCertificate":"{}","ClientCertificate":"{}","ClientKey":"{}","IdentityName":"node1"}}"#,
        b64(&a.pem),
        b64(&b.pem),
        b64(&b.key_pem)
    );
    let openstack = format!(
        r#"{{"expires":"2026-07-08T04:00:54+0000","id":"{KEYSTONE_ID}","project_id":"p","user_id":"u"}}"#
    );
    let keystone = format!(
        r#"{{"token":{{"expires_at":"2026-07-08T04:00:54.000000Z","issued_at":"2026-07-07T04:00:54.000000Z","audit_ids":["x"],"user":{{"name":"admin","id":"u"}},"methods":["password"]}},"x-subject-token":"{KEYSTONE_ID}"}}"#
    );
    let app_cred = r#"{"application_credential":{"id":"ac1","name":"deploy","expires_at":"2026-07-08T04:00:54.000000","secret":"app-cred-planted-secret"}}"#;
    let gke = format!(
        r#"{{"current_context":"c","access_token":"{ACCESS_TOKEN}","token_expiry":"2026-07-08T04:00:54.123456789Z"}}"#
    );
    let kubelogin = format!(r#"{{"id_token":"{id_token}","refresh_token":"{REFRESH}"}}"#);
    let azure = format!(r#"{{"access_token":"{ACCESS_TOKEN}","expires_on":"1800000000"}}"#);
    let exec_credential = format!(
        r#"{{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{{"token":"{EXEC_TOKEN}","expirationTimestamp":"2026-07-08T04:00:54Z","clientCertificateData":{}}}}}"#,
        serde_json::to_string(&a.pem).unwrap()
    );
    let presigned = "https://sts.us-east-1.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIA%2F20260708%2Fus-east-1%2Fsts%2Faws4_request&X-Amz-Date=20260708T040054Z&X-Amz-Expires=60&X-Amz-SignedHeaders=host%3Bx-k8s-aws-id&X-Amz-Signature=abc";
    let mut fernet = vec![0x80];
    fernet.extend_from_slice(&1_783_483_254u64.to_be_bytes());
    fernet.extend_from_slice(b"0123456789abcdefciphertext-and-hmac");
    let jwe = format!(
        "{}.a2V5.aXY.Y2lwaGVydGV4dA.dGFn",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"RSA-OAEP","enc":"A256GCM"}"#)
    );
    let x509 = |name, selector, bytes: Vec<u8>| Seed {
        selector: Some(selector),
        ..seed("x509", name, bytes)
    };
    let jwt_parts = |name, header: &str, payload: &str| {
        let mut bytes = vec![header.len() as u8];
        bytes.extend_from_slice(header.as_bytes());
        bytes.extend_from_slice(payload.as_bytes());
        Seed {
            selector: Some(0),
            ..seed("jwt", name, bytes)
        }
    };
    let raw = |name, selector, bytes: Vec<u8>| Seed {
        selector: Some(selector),
        ..seed("jwt", name, bytes)
    };
    vec![
        x509("pem", 0, a.pem.clone().into()),
        x509(
            "bundle-with-key",
            0,
            format!("subject=CN=b\n{}\n{}{}", b.pem, a.pem, b.key_pem).into(),
        ),
        x509("der", 0, a.der.clone()),
        x509("p12-empty-password", 0, pkcs12(a, "")),
        x509("p12-password", 1, pkcs12(b, P12_PASSWORD)),
        x509("pem-planted-key", 2, b.pem.clone().into()),
        jwt_parts(
            "bound",
            r#"{"alg":"RS256","kid":"k"}"#,
            r#"{"sub":"system:serviceaccount:ns:sa","exp":1800000000,"iat":1700000000,"nbf":1700000000,"kubernetes.io":{"warnafter":1790000000}}"#,
        ),
        jwt_parts(
            "fractional",
            r#"{"alg":"ES256","typ":"JWT"}"#,
            r#"{"sub":"a","exp":1800000000.5,"iss":"x"}"#,
        ),
        raw("eks", 1, presigned.into()),
        raw("fernet", 2, fernet[1..].to_vec()),
        raw("bootstrap", 3, format!("abcdef.{BOOTSTRAP_SECRET}").into()),
        raw("jwe", 3, jwe.into()),
        raw("opaque", 3, REFRESH.into()),
        seed("kubeconfig", "yaml", kubeconfig),
        seed("kubeconfig", "json", kubeconfig_json),
        seed("k8s_object", "list.json", list),
        seed("k8s_object", "tls-secret.json", tls_secret),
        seed("k8s_object", "secret-kubeconfig.yaml", secret_yaml),
        seed("token_cache", "moc.yaml", moc.clone()),
        seed("token_cache", "moc.b64", b64(&moc)),
        seed("token_cache", "cloudconfig", cloudconfig),
        seed("token_cache", "openstack.json", openstack),
        seed("token_cache", "keystone.json", keystone),
        seed("token_cache", "app-credential.json", app_cred),
        seed("token_cache", "gke.json", gke),
        seed("token_cache", "kubelogin.json", kubelogin),
        seed("token_cache", "azure.json", azure),
        seed("token_cache", "exec-credential.json", exec_credential),
    ]
}

/// The bytes a seed stands for as a whole file.
fn file_bytes(s: &Seed) -> Vec<u8> {
    match (s.target, s.selector) {
        ("jwt", Some(0)) => {
            let (len, rest) = s.bytes.split_first().unwrap();
            let (h, p) = rest.split_at(*len as usize);
            format!(
                "{}.{}.{SIGNATURE}",
                URL_SAFE_NO_PAD.encode(h),
                URL_SAFE_NO_PAD.encode(p)
            )
            .into()
        }
        ("jwt", Some(1)) => format!("k8s-aws-v1.{}", URL_SAFE_NO_PAD.encode(&s.bytes)).into(),
        ("jwt", Some(2)) => {
            let mut raw = vec![0x80];
            raw.extend_from_slice(&s.bytes);
            URL_SAFE_NO_PAD.encode(raw).into()
        }
        _ => s.bytes.clone(),
    }
}

/// Planted secrets and fragments of key text.
fn planted() -> Vec<String> {
    let mut secrets: Vec<String> = [
        BOOTSTRAP_SECRET,
        REFRESH,
        P12_PASSWORD,
        SIGNATURE,
        ACCESS_TOKEN,
        KEYSTONE_ID,
        EXEC_TOKEN,
        "app-cred-planted-secret",
    ]
    .map(String::from)
    .into();
    for c in pool() {
        secrets.push(c.key_pem.lines().nth(1).unwrap().to_string());
        secrets.push(b64(&c.key_pem)[8..40].to_string());
    }
    secrets
}

fn count(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .filter(|w| *w == needle)
        .count()
}

const NAMES: [&str; 5] = ["input", "tls.crt", "token", "dir/config", "-"];

/// Credentials, errors and references all name `name`.
fn assert_names(name: &str, parsed: &Parsed) {
    for c in &parsed.credentials {
        assert_eq!(&*c.path, name);
    }
    for e in &parsed.errors {
        assert_eq!(e.path, name);
    }
    for r in &parsed.refs {
        assert_eq!(r.from, name);
    }
}

fn reference(name: &str, kind: RefKind) -> FileRef {
    FileRef {
        path: name.into(),
        from: "kubeconfig".into(),
        entry: "users[u].client-certificate".into(),
        kind,
        source: Source::Kubeconfig,
        optional: false,
    }
}

#[derive(Clone, Debug)]
enum Mutation {
    FlipBit(Index, u8),
    SetByte(Index, u8),
    Truncate(Index),
    Remove(Index, u8),
    /// Copies a chunk to another place (splice).
    Splice(Index, u8, Index),
    /// Repeats a chunk in place.
    Duplicate(Index, u8, u8),
    Insert(Index, u8),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let syntax = prop::sample::select(b"\n:-[]{}\"',.=&*|>#\x30\x82\x00\xff ".to_vec());
    prop_oneof![
        (any::<Index>(), 0..8u8).prop_map(|(i, b)| Mutation::FlipBit(i, b)),
        (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::SetByte(i, b)),
        any::<Index>().prop_map(Mutation::Truncate),
        (any::<Index>(), 1..64u8).prop_map(|(i, n)| Mutation::Remove(i, n)),
        (any::<Index>(), 1..64u8, any::<Index>()).prop_map(|(i, n, t)| Mutation::Splice(i, n, t)),
        (any::<Index>(), 1..64u8, 1..8u8).prop_map(|(i, n, k)| Mutation::Duplicate(i, n, k)),
        (any::<Index>(), syntax).prop_map(|(i, b)| Mutation::Insert(i, b)),
    ]
}

fn apply(input: &[u8], mutations: &[Mutation]) -> Vec<u8> {
    let mut out = input.to_vec();
    for m in mutations {
        if out.is_empty() {
            break;
        }
        let len = out.len();
        let chunk = |at: usize, n: u8, out: &[u8]| at..(at + n as usize).min(out.len());
        match m {
            Mutation::FlipBit(i, b) => out[i.index(len)] ^= 1 << b,
            Mutation::SetByte(i, b) => out[i.index(len)] = *b,
            Mutation::Truncate(i) => out.truncate(i.index(out.len())),
            Mutation::Remove(i, n) => {
                let r = chunk(i.index(out.len()), *n, &out);
                out.drain(r);
            }
            Mutation::Splice(i, n, to) => {
                let piece = out[chunk(i.index(out.len()), *n, &out)].to_vec();
                let to = to.index(out.len() + 1);
                out.splice(to..to, piece);
            }
            Mutation::Duplicate(i, n, k) => {
                let r = chunk(i.index(out.len()), *n, &out);
                let piece = out[r.clone()].repeat(*k as usize);
                out.splice(r.end..r.end, piece);
            }
            Mutation::Insert(i, b) => out.insert(i.index(out.len() + 1), *b),
        }
    }
    out
}

/// Some YAML/JSON/PEM syntax to build structured-looking text from.
const FRAGMENTS: &[&str] = &[
    "apiVersion: v1\n",
    "kind: Config\n",
    "kind: Secret\n",
    "kind: List\n",
    "kind: ExecCredential\n",
    "clusters:\n",
    "users:\n",
    "- name: u\n",
    "  user:\n",
    "    token: ",
    "data:\n",
    "  tls.crt: ",
    "items: [",
    "{",
    "}",
    "[",
    "]",
    "\"",
    ":",
    ",",
    " ",
    "\n",
    "  ",
    "- ",
    "&a ",
    "*a",
    "!!binary ",
    "---\n",
    "|\n",
    "eyJhbGciOiJSUzI1NiJ9",
    ".",
    "eyJleHAiOjE4MDAwMDAwMDB9",
    "-----BEGIN CERTIFICATE-----\n",
    "-----END CERTIFICATE-----\n",
    "MIIB",
    "LS0tLS1CRUdJTi",
    "expires: 2026-07-08T04:00:54+0000\n",
    "id: gAAAAAB\n",
    "expires_at: ",
    "token_expiry: ",
    "1800000000",
    "9999999999999999999999",
    "-1e308",
    "null",
    "\u{feff}",
    "é",
];

proptest! {
    #![proptest_config(config(512))]

    /// Any bytes, under any name, read whole and as every kind of
    /// referenced file: no panic, and every result names the file.
    #[test]
    fn arbitrary_bytes_keep_the_file_name(
        bytes in prop::collection::vec(any::<u8>(), 0..2048),
        name in prop::sample::select(NAMES.to_vec()),
    ) {
        assert_names(name, &parse_file(name, &bytes));
        for kind in [RefKind::Certificates, RefKind::Token, RefKind::Any] {
            let parsed = parse_reference(&reference(name, kind), &bytes);
            assert_names(name, &parsed);
        }
    }

    /// Text assembled from YAML, JSON and PEM syntax reaches the
    /// structured parsers: no panic, every result names the file.
    #[test]
    fn structured_text_keeps_the_file_name(
        parts in prop::collection::vec(prop::sample::select(FRAGMENTS.to_vec()), 0..80),
        name in prop::sample::select(NAMES.to_vec()),
    ) {
        let text = parts.concat();
        let parsed = parse_file(name, text.as_bytes());
        assert_names(name, &parsed);
        if let Ok(docs) = fuzzing::documents(&text) {
            for doc in &docs {
                assert_names(name, &fuzzing::kubeconfig(name, doc));
                assert_names(name, &fuzzing::secret(name, doc, &[]));
                assert_names(name, &fuzzing::config_map(name, doc));
                assert_names(name, &fuzzing::token_cache(name, doc));
            }
        }
    }
}

proptest! {
    #![proptest_config(config(1024))]

    /// Mutations of every seed (bit flips, truncation, splices,
    /// duplication) never panic and never show a planted secret: not in a
    /// credential, an error or a reference. A secret the mutation copied
    /// is exempt: it may have landed in a name that is meant to be shown.
    #[test]
    fn mutated_seeds_never_show_a_secret(
        which in any::<Index>(),
        mutations in prop::collection::vec(mutation(), 1..6),
        name in prop::sample::select(NAMES.to_vec()),
    ) {
        let s = &seeds()[which.index(seeds().len())];
        let original = file_bytes(s);
        let input = apply(&original, &mutations);
        let passwords = [P12_PASSWORD.to_string()];
        let parsed = parse_file_with(name, &input, &passwords);
        assert_names(name, &parsed);
        let shown = format!("{parsed:?}");
        for secret in planted() {
            let copied = count(&input, secret.as_bytes()) > count(&original, secret.as_bytes());
            prop_assert!(
                copied || !shown.contains(&secret),
                "{} ({}) showed {secret}: {shown}", s.name, s.target
            );
        }
    }
}

/// `n` PEM blocks' worth of garbage: no `-` (so no armour) and no `:` (so
/// it never reads as YAML), and it ends its line.
fn garbage() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        any::<u8>().prop_filter("no armour", |b| *b != b'-' && *b != b':'),
        0..40,
    )
    .prop_map(|mut g| {
        g.push(b'\n');
        g
    })
}

#[derive(Clone, Debug)]
enum Block {
    Cert(Index),
    /// CERTIFICATE armour around text that is not base64.
    BadBase64,
    /// CERTIFICATE armour around base64 that is not a certificate.
    NotDer,
    /// A key: recognised, skipped, never an error.
    Key,
}

proptest! {
    #![proptest_config(config(64))]

    /// A bundle of K certificates with garbage before, between and after
    /// the blocks, some broken blocks and keys: exactly K certificates,
    /// in order, with their exact expiries and indexes, and one error per
    /// broken block naming the file.
    #[test]
    fn pem_bundles_give_every_certificate(
        blocks in prop::collection::vec(
            prop_oneof![
                4 => any::<Index>().prop_map(Block::Cert),
                1 => Just(Block::BadBase64),
                1 => Just(Block::NotDer),
                1 => Just(Block::Key),
            ],
            1..8,
        ),
        gaps in prop::collection::vec(garbage(), 9),
        crlf in any::<bool>(),
    ) {
        let mut text = Vec::new();
        let mut want = Vec::new();
        let mut broken = 0;
        let mut index = 0u32;
        for (block, gap) in blocks.iter().zip(&gaps) {
            text.extend_from_slice(gap);
            match block {
                Block::Cert(i) => {
                    let c = &pool()[i.index(pool().len())];
                    text.extend_from_slice(c.pem.as_bytes());
                    want.push((index, c.not_after));
                    index += 1;
                }
                Block::BadBase64 => {
                    text.extend_from_slice(b"-----BEGIN CERTIFICATE-----\nnot*base64!\n-----END CERTIFICATE-----\n");
                    broken += 1;
                    index += 1;
                }
                Block::NotDer => {
                    text.extend_from_slice(b"-----BEGIN CERTIFICATE-----\nMAMCAQE=\n-----END CERTIFICATE-----\n");
                    broken += 1;
                    index += 1;
                }
                Block::Key => text.extend_from_slice(pool()[0].key_pem.as_bytes()),
            }
        }
        text.extend_from_slice(&gaps[8]);
        if crlf {
            text = String::from_utf8_lossy(&text).replace('\n', "\r\n").into_bytes();
        }
        let name = "bundle.pem";
        let parsed = parse_file(name, &text);
        let got: Vec<(u32, i64)> = parsed
            .credentials
            .iter()
            .map(|c| (c.index.unwrap(), c.not_after.unwrap()))
            .collect();
        prop_assert_eq!(got, want);
        prop_assert!(parsed.credentials.iter().all(|c| c.kind == Kind::X509));
        prop_assert_eq!(parsed.errors.len(), broken, "{:?}", parsed.errors);
        for e in &parsed.errors {
            prop_assert_eq!(&e.path, name);
            prop_assert_eq!(e.reason, ErrorReason::Parse);
            prop_assert!(e.message.starts_with("certificate #"), "{}", e.message);
        }
    }
}

proptest! {
    #![proptest_config(config(32))]

    /// YAML nested past the budget's depth (flow sequences, flow maps or
    /// block mappings) is one error entry naming the file, not a stack
    /// overflow.
    #[test]
    fn yaml_depth_budget_holds(depth in 65usize..3000, style in 0..3u8) {
        let text = match style {
            0 => format!("token: {}x{}\n", "[".repeat(depth), "]".repeat(depth)),
            1 => format!("token: {}x{}\n", "{a: ".repeat(depth), "}".repeat(depth)),
            _ => {
                let depth = depth.min(300);
                let mut t = String::from("token:\n");
                for level in 1..=depth {
                    t.push_str(&" ".repeat(level));
                    t.push_str("a:\n");
                }
                t
            }
        };
        assert_one_yaml_error(&text, "YAML: nesting deeper than 64");
    }
}

fn assert_one_yaml_error(text: &str, message: &str) {
    let parsed = parse_file("deep.yaml", text.as_bytes());
    assert!(parsed.credentials.is_empty());
    assert_eq!(parsed.errors.len(), 1, "{:?}", parsed.errors);
    assert_eq!(&parsed.errors[0].path, "deep.yaml");
    assert_eq!(parsed.errors[0].message, message);
}

/// A billion laughs (each level names the previous one twice, 2^40
/// nodes) stops at the alias budget with one error entry. Not a proptest:
/// replaying up to the budget takes about a second in a debug build.
#[test]
fn yaml_alias_budget_holds() {
    let mut text = String::from("token: &a0 [x]\n");
    for level in 1..=40 {
        text.push_str(&format!("l{level}: &a{level} [*a{0}, *a{0}]\n", level - 1));
    }
    let started = std::time::Instant::now();
    assert_one_yaml_error(
        &text,
        "YAML: aliases expand to more than 250000 events (alias-bomb guard)",
    );
    // Generous: a loaded CI box; without the budget this never ends.
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
}

/// Writes the fuzz targets' seed corpus to `fuzz/seeds/<target>/` from the
/// fixtures above: `cargo test --lib write_fuzz_seeds -- --ignored`. Keys
/// and certificates are generated afresh, so the bytes differ per run.
#[test]
#[ignore = "writes files; run on purpose"]
fn write_fuzz_seeds() {
    // `cargo test` runs in the package root.
    let root = std::path::Path::new("fuzz/seeds");
    for s in seeds() {
        let mut bytes: Vec<u8> = s.selector.into_iter().collect();
        bytes.extend_from_slice(&s.bytes);
        let dir = root.join(s.target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(s.name), &bytes).unwrap();
        // parse_file's first byte picks one of four file names.
        let dir = root.join("parse_file");
        std::fs::create_dir_all(&dir).unwrap();
        let mut whole = vec![0];
        whole.extend_from_slice(&file_bytes(s));
        std::fs::write(dir.join(format!("{}-{}", s.target, s.name)), whole).unwrap();
    }
}

/// The seeds are what they claim to be: each gives credentials and no
/// error, so mutations of them start from every parser's happy path.
#[test]
fn every_seed_parses() {
    for s in seeds() {
        let parsed = parse_file_with("token", &file_bytes(s), &[P12_PASSWORD.to_string()]);
        assert!(
            !parsed.credentials.is_empty() && parsed.errors.is_empty(),
            "{} ({}): {parsed:?}",
            s.name,
            s.target
        );
    }
}

// The file read cap (`source::files::walk::read_capped`), which bounds what any
// parser is ever handed.

fn too_large_message(cap: u64) -> String {
    format!(
        "larger than the {} size cap; not read",
        crate::units::human_bytes(cap)
    )
}

proptest! {
    #![proptest_config(config(64))]

    /// A file of at most `cap` bytes is read whole; a larger one is
    /// exactly the too-large error naming it, never a truncated read.
    #[test]
    fn read_cap_holds_for_files(cap in 0u64..4096, delta in -3i64..=3, far in any::<bool>(), extra in 0u64..8192) {
        let size = if far { extra } else { (cap as i64 + delta).max(0) as u64 };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let content: Vec<u8> = (0..size).map(|i| i as u8).collect();
        std::fs::write(&path, &content).unwrap();
        match crate::source::files::walk::read_capped(&path, cap) {
            Ok(bytes) => {
                prop_assert!(size <= cap);
                prop_assert_eq!(bytes, content);
            }
            Err(e) => {
                prop_assert!(size > cap, "{}", e.message);
                prop_assert_eq!(e.reason, ErrorReason::TooLarge);
                prop_assert_eq!(e.path, path.display().to_string());
                prop_assert_eq!(e.message, too_large_message(cap));
            }
        }
    }
}

proptest! {
    #![proptest_config(config(24))]

    /// A pipe has no size to check first: more than `cap` bytes in it give
    /// the too-large error after reading exactly `cap + 1` of them.
    #[test]
    fn read_cap_reads_at_most_one_byte_over(cap in 0u64..4096, over in 1u64..4096) {
        use std::io::{Read, Write};
        let size = cap + over;
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status().unwrap();
        prop_assert!(made.success());
        // Our end stays open for writing, so the reader never sees EOF:
        // it can stop only at its cap. Everything fits the pipe buffer.
        let mut ours = std::fs::OpenOptions::new().read(true).write(true).open(&fifo).unwrap();
        ours.write_all(&vec![b'a'; size as usize]).unwrap();
        let err = crate::source::files::walk::read_capped(&fifo, cap).unwrap_err();
        prop_assert_eq!(err.reason, ErrorReason::TooLarge);
        prop_assert_eq!(err.message, too_large_message(cap));
        // What the reader left behind, up to a marker written after it.
        ours.write_all(b"Z").unwrap();
        let mut left = 0u64;
        let mut byte = [0u8];
        loop {
            ours.read_exact(&mut byte).unwrap();
            if byte[0] == b'Z' {
                break;
            }
            left += 1;
        }
        prop_assert_eq!(size - left, cap + 1, "bytes read from the pipe");
    }
}

// Regressions found by fuzzing, minimised, bytes inline.

/// fuzz `x509`: a one-line PEM key was taken for armour labelled with its
/// own body, and the "no matching END line" error quoted it.
#[test]
fn one_line_pem_key_is_not_quoted() {
    let name = "pki/tls.crt";
    let parsed = fuzzing::certificates(
        name,
        b"-----BEGIN PRIVATE KEY-----MIIEvSecretKeyBody-----END PRIVATE KEY-----\n",
        &[],
    );
    assert!(parsed.credentials.is_empty());
    assert_eq!(parsed.errors.len(), 1, "{:?}", parsed.errors);
    let e = &parsed.errors[0];
    assert_eq!((e.path.as_str(), e.reason), (name, ErrorReason::Parse));
    assert_eq!(
        e.message,
        "no certificate found (expected PEM, DER or PKCS#12)"
    );
}

/// fuzz `x509`: a YAML plain scalar folds a PEM key onto one line; the
/// certificate beside it was looked at, and the key's body quoted.
#[test]
fn folded_pem_in_yaml_is_not_quoted() {
    let text = b"---\nz\n-----BEGIN CERTIFICATE-----\n\n-----BEGIN PRIVATE KEY-----\nS3cr3tK3y\n-----END PRIVATE KEY-----\n";
    let parsed = parse_file("values.yaml", text);
    assert!(parsed.credentials.is_empty(), "{parsed:?}");
    assert!(parsed.errors.is_empty(), "{parsed:?}");
}

/// An EKS token whose `X-Amz-Date` has a multi-byte character where the
/// date is cut into fields: slicing it panicked.
#[test]
fn eks_date_with_multibyte_character() {
    let url = "https://sts.amazonaws.com/?X-Amz-Date=202\u{e9}708T040054Z";
    let token = format!("k8s-aws-v1.{}", URL_SAFE_NO_PAD.encode(url));
    let c = super::token_credential(&token).unwrap();
    assert_eq!((c.kind, c.not_after), (Kind::OpaqueToken, None));
}

/// An expiry with a multi-byte character five bytes from its end: the
/// `+0000` zone check split the string inside it and panicked.
#[test]
fn expiry_with_multibyte_character_near_the_end() {
    let parsed = parse_file(
        "cache.json",
        "{\"access_token\":\"ya29.x\",\"token_expiry\":\"a\u{e9}1234\"}".as_bytes(),
    );
    assert!(parsed.credentials.is_empty(), "{parsed:?}");
    assert_eq!(parsed.errors.len(), 1, "{:?}", parsed.errors);
    assert_eq!(parsed.errors[0].path, "cache.json");
    assert_eq!(parsed.errors[0].entry.as_deref(), Some("access_token"));
    assert_eq!(parsed.errors[0].message, "expiry field is not a date");
}
