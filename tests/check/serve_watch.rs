//! `lapse serve` sees rotations without a restart: a certificate rewritten
//! in place, replaced by rename, swapped by the Kubernetes atomic writer,
//! deleted, created, and a kubeconfig's referenced file changing — each
//! shows in `/metrics` with its new values and without its old series.
//!
//! Each step polls `/metrics` for up to ten seconds and prints how long
//! the change took to show; latency targets live in the benchmarks.

use crate::support::*;
use time::OffsetDateTime;
use time::macros::datetime;

/// One series per credential, with its fingerprint.
const NOT_AFTER: &str = "lapse_credential_info";

fn ca() -> Cert {
    Cert::ca(
        "watch-ca",
        datetime!(2025-01-01 0:00 UTC),
        datetime!(2040-01-01 0:00 UTC),
    )
}

/// A leaf valid from 2025-01-01 until `not_after`.
fn leaf(ca: &Cert, cn: &str, not_after: OffsetDateTime) -> Cert {
    ca.issue(cn, datetime!(2025-01-01 0:00 UTC), not_after)
}

const NOT_BEFORE: i64 = 1_735_689_600; // 2025-01-01T00:00:00Z

/// True when `path` has exactly one credential, and it is `cert`'s.
fn shows(m: &Exposition, path: &str, cert: &Cert) -> bool {
    let series = m.find(NOT_AFTER, &[("path", path)]);
    series.len() == 1 && series[0].label("fingerprint") == cert.fingerprint_label()
}

/// Asserts `path` carries `cert` alone, with all its values exact.
#[track_caller]
fn assert_shows(m: &Exposition, path: &str, cert: &Cert, not_after: OffsetDateTime) {
    let fingerprint = cert.fingerprint_label();
    m.assert_window(
        &[("path", path), ("fingerprint", &fingerprint)],
        NOT_BEFORE,
        unix(not_after),
    );
    for family in [
        NOT_AFTER,
        "lapse_credential_validity_seconds",
        "lapse_credential_expires_in_seconds",
    ] {
        let series = m.find(family, &[("path", path)]);
        assert_eq!(
            series.len(),
            1,
            "{family}{{path={path:?}}}: expected one series, got {series:#?}"
        );
    }
}

/// Three certificates in `certs/`, served; returns them with their expiries.
fn three_certs(s: &Scratch, ca: &Cert) -> [(Cert, OffsetDateTime); 3] {
    let certs = [
        ("a.example", datetime!(2031-01-01 0:00 UTC)),
        ("b.example", datetime!(2032-02-02 0:00 UTC)),
        ("c.example", datetime!(2033-03-03 0:00 UTC)),
    ]
    .map(|(cn, at)| (leaf(ca, cn, at), at));
    s.write("certs/a.crt", &certs[0].0.pem);
    s.write("certs/b.crt", &certs[1].0.pem);
    s.write("certs/sub/c.pem", &certs[2].0.pem);
    certs
}

#[test]
fn certificate_rewritten_in_place() {
    let s = Scratch::new();
    let ca = ca();
    let [(a, a_at), (b, b_at), (c, c_at)] = three_certs(&s, &ca);
    let server = s.serve().arg("certs").start();
    let m = server.metrics();
    assert_shows(&m, "certs/a.crt", &a, a_at);
    assert_shows(&m, "certs/b.crt", &b, b_at);
    assert_shows(&m, "certs/sub/c.pem", &c, c_at);

    let renewed_at = datetime!(2034-04-04 4:04 UTC);
    let renewed = leaf(&ca, "a.example", renewed_at);
    s.write("certs/a.crt", &renewed.pem);

    let (m, _) = server.wait_for("in-place write", |m| shows(m, "certs/a.crt", &renewed));
    assert_shows(&m, "certs/a.crt", &renewed, renewed_at);
    assert!(
        m.find(NOT_AFTER, &[("fingerprint", &a.fingerprint_label())])
            .is_empty()
    );
    assert_shows(&m, "certs/b.crt", &b, b_at);
    assert_shows(&m, "certs/sub/c.pem", &c, c_at);
}

