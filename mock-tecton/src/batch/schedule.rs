//! Batch jobs: one per `batch_schedule` window `[start, end)`, run when the clock reaches the
//! window's end ([`crate::decisions::BATCH_DATA_DELAY`]), plus manual runs of any window (Tecton's
//! overwrite jobs).
//!
//! A job reads the batch source's rows stamped in its window that are present when it runs;
//! a row appended afterwards is not in its output, and later scheduled jobs, each covering only
//! its own window, never pick it up ([`crate::decisions::BATCH_LATE_DATA_NEEDS_RERUN`]). The
//! job's rows then take precedence over the stream's ([`super::precedence`]).

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use serde::Serialize;
use serde_json::{json, Value as Json};

use super::precedence::{self, BatchEvent};
use super::{lock, BatchError, Batches, ViewBatch};
use crate::decisions;
use crate::schema::format_rfc3339;
use crate::state::MockState;
use crate::store::EntityKey;

/// Why a job ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum JobKind {
    /// The start-up backfill.
    Backfill,
    /// A `batch_schedule` window whose end the clock passed.
    Scheduled,
    /// Asked for through `POST /_mock/batch/{view}/run` (an overwrite job).
    Manual,
}

/// One batch job run.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct JobRun {
    /// Sequence number of the run.
    pub id: u64,
    /// The feature view's index in the repository.
    pub view: usize,
    /// Why it ran.
    pub kind: JobKind,
    /// Window start (inclusive).
    pub start: i64,
    /// Window end (exclusive).
    pub end: i64,
    /// Mock time of the run.
    pub ran_at: i64,
    /// Batch rows in its output.
    pub rows: usize,
    /// Entity keys in its output.
    pub keys: usize,
    /// Events or rows the online store kept.
    pub online_rows: usize,
    /// Per batch source read: `(source, rows present when it ran)`.
    seen: Vec<(usize, usize)>,
}

impl JobRun {
    /// The run as JSON, with the rows of its window that reached the batch source after it ran
    /// (`arrived_after`: not in its output).
    pub(crate) fn to_json(&self, state: &MockState) -> Json {
        let arrived_after: usize = self
            .seen
            .iter()
            .map(|&(source, seen)| {
                let s = state.batch.sources[source]
                    .read()
                    .unwrap_or_else(|p| p.into_inner());
                s.rows
                    .iter()
                    .skip(seen)
                    .filter(|r| self.start <= r.ts && r.ts < self.end)
                    .count()
            })
            .sum();
        json!({
            "id": self.id,
            "view": state.repo.feature_views.get(self.view).map(|v| v.name.as_str()),
            "kind": self.kind,
            "start": format_rfc3339(self.start),
            "end": format_rfc3339(self.end),
            "ran_at": format_rfc3339(self.ran_at),
            "rows": self.rows,
            "keys": self.keys,
            "online_rows": self.online_rows,
            "arrived_after": arrived_after,
        })
    }
}

/// The rows of each window (sorted, disjoint) as `(key, event)`, and what each source held.
type Collected = (Vec<Vec<(EntityKey, BatchEvent)>>, Vec<(usize, usize)>);

/// Reads the rows of `windows` from the view's batch sources, in arrival order.
fn collect(state: &MockState, vb: &ViewBatch, windows: &[(i64, i64)]) -> Collected {
    let view = &state.repo.feature_views[vb.view];
    let attributes = view.series_spec().is_none();
    let mut out: Vec<Vec<(EntityKey, BatchEvent)>> = windows.iter().map(|_| Vec::new()).collect();
    let mut seen = Vec::new();
    let (Some(first), Some(last)) = (windows.first(), windows.last()) else {
        return (out, seen);
    };
    for input in &vb.inputs {
        let s = state.batch.sources[input.source]
            .read()
            .unwrap_or_else(|p| p.into_inner());
        seen.push((input.source, s.rows.len()));
        for r in &s.rows {
            if r.ts < first.0 || r.ts >= last.1 {
                continue;
            }
            // Attribute views ignore rows before feature_start_time; aggregations keep all.
            if attributes && !decisions::attribute_row_kept(view.feature_start_time, r.ts) {
                continue;
            }
            let w = windows.partition_point(|&(_, end)| end <= r.ts);
            if windows.get(w).is_none_or(|&(start, _)| r.ts < start) {
                continue;
            }
            let Some(key) =
                EntityKey::from_values(input.key_columns.iter().filter_map(|&c| r.values.get(c)))
                    .filter(|k| k.0.len() == view.join_keys.len())
            else {
                continue;
            };
            let seq = state
                .record_seq
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let values = input
                .value_columns
                .iter()
                .map(|&c| {
                    r.values
                        .get(c)
                        .cloned()
                        .unwrap_or(crate::schema::Value::Null)
                })
                .collect();
            out[w].push((
                key,
                BatchEvent {
                    ts: r.ts,
                    seq,
                    values,
                },
            ));
        }
    }
    (out, seen)
}

