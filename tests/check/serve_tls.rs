//! `--web.config.file` (the exporter-toolkit format): TLS with a
//! certificate lapse is given, basic auth against bcrypt hashes on every
//! endpoint, a bad file refused at start-up naming each field, and a
//! serving certificate replaced on disk served to new connections.

use crate::support::*;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, SerialNumber};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;
use std::time::Instant;
use time::macros::datetime;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};

const USER: &str = "prometheus";
const PASSWORD: &str = "correct horse battery staple";

/// The CA that signs lapse's own serving certificates.
struct WebCa {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

impl WebCa {
    fn new() -> WebCa {
        let ca_key = KeyPair::generate().expect("generate a key");
        let mut ca = CertificateParams::default();
        ca.distinguished_name.push(DnType::CommonName, "web-ca");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.not_before = datetime!(2025-01-01 0:00 UTC);
        ca.not_after = datetime!(2040-01-01 0:00 UTC);
        let ca_cert = ca.self_signed(&ca_key).expect("self-sign");
        WebCa {
            issuer: Issuer::new(ca, ca_key),
            pem: ca_cert.pem(),
        }
    }

    /// A `localhost` / `127.0.0.1` certificate with this serial, valid
    /// until `not_after`: (certificate PEM, key PEM).
    fn server(&self, serial: u64, not_after: time::OffsetDateTime) -> (String, String) {
        let key = KeyPair::generate().expect("generate a key");
        let mut leaf =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
                .expect("server names");
        leaf.distinguished_name.push(DnType::CommonName, "lapse");
        leaf.serial_number = Some(SerialNumber::from(serial));
        leaf.not_before = datetime!(2025-01-01 0:00 UTC);
        leaf.not_after = not_after;
        let cert = leaf.signed_by(&key, &self.issuer).expect("sign");
        (cert.pem(), key.serialize_pem())
    }
}

/// A CA and a `localhost` / `127.0.0.1` server certificate it signed,
/// written as `web/server.crt` and `web/server.key`; returns the CA's PEM.
fn server_certificate(s: &Scratch) -> String {
    let ca = WebCa::new();
    let (cert, key) = ca.server(1, datetime!(2039-01-01 0:00 UTC));
    s.write("web/server.crt", cert);
    s.write("web/server.key", key);
    ca.pem
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

/// The serial and `not_after` (Unix seconds) of the certificate lapse
/// presents to a new connection from a client trusting `ca_pem`.
fn served_certificate(ca_pem: &str, port: u16) -> std::io::Result<(u64, i64)> {
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca_pem.as_bytes()).expect("CA PEM"))
        .expect("a usable CA");
    let config =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
    let name = ServerName::try_from("localhost").expect("a server name");
    let mut conn =
        rustls::ClientConnection::new(Arc::new(config), name).map_err(std::io::Error::other)?;
    let mut tcp = TcpStream::connect(("127.0.0.1", port))?;
    tcp.set_read_timeout(Some(DEADLINE))?;
    while conn.is_handshaking() {
        conn.complete_io(&mut tcp)?;
    }
    let der = conn
        .peer_certificates()
        .and_then(|chain| chain.first())
        .expect("the server presents a certificate")
        .to_vec();
    let (_, cert) = x509_parser::parse_x509_certificate(&der).expect("a certificate");
    let serial = cert
        .raw_serial()
        .iter()
        .fold(0u64, |serial, byte| serial << 8 | u64::from(*byte));
    Ok((serial, cert.validity().not_after.timestamp()))
}

/// Connects until the server presents the certificate with `serial`.
#[track_caller]
fn wait_for_serial(server: &Server, ca_pem: &str, serial: u64) -> (u64, i64) {
    let started = Instant::now();
    loop {
        let served = served_certificate(ca_pem, server.port);
        if let Ok(found) = served
            && found.0 == serial
        {
            println!(
                "serial {serial}: served after {} ms",
                started.elapsed().as_millis()
            );
            return found;
        }
        if started.elapsed() > DEADLINE {
            panic!(
                "serial {serial} not served within {DEADLINE:?} (last: {served:?})\n--- stderr ---\n{}",
                server.stderr()
            );
        }
        std::thread::sleep(POLL);
    }
}

/// Writes `contents` next to `rel` and renames it into place.
fn replace(s: &Scratch, rel: &str, contents: &str) {
    let tmp = format!("{rel}.new");
    s.write(&tmp, contents);
    std::fs::rename(s.path(&tmp), s.path(rel)).expect("rename into place");
}

const RELOAD_FAILURES: &str = "lapse_web_certificate_reload_failures_total";

#[test]
fn a_replaced_serving_certificate_is_served_to_new_connections() {
    let s = Scratch::new();
    let ca = WebCa::new();
    let (cert, key) = ca.server(1, datetime!(2039-01-01 0:00 UTC));
    s.write("web/server.crt", &cert);
    s.write("web/server.key", &key);
    s.write(
        "web/web.yml",
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n",
    );
    watched_cert(&s);
    let server = s
        .serve()
        .args(["certs", "--web.config.file", "web/web.yml"])
        .start_with(Client::tls(&ca.pem));
    let first = served_certificate(&ca.pem, server.port).expect("a handshake");
    assert_eq!(first, (1, unix(datetime!(2039-01-01 0:00 UTC))));

    // cert-manager's rotation: a new key and certificate in place of the old.
    let (cert, key) = ca.server(2, datetime!(2039-06-01 0:00 UTC));
    replace(&s, "web/server.key", &key);
    replace(&s, "web/server.crt", &cert);
    let second = wait_for_serial(&server, &ca.pem, 2);
    assert_eq!(second, (2, unix(datetime!(2039-06-01 0:00 UTC))));
    assert_eq!(server.metrics().value(RELOAD_FAILURES, &[]), 0.0);

    // A certificate whose key is not the one beside it is refused: the
    // last good pair is kept, and the failure is logged once and counted.
    let (cert, _) = ca.server(3, datetime!(2039-09-01 0:00 UTC));
    replace(&s, "web/server.crt", &cert);
    server.wait_for("the failed reload counted", |m| {
        m.value(RELOAD_FAILURES, &[]) == 1.0
    });
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(600));
        let served = served_certificate(&ca.pem, server.port).expect("a handshake");
        assert_eq!(served, second);
    }
    assert_eq!(server.metrics().value(RELOAD_FAILURES, &[]), 1.0);
    // Named as at start-up: relative to where lapse runs.
    let logged = "serving certificate not reloaded, keeping the previous one: \
                  tls_server_config.key_file: web/server.key: does not match the certificate's public key";
    let stderr = server.stderr();
    assert_eq!(
        stderr.matches(logged).count(),
        1,
        "{logged}\n--- stderr ---\n{stderr}"
    );

    // Fixed, the new pair is served.
    let (cert, key) = ca.server(4, datetime!(2039-12-01 0:00 UTC));
    replace(&s, "web/server.key", &key);
    replace(&s, "web/server.crt", &cert);
    wait_for_serial(&server, &ca.pem, 4);
}
