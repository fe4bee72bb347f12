//! The event series of one entity in one feature view, grouped into tiles, and window evaluation.
//!
//! # Windows (docs/semantics.md; online window edges equal the offline rules)
//! For a request at time `t`, an aggregation with window `W` and offset `off ≤ 0` includes an
//! event at `ts` iff
//! - CONTINUOUS: `t − W + off < ts ≤ t + off` (an event exactly at `t` counts, one at `t − W`
//!   does not);
//! - TIME_INTERVAL with interval `I`: `fl(t) − W + off ≤ ts < fl(t) + off`, where
//!   `fl(x) = x − x.rem_euclid(I)` (epoch-aligned tiles; only whole tiles count, the in-progress
//!   tile `[fl(t), fl(t) + I)` never does).
//!
//! Before `feature_start_time` every feature is null, count included: CONTINUOUS when
//! `t < fst`, TIME_INTERVAL when `fl(t) < fst`. Events stamped before `feature_start_time` are
//! stored and counted like any other, so the first aggregate served at the start is complete.
//!
//! # Fine tiles
//! Events are grouped into epoch-aligned fine tiles of a fixed size, each holding its events
//! sorted by `(ts, seq)`:
//! - TIME_INTERVAL: the tile is the aggregation interval `I`, so a window of whole intervals is
//!   answered from whole tiles alone;
//! - CONTINUOUS: the tile is the smallest window divided by 12 (1h → 5 min), the hop Chronon
//!   uses for its sawtooth tails.
//!
//! A fine tile holding at least `DENSE_TILE` (8) events also keeps precomputed [`Partial`]s,
//! the fold of its events in `(ts, seq)` order: events appended to the newest tile of their
//! level are folded in runs of up to `FOLD_BATCH` (64), or when the tile stops being the
//! newest, the same updates in the same order as one at a time; a read of the newest tile folds
//! the waiting ones into a copy of its partials. A late (out-of-order) event or a replacement
//! rebuilds the tile's partials from its events (min/max cannot be subtracted). A sparser tile
//! keeps none: most tiles of a sparse entity hold one event, and a dozen 80-byte partials per
//! event would make the online store several times larger than its events.
//!
//! # Slots
//! Aggregations that read the same input column and whose empty partials are equal keep equal
//! partials forever (`update` and `merge` depend on the state alone): `sum` and `mean`, the four
//! variance functions, one function over several windows, `approx_percentile` at several
//! percentiles with one precision. They share a *slot*, and tiles keep one partial per slot, not
//! per aggregation: the demo's nine `amt` features (sum, count and mean over 1h, 1d and 3d)
//! keep two. Slots are numbered by their first aggregation, fixed when the series is created.
//!
//! # Coarse tiles
//! With sparse fine tiles alone, a 3-day window over 5-minute tiles folds every one of its ~430
//! events (at one event per entity every 10 minutes) on every request. So fine tiles are grouped
//! into up to two levels of epoch-aligned coarse tiles whose partials are always kept: a level-1
//! tile is `LEVEL1_FANOUT` (24) fine tiles, a level-2 tile `LEVEL2_FANOUT` (12) level-1 tiles.
//! A level is kept while its tile is no longer than the longest window
//! ([`SeriesSpec::coarse_levels`]); beyond that no window could hold a whole one and its
//! partials would only cost memory. CONTINUOUS with a 1h smallest window and a 3d longest one:
//! 5 min → 2 h → 1 day; TIME_INTERVAL with `I` = 10 min: 10 min → 4 h, and → 2 days when a
//! window is at least that long.
//!
//! The fan-outs were chosen by measurement on the benchmark's views (one event per entity every
//! 10 minutes, windows up to 3 days, requests at any time of day), counting partial merges and
//! event folds per request: 24 × 12 needs about as few as any choice tried (12 × 12, 12 × 24,
//! 16 × 12, 32 × 9, 48 × 6; all within 1.5× of each other with two levels, while one level of 12
//! needs twice as many), and keeps half the level-1 partials of 12, level 1 being where nearly
//! all coarse memory goes. Larger level-1 tiles cost more event folds at the windows' lower
//! edges, where a tile is opened child by child.
//!
//! The *value* of a node is defined recursively, and is the same whenever it is computed:
//! - a fine tile's value is its partials when it has them, else its events folded in order;
//! - a coarse tile's value is its *head* merged with the value of its newest (last non-empty)
//!   child, where the head (one partial per slot) is the merge, oldest first, of the values of
//!   all its other children.
//!
//! The newest child is kept out of the head so that the common case costs nothing at the coarse
//! levels, and so that the head is exactly the same however the events arrived: an event
//! appended to the newest child changes only that child; an event that opens a new newest child
//! merges the previous newest one into the head (the merges `build_head` would do, in the same
//! order); a late event or a replacement in an older child makes the head stale, rebuilt from the
//! children's values (at most 24 children, each a merge or up to 7 events) when next read. Folding appended
//! events into a whole-tile partial instead would make it differ, in float rounding, from the
//! merges of a rebuild. So every node's value (and every head and fully folded partial) is a
//! function of the event set alone, whatever the arrival order, and the online and offline
//! paths agree bit for bit; only how many of the newest tile's events wait to be folded
//! depends on the order, and a read folds them as the wait would have.
//!
//! # Evaluation
//! A node whose events all lie in the window contributes its value. One that the window only
//! partly covers contributes its head and opens its newest child when all the head's events lie
//! in the window (the window's upper edge cuts the newest tile, as it does at request time);
//! otherwise it is opened and its children visited, down to fine tiles read event by event.
//! Containment is decided on a node's bounds when they lie inside the window, else on its oldest
//! and newest events, so results never depend on where tile boundaries fall.
//!
//! Merging partials gives the folding result exactly for every function except the float
//! arithmetic of sum/mean (Neumaier-compensated) and of the variance family (Chan's merge of
//! Welford states), which agree up to rounding ([`Partial::merge`]). A float feature can thus
//! differ in its last bits with how a window cuts the tiles (the brute-force tests hold it to
//! 1e-9 relative, as `consistency::FLOAT_TOLERANCE` does online against offline), never with the
//! arrival order.
//!
//! # Cost
//! `insert` is `O(1)` amortised for an event in the newest tiles (the newest top-level node is
//! kept apart from the others, in the series itself), else `O(log T + e + c)` for `T`
//! top-level tiles, `e` events in the fine tile and `c` children per coarse tile, plus
//! `O(e·S)` when a fine tile is rebuilt (`S` slots) and
//! nothing for the coarse heads a late event makes stale; the first read that needs a stale head
//! pays `O(c·S·DENSE_TILE)` to rebuild it. `evaluate` visits, once per distinct `(window, offset)`, the nodes overlapping the
//! window: whole coarse tiles in its middle (two or three merges each), at its upper edge the
//! head of each level and the newest fine tile, at its lower edge the children of the partly
//! covered tiles. For the benchmark's CONTINUOUS view (sum, count and mean over 1h, 1d and 3d;
//! one event every 10 minutes) a request costs about 50 partial merges and 100 event folds per
//! entity, where folding every event in the windows cost about 1,750. Empty tiles are never
//! stored or visited.
//!
//! # Stale heads
//! A late event, a replacement or an eviction in an older child does not rebuild its coarse
//! tile's head: the head is marked stale, and the next read that needs it builds it (the same
//! merges in the same order as `build_head`, so the same partials) and keeps it. When events
//! arrive in random time order (a backfill, a replay, the soak benchmark's spread over 20 days)
//! nearly every write lands in an older child, and rebuilding the head on each write cost more as
//! the tiles filled: the write rate fell with the store's size. Reads pay at most one build per
//! stale head; events in time order never make a head stale.
//!
//! # Memory
//! A fine tile is three vectors: the events' `(ts, seq)`, their input values packed in one byte
//! buffer (`rows`: a tag byte and 0, 8 or 4 + length bytes per value, no heap object per
//! event), and its partials once dense. Each input is stored once per event, and an input that
//! only `count` reads is stored as a null-or-not marker of one byte. The demo's CONTINUOUS view
//! stores 16 + 9 bytes per event; one `Value` per input (32 bytes, plus a heap string each) made
//! its store 2.4 times larger and the allocator's work with it.
//!
//! A coarse tile with at least two non-empty children keeps one partial per slot (80 bytes
//! each); one with a single child keeps none, since its value is that child's. Only the newest
//! node of each level keeps spare capacity in its vectors (doubling from one element); every
//! other node is sized exactly, so a sparse coarse tile costs its key and 56-byte node.
//!
//! A series keeps its fine tiles' count and estimated bytes as they change ([`Series::footprint`]
//! is `O(1)`), so the online store's totals need no walk.
//!
//! # Modules
//! `spec` (what a series computes), `slot` (aggregations sharing partials), `node` (the tree's
//! common trait and the window being read), `tile` and `rows` (fine tiles), `coarse` (coarse
//! tiles and their heads), `top` (the top level, its newest node kept apart).

