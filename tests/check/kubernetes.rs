//! `lapse serve` watching a cluster: the test API server
//! (`support/apiserver.rs`) holds Secrets and ConfigMaps, lapse reads it
//! through a kubeconfig as a user would, and `/metrics` must follow every
//! change — after a 410 Gone or a dropped connection too — without ever
//! touching what it must not: a cluster-scoped endpoint in namespaced mode
//! or a Helm payload. Failures and secrecy: `kubernetes_failures.rs`.

use crate::support::apiserver::{
    ApiServer, Logged, Resource, config_map, labelled, namespace, secret,
};
use crate::support::*;
use serde_json::json;
use std::time::Duration;
use time::OffsetDateTime;
use time::macros::datetime;

pub(super) const NOT_AFTER: &str = "lapse_credential_not_after_timestamp_seconds";
pub(super) const NO_EXPIRY: &str = "lapse_credential_no_expiry";
pub(super) const EXPIRED: &str = "lapse_credential_expired";
pub(super) const UP: &str = "lapse_source_up";
pub(super) const K8S: [(&str, &str); 1] = [("source", "kubernetes")];
pub(super) const HELM: &str = "helm.sh/release.v1";
/// Every family, with serial and fingerprint on each (the Kubernetes tests
/// read exact timestamps and fingerprints off any family; the default
/// layout is tests/check/serve_metrics.rs's and target_labels.rs's).
const METRICS: &str = "metrics: {families: all, descriptive_labels: every_series}";

/// Writes the kubeconfig and `lapse.yaml` (`kubernetes:` with the
/// kubeconfig, then `extra` lines of the section) and starts
/// `lapse serve --config lapse.yaml empty/`.
pub(super) fn serve(s: &Scratch, api: &ApiServer, extra: &str, flags: &[&str]) -> Server {
    let kubeconfig = api.write_kubeconfig(&s.path("kube"));
    s.write(
        "lapse.yaml",
        format!(
            "kubernetes:\n  kubeconfig: {}\n{extra}\n{METRICS}",
            kubeconfig.display()
        ),
    );
    s.mkdir("empty");
    s.serve()
        .args(flags.iter().copied())
        .args(["--config", "lapse.yaml", "empty"])
        .start()
}

pub(super) fn secret_path(namespace: &str, name: &str) -> String {
    format!("/api/v1/namespaces/{namespace}/secrets/{name}")
}

pub(super) fn config_map_path(namespace: &str, name: &str) -> String {
    format!("/api/v1/namespaces/{namespace}/configmaps/{name}")
}

pub(super) fn ca() -> Cert {
    Cert::ca(
        "cluster-issuer",
        datetime!(2024-01-01 0:00 UTC),
        datetime!(2036-01-01 0:00 UTC),
    )
}

/// A leaf of `ca` valid from `from` to `to`.
pub(super) fn leaf(ca: &Cert, cn: &str, from: OffsetDateTime, to: OffsetDateTime) -> Cert {
    ca.issue(cn, from, to)
}

pub(super) fn tls_secret(
    namespace: &str,
    name: &str,
    chain: &[&Cert],
) -> k8s_openapi::api::core::v1::Secret {
    secret(
        namespace,
        name,
        "kubernetes.io/tls",
        &[
            ("tls.crt", bundle(chain).as_bytes()),
            ("tls.key", chain[0].key_pem.as_bytes()),
        ],
    )
}

/// Labels of the credential at `index` of `key` in a Secret.
pub(super) fn at<'a>(path: &'a str, key: &'a str, fingerprint: &'a str) -> [(&'a str, &'a str); 3] {
    [("path", path), ("key", key), ("fingerprint", fingerprint)]
}

/// Polls `done` every [`POLL`] for at most [`DEADLINE`].
pub(super) fn wait_until(what: &str, done: impl Fn() -> bool) {
    let started = std::time::Instant::now();
    while !done() {
        assert!(
            started.elapsed() < DEADLINE,
            "{what}: not after {DEADLINE:?}"
        );
        std::thread::sleep(POLL);
    }
    println!("{what}: after {} ms", started.elapsed().as_millis());
}

