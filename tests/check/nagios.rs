//! `lapse check --format nagios`: the status line with its state word and
//! performance data, then the most urgent credentials and the errors, as
//! the Nagios plugin guidelines describe; the state word always matches
//! the exit status. The performance data is checked by a parser written
//! here from the guidelines' grammar, not by lapse's code.

mod perfdata;

use crate::support::*;
use perfdata::check_plugin_output;
use serde_json::json;
use time::macros::datetime;

/// Writes a self-signed `CN=<cn>` certificate to `rel`, valid from
/// 2025-01-01 until `seconds` after AT.
fn cert(s: &Scratch, rel: &str, cn: &str, seconds: i64) {
    let not_after = datetime!(2026-06-01 0:00 UTC) + time::Duration::seconds(seconds);
    s.write(
        rel,
        Cert::ca(cn, datetime!(2025-01-01 0:00 UTC), not_after).pem,
    );
}

/// A kubeconfig whose user `robot` holds `token`.
fn kubeconfig(token: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\n\
         users:\n- name: robot\n  user:\n    token: {token}\n"
    )
}

fn nagios(s: &Scratch, args: &[&str]) -> Outcome {
    s.check().args(args).args(["--format", "nagios"]).run()
}

/// Asserts the whole output and the exit status, printing both plainly.
fn assert_output(out: &Outcome, code: i32, stdout: &str) {
    assert_eq!(
        (out.code, out.stdout.as_str(), out.stderr.as_str()),
        (code, stdout, ""),
        "\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.stdout,
        out.stderr
    );
    check_plugin_output(&out.stdout, code);
}

#[test]
fn all_fine_is_ok_and_names_what_expires_next() {
    let s = Scratch::new();
    cert(&s, "certs/api.pem", "api.example.com", 90 * DAY);
    cert(&s, "certs/db.pem", "db.example.com", 45 * DAY + 6 * HOUR);

    let out = nagios(&s, &["certs"]);

    assert_output(
        &out,
        0,
        "LAPSE OK - 0 expired, 0 critical, 0 warning, 2 ok | expired=0;;;0; critical=0;;;0; \
         warning=0;;;0; not_yet_valid=0;;;0; ok=2;;;0; no_expiry=0;;;0; errors=0;;;0; \
         soonest_seconds=3909600s;@~:2592000;@~:604800;;\n\
         ok 2026-07-16 06:00:00 UTC (in 45d 6h) x509 db.example.com in certs/db.pem\n",
    );
}

/// A warning and a credential not yet valid (whose expiry is far): the
/// state is WARNING; worst first, then soonest first.
#[test]
fn warning_and_not_yet_valid_are_warning() {
    let s = Scratch::new();
    cert(&s, "certs/api.pem", "api.example.com", 20 * DAY);
    cert(&s, "certs/far.pem", "far.example.com", 200 * DAY);
    let early = Cert::ca(
        "next.example.com",
        datetime!(2026-06-15 0:00 UTC),
        datetime!(2027-06-15 0:00 UTC),
    );
    s.write("certs/next.pem", early.pem);

    let out = nagios(&s, &["certs"]);

    assert_output(
        &out,
        1,
        "LAPSE WARNING - 0 expired, 0 critical, 1 warning, 1 not yet valid, 1 ok | expired=0;;;0; \
         critical=0;;;0; warning=1;;;0; not_yet_valid=1;;;0; ok=1;;;0; no_expiry=0;;;0; \
         errors=0;;;0; soonest_seconds=1728000s;@~:2592000;@~:604800;;\n\
         warning 2026-06-21 00:00:00 UTC (in 20d) x509 api.example.com in certs/api.pem\n\
         not-yet-valid 2027-06-15 00:00:00 UTC (in 379d), valid from 2026-06-15 00:00:00 UTC \
         x509 next.example.com in certs/next.pem\n",
    );
}