mod coarse;
mod node;
mod rows;
mod slot;
mod spec;
mod tile;
mod top;

use crate::engine::partial::Partial;
use crate::schema::Value;
use coarse::Coarse;
use node::{Event, Node, Window};
use rows::Row;
use slot::{slot_firsts, slot_map, Col, Ctx};
pub(crate) use spec::value_heap;
pub use spec::{Aggregation, Mode, SameTimestamp, SeriesSpec};
use tile::Tile;
use top::Top;

/// The top level of the tile tree, by the number of coarse levels the spec keeps.
#[derive(Debug, Clone)]
enum Levels {
    Fine(Top<Tile>),
    One(Top<Coarse<Tile>>),
    Two(Top<Coarse<Coarse<Tile>>>),
}

/// The events of one entity in one feature view, tiled for fast window evaluation.
///
/// Every method takes the [`SeriesSpec`] the series was created with; passing another one is a
/// caller bug that gives wrong values but never panics.
#[derive(Debug, Clone)]
pub struct Series {
    tile_size: i64,
    /// Inputs per event ([`SeriesSpec::input_count`]), fixed at creation.
    width: usize,
    /// The aggregations that open a slot ([`slot_firsts`]), fixed at creation: inserting needs
    /// the slots and must not recompute them every time.
    firsts: Option<u64>,
    /// Top-level nodes keyed by `fine tile number / span(level)`, where the fine tile number is
    /// `ts.div_euclid(tile_size)` (an index, not a time, so it cannot overflow near `i64::MIN`).
    levels: Levels,
    len: usize,
    /// Fine tiles, and their estimated heap bytes, kept as they change ([`Series::footprint`]).
    tiles: usize,
    tile_bytes: usize,
}