/// Writes one window's output with batch precedence and returns the run.
fn apply(
    state: &MockState,
    vb: &mut ViewBatch,
    (start, end): (i64, i64),
    rows: Vec<(EntityKey, BatchEvent)>,
    seen: Vec<(usize, usize)>,
    kind: JobKind,
    now: i64,
) -> JobRun {
    let view = &state.repo.feature_views[vb.view];
    let id = state.batch.job_id();
    let n = rows.len();
    let mut by_key: HashMap<EntityKey, Vec<BatchEvent>> = HashMap::new();
    for (k, e) in rows {
        by_key.entry(k).or_default().push(e);
    }
    let keys = by_key.len();
    let mut online_rows = 0;
    if !by_key.is_empty() {
        let m = Arc::make_mut(&mut vb.materialized);
        for (key, mut events) in by_key {
            events.sort_by_key(|e| (e.ts, e.seq));
            if view.online {
                online_rows += precedence::apply_online(
                    &state.online,
                    vb.view,
                    &key,
                    start,
                    end,
                    &events,
                    now,
                );
            }
            if view.offline {
                // The rows go to the offline store; memory keeps their times and the
                // intervals, which say where they take precedence.
                precedence::log(state, vb.view, id, &key, (start, end), &events, now);
                let times = events
                    .into_iter()
                    .map(|e| BatchEvent {
                        values: Vec::new(),
                        ..e
                    })
                    .collect();
                m.replace(&key, start, end, times);
            }
        }
    }
    JobRun {
        id,
        view: vb.view,
        kind,
        start,
        end,
        ran_at: now,
        rows: n,
        keys,
        online_rows,
        seen,
    }
}

/// Runs `windows` (sorted, disjoint) for one view, each at the mock time `ran_at` gives for it,
/// and records each run.
pub(super) fn run_windows(
    state: &MockState,
    vb: &mut ViewBatch,
    windows: &[(i64, i64)],
    kind: JobKind,
    ran_at: impl Fn((i64, i64)) -> i64,
) -> Vec<JobRun> {
    let (rows, seen) = collect(state, vb, windows);
    let mut runs = Vec::with_capacity(windows.len());
    for (&w, rows) in windows.iter().zip(rows) {
        let run = apply(state, vb, w, rows, seen.clone(), kind, ran_at(w));
        state.batch.record(run.clone());
        runs.push(run);
    }
    runs
}

/// When a scheduled window's job falls due.
fn due_at((_, end): (i64, i64)) -> i64 {
    end.saturating_add(decisions::BATCH_DATA_DELAY)
}

/// Runs every scheduled window whose end is at or before `now` (plus the data delay), at `now`.
pub(crate) fn run_due(state: &MockState, now: i64) {
    run_scheduled(state, now, |_| now);
}

/// Runs every scheduled window due by `until`, each at the time it fell due, as a mock whose
/// clock had moved through every due time would have.
pub(crate) fn run_on_time(state: &MockState, until: i64) {
    run_scheduled(state, until, due_at);
}

fn run_scheduled(state: &MockState, until: i64, ran_at: impl Fn((i64, i64)) -> i64) {
    for slot in &state.batch.views {
        let mut vb = lock(slot);
        let Some(mut next) = vb.next_start else {
            continue;
        };
        let mut windows = Vec::new();
        while due_at((next, next.saturating_add(vb.schedule))) <= until {
            windows.push((next, next + vb.schedule));
            next += vb.schedule;
        }
        if windows.is_empty() {
            continue;
        }
        vb.next_start = Some(next);
        run_windows(state, &mut vb, &windows, JobKind::Scheduled, &ran_at);
    }
}

