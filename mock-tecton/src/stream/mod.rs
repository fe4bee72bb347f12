//! The Kafka + Spark pattern: stream sources read topics, and a micro-batch engine emulating
//! Tecton's Spark Structured Streaming job materializes them into the online and offline stores.
//!
//! - `topic`: in-memory, partitioned, offset-addressed topics (the embedded broker);
//! - `dedup`: the compact deduplication state;
//! - `watermark`: Spark's event-time watermark and its late-row rules (3.4 and 3.3);
//! - `microbatch`: one feature view's query: dedup, watermark, tiles, what a batch writes;
//! - `progress`: Spark-shaped progress and the freshness histogram;
//! - `pipeline`: a source's groups on threads of their own for a run fed in time order;
//! - [`replay`]: micro-batches read from a file, for people and for checks.
//!
//! Each feature view reading a stream source is one streaming query, as in Tecton (one Spark job
//! per stream feature view), with its own trigger, offsets, watermark and state. On the virtual
//! clock micro-batches run when the clock moves or records arrive, so runs are deterministic; on
//! the wall clock a background task runs them when they are due.

pub(crate) mod dedup;
pub(crate) mod http;
pub(crate) mod microbatch;
mod pipeline;
pub(crate) mod progress;
pub mod replay;
pub mod simulate;
pub(crate) mod topic;
pub(crate) mod watermark;

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::{json, Value as Json};

use crate::decisions;
use crate::engine::SameTimestamp;
use crate::repo::{Repository, StreamProcessingMode, ViewKind};
use crate::schema::Value;
use crate::state::MockState;
use crate::store::{EntityKey, OfflineRow};
use dedup::DedupState;

pub(crate) use microbatch::{BatchOutcome, DropReason, Query, QueryKind, QuerySpec};
pub(crate) use progress::{BatchProgress, Freshness};
pub(crate) use topic::{Decoded, Offset, Row, Topic, TopicRecord};
pub use watermark::SparkVersion;

/// How the micro-batch engine runs. Defaults are Tecton's (see [`decisions`]).
#[derive(Debug, Clone, PartialEq)]
pub struct StreamConfig {
    /// Trigger interval for every query, replacing Tecton's defaults (30 s for TIME_INTERVAL and
    /// attribute views, 0 s for CONTINUOUS ones). A stream source's own `trigger_interval` in the
    /// repository takes precedence over this.
    pub trigger_interval: Option<Duration>,
    /// Modeled duration of every micro-batch, whatever its size (Spark's scheduling and the
    /// online store's write path): its rows are servable this long after it starts, and the
    /// query's next micro-batch starts no earlier (Spark runs one at a time), so with a 0 s
    /// trigger the batch size follows from it. On the wall clock it is added to the measured
    /// processing. Default 0; `stream simulate` and the `tecton` profile use
    /// [`decisions::tecton_profile::SPARK_BATCH_OVERHEAD_MS`] (see
    /// [`decisions::STREAM_BATCH_DURATION`]).
    pub batch_overhead: Duration,
    /// Modeled processing time per input row, added to `batch_overhead`. Default 0.
    pub row_cost: Duration,
    /// Which Spark rule judges late rows.
    pub spark: SparkVersion,
    /// Partitions of each in-memory topic.
    pub partitions: u32,
    /// Per-event entries kept in each stream's journal.
    pub journal_events: usize,
    /// Write the online store, as Tecton's stream job does. Off only for simulations that
    /// measure the engine alone.
    pub materialize: bool,
    /// Append every valid record to the offline store, as the stream source's batch source
    /// holds it ([`decisions::STREAM_OFFLINE_KEEPS_DROPPED_ROWS`]). Tecton's stream job itself
    /// does not write the offline store, so a simulation of the job leaves it off.
    pub offline: bool,
}

impl Default for StreamConfig {
    fn default() -> Self {
        StreamConfig {
            trigger_interval: None,
            batch_overhead: Duration::ZERO,
            row_cost: Duration::ZERO,
            spark: SparkVersion::default(),
            partitions: decisions::DEFAULT_TOPIC_PARTITIONS,
            journal_events: decisions::DEFAULT_STREAM_JOURNAL_EVENTS,
            materialize: true,
            offline: true,
        }
    }
}

/// Why a record could not be produced.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StreamError {
    /// No stream source reads this topic.
    #[error("no stream source reads topic `{0}`")]
    UnknownTopic(String),
    /// No stream source has this name.
    #[error("no stream source named `{0}`")]
    UnknownSource(String),
    /// The body is neither JSON Lines nor a JSON array of records.
    #[error("{0}")]
    BadBody(String),
}

/// One entry of a stream's journal: a record materialized into a view, or dropped by it.
/// Kept as numbers; rendered by [`StreamEvent::to_json`].
#[derive(Debug, Clone)]
pub(crate) struct StreamEvent {
    /// The feature view's index in the repository.
    pub view: usize,
    /// The micro-batch.
    pub batch_id: u64,
    /// The record's partition.
    pub partition: u32,
    /// The record's offset.
    pub offset: u64,
    /// `None` when materialized, else the drop reason.
    pub dropped: Option<DropReason>,
    /// Why it was dropped.
    pub detail: Option<String>,
    /// The producer's timestamp (ns).
    pub produced_at: i64,
    /// When the row became servable (ns), for materialized records.
    pub servable_at: Option<i64>,
}

impl StreamEvent {
    /// The entry as JSON, with the view's name and times as RFC 3339 with milliseconds.
    pub(crate) fn to_json(&self, repo: &Repository) -> Json {
        let mut out = json!({
            "view": repo.feature_views.get(self.view).map(|v| v.name.as_str()),
            "batch_id": self.batch_id,
            "partition": self.partition,
            "offset": self.offset,
            "outcome": self.dropped.map_or("materialized", DropReason::as_str),
            "produced_at": microbatch::ms(self.produced_at),
        });
        if let Some(d) = &self.detail {
            out["detail"] = json!(d);
        }
        if let Some(at) = self.servable_at {
            out["servable_at"] = json!(microbatch::ms(at));
            out["freshness_ms"] = json!((at - self.produced_at).max(0) as f64 / 1e6);
        }
        out
    }
}

/// The accepted records of a micro-batch, waiting for it to complete.
#[derive(Debug)]
struct Pending {
    visible_at: i64,
    batch_id: u64,
    /// The micro-batch's records, shared by the queries of its group.
    records: Arc<Vec<TopicRecord>>,
    /// Indices in `records` of the rows the view writes.
    accepted: Vec<usize>,
}

