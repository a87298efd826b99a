//! Kubernetes Secrets and ConfigMaps, as `kubectl get -o yaml|json` prints
//! them: TLS secrets, service-account tokens, bootstrap tokens, and any
//! other value sniffed by content, whatever its key is called.
//!
//! Only key names reach entries and errors; values never do.

use super::{Context, Parsed, get, get_str, sniff};
use crate::credential::{
    Credential, ErrorReason, ExpirySource, Fingerprint, Kind, ObjectRef, Source,
};
use crate::timefmt::parse_timestamp;
use serde_json::{Map, Value};

/// Helm release payloads: large, gzip'd, never credentials.
const SKIPPED_TYPES: &[&str] = &["helm.sh/release.v1"];

const LEGACY_INVALID_SINCE: &str = "kubernetes.io/legacy-token-invalid-since";

struct Object<'v> {
    namespace: String,
    name: String,
    labels: Option<&'v Map<String, Value>>,
}

fn object(doc: &Value) -> Object<'_> {
    let meta = get(doc, "metadata");
    let s = |k: &str| {
        meta.and_then(|m| get_str(m, k))
            .unwrap_or_default()
            .to_string()
    };
    Object {
        namespace: s("namespace"),
        name: s("name"),
        labels: meta
            .and_then(|m| get(m, "labels"))
            .and_then(Value::as_object),
    }
}

fn object_context<'a>(
    ctx: &Context<'a>,
    what: &str,
    obj: &Object,
    key: &str,
    source: Source,
) -> Context<'a> {
    let id = if obj.namespace.is_empty() {
        obj.name.clone()
    } else {
        format!("{}/{}", obj.namespace, obj.name)
    };
    let outer = ctx
        .entry
        .as_deref()
        .map(|e| format!("{e} "))
        .unwrap_or_default();
    Context {
        path: ctx.path,
        source,
        entry: Some(format!("{outer}{what} {id} {key}")),
        object: Some(ObjectRef {
            namespace: obj.namespace.clone(),
            name: obj.name.clone(),
            key: key.to_string(),
            labels: Vec::new(),
        }),
        depth: ctx.depth + 1,
        passwords: ctx.passwords,
    }
}

/// Values by key: `data` is base64, `stringData` is text (and wins).
fn values(
    doc: &Value,
    ctx: &Context,
    obj: &Object,
    what: &str,
    b64_field: &str,
    text_field: &str,
    out: &mut Parsed,
) -> Vec<(String, Vec<u8>)> {
    let mut vals: Vec<(String, Vec<u8>)> = Vec::new();
    if let Some(data) = get(doc, b64_field).and_then(Value::as_object) {
        for (key, v) in data {
            let Some(text) = v.as_str() else { continue };
            match super::x509::decode_b64(text) {
                Ok(bytes) => vals.push((key.clone(), bytes)),
                Err(e) => {
                    let source = if what == "secret" {
                        Source::Secret
                    } else {
                        Source::Configmap
                    };
                    let kctx = object_context(ctx, what, obj, key, source);
                    out.error(&kctx, "", ErrorReason::Parse, format!("{b64_field}: {e}"));
                }
            }
        }
    }
    if let Some(data) = get(doc, text_field).and_then(Value::as_object) {
        for (key, v) in data {
            if let Some(text) = v.as_str() {
                vals.retain(|(k, _)| k != key);
                vals.push((key.clone(), text.as_bytes().to_vec()));
            }
        }
    }
    vals.sort_by(|a, b| a.0.cmp(&b.0));
    vals
}

