//! Token files and caches that keep an expiry beside the token:
//! AKS-on-Azure-Stack-HCI login and access files, OpenStack Keystone
//! output, the gke-gcloud-auth-plugin cache, kubelogin caches and saved
//! ExecCredential output.

use crate::support::*;
use serde_json::json;
use time::macros::datetime;

fn cloud_agent_ca() -> Cert {
    Cert::ca(
        "MocCloudAgent",
        datetime!(2026-03-01 0:00 UTC),
        datetime!(2027-03-01 0:00 UTC),
    )
}

/// A MOC login file; its token is a JWT valid 90 days (to 2026-08-30).
fn moc_login(ca: &Cert, token: &str) -> String {
    format!(
        "name: MocCloudAgentLogin\ntoken: {token}\ncertificate: {}\nclienttype: ExternalClient\n\
         cloudfqdn: ca-7d2f.contoso.local\ncloudport: 55000\ncloudauthport: 65000\nlocation: MocLocation\n",
        b64(&ca.pem)
    )
}

fn moc_token() -> String {
    jwt(
        json!({"name": "MocCloudAgentLogin", "exp": 1_788_048_000, "iat": 1_780_272_000}),
        "sig-moc-login",
    )
}

fn assert_moc_login(report: &Report, path: &str, ca: &Cert, token: &str) {
    report.assert_no_errors().assert_credential_count(2);
    assert_fields(
        report.credential(path, Some("token"), None),
        json!({
            "kind": "jwt", "source": "file", "not_before": "2026-06-01T00:00:00Z",
            "not_after": "2026-08-30T00:00:00Z", "expires_in_seconds": 90 * DAY,
            "expiry_source": "embedded", "status": "ok", "fingerprint": sha256(token),
        }),
    );
    assert_fields(
        report.credential(path, Some("certificate"), Some(0)),
        json!({"kind": "x509", "subject": "CN=MocCloudAgent", "not_after": "2027-03-01T00:00:00Z",
               "fingerprint": ca.fingerprint()}),
    );
}

#[test]
fn aks_hci_login_yaml() {
    let s = Scratch::new();
    let (ca, token) = (cloud_agent_ca(), moc_token());
    s.write("wssd/cloudlogin.yaml", moc_login(&ca, &token));

    let report = s.check().arg("wssd/cloudlogin.yaml").json();

    assert_moc_login(&report, "wssd/cloudlogin.yaml", &ca, &token);
}

#[test]
fn aks_hci_login_yaml_base64_encoded_as_a_whole() {
    let s = Scratch::new();
    let (ca, token) = (cloud_agent_ca(), moc_token());
    s.write("wssd/nodelogin.txt", b64(moc_login(&ca, &token)));

    let report = s.check().arg("wssd/nodelogin.txt").json();

    assert_moc_login(&report, "wssd/nodelogin.txt", &ca, &token);
}

#[test]
fn aks_hci_cloudconfig_access_file() {
    let s = Scratch::new();
    let ca = cloud_agent_ca();
    let client = ca.issue(
        "wssdadmin",
        datetime!(2026-04-17 0:00 UTC),
        datetime!(2026-07-16 0:00 UTC),
    );
    let doc = json!({
        "CloudCertificate": b64(&ca.pem),
        "ClientCertificate": b64(&client.pem),
        "ClientKey": b64(&client.key_pem),
        "IdentityName": "wssdadmin",
    });
    s.write(".wssd/kvactl/cloudconfig", doc.to_string());

    let report = s.check().arg(".wssd/kvactl/cloudconfig").json();

    report.assert_no_errors().assert_credential_count(2);
    assert_fields(
        report.credential(
            ".wssd/kvactl/cloudconfig",
            Some("ClientCertificate"),
            Some(0),
        ),
        json!({
            "kind": "x509", "source": "file", "subject": "CN=wssdadmin", "issuer": "CN=MocCloudAgent",
            "not_after": "2026-07-16T00:00:00Z", "expires_in_seconds": 45 * DAY, "status": "ok",
            "fingerprint": client.fingerprint(),
        }),
    );
    assert_fields(
        report.credential(
            ".wssd/kvactl/cloudconfig",
            Some("CloudCertificate"),
            Some(0),
        ),
        json!({"subject": "CN=MocCloudAgent", "not_after": "2027-03-01T00:00:00Z"}),
    );
}

