//! A reader of plugin output written from the Nagios plugin guidelines
//! (nagios-plugins.org/doc/guidelines.html, "Plugin Output" and
//! "Performance data"), not from lapse's code: the status line, the long
//! text, `'label'=value[UOM];[warn];[crit];[min];[max]` and threshold
//! ranges.

/// A threshold range of the guidelines (section "Threshold and ranges"):
/// `[@][start:][end]`; `start` may be `~` (−∞), an omitted start is 0, an
/// omitted end after `:` is +∞. Without `@` it alerts outside
/// start..=end; with `@`, inside it.
#[derive(Debug, PartialEq)]
struct Range {
    inside: bool,
    start: f64,
    end: f64,
}

impl Range {
    fn parse(text: &str) -> Range {
        let (inside, rest) = match text.strip_prefix('@') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let (start, end) = match rest.split_once(':') {
            Some((start, end)) => {
                let start = match start {
                    "~" => f64::NEG_INFINITY,
                    "" => 0.0,
                    n => number(n),
                };
                let end = if end.is_empty() {
                    f64::INFINITY
                } else {
                    number(end)
                };
                (start, end)
            }
            None => (0.0, number(rest)),
        };
        assert!(start <= end, "range {text:?}: start above end");
        Range { inside, start, end }
    }

    fn alerts(&self, value: f64) -> bool {
        let within = self.start <= value && value <= self.end;
        within == self.inside
    }
}

/// A value, min or max: characters of the class `[-0-9.]`, a number.
fn number(text: &str) -> f64 {
    assert!(
        !text.is_empty()
            && text
                .chars()
                .all(|c| c == '-' || c == '.' || c.is_ascii_digit()),
        "{text:?} is not in the class [-0-9.]"
    );
    text.parse()
        .unwrap_or_else(|_| panic!("{text:?} is not a number"))
}

#[derive(Debug)]
pub struct Perf {
    label: String,
    value: f64,
    uom: String,
    warn: Option<Range>,
    crit: Option<Range>,
}

/// `'label'=value[UOM];[warn];[crit];[min];[max]`, space separated. A
/// label is quoted when it holds a space, `=` or `'`; `''` is a quote
/// inside quotes. Trailing empty fields may be dropped.
pub fn parse_perfdata(text: &str) -> Vec<Perf> {
    let mut items = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let (label, after) = if let Some(quoted) = rest.strip_prefix('\'') {
            let mut label = String::new();
            let mut chars = quoted.char_indices();
            let end = loop {
                match chars.next() {
                    Some((i, '\'')) if quoted[i + 1..].starts_with('\'') => {
                        label.push('\'');
                        chars.next();
                    }
                    Some((i, '\'')) => break i + 1,
                    Some((_, c)) => label.push(c),
                    None => panic!("unterminated quoted label in {text:?}"),
                }
            };
            (label, &quoted[end..])
        } else {
            let end = rest
                .find('=')
                .unwrap_or_else(|| panic!("no '=' in {rest:?}"));
            let label = &rest[..end];
            assert!(!label.contains([' ', '\'']), "label {label:?} needs quotes");
            (label.to_string(), &rest[end..])
        };
        assert!(!label.is_empty(), "empty label in {text:?}");
        let after = after
            .strip_prefix('=')
            .unwrap_or_else(|| panic!("label {label:?} is not followed by '='"));
        let (item, next) = after.split_once(' ').unwrap_or((after, ""));
        assert!(!next.starts_with(' '), "two spaces in {text:?}");
        rest = next;
        let fields: Vec<&str> = item.split(';').collect();
        assert!(fields.len() <= 5, "{item:?}: more than five fields");
        let digits = fields[0]
            .find(|c: char| !(c == '-' || c == '.' || c.is_ascii_digit()))
            .unwrap_or(fields[0].len());
        let (value, uom) = fields[0].split_at(digits);
        assert!(
            ["", "s", "ms", "us", "%", "B", "KB", "MB", "GB", "TB", "c"].contains(&uom),
            "{item:?}: unit {uom:?} is not one of the guidelines'"
        );
        let range = |i: usize| {
            fields
                .get(i)
                .filter(|f| !f.is_empty())
                .map(|f| Range::parse(f))
        };
        for i in [3, 4] {
            if let Some(f) = fields.get(i).filter(|f| !f.is_empty()) {
                number(f);
            }
        }
        items.push(Perf {
            label,
            value: number(value),
            uom: uom.to_string(),
            warn: range(1),
            crit: range(2),
        });
    }
    items
}

