//! kubeconfig files: every cluster CA and user credential, references
//! resolved against the kubeconfig's directory, and the default
//! kubeconfig lookup when no path is given.

use crate::support::*;
use serde_json::json;
use time::macros::datetime;

/// A kubeconfig with these `clusters:` and `users:` list bodies (YAML list
/// items; empty for none).
fn kubeconfig(clusters: &str, users: &str) -> String {
    let list = |items: &str| {
        if items.is_empty() {
            " []\n".to_string()
        } else {
            format!("\n{items}")
        }
    };
    format!(
        "apiVersion: v1\nkind: Config\ncurrent-context: main\n\
         contexts:\n- name: main\n  context: {{cluster: prod, user: deployer}}\n\
         clusters:{}users:{}",
        list(clusters),
        list(users)
    )
}

fn cluster_ca() -> Cert {
    Cert::ca(
        "kubernetes",
        datetime!(2025-01-01 0:00 UTC),
        datetime!(2035-01-01 0:00 UTC),
    )
}

#[test]
fn cluster_ca_data_bundle_and_ca_path_relative_to_the_kubeconfig() {
    let s = Scratch::new();
    let ca = cluster_ca();
    let next_ca = Cert::ca(
        "kubernetes-next",
        datetime!(2026-05-01 0:00 UTC),
        datetime!(2036-05-01 0:00 UTC),
    );
    let staging_ca = Cert::ca(
        "staging-ca",
        datetime!(2024-01-01 0:00 UTC),
        datetime!(2026-06-20 0:00 UTC),
    );
    s.write("kube/pki/staging-ca.crt", &staging_ca.pem);
    let clusters = format!(
        "- name: prod\n  cluster:\n    server: https://prod:6443\n    certificate-authority-data: {}\n\
         - name: staging\n  cluster:\n    server: https://staging:6443\n    certificate-authority: pki/staging-ca.crt\n",
        b64(bundle(&[&ca, &next_ca]))
    );
    s.write("kube/config", kubeconfig(&clusters, ""));

    let report = s.check().arg("kube/config").json();

    report.assert_no_errors().assert_credential_count(3);
    let data = "clusters[prod].certificate-authority-data";
    assert_fields(
        report.credential("kube/config", Some(data), Some(0)),
        json!({
            "kind": "x509", "source": "kubeconfig", "subject": "CN=kubernetes",
            "not_after": "2035-01-01T00:00:00Z", "status": "ok", "fingerprint": ca.fingerprint(),
        }),
    );
    assert_fields(
        report.credential("kube/config", Some(data), Some(1)),
        json!({"subject": "CN=kubernetes-next", "not_after": "2036-05-01T00:00:00Z",
               "fingerprint": next_ca.fingerprint()}),
    );
    assert_fields(
        report.credential(
            "kube/pki/staging-ca.crt",
            Some("clusters[staging].certificate-authority"),
            Some(0),
        ),
        json!({
            "kind": "x509", "source": "kubeconfig", "subject": "CN=staging-ca",
            "not_after": "2026-06-20T00:00:00Z", "expires_in_seconds": 19 * DAY,
            "status": "warning", "fingerprint": staging_ca.fingerprint(),
        }),
    );
}

