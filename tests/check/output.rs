//! The report itself: the table people read, the JSON shape tools rely
//! on, colour only when asked or on a terminal, and standard input.

use crate::support::*;
use serde_json::json;
use time::macros::datetime;

/// Three findings of different urgency and one broken file.
fn mixed_tree(s: &Scratch) {
    let ca = Cert::ca(
        "root",
        datetime!(2020-01-01 0:00 UTC),
        datetime!(2030-01-01 0:00 UTC),
    );
    let leaf = ca.issue(
        "leaf",
        datetime!(2026-01-01 0:00 UTC),
        datetime!(2026-06-13 4:00 UTC),
    );
    let old = ca.issue(
        "old",
        datetime!(2025-01-01 0:00 UTC),
        datetime!(2026-05-29 0:00 UTC),
    );
    s.write("tree/b/leaf.pem", leaf.pem);
    s.write("tree/a/old.pem", old.pem);
    s.write(
        "tree/c/sa.jwt",
        jwt(
            json!({"sub": "system:serviceaccount:ci:deployer"}),
            "sig-table",
        ),
    );
    s.write("tree/c/bad.crt", "-----BEGIN CERTIFICATE-----\nMIIB\n");
}

#[test]
fn table_is_sorted_by_soonest_expiry_and_says_time_left_plainly() {
    let s = Scratch::new();
    mixed_tree(&s);

    let out = s.check().arg("tree").run();

    out.assert_code(2);
    let expected = "\
STATUS     EXPIRES (UTC)        LEFT            KIND  SUBJECT                            WHERE
expired    2026-05-29 00:00:00  expired 3d ago  x509  old                                tree/a/old.pem
warning    2026-06-13 04:00:00  in 12d 4h       x509  leaf                               tree/b/leaf.pem
no-expiry  -                    never           jwt   system:serviceaccount:ci:deployer  tree/c/sa.jwt
  └ JWT without exp: it never expires

3 credentials: 1 expired, 0 critical, 1 warning, 0 ok, 1 without expiry; 1 error (listed on stderr)
";
    assert_eq!(out.stdout, expected, "table on stdout");
    assert_eq!(
        out.stderr,
        "error: tree/c/bad.crt: certificate #0: PEM block CERTIFICATE has no matching END line (truncated?)\n",
        "errors on stderr"
    );
}

#[test]
fn table_names_bundle_positions_and_entries() {
    let s = Scratch::new();
    let ca = Cert::ca(
        "root",
        datetime!(2020-01-01 0:00 UTC),
        datetime!(2030-01-01 0:00 UTC),
    );
    let leaf = ca.issue(
        "leaf",
        datetime!(2026-01-01 0:00 UTC),
        datetime!(2026-09-01 0:00 UTC),
    );
    s.write(
        "config",
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: prod\n  cluster:\n    certificate-authority-data: {}\n",
            b64(bundle(&[&leaf, &ca]))
        ),
    );

    let out = s.check().arg("config").run();

    out.assert_code(0);
    let rows: Vec<&str> = out.stdout.lines().skip(1).take(2).collect();
    assert_eq!(
        rows,
        [
            "ok      2026-09-01 00:00:00  in 92d    x509  leaf     config [clusters[prod].certificate-authority-data] #0",
            "ok      2030-01-01 00:00:00  in 1310d  x509  root     config [clusters[prod].certificate-authority-data] #1",
        ]
    );
}

#[test]
fn no_colour_when_not_a_terminal_and_colour_when_forced() {
    let s = Scratch::new();
    mixed_tree(&s);

    let piped = s.check().arg("tree").run();
    assert!(
        !piped.stdout.contains('\x1b'),
        "no escape codes when piped:\n{:?}",
        piped.stdout
    );
    assert!(
        !piped.stderr.contains('\x1b'),
        "no escape codes when piped:\n{:?}",
        piped.stderr
    );

    let forced = s.check().args(["tree", "--color", "always"]).run();
    assert_contains(&forced.stdout, "\x1b[31mexpired\x1b[0m");
    assert_contains(&forced.stdout, "\x1b[33mwarning\x1b[0m");

    let never = s.check().args(["tree", "--color", "never"]).run();
    assert_eq!(never.stdout, piped.stdout);
}

