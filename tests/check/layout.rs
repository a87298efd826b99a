//! The shape of `src/`: the module graph has no cycle, imports point down
//! the flow (sources → parsers → inventory → readers; nothing imports the
//! commands), and every file reads in one sitting.
//!
//! The graph is read from the source text: a module is a file, and it
//! uses every module a `crate::…`, `super::…` or child-module path in it
//! names (test modules at the end of a file left out). This is what
//! `cargo modules dependencies --acyclic` checks, without its build.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Files longer than this, tests aside, are too long to read in one sitting.
const MAX_LINES: usize = 620;

fn src_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src/") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            src_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `src/a/b.rs` → `a::b`; `src/a/mod.rs` → `a`; `src/lib.rs` → `` (the crate).
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).expect("under src/");
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop().unwrap_or_default();
    let stem = last.trim_end_matches(".rs");
    if stem != "mod" && stem != "lib" {
        parts.push(stem.to_string());
    }
    parts.join("::")
}

/// The text before the first `#[cfg(test)]` module.
fn without_tests(text: &str) -> &str {
    let mut at = 0;
    for line in text.split_inclusive('\n') {
        if line.trim() == "#[cfg(test)]" {
            let rest = &text[at + line.len()..];
            if rest.trim_start().starts_with("mod ") {
                return &text[..at];
            }
        }
        at += line.len();
    }
    text
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Every path (`a::b::C`) the text spells after `prefix`, with `{…}`
/// groups expanded one level: `crate::{a::X, b}` gives `a::X` and `b`.
fn paths_after(text: &str, prefix: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find(prefix) {
        let before = rest[..i].chars().next_back();
        rest = &rest[i + prefix.len()..];
        if before.is_some_and(is_ident) {
            continue;
        }
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let item: String = item
                    .trim()
                    .chars()
                    .take_while(|c| is_ident(*c) || *c == ':')
                    .collect();
                if !item.is_empty() {
                    out.push(item);
                }
            }
            continue;
        }
        let path: String = rest
            .chars()
            .take_while(|c| is_ident(*c) || *c == ':')
            .collect();
        out.push(path);
    }
    out
}

/// The longest module that `path` (segments from the crate root) names.
fn resolve(modules: &BTreeSet<String>, path: &str) -> Option<String> {
    let segments: Vec<&str> = path.split("::").filter(|s| !s.is_empty()).collect();
    (1..=segments.len())
        .rev()
        .map(|n| segments[..n].join("::"))
        .find(|m| modules.contains(m))
}

fn graph() -> (BTreeMap<String, BTreeSet<String>>, BTreeMap<String, String>) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    src_files(&src, &mut files);
    let texts: BTreeMap<String, String> = files
        .iter()
        .filter(|f| f.file_name().is_some_and(|n| n != "main.rs"))
        .map(|f| {
            let text = std::fs::read_to_string(f).expect("read");
            (module_of(&src, f), text)
        })
        .collect();
    // Modules compiled for tests only (`#[cfg(test)] mod properties;`) are
    // test code, like the test modules at the end of a file.
    let test_only: BTreeSet<String> = texts
        .iter()
        .flat_map(|(module, text)| {
            let lines: Vec<&str> = text.lines().map(str::trim).collect();
            lines
                .windows(2)
                .filter(|w| {
                    w[0] == "#[cfg(test)]" && w[1].starts_with("mod ") && w[1].ends_with(';')
                })
                .map(|w| {
                    let name = w[1].trim_start_matches("mod ").trim_end_matches(';');
                    if module.is_empty() {
                        name.to_string()
                    } else {
                        format!("{module}::{name}")
                    }
                })
                .collect::<Vec<_>>()
        })
        .collect();
    let texts: BTreeMap<String, String> = texts
        .into_iter()
        .filter(|(m, _)| !test_only.contains(m))
        .collect();
    let modules: BTreeSet<String> = texts.keys().cloned().collect();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (module, text) in &texts {
        let code = without_tests(text);
        let parent = module.rsplit_once("::").map(|(p, _)| p).unwrap_or("");
        let mut named: Vec<String> = paths_after(code, "crate::");
        named.extend(
            paths_after(code, "super::")
                .into_iter()
                .map(|p| format!("{parent}::{p}")),
        );
        // Children named by relative paths (`plan::Event`).
        for child in modules.iter().filter(|m| {
            m.rsplit_once("::").map(|(p, _)| p).unwrap_or("") == module && !m.is_empty()
        }) {
            let name = child.rsplit("::").next().unwrap_or(child);
            if !paths_after(code, &format!("{name}::")).is_empty()
                || code.contains(&format!("{name}::"))
            {
                named.push(child.clone());
            }
        }
        let targets = edges.entry(module.clone()).or_default();
        for path in named {
            if let Some(target) = resolve(&modules, path.trim_start_matches("::"))
                && target != *module
                && !target.is_empty()
            {
                targets.insert(target);
            }
        }
    }
    (edges, texts)
}

