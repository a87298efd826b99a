//! The Kubernetes source when the cluster misbehaves: permissions
//! missing (403) or revoked (401), throttling (429), an API server that is
//! unreachable or restarts — and through all of it, no Secret text in the
//! log, `/metrics` or the page.

use super::kubernetes::*;
use crate::support::apiserver::{ApiServer, TOKEN, secret};
use crate::support::*;
use serde_json::json;
use std::time::Duration;
use time::macros::datetime;

#[test]
fn a_forbidden_namespace_is_reported_and_the_rest_stays_exported() {
    let s = Scratch::new();
    let api = ApiServer::start();
    let ca = ca();
    let web = leaf(
        &ca,
        "web.example",
        datetime!(2026-01-01 0:00 UTC),
        datetime!(2028-01-01 0:00 UTC),
    );
    let ci = leaf(
        &ca,
        "ci.example",
        datetime!(2026-01-01 0:00 UTC),
        datetime!(2028-06-01 0:00 UTC),
    );
    api.put(tls_secret("web", "tls", &[&web]));
    api.put(tls_secret("ci", "tls", &[&ci]));
    api.forbid_namespace("ci");
    let server = serve(&s, &api, "  namespaces: [web, ci]\n", &[]);

    let (m, _) = server.wait_for("the source down", |m| m.value(UP, &K8S) == 0.0);
    assert_eq!(m.paths(), [secret_path("web", "tls")]);
    assert!(
        m.value(
            "lapse_errors_total",
            &[("source", "kubernetes"), ("reason", "forbidden")]
        ) >= 1.0
    );
    let stderr = server.stderr();
    for needle in ["forbidden", "list secrets", "namespace ci"] {
        assert!(
            stderr.contains(needle),
            "stderr lacks {needle:?}:\n{stderr}"
        );
    }
    let page = server.get("/").body;
    assert_contains(&page, "/api/v1/namespaces/ci/secrets");
    assert_contains(&page, "cannot list secrets in namespace ci");
    assert!(
        !m.text.contains("cannot list"),
        "error text in a label:\n{}",
        m.text
    );

    // Granted: the source comes back up with ci's credentials.
    api.allow_all();
    let (m, took) = server.wait_for("the source up again", |m| {
        m.value(UP, &K8S) == 1.0 && m.paths().len() == 2
    });
    println!("recovered from 403 in {took:?}");
    assert!(!server.get("/").body.contains("cannot list"));

    // Revoked while running: the watch fails, the last good credentials stay.
    api.forbid_namespace("web");
    api.drop_connections();
    let (m2, _) = server.wait_for("the source down again", |m| m.value(UP, &K8S) == 0.0);
    assert_eq!(m2.paths(), m.paths());
    m2.assert_window(
        &at(
            &secret_path("web", "tls"),
            "tls.crt",
            &web.fingerprint_label(),
        ),
        unix(datetime!(2026-01-01 0:00 UTC)),
        unix(datetime!(2028-01-01 0:00 UTC)),
    );
    assert!(api.cluster_scoped_requests().is_empty());
}

