//! The `notify:` section of lapse.yaml: where mail goes (SMTP server,
//! sender, recipients, routes), when (thresholds, digest) and where the
//! notifier keeps its state; [`read`] validates it, reporting every
//! problem at once, each naming its field.
//!
//! Validation reads nothing but the document: the SMTP password is only
//! located here, and read by [`NotifyConfig::resolve_password`] when the
//! notifier starts. The password never appears in `Debug` output, a
//! problem or a log line. Nothing here sends mail or touches the state file.

use super::plan::{Renewed, Rules};
use crate::config::section::{Context, Text};
use crate::credential::{Credential, Kind, Source};
use globset::GlobMatcher;
use lettre::message::Mailbox;
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// How the connection to the mail server is secured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tls {
    /// Plain SMTP (port 25 by default).
    None,
    /// Plain, upgraded with STARTTLS (port 587 by default).
    StartTls,
    /// TLS from the first byte (port 465 by default).
    Tls,
}

/// Where the SMTP password lives: a file or an environment variable, read
/// at start-up. Names a place, never holds the password itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PasswordSource {
    /// A file; the trailing line break is not part of the password.
    File(PathBuf),
    /// An environment variable, by name.
    Env(String),
}

/// The mail server and how to log in to it.
#[derive(Clone)]
pub struct Smtp {
    pub host: String,
    pub port: u16,
    pub tls: Tls,
    pub username: Option<String>,
    /// Where the password is read from at start-up.
    pub password_source: Option<PasswordSource>,
    /// The password once read; never logged, never in `Debug`.
    pub password: Option<String>,
}

impl fmt::Debug for Smtp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Smtp")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("username", &self.username)
            .field("password_source", &self.password_source)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl Smtp {
    /// Reads the password from where `password_source` says. The error is
    /// a whole problem, field included (`notify.email.smtp.password_env:
    /// $VAR is not set`); it names the file or variable, never its content.
    pub fn resolve_password(&mut self) -> Result<(), String> {
        let Some(source) = &self.password_source else {
            return Ok(());
        };
        let password = match source {
            PasswordSource::File(path) => std::fs::read_to_string(path)
                .map(|p| p.trim_end_matches(['\r', '\n']).to_string())
                .map_err(|e| {
                    format!(
                        "notify.email.smtp.password_file: cannot read {}: {e}",
                        path.display()
                    )
                })?,
            PasswordSource::Env(var) => std::env::var(var)
                .map_err(|_| format!("notify.email.smtp.password_env: ${var} is not set"))?,
        };
        self.password = Some(password);
        Ok(())
    }
}

/// Which credentials a route takes, and who gets them. Every field that is
/// set must match; none set matches everything.
#[derive(Clone, Debug, Default)]
pub struct Route {
    pub kind: Option<Kind>,
    pub source: Option<Source>,
    /// The namespace of the credential's Kubernetes object.
    pub namespace: Option<String>,
    /// A glob over the credential's path.
    pub path: Option<GlobMatcher>,
    /// Labels the Kubernetes object carries, each with this value.
    pub labels: BTreeMap<String, String>,
    /// Never empty.
    pub to: Vec<Mailbox>,
}

impl Route {
    /// A credential without a Kubernetes object matches no namespace or label.
    pub(super) fn matches(&self, c: &Credential) -> bool {
        let object = c.object.as_ref();
        self.kind.is_none_or(|k| k == c.kind)
            && self.source.is_none_or(|s| s == c.source)
            && self
                .namespace
                .as_ref()
                .is_none_or(|ns| object.is_some_and(|o| &o.namespace == ns))
            && self.path.as_ref().is_none_or(|g| g.is_match(&*c.path))
            && self.labels.iter().all(|(k, v)| {
                object.is_some_and(|o| o.labels.iter().any(|(lk, lv)| lk == k && lv == v))
            })
    }
}

