//! Scan throughput: a directory of N certificate files (default 10,000).
//!
//!     cargo bench --bench scan            # N = 10,000
//!     LAPSE_BENCH_N=100000 cargo bench --bench scan
//!     LAPSE_BENCH_DIR=/tmp/tree cargo bench --bench scan
//!
//! Prints, for the library scan and for the `lapse check` binary, the best
//! and median wall time of several runs over a warm page cache, and the
//! read-and-parse floor (read each file, parse it with x509-parser, nothing
//! else) for comparison. Timing is reported, never asserted.
//!
//! With `LAPSE_BENCH_DIR`, nothing is generated: the floor reads that tree
//! (as `bench/gen_tree.py` writes it, PEM-only or `--mix`) and does the
//! least work per kind, chosen by file name, on one core: PEM → base64 +
//! x509-parser; DER → x509-parser; PKCS#12 → p12-keystore (empty password)
//! and x509-parser; kubeconfig → serde-saphyr into the three fields, base64,
//! x509-parser; JWT → base64url + serde_json for `exp`. No sniffing, no
//! credential records. The library scan runs on the same tree for
//! comparison; the last line is `floor-dir: N credentials, median S s`.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use lapse::source::files::scanner::read_once;
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

/// The kubeconfig fields the floor reads; everything else is skipped by serde.
#[derive(serde::Deserialize)]
struct Kubeconfig {
    #[serde(default)]
    clusters: Vec<Cluster>,
    #[serde(default)]
    users: Vec<User>,
}

#[derive(serde::Deserialize)]
struct Cluster {
    cluster: ClusterData,
}

#[derive(serde::Deserialize)]
struct ClusterData {
    #[serde(rename = "certificate-authority-data")]
    ca: Option<String>,
}

#[derive(serde::Deserialize)]
struct User {
    user: UserData,
}

#[derive(serde::Deserialize)]
struct UserData {
    #[serde(rename = "client-certificate-data")]
    cert: Option<String>,
    token: Option<String>,
}

#[derive(serde::Deserialize)]
struct Claims {
    exp: Option<i64>,
}

/// Certificates in PEM text: base64 + x509-parser, one per block.
fn pem_certificates(bytes: &[u8]) -> usize {
    x509_parser::pem::Pem::iter_from_buffer(bytes)
        .filter(|pem| pem.as_ref().is_ok_and(|p| p.parse_x509().is_ok()))
        .count()
}

fn der_certificate(der: &[u8]) -> usize {
    usize::from(x509_parser::parse_x509_certificate(der).is_ok())
}

/// 1 when the JWT's payload decodes and carries `exp`.
fn jwt_expiry(token: &str) -> usize {
    let Some(payload) = token.trim().split('.').nth(1) else {
        return 0;
    };
    let Ok(json) = URL_SAFE_NO_PAD.decode(payload) else {
        return 0;
    };
    serde_json::from_slice::<Claims>(&json).map_or(0, |c| usize::from(c.exp.is_some()))
}

fn kubeconfig(bytes: &[u8]) -> usize {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return 0;
    };
    let Ok(doc) = serde_saphyr::from_str::<Kubeconfig>(text) else {
        return 0;
    };
    let pem = |b64: &str| STANDARD.decode(b64).map_or(0, |b| pem_certificates(&b));
    let mut found = 0;
    for c in &doc.clusters {
        found += c.cluster.ca.as_deref().map_or(0, pem);
    }
    for u in &doc.users {
        found += u.user.cert.as_deref().map_or(0, pem);
        found += u.user.token.as_deref().map_or(0, jwt_expiry);
    }
    found
}

/// The least work per kind: read, then decode by file name. Returns the
/// number of credentials with an expiry found.
fn floor_mixed(dir: &Path) -> usize {
    let mut found = 0;
    for entry in walkdir::WalkDir::new(dir) {
        let entry = entry.unwrap();
        if !entry.file_type().is_file() {
            continue;
        }
        let path = entry.path();
        let bytes = std::fs::read(path).unwrap();
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        found += match ext {
            "crt" | "pem" | "cer" | "cert" => pem_certificates(&bytes),
            "der" => der_certificate(&bytes),
            "p12" | "pfx" => p12_keystore::Pkcs12Archive::from_pkcs12(&bytes, "").map_or(0, |a| {
                a.certs
                    .iter()
                    .map(|b| der_certificate(b.cert.as_der()))
                    .sum()
            }),
            "kubeconfig" => kubeconfig(&bytes),
            "jwt" | "token" => std::str::from_utf8(&bytes).map_or(0, jwt_expiry),
            _ => 0,
        };
    }
    found
}

/// Credentials and error entries in a one-shot read (the bench trees refer
/// to no other file, so nothing is hidden as a duplicate).
fn counts(report: &lapse::inventory::SourceReport) -> (usize, usize) {
    let credentials = report.parts.iter().map(|p| p.credentials.len()).sum();
    let errors = report.errors.len() + report.parts.iter().map(|p| p.errors.len()).sum::<usize>();
    (credentials, errors)
}

/// `LAPSE_BENCH_DIR` mode: the floor and the library scan on a given tree.
fn bench_dir(dir: &Path) {
    let found = floor_mixed(dir);
    let files = walkdir::WalkDir::new(dir)
        .into_iter()
        .filter(|e| e.as_ref().is_ok_and(|e| e.file_type().is_file()))
        .count();
    let opts = lapse::source::files::scanner::ScanOptions::default();
    let roots = [dir.to_path_buf()];
    let (credentials, errors) = counts(&read_once(&roots, None, &opts));
    println!(
        "tree {}: {files} files; floor finds {found} credentials, lapse scan {credentials} ({errors} errors)",
        dir.display(),
    );
    report(
        "lapse library scan",
        time_runs(|| {
            read_once(&roots, None, &opts);
        }),
        files,
    );
    let (best, median) = time_runs(|| {
        assert_eq!(floor_mixed(dir), found);
    });
    report(
        "floor: read + parse per kind, 1 core",
        (best, median),
        files,
    );
    println!(
        "floor-dir: {found} credentials, median {:.6} s",
        median.as_secs_f64()
    );
}

fn main() {
    // `cargo test --benches` runs this in test mode; do nothing there.
    if std::env::args().any(|a| a == "--test" || a == "--list") {
        return;
    }
    if let Ok(dir) = std::env::var("LAPSE_BENCH_DIR") {
        bench_dir(Path::new(&dir));
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

    let opts = lapse::source::files::scanner::ScanOptions::default();
    let roots = [dir.path().to_path_buf()];
    let (credentials, errors) = counts(&read_once(&roots, None, &opts));
    assert_eq!(credentials, n, "every certificate found");
    assert_eq!(errors, 0);

    report(
        "lapse library scan",
        time_runs(|| {
            let r = read_once(&roots, None, &opts);
            assert_eq!(counts(&r).0, n);
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
