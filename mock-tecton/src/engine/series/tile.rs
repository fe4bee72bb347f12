//! Fine tiles: a tile's events, by column, and their partials once dense.

use super::node::{make_room, merge_into, Event, Node, Window};
use super::slot::{Col, Ctx};
use super::spec::SameTimestamp;
#[cfg(test)]
use super::{slot::slot_firsts, spec::SeriesSpec};
use crate::engine::partial::Partial;
use crate::schema::Value;

/// A fine tile, stored by column: no heap object per event. `keys[i]` is event `i`'s
/// `(ts, seq)` and `values[i * w .. (i + 1) * w]` its input values, where `w` (the spec's input
/// count) is `values.len() / keys.len()`.
#[derive(Debug, Clone)]
pub(super) struct Tile {
    /// Sorted by `(ts, seq)`.
    pub(super) keys: Vec<(i64, u64)>,
    /// The events' input values, event after event.
    pub(super) values: Vec<Value>,
    /// One per slot, the fold of the events; empty while the tile is sparse (fewer than
    /// [`DENSE_TILE`] events), where folding the events at read time costs about as much as
    /// merging partials and the partials would dominate memory.
    pub(super) partials: Vec<Partial>,
}

/// Events a fine tile holds before it keeps precomputed partials. Most tiles of a sparse entity
/// hold one event; without this, a dozen 80-byte partials per event would make the online store
/// several times larger than the events themselves.
pub(super) const DENSE_TILE: usize = 8;

impl Tile {
    /// Values per event.
    pub(super) fn width(&self) -> usize {
        self.values.len().checked_div(self.keys.len()).unwrap_or(0)
    }

    /// The input values of event `i`.
    pub(super) fn row(&self, i: usize) -> &[Value] {
        let w = self.width();
        self.values.get(i * w..(i + 1) * w).unwrap_or(&[])
    }

    /// Folds event `i` into `acc`, partial `k` reading column `cols[k].input`.
    pub(super) fn fold_event(&self, i: usize, cols: &[Col], acc: &mut [Partial]) {
        let (ts, seq) = self.keys[i];
        let row = self.row(i);
        for (p, c) in acc.iter_mut().zip(cols) {
            if let Some(v) = row.get(c.input) {
                p.update(v, ts, seq);
            }
        }
    }

    pub(super) fn rebuild(&mut self, ctx: &Ctx<'_>) {
        let mut partials = ctx.empty();
        for i in 0..self.keys.len() {
            self.fold_event(i, ctx.cols(), &mut partials);
        }
        self.partials = partials;
    }

    /// Dense exactly when it holds DENSE_TILE events, so that the state depends on the events
    /// alone (a replacement or an eviction can make a tile sparse again).
    pub(super) fn settle(&mut self, ctx: &Ctx<'_>) {
        if self.keys.len() >= DENSE_TILE {
            self.rebuild(ctx);
        } else {
            self.partials = Vec::new();
        }
    }

    /// Appends an event newer than every stored one.
    pub(super) fn push(&mut self, ctx: &Ctx<'_>, event: Event) {
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