/// A Keystone Fernet token created at `created` (Unix seconds).
fn fernet(created: i64) -> String {
    let mut raw = vec![0x80u8];
    raw.extend_from_slice(&created.to_be_bytes());
    raw.extend((0u8..72).map(|i| i.wrapping_mul(37)));
    b64url(raw)
}

#[test]
fn openstack_token_issue_output() {
    let s = Scratch::new();
    let id = fernet(1_780_200_054); // 2026-05-31T04:00:54Z
    let doc = json!({
        "expires": "2026-06-01T04:00:54+0000",
        "id": id,
        "project_id": "2e6f8b5b1f5a4c8b9e3d2a1f0c9b8a7d",
        "user_id": "9a1b2c3d4e5f60718293a4b5c6d7e8f9",
    });
    s.write(
        "openstack/token.json",
        serde_json::to_string_pretty(&doc).unwrap(),
    );

    let report = s.check().arg("openstack/token.json").json();

    report.assert_no_errors().assert_credential_count(1);
    assert_fields(
        report.credential("openstack/token.json", Some("id"), None),
        json!({
            "kind": "opaque-token", "source": "file", "subject": "9a1b2c3d4e5f60718293a4b5c6d7e8f9",
            "not_before": "2026-05-31T04:00:54Z", "not_after": "2026-06-01T04:00:54Z",
            "expires_in_seconds": 4 * HOUR + 54, "expiry_source": "embedded", "status": "critical",
            "fingerprint": sha256(&id),
        }),
    );
}

#[test]
fn keystone_auth_tokens_response_body() {
    let s = Scratch::new();
    let doc = json!({"token": {
        "methods": ["password"],
        "user": {"domain": {"id": "default", "name": "Default"}, "id": "ee4dfb6e", "name": "admin"},
        "audit_ids": ["VcxU2JYqT8OzfUVvrjEITQ"],
        "expires_at": "2026-06-03T04:00:54.123456Z",
        "issued_at": "2026-06-01T04:00:54.654321Z",
        "project": {"domain": {"id": "default"}, "id": "a6944d76", "name": "demo"},
        "catalog": [],
    }});
    s.write("auth-tokens.json", doc.to_string());

    let report = s.check().arg("auth-tokens.json").json();

    report.assert_no_errors().assert_credential_count(1);
    assert_fields(
        report.credential("auth-tokens.json", Some("token"), None),
        json!({
            "kind": "opaque-token", "subject": "admin", "issuer": null,
            "not_before": "2026-06-01T04:00:54Z", "not_after": "2026-06-03T04:00:54Z",
            "expires_in_seconds": 2 * DAY + 4 * HOUR + 54,
            // Issued four hours after the pinned now.
            "status": "not-yet-valid",
            "fingerprint": sha256("VcxU2JYqT8OzfUVvrjEITQ"),
        }),
    );
}

#[test]
fn application_credential_without_zone_is_utc_and_null_never_expires() {
    let s = Scratch::new();
    let app = |id: &str, name: &str, expires_at: serde_json::Value| {
        json!({"application_credential": {
            "id": id, "name": name, "expires_at": expires_at, "unrestricted": false,
            "project_id": "a6944d76", "roles": [{"name": "member"}],
        }})
    };
    s.write(
        "app-ci.json",
        app(
            "aa7fd1b2",
            "ci-deployer",
            json!("2026-09-01T00:00:00.000000"),
        )
        .to_string(),
    );
    s.write(
        "app-forever.json",
        app("bb8ae2c3", "backup", json!(null)).to_string(),
    );

    let report = s.check().args(["app-ci.json", "app-forever.json"]).json();

    report.assert_no_errors().assert_credential_count(2);
    assert_fields(
        report.credential("app-ci.json", Some("application_credential"), None),
        json!({
            "kind": "opaque-token", "subject": "ci-deployer", "not_after": "2026-09-01T00:00:00Z",
            "expires_in_seconds": 92 * DAY, "status": "ok", "fingerprint": sha256("aa7fd1b2"),
        }),
    );
    assert_fields(
        report.credential("app-forever.json", Some("application_credential"), None),
        json!({"subject": "backup", "not_after": null, "expiry_source": "none", "status": "no-expiry"}),
    );
}

