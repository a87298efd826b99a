//! A real Prometheus server (Debian's `prometheus` package) scraping a
//! running lapse every second, for tests that read values back through
//! its HTTP API, evaluate alert rules or run dashboard queries.
//!
//! CI installs the package; a machine without it fails these tests with a
//! message saying so instead of skipping them silently.

use super::{Client, Response, Scratch, free_port};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const PROMETHEUS: &str = "/usr/bin/prometheus";
pub const PROMTOOL: &str = "/usr/bin/promtool";
/// Prometheus starts, scrapes every second and answers within this.
pub const PROMETHEUS_DEADLINE: Duration = Duration::from_secs(60);

#[track_caller]
pub fn require(binary: &str) {
    assert!(
        Path::new(binary).exists(),
        "{binary} is missing: install Debian's `prometheus` package (apt-get install prometheus); \
         CI installs it in .ci/run"
    );
}

/// A running Prometheus; killed on drop (its log printed if the test is
/// failing, so a failed assertion shows what Prometheus said).
pub struct Prometheus {
    child: Child,
    port: u16,
    log: PathBuf,
    name: String,
}

/// A Prometheus being configured: its own directory in the scratch tree
/// (config, storage, log), a whole `prometheus.yml`, and extra flags.
pub struct Builder<'a> {
    scratch: &'a Scratch,
    name: String,
    config: String,
    flags: Vec<String>,
}

