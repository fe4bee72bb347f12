//! A parametric cost model: what an hour of sustained load at a given rate costs through each
//! pattern. Every price is a parameter; the defaults are illustrative examples, not quotes,
//! and the reports say so next to every figure.
//!
//! - push (and sink, which pushes): `requests/h × price per request + records/h × online write`;
//!   requests per hour come from the measured records per request (the batch size).
//! - kafka: `stream cluster per hour + records/h × stream price per record
//!   + ceil(rate / records per Spark cluster) × Spark cluster-hour price + records/h × online write`.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::{LoadReport, Pattern, RunPoint};

/// Prices and capacities of the cost model. [`Default`] holds EXAMPLE values.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CostModel {
    /// USD per million Stream Ingest API requests (push, sink).
    pub push_usd_per_million_requests: f64,
    /// USD per million records written to the online store (both patterns).
    pub online_write_usd_per_million_records: f64,
    /// USD per hour for the Kafka/Kinesis stream itself (brokers or shards), flat.
    pub stream_usd_per_hour: f64,
    /// USD per million records through the stream (throughput and storage).
    pub stream_usd_per_million_records: f64,
    /// USD per Spark cluster-hour (instances and platform fee) for the streaming job.
    pub spark_cluster_usd_per_hour: f64,
    /// Records per second one Spark streaming cluster materializes; clusters scale in whole
    /// units (`ceil(rate / this)`).
    pub spark_records_per_s_per_cluster: f64,
    /// Records per push request when a point measured none (no requests).
    pub default_records_per_request: f64,
}

impl Default for CostModel {
    fn default() -> Self {
        // EXAMPLE values only, chosen to be plausible orders of magnitude.
        CostModel {
            push_usd_per_million_requests: 1.00,
            online_write_usd_per_million_records: 1.25,
            stream_usd_per_hour: 0.60,
            stream_usd_per_million_records: 0.05,
            spark_cluster_usd_per_hour: 3.00,
            spark_records_per_s_per_cluster: 20_000.0,
            default_records_per_request: 1.0,
        }
    }
}

/// A `key=value` setting the cost model did not accept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CostParseError(pub String);

impl fmt::Display for CostParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CostParseError {}

/// The parameter names accepted by [`CostModel::set`], in the order reports list them.
pub const COST_KEYS: [&str; 7] = [
    "push_usd_per_million_requests",
    "online_write_usd_per_million_records",
    "stream_usd_per_hour",
    "stream_usd_per_million_records",
    "spark_cluster_usd_per_hour",
    "spark_records_per_s_per_cluster",
    "default_records_per_request",
];

impl CostModel {
    /// Applies one `key=value` setting (e.g. `spark_cluster_usd_per_hour=4.2`), as a CLI's
    /// repeated `--cost` option would.
    pub fn set(&mut self, setting: &str) -> Result<(), CostParseError> {
        let (key, value) = setting.split_once('=').ok_or_else(|| {
            CostParseError(format!("bad cost setting `{setting}`: write key=value"))
        })?;
        let v: f64 = value.trim().parse().map_err(|_| {
            CostParseError(format!(
                "bad cost setting `{setting}`: `{value}` is not a number"
            ))
        })?;
        if !v.is_finite() || v < 0.0 {
            return Err(CostParseError(format!(
                "bad cost setting `{setting}`: must be a finite number >= 0"
            )));
        }
        let key = key.trim();
        let slot = match key {
            "push_usd_per_million_requests" => &mut self.push_usd_per_million_requests,
            "online_write_usd_per_million_records" => {
                &mut self.online_write_usd_per_million_records
            }
            "stream_usd_per_hour" => &mut self.stream_usd_per_hour,
            "stream_usd_per_million_records" => &mut self.stream_usd_per_million_records,
            "spark_cluster_usd_per_hour" => &mut self.spark_cluster_usd_per_hour,
            "spark_records_per_s_per_cluster" | "default_records_per_request" if v == 0.0 => {
                return Err(CostParseError(format!(
                    "bad cost setting `{setting}`: must be greater than 0"
                )))
            }
            "spark_records_per_s_per_cluster" => &mut self.spark_records_per_s_per_cluster,
            "default_records_per_request" => &mut self.default_records_per_request,
            _ => {
                return Err(CostParseError(format!(
                    "unknown cost parameter `{key}`; known: {}",
                    COST_KEYS.join(", ")
                )))
            }
        };
        *slot = v;
        Ok(())
    }

