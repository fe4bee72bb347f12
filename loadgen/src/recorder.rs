//! What a run measured: HdrHistograms, counters and per-second intervals.
//!
//! Every latency and freshness figure goes into an HdrHistogram (microseconds, three
//! significant digits, up to an hour), so memory is fixed however many requests a run makes;
//! the only thing that grows is one small [`IntervalStats`] per second.
//!
//! Two latencies per request: from its *intended* start (when the plan said it was due) and
//! from its *actual* start (when a connection was free and it went out). The first is the
//! coordinated-omission-corrected figure: a stall that holds back later sends shows in them
//! too, as their users would have felt it. The second is what a closed-loop tool reports.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use reports::load::{FreshnessMs, IntervalStats, LatencyMs, Pattern, RunPoint};

/// Largest recordable value: one hour in microseconds (larger values are clamped to it).
const MAX_US: u64 = 3_600_000_000;

fn histogram() -> Histogram<u64> {
    // The bounds are constants that hdrhistogram accepts; this cannot fail.
    #[allow(clippy::unwrap_used)]
    Histogram::new_with_bounds(1, MAX_US, 3).unwrap()
}

fn micros(d: Duration) -> u64 {
    (d.as_micros() as u64).clamp(1, MAX_US)
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

/// Percentiles of a latency histogram, in milliseconds (zeros when empty).
pub(crate) fn latency_ms(h: &Histogram<u64>) -> LatencyMs {
    if h.is_empty() {
        return LatencyMs::default();
    }
    LatencyMs {
        p50: ms(h.value_at_quantile(0.5)),
        p90: ms(h.value_at_quantile(0.9)),
        p99: ms(h.value_at_quantile(0.99)),
        p999: ms(h.value_at_quantile(0.999)),
        max: ms(h.max()),
    }
}

/// Percentiles of a freshness histogram, in milliseconds; `None` when empty.
pub(crate) fn freshness_ms(h: &Histogram<u64>) -> Option<FreshnessMs> {
    (!h.is_empty()).then(|| FreshnessMs {
        p50: ms(h.value_at_quantile(0.5)),
        p90: ms(h.value_at_quantile(0.9)),
        p99: ms(h.value_at_quantile(0.99)),
        max: ms(h.max()),
    })
}

/// How one request ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Acknowledged.
    Ok,
    /// Failed: an HTTP status (`"429"`) or a kind (`"timeout"`, `"connect"`, `"reset"`).
    Failed(String),
}

#[derive(Debug)]
struct Interval {
    sent: u64,
    acked: u64,
    errors: u64,
    latency: Histogram<u64>,
}

impl Interval {
    fn new() -> Self {
        Interval {
            sent: 0,
            acked: 0,
            errors: 0,
            latency: histogram(),
        }
    }
}

/// The running totals of one run point.
#[derive(Debug)]
pub struct Recorder {
    corrected: Histogram<u64>,
    uncorrected: Histogram<u64>,
    freshness: Histogram<u64>,
    requests: u64,
    records_sent: u64,
    records_acked: u64,
    errors: BTreeMap<String, u64>,
    late_sends: u64,
    current: Interval,
    intervals: Vec<IntervalStats>,
    last_send: Duration,
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder::new()
    }
}

impl Recorder {
    /// An empty recorder.
    pub fn new() -> Self {
        Recorder {
            corrected: histogram(),
            uncorrected: histogram(),
            freshness: histogram(),
            requests: 0,
            records_sent: 0,
            records_acked: 0,
            errors: BTreeMap::new(),
            late_sends: 0,
            current: Interval::new(),
            intervals: Vec::new(),
            last_send: Duration::ZERO,
        }
    }

    /// A request carrying `records` went out at `at` (from the run's start); `late` when it
    /// started later than the late threshold after its intended time.
    pub fn sent(&mut self, records: u64, late: bool, at: Duration) {
        self.requests += 1;
        self.records_sent += records;
        self.current.sent += records;
        self.late_sends += u64::from(late);
        self.last_send = self.last_send.max(at);
    }

    /// `requests` planned requests were never sent: the run was past its end plus the grace.
    /// They count as late sends, not as sent records.
    pub fn unsent(&mut self, requests: u64) {
        self.late_sends += requests;
    }

    /// A request carrying `records` ended: `corrected` is measured from its intended start,
    /// `uncorrected` from its actual start.
    pub(crate) fn completed(
        &mut self,
        records: u64,
        corrected: Duration,
        uncorrected: Duration,
        outcome: Outcome,
    ) {
        let (c, u) = (micros(corrected), micros(uncorrected));
        self.corrected.saturating_record(c);
        self.uncorrected.saturating_record(u);
        self.current.latency.saturating_record(c);
        match outcome {
            Outcome::Ok => {
                self.records_acked += records;
                self.current.acked += records;
            }
            Outcome::Failed(cause) => {
                *self.errors.entry(cause).or_default() += 1;
                self.current.errors += 1;
            }
        }
    }