/// What every plugin output must be: a status line `LAPSE <STATE> - text
/// | perfdata` whose state word is the exit status's, long text without a
/// `|` (so no line is taken for performance data), counts that agree with
/// the text, and `soonest_seconds` thresholds that judge as lapse does.
pub fn check_plugin_output(stdout: &str, code: i32) -> Vec<Perf> {
    assert!(stdout.ends_with('\n'), "no final newline");
    let mut lines = stdout.lines();
    let status = lines.next().expect("a status line");
    for line in lines {
        assert!(!line.contains('|'), "long text line {line:?} holds a '|'");
    }
    let word = ["OK", "WARNING", "CRITICAL", "UNKNOWN"][usize::try_from(code).unwrap()];
    let (text, perf) = status.split_once(" | ").expect("status line has ' | '");
    assert!(!perf.contains('|'), "a second '|' on the status line");
    assert!(
        text.starts_with(&format!("LAPSE {word} - ")),
        "{text:?} does not say {word}"
    );
    let items = parse_perfdata(perf);
    let count = |label: &str| {
        let item = items.iter().find(|p| p.label == label).unwrap();
        assert_eq!((item.uom.as_str(), item.warn.as_ref()), ("", None));
        item.value
    };
    for (label, words) in [
        ("expired", "expired"),
        ("critical", "critical"),
        ("warning", "warning"),
        ("ok", "ok"),
    ] {
        if !text.contains("no credential found") && !text.contains("nothing found") {
            assert!(
                text.contains(&format!(" {} {words}", count(label))),
                "{text:?} does not say {} {words}",
                count(label)
            );
        }
    }
    if let Some(soonest) = items.iter().find(|p| p.label == "soonest_seconds") {
        assert_eq!(soonest.uom, "s");
        let alerts = |r: &Option<Range>| r.as_ref().unwrap().alerts(soonest.value);
        let implied = if alerts(&soonest.crit) {
            2
        } else if alerts(&soonest.warn) {
            1
        } else {
            0
        };
        match code {
            3 => assert_eq!(implied, 0),
            _ if count("not_yet_valid") > 0.0 => assert!(implied <= code),
            _ => assert_eq!(implied, code, "thresholds judge {soonest:?} otherwise"),
        }
    }
    items
}

/// The parser reads the guidelines' forms: quoted labels with a quote
/// inside, units, dropped trailing fields, and each kind of range.
#[test]
fn the_perfdata_parser_reads_the_guidelines_forms() {
    let items = parse_perfdata("'in put'=3;10;@5:20;0; time=0.8s;~:1;2: 'it''s'=7%");
    let labels: Vec<&str> = items.iter().map(|p| p.label.as_str()).collect();
    assert_eq!(labels, ["in put", "time", "it's"]);
    assert_eq!((items[1].value, items[1].uom.as_str()), (0.8, "s"));
    let w = items[0].warn.as_ref().unwrap();
    assert_eq!(
        (
            w.alerts(-1.0),
            w.alerts(0.0),
            w.alerts(10.0),
            w.alerts(11.0)
        ),
        (true, false, false, true)
    );
    let c = items[0].crit.as_ref().unwrap();
    assert_eq!(
        (c.alerts(4.0), c.alerts(5.0), c.alerts(20.0), c.alerts(21.0)),
        (false, true, true, false)
    );
    let w = items[1].warn.as_ref().unwrap();
    assert_eq!(
        (w.alerts(-9.0), w.alerts(1.0), w.alerts(1.5)),
        (false, false, true)
    );
    let c = items[1].crit.as_ref().unwrap();
    assert_eq!(
        (c.alerts(1.9), c.alerts(2.0), c.alerts(1e9)),
        (true, false, false)
    );
    assert!(items[2].warn.is_none());
    assert_eq!(
        Range::parse("@~:5"),
        Range {
            inside: true,
            start: f64::NEG_INFINITY,
            end: 5.0
        }
    );
}
