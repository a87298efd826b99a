//! The JSON report of one run, with lookups that fail loudly and a field
//! comparison that prints expected against actual.

use super::Outcome;
use serde_json::Value;

/// A parsed `--format json` report.
#[derive(Debug)]
pub struct Report {
    pub code: i32,
    pub json: Value,
    pub stdout: String,
    pub stderr: String,
}

impl Report {
    pub fn parse(outcome: Outcome) -> Report {
        let json: Value = serde_json::from_str(&outcome.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e})\n--- stdout ---\n{}\n--- stderr ---\n{}",
                outcome.stdout, outcome.stderr
            )
        });
        Report {
            code: outcome.code,
            json,
            stdout: outcome.stdout,
            stderr: outcome.stderr,
        }
    }

    pub fn credentials(&self) -> &[Value] {
        self.json["credentials"]
            .as_array()
            .expect("credentials is an array")
    }

    pub fn errors(&self) -> &[Value] {
        self.json["errors"].as_array().expect("errors is an array")
    }

    /// The one credential at `path` and `entry` (`None`: JSON null) with
    /// bundle position `index` (`None`: JSON null).
    pub fn credential(&self, path: &str, entry: Option<&str>, index: Option<u64>) -> &Value {
        let found: Vec<&Value> = self
            .credentials()
            .iter()
            .filter(|c| {
                c["path"] == path && c["entry"] == json_opt(entry) && c["index"] == json_opt(index)
            })
            .collect();
        assert_eq!(
            found.len(),
            1,
            "expected exactly one credential at path={path:?} entry={entry:?} index={index:?}, found {}\n{}",
            found.len(),
            self.dump()
        );
        found[0]
    }

    /// The one error entry at `path` and `entry`.
    pub fn error(&self, path: &str, entry: Option<&str>) -> &Value {
        let found: Vec<&Value> = self
            .errors()
            .iter()
            .filter(|e| e["path"] == path && e["entry"] == json_opt(entry))
            .collect();
        assert_eq!(
            found.len(),
            1,
            "expected exactly one error at path={path:?} entry={entry:?}, found {}\n{}",
            found.len(),
            self.dump()
        );
        found[0]
    }

    /// The `reason` of the one error at `path` and `entry`.
    pub fn reason(&self, path: &str, entry: Option<&str>) -> String {
        self.error(path, entry)["reason"]
            .as_str()
            .expect("reason is a string")
            .to_string()
    }

    /// `(path, entry, index)` of every credential, in report order.
    pub fn places(&self) -> Vec<(String, Option<String>, Option<u64>)> {
        self.credentials()
            .iter()
            .map(|c| {
                (
                    c["path"].as_str().unwrap_or_default().to_string(),
                    c["entry"].as_str().map(str::to_string),
                    c["index"].as_u64(),
                )
            })
            .collect()
    }

    pub fn assert_credential_count(&self, expected: usize) -> &Self {
        assert_eq!(
            self.credentials().len(),
            expected,
            "number of credentials: expected {expected}, got {}\n{}",
            self.credentials().len(),
            self.dump()
        );
        self
    }

    pub fn assert_no_errors(&self) -> &Self {
        assert!(
            self.errors().is_empty(),
            "expected no error entries\n{}",
            self.dump()
        );
        self
    }

    pub fn assert_error_count(&self, expected: usize) -> &Self {
        assert_eq!(
            self.errors().len(),
            expected,
            "number of error entries: expected {expected}, got {}\n{}",
            self.errors().len(),
            self.dump()
        );
        self
    }

    pub fn assert_code(&self, expected: i32) -> &Self {
        assert_eq!(
            self.code,
            expected,
            "exit status: expected {expected}, got {}\n{}",
            self.code,
            self.dump()
        );
        self
    }

    /// The whole report and stderr, for failure messages.
    pub fn dump(&self) -> String {
        format!(
            "--- report ---\n{}\n--- stderr ---\n{}",
            serde_json::to_string_pretty(&self.json).unwrap_or_default(),
            self.stderr
        )
    }
}

fn json_opt<T: Into<Value>>(v: Option<T>) -> Value {
    v.map(Into::into).unwrap_or(Value::Null)
}

/// Asserts that every field in `expected` (a JSON object) has exactly that
/// value in `actual`; lists every difference at once.
#[track_caller]
pub fn assert_fields(actual: &Value, expected: Value) {
    let expected = expected
        .as_object()
        .expect("expected fields form an object");
    let mismatches: Vec<String> = expected
        .iter()
        .filter(|(key, want)| actual.get(key.as_str()).unwrap_or(&Value::Null) != *want)
        .map(|(key, want)| {
            let got = actual.get(key.as_str()).unwrap_or(&Value::Null);
            format!("  {key}: expected {want}, got {got}")
        })
        .collect();
    assert!(
        mismatches.is_empty(),
        "fields differ:\n{}\nin {}",
        mismatches.join("\n"),
        serde_json::to_string_pretty(actual).unwrap_or_default()
    );
}

/// Asserts `haystack` contains `needle`, showing both when not.
#[track_caller]
pub fn assert_contains(haystack: &str, needle: &str) {
    assert!(
        haystack.contains(needle),
        "expected to find {needle:?} in:\n{haystack}"
    );
}
