//! A [`Line`] as logfmt, the default of Prometheus exporters:
//! `ts=2026-12-02T05:24:36.440Z level=info msg="listening" address=[::]:10070`.
//! Strings and the message are always quoted; other values only when they
//! must be (empty, or holding a space, `=`, `"` or a hidden character).
//! The level is coloured only when the caller says so (a terminal).

use super::record::{Line, Value, escaped, level_name, push_quoted};
use tracing::Level;

/// One line, without its newline.
pub fn write(ts: &str, line: &Line, color: bool) -> String {
    let mut out = String::with_capacity(64 + line.msg.len() + line.fields.len() * 24);
    out.push_str("ts=");
    out.push_str(ts);
    out.push_str(" level=");
    let name = level_name(line.level);
    if color {
        let on = match line.level {
            Level::ERROR => "\x1b[31m",
            Level::WARN => "\x1b[33m",
            Level::INFO => "\x1b[32m",
            _ => "\x1b[34m",
        };
        out.push_str(on);
        out.push_str(name);
        out.push_str("\x1b[0m");
    } else {
        out.push_str(name);
    }
    if let Some(target) = &line.target {
        out.push_str(" target=");
        push_bare(&mut out, target);
    }
    out.push_str(" msg=");
    push_quoted(&mut out, &line.msg);
    for (key, value) in &line.fields {
        out.push(' ');
        out.push_str(key);
        out.push('=');
        match value {
            Value::Str(s) => push_quoted(&mut out, s),
            Value::Text(s) => push_bare(&mut out, s),
            Value::I64(n) => out.push_str(&n.to_string()),
            Value::U64(n) => out.push_str(&n.to_string()),
            Value::F64(n) => push_bare(&mut out, &n.to_string()),
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        }
    }
    out
}

/// `text` as is when a logfmt reader takes it bare, else quoted.
fn push_bare(out: &mut String, text: &str) {
    let quote = text.is_empty()
        || text
            .chars()
            .any(|c| c <= ' ' || c == '=' || c == '"' || c == '\u{fffd}' || escaped(c));
    if quote {
        push_quoted(out, text);
    } else {
        out.push_str(text);
    }
}

#[cfg(test)]
mod tests {
    use super::write;
    use crate::logging::record::{Line, Value};
    use tracing::Level;

    #[test]
    fn strings_quoted_other_values_bare_unless_they_must_be_quoted() {
        let line = Line {
            level: Level::WARN,
            target: Some("kube_runtime::watcher".into()),
            msg: "it said \"no\"\n".into(),
            fields: vec![
                ("reason".into(), Value::Str("parse".into())),
                ("path".into(), Value::Text("a b.crt".into())),
                ("address".into(), Value::Text("[::]:10070".into())),
                ("empty".into(), Value::Text(String::new())),
                ("n".into(), Value::U64(3)),
                ("ok".into(), Value::Bool(true)),
                ("half".into(), Value::F64(0.5)),
            ],
        };
        assert_eq!(
            write("2026-12-02T05:24:36.440Z", &line, false),
            "ts=2026-12-02T05:24:36.440Z level=warn target=kube_runtime::watcher msg=\"it said \\\"no\\\"\\n\" \
             reason=\"parse\" path=\"a b.crt\" address=[::]:10070 empty=\"\" n=3 ok=true half=0.5"
        );
        assert!(write("t", &line, true).starts_with("ts=t level=\x1b[33mwarn\x1b[0m target="));
    }
}
