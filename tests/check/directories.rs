//! The directory walk: recursion, include/exclude globs, symlinks (each
//! file once, loops and dangling links as error entries), and the atomic
//! writer layout of mounted Secrets.

use crate::support::*;
use serde_json::json;
use time::macros::datetime;

/// A certificate for CN `cn` expiring at 2026-06-01 plus `days`.
pub(super) fn cert(cn: &str, days: i64) -> Cert {
    let not_after = datetime!(2026-06-01 0:00 UTC) + time::Duration::days(days);
    Cert::ca(cn, datetime!(2026-01-01 0:00 UTC), not_after)
}

/// The report's paths, sorted.
pub(super) fn paths(report: &Report) -> Vec<String> {
    let mut paths: Vec<String> = report.places().into_iter().map(|(p, _, _)| p).collect();
    paths.sort();
    paths
}

#[test]
fn walks_directories_recursively() {
    let s = Scratch::new();
    let (a, b, c) = (cert("a", 10), cert("b", 20), cert("c", 40));
    s.write("tree/a.crt", &a.pem);
    s.write("tree/etc/kubernetes/pki/b.pem", &b.pem);
    s.write("tree/etc/kubernetes/pki/etcd/deep/c.der", &c.der);
    s.write("tree/etc/notes.txt", "nothing to see here\n");

    let report = s.check().arg("tree").json();

    report.assert_no_errors();
    assert_eq!(
        report.places(),
        [
            ("tree/a.crt".to_string(), None, Some(0)),
            ("tree/etc/kubernetes/pki/b.pem".to_string(), None, Some(0)),
            (
                "tree/etc/kubernetes/pki/etcd/deep/c.der".to_string(),
                None,
                Some(0)
            ),
        ],
        "soonest expiry first"
    );
    assert_fields(
        report.credential("tree/etc/kubernetes/pki/etcd/deep/c.der", None, Some(0)),
        json!({"subject": "CN=c", "not_after": "2026-07-11T00:00:00Z", "expires_in_seconds": 40 * DAY}),
    );
}

#[test]
fn include_globs_select_file_names() {
    let s = Scratch::new();
    s.write("tree/a.crt", cert("a", 10).pem);
    s.write("tree/sub/b.crt", cert("b", 20).pem);
    s.write("tree/sub/c.pem", cert("c", 30).pem);

    let report = s.check().args(["tree", "--include", "*.crt"]).json();

    report.assert_no_errors();
    assert_eq!(paths(&report), ["tree/a.crt", "tree/sub/b.crt"]);
}

#[test]
fn exclude_globs_skip_files_and_whole_directories() {
    let s = Scratch::new();
    s.write("tree/keep.crt", cert("keep", 10).pem);
    s.write("tree/old.crt.bak", cert("backup", 20).pem);
    s.write("tree/archive/2019.crt", cert("archived", 30).pem);
    s.write(
        "tree/archive/deeper/2018.crt",
        cert("archived-deeper", 30).pem,
    );

    let report = s
        .check()
        .args(["tree", "--exclude", "*.bak", "--exclude", "archive"])
        .json();

    report.assert_no_errors();
    assert_eq!(paths(&report), ["tree/keep.crt"]);
}

#[test]
fn include_and_exclude_together() {
    let s = Scratch::new();
    s.write("tree/a.crt", cert("a", 10).pem);
    s.write("tree/b.pem", cert("b", 10).pem);
    s.write("tree/test/c.crt", cert("c", 10).pem);

    let report = s
        .check()
        .args(["tree", "--include", "*.crt", "--exclude", "test"])
        .json();

    assert_eq!(paths(&report), ["tree/a.crt"]);
}

