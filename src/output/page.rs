//! The human page at `/`: credentials by soonest expiry, then what could
//! not be read, each list bounded to [`MAX_ROWS`] rows with a line saying
//! how many more there are. A reader of a snapshot only: it never parses,
//! reads files or touches the network, and it escapes every text it shows.

use crate::credential::{Credential, Kind, Status, Thresholds};
use crate::inventory::Snapshot;
use crate::output::html::html_escape;
use crate::timefmt::{rfc3339, time_left};
use crate::units::human_span;
use std::fmt::Write;

/// Rows the page lists at most, of credentials and of errors alike: a
/// page stays a few hundred kilobytes whatever the input, and says how
/// many it left out (`/metrics` and `lapse check` have them all).
pub const MAX_ROWS: usize = 1_000;

/// The human view: credentials by soonest expiry, their status, where each
/// lives and its validity window; then what could not be read.
pub fn page(snapshot: &Snapshot, thresholds: &Thresholds, now: i64) -> String {
    page_noting(snapshot, thresholds, now, 0)
}

/// [`page`], saying at the top how many credentials' warnings are owed: a
/// recipient refused them for good, so somebody was not told.
pub fn page_noting(snapshot: &Snapshot, thresholds: &Thresholds, now: i64, owed: usize) -> String {
    bounded_page(snapshot, thresholds, now, MAX_ROWS, owed)
}

/// The most urgent `max` credentials: not yet valid ones first (the sort
/// by expiry would place them anywhere), then soonest expiry; listed in
/// the page's order, soonest expiry first.
fn most_urgent<'a>(
    snapshot: &'a Snapshot,
    thresholds: &Thresholds,
    now: i64,
    max: usize,
) -> (Vec<&'a Credential>, usize) {
    let mut creds: Vec<_> = snapshot.assembled.credentials().collect();
    let total = creds.len();
    if total > max {
        let early = |c: &Credential| c.status(now, thresholds) != Status::NotYetValid;
        creds.sort_by(|a, b| (early(a), a.sort_key()).cmp(&(early(b), b.sort_key())));
        creds.truncate(max);
    }
    creds.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
    (creds, total)
}