pub(crate) fn secret(ctx: &Context, doc: &Value, out: &mut Parsed) {
    let secret_type = get_str(doc, "type").unwrap_or("Opaque");
    if SKIPPED_TYPES.contains(&secret_type) {
        return;
    }
    let obj = object(doc);
    let vals = values(doc, ctx, &obj, "secret", "data", "stringData", out);
    let text = |key: &str| {
        vals.iter()
            .find(|(k, _)| k == key)
            .and_then(|(_, v)| std::str::from_utf8(v).ok())
            .map(str::trim)
    };
    if secret_type == "bootstrap.kubernetes.io/token" {
        bootstrap_token(
            ctx,
            &obj,
            text("token-id"),
            text("token-secret"),
            text("expiration"),
            out,
        );
        return;
    }
    // Keystore passwords live beside the keystore (`keystore-password`, `password`).
    let passwords: Vec<&str> = vals
        .iter()
        .filter(|(k, _)| k.to_ascii_lowercase().contains("password"))
        .filter_map(|(_, v)| std::str::from_utf8(v).ok())
        .map(str::trim)
        .collect();
    for (key, bytes) in &vals {
        let lower = key.to_ascii_lowercase();
        if lower.contains("password") || lower.ends_with(".key") || lower == "namespace" {
            continue;
        }
        let kctx = object_context(ctx, "secret", &obj, key, Source::Secret);
        let before = out.credentials.len();
        sniff::value(&kctx, Source::Secret, bytes, &passwords, out);
        if secret_type == "kubernetes.io/service-account-token" && key == "token" {
            legacy_token(&obj, &mut out.credentials[before..]);
        }
    }
}

/// A legacy service-account token has no `exp`. The API server labels it
/// once it stops accepting it.
fn legacy_token(obj: &Object, found: &mut [Credential]) {
    let invalid_since = obj
        .labels
        .and_then(|l| l.get(LEGACY_INVALID_SINCE))
        .and_then(Value::as_str)
        .and_then(|d| parse_timestamp(&format!("{d}T00:00:00Z")).or_else(|| parse_timestamp(d)));
    for c in found
        .iter_mut()
        .filter(|c| c.kind == Kind::Jwt && c.not_after.is_none())
    {
        match invalid_since {
            Some(t) => {
                c.not_after = Some(t);
                c.expiry_source = ExpirySource::Embedded;
                c.note = Some(format!(
                    "legacy service-account token: the API server rejects it ({LEGACY_INVALID_SINCE})"
                ));
            }
            None => {
                c.note = Some(
                    "legacy service-account token: it never expires; prefer bound tokens".into(),
                );
            }
        }
    }
}

fn bootstrap_token(
    ctx: &Context,
    obj: &Object,
    id: Option<&str>,
    secret: Option<&str>,
    expiration: Option<&str>,
    out: &mut Parsed,
) {
    let kctx = object_context(ctx, "secret", obj, "token-secret", Source::Secret);
    let (Some(id), Some(secret)) = (id, secret) else {
        out.error(
            &kctx,
            "",
            ErrorReason::Parse,
            "bootstrap token secret lacks token-id or token-secret",
        );
        return;
    };
    let not_after = match expiration {
        None | Some("") => None,
        Some(e) => match parse_timestamp(e) {
            Some(t) => Some(t),
            None => {
                let ectx = object_context(ctx, "secret", obj, "expiration", Source::Secret);
                out.error(
                    &ectx,
                    "",
                    ErrorReason::Parse,
                    "expiration is not an RFC 3339 time",
                );
                return;
            }
        },
    };
    let token = format!("{id}.{secret}");
    let mut c = Credential::new(Kind::BootstrapToken, Fingerprint::of(token.as_bytes()))
        .expiring(not_after);
    // The token id is public (it names the Secret); the secret half is not.
    c.identity.subject = Some(id.to_string());
    if not_after.is_none() {
        c.note = Some("bootstrap token without expiration: it never expires".into());
    }
    out.add(&kctx, Source::Secret, "", None, c);
}

pub(crate) fn config_map(ctx: &Context, doc: &Value, out: &mut Parsed) {
    let obj = object(doc);
    let vals = values(doc, ctx, &obj, "configmap", "binaryData", "data", out);
    for (key, bytes) in &vals {
        let kctx = object_context(ctx, "configmap", &obj, key, Source::Configmap);
        sniff::value(&kctx, Source::Configmap, bytes, &[], out);
    }
}