#[test]
fn certificate_replaced_by_rename() {
    let s = Scratch::new();
    let ca = ca();
    let [(a, a_at), (b, _), (c, c_at)] = three_certs(&s, &ca);
    let server = s.serve().arg("certs").start();
    assert_shows(
        &server.metrics(),
        "certs/b.crt",
        &b,
        datetime!(2032-02-02 0:00 UTC),
    );

    let renewed_at = datetime!(2035-05-05 5:05 UTC);
    let renewed = leaf(&ca, "b.example", renewed_at);
    s.write("certs/b.crt.tmp", &renewed.pem);
    std::fs::rename(s.path("certs/b.crt.tmp"), s.path("certs/b.crt")).expect("rename");

    let (m, _) = server.wait_for("rename over", |m| {
        shows(m, "certs/b.crt", &renewed)
            && m.find(NOT_AFTER, &[("path", "certs/b.crt.tmp")]).is_empty()
    });
    assert_shows(&m, "certs/b.crt", &renewed, renewed_at);
    assert!(
        m.find(NOT_AFTER, &[("fingerprint", &b.fingerprint_label())])
            .is_empty()
    );
    assert_eq!(m.paths(), ["certs/a.crt", "certs/b.crt", "certs/sub/c.pem"]);
    assert_shows(&m, "certs/a.crt", &a, a_at);
    assert_shows(&m, "certs/sub/c.pem", &c, c_at);
}

#[test]
fn atomic_writer_data_swap() {
    let s = Scratch::new();
    let ca = ca();
    let first_at = datetime!(2031-06-01 0:00 UTC);
    let first = leaf(&ca, "mounted.example", first_at);
    let old = "..2026_01_01_00_00_00.000000001";
    let new = "..2026_01_01_00_00_00.000000002";
    s.write(&format!("secret/{old}/tls.crt"), &first.pem);
    s.symlink(old, "secret/..data");
    s.symlink("..data/tls.crt", "secret/tls.crt");
    let other_at = datetime!(2032-01-01 0:00 UTC);
    let other = leaf(&ca, "other.example", other_at);
    s.write("certs/other.crt", &other.pem);
    let server = s.serve().args(["secret", "certs"]).start();
    let m = server.metrics();
    assert_shows(&m, "secret/tls.crt", &first, first_at);
    assert_eq!(m.paths(), ["certs/other.crt", "secret/tls.crt"]);

    // What the kubelet does when the Secret changes.
    let second_at = datetime!(2036-06-06 6:06 UTC);
    let second = leaf(&ca, "mounted.example", second_at);
    s.write(&format!("secret/{new}/tls.crt"), &second.pem);
    s.symlink(new, "secret/..data_tmp");
    std::fs::rename(s.path("secret/..data_tmp"), s.path("secret/..data")).expect("swap ..data");
    std::fs::remove_dir_all(s.path(&format!("secret/{old}"))).expect("remove the old payload");

    let (m, _) = server.wait_for("atomic-writer ..data swap", |m| {
        shows(m, "secret/tls.crt", &second)
    });
    assert_shows(&m, "secret/tls.crt", &second, second_at);
    assert!(
        m.find(NOT_AFTER, &[("fingerprint", &first.fingerprint_label())])
            .is_empty()
    );
    assert_eq!(m.paths(), ["certs/other.crt", "secret/tls.crt"]);
    assert_shows(&m, "certs/other.crt", &other, other_at);
}

#[test]
fn deleted_file_goes_and_new_file_comes() {
    let s = Scratch::new();
    let ca = ca();
    let [(a, a_at), (_, _), (c, c_at)] = three_certs(&s, &ca);
    let server = s.serve().arg("certs").start();
    assert_eq!(
        server.metrics().paths(),
        ["certs/a.crt", "certs/b.crt", "certs/sub/c.pem"]
    );

    std::fs::remove_file(s.path("certs/b.crt")).expect("delete b.crt");
    let (m, _) = server.wait_for("delete", |m| {
        m.samples.iter().all(|x| x.label("path") != "certs/b.crt")
    });
    assert_eq!(m.paths(), ["certs/a.crt", "certs/sub/c.pem"]);
    assert_shows(&m, "certs/a.crt", &a, a_at);
    assert_shows(&m, "certs/sub/c.pem", &c, c_at);

    let d_at = datetime!(2037-07-07 7:07 UTC);
    let d = leaf(&ca, "d.example", d_at);
    s.write("certs/new/d.crt", &d.pem);
    let (m, _) = server.wait_for("create in a new directory", |m| {
        shows(m, "certs/new/d.crt", &d)
    });
    assert_shows(&m, "certs/new/d.crt", &d, d_at);
    assert_eq!(
        m.paths(),
        ["certs/a.crt", "certs/new/d.crt", "certs/sub/c.pem"]
    );
}

