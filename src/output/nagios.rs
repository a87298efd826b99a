//! `lapse check --format nagios`: the report as a monitoring plugin's
//! output (Nagios plugin guidelines, as Icinga, Naemon and Nagios read it).
//!
//! The first line is the status line a monitoring UI shows — the state word
//! (matching the exit status), the counts, then `|` and the performance
//! data. Following lines are the plugin's long text: the most urgent
//! credentials one per line, then errors, each list capped. Reads
//! credentials; never sees secret text. Every piece of text from a
//! credential or path is escaped as the table escapes it, and `|` is shown
//! as `\x7c`: a raw `|` would start performance data.

use super::check_report::Report;
use crate::credential::{Credential, Status};
use crate::logging::plain::push_plain;
use crate::timefmt::rfc3339;
use crate::units::human_span;
use std::collections::HashMap;
use std::fmt::Write;

/// The long text's entry lines at most; the rest are counted.
pub const MAX_ENTRIES: usize = 10;
/// The long text's error lines at most; the rest are counted.
pub const MAX_ERRORS: usize = 10;

/// The plugin output for `report`, ending in a newline. `nothing_found`
/// is why an empty report is UNKNOWN (what was looked at); `notices` are
/// lines `lapse check` would otherwise print on stderr, which Icinga 2
/// would read into the same output, ahead of the status line.
pub fn render(report: &Report, nothing_found: Option<&str>, notices: &[String]) -> String {
    let counts = Counts::of(report);
    let code = match nothing_found {
        Some(_) => 3,
        None => report.exit_code(),
    };
    let mut out = format!("LAPSE {} - ", state_word(code));
    match nothing_found {
        Some(why) => push_text(&mut out, why),
        None => status_text(&mut out, &counts, code),
    }
    out.push_str(" | ");
    perfdata(&mut out, report, &counts);
    out.push('\n');
    if nothing_found.is_none() {
        entries(&mut out, report);
    }
    errors(&mut out, report);
    for notice in notices {
        push_text(&mut out, notice);
        out.push('\n');
    }
    out
}

/// The plugin convention's state words, by exit status.
fn state_word(code: i32) -> &'static str {
    match code {
        0 => "OK",
        1 => "WARNING",
        2 => "CRITICAL",
        _ => "UNKNOWN",
    }
}

struct Counts {
    by_status: HashMap<Status, usize>,
    credentials: usize,
    errors: usize,
}

impl Counts {
    fn of(report: &Report) -> Self {
        let mut by_status = HashMap::new();
        for c in &report.listing.credentials {
            *by_status
                .entry(c.status(report.now, &report.thresholds))
                .or_default() += 1;
        }
        Counts {
            by_status,
            credentials: report.listing.credentials.len(),
            errors: report.listing.errors.len(),
        }
    }

