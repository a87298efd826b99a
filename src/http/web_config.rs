//! `--web.config.file`: the Prometheus exporter-toolkit web configuration
//! (TLS, client certificates, basic auth, extra response headers), so an
//! operator can hand lapse the file node_exporter already reads.
//!
//! Each fixed-shape section is a serde struct beside its component
//! (`tls_server_config` in [`super::tls`], `http_server_config` here);
//! the free-form mappings (`basic_auth_users`, `headers`) are walked.
//! Loading reports every problem at once, each naming its field. This
//! module must never log or keep a password, and never put key,
//! certificate or hash text into an error message.

use std::path::Path;
use std::sync::Arc;

use hyper::header::{HeaderName, HeaderValue};
use prometheus_client::metrics::counter::Counter;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use tokio_rustls::rustls::ServerConfig;

use super::basic_auth::BasicAuth;
use super::tls::{self, TlsServerConfig, io_reason};
use crate::config::section::{self, Flag, Problems, Text, join};
use crate::yaml;

/// The parsed web configuration, ready for the server.
#[derive(Clone, Debug)]
pub struct WebConfig {
    /// Present when the file turns TLS on; ALPN offers `http/1.1` only.
    pub tls: Option<Arc<ServerConfig>>,
    pub basic_auth: BasicAuth,
    /// Added to every response, including 401s.
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

impl WebConfig {
    /// Plain HTTP, no authentication, no extra headers.
    pub fn none() -> WebConfig {
        WebConfig {
            tls: None,
            basic_auth: BasicAuth::disabled(),
            headers: Vec::new(),
        }
    }

    /// Reads and validates the file; relative paths in it are relative to
    /// the file's directory, as in exporter-toolkit. On failure every problem
    /// is returned, each as `field: message`; problems with the file itself
    /// (`cannot read: ...`, `invalid YAML at ...`) do not repeat its path,
    /// which the caller prints in front.
    pub fn load(path: &Path) -> Result<WebConfig, Vec<String>> {
        WebConfig::load_counting(path, Counter::default())
    }

    /// As [`WebConfig::load`]; a serving certificate and key read from
    /// files are looked at again on new connections, and a bad new pair is
    /// counted in `certificate_failures`.
    pub fn load_counting(
        path: &Path,
        certificate_failures: Counter,
    ) -> Result<WebConfig, Vec<String>> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| vec![format!("cannot read: {}", io_reason(&e))])?;
        let root: Value = yaml::from_str(&text).map_err(|e| vec![e])?;
        let base = path.parent().unwrap_or(Path::new(""));
        let mut problems = Problems::default();
        let config = from_value(&root, base, certificate_failures, &mut problems);
        if problems.0.is_empty() {
            Ok(config)
        } else {
            Err(problems.0)
        }
    }
}

fn from_value(root: &Value, base: &Path, failures: Counter, p: &mut Problems) -> WebConfig {
    let mut config = WebConfig::none();
    let Some(fields) = mapping(root, "web config", p) else {
        return config;
    };
    for (name, value) in fields {
        match name.as_str() {
            "tls_server_config" => config.tls = tls_section(value, base, failures.clone(), p),
            "http_server_config" => config.headers = http_section(value, p),
            "basic_auth_users" => config.basic_auth = users_section(value, p),
            // A limiter silently dropped would be worse than a refusal.
            "rate_limit" => p.add(name, "not supported by lapse; remove it"),
            _ => p.unknown(name),
        }
    }
    config
}

/// A mapping of free keys (user names, header names), or `None`; `null`
/// is an empty one.
fn mapping<'a>(value: &'a Value, field: &str, p: &mut Problems) -> Option<&'a Map<String, Value>> {
    match value {
        Value::Object(map) => Some(map),
        Value::Null => None,
        _ => {
            p.add(field, "expected a mapping");
            None
        }
    }
}

