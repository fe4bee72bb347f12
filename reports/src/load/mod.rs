//! Load-run results: the data contract between the load generator (which fills these types) and
//! the renderers (HTML, Markdown, JSON). The JSON form of [`LoadReport`] is a published contract
//! that external checks read; change it only with a `schema_version` bump.
//!
//! [`write_all`] writes the three report files of a run or sweep: `report.html` (one
//! self-contained page with inline SVG plots), `report.md` (for a pull request) and
//! `report.json` (this data plus the derived analysis, described by [`LOAD_REPORT_SCHEMA`]).

use std::collections::BTreeMap;
use std::io;
use std::path::Path;

use serde::{Deserialize, Serialize};

mod compare;
mod cost;
mod format;
mod html;
mod json;
mod markdown;
mod recommend;
mod schema;
mod svg;
mod threshold;

pub use compare::{
    compare, compare_with, Comparison, MetricDelta, PointDelta, Tolerance, UnmatchedPoint,
};
pub use cost::{costs, CostModel, CostParseError, PointCost, COST_KEYS};
pub(crate) use format::{fmt_int, fmt_ms, fmt_pct, fmt_usd};
pub use json::{parse_report, read_report, render_json, ReadError};
pub use recommend::{
    recommend, Band, Choice, Criteria, CriterionError, Crossover, Recommendation, CRITERIA_KEYS,
};
pub use schema::LOAD_REPORT_SCHEMA;
pub use threshold::{
    evaluate, evaluate_with, Metric, Observation, Op, Stat, Threshold, ThresholdError,
    ThresholdResult, Unit,
};

/// Version of the JSON form of [`LoadReport`].
pub const LOAD_SCHEMA_VERSION: u32 = 2;

/// Older versions [`read_report`] still reads for `--compare`: their points have the same
/// fields (version 2 added settings to `analysis`, which a baseline does not need).
pub(crate) const LOAD_SCHEMA_VERSIONS_READ: [u32; 2] = [1, 2];

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

impl RunPoint {
    /// Failed requests, all causes (`None`) or one (`Some("429")`).
    pub(crate) fn error_count(&self, cause: Option<&str>) -> u64 {
        match cause {
            None => self.errors.values().sum(),
            Some(c) => self.errors.get(c).copied().unwrap_or(0),
        }
    }

    /// Failed requests over requests (0 when no request was sent).
    pub(crate) fn error_rate(&self, cause: Option<&str>) -> f64 {
        ratio(self.error_count(cause) as f64, self.requests as f64)
    }

    /// Achieved rate over offered rate (0 when nothing was offered).
    pub(crate) fn achieved_ratio(&self) -> f64 {
        ratio(self.achieved_rate, self.offered_rate)
    }

    /// Late sends over requests (0 when no request was sent).
    pub(crate) fn late_send_rate(&self) -> f64 {
        ratio(self.late_sends as f64, self.requests as f64)
    }

    /// Records per request (the mean batch size); `None` without requests.
    pub(crate) fn records_per_request(&self) -> Option<f64> {
        (self.requests > 0).then(|| self.records_sent as f64 / self.requests as f64)
    }
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        a / b
    } else {
        0.0
    }
}

/// The point of `report` with this pattern and offered rate.
pub(crate) fn find_point(
    report: &LoadReport,
    pattern: Option<Pattern>,
    offered_rate: f64,
) -> Option<&RunPoint> {
    report
        .points
        .iter()
        .find(|p| p.pattern == pattern && recommend::same_rate(p.offered_rate, offered_rate))
}

/// What the reports show beside the measurements. [`Default`]: no thresholds, no comparison,
/// the example cost model and the default criteria.
#[derive(Debug, Clone, Default)]
pub struct ReportOptions {
    /// Threshold verdicts, from [`evaluate`] or [`evaluate_with`].
    pub thresholds: Vec<ThresholdResult>,
    /// The comparison with a stored run, from [`compare`].
    pub comparison: Option<Comparison>,
    /// Prices and capacities for the cost table and the cost crossover.
    pub cost: CostModel,
    /// When a pattern is said to hold a rate, for the recommendation.
    pub criteria: Criteria,
    /// Cost model parameters the user set (the others are example defaults).
    pub cost_given: Vec<&'static str>,
    /// Criteria the user set (the others are defaults).
    pub criteria_given: Vec<&'static str>,
}