/// When the next scheduled job is due, over every view.
pub(crate) fn next_due(batches: &Batches) -> Option<i64> {
    batches
        .views
        .iter()
        .filter_map(|v| {
            let v = lock(v);
            v.next_start
                .map(|s| due_at((s, s.saturating_add(v.schedule))))
        })
        .min()
}

/// Runs one window of a view now, whatever the schedule (Tecton's overwrite job): the batch
/// source's rows present now replace what the view holds for their keys in `[start, end)`.
pub(crate) fn run_now(
    state: &MockState,
    view: &str,
    start: i64,
    end: i64,
) -> Result<JobRun, BatchError> {
    if start >= end {
        return Err(BatchError::BadRequest(format!(
            "the window must have start < end (got {} .. {})",
            format_rfc3339(start),
            format_rfc3339(end)
        )));
    }
    let slot = state
        .batch
        .view_slot(&state.repo, view)
        .ok_or_else(|| BatchError::UnknownView(view.to_owned()))?;
    let mut vb = lock(&state.batch.views[slot]);
    let now = state.clock.now();
    let runs = run_windows(state, &mut vb, &[(start, end)], JobKind::Manual, |_| now);
    runs.into_iter()
        .next()
        .ok_or_else(|| BatchError::BadRequest("the job did not run".into()))
}

/// The batch views as JSON: schedule, next window, sources and what is materialized.
pub(crate) fn views_json(state: &MockState) -> Json {
    let views: Vec<Json> = state
        .batch
        .views
        .iter()
        .map(|v| {
            let v = lock(v);
            let view = &state.repo.feature_views[v.view];
            json!({
                "view": view.name,
                "batch_schedule": crate::duration::Human(v.schedule).to_string(),
                "next_window": v.next_start.map(|s| json!({
                    "start": format_rfc3339(s),
                    "end": format_rfc3339(s.saturating_add(v.schedule)),
                })),
                "sources": v.inputs.iter().map(|i| &state.repo.batch_sources[i.source].source).collect::<Vec<_>>(),
                "materialized": {"keys": v.materialized.entities(), "rows": v.materialized.len()},
            })
        })
        .collect();
    let sources: Vec<Json> = state
        .repo
        .batch_sources
        .iter()
        .zip(&state.batch.sources)
        .map(|(cfg, s)| {
            let s = s.read().unwrap_or_else(|p| p.into_inner());
            json!({
                "source": cfg.source,
                "path": cfg.path.display().to_string(),
                "format": cfg.format,
                "timestamp_field": cfg.timestamp_field,
                "rows": s.rows.len(),
                "rows_from_file": s.from_file,
                "invalid": s.invalid,
                "errors": s.errors,
            })
        })
        .collect();
    json!({"sources": sources, "views": views})
}

/// Runs scheduled jobs on the wall clock until the state is gone (on the virtual clock they run
/// when the clock moves).
pub(crate) async fn drive(state: Weak<MockState>) {
    const NAP: i64 = 200_000_000;
    loop {
        let nap = {
            let Some(s) = state.upgrade() else { return };
            if s.batch.is_empty() {
                return;
            }
            if !s.clock.is_virtual() {
                s.run_batch_jobs();
            }
            let now = s.clock.now();
            next_due(&s.batch).map_or(NAP, |t| t.saturating_sub(now).clamp(1_000_000, NAP))
        };
        tokio::time::sleep(Duration::from_nanos(u64::try_from(nap).unwrap_or(0))).await;
    }
}

#[cfg(test)]
mod tests {
    use crate::batch::floor;

    #[test]
    fn windows_are_epoch_aligned() {
        let h = crate::duration::HOUR;
        assert_eq!(floor(5 * h + 17, h), 5 * h);
        assert_eq!(floor(5 * h, h), 5 * h);
        assert_eq!(floor(-1, h), -h);
    }
}
