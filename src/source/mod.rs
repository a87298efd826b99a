//! Where bytes come from. Each source lives in its own file.

pub mod files;
pub mod kubernetes;
pub mod watch;
