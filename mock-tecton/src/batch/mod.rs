//! Batch sources and batch materialization: a source's `batch_config` file is its history
//! (Tecton's batch source); it is backfilled into the online and offline stores when the mock
//! starts, and each feature view reading it runs a batch job per `batch_schedule` window on the
//! mock's clock.
//!
//! - `source`: reading JSON Lines, CSV and Parquet files through the source's schema;
//! - `backfill`: the first job, from the view's start to the last schedule boundary;
//! - `schedule`: jobs over `[start, end)` windows as the clock passes their end, and the
//!   manual (overwrite) runs;
//! - `precedence`: what a job does to the stores: its rows replace the stream's for the same
//!   keys and interval;
//! - `http`: the admin routes under `/_mock/batch`.
//!
//! A job's output is the batch source's rows stamped in its window that were present when it
//! ran; rows appended later are not in it. Every choice is in [`crate::decisions`]
//! (`batch_schedule`, `backfill_start`, `BATCH_*`).

pub(crate) mod backfill;
pub(crate) mod http;
pub(crate) mod precedence;
pub(crate) mod schedule;
pub(crate) mod source;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use serde::Serialize;
use serde_json::Value as Json;

use crate::decisions;
use crate::repo::Repository;
use crate::schema::{Schema, Value};
use crate::state::MockState;

pub(crate) use precedence::Materialized;
pub(crate) use schedule::JobRun;
pub use source::{BatchError, RowError};

/// One row of a batch source: event time and values in source-schema order.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct BatchRow {
    /// Event time.
    pub ts: i64,
    /// Mock time when it reached the batch source.
    pub arrived_at: i64,
    /// Values in source-schema order.
    pub values: Vec<Value>,
}

/// A batch source's rows, in arrival order (a row's index is its arrival rank).
#[derive(Debug, Default)]
struct SourceRows {
    rows: Vec<BatchRow>,
    invalid: u64,
    errors: Vec<RowError>,
    /// Rows read from the file at start.
    from_file: usize,
}

/// Where a view reads one batch source: the source, and the columns of its keys and inputs.
#[derive(Debug, Clone)]
struct ViewInput {
    source: usize,
    key_columns: Vec<usize>,
    value_columns: Vec<usize>,
}

/// One feature view reading at least one batch source: its schedule and what it materialized.
#[derive(Debug)]
struct ViewBatch {
    view: usize,
    schedule: i64,
    inputs: Vec<ViewInput>,
    /// Start of the next scheduled window; `None` until the backfill has run.
    next_start: Option<i64>,
    /// What its jobs wrote; readers take a snapshot.
    materialized: Arc<Materialized>,
}

