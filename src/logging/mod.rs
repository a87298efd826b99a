//! Logs go to stderr, warnings only unless asked for more. Log lines name
//! paths and entries; they never carry credential bytes.

pub mod plain;

use tracing::Level;

pub fn init(verbosity: u8) {
    let level = match verbosity {
        0 => Level::WARN,
        1 => Level::INFO,
        2 => Level::DEBUG,
        _ => Level::TRACE,
    };
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(level)
        .with_target(false)
        .try_init();
}
