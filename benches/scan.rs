//! Scan throughput: a directory of N certificate files (default 10,000).
//!
//!     cargo bench --bench scan            # N = 10,000
//!     LAPSE_BENCH_N=100000 cargo bench --bench scan
//!
//! Prints, for the library scan and for the `lapse check` binary, the best
//! and median wall time of several runs over a warm page cache, and the
//! read-and-parse floor (read each file, parse it with x509-parser, nothing
//! else) for comparison. Timing is reported, never asserted.

use rcgen::{CertificateParams, DistinguishedName, DnType, Issuer, KeyPair};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use time::macros::datetime;

const RUNS: usize = 7;

fn make_tree(dir: &Path, n: usize) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::default();
    ca.distinguished_name.push(DnType::CommonName, "bench-ca");
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let issuer = Issuer::new(ca, ca_key);
    let leaf_key = KeyPair::generate().unwrap();
    for i in 0..n {
        let mut p = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, format!("host-{i}.example.com"));
        p.distinguished_name = dn;
        p.not_before = datetime!(2026-01-01 00:00 UTC);
        p.not_after = datetime!(2027-01-01 00:00 UTC) + time::Duration::hours(i as i64);
        let pem = p.signed_by(&leaf_key, &issuer).unwrap().pem();
        // 100 files per directory, as a real tree would spread them.
        let sub = dir.join(format!("d{:03}", i / 100));
        if i % 100 == 0 {
            std::fs::create_dir_all(&sub).unwrap();
        }
        std::fs::write(sub.join(format!("cert-{i}.crt")), pem).unwrap();
    }
}

fn time_runs(mut f: impl FnMut()) -> (Duration, Duration) {
    let mut runs: Vec<Duration> = (0..RUNS)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    runs.sort();
    (runs[0], runs[RUNS / 2])
}

fn report(name: &str, (best, median): (Duration, Duration), n: usize) {
    println!(
        "{name:<34} best {:>8.1} ms   median {:>8.1} ms   {:>6.2} µs/file",
        best.as_secs_f64() * 1e3,
        median.as_secs_f64() * 1e3,
        median.as_secs_f64() * 1e6 / n as f64
    );
}

fn floor(dir: &Path) -> usize {
    let mut found = 0;
    for entry in walkdir::WalkDir::new(dir) {
        let entry = entry.unwrap();
        if !entry.file_type().is_file() {
            continue;
        }
        let bytes = std::fs::read(entry.path()).unwrap();
        for pem in x509_parser::pem::Pem::iter_from_buffer(&bytes) {
            let pem = pem.unwrap();
            if pem.parse_x509().is_ok() {
                found += 1;
            }
        }
    }
    found
}

fn main() {
    // `cargo test --benches` runs this in test mode; do nothing there.
    if std::env::args().any(|a| a == "--test" || a == "--list") {
        return;
    }
    let n: usize = std::env::var("LAPSE_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let dir = tempfile::tempdir().unwrap();
    let t = Instant::now();
    make_tree(dir.path(), n);
    println!(
        "generated {n} certificate files in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    println!(
        "machine: {} cores",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );

    let opts = lapse::scan::ScanOptions::default();
    let roots = [dir.path().to_path_buf()];
    let result = lapse::scan::scan(&roots, None, &opts);
    assert_eq!(result.credentials.len(), n, "every certificate found");
    assert!(result.errors.is_empty());

    report(
        "lapse library scan",
        time_runs(|| {
            let r = lapse::scan::scan(&roots, None, &opts);
            assert_eq!(r.credentials.len(), n);
        }),
        n,
    );

    let bin = env!("CARGO_BIN_EXE_lapse");
    report(
        "lapse check --format json (binary)",
        time_runs(|| {
            let status = Command::new(bin)
                .args(["check", "--format", "json"])
                .arg(dir.path())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .unwrap();
            assert!(status.code().is_some());
        }),
        n,
    );

    report(
        "floor: read + x509-parser, 1 core",
        time_runs(|| {
            assert_eq!(floor(dir.path()), n);
        }),
        n,
    );
}
