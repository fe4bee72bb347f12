//! Fine tiles: a tile's events, by column, and their partials once dense.

use super::node::{make_room, merge_into, Event, Node, Window};
use super::rows::Rows;
use super::slot::{Col, Ctx};
use super::spec::SameTimestamp;
#[cfg(test)]
use super::{slot::slot_firsts, spec::SeriesSpec};
use crate::engine::partial::Partial;
use crate::schema::Value;

/// A fine tile: its events' stamps, their packed values ([`Rows`]) and, once dense, their
/// partials. No heap object per event: a tile is at most three allocations.
#[derive(Debug, Clone, Default)]
pub(super) struct Tile {
    /// `(ts, seq)` of each event, sorted.
    pub(super) keys: Vec<(i64, u64)>,
    /// The events' input values, in the order of `keys`.
    pub(super) rows: Rows,
    /// One per slot, the fold of the oldest `folded` events; empty while the tile is sparse
    /// (fewer than [`DENSE_TILE`] events), where folding the events at read time costs about as
    /// much as merging partials and the partials would dominate memory, and while nothing is
    /// folded yet.
    pub(super) partials: Vec<Partial>,
    /// Events `partials` folds: all of them, except in the newest tile of its level, which may
    /// leave fewer than [`FOLD_BATCH`] of its newest events to fold later ([`Tile::catch_up`]).
    pub(super) folded: u32,
}

/// Events a fine tile holds before it keeps precomputed partials. Most tiles of a sparse entity
/// hold one event; without this, a dozen 80-byte partials per event would make the online store
/// several times larger than the events themselves.
pub(super) const DENSE_TILE: usize = 8;

/// Unfolded events the newest tile collects before it folds them into its partials. Folding
/// each appended event at once touched the tile's partials on every write, cache misses when
/// many entities take turns; folding a run of events at a time, or when the tile stops being
/// the newest, does the same updates in the same order. A read of the newest tile folds at
/// most this many events into a copy of its partials.
pub(super) const FOLD_BATCH: usize = 64;

impl Tile {
    /// The input values of event `i`.
    pub(super) fn row(&self, i: usize) -> Vec<Value> {
        self.rows.row(i, self.keys.len())
    }

    /// Folds events `range` into `acc`, partial `k` reading input `cols[k].input`.
    fn fold(&self, range: std::ops::Range<usize>, cols: &[Col], acc: &mut [Partial]) {
        self.rows
            .fold(range, &self.keys, self.keys.len(), cols, acc);
    }

    pub(super) fn rebuild(&mut self, ctx: &Ctx<'_>) {
        let mut partials = ctx.empty();
        self.fold(0..self.keys.len(), ctx.cols(), &mut partials);
        self.partials = partials;
        self.folded = u32::try_from(self.keys.len()).unwrap_or(u32::MAX);
    }

    /// Events not folded into the partials yet.
    fn unfolded(&self) -> usize {
        self.keys.len().saturating_sub(self.folded as usize)
    }

    /// Folds the events the partials do not fold yet (a dense tile's partials then fold all
    /// of them): the updates `push` deferred, in the order it would have made them.
    pub(super) fn catch_up(&mut self, ctx: &Ctx<'_>) {
        let n = self.keys.len();
        if n < DENSE_TILE || self.unfolded() == 0 {
            return;
        }
        if self.partials.is_empty() {
            self.rebuild(ctx);
            return;
        }
        let mut partials = std::mem::take(&mut self.partials);
        self.fold(self.folded as usize..n, ctx.cols(), &mut partials);
        self.partials = partials;
        self.folded = u32::try_from(n).unwrap_or(u32::MAX);
    }

    /// Dense exactly when it holds DENSE_TILE events, so that the state depends on the events
    /// alone (a replacement or an eviction can make a tile sparse again).
    pub(super) fn settle(&mut self, ctx: &Ctx<'_>) {
        if self.keys.len() >= DENSE_TILE {
            self.rebuild(ctx);
        } else {
            self.partials = Vec::new();
            self.folded = 0;
        }
    }

    /// [`Node::insert`] without the tally.
    fn insert_event(&mut self, ctx: &Ctx<'_>, event: Event<'_>, same_ts: SameTimestamp) -> usize {
        // The common case, an event newer than every stored one, reads only the last key: the
        // binary searches below would miss the cache once per probe.
        if self.keys.last().is_none_or(|last| last.0 < event.ts) {
            self.push(ctx, event);
            return 0;
        }
        let mut removed = 0;
        if same_ts == SameTimestamp::Replace {
            let start = self.keys.partition_point(|k| k.0 < event.ts);
            let end = self.keys.partition_point(|k| k.0 <= event.ts);
            if end > start {
                self.rows.remove(start..end, self.keys.len());
                self.keys.drain(start..end);
                removed = end - start;
            }
        }
        let key = event.key();
        let at = self.keys.partition_point(|k| *k <= key);
        make_room(&mut self.keys, usize::MAX);
        self.rows.insert(at, &event.row, self.keys.len());
        self.keys.insert(at, key);
        self.settle(ctx);
        removed
    }

