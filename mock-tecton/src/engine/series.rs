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
//! # Tiles
//! Events are grouped into epoch-aligned tiles of a fixed size, each holding its events sorted by
//! `(ts, seq)` and one precomputed [`Partial`] per aggregation:
//! - TIME_INTERVAL: the tile is the aggregation interval `I`, so a window of whole intervals is
//!   answered from tile partials alone;
//! - CONTINUOUS: the tile is the smallest window divided by 12 (1h → 5 min), the hop Chronon
//!   uses for its sawtooth tails. Edges are exact regardless: tiles that the window only partly
//!   covers are read event by event.
//!
//! Window edges that are not tile-aligned (any CONTINUOUS request, or a TIME_INTERVAL window or
//! offset that is not a multiple of `I`) are handled the same way, so results never depend on the
//! tile size.
//!
//! A tile partial is always the fold of the tile's events in `(ts, seq)` order: an event that is
//! the newest of its tile is folded in directly; a late (out-of-order) event or a replacement
//! rebuilds the tile's partials from its events (min/max cannot be subtracted). So the state does
//! not depend on arrival order, and the online and offline paths agree.
//!
//! # Cost
//! `insert` is `O(log T + e)` for `T` tiles and `e` events in the tile (`O(e·A)` when the tile is
//! rebuilt, `A` aggregations). `evaluate` visits, once per distinct `(window, offset)`, the
//! non-empty tiles overlapping the window: `O(log T + k·a + r·a)` for `k` such tiles, `a`
//! aggregations sharing that window and `r` raw events in the (at most two) edge tiles. Empty tiles
//! are never stored or visited, so an entity with a few hundred events costs a few thousand
//! partial merges for a dozen aggregations, whatever the window length.

use std::collections::BTreeMap;

use crate::engine::function::AggregateFunction;
use crate::engine::partial::Partial;
use crate::schema::{DataType, Value};

/// Fallback tile size (1 hour) when no aggregation has a positive window.
const DEFAULT_TILE: i64 = 3_600_000_000_000;

/// CONTINUOUS tiles are the smallest window divided by this.
const CONTINUOUS_TILES_PER_WINDOW: i64 = 12;

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

    /// The internal tile size in nanoseconds (see the module docs).
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

/// Events a tile holds before it keeps precomputed partials. Most tiles of a sparse entity
/// hold one event; without this, a dozen 80-byte partials per event would make the online store
/// several times larger than the events themselves.
const DENSE_TILE: usize = 8;

impl Tile {
    fn empty_partials(spec: &SeriesSpec) -> Vec<Partial> {
        spec.aggregations
            .iter()
            .map(|a| Partial::new(&a.function))
            .collect()
    }

    fn fold(spec: &SeriesSpec, partials: &mut [Partial], e: &Event) {
        for (p, a) in partials.iter_mut().zip(&spec.aggregations) {
            if let Some(v) = e.values.get(a.input) {
                p.update(v, e.ts, e.seq);
            }
        }
    }

    fn rebuild(&mut self, spec: &SeriesSpec) {
        let mut partials = Self::empty_partials(spec);
        for e in &self.events {
            Self::fold(spec, &mut partials, e);
        }
        self.partials = partials;
    }
}

/// The events of one entity in one feature view, tiled for fast window evaluation.
///
/// Every method takes the [`SeriesSpec`] the series was created with; passing another one is a
/// caller bug that gives wrong values but never panics.
#[derive(Debug, Clone)]
pub struct Series {
    tile_size: i64,
    /// Keyed by tile number `ts.div_euclid(tile_size)` (an index, not a time, so it cannot
    /// overflow near `i64::MIN`).
    tiles: BTreeMap<i64, Tile>,
    len: usize,
}

impl Series {
    /// An empty series for `spec`.
    pub fn new(spec: &SeriesSpec) -> Self {
        Series {
            tile_size: spec.tile_size(),
            tiles: BTreeMap::new(),
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
        let tile = self
            .tiles
            .entry(ts.div_euclid(self.tile_size))
            .or_insert_with(|| Tile {
                events: Vec::new(),
                partials: Vec::new(),
            });
        let mut rebuild = false;
        if same_ts == SameTimestamp::Replace {
            let start = tile.events.partition_point(|e| e.ts < ts);
            let end = tile.events.partition_point(|e| e.ts <= ts);
            if end > start {
                tile.events.drain(start..end);
                self.len -= end - start;
                rebuild = true;
            }
        }
        let event = Event { ts, seq, values };
        let at = tile.events.partition_point(|e| e.key() <= event.key());
        let newest = at == tile.events.len();
        let dense = !tile.partials.is_empty();
        if dense && newest && !rebuild {
            Tile::fold(spec, &mut tile.partials, &event);
            tile.events.push(event);
        } else {
            tile.events.insert(at, event);
            if dense || tile.events.len() >= DENSE_TILE {
                tile.rebuild(spec);
            } else {
                tile.partials.clear();
            }
        }
        self.len += 1;
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
        let size = i128::from(self.tile_size);
        let range = lo.div_euclid(self.tile_size)..=hi.div_euclid(self.tile_size);
        for (&k, tile) in self.tiles.range(range) {
            let start = i128::from(k) * size;
            let end = start + size - 1;
            if start >= i128::from(lo) && end <= i128::from(hi) && !tile.partials.is_empty() {
                for (p, &j) in acc.iter_mut().zip(group) {
                    if let Some(tp) = tile.partials.get(j) {
                        p.merge(tp);
                    }
                }
            } else {
                let from = tile.events.partition_point(|e| e.ts < lo);
                for e in tile.events[from..].iter().take_while(|e| e.ts <= hi) {
                    for (p, &j) in acc.iter_mut().zip(group) {
                        let input = spec.aggregations.get(j).map_or(usize::MAX, |a| a.input);
                        if let Some(v) = e.values.get(input) {
                            p.update(v, e.ts, e.seq);
                        }
                    }
                }
            }
        }
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
        self.tiles
            .values()
            .flat_map(|t| t.events.iter().map(|e| (e.ts, e.seq, e.values.as_slice())))
    }

    /// The internal tile size in nanoseconds.
    pub fn tile_size(&self) -> i64 {
        self.tile_size
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
            s.tiles.values().next().map(|t| t.partials.len()),
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