#[test]
fn kubeconfig_referenced_certificate_outside_the_watched_paths() {
    let s = Scratch::new();
    let ca = ca();
    let client_at = datetime!(2031-09-09 9:09 UTC);
    let client = leaf(&ca, "ops", client_at);
    s.write("pki/client.crt", &client.pem);
    s.write(
        "kube/config",
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: main\n\
             contexts:\n- name: main\n  context: {{cluster: prod, user: ops}}\n\
             clusters:\n- name: prod\n  cluster:\n    server: https://prod:6443\n    certificate-authority-data: {}\n\
             users:\n- name: ops\n  user:\n    client-certificate: {}\n",
            b64(&ca.pem),
            s.abs("pki/client.crt"),
        ),
    );
    let server = s.serve().arg("kube/config").start();
    let entry = [
        ("source", "kubeconfig"),
        ("entry", "users[ops].client-certificate"),
    ];
    let m = server.metrics();
    let client_fp = client.fingerprint_label();
    let labels = [entry[0], entry[1], ("fingerprint", client_fp.as_str())];
    m.assert_window(&labels, NOT_BEFORE, unix(client_at));

    let renewed_at = datetime!(2038-08-08 8:08 UTC);
    let renewed = leaf(&ca, "ops", renewed_at);
    s.write("pki/client.crt.new", &renewed.pem);
    std::fs::rename(s.path("pki/client.crt.new"), s.path("pki/client.crt")).expect("rename");

    let renewed_fp = renewed.fingerprint_label();
    let (m, _) = server.wait_for("kubeconfig's referenced file", |m| {
        m.find(NOT_AFTER, &entry)
            .iter()
            .any(|x| x.label("fingerprint") == renewed_fp)
    });
    let labels = [entry[0], entry[1], ("fingerprint", renewed_fp.as_str())];
    m.assert_window(&labels, NOT_BEFORE, unix(renewed_at));
    assert_eq!(m.find(NOT_AFTER, &entry).len(), 1, "{}", m.text);
    // The cluster CA in the kubeconfig itself is still there.
    m.assert_window(
        &[
            ("entry", "clusters[prod].certificate-authority-data"),
            ("fingerprint", &ca.fingerprint_label()),
        ],
        NOT_BEFORE,
        unix(datetime!(2040-01-01 0:00 UTC)),
    );
}

// The watcher's own blind spots. The safety-net rescan is an hour away,
// so only the watcher (or its polling) can explain a change showing.

/// `lapse.yaml` with a rescan an hour away and `extra` in `files:`.
fn hour_rescan_config(s: &Scratch, extra: &str) {
    s.write(
        "lapse.yaml",
        format!("rescan_interval: 1h\nfiles:\n  paths: []\n{extra}"),
    );
}

#[test]
fn a_root_deleted_and_created_again_is_watched_again() {
    let s = Scratch::new();
    let ca = ca();
    let first_at = datetime!(2031-01-01 0:00 UTC);
    let first = leaf(&ca, "root.example", first_at);
    s.write("certs/tls.crt", &first.pem);
    hour_rescan_config(&s, "");
    let server = s.serve().args(["--config", "lapse.yaml", "certs"]).start();
    assert_shows(&server.metrics(), "certs/tls.crt", &first, first_at);

    std::fs::remove_dir_all(s.path("certs")).expect("remove the root");
    let (m, _) = server.wait_for("root removed", |m| m.paths().is_empty());
    assert!(m.find(NOT_AFTER, &[]).is_empty(), "{}", m.text);

    let second_at = datetime!(2032-02-02 0:00 UTC);
    let second = leaf(&ca, "root.example", second_at);
    s.write("certs/tls.crt", &second.pem);
    let (m, _) = server.wait_for("root created again", |m| shows(m, "certs/tls.crt", &second));
    assert_shows(&m, "certs/tls.crt", &second, second_at);

    // And it is watched, not just rescanned once.
    let third_at = datetime!(2033-03-03 0:00 UTC);
    let third = leaf(&ca, "root.example", third_at);
    s.write("certs/sub/other.crt", &third.pem);
    let (m, _) = server.wait_for("a file in the new root", |m| {
        shows(m, "certs/sub/other.crt", &third)
    });
    assert_eq!(m.paths(), ["certs/sub/other.crt", "certs/tls.crt"]);
}