/// One feature view's query: its state, its writes waiting for their micro-batch to complete,
/// and what it reports.
#[derive(Debug)]
struct LiveQuery {
    query: Query,
    /// Its group in [`SourceStream::groups`].
    group: usize,
    trigger: i64,
    pending: VecDeque<Pending>,
    progress: progress::RecentProgress,
    freshness: Freshness,
    dropped: [u64; 3],
    rows_written: u64,
    online: bool,
    attributes: bool,
    same_ts: SameTimestamp,
    feature_start_time: Option<i64>,
}

/// Queries of one source that run their micro-batches together: they have the same trigger, so
/// (with the same batch duration) the same micro-batches, and share the front of their plan
/// ([`QuerySpec::shares_front`]), so one deduplication state decides for all of them exactly what
/// each would decide with its own ([`decisions::STREAM_QUERIES_SHARE_DEDUP_STATE`]).
#[derive(Debug)]
struct LiveGroup {
    trigger: i64,
    /// Next offset to read, per partition.
    offsets: Vec<u64>,
    /// When the queries started; their first trigger.
    started_at: i64,
    last_start: Option<i64>,
    busy_until: i64,
    /// Records read so far (all partitions), against the topic's appended count.
    consumed: u64,
    /// The next attempt while unread records wait: it changes only when a batch runs, since
    /// later appends cannot be earlier than the earliest unread one.
    next_try: Option<i64>,
    /// The deduplication keys held for every member.
    dedup: DedupState,
    /// The members' indices in [`SourceStream::queries`].
    members: Vec<usize>,
    /// Record buffers of applied micro-batches, reused by the next ones (a micro-batch of a
    /// 30 s trigger at 1k records/s reads megabytes).
    spare: Vec<Vec<TopicRecord>>,
    /// Record buffers of applied micro-batches not emptied yet: a tick may run a group on a
    /// short-lived thread of its own, and the records are then dropped on the thread that runs
    /// the source ([`LiveGroup::release_spent`]), which lives on. Freed on the short-lived
    /// thread, their memory came back to the allocator late and the producer kept touching
    /// fresh pages. A [`pipeline`] group's thread lives for the run and drops them itself.
    spent: Vec<Vec<TopicRecord>>,
    /// The verdicts of the last micro-batch, their buffer reused.
    screen: microbatch::Screen,
    /// The journal buffer of a run, reused: fresh memory is what a long run cannot afford.
    journal: Journal,
}

/// A micro-batch's rows as one reader of the topic decoded them.
struct TopicRows<'a> {
    records: &'a [TopicRecord],
    reader: usize,
}

impl microbatch::Rows for TopicRows<'_> {
    fn count(&self) -> usize {
        self.records.len()
    }
    fn row(&self, i: usize) -> &Decoded {
        self.records[i]
            .decoded
            .get(self.reader)
            .unwrap_or(&FALLBACK)
    }
}

/// The journal of a stream: the newest per-event entries, and how many older ones were let go.
#[derive(Debug, Default)]
struct Journal {
    entries: VecDeque<StreamEvent>,
    let_go: u64,
}

impl Journal {
    fn push(&mut self, limit: usize, event: StreamEvent) {
        if limit == 0 {
            self.let_go += 1;
            return;
        }
        if self.entries.len() >= limit {
            self.entries.pop_front();
            self.let_go += 1;
        }
        self.entries.push_back(event);
    }

    /// Moves `other`'s entries after this one's, leaving `other` empty.
    fn append(&mut self, limit: usize, other: &mut Journal) {
        self.let_go += std::mem::take(&mut other.let_go);
        for e in other.entries.drain(..) {
            self.push(limit, e);
        }
    }
}

/// One stream source's queries, their groups and what their runs left.
#[derive(Debug)]
struct SourceStream {
    source: usize,
    name: String,
    topic: usize,
    reader: usize,
    queries: Vec<LiveQuery>,
    groups: Vec<LiveGroup>,
    out: Outputs,
}

/// What a source keeps of its groups' runs: the journal, and how far the offline store holds
/// the topic.
#[derive(Debug, Default)]
struct Outputs {
    journal: Journal,
    /// Per partition: records before this offset are in the offline store.
    offline_next: Vec<u64>,
}

/// Unread records above which the groups of a source run their micro-batches on threads of
/// their own: below it a thread costs more than it saves.
const PARALLEL_ROWS: u64 = 8_192;

/// Every topic and stream of one mock instance.
#[derive(Debug)]
pub struct Streams {
    config: StreamConfig,
    topics: Vec<Topic>,
    sources: Vec<Mutex<SourceStream>>,
    wake: Arc<tokio::sync::Notify>,
    ticks: std::sync::atomic::AtomicU64,
}

