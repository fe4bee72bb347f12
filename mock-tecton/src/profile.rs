//! The `tecton` latency and capacity profile: makes the mock answer with Tecton's documented
//! latencies and limits instead of this machine's, so that load results say something about
//! Tecton. Off by default (the raw mock answers as fast as it can).
//!
//! With a profile installed:
//! - every ingest request waits a latency drawn from a log-normal distribution fitted to
//!   Tecton's published p50 and p99 for its record count (1 and 10 records, linear between);
//! - ingest capacity (records/s) starts at a floor and follows demand only after a scaling
//!   period, so a rate that climbs faster than the service scales gets 429s;
//! - the feature server has a fixed capacity (requests/s, batch rows counted one each) with 429
//!   beyond it, a latency drawn the same way, and answers 504 when a request is not done by its
//!   timeout (whatever held it: the profile, an injected latency or hang);
//! - the stream engine's micro-batches cost a fixed overhead each.
//!
//! The profile's choices go through the fault machinery ([`Decision`]), so each shaped
//! exchange's journal entry says what the profile did. A request a fault rule has already
//! decided is not shaped again. Limiters are lock-free (GCRA on atomics); draws come from the
//! profile's seed and a per-profile request counter, so the same seed and the same request order
//! give the same latencies.
//!
//! Every number is a field of [`TectonProfile`] with its default and source in
//! [`crate::decisions::tecton_profile`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::decisions::tecton_profile as d;
use crate::faults::{mix, Decision, FaultAction};

/// The profile's knobs. Deserializes from TOML or JSON with every field optional.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TectonProfile {
    /// Seed of every latency draw.
    pub seed: u64,
    /// Median ingest latency of a one-record request, ms.
    pub ingest_one_p50_ms: f64,
    /// p99 ingest latency of a one-record request, ms.
    pub ingest_one_p99_ms: f64,
    /// Median ingest latency of a ten-record request, ms.
    pub ingest_ten_p50_ms: f64,
    /// p99 ingest latency of a ten-record request, ms.
    pub ingest_ten_p99_ms: f64,
    /// Ingest capacity (records/s) before and between scale-ups.
    pub ingest_initial_records_per_s: f64,
    /// Seconds of observed demand before ingest capacity follows it.
    pub ingest_scale_period_s: f64,
    /// Utilization ingest capacity scales to (capacity = demand / this).
    pub ingest_target_utilization: f64,
    /// Seconds of capacity one burst may use.
    pub burst_s: f64,
    /// Feature server capacity, requests/s.
    pub serving_capacity_qps: f64,
    /// Feature server timeout, ms (504 after it).
    pub serving_timeout_ms: u64,
    /// Median feature server latency, ms.
    pub serving_p50_ms: f64,
    /// p99 feature server latency, ms.
    pub serving_p99_ms: f64,
    /// Fixed cost of each stream micro-batch, ms.
    pub spark_batch_overhead_ms: u64,
}

impl Default for TectonProfile {
    fn default() -> Self {
        TectonProfile {
            seed: 0,
            ingest_one_p50_ms: d::INGEST_ONE_P50_MS,
            ingest_one_p99_ms: d::INGEST_ONE_P99_MS,
            ingest_ten_p50_ms: d::INGEST_TEN_P50_MS,
            ingest_ten_p99_ms: d::INGEST_TEN_P99_MS,
            ingest_initial_records_per_s: d::INGEST_INITIAL_RECORDS_PER_S,
            ingest_scale_period_s: d::INGEST_SCALE_PERIOD_S,
            ingest_target_utilization: d::INGEST_TARGET_UTILIZATION,
            burst_s: d::BURST_S,
            serving_capacity_qps: d::SERVING_CAPACITY_QPS,
            serving_timeout_ms: d::SERVING_TIMEOUT_MS,
            serving_p50_ms: d::SERVING_P50_MS,
            serving_p99_ms: d::SERVING_P99_MS,
            spark_batch_overhead_ms: d::SPARK_BATCH_OVERHEAD_MS,
        }
    }
}

