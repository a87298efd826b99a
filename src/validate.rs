//! Hand validation of the `lapse.yaml` sections not yet read through
//! [`crate::config::section`] (the web config no longer uses it), so that
//! every problem is found in one pass and each names its field. Values
//! are read as `serde_json::Value` from [`crate::yaml`].
//!
//! `key:` with nothing after it (null) and `""` mean unset.

use serde_json::{Map, Value};

pub use crate::config::section::{Problems, join};

pub fn mapping<'a>(
    value: &'a Value,
    field: &str,
    p: &mut Problems,
) -> Option<&'a Map<String, Value>> {
    match value {
        Value::Object(map) => Some(map),
        Value::Null => None,
        _ => {
            p.add(field, "expected a mapping");
            None
        }
    }
}

/// A mapping whose keys must all be in `known`; each other key is a problem.
pub fn fields<'a>(
    value: &'a Value,
    field: &str,
    known: &[&str],
    p: &mut Problems,
) -> Option<&'a Map<String, Value>> {
    let map = mapping(value, field, p)?;
    for key in map.keys().filter(|k| !known.contains(&k.as_str())) {
        p.add(
            &join(field, key),
            format!("unknown field (expected one of: {})", known.join(", ")),
        );
    }
    Some(map)
}

pub fn text(value: &Value, field: &str, p: &mut Problems) -> Option<String> {
    match value {
        Value::String(s) if s.is_empty() => None,
        Value::String(s) => Some(s.clone()),
        // YAML reads `listen: 9100` or `validity: 30` as numbers.
        Value::Number(n) => Some(n.to_string()),
        Value::Null => None,
        _ => {
            p.add(field, "expected a string");
            None
        }
    }
}

pub fn flag(value: &Value, field: &str, p: &mut Problems) -> Option<bool> {
    match value {
        Value::Bool(b) => Some(*b),
        Value::Null => None,
        _ => {
            p.add(field, "expected true or false");
            None
        }
    }
}

/// A list of strings; a single string is a list of one.
pub fn text_list(value: &Value, field: &str, p: &mut Problems) -> Option<Vec<String>> {
    match value {
        Value::Null => None,
        Value::String(s) => Some(vec![s.clone()]),
        Value::Array(items) if items.iter().all(Value::is_string) => Some(
            items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
        ),
        _ => {
            p.add(field, "expected a list of strings");
            None
        }
    }
}
