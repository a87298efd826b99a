//! `--web.config.file` (the exporter-toolkit format): TLS with a
//! certificate lapse is given, basic auth against bcrypt hashes on every
//! endpoint, and a bad file refused at start-up naming each field.

use crate::support::*;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use std::time::Duration;
use time::macros::datetime;

const USER: &str = "prometheus";
const PASSWORD: &str = "correct horse battery staple";

/// A CA and a `localhost` / `127.0.0.1` server certificate it signed,
/// written as `web/server.crt` and `web/server.key`; returns the CA's PEM.
fn server_certificate(s: &Scratch) -> String {
    let ca_key = KeyPair::generate().expect("generate a key");
    let mut ca = CertificateParams::default();
    ca.distinguished_name.push(DnType::CommonName, "web-ca");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.not_before = datetime!(2025-01-01 0:00 UTC);
    ca.not_after = datetime!(2040-01-01 0:00 UTC);
    let ca_cert = ca.self_signed(&ca_key).expect("self-sign");
    let issuer = Issuer::new(ca, ca_key);

    let key = KeyPair::generate().expect("generate a key");
    let mut leaf = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
        .expect("server names");
    leaf.distinguished_name.push(DnType::CommonName, "lapse");
    leaf.not_before = datetime!(2025-01-01 0:00 UTC);
    leaf.not_after = datetime!(2039-01-01 0:00 UTC);
    let cert = leaf.signed_by(&key, &issuer).expect("sign");
    s.write("web/server.crt", cert.pem());
    s.write("web/server.key", key.serialize_pem());
    ca_cert.pem()
}

/// TLS plus one basic-auth user, as `web/web.yml`.
fn web_config(s: &Scratch) -> String {
    let ca = server_certificate(s);
    let hash = bcrypt::hash(PASSWORD, 4).expect("bcrypt");
    s.write(
        "web/web.yml",
        format!(
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n\
             basic_auth_users:\n  {USER}: '{hash}'\n"
        ),
    );
    ca
}

fn watched_cert(s: &Scratch) -> Cert {
    let ca = Cert::ca(
        "tls-test-ca",
        datetime!(2025-01-01 0:00 UTC),
        datetime!(2040-01-01 0:00 UTC),
    );
    let leaf = ca.issue(
        "watched.example",
        datetime!(2025-05-01 0:00 UTC),
        datetime!(2031-05-01 0:00 UTC),
    );
    s.write("certs/watched.crt", &leaf.pem);
    leaf
}

#[test]
fn tls_and_basic_auth_on_every_endpoint() {
    let s = Scratch::new();
    let ca = web_config(&s);
    let leaf = watched_cert(&s);
    let authorized = Client::tls(&ca).basic_auth(USER, PASSWORD);
    let server = s
        .serve()
        .args(["certs", "--web.config.file", "web/web.yml"])
        .start_with(authorized.clone());

    let m = server.metrics();
    m.assert_window(
        &[
            ("path", "certs/watched.crt"),
            ("fingerprint", &leaf.fingerprint_label()),
        ],
        unix(datetime!(2025-05-01 0:00 UTC)),
        unix(datetime!(2031-05-01 0:00 UTC)),
    );
    // lapse does not report its own serving key or certificate unless asked.
    assert_eq!(m.paths(), ["certs/watched.crt"]);

    // Plain HTTP to the TLS port gets no HTTP answer.
    let plain = Client::plain().request(server.port, "GET", "/metrics", &[]);
    assert!(plain.is_err(), "plain HTTP was answered: {plain:?}");

    let anonymous = Client::tls(&ca);
    let wrong = Client::tls(&ca).basic_auth(USER, "wrong password");
    let stranger = Client::tls(&ca).basic_auth("stranger", PASSWORD);
    for path in ["/metrics", "/", "/healthz", "/readyz", "/nope"] {
        for (who, client) in [
            ("no credentials", &anonymous),
            ("wrong password", &wrong),
            ("unknown user", &stranger),
        ] {
            let r = client
                .request(server.port, "GET", path, &[])
                .unwrap_or_else(|e| panic!("{path} ({who}): {e}"));
            assert_eq!(r.status, 401, "{path} ({who}): {r:?}");
            assert_eq!(
                r.header("www-authenticate"),
                Some("Basic realm=\"lapse\""),
                "{path} ({who})"
            );
            assert!(!r.body.contains("lapse_"), "{path} ({who}): {}", r.body);
        }
    }
    for (path, status) in [
        ("/metrics", 200),
        ("/", 200),
        ("/healthz", 200),
        ("/nope", 404),
    ] {
        let r = authorized
            .request(server.port, "GET", path, &[])
            .unwrap_or_else(|e| panic!("{path}: {e}"));
        assert_eq!(r.status, status, "{path}: {r:?}");
    }

    // A client that does not trust the server's CA refuses the handshake.
    let other_ca = Cert::ca(
        "someone-else",
        datetime!(2025-01-01 0:00 UTC),
        datetime!(2040-01-01 0:00 UTC),
    );
    let untrusting = Client::tls(&other_ca.pem).basic_auth(USER, PASSWORD);
    let refused = untrusting.request(server.port, "GET", "/metrics", &[]);
    assert!(
        refused.is_err(),
        "an untrusted server was accepted: {refused:?}"
    );

    let stderr = server.stderr();
    assert!(
        !stderr.contains(PASSWORD),
        "the password in the log:\n{stderr}"
    );
}

#[test]
fn web_config_from_lapse_yaml() {
    let s = Scratch::new();
    let ca = web_config(&s);
    watched_cert(&s);
    s.write(
        "lapse.yaml",
        "files:\n  paths: [certs]\nweb_config_file: web/web.yml\n",
    );
    let server = s
        .serve()
        .args(["--config", "lapse.yaml"])
        .start_with(Client::tls(&ca).basic_auth(USER, PASSWORD));
    assert_eq!(server.metrics().paths(), ["certs/watched.crt"]);
    let anonymous = Client::tls(&ca).request(server.port, "GET", "/metrics", &[]);
    assert_eq!(anonymous.expect("a TLS answer").status, 401);
}

#[test]
fn a_bad_web_config_stops_start_up_naming_every_field() {
    let s = Scratch::new();
    watched_cert(&s);
    s.write(
        "web.yml",
        "tls_server_config:\n  cert_file: missing.crt\n  key_file: missing.key\n  min_version: TLS10\n\
         basic_auth_users:\n  alice: not-a-hash\nhttp_server_config:\n  headers:\n    X-Powered-By: lapse\n\
         surprise: 1\n",
    );
    let out = s
        .serve()
        .args(["certs", "--web.config.file", "web.yml"])
        .run_to_exit(Duration::from_secs(5));
    out.assert_code(3);
    for field in [
        "tls_server_config.cert_file: cannot read",
        "tls_server_config.key_file: cannot read",
        "tls_server_config.min_version: TLS10 is not supported",
        "basic_auth_users.alice: not a bcrypt hash",
        "http_server_config.headers.X-Powered-By: this header cannot be set",
        "surprise: unknown field",
    ] {
        assert_contains(&out.stderr, &format!("lapse: web.yml: {field}"));
    }
    assert!(!out.stderr.contains("not-a-hash"), "{}", out.stderr);
}
