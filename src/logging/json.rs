//! A [`Line`] as one JSON object, for log pipelines:
//! `{"ts":"2026-12-02T05:24:36.440Z","level":"info","msg":"listening","address":"[::]:10070"}`.
//! Numbers and booleans keep their type; everything else is a string,
//! escaped so the line is plain text (never colour, never a raw control
//! or reordering character). Text was valid UTF-8 before it got here:
//! bytes that were not (a file name) arrive as U+FFFD.

use super::record::{Line, Value, level_name, push_quoted};

/// One object, without its newline.
pub fn write(ts: &str, line: &Line) -> String {
    let mut out = String::with_capacity(64 + line.msg.len() + line.fields.len() * 24);
    out.push_str("{\"ts\":");
    push_quoted(&mut out, ts);
    out.push_str(",\"level\":\"");
    out.push_str(level_name(line.level));
    out.push('"');
    if let Some(target) = &line.target {
        out.push_str(",\"target\":");
        push_quoted(&mut out, target);
    }
    out.push_str(",\"msg\":");
    push_quoted(&mut out, &line.msg);
    for (key, value) in &line.fields {
        out.push(',');
        push_quoted(&mut out, key);
        out.push(':');
        match value {
            Value::Str(s) | Value::Text(s) => push_quoted(&mut out, s),
            Value::I64(n) => out.push_str(&n.to_string()),
            Value::U64(n) => out.push_str(&n.to_string()),
            Value::F64(n) if n.is_finite() => out.push_str(&n.to_string()),
            Value::F64(n) => push_quoted(&mut out, &n.to_string()),
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        }
    }
    out.push('}');
    out
}

#[cfg(test)]
mod tests {
    use super::write;
    use crate::logging::record::{Line, Value};
    use tracing::Level;

    #[test]
    fn one_object_with_typed_fields_that_serde_reads_back() {
        let line = Line {
            level: Level::ERROR,
            target: None,
            msg: "a\u{202e}b\x1b[2K\r\n".into(),
            fields: vec![
                ("path".into(), Value::Text("x\u{fffd}.crt".into())),
                ("code".into(), Value::I64(-1)),
                ("n".into(), Value::U64(7)),
                ("nan".into(), Value::F64(f64::NAN)),
                ("ok".into(), Value::Bool(false)),
            ],
        };
        let text = write("2026-12-02T05:24:36.440Z", &line);
        assert_eq!(
            text,
            r#"{"ts":"2026-12-02T05:24:36.440Z","level":"error","msg":"a\u202eb\u001b[2K\r\n","path":"x�.crt","code":-1,"n":7,"nan":"NaN","ok":false}"#
        );
        let back: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back["msg"], "a\u{202e}b\x1b[2K\r\n");
    }
}
