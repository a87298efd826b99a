//! lapse: finds every certificate and token an operator depends on and
//! reports when each lapses.
//!
//! Data flows one way: sources find bytes → parsers turn bytes into
//! credentials (pure, no I/O) → readers (the `check` report) present them.

/// Command-line definitions.
pub mod cli;
/// The subcommands, `check` and `serve`.
pub mod command;
/// `lapse.yaml`: validated configuration.
pub mod config;
/// The credential record; never holds secret text.
pub mod credential;
/// HTTP: server, web config, TLS, basic auth.
pub mod http;
/// The current set of credentials; sources publish, readers snapshot.
pub mod inventory;
/// stderr logging set-up.
pub mod logging;
/// Email before credentials lapse.
pub mod notify;
/// Readers of scan results.
pub mod output;
/// Work spread over every core, results in order.
pub mod par;
/// Pure parsers from bytes to credentials.
pub mod parse;
/// Path spelling (lexical clean-up).
pub mod paths;
/// CLI flags and lapse.yaml made into one Settings for check and serve.
pub mod settings;
/// Where bytes come from.
pub mod source;
/// lapse's own metrics: errors, scans, notifications.
pub mod telemetry;
/// Time and duration parsing and formatting.
pub mod timefmt;
/// Durations and sizes.
pub mod units;
/// The one YAML entry point.
pub mod yaml;