impl Streams {
    /// Topics and queries for the repository's stream sources, started at `now`.
    pub fn new(repo: &Repository, config: StreamConfig, now: i64) -> Self {
        let mut topics: Vec<Topic> = Vec::new();
        let mut names: Vec<&str> = Vec::new();
        for s in &repo.stream_sources {
            if !names.contains(&s.topic.as_str()) {
                names.push(&s.topic);
            }
        }
        for name in names {
            let readers: Vec<_> = repo
                .stream_sources
                .iter()
                .enumerate()
                .filter(|(_, s)| s.topic == name)
                .map(|(i, s)| (i, s.clone()))
                .collect();
            let key_fields = readers
                .first()
                .and_then(|(_, s)| {
                    repo.views_of_source(&s.name)
                        .first()
                        .map(|&v| repo.feature_views[v].join_keys.clone())
                })
                .unwrap_or_default()
                .into_iter()
                .map(|(k, _)| k)
                .collect();
            topics.push(Topic::new(name, readers, key_fields, config.partitions));
        }
        let sources = (0..repo.stream_sources.len())
            .map(|i| Mutex::new(SourceStream::new(repo, &config, &topics, i, now)))
            .collect();
        Streams {
            config,
            topics,
            sources,
            wake: Arc::new(tokio::sync::Notify::new()),
            ticks: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// The engine's configuration.
    pub fn config(&self) -> &StreamConfig {
        &self.config
    }

    /// A topic by name.
    pub fn topic(&self, name: &str) -> Option<&Topic> {
        self.topics.iter().find(|t| t.name() == name)
    }

    /// Every topic.
    pub fn topics(&self) -> &[Topic] {
        &self.topics
    }

    fn lock(&self, source: usize) -> MutexGuard<'_, SourceStream> {
        self.sources[source]
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// Runs every micro-batch due at `state`'s clock time and applies every write whose batch
    /// has completed. Idempotent for a given time and topic content.
    pub fn tick(&self, state: &MockState) {
        let now = state.clock.now();
        let wall = !state.clock.is_virtual();
        for i in 0..self.sources.len() {
            let mut s = self.lock(i);
            let topic = &self.topics[s.topic];
            s.run_due(state, topic, &self.config, now, wall);
            // Retention: let go of what every reader of the topic has read.
            let readers = topic.readers().to_vec();
            drop(s);
            // Retention every few ticks is enough and keeps a per-record tick cheap.
            let tick = self.ticks.fetch_add(1, Ordering::Relaxed);
            if readers.last() == Some(&i) && (wall || tick.is_multiple_of(64)) {
                self.release_read(topic, &readers);
            }
        }
    }

    /// Lets go of a topic's records that every query reading it has read (the engine does it
    /// every few runs on its own).
    pub fn release(&self, topic: &Topic) {
        self.release_read(topic, topic.readers());
    }

    fn release_read(&self, topic: &Topic, readers: &[usize]) {
        let mut min: Vec<u64> = topic.end_offsets();
        for &r in readers {
            self.lock(r).lower_to_unread(&mut min);
        }
        topic.release_before(&min);
    }

    /// The earliest time a micro-batch or a completing write is due, if any.
    pub fn next_due(&self) -> Option<i64> {
        (0..self.sources.len())
            .filter_map(|i| {
                let s = self.lock(i);
                let topic = &self.topics[s.topic];
                let batches = s.groups.iter().filter_map(|g| g.next_attempt(topic));
                let writes = s
                    .queries
                    .iter()
                    .filter_map(|q| q.pending.front().map(|p| p.visible_at));
                batches.chain(writes).min()
            })
            .min()
    }

    /// Makes room for `keys` deduplication keys in every query of a source at once, so a long
    /// simulation does not grow the tables step by step.
    pub fn reserve_dedup(&self, source: usize, keys: usize) {
        if source < self.sources.len() {
            for g in &mut self.lock(source).groups {
                g.dedup.reserve(keys);
            }
        }
    }

    /// Empties topics, journals, histograms and query state; queries restart at `now`.
    pub fn reset(&self, repo: &Repository, now: i64) {
        for t in &self.topics {
            t.clear();
        }
        for (i, s) in self.sources.iter().enumerate() {
            *s.lock().unwrap_or_else(|p| p.into_inner()) =
                SourceStream::new(repo, &self.config, &self.topics, i, now);
        }
    }

    /// Wakes the wall-clock driver (new records arrived).
    fn notify(&self) {
        self.wake.notify_one();
    }

    /// The index of a stream source by name.
    pub fn source_index(&self, name: &str) -> Option<usize> {
        (0..self.sources.len()).find(|&i| self.lock(i).name == name)
    }

    /// Summary of every stream: `GET /_mock/streams`.
    pub fn summary(&self, repo: &Repository) -> Json {
        let streams: Vec<Json> = (0..self.sources.len())
            .map(|i| {
                let s = self.lock(i);
                let topic = &self.topics[s.topic];
                json!({
                    "source": s.name,
                    "topic": topic.name(),
                    "partitions": topic.partition_count(),
                    "end_offsets": topic.end_offsets(),
                    "records_held": topic.held(),
                    "watermark_delay_threshold": crate::duration::Human(repo.stream_sources[i].watermark_delay_threshold).to_string(),
                    "queries": s.queries.iter().map(|q| json!({
                        "name": q.query.spec.view_name,
                        "trigger_interval_ms": q.trigger / 1_000_000,
                        "batches": q.query.batches,
                        "watermark": q.query.watermark.current().map(microbatch::ms),
                        "state_rows": s.state_rows(q),
                        "rows_written": q.rows_written,
                        "dropped": drops_json(q.dropped),
                        "offsets": s.groups[q.group].offsets,
                    })).collect::<Vec<_>>(),
                    "freshness_ms": s.freshness().to_json(),
                })
            })
            .collect();
        json!({
            "spark": self.config.spark,
            "batch_overhead_ms": self.config.batch_overhead.as_secs_f64() * 1e3,
            "row_cost_us": self.config.row_cost.as_secs_f64() * 1e6,
            "streams": streams,
        })
    }

    /// One source's progress: `GET /_mock/streams/{source}/progress`.
    pub fn progress(&self, repo: &Repository, source: usize, recent: usize) -> Json {
        let s = self.lock(source);
        let topic = self.topics[s.topic].name();
        let queries: Vec<Json> = s
            .queries
            .iter()
            .map(|q| {
                let name = format!("{}/{}", s.name, q.query.spec.view_name);
                let id = query_id(&name);
                let all: Vec<&BatchProgress> = q.progress.iter().collect();
                let recent_progress: Vec<Json> = all[all.len().saturating_sub(recent)..]
                    .iter()
                    .map(|p| p.to_json(&id, &name, topic, &q.query.spec.view_name))
                    .collect();
                json!({
                    "name": name,
                    "view": q.query.spec.view_name,
                    "trigger_interval_ms": q.trigger / 1_000_000,
                    "lastProgress": q.progress.last().map(|p| p.to_json(&id, &name, topic, &q.query.spec.view_name)),
                    "recentProgress": recent_progress,
                    "dropped": drops_json(q.dropped),
                    "freshness_ms": q.freshness.to_json(),
                })
            })
            .collect();
        let recent_drops: Vec<Json> = s
            .out
            .journal
            .entries
            .iter()
            .filter(|e| e.dropped.is_some())
            .rev()
            .take(recent.max(1).saturating_mul(10))
            .map(|e| e.to_json(repo))
            .collect();
        json!({
            "source": s.name,
            "topic": topic,
            "queries": queries,
            "dropped": {
                "counts": drops_json(s.queries.iter().fold([0; 3], |mut acc, q| {
                    for (a, d) in acc.iter_mut().zip(q.dropped) { *a += d; }
                    acc
                })),
                "recent": recent_drops,
            },
            "freshness_ms": s.freshness().to_json(),
        })
    }

    /// One source's journal: the newest `limit` per-event entries, oldest first.
    pub fn journal(&self, repo: &Repository, source: usize, limit: usize) -> Json {
        let s = self.lock(source);
        let skip = s.out.journal.entries.len().saturating_sub(limit);
        json!({
            "source": s.name,
            "let_go": s.out.journal.let_go,
            "entries": s.out.journal.entries.iter().skip(skip).map(|e| e.to_json(repo)).collect::<Vec<_>>(),
        })
    }

    /// The freshness histogram of a source (every view's materialized events).
    pub fn freshness(&self, source: usize) -> Freshness {
        self.lock(source).freshness()
    }

    /// Micro-batches run by query `k` of a source.
    pub fn query_batches(&self, source: usize, k: usize) -> u64 {
        self.lock(source)
            .queries
            .get(k)
            .map_or(0, |q| q.query.batches)
    }

    /// Rows written to the online store by query `k` of a source.
    pub fn query_rows_written(&self, source: usize, k: usize) -> u64 {
        self.lock(source)
            .queries
            .get(k)
            .map_or(0, |q| q.rows_written)
    }

    /// The freshness histogram of query `k` of a source.
    pub fn query_freshness(&self, source: usize, k: usize) -> Freshness {
        self.lock(source)
            .queries
            .get(k)
            .map(|q| q.freshness.clone())
            .unwrap_or_default()
    }

    /// Micro-batches run, rows read, rows dropped (late, duplicate, invalid) and state rows held,
    /// summed over a source's queries.
    pub fn totals(&self, source: usize) -> StreamTotals {
        let s = self.lock(source);
        let mut t = StreamTotals::default();
        for q in &s.queries {
            t.batches += q.query.batches;
            t.rows_written += q.rows_written;
            for (a, d) in t.dropped.iter_mut().zip(q.dropped) {
                *a += d;
            }
            t.state_rows += s.state_rows(q) as u64;
            t.rows_read += s.groups[q.group].offsets.iter().sum::<u64>();
        }
        t.state_rows_held = t.state_rows
            - s.queries
                .iter()
                .map(|q| s.groups[q.group].dedup.len() as u64)
                .sum::<u64>()
            + s.groups.iter().map(|g| g.dedup.len() as u64).sum::<u64>();
        t
    }
}

/// Totals of one stream source over its queries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StreamTotals {
    /// Micro-batches run.
    pub batches: u64,
    /// Rows read.
    pub rows_read: u64,
    /// Rows written to the online store.
    pub rows_written: u64,
    /// Rows dropped: late, duplicate, invalid.
    pub dropped: [u64; 3],
    /// Keys held in state (aggregation groups and deduplication keys), each query counted as
    /// Spark counts its own state (`numRowsTotal`).
    pub state_rows: u64,
    /// Keys held in memory: queries that share a deduplication state hold its keys once.
    pub state_rows_held: u64,
}

/// A stable id for a query (Spark prints a UUID; the name's hash keeps it the same across runs).
fn query_id(name: &str) -> String {
    let h = |basis: u64| {
        name.bytes().fold(basis, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        })
    };
    let (a, b) = (h(0xcbf2_9ce4_8422_2325), h(0x6c62_272e_07bb_0142));
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xffff,
        b >> 48,
        b & 0xffff_ffff_ffff
    )
}