#[test]
fn client_certificate_data_and_client_certificate_path() {
    let s = Scratch::new();
    let ca = cluster_ca();
    let admin = ca.issue(
        "kubernetes-admin",
        datetime!(2025-06-01 0:00 UTC),
        datetime!(2026-06-05 12:00 UTC),
    );
    let ops = ca.issue(
        "ops",
        datetime!(2026-01-01 0:00 UTC),
        datetime!(2027-01-01 0:00 UTC),
    );
    s.write("kube/certs/ops.crt", &ops.pem);
    let users = format!(
        "- name: admin\n  user:\n    client-certificate-data: {}\n    client-key-data: {}\n\
         - name: ops\n  user:\n    client-certificate: certs/ops.crt\n    client-key: certs/ops.key\n",
        b64(&admin.pem),
        b64(&admin.key_pem)
    );
    s.write("kube/config", kubeconfig("", &users));

    let report = s.check().arg("kube/config").json();

    report.assert_no_errors().assert_credential_count(2);
    assert_fields(
        report.credential(
            "kube/config",
            Some("users[admin].client-certificate-data"),
            Some(0),
        ),
        json!({
            "kind": "x509", "source": "kubeconfig", "subject": "CN=kubernetes-admin",
            "issuer": "CN=kubernetes", "not_after": "2026-06-05T12:00:00Z",
            "expires_in_seconds": 4 * DAY + 12 * HOUR, "status": "critical",
            "fingerprint": admin.fingerprint(),
        }),
    );
    assert_fields(
        report.credential(
            "kube/certs/ops.crt",
            Some("users[ops].client-certificate"),
            Some(0),
        ),
        json!({"source": "kubeconfig", "subject": "CN=ops", "not_after": "2027-01-01T00:00:00Z",
               "fingerprint": ops.fingerprint()}),
    );
}

#[test]
fn certificate_data_wins_over_the_path() {
    let s = Scratch::new();
    let cert = cluster_ca().issue(
        "both",
        datetime!(2026-01-01 0:00 UTC),
        datetime!(2026-10-01 0:00 UTC),
    );
    let users = format!(
        "- name: both\n  user:\n    client-certificate: missing.crt\n    client-certificate-data: {}\n",
        b64(&cert.pem)
    );
    s.write("config", kubeconfig("", &users));

    let report = s.check().arg("config").json();

    report.assert_no_errors().assert_credential_count(1);
    assert_fields(
        report.credential(
            "config",
            Some("users[both].client-certificate-data"),
            Some(0),
        ),
        json!({"not_after": "2026-10-01T00:00:00Z"}),
    );
}

#[test]
fn user_tokens_and_token_file_winning_over_token() {
    let s = Scratch::new();
    let deployer = jwt(
        json!({"sub": "deployer", "exp": 1_780_358_400}),
        "sig-deployer",
    );
    let inline_robot = jwt(
        json!({"sub": "robot-old", "exp": 1_780_272_000}),
        "sig-robot-inline",
    );
    let file_robot = jwt(
        json!({"sub": "robot", "exp": 1_782_864_000}),
        "sig-robot-file",
    );
    s.write("kube/tokens/robot", format!("{file_robot}\n"));
    let users = format!(
        "- name: deployer\n  user:\n    token: {deployer}\n\
         - name: robot\n  user:\n    token: {inline_robot}\n    tokenFile: tokens/robot\n"
    );
    s.write("kube/config", kubeconfig("", &users));

    let report = s.check().arg("kube/config").json();

    report.assert_no_errors().assert_credential_count(2);
    assert_fields(
        report.credential("kube/config", Some("users[deployer].token"), None),
        json!({
            "kind": "jwt", "source": "kubeconfig", "subject": "deployer",
            "not_after": "2026-06-02T00:00:00Z", "expires_in_seconds": DAY,
            "status": "critical", "fingerprint": sha256(&deployer),
        }),
    );
    assert_fields(
        report.credential("kube/tokens/robot", Some("users[robot].tokenFile"), None),
        json!({
            "kind": "jwt", "source": "kubeconfig", "subject": "robot",
            "not_after": "2026-07-01T00:00:00Z", "status": "warning",
            "fingerprint": sha256(&file_robot),
        }),
    );
}

