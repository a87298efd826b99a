//! The one place lapse parses YAML.
//!
//! Backed by serde-saphyr (pure Rust, maintained; serde_yaml is archived).
//! Parsing runs under the library's budget: limits on size grow with the
//! input (a dump of 10,000 Secrets under the file-size cap parses whole);
//! limits on amplification (aliases) and depth are fixed, so alias bombs and
//! deep nesting fail cleanly, with an error that names the limit. Errors
//! carry a position or a limit only: snippets of the input could quote a
//! token.

use serde::de::DeserializeOwned;
use serde_saphyr::budget::BudgetBreach;
use serde_saphyr::granit_parser::ErrorKind;
use serde_saphyr::options::AliasLimits;
use serde_saphyr::{Budget, DuplicateKeyPolicy, Error, ExternalMessageSource, Options};

/// Aliases (`*name`) one input may use: the alias-bomb guard.
pub const MAX_ALIASES: usize = 50_000;
/// Events all alias replays together may add, and events all anchors
/// together may hold: what a billion laughs grows into stops here,
/// however long the rest of the input is. The library's default node
/// budget, which used to stop a bomb at this cost (~75 MiB).
pub const MAX_ALIAS_EVENTS: usize = 250_000;
/// Aliases per anchor, once there are 100 aliases: a few anchors named
/// over and over is a bomb's shape, not a configuration's.
const ALIASES_PER_ANCHOR: usize = 10;
/// Nested sequences and mappings, block or flow.
pub const MAX_DEPTH: usize = 64;

/// Limits for `text`. Those about size (events, nodes, documents, scalar
/// bytes) grow with the text, so a dump under the file-size cap parses
/// whatever its number of objects: a YAML event takes at least half a
/// byte of input (`[?,?]`), a document `---` and a newline, and a scalar
/// at most 1.5 times its escaped form (`\L`). On top of what the text
/// itself yields comes what alias replay may add, fixed, so that padding
/// an alias bomb buys it nothing. What defends against amplification is
/// fixed: aliases, anchors, replayed and retained events, depth.
fn budget(len: usize) -> Budget {
    let defaults = Budget::default();
    let mut budget = Budget::default();
    budget.max_events = MAX_ALIAS_EVENTS.saturating_add(len.saturating_mul(4));
    budget.max_nodes = MAX_ALIAS_EVENTS.saturating_add(len.saturating_mul(4));
    budget.max_documents = defaults.max_documents.saturating_add(len);
    budget.max_total_scalar_bytes = defaults
        .max_total_scalar_bytes
        .saturating_add(len.saturating_mul(2));
    budget.max_aliases = MAX_ALIASES;
    budget.max_recorded_anchor_events = MAX_ALIAS_EVENTS;
    budget.enforce_alias_anchor_ratio = true;
    budget.alias_anchor_ratio_multiplier = ALIASES_PER_ANCHOR;
    budget.max_depth = MAX_DEPTH;
    budget
}

fn options(len: usize) -> Options {
    let mut options = Options::default();
    options.with_snippet = false;
    options.duplicate_keys = DuplicateKeyPolicy::LastWins;
    // YAML 1.2 booleans only: a token `y` or `on` stays a string.
    options.strict_booleans = true;
    // Nothing reads comments; kept, the parser buffers them while it looks
    // ahead and refuses a run of more than ~32 comment lines inside a
    // mapping ("too many buffered comments"), which a commented kubeconfig
    // or rules file has.
    options.emit_comments = false;
    options.budget = Some(budget(len));
    let mut alias_limits = AliasLimits::default();
    alias_limits.max_total_replayed_events = MAX_ALIAS_EVENTS;
    options.alias_limits = alias_limits;
    options
}

