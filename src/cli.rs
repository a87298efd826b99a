//! Command-line definitions for `lapse check`. Parsing only: no I/O.

use crate::logging::limit::Limits;
use crate::timefmt::parse_timestamp;
use crate::units::{parse_duration, parse_size};
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Parser)]
#[command(
    name = "lapse",
    version,
    long_version = crate::telemetry::LONG_VERSION,
    about = "Finds every certificate and token you depend on and tells you when each lapses"
)]
pub struct Cli {
    /// More log output on stderr (-v: info, -vv: debug, -vvv: every file read). Logs never contain secrets.
    #[arg(short, long, action = clap::ArgAction::Count, global = true, conflicts_with = "log_level")]
    pub verbose: u8,
    /// Log only at this level and above [default: info for serve, warn for check].
    #[arg(long = "log.level", global = true, value_enum, value_name = "LEVEL")]
    pub log_level: Option<LogLevel>,
    /// Log lines as logfmt (`ts=... level=info msg="..."`) or one JSON object a line.
    #[arg(long = "log.format", global = true, value_enum, value_name = "FORMAT",
          default_value_t = LogFormat::Logfmt)]
    pub log_format: LogFormat,
    /// The same warning (one log statement) at most N times per --log.repeat-window;
    /// the rest is counted in one line when the window ends (0: no limit).
    #[arg(
        long = "log.max-repeats",
        global = true,
        value_name = "N",
        default_value_t = 10
    )]
    pub log_max_repeats: u32,
    /// The window of --log.max-repeats, e.g. 1m or 30s.
    #[arg(long = "log.repeat-window", global = true, value_name = "DURATION",
          value_parser = parse_window, default_value = "1m")]
    pub log_repeat_window: Duration,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Logfmt,
    Json,
}

impl Cli {
    /// `--log.level`, else `-v`…, else the command's default: `serve`
    /// says where it listens, `check` (run from cron) stays quiet.
    pub fn log_level(&self) -> tracing::Level {
        use tracing::Level;
        match (self.log_level, self.verbose, &self.command) {
            (Some(LogLevel::Debug), ..) => Level::DEBUG,
            (Some(LogLevel::Info), ..) => Level::INFO,
            (Some(LogLevel::Warn), ..) => Level::WARN,
            (Some(LogLevel::Error), ..) => Level::ERROR,
            (None, 0, Command::Serve(_)) => Level::INFO,
            (None, 0, Command::Check(_)) => Level::WARN,
            (None, 1, _) => Level::INFO,
            (None, 2, _) => Level::DEBUG,
            (None, _, _) => Level::TRACE,
        }
    }

    pub fn log_format(&self) -> crate::logging::Format {
        match self.log_format {
            LogFormat::Logfmt => crate::logging::Format::Logfmt,
            LogFormat::Json => crate::logging::Format::Json,
        }
    }

    /// How much of one warning the log takes.
    pub fn log_limits(&self) -> Limits {
        Limits {
            max_repeats: self.log_max_repeats,
            window: self.log_repeat_window,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Scan once and report. Exit status: 2 expired or critical, 1 warning
    /// or not yet valid, 3 errors only or nothing found, 0 all fine (the
    /// Nagios plugin convention).
    Check(CheckArgs),
    /// Export seconds-to-expiry for Prometheus, watching files for changes.
    Serve(ServeArgs),
    /// Print a shell completion script, e.g. `source <(lapse completions bash)`.
    Completions(CompletionsArgs),
    /// Print the lapse(1) manual page (roff), e.g. `lapse man | man -l -`.
    Man(ManArgs),
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// A subcommand's page instead, e.g. `check` for lapse-check(1).
    pub subcommand: Option<String>,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete in.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
    /// A monitoring plugin's output: a status line with performance data,
    /// then the most urgent credentials and the errors.
    Nagios,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Color {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Files, directories, kubeconfigs or object dumps; `-` reads standard input.
    /// A quoted glob ('/opt/wssd/k8s/*.yaml', 'pki/**/*.crt') is expanded by lapse.
    /// With none, the kubeconfig(s) in $KUBECONFIG or ~/.kube/config.
    pub paths: Vec<PathBuf>,
    /// lapse.yaml: paths, token lifetimes and thresholds (flags win over it).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Warn when a credential lapses within this window (e.g. 30d, 12h, 90s) [default: 30d].
    #[arg(long, value_parser = parse_duration)]
    pub warning: Option<i64>,
    /// Critical when a credential lapses within this window [default: 7d].
    #[arg(long, value_parser = parse_duration)]
    pub critical: Option<i64>,
    /// table for people, json for tools, nagios for Icinga, Naemon and Nagios.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Judge as if it were this time (RFC 3339), e.g. before a change freeze.
    #[arg(long, value_parser = parse_at)]
    pub at: Option<i64>,
    /// Only walk files matching this glob (repeatable). Without `/` it matches file names.
    #[arg(long)]
    pub include: Vec<String>,
    /// Skip files and directories matching this glob (repeatable).
    #[arg(long)]
    pub exclude: Vec<String>,
    /// Files larger than this are reported as errors, not read [default: 16MiB].
    #[arg(long, value_parser = parse_size)]
    pub max_file_size: Option<u64>,
    /// Colour the table: auto (only on a terminal, honouring NO_COLOR), always, never.
    #[arg(long, value_enum, default_value_t = Color::Auto)]
    pub color: Color,
    /// Finding no credential and no error is fine (exit 0), not exit 3.
    #[arg(long)]
    pub allow_empty: bool,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Files and directories to watch, besides the configuration's and the
    /// user's kubeconfig(s). A quoted glob is matched afresh at every scan.
    pub paths: Vec<PathBuf>,
    /// lapse.yaml.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: the config's `listen`, else :10070].
    #[arg(long = "web.listen-address")]
    pub listen: Option<String>,
    /// exporter-toolkit web configuration (TLS, basic auth).
    #[arg(long = "web.config.file")]
    pub web_config_file: Option<PathBuf>,
    /// Path under which to expose metrics.
    #[arg(long = "web.telemetry-path", value_name = "PATH",
          value_parser = parse_telemetry_path, default_value = "/metrics")]
    pub telemetry_path: String,
    /// A label NAME=VALUE on every series (repeatable), e.g. the node a
    /// DaemonSet's pod runs on: --metrics.label node=$(NODE_NAME).
    #[arg(long = "metrics.label", value_name = "NAME=VALUE",
          value_parser = crate::output::metrics::config::parse_label_flag)]
    pub metrics_labels: Vec<(String, String)>,
    /// The credential families to write: all, or names separated by commas
    /// [default: the config's metrics.families, else expires_in_seconds,
    /// validity_seconds, no_expiry, warn_after_timestamp_seconds, info].
    #[arg(long = "metrics.families", value_name = "LIST",
          value_parser = crate::output::metrics::config::parse_families_flag)]
    pub metrics_families: Option<crate::output::metrics::config::FamiliesFlag>,
}

fn parse_telemetry_path(text: &str) -> Result<String, String> {
    if text.starts_with('/') && !text.contains(['?', '#']) {
        Ok(text.to_string())
    } else {
        Err("a path starting with /, without ? or #, e.g. /metrics".into())
    }
}

fn parse_window(text: &str) -> Result<Duration, String> {
    match parse_duration(text)? {
        0 => Err("the window must be at least 1s".into()),
        seconds => Ok(Duration::from_secs(seconds.unsigned_abs())),
    }
}

fn parse_at(text: &str) -> Result<i64, String> {
    parse_timestamp(text).ok_or_else(|| format!("{text:?} is not an RFC 3339 time"))
}
