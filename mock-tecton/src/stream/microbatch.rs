//! One feature view's streaming query over one stream source: what a micro-batch does with its
//! rows, independent of where they come from (a topic, or a replay file) and where the results go.
//!
//! The plan Tecton builds per stream feature view, in order:
//! 1. decode each record against the source schema; a mismatch is dropped as `invalid`;
//! 2. `dropDuplicates(deduplication_columns)` (before the watermark, as Tecton does): a record whose
//!    columns equal a held one is dropped as `duplicate`; held keys are let go once their event
//!    time is at or before the watermark, so this state stays bounded;
//! 3. `withWatermark` (if the threshold is not 0): every remaining row updates the max event time;
//! 4. TIME_INTERVAL: `groupBy(window(ts, I), keys)` in update mode. A row whose tile ends at or
//!    before the late cut-off is dropped as `late`; every other row updates its (entity, tile)
//!    partials, each changed group is written once with its running total, then groups whose tile
//!    ends at or before the current watermark are evicted.
//!    CONTINUOUS and attribute views have no stateful operator: every row is written, none is late.

use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasherDefault;

use crate::engine::{AggregateFunction, Partial};
use crate::repo::{FeatureView, Repository, StreamProcessingMode, StreamSource, ViewKind};
use crate::schema::{DataType, Value};
use crate::store::key::{KeyHasher, Prehashed, SlotKey};
use crate::store::EntityKey;

use super::dedup::{self, DedupState};
use super::topic::Decoded;
use super::watermark::{SparkVersion, Watermark};

/// Why a micro-batch dropped a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum DropReason {
    /// Its tile ended at or before the late cut-off (TIME_INTERVAL views only).
    Late,
    /// Its deduplication columns equal those of a record still held.
    Duplicate,
    /// It does not match the source schema.
    Invalid,
}

impl DropReason {
    /// The reason's name as written in progress and replay output.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            DropReason::Late => "late",
            DropReason::Duplicate => "duplicate",
            DropReason::Invalid => "invalid",
        }
    }
}

/// One partial-aggregate column of a TIME_INTERVAL view: a distinct (column, function) pair.
#[derive(Debug, Clone)]
pub(crate) struct PartialColumn {
    /// `<column>_<function>`, e.g. `amt_sum`.
    pub name: String,
    /// The function.
    pub function: AggregateFunction,
    /// The input column's position in [`QuerySpec::value_columns`].
    pub input: usize,
    /// The input column's type.
    pub input_type: DataType,
}

/// How a view's query writes.
#[derive(Debug, Clone)]
pub(crate) enum QueryKind {
    /// Tiles of `interval` ns, written as running partials.
    TimeInterval {
        /// The aggregation interval (ns).
        interval: i64,
        /// The partial columns.
        partials: Vec<PartialColumn>,
    },
    /// Every event written (aggregates computed at request time).
    Continuous,
    /// Every event written (latest values).
    Attributes,
}

/// What one feature view's query over one stream source needs, resolved once.
#[derive(Debug, Clone)]
pub(crate) struct QuerySpec {
    /// The feature view's index in the repository.
    pub view: usize,
    /// Its name.
    pub view_name: String,
    /// TIME_INTERVAL, CONTINUOUS or attributes.
    pub kind: QueryKind,
    /// Source columns of the join keys, in order.
    pub key_columns: Vec<usize>,
    /// Join-key names, in order.
    pub key_names: Vec<String>,
    /// Source columns the view stores per event ([`FeatureView::input_columns`]).
    pub value_columns: Vec<usize>,
    /// Source columns of `deduplication_columns`.
    pub dedup_columns: Vec<usize>,
    /// The watermark delay (ns, 0 for none).
    pub watermark_delay: i64,
}

impl QuerySpec {
    /// The query of `view` over `source`.
    pub(crate) fn new(view_index: usize, view: &FeatureView, source: &StreamSource) -> Self {
        let col = |name: &str| source.schema.index_of(name);
        let inputs = view.input_columns();
        let kind = match &view.kind {
            ViewKind::Attributes { .. } => QueryKind::Attributes,
            ViewKind::Aggregates {
                mode: StreamProcessingMode::Continuous,
                ..
            } => QueryKind::Continuous,
            ViewKind::Aggregates {
                mode: StreamProcessingMode::TimeInterval,
                aggregation_interval,
                features,
            } => {
                let mut partials: Vec<PartialColumn> = Vec::new();
                for f in features {
                    let name = format!("{}_{}", f.column, f.function.name_fragment());
                    if partials.iter().any(|p| p.name == name) {
                        continue;
                    }
                    partials.push(PartialColumn {
                        name,
                        function: f.function,
                        input: inputs.iter().position(|c| *c == f.column).unwrap_or(0),
                        input_type: f.input_type.clone(),
                    });
                }
                QueryKind::TimeInterval {
                    interval: aggregation_interval
                        .unwrap_or(crate::duration::MINUTE)
                        .max(1),
                    partials,
                }
            }
        };
        QuerySpec {
            view: view_index,
            view_name: view.name.clone(),
            kind,
            key_columns: view.join_keys.iter().filter_map(|(k, _)| col(k)).collect(),
            key_names: view.join_keys.iter().map(|(k, _)| k.clone()).collect(),
            value_columns: inputs.into_iter().filter_map(col).collect(),
            dedup_columns: source
                .deduplication_columns
                .iter()
                .filter_map(|c| col(c))
                .collect(),
            watermark_delay: source.watermark_delay_threshold,
        }
    }

    /// Every query of a stream source, one per feature view reading it, in repository order.
    pub(crate) fn of_source(repo: &Repository, source: usize) -> Vec<QuerySpec> {
        let s = &repo.stream_sources[source];
        repo.views_of_source(&s.name)
            .into_iter()
            .map(|v| QuerySpec::new(v, &repo.feature_views[v], s))
            .collect()
    }

