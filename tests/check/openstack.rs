//! OpenStack bodies made by OpenStack's own code: Keystone v2 and v3 token
//! bodies from keystoneauth1's fixtures, application credentials as the
//! API and `openstack application credential create|show|list -f json`
//! print them, and a real Keystone (sqlite, `keystone-manage bootstrap`,
//! its WSGI application) that issues a token and application credentials.
//! No token id, secret or password reaches lapse's output.

use super::tokens::{assert_secrets_absent, python};
use crate::support::*;
use serde_json::{Value, json};

const KEYSTONEAUTH: &[(&str, &str)] = &[
    ("keystoneauth1.fixture", "keystoneauth1 fixtures"),
    ("fixtures", "fixtures"),
];

/// Bodies from keystoneauth1's `V2Token` and `V3Token` fixtures, the
/// shapes Keystone's clients are tested against.
fn keystoneauth_bodies() -> Value {
    let script = "import json, uuid\nfrom keystoneauth1 import fixture\n\
        v2 = fixture.V2Token(token_id=uuid.uuid4().hex, issued='2026-05-31T23:00:00.123456Z',\n\
            expires='2026-06-01T23:00:00Z', tenant_id='a6944d76', tenant_name='demo',\n\
            user_id='ee4dfb6e', user_name='alice')\n\
        s = v2.add_service('identity', name='keystone')\n\
        s.add_endpoint(public='https://keystone.example:5000/v2.0', admin='https://keystone.example:35357/v2.0',\n\
            internal='https://keystone.internal:5000/v2.0', region='RegionOne')\n\
        v3 = fixture.V3Token(issued='2026-05-31T23:00:00Z', expires='2026-06-02T00:00:00.654321Z',\n\
            user_id='ee4dfb6e', user_name='bob', project_id='a6944d76', project_name='demo',\n\
            audit_id='VcxU2JYqT8OzfUVvrjEITQ')\n\
        v3.add_role(name='member')\n\
        print(json.dumps({'v2': v2, 'v3': v3}))";
    serde_json::from_str(&python(KEYSTONEAUTH, script, &[])).expect("the bodies are JSON")
}

#[test]
fn keystone_v2_and_v3_token_bodies_from_keystoneauth() {
    let s = Scratch::new();
    let bodies = keystoneauth_bodies();
    let v2_id = bodies["v2"]["access"]["token"]["id"]
        .as_str()
        .expect("a v2 token id")
        .to_string();
    s.write("keystone/v2-tokens.json", bodies["v2"].to_string());
    s.write(
        "keystone/v3-tokens.json",
        serde_json::to_string_pretty(&bodies["v3"]).unwrap(),
    );

    let report = s.check().arg("keystone").json();

    report.assert_no_errors().assert_credential_count(2);
    assert_fields(
        report.credential("keystone/v2-tokens.json", Some("access.token"), None),
        json!({
            "kind": "opaque-token", "source": "file", "subject": "alice",
            "not_before": "2026-05-31T23:00:00Z", "not_after": "2026-06-01T23:00:00Z",
            "expires_in_seconds": 23 * HOUR, "expiry_source": "embedded", "status": "critical",
            "fingerprint": sha256(&v2_id),
        }),
    );
    assert_fields(
        report.credential("keystone/v3-tokens.json", Some("token"), None),
        json!({
            "kind": "opaque-token", "subject": "bob",
            "not_before": "2026-05-31T23:00:00Z", "not_after": "2026-06-02T00:00:00Z",
            "expires_in_seconds": DAY, "status": "critical",
            "fingerprint": sha256("VcxU2JYqT8OzfUVvrjEITQ"),
        }),
    );
    assert_secrets_absent(&s, &["keystone"], &[&v2_id]);
}

#[test]
fn a_keystone_v2_body_with_unreadable_dates_names_the_field() {
    let s = Scratch::new();
    let body = |token: Value| json!({"access": {"token": token, "user": {"name": "alice"}}});
    s.write(
        "expires.json",
        body(json!({"id": "v2-id-1", "expires": "tomorrow"})).to_string(),
    );
    s.write(
        "issued.json",
        body(json!({"id": "v2-id-2", "expires": "2026-06-02T00:00:00Z", "issued_at": 7}))
            .to_string(),
    );

    let report = s.check().args(["expires.json", "issued.json"]).json();

    report.assert_credential_count(0).assert_error_count(2);
    assert_eq!(
        report.reason("expires.json", Some("access.token.expires")),
        "expires is not a date"
    );
    assert_eq!(
        report.reason("issued.json", Some("access.token.issued_at")),
        "issued_at is not a date"
    );
}

