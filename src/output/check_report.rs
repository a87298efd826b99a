//! The `lapse check` report: a table for people, JSON for tools, and the
//! exit status. Reads credentials; never sees secret text. The table and
//! the error lines are plain text: control characters in names are shown
//! escaped, never sent to the terminal.
//!
//! The JSON shape is a contract: change it only with a documented migration.

use crate::credential::{Credential, ErrorEntry, Status, Thresholds, Timestamp};
use crate::inventory::{Snapshot, Use};
use crate::logging::plain::plain;
use crate::timefmt::{rfc3339, time_left};
use serde::Serialize;
use std::collections::HashMap;
use std::fmt::Write;

pub struct Report<'a> {
    pub now: Timestamp,
    pub thresholds: Thresholds,
    pub listing: &'a Listing<'a>,
}

/// What a report lists, in its order: credentials soonest expiry first,
/// errors by path.
#[derive(Default)]
pub struct Listing<'a> {
    pub credentials: Vec<&'a Credential>,
    /// `used_by[i]`: the kubeconfig entries that use `credentials[i]`;
    /// shorter (even empty) when the rest are used by none.
    pub used_by: Vec<&'a [Use]>,
    pub errors: Vec<&'a ErrorEntry>,
}

impl<'a> Listing<'a> {
    /// Every credential the snapshot reports, and every error standing.
    pub fn of(snapshot: &'a Snapshot) -> Self {
        let assembled = &snapshot.assembled;
        let mut listed: Vec<(&Credential, &[Use])> = assembled
            .visible()
            .map(|(pi, ci, c)| (c, assembled.used_by(pi, ci)))
            .collect();
        listed.sort_by(|a, b| a.0.sort_key().cmp(&b.0.sort_key()));
        let (credentials, mut used_by): (Vec<_>, Vec<_>) = listed.into_iter().unzip();
        if used_by.iter().all(|u| u.is_empty()) {
            used_by.clear();
        }
        let mut listing = Listing {
            credentials,
            used_by,
            errors: snapshot.all_errors().collect(),
        };
        listing.sort_errors();
        listing
    }

    /// The entries that use the `i`th credential.
    fn uses(&self, i: usize) -> &'a [Use] {
        self.used_by.get(i).copied().unwrap_or_default()
    }

    fn sort_errors(&mut self) {
        self.errors
            .sort_by(|a, b| (&a.path, &a.entry, &a.message).cmp(&(&b.path, &b.entry, &b.message)));
    }
}

/// The report's shape as one value. `write_json` writes it piece by piece;
/// the tests hold its text equal to serde_json's rendering of this.
#[cfg_attr(not(test), allow(dead_code))]
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
    used_by: Vec<JsonUse<'a>>,
}

#[derive(Serialize)]
struct JsonUse<'a> {
    path: &'a str,
    entry: &'a str,
}

impl JsonCredential<'_> {
    /// Writes the credential as an element of the report's `credentials`
    /// array, exactly as `serde_json::to_writer_pretty` would (a test holds
    /// the two equal), followed by `,\n`. By hand, because serde's pretty
    /// printer cost four times as much and this runs once per credential.
    fn write_element(&self, buf: &mut Vec<u8>) {
        buf.extend_from_slice(b"    {\n");
        member(buf, "kind");
        json_str(buf, self.kind);
        member(buf, "source");
        json_str(buf, self.source);
        member(buf, "path");
        json_str(buf, self.path);
        member(buf, "entry");
        json_opt_str(buf, self.entry);
        member(buf, "index");
        json_opt_int(buf, self.index.map(i64::from));
        member(buf, "subject");
        json_opt_str(buf, self.subject);
        member(buf, "issuer");
        json_opt_str(buf, self.issuer);
        member(buf, "not_before");
        json_opt_str(buf, self.not_before.as_deref());
        member(buf, "not_after");
        json_opt_str(buf, self.not_after.as_deref());
        member(buf, "expires_in_seconds");
        json_opt_int(buf, self.expires_in_seconds);
        member(buf, "expiry_source");
        json_str(buf, self.expiry_source);
        member(buf, "status");
        json_str(buf, self.status);
        member(buf, "fingerprint");
        json_str(buf, &self.fingerprint);
        member(buf, "used_by");
        if self.used_by.is_empty() {
            buf.extend_from_slice(b"[]");
        } else {
            buf.extend_from_slice(b"[\n");
            for (i, u) in self.used_by.iter().enumerate() {
                if i > 0 {
                    buf.extend_from_slice(b",\n");
                }
                buf.extend_from_slice(b"        {\n          \"path\": ");
                json_str(buf, u.path);
                buf.extend_from_slice(b",\n          \"entry\": ");
                json_str(buf, u.entry);
                buf.extend_from_slice(b"\n        }");
            }
            buf.extend_from_slice(b"\n      ]");
        }
        buf.extend_from_slice(b"\n    },\n");
    }
}

