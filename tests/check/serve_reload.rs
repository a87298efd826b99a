//! SIGHUP: `lapse serve` reads lapse.yaml and the web config again and
//! keeps running. A good new file is applied (a new root's certificates
//! appear, a new basic-auth user gets in); a bad one is refused with its
//! problems logged, each naming its field, and the old set keeps being
//! served. `lapse_config_last_reload_successful` and
//! `lapse_config_last_reload_success_timestamp_seconds` say how the last
//! reload went, as in Prometheus.

use crate::support::*;
use std::time::{Duration, Instant};
use time::macros::datetime;

const SUCCESSFUL: &str = "lapse_config_last_reload_successful";
const SUCCESS_TIME: &str = "lapse_config_last_reload_success_timestamp_seconds";

/// A certificate `CN=<cn>` at `rel`, valid 2025-05-01 to 2031-05-01.
fn certificate(s: &Scratch, rel: &str, cn: &str) {
    let ca = Cert::ca(
        "reload-test-ca",
        datetime!(2025-01-01 0:00 UTC),
        datetime!(2040-01-01 0:00 UTC),
    );
    let leaf = ca.issue(
        cn,
        datetime!(2025-05-01 0:00 UTC),
        datetime!(2031-05-01 0:00 UTC),
    );
    s.write(rel, &leaf.pem);
}

/// Fails the test if lapse has exited.
#[track_caller]
fn assert_running(server: &mut Server) {
    if let Some(status) = server.exit_status() {
        panic!(
            "lapse exited ({status}) after SIGHUP\n--- stderr ---\n{}",
            server.stderr()
        );
    }
}

/// Waits until lapse has written `line` to stderr, at most [`DEADLINE`].
#[track_caller]
fn wait_for_log(server: &Server, line: &str) {
    let started = Instant::now();
    while !server.stderr().contains(line) {
        if started.elapsed() > DEADLINE {
            panic!(
                "not logged within {DEADLINE:?}: {line:?}\n--- stderr ---\n{}",
                server.stderr()
            );
        }
        std::thread::sleep(POLL);
    }
}

#[test]
fn sighup_applies_a_new_root_and_keeps_serving() {
    let s = Scratch::new();
    certificate(&s, "certs-a/a.crt", "a.example");
    certificate(&s, "certs-b/b.crt", "b.example");
    s.write("lapse.yaml", "files:\n  paths: [certs-a]\n");
    let mut server = s.serve().args(["--config", "lapse.yaml"]).start();
    let m = server.metrics();
    assert_eq!(m.paths(), ["certs-a/a.crt"]);

    s.write("lapse.yaml", "files:\n  paths: [certs-a, certs-b]\n");
    let before = unix_now();
    server.signal("HUP");
    let (m, _) = server.wait_for("the new root", |m| {
        m.paths() == ["certs-a/a.crt", "certs-b/b.crt"]
    });
    let after = unix_now();
    assert_running(&mut server);
    assert_eq!(m.value(SUCCESSFUL, &[]), 1.0);
    let reloaded = m.value(SUCCESS_TIME, &[]);
    assert!(
        (before as f64..=after as f64).contains(&reloaded),
        "{SUCCESS_TIME} = {reloaded}, expected within [{before}, {after}]"
    );

    // A root taken out goes, with its certificates; a new rescan interval
    // is the one exported (the stalled-source alert divides by it).
    let interval = "lapse_source_rescan_interval_seconds";
    assert_eq!(m.value(interval, &[("source", "files")]), 300.0);
    s.write(
        "lapse.yaml",
        "files:\n  paths: [certs-b]\nrescan_interval: 1h\n",
    );
    server.signal("HUP");
    let (m, _) = server.wait_for("the root removed", |m| m.paths() == ["certs-b/b.crt"]);
    assert_eq!(m.value(interval, &[("source", "files")]), 3600.0);

    // SIGTERM still drains and exits 0.
    let (status, _) = server.terminate(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0), "{status}");
}