fn drops_json(d: [u64; 3]) -> Json {
    json!({"late": d[0], "duplicate": d[1], "invalid": d[2]})
}

fn reason_index(r: DropReason) -> usize {
    match r {
        DropReason::Late => 0,
        DropReason::Duplicate => 1,
        DropReason::Invalid => 2,
    }
}

/// The default trigger of a view: 0 s for CONTINUOUS, 30 s otherwise (Tecton's stream job).
pub(crate) fn default_trigger(kind: &ViewKind) -> i64 {
    match kind {
        ViewKind::Aggregates {
            mode: StreamProcessingMode::Continuous,
            ..
        } => decisions::CONTINUOUS_TRIGGER,
        ViewKind::Aggregates {
            mode: StreamProcessingMode::TimeInterval,
            ..
        }
        | ViewKind::Attributes { .. } => decisions::TIME_INTERVAL_TRIGGER,
    }
}

/// The modeled duration (ns) of a micro-batch of `rows` input rows: `batch_overhead` plus
/// `row_cost` per row.
pub(crate) fn batch_duration(config: &StreamConfig, rows: usize) -> i64 {
    let per_row = nanos(config.row_cost).saturating_mul(i64::try_from(rows).unwrap_or(i64::MAX));
    nanos(config.batch_overhead).saturating_add(per_row)
}

