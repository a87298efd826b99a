//! Paths as operators write them: glob patterns on the command line and
//! in `files.paths` (`/opt/wssd/k8s/*.yaml`, `pki/**/*.pem`), expanded at
//! every scan so `serve` sees new matches and forgets vanished ones; `.`
//! and other relative paths in a config read from the current directory;
//! and a pattern that matches nothing, said once on stderr.

use super::directories::{cert, paths};
use crate::support::*;
use std::process::{Command, Stdio};
use time::macros::datetime;

fn tree(s: &Scratch) {
    s.write("certs/a.pem", cert("a", 10).pem);
    s.write("certs/b.pem", cert("b", 20).pem);
    s.write("certs/c.crt", cert("c", 30).pem);
    s.write("certs/sub/d.pem", cert("d", 40).pem);
    s.write("certs/.hidden.pem", cert("hidden", 50).pem);
}

#[test]
fn a_glob_argument_is_expanded() {
    let s = Scratch::new();
    tree(&s);

    let report = s.check().arg("certs/*.pem").json();

    // a.pem lapses in 10 days: a warning.
    report.assert_no_errors().assert_code(1);
    assert_eq!(paths(&report), ["certs/a.pem", "certs/b.pem"]);
    assert_fields(
        report.credential("certs/b.pem", None, Some(0)),
        serde_json::json!({"subject": "CN=b", "not_after": "2026-06-21T00:00:00Z"}),
    );
    assert_eq!(report.stderr, "");
}

#[test]
fn a_double_star_crosses_directories_and_dot_files_need_a_dot() {
    let s = Scratch::new();
    tree(&s);

    let report = s.check().arg("certs/**/*.pem").json();
    report.assert_no_errors();
    assert_eq!(
        paths(&report),
        ["certs/a.pem", "certs/b.pem", "certs/sub/d.pem"]
    );

    let report = s.check().arg("certs/.*.pem").json();
    report.assert_no_errors();
    assert_eq!(paths(&report), ["certs/.hidden.pem"]);

    let report = s.check().arg(s.abs("certs/*/*.pem")).json();
    report.assert_no_errors();
    assert_eq!(paths(&report), [s.abs("certs/sub/d.pem")]);
}

#[test]
fn a_glob_in_files_paths_is_expanded_against_the_config_directory() {
    let s = Scratch::new();
    s.write("etc/k8s/cloud.yaml", cert("cloud", 5).pem);
    s.write("etc/k8s/node.yaml", cert("node", 6).pem);
    s.write("etc/k8s/node.yaml.bak", cert("old", -6).pem);
    s.write("etc/lapse.yaml", "files:\n  paths: ['k8s/*.yaml']\n");

    let report = s.check().args(["--config", "etc/lapse.yaml"]).json();

    report.assert_no_errors().assert_code(2);
    assert_eq!(paths(&report), ["etc/k8s/cloud.yaml", "etc/k8s/node.yaml"]);
    assert_fields(
        report.credential("etc/k8s/node.yaml", None, Some(0)),
        serde_json::json!({"subject": "CN=node", "not_after": "2026-06-07T00:00:00Z", "status": "critical"}),
    );
}

#[test]
fn a_pattern_that_matches_nothing_says_so_and_is_no_error() {
    let s = Scratch::new();
    tree(&s);

    let report = s.check().args(["certs/*.key", "certs/a.pem"]).json();

    report.assert_no_errors().assert_code(1);
    assert_eq!(paths(&report), ["certs/a.pem"]);
    assert_eq!(
        report.stderr,
        "lapse: certs/*.key: no file matches this pattern\n"
    );

    // Nothing at all: the pattern, then the usual "nothing found", exit 3.
    let out = s.check().arg("missing/*.pem").run();
    assert_eq!(out.code, 3, "{out:?}");
    assert_eq!(
        out.stderr,
        "lapse: missing/*.pem: no file matches this pattern\n\
         lapse: nothing found to check in missing/*.pem\n"
    );
}

#[test]
fn a_file_whose_name_holds_glob_characters_is_that_file() {
    let s = Scratch::new();
    s.write("certs/[1].pem", cert("literal", 10).pem);
    s.write("certs/1.pem", cert("matched", 20).pem);

    let report = s.check().arg("certs/[1].pem").json();

    report.assert_no_errors();
    assert_eq!(paths(&report), ["certs/[1].pem"]);
}

