//! The human page at `/`: credentials by soonest expiry, then what could
//! not be read. A reader of a snapshot only: it never parses, reads files
//! or touches the network, and it escapes every text it shows.

use crate::credential::{Kind, Status, Thresholds};
use crate::inventory::Snapshot;
use crate::output::html::html_escape;
use crate::timefmt::{rfc3339, time_left};
use crate::units::human_span;
use std::fmt::Write;

/// The human view: credentials by soonest expiry, their status, where each
/// lives and its validity window; then what could not be read.
pub fn page(snapshot: &Snapshot, thresholds: &Thresholds, now: i64) -> String {
    let mut creds: Vec<_> = snapshot.assembled.credentials().collect();
    creds.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
    let mut out = String::with_capacity(creds.len() * 400 + 2048);
    out.push_str(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>lapse</title>\n<style>\
         body{font:14px system-ui,sans-serif;margin:1.5em}table{border-collapse:collapse}\
         th,td{text-align:left;padding:.25em .6em;border-bottom:1px solid #ddd;vertical-align:top}\
         .expired,.critical{color:#b00020;font-weight:bold}.warning{color:#a05a00;font-weight:bold}\
         .ok{color:#1b7a1b}.no-expiry{color:#666}small{color:#666}</style></head><body>\n<h1>lapse</h1>\n",
    );
    let _ = writeln!(
        out,
        "<p>{} credentials as of {}; warning within {}, critical within {}. <a href=\"/metrics\">metrics</a></p>",
        creds.len(),
        rfc3339(now),
        human_span(thresholds.warning),
        human_span(thresholds.critical)
    );
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
                .subject_cn
                .as_deref()
                .or(c.identity.subject.as_deref())
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
        if let Some(note) = &c.note {
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
    let errors: Vec<_> = snapshot.all_errors().collect();
    if !errors.is_empty() {
        let _ = writeln!(
            out,
            "<h2>Could not read ({})</h2>\n<table><tr><th>path</th><th>entry</th><th>problem</th></tr>",
            errors.len()
        );
        for e in errors {
            out.push_str("<tr><td>");
            html_escape(&mut out, &e.path);
            out.push_str("</td><td>");
            html_escape(&mut out, e.entry.as_deref().unwrap_or(""));
            out.push_str("</td><td>");
            html_escape(&mut out, &e.message);
            out.push_str("</td></tr>\n");
        }
        out.push_str("</table>\n");
    }
    out.push_str("</body></html>\n");
    out
}
