//! `lapse.yaml`, the root document: which sections there are, and the
//! settings that belong to no one component (thresholds, where to listen,
//! how often to rescan, keystore password files).
//!
//! Each component owns its section — a serde struct beside it, read
//! through [`section`] — and reports into one collector, so every problem
//! is reported at once, each naming its field. Validation reads nothing
//! but the document: password files and variables are read by
//! [`Config::load`], when lapse starts.

pub mod section;

use crate::credential::Thresholds;
use crate::http::limits::{self as http_limits, HttpLimits};
use crate::notify::NotifyConfig;
use crate::output::metrics::config::{self as metrics_config, MetricsConfig};
pub use crate::parse::token_rules::{IssuedAt, TokenRule};
use crate::source::files::config::{self as files_config, FilesConfig};
use crate::source::kubernetes::config::{self as kubernetes_config, KubernetesConfig};
use section::{Context, Text, TextList};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};

/// Prometheus's port list is full from 9100 to 9999; lapse takes a port
/// above it that no common exporter uses.
pub const DEFAULT_LISTEN: &str = ":10070";
pub const DEFAULT_RESCAN_SECONDS: i64 = 300;

/// The root's own fields, in the order problems list them.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct Root {
    /// The file source: `paths`, `include`, `exclude`, `max_file_size`.
    files: Option<Value>,
    /// Kubeconfig files to read (default: `$KUBECONFIG` or `~/.kube/config`).
    kubeconfigs: TextList,
    /// Declared lifetimes of opaque tokens.
    tokens: Option<Value>,
    /// `warning` and `critical` windows.
    thresholds: Option<Value>,
    /// `HOST:PORT` for `lapse serve`.
    listen: Text,
    /// exporter-toolkit web configuration (TLS, basic auth).
    web_config_file: Text,
    /// The safety-net full rescan, at least 10s.
    rescan_interval: Text,
    /// The Kubernetes source (present, even empty: on).
    kubernetes: Option<Value>,
    /// Email notifications.
    notify: Option<Value>,
    /// Files holding one PKCS#12 password each.
    keystore_passwords: TextList,
    /// The HTTP server's timeouts and connection bound.
    http: Option<Value>,
    /// Which families `/metrics` writes, and constant labels.
    metrics: Option<Value>,
}

/// `thresholds:`.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct ThresholdsSection {
    /// Warn when a credential lapses within this window (default 30d).
    warning: Text,
    /// Critical within this window (default 7d); not longer than `warning`.
    critical: Text,
}

#[derive(Clone, Debug)]
pub struct Config {
    pub paths: Vec<PathBuf>,
    pub include: Vec<String>,
    pub exclude: Vec<String>,
    pub max_file_size: u64,
    /// `files.read_timeout` (seconds) and `files.max_watches`.
    pub read_timeout: u64,
    pub max_watches: Option<usize>,
    /// `None`: `$KUBECONFIG` or `~/.kube/config`, when present.
    pub kubeconfigs: Option<Vec<PathBuf>>,
    pub tokens: Vec<TokenRule>,
    pub thresholds: Thresholds,
    pub listen: String,
    pub web_config_file: Option<PathBuf>,
    pub rescan_interval: i64,
    /// `kubernetes:` present (even `{}`): watch Secrets and ConfigMaps.
    pub kubernetes: Option<KubernetesConfig>,
    /// The files `keystore_passwords` names, one PKCS#12 password each.
    pub keystore_password_files: Vec<PathBuf>,
    /// Their contents, once [`Config::resolve`] has read them (never
    /// written in lapse.yaml itself).
    pub keystore_passwords: Vec<String>,
    pub notify: Option<NotifyConfig>,
    /// `http:`: the server's timeouts and connection bound.
    pub http: HttpLimits,
    /// `metrics:`: families, descriptive labels, constant labels.
    pub metrics: MetricsConfig,
}

