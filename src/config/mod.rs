//! `lapse.yaml`: what to watch, how long opaque tokens live, thresholds,
//! where to listen.
//!
//! Validation walks the document by hand so that every problem is
//! reported at once, each naming its field, and unknown fields are
//! rejected. Sections for the Kubernetes source and notifications are
//! reserved and refused with a clear message until they exist.

pub mod section;

use crate::credential::{Kind, Source, Thresholds};
use crate::notify::{NotifyConfig, Route, Smtp, Tls};
use crate::source::kubernetes::KubernetesConfig;
use crate::units::parse_duration;
use crate::units::parse_size;
use crate::validate::{self, Problems};
use globset::Glob;
use lettre::message::Mailbox;
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};

/// Prometheus's port list is full from 9100 to 9999; lapse takes a port
/// above it that no common exporter uses.
pub const DEFAULT_LISTEN: &str = ":10070";
pub const DEFAULT_RESCAN_SECONDS: i64 = 300;

pub use crate::parse::token_rules::{IssuedAt, TokenRule};

#[derive(Clone, Debug)]
pub struct Config {
    pub paths: Vec<PathBuf>,
    pub include: Vec<String>,
    pub exclude: Vec<String>,
    pub max_file_size: u64,
    /// `None`: `$KUBECONFIG` or `~/.kube/config`, when present.
    pub kubeconfigs: Option<Vec<PathBuf>>,
    pub tokens: Vec<TokenRule>,
    pub thresholds: Thresholds,
    pub listen: String,
    pub web_config_file: Option<PathBuf>,
    pub rescan_interval: i64,
    /// `kubernetes:` present (even `{}`): watch Secrets and ConfigMaps.
    pub kubernetes: Option<KubernetesConfig>,
    /// PKCS#12 passwords, read from the files `keystore_passwords` names
    /// (never written in lapse.yaml itself).
    pub keystore_passwords: Vec<String>,
    pub notify: Option<NotifyConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            paths: Vec::new(),
            include: Vec::new(),
            exclude: Vec::new(),
            max_file_size: crate::source::files::DEFAULT_MAX_FILE_SIZE,
            kubeconfigs: None,
            tokens: Vec::new(),
            thresholds: Thresholds::default(),
            listen: DEFAULT_LISTEN.to_string(),
            web_config_file: None,
            rescan_interval: DEFAULT_RESCAN_SECONDS,
            kubernetes: None,
            keystore_passwords: Vec::new(),
            notify: None,
        }
    }
}

impl Config {
    /// Reads and validates `path`; every problem is returned, each naming its field.
    pub fn load(path: &Path) -> Result<Config, Vec<String>> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| vec![format!("{}: cannot read: {e}", path.display())])?;
        let base = path.parent().unwrap_or(Path::new("")).to_path_buf();
        Config::parse(&text, &base).map_err(|problems| {
            problems
                .into_iter()
                .map(|p| format!("{}: {p}", path.display()))
                .collect()
        })
    }

    /// Validates YAML text; relative paths resolve against `base`.
    pub fn parse(text: &str, base: &Path) -> Result<Config, Vec<String>> {
        let docs: Vec<Value> = crate::yaml::documents(text).map_err(|e| vec![e])?;
        let doc = match docs.as_slice() {
            [] => Value::Object(Map::new()),
            [one] => one.clone(),
            _ => return Err(vec!["expected one YAML document".into()]),
        };
        let mut v = Validator {
            problems: Problems::default(),
            base: base.to_path_buf(),
        };
        let config = v.config(&doc);
        if v.problems.is_empty() {
            Ok(config)
        } else {
            Err(v.problems.0)
        }
    }
}

struct Validator {
    problems: Problems,
    base: PathBuf,
}

impl Validator {
    fn problem(&mut self, at: &str, what: impl std::fmt::Display) {
        self.problems.add(at, what);
    }