fn nanos(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

impl SourceStream {
    fn new(
        repo: &Repository,
        config: &StreamConfig,
        topics: &[Topic],
        source: usize,
        now: i64,
    ) -> Self {
        let s = &repo.stream_sources[source];
        let topic = topics.iter().position(|t| t.name() == s.topic).unwrap_or(0);
        let reader = topics
            .get(topic)
            .and_then(|t| t.readers().iter().position(|&r| r == source))
            .unwrap_or(0);
        let mut groups: Vec<LiveGroup> = Vec::new();
        let mut queries: Vec<LiveQuery> = Vec::new();
        for spec in QuerySpec::of_source(repo, source) {
            let view = &repo.feature_views[spec.view];
            let trigger = s
                .trigger_interval
                .or(config.trigger_interval.map(nanos))
                .unwrap_or_else(|| default_trigger(&view.kind))
                .max(0);
            let attributes = matches!(spec.kind, QueryKind::Attributes);
            let same_ts = if spec.is_time_interval() {
                // Tiles keep every event of a group; only CONTINUOUS rows overwrite.
                SameTimestamp::Keep
            } else {
                SameTimestamp::Replace
            };
            let index = queries.len();
            let group = groups.iter().position(|g| {
                g.trigger == trigger && queries[g.members[0]].query.spec.shares_front(&spec)
            });
            let group = match group {
                Some(g) => {
                    groups[g].members.push(index);
                    g
                }
                None => {
                    groups.push(LiveGroup {
                        trigger,
                        offsets: Vec::new(),
                        started_at: now,
                        last_start: None,
                        busy_until: now,
                        consumed: 0,
                        next_try: None,
                        dedup: DedupState::default(),
                        members: vec![index],
                        spare: Vec::new(),
                        spent: Vec::new(),
                        screen: microbatch::Screen::default(),
                        journal: Journal::default(),
                    });
                    groups.len() - 1
                }
            };
            queries.push(LiveQuery {
                query: Query::new(spec).counting_tile_writes(),
                group,
                trigger,
                pending: VecDeque::new(),
                progress: progress::RecentProgress::default(),
                freshness: Freshness::default(),
                dropped: [0; 3],
                rows_written: 0,
                online: view.online,
                attributes,
                same_ts,
                feature_start_time: view.feature_start_time,
            });
        }
        SourceStream {
            source,
            name: s.name.clone(),
            topic,
            reader,
            queries,
            groups,
            out: Outputs::default(),
        }
    }

    /// [`LiveQuery::state_rows`], with the query's own group.
    fn state_rows(&self, q: &LiveQuery) -> usize {
        q.state_rows(&self.groups[q.group])
    }

    /// Freshness over every view's materialized events.
    fn freshness(&self) -> Freshness {
        let mut all = Freshness::default();
        for q in &self.queries {
            all.merge(&q.freshness);
        }
        all
    }

    /// Runs every group's due micro-batches and applies the writes completed by `now`. Groups
    /// are independent (each reads the topic at its own offsets and writes its own views), so
    /// when two or more have many unread records they run on threads of their own.
    fn run_due(
        &mut self,
        state: &MockState,
        topic: &Topic,
        config: &StreamConfig,
        now: i64,
        wall: bool,
    ) {
        let reader = self.reader;
        let mut members: Vec<Vec<&mut LiveQuery>> =
            self.groups.iter().map(|_| Vec::new()).collect();
        for q in &mut self.queries {
            members[q.group].push(q);
        }
        let appended = topic.appended();
        let busy = self
            .groups
            .iter()
            .filter(|g| appended.saturating_sub(g.consumed) >= PARALLEL_ROWS)
            .count();
        let mut work = self.groups.iter_mut().zip(members);
        let runs: Vec<GroupRun> = if busy >= 2 {
            // The first group runs on this thread, the others on threads of their own.
            std::thread::scope(|scope| {
                let first = work.next();
                let handles: Vec<_> = work
                    .map(|(g, mut m)| {
                        scope.spawn(move || {
                            g.run_due(&mut m, state, topic, config, reader, now, i64::MAX, wall)
                        })
                    })
                    .collect();
                let mut runs: Vec<GroupRun> = first
                    .map(|(g, mut m)| {
                        g.run_due(&mut m, state, topic, config, reader, now, i64::MAX, wall)
                    })
                    .into_iter()
                    .collect();
                runs.extend(
                    handles
                        .into_iter()
                        .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e))),
                );
                runs
            })
        } else {
            work.map(|(g, mut m)| {
                g.run_due(&mut m, state, topic, config, reader, now, i64::MAX, wall)
            })
            .collect()
        };
        for (g, run) in self.groups.iter_mut().zip(runs) {
            g.release_spent();
            g.journal = self.out.take(state, config, self.source, self.reader, run);
        }
    }

    /// Lowers `floor` (per partition) to the first offset this source still needs: what a
    /// group has not read, or the offline store does not hold yet.
    fn lower_to_unread(&self, floor: &mut [u64]) {
        lower_to_unread(floor, self.groups.iter().map(|g| &g.offsets[..]), &self.out);
    }
}

/// Lowers `floor` (per partition) to the first offset a source's groups (at `offsets`) and its
/// offline store still need.
fn lower_to_unread<'a>(floor: &mut [u64], offsets: impl Iterator<Item = &'a [u64]>, out: &Outputs) {
    for offsets in offsets {
        for (m, o) in floor.iter_mut().zip(offsets) {
            *m = (*m).min(*o);
        }
        // Partitions a query has not seen yet are unread.
        for m in floor.iter_mut().skip(offsets.len()) {
            *m = 0;
        }
    }
    for (m, o) in floor.iter_mut().zip(&out.offline_next) {
        *m = (*m).min(*o);
    }
}

impl Outputs {
    /// Keeps what one group's run left: its journal entries after the source's, its
    /// micro-batches' records in the offline store. Returns the run's journal buffer, emptied,
    /// for the group's next run.
    fn take(
        &mut self,
        state: &MockState,
        config: &StreamConfig,
        source: usize,
        reader: usize,
        mut run: GroupRun,
    ) -> Journal {
        self.journal.append(config.journal_events, &mut run.journal);
        if config.offline {
            for records in &run.batches {
                self.write_offline(state, source, reader, records);
            }
        }
        run.journal
    }

    /// The batch source of a stream holds every valid record, dropped or not: append each record
    /// once, when the first query reads it.
    fn write_offline(
        &mut self,
        state: &MockState,
        source: usize,
        reader: usize,
        records: &[TopicRecord],
    ) {
        let index = state.repo.push_sources.len() + source;
        for rec in records {
            let p = rec.partition as usize;
            if self.offline_next.len() <= p {
                self.offline_next.resize(p + 1, 0);
            }
            if rec.offset < self.offline_next[p] {
                continue;
            }
            self.offline_next[p] = rec.offset + 1;
            if let Some(Ok(row)) = rec.decoded.get(reader) {
                let seq = state.record_seq.fetch_add(1, Ordering::Relaxed);
                state.offline.append(
                    index,
                    OfflineRow {
                        seq,
                        request: u64::MAX,
                        ingested_at: rec.appended_at,
                        ts: row.ts,
                        values: row.values.clone(),
                    },
                );
            }
        }
    }
}

/// What one group's run left for its source: journal entries and the micro-batches read (for
/// the offline store), in order.
#[derive(Debug, Default)]
struct GroupRun {
    journal: Journal,
    batches: Vec<Arc<Vec<TopicRecord>>>,
}

static FALLBACK: Decoded = Err(String::new());

impl LiveGroup {
    /// When the next micro-batch starts, if unread records exist: Spark's processing-time
    /// trigger tries at the first trigger time after the previous batch's (or at once when that
    /// batch overran), then on each interval boundary, and skips tries that find no new data.
    fn next_attempt(&self, topic: &Topic) -> Option<i64> {
        let parts = topic.partition_count();
        let earliest = (0..parts)
            .filter_map(|p| {
                topic.first_appended_at(p, self.offsets.get(p as usize).copied().unwrap_or(0))
            })
            .min()?;
        let first_try = self.first_try();
        if earliest <= first_try || self.trigger == 0 {
            return Some(first_try.max(earliest));
        }
        // The first boundary at or after the earliest unread record.
        let rem = earliest.rem_euclid(self.trigger);
        Some(if rem == 0 {
            earliest
        } else {
            earliest - rem + self.trigger
        })
    }

