//! The offline store: every logged record of every push source, as ingested, in Parquet files.
//!
//! Rows are never replaced: a duplicate stays a duplicate, as in Tecton's batch source, which is
//! what lets the consistency check show skew from duplicated or reordered pushes.
//!
//! An append only pushes the row onto an in-memory tail, so the ingest path never waits for the
//! disk. A background thread moves the tail to `<data dir>/offline/<source>/date=YYYY-MM-DD/
//! part-NNNNN.parquet` when it reaches a size or an age, and the owner flushes at shutdown.
//! Readers see the union of the files, the rows being written and the tail, so a row is visible
//! from the moment its append returns. A row leaves memory only once its file is complete and
//! renamed into place; a failed write keeps the rows in memory, logs the error, shows it in
//! [`OfflineStats`], and is retried at the next flush.
//!
//! Memory is bounded when the disk keeps up on average: an append that finds
//! [`decisions::OFFLINE_MAX_WAITING_FLUSHES`] flushes' worth of a source's rows waiting (the
//! flusher has fallen behind the ingest rate) writes them itself before it returns, so the
//! producer slows to the disk's pace. Not while flushes fail: then the rows stay in memory,
//! as above, rather than being refused.

mod data_dir;
mod part;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

pub(crate) use data_dir::DataDir;
pub use part::encode_json;

use crate::decisions;
use crate::repo::Repository;
use crate::schema::{DataType, Field, Schema, Value};
use part::PartLayout;

const SHARDS: usize = 16;
const NANOS_PER_DAY: i64 = 86_400_000_000_000;

/// One logged record.
#[derive(Debug, Clone, PartialEq)]
pub struct OfflineRow {
    /// Ingestion sequence number of the record (global order of acknowledgement).
    pub seq: u64,
    /// Journal sequence number of the request that carried it.
    pub request: u64,
    /// Mock time at ingestion.
    pub ingested_at: i64,
    /// Event time.
    pub ts: i64,
    /// All field values in source-schema order.
    pub values: Vec<Value>,
}

/// Where and how often the offline store writes its files.
#[derive(Debug, Clone)]
pub struct OfflineSettings {
    /// The data directory (`None`: a fresh temporary directory).
    pub data_dir: Option<PathBuf>,
    /// Keep the files when the mock ends (otherwise they are removed).
    pub keep_data: bool,
    /// Flush a source once this many rows wait in memory.
    pub flush_rows: usize,
    /// Flush whatever waits at least this often.
    pub flush_interval: Duration,
}

impl Default for OfflineSettings {
    fn default() -> Self {
        OfflineSettings {
            data_dir: None,
            keep_data: false,
            flush_rows: decisions::DEFAULT_OFFLINE_FLUSH_ROWS,
            flush_interval: decisions::DEFAULT_OFFLINE_FLUSH_INTERVAL,
        }
    }
}

/// Why the offline store could not be read or written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("offline store: {message}")]
pub struct OfflineError {
    /// What went wrong, with the file concerned.
    pub message: String,
}

impl OfflineError {
    fn new(message: impl Into<String>) -> Self {
        OfflineError {
            message: message.into(),
        }
    }
}

/// What `/_mock/health` shows of the offline store.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct OfflineStats {
    /// The data directory.
    pub data_dir: String,
    /// Whether the files outlive the mock.
    pub keep_data: bool,
    /// Every row, on disk or waiting in memory.
    pub rows: u64,
    /// Rows in Parquet files.
    pub rows_on_disk: u64,
    /// Rows not yet in a file (the tail, and batches whose write failed or is under way).
    pub rows_in_memory: u64,
    /// Part files.
    pub files: u64,
    /// Size of the part files.
    pub bytes_on_disk: u64,
    /// Batches written.
    pub flushes: u64,
    /// Flush attempts that failed (their rows stayed in memory).
    pub failed_flushes: u64,
    /// The error of the latest flush attempt, until a flush succeeds.
    pub error: Option<String>,
}

/// A part file and what it holds.
#[derive(Debug, Clone)]
struct PartFile {
    path: PathBuf,
    rows: u64,
    bytes: u64,
}

/// What of a source is past the tail.
#[derive(Debug, Default)]
struct Stored {
    files: Vec<PartFile>,
    /// Batches taken from the tail and not yet on disk, oldest first.
    pending: Vec<Arc<Vec<OfflineRow>>>,
}

