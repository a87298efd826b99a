//! Logs go to stderr, as logfmt (the default) or JSON lines, at the level
//! asked for. Log lines name paths and entries; they never carry
//! credential bytes.
//!
//! Each event becomes a [`record::Line`] (level, target, message, typed
//! fields), then [`logfmt`] or [`json`] text: either escapes every control
//! and reordering character, so no value can forge a line or reach a
//! terminal. Lines from libraries (any target outside `lapse`) keep their
//! level and target, but their message and fields are also [`redact`]ed —
//! the Kubernetes client logs an API server's Status message verbatim.
//! Warnings and errors are rate limited per call site ([`limit`]), in
//! both formats. Colour only in logfmt on a terminal without `NO_COLOR`.

pub mod json;
pub mod limit;
pub mod logfmt;
pub mod plain;
pub mod record;
pub mod redact;

use limit::{Limiter, Limits};
use record::{Line, Value};
use std::io::{IsTerminal, Write as _};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber, callsite};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;

/// `--log.format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Logfmt,
    Json,
}

/// Where lines go and how they look; shared by the layer and the ticker.
struct Sink {
    limiter: Mutex<Limiter<callsite::Identifier>>,
    format: Format,
    color: bool,
}

/// The sink of the installed logger, for [`flush`].
static SINK: OnceLock<Arc<Sink>> = OnceLock::new();

pub fn init(level: Level, format: Format, limits: Limits) {
    let color = format == Format::Logfmt
        && std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none();
    let sink = Arc::new(Sink {
        limiter: Mutex::new(Limiter::new(limits)),
        format,
        color,
    });
    let layer = EventLayer { sink: sink.clone() };
    let installed = tracing_subscriber::registry()
        .with(layer.with_filter(LevelFilter::from_level(level)))
        .try_init();
    if installed.is_ok() && SINK.set(sink.clone()).is_ok() && limits.max_repeats > 0 {
        // Count lines are owed when a window ends, whether or not the
        // same warning comes again.
        let tick = limits.window.min(std::time::Duration::from_secs(1));
        let _ = std::thread::Builder::new()
            .name("lapse-log".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(tick);
                    let lines = sink.lock().ended(Instant::now());
                    sink.write(&lines);
                }
            });
    }
}

/// Writes every count line still owed; for a command about to exit.
pub fn flush() {
    if let Some(sink) = SINK.get() {
        let lines = sink.lock().drain(Instant::now());
        sink.write(&lines);
    }
}

impl Sink {
    fn lock(&self) -> std::sync::MutexGuard<'_, Limiter<callsite::Identifier>> {
        self.limiter.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// One write per line, so lines from two threads never interleave.
    fn write(&self, lines: &[Line]) {
        if lines.is_empty() {
            return;
        }
        let ts = now_rfc3339_millis();
        let mut stderr = std::io::stderr().lock();
        for line in lines {
            let mut text = match self.format {
                Format::Logfmt => logfmt::write(&ts, line, self.color),
                Format::Json => json::write(&ts, line),
            };
            text.push('\n');
            let _ = stderr.write_all(text.as_bytes());
        }
    }
}

/// `2026-12-02T05:24:36.440Z`: RFC 3339, UTC, milliseconds.
fn now_rfc3339_millis() -> String {
    let t = time::OffsetDateTime::now_utc();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

struct EventLayer {
    sink: Arc<Sink>,
}

impl<S: Subscriber> Layer<S> for EventLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let meta = event.metadata();
        let own = meta.target() == "lapse" || meta.target().starts_with("lapse::");
        let mut fields = Fields {
            own,
            msg: None,
            fields: Vec::new(),
        };
        event.record(&mut fields);
        let level = *meta.level();
        let line = Line {
            level,
            target: (!own).then(|| meta.target().to_string()),
            msg: fields.msg.unwrap_or_default(),
            fields: fields.fields,
        };
        let lines = if level <= Level::WARN {
            self.sink
                .lock()
                .admit(meta.callsite(), Instant::now(), line)
        } else {
            vec![line]
        };
        self.sink.write(&lines);
    }
}

/// The message and typed fields of one event; for a library's event,
/// redacted.
struct Fields {
    own: bool,
    msg: Option<String>,
    fields: Vec<(String, Value)>,
}

impl Fields {
    fn clean(&self, text: String) -> String {
        if self.own {
            text
        } else {
            redact::redact(&text)
        }
    }

    fn push(&mut self, field: &Field, value: Value) {
        // The first `message` is the line's; a field of that name after
        // it (`warn!(%message, "…")`) is kept as a field.
        if field.name() == "message"
            && self.msg.is_none()
            && let Value::Str(text) | Value::Text(text) = &value
        {
            self.msg = Some(text.clone());
            return;
        }
        self.fields.push((record::key(field.name()), value));
    }
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        let text = self.clean(value.to_string());
        self.push(field, Value::Str(text));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let text = self.clean(format!("{value:?}"));
        self.push(field, Value::Text(text));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.push(field, Value::I64(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.push(field, Value::U64(value));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.push(field, Value::F64(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.push(field, Value::Bool(value));
    }
}
