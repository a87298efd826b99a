//! Email before credentials lapse: one message per credential per
//! threshold crossed, "expired" and "renewed" messages, an optional daily
//! digest; no second message for the same crossing, even across restarts;
//! nothing lost while the mail server is down.
//!
//! The notifier reads inventory snapshots on its own schedule and hands
//! messages to a sender task, so mail never blocks scanning or scrapes.
//! What was sent is recorded only once the server accepted it, in a small
//! state file written atomically.

pub mod email;
pub mod plan;

use crate::credential::{Credential, Kind, Source};
use crate::inventory::Inventory;
use crate::telemetry::SelfMetrics;
use crate::timefmt::now;
use globset::GlobMatcher;
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use plan::{Event, State};
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, watch};

pub const CHANNEL: &str = "email";
const MAX_RETRY: Duration = Duration::from_secs(300);
/// One delivery attempt, from connecting to the server's final answer.
const SEND_TIMEOUT: Duration = Duration::from_secs(60);

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
    fn matches(&self, c: &Credential) -> bool {
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
    fn recipients(&self, c: &Credential) -> &[Mailbox] {
        self.routes
            .iter()
            .find(|r| r.matches(c))
            .map(|r| r.to.as_slice())
            .unwrap_or(&self.to)
    }
}

/// One message waiting to be delivered.
struct Outgoing {
    to: Vec<Mailbox>,
    subject: String,
    text: String,
    html: String,
    /// Credential events it carries: recorded once delivered.
    events: Vec<Event>,
    digest_day: Option<String>,
}

pub fn load_state(path: &Path) -> State {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            tracing::warn!(path = %path.display(), error = %e, "notify state unreadable; starting afresh");
            State::default()
        }),
        Err(_) => State::default(),
    }
}

/// Writes the state to a temporary file beside it and renames it over.
pub fn save_state(path: &Path, state: &State) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    let bytes = serde_json::to_vec_pretty(state).map_err(std::io::Error::other)?;
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

pub struct Notifier {
    pub config: NotifyConfig,
}

impl Notifier {
    pub async fn run(
        self,
        inventory: Arc<Inventory>,
        metrics: Arc<SelfMetrics>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let config = Arc::new(self.config);
        let mut loaded = load_state(&config.state_file);
        loaded.version = 1;
        let state = Arc::new(Mutex::new(loaded));
        let busy: Arc<Mutex<HashSet<String>>> = Arc::default();
        let (queue, outgoing) = mpsc::unbounded_channel::<Outgoing>();
        let sender = tokio::spawn(send_loop(
            config.clone(),
            outgoing,
            state.clone(),
            busy.clone(),
            metrics.clone(),
            shutdown.clone(),
        ));
        let mut tick = tokio::time::interval(config.check_interval);
        // The day whose digest is queued: recorded in the state only once delivered.
        let mut digest_queued: Option<String> = None;
        loop {
            tokio::select! {
                _ = shutdown.changed() => break,
                _ = tick.tick() => {}
            }
            let snapshot = inventory.snapshot();
            if !snapshot.ready {
                continue;
            }
            let now = now();
            let creds: Vec<&Credential> = snapshot.assembled.credentials().collect();
            let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
            let mut in_flight = busy.lock().unwrap_or_else(|p| p.into_inner());
            let (events, quiet) = plan::plan(
                creds.iter().copied(),
                now,
                &config.thresholds,
                &s,
                &in_flight,
            );
            // Locations gone from the inventory are forgotten; quiet ones remembered.
            let present: HashSet<String> = creds.iter().map(|c| plan::location(c)).collect();
            let before = s.clone();
            s.credentials.retain(|k, _| present.contains(k));
            s.credentials.extend(quiet);
            // Group by recipients: one message each, every event once.
            let mut by_recipients: BTreeMap<Vec<String>, (Vec<Mailbox>, Vec<Event>)> =
                BTreeMap::new();
            for e in events {
                let to = config.recipients(&e.credential).to_vec();
                let key: Vec<String> = to.iter().map(|m| m.to_string()).collect();
                in_flight.insert(e.key.clone());
                by_recipients
                    .entry(key)
                    .or_insert_with(|| (to, Vec::new()))
                    .1
                    .push(e);
            }
            for (_, (to, events)) in by_recipients {
                let (subject, text, html) = email::render(&events, now);
                if queue
                    .send(Outgoing {
                        to,
                        subject,
                        text,
                        html,
                        events,
                        digest_day: None,
                    })
                    .is_ok()
                {
                    metrics.notifications_queued(1);
                }
            }
            if let Some(at) = config.digest {
                let day = crate::timefmt::rfc3339(now)[..10].to_string();
                let due = now.rem_euclid(86_400) >= at
                    && s.last_digest.as_deref() != Some(day.as_str())
                    && digest_queued.as_deref() != Some(day.as_str());
                let widest = config.thresholds.first().copied().unwrap_or(30 * 86_400);
                if due {
                    match email::render_digest(&creds, now, widest) {
                        Some((subject, text, html)) => {
                            digest_queued = Some(day.clone());
                            let digest = Outgoing {
                                to: config.to.clone(),
                                subject,
                                text,
                                html,
                                events: Vec::new(),
                                digest_day: Some(day),
                            };
                            if queue.send(digest).is_ok() {
                                metrics.notifications_queued(1);
                            }
                        }
                        None => s.last_digest = Some(day),
                    }
                }
            }
            if *s != before
                && let Err(e) = save_state(&config.state_file, &s)
            {
                tracing::warn!(path = %config.state_file.display(), error = %e, "cannot save the notify state");
            }
        }
        drop(queue);
        let _ = sender.await;
    }
}

