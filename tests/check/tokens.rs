//! Bare token files: JWTs (exp, nbf, iat, fractional exp, no exp), JWE,
//! projected service-account tokens and EKS tokens.

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