#[test]
fn sighup_with_a_broken_config_keeps_the_old_set() {
    let s = Scratch::new();
    certificate(&s, "certs-a/a.crt", "a.example");
    certificate(&s, "certs-b/b.crt", "b.example");
    s.write("lapse.yaml", "files:\n  paths: [certs-a]\n");
    let mut server = s.serve().args(["--config", "lapse.yaml"]).start();
    // Start-up counts as the first successful load, as in Prometheus.
    let m = server.metrics();
    assert_eq!(m.value(SUCCESSFUL, &[]), 1.0);
    let started_at = m.value(SUCCESS_TIME, &[]);
    assert!(started_at <= m.scraped.1 as f64, "{}", m.text);

    s.write(
        "lapse.yaml",
        "files:\n  paths: [certs-a, certs-b]\nthresholds: {warning: soon}\nbogus: 1\n",
    );
    server.signal("HUP");
    let (m, _) = server.wait_for("the refused reload", |m| m.value(SUCCESSFUL, &[]) == 0.0);
    assert_running(&mut server);
    assert_eq!(m.paths(), ["certs-a/a.crt"]);
    assert_eq!(m.value(SUCCESS_TIME, &[]), started_at);
    wait_for_log(
        &server,
        // The message is quoted in logfmt: its own quotes are escaped.
        r#"configuration not reloaded: lapse.yaml: thresholds.warning: invalid duration \"soon\""#,
    );
    wait_for_log(
        &server,
        "configuration not reloaded: lapse.yaml: bogus: unknown field",
    );

    // Fixed, it is applied; the server's own limits are not, and it says so.
    s.write(
        "lapse.yaml",
        "files:\n  paths: [certs-a, certs-b]\nhttp:\n  write_timeout: 30s\n",
    );
    server.signal("HUP");
    let (m, _) = server.wait_for("the fixed reload", |m| {
        m.paths() == ["certs-a/a.crt", "certs-b/b.crt"]
    });
    assert_eq!(m.value(SUCCESSFUL, &[]), 1.0);
    wait_for_log(
        &server,
        "http: timeouts and max_connections not applied: they change only on restart",
    );
}

#[test]
fn sighup_applies_a_new_basic_auth_user_to_new_connections() {
    let s = Scratch::new();
    certificate(&s, "certs/a.crt", "a.example");
    let alice = bcrypt::hash("alice's password", 4).expect("bcrypt");
    let bob = bcrypt::hash("bob's password", 4).expect("bcrypt");
    s.write(
        "web.yml",
        format!("basic_auth_users:\n  alice: '{alice}'\n"),
    );
    let as_alice = Client::plain().basic_auth("alice", "alice's password");
    let as_bob = Client::plain().basic_auth("bob", "bob's password");
    let mut server = s
        .serve()
        .args(["certs", "--web.config.file", "web.yml"])
        .start_with(as_alice.clone());
    let port = server.port;
    let status = |client: &Client| {
        client
            .request(port, "GET", "/metrics", &[])
            .expect("an answer")
            .status
    };
    assert_eq!(status(&as_bob), 401);

    s.write(
        "web.yml",
        format!("basic_auth_users:\n  alice: '{alice}'\n  bob: '{bob}'\n"),
    );
    server.signal("HUP");
    let started = Instant::now();
    while status(&as_bob) != 200 {
        assert!(
            started.elapsed() < DEADLINE,
            "bob still refused\n--- stderr ---\n{}",
            server.stderr()
        );
        std::thread::sleep(POLL);
    }
    assert_running(&mut server);
    assert_eq!(status(&as_alice), 200);
    assert_eq!(server.metrics().value(SUCCESSFUL, &[]), 1.0);

    // A broken web config is refused: both users keep their access.
    s.write("web.yml", "basic_auth_users:\n  carol: not-a-hash\n");
    server.signal("HUP");
    server.wait_for("the refused reload", |m| m.value(SUCCESSFUL, &[]) == 0.0);
    wait_for_log(
        &server,
        "configuration not reloaded: web.yml: basic_auth_users.carol: not a bcrypt hash",
    );
    assert_eq!(status(&as_bob), 200);
    assert_eq!(status(&as_alice), 200);
    assert!(
        !server.stderr().contains("not-a-hash"),
        "{}",
        server.stderr()
    );
}

