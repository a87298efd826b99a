//! Which time the notifier plans with when the system clock jumps (an NTP
//! step, a VM restored from a snapshot, a hand-set date): pure — the loop
//! feeds it each check's wall-clock reading and a steady (monotonic)
//! reading, and it never reads a clock itself.
//!
//! Between two checks the wall clock should advance as the steady clock
//! does. When it leaps ahead by more than [`TOLERANCE`], the notifier keeps
//! to the time the steady clock predicts for [`HOLD`]: a clock that comes
//! back within it sends no false "expired" mail; one that stays is believed
//! after it (a VM that was paused really is later now), so mail is late by
//! at most `HOLD`, never lost. A clock that goes back is believed at once —
//! planning with an earlier time only delays mail, and a level already
//! mailed never goes down (see `plan`).

use crate::credential::Timestamp;
use std::time::Duration;

/// Drift between the two clocks taken as no jump (NTP slews far slower).
pub const TOLERANCE: i64 = 60;
/// How long a forward jump must last before the notifier believes it.
pub const HOLD: Duration = Duration::from_secs(600);

/// What one reading gives the notifier.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reading {
    /// The time to plan with.
    pub now: Timestamp,
    /// Seconds the wall clock is ahead of the steady one while it is not
    /// believed yet; `None` when the wall clock is trusted.
    pub held: Option<i64>,
}

/// Tracks the last reading at which both clocks agreed.
#[derive(Clone, Debug, Default)]
pub struct ClockGuard {
    /// Wall and steady time when the two last agreed.
    anchor: Option<(Timestamp, Duration)>,
    /// Steady time the current forward jump was first seen.
    jumped_at: Option<Duration>,
}

impl ClockGuard {
    /// `wall`: Unix seconds; `steady`: a monotonic reading from any fixed origin.
    pub fn observe(&mut self, wall: Timestamp, steady: Duration) -> Reading {
        let trusted = Reading {
            now: wall,
            held: None,
        };
        let Some((anchor_wall, anchor_steady)) = self.anchor else {
            self.anchor = Some((wall, steady));
            return trusted;
        };
        let expected = anchor_wall + steady.saturating_sub(anchor_steady).as_secs() as i64;
        let ahead = wall - expected;
        let settled = self
            .jumped_at
            .is_some_and(|since| steady.saturating_sub(since) >= HOLD);
        if ahead <= TOLERANCE || settled {
            self.anchor = Some((wall, steady));
            self.jumped_at = None;
            return trusted;
        }
        self.jumped_at.get_or_insert(steady);
        Reading {
            now: expected,
            held: Some(ahead),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;
    const T0: Timestamp = 1_800_000_000;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn a_steady_clock_is_believed() {
        let mut g = ClockGuard::default();
        let r: Vec<Reading> = [(T0, 5), (T0 + 60, 65), (T0 + 121, 125)]
            .iter()
            .map(|&(w, s)| g.observe(w, secs(s)))
            .collect();
        let now: Vec<Timestamp> = r.iter().map(|r| r.now).collect();
        assert_eq!(now, [T0, T0 + 60, T0 + 121]);
        assert!(r.iter().all(|r| r.held.is_none()));
    }

    #[test]
    fn back_20_days_is_believed_forward_40_is_held_until_it_lasts() {
        let mut g = ClockGuard::default();
        assert_eq!(g.observe(T0, secs(0)).now, T0);
        // Set back 20 days: believed at once.
        let back = g.observe(T0 + 60 - 20 * DAY, secs(60));
        assert_eq!((back.now, back.held), (T0 + 60 - 20 * DAY, None));
        // Forward 40 days from there: held to the steady clock's time.
        let fwd = g.observe(T0 + 120 + 20 * DAY, secs(120));
        assert_eq!((fwd.now, fwd.held), (T0 + 120 - 20 * DAY, Some(40 * DAY)));
        let later = g.observe(T0 + 180 + 20 * DAY, secs(180));
        assert_eq!(later.now, T0 + 180 - 20 * DAY);
        // Still there after HOLD: believed.
        let hold = HOLD.as_secs();
        let kept = g.observe(T0 + 120 + hold as i64 + 20 * DAY, secs(120 + hold));
        assert_eq!(
            (kept.now, kept.held),
            (T0 + 120 + hold as i64 + 20 * DAY, None)
        );
        let next = g.observe(T0 + 180 + hold as i64 + 20 * DAY, secs(180 + hold));
        assert_eq!(next.held, None);
    }

    #[test]
    fn a_jump_that_comes_back_within_the_hold_is_never_believed() {
        let mut g = ClockGuard::default();
        g.observe(T0, secs(0));
        assert_eq!(g.observe(T0 + 60 + 40 * DAY, secs(60)).now, T0 + 60);
        let back = g.observe(T0 + 120, secs(120));
        assert_eq!((back.now, back.held), (T0 + 120, None));
        // A new jump starts its own hold.
        let again = g.observe(T0 + 180 + DAY, secs(180));
        assert_eq!(
            again,
            Reading {
                now: T0 + 180,
                held: Some(DAY)
            }
        );
        let drift = g.observe(T0 + 240 + TOLERANCE, secs(240));
        assert_eq!(drift.held, None);
    }
}