/// Every status at once, a token that never expires and an error: the
/// state is CRITICAL, the error is named after the counts, and
/// `soonest_seconds` is negative (expired two days ago).
#[test]
fn expired_and_critical_are_critical() {
    let s = Scratch::new();
    cert(&s, "pki/old.pem", "old.example.com", -2 * DAY);
    cert(&s, "pki/soon.pem", "soon.example.com", 3 * DAY);
    cert(&s, "pki/edge.pem", "edge.example.com", 7 * DAY);
    cert(&s, "pki/later.pem", "later.example.com", 30 * DAY);
    cert(&s, "pki/fine.pem", "fine.example.com", 31 * DAY);
    let token = jwt(
        json!({"sub": "system:serviceaccount:ci:robot"}),
        "sig-forever",
    );
    s.write("pki/robot.kubeconfig", kubeconfig(&token));
    s.write(
        "pki/broken.pem",
        "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n",
    );

    let out = nagios(&s, &["pki"]);

    assert_output(
        &out,
        2,
        "LAPSE CRITICAL - 1 expired, 2 critical, 1 warning, 1 ok, 1 without expiry; 1 error | \
         expired=1;;;0; critical=2;;;0; warning=1;;;0; not_yet_valid=0;;;0; ok=1;;;0; \
         no_expiry=1;;;0; errors=1;;;0; soonest_seconds=-172800s;@~:2592000;@~:604800;;\n\
         expired 2026-05-30 00:00:00 UTC (2d ago) x509 old.example.com in pki/old.pem\n\
         critical 2026-06-04 00:00:00 UTC (in 3d) x509 soon.example.com in pki/soon.pem\n\
         critical 2026-06-08 00:00:00 UTC (in 7d) x509 edge.example.com in pki/edge.pem\n\
         warning 2026-07-01 00:00:00 UTC (in 30d) x509 later.example.com in pki/later.pem\n\
         error: pki/broken.pem: certificate #0: PEM block CERTIFICATE: invalid base64 \
         (bad character at offset 3)\n",
    );
    assert!(!out.stdout.contains(&token[..40]), "the token leaked");
}

/// Errors and nothing else: UNKNOWN, the errors listed.
#[test]
fn errors_only_are_unknown() {
    let s = Scratch::new();
    s.write(
        "bad/a.pem",
        "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n",
    );
    s.write("bad/b.p12", noise(64));

    let out = nagios(&s, &["bad", "missing.pem"]);

    assert_output(
        &out,
        3,
        "LAPSE UNKNOWN - 3 errors, no credential found | expired=0;;;0; critical=0;;;0; \
         warning=0;;;0; not_yet_valid=0;;;0; ok=0;;;0; no_expiry=0;;;0; errors=3;;;0;\n\
         error: bad/a.pem: certificate #0: PEM block CERTIFICATE: invalid base64 \
         (bad character at offset 3)\n\
         error: bad/b.p12: named like a certificate or token, but holds no format lapse recognises\n\
         error: missing.pem: no such file or directory\n",
    );
}

/// Errors beside credentials that are all fine: UNKNOWN, errors first.
#[test]
fn errors_beside_fine_credentials_are_unknown() {
    let s = Scratch::new();
    cert(&s, "certs/api.pem", "api.example.com", 90 * DAY);

    let out = nagios(&s, &["certs", "missing.pem"]);

    assert_output(
        &out,
        3,
        "LAPSE UNKNOWN - 1 error; 0 expired, 0 critical, 0 warning, 1 ok | expired=0;;;0; \
         critical=0;;;0; warning=0;;;0; not_yet_valid=0;;;0; ok=1;;;0; no_expiry=0;;;0; \
         errors=1;;;0; soonest_seconds=7776000s;@~:2592000;@~:604800;;\n\
         ok 2026-08-30 00:00:00 UTC (in 90d) x509 api.example.com in certs/api.pem\n\
         error: missing.pem: no such file or directory\n",
    );
}

/// Nothing read at all: UNKNOWN on the status line, not on stderr.
#[test]
fn nothing_found_is_unknown() {
    let s = Scratch::new();
    s.mkdir("empty");

    let out = nagios(&s, &["empty"]);

    assert_output(
        &out,
        3,
        "LAPSE UNKNOWN - nothing found to check in empty | expired=0;;;0; critical=0;;;0; \
         warning=0;;;0; not_yet_valid=0;;;0; ok=0;;;0; no_expiry=0;;;0; errors=0;;;0;\n",
    );
}

/// What `check` says on stderr otherwise — a pattern that matches
/// nothing, a file that holds no credential — goes into the long text:
/// Icinga 2 reads stderr into the same output, and a line there ahead
/// of the status line would take its place.
#[test]
fn notices_go_to_the_long_text_not_stderr() {
    let s = Scratch::new();
    cert(&s, "certs/api.pem", "api.example.com", 90 * DAY);
    s.write("notes.txt", "nothing to see\n");

    let out = nagios(&s, &["certs", "notes.txt", "nowhere/*.pem"]);

    assert_output(
        &out,
        0,
        "LAPSE OK - 0 expired, 0 critical, 0 warning, 1 ok | expired=0;;;0; critical=0;;;0; \
         warning=0;;;0; not_yet_valid=0;;;0; ok=1;;;0; no_expiry=0;;;0; errors=0;;;0; \
         soonest_seconds=7776000s;@~:2592000;@~:604800;;\n\
         ok 2026-08-30 00:00:00 UTC (in 90d) x509 api.example.com in certs/api.pem\n\
         nowhere/*.pem: no file matches this pattern\n\
         notes.txt: no credential found in this file\n",
    );
}