impl Series {
    /// An empty series for `spec`.
    pub fn new(spec: &SeriesSpec) -> Self {
        let levels = match spec.coarse_levels() {
            0 => Levels::Fine(Top::new()),
            1 => Levels::One(Top::new()),
            _ => Levels::Two(Top::new()),
        };
        Series {
            tile_size: spec.tile_size(),
            width: spec.input_count(),
            firsts: slot_firsts(spec),
            levels,
            len: 0,
            tiles: 0,
            tile_bytes: 0,
        }
    }

    /// Applies what `ctx` tallied to the kept footprint.
    fn settle_tally(&mut self, ctx: &Ctx<'_>) {
        let add = |x: usize, d: isize| x.saturating_add_signed(d);
        self.tiles = add(self.tiles, ctx.tally.tiles.get());
        self.tile_bytes = add(self.tile_bytes, ctx.tally.bytes.get());
    }

    /// Adds an event at `ts` with ingestion sequence `seq`; `values[a.input]` is the input value
    /// of aggregation `a` (missing values read as null).
    ///
    /// With [`SameTimestamp::Replace`], stored events with the same `ts` are removed first;
    /// with [`SameTimestamp::Keep`], they stay and `seq` orders the ties.
    pub fn insert(
        &mut self,
        spec: &SeriesSpec,
        ts: i64,
        seq: u64,
        values: Vec<Value>,
        same_ts: SameTimestamp,
    ) {
        self.insert_values(spec, ts, seq, &values, same_ts);
    }

    /// [`Series::insert`] with borrowed values: they are copied into the tile's packed rows.
    pub fn insert_values(
        &mut self,
        spec: &SeriesSpec,
        ts: i64,
        seq: u64,
        values: &[Value],
        same_ts: SameTimestamp,
    ) {
        let row = Row::Values(values, self.width);
        self.insert_row(spec, ts, seq, row, same_ts);
    }

    /// Adds an event read straight from a source record: input `i` is `record[columns[i]]`
    /// (a missing one reads as null), or only whether it is null when `counted[i]` (a non-null
    /// value is stored as `Bool(true)`, all `count` needs). Otherwise as [`Series::insert`];
    /// nothing is allocated per event.
    #[allow(clippy::too_many_arguments)]
    pub fn insert_record(
        &mut self,
        spec: &SeriesSpec,
        ts: i64,
        seq: u64,
        record: &[Value],
        columns: &[usize],
        counted: &[bool],
        same_ts: SameTimestamp,
    ) {
        let row = Row::Mapped {
            record,
            columns,
            counted,
            width: self.width,
        };
        self.insert_row(spec, ts, seq, row, same_ts);
    }

