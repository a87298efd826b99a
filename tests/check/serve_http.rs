//! `lapse serve` over HTTP: health and readiness, routing and methods,
//! content negotiation between OpenMetrics and the classic text format,
//! the credentials page in expiry order, no secret text anywhere, and a
//! clean exit on SIGTERM.

use crate::support::*;
use serde_json::json;
use std::time::Duration;
use time::OffsetDateTime;
use time::macros::datetime;

const OPENMETRICS: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

pub(super) fn one_cert(s: &Scratch) -> Cert {
    let ca = Cert::ca(
        "http-ca",
        datetime!(2025-01-01 0:00 UTC),
        datetime!(2040-01-01 0:00 UTC),
    );
    let leaf = ca.issue(
        "web.example",
        datetime!(2025-06-01 0:00 UTC),
        datetime!(2031-06-01 0:00 UTC),
    );
    s.write("certs/web.crt", &leaf.pem);
    leaf
}

#[test]
fn health_readiness_routes_and_methods() {
    let s = Scratch::new();
    one_cert(&s);
    let server = s.serve().arg("certs").start();

    let health = server.get("/healthz");
    assert_eq!((health.status, health.body.as_str()), (200, "ok\n"));
    // start() waited for this; it stays ready.
    let ready = server.get("/readyz");
    assert_eq!((ready.status, ready.body.as_str()), (200, "ready\n"));

    let missing = server.get("/nope");
    assert_eq!(missing.status, 404, "{missing:?}");
    let missing = server.get("/metrics/extra");
    assert_eq!(missing.status, 404, "{missing:?}");

    for path in ["/metrics", "/", "/healthz"] {
        let post = server.request("POST", path, &[("Content-Length", "0")]);
        assert_eq!(post.status, 405, "POST {path}: {post:?}");
        assert_eq!(post.header("allow"), Some("GET, HEAD"), "POST {path}");
    }
    let head = server.request("HEAD", "/metrics", &[]);
    assert_eq!(head.status, 200, "{head:?}");
    assert_eq!(head.body, "", "HEAD has no body");
}

