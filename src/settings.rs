//! CLI flags and `lapse.yaml` made into one [`Settings`], so `lapse check`
//! and `lapse serve` read the same sources the same way: which files, with
//! which filter, caps, token rules and keystore passwords; whether the
//! Kubernetes API is read; thresholds; where to listen; mail.
//!
//! Flags win over the file. Every problem is reported at once, each naming
//! its field: printed by `check` (exit status 3); returned by
//! [`Settings::serve`], which `serve` prints at start-up (exit status 3)
//! and logs on reload (keeping what it runs). Nothing here scans anything.

use crate::cli::{CheckArgs, ServeArgs};
use crate::config::Config;
use crate::credential::{ErrorEntry, ErrorReason, Thresholds};
use crate::http::limits::HttpLimits;
use crate::http::web_config::WebConfig;
use crate::logging::plain::plain;
use crate::notify::NotifyConfig;
use crate::output::metrics::MetricsConfig;
use crate::parse::token_rules::TokenRule;
use crate::source::files::scanner::ScanOptions;
use crate::source::files::walk::Filter;
use crate::source::kubernetes::config::KubernetesConfig;
use prometheus_client::metrics::counter::Counter;
use std::path::{Path, PathBuf};

/// Everything a command needs to start its sources and readers.
#[derive(Debug)]
pub struct Settings {
    /// Files and directories the file source reads.
    pub roots: Vec<PathBuf>,
    pub scan: ScanOptions,
    pub thresholds: Thresholds,
    /// `kubernetes:` present: read Secrets and ConfigMaps from the API.
    pub kubernetes: Option<KubernetesConfig>,
    pub notify: Option<NotifyConfig>,
    pub listen: String,
    /// TLS, basic auth and headers for `serve` (none for `check`).
    pub web: WebConfig,
    /// Timeouts and the connection bound for `serve`.
    pub http: HttpLimits,
    pub rescan_interval: i64,
    /// What `/metrics` writes (`metrics:` and `--metrics.label`).
    pub metrics: MetricsConfig,
    /// Problems met while choosing the roots (no kubeconfig found), to
    /// report beside the scan's own.
    pub errors: Vec<ErrorEntry>,
}

/// The kubeconfig files client-go would load: `$KUBECONFIG` (a `:`-separated
/// list) or `~/.kube/config`.
pub fn default_kubeconfigs() -> Vec<PathBuf> {
    if let Some(list) = std::env::var_os("KUBECONFIG") {
        let paths: Vec<PathBuf> = std::env::split_paths(&list)
            .filter(|p| !p.as_os_str().is_empty())
            .collect();
        if !paths.is_empty() {
            return paths;
        }
    }
    std::env::var_os("HOME")
        .map(|h| vec![PathBuf::from(h).join(".kube/config")])
        .unwrap_or_default()
}

/// Reads `--config` and what it names to read at start-up (password
/// files); every problem as `FILE: field: problem`.
fn read_config(path: Option<&Path>) -> Result<Config, Vec<String>> {
    match path {
        None => Ok(Config::default()),
        Some(p) => Config::load(p),
    }
}

/// [`read_config`], printing every problem as `lapse: FILE: field:
/// problem`. `None` after printing.
fn load_config(path: Option<&Path>) -> Option<Config> {
    read_config(path)
        .map_err(|problems| {
            for p in problems {
                eprintln!("lapse: {}", plain(&p));
            }
        })
        .ok()
}

/// The configured kubeconfigs, else the user's that exist (a container
/// often has none).
fn kubeconfigs(config: &Config) -> Vec<PathBuf> {
    config.kubeconfigs.clone().unwrap_or_else(|| {
        default_kubeconfigs()
            .into_iter()
            .filter(|p| p.exists())
            .collect()
    })
}

/// What `tokens:` rules name by path (a pattern with `/`): the files that
/// match now, found by walking the pattern's literal directory no deeper
/// than the pattern goes; a literal directory that is missing is itself a
/// root, so it is reported as not found instead of silently matching
/// nothing. Name-only patterns (`*.token`) apply to walked files.
pub fn token_rule_roots(rules: &[TokenRule]) -> Vec<PathBuf> {
    /// At most this many entries are looked at per rule.
    const MAX_ENTRIES: usize = 100_000;
    let mut roots = Vec::new();
    for rule in rules.iter().filter(|r| r.glob.contains('/')) {
        let pattern = Path::new(&rule.glob);
        let wild = |c: &std::path::Component| {
            c.as_os_str()
                .to_string_lossy()
                .contains(['*', '?', '[', '{'])
        };
        let components: Vec<_> = pattern.components().collect();
        let literal = components.iter().take_while(|c| !wild(c)).count();
        if literal == components.len() {
            roots.push(pattern.to_path_buf());
            continue;
        }
        let base: PathBuf = components[..literal].iter().collect();
        if !base.is_dir() {
            roots.push(base);
            continue;
        }
        let rest = &components[literal..];
        let deep = rest.iter().any(|c| c.as_os_str() == "**");
        let mut walk = walkdir::WalkDir::new(&base).follow_links(true);
        if !deep {
            walk = walk.max_depth(rest.len());
        }
        roots.extend(
            walk.into_iter()
                .take(MAX_ENTRIES)
                .filter_map(Result::ok)
                .filter(|e| e.file_type().is_file() && rule.matches_path(e.path()))
                .map(|e| e.into_path()),
        );
    }
    roots
}

