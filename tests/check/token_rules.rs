//! Declared token lifetimes (`tokens:` rules): a login document's token
//! and issue-time field, YAML or one-line JSON, and a token that states
//! its own creation time (Keystone Fernet) keeping it over the file's
//! modification time.

use super::tokens::{assert_secrets_absent, python};
use crate::support::*;
use serde_json::json;
use std::time::{Duration, UNIX_EPOCH};

#[test]
fn a_token_rule_reads_the_token_of_a_login_document_it_names() {
    let s = Scratch::new();
    let tokens = [
        "opaque-login-token-1a2b3c4d",
        "opaque-login-token-5e6f7a8b",
        "opaque-login-token-9c0d1e2f",
    ];
    s.write(
        "etc/tokens/login.yaml",
        format!("token: {}\nissued: 2026-05-01T00:00:00Z\n", tokens[0]),
    );
    // One line of JSON is a document, not one opaque token of its text.
    s.write(
        "etc/tokens/login.json",
        json!({"token": tokens[1], "issued": "2026-05-02T00:00:00Z"}).to_string(),
    );
    s.write(
        "etc/tokens/session.token",
        json!({"token": tokens[2], "issued": 1_777_766_400}).to_string(),
    );
    s.write(
        "etc/tokens/login-empty.yaml",
        "user: nobody\nissued: 2026-05-01T00:00:00Z\n",
    );
    s.write(
        "etc/lapse.yaml",
        "files:\n  paths: [tokens]\n\
         tokens:\n- path: 'login*'\n  validity: 90d\n  issued_at: field:issued\n\
         - path: '*.token'\n  field: token\n  validity: 30d\n  issued_at: field:issued\n",
    );

    let report = s.check().args(["--config", "etc/lapse.yaml"]).json();

    report.assert_credential_count(3).assert_error_count(1);
    for (file, token, issued, until) in [
        ("login.yaml", tokens[0], "2026-05-01", "2026-07-30"),
        ("login.json", tokens[1], "2026-05-02", "2026-07-31"),
        ("session.token", tokens[2], "2026-05-03", "2026-06-02"),
    ] {
        assert_fields(
            report.credential(&format!("etc/tokens/{file}"), Some("token"), None),
            json!({
                "kind": "opaque-token", "expiry_source": "validity-window",
                "not_before": format!("{issued}T00:00:00Z"), "not_after": format!("{until}T00:00:00Z"),
                "fingerprint": sha256(token),
            }),
        );
    }
    assert_eq!(
        report.reason("etc/tokens/login-empty.yaml", Some("token")),
        "tokens rule login*: this YAML/JSON document has no field token \
         (name the token's field with `field:`)"
    );
    assert_secrets_absent(&s, &["--config", "etc/lapse.yaml"], &tokens);
}

/// A Keystone Fernet token made by `cryptography`'s Fernet (the library
/// Keystone uses) at `created`, unpadded as Keystone hands it out.
fn fernet_token(created: i64) -> String {
    python(
        &[("cryptography", "cryptography")],
        "import sys\nfrom cryptography.fernet import Fernet\n\
         f = Fernet(Fernet.generate_key())\n\
         print(f.encrypt_at_time(b'\\x96\\x00user-and-project-ids', int(sys.argv[1])).decode().rstrip('='))",
        &[&created.to_string()],
    )
}

#[test]
fn a_token_rule_keeps_a_fernet_tokens_own_creation_time_over_the_files_mtime() {
    let s = Scratch::new();
    // Created ten minutes before the pinned now; the file touched two days before it.
    let created = 1_780_271_400; // 2026-05-31T23:50:00Z
    let token = fernet_token(created);
    s.write("etc/tokens/keystone.token", format!("{token}\n"));
    std::fs::File::options()
        .write(true)
        .open(s.path("etc/tokens/keystone.token"))
        .and_then(|f| f.set_modified(UNIX_EPOCH + Duration::from_secs(1_780_099_200)))
        .expect("set the token's mtime");
    s.write(
        "etc/lapse.yaml",
        "files:\n  paths: [tokens]\n\
         tokens:\n- path: '*.token'\n  validity: 1h\n  issued_at: mtime\n",
    );

    let report = s.check().args(["--config", "etc/lapse.yaml"]).json();

    report.assert_no_errors().assert_credential_count(1);
    assert_fields(
        report.credential("etc/tokens/keystone.token", None, None),
        json!({
            "kind": "opaque-token", "expiry_source": "validity-window",
            "not_before": "2026-05-31T23:50:00Z", "not_after": "2026-06-01T00:50:00Z",
            "expires_in_seconds": 50 * MINUTE, "status": "critical", "fingerprint": sha256(&token),
        }),
    );
    assert_secrets_absent(&s, &["--config", "etc/lapse.yaml"], &[&token]);
}
