//! `lapse serve` at scale: N certificate files (default 100,000).
//!
//!     cargo bench --bench serve
//!     LAPSE_BENCH_N=10000 cargo bench --bench serve
//!     LAPSE_BENCH_DIR=/tmp/tree cargo bench --bench serve
//!
//! Measures cold start to ready (`/readyz` 200), resident memory after the
//! first scan and after scrapes (VmRSS, VmHWM), `/metrics` render time and
//! size, and change-to-visible latency: a certificate rewritten in place
//! until the next scrape shows its new expiry. Reported, never asserted.
//!
//! With `LAPSE_BENCH_DIR`, nothing is generated: lapse serves that tree (as
//! `bench/gen_tree.py` writes it) and the certificate rewritten is the first
//! `cert-*.crt` of its first directory, put back as it was at the end. The
//! last line, `serve-tsv:`, holds every figure as key=value for scripts.

use rcgen::{CertificateParams, DistinguishedName, DnType, Issuer, KeyPair};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use time::macros::datetime;

fn make_cert(issuer: &Issuer<'_, KeyPair>, key: &KeyPair, i: usize, hours: i64) -> String {
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, format!("host-{i}.example.com"));
    p.distinguished_name = dn;
    p.not_before = datetime!(2026-01-01 00:00 UTC);
    p.not_after = datetime!(2027-01-01 00:00 UTC) + time::Duration::hours(hours);
    p.signed_by(key, issuer).unwrap().pem()
}

fn get(port: u16, path: &str) -> (u16, Vec<u8>) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).unwrap();
    let head_end = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or(0);
    let status = std::str::from_utf8(&buf[9..12])
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, buf.split_off(head_end + 4))
}

