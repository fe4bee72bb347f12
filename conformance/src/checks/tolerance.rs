//! Every tolerance of the timing-based checks, in one place.
//!
//! Timings come from the mock's journal: when each request arrived (wall clock) and how long
//! the mock held it before answering or noticing that the client left. A sink's own clock
//! starts a little before the mock sees a request and its sleeps never end early, so the
//! tolerances below only ever forgive lateness the network and the scheduler add, or the
//! spread of legitimate random jitter. A scenario can widen a timing check's slack with the
//! `slack_ms` parameter.

use std::time::Duration;

/// A retry sooner than this after the failure ended counts as immediate. Backoff is judged
/// "immediate" only when every one of at least [`BACKOFF_MIN_GAPS`] retry gaps is below this,
/// because full jitter legitimately draws a near-zero delay now and then.
pub(crate) const MIN_BACKOFF: Duration = Duration::from_millis(5);

/// Retry gaps needed before backoff can be called immediate.
pub(crate) const BACKOFF_MIN_GAPS: usize = 3;

/// Growth: the mean gap before the third and later retries of a batch, over the mean gap
/// before first retries, must reach this ratio. Exponential backoff doubles (ratio ~4 or more
/// by the third retry, even with full jitter); a fixed delay stays near 1.
pub(crate) const GROWTH_MIN_RATIO: f64 = 1.3;

/// Growth is judged only when at least this many batches were retried three times or more:
/// fewer samples of fully jittered delays are too noisy to tell growth from chance.
pub(crate) const GROWTH_MIN_CHAINS: usize = 3;

/// Jitter is judged on the retry position (first retry, second, …) with the most samples, and
/// only when it has at least this many.
pub(crate) const JITTER_MIN_SAMPLES: usize = 8;

/// Jitter is present when the median absolute deviation of same-position retry gaps is at
/// least this fraction of their median. Deterministic backoff on a quiet machine stays well
/// under 1%; any real jitter (±10% or more) is far above.
pub(crate) const JITTER_MIN_REL_MAD: f64 = 0.04;

/// A retry after a `Retry-After: s` response may arrive this much before `s` seconds have
/// passed since the response (clock granularity between the sink and the mock).
pub(crate) const RETRY_AFTER_EARLY: Duration = Duration::from_millis(20);

/// After a hang, the client must give up within `timeout * (1 + TIMEOUT_SLACK_REL)` plus
/// [`TIMEOUT_SLACK_ABS`] (connection set-up, the mock's 20 ms hang-up polling, scheduling).
pub(crate) const TIMEOUT_SLACK_REL: f64 = 0.25;

/// See [`TIMEOUT_SLACK_REL`].
pub(crate) const TIMEOUT_SLACK_ABS: Duration = Duration::from_millis(150);

/// When only the next attempt of the same records bounds when the client gave up on a hang,
/// it may also include this much backoff.
pub(crate) const TIMEOUT_RETRY_GRACE: Duration = Duration::from_secs(2);

/// The batching check warns when requests carry fewer records than this on average while the
/// batch size allows more.
pub(crate) const MIN_MEAN_BATCH: f64 = 2.0;

/// The latest a client may give up on a hang and still honour `timeout`.
pub(crate) fn timeout_allowance(timeout: Duration, slack: Option<Duration>) -> Duration {
    timeout.mul_f64(1.0 + TIMEOUT_SLACK_REL) + slack.unwrap_or(TIMEOUT_SLACK_ABS)
}
