//! Reading one section of a configuration document: the [`Problems`]
//! collector every section reports into, field types that accept what
//! people write in YAML, and [`read`], which turns a mapping into a
//! section's serde struct while reporting every unknown or ill-shaped
//! field at once, each naming its place (`notify.email.smtp.port`).
//!
//! A section's struct is the single list of its fields: `read` learns the
//! names from serde itself, so no field name is spelt twice. This module
//! reads nothing but the value it is given: files and environment
//! variables a section names are read when its component starts.

use serde::de::{self, DeserializeOwned, Deserializer, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::fmt;
use std::path::{Path, PathBuf};

/// Problems found so far, each `field: what is wrong`.
#[derive(Debug, Default)]
pub struct Problems(pub Vec<String>);

impl Problems {
    pub fn add(&mut self, field: &str, message: impl fmt::Display) {
        self.0.push(format!("{field}: {message}"));
    }

    pub fn unknown(&mut self, field: &str) {
        self.add(field, "unknown field");
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }
}

/// `parent.key`, or `key` at the top.
pub fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

/// What a section needs besides its value: where relative paths start,
/// and the collector.
pub struct Context {
    pub problems: Problems,
    /// The directory of the configuration file.
    pub base: PathBuf,
}

impl Context {
    pub fn new(base: &Path) -> Self {
        Context {
            problems: Problems::default(),
            base: base.to_path_buf(),
        }
    }

    pub fn problem(&mut self, at: &str, what: impl fmt::Display) {
        self.problems.add(at, what);
    }

    /// `~/x` from `$HOME`; relative paths against the file's directory.
    pub fn path(&self, p: &str) -> PathBuf {
        if let Some(rest) = p.strip_prefix("~/")
            && let Some(home) = std::env::var_os("HOME")
        {
            return Path::new(&home).join(rest);
        }
        crate::paths::clean(&self.base.join(p))
    }

    /// A section at `at`: see [`read`].
    pub fn section<T: DeserializeOwned + Default>(&mut self, at: &str, v: &Value) -> Option<T> {
        read(v, at, &mut self.problems)
    }

    /// A human duration (`30d`), or a problem.
    pub fn duration(&mut self, at: &str, text: &Text) -> Option<i64> {
        let t = text.0.as_deref()?;
        match crate::units::parse_duration(t) {
            Ok(d) => Some(d),
            Err(e) => {
                self.problem(at, e);
                None
            }
        }
    }

    /// A compiled glob, or a problem.
    pub fn glob(&mut self, at: &str, pattern: &str) -> Option<globset::GlobMatcher> {
        match globset::Glob::new(pattern) {
            Ok(g) => Some(g.compile_matcher()),
            Err(e) => {
                self.problem(at, format!("invalid glob: {}", e.kind()));
                None
            }
        }
    }

    /// Every pattern checked (`at[i]`); the ones that compile, as matchers.
    pub fn globs(&mut self, at: &str, patterns: &[String]) -> Vec<globset::GlobMatcher> {
        patterns
            .iter()
            .enumerate()
            .filter_map(|(i, g)| self.glob(&format!("{at}[{i}]"), g))
            .collect()
    }
}

/// Reads a mapping as section `T`. Every key `T` does not name is a
/// problem ("unknown field (expected one of: …)"), and so is every field
/// whose value does not fit its type; the fields that fit are kept, and
/// the rest of `T` is its default. `null` is the default section; any
/// other non-mapping is a problem and `None`.
pub fn read<T: DeserializeOwned + Default>(v: &Value, at: &str, p: &mut Problems) -> Option<T> {
    let map = match v {
        Value::Null => return Some(T::default()),
        Value::Object(map) => map,
        _ => {
            p.add(at, "expected a mapping");
            return None;
        }
    };
    let known = field_names::<T>();
    let mut good = Map::new();
    for (key, value) in map {
        if !known.contains(&key.as_str()) {
            p.add(
                &join(at, key),
                format!("unknown field (expected one of: {})", known.join(", ")),
            );
            continue;
        }
        let one = Value::Object(Map::from_iter([(key.clone(), value.clone())]));
        match serde_json::from_value::<T>(one) {
            Ok(_) => {
                good.insert(key.clone(), value.clone());
            }
            Err(e) => p.add(&join(at, key), e),
        }
    }
    match serde_json::from_value(Value::Object(good)) {
        Ok(t) => Some(t),
        Err(e) => {
            p.add(at, e);
            None
        }
    }
}

/// The field names a struct's `Deserialize` asks for, in declaration order.
pub fn field_names<T: DeserializeOwned>() -> &'static [&'static str] {
    struct Names(Option<&'static [&'static str]>);
    #[derive(Debug)]
    struct Stop;
    impl fmt::Display for Stop {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("stop")
        }
    }
    impl std::error::Error for Stop {}
    impl de::Error for Stop {
        fn custom<M: fmt::Display>(_: M) -> Self {
            Stop
        }
    }
    impl<'de> Deserializer<'de> for &mut Names {
        type Error = Stop;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
            Err(Stop)
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Stop> {
            self.0 = Some(fields);
            Err(Stop)
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
            bytes byte_buf option unit unit_struct newtype_struct seq tuple
            tuple_struct map enum identifier ignored_any
        }
    }
    let mut names = Names(None);
    let _ = T::deserialize(&mut names);
    names.0.unwrap_or(&[])
}

