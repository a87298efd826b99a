//! Rate limits for warnings: the same log statement (one call site, so one
//! target and one message template) is written at most `max_repeats`
//! times per `window`; the rest of that window is counted and reported in
//! one line when it ends. A flood of 200,000 broken entries costs a few
//! lines of log, not 54 MB. No clock of its own: callers pass `now`.

use super::record::{Line, Value};
use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

/// How much of one warning the log takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Lines per call site per window; 0 is no limit.
    pub max_repeats: u32,
    pub window: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_repeats: 10,
            window: Duration::from_secs(60),
        }
    }
}

struct Window {
    started: Instant,
    written: u32,
    suppressed: u64,
    /// The first line held back, shown in the count line.
    first: Option<Line>,
}

impl Window {
    /// The count line for what this window held back, if anything.
    fn summary(&mut self, span: Duration) -> Option<Line> {
        let first = self.first.take()?;
        let seconds = span.as_secs().max(1);
        let mut fields = first.fields;
        fields.push(("suppressed".into(), Value::U64(self.suppressed)));
        let line = Line {
            msg: format!(
                "{} similar line{} suppressed in the last {}, the first: {}",
                self.suppressed,
                if self.suppressed == 1 { "" } else { "s" },
                crate::units::human_span(seconds as i64),
                first.msg
            ),
            fields,
            ..first
        };
        self.suppressed = 0;
        Some(line)
    }
}

pub struct Limiter<K> {
    limits: Limits,
    windows: HashMap<K, Window>,
}

impl<K: Hash + Eq> Limiter<K> {
    pub fn new(limits: Limits) -> Self {
        Limiter {
            limits,
            windows: HashMap::new(),
        }
    }

    /// What to write for `line` from call site `key` at `now`: nothing
    /// (held back and counted), the line, or the count line of the
    /// window that just ended and then the line.
    pub fn admit(&mut self, key: K, now: Instant, line: Line) -> Vec<Line> {
        if self.limits.max_repeats == 0 {
            return vec![line];
        }
        let window = self.windows.entry(key).or_insert(Window {
            started: now,
            written: 0,
            suppressed: 0,
            first: None,
        });
        let mut out = Vec::new();
        if now.saturating_duration_since(window.started) >= self.limits.window {
            out.extend(window.summary(now.saturating_duration_since(window.started)));
            window.started = now;
            window.written = 0;
        }
        if window.written < self.limits.max_repeats {
            window.written += 1;
            out.push(line);
        } else {
            window.suppressed += 1;
            window.first.get_or_insert(line);
        }
        out
    }

    /// The count lines of windows that have ended by `now`, each over
    /// the window's length.
    pub fn ended(&mut self, now: Instant) -> Vec<Line> {
        let limit = self.limits.window;
        self.windows
            .values_mut()
            .filter(|w| now.saturating_duration_since(w.started) >= limit)
            .filter_map(|w| w.summary(limit))
            .collect()
    }

    /// Every count line still owed, ended or not (the process is exiting).
    pub fn drain(&mut self, now: Instant) -> Vec<Line> {
        self.windows
            .values_mut()
            .filter_map(|w| w.summary(now.saturating_duration_since(w.started)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::{Limiter, Limits, Line};
    use std::time::{Duration, Instant};

    fn line(msg: &str) -> Line {
        Line {
            level: tracing::Level::WARN,
            target: None,
            msg: msg.into(),
            fields: Vec::new(),
        }
    }

    fn bodies(lines: Vec<Line>) -> Vec<String> {
        lines.into_iter().map(|l| l.msg).collect()
    }

    #[test]
    fn ten_a_minute_per_call_site_then_one_count_line() {
        let t0 = Instant::now();
        let mut limiter = Limiter::new(Limits::default());
        let mut written = Vec::new();
        for i in 0..25 {
            written.extend(bodies(limiter.admit("a", t0, line(&format!("a{i}")))));
        }
        written.extend(bodies(limiter.admit("b", t0, line("b0"))));
        assert_eq!(
            written,
            [
                "a0", "a1", "a2", "a3", "a4", "a5", "a6", "a7", "a8", "a9", "b0"
            ]
        );
        assert!(limiter.ended(t0 + Duration::from_secs(59)).is_empty());
        assert_eq!(
            bodies(limiter.ended(t0 + Duration::from_secs(60))),
            ["15 similar lines suppressed in the last 1m, the first: a10"]
        );
        // Counted once; the new window writes again.
        assert!(limiter.ended(t0 + Duration::from_secs(61)).is_empty());
        let later = t0 + Duration::from_secs(61);
        assert_eq!(bodies(limiter.admit("a", later, line("a25"))), ["a25"]);
    }

    #[test]
    fn the_next_line_after_a_window_brings_its_count_and_drain_owes_none() {
        let t0 = Instant::now();
        let limits = Limits {
            max_repeats: 1,
            window: Duration::from_secs(2),
        };
        let mut limiter = Limiter::new(limits);
        limiter.admit("a", t0, line("one"));
        limiter.admit("a", t0, line("two"));
        limiter.admit("a", t0, line("three"));
        assert_eq!(
            bodies(limiter.admit("a", t0 + Duration::from_secs(3), line("four"))),
            [
                "2 similar lines suppressed in the last 3s, the first: two",
                "four"
            ]
        );
        limiter.admit("a", t0 + Duration::from_secs(3), line("five"));
        assert_eq!(
            bodies(limiter.drain(t0 + Duration::from_secs(4))),
            ["1 similar line suppressed in the last 1s, the first: five"]
        );
        let mut unlimited = Limiter::new(Limits {
            max_repeats: 0,
            window: Duration::from_secs(60),
        });
        for i in 0..100 {
            assert_eq!(unlimited.admit("a", t0, line(&i.to_string())).len(), 1);
        }
    }
}
