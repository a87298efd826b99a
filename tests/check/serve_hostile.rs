//! `lapse serve` against hostile or broken clients: connections that send
//! nothing or half a header are closed after `http.header_timeout`, kept-alive
//! ones after `http.idle_timeout`; clients that request `/metrics` and never
//! read neither stop a real scrape nor delay a rotation; connections over
//! `http.max_connections` are answered 503, or make room by closing a stalled
//! one; a file-descriptor limit never turns into `accept failed`; and the
//! `http:` section's problems are named by field.

use crate::support::*;
use socket2::{Domain, Socket, Type};
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use time::OffsetDateTime;
use time::macros::datetime;

/// How long a test waits for the server to close a connection: far above
/// every timeout the tests configure, so only a hang fails it.
const GUARD: Duration = Duration::from_secs(30);
/// Bundles of repeated certificates make a page of several MiB, more than
/// the socket buffers of a client that never reads can absorb.
const BUNDLES: usize = 30;
const PER_BUNDLE: usize = 100;

fn ca() -> Cert {
    Cert::ca(
        "hostile-ca",
        datetime!(2025-01-01 0:00 UTC),
        datetime!(2040-01-01 0:00 UTC),
    )
}

/// `certs/bulk/bundle-K.pem` (BUNDLES × PER_BUNDLE certificates, one
/// not_after) and `certs/rotate.crt` expiring at `rotate_after`.
fn big_tree(s: &Scratch, ca: &Cert, rotate_after: OffsetDateTime) {
    let leaf = ca.issue(
        "bulk.example",
        datetime!(2025-06-01 0:00 UTC),
        datetime!(2031-06-01 0:00 UTC),
    );
    let bundle = leaf.pem.repeat(PER_BUNDLE);
    for k in 0..BUNDLES {
        s.write(&format!("certs/bulk/bundle-{k}.pem"), &bundle);
    }
    let rotating = ca.issue(
        "rotate.example",
        datetime!(2025-06-01 0:00 UTC),
        rotate_after,
    );
    s.write("certs/rotate.crt", &rotating.pem);
}

fn addr(server: &Server) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], server.port))
}

/// A client with a 1 KiB receive buffer that asks for `path` and never reads.
fn non_reader(server: &Server, path: &str) -> Socket {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).expect("a socket");
    socket.set_recv_buffer_size(1024).expect("SO_RCVBUF");
    socket
        .connect(&addr(server).into())
        .expect("connect a non-reading client");
    let mut stream: &Socket = &socket;
    stream
        .write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
        .expect("send the request");
    socket
}

/// Reads until the server closes the connection; what it sent, and whether it
/// closed within [`GUARD`].
fn read_until_closed(stream: &mut TcpStream) -> (Vec<u8>, bool) {
    stream
        .set_read_timeout(Some(GUARD))
        .expect("a read timeout");
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return (got, true),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return (got, true),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return (got, false);
            }
            Err(e) => panic!("reading: {e}"),
        }
    }
}

fn assert_not_after(m: &Exposition, rotate_after: OffsetDateTime) {
    assert_eq!(
        m.find("lapse_credential_info", &[]).len(),
        BUNDLES * PER_BUNDLE + 1,
        "every series"
    );
    assert_eq!(
        m.value(VALIDITY, &[("path", "certs/rotate.crt")]),
        validity(rotate_after)
    );
}

const VALIDITY: &str = "lapse_credential_validity_seconds";

/// The validity window of a certificate of [`big_tree`]'s (or of the
/// rotations) that lapses at `not_after`.
fn validity(not_after: OffsetDateTime) -> f64 {
    (unix(not_after) - unix(datetime!(2025-06-01 0:00 UTC))) as f64
}