/// A string field. Numbers are taken as their text (YAML reads
/// `listen: 9100` and `validity: 30` as numbers); `null` and `""` are unset.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Text(pub Option<String>);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::String(s) if s.is_empty() => Ok(Text(None)),
            Value::String(s) => Ok(Text(Some(s))),
            Value::Number(n) => Ok(Text(Some(n.to_string()))),
            Value::Null => Ok(Text(None)),
            _ => Err(de::Error::custom("expected a string")),
        }
    }
}

impl Text {
    pub fn get(&self) -> Option<&str> {
        self.0.as_deref()
    }
}

/// A list of strings; a single string is a list of one; `null` is unset.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TextList(pub Option<Vec<String>>);

impl<'de> Deserialize<'de> for TextList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::Null => Ok(TextList(None)),
            Value::String(s) => Ok(TextList(Some(vec![s]))),
            Value::Array(items) if items.iter().all(Value::is_string) => Ok(TextList(Some(
                items
                    .into_iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect(),
            ))),
            _ => Err(de::Error::custom("expected a list of strings")),
        }
    }
}

impl TextList {
    /// The strings, or none when unset.
    pub fn items(&self) -> &[String] {
        self.0.as_deref().unwrap_or_default()
    }
}

/// `true` or `false`; `null` is unset.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Flag(pub Option<bool>);

impl<'de> Deserialize<'de> for Flag {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::Bool(b) => Ok(Flag(Some(b))),
            Value::Null => Ok(Flag(None)),
            _ => Err(de::Error::custom("expected true or false")),
        }
    }
}

/// A list of sections (`tokens:`, `notify.routes:`): each item is read at
/// `at[i]`; anything but a list is `problem`.
pub fn items<'v>(v: &'v Value, at: &str, problem: &str, p: &mut Problems) -> &'v [Value] {
    match v {
        Value::Array(items) => items,
        Value::Null => &[],
        _ => {
            p.add(at, problem);
            &[]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize, Default, Debug, PartialEq)]
    #[serde(deny_unknown_fields, default)]
    struct Demo {
        name: Text,
        tags: TextList,
        on: Flag,
        nested: Option<Value>,
    }

    #[test]
    fn names_come_from_the_struct() {
        assert_eq!(field_names::<Demo>(), ["name", "tags", "on", "nested"]);
    }

    #[test]
    fn every_bad_field_is_reported_and_the_good_ones_kept() {
        let mut p = Problems::default();
        let v = serde_json::json!({"name": 9100, "tags": [1], "on": "yes", "bogus": 1, "nested": {"a": 1}});
        let d: Demo = read(&v, "demo", &mut p).unwrap();
        assert_eq!(d.name, Text(Some("9100".into())));
        assert_eq!(d.tags, TextList(None));
        assert_eq!(d.on, Flag(None));
        assert_eq!(d.nested, Some(serde_json::json!({"a": 1})));
        assert_eq!(
            p.0,
            [
                "demo.bogus: unknown field (expected one of: name, tags, on, nested)",
                "demo.on: expected true or false",
                "demo.tags: expected a list of strings",
            ]
        );
    }

    #[test]
    fn null_is_the_default_and_a_scalar_is_not_a_section() {
        let mut p = Problems::default();
        assert_eq!(
            read::<Demo>(&Value::Null, "demo", &mut p),
            Some(Demo::default())
        );
        assert_eq!(read::<Demo>(&serde_json::json!(3), "demo", &mut p), None);
        assert_eq!(p.0, ["demo: expected a mapping"]);
        let d: Demo = read(&serde_json::json!({"name": "", "tags": "one"}), "d", &mut p).unwrap();
        assert_eq!(
            (d.name, d.tags),
            (Text(None), TextList(Some(vec!["one".into()])))
        );
    }
}
