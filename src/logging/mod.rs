//! Logs go to stderr, warnings only unless asked for more. Log lines name
//! paths and entries; they never carry credential bytes.
//!
//! Every line is plain text ([`plain`]): control characters in a message
//! or a field are shown escaped, whoever wrote them. Lines from libraries
//! (any target outside `lapse`) keep their level and target, but their
//! message and fields are also [`redact`]ed — the Kubernetes client logs
//! an API server's Status message verbatim. Warnings and errors are rate
//! limited per call site ([`limit`]). Colour only on a terminal.

pub mod limit;
pub mod plain;
pub mod redact;

use limit::{Limiter, Limits, Line};
use std::fmt::Write as _;
use std::io::{IsTerminal, Write as _};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber, callsite};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;

type Shared = Arc<Mutex<Limiter<callsite::Identifier>>>;

/// The limiter of the installed logger, for [`flush`] and the ticker.
static LIMITER: OnceLock<Shared> = OnceLock::new();

pub fn init(verbosity: u8, limits: Limits) {
    let level = match verbosity {
        0 => Level::WARN,
        1 => Level::INFO,
        2 => Level::DEBUG,
        _ => Level::TRACE,
    };
    let limiter: Shared = Arc::new(Mutex::new(Limiter::new(limits)));
    let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let layer = PlainLayer {
        limiter: limiter.clone(),
        color,
    };
    let installed = tracing_subscriber::registry()
        .with(layer.with_filter(LevelFilter::from_level(level)))
        .try_init();
    if installed.is_ok() && LIMITER.set(limiter.clone()).is_ok() && limits.max_repeats > 0 {
        // Count lines are owed when a window ends, whether or not the
        // same warning comes again.
        let tick = limits.window.min(std::time::Duration::from_secs(1));
        let _ = std::thread::Builder::new()
            .name("lapse-log".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(tick);
                    let lines = lock(&limiter).ended(Instant::now());
                    write_lines(&lines);
                }
            });
    }
}

/// Writes every count line still owed; for a command about to exit.
pub fn flush() {
    if let Some(limiter) = LIMITER.get() {
        let lines = lock(limiter).drain(Instant::now());
        write_lines(&lines);
    }
}

fn lock(limiter: &Shared) -> std::sync::MutexGuard<'_, Limiter<callsite::Identifier>> {
    limiter.lock().unwrap_or_else(|p| p.into_inner())
}

/// One write per line, so lines from two threads never interleave.
fn write_lines(lines: &[Line]) {
    let mut stderr = std::io::stderr().lock();
    for line in lines {
        let mut text = String::with_capacity(line.head.len() + line.body.len() + 40);
        let _ = SystemTime.format_time(&mut Writer::new(&mut text));
        text.push_str(&line.head);
        text.push_str(&line.body);
        text.push('\n');
        let _ = stderr.write_all(text.as_bytes());
    }
}

struct PlainLayer {
    limiter: Shared,
    color: bool,
}

impl<S: Subscriber> Layer<S> for PlainLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let meta = event.metadata();
        let own = meta.target() == "lapse" || meta.target().starts_with("lapse::");
        let mut fields = Fields {
            own,
            message: String::new(),
            rest: String::new(),
        };
        event.record(&mut fields);
        let level = *meta.level();
        let (on, off) = match (self.color, level) {
            (false, _) => ("", ""),
            (true, Level::ERROR) => ("\x1b[31m", "\x1b[0m"),
            (true, Level::WARN) => ("\x1b[33m", "\x1b[0m"),
            (true, Level::INFO) => ("\x1b[32m", "\x1b[0m"),
            (true, _) => ("\x1b[34m", "\x1b[0m"),
        };
        let mut head = format!(" {on}{:>5}{off} ", level.as_str());
        if !own {
            let _ = write!(head, "{}: ", plain::plain(meta.target()));
        }
        let mut body = fields.message;
        if !body.is_empty() && !fields.rest.is_empty() {
            body.push(' ');
        }
        body.push_str(&fields.rest);
        let line = Line { head, body };
        let lines = if level <= Level::WARN {
            lock(&self.limiter).admit(meta.callsite(), Instant::now(), line)
        } else {
            vec![line]
        };
        write_lines(&lines);
    }
}

/// The message and `key=value` fields of one event, as plain text; for a
/// library's event, redacted as well.
struct Fields {
    own: bool,
    message: String,
    rest: String,
}

impl Fields {
    fn clean(&self, text: &str) -> String {
        if self.own {
            plain::plain(text).into_owned()
        } else {
            plain::plain(&redact::redact(text)).into_owned()
        }
    }

    fn push(&mut self, field: &Field, text: String) {
        let text = self.clean(&text);
        if field.name() == "message" {
            self.message = text;
            return;
        }
        if !self.rest.is_empty() {
            self.rest.push(' ');
        }
        let name = field.name().trim_start_matches("r#");
        let _ = write!(self.rest, "{name}={text}");
    }
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        // As tracing's own formatter: a message as is, other strings quoted.
        let text = if field.name() == "message" {
            value.to_string()
        } else {
            format!("{value:?}")
        };
        self.push(field, text);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.push(field, format!("{value:?}"));
    }
}