#[test]
fn oidc_id_token_and_opaque_refresh_token() {
    let s = Scratch::new();
    let id_token = jwt(
        json!({"iss": "https://dex.example", "sub": "alice", "exp": 1_780_275_600, "iat": 1_780_272_000}),
        "sig-oidc-id",
    );
    let users = format!(
        "- name: alice\n  user:\n    auth-provider:\n      name: oidc\n      config:\n        \
         client-id: kubernetes\n        idp-issuer-url: https://dex.example\n        \
         id-token: {id_token}\n        refresh-token: ChlvcGFxdWUtcmVmcmVzaC10b2tlbi0xMjM0\n"
    );
    s.write("config", kubeconfig("", &users));

    let report = s.check().arg("config").json();

    report.assert_no_errors().assert_credential_count(2);
    assert_fields(
        report.credential("config", Some("users[alice].auth-provider.id-token"), None),
        json!({
            "kind": "jwt", "source": "kubeconfig", "subject": "alice", "issuer": "https://dex.example",
            "not_before": "2026-06-01T00:00:00Z", "not_after": "2026-06-01T01:00:00Z",
            "expires_in_seconds": HOUR, "status": "critical", "fingerprint": sha256(&id_token),
        }),
    );
    assert_fields(
        report.credential(
            "config",
            Some("users[alice].auth-provider.refresh-token"),
            None,
        ),
        json!({
            "kind": "opaque-token", "not_after": null, "expiry_source": "none",
            "status": "no-expiry", "fingerprint": sha256("ChlvcGFxdWUtcmVmcmVzaC10b2tlbi0xMjM0"),
        }),
    );
}

#[test]
fn legacy_gcp_and_azure_auth_provider_expiry_fields() {
    let s = Scratch::new();
    let gcp_token = "ya29.a0AfH6SMBexampleexampleexampleexample";
    let azure_token = jwt(json!({"aud": "6dae42f8", "sub": "bob"}), "sig-azure");
    let users = format!(
        "- name: gke\n  user:\n    auth-provider:\n      name: gcp\n      config:\n        \
         access-token: {gcp_token}\n        expiry: \"2026-06-01T00:45:00.123456789Z\"\n        cmd-path: gcloud\n\
         - name: aks\n  user:\n    auth-provider:\n      name: azure\n      config:\n        \
         access-token: {azure_token}\n        expires-on: \"1780290000\"\n        apiserver-id: 6dae42f8\n"
    );
    s.write("config", kubeconfig("", &users));

    let report = s.check().arg("config").json();

    report.assert_no_errors().assert_credential_count(2);
    assert_fields(
        report.credential(
            "config",
            Some("users[gke].auth-provider.access-token"),
            None,
        ),
        json!({
            "kind": "opaque-token", "source": "kubeconfig",
            "not_after": "2026-06-01T00:45:00Z", "expires_in_seconds": 45 * MINUTE,
            "expiry_source": "embedded", "status": "critical", "fingerprint": sha256(gcp_token),
        }),
    );
    assert_fields(
        report.credential(
            "config",
            Some("users[aks].auth-provider.access-token"),
            None,
        ),
        json!({
            "kind": "jwt", "subject": "bob", "not_after": "2026-06-01T05:00:00Z",
            "expires_in_seconds": 5 * HOUR, "expiry_source": "embedded",
            "fingerprint": sha256(&azure_token),
        }),
    );
}

#[test]
fn exec_users_are_listed_with_unknown_expiry() {
    let s = Scratch::new();
    let users = "- name: eks-admin\n  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1beta1\n      \
                 command: aws\n      args: [eks, get-token, --cluster-name, prod]\n";
    s.write("config", kubeconfig("", users));

    let report = s.check().arg("config").json();

    report
        .assert_no_errors()
        .assert_credential_count(1)
        .assert_code(0);
    assert_fields(
        report.credential("config", Some("users[eks-admin].exec"), None),
        json!({
            "kind": "opaque-token", "source": "kubeconfig", "not_before": null, "not_after": null,
            "expires_in_seconds": null, "expiry_source": "none", "status": "no-expiry",
            "fingerprint": sha256("exec:aws eks get-token --cluster-name prod"), "used_by": [],
        }),
    );
}

#[test]
fn gke_exec_user_reads_the_plugin_cache_beside_the_kubeconfig() {
    let s = Scratch::new();
    let users = "- name: gke\n  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1beta1\n      \
                 command: gke-gcloud-auth-plugin\n      provideClusterInfo: true\n";
    s.write("kube/config", kubeconfig("", users));
    s.write(
        "kube/gke_gcloud_auth_plugin_cache",
        r#"{"current_context":"gke_proj_zone_prod","access_token":"ya29.c.cachedtokencachedtoken","token_expiry":"2026-06-01T00:59:59.999999999Z"}"#,
    );

    let report = s.check().arg("kube/config").json();

    // The user is listed once: by the token its plugin cached.
    report.assert_no_errors().assert_credential_count(1);
    assert_fields(
        report.credential(
            "kube/gke_gcloud_auth_plugin_cache",
            Some("access_token"),
            None,
        ),
        json!({
            "kind": "opaque-token", "not_after": "2026-06-01T00:59:59Z",
            "expires_in_seconds": HOUR - 1, "fingerprint": sha256("ya29.c.cachedtokencachedtoken"),
            "used_by": [{"path": "kube/config", "entry": "users[gke].exec"}],
        }),
    );
}