#[derive(Clone, Debug)]
/// The validated `notify:` section.
pub struct NotifyConfig {
    pub smtp: Smtp,
    pub from: Mailbox,
    /// Default recipients, and those of the digest; never empty.
    pub to: Vec<Mailbox>,
    /// Widest first.
    pub thresholds: Vec<i64>,
    /// First matching route wins; no match: `to`.
    pub routes: Vec<Route>,
    /// Seconds after midnight UTC for the daily digest.
    pub digest: Option<i64>,
    /// Where what was sent is remembered across restarts.
    pub state_file: PathBuf,
    /// How often the inventory is looked at.
    pub check_interval: Duration,
    /// The first delay before a failed message is tried again; it doubles.
    pub retry_interval: Duration,
    /// Mail credentials whose whole validity is shorter than the smallest
    /// threshold (`short_lived: mail`); by default they are not mailed.
    pub short_lived: bool,
    /// When a rotation is mailed as "renewed" (`renewed:`).
    pub renewed: Renewed,
}

impl NotifyConfig {
    /// Reads what must be read when the notifier starts: the SMTP password.
    /// See [`Smtp::resolve_password`].
    pub fn resolve_password(&mut self) -> Result<(), String> {
        self.smtp.resolve_password()
    }

    /// The rules the plan decides by.
    pub fn rules(&self) -> Rules<'_> {
        Rules {
            thresholds: &self.thresholds,
            short_lived: self.short_lived,
            renewed: self.renewed,
        }
    }

    /// Who gets mail about `c`: the first route that matches it, else `to`.
    pub(super) fn recipients(&self, c: &Credential) -> &[Mailbox] {
        self.routes
            .iter()
            .find(|r| r.matches(c))
            .map(|r| r.to.as_slice())
            .unwrap_or(&self.to)
    }
}

/// Where the notifier keeps what it sent, unless `state_file` says.
pub const DEFAULT_STATE_FILE: &str = "/var/lib/lapse/notify-state.json";
/// Days before expiry at which a message goes out, unless `thresholds` says.
const DEFAULT_THRESHOLD_DAYS: [i64; 5] = [30, 14, 7, 3, 1];
const DEFAULT_CHECK_SECONDS: i64 = 60;
const DEFAULT_RETRY_SECONDS: i64 = 10;

/// `notify:` as written. Fields are declared in the order the "expected
/// one of" list names them.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct NotifySection {
    /// `{smtp, from, to}`: required.
    #[serde(deserialize_with = "present")]
    email: Option<Value>,
    /// Durations before expiry, any order (`[30d, 14d, 7d, 3d, 1d]`).
    #[serde(deserialize_with = "present")]
    thresholds: Option<Value>,
    /// `[{match, to}]`: the first route that matches a credential takes it.
    #[serde(deserialize_with = "present")]
    routes: Option<Value>,
    /// `HH:MM` (UTC): a daily digest to `email.to`.
    digest: Text,
    /// Relative to the configuration file; default [`DEFAULT_STATE_FILE`].
    state_file: Text,
    /// How often the inventory is looked at; default 60s.
    check_interval: Text,
    /// The first delay before a failed message is tried again; default 10s.
    retry_interval: Text,
    /// `skip` (the default) or `mail`: credentials whose whole validity is
    /// shorter than the smallest threshold (machinery-rotated tokens).
    short_lived: Text,
    /// `warned` (the default), `always` or `never`: when a rotation to a
    /// later expiry is mailed as "renewed".
    renewed: Text,
}

/// `notify.email:` as written.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct EmailSection {
    /// `{host, port, tls, username, password_file | password_env}`: required.
    #[serde(deserialize_with = "present")]
    smtp: Option<Value>,
    /// The sender, `name@host` or `Name <name@host>`: required.
    #[serde(deserialize_with = "present")]
    from: Option<Value>,
    /// Default recipients: one address or a list; at least one.
    #[serde(deserialize_with = "present")]
    to: Option<Value>,
}

/// `notify.email.smtp:` as written.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct SmtpSection {
    /// The mail server: required.
    host: Text,
    /// Default from `tls`: 25, 587 or 465.
    port: Text,
    /// `none`, `starttls` (the default) or `tls`.
    tls: Text,
    /// Log in as; needs a password.
    username: Text,
    /// A file holding the password, relative to the configuration file.
    password_file: Text,
    /// An environment variable holding the password (when no `password_file`).
    password_env: Text,
}