    /// Whether `other` decides the front of a micro-batch as this query does (the same join
    /// keys, deduplication columns and watermark delay), so that both, reading the same
    /// micro-batches, can share one deduplication state ([`run_shared`]).
    pub(crate) fn shares_front(&self, other: &QuerySpec) -> bool {
        self.key_columns == other.key_columns
            && self.dedup_columns == other.dedup_columns
            && self.watermark_delay == other.watermark_delay
    }

    /// Whether the query keeps aggregation state (a TIME_INTERVAL view).
    pub(crate) fn is_time_interval(&self) -> bool {
        matches!(self.kind, QueryKind::TimeInterval { .. })
    }
}

/// One (entity, tile) row written by a TIME_INTERVAL micro-batch, with its running total.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TileWrite {
    /// The entity.
    pub key: EntityKey,
    /// Tile start (ns).
    pub tile_start: i64,
    /// Tile end (ns, exclusive).
    pub tile_end: i64,
    /// Finalized partials, in [`QueryKind::TimeInterval`] `partials` order.
    pub partials: Vec<Value>,
}

/// Counters of one stateful operator in one micro-batch (Spark's `stateOperators[]`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct OperatorStats {
    /// Keys held after the micro-batch.
    pub num_rows_total: u64,
    /// Keys written in the micro-batch.
    pub num_rows_updated: u64,
    /// Keys evicted by the watermark.
    pub num_rows_removed: u64,
    /// Input rows dropped for lateness.
    pub num_rows_dropped_by_watermark: u64,
}

/// What one micro-batch did.
#[derive(Debug, Clone, Default)]
pub(crate) struct BatchOutcome {
    /// The watermark in force for the micro-batch (`None` without a watermark).
    pub watermark: Option<i64>,
    /// The watermark for the next micro-batch.
    pub watermark_after: Option<i64>,
    /// Rows read.
    pub num_input_rows: usize,
    /// Dropped rows: input index, reason, detail.
    pub dropped: Vec<(usize, DropReason, String)>,
    /// Input indices of the rows the view materializes (valid, not duplicate, not late).
    pub accepted: Vec<usize>,
    /// TIME_INTERVAL rows written, sorted by entity then tile (empty for a query that only
    /// counts them, [`Query::counting_tile_writes`]).
    pub tile_writes: Vec<TileWrite>,
    /// How many TIME_INTERVAL rows the micro-batch wrote.
    pub num_tile_writes: usize,
    /// Event-time min, max and mean (ns) over the rows that reached the watermark operator.
    pub event_time: Option<(i64, i64, i64)>,
    /// The aggregation state store (TIME_INTERVAL views).
    pub aggregation: Option<OperatorStats>,
    /// The deduplication state store (sources with `deduplication_columns`).
    pub dedup: Option<OperatorStats>,
}

/// The rows of a micro-batch, in read order: decoded records borrowed from wherever they are
/// kept (a topic's records, a replay file).
pub(crate) trait Rows {
    /// How many rows.
    fn count(&self) -> usize;
    /// Row `i`, `0 <= i < count()`.
    fn row(&self, i: usize) -> &Decoded;
}

impl Rows for [&Decoded] {
    fn count(&self) -> usize {
        self.len()
    }
    fn row(&self, i: usize) -> &Decoded {
        self[i]
    }
}

impl Rows for Vec<&Decoded> {
    fn count(&self) -> usize {
        self.len()
    }
    fn row(&self, i: usize) -> &Decoded {
        self[i]
    }
}

/// Rows whose memory a pass reads ahead of deciding them: a row is its own allocation (and its
/// values another), so a pass over a micro-batch of thousands of rows would otherwise wait for
/// each row's cache misses in turn.
const ROWS_AHEAD: usize = 16;

/// Reads the first bytes of row `i` and of its values, so that they are in the cache when the
/// row is decided. Returns what it read, for the caller to fold into a value it keeps.
fn touch<R: Rows + ?Sized>(rows: &R, i: usize) -> u64 {
    if i >= rows.count() {
        return 0;
    }
    match rows.row(i) {
        Ok(row) => row.ts as u64 ^ row.values.first().map_or(0, |v| v.is_null() as u64),
        Err(_) => 1,
    }
}

/// What the front of a query's plan (decoding, the join-key check, deduplication) decided for
/// one row, before the watermark. Queries that read the same micro-batches with the same join
/// keys, deduplication columns and watermark decide alike, so a group of them computes it once
/// ([`Screen`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// On to the watermark and the view's own rules.
    Pass,
    /// The record does not match the source schema.
    Invalid,
    /// A join key is not a string or an integer.
    BadKey,
    /// Its deduplication columns equal a held record's.
    Duplicate,
}

/// The front of one micro-batch: each row's [`Verdict`], and how many deduplication keys the
/// batch added.
#[derive(Debug, Clone, Default)]
pub(crate) struct Screen {
    /// One verdict per input row, in read order.
    pub verdicts: Vec<Verdict>,
    /// Deduplication keys held by this micro-batch (Spark's `numRowsUpdated` of `dedupe`).
    pub held: u64,
    /// The rows that reach deduplication: their index, and their key with event time.
    rows: Vec<usize>,
    keys: Vec<(u64, i64)>,
    duplicates: Vec<bool>,
}

impl Screen {
    /// Screens `rows` with `spec`'s join keys and deduplication columns against `dedup`, which
    /// holds every new key with its row's event time.
    pub(crate) fn run<R: Rows + ?Sized>(
        spec: &QuerySpec,
        rows: &R,
        dedup: &mut DedupState,
    ) -> Screen {
        let mut screen = Screen::default();
        screen.rerun(spec, rows, dedup);
        screen
    }

