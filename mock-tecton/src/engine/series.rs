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
//! always the fold of its events in `(ts, seq)` order: an event that is the newest of its tile
//! is folded in directly; a late (out-of-order) event or a replacement rebuilds the tile's
//! partials from its events (min/max cannot be subtracted). A sparser tile keeps none: most
//! tiles of a sparse entity hold one event, and a dozen 80-byte partials per event would make
//! the online store several times larger than its events.
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
//! order); a late event or a replacement in an older child rebuilds the head from the
//! children's values (at most 24 children, each a merge or up to 7 events). Folding appended
//! events into a whole-tile partial instead would make it differ, in float rounding, from the
//! merges of a rebuild. So the whole state, like the fine partials, is a function of the event
//! set alone, whatever the arrival order, and the online and offline paths agree bit for bit.
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
//! `insert` is `O(log T + e + c)` for `T` top-level tiles, `e` events in the fine tile and `c`
//! children per coarse tile, plus `O(e·S)` when a fine tile is rebuilt (`S` slots) and
//! `O(c·S·DENSE_TILE)` per coarse head rebuilt (a late event or a replacement outside the newest
//! tiles). `evaluate` visits, once per distinct `(window, offset)`, the nodes overlapping the
//! window: whole coarse tiles in its middle (two or three merges each), at its upper edge the
//! head of each level and the newest fine tile, at its lower edge the children of the partly
//! covered tiles. For the benchmark's CONTINUOUS view (sum, count and mean over 1h, 1d and 3d;
//! one event every 10 minutes) a request costs about 50 partial merges and 100 event folds per
//! entity, where folding every event in the windows cost about 1,750. Empty tiles are never
//! stored or visited.
//!
//! # Memory
//! A coarse tile with at least two non-empty children keeps one partial per slot (80 bytes
//! each); one with a single child keeps none, since its value is that child's. Only the newest
//! node of each level keeps spare capacity in its vectors (doubling from one element); every
//! other node is sized exactly, so a sparse coarse tile costs its key and 48-byte node.

use std::cell::OnceCell;
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
    /// tile is no longer than the longest window (module docs).
    pub fn coarse_levels(&self) -> usize {
        let longest = self
            .aggregations
            .iter()
            .map(|a| a.window)
            .max()
            .unwrap_or(0);
        let tile = i128::from(self.tile_size());
        // In i128: a tile size times 288 cannot overflow it.
        (1..SPANS.len())
            .take_while(|&level| tile * i128::from(span(level)) <= i128::from(longest))
            .count()
    }

    /// How far back from now events can still be served: the longest `window − offset`, plus
    /// one fine tile (for TIME_INTERVAL the in-progress interval, for CONTINUOUS a margin).
    /// An event with `ts < now − reach` is in no window at `now` or later.
    pub fn reach(&self) -> i64 {
        let longest = self
            .aggregations
            .iter()
            .map(|a| i128::from(a.window) - i128::from(a.offset.min(0)))
            .max()
            .unwrap_or(0)
            .max(0);
        i64::try_from(longest + i128::from(self.tile_size())).unwrap_or(i64::MAX)
    }

    /// The oldest event time still servable at `now` ([`SeriesSpec::reach`] before it).
    pub fn horizon(&self, now: i64) -> i64 {
        now.saturating_sub(self.reach())
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
}

/// Heap bytes a value owns beyond its own size (string contents at their length).
pub(crate) fn value_heap(v: &Value) -> usize {
    match v {
        Value::String(s) => s.capacity(),
        Value::Array(items) | Value::Struct(items) => {
            items.capacity() * std::mem::size_of::<Value>()
                + items.iter().map(value_heap).sum::<usize>()
        }
        Value::Map(entries) => {
            entries.capacity() * std::mem::size_of::<(String, Value)>()
                + entries
                    .iter()
                    .map(|(k, v)| k.capacity() + value_heap(v))
                    .sum::<usize>()
        }
        _ => 0,
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

/// The slot of each aggregation (module docs, "Slots"): slots are numbered in order of their
/// first aggregation.
fn slot_map(spec: &SeriesSpec) -> Vec<usize> {
    let mut firsts: Vec<(usize, Partial)> = Vec::new();
    spec.aggregations
        .iter()
        .map(|a| {
            let empty = Partial::new(&a.function);
            // Equal empty states over the same column stay equal under every update and merge.
            let same = firsts
                .iter()
                .position(|(input, e)| *input == a.input && *e == empty);
            same.unwrap_or_else(|| {
                firsts.push((a.input, empty));
                firsts.len() - 1
            })
        })
        .collect()
}

/// The aggregations that open a slot, as a bit set (bit `j` for aggregation `j`); `None` when
/// there are more than 64 aggregations, which then each get their own slot.
fn slot_firsts(spec: &SeriesSpec) -> Option<u64> {
    if spec.aggregations.len() > 64 {
        return None;
    }
    let mut seen = 0usize;
    let mut mask = 0u64;
    for (j, slot) in slot_map(spec).into_iter().enumerate() {
        if slot == seen {
            mask |= 1 << j;
            seen += 1;
        }
    }
    Some(mask)
}

/// One partial being computed: the slot whose stored partials it merges and the input column
/// whose values it folds.
#[derive(Debug, Clone, Copy)]
struct Col {
    slot: usize,
    input: usize,
}

/// A spec and its slots, for inserting: the columns of every slot are listed on first use
/// (appending to a sparse tile needs none).
struct Ctx<'a> {
    spec: &'a SeriesSpec,
    firsts: Option<u64>,
    cols: OnceCell<Cols>,
}

/// Slots listed inline up to [`INLINE_COLS`], so that appending to a dense tile (once per event)
/// allocates nothing.
#[derive(Debug)]
enum Cols {
    Inline([Col; INLINE_COLS], usize),
    Heap(Vec<Col>),
}

const INLINE_COLS: usize = 8;

impl<'a> Ctx<'a> {
    fn new(spec: &'a SeriesSpec, firsts: Option<u64>) -> Self {
        Ctx {
            spec,
            firsts,
            cols: OnceCell::new(),
        }
    }

    /// The first aggregation of each slot, in slot order.
    fn firsts(&self) -> impl Iterator<Item = &'a Aggregation> + '_ {
        let spec: &'a SeriesSpec = self.spec;
        spec.aggregations
            .iter()
            .enumerate()
            .filter(|(j, _)| {
                self.firsts.is_none_or(|m| {
                    let bit = u32::try_from(*j).ok().and_then(|j| m.checked_shr(j));
                    bit.is_some_and(|b| b & 1 == 1)
                })
            })
            .map(|(_, a)| a)
    }

    /// Every slot, in order.
    fn cols(&self) -> &[Col] {
        let cols = self.cols.get_or_init(|| {
            let mut all = self.firsts().enumerate().map(|(slot, a)| Col {
                slot,
                input: a.input,
            });
            let mut inline = [Col { slot: 0, input: 0 }; INLINE_COLS];
            let mut n = 0;
            for c in all.by_ref() {
                if n == INLINE_COLS {
                    let mut heap = inline.to_vec();
                    heap.push(c);
                    heap.extend(all);
                    return Cols::Heap(heap);
                }
                inline[n] = c;
                n += 1;
            }
            Cols::Inline(inline, n)
        });
        match cols {
            Cols::Inline(inline, n) => &inline[..*n],
            Cols::Heap(heap) => heap,
        }
    }

    /// One empty partial per slot, sized exactly: it is stored in a tile or a head.
    fn empty(&self) -> Vec<Partial> {
        let mut empty = Vec::with_capacity(self.cols().len());
        empty.extend(self.firsts().map(|a| Partial::new(&a.function)));
        empty
    }
}

/// An event on its way into a tile.
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
}