/// One of `notify.routes:` as written.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct RouteSection {
    /// Which credentials; every field given must match. None: all.
    #[serde(rename = "match", deserialize_with = "present")]
    selector: Option<Value>,
    /// Who gets them: one address or a list; at least one.
    #[serde(deserialize_with = "present")]
    to: Option<Value>,
}

/// `notify.routes[i].match:` as written.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct MatchSection {
    /// A credential kind (`x509`, `jwt`, …).
    kind: Text,
    /// Where it was found (`files`, `kubernetes`).
    source: Text,
    /// The Kubernetes namespace of its object.
    namespace: Text,
    /// A glob over its path.
    path: Text,
    /// Labels its Kubernetes object carries, each with this value.
    labels: Option<Value>,
}

/// A field that is there, even as `null`: some fields treat `key:` with
/// nothing after it differently from leaving the key out (see [`read`]).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

/// A string (or number) at `at`, as [`Text`] reads it; `None` when unset.
fn text(cx: &mut Context, at: &str, v: &Value) -> Option<String> {
    match Text::deserialize(v) {
        Ok(t) => t.0,
        Err(e) => {
            cx.problem(at, e);
            None
        }
    }
}

fn mailbox(cx: &mut Context, at: &str, v: &Value) -> Option<Mailbox> {
    let text = text(cx, at, v)?;
    match text.parse::<Mailbox>() {
        Ok(m) => Some(m),
        Err(e) => {
            cx.problem(at, format!("{text:?} is not an email address: {e}"));
            None
        }
    }
}

/// One address, or a list of them (each reported at `at[i]`).
fn mailboxes(cx: &mut Context, at: &str, v: &Value) -> Vec<Mailbox> {
    match v {
        Value::Array(items) => items
            .iter()
            .enumerate()
            .filter_map(|(i, item)| mailbox(cx, &format!("{at}[{i}]"), item))
            .collect(),
        other => mailbox(cx, at, other).into_iter().collect(),
    }
}