/// Section `T` at `at`, read by [`section::read`] one field at a time, so
/// that problems come in the document's key order. `walk` sees each field
/// whose value fits, in that order: a field walked by hand (a mapping of
/// free keys) reports in its place. A key `T` does not name is a plain
/// `unknown field`, as lapse has always said for this file.
fn read_section<T: DeserializeOwned + Default>(
    value: &Value,
    at: &str,
    p: &mut Problems,
    mut walk: impl FnMut(&str, &Value, &mut Problems),
) -> Option<T> {
    let Value::Object(map) = value else {
        return section::read(value, at, p);
    };
    let known = section::field_names::<T>();
    let mut good = Map::new();
    for (key, field) in map {
        if !known.contains(&key.as_str()) {
            p.unknown(&join(at, key));
            continue;
        }
        let one = Value::Object(Map::from_iter([(key.clone(), field.clone())]));
        let before = p.len();
        section::read::<T>(&one, at, p);
        if p.len() == before {
            walk(key, field, p);
            good.insert(key.clone(), field.clone());
        }
    }
    section::read(&Value::Object(good), at, p)
}

// ---- http_server_config

/// exporter-toolkit allows only these headers (and, for two, only these
/// values), to keep the Prometheus ecosystem consistent; lapse mirrors it.
const ALLOWED_HEADERS: &[(&str, &[&str])] = &[
    ("Content-Security-Policy", &[]),
    ("Strict-Transport-Security", &[]),
    ("X-Content-Type-Options", &["nosniff"]),
    ("X-Frame-Options", &["deny", "sameorigin"]),
    ("X-XSS-Protection", &[]),
];

/// `http_server_config`.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct HttpServerConfig {
    /// Header name → value, added to every response; only the names in
    /// [`ALLOWED_HEADERS`].
    headers: Option<Value>,
    /// lapse serves HTTP/1.1 only: `true` is warned about and ignored.
    http2: Flag,
}

fn http_section(value: &Value, p: &mut Problems) -> Vec<(HeaderName, HeaderValue)> {
    let mut headers = Vec::new();
    let at = "http_server_config";
    let walk = |key: &str, value: &Value, p: &mut Problems| {
        if key != "headers" {
            return;
        }
        let field = join(at, key);
        for (header, value) in mapping(value, &field, p).into_iter().flatten() {
            let field = join(&field, header);
            if let Some(pair) = header_pair(header, value, &field, p) {
                headers.push(pair);
            }
        }
    };
    let http = read_section::<HttpServerConfig>(value, at, p, walk);
    if http.is_some_and(|http| http.http2.0 == Some(true)) {
        tracing::warn!("{at}.http2: lapse serves HTTP/1.1 only; ignoring http2: true");
    }
    headers
}

fn header_pair(
    name: &str,
    value: &Value,
    field: &str,
    p: &mut Problems,
) -> Option<(HeaderName, HeaderValue)> {
    let Some(value) = value.as_str() else {
        p.add(field, "expected a string");
        return None;
    };
    let Some((canonical, allowed_values)) = ALLOWED_HEADERS
        .iter()
        .find(|(allowed, _)| allowed.eq_ignore_ascii_case(name))
    else {
        let names: Vec<&str> = ALLOWED_HEADERS.iter().map(|(n, _)| *n).collect();
        p.add(
            field,
            format_args!("this header cannot be set (allowed: {})", names.join(", ")),
        );
        return None;
    };
    if !allowed_values.is_empty() && !allowed_values.iter().any(|v| v.eq_ignore_ascii_case(value)) {
        p.add(
            field,
            format_args!("expected one of {}", allowed_values.join(", ")),
        );
        return None;
    }
    match HeaderValue::from_str(value) {
        Ok(header_value) => Some((HeaderName::from_static(lowercase(canonical)), header_value)),
        Err(_) => {
            p.add(field, "not a valid header value");
            None
        }
    }
}

/// `HeaderName::from_static` wants lowercase names.
fn lowercase(name: &str) -> &'static str {
    match name {
        "Content-Security-Policy" => "content-security-policy",
        "Strict-Transport-Security" => "strict-transport-security",
        "X-Content-Type-Options" => "x-content-type-options",
        "X-Frame-Options" => "x-frame-options",
        _ => "x-xss-protection",
    }
}

// ---- tls_server_config

/// Go's crypto/tls choices that rustls makes for itself.
const IGNORED_TLS_FIELDS: [&str; 3] = [
    "cipher_suites",
    "curve_preferences",
    "prefer_server_cipher_suites",
];

