//! kubeconfig files (client-go `clientcmd/api/v1`): every cluster's CA and
//! every user's certificate, token, auth-provider token and exec plugin.
//!
//! `client-key(-data)` is key material and is never read: only its type is
//! checked. A field of the wrong type (`client-certificate-data: 12345`, a
//! map for `certificate-authority`, a string for `users[].user`), which
//! kubectl refuses the whole file for, is an error entry naming the field;
//! the rest of the file is still read. Messages name the types, never the
//! values.

use super::record::{Context, FileRef, Parsed, RefKind, get, get_str};
use super::{jwt, x509};
use crate::credential::{Credential, ErrorReason, Fingerprint, Kind, Source};
use crate::timefmt::{parse_timestamp, parse_unix};
use serde_json::Value;
use std::path::{Path, PathBuf};

pub(crate) fn is_kubeconfig(doc: &Value) -> bool {
    if get_str(doc, "kind") == Some("Config") {
        return true;
    }
    let list = |k| get(doc, k).is_some_and(Value::is_array);
    (list("clusters") || list("users"))
        && (get(doc, "contexts").is_some() || get(doc, "current-context").is_some())
}

/// The directory relative paths resolve against; `None` for kubeconfigs
/// inside Kubernetes objects, whose paths mean nothing here.
fn base_dir(ctx: &Context) -> Option<PathBuf> {
    if ctx.object.is_some() || ctx.path == "-" {
        return None;
    }
    Some(
        Path::new(ctx.path)
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default(),
    )
}

/// What a YAML/JSON value is, for type errors: never the value itself.
fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
    }
}

/// The entry of one item of a named list: `users[NAME]`, or its position
/// when it has no usable name.
fn item_entry(list: &str, i: usize, name: Option<&str>) -> String {
    match name {
        Some(name) => format!("{list}[{name}]"),
        None => format!("{list}[{i}]"),
    }
}

/// The suffix of a cache reference's entry after the exec user's entry
/// (`users[gke].exec cache`): the scanner links what the cache holds back
/// to the exec user by it.
pub const CACHE_SUFFIX: &str = " cache";

pub(crate) fn parse(ctx: &Context, doc: &Value, out: &mut Parsed) {
    let source = ctx.source_or(Source::Kubeconfig);
    let mut kc = Kubeconfig {
        ctx,
        source,
        base: base_dir(ctx),
        out,
    };
    for (at, item) in kc.named(doc, "clusters") {
        if let Some(cluster) = kc.map(item, "cluster", &format!("{at}.cluster")) {
            kc.certificates(cluster, &at, "certificate-authority");
        }
    }
    for (at, item) in kc.named(doc, "users") {
        if let Some(user) = kc.map(item, "user", &format!("{at}.user")) {
            kc.user(user, &at);
        }
    }
}

struct Kubeconfig<'c, 'a> {
    ctx: &'c Context<'a>,
    source: Source,
    base: Option<PathBuf>,
    out: &'c mut Parsed,
}

impl Kubeconfig<'_, '_> {
    fn wrong_type(&mut self, entry: &str, expected: &str, found: &Value) {
        let message = format!("expected {expected}, found {}", type_name(found));
        self.out.error(self.ctx, entry, ErrorReason::Parse, message);
    }