#[test]
fn no_path_reads_every_file_in_kubeconfig_env() {
    let s = Scratch::new();
    let a = cluster_ca();
    let b = Cert::ca(
        "other-ca",
        datetime!(2025-01-01 0:00 UTC),
        datetime!(2026-07-01 0:00 UTC),
    );
    let cluster = |name: &str, ca: &Cert| {
        format!(
            "- name: {name}\n  cluster:\n    certificate-authority-data: {}\n",
            b64(&ca.pem)
        )
    };
    s.write("one/config", kubeconfig(&cluster("one", &a), ""));
    s.write("two/config", kubeconfig(&cluster("two", &b), ""));
    // Ignored: KUBECONFIG is set.
    s.write("home/.kube/config", kubeconfig(&cluster("home", &a), ""));
    let list = format!("{}:{}", s.abs("one/config"), s.abs("two/config"));

    let report = s.check().env("KUBECONFIG", list).json();

    report.assert_no_errors().assert_credential_count(2);
    assert_fields(
        report.credential(
            &s.abs("one/config"),
            Some("clusters[one].certificate-authority-data"),
            Some(0),
        ),
        json!({"not_after": "2035-01-01T00:00:00Z", "source": "kubeconfig"}),
    );
    assert_fields(
        report.credential(
            &s.abs("two/config"),
            Some("clusters[two].certificate-authority-data"),
            Some(0),
        ),
        json!({"not_after": "2026-07-01T00:00:00Z", "source": "kubeconfig"}),
    );
}

#[test]
fn no_path_and_no_kubeconfig_env_reads_home_kube_config() {
    let s = Scratch::new();
    let token = jwt(json!({"sub": "me", "exp": 1_780_444_800}), "sig-home");
    s.write(
        "home/.kube/config",
        kubeconfig("", &format!("- name: me\n  user:\n    token: {token}\n")),
    );

    let report = s.check().json();

    report.assert_no_errors().assert_credential_count(1);
    assert_fields(
        report.credential(&s.abs("home/.kube/config"), Some("users[me].token"), None),
        json!({"kind": "jwt", "not_after": "2026-06-03T00:00:00Z", "status": "critical"}),
    );
}

#[test]
fn no_path_and_no_kubeconfig_at_all_is_an_error() {
    let s = Scratch::new();

    let report = s.check().json();

    report
        .assert_code(3)
        .assert_credential_count(0)
        .assert_error_count(1);
    let reason = report.reason(&s.abs("home/.kube/config"), None);
    assert_contains(&reason, "no kubeconfig found");
}

#[test]
fn home_relative_references_and_the_oidc_issuer_ca() {
    let s = Scratch::new();
    let ca = cluster_ca();
    let client = ca.issue(
        "home-client",
        datetime!(2026-01-01 0:00 UTC),
        datetime!(2026-11-01 0:00 UTC),
    );
    let idp = Cert::ca(
        "dex-ca",
        datetime!(2026-01-01 0:00 UTC),
        datetime!(2026-06-30 0:00 UTC),
    );
    s.write("home/certs/client.crt", &client.pem);
    let users = format!(
        "- name: u\n  user:\n    client-certificate: ~/certs/client.crt\n\
         - name: o\n  user:\n    auth-provider:\n      name: oidc\n      config:\n        \
         idp-issuer-url: https://dex.example\n        idp-certificate-authority-data: {}\n",
        b64(&idp.pem)
    );
    s.write("kube/config", kubeconfig("", &users));

    let report = s.check().arg("kube/config").json();

    report.assert_no_errors().assert_credential_count(2);
    assert_fields(
        report.credential(
            &s.abs("home/certs/client.crt"),
            Some("users[u].client-certificate"),
            Some(0),
        ),
        json!({"subject": "CN=home-client", "not_after": "2026-11-01T00:00:00Z"}),
    );
    assert_fields(
        report.credential(
            "kube/config",
            Some("users[o].auth-provider.idp-certificate-authority-data"),
            Some(0),
        ),
        json!({"subject": "CN=dex-ca", "not_after": "2026-06-30T00:00:00Z", "status": "warning"}),
    );
}