/// Validates `notify:`; every problem goes to `cx`, and any problem in the
/// section makes it `None`. The password is located, not read.
///
/// Kept as the hand-written validator had it (a test below shows it):
/// `notify:`, `email:`, `smtp:` or `from:` left empty (null), and a route
/// or its `match:` left empty, quietly leave that part out rather than
/// report it; a missing `email:` stops the section before the rest is read.
pub fn read(v: &Value, cx: &mut Context) -> Option<NotifyConfig> {
    if v.is_null() {
        return None;
    }
    let before = cx.problems.len();
    let n: NotifySection = cx.section("notify", v)?;
    let Some(email) = n.email else {
        cx.problem("notify.email", "required: smtp, from and to");
        return None;
    };
    if email.is_null() {
        return None;
    }
    let e: EmailSection = cx.section("notify.email", &email)?;
    let smtp = match &e.smtp {
        Some(v) if v.is_null() => None,
        Some(v) => smtp(v, cx),
        None => {
            cx.problem("notify.email.smtp", "required: {host, port, tls}");
            None
        }
    };
    let from = match &e.from {
        Some(v) => mailbox(cx, "notify.email.from", v),
        None => {
            cx.problem("notify.email.from", "required");
            None
        }
    };
    let to = match &e.to {
        Some(v) => mailboxes(cx, "notify.email.to", v),
        None => Vec::new(),
    };
    if to.is_empty() {
        cx.problem("notify.email.to", "required: at least one recipient");
    }
    let mut thresholds: Vec<i64> = match &n.thresholds {
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .filter_map(|(i, t)| {
                let at = format!("notify.thresholds[{i}]");
                let t = Text(text(cx, &at, t));
                cx.duration(&at, &t)
            })
            .collect(),
        Some(_) => {
            cx.problem(
                "notify.thresholds",
                "expected a list of durations, e.g. [30d, 14d, 7d, 3d, 1d]",
            );
            Vec::new()
        }
        None => DEFAULT_THRESHOLD_DAYS.iter().map(|d| d * 86_400).collect(),
    };
    thresholds.sort_unstable_by(|a, b| b.cmp(a));
    thresholds.dedup();
    if thresholds.is_empty() || thresholds.contains(&0) {
        cx.problem(
            "notify.thresholds",
            "needs at least one duration longer than zero",
        );
    }
    let mut routes = Vec::new();
    match &n.routes {
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                if let Some(r) = route(&format!("notify.routes[{i}]"), item, cx) {
                    routes.push(r);
                }
            }
        }
        Some(_) => cx.problem("notify.routes", "expected a list of routes"),
        None => {}
    }
    let digest = n.digest.get().and_then(|t| {
        let parsed = t
            .split_once(':')
            .and_then(|(h, mm)| Some((h.parse::<i64>().ok()?, mm.parse::<i64>().ok()?)))
            .filter(|(h, mm)| (0..24).contains(h) && (0..60).contains(mm));
        match parsed {
            Some((h, mm)) => Some(h * 3_600 + mm * 60),
            None => {
                cx.problem("notify.digest", format!("{t:?}: use HH:MM (UTC)"));
                None
            }
        }
    });
    let state_file = n
        .state_file
        .get()
        .map(|p| cx.path(p))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_FILE));
    let check_interval = cx
        .duration("notify.check_interval", &n.check_interval)
        .unwrap_or(DEFAULT_CHECK_SECONDS);
    let retry_interval = cx
        .duration("notify.retry_interval", &n.retry_interval)
        .unwrap_or(DEFAULT_RETRY_SECONDS);
    if check_interval == 0 || retry_interval == 0 {
        cx.problem(
            "notify",
            "check_interval and retry_interval must be longer than zero",
        );
    }
    let short_lived = match n.short_lived.get() {
        None | Some("skip") => false,
        Some("mail") => true,
        Some(other) => {
            cx.problem("notify.short_lived", format!("{other:?}: use skip or mail"));
            false
        }
    };
    let renewed = match n.renewed.get() {
        None | Some("warned") => Renewed::Warned,
        Some("always") => Renewed::Always,
        Some("never") => Renewed::Never,
        Some(other) => {
            cx.problem(
                "notify.renewed",
                format!("{other:?}: use warned, always or never"),
            );
            Renewed::Warned
        }
    };
    if cx.problems.len() > before {
        return None;
    }
    Some(NotifyConfig {
        smtp: smtp?,
        from: from?,
        to,
        thresholds,
        routes,
        digest,
        state_file,
        check_interval: Duration::from_secs(check_interval as u64),
        retry_interval: Duration::from_secs(retry_interval as u64),
        short_lived,
        renewed,
    })
}

fn smtp(v: &Value, cx: &mut Context) -> Option<Smtp> {
    let s: SmtpSection = cx.section("notify.email.smtp", v)?;
    let host = s.host.0;
    if host.is_none() {
        cx.problem("notify.email.smtp.host", "required");
    }
    let tls = match s.tls.get() {
        None | Some("starttls") => Tls::StartTls,
        Some("tls") => Tls::Tls,
        Some("none") => Tls::None,
        Some(other) => {
            cx.problem(
                "notify.email.smtp.tls",
                format!("{other:?}: use none, starttls or tls"),
            );
            Tls::StartTls
        }
    };
    let default_port = match tls {
        Tls::Tls => 465,
        Tls::StartTls => 587,
        Tls::None => 25,
    };
    let port = match s.port.get() {
        None => default_port,
        Some(p) => p.parse::<u16>().unwrap_or_else(|_| {
            cx.problem("notify.email.smtp.port", format!("{p:?} is not a port"));
            default_port
        }),
    };
    // A file wins over a variable when both are given.
    let password_source = match (s.password_file.get(), s.password_env.0) {
        (Some(f), _) => Some(PasswordSource::File(cx.path(f))),
        (None, Some(var)) => Some(PasswordSource::Env(var)),
        (None, None) => None,
    };
    let username = s.username.0;
    if username.is_some() != password_source.is_some() {
        cx.problem(
            "notify.email.smtp",
            "username and a password (password_file or password_env) go together",
        );
    }
    Some(Smtp {
        host: host?,
        port,
        tls,
        username,
        password_source,
        password: None,
    })
}