/// `--warning` and `--critical` are the thresholds of `soonest_seconds`,
/// in seconds; at exactly the warning window the state is WARNING and the
/// range alerts too.
#[test]
fn thresholds_follow_warning_and_critical() {
    let s = Scratch::new();
    cert(&s, "a.pem", "a.example.com", 90 * DAY);

    let out = nagios(&s, &["a.pem", "--warning", "90d", "--critical", "45d"]);

    assert_output(
        &out,
        1,
        "LAPSE WARNING - 0 expired, 0 critical, 1 warning, 0 ok | expired=0;;;0; critical=0;;;0; \
         warning=1;;;0; not_yet_valid=0;;;0; ok=0;;;0; no_expiry=0;;;0; errors=0;;;0; \
         soonest_seconds=7776000s;@~:7776000;@~:3888000;;\n\
         warning 2026-08-30 00:00:00 UTC (in 90d) x509 a.example.com in a.pem\n",
    );
}

/// At most ten credentials and ten errors are listed; the rest counted.
#[test]
fn long_lists_are_capped() {
    let s = Scratch::new();
    for i in 0..13 {
        cert(
            &s,
            &format!("many/c{i:02}.pem"),
            &format!("c{i:02}"),
            -(i + 1) * HOUR,
        );
    }
    for i in 0..12 {
        s.write(
            &format!("many/e{i:02}.pem"),
            "-----BEGIN CERTIFICATE-----\n!\n-----END CERTIFICATE-----\n",
        );
    }

    let out = nagios(&s, &["many"]);

    assert_output(
        &out,
        2,
        "LAPSE CRITICAL - 13 expired, 0 critical, 0 warning, 0 ok; 12 errors | expired=13;;;0; \
         critical=0;;;0; warning=0;;;0; not_yet_valid=0;;;0; ok=0;;;0; no_expiry=0;;;0; \
         errors=12;;;0; soonest_seconds=-46800s;@~:2592000;@~:604800;;\n\
         expired 2026-05-31 11:00:00 UTC (13h ago) x509 c12 in many/c12.pem\n\
         expired 2026-05-31 12:00:00 UTC (12h ago) x509 c11 in many/c11.pem\n\
         expired 2026-05-31 13:00:00 UTC (11h ago) x509 c10 in many/c10.pem\n\
         expired 2026-05-31 14:00:00 UTC (10h ago) x509 c09 in many/c09.pem\n\
         expired 2026-05-31 15:00:00 UTC (9h ago) x509 c08 in many/c08.pem\n\
         expired 2026-05-31 16:00:00 UTC (8h ago) x509 c07 in many/c07.pem\n\
         expired 2026-05-31 17:00:00 UTC (7h ago) x509 c06 in many/c06.pem\n\
         expired 2026-05-31 18:00:00 UTC (6h ago) x509 c05 in many/c05.pem\n\
         expired 2026-05-31 19:00:00 UTC (5h ago) x509 c04 in many/c04.pem\n\
         expired 2026-05-31 20:00:00 UTC (4h ago) x509 c03 in many/c03.pem\n\
         and 3 more\n\
         error: many/e00.pem: certificate #0: PEM block CERTIFICATE: invalid base64 \
         (bad character at offset 0)\n\
         error: many/e01.pem: certificate #0: PEM block CERTIFICATE: invalid base64 \
         (bad character at offset 0)\n\
         error: many/e02.pem: certificate #0: PEM block CERTIFICATE: invalid base64 \
         (bad character at offset 0)\n\
         error: many/e03.pem: certificate #0: PEM block CERTIFICATE: invalid base64 \
         (bad character at offset 0)\n\
         error: many/e04.pem: certificate #0: PEM block CERTIFICATE: invalid base64 \
         (bad character at offset 0)\n\
         error: many/e05.pem: certificate #0: PEM block CERTIFICATE: invalid base64 \
         (bad character at offset 0)\n\
         error: many/e06.pem: certificate #0: PEM block CERTIFICATE: invalid base64 \
         (bad character at offset 0)\n\
         error: many/e07.pem: certificate #0: PEM block CERTIFICATE: invalid base64 \
         (bad character at offset 0)\n\
         error: many/e08.pem: certificate #0: PEM block CERTIFICATE: invalid base64 \
         (bad character at offset 0)\n\
         error: many/e09.pem: certificate #0: PEM block CERTIFICATE: invalid base64 \
         (bad character at offset 0)\n\
         and 2 more errors\n",
    );
}