    /// The first time the next micro-batch may start: the queries' start, then the first
    /// trigger time after the previous batch's start, but not before that batch has completed.
    fn first_try(&self) -> i64 {
        match self.last_start {
            None => self.started_at,
            Some(last) if self.trigger > 0 => {
                (last - last.rem_euclid(self.trigger) + self.trigger).max(self.busy_until)
            }
            Some(_) => self.busy_until,
        }
    }

    /// [`LiveGroup::next_attempt`], skipping the partition scan when nothing is unread or the
    /// answer is known. Records appended at or before `horizon` are all in the topic; later ones
    /// may be arriving meanwhile (a [`pipeline`] feeds the topic while groups run), so only an
    /// answer within the horizon is kept: one partition may show a later record before another
    /// shows an earlier one.
    fn next_attempt_cached(&mut self, topic: &Topic, horizon: i64) -> Option<i64> {
        if self.consumed >= topic.appended() {
            return None;
        }
        if self.next_try.is_none() {
            let next = self.next_attempt(topic);
            if next.is_none_or(|t| t > horizon) {
                return next;
            }
            self.next_try = next;
        }
        self.next_try
    }

    /// Runs the group's micro-batches due by `now`, each after applying the writes completed by
    /// its start, then applies the writes completed by `now`. Every record appended at or before
    /// `horizon` (at least `now`) is in the topic.
    #[allow(clippy::too_many_arguments)]
    fn run_due(
        &mut self,
        members: &mut [&mut LiveQuery],
        state: &MockState,
        topic: &Topic,
        config: &StreamConfig,
        reader: usize,
        now: i64,
        horizon: i64,
        wall: bool,
    ) -> GroupRun {
        let mut run = GroupRun {
            journal: std::mem::take(&mut self.journal),
            batches: Vec::new(),
        };
        let mut applied = Vec::new();
        loop {
            // Writes of completed batches become servable first; when no batch is due any
            // more, that is everything visible by `now`.
            let next = self.next_attempt_cached(topic, horizon);
            let apply_until = next.filter(|&t| t <= now).unwrap_or(now);
            for q in members.iter_mut() {
                q.apply(
                    state,
                    apply_until,
                    wall,
                    config,
                    reader,
                    &mut run.journal,
                    &mut applied,
                );
            }
            self.recycle(&mut applied);
            let Some(start) = next.filter(|&t| t <= now) else {
                break;
            };
            let records = self.run_batch(
                members,
                topic,
                config,
                reader,
                start,
                now,
                wall,
                &mut run.journal,
            );
            if config.offline {
                run.batches.push(records);
            }
        }
        // The last pass of the loop applied everything visible by `now`.
        run
    }

    /// Sets aside the record buffers of fully applied micro-batches, to be emptied by
    /// [`LiveGroup::release_spent`] and reused.
    fn recycle(&mut self, applied: &mut Vec<Arc<Vec<TopicRecord>>>) {
        for records in applied.drain(..) {
            if let Ok(records) = Arc::try_unwrap(records) {
                self.spent.push(records);
            }
        }
    }

    /// Drops the records of applied micro-batches, on the caller's thread (one that lives on),
    /// and keeps two of their buffers for the next micro-batches.
    fn release_spent(&mut self) {
        for mut records in self.spent.drain(..) {
            topic::free(&mut records);
            if self.spare.len() < 2 {
                self.spare.push(records);
            }
        }
    }

    /// Runs one micro-batch starting at `start` for every member and returns its records.
    #[allow(clippy::too_many_arguments)]
    fn run_batch(
        &mut self,
        members: &mut [&mut LiveQuery],
        topic: &Topic,
        config: &StreamConfig,
        reader: usize,
        start: i64,
        now: i64,
        wall: bool,
        journal: &mut Journal,
    ) -> Arc<Vec<TopicRecord>> {
        let began = Instant::now();
        let parts = topic.partition_count();
        self.offsets.resize(parts as usize, 0);
        let start_offsets = self.offsets.clone();
        let mut records = self.spare.pop().unwrap_or_default();
        for p in 0..parts {
            let read = topic.read_into(p, self.offsets[p as usize], start, &mut records);
            self.offsets[p as usize] += read as u64;
            self.consumed += read as u64;
        }
        let records = Arc::new(records);
        let rows = TopicRows {
            records: &records,
            reader,
        };
        let mut queries: Vec<&mut Query> = members.iter_mut().map(|q| &mut q.query).collect();
        let outcomes = microbatch::run_shared(
            &mut queries,
            &mut self.dedup,
            &rows,
            config.spark,
            &mut self.screen,
        );
        let overhead = batch_duration(config, records.len());
        let processing = if wall {
            i64::try_from(began.elapsed().as_nanos()).unwrap_or(0)
        } else {
            0
        };
        let visible_at = start.max(if wall { now } else { start }) + processing + overhead;
        let duration = visible_at - start;
        for (q, outcome) in members.iter_mut().zip(outcomes) {
            q.record_batch(
                outcome,
                &records,
                reader,
                start,
                visible_at,
                duration,
                &start_offsets,
                &self.offsets,
                config,
                journal,
            );
        }
        self.last_start = Some(start);
        self.next_try = None;
        self.busy_until = visible_at;
        records
    }
}

impl LiveQuery {
    /// The keys the query holds, as Spark counts its own state: its aggregation groups and the
    /// deduplication keys of its group.
    fn state_rows(&self, group: &LiveGroup) -> usize {
        self.query.aggregation_rows() + group.dedup.len()
    }