/// Why a Tecton profile cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProfileError {
    /// The file is not valid TOML of the profile's shape.
    #[error("{0}")]
    Syntax(String),
    /// A rate, latency or period that must be positive is not.
    #[error("`{field}` must be a positive number, not {value}")]
    NotPositive {
        /// The field.
        field: &'static str,
        /// Its value.
        value: f64,
    },
    /// A 99th percentile below its median.
    #[error("`{latency}_p99_ms` ({p99}) must be at least `{latency}_p50_ms` ({p50})")]
    P99BelowP50 {
        /// The latency's name (`ingest_one`, `ingest_ten`, `serving`).
        latency: &'static str,
        /// The median.
        p50: f64,
        /// The 99th percentile.
        p99: f64,
    },
    /// A target utilization outside (0, 1].
    #[error("`ingest_target_utilization` must be in (0, 1], not {0}")]
    Utilization(f64),
    /// A zero serving timeout.
    #[error("`serving_timeout_ms` must be positive")]
    ZeroTimeout,
}

impl TectonProfile {
    /// Reads a profile file (TOML); fields left out keep their defaults.
    pub fn from_toml(text: &str) -> Result<Self, ProfileError> {
        let profile: TectonProfile =
            toml::from_str(text).map_err(|e| ProfileError::Syntax(e.to_string()))?;
        profile.validate()?;
        Ok(profile)
    }

    /// Checks that every number makes sense.
    pub fn validate(&self) -> Result<(), ProfileError> {
        let positive = [
            ("ingest_one_p50_ms", self.ingest_one_p50_ms),
            ("ingest_ten_p50_ms", self.ingest_ten_p50_ms),
            ("serving_p50_ms", self.serving_p50_ms),
            (
                "ingest_initial_records_per_s",
                self.ingest_initial_records_per_s,
            ),
            ("ingest_scale_period_s", self.ingest_scale_period_s),
            ("burst_s", self.burst_s),
            ("serving_capacity_qps", self.serving_capacity_qps),
        ];
        for (name, v) in positive {
            if !(v.is_finite() && v > 0.0) {
                return Err(ProfileError::NotPositive {
                    field: name,
                    value: v,
                });
            }
        }
        let pairs = [
            ("ingest_one", self.ingest_one_p50_ms, self.ingest_one_p99_ms),
            ("ingest_ten", self.ingest_ten_p50_ms, self.ingest_ten_p99_ms),
            ("serving", self.serving_p50_ms, self.serving_p99_ms),
        ];
        for (name, p50, p99) in pairs {
            if !(p99.is_finite() && p99 >= p50) {
                return Err(ProfileError::P99BelowP50 {
                    latency: name,
                    p50,
                    p99,
                });
            }
        }
        let u = self.ingest_target_utilization;
        if !(u > 0.0 && u <= 1.0) {
            return Err(ProfileError::Utilization(u));
        }
        if self.serving_timeout_ms == 0 {
            return Err(ProfileError::ZeroTimeout);
        }
        Ok(())
    }
}

/// A log-normal latency distribution given by its median and 99th percentile.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct LatencyDistribution {
    mu: f64,
    sigma: f64,
}

/// The standard normal's 99th percentile.
const Z99: f64 = 2.326_347_874;

impl LatencyDistribution {
    /// The log-normal whose p50 and p99 are these (ms).
    pub(crate) fn from_percentiles(p50_ms: f64, p99_ms: f64) -> Self {
        let p50 = p50_ms.max(f64::MIN_POSITIVE);
        LatencyDistribution {
            mu: p50.ln(),
            sigma: (p99_ms.max(p50) / p50).ln() / Z99,
        }
    }

    /// The latency (ms) at standard-normal score `z`.
    pub(crate) fn at_z(&self, z: f64) -> f64 {
        (self.mu + self.sigma * z).exp()
    }

    /// A latency (ms) from a 64-bit random draw (Box–Muller over two derived uniforms).
    pub(crate) fn sample(&self, draw: u64) -> f64 {
        let u1 = unit(mix(draw, 1, 0));
        let u2 = unit(mix(draw, 2, 0));
        let z = (-2.0 * (1.0 - u1).ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
        self.at_z(z)
    }
}

/// A draw as a float in `[0, 1)`.
fn unit(r: u64) -> f64 {
    (r >> 11) as f64 / (1u64 << 53) as f64
}

/// Ingest latency by record count: Tecton's figures for 1 and 10 records, linear in between and
/// held at the ends.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct IngestLatency {
    one: (f64, f64),
    ten: (f64, f64),
}