/// One application credential as the API reference shows it.
fn api_app_credential(id: &str, name: &str, expires_at: Value) -> Value {
    json!({
        "id": id, "name": name, "description": null, "expires_at": expires_at,
        "user_id": "fd786d56402c4d1691372e7dee0d00b5", "project_id": "231c62fb0fbd485b995e8b38315c6e4e",
        "roles": [{"id": "aa62b1e7a9d1434b8c4f1af6a8a0a3d1", "name": "member", "domain_id": null}],
        "unrestricted": false, "access_rules": [], "system": null,
        "links": {"self": format!("https://keystone.example/v3/users/fd786d56/application_credentials/{id}")},
    })
}

#[test]
fn application_credentials_flat_as_the_cli_prints_them_and_in_list_bodies() {
    let s = Scratch::new();
    let secret =
        "UZl0FfrCCgTGdB6KpzwIcI4KGHhp0SWNdD1mqq23WDjFyALvq9rGqmnN2v8GVqF7v6ROAM6vNChBv5pvrwGYTg";
    // `openstack application credential create -f json` of older clients:
    // the API's keys, flat, with the secret shown this once.
    let mut created = api_app_credential(
        "aa7fd1b2",
        "ci-deployer",
        json!("2026-09-01T00:00:00.000000"),
    );
    created["secret"] = json!(secret);
    created["roles"] = json!("member reader");
    created.as_object_mut().unwrap().remove("links");
    s.write("app-create.json", created.to_string());
    // Newer clients print the column headers as keys.
    s.write(
        "app-show.json",
        json!({"ID": "bb8ae2c3", "Name": "backup", "Description": null, "Project ID": "231c62fb",
               "Roles": [{"id": "aa62b1e7", "name": "reader"}], "Unrestricted": true,
               "Access Rules": null, "Expires At": null})
        .to_string(),
    );
    // `GET /v3/users/{user_id}/application_credentials`.
    s.write(
        "app-list.json",
        json!({"application_credentials": [
                  api_app_credential("cc9bf3d4", "nightly", json!("2026-06-04T00:00:00.000000")),
                  api_app_credential("dd0cf4e5", "forever", json!(null)),
              ],
              "links": {"self": "https://keystone.example/v3/users/fd786d56/application_credentials",
                        "previous": null, "next": null}})
        .to_string(),
    );

    let paths = ["app-create.json", "app-show.json", "app-list.json"];
    let report = s.check().args(paths).json();

    report.assert_no_errors().assert_credential_count(4);
    assert_fields(
        report.credential("app-create.json", Some("id"), None),
        json!({"kind": "opaque-token", "subject": "ci-deployer", "not_after": "2026-09-01T00:00:00Z",
               "expires_in_seconds": 92 * DAY, "status": "ok", "fingerprint": sha256("aa7fd1b2")}),
    );
    assert_fields(
        report.credential("app-show.json", Some("ID"), None),
        json!({"subject": "backup", "not_after": null, "status": "no-expiry",
               "fingerprint": sha256("bb8ae2c3")}),
    );
    assert_fields(
        report.credential("app-list.json", Some("application_credentials[0]"), None),
        json!({"subject": "nightly", "not_after": "2026-06-04T00:00:00Z", "status": "critical",
               "fingerprint": sha256("cc9bf3d4")}),
    );
    assert_fields(
        report.credential("app-list.json", Some("application_credentials[1]"), None),
        json!({"subject": "forever", "not_after": null, "status": "no-expiry"}),
    );
    assert_secrets_absent(&s, &paths, &[secret]);
}

