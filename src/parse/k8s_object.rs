//! Kubernetes Secrets and ConfigMaps: TLS secrets, service-account tokens,
//! bootstrap tokens, and any other value sniffed by content, whatever its
//! key is called.
//!
//! Two ways in, one reading: a document as `kubectl get -o yaml|json`
//! prints it (its `data` in base64) is decoded here, and an object from
//! the API arrives as [`K8sObject`] with its values already decoded; both
//! then go through [`object`]. Only key names reach entries and errors;
//! values never do.

use super::record::{Context, Parsed, get, get_str};

/// Reads one value by its content: the sniffer's `value`.
pub(crate) type Sniff = fn(&Context, Source, &[u8], &[&str], &mut Parsed);
use crate::credential::{
    Credential, ErrorReason, ExpirySource, Fingerprint, Kind, ObjectRef, Source,
};
use crate::timefmt::parse_timestamp;
use serde_json::Value;

/// Helm release payloads: large, gzip'd, never credentials.
const SKIPPED_TYPES: &[&str] = &["helm.sh/release.v1"];

const LEGACY_INVALID_SINCE: &str = "kubernetes.io/legacy-token-invalid-since";

/// Which kind of object a [`K8sObject`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum K8sKind {
    Secret,
    ConfigMap,
}

impl K8sKind {
    fn what(self) -> &'static str {
        match self {
            K8sKind::Secret => "secret",
            K8sKind::ConfigMap => "configmap",
        }
    }

    fn source(self) -> Source {
        match self {
            K8sKind::Secret => Source::Secret,
            K8sKind::ConfigMap => Source::Configmap,
        }
    }
}

/// A Secret or ConfigMap with its values already decoded: what the parsers
/// need of it, and nothing else.
#[derive(Clone, Debug)]
pub struct K8sObject<'a> {
    pub kind: K8sKind,
    /// A Secret's `type`; `None` is `Opaque`. Unused for ConfigMaps.
    pub secret_type: Option<&'a str>,
    pub namespace: &'a str,
    pub name: &'a str,
    /// `metadata.labels` (a legacy service-account token's end is one).
    pub labels: Vec<(&'a str, &'a str)>,
    /// Values as bytes: a Secret's `data`, a ConfigMap's `binaryData`.
    pub binary: Vec<(&'a str, &'a [u8])>,
    /// Values as text: a Secret's `stringData`, a ConfigMap's `data`. A key
    /// here wins over the same key in `binary`, as the API server has it.
    pub text: Vec<(&'a str, &'a str)>,
}

impl K8sObject<'_> {
    fn secret_type(&self) -> &str {
        self.secret_type.unwrap_or("Opaque")
    }

    fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| *v)
    }

    /// Values by key, sorted; text wins.
    fn values(&self) -> Vec<(&str, &[u8])> {
        let mut vals: Vec<(&str, &[u8])> = self.binary.clone();
        for (key, text) in &self.text {
            vals.retain(|(k, _)| k != key);
            vals.push((key, text.as_bytes()));
        }
        vals.sort_by(|a, b| a.0.cmp(b.0));
        vals
    }
}

/// `metadata.namespace` and `metadata.name` of a document ("" when absent).
fn meta(doc: &Value) -> (&str, &str) {
    let meta = get(doc, "metadata");
    let s = |k: &str| meta.and_then(|m| get_str(m, k)).unwrap_or_default();
    (s("namespace"), s("name"))
}

/// The string-valued `metadata.labels` of a document.
fn labels(doc: &Value) -> Vec<(&str, &str)> {
    get(doc, "metadata")
        .and_then(|m| get(m, "labels"))
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.as_str(), v.as_str()?)))
        .collect()
}

/// A name as entries and labels show it. Names the API server would
/// refuse never come from it: in a file they are damaged text (a quote
/// gone, so `name:` ran on into a token below it), and only their
/// fingerprint is shown.
fn shown(text: &str, valid: fn(&str) -> bool) -> String {
    if text.is_empty() || valid(text) {
        text.to_string()
    } else {
        format!(
            "<invalid name {}>",
            Fingerprint::of(text.as_bytes()).short(8)
        )
    }
}

