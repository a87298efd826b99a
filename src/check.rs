//! `lapse check`: scan once, print a report, exit with the Nagios/Icinga
//! convention (2 expired or critical, 1 warning, 3 errors only, 0 fine).

use crate::cli::{CheckArgs, Color, Format};
use crate::config::Config;
use crate::credential::{ErrorEntry, ErrorReason, Thresholds};
use crate::output::check_report::Report;
use crate::source::files::{Filter, ScanOptions, scan};
use crate::units::human_bytes;
use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;

/// Exit status for problems with the invocation itself (Nagios UNKNOWN).
pub const EXIT_UNKNOWN: i32 = 3;

pub use crate::timefmt::now;

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

/// Reads `--config`, printing every problem; `None` after printing.
pub fn load_config(path: Option<&std::path::Path>) -> Option<Config> {
    match path {
        None => Some(Config::default()),
        Some(p) => match Config::load(p) {
            Ok(c) => Some(c),
            Err(problems) => {
                for p in problems {
                    eprintln!("lapse: {p}");
                }
                None
            }
        },
    }
}

pub fn run(args: &CheckArgs) -> i32 {
    let Some(config) = load_config(args.config.as_deref()) else {
        return EXIT_UNKNOWN;
    };
    let thresholds = Thresholds {
        warning: args.warning.unwrap_or(config.thresholds.warning),
        critical: args.critical.unwrap_or(config.thresholds.critical),
    };
    if thresholds.critical > thresholds.warning {
        eprintln!("lapse: --critical must not be longer than --warning");
        return EXIT_UNKNOWN;
    }
    let include = [config.include.clone(), args.include.clone()].concat();
    let exclude = [config.exclude.clone(), args.exclude.clone()].concat();
    let filter = match Filter::new(&include, &exclude) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("lapse: {e}");
            return EXIT_UNKNOWN;
        }
    };
    let max_file_size = args.max_file_size.unwrap_or(config.max_file_size);
    let opts = ScanOptions {
        filter,
        max_file_size,
        token_rules: config.tokens.clone(),
        passwords: config.keystore_passwords.clone(),
        ..ScanOptions::default()
    };
    let mut extra_errors = Vec::new();
    let mut stdin_bytes = None;
    let mut roots: Vec<PathBuf> = Vec::new();
    for p in &args.paths {
        if p.as_os_str() == "-" {
            match read_stdin(max_file_size) {
                Ok(b) => stdin_bytes = Some(b),
                Err(e) => extra_errors.push(e),
            }
        } else {
            roots.push(p.clone());
        }
    }
    if args.paths.is_empty() && args.config.is_some() {
        roots = config.paths.clone();
        roots.extend(config.kubeconfigs.clone().unwrap_or_else(|| {
            default_kubeconfigs()
                .into_iter()
                .filter(|p| p.exists())
                .collect()
        }));
    } else if args.paths.is_empty() {
        roots = default_kubeconfigs();
        if roots.iter().all(|p| !p.exists()) {
            extra_errors.push(ErrorEntry {
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
            roots.clear();
        }
    }
    let mut result = scan(&roots, stdin_bytes.as_deref(), &opts);
    if !extra_errors.is_empty() {
        result.errors.extend(extra_errors);
        result.sort();
    }
    // The process exits right after the report: freeing every record one
    // by one would cost more than writing them (milliseconds at 10,000).
    let result = std::mem::ManuallyDrop::new(result);

    let report = Report {
        now: args.at.unwrap_or_else(now),
        thresholds,
        result: &result,
    };
    let mut stdout = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    let written = match args.format {
        Format::Json => report.write_json(&mut stdout),
        Format::Table => {
            let color = match args.color {
                Color::Always => true,
                Color::Never => false,
                Color::Auto => {
                    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
                }
            };
            let errors_on_terminal = std::io::stderr().is_terminal() && color;
            eprint!("{}", report.errors_text(errors_on_terminal));
            write!(stdout, "{}", report.to_table(color))
        }
    };
    if let Err(e) = written.and_then(|_| stdout.flush())
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        eprintln!("lapse: cannot write the report: {e}");
        return EXIT_UNKNOWN;
    }
    report.exit_code()
}

fn read_stdin(cap: u64) -> Result<Vec<u8>, ErrorEntry> {
    let mut bytes = Vec::new();
    let error = |reason, message| ErrorEntry {
        path: "-".into(),
        entry: None,
        reason,
        message,
    };
    std::io::stdin()
        .lock()
        .take(cap + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| error(ErrorReason::Read, e.to_string()))?;
    if bytes.len() as u64 > cap {
        return Err(error(
            ErrorReason::TooLarge,
            format!("larger than the {} size cap; not read", human_bytes(cap)),
        ));
    }
    Ok(bytes)
}