    /// Estimated heap bytes of the tile and its node in its parent; `None` when it is empty
    /// (and about to be removed).
    pub(super) fn bytes(&self) -> Option<usize> {
        (!self.keys.is_empty()).then(|| {
            self.keys.capacity() * std::mem::size_of::<(i64, u64)>()
                + self.rows.heap()
                + self.partials.capacity() * std::mem::size_of::<Partial>()
                + std::mem::size_of::<(i64, Tile)>()
        })
    }

    /// Appends an event newer than every stored one; it is folded into the partials with the
    /// next [`FOLD_BATCH`] events, or when the tile stops being the newest.
    pub(super) fn push(&mut self, ctx: &Ctx<'_>, event: Event<'_>) {
        let n = self.keys.len();
        // Doubling: only the newest tile has spare room (`shrink`).
        make_room(&mut self.keys, usize::MAX);
        self.rows.push(&event.row, n);
        self.keys.push(event.key());
        if self.unfolded() >= FOLD_BATCH {
            self.catch_up(ctx);
        }
    }
}

impl Node for Tile {
    const LEVEL: usize = 0;

    fn empty() -> Self {
        Tile::default()
    }

    fn insert(
        &mut self,
        ctx: &Ctx<'_>,
        _fine: i64,
        event: Event<'_>,
        same_ts: SameTimestamp,
    ) -> usize {
        let before = self.bytes();
        let removed = self.insert_event(ctx, event, same_ts);
        ctx.tally.change(before, self.bytes());
        removed
    }

    fn apply(&self, ctx: &Ctx<'_>, cols: &[Col], acc: &mut [Partial]) {
        let n = self.keys.len();
        if n < DENSE_TILE {
            self.fold(0..n, cols, acc);
        } else if self.unfolded() == 0 {
            merge_into(&self.partials, cols, acc);
        } else {
            // The partials of all the events, as `catch_up` would make them, merged as such.
            let mut whole: Vec<Partial> = if self.partials.is_empty() {
                let empty = ctx.empty();
                cols.iter()
                    .filter_map(|c| empty.get(c.slot).cloned())
                    .collect()
            } else {
                cols.iter()
                    .filter_map(|c| self.partials.get(c.slot).cloned())
                    .collect()
            };
            self.fold(self.folded as usize..n, cols, &mut whole);
            for (a, w) in acc.iter_mut().zip(&whole) {
                a.merge(w);
            }
        }
    }

    fn accumulate(
        &self,
        ctx: &Ctx<'_>,
        key: i64,
        cols: &[Col],
        window: &Window,
        acc: &mut [Partial],
    ) {
        if self.within(key, window) {
            self.apply(ctx, cols, acc);
        } else {
            let from = self.keys.partition_point(|k| k.0 < window.lo);
            let to = self.keys.partition_point(|k| k.0 <= window.hi);
            if from < to {
                self.fold(from..to, cols, acc);
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
        let before = self.bytes();
        self.rows.remove(0..n, self.keys.len());
        self.keys.drain(..n);
        self.settle(ctx);
        self.keys.shrink_to_fit();
        self.rows.shrink();
        ctx.tally.change(before, self.bytes());
        n
    }

    fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    fn len_events(&self) -> usize {
        self.keys.len()
    }

    fn shrink(&mut self, ctx: &Ctx<'_>) {
        let before = self.bytes();
        self.catch_up(ctx);
        self.keys.shrink_to_fit();
        self.rows.shrink();
        ctx.tally.change(before, self.bytes());
    }

    #[cfg(test)]
    fn check_node(&self, spec: &SeriesSpec, key: i64, newest: bool) -> Result<(), String> {
        if self.keys.is_empty() {
            return Err("empty fine tile".into());
        }
        if !newest && self.keys.capacity() != self.keys.len() {
            return Err(format!("older fine tile {key} has spare capacity"));
        }
        if !newest && self.rows.spare() != 0 {
            return Err(format!("older fine tile {key} has spare row capacity"));
        }
        if let Some(i) = (0..self.keys.len()).find(|&i| self.row(i).len() != spec.input_count()) {
            return Err(format!("event {i} of fine tile {key} has the wrong width"));
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
        let folded = self.folded as usize;
        if !newest && self.keys.len() >= DENSE_TILE && folded != self.keys.len() {
            return Err(format!("older fine tile {key} has unfolded events"));
        }
        if self.unfolded() >= FOLD_BATCH.max(DENSE_TILE) {
            return Err(format!(
                "fine tile {key} has {} unfolded events",
                self.unfolded()
            ));
        }
        // The partials fold the oldest `folded` events, as a rebuild over them does.
        let rebuilt = if folded >= DENSE_TILE {
            let ctx = Ctx::new(spec, slot_firsts(spec));
            let mut partials = ctx.empty();
            self.fold(0..folded, ctx.cols(), &mut partials);
            partials
        } else {
            Vec::new()
        };
        if rebuilt != self.partials {
            return Err(format!(
                "fine tile of {} events ({folded} folded): partials differ from a rebuild",
                self.keys.len()
            ));
        }
        Ok(())
    }
}
