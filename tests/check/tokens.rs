//! Bare token files: JWTs (exp, nbf, iat, fractional exp, no exp), JWE,
//! projected service-account tokens and EKS tokens; a JWE with `alg: dir`
//! wherever it is stored; JWT date claims that can never hold (nbf not
//! before exp, out of range, of the wrong type). Also the helpers the other
//! token tests share: Python scripts on real JOSE/OpenStack libraries, and
//! the check that no secret reaches the output.

use crate::support::*;
use serde_json::json;

#[test]
fn jwt_with_exp_nbf_and_iat() {
    let s = Scratch::new();
    // exp 2026-06-01T06:00:00Z, nbf 2026-05-31T23:00:00Z, iat an hour earlier.
    let token = jwt(
        json!({"iss": "https://issuer.example", "sub": "ci-bot", "exp": 1_780_293_600,
               "nbf": 1_780_268_400, "iat": 1_780_264_800}),
        "sig-jwt-basic",
    );
    s.write("ci.jwt", format!("{token}\n"));

    let report = s.check().arg("ci.jwt").json();

    report.assert_no_errors().assert_credential_count(1);
    assert_fields(
        report.credential("ci.jwt", None, None),
        json!({
            "kind": "jwt",
            "source": "file",
            "subject": "ci-bot",
            "issuer": "https://issuer.example",
            "not_before": "2026-05-31T23:00:00Z",
            "not_after": "2026-06-01T06:00:00Z",
            "expires_in_seconds": 6 * HOUR,
            "expiry_source": "embedded",
            "status": "critical",
            "fingerprint": sha256(&token),
        }),
    );
}

#[test]
fn jwt_iat_stands_in_for_a_missing_nbf_and_fractional_exp_is_truncated() {
    let s = Scratch::new();
    let token = jwt(
        json!({"sub": "frac", "exp": 1_780_293_600.75, "iat": 1_780_264_800}),
        "sig-jwt-fraction",
    );
    s.write("id_token", &token);

    let report = s.check().arg("id_token").json();

    assert_fields(
        report.credential("id_token", None, None),
        json!({
            "kind": "jwt",
            "not_before": "2026-05-31T22:00:00Z",
            "not_after": "2026-06-01T06:00:00Z",
            "expires_in_seconds": 6 * HOUR,
        }),
    );
}

#[test]
fn jwt_without_exp_never_expires() {
    let s = Scratch::new();
    let token = jwt(
        json!({"iss": "kubernetes/serviceaccount", "sub": "system:serviceaccount:ci:deployer"}),
        "sig-no-exp",
    );
    s.write("legacy.jwt", &token);

    let report = s.check().arg("legacy.jwt").json();

    report.assert_no_errors().assert_code(0);
    assert_fields(
        report.credential("legacy.jwt", None, None),
        json!({
            "kind": "jwt",
            "subject": "system:serviceaccount:ci:deployer",
            "not_after": null,
            "expires_in_seconds": null,
            "expiry_source": "none",
            "status": "no-expiry",
            "fingerprint": sha256(&token),
        }),
    );
}

#[test]
fn jwe_is_an_opaque_token() {
    let s = Scratch::new();
    let token = jwe("ciphertext-of-the-claims");
    s.write("session.jwt", &token);

    let report = s.check().arg("session.jwt").json();

    report.assert_no_errors();
    assert_fields(
        report.credential("session.jwt", None, None),
        json!({
            "kind": "opaque-token",
            "not_after": null,
            "expiry_source": "none",
            "status": "no-expiry",
            "fingerprint": sha256(&token),
        }),
    );
}

#[test]
fn projected_service_account_token() {
    let s = Scratch::new();
    // A bound token: iat = nbf = 2026-05-31T23:30:00Z, exp an hour later.
    let token = jwt(
        json!({
            "aud": ["https://kubernetes.default.svc"],
            "exp": 1_780_273_800, "iat": 1_780_270_200, "nbf": 1_780_270_200,
            "iss": "https://kubernetes.default.svc.cluster.local",
            "sub": "system:serviceaccount:web:frontend",
            "kubernetes.io": {
                "namespace": "web",
                "serviceaccount": {"name": "frontend", "uid": "5c1c3a1e"},
                "pod": {"name": "frontend-7d9f", "uid": "9b2e"},
                "warnafter": 1_780_273_080
            }
        }),
        "sig-projected",
    );
    s.write("run/secrets/kubernetes.io/serviceaccount/token", &token);

    let report = s
        .check()
        .arg("run/secrets/kubernetes.io/serviceaccount/token")
        .json();

    report.assert_no_errors();
    assert_fields(
        report.credential("run/secrets/kubernetes.io/serviceaccount/token", None, None),
        json!({
            "kind": "jwt",
            "subject": "system:serviceaccount:web:frontend",
            "issuer": "https://kubernetes.default.svc.cluster.local",
            "not_before": "2026-05-31T23:30:00Z",
            "not_after": "2026-06-01T00:30:00Z",
            "expires_in_seconds": 30 * MINUTE,
            "status": "critical",
        }),
    );
}