#[derive(Debug)]
struct SourceLog {
    dir_name: String,
    layout: Result<PartLayout, String>,
    tail: Vec<Mutex<Vec<OfflineRow>>>,
    /// Rows appended and not yet in a file (tail and pending).
    waiting: AtomicUsize,
    /// Moves between tail, pending and files happen under the write lock; readers hold the read
    /// lock while they take their snapshot, so they see each row exactly once.
    stored: RwLock<Stored>,
}

#[derive(Debug, Default)]
struct Health {
    flushes: u64,
    failed_flushes: u64,
    error: Option<String>,
}

#[derive(Debug, Default)]
struct Wake {
    due: bool,
    stop: bool,
}

#[derive(Debug)]
struct Inner {
    dir: DataDir,
    settings: OfflineSettings,
    sources: Vec<SourceLog>,
    /// One flush (or reset) at a time; holds whether the directory has been prepared.
    flushing: Mutex<bool>,
    next_part: AtomicU64,
    health: Mutex<Health>,
    wake: Mutex<Wake>,
    wake_cv: Condvar,
}

/// The offline store of one mock instance: per push source, an in-memory tail in front of
/// Parquet part files.
#[derive(Debug)]
pub struct OfflineLog {
    inner: Arc<Inner>,
    flusher: Mutex<Option<JoinHandle<()>>>,
    closed: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The directory of a feature view's materialized rows starts with this, so that it cannot be
/// taken for a source's.
pub(super) const MATERIALIZED_PREFIX: &str = "_materialized.";

/// The columns of a feature view's materialized rows: its join keys, its inputs (an input
/// named like a join key gets `_input` appended), the row's event time (`_event_time`) and the
/// window of the job that wrote it (`_window_start`, `_window_end`). The row's `_request` is the
/// job's id and `_ingested_at` the time it ran. Types come from the first batch source the view
/// reads (`String` where none names the column).
pub(super) fn materialized_schema(repo: &Repository, view: usize) -> Schema {
    let mut fields = Vec::new();
    let Some(v) = repo.feature_views.get(view) else {
        return Schema { fields };
    };
    let source = repo
        .batch_sources
        .iter()
        .filter(|b| v.sources.contains(&b.source))
        .find_map(|b| {
            repo.push_sources
                .iter()
                .find(|p| p.name == b.source)
                .map(|p| &p.schema)
                .or_else(|| {
                    repo.stream_sources
                        .iter()
                        .find(|s| s.name == b.source)
                        .map(|s| &s.schema)
                })
        });
    let type_of = |name: &str| {
        source
            .and_then(|s| s.fields.iter().find(|f| f.name == name))
            .map_or(DataType::String, |f| f.data_type.clone())
    };
    let field = |name: String, data_type: DataType| Field {
        name,
        data_type,
        nullable: true,
    };
    for (k, t) in &v.join_keys {
        fields.push(field(k.clone(), t.clone()));
    }
    for c in v.input_columns() {
        let name = if v.join_keys.iter().any(|(k, _)| *k == c) {
            format!("{c}_input")
        } else {
            c.to_owned()
        };
        fields.push(field(name, type_of(c)));
    }
    for name in ["_event_time", "_window_start", "_window_end"] {
        fields.push(field(name.to_owned(), DataType::Timestamp));
    }
    Schema { fields }
}

/// A directory name for a source: its name, with anything but `[A-Za-z0-9_.-]` replaced.
fn dir_name(source: &str) -> String {
    source
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

impl OfflineLog {
    /// An empty store for the repository's push sources, then its stream sources (source index
    /// `push_sources.len() + i`; the micro-batch engine writes their batch rows), then the rows
    /// batch jobs materialized for each feature view ([`OfflineLog::materialized_index`]).
    /// Touches no disk: the directory is made by [`OfflineLog::prepare`] or the first flush.
    /// Starts the background flusher.
    pub fn new(repo: &Repository, settings: &OfflineSettings) -> Self {
        // Push sources first, then stream sources (their logs follow at `push_sources.len() + i`).
        let mut named: Vec<(String, Schema, usize)> = repo
            .push_sources
            .iter()
            .map(|p| (p.name.clone(), &p.schema, &p.timestamp_field))
            .chain(
                repo.stream_sources
                    .iter()
                    .map(|s| (s.name.clone(), &s.schema, &s.timestamp_field)),
            )
            .map(|(name, schema, ts)| (name, schema.clone(), schema.index_of(ts).unwrap_or(0)))
            .collect();
        for (v, view) in repo.feature_views.iter().enumerate() {
            let schema = materialized_schema(repo, v);
            let ts = schema.fields.len().saturating_sub(3);
            named.push((format!("{MATERIALIZED_PREFIX}{}", view.name), schema, ts));
        }
        let sources = named
            .iter()
            .map(|(name, schema, ts)| {
                let ts = *ts;
                SourceLog {
                    dir_name: dir_name(name),
                    layout: PartLayout::new(schema, ts).map_err(|e| e.to_string()),
                    tail: (0..SHARDS).map(|_| Mutex::new(Vec::new())).collect(),
                    waiting: AtomicUsize::new(0),
                    stored: RwLock::new(Stored::default()),
                }
            })
            .collect();
        let inner = Arc::new(Inner {
            dir: DataDir::new(settings.data_dir.as_deref(), settings.keep_data),
            settings: settings.clone(),
            sources,
            flushing: Mutex::new(false),
            next_part: AtomicU64::new(0),
            health: Mutex::new(Health::default()),
            wake: Mutex::new(Wake::default()),
            wake_cv: Condvar::new(),
        });
        let weak = Arc::downgrade(&inner);
        let interval = settings.flush_interval.max(Duration::from_millis(1));
        let flusher = std::thread::Builder::new()
            .name("offline-flush".into())
            .spawn(move || flush_loop(&weak, interval))
            .map_err(|e| tracing::error!(error = %e, "cannot start the offline flusher; rows are written at shutdown only"))
            .ok();
        OfflineLog {
            inner,
            flusher: Mutex::new(flusher),
            closed: AtomicBool::new(false),
        }
    }

    /// The log of what batch jobs materialized for feature view `view` (its index in the
    /// repository): one row per batch row, laid out by [`materialized_schema`].
    pub fn materialized_index(repo: &Repository, view: usize) -> usize {
        repo.push_sources.len() + repo.stream_sources.len() + view
    }

    /// Creates the data directory now, so that a bad `--data-dir` fails at start; refuses a
    /// directory that already holds an offline store.
    pub fn prepare(&self) -> std::io::Result<()> {
        self.inner.prepare(&mut lock(&self.inner.flushing))
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        self.inner.dir.root()
    }

    /// Whether the files outlive the mock (`keep_data`).
    pub fn keeps_data(&self) -> bool {
        self.inner.dir.keeps_data()
    }

    /// Appends a row to a source's tail. Touches the disk only when the flusher has fallen
    /// [`decisions::OFFLINE_MAX_WAITING_FLUSHES`] flushes behind (module docs).
    pub fn append(&self, source: usize, row: OfflineRow) {
        let s = &self.inner.sources[source];
        let shard = &s.tail[(row.seq % SHARDS as u64) as usize];
        lock(shard).push(row);
        let flush_rows = self.inner.settings.flush_rows.max(1);
        let waiting = s.waiting.fetch_add(1, Ordering::Relaxed) + 1;
        // The size trigger: every `flush_rows`-th waiting row wakes the flusher (counted per
        // source, so a flush never starts with a fraction of the rows it was promised).
        if waiting.is_multiple_of(flush_rows) {
            self.inner.wake_flusher();
        }
        if waiting >= flush_rows.saturating_mul(decisions::OFFLINE_MAX_WAITING_FLUSHES)
            && !self.closed.load(Ordering::Relaxed)
            && lock(&self.inner.health).error.is_none()
        {
            // Waits for a flush under way, then writes what is left. Errors are logged and shown
            // in health by `flush_all`; the rows stay in memory and visible.
            let _ = self.inner.flush_all();
        }
    }

    /// A source's rows in ingestion (`seq`) order: files, rows being written, and the tail.
    pub fn rows(&self, source: usize) -> Result<Vec<OfflineRow>, OfflineError> {
        let mut out = Vec::new();
        self.scan(source, |r| out.push(r))?;
        out.sort_unstable_by_key(|r| r.seq);
        Ok(out)
    }

    /// Visits every row of a source once, in no particular order, holding one file's rows in
    /// memory at a time.
    pub fn scan(
        &self,
        source: usize,
        mut visit: impl FnMut(OfflineRow),
    ) -> Result<(), OfflineError> {
        let s = &self.inner.sources[source];
        // The snapshot is taken under the locks; `visit` runs without them, so it may append.
        let (memory, files) = {
            let stored = s.stored.read().unwrap_or_else(|p| p.into_inner());
            let mut memory = Vec::new();
            for batch in &stored.pending {
                memory.extend(batch.iter().cloned());
            }
            for shard in &s.tail {
                memory.extend(lock(shard).iter().cloned());
            }
            (memory, stored.files.clone())
        };
        memory.into_iter().for_each(&mut visit);
        if files.is_empty() {
            return Ok(());
        }
        let layout = s
            .layout
            .as_ref()
            .map_err(|e| OfflineError::new(e.clone()))?;
        for f in files {
            let rows = layout
                .read(&f.path)
                .map_err(|e| OfflineError::new(format!("cannot read {}: {e}", f.path.display())))?;
            rows.into_iter().for_each(&mut visit);
        }
        Ok(())
    }

    /// Writes every waiting row of every source to disk now. On error the rows stay in memory
    /// (and visible) and the next flush tries again.
    pub fn flush(&self) -> Result<(), OfflineError> {
        self.inner.flush_all()
    }

    /// Empties every source and deletes its files (the data directory stays).
    pub fn clear(&self) -> Result<(), OfflineError> {
        let inner = &self.inner;
        let prepared = lock(&inner.flushing);
        for s in &inner.sources {
            let mut stored = s.stored.write().unwrap_or_else(|p| p.into_inner());
            for shard in &s.tail {
                lock(shard).clear();
            }
            stored.files.clear();
            stored.pending.clear();
            s.waiting.store(0, Ordering::Relaxed);
        }
        *lock(&inner.health) = Health::default();
        if !*prepared {
            // Nothing of ours on disk yet.
            return Ok(());
        }
        inner.dir.empty().map_err(|e| {
            OfflineError::new(format!(
                "cannot empty {}: {e}",
                inner.dir.offline().display()
            ))
        })
    }

    /// Counts for `/_mock/health`.
    pub fn stats(&self) -> OfflineStats {
        let inner = &self.inner;
        let (mut on_disk, mut in_memory, mut files, mut bytes) = (0, 0, 0, 0);
        for s in &inner.sources {
            let stored = s.stored.read().unwrap_or_else(|p| p.into_inner());
            on_disk += stored.files.iter().map(|f| f.rows).sum::<u64>();
            bytes += stored.files.iter().map(|f| f.bytes).sum::<u64>();
            files += stored.files.len() as u64;
            in_memory += stored.pending.iter().map(|b| b.len() as u64).sum::<u64>();
            in_memory += s.tail.iter().map(|t| lock(t).len() as u64).sum::<u64>();
        }
        let health = lock(&inner.health);
        OfflineStats {
            data_dir: inner.dir.root().display().to_string(),
            keep_data: inner.dir.keeps_data(),
            rows: on_disk + in_memory,
            rows_on_disk: on_disk,
            rows_in_memory: in_memory,
            files,
            bytes_on_disk: bytes,
            flushes: health.flushes,
            failed_flushes: health.failed_flushes,
            error: health.error.clone(),
        }
    }

    /// Ends the store: stops the flusher, then writes what waits (when the data is kept) or
    /// removes the files (when not). Also done on drop; later calls do nothing.
    pub fn close(&self) {
        if self.closed.swap(true, Ordering::SeqCst) {
            return;
        }
        {
            let mut wake = lock(&self.inner.wake);
            wake.stop = true;
            self.inner.wake_cv.notify_all();
        }
        if let Some(flusher) = lock(&self.flusher).take() {
            if flusher.join().is_err() {
                tracing::error!("the offline flusher panicked");
            }
        }
        let dir = &self.inner.dir;
        if dir.keeps_data() {
            match self.flush() {
                Ok(()) => tracing::info!(dir = %dir.root().display(), "offline store kept"),
                Err(e) => tracing::error!(error = %e, "rows still in memory at exit are lost"),
            }
        } else if !*lock(&self.inner.flushing) {
            // Never prepared: nothing of ours is on disk, and what is there is not ours.
        } else if let Err(e) = dir.remove() {
            tracing::warn!(error = %e, dir = %dir.root().display(), "cannot remove the data directory");
        }
    }
}

impl Drop for OfflineLog {
    fn drop(&mut self) {
        self.close();
    }
}

fn flush_loop(inner: &Weak<Inner>, interval: Duration) {
    loop {
        let Some(strong) = inner.upgrade() else {
            return;
        };
        {
            let wake = lock(&strong.wake);
            let (mut wake, _) = strong
                .wake_cv
                .wait_timeout_while(wake, interval, |w| !w.due && !w.stop)
                .unwrap_or_else(|p| p.into_inner());
            if wake.stop {
                return;
            }
            wake.due = false;
        }
        // Errors are logged and shown in health by `flush_all`.
        let _ = strong.flush_all();
    }
}

impl Inner {
    fn wake_flusher(&self) {
        lock(&self.wake).due = true;
        self.wake_cv.notify_all();
    }

    /// Creates the directories once, refusing a store left by an earlier run.
    fn prepare(&self, prepared: &mut bool) -> std::io::Result<()> {
        if !*prepared {
            self.dir.prepare()?;
            *prepared = true;
        }
        Ok(())
    }

    fn flush_all(&self) -> Result<(), OfflineError> {
        let mut prepared = lock(&self.flushing);
        let mut first_error = self
            .prepare(&mut prepared)
            .err()
            .map(|e| OfflineError::new(e.to_string()));
        if first_error.is_none() {
            for s in &self.sources {
                if let Err(e) = self.flush_source(s) {
                    first_error.get_or_insert(e);
                }
            }
        }
        let mut health = lock(&self.health);
        match first_error {
            None => {
                health.error = None;
                Ok(())
            }
            Some(e) => {
                health.failed_flushes += 1;
                health.error = Some(e.message.clone());
                tracing::error!(error = %e, "offline flush failed; the rows stay in memory and the next flush retries");
                Err(e)
            }
        }
    }

    fn flush_source(&self, s: &SourceLog) -> Result<(), OfflineError> {
        {
            let mut stored = s.stored.write().unwrap_or_else(|p| p.into_inner());
            let mut batch = Vec::new();
            for shard in &s.tail {
                batch.append(&mut lock(shard));
            }
            if !batch.is_empty() {
                batch.sort_unstable_by_key(|r| r.seq);
                stored.pending.push(Arc::new(batch));
            }
        }
        let pending = s
            .stored
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .pending
            .clone();
        for batch in pending {
            let files = self.write_batch(s, &batch)?;
            let mut stored = s.stored.write().unwrap_or_else(|p| p.into_inner());
            stored.pending.retain(|b| !Arc::ptr_eq(b, &batch));
            stored.files.extend(files);
            // Under the write lock, so a reset (which zeroes the count) cannot interleave.
            let _ = s
                .waiting
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |w| {
                    Some(w.saturating_sub(batch.len()))
                });
            lock(&self.health).flushes += 1;
        }
        Ok(())
    }

    /// Writes a batch as one file per event date, all or nothing: files are written under
    /// hidden temporary names (which Parquet readers skip) and renamed once all are complete.
    fn write_batch(
        &self,
        s: &SourceLog,
        batch: &[OfflineRow],
    ) -> Result<Vec<PartFile>, OfflineError> {
        let layout = s
            .layout
            .as_ref()
            .map_err(|e| OfflineError::new(e.clone()))?;
        let mut by_day: BTreeMap<i64, Vec<&OfflineRow>> = BTreeMap::new();
        for r in batch {
            by_day
                .entry(r.ts.div_euclid(NANOS_PER_DAY))
                .or_default()
                .push(r);
        }
        let source_dir = self.dir.offline().join(&s.dir_name);
        let mut written: Vec<(PathBuf, PathBuf, u64, u64)> = Vec::new();
        let result = (|| {
            for (day, rows) in &by_day {
                let date = &crate::schema::format_rfc3339(day * NANOS_PER_DAY)[..10];
                let dir = source_dir.join(format!("date={date}"));
                std::fs::create_dir_all(&dir)
                    .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
                let n = self.next_part.fetch_add(1, Ordering::Relaxed);
                let tmp = dir.join(format!(".part-{n:05}.parquet.tmp"));
                let path = dir.join(format!("part-{n:05}.parquet"));
                written.push((tmp.clone(), path, rows.len() as u64, 0));
                let bytes = layout
                    .write(&tmp, rows)
                    .map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
                if let Some(last) = written.last_mut() {
                    last.3 = bytes;
                }
            }
            for (tmp, path, _, _) in &written {
                std::fs::rename(tmp, path)
                    .map_err(|e| format!("cannot rename {} into place: {e}", tmp.display()))?;
            }
            Ok::<(), String>(())
        })();
        match result {
            Ok(()) => Ok(written
                .into_iter()
                .map(|(_, path, rows, bytes)| PartFile { path, rows, bytes })
                .collect()),
            Err(message) => {
                // Nothing of a failed batch stays on disk: its rows are retried as a whole.
                for (tmp, path, _, _) in &written {
                    let _ = std::fs::remove_file(tmp);
                    let _ = std::fs::remove_file(path);
                }
                Err(OfflineError::new(message))
            }
        }
    }
}

#[cfg(test)]
mod tests;
