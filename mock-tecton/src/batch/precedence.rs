//! Batch precedence: what a batch materialization of `[start, end)` does to the stores.
//!
//! For every entity key in a job's output, the job's rows replace whatever the stream (or the
//! Stream Ingest API, or an earlier job) wrote for that key in `[start, end)`: online, the
//! key's events in the interval are swapped for the job's (an attribute view takes the job's
//! last row unless the stream already holds a newer one); offline, retrieval reads the job's
//! rows for that key and interval instead of the logged ones. Keys the job did not output keep
//! what they had ([`crate::decisions::BATCH_PRECEDENCE_PER_KEY`]).

use std::collections::HashMap;

use crate::schema::Value;
use crate::state::MockState;
use crate::store::{
    EntityKey, KeyPart, OfflineError, OfflineLog, OfflineRow, OnlineEntry, OnlineStore,
};

/// One materialized row of a feature view: event time, sequence number (ties), and the view's
/// inputs ([`crate::repo::FeatureView::input_columns`]).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct BatchEvent {
    /// Event time.
    pub ts: i64,
    /// Ingestion order among rows with the same time.
    pub seq: u64,
    /// The view's inputs.
    pub values: Vec<Value>,
}

/// What batch jobs have materialized for one feature view: per entity, the intervals where the
/// batch output takes precedence, and the batch rows. The mock's own copy keeps only the rows'
/// times (their values are in the offline store); [`read`] gives them whole.
#[derive(Debug, Clone, Default)]
pub(crate) struct Materialized {
    intervals: HashMap<EntityKey, Vec<(i64, i64)>>,
    rows: HashMap<EntityKey, Vec<BatchEvent>>,
}

impl Materialized {
    /// Whether a batch job's output governs `key` at event time `ts`: the logged row there is
    /// replaced by the batch rows.
    pub(crate) fn covers(&self, key: &EntityKey, ts: i64) -> bool {
        self.intervals
            .get(key)
            .is_some_and(|iv| iv.iter().any(|&(s, e)| s <= ts && ts < e))
    }

    /// Makes `events` the rows of `key` in `[start, end)`, replacing earlier batch rows there.
    pub(crate) fn replace(
        &mut self,
        key: &EntityKey,
        start: i64,
        end: i64,
        events: Vec<BatchEvent>,
    ) {
        let rows = self.rows.entry(key.clone()).or_default();
        rows.retain(|r| r.ts < start || r.ts >= end);
        rows.extend(events);
        rows.sort_by_key(|r| (r.ts, r.seq));
        let iv = self.intervals.entry(key.clone()).or_default();
        iv.push((start, end));
        // Merge overlapping or touching intervals, so lookups stay short.
        iv.sort_unstable();
        let mut merged: Vec<(i64, i64)> = Vec::with_capacity(iv.len());
        for &(s, e) in iv.iter() {
            match merged.last_mut() {
                Some(last) if s <= last.1 => last.1 = last.1.max(e),
                _ => merged.push((s, e)),
            }
        }
        *iv = merged;
    }

    /// Every batch row, per entity, in `(ts, seq)` order.
    pub(crate) fn rows(&self) -> impl Iterator<Item = (&EntityKey, &BatchEvent)> + '_ {
        self.rows
            .iter()
            .flat_map(|(k, rows)| rows.iter().map(move |r| (k, r)))
    }

    /// Entities with batch rows.
    pub(crate) fn entities(&self) -> usize {
        self.rows.values().filter(|r| !r.is_empty()).count()
    }

    /// Batch rows held.
    pub(crate) fn len(&self) -> usize {
        self.rows.values().map(Vec::len).sum()
    }

    /// Whether nothing is materialized.
    pub(crate) fn is_empty(&self) -> bool {
        self.intervals.is_empty()
    }
}

/// Appends one key's job output to the view's log in the offline store
/// ([`crate::store::OfflineLog::materialized_index`]): per row its join keys, inputs, event
/// time and the job's window; `_request` is the job's id, `_ingested_at` when it ran.
pub(crate) fn log(
    state: &MockState,
    view: usize,
    job: u64,
    key: &EntityKey,
    (start, end): (i64, i64),
    events: &[BatchEvent],
    now: i64,
) {
    let index = OfflineLog::materialized_index(&state.repo, view);
    for e in events {
        let mut values: Vec<Value> = key
            .0
            .iter()
            .map(|p| match p {
                KeyPart::Str(s) => Value::String(s.as_str().into()),
                KeyPart::Int(i) => Value::Int(*i),
            })
            .collect();
        values.extend(e.values.iter().cloned());
        values.extend([
            Value::Timestamp(e.ts),
            Value::Timestamp(start),
            Value::Timestamp(end),
        ]);
        state.offline.append(
            index,
            OfflineRow {
                seq: e.seq,
                request: job,
                ingested_at: now,
                ts: e.ts,
                values,
            },
        );
    }
}

/// One batch job's output for a view, read back from the offline store.
#[derive(Debug, Clone)]
pub(crate) struct LoggedJob {
    /// The job's id (jobs run in id order).
    pub id: u64,
    /// Mock time it ran (`_ingested_at` of its rows).
    pub ran_at: i64,
    /// The lowest sequence number of its rows: they are numbered when the job runs, from the
    /// sequence that numbers records as they are ingested.
    pub first_seq: u64,
    /// Per key in its output: the job's window and the key's rows in `(ts, seq)` order.
    pub keys: HashMap<EntityKey, ((i64, i64), Vec<BatchEvent>)>,
}

