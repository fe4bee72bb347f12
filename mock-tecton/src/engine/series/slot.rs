//! Slots: aggregations that keep equal partials share one (module docs, "Slots").

use std::cell::{Cell, OnceCell};

use super::spec::{Aggregation, SeriesSpec};
use crate::engine::partial::Partial;

/// The slot of each aggregation (module docs, "Slots"): slots are numbered in order of their
/// first aggregation.
pub(super) fn slot_map(spec: &SeriesSpec) -> Vec<usize> {
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
pub(super) fn slot_firsts(spec: &SeriesSpec) -> Option<u64> {
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
pub(super) struct Col {
    pub(super) slot: usize,
    pub(super) input: usize,
}

/// A spec and its slots, for inserting: the columns of every slot are listed on first use
/// (appending to a sparse tile needs none).
pub(super) struct Ctx<'a> {
    pub(super) spec: &'a SeriesSpec,
    pub(super) firsts: Option<u64>,
    pub(super) cols: OnceCell<Cols>,
    /// The changes made through this context.
    pub(super) tally: Tally,
}

/// Slots listed inline up to [`INLINE_COLS`], so that appending to a dense tile (once per event)
/// allocates nothing.
#[derive(Debug)]
pub(super) enum Cols {
    Inline([Col; INLINE_COLS], usize),
    Heap(Vec<Col>),
}

pub(super) const INLINE_COLS: usize = 8;

/// What an insert or an eviction changed in the fine tiles (their number and estimated bytes),
/// so a series keeps its footprint without walking its tiles.
#[derive(Debug, Default)]
pub(super) struct Tally {
    pub(super) tiles: Cell<isize>,
    pub(super) bytes: Cell<isize>,
}

impl Tally {
    /// Records a fine tile going from `before` to `after` (`None`: empty, else its bytes).
    pub(super) fn change(&self, before: Option<usize>, after: Option<usize>) {
        let count = |x: Option<usize>| isize::from(x.is_some());
        let size = |x: Option<usize>| x.map_or(0, |b| isize::try_from(b).unwrap_or(isize::MAX));
        self.tiles
            .set(self.tiles.get() + count(after) - count(before));
        self.bytes
            .set(self.bytes.get() + size(after) - size(before));
    }
}

impl<'a> Ctx<'a> {
    pub(super) fn new(spec: &'a SeriesSpec, firsts: Option<u64>) -> Self {
        Ctx {
            spec,
            firsts,
            cols: OnceCell::new(),
            tally: Tally::default(),
        }
    }

    /// The first aggregation of each slot, in slot order.
    pub(super) fn firsts(&self) -> impl Iterator<Item = &'a Aggregation> + '_ {
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
    pub(super) fn cols(&self) -> &[Col] {
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
    pub(super) fn empty(&self) -> Vec<Partial> {
        let mut empty = Vec::with_capacity(self.cols().len());
        empty.extend(self.firsts().map(|a| Partial::new(&a.function)));
        empty
    }
}