    /// Keeps what a micro-batch did: its progress, its drops, and its accepted rows as writes
    /// that wait for `visible_at`.
    #[allow(clippy::too_many_arguments)]
    fn record_batch(
        &mut self,
        mut outcome: BatchOutcome,
        records: &Arc<Vec<TopicRecord>>,
        reader: usize,
        start: i64,
        visible_at: i64,
        duration: i64,
        start_offsets: &[u64],
        end_offsets: &[u64],
        config: &StreamConfig,
        journal: &mut Journal,
    ) {
        let batch_id = self.query.batches - 1;
        let view = self.query.spec.view;
        let mut accepted = std::mem::take(&mut outcome.accepted);
        if !self.online {
            accepted.clear();
        } else if self.attributes {
            // Like the ingest path: attribute views ignore rows before feature_start_time;
            // aggregations keep every event.
            accepted.retain(|&i| {
                matches!(records[i].decoded.get(reader), Some(Ok(row))
                    if decisions::attribute_row_kept(self.feature_start_time, row.ts))
            });
        }
        let mut dropped = [0u64; 3];
        for (_, reason, _) in &outcome.dropped {
            dropped[reason_index(*reason)] += 1;
        }
        for (a, d) in self.dropped.iter_mut().zip(dropped) {
            *a += d;
        }
        let n = outcome.num_input_rows as f64;
        let since_last = self
            .progress
            .last()
            .map(|l| (start - l.started_at) as f64 / 1e9);
        self.progress.push(BatchProgress {
            batch_id,
            started_at: start,
            num_input_rows: outcome.num_input_rows as u64,
            input_rows_per_second: since_last.filter(|s| *s > 0.0).map(|s| n / s),
            processed_rows_per_second: (duration > 0).then(|| n / (duration as f64 / 1e9)),
            duration_ms: u64::try_from(duration / 1_000_000).unwrap_or(0),
            watermark: outcome.watermark,
            event_time: outcome.event_time,
            aggregation: outcome.aggregation,
            dedup: outcome.dedup,
            start_offsets: start_offsets.to_vec(),
            end_offsets: end_offsets.to_vec(),
            num_output_rows: if self.query.spec.is_time_interval() {
                outcome.num_tile_writes as u64
            } else {
                accepted.len() as u64
            },
            dropped,
        });
        self.pending.push_back(Pending {
            visible_at,
            batch_id,
            records: Arc::clone(records),
            accepted,
        });
        for (i, reason, detail) in outcome.dropped {
            if let Some(rec) = records.get(i) {
                journal.push(
                    config.journal_events,
                    StreamEvent {
                        view,
                        batch_id,
                        partition: rec.partition,
                        offset: rec.offset,
                        dropped: Some(reason),
                        detail: Some(detail),
                        produced_at: rec.produced_at,
                        servable_at: None,
                    },
                );
            }
        }
    }

    /// Applies the writes of completed batches (visible at or before `until`).
    #[allow(clippy::too_many_arguments)]
    fn apply(
        &mut self,
        state: &MockState,
        until: i64,
        wall: bool,
        config: &StreamConfig,
        reader: usize,
        journal: &mut Journal,
        applied: &mut Vec<Arc<Vec<TopicRecord>>>,
    ) {
        let limit = config.journal_events;
        let view = self.query.spec.view;
        while self.pending.front().is_some_and(|p| p.visible_at <= until) {
            let Some(pending) = self.pending.pop_front() else {
                break;
            };
            // On the wall clock rows are servable when they are actually written; on the
            // virtual clock when their micro-batch completes, which is also the time the online
            // store sees the write.
            let (servable_at, written_at) = if wall {
                let now = state.clock.now();
                (crate::clock::wall_now().max(pending.visible_at), now)
            } else {
                (pending.visible_at, pending.visible_at)
            };
            // Only the newest entries stay in the journal.
            let logged_from = pending.accepted.len().saturating_sub(limit);
            for (k, &i) in pending.accepted.iter().enumerate() {
                let Some(rec) = pending.records.get(i) else {
                    continue;
                };
                if config.materialize {
                    if let Some(Ok(row)) = rec.decoded.get(reader) {
                        self.write_online(state, row, written_at);
                    }
                }
                self.rows_written += 1;
                self.freshness.record(servable_at, rec.produced_at);
                if k < logged_from {
                    journal.let_go += 1;
                    continue;
                }
                journal.push(
                    limit,
                    StreamEvent {
                        view,
                        batch_id: pending.batch_id,
                        partition: rec.partition,
                        offset: rec.offset,
                        dropped: None,
                        detail: None,
                        produced_at: rec.produced_at,
                        servable_at: Some(servable_at),
                    },
                );
            }
            applied.push(pending.records);
            self.query.recycle_accepted(pending.accepted);
        }
    }

    /// Writes one accepted row to the online store at clock time `now`.
    fn write_online(&self, state: &MockState, row: &Row, now: i64) {
        let spec = &self.query.spec;
        let Some(key) = EntityKey::from_values(spec.key_columns.iter().map(|&c| &row.values[c]))
        else {
            return;
        };
        let values: Vec<Value> = spec
            .value_columns
            .iter()
            .map(|&c| row.values[c].clone())
            .collect();
        let seq = state.record_seq.fetch_add(1, Ordering::Relaxed);
        if self.attributes {
            // The write carries the view's attribute values, in attribute order.
            let columns: Vec<usize> = (0..values.len()).collect();
            state.online.put_attributes(
                spec.view,
                &state.online.key(&key),
                row.ts,
                seq,
                &values,
                &columns,
                now,
            );
        } else {
            state
                .online
                .put_event_with(spec.view, key, row.ts, seq, values, self.same_ts, now);
        }
    }
}

impl MockState {
    /// Produces JSON records to a topic, as a Kafka producer would: each record is appended to
    /// `partition`, or to the partition its join keys hash to, stamped `produced_at` (default:
    /// now on the mock clock). Records that do not match the schema are appended too; the engine
    /// drops and counts them. Returns each record's offset, in input order.
    pub fn produce(
        &self,
        topic: &str,
        records: &[Json],
        partition: Option<u32>,
        produced_at: Option<i64>,
    ) -> Result<Vec<Offset>, StreamError> {
        let t = self
            .streams
            .topic(topic)
            .ok_or_else(|| StreamError::UnknownTopic(topic.to_owned()))?;
        let now = self.clock.now();
        let produced_at = produced_at.unwrap_or(now);
        let mut out = Vec::with_capacity(records.len());
        for record in records {
            let payload = Bytes::from(serde_json::to_vec(record).unwrap_or_default());
            let p = partition.unwrap_or_else(|| t.partition_for(record));
            let decoded = t.decode(&payload);
            let offset = t.append(p, payload, decoded, produced_at, now, None);
            out.push(Offset {
                partition: p,
                offset,
            });
        }
        self.after_append();
        Ok(out)
    }

    /// Appends one consumed record (the value bytes) to a topic's partition, as a Kafka consumer
    /// does for each record it polls; `broker_offset` is the record's offset in the real broker.
    /// Returns the record's offset in the mock's topic.
    pub fn append(
        &self,
        topic: &str,
        partition: u32,
        payload: Bytes,
        produced_at: i64,
        broker_offset: Option<u64>,
    ) -> Result<u64, StreamError> {
        let t = self
            .streams
            .topic(topic)
            .ok_or_else(|| StreamError::UnknownTopic(topic.to_owned()))?;
        let decoded = t.decode(&payload);
        let offset = t.append(
            partition,
            payload,
            decoded,
            produced_at,
            self.clock.now(),
            broker_offset,
        );
        self.after_append();
        Ok(offset)
    }

