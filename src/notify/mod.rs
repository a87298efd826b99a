//! Email before credentials lapse: one message per credential per
//! threshold crossed, "expired" and "renewed" messages, an optional daily
//! digest; no second message for the same crossing, even across restarts;
//! nothing lost while the mail server is down.
//!
//! The notifier reads inventory snapshots on its own schedule and hands
//! messages to a sender task, so mail never blocks scanning or scrapes.
//! What was sent is recorded only once the server accepted it, in a small
//! state file written atomically; what a recipient refused for good is
//! recorded as owed, and offered again each time the notifier starts.
//!
//! Rooms: `config` (the `notify:` section), `plan` (what to tell whom;
//! pure), `clock` (which time to plan with when the wall clock jumps;
//! pure), `email` (the text of a message), `smtp` (delivery), `state`
//! (what was sent). This loop never waits on the mail server, and never
//! puts secret text in a message, a log line or the state.

pub mod clock;
pub mod config;
pub mod email;
pub mod plan;
mod smtp;
pub mod state;

pub use config::{NotifyConfig, Route, Smtp, Tls};
pub use state::{load_state, save_state};

use crate::credential::Credential;
use crate::inventory::Inventory;
use crate::telemetry::SelfMetrics;
use crate::timefmt::now;
use lettre::message::Mailbox;
use plan::Event;
use smtp::{Outgoing, REFUSALS, address, send_loop};
use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, watch};

pub use smtp::CHANNEL;

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
        plan::rescale(&mut loaded, &config.thresholds);
        metrics.start_refusals(CHANNEL, &REFUSALS.map(|(_, reason)| reason));
        metrics.set_notifications_owed(loaded.owed());
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
        // Owed warnings are offered again once per start, at the first check.
        let mut retry_owed = true;
        let mut clock = clock::ClockGuard::default();
        let mut held = false;
        let steady = std::time::Instant::now();
        loop {
            tokio::select! {
                _ = shutdown.changed() => break,
                _ = tick.tick() => {}
            }
            let snapshot = inventory.snapshot();
            if !snapshot.ready {
                continue;
            }
            let reading = clock.observe(now(), steady.elapsed());
            match (reading.held, held) {
                (Some(ahead), false) => tracing::warn!(ahead_seconds = ahead, hold = ?clock::HOLD,
                    "the system clock jumped ahead; notifications keep to the steady clock until the jump has lasted the hold"),
                (None, true) => tracing::info!("the system clock is trusted again"),
                _ => {}
            }
            held = reading.held.is_some();
            let now = reading.now;
            let creds: Vec<&Credential> = snapshot.assembled.credentials().collect();
            let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
            let mut in_flight = busy.lock().unwrap_or_else(|p| p.into_inner());
            let (events, quiet) = plan::plan(
                creds.iter().copied(),
                now,
                &config.rules(),
                &s,
                &in_flight,
                std::mem::take(&mut retry_owed),
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
                let to: Vec<Mailbox> = config
                    .recipients(&e.credential)
                    .iter()
                    .filter(|m| !e.skip.contains(&address(m)))
                    .cloned()
                    .collect();
                if to.is_empty() {
                    // Owed only to addresses no longer configured: nobody left to tell.
                    s.credentials.insert(e.key.clone(), e.record.clone());
                    continue;
                }
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
            metrics.set_notifications_owed(s.owed());
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