#[test]
fn no_secret_text_reaches_logs_metrics_or_the_page() {
    let s = Scratch::new();
    let api = ApiServer::start();
    let ca = ca();
    let server_cert = leaf(
        &ca,
        "leaky.example",
        datetime!(2026-01-01 0:00 UTC),
        datetime!(2027-12-01 0:00 UTC),
    );
    let token = jwt(
        json!({"iss": "kubernetes/serviceaccount", "sub": "system:serviceaccount:web:app"}),
        "PLANTED-signature-4c1d",
    );
    let bound = jwt(
        json!({"iss": "https://kubernetes.default.svc", "sub": "system:serviceaccount:web:app",
               "exp": 1_830_000_000, "iat": 1_790_000_000}),
        "PLANTED-bound-91ab",
    );
    let password = "PLANTED-password-7f3a9c0e";
    let bootstrap_secret = "q8w7e6r5t4y3u2i1";
    let canaries: Vec<(&str, String)> = vec![
        ("private key PEM", server_cert.key_pem.clone()),
        ("private key line", server_cert.key_pem_fragment()),
        ("token", token.clone()),
        ("token signature", b64url("PLANTED-signature-4c1d")),
        ("bound token", bound.clone()),
        ("password", password.to_string()),
        ("bootstrap token secret", bootstrap_secret.to_string()),
        ("lapse's own bearer token", TOKEN.to_string()),
    ];
    api.put(tls_secret("web", "leaky-tls", &[&server_cert]));
    api.put(secret(
        "web",
        "app-token",
        "kubernetes.io/service-account-token",
        &[("token", token.as_bytes())],
    ));
    api.put(secret(
        "web",
        "app-credentials",
        "Opaque",
        &[
            ("password", password.as_bytes()),
            ("projected-token", bound.as_bytes()),
            (
                "broken.pem",
                b"-----BEGIN CERTIFICATE-----\nPLANTED-password-7f3a9c0e\n",
            ),
        ],
    ));
    api.put(secret(
        "kube-system",
        "bootstrap-token-q8w7e6",
        "bootstrap.kubernetes.io/token",
        &[
            ("token-id", b"q8w7e6"),
            ("token-secret", bootstrap_secret.as_bytes()),
            ("expiration", b"2027-01-01T00:00:00Z"),
        ],
    ));
    let server = serve(&s, &api, "", &["-vvv"]);
    assert!(api.wait_for_watches(2, DEADLINE));
    // Watch events and a re-list go through the same code paths as the first list.
    api.put(secret(
        "web",
        "app-credentials",
        "Opaque",
        &[
            ("password", password.as_bytes()),
            ("projected-token", bound.as_bytes()),
            ("ca.crt", ca.pem.as_bytes()),
        ],
    ));
    let credentials = secret_path("web", "app-credentials");
    let (m, _) = server.wait_for("the modified Secret", |m| {
        !m.find(NOT_AFTER, &[("path", &credentials), ("key", "ca.crt")])
            .is_empty()
    });
    api.expire_history();
    api.drop_connections();
    api.put(tls_secret("web", "after", &[&server_cert]));
    server.wait_for("a re-list", |m| {
        m.paths().contains(&secret_path("web", "after"))
    });

    let outputs = [
        ("stderr (-vvv)", server.stderr()),
        ("/metrics", server.get("/metrics").body),
        ("/", server.get("/").body),
    ];
    assert!(
        outputs[0].1.lines().count() > 10,
        "expected a verbose log:\n{}",
        outputs[0].1
    );
    for (what, secret) in &canaries {
        for (form, text) in [("as is", secret.clone()), ("base64", b64(secret))] {
            for (place, out) in &outputs {
                assert!(
                    !out.contains(&text),
                    "{what} ({form}) leaked into {place}:\n  {text}\n--- {place} ---\n{out}"
                );
            }
        }
    }
    assert!(!m.text.contains("PLANTED"));
}

#[test]
fn an_api_server_restart_takes_the_source_down_and_back_up() {
    let s = Scratch::new();
    let api = ApiServer::start();
    let ca = ca();
    api.put(tls_secret("web", "tls", &[&ca]));
    let server = serve(&s, &api, "  configmaps: false\n", &[]);
    assert!(api.wait_for_watches(1, DEADLINE));

    // Unreachable for a moment; etcd keeps its history, so the watch can
    // resume from where it was without a re-list.
    api.set_down(true);
    let (m, _) = server.wait_for("the source down", |m| m.value(UP, &K8S) == 0.0);
    assert_eq!(
        m.paths(),
        [secret_path("web", "tls")],
        "last good credentials stay"
    );
    assert!(
        m.value(
            "lapse_errors_total",
            &[("source", "kubernetes"), ("reason", "unreachable")]
        ) >= 1.0
    );
    api.set_down(false);
    server.wait_for("the source up again", |m| m.value(UP, &K8S) == 1.0);
    assert!(!server.get("/").body.contains("Could not read"));
}