/// Lists the requests, one a line, for failure messages.
pub(super) fn show(requests: &[Logged]) -> String {
    requests
        .iter()
        .map(Logged::line)
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_initial_list_of_mixed_secret_types_and_configmaps() {
    let s = Scratch::new();
    let api = ApiServer::start();
    let ca = ca();
    let intermediate = ca.issue(
        "issuing-ca",
        datetime!(2025-03-01 0:00 UTC),
        datetime!(2030-03-01 0:00 UTC),
    );
    let shop = leaf(
        &intermediate,
        "shop.example",
        datetime!(2026-10-01 0:00 UTC),
        datetime!(2027-01-15 0:00 UTC),
    );
    let upstream = leaf(
        &ca,
        "upstream.example",
        datetime!(2026-01-01 0:00 UTC),
        datetime!(2028-01-01 0:00 UTC),
    );
    let root = Cert::ca(
        "kubernetes",
        datetime!(2025-01-01 0:00 UTC),
        datetime!(2035-01-01 0:00 UTC),
    );
    let in_helm = Cert::ca(
        "only-in-a-helm-release",
        datetime!(2025-01-01 0:00 UTC),
        datetime!(2027-02-02 0:00 UTC),
    );
    let legacy = jwt(
        json!({"iss": "kubernetes/serviceaccount", "sub": "system:serviceaccount:ci:deployer"}),
        "sig-legacy",
    );
    let rejected = jwt(
        json!({"iss": "kubernetes/serviceaccount", "sub": "system:serviceaccount:ci:old"}),
        "sig-rejected",
    );
    api.put(tls_secret("web", "ingress-tls", &[&shop, &intermediate]));
    api.put(secret(
        "ci",
        "deployer-token",
        "kubernetes.io/service-account-token",
        &[("token", legacy.as_bytes()), ("namespace", b"ci")],
    ));
    api.put(labelled(
        secret(
            "ci",
            "old-token",
            "kubernetes.io/service-account-token",
            &[("token", rejected.as_bytes()), ("namespace", b"ci")],
        ),
        &[("kubernetes.io/legacy-token-invalid-since", "2026-01-01")],
    ));
    api.put(secret(
        "kube-system",
        "bootstrap-token-abcdef",
        "bootstrap.kubernetes.io/token",
        &[
            ("token-id", b"abcdef"),
            ("token-secret", b"0123456789abcdef"),
            ("expiration", b"2031-05-01T12:00:00Z"),
            ("usage-bootstrap-authentication", b"true"),
        ],
    ));
    api.put(secret(
        "web",
        "upstream",
        "Opaque",
        &[
            ("upstream-bundle", upstream.pem.as_bytes()),
            ("password", b"not a credential"),
        ],
    ));
    api.put(secret(
        "web",
        "sh.helm.release.v1.shop.v3",
        HELM,
        &[("release", in_helm.pem.as_bytes())],
    ));
    api.put(config_map(
        "kube-system",
        "kube-root-ca.crt",
        &[("ca.crt", &root.pem)],
    ));
    api.put(config_map("web", "settings", &[("LOG_LEVEL", "info")]));

    let server = serve(&s, &api, "", &[]);
    let m = server.metrics();

    assert_eq!(m.value(UP, &K8S), 1.0, "{}", server.stderr());
    let tls = secret_path("web", "ingress-tls");
    let deployer = secret_path("ci", "deployer-token");
    let old = secret_path("ci", "old-token");
    let bootstrap = secret_path("kube-system", "bootstrap-token-abcdef");
    let opaque = secret_path("web", "upstream");
    let root_ca = config_map_path("kube-system", "kube-root-ca.crt");
    let mut want = vec![
        tls.clone(),
        deployer.clone(),
        old.clone(),
        bootstrap.clone(),
        opaque.clone(),
        root_ca.clone(),
    ];
    want.sort();
    assert_eq!(m.paths(), want, "\n--- /metrics ---\n{}", m.text);

    // tls.crt: leaf then chain, index 0 and 1; tls.key is no credential.
    let leaf_series = m.one(NOT_AFTER, &at(&tls, "tls.crt", &shop.fingerprint_label()));
    assert_eq!(leaf_series.label("source"), "secret");
    assert_eq!(leaf_series.label("object_namespace"), "web");
    assert_eq!(leaf_series.label("name"), "ingress-tls");
    assert_eq!(leaf_series.label("entry"), "secret web/ingress-tls tls.crt");
    assert_eq!(leaf_series.label("index"), "0");
    assert_eq!(leaf_series.label("subject_cn"), "shop.example");
    m.assert_window(
        &at(&tls, "tls.crt", &shop.fingerprint_label()),
        unix(datetime!(2026-10-01 0:00 UTC)),
        unix(datetime!(2027-01-15 0:00 UTC)),
    );
    let chain = m.one(
        NOT_AFTER,
        &at(&tls, "tls.crt", &intermediate.fingerprint_label()),
    );
    assert_eq!(chain.label("index"), "1");
    m.assert_window(
        &at(&tls, "tls.crt", &intermediate.fingerprint_label()),
        unix(datetime!(2025-03-01 0:00 UTC)),
        unix(datetime!(2030-03-01 0:00 UTC)),
    );
    assert!(m.find(NOT_AFTER, &[("key", "tls.key")]).is_empty());

    // A legacy service-account token never expires by itself…
    let token = m.one(NO_EXPIRY, &[("path", &deployer), ("key", "token")]);
    assert_eq!(token.value, 1.0);
    assert_eq!(token.label("kind"), "jwt");
    assert_eq!(token.label("entry"), "secret ci/deployer-token token");
    assert_eq!(
        token.label("fingerprint"),
        &sha256(&legacy)["sha256:".len()..][..16]
    );
    // …unless Kubernetes labelled it invalid: then it lapsed that day.
    let invalid = [("path", old.as_str()), ("key", "token")];
    assert_eq!(
        m.value(NOT_AFTER, &invalid),
        unix(datetime!(2026-01-01 0:00 UTC)) as f64
    );
    assert_eq!(m.value(EXPIRED, &invalid), 1.0);
    assert!(m.find(NO_EXPIRY, &invalid).is_empty());

    let boot = [("path", bootstrap.as_str()), ("key", "token-secret")];
    assert_eq!(
        m.value(NOT_AFTER, &boot),
        unix(datetime!(2031-05-01 12:00 UTC)) as f64
    );
    assert_eq!(m.value(EXPIRED, &boot), 0.0);
    assert_eq!(m.one(NOT_AFTER, &boot).label("kind"), "bootstrap-token");

    // PEM under any key name of an Opaque Secret; other values are not credentials.
    let upstream_fingerprint = upstream.fingerprint_label();
    let upstream_labels = at(&opaque, "upstream-bundle", &upstream_fingerprint);
    m.assert_window(
        &upstream_labels,
        unix(datetime!(2026-01-01 0:00 UTC)),
        unix(datetime!(2028-01-01 0:00 UTC)),
    );
    assert_eq!(
        m.one(NOT_AFTER, &upstream_labels).label("entry"),
        "secret web/upstream upstream-bundle"
    );

    let root_fingerprint = root.fingerprint_label();
    let root_labels = at(&root_ca, "ca.crt", &root_fingerprint);
    let cm = m.one(NOT_AFTER, &root_labels);
    assert_eq!(cm.label("source"), "configmap");
    assert_eq!(cm.label("object_namespace"), "kube-system");
    assert_eq!(cm.label("name"), "kube-root-ca.crt");
    assert_eq!(
        cm.label("entry"),
        "configmap kube-system/kube-root-ca.crt ca.crt"
    );
    m.assert_window(
        &root_labels,
        unix(datetime!(2025-01-01 0:00 UTC)),
        unix(datetime!(2035-01-01 0:00 UTC)),
    );

    // Helm releases were filtered by the server: asked for with a field
    // selector on every Secret request, and never sent.
    assert!(!m.text.contains("only-in-a-helm-release"));
    let requests = api.requests();
    let secrets: Vec<&Logged> = requests
        .iter()
        .filter(|r| r.path.ends_with("/secrets"))
        .collect();
    assert!(!secrets.is_empty(), "{}", show(&requests));
    for r in &secrets {
        let fields = r.param("fieldSelector").unwrap_or("");
        assert!(
            fields.split(',').any(|f| f == "type!=helm.sh/release.v1"),
            "a Secret request without the Helm filter: {}",
            r.line()
        );
    }
    let helm_sent: Vec<_> = api
        .sent()
        .into_iter()
        .filter(|o| o.secret_type.as_deref() == Some(HELM))
        .collect();
    assert!(helm_sent.is_empty(), "{helm_sent:?}");
    // Paginated: a limit on every LIST; everything answered.
    for r in requests.iter().filter(|r| !r.is_watch()) {
        assert!(
            r.param("limit").is_some(),
            "a LIST without limit: {}",
            r.line()
        );
    }
    assert!(
        requests.iter().all(|r| r.status == 200),
        "{}",
        show(&requests)
    );
}

#[test]
fn added_modified_and_deleted_secrets_show_in_metrics() {
    let s = Scratch::new();
    let api = ApiServer::start();
    let ca = ca();
    let first = leaf(
        &ca,
        "first.example",
        datetime!(2026-06-01 0:00 UTC),
        datetime!(2027-06-01 0:00 UTC),
    );
    let second = leaf(
        &ca,
        "second.example",
        datetime!(2026-11-01 0:00 UTC),
        datetime!(2027-11-01 0:00 UTC),
    );
    let steady = leaf(
        &ca,
        "steady.example",
        datetime!(2026-01-01 0:00 UTC),
        datetime!(2029-01-01 0:00 UTC),
    );
    api.put(tls_secret("web", "steady", &[&steady]));
    api.put(config_map("web", "bundle", &[("ca.crt", &ca.pem)]));
    let server = serve(&s, &api, "", &[]);
    let path = secret_path("web", "rotating");
    assert_eq!(
        server.metrics().paths(),
        [
            config_map_path("web", "bundle"),
            secret_path("web", "steady")
        ]
    );
    assert!(
        api.wait_for_watches(2, DEADLINE),
        "lapse opened no watches:\n{}",
        show(&api.requests())
    );

    api.put(tls_secret("web", "rotating", &[&first]));
    let (m, _) = server.wait_for("an added Secret", |m| m.paths().contains(&path));
    m.assert_window(
        &at(&path, "tls.crt", &first.fingerprint_label()),
        unix(datetime!(2026-06-01 0:00 UTC)),
        unix(datetime!(2027-06-01 0:00 UTC)),
    );

    api.put(tls_secret("web", "rotating", &[&second]));
    let (m, _) = server.wait_for("a renewed certificate in tls.crt", |m| {
        !m.find(
            NOT_AFTER,
            &[
                ("path", &path),
                ("fingerprint", &second.fingerprint_label()),
            ],
        )
        .is_empty()
    });
    assert_eq!(
        m.find(NOT_AFTER, &[("path", &path)]).len(),
        1,
        "the old certificate's series stayed:\n{}",
        m.text
    );
    m.assert_window(
        &at(&path, "tls.crt", &second.fingerprint_label()),
        unix(datetime!(2026-11-01 0:00 UTC)),
        unix(datetime!(2027-11-01 0:00 UTC)),
    );

    api.delete_secret("web", "rotating");
    let (m, _) = server.wait_for("a deleted Secret", |m| !m.paths().contains(&path));
    api.delete_config_map("web", "bundle");
    let (m2, _) = server.wait_for("a deleted ConfigMap", |m| m.paths().len() == 1);
    assert!(m.text.contains("steady.example"));
    assert_eq!(m2.paths(), [secret_path("web", "steady")]);
    // No re-list was needed: one LIST per resource, then watches.
    let lists: Vec<Logged> = api
        .requests()
        .into_iter()
        .filter(|r| !r.is_watch())
        .collect();
    assert_eq!(lists.len(), 2, "{}", show(&lists));
}

#[test]
fn after_410_gone_a_relist_loses_nothing_and_keeps_nothing_stale() {
    let s = Scratch::new();
    let api = ApiServer::start();
    let ca = ca();
    let keep = leaf(
        &ca,
        "keep.example",
        datetime!(2026-01-01 0:00 UTC),
        datetime!(2028-01-01 0:00 UTC),
    );
    let before = leaf(
        &ca,
        "before.example",
        datetime!(2026-02-01 0:00 UTC),
        datetime!(2027-02-01 0:00 UTC),
    );
    let after = leaf(
        &ca,
        "after.example",
        datetime!(2026-11-01 0:00 UTC),
        datetime!(2027-11-01 0:00 UTC),
    );
    let born = leaf(
        &ca,
        "born.example",
        datetime!(2026-11-02 0:00 UTC),
        datetime!(2027-11-02 0:00 UTC),
    );
    api.put(tls_secret("web", "keep", &[&keep]));
    api.put(tls_secret("web", "renewed", &[&before]));
    api.put(tls_secret("ci", "doomed", &[&keep]));
    api.put(config_map("ci", "doomed-ca", &[("ca.crt", &ca.pem)]));
    let server = serve(&s, &api, "", &[]);
    assert!(
        api.wait_for_watches(2, DEADLINE),
        "{}",
        show(&api.requests())
    );
    assert_eq!(server.metrics().paths().len(), 4);

    // The API server goes away; while it is away, objects change and
    // etcd compacts, so the versions lapse watched from are gone.
    api.set_down(true);
    api.put(tls_secret("web", "renewed", &[&after]));
    api.delete_secret("ci", "doomed");
    api.delete_config_map("ci", "doomed-ca");
    api.put(tls_secret("web", "born", &[&born]));
    api.expire_history();
    std::thread::sleep(Duration::from_millis(300));
    api.set_down(false);

    let renewed = secret_path("web", "renewed");
    let (m, _) = server.wait_for("the state after 410 Gone", |m| {
        m.paths()
            == [
                secret_path("web", "born"),
                secret_path("web", "keep"),
                renewed.clone(),
            ]
    });
    m.assert_window(
        &at(&renewed, "tls.crt", &after.fingerprint_label()),
        unix(datetime!(2026-11-01 0:00 UTC)),
        unix(datetime!(2027-11-01 0:00 UTC)),
    );
    assert_eq!(
        m.find(NOT_AFTER, &[("path", &renewed)]).len(),
        1,
        "{}",
        m.text
    );
    m.assert_window(
        &at(
            &secret_path("web", "born"),
            "tls.crt",
            &born.fingerprint_label(),
        ),
        unix(datetime!(2026-11-02 0:00 UTC)),
        unix(datetime!(2027-11-02 0:00 UTC)),
    );
    assert_eq!(m.value(UP, &K8S), 1.0);

    // It got there by a fresh LIST after the outage: the versions it had
    // watched from are gone, so only a re-list can be right. (A watch that
    // fails restarts from a LIST; one answered 410 Gone re-lists too.)
    let requests = api.requests();
    let relisted = requests.iter().any(|r| {
        !r.is_watch()
            && r.status == 200
            && r.path.ends_with("/secrets")
            && r.sent.iter().any(|x| x.name == "born")
    });
    assert!(
        relisted,
        "no re-list after the outage:\n{}",
        show(&requests)
    );
}

#[test]
fn a_watch_ended_by_410_gone_relists_and_finds_what_it_missed() {
    let s = Scratch::new();
    let api = ApiServer::start();
    let ca = ca();
    let old = leaf(
        &ca,
        "old.example",
        datetime!(2026-01-01 0:00 UTC),
        datetime!(2027-01-01 0:00 UTC),
    );
    let new = leaf(
        &ca,
        "new.example",
        datetime!(2026-11-01 0:00 UTC),
        datetime!(2027-11-01 0:00 UTC),
    );
    api.put(tls_secret("web", "rotating", &[&old]));
    let server = serve(&s, &api, "  configmaps: false\n", &[]);
    assert!(
        api.wait_for_watches(1, DEADLINE),
        "{}",
        show(&api.requests())
    );
    let lists_before = api.requests().iter().filter(|r| !r.is_watch()).count();

    // The change and the compaction land together: the open watch can only
    // answer 410 Gone, and only a re-list can see the new certificate.
    api.put_and_expire(tls_secret("web", "rotating", &[&new]));

    let path = secret_path("web", "rotating");
    let (m, _) = server.wait_for("the certificate after 410 Gone", |m| {
        !m.find(NOT_AFTER, &at(&path, "tls.crt", &new.fingerprint_label()))
            .is_empty()
    });
    assert_eq!(m.find(NOT_AFTER, &[("path", &path)]).len(), 1, "{}", m.text);
    m.assert_window(
        &at(&path, "tls.crt", &new.fingerprint_label()),
        unix(datetime!(2026-11-01 0:00 UTC)),
        unix(datetime!(2027-11-01 0:00 UTC)),
    );
    let requests = api.requests();
    let lists_after = requests.iter().filter(|r| !r.is_watch()).count();
    assert!(
        lists_after > lists_before,
        "no re-list:\n{}",
        show(&requests)
    );
    assert!(
        !requests
            .iter()
            .any(|r| r.sent.iter().any(|x| x.how == "MODIFIED")),
        "the change must not have arrived as a watch event:\n{}",
        show(&requests)
    );
    assert!(
        m.value(
            "lapse_errors_total",
            &[("source", "kubernetes"), ("reason", "expired")]
        ) >= 1.0,
        "{}",
        m.text
    );
    assert_eq!(m.value(UP, &K8S), 1.0);
}

#[test]
fn namespace_scoped_mode_never_touches_a_cluster_scoped_endpoint() {
    let s = Scratch::new();
    let api = ApiServer::start();
    let ca = ca();
    for ns in ["web", "ci", "prod", "kube-system"] {
        api.put(tls_secret(ns, "tls", &[&ca]));
        api.put(config_map(ns, "ca", &[("ca.crt", &ca.pem)]));
    }
    let server = serve(&s, &api, "  namespaces: [web, ci]\n", &[]);
    assert!(
        api.wait_for_watches(4, DEADLINE),
        "{}",
        show(&api.requests())
    );
    api.put(tls_secret("ci", "later", &[&ca]));
    api.put(tls_secret("prod", "later", &[&ca]));
    let (m, _) = server.wait_for("a Secret added in a watched namespace", |m| {
        m.paths().contains(&secret_path("ci", "later"))
    });
    // A dropped connection and a re-list stay namespaced too.
    api.drop_connections();
    api.expire_history();
    api.put(config_map("web", "after-relist", &[("ca.crt", &ca.pem)]));
    let (m2, _) = server.wait_for("a ConfigMap added after a re-list", |m| {
        m.paths().contains(&config_map_path("web", "after-relist"))
    });

    let mut want = vec![
        secret_path("ci", "later"),
        secret_path("ci", "tls"),
        secret_path("web", "tls"),
        config_map_path("ci", "ca"),
        config_map_path("web", "ca"),
    ];
    want.sort();
    assert_eq!(m.paths(), want);
    assert!(
        m2.paths()
            .iter()
            .all(|p| p.contains("/namespaces/web/") || p.contains("/namespaces/ci/"))
    );
    // Every scope re-listed after its own 410 (each on its own backoff).
    server.wait_for("every scope back up", |m| m.value(UP, &K8S) == 1.0);

    let requests = api.requests();
    let cluster = api.cluster_scoped_requests();
    assert!(
        cluster.is_empty(),
        "namespaced mode called cluster-scoped endpoints:\n{}\n--- every request ---\n{}",
        show(&cluster),
        show(&requests)
    );
    let elsewhere: Vec<Logged> = requests
        .iter()
        .filter(|r| !matches!(r.namespace(), Some("web" | "ci")))
        .cloned()
        .collect();
    assert!(elsewhere.is_empty(), "{}", show(&elsewhere));
    // Each namespace was listed and watched, Secrets and ConfigMaps.
    for ns in ["web", "ci"] {
        for resource in ["secrets", "configmaps"] {
            let endpoint = format!("/api/v1/namespaces/{ns}/{resource}");
            let of = |watch: bool| {
                requests
                    .iter()
                    .any(|r| r.path == endpoint && r.is_watch() == watch)
            };
            assert!(of(false) && of(true), "{endpoint}:\n{}", show(&requests));
        }
    }
}

#[test]
fn selectors_exclusions_and_configmaps_off() {
    let s = Scratch::new();
    let api = ApiServer::start();
    let ca = ca();
    let team = [("team", "payments")];
    api.put(labelled(tls_secret("web", "mine", &[&ca]), &team));
    api.put(tls_secret("web", "theirs", &[&ca]));
    api.put(labelled(tls_secret("kube-public", "mine", &[&ca]), &team));
    api.put(labelled(
        config_map("web", "mine", &[("ca.crt", &ca.pem)]),
        &team,
    ));
    api.put(namespace("kube-public", &[]));
    let server = serve(
        &s,
        &api,
        "  label_selector: team=payments\n  exclude_namespaces: [kube-public]\n  configmaps: false\n  \
         copy_labels: [team]\n",
        &[],
    );
    let m = server.metrics();
    assert_eq!(m.paths(), [secret_path("web", "mine")]);
    // Opted-in Kubernetes labels ride along on every series.
    assert_eq!(m.one(NOT_AFTER, &[]).label("secret_label_team"), "payments");
    assert!(api.wait_for_watches(1, DEADLINE));

    // Leaving the selector is a deletion as far as lapse can see.
    api.put(tls_secret("web", "mine", &[&ca]));
    server.wait_for("a Secret relabelled out of the selector", |m| {
        m.paths().is_empty()
    });
    api.put(labelled(tls_secret("web", "theirs", &[&ca]), &team));
    server.wait_for("a Secret relabelled into the selector", |m| {
        m.paths() == [secret_path("web", "theirs")]
    });

    let requests = api.requests();
    assert!(
        requests.iter().all(|r| r.path == "/api/v1/secrets"),
        "{}",
        show(&requests)
    );
    assert!(
        requests
            .iter()
            .all(|r| r.param("labelSelector") == Some("team=payments")),
        "{}",
        show(&requests)
    );
    assert!(api.sent().iter().all(|o| o.resource == Resource::Secrets));
}

#[test]
fn a_kubernetes_section_alone_is_enough() {
    let s = Scratch::new();
    let api = ApiServer::start();
    let ca = ca();
    api.put(tls_secret("web", "tls", &[&ca]));
    // The user's kubeconfig, as `kubernetes: {}` finds it.
    let written = api.write_kubeconfig(&s.path("kube"));
    s.mkdir("home/.kube");
    std::fs::copy(&written, s.path("home/.kube/config")).unwrap();
    s.write("lapse.yaml", "kubernetes: {}\n");
    let server = s.serve().args(["--config", "lapse.yaml"]).start();
    let m = server.metrics();
    assert_eq!(m.value(UP, &K8S), 1.0);
    assert!(m.paths().contains(&secret_path("web", "tls")), "{}", m.text);
}

#[test]
fn with_no_file_to_watch_the_cluster_is_enough() {
    let s = Scratch::new();
    let api = ApiServer::start();
    let ca = ca();
    api.put(tls_secret("web", "tls", &[&ca]));
    let kubeconfig = api.write_kubeconfig(&s.path("kube"));
    s.write(
        "lapse.yaml",
        format!("kubernetes:\n  kubeconfig: {}\n", kubeconfig.display()),
    );
    let server = s.serve().args(["--config", "lapse.yaml"]).start();
    let m = server.metrics();
    assert_eq!(m.value(UP, &K8S), 1.0);
    assert_eq!(m.paths(), [secret_path("web", "tls")]);
}

#[test]
fn a_large_cluster_is_listed_page_by_page() {
    let s = Scratch::new();
    let api = ApiServer::start();
    let ca = ca();
    for i in 0..1_200 {
        api.put(secret(
            &format!("team-{}", i % 7),
            &format!("cert-{i:04}"),
            "Opaque",
            &[("ca.pem", ca.pem.as_bytes())],
        ));
    }
    let server = serve(&s, &api, "  configmaps: false\n", &[]);
    let m = server.metrics();
    assert_eq!(m.paths().len(), 1_200);
    assert_eq!(m.value(UP, &K8S), 1.0);
    let lists: Vec<Logged> = api
        .requests()
        .into_iter()
        .filter(|r| !r.is_watch())
        .collect();
    let limit = lists[0].param("limit").expect("a page size");
    let pages = 1_200usize.div_ceil(limit.parse::<usize>().unwrap());
    assert!(pages > 1, "the page size is {limit}: use more objects");
    assert_eq!(lists.len(), pages, "{}", show(&lists));
    assert!(lists[0].param("continue").is_none());
    assert!(
        lists[1..].iter().all(|r| r.param("continue").is_some()),
        "{}",
        show(&lists)
    );
    // The watch starts from the version the first page was taken at.
    let watch = api.requests().into_iter().find(Logged::is_watch);
    if let Some(w) = watch {
        assert_eq!(
            w.param("resourceVersion"),
            Some(api.resource_version().to_string().as_str())
        );
    }
}

#[test]
fn keystores_open_with_a_sibling_password_or_one_from_another_secret() {
    let s = Scratch::new();
    let api = ApiServer::start();
    let ca = ca();
    let shop = leaf(
        &ca,
        "shop.example",
        datetime!(2026-05-01 0:00 UTC),
        datetime!(2027-05-01 0:00 UTC),
    );
    let partner = leaf(
        &ca,
        "partner.example",
        datetime!(2026-07-01 0:00 UTC),
        datetime!(2027-07-01 0:00 UTC),
    );
    api.put(secret(
        "web",
        "shop-keystore",
        "Opaque",
        &[
            ("keystore.p12", &pkcs12(&[&shop, &ca], "changeit-sibling")),
            ("keystore-password", b"changeit-sibling"),
        ],
    ));
    api.put(secret(
        "web",
        "partner-truststore",
        "Opaque",
        &[("truststore.p12", &pkcs12(&[&partner], "kept-in-vault-9"))],
    ));
    api.put(secret(
        "web",
        "wrong",
        "Opaque",
        &[
            ("keystore.p12", &pkcs12(&[&shop], "the-real-one")),
            ("keystore-password", b"a-stale-one"),
        ],
    ));
    let server = serve(
        &s,
        &api,
        "  configmaps: false\n  keystore_password_secrets: [vault/keystore-pass/password]\n",
        &[],
    );
    let shop_path = secret_path("web", "shop-keystore");
    let partner_path = secret_path("web", "partner-truststore");
    let m = server.metrics();
    m.assert_window(
        &at(&shop_path, "keystore.p12", &shop.fingerprint_label()),
        unix(datetime!(2026-05-01 0:00 UTC)),
        unix(datetime!(2027-05-01 0:00 UTC)),
    );
    assert_eq!(m.find(NOT_AFTER, &[("path", &shop_path)]).len(), 2);
    assert_eq!(m.paths(), std::slice::from_ref(&shop_path));
    let password_errors = [("source", "kubernetes"), ("reason", "password")];
    assert!(
        m.value("lapse_errors_total", &password_errors) >= 2.0,
        "{}",
        m.text
    );
    let page = server.get("/").body;
    assert_contains(&page, &secret_path("web", "wrong"));
    assert_contains(&page, &partner_path);

    // The password arrives in another Secret: the locked store is fetched again.
    assert!(api.wait_for_watches(1, DEADLINE));
    api.put(secret(
        "vault",
        "keystore-pass",
        "Opaque",
        &[("password", b"kept-in-vault-9")],
    ));
    let (m, _) = server.wait_for("the truststore opened", |m| {
        m.paths().contains(&partner_path)
    });
    m.assert_window(
        &at(
            &partner_path,
            "truststore.p12",
            &partner.fingerprint_label(),
        ),
        unix(datetime!(2026-07-01 0:00 UTC)),
        unix(datetime!(2027-07-01 0:00 UTC)),
    );
    assert!(!m.paths().contains(&secret_path("web", "wrong")));
    assert!(
        api.requests()
            .iter()
            .any(|r| r.path == partner_path && r.method == "GET" && r.status == 200),
        "{}",
        show(&api.requests())
    );
    let page = server.get("/").body;
    let stderr = server.stderr();
    for secret in [
        "changeit-sibling",
        "kept-in-vault-9",
        "a-stale-one",
        "the-real-one",
    ] {
        assert!(!page.contains(secret) && !stderr.contains(secret) && !m.text.contains(secret));
    }
}

#[test]
fn configmap_key_patterns_and_excluded_namespaces_filter_what_is_read() {
    let s = Scratch::new();
    let api = ApiServer::start();
    let ca = ca();
    let other = leaf(
        &ca,
        "other.example",
        datetime!(2026-01-01 0:00 UTC),
        datetime!(2027-01-01 0:00 UTC),
    );
    api.put(config_map(
        "web",
        "bundle",
        &[("ca.crt", &ca.pem), ("extra.pem", &other.pem)],
    ));
    api.put(tls_secret("kube-public", "hidden", &[&ca]));
    let server = serve(
        &s,
        &api,
        "  configmap_keys: ['*.crt']\n  exclude_namespaces: [kube-public]\n",
        &[],
    );
    let m = server.metrics();
    assert_eq!(m.paths(), [config_map_path("web", "bundle")]);
    assert_eq!(m.one(NOT_AFTER, &[]).label("key"), "ca.crt");
    // Excluded namespaces are filtered on the server: nothing from them was sent.
    let requests = api.requests();
    assert!(
        requests.iter().all(|r| r
            .param("fieldSelector")
            .is_some_and(|f| f.contains("metadata.namespace!=kube-public"))),
        "{}",
        show(&requests)
    );
    assert!(
        api.sent().iter().all(|o| o.namespace != "kube-public"),
        "{}",
        show(&requests)
    );
}

#[test]
fn every_reason_each_source_can_count_starts_at_zero() {
    let s = Scratch::new();
    let api = ApiServer::start();
    let server = serve(&s, &api, "", &[]);
    let (m, _) = server.wait_for("both sources up", |m| {
        m.value(UP, &K8S) == 1.0 && m.value(UP, &[("source", "files")]) == 1.0
    });
    let mut counted: Vec<(String, String, f64)> = m
        .samples
        .iter()
        .filter(|x| x.name == "lapse_errors_total")
        .map(|x| (x.label("source").into(), x.label("reason").into(), x.value))
        .collect();
    counted.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    let expected: Vec<(String, String, f64)> = [
        ("files", "loop"),
        ("files", "not_found"),
        ("files", "parse"),
        ("files", "password"),
        ("files", "read"),
        ("files", "stopped"),
        ("files", "too_large"),
        ("kubernetes", "expired"),
        ("kubernetes", "forbidden"),
        ("kubernetes", "parse"),
        ("kubernetes", "password"),
        ("kubernetes", "stopped"),
        ("kubernetes", "throttled"),
        ("kubernetes", "too_large"),
        ("kubernetes", "unreachable"),
    ]
    .iter()
    .map(|(s, r)| (s.to_string(), r.to_string(), 0.0))
    .collect();
    assert_eq!(counted, expected, "{}", m.text);
}

/// `lapse check --config` with a `kubernetes:` section reads the cluster:
/// one LIST per scope, no WATCH, then the report and its exit status (it
/// used to ignore the section and exit 0 having read nothing).
#[test]
fn check_with_a_kubernetes_section_lists_the_cluster_once() {
    let s = Scratch::new();
    let api = ApiServer::start();
    let ca = ca();
    // 2026-06-01 is `check`'s pinned now: 19 days left is a warning.
    let web = leaf(
        &ca,
        "web.example",
        datetime!(2026-01-01 0:00 UTC),
        datetime!(2026-06-20 0:00 UTC),
    );
    let ci = leaf(
        &ca,
        "ci.example",
        datetime!(2026-01-01 0:00 UTC),
        datetime!(2028-01-01 0:00 UTC),
    );
    api.put(tls_secret("web", "tls", &[&web]));
    api.put(tls_secret("ci", "tls", &[&ci]));
    let kubeconfig = api.write_kubeconfig(&s.path("kube"));
    s.write(
        "lapse.yaml",
        format!(
            "kubernetes:\n  kubeconfig: {}\n  namespaces: [web, ci]\n  configmaps: false\n",
            kubeconfig.display()
        ),
    );
    let report = s.check().args(["--config", "lapse.yaml"]).json();
    assert_eq!(report.code, 1, "{}", report.stderr);
    report.assert_no_errors().assert_credential_count(2);
    assert_eq!(
        report.credential(
            &secret_path("web", "tls"),
            Some("secret web/tls tls.crt"),
            Some(0)
        )["status"],
        "warning"
    );
    assert_eq!(
        report.credential(
            &secret_path("ci", "tls"),
            Some("secret ci/tls tls.crt"),
            Some(0)
        )["status"],
        "ok"
    );
    let requests = api.requests();
    assert!(requests.iter().all(|r| !r.is_watch()), "{requests:?}");
    assert_eq!(requests.len(), 2, "one LIST per namespace: {requests:?}");

    // A namespace lapse may not read is an error entry: UNKNOWN while the rest is fine.
    api.clear_requests();
    api.delete_secret("web", "tls");
    api.forbid_namespace("ci");
    let report = s.check().args(["--config", "lapse.yaml"]).json();
    assert_eq!(report.code, 3, "{}", report.stderr);
    report.assert_credential_count(0).assert_error_count(1);
    assert_contains(
        &report.reason("/api/v1/namespaces/ci/secrets", None),
        "cannot list secrets in namespace ci",
    );
}