    fn n(&self, status: Status) -> usize {
        self.by_status.get(&status).copied().unwrap_or(0)
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// `5 expired, 2 critical, 1 warning, 10 ok`, with not yet valid and
/// without expiry named only when there are some; errors first when they
/// are why the state is UNKNOWN, else last.
fn status_text(out: &mut String, counts: &Counts, code: i32) {
    let errors = plural(counts.errors, "error", "errors");
    if counts.credentials == 0 && counts.errors > 0 {
        let _ = write!(out, "{errors}, no credential found");
        return;
    }
    let mut parts = vec![
        format!("{} expired", counts.n(Status::Expired)),
        format!("{} critical", counts.n(Status::Critical)),
        format!("{} warning", counts.n(Status::Warning)),
    ];
    if counts.n(Status::NotYetValid) > 0 {
        parts.push(format!("{} not yet valid", counts.n(Status::NotYetValid)));
    }
    parts.push(format!("{} ok", counts.n(Status::Ok)));
    if counts.n(Status::NoExpiry) > 0 {
        parts.push(format!("{} without expiry", counts.n(Status::NoExpiry)));
    }
    let listed = parts.join(", ");
    match (counts.errors, code) {
        (0, _) => out.push_str(&listed),
        (_, 3) => {
            let _ = write!(out, "{errors}; {listed}");
        }
        _ => {
            let _ = write!(out, "{listed}; {errors}");
        }
    }
}

/// Counts of things (no unit, minimum 0, no thresholds: the state says
/// which matter), then `soonest_seconds`: the least time left of any
/// credential that expires (negative once expired), with the warning and
/// critical windows as ranges that alert at or below them — `@~:W` is
/// "alert when −∞ ≤ value ≤ W", exactly lapse's inclusive thresholds.
/// Left out when no credential expires: no value is the truth then.
fn perfdata(out: &mut String, report: &Report, counts: &Counts) {
    let figures = [
        ("expired", counts.n(Status::Expired)),
        ("critical", counts.n(Status::Critical)),
        ("warning", counts.n(Status::Warning)),
        ("not_yet_valid", counts.n(Status::NotYetValid)),
        ("ok", counts.n(Status::Ok)),
        ("no_expiry", counts.n(Status::NoExpiry)),
        ("errors", counts.errors),
    ];
    let mut items: Vec<String> = figures
        .iter()
        .map(|(label, n)| format!("{label}={n};;;0;"))
        .collect();
    let soonest = (report.listing.credentials.iter())
        .filter_map(|c| c.expires_in(report.now))
        .min();
    if let Some(left) = soonest {
        items.push(format!(
            "soonest_seconds={left}s;@~:{};@~:{};;",
            report.thresholds.warning, report.thresholds.critical
        ));
    }
    out.push_str(&items.join(" "));
}

/// The credentials that make the state what it is, worst first, then
/// soonest first; when none do, the one that expires soonest, so an OK
/// says what comes next.
fn entries(out: &mut String, report: &Report) {
    let creds = &report.listing.credentials;
    let severity = |c: &Credential| {
        let rank = |s: Status| match s {
            Status::Expired | Status::Critical => 2,
            Status::Warning | Status::NotYetValid => 1,
            Status::Ok | Status::NoExpiry => 0,
        };
        let by_expiry = c.expiry_status(report.now, &report.thresholds);
        rank(c.status(report.now, &report.thresholds)).max(rank(by_expiry))
    };
    let mut urgent: Vec<(u8, usize)> = (creds.iter().enumerate())
        .map(|(i, c)| (severity(c), i))
        .filter(|(s, _)| *s > 0)
        .collect();
    urgent.sort_by_key(|&(s, i)| (std::cmp::Reverse(s), i));
    let mut shown: Vec<usize> = urgent.iter().map(|&(_, i)| i).collect();
    if shown.is_empty() {
        shown.extend(creds.iter().position(|c| c.not_after.is_some()));
    }
    let mut per_entry: HashMap<(&str, Option<&str>), usize> = HashMap::new();
    for c in creds {
        *per_entry.entry((&c.path, c.entry.as_deref())).or_default() += 1;
    }
    for &i in shown.iter().take(MAX_ENTRIES) {
        let c = creds[i];
        let several = per_entry[&(&*c.path, c.entry.as_deref())] > 1;
        entry_line(out, report, c, several);
    }
    if shown.len() > MAX_ENTRIES {
        let _ = writeln!(out, "and {} more", shown.len() - MAX_ENTRIES);
    }
}

/// `critical 2026-06-03 00:00:00 UTC (in 2d) x509 api.example.com in certs/api.pem`
fn entry_line(out: &mut String, report: &Report, c: &Credential, several: bool) {
    let status = c.status(report.now, &report.thresholds);
    let _ = write!(out, "{} ", status.as_str());
    match c.not_after {
        Some(t) => {
            let when = rfc3339(t).replacen('T', " ", 1);
            let left = match t - report.now {
                0 => "now".to_string(),
                s if s > 0 => format!("in {}", human_span(s)),
                s => format!("{} ago", human_span(s)),
            };
            let _ = write!(out, "{} UTC ({left})", when.trim_end_matches('Z'));
        }
        None => out.push_str("never"),
    }
    if status == Status::NotYetValid
        && let Some(from) = c.not_before
    {
        let from = rfc3339(from).replacen('T', " ", 1);
        let _ = write!(out, ", valid from {} UTC", from.trim_end_matches('Z'));
    }
    let _ = write!(out, " {} ", c.kind.as_str());
    let subject = (c.identity.subject_cn())
        .or(c.identity.subject())
        .unwrap_or("-");
    push_text(out, subject);
    out.push_str(" in ");
    push_text(out, &c.path);
    if let Some(e) = &c.entry {
        out.push_str(" [");
        push_text(out, e);
        out.push(']');
    }
    if let Some(i) = c.index.filter(|_| several) {
        let _ = write!(out, " #{i}");
    }
    out.push('\n');
}

/// `error: PATH [ENTRY]: MESSAGE`, as the table's stderr lines read.
fn errors(out: &mut String, report: &Report) {
    let errors = &report.listing.errors;
    for e in errors.iter().take(MAX_ERRORS) {
        out.push_str("error: ");
        push_text(out, &e.path);
        if let Some(entry) = &e.entry {
            out.push_str(" [");
            push_text(out, entry);
            out.push(']');
        }
        out.push_str(": ");
        push_text(out, &e.message);
        out.push('\n');
    }
    if errors.len() > MAX_ERRORS {
        let more = errors.len() - MAX_ERRORS;
        let _ = writeln!(out, "and {}", plural(more, "more error", "more errors"));
    }
}

/// Escaped as the table escapes, and `|` as `\x7c`.
fn push_text(out: &mut String, text: &str) {
    let mut escaped = String::with_capacity(text.len());
    push_plain(&mut escaped, text);
    out.push_str(&escaped.replace('|', "\\x7c"));
}

#[cfg(test)]
mod tests {
    use super::render;
    use crate::credential::{Credential, ErrorEntry, ErrorReason, Fingerprint, Kind, Thresholds};
    use crate::output::check_report::{Listing, Report};

    fn output(credentials: &[Credential], errors: &[ErrorEntry]) -> String {
        let listing = Listing {
            credentials: credentials.iter().collect(),
            used_by: Vec::new(),
            errors: errors.iter().collect(),
        };
        let report = Report {
            now: 1_800_000_000,
            thresholds: Thresholds::default(),
            listing: &listing,
        };
        render(&report, None, &[])
    }

    /// A `|` or a newline in a name cannot start performance data or
    /// forge a line: only the status line holds a raw `|`.
    #[test]
    fn pipes_and_newlines_in_names_are_escaped() {
        let mut c =
            Credential::new(Kind::X509, Fingerprint::of(b"a")).expiring(Some(1_800_000_100));
        c.path = "a|b\nLAPSE OK - fine | ok=1".into();
        c.identity.set_subject_cn(Some("x|y"));
        let e = ErrorEntry {
            path: "p|q".into(),
            entry: Some("users[|]".into()),
            reason: ErrorReason::Parse,
            message: "bad".into(),
        };
        let text = output(&[c], &[e]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[1..],
            [
                "critical 2027-01-15 08:01:40 UTC (in 1m 40s) x509 x\\x7cy in a\\x7cb\\nLAPSE OK - fine \\x7c ok=1",
                "error: p\\x7cq [users[\\x7c]]: bad",
            ]
        );
        assert_eq!(text.matches('|').count(), 1);
    }

    #[test]
    fn long_lists_are_capped_and_counted() {
        let creds: Vec<Credential> = (0..12u8)
            .map(|i| {
                let mut c = Credential::new(Kind::X509, Fingerprint::of(&[i]))
                    .expiring(Some(1_800_000_000 - 60));
                c.path = format!("{i:02}.pem").into();
                c
            })
            .collect();
        let errs: Vec<ErrorEntry> = (0..11)
            .map(|i| ErrorEntry {
                path: format!("e{i:02}"),
                entry: None,
                reason: ErrorReason::Parse,
                message: "m".into(),
            })
            .collect();
        let text = output(&creds, &errs);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 1 + 10 + 1 + 10 + 1);
        assert_eq!(lines[11], "and 2 more");
        assert_eq!(lines[22], "and 1 more error");
    }
}
