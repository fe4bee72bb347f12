//! The event series of one entity in one feature view, grouped into tiles, and window evaluation.
//!
//! # Windows (`spec/semantics.md` §4.1, DESIGN "Online window edges equal the offline rules")
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
//! stored and counted like any other; dropping them at ingestion (DESIGN: "not materialized") is
//! the caller's decision.
//!
//! # Fine tiles
//! Events are grouped into epoch-aligned fine tiles of a fixed size, each holding its events
//! sorted by `(ts, seq)`:
//! - TIME_INTERVAL: the tile is the aggregation interval `I`, so a window of whole intervals is
//!   answered from whole tiles alone;
//! - CONTINUOUS: the tile is the smallest window divided by 12 (1h → 5 min), the hop Chronon
//!   uses for its sawtooth tails.
//!
//! A fine tile holding at least `DENSE_TILE` (8) events also keeps one precomputed [`Partial`] per
//! aggregation, always the fold of its events in `(ts, seq)` order: an event that is the newest
//! of its tile is folded in directly; a late (out-of-order) event or a replacement rebuilds the
//! tile's partials from its events (min/max cannot be subtracted). A sparser tile keeps none:
//! most tiles of a sparse entity hold one event, and a dozen 80-byte partials per event would
//! make the online store several times larger than its events.
//!
//! # Coarse tiles
//! With sparse fine tiles alone, a 3-day window over 5-minute tiles folds every one of its
//! ~430 events (at one event per entity every 10 minutes) on every request. So fine tiles are
//! grouped into up to two levels of epoch-aligned coarse tiles whose partials are always kept:
//! a level-1 tile is `LEVEL1_FANOUT` (24) fine tiles, a level-2 tile `LEVEL2_FANOUT` (12)
//! level-1 tiles; CONTINUOUS with a 1h smallest window: 5 min → 2 h → 1 day; TIME_INTERVAL with
//! `I` = 10 min: 10 min → 4 h → 2 days. A level is kept only while its tile is at most half the
//! longest window ([`SeriesSpec::coarse_levels`]): a larger tile is rarely wholly inside any
//! window, and its partials would only cost memory. The sizes were chosen by measurement
//! (`benches/get_features.rs`): 24 fine tiles per level-1 tile visit about as many children at
//! the window's edges as whole tiles in its middle for windows of a day or more, and halve the
//! level-1 memory of 12; the second level turns a 3-day window's ~36 level-1 tiles into a few
//! level-2 ones.
//!
//! The *value* of a node is defined recursively, and is the same whenever it is computed:
//! - a fine tile's value is its partials when it has them, else its events folded in order;
//! - a coarse tile's value is its *head* merged with the value of its newest (last non-empty)
//!   child, where the head (one partial per aggregation) is the merge, oldest first, of the
//!   values of all its other children.
//!
//! The newest child is kept out of the head so that the common case costs nothing at the coarse
//! levels: an event appended to the newest child changes only that child. An event that opens a
//! new newest child merges the previous newest one into the head (one merge per aggregation,
//! plus its events if sparse); a late event or a replacement in an older child rebuilds the head
//! from the children's values (at most 24 children, each a merge or a few events). The head is
//! thus a function of the tile's events alone: the whole state, like the fine partials, does not
//! depend on arrival order, and the online and offline paths agree bit for bit.
//!
//! # Evaluation
//! A node whose events all lie in the window contributes its value; one that the window only
//! partly covers is opened and its children visited, down to fine tiles read event by event.
//! Containment is decided on the node's first and last events, not its bounds, so the newest
//! coarse tile counts whole whenever no event is newer than the window's end (the usual online
//! case), and results never depend on the tile sizes' alignment.
//!
//! Merging partials gives the folding result exactly for every function except the float
//! arithmetic of sum/mean (Neumaier-compensated) and the variance family (Chan's merge of
//! Welford states), which agree up to rounding ([`Partial::merge`]); so a float feature can differ
//! in its last bits with how the window cuts through tiles (relative error around 1e-15, far
//! inside `consistency::FLOAT_TOLERANCE`), never with arrival order.
//!
//! # Cost
//! `insert` is `O(log T + e + c)` for `T` top-level tiles, `e` events in the fine tile and `c`
//! children per coarse tile, plus `O(e·A)` when a fine tile is rebuilt and `O(c·A·DENSE_TILE)`
//! per coarse head rebuilt, `A` aggregations. `evaluate` visits, once per distinct
//! `(window, offset)`, the nodes overlapping the window: whole coarse tiles in the middle (two
//! or three merges each) and, at each edge, the children of the partly covered nodes, down to
//! the raw events of at most two fine tiles. A 3-day window is about 40 merges instead of 430
//! event folds. Empty tiles are never stored or visited.
//!
//! # Memory
//! A coarse tile with at least two non-empty children keeps `A` partials (about 80 bytes each);
//! one with a single child keeps none, since its value is that child's. Children are kept in
//! vectors sized exactly, so a sparse coarse tile costs its 8-byte key and 48-byte node.

use std::collections::BTreeMap;

use crate::engine::function::AggregateFunction;
use crate::engine::partial::Partial;
use crate::schema::{DataType, Value};

/// Fallback tile size (1 hour) when no aggregation has a positive window.
const DEFAULT_TILE: i64 = 3_600_000_000_000;

/// CONTINUOUS tiles are the smallest window divided by this.
const CONTINUOUS_TILES_PER_WINDOW: i64 = 12;

/// Fine tiles per level-1 coarse tile (see the module docs for the choice).
const LEVEL1_FANOUT: i64 = 24;

/// Level-1 tiles per level-2 coarse tile.
const LEVEL2_FANOUT: i64 = 12;

/// Fine tiles per node of each level: fine, level 1, level 2.
const SPANS: [i64; 3] = [1, LEVEL1_FANOUT, LEVEL1_FANOUT * LEVEL2_FANOUT];

/// Fine tiles per node of `level` (a fine tile is level 0).
fn span(level: usize) -> i64 {
    SPANS.get(level).copied().unwrap_or(1)
}

/// Stream processing mode of a feature view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Exact windows ending at the request time.
    Continuous,
    /// Whole epoch-aligned tiles of `interval` nanoseconds (must be positive; a non-positive
    /// interval is read as 1 ns rather than panicking).
    TimeInterval {
        /// The aggregation interval in nanoseconds.
        interval: i64,
    },
}

/// One windowed aggregate feature.
#[derive(Debug, Clone, PartialEq)]
pub struct Aggregation {
    /// The function.
    pub function: AggregateFunction,
    /// Type of the input column (decides e.g. whether a sum is an `Int` or a `Float`).
    pub input_type: DataType,
    /// Window size in nanoseconds (> 0; a non-positive window is always empty).
    pub window: i64,
    /// Window offset in nanoseconds (≤ 0): the window ends at `t + offset`.
    pub offset: i64,
    /// Index of this aggregation's input column in each event's values. Aggregations over the
    /// same column share it, so an event stores each input once (nine `amt` features cost one
    /// value, not nine).
    pub input: usize,
}

/// What a [`Series`] computes: the mode, the aggregations and `feature_start_time`.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesSpec {
    /// CONTINUOUS or TIME_INTERVAL.
    pub mode: Mode,
    /// The features, in output order.
    pub aggregations: Vec<Aggregation>,
    /// Before this time (ns) every feature is null.
    pub feature_start_time: Option<i64>,
}