    /// Runs the micro-batches (and batch jobs) due now. On the virtual clock this is how time reaches the
    /// engine: call it after moving `clock` directly (the admin API and
    /// [`crate::MockTecton::advance_clock`] do).
    pub fn run_streams(&self) {
        self.streams.tick(self);
        self.run_batch_jobs();
    }

    fn after_append(&self) {
        if self.clock.is_virtual() {
            self.streams.tick(self);
        } else {
            self.streams.notify();
        }
    }
}

/// Drives the streams on the wall clock until the state is gone: sleeps until the next batch or
/// write is due, or until records arrive.
pub(crate) async fn drive(state: Weak<MockState>) {
    loop {
        let (next, wake) = {
            let Some(s) = state.upgrade() else { return };
            if !s.clock.is_virtual() {
                s.streams.tick(&s);
            }
            let now = s.clock.now();
            let next = if s.clock.is_virtual() {
                None
            } else {
                s.streams.next_due().map(|t| t.saturating_sub(now).max(0))
            };
            // Only the notifier is kept across the sleep: holding the state would keep the
            // mock (and its offline files) alive after shutdown.
            (next, Arc::clone(&s.streams.wake))
        };
        // Wake at the next due time, on new records, or every 200 ms to notice the state's end
        // and a switch between clocks.
        let nap = next.map_or(200_000_000, |n| n.min(200_000_000));
        let sleep = tokio::time::sleep(Duration::from_nanos(u64::try_from(nap).unwrap_or(0)));
        tokio::select! {
            () = sleep => {}
            () = wake.notified() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::duration::SECOND;

    const MS: i64 = 1_000_000;
    const T0: i64 = 1_717_200_000 * SECOND;

    /// A demo mock on the virtual clock at T0 whose micro-batches take `overhead` plus `row_cost`
    /// per row.
    fn mock(overhead_ms: u64, row_cost_ms: u64) -> MockState {
        MockState::new(
            &Config::new(Repository::demo())
                .virtual_clock(T0)
                .stream(StreamConfig {
                    batch_overhead: Duration::from_millis(overhead_ms),
                    row_cost: Duration::from_millis(row_cost_ms),
                    ..StreamConfig::default()
                }),
        )
    }

    /// Produces one record every 100 ms from T0 for `n` records, then runs what is due at `end`.
    fn produce_every_100ms(state: &MockState, n: i64, end: i64) {
        for i in 0..n {
            state.clock.set(T0 + i * 100 * MS);
            let record = json!({"user_id": format!("u{i}"), "transaction_id": format!("t{i}"),
                "merchant": "m", "amt": 1.0, "is_fraud": 0, "timestamp": "2024-06-01T00:00:00Z"});
            state
                .produce("transactions", &[record], None, None)
                .expect("the demo's topic");
        }
        state.clock.set(end);
        state.run_streams();
    }

    /// The CONTINUOUS query's micro-batches: (start ms after T0, input rows, duration ms).
    fn continuous_batches(state: &MockState) -> Vec<(i64, u64, u64)> {
        let s = state.streams.lock(0);
        let q = &s.queries[0];
        assert_eq!(q.trigger, 0, "the demo's first view is CONTINUOUS");
        q.progress
            .iter()
            .map(|p| ((p.started_at - T0) / MS, p.num_input_rows, p.duration_ms))
            .collect()
    }

    #[test]
    fn with_a_0s_trigger_the_next_batch_starts_when_the_previous_completes() {
        let state = mock(800, 0);
        produce_every_100ms(&state, 30, T0 + 10 * SECOND);
        // Batch 0 starts with the first record; each next one when the previous has run 800 ms
        // and holds what arrived meanwhile (a record appended at a batch's start is in it).
        assert_eq!(
            continuous_batches(&state),
            vec![
                (0, 1, 800),
                (800, 8, 800),
                (1600, 8, 800),
                (2400, 8, 800),
                (3200, 5, 800)
            ]
        );
        // Freshness follows: the record at 100 ms is servable at 1.6 s, the end of its batch.
        let f = state.streams.query_freshness(0, 0);
        assert_eq!(f.count(), 30);
        assert_eq!(f.to_json()["max"], 1_500.0, "max: 1.6 s - 0.1 s");
        let min = f.quantile_ms(0.0).unwrap_or(0.0);
        assert!(
            (min - 800.0).abs() < 1.0,
            "min: 0.8 s (to the histogram's precision), {min}"
        );
    }

    #[test]
    fn a_per_row_cost_lengthens_batches_so_they_grow_with_the_backlog() {
        let state = mock(500, 50);
        produce_every_100ms(&state, 30, T0 + 20 * SECOND);
        // 1 row: 550 ms; then the 5 rows of (0, 550]: 750 ms; then the 8 of (550, 1300]: 900 ms.
        let batches = continuous_batches(&state);
        assert_eq!(batches[..3], [(0, 1, 550), (550, 5, 750), (1300, 8, 900)]);
        let rows: u64 = batches.iter().map(|b| b.1).sum();
        assert_eq!(rows, 30, "every record in exactly one batch");
        for pair in batches.windows(2) {
            assert_eq!(
                pair[0].0 + i64::try_from(pair[0].2).unwrap_or(0),
                pair[1].0,
                "back to back"
            );
        }
    }

    #[test]
    fn without_a_duration_every_record_is_its_own_batch_on_the_virtual_clock() {
        let state = mock(0, 0);
        produce_every_100ms(&state, 5, T0 + SECOND);
        assert_eq!(
            continuous_batches(&state),
            (0..5).map(|i| (i * 100, 1, 0)).collect::<Vec<_>>()
        );
    }

    #[test]
    fn a_30s_trigger_is_not_moved_by_a_shorter_batch_duration() {
        let state = mock(800, 0);
        produce_every_100ms(&state, 400, T0 + 80 * SECOND);
        let s = state.streams.lock(0);
        let tiles = &s.queries[1];
        let starts: Vec<i64> = tiles
            .progress
            .iter()
            .map(|p| (p.started_at - T0) / SECOND)
            .collect();
        assert_eq!(starts, vec![0, 30, 60]);
        let rows: Vec<u64> = tiles.progress.iter().map(|p| p.num_input_rows).collect();
        assert_eq!(rows, vec![1, 300, 99]);
    }
}
