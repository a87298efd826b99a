//! One log line as data: level, the library that wrote it, the message
//! and typed fields, already redacted; the logfmt and JSON writers above
//! write it, the limiter counts it. Also the quoting both formats share
//! (JSON string escaping, which a logfmt reader decodes too).

use tracing::Level;

/// A field's value, as the event recorded it.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// Recorded as a string: quoted in logfmt, a string in JSON.
    Str(String),
    /// Recorded through `Display` or `Debug`: bare in logfmt when it
    /// needs no quotes, a string in JSON.
    Text(String),
    I64(i64),
    U64(u64),
    F64(f64),
    Bool(bool),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Line {
    pub level: Level,
    /// The library's target; `None` for lapse's own lines.
    pub target: Option<String>,
    pub msg: String,
    pub fields: Vec<(String, Value)>,
}

/// Keys every line has; a field of the same name is written as `field.<name>`.
pub const RESERVED: [&str; 4] = ["ts", "level", "msg", "target"];

/// The level as `--log.level` spells it: `info`, `warn`.
pub fn level_name(level: Level) -> &'static str {
    match level {
        Level::ERROR => "error",
        Level::WARN => "warn",
        Level::INFO => "info",
        Level::DEBUG => "debug",
        Level::TRACE => "trace",
    }
}

/// `key` safe to write unquoted: letters, digits, `_`, `.` and `-`.
pub fn key(name: &str) -> String {
    let name = name.trim_start_matches("r#");
    let clean: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if clean.is_empty() || RESERVED.contains(&clean.as_str()) {
        format!("field.{clean}")
    } else {
        clean
    }
}

/// Characters shown as an escape in a quoted value: every control
/// character and the invisible ones that reorder or hide text (as
/// the plain-text module treats them).
pub fn escaped(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{61c}'
                | '\u{200b}'..='\u{200f}'
                | '\u{2028}'..='\u{202e}'
                | '\u{2060}'..='\u{2069}'
                | '\u{feff}'
        )
}

/// Appends `text` as a double-quoted string, escaped as JSON escapes
/// (`\"`, `\\`, `\n`, `\r`, `\t`, `\u001b`), which a logfmt reader
/// decodes too. Hidden characters are escaped as well, so the raw line
/// is plain text.
pub fn push_quoted(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if escaped(c) => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::{key, push_quoted};

    #[test]
    fn quoted_text_escapes_controls_and_hidden_characters() {
        let mut out = String::new();
        push_quoted(
            &mut out,
            "a\"b\\c\nd\re\tf\x1b[2K\x7f\u{9b}\u{202e}\u{fffd}é証",
        );
        assert_eq!(out, r#""a\"b\\c\nd\re\tf\u001b[2K\u007f\u009b\u202e�é証""#);
    }

    #[test]
    fn keys_are_plain_and_never_a_reserved_name() {
        assert_eq!(key("r#type"), "type");
        assert_eq!(key("msg"), "field.msg");
        assert_eq!(key("a b=c"), "a_b_c");
    }
}
