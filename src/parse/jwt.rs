//! Tokens: JWT claims (`exp`, `nbf`, `iat`, read without verifying the
//! signature: lapse only wants dates), and the opaque token shapes whose
//! expiry or issue time can still be read (EKS presigned URLs, Fernet,
//! bootstrap tokens).

use super::record::{Context, Parsed};
use crate::credential::{Credential, ErrorReason, Fingerprint, Kind, Source, Timestamp};
use crate::timefmt::parse_unix;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

/// AWS presigned URLs in EKS tokens are valid for 15 minutes.
const EKS_TOKEN_LIFETIME: i64 = 15 * 60;

fn b64url(segment: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(segment.trim_end_matches('=')).ok()
}

fn is_b64url(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'=')
}

/// The JOSE header of a compact JWT, when `text` is shaped like one.
fn jose_header(text: &str) -> Option<(Value, usize)> {
    let parts: Vec<&str> = text.split('.').collect();
    if !(parts.len() == 3 || parts.len() == 5) || !is_b64url(parts[0]) || !is_b64url(parts[1]) {
        return None;
    }
    let header: Value = serde_json::from_slice(&b64url(parts[0])?).ok()?;
    let has_alg = header.get("alg").is_some() || header.get("enc").is_some();
    (header.is_object() && has_alg).then_some((header, parts.len()))
}

/// True when `text` is a compact JWS or JWE.
pub(crate) fn looks_like_jwt(text: &str) -> bool {
    jose_header(text).is_some()
}

/// Reads a token of any kind. Errors only when it is clearly a JWT whose
/// claims cannot be read.
pub fn token_credential(text: &str) -> Result<Credential, String> {
    let fingerprint = Fingerprint::of(text.as_bytes());
    if let Some((_, segments)) = jose_header(text) {
        if segments == 5 {
            return Ok(Credential::new(Kind::OpaqueToken, fingerprint)
                .with_note("encrypted JWT (JWE): its claims cannot be read"));
        }
        return jwt_claims(text, fingerprint);
    }
    if let Some(c) = eks_token(text, fingerprint) {
        return Ok(c);
    }
    if let Some(created) = fernet_created(text) {
        let mut c = Credential::new(Kind::OpaqueToken, fingerprint).with_note(
            "Keystone Fernet token: lifetime is keystone's [token] expiration; declare it with a tokens rule",
        );
        c.not_before = Some(created);
        return Ok(c);
    }
    if is_bootstrap_token(text) {
        return Ok(Credential::new(Kind::BootstrapToken, fingerprint));
    }
    Ok(Credential::new(Kind::OpaqueToken, fingerprint))
}

fn jwt_claims(text: &str, fingerprint: Fingerprint) -> Result<Credential, String> {
    let payload = text.split('.').nth(1).unwrap_or_default();
    let claims: Value = b64url(payload)
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .filter(Value::is_object)
        .ok_or("JWT payload is not base64url-encoded JSON")?;
    let date = |name: &str| -> Result<Option<Timestamp>, String> {
        match claims.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(v @ Value::Number(_)) => parse_unix(v)
                .map(Some)
                .ok_or_else(|| format!("JWT claim {name} is out of range")),
            Some(_) => Err(format!("JWT claim {name} is not a NumericDate")),
        }
    };
    let exp = date("exp")?;
    let nbf = date("nbf")?;
    let iat = date("iat")?;
    let mut c = Credential::new(Kind::Jwt, fingerprint).expiring(exp);
    c.not_before = nbf.or(iat);
    let text_claim = |name: &str| claims.get(name).and_then(Value::as_str).map(str::to_string);
    c.identity.subject = text_claim("sub");
    c.identity.issuer = text_claim("iss");
    if let Some(k8s) = claims.get("kubernetes.io") {
        c.warn_after = k8s.get("warnafter").and_then(parse_unix);
    }
    if exp.is_none() {
        c.note = Some("JWT without exp: it never expires".into());
    }
    Ok(c)
}

/// `k8s-aws-v1.` + base64url(presigned STS URL): valid 15 minutes from `X-Amz-Date`.
fn eks_token(text: &str, fingerprint: Fingerprint) -> Option<Credential> {
    let url = String::from_utf8(b64url(text.strip_prefix("k8s-aws-v1.")?)?).ok()?;
    let query = url.split_once('?')?.1;
    let date = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("X-Amz-Date="))?;
    let signed = amz_date(date)?;
    let mut c = Credential::new(Kind::OpaqueToken, fingerprint)
        .expiring(Some(signed + EKS_TOKEN_LIFETIME))
        .with_note("EKS token: presigned URL valid 15 minutes");
    c.not_before = Some(signed);
    Some(c)
}

/// `20260708T040054Z`.
fn amz_date(s: &str) -> Option<Timestamp> {
    if s.len() != 16 || !s.is_ascii() || s.as_bytes()[8] != b'T' || !s.ends_with('Z') {
        return None;
    }
    let rfc = format!(
        "{}-{}-{}T{}:{}:{}Z",
        &s[0..4],
        &s[4..6],
        &s[6..8],
        &s[9..11],
        &s[11..13],
        &s[13..15]
    );
    crate::timefmt::parse_timestamp(&rfc)
}

