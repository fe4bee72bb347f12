//! When each logged record reached the online store.
//!
//! The online value at a point `t` is what the feature server answered at `t`, so it may only
//! see the records that had *arrived* by `t`. The offline log keeps every record with its push
//! order (`seq`), its event time and the mock time it was ingested at; an [`Arrival`] rule turns
//! that into one arrival time per record.

use std::collections::HashMap;

use crate::schema::{format_rfc3339, parse_timestamp, Value};
use crate::serving::ServingError;
use crate::state::MockState;

/// How the consistency check decides when each record arrived.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Arrival {
    /// At its event time, or at the previous record's arrival when that is later: records are
    /// pushed in order, so one pushed after a newer event arrives after it (late).
    #[default]
    EventTime,
    /// At the mock time the ingest request was acknowledged (meaningful for a running mock whose
    /// clock moved while records were pushed).
    Ingestion,
    /// At the time in this field of each record: a `Timestamp` field of the push source, or a
    /// `String` field holding an ISO-8601 time.
    Field(String),
    /// At the given times, by record sequence number (the `seq` of the offline log); used when
    /// the arrival column is not part of the source's schema and was taken off before loading.
    Times(HashMap<u64, i64>),
}

impl Arrival {
    /// How the rule reads in a report.
    pub(crate) fn describe(&self) -> String {
        match self {
            Arrival::EventTime => {
                "event time, or the previous record's arrival when that is later".into()
            }
            Arrival::Ingestion => "the mock time each record was ingested".into(),
            Arrival::Field(name) => format!("the record's `{name}` field"),
            Arrival::Times(_) => "the given arrival column".into(),
        }
    }
}

/// One record of the offline log with its arrival time.
#[derive(Debug, Clone)]
pub(super) struct Logged {
    /// The push source.
    pub source: usize,
    /// Push order (global across sources).
    pub seq: u64,
    /// Event time.
    pub ts: i64,
    /// When it reached the online store.
    pub arrival: i64,
    /// Field values in source-schema order.
    pub values: Vec<Value>,
}

/// The records of `sources` in the order the online store applied them: by arrival time, then
/// push order.
pub(super) fn arrivals(
    state: &MockState,
    sources: &[usize],
    rule: &Arrival,
) -> Result<Vec<Logged>, ServingError> {
    let mut rows: Vec<(usize, crate::store::OfflineRow)> = Vec::new();
    for &s in sources {
        let logged = state
            .offline
            .rows(s)
            .map_err(|e| ServingError::Internal(e.to_string()))?;
        rows.extend(logged.into_iter().map(|r| (s, r)));
    }
    rows.sort_by_key(|(_, r)| r.seq);
    let mut out = Vec::with_capacity(rows.len());
    let mut previous = i64::MIN;
    for (source, row) in rows {
        let arrival = match rule {
            Arrival::EventTime => row.ts.max(previous),
            Arrival::Ingestion => row.ingested_at,
            Arrival::Field(name) => field_time(state, source, &row, name)?,
            Arrival::Times(times) => *times.get(&row.seq).ok_or_else(|| {
                ServingError::invalid(format!(
                    "no arrival time for record {} (event time {})",
                    row.seq,
                    format_rfc3339(row.ts)
                ))
            })?,
        };
        previous = arrival;
        out.push(Logged {
            source,
            seq: row.seq,
            ts: row.ts,
            arrival,
            values: row.values,
        });
    }
    out.sort_by_key(|l| (l.arrival, l.seq));
    Ok(out)
}

fn field_time(
    state: &MockState,
    source: usize,
    row: &crate::store::OfflineRow,
    name: &str,
) -> Result<i64, ServingError> {
    let push = &state.repo.push_sources[source];
    let col = push.schema.index_of(name).ok_or_else(|| {
        ServingError::invalid(format!(
            "arrival field `{name}`: push source `{}` has no such field",
            push.name
        ))
    })?;
    let bad = |what: &str| {
        ServingError::invalid(format!(
            "arrival field `{name}` of record {} (event time {}) {what}; expected a timestamp",
            row.seq,
            format_rfc3339(row.ts)
        ))
    };
    match &row.values[col] {
        Value::Timestamp(ns) => Ok(*ns),
        Value::String(s) => parse_timestamp(s).map_err(|e| bad(&format!("is invalid: {e}"))),
        Value::Null => Err(bad("is null")),
        _ => Err(bad("is not a time")),
    }
}