/// RFC 1123 label (a namespace): at most 63 of `a-z0-9-`, alphanumeric at
/// both ends.
fn is_label(s: &str) -> bool {
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    s.len() <= 63
        && s.bytes().all(|b| alnum(b) || b == b'-')
        && s.bytes().next().is_some_and(alnum)
        && s.bytes().last().is_some_and(alnum)
}

/// RFC 1123 subdomain (an object's name): labels joined by dots, at most
/// 253 characters.
fn is_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_label)
}

/// A Secret or ConfigMap key: at most 253 of `-._a-zA-Z0-9`.
fn is_key(s: &str) -> bool {
    s.len() <= 253
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

fn object_context<'a>(
    ctx: &Context<'a>,
    kind: K8sKind,
    (namespace, name): (&str, &str),
    key: &str,
) -> Context<'a> {
    let namespace = &shown(namespace, is_label);
    let name = &shown(name, is_subdomain);
    let key = &shown(key, is_key);
    let id = if namespace.is_empty() {
        name.to_string()
    } else {
        format!("{namespace}/{name}")
    };
    let outer = ctx
        .entry
        .as_deref()
        .map(|e| format!("{e} "))
        .unwrap_or_default();
    Context {
        path: ctx.path,
        source: kind.source(),
        entry: Some(format!("{outer}{} {id} {key}", kind.what())),
        object: Some(ObjectRef {
            namespace: namespace.to_string(),
            name: name.to_string(),
            key: key.to_string(),
            labels: Vec::new(),
        }),
        depth: ctx.depth + 1,
        passwords: ctx.passwords,
    }
}

/// A document's base64 field (`data`, `binaryData`) decoded; a value that
/// is not base64 is an error entry naming its key.
fn decode(
    ctx: &Context,
    doc: &Value,
    kind: K8sKind,
    field: &str,
    out: &mut Parsed,
) -> Vec<(String, Vec<u8>)> {
    let mut vals = Vec::new();
    for (key, v) in get(doc, field)
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        let Some(text) = v.as_str() else { continue };
        match super::x509::decode_b64(text) {
            Ok(bytes) => vals.push((key.clone(), bytes)),
            Err(e) => {
                let kctx = object_context(ctx, kind, meta(doc), key);
                out.error(&kctx, "", ErrorReason::Parse, format!("{field}: {e}"));
            }
        }
    }
    vals
}

/// A document's text field (`stringData`, a ConfigMap's `data`).
fn text<'v>(doc: &'v Value, field: &str) -> Vec<(&'v str, &'v str)> {
    get(doc, field)
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.as_str(), v.as_str()?)))
        .collect()
}

/// A document read as `kind`: its base64 values decoded, then [`object`].
fn document(ctx: &Context, doc: &Value, kind: K8sKind, value: Sniff, out: &mut Parsed) {
    let (b64_field, text_field) = match kind {
        K8sKind::Secret => ("data", "stringData"),
        K8sKind::ConfigMap => ("binaryData", "data"),
    };
    let secret_type = match kind {
        K8sKind::Secret => get_str(doc, "type"),
        K8sKind::ConfigMap => None,
    };
    if kind == K8sKind::Secret && SKIPPED_TYPES.contains(&secret_type.unwrap_or("Opaque")) {
        return;
    }
    let decoded = decode(ctx, doc, kind, b64_field, out);
    let (namespace, name) = meta(doc);
    let obj = K8sObject {
        kind,
        secret_type,
        namespace,
        name,
        labels: labels(doc),
        binary: decoded
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_slice()))
            .collect(),
        text: text(doc, text_field),
    };
    object(ctx, &obj, value, out);
}

