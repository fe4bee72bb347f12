//! Load-run results: the data contract between the load generator (which fills these types) and
//! the renderers (HTML, Markdown, JSON). The JSON form of [`LoadReport`] is a published contract
//! that external checks read; change it only with a `schema_version` bump.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Version of the JSON form of [`LoadReport`].
pub const LOAD_SCHEMA_VERSION: u32 = 1;

/// How events reach the features under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pattern {
    /// Batches of records pushed to the Stream Ingest API (`/ingest`).
    Push,
    /// Records produced to a stream source's topic and materialized by micro-batches.
    Kafka,
    /// Records fed to the user's own sink command (sink protocol v1).
    Sink,
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencyMs {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Largest value seen.
    pub max: f64,
}

/// Freshness percentiles in milliseconds: from an event's send to its being servable.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct FreshnessMs {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest value seen.
    pub max: f64,
}

/// One second (or one interval) of a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IntervalStats {
    /// Seconds since the run started, at the interval's start.
    pub t_s: f64,
    /// Records sent in the interval.
    pub records_sent: u64,
    /// Records acknowledged in the interval.
    pub records_acknowledged: u64,
    /// Failed requests in the interval.
    pub errors: u64,
    /// Corrected latency p99 of the requests completed in the interval, in milliseconds.
    pub latency_p99_ms: f64,
}

/// The measurements of one pattern at one offered rate.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunPoint {
    /// How the records were delivered.
    pub pattern: Option<Pattern>,
    /// Offered rate in records per second (what the plan asked for).
    pub offered_rate: f64,
    /// Achieved rate in records per second (acknowledged records over the run's duration).
    pub achieved_rate: f64,
    /// Length of the measured run, in seconds.
    pub duration_s: f64,
    /// Requests sent (push and kafka produce calls; sink: write requests seen by the mock).
    pub requests: u64,
    /// Records the generator sent.
    pub records_sent: u64,
    /// Records acknowledged (a 200 from the mock, or an appended offset).
    pub records_acknowledged: u64,
    /// Failed requests by cause: an HTTP status (`"429"`, `"503"`) or a kind (`"timeout"`,
    /// `"connect"`, `"reset"`).
    pub errors: BTreeMap<String, u64>,
    /// Sends that started later than their scheduled time (like k6's `dropped_iterations`).
    pub late_sends: u64,
    /// Latency measured from each request's intended start (coordinated omission corrected).
    pub latency_ms: LatencyMs,
    /// Latency measured from each request's actual start (the uncorrected view).
    pub latency_uncorrected_ms: LatencyMs,
    /// Send-to-servable time; `None` when the run could not observe it.
    pub freshness_ms: Option<FreshnessMs>,
    /// Per-interval statistics, oldest first.
    pub intervals: Vec<IntervalStats>,
}

/// A load run or sweep: one or more [`RunPoint`]s and how they were made.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LoadReport {
    /// [`LOAD_SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Version of the tool that made the report.
    pub tool_version: String,
    /// The seed that drove every random choice of the run.
    pub seed: u64,
    /// The mock's latency and capacity profile (`raw` or `tecton`).
    pub profile: String,
    /// When the run started, RFC 3339 UTC.
    pub started_at: String,
    /// One point per (pattern, rate), in the order they ran.
    pub points: Vec<RunPoint>,
}