    fn object<'v>(
        &mut self,
        at: &str,
        v: &'v Value,
        known: &[&str],
    ) -> Option<&'v Map<String, Value>> {
        validate::fields(v, at, known, &mut self.problems)
    }

    fn string(&mut self, at: &str, v: &Value) -> Option<String> {
        validate::text(v, at, &mut self.problems)
    }

    fn strings(&mut self, at: &str, v: &Value) -> Vec<String> {
        validate::text_list(v, at, &mut self.problems).unwrap_or_default()
    }

    fn path(&self, p: &str) -> PathBuf {
        if let Some(rest) = p.strip_prefix("~/")
            && let Some(home) = std::env::var_os("HOME")
        {
            return Path::new(&home).join(rest);
        }
        crate::paths::clean(&self.base.join(p))
    }

    fn duration(&mut self, at: &str, v: &Value) -> Option<i64> {
        let text = self.string(at, v)?;
        match parse_duration(&text) {
            Ok(d) => Some(d),
            Err(e) => {
                self.problem(at, e);
                None
            }
        }
    }

    fn globs(&mut self, at: &str, v: &Value) -> Vec<String> {
        let globs = self.strings(at, v);
        for (i, g) in globs.iter().enumerate() {
            if let Err(e) = Glob::new(g) {
                self.problem(&format!("{at}[{i}]"), format!("invalid glob: {}", e.kind()));
            }
        }
        globs
    }

    fn config(&mut self, doc: &Value) -> Config {
        let mut c = Config::default();
        let known = [
            "files",
            "kubeconfigs",
            "tokens",
            "thresholds",
            "listen",
            "web_config_file",
            "rescan_interval",
            "kubernetes",
            "notify",
            "keystore_passwords",
        ];
        let Some(root) = self.object("", doc, &known) else {
            return c;
        };
        if let Some(files) = root.get("files")
            && let Some(m) = self.object(
                "files",
                files,
                &["paths", "include", "exclude", "max_file_size"],
            )
        {
            if let Some(p) = m.get("paths") {
                c.paths = self
                    .strings("files.paths", p)
                    .iter()
                    .map(|p| self.path(p))
                    .collect();
            }
            if let Some(g) = m.get("include") {
                c.include = self.globs("files.include", g);
            }
            if let Some(g) = m.get("exclude") {
                c.exclude = self.globs("files.exclude", g);
            }
            if let Some(s) = m.get("max_file_size")
                && let Some(text) = self.string("files.max_file_size", s)
            {
                match parse_size(&text) {
                    Ok(n) => c.max_file_size = n,
                    Err(e) => self.problem("files.max_file_size", e),
                }
            }
        }
        if let Some(k) = root.get("kubeconfigs") {
            c.kubeconfigs = Some(
                self.strings("kubeconfigs", k)
                    .iter()
                    .map(|p| self.path(p))
                    .collect(),
            );
        }
        if let Some(rules) = root.get("tokens") {
            match rules.as_array() {
                Some(items) => {
                    for (i, item) in items.iter().enumerate() {
                        if let Some(rule) = self.token_rule(&format!("tokens[{i}]"), item) {
                            c.tokens.push(rule);
                        }
                    }
                }
                None => self.problem("tokens", "expected a list of rules"),
            }
        }
        if let Some(t) = root.get("thresholds")
            && let Some(m) = self.object("thresholds", t, &["warning", "critical"])
        {
            if let Some(w) = m
                .get("warning")
                .and_then(|v| self.duration("thresholds.warning", v))
            {
                c.thresholds.warning = w;
            }
            if let Some(cr) = m
                .get("critical")
                .and_then(|v| self.duration("thresholds.critical", v))
            {
                c.thresholds.critical = cr;
            }
            if c.thresholds.critical > c.thresholds.warning {
                self.problem(
                    "thresholds.critical",
                    "must not be longer than thresholds.warning",
                );
            }
        }
        if let Some(l) = root.get("listen").and_then(|v| self.string("listen", v)) {
            if l.rsplit_once(':')
                .is_none_or(|(_, port)| port.parse::<u16>().is_err())
            {
                self.problem("listen", format!("{l:?} is not HOST:PORT"));
            }
            c.listen = l;
        }
        if let Some(w) = root
            .get("web_config_file")
            .and_then(|v| self.string("web_config_file", v))
        {
            c.web_config_file = Some(self.path(&w));
        }
        if let Some(r) = root
            .get("rescan_interval")
            .and_then(|v| self.duration("rescan_interval", v))
        {
            if r < 10 {
                self.problem("rescan_interval", "must be at least 10s");
            }
            c.rescan_interval = r;
        }
        if let Some(files) = root.get("keystore_passwords") {
            for (i, f) in self.strings("keystore_passwords", files).iter().enumerate() {
                let path = self.path(f);
                match std::fs::read_to_string(&path) {
                    Ok(p) => c
                        .keystore_passwords
                        .push(p.trim_end_matches(['\r', '\n']).to_string()),
                    Err(e) => self.problem(
                        &format!("keystore_passwords[{i}]"),
                        format!("cannot read {}: {e}", path.display()),
                    ),
                }
            }
        }
        if let Some(k) = root.get("kubernetes") {
            c.kubernetes = self.kubernetes(k).map(|mut k| {
                k.passwords = c.keystore_passwords.clone();
                k
            });
        }
        if let Some(n) = root.get("notify") {
            c.notify = self.notify(n);
        }
        c
    }

    fn mailbox(&mut self, at: &str, v: &Value) -> Option<Mailbox> {
        let text = self.string(at, v)?;
        match text.parse::<Mailbox>() {
            Ok(m) => Some(m),
            Err(e) => {
                self.problem(at, format!("{text:?} is not an email address: {e}"));
                None
            }
        }
    }

    fn mailboxes(&mut self, at: &str, v: &Value) -> Vec<Mailbox> {
        match v {
            Value::Array(items) => items
                .iter()
                .enumerate()
                .filter_map(|(i, item)| self.mailbox(&format!("{at}[{i}]"), item))
                .collect(),
            other => self.mailbox(at, other).into_iter().collect(),
        }
    }

    fn notify(&mut self, v: &Value) -> Option<NotifyConfig> {
        let known = [
            "email",
            "thresholds",
            "routes",
            "digest",
            "state_file",
            "check_interval",
            "retry_interval",
        ];
        let m = self.object("notify", v, &known)?;
        let before = self.problems.len();
        let Some(email) = m.get("email") else {
            self.problem("notify.email", "required: smtp, from and to");
            return None;
        };
        let e = self.object("notify.email", email, &["smtp", "from", "to"])?;
        let smtp = match e.get("smtp") {
            Some(v) => self.smtp(v),
            None => {
                self.problem("notify.email.smtp", "required: {host, port, tls}");
                None
            }
        };
        let from = match e.get("from") {
            Some(v) => self.mailbox("notify.email.from", v),
            None => {
                self.problem("notify.email.from", "required");
                None
            }
        };
        let to = match e.get("to") {
            Some(v) => self.mailboxes("notify.email.to", v),
            None => Vec::new(),
        };
        if to.is_empty() {
            self.problem("notify.email.to", "required: at least one recipient");
        }
        let mut thresholds: Vec<i64> = match m.get("thresholds") {
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .filter_map(|(i, t)| self.duration(&format!("notify.thresholds[{i}]"), t))
                .collect(),
            Some(_) => {
                self.problem(
                    "notify.thresholds",
                    "expected a list of durations, e.g. [30d, 14d, 7d, 3d, 1d]",
                );
                Vec::new()
            }
            None => [30, 14, 7, 3, 1].iter().map(|d| d * 86_400).collect(),
        };
        thresholds.sort_unstable_by(|a, b| b.cmp(a));
        thresholds.dedup();
        if thresholds.is_empty() || thresholds.contains(&0) {
            self.problem(
                "notify.thresholds",
                "needs at least one duration longer than zero",
            );
        }
        let mut routes = Vec::new();
        if let Some(r) = m.get("routes") {
            match r.as_array() {
                Some(items) => {
                    for (i, item) in items.iter().enumerate() {
                        if let Some(route) = self.route(&format!("notify.routes[{i}]"), item) {
                            routes.push(route);
                        }
                    }
                }
                None => self.problem("notify.routes", "expected a list of routes"),
            }
        }
        let digest = m
            .get("digest")
            .and_then(|v| self.string("notify.digest", v))
            .and_then(|t| {
                let parsed = t
                    .split_once(':')
                    .and_then(|(h, mm)| Some((h.parse::<i64>().ok()?, mm.parse::<i64>().ok()?)))
                    .filter(|(h, mm)| (0..24).contains(h) && (0..60).contains(mm));
                match parsed {
                    Some((h, mm)) => Some(h * 3_600 + mm * 60),
                    None => {
                        self.problem("notify.digest", format!("{t:?}: use HH:MM (UTC)"));
                        None
                    }
                }
            });
        let state_file = m
            .get("state_file")
            .and_then(|v| self.string("notify.state_file", v))
            .map(|p| self.path(&p))
            .unwrap_or_else(|| PathBuf::from("/var/lib/lapse/notify-state.json"));
        let check_interval = m
            .get("check_interval")
            .and_then(|v| self.duration("notify.check_interval", v))
            .unwrap_or(60);
        let retry_interval = m
            .get("retry_interval")
            .and_then(|v| self.duration("notify.retry_interval", v))
            .unwrap_or(10);
        if check_interval == 0 || retry_interval == 0 {
            self.problem(
                "notify",
                "check_interval and retry_interval must be longer than zero",
            );
        }
        if self.problems.len() > before {
            return None;
        }
        Some(NotifyConfig {
            smtp: smtp?,
            from: from?,
            to,
            thresholds,
            routes,
            digest,
            state_file,
            check_interval: std::time::Duration::from_secs(check_interval as u64),
            retry_interval: std::time::Duration::from_secs(retry_interval as u64),
        })
    }

    fn smtp(&mut self, v: &Value) -> Option<Smtp> {
        let known = [
            "host",
            "port",
            "tls",
            "username",
            "password_file",
            "password_env",
        ];
        let m = self.object("notify.email.smtp", v, &known)?;
        let host = m
            .get("host")
            .and_then(|v| self.string("notify.email.smtp.host", v));
        if host.is_none() {
            self.problem("notify.email.smtp.host", "required");
        }
        let tls = match m
            .get("tls")
            .and_then(|v| self.string("notify.email.smtp.tls", v))
            .as_deref()
        {
            None | Some("starttls") => Tls::StartTls,
            Some("tls") => Tls::Tls,
            Some("none") => Tls::None,
            Some(other) => {
                self.problem(
                    "notify.email.smtp.tls",
                    format!("{other:?}: use none, starttls or tls"),
                );
                Tls::StartTls
            }
        };
        let default_port = match tls {
            Tls::Tls => 465,
            Tls::StartTls => 587,
            Tls::None => 25,
        };
        let port = match m
            .get("port")
            .and_then(|v| self.string("notify.email.smtp.port", v))
        {
            None => default_port,
            Some(p) => match p.parse::<u16>() {
                Ok(p) => p,
                Err(_) => {
                    self.problem("notify.email.smtp.port", format!("{p:?} is not a port"));
                    default_port
                }
            },
        };
        let username = m
            .get("username")
            .and_then(|v| self.string("notify.email.smtp.username", v));
        let password = if let Some(f) = m
            .get("password_file")
            .and_then(|v| self.string("notify.email.smtp.password_file", v))
        {
            let path = self.path(&f);
            match std::fs::read_to_string(&path) {
                Ok(p) => Some(p.trim_end_matches(['\r', '\n']).to_string()),
                Err(e) => {
                    self.problem(
                        "notify.email.smtp.password_file",
                        format!("cannot read {}: {e}", path.display()),
                    );
                    None
                }
            }
        } else if let Some(var) = m
            .get("password_env")
            .and_then(|v| self.string("notify.email.smtp.password_env", v))
        {
            match std::env::var(&var) {
                Ok(p) => Some(p),
                Err(_) => {
                    self.problem(
                        "notify.email.smtp.password_env",
                        format!("${var} is not set"),
                    );
                    None
                }
            }
        } else {
            None
        };
        if username.is_some() != password.is_some() {
            self.problem(
                "notify.email.smtp",
                "username and a password (password_file or password_env) go together",
            );
        }
        Some(Smtp {
            host: host?,
            port,
            tls,
            username,
            password_source: None,
            password,
        })
    }

    fn route(&mut self, at: &str, v: &Value) -> Option<Route> {
        let m = self.object(at, v, &["match", "to"])?;
        let mut route = Route::default();
        if let Some(sel) = m.get("match") {
            let s = self.object(
                &format!("{at}.match"),
                sel,
                &["kind", "source", "namespace", "path", "labels"],
            )?;
            if let Some(k) = s
                .get("kind")
                .and_then(|v| self.string(&format!("{at}.match.kind"), v))
            {
                match k.parse::<Kind>() {
                    Ok(kind) => route.kind = Some(kind),
                    Err(e) => self.problem(&format!("{at}.match.kind"), e),
                }
            }
            if let Some(src) = s
                .get("source")
                .and_then(|v| self.string(&format!("{at}.match.source"), v))
            {
                match src.parse::<Source>() {
                    Ok(source) => route.source = Some(source),
                    Err(e) => self.problem(&format!("{at}.match.source"), e),
                }
            }
            route.namespace = s
                .get("namespace")
                .and_then(|v| self.string(&format!("{at}.match.namespace"), v));
            if let Some(p) = s
                .get("path")
                .and_then(|v| self.string(&format!("{at}.match.path"), v))
            {
                match Glob::new(&p) {
                    Ok(g) => route.path = Some(g.compile_matcher()),
                    Err(e) => self.problem(
                        &format!("{at}.match.path"),
                        format!("invalid glob: {}", e.kind()),
                    ),
                }
            }
            if let Some(l) = s.get("labels")
                && let Some(map) =
                    validate::mapping(l, &format!("{at}.match.labels"), &mut self.problems)
            {
                for (k, v) in map {
                    if let Some(v) = self.string(&format!("{at}.match.labels.{k}"), v) {
                        route.labels.insert(k.clone(), v);
                    }
                }
            }
        }
        route.to = match m.get("to") {
            Some(v) => self.mailboxes(&format!("{at}.to"), v),
            None => Vec::new(),
        };
        if route.to.is_empty() {
            self.problem(&format!("{at}.to"), "required: at least one recipient");
            return None;
        }
        Some(route)
    }

    fn kubernetes(&mut self, v: &Value) -> Option<KubernetesConfig> {
        let mut k = KubernetesConfig::default();
        if v.is_null() {
            return Some(k);
        }
        let known = [
            "kubeconfig",
            "context",
            "namespaces",
            "exclude_namespaces",
            "label_selector",
            "secret_types",
            "exclude_secret_types",
            "configmaps",
            "keystore_password_secrets",
            "copy_labels",
            "configmap_keys",
        ];
        let m = self.object("kubernetes", v, &known)?;
        if let Some(p) = m
            .get("kubeconfig")
            .and_then(|v| self.string("kubernetes.kubeconfig", v))
        {
            k.kubeconfig = Some(self.path(&p));
        }
        k.context = m
            .get("context")
            .and_then(|v| self.string("kubernetes.context", v));
        if let Some(n) = m.get("namespaces") {
            k.namespaces = self.strings("kubernetes.namespaces", n);
        }
        if let Some(n) = m.get("exclude_namespaces") {
            k.exclude_namespaces = self.strings("kubernetes.exclude_namespaces", n);
        }
        if !k.namespaces.is_empty() && !k.exclude_namespaces.is_empty() {
            self.problem(
                "kubernetes.exclude_namespaces",
                "only in cluster mode: with kubernetes.namespaces, list just the namespaces to watch",
            );
        }
        k.label_selector = m
            .get("label_selector")
            .and_then(|v| self.string("kubernetes.label_selector", v));
        if let Some(t) = m.get("secret_types") {
            k.secret_types = self.strings("kubernetes.secret_types", t);
        }
        if let Some(t) = m.get("exclude_secret_types") {
            k.exclude_secret_types = self.strings("kubernetes.exclude_secret_types", t);
        }
        if let Some(b) = m.get("configmaps")
            && let Some(b) = validate::flag(b, "kubernetes.configmaps", &mut self.problems)
        {
            k.configmaps = b;
        }
        if let Some(refs) = m.get("keystore_password_secrets") {
            let refs = self.strings("kubernetes.keystore_password_secrets", refs);
            for (i, r) in refs.iter().enumerate() {
                match r.split('/').collect::<Vec<_>>()[..] {
                    [ns, name, key] if !ns.is_empty() && !name.is_empty() && !key.is_empty() => k
                        .password_secrets
                        .push((ns.into(), name.into(), key.into())),
                    _ => self.problem(
                        &format!("kubernetes.keystore_password_secrets[{i}]"),
                        format!("{r:?}: use NAMESPACE/NAME/KEY"),
                    ),
                }
            }
        }
        if let Some(l) = m.get("copy_labels") {
            k.copy_labels = self.strings("kubernetes.copy_labels", l);
        }
        if let Some(g) = m.get("configmap_keys") {
            for (i, pattern) in self
                .strings("kubernetes.configmap_keys", g)
                .iter()
                .enumerate()
            {
                match Glob::new(pattern) {
                    Ok(glob) => k.configmap_keys.push(glob.compile_matcher()),
                    Err(e) => self.problem(
                        &format!("kubernetes.configmap_keys[{i}]"),
                        format!("invalid glob: {}", e.kind()),
                    ),
                }
            }
        }
        Some(k)
    }

    fn token_rule(&mut self, at: &str, v: &Value) -> Option<TokenRule> {
        let m = self.object(at, v, &["path", "field", "validity", "issued_at"])?;
        let before = self.problems.len();
        let glob = match m.get("path") {
            Some(p) => self.string(&format!("{at}.path"), p),
            None => {
                self.problem(
                    &format!("{at}.path"),
                    "required: a glob naming the token files",
                );
                None
            }
        };
        let matcher = glob.as_ref().and_then(|g| {
            let pattern = if g.contains('/') {
                self.path(g).to_string_lossy().into_owned()
            } else {
                g.clone()
            };
            match Glob::new(&pattern) {
                Ok(glob) => Some((pattern, glob.compile_matcher())),
                Err(e) => {
                    self.problem(&format!("{at}.path"), format!("invalid glob: {}", e.kind()));
                    None
                }
            }
        });
        let field = m
            .get("field")
            .and_then(|f| self.string(&format!("{at}.field"), f));
        let validity = match m.get("validity") {
            Some(d) => self.duration(&format!("{at}.validity"), d),
            None => {
                self.problem(
                    &format!("{at}.validity"),
                    "required: how long a token lives, e.g. 60d or 90d",
                );
                None
            }
        };
        if validity == Some(0) {
            self.problem(&format!("{at}.validity"), "must be longer than zero");
        }
        let issued_at = match m
            .get("issued_at")
            .map(|v| self.string(&format!("{at}.issued_at"), v))
        {
            None => IssuedAt::Mtime,
            Some(Some(s)) if s == "mtime" => IssuedAt::Mtime,
            Some(Some(s)) if s.starts_with("field:") && s.len() > 6 => {
                IssuedAt::Field(s[6..].to_string())
            }
            Some(Some(s)) => {
                self.problem(
                    &format!("{at}.issued_at"),
                    format!("{s:?}: use `mtime` or `field:NAME`"),
                );
                IssuedAt::Mtime
            }
            Some(None) => IssuedAt::Mtime,
        };
        if self.problems.len() > before {
            return None;
        }
        let (glob, matcher) = matcher?;
        Some(TokenRule {
            glob,
            matcher,
            field,
            validity: validity?,
            issued_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_config() {
        let c = Config::parse(
            "files:\n  paths: [pki, /abs]\n  exclude: ['*.key']\n  max_file_size: 1MiB\n\
             kubeconfigs: [kube/config]\n\
             tokens:\n- path: /opt/wssd/k8s/*.yaml\n  field: token\n  validity: 90d\n\
             - path: '*.token'\n  validity: 60d\n  issued_at: field:issued\n\
             thresholds: {warning: 21d, critical: 3d}\nlisten: 127.0.0.1:9999\nrescan_interval: 1m\n",
            Path::new("/etc/lapse"),
        )
        .unwrap();
        assert_eq!(
            c.paths,
            [PathBuf::from("/etc/lapse/pki"), PathBuf::from("/abs")]
        );
        assert_eq!(c.exclude, ["*.key"]);
        assert_eq!(c.max_file_size, 1 << 20);
        assert_eq!(
            c.kubeconfigs,
            Some(vec![PathBuf::from("/etc/lapse/kube/config")])
        );
        assert_eq!(c.tokens.len(), 2);
        assert_eq!(c.tokens[0].validity, 90 * 86_400);
        assert_eq!(c.tokens[0].field.as_deref(), Some("token"));
        assert!(c.tokens[0].matches_path(Path::new("/opt/wssd/k8s/cloudlogin.yaml")));
        assert!(!c.tokens[0].matches_path(Path::new("/opt/wssd/other/cloudlogin.yaml")));
        assert!(c.tokens[1].matches_path(Path::new("/anywhere/ci.token")));
        assert_eq!(c.tokens[1].issued_at, IssuedAt::Field("issued".into()));
        assert_eq!(
            c.thresholds,
            Thresholds {
                warning: 21 * 86_400,
                critical: 3 * 86_400
            }
        );
        assert_eq!(c.listen, "127.0.0.1:9999");
        assert_eq!(c.rescan_interval, 60);
    }

    #[test]
    fn every_problem_at_once_naming_its_field() {
        let err = Config::parse(
            "files:\n  pahts: [x]\n  max_file_size: lots\n\
             tokens:\n- path: '*.token'\n  validity: 9x\n- field: token\n\
             thresholds: {warning: 1d, critical: 2d}\nlisten: nowhere\nnotify: {}\nbogus: 1\n",
            Path::new("/"),
        )
        .unwrap_err();
        let expected = [
            "bogus: unknown field",
            "files.pahts: unknown field",
            "files.max_file_size: invalid size \"lots\"",
            "tokens[0].validity: invalid duration \"9x\"",
            "tokens[1].path: required",
            "tokens[1].validity: required",
            "thresholds.critical: must not be longer than thresholds.warning",
            "listen: \"nowhere\" is not HOST:PORT",
            "notify.email: required",
        ];
        for want in expected {
            assert!(
                err.iter().any(|p| p.starts_with(want)),
                "missing {want:?} in {err:#?}"
            );
        }
        assert_eq!(err.len(), expected.len(), "{err:#?}");
    }

    #[test]
    fn an_empty_file_is_the_defaults() {
        let c = Config::parse("", Path::new("/")).unwrap();
        assert_eq!(c.listen, DEFAULT_LISTEN);
        assert_eq!(c.rescan_interval, 300);
    }

    #[test]
    fn rule_fields_match_entries() {
        let c = Config::parse(
            "tokens:\n- {path: x, field: token, validity: 1d}\n",
            Path::new("/"),
        )
        .unwrap();
        let r = &c.tokens[0];
        assert!(r.matches_entry(Some("token")));
        assert!(r.matches_entry(Some("secret ns/login token")));
        assert!(r.matches_entry(Some("users[ci].token")));
        assert!(!r.matches_entry(Some("refresh-token")));
        assert!(!r.matches_entry(None));
    }
}

#[cfg(test)]
mod kubernetes_tests {
    use super::*;

    #[test]
    fn an_empty_kubernetes_section_turns_it_on_with_defaults() {
        let c = Config::parse("kubernetes: {}\n", Path::new("/")).unwrap();
        let k = c.kubernetes.unwrap();
        assert!(k.namespaces.is_empty());
        assert_eq!(k.exclude_secret_types, ["helm.sh/release.v1"]);
        assert!(k.configmaps);
    }

    #[test]
    fn the_kubernetes_section_in_full() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("p12.pass"), "changeit\n").unwrap();
        let c = Config::parse(
            "keystore_passwords: [p12.pass]\n\
             kubernetes:\n  kubeconfig: kube/config\n  context: prod\n  namespaces: [web, ci]\n\
             \x20 label_selector: team=payments\n  secret_types: [kubernetes.io/tls]\n  configmaps: false\n\
             \x20 keystore_password_secrets: [web/keystore-pass/password]\n  copy_labels: [app.kubernetes.io/name]\n\
             \x20 configmap_keys: ['*.crt', ca.pem]\n",
            dir.path(),
        )
        .unwrap();
        assert_eq!(c.keystore_passwords, ["changeit"]);
        let k = c.kubernetes.unwrap();
        assert_eq!(k.kubeconfig, Some(dir.path().join("kube/config")));
        assert_eq!(k.context.as_deref(), Some("prod"));
        assert_eq!(k.namespaces, ["web", "ci"]);
        assert_eq!(k.label_selector.as_deref(), Some("team=payments"));
        assert_eq!(k.secret_types, ["kubernetes.io/tls"]);
        assert!(!k.configmaps);
        assert_eq!(
            k.password_secrets,
            [("web".into(), "keystore-pass".into(), "password".into())]
        );
        assert_eq!(k.copy_labels, ["app.kubernetes.io/name"]);
        assert!(k.configmap_keys[0].is_match("ca.crt"));
        assert!(k.configmap_keys[1].is_match("ca.pem"));
        assert!(!k.configmap_keys.iter().any(|g| g.is_match("config.yaml")));
        assert_eq!(k.passwords, ["changeit"]);
    }

    #[test]
    fn kubernetes_problems_name_their_fields() {
        let err = Config::parse(
            "keystore_passwords: [/nonexistent/pass]\n\
             kubernetes:\n  namespaces: [web]\n  exclude_namespaces: [x]\n  configmaps: maybe\n\
             \x20 keystore_password_secrets: [web/only-two]\n  nodes: true\n",
            Path::new("/"),
        )
        .unwrap_err();
        let expected = [
            "keystore_passwords[0]: cannot read /nonexistent/pass",
            "kubernetes.exclude_namespaces: only in cluster mode",
            "kubernetes.configmaps: expected true or false",
            "kubernetes.keystore_password_secrets[0]: \"web/only-two\": use NAMESPACE/NAME/KEY",
            "kubernetes.nodes: unknown field",
        ];
        for want in expected {
            assert!(
                err.iter().any(|p| p.starts_with(want)),
                "missing {want:?} in {err:#?}"
            );
        }
        assert_eq!(err.len(), expected.len(), "{err:#?}");
    }
}

