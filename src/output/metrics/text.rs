//! The exposition's text: numbers, escaped label values, sample lines,
//! constant labels, and the classic Prometheus format derived from
//! OpenMetrics.

use crate::logging::plain::plain;
use std::fmt::Write;

/// Writes `value` in Prometheus's float syntax.
pub fn number(out: &mut String, value: f64) {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        let _ = write!(out, "{}", value as i64);
    } else {
        let _ = write!(out, "{value}");
    }
}

/// Escapes a label value (`\`, `"`, newline), after control characters
/// are made plain text (`\r`, `\x1b`), so a CN cannot carry a terminal
/// sequence into dashboards, alert annotations and their mails.
pub fn escape(out: &mut String, value: &str) {
    // Nearly every value is printable ASCII without `\` or `"`: copied whole.
    if value
        .bytes()
        .all(|b| (0x20..0x7f).contains(&b) && b != b'\\' && b != b'"')
    {
        out.push_str(value);
        return;
    }
    for ch in plain(value).chars() {
        match ch {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Appends `name="value"`, after a comma unless `out` is empty.
pub fn label(out: &mut String, name: &str, value: &str) {
    if !out.is_empty() {
        out.push(',');
    }
    out.push_str(name);
    out.push_str("=\"");
    escape(out, value);
    out.push('"');
}

/// Constant labels as they open a label set: `node="w1"`, escaped.
pub fn constant_labels(labels: &[(String, String)]) -> String {
    let mut out = String::new();
    for (name, value) in labels {
        label(&mut out, name, value);
    }
    out
}

pub fn family_header(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {help}.");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// One sample: `name{constants,labels} value`; `labels` are pieces
/// written one after the other.
pub fn sample(out: &mut String, name: &str, constants: &str, labels: &[&str], value: f64) {
    out.push_str(name);
    let empty = labels.iter().all(|l| l.is_empty());
    if !constants.is_empty() || !empty {
        out.push('{');
        out.push_str(constants);
        if !constants.is_empty() && !empty {
            out.push(',');
        }
        for l in labels {
            out.push_str(l);
        }
        out.push('}');
    }
    out.push(' ');
    number(out, value);
    out.push('\n');
}

/// Adds `constants` (from [`constant_labels`]) to every sample line of
/// an exposition written by another encoder (lapse's own metrics).
pub fn with_constants(text: &str, constants: &str) -> String {
    if constants.is_empty() {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len() + text.len() / 4);
    for line in text.lines() {
        if line.starts_with('#') || line.is_empty() {
            out.push_str(line);
        } else {
            // A metric name ends at its label set or at the space before the value.
            let cut = line.find(['{', ' ']).unwrap_or(line.len());
            let (name, rest) = line.split_at(cut);
            out.push_str(name);
            out.push('{');
            out.push_str(constants);
            match rest.strip_prefix('{') {
                Some(labels) if labels.starts_with('}') => out.push_str(labels),
                Some(labels) => {
                    out.push(',');
                    out.push_str(labels);
                }
                None => {
                    out.push('}');
                    out.push_str(rest);
                }
            }
        }
        out.push('\n');
    }
    out
}

/// OpenMetrics text → classic Prometheus text: no `# EOF` or `# UNIT`,
/// counters and info metrics named as their samples are.
pub fn classic(openmetrics: &str) -> String {
    let mut out = String::with_capacity(openmetrics.len());
    let mut renames: Vec<(String, String)> = Vec::new();
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, "untyped"));
            let (new_name, new_kind) = match kind {
                "counter" => (format!("{name}_total"), "counter"),
                "info" => (format!("{name}_info"), "gauge"),
                other => (name.to_string(), other),
            };
            renames.retain(|(old, _)| old != name);
            renames.push((name.to_string(), new_name.clone()));
            let _ = writeln!(out, "# TYPE {new_name} {new_kind}");
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            // prometheus-client writes HELP before TYPE: look the kind up ahead.
            let kind = openmetrics
                .lines()
                .find_map(|l| l.strip_prefix(&format!("# TYPE {name} ")))
                .unwrap_or("");
            let new_name = match kind {
                "counter" => format!("{name}_total"),
                "info" => format!("{name}_info"),
                _ => name.to_string(),
            };
            let _ = writeln!(out, "# HELP {new_name} {help}");
            continue;
        }
        // Counters' `_created` samples have no classic equivalent.
        if line
            .split(['{', ' '])
            .next()
            .is_some_and(|n| n.ends_with("_created"))
        {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classic_conversion_renames_counters_and_info() {
        let om = "# HELP lapse_errors Errors.\n# TYPE lapse_errors counter\nlapse_errors_total{source=\"files\",reason=\"parse\"} 2\n\
                  # HELP lapse_build Build.\n# TYPE lapse_build info\nlapse_build_info{version=\"0.1.0\"} 1\n# EOF\n";
        assert_eq!(
            classic(om),
            "# HELP lapse_errors_total Errors.\n# TYPE lapse_errors_total counter\nlapse_errors_total{source=\"files\",reason=\"parse\"} 2\n\
             # HELP lapse_build_info Build.\n# TYPE lapse_build_info gauge\nlapse_build_info{version=\"0.1.0\"} 1\n"
        );
    }

    #[test]
    fn constant_labels_open_every_sample() {
        let text = "# TYPE a gauge\na 1\nb{le=\"0.5\",source=\"files\"} 2\nc{} 3\n# EOF\n";
        let constants = constant_labels(&[("node".into(), "w\"1".into())]);
        assert_eq!(
            with_constants(text, &constants),
            "# TYPE a gauge\na{node=\"w\\\"1\"} 1\nb{node=\"w\\\"1\",le=\"0.5\",source=\"files\"} 2\n\
             c{node=\"w\\\"1\"} 3\n# EOF\n"
        );
        let mut out = String::new();
        sample(&mut out, "x", &constants, &[], 1.0);
        sample(&mut out, "x", "", &["kind=\"jwt\"", ",b=\"c\""], -2.0);
        sample(&mut out, "x", "", &[], 0.5);
        assert_eq!(
            out,
            "x{node=\"w\\\"1\"} 1\nx{kind=\"jwt\",b=\"c\"} -2\nx 0.5\n"
        );
    }

    #[test]
    fn label_values_are_escaped() {
        let mut out = String::new();
        escape(&mut out, "a\"b\\c");
        assert_eq!(out, "a\\\"b\\\\c");
        // Control characters become plain text first (`\n`, `\r`,
        // `\x1b`), whose backslash the exposition then escapes: the label's
        // value reads `kube\rok\n\x1b[2J`, never a carriage return.
        let mut out = String::new();
        escape(&mut out, "kube\rok\n\x1b[2J");
        assert_eq!(out, "kube\\\\rok\\\\n\\\\x1b[2J");
    }

    #[test]
    fn numbers() {
        let mut out = String::new();
        number(&mut out, -3.0);
        out.push(' ');
        number(&mut out, 1.5);
        assert_eq!(out, "-3 1.5");
    }
}