    /// [`Screen::run`] into this screen's buffers. Deduplication keys are computed for the whole
    /// micro-batch first, then decided in read order in one pass over the state.
    pub(crate) fn rerun<R: Rows + ?Sized>(
        &mut self,
        spec: &QuerySpec,
        rows: &R,
        dedup: &mut DedupState,
    ) {
        let verdicts = &mut self.verdicts;
        verdicts.clear();
        verdicts.reserve(rows.count());
        self.rows.clear();
        self.keys.clear();
        let deduplicate = !spec.dedup_columns.is_empty();
        let mut touched = 0u64;
        for i in 0..rows.count() {
            if i % ROWS_AHEAD == 0 {
                for ahead in i..i + ROWS_AHEAD {
                    touched ^= touch(rows, ahead);
                }
            }
            let verdict = match rows.row(i) {
                Err(_) => Verdict::Invalid,
                Ok(row)
                    if !spec
                        .key_columns
                        .iter()
                        .all(|&c| matches!(row.values[c], Value::String(_) | Value::Int(_))) =>
                {
                    Verdict::BadKey
                }
                Ok(row) => {
                    if deduplicate {
                        self.rows.push(i);
                        self.keys
                            .push((dedup::key(&spec.dedup_columns, &row.values), row.ts));
                    }
                    Verdict::Pass
                }
            };
            verdicts.push(verdict);
        }
        std::hint::black_box(touched);
        dedup.check_and_hold_all(&self.keys, &mut self.duplicates);
        let mut held = 0;
        for (&i, &duplicate) in self.rows.iter().zip(&self.duplicates) {
            if duplicate {
                verdicts[i] = Verdict::Duplicate;
            } else {
                held += 1;
            }
        }
        self.held = held;
    }

    /// Ends the micro-batch for the deduplication state: lets go of the keys at or before the
    /// batch's `watermark` and returns the `dedupe` operator's counters (`None` without
    /// deduplication columns).
    pub(crate) fn finish(
        &self,
        spec: &QuerySpec,
        dedup: &mut DedupState,
        watermark: Option<i64>,
    ) -> Option<OperatorStats> {
        if spec.dedup_columns.is_empty() {
            return None;
        }
        let mut stats = OperatorStats {
            num_rows_updated: self.held,
            ..OperatorStats::default()
        };
        if let Some(evict) = watermark {
            // Keys whose first event time is at or before the watermark leave.
            stats.num_rows_removed = dedup.evict(evict);
        }
        stats.num_rows_total = dedup.len() as u64;
        Some(stats)
    }
}

/// Runs one micro-batch through queries that read the same rows and share one deduplication
/// state: the rows are screened once, each query applies the verdicts, and the keys are let go
/// once. Every query must share its front with the first ([`QuerySpec::shares_front`]); each
/// outcome is what [`Query::run_batch`] would return with a state of its own.
pub(crate) fn run_shared<R: Rows + ?Sized>(
    queries: &mut [&mut Query],
    dedup: &mut DedupState,
    rows: &R,
    spark: SparkVersion,
    screen: &mut Screen,
) -> Vec<BatchOutcome> {
    let Some(first) = queries.first() else {
        return Vec::new();
    };
    screen.rerun(&first.spec, rows, dedup);
    let mut outcomes: Vec<BatchOutcome> = queries
        .iter_mut()
        .map(|q| q.run_screened(rows, spark, screen))
        .collect();
    if let (Some(q), Some(out)) = (queries.first(), outcomes.first()) {
        // Every query's watermark is the same: it moves with the rows that pass the front.
        let stats = screen.finish(&q.spec, dedup, out.watermark);
        for out in &mut outcomes {
            out.dedup = stats;
        }
    }
    outcomes
}

/// One tile's groups: each entity's partials and the last micro-batch that changed them.
type TileGroups = HashMap<u32, (Vec<Partial>, u64), foldhash::fast::RandomState>;

/// The entities a query has seen, numbered in the order they came: a row's join keys are
/// encoded and hashed once ([`SlotKey`], inline when short) and looked up, so a row finds its
/// group without building an [`EntityKey`] or following one's pointers.
#[derive(Debug, Clone, Default)]
struct Entities {
    ids: HashMap<SlotKey, u32, BuildHasherDefault<Prehashed>>,
    keys: Vec<SlotKey>,
    hasher: KeyHasher,
}

impl Entities {
    /// The number of the entity whose join keys are `columns` of `values`; `None` when a key is
    /// not a string or an integer.
    fn id(&mut self, columns: &[usize], values: &[Value]) -> Option<u32> {
        let key = SlotKey::of_record(values, columns, &self.hasher)?;
        Some(self.id_of(key))
    }

    fn id_of(&mut self, key: SlotKey) -> u32 {
        if let Some(&id) = self.ids.get(&key) {
            return id;
        }
        let id = u32::try_from(self.keys.len()).unwrap_or(u32::MAX);
        self.keys.push(key.clone());
        self.ids.insert(key, id);
        id
    }

    /// The join keys of entity `id`.
    fn key(&self, id: u32) -> EntityKey {
        self.keys
            .get(id as usize)
            .map(SlotKey::entity_key)
            .unwrap_or_else(|| EntityKey(Vec::new()))
    }

    fn len(&self) -> usize {
        self.keys.len()
    }
}