#[test]
fn a_symlinked_root_swapped_atomically_shows_the_new_target() {
    let s = Scratch::new();
    let ca = ca();
    let old_at = datetime!(2031-01-01 0:00 UTC);
    let old = leaf(&ca, "swapped.example", old_at);
    let new_at = datetime!(2026-07-01 0:00 UTC);
    let new = leaf(&ca, "swapped.example", new_at);
    s.write("releases/v1/tls.crt", &old.pem);
    s.write("releases/v2/tls.crt", &new.pem);
    s.symlink("v1", "releases/cur");
    hour_rescan_config(&s, "");
    let server = s
        .serve()
        .args(["--config", "lapse.yaml", "releases/cur"])
        .start();
    assert_shows(&server.metrics(), "releases/cur/tls.crt", &old, old_at);

    // `ln -sfn v2 cur.new && mv -T cur.new cur`
    s.symlink("v2", "releases/cur.new");
    std::fs::rename(s.path("releases/cur.new"), s.path("releases/cur")).expect("mv -T");

    let (m, _) = server.wait_for("symlinked root swapped", |m| {
        shows(m, "releases/cur/tls.crt", &new)
    });
    assert_shows(&m, "releases/cur/tls.crt", &new, new_at);
    assert!(
        m.find(NOT_AFTER, &[("fingerprint", &old.fingerprint_label())])
            .is_empty()
    );

    // The new target is watched: a rotation in it shows too.
    let later_at = datetime!(2034-04-04 0:00 UTC);
    let later = leaf(&ca, "swapped.example", later_at);
    s.write("releases/v2/tls.crt", &later.pem);
    let (m, _) = server.wait_for("rotation in the new target", |m| {
        shows(m, "releases/cur/tls.crt", &later)
    });
    assert_shows(&m, "releases/cur/tls.crt", &later, later_at);
}

const POLLED: &str = "lapse_watch_polled_paths";
const WATCH_FAILURES: &str = "lapse_watch_failures_total";

/// With `files.max_watches: 2`, the first root (one directory) and the
/// working directory it sits in are watched (roots in path order); the
/// second root cannot be,
/// so it is polled: counted, logged once at warn, and a change in it
/// still shows within the poll interval.
#[test]
fn a_directory_that_cannot_be_watched_is_polled() {
    let s = Scratch::new();
    let ca = ca();
    let a_at = datetime!(2031-01-01 0:00 UTC);
    let a = leaf(&ca, "a.example", a_at);
    let b_at = datetime!(2032-01-01 0:00 UTC);
    let b = leaf(&ca, "b.example", b_at);
    s.write("a-watched/a.crt", &a.pem);
    s.write("b-polled/b.crt", &b.pem);
    hour_rescan_config(&s, "  max_watches: 2\n");
    let server = s
        .serve()
        .args(["--config", "lapse.yaml", "a-watched", "b-polled"])
        .start();
    let m = server.metrics();
    assert_eq!(m.value(POLLED, &[("source", "files")]), 1.0, "{}", m.text);
    assert_eq!(m.value(WATCH_FAILURES, &[("source", "files")]), 1.0);

    let renewed_at = datetime!(2035-05-05 0:00 UTC);
    let renewed = leaf(&ca, "b.example", renewed_at);
    s.write("b-polled/b.crt", &renewed.pem);
    // Within wait_for's ten seconds: the poll interval is 5 s.
    let (m, _) = server.wait_for("change in a polled directory", |m| {
        shows(m, "b-polled/b.crt", &renewed)
    });
    assert_shows(&m, "b-polled/b.crt", &renewed, renewed_at);
    assert_shows(&m, "a-watched/a.crt", &a, a_at);
    // Still polled, still one failure: a failing path is counted and
    // logged when it starts failing, not on every retry.
    assert_eq!(m.value(POLLED, &[("source", "files")]), 1.0);
    assert_eq!(m.value(WATCH_FAILURES, &[("source", "files")]), 1.0);
    let stderr = server.stderr();
    let warned: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("not watched"))
        .collect();
    assert_eq!(warned.len(), 1, "{warned:#?}");
    assert_contains(warned[0], " level=warn ");
    assert_contains(warned[0], "b-polled");
    assert_contains(warned[0], "files.max_watches (2) reached");
}
