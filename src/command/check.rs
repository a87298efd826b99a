//! `lapse check`: every configured source read once — files, and the
//! Kubernetes API when `--config` has a `kubernetes:` section — into the
//! same inventory `serve` uses; its snapshot is printed as a report, and
//! the exit status follows the Nagios/Icinga convention (2 expired or
//! critical, 1 warning or not yet valid, 3 errors only or nothing found at
//! all, 0 fine).

use super::EXIT_UNKNOWN;
use crate::cli::{CheckArgs, Color, Format};
use crate::credential::{ErrorEntry, ErrorReason};
use crate::inventory::{Inventory, SourceReport};
use crate::logging::plain::plain;
use crate::output::check_report::{Listing, Report};
use crate::output::nagios;
use crate::settings::Settings;
use crate::source::files::{self, pattern, scanner};
use crate::source::kubernetes;
use crate::timefmt::now;
use crate::units::human_bytes;
use std::io::{IsTerminal, Read, Write};

pub fn run(args: &CheckArgs) -> i32 {
    let Some(settings) = Settings::check(args) else {
        return EXIT_UNKNOWN;
    };
    let mut extra_errors = settings.errors.clone();
    let mut stdin_bytes = None;
    if args.paths.iter().any(|p| p.as_os_str() == "-") {
        match read_stdin(settings.scan.max_file_size) {
            Ok(b) => stdin_bytes = Some(b),
            Err(e) => extra_errors.push(e),
        }
    }
    let mut sources = vec![files::SOURCE];
    if settings.kubernetes.is_some() {
        sources.push(kubernetes::SOURCE);
    }
    let inventory = Inventory::new(&sources);
    let mut notices = Notices::new(args.format);
    // A pattern that matches nothing is no error (nothing may be there
    // yet), but a check that silently read nothing would mislead.
    let expansion = pattern::expand(&settings.roots);
    for p in &expansion.unmatched {
        notices.say(format!(
            "{}: no file matches this pattern",
            plain(&p.display().to_string())
        ));
    }
    extra_errors.extend(expansion.errors);
    let mut report = scanner::read_once(&expansion.roots, stdin_bytes.as_deref(), &settings.scan);
    let silent = silent_files(args, &report);
    report.errors.extend(extra_errors);
    inventory.publish(files::SOURCE, report);
    if let Some(config) = &settings.kubernetes {
        inventory.publish(kubernetes::SOURCE, list_cluster(config));
    }
    let snapshot = inventory.snapshot();
    let listing = Listing::of(&snapshot);
    let empty = listing.credentials.is_empty() && listing.errors.is_empty() && !args.allow_empty;
    let summary = empty.then(|| nothing_found(stdin_bytes.is_some(), &settings));
    let mut after = Vec::new();
    for path in silent {
        let path = plain(&path).into_owned();
        // The summary names a file it lists; one line about it is enough.
        if !summary
            .as_ref()
            .is_some_and(|(_, named)| named.contains(&path))
        {
            after.push(format!("{path}: no credential found in this file"));
        }
    }
    let mut code = if notices.nagios {
        notices.held.append(&mut after);
        let why = summary.as_ref().map(|(text, _)| text.as_str());
        print_nagios(args, &settings, &listing, why, &notices.held)
    } else {
        print(args, &settings, &listing)
    };
    for text in after {
        eprintln!("lapse: {text}");
    }
    if let Some((text, _)) = summary {
        if !notices.nagios {
            eprintln!("lapse: {text}");
        }
        code = EXIT_UNKNOWN;
    }
    // The process exits right after the report: freeing every record one
    // by one would cost more than writing them (milliseconds at 10,000).
    std::mem::forget(listing);
    std::mem::forget(snapshot);
    std::mem::forget(inventory);
    crate::logging::flush();
    code
}

/// The files named on the command line (not `-`, a directory or a
/// pattern) that gave neither a credential nor an error: a format lapse
/// does not read, or a file that holds none, is said, not passed over.
fn silent_files(args: &CheckArgs, report: &SourceReport) -> Vec<String> {
    let mut said = std::collections::HashSet::new();
    args.paths
        .iter()
        .filter(|p| p.as_os_str() != "-" && !p.is_dir() && !pattern::is_pattern(p))
        .filter(|p| {
            report.parts.iter().any(|part| {
                *part.path == ***p && part.credentials.is_empty() && part.errors.is_empty()
            })
        })
        .filter(|p| said.insert(*p))
        .map(|p| p.display().to_string())
        .collect()
}

/// Why an empty report is not a clean one: what was looked at, so a
/// failed `kubectl get … | lapse check -` reads as the failure it is;
/// with the places the text names.
fn nothing_found(stdin: bool, settings: &Settings) -> (String, Vec<String>) {
    const NAMED: usize = 3;
    let mut places: Vec<String> = Vec::new();
    if stdin {
        places.push("-".into());
    }
    places.extend(
        settings
            .roots
            .iter()
            .map(|p| plain(&p.display().to_string()).into_owned()),
    );
    if settings.kubernetes.is_some() {
        places.push("the Kubernetes API".into());
    }
    if places.is_empty() {
        return ("nothing found to check: no paths to read".into(), places);
    }
    let more = places.len().saturating_sub(NAMED);
    places.truncate(NAMED);
    let mut text = format!("nothing found to check in {}", places.join(", "));
    if more > 0 {
        text.push_str(&format!(" and {more} more"));
    }
    (text, places)
}

/// One LIST per scope, then done; a runtime only for that.
fn list_cluster(config: &kubernetes::config::KubernetesConfig) -> SourceReport {
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime.block_on(kubernetes::list_once(config)),
        Err(e) => SourceReport {
            errors: vec![ErrorEntry {
                path: "kubernetes".into(),
                entry: None,
                reason: ErrorReason::Unreachable,
                message: format!("cannot start the Kubernetes client: {e}"),
            }],
            ..Default::default()
        },
    }
}

/// Lines about what was read that are no report entry: on stderr, but in
/// the long text of the Nagios output, since Icinga 2 reads stderr into
/// the same output and a line ahead of the status line would replace it.
struct Notices {
    nagios: bool,
    held: Vec<String>,
}

impl Notices {
    fn new(format: Format) -> Self {
        Notices {
            nagios: format == Format::Nagios,
            held: Vec::new(),
        }
    }

    fn say(&mut self, text: String) {
        if self.nagios {
            self.held.push(text);
        } else {
            eprintln!("lapse: {text}");
        }
    }
}

/// The plugin output; its state word and the exit status agree.
fn print_nagios(
    args: &CheckArgs,
    settings: &Settings,
    listing: &Listing,
    nothing_found: Option<&str>,
    notices: &[String],
) -> i32 {
    let report = Report {
        now: args.at.unwrap_or_else(now),
        thresholds: settings.thresholds,
        listing,
    };
    let text = nagios::render(&report, nothing_found, notices);
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout
        .write_all(text.as_bytes())
        .and_then(|_| stdout.flush())
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        eprintln!("lapse: cannot write the report: {e}");
        return EXIT_UNKNOWN;
    }
    report.exit_code()
}

fn print(args: &CheckArgs, settings: &Settings, listing: &Listing) -> i32 {
    let report = Report {
        now: args.at.unwrap_or_else(now),
        thresholds: settings.thresholds,
        listing,
    };
    let mut stdout = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    let written = match args.format {
        Format::Json => report.write_json(&mut stdout),
        // `run` writes it with what only it knows; this is the same text
        // without the notices.
        Format::Nagios => write!(stdout, "{}", nagios::render(&report, None, &[])),
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