#[test]
fn kubeconfig_as_json() {
    let s = Scratch::new();
    let ca = cluster_ca();
    let token = jwt(
        json!({"sub": "json-user", "exp": 1_780_358_400}),
        "sig-json-kubeconfig",
    );
    let doc = json!({
        "apiVersion": "v1", "kind": "Config", "current-context": "",
        "clusters": [{"name": "j", "cluster": {"server": "https://j:6443", "certificate-authority-data": b64(&ca.pem)}}],
        "users": [{"name": "ju", "user": {"token": token}}],
        "contexts": [],
    });
    s.write("config.json", serde_json::to_string_pretty(&doc).unwrap());

    let report = s.check().arg("config.json").json();

    report.assert_no_errors().assert_credential_count(2);
    assert_fields(
        report.credential(
            "config.json",
            Some("clusters[j].certificate-authority-data"),
            Some(0),
        ),
        json!({"source": "kubeconfig", "fingerprint": ca.fingerprint()}),
    );
    assert_fields(
        report.credential("config.json", Some("users[ju].token"), None),
        json!({"source": "kubeconfig", "kind": "jwt", "not_after": "2026-06-02T00:00:00Z"}),
    );
}

#[test]
fn plugin_caches_are_reported_once_when_their_directory_is_scanned_too() {
    let s = Scratch::new();
    let exec = |user: &str, command: &str| {
        format!(
            "- name: {user}\n  user:\n    exec:\n      command: {command}\n      args: [get-token]\n"
        )
    };
    // Two kubeconfigs in ~/.kube whose users share the same caches.
    s.write(
        "home/.kube/config",
        kubeconfig(
            "",
            &(exec("gke", "gke-gcloud-auth-plugin") + &exec("oidc", "kubelogin")),
        ),
    );
    s.write(
        "home/.kube/staging",
        kubeconfig("", &exec("staging-oidc", "kubelogin")),
    );
    s.write(
        "home/.kube/gke_gcloud_auth_plugin_cache",
        json!({"access_token": "ya29.cache-token-once", "token_expiry": "2026-06-01T01:00:00Z"})
            .to_string(),
    );
    let id_token = jwt(json!({"exp": 1_780_358_400}), "sig-cache-once");
    s.write(
        &format!("home/.kube/cache/oidc-login/{}", "ab".repeat(32)),
        json!({"id_token": id_token}).to_string(),
    );

    let report = s.check().arg("home/.kube").json();

    report.assert_no_errors();
    let mut places: Vec<String> = report
        .places()
        .into_iter()
        .map(|(path, entry, _)| format!("{path} {}", entry.unwrap_or_default()))
        .collect();
    places.sort();
    // Each exec user is listed by the token its cache holds, not again
    // with an unknown expiry.
    let oidc_cache = format!("home/.kube/cache/oidc-login/{}", "ab".repeat(32));
    assert_eq!(
        places,
        [
            format!("{oidc_cache} id_token"),
            "home/.kube/gke_gcloud_auth_plugin_cache access_token".to_string(),
        ]
    );
    assert_fields(
        report.credential(&oidc_cache, Some("id_token"), None),
        json!({"not_after": "2026-06-02T00:00:00Z", "used_by": [
            {"path": "home/.kube/config", "entry": "users[oidc].exec"},
            {"path": "home/.kube/staging", "entry": "users[staging-oidc].exec"},
        ]}),
    );
    assert_fields(
        report.credential(
            "home/.kube/gke_gcloud_auth_plugin_cache",
            Some("access_token"),
            None,
        ),
        json!({"used_by": [{"path": "home/.kube/config", "entry": "users[gke].exec"}]}),
    );
}

