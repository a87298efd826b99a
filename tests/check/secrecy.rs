//! Secrets never leak: token text, refresh tokens, private keys, keystore
//! passwords and bootstrap token secrets must not appear in the table, the
//! JSON report or the debug log, whether the input parses or not.

use crate::support::*;
use serde_json::json;
use time::macros::datetime;

/// Every secret a fixture holds, so the test can look for each afterwards.
#[derive(Default)]
struct Canaries(Vec<(String, &'static str)>);

impl Canaries {
    /// Records `text` (described by `what`) and hands it back.
    fn add(&mut self, what: &'static str, text: impl Into<String>) -> String {
        let text = text.into();
        self.0.push((text.clone(), what));
        text
    }

    /// A private key: its whole PEM, one line of its body, and its DER.
    fn key(&mut self, what: &'static str, cert: &Cert) {
        self.add(what, cert.key_pem.clone());
        self.add(what, cert.key_pem_fragment());
    }

    #[track_caller]
    fn assert_absent_from(&self, mode: &str, out: &Outcome) {
        let printed = format!("{}\n{}", out.stdout, out.stderr);
        for (secret, what) in &self.0 {
            for (form, text) in [
                ("as is", secret.clone()),
                ("base64", b64(secret)),
                ("base64url", b64url(secret)),
            ] {
                assert!(
                    !printed.contains(&text),
                    "{what} ({form}) leaked in {mode} output:\n  secret: {text}\n--- stdout ---\n{}\n--- stderr ---\n{}",
                    out.stdout,
                    out.stderr
                );
            }
        }
    }
}

/// A tree with every kind of secret lapse reads, good and broken.
fn secret_tree(s: &Scratch, c: &mut Canaries) {
    let ca = Cert::ca(
        "secrecy-ca",
        datetime!(2025-01-01 0:00 UTC),
        datetime!(2030-01-01 0:00 UTC),
    );
    let client = ca.issue(
        "client",
        datetime!(2026-01-01 0:00 UTC),
        datetime!(2026-06-20 0:00 UTC),
    );
    c.key("CA private key", &ca);
    c.key("client private key", &client);
    bare_files(s, c, &ca, &client);
    kubeconfigs(s, c, &client);
    kubernetes_objects(s, c, &client);
    token_caches(s, c, &ca, &client);
}

/// Certificates with keys, bare keys, token files and a locked keystore.
fn bare_files(s: &Scratch, c: &mut Canaries, ca: &Cert, client: &Cert) {
    s.write(
        "tree/pki/client.pem",
        format!("{}{}", client.pem, client.key_pem),
    );
    s.write("tree/pki/ca.key", &ca.key_pem);
    let bare = c.add(
        "bare JWT",
        jwt(
            json!({"sub": "bare", "exp": 1_780_358_400}),
            "canary-bare-jwt-signature",
        ),
    );
    s.write("tree/tokens/bare.jwt", &bare);
    let bad_exp = c.add(
        "JWT with a bad exp",
        jwt(json!({"exp": "soon"}), "canary-bad-exp-signature"),
    );
    s.write("tree/tokens/bad-exp.jwt", &bad_exp);
    let not_json = c.add(
        "JWT with a non-JSON payload",
        format!(
            "{}.{}.{}",
            b64url(r#"{"alg":"none"}"#),
            b64url("canary not json"),
            b64url("sig")
        ),
    );
    s.write("tree/tokens/not-json.jwt", &not_json);
    let opaque = c.add(
        "opaque token in a file named token",
        "canary-opaque-token-0123456789abcdef",
    );
    s.write("tree/run/token", &opaque);
    s.write(
        "tree/run/multiline/token",
        format!("{opaque}\nsecond line canary-multiline-token\n"),
    );
    c.add("multi-line token file", "canary-multiline-token");
    let password = c.add("PKCS#12 password", "canary-p12-password");
    s.write("tree/locked.p12", pkcs12(&[client, ca], &password));
}

/// A kubeconfig with every kind of user, a broken one, and bad data.
fn kubeconfigs(s: &Scratch, c: &mut Canaries, client: &Cert) {
    let bad_exp = c.add(
        "kubeconfig JWT with a bad exp",
        jwt(json!({"exp": "later"}), "canary-user-bad-exp"),
    );
    let user_token = c.add(
        "kubeconfig token",
        jwt(
            json!({"sub": "deployer", "exp": 1_780_358_400}),
            "canary-user-token",
        ),
    );
    let file_token = c.add("tokenFile token", "canary-token-file-content-000111");
    s.write("tree/kube/robot.token", &file_token);
    let id_token = c.add(
        "OIDC id-token",
        jwt(
            json!({"sub": "alice", "exp": 1_780_358_400}),
            "canary-id-token",
        ),
    );
    let refresh = c.add("OIDC refresh-token", "canary-refresh-token-ChlvcGFxdWU");
    let client_secret = c.add("OIDC client-secret", "canary-oidc-client-secret");
    let gcp = c.add("gcp access-token", "ya29.canary-gcp-access-token");
    let azure = c.add(
        "azure access-token",
        jwt(json!({"sub": "bob"}), "canary-azure-token"),
    );
    let exec_secret = c.add("exec plugin argument", "canary-exec-arg-secret");
    let users = format!(
        "- name: admin\n  user:\n    client-certificate-data: {}\n    client-key-data: {}\n\
         - name: deployer\n  user:\n    token: {user_token}\n\
         - name: robot\n  user:\n    tokenFile: robot.token\n\
         - name: bad\n  user:\n    token: {bad_exp}\n\
         - name: alice\n  user:\n    auth-provider:\n      name: oidc\n      config:\n        id-token: {id_token}\n        \
           refresh-token: {refresh}\n        client-secret: {client_secret}\n\
         - name: gke\n  user:\n    auth-provider:\n      name: gcp\n      config:\n        access-token: {gcp}\n        expiry: not-a-date\n\
         - name: aks\n  user:\n    auth-provider:\n      name: azure\n      config:\n        access-token: {azure}\n        expires-on: \"1780290000\"\n\
         - name: exec\n  user:\n    exec:\n      command: get-token\n      args: [--secret={exec_secret}]\n",
        b64(&client.pem),
        b64(&client.key_pem)
    );
    s.write(
        "tree/kube/config",
        format!("apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers:\n{users}"),
    );
    let broken_token = c.add("token in broken YAML", "canary-token-in-broken-yaml");
    s.write(
        "tree/kube/broken",
        format!("apiVersion: v1\nkind: Config\nusers:\n- name: x\n  user:\n    token: {broken_token}\n   oops: [\n"),
    );
    let bad_b64_key = c.add("invalid client-key-data", "canary%client%key%data");
    s.write(
        "tree/kube/bad-data",
        format!(
            "apiVersion: v1\nkind: Config\nusers:\n- name: x\n  user:\n    client-certificate-data: canary%cert%data\n    \
             client-key-data: {bad_b64_key}\n"
        ),
    );
}

/// Secrets of every type, good and broken, in one List.
fn kubernetes_objects(s: &Scratch, c: &mut Canaries, client: &Cert) {
    let sa_token = c.add(
        "service-account token",
        jwt(
            json!({"sub": "system:serviceaccount:ci:deployer"}),
            "canary-sa-token",
        ),
    );
    let token_secret = c.add("bootstrap token-secret", "c4n4ry0123456789");
    let broken_secret = c.add(
        "bootstrap token-secret beside a bad expiration",
        "c4n4ry9876543210",
    );
    let keystore_password = c.add("keystore password in a Secret", "canary-keystore-password");
    let invalid_b64 = c.add("invalid base64 Secret value", "canary*not*base64");
    let dump = json!({"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
         "metadata": {"name": "tls", "namespace": "web"},
         "data": {"tls.crt": b64(&client.pem), "tls.key": b64(&client.key_pem)}},
        {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/service-account-token",
         "metadata": {"name": "sa", "namespace": "ci"}, "data": {"token": b64(&sa_token)}},
        {"apiVersion": "v1", "kind": "Secret", "type": "bootstrap.kubernetes.io/token",
         "metadata": {"name": "bootstrap-token-c4n4ry", "namespace": "kube-system"},
         "data": {"token-id": b64("c4n4ry"), "token-secret": b64(&token_secret), "expiration": b64("2026-06-02T00:00:00Z")}},
        {"apiVersion": "v1", "kind": "Secret", "type": "bootstrap.kubernetes.io/token",
         "metadata": {"name": "bootstrap-token-b4d000", "namespace": "kube-system"},
         "data": {"token-id": b64("b4d000"), "token-secret": b64(&broken_secret), "expiration": b64("whenever")}},
        {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
         "metadata": {"name": "keystore", "namespace": "web"},
         "data": {"keystore.p12": b64(pkcs12(&[client], &keystore_password)), "keystore-password": b64(&keystore_password)}},
        {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
         "metadata": {"name": "broken", "namespace": "web"}, "data": {"api-token": invalid_b64}},
    ]});
    s.write("tree/dump.json", dump.to_string());
}

/// Token caches and token files, good and broken.
fn token_caches(s: &Scratch, c: &mut Canaries, ca: &Cert, client: &Cert) {
    let gke_cache = c.add("gke cache token", "ya29.canary-gke-cache-token");
    s.write(
        "tree/kube/gke_gcloud_auth_plugin_cache",
        json!({"access_token": gke_cache, "token_expiry": "2026-06-01T01:00:00Z"}).to_string(),
    );
    let kubelogin_id = c.add(
        "kubelogin id_token",
        jwt(
            json!({"sub": "carol", "exp": 1_780_358_400}),
            "canary-kubelogin-id",
        ),
    );
    let kubelogin_refresh = c.add("kubelogin refresh_token", "canary-kubelogin-refresh");
    s.write(
        "tree/cache/oidc-login/0123abcd",
        json!({"id_token": kubelogin_id, "refresh_token": kubelogin_refresh}).to_string(),
    );
    let azure_cache = c.add("Azure kubelogin access_token", "canary-azure-cache-token");
    s.write(
        "tree/cache/kubelogin/a.json",
        json!({"access_token": azure_cache, "expires_on": "never"}).to_string(),
    );
    let exec_token = c.add("ExecCredential token", "canary-exec-credential-token");
    s.write(
        "tree/exec.json",
        json!({"kind": "ExecCredential", "status": {"token": exec_token, "expirationTimestamp": "2026-06-01T00:15:00Z"}}).to_string(),
    );
    let openstack = c.add(
        "OpenStack token id",
        "gAAAAACanaryOpenStackTokenIdThatIsNotFernetButLooksLikeOneForSure",
    );
    s.write(
        "tree/openstack.json",
        json!({"expires": "2026-06-01T04:00:54+0000", "id": openstack}).to_string(),
    );
    let moc = c.add("MOC login token", "canary-moc-login-token");
    s.write(
        "tree/cloudlogin.yaml",
        format!(
            "name: x\ntoken: {moc}\ncertificate: {}\ncloudfqdn: ca.local\n",
            b64(&ca.pem)
        ),
    );
    s.write(
        "tree/cloudconfig",
        json!({"ClientCertificate": b64(&client.pem), "ClientKey": b64(&client.key_pem), "IdentityName": "x"}).to_string(),
    );
    let broken_cache = c.add("token in broken JSON", "canary-token-in-broken-json");
    s.write(
        "tree/broken-cache.json",
        format!(r#"{{"access_token": "{broken_cache}", "token_expiry": "#),
    );
}

#[test]
fn no_secret_reaches_the_table_the_json_or_the_debug_log() {
    let s = Scratch::new();
    let mut canaries = Canaries::default();
    secret_tree(&s, &mut canaries);

    let table = s.check().args(["tree", "-vvv"]).run();
    let report = s.check().args(["tree", "-vvv", "--format", "json"]).run();
    let forced = s.check().args(["tree", "-vvv", "--color", "always"]).run();
    let nagios = s.check().args(["tree", "-vvv", "--format", "nagios"]).run();

    for (mode, out) in [
        ("table", &table),
        ("JSON", &report),
        ("coloured table", &forced),
        ("Nagios", &nagios),
    ] {
        assert_contains(&out.stderr, " level=trace ");
        canaries.assert_absent_from(mode, out);
    }
    // The fixtures were read, not skipped: the check means something.
    Report::parse(report)
        // robot.token is walked and referenced by tokenFile: reported once.
        .assert_credential_count(22)
        .assert_error_count(12);
}
