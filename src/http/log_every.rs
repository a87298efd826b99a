//! One log line per period for a kind of trouble, the rest counted and
//! reported by the next line: the HTTP server's floods (accept errors,
//! refusals, evictions, turned-away logins) must not flood the log.

use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

/// One log line per period for a kind of trouble; the rest are counted.
pub struct RateLimited {
    every: Duration,
    state: Mutex<(Option<Instant>, u64)>,
}

impl RateLimited {
    pub fn new(every: Duration) -> Self {
        RateLimited {
            every,
            state: Mutex::new((None, 0)),
        }
    }

    /// `Some(left out since the last line)` when a line may be written now.
    pub fn hit(&self, now: Instant) -> Option<u64> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let (last, suppressed) = &mut *state;
        if last.is_some_and(|at| now.saturating_duration_since(at) < self.every) {
            *suppressed += 1;
            return None;
        }
        *last = Some(now);
        Some(std::mem::take(suppressed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_per_period_saying_how_many_were_left_out() {
        let limit = RateLimited::new(Duration::from_secs(10));
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        // Twenty a second, for twelve seconds.
        let written: Vec<(u64, u64)> = (0..240)
            .filter_map(|i| limit.hit(at(i * 50)).map(|left_out| (i * 50, left_out)))
            .collect();
        assert_eq!(written, [(0, 0), (10_000, 199)]);
    }
}