    /// `count` records became servable `freshness` after they were sent.
    pub fn fresh(&mut self, freshness: Duration, count: u64) {
        let _ = self.freshness.record_n(micros(freshness), count);
    }

    /// Replaces the freshness figures with ones observed elsewhere (the mock's own histogram).
    pub fn set_freshness(&mut self, h: Histogram<u64>) {
        self.freshness = h;
    }

    /// Closes the interval that began at `t_s` seconds and starts the next.
    pub fn tick(&mut self, t_s: f64) {
        let done = std::mem::replace(&mut self.current, Interval::new());
        self.intervals.push(IntervalStats {
            t_s,
            records_sent: done.sent,
            records_acknowledged: done.acked,
            errors: done.errors,
            latency_p99_ms: if done.latency.is_empty() {
                0.0
            } else {
                ms(done.latency.value_at_quantile(0.99))
            },
        });
    }

    /// Overrides the request count (the sink pattern counts the sink's requests, not lines).
    pub fn set_requests(&mut self, n: u64) {
        self.requests = n;
    }

    /// The last closed interval.
    pub fn last_interval(&self) -> Option<&IntervalStats> {
        self.intervals.last()
    }

    /// Requests sent so far.
    pub fn requests(&self) -> u64 {
        self.requests
    }

    /// Records acknowledged so far.
    pub fn records_acknowledged(&self) -> u64 {
        self.records_acked
    }

    /// Failed requests so far.
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    /// Corrected latency histogram (microseconds).
    pub fn corrected(&self) -> &Histogram<u64> {
        &self.corrected
    }

    /// Uncorrected latency histogram (microseconds).
    pub fn uncorrected(&self) -> &Histogram<u64> {
        &self.uncorrected
    }

    /// Time of the last send, from the run's start.
    pub fn last_send(&self) -> Duration {
        self.last_send
    }

    /// Bytes held by the recorder apart from the per-second intervals: constant for a run,
    /// whatever its length (this is what the bounded-memory test watches).
    pub fn footprint_bytes(&self) -> usize {
        let h = |h: &Histogram<u64>| h.distinct_values() * std::mem::size_of::<u64>();
        h(&self.corrected)
            + h(&self.uncorrected)
            + h(&self.freshness)
            + h(&self.current.latency)
            + self.errors.len() * 64
    }

    /// The run point: `duration` is the measured length of the run.
    pub fn point(&self, pattern: Pattern, offered_rate: f64, duration: Duration) -> RunPoint {
        let secs = duration.as_secs_f64().max(1e-9);
        RunPoint {
            pattern: Some(pattern),
            offered_rate,
            achieved_rate: self.records_acked as f64 / secs,
            duration_s: secs,
            requests: self.requests,
            records_sent: self.records_sent,
            records_acknowledged: self.records_acked,
            errors: self.errors.clone(),
            late_sends: self.late_sends,
            latency_ms: latency_ms(&self.corrected),
            latency_uncorrected_ms: latency_ms(&self.uncorrected),
            freshness_ms: freshness_ms(&self.freshness),
            intervals: self.intervals.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_stays_flat_however_many_values() {
        let mut r = Recorder::new();
        let record = |r: &mut Recorder, n: u64| {
            for i in 0..n {
                let d = Duration::from_micros(1 + (i * 7919) % 5_000_000);
                r.sent(1, false, d);
                r.completed(1, d, d / 2, Outcome::Ok);
                r.fresh(d, 1);
            }
        };
        record(&mut r, 1_000);
        let small = r.footprint_bytes();
        record(&mut r, 1_000_000);
        assert_eq!(r.footprint_bytes(), small);
        assert_eq!(r.records_acknowledged(), 1_001_000);
    }

    #[test]
    fn point_reports_percentiles_errors_and_intervals() {
        let mut r = Recorder::new();
        for i in 1..=100u64 {
            r.sent(2, i > 95, Duration::from_millis(i * 10));
            let outcome = if i % 50 == 0 {
                Outcome::Failed("429".into())
            } else {
                Outcome::Ok
            };
            r.completed(
                2,
                Duration::from_millis(i),
                Duration::from_millis(1),
                outcome,
            );
            if i == 50 {
                r.tick(0.0);
            }
        }
        r.tick(1.0);
        let p = r.point(Pattern::Push, 200.0, Duration::from_secs(1));
        assert_eq!(
            (p.requests, p.records_sent, p.records_acknowledged),
            (100, 200, 196)
        );
        assert_eq!(p.errors.get("429"), Some(&2));
        assert_eq!(p.late_sends, 5);
        assert!((p.latency_ms.p50 - 50.0).abs() < 0.1, "{:?}", p.latency_ms);
        assert!((p.latency_ms.max - 100.0).abs() < 0.1);
        assert!((p.latency_uncorrected_ms.p99 - 1.0).abs() < 0.01);
        assert_eq!(p.intervals.len(), 2);
        assert_eq!(p.intervals[0].records_acknowledged, 98);
        assert_eq!(p.intervals[1].errors, 1);
        assert!((p.achieved_rate - 196.0).abs() < 1e-9);
        assert!(p.freshness_ms.is_none());
    }
}
