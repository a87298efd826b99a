//! The `lapse check` report: a table for people, JSON for tools, and the
//! exit status. Reads credentials; never sees secret text.
//!
//! The JSON shape is a contract: change it only with a documented migration.

use crate::credential::{Credential, Status, Thresholds, Timestamp};
use crate::scan::ScanResult;
use crate::timefmt::{rfc3339, time_left};
use serde::Serialize;
use std::collections::HashMap;
use std::fmt::Write;

pub struct Report<'a> {
    pub now: Timestamp,
    pub thresholds: Thresholds,
    pub result: &'a ScanResult,
}

#[derive(Serialize)]
struct JsonReport<'a> {
    generated_at: String,
    credentials: Vec<JsonCredential<'a>>,
    errors: Vec<JsonError<'a>>,
}

#[derive(Serialize)]
struct JsonCredential<'a> {
    kind: &'static str,
    source: &'static str,
    path: &'a str,
    entry: Option<&'a str>,
    index: Option<u32>,
    subject: Option<&'a str>,
    issuer: Option<&'a str>,
    not_before: Option<String>,
    not_after: Option<String>,
    expires_in_seconds: Option<i64>,
    expiry_source: &'static str,
    status: &'static str,
    fingerprint: String,
}

#[derive(Serialize)]
struct JsonError<'a> {
    path: &'a str,
    entry: Option<&'a str>,
    reason: &'a str,
}

const RED: &str = "\x1b[31m";
const YELLOW: &str = "\x1b[33m";
const GREEN: &str = "\x1b[32m";
const DIM: &str = "\x1b[2m";
const RESET: &str = "\x1b[0m";

impl Report<'_> {
    fn status(&self, c: &Credential) -> Status {
        c.status(self.now, &self.thresholds)
    }

    pub fn to_json(&self) -> String {
        let report = JsonReport {
            generated_at: rfc3339(self.now),
            credentials: self
                .result
                .credentials
                .iter()
                .map(|c| JsonCredential {
                    kind: c.kind.as_str(),
                    source: c.source.as_str(),
                    path: &c.path,
                    entry: c.entry.as_deref(),
                    index: c.index,
                    subject: c.identity.subject.as_deref(),
                    issuer: c.identity.issuer.as_deref(),
                    not_before: c.not_before.map(rfc3339),
                    not_after: c.not_after.map(rfc3339),
                    expires_in_seconds: c.expires_in(self.now),
                    expiry_source: c.expiry_source.as_str(),
                    status: self.status(c).as_str(),
                    fingerprint: c.fingerprint.to_string(),
                })
                .collect(),
            errors: self
                .result
                .errors
                .iter()
                .map(|e| JsonError {
                    path: &e.path,
                    entry: e.entry.as_deref(),
                    reason: &e.message,
                })
                .collect(),
        };
        serde_json::to_string_pretty(&report).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }

    /// Nagios/Icinga: 2 critical (or expired), 1 warning, 3 unknown (errors), 0 ok.
    pub fn exit_code(&self) -> i32 {
        let worst = self
            .result
            .credentials
            .iter()
            .map(|c| self.status(c))
            .fold(0, |acc, s| {
                acc.max(match s {
                    Status::Expired | Status::Critical => 2,
                    Status::Warning => 1,
                    Status::Ok | Status::NoExpiry => 0,
                })
            });
        if worst == 0 && !self.result.errors.is_empty() {
            3
        } else {
            worst
        }
    }

    /// One line per error, for stderr.
    pub fn errors_text(&self, color: bool) -> String {
        let mut out = String::new();
        for e in &self.result.errors {
            let (on, off) = if color { (RED, RESET) } else { ("", "") };
            let entry = e
                .entry
                .as_deref()
                .map(|x| format!(" [{x}]"))
                .unwrap_or_default();
            let _ = writeln!(out, "{on}error{off}: {}{entry}: {}", e.path, e.message);
        }
        out
    }

    pub fn to_table(&self, color: bool) -> String {
        let creds = &self.result.credentials;
        let mut per_entry: HashMap<(&str, Option<&str>), usize> = HashMap::new();
        for c in creds {
            *per_entry.entry((&c.path, c.entry.as_deref())).or_default() += 1;
        }
        let header = [
            "STATUS",
            "EXPIRES (UTC)",
            "LEFT",
            "KIND",
            "SUBJECT",
            "WHERE",
        ]
        .map(String::from);
        let rows: Vec<([String; 6], Status, Option<&str>)> = creds
            .iter()
            .map(|c| {
                let status = self.status(c);
                let mut place = c.path.clone();
                if let Some(e) = &c.entry {
                    place.push_str(&format!(" [{e}]"));
                }
                if let Some(i) = c
                    .index
                    .filter(|_| per_entry[&(c.path.as_str(), c.entry.as_deref())] > 1)
                {
                    place.push_str(&format!(" #{i}"));
                }
                let subject = c
                    .identity
                    .subject_cn
                    .as_deref()
                    .or(c.identity.subject.as_deref())
                    .unwrap_or("-");
                let expires = c
                    .not_after
                    .map(|t| {
                        rfc3339(t)
                            .replacen('T', " ", 1)
                            .trim_end_matches('Z')
                            .to_string()
                    })
                    .unwrap_or_else(|| "-".into());
                let cells = [
                    status.as_str().to_string(),
                    expires,
                    time_left(c.expires_in(self.now)),
                    c.kind.as_str().to_string(),
                    subject.to_string(),
                    place,
                ];
                (cells, status, c.note.as_deref())
            })
            .collect();
        let mut widths = header.clone().map(|h| h.chars().count());
        for (cells, _, _) in &rows {
            for (w, cell) in widths.iter_mut().zip(cells) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        let line = |out: &mut String, cells: &[String; 6], paint: Option<&str>| {
            for (i, cell) in cells.iter().enumerate() {
                let pad = widths[i] - cell.chars().count();
                match (i, paint) {
                    (0, Some(p)) => out.push_str(&format!("{p}{cell}{RESET}")),
                    _ => out.push_str(cell),
                }
                if i + 1 < cells.len() {
                    out.push_str(&" ".repeat(pad + 2));
                }
            }
            out.push('\n');
        };
        line(&mut out, &header, None);
        for (cells, status, note) in &rows {
            let paint = color.then_some(match status {
                Status::Expired | Status::Critical => RED,
                Status::Warning => YELLOW,
                Status::Ok => GREEN,
                Status::NoExpiry => DIM,
            });
            line(&mut out, cells, paint);
            if let Some(note) = note {
                let (on, off) = if color { (DIM, RESET) } else { ("", "") };
                let _ = writeln!(out, "{on}  └ {note}{off}");
            }
        }
        let _ = writeln!(out, "\n{}", self.summary());
        out
    }

    pub fn summary(&self) -> String {
        let mut counts: HashMap<Status, usize> = HashMap::new();
        for c in &self.result.credentials {
            *counts.entry(self.status(c)).or_default() += 1;
        }
        let n = |s| counts.get(&s).copied().unwrap_or(0);
        let total = self.result.credentials.len();
        let mut text = format!(
            "{total} credential{}: {} expired, {} critical, {} warning, {} ok, {} without expiry",
            if total == 1 { "" } else { "s" },
            n(Status::Expired),
            n(Status::Critical),
            n(Status::Warning),
            n(Status::Ok),
            n(Status::NoExpiry),
        );
        let errors = self.result.errors.len();
        if errors > 0 {
            let _ = write!(
                text,
                "; {errors} error{} (listed on stderr)",
                if errors == 1 { "" } else { "s" }
            );
        }
        text
    }
}
