//! Deciding what to tell whom: pure, from the current credentials and what
//! was already sent. No clock, no I/O.
//!
//! A credential is known by where it lives (source, path, entry, index),
//! so a rotation is the same credential with a new fingerprint. Its
//! "level" is how deep into the thresholds it is: 0 outside them, k inside
//! the k-th (thresholds run widest first), one past the last once expired.
//! A message goes out only when the level rises above what was sent, so a
//! credential found already inside several thresholds gets one message
//! for the tightest, and no crossing is mailed twice.

use crate::credential::{Credential, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};

/// What was last mailed about one credential location.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sent {
    pub fingerprint: String,
    pub not_after: Timestamp,
    pub level: usize,
}

/// The persisted memory of the notifier.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub version: u32,
    pub credentials: BTreeMap<String, Sent>,
    /// The UTC day (YYYY-MM-DD) of the last daily digest.
    #[serde(default)]
    pub last_digest: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// Inside the window of this many seconds.
    Threshold(i64),
    Expired,
    /// Replaced by a credential that lapses later than the old one did.
    Renewed {
        old_not_after: Timestamp,
    },
}

/// One thing to tell someone about one credential.
#[derive(Clone, Debug)]
pub struct Event {
    pub key: String,
    pub kind: EventKind,
    pub credential: Credential,
    /// What to remember once the message is delivered.
    pub record: Sent,
}

/// The location that identifies a credential across rotations.
pub fn location(c: &Credential) -> String {
    format!(
        "{}|{}|{}|{}",
        c.source.as_str(),
        c.path,
        c.entry.as_deref().unwrap_or(""),
        c.index.map(|i| i.to_string()).unwrap_or_default()
    )
}

/// `thresholds` widest first; returns 0..=len+1.
pub fn level(expires_in: i64, thresholds: &[i64]) -> usize {
    if expires_in <= 0 {
        thresholds.len() + 1
    } else {
        thresholds.iter().filter(|t| expires_in <= **t).count()
    }
}

/// The events due now, and the state to keep for credentials that need no
/// message (new and healthy ones, or levels that went down). Keys in
/// `busy` (a message already on its way) are left alone; locations gone
/// from `creds` are forgotten.
pub fn plan<'a>(
    creds: impl IntoIterator<Item = &'a Credential>,
    now: Timestamp,
    thresholds: &[i64],
    state: &State,
    busy: &HashSet<String>,
) -> (Vec<Event>, BTreeMap<String, Sent>) {
    let mut events = Vec::new();
    let mut quiet = BTreeMap::new();
    for c in creds {
        let Some(not_after) = c.not_after else {
            continue;
        };
        let key = location(c);
        if busy.contains(&key) {
            quiet.insert(
                key.clone(),
                state.credentials.get(&key).cloned().unwrap_or(Sent {
                    fingerprint: c.fingerprint.to_string(),
                    not_after,
                    level: 0,
                }),
            );
            continue;
        }
        let now_level = level(not_after - now, thresholds);
        let fingerprint = c.fingerprint.to_string();
        let record = Sent {
            fingerprint: fingerprint.clone(),
            not_after,
            level: now_level,
        };
        let event_for = |kind: EventKind| Event {
            key: key.clone(),
            kind,
            credential: c.clone(),
            record: record.clone(),
        };
        let crossing = |level: usize| {
            if level > thresholds.len() {
                EventKind::Expired
            } else {
                EventKind::Threshold(thresholds[level - 1])
            }
        };
        match state.credentials.get(&key) {
            Some(old) if old.fingerprint != fingerprint => {
                if old.level > 0 && not_after > old.not_after {
                    events.push(event_for(EventKind::Renewed {
                        old_not_after: old.not_after,
                    }));
                } else if now_level > 0 {
                    events.push(event_for(crossing(now_level)));
                } else {
                    quiet.insert(key, record);
                }
            }
            Some(old) if now_level > old.level => events.push(event_for(crossing(now_level))),
            Some(old) if now_level < old.level => {
                // Thresholds changed, or the clock went back: remember, say nothing.
                quiet.insert(key, record);
            }
            Some(old) => {
                quiet.insert(key, old.clone());
            }
            None if now_level > 0 => events.push(event_for(crossing(now_level))),
            None => {
                quiet.insert(key, record);
            }
        }
    }
    (events, quiet)
}