/// `"name": ` on its own line inside an element, after the previous
/// member's comma.
fn member(buf: &mut Vec<u8>, name: &str) {
    if !buf.ends_with(b"{\n") {
        buf.extend_from_slice(b",\n");
    }
    buf.extend_from_slice(b"      \"");
    buf.extend_from_slice(name.as_bytes());
    buf.extend_from_slice(b"\": ");
}

/// A JSON string, escaped as serde_json escapes: `"`, `\\`, and control
/// characters (the five short forms, else `\u00xx`); everything else as is.
fn json_str(buf: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    buf.push(b'"');
    let bytes = s.as_bytes();
    // Nearly every string needs no escape: one pass that the compiler
    // vectorises, then a copy.
    if bytes.iter().all(|&b| b >= 0x20 && b != b'"' && b != b'\\') {
        buf.extend_from_slice(bytes);
        buf.push(b'"');
        return;
    }
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let short: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0x00..=0x1f => b"",
            _ => continue,
        };
        buf.extend_from_slice(&bytes[start..i]);
        if short.is_empty() {
            buf.extend_from_slice(b"\\u00");
            buf.push(HEX[usize::from(b >> 4)]);
            buf.push(HEX[usize::from(b & 0x0f)]);
        } else {
            buf.extend_from_slice(short);
        }
        start = i + 1;
    }
    buf.extend_from_slice(&bytes[start..]);
    buf.push(b'"');
}

fn json_opt_str(buf: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => json_str(buf, s),
        None => buf.extend_from_slice(b"null"),
    }
}

fn json_opt_int(buf: &mut Vec<u8>, n: Option<i64>) {
    match n {
        Some(n) => buf.extend_from_slice(n.to_string().as_bytes()),
        None => buf.extend_from_slice(b"null"),
    }
}

#[derive(Serialize)]
struct JsonError<'a> {
    path: &'a str,
    entry: Option<&'a str>,
    reason: &'a str,
}

/// One array element as the report's pretty printer writes it, two levels
/// deep, followed by `,\n`. JSON strings hold no raw newline (serde_json
/// escapes it), so every newline rendered is structural and indenting
/// after each one nests the element.
fn pretty_element<T: Serialize>(item: &T, buf: &mut Vec<u8>) {
    let mut one = Vec::with_capacity(640);
    if serde_json::to_writer_pretty(&mut one, item).is_err() {
        return; // not reachable: the records are strings and integers
    }
    buf.extend_from_slice(b"    ");
    for &b in &one {
        buf.push(b);
        if b == b'\n' {
            buf.extend_from_slice(b"    ");
        }
    }
    buf.extend_from_slice(b",\n");
}

/// Credentials rendered per task in [`Report::write_json`].
const JSON_CHUNK: usize = 512;

/// `[]`, or the elements between brackets without the last element's comma.
fn write_array(
    out: &mut impl std::io::Write,
    chunks: impl IntoIterator<Item = Vec<u8>>,
) -> std::io::Result<()> {
    let mut chunks: Vec<Vec<u8>> = chunks.into_iter().filter(|c| !c.is_empty()).collect();
    let Some(last) = chunks.last_mut() else {
        return out.write_all(b"[]");
    };
    last.truncate(last.len() - 2);
    out.write_all(b"[\n")?;
    for c in &chunks {
        out.write_all(c)?;
    }
    out.write_all(b"\n  ]")
}

