//! The one place lapse parses YAML.
//!
//! Backed by serde-saphyr (pure Rust, maintained; serde_yaml is archived).
//! Parsing runs under the library's budget (event, alias and depth caps), so
//! alias bombs and deep nesting fail cleanly. Errors carry a position only:
//! snippets of the input could quote a token.

use serde::de::DeserializeOwned;
use serde_saphyr::{DuplicateKeyPolicy, Options};

fn options() -> Options {
    let mut options = Options::default();
    options.with_snippet = false;
    options.duplicate_keys = DuplicateKeyPolicy::LastWins;
    // YAML 1.2 booleans only: a token `y` or `on` stays a string.
    options.strict_booleans = true;
    options
}

fn describe(e: &serde_saphyr::Error) -> String {
    match e.location() {
        Some(loc) => format!(
            "invalid YAML at line {} column {}",
            loc.line(),
            loc.column()
        ),
        None => "invalid YAML".to_string(),
    }
}

/// Every document in a (possibly multi-document) YAML stream.
pub fn documents<T: DeserializeOwned>(text: &str) -> Result<Vec<T>, String> {
    serde_saphyr::from_multiple_with_options(text, options()).map_err(|e| describe(&e))
}

/// A single YAML document into `T` (configuration files).
pub fn from_str<T: DeserializeOwned>(text: &str) -> Result<T, String> {
    serde_saphyr::from_str_with_options(text, options()).map_err(|e| describe(&e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    #[test]
    fn several_documents() {
        let docs: Vec<Value> = documents("a: 1\n---\nb: [x, y, on, true]\n").unwrap();
        assert_eq!(
            docs,
            vec![json!({"a": 1}), json!({"b": ["x", "y", "on", true]})]
        );
    }

    #[test]
    fn errors_give_a_position_and_no_text() {
        let err = documents::<Value>("token: secretvalue\n  bad: [\n").unwrap_err();
        assert!(err.starts_with("invalid YAML at line "), "{err}");
        assert!(!err.contains("secretvalue"), "{err}");
    }
}