fn proc_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap_or(0)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
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
    let n: usize = std::env::var("LAPSE_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let given = std::env::var("LAPSE_BENCH_DIR").ok();
    let tmp = tempfile::tempdir().unwrap();
    let root = given
        .as_deref()
        .map_or_else(|| tmp.path().to_path_buf(), PathBuf::from);
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::default();
    ca.distinguished_name.push(DnType::CommonName, "bench-ca");
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let (files, target, original) = if given.is_some() {
        let files = walkdir::WalkDir::new(&root)
            .into_iter()
            .filter(|e| e.as_ref().is_ok_and(|e| e.file_type().is_file()))
            .count();
        let target = first_crt(&root).expect("a cert-*.crt file in the tree");
        let original = std::fs::read(&target).unwrap();
        println!("serving {files} files in {}", root.display());
        (files, target, Some(original))
    } else {
        let t = Instant::now();
        for i in 0..n {
            let sub = root.join(format!("d{:04}", i / 100));
            if i % 100 == 0 {
                std::fs::create_dir_all(&sub).unwrap();
            }
            std::fs::write(
                sub.join(format!("cert-{i}.crt")),
                make_cert(&issuer, &key, i, i as i64),
            )
            .unwrap();
        }
        println!(
            "generated {n} certificate files in {:.1} s",
            t.elapsed().as_secs_f64()
        );
        (n, root.join("d0000/cert-7.crt"), None)
    };
    // Put the rewritten certificate back however this run ends.
    let _restore = Restore(target.clone(), original);

    let port = free_port();
    let started = Instant::now();
    let child = Command::new(env!("CARGO_BIN_EXE_lapse"))
        .args([
            "serve",
            "--web.listen-address",
            &format!("127.0.0.1:{port}"),
        ])
        .arg(&root)
        .arg("-vv")
        .env_clear()
        .env("HOME", tmp.path())
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut child = child;
    let stderr_pipe = child.stderr.take();
    // lapse's own log says when a rescan has been published.
    let (published_tx, published) = std::sync::mpsc::channel::<Instant>();
    let stderr = stderr_pipe.unwrap();
    let _guard = Kill(child);
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if line.contains("scan done") && line.contains("parsed=1 ") {
                let _ = published_tx.send(Instant::now());
            }
        }
    });

    loop {
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
            let _ = write!(
                s,
                "GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            );
            let mut buf = Vec::new();
            let _ = s.read_to_end(&mut buf);
            if buf.starts_with(b"HTTP/1.1 200") {
                break;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "not ready in 5 minutes"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let ready = started.elapsed();
    let rss_ready = proc_kib(pid, "VmRSS:");
    println!(
        "cold start to ready:           {:>8.0} ms",
        ready.as_secs_f64() * 1e3
    );
    println!(
        "RSS after first scan:          {:>8.1} MiB",
        rss_ready as f64 / 1024.0
    );

    let mut renders = Vec::new();
    let mut size = 0;
    let mut series = 0;
    for _ in 0..SCRAPES {
        let t = Instant::now();
        let (status, body) = get(port, "/metrics");
        renders.push(t.elapsed());
        assert_eq!(status, 200);
        size = body.len();
        series = body
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty() && l[0] != b'#')
            .count();
    }
    renders.sort();
    let render = renders[SCRAPES / 2];
    println!(
        "/metrics (classic text):       {:>8.0} ms median of {SCRAPES}, {:.0} ms best, {:.1} MiB, {series} series",
        render.as_secs_f64() * 1e3,
        renders[0].as_secs_f64() * 1e3,
        size as f64 / 1048576.0,
    );
    let rss_hwm = proc_kib(pid, "VmHWM:");
    println!(
        "RSS after scrapes:             {:>8.1} MiB (peak {:.1} MiB)",
        proc_kib(pid, "VmRSS:") as f64 / 1024.0,
        rss_hwm as f64 / 1024.0
    );

    // Change to visible: rewrite one certificate in place, scrape until the
    // new expiry shows.
    let new_hours = 24 * 400;
    let new_not_after =
        (datetime!(2027-01-01 00:00 UTC) + time::Duration::hours(new_hours)).unix_timestamp();
    let not_before = datetime!(2026-01-01 00:00 UTC).unix_timestamp();
    let needle = format!(
        "{}\",index=\"0\"",
        target.file_name().unwrap().to_string_lossy()
    );
    let mut latencies = Vec::new();
    let mut inventory_latencies = Vec::new();
    for round in 0..3 {
        let hours = new_hours + round;
        // Seen as its new validity window (not_before stays).
        let want = format!("{}", new_not_after + round * 3600 - not_before);
        let t = Instant::now();
        std::fs::write(&target, make_cert(&issuer, &key, 7, hours)).unwrap();
        loop {
            let (_, body) = get(port, "/metrics");
            let text = String::from_utf8_lossy(&body);
            let seen = text.lines().any(|l| {
                l.starts_with("lapse_credential_validity_seconds")
                    && l.contains(&needle)
                    && l.ends_with(&format!(" {want}"))
            });
            if seen {
                break;
            }
            assert!(
                t.elapsed() < Duration::from_secs(60),
                "change not visible in 60 s"
            );
        }
        latencies.push(t.elapsed());
        if let Ok(at) = published.recv_timeout(Duration::from_secs(5)) {
            inventory_latencies.push(at.saturating_duration_since(t));
        }
        while published.try_recv().is_ok() {}
        std::thread::sleep(Duration::from_millis(300));
    }
    inventory_latencies.sort();
    let published_ms = inventory_latencies
        .get(inventory_latencies.len() / 2)
        .map_or(f64::NAN, |d| d.as_secs_f64() * 1e3);
    if let Some(mid) = inventory_latencies.get(inventory_latencies.len() / 2) {
        println!(
            "change to published (inventory): {:>6.0} ms median of {} (debounce 100 ms + rescan + snapshot)",
            mid.as_secs_f64() * 1e3,
            inventory_latencies.len()
        );
    }
    latencies.sort();
    println!(
        "change to visible (in a scrape): {:>6.0} ms median of 3 (includes one full scrape)",
        latencies[1].as_secs_f64() * 1e3
    );
    println!(
        "serve-tsv: files={files} ready_ms={:.1} rss_ready_kib={rss_ready} rss_peak_kib={rss_hwm} \
         metrics_ms={:.1} metrics_bytes={size} series={series} published_ms={published_ms:.1} visible_ms={:.1}",
        ready.as_secs_f64() * 1e3,
        render.as_secs_f64() * 1e3,
        latencies[1].as_secs_f64() * 1e3,
    );
    if let (None, Ok(keep)) = (&given, std::env::var("LAPSE_BENCH_KEEP")) {
        let kept = tmp.keep();
        std::fs::rename(&kept, Path::new(&keep)).unwrap();
        println!("tree kept at {keep}");
    }
}

const SCRAPES: usize = 7;

/// The first `cert-*.crt` in the first directory (sorted), to rewrite.
fn first_crt(root: &Path) -> Option<PathBuf> {
    walkdir::WalkDir::new(root)
        .sort_by_file_name()
        .into_iter()
        .filter_map(Result::ok)
        .map(walkdir::DirEntry::into_path)
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("cert-") && n.ends_with(".crt"))
        })
}

/// Writes the original bytes back to a file of a given tree on drop.
struct Restore(PathBuf, Option<Vec<u8>>);
impl Drop for Restore {
    fn drop(&mut self) {
        if let Some(bytes) = &self.1 {
            let _ = std::fs::write(&self.0, bytes);
        }
    }
}
