//! Files that are not what they seem: a FIFO or a device where a
//! certificate or token is expected, and a read that never returns. Each
//! is an error entry naming the file; `lapse check` finishes and `lapse
//! serve` becomes ready. Every run has a guard so a regression fails the
//! test instead of hanging it.

use crate::support::*;
use std::time::Duration;
use time::macros::datetime;

/// Far longer than any of these runs takes: only a hang reaches it.
const GUARD: Duration = Duration::from_secs(30);

fn cert(cn: &str) -> Cert {
    Cert::ca(
        cn,
        datetime!(2026-01-01 0:00 UTC),
        datetime!(2027-01-01 0:00 UTC),
    )
}

fn mkfifo(s: &Scratch, rel: &str) {
    let path = s.path(rel);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    let out = std::process::Command::new("mkfifo")
        .arg(&path)
        .output()
        .expect("run mkfifo");
    assert_success("mkfifo", &out);
}

/// `kube/config` with one user whose `tokenFile` is `kube/<token_file>`,
/// and a cluster CA inline.
fn kubeconfig_with_token_file(s: &Scratch, ca: &Cert, token_file: &str) {
    s.write(
        "kube/config",
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: main\n\
             contexts:\n- name: main\n  context: {{cluster: prod, user: ops}}\n\
             clusters:\n- name: prod\n  cluster:\n    server: https://prod:6443\n    certificate-authority-data: {}\n\
             users:\n- name: ops\n  user:\n    tokenFile: {token_file}\n",
            b64(&ca.pem),
        ),
    );
}

#[test]
fn a_fifo_as_a_kubeconfig_token_file_is_an_error_entry_for_check() {
    let s = Scratch::new();
    let ca = cert("prod-ca");
    mkfifo(&s, "kube/token.pipe");
    kubeconfig_with_token_file(&s, &ca, "token.pipe");

    let report = s.check().arg("kube/config").json_within(GUARD);

    report
        .assert_credential_count(1)
        .assert_error_count(1)
        .assert_code(3);
    assert_eq!(
        report.reason("kube/config", Some("users[ops].tokenFile")),
        "kube/token.pipe: not a regular file: fifo"
    );
    report.credential(
        "kube/config",
        Some("clusters[prod].certificate-authority-data"),
        Some(0),
    );
}

#[test]
fn a_fifo_as_a_kubeconfig_token_file_is_an_error_entry_for_serve() {
    let s = Scratch::new();
    let ca = cert("prod-ca");
    mkfifo(&s, "kube/token.pipe");
    kubeconfig_with_token_file(&s, &ca, "token.pipe");

    // `start` waits for /readyz: today it stays 503.
    let server = s.serve().arg("kube/config").start();

    let m = server.metrics();
    assert_eq!(m.value("lapse_file_errors", &[]), 1.0, "{}", m.text);
    assert_eq!(
        m.value(
            "lapse_errors_total",
            &[("source", "files"), ("reason", "read")]
        ),
        1.0
    );
    let page = server.get("/");
    assert_contains(&page.body, "kube/token.pipe: not a regular file: fifo");
}

#[test]
fn devices_and_fifos_in_a_walked_directory_are_error_entries() {
    let s = Scratch::new();
    s.write("tree/ok.crt", cert("ok").pem);
    s.symlink("/dev/zero", "tree/zero.crt");
    s.symlink("/dev/null", "tree/null.pem");
    mkfifo(&s, "tree/pipe.crt");

    let report = s.check().arg("tree").json_within(GUARD);

    report
        .assert_credential_count(1)
        .assert_error_count(3)
        .assert_code(3);
    assert_eq!(
        report.reason("tree/zero.crt", None),
        "not a regular file: character device"
    );
    assert_eq!(
        report.reason("tree/null.pem", None),
        "not a regular file: character device"
    );
    assert_eq!(
        report.reason("tree/pipe.crt", None),
        "not a regular file: fifo"
    );
    report.credential("tree/ok.crt", None, Some(0));
}

/// procfs and sysfs files look like empty regular files; `/proc/kmsg`
/// among them blocks until the kernel logs. Walked into, they are refused
/// unread (`/proc/uptime` and a sysfs file stand in: anyone may open them).
#[test]
fn kernel_files_in_a_walked_directory_are_refused_unread() {
    let s = Scratch::new();
    s.write("tree/ok.crt", cert("ok").pem);
    s.symlink("/proc/uptime", "tree/kmsg.crt");
    s.symlink("/sys/kernel/uevent_seqnum", "tree/seqnum.pem");

    let report = s.check().arg("tree").json_within(GUARD);

    report
        .assert_credential_count(1)
        .assert_error_count(2)
        .assert_code(3);
    assert_eq!(
        report.reason("tree/kmsg.crt", None),
        "a procfs file, not read"
    );
    assert_eq!(
        report.reason("tree/seqnum.pem", None),
        "a sysfs file, not read"
    );

    // Named on purpose, a kernel file is read like any other (and holds no
    // credential).
    let named = s.check().arg("/proc/uptime").run_within(GUARD);
    named.assert_code(3);
    assert_eq!(
        named.stderr,
        "lapse: nothing found to check in /proc/uptime\n"
    );
}

#[test]
fn a_device_as_a_kubeconfig_client_certificate_is_an_error_entry() {
    let s = Scratch::new();
    let ca = cert("prod-ca");
    s.symlink("/dev/zero", "kube/client.crt");
    s.write(
        "kube/config",
        format!(
            "apiVersion: v1\nkind: Config\n\
             clusters:\n- name: prod\n  cluster:\n    server: https://prod:6443\n    certificate-authority-data: {}\n\
             users:\n- name: ops\n  user:\n    client-certificate: client.crt\n",
            b64(&ca.pem),
        ),
    );

    let report = s.check().arg("kube/config").json_within(GUARD);

    report.assert_error_count(1).assert_code(3);
    assert_eq!(
        report.reason("kube/config", Some("users[ops].client-certificate")),
        "kube/client.crt: not a regular file: character device"
    );
}

/// A pipe named on purpose is still read (`<(kubectl …)`), but one whose
/// writer never writes is a read that never returns: it ends at the
/// deadline, and the other files are reported as usual.
#[test]
fn a_read_that_never_returns_times_out() {
    let s = Scratch::new();
    s.write("certs/ok.crt", cert("ok").pem);
    mkfifo(&s, "stuck.pipe");
    s.write("lapse.yaml", "files:\n  read_timeout: 1s\n");
    // Held open for writing and never written: a reader blocks for ever.
    let _writer = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(s.path("stuck.pipe"))
        .expect("open the pipe");

    let report = s
        .check()
        .args(["--config", "lapse.yaml", "certs", "stuck.pipe"])
        .json_within(GUARD);

    report
        .assert_credential_count(1)
        .assert_error_count(1)
        .assert_code(3);
    assert_eq!(report.reason("stuck.pipe", None), "read timed out after 1s");
    report.credential("certs/ok.crt", None, Some(0));
}

#[test]
fn read_timeout_must_be_a_duration_of_at_least_a_second() {
    let s = Scratch::new();
    s.write(
        "lapse.yaml",
        "files:\n  read_timeout: 0s\n  max_watches: many\n",
    );
    let out = s.check().args(["--config", "lapse.yaml"]).run_within(GUARD);
    out.assert_code(3);
    assert_contains(
        &out.stderr,
        "lapse.yaml: files.read_timeout: must be at least 1s",
    );
    assert_contains(
        &out.stderr,
        "lapse.yaml: files.max_watches: \"many\" is not a whole number",
    );
}