impl SeriesSpec {
    /// How many input values each event carries: one past the largest `input` index.
    pub fn input_count(&self) -> usize {
        self.aggregations
            .iter()
            .map(|a| a.input + 1)
            .max()
            .unwrap_or(0)
    }

    /// The internal (fine) tile size in nanoseconds (see the module docs).
    pub fn tile_size(&self) -> i64 {
        match self.mode {
            Mode::TimeInterval { interval } => interval.max(1),
            Mode::Continuous => self
                .aggregations
                .iter()
                .map(|a| a.window)
                .filter(|&w| w > 0)
                .min()
                .map_or(DEFAULT_TILE, |w| (w / CONTINUOUS_TILES_PER_WINDOW).max(1)),
        }
    }

    /// How many coarse levels (0 to 2) a series of this spec keeps: a level is kept while its
    /// tile is at most half the longest window, so that the window can hold a whole one.
    pub fn coarse_levels(&self) -> usize {
        let longest = self
            .aggregations
            .iter()
            .map(|a| a.window)
            .max()
            .unwrap_or(0);
        let tile = i128::from(self.tile_size());
        // In i128: the tile, a fan-out of 288 and the factor 2 cannot overflow it.
        (1..SPANS.len())
            .take_while(|&level| 2 * tile * i128::from(span(level)) <= i128::from(longest))
            .count()
    }

    /// True when `t` is before `feature_start_time` under this mode's rule.
    pub fn before_start(&self, t: i64) -> bool {
        let Some(fst) = self.feature_start_time else {
            return false;
        };
        match self.mode {
            Mode::Continuous => t < fst,
            Mode::TimeInterval { interval } => floor_to(t, interval) < i128::from(fst),
        }
    }

    /// The inclusive range `[lo, hi]` of event times aggregation `agg` covers at `t`, or `None`
    /// when it is empty. Computed in `i128` so no window, offset or time can overflow.
    fn bounds(&self, agg: &Aggregation, t: i64) -> Option<(i64, i64)> {
        let (w, off) = (i128::from(agg.window), i128::from(agg.offset));
        let (lo, hi) = match self.mode {
            Mode::Continuous => {
                let t = i128::from(t);
                (t - w + off + 1, t + off)
            }
            Mode::TimeInterval { interval } => {
                let f = floor_to(t, interval);
                (f - w + off, f + off - 1)
            }
        };
        let lo = lo.max(i128::from(i64::MIN));
        let hi = hi.min(i128::from(i64::MAX));
        // Both now fit in i64 whenever lo <= hi, so the conversions cannot fail.
        if lo > hi {
            return None;
        }
        Some((i64::try_from(lo).ok()?, i64::try_from(hi).ok()?))
    }

    /// One empty partial per aggregation, in spec order.
    fn empty_partials(&self) -> Vec<Partial> {
        self.aggregations
            .iter()
            .map(|a| Partial::new(&a.function))
            .collect()
    }

    /// The indices of all aggregations, for folding into a per-aggregation partial list.
    fn all(&self) -> Vec<usize> {
        (0..self.aggregations.len()).collect()
    }
}

/// `fl(x) = x − x mod I` (epoch-aligned, also for negative times), in `i128` so it cannot
/// overflow. A non-positive interval is read as 1 ns.
fn floor_to(x: i64, interval: i64) -> i128 {
    let i = interval.max(1);
    i128::from(x) - i128::from(x.rem_euclid(i))
}

/// What to do when an event arrives with the timestamp of a stored one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SameTimestamp {
    /// The stored event(s) with that timestamp are replaced (online store: last write wins for the
    /// same key and timestamp).
    Replace,
    /// Both rows stay (offline log).
    Keep,
}

#[derive(Debug, Clone)]
struct Event {
    ts: i64,
    seq: u64,
    values: Vec<Value>,
}

impl Event {
    fn key(&self) -> (i64, u64) {
        (self.ts, self.seq)
    }

    /// Folds this event into one partial per aggregation, in spec order.
    fn fold_all(&self, spec: &SeriesSpec, partials: &mut [Partial]) {
        for (p, a) in partials.iter_mut().zip(&spec.aggregations) {
            if let Some(v) = self.values.get(a.input) {
                p.update(v, self.ts, self.seq);
            }
        }
    }

    /// Folds this event into `acc`, whose partial `i` is that of aggregation `group[i]`.
    fn fold_into(&self, spec: &SeriesSpec, group: &[usize], acc: &mut [Partial]) {
        for (p, &j) in acc.iter_mut().zip(group) {
            let input = spec.aggregations.get(j).map_or(usize::MAX, |a| a.input);
            if let Some(v) = self.values.get(input) {
                p.update(v, self.ts, self.seq);
            }
        }
    }
}

/// Merges `from[group[i]]` into `acc[i]` for every `i`.
fn merge_into(from: &[Partial], group: &[usize], acc: &mut [Partial]) {
    for (p, &j) in acc.iter_mut().zip(group) {
        if let Some(q) = from.get(j) {
            p.merge(q);
        }
    }
}

/// The time range a window covers, with the fine tiles it touches.
#[derive(Debug, Clone, Copy)]
struct Window {
    /// Inclusive event-time bounds.
    lo: i64,
    hi: i64,
    /// Fine tile numbers of `lo` and `hi`.
    first_tile: i64,
    last_tile: i64,
}

/// A level of the tile tree: a fine tile or a coarse tile of fine or coarse tiles.
trait Node: Sized {
    /// 0 for a fine tile, 1 and 2 for coarse tiles; a node of level `l` covers `span(l)` fine
    /// tiles and is keyed by `fine tile number / span(l)` (rounded down).
    const LEVEL: usize;

    fn empty() -> Self;

    /// Adds `event`, which lies in fine tile number `fine` inside this node. Returns how many
    /// stored events it replaced.
    fn insert(
        &mut self,
        spec: &SeriesSpec,
        fine: i64,
        event: Event,
        same_ts: SameTimestamp,
    ) -> usize;

    /// Merges this node's value (module docs) into `acc`, partial `i` being that of aggregation
    /// `group[i]`.
    fn apply(&self, spec: &SeriesSpec, group: &[usize], acc: &mut [Partial]);

    /// Folds the events inside `window` into `acc`.
    fn accumulate(&self, spec: &SeriesSpec, window: &Window, group: &[usize], acc: &mut [Partial]);

    /// Time of the oldest event.
    fn first_ts(&self) -> Option<i64>;

    /// Time of the newest event.
    fn last_ts(&self) -> Option<i64>;

    /// Appends the fine tiles, oldest first.
    fn collect_tiles<'a>(&'a self, out: &mut Vec<&'a Tile>);

    /// True when every event lies inside `window`.
    fn within(&self, window: &Window) -> bool {
        self.first_ts().is_some_and(|ts| ts >= window.lo)
            && self.last_ts().is_some_and(|ts| ts <= window.hi)
    }

    /// Checks the structure: sorted, non-empty, partials equal to a rebuild.
    #[cfg(test)]
    fn check(&self, spec: &SeriesSpec, key: i64) -> Result<(), String>;
}

#[derive(Debug, Clone)]
struct Tile {
    /// Sorted by `(ts, seq)`.
    events: Vec<Event>,
    /// One per aggregation, the fold of `events`; empty while the tile is sparse (fewer than
    /// [`DENSE_TILE`] events), where folding the events at read time costs about as much as
    /// merging partials and the partials would dominate memory.
    partials: Vec<Partial>,
}