#[test]
fn throttling_is_waited_out_as_the_server_asks() {
    let s = Scratch::new();
    let api = ApiServer::start();
    let ca = ca();
    api.put(tls_secret("web", "tls", &[&ca]));
    api.throttle(1);
    let server = serve(&s, &api, "  configmaps: false\n", &[]);
    let m = server.metrics();
    assert_eq!(m.value(UP, &K8S), 1.0);
    assert_eq!(m.paths(), [secret_path("web", "tls")]);
    let requests = api.requests();
    let statuses: Vec<u16> = requests.iter().map(|r| r.status).collect();
    assert_eq!(&statuses[..2], [429, 200], "{}", show(&requests));
    // Retry-After: 1 was respected.
    let waited = requests[1].received - requests[0].received;
    assert!(
        waited >= Duration::from_millis(900),
        "retried after {waited:?}"
    );
}

#[test]
fn throttling_is_counted() {
    let s = Scratch::new();
    let api = ApiServer::start();
    api.put(tls_secret("web", "tls", &[&ca()]));
    api.throttle(1);
    let server = serve(&s, &api, "  configmaps: false\n", &[]);
    let m = server.metrics();
    assert_eq!(
        m.value(
            "lapse_errors_total",
            &[("source", "kubernetes"), ("reason", "throttled")]
        ),
        1.0,
        "{}",
        m.text
    );
}

#[test]
fn a_rejected_token_takes_the_source_down_and_keeps_the_last_credentials() {
    let s = Scratch::new();
    let api = ApiServer::start();
    let ca = ca();
    api.put(tls_secret("web", "tls", &[&ca]));
    let server = serve(&s, &api, "  configmaps: false\n", &[]);
    assert!(api.wait_for_watches(1, DEADLINE));

    // The token is revoked: every request is 401 from now on.
    api.set_token("rotated-elsewhere");
    api.drop_connections();
    let (m, _) = server.wait_for("the source down", |m| m.value(UP, &K8S) == 0.0);
    assert_eq!(
        m.paths(),
        [secret_path("web", "tls")],
        "last good credentials stay"
    );
    // The first failure may be the dropped connection; the retry meets the 401.
    wait_until("the 401 on the page", || {
        server.get("/").body.contains("unauthorized")
    });
    assert!(api.requests().iter().any(|r| r.status == 401));
    assert_contains(&server.stderr(), "unauthorized");
    let m = server.metrics();
    assert_eq!(m.value(UP, &K8S), 0.0);
    assert_eq!(m.paths(), [secret_path("web", "tls")]);
}

#[test]
fn cluster_mode_without_cluster_permissions_names_what_is_missing() {
    let s = Scratch::new();
    let api = ApiServer::start();
    api.put(tls_secret("web", "tls", &[&ca()]));
    api.forbid_cluster_scope();
    let server = serve(&s, &api, "", &[]);
    let m = server.metrics();
    assert_eq!(m.value(UP, &K8S), 0.0);
    assert!(m.paths().is_empty());
    let page = server.get("/").body;
    assert_contains(&page, "cannot list secrets cluster-wide");
    assert_contains(&page, "cannot list configmaps cluster-wide");
    assert_contains(&server.stderr(), "forbidden");
}

#[test]
fn an_unreachable_api_at_start_is_reported_until_it_answers() {
    let s = Scratch::new();
    let api = ApiServer::start();
    let ca = ca();
    api.put(tls_secret("web", "tls", &[&ca]));
    api.set_down(true);
    let server = serve(&s, &api, "  configmaps: false\n", &[]);
    let m = server.metrics();
    assert_eq!(
        m.value(UP, &K8S),
        0.0,
        "ready, and saying the cluster is not read"
    );
    assert!(m.paths().is_empty());
    assert!(
        m.value(
            "lapse_errors_total",
            &[("source", "kubernetes"), ("reason", "unreachable")]
        ) >= 1.0
    );
    assert_contains(&server.get("/").body, "list secrets cluster-wide");

    api.set_down(false);
    let (m, _) = server.wait_for("the first list", |m| m.value(UP, &K8S) == 1.0);
    assert_eq!(m.paths(), [secret_path("web", "tls")]);
    assert!(!server.get("/").body.contains("Could not read"));
}