#[test]
fn sighup_applies_new_thresholds_to_the_page() {
    let s = Scratch::new();
    let now = time::OffsetDateTime::now_utc();
    let ca = Cert::ca(
        "reload-test-ca",
        now - time::Duration::days(300),
        now + time::Duration::days(300),
    );
    let leaf = ca.issue(
        "soon.example",
        now - time::Duration::days(70),
        now + time::Duration::days(20),
    );
    s.write("certs/soon.crt", &leaf.pem);
    s.write("lapse.yaml", "files:\n  paths: [certs]\n");
    let server = s.serve().args(["--config", "lapse.yaml"]).start();
    let cell = |status: &str| format!("<td class=\"{status}\">{status}</td>");
    let page = server.get("/").body;
    assert!(page.contains(&cell("warning")), "{page}");

    s.write(
        "lapse.yaml",
        "files:\n  paths: [certs]\nthresholds: {warning: 10d, critical: 5d}\n",
    );
    server.signal("HUP");
    let started = Instant::now();
    loop {
        let page = server.get("/").body;
        if page.contains(&cell("ok")) {
            break;
        }
        assert!(
            started.elapsed() < DEADLINE,
            "still not ok:\n{page}\n--- stderr ---\n{}",
            server.stderr()
        );
        std::thread::sleep(POLL);
    }
}

#[test]
fn sighup_turns_the_kubernetes_source_on_and_off() {
    use super::kubernetes::{K8S, UP, ca, secret_path, tls_secret};
    use crate::support::apiserver::ApiServer;
    let s = Scratch::new();
    let api = ApiServer::start();
    let shop = ca().issue(
        "shop.example",
        datetime!(2026-01-01 0:00 UTC),
        datetime!(2027-01-01 0:00 UTC),
    );
    api.put(tls_secret("web", "shop-tls", &[&shop]));
    let kubeconfig = api.write_kubeconfig(&s.path("kube"));
    certificate(&s, "certs/a.crt", "a.example");
    s.write("lapse.yaml", "files:\n  paths: [certs]\n");
    let mut server = s.serve().args(["--config", "lapse.yaml"]).start();
    let m = server.metrics();
    assert_eq!(m.paths(), ["certs/a.crt"]);
    assert!(m.find(UP, &K8S).is_empty(), "{}", m.text);

    s.write(
        "lapse.yaml",
        format!(
            "files:\n  paths: [certs]\nkubernetes:\n  kubeconfig: {}\n",
            kubeconfig.display()
        ),
    );
    server.signal("HUP");
    let secret = secret_path("web", "shop-tls");
    let (m, _) = server.wait_for("the cluster's Secret", |m| {
        m.paths() == [secret.clone(), "certs/a.crt".to_string()]
    });
    assert_eq!(m.value(UP, &K8S), 1.0);
    // Its error counters start at 0, as at start-up.
    let zero = [("source", "kubernetes"), ("reason", "forbidden")];
    assert_eq!(m.value("lapse_errors_total", &zero), 0.0, "{}", m.text);

    s.write("lapse.yaml", "files:\n  paths: [certs]\n");
    server.signal("HUP");
    let (m, _) = server.wait_for("the cluster source gone", |m| {
        m.paths() == ["certs/a.crt"] && m.find(UP, &K8S).is_empty()
    });
    assert_running(&mut server);
    assert_eq!(m.value("lapse_source_up", &[("source", "files")]), 1.0);
    // Still ready: a source turned off is not waited for.
    assert_eq!(server.get("/readyz").status, 200);
}
