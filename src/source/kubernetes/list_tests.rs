//! [`list_once`] against the test API server (tests/support/apiserver.rs,
//! in-process): one LIST per scope, page by page, and never a WATCH.

#[path = "../../../tests/support/apiserver.rs"]
mod apiserver;

use super::{KubernetesConfig, list_once};
use crate::credential::ErrorReason;
use crate::inventory::SourceReport;
use apiserver::{ApiServer, Logged, config_map, secret};

fn config(api: &ApiServer, dir: &tempfile::TempDir) -> KubernetesConfig {
    KubernetesConfig {
        kubeconfig: Some(api.write_kubeconfig(dir.path())),
        ..KubernetesConfig::default()
    }
}

fn ca() -> String {
    let key = rcgen::KeyPair::generate().unwrap();
    rcgen::CertificateParams::new(vec!["ca.example".to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap()
        .pem()
}

fn paths(r: &SourceReport) -> Vec<String> {
    r.parts
        .iter()
        .map(|p| p.path.display().to_string())
        .collect()
}

#[tokio::test]
async fn every_page_of_every_scope_then_no_watch() {
    let api = ApiServer::start();
    let dir = tempfile::tempdir().unwrap();
    let ca = ca();
    for i in 0..1_100 {
        api.put(secret(
            "web",
            &format!("cert-{i:04}"),
            "Opaque",
            &[("ca.pem", ca.as_bytes())],
        ));
    }
    api.put(secret("web", "helm", "helm.sh/release.v1", &[]));
    api.put(config_map("web", "kube-root-ca.crt", &[("ca.crt", &ca)]));
    let r = list_once(&config(&api, &dir)).await;
    assert!(r.up && r.errors.is_empty(), "{:?}", r.errors);
    assert!(r.last_scan.is_some());
    assert_eq!(r.parts.len(), 1_101);
    assert!(r.parts.iter().all(|p| p.credentials.len() == 1));
    let requests = api.requests();
    assert!(!requests.iter().any(Logged::is_watch));
    let secrets: Vec<&Logged> = requests
        .iter()
        .filter(|l| l.path == "/api/v1/secrets")
        .collect();
    assert_eq!(secrets.len(), 22, "pages of 50");
    assert!(secrets.iter().all(|l| l.param("limit") == Some("50")));
    assert!(secrets[1..].iter().all(|l| l.param("continue").is_some()));
    assert_eq!(
        secrets[0].param("fieldSelector"),
        Some("type!=helm.sh/release.v1")
    );
    assert_eq!(
        requests
            .iter()
            .filter(|l| l.path == "/api/v1/configmaps")
            .count(),
        1
    );
}

#[tokio::test]
async fn a_forbidden_namespace_is_an_error_entry_and_the_others_still_count() {
    let api = ApiServer::start();
    let dir = tempfile::tempdir().unwrap();
    let ca = ca();
    api.put(secret("web", "a", "Opaque", &[("ca.pem", ca.as_bytes())]));
    api.put(secret("ci", "b", "Opaque", &[("ca.pem", ca.as_bytes())]));
    api.forbid_namespace("ci");
    let config = KubernetesConfig {
        namespaces: vec!["web".into(), "ci".into()],
        configmaps: false,
        ..config(&api, &dir)
    };
    let r = list_once(&config).await;
    assert!(!r.up);
    assert_eq!(paths(&r), ["/api/v1/namespaces/web/secrets/a"]);
    assert_eq!(r.errors.len(), 1);
    assert_eq!(r.errors[0].path, "/api/v1/namespaces/ci/secrets");
    assert_eq!(r.errors[0].reason, ErrorReason::Forbidden);
    assert_eq!(
        r.errors[0].message,
        "forbidden: cannot list secrets in namespace ci; grant get, list and watch on secrets"
    );
    assert!(api.cluster_scoped_requests().is_empty());
}

#[tokio::test]
async fn a_password_secret_listed_after_its_keystore_opens_it() {
    use super::derive::fixtures::pkcs12;
    let api = ApiServer::start();
    let dir = tempfile::tempdir().unwrap();
    // "app" lists before "vault": the keystore comes first, still locked.
    api.put(secret(
        "app",
        "store",
        "Opaque",
        &[("keystore.p12", &pkcs12("kept-in-vault"))],
    ));
    api.put(secret(
        "vault",
        "pass",
        "Opaque",
        &[("password", b"kept-in-vault")],
    ));
    let config = KubernetesConfig {
        configmaps: false,
        password_secrets: vec![("vault".into(), "pass".into(), "password".into())],
        ..config(&api, &dir)
    };
    let r = list_once(&config).await;
    let store = r.parts.iter().find(|p| p.path.ends_with("store")).unwrap();
    assert!(store.errors.is_empty(), "{:?}", store.errors);
    assert!(!store.credentials.is_empty());
    assert!(
        api.requests()
            .iter()
            .any(|l| l.method == "GET" && l.path == "/api/v1/namespaces/app/secrets/store")
    );
}

#[tokio::test]
async fn throttling_is_waited_out_and_a_down_server_is_unreachable() {
    let api = ApiServer::start();
    let dir = tempfile::tempdir().unwrap();
    api.put(secret("web", "a", "Opaque", &[]));
    let config = KubernetesConfig {
        configmaps: false,
        ..config(&api, &dir)
    };
    api.throttle(1);
    let r = list_once(&config).await;
    assert!(r.up && r.parts.len() == 1, "{:?}", r.errors);
    api.set_down(true);
    let r = list_once(&config).await;
    assert!(!r.up && r.parts.is_empty());
    assert_eq!(r.errors[0].reason, ErrorReason::Unreachable);
    assert!(
        r.errors[0]
            .message
            .starts_with("list secrets cluster-wide: "),
        "{}",
        r.errors[0].message
    );
}
