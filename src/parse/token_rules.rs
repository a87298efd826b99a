//! Declared token lifetimes: the `tokens:` rules of lapse.yaml, and their
//! application to what a file's parse found.
//!
//! An opaque token carries no expiry, yet some lapse N days after issue
//! (AKS on Azure Local's login tokens). A rule names such files and says
//! how long their tokens live and when they were issued: the file's
//! modification time, or a field of the YAML/JSON document the parser has
//! already read. Pure like the rest of [`crate::parse`]: no I/O and no
//! clock (the modification time comes in as a value), and no token text
//! in a note or an error.

use super::record::Parsed;
use crate::credential::{Credential, ErrorEntry, ErrorReason, ExpirySource, Fingerprint, Kind};
use globset::GlobMatcher;
use serde_json::Value;
use std::path::Path;

/// Where an opaque token's issue time comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IssuedAt {
    /// The file's modification time (a token written when it was issued).
    Mtime,
    /// A field of the YAML/JSON file (`a.b.c`), RFC 3339 or Unix seconds.
    Field(String),
}

/// Opaque tokens with a declared lifetime: the AKS-on-HCI case, where a
/// token carries no expiry but lapses N days after issue.
#[derive(Clone, Debug)]
pub struct TokenRule {
    pub glob: String,
    pub matcher: GlobMatcher,
    /// Only the credential at this entry (e.g. `token`); `None`: every token in the file.
    pub field: Option<String>,
    pub validity: i64,
    pub issued_at: IssuedAt,
}

impl TokenRule {
    /// A pattern without `/` matches file names; one with `/` whole paths.
    pub fn matches_path(&self, path: &Path) -> bool {
        if self.glob.contains('/') {
            self.matcher.is_match(path)
        } else {
            path.file_name().is_some_and(|n| self.matcher.is_match(n))
        }
    }

    pub fn matches_entry(&self, entry: Option<&str>) -> bool {
        match (&self.field, entry) {
            (None, _) => true,
            (Some(f), Some(e)) => {
                e == f || e.ends_with(&format!(" {f}")) || e.ends_with(&format!(".{f}"))
            }
            (Some(_), None) => false,
        }
    }
}

/// Gives tokens without a stated expiry the lifetime a rule declares:
/// issue time plus the validity window. The issue time is the token's own
/// when it states one (a Fernet token's creation time, a JWT's `nbf` or
/// `iat`), else the rule's `issued_at`: `mtime`, or a field of `doc`, the
/// file's first YAML/JSON document. `rules` are the rules whose path
/// matches the file, in the order lapse.yaml lists them.
///
/// A file a rule names in which the parse found no credential is read by
/// the rule: a YAML/JSON document (`doc` is `Some`) holds its token at the
/// rule's `field` (`token` when the rule names none); any other text is
/// one opaque token.
pub(super) fn apply(
    label: &str,
    bytes: &[u8],
    doc: Option<&Value>,
    mtime: Option<i64>,
    rules: &[&TokenRule],
    parsed: &mut Parsed,
) {
    if parsed.credentials.is_empty() {
        match doc {
            // Past a recogniser's own error on a field, there is nothing to add.
            Some(doc) if parsed.errors.iter().all(|e| e.entry.is_none()) => {
                token_in_document(label, doc, rules, parsed)
            }
            None if parsed.errors.is_empty() => {
                let text = String::from_utf8_lossy(bytes);
                let token = text.trim();
                if !token.is_empty() && !token.contains(char::is_whitespace) {
                    let mut c = super::jwt::token_credential(token).unwrap_or_else(|_| {
                        Credential::new(Kind::OpaqueToken, Fingerprint::of(token.as_bytes()))
                    });
                    c.path = label.into();
                    parsed.credentials.push(c);
                }
            }
            _ => {}
        }
    }
    for c in parsed.credentials.iter_mut() {
        if c.not_after.is_some() || c.kind == Kind::X509 {
            continue;
        }
        let Some(rule) = rules.iter().find(|r| r.matches_entry(c.entry.as_deref())) else {
            continue;
        };
        // The token's own word on when it was made beats the file's: a
        // file's modification time moves with every copy, restore and
        // `touch`, and a field is written by whoever wrote the file.
        let own = matches!(c.kind, Kind::OpaqueToken | Kind::Jwt)
            .then_some(c.not_before)
            .flatten();
        let issued = own.or_else(|| match &rule.issued_at {
            IssuedAt::Mtime => mtime,
            IssuedAt::Field(name) => doc.and_then(|d| field_time(d, name)),
        });
        let Some(issued) = issued else {
            let what = match &rule.issued_at {
                IssuedAt::Mtime => "the file's modification time is unknown".to_string(),
                IssuedAt::Field(f) => format!("issue-time field {f} is missing or not a time"),
            };
            parsed.errors.push(ErrorEntry {
                path: label.to_string(),
                entry: c.entry.as_deref().map(String::from),
                reason: ErrorReason::Parse,
                message: format!("tokens rule {}: {what}", rule.glob),
            });
            continue;
        };
        c.not_before = Some(issued);
        c.not_after = Some(issued + rule.validity);
        c.expiry_source = ExpirySource::ValidityWindow;
        c.set_note(Some(format!(
            "declared validity {} from {}",
            crate::units::human_span(rule.validity),
            match (&rule.issued_at, own) {
                (_, Some(_)) => "the token's own issue time".to_string(),
                (IssuedAt::Mtime, None) => "the file's modification time".to_string(),
                (IssuedAt::Field(f), None) => format!("field {f}"),
            }
        )));
    }
}