/// Keystone Fernet tokens: byte 0 is 0x80, bytes 1..9 the creation time.
fn fernet_created(text: &str) -> Option<Timestamp> {
    if !text.starts_with("gAAAAA") || !is_b64url(text) || text.len() < 60 {
        return None;
    }
    let bytes = b64url(text)?;
    if bytes.len() < 57 || bytes[0] != 0x80 {
        return None;
    }
    let created = i64::from_be_bytes(bytes[1..9].try_into().ok()?);
    (created > 0).then_some(created)
}

/// `[a-z0-9]{6}.[a-z0-9]{16}`.
fn is_bootstrap_token(text: &str) -> bool {
    let ok = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    };
    matches!(text.split_once('.'), Some((id, secret)) if ok(id, 6) && ok(secret, 16))
}

/// Adds the token in `text` (already trimmed) at `field`.
pub(crate) fn add_token(ctx: &Context, source: Source, field: &str, text: &str, out: &mut Parsed) {
    match token_credential(text) {
        Ok(c) => out.add(ctx, source, field, None, c),
        Err(e) => out.error(ctx, field, ErrorReason::Parse, e),
    }
}

/// Adds a token whose expiry the surrounding file states (gcp `expiry`,
/// a cache's `token_expiry`). A JWT's own `exp` wins when it has one.
pub(crate) fn add_token_expiring(
    ctx: &Context,
    source: Source,
    field: &str,
    text: &str,
    expiry: Option<Timestamp>,
    out: &mut Parsed,
) {
    match token_credential(text) {
        Ok(mut c) => {
            if c.not_after.is_none() && expiry.is_some() {
                c = c.expiring(expiry);
                if c.kind == Kind::Jwt {
                    c.note = None;
                }
            }
            out.add(ctx, source, field, None, c)
        }
        Err(e) => out.error(ctx, field, ErrorReason::Parse, e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(claims: &str) -> String {
        format!(
            "{}.{}.c2ln",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256","typ":"JWT"}"#),
            URL_SAFE_NO_PAD.encode(claims)
        )
    }

    #[test]
    fn jwt_dates_and_identity() {
        let c = token_credential(&jwt(
            r#"{"iss":"https://issuer","sub":"alice","iat":1700000000,"exp":1700003600.5}"#,
        ))
        .unwrap();
        assert_eq!(c.kind, Kind::Jwt);
        assert_eq!(c.not_after, Some(1_700_003_600));
        assert_eq!(c.not_before, Some(1_700_000_000));
        assert_eq!(c.identity.subject.as_deref(), Some("alice"));
        assert_eq!(c.identity.issuer.as_deref(), Some("https://issuer"));
    }

    #[test]
    fn bound_token_warnafter() {
        let c = token_credential(&jwt(
            r#"{"exp":1731536000,"nbf":1700000000,"kubernetes.io":{"warnafter":1700003607}}"#,
        ))
        .unwrap();
        assert_eq!(c.warn_after, Some(1_700_003_607));
        assert_eq!(c.not_before, Some(1_700_000_000));
    }

    #[test]
    fn broken_jwt_claims_are_errors() {
        let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#);
        assert!(token_credential(&format!("{header}.!!!.x")).is_ok()); // not JWT-shaped: opaque
        let err = token_credential(&format!("{header}.bm90IGpzb24.x")).unwrap_err();
        assert_eq!(err, "JWT payload is not base64url-encoded JSON");
        let err = token_credential(&jwt(r#"{"exp":"tomorrow"}"#)).unwrap_err();
        assert_eq!(err, "JWT claim exp is not a NumericDate");
    }

    #[test]
    fn jwe_is_opaque() {
        let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"RSA-OAEP","enc":"A256GCM"}"#);
        let c = token_credential(&format!("{header}.a.b.c.d")).unwrap();
        assert_eq!(c.kind, Kind::OpaqueToken);
        assert_eq!(c.not_after, None);
    }

    #[test]
    fn eks_token_expiry() {
        let url = "https://sts.amazonaws.com/?Action=GetCallerIdentity&X-Amz-Date=20260708T040054Z&X-Amz-Expires=60";
        let c = token_credential(&format!("k8s-aws-v1.{}", URL_SAFE_NO_PAD.encode(url))).unwrap();
        assert_eq!(c.not_before, Some(1_783_483_254));
        assert_eq!(c.not_after, Some(1_783_483_254 + 900));
    }

    #[test]
    fn fernet_creation_time() {
        let mut raw = vec![0x80u8];
        raw.extend_from_slice(&1_783_483_254i64.to_be_bytes());
        raw.extend_from_slice(&[7u8; 80]);
        let token = URL_SAFE_NO_PAD.encode(&raw);
        assert!(token.starts_with("gAAAAA"));
        let c = token_credential(&token).unwrap();
        assert_eq!(c.kind, Kind::OpaqueToken);
        assert_eq!(c.not_before, Some(1_783_483_254));
        assert_eq!(c.not_after, None);
    }

    #[test]
    fn bootstrap_shape() {
        assert_eq!(
            token_credential("abcdef.0123456789abcdef").unwrap().kind,
            Kind::BootstrapToken
        );
        assert_eq!(
            token_credential("abcdef.0123456789").unwrap().kind,
            Kind::OpaqueToken
        );
    }
}