/// Events a fine tile holds before it keeps precomputed partials. Most tiles of a sparse entity
/// hold one event; without this, a dozen 80-byte partials per event would make the online store
/// several times larger than the events themselves.
const DENSE_TILE: usize = 8;

impl Tile {
    fn rebuild(&mut self, spec: &SeriesSpec) {
        let mut partials = spec.empty_partials();
        for e in &self.events {
            e.fold_all(spec, &mut partials);
        }
        self.partials = partials;
    }
}

impl Node for Tile {
    const LEVEL: usize = 0;

    fn empty() -> Self {
        Tile {
            events: Vec::new(),
            partials: Vec::new(),
        }
    }

    fn insert(
        &mut self,
        spec: &SeriesSpec,
        _fine: i64,
        event: Event,
        same_ts: SameTimestamp,
    ) -> usize {
        let mut removed = 0;
        if same_ts == SameTimestamp::Replace {
            let start = self.events.partition_point(|e| e.ts < event.ts);
            let end = self.events.partition_point(|e| e.ts <= event.ts);
            if end > start {
                self.events.drain(start..end);
                removed = end - start;
            }
        }
        let at = self.events.partition_point(|e| e.key() <= event.key());
        let newest = at == self.events.len();
        if !self.partials.is_empty() && newest && removed == 0 {
            event.fold_all(spec, &mut self.partials);
            self.events.push(event);
        } else {
            if self.events.len() < DENSE_TILE {
                // Sparse tiles are the common case of a sparse entity: grow them one slot at a
                // time (a 1-event tile would otherwise reserve 4).
                self.events.reserve_exact(1);
            }
            self.events.insert(at, event);
            // Dense exactly when it holds DENSE_TILE events, so the state depends on the events
            // alone (a replacement can make a tile sparse again).
            if self.events.len() >= DENSE_TILE {
                self.rebuild(spec);
            } else {
                self.partials = Vec::new();
            }
        }
        removed
    }

    fn apply(&self, spec: &SeriesSpec, group: &[usize], acc: &mut [Partial]) {
        if self.partials.is_empty() {
            for e in &self.events {
                e.fold_into(spec, group, acc);
            }
        } else {
            merge_into(&self.partials, group, acc);
        }
    }

    fn accumulate(&self, spec: &SeriesSpec, window: &Window, group: &[usize], acc: &mut [Partial]) {
        if self.within(window) {
            self.apply(spec, group, acc);
        } else {
            let from = self.events.partition_point(|e| e.ts < window.lo);
            for e in self.events[from..].iter().take_while(|e| e.ts <= window.hi) {
                e.fold_into(spec, group, acc);
            }
        }
    }

    fn first_ts(&self) -> Option<i64> {
        self.events.first().map(|e| e.ts)
    }

    fn last_ts(&self) -> Option<i64> {
        self.events.last().map(|e| e.ts)
    }

    fn collect_tiles<'a>(&'a self, out: &mut Vec<&'a Tile>) {
        out.push(self);
    }

    #[cfg(test)]
    fn check(&self, spec: &SeriesSpec, key: i64) -> Result<(), String> {
        if self.events.is_empty() {
            return Err("empty fine tile".into());
        }
        if let Some(e) = self
            .events
            .iter()
            .find(|e| e.ts.div_euclid(spec.tile_size()) != key)
        {
            return Err(format!("event at {} in fine tile {key}", e.ts));
        }
        if !self.events.windows(2).all(|w| w[0].key() <= w[1].key()) {
            return Err("fine tile events out of order".into());
        }
        let mut rebuilt = Tile::empty();
        rebuilt.events = self.events.clone();
        if self.events.len() >= DENSE_TILE {
            rebuilt.rebuild(spec);
        }
        if rebuilt.partials != self.partials {
            return Err(format!(
                "fine tile of {} events: partials differ from a rebuild",
                self.events.len()
            ));
        }
        Ok(())
    }
}

/// A coarse tile: its children (fine tiles or level-1 tiles) and the head of their values.
#[derive(Debug, Clone)]
struct Coarse<C> {
    /// One partial per aggregation: the merge, oldest first, of the values of every child but
    /// the newest. Empty while there is one child, whose value is then the tile's.
    head: Vec<Partial>,
    /// Keyed by `fine tile number / span(C::LEVEL)`, sorted, never empty once inserted into.
    /// Sized exactly: there are at most [`LEVEL1_FANOUT`] of them.
    children: Vec<(i64, C)>,
}

impl<C: Node> Coarse<C> {
    /// The head as the module docs define it.
    fn build_head(&self, spec: &SeriesSpec) -> Vec<Partial> {
        let Some((_, older)) = self.children.split_last() else {
            return Vec::new();
        };
        if older.is_empty() {
            return Vec::new();
        }
        let mut head = spec.empty_partials();
        let all = spec.all();
        for (_, child) in older {
            child.apply(spec, &all, &mut head);
        }
        head
    }
}

impl<C: Node> Node for Coarse<C> {
    const LEVEL: usize = C::LEVEL + 1;

    fn empty() -> Self {
        Coarse {
            head: Vec::new(),
            children: Vec::new(),
        }
    }

    fn insert(
        &mut self,
        spec: &SeriesSpec,
        fine: i64,
        event: Event,
        same_ts: SameTimestamp,
    ) -> usize {
        let key = fine.div_euclid(span(C::LEVEL));
        let at = self.children.partition_point(|(k, _)| *k < key);
        if self.children.get(at).is_none_or(|(k, _)| *k != key) {
            if at == self.children.len() {
                // A new newest child: the current newest one joins the head. Same merges, in the
                // same order, as `build_head`, so the head stays canonical.
                if let Some((_, newest)) = self.children.last() {
                    if self.head.is_empty() {
                        self.head = spec.empty_partials();
                    }
                    newest.apply(spec, &spec.all(), &mut self.head);
                }
            }
            self.children.reserve_exact(1);
            self.children.insert(at, (key, C::empty()));
        }
        let removed = self
            .children
            .get_mut(at)
            .map_or(0, |(_, child)| child.insert(spec, fine, event, same_ts));
        if at + 1 < self.children.len() {
            // An older child changed (late event, replacement, or a new child before the newest).
            self.head = self.build_head(spec);
        }
        removed
    }

    fn apply(&self, spec: &SeriesSpec, group: &[usize], acc: &mut [Partial]) {
        merge_into(&self.head, group, acc);
        if let Some((_, newest)) = self.children.last() {
            newest.apply(spec, group, acc);
        }
    }

    fn accumulate(&self, spec: &SeriesSpec, window: &Window, group: &[usize], acc: &mut [Partial]) {
        if self.within(window) {
            self.apply(spec, group, acc);
        } else {
            let s = span(C::LEVEL);
            let (first, last) = (
                window.first_tile.div_euclid(s),
                window.last_tile.div_euclid(s),
            );
            let from = self.children.partition_point(|(k, _)| *k < first);
            for (_, child) in self.children[from..].iter().take_while(|(k, _)| *k <= last) {
                child.accumulate(spec, window, group, acc);
            }
        }
    }

    fn first_ts(&self) -> Option<i64> {
        self.children.first()?.1.first_ts()
    }

    fn last_ts(&self) -> Option<i64> {
        self.children.last()?.1.last_ts()
    }