impl Default for Config {
    fn default() -> Self {
        let files = FilesConfig::default();
        Config {
            paths: files.paths,
            include: files.include,
            exclude: files.exclude,
            max_file_size: files.max_file_size,
            read_timeout: files.read_timeout,
            max_watches: files.max_watches,
            kubeconfigs: None,
            tokens: Vec::new(),
            thresholds: Thresholds::default(),
            listen: DEFAULT_LISTEN.to_string(),
            web_config_file: None,
            rescan_interval: DEFAULT_RESCAN_SECONDS,
            kubernetes: None,
            keystore_password_files: Vec::new(),
            keystore_passwords: Vec::new(),
            notify: None,
            http: HttpLimits::default(),
            metrics: MetricsConfig::default(),
        }
    }
}

impl Config {
    /// Reads, validates and resolves `path` (see [`Config::parse_and_resolve`]);
    /// every problem is returned, each `PATH: field: problem`.
    pub fn load(path: &Path) -> Result<Config, Vec<String>> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| vec![format!("{}: cannot read: {e}", path.display())])?;
        let base = path.parent().unwrap_or(Path::new("")).to_path_buf();
        Config::parse_and_resolve(&text, &base).map_err(|problems| {
            problems
                .into_iter()
                .map(|p| format!("{}: {p}", path.display()))
                .collect()
        })
    }

    /// [`Config::parse`], then [`Config::resolve`]: the problems of both
    /// at once (what can be read is read even when the document has
    /// problems elsewhere).
    pub fn parse_and_resolve(text: &str, base: &Path) -> Result<Config, Vec<String>> {
        let (mut config, mut problems) = Config::validate(text, base)?;
        if let Err(more) = config.resolve() {
            problems.extend(more);
        }
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(problems)
        }
    }

    /// Validates YAML text; relative paths resolve against `base`. Reads nothing.
    pub fn parse(text: &str, base: &Path) -> Result<Config, Vec<String>> {
        let (config, problems) = Config::validate(text, base)?;
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(problems)
        }
    }

    /// The document as far as it is valid, and its problems; `Err` when it
    /// is not one YAML document.
    fn validate(text: &str, base: &Path) -> Result<(Config, Vec<String>), Vec<String>> {
        let docs: Vec<Value> = crate::yaml::documents(text).map_err(|e| vec![e])?;
        let doc = match docs.as_slice() {
            [] => Value::Object(Map::new()),
            [one] => one.clone(),
            _ => return Err(vec!["expected one YAML document".into()]),
        };
        let mut cx = Context::new(base);
        let config = read_root(&doc, &mut cx);
        Ok((config, cx.problems.0))
    }

    /// What lapse reads when it starts: the keystore password files and
    /// the SMTP password. Every problem at once, each naming its field.
    pub fn resolve(&mut self) -> Result<(), Vec<String>> {
        let mut problems = Vec::new();
        self.keystore_passwords.clear();
        for (i, path) in self.keystore_password_files.iter().enumerate() {
            match std::fs::read_to_string(path) {
                Ok(p) => self
                    .keystore_passwords
                    .push(p.trim_end_matches(['\r', '\n']).to_string()),
                Err(e) => problems.push(format!(
                    "keystore_passwords[{i}]: cannot read {}: {e}",
                    path.display()
                )),
            }
        }
        if let Some(k) = self.kubernetes.as_mut() {
            k.passwords = self.keystore_passwords.clone();
        }
        if let Some(n) = self.notify.as_mut()
            && let Err(e) = n.smtp.resolve_password()
        {
            problems.push(e);
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }
}

