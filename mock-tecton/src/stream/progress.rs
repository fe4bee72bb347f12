//! What the engine reports about each micro-batch, in the shape of Spark's
//! `StreamingQueryProgress` JSON, and freshness: from a record's production to its being servable.

use std::collections::VecDeque;

use hdrhistogram::Histogram;
use serde_json::{json, Value as Json};

use super::microbatch::{ms, OperatorStats};

/// Micro-batch progress entries kept per query (Spark keeps 100 by default too).
pub(crate) const PROGRESS_KEPT: usize = 100;

/// The progress of one micro-batch.
#[derive(Debug, Clone, Default)]
pub(crate) struct BatchProgress {
    /// The micro-batch id (0-based per query).
    pub batch_id: u64,
    /// When the micro-batch started (ns).
    pub started_at: i64,
    /// Rows read.
    pub num_input_rows: u64,
    /// Rows read per second since the previous micro-batch started.
    pub input_rows_per_second: Option<f64>,
    /// Rows read per second of this micro-batch's duration.
    pub processed_rows_per_second: Option<f64>,
    /// From the start until the rows were servable (processing plus `batch_overhead`), ms.
    pub duration_ms: u64,
    /// The watermark in force for the micro-batch.
    pub watermark: Option<i64>,
    /// Event-time min, max, mean.
    pub event_time: Option<(i64, i64, i64)>,
    /// The aggregation state store.
    pub aggregation: Option<OperatorStats>,
    /// The deduplication state store.
    pub dedup: Option<OperatorStats>,
    /// First offset read per partition.
    pub start_offsets: Vec<u64>,
    /// Offset after the last read per partition.
    pub end_offsets: Vec<u64>,
    /// Rows written to the online store.
    pub num_output_rows: u64,
    /// Dropped rows by reason: late, duplicate, invalid.
    pub dropped: [u64; 3],
}

impl BatchProgress {
    /// Spark's `StreamingQueryProgress` JSON for this micro-batch of query `name` on `topic`.
    pub(crate) fn to_json(&self, id: &str, name: &str, topic: &str, view: &str) -> Json {
        let offsets = |o: &[u64]| json!({ topic: o.iter().enumerate().map(|(p, v)| (p.to_string(), json!(v))).collect::<serde_json::Map<_, _>>() });
        let mut event_time = serde_json::Map::new();
        if let Some((min, max, avg)) = self.event_time {
            event_time.insert("avg".into(), json!(ms(avg)));
            event_time.insert("max".into(), json!(ms(max)));
            event_time.insert("min".into(), json!(ms(min)));
        }
        if let Some(w) = self.watermark {
            event_time.insert("watermark".into(), json!(ms(w)));
        }
        let mut operators = Vec::new();
        if let Some(s) = self.aggregation {
            operators.push(operator("stateStoreSave", s));
        }
        if let Some(s) = self.dedup {
            operators.push(operator("dedupe", s));
        }
        json!({
            "id": id,
            "runId": id,
            "name": name,
            "timestamp": ms(self.started_at),
            "batchId": self.batch_id,
            "numInputRows": self.num_input_rows,
            "inputRowsPerSecond": self.input_rows_per_second,
            "processedRowsPerSecond": self.processed_rows_per_second,
            "durationMs": {"addBatch": self.duration_ms, "triggerExecution": self.duration_ms},
            "eventTime": event_time,
            "stateOperators": operators,
            "sources": [{
                "description": format!("KafkaV2[Subscribe[{topic}]]"),
                "startOffset": offsets(&self.start_offsets),
                "endOffset": offsets(&self.end_offsets),
                "numInputRows": self.num_input_rows,
                "inputRowsPerSecond": self.input_rows_per_second,
                "processedRowsPerSecond": self.processed_rows_per_second,
            }],
            "sink": {"description": format!("TectonOnlineStore[{view}]"), "numOutputRows": self.num_output_rows},
            "droppedRecords": {"late": self.dropped[0], "duplicate": self.dropped[1], "invalid": self.dropped[2]},
        })
    }
}

fn operator(name: &str, s: OperatorStats) -> Json {
    json!({
        "operatorName": name,
        "numRowsTotal": s.num_rows_total,
        "numRowsUpdated": s.num_rows_updated,
        "numRowsRemoved": s.num_rows_removed,
        "numRowsDroppedByWatermark": s.num_rows_dropped_by_watermark,
    })
}

/// The last [`PROGRESS_KEPT`] micro-batches of a query.
#[derive(Debug, Clone, Default)]
pub(crate) struct RecentProgress(VecDeque<BatchProgress>);

impl RecentProgress {
    /// Adds a micro-batch, letting the oldest go.
    pub(crate) fn push(&mut self, p: BatchProgress) {
        if self.0.len() == PROGRESS_KEPT {
            self.0.pop_front();
        }
        self.0.push_back(p);
    }

    /// Oldest first.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &BatchProgress> {
        self.0.iter()
    }

    /// The newest.
    pub(crate) fn last(&self) -> Option<&BatchProgress> {
        self.0.back()
    }
}

/// Time from a record's production to its being servable, in microseconds.
#[derive(Debug, Clone)]
pub struct Freshness(Histogram<u64>, u64);

impl Default for Freshness {
    fn default() -> Self {
        // Three significant digits, auto-resizing: `new` fails only above five digits.
        Freshness(
            Histogram::new(3).expect("3 significant digits are supported"),
            0,
        )
    }
}

impl Freshness {
    /// Records one event: servable at `servable_at`, produced at `produced_at` (ns). A producer
    /// clock ahead of the mock's counts as 0.
    pub fn record(&mut self, servable_at: i64, produced_at: i64) -> f64 {
        let us = u64::try_from(servable_at.saturating_sub(produced_at).max(0) / 1_000).unwrap_or(0);
        self.1 = self.1.max(us);
        if self.0.record(us).is_err() {
            self.0.saturating_record(us);
        }
        us as f64 / 1_000.0
    }

    /// Adds another histogram's counts.
    pub fn merge(&mut self, other: &Freshness) {
        let _ = self.0.add(&other.0);
        self.1 = self.1.max(other.1);
    }

    /// Events recorded.
    pub fn count(&self) -> u64 {
        self.0.len()
    }

    /// `{"count","p50","p90","p99","max"}` in milliseconds.
    pub fn to_json(&self) -> Json {
        let at = |q: f64| {
            if self.0.is_empty() {
                Json::Null
            } else {
                json!(self.0.value_at_quantile(q) as f64 / 1_000.0)
            }
        };
        json!({
            "count": self.0.len(),
            "p50": at(0.5),
            "p90": at(0.9),
            "p99": at(0.99),
            // The exact maximum, not the histogram's bucket bound.
            "max": if self.0.is_empty() { Json::Null } else { json!(self.1 as f64 / 1_000.0) },
        })
    }

    /// The value at quantile `q` in milliseconds, if any event was recorded.
    pub fn quantile_ms(&self, q: f64) -> Option<f64> {
        (!self.0.is_empty()).then(|| self.0.value_at_quantile(q) as f64 / 1_000.0)
    }
}
