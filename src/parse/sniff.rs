//! Recognising content by what it is.
//!
//! Order matters: structured documents (kubeconfigs, Kubernetes objects,
//! token caches) first, because they may embed PEM text that must be
//! attributed to its field; then PEM, DER/PKCS#12 and bare tokens. Binary
//! bytes are Java keystores (JKS, JCEKS), UTF-16 text with a byte-order
//! mark (read as the text it is) or DER. Text that is none of these is
//! skipped quietly; a structured document that mentions credentials but
//! does not parse is an error.

use super::record::{Context, MAX_DEPTH, Parsed};
use super::{jks, jwt, k8s_object, kubeconfig, token_files, x509};
use crate::credential::{ErrorReason, Source};
use crate::yaml;
use serde_json::Value;

/// File name endings that promise a credential. Content decides what a file
/// is; the name only decides whether unrecognised content is an error.
const CREDENTIAL_EXTENSIONS: &[&str] = &[
    "crt",
    "cer",
    "cert",
    "pem",
    "der",
    "p12",
    "pfx",
    "p7b",
    "p7c",
    "jks",
    "jceks",
    "keystore",
    "truststore",
    "ks",
    "jwt",
    "kubeconfig",
];

/// True when the file name says "certificate or token" (`tls.crt`, `token`).
pub fn looks_like_credential_name(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path).to_ascii_lowercase();
    // `cacerts`: the JDK's truststore, a JKS or PKCS#12 file without an ending.
    if name == "token" || name == "cacerts" || name.ends_with(".token") || name.ends_with("-token")
    {
        return true;
    }
    name.rsplit_once('.')
        .is_some_and(|(_, ext)| CREDENTIAL_EXTENSIONS.contains(&ext))
}

/// Words whose presence makes a document that fails to parse worth an
/// error entry rather than a quiet skip.
const CREDENTIAL_WORDS: &[&str] = &[
    "certificate",
    "token",
    "-----BEGIN",
    "apiVersion",
    "clusters",
    "client-key",
    "expires",
    "expiration",
];

/// Lucene's codec header (`CodecUtil.writeHeader`: the big-endian magic
/// `0x3FD76C17`, then the codec's name and version). Elasticsearch's
/// secure settings, `config/elasticsearch.keystore`, are such a file, not a
/// Java keystore: it holds passwords and keys, never a certificate, so it is
/// recognised and skipped like a key, whatever its `.keystore` name says.
fn is_lucene_file(bytes: &[u8]) -> bool {
    bytes.starts_with(&[0x3f, 0xd7, 0x6c, 0x17])
}

/// Parses a whole file. Returns false when nothing in it was recognised
/// (an empty file counts as recognised: there is nothing to miss).
///
/// With `keep`, the file's first YAML/JSON document (never one nested in
/// it) is handed back there: `issued_at: field:` rules read it, so the
/// file is not parsed twice.
pub(crate) fn parse_bytes(
    ctx: &Context,
    bytes: &[u8],
    keep: Option<&mut Option<Value>>,
    out: &mut Parsed,
) -> bool {
    let Ok(text) = std::str::from_utf8(bytes) else {
        if jks::is_keystore(bytes) {
            jks::add_certificates(ctx, ctx.source, "", bytes, &[], out);
            return true;
        }
        if is_lucene_file(bytes) {
            return true;
        }
        // Windows' `Out-File` and `certutil` write PEM as UTF-16.
        if let Some(text) = utf16_text(bytes) {
            return parse_bytes(ctx, text.as_bytes(), keep, out);
        }
        // Binary: DER or PKCS#12, or nothing of ours.
        return x509::add_certificates(ctx, ctx.source, "", bytes, &[], out);
    };
    let trimmed = text.trim_start_matches('\u{feff}').trim();
    if trimmed.is_empty() {
        return true;
    }
    if structured(ctx, trimmed, keep, out) {
        return true;
    }
    if x509::has_pem_armour(trimmed.as_bytes()) {
        return x509::add_certificates(ctx, ctx.source, "", trimmed.as_bytes(), &[], out);
    }
    // A certificate saved still base64-encoded, as `kubectl get secret -o
    // jsonpath='{.data.tls\.crt}' > tls.crt` leaves it: a certificate, not
    // a token that never expires.
    if let Some(decoded) = base64_certificate(trimmed) {
        return x509::add_certificates(ctx, ctx.source, "", &decoded, &[], out);
    }
    // A JSON object is a document, never a token, even on one line.
    if !is_single_token(trimmed) || trimmed.starts_with('{') {
        return false;
    }
    if jwt::looks_like_jwt(trimmed) || looks_like_credential_name(ctx.path) {
        jwt::add_token(ctx, ctx.source, "", trimmed, out);
        return true;
    }
    // A whole file base64-encoded (MOC login files arrive this way).
    base64_document(trimmed).is_some_and(|inner| structured(&ctx.child(""), &inner, None, out))
}

