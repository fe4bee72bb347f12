//! What a series computes: mode, aggregations, window bounds, tile sizes and reach.

use crate::engine::function::AggregateFunction;
use crate::schema::{DataType, Value};

/// Fallback tile size (1 hour) when no aggregation has a positive window.
pub(super) const DEFAULT_TILE: i64 = 3_600_000_000_000;

/// CONTINUOUS tiles are the smallest window divided by this.
pub(super) const CONTINUOUS_TILES_PER_WINDOW: i64 = 12;

/// Fine tiles per level-1 coarse tile (see the module docs for the choice).
pub(super) const LEVEL1_FANOUT: i64 = 24;

/// Level-1 tiles per level-2 coarse tile.
pub(super) const LEVEL2_FANOUT: i64 = 12;

/// Fine tiles per node of each level: fine, level 1, level 2.
pub(super) const SPANS: [i64; 3] = [1, LEVEL1_FANOUT, LEVEL1_FANOUT * LEVEL2_FANOUT];

/// Fine tiles per node of `level` (a fine tile is level 0).
pub(super) fn span(level: usize) -> i64 {
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

/// What a [`Series`](super::Series) computes: the mode, the aggregations and `feature_start_time`.
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
    pub(super) fn bounds(&self, agg: &Aggregation, t: i64) -> Option<(i64, i64)> {
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

/// Heap bytes a value owns beyond its own size (string contents at their length; a string of
/// up to 23 bytes is inline).
pub(crate) fn value_heap(v: &Value) -> usize {
    match v {
        Value::String(s) if s.is_heap_allocated() => s.len(),
        Value::String(_) => 0,
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
pub(super) fn floor_to(x: i64, interval: i64) -> i128 {
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