/// `lapse check ARGS` run in `dir` (relative to the scratch directory).
fn check_in(s: &Scratch, dir: &str, args: &[&str]) -> Outcome {
    let output = Command::new(env!("CARGO_BIN_EXE_lapse"))
        .env_clear()
        .env("HOME", s.home())
        .env("PATH", "/usr/bin:/bin")
        .current_dir(s.path(dir))
        .args(["check", "--at", AT, "--format", "json"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run the lapse binary");
    Outcome {
        code: output.status.code().expect("lapse ended by a signal"),
        stdout: String::from_utf8(output.stdout).expect("stdout is UTF-8"),
        stderr: String::from_utf8(output.stderr).expect("stderr is UTF-8"),
    }
}

#[test]
fn dot_in_a_config_read_from_the_current_directory() {
    let s = Scratch::new();
    s.write("etc/pki/a.pem", cert("a", 10).pem);
    s.write("etc/lapse.yaml", "files:\n  paths: ['.']\n");

    let report = Report::parse(check_in(&s, "etc", &["--config", "lapse.yaml"]));

    report.assert_no_errors().assert_code(1);
    assert_eq!(paths(&report), ["./pki/a.pem"]);
}

#[test]
fn relative_paths_and_globs_in_a_bare_config_name() {
    let s = Scratch::new();
    s.write("etc/pki/a.pem", cert("a", 10).pem);
    s.write("etc/k8s/b.yaml", cert("b", 20).pem);
    s.write("etc/lapse.yaml", "files:\n  paths: [pki, './k8s/*.yaml']\n");

    let report = Report::parse(check_in(&s, "etc", &["--config", "lapse.yaml"]));

    report.assert_no_errors().assert_code(1);
    assert_eq!(paths(&report), ["k8s/b.yaml", "pki/a.pem"]);
}

const NOT_AFTER: &str = "lapse_credential_info";

#[test]
fn serve_sees_a_file_that_starts_to_match_and_forgets_one_that_goes() {
    let s = Scratch::new();
    s.write("k8s/cloud.yaml", cert("cloud", 10).pem);
    s.write(
        "lapse.yaml",
        "files:\n  paths: ['k8s/*.yaml', 'later/*.pem']\n",
    );
    let server = s.serve().args(["--config", "lapse.yaml"]).start();
    assert_eq!(server.metrics().paths(), ["k8s/cloud.yaml"]);

    let node = cert("node", 20);
    s.write("k8s/node.yaml", &node.pem);
    let (m, _) = server.wait_for("a new match", |m| {
        m.paths() == ["k8s/cloud.yaml", "k8s/node.yaml"]
    });
    m.assert_window(
        &[
            ("path", "k8s/node.yaml"),
            ("fingerprint", &node.fingerprint_label()),
        ],
        unix(datetime!(2026-01-01 0:00 UTC)),
        unix(datetime!(2026-06-21 0:00 UTC)),
    );

    // A directory the pattern names that did not exist at start.
    let late = cert("late", 30);
    s.write("later/late.pem", &late.pem);
    server.wait_for("a match in a directory created later", |m| {
        m.paths() == ["k8s/cloud.yaml", "k8s/node.yaml", "later/late.pem"]
    });

    std::fs::remove_file(s.path("k8s/cloud.yaml")).expect("delete cloud.yaml");
    let (m, _) = server.wait_for("a vanished match", |m| {
        m.paths() == ["k8s/node.yaml", "later/late.pem"]
    });
    assert!(m.find(NOT_AFTER, &[("path", "k8s/cloud.yaml")]).is_empty());
    assert!(
        m.find("lapse_errors_total", &[("reason", "not_found")])
            .iter()
            .all(|x| x.value == 0.0),
        "{}",
        m.text
    );
}

#[test]
fn serve_starts_with_a_pattern_that_matches_nothing_yet() {
    let s = Scratch::new();
    let server = s.serve().arg("certs/*.pem").start();
    assert!(server.metrics().paths().is_empty());

    let a = cert("a", 10);
    s.write("certs/a.pem", &a.pem);
    server.wait_for("the first match", |m| m.paths() == ["certs/a.pem"]);
}