/// A cycle through the graph, if there is one.
fn find_cycle(edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Open,
        Done,
    }
    fn visit(
        node: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        marks: &mut BTreeMap<String, Mark>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        match marks.get(node) {
            Some(Mark::Done) => return None,
            Some(Mark::Open) => {
                let from = stack.iter().position(|n| n == node).unwrap_or(0);
                let mut cycle = stack[from..].to_vec();
                cycle.push(node.to_string());
                return Some(cycle);
            }
            None => {}
        }
        marks.insert(node.to_string(), Mark::Open);
        stack.push(node.to_string());
        for next in edges.get(node).into_iter().flatten() {
            if let Some(c) = visit(next, edges, marks, stack) {
                return Some(c);
            }
        }
        stack.pop();
        marks.insert(node.to_string(), Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    for node in edges.keys() {
        if let Some(c) = visit(node, edges, &mut marks, &mut Vec::new()) {
            return Some(c);
        }
    }
    None
}

#[test]
fn the_module_graph_has_no_cycle() {
    let (edges, _) = graph();
    assert!(edges.len() > 20, "too few modules read: {edges:?}");
    // The graph sees `crate::` paths, `super::` paths and children named
    // by relative paths alike.
    for (from, to) in [
        ("command::check", "settings"),
        ("notify", "notify::smtp"),
        ("parse::x509", "parse::record"),
        ("source::files::scanner", "source::files::walk"),
    ] {
        assert!(
            edges[from].contains(to),
            "{from} → {to} not seen: {:?}",
            edges[from]
        );
    }
    if let Some(cycle) = find_cycle(&edges) {
        panic!("module cycle: {}", cycle.join(" → "));
    }
}

#[test]
fn the_cycle_check_finds_a_cycle() {
    let edges: BTreeMap<String, BTreeSet<String>> = [
        ("a", vec!["b"]),
        ("b", vec!["c"]),
        ("c", vec!["a"]),
        ("d", vec![]),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.into_iter().map(String::from).collect()))
    .collect();
    assert_eq!(
        find_cycle(&edges),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
    assert_eq!(
        paths_after(
            "use crate::{a::X, b};\nlet x = my_crate::c; crate::d::e(",
            "crate::"
        ),
        ["a::X", "b", "d::e"]
    );
}

/// Layers, lowest first: a module may use its own layer and those below.
/// `config::section` (how a section is read) sits low, beside the
/// foundation; the root document `config`, which gathers every
/// component's section, sits with the commands.
const LAYERS: &[(&str, &[&str])] = &[
    (
        "foundation",
        &[
            "credential",
            "paths",
            "units",
            "timefmt",
            "yaml",
            "par",
            "logging",
            "config::section",
        ],
    ),
    ("parsers", &["parse"]),
    ("inventory", &["inventory", "telemetry"]),
    ("sources", &["source"]),
    ("readers", &["output", "notify", "http"]),
    ("commands", &["config", "settings", "cli", "command"]),
];

fn layer_of(module: &str) -> Option<usize> {
    let top = module.split("::").next().unwrap_or(module);
    LAYERS
        .iter()
        .position(|(_, names)| names.contains(&module))
        .or_else(|| LAYERS.iter().position(|(_, names)| names.contains(&top)))
}

#[test]
fn imports_point_down_the_flow() {
    let (edges, _) = graph();
    let mut wrong = Vec::new();
    for (from, targets) in edges.iter().filter(|(m, _)| !m.is_empty()) {
        let Some(lf) = layer_of(from) else {
            wrong.push(format!("{from}: in no layer"));
            continue;
        };
        for to in targets {
            match layer_of(to) {
                Some(lt) if lt <= lf => {}
                Some(lt) => wrong.push(format!(
                    "{from} ({}) uses {to} ({})",
                    LAYERS[lf].0, LAYERS[lt].0
                )),
                None => wrong.push(format!("{to}: in no layer")),
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn every_file_reads_in_one_sitting() {
    let (_, texts) = graph();
    let long: Vec<String> = texts
        .iter()
        .filter_map(|(m, t)| {
            let n = without_tests(t).lines().count();
            (n > MAX_LINES).then(|| format!("{m}: {n} lines"))
        })
        .collect();
    assert!(
        long.is_empty(),
        "longer than {MAX_LINES} lines, tests aside:\n{}",
        long.join("\n")
    );
}