/// Every batch source and batch-materialized view of one mock instance.
#[derive(Debug)]
pub(crate) struct Batches {
    sources: Vec<RwLock<SourceRows>>,
    views: Vec<Mutex<ViewBatch>>,
    jobs: Mutex<VecDeque<JobRun>>,
    next_job: std::sync::atomic::AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Batches {
    /// Nothing loaded yet: [`MockState::start_batch`] reads the files and backfills.
    pub(crate) fn new(repo: &Repository) -> Self {
        let mut views = Vec::new();
        for (vi, view) in repo.feature_views.iter().enumerate() {
            let inputs: Vec<ViewInput> = repo
                .batch_sources
                .iter()
                .enumerate()
                .filter(|(_, b)| view.sources.contains(&b.source))
                .filter_map(|(bi, b)| {
                    let (schema, _) = source_schema(repo, &b.source)?;
                    let col = |n: &str| schema.index_of(n);
                    Some(ViewInput {
                        source: bi,
                        key_columns: view.join_keys.iter().filter_map(|(k, _)| col(k)).collect(),
                        value_columns: view.input_columns().into_iter().filter_map(col).collect(),
                    })
                })
                .collect();
            if inputs.is_empty() {
                continue;
            }
            views.push(Mutex::new(ViewBatch {
                view: vi,
                schedule: decisions::batch_schedule(view).max(1),
                inputs,
                next_start: None,
                materialized: Arc::new(Materialized::default()),
            }));
        }
        Batches {
            sources: repo
                .batch_sources
                .iter()
                .map(|_| RwLock::new(SourceRows::default()))
                .collect(),
            views,
            jobs: Mutex::new(VecDeque::new()),
            next_job: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Whether any feature view reads a batch source (otherwise ticks cost nothing).
    pub(crate) fn is_empty(&self) -> bool {
        self.views.is_empty()
    }

    /// A snapshot of what batch jobs materialized for feature view `view` (its index in the
    /// repository), when it reads a batch source. Offline retrieval reads it.
    pub(crate) fn materialized(&self, view: usize) -> Option<Arc<Materialized>> {
        self.views.iter().find_map(|v| {
            let v = lock(v);
            (v.view == view).then(|| Arc::clone(&v.materialized))
        })
    }

    /// Forgets every job and materialized row and the rows appended after start; the file's rows
    /// stay, and scheduled windows resume from the last boundary at or before `now` (no new
    /// backfill: `POST /_mock/batch/{view}/run` re-materializes a window).
    pub(crate) fn reset(&self, now: i64) {
        for s in &self.sources {
            let mut s = s.write().unwrap_or_else(|p| p.into_inner());
            let n = s.from_file;
            s.rows.truncate(n);
        }
        for v in &self.views {
            let mut v = lock(v);
            v.materialized = Arc::new(Materialized::default());
            if v.next_start.is_some() {
                v.next_start = Some(floor(now, v.schedule));
            }
        }
        lock(&self.jobs).clear();
    }

    /// The view's index in `views` by feature view name.
    fn view_slot(&self, repo: &Repository, name: &str) -> Option<usize> {
        let vi = repo.feature_views.iter().position(|v| v.name == name)?;
        self.views.iter().position(|v| lock(v).view == vi)
    }

    fn record(&self, run: JobRun) {
        let mut jobs = lock(&self.jobs);
        if jobs.len() >= decisions::BATCH_JOBS_KEPT {
            jobs.pop_front();
        }
        jobs.push_back(run);
    }

    fn job_id(&self) -> u64 {
        self.next_job
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }

    /// The recorded job runs, oldest first (the last [`decisions::BATCH_JOBS_KEPT`]).
    pub(crate) fn jobs(&self) -> Vec<JobRun> {
        lock(&self.jobs).iter().cloned().collect()
    }
}

/// The last multiple of `step` at or before `t` (epoch-aligned windows).
pub(crate) fn floor(t: i64, step: i64) -> i64 {
    t - t.rem_euclid(step.max(1))
}

/// A push or stream source's schema and event-time field.
fn source_schema<'r>(repo: &'r Repository, name: &str) -> Option<(&'r Schema, &'r str)> {
    repo.push_sources
        .iter()
        .find(|p| p.name == name)
        .map(|p| (&p.schema, p.timestamp_field.as_str()))
        .or_else(|| {
            repo.stream_sources
                .iter()
                .find(|s| s.name == name)
                .map(|s| (&s.schema, s.timestamp_field.as_str()))
        })
}

/// What an append to a batch source did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Appended {
    /// Rows added to the batch source.
    pub appended: usize,
    /// Rows refused, with the 0-based index in the request and why.
    pub invalid: Vec<RowError>,
}

/// What the start-up load did, per batch source.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Loaded {
    /// The source.
    pub source: String,
    /// The file.
    pub path: String,
    /// Rows read.
    pub rows: usize,
    /// Rows refused.
    pub invalid: u64,
}

