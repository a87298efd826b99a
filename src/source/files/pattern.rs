//! Roots written as glob patterns (`/opt/wssd/k8s/*.yaml`, `pki/**/*.crt`)
//! turned into the paths they match now. The file source expands its
//! roots before every scan, so a file that starts to match is read and
//! one that vanishes is forgotten without a restart; `serve` watches each
//! pattern's literal directory to hear of new matches.
//!
//! A root is a pattern when it holds `*`, `?`, `[` or `{` and names no
//! existing path (a file called `cert[1].pem` is that file). As in a
//! shell, `*` stays within one path component, `**` crosses them, and a
//! name starting with `.` matches only a pattern component that starts
//! with `.` (so `/run/secrets/*` does not list the atomic writer's
//! `..data`). A matching directory is a root walked as any other.
//!
//! Matching walks only the pattern's literal directory, no deeper than
//! the pattern reaches, and stops at [`MAX_ENTRIES`]. Nothing here reads
//! a file's bytes.

use crate::credential::{ErrorEntry, ErrorReason};
use globset::{GlobBuilder, GlobMatcher};
use std::path::{Component, Path, PathBuf};

/// At most this many directory entries are looked at per pattern.
pub const MAX_ENTRIES: usize = 1_000_000;

/// Roots with their patterns expanded.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Expansion {
    /// Literal roots as given, then each pattern's matches in path order;
    /// each once.
    pub roots: Vec<PathBuf>,
    /// Patterns that match nothing now, as given.
    pub unmatched: Vec<PathBuf>,
    /// Where new matches appear: each pattern's literal directory, and
    /// whether matches can lie below it (`**`, or a wildcard directory).
    pub watch: Vec<(PathBuf, bool)>,
    /// A pattern that is not a valid glob, or that met [`MAX_ENTRIES`].
    pub errors: Vec<ErrorEntry>,
}

/// Whether `root` is read as a pattern (see the module documentation).
pub fn is_pattern(root: &Path) -> bool {
    wild(root.as_os_str()) && std::fs::symlink_metadata(root).is_err()
}

fn wild(text: &std::ffi::OsStr) -> bool {
    text.as_encoded_bytes()
        .iter()
        .any(|b| matches!(b, b'*' | b'?' | b'[' | b'{'))
}

/// Expands every pattern among `roots`; literal roots pass through.
pub fn expand(roots: &[PathBuf]) -> Expansion {
    let mut out = Expansion::default();
    for root in roots {
        if !is_pattern(root) {
            out.roots.push(root.clone());
            continue;
        }
        let before = out.roots.len();
        expand_one(root, &mut out);
        if out.roots.len() == before && !out.errors.iter().any(|e| Path::new(&e.path) == root) {
            out.unmatched.push(root.clone());
        }
    }
    let mut seen = std::collections::HashSet::new();
    out.roots.retain(|r| seen.insert(r.clone()));
    out
}

fn error(pattern: &Path, reason: ErrorReason, message: String) -> ErrorEntry {
    ErrorEntry {
        path: pattern.display().to_string(),
        entry: None,
        reason,
        message,
    }
}

