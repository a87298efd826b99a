//! HTTP: the server lapse answers scrapes and browsers with, and the
//! exporter-toolkit web configuration that secures it (TLS, client
//! certificates, basic auth, response headers).
//!
//! Not a reader of credentials: the server hands each request's snapshot
//! to the readers in [`crate::output`]. Nothing here may log, keep or echo
//! a password, a key or an Authorization header.

pub mod admission;
pub mod basic_auth;
pub mod conn;
pub mod gzip;
pub mod limits;
pub mod live;
pub mod log_every;
pub mod pages;
pub mod server;
pub mod server_cert;
#[cfg(test)]
mod testing;
pub mod tls;
pub mod web_config;
