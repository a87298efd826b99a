//! The test API server itself, over raw HTTP: the Kubernetes tests are
//! only as good as its LIST, selectors, WATCH and failure answers.

use crate::support::apiserver::*;
use crate::support::{Client, Response};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;
use kube::core::WatchEvent;
use std::time::Duration;

fn get(api: &ApiServer, path: &str) -> Response {
    Client::plain()
        .request(
            api.port(),
            "GET",
            path,
            &[("Authorization", &format!("Bearer {TOKEN}"))],
        )
        .unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

fn list(api: &ApiServer, path: &str) -> k8s_openapi::List<Secret> {
    let r = get(api, path);
    assert_eq!(r.status, 200, "GET {path}: {}", r.body);
    serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("{e}: {}", r.body))
}

fn names(list: &k8s_openapi::List<Secret>) -> Vec<String> {
    list.items
        .iter()
        .map(|s| {
            format!(
                "{}/{}",
                s.metadata.namespace.as_deref().unwrap_or(""),
                s.metadata.name.as_deref().unwrap_or("")
            )
        })
        .collect()
}

fn status(r: &Response, code: u16) -> Status {
    assert_eq!(r.status, code, "{}", r.body);
    let status: Status =
        serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("{e}: {}", r.body));
    assert_eq!(status.code, Some(code.into()));
    assert_eq!(status.status.as_deref(), Some("Failure"));
    status
}

/// The events of a finished watch, parsed as kube's client parses them.
fn events(r: &Response) -> Vec<WatchEvent<Secret>> {
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));
    r.body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn summary(events: &[WatchEvent<Secret>]) -> Vec<String> {
    events
        .iter()
        .map(|e| match e {
            WatchEvent::Added(s) => format!("ADDED {}", s.metadata.name.as_deref().unwrap()),
            WatchEvent::Modified(s) => format!("MODIFIED {}", s.metadata.name.as_deref().unwrap()),
            WatchEvent::Deleted(s) => format!("DELETED {}", s.metadata.name.as_deref().unwrap()),
            WatchEvent::Bookmark(_) => "BOOKMARK".to_string(),
            WatchEvent::Error(e) => format!("ERROR {} {}", e.code, e.reason),
        })
        .collect()
}

fn populated() -> ApiServer {
    let api = ApiServer::start();
    for (ns, name, kind, app) in [
        ("web", "a", "kubernetes.io/tls", "shop"),
        ("web", "b", "Opaque", "shop"),
        ("web", "c", "helm.sh/release.v1", "shop"),
        ("ci", "d", "kubernetes.io/service-account-token", "runner"),
        ("ci", "e", "Opaque", ""),
    ] {
        let s = secret(ns, name, kind, &[("k", b"v")]);
        api.put(if app.is_empty() {
            s
        } else {
            labelled(s, &[("app", app)])
        });
    }
    api.put(config_map("web", "kube-root-ca.crt", &[("ca.crt", "x")]));
    api
}