#[test]
fn a_connection_that_sends_nothing_or_half_a_header_is_closed() {
    let s = Scratch::new();
    s.write("certs/none.txt", "nothing here");
    s.write(
        "lapse.yaml",
        "http: {header_timeout: 1s, idle_timeout: 1s}\n",
    );
    let server = s.serve().args(["--config", "lapse.yaml", "certs"]).start();

    let mut silent = TcpStream::connect(addr(&server)).expect("connect");
    let mut half = TcpStream::connect(addr(&server)).expect("connect");
    half.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
        .expect("half a header");
    let mut kept = TcpStream::connect(addr(&server)).expect("connect");
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("a request");

    let (got, closed) = read_until_closed(&mut silent);
    assert_eq!((String::from_utf8_lossy(&got).as_ref(), closed), ("", true));
    let (got, closed) = read_until_closed(&mut half);
    assert_eq!(
        (String::from_utf8_lossy(&got).as_ref(), closed),
        ("", true),
        "half a header"
    );
    // A kept-alive connection gets its answer, then is closed when idle.
    let (got, closed) = read_until_closed(&mut kept);
    let got = String::from_utf8_lossy(&got);
    assert!(closed, "kept-alive: still open after {GUARD:?}: {got:?}");
    assert!(got.starts_with("HTTP/1.1 200 OK\r\n"), "{got:?}");
    assert!(got.ends_with("\r\n\r\nok\n"), "{got:?}");
}

#[test]
fn clients_that_never_read_stop_neither_a_scrape_nor_a_rotation() {
    let s = Scratch::new();
    let ca = ca();
    big_tree(&s, &ca, datetime!(2030-01-01 0:00 UTC));
    let server = s.serve().arg("certs").start();

    // More than the 512 threads of the blocking pool the scans use.
    let slow: Vec<Socket> = (0..600).map(|_| non_reader(&server, "/metrics")).collect();
    std::thread::sleep(Duration::from_millis(500));
    assert_not_after(&server.metrics(), datetime!(2030-01-01 0:00 UTC));

    let rotated = ca.issue(
        "rotate.example",
        datetime!(2025-06-01 0:00 UTC),
        datetime!(2032-01-01 0:00 UTC),
    );
    s.write("certs/rotate.crt", &rotated.pem);
    let (m, _) = server.wait_for("the rotated certificate", |m| {
        m.find(VALIDITY, &[("path", "certs/rotate.crt")])
            .first()
            .is_some_and(|x| x.value == validity(datetime!(2032-01-01 0:00 UTC)))
    });
    assert_not_after(&m, datetime!(2032-01-01 0:00 UTC));
    drop(slow);
}

#[test]
fn a_client_that_never_reads_is_closed_after_the_write_timeout() {
    let s = Scratch::new();
    big_tree(&s, &ca(), datetime!(2030-01-01 0:00 UTC));
    s.write("lapse.yaml", "http: {write_timeout: 1s}\n");
    let server = s.serve().args(["--config", "lapse.yaml", "certs"]).start();

    let slow = non_reader(&server, "/metrics");
    std::thread::sleep(Duration::from_secs(3));
    // Whatever the kernel kept for it, then the end: never the whole page.
    let mut stream = TcpStream::from(slow);
    let (got, closed) = read_until_closed(&mut stream);
    assert!(closed, "still open after {GUARD:?}");
    let whole = server.get("/metrics").body.len();
    assert!(
        got.len() < whole,
        "got {} bytes of a {whole}-byte page",
        got.len()
    );
}

