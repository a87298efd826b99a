//! `/metrics` and `/` in gzip for the clients that ask (Prometheus always
//! does): exact headers, `Content-Length` for each coding, and a body
//! that decompresses to the plain page, checked with raw requests, curl and
//! a real Prometheus scraping through a proxy that records what it sees.

use crate::support::prometheus::{PROMETHEUS, Prometheus, require};
use crate::support::*;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use time::macros::datetime;

/// A response as bytes: the body may be gzip.
struct Raw {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Raw {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

fn raw(port: u16, method: &str, path: &str, headers: &[(&str, &str)]) -> Raw {
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).expect("connect to lapse");
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut request =
        format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    tcp.write_all(request.as_bytes()).unwrap();
    let mut bytes = Vec::new();
    tcp.read_to_end(&mut bytes).expect("read the response");
    let end = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a header block");
    let head = String::from_utf8(bytes[..end].to_vec()).expect("an ASCII header");
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Raw {
        status,
        headers,
        body: bytes[end + 4..].to_vec(),
    }
}

fn gunzip(bytes: &[u8]) -> String {
    let mut out = String::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_string(&mut out)
        .expect("a gzip body");
    out
}

/// Lapse's own process metrics (CPU, memory, descriptors) move between
/// two requests; the rest of the page does not within one second.
fn steady(page: &str) -> String {
    page.lines()
        .filter(|l| !l.starts_with("process_"))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// Forty certificates, so the page is worth compressing.
fn tree(s: &Scratch) {
    let ca = Cert::ca(
        "gzip-ca",
        datetime!(2025-01-01 0:00 UTC),
        datetime!(2040-01-01 0:00 UTC),
    );
    for i in 0..40 {
        let leaf = ca.issue(
            &format!("web-{i}.example"),
            datetime!(2025-07-01 0:00 UTC),
            datetime!(2031-07-01 12:34 UTC),
        );
        s.write(&format!("certs/web-{i}.crt"), &leaf.pem);
    }
}

/// A plain and a gzip GET of `path`, repeated until both saw the same
/// second (the page has two families that read the clock).
fn plain_and_gzip(port: u16, path: &str) -> (Raw, Raw) {
    for _ in 0..10 {
        let plain = raw(port, "GET", path, &[]);
        let gz = raw(port, "GET", path, &[("Accept-Encoding", "gzip")]);
        if steady(&String::from_utf8_lossy(&plain.body)) == steady(&gunzip(&gz.body)) {
            return (plain, gz);
        }
    }
    panic!("{path}: the gzip page never matched the plain one");
}

#[test]
fn metrics_are_gzip_encoded_when_asked_and_decompress_to_the_plain_page() {
    let s = Scratch::new();
    tree(&s);
    let lapse = s.serve().arg("certs").start();
    let (plain, gz) = plain_and_gzip(lapse.port, "/metrics");

    assert_eq!(plain.status, 200);
    assert_eq!(plain.header("content-encoding"), None);
    assert_eq!(plain.header("vary"), Some("Accept-Encoding"));
    assert_eq!(
        plain.header("content-length"),
        Some(plain.body.len().to_string().as_str())
    );
    assert_eq!(
        plain.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );

    assert_eq!(gz.status, 200);
    assert_eq!(gz.header("content-encoding"), Some("gzip"));
    assert_eq!(gz.header("vary"), Some("Accept-Encoding"));
    assert_eq!(
        gz.header("content-length"),
        Some(gz.body.len().to_string().as_str())
    );
    assert_eq!(gz.header("content-type"), plain.header("content-type"));
    assert!(
        gz.body.len() * 4 < plain.body.len(),
        "gzip {} bytes, plain {}",
        gz.body.len(),
        plain.body.len()
    );
    assert_contains(&gunzip(&gz.body), "lapse_credential_expires_in_seconds{");

    // HEAD: the same headers, no body (the length as a GET's in the same
    // second; lapse's CPU seconds may add a digit between the two).
    let same_length = (0..10).any(|_| {
        let head = raw(
            lapse.port,
            "HEAD",
            "/metrics",
            &[("Accept-Encoding", "gzip")],
        );
        let get = raw(
            lapse.port,
            "GET",
            "/metrics",
            &[("Accept-Encoding", "gzip")],
        );
        assert_eq!(head.header("content-encoding"), Some("gzip"));
        assert!(head.body.is_empty());
        head.header("content-length") == Some(get.body.len().to_string().as_str())
    });
    assert!(same_length, "HEAD never gave the length of the GET's body");

    // OpenMetrics in gzip.
    let om = raw(
        lapse.port,
        "GET",
        "/metrics",
        &[
            ("Accept", "application/openmetrics-text; version=1.0.0"),
            ("Accept-Encoding", "gzip"),
        ],
    );
    assert_eq!(om.header("content-encoding"), Some("gzip"));
    assert!(gunzip(&om.body).ends_with("# EOF\n"));
}

#[test]
fn accept_encoding_q_values_choose_the_coding() {
    let s = Scratch::new();
    tree(&s);
    let lapse = s.serve().arg("certs").start();
    let coding = |accept: &str| {
        let r = raw(
            lapse.port,
            "GET",
            "/metrics",
            &[("Accept-Encoding", accept)],
        );
        (r.status, r.header("content-encoding").map(str::to_string))
    };
    let gzip = Some("gzip".to_string());
    assert_eq!(coding("gzip"), (200, gzip.clone()));
    assert_eq!(
        coding("br, gzip;q=0.8, identity;q=0.5"),
        (200, gzip.clone())
    );
    assert_eq!(coding("*"), (200, gzip.clone()));
    assert_eq!(coding("identity;q=0, gzip"), (200, gzip.clone()));
    assert_eq!(coding("gzip;q=0"), (200, None));
    assert_eq!(coding("gzip;q=0.5, identity"), (200, None));
    assert_eq!(coding("br, deflate"), (200, None));
    assert_eq!(coding(""), (200, None));

    let refused = raw(
        lapse.port,
        "GET",
        "/metrics",
        &[("Accept-Encoding", "identity;q=0")],
    );
    assert_eq!(refused.status, 406);
    assert_eq!(refused.header("vary"), Some("Accept-Encoding"));
    assert_eq!(
        String::from_utf8_lossy(&refused.body),
        "no acceptable content coding: lapse sends gzip or identity\n"
    );
    // Short answers are never refused for it.
    let health = raw(
        lapse.port,
        "GET",
        "/healthz",
        &[("Accept-Encoding", "*;q=0")],
    );
    assert_eq!((health.status, health.body), (200, b"ok\n".to_vec()));
}

#[test]
fn the_html_page_is_gzip_encoded_when_asked() {
    let s = Scratch::new();
    tree(&s);
    let lapse = s.serve().arg("certs").start();
    let (plain, gz) = plain_and_gzip(lapse.port, "/");
    assert_eq!(plain.header("content-encoding"), None);
    assert_eq!(gz.header("content-encoding"), Some("gzip"));
    assert_eq!(gz.header("vary"), Some("Accept-Encoding"));
    assert_eq!(
        gz.header("content-length"),
        Some(gz.body.len().to_string().as_str())
    );
    assert_eq!(gz.header("content-type"), Some("text/html; charset=utf-8"));
    assert_eq!(gunzip(&gz.body), String::from_utf8_lossy(&plain.body));
}

#[test]
fn curl_compressed_reads_the_same_page() {
    let s = Scratch::new();
    tree(&s);
    let lapse = s.serve().arg("certs").start();
    let url = format!("http://127.0.0.1:{}/metrics", lapse.port);
    for _ in 0..10 {
        let plain = raw(lapse.port, "GET", "/metrics", &[]);
        let out = std::process::Command::new("curl")
            .args(["-sS", "--compressed", "-D", "-", &url])
            .output()
            .expect("run curl");
        let text = assert_success("curl --compressed", &out);
        let (head, body) = text.split_once("\r\n\r\n").expect("headers then body");
        assert_contains(&head.to_ascii_lowercase(), "\r\ncontent-encoding: gzip");
        if steady(body) == steady(&String::from_utf8_lossy(&plain.body)) {
            return;
        }
    }
    panic!("curl --compressed never read the plain page");
}

/// Forwards connections from its port to `target`, keeping every byte
/// sent each way (both ways' first 1 MiB).
struct Proxy {
    port: u16,
    requests: Arc<Mutex<Vec<u8>>>,
    responses: Arc<Mutex<Vec<u8>>>,
}

fn pipe(mut from: TcpStream, mut to: TcpStream, seen: Arc<Mutex<Vec<u8>>>) {
    let mut buf = [0u8; 16 * 1024];
    while let Ok(n) = from.read(&mut buf) {
        if n == 0 || to.write_all(&buf[..n]).is_err() {
            break;
        }
        let mut seen = seen.lock().unwrap();
        if seen.len() < 1 << 20 {
            seen.extend_from_slice(&buf[..n]);
        }
    }
    let _ = to.shutdown(std::net::Shutdown::Write);
}

impl Proxy {
    fn start(target: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let responses = Arc::new(Mutex::new(Vec::new()));
        let (req, resp) = (requests.clone(), responses.clone());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else {
                    continue;
                };
                let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                let (req, resp) = (req.clone(), resp.clone());
                std::thread::spawn(move || pipe(client, server, req));
                std::thread::spawn(move || pipe(s2, c2, resp));
            }
        });
        Proxy {
            port,
            requests,
            responses,
        }
    }

    fn seen(&self, which: &Mutex<Vec<u8>>) -> String {
        String::from_utf8_lossy(&which.lock().unwrap()).to_ascii_lowercase()
    }
}