#[test]
fn eks_token_lasts_fifteen_minutes_from_its_signing_date() {
    let s = Scratch::new();
    let url = "https://sts.us-east-1.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15\
               &X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAEXAMPLE%2F20260531%2Fus-east-1%2Fsts%2Faws4_request\
               &X-Amz-Date=20260531T235500Z&X-Amz-Expires=60&X-Amz-SignedHeaders=host%3Bx-k8s-aws-id\
               &X-Amz-Signature=0123456789abcdef";
    let token = format!("k8s-aws-v1.{}", b64url(url));
    s.write("eks/token", &token);

    let report = s.check().arg("eks/token").json();

    report.assert_no_errors();
    assert_fields(
        report.credential("eks/token", None, None),
        json!({
            "kind": "opaque-token",
            "not_before": "2026-05-31T23:55:00Z",
            "not_after": "2026-06-01T00:10:00Z",
            "expires_in_seconds": 10 * MINUTE,
            "expiry_source": "embedded",
            "status": "critical",
            "fingerprint": sha256(&token),
        }),
    );
}

/// Runs a Python script (`python3 -c`) with `args`; its stdout, trimmed.
/// Tokens and bodies come from real JOSE and OpenStack libraries.
#[track_caller]
pub(crate) fn python(modules: &[(&str, &str)], script: &str, args: &[&str]) -> String {
    for (module, package) in modules {
        let probe = std::process::Command::new("python3")
            .args(["-c", &format!("import {module}")])
            .output()
            .expect("run python3");
        assert!(
            probe.status.success(),
            "the Python module {module} is missing: python3 -m pip install {package}"
        );
    }
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("run python3");
    assert_success("python3", &out).trim().to_string()
}

const JWCRYPTO: &[(&str, &str)] = &[("jwcrypto", "jwcrypto")];

/// A JWE as session-cookie libraries write it (`alg: dir`: no encrypted
/// key, so the second segment is empty), encrypted by jwcrypto.
fn jwe_dir(claims: &str) -> String {
    python(
        JWCRYPTO,
        "import sys, json\nfrom jwcrypto import jwk, jwe\n\
         key = jwk.JWK.generate(kty='oct', size=256)\n\
         token = jwe.JWE(sys.argv[1].encode(), json.dumps({'alg': 'dir', 'enc': 'A256GCM'}))\n\
         token.add_recipient(key)\nprint(token.serialize(compact=True))",
        &[claims],
    )
}

/// Compact JWS tokens signed (HS256) by jwcrypto, one per payload, the
/// payloads taken byte for byte (`1e400` stays `1e400`).
fn signed_jwts(payloads: &[&str]) -> Vec<String> {
    python(
        JWCRYPTO,
        "import sys\nfrom jwcrypto import jwk, jws\nfrom jwcrypto.common import json_encode\n\
         key = jwk.JWK.generate(kty='oct', size=256)\n\
         for payload in sys.argv[1:]:\n    \
             t = jws.JWS(payload.encode())\n    \
             t.add_signature(key, None, json_encode({'alg': 'HS256', 'typ': 'JWT'}))\n    \
             print(t.serialize(compact=True))",
        payloads,
    )
    .lines()
    .map(str::to_string)
    .collect()
}

/// Neither the table nor the JSON report nor the debug log holds `secrets`.
#[track_caller]
pub(crate) fn assert_secrets_absent(s: &Scratch, paths: &[&str], secrets: &[&str]) {
    let table = s.check().args(paths).arg("-vvv").run();
    let json = s
        .check()
        .args(paths)
        .args(["-vvv", "--format", "json"])
        .run();
    for (mode, out) in [("table", &table), ("JSON", &json)] {
        let printed = format!("{}\n{}", out.stdout, out.stderr);
        for secret in secrets {
            assert!(
                !printed.contains(secret),
                "a secret leaked in the {mode} output: {secret}\n{printed}"
            );
        }
    }
}

