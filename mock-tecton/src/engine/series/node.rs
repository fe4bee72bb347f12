//! The tile tree's shared parts: the [`Node`] trait every level implements, the event on its
//! way down, and the window being evaluated.

use super::rows::Row;
use super::slot::{Col, Ctx};
#[cfg(test)]
use super::spec::SeriesSpec;
use super::spec::{span, SameTimestamp};
use super::tile::Tile;
use crate::engine::partial::Partial;

/// An event on its way into a tile: its stamp and its input values, borrowed.
#[derive(Debug, Clone, Copy)]
pub(super) struct Event<'a> {
    pub(super) ts: i64,
    pub(super) seq: u64,
    pub(super) row: Row<'a>,
}

impl Event<'_> {
    pub(super) fn key(&self) -> (i64, u64) {
        (self.ts, self.seq)
    }
}

/// Merges `from[cols[i].slot]` into `acc[i]` for every `i`.
pub(super) fn merge_into(from: &[Partial], cols: &[Col], acc: &mut [Partial]) {
    for (p, c) in acc.iter_mut().zip(cols) {
        if let Some(q) = from.get(c.slot) {
            p.merge(q);
        }
    }
}

/// The time range a window covers, with the fine tiles it touches.
#[derive(Debug, Clone, Copy)]
pub(super) struct Window {
    /// Inclusive event-time bounds.
    pub(super) lo: i64,
    pub(super) hi: i64,
    /// The fine tile size.
    pub(super) tile: i64,
    /// Fine tile numbers of `lo` and `hi`.
    pub(super) first_tile: i64,
    pub(super) last_tile: i64,
}

impl Window {
    /// True when node `key` of `level` lies wholly inside the window: decided on the key alone,
    /// so the nodes in the middle of a window are taken whole without reading their events.
    pub(super) fn covers(&self, level: usize, key: i64) -> bool {
        // In i128: a tile number times a tile size is a time, times 288 at most.
        let size = i128::from(self.tile) * i128::from(span(level));
        let start = i128::from(key) * size;
        start >= i128::from(self.lo) && start + size - 1 <= i128::from(self.hi)
    }
}

/// Makes room for one more element, doubling the capacity from 1 but never past `max`: most
/// tiles and coarse tiles of a sparse entity hold one or two elements and get no spare room
/// (`Vec`'s own growth would reserve four), while the newest ones still grow in few steps.
pub(super) fn make_room<T>(v: &mut Vec<T>, max: usize) {
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
pub(super) trait Node: Sized {
    /// 0 for a fine tile, 1 and 2 for coarse tiles. A node of level `l` covers `span(l)` fine
    /// tiles and is keyed by `fine tile number / span(l)` (rounded down).
    const LEVEL: usize;

    /// A node without events (never left so once inserted into).
    fn empty() -> Self;

    /// Adds `event`, which lies in fine tile number `fine` inside this node. Returns how many
    /// stored events it replaced.
    fn insert(
        &mut self,
        ctx: &Ctx<'_>,
        fine: i64,
        event: Event<'_>,
        same_ts: SameTimestamp,
    ) -> usize;

    /// Merges this node's value (module docs) into `acc`, partial `i` being that of `cols[i]`.
    fn apply(&self, ctx: &Ctx<'_>, cols: &[Col], acc: &mut [Partial]);

    /// Folds the events inside `window` into `acc`; `key` is this node's key.
    fn accumulate(
        &self,
        ctx: &Ctx<'_>,
        key: i64,
        cols: &[Col],
        window: &Window,
        acc: &mut [Partial],
    );

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
    fn shrink(&mut self, ctx: &Ctx<'_>);

    /// [`Node::evict`] for a node its parent may drop: returns the events dropped and whether
    /// the node is now empty. A node with nothing left to keep is not evicted event by event,
    /// only forgotten (`ctx`'s tally records its tiles gone).
    fn evict_or_empty(&mut self, ctx: &Ctx<'_>, horizon: i64) -> (usize, bool) {
        if self.last_ts().is_some_and(|ts| ts < horizon) {
            self.forget(ctx);
            return (self.len_events(), true);
        }
        let removed = if self.first_ts().is_some_and(|ts| ts < horizon) {
            self.evict(ctx, horizon)
        } else {
            0
        };
        (removed, self.is_empty())
    }

    /// Records in `ctx`'s tally that every fine tile under this node is dropped.
    fn forget(&self, ctx: &Ctx<'_>) {
        let mut tiles = Vec::new();
        self.collect_tiles(&mut tiles);
        for t in tiles {
            ctx.tally.change(t.bytes(), None);
        }
    }

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