/// A table row: its cells, its status, and the lines under it (the note,
/// the entries that use it).
type Row<'c> = ([String; 6], Status, Option<&'c str>, Option<String>);

/// `used by KUBECONFIG [ENTRY], …` under a row, unless the row already
/// says it all: used by one entry, the one it shows.
fn used_by_line(c: &Credential, uses: &[Use]) -> Option<String> {
    match uses {
        [] => None,
        [one] if c.entry.as_deref() == Some(one.entry.as_str()) => None,
        _ => {
            let places: Vec<String> = uses
                .iter()
                .map(|u| format!("{} [{}]", u.path, u.entry))
                .collect();
            Some(format!("used by {}", places.join(", ")))
        }
    }
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

    fn json_credential<'c>(&self, c: &'c Credential, uses: &'c [Use]) -> JsonCredential<'c> {
        JsonCredential {
            kind: c.kind.as_str(),
            source: c.source.as_str(),
            path: &c.path,
            entry: c.entry.as_deref(),
            index: c.index,
            subject: c.identity.subject(),
            issuer: c.identity.issuer(),
            not_before: c.not_before.map(rfc3339),
            not_after: c.not_after.map(rfc3339),
            expires_in_seconds: c.expires_in(self.now),
            expiry_source: c.expiry_source.as_str(),
            status: self.status(c).as_str(),
            fingerprint: c.fingerprint.text(),
            used_by: uses
                .iter()
                .map(|u| JsonUse {
                    path: &u.path,
                    entry: &u.entry,
                })
                .collect(),
        }
    }

    fn json_errors(&self) -> Vec<JsonError<'_>> {
        self.listing
            .errors
            .iter()
            .map(|e| JsonError {
                path: &e.path,
                entry: e.entry.as_deref(),
                reason: &e.message,
            })
            .collect()
    }

    /// The JSON report, streamed to `out`, with a closing newline: the text
    /// `serde_json::to_writer_pretty` gives for the whole [`JsonReport`]
    /// (a test holds the two equal), with the credentials rendered on every
    /// core, since rendering them was the largest step left on one core.
    pub fn write_json(&self, out: &mut impl std::io::Write) -> std::io::Result<()> {
        self.write_json_in(out, JSON_CHUNK * crate::par::workers() * 2)
    }

    /// [`Report::write_json`], rendering `window` credentials at a time.
    fn write_json_in(&self, out: &mut impl std::io::Write, window: usize) -> std::io::Result<()> {
        let window = window.max(1);
        out.write_all(b"{\n  \"generated_at\": ")?;
        serde_json::to_writer(&mut *out, &rfc3339(self.now))?;
        out.write_all(b",\n  \"credentials\": ")?;
        let listed: Vec<(&Credential, &[Use])> = (self.listing.credentials.iter())
            .enumerate()
            .map(|(i, c)| (*c, self.listing.uses(i)))
            .collect();
        // Rendered a window at a time and written before the next, so the
        // report is never held whole (64 MB at 100,000 credentials).
        if listed.is_empty() {
            out.write_all(b"[]")?;
        } else {
            out.write_all(b"[\n")?;
            for (w, part) in listed.chunks(window).enumerate() {
                let mut chunks = crate::par::map_chunks(part, JSON_CHUNK, |cs| {
                    let mut buf = Vec::with_capacity(cs.len() * 640);
                    for (c, uses) in cs {
                        self.json_credential(c, uses).write_element(&mut buf);
                    }
                    buf
                });
                let last = (w + 1) * window >= listed.len();
                if let (true, Some(end)) = (last, chunks.last_mut()) {
                    end.truncate(end.len() - 2);
                }
                for c in &chunks {
                    out.write_all(c)?;
                }
            }
            out.write_all(b"\n  ]")?;
        }
        out.write_all(b",\n  \"errors\": ")?;
        let mut errors = Vec::new();
        for e in self.json_errors() {
            pretty_element(&e, &mut errors);
        }
        write_array(out, [errors])?;
        out.write_all(b"\n}\n")
    }

    /// Nagios/Icinga: 2 critical (or expired), 1 warning (or not yet
    /// valid), 3 unknown (errors), 0 ok. A credential not yet valid counts
    /// as at least a warning, and as critical when its expiry is.
    pub fn exit_code(&self) -> i32 {
        let severity = |s: Status| match s {
            Status::Expired | Status::Critical => 2,
            Status::Warning | Status::NotYetValid => 1,
            Status::Ok | Status::NoExpiry => 0,
        };
        let worst = self
            .listing
            .credentials
            .iter()
            .map(|c| {
                let by_expiry = c.expiry_status(self.now, &self.thresholds);
                severity(self.status(c)).max(severity(by_expiry))
            })
            .fold(0, i32::max);
        if worst == 0 && !self.listing.errors.is_empty() {
            3
        } else {
            worst
        }
    }

    /// One line per error, for stderr.
    pub fn errors_text(&self, color: bool) -> String {
        let mut out = String::new();
        for e in &self.listing.errors {
            let (on, off) = if color { (RED, RESET) } else { ("", "") };
            let entry = e
                .entry
                .as_deref()
                .map(|x| format!(" [{x}]"))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "{on}error{off}: {}{}: {}",
                plain(&e.path),
                plain(&entry),
                plain(&e.message)
            );
        }
        out
    }

    pub fn to_table(&self, color: bool) -> String {
        let creds = &self.listing.credentials;
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
        let rows: Vec<Row> = creds
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let status = self.status(c);
                let mut place = c.path.to_string();
                if let Some(e) = &c.entry {
                    place.push_str(&format!(" [{e}]"));
                }
                if let Some(i) = c
                    .index
                    .filter(|_| per_entry[&(&*c.path, c.entry.as_deref())] > 1)
                {
                    place.push_str(&format!(" #{i}"));
                }
                let subject = c
                    .identity
                    .subject_cn()
                    .or(c.identity.subject())
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
                    plain(subject).into_owned(),
                    plain(&place).into_owned(),
                ];
                (
                    cells,
                    status,
                    c.note(),
                    used_by_line(c, self.listing.uses(i)),
                )
            })
            .collect();
        let mut widths = header.clone().map(|h| h.chars().count());
        for (cells, _, _, _) in &rows {
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
        for (cells, status, note, used_by) in &rows {
            let paint = color.then_some(match status {
                Status::Expired | Status::Critical => RED,
                Status::Warning | Status::NotYetValid => YELLOW,
                Status::Ok => GREEN,
                Status::NoExpiry => DIM,
            });
            line(&mut out, cells, paint);
            let (on, off) = if color { (DIM, RESET) } else { ("", "") };
            for line in note.iter().copied().chain(used_by.as_deref()) {
                let _ = writeln!(out, "{on}  └ {}{off}", plain(line));
            }
        }
        let _ = writeln!(out, "\n{}", self.summary());
        out
    }

    pub fn summary(&self) -> String {
        let mut counts: HashMap<Status, usize> = HashMap::new();
        for c in &self.listing.credentials {
            *counts.entry(self.status(c)).or_default() += 1;
        }
        let n = |s| counts.get(&s).copied().unwrap_or(0);
        let total = self.listing.credentials.len();
        // Not yet valid is named only when there is one, so the usual
        // summary reads as it always has.
        let early = match n(Status::NotYetValid) {
            0 => String::new(),
            k => format!("{k} not yet valid, "),
        };
        let mut text = format!(
            "{total} credential{}: {} expired, {} critical, {} warning, {early}{} ok, {} without expiry",
            if total == 1 { "" } else { "s" },
            n(Status::Expired),
            n(Status::Critical),
            n(Status::Warning),
            n(Status::Ok),
            n(Status::NoExpiry),
        );
        let errors = self.listing.errors.len();
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

#[cfg(test)]
mod tests {
    use super::{JsonReport, Listing, Report};
    use crate::credential::{Credential, ErrorEntry, ErrorReason, Fingerprint, Kind, Thresholds};
    use crate::inventory::Use;
    use crate::timefmt::rfc3339;

    fn json(credentials: &[Credential], errors: &[ErrorEntry]) -> (String, String) {
        json_used(credentials, &[], errors)
    }

    fn json_used(
        credentials: &[Credential],
        used_by: &[Vec<Use>],
        errors: &[ErrorEntry],
    ) -> (String, String) {
        let listing = Listing {
            credentials: credentials.iter().collect(),
            used_by: used_by.iter().map(Vec::as_slice).collect(),
            errors: errors.iter().collect(),
        };
        let report = Report {
            now: 1_800_000_000,
            thresholds: Thresholds::default(),
            listing: &listing,
        };
        let mut streamed = Vec::new();
        report.write_json(&mut streamed).unwrap();
        // Windows smaller than the list, one not a multiple of a chunk:
        // the same text.
        for window in [1, 700] {
            let mut windowed = Vec::new();
            report.write_json_in(&mut windowed, window).unwrap();
            assert_eq!(windowed, streamed, "window {window}");
        }
        let whole = JsonReport {
            generated_at: rfc3339(report.now),
            credentials: credentials
                .iter()
                .enumerate()
                .map(|(i, c)| report.json_credential(c, listing.uses(i)))
                .collect(),
            errors: report.json_errors(),
        };
        let expected = serde_json::to_string_pretty(&whole).unwrap() + "\n";
        (String::from_utf8(streamed).unwrap(), expected)
    }

    /// The streamed, parallel rendering is byte for byte serde_json's
    /// pretty printing of the whole report: empty, one, and more
    /// credentials than one chunk, with strings that need escaping.
    #[test]
    fn streamed_json_is_serde_json_pretty() {
        let (got, want) = json(&[], &[]);
        assert_eq!(got, want);
        assert_eq!(
            got,
            "{\n  \"generated_at\": \"2027-01-15T08:00:00Z\",\n  \"credentials\": [],\n  \"errors\": []\n}\n"
        );
        let credentials: Vec<Credential> = (0..1500u32)
            .map(|i| {
                let mut c = Credential::new(Kind::X509, Fingerprint::of(&i.to_be_bytes()))
                    .expiring(Some(1_800_000_000 + i64::from(i) * 3600));
                c.path =
                    format!("/etc/pki/\"q\\{i}\u{1}\u{1f}\u{7f}\u{8}\u{c}\r\u{e9}\n.crt").into();
                c.entry = (i % 2 == 0).then(|| format!("users[{i}]").into());
                c.index = (i % 3 == 0).then_some(i);
                c.identity
                    .set_subject(Some(&format!("CN=host-{i},O=Ex\tample")));
                c.not_before = (i % 5 != 0).then_some(1_700_000_000);
                c
            })
            .collect();
        let errors = [ErrorEntry {
            path: "/etc/pki/bad.pem".into(),
            entry: None,
            reason: ErrorReason::Parse,
            message: "PEM block CERTIFICATE: invalid base64 (bad padding)".into(),
        }];
        let (got, want) = json(&credentials, &errors);
        assert_eq!(got, want);
        // Entries that use a credential, for some: none, one, two.
        let used_by: Vec<Vec<Use>> = (0..700usize)
            .map(|i| {
                (0..i % 3)
                    .map(|k| Use {
                        path: format!("/kube/\"{i}\".conf"),
                        entry: format!("users[u{k}\t].client-certificate"),
                    })
                    .collect()
            })
            .collect();
        let (used, want_used) = json_used(&credentials, &used_by, &errors);
        assert_eq!(used, want_used);
        let parsed_used: serde_json::Value = serde_json::from_str(&used).unwrap();
        assert_eq!(
            parsed_used["credentials"][0]["used_by"],
            serde_json::json!([])
        );
        assert_eq!(
            parsed_used["credentials"][5]["used_by"][1]["entry"],
            "users[u1\t].client-certificate"
        );
        assert_eq!(
            parsed_used["credentials"][1000]["used_by"],
            serde_json::json!([])
        );
        let parsed: serde_json::Value = serde_json::from_str(&got).unwrap();
        assert_eq!(parsed["credentials"].as_array().unwrap().len(), 1500);
        assert_eq!(
            parsed["credentials"][1499]["index"],
            serde_json::Value::Null
        );
        assert_eq!(parsed["credentials"][1497]["index"], 1497);
        assert_eq!(
            parsed["errors"][0]["reason"],
            "PEM block CERTIFICATE: invalid base64 (bad padding)"
        );
    }
}