fn bounded_page(
    snapshot: &Snapshot,
    thresholds: &Thresholds,
    now: i64,
    max: usize,
    owed: usize,
) -> String {
    let (creds, total) = most_urgent(snapshot, thresholds, now, max);
    let listed = creds.len();
    let mut out = String::with_capacity(creds.len() * 400 + 2048);
    out.push_str(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>lapse</title>\n<style>\
         body{font:14px system-ui,sans-serif;margin:1.5em}table{border-collapse:collapse}\
         th,td{text-align:left;padding:.25em .6em;border-bottom:1px solid #ddd;vertical-align:top}\
         .expired,.critical{color:#b00020;font-weight:bold}.warning,.not-yet-valid{color:#a05a00;font-weight:bold}\
         .ok{color:#1b7a1b}.no-expiry{color:#666}small{color:#666}</style></head><body>\n<h1>lapse</h1>\n",
    );
    let _ = writeln!(
        out,
        "<p>{} credentials as of {}; warning within {}, critical within {}. <a href=\"/metrics\">metrics</a></p>",
        total,
        rfc3339(now),
        human_span(thresholds.warning),
        human_span(thresholds.critical)
    );
    if owed > 0 {
        let _ = writeln!(
            out,
            "<p class=\"critical\">{owed} credential warning(s) not delivered: the mail server refused a recipient \
             for good. lapse's log names the address; the warnings are offered again when lapse restarts or \
             <code>notify:</code> is reloaded.</p>"
        );
    }
    out.push_str(
        "<table>\n<tr><th>status</th><th>expires (UTC)</th><th>left</th><th>kind</th><th>subject</th><th>where</th><th>validity window</th></tr>\n",
    );
    for c in creds {
        let status = c.status(now, thresholds);
        let _ = write!(out, "<tr><td class=\"{0}\">{0}</td><td>", status.as_str());
        html_escape(
            &mut out,
            &c.not_after.map(rfc3339).unwrap_or_else(|| "-".into()),
        );
        out.push_str("</td><td>");
        html_escape(&mut out, &time_left(c.expires_in(now)));
        let _ = write!(out, "</td><td>{}</td><td>", c.kind.as_str());
        html_escape(
            &mut out,
            c.identity
                .subject_cn()
                .or(c.identity.subject())
                .unwrap_or("-"),
        );
        out.push_str("</td><td>");
        html_escape(&mut out, &c.path);
        if let Some(entry) = &c.entry {
            out.push_str("<br><small>");
            html_escape(&mut out, entry);
            out.push_str("</small>");
        }
        if let (Some(i), true) = (c.index, c.kind == Kind::X509) {
            let _ = write!(out, " <small>#{i}</small>");
        }
        if let Some(note) = c.note() {
            out.push_str("<br><small>");
            html_escape(&mut out, note);
            out.push_str("</small>");
        }
        out.push_str("</td><td>");
        match (c.not_before, c.not_after) {
            (Some(from), Some(to)) => {
                html_escape(
                    &mut out,
                    &format!(
                        "{} → {} ({})",
                        rfc3339(from),
                        rfc3339(to),
                        human_span(to - from)
                    ),
                );
                if status != Status::Expired && to > from {
                    let used = ((now - from) as f64 / (to - from) as f64 * 100.0).clamp(0.0, 100.0);
                    let _ = write!(out, "<br><small>{used:.0}% used</small>");
                }
            }
            (Some(from), None) => html_escape(&mut out, &format!("from {}", rfc3339(from))),
            _ => out.push('-'),
        }
        out.push_str("</td></tr>\n");
    }
    out.push_str("</table>\n");
    if total > listed {
        let _ = writeln!(
            out,
            "<p>{} more credentials not listed: the page lists the {max} most urgent. <a href=\"/metrics\">metrics</a> has every one.</p>",
            total - listed
        );
    }
    let errors = snapshot.all_errors().count();
    if errors > 0 {
        let _ = writeln!(
            out,
            "<h2>Could not read ({errors})</h2>\n<table><tr><th>path</th><th>entry</th><th>problem</th></tr>",
        );
        for e in snapshot.all_errors().take(max) {
            out.push_str("<tr><td>");
            html_escape(&mut out, &e.path);
            out.push_str("</td><td>");
            html_escape(&mut out, e.entry.as_deref().unwrap_or(""));
            out.push_str("</td><td>");
            html_escape(&mut out, &e.message);
            out.push_str("</td></tr>\n");
        }
        out.push_str("</table>\n");
        if errors > max {
            let _ = writeln!(
                out,
                "<p>{} more errors not listed: the page lists the first {max}.</p>",
                errors - max
            );
        }
    }
    out.push_str("</body></html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::page;
    use crate::credential::{Credential, ErrorEntry, ErrorReason, Fingerprint, Kind, Thresholds};
    use crate::inventory::{Inventory, Part, SourceReport};
    use std::sync::Arc;

    const NOW: i64 = 1_800_000_000;

    /// 1,002 credentials (one not yet valid and expiring last) and 1,003
    /// errors: 1,000 rows of each, and a line for the rest.
    #[test]
    fn the_page_lists_the_most_urgent_thousand_and_counts_the_rest() {
        let mut credentials: Vec<Credential> = (0..1_001i64)
            .map(|i| {
                let mut c = Credential::new(Kind::X509, Fingerprint::of(&i.to_be_bytes()))
                    .expiring(Some(NOW + (i + 1) * 86_400));
                c.path = format!("/pki/{i:04}.pem").into();
                c
            })
            .collect();
        let mut early = Credential::new(Kind::X509, Fingerprint::of(b"early"))
            .expiring(Some(NOW + 5_000 * 86_400));
        early.not_before = Some(NOW + 86_400);
        early.path = "/pki/early.pem".into();
        credentials.push(early);
        let errors: Vec<_> = (0..1_003)
            .map(|i| ErrorEntry {
                path: format!("/pki/bad-{i:04}.pem"),
                entry: None,
                reason: ErrorReason::Parse,
                message: "PEM block CERTIFICATE: invalid base64".into(),
            })
            .collect();
        let inventory = Inventory::new(&["files"]);
        inventory.publish(
            "files",
            SourceReport {
                parts: vec![Arc::new(Part {
                    credentials: credentials.into(),
                    errors: errors.into(),
                    ..Default::default()
                })],
                up: true,
                ..Default::default()
            },
        );

        let html = page(&inventory.snapshot(), &Thresholds::default(), NOW);

        assert_eq!(html.matches("<tr><td class=").count(), 1_000);
        assert!(html.contains("<p>1002 credentials as of "));
        assert!(html.contains("/pki/0000.pem"));
        assert!(html.contains("/pki/0998.pem"));
        assert!(
            !html.contains("/pki/0999.pem"),
            "the least urgent is left out"
        );
        assert!(html.contains("<td class=\"not-yet-valid\">not-yet-valid</td>"));
        assert!(html.contains(
            "<p>2 more credentials not listed: the page lists the 1000 most urgent. <a href=\"/metrics\">metrics</a> has every one.</p>\n"
        ));
        assert!(html.contains("<h2>Could not read (1003)</h2>"));
        assert_eq!(html.matches("<tr><td>/pki/bad-").count(), 1_000);
        assert!(html.contains("<p>3 more errors not listed: the page lists the first 1000.</p>\n"));
    }
}
