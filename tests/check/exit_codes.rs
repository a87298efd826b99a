//! Status thresholds (`--warning`, `--critical`) and the Nagios/Icinga
//! exit status: 2 expired or critical, 1 warning or not yet valid, 3 errors
//! only, nothing found, or a usage error, 0 otherwise.

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
    assert_eq!(exit_code_for(|_| {}), 3, "nothing found");
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
        "lapse: --warning (30d) is shorter than --critical (40d): warning must be the longer window\n",
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

/// A certificate whose `not_before` is still ahead is refused by every TLS
/// client today: `not-yet-valid`, exit 1 at least (2 when its expiry is
/// critical too), in the table, its summary and the JSON.
#[test]
fn a_certificate_not_yet_valid_is_not_ok() {
    let s = Scratch::new();
    let future = Cert::ca(
        "future",
        datetime!(2026-06-06 0:00 UTC),
        datetime!(2027-06-01 0:00 UTC),
    );
    s.write("future.pem", &future.pem);
    let soon = Cert::ca(
        "soon",
        datetime!(2026-06-02 0:00 UTC),
        datetime!(2026-06-04 0:00 UTC),
    );
    s.write("soon.pem", &soon.pem);
    cert_expiring_in(&s, "ok", 90 * DAY);

    let report = s.check().args(["future.pem", "ok.pem"]).json();
    report.assert_no_errors().assert_code(1);
    assert_fields(
        report.credential("future.pem", None, Some(0)),
        json!({"status": "not-yet-valid", "not_before": "2026-06-06T00:00:00Z",
               "expires_in_seconds": 365 * DAY}),
    );
    assert_eq!(status_of(&report, "ok"), "ok");

    let table = s.check().args(["future.pem", "ok.pem"]).run();
    table.assert_code(1);
    assert_eq!(
        table.stdout,
        "\
STATUS         EXPIRES (UTC)        LEFT     KIND  SUBJECT  WHERE
ok             2026-08-30 00:00:00  in 90d   x509  ok       ok.pem
not-yet-valid  2027-06-01 00:00:00  in 365d  x509  future   future.pem

2 credentials: 0 expired, 0 critical, 0 warning, 1 not yet valid, 1 ok, 0 without expiry
"
    );

    let critical = s.check().args(["soon.pem", "--format", "json"]).run();
    assert_eq!(critical.code, 2, "not yet valid and expiring within 7d");
    let report = Report::parse(critical);
    assert_eq!(status_of(&report, "soon"), "not-yet-valid");

    // Judged after its not_before, it is an ordinary certificate.
    let later = s
        .check_at("2026-06-06T00:00:00Z")
        .args(["future.pem", "--format", "json"])
        .run();
    assert_eq!(later.code, 0);
    assert_eq!(status_of(&Report::parse(later), "future"), "ok");
}

/// Checking nothing is not a clean bill of health: no credential and no
/// error exits 3 with one line on stderr, unless `--allow-empty`.
#[test]
fn nothing_found_exits_3_unless_allow_empty() {
    let s = Scratch::new();
    s.mkdir("empty");
    s.write("lapse.yaml", "");

    let piped = s.check().arg("-").stdin("\n").run();
    assert_eq!(
        (piped.code, piped.stderr.as_str()),
        (3, "lapse: nothing found to check in -\n")
    );
    assert_eq!(
        piped.stdout,
        "STATUS  EXPIRES (UTC)  LEFT  KIND  SUBJECT  WHERE\n\n0 credentials: 0 expired, 0 critical, 0 warning, 0 ok, 0 without expiry\n"
    );

    let dir = s.check().arg("empty").run();
    assert_eq!(
        (dir.code, dir.stderr.as_str()),
        (3, "lapse: nothing found to check in empty\n")
    );

    let json = s
        .check()
        .args(["empty", "-", "--format", "json"])
        .stdin("")
        .run();
    assert_eq!(
        (json.code, json.stderr.as_str()),
        (3, "lapse: nothing found to check in -, empty\n")
    );
    Report::parse(json)
        .assert_credential_count(0)
        .assert_error_count(0);

    let config = s.check().args(["--config", "lapse.yaml"]).run();
    assert_eq!(
        (config.code, config.stderr.as_str()),
        (3, "lapse: nothing found to check: no paths to read\n")
    );

    for args in [
        vec!["-", "--allow-empty"],
        vec!["empty", "--allow-empty"],
        vec!["--config", "lapse.yaml", "--allow-empty"],
    ] {
        let allowed = s.check().args(&args).stdin("").run();
        assert_eq!((allowed.code, allowed.stderr.as_str()), (0, ""), "{args:?}");
    }
}

/// A file named on the command line that yields no credential and no
/// error says so on stderr, beside what the others found; the exit status
/// still follows the findings (and `--allow-empty`).
#[test]
fn a_named_file_that_yields_nothing_says_so() {
    let s = Scratch::new();
    cert_expiring_in(&s, "far", 90 * DAY);
    s.write("notes.txt", "nothing to see here\n");
    s.mkdir("empty");
    let key = std::process::Command::new("openssl")
        .args(["genpkey", "-algorithm", "ed25519", "-out"])
        .arg(s.path("tls.key"))
        .output()
        .expect("run openssl");
    assert!(key.status.success(), "{key:?}");

    let both = s.check().args(["tls.key", "far.pem", "notes.txt"]).json();
    both.assert_no_errors().assert_code(0);
    assert_eq!(status_of(&both, "far"), "ok");
    assert_eq!(
        both.stderr,
        "lapse: tls.key: no credential found in this file\n\
         lapse: notes.txt: no credential found in this file\n"
    );

    let allowed = s.check().args(["tls.key", "--allow-empty"]).run();
    assert_eq!(
        (allowed.code, allowed.stderr.as_str()),
        (0, "lapse: tls.key: no credential found in this file\n")
    );

    // Alone, the "nothing found" line names it; one line is enough.
    let alone = s.check().arg("tls.key").run();
    assert_eq!(
        (alone.code, alone.stderr.as_str()),
        (3, "lapse: nothing found to check in tls.key\n")
    );
    let many = s
        .check()
        .args(["notes.txt", "empty", "-", "tls.key", "--format", "json"])
        .stdin("")
        .run();
    assert_eq!(
        (many.code, many.stderr.as_str()),
        (
            3,
            "lapse: tls.key: no credential found in this file\n\
             lapse: nothing found to check in -, notes.txt, empty and 1 more\n"
        )
    );
}