/// Every error entry as `entry: reason`, in the report's order.
fn error_lines(report: &Report) -> Vec<String> {
    report
        .errors()
        .iter()
        .map(|e| {
            format!(
                "{} {}: {}",
                e["path"].as_str().unwrap_or_default(),
                e["entry"].as_str().unwrap_or_default(),
                e["reason"].as_str().unwrap_or_default()
            )
        })
        .collect()
}

#[test]
fn wrong_typed_fields_are_error_entries_and_the_rest_is_read() {
    let s = Scratch::new();
    let ca = cluster_ca();
    let other_ca = Cert::ca(
        "numbered-ca",
        datetime!(2025-01-01 0:00 UTC),
        datetime!(2030-01-01 0:00 UTC),
    );
    let admin = ca.issue(
        "kubernetes-admin",
        datetime!(2025-06-01 0:00 UTC),
        datetime!(2027-06-01 0:00 UTC),
    );
    let clusters = format!(
        "- name: prod\n  cluster:\n    server: https://prod:6443\n    certificate-authority-data: {}\n\
         - name: bad-ca\n  cluster:\n    certificate-authority: {{path: /etc/kubernetes/pki/ca.crt}}\n\
         - name: 7\n  cluster:\n    certificate-authority-data: {}\n",
        b64(&ca.pem),
        b64(&other_ca.pem)
    );
    let users = format!(
        "- name: admin\n  user:\n    client-certificate-data: 12345\n    client-key-data: true\n\
         - name: listed\n  user:\n    client-certificate-data: [a, b]\n    token: [canary-token-in-a-list]\n\
         - name: stringly\n  user: canary-user-as-a-string\n\
         - name: exec-bad\n  user:\n    exec: {{command: aws, args: [eks, 5, get-token]}}\n\
         - name: ok\n  user:\n    client-certificate-data: {}\n",
        b64(&admin.pem)
    );
    s.write("kube/config", kubeconfig(&clusters, &users));

    let report = s.check().arg("kube/config").json();

    assert_eq!(
        error_lines(&report),
        [
            "kube/config clusters[2].name: expected a string, found a number",
            "kube/config clusters[bad-ca].certificate-authority: expected a string, found a map",
            "kube/config users[admin].client-certificate-data: expected a string, found a number",
            "kube/config users[admin].client-key-data: expected a string, found a boolean",
            "kube/config users[exec-bad].exec.args[1]: expected a string, found a number",
            "kube/config users[listed].client-certificate-data: expected a string, found a list",
            "kube/config users[listed].token: expected a string, found a list",
            "kube/config users[stringly].user: expected a map, found a string",
        ]
        .map(String::from)
    );
    report.assert_credential_count(4).assert_code(3);
    assert_fields(
        report.credential(
            "kube/config",
            Some("clusters[prod].certificate-authority-data"),
            Some(0),
        ),
        json!({"subject": "CN=kubernetes", "not_after": "2035-01-01T00:00:00Z", "status": "ok"}),
    );
    assert_fields(
        report.credential(
            "kube/config",
            Some("clusters[2].certificate-authority-data"),
            Some(0),
        ),
        json!({"subject": "CN=numbered-ca", "not_after": "2030-01-01T00:00:00Z"}),
    );
    assert_fields(
        report.credential(
            "kube/config",
            Some("users[ok].client-certificate-data"),
            Some(0),
        ),
        json!({"subject": "CN=kubernetes-admin", "not_after": "2027-06-01T00:00:00Z"}),
    );
    assert_fields(
        report.credential("kube/config", Some("users[exec-bad].exec"), None),
        json!({"status": "no-expiry", "fingerprint": sha256("exec:aws eks get-token")}),
    );
    for secret in ["canary-token-in-a-list", "canary-user-as-a-string"] {
        assert!(!report.stdout.contains(secret) && !report.stderr.contains(secret));
    }
}

