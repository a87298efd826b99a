//! Where bytes come from. Each source lives in its own file.

pub mod files;
pub mod kubernetes;
/// Keeps each source running: a dead task is reported and restarted.
pub mod supervisor;
pub mod watch;