/// One streaming query's state between micro-batches.
#[derive(Debug, Clone)]
pub(crate) struct Query {
    /// What the query computes.
    pub spec: QuerySpec,
    /// The watermark.
    pub watermark: Watermark,
    /// Held deduplication keys (unused by a query whose group holds them, see [`run_shared`]).
    dedup: DedupState,
    /// Aggregation groups held, counted over `tiles`.
    groups: usize,
    /// TIME_INTERVAL state: per tile start, each entity's partials and the last micro-batch
    /// that changed them.
    tiles: BTreeMap<i64, TileGroups>,
    /// The entities of `tiles`.
    entities: Entities,
    /// Groups a new tile is sized for (the most a tile has held): tiles of a steady stream hold
    /// about as many entities each, and growing step by step copies the map several times.
    tile_hint: usize,
    /// Whether outcomes list the TIME_INTERVAL rows written ([`BatchOutcome::tile_writes`]);
    /// otherwise only their number is given.
    list_tile_writes: bool,
    /// Micro-batches run so far (the next batch id).
    pub batches: u64,
    /// Rows read so far: orders ties between equal event times across micro-batches.
    rows_read: u64,
    /// Buffers for [`BatchOutcome::accepted`], handed back by [`Query::recycle_accepted`].
    spare_accepted: Vec<Vec<usize>>,
}

impl Query {
    /// A query with no state, watermark 0.
    pub(crate) fn new(spec: QuerySpec) -> Self {
        Query {
            watermark: Watermark::new(spec.watermark_delay),
            spec,
            dedup: DedupState::default(),
            groups: 0,
            tiles: BTreeMap::new(),
            entities: Entities::default(),
            tile_hint: 0,
            list_tile_writes: true,
            batches: 0,
            rows_read: 0,
            spare_accepted: Vec::new(),
        }
    }

    /// Hands back an outcome's `accepted` buffer for a later micro-batch.
    pub(crate) fn recycle_accepted(&mut self, mut buffer: Vec<usize>) {
        if self.spare_accepted.len() < 4 {
            buffer.clear();
            self.spare_accepted.push(buffer);
        }
    }

    /// The same query, whose outcomes count the TIME_INTERVAL rows written
    /// ([`BatchOutcome::num_tile_writes`]) without listing them: a live query writes events to
    /// the online store, so the running partials would be computed for nothing.
    pub(crate) fn counting_tile_writes(mut self) -> Self {
        self.list_tile_writes = false;
        self
    }

    /// Keys held in state (aggregation groups plus deduplication keys).
    #[cfg(test)]
    pub(crate) fn state_rows(&self) -> usize {
        self.groups + self.dedup.len()
    }

    /// Aggregation groups held.
    pub(crate) fn aggregation_rows(&self) -> usize {
        self.groups
    }

    /// Runs one micro-batch over `rows` (in read order) under `spark`'s late-row rule, with the
    /// query's own deduplication state.
    pub(crate) fn run_batch<R: Rows + ?Sized>(
        &mut self,
        rows: &R,
        spark: SparkVersion,
    ) -> BatchOutcome {
        let mut dedup = std::mem::take(&mut self.dedup);
        let screen = Screen::run(&self.spec, rows, &mut dedup);
        let mut out = self.run_screened(rows, spark, &screen);
        out.dedup = screen.finish(&self.spec, &mut dedup, out.watermark);
        self.dedup = dedup;
        out
    }

