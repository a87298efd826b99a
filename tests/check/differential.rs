//! lapse against an independent oracle on about a thousand real-world files.
//!
//! `tests/support/corpus/build.py` writes the corpus — Debian's CA
//! certificates (single files, DER, PKCS#7, the bundle, the JDK's cacerts),
//! keystores written by keytool, OpenSSL's library and the openssl CLI with
//! every password form, PKCS#7 bundles, keys of every type, JWS/JWE vectors —
//! and beside it `oracle.json`: what Python's cryptography, pyjks, jwcrypto
//! and the openssl CLI read in each file. This test runs `lapse check
//! --format json` once over the corpus, with the configured passwords in
//! lapse.yaml, and compares file by file: every certificate's `not_after`,
//! every token's expiry, an error entry exactly where the oracle cannot read
//! the file, nothing where it finds nothing. A failure prints every
//! disagreement (file, oracle, lapse) and the counts per class.

use crate::support::*;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

/// What the oracle read in one file.
struct Verdict {
    class: String,
    expect: String,
    not_after: Vec<Option<String>>,
    why: String,
    integrity_error: bool,
    may_error: bool,
}

/// What lapse reported for one file.
#[derive(Default)]
struct Seen {
    kinds: BTreeSet<String>,
    not_after: Vec<Option<String>>,
    errors: Vec<String>,
}

#[test]
fn lapse_agrees_with_the_oracle_on_every_file_of_the_corpus() {
    let s = Scratch::new();
    let oracle = build_corpus(&s);
    let passwords: Vec<&str> = oracle["passwords"]
        .as_array()
        .expect("passwords")
        .iter()
        .map(|p| p.as_str().expect("a password"))
        .collect();
    let files: Vec<String> = passwords
        .iter()
        .enumerate()
        .map(|(i, p)| {
            s.write(&format!("p{i}.pass"), format!("{p}\n"));
            format!("p{i}.pass")
        })
        .collect();
    s.write(
        "lapse.yaml",
        format!(
            "files:\n  paths: [corpus]\nkeystore_passwords: [{}]\n",
            files.join(", ")
        ),
    );

    // `json`, not `json_within`: the report is larger than a pipe holds.
    let report = s.check().args(["--config", "lapse.yaml"]).json();

    assert_no_secret_shown(&report, &oracle, &passwords);
    let verdicts = verdicts(&oracle);
    assert!(
        verdicts.len() >= 1_000,
        "the corpus shrank to {} files",
        verdicts.len()
    );
    let seen = seen(&report);
    let mut table = Vec::new();
    let mut per_class: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for (path, v) in &verdicts {
        let got = seen.get(path.as_str());
        let counts = per_class.entry(v.class.as_str()).or_default();
        counts.0 += 1;
        if let Some(why) = disagreement(v, got) {
            counts.1 += 1;
            table.push(format!(
                "{path}\t[{}] {}\t{}",
                v.class,
                describe_oracle(v),
                describe_lapse(got, &why)
            ));
        }
    }
    for (path, got) in &seen {
        if !verdicts.contains_key(*path) {
            table.push(format!(
                "{path}\t[not in the corpus]\t{}",
                describe_lapse(Some(got), "")
            ));
        }
    }
    if !table.is_empty() {
        let classes: Vec<String> = per_class
            .iter()
            .filter(|(_, (_, bad))| *bad > 0)
            .map(|(class, (all, bad))| format!("  {class}: {bad} of {all}"))
            .collect();
        panic!(
            "lapse disagrees with the oracle on {} of {} files\n\
             disagreements per class:\n{}\n\
             file\toracle\tlapse\n{}",
            table.len(),
            verdicts.len(),
            classes.join("\n"),
            table.join("\n")
        );
    }
}

/// Runs build.py into the scratch directory; its `oracle.json`.
fn build_corpus(s: &Scratch) -> Value {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/corpus/build.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(s.path(""))
        .output()
        .expect("run python3 (the corpus needs cryptography, pyjks, jwcrypto, openssl, keytool)");
    assert_success("tests/support/corpus/build.py", &out);
    let text = std::fs::read_to_string(s.path("oracle.json")).expect("read oracle.json");
    serde_json::from_str(&text).expect("oracle.json is JSON")
}

fn verdicts(oracle: &Value) -> BTreeMap<String, Verdict> {
    let text = |v: &Value, k: &str| v[k].as_str().unwrap_or_default().to_string();
    oracle["files"]
        .as_object()
        .expect("files")
        .iter()
        .map(|(path, v)| {
            let verdict = Verdict {
                class: text(v, "class"),
                expect: text(v, "expect"),
                not_after: dates(&v["not_after"]),
                why: text(v, "why"),
                integrity_error: v["integrity_error"] == true,
                may_error: v["may_error"] == true,
            };
            (path.clone(), verdict)
        })
        .collect()
}