    fn insert_row(
        &mut self,
        spec: &SeriesSpec,
        ts: i64,
        seq: u64,
        row: Row<'_>,
        same_ts: SameTimestamp,
    ) {
        let fine = ts.div_euclid(self.tile_size);
        let event = Event { ts, seq, row };
        let ctx = Ctx::new(spec, self.firsts);
        let removed = match &mut self.levels {
            Levels::Fine(top) => top.insert(&ctx, fine, event, same_ts),
            Levels::One(top) => top.insert(&ctx, fine, event, same_ts),
            Levels::Two(top) => top.insert(&ctx, fine, event, same_ts),
        };
        self.len = self.len.saturating_sub(removed) + 1;
        self.settle_tally(&ctx);
    }

    /// Drops every event older than `horizon` (`ts < horizon`); returns how many were dropped.
    ///
    /// The state left is exactly the one the remaining events would build on their own (tiles,
    /// partials and heads are rebuilt canonically), so evaluation over the remaining events is
    /// unchanged bit for bit. Costs `O(1)` when nothing is that old.
    pub fn evict_before(&mut self, spec: &SeriesSpec, horizon: i64) -> usize {
        if self.first_ts().is_none_or(|ts| ts >= horizon) {
            return 0;
        }
        let ctx = Ctx::new(spec, self.firsts);
        let removed = match &mut self.levels {
            Levels::Fine(top) => top.evict(&ctx, horizon),
            Levels::One(top) => top.evict(&ctx, horizon),
            Levels::Two(top) => top.evict(&ctx, horizon),
        };
        self.len = self.len.saturating_sub(removed);
        self.settle_tally(&ctx);
        removed
    }

    /// Time of the oldest stored event.
    pub fn first_ts(&self) -> Option<i64> {
        match &self.levels {
            Levels::Fine(top) => top.first()?.first_ts(),
            Levels::One(top) => top.first()?.first_ts(),
            Levels::Two(top) => top.first()?.first_ts(),
        }
    }

    /// Number of fine tiles, and an estimate of the heap bytes the series holds (events,
    /// values, partials and tree nodes; string contents counted at their length). Kept as the
    /// series changes: `O(1)`.
    pub fn footprint(&self) -> (usize, usize) {
        (self.tiles, std::mem::size_of::<Series>() + self.tile_bytes)
    }

    /// [`Series::footprint`] computed by walking every tile (tests check they agree).
    #[cfg(test)]
    fn walked_footprint(&self) -> (usize, usize) {
        let tiles = self.tiles();
        let bytes = tiles.iter().filter_map(|t| t.bytes()).sum::<usize>();
        (tiles.len(), std::mem::size_of::<Series>() + bytes)
    }

    /// The feature values at request time `t`, one per aggregation, in spec order.
    pub fn evaluate(&self, spec: &SeriesSpec, t: i64) -> Vec<Value> {
        let aggs = &spec.aggregations;
        if spec.before_start(t) {
            return vec![Value::Null; aggs.len()];
        }
        let slots: Vec<usize> = match self.firsts {
            Some(_) => slot_map(spec),
            None => (0..aggs.len()).collect(),
        };
        let bounds: Vec<Option<(i64, i64)>> = aggs.iter().map(|a| spec.bounds(a, t)).collect();
        let mut out: Vec<Option<Value>> = vec![None; aggs.len()];
        // For stale heads, built as the write path would have.
        let ctx = Ctx::new(spec, self.firsts);
        // Aggregations sharing a window share one pass over its tiles, and those sharing a slot
        // one partial.
        for i in 0..aggs.len() {
            if out[i].is_some() {
                continue;
            }
            let group: Vec<usize> = (i..aggs.len())
                .filter(|&j| out[j].is_none() && bounds[j] == bounds[i])
                .collect();
            let mut cols: Vec<Col> = Vec::with_capacity(group.len());
            let mut acc: Vec<Partial> = Vec::with_capacity(group.len());
            for &j in &group {
                if !cols.iter().any(|c| c.slot == slots[j]) {
                    cols.push(Col {
                        slot: slots[j],
                        input: aggs[j].input,
                    });
                    acc.push(Partial::new(&aggs[j].function));
                }
            }
            if let Some((lo, hi)) = bounds[i] {
                self.accumulate(&ctx, lo, hi, &cols, &mut acc);
            }
            for &j in &group {
                let k = cols.iter().position(|c| c.slot == slots[j]);
                out[j] = k
                    .and_then(|k| acc.get(k))
                    .map(|p| p.finalize(&aggs[j].function, &aggs[j].input_type));
            }
        }
        out.into_iter().map(|v| v.unwrap_or(Value::Null)).collect()
    }