#[test]
fn gke_gcloud_auth_plugin_cache() {
    let s = Scratch::new();
    let doc = json!({
        "current_context": "gke_proj_europe-west1_prod",
        "access_token": "ya29.c.b0AXv0zTOexampleexample",
        "token_expiry": "2026-06-01T00:20:00.987654321Z",
    });
    s.write("gke_gcloud_auth_plugin_cache", doc.to_string());

    let report = s.check().arg("gke_gcloud_auth_plugin_cache").json();

    report.assert_no_errors().assert_credential_count(1);
    assert_fields(
        report.credential("gke_gcloud_auth_plugin_cache", Some("access_token"), None),
        json!({
            "kind": "opaque-token", "not_after": "2026-06-01T00:20:00Z", "expires_in_seconds": 20 * MINUTE,
            "expiry_source": "embedded", "status": "critical",
            "fingerprint": sha256("ya29.c.b0AXv0zTOexampleexample"),
        }),
    );
}

/// An int128/kubelogin cache entry: `{id_token, refresh_token}`.
fn oidc_login_cache(id_token: &str) -> String {
    json!({"id_token": id_token, "refresh_token": "CiQ2OWVmZjM2Ny1vcGFxdWUtcmVmcmVzaA"}).to_string()
}

const CACHE_KEY: &str = "0d7f4c9e2a1b3c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5";

#[test]
fn int128_kubelogin_cache() {
    let s = Scratch::new();
    let id_token = jwt(
        json!({"iss": "https://dex.example", "sub": "carol", "exp": 1_780_277_400}),
        "sig-kubelogin",
    );
    let path = format!("cache/oidc-login/{CACHE_KEY}");
    s.write(&path, oidc_login_cache(&id_token));

    let report = s.check().arg(&path).json();

    report.assert_no_errors().assert_credential_count(2);
    assert_fields(
        report.credential(&path, Some("id_token"), None),
        json!({
            "kind": "jwt", "subject": "carol", "not_after": "2026-06-01T01:30:00Z",
            "expires_in_seconds": 90 * MINUTE, "status": "critical", "fingerprint": sha256(&id_token),
        }),
    );
    assert_fields(
        report.credential(&path, Some("refresh_token"), None),
        json!({"kind": "opaque-token", "not_after": null, "status": "no-expiry"}),
    );
}

#[test]
fn kubelogin_exec_user_reads_its_cache_directory() {
    let s = Scratch::new();
    let id_token = jwt(
        json!({"sub": "carol", "exp": 1_780_277_400}),
        "sig-kubelogin-exec",
    );
    s.write(
        "kube/config",
        "apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers:\n- name: oidc\n  user:\n    exec:\n      \
         apiVersion: client.authentication.k8s.io/v1beta1\n      command: kubectl\n      \
         args: [oidc-login, get-token, --oidc-issuer-url=https://dex.example, --oidc-client-id=kubernetes]\n",
    );
    s.write(
        &format!("kube/cache/oidc-login/{CACHE_KEY}"),
        oidc_login_cache(&id_token),
    );

    let report = s.check().arg("kube/config").json();

    // The exec user is reported by the tokens its cache holds, not again
    // with an unknown expiry.
    report.assert_no_errors().assert_credential_count(2);
    assert_fields(
        report.credential(
            &format!("kube/cache/oidc-login/{CACHE_KEY}"),
            Some("id_token"),
            None,
        ),
        json!({"kind": "jwt", "not_after": "2026-06-01T01:30:00Z", "fingerprint": sha256(&id_token),
               "used_by": [{"path": "kube/config", "entry": "users[oidc].exec"}]}),
    );
}