impl MockState {
    /// Reads every `batch_config` file, then runs each view's backfill at the clock's current
    /// time. Called once by [`crate::MockTecton::start`]; an in-process state that wants its
    /// batch sources calls it itself. A file that cannot be read is an error (nothing is
    /// backfilled then); rows that do not fit are skipped, logged and counted.
    pub fn start_batch(&self) -> Result<Vec<Loaded>, BatchError> {
        let mut out = Vec::new();
        for (bi, cfg) in self.repo.batch_sources.iter().enumerate() {
            let Some((schema, ts)) = source_schema(&self.repo, &cfg.source) else {
                continue;
            };
            let read = source::read_file(cfg, schema, ts)?;
            for e in read.errors.iter().take(decisions::BATCH_ROW_ERRORS_KEPT) {
                tracing::warn!(source = %cfg.source, at = %e.at, error = %e.error, "batch row skipped");
            }
            let now = self.clock.now();
            let mut s = self.batch.sources[bi]
                .write()
                .unwrap_or_else(|p| p.into_inner());
            s.invalid = read.errors.len() as u64;
            s.errors = read
                .errors
                .into_iter()
                .take(decisions::BATCH_ROW_ERRORS_KEPT)
                .collect();
            s.rows = read
                .rows
                .into_iter()
                .map(|(ts, values)| BatchRow {
                    ts,
                    arrived_at: now,
                    values,
                })
                .collect();
            s.from_file = s.rows.len();
            tracing::info!(source = %cfg.source, path = %cfg.path.display(), rows = s.rows.len(), invalid = s.invalid, "batch source loaded");
            out.push(Loaded {
                source: cfg.source.clone(),
                path: cfg.path.display().to_string(),
                rows: s.rows.len(),
                invalid: s.invalid,
            });
        }
        backfill::run(self);
        Ok(out)
    }

    /// Appends JSON records to the batch source of `source` at the clock's current time; they
    /// are in every job that runs from now on and covers their time. Records that do not fit
    /// the schema are refused and listed (by 0-based index).
    pub fn batch_append(&self, source: &str, records: &[Json]) -> Result<Appended, BatchError> {
        let bi = self
            .repo
            .batch_sources
            .iter()
            .position(|b| b.source == source)
            .ok_or_else(|| BatchError::UnknownSource(source.to_owned()))?;
        let cfg = &self.repo.batch_sources[bi];
        let Some((schema, ts)) = source_schema(&self.repo, source) else {
            return Err(BatchError::UnknownSource(source.to_owned()));
        };
        let checker = source::Checker::new(schema, ts, &cfg.timestamp_field);
        let now = self.clock.now();
        let mut out = Appended::default();
        let mut rows = Vec::new();
        for (i, r) in records.iter().enumerate() {
            let checked = match r {
                Json::Object(m) => checker.check(m.clone()),
                _ => Err("expected a JSON object".into()),
            };
            match checked {
                Ok((ts, values)) => rows.push(BatchRow {
                    ts,
                    arrived_at: now,
                    values,
                }),
                Err(error) => out.invalid.push(RowError {
                    at: format!("records[{i}]"),
                    error,
                }),
            }
        }
        out.appended = rows.len();
        let mut s = self.batch.sources[bi]
            .write()
            .unwrap_or_else(|p| p.into_inner());
        s.invalid += out.invalid.len() as u64;
        let room = decisions::BATCH_ROW_ERRORS_KEPT.saturating_sub(s.errors.len());
        s.errors.extend(out.invalid.iter().take(room).cloned());
        s.rows.extend(rows);
        Ok(out)
    }

    /// Moves the virtual clock forward to `until`, running every scheduled batch window that
    /// falls due on the way at the time it falls due (its end), as a mock whose clock had been
    /// moved through each of those times would. An in-process replay of a history uses it so
    /// that each window's job ran when the window ended. On the wall clock it runs the jobs due
    /// now.
    pub fn run_batch_jobs_through(&self, until: i64) {
        if !self.clock.is_virtual() {
            self.run_batch_jobs();
            return;
        }
        let until = until.max(self.clock.now());
        if !self.batch.is_empty() {
            schedule::run_on_time(self, until);
        }
        self.clock.set(until);
    }

    /// Runs the batch jobs whose window has passed. On the virtual clock this runs when the
    /// clock moves ([`MockState::run_streams`] calls it); on the wall clock a background task
    /// does (`schedule::drive`).
    pub fn run_batch_jobs(&self) {
        if !self.batch.is_empty() {
            schedule::run_due(self, self.clock.now());
        }
    }
}

#[cfg(test)]
mod tests;