/// The text of UTF-16 bytes that start with a byte-order mark (either
/// order), as UTF-8 without the mark; `None` for anything else, invalid
/// UTF-16 included. The text is at most 1.5 times the bytes' length.
fn utf16_text(bytes: &[u8]) -> Option<String> {
    let big_endian = match bytes {
        [0xff, 0xfe, ..] => false,
        [0xfe, 0xff, ..] => true,
        _ => return None,
    };
    if !bytes.len().is_multiple_of(2) {
        return None;
    }
    let units = bytes[2..].chunks_exact(2).map(|u| {
        if big_endian {
            u16::from_be_bytes([u[0], u[1]])
        } else {
            u16::from_le_bytes([u[0], u[1]])
        }
    });
    let text: String = char::decode_utf16(units).collect::<Result<_, _>>().ok()?;
    // Text, not binary that happens to start like a mark: no control
    // characters besides line ends and tabs.
    let textual = !text
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'));
    textual.then_some(text)
}

/// One line of token-ish characters, nothing else.
fn is_single_token(text: &str) -> bool {
    (16..=64 * 1024).contains(&text.len())
        && !text.contains(char::is_whitespace)
        && text.bytes().all(|b| b.is_ascii_graphic())
}

/// The bytes of base64 text (line-wrapped or not) that decode to PEM
/// armour or to one DER certificate; `None` for anything else.
fn base64_certificate(text: &str) -> Option<Vec<u8>> {
    let alphabet = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=');
    if text.len() < 64 || !text.bytes().all(|b| alphabet(b) || b.is_ascii_whitespace()) {
        return None;
    }
    let bytes = x509::decode_b64(text).ok()?;
    let is_certificate = x509::has_pem_armour(&bytes) || x509::certificate_from_der(&bytes).is_ok();
    is_certificate.then_some(bytes)
}

fn base64_document(text: &str) -> Option<String> {
    use base64::Engine;
    let bytes = x509::B64.decode(text).ok()?;
    let inner = String::from_utf8(bytes).ok()?;
    inner.contains(':').then_some(inner)
}

/// Parses YAML or JSON and hands each document to the recognisers.
/// Returns true when the text was a structured document of ours (even a
/// broken one that got an error entry). The first document goes to `keep`.
fn structured(
    ctx: &Context,
    text: &str,
    keep: Option<&mut Option<Value>>,
    out: &mut Parsed,
) -> bool {
    let first = text.as_bytes()[0];
    let docs: Result<Vec<Value>, String> = if first == b'{' || first == b'[' {
        serde_json::from_str::<Value>(text)
            .map(|v| vec![v])
            .map_err(|e| format!("invalid JSON at line {} column {}", e.line(), e.column()))
    } else if text.starts_with("-----BEGIN") || !looks_like_yaml_mapping(text) {
        return false;
    } else {
        yaml::documents(text)
    };
    match docs {
        Ok(docs) => {
            let mut recognised = false;
            for doc in &docs {
                recognised |= document(ctx, doc, out);
            }
            // Moved, not copied: the tree was going to be dropped here.
            if let Some(keep) = keep {
                *keep = docs.into_iter().next();
            }
            recognised
        }
        Err(message) => {
            // PEM armour at the start of a line cannot sit inside a YAML
            // document: this is PEM with prose above it (`openssl x509
            // -text`), which only looked like YAML. Let the PEM reader have it.
            if text
                .split(['\n', '\r'])
                .any(|l| l.starts_with("-----BEGIN "))
            {
                return false;
            }
            // Go templates (Helm charts) are not credentials, whatever they mention.
            if text.contains("{{") {
                tracing::debug!(path = ctx.path, "template, not a document; skipped");
                return false;
            }
            if CREDENTIAL_WORDS.iter().any(|w| text.contains(w)) {
                out.error(ctx, "", ErrorReason::Parse, message);
                true
            } else {
                false
            }
        }
    }
}

