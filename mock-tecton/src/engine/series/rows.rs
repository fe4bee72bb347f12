//! A fine tile's input values, packed: what an event costs once stored.
//!
//! The values of a tile's events are kept row after row in one byte buffer, each value as a tag
//! byte and its payload: nothing for a null or a boolean (the `count`-only marker), 8 bytes for
//! an integer, a float or a timestamp, a 4-byte length and the bytes for a string. A stored event
//! is then a dozen bytes, where one [`Value`] per input cost 32 bytes plus a heap string each,
//! and a tile is one allocation however many strings it holds: the online store's memory and
//! the allocator's work both follow the bytes, and they were the largest cost of the write path.
//!
//! Arrays, maps and structs do not pack: a tile that receives one keeps every value as a
//! [`Value`] from then on (the layout the tile would have had before packing existed). Either
//! way a value reads back equal to the one written, bit for bit (floats by their bits), so
//! partials folded from a packed tile equal those folded from the values themselves.

use std::ops::Range;

use super::slot::Col;
use crate::engine::partial::Partial;
use crate::schema::Value;

const NULL: u8 = 0;
const FALSE: u8 = 1;
const TRUE: u8 = 2;
const INT: u8 = 3;
const FLOAT: u8 = 4;
const TIMESTAMP: u8 = 5;
const STRING: u8 = 6;

/// Inputs per event that a packed buffer can describe (its first byte is the width).
const MAX_PACKED_WIDTH: usize = u8::MAX as usize;

static NULL_VALUE: Value = Value::Null;
static MARKER: Value = Value::Bool(true);

/// The input values of one event on its way into a tile.
#[derive(Debug, Clone, Copy)]
pub(super) enum Row<'a> {
    /// Value `i` is `values[i]` (missing ones read as null).
    Values(&'a [Value], usize),
    /// Value `i` is `record[columns[i]]` (a missing one reads as null), or a non-null marker
    /// `Bool(true)` when `counted[i]` (only `count` reads that input).
    Mapped {
        /// The record, in source-schema order.
        record: &'a [Value],
        /// The record's column of each input.
        columns: &'a [usize],
        /// Per input, whether only its null-ness is kept.
        counted: &'a [bool],
        /// Inputs per event.
        width: usize,
    },
}

impl<'a> Row<'a> {
    /// Inputs per event.
    pub(super) fn width(&self) -> usize {
        match self {
            Row::Values(_, w) | Row::Mapped { width: w, .. } => *w,
        }
    }

    /// Input `i`.
    pub(super) fn get(&self, i: usize) -> &'a Value {
        match *self {
            Row::Values(values, _) => values.get(i).unwrap_or(&NULL_VALUE),
            Row::Mapped {
                record,
                columns,
                counted,
                ..
            } => match columns.get(i).and_then(|&c| record.get(c)) {
                None | Some(Value::Null) => &NULL_VALUE,
                Some(_) if counted.get(i).copied().unwrap_or(false) => &MARKER,
                Some(v) => v,
            },
        }
    }

    fn packs(&self) -> bool {
        self.width() <= MAX_PACKED_WIDTH
            && (0..self.width()).all(|i| {
                !matches!(
                    self.get(i),
                    Value::Array(_) | Value::Map(_) | Value::Struct(_)
                ) && !matches!(self.get(i), Value::String(s) if u32::try_from(s.len()).is_err())
            })
    }
}

/// The values of a tile's events, oldest first.
#[derive(Debug, Clone)]
pub(super) enum Rows {
    /// The width (one byte), then every row's values encoded (module docs). Empty while the
    /// tile has no event.
    Packed(Vec<u8>),
    /// Every row's values, row after row (`len / events` per row).
    Values(Vec<Value>),
}

impl Default for Rows {
    fn default() -> Self {
        Rows::Packed(Vec::new())
    }
}

/// Bytes a packed value takes, tag included.
fn packed_len(v: &Value) -> usize {
    match v {
        Value::Null | Value::Bool(_) => 1,
        Value::Int(_) | Value::Float(_) | Value::Timestamp(_) => 9,
        Value::String(s) => 5 + s.len(),
        Value::Array(_) | Value::Map(_) | Value::Struct(_) => 0,
    }
}