fn tls_section(
    value: &Value,
    base: &Path,
    failures: Counter,
    p: &mut Problems,
) -> Option<Arc<ServerConfig>> {
    let at = "tls_server_config";
    let warn_ignored = |key: &str, _: &Value, _: &mut Problems| {
        if IGNORED_TLS_FIELDS.contains(&key) {
            tracing::warn!("{at}.{key}: ignored; rustls chooses cipher suites and curves");
        }
    };
    let mut tls = read_section::<TlsServerConfig>(value, at, p, warn_ignored)?;
    let fields = value.as_object();
    // A name that is not a client_auth_type still turns TLS on (its problem
    // is reported); a value of the wrong shape does not.
    tls.client_auth_type_invalid = tls.client_auth_type.0.is_none()
        && fields
            .and_then(|f| f.get("client_auth_type"))
            .and_then(|v| serde_json::from_value::<Text>(v.clone()).ok())
            .is_some_and(|name| name.0.is_some());
    if !tls.enabled() {
        if fields.is_some_and(|f| !f.is_empty()) {
            // exporter-toolkit also serves plain HTTP here; say so, at least.
            tracing::warn!("{at}: no cert, key or client CA set; TLS is off");
        }
        return None;
    }
    tls::server_config(&tls, base, failures, p)
}

// ---- basic_auth_users