impl IngestLatency {
    /// From the profile's four figures.
    pub(crate) fn new(profile: &TectonProfile) -> Self {
        IngestLatency {
            one: (profile.ingest_one_p50_ms, profile.ingest_one_p99_ms),
            ten: (profile.ingest_ten_p50_ms, profile.ingest_ten_p99_ms),
        }
    }

    /// The distribution for a request carrying `records` records.
    pub(crate) fn for_records(&self, records: usize) -> LatencyDistribution {
        let t = (records.clamp(1, 10) - 1) as f64 / 9.0;
        let lerp = |a: f64, b: f64| a + (b - a) * t;
        LatencyDistribution::from_percentiles(
            lerp(self.one.0, self.ten.0),
            lerp(self.one.1, self.ten.1),
        )
    }
}

/// A lock-free rate limiter (the generic cell rate algorithm): `rate` units/s, and a request
/// may run at most `burst` ahead of that rate. Times are ns since the limiter's start, given by
/// the caller so tests can drive it on their own timeline.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    /// ns per unit at the current rate, as `f64` bits.
    interval_ns: AtomicU64,
    /// The theoretical arrival time of the next unit, ns.
    tat: AtomicU64,
    burst_s: f64,
}

impl RateLimiter {
    /// `rate` units/s with `burst_s` seconds of burst.
    pub(crate) fn new(rate: f64, burst_s: f64) -> Self {
        RateLimiter {
            interval_ns: AtomicU64::new((1e9 / rate).to_bits()),
            tat: AtomicU64::new(0),
            burst_s,
        }
    }

    /// The current rate, units/s.
    pub(crate) fn rate(&self) -> f64 {
        1e9 / f64::from_bits(self.interval_ns.load(Ordering::Relaxed))
    }

    /// Changes the rate (the burst allowance, in seconds, stays).
    pub(crate) fn set_rate(&self, rate: f64) {
        self.interval_ns
            .store((1e9 / rate).to_bits(), Ordering::Relaxed);
    }

    /// Takes `units` at `now_ns` if the rate allows; a refused request takes nothing.
    pub(crate) fn try_acquire(&self, units: u64, now_ns: u64) -> bool {
        let interval = f64::from_bits(self.interval_ns.load(Ordering::Relaxed));
        let cost = (units as f64 * interval).round() as u64;
        // The burst allowance in ns at this rate; a request larger than it passes only when
        // the limiter is idle, so a big batch is slow rather than impossible.
        let allowance = ((self.burst_s * 1e9) as u64).max(cost);
        let mut tat = self.tat.load(Ordering::Relaxed);
        loop {
            let start = tat.max(now_ns);
            let next = start.saturating_add(cost);
            if next - now_ns > allowance {
                return false;
            }
            match self
                .tat
                .compare_exchange_weak(tat, next, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => return true,
                Err(seen) => tat = seen,
            }
        }
    }
}

/// Ingest capacity that follows demand after a delay: at the end of each scaling period,
/// capacity becomes the period's demand (admitted or not) divided by the target utilization,
/// never below the floor. A rate that climbs within a period meets the old capacity.
#[derive(Debug)]
pub(crate) struct ScalingLimiter {
    limiter: RateLimiter,
    floor: f64,
    target_utilization: f64,
    period_ns: u64,
    window_start: AtomicU64,
    window_units: AtomicU64,
}

impl ScalingLimiter {
    /// Starts at `floor` units/s.
    pub(crate) fn new(floor: f64, burst_s: f64, period_s: f64, target_utilization: f64) -> Self {
        ScalingLimiter {
            limiter: RateLimiter::new(floor, burst_s),
            floor,
            target_utilization,
            period_ns: (period_s * 1e9) as u64,
            window_start: AtomicU64::new(0),
            window_units: AtomicU64::new(0),
        }
    }

    /// The current capacity, units/s.
    pub(crate) fn capacity(&self) -> f64 {
        self.limiter.rate()
    }

