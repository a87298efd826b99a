//! `metrics:` in lapse.yaml and `--metrics.label`: which per-credential
//! families `/metrics` writes, whether `serial` and `fingerprint` are on
//! every series or only on `lapse_credential_info`, and constant labels
//! added to every series (a DaemonSet's node name).
//!
//! Changes only on restart, like `listen`: a reader's label sets are
//! worked out with these once.

use super::families::{self, FAMILIES};
use crate::config::section::Context;
use serde::Deserialize;
use serde_json::Value;

/// Where `serial` and `fingerprint` are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Descriptive {
    /// Only on `lapse_credential_info`: a renewal changes one series, and
    /// the value series keep their identity.
    #[default]
    Info,
    /// On every series too (the layout of lapse 0.1).
    EverySeries,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetricsConfig {
    /// Which of [`families::CREDENTIAL_FAMILIES`] are written, by index.
    pub families: Vec<bool>,
    pub descriptive: Descriptive,
    /// Constant labels on every series, in the order given.
    pub labels: Vec<(String, String)>,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            families: families::defaults(),
            descriptive: Descriptive::Info,
            labels: Vec::new(),
        }
    }
}

/// Labels lapse writes itself, which a constant label may not be.
const OWN_LABELS: &[&str] = &[
    "kind",
    "source",
    "path",
    "entry",
    "index",
    "object_namespace",
    "name",
    "key",
    "subject_cn",
    "issuer_cn",
    "subject",
    "serial",
    "fingerprint",
    "reason",
    "le",
    "quantile",
    "version",
    "revision",
    "rustversion",
];
pub const MAX_LABELS: usize = 16;
pub const MAX_VALUE_BYTES: usize = 256;

/// Checks one constant label; the problem says what is wrong with it.
pub fn check_label(name: &str, value: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let valid = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return Err(format!(
            "{name:?} is not a Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*)"
        ));
    }
    if name.starts_with("__") {
        return Err(format!("{name:?}: names starting with __ are Prometheus's"));
    }
    if OWN_LABELS.contains(&name) || name.starts_with("secret_label_") {
        return Err(format!(
            "{name:?} is a label lapse writes itself; pick another name"
        ));
    }
    if value.len() > MAX_VALUE_BYTES {
        return Err(format!(
            "{name:?}: the value is longer than {MAX_VALUE_BYTES} bytes"
        ));
    }
    Ok(())
}

/// `--metrics.label NAME=VALUE`.
pub fn parse_label_flag(text: &str) -> Result<(String, String), String> {
    let (name, value) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?} is not NAME=VALUE"))?;
    check_label(name, value)?;
    Ok((name.to_string(), value.to_string()))
}

/// `--metrics.families`: which families, by index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FamiliesFlag(pub Vec<bool>);

/// `--metrics.families`: `all`, or family names separated by commas.
pub fn parse_families_flag(text: &str) -> Result<FamiliesFlag, String> {
    if text == "all" {
        return Ok(FamiliesFlag(vec![true; FAMILIES]));
    }
    let mut on = vec![false; FAMILIES];
    for name in text.split(',').map(str::trim) {
        let f = families::find(name).ok_or_else(|| {
            format!(
                "unknown family {name:?} (expected all, or some of: {})",
                families::short_names().join(", ")
            )
        })?;
        on[f] = true;
    }
    Ok(FamiliesFlag(on))
}

impl MetricsConfig {
    /// Adds the `--metrics.families` and `--metrics.label` flags, which win
    /// over the file (a label over the file's label of the same name).
    pub fn with_flags(
        mut self,
        families: Option<&FamiliesFlag>,
        flags: &[(String, String)],
    ) -> Result<Self, String> {
        if let Some(f) = families {
            self.families = f.0.clone();
        }
        for (name, value) in flags {
            self.labels.retain(|(n, _)| n != name);
            self.labels.push((name.clone(), value.clone()));
        }
        if self.labels.len() > MAX_LABELS {
            return Err(format!("at most {MAX_LABELS} constant metric labels"));
        }
        Ok(self)
    }
}

/// `metrics:`'s fields.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct MetricsSection {
    /// Family names (with or without `lapse_credential_`), or `all`.
    families: Option<Value>,
    /// `info` (default) or `every_series`.
    descriptive_labels: Option<String>,
    /// NAME: VALUE, added to every series.
    labels: Option<serde_json::Map<String, Value>>,
}

