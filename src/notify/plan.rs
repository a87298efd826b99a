//! Deciding what to tell whom: pure, from the current credentials and what
//! was already sent. No clock, no I/O.
//!
//! A credential is known by where it lives (source, path, entry, index),
//! so a rotation is the same credential with a new fingerprint. Its
//! "level" is how deep into the thresholds it is: 0 outside them, k inside
//! the k-th (thresholds run widest first), one past the last once expired.
//! A message goes out only when the level rises above what was sent, so a
//! credential found already inside several thresholds gets one message
//! for the tightest, and no crossing is mailed twice. A recorded level
//! never goes down while the fingerprint stays: the expiry of one
//! credential is fixed, so a lower level means the clock went back, and
//! believing it would mail the same crossing again when the clock returns.
//!
//! A warning some recipient refused for good is recorded with who got it
//! and who did not ([`Owed`]); it is offered again, to the others only,
//! when the notifier starts (a restart, or a new configuration).

use crate::credential::{Credential, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};

/// What was last mailed about one credential location.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sent {
    pub fingerprint: String,
    pub not_after: Timestamp,
    pub level: usize,
    /// Set while some recipient refused this level's message for good.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owed: Option<Owed>,
}

impl Sent {
    /// Somebody was told this credential is lapsing.
    fn warned(&self) -> bool {
        self.level > 0 && self.owed.as_ref().is_none_or(|o| !o.delivered.is_empty())
    }
}

/// A message not every recipient took: the server refused some for good.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owed {
    /// Addresses that took it.
    pub delivered: Vec<String>,
    /// Addresses the server refused (550, 551, 553).
    pub refused: Vec<String>,
    /// It was a "renewed" message: the replaced credential's not_after.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renewed_from: Option<Timestamp>,
}

/// The persisted memory of the notifier.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub version: u32,
    pub credentials: BTreeMap<String, Sent>,
    /// The UTC day (YYYY-MM-DD) of the last daily digest.
    #[serde(default)]
    pub last_digest: Option<String>,
    /// The thresholds the levels were counted against (widest first), so
    /// new thresholds in the configuration carry the levels over ([`rescale`]).
    #[serde(default)]
    pub thresholds: Vec<i64>,
}

impl State {
    /// Credential locations whose warning is owed to some recipient.
    pub fn owed(&self) -> usize {
        self.credentials
            .values()
            .filter(|s| s.owed.is_some())
            .count()
    }
}

/// When a rotation to a later expiry is mailed ("renewed").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Renewed {
    /// Only when somebody was warned about the old credential (the default).
    Warned,
    /// Every rotation to a later expiry, warned about or not.
    Always,
    Never,
}

/// How the plan decides: the `notify:` section's rules.
#[derive(Clone, Copy, Debug)]
pub struct Rules<'a> {
    /// Widest first, never empty.
    pub thresholds: &'a [i64],
    /// Mail credentials whose whole validity is shorter than the smallest
    /// threshold (machinery-rotated tokens); off by default.
    pub short_lived: bool,
    pub renewed: Renewed,
}

impl Rules<'_> {
    /// False for a credential that lives its whole life inside the smallest
    /// threshold, unless `short_lived` says to mail those.
    pub fn mails(&self, c: &Credential) -> bool {
        let smallest = self.thresholds.last().copied().unwrap_or(0);
        self.short_lived || c.validity_window().is_none_or(|w| w >= smallest)
    }
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
    /// Addresses that already have this message (an owed one offered again).
    pub skip: Vec<String>,
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

/// Carries the recorded levels over to new thresholds: a level stands for
/// the tightest window mailed, which is inside every new threshold at
/// least as wide; "expired" stays expired. State written before the
/// thresholds were recorded is taken as counted against `thresholds`.
pub fn rescale(state: &mut State, thresholds: &[i64]) {
    let old = std::mem::replace(&mut state.thresholds, thresholds.to_vec());
    if old.is_empty() || old == thresholds {
        return;
    }
    for sent in state.credentials.values_mut() {
        sent.level = match sent.level {
            0 => 0,
            k if k > old.len() => thresholds.len() + 1,
            k => thresholds.iter().filter(|t| **t >= old[k - 1]).count(),
        };
    }
}

