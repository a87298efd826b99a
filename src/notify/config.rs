//! The `notify:` section of lapse.yaml: where mail goes (SMTP server,
//! sender, recipients, routes), when (thresholds, digest) and where the
//! notifier keeps its state.
//!
//! Plain data and its validation: nothing here sends mail, touches the
//! state file or logs.

use crate::credential::{Credential, Kind, Source};
use globset::GlobMatcher;
use lettre::message::Mailbox;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tls {
    None,
    StartTls,
    Tls,
}

#[derive(Clone, Debug)]
pub struct Smtp {
    pub host: String,
    pub port: u16,
    pub tls: Tls,
    pub username: Option<String>,
    /// Read from a file or the environment at start-up; never logged.
    pub password: Option<String>,
}

/// Which credentials a route takes, and who gets them.
#[derive(Clone, Debug, Default)]
pub struct Route {
    pub kind: Option<Kind>,
    pub source: Option<Source>,
    pub namespace: Option<String>,
    pub path: Option<GlobMatcher>,
    pub labels: BTreeMap<String, String>,
    pub to: Vec<Mailbox>,
}

impl Route {
    pub(super) fn matches(&self, c: &Credential) -> bool {
        let object = c.object.as_ref();
        self.kind.is_none_or(|k| k == c.kind)
            && self.source.is_none_or(|s| s == c.source)
            && self
                .namespace
                .as_ref()
                .is_none_or(|ns| object.is_some_and(|o| &o.namespace == ns))
            && self.path.as_ref().is_none_or(|g| g.is_match(&c.path))
            && self.labels.iter().all(|(k, v)| {
                object.is_some_and(|o| o.labels.iter().any(|(lk, lv)| lk == k && lv == v))
            })
    }
}

#[derive(Clone, Debug)]
pub struct NotifyConfig {
    pub smtp: Smtp,
    pub from: Mailbox,
    pub to: Vec<Mailbox>,
    /// Widest first.
    pub thresholds: Vec<i64>,
    /// First matching route wins; no match: `to`.
    pub routes: Vec<Route>,
    /// Seconds after midnight UTC for the daily digest.
    pub digest: Option<i64>,
    pub state_file: PathBuf,
    pub check_interval: Duration,
    pub retry_interval: Duration,
}

impl NotifyConfig {
    pub(super) fn recipients(&self, c: &Credential) -> &[Mailbox] {
        self.routes
            .iter()
            .find(|r| r.matches(c))
            .map(|r| r.to.as_slice())
            .unwrap_or(&self.to)
    }
}
