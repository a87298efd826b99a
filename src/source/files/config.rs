//! The file source's part of lapse.yaml: the `files:` section (what to
//! scan) and the `tokens:` rules (which opaque tokens get a declared
//! lifetime), each read into its serde section struct and then checked,
//! every problem reported into the one collector under its field's path.
//!
//! Reading resolves relative paths against lapse.yaml's directory and
//! compiles globs only to check them; it never reads a file, never walks
//! a directory, and never fails on the first problem.

use super::read::DEFAULT_READ_TIMEOUT;
use super::scanner::DEFAULT_MAX_FILE_SIZE;
use crate::config::section::{Context, Text, TextList};
use crate::parse::{IssuedAt, TokenRule};
use crate::units::parse_size;
use serde::Deserialize;
use serde_json::Value;
use std::path::PathBuf;

/// `files:` as written. Field order is the order problems list them in.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct FilesSection {
    /// Files and directories to scan: relative to lapse.yaml's directory,
    /// `~/` from `$HOME`; a glob (`/opt/wssd/k8s/*.yaml`, `pki/**/*.crt`)
    /// is matched afresh at every scan (see [`super::pattern`]).
    paths: TextList,
    /// Globs a walked file must match (a pattern without `/` matches the
    /// file name, one with `/` the whole path); none: every file.
    include: TextList,
    /// Globs of files and directories the walk leaves out.
    exclude: TextList,
    /// The largest file read, e.g. `16MiB`; larger files are an error entry.
    max_file_size: Text,
    /// How long one file's read may take, e.g. `5s` (at least 1s); a read
    /// past it is an error entry.
    read_timeout: Text,
    /// The most inotify watches `serve` adds; past it, directories are
    /// polled. Unset: only the kernel's `fs.inotify.max_user_watches`.
    max_watches: Text,
}

/// The `files:` section, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FilesConfig {
    /// Resolved against lapse.yaml's directory.
    pub paths: Vec<PathBuf>,
    /// Valid globs, as written; the source compiles them into a filter.
    pub include: Vec<String>,
    pub exclude: Vec<String>,
    /// Bytes; [`DEFAULT_MAX_FILE_SIZE`] unless set.
    pub max_file_size: u64,
    /// Seconds; [`DEFAULT_READ_TIMEOUT`] unless set.
    pub read_timeout: u64,
    pub max_watches: Option<usize>,
}

impl Default for FilesConfig {
    fn default() -> Self {
        FilesConfig {
            paths: Vec::new(),
            include: Vec::new(),
            exclude: Vec::new(),
            max_file_size: DEFAULT_MAX_FILE_SIZE,
            read_timeout: DEFAULT_READ_TIMEOUT.as_secs(),
            max_watches: None,
        }
    }
}

/// Reads `files:` (`v`, the section's value). `null` is the defaults;
/// `None` when it is not a mapping. A field with a problem keeps its
/// default, and the problem is reported.
pub fn read_files(v: &Value, cx: &mut Context) -> Option<FilesConfig> {
    let s: FilesSection = cx.section("files", v)?;
    let mut c = FilesConfig {
        paths: s.paths.items().iter().map(|p| cx.path(p)).collect(),
        ..FilesConfig::default()
    };
    for (i, p) in c.paths.iter().enumerate() {
        if super::pattern::is_pattern(p) {
            cx.glob(&format!("files.paths[{i}]"), &p.to_string_lossy());
        }
    }
    // Every pattern is checked here so that a bad one is reported with its
    // place; the filter is built from the strings when the source starts.
    cx.globs("files.include", s.include.items());
    c.include = s.include.items().to_vec();
    cx.globs("files.exclude", s.exclude.items());
    c.exclude = s.exclude.items().to_vec();
    if let Some(text) = s.max_file_size.get() {
        match parse_size(text) {
            Ok(n) => c.max_file_size = n,
            Err(e) => cx.problem("files.max_file_size", e),
        }
    }
    match cx.duration("files.read_timeout", &s.read_timeout) {
        Some(t) if t < 1 => cx.problem("files.read_timeout", "must be at least 1s"),
        Some(t) => c.read_timeout = t as u64,
        None => {}
    }
    if let Some(text) = s.max_watches.get() {
        match text.parse::<usize>() {
            Ok(n) => c.max_watches = Some(n),
            Err(_) => cx.problem(
                "files.max_watches",
                format!("{text:?} is not a whole number"),
            ),
        }
    }
    Some(c)
}

