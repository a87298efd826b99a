//! kubeconfig files (client-go `clientcmd/api/v1`): every cluster's CA and
//! every user's certificate, token, auth-provider token and exec plugin.
//!
//! `client-key(-data)` is key material and is never read.

use super::record::{Context, FileRef, Parsed, RefKind, field, get, get_str};
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

fn named(list: Option<&Value>) -> impl Iterator<Item = (String, &Value)> {
    list.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
        .map(|(i, item)| {
            let name = get_str(item, "name")
                .map(str::to_string)
                .unwrap_or_else(|| i.to_string());
            (name, item)
        })
}

pub(crate) fn parse(ctx: &Context, doc: &Value, out: &mut Parsed) {
    let source = ctx.source_or(Source::Kubeconfig);
    let mut kc = Kubeconfig {
        ctx,
        source,
        base: base_dir(ctx),
        out,
    };
    for (name, item) in named(get(doc, "clusters")) {
        let Some(cluster) = get(item, "cluster") else {
            continue;
        };
        let at = format!("clusters[{name}]");
        kc.certificates(cluster, &at, "certificate-authority");
    }
    for (name, item) in named(get(doc, "users")) {
        let Some(user) = get(item, "user") else {
            continue;
        };
        kc.user(user, &format!("users[{name}]"));
    }
}

struct Kubeconfig<'c, 'a> {
    ctx: &'c Context<'a>,
    source: Source,
    base: Option<PathBuf>,
    out: &'c mut Parsed,
}

impl Kubeconfig<'_, '_> {
    /// `<key>-data` (base64 PEM) wins over `<key>` (a path).
    fn certificates(&mut self, obj: &Value, at: &str, key: &str) {
        let data_key = format!("{key}-data");
        if let Some(data) = field(obj, &data_key) {
            let entry = format!("{at}.{data_key}");
            match x509::decode_b64(data) {
                Ok(bytes) => x509::certificates(self.ctx, self.source, &entry, &bytes, self.out),
                Err(e) => self.out.error(self.ctx, &entry, ErrorReason::Parse, e),
            }
        } else if let Some(path) = field(obj, key) {
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

    fn token(&mut self, entry: &str, text: &str, expiry: Option<i64>) {
        jwt::add_token_expiring(self.ctx, self.source, entry, text.trim(), expiry, self.out);
    }

    fn user(&mut self, user: &Value, at: &str) {
        self.certificates(user, at, "client-certificate");
        // tokenFile is re-read by client-go and wins over token.
        if let Some(path) = field(user, "tokenFile") {
            self.reference(path, format!("{at}.tokenFile"), RefKind::Token, false);
        } else if let Some(token) = field(user, "token") {
            self.token(&format!("{at}.token"), token, None);
        }
        if let Some(provider) = get(user, "auth-provider") {
            self.auth_provider(provider, &format!("{at}.auth-provider"));
        }
        if let Some(exec) = get(user, "exec") {
            self.exec(exec, &format!("{at}.exec"));
        }
    }

    fn auth_provider(&mut self, provider: &Value, at: &str) {
        let empty = Value::Null;
        let config = get(provider, "config").unwrap_or(&empty);
        match get_str(provider, "name").unwrap_or_default() {
            "oidc" => {
                if let Some(t) = field(config, "id-token") {
                    self.token(&format!("{at}.id-token"), t, None);
                }
                if let Some(t) = field(config, "refresh-token") {
                    self.token(&format!("{at}.refresh-token"), t, None);
                }
                self.certificates(config, at, "idp-certificate-authority");
            }
            "gcp" => {
                if let Some(t) = field(config, "access-token") {
                    let raw = field(config, "expiry");
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
                if let Some(t) = field(config, "access-token") {
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
        let command = field(exec, "command").unwrap_or("(none)");
        let args: Vec<&str> = get(exec, "args")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
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
                format!("{at} cache"),
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
            self.reference(dir, format!("{at} cache"), RefKind::Any, true);
            self.reference("cache/kubelogin", format!("{at} cache"), RefKind::Any, true);
        }
    }
}

fn plugin_name(command: &str) -> &str {
    command.rsplit(['/', '\\']).next().unwrap_or(command)
}