/// The limit `e` is about, if it is about one: named, with its value,
/// never with the input's text.
fn limit(e: &Error) -> Option<String> {
    let guard = "(alias-bomb guard)";
    let expand = format!("YAML: aliases expand to more than {MAX_ALIAS_EVENTS} events {guard}");
    Some(match e {
        Error::AliasError { error, .. } | Error::WithSnippet { error, .. } => return limit(error),
        Error::AliasReplayLimitExceeded { .. } | Error::AliasExpansionLimitExceeded { .. } => {
            expand
        }
        // The scanner reads ahead of the budget: deep flow collections
        // (`[[[[…`) reach its own nesting limit (255) first.
        Error::ExternalMessage { source, .. }
            if matches!(
                &**source,
                ExternalMessageSource::Parser(scan)
                    if matches!(scan.kind(), ErrorKind::RecursionLimitExceeded)
            ) =>
        {
            format!("YAML: nesting deeper than {MAX_DEPTH}")
        }
        Error::AliasReplayStackDepthExceeded { max_depth, .. } => {
            format!("YAML: aliases nested deeper than {max_depth} {guard}")
        }
        Error::Budget { breach, .. } => {
            let b = budget(0);
            match breach {
                BudgetBreach::Aliases { .. } => {
                    format!("YAML: more than {MAX_ALIASES} aliases {guard}")
                }
                BudgetBreach::AliasAnchorRatio { .. } => {
                    format!("YAML: more than {ALIASES_PER_ANCHOR} aliases per anchor {guard}")
                }
                BudgetBreach::RecordedAnchorEvents { .. }
                | BudgetBreach::RecordedAnchorBytes { .. } => expand,
                BudgetBreach::Anchors { .. } => {
                    format!("YAML: more than {} anchors {guard}", b.max_anchors)
                }
                BudgetBreach::MergeKeys { .. } => {
                    format!("YAML: more than {} merge keys {guard}", b.max_merge_keys)
                }
                BudgetBreach::Depth { .. } => format!("YAML: nesting deeper than {MAX_DEPTH}"),
                // Grown with the input: only replayed aliases can reach these.
                BudgetBreach::Events { .. }
                | BudgetBreach::Nodes { .. }
                | BudgetBreach::ScalarBytes { .. } => {
                    format!("YAML: aliases expand past the size of the input {guard}")
                }
                BudgetBreach::Documents { documents } => {
                    format!("YAML: more than {} documents", documents - 1)
                }
                _ => "YAML: a parser limit was reached".to_string(),
            }
        }
        _ => return None,
    })
}

fn describe(e: &Error) -> String {
    if let Some(limit) = limit(e) {
        return limit;
    }
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
    serde_saphyr::from_multiple_with_options(text, options(text.len())).map_err(|e| describe(&e))
}

/// A single YAML document into `T` (configuration files).
pub fn from_str<T: DeserializeOwned>(text: &str) -> Result<T, String> {
    serde_saphyr::from_str_with_options(text, options(text.len())).map_err(|e| describe(&e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    #[test]
    fn long_comment_blocks_inside_a_mapping_parse() {
        let text = format!("a:\n{}  b: 1\n", "  # a comment line\n".repeat(500));
        let docs: Vec<Value> = documents(&text).unwrap();
        assert_eq!(docs, [json!({"a": {"b": 1}})]);
    }

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

    #[test]
    fn a_stream_past_the_librarys_default_of_1024_documents_parses() {
        let text = "kind: Secret\n---\n".repeat(2_000);
        let docs: Vec<Value> = documents(&text).unwrap();
        assert_eq!(docs.len(), 2_000);
    }

    #[test]
    fn limits_are_named_and_quote_nothing() {
        let mut text = String::from("token: &a0 [secretvalue]\n");
        for level in 1..=30 {
            text.push_str(&format!("l{level}: &a{level} [*a{0}, *a{0}]\n", level - 1));
        }
        let err = documents::<Value>(&text).unwrap_err();
        assert_eq!(
            err,
            "YAML: aliases expand to more than 250000 events (alias-bomb guard)"
        );
        let deep = format!(
            "token: secretvalue\nx: {}1{}\n",
            "{a: ".repeat(70),
            "}".repeat(70)
        );
        assert_eq!(
            documents::<Value>(&deep).unwrap_err(),
            "YAML: nesting deeper than 64"
        );
    }
}
