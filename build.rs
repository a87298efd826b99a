//! Records what `lapse --version` and `lapse_build_info` say of the build:
//! the git revision, the build date and the rustc version.
//!
//! The date is reproducible: `SOURCE_DATE_EPOCH` when set (as reproducible
//! builds and Debian set it), else the commit's own date, never the clock,
//! so the same revision built twice is the same binary.

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
}

/// `2026-12-02T05:23:42Z` for seconds since 1970 (days to a civil date as
/// in Howard Hinnant's `civil_from_days`).
fn rfc3339(secs: i64) -> String {
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3_600,
        rem % 3_600 / 60,
        rem % 60
    )
}

fn main() {
    let revision = std::env::var("LAPSE_REVISION")
        .ok()
        .filter(|r| !r.is_empty())
        .or_else(|| git(&["rev-parse", "--short=12", "HEAD"]))
        .unwrap_or_else(|| "unknown".to_string());
    let date = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .or_else(|| git(&["log", "-1", "--format=%ct", "HEAD"]))
        .and_then(|s| s.trim().parse::<i64>().ok())
        .map(rfc3339)
        .unwrap_or_else(|| "unknown".to_string());
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    // "rustc 1.89.0 (29483883e 2025-08-04)"
    let rustc_version = Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .and_then(|v| v.strip_prefix("rustc ").map(str::to_string))
        .unwrap_or_else(|| "unknown".to_string());
    let rust_semver = rustc_version
        .split(' ')
        .next()
        .unwrap_or("unknown")
        .to_string();
    println!("cargo:rustc-env=LAPSE_REVISION={revision}");
    println!("cargo:rustc-env=LAPSE_BUILD_DATE={date}");
    println!("cargo:rustc-env=LAPSE_RUSTC_VERSION={rustc_version}");
    println!("cargo:rustc-env=LAPSE_RUST_SEMVER={rust_semver}");
    println!(
        "cargo:rustc-env=LAPSE_TARGET={}",
        std::env::var("TARGET").unwrap_or_default()
    );
    println!("cargo:rerun-if-env-changed=LAPSE_REVISION");
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    // A worktree's .git is a file: ask git where HEAD and the refs live.
    let git_dir = git(&["rev-parse", "--absolute-git-dir"]).unwrap_or_else(|| ".git".into());
    let common = git(&["rev-parse", "--path-format=absolute", "--git-common-dir"])
        .unwrap_or_else(|| git_dir.clone());
    // Only paths that exist: a missing one reruns this, and rebuilds lapse, every time.
    for path in [
        format!("{git_dir}/HEAD"),
        format!("{common}/refs/heads"),
        format!("{common}/packed-refs"),
    ] {
        if std::path::Path::new(&path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
}