#[test]
fn an_application_credential_with_a_bad_expiry_or_no_id_is_an_error() {
    let s = Scratch::new();
    s.write(
        "bad-expiry.json",
        json!({"ID": "ee1d", "Name": "x", "Unrestricted": false, "Expires At": "someday"})
            .to_string(),
    );
    s.write(
        "no-id.json",
        json!({"application_credentials": [{"name": "y", "expires_at": null}]}).to_string(),
    );

    let report = s.check().args(["bad-expiry.json", "no-id.json"]).json();

    report.assert_credential_count(0).assert_error_count(2);
    assert_eq!(
        report.reason("bad-expiry.json", Some("Expires At")),
        "Expires At is not a date"
    );
    assert_eq!(
        report.reason("no-id.json", Some("application_credentials[0].id")),
        "application credential without id"
    );
}

/// Brings up Keystone on sqlite (db_sync, fernet and credential keys,
/// bootstrap), serves its WSGI application on a free local port, and with
/// the real `openstack` client creates two application credentials (one
/// expiring `expires`, one never), shows and lists them, issues a token
/// and reads a `POST /v3/auth/tokens` body. Prints what each printed, the
/// secrets, and what an independent reading says the dates are.
const KEYSTONE_SCRIPT: &str = r#"
import base64, datetime, json, os, socket, subprocess, sys, threading, urllib.request
from wsgiref.simple_server import make_server, WSGIRequestHandler

work, expires = sys.argv[1], sys.argv[2]
sys.argv[1:] = []  # Keystone's WSGI application reads its own flags from here.
password = 'adm1n-pw-' + os.urandom(6).hex()
conf = os.path.join(work, 'keystone.conf')
with open(conf, 'w') as f:
    f.write(f"""[database]
connection = sqlite:///{work}/keystone.db
[fernet_tokens]
key_repository = {work}/fernet
[credential]
key_repository = {work}/credential
""")
os.environ['OS_KEYSTONE_CONFIG_FILES'] = conf

def manage(*args):
    subprocess.run([sys.executable, '-c', 'import sys; from keystone.cmd.manage import main; sys.argv[0] = "keystone-manage"; main()',
                    '--config-file', conf, *args], check=True, capture_output=True)

class Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass

app = {}
server = make_server('127.0.0.1', 0, lambda env, start: app['wsgi'](env, start), handler_class=Quiet)
port = server.server_port
manage('db_sync')
for repo in ('fernet', 'credential'):
    manage(f'{repo}_setup', '--keystone-user', 'root', '--keystone-group', 'root')
manage('bootstrap', '--bootstrap-password', password, '--bootstrap-public-url', f'http://127.0.0.1:{port}/v3')
from keystone.server.wsgi import initialize_public_application
app['wsgi'] = initialize_public_application()
threading.Thread(target=server.serve_forever, daemon=True).start()

auth_url = f'http://127.0.0.1:{port}/v3'
env = dict(os.environ, OS_AUTH_URL=auth_url, OS_USERNAME='admin', OS_PASSWORD=password,
           OS_PROJECT_NAME='admin', OS_USER_DOMAIN_NAME='Default', OS_PROJECT_DOMAIN_NAME='Default',
           OS_IDENTITY_API_VERSION='3')
def openstack(*args):
    out = subprocess.run([sys.executable, '-c', 'import sys; from openstackclient.shell import main; sys.exit(main())',
                          *args, '-f', 'json'], check=True, capture_output=True, env=env, text=True)
    return out.stdout

out = {'password': password}
out['create'] = openstack('application', 'credential', 'create', 'ci-deployer', '--expiration', expires)
out['create_forever'] = openstack('application', 'credential', 'create', 'forever')
out['show'] = openstack('application', 'credential', 'show', 'ci-deployer')
out['list'] = openstack('application', 'credential', 'list')
out['token'] = openstack('token', 'issue')
body = json.dumps({'auth': {'identity': {'methods': ['password'], 'password': {'user': {
    'name': 'admin', 'domain': {'name': 'Default'}, 'password': password}}}}}).encode()
req = urllib.request.Request(auth_url + '/auth/tokens', data=body, headers={'Content-Type': 'application/json'})
with urllib.request.urlopen(req) as r:
    out['subject_token'] = r.headers['X-Subject-Token']
    out['v3_body'] = r.read().decode()
server.shutdown()