#[cfg(test)]
mod notify_tests {
    use super::*;

    #[test]
    fn the_minimal_notify_section() {
        let c = Config::parse(
            "notify:\n  email:\n    smtp: {host: smtp.example.com, port: 587, tls: starttls}\n    \
             from: lapse@example.com\n    to: [ops@example.com]\n  thresholds: [7d, 30d, 14d, 3d, 1d]\n",
            Path::new("/etc/lapse"),
        )
        .unwrap();
        let n = c.notify.unwrap();
        assert_eq!(n.smtp.host, "smtp.example.com");
        assert_eq!(n.smtp.port, 587);
        assert_eq!(n.smtp.tls, Tls::StartTls);
        assert_eq!(n.from.to_string(), "lapse@example.com");
        assert_eq!(n.to.len(), 1);
        assert_eq!(n.thresholds, [30, 14, 7, 3, 1].map(|d| d * 86_400));
        assert_eq!(
            n.state_file,
            PathBuf::from("/var/lib/lapse/notify-state.json")
        );
        assert_eq!(n.check_interval, std::time::Duration::from_secs(60));
    }

    #[test]
    fn routes_digest_and_credentials_from_a_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("smtp.pass"), "s3cret\n").unwrap();
        let c = Config::parse(
            "notify:\n  email:\n    smtp: {host: 127.0.0.1, port: 2525, tls: none, username: lapse, password_file: smtp.pass}\n    \
             from: lapse@example.com\n    to: ops@example.com\n  \
             routes:\n  - match: {namespace: web, kind: x509, labels: {team: shop}}\n    to: [web@example.com]\n  \
             digest: '08:30'\n  state_file: state/notify.json\n  check_interval: 1s\n  retry_interval: 2s\n",
            dir.path(),
        )
        .unwrap();
        let n = c.notify.unwrap();
        assert_eq!(n.smtp.password.as_deref(), Some("s3cret"));
        assert_eq!(n.smtp.username.as_deref(), Some("lapse"));
        assert_eq!(n.routes.len(), 1);
        assert_eq!(n.routes[0].namespace.as_deref(), Some("web"));
        assert_eq!(n.routes[0].labels["team"], "shop");
        assert_eq!(n.digest, Some(8 * 3_600 + 30 * 60));
        assert_eq!(n.state_file, dir.path().join("state/notify.json"));
        assert_eq!(n.retry_interval, std::time::Duration::from_secs(2));
    }

    #[test]
    fn notify_problems_name_their_fields() {
        let err = Config::parse(
            "notify:\n  email:\n    smtp: {tls: ssl, username: u}\n    from: not-an-address\n  \
             thresholds: [soon]\n  digest: '25:00'\n  routes:\n  - match: {kind: pgp}\n",
            Path::new("/"),
        )
        .unwrap_err();
        let expected = [
            "notify.email.smtp.host: required",
            "notify.email.smtp.tls: \"ssl\": use none, starttls or tls",
            "notify.email.smtp: username and a password",
            "notify.email.from: \"not-an-address\" is not an email address",
            "notify.email.to: required",
            "notify.thresholds[0]: invalid duration",
            "notify.digest: \"25:00\": use HH:MM (UTC)",
            "notify.routes[0].match.kind: \"pgp\"",
            "notify.routes[0].to: required",
        ];
        for want in expected {
            assert!(
                err.iter().any(|p| p.starts_with(want)),
                "missing {want:?} in {err:#?}"
            );
        }
    }
}
