//! Retry delays: capped exponential backoff with full jitter, from a seeded generator.
//!
//! Full jitter (`delay = uniform(0, min(cap, base * 2^attempt))`) spreads the retries of many
//! clients that failed together, so they do not come back in lock step. The generator is
//! [`mock_tecton::rng::SplitMix64`] seeded by `SINK_SEED`, so one seed replays the same delays.

use std::time::Duration;

use mock_tecton::rng::SplitMix64;

/// The backoff policy: `base * 2^attempt`, capped at `cap`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The ceiling of the first retry's delay.
    pub base: Duration,
    /// No ceiling grows past this.
    pub cap: Duration,
}

impl Default for Backoff {
    /// 50 ms base, 2 s cap.
    fn default() -> Self {
        Backoff {
            base: Duration::from_millis(50),
            cap: Duration::from_secs(2),
        }
    }
}

impl Backoff {
    /// The ceiling before retry number `attempt` (0 for the first retry):
    /// `min(cap, base * 2^attempt)`.
    pub(crate) fn ceiling(&self, attempt: u32) -> Duration {
        let factor = 1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// A full-jitter delay before retry number `attempt`: uniform in `[0, ceiling(attempt))`.
    pub fn full_jitter(&self, attempt: u32, rng: &mut SplitMix64) -> Duration {
        self.ceiling(attempt).mul_f64(rng.next_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceilings_double_then_cap() {
        let b = Backoff::default();
        assert_eq!(b.ceiling(0), Duration::from_millis(50));
        assert_eq!(b.ceiling(3), Duration::from_millis(400));
        assert_eq!(b.ceiling(6), Duration::from_secs(2));
        assert_eq!(b.ceiling(u32::MAX), Duration::from_secs(2));
        let mut rng = SplitMix64::new(0);
        for attempt in 0..10 {
            assert!(b.full_jitter(attempt, &mut rng) < b.ceiling(attempt));
        }
    }
}