fn users_section(value: &Value, p: &mut Problems) -> BasicAuth {
    let Some(entries) = mapping(value, "basic_auth_users", p) else {
        return BasicAuth::disabled();
    };
    if entries.is_empty() {
        return BasicAuth::disabled();
    }
    let mut users = Vec::new();
    for (name, hash) in entries {
        let field = format!("basic_auth_users.{name}");
        if name.contains(':') {
            p.add(
                &field,
                "a user name cannot contain ':' (basic auth splits on it)",
            );
            continue;
        }
        let cost = hash
            .as_str()
            .and_then(|h| h.parse::<bcrypt::HashParts>().ok())
            .map(|parts| parts.get_cost())
            .filter(|cost| (4..=31).contains(cost));
        let max = super::basic_auth::MAX_COST;
        match (cost, hash.as_str()) {
            // Every login, and every decoy, would pay 2^cost rounds.
            (Some(cost), Some(_)) if cost > max => p.add(
                &field,
                format_args!("bcrypt cost {cost} is above the maximum of {max}"),
            ),
            (Some(_), Some(hash)) => users.push((name.clone(), hash.to_string())),
            _ => p.add(&field, "not a bcrypt hash"),
        }
    }
    if users.is_empty() {
        return BasicAuth::disabled();
    }
    match BasicAuth::new(users) {
        Ok(auth) => auth,
        Err(e) => {
            p.add(
                "basic_auth_users",
                format_args!("cannot prepare bcrypt: {e}"),
            );
            BasicAuth::disabled()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::testing::{SERVER_FILES, fixture, load, problems};

    #[test]
    fn none_and_empty_files_mean_plain_open_http() {
        let none = WebConfig::none();
        assert!(none.tls.is_none() && none.headers.is_empty());
        assert!(!none.basic_auth.is_enabled());
        assert!(none.basic_auth.authorize(None));

        let dir = tempfile::tempdir().unwrap();
        for yaml in ["", "{}\n", "tls_server_config:\nbasic_auth_users: {}\n"] {
            let config = load(dir.path(), yaml).unwrap();
            assert!(config.tls.is_none(), "{yaml:?}");
            assert!(!config.basic_auth.is_enabled(), "{yaml:?}");
        }
    }

    #[test]
    fn an_unreadable_or_broken_file_is_one_problem() {
        let dir = tempfile::tempdir().unwrap();
        let missing = WebConfig::load(&dir.path().join("nope.yml")).unwrap_err();
        assert_eq!(missing, vec!["cannot read: no such file or directory"]);
        let broken = problems(dir.path(), "basic_auth_users: [\n");
        assert_eq!(broken.len(), 1);
        assert!(broken[0].starts_with("invalid YAML at line "), "{broken:?}");
        let list = problems(dir.path(), "- a\n");
        assert_eq!(list, vec!["web config: expected a mapping"]);
    }

    #[test]
    fn every_problem_is_reported_at_once_and_names_its_field() {
        let (dir, _ca) = fixture();
        let yaml = "tls_server_config:\n  certfile: server.crt\n  key_file: missing.key\n  \
                    client_auth_type: Sometimes\n  min_version: TLS10\n  max_version: TLS9\n\
                    http_server_config:\n  headers:\n    Authorization: x\n    X-Frame-Options: allow\n  \
                    http3: true\n\
                    basic_auth_users:\n  alice: hunter2\n  bob: 5\n\
                    metrics_path: /x\n";
        let found = problems(dir.path(), yaml);
        let missing = dir.path().join("missing.key");
        let expected = [
            "tls_server_config.certfile: unknown field".to_string(),
            format!(
                "tls_server_config.key_file: cannot read {}: no such file or directory",
                missing.display()
            ),
            "tls_server_config.client_auth_type: unknown value \"Sometimes\"".to_string(),
            "tls_server_config.min_version: TLS10 is not supported".to_string(),
            "tls_server_config.max_version: unknown TLS version \"TLS9\"".to_string(),
            "tls_server_config.cert_file: required".to_string(),
            "http_server_config.headers.Authorization: this header cannot be set".to_string(),
            "http_server_config.headers.X-Frame-Options: expected one of deny, sameorigin"
                .to_string(),
            "http_server_config.http3: unknown field".to_string(),
            "basic_auth_users.alice: not a bcrypt hash".to_string(),
            "basic_auth_users.bob: not a bcrypt hash".to_string(),
            "metrics_path: unknown field".to_string(),
        ];
        for want in &expected {
            assert!(
                found.iter().any(|p| p.starts_with(want.as_str())),
                "missing {want:?} in {found:#?}"
            );
        }
        assert_eq!(found.len(), expected.len(), "{found:#?}");
        assert!(!found.iter().any(|p| p.contains("hunter2")), "{found:#?}");
    }

    #[test]
    fn ignored_fields_do_not_fail() {
        let (dir, _ca) = fixture();
        let yaml = format!(
            "{SERVER_FILES}  cipher_suites: [TLS_AES_128_GCM_SHA256]\n  curve_preferences: [X25519]\n  \
             prefer_server_cipher_suites: true\nhttp_server_config:\n  http2: true\n"
        );
        assert!(load(dir.path(), &yaml).unwrap().tls.is_some());
    }

    #[test]
    fn allowed_headers_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let config = load(
            dir.path(),
            "http_server_config:\n  headers:\n    x-frame-options: deny\n    \
             Strict-Transport-Security: max-age=31536000\n",
        )
        .unwrap();
        let headers: Vec<(String, String)> = config
            .headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_string()))
            .collect();
        assert_eq!(
            headers,
            vec![
                (
                    "strict-transport-security".to_string(),
                    "max-age=31536000".to_string()
                ),
                ("x-frame-options".to_string(), "deny".to_string()),
            ]
        );
        assert!(config.tls.is_none());
    }

    #[test]
    fn problems_come_in_key_order_and_unknown_fields_stay_plain() {
        let dir = tempfile::tempdir().unwrap();
        let found = problems(
            dir.path(),
            "http_server_config:\n  http2: yes\n  headers:\n    Foo: bar\n  aaa: 1\n",
        );
        assert_eq!(
            found,
            vec![
                "http_server_config.aaa: unknown field",
                "http_server_config.headers.Foo: this header cannot be set (allowed: \
                 Content-Security-Policy, Strict-Transport-Security, X-Content-Type-Options, \
                 X-Frame-Options, X-XSS-Protection)",
                "http_server_config.http2: expected true or false",
            ]
        );
    }

    #[test]
    fn an_unknown_client_auth_type_is_one_problem_even_with_a_ca() {
        let (dir, _ca) = fixture();
        let found = problems(
            dir.path(),
            &format!("{SERVER_FILES}  client_auth_type: Sometimes\n  client_ca_file: ca.crt\n"),
        );
        assert_eq!(found.len(), 1, "{found:#?}");
        assert!(
            found[0].starts_with("tls_server_config.client_auth_type: unknown value \"Sometimes\""),
            "{found:#?}"
        );
    }

    #[test]
    fn user_names_with_a_colon_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let hash = bcrypt::hash("pw", 4).unwrap();
        let found = problems(
            dir.path(),
            &format!("basic_auth_users:\n  'a:b': '{hash}'\n"),
        );
        assert_eq!(
            found,
            vec!["basic_auth_users.a:b: a user name cannot contain ':' (basic auth splits on it)"]
        );
    }
}