    /// A non-empty string field at `at.key`. Null (`key:` with nothing
    /// after it) is absent, as kubectl reads it; another type is an error.
    fn string<'v>(&mut self, obj: &'v Value, at: &str, key: &str) -> Option<&'v str> {
        match get(obj, key)? {
            Value::String(s) => Some(s.as_str()).filter(|s| !s.trim().is_empty()),
            Value::Null => None,
            other => {
                self.wrong_type(&format!("{at}.{key}"), "a string", other);
                None
            }
        }
    }

    /// A map field, reported as `entry` when it is something else.
    fn map<'v>(&mut self, obj: &'v Value, key: &str, entry: &str) -> Option<&'v Value> {
        match get(obj, key)? {
            v @ Value::Object(_) => Some(v),
            Value::Null => None,
            other => {
                self.wrong_type(entry, "a map", other);
                None
            }
        }
    }

    /// The items of the top-level list `key` (`clusters`, `users`) with
    /// their entries; a list that is not one, and items that are not maps,
    /// are error entries.
    fn named<'v>(&mut self, doc: &'v Value, key: &str) -> Vec<(String, &'v Value)> {
        let items = match get(doc, key) {
            None | Some(Value::Null) => return Vec::new(),
            Some(Value::Array(items)) => items,
            Some(other) => {
                self.wrong_type(key, "a list", other);
                return Vec::new();
            }
        };
        let mut named = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            if !item.is_object() {
                self.wrong_type(&item_entry(key, i, None), "a map", item);
                continue;
            }
            let name = match get(item, "name") {
                Some(Value::String(name)) => Some(name.as_str()),
                None | Some(Value::Null) => None,
                Some(other) => {
                    let entry = format!("{}.name", item_entry(key, i, None));
                    self.wrong_type(&entry, "a string", other);
                    None
                }
            };
            named.push((item_entry(key, i, name), item));
        }
        named
    }

    /// `<key>-data` (base64 PEM) wins over `<key>` (a path).
    fn certificates(&mut self, obj: &Value, at: &str, key: &str) {
        let data_key = format!("{key}-data");
        let data = self.string(obj, at, &data_key);
        let path = self.string(obj, at, key);
        if let Some(data) = data {
            let entry = format!("{at}.{data_key}");
            match x509::decode_b64(data) {
                Ok(bytes) => x509::certificates(self.ctx, self.source, &entry, &bytes, self.out),
                Err(e) => self.out.error(self.ctx, &entry, ErrorReason::Parse, e),
            }
        } else if let Some(path) = path {
            self.reference(path, format!("{at}.{key}"), RefKind::Certificates, false);
        }
    }

    fn reference(&mut self, path: &str, entry: String, kind: RefKind, optional: bool) {
        let Some(base) = &self.base else { return };
        let r = FileRef {
            // `~/` is expanded by the reader, keeping this parser free of the environment.
            path: if path.starts_with("~/") {
                PathBuf::from(path)
            } else {
                crate::paths::clean(&base.join(path))
            },
            from: self.ctx.path.to_string(),
            entry,
            kind,
            source: self.source,
            optional,
        };
        self.out.add_ref(self.ctx, r);
    }

    /// A list of strings (`exec.args`); items of another type are error
    /// entries and left out.
    fn strings<'v>(&mut self, obj: &'v Value, at: &str, key: &str) -> Vec<&'v str> {
        let items = match get(obj, key) {
            None | Some(Value::Null) => return Vec::new(),
            Some(Value::Array(items)) => items,
            Some(other) => {
                self.wrong_type(&format!("{at}.{key}"), "a list", other);
                return Vec::new();
            }
        };
        let mut strings = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            match item.as_str() {
                Some(s) => strings.push(s),
                None => self.wrong_type(&format!("{at}.{key}[{i}]"), "a string", item),
            }
        }
        strings
    }

    fn token(&mut self, entry: &str, text: &str, expiry: Option<i64>) {
        jwt::add_token_expiring(self.ctx, self.source, entry, text.trim(), expiry, self.out);
    }

    fn user(&mut self, user: &Value, at: &str) {
        self.certificates(user, at, "client-certificate");
        // Key material: its type is checked, its text never read.
        for key in ["client-key", "client-key-data"] {
            let _ = self.string(user, at, key);
        }
        // tokenFile is re-read by client-go and wins over token.
        let token_file = self.string(user, at, "tokenFile");
        let token = self.string(user, at, "token");
        if let Some(path) = token_file {
            self.reference(path, format!("{at}.tokenFile"), RefKind::Token, false);
        } else if let Some(token) = token {
            self.token(&format!("{at}.token"), token, None);
        }
        let provider_at = format!("{at}.auth-provider");
        if let Some(provider) = self.map(user, "auth-provider", &provider_at) {
            self.auth_provider(provider, &provider_at);
        }
        let exec_at = format!("{at}.exec");
        if let Some(exec) = self.map(user, "exec", &exec_at) {
            self.exec(exec, &exec_at);
        }
    }

    fn auth_provider(&mut self, provider: &Value, at: &str) {
        let empty = Value::Null;
        let config_at = format!("{at}.config");
        let config = self.map(provider, "config", &config_at).unwrap_or(&empty);
        match self.string(provider, at, "name").unwrap_or_default() {
            "oidc" => {
                if let Some(t) = self.string(config, at, "id-token") {
                    self.token(&format!("{at}.id-token"), t, None);
                }
                if let Some(t) = self.string(config, at, "refresh-token") {
                    self.token(&format!("{at}.refresh-token"), t, None);
                }
                self.certificates(config, at, "idp-certificate-authority");
            }
            "gcp" => {
                if let Some(t) = self.string(config, at, "access-token") {
                    let raw = self.string(config, at, "expiry");
                    match (raw, raw.and_then(parse_timestamp)) {
                        (Some(_), None) => self.out.error(
                            self.ctx,
                            &format!("{at}.expiry"),
                            ErrorReason::Parse,
                            "expiry is not an RFC 3339 time",
                        ),
                        (_, expiry) => self.token(&format!("{at}.access-token"), t, expiry),
                    }
                }
            }
            "azure" => {
                if let Some(t) = self.string(config, at, "access-token") {
                    let raw = get(config, "expires-on")
                        .filter(|v| !v.is_null() && v.as_str() != Some(""));
                    match (raw, raw.and_then(parse_unix)) {
                        (Some(_), None) => self.out.error(
                            self.ctx,
                            &format!("{at}.expires-on"),
                            ErrorReason::Parse,
                            "expires-on is not Unix seconds",
                        ),
                        (_, expiry) => self.token(&format!("{at}.access-token"), t, expiry),
                    }
                }
            }
            _ => {}
        }
    }

    /// The exec plugin holds its token in memory: list the user so nobody
    /// forgets it, and point at the plugin's on-disk cache where one is known.
    fn exec(&mut self, exec: &Value, at: &str) {
        let command = self.string(exec, at, "command").unwrap_or("(none)");
        let args = self.strings(exec, at, "args");
        // The fingerprint identifies the plugin invocation, not a secret.
        let identity = format!("exec:{command} {}", args.join(" "));
        let c = Credential::new(Kind::OpaqueToken, Fingerprint::of(identity.as_bytes())).with_note(
            format!(
                "expiry unknown: the token comes from the exec plugin `{}`",
                plugin_name(command)
            ),
        );
        self.out.add(self.ctx, self.source, at, None, c);

        let plugin = plugin_name(command);
        if plugin == "gke-gcloud-auth-plugin" {
            self.reference(
                "gke_gcloud_auth_plugin_cache",
                format!("{at}{CACHE_SUFFIX}"),
                RefKind::Any,
                true,
            );
        } else if plugin == "kubelogin"
            || plugin == "kubectl-oidc_login"
            || args.contains(&"oidc-login")
        {
            let dir = args
                .iter()
                .find_map(|a| a.strip_prefix("--token-cache-dir="))
                .unwrap_or("cache/oidc-login");
            let entry = format!("{at}{CACHE_SUFFIX}");
            self.reference(dir, entry.clone(), RefKind::Any, true);
            self.reference("cache/kubelogin", entry, RefKind::Any, true);
        }
    }
}