#[test]
fn content_negotiation_openmetrics_and_classic_text() {
    let s = Scratch::new();
    let leaf = one_cert(&s);
    let server = s.serve().arg("certs").start();

    let classic = server.get("/metrics");
    assert_eq!(classic.status, 200);
    assert_eq!(
        classic.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    assert!(
        !classic.body.contains("# EOF"),
        "classic text has no # EOF:\n{}",
        classic.body
    );
    let om = server.request("GET", "/metrics", &[("Accept", OPENMETRICS)]);
    assert_eq!(om.status, 200);
    assert!(
        om.header("content-type")
            .is_some_and(|t| t.starts_with("application/openmetrics-text")),
        "{:?}",
        om.header("content-type")
    );
    assert!(
        om.body.ends_with("# EOF\n"),
        "OpenMetrics ends with # EOF:\n{}",
        om.body
    );
    assert_eq!(om.body.matches("# EOF").count(), 1);

    for (format, body) in [("classic", &classic.body), ("OpenMetrics", &om.body)] {
        let m = Exposition::parse(body);
        let parse_errors = m.value(
            "lapse_errors_total",
            &[("source", "files"), ("reason", "parse")],
        );
        assert_eq!(parse_errors, 0.0, "{format}");
        let counters: Vec<&str> = m
            .samples
            .iter()
            .filter(|x| x.name.starts_with("lapse_errors"))
            .map(|x| x.name.as_str())
            .collect();
        assert!(
            counters.iter().all(|n| *n == "lapse_errors_total"),
            "{format}: {counters:?}"
        );
        let build = m.one("lapse_build_info", &[]);
        assert_eq!(
            build.label("version"),
            env!("CARGO_PKG_VERSION"),
            "{format}"
        );
        assert!(!build.label("revision").is_empty(), "{format}: {build:?}");
        assert_eq!(build.value, 1.0);
        let labels = [
            ("kind", "x509"),
            ("source", "file"),
            ("path", "certs/web.crt"),
            ("entry", ""),
            ("index", "0"),
            ("subject_cn", "web.example"),
            ("issuer_cn", "http-ca"),
        ];
        assert_eq!(
            m.value("lapse_credential_validity_seconds", &labels),
            (unix(datetime!(2031-06-01 0:00 UTC)) - unix(datetime!(2025-06-01 0:00 UTC))) as f64,
            "{format}"
        );
        // Empty labels are left out; serial and fingerprint are on the info series.
        let sample = m.one("lapse_credential_validity_seconds", &labels);
        assert_eq!(sample.labels.len(), 6, "{format}: {sample:?}");
        let info = m.one("lapse_credential_info", &labels);
        assert_eq!(info.label("fingerprint"), leaf.fingerprint_label());
        assert_eq!(info.labels.len(), 8, "{format}: {info:?}");
        assert_eq!(info.value, 1.0);
        assert_eq!(m.value("lapse_source_up", &[("source", "files")]), 1.0);
        assert_eq!(m.value("lapse_file_errors", &[]), 0.0);
    }
    // Type lines name the counter as each format wants it.
    assert_contains(&classic.body, "# TYPE lapse_errors_total counter\n");
    assert_contains(&om.body, "# TYPE lapse_errors counter\n");
}

/// A Unix time, truncated to seconds (rcgen's validity has no fractions).
fn at(t: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(t).expect("a valid time")
}

#[test]
fn page_lists_credentials_by_soonest_expiry_and_nothing_is_secret() {
    let s = Scratch::new();
    let now = unix_now();
    let ca = Cert::ca(
        "page-ca",
        datetime!(2019-01-01 0:00 UTC),
        datetime!(2045-01-01 0:00 UTC),
    );
    // Statuses against the real clock: the default thresholds are 30d and 7d.
    let expired = ca.issue(
        "expired.example",
        datetime!(2019-01-01 0:00 UTC),
        datetime!(2020-01-01 0:00 UTC),
    );
    let critical = ca.issue("critical.example", at(now - DAY), at(now + 3 * DAY));
    let warning = ca.issue("warning.example", at(now - DAY), at(now + 20 * DAY));
    let ok = ca.issue(
        "ok.example",
        datetime!(2025-01-01 0:00 UTC),
        datetime!(2039-01-01 0:00 UTC),
    );
    s.write("pki/z-expired.crt", &expired.pem);
    s.write("pki/y-critical.crt", &critical.pem);
    s.write("pki/x-warning.crt", &warning.pem);
    s.write("pki/a-ok.crt", &ok.pem);
    s.write("pki/a-ok.key", &ok.key_pem);
    let token = jwt(
        json!({"sub": "deployer", "exp": unix(datetime!(2035-01-01 0:00 UTC))}),
        "sig-serve-page-canary",
    );
    s.write("pki/deploy.jwt", &token);
    let forever = jwt(json!({"sub": "forever"}), "sig-serve-forever-canary");
    s.write("pki/legacy.token", &forever);

    let server = s.serve().args(["-vvv", "pki"]).start();
    let page = server.get("/");
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );

    // Rows in expiry order, each with its status.
    let rows: Vec<&str> = page.body.split("<tr>").skip(2).collect();
    let expected = [
        ("pki/z-expired.crt", "expired"),
        ("pki/y-critical.crt", "critical"),
        ("pki/x-warning.crt", "warning"),
        ("pki/deploy.jwt", "ok"),
        ("pki/a-ok.crt", "ok"),
        ("pki/legacy.token", "no-expiry"),
    ];
    assert_eq!(rows.len(), expected.len(), "{}", page.body);
    for (row, (path, status)) in rows.iter().zip(expected) {
        assert_contains(row, &format!("<td>{path}"));
        assert_contains(row, &format!("<td class=\"{status}\">{status}</td>"));
    }
    assert_contains(rows[4], "2025-01-01T00:00:00Z → 2039-01-01T00:00:00Z");

    let m = server.metrics();
    m.assert_window(
        &[("path", "pki/z-expired.crt")],
        unix(datetime!(2019-01-01 0:00 UTC)),
        unix(datetime!(2020-01-01 0:00 UTC)),
    );
    assert!(
        m.value(
            "lapse_credential_expires_in_seconds",
            &[("path", "pki/z-expired.crt")]
        ) <= 0.0
    );
    m.assert_window(&[("path", "pki/y-critical.crt")], now - DAY, now + 3 * DAY);
    assert!(
        m.value(
            "lapse_credential_expires_in_seconds",
            &[("path", "pki/y-critical.crt")]
        ) > 0.0
    );
    assert_eq!(
        m.value(
            "lapse_credential_no_expiry",
            &[("path", "pki/legacy.token"), ("kind", "jwt")]
        ),
        1.0
    );
    for family in [
        "lapse_credential_expires_in_seconds",
        "lapse_credential_validity_seconds",
    ] {
        assert!(
            m.find(family, &[("path", "pki/legacy.token")]).is_empty(),
            "{family} for a token that never expires"
        );
    }
    assert!(
        m.find("lapse_credential_info", &[("path", "pki/a-ok.key")])
            .is_empty()
    );

    let om = server.request("GET", "/metrics", &[("Accept", OPENMETRICS)]);
    let key_body = ok.key_pem_fragment();
    let signature = token.rsplit('.').next().expect("a signature segment");
    let key_b64 = b64(&ok.key_pem);
    let canaries = [
        ("JWT", token.as_str()),
        ("JWT signature", signature),
        ("token without expiry", forever.as_str()),
        ("private key", ok.key_pem.as_str()),
        ("private key body", key_body.as_str()),
        ("private key, base64", key_b64.as_str()),
    ];
    let stderr = server.stderr();
    assert_contains(&stderr, " level=debug ");
    for (where_, text) in [
        ("/", &page.body),
        ("/metrics", &m.text),
        ("/metrics (OpenMetrics)", &om.body),
        ("stderr with -vvv", &stderr),
    ] {
        for (what, secret) in canaries {
            assert!(
                !text.contains(secret),
                "{what} leaked into {where_}:\n{text}"
            );
        }
    }
}

#[test]
fn sigterm_exits_zero_promptly() {
    let s = Scratch::new();
    one_cert(&s);
    let server = s.serve().args(["-v", "certs"]).start();
    // An idle keep-alive connection, as a scraper holds between scrapes,
    // must not hold up the exit.
    let mut idle = std::net::TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
    std::io::Write::write_all(&mut idle, b"GET /metrics HTTP/1.1\r\nHost: lapse\r\n\r\n")
        .expect("send a keep-alive request");
    let mut first = [0u8; 12];
    std::io::Read::read_exact(&mut idle, &mut first).expect("read the status line");
    assert_eq!(&first, b"HTTP/1.1 200");
    let (status, took) = server.terminate(Duration::from_secs(10));
    println!("SIGTERM to exit: {} ms", took.as_millis());
    assert_eq!(
        status.code(),
        Some(0),
        "exit status after SIGTERM: {status}"
    );
    assert!(
        took < Duration::from_secs(3),
        "an idle keep-alive connection held up the exit for {took:?}"
    );
}
