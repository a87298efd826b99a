//! `--log.level` and `--log.format`: logfmt by default, JSON lines on
//! request, one object a line that a log pipeline parses; colour only on a
//! terminal and never with `NO_COLOR` or in JSON; one info line at the
//! start of `serve` naming the version, the revision and the address it
//! really listens on; the repeat limit and the redaction of library lines
//! hold in JSON too.

use super::kubernetes::{serve as serve_k8s, wait_until};
use crate::support::apiserver::ApiServer;
use crate::support::*;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::os::unix::ffi::OsStrExt;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const BROKEN: &str = "-----BEGIN CERTIFICATE-----\nMIIB\n";

/// Every line of `stderr` as a JSON object; panics naming a line that is not one.
fn json_lines(stderr: &str) -> Vec<Map<String, Value>> {
    assert!(!stderr.contains('\x1b'), "an escape sequence:\n{stderr}");
    stderr
        .lines()
        .map(|l| match serde_json::from_str(l) {
            Ok(Value::Object(o)) => o,
            _ => panic!("not a JSON object: {l:?}"),
        })
        .collect()
}

/// One logfmt line as keys and decoded values; panics on malformed input.
pub(super) fn logfmt(line: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.peek() == Some(&' ') {
            chars.next();
        }
        if chars.peek().is_none() {
            return out;
        }
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        assert!(
            !key.is_empty()
                && key
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c)),
            "bad key {key:?} in {line:?}"
        );
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars
                    .next()
                    .unwrap_or_else(|| panic!("unterminated: {line:?}"))
                {
                    '"' => break,
                    '\\' => match chars.next() {
                        Some('n') => value.push('\n'),
                        Some('r') => value.push('\r'),
                        Some('t') => value.push('\t'),
                        Some('u') => {
                            let hex: String = chars.by_ref().take(4).collect();
                            let code = u32::from_str_radix(&hex, 16).expect("\\u escape");
                            value.push(char::from_u32(code).expect("a character"));
                        }
                        Some(c @ ('"' | '\\')) => value.push(c),
                        other => panic!("bad escape {other:?} in {line:?}"),
                    },
                    c => value.push(c),
                }
            }
            assert!(matches!(chars.peek(), None | Some(' ')), "{line:?}");
        } else {
            while let Some(c) = chars.next_if(|c| *c != ' ') {
                assert!(c != '"' && c != '=' && !c.is_control(), "{line:?}");
                value.push(c);
            }
        }
        assert!(out.insert(key, value).is_none(), "a key twice: {line:?}");
    }
}

/// `lapse serve` on an address the kernel picks, stderr to a file.
struct Started {
    child: Child,
    stderr: std::path::PathBuf,
}