    /// Counts `units` of demand at `now_ns` and admits them if capacity allows.
    pub(crate) fn admit(&self, units: u64, now_ns: u64) -> bool {
        let start = self.window_start.load(Ordering::Acquire);
        if now_ns >= start.saturating_add(self.period_ns)
            && self
                .window_start
                .compare_exchange(start, now_ns, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        {
            let demand = self.window_units.swap(0, Ordering::AcqRel) as f64;
            let seconds = (now_ns - start) as f64 / 1e9;
            let wanted = demand / seconds / self.target_utilization;
            self.limiter.set_rate(wanted.max(self.floor));
        }
        self.window_units.fetch_add(units, Ordering::AcqRel);
        self.limiter.try_acquire(units, now_ns)
    }
}

/// Which API an exchange belongs to, as far as the profile cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Traffic {
    /// An ingest request carrying this many records.
    Ingest {
        /// Records in the request, over every source.
        records: usize,
    },
    /// A feature server request for this many rows (1 unless it is a batch).
    Serving {
        /// Rows asked for.
        rows: usize,
    },
}

impl Traffic {
    /// What a parsed request body asks of the service: ingest records over every source, or
    /// feature server rows (`requestData` of a batch request, else one).
    pub fn of_ingest(json: &serde_json::Value) -> Traffic {
        let records = json
            .get("records")
            .and_then(serde_json::Value::as_object)
            .map_or(0, |m| {
                m.values()
                    .filter_map(serde_json::Value::as_array)
                    .map(Vec::len)
                    .sum()
            });
        Traffic::Ingest { records }
    }

    /// A feature server request: rows of `params.requestData` for a batch, else one.
    pub fn of_serving(json: &serde_json::Value) -> Traffic {
        let rows = json
            .get("params")
            .and_then(|p| p.get("requestData").or_else(|| p.get("request_data")))
            .and_then(serde_json::Value::as_array)
            .map_or(1, |rows| rows.len().max(1));
        Traffic::Serving { rows }
    }
}

/// A running profile: the knobs plus the limiters and the draw counter.
#[derive(Debug)]
pub struct Profile {
    knobs: TectonProfile,
    ingest_latency: IngestLatency,
    serving_latency: LatencyDistribution,
    ingest: ScalingLimiter,
    serving: RateLimiter,
    started: Instant,
    draws: AtomicU64,
}

impl Profile {
    /// Starts a profile now.
    pub fn new(knobs: TectonProfile) -> Self {
        Profile {
            ingest_latency: IngestLatency::new(&knobs),
            serving_latency: LatencyDistribution::from_percentiles(
                knobs.serving_p50_ms,
                knobs.serving_p99_ms,
            ),
            ingest: ScalingLimiter::new(
                knobs.ingest_initial_records_per_s,
                knobs.burst_s,
                knobs.ingest_scale_period_s,
                knobs.ingest_target_utilization,
            ),
            serving: RateLimiter::new(knobs.serving_capacity_qps, knobs.burst_s),
            started: Instant::now(),
            draws: AtomicU64::new(0),
            knobs,
        }
    }

    /// The knobs.
    pub fn knobs(&self) -> &TectonProfile {
        &self.knobs
    }

    /// The feature server's timeout.
    pub fn serving_timeout(&self) -> Duration {
        Duration::from_millis(self.knobs.serving_timeout_ms)
    }

    /// The fixed cost of a stream micro-batch.
    pub fn batch_overhead(&self) -> Duration {
        Duration::from_millis(self.knobs.spark_batch_overhead_ms)
    }

    /// The ingest capacity now, records/s.
    pub fn ingest_capacity(&self) -> f64 {
        self.ingest.capacity()
    }

