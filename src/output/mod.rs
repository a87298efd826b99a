//! Readers of scan results: the `check` report.

pub mod check_report;