fn plugin_name(command: &str) -> &str {
    command.rsplit(['/', '\\']).next().unwrap_or(command)
}

#[cfg(test)]
mod tests {
    use crate::parse::parse_file;

    fn errors(yaml: &str) -> Vec<String> {
        let parsed = parse_file("/k/config", yaml.as_bytes());
        parsed
            .errors
            .iter()
            .map(|e| format!("{}: {}", e.entry.as_deref().unwrap_or(""), e.message))
            .collect()
    }

    #[test]
    fn wrong_types_in_auth_providers_and_exec_name_the_field_not_the_value() {
        let yaml = "kind: Config\nusers:\n\
            - name: oidc\n  user:\n    auth-provider: {name: oidc, config: [secret-in-a-list]}\n\
            - name: gcp\n  user:\n    auth-provider: {name: gcp, config: {access-token: 42, expiry: 7}}\n\
            - name: exec\n  user:\n    exec: {command: [aws], args: secret-args}\n\
            - name: empty\n  user:\n    token:\n    client-certificate-data:\n    exec:\n";
        assert_eq!(
            errors(yaml),
            [
                "users[oidc].auth-provider.config: expected a map, found a list",
                "users[gcp].auth-provider.access-token: expected a string, found a number",
                "users[exec].exec.command: expected a string, found a list",
                "users[exec].exec.args: expected a list, found a string",
            ]
        );
    }

    #[test]
    fn a_kubeconfig_of_the_wrong_shape_throughout_is_errors_not_a_panic() {
        for yaml in [
            "kind: Config\nclusters: 3\nusers: true\n",
            "kind: Config\nclusters: [[], 1, null]\nusers: [{name: {a: 1}, user: [1]}]\n",
        ] {
            let parsed = parse_file("/k/config", yaml.as_bytes());
            assert!(parsed.credentials.is_empty());
            assert!(!parsed.errors.is_empty(), "{yaml}");
        }
    }
}