#[test]
fn jwe_with_alg_dir_is_found_in_json_values_opaque_secrets_and_bare_files() {
    let s = Scratch::new();
    let token = jwe_dir(r#"{"sub":"session-user","exp":1780293600}"#);
    assert!(token.split('.').nth(1) == Some(""), "alg dir: {token}");
    s.write(
        "app/session.json",
        json!({"session": {"cookie": token}}).to_string(),
    );
    s.write(
        "app/secret.yaml",
        format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: app-session\n  namespace: web\n\
             type: Opaque\ndata:\n  session: {}\n",
            b64(&token)
        ),
    );
    s.write("app/cookie", format!("{token}\n"));

    let report = s.check().arg("app").json();

    report.assert_no_errors().assert_credential_count(3);
    let expected = json!({
        "kind": "opaque-token", "not_after": null, "expiry_source": "none", "status": "no-expiry",
        "fingerprint": sha256(&token),
    });
    assert_fields(
        report.credential("app/session.json", Some("session.cookie"), None),
        expected.clone(),
    );
    assert_fields(
        report.credential("app/cookie", None, None),
        expected.clone(),
    );
    let in_secret = report.credential(
        "app/secret.yaml",
        Some("secret web/app-session session"),
        None,
    );
    assert_fields(in_secret, expected);
    assert_fields(in_secret, json!({"source": "secret"}));
    let segments: Vec<&str> = token.split('.').collect();
    assert_secrets_absent(&s, &["app"], &[&token, segments[3], segments[2]]);
}

#[test]
fn a_jwt_whose_nbf_is_not_before_its_exp_is_an_error_naming_both_dates() {
    let s = Scratch::new();
    // nbf 2026-06-02T00:00:00Z, exp 2026-06-01T06:00:00Z: no instant is in both.
    let tokens = signed_jwts(&[
        r#"{"sub":"never","nbf":1780358400,"exp":1780293600}"#,
        r#"{"sub":"empty","nbf":1780293600,"exp":1780293600}"#,
    ]);
    s.write("never.jwt", &tokens[0]);
    s.write("empty.jwt", &tokens[1]);

    let report = s.check().args(["never.jwt", "empty.jwt"]).json();

    report
        .assert_credential_count(0)
        .assert_error_count(2)
        .assert_code(3);
    assert_eq!(
        report.reason("never.jwt", None),
        "JWT claim nbf 2026-06-02T00:00:00Z is not before exp 2026-06-01T06:00:00Z: \
         no verifier ever accepts this token"
    );
    assert_eq!(
        report.reason("empty.jwt", None),
        "JWT claim nbf 2026-06-01T06:00:00Z is not before exp 2026-06-01T06:00:00Z: \
         no verifier ever accepts this token"
    );
    assert_secrets_absent(&s, &["never.jwt", "empty.jwt"], &[&tokens[0], &tokens[1]]);
}

#[test]
fn a_date_claim_out_of_range_or_of_the_wrong_type_is_named() {
    let s = Scratch::new();
    let cases = [
        (
            r#"{"sub":"a","exp":1e400}"#,
            "JWT claim exp is out of range: not a date in the years 1 to 9999",
        ),
        (
            r#"{"sub":"b","exp":-1e400}"#,
            "JWT claim exp is out of range: not a date in the years 1 to 9999",
        ),
        (
            r#"{"sub":"c","exp":1e300}"#,
            "JWT claim exp is out of range: not a date in the years 1 to 9999",
        ),
        (
            r#"{"sub":"d","exp":1780293600,"nbf":1e400}"#,
            "JWT claim nbf is out of range: not a date in the years 1 to 9999",
        ),
        (
            r#"{"sub":"e","exp":1780293600,"iat":-1e400}"#,
            "JWT claim iat is out of range: not a date in the years 1 to 9999",
        ),
        (
            r#"{"sub":"f","exp":"1780293600"}"#,
            "JWT claim exp is not a NumericDate",
        ),
        (
            r#"{"sub":"g","exp":true}"#,
            "JWT claim exp is not a NumericDate",
        ),
        (
            r#"{"sub":"h","exp":{"at":1}}"#,
            "JWT claim exp is not a NumericDate",
        ),
    ];
    let payloads: Vec<&str> = cases.iter().map(|(p, _)| *p).collect();
    let tokens = signed_jwts(&payloads);
    let names: Vec<String> = (0..cases.len()).map(|i| format!("bad-{i}.jwt")).collect();
    for (name, token) in names.iter().zip(&tokens) {
        s.write(name, token);
    }
    // A huge number in a claim lapse does not read hides nothing.
    let fine = signed_jwts(&[r#"{"sub":"ok","big":1e400,"exp":1780293600}"#]).remove(0);
    s.write("fine.jwt", &fine);

    let report = s.check().args(&names).arg("fine.jwt").json();

    report
        .assert_error_count(cases.len())
        .assert_credential_count(1);
    for (name, (_, message)) in names.iter().zip(&cases) {
        assert_eq!(&report.reason(name, None), message, "{name}");
    }
    assert_fields(
        report.credential("fine.jwt", None, None),
        json!({"kind": "jwt", "subject": "ok", "not_after": "2026-06-01T06:00:00Z",
               "fingerprint": sha256(&fine)}),
    );
    let mut paths: Vec<&str> = names.iter().map(String::as_str).collect();
    paths.push("fine.jwt");
    let secrets: Vec<&str> = tokens.iter().map(String::as_str).collect();
    assert_secrets_absent(&s, &paths, &secrets);
}
