//! `lapse.yaml`: what to watch, how long opaque tokens live, thresholds,
//! where to listen.
//!
//! Validation walks the document by hand so that every problem is
//! reported at once, each naming its field, and unknown fields are
//! rejected. Sections for the Kubernetes source and notifications are
//! reserved and refused with a clear message until they exist.

use crate::credential::Thresholds;
use crate::source::files::parse_size;
use crate::source::kubernetes::KubernetesConfig;
use crate::timefmt::parse_duration;
use crate::validate::{self, Problems};
use globset::{Glob, GlobMatcher};
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};

/// Prometheus's port list is full from 9100 to 9999; lapse takes a port
/// above it that no common exporter uses.
pub const DEFAULT_LISTEN: &str = ":10070";
pub const DEFAULT_RESCAN_SECONDS: i64 = 300;

/// Where an opaque token's issue time comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IssuedAt {
    /// The file's modification time (a token written when it was issued).
    Mtime,
    /// A field of the YAML/JSON file (`a.b.c`), RFC 3339 or Unix seconds.
    Field(String),
}

/// Opaque tokens with a declared lifetime: the AKS-on-HCI case, where a
/// token carries no expiry but lapses N days after issue.
#[derive(Clone, Debug)]
pub struct TokenRule {
    pub glob: String,
    pub matcher: GlobMatcher,
    /// Only the credential at this entry (e.g. `token`); `None`: every token in the file.
    pub field: Option<String>,
    pub validity: i64,
    pub issued_at: IssuedAt,
}

impl TokenRule {
    /// A pattern without `/` matches file names; one with `/` whole paths.
    pub fn matches_path(&self, path: &Path) -> bool {
        if self.glob.contains('/') {
            self.matcher.is_match(path)
        } else {
            path.file_name().is_some_and(|n| self.matcher.is_match(n))
        }
    }

    pub fn matches_entry(&self, entry: Option<&str>) -> bool {
        match (&self.field, entry) {
            (None, _) => true,
            (Some(f), Some(e)) => {
                e == f || e.ends_with(&format!(" {f}")) || e.ends_with(&format!(".{f}"))
            }
            (Some(_), None) => false,
        }
    }
}

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
}

impl Default for Config {
    fn default() -> Self {
        Config {
            paths: Vec::new(),
            include: Vec::new(),
            exclude: Vec::new(),
            max_file_size: crate::scan::DEFAULT_MAX_FILE_SIZE,
            kubeconfigs: None,
            tokens: Vec::new(),
            thresholds: Thresholds::default(),
            listen: DEFAULT_LISTEN.to_string(),
            web_config_file: None,
            rescan_interval: DEFAULT_RESCAN_SECONDS,
            kubernetes: None,
            keystore_passwords: Vec::new(),
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
        if root.contains_key("notify") {
            self.problem("notify", "not supported by this version of lapse yet");
        }
        c
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
            "notify: not supported by this version of lapse yet",
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