    /// What the profile does to this exchange, now.
    pub fn decide(&self, traffic: Traffic) -> Decision {
        let now = u64::try_from(self.started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.decide_at(traffic, now)
    }

    /// What the profile does to an exchange arriving `now_ns` after the profile started: a 429
    /// when capacity is used up, else a drawn latency.
    pub fn decide_at(&self, traffic: Traffic, now_ns: u64) -> Decision {
        let draw = mix(
            self.knobs.seed,
            0x007e_c70a,
            self.draws.fetch_add(1, Ordering::Relaxed),
        );
        let (admitted, latency) = match traffic {
            Traffic::Ingest { records } => (
                self.ingest.admit(records.max(1) as u64, now_ns),
                self.ingest_latency.for_records(records),
            ),
            Traffic::Serving { rows } => (
                self.serving.try_acquire(rows.max(1) as u64, now_ns),
                self.serving_latency,
            ),
        };
        let action = if admitted {
            FaultAction::Latency {
                ms: latency.sample(draw).round() as u64,
                max_ms: None,
            }
        } else {
            // Tecton documents no Retry-After on either API's 429.
            FaultAction::Status {
                status: 429,
                retry_after_s: None,
                message: None,
            }
        };
        Decision {
            label: format!("tecton profile: {}", action.label()),
            action,
            random: draw,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: u64 = 1_000_000_000;

    fn percentile(mut v: Vec<f64>, q: f64) -> f64 {
        v.sort_by(f64::total_cmp);
        v[((v.len() - 1) as f64 * q).round() as usize]
    }

    fn draws(dist: LatencyDistribution, seed: u64, n: u64) -> Vec<f64> {
        (0..n).map(|i| dist.sample(mix(seed, 1, i))).collect()
    }

    #[test]
    fn fitted_distribution_hits_its_percentiles_exactly() {
        let dist = LatencyDistribution::from_percentiles(55.0, 136.0);
        assert!((dist.at_z(0.0) - 55.0).abs() < 1e-9);
        assert!((dist.at_z(Z99) - 136.0).abs() < 1e-6);
    }

    #[test]
    fn sampled_ingest_latency_matches_tecton_figures() {
        let seed = 42;
        let lat = IngestLatency::new(&TectonProfile::default());
        for (records, p50, p99) in [(1, 55.0, 136.0), (10, 97.0, 185.0)] {
            let v = draws(lat.for_records(records), seed, 40_000);
            let (got50, got99) = (percentile(v.clone(), 0.5), percentile(v, 0.99));
            assert!(
                (got50 / p50 - 1.0).abs() < 0.03,
                "seed {seed}, {records} records: p50 {got50:.1} vs {p50}"
            );
            assert!(
                (got99 / p99 - 1.0).abs() < 0.06,
                "seed {seed}, {records} records: p99 {got99:.1} vs {p99}"
            );
        }
        // The documented ranges hold for the defaults: one record's p99 within 108–165 ms,
        // ten records' p50 within 82–112 ms and p99 within 156–213 ms.
        let one = lat.for_records(1);
        let ten = lat.for_records(10);
        assert!((108.0..=165.0).contains(&one.at_z(Z99)));
        assert!((82.0..=112.0).contains(&ten.at_z(0.0)));
        assert!((156.0..=213.0).contains(&ten.at_z(Z99)));
        let five = lat.for_records(5);
        assert!(five.at_z(0.0) > 55.0 && five.at_z(0.0) < 97.0);
        assert_eq!(lat.for_records(0), lat.for_records(1));
        assert_eq!(lat.for_records(50), lat.for_records(10));
    }

    #[test]
    fn draws_are_seeded() {
        let dist = LatencyDistribution::from_percentiles(55.0, 136.0);
        assert_eq!(draws(dist, 7, 100), draws(dist, 7, 100));
        assert_ne!(draws(dist, 7, 100), draws(dist, 8, 100));
        assert!(draws(dist, 7, 10_000).iter().all(|ms| *ms > 0.0));
    }

    /// Sends `rate` requests/s evenly for `seconds` from `from_ns`; returns how many were refused.
    fn drive(admit: impl Fn(u64) -> bool, rate: u64, seconds: u64, from_ns: u64) -> u64 {
        let gap = SECOND / rate;
        (0..rate * seconds)
            .filter(|i| !admit(from_ns + i * gap))
            .count() as u64
    }

    #[test]
    fn serving_capacity_refuses_beyond_its_rate() {
        let limiter = RateLimiter::new(200.0, 1.0);
        assert_eq!(drive(|t| limiter.try_acquire(1, t), 150, 10, 0), 0);
        let limiter = RateLimiter::new(200.0, 1.0);
        let refused = drive(|t| limiter.try_acquire(1, t), 400, 10, 0);
        // 4,000 sent, 2,000 allowed by the rate plus about one second of burst.
        assert!((1_750..=2_050).contains(&refused), "refused {refused}");
    }

    #[test]
    fn a_burst_within_the_allowance_passes_and_beyond_it_is_refused() {
        let limiter = RateLimiter::new(200.0, 1.0);
        let passed = (0..300).filter(|_| limiter.try_acquire(1, 0)).count();
        assert_eq!(passed, 200);
        // A batch larger than the allowance passes when the limiter is idle.
        let limiter = RateLimiter::new(10.0, 1.0);
        assert!(limiter.try_acquire(50, 0));
        assert!(!limiter.try_acquire(1, SECOND));
    }

    #[test]
    fn ingest_refuses_a_sudden_climb_until_it_has_scaled() {
        let s = ScalingLimiter::new(1_000.0, 1.0, 60.0, 0.5);
        // A minute at 500 records/s: within capacity.
        assert_eq!(drive(|t| s.admit(1, t), 500, 60, 0), 0);
        // The rate jumps to 3,000/s: most of the next minute is refused ...
        let refused = drive(|t| s.admit(1, t), 3_000, 60, 60 * SECOND);
        assert!(refused > 100_000, "refused {refused} of 180000");
        // ... then capacity has followed demand (3,000 / 0.5) and nothing is refused.
        assert_eq!(drive(|t| s.admit(1, t), 3_000, 60, 120 * SECOND), 0);
        assert!((s.capacity() - 6_000.0).abs() < 100.0, "{}", s.capacity());
        // An idle spell brings capacity back to the floor.
        assert!(s.admit(1, 600 * SECOND));
        assert!((s.capacity() - 1_000.0).abs() < 1.0);
    }

    #[test]
    fn a_slow_ramp_is_followed_without_refusals() {
        let s = ScalingLimiter::new(1_000.0, 1.0, 60.0, 0.5);
        // Each minute 1.8 times the last: capacity (twice the last minute's demand) keeps ahead.
        let mut from = 0;
        for rate in [800, 1_440, 2_592, 4_665] {
            assert_eq!(drive(|t| s.admit(1, t), rate, 60, from), 0, "at {rate}/s");
            from += 60 * SECOND;
        }
    }

    #[test]
    fn profile_decisions_are_latencies_then_429s() {
        let knobs = TectonProfile {
            serving_capacity_qps: 10.0,
            seed: 3,
            ..TectonProfile::default()
        };
        let p = Profile::new(knobs.clone());
        let kinds: Vec<String> = (0..15)
            .map(
                |_| match p.decide_at(Traffic::Serving { rows: 1 }, 0).action {
                    FaultAction::Latency { .. } => "latency".into(),
                    other => other.label(),
                },
            )
            .collect();
        assert_eq!(kinds.iter().filter(|k| *k == "latency").count(), 10);
        assert_eq!(kinds[10..], vec!["status 429".to_owned(); 5][..]);
        let first = Profile::new(knobs.clone()).decide_at(Traffic::Ingest { records: 1 }, 0);
        let again = Profile::new(knobs).decide_at(Traffic::Ingest { records: 1 }, 0);
        assert_eq!(first, again);
        assert!(first.label.starts_with("tecton profile: "));
    }

    #[test]
    fn traffic_counts_records_and_rows() {
        let ingest = serde_json::json!({"records": {"a": [{}, {}], "b": [{}]}});
        assert_eq!(Traffic::of_ingest(&ingest), Traffic::Ingest { records: 3 });
        let batch = serde_json::json!({"params": {"requestData": [{}, {}, {}, {}]}});
        assert_eq!(Traffic::of_serving(&batch), Traffic::Serving { rows: 4 });
        let one = serde_json::json!({"params": {"joinKeyMap": {}}});
        assert_eq!(Traffic::of_serving(&one), Traffic::Serving { rows: 1 });
    }

    #[test]
    fn profile_files_fill_in_defaults_and_refuse_nonsense() {
        let p = TectonProfile::from_toml("seed = 9\nserving_capacity_qps = 50.0\n").unwrap();
        assert_eq!(p.seed, 9);
        assert_eq!(p.serving_capacity_qps, 50.0);
        assert_eq!(p.ingest_one_p50_ms, d::INGEST_ONE_P50_MS);
        assert!(TectonProfile::from_toml("ingest_one_p99_ms = 10.0").is_err());
        assert!(TectonProfile::from_toml("serving_capacity_qps = 0.0").is_err());
        assert!(TectonProfile::from_toml("nope = 1").is_err());
    }
}