#[test]
fn azure_kubelogin_cache() {
    let s = Scratch::new();
    let doc = json!({
        "access_token": "opaque-azure-access-token-0001",
        "refresh_token": "opaque-azure-refresh-token-0001",
        "expires_in": "3599",
        "expires_on": "1780279200",
        "resource": "6dae42f8-4368-4678-94ff-3960e28e3630",
        "token_type": "Bearer",
    });
    s.write(
        "cache/kubelogin/AzurePublicCloud-6dae42f8.json",
        doc.to_string(),
    );

    let report = s
        .check()
        .arg("cache/kubelogin/AzurePublicCloud-6dae42f8.json")
        .json();

    report.assert_no_errors().assert_credential_count(1);
    assert_fields(
        report.credential(
            "cache/kubelogin/AzurePublicCloud-6dae42f8.json",
            Some("access_token"),
            None,
        ),
        json!({
            "kind": "opaque-token", "not_after": "2026-06-01T02:00:00Z", "expires_in_seconds": 2 * HOUR,
            "expiry_source": "embedded", "fingerprint": sha256("opaque-azure-access-token-0001"),
        }),
    );
}

#[test]
fn saved_exec_credential() {
    let s = Scratch::new();
    let doc = json!({
        "kind": "ExecCredential",
        "apiVersion": "client.authentication.k8s.io/v1",
        "spec": {"interactive": false},
        "status": {"expirationTimestamp": "2026-06-01T00:15:00Z", "token": "opaque-exec-plugin-token-42"},
    });
    s.write(
        "exec-credential.json",
        serde_json::to_string_pretty(&doc).unwrap(),
    );

    let report = s.check().arg("exec-credential.json").json();

    report.assert_no_errors().assert_credential_count(1);
    assert_fields(
        report.credential("exec-credential.json", Some("status.token"), None),
        json!({
            "kind": "opaque-token", "not_after": "2026-06-01T00:15:00Z", "expires_in_seconds": 15 * MINUTE,
            "expiry_source": "embedded", "status": "critical",
            "fingerprint": sha256("opaque-exec-plugin-token-42"),
        }),
    );
}

#[test]
fn certificates_and_jwts_in_a_document_of_no_known_shape() {
    let s = Scratch::new();
    let ca = Cert::ca(
        "vault-root",
        datetime!(2026-01-01 0:00 UTC),
        datetime!(2031-01-01 0:00 UTC),
    );
    let leaf = ca.issue(
        "app.internal",
        datetime!(2026-05-01 0:00 UTC),
        datetime!(2026-06-04 0:00 UTC),
    );
    let token = jwt(
        json!({"sub": "app", "exp": unix(datetime!(2026-06-20 0:00 UTC))}),
        "c2ln",
    );
    // `vault write -format=json pki/issue/app common_name=app.internal`, plus a JWT in a config.
    let doc = json!({
        "request_id": "6f0c", "lease_duration": 0,
        "data": {
            "certificate": leaf.pem, "issuing_ca": ca.pem, "ca_chain": [ca.pem],
            "expiration": unix(datetime!(2026-06-04 0:00 UTC)), "serial_number": "1f:2e",
        },
        "auth": {"client_token": token},
    });
    s.write("vault-issue.json", doc.to_string());

    let report = s.check().arg("vault-issue.json").json();

    report
        .assert_no_errors()
        .assert_credential_count(4)
        .assert_code(2);
    assert_fields(
        report.credential("vault-issue.json", Some("data.certificate"), Some(0)),
        json!({"kind": "x509", "source": "file", "subject": "CN=app.internal",
               "not_after": "2026-06-04T00:00:00Z", "status": "critical",
               "fingerprint": leaf.fingerprint()}),
    );
    assert_fields(
        report.credential("vault-issue.json", Some("data.issuing_ca"), Some(0)),
        json!({"not_after": "2031-01-01T00:00:00Z", "fingerprint": ca.fingerprint()}),
    );
    assert_fields(
        report.credential("vault-issue.json", Some("data.ca_chain[0]"), Some(0)),
        json!({"fingerprint": ca.fingerprint()}),
    );
    assert_fields(
        report.credential("vault-issue.json", Some("auth.client_token"), None),
        json!({"kind": "jwt", "not_after": "2026-06-20T00:00:00Z", "status": "warning",
               "fingerprint": sha256(&token)}),
    );
}