/// Sources and options shared by both commands; the problem is a bad glob.
fn scan_options(
    config: &Config,
    include: &[String],
    exclude: &[String],
) -> Result<ScanOptions, String> {
    let include = [config.include.clone(), include.to_vec()].concat();
    let exclude = [config.exclude.clone(), exclude.to_vec()].concat();
    Ok(ScanOptions {
        filter: Filter::new(&include, &exclude)?,
        max_file_size: config.max_file_size,
        token_rules: config.tokens.clone(),
        passwords: config.keystore_passwords.clone(),
        read_timeout: std::time::Duration::from_secs(config.read_timeout),
        max_watches: config.max_watches,
        ..ScanOptions::default()
    })
}

/// [`scan_options`], printing the problem. `None` after printing.
fn common(config: &Config, include: &[String], exclude: &[String]) -> Option<ScanOptions> {
    scan_options(config, include, exclude)
        .map_err(|e| eprintln!("lapse: {}", plain(&e.to_string())))
        .ok()
}

impl Settings {
    fn from_config(config: Config, scan: ScanOptions, roots: Vec<PathBuf>) -> Settings {
        Settings {
            roots,
            scan,
            thresholds: config.thresholds,
            kubernetes: config.kubernetes,
            notify: config.notify,
            listen: config.listen,
            web: WebConfig::none(),
            http: config.http,
            rescan_interval: config.rescan_interval,
            metrics: config.metrics,
            errors: Vec::new(),
        }
    }

    /// `lapse check`: the paths given (`-` is standard input, read by the
    /// command), else everything `--config` configures, else the user's
    /// kubeconfig(s). `None` after printing what is wrong.
    pub fn check(args: &CheckArgs) -> Option<Settings> {
        let config = load_config(args.config.as_deref())?;
        let thresholds = Thresholds {
            warning: args.warning.unwrap_or(config.thresholds.warning),
            critical: args.critical.unwrap_or(config.thresholds.critical),
        };
        if thresholds.critical > thresholds.warning {
            eprintln!(
                "lapse: --warning ({}) is shorter than --critical ({}): warning must be the longer window",
                crate::units::human_span(thresholds.warning),
                crate::units::human_span(thresholds.critical)
            );
            return None;
        }
        let mut scan = common(&config, &args.include, &args.exclude)?;
        if let Some(cap) = args.max_file_size {
            scan.max_file_size = cap;
        }
        let mut errors = Vec::new();
        let roots: Vec<PathBuf> = if !args.paths.is_empty() {
            args.paths
                .iter()
                .filter(|p| p.as_os_str() != "-")
                .cloned()
                .collect()
        } else if args.config.is_some() {
            let mut roots = config.paths.clone();
            roots.extend(kubeconfigs(&config));
            roots.extend(token_rule_roots(&config.tokens));
            roots.sort();
            roots.dedup();
            roots
        } else {
            let roots = default_kubeconfigs();
            if roots.iter().all(|p| !p.exists()) {
                errors.push(ErrorEntry {
                    path: roots
                        .first()
                        .map(|p| p.display().to_string())
                        .unwrap_or_else(|| "~/.kube/config".into()),
                    entry: None,
                    reason: ErrorReason::NotFound,
                    message:
                        "no kubeconfig found: pass files or directories to check, or set KUBECONFIG"
                            .into(),
                });
                Vec::new()
            } else {
                roots
            }
        };
        // Paths given on the command line are all that is checked.
        let kubernetes = if args.paths.is_empty() {
            config.kubernetes.clone()
        } else {
            None
        };
        let mut settings = Settings::from_config(config, scan, roots);
        settings.thresholds = thresholds;
        settings.kubernetes = kubernetes;
        settings.errors = errors;
        Some(settings)
    }

    /// `lapse serve`, at start-up and on reload: the paths given, the
    /// configuration's, its token rules' files and the kubeconfig(s),
    /// together. Every problem is returned, each as `FILE: field: problem`
    /// (the caller prints or logs them); nothing is printed here. A bad
    /// serving certificate met later is counted in `certificate_failures`.
    pub fn serve(args: &ServeArgs, certificate_failures: Counter) -> Result<Settings, Vec<String>> {
        let config = read_config(args.config.as_deref())?;
        let web = match args
            .web_config_file
            .as_ref()
            .or(config.web_config_file.as_ref())
        {
            None => WebConfig::none(),
            Some(path) => {
                WebConfig::load_counting(path, certificate_failures).map_err(|problems| {
                    problems
                        .into_iter()
                        .map(|p| format!("{}: {p}", path.display()))
                        .collect::<Vec<_>>()
                })?
            }
        };
        let scan = scan_options(&config, &[], &[]).map_err(|e| vec![e])?;
        let mut roots: Vec<PathBuf> = args.paths.clone();
        roots.extend(config.paths.iter().cloned());
        roots.extend(kubeconfigs(&config));
        roots.extend(token_rule_roots(&config.tokens));
        roots.sort();
        roots.dedup();
        // A Pod reading its cluster has no file to watch, and needs none.
        if roots.is_empty() && config.kubernetes.is_none() {
            return Err(vec![
                "nothing to watch: pass paths, list files.paths in --config, or set KUBECONFIG"
                    .to_string(),
            ]);
        }
        let mut settings = Settings::from_config(config, scan, roots);
        if let Some(listen) = &args.listen {
            settings.listen = listen.clone();
        }
        settings.web = web;
        settings.metrics = std::mem::take(&mut settings.metrics)
            .with_flags(args.metrics_families.as_ref(), &args.metrics_labels)
            .map_err(|e| vec![format!("--metrics.label: {e}")])?;
        Ok(settings)
    }
}