#[test]
fn json_has_exactly_the_documented_keys() {
    let s = Scratch::new();
    mixed_tree(&s);

    let report = s.check().arg("tree").json();

    let keys = |v: &serde_json::Value| -> Vec<String> {
        let mut k: Vec<String> = v.as_object().expect("an object").keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(
        keys(&report.json),
        ["credentials", "errors", "generated_at"]
    );
    report.assert_credential_count(3).assert_error_count(1);
    for c in report.credentials() {
        assert_eq!(
            keys(c),
            [
                "entry",
                "expires_in_seconds",
                "expiry_source",
                "fingerprint",
                "index",
                "issuer",
                "kind",
                "not_after",
                "not_before",
                "path",
                "source",
                "status",
                "subject",
                "used_by",
            ]
        );
    }
    assert_eq!(keys(&report.errors()[0]), ["entry", "path", "reason"]);
    assert_fields(
        &report.errors()[0],
        json!({
            "path": "tree/c/bad.crt",
            "entry": null,
            "reason": "certificate #0: PEM block CERTIFICATE has no matching END line (truncated?)",
        }),
    );
    assert_eq!(report.json["generated_at"], AT);
    assert!(
        report
            .stdout
            .trim_start()
            .starts_with("{\n  \"generated_at\""),
        "generated_at comes first:\n{}",
        report.stdout
    );
}

#[test]
fn json_credentials_are_sorted_by_soonest_expiry() {
    let s = Scratch::new();
    mixed_tree(&s);

    let report = s.check().arg("tree").json();

    let order: Vec<&str> = report
        .credentials()
        .iter()
        .filter_map(|c| c["path"].as_str())
        .collect();
    assert_eq!(
        order,
        ["tree/a/old.pem", "tree/b/leaf.pem", "tree/c/sa.jwt"]
    );
}

#[test]
fn generated_at_is_the_at_time_in_utc() {
    let s = Scratch::new();
    s.write(
        "leaf.pem",
        Cert::ca(
            "x",
            datetime!(2026-01-01 0:00 UTC),
            datetime!(2026-06-02 0:00 UTC),
        )
        .pem,
    );

    let report = s
        .check_at("2026-06-01T02:00:00+02:00")
        .arg("leaf.pem")
        .json();

    assert_eq!(report.json["generated_at"], "2026-06-01T00:00:00Z");
    assert_fields(
        report.credential("leaf.pem", None, Some(0)),
        json!({"expires_in_seconds": DAY}),
    );
}

#[test]
fn dash_reads_standard_input() {
    let s = Scratch::new();
    let cert = Cert::ca(
        "piped",
        datetime!(2026-01-01 0:00 UTC),
        datetime!(2026-07-01 0:00 UTC),
    );
    s.write(
        "also.pem",
        Cert::ca(
            "file",
            datetime!(2026-01-01 0:00 UTC),
            datetime!(2026-08-01 0:00 UTC),
        )
        .pem,
    );

    let report = s
        .check()
        .args(["-", "also.pem"])
        .stdin(cert.pem.clone())
        .json();

    report.assert_no_errors().assert_credential_count(2);
    assert_fields(
        report.credential("-", None, Some(0)),
        json!({"kind": "x509", "source": "file", "subject": "CN=piped",
               "not_after": "2026-07-01T00:00:00Z", "fingerprint": cert.fingerprint()}),
    );
}

#[test]
fn a_kubeconfig_on_standard_input() {
    let s = Scratch::new();
    let token = jwt(
        json!({"sub": "piped-user", "exp": 1_780_358_400}),
        "sig-stdin",
    );
    let kubeconfig = format!(
        "apiVersion: v1\nkind: Config\nusers:\n- name: me\n  user:\n    token: {token}\n    client-certificate: relative.crt\n"
    );

    let report = s.check().arg("-").stdin(kubeconfig).json();

    // A path relative to standard input means nothing: not followed, not an error.
    report.assert_no_errors().assert_credential_count(1);
    assert_fields(
        report.credential("-", Some("users[me].token"), None),
        json!({"source": "kubeconfig", "not_after": "2026-06-02T00:00:00Z"}),
    );
}

/// A CN with a carriage return cannot make an expired row read `ok`, and
/// escape sequences reach neither the table nor stderr: each control
/// character is shown as a visible escape. JSON keeps its own escaping.
#[test]
fn control_characters_in_names_are_shown_escaped() {
    let s = Scratch::new();
    let spoof = Cert::ca(
        "kube-apiserver\rok     ",
        datetime!(2025-01-01 0:00 UTC),
        datetime!(2026-05-01 0:00 UTC),
    );
    let osc = Cert::ca(
        "\x1b]0;owned\x07\x1b[32mfine\u{202e}",
        datetime!(2025-01-01 0:00 UTC),
        datetime!(2026-05-02 0:00 UTC),
    );
    s.write("spoof.pem", &spoof.pem);
    s.write("tree/osc\x1b[2J.pem", &osc.pem);
    s.write(
        "tree/bad\nerror: tree/all-good.crt: fine\n.crt",
        "-----BEGIN CERTIFICATE-----\nMIIB\n",
    );

    let out = s.check().args(["spoof.pem", "tree"]).run();

    out.assert_code(2);
    assert_eq!(
        out.stdout,
        "\
STATUS   EXPIRES (UTC)        LEFT             KIND  SUBJECT                               WHERE
expired  2026-05-01 00:00:00  expired 31d ago  x509  kube-apiserver\\rok                    spoof.pem
expired  2026-05-02 00:00:00  expired 30d ago  x509  \\x1b]0;owned\\x07\\x1b[32mfine\\u{202e}  tree/osc\\x1b[2J.pem

2 credentials: 2 expired, 0 critical, 0 warning, 0 ok, 0 without expiry; 1 error (listed on stderr)
"
    );
    assert_eq!(
        out.stderr,
        "error: tree/bad\\nerror: tree/all-good.crt: fine\\n.crt: certificate #0: PEM block CERTIFICATE has no matching END line (truncated?)\n"
    );

    let report = s.check().args(["spoof.pem", "tree"]).json();
    assert_eq!(
        report.credential("spoof.pem", None, Some(0))["subject"],
        "CN=kube-apiserver\rok     "
    );
    assert_eq!(
        report.errors()[0]["path"],
        "tree/bad\nerror: tree/all-good.crt: fine\n.crt"
    );
    assert_contains(&report.stdout, r#""subject": "CN=kube-apiserver\rok     ""#);
}

/// A start-up problem names its file: a name with a newline and an escape
/// sequence stays on one line of stderr, shown escaped.
#[test]
fn a_config_problem_in_a_strangely_named_file_is_one_escaped_line() {
    let s = Scratch::new();
    s.write(
        "cfg\nlapse: all fine\x1b[2K.yaml",
        "thresholds: {warning: soon}\n",
    );

    let out = s
        .check()
        .args(["--config", "cfg\nlapse: all fine\x1b[2K.yaml"])
        .run();

    out.assert_code(3);
    assert_eq!(
        out.stderr,
        "lapse: cfg\\nlapse: all fine\\x1b[2K.yaml: thresholds.warning: invalid duration \"soon\": a unit needs a number before it\n"
    );
}
