//! Coarse tiles: a head of partials over older children and the newest child kept apart.

use std::sync::OnceLock;

use super::node::{make_room, merge_into, Event, Node, Window};
use super::slot::{Col, Ctx};
use super::spec::{span, SameTimestamp};
use super::tile::Tile;
#[cfg(test)]
use super::{slot::slot_firsts, spec::SeriesSpec};
use crate::engine::partial::Partial;

/// A coarse tile: its children (fine or level-1 tiles) and the head of their values.
#[derive(Debug, Clone)]
pub(super) struct Coarse<C> {
    /// One partial per slot: the merge, oldest first, of the values of every child but the
    /// newest. Empty while there is one child, whose value is then the tile's. Unset while
    /// stale: a change to an older child does not rebuild it, the next read that needs it does
    /// (module docs, "Stale heads").
    pub(super) head: OnceLock<Vec<Partial>>,
    /// Every child but the newest, keyed by `fine tile number / span(C::LEVEL)`, sorted; fewer
    /// than the fan-out. Sized exactly unless this is the newest tile of its level
    /// ([`Node::shrink`]).
    pub(super) older: Vec<(i64, C)>,
    /// The child with the greatest key, kept in the tile itself: nearly every write lands in
    /// it, and reaching it through the vector was a cache miss per write. `None` only while
    /// the tile is empty.
    pub(super) newest: Option<(i64, C)>,
}

impl<C: Node> Coarse<C> {
    /// The children with their keys, oldest first.
    pub(super) fn children(&self) -> impl Iterator<Item = (i64, &C)> + '_ {
        self.older
            .iter()
            .map(|(k, c)| (*k, c))
            .chain(self.newest.as_ref().map(|(k, c)| (*k, c)))
    }

    /// The head as the module docs define it.
    pub(super) fn build_head(&self, ctx: &Ctx<'_>) -> Vec<Partial> {
        if self.older.is_empty() {
            return Vec::new();
        }
        let mut head = ctx.empty();
        for (_, child) in &self.older {
            child.apply(ctx, ctx.cols(), &mut head);
        }
        head
    }

    /// Merges the head into `acc` (partial `i` being that of `cols[i]`): the kept one, or one
    /// built now (and kept) when it is stale, the same partials either way.
    fn merge_head(&self, ctx: &Ctx<'_>, cols: &[Col], acc: &mut [Partial]) {
        merge_into(self.head.get_or_init(|| self.build_head(ctx)), cols, acc);
    }

    /// The newest child and its key when the head is kept and all of its events (those of
    /// every other child) lie inside `window`.
    pub(super) fn head_within(&self, window: &Window) -> Option<(i64, &C)> {
        let (key, newest) = self.newest.as_ref()?;
        let (first, previous) = (self.older.first()?, self.older.last()?);
        let inside = (window.covers(C::LEVEL, first.0) || first.1.first_ts()? >= window.lo)
            && (window.covers(C::LEVEL, previous.0) || previous.1.last_ts()? <= window.hi);
        inside.then_some((*key, newest))
    }

    /// Most children an older vector holds.
    fn fanout() -> usize {
        usize::try_from(span(Self::LEVEL) / span(C::LEVEL)).unwrap_or(1)
    }
}

impl<C: Node> Node for Coarse<C> {
    const LEVEL: usize = C::LEVEL + 1;

    fn empty() -> Self {
        Coarse {
            head: OnceLock::from(Vec::new()),
            older: Vec::new(),
            newest: None,
        }
    }

    fn insert(
        &mut self,
        ctx: &Ctx<'_>,
        fine: i64,
        event: Event<'_>,
        same_ts: SameTimestamp,
    ) -> usize {
        let key = fine.div_euclid(span(C::LEVEL));
        match &mut self.newest {
            // Events mostly arrive in time order: the newest child takes them, the head is
            // untouched.
            Some((k, child)) if *k == key => child.insert(ctx, fine, event, same_ts),
            Some((k, _)) if *k > key => {
                let at = self.older.partition_point(|(k, _)| *k < key);
                if self.older.get(at).is_none_or(|(k, _)| *k != key) {
                    make_room(&mut self.older, Self::fanout());
                    self.older.insert(at, (key, C::empty()));
                }
                let removed = self.older.get_mut(at).map_or(0, |(_, child)| {
                    let removed = child.insert(ctx, fine, event, same_ts);
                    child.shrink(ctx);
                    removed
                });
                // An older child changed (late event, replacement, or a new child before the
                // newest): the head is stale until a read needs it.
                self.head = OnceLock::new();
                removed
            }
            _ => {
                if let Some((k, mut previous)) = self.newest.take() {
                    // A new newest child: the current newest one joins the head. Same merges,
                    // in the same order, as `build_head`, so the head stays canonical; a stale
                    // head stays stale (the merge is in `build_head`).
                    previous.shrink(ctx);
                    if let Some(head) = self.head.get_mut() {
                        if head.is_empty() {
                            *head = ctx.empty();
                        }
                        previous.apply(ctx, ctx.cols(), head);
                    }
                    make_room(&mut self.older, Self::fanout());
                    self.older.push((k, previous));
                }
                let mut child = C::empty();
                let removed = child.insert(ctx, fine, event, same_ts);
                self.newest = Some((key, child));
                removed
            }
        }
    }

