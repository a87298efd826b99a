//! `lapse serve --config`: a bad lapse.yaml stops start-up with every
//! problem named by field; a good one's token rules give opaque tokens a
//! validity window that `/metrics` and `lapse check` both report.

use crate::support::*;
use serde_json::json;
use std::time::{Duration, UNIX_EPOCH};

#[test]
fn a_bad_config_stops_start_up_naming_every_field() {
    let s = Scratch::new();
    s.write("certs/placeholder.txt", "nothing here");
    s.write(
        "lapse.yaml",
        "files:\n  pahts: [certs]\n  max_file_size: lots\n\
         tokens:\n- path: '*.token'\n  validity: 9x\n- field: token\n\
         thresholds: {warning: soon, critical: 7d}\n\
         listen: nowhere\nbogus: 1\n",
    );

    let out = s
        .serve()
        .args(["--config", "lapse.yaml", "certs"])
        .run_to_exit(Duration::from_secs(5));

    out.assert_code(3);
    for field in [
        "files.pahts: unknown field",
        "files.max_file_size: invalid size \"lots\"",
        "tokens[0].validity: invalid duration \"9x\"",
        "tokens[1].path: required",
        "tokens[1].validity: required",
        "thresholds.warning: invalid duration \"soon\"",
        "listen: \"nowhere\" is not HOST:PORT",
        "bogus: unknown field",
    ] {
        assert_contains(&out.stderr, &format!("lapse.yaml: {field}"));
    }
    assert_eq!(
        out.stderr.lines().count(),
        8,
        "one line per problem:\n{}",
        out.stderr
    );
}

#[test]
fn a_missing_config_file_is_an_error() {
    let s = Scratch::new();
    let out = s
        .serve()
        .args(["--config", "absent.yaml"])
        .run_to_exit(Duration::from_secs(5));
    out.assert_code(3);
    assert_contains(&out.stderr, "absent.yaml: cannot read");
}

#[test]
fn nothing_to_watch_is_an_error() {
    let s = Scratch::new();
    let out = s.serve().run_to_exit(Duration::from_secs(5));
    out.assert_code(3);
    assert_contains(&out.stderr, "nothing to watch");
}

#[test]
fn token_rule_gives_an_opaque_token_its_validity_window() {
    let s = Scratch::new();
    // Issued 40 days ago, valid for 90: lapses in 50 days, which the
    // configured 60-day warning threshold flags and the default would not.
    let issued = unix_now() - 40 * DAY;
    let not_after = issued + 90 * DAY;
    let token = "opaque-ci-token-7f3a9c1e5b";
    s.write("etc/tokens/ci.token", format!("{token}\n"));
    std::fs::File::options()
        .write(true)
        .open(s.path("etc/tokens/ci.token"))
        .and_then(|f| f.set_modified(UNIX_EPOCH + Duration::from_secs(issued as u64)))
        .expect("set the token's mtime");
    s.write("etc/tokens/notes.txt", "not a token rule's business");
    s.write(
        "etc/lapse.yaml",
        "files:\n  paths: [tokens]\n\
         tokens:\n- path: '*.token'\n  validity: 90d\n  issued_at: mtime\n\
         thresholds: {warning: 60d, critical: 7d}\n",
    );

    let server = s.serve().args(["--config", "etc/lapse.yaml"]).start();
    let m = server.metrics();
    // Relative to the configuration file's directory.
    let path = "etc/tokens/ci.token";
    let labels = [
        ("kind", "opaque-token"),
        ("path", path),
        ("fingerprint", &sha256(token)["sha256:".len()..][..16]),
    ];
    m.assert_window(&labels, issued, not_after);
    assert_eq!(
        m.value("lapse_credential_validity_seconds", &labels),
        7_776_000.0
    );
    assert!(m.value("lapse_credential_expires_in_seconds", &labels) > 0.0);
    assert_eq!(m.paths(), [path]);
    assert!(!m.text.contains(token), "token text in /metrics");

    let page = server.get("/");
    assert_contains(&page.body, "warning within 60d, critical within 7d");
    assert_contains(&page.body, "<td class=\"warning\">warning</td>");
    assert_contains(
        &page.body,
        "declared validity 90d from the file&#39;s modification time",
    );
    assert!(!page.body.contains(token), "token text on the page");
    drop(server);

    let report = s.check().args(["--config", "etc/lapse.yaml"]).json();
    report.assert_no_errors().assert_credential_count(1);
    assert_fields(
        report.credential(path, None, None),
        json!({
            "kind": "opaque-token",
            "expiry_source": "validity-window",
            "not_before": rfc3339(issued),
            "not_after": rfc3339(not_after),
        }),
    );
}

/// `2026-01-02T03:04:05Z`.
fn rfc3339(t: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(t)
        .expect("a valid time")
        .format(&time::format_description::well_known::Rfc3339)
        .expect("formattable")
}

/// A `tokens:` rule that names its files by path is read by `check` and
/// `serve` alike, whether or not `files.paths` covers them (it used to be
/// read only when a walked directory happened to hold the file).
#[test]
fn a_token_rule_path_outside_files_paths_is_read() {
    let s = Scratch::new();
    let issued = unix_now() - 10 * DAY;
    let not_after = issued + 60 * DAY;
    let token = "cloud-agent-login-2b7e1c9d";
    s.write(
        "opt/wssd/k8s/cloudlogin.yaml",
        format!(
            "name: agent\ntoken: {token}\nclienttype: ExternalClient\n\
             cloudfqdn: ca.example\ncloudport: 55000\nissued: {issued}\n"
        ),
    );
    s.write("etc/pki/placeholder.txt", "nothing here");
    s.write(
        "etc/lapse.yaml",
        format!(
            "files:\n  paths: [pki]\n\
             tokens:\n- path: {}/*.yaml\n  field: token\n  validity: 60d\n  issued_at: field:issued\n",
            s.abs("opt/wssd/k8s")
        ),
    );
    let path = s.abs("opt/wssd/k8s/cloudlogin.yaml");
    let report = s.check().args(["--config", "etc/lapse.yaml"]).json();
    report.assert_no_errors().assert_credential_count(1);
    assert_fields(
        report.credential(&path, Some("token"), None),
        json!({
            "kind": "opaque-token",
            "expiry_source": "validity-window",
            "not_before": rfc3339(issued),
            "not_after": rfc3339(not_after),
        }),
    );
    assert!(!report.stdout.contains(token), "token text in the report");

    let server = s.serve().args(["--config", "etc/lapse.yaml"]).start();
    let m = server.metrics();
    let labels = [
        ("kind", "opaque-token"),
        ("path", path.as_str()),
        ("entry", "token"),
    ];
    m.assert_window(&labels, issued, not_after);

    // A rule whose literal directory is missing is reported, not silently empty.
    s.write(
        "etc/missing.yaml",
        format!(
            "tokens:\n- path: {}/*.yaml\n  validity: 60d\n",
            s.abs("opt/absent")
        ),
    );
    let report = s.check().args(["--config", "etc/missing.yaml"]).json();
    assert_eq!(report.code, 3, "{}", report.stderr);
    let reason = report.reason(&s.abs("opt/absent"), None);
    assert_eq!(reason, "no such file or directory");
}