#[test]
fn lists_page_by_page_with_an_opaque_continue_token() {
    let api = populated();
    let rv = api.resource_version().to_string();

    let mut seen = Vec::new();
    let mut path = "/api/v1/secrets?limit=2".to_string();
    let mut pages = 0;
    loop {
        let page = list(&api, &path);
        pages += 1;
        assert!(page.items.len() <= 2);
        assert_eq!(page.metadata.resource_version.as_deref(), Some(rv.as_str()));
        seen.extend(names(&page));
        match page.metadata.continue_ {
            Some(token) => {
                // Opaque, and must survive URL encoding.
                path = format!("/api/v1/secrets?limit=2&continue={}", urlencode(&token));
            }
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, ["ci/d", "ci/e", "web/a", "web/b", "web/c"]);

    let web = list(&api, "/api/v1/namespaces/web/secrets");
    assert_eq!(names(&web), ["web/a", "web/b", "web/c"]);
    assert_eq!(web.metadata.continue_, None);
    let r = get(&api, "/api/v1/namespaces/web/configmaps");
    assert!(
        r.body
            .starts_with(r#"{"kind":"ConfigMapList","apiVersion":"v1""#),
        "{}",
        r.body
    );
    let maps: k8s_openapi::List<ConfigMap> = serde_json::from_str(&r.body).unwrap();
    assert_eq!(maps.items.len(), 1);
    // Namespaces exist once something lives in them, labelled with their name.
    let r = get(
        &api,
        "/api/v1/namespaces?labelSelector=kubernetes.io/metadata.name%3Dci",
    );
    assert!(
        r.body.contains(r#""name":"ci""#) && !r.body.contains(r#""name":"web""#),
        "{}",
        r.body
    );

    let log = api.requests();
    assert_eq!(log[1].param("continue").map(|c| !c.is_empty()), Some(true));
    assert!(log[0].is_cluster_scoped() && log[3].namespace() == Some("web"));
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[test]
fn label_and_field_selectors_filter_on_the_server() {
    let api = populated();
    let cases = [
        ("labelSelector=app%3Dshop", vec!["web/a", "web/b", "web/c"]),
        ("labelSelector=app%21%3Dshop", vec!["ci/d", "ci/e"]),
        ("labelSelector=app", vec!["ci/d", "web/a", "web/b", "web/c"]),
        ("labelSelector=%21app", vec!["ci/e"]),
        ("labelSelector=app+in+%28runner%2Cx%29", vec!["ci/d"]),
        ("fieldSelector=type%3DOpaque", vec!["ci/e", "web/b"]),
        (
            "fieldSelector=type%21%3Dhelm.sh%2Frelease.v1",
            vec!["ci/d", "ci/e", "web/a", "web/b"],
        ),
        (
            "fieldSelector=type%21%3Dhelm.sh%2Frelease.v1%2Ctype%21%3DOpaque",
            vec!["ci/d", "web/a"],
        ),
        ("fieldSelector=metadata.name%3Db", vec!["web/b"]),
        (
            "fieldSelector=type%21%3DOpaque&labelSelector=app%3Dshop",
            vec!["web/a", "web/c"],
        ),
    ];
    for (query, want) in cases {
        let got = names(&list(&api, &format!("/api/v1/secrets?{query}")));
        assert_eq!(got, want, "{query}");
    }
    // With a limit, pages hold only matching objects.
    let page = list(&api, "/api/v1/secrets?limit=1&fieldSelector=type%3DOpaque");
    assert_eq!(names(&page), ["ci/e"]);
    assert!(page.metadata.continue_.is_some());

    // As the real server: ConfigMaps have no `type` field; bad syntax is 400.
    let r = get(&api, "/api/v1/configmaps?fieldSelector=type%21%3Dx");
    let s = status(&r, 400);
    assert_eq!(
        s.message.as_deref(),
        Some("field label not supported: type")
    );
    status(&get(&api, "/api/v1/secrets?labelSelector=a+b"), 400);
}

#[test]
fn a_watch_streams_changes_after_its_version_with_bookmarks_then_ends() {
    let api = populated();
    api.set_bookmark_interval(Duration::from_millis(300));
    let from = api.resource_version();
    let port = api.port();
    let watcher = std::thread::spawn(move || {
        Client::plain().request(
            port,
            "GET",
            &format!(
                "/api/v1/namespaces/web/secrets?watch=true&resourceVersion={from}\
                 &allowWatchBookmarks=true&timeoutSeconds=2&fieldSelector=type%21%3Dhelm.sh%2Frelease.v1"
            ),
            &[("Authorization", &format!("Bearer {TOKEN}"))],
        )
    });
    assert!(api.wait_for_watches(1, Duration::from_secs(5)));
    api.put(secret("web", "new", "Opaque", &[("k", b"1")]));
    api.put(secret("ci", "elsewhere", "Opaque", &[("k", b"1")]));
    api.put(secret(
        "web",
        "sh.helm.release.v1.x.v1",
        "helm.sh/release.v1",
        &[],
    ));
    api.put(secret("web", "new", "Opaque", &[("k", b"2")]));
    assert!(api.delete_secret("web", "new"));
    let deleted_at = api.resource_version();

    let r = watcher.join().unwrap().expect("a watch that ends cleanly");
    let events = events(&r);
    let kinds: Vec<String> = summary(&events)
        .into_iter()
        .filter(|e| e != "BOOKMARK")
        .collect();
    assert_eq!(kinds, ["ADDED new", "MODIFIED new", "DELETED new"]);
    let versions: Vec<u64> = events
        .iter()
        .filter_map(|e| match e {
            WatchEvent::Added(s) | WatchEvent::Modified(s) | WatchEvent::Deleted(s) => {
                s.metadata.resource_version.as_deref()?.parse().ok()
            }
            _ => None,
        })
        .collect();
    assert!(versions.windows(2).all(|w| w[0] < w[1]), "{versions:?}");
    assert_eq!(versions.last(), Some(&deleted_at));
    let bookmarks: Vec<&str> = events
        .iter()
        .filter_map(|e| match e {
            WatchEvent::Bookmark(b) => Some(b.metadata.resource_version.as_str()),
            _ => None,
        })
        .collect();
    assert!(bookmarks.len() >= 2, "{:?}", summary(&events));
    assert_eq!(bookmarks.last(), Some(&deleted_at.to_string().as_str()));
    assert!(
        r.body
            .contains(r#""type":"BOOKMARK","object":{"kind":"Secret","apiVersion":"v1""#),
        "{}",
        r.body
    );
    let sent = api.sent();
    assert!(
        sent.iter()
            .all(|s| s.secret_type.as_deref() != Some("helm.sh/release.v1"))
    );
}

#[test]
fn a_watch_sees_an_object_leave_its_label_selector_as_a_deletion() {
    let api = populated();
    let from = api.resource_version();
    api.put(secret(
        "web",
        "a",
        "kubernetes.io/tls",
        &[("k", b"relabelled")],
    ));
    let r = get(
        &api,
        &format!(
            "/api/v1/secrets?watch=1&resourceVersion={from}&labelSelector=app%3Dshop&timeoutSeconds=1"
        ),
    );
    assert_eq!(summary(&events(&r)), ["DELETED a"]);
    let r = get(
        &api,
        "/api/v1/secrets?watch=true&resourceVersion=0&labelSelector=app%3Drunner&timeoutSeconds=1",
    );
    assert_eq!(
        summary(&events(&r)),
        ["ADDED d"],
        "version 0: the current objects first"
    );
}

#[test]
fn an_expired_version_is_410_gone_for_a_watch_and_a_continue_token() {
    let api = populated();
    let old = api.resource_version();
    let page = list(&api, "/api/v1/secrets?limit=1");
    api.put(secret("web", "z", "Opaque", &[]));
    api.expire_history();

    let r = get(
        &api,
        &format!("/api/v1/secrets?watch=true&resourceVersion={old}&timeoutSeconds=5"),
    );
    let events = events(&r);
    assert_eq!(summary(&events), ["ERROR 410 Expired"]);
    let WatchEvent::Error(e) = &events[0] else {
        unreachable!()
    };
    assert_eq!(
        e.message,
        format!(
            "too old resource version: {old} ({})",
            api.resource_version()
        )
    );

    let token = page.metadata.continue_.expect("more than one page");
    let r = get(
        &api,
        &format!("/api/v1/secrets?limit=1&continue={}", urlencode(&token)),
    );
    assert_eq!(status(&r, 410).reason.as_deref(), Some("Expired"));

    // From the current version a watch works again.
    let now = api.resource_version();
    let r = get(
        &api,
        &format!("/api/v1/secrets?watch=true&resourceVersion={now}&timeoutSeconds=1"),
    );
    assert!(summary(&self::events(&r)).is_empty());
}

#[test]
fn forbidden_unauthorized_unknown_and_throttled_answers_carry_a_status() {
    let api = populated();
    api.forbid_namespace("ci");
    let s = status(&get(&api, "/api/v1/namespaces/ci/secrets?limit=500"), 403);
    assert_eq!(
        s.message.as_deref(),
        Some(
            r#"secrets is forbidden: User "system:serviceaccount:lapse:lapse" cannot list resource "secrets" in API group "" in the namespace "ci""#
        )
    );
    assert_eq!(s.reason.as_deref(), Some("Forbidden"));
    let s = status(
        &get(&api, "/api/v1/namespaces/ci/configmaps?watch=true"),
        403,
    );
    assert!(
        s.message
            .unwrap()
            .contains(r#"cannot watch resource "configmaps""#)
    );
    assert_eq!(get(&api, "/api/v1/namespaces/web/secrets").status, 200);

    api.forbid_cluster_scope();
    let s = status(&get(&api, "/api/v1/secrets"), 403);
    assert!(
        s.message
            .unwrap()
            .ends_with(r#"in API group "" at the cluster scope"#)
    );

    let s = status(&get(&api, "/apis/apps/v1/deployments"), 404);
    assert_eq!(s.reason.as_deref(), Some("NotFound"));
    status(&get(&api, "/api/v1/namespaces/web/pods"), 404);
    let s = status(&get(&api, "/api/v1/namespaces/web/secrets/missing"), 404);
    assert_eq!(s.message.as_deref(), Some(r#"secrets "missing" not found"#));
    let one: Secret =
        serde_json::from_str(&get(&api, "/api/v1/namespaces/web/secrets/b").body).unwrap();
    assert_eq!(one.type_.as_deref(), Some("Opaque"));

    let r = Client::plain()
        .request(api.port(), "GET", "/api/v1/namespaces/web/secrets", &[])
        .unwrap();
    status(&r, 401);

    api.throttle(1);
    let r = get(&api, "/api/v1/namespaces/web/secrets");
    assert_eq!(r.header("retry-after"), Some("1"));
    status(&r, 429);
    assert_eq!(get(&api, "/api/v1/namespaces/web/secrets").status, 200);

    let cluster: Vec<String> = api
        .cluster_scoped_requests()
        .iter()
        .map(Logged::line)
        .collect();
    assert_eq!(cluster.len(), 2, "{cluster:#?}");
    assert!(cluster[0].starts_with("GET /api/v1/secrets?") && cluster[0].ends_with("-> 403"));
    assert!(cluster[1].starts_with("GET /apis/apps/v1/deployments?"));
}

#[test]
fn dropped_connections_cut_watches_short_and_a_down_server_answers_nothing() {
    let api = populated();
    let port = api.port();
    let watcher = std::thread::spawn(move || {
        Client::plain().request(
            port,
            "GET",
            "/api/v1/secrets?watch=true&resourceVersion=0&timeoutSeconds=30",
            &[("Authorization", &format!("Bearer {TOKEN}"))],
        )
    });
    assert!(api.wait_for_watches(1, Duration::from_secs(5)));
    api.drop_connections();
    let cut = watcher.join().unwrap();
    assert!(cut.is_err(), "a cut stream has no final chunk: {cut:?}");
    let started = std::time::Instant::now();
    while api.open_watches() > 0 {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the watch stayed open"
        );
        std::thread::sleep(Duration::from_millis(10));
    }

    api.set_down(true);
    let refused = Client::plain().request(port, "GET", "/api/v1/secrets", &[]);
    assert!(refused.is_err(), "{refused:?}");
    api.set_down(false);
    assert_eq!(get(&api, "/api/v1/secrets").status, 200);
}

#[test]
fn the_kube_client_lists_through_the_written_kubeconfig() {
    let api = populated();
    let dir = tempfile::tempdir().unwrap();
    let path = api.write_kubeconfig(dir.path());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let names = runtime.block_on(async {
        let kubeconfig = kube::config::Kubeconfig::read_from(&path).unwrap();
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
            .await
            .unwrap();
        let client = kube::Client::try_from(config).unwrap();
        let api: kube::Api<Secret> = kube::Api::all(client);
        let mut names = Vec::new();
        let mut params = kube::api::ListParams::default()
            .limit(2)
            .fields("type!=helm.sh/release.v1");
        loop {
            let page = api.list(&params).await.unwrap();
            names.extend(page.items.iter().map(|s| s.metadata.name.clone().unwrap()));
            match page.metadata.continue_ {
                Some(token) if !token.is_empty() => params = params.continue_token(&token),
                _ => break,
            }
        }
        names
    });
    assert_eq!(names, ["d", "e", "a", "b"]);
    let log = api.requests();
    assert!(log.iter().all(|l| l.status == 200), "{log:#?}");
    assert_eq!(
        log[0].param("fieldSelector"),
        Some("type!=helm.sh/release.v1")
    );
}
