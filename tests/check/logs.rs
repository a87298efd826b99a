//! What `lapse serve` writes to its log (logfmt, the default): plain text
//! only (control characters escaped, in lapse's own lines and in those of
//! the libraries it uses), nothing shaped like a credential from a
//! library's line (the Kubernetes client logs an API server's Status
//! message verbatim), and no flood: the same warning at most 10 times a
//! minute, then one line saying more were suppressed.

use super::kubernetes::*;
use super::log_format::logfmt;
use crate::support::apiserver::ApiServer;
use crate::support::*;

/// The log's lines without their timestamps (the first field, `ts=…`).
fn lines_without_time(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .map(|l| {
            l.split_once(' ')
                .map(|(_, rest)| rest.trim_start())
                .unwrap_or(l)
                .to_string()
        })
        .collect()
}

#[test]
fn an_api_servers_status_message_is_logged_escaped_and_without_its_secrets() {
    let s = Scratch::new();
    let api = ApiServer::start();
    let token = jwt(
        serde_json::json!({"sub": "system:serviceaccount:ci:deployer"}),
        "sig-leak",
    );
    let hex = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    let message = format!(
        "denied by webhook\r\x1b[2K: token {token} rejected; Authorization: Bearer s3cr3t-b3ar3r-t0k3n; key {hex}"
    );
    api.forbid_namespace_saying("ci", &message);
    let server = serve(&s, &api, "  namespaces: [ci]\n", &[]);
    server.wait_for("the source down", |m| m.value(UP, &K8S) == 0.0);
    wait_until("kube's warning in the log", || {
        server.stderr().contains("watch list error with 403")
    });

    let stderr = server.stderr();
    for secret in [token.as_str(), "s3cr3t-b3ar3r-t0k3n", hex, "\r", "\x1b"] {
        assert!(!stderr.contains(secret), "{secret:?} in the log:\n{stderr}");
    }
    // Retries repeat the line; each resource's is one text.
    let mut kube: Vec<String> = stderr
        .lines()
        .map(logfmt)
        .filter(|l| l["msg"].contains("watch list error with 403"))
        .inspect(|l| {
            assert_eq!(
                (&*l["level"], &*l["target"]),
                ("warn", "kube_runtime::watcher")
            )
        })
        .map(|l| l["msg"].clone())
        .collect();
    kube.sort();
    kube.dedup();
    // The token's mark is the fingerprint prefix lapse shows for it.
    let short = |text: &str| sha256(text)["sha256:".len()..][..8].to_string();
    let line = |kind: &str| {
        format!(
            "watch list error with 403: Api(Status {{ status: Some(Failure), code: 403, \
             message: \"denied by webhook\\r\\u{{1b}}[2K: token <redacted sha256:{}> rejected; \
             Authorization: Bearer <redacted sha256:{}>; key <redacted sha256:{}>\", \
             metadata: Some(ListMeta {{ continue_: None, remaining_item_count: None, resource_version: None, self_link: None, shard_info: None }}), \
             reason: \"Forbidden\", details: Some(StatusDetails {{ name: \"\", group: \"\", kind: \"{kind}\", uid: \"\", causes: [], retry_after_seconds: 0 }}) }})",
            short(&token),
            short("s3cr3t-b3ar3r-t0k3n"),
            short(hex),
        )
    };
    assert_eq!(kube, [line("configmaps"), line("secrets")]);
    // lapse's own line for the same failure, unchanged.
    assert_contains(
        &stderr,
        " level=warn msg=\"forbidden: cannot list secrets in namespace ci; grant get, list and watch on secrets\" \
         endpoint=/api/v1/namespaces/ci/secrets reason=\"forbidden\"\n",
    );
}

/// 25 broken files at start-up: ten warnings, then, when the window
/// ends, one line counting the other fifteen.
#[test]
fn the_same_warning_is_written_ten_times_a_window_then_counted() {
    let s = Scratch::new();
    for i in 0..25 {
        s.write(
            &format!("tree/bad-{i:02}.crt"),
            "-----BEGIN CERTIFICATE-----\nMIIB\n",
        );
    }
    let server = s
        .serve()
        .args(["tree", "--log.repeat-window", "2s"])
        .start();
    wait_until("the count line", || server.stderr().contains("suppressed"));

    let lines: Vec<_> = server.stderr().lines().map(logfmt).collect();
    let message = "certificate #0: PEM block CERTIFICATE has no matching END line (truncated?)";
    let written = lines.iter().filter(|l| l["msg"] == message);
    assert!(
        written
            .clone()
            .all(|l| l["level"] == "warn" && l["path"].starts_with("tree/bad-"))
    );
    assert_eq!(written.count(), 10, "{lines:#?}");
    let counted: Vec<_> = lines
        .iter()
        .filter(|l| l["msg"].contains("suppressed"))
        .collect();
    assert_eq!(counted.len(), 1, "{lines:#?}");
    let count = counted[0];
    assert_eq!(
        count["msg"],
        format!("15 similar lines suppressed in the last 2s, the first: {message}")
    );
    assert_eq!(
        (
            &*count["level"],
            &*count["entry"],
            &*count["reason"],
            &*count["suppressed"]
        ),
        ("warn", "", "parse", "15")
    );
    assert!(count["path"].starts_with("tree/bad-"), "{count:?}");
    // The start-up line, ten warnings and the count.
    assert_eq!(lines.len(), 12, "{lines:#?}");
}

/// A file name with a newline and an escape sequence cannot forge a log
/// line or reach the terminal: lapse's own lines are plain text too.
#[test]
fn control_characters_in_lapses_own_log_lines_are_escaped() {
    let s = Scratch::new();
    s.write(
        "tree/bad\n2026-01-01T00:00:00Z ERROR forged\x1b[2K.crt",
        "-----BEGIN CERTIFICATE-----\nMIIB\n",
    );
    let server = s.serve().args(["tree", "--log.level", "warn"]).start();
    wait_until("the warning", || server.stderr().contains("forged"));

    assert_eq!(
        lines_without_time(&server.stderr()),
        [
            "level=warn msg=\"certificate #0: PEM block CERTIFICATE has no matching END line (truncated?)\" \
             path=\"tree/bad\\n2026-01-01T00:00:00Z ERROR forged\\u001b[2K.crt\" entry=\"\" reason=\"parse\""
        ]
    );
}