/// A cheap test before running a YAML parser over arbitrary text: some
/// line must start with `key:` (or `- key:` / `---`).
fn looks_like_yaml_mapping(text: &str) -> bool {
    // Both line ends: old Mac OS files end their lines in CR alone.
    text.split(['\n', '\r']).take(200).any(|line| {
        let line = line.trim_start_matches("- ");
        if line == "---" {
            return true;
        }
        let key_len = line
            .bytes()
            .take_while(|b| {
                b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'"' | b'\'')
            })
            .count();
        key_len > 0 && line[key_len..].starts_with(':')
    })
}

/// Dispatches one YAML/JSON document. Returns true when recognised.
pub(crate) fn document(ctx: &Context, doc: &Value, out: &mut Parsed) -> bool {
    if ctx.depth > MAX_DEPTH {
        return false;
    }
    // Past the cap, a document counts as recognised: its error entry says
    // why it was not read.
    if !out.take_document(ctx) {
        return true;
    }
    let kind = super::record::get_str(doc, "kind").unwrap_or_default();
    if kubeconfig::is_kubeconfig(doc) {
        kubeconfig::parse(ctx, doc, out);
        return true;
    }
    if let Some(items) = super::record::get(doc, "items").and_then(Value::as_array)
        && (kind == "List" || kind.ends_with("List"))
    {
        for (i, item) in items.iter().enumerate() {
            let child = Context {
                depth: ctx.depth + 1,
                ..ctx.clone()
            };
            if !document(&child, item, out) {
                tracing::debug!(path = ctx.path, item = i, "list item not recognised");
            }
        }
        return true;
    }
    match kind {
        "Secret" => {
            k8s_object::secret(ctx, doc, value, out);
            true
        }
        "ConfigMap" => {
            k8s_object::config_map(ctx, doc, value, out);
            true
        }
        _ => token_files::parse(ctx, doc, out) || loose_values(ctx, doc, out),
    }
}

/// Strings this many levels deep, and this many in all, are looked at in a
/// document of no known shape.
const LOOSE_MAX_DEPTH: usize = 16;
const LOOSE_MAX_STRINGS: usize = 10_000;

/// A document of no known shape (Vault's `pki/issue` output, a Helm values
/// file, an app's config): certificates in PEM and JWTs found in any string
/// value are still reported, at their field path (`data.certificate`).
fn loose_values(ctx: &Context, doc: &Value, out: &mut Parsed) -> bool {
    fn walk(
        ctx: &Context,
        v: &Value,
        at: &mut String,
        depth: usize,
        budget: &mut usize,
        out: &mut Parsed,
    ) -> bool {
        if depth > LOOSE_MAX_DEPTH || *budget == 0 {
            return false;
        }
        let mut found = false;
        let mut step = |at: &mut String, part: &str, child: &Value, out: &mut Parsed| {
            let len = at.len();
            if !at.is_empty() && !part.starts_with('[') {
                at.push('.');
            }
            at.push_str(part);
            found |= walk(ctx, child, at, depth + 1, budget, out);
            at.truncate(len);
        };
        match v {
            Value::Object(map) => {
                for (k, child) in map {
                    step(at, k, child, out);
                }
            }
            Value::Array(items) => {
                for (i, child) in items.iter().enumerate() {
                    step(at, &format!("[{i}]"), child, out);
                }
            }
            Value::String(s) => {
                *budget -= 1;
                let text = s.trim();
                if text.contains("-----BEGIN CERTIFICATE-----")
                    || text.contains("-----BEGIN TRUSTED CERTIFICATE-----")
                {
                    x509::add_certificates(ctx, ctx.source, at, text.as_bytes(), &[], out);
                    return true;
                }
                if is_single_token(text) && jwt::looks_like_jwt(text) {
                    jwt::add_token(ctx, ctx.source, at, text, out);
                    return true;
                }
            }
            _ => {}
        }
        found
    }
    let mut budget = LOOSE_MAX_STRINGS;
    walk(ctx, doc, &mut String::new(), 0, &mut budget, out)
}