#[test]
fn a_map_where_a_list_belongs_is_an_error_entry() {
    let s = Scratch::new();
    let ca = cluster_ca();
    s.write(
        "kube/config",
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: main\n\
             clusters: {{prod: {{server: 'https://prod:6443'}}}}\n\
             users:\n- just-a-string\n- name: ci\n  user:\n    client-certificate-data: {}\n",
            b64(&ca.pem)
        ),
    );

    let report = s.check().arg("kube/config").json();

    assert_eq!(
        error_lines(&report),
        [
            "kube/config clusters: expected a list, found a map",
            "kube/config users[0]: expected a map, found a string",
        ]
        .map(String::from)
    );
    report.assert_credential_count(1).assert_code(3);
    assert_fields(
        report.credential(
            "kube/config",
            Some("users[ci].client-certificate-data"),
            Some(0),
        ),
        json!({"subject": "CN=kubernetes", "not_after": "2035-01-01T00:00:00Z"}),
    );
}

/// kubeadm's layout: two kubeconfigs whose users name one client
/// certificate by absolute path, one of them twice.
fn shared_client_certificate(s: &Scratch) -> Cert {
    let admin = cluster_ca().issue(
        "kubernetes-admin",
        datetime!(2025-06-01 0:00 UTC),
        datetime!(2026-06-05 12:00 UTC),
    );
    s.write("pki/admin.crt", &admin.pem);
    let user = |name: &str| {
        format!(
            "- name: {name}\n  user:\n    client-certificate: {}\n    client-key: {}\n",
            s.abs("pki/admin.crt"),
            s.abs("pki/admin.key")
        )
    };
    s.write(
        "kube/admin.conf",
        kubeconfig("", &(user("admin") + &user("break-glass"))),
    );
    s.write("kube/super-admin.conf", kubeconfig("", &user("super")));
    admin
}

#[test]
fn a_certificate_two_kubeconfigs_point_at_is_one_credential_with_every_user() {
    let s = Scratch::new();
    let admin = shared_client_certificate(&s);

    // The certificate's own directory is walked too.
    let report = s.check().args(["kube", "pki"]).json();

    report.assert_no_errors().assert_credential_count(1);
    assert_fields(
        report.credential(
            &s.abs("pki/admin.crt"),
            Some("users[admin].client-certificate"),
            Some(0),
        ),
        json!({
            "kind": "x509", "source": "kubeconfig", "subject": "CN=kubernetes-admin",
            "not_after": "2026-06-05T12:00:00Z", "status": "critical",
            "fingerprint": admin.fingerprint(),
            "used_by": [
                {"path": "kube/admin.conf", "entry": "users[admin].client-certificate"},
                {"path": "kube/admin.conf", "entry": "users[break-glass].client-certificate"},
                {"path": "kube/super-admin.conf", "entry": "users[super].client-certificate"},
            ],
        }),
    );

    let table = s.check().args(["kube", "pki"]).run();
    assert_contains(
        &table.stdout,
        "  └ used by kube/admin.conf [users[admin].client-certificate], \
         kube/admin.conf [users[break-glass].client-certificate], \
         kube/super-admin.conf [users[super].client-certificate]\n",
    );
    assert_contains(
        &table.stdout,
        "1 credential: 0 expired, 1 critical, 0 warning",
    );
}

#[test]
fn a_certificate_one_user_points_at_names_its_kubeconfig() {
    let s = Scratch::new();
    s.write("pki/ops.crt", &cluster_ca().pem);
    s.write(
        "kube/config",
        kubeconfig(
            "",
            "- name: ops\n  user:\n    client-certificate: ../pki/ops.crt\n",
        ),
    );

    let report = s.check().arg("kube/config").json();

    report.assert_no_errors().assert_credential_count(1);
    assert_fields(
        report.credential(
            "pki/ops.crt",
            Some("users[ops].client-certificate"),
            Some(0),
        ),
        json!({"used_by": [{"path": "kube/config", "entry": "users[ops].client-certificate"}]}),
    );
    // One use whose entry the row already shows: no extra line.
    let table = s.check().arg("kube/config").run();
    assert!(!table.stdout.contains("used by"), "{}", table.stdout);
}