/// Orders events most urgent first: expired, then least time left; renewals last.
pub fn urgency(e: &Event, now: Timestamp) -> (u8, i64) {
    match e.kind {
        EventKind::Expired => (0, e.credential.expires_in(now).unwrap_or(0)),
        EventKind::Threshold(_) => (1, e.credential.expires_in(now).unwrap_or(i64::MAX)),
        EventKind::Renewed { .. } => (2, 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credential::{Fingerprint, Kind, Source};

    const DAY: i64 = 86_400;
    const THRESHOLDS: [i64; 5] = [30 * DAY, 14 * DAY, 7 * DAY, 3 * DAY, DAY];

    fn cert(path: &str, bytes: &[u8], not_after: Timestamp) -> Credential {
        let mut c = Credential::new(Kind::X509, Fingerprint::of(bytes)).expiring(Some(not_after));
        c.source = Source::File;
        c.path = path.into();
        c.index = Some(0);
        c
    }

    fn apply(state: &mut State, events: &[Event], quiet: BTreeMap<String, Sent>) {
        state.credentials.extend(quiet);
        for e in events {
            state.credentials.insert(e.key.clone(), e.record.clone());
        }
    }

    #[test]
    fn levels() {
        assert_eq!(level(40 * DAY, &THRESHOLDS), 0);
        assert_eq!(level(30 * DAY, &THRESHOLDS), 1);
        assert_eq!(level(10 * DAY, &THRESHOLDS), 2);
        assert_eq!(level(DAY, &THRESHOLDS), 5);
        assert_eq!(level(0, &THRESHOLDS), 6);
    }

    #[test]
    fn one_message_for_the_tightest_threshold_then_silence() {
        let c = cert("/a.crt", b"a", 10 * DAY);
        let mut state = State::default();
        let (events, quiet) = plan([&c], 0, &THRESHOLDS, &state, &HashSet::new());
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].kind, EventKind::Threshold(14 * DAY));
        apply(&mut state, &events, quiet);
        // An hour later: still inside 14d, nothing new.
        let (events, _) = plan([&c], 3_600, &THRESHOLDS, &state, &HashSet::new());
        assert!(events.is_empty());
        // Three days later it is inside 7d: one more.
        let (events, quiet) = plan([&c], 3 * DAY + 1, &THRESHOLDS, &state, &HashSet::new());
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].kind, EventKind::Threshold(7 * DAY));
        apply(&mut state, &events, quiet);
        // Expired.
        let (events, _) = plan([&c], 10 * DAY, &THRESHOLDS, &state, &HashSet::new());
        assert_eq!(events[0].kind, EventKind::Expired);
    }

    #[test]
    fn a_rotation_to_a_later_expiry_is_a_renewal() {
        let old = cert("/a.crt", b"old", 5 * DAY);
        let mut state = State::default();
        let (events, quiet) = plan([&old], 0, &THRESHOLDS, &state, &HashSet::new());
        apply(&mut state, &events, quiet);
        let new = cert("/a.crt", b"new", 365 * DAY);
        let (events, quiet) = plan([&new], DAY, &THRESHOLDS, &state, &HashSet::new());
        assert_eq!(events.len(), 1);
        assert_eq!(
            events[0].kind,
            EventKind::Renewed {
                old_not_after: 5 * DAY
            }
        );
        apply(&mut state, &events, quiet);
        assert_eq!(state.credentials["file|/a.crt||0"].level, 0);
    }

    #[test]
    fn healthy_credentials_are_remembered_quietly_and_busy_ones_left_alone() {
        let healthy = cert("/h.crt", b"h", 100 * DAY);
        let near = cert("/n.crt", b"n", 2 * DAY);
        let busy: HashSet<String> = [location(&near)].into();
        let (events, quiet) = plan([&healthy, &near], 0, &THRESHOLDS, &State::default(), &busy);
        assert!(events.is_empty());
        assert_eq!(quiet[&location(&healthy)].level, 0);
    }
}