#[test]
fn atomic_writer_layout_is_reported_once_under_the_visible_path() {
    let s = Scratch::new();
    let tls = cert("mounted", 60);
    let stamp = "..2026_11_01_00_00_00.000000001";
    s.write(&format!("mnt/{stamp}/tls.crt"), &tls.pem);
    s.write(&format!("mnt/{stamp}/ca.crt"), cert("mounted-ca", 365).pem);
    s.symlink(stamp, "mnt/..data");
    s.symlink("..data/tls.crt", "mnt/tls.crt");
    s.symlink("..data/ca.crt", "mnt/ca.crt");

    let report = s.check().arg("mnt").json();

    report.assert_no_errors().assert_credential_count(2);
    assert_eq!(paths(&report), ["mnt/ca.crt", "mnt/tls.crt"]);
    assert_fields(
        report.credential("mnt/tls.crt", None, Some(0)),
        json!({"subject": "CN=mounted", "not_after": "2026-07-31T00:00:00Z", "fingerprint": tls.fingerprint()}),
    );
}

#[test]
fn a_file_reached_through_two_symlinks_is_reported_once() {
    let s = Scratch::new();
    s.write("store/real.crt", cert("shared", 10).pem);
    s.symlink("../store/real.crt", "scan/first.crt");
    s.symlink("../store/real.crt", "scan/second.crt");

    let report = s.check().arg("scan").json();

    report.assert_no_errors().assert_credential_count(1);
    assert_eq!(paths(&report), ["scan/first.crt"]);
}

#[test]
fn the_same_file_named_twice_on_the_command_line_is_reported_once() {
    let s = Scratch::new();
    s.write("dir/one.crt", cert("one", 10).pem);

    let report = s
        .check()
        .args(["dir", "dir/one.crt", "./dir/one.crt"])
        .json();

    report.assert_no_errors().assert_credential_count(1);
}

#[test]
fn a_directory_symlink_loop_is_an_error_and_the_scan_goes_on() {
    let s = Scratch::new();
    s.write("tree/sub/ok.crt", cert("ok", 10).pem);
    s.symlink("..", "tree/sub/back-up");

    let report = s.check().arg("tree").json();

    // A warning outranks errors in the exit status.
    report
        .assert_credential_count(1)
        .assert_error_count(1)
        .assert_code(1);
    assert_eq!(paths(&report), ["tree/sub/ok.crt"]);
    assert_eq!(
        report.reason("tree/sub/back-up", None),
        "symlink loop back to tree; not followed"
    );
}

#[test]
fn a_file_symlink_cycle_is_an_error_and_the_scan_goes_on() {
    let s = Scratch::new();
    s.write("tree/ok.crt", cert("ok", 10).pem);
    s.symlink("ping.crt", "tree/pong.crt");
    s.symlink("pong.crt", "tree/ping.crt");

    let report = s.check().arg("tree").json();

    report.assert_credential_count(1);
    assert_eq!(report.reason("tree/ping.crt", None), "symlink loop");
    assert_eq!(report.reason("tree/pong.crt", None), "symlink loop");
    report.assert_error_count(2);
}

#[test]
fn a_dangling_symlink_is_an_error_naming_it() {
    let s = Scratch::new();
    s.write("tree/ok.crt", cert("ok", 100).pem);
    s.symlink("../gone/tls.crt", "tree/tls.crt");

    let report = s.check().arg("tree").json();

    report
        .assert_credential_count(1)
        .assert_error_count(1)
        .assert_code(3);
    assert_eq!(
        report.reason("tree/tls.crt", None),
        "dangling symlink to ../gone/tls.crt"
    );
}

#[test]
fn a_missing_path_on_the_command_line_is_an_error() {
    let s = Scratch::new();
    s.write("ok.crt", cert("ok", 100).pem);

    let report = s.check().args(["ok.crt", "nope.crt"]).json();

    report
        .assert_credential_count(1)
        .assert_error_count(1)
        .assert_code(3);
    assert_eq!(report.reason("nope.crt", None), "no such file or directory");
}

#[test]
fn a_pipe_named_on_the_command_line_is_read() {
    // As with `lapse check <(kubectl get secrets -o yaml)`.
    let s = Scratch::new();
    let piped = cert("piped", 10);

    let report = s.check().arg("/dev/stdin").stdin(piped.pem.clone()).json();

    report.assert_no_errors().assert_credential_count(1);
    assert_fields(
        report.credential("/dev/stdin", None, Some(0)),
        json!({"subject": "CN=piped", "fingerprint": piped.fingerprint()}),
    );
}

