//! The subcommands: `check` (one scan, a report, an exit status) and
//! `serve` (sources, inventory and HTTP, until SIGTERM). Each turns its
//! [`crate::settings::Settings`] into running parts; nothing below imports
//! this module.

pub mod check;
pub mod docs;
pub mod serve;

/// Exit status for problems with the invocation itself (Nagios UNKNOWN).
pub const EXIT_UNKNOWN: i32 = 3;
