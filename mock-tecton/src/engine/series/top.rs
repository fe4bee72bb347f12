//! The top level of a series' tile tree, its newest node kept apart from the older ones.
//!
//! Nearly every write lands in the newest top-level node. Kept in the series itself, and so in
//! the memory the online store's map slot has just brought into the cache, it is reached
//! without descending a B-tree whose nodes live elsewhere: with thousands of entities taking
//! turns, that descent was a cache miss on every write.

use std::collections::BTreeMap;

use super::node::{Event, Node, Window};
use super::slot::{Col, Ctx};
use super::spec::{span, SameTimestamp};
use crate::engine::partial::Partial;

/// Top-level nodes keyed by `fine tile number / span(N::LEVEL)`.
#[derive(Debug, Clone)]
pub(super) struct Top<N> {
    /// Every node but the newest.
    older: BTreeMap<i64, N>,
    /// The node with the greatest key; `None` only when there is no node at all.
    newest: Option<(i64, N)>,
}

impl<N: Node> Top<N> {
    pub(super) fn new() -> Self {
        Top {
            older: BTreeMap::new(),
            newest: None,
        }
    }

    /// Inserts an event of fine tile `fine`; returns how many stored events it replaced.
    /// Only the newest node keeps spare room ([`Node::shrink`]).
    pub(super) fn insert(
        &mut self,
        ctx: &Ctx<'_>,
        fine: i64,
        event: Event<'_>,
        same_ts: SameTimestamp,
    ) -> usize {
        let key = fine.div_euclid(span(N::LEVEL));
        match &mut self.newest {
            Some((k, node)) if *k == key => node.insert(ctx, fine, event, same_ts),
            Some((k, _)) if *k > key => {
                let node = self.older.entry(key).or_insert_with(N::empty);
                let removed = node.insert(ctx, fine, event, same_ts);
                node.shrink(ctx);
                removed
            }
            _ => {
                if let Some((k, mut node)) = self.newest.take() {
                    // It stops being the newest.
                    node.shrink(ctx);
                    self.older.insert(k, node);
                }
                let mut node = N::empty();
                let removed = node.insert(ctx, fine, event, same_ts);
                self.newest = Some((key, node));
                removed
            }
        }
    }

    /// Drops the events older than `horizon`; returns how many.
    pub(super) fn evict(&mut self, ctx: &Ctx<'_>, horizon: i64) -> usize {
        let mut removed = 0;
        while let Some(mut first) = self.older.first_entry() {
            match first.get_mut().evict_or_empty(ctx, horizon) {
                (n, true) => {
                    removed += n;
                    first.remove();
                }
                (n, false) => return removed + n,
            }
        }
        if let Some((_, node)) = &mut self.newest {
            let (n, gone) = node.evict_or_empty(ctx, horizon);
            removed += n;
            if gone {
                self.newest = None;
            }
        }
        removed
    }

    /// Accumulates the nodes that overlap `window`.
    pub(super) fn accumulate(
        &self,
        ctx: &Ctx<'_>,
        cols: &[Col],
        window: &Window,
        acc: &mut [Partial],
    ) {
        let s = span(N::LEVEL);
        let (first, last) = (
            window.first_tile.div_euclid(s),
            window.last_tile.div_euclid(s),
        );
        // first <= last, so `range` cannot panic.
        for (key, node) in self.older.range(first..=last) {
            node.accumulate(ctx, *key, cols, window, acc);
        }
        if let Some((key, node)) = &self.newest {
            if (first..=last).contains(key) {
                node.accumulate(ctx, *key, cols, window, acc);
            }
        }
    }

    /// The nodes, oldest first.
    pub(super) fn iter(&self) -> impl Iterator<Item = (i64, &N)> + '_ {
        self.older
            .iter()
            .map(|(k, n)| (*k, n))
            .chain(self.newest.as_ref().map(|(k, n)| (*k, n)))
    }

    /// The oldest node.
    pub(super) fn first(&self) -> Option<&N> {
        self.older
            .values()
            .next()
            .or(self.newest.as_ref().map(|(_, n)| n))
    }
}
