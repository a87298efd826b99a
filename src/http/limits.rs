//! `http:` in lapse.yaml: how long a client may take and how many may be
//! connected at once. Read here, beside the server that applies them; the
//! root document hands this section over.
//!
//! Every limit has a default that holds without configuration, so a
//! client that sends nothing, half a header or never reads is always
//! closed in bounded time.

use crate::config::section::{Context, Text};
use serde::Deserialize;
use serde_json::Value;
use std::time::Duration;

/// The limits the HTTP server applies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpLimits {
    /// A new connection's first request header must be complete within this.
    pub header_timeout: Duration,
    /// A kept-alive connection's next request header must be complete
    /// within this of the previous response.
    pub idle_timeout: Duration,
    /// A response must be written whole within this of its request's header.
    pub write_timeout: Duration,
    /// Open connections at once (lowered at start-up to stay below the
    /// file-descriptor limit).
    pub max_connections: usize,
}

pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(5);
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// Prometheus's default scrape timeout: a scraper has given up by then.
pub const DEFAULT_WRITE_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
/// Timeouts are whole seconds in this range.
const TIMEOUT_RANGE: (i64, i64) = (1, 60);
const MAX_CONNECTIONS_LIMIT: u64 = 1_000_000;

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            write_timeout: DEFAULT_WRITE_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
        }
    }
}

/// `http:`'s fields, in the order problems list them.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct HttpSection {
    /// Default 5s.
    header_timeout: Text,
    /// Default 10s.
    idle_timeout: Text,
    /// Default 10s.
    write_timeout: Text,
    /// Default 1024.
    max_connections: Text,
}

fn timeout(cx: &mut Context, at: &str, text: &Text, slot: &mut Duration) {
    let Some(seconds) = cx.duration(at, text) else {
        return;
    };
    let (low, high) = TIMEOUT_RANGE;
    if (low..=high).contains(&seconds) {
        *slot = Duration::from_secs(seconds as u64);
    } else {
        cx.problem(at, "must be from 1s to 1m");
    }
}

/// Reads `http:`; every problem is reported into `cx`, naming its field.
pub fn read(v: &Value, cx: &mut Context) -> HttpLimits {
    let mut limits = HttpLimits::default();
    let Some(s) = cx.section::<HttpSection>("http", v) else {
        return limits;
    };
    timeout(
        cx,
        "http.header_timeout",
        &s.header_timeout,
        &mut limits.header_timeout,
    );
    timeout(
        cx,
        "http.idle_timeout",
        &s.idle_timeout,
        &mut limits.idle_timeout,
    );
    timeout(
        cx,
        "http.write_timeout",
        &s.write_timeout,
        &mut limits.write_timeout,
    );
    if let Some(n) = s.max_connections.get() {
        match n.parse::<u64>() {
            Ok(n) if (1..=MAX_CONNECTIONS_LIMIT).contains(&n) => {
                limits.max_connections = n as usize
            }
            _ => cx.problem(
                "http.max_connections",
                format!("expected a whole number from 1 to {MAX_CONNECTIONS_LIMIT}"),
            ),
        }
    }
    limits
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn read_yaml(yaml: serde_json::Value) -> (HttpLimits, Vec<String>) {
        let mut cx = Context::new(Path::new("/"));
        let limits = read(&yaml, &mut cx);
        (limits, cx.problems.0)
    }

    #[test]
    fn defaults_and_values() {
        assert_eq!(read_yaml(Value::Null), (HttpLimits::default(), vec![]));
        let (limits, problems) = read_yaml(serde_json::json!({
            "header_timeout": "2s", "idle_timeout": "1m", "write_timeout": "30s", "max_connections": 64
        }));
        assert_eq!(problems, Vec::<String>::new());
        assert_eq!(
            limits,
            HttpLimits {
                header_timeout: Duration::from_secs(2),
                idle_timeout: Duration::from_secs(60),
                write_timeout: Duration::from_secs(30),
                max_connections: 64,
            }
        );
    }

    #[test]
    fn every_problem_names_its_field() {
        let (limits, problems) = read_yaml(serde_json::json!({
            "header_timeout": "0s", "idle_timeout": "2m", "write_timeout": [1],
            "max_connections": 0, "extra": true
        }));
        assert_eq!(limits, HttpLimits::default());
        assert_eq!(
            problems,
            [
                "http.extra: unknown field (expected one of: header_timeout, idle_timeout, write_timeout, max_connections)",
                "http.write_timeout: expected a string",
                "http.header_timeout: must be from 1s to 1m",
                "http.idle_timeout: must be from 1s to 1m",
                "http.max_connections: expected a whole number from 1 to 1000000",
            ]
        );
    }
}