    /// The parameters as `(key, value)` pairs, for the reports' cost tables.
    pub(crate) fn parameters(&self) -> [(&'static str, f64); 7] {
        [
            (COST_KEYS[0], self.push_usd_per_million_requests),
            (COST_KEYS[1], self.online_write_usd_per_million_records),
            (COST_KEYS[2], self.stream_usd_per_hour),
            (COST_KEYS[3], self.stream_usd_per_million_records),
            (COST_KEYS[4], self.spark_cluster_usd_per_hour),
            (COST_KEYS[5], self.spark_records_per_s_per_cluster),
            (COST_KEYS[6], self.default_records_per_request),
        ]
    }

    /// Spark clusters needed for `rate` records per second (0 for no load).
    pub(crate) fn spark_clusters(&self, rate: f64) -> f64 {
        if rate <= 0.0 {
            0.0
        } else {
            (rate / self.spark_records_per_s_per_cluster.max(f64::MIN_POSITIVE)).ceil()
        }
    }

    /// USD per hour of pushing `rate` records/s in requests of `records_per_request`.
    pub(crate) fn push_usd_per_hour(&self, rate: f64, records_per_request: f64) -> f64 {
        let records = rate * 3600.0;
        let requests = records / records_per_request.max(f64::MIN_POSITIVE);
        requests * self.push_usd_per_million_requests / 1e6
            + records * self.online_write_usd_per_million_records / 1e6
    }

    /// USD per hour of streaming `rate` records/s through Kafka + Spark.
    pub(crate) fn kafka_usd_per_hour(&self, rate: f64) -> f64 {
        let records = rate * 3600.0;
        self.stream_usd_per_hour
            + records * self.stream_usd_per_million_records / 1e6
            + self.spark_clusters(rate) * self.spark_cluster_usd_per_hour
            + records * self.online_write_usd_per_million_records / 1e6
    }

    /// The cost of sustaining `point`'s offered rate for an hour through its pattern.
    pub(crate) fn point_cost(&self, point: &RunPoint) -> PointCost {
        let rate = point.offered_rate;
        let rpr = point
            .records_per_request()
            .unwrap_or(self.default_records_per_request);
        let records_per_hour = rate * 3600.0;
        let (requests_per_hour, spark, usd) = match point.pattern {
            Some(Pattern::Kafka) => (
                0.0,
                self.spark_clusters(rate),
                self.kafka_usd_per_hour(rate),
            ),
            // A sink command writes through the Stream Ingest API: it costs as push.
            Some(Pattern::Push | Pattern::Sink) | None => (
                records_per_hour / rpr,
                0.0,
                self.push_usd_per_hour(rate, rpr),
            ),
        };
        PointCost {
            pattern: point.pattern,
            offered_rate: rate,
            records_per_request: rpr,
            requests_per_hour,
            spark_cluster_hours_per_hour: spark,
            usd_per_hour: usd,
            usd_per_million_records: if records_per_hour > 0.0 {
                usd / records_per_hour * 1e6
            } else {
                0.0
            },
        }
    }

    /// The lowest rate (records/s) at which Kafka + Spark costs no more per hour than pushing
    /// in requests of `records_per_request`; `None` when push stays cheaper at every rate.
    ///
    /// Kafka's cost is linear in the rate between Spark cluster steps, push's is linear through
    /// zero, so the crossover is solved exactly, one cluster step at a time.
    pub(crate) fn cost_crossover(&self, records_per_request: f64) -> Option<f64> {
        let per_record_push = (self.push_usd_per_million_requests
            / records_per_request.max(f64::MIN_POSITIVE)
            + self.online_write_usd_per_million_records)
            * 3600.0
            / 1e6;
        let per_record_kafka = (self.stream_usd_per_million_records
            + self.online_write_usd_per_million_records)
            * 3600.0
            / 1e6;
        let slope = per_record_push - per_record_kafka;
        if slope <= 0.0 {
            return None;
        }
        let cap = self.spark_records_per_s_per_cluster.max(f64::MIN_POSITIVE);
        // Beyond a million cluster steps the answer is of no practical use.
        for n in 1..=1_000_000u64 {
            let (lo, hi) = ((n - 1) as f64 * cap, n as f64 * cap);
            let fixed = self.stream_usd_per_hour + n as f64 * self.spark_cluster_usd_per_hour;
            let r = fixed / slope;
            if r <= hi {
                // Inside this step, or already past at the step's start.
                return Some(r.max(lo));
            }
        }
        None
    }
}

/// The hourly cost of one run point's offered rate through its pattern.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PointCost {
    /// The point's pattern.
    pub pattern: Option<Pattern>,
    /// The point's offered rate, records per second.
    pub offered_rate: f64,
    /// Records per request used (measured, or the model's default).
    pub records_per_request: f64,
    /// Ingest requests per hour (0 for kafka).
    pub requests_per_hour: f64,
    /// Spark cluster-hours per hour of load (0 for push and sink).
    pub spark_cluster_hours_per_hour: f64,
    /// USD per hour of sustained load.
    pub usd_per_hour: f64,
    /// USD per million records.
    pub usd_per_million_records: f64,
}