/// A refusal no retry can change: the mailbox does not exist or is not
/// allowed (550, 551, 553). Other refusals — a rejected login, a full
/// mailbox, a policy block — may clear, and are retried.
fn refused_for_good(e: &lettre::transport::smtp::Error) -> bool {
    e.status()
        .is_some_and(|code| matches!(u16::from(code), 550 | 551 | 553))
}

fn transport(smtp: &Smtp) -> Result<AsyncSmtpTransport<Tokio1Executor>, String> {
    let builder = match smtp.tls {
        Tls::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&smtp.host),
        Tls::StartTls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&smtp.host)
            .map_err(|e| e.to_string())?,
        Tls::Tls => {
            AsyncSmtpTransport::<Tokio1Executor>::relay(&smtp.host).map_err(|e| e.to_string())?
        }
    };
    let mut builder = builder
        .port(smtp.port)
        .timeout(Some(Duration::from_secs(30)));
    if let (Some(user), Some(password)) = (&smtp.username, &smtp.password) {
        builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
    }
    Ok(builder.build())
}

fn message(config: &NotifyConfig, m: &Outgoing) -> Result<Message, String> {
    let mut builder = Message::builder()
        .from(config.from.clone())
        .subject(m.subject.clone());
    for to in &m.to {
        builder = builder.to(to.clone());
    }
    builder
        .multipart(MultiPart::alternative_plain_html(
            m.text.clone(),
            m.html.clone(),
        ))
        .map_err(|e| e.to_string())
}

/// Delivers messages in order; a failed one is retried with doubling
/// delays (from `retry_interval` up to 5 minutes) until the server takes it.
async fn send_loop(
    config: Arc<NotifyConfig>,
    mut outgoing: mpsc::UnboundedReceiver<Outgoing>,
    state: Arc<Mutex<State>>,
    busy: Arc<Mutex<HashSet<String>>>,
    metrics: Arc<SelfMetrics>,
    mut shutdown: watch::Receiver<bool>,
) {
    let transport = match transport(&config.smtp) {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(error = %e, "cannot set up the SMTP transport; no mail will be sent");
            return;
        }
    };
    let mut pending: std::collections::VecDeque<Outgoing> = Default::default();
    loop {
        if pending.is_empty() {
            tokio::select! {
                _ = shutdown.changed() => return,
                got = outgoing.recv() => match got {
                    Some(m) => pending.push_back(m),
                    None => return,
                },
            }
        }
        while let Ok(m) = outgoing.try_recv() {
            pending.push_back(m);
        }
        let Some(m) = pending.front() else { continue };
        let mut delay = config.retry_interval;
        loop {
            let result = match message(&config, m) {
                // A server that accepts and then says nothing must not hold
                // delivery (or shutdown) forever.
                Ok(msg) => tokio::select! {
                    _ = shutdown.changed() => return,
                    sent = tokio::time::timeout(SEND_TIMEOUT, transport.send(msg)) => match sent {
                        Ok(Ok(_)) => Ok(()),
                        Ok(Err(e)) if refused_for_good(&e) => Err((true, e.to_string())),
                        Ok(Err(e)) => Err((false, e.to_string())),
                        Err(_) => Err((false, format!("no answer from the mail server in {SEND_TIMEOUT:?}"))),
                    },
                },
                Err(e) => Err((true, e)),
            };
            match result {
                Ok(()) => {
                    metrics.count_notification(CHANNEL, "sent");
                    tracing::info!(subject = %m.subject, recipients = m.to.len(), "mail sent");
                    break;
                }
                Err((true, e)) => {
                    // Refused for good (a recipient that does not exist): retrying
                    // cannot help, and must not hold up mail for everyone else.
                    metrics.count_notification(CHANNEL, "failed");
                    let to: Vec<String> = m.to.iter().map(|t| t.to_string()).collect();
                    tracing::error!(error = %e, to = ?to, subject = %m.subject, "mail refused permanently; dropped");
                    break;
                }
                Err((false, e)) => {
                    metrics.count_notification(CHANNEL, "failed");
                    tracing::warn!(error = %e, retry_in = ?delay, "mail not sent; will retry");
                    tokio::select! {
                        _ = shutdown.changed() => return,
                        _ = tokio::time::sleep(delay) => {}
                    }
                    delay = (delay * 2).min(MAX_RETRY);
                }
            }
        }
        let Some(sent) = pending.pop_front() else {
            continue;
        };
        metrics.notifications_queued(-1);
        let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
        let mut in_flight = busy.lock().unwrap_or_else(|p| p.into_inner());
        for e in &sent.events {
            s.credentials.insert(e.key.clone(), e.record.clone());
            in_flight.remove(&e.key);
        }
        if let Some(day) = sent.digest_day {
            s.last_digest = Some(day);
        }
        if let Err(e) = save_state(&config.state_file, &s) {
            tracing::warn!(path = %config.state_file.display(), error = %e, "cannot save the notify state");
        }
    }
}