    /// Runs one micro-batch over `rows` whose front was screened already: everything but letting
    /// deduplication keys go ([`Screen::finish`]); `dedup` is left `None`.
    pub(crate) fn run_screened<R: Rows + ?Sized>(
        &mut self,
        rows: &R,
        spark: SparkVersion,
        screen: &Screen,
    ) -> BatchOutcome {
        let mut out = BatchOutcome {
            watermark: self.watermark.current(),
            num_input_rows: rows.count(),
            ..BatchOutcome::default()
        };
        let late_cutoff = self.watermark.late_cutoff(spark);
        let mut agg_stats = OperatorStats::default();
        // Groups changed by this micro-batch, each once (its marker is the batch id): listed
        // when the outcome lists the rows written, else only counted.
        let mut changed: Vec<(u32, i64)> = Vec::new();
        let mut num_changed = 0usize;
        let batch = self.batches;
        let (mut min, mut max, mut sum, mut n) = (i64::MAX, i64::MIN, 0i128, 0i128);
        out.accepted = self.spare_accepted.pop().unwrap_or_default();
        out.accepted.reserve(rows.count());
        let mut touched = 0u64;
        for (i, verdict) in screen.verdicts.iter().enumerate() {
            if i % ROWS_AHEAD == 0 {
                for ahead in i..i + ROWS_AHEAD {
                    touched ^= touch(rows, ahead);
                }
            }
            let row = match (rows.row(i), verdict) {
                (Err(reason), _) => {
                    out.dropped.push((i, DropReason::Invalid, reason.clone()));
                    continue;
                }
                (Ok(_), Verdict::BadKey | Verdict::Invalid) => {
                    out.dropped.push((
                        i,
                        DropReason::Invalid,
                        "a join key is not a string or an integer".into(),
                    ));
                    continue;
                }
                (Ok(row), Verdict::Duplicate) => {
                    out.dropped.push((
                        i,
                        DropReason::Duplicate,
                        format!(
                            "deduplication columns equal a held record's: {}",
                            self.spec
                                .dedup_columns
                                .iter()
                                .map(|&c| row.values[c].to_plain_json().to_string())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    ));
                    continue;
                }
                (Ok(row), Verdict::Pass) => row,
            };
            self.watermark.observe(row.ts);
            min = min.min(row.ts);
            max = max.max(row.ts);
            sum += i128::from(row.ts);
            n += 1;
            if let QueryKind::TimeInterval { interval, partials } = &self.spec.kind {
                let tile_start = row.ts - row.ts.rem_euclid(*interval);
                let tile_end = tile_start.saturating_add(*interval);
                if let Some(cut) = late_cutoff.filter(|&c| tile_end <= c) {
                    agg_stats.num_rows_dropped_by_watermark += 1;
                    out.dropped.push((
                        i,
                        DropReason::Late,
                        format!(
                            "tile [{}, {}) ends at or before the watermark {}",
                            ms(tile_start),
                            ms(tile_end),
                            ms(cut)
                        ),
                    ));
                    continue;
                }
                let Some(entity) = self.entities.id(&self.spec.key_columns, &row.values) else {
                    continue;
                };
                let hint = self.tile_hint;
                let tile = self.tiles.entry(tile_start).or_insert_with(|| {
                    TileGroups::with_capacity_and_hasher(hint, Default::default())
                });
                let (group, marker) = tile.entry(entity).or_insert_with(|| {
                    self.groups += 1;
                    let fresh = partials.iter().map(|p| Partial::new(&p.function)).collect();
                    (fresh, u64::MAX)
                });
                if *marker != batch {
                    *marker = batch;
                    num_changed += 1;
                    if self.list_tile_writes {
                        changed.push((entity, tile_start));
                    }
                }
                for (partial, column) in group.iter_mut().zip(partials) {
                    let value = self
                        .spec
                        .value_columns
                        .get(column.input)
                        .map_or(&Value::Null, |&c| &row.values[c]);
                    // Order-dependent partials break ties between equal event times by read order.
                    partial.update(value, row.ts, self.rows_read + i as u64);
                }
            }
            out.accepted.push(i);
        }
        std::hint::black_box(touched);
        if n > 0 {
            out.event_time = Some((min, max, i64::try_from(sum / n).unwrap_or(max)));
        }
        if let QueryKind::TimeInterval { interval, partials } = &self.spec.kind {
            out.num_tile_writes = num_changed;
            // A new tile is sized for as many groups as the newest one holds.
            if let Some(newest) = self.tiles.values().next_back() {
                self.tile_hint = self.tile_hint.max(newest.len());
            }
            if self.list_tile_writes {
                // Written sorted by entity, then tile.
                let mut rows: Vec<(EntityKey, i64, u32)> = changed
                    .iter()
                    .map(|&(entity, tile)| (self.entities.key(entity), tile, entity))
                    .collect();
                rows.sort_unstable();
                for (key, tile_start, entity) in rows {
                    if let Some((group, _)) =
                        self.tiles.get(&tile_start).and_then(|t| t.get(&entity))
                    {
                        out.tile_writes.push(TileWrite {
                            key,
                            tile_start,
                            tile_end: tile_start.saturating_add(*interval),
                            partials: group
                                .iter()
                                .zip(partials)
                                .map(|(p, c)| p.finalize(&c.function, &c.input_type))
                                .collect(),
                        });
                    }
                }
            }
            agg_stats.num_rows_updated = out.num_tile_writes as u64;
            if let Some(evict) = self.watermark.eviction_cutoff() {
                // Groups whose tile ends at or before the watermark leave, oldest tiles first.
                let mut evicted = false;
                while let Some(entry) = self.tiles.first_entry() {
                    if entry.key().saturating_add(*interval) > evict {
                        break;
                    }
                    let n = entry.remove().len();
                    self.groups -= n;
                    agg_stats.num_rows_removed += n as u64;
                    evicted = true;
                }
                if evicted {
                    self.forget_entities();
                }
            }
            agg_stats.num_rows_total = self.groups as u64;
            out.aggregation = Some(agg_stats);
        }
        out.watermark_after = self.watermark.advance();
        self.batches += 1;
        self.rows_read += rows.count() as u64;
        out
    }

    /// Renumbers the entities once most of them have no group left, so that a long stream of
    /// ever new entities holds only those of its live tiles.
    fn forget_entities(&mut self) {
        if self.entities.len() <= 2 * self.groups + 4_096 {
            return;
        }
        let old = std::mem::take(&mut self.entities);
        let entities = &mut self.entities;
        entities.hasher = old.hasher.clone();
        let mut renumbered: HashMap<u32, u32> = HashMap::new();
        for groups in self.tiles.values_mut() {
            let moved: TileGroups = groups
                .drain()
                .map(|(id, group)| {
                    let new = *renumbered.entry(id).or_insert_with(|| {
                        old.keys
                            .get(id as usize)
                            .map_or(u32::MAX, |key| entities.id_of(key.clone()))
                    });
                    (new, group)
                })
                .collect();
            *groups = moved;
        }
    }
}

/// A time as RFC 3339 UTC with milliseconds, as Spark prints event times.
pub(crate) fn ms(ns: i64) -> String {
    let whole = ns.div_euclid(super::watermark::MILLISECOND) * super::watermark::MILLISECOND;
    let text = crate::schema::format_rfc3339(whole - whole.rem_euclid(crate::duration::SECOND));
    let millis = whole.rem_euclid(crate::duration::SECOND) / super::watermark::MILLISECOND;
    format!("{}.{millis:03}Z", text.trim_end_matches('Z'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::topic::Row;

    const M: i64 = crate::duration::MINUTE;

    /// A repository with one stream source (delay `delay`, optional dedup on `id`) feeding a
    /// TIME_INTERVAL view (10-minute tiles, sum and count of `amt`) and a CONTINUOUS view.
    fn repo(delay: &str, dedup: bool) -> Repository {
        let dedup = if dedup {
            r#"deduplication_columns = ["id"]"#
        } else {
            ""
        };
        let text = format!(
            r#"
[[workspaces]]
name = "prod"
[[entities]]
name = "user"
join_keys = [{{ name = "user_id", type = "String" }}]
[[stream_sources]]
name = "events"
topic = "events"
timestamp_field = "ts"
watermark_delay_threshold = "{delay}"
{dedup}
schema = [
  {{ name = "user_id", type = "String" }},
  {{ name = "id", type = "String" }},
  {{ name = "amt", type = "Float64" }},
  {{ name = "ts", type = "Timestamp" }},
]
[[feature_views]]
name = "tiles"
sources = ["events"]
entities = ["user"]
stream_processing_mode = "TIME_INTERVAL"
aggregation_interval = "10m"
feature_start_time = "2020-01-01T00:00:00Z"
aggregations = [
  {{ column = "amt", function = "sum", window = "1h" }},
  {{ column = "amt", function = "count", window = "1h" }},
]
[[feature_views]]
name = "events_continuous"
sources = ["events"]
entities = ["user"]
stream_processing_mode = "CONTINUOUS"
feature_start_time = "2020-01-01T00:00:00Z"
aggregations = [{{ column = "amt", function = "sum", window = "1h" }}]
"#
        );
        Repository::from_toml(&text, "test.toml").expect("valid repository")
    }

    fn queries(delay: &str, dedup: bool) -> (Query, Query) {
        let mut q = QuerySpec::of_source(&repo(delay, dedup), 0)
            .into_iter()
            .map(Query::new);
        (q.next().expect("tiles"), q.next().expect("continuous"))
    }

    /// A row for user `u` with id `id`, amount `amt`, at `min` minutes past 12:00 (any day).
    fn row(u: &str, id: &str, amt: f64, min: i64) -> Decoded {
        let ts = 12 * 60 * M + min * M;
        Ok(Row {
            values: vec![
                Value::String(u.into()),
                Value::String(id.into()),
                Value::Float(amt),
                Value::Timestamp(ts),
            ],
            ts,
        })
    }

    fn run(q: &mut Query, rows: &[Decoded], spark: SparkVersion) -> BatchOutcome {
        let refs: Vec<&Decoded> = rows.iter().collect();
        q.run_batch(&refs, spark)
    }

    fn late(out: &BatchOutcome) -> Vec<usize> {
        out.dropped
            .iter()
            .filter(|d| d.1 == DropReason::Late)
            .map(|d| d.0)
            .collect()
    }

    fn at(min: i64) -> i64 {
        12 * 60 * M + min * M
    }

    #[test]
    fn update_mode_writes_each_changed_tile_once_with_its_running_total() {
        let (mut q, _) = queries("10m", false);
        let out = run(
            &mut q,
            &[
                row("u1", "a", 1.0, 1),
                row("u1", "b", 2.0, 2),
                row("u2", "c", 4.0, 3),
            ],
            SparkVersion::V3_4,
        );
        assert_eq!(out.tile_writes.len(), 2, "one row per (entity, tile)");
        assert_eq!(
            out.tile_writes[0].partials,
            vec![Value::Float(3.0), Value::Int(2)]
        );
        assert_eq!(out.tile_writes[0].tile_start, at(0));
        assert_eq!(out.tile_writes[0].tile_end, at(10));
        // The next batch touches only u1's tile: only it is written, with the running total.
        let out = run(&mut q, &[row("u1", "d", 10.0, 4)], SparkVersion::V3_4);
        assert_eq!(out.tile_writes.len(), 1);
        assert_eq!(
            out.tile_writes[0].partials,
            vec![Value::Float(13.0), Value::Int(3)]
        );
        // A batch that changes nothing writes nothing.
        assert!(run(&mut q, &[], SparkVersion::V3_4).tile_writes.is_empty());
    }

    #[test]
    fn entities_let_go_with_their_tiles_leave_the_numbering_and_the_rest_keep_their_totals() {
        let (mut q, _) = queries("10m", false);
        // 10,000 one-off entities and one that stays, in the first tile.
        let mut rows: Vec<Decoded> = (0..10_000)
            .map(|u| row(&format!("once{u}"), "x", 1.0, 1))
            .collect();
        rows.push(row("stays", "a", 2.0, 2));
        run(&mut q, &rows, SparkVersion::V3_4);
        assert_eq!(q.entities.len(), 10_001);
        // "stays" writes in later tiles; the watermark (max minus 10 minutes, applied from the
        // next batch) moves to 12:05, then to 12:30, past the first two tiles.
        run(&mut q, &[row("stays", "b", 3.0, 15)], SparkVersion::V3_4);
        run(&mut q, &[row("stays", "c", 4.0, 40)], SparkVersion::V3_4);
        let out = run(&mut q, &[row("stays", "d", 5.0, 41)], SparkVersion::V3_4);
        assert_eq!(
            out.aggregation.map(|a| a.num_rows_removed),
            Some(10_002),
            "the groups of the tiles at 12:00 and 12:10 leave"
        );
        assert_eq!(
            q.entities.len(),
            1,
            "entities of evicted tiles are forgotten"
        );
        // The renumbered entity still finds its tile: its running total goes on.
        let out = run(&mut q, &[row("stays", "e", 6.0, 42)], SparkVersion::V3_4);
        assert_eq!(out.tile_writes.len(), 1);
        assert_eq!(
            out.tile_writes[0].key,
            EntityKey(vec![crate::store::KeyPart::Str("stays".into())])
        );
        assert_eq!(
            out.tile_writes[0].partials,
            vec![Value::Float(15.0), Value::Int(3)],
            "4 + 5 + 6 in the tile at 12:40"
        );
    }

    #[test]
    fn the_watermark_is_the_previous_batches_max_minus_the_delay() {
        let (mut q, _) = queries("10m", false);
        let out = run(
            &mut q,
            &[row("u1", "a", 1.0, 34), row("u1", "b", 1.0, 20)],
            SparkVersion::V3_4,
        );
        assert_eq!(out.watermark, Some(0), "starts at 0");
        assert_eq!(out.watermark_after, Some(at(24)));
        let out = run(&mut q, &[row("u1", "c", 1.0, 30)], SparkVersion::V3_4);
        assert_eq!(out.watermark, Some(at(24)));
        assert_eq!(out.watermark_after, Some(at(24)), "monotone");
    }

    #[test]
    fn late_rows_are_judged_per_tile_with_the_previous_watermark_on_spark_3_4() {
        // The worked example: tiles of 10m, delay 10m, previous max 12:34 -> watermark 12:24.
        let (mut q, _) = queries("10m", false);
        run(&mut q, &[row("u1", "a", 1.0, 34)], SparkVersion::V3_4);
        // Batch 1 filters with batch 0's watermark (0): 12:13 (tile end 12:20) is accepted, its
        // group written and then evicted by the current watermark 12:24.
        let out = run(
            &mut q,
            &[row("u1", "b", 1.0, 13), row("u1", "c", 1.0, 21)],
            SparkVersion::V3_4,
        );
        assert!(late(&out).is_empty());
        assert_eq!(out.tile_writes.len(), 2);
        assert_eq!(out.aggregation.map(|a| a.num_rows_removed), Some(1));
        // Batch 2 filters with 12:24: the 12:10 tile is late, 12:21 (tile end 12:30) is not,
        // although 12:21 is before the watermark.
        let out = run(
            &mut q,
            &[row("u1", "d", 1.0, 14), row("u1", "e", 1.0, 21)],
            SparkVersion::V3_4,
        );
        assert_eq!(late(&out), vec![0]);
        assert_eq!(
            out.aggregation.map(|a| a.num_rows_dropped_by_watermark),
            Some(1)
        );
        assert_eq!(
            out.tile_writes[0].partials,
            vec![Value::Float(2.0), Value::Int(2)]
        );
    }

    #[test]
    fn spark_3_3_judges_late_rows_with_the_current_watermark() {
        let (mut q, _) = queries("10m", false);
        run(&mut q, &[row("u1", "a", 1.0, 34)], SparkVersion::V3_3);
        let out = run(
            &mut q,
            &[row("u1", "b", 1.0, 13), row("u1", "c", 1.0, 21)],
            SparkVersion::V3_3,
        );
        assert_eq!(late(&out), vec![0], "12:13's tile ends 12:20 <= 12:24");
        assert_eq!(out.tile_writes.len(), 1);
    }

    #[test]
    fn a_tile_ending_exactly_on_the_cutoff_is_late() {
        // Delay 10m, max 12:30 -> watermark 12:20; the tile [12:10, 12:20) ends on it.
        let (mut q, _) = queries("10m", false);
        run(&mut q, &[row("u1", "a", 1.0, 30)], SparkVersion::V3_3);
        let out = run(
            &mut q,
            &[row("u1", "b", 1.0, 19), row("u1", "c", 1.0, 20)],
            SparkVersion::V3_3,
        );
        assert_eq!(late(&out), vec![0]);
    }

    #[test]
    fn without_a_watermark_nothing_is_late_and_state_is_kept() {
        let (mut q, _) = queries("0s", false);
        run(&mut q, &[row("u1", "a", 1.0, 600)], SparkVersion::V3_4);
        let out = run(&mut q, &[row("u1", "b", 1.0, 1)], SparkVersion::V3_4);
        assert_eq!(out.watermark, None);
        assert!(out.dropped.is_empty());
        assert_eq!(q.state_rows(), 2);
    }

    #[test]
    fn continuous_views_write_every_event_and_drop_none_as_late() {
        let (_, mut c) = queries("10m", false);
        run(&mut c, &[row("u1", "a", 1.0, 600)], SparkVersion::V3_3);
        let out = run(
            &mut c,
            &[row("u1", "b", 1.0, 1), row("u1", "c", 1.0, 1)],
            SparkVersion::V3_3,
        );
        assert_eq!(out.accepted, vec![0, 1]);
        assert!(out.tile_writes.is_empty());
        assert!(out.aggregation.is_none(), "no stateful operator");
    }

    #[test]
    fn duplicates_are_dropped_while_their_key_is_within_the_watermark() {
        let (mut q, _) = queries("10m", true);
        let out = run(
            &mut q,
            &[row("u1", "a", 1.0, 1), row("u1", "a", 1.0, 1)],
            SparkVersion::V3_4,
        );
        assert_eq!(out.dropped.len(), 1);
        assert_eq!(out.dropped[0].1, DropReason::Duplicate);
        assert_eq!(out.dedup.map(|d| d.num_rows_total), Some(1));
        // A duplicate does not move the watermark.
        let out = run(&mut q, &[row("u1", "a", 1.0, 500)], SparkVersion::V3_4);
        assert_eq!(out.dropped[0].1, DropReason::Duplicate);
        assert_eq!(out.watermark_after, Some(at(1) - 10 * M));
        // Once the watermark passes the held key's event time, the key is let go.
        run(&mut q, &[row("u1", "x", 1.0, 60)], SparkVersion::V3_4); // watermark -> 12:50
        let out = run(&mut q, &[row("u1", "y", 1.0, 61)], SparkVersion::V3_4); // evicts "a" (12:01)
        assert_eq!(out.dedup.map(|d| d.num_rows_removed), Some(1));
        let out = run(&mut q, &[row("u1", "a", 1.0, 62)], SparkVersion::V3_4);
        assert!(out.dropped.is_empty(), "{:?}", out.dropped);
    }

    #[test]
    fn invalid_records_are_dropped_with_their_reason_and_do_not_move_the_watermark() {
        let (mut q, _) = queries("10m", false);
        let out = run(
            &mut q,
            &[Err("field `amt`: missing".into()), row("u1", "a", 1.0, 5)],
            SparkVersion::V3_4,
        );
        assert_eq!(out.num_input_rows, 2);
        assert_eq!(
            out.dropped,
            vec![(0, DropReason::Invalid, "field `amt`: missing".into())]
        );
        assert_eq!(out.watermark_after, Some(at(5) - 10 * M));
    }

    #[test]
    fn an_empty_batch_makes_both_spark_rules_agree_on_the_next_one() {
        for spark in [SparkVersion::V3_4, SparkVersion::V3_3] {
            let (mut q, _) = queries("10m", false);
            run(&mut q, &[row("u1", "a", 1.0, 34)], spark);
            run(&mut q, &[], spark);
            let out = run(&mut q, &[row("u1", "b", 1.0, 13)], spark);
            assert_eq!(late(&out), vec![0], "{spark:?}");
        }
    }

    /// Every field of an outcome a reader of the engine sees.
    fn seen(out: &BatchOutcome) -> String {
        format!(
            "{:?} {:?} {} {:?} {:?} {:?} {} {:?} {:?} {:?}",
            out.watermark,
            out.watermark_after,
            out.num_input_rows,
            out.dropped,
            out.accepted,
            out.tile_writes,
            out.num_tile_writes,
            out.event_time,
            out.aggregation,
            out.dedup
        )
    }

    #[test]
    fn queries_sharing_one_deduplication_state_decide_as_with_states_of_their_own() {
        use crate::rng::SplitMix64;
        let repo = Repository::demo();
        let specs = QuerySpec::of_source(&repo, 0);
        assert_eq!(specs.len(), 3, "the demo's three views read the stream");
        assert!(specs.iter().all(|s| s.shares_front(&specs[0])));
        let mut reasons = std::collections::BTreeSet::new();
        for seed in 1..=8u64 {
            let mut rng = SplitMix64::new(seed);
            let spark = if seed % 2 == 0 {
                SparkVersion::V3_4
            } else {
                SparkVersion::V3_3
            };
            let mut separate: Vec<Query> = specs.iter().cloned().map(Query::new).collect();
            let mut shared: Vec<Query> = specs
                .iter()
                .cloned()
                .map(|s| Query::new(s).counting_tile_writes())
                .collect();
            let mut listing: Vec<Query> = specs.iter().cloned().map(Query::new).collect();
            let mut state = DedupState::default();
            let mut listing_state = DedupState::default();
            // A day in 40 micro-batches: ids repeat (duplicates), some rows trail by up to two
            // watermark delays (late rows, keys let go and seen again), some are invalid.
            let mut clock = 1_717_200_000 * crate::duration::SECOND;
            for batch in 0..40 {
                let n = (rng.next_u64() % 300) as usize;
                let rows: Vec<Decoded> = (0..n)
                    .map(|_| {
                        clock += (rng.next_u64() % 4_000) as i64 * crate::duration::SECOND / 10;
                        let ts = if rng.next_u64().is_multiple_of(10) {
                            clock - (rng.next_u64() % (48 * 3_600)) as i64 * crate::duration::SECOND
                        } else {
                            clock
                        };
                        match rng.next_u64() % 50 {
                            0 => Err("field `amt`: missing".into()),
                            1 => Ok(Row {
                                values: vec![
                                    Value::Float(1.0),
                                    Value::String("t".into()),
                                    Value::String("m".into()),
                                    Value::Float(1.0),
                                    Value::Int(0),
                                    Value::Timestamp(ts),
                                ],
                                ts,
                            }),
                            _ => Ok(Row {
                                values: vec![
                                    Value::String(format!("u{}", rng.next_u64() % 20).into()),
                                    Value::String(format!("t{}", rng.next_u64() % 2_000).into()),
                                    Value::String(format!("m{}", rng.next_u64() % 5).into()),
                                    Value::Float((rng.next_u64() % 1_000) as f64 / 10.0),
                                    Value::Int((rng.next_u64() % 2) as i64),
                                    Value::Timestamp(ts),
                                ],
                                ts,
                            }),
                        }
                    })
                    .collect();
                let refs: Vec<&Decoded> = rows.iter().collect();
                let alone: Vec<BatchOutcome> = separate
                    .iter_mut()
                    .map(|q| q.run_batch(&refs, spark))
                    .collect();
                let mut qs: Vec<&mut Query> = shared.iter_mut().collect();
                let together =
                    run_shared(&mut qs, &mut state, &refs, spark, &mut Screen::default());
                let mut qs: Vec<&mut Query> = listing.iter_mut().collect();
                let listed = run_shared(
                    &mut qs,
                    &mut listing_state,
                    &refs,
                    spark,
                    &mut Screen::default(),
                );
                for (k, ((a, b), c)) in alone.iter().zip(&together).zip(&listed).enumerate() {
                    assert_eq!(seen(a), seen(c), "seed {seed}, batch {batch}, query {k}");
                    // A query that only counts its tile writes decides the same otherwise.
                    assert_eq!(a.tile_writes.len(), a.num_tile_writes);
                    assert!(b.tile_writes.is_empty());
                    let mut b = b.clone();
                    b.tile_writes = a.tile_writes.clone();
                    assert_eq!(seen(a), seen(&b), "seed {seed}, batch {batch}, query {k}");
                    for (_, reason, _) in &a.dropped {
                        reasons.insert(*reason);
                    }
                }
                assert_eq!(state.len(), separate[0].dedup.len(), "seed {seed}");
            }
        }
        // The cases exercised every rule.
        assert_eq!(reasons.len(), 3, "{reasons:?}");
    }

    #[test]
    fn times_print_with_milliseconds() {
        assert_eq!(ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(ms(1_500_000_000 + 7), "1970-01-01T00:00:01.500Z");
        assert_eq!(ms(-1), "1969-12-31T23:59:59.999Z");
    }
}