/// A YAML/JSON document in which the parse found nothing: the token is at
/// a matching rule's `field` (`token` by default). Found, it
/// stands in for the "holds no format lapse recognises" error the file's
/// name drew; missing, it is an error naming the rule and the field.
fn token_in_document(label: &str, doc: &Value, rules: &[&TokenRule], parsed: &mut Parsed) {
    let field_of = |r: &TokenRule| r.field.clone().unwrap_or_else(|| "token".to_string());
    // The first rule whose field the document has; else the first rule.
    let Some(rule) = rules
        .iter()
        .find(|r| at_path(doc, &field_of(r)).is_some())
        .or(rules.first())
    else {
        return;
    };
    let name = &field_of(rule);
    let error = |message: String| ErrorEntry {
        path: label.to_string(),
        entry: Some(name.to_string()),
        reason: ErrorReason::Parse,
        message: format!("tokens rule {}: {message}", rule.glob),
    };
    let token = match at_path(doc, name) {
        Some(Value::String(s))
            if !s.trim().is_empty() && !s.trim().contains(char::is_whitespace) =>
        {
            s.trim()
        }
        Some(_) => {
            parsed
                .errors
                .push(error(format!("field {name} is not a token")));
            return;
        }
        None => {
            let hint = match rule.field {
                Some(_) => String::new(),
                None => " (name the token's field with `field:`)".to_string(),
            };
            parsed.errors.push(error(format!(
                "this YAML/JSON document has no field {name}{hint}"
            )));
            return;
        }
    };
    parsed
        .errors
        .retain(|e| !(e.entry.is_none() && e.reason == ErrorReason::Parse));
    match super::jwt::token_credential(token) {
        Ok(mut c) => {
            c.path = label.into();
            c.entry = Some(name.as_str().into());
            parsed.credentials.push(c);
        }
        Err(message) => parsed.errors.push(ErrorEntry {
            path: label.to_string(),
            entry: Some(name.to_string()),
            reason: ErrorReason::Parse,
            message,
        }),
    }
}

/// The value at a dotted field (`a.b.c`).
fn at_path<'v>(doc: &'v Value, name: &str) -> Option<&'v Value> {
    name.split('.').try_fold(doc, |v, k| v.get(k))
}

/// A dotted field (`a.b.c`) as RFC 3339 or Unix seconds.
fn field_time(doc: &Value, name: &str) -> Option<i64> {
    let v = at_path(doc, name)?;
    match v {
        Value::String(s) => {
            crate::timefmt::parse_timestamp(s).or_else(|| crate::timefmt::parse_unix(v))
        }
        _ => crate::timefmt::parse_unix(v),
    }
}

#[cfg(test)]
mod tests {
    use super::super::parse_file_with_rules;
    use super::*;

    fn rule(glob: &str, field: Option<&str>, issued_at: IssuedAt) -> TokenRule {
        TokenRule {
            glob: glob.into(),
            matcher: globset::Glob::new(glob).unwrap().compile_matcher(),
            field: field.map(str::to_string),
            validity: 90 * 86_400,
            issued_at,
        }
    }

