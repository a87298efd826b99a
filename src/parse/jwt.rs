//! Tokens: JWT claims (`exp`, `nbf`, `iat`, read without verifying the
//! signature: lapse only wants dates), and the opaque token shapes whose
//! expiry or issue time can still be read (EKS presigned URLs, Fernet,
//! bootstrap tokens).

use super::record::{Context, Parsed};
use crate::credential::{Credential, ErrorReason, Fingerprint, Kind, Source, Timestamp};
use crate::timefmt::parse_unix;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::{Map, Value};
use std::cell::Cell;

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
///
/// A JWS's second segment is its payload and is never empty. A JWE's is
/// its encrypted key, which is empty when the content key is the shared
/// key itself (`alg: dir`, what session-cookie libraries write: RFC 7516
/// section 4.1.1); its IV, ciphertext and tag are not.
fn jose_header(text: &str) -> Option<(Value, usize)> {
    let parts: Vec<&str> = text.split('.').collect();
    let shaped = match parts.len() {
        3 => is_b64url(parts[0]) && is_b64url(parts[1]),
        5 => {
            is_b64url(parts[0])
                && (parts[1].is_empty() || is_b64url(parts[1]))
                && parts[2..].iter().all(|p| is_b64url(p))
        }
        _ => false,
    };
    if !shaped {
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

/// The claims lapse reads. Every other claim is skipped unparsed, so a
/// number no `f64` holds (`1e400`) in a claim lapse does not read cannot
/// hide the dates.
const READ_CLAIMS: &[&str] = &["exp", "nbf", "iat", "sub", "iss", "kubernetes.io"];

const OUT_OF_RANGE: &str = "is out of range: not a date in the years 1 to 9999";

/// Reads the payload's [`READ_CLAIMS`] into a map. `reading` names the
/// claim being read, so a number out of range can be blamed on it.
struct ClaimsSeed<'a> {
    reading: &'a Cell<Option<&'static str>>,
}

impl<'de> DeserializeSeed<'de> for ClaimsSeed<'_> {
    type Value = Map<String, Value>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ClaimsSeed<'_> {
    type Value = Map<String, Value>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON object of claims")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut claims = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            match READ_CLAIMS.iter().find(|c| **c == key) {
                Some(name) => {
                    self.reading.set(Some(name));
                    let value: Value = map.next_value()?;
                    self.reading.set(None);
                    claims.insert(key, value);
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(claims)
    }
}

fn read_claims(payload: &str) -> Result<Map<String, Value>, String> {
    const NOT_JSON: &str = "JWT payload is not base64url-encoded JSON";
    let bytes = b64url(payload).ok_or(NOT_JSON)?;
    let reading = Cell::new(None);
    let mut de = serde_json::Deserializer::from_slice(&bytes);
    let claims = ClaimsSeed { reading: &reading }
        .deserialize(&mut de)
        .and_then(|claims| de.end().map(|()| claims));
    claims.map_err(|e| match reading.get() {
        // serde_json's only word for a number no f64 holds.
        Some(name) if e.to_string().starts_with("number out of range") => {
            format!("JWT claim {name} {OUT_OF_RANGE}")
        }
        _ => NOT_JSON.to_string(),
    })
}