#[test]
fn connections_over_max_connections_are_answered_503() {
    let s = Scratch::new();
    s.write("certs/none.txt", "nothing here");
    s.write("lapse.yaml", "http: {max_connections: 2}\n");
    let server = s.serve().args(["--config", "lapse.yaml", "certs"]).start();

    // Two connections that keep sending a header, a byte at a time: busy,
    // not stalled, so neither may be closed to make room.
    let holders: Vec<TcpStream> = (0..2)
        .map(|_| TcpStream::connect(addr(&server)).expect("connect"))
        .collect();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let trickle = {
        let mut holders: Vec<TcpStream> = holders.iter().map(|h| h.try_clone().unwrap()).collect();
        let stop = stop.clone();
        std::thread::spawn(move || {
            let header =
                b"GET /healthz HTTP/1.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
            for byte in header.iter().cycle().take(header.len() * 3) {
                if stop.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                for h in &mut holders {
                    let _ = h.write_all(&[*byte]);
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };
    std::thread::sleep(Duration::from_millis(200));
    let refused = server
        .try_request("GET", "/metrics", &[])
        .expect("a response");
    assert_eq!(
        (
            refused.status,
            refused.body.as_str(),
            refused.header("retry-after")
        ),
        (503, "too many open connections; try again\n", Some("1"))
    );
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    trickle.join().unwrap();
    drop(holders);
    // Room again once they are gone.
    let started = Instant::now();
    loop {
        let r = server.get("/healthz");
        if r.status == 200 {
            break;
        }
        assert!(started.elapsed() < GUARD, "still refused: {r:?}");
        std::thread::sleep(POLL);
    }
}

#[test]
fn a_stalled_client_makes_room_for_a_real_scrape_at_max_connections() {
    let s = Scratch::new();
    big_tree(&s, &ca(), datetime!(2030-01-01 0:00 UTC));
    s.write("lapse.yaml", "http: {max_connections: 4}\n");
    let server = s.serve().args(["--config", "lapse.yaml", "certs"]).start();

    let slow: Vec<Socket> = (0..4).map(|_| non_reader(&server, "/metrics")).collect();
    // Stalled for more than a second: the next connection may take a place.
    std::thread::sleep(Duration::from_millis(1500));
    assert_not_after(&server.metrics(), datetime!(2030-01-01 0:00 UTC));
    drop(slow);
}

#[test]
fn a_low_file_descriptor_limit_never_locks_out_a_scrape() {
    let s = Scratch::new();
    let ca = ca();
    let leaf = ca.issue(
        "web.example",
        datetime!(2025-06-01 0:00 UTC),
        datetime!(2031-06-01 0:00 UTC),
    );
    s.write("certs/web.crt", &leaf.pem);
    let port = free_port();
    let stderr_path = s.path("lapse.stderr");
    let mut child = Command::new("sh")
        .args([
            "-c",
            "ulimit -n 256 && exec \"$0\" serve --web.listen-address \"127.0.0.1:$1\" certs",
        ])
        .arg(env!("CARGO_BIN_EXE_lapse"))
        .arg(port.to_string())
        .env_clear()
        .env("HOME", s.home())
        .env("PATH", "/usr/bin:/bin")
        .current_dir(s.path(""))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .spawn()
        .expect("run lapse under ulimit -n 256");
    let client = Client::plain();
    let scrape = || client.request(port, "GET", "/metrics", &[]);
    let started = Instant::now();
    while !scrape().is_ok_and(|r| r.status == 200) {
        assert!(started.elapsed() < GUARD, "never ready");
        std::thread::sleep(POLL);
    }

    let silent: Vec<TcpStream> = (0..300)
        .filter_map(|_| TcpStream::connect(("127.0.0.1", port)).ok())
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    let r = scrape();
    let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
    let _ = child.kill();
    let _ = child.wait();
    let r = r.unwrap_or_else(|e| panic!("GET /metrics: {e}\n--- stderr ---\n{stderr}"));
    assert_eq!(r.status, 200, "{r:?}\n--- stderr ---\n{stderr}");
    assert_eq!(
        Exposition::parse(&r.body).value(VALIDITY, &[]),
        validity(datetime!(2031-06-01 0:00 UTC))
    );
    assert_eq!(
        stderr.matches("accept failed").count(),
        0,
        "--- stderr ---\n{stderr}"
    );
    drop(silent);
}

#[test]
fn problems_in_the_http_section_are_named_by_field() {
    let s = Scratch::new();
    s.write("certs/none.txt", "nothing here");
    s.write(
        "lapse.yaml",
        "http:\n  header_timeout: 9x\n  idle_timeout: 0s\n  write_timeout: 11s\n  \
         max_connections: lots\n  bogus: 1\n",
    );
    let out = s
        .serve()
        .args(["--config", "lapse.yaml", "certs"])
        .run_to_exit(Duration::from_secs(5));
    out.assert_code(3);
    assert_eq!(
        out.stderr,
        "lapse: lapse.yaml: http.bogus: unknown field (expected one of: header_timeout, idle_timeout, write_timeout, max_connections)\n\
         lapse: lapse.yaml: http.header_timeout: invalid duration \"9x\": unknown unit 'x' (use s, m, h, d or w)\n\
         lapse: lapse.yaml: http.idle_timeout: must be from 1s to 1m\n\
         lapse: lapse.yaml: http.max_connections: expected a whole number from 1 to 1000000\n"
    );
}