    fn collect_tiles<'a>(&'a self, out: &mut Vec<&'a Tile>) {
        for (_, child) in &self.children {
            child.collect_tiles(out);
        }
    }

    #[cfg(test)]
    fn check(&self, spec: &SeriesSpec, key: i64) -> Result<(), String> {
        if self.children.is_empty() {
            return Err(format!("empty level-{} tile", Self::LEVEL));
        }
        if !self.children.windows(2).all(|w| w[0].0 < w[1].0) {
            return Err(format!("level-{} children out of order", Self::LEVEL));
        }
        let ratio = span(Self::LEVEL) / span(C::LEVEL);
        for (k, child) in &self.children {
            if k.div_euclid(ratio) != key {
                return Err(format!("child {k} in level-{} tile {key}", Self::LEVEL));
            }
            child.check(spec, *k)?;
        }
        if self.head != self.build_head(spec) {
            return Err(format!("level-{} head differs from a rebuild", Self::LEVEL));
        }
        Ok(())
    }
}

/// The top level of the tile tree, by the number of coarse levels the spec keeps.
#[derive(Debug, Clone)]
enum Levels {
    Fine(BTreeMap<i64, Tile>),
    One(BTreeMap<i64, Coarse<Tile>>),
    Two(BTreeMap<i64, Coarse<Coarse<Tile>>>),
}

fn insert_top<N: Node>(
    top: &mut BTreeMap<i64, N>,
    spec: &SeriesSpec,
    fine: i64,
    event: Event,
    same_ts: SameTimestamp,
) -> usize {
    top.entry(fine.div_euclid(span(N::LEVEL)))
        .or_insert_with(N::empty)
        .insert(spec, fine, event, same_ts)
}

fn accumulate_top<N: Node>(
    top: &BTreeMap<i64, N>,
    spec: &SeriesSpec,
    window: &Window,
    group: &[usize],
    acc: &mut [Partial],
) {
    let s = span(N::LEVEL);
    // lo <= hi, so first <= last and `range` cannot panic.
    let range = window.first_tile.div_euclid(s)..=window.last_tile.div_euclid(s);
    for node in top.range(range).map(|(_, n)| n) {
        node.accumulate(spec, window, group, acc);
    }
}

/// The events of one entity in one feature view, tiled for fast window evaluation.
///
/// Every method takes the [`SeriesSpec`] the series was created with; passing another one is a
/// caller bug that gives wrong values but never panics.
#[derive(Debug, Clone)]
pub struct Series {
    tile_size: i64,
    /// Top-level nodes keyed by `fine tile number / span(level)`, where the fine tile number is
    /// `ts.div_euclid(tile_size)` (an index, not a time, so it cannot overflow near `i64::MIN`).
    levels: Levels,
    len: usize,
}

impl Series {
    /// An empty series for `spec`.
    pub fn new(spec: &SeriesSpec) -> Self {
        let levels = match spec.coarse_levels() {
            0 => Levels::Fine(BTreeMap::new()),
            1 => Levels::One(BTreeMap::new()),
            _ => Levels::Two(BTreeMap::new()),
        };
        Series {
            tile_size: spec.tile_size(),
            levels,
            len: 0,
        }
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
        mut values: Vec<Value>,
        same_ts: SameTimestamp,
    ) {
        values.resize(spec.input_count(), Value::Null);
        values.shrink_to_fit();
        let fine = ts.div_euclid(self.tile_size);
        let event = Event { ts, seq, values };
        let removed = match &mut self.levels {
            Levels::Fine(top) => insert_top(top, spec, fine, event, same_ts),
            Levels::One(top) => insert_top(top, spec, fine, event, same_ts),
            Levels::Two(top) => insert_top(top, spec, fine, event, same_ts),
        };
        self.len = self.len.saturating_sub(removed) + 1;
    }

    /// The feature values at request time `t`, one per aggregation, in spec order.
    pub fn evaluate(&self, spec: &SeriesSpec, t: i64) -> Vec<Value> {
        let aggs = &spec.aggregations;
        if spec.before_start(t) {
            return vec![Value::Null; aggs.len()];
        }
        let bounds: Vec<Option<(i64, i64)>> = aggs.iter().map(|a| spec.bounds(a, t)).collect();
        let mut out: Vec<Option<Value>> = vec![None; aggs.len()];
        // Aggregations sharing a window share one pass over its tiles.
        for i in 0..aggs.len() {
            if out[i].is_some() {
                continue;
            }
            let group: Vec<usize> = (i..aggs.len())
                .filter(|&j| out[j].is_none() && bounds[j] == bounds[i])
                .collect();
            let mut acc: Vec<Partial> = group
                .iter()
                .map(|&j| Partial::new(&aggs[j].function))
                .collect();
            if let Some((lo, hi)) = bounds[i] {
                self.accumulate(spec, lo, hi, &group, &mut acc);
            }
            for (&j, p) in group.iter().zip(&acc) {
                out[j] = Some(p.finalize(&aggs[j].function, &aggs[j].input_type));
            }
        }
        out.into_iter().map(|v| v.unwrap_or(Value::Null)).collect()
    }

    /// Folds the events with `lo <= ts <= hi` into `acc` (one partial per index in `group`).
    fn accumulate(
        &self,
        spec: &SeriesSpec,
        lo: i64,
        hi: i64,
        group: &[usize],
        acc: &mut [Partial],
    ) {
        let window = Window {
            lo,
            hi,
            first_tile: lo.div_euclid(self.tile_size),
            last_tile: hi.div_euclid(self.tile_size),
        };
        match &self.levels {
            Levels::Fine(top) => accumulate_top(top, spec, &window, group, acc),
            Levels::One(top) => accumulate_top(top, spec, &window, group, acc),
            Levels::Two(top) => accumulate_top(top, spec, &window, group, acc),
        }
    }

