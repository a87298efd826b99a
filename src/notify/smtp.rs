//! Handing messages to the mail server: the SMTP transport, the MIME
//! message, and the send loop that delivers in order and retries.
//!
//! Each recipient is its own SMTP transaction (the `To:` header still lists
//! them all), so one mistyped address cannot block the others. A message is
//! done once every recipient took it or refused it for good; only then is
//! what it carried recorded in the state — with the refused addresses, as
//! owed ([`Owed`]), never as sent. Temporary failures are retried, for the
//! recipients that had them only. The SMTP password reaches the transport's
//! credentials and nothing else: never a log line, never an error text.

use super::config::{NotifyConfig, Smtp, Tls};
use super::plan::{Event, EventKind, Owed, State};
use super::state::save_state;
use crate::telemetry::SelfMetrics;
use lettre::address::Envelope;
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

/// The address alone (no display name): what the state records.
pub(super) fn address(m: &Mailbox) -> String {
    m.email.to_string()
}

/// The `reason` label of lapse_notifications_refused_total, by SMTP reply.
pub const REFUSALS: [(u16, &str); 3] = [
    (550, "mailbox_unavailable"),
    (551, "user_not_local"),
    (553, "mailbox_name_not_allowed"),
];

/// A refusal no retry can change: the mailbox does not exist or is not
/// allowed (550, 551, 553), with its code and reason. Other refusals — a
/// rejected login, a full mailbox, a policy block — may clear, and are retried.
fn refused_for_good(e: &lettre::transport::smtp::Error) -> Option<(u16, &'static str)> {
    let code = u16::from(e.status()?);
    REFUSALS.iter().copied().find(|(c, _)| *c == code)
}

/// How one recipient's transaction ended.
enum Outcome {
    Accepted,
    Refused(u16, &'static str, String),
    Later(String),
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

/// Delivers messages in order, each to every recipient in turn; the
/// recipients a temporary failure left are retried with doubling delays
/// (from `retry_interval` up to 5 minutes) until the server takes them.
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
        let mut refused: Vec<String> = Vec::new();
        let mut delivered: Vec<String> = Vec::new();
        match message(&config, m) {
            Ok(msg) => {
                let bytes = msg.formatted();
                let mut left: Vec<Mailbox> = m.to.clone();
                let mut delay = config.retry_interval;
                loop {
                    let mut again = Vec::new();
                    let mut last_error = String::new();
                    for rcpt in left {
                        let outcome = tokio::select! {
                            _ = shutdown.changed() => return,
                            o = deliver(&transport, &config, &rcpt, &bytes) => o,
                        };
                        match outcome {
                            Outcome::Accepted => {
                                metrics.count_notification(CHANNEL, "sent");
                                delivered.push(address(&rcpt));
                            }
                            Outcome::Refused(code, reason, e) => {
                                metrics.count_notification(CHANNEL, "failed");
                                metrics.count_refusal(CHANNEL, reason);
                                tracing::error!(recipient = %address(&rcpt), code, reason, error = ?e, subject = %m.subject,
                                    "recipient refused the mail for good; the warning stays owed");
                                refused.push(address(&rcpt));
                            }
                            Outcome::Later(e) => {
                                metrics.count_notification(CHANNEL, "failed");
                                last_error = e;
                                again.push(rcpt);
                            }
                        }
                    }
                    if again.is_empty() {
                        break;
                    }
                    tracing::warn!(error = %last_error, recipients = again.len(), retry_in = ?delay, "mail not sent; will retry");
                    tokio::select! {
                        _ = shutdown.changed() => return,
                        _ = tokio::time::sleep(delay) => {}
                    }
                    delay = (delay * 2).min(MAX_RETRY);
                    left = again;
                }
                if !delivered.is_empty() {
                    tracing::info!(subject = %m.subject, recipients = delivered.len(), "mail sent");
                }
            }
            Err(e) => {
                // Nothing to retry: the same text would fail the same way.
                metrics.count_notification(CHANNEL, "failed");
                tracing::error!(error = %e, subject = %m.subject, "cannot build the mail; dropped");
            }
        }
        let Some(sent) = pending.pop_front() else {
            continue;
        };
        metrics.notifications_queued(-1);
        let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
        let mut in_flight = busy.lock().unwrap_or_else(|p| p.into_inner());
        for e in &sent.events {
            let mut record = e.record.clone();
            if !refused.is_empty() {
                let mut has: Vec<String> = e.skip.clone();
                has.extend(delivered.iter().cloned());
                record.owed = Some(Owed {
                    delivered: has,
                    refused: refused.clone(),
                    renewed_from: match e.kind {
                        EventKind::Renewed { old_not_after } => Some(old_not_after),
                        _ => None,
                    },
                });
            }
            s.credentials.insert(e.key.clone(), record);
            in_flight.remove(&e.key);
        }
        if let Some(day) = sent.digest_day {
            s.last_digest = Some(day);
        }
        metrics.set_notifications_owed(s.owed());
        if let Err(e) = save_state(&config.state_file, &s) {
            tracing::warn!(path = %config.state_file.display(), error = %e, "cannot save the notify state");
        }
    }
}

/// One SMTP transaction for `rcpt`: from connecting to the server's final
/// answer, bounded by [`SEND_TIMEOUT`] (a server that accepts and then
/// says nothing must not hold delivery forever).
async fn deliver(
    transport: &AsyncSmtpTransport<Tokio1Executor>,
    config: &NotifyConfig,
    rcpt: &Mailbox,
    bytes: &[u8],
) -> Outcome {
    let envelope = match Envelope::new(Some(config.from.email.clone()), vec![rcpt.email.clone()]) {
        Ok(e) => e,
        Err(e) => return Outcome::Later(e.to_string()),
    };
    match tokio::time::timeout(SEND_TIMEOUT, transport.send_raw(&envelope, bytes)).await {
        Ok(Ok(_)) => Outcome::Accepted,
        Ok(Err(e)) => match refused_for_good(&e) {
            Some((code, reason)) => Outcome::Refused(code, reason, e.to_string()),
            None => Outcome::Later(e.to_string()),
        },
        Err(_) => Outcome::Later(format!(
            "no answer from the mail server in {SEND_TIMEOUT:?}"
        )),
    }
}
