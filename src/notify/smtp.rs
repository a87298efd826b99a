//! Handing messages to the mail server: the SMTP transport, the MIME
//! message, and the send loop that delivers in order and retries.
//!
//! A message counts as sent only once the server accepted it; only then is
//! what it carried recorded in the state. The SMTP password reaches the
//! transport's credentials and nothing else: never a log line, never an
//! error text.

use super::config::{NotifyConfig, Smtp, Tls};
use super::plan::{Event, State};
use super::state::save_state;
use crate::telemetry::SelfMetrics;
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// The channel label of lapse_notifications_total.
pub const CHANNEL: &str = "email";

const MAX_RETRY: Duration = Duration::from_secs(300);
/// One delivery attempt, from connecting to the server's final answer.
const SEND_TIMEOUT: Duration = Duration::from_secs(60);

/// One message waiting to be delivered.
pub(super) struct Outgoing {
    pub(super) to: Vec<Mailbox>,
    pub(super) subject: String,
    pub(super) text: String,
    pub(super) html: String,
    /// Credential events it carries: recorded once delivered.
    pub(super) events: Vec<Event>,
    pub(super) digest_day: Option<String>,
}

/// A refusal no retry can change: the mailbox does not exist or is not
/// allowed (550, 551, 553). Other refusals — a rejected login, a full
/// mailbox, a policy block — may clear, and are retried.
fn refused_for_good(e: &lettre::transport::smtp::Error) -> bool {
    e.status()
        .is_some_and(|code| matches!(u16::from(code), 550 | 551 | 553))
}

fn transport(smtp: &Smtp) -> Result<AsyncSmtpTransport<Tokio1Executor>, String> {
    // A login without its password would only be refused by the server,
    // message after message: say once what is wrong instead.
    if smtp.username.is_some() && smtp.password.is_none() {
        return Err("the SMTP password was not read at start-up".into());
    }
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
pub(super) async fn send_loop(
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
