//! Readers of scan results: the `check` report, metrics, the web page.

pub mod check_report;
pub mod html;
pub mod metrics;
pub mod page;