#[test]
fn prometheus_asks_for_gzip_and_reads_exact_values_from_it() {
    require(PROMETHEUS);
    let s = Scratch::new();
    tree(&s);
    let lapse = s.serve().arg("certs").start();
    let proxy = Proxy::start(lapse.port);
    let prometheus = Prometheus::start(&s, proxy.port);

    let result = prometheus
        .query_until_present("lapse_credential_validity_seconds{path=\"certs/web-17.crt\"}");
    assert_eq!(result.len(), 1, "{result:#?}");
    assert_eq!(
        result[0]["value"][1],
        (unix(datetime!(2031-07-01 12:34 UTC)) - unix(datetime!(2025-07-01 0:00 UTC))).to_string()
    );
    let count = prometheus.query("count(lapse_credential_info)");
    assert_eq!(count[0]["value"][1], "40", "{count:#?}");

    let requests = proxy.seen(&proxy.requests);
    assert_contains(&requests, "get /metrics http/1.1\r\n");
    assert_contains(&requests, "\r\naccept-encoding: gzip\r\n");
    let responses = proxy.seen(&proxy.responses);
    assert_contains(&responses, "http/1.1 200 ok\r\n");
    assert_contains(&responses, "\r\ncontent-encoding: gzip\r\n");
    assert_contains(&responses, "\r\nvary: accept-encoding\r\n");
}