pub(crate) fn secret(ctx: &Context, doc: &Value, value: Sniff, out: &mut Parsed) {
    document(ctx, doc, K8sKind::Secret, value, out);
}

pub(crate) fn config_map(ctx: &Context, doc: &Value, value: Sniff, out: &mut Parsed) {
    document(ctx, doc, K8sKind::ConfigMap, value, out);
}

/// Reads one decoded object: the single place its values are interpreted.
/// `value` reads each value by its content (the sniffer's `value`): passed
/// in, so that this module, which the sniffer calls, does not call it back.
pub(crate) fn object(ctx: &Context, obj: &K8sObject, value: Sniff, out: &mut Parsed) {
    match obj.kind {
        K8sKind::Secret => secret_object(ctx, obj, value, out),
        K8sKind::ConfigMap => {
            for (key, bytes) in obj.values() {
                let kctx = object_context(ctx, obj.kind, (obj.namespace, obj.name), key);
                value(&kctx, Source::Configmap, bytes, &[], out);
            }
        }
    }
}

fn secret_object(ctx: &Context, obj: &K8sObject, value: Sniff, out: &mut Parsed) {
    let secret_type = obj.secret_type();
    if SKIPPED_TYPES.contains(&secret_type) {
        return;
    }
    let vals = obj.values();
    let text = |key: &str| {
        vals.iter()
            .find(|(k, _)| *k == key)
            .and_then(|(_, v)| std::str::from_utf8(v).ok())
            .map(str::trim)
    };
    if secret_type == "bootstrap.kubernetes.io/token" {
        bootstrap_token(
            ctx,
            obj,
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
        let kctx = object_context(ctx, obj.kind, (obj.namespace, obj.name), key);
        let before = out.credentials.len();
        value(&kctx, Source::Secret, bytes, &passwords, out);
        if secret_type == "kubernetes.io/service-account-token" && *key == "token" {
            legacy_token(obj, &mut out.credentials[before..]);
        }
    }
}

/// A legacy service-account token has no `exp`. The API server labels it
/// once it stops accepting it.
fn legacy_token(obj: &K8sObject, found: &mut [Credential]) {
    let invalid_since = obj
        .label(LEGACY_INVALID_SINCE)
        .and_then(|d| parse_timestamp(&format!("{d}T00:00:00Z")).or_else(|| parse_timestamp(d)));
    for c in found
        .iter_mut()
        .filter(|c| c.kind == Kind::Jwt && c.not_after.is_none())
    {
        match invalid_since {
            Some(t) => {
                c.not_after = Some(t);
                c.expiry_source = ExpirySource::Embedded;
                c.set_note(Some(format!(
                    "legacy service-account token: the API server rejects it ({LEGACY_INVALID_SINCE})"
                )));
            }
            None => {
                c.set_note(Some(
                    "legacy service-account token: it never expires; prefer bound tokens".into(),
                ));
            }
        }
    }
}

fn bootstrap_token(
    ctx: &Context,
    obj: &K8sObject,
    id: Option<&str>,
    secret: Option<&str>,
    expiration: Option<&str>,
    out: &mut Parsed,
) {
    let meta = (obj.namespace, obj.name);
    let kctx = object_context(ctx, obj.kind, meta, "token-secret");
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
                let ectx = object_context(ctx, obj.kind, meta, "expiration");
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
    c.identity.set_subject(Some(id));
    if not_after.is_none() {
        c.set_note(Some(
            "bootstrap token without expiration: it never expires".into(),
        ));
    }
    out.add(&kctx, Source::Secret, "", None, c);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::{parse_document, parse_object};
    use base64::Engine;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

    fn jwt(claims: &str) -> String {
        format!(
            "{}.{}.c2lnbmF0dXJl",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256"}"#),
            URL_SAFE_NO_PAD.encode(claims)
        )
    }

    #[test]
    fn a_decoded_object_reads_as_its_document_does() {
        let token = jwt(r#"{"sub":"system:serviceaccount:ci:old"}"#);
        let stale = jwt(r#"{"sub":"stale","exp":1700000000}"#);
        let doc = serde_json::json!({
            "kind": "Secret",
            "type": "kubernetes.io/service-account-token",
            "metadata": {"namespace": "ci", "name": "old",
                         "labels": {LEGACY_INVALID_SINCE: "2026-01-01", "n": 3}},
            "data": {"token": STANDARD.encode(&stale), "namespace": STANDARD.encode("ci")},
            "stringData": {"token": token},
        });
        let obj = K8sObject {
            kind: K8sKind::Secret,
            secret_type: Some("kubernetes.io/service-account-token"),
            namespace: "ci",
            name: "old",
            labels: vec![(LEGACY_INVALID_SINCE, "2026-01-01")],
            binary: vec![("token", stale.as_bytes()), ("namespace", b"ci")],
            text: vec![("token", &token)],
        };
        let path = "/api/v1/namespaces/ci/secrets/old";
        let from_doc = parse_document(path, &doc, &[]);
        let direct = parse_object(path, &obj, &[]);
        assert_eq!(direct.credentials, from_doc.credentials);
        assert_eq!(direct.errors, from_doc.errors);
        // stringData won, and the label set the end.
        assert_eq!(direct.credentials.len(), 1);
        assert_eq!(
            direct.credentials[0].identity.subject(),
            Some("system:serviceaccount:ci:old")
        );
        assert!(direct.credentials[0].not_after.is_some());
    }

    #[test]
    fn bad_base64_in_a_document_names_its_key() {
        let doc = serde_json::json!({
            "kind": "ConfigMap", "metadata": {"name": "m"},
            "binaryData": {"ca.der": "not base64!"},
        });
        let parsed = parse_document("dump.yaml", &doc, &[]);
        assert_eq!(parsed.errors.len(), 1);
        assert_eq!(
            parsed.errors[0].entry.as_deref(),
            Some("configmap m ca.der")
        );
        assert!(
            parsed.errors[0]
                .message
                .starts_with("binaryData: invalid base64")
        );
    }

    /// A damaged dump: the name's closing quote is gone, so the quoted
    /// scalar runs on into a token pasted below it. The entry must not
    /// echo it (a real object name never holds such text).
    #[test]
    fn a_name_that_swallowed_a_token_is_not_shown() {
        let token = jwt(r#"{"sub":"a"}"#);
        let text = format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: \"web\n    {token}\"\n  namespace: prod\ndata:\n  tls.crt: bm90IGJhc2U2NA!!\n"
        );
        let parsed = crate::parse::parse_file("dump.yaml", text.as_bytes());
        let name = format!("web {token}");
        let hidden = format!(
            "<invalid name {}>",
            Fingerprint::of(name.as_bytes()).short(8)
        );
        assert_eq!(parsed.errors.len(), 1, "{:?}", parsed.errors);
        assert_eq!(
            parsed.errors[0].entry.as_deref(),
            Some(format!("secret prod/{hidden} tls.crt").as_str())
        );
        assert!(!format!("{parsed:?}").contains("c2lnbmF0dXJl"));
    }

    #[test]
    fn names_as_the_api_server_accepts_them_are_shown() {
        assert_eq!(shown("kube-root-ca.crt", is_subdomain), "kube-root-ca.crt");
        assert_eq!(shown("", is_label), "");
        assert_eq!(shown("kube-system", is_label), "kube-system");
        assert_eq!(shown("tls.crt", is_key), "tls.crt");
        assert_eq!(shown("ca_bundle-2.pem", is_key), "ca_bundle-2.pem");
        for (bad, valid) in [
            ("Web", is_subdomain as fn(&str) -> bool),
            ("a..b", is_subdomain),
            ("-a", is_label),
            ("a.b", is_label),
            ("a b", is_key),
        ] {
            assert!(shown(bad, valid).starts_with("<invalid name "), "{bad}");
        }
    }
}