fn jwt_claims(text: &str, fingerprint: Fingerprint) -> Result<Credential, String> {
    let claims = read_claims(text.split('.').nth(1).unwrap_or_default())?;
    let date = |name: &str| -> Result<Option<Timestamp>, String> {
        match claims.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(v @ Value::Number(_)) => parse_unix(v)
                .map(Some)
                .ok_or_else(|| format!("JWT claim {name} {OUT_OF_RANGE}")),
            Some(_) => Err(format!("JWT claim {name} is not a NumericDate")),
        }
    };
    let exp = date("exp")?;
    let nbf = date("nbf")?;
    let iat = date("iat")?;
    // A verifier rejects a token at or after `exp` and before `nbf` (RFC
    // 7519 sections 4.1.4 and 4.1.5); when `nbf` is not before `exp` no
    // instant passes both, so the token is never usable. Reporting it
    // `ok` until `exp` (or `not-yet-valid`, or `expired`) would each claim
    // a window it does not have. It is an error, as a token whose dates
    // cannot be read is: it fires the parse-error alert and exit code 3,
    // and the remedy is the same, a new token. Both dates are named (they
    // are not secret) so the operator can see which one the issuer got wrong.
    if let (Some(exp), Some(nbf)) = (exp, nbf)
        && nbf >= exp
    {
        return Err(format!(
            "JWT claim nbf {} is not before exp {}: no verifier ever accepts this token",
            crate::timefmt::rfc3339(nbf),
            crate::timefmt::rfc3339(exp)
        ));
    }
    let mut c = Credential::new(Kind::Jwt, fingerprint).expiring(exp);
    c.not_before = nbf.or(iat);
    let text_claim = |name: &str| claims.get(name).and_then(Value::as_str);
    c.identity.set_subject(text_claim("sub"));
    c.identity.set_issuer(text_claim("iss"));
    if let Some(k8s) = claims.get("kubernetes.io") {
        c.set_warn_after(k8s.get("warnafter").and_then(parse_unix));
    }
    if exp.is_none() {
        c.set_note(Some("JWT without exp: it never expires".into()));
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
                    c.set_note(None);
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
        assert_eq!(c.identity.subject(), Some("alice"));
        assert_eq!(c.identity.issuer(), Some("https://issuer"));
    }

    #[test]
    fn bound_token_warnafter() {
        let c = token_credential(&jwt(
            r#"{"exp":1731536000,"nbf":1700000000,"kubernetes.io":{"warnafter":1700003607}}"#,
        ))
        .unwrap();
        assert_eq!(c.warn_after(), Some(1_700_003_607));
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
    fn jwe_with_alg_dir_has_an_empty_key_segment() {
        let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"dir","enc":"A256GCM"}"#);
        let token = format!("{header}..aXYtMTItYnl0ZXM.Y2lwaGVy.dGFn");
        assert!(looks_like_jwt(&token));
        assert_eq!(token_credential(&token).unwrap().kind, Kind::OpaqueToken);
        // Only the key may be empty; a JWS's payload may not.
        assert!(!looks_like_jwt(&format!("{header}..aXY..dGFn")));
        assert!(!looks_like_jwt(&format!("{header}..c2ln")));
    }

    fn raw_jwt(payload: &str) -> String {
        format!(
            "{}.{}.c2ln",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256"}"#),
            URL_SAFE_NO_PAD.encode(payload)
        )
    }

    #[test]
    fn a_claim_out_of_range_is_named() {
        let range = "is out of range: not a date in the years 1 to 9999";
        for (payload, claim) in [
            (r#"{"exp":1e400}"#, "exp"),
            (r#"{"exp":-1e400}"#, "exp"),
            (r#"{"exp":1e300}"#, "exp"),
            (r#"{"exp":1,"iat":1e999}"#, "iat"),
        ] {
            let err = token_credential(&raw_jwt(payload)).unwrap_err();
            assert_eq!(err, format!("JWT claim {claim} {range}"), "{payload}");
        }
        let c = token_credential(&raw_jwt(r#"{"x":1e400,"exp":1700000000}"#)).unwrap();
        assert_eq!(c.not_after, Some(1_700_000_000));
        let err = token_credential(&raw_jwt(r#"{"exp":true}"#)).unwrap_err();
        assert_eq!(err, "JWT claim exp is not a NumericDate");
        for broken in [r#"{"x":1e400"#, "[1]", r#"{"exp":1} x"#] {
            let err = token_credential(&raw_jwt(broken)).unwrap_err();
            assert_eq!(err, "JWT payload is not base64url-encoded JSON", "{broken}");
        }
    }

    #[test]
    fn nbf_not_before_exp_is_never_valid() {
        let err = token_credential(&jwt(r#"{"nbf":1700003600,"exp":1700000000}"#)).unwrap_err();
        assert_eq!(
            err,
            "JWT claim nbf 2023-11-14T23:13:20Z is not before exp 2023-11-14T22:13:20Z: \
             no verifier ever accepts this token"
        );
        assert!(token_credential(&jwt(r#"{"nbf":1700000000,"exp":1700000000}"#)).is_err());
        assert!(token_credential(&jwt(r#"{"nbf":1699999999,"exp":1700000000}"#)).is_ok());
        // iat is no bound: a clock-skewed issuer may stamp it late.
        assert!(token_credential(&jwt(r#"{"iat":1700003600,"exp":1700000000}"#)).is_ok());
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
