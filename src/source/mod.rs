//! Where bytes come from. Each source lives in its own module.

pub mod files;
pub mod kubernetes;
/// Keeps each source running: a dead task is reported and restarted.
pub mod supervisor;