impl Started {
    fn new(s: &Scratch, args: &[&str]) -> Started {
        let stderr = s.path(&format!(
            "serve-{}.stderr",
            args.join("_").replace('/', "_")
        ));
        let child = Command::new(env!("CARGO_BIN_EXE_lapse"))
            .env_clear()
            .env("HOME", s.home())
            .env("PATH", "/usr/bin:/bin")
            .current_dir(s.path(""))
            .arg("serve")
            .args(["--web.listen-address", "127.0.0.1:0"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .expect("run lapse");
        Started { child, stderr }
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn readyz(port: u16) -> u16 {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    exchange(&mut stream, port, "GET", "/readyz", &[])
        .expect("GET /readyz")
        .status
}

fn revision() -> &'static str {
    env!("LAPSE_REVISION")
}

fn assert_rfc3339_utc_millis(ts: &str) {
    let parsed = time::OffsetDateTime::parse(ts, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|e| panic!("{ts:?}: {e}"));
    assert_eq!(parsed.offset(), time::UtcOffset::UTC, "{ts}");
    // 2026-12-02T05:24:36.440Z
    assert_eq!((ts.len(), &ts[19..20], &ts[23..]), (24, ".", "Z"), "{ts}");
    let age = time::OffsetDateTime::now_utc() - parsed;
    assert!(age.whole_seconds().abs() < 3600, "{ts} is not now");
}

#[test]
fn json_lines_parse_and_the_start_up_line_names_version_revision_and_the_real_port() {
    let s = Scratch::new();
    // A name with a newline, an escape, a bidi override and a byte that is not UTF-8.
    let name: &[u8] = b"tree/bad\n\x1b[2K\xe2\x80\xae\xff.crt";
    std::fs::create_dir_all(s.path("tree")).unwrap();
    std::fs::write(s.path("").join(std::ffi::OsStr::from_bytes(name)), BROKEN).unwrap();
    let server = Started::new(&s, &["tree", "--log.format", "json"]);
    wait_until("the warning", || {
        server.stderr().contains("no matching END")
    });

    let lines = json_lines(&server.stderr());
    assert_eq!(lines.len(), 2, "{lines:#?}");
    let start = &lines[0];
    let address = start["address"].as_str().expect("address").to_string();
    let port: u16 = address.strip_prefix("127.0.0.1:").unwrap().parse().unwrap();
    assert_ne!(port, 0);
    assert_eq!(readyz(port), 200);
    assert_rfc3339_utc_millis(start["ts"].as_str().unwrap());
    let mut rest = start.clone();
    rest.remove("ts");
    assert_eq!(
        Value::Object(rest),
        serde_json::json!({
            "level": "info", "msg": "listening", "version": env!("CARGO_PKG_VERSION"),
            "revision": revision(), "address": address, "tls": "http", "roots": 1,
        })
    );
    let warning = &lines[1];
    assert_rfc3339_utc_millis(warning["ts"].as_str().unwrap());
    let mut rest = warning.clone();
    rest.remove("ts");
    assert_eq!(
        Value::Object(rest),
        serde_json::json!({
            "level": "warn",
            "msg": "certificate #0: PEM block CERTIFICATE has no matching END line (truncated?)",
            "path": "tree/bad\n\x1b[2K\u{202e}\u{fffd}.crt", "entry": "", "reason": "parse",
        })
    );
    // The raw line shows every hidden character escaped.
    let raw = server.stderr();
    assert_contains(&raw, r#""path":"tree/bad\n\u001b[2K\u202e"#);
    assert!(!raw.contains('\u{202e}'), "{raw}");
}

#[test]
fn logfmt_is_the_default_and_every_line_parses_without_colour() {
    let s = Scratch::new();
    s.write("tree/bad one.crt", BROKEN);
    // NO_COLOR unset and stderr a file: still no colour.
    let server = Started::new(&s, &["tree"]);
    wait_until("the warning", || {
        server.stderr().contains("no matching END")
    });

    let raw = server.stderr();
    assert!(!raw.contains('\x1b'), "{raw}");
    let lines: Vec<BTreeMap<String, String>> = raw.lines().map(logfmt).collect();
    assert_eq!(lines.len(), 2, "{raw}");
    assert_rfc3339_utc_millis(&lines[0]["ts"]);
    let port: u16 = lines[0]["address"]["127.0.0.1:".len()..].parse().unwrap();
    assert_eq!(readyz(port), 200);
    let first = raw.lines().next().unwrap();
    assert_eq!(
        &first[first.find(" level=").unwrap()..],
        format!(
            " level=info msg=\"listening\" version=\"{}\" revision=\"{}\" address=127.0.0.1:{port} tls=\"http\" roots=1",
            env!("CARGO_PKG_VERSION"),
            revision()
        )
    );
    let second = raw.lines().nth(1).unwrap();
    assert_eq!(
        &second[second.find(" level=").unwrap()..],
        " level=warn msg=\"certificate #0: PEM block CERTIFICATE has no matching END line (truncated?)\" \
         path=\"tree/bad one.crt\" entry=\"\" reason=\"parse\""
    );
}

#[test]
fn log_level_warn_hides_the_start_up_line_and_debug_shows_more() {
    let s = Scratch::new();
    s.write("tree/bad.crt", BROKEN);
    let quiet = s.serve().args(["tree", "--log.level", "warn"]).start();
    wait_until("the warning", || quiet.stderr().contains("no matching END"));
    let lines: Vec<_> = quiet.stderr().lines().map(logfmt).collect();
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert_eq!(lines[0]["level"], "warn");

    let loud = s
        .serve()
        .args(["tree", "--log.level", "debug", "--log.format", "json"])
        .start();
    wait_until("scan done", || loud.stderr().contains("scan done"));
    let levels: Vec<String> = json_lines(&loud.stderr())
        .iter()
        .map(|l| l["level"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(levels[0], "info", "{levels:?}");
    assert!(levels.iter().any(|l| l == "debug"), "{levels:?}");
}

#[test]
fn an_unknown_level_or_format_is_a_usage_error_naming_the_flag() {
    let s = Scratch::new();
    s.write("a.crt", BROKEN);
    for (args, first) in [
        (
            ["--log.level", "verbose"],
            "error: invalid value 'verbose' for '--log.level <LEVEL>'",
        ),
        (
            ["--log.format", "text"],
            "error: invalid value 'text' for '--log.format <FORMAT>'",
        ),
    ] {
        let check = s.check().args(args).arg("a.crt").run();
        let serve = s
            .serve()
            .args(args)
            .arg("a.crt")
            .run_to_exit(Duration::from_secs(10));
        for out in [check, serve] {
            assert_eq!(out.code, 3, "{args:?}: {}", out.stderr);
            assert_eq!(out.stderr.lines().next(), Some(first), "{}", out.stderr);
            assert_eq!(out.stdout, "");
        }
    }
    let both = s.check().args(["-v", "--log.level", "info", "a.crt"]).run();
    assert_eq!(both.code, 3, "{}", both.stderr);
    assert_contains(
        &both.stderr,
        "error: the argument '--verbose...' cannot be used with '--log.level <LEVEL>'",
    );
}

/// `check` prints what it printed before: nothing on stderr for a clean
/// tree, its own error lines for a broken one, and no log line at the
/// default level.
#[test]
fn check_stays_quiet_by_default() {
    let s = Scratch::new();
    s.write("tree/bad.crt", BROKEN);
    let out = s.check().arg("tree").run();
    assert_eq!(
        out.stderr,
        "error: tree/bad.crt: certificate #0: PEM block CERTIFICATE has no matching END line (truncated?)\n"
    );
    let json = s
        .check()
        .args(["tree", "--log.format", "json", "-vvv"])
        .run();
    assert_eq!(json.stdout, out.stdout);
    let (logged, own): (Vec<&str>, Vec<&str>) =
        json.stderr.lines().partition(|l| l.starts_with('{'));
    assert_eq!(own, out.stderr.lines().collect::<Vec<_>>());
    let logged = json_lines(&logged.join("\n"));
    assert_eq!(logged[0]["level"], "trace", "{logged:#?}");
    assert_eq!(logged[0]["msg"], "reading", "{logged:#?}");
}

/// Through a pseudo-terminal (util-linux `script`): coloured logfmt,
/// unless `NO_COLOR` is set or the format is JSON.
#[test]
fn colour_only_on_a_terminal_and_never_with_no_color_or_json() {
    let s = Scratch::new();
    s.write("tree/bad.crt", BROKEN);
    let bin = env!("CARGO_BIN_EXE_lapse");
    let run = |extra: &str, no_color: bool| {
        let mut cmd = Command::new("script");
        cmd.env_clear()
            .env("HOME", s.home())
            .env("PATH", "/usr/bin:/bin")
            .current_dir(s.path(""))
            .args(["-qec"])
            .arg(format!(
                "'{bin}' check tree --color never -vvv {extra} >/dev/null"
            ))
            .arg("/dev/null");
        if no_color {
            cmd.env("NO_COLOR", "1");
        }
        let out = cmd.output().expect("run script (util-linux)");
        String::from_utf8_lossy(&out.stdout).replace("\r\n", "\n")
    };
    let coloured = run("", false);
    assert_contains(&coloured, " level=\x1b[34mtrace\x1b[0m msg=");
    let plain = run("", true);
    assert!(!plain.contains('\x1b'), "{plain}");
    assert_contains(&plain, " level=trace msg=");
    let json = run("--log.format json", false);
    assert!(!json.contains('\x1b'), "{json}");
    assert_contains(&json, "\"level\":\"trace\"");
}

/// A library's line in JSON: the API server's message decoded exactly,
/// without its secrets, its control characters escaped in the raw line.
#[test]
fn a_library_line_in_json_is_redacted_and_escaped() {
    let s = Scratch::new();
    let api = ApiServer::start();
    let token = jwt(
        serde_json::json!({"sub": "system:serviceaccount:ci:deployer"}),
        "sig-leak",
    );
    let message =
        format!("denied\r\x1b[2K: token {token}; Authorization: Bearer s3cr3t-b3ar3r-t0k3n");
    api.forbid_namespace_saying("ci", &message);
    let server = serve_k8s(&s, &api, "  namespaces: [ci]\n", &["--log.format", "json"]);
    wait_until("kube's warning", || {
        server.stderr().contains("watch list error with 403")
    });

    let raw = server.stderr();
    for secret in [token.as_str(), "s3cr3t-b3ar3r-t0k3n", "\r", "\x1b"] {
        assert!(!raw.contains(secret), "{secret:?} in the log:\n{raw}");
    }
    let short = |text: &str| sha256(text)["sha256:".len()..][..8].to_string();
    let kube = json_lines(&raw)
        .into_iter()
        .find(|l| {
            l["msg"]
                .as_str()
                .unwrap()
                .contains("watch list error with 403")
        })
        .unwrap();
    assert_eq!(kube["level"], "warn");
    assert_eq!(kube["target"], "kube_runtime::watcher");
    assert_contains(
        kube["msg"].as_str().unwrap(),
        &format!(
            "message: \"denied\\r\\u{{1b}}[2K: token <redacted sha256:{}>; Authorization: Bearer <redacted sha256:{}>\"",
            short(&token),
            short("s3cr3t-b3ar3r-t0k3n")
        ),
    );
}

/// The repeat limit holds in JSON: ten warnings, then one count line
/// that is itself a JSON object carrying the count.
#[test]
fn the_repeat_limit_holds_in_json() {
    let s = Scratch::new();
    for i in 0..25 {
        s.write(&format!("tree/bad-{i:02}.crt"), BROKEN);
    }
    let server = s
        .serve()
        .args([
            "tree",
            "--log.repeat-window",
            "2s",
            "--log.format",
            "json",
            "--log.level",
            "warn",
        ])
        .start();
    wait_until("the count line", || server.stderr().contains("suppressed"));

    let lines = json_lines(&server.stderr());
    assert_eq!(lines.len(), 11, "{lines:#?}");
    let count = &lines[10];
    assert_eq!(count["level"], "warn");
    assert_eq!(count["suppressed"], 15);
    assert_eq!(count["reason"], "parse");
    assert!(
        count["msg"].as_str().unwrap().starts_with(
            "15 similar lines suppressed in the last 2s, the first: certificate #0: PEM block CERTIFICATE"
        ),
        "{count:?}"
    );
}