/// The cost of every point of `report`.
pub fn costs(report: &LoadReport, model: &CostModel) -> Vec<PointCost> {
    report.points.iter().map(|p| model.point_cost(p)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::sample::sweep;

    #[test]
    fn the_cost_crossover_is_where_both_patterns_cost_the_same() {
        let m = CostModel::default();
        let r = m.cost_crossover(5.0).unwrap_or_default();
        // (0.60 + 3.00) / ((1.00 / 5 + 1.25 - 0.05 - 1.25) * 3600 / 1e6)
        assert!((r - 6666.67).abs() < 0.01, "{r}");
        assert!((m.kafka_usd_per_hour(r) - m.push_usd_per_hour(r, 5.0)).abs() < 1e-9);
        assert!(m.kafka_usd_per_hour(r * 0.99) > m.push_usd_per_hour(r * 0.99, 5.0));
        // Bigger batches make push cheaper per record: the crossover moves up, or vanishes.
        assert!(m.cost_crossover(10.0).unwrap_or(f64::INFINITY) > r);
        assert_eq!(m.cost_crossover(1000.0), None);
    }

    #[test]
    fn a_crossover_past_a_cluster_step_pays_for_the_next_cluster() {
        let mut m = CostModel::default();
        m.set("spark_records_per_s_per_cluster=1000")
            .unwrap_or_default();
        // One cluster would break even at 3.60 / 0.00342 = 1,053/s, beyond its 1,000/s; two
        // clusters at 6.60 / 0.00342 = 1,930/s, within their 2,000/s.
        let r = m.cost_crossover(1.0).unwrap_or_default();
        assert!((r - 1929.82).abs() < 0.01, "{r}");
        assert_eq!(m.spark_clusters(r), 2.0);
        assert!(m.kafka_usd_per_hour(r) <= m.push_usd_per_hour(r, 1.0) + 1e-9);
    }

    #[test]
    fn point_costs_use_the_measured_batch_size() {
        let r = sweep();
        let c = costs(&r, &CostModel::default());
        // push at 1,000/s in batches of 5: 720,000 requests/h, $0.72 + $4.50 of writes.
        assert_eq!(c[2].requests_per_hour, 720_000.0);
        assert!((c[2].usd_per_hour - 5.22).abs() < 1e-9);
        // kafka at 10,000/s: one cluster, $0.60 + $1.80 + $3.00 + $45.00.
        assert_eq!(c[11].spark_cluster_hours_per_hour, 1.0);
        assert!((c[11].usd_per_hour - 50.40).abs() < 1e-9);
    }

    #[test]
    fn settings_are_checked() {
        let mut m = CostModel::default();
        assert!(m.set("spark_cluster_usd_per_hour = 4.5").is_ok());
        assert_eq!(m.spark_cluster_usd_per_hour, 4.5);
        let err = |s: &str| {
            CostModel::default()
                .set(s)
                .err()
                .map(|e| e.0)
                .unwrap_or_default()
        };
        assert!(err("spark=1").contains("unknown cost parameter `spark`"));
        assert!(err("stream_usd_per_hour").contains("key=value"));
        assert!(err("stream_usd_per_hour=-1").contains(">= 0"));
        assert!(err("stream_usd_per_hour=abc").contains("not a number"));
        assert!(err("spark_records_per_s_per_cluster=0").contains("greater than 0"));
    }
}
