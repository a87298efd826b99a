//! Status thresholds (`--warning`, `--critical`) and the Nagios/Icinga
//! exit status: 2 expired or critical, 1 warning, 3 errors only or a
//! usage error, 0 otherwise.

use crate::support::*;
use serde_json::json;
use time::macros::datetime;

/// Writes `name.pem` expiring `seconds` after AT.
fn cert_expiring_in(s: &Scratch, name: &str, seconds: i64) {
    let not_after = datetime!(2026-06-01 0:00 UTC) + time::Duration::seconds(seconds);
    let cert = Cert::ca(name, datetime!(2025-01-01 0:00 UTC), not_after);
    s.write(&format!("{name}.pem"), cert.pem);
}

fn status_of(report: &Report, name: &str) -> String {
    let c = report.credential(&format!("{name}.pem"), None, Some(0));
    c["status"].as_str().unwrap_or_default().to_string()
}

#[test]
fn default_thresholds_are_30_days_and_7_days_inclusive() {
    let s = Scratch::new();
    let cases = [
        ("far", 31 * DAY, "ok"),
        ("just-ok", 30 * DAY + 1, "ok"),
        ("warn-edge", 30 * DAY, "warning"),
        ("warn", 8 * DAY, "warning"),
        ("crit-edge", 7 * DAY, "critical"),
        ("crit", 1, "critical"),
        ("now", 0, "expired"),
        ("past", -3 * DAY, "expired"),
    ];
    for (name, seconds, _) in cases {
        cert_expiring_in(&s, name, seconds);
    }

    let report = s
        .check()
        .args(cases.map(|(name, _, _)| format!("{name}.pem")))
        .json();

    report
        .assert_no_errors()
        .assert_credential_count(cases.len())
        .assert_code(2);
    for (name, seconds, status) in cases {
        assert_fields(
            report.credential(&format!("{name}.pem"), None, Some(0)),
            json!({"expires_in_seconds": seconds, "status": status}),
        );
    }
}

#[test]
fn custom_thresholds() {
    let s = Scratch::new();
    cert_expiring_in(&s, "a", 100 * DAY);
    cert_expiring_in(&s, "b", 60 * DAY);
    cert_expiring_in(&s, "c", 40 * DAY);
    cert_expiring_in(&s, "d", 10 * DAY);

    let report = s
        .check()
        .args([
            "a.pem",
            "b.pem",
            "c.pem",
            "d.pem",
            "--warning",
            "90d",
            "--critical",
            "45d",
        ])
        .json();

    assert_eq!(
        ["a", "b", "c", "d"].map(|n| status_of(&report, n)),
        ["ok", "warning", "critical", "critical"]
    );
    report.assert_code(2);
}

#[test]
fn thresholds_in_hours_and_seconds() {
    let s = Scratch::new();
    cert_expiring_in(&s, "a", 13 * HOUR);
    cert_expiring_in(&s, "b", 12 * HOUR);
    cert_expiring_in(&s, "c", 90);

    let report = s
        .check()
        .args([
            "a.pem",
            "b.pem",
            "c.pem",
            "--warning",
            "12h",
            "--critical",
            "90s",
        ])
        .json();

    assert_eq!(
        ["a", "b", "c"].map(|n| status_of(&report, n)),
        ["ok", "warning", "critical"]
    );
}

fn exit_code_for(setup: impl FnOnce(&Scratch)) -> i32 {
    let s = Scratch::new();
    s.mkdir("scan");
    setup(&s);
    s.check().arg("scan").run().code
}

#[test]
fn exit_status_follows_the_worst_finding() {
    let write = |s: &Scratch, name: &str, seconds: i64| {
        cert_expiring_in(s, &format!("scan/{name}"), seconds)
    };
    let forever = jwt(json!({"sub": "legacy"}), "sig-forever");

    assert_eq!(exit_code_for(|s| write(s, "ok", 90 * DAY)), 0, "all ok");
    assert_eq!(
        exit_code_for(|s| {
            write(s, "ok", 90 * DAY);
            write(s, "warn", 20 * DAY);
        }),
        1,
        "a warning"
    );
    assert_eq!(
        exit_code_for(|s| write(s, "crit", 2 * DAY)),
        2,
        "a critical"
    );
    assert_eq!(
        exit_code_for(|s| {
            write(s, "warn", 20 * DAY);
            write(s, "gone", -DAY);
        }),
        2,
        "an expired"
    );
    assert_eq!(
        exit_code_for(|s| s.write("scan/bad.crt", "-----BEGIN CERTIFICATE-----\nMIIB\n")),
        3,
        "only errors"
    );
    assert_eq!(
        exit_code_for(|s| {
            write(s, "warn", 20 * DAY);
            s.write("scan/bad.crt", "-----BEGIN CERTIFICATE-----\nMIIB\n");
        }),
        1,
        "a warning and an error"
    );
    assert_eq!(
        exit_code_for(|s| s.write("scan/sa.jwt", &forever)),
        0,
        "only no-expiry findings"
    );
    assert_eq!(exit_code_for(|_| {}), 0, "nothing found");
}

#[test]
fn usage_errors_exit_3() {
    let s = Scratch::new();
    cert_expiring_in(&s, "ok", 90 * DAY);

    let bad_duration = s.check().args(["ok.pem", "--warning", "5x"]).run();
    bad_duration.assert_code(3);
    assert_contains(&bad_duration.stderr, "unknown unit 'x'");
    assert_eq!(bad_duration.stdout, "");

    let inverted = s.check().args(["ok.pem", "--critical", "40d"]).run();
    inverted.assert_code(3);
    assert_contains(
        &inverted.stderr,
        "--critical must not be longer than --warning",
    );

    s.check_at("next tuesday")
        .arg("ok.pem")
        .run()
        .assert_code(3);
    s.check()
        .args(["ok.pem", "--no-such-flag"])
        .run()
        .assert_code(3);
    s.check()
        .args(["ok.pem", "--exclude", "[unclosed"])
        .run()
        .assert_code(3);
    s.check()
        .args(["ok.pem", "--max-file-size", "lots"])
        .run()
        .assert_code(3);
}