#[test]
fn files_named_on_the_command_line_are_read_whatever_the_globs_say() {
    let s = Scratch::new();
    s.write("named.pem", cert("named", 10).pem);
    s.write("tree/walked.pem", cert("walked", 10).pem);

    let report = s
        .check()
        .args(["named.pem", "tree", "--include", "*.crt"])
        .json();

    assert_eq!(paths(&report), ["named.pem"]);
}

#[test]
fn a_glob_with_a_slash_matches_whole_paths() {
    let s = Scratch::new();
    s.write("tree/pki/a.crt", cert("a", 10).pem);
    s.write("tree/pki/etcd/b.crt", cert("b", 10).pem);
    s.write("tree/other/c.crt", cert("c", 10).pem);

    let report = s.check().args(["tree", "--include", "tree/pki/**"]).json();

    assert_eq!(paths(&report), ["tree/pki/a.crt", "tree/pki/etcd/b.crt"]);
}

#[test]
fn kubelet_current_symlink_names_the_rotated_file() {
    let s = Scratch::new();
    let current = cert("system:node:worker-1", 300);
    s.write(
        "pki/kubelet-client-2026-05-01-00-00-00.pem",
        format!("{}{}", current.pem, current.key_pem),
    );
    s.symlink(
        "kubelet-client-2026-05-01-00-00-00.pem",
        "pki/kubelet-client-current.pem",
    );

    let report = s.check().arg("pki").json();

    report.assert_no_errors().assert_credential_count(1);
    assert_fields(
        report.credential("pki/kubelet-client-current.pem", None, Some(0)),
        json!({"subject": "CN=system:node:worker-1", "fingerprint": current.fingerprint()}),
    );
}

#[test]
fn rotations_the_kubelet_superseded_are_not_reported() {
    let s = Scratch::new();
    let old = cert("system:node:worker-1", -30);
    let current = cert("system:node:worker-1", 300);
    s.write("pki/kubelet-client-2025-05-01-00-00-00.pem", &old.pem);
    s.write("pki/kubelet-client-2026-05-01-00-00-00.pem", &current.pem);
    s.symlink(
        "kubelet-client-2026-05-01-00-00-00.pem",
        "pki/kubelet-client-current.pem",
    );
    s.write("pki/kubelet.crt", cert("worker-1", 200).pem);

    let report = s.check().arg("pki").json();

    report
        .assert_no_errors()
        .assert_credential_count(2)
        .assert_code(0);
    assert_eq!(
        paths(&report),
        ["pki/kubelet-client-current.pem", "pki/kubelet.crt"]
    );
    assert_fields(
        report.credential("pki/kubelet-client-current.pem", None, Some(0)),
        json!({"fingerprint": current.fingerprint(), "status": "ok"}),
    );
}

#[test]
fn a_hash_link_in_a_trust_store_is_reported_under_the_named_file() {
    let s = Scratch::new();
    let root = cert("Example Root", 3000);
    s.write("ca-certificates/Example_Root.crt", &root.pem);
    s.symlink(
        "../ca-certificates/Example_Root.crt",
        "certs/Example_Root.pem",
    );
    s.symlink("Example_Root.pem", "certs/a1b2c3d4.0");

    let report = s.check().arg("certs").json();

    report.assert_no_errors().assert_credential_count(1);
    assert_eq!(paths(&report), ["certs/Example_Root.pem"]);
}

#[test]
fn a_file_a_kubeconfig_points_at_is_reported_once_with_its_entry() {
    let s = Scratch::new();
    let client = cert("deployer", 90);
    s.write("kube/deployer.crt", &client.pem);
    s.write(
        "kube/config",
        "apiVersion: v1\nkind: Config\ncurrent-context: c\ncontexts: []\nclusters: []\n\
         users:\n- name: deployer\n  user:\n    client-certificate: deployer.crt\n",
    );

    let report = s.check().arg("kube").json();

    report.assert_no_errors().assert_credential_count(1);
    assert_fields(
        report.credential(
            "kube/deployer.crt",
            Some("users[deployer].client-certificate"),
            Some(0),
        ),
        json!({"source": "kubeconfig", "fingerprint": client.fingerprint()}),
    );
}