/// The events due now, and the state to keep for credentials that need no
/// message (new and healthy ones, ones not mailed, and ones whose level
/// did not rise). Keys in `busy` (a message already on its way) are left
/// alone; locations gone from `creds` are forgotten. With `retry_owed`,
/// warnings some recipient refused for good are offered again.
pub fn plan<'a>(
    creds: impl IntoIterator<Item = &'a Credential>,
    now: Timestamp,
    rules: &Rules,
    state: &State,
    busy: &HashSet<String>,
    retry_owed: bool,
) -> (Vec<Event>, BTreeMap<String, Sent>) {
    let thresholds = rules.thresholds;
    let mut events = Vec::new();
    let mut quiet = BTreeMap::new();
    for c in creds {
        let Some(not_after) = c.not_after else {
            continue;
        };
        let key = location(c);
        let fingerprint = c.fingerprint.to_string();
        if busy.contains(&key) {
            quiet.insert(
                key.clone(),
                state.credentials.get(&key).cloned().unwrap_or(Sent {
                    fingerprint,
                    not_after,
                    level: 0,
                    owed: None,
                }),
            );
            continue;
        }
        let mails = rules.mails(c);
        // A credential not mailed is remembered at level 0: were the rules
        // to change, its crossings are still ahead.
        let now_level = if mails {
            level(not_after - now, thresholds)
        } else {
            0
        };
        let record = Sent {
            fingerprint: fingerprint.clone(),
            not_after,
            level: now_level,
            owed: None,
        };
        let event_for = |kind: EventKind, record: Sent, skip: Vec<String>| Event {
            key: key.clone(),
            kind,
            credential: c.clone(),
            record,
            skip,
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
                let renew = not_after > old.not_after
                    && match rules.renewed {
                        Renewed::Warned => old.warned(),
                        Renewed::Always => true,
                        Renewed::Never => false,
                    };
                if renew {
                    let kind = EventKind::Renewed {
                        old_not_after: old.not_after,
                    };
                    events.push(event_for(kind, record, Vec::new()));
                } else if now_level > 0 {
                    events.push(event_for(crossing(now_level), record, Vec::new()));
                } else {
                    quiet.insert(key, record);
                }
            }
            Some(old) if now_level > old.level => {
                events.push(event_for(crossing(now_level), record, Vec::new()))
            }
            Some(old) if retry_owed && old.owed.is_some() => {
                let owed = old.owed.clone().unwrap_or_default();
                let kind = match owed.renewed_from {
                    Some(old_not_after) => EventKind::Renewed { old_not_after },
                    None if old.level > 0 => crossing(old.level),
                    None => {
                        quiet.insert(key, old.clone());
                        continue;
                    }
                };
                let again = Sent {
                    owed: None,
                    ..old.clone()
                };
                events.push(event_for(kind, again, owed.delivered));
            }
            // Not higher: the level stays what was sent, even if the clock
            // went back (see the module's comment).
            Some(old) => {
                quiet.insert(key, old.clone());
            }
            None if now_level > 0 => {
                events.push(event_for(crossing(now_level), record, Vec::new()))
            }
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
    use crate::notify::clock::{ClockGuard, HOLD};
    use std::time::Duration;

    const DAY: i64 = 86_400;
    const HOUR: i64 = 3_600;
    const THRESHOLDS: [i64; 5] = [30 * DAY, 14 * DAY, 7 * DAY, 3 * DAY, DAY];
    const RULES: Rules = Rules {
        thresholds: &THRESHOLDS,
        short_lived: false,
        renewed: Renewed::Warned,
    };

    fn cert(path: &str, bytes: &[u8], not_after: Timestamp) -> Credential {
        let mut c = Credential::new(Kind::X509, Fingerprint::of(bytes)).expiring(Some(not_after));
        c.source = Source::File;
        c.path = path.into();
        c.index = Some(0);
        c
    }

    /// As the notifier does once every message was delivered.
    fn apply(state: &mut State, events: &[Event], quiet: BTreeMap<String, Sent>) {
        state.credentials.extend(quiet);
        for e in events {
            state.credentials.insert(e.key.clone(), e.record.clone());
        }
    }

    /// One check at `now` with every message delivered: the kinds mailed.
    fn check(
        state: &mut State,
        creds: &[&Credential],
        now: Timestamp,
        rules: &Rules,
    ) -> Vec<EventKind> {
        let (events, quiet) = plan(
            creds.iter().copied(),
            now,
            rules,
            state,
            &HashSet::new(),
            false,
        );
        apply(state, &events, quiet);
        events.into_iter().map(|e| e.kind).collect()
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
        assert_eq!(
            check(&mut state, &[&c], 0, &RULES),
            [EventKind::Threshold(14 * DAY)]
        );
        // An hour later: still inside 14d, nothing new.
        assert_eq!(check(&mut state, &[&c], 3_600, &RULES), []);
        // Three days later it is inside 7d: one more.
        assert_eq!(
            check(&mut state, &[&c], 3 * DAY + 1, &RULES),
            [EventKind::Threshold(7 * DAY)]
        );
        assert_eq!(
            check(&mut state, &[&c], 10 * DAY, &RULES),
            [EventKind::Expired]
        );
    }

    #[test]
    fn a_rotation_to_a_later_expiry_is_a_renewal() {
        let old = cert("/a.crt", b"old", 5 * DAY);
        let mut state = State::default();
        check(&mut state, &[&old], 0, &RULES);
        let new = cert("/a.crt", b"new", 365 * DAY);
        assert_eq!(
            check(&mut state, &[&new], DAY, &RULES),
            [EventKind::Renewed {
                old_not_after: 5 * DAY
            }]
        );
        assert_eq!(state.credentials["file|/a.crt||0"].level, 0);
    }

    #[test]
    fn healthy_credentials_are_remembered_quietly_and_busy_ones_left_alone() {
        let healthy = cert("/h.crt", b"h", 100 * DAY);
        let near = cert("/n.crt", b"n", 2 * DAY);
        let busy: HashSet<String> = [location(&near)].into();
        let (events, quiet) = plan(
            [&healthy, &near],
            0,
            &RULES,
            &State::default(),
            &busy,
            false,
        );
        assert!(events.is_empty());
        assert_eq!(quiet[&location(&healthy)].level, 0);
    }

    /// The sequence: 1d 23h left, the clock set back 20 days, then
    /// forward 40 (to 38 days past the expiry), then back to the truth.
    #[test]
    fn a_clock_set_back_20_days_and_forward_40_mails_nothing_twice_and_nothing_false() {
        let t0: Timestamp = 1_800_000_000;
        let c = cert("/api.crt", b"api", t0 + DAY + 23 * HOUR + 30 * 60);
        let mut state = State::default();
        let mut clock = ClockGuard::default();
        let mut mailed = Vec::new();
        // (wall clock, steady seconds): a check a minute, the steps between.
        let readings = [
            (t0, 0),
            (t0 + 60 - 20 * DAY, 60),
            (t0 + 120 - 20 * DAY, 120),
            (t0 + 180 + 20 * DAY, 180),
            (t0 + 240 + 20 * DAY, 240),
            (t0 + 300, 300),
            (t0 + 360, 360),
        ];
        for (wall, steady) in readings {
            let now = clock.observe(wall, Duration::from_secs(steady)).now;
            mailed.push(check(&mut state, &[&c], now, &RULES));
        }
        let three_days = vec![EventKind::Threshold(3 * DAY)];
        assert_eq!(
            mailed,
            [three_days, vec![], vec![], vec![], vec![], vec![], vec![]]
        );
        assert_eq!(state.credentials[&location(&c)].level, 4);
        // A jump that stays is believed after HOLD: the expiry is then real.
        let hold = HOLD.as_secs() as i64;
        for (wall, steady) in [
            (t0 + 420 + 40 * DAY, 420),
            (t0 + 420 + hold + 40 * DAY, 420 + hold),
        ] {
            let now = clock.observe(wall, Duration::from_secs(steady as u64)).now;
            mailed.push(check(&mut state, &[&c], now, &RULES));
        }
        assert_eq!(mailed[7..], [vec![], vec![EventKind::Expired]]);
    }

    #[test]
    fn a_clock_gone_back_never_lowers_the_recorded_level() {
        let c = cert("/a.crt", b"a", 10 * DAY);
        let mut state = State::default();
        assert_eq!(
            check(&mut state, &[&c], 5 * DAY, &RULES),
            [EventKind::Threshold(7 * DAY)]
        );
        assert_eq!(check(&mut state, &[&c], -30 * DAY, &RULES), []);
        assert_eq!(state.credentials[&location(&c)].level, 3);
        assert_eq!(check(&mut state, &[&c], 5 * DAY, &RULES), []);
        assert_eq!(
            check(&mut state, &[&c], 8 * DAY, &RULES),
            [EventKind::Threshold(3 * DAY)]
        );
    }

    #[test]
    fn new_thresholds_carry_the_levels_over() {
        let mut state = State::default();
        let c = cert("/a.crt", b"a", 10 * DAY);
        let gone = cert("/b.crt", b"b", 0);
        check(&mut state, &[&c, &gone], 5 * DAY, &RULES);
        rescale(&mut state, &THRESHOLDS);
        assert_eq!(state.thresholds, THRESHOLDS);
        let levels = |s: &State| s.credentials.values().map(|s| s.level).collect::<Vec<_>>();
        assert_eq!(levels(&state), [3, 6]);
        // 7d was mailed: inside 10d too, not yet inside 5d.
        let new = [10 * DAY, 5 * DAY];
        rescale(&mut state, &new);
        assert_eq!(levels(&state), [1, 3]);
        let rules = Rules {
            thresholds: &new,
            ..RULES
        };
        assert_eq!(
            check(&mut state, &[&c, &gone], 5 * DAY + 60, &rules),
            [EventKind::Threshold(5 * DAY)]
        );
        // A state written before thresholds were recorded: taken as counted against them.
        let mut old = State {
            thresholds: Vec::new(),
            ..state.clone()
        };
        rescale(&mut old, &new);
        assert_eq!(levels(&old), levels(&state));
    }

    /// A 1-hour token rewritten every hour by a plugin, by default: no
    /// "expires in 59m", no "renewed", no "expired".
    #[test]
    fn tokens_living_inside_the_smallest_threshold_are_not_mailed_by_default() {
        let token = |n: u8, iat: Timestamp| {
            let mut c =
                Credential::new(Kind::Jwt, Fingerprint::of(&[n])).expiring(Some(iat + HOUR));
            c.path = "/home/a/.kube/config".into();
            c.entry = Some("users[oidc].auth-provider.id-token".into());
            c.not_before = Some(iat);
            c
        };
        let mut state = State::default();
        let mut mailed = Vec::new();
        for hour in 0..3 {
            let t = token(hour as u8, hour * HOUR);
            mailed.push(check(&mut state, &[&t], hour * HOUR + 60, &RULES));
            mailed.push(check(&mut state, &[&t], hour * HOUR + 2 * HOUR, &RULES));
        }
        assert!(mailed.iter().all(Vec::is_empty), "{mailed:?}");
        assert_eq!(state.credentials[&location(&token(0, 0))].level, 0);

        let rules = Rules {
            short_lived: true,
            ..RULES
        };
        let mut state = State::default();
        let first = token(0, 0);
        assert_eq!(
            check(&mut state, &[&first], 60, &rules),
            [EventKind::Threshold(DAY)]
        );
        assert_eq!(
            check(&mut state, &[&token(1, HOUR)], HOUR + 60, &rules),
            [EventKind::Renewed {
                old_not_after: HOUR
            }]
        );
        // A day-long token is not short-lived against a 1d threshold.
        let mut day = token(2, 0);
        day.not_after = Some(DAY);
        assert!(RULES.mails(&day));
        assert!(!RULES.mails(&first));
    }

    #[test]
    fn renewed_mail_is_for_credentials_that_were_warned_about_unless_configured() {
        let healthy = cert("/a.crt", b"old", 100 * DAY);
        let rotated = cert("/a.crt", b"new", 200 * DAY);
        for (renewed, expected) in [
            (Renewed::Warned, vec![]),
            (
                Renewed::Always,
                vec![EventKind::Renewed {
                    old_not_after: 100 * DAY,
                }],
            ),
            (Renewed::Never, vec![]),
        ] {
            let rules = Rules { renewed, ..RULES };
            let mut state = State::default();
            assert_eq!(check(&mut state, &[&healthy], 0, &rules), []);
            assert_eq!(
                check(&mut state, &[&rotated], DAY, &rules),
                expected,
                "{renewed:?}"
            );
        }
        // Warned, then rotated: renewed unless `never`.
        let near = cert("/a.crt", b"old", 5 * DAY);
        for (renewed, expected) in [
            (
                Renewed::Warned,
                vec![EventKind::Renewed {
                    old_not_after: 5 * DAY,
                }],
            ),
            (Renewed::Never, vec![]),
        ] {
            let rules = Rules { renewed, ..RULES };
            let mut state = State::default();
            assert_eq!(
                check(&mut state, &[&near], 0, &rules),
                [EventKind::Threshold(7 * DAY)]
            );
            assert_eq!(
                check(&mut state, &[&rotated], DAY, &rules),
                expected,
                "{renewed:?}"
            );
        }
    }

    #[test]
    fn an_owed_warning_is_offered_again_at_start_to_those_who_lack_it() {
        let c = cert("/a.crt", b"a", 5 * DAY);
        let mut state = State::default();
        check(&mut state, &[&c], 0, &RULES);
        let key = location(&c);
        let owed = Owed {
            delivered: vec!["ops@example.com".into()],
            refused: vec!["typo@example.com".into()],
            renewed_from: None,
        };
        state.credentials.get_mut(&key).unwrap().owed = Some(owed);
        assert_eq!(state.owed(), 1);
        // Not on every check: only when the notifier starts.
        assert_eq!(check(&mut state, &[&c], 60, &RULES), []);
        assert_eq!(state.owed(), 1);
        let (events, _) = plan([&c], 120, &RULES, &state, &HashSet::new(), true);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].kind, EventKind::Threshold(7 * DAY));
        assert_eq!(events[0].skip, ["ops@example.com"]);
        assert_eq!(events[0].record.level, 3);
        assert_eq!(events[0].record.owed, None);
        // Warned (ops@ has it): a rotation is a renewal.
        let new = cert("/a.crt", b"b", 90 * DAY);
        assert_eq!(
            check(&mut state, &[&new], 180, &RULES),
            [EventKind::Renewed {
                old_not_after: 5 * DAY
            }]
        );
        // A "renewed" owed to nobody but the refused: offered again as a renewal.
        let key = location(&new);
        state.credentials.get_mut(&key).unwrap().owed = Some(Owed {
            delivered: vec![],
            refused: vec!["typo@example.com".into()],
            renewed_from: Some(5 * DAY),
        });
        let (events, _) = plan([&new], 240, &RULES, &state, &HashSet::new(), true);
        assert_eq!(
            events[0].kind,
            EventKind::Renewed {
                old_not_after: 5 * DAY
            }
        );
        assert!(events[0].skip.is_empty());
    }
}