    /// Folds the events with `lo <= ts <= hi` into `acc` (one partial per column in `cols`).
    fn accumulate(&self, ctx: &Ctx<'_>, lo: i64, hi: i64, cols: &[Col], acc: &mut [Partial]) {
        let window = Window {
            lo,
            hi,
            tile: self.tile_size,
            first_tile: lo.div_euclid(self.tile_size),
            last_tile: hi.div_euclid(self.tile_size),
        };
        match &self.levels {
            Levels::Fine(top) => top.accumulate(ctx, cols, &window, acc),
            Levels::One(top) => top.accumulate(ctx, cols, &window, acc),
            Levels::Two(top) => top.accumulate(ctx, cols, &window, acc),
        }
    }

    /// The fine tiles, oldest first.
    fn tiles(&self) -> Vec<&Tile> {
        let mut out = Vec::new();
        match &self.levels {
            Levels::Fine(top) => top.iter().for_each(|(_, n)| n.collect_tiles(&mut out)),
            Levels::One(top) => top.iter().for_each(|(_, n)| n.collect_tiles(&mut out)),
            Levels::Two(top) => top.iter().for_each(|(_, n)| n.collect_tiles(&mut out)),
        }
        out
    }

    /// Number of stored events.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when no event is stored.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The stored events as `(ts, seq, values)`, oldest first (by `(ts, seq)`). The values are
    /// unpacked from the tiles (a copy each).
    pub fn events(&self) -> impl Iterator<Item = (i64, u64, Vec<Value>)> + '_ {
        self.tiles()
            .into_iter()
            .flat_map(|t| (0..t.keys.len()).map(move |i| (t.keys[i].0, t.keys[i].1, t.row(i))))
    }

    /// The internal (fine) tile size in nanoseconds.
    pub fn tile_size(&self) -> i64 {
        self.tile_size
    }

    /// How many coarse heads are stale (tests only).
    #[cfg(test)]
    fn stale_heads(&self) -> usize {
        let one = |c: &Coarse<Tile>| usize::from(c.head.get().is_none());
        match &self.levels {
            Levels::Fine(_) => 0,
            Levels::One(top) => top.iter().map(|(_, c)| one(c)).sum(),
            Levels::Two(top) => top
                .iter()
                .map(|(_, c)| {
                    usize::from(c.head.get().is_none())
                        + c.children.iter().map(|(_, c)| one(c)).sum::<usize>()
                })
                .sum(),
        }
    }

    /// Checks every invariant of the tile tree (tests only).
    #[cfg(test)]
    fn check_tree(&self, spec: &SeriesSpec) -> Result<(), String> {
        fn top<N: Node>(top: &Top<N>, spec: &SeriesSpec) -> Result<(), String> {
            let nodes: Vec<(i64, &N)> = top.iter().collect();
            if !nodes.windows(2).all(|w| w[0].0 < w[1].0) {
                return Err("top-level nodes out of order".into());
            }
            let last = nodes.last().map(|(k, _)| *k);
            nodes
                .iter()
                .try_for_each(|(k, n)| n.check_node(spec, *k, Some(*k) == last))
        }
        let count: usize = self.tiles().iter().map(|t| t.keys.len()).sum();
        if count != self.len {
            return Err(format!("len {} but {count} events", self.len));
        }
        if self.footprint() != self.walked_footprint() {
            return Err(format!(
                "footprint kept {:?} but walked {:?}",
                self.footprint(),
                self.walked_footprint()
            ));
        }
        match &self.levels {
            Levels::Fine(t) => top(t, spec),
            Levels::One(t) => top(t, spec),
            Levels::Two(t) => top(t, spec),
        }
    }
}

#[cfg(test)]
mod tests;
