//! Batch jobs in the replay: each job run (the start-up backfill, a scheduled window, a manual
//! run) is an arrival at the time it ran. Its output, read back from the offline store as
//! retrieval reads it, is written to the replayed online store by the batch module's own rule
//! ([`crate::batch::precedence::apply_online`]), so the online side at a point holds what the
//! running mock's jobs had written by then.

use crate::batch::precedence::{self, LoggedJob};
use crate::serving::ServingError;
use crate::state::MockState;
use crate::store::{EntityKey, OnlineStore};

/// One batch job run of one view, as an arrival.
#[derive(Debug, Clone)]
pub(super) struct JobArrival {
    /// The feature view.
    pub view: usize,
    /// Its output, with when it ran.
    pub job: LoggedJob,
}

impl JobArrival {
    /// When it reached the online store: the mock time it ran and its rows' first sequence
    /// number (see [`precedes`]).
    pub(super) fn arrival(&self) -> (i64, u64) {
        (self.job.ran_at, self.job.first_seq)
    }

    /// Writes its output to `store` as the running mock wrote it at `ran_at`.
    pub(super) fn apply(&self, state: &MockState, store: &OnlineStore) {
        if !state.repo.feature_views[self.view].online {
            return;
        }
        for (key, &((start, end), ref events)) in &self.job.keys {
            precedence::apply_online(store, self.view, key, start, end, events, self.job.ran_at);
        }
    }

    /// Its output for `key`: the window and the rows' event times.
    pub(super) fn for_key(&self, key: &EntityKey) -> Option<KeyJob> {
        self.job
            .keys
            .get(key)
            .map(|&((start, end), ref events)| KeyJob {
                ran_at: self.job.ran_at,
                first_seq: self.job.first_seq,
                start,
                end,
                rows: events.iter().map(|e| e.ts).collect(),
            })
    }
}

/// One job's output for one entity, as the causes read it.
#[derive(Debug, Clone)]
pub(super) struct KeyJob {
    /// When the job ran.
    pub ran_at: i64,
    /// Its rows' first sequence number.
    pub first_seq: u64,
    /// Window start (inclusive).
    pub start: i64,
    /// Window end (exclusive).
    pub end: i64,
    /// Event times of its rows.
    pub rows: Vec<i64>,
}

impl KeyJob {
    /// When it reached the online store (see [`precedes`]).
    pub(super) fn arrival(&self) -> (i64, u64) {
        (self.ran_at, self.first_seq)
    }

    /// Whether its window governs event time `ts`.
    pub(super) fn covers(&self, ts: i64) -> bool {
        self.start <= ts && ts < self.end
    }
}

/// Whether a job reached the online store before a record: `job` and `record` are each
/// `(mock time, sequence number)` — for a job, when it ran and its rows' first number; for a
/// record, its arrival and its number. Records and jobs' rows are numbered from one sequence as
/// the mock handles them, so at one instant they go in the order the mock handled them
/// ([`crate::decisions::BATCH_JOB_AND_RECORD_AT_ONE_INSTANT`]).
pub(super) fn precedes(job: (i64, u64), record: (i64, u64)) -> bool {
    job < record
}

/// The batch job runs of `views`, in the order they ran.
pub(super) fn arrivals(
    state: &MockState,
    views: &[usize],
) -> Result<Vec<JobArrival>, ServingError> {
    let mut out = Vec::new();
    for &view in views {
        let jobs = precedence::read_jobs(state, view)
            .map_err(|e| ServingError::Internal(e.to_string()))?
            .unwrap_or_default();
        out.extend(jobs.into_iter().map(|job| JobArrival { view, job }));
    }
    out.sort_by_key(|j| (j.job.ran_at, j.job.id));
    Ok(out)
}