fn pack(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Null => out.push(NULL),
        Value::Bool(false) => out.push(FALSE),
        Value::Bool(true) => out.push(TRUE),
        Value::Int(i) => {
            out.push(INT);
            out.extend_from_slice(&i.to_le_bytes());
        }
        Value::Float(x) => {
            out.push(FLOAT);
            out.extend_from_slice(&x.to_bits().to_le_bytes());
        }
        Value::Timestamp(t) => {
            out.push(TIMESTAMP);
            out.extend_from_slice(&t.to_le_bytes());
        }
        Value::String(s) => {
            out.push(STRING);
            // `Row::packs` checked that the length fits.
            let n = u32::try_from(s.len()).unwrap_or(u32::MAX);
            out.extend_from_slice(&n.to_le_bytes());
            out.extend_from_slice(s.as_bytes());
        }
        // Never packed (`Row::packs`).
        Value::Array(_) | Value::Map(_) | Value::Struct(_) => out.push(NULL),
    }
}

fn word(data: &[u8], at: usize) -> [u8; 8] {
    data.get(at..at + 8)
        .and_then(|b| b.try_into().ok())
        .unwrap_or([0; 8])
}

fn string_len(data: &[u8], at: usize) -> usize {
    data.get(at..at + 4)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .map_or(0, |b| u32::from_le_bytes(b) as usize)
}

/// The end of the value packed at `at`.
fn skip(data: &[u8], at: usize) -> usize {
    match data.get(at) {
        Some(&(INT | FLOAT | TIMESTAMP)) => at + 9,
        Some(&STRING) => at + 5 + string_len(data, at + 1),
        _ => at + 1,
    }
}

/// The value packed at `at`.
fn unpack(data: &[u8], at: usize) -> Value {
    match data.get(at) {
        Some(&FALSE) => Value::Bool(false),
        Some(&TRUE) => Value::Bool(true),
        Some(&INT) => Value::Int(i64::from_le_bytes(word(data, at + 1))),
        Some(&FLOAT) => Value::Float(f64::from_bits(u64::from_le_bytes(word(data, at + 1)))),
        Some(&TIMESTAMP) => Value::Timestamp(i64::from_le_bytes(word(data, at + 1))),
        Some(&STRING) => {
            let n = string_len(data, at + 1);
            let bytes = data.get(at + 5..at + 5 + n).unwrap_or(&[]);
            Value::String(String::from_utf8_lossy(bytes).as_ref().into())
        }
        _ => Value::Null,
    }
}

/// Makes room for `more` bytes, doubling: only the newest tile has spare room (`shrink`).
fn reserve_doubling<T>(v: &mut Vec<T>, more: usize) {
    if v.capacity() - v.len() < more {
        v.reserve_exact(v.len().max(more));
    }
}

impl Rows {
    /// Inputs per event of a packed buffer.
    fn packed_width(data: &[u8]) -> usize {
        data.first().map_or(0, |&w| usize::from(w))
    }

    /// Where row `i` starts (a packed buffer walks its rows; `events` rows are stored).
    fn start(&self, i: usize, events: usize) -> usize {
        match self {
            Rows::Packed(data) => {
                let w = Self::packed_width(data);
                let mut at = 1;
                for _ in 0..i * w {
                    at = skip(data, at);
                }
                at
            }
            Rows::Values(values) => i * values.len().checked_div(events).unwrap_or(0),
        }
    }

    /// Switches to one [`Value`] per input (`events` rows stored).
    fn unpack_all(&mut self, events: usize) {
        if let Rows::Packed(data) = self {
            let w = Self::packed_width(data);
            let mut values = Vec::with_capacity(events * w);
            let mut at = 1;
            for _ in 0..events * w {
                values.push(unpack(data, at));
                at = skip(data, at);
            }
            *self = Rows::Values(values);
        }
    }

    /// Appends `row` after the `events` stored rows; returns where it starts.
    pub(super) fn push(&mut self, row: &Row<'_>, events: usize) -> usize {
        self.insert(events, row, events)
    }

    /// Inserts `row` as row `at` of `events` stored ones; returns where it starts.
    pub(super) fn insert(&mut self, at: usize, row: &Row<'_>, events: usize) -> usize {
        let w = row.width();
        if matches!(self, Rows::Packed(_)) && !row.packs() {
            self.unpack_all(events);
        }
        let start = if at >= events {
            self.end()
        } else {
            self.start(at, events)
        };
        match self {
            Rows::Packed(data) => {
                let len: usize = (0..w).map(|i| packed_len(row.get(i))).sum();
                if data.is_empty() {
                    // `Row::packs` checked the width fits.
                    data.reserve_exact(1 + len);
                    data.push(u8::try_from(w).unwrap_or(u8::MAX));
                }
                reserve_doubling(data, len);
                if start == data.len() {
                    (0..w).for_each(|i| pack(data, row.get(i)));
                } else {
                    let mut packed = Vec::with_capacity(len);
                    (0..w).for_each(|i| pack(&mut packed, row.get(i)));
                    data.splice(start..start, packed);
                }
            }
            Rows::Values(values) => {
                reserve_doubling(values, w);
                values.splice(start..start, (0..w).map(|i| row.get(i).clone()));
            }
        }
        start
    }

