//! Basic auth under hostile clients: a flood of wrong passwords never
//! delays a login lapse has already verified, logins beyond a small queue
//! are answered 503 at once instead of waiting behind bcrypt, and a bcrypt
//! cost that would stall start-up is refused naming the user's field.

use crate::support::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;
use time::macros::datetime;

const USER: &str = "prometheus";
const PASSWORD: &str = "correct horse battery staple";

/// One certificate to serve, and `web.yml` with one user at `cost`.
fn scratch_with_user(cost: u32) -> Scratch {
    let s = Scratch::new();
    let ca = Cert::ca(
        "auth-test-ca",
        datetime!(2025-01-01 0:00 UTC),
        datetime!(2040-01-01 0:00 UTC),
    );
    s.write("certs/ca.crt", &ca.pem);
    let hash = bcrypt::hash(PASSWORD, cost).expect("bcrypt");
    s.write(
        "web.yml",
        format!("basic_auth_users:\n  {USER}: '{hash}'\n"),
    );
    s
}

/// The status line's code and the headers (names lowercased) of a raw response.
fn status_and_headers(raw: &[u8]) -> (u16, Vec<(String, String)>, String) {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (status, headers, body.to_string())
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// More wrong passwords at once than tokio's blocking pool has threads
/// (512), each distinct so no cache can answer them. Before bcrypt work
/// was bounded, the verified login queued behind all of them (minutes).
const FLOOD: usize = 800;

#[test]
fn a_flood_of_wrong_passwords_does_not_delay_a_verified_login() {
    // Cost 10: tens of milliseconds a verification, far more in a debug build.
    let s = scratch_with_user(10);
    let authorized = Client::plain().basic_auth(USER, PASSWORD);
    let server = s
        .serve()
        .args(["certs", "--web.config.file", "web.yml"])
        // The first /readyz verifies the password: the cache is warm.
        .start_with(authorized.clone());

    let mut flood = Vec::with_capacity(FLOOD);
    for i in 0..FLOOD {
        let mut tcp = TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
        tcp.set_read_timeout(Some(DEADLINE)).expect("timeout");
        let auth = b64(format!("{USER}:wrong password {i}"));
        let request = format!(
            "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\
             Authorization: Basic {auth}\r\n\r\n"
        );
        tcp.write_all(request.as_bytes()).expect("send");
        flood.push(tcp);
    }

    // Answered from the cache of verified logins, not queued behind bcrypt.
    // (The client's read timeout, DEADLINE, is the guard: before the fix it fired.)
    let m = server.metrics();
    assert_eq!(m.paths(), ["certs/ca.crt"]);

    let (mut refused, mut busy) = (0, 0);
    for mut tcp in flood {
        let mut raw = Vec::new();
        tcp.read_to_end(&mut raw).expect("a flood response");
        let (status, headers, body) = status_and_headers(&raw);
        match status {
            401 => {
                assert_eq!(
                    header(&headers, "www-authenticate"),
                    Some("Basic realm=\"lapse\"")
                );
                refused += 1;
            }
            503 => {
                assert_eq!(header(&headers, "retry-after"), Some("1"), "{headers:?}");
                assert_eq!(header(&headers, "www-authenticate"), None);
                assert_eq!(body, "Too many logins are being checked; retry shortly\n");
                busy += 1;
            }
            other => panic!("flood request answered {other}: {raw:?}"),
        }
    }
    assert_eq!(refused + busy, FLOOD);
    // Only a few are ever verified at once or waiting: the rest are answered at once.
    assert!(
        busy > 0,
        "no flood request was answered 503 ({refused} 401s)"
    );

    // The flood leaves nothing behind: answers are as before it.
    let wrong = Client::plain().basic_auth(USER, "wrong password again");
    let r = wrong
        .request(server.port, "GET", "/metrics", &[])
        .expect("a response");
    assert_eq!(r.status, 401);
    assert_eq!(server.get("/healthz").status, 200);
    let stderr = server.stderr();
    assert!(!stderr.contains("wrong password"), "{stderr}");
}

/// A hash whose cost field says `cost`; its salt and digest are real, so it
/// parses as bcrypt (verifying against it would take 2^cost rounds).
fn hash_claiming_cost(cost: u32) -> String {
    let real = bcrypt::hash("anything", 4).expect("bcrypt");
    format!("$2b${cost:02}${}", &real[7..])
}

#[test]
fn a_bcrypt_cost_above_14_is_refused_at_start_up() {
    let s = scratch_with_user(4);
    let (too_slow, slowest_allowed) = (hash_claiming_cost(20), hash_claiming_cost(14));
    s.write(
        "web.yml",
        format!(
            "basic_auth_users:\n  alice: '{too_slow}'\n  bob: '{slowest_allowed}'\n  \
             carol: '{}'\n",
            hash_claiming_cost(31)
        ),
    );
    // Before the cap, lapse spent minutes (cost 20) making a decoy hash.
    let out = s
        .serve()
        .args(["certs", "--web.config.file", "web.yml"])
        .run_to_exit(Duration::from_secs(10));
    out.assert_code(3);
    let problems: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.starts_with("lapse: web.yml: "))
        .collect();
    assert_eq!(
        problems,
        [
            "lapse: web.yml: basic_auth_users.alice: bcrypt cost 20 is above the maximum of 14",
            "lapse: web.yml: basic_auth_users.carol: bcrypt cost 31 is above the maximum of 14",
        ],
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains(&too_slow[7..]), "{}", out.stderr);
}

#[test]
fn users_of_different_costs_start_at_once_and_log_in() {
    let s = scratch_with_user(4);
    let low = bcrypt::hash(PASSWORD, 4).expect("bcrypt");
    // A cost-12 hash nobody knows the password of: start-up makes no bcrypt at 12.
    s.write(
        "web.yml",
        format!(
            "basic_auth_users:\n  {USER}: '{low}'\n  slow: '{}'\n",
            hash_claiming_cost(12)
        ),
    );
    let server = s
        .serve()
        .args(["certs", "--web.config.file", "web.yml"])
        .start_with(Client::plain().basic_auth(USER, PASSWORD));
    assert_eq!(server.metrics().paths(), ["certs/ca.crt"]);
    let anonymous = Client::plain()
        .request(server.port, "GET", "/metrics", &[])
        .expect("a response");
    assert_eq!(anonymous.status, 401);
}