/// Any value found inside a container (a Secret key, a ConfigMap key):
/// certificates, tokens or a nested document.
pub(crate) fn value(
    ctx: &Context,
    source: Source,
    bytes: &[u8],
    passwords: &[&str],
    out: &mut Parsed,
) {
    if ctx.depth > MAX_DEPTH {
        return;
    }
    if let Ok(text) = std::str::from_utf8(bytes) {
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return;
        }
        let nested = Context {
            source,
            depth: ctx.depth + 1,
            ..ctx.clone()
        };
        if structured(&nested, trimmed, None, out) {
            return;
        }
        if x509::has_pem_armour(trimmed.as_bytes()) {
            x509::add_certificates(ctx, source, "", trimmed.as_bytes(), passwords, out);
            return;
        }
        if is_single_token(trimmed) && jwt::looks_like_jwt(trimmed) {
            jwt::add_token(ctx, source, "", trimmed, out);
        }
        return;
    }
    if jks::is_keystore(bytes) {
        jks::add_certificates(ctx, source, "", bytes, passwords, out);
        return;
    }
    if let Some(text) = utf16_text(bytes) {
        value(ctx, source, text.as_bytes(), passwords, out);
        return;
    }
    x509::add_certificates(ctx, source, "", bytes, passwords, out);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_names() {
        assert!(looks_like_credential_name("/x/tls.crt"));
        assert!(looks_like_credential_name("keystore.P12"));
        assert!(looks_like_credential_name("/var/run/secrets/token"));
        assert!(looks_like_credential_name("bootstrap-token"));
        assert!(!looks_like_credential_name("/x/tls.key"));
        assert!(!looks_like_credential_name("README.md"));
    }

    #[test]
    fn utf16_text_needs_a_byte_order_mark_and_text() {
        let le: Vec<u8> = [0xfeff_u16, 'a' as u16, '\r' as u16, '\n' as u16]
            .iter()
            .flat_map(|u| u.to_le_bytes())
            .collect();
        let be: Vec<u8> = [0xfeff_u16, 0x00e9]
            .iter()
            .flat_map(|u| u.to_be_bytes())
            .collect();
        assert_eq!(utf16_text(&le).as_deref(), Some("a\r\n"));
        assert_eq!(utf16_text(&be).as_deref(), Some("\u{e9}"));
        // Binary after a mark: a control character, an unpaired surrogate, an odd length.
        assert_eq!(utf16_text(&[0xff, 0xfe, 0x01, 0x00]), None);
        assert_eq!(utf16_text(&[0xff, 0xfe, 0x00, 0xd8]), None);
        assert_eq!(utf16_text(&[0xff, 0xfe, 0x41]), None);
        assert_eq!(utf16_text(b"no mark"), None);
    }

    #[test]
    fn keystore_names_are_credential_names() {
        for name in [
            "a/kafka.truststore.jks",
            "x.JCEKS",
            "es.keystore",
            "t.truststore",
            "k.ks",
            "ca.p7b",
            "ca.p7c",
            "/etc/ssl/certs/java/cacerts",
        ] {
            assert!(looks_like_credential_name(name), "{name}");
        }
        assert!(!looks_like_credential_name("books"));
    }

    /// `elasticsearch.keystore` as CodecUtil lays it out: magic, the codec
    /// name as a one-byte length and its bytes, the format version, then
    /// the encrypted settings.
    #[test]
    fn an_elasticsearch_keystore_is_recognised_and_adds_nothing() {
        let mut bytes = vec![0x3f, 0xd7, 0x6c, 0x17, 22];
        bytes.extend_from_slice(b"elasticsearch.keystore");
        bytes.extend_from_slice(&[0, 0, 0, 4, 1, 0x9c, 0xff, 0x00, 0x81]);
        let parsed = crate::parse::parse_file("config/elasticsearch.keystore", &bytes);
        assert_eq!((parsed.credentials.len(), parsed.errors.len()), (0, 0));
        bytes[0] = 0x3e;
        let parsed = crate::parse::parse_file("config/elasticsearch.keystore", &bytes);
        assert_eq!(
            parsed
                .errors
                .iter()
                .map(|e| e.message.as_str())
                .collect::<Vec<_>>(),
            ["named like a certificate or token, but holds no format lapse recognises"]
        );
    }

    #[test]
    fn yaml_mapping_heuristic() {
        assert!(looks_like_yaml_mapping("apiVersion: v1\nkind: Config"));
        assert!(looks_like_yaml_mapping("# c\n\"token\": x"));
        assert!(looks_like_yaml_mapping("- name: x"));
        assert!(!looks_like_yaml_mapping(
            "just some prose, with: a colon later"
        ));
    }
}