    /// Removes rows `range` of `events` stored ones.
    pub(super) fn remove(&mut self, range: Range<usize>, events: usize) {
        let (from, to) = (
            self.start(range.start, events),
            self.start(range.end, events),
        );
        match self {
            Rows::Packed(data) => {
                if range.len() == events {
                    data.clear();
                } else {
                    data.drain(from..to);
                }
            }
            Rows::Values(values) => {
                values.drain(from..to);
            }
        }
    }

    /// Folds rows `range` (of `events` stored ones, stamped by `keys`) into `acc`, partial `k`
    /// reading input `cols[k].input`: the values each partial would get from the events.
    pub(super) fn fold(
        &self,
        range: Range<usize>,
        keys: &[(i64, u64)],
        events: usize,
        cols: &[Col],
        acc: &mut [Partial],
    ) {
        let at = self.start(range.start, events);
        self.fold_at(at, range, keys, events, cols, acc);
    }

    /// Where the next row would start: a row pushed now starts here ([`Rows::fold_at`]).
    pub(super) fn end(&self) -> usize {
        match self {
            Rows::Packed(data) => data.len().max(1),
            Rows::Values(values) => values.len(),
        }
    }

    /// [`Rows::fold`], given where row `range.start` starts.
    pub(super) fn fold_at(
        &self,
        mut at: usize,
        range: Range<usize>,
        keys: &[(i64, u64)],
        events: usize,
        cols: &[Col],
        acc: &mut [Partial],
    ) {
        match self {
            Rows::Packed(data) => {
                let w = Self::packed_width(data);
                for &(ts, seq) in keys.get(range).unwrap_or(&[]) {
                    for j in 0..w {
                        // Nulls reach no partial, and unread strings are not unpacked.
                        let last = cols.iter().rposition(|c| c.input == j);
                        if let Some(last) =
                            last.filter(|_| data.get(at).is_some_and(|&t| t != NULL))
                        {
                            let v = unpack(data, at);
                            for (k, (p, c)) in acc.iter_mut().zip(cols).enumerate() {
                                if k == last {
                                    // The last reader takes the value: no copy of a string.
                                    p.update_owned(v, ts, seq);
                                    break;
                                }
                                if c.input == j {
                                    p.update(&v, ts, seq);
                                }
                            }
                        }
                        at = skip(data, at);
                    }
                }
            }
            Rows::Values(values) => {
                let w = values.len().checked_div(events).unwrap_or(0);
                for &(ts, seq) in keys.get(range).unwrap_or(&[]) {
                    let row = values.get(at..at + w).unwrap_or(&[]);
                    for (p, c) in acc.iter_mut().zip(cols) {
                        if let Some(v) = row.get(c.input) {
                            p.update(v, ts, seq);
                        }
                    }
                    at += w;
                }
            }
        }
    }

    /// The values of row `i` (of `events` stored ones).
    pub(super) fn row(&self, i: usize, events: usize) -> Vec<Value> {
        let at = self.start(i, events);
        match self {
            Rows::Packed(data) => {
                let w = Self::packed_width(data);
                let mut at = at;
                (0..w)
                    .map(|_| {
                        let v = unpack(data, at);
                        at = skip(data, at);
                        v
                    })
                    .collect()
            }
            Rows::Values(values) => {
                let w = values.len().checked_div(events).unwrap_or(0);
                values.get(at..at + w).unwrap_or(&[]).to_vec()
            }
        }
    }

    /// Heap bytes held.
    pub(super) fn heap(&self) -> usize {
        match self {
            Rows::Packed(data) => data.capacity(),
            Rows::Values(values) => {
                values.capacity() * std::mem::size_of::<Value>()
                    + values.iter().map(super::value_heap).sum::<usize>()
            }
        }
    }

    /// Drops spare capacity.
    pub(super) fn shrink(&mut self) {
        match self {
            Rows::Packed(data) => data.shrink_to_fit(),
            Rows::Values(values) => values.shrink_to_fit(),
        }
    }

    /// Spare capacity (tests check older tiles have none).
    #[cfg(test)]
    pub(super) fn spare(&self) -> usize {
        match self {
            Rows::Packed(data) => data.capacity() - data.len(),
            Rows::Values(values) => values.capacity() - values.len(),
        }
    }
}