/// The batch jobs that wrote rows for `view`, read back from the offline store, in run order.
/// `None` when the view reads no batch source.
pub(crate) fn read_jobs(
    state: &MockState,
    view: usize,
) -> Result<Option<Vec<LoggedJob>>, OfflineError> {
    let Some(memory) = state.batch.materialized(view) else {
        return Ok(None);
    };
    if memory.is_empty() {
        return Ok(Some(Vec::new()));
    }
    let keys = state.repo.feature_views[view].join_keys.len();
    let index = OfflineLog::materialized_index(&state.repo, view);
    let mut jobs: std::collections::BTreeMap<u64, LoggedJob> = std::collections::BTreeMap::new();
    state.offline.scan(index, |row| {
        let n = row.values.len();
        if n < keys + 3 {
            return;
        }
        let (Value::Timestamp(start), Value::Timestamp(end)) =
            (&row.values[n - 2], &row.values[n - 1])
        else {
            return;
        };
        let Some(key) = EntityKey::from_values(&row.values[..keys]) else {
            return;
        };
        let window = (*start, *end);
        let values = row.values[keys..n - 3].to_vec();
        let job = jobs.entry(row.request).or_insert_with(|| LoggedJob {
            id: row.request,
            ran_at: row.ingested_at,
            first_seq: row.seq,
            keys: HashMap::new(),
        });
        job.first_seq = job.first_seq.min(row.seq);
        job.keys
            .entry(key)
            .or_insert_with(|| (window, Vec::new()))
            .1
            .push(BatchEvent {
                ts: row.ts,
                seq: row.seq,
                values,
            });
    })?;
    let mut out: Vec<LoggedJob> = jobs.into_values().collect();
    for job in &mut out {
        for (_, events) in job.keys.values_mut() {
            events.sort_by_key(|e| (e.ts, e.seq));
        }
    }
    Ok(Some(out))
}

/// What batch jobs materialized for `view`, read back from the offline store: every job's rows
/// applied in job order, as the jobs applied them ([`Materialized::replace`]). `None` when the
/// view reads no batch source.
pub(crate) fn read(state: &MockState, view: usize) -> Result<Option<Materialized>, OfflineError> {
    let Some(jobs) = read_jobs(state, view)? else {
        return Ok(None);
    };
    let mut out = Materialized::default();
    for job in jobs {
        for (key, ((start, end), events)) in job.keys {
            out.replace(&key, start, end, events);
        }
    }
    Ok(Some(out))
}

/// Writes one key's job output to `online` (the mock's store, or the consistency check's replay
/// of it) for view `view` at clock time `now`; returns how many events (aggregates) or rows
/// (attributes) the store kept.
pub(crate) fn apply_online(
    online: &OnlineStore,
    view: usize,
    key: &EntityKey,
    start: i64,
    end: i64,
    events: &[BatchEvent],
    now: i64,
) -> usize {
    if online.spec(view).is_some() {
        let events = events
            .iter()
            .map(|e| (e.ts, e.seq, e.values.clone()))
            .collect();
        return online.replace_events(view, key, start, end, events, now);
    }
    // An attribute view keeps one row per entity: the job's last, unless the stream has already
    // written a row stamped at or after the interval's end.
    let Some(last) = events.iter().max_by_key(|e| (e.ts, e.seq)) else {
        return 0;
    };
    if let Some(OnlineEntry::Attributes(row)) = online.get(view, key) {
        if row.ts >= end {
            return 0;
        }
    }
    let columns: Vec<usize> = (0..last.values.len()).collect();
    online.put_attributes(
        view,
        &online.key(key),
        last.ts,
        last.seq,
        &last.values,
        &columns,
        now,
    );
    usize::from(matches!(
        online.get(view, key),
        Some(OnlineEntry::Attributes(_))
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::KeyPart;

    fn key(s: &str) -> EntityKey {
        EntityKey(vec![KeyPart::Str(s.into())])
    }

    fn ev(ts: i64, v: f64) -> BatchEvent {
        BatchEvent {
            ts,
            seq: ts as u64,
            values: vec![Value::Float(v)],
        }
    }

    #[test]
    fn an_interval_covers_its_start_but_not_its_end() {
        let mut m = Materialized::default();
        m.replace(&key("u1"), 100, 200, vec![ev(150, 1.0)]);
        assert!(m.covers(&key("u1"), 100));
        assert!(m.covers(&key("u1"), 199));
        assert!(!m.covers(&key("u1"), 200));
        assert!(!m.covers(&key("u1"), 99));
        // Another key is not governed by this job.
        assert!(!m.covers(&key("u2"), 150));
    }

    #[test]
    fn a_rerun_replaces_the_rows_of_its_interval_only() {
        let mut m = Materialized::default();
        m.replace(&key("u1"), 0, 100, vec![ev(10, 1.0), ev(20, 2.0)]);
        m.replace(&key("u1"), 100, 200, vec![ev(150, 3.0)]);
        m.replace(&key("u1"), 0, 100, vec![ev(30, 4.0)]);
        let ts: Vec<i64> = m.rows().map(|(_, r)| r.ts).collect();
        assert_eq!(ts, [30, 150]);
        // Touching intervals are merged; lookups still answer per time.
        assert!(m.covers(&key("u1"), 0) && m.covers(&key("u1"), 199));
        assert_eq!(m.len(), 2);
        assert_eq!(m.entities(), 1);
    }
}