impl Builder<'_> {
    /// Adds a command-line flag (`--web.enable-remote-write-receiver`).
    pub fn flag(mut self, flag: &str) -> Self {
        self.flags.push(flag.to_string());
        self
    }

    /// Agent mode: scrapes and remote-writes, keeps no TSDB, answers no queries.
    pub fn agent(self) -> Self {
        self.flag("--enable-feature=agent")
    }

    fn is_agent(&self) -> bool {
        self.flags.iter().any(|f| f == "--enable-feature=agent")
    }

    /// Starts it on a free port and waits until `/-/ready` says 200;
    /// retries on another port if someone took the one it was given.
    pub fn start(self) -> Prometheus {
        require(PROMETHEUS);
        let s = self.scratch;
        let dir = &self.name;
        s.write(&format!("{dir}/prometheus.yml"), &self.config);
        let storage = if self.is_agent() {
            format!("--storage.agent.path={}", s.abs(&format!("{dir}/agent")))
        } else {
            format!("--storage.tsdb.path={}", s.abs(&format!("{dir}/data")))
        };
        let mut last_log = String::new();
        for _ in 0..5 {
            let port = free_port();
            let log = s.path(&format!("{dir}/{port}.log"));
            let stdout = File::create(&log).expect("create the log");
            let stderr = stdout.try_clone().expect("share the log");
            let child = Command::new(PROMETHEUS)
                .env_clear()
                .env("HOME", s.home())
                .arg(format!(
                    "--config.file={}",
                    s.abs(&format!("{dir}/prometheus.yml"))
                ))
                .arg(&storage)
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .args(&self.flags)
                .stdin(Stdio::null())
                .stdout(stdout)
                .stderr(stderr)
                .spawn()
                .expect("start prometheus");
            let mut p = Prometheus {
                child,
                port,
                log,
                name: self.name.clone(),
            };
            let started = Instant::now();
            while started.elapsed() < PROMETHEUS_DEADLINE {
                if p.child.try_wait().expect("poll prometheus").is_some() {
                    break;
                }
                if p.get("/-/ready").is_ok_and(|r| r.status == 200) {
                    return p;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            last_log = p.log();
            if !last_log.contains("address already in use") {
                // Not the log on drop too.
                let _ = p.child.kill();
                panic!(
                    "Prometheus {dir} did not become ready\n--- its log ---\n{last_log}\n--- prometheus.yml ---\n{}",
                    self.config
                );
            }
        }
        panic!("Prometheus {dir} found no free port\n--- its log ---\n{last_log}");
    }
}

impl Prometheus {
    /// A Prometheus named `name` (its directory in `s`) running `config`.
    pub fn with_config<'a>(s: &'a Scratch, name: &str, config: impl Into<String>) -> Builder<'a> {
        Builder {
            scratch: s,
            name: name.to_string(),
            config: config.into(),
            flags: Vec::new(),
        }
    }

    /// Starts Prometheus scraping `target` every second; waits until it is ready.
    pub fn start(s: &Scratch, target: u16) -> Prometheus {
        Prometheus::start_with_rules(s, target, None)
    }

    /// Like [`start`](Self::start), evaluating the rules in `rules` every second.
    pub fn start_with_rules(s: &Scratch, target: u16, rules: Option<&Path>) -> Prometheus {
        let rule_files = rules
            .map(|r| format!("rule_files:\n- {:?}\n", r.display().to_string()))
            .unwrap_or_default();
        Prometheus::with_config(
            s,
            "prometheus",
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
                 {rule_files}\
                 scrape_configs:\n- job_name: lapse\n  static_configs:\n  - targets: ['127.0.0.1:{target}']\n"
            ),
        )
        .start()
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn get(&self, path: &str) -> std::io::Result<Response> {
        Client::plain().request(self.port, "GET", path, &[])
    }

    /// `data` of a successful API answer.
    pub fn api(&self, path: &str) -> Value {
        let r = self
            .get(path)
            .unwrap_or_else(|e| panic!("GET {path}: {e}\n--- log ---\n{}", self.log()));
        let body: Value =
            serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("GET {path}: {e}: {}", r.body));
        assert_eq!(body["status"], "success", "GET {path}: {body}");
        body["data"].clone()
    }

    /// An instant query's result vector.
    pub fn query(&self, promql: &str) -> Vec<Value> {
        self.api(&format!("/api/v1/query?query={}", percent_encode(promql)))["result"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Queries until the result is not empty; returns it.
    pub fn query_until_present(&self, promql: &str) -> Vec<Value> {
        let started = Instant::now();
        loop {
            let result = self.query(promql);
            if !result.is_empty() {
                println!(
                    "{promql}: in Prometheus after {} ms",
                    started.elapsed().as_millis()
                );
                return result;
            }
            if started.elapsed() > PROMETHEUS_DEADLINE {
                let targets = self.get("/api/v1/targets").map(|r| r.body);
                panic!(
                    "{promql}: no result after {PROMETHEUS_DEADLINE:?}\n--- targets ---\n{targets:?}\n--- log ---\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

impl Prometheus {
    /// An instant query's result vector; Err with Prometheus's reason if
    /// it refuses the query (a dashboard's, say) or cannot be reached.
    pub fn try_query(&self, promql: &str) -> Result<Vec<Value>, String> {
        let r = self
            .get(&format!("/api/v1/query?query={}", percent_encode(promql)))
            .map_err(|e| e.to_string())?;
        let body: Value = serde_json::from_str(&r.body).map_err(|e| format!("{e}: {}", r.body))?;
        if body["status"] != "success" {
            return Err(format!("{}: {}", body["errorType"], body["error"]));
        }
        Ok(body["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default())
    }

    /// When each rule group's last evaluation started (`/api/v1/rules`).
    pub fn last_evaluations(&self) -> Vec<time::OffsetDateTime> {
        self.api("/api/v1/rules")["groups"]
            .as_array()
            .expect("rule groups")
            .iter()
            .map(|g| {
                let at = g["lastEvaluation"].as_str().expect("lastEvaluation");
                time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339)
                    .unwrap_or_else(|e| panic!("{at}: {e}"))
            })
            .collect()
    }

    /// The alerts of every rule group, firing or pending (`/api/v1/alerts`).
    pub fn alerts(&self) -> Vec<Value> {
        self.api("/api/v1/alerts")["alerts"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Calls `probe` every 250 ms until it returns `Ok`, for at most
    /// [`PROMETHEUS_DEADLINE`]; panics with its last `Err` and the log.
    #[track_caller]
    pub fn wait_until<T>(
        &self,
        what: &str,
        mut probe: impl FnMut(&Prometheus) -> Result<T, String>,
    ) -> T {
        let started = Instant::now();
        loop {
            match probe(self) {
                Ok(done) => {
                    println!("{what}: after {} ms", started.elapsed().as_millis());
                    return done;
                }
                Err(why) if started.elapsed() > PROMETHEUS_DEADLINE => panic!(
                    "{what}: not after {PROMETHEUS_DEADLINE:?}: {why}\n--- Prometheus {}'s log ---\n{}",
                    self.name,
                    self.log()
                ),
                Err(_) => std::thread::sleep(Duration::from_millis(250)),
            }
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log = self.log();
            let lines: Vec<&str> = log.lines().collect();
            let tail = lines[lines.len().saturating_sub(40)..].join("\n");
            eprintln!("--- the end of Prometheus {}'s log ---\n{tail}", self.name);
        }
    }
}

pub fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Each Grafana variable reference in `text` (`$name`, `${name}`,
/// `${name:format}`, `[[name]]`, `[[name:format]]`): its range and name.
pub fn references(text: &str) -> Vec<(std::ops::Range<usize>, String)> {
    let ident = |s: &str| {
        s.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(s.len())
    };
    let mut found = Vec::new();
    let mut at = 0;
    while at < text.len() {
        let rest = &text[at..];
        let (open, close) = if rest.starts_with("${") {
            ("${", "}")
        } else if rest.starts_with("[[") {
            ("[[", "]]")
        } else if let Some(after) = rest.strip_prefix('$') {
            let len = ident(after);
            if len > 0 {
                found.push((at..at + 1 + len, after[..len].to_string()));
            }
            at += 1 + len;
            continue;
        } else {
            at += rest.chars().next().map_or(1, char::len_utf8);
            continue;
        };
        let inner = &rest[open.len()..];
        let end = inner
            .find(close)
            .unwrap_or_else(|| panic!("unclosed {open} in {text}"));
        let name = inner[..end].split(':').next().unwrap_or("").to_string();
        let len = open.len() + end + close.len();
        found.push((at..at + len, name));
        at += len;
    }
    found
}

pub fn substitute(text: &str, values: &std::collections::BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut last = 0;
    for (range, name) in references(text) {
        let value = values
            .get(&name)
            .unwrap_or_else(|| panic!("${name} has no value to put in {text}"));
        out.push_str(&text[last..range.start]);
        out.push_str(value);
        last = range.end;
    }
    out.push_str(&text[last..]);
    out
}

/// A query result's sample value.
pub fn value(series: &Value) -> f64 {
    series["value"][1]
        .as_str()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("not a sample: {series}"))
}

/// A query result's label; "" when absent, as PromQL treats it.
pub fn label<'a>(series: &'a Value, name: &str) -> &'a str {
    series["metric"][name].as_str().unwrap_or("")
}

/// The rules files in `alerts/` (`*.rules.yml`, whatever they are called
/// today), each as JSON with every `for:` set to 0s (alerts fire at their
/// first evaluation), written into `s`: their paths.
pub fn shipped_rules_firing_at_once(s: &Scratch) -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("alerts");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("read {dir:?}: {e}"))
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".rules.yml"))
        .collect();
    names.sort();
    assert!(!names.is_empty(), "no *.rules.yml in {dir:?}");
    names
        .iter()
        .map(|name| {
            let text = std::fs::read_to_string(dir.join(name)).expect("read the rules");
            let mut doc: Value = serde_saphyr::from_str(&text)
                .unwrap_or_else(|e| panic!("parse alerts/{name}: {e}"));
            for group in doc["groups"].as_array_mut().expect("groups") {
                for rule in group["rules"].as_array_mut().expect("rules") {
                    if rule.get("for").is_some() {
                        rule["for"] = json!("0s");
                    }
                }
            }
            let rel = format!("central/rules/{name}");
            s.write(&rel, doc.to_string());
            println!("central Prometheus loads alerts/{name}");
            s.abs(&rel)
        })
        .collect()
}

/// lapse's Grafana dashboard, read at test time.
pub fn dashboard() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("dashboards/lapse.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path:?}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parse {path:?}: {e}"))
}

/// Every target of every panel, rows' nested panels included:
/// (panel type, panel title, expression).
pub fn expressions(d: &Value) -> Vec<(String, String, String)> {
    fn walk(list: &Value, out: &mut Vec<(String, String, String)>) {
        for panel in list.as_array().into_iter().flatten() {
            walk(&panel["panels"], out);
            for target in panel["targets"].as_array().into_iter().flatten() {
                if let Some(expr) = target["expr"].as_str() {
                    let text = |k: &str| panel[k].as_str().unwrap_or("").to_string();
                    out.push((text("type"), text("title"), expr.to_string()));
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(&d["panels"], &mut out);
    out
}

pub fn variables(d: &Value) -> BTreeMap<String, Value> {
    d["templating"]["list"]
        .as_array()
        .expect("templating.list")
        .iter()
        .map(|v| {
            (
                v["name"].as_str().expect("a variable name").to_string(),
                v.clone(),
            )
        })
        .collect()
}

/// `$cluster` is `cluster`; the other query variables match everything;
/// custom ones (thresholds) keep their default; Grafana's own get sensible values.
pub fn values_for(vars: &BTreeMap<String, Value>, cluster: &str) -> BTreeMap<String, String> {
    let mut values: BTreeMap<String, String> = [
        ("__range", "1h"),
        ("__range_s", "3600"),
        ("__range_ms", "3600000"),
        ("__interval", "15s"),
        ("__interval_ms", "15000"),
        ("__rate_interval", "1m"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for (name, var) in vars {
        let current = &var["current"]["value"];
        let default = current
            .as_str()
            .or_else(|| current[0].as_str())
            .or_else(|| var["options"][0]["value"].as_str())
            .unwrap_or(".*");
        let value = match var["type"].as_str().unwrap_or("") {
            _ if name == "cluster" => cluster,
            "query" | "datasource" | "adhoc" => ".*",
            _ if default == "$__all" => ".*",
            _ => default,
        };
        values.insert(name.clone(), value.to_string());
    }
    values
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grafana_references_in_every_form() {
        let text = r#"x{a=~"$a", b=~"${b}", c=~"${c:regex}", d=~"[[d]]", e=~"[[e:csv]]"}[$__rate_interval] $ 5"#;
        let names: Vec<String> = references(text).into_iter().map(|(_, n)| n).collect();
        assert_eq!(names, ["a", "b", "c", "d", "e", "__rate_interval"]);
        let values = ["a", "b", "c", "d", "e", "__rate_interval"]
            .iter()
            .map(|n| (n.to_string(), n.to_uppercase()))
            .collect();
        assert_eq!(
            substitute(text, &values),
            r#"x{a=~"A", b=~"B", c=~"C", d=~"D", e=~"E"}[__RATE_INTERVAL] $ 5"#
        );
    }
}