/// One item of `tokens:` as written.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct TokenRuleSection {
    /// Required: a glob naming the token files (without `/`: file names;
    /// with `/`: whole paths, relative to lapse.yaml's directory).
    path: Text,
    /// Only the credential at this entry (e.g. `token`); unset: every
    /// token in the file without an expiry of its own.
    field: Text,
    /// Required: how long a token lives from its issue time, e.g. `90d`.
    validity: Text,
    /// `mtime` (the default) or `field:NAME`, a dotted field of the
    /// YAML/JSON file holding the issue time.
    issued_at: Text,
}

/// Reads `tokens:`, a list of rules, each at `tokens[i]`. Anything but a
/// list is a problem, `tokens:` left empty included, as it always was.
pub fn read_token_rules(v: &Value, cx: &mut Context) -> Vec<TokenRule> {
    let Some(items) = v.as_array() else {
        cx.problem("tokens", "expected a list of rules");
        return Vec::new();
    };
    items
        .iter()
        .enumerate()
        .filter_map(|(i, item)| read_token_rule(item, &format!("tokens[{i}]"), cx))
        .collect()
}

/// Reads one rule at `at`; `None` when it has any problem. An item left
/// empty (`- `) is no rule and no problem.
pub fn read_token_rule(v: &Value, at: &str, cx: &mut Context) -> Option<TokenRule> {
    if v.is_null() {
        return None;
    }
    let before = cx.problems.len();
    let s: TokenRuleSection = cx.section(at, v)?;
    // "Required" means absent: a key given with no value, or one of the
    // wrong shape (reported by the section reader), is not reported twice.
    let given = |key: &str| v.get(key).is_some();
    let path_at = format!("{at}.path");
    if !given("path") {
        cx.problem(&path_at, "required: a glob naming the token files");
    }
    let matcher = s.path.get().and_then(|g| {
        let pattern = if g.contains('/') {
            cx.path(g).to_string_lossy().into_owned()
        } else {
            g.to_string()
        };
        let matcher = cx.glob(&path_at, &pattern)?;
        Some((pattern, matcher))
    });
    let validity_at = format!("{at}.validity");
    if !given("validity") {
        cx.problem(
            &validity_at,
            "required: how long a token lives, e.g. 60d or 90d",
        );
    }
    let validity = cx.duration(&validity_at, &s.validity);
    if validity == Some(0) {
        cx.problem(&validity_at, "must be longer than zero");
    }
    let issued_at = match s.issued_at.get() {
        None | Some("mtime") => IssuedAt::Mtime,
        Some(f) if f.starts_with("field:") && f.len() > 6 => IssuedAt::Field(f[6..].to_string()),
        Some(other) => {
            cx.problem(
                &format!("{at}.issued_at"),
                format!("{other:?}: use `mtime` or `field:NAME`"),
            );
            IssuedAt::Mtime
        }
    };
    if cx.problems.len() > before {
        return None;
    }
    let (glob, matcher) = matcher?;
    Some(TokenRule {
        glob,
        matcher,
        field: s.field.0,
        validity: validity?,
        issued_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// The `files:` and `tokens:` sections of `text`, read at `base`.
    fn read(text: &str, base: &str) -> (Option<FilesConfig>, Vec<TokenRule>, Vec<String>) {
        let doc: Value = crate::yaml::from_str(text).unwrap();
        let mut cx = Context::new(Path::new(base));
        let files = doc.get("files").and_then(|v| read_files(v, &mut cx));
        let rules = doc
            .get("tokens")
            .map(|v| read_token_rules(v, &mut cx))
            .unwrap_or_default();
        (files, rules, cx.problems.0)
    }

    #[test]
    fn a_full_config() {
        let (files, tokens, problems) = read(
            "files:\n  paths: [pki, /abs]\n  exclude: ['*.key']\n  max_file_size: 1MiB\n\
             tokens:\n- path: /opt/wssd/k8s/*.yaml\n  field: token\n  validity: 90d\n\
             - path: '*.token'\n  validity: 60d\n  issued_at: field:issued\n",
            "/etc/lapse",
        );
        assert!(problems.is_empty(), "{problems:#?}");
        let c = files.unwrap();
        assert_eq!(
            c.paths,
            [PathBuf::from("/etc/lapse/pki"), PathBuf::from("/abs")]
        );
        assert_eq!(c.exclude, ["*.key"]);
        assert_eq!(c.max_file_size, 1 << 20);
        assert_eq!(tokens.len(), 2);
        assert_eq!(tokens[0].validity, 90 * 86_400);
        assert_eq!(tokens[0].field.as_deref(), Some("token"));
        assert!(tokens[0].matches_path(Path::new("/opt/wssd/k8s/cloudlogin.yaml")));
        assert!(!tokens[0].matches_path(Path::new("/opt/wssd/other/cloudlogin.yaml")));
        assert!(tokens[1].matches_path(Path::new("/anywhere/ci.token")));
        assert_eq!(tokens[1].issued_at, IssuedAt::Field("issued".into()));
    }

    #[test]
    fn paths_beside_a_bare_config_name() {
        // `--config lapse.yaml`: the file's directory is the empty path.
        let (files, _, problems) = read(
            "files:\n  paths: ['.', pki, './k8s/*.yaml', 'bad/a[']\n",
            "",
        );
        assert_eq!(problems.len(), 1, "{problems:#?}");
        assert!(problems[0].starts_with("files.paths[3]: invalid glob: "));
        assert_eq!(
            files.unwrap().paths,
            [".", "pki", "k8s/*.yaml", "bad/a["].map(PathBuf::from)
        );
    }

    #[test]
    fn rule_fields_match_entries() {
        let (_, tokens, problems) = read("tokens:\n- {path: x, field: token, validity: 1d}\n", "/");
        assert!(problems.is_empty(), "{problems:#?}");
        let r = &tokens[0];
        assert!(r.matches_entry(Some("token")));
        assert!(r.matches_entry(Some("secret ns/login token")));
        assert!(r.matches_entry(Some("users[ci].token")));
        assert!(!r.matches_entry(Some("refresh-token")));
        assert!(!r.matches_entry(None));
    }

    #[test]
    fn an_empty_section_is_the_defaults() {
        let (files, tokens, problems) = read("files:\ntokens: []\n", "/");
        assert_eq!(files, Some(FilesConfig::default()));
        assert_eq!(files.unwrap().max_file_size, 16 << 20);
        assert!(tokens.is_empty() && problems.is_empty());
    }

    #[test]
    fn every_problem_at_once_naming_its_field() {
        let (_, tokens, problems) = read(
            "files:\n  pahts: [x]\n  max_file_size: lots\n  include: ['a[']\n  exclude: 3\n\
             tokens:\n- path: '*.token'\n  validity: 9x\n- field: token\n\
             - {path: 'b[', validity: 0s, issued_at: ctime}\n- {path: [x], validity: 1d}\n",
            "/",
        );
        assert!(tokens.is_empty());
        let expected = [
            "files.exclude: expected a list of strings",
            "files.pahts: unknown field (expected one of: paths, include, exclude, max_file_size, read_timeout, max_watches)",
            "files.include[0]: invalid glob: ",
            "files.max_file_size: invalid size \"lots\"",
            "tokens[0].validity: invalid duration \"9x\"",
            "tokens[1].path: required: a glob naming the token files",
            "tokens[1].validity: required: how long a token lives, e.g. 60d or 90d",
            "tokens[2].path: invalid glob: ",
            "tokens[2].validity: must be longer than zero",
            "tokens[2].issued_at: \"ctime\": use `mtime` or `field:NAME`",
            "tokens[3].path: expected a string",
        ];
        for want in expected {
            assert!(
                problems.iter().any(|p| p.starts_with(want)),
                "missing {want:?} in {problems:#?}"
            );
        }
        assert_eq!(problems.len(), expected.len(), "{problems:#?}");
    }

    #[test]
    fn tokens_must_be_a_list_and_an_empty_item_is_skipped() {
        let (_, _, problems) = read("tokens: {path: x}\n", "/");
        assert_eq!(problems, ["tokens: expected a list of rules"]);
        let (_, _, problems) = read("tokens:\n", "/");
        assert_eq!(problems, ["tokens: expected a list of rules"]);
        // As before: an empty item, or a rule whose path or validity is
        // given without a value, is left out without a problem.
        let (_, tokens, problems) = read(
            "tokens:\n-\n- {path: '', validity: 1d}\n- {path: x, validity: }\n",
            "/",
        );
        assert!(tokens.is_empty() && problems.is_empty(), "{problems:#?}");
    }
}