    fn apply(&self, ctx: &Ctx<'_>, cols: &[Col], acc: &mut [Partial]) {
        self.merge_head(ctx, cols, acc);
        if let Some((_, newest)) = &self.newest {
            newest.apply(ctx, cols, acc);
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
        } else if let Some((newest_key, newest)) = self.head_within(window) {
            // The window's upper edge cuts only the newest child, as it does at the request
            // time: the head is taken whole and only the newest child is opened.
            self.merge_head(ctx, cols, acc);
            newest.accumulate(ctx, newest_key, cols, window, acc);
        } else {
            let s = span(C::LEVEL);
            let (first, last) = (
                window.first_tile.div_euclid(s),
                window.last_tile.div_euclid(s),
            );
            let from = self.older.partition_point(|(k, _)| *k < first);
            for (k, child) in self.older[from..].iter().take_while(|(k, _)| *k <= last) {
                child.accumulate(ctx, *k, cols, window, acc);
            }
            if let Some((k, newest)) = self.newest.as_ref().filter(|(k, _)| *k <= last) {
                if *k >= first {
                    newest.accumulate(ctx, *k, cols, window, acc);
                }
            }
        }
    }

    fn first_ts(&self) -> Option<i64> {
        self.children().next()?.1.first_ts()
    }

    fn last_ts(&self) -> Option<i64> {
        self.newest.as_ref()?.1.last_ts()
    }

    fn collect_tiles<'a>(&'a self, out: &mut Vec<&'a Tile>) {
        for (_, child) in self.children() {
            child.collect_tiles(out);
        }
    }

    fn evict(&mut self, ctx: &Ctx<'_>, horizon: i64) -> usize {
        // Children cover disjoint, increasing time ranges: the wholly old ones come first.
        let old = self
            .older
            .partition_point(|(_, c)| c.last_ts().is_some_and(|ts| ts < horizon));
        let mut removed: usize = self.older[..old]
            .iter()
            .map(|(_, c)| {
                c.forget(ctx);
                c.len_events()
            })
            .sum();
        self.older.drain(..old);
        // The first child left (older, or the newest when no older one is) may be partly old.
        match (self.older.first_mut(), &mut self.newest) {
            (Some((_, first)), _) => {
                if first.first_ts().is_some_and(|ts| ts < horizon) {
                    removed += first.evict(ctx, horizon);
                }
            }
            (None, Some((_, newest))) => {
                let (n, gone) = newest.evict_or_empty(ctx, horizon);
                removed += n;
                if gone {
                    self.newest = None;
                }
            }
            (None, None) => {}
        }
        if removed > 0 {
            self.older.shrink_to_fit();
            // Stale until needed, as after a late event.
            self.head = OnceLock::new();
        }
        removed
    }

    fn is_empty(&self) -> bool {
        self.newest.is_none() && self.older.is_empty()
    }

    fn len_events(&self) -> usize {
        self.children().map(|(_, c)| c.len_events()).sum()
    }

    fn shrink(&mut self, ctx: &Ctx<'_>) {
        self.older.shrink_to_fit();
        // Older children are sized exactly already.
        if let Some((_, newest)) = &mut self.newest {
            newest.shrink(ctx);
        }
    }

    #[cfg(test)]
    fn check_node(&self, spec: &SeriesSpec, key: i64, newest: bool) -> Result<(), String> {
        if self.newest.is_none() {
            return Err(format!("level-{} tile without a newest child", Self::LEVEL));
        }
        if !newest && self.older.capacity() != self.older.len() {
            return Err(format!(
                "older level-{} tile {key} has spare capacity",
                Self::LEVEL
            ));
        }
        let children: Vec<(i64, &C)> = self.children().collect();
        if !children.windows(2).all(|w| w[0].0 < w[1].0) {
            return Err(format!("level-{} children out of order", Self::LEVEL));
        }
        let ratio = span(Self::LEVEL) / span(C::LEVEL);
        for (i, (k, child)) in children.iter().enumerate() {
            if k.div_euclid(ratio) != key {
                return Err(format!("child {k} in level-{} tile {key}", Self::LEVEL));
            }
            child.check_node(spec, *k, newest && i + 1 == children.len())?;
        }
        let built = self.build_head(&Ctx::new(spec, slot_firsts(spec)));
        if self.head.get().is_some_and(|head| *head != built) {
            return Err(format!("level-{} head differs from a rebuild", Self::LEVEL));
        }
        Ok(())
    }
}