fn read_root(doc: &Value, cx: &mut Context) -> Config {
    let mut c = Config::default();
    let Some(root) = cx.section::<Root>("", doc) else {
        return c;
    };
    if let Some(v) = &root.files
        && let Some(files) = files_config::read_files(v, cx)
    {
        c.paths = files.paths;
        c.include = files.include;
        c.exclude = files.exclude;
        c.max_file_size = files.max_file_size;
        c.read_timeout = files.read_timeout;
        c.max_watches = files.max_watches;
    }
    if let Some(k) = root.kubeconfigs.0 {
        c.kubeconfigs = Some(k.iter().map(|p| cx.path(p)).collect());
    }
    if let Some(rules) = doc.get("tokens") {
        c.tokens = files_config::read_token_rules(rules, cx);
    }
    if let Some(t) = &root.thresholds
        && let Some(t) = cx.section::<ThresholdsSection>("thresholds", t)
    {
        if let Some(w) = cx.duration("thresholds.warning", &t.warning) {
            c.thresholds.warning = w;
        }
        if let Some(cr) = cx.duration("thresholds.critical", &t.critical) {
            c.thresholds.critical = cr;
        }
        if c.thresholds.critical > c.thresholds.warning {
            cx.problem(
                "thresholds.critical",
                "must not be longer than thresholds.warning",
            );
        }
    }
    if let Some(l) = root.listen.0 {
        if l.rsplit_once(':')
            .is_none_or(|(_, port)| port.parse::<u16>().is_err())
        {
            cx.problem("listen", format!("{l:?} is not HOST:PORT"));
        }
        c.listen = l;
    }
    if let Some(w) = root.web_config_file.get() {
        c.web_config_file = Some(cx.path(w));
    }
    if let Some(r) = cx.duration("rescan_interval", &root.rescan_interval) {
        if r < 10 {
            cx.problem("rescan_interval", "must be at least 10s");
        }
        c.rescan_interval = r;
    }
    c.keystore_password_files = root
        .keystore_passwords
        .items()
        .iter()
        .map(|f| cx.path(f))
        .collect();
    // `kubernetes:` with nothing after it turns the source on, with defaults.
    if doc.get("kubernetes").is_some() {
        let v = root.kubernetes.unwrap_or(Value::Null);
        c.kubernetes = kubernetes_config::read(&v, cx);
    }
    if let Some(n) = &root.notify {
        c.notify = crate::notify::config::read(n, cx);
    }
    if let Some(h) = &root.http {
        c.http = http_limits::read(h, cx);
    }
    if let Some(m) = &root.metrics {
        c.metrics = metrics_config::read(m, cx);
    }
    c
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
mod start_up_tests {
    use super::*;

    #[test]
    fn keystore_passwords_are_read_at_start_up_and_reach_the_kubernetes_source() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("p12.pass"), "changeit\n").unwrap();
        let text = "keystore_passwords: [p12.pass]\nkubernetes: {namespaces: [web]}\n";
        // Validation reads nothing.
        let parsed = Config::parse(text, dir.path()).unwrap();
        assert_eq!(
            parsed.keystore_password_files,
            [dir.path().join("p12.pass")]
        );
        assert!(parsed.keystore_passwords.is_empty());
        let c = Config::parse_and_resolve(text, dir.path()).unwrap();
        assert_eq!(c.keystore_passwords, ["changeit"]);
        assert_eq!(c.kubernetes.unwrap().passwords, ["changeit"]);
    }

    #[test]
    fn problems_of_validation_and_start_up_come_together_each_naming_its_field() {
        // The kubernetes: section's own problems are its tests' business
        // (source/kubernetes/config.rs); here, that start-up's come with them.
        let err = Config::parse_and_resolve(
            "keystore_passwords: [/nonexistent/pass]\nkubernetes: {nodes: true}\n",
            Path::new("/"),
        )
        .unwrap_err();
        assert_eq!(err.len(), 2, "{err:#?}");
        assert!(
            err[0].starts_with("kubernetes.nodes: unknown field"),
            "{err:#?}"
        );
        assert!(
            err[1].starts_with("keystore_passwords[0]: cannot read /nonexistent/pass"),
            "{err:#?}"
        );
    }
}
