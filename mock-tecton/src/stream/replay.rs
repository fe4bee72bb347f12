//! Micro-batches read from a file, run through a stream source's queries exactly as the live
//! engine runs them, with every batch's watermark, drops and writes printed.
//!
//! Input, JSON Lines: `{"batch": <int>, "record": {...}}`, or `{"batch": <int>}` alone to declare an
//! empty micro-batch. Each distinct label is one micro-batch, run in ascending label order; a
//! batch's records keep their file order. `seq` is the 0-based index of a record among the record
//! lines of the file.
//!
//! Output, one JSON line per micro-batch: `batch_id`, `input_batch`, `watermark` (in force for the
//! batch), `watermark_after` (for the next), `num_input_rows`, `dropped` (`seq` and `reason`:
//! `late`, `duplicate` or `invalid`), and `writes`: the TIME_INTERVAL rows written in the batch
//! with their running totals. Times are RFC 3339 UTC with milliseconds; without a watermark
//! (threshold 0) both watermark fields are `null`.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value as Json};

use super::microbatch::{ms, DropReason, Query, QueryKind, QuerySpec};
use super::topic::{Decoded, Topic};
use super::watermark::SparkVersion;
use crate::repo::Repository;

/// One micro-batch of a replay input: its label and its records with their `seq`.
#[derive(Debug, Clone, PartialEq)]
pub struct InputBatch {
    /// The label in the file.
    pub label: i64,
    /// `(seq, record)` in file order.
    pub records: Vec<(usize, Json)>,
}

/// A line of replay input that is not `{"batch": <int>, "record": {...}}`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct InputError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong with it.
    pub message: String,
}

/// Why a replay could not run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    /// The repository has no stream source of that name.
    #[error("no stream source named `{name}` (the repository has: {known})")]
    UnknownSource {
        /// The name asked for.
        name: String,
        /// The stream sources it has, comma-separated, or `none`.
        known: String,
    },
    /// No feature view reads the source, so there is no query to run.
    #[error("no feature view reads stream source `{0}`")]
    NoQuery(String),
}

/// Reads replay input; errors name the line.
pub fn parse_input(text: &str) -> Result<Vec<InputBatch>, InputError> {
    let mut batches: BTreeMap<i64, Vec<(usize, Json)>> = BTreeMap::new();
    let mut seq = 0;
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let at = |message: String| InputError {
            line: n + 1,
            message,
        };
        let value = crate::json::parse_strict(line.as_bytes()).map_err(at)?;
        let Json::Object(mut obj) = value else {
            return Err(at(
                "expected an object {\"batch\": <int>, \"record\": {...}}".into(),
            ));
        };
        let label = obj
            .remove("batch")
            .and_then(|b| b.as_i64())
            .ok_or_else(|| at("`batch` must be an integer".into()))?;
        let record = obj.remove("record");
        if let Some(extra) = obj.keys().next() {
            return Err(at(format!(
                "unknown field `{extra}`; expected batch and record"
            )));
        }
        let entry = batches.entry(label).or_default();
        if let Some(record) = record {
            entry.push((seq, record));
            seq += 1;
        }
    }
    Ok(batches
        .into_iter()
        .map(|(label, records)| InputBatch { label, records })
        .collect())
}

/// Runs `batches` through every query of stream source `source` and returns one output line per
/// micro-batch.
pub fn replay(
    repo: &Repository,
    source: &str,
    batches: &[InputBatch],
    spark: SparkVersion,
) -> Result<Vec<Json>, ReplayError> {
    let index = repo
        .stream_sources
        .iter()
        .position(|s| s.name == source)
        .ok_or_else(|| {
            let names: Vec<&str> = repo
                .stream_sources
                .iter()
                .map(|s| s.name.as_str())
                .collect();
            ReplayError::UnknownSource {
                name: source.to_owned(),
                known: if names.is_empty() {
                    "none".to_owned()
                } else {
                    names.join(", ")
                },
            }
        })?;
    let s = &repo.stream_sources[index];
    let mut queries: Vec<Query> = QuerySpec::of_source(repo, index)
        .into_iter()
        .map(Query::new)
        .collect();
    if queries.is_empty() {
        return Err(ReplayError::NoQuery(source.to_owned()));
    }
    let decoder = Topic::new(&s.topic, vec![(index, s.clone())], Vec::new(), 1);
    let mut out = Vec::with_capacity(batches.len());
    for (batch_id, batch) in batches.iter().enumerate() {
        let decoded: Vec<Decoded> = batch
            .records
            .iter()
            .map(|(_, r)| {
                let bytes = serde_json::to_vec(r).unwrap_or_default();
                decoder
                    .decode(&bytes)
                    .first()
                    .cloned()
                    .unwrap_or(Err(String::new()))
            })
            .collect();
        let rows: Vec<&Decoded> = decoded.iter().collect();
        let mut dropped: BTreeMap<usize, DropReason> = BTreeMap::new();
        let mut writes = Vec::new();
        let mut watermarks = None;
        for q in &mut queries {
            let outcome = q.run_batch(&rows, spark);
            watermarks.get_or_insert((outcome.watermark, outcome.watermark_after));
            for (i, reason, _) in &outcome.dropped {
                let seq = batch.records[*i].0;
                // A row late for one view and accepted by another is listed as late.
                let slot = dropped.entry(seq).or_insert(*reason);
                *slot = (*slot).min(*reason);
            }
            if let QueryKind::TimeInterval { partials, .. } = &q.spec.kind {
                for w in outcome.tile_writes {
                    let values: Map<String, Json> = partials
                        .iter()
                        .zip(&w.partials)
                        .map(|(c, v)| (c.name.clone(), v.to_plain_json()))
                        .collect();
                    writes.push(json!({
                        "view": q.spec.view_name,
                        "join_keys": w.key.to_json(&q.spec.key_names),
                        "tile_start": ms(w.tile_start),
                        "tile_end": ms(w.tile_end),
                        "partials": values,
                    }));
                }
            }
        }
        let (watermark, after) = watermarks.unwrap_or((None, None));
        out.push(json!({
            "batch_id": batch_id,
            "input_batch": batch.label,
            "watermark": watermark.map(ms),
            "watermark_after": after.map(ms),
            "num_input_rows": batch.records.len(),
            "dropped": dropped.into_iter().map(|(seq, r)| json!({"seq": seq, "reason": r.as_str()})).collect::<Vec<_>>(),
            "writes": writes,
        }));
    }
    Ok(out)
}
