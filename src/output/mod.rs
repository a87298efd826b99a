//! Readers of scan results: the `check` report (and its Nagios plugin
//! form), metrics, the web page.

pub mod check_report;
pub mod html;
pub mod metrics;
pub mod nagios;
pub mod page;