    /// The fine tiles, oldest first.
    fn tiles(&self) -> Vec<&Tile> {
        let mut out = Vec::new();
        match &self.levels {
            Levels::Fine(top) => top.values().for_each(|n| n.collect_tiles(&mut out)),
            Levels::One(top) => top.values().for_each(|n| n.collect_tiles(&mut out)),
            Levels::Two(top) => top.values().for_each(|n| n.collect_tiles(&mut out)),
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

    /// The stored events as `(ts, seq, values)`, oldest first (by `(ts, seq)`).
    pub fn events(&self) -> impl Iterator<Item = (i64, u64, &[Value])> + '_ {
        self.tiles()
            .into_iter()
            .flat_map(|t| t.events.iter().map(|e| (e.ts, e.seq, e.values.as_slice())))
    }

    /// The internal (fine) tile size in nanoseconds.
    pub fn tile_size(&self) -> i64 {
        self.tile_size
    }

    /// Checks every invariant of the tile tree (tests only).
    #[cfg(test)]
    fn check(&self, spec: &SeriesSpec) -> Result<(), String> {
        fn top<N: Node>(map: &BTreeMap<i64, N>, spec: &SeriesSpec) -> Result<(), String> {
            map.iter().try_for_each(|(k, n)| n.check(spec, *k))
        }
        let count: usize = self.tiles().iter().map(|t| t.events.len()).sum();
        if count != self.len {
            return Err(format!("len {} but {count} events", self.len));
        }
        match &self.levels {
            Levels::Fine(t) => top(t, spec),
            Levels::One(t) => top(t, spec),
            Levels::Two(t) => top(t, spec),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::duration::{HOUR, MINUTE, SECOND};
    use crate::engine::hll::Hll;
    use proptest::prelude::*;

    /// 2024-01-01T00:00:00Z.
    const DAY0: i64 = 1_704_067_200 * SECOND;

    /// A time on 2024-01-01, `hh:mm:ss`.
    fn at(h: i64, m: i64, s: i64) -> i64 {
        DAY0 + h * HOUR + m * MINUTE + s * SECOND
    }

    fn agg(f: &str, input: DataType, window: i64, offset: i64) -> Aggregation {
        Aggregation {
            function: f.parse().unwrap(),
            input_type: input,
            window,
            offset,
            input: 0,
        }
    }

    /// A spec whose event values are one per aggregation, in order.
    fn spec(mode: Mode, aggregations: Vec<Aggregation>) -> SeriesSpec {
        SeriesSpec {
            mode,
            aggregations: aggregations
                .into_iter()
                .enumerate()
                .map(|(i, a)| Aggregation { input: i, ..a })
                .collect(),
            feature_start_time: None,
        }
    }

    fn ti(minutes: i64) -> Mode {
        Mode::TimeInterval {
            interval: minutes * MINUTE,
        }
    }

    /// sum and count of one Float64 column over 1h, plus the same with a -10m offset.
    fn sum_count_spec(mode: Mode) -> SeriesSpec {
        spec(
            mode,
            vec![
                agg("sum", DataType::Float64, HOUR, 0),
                agg("count", DataType::Float64, HOUR, 0),
                agg("sum", DataType::Float64, HOUR, -10 * MINUTE),
            ],
        )
    }

    fn load(spec: &SeriesSpec, events: &[(i64, Value)]) -> Series {
        let mut s = Series::new(spec);
        for (seq, (ts, v)) in events.iter().enumerate() {
            let n = spec.aggregations.len();
            s.insert(
                spec,
                *ts,
                seq as u64,
                vec![v.clone(); n],
                SameTimestamp::Keep,
            );
        }
        s
    }

    fn fl(x: f64) -> Value {
        Value::Float(x)
    }

    /// The events of `spec/semantics.md` §4.2, inserted in a scrambled order.
    fn worked_example(spec: &SeriesSpec) -> Series {
        let mut events = vec![
            (at(11, 30, 0), fl(1.0)),
            (at(11, 35, 0), fl(2.0)),
            (at(12, 0, 0), fl(4.0)),
            (at(12, 29, 59), fl(8.0)),
            (at(12, 30, 0), fl(16.0)),
            (at(12, 36, 0), fl(32.0)),
            (at(12, 37, 0), Value::Null),
        ];
        events.reverse();
        events.swap(1, 4);
        load(spec, &events)
    }

    #[test]
    fn worked_example_continuous() {
        let spec = sum_count_spec(Mode::Continuous);
        let s = worked_example(&spec);
        assert_eq!(s.len(), 7);
        // Documented rule: the null at 12:37 is excluded (not Rift's quirk of counting it).
        let table = [
            (at(11, 30, 0), fl(1.0), 1),
            (at(12, 29, 59), fl(15.0), 4),
            (at(12, 30, 0), fl(30.0), 4),
            (at(12, 37, 0), fl(60.0), 4),
            (at(12, 40, 0), fl(60.0), 4),
            (at(13, 30, 0), fl(32.0), 1),
        ];
        for (t, sum, count) in table {
            let got = s.evaluate(&spec, t);
            assert_eq!(got[0], sum, "sum at {t}");
            assert_eq!(got[1], Value::Int(count), "count at {t}");
        }
        // Offset window (t−70m, t−10m] at 12:40 → (11:30, 12:30] → 2+4+8+16.
        assert_eq!(s.evaluate(&spec, at(12, 40, 0))[2], fl(30.0));
    }

    #[test]
    fn worked_example_time_interval() {
        let spec = sum_count_spec(ti(10));
        let s = worked_example(&spec);
        let table = [
            (at(11, 30, 0), Value::Null, 0),
            (at(12, 29, 59), fl(7.0), 3),
            (at(12, 30, 0), fl(15.0), 4),
            (at(12, 37, 0), fl(15.0), 4),
            (at(12, 40, 0), fl(60.0), 4),
            (at(13, 30, 0), fl(48.0), 2),
        ];
        for (t, sum, count) in table {
            let got = s.evaluate(&spec, t);
            assert_eq!(got[0], sum, "sum at {t}");
            assert_eq!(got[1], Value::Int(count), "count at {t}");
        }
        // Offset window [fl(t)−70m, fl(t)−10m) at 13:30 → [12:20, 13:20) → 8+16+32.
        assert_eq!(s.evaluate(&spec, at(13, 30, 0))[2], fl(56.0));
    }

    /// One event at `ts` with value 1; returns the 1h count at `t`.
    fn count_one(mode: Mode, offset: i64, ts: i64, t: i64) -> Value {
        let spec = spec(mode, vec![agg("count", DataType::Int64, HOUR, offset)]);
        let s = load(&spec, &[(ts, Value::Int(1))]);
        s.evaluate(&spec, t).remove(0)
    }

    #[test]
    fn continuous_edges() {
        let c = Mode::Continuous;
        let t = at(12, 7, 30);
        let one = Value::Int(1);
        let zero = Value::Int(0);
        assert_eq!(count_one(c, 0, t, t), one, "exactly at t");
        assert_eq!(count_one(c, 0, t - HOUR, t), zero, "exactly at t-W");
        assert_eq!(count_one(c, 0, t - HOUR + 1, t), one, "just after t-W");
        assert_eq!(count_one(c, 0, t + 1, t), zero, "after t");
        // Internal tiles are 5 min; tile boundaries must not matter.
        assert_eq!(count_one(c, 0, at(12, 5, 0), t), one, "on a tile boundary");
        // CONTINUOUS has no in-progress exclusion: the current internal tile counts up to t.
        assert_eq!(
            count_one(c, 0, at(12, 6, 0), t),
            one,
            "inside the current tile"
        );
        assert_eq!(
            count_one(c, 0, at(11, 10, 0), at(12, 10, 0)),
            zero,
            "t-W on a tile boundary"
        );
        assert_eq!(
            count_one(c, 0, at(12, 10, 0), at(12, 10, 0)),
            one,
            "t on a tile boundary"
        );
        // Offset -10m: (t−70m, t−10m].
        let off = -10 * MINUTE;
        assert_eq!(count_one(c, off, t - 10 * MINUTE, t), one, "at t+off");
        assert_eq!(
            count_one(c, off, t - 10 * MINUTE + 1, t),
            zero,
            "after t+off"
        );
        assert_eq!(count_one(c, off, t - 70 * MINUTE, t), zero, "at t-W+off");
        assert_eq!(
            count_one(c, off, t - 70 * MINUTE + 1, t),
            one,
            "after t-W+off"
        );
    }

    #[test]
    fn time_interval_edges() {
        let m = ti(10);
        let t = at(12, 7, 30); // fl(t) = 12:00, window [11:00, 12:00)
        let one = Value::Int(1);
        let zero = Value::Int(0);
        assert_eq!(
            count_one(m, 0, t, t),
            zero,
            "exactly at t (in-progress tile)"
        );
        assert_eq!(
            count_one(m, 0, at(12, 0, 0), t),
            zero,
            "at fl(t): in-progress tile"
        );
        assert_eq!(
            count_one(m, 0, at(12, 0, 0) - 1, t),
            one,
            "last ns of the last full tile"
        );
        assert_eq!(
            count_one(m, 0, at(11, 0, 0), t),
            one,
            "at fl(t)-W: included"
        );
        assert_eq!(count_one(m, 0, at(11, 0, 0) - 1, t), zero, "before fl(t)-W");
        assert_eq!(
            count_one(m, 0, t - HOUR, t),
            one,
            "t-W is inside the window"
        );
        assert_eq!(count_one(m, 0, t + 1, t), zero, "after t");
        // Requesting exactly on a tile boundary closes the previous tile.
        assert_eq!(
            count_one(m, 0, at(12, 0, 0), at(12, 10, 0)),
            one,
            "tile just closed"
        );
        assert_eq!(count_one(m, 0, at(11, 0, 0), at(12, 0, 0)), one);
        assert_eq!(
            count_one(m, 0, at(11, 0, 0), at(12, 10, 0)),
            zero,
            "tile just left"
        );
        // Offset -10m: [fl(t)−70m, fl(t)−10m) = [10:50, 11:50).
        let off = -10 * MINUTE;
        assert_eq!(count_one(m, off, at(11, 50, 0) - 1, t), one);
        assert_eq!(count_one(m, off, at(11, 50, 0), t), zero);
        assert_eq!(count_one(m, off, at(10, 50, 0), t), one);
        assert_eq!(count_one(m, off, at(10, 50, 0) - 1, t), zero);
    }

    #[test]
    fn windows_not_aligned_to_the_interval_are_exact() {
        // 25-minute window over 10-minute tiles: [fl(t)-25m, fl(t)) = [11:35, 12:00).
        let m = ti(10);
        let spec = spec(m, vec![agg("count", DataType::Int64, 25 * MINUTE, 0)]);
        let s = load(
            &spec,
            &[
                (at(11, 34, 59), Value::Int(1)),
                (at(11, 35, 0), Value::Int(1)),
                (at(11, 45, 0), Value::Int(1)),
                (at(11, 59, 0), Value::Int(1)),
            ],
        );
        assert_eq!(s.evaluate(&spec, at(12, 3, 0)), vec![Value::Int(3)]);
    }

    #[test]
    fn feature_start_time() {
        let fst = at(12, 5, 0);
        for (mode, null_at, value_at) in [
            (Mode::Continuous, fst - 1, fst),
            // TIME_INTERVAL: null while fl(t) < fst, i.e. until 12:10.
            (ti(10), at(12, 9, 59), at(12, 10, 0)),
        ] {
            let mut spec = spec(
                mode,
                vec![
                    agg("count", DataType::Int64, HOUR, 0),
                    agg("last(2)", DataType::Int64, HOUR, 0),
                ],
            );
            spec.feature_start_time = Some(fst);
            // An event from before fst still counts once features are served.
            let s = load(&spec, &[(at(11, 50, 0), Value::Int(5))]);
            assert_eq!(
                s.evaluate(&spec, null_at),
                vec![Value::Null, Value::Null],
                "{mode:?}"
            );
            assert_eq!(
                s.evaluate(&spec, value_at),
                vec![Value::Int(1), Value::Array(vec![Value::Int(5)])],
                "{mode:?}"
            );
        }
    }

    #[test]
    fn empty_series_gives_empty_values() {
        let spec = spec(
            Mode::Continuous,
            vec![
                agg("count", DataType::Int64, HOUR, 0),
                agg("sum", DataType::Int64, HOUR, 0),
                agg("last_distinct(3)", DataType::String, HOUR, 0),
                agg("approx_count_distinct", DataType::String, HOUR, 0),
                agg("max", DataType::String, HOUR, 0),
            ],
        );
        let s = Series::new(&spec);
        assert!(s.is_empty());
        assert_eq!(
            s.evaluate(&spec, at(12, 0, 0)),
            vec![
                Value::Int(0),
                Value::Null,
                Value::Array(vec![]),
                Value::Int(0),
                Value::Null
            ]
        );
    }

    #[test]
    fn replace_vs_keep_on_duplicate_timestamp() {
        let spec = spec(
            Mode::Continuous,
            vec![
                agg("count", DataType::Int64, HOUR, 0),
                agg("sum", DataType::Int64, HOUR, 0),
                agg("max", DataType::Int64, HOUR, 0),
                agg("last(3)", DataType::Int64, HOUR, 0),
            ],
        );
        let ts = at(12, 0, 0);
        let run = |mode: SameTimestamp| {
            let mut s = Series::new(&spec);
            s.insert(&spec, ts - MINUTE, 0, vec![Value::Int(1); 4], mode);
            s.insert(&spec, ts, 1, vec![Value::Int(10); 4], mode);
            // A smaller value at the same ts: with Replace, max must drop back (no subtraction).
            s.insert(&spec, ts, 2, vec![Value::Int(3); 4], mode);
            (s.len(), s.evaluate(&spec, ts))
        };
        let list = |xs: &[i64]| Value::Array(xs.iter().map(|&x| Value::Int(x)).collect());
        assert_eq!(
            run(SameTimestamp::Replace),
            (
                2,
                vec![Value::Int(2), Value::Int(4), Value::Int(3), list(&[1, 3])]
            )
        );
        assert_eq!(
            run(SameTimestamp::Keep),
            (
                3,
                vec![
                    Value::Int(3),
                    Value::Int(14),
                    Value::Int(10),
                    list(&[1, 10, 3])
                ]
            )
        );
    }

    #[test]
    fn late_events_land_in_their_tile() {
        let spec = spec(
            ti(10),
            vec![
                agg("first(2)", DataType::Int64, HOUR, 0),
                agg("last", DataType::Int64, HOUR, 0),
                agg("min", DataType::Int64, HOUR, 0),
            ],
        );
        let mut s = Series::new(&spec);
        for (seq, (ts, v)) in [(at(11, 15, 0), 5), (at(11, 45, 0), 7), (at(11, 12, 0), 9)]
            .into_iter()
            .enumerate()
        {
            s.insert(
                &spec,
                ts,
                seq as u64,
                vec![Value::Int(v); 3],
                SameTimestamp::Keep,
            );
        }
        assert_eq!(
            s.evaluate(&spec, at(12, 0, 0)),
            vec![
                Value::Array(vec![Value::Int(9), Value::Int(5)]),
                Value::Int(7),
                Value::Int(5)
            ]
        );
        let ts: Vec<i64> = s.events().map(|(ts, _, _)| ts).collect();
        assert_eq!(ts, vec![at(11, 12, 0), at(11, 15, 0), at(11, 45, 0)]);
    }

    #[test]
    fn negative_times_and_extremes_do_not_panic() {
        let spec = spec(
            ti(10),
            vec![
                agg("count", DataType::Int64, HOUR, 0),
                agg("count", DataType::Int64, i64::MAX, i64::MIN),
                agg("count", DataType::Int64, 0, 0),
                agg("count", DataType::Int64, -5, 0),
            ],
        );
        let mut s = Series::new(&spec);
        for (seq, ts) in [i64::MIN, -1, 0, -10 * MINUTE, i64::MAX]
            .into_iter()
            .enumerate()
        {
            s.insert(
                &spec,
                ts,
                seq as u64,
                vec![Value::Int(1)],
                SameTimestamp::Keep,
            );
        }
        // Tiles before the epoch are aligned too: at 00:00 UTC 1970 the window is [-1h, 0).
        assert_eq!(s.evaluate(&spec, 0)[0], Value::Int(2));
        assert_eq!(s.evaluate(&spec, 5 * MINUTE)[0], Value::Int(2));
        for t in [i64::MIN, -1, 0, i64::MAX] {
            let v = s.evaluate(&spec, t);
            assert_eq!(v.len(), 4);
            assert_eq!(v[2], Value::Int(0));
            assert_eq!(v[3], Value::Int(0));
        }
        assert_eq!(s.evaluate(&spec, i64::MAX)[0], Value::Int(0));
        let c = SeriesSpec {
            mode: Mode::Continuous,
            ..spec.clone()
        };
        let mut s = Series::new(&c);
        for (seq, ts) in [i64::MIN, 0, i64::MAX].into_iter().enumerate() {
            s.insert(
                &c,
                ts,
                seq as u64,
                vec![Value::Int(1); 4],
                SameTimestamp::Keep,
            );
        }
        assert_eq!(s.evaluate(&c, i64::MAX)[0], Value::Int(1));
        assert_eq!(s.evaluate(&c, i64::MIN)[0], Value::Int(1));
        let bad = spec.clone();
        let bad = SeriesSpec {
            mode: Mode::TimeInterval { interval: 0 },
            ..bad
        };
        let mut s = Series::new(&bad);
        s.insert(&bad, 5, 0, vec![], SameTimestamp::Replace);
        assert_eq!(
            s.evaluate(&bad, 6)[0],
            Value::Int(0),
            "value was missing: null"
        );
    }

    /// Dense tiles (with precomputed partials) and sparse tiles (folded at read time) must give
    /// the same answers, including after late events and replacements switch a tile over.
    #[test]
    fn dense_and_sparse_tiles_agree() {
        let sp = spec(
            Mode::TimeInterval {
                interval: 10 * MINUTE,
            },
            vec![
                agg("sum", DataType::Int64, HOUR, 0),
                agg("max", DataType::Int64, HOUR, 0),
                agg("count", DataType::Int64, HOUR, 0),
            ],
        );
        let mut s = Series::new(&sp);
        // 20 events in one 10-minute tile, newest first (every insert is late), one replaced.
        for k in (0..20i64).rev() {
            s.insert(
                &sp,
                at(12, 0, 0) + k * SECOND,
                k as u64,
                vec![Value::Int(k); 3],
                SameTimestamp::Replace,
            );
        }
        s.insert(
            &sp,
            at(12, 0, 19),
            99,
            vec![Value::Int(-5); 3],
            SameTimestamp::Replace,
        );
        let got = s.evaluate(&sp, at(12, 10, 0));
        let sum: i64 = (0..19).sum::<i64>() - 5;
        assert_eq!(got, vec![Value::Int(sum), Value::Int(18), Value::Int(20)]);
        assert_eq!(
            s.tiles().first().map(|t| t.partials.len()),
            Some(3),
            "the tile became dense"
        );
    }

    #[test]
    fn tile_sizes() {
        let c = spec(
            Mode::Continuous,
            vec![
                agg("count", DataType::Int64, 3 * 24 * HOUR, 0),
                agg("count", DataType::Int64, HOUR, 0),
            ],
        );
        assert_eq!(c.tile_size(), 5 * MINUTE);
        assert_eq!(spec(Mode::Continuous, vec![]).tile_size(), HOUR);
        assert_eq!(spec(ti(10), vec![]).tile_size(), 10 * MINUTE);
    }

    // ---- brute force ------------------------------------------------------------------------

    /// The window rule of semantics.md §4.1, written independently of `SeriesSpec::bounds`.
    fn included(mode: Mode, a: &Aggregation, t: i64, ts: i64) -> bool {
        let (t, ts, w, off) = (t as i128, ts as i128, a.window as i128, a.offset as i128);
        match mode {
            Mode::Continuous => t - w + off < ts && ts <= t + off,
            Mode::TimeInterval { interval } => {
                let i = interval as i128;
                let f = t - t.rem_euclid(i);
                f - w + off <= ts && ts < f + off
            }
        }
    }

    struct Raw {
        ts: i64,
        seq: u64,
        values: Vec<Value>,
    }

    enum Expect {
        Exact(Value),
        /// A float within `tol` of the value.
        Close(f64, f64),
        /// A float whose rank among the values is within `tol` of `q`.
        Quantile(Vec<f64>, f64, f64),
    }

    fn brute(spec: &SeriesSpec, events: &[Raw], t: i64) -> Vec<Expect> {
        let before = match (spec.feature_start_time, spec.mode) {
            (None, _) => false,
            (Some(fst), Mode::Continuous) => t < fst,
            (Some(fst), Mode::TimeInterval { interval }) => t - t.rem_euclid(interval) < fst,
        };
        spec.aggregations
            .iter()
            .map(|a| {
                if before {
                    return Expect::Exact(Value::Null);
                }
                let mut rows: Vec<&Raw> = events
                    .iter()
                    .filter(|e| included(spec.mode, a, t, e.ts) && !e.values[a.input].is_null())
                    .collect();
                rows.sort_by_key(|e| (e.ts, e.seq));
                let vals: Vec<Value> = rows.iter().map(|e| e.values[a.input].clone()).collect();
                brute_one(&a.function, &a.input_type, &vals)
            })
            .collect()
    }

    fn num(v: &Value) -> f64 {
        match v {
            Value::Int(i) => *i as f64,
            Value::Float(f) => *f,
            _ => panic!("not a number: {v:?}"),
        }
    }

    /// Expected value over the non-null values of the window, oldest first.
    fn brute_one(f: &AggregateFunction, input: &DataType, vals: &[Value]) -> Expect {
        use AggregateFunction as F;
        use Expect::*;
        let n = vals.len();
        let xs: Vec<f64> = if matches!(input, DataType::String) {
            vec![]
        } else {
            vals.iter().map(num).collect()
        };
        let abs_sum: f64 = xs.iter().map(|x| x.abs()).sum();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let m2: f64 = xs.iter().map(|x| (x - mean) * (x - mean)).sum();
        let var_tol = 1e-9 * (1.0 + xs.iter().map(|x| x * x).sum::<f64>() / n.max(1) as f64);
        let null_if_empty = |e: Expect| if n == 0 { Exact(Value::Null) } else { e };
        let cmp = crate::engine::partial::compare_values;
        let arr = |v: Vec<Value>| Exact(Value::Array(v));
        match f {
            F::Count => Exact(Value::Int(n as i64)),
            F::Sum if *input == DataType::Int64 => null_if_empty(Exact(Value::Int(
                vals.iter().fold(0i64, |s, v| s.wrapping_add(num(v) as i64)),
            ))),
            F::Sum => null_if_empty(Close(xs.iter().sum(), 1e-9 * (1.0 + abs_sum))),
            F::Mean => null_if_empty(Close(mean, 1e-9 * (1.0 + abs_sum / n as f64))),
            F::Min => null_if_empty(Exact(
                vals.iter()
                    .min_by(|a, b| cmp(a, b))
                    .cloned()
                    .unwrap_or(Value::Null),
            )),
            F::Max => null_if_empty(Exact(
                vals.iter()
                    .max_by(|a, b| cmp(a, b))
                    .cloned()
                    .unwrap_or(Value::Null),
            )),
            F::Last => Exact(vals.last().cloned().unwrap_or(Value::Null)),
            F::VarPop => null_if_empty(Close(m2 / n as f64, var_tol)),
            F::StddevPop => null_if_empty(Close((m2 / n as f64).sqrt(), var_tol.sqrt())),
            F::VarSamp if n < 2 => Exact(Value::Null),
            F::VarSamp => Close(m2 / (n - 1) as f64, var_tol),
            F::StddevSamp if n < 2 => Exact(Value::Null),
            F::StddevSamp => Close((m2 / (n - 1) as f64).sqrt(), var_tol.sqrt()),
            F::FirstN(k) => arr(vals.iter().take(*k as usize).cloned().collect()),
            F::LastN(k) => arr(vals[n.saturating_sub(*k as usize)..].to_vec()),
            F::FirstDistinctN(k) => {
                let mut seen: Vec<Value> = vec![];
                for v in vals {
                    if !seen.contains(v) {
                        seen.push(v.clone());
                    }
                }
                seen.truncate(*k as usize);
                arr(seen)
            }
            F::LastDistinctN(k) => {
                let mut seen: Vec<Value> = vec![];
                for v in vals.iter().rev() {
                    if !seen.contains(v) {
                        seen.push(v.clone());
                    }
                }
                seen.truncate(*k as usize);
                seen.reverse();
                arr(seen)
            }
            F::ApproxCountDistinct { precision } => {
                // HLL merges are exact (register max), so tiling must not change the estimate.
                let mut h = Hll::new(*precision);
                for v in vals {
                    h.insert(v);
                }
                Exact(Value::Int(h.count()))
            }
            F::ApproxPercentile {
                percentile,
                precision,
            } => null_if_empty({
                let mut sorted = xs.clone();
                sorted.sort_by(f64::total_cmp);
                Quantile(
                    sorted,
                    *percentile,
                    4.0 / f64::from(*precision) + 1.0 / n as f64,
                )
            }),
        }
    }

    fn check(got: &Value, want: &Expect) -> Result<(), String> {
        match (want, got) {
            (Expect::Exact(w), g) if w == g => Ok(()),
            (Expect::Close(w, tol), Value::Float(g)) if (g - w).abs() <= *tol => Ok(()),
            (Expect::Quantile(sorted, q, tol), Value::Float(g)) => {
                let n = sorted.len() as f64;
                let lo = sorted.partition_point(|x| x < g) as f64 / n;
                let hi = sorted.partition_point(|x| x <= g) as f64 / n;
                let err = if *q < lo {
                    lo - q
                } else if *q > hi {
                    q - hi
                } else {
                    0.0
                };
                if err <= *tol {
                    Ok(())
                } else {
                    Err(format!("quantile {q}: got {g}, rank error {err} > {tol}"))
                }
            }
            (Expect::Exact(w), g) => Err(format!("want {w:?}, got {g:?}")),
            (Expect::Close(w, tol), g) => Err(format!("want {w} ± {tol}, got {g:?}")),
            (Expect::Quantile(..), g) => Err(format!("want a float, got {g:?}")),
        }
    }

    /// Function, input column (0 = Float64, 1 = Int64, 2 = String).
    const FUNCTIONS: [(&str, usize); 22] = [
        ("sum", 0),
        ("mean", 0),
        ("min", 0),
        ("max", 0),
        ("last", 0),
        ("var_samp", 0),
        ("var_pop", 0),
        ("stddev_samp", 0),
        ("stddev_pop", 0),
        ("first(3)", 0),
        ("last(3)", 0),
        ("approx_percentile(0.5, 100)", 0),
        ("approx_percentile(0.9, 20)", 0),
        ("count", 1),
        ("sum", 1),
        ("min", 1),
        ("first_distinct(2)", 1),
        ("last_distinct(3)", 1),
        ("approx_count_distinct(10)", 1),
        ("max", 2),
        ("last_distinct(2)", 2),
        ("count", 2),
    ];

    fn arb_mode() -> impl Strategy<Value = Mode> {
        prop_oneof![
            Just(Mode::Continuous),
            prop::sample::select(vec![5i64, 7, 10]).prop_map(ti),
        ]
    }

    /// (window, offset) per function.
    fn arb_windows() -> impl Strategy<Value = Vec<(i64, i64)>> {
        let w = prop::sample::select(vec![30 * MINUTE, HOUR, 2 * HOUR, 90 * MINUTE + 7 * SECOND]);
        let o = prop::sample::select(vec![0, 0, -10 * MINUTE, -7 * MINUTE - 1]);
        prop::collection::vec((w, o), FUNCTIONS.len())
    }

    /// One event: ts, values (float, int, string), Replace?
    type ArbEvent = (i64, Option<f64>, Option<i64>, Option<u8>, bool);

    fn arb_event() -> impl Strategy<Value = ArbEvent> {
        let minute = 0i64..240;
        let jitter = prop_oneof![Just(0i64), Just(1), Just(MINUTE - 1), 0..MINUTE];
        (
            (minute, jitter).prop_map(|(m, j)| m * MINUTE + j),
            prop::option::weighted(0.8, -1000.0f64..1000.0),
            prop::option::weighted(0.8, -3i64..6),
            prop::option::weighted(0.8, 0u8..5),
            prop::bool::weighted(0.3),
        )
    }

    fn arb_time() -> impl Strategy<Value = i64> {
        prop_oneof![
            -HOUR..5 * HOUR,
            (0i64..300, prop::sample::select(vec![-1i64, 0, 1])).prop_map(|(m, d)| m * MINUTE + d),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]
        /// Tiled evaluation equals a brute-force pass over the raw events.
        #[test]
        fn tiled_equals_brute_force(
            mode in arb_mode(),
            windows in arb_windows(),
            base in prop::sample::select(vec![DAY0, 0, -3 * HOUR - 17 * SECOND]),
            fst in prop::option::weighted(0.3, 0i64..3 * HOUR),
            events in prop::collection::vec(arb_event(), 0..80),
            times in prop::collection::vec(arb_time(), 1..25),
        ) {
            let inputs = [DataType::Float64, DataType::Int64, DataType::String];
            let spec = SeriesSpec {
                mode,
                aggregations: FUNCTIONS
                    .iter()
                    .zip(&windows)
                    .map(|((f, col), (w, o))| Aggregation { input: *col, ..agg(f, inputs[*col].clone(), *w, *o) })
                    .collect(),
                feature_start_time: fst.map(|f| base + f),
            };
            let mut series = Series::new(&spec);
            let mut raw: Vec<Raw> = Vec::new();
            for (seq, (ts, x, i, s, replace)) in events.into_iter().enumerate() {
                let ts = base + ts;
                let cols = [
                    x.map_or(Value::Null, Value::Float),
                    i.map_or(Value::Null, Value::Int),
                    s.map_or(Value::Null, |s| Value::String(format!("s{s}"))),
                ];
                // One value per column: aggregations find theirs through `input`.
                let values: Vec<Value> = cols.to_vec();
                let same = if replace { SameTimestamp::Replace } else { SameTimestamp::Keep };
                if replace {
                    raw.retain(|e| e.ts != ts);
                }
                raw.push(Raw { ts, seq: seq as u64, values: values.clone() });
                series.insert(&spec, ts, seq as u64, values, same);
            }
            prop_assert_eq!(series.len(), raw.len());
            for t in times {
                let t = base + t;
                let got = series.evaluate(&spec, t);
                let want = brute(&spec, &raw, t);
                for (k, (g, w)) in got.iter().zip(&want).enumerate() {
                    if let Err(e) = check(g, w) {
                        prop_assert!(false, "{} ({:?}) at t={}: {}", FUNCTIONS[k].0, spec.aggregations[k], t, e);
                    }
                }
            }
        }
    }
}