/// Reads `metrics:`; every problem is reported into `cx`, naming its field.
pub fn read(v: &Value, cx: &mut Context) -> MetricsConfig {
    let mut config = MetricsConfig::default();
    let Some(s) = cx.section::<MetricsSection>("metrics", v) else {
        return config;
    };
    match &s.families {
        None => {}
        Some(Value::String(all)) if all == "all" => config.families = vec![true; FAMILIES],
        Some(Value::Array(names)) => {
            let mut on = vec![false; FAMILIES];
            for (i, name) in names.iter().enumerate() {
                let at = format!("metrics.families[{i}]");
                match name.as_str().and_then(families::find) {
                    Some(f) => on[f] = true,
                    None => cx.problem(
                        &at,
                        format!(
                            "unknown family {name} (expected one of: {})",
                            families::short_names().join(", ")
                        ),
                    ),
                }
            }
            config.families = on;
        }
        Some(_) => cx.problem(
            "metrics.families",
            "expected a list of family names, or all",
        ),
    }
    match s.descriptive_labels.as_deref() {
        None | Some("info") => {}
        Some("every_series") => config.descriptive = Descriptive::EverySeries,
        Some(other) => cx.problem(
            "metrics.descriptive_labels",
            format!("{other:?}: expected info or every_series"),
        ),
    }
    for (name, value) in s.labels.iter().flatten() {
        let at = format!("metrics.labels.{name}");
        let value = match value {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            _ => {
                cx.problem(&at, "expected a string");
                continue;
            }
        };
        match check_label(name, &value) {
            Ok(()) => config.labels.push((name.clone(), value)),
            Err(e) => cx.problem(&at, e),
        }
    }
    if config.labels.len() > MAX_LABELS {
        cx.problem(
            "metrics.labels",
            format!("at most {MAX_LABELS} constant labels"),
        );
    }
    config
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::path::Path;

    fn read_yaml(v: Value) -> (MetricsConfig, Vec<String>) {
        let mut cx = Context::new(Path::new("/"));
        let c = read(&v, &mut cx);
        (c, cx.problems.0)
    }

    #[test]
    fn families_by_name_or_all() {
        let (c, p) =
            read_yaml(json!({"families": ["expires_in_seconds", "lapse_credential_expired"]}));
        assert!(p.is_empty(), "{p:?}");
        let on: Vec<&str> = families::CREDENTIAL_FAMILIES
            .iter()
            .zip(&c.families)
            .filter(|(_, on)| **on)
            .map(|(f, _)| f.name)
            .collect();
        assert_eq!(
            on,
            [
                "lapse_credential_expires_in_seconds",
                "lapse_credential_expired"
            ]
        );
        let (c, p) = read_yaml(json!({"families": "all", "descriptive_labels": "every_series"}));
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(c.families, vec![true; FAMILIES]);
        assert_eq!(c.descriptive, Descriptive::EverySeries);
    }

    #[test]
    fn every_problem_names_its_field() {
        let (_, p) = read_yaml(json!({
            "families": ["expires_in", "info"],
            "descriptive_labels": "both",
            "labels": {"node": "w1", "path": "x", "9lives": "y", "zone": ["a"]},
            "colour": 1,
        }));
        assert_eq!(
            p,
            [
                "metrics.colour: unknown field (expected one of: families, descriptive_labels, labels)",
                "metrics.families[0]: unknown family \"expires_in\" (expected one of: expires_in_seconds, \
                 not_after_timestamp_seconds, not_before_timestamp_seconds, validity_seconds, expired, \
                 no_expiry, warn_after_timestamp_seconds, info)",
                "metrics.descriptive_labels: \"both\": expected info or every_series",
                "metrics.labels.9lives: \"9lives\" is not a Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*)",
                "metrics.labels.path: \"path\" is a label lapse writes itself; pick another name",
                "metrics.labels.zone: expected a string",
            ]
        );
    }

    #[test]
    fn flags_win_over_the_file() {
        let (c, _) = read_yaml(json!({"labels": {"node": "from-file", "zone": "a"}}));
        let c = c
            .with_flags(
                Some(&parse_families_flag("expired,lapse_credential_info").unwrap()),
                &[parse_label_flag("node=worker-1").unwrap()],
            )
            .unwrap();
        let mut want = vec![false; FAMILIES];
        want[4] = true;
        want[FAMILIES - 1] = true;
        assert_eq!(c.families, want);
        assert_eq!(parse_families_flag("all").unwrap().0, vec![true; FAMILIES]);
        assert!(
            parse_families_flag("expires_in_seconds,bogus")
                .unwrap_err()
                .starts_with(
                    "unknown family \"bogus\" (expected all, or some of: expires_in_seconds, "
                )
        );
        assert_eq!(
            c.labels,
            [
                ("zone".to_string(), "a".to_string()),
                ("node".to_string(), "worker-1".to_string())
            ]
        );
        assert_eq!(
            parse_label_flag("node").unwrap_err(),
            "\"node\" is not NAME=VALUE"
        );
        assert_eq!(
            parse_label_flag("le=1").unwrap_err(),
            "\"le\" is a label lapse writes itself; pick another name"
        );
        assert_eq!(
            parse_label_flag("__name__=x").unwrap_err(),
            "\"__name__\": names starting with __ are Prometheus's"
        );
    }
}