# The oracle: dates read here, independently of lapse.
iso = lambda t: t.astimezone(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')
token = json.loads(out['token'])
out['token_expires'] = iso(datetime.datetime.strptime(token['expires'], '%Y-%m-%dT%H:%M:%S%z'))
raw = base64.urlsafe_b64decode(token['id'] + '=' * (-len(token['id']) % 4))
out['token_created'] = iso(datetime.datetime.fromtimestamp(int.from_bytes(raw[1:9], 'big'), datetime.timezone.utc))
v3 = json.loads(out['v3_body'])['token']
parse = lambda s: datetime.datetime.strptime(s, '%Y-%m-%dT%H:%M:%S.%f%z')
out['v3_expires'] = iso(parse(v3['expires_at']))
out['v3_issued'] = iso(parse(v3['issued_at']))
out['now'] = iso(datetime.datetime.now(datetime.timezone.utc))
print(json.dumps(out))
"#;

#[test]
fn a_real_keystone_token_and_application_credentials() {
    let s = Scratch::new();
    s.mkdir("keystone");
    // A year and a bit from now, at midnight: Keystone refuses a past expiry.
    let expires_day = time::OffsetDateTime::now_utc().date() + time::Duration::days(400);
    let expires = format!("{expires_day}T00:00:00");
    let out = python(
        &[
            ("keystone", "keystone"),
            ("openstackclient", "python-openstackclient"),
        ],
        KEYSTONE_SCRIPT,
        &[&s.abs("keystone"), &expires],
    );
    // Keystone logs to stdout too; the script's report is its last line.
    let last = out.lines().last().unwrap_or_default();
    let k: Value = serde_json::from_str(last).expect("the script prints JSON last");
    let text = |key: &str| {
        k[key]
            .as_str()
            .unwrap_or_else(|| panic!("{key} in {k}"))
            .to_string()
    };
    let created: Value = serde_json::from_str(&text("create")).unwrap();
    let forever: Value = serde_json::from_str(&text("create_forever")).unwrap();
    let token: Value = serde_json::from_str(&text("token")).unwrap();
    for key in [
        "create",
        "create_forever",
        "show",
        "list",
        "token",
        "v3_body",
    ] {
        s.write(&format!("os/{key}.json"), text(key));
    }

    let report = s.check_at(&text("now")).arg("os").json();

    report.assert_no_errors().assert_credential_count(7);
    let id = |v: &Value| v["ID"].as_str().expect("an ID").to_string();
    let expiring = json!({"kind": "opaque-token", "subject": "ci-deployer",
        "not_after": format!("{expires}Z"), "status": "ok", "fingerprint": sha256(id(&created))});
    let never = json!({"subject": "forever", "not_after": null, "status": "no-expiry",
        "fingerprint": sha256(id(&forever))});
    assert_fields(
        report.credential("os/create.json", Some("ID"), None),
        expiring.clone(),
    );
    assert_fields(
        report.credential("os/create_forever.json", Some("ID"), None),
        never.clone(),
    );
    assert_fields(
        report.credential("os/show.json", Some("ID"), None),
        expiring.clone(),
    );
    let listed: Vec<&Value> = (0..2)
        .map(|i| report.credential("os/list.json", Some(&format!("[{i}]")), None))
        .collect();
    let by_name = |name: &str| *listed.iter().find(|c| c["subject"] == name).expect(name);
    assert_fields(by_name("ci-deployer"), expiring);
    assert_fields(by_name("forever"), never);
    let token_id = token["id"].as_str().expect("a token id").to_string();
    assert_fields(
        report.credential("os/token.json", Some("id"), None),
        json!({"kind": "opaque-token", "subject": token["user_id"], "not_before": text("token_created"),
               "not_after": text("token_expires"), "status": "critical", "fingerprint": sha256(&token_id)}),
    );
    assert_fields(
        report.credential("os/v3_body.json", Some("token"), None),
        json!({"kind": "opaque-token", "subject": "admin", "not_before": text("v3_issued"),
               "not_after": text("v3_expires"), "status": "critical"}),
    );
    let secrets = [
        text("password"),
        created["Secret"].as_str().expect("a secret").to_string(),
        forever["Secret"].as_str().expect("a secret").to_string(),
        token_id,
        text("subject_token"),
    ];
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    assert_secrets_absent(&s, &["os"], &secrets);
}