fn route(at: &str, v: &Value, cx: &mut Context) -> Option<Route> {
    if v.is_null() {
        return None;
    }
    let r: RouteSection = cx.section(at, v)?;
    let mut route = Route::default();
    if let Some(sel) = &r.selector {
        let at = format!("{at}.match");
        if sel.is_null() {
            return None;
        }
        let m: MatchSection = cx.section(&at, sel)?;
        if let Some(k) = m.kind.get() {
            match k.parse::<Kind>() {
                Ok(kind) => route.kind = Some(kind),
                Err(e) => cx.problem(&format!("{at}.kind"), e),
            }
        }
        if let Some(s) = m.source.get() {
            match s.parse::<Source>() {
                Ok(source) => route.source = Some(source),
                Err(e) => cx.problem(&format!("{at}.source"), e),
            }
        }
        route.namespace = m.namespace.0;
        if let Some(p) = m.path.get() {
            route.path = cx.glob(&format!("{at}.path"), p);
        }
        match &m.labels {
            Some(Value::Object(labels)) => {
                for (k, v) in labels {
                    if let Some(v) = text(cx, &format!("{at}.labels.{k}"), v) {
                        route.labels.insert(k.clone(), v);
                    }
                }
            }
            Some(_) => cx.problem(&format!("{at}.labels"), "expected a mapping"),
            None => {}
        }
    }
    route.to = match &r.to {
        Some(v) => mailboxes(cx, &format!("{at}.to"), v),
        None => Vec::new(),
    };
    if route.to.is_empty() {
        cx.problem(&format!("{at}.to"), "required: at least one recipient");
        return None;
    }
    Some(route)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// The `notify:` section of a lapse.yaml text, read as `lapse serve` reads it.
    fn parse(text: &str, base: &Path) -> Result<Option<NotifyConfig>, Vec<String>> {
        let docs: Vec<Value> = crate::yaml::documents(text).unwrap();
        let mut cx = Context::new(base);
        let n = read(&docs[0]["notify"], &mut cx);
        if cx.problems.is_empty() {
            Ok(n)
        } else {
            Err(cx.problems.0)
        }
    }

    fn assert_problems(err: &[String], expected: &[&str]) {
        for want in expected {
            assert!(
                err.iter().any(|p| p.starts_with(want)),
                "missing {want:?} in {err:#?}"
            );
        }
    }

    const MINIMAL_EMAIL: &str = "  email:\n    smtp: {host: smtp.example.com}\n    \
                                 from: lapse@example.com\n    to: ops@example.com\n";

    #[test]
    fn the_minimal_notify_section() {
        let n = parse(
            "notify:\n  email:\n    smtp: {host: smtp.example.com, port: 587, tls: starttls}\n    \
             from: lapse@example.com\n    to: [ops@example.com]\n  thresholds: [7d, 30d, 14d, 3d, 1d]\n",
            Path::new("/etc/lapse"),
        )
        .unwrap()
        .unwrap();
        assert_eq!(n.smtp.host, "smtp.example.com");
        assert_eq!(n.smtp.port, 587);
        assert_eq!(n.smtp.tls, Tls::StartTls);
        assert_eq!(n.from.to_string(), "lapse@example.com");
        assert_eq!(n.to.len(), 1);
        assert_eq!(n.thresholds, [30, 14, 7, 3, 1].map(|d| d * 86_400));
        assert_eq!(
            n.state_file,
            PathBuf::from("/var/lib/lapse/notify-state.json")
        );
        assert_eq!(n.check_interval, std::time::Duration::from_secs(60));
    }

    #[test]
    fn defaults_for_everything_but_the_addresses() {
        let n = parse(&format!("notify:\n{MINIMAL_EMAIL}"), Path::new("/"))
            .unwrap()
            .unwrap();
        assert_eq!((n.smtp.tls, n.smtp.port), (Tls::StartTls, 587));
        assert_eq!(n.thresholds, [30, 14, 7, 3, 1].map(|d| d * 86_400));
        assert_eq!(n.digest, None);
        assert!(n.routes.is_empty());
        assert_eq!(n.check_interval, Duration::from_secs(60));
        assert_eq!(n.retry_interval, Duration::from_secs(10));
        assert_eq!(n.smtp.password_source, None);
        assert!(!n.short_lived);
        assert_eq!(n.renewed, Renewed::Warned);
        for (tls, port) in [("tls", 465), ("none", 25)] {
            let text = format!("notify:\n{MINIMAL_EMAIL}").replace(
                "{host: smtp.example.com}",
                &format!("{{host: smtp.example.com, tls: {tls}}}"),
            );
            let n = parse(&text, Path::new("/")).unwrap().unwrap();
            assert_eq!(n.smtp.port, port, "{tls}");
        }
    }

    #[test]
    fn routes_digest_and_credentials_from_a_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("smtp.pass"), "s3cret\n").unwrap();
        let mut n = parse(
            "notify:\n  email:\n    smtp: {host: 127.0.0.1, port: 2525, tls: none, username: lapse, password_file: smtp.pass}\n    \
             from: lapse@example.com\n    to: ops@example.com\n  \
             routes:\n  - match: {namespace: web, kind: x509, labels: {team: shop}}\n    to: [web@example.com]\n  \
             digest: '08:30'\n  state_file: state/notify.json\n  check_interval: 1s\n  retry_interval: 2s\n",
            dir.path(),
        )
        .unwrap()
        .unwrap();
        // Located while validating, read only when the notifier starts.
        assert_eq!(
            n.smtp.password_source,
            Some(PasswordSource::File(dir.path().join("smtp.pass")))
        );
        assert_eq!(n.smtp.password, None);
        n.resolve_password().unwrap();
        assert_eq!(n.smtp.password.as_deref(), Some("s3cret"));
        assert_eq!(n.smtp.username.as_deref(), Some("lapse"));
        assert_eq!(n.routes.len(), 1);
        assert_eq!(n.routes[0].namespace.as_deref(), Some("web"));
        assert_eq!(n.routes[0].labels["team"], "shop");
        assert_eq!(n.digest, Some(8 * 3_600 + 30 * 60));
        assert_eq!(n.state_file, dir.path().join("state/notify.json"));
        assert_eq!(n.retry_interval, std::time::Duration::from_secs(2));
    }

    #[test]
    fn notify_problems_name_their_fields() {
        let err = parse(
            "notify:\n  email:\n    smtp: {tls: ssl, username: u}\n    from: not-an-address\n  \
             thresholds: [soon]\n  digest: '25:00'\n  routes:\n  - match: {kind: pgp}\n",
            Path::new("/"),
        )
        .unwrap_err();
        assert_problems(
            &err,
            &[
                "notify.email.smtp.host: required",
                "notify.email.smtp.tls: \"ssl\": use none, starttls or tls",
                "notify.email.smtp: username and a password",
                "notify.email.from: \"not-an-address\" is not an email address",
                "notify.email.to: required",
                "notify.thresholds[0]: invalid duration",
                "notify.digest: \"25:00\": use HH:MM (UTC)",
                "notify.routes[0].match.kind: \"pgp\"",
                "notify.routes[0].to: required",
            ],
        );
    }

    #[test]
    fn unknown_and_ill_shaped_fields_at_every_level() {
        let err = parse(
            "notify:\n  email:\n    smtp: {host: h, port: '99999', user: u, password_env: [x]}\n    \
             from: a@example.com\n    to: [b@example.com, 3]\n    cc: x\n  \
             thresholds: 30d\n  check_interval: 0s\n  bogus: 1\n  \
             routes:\n  - {match: {tag: x, path: '[', labels: [a]}, to: c@example.com}\n  - 7\n",
            Path::new("/"),
        )
        .unwrap_err();
        let expected = [
            "notify.bogus: unknown field (expected one of: email, thresholds, routes, digest, \
             state_file, check_interval, retry_interval, short_lived, renewed)",
            "notify.email.cc: unknown field (expected one of: smtp, from, to)",
            "notify.email.smtp.user: unknown field (expected one of: host, port, tls, username, \
             password_file, password_env)",
            "notify.email.smtp.password_env: expected a string",
            "notify.email.smtp.port: \"99999\" is not a port",
            "notify.email.to[1]: \"3\" is not an email address",
            "notify.thresholds: expected a list of durations, e.g. [30d, 14d, 7d, 3d, 1d]",
            "notify.thresholds: needs at least one duration longer than zero",
            "notify.routes[0].match.tag: unknown field (expected one of: kind, source, \
             namespace, path, labels)",
            "notify.routes[0].match.path: invalid glob",
            "notify.routes[0].match.labels: expected a mapping",
            "notify.routes[1]: expected a mapping",
            "notify: check_interval and retry_interval must be longer than zero",
        ];
        assert_problems(&err, &expected);
        assert_eq!(err.len(), expected.len(), "{err:#?}");
    }

    #[test]
    fn short_lived_and_renewed_take_their_words_and_nothing_else() {
        let base = format!("notify:\n{MINIMAL_EMAIL}");
        let n = parse(
            &format!("{base}  short_lived: mail\n  renewed: always\n"),
            Path::new("/"),
        )
        .unwrap()
        .unwrap();
        assert!(n.short_lived);
        assert_eq!(n.renewed, Renewed::Always);
        let n = parse(
            &format!("{base}  short_lived: skip\n  renewed: never\n"),
            Path::new("/"),
        )
        .unwrap()
        .unwrap();
        assert!(!n.short_lived);
        assert_eq!(n.renewed, Renewed::Never);
        let err = parse(
            &format!("{base}  short_lived: yes\n  renewed: sometimes\n"),
            Path::new("/"),
        )
        .unwrap_err();
        assert_eq!(
            err,
            [
                "notify.short_lived: \"yes\": use skip or mail",
                "notify.renewed: \"sometimes\": use warned, always or never"
            ]
        );
    }

    #[test]
    fn without_email_nothing_else_is_read() {
        let err = parse("notify:\n  thresholds: [soon]\n", Path::new("/")).unwrap_err();
        assert_eq!(err, ["notify.email: required: smtp, from and to"]);
        let err = parse("notify: {}\n", Path::new("/")).unwrap_err();
        assert_eq!(err, ["notify.email: required: smtp, from and to"]);
        let err = parse("notify:\n  email: []\n", Path::new("/")).unwrap_err();
        assert_eq!(err, ["notify.email: expected a mapping"]);
    }

    #[test]
    fn empty_parts_are_left_out_as_before() {
        assert!(parse("notify:\n", Path::new("/")).unwrap().is_none());
        assert!(
            parse("notify: {email: }\n", Path::new("/"))
                .unwrap()
                .is_none()
        );
        let no_from =
            format!("notify:\n{MINIMAL_EMAIL}").replace("from: lapse@example.com", "from:");
        assert!(parse(&no_from, Path::new("/")).unwrap().is_none());
        let empty_route = format!("notify:\n{MINIMAL_EMAIL}  routes:\n  - \n  - {{match: }}\n");
        assert!(
            parse(&empty_route, Path::new("/"))
                .unwrap()
                .unwrap()
                .routes
                .is_empty()
        );
    }

    #[test]
    fn the_password_is_read_at_start_up_and_never_shown() {
        let missing = "notify:\n  email:\n    smtp: {host: h, username: u, password_file: /nonexistent/smtp.pass}\n    \
                       from: a@example.com\n    to: b@example.com\n";
        // Validation reads no file: a password file that is missing is found at start-up.
        let mut n = parse(missing, Path::new("/")).unwrap().unwrap();
        let err = n.resolve_password().unwrap_err();
        assert!(
            err.starts_with(
                "notify.email.smtp.password_file: cannot read /nonexistent/smtp.pass: "
            ),
            "{err}"
        );
        let unset = missing.replace(
            "password_file: /nonexistent/smtp.pass",
            "password_env: LAPSE_TEST_UNSET_SMTP_PASSWORD",
        );
        let mut n = parse(&unset, Path::new("/")).unwrap().unwrap();
        assert_eq!(
            n.resolve_password().unwrap_err(),
            "notify.email.smtp.password_env: $LAPSE_TEST_UNSET_SMTP_PASSWORD is not set"
        );

        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("p"), "pw-canary-3Kd8\r\n").unwrap();
        let mut n = parse(&missing.replace("/nonexistent/smtp.pass", "p"), dir.path())
            .unwrap()
            .unwrap();
        n.resolve_password().unwrap();
        assert_eq!(n.smtp.password.as_deref(), Some("pw-canary-3Kd8"));
        let shown = format!("{n:?} {n:#?}");
        assert!(!shown.contains("pw-canary"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
    }
}
