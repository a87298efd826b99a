//! What every Prometheus exporter and CLI tool does and lapse must too:
//! durations with units, `--version` naming the build, `process_*`
//! metrics, `--web.telemetry-path`, shell completions and a man page.

use crate::support::*;
use time::macros::datetime;

fn cert_expiring_in(s: &Scratch, name: &str, seconds: i64) {
    let not_after = datetime!(2026-06-01 0:00 UTC) + time::Duration::seconds(seconds);
    let cert = Cert::ca(name, datetime!(2025-01-01 0:00 UTC), not_after);
    s.write(&format!("{name}.pem"), cert.pem);
}

#[test]
fn a_duration_without_a_unit_is_refused_on_the_command_line() {
    let s = Scratch::new();
    cert_expiring_in(&s, "soon", 20 * DAY);

    let bare = s.check().args(["soon.pem", "--warning", "30"]).run();
    bare.assert_code(3);
    assert_eq!(bare.stdout, "");
    assert_eq!(
        bare.stderr.lines().next().unwrap_or_default(),
        "error: invalid value '30' for '--warning <WARNING>': \
         duration \"30\" has no unit: add a unit: 30d (or 30h, 30m, 30s)"
    );

    // Once 30 s and 10 s: nothing was ever in warning.
    let both = s
        .check()
        .args(["soon.pem", "--warning", "30", "--critical", "10"])
        .run();
    both.assert_code(3);
    assert_contains(&both.stderr, "add a unit: 30d");

    let critical = s.check().args(["soon.pem", "--critical", "10"]).run();
    critical.assert_code(3);
    assert_contains(
        &critical.stderr,
        "duration \"10\" has no unit: add a unit: 10d (or 10h, 10m, 10s)",
    );

    // With units, the same numbers mean what they say.
    let days = s
        .check()
        .args(["soon.pem", "--warning", "30d", "--critical", "10d"])
        .json();
    let c = days.credential("soon.pem", None, Some(0));
    assert_eq!(c["status"], "warning");
}

#[test]
fn a_duration_without_a_unit_is_refused_in_lapse_yaml() {
    let s = Scratch::new();
    cert_expiring_in(&s, "soon", 20 * DAY);
    s.write(
        "lapse.yaml",
        "paths: [soon.pem]\nthresholds: {warning: 30, critical: 7d}\n",
    );
    let out = s.check().args(["--config", "lapse.yaml"]).run();
    out.assert_code(3);
    assert_eq!(out.stdout, "");
    assert_contains(
        &out.stderr,
        "thresholds.warning: duration \"30\" has no unit: add a unit: 30d (or 30h, 30m, 30s)",
    );
}

#[test]
fn a_warning_shorter_than_critical_is_refused_naming_both() {
    let s = Scratch::new();
    cert_expiring_in(&s, "soon", 5 * DAY);
    let out = s
        .check()
        .args(["soon.pem", "--warning", "3d", "--critical", "7d"])
        .run();
    out.assert_code(3);
    assert_eq!(out.stdout, "");
    assert_eq!(
        out.stderr,
        "lapse: --warning (3d) is shorter than --critical (7d): warning must be the longer window\n"
    );
    // The default critical (7d) counts as well.
    let against_default = s.check().args(["soon.pem", "--warning", "2d"]).run();
    against_default.assert_code(3);
    assert_eq!(
        against_default.stderr,
        "lapse: --warning (2d) is shorter than --critical (7d): warning must be the longer window\n"
    );
}