fn dates(list: &Value) -> Vec<Option<String>> {
    let mut out: Vec<Option<String>> = list
        .as_array()
        .expect("a list of dates")
        .iter()
        .map(|d| d.as_str().map(str::to_string))
        .collect();
    out.sort();
    out
}

fn seen(report: &Report) -> BTreeMap<&str, Seen> {
    let mut seen: BTreeMap<&str, Seen> = BTreeMap::new();
    for c in report.credentials() {
        let s = seen.entry(c["path"].as_str().expect("path")).or_default();
        s.kinds
            .insert(c["kind"].as_str().unwrap_or_default().to_string());
        s.not_after
            .push(c["not_after"].as_str().map(str::to_string));
    }
    for e in report.errors() {
        let s = seen.entry(e["path"].as_str().expect("path")).or_default();
        let entry = e["entry"]
            .as_str()
            .map(|e| format!("{e}: "))
            .unwrap_or_default();
        s.errors.push(format!(
            "{entry}{}",
            e["reason"].as_str().unwrap_or_default()
        ));
    }
    for s in seen.values_mut() {
        s.not_after.sort();
    }
    seen
}

/// Why lapse's answer is not the oracle's, or `None` when they agree.
fn disagreement(v: &Verdict, got: Option<&Seen>) -> Option<String> {
    let empty = Seen::default();
    let got = got.unwrap_or(&empty);
    let errors = got.errors.len();
    match v.expect.as_str() {
        "unreadable" if !got.not_after.is_empty() => {
            Some("credentials where the oracle reads none".into())
        }
        "unreadable" if errors == 0 => {
            Some("no error entry for a file the oracle cannot read".into())
        }
        "unreadable" => None,
        "none" if !got.not_after.is_empty() => {
            Some("credentials where the oracle finds none".into())
        }
        "none" if errors > 0 => Some("an error entry for a file the oracle reads".into()),
        "none" => None,
        _ if got.not_after != v.not_after => Some("different expiries".into()),
        "certs" if got.kinds.iter().any(|k| k != "x509") => Some("not certificates".into()),
        _ if v.integrity_error && errors == 0 => {
            Some("no error entry: no configured password matches the integrity check".into())
        }
        _ if errors > 0 && !v.integrity_error && !v.may_error => {
            Some("an error entry for a file the oracle reads".into())
        }
        _ => None,
    }
}

fn describe_oracle(v: &Verdict) -> String {
    let integrity = if v.integrity_error {
        " + integrity check fails with every configured password"
    } else {
        ""
    };
    match v.expect.as_str() {
        "certs" | "tokens" => format!(
            "{} {}{integrity} ({})",
            v.expect,
            describe_dates(&v.not_after),
            v.why
        ),
        _ => format!("{}: {}", v.expect, v.why),
    }
}

fn describe_lapse(got: Option<&Seen>, why: &str) -> String {
    let Some(got) = got else {
        return format!("{why}: nothing");
    };
    let kinds: Vec<&str> = got.kinds.iter().map(String::as_str).collect();
    let mut out = format!(
        "{why}: {} {}",
        kinds.join("+"),
        describe_dates(&got.not_after)
    );
    if !got.errors.is_empty() {
        out.push_str(&format!("; errors: {}", got.errors.join(" | ")));
    }
    out
}

/// `3 [2026-09-01T12:00:00Z, …]`, long lists shortened.
fn describe_dates(dates: &[Option<String>]) -> String {
    let shown: Vec<&str> = dates
        .iter()
        .take(4)
        .map(|d| d.as_deref().unwrap_or("none"))
        .collect();
    let more = if dates.len() > 4 { ", …" } else { "" };
    format!("{} [{}{more}]", dates.len(), shown.join(", "))
}

/// No configured password, token or key text in anything lapse printed.
fn assert_no_secret_shown(report: &Report, oracle: &Value, passwords: &[&str]) {
    let secrets = oracle["secrets"].as_array().expect("secrets");
    let mut shown = Vec::new();
    for secret in secrets
        .iter()
        .filter_map(Value::as_str)
        .chain(passwords.iter().copied())
    {
        if report.stdout.contains(secret) || report.stderr.contains(secret) {
            shown.push(secret.chars().take(12).collect::<String>());
        }
    }
    assert!(
        shown.is_empty(),
        "lapse's output shows secret text (first characters): {shown:?}"
    );
}