/// Merges `from[cols[i].slot]` into `acc[i]` for every `i`.
fn merge_into(from: &[Partial], cols: &[Col], acc: &mut [Partial]) {
    for (p, c) in acc.iter_mut().zip(cols) {
        if let Some(q) = from.get(c.slot) {
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
    /// The fine tile size.
    tile: i64,
    /// Fine tile numbers of `lo` and `hi`.
    first_tile: i64,
    last_tile: i64,
}

impl Window {
    /// True when node `key` of `level` lies wholly inside the window: decided on the key alone,
    /// so the nodes in the middle of a window are taken whole without reading their events.
    fn covers(&self, level: usize, key: i64) -> bool {
        // In i128: a tile number times a tile size is a time, times 288 at most.
        let size = i128::from(self.tile) * i128::from(span(level));
        let start = i128::from(key) * size;
        start >= i128::from(self.lo) && start + size - 1 <= i128::from(self.hi)
    }
}

/// Makes room for one more element, doubling the capacity from 1 but never past `max`: most
/// tiles and coarse tiles of a sparse entity hold one or two elements and get no spare room
/// (`Vec`'s own growth would reserve four), while the newest ones still grow in few steps.
fn make_room<T>(v: &mut Vec<T>, max: usize) {
    let len = v.len();
    if len == v.capacity() {
        let want = len
            .saturating_mul(2)
            .max(1)
            .min(max)
            .max(len.saturating_add(1));
        v.reserve_exact(want - len);
    }
}

/// A level of the tile tree: a fine tile, or a coarse tile of fine or level-1 tiles.
trait Node: Sized {
    /// 0 for a fine tile, 1 and 2 for coarse tiles. A node of level `l` covers `span(l)` fine
    /// tiles and is keyed by `fine tile number / span(l)` (rounded down).
    const LEVEL: usize;

    /// A node without events (never left so once inserted into).
    fn empty() -> Self;

    /// Adds `event`, which lies in fine tile number `fine` inside this node. Returns how many
    /// stored events it replaced.
    fn insert(&mut self, ctx: &Ctx<'_>, fine: i64, event: Event, same_ts: SameTimestamp) -> usize;

    /// Merges this node's value (module docs) into `acc`, partial `i` being that of `cols[i]`.
    fn apply(&self, cols: &[Col], acc: &mut [Partial]);

    /// Folds the events inside `window` into `acc`; `key` is this node's key.
    fn accumulate(&self, key: i64, cols: &[Col], window: &Window, acc: &mut [Partial]);

    /// Time of the oldest event.
    fn first_ts(&self) -> Option<i64>;

    /// Time of the newest event.
    fn last_ts(&self) -> Option<i64>;

    /// Appends the fine tiles, oldest first.
    fn collect_tiles<'a>(&'a self, out: &mut Vec<&'a Tile>);

    /// Drops every event older than `horizon`; returns how many. Leaves the node empty when
    /// all were, and its state exactly as if the remaining events had been inserted alone.
    fn evict(&mut self, ctx: &Ctx<'_>, horizon: i64) -> usize;

    /// True when the node holds no event.
    fn is_empty(&self) -> bool;

    /// How many events the node holds.
    fn len_events(&self) -> usize;

    /// Drops the spare capacity of this node's vectors. Only the newest node of each level
    /// keeps any, so that appending grows vectors by doubling while every older node, which
    /// seldom changes again, is sized exactly: this is called when a node stops being the newest
    /// and after a late insert into an older one.
    fn shrink(&mut self);

    /// True when every event of node `key` lies inside `window`: by its bounds when they do,
    /// else by its oldest and newest events (the newest tile is usually only partly elapsed).
    fn within(&self, key: i64, window: &Window) -> bool {
        window.covers(Self::LEVEL, key)
            || (self.first_ts().is_some_and(|ts| ts >= window.lo)
                && self.last_ts().is_some_and(|ts| ts <= window.hi))
    }

    /// Checks the structure under node `key`: sorted, non-empty, partials equal to a rebuild,
    /// no spare capacity unless `newest`.
    #[cfg(test)]
    fn check_node(&self, spec: &SeriesSpec, key: i64, newest: bool) -> Result<(), String>;
}

/// A fine tile, stored by column: no heap object per event. `keys[i]` is event `i`'s
/// `(ts, seq)` and `values[i * w .. (i + 1) * w]` its input values, where `w` (the spec's input
/// count) is `values.len() / keys.len()`.
#[derive(Debug, Clone)]
struct Tile {
    /// Sorted by `(ts, seq)`.
    keys: Vec<(i64, u64)>,
    /// The events' input values, event after event.
    values: Vec<Value>,
    /// One per slot, the fold of the events; empty while the tile is sparse (fewer than
    /// [`DENSE_TILE`] events), where folding the events at read time costs about as much as
    /// merging partials and the partials would dominate memory.
    partials: Vec<Partial>,
}

/// Events a fine tile holds before it keeps precomputed partials. Most tiles of a sparse entity
/// hold one event; without this, a dozen 80-byte partials per event would make the online store
/// several times larger than the events themselves.
const DENSE_TILE: usize = 8;

impl Tile {
    /// Values per event.
    fn width(&self) -> usize {
        self.values.len().checked_div(self.keys.len()).unwrap_or(0)
    }

    /// The input values of event `i`.
    fn row(&self, i: usize) -> &[Value] {
        let w = self.width();
        self.values.get(i * w..(i + 1) * w).unwrap_or(&[])
    }

    /// Folds event `i` into `acc`, partial `k` reading column `cols[k].input`.
    fn fold_event(&self, i: usize, cols: &[Col], acc: &mut [Partial]) {
        let (ts, seq) = self.keys[i];
        let row = self.row(i);
        for (p, c) in acc.iter_mut().zip(cols) {
            if let Some(v) = row.get(c.input) {
                p.update(v, ts, seq);
            }
        }
    }

    fn rebuild(&mut self, ctx: &Ctx<'_>) {
        let mut partials = ctx.empty();
        for i in 0..self.keys.len() {
            self.fold_event(i, ctx.cols(), &mut partials);
        }
        self.partials = partials;
    }

    /// Dense exactly when it holds DENSE_TILE events, so that the state depends on the events
    /// alone (a replacement or an eviction can make a tile sparse again).
    fn settle(&mut self, ctx: &Ctx<'_>) {
        if self.keys.len() >= DENSE_TILE {
            self.rebuild(ctx);
        } else {
            self.partials = Vec::new();
        }
    }

    /// Appends an event newer than every stored one.
    fn push(&mut self, ctx: &Ctx<'_>, event: Event) {
        let w = event.values.len();
        if self.partials.is_empty() {
            make_room(&mut self.keys, usize::MAX);
            // Doubling, as the keys do: only the newest tile has spare room (`shrink`).
            if self.values.capacity() - self.values.len() < w {
                self.values.reserve_exact(self.values.len().max(w));
            }
            self.keys.push(event.key());
            self.values.extend(event.values);
            if self.keys.len() >= DENSE_TILE {
                self.rebuild(ctx);
            }
        } else {
            self.keys.push(event.key());
            self.values.extend(event.values);
            let i = self.keys.len() - 1;
            let mut partials = std::mem::take(&mut self.partials);
            self.fold_event(i, ctx.cols(), &mut partials);
            self.partials = partials;
        }
    }
}

impl Node for Tile {
    const LEVEL: usize = 0;

    fn empty() -> Self {
        Tile {
            keys: Vec::new(),
            values: Vec::new(),
            partials: Vec::new(),
        }
    }

    fn insert(&mut self, ctx: &Ctx<'_>, _fine: i64, event: Event, same_ts: SameTimestamp) -> usize {
        // The common case, an event newer than every stored one, reads only the last key: the
        // binary searches below would miss the cache once per probe.
        if self.keys.last().is_none_or(|last| last.0 < event.ts) {
            self.push(ctx, event);
            return 0;
        }
        let w = event.values.len();
        let mut removed = 0;
        if same_ts == SameTimestamp::Replace {
            let start = self.keys.partition_point(|k| k.0 < event.ts);
            let end = self.keys.partition_point(|k| k.0 <= event.ts);
            if end > start {
                self.keys.drain(start..end);
                self.values.drain(start * w..end * w);
                removed = end - start;
            }
        }
        let key = event.key();
        let at = self.keys.partition_point(|k| *k <= key);
        make_room(&mut self.keys, usize::MAX);
        self.keys.insert(at, key);
        self.values.splice(at * w..at * w, event.values);
        self.settle(ctx);
        removed
    }

    fn apply(&self, cols: &[Col], acc: &mut [Partial]) {
        if self.partials.is_empty() {
            for i in 0..self.keys.len() {
                self.fold_event(i, cols, acc);
            }
        } else {
            merge_into(&self.partials, cols, acc);
        }
    }

    fn accumulate(&self, key: i64, cols: &[Col], window: &Window, acc: &mut [Partial]) {
        if self.within(key, window) {
            self.apply(cols, acc);
        } else {
            let from = self.keys.partition_point(|k| k.0 < window.lo);
            for i in from..self.keys.len() {
                if self.keys[i].0 > window.hi {
                    break;
                }
                self.fold_event(i, cols, acc);
            }
        }
    }

    fn first_ts(&self) -> Option<i64> {
        self.keys.first().map(|k| k.0)
    }

    fn last_ts(&self) -> Option<i64> {
        self.keys.last().map(|k| k.0)
    }

    fn collect_tiles<'a>(&'a self, out: &mut Vec<&'a Tile>) {
        out.push(self);
    }

    fn evict(&mut self, ctx: &Ctx<'_>, horizon: i64) -> usize {
        let n = self.keys.partition_point(|k| k.0 < horizon);
        if n == 0 {
            return 0;
        }
        let w = self.width();
        self.keys.drain(..n);
        self.values.drain(..n * w);
        self.settle(ctx);
        self.shrink();
        n
    }

    fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    fn len_events(&self) -> usize {
        self.keys.len()
    }

    fn shrink(&mut self) {
        self.keys.shrink_to_fit();
        self.values.shrink_to_fit();
    }

    #[cfg(test)]
    fn check_node(&self, spec: &SeriesSpec, key: i64, newest: bool) -> Result<(), String> {
        if self.keys.is_empty() {
            return Err("empty fine tile".into());
        }
        if !newest && self.keys.capacity() != self.keys.len() {
            return Err(format!("older fine tile {key} has spare capacity"));
        }
        if self.values.len() != self.keys.len() * spec.input_count() {
            return Err(format!(
                "{} values for {} events",
                self.values.len(),
                self.keys.len()
            ));
        }
        if !self.keys.windows(2).all(|w| w[0] <= w[1]) {
            return Err("fine tile events out of order".into());
        }
        if let Some(k) = self
            .keys
            .iter()
            .find(|k| k.0.div_euclid(spec.tile_size()) != key)
        {
            return Err(format!("event at {} in fine tile {key}", k.0));
        }
        let mut rebuilt = Tile::empty();
        rebuilt.keys = self.keys.clone();
        rebuilt.values = self.values.clone();
        rebuilt.settle(&Ctx::new(spec, slot_firsts(spec)));
        if rebuilt.partials != self.partials {
            return Err(format!(
                "fine tile of {} events: partials differ from a rebuild",
                self.keys.len()
            ));
        }
        Ok(())
    }
}

/// A coarse tile: its children (fine or level-1 tiles) and the head of their values.
#[derive(Debug, Clone)]
struct Coarse<C> {
    /// One partial per slot: the merge, oldest first, of the values of every child but the
    /// newest. Empty while there is one child, whose value is then the tile's.
    head: Vec<Partial>,
    /// Keyed by `fine tile number / span(C::LEVEL)`, sorted, never empty once inserted into; at
    /// most the fan-out. Sized exactly unless this is the newest tile of its level
    /// ([`Node::shrink`]).
    children: Vec<(i64, C)>,
}

impl<C: Node> Coarse<C> {
    /// The head as the module docs define it.
    fn build_head(&self, ctx: &Ctx<'_>) -> Vec<Partial> {
        let Some((_, older)) = self.children.split_last() else {
            return Vec::new();
        };
        if older.is_empty() {
            return Vec::new();
        }
        let mut head = ctx.empty();
        for (_, child) in older {
            child.apply(ctx.cols(), &mut head);
        }
        head
    }

    /// The newest child and its key when the head is kept and all of its events (those of
    /// every other child) lie inside `window`.
    fn head_within(&self, window: &Window) -> Option<(i64, &C)> {
        let ((key, newest), older) = self.children.split_last()?;
        let (first, previous) = (older.first()?, older.last()?);
        let inside = !self.head.is_empty()
            && (window.covers(C::LEVEL, first.0) || first.1.first_ts()? >= window.lo)
            && (window.covers(C::LEVEL, previous.0) || previous.1.last_ts()? <= window.hi);
        inside.then_some((*key, newest))
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

    fn insert(&mut self, ctx: &Ctx<'_>, fine: i64, event: Event, same_ts: SameTimestamp) -> usize {
        let key = fine.div_euclid(span(C::LEVEL));
        let at = self.children.partition_point(|(k, _)| *k < key);
        if self.children.get(at).is_none_or(|(k, _)| *k != key) {
            if at == self.children.len() {
                // A new newest child: the current newest one joins the head. Same merges, in the
                // same order, as `build_head`, so the head stays canonical.
                if let Some((_, newest)) = self.children.last_mut() {
                    newest.shrink();
                }
                if let Some((_, newest)) = self.children.last() {
                    if self.head.is_empty() {
                        self.head = ctx.empty();
                    }
                    newest.apply(ctx.cols(), &mut self.head);
                }
            }
            let fanout = usize::try_from(span(Self::LEVEL) / span(C::LEVEL)).unwrap_or(1);
            make_room(&mut self.children, fanout);
            self.children.insert(at, (key, C::empty()));
        }
        let older = at + 1 < self.children.len();
        let removed = self.children.get_mut(at).map_or(0, |(_, child)| {
            let removed = child.insert(ctx, fine, event, same_ts);
            if older {
                child.shrink();
            }
            removed
        });
        if older {
            // An older child changed (late event, replacement, or a new child before the newest).
            self.head = self.build_head(ctx);
        }
        removed
    }

    fn apply(&self, cols: &[Col], acc: &mut [Partial]) {
        merge_into(&self.head, cols, acc);
        if let Some((_, newest)) = self.children.last() {
            newest.apply(cols, acc);
        }
    }

    fn accumulate(&self, key: i64, cols: &[Col], window: &Window, acc: &mut [Partial]) {
        if self.within(key, window) {
            self.apply(cols, acc);
        } else if let Some((newest_key, newest)) = self.head_within(window) {
            // The window's upper edge cuts only the newest child, as it does at the request
            // time: the head is taken whole and only the newest child is opened.
            merge_into(&self.head, cols, acc);
            newest.accumulate(newest_key, cols, window, acc);
        } else {
            let s = span(C::LEVEL);
            let (first, last) = (
                window.first_tile.div_euclid(s),
                window.last_tile.div_euclid(s),
            );
            let from = self.children.partition_point(|(k, _)| *k < first);
            for (k, child) in self.children[from..].iter().take_while(|(k, _)| *k <= last) {
                child.accumulate(*k, cols, window, acc);
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

    fn evict(&mut self, ctx: &Ctx<'_>, horizon: i64) -> usize {
        // Children cover disjoint, increasing time ranges: the wholly old ones come first.
        let old = self
            .children
            .partition_point(|(_, c)| c.last_ts().is_some_and(|ts| ts < horizon));
        let mut removed: usize = self.children[..old]
            .iter()
            .map(|(_, c)| c.len_events())
            .sum();
        self.children.drain(..old);
        if let Some((_, first)) = self.children.first_mut() {
            if first.first_ts().is_some_and(|ts| ts < horizon) {
                removed += first.evict(ctx, horizon);
            }
        }
        if removed > 0 {
            self.children.shrink_to_fit();
            self.head = self.build_head(ctx);
        }
        removed
    }

    fn is_empty(&self) -> bool {
        self.children.is_empty()
    }

    fn len_events(&self) -> usize {
        self.children.iter().map(|(_, c)| c.len_events()).sum()
    }

    fn shrink(&mut self) {
        self.children.shrink_to_fit();
        // Older children are sized exactly already.
        if let Some((_, newest)) = self.children.last_mut() {
            newest.shrink();
        }
    }

    #[cfg(test)]
    fn check_node(&self, spec: &SeriesSpec, key: i64, newest: bool) -> Result<(), String> {
        if self.children.is_empty() {
            return Err(format!("empty level-{} tile", Self::LEVEL));
        }
        if !newest && self.children.capacity() != self.children.len() {
            return Err(format!(
                "older level-{} tile {key} has spare capacity",
                Self::LEVEL
            ));
        }
        if !self.children.windows(2).all(|w| w[0].0 < w[1].0) {
            return Err(format!("level-{} children out of order", Self::LEVEL));
        }
        let ratio = span(Self::LEVEL) / span(C::LEVEL);
        for (i, (k, child)) in self.children.iter().enumerate() {
            if k.div_euclid(ratio) != key {
                return Err(format!("child {k} in level-{} tile {key}", Self::LEVEL));
            }
            child.check_node(spec, *k, newest && i + 1 == self.children.len())?;
        }
        if self.head != self.build_head(&Ctx::new(spec, slot_firsts(spec))) {
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
    ctx: &Ctx<'_>,
    fine: i64,
    event: Event,
    same_ts: SameTimestamp,
) -> usize {
    let key = fine.div_euclid(span(N::LEVEL));
    let newest = match top.last_entry() {
        Some(mut last) if *last.key() < key => {
            // It stops being the newest.
            last.get_mut().shrink();
            true
        }
        Some(last) => *last.key() == key,
        None => true,
    };
    let node = top.entry(key).or_insert_with(N::empty);
    let removed = node.insert(ctx, fine, event, same_ts);
    if !newest {
        node.shrink();
    }
    removed
}

/// Drops the events older than `horizon` from a top level; returns how many.
fn evict_top<N: Node>(top: &mut BTreeMap<i64, N>, ctx: &Ctx<'_>, horizon: i64) -> usize {
    let mut removed = 0;
    while let Some(mut first) = top.first_entry() {
        if first.get().last_ts().is_some_and(|ts| ts < horizon) {
            removed += first.remove().len_events();
            continue;
        }
        if first.get().first_ts().is_some_and(|ts| ts < horizon) {
            removed += first.get_mut().evict(ctx, horizon);
        }
        if first.get().is_empty() {
            first.remove();
            continue;
        }
        break;
    }
    removed
}

fn accumulate_top<N: Node>(
    top: &BTreeMap<i64, N>,
    cols: &[Col],
    window: &Window,
    acc: &mut [Partial],
) {
    let s = span(N::LEVEL);
    // lo <= hi, so first <= last and `range` cannot panic.
    let range = window.first_tile.div_euclid(s)..=window.last_tile.div_euclid(s);
    for (key, node) in top.range(range) {
        node.accumulate(*key, cols, window, acc);
    }
}

/// The events of one entity in one feature view, tiled for fast window evaluation.
///
/// Every method takes the [`SeriesSpec`] the series was created with; passing another one is a
/// caller bug that gives wrong values but never panics.
#[derive(Debug, Clone)]
pub struct Series {
    tile_size: i64,
    /// The aggregations that open a slot ([`slot_firsts`]), fixed at creation: inserting needs
    /// the slots and must not recompute them every time.
    firsts: Option<u64>,
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
            firsts: slot_firsts(spec),
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
        let ctx = Ctx::new(spec, self.firsts);
        let removed = match &mut self.levels {
            Levels::Fine(top) => insert_top(top, &ctx, fine, event, same_ts),
            Levels::One(top) => insert_top(top, &ctx, fine, event, same_ts),
            Levels::Two(top) => insert_top(top, &ctx, fine, event, same_ts),
        };
        self.len = self.len.saturating_sub(removed) + 1;
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
            Levels::Fine(top) => evict_top(top, &ctx, horizon),
            Levels::One(top) => evict_top(top, &ctx, horizon),
            Levels::Two(top) => evict_top(top, &ctx, horizon),
        };
        self.len = self.len.saturating_sub(removed);
        removed
    }

    /// Time of the oldest stored event.
    pub fn first_ts(&self) -> Option<i64> {
        match &self.levels {
            Levels::Fine(top) => top.first_key_value()?.1.first_ts(),
            Levels::One(top) => top.first_key_value()?.1.first_ts(),
            Levels::Two(top) => top.first_key_value()?.1.first_ts(),
        }
    }

    /// Number of fine tiles, and an estimate of the heap bytes the series holds (events,
    /// values, partials and tree nodes; string contents counted at their length).
    pub fn footprint(&self) -> (usize, usize) {
        let tiles = self.tiles();
        let mut bytes = std::mem::size_of::<Series>();
        for t in &tiles {
            bytes += t.keys.capacity() * std::mem::size_of::<(i64, u64)>()
                + t.values.capacity() * std::mem::size_of::<Value>()
                + t.values.iter().map(value_heap).sum::<usize>()
                + t.partials.capacity() * std::mem::size_of::<Partial>()
                // A fine tile's key and node in its parent (BTreeMap entry or child vector).
                + std::mem::size_of::<(i64, Tile)>();
        }
        (tiles.len(), bytes)
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
                self.accumulate(lo, hi, &cols, &mut acc);
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
    fn accumulate(&self, lo: i64, hi: i64, cols: &[Col], acc: &mut [Partial]) {
        let window = Window {
            lo,
            hi,
            tile: self.tile_size,
            first_tile: lo.div_euclid(self.tile_size),
            last_tile: hi.div_euclid(self.tile_size),
        };
        match &self.levels {
            Levels::Fine(top) => accumulate_top(top, cols, &window, acc),
            Levels::One(top) => accumulate_top(top, cols, &window, acc),
            Levels::Two(top) => accumulate_top(top, cols, &window, acc),
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
            .flat_map(|t| (0..t.keys.len()).map(move |i| (t.keys[i].0, t.keys[i].1, t.row(i))))
    }

    /// The internal (fine) tile size in nanoseconds.
    pub fn tile_size(&self) -> i64 {
        self.tile_size
    }

    /// Checks every invariant of the tile tree (tests only).
    #[cfg(test)]
    fn check_tree(&self, spec: &SeriesSpec) -> Result<(), String> {
        fn top<N: Node>(map: &BTreeMap<i64, N>, spec: &SeriesSpec) -> Result<(), String> {
            let last = map.keys().next_back().copied();
            map.iter()
                .try_for_each(|(k, n)| n.check_node(spec, *k, Some(*k) == last))
        }
        let count: usize = self.tiles().iter().map(|t| t.keys.len()).sum();
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

    /// The worked example of docs/semantics.md, inserted in a scrambled order.
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
        // Coarse levels: 2 h and 1 day over 5-minute tiles; 4 h and 2 days over 10-minute ones,
        // each kept while no longer than the longest window.
        assert_eq!(c.coarse_levels(), 2);
        assert!(matches!(Series::new(&c).levels, Levels::Two(_)));
        let t = |windows: &[i64]| {
            let aggs = windows
                .iter()
                .map(|&w| agg("count", DataType::Int64, w, 0))
                .collect();
            spec(ti(10), aggs).coarse_levels()
        };
        assert_eq!(t(&[HOUR]), 0);
        assert_eq!(t(&[HOUR, 4 * HOUR - 1]), 0);
        assert_eq!(t(&[HOUR, 4 * HOUR]), 1);
        assert_eq!(t(&[HOUR, 24 * HOUR]), 1);
        assert_eq!(t(&[48 * HOUR]), 2);
        assert_eq!(spec(Mode::Continuous, vec![]).coarse_levels(), 0);
    }

    /// Aggregations with equal states over one column share a slot: one partial per slot in
    /// dense tiles and heads, and the same answers as computed apart.
    #[test]
    fn aggregations_share_slots() {
        let amt = |f: &str, w: i64| Aggregation {
            input: 0,
            ..agg(f, DataType::Float64, w, 0)
        };
        let sp = SeriesSpec {
            mode: ti(10),
            aggregations: vec![
                amt("sum", HOUR),
                amt("mean", 5 * HOUR),
                amt("count", HOUR),
                amt("sum", 5 * HOUR),
                amt("var_pop", HOUR),
                amt("stddev_samp", 5 * HOUR),
                amt("approx_percentile(0.5, 100)", HOUR),
                amt("approx_percentile(0.9, 100)", HOUR),
                amt("approx_percentile(0.9, 50)", HOUR),
                Aggregation {
                    input: 1,
                    ..agg("count", DataType::Int64, HOUR, 0)
                },
            ],
            feature_start_time: None,
        };
        // sum/mean, count, the variance pair, two digests of precision 100 and 50, count of 1.
        assert_eq!(slot_map(&sp), vec![0, 0, 1, 0, 2, 2, 3, 3, 4, 5]);
        assert_eq!(slot_firsts(&sp), Some(0b11_0101_0101));
        let mut s = Series::new(&sp);
        for k in 0..40i64 {
            let v = vec![Value::Float(k as f64), Value::Int(k)];
            s.insert(
                &sp,
                at(10, 0, 0) + k * 30 * SECOND,
                k as u64,
                v,
                SameTimestamp::Keep,
            );
        }
        assert_eq!(s.check_tree(&sp), Ok(()));
        let tiles = s.tiles();
        assert!(tiles.iter().all(|t| t.partials.len() == 6), "dense tiles");
        let Levels::One(top) = &s.levels else {
            panic!("one coarse level");
        };
        assert!(top.values().all(|c| c.head.len() == 6), "heads");
        let got = s.evaluate(&sp, at(11, 0, 0));
        let sum: f64 = (0..40).map(|k| k as f64).sum();
        assert_eq!(got[0], Value::Float(sum));
        assert_eq!(got[1], Value::Float(sum / 40.0));
        assert_eq!(got[2], Value::Int(40));
        assert_eq!(got[3], Value::Float(sum));
        assert_eq!(got[9], Value::Int(40));
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

    /// One generated event: time, (float, int, string) column values, inserted with Replace?
    type Case = (i64, [Value; 3], bool);

    fn columns(x: Option<f64>, i: Option<i64>, s: Option<u8>) -> [Value; 3] {
        [
            x.map_or(Value::Null, Value::Float),
            i.map_or(Value::Null, Value::Int),
            s.map_or(Value::Null, |s| Value::String(format!("s{s}"))),
        ]
    }

    /// The 22 [`FUNCTIONS`] with the given windows.
    fn functions_spec(mode: Mode, windows: &[(i64, i64)], fst: Option<i64>) -> SeriesSpec {
        let inputs = [DataType::Float64, DataType::Int64, DataType::String];
        SeriesSpec {
            mode,
            aggregations: FUNCTIONS
                .iter()
                .zip(windows)
                .map(|((f, col), (w, o))| Aggregation {
                    input: *col,
                    ..agg(f, inputs[*col].clone(), *w, *o)
                })
                .collect(),
            feature_start_time: fst,
        }
    }

    /// Inserts `events` in the order given (seq = position), checks the tile tree's invariants,
    /// and compares every feature at every time with the brute force.
    fn run_case(spec: &SeriesSpec, events: &[Case], times: &[i64]) -> Result<(), TestCaseError> {
        let mut series = Series::new(spec);
        let mut raw: Vec<Raw> = Vec::new();
        for (seq, (ts, cols, replace)) in events.iter().enumerate() {
            // One value per column: aggregations find theirs through `input`.
            let values: Vec<Value> = cols.to_vec();
            let same = if *replace {
                SameTimestamp::Replace
            } else {
                SameTimestamp::Keep
            };
            if *replace {
                raw.retain(|e| e.ts != *ts);
            }
            raw.push(Raw {
                ts: *ts,
                seq: seq as u64,
                values: values.clone(),
            });
            series.insert(spec, *ts, seq as u64, values, same);
        }
        prop_assert_eq!(series.len(), raw.len());
        if let Err(e) = series.check_tree(spec) {
            prop_assert!(false, "tile tree: {}", e);
        }
        for &t in times {
            let got = series.evaluate(spec, t);
            let want = brute(spec, &raw, t);
            for (k, (g, w)) in got.iter().zip(&want).enumerate() {
                if let Err(e) = check(g, w) {
                    prop_assert!(
                        false,
                        "{} ({:?}) at t={}: {}",
                        FUNCTIONS[k].0,
                        spec.aggregations[k],
                        t,
                        e
                    );
                }
            }
        }
        Ok(())
    }

    const DAY: i64 = 24 * HOUR;

    /// Where a generated time lands, resolved against the series' tile sizes in
    /// [`place`]: anywhere in the span, next to a tile boundary of some level, or on the
    /// timestamp of an earlier event (so that Replace and ties cross coarse tiles too).
    #[derive(Debug, Clone)]
    enum Place {
        At(i64),
        /// Boundary `index` of level `level` (0 = fine) after the span's start, plus `delta` ns.
        Boundary(usize, i64, i64),
        /// The time of event `index` (modulo those placed so far), plus `delta` ns.
        Event(usize, i64),
    }

    fn arb_place() -> impl Strategy<Value = Place> {
        let delta = prop::sample::select(vec![-1i64, 0, 0, 1]);
        prop_oneof![
            // Anywhere in four days.
            2 => (0..4 * DAY).prop_map(Place::At),
            // Clusters: a few hours apart, a couple of hours wide, so coarse tiles get several
            // children; and bursts of seconds, so fine tiles get dense.
            3 => (0i64..10, 0..2 * HOUR).prop_map(|(c, d)| Place::At(c * 9 * HOUR + 17 * MINUTE + d)),
            2 => (0i64..6, 0..30 * SECOND).prop_map(|(c, d)| Place::At(c * 14 * HOUR + 5 * MINUTE + d)),
            2 => (0usize..3, 0i64..60, delta.clone()).prop_map(|(l, i, d)| Place::Boundary(l, i, d)),
            1 => (any::<usize>(), delta).prop_map(|(i, d)| Place::Event(i, d)),
        ]
    }

    fn place(p: &Place, base: i64, tile: i64, placed: &[i64]) -> i64 {
        match *p {
            Place::At(x) => base + x,
            Place::Boundary(level, index, delta) => {
                let size = tile * span(level);
                base.div_euclid(size) * size + index * size + delta
            }
            Place::Event(i, delta) if !placed.is_empty() => placed[i % placed.len()] + delta,
            Place::Event(_, delta) => base + delta,
        }
    }

    type ArbDayEvent = (Place, Option<f64>, Option<i64>, Option<u8>, bool);

    fn arb_day_event() -> impl Strategy<Value = ArbDayEvent> {
        (
            arb_place(),
            prop::option::weighted(0.8, -1000.0f64..1000.0),
            prop::option::weighted(0.8, -3i64..6),
            prop::option::weighted(0.8, 0u8..5),
            prop::bool::weighted(0.3),
        )
    }

    /// (window, offset) per function, from minutes to days; none shorter than `floor` (which
    /// varies the fine tile size, and so the coarse ones, from case to case).
    fn arb_day_windows() -> impl Strategy<Value = Vec<(i64, i64)>> {
        let w = prop::sample::select(vec![
            5 * MINUTE,
            HOUR,
            90 * MINUTE + 7 * SECOND,
            DAY,
            26 * HOUR,
            2 * DAY + HOUR + SECOND,
            3 * DAY,
        ]);
        let o = prop::sample::select(vec![0, 0, -10 * MINUTE, -7 * MINUTE - 1, -DAY]);
        let floor = prop::sample::select(vec![0, 0, HOUR, 6 * HOUR, DAY]);
        (prop::collection::vec((w, o), FUNCTIONS.len()), floor)
            .prop_map(|(ws, f)| ws.into_iter().map(|(w, o)| (w.max(f), o)).collect())
    }

    fn arb_day_mode() -> impl Strategy<Value = Mode> {
        prop_oneof![
            2 => Just(Mode::Continuous),
            1 => prop::sample::select(vec![5i64, 7, 10, 60]).prop_map(ti),
        ]
    }

    /// 300 cases, or `PROPTEST_CASES` for a longer run (an explicit count would ignore it).
    fn cases() -> ProptestConfig {
        let cases = std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|c| c.parse().ok())
            .unwrap_or(300);
        ProptestConfig {
            cases,
            ..ProptestConfig::default()
        }
    }

    proptest! {
        #![proptest_config(cases())]
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
            let spec = functions_spec(mode, &windows, fst.map(|f| base + f));
            let events: Vec<Case> = events
                .into_iter()
                .map(|(ts, x, i, s, replace)| (base + ts, columns(x, i, s), replace))
                .collect();
            let times: Vec<i64> = times.into_iter().map(|t| base + t).collect();
            run_case(&spec, &events, &times)?;
        }

        /// The same over several days with windows from minutes to days, so that both coarse
        /// levels are built and cut: clustered events, events on (and next to) coarse tile
        /// boundaries, late events (the order is random) and replacements everywhere, requests
        /// on boundaries and one window length after events.
        #[test]
        fn coarse_tiles_equal_brute_force(
            mode in arb_day_mode(),
            windows in arb_day_windows(),
            base in prop::sample::select(vec![DAY0 + 3 * HOUR, 0, -3 * HOUR - 17 * SECOND]),
            events in prop::collection::vec(arb_day_event(), 0..160),
            times in prop::collection::vec((arb_place(), 0usize..FUNCTIONS.len(), any::<bool>()), 1..16),
        ) {
            let spec = functions_spec(mode, &windows, None);
            let tile = spec.tile_size();
            let mut placed: Vec<i64> = Vec::new();
            let mut cases: Vec<Case> = Vec::new();
            for (p, x, i, s, replace) in &events {
                let ts = place(p, base, tile, &placed);
                placed.push(ts);
                cases.push((ts, columns(*x, *i, *s), *replace));
            }
            let times: Vec<i64> = times
                .iter()
                .map(|(p, k, shift)| {
                    let t = place(p, base, tile, &placed);
                    // Shifted by a window, the lower edge lands where the upper one was.
                    if *shift { t.saturating_add(windows[*k].0) } else { t }
                })
                .collect();
            run_case(&spec, &cases, &times)?;
        }

        /// Evicting the events before a horizon (in steps, as a moving clock does) leaves the
        /// same tree as inserting only the remaining events: the same invariants and the same
        /// answers bit for bit at every time.
        #[test]
        fn eviction_equals_inserting_the_rest(
            mode in arb_day_mode(),
            windows in arb_day_windows(),
            events in prop::collection::vec(arb_day_event(), 0..160),
            horizons in prop::collection::vec(arb_place(), 1..4),
            times in prop::collection::vec(arb_place(), 1..12),
        ) {
            let spec = functions_spec(mode, &windows, None);
            let (base, tile) = (DAY0, spec.tile_size());
            let mut placed: Vec<i64> = Vec::new();
            let mut evicted = Series::new(&spec);
            let mut kept: Vec<(i64, u64, Vec<Value>)> = Vec::new();
            for (seq, (p, x, i, s, replace)) in events.iter().enumerate() {
                let ts = place(p, base, tile, &placed);
                placed.push(ts);
                let same = if *replace { SameTimestamp::Replace } else { SameTimestamp::Keep };
                if *replace {
                    kept.retain(|e| e.0 != ts);
                }
                let values = columns(*x, *i, *s).to_vec();
                kept.push((ts, seq as u64, values.clone()));
                evicted.insert(&spec, ts, seq as u64, values, same);
            }
            let mut horizons: Vec<i64> = horizons.iter().map(|p| place(p, base, tile, &placed)).collect();
            horizons.sort_unstable();
            for h in horizons {
                let before = evicted.len();
                let removed = evicted.evict_before(&spec, h);
                kept.retain(|e| e.0 >= h);
                prop_assert_eq!(before - removed, kept.len());
                prop_assert_eq!(evicted.len(), kept.len());
                prop_assert_eq!(evicted.first_ts(), kept.iter().map(|e| e.0).min());
                if let Err(e) = evicted.check_tree(&spec) {
                    prop_assert!(false, "tile tree after evicting before {}: {}", h, e);
                }
            }
            kept.sort_by_key(|e| (e.0, e.1));
            let mut rest = Series::new(&spec);
            for (ts, seq, values) in kept {
                rest.insert(&spec, ts, seq, values, SameTimestamp::Keep);
            }
            for t in times.iter().map(|p| place(p, base, tile, &placed)) {
                prop_assert_eq!(evicted.evaluate(&spec, t), rest.evaluate(&spec, t), "at {}", t);
            }
        }
    }

    /// A late event, a replacement and an event on a boundary inside coarse tiles that are
    /// already built give the same state as inserting the final events in order: the same
    /// answers bit for bit (floats included), whatever the window cuts.
    #[test]
    fn late_and_replaced_events_in_built_coarse_tiles() {
        let sp = spec(
            Mode::Continuous,
            vec![
                agg("sum", DataType::Float64, HOUR, 0),
                agg("mean", DataType::Float64, 3 * DAY, 0),
                agg("stddev_samp", DataType::Float64, 26 * HOUR, -7 * MINUTE),
                agg("max", DataType::Float64, 3 * DAY, 0),
                agg("last_distinct(3)", DataType::Float64, DAY, 0),
                agg("count", DataType::Float64, 2 * DAY, 0),
            ],
        );
        // 5-minute tiles, 2-hour level-1 tiles, 1-day level-2 tiles.
        assert_eq!(sp.tile_size(), 5 * MINUTE);
        assert_eq!(sp.coarse_levels(), 2);
        let n = sp.aggregations.len();
        let value = |k: i64| Value::Float(((k * 7919) % 1000) as f64 / 7.0 + 1e6 * (k % 3) as f64);
        // One event every 7 minutes for three days, plus a burst making a fine tile dense.
        let mut events: Vec<(i64, u64, Value)> = (0..3 * 24 * 60 / 7)
            .map(|k| (DAY0 + k * 7 * MINUTE + 13 * SECOND, k as u64, value(k)))
            .collect();
        events.extend((0..12).map(|k| (DAY0 + 30 * HOUR + k * SECOND, 5000 + k as u64, value(k))));
        let late = [
            // Inside day 0's fourth level-1 tile, long after it was built.
            (DAY0 + 7 * HOUR + 3 * SECOND, 9001, value(1)),
            // Exactly on a level-2 (and level-1, and fine) boundary.
            (DAY0 + DAY, 9002, value(2)),
            // Into the dense burst.
            (DAY0 + 30 * HOUR + 5 * SECOND + 1, 9003, value(3)),
        ];
        // Replacing an event of day 1 with another value.
        let (old_ts, _, _) = events[300];
        let replacement = (old_ts, 9004, Value::Float(-42.5));

        let mut in_order: Vec<(i64, u64, Value)> = events.clone();
        in_order.retain(|e| e.0 != old_ts);
        in_order.extend(late.iter().cloned());
        in_order.push(replacement.clone());
        in_order.sort_by_key(|e| (e.0, e.1));
        let mut a = Series::new(&sp);
        for (ts, seq, v) in &in_order {
            a.insert(&sp, *ts, *seq, vec![v.clone(); n], SameTimestamp::Replace);
        }

        let mut sorted = events.clone();
        sorted.sort_by_key(|e| (e.0, e.1));
        let mut b = Series::new(&sp);
        for (ts, seq, v) in sorted.iter().chain(&late).chain([&replacement]) {
            b.insert(&sp, *ts, *seq, vec![v.clone(); n], SameTimestamp::Replace);
        }
        assert_eq!(a.check_tree(&sp), Ok(()));
        assert_eq!(b.check_tree(&sp), Ok(()));
        assert_eq!(a.len(), in_order.len());
        assert_eq!(b.len(), in_order.len());

        let raw: Vec<Raw> = in_order
            .iter()
            .map(|(ts, seq, v)| Raw {
                ts: *ts,
                seq: *seq,
                values: vec![v.clone(); n],
            })
            .collect();
        let times = (0..80).map(|k| DAY0 + k * 67 * MINUTE + (k % 3 - 1));
        for t in times.chain([DAY0 + DAY, DAY0 + 2 * DAY, DAY0 + 3 * DAY, DAY0 + 4 * DAY]) {
            let got = b.evaluate(&sp, t);
            assert_eq!(got, a.evaluate(&sp, t), "at {t}");
            for (k, (g, w)) in got.iter().zip(brute(&sp, &raw, t)).enumerate() {
                assert_eq!(check(g, &w), Ok(()), "aggregation {k} at {t}");
            }
        }
    }
}