    #[test]
    fn an_issue_time_field_is_read_from_the_parsed_document() {
        let r = rule(
            "*.yaml",
            Some("token"),
            IssuedAt::Field("meta.issued".into()),
        );
        // A MOC login file: an opaque token, no expiry of its own.
        let yaml = b"token: s3cr3topaquevalue0123\ncloudfqdn: moc.example\n\
                     meta:\n  issued: 2026-01-01T00:00:00Z\n";
        let parsed = parse_file_with_rules("/k/login.yaml", yaml, &[], &[&r], None);
        let found: Vec<_> = parsed
            .credentials
            .iter()
            .filter(|c| c.expiry_source == ExpirySource::ValidityWindow)
            .collect();
        assert_eq!(found.len(), 1, "{parsed:?}");
        assert_eq!(found[0].not_before, Some(1_767_225_600));
        assert_eq!(found[0].not_after, Some(1_767_225_600 + 90 * 86_400));
        assert_eq!(
            found[0].note(),
            Some("declared validity 90d from field meta.issued")
        );
    }

    #[test]
    fn an_opaque_file_takes_its_issue_time_as_given() {
        let r = rule("*.token", None, IssuedAt::Mtime);
        let bytes = b"s3cr3topaquevalue0123\n";
        let parsed = parse_file_with_rules("/t/ci.token", bytes, &[], &[&r], Some(1_000));
        assert_eq!(parsed.credentials.len(), 1);
        assert_eq!(parsed.credentials[0].not_after, Some(1_000 + 90 * 86_400));
        let parsed = parse_file_with_rules("/t/ci.token", bytes, &[], &[&r], None);
        assert_eq!(
            parsed.errors[0].message,
            "tokens rule *.token: the file's modification time is unknown"
        );
        assert!(!format!("{parsed:?}").contains("s3cr3t"));
    }

    #[test]
    fn a_missing_field_is_an_error_naming_the_rule() {
        let r = rule("*.token", None, IssuedAt::Field("issued".into()));
        let parsed =
            parse_file_with_rules("/t/ci.token", b"s3cr3topaquevalue0123", &[], &[&r], Some(1));
        assert_eq!(
            parsed.errors[0].message,
            "tokens rule *.token: issue-time field issued is missing or not a time"
        );
    }

    #[test]
    fn a_token_that_states_its_creation_time_keeps_it() {
        use base64::Engine;
        let r = rule("*.token", None, IssuedAt::Mtime);
        let mut raw = vec![0x80u8];
        raw.extend_from_slice(&1_780_271_400i64.to_be_bytes());
        raw.extend_from_slice(&[7u8; 80]);
        let fernet = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&raw);
        let parsed =
            parse_file_with_rules("/t/k.token", fernet.as_bytes(), &[], &[&r], Some(1_000));
        let c = &parsed.credentials[0];
        assert_eq!(c.not_before, Some(1_780_271_400));
        assert_eq!(c.not_after, Some(1_780_271_400 + 90 * 86_400));
        assert_eq!(
            c.note(),
            Some("declared validity 90d from the token's own issue time")
        );
    }

    #[test]
    fn a_document_holds_its_token_at_the_rules_field() {
        let r = rule("*.json", None, IssuedAt::Field("issued".into()));
        let json = br#"{"token":"s3cr3topaquevalue0123","issued":"2026-01-01T00:00:00Z"}"#;
        let parsed = parse_file_with_rules("/t/login.json", json, &[], &[&r], None);
        assert!(parsed.errors.is_empty(), "{parsed:?}");
        assert_eq!(parsed.credentials.len(), 1);
        let c = &parsed.credentials[0];
        assert_eq!(c.entry.as_deref(), Some("token"));
        assert_eq!(c.not_after, Some(1_767_225_600 + 90 * 86_400));
        assert_eq!(c.fingerprint, Fingerprint::of(b"s3cr3topaquevalue0123"));

        let r = rule("*.yaml", Some("auth.key"), IssuedAt::Mtime);
        let parsed =
            parse_file_with_rules("/t/a.yaml", b"auth:\n  key: [1]\n", &[], &[&r], Some(1));
        assert_eq!(
            parsed.errors[0].message,
            "tokens rule *.yaml: field auth.key is not a token"
        );
        let parsed = parse_file_with_rules("/t/a.yaml", b"other: x\n", &[], &[&r], Some(1));
        assert_eq!(
            parsed.errors[0].message,
            "tokens rule *.yaml: this YAML/JSON document has no field auth.key"
        );
        assert!(parsed.credentials.is_empty());
        assert!(!format!("{parsed:?}").contains("s3cr3t"));
    }
}