impl ReportOptions {
    /// Sets one cost model parameter (`key=value`) and remembers it was given, so the reports
    /// label it as the user's and not an example.
    pub fn set_cost(&mut self, setting: &str) -> Result<(), CostParseError> {
        self.cost.set(setting)?;
        let key = setting.split_once('=').map_or("", |(k, _)| k.trim());
        if let Some(k) = COST_KEYS.iter().find(|k| **k == key) {
            if !self.cost_given.contains(k) {
                self.cost_given.push(k);
            }
        }
        Ok(())
    }

    /// Sets one recommendation criterion (`key=value`, see [`Criteria::set`]) and remembers
    /// it was given.
    pub fn set_criterion(&mut self, setting: &str) -> Result<(), CriterionError> {
        let key = self.criteria.set(setting)?;
        if !self.criteria_given.contains(&key) {
            self.criteria_given.push(key);
        }
        Ok(())
    }

    /// Whether every cost parameter is an example default.
    pub(crate) fn prices_are_examples(&self) -> bool {
        self.cost_given.is_empty()
    }

    /// `example` or `given` for a cost parameter.
    pub(crate) fn cost_source(&self, key: &str) -> &'static str {
        if self.cost_given.contains(&key) {
            "given"
        } else {
            "example"
        }
    }

    /// `default` or `given` for a criterion.
    pub(crate) fn criterion_source(&self, key: &str) -> &'static str {
        if self.criteria_given.contains(&key) {
            "given"
        } else {
            "default"
        }
    }

    /// The criteria for people: `holds ≥ 99% of the rate (default) with ≤ 1% errors
    /// (default); p99 freshness target 1.00 s (given)`.
    pub fn criteria_sentence(&self) -> String {
        let c = &self.criteria;
        let target = c
            .freshness_target_ms
            .map_or_else(|| "none".to_owned(), fmt_ms);
        format!(
            "A pattern holds a rate when it achieves at least {} of it ({}) with at most {} \
             errors ({}); p99 freshness target: {} ({}).",
            fmt_pct(c.min_achieved_ratio),
            self.criterion_source(CRITERIA_KEYS[0]),
            fmt_pct(c.max_error_rate),
            self.criterion_source(CRITERIA_KEYS[1]),
            target,
            self.criterion_source(CRITERIA_KEYS[2]),
        )
    }

    /// How the reports name the prices: examples, the user's, or a mix.
    pub fn prices_label(&self) -> String {
        match self.cost_given.len() {
            0 => "EXAMPLE prices, not quotes".to_owned(),
            n if n == COST_KEYS.len() => "your prices".to_owned(),
            n => format!(
                "{n} of {} parameters given, the rest EXAMPLES",
                COST_KEYS.len()
            ),
        }
    }
    /// Whether every threshold passed (true without thresholds). A CLI exits non-zero
    /// otherwise.
    pub fn thresholds_passed(&self) -> bool {
        self.thresholds.iter().all(|t| t.passed)
    }
}

/// Renders `report.md`.
pub fn render_markdown(report: &LoadReport, opts: &ReportOptions) -> String {
    markdown::render(report, opts)
}

/// Renders `report.html`: one self-contained page, no scripts, no network.
pub fn render_html(report: &LoadReport, opts: &ReportOptions) -> String {
    html::render(report, opts)
}

/// Writes `report.html`, `report.md` and `report.json` into `dir` (created when missing).
pub fn write_all(dir: &Path, report: &LoadReport, opts: &ReportOptions) -> io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("report.html"), render_html(report, opts))?;
    std::fs::write(dir.join("report.md"), render_markdown(report, opts))?;
    std::fs::write(dir.join("report.json"), render_json(report, opts))?;
    Ok(())
}

#[cfg(test)]
pub(crate) mod sample {
    //! The handmade two-pattern sweep (`reports/tests/fixtures/two-pattern-sweep.json`):
    //! push and kafka at 100 to 10,000 records/s with the `tecton` profile, push saturating
    //! (429s, timeouts) from 5,000/s on.
    use super::*;

    pub(crate) const SWEEP_JSON: &str = include_str!("../../tests/fixtures/two-pattern-sweep.json");

    pub(crate) fn sweep() -> LoadReport {
        match parse_report(SWEEP_JSON) {
            Ok(r) => r,
            Err(e) => panic!("the sweep fixture must parse: {e}"),
        }
    }
}