fn expand_one(pattern: &Path, out: &mut Expansion) {
    let components: Vec<Component> = pattern.components().collect();
    let literal = components
        .iter()
        .take_while(|c| !wild(c.as_os_str()))
        .count();
    let base: PathBuf = components[..literal].iter().collect();
    let implicit = base.as_os_str().is_empty();
    let base = if implicit { PathBuf::from(".") } else { base };
    let rest = &components[literal..];
    let deep = rest.iter().any(|c| c.as_os_str() == "**");
    out.watch.push((base.clone(), deep || rest.len() > 1));
    let matcher = match glob(pattern) {
        Ok(m) => m,
        Err(why) => {
            out.errors.push(error(pattern, ErrorReason::Parse, why));
            return;
        }
    };
    // A `.` name is matched only where the pattern spells a dot.
    let dots = rest
        .iter()
        .any(|c| c.as_os_str().as_encoded_bytes().starts_with(b"."));
    let mut walk = walkdir::WalkDir::new(&base).follow_links(true).min_depth(1);
    if !deep {
        walk = walk.max_depth(rest.len());
    }
    let mut matches = Vec::new();
    let mut walk = walk.into_iter();
    let mut looked = 0usize;
    while let Some(entry) = walk.next() {
        let Ok(entry) = entry else { continue };
        looked += 1;
        if looked > MAX_ENTRIES {
            out.errors.push(error(
                pattern,
                ErrorReason::TooLarge,
                format!(
                    "pattern stopped after {MAX_ENTRIES} directory entries; narrow it or name directories instead"
                ),
            ));
            break;
        }
        let hidden = entry.file_name().as_encoded_bytes().starts_with(b".");
        if hidden && !dots {
            if entry.file_type().is_dir() {
                walk.skip_current_dir();
            }
            continue;
        }
        let path = if implicit {
            entry
                .path()
                .strip_prefix(".")
                .unwrap_or(entry.path())
                .to_path_buf()
        } else {
            entry.path().to_path_buf()
        };
        if matcher.is_match(&path) {
            // A matching directory is walked as a root: not twice.
            if entry.file_type().is_dir() {
                walk.skip_current_dir();
            }
            matches.push(path);
        }
    }
    matches.sort_by_cached_key(|p| crate::paths::sort_key(p));
    out.roots.extend(matches);
}

/// A shell-like matcher: `*` within one component, `**` across them.
fn glob(pattern: &Path) -> Result<GlobMatcher, String> {
    let text = pattern.to_string_lossy();
    GlobBuilder::new(&text)
        .literal_separator(true)
        .build()
        .map(|g| g.compile_matcher())
        .map_err(|e| format!("invalid glob: {}", e.kind()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, rel: &str) {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, "x").unwrap();
    }

    fn names(e: &Expansion, base: &Path) -> Vec<String> {
        e.roots
            .iter()
            .map(|p| p.strip_prefix(base).unwrap().display().to_string())
            .collect()
    }

    #[test]
    fn expands_stars_and_double_stars() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        for f in [
            "a.yaml",
            "b.yaml",
            "c.txt",
            "sub/d.yaml",
            ".e.yaml",
            "sub/x/f.yaml",
        ] {
            write(d, f);
        }
        let one = expand(&[d.join("*.yaml")]);
        assert_eq!(names(&one, d), ["a.yaml", "b.yaml"]);
        assert_eq!(one.watch, [(d.to_path_buf(), false)]);
        let deep = expand(&[d.join("**/*.yaml")]);
        assert_eq!(
            names(&deep, d),
            ["a.yaml", "b.yaml", "sub/d.yaml", "sub/x/f.yaml"]
        );
        assert_eq!(deep.watch, [(d.to_path_buf(), true)]);
        let dirs = expand(&[d.join("s*")]);
        assert_eq!(names(&dirs, d), ["sub"]);
        let dotted = expand(&[d.join(".*.yaml")]);
        assert_eq!(names(&dotted, d), [".e.yaml"]);
    }

    #[test]
    fn literal_roots_pass_and_unmatched_patterns_are_listed() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        write(d, "cert[1].pem");
        let literal = d.join("cert[1].pem");
        let none = d.join("gone/*.pem");
        let e = expand(&[literal.clone(), d.join("plain"), none.clone()]);
        assert_eq!(e.roots, [literal, d.join("plain")]);
        assert_eq!(e.unmatched, [none]);
        assert_eq!(e.watch, [(d.join("gone"), false)]);
        assert!(e.errors.is_empty());
    }

    #[test]
    fn a_bad_pattern_is_an_error_entry() {
        let e = expand(&[PathBuf::from("/nowhere/a[")]);
        assert!(e.roots.is_empty() && e.unmatched.is_empty());
        assert_eq!(e.errors.len(), 1);
        assert_eq!(e.errors[0].path, "/nowhere/a[");
        assert!(
            e.errors[0].message.starts_with("invalid glob: "),
            "{:?}",
            e.errors
        );
    }
}
