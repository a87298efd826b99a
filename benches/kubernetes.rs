//! `lapse serve` reading a cluster of 20,000 Secrets from the in-repo test
//! API server: half TLS, a quarter small Opaque, and a quarter of 100 KiB
//! each, run twice: once as Helm release secrets (filtered out on the
//! server), once as Opaque secrets (sent, read and dropped).
//!
//!     cargo bench --bench kubernetes
//!     LAPSE_BENCH_SECRETS=4000 cargo bench --bench kubernetes
//!
//! Measures time to ready, steady resident memory and peak resident memory
//! (VmHWM) of lapse. Every payload is dropped once parsed and lists are
//! read a page at a time, so memory should not grow with payload size.
//! Reported, never asserted.

#[path = "../tests/support/apiserver.rs"]
mod apiserver;

use rcgen::{CertificateParams, DistinguishedName, DnType, Issuer, KeyPair};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use time::macros::datetime;

fn proc_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap_or(0)
}

fn get(port: u16, path: &str) -> (u16, Vec<u8>) {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return (0, Vec::new());
    };
    let _ = write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    );
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let status = std::str::from_utf8(buf.get(9..12).unwrap_or_default())
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| buf[i + 4..].to_vec())
        .unwrap_or_default();
    (status, body)
}

struct Kill(Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn main() {
    if std::env::args().any(|a| a == "--test" || a == "--list") {
        return;
    }
    let n: usize = std::env::var("LAPSE_BENCH_SECRETS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    for big in ["helm.sh/release.v1", "Opaque"] {
        run(n, big);
    }
}

/// One run: `n` Secrets, the 100 KiB quarter of type `big`.
fn run(n: usize, big: &str) {
    let (tls, helm) = (n / 2, n / 4);
    let opaque = n - tls - helm;
    let server = apiserver::ApiServer::start();
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::default();
    ca.distinguished_name.push(DnType::CommonName, "bench-ca");
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let key_pem = key.serialize_pem();
    let t = Instant::now();
    for i in 0..tls {
        let mut p = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, format!("svc-{i}.example.com"));
        p.distinguished_name = dn;
        p.not_before = datetime!(2026-01-01 00:00 UTC);
        p.not_after = datetime!(2027-01-01 00:00 UTC) + time::Duration::hours(i as i64);
        let pem = p.signed_by(&key, &issuer).unwrap().pem();
        server.put(apiserver::secret(
            &format!("ns-{}", i % 50),
            &format!("tls-{i}"),
            "kubernetes.io/tls",
            &[("tls.crt", pem.as_bytes()), ("tls.key", key_pem.as_bytes())],
        ));
    }
    // Helm stores a gzip'd, base64'd release: incompressible bytes stand in.
    let mut noise = vec![0u8; 100 * 1024];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for b in noise.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    for i in 0..helm {
        server.put(apiserver::secret(
            &format!("ns-{}", i % 50),
            &format!("sh.helm.release.v1.app-{i}.v1"),
            big,
            &[("release", &noise)],
        ));
    }
    for i in 0..opaque {
        server.put(apiserver::secret(
            &format!("ns-{}", i % 50),
            &format!("opaque-{i}"),
            "Opaque",
            &[
                ("username", b"app"),
                ("password", b"not-a-credential-format"),
            ],
        ));
    }
    println!(
        "\ncluster: {tls} TLS, {helm} of 100 KiB typed {big}, {opaque} small Opaque secrets, made in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = server.write_kubeconfig(dir.path());
    let config = dir.path().join("lapse.yaml");
    std::fs::write(
        &config,
        format!(
            "kubernetes:\n  kubeconfig: {}\n  configmaps: false\n",
            kubeconfig.display()
        ),
    )
    .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let started = Instant::now();
    let child = Command::new(env!("CARGO_BIN_EXE_lapse"))
        .args(["serve", "--config"])
        .arg(&config)
        .args(["--web.listen-address", &format!("127.0.0.1:{port}")])
        .arg("-v")
        .env_clear()
        .env("HOME", dir.path())
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("lapse.log")).unwrap())
        .spawn()
        .unwrap();
    let pid = child.id();
    let _guard = Kill(child);
    while get(port, "/readyz").0 != 200 {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "not ready in 2 minutes; lapse's log:\n{}",
            std::fs::read_to_string(dir.path().join("lapse.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let ready = started.elapsed();
    let (_, body) = get(port, "/metrics");
    let series = String::from_utf8_lossy(&body)
        .lines()
        .filter(|l| l.starts_with("lapse_credential_expires_in_seconds{"))
        .count();
    std::thread::sleep(Duration::from_secs(2));
    let steady = proc_kib(pid, "VmRSS:");
    let peak = proc_kib(pid, "VmHWM:");
    let helm_sent = server
        .sent()
        .iter()
        .filter(|s| s.name.starts_with("sh.helm.release"))
        .count();
    println!(
        "time to ready:                 {:>8.0} ms",
        ready.as_secs_f64() * 1e3
    );
    println!("certificates exported:         {series:>8}");
    println!("100 KiB secrets sent to lapse: {helm_sent:>8}");
    println!(
        "steady RSS:                    {:>8.1} MiB",
        steady as f64 / 1024.0
    );
    println!(
        "peak RSS:                      {:>8.1} MiB",
        peak as f64 / 1024.0
    );
}