/// A credential not yet valid whose expiry is within the critical window
/// is CRITICAL (as the exit status has always said), though it is counted
/// as not yet valid.
#[test]
fn not_yet_valid_expiring_soon_is_critical() {
    let s = Scratch::new();
    let early = Cert::ca(
        "short.example.com",
        datetime!(2026-06-02 0:00 UTC),
        datetime!(2026-06-04 0:00 UTC),
    );
    s.write("short.pem", early.pem);

    let out = nagios(&s, &["short.pem"]);

    assert_output(
        &out,
        2,
        "LAPSE CRITICAL - 0 expired, 0 critical, 0 warning, 1 not yet valid, 0 ok | \
         expired=0;;;0; critical=0;;;0; warning=0;;;0; not_yet_valid=1;;;0; ok=0;;;0; \
         no_expiry=0;;;0; errors=0;;;0; soonest_seconds=259200s;@~:2592000;@~:604800;;\n\
         not-yet-valid 2026-06-04 00:00:00 UTC (in 3d), valid from 2026-06-02 00:00:00 UTC \
         x509 short.example.com in short.pem\n",
    );
}

/// Tokens are named by their subject and place, never by their text —
/// neither a good one nor one that does not parse.
#[test]
fn no_token_text_in_the_output() {
    let s = Scratch::new();
    let good = jwt(
        json!({"sub": "system:serviceaccount:ci:deployer", "exp": unix(datetime!(2026-06-03 0:00 UTC))}),
        "canary-signature-good",
    );
    let bad = format!(
        "{}.bm90IGpzb24.{}",
        b64url("{\"alg\":\"RS256\"}"),
        b64url("canary-signature-bad")
    );
    s.write(
        "kube/config",
        format!(
            "apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers:\n\
             - name: deployer\n  user:\n    token: {good}\n\
             - name: broken\n  user:\n    token: {bad}\n"
        ),
    );

    let out = nagios(&s, &["kube/config"]);

    assert_eq!(out.code, 2, "{}", out.stdout);
    check_plugin_output(&out.stdout, 2);
    assert_contains(
        &out.stdout,
        "critical 2026-06-03 00:00:00 UTC (in 2d) jwt system:serviceaccount:ci:deployer \
         in kube/config [users[deployer].token]\n",
    );
    for secret in [good.as_str(), bad.as_str()] {
        for part in secret.split('.') {
            assert!(
                !out.stdout.contains(part) && !out.stderr.contains(part),
                "token text {part:?} leaked:\n{}{}",
                out.stdout,
                out.stderr
            );
        }
    }
}

/// The README's example, byte for byte: a kubeadm-like PKI directory.
#[test]
fn readme_example() {
    let s = Scratch::new();
    let ca = Cert::ca(
        "kubernetes",
        datetime!(2025-06-01 0:00 UTC),
        datetime!(2035-05-30 0:00 UTC),
    );
    let leaf = |rel: &str, cn: &str, not_after| {
        let cert = ca.issue(cn, datetime!(2025-06-01 0:00 UTC), not_after);
        s.write(rel, cert.pem);
    };
    s.write("pki/ca.crt", &ca.pem);
    leaf(
        "pki/apiserver.crt",
        "kube-apiserver",
        datetime!(2026-06-05 09:00 UTC),
    );
    leaf(
        "pki/front-proxy-client.crt",
        "front-proxy-client",
        datetime!(2026-06-20 0:00 UTC),
    );
    leaf(
        "pki/etcd/server.crt",
        "etcd-server",
        datetime!(2026-05-30 12:00 UTC),
    );

    let out = s
        .check_at("2026-06-01T00:00:00Z")
        .args(["--format", "nagios", "pki"])
        .run();

    assert_output(&out, 2, README_EXAMPLE);
    // The README shows this very output, after the command that makes it.
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let shown =
        format!("$ lapse check --at 2026-06-01T00:00:00Z --format nagios pki\n{README_EXAMPLE}```");
    assert!(readme.contains(&shown), "README.md does not show:\n{shown}");
}

const README_EXAMPLE: &str = "\
LAPSE CRITICAL - 1 expired, 1 critical, 1 warning, 1 ok | expired=1;;;0; critical=1;;;0; warning=1;;;0; not_yet_valid=0;;;0; ok=1;;;0; no_expiry=0;;;0; errors=0;;;0; soonest_seconds=-129600s;@~:2592000;@~:604800;;
expired 2026-05-30 12:00:00 UTC (1d 12h ago) x509 etcd-server in pki/etcd/server.crt
critical 2026-06-05 09:00:00 UTC (in 4d 9h) x509 kube-apiserver in pki/apiserver.crt
warning 2026-06-20 00:00:00 UTC (in 19d) x509 front-proxy-client in pki/front-proxy-client.crt
";
