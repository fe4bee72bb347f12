//! The online store: per feature view, per entity, what the feature server needs, and no more.
//!
//! # Bounded by what can still be served
//! The store holds only what a request at the mock's clock (or later) can read:
//! - an aggregate view keeps the events with `ts ≥ now − reach`, where `reach` is the longest
//!   `window − offset` plus one fine tile ([`SeriesSpec::reach`]); an older event is refused
//!   on arrival (it still goes to the offline log) and stored events age out as the clock moves;
//! - an attribute view keeps an entity's row while `now < ts + ttl`, the serving rule;
//! - an entity left with nothing is removed.
//!
//! Eviction is amortised and driven by the clock the writes carry: each shard (1/64 of a view's
//! entities) is swept by the write that finds its sweep due, once the clock has moved by
//! 1/64 of what the view keeps (its reach or TTL; at least a second) since the last sweep, so
//! memory stays within about 1/64 of the bound and a sweep costs a comparison per entity with
//! nothing to drop. No request ever walks the whole store; [`OnlineStore::evict`] does, for
//! callers that want the store trimmed at once.
//!
//! Moving a virtual clock backwards does not bring evicted events back.

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use serde::Serialize;

use super::{EntityKey, KeyPart};
use crate::config::Retention;
use crate::engine::{value_heap, SameTimestamp, Series, SeriesSpec};
use crate::repo::Repository;
use crate::schema::Value;

/// Shards per view: many, so two writers of different entities seldom meet on one lock, and a
/// shard sweep touches few entities.
const SHARDS: usize = 64;

/// A shard is swept when the clock has moved by this fraction of what its view keeps.
const SWEEPS_PER_REACH: i64 = 64;

/// The shortest clock time between two sweeps of one shard (1 second).
const MIN_SWEEP_EVERY: i64 = 1_000_000_000;

/// An entity's key as the store's maps hold it, encoded and hashed once: a writer builds it
/// once per record ([`OnlineStore::record_key`]) and writes every view over the same join keys
/// with it. Keys are only valid for the store that built them (the hash is seeded per store).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreKey(SlotKey);

/// The hasher of entity keys: fast, seeded per process.
type KeyHasher = foldhash::fast::RandomState;

/// Encoded keys up to this many bytes are stored inline (a join key of one string of up to 17
/// bytes, or two integers).
const INLINE_KEY: usize = 22;

/// An entity key as the shards hold it: its parts encoded as bytes, inline when short, and its
/// hash, computed once. A probe then compares bytes in the slot it has already read, where an
/// [`EntityKey`] made it follow two pointers (vector, then string) to memory of its own: with
/// many entities those were cache misses on every write, the largest cost of the write path.
///
/// Encoding, part after part: a string is `0`, its length (`u32` little-endian) and its bytes;
/// an integer is `1` and its 8 bytes little-endian. Equal keys encode equally, and the encoding
/// decodes back to the key ([`SlotKey::entity_key`]).
#[derive(Debug, Clone, PartialEq, Eq)]
struct SlotKey {
    hash: u64,
    bytes: KeyBytes,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum KeyBytes {
    /// Length, then the bytes; the rest of the array is zero, so equality may compare it all.
    Inline(u8, [u8; INLINE_KEY]),
    Heap(Box<[u8]>),
}

/// A join-key part borrowed from a key or a record, for encoding.
#[derive(Clone, Copy)]
enum PartRef<'a> {
    Str(&'a str),
    Int(i64),
}

impl SlotKey {
    fn new(key: &EntityKey, hasher: &KeyHasher) -> Self {
        Self::encode(
            key.0.iter().map(|p| match p {
                KeyPart::Str(s) => PartRef::Str(s),
                KeyPart::Int(i) => PartRef::Int(*i),
            }),
            hasher,
        )
    }

    /// The key of `columns` of `record`, with no [`EntityKey`] built on the way; `None` when a
    /// column is missing or neither a string nor an integer (as [`EntityKey::from_values`]).
    fn of_record(record: &[Value], columns: &[usize], hasher: &KeyHasher) -> Option<Self> {
        let part = |c: &usize| match record.get(*c)? {
            Value::String(s) => Some(PartRef::Str(s)),
            Value::Int(i) => Some(PartRef::Int(*i)),
            _ => None,
        };
        if !columns.iter().all(|c| part(c).is_some()) {
            return None;
        }
        Some(Self::encode(columns.iter().filter_map(part), hasher))
    }

    fn encode<'a>(parts: impl Iterator<Item = PartRef<'a>> + Clone, hasher: &KeyHasher) -> Self {
        let len: usize = parts
            .clone()
            .map(|p| match p {
                PartRef::Str(s) => 5 + s.len(),
                PartRef::Int(_) => 9,
            })
            .sum();
        let fill = |buf: &mut [u8]| {
            let mut at = 0;
            for p in parts {
                match p {
                    PartRef::Str(s) => {
                        // A string longer than 4 GiB cannot arrive (bodies are limited).
                        let n = u32::try_from(s.len()).unwrap_or(u32::MAX);
                        buf[at] = 0;
                        buf[at + 1..at + 5].copy_from_slice(&n.to_le_bytes());
                        buf[at + 5..at + 5 + s.len()].copy_from_slice(s.as_bytes());
                        at += 5 + s.len();
                    }
                    PartRef::Int(i) => {
                        buf[at] = 1;
                        buf[at + 1..at + 9].copy_from_slice(&i.to_le_bytes());
                        at += 9;
                    }
                }
            }
        };
        let bytes = match u8::try_from(len) {
            Ok(short) if len <= INLINE_KEY => {
                let mut buf = [0u8; INLINE_KEY];
                fill(&mut buf[..len]);
                KeyBytes::Inline(short, buf)
            }
            _ => {
                let mut buf = vec![0u8; len];
                fill(&mut buf);
                KeyBytes::Heap(buf.into_boxed_slice())
            }
        };
        let mut key = SlotKey { hash: 0, bytes };
        key.hash = hasher.hash_one(key.bytes());
        key
    }

    fn bytes(&self) -> &[u8] {
        match &self.bytes {
            KeyBytes::Inline(len, buf) => &buf[..usize::from(*len).min(INLINE_KEY)],
            KeyBytes::Heap(b) => b,
        }
    }

    /// Heap bytes of the key (none when inline).
    fn heap(&self) -> usize {
        match &self.bytes {
            KeyBytes::Inline(..) => 0,
            KeyBytes::Heap(b) => b.len(),
        }
    }

    /// The key decoded.
    fn entity_key(&self) -> EntityKey {
        let b = self.bytes();
        let mut parts = Vec::new();
        let mut at = 0;
        while let Some(&tag) = b.get(at) {
            if tag == 0 {
                let n = b
                    .get(at + 1..at + 5)
                    .and_then(|n| <[u8; 4]>::try_from(n).ok())
                    .map_or(0, |n| u32::from_le_bytes(n) as usize);
                let text = b.get(at + 5..at + 5 + n).unwrap_or(&[]);
                parts.push(KeyPart::Str(String::from_utf8_lossy(text).into_owned()));
                at += 5 + n;
            } else {
                let i = b
                    .get(at + 1..at + 9)
                    .and_then(|n| <[u8; 8]>::try_from(n).ok())
                    .map_or(0, i64::from_le_bytes);
                parts.push(KeyPart::Int(i));
                at += 9;
            }
        }
        EntityKey(parts)
    }
}

impl Hash for SlotKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

/// The map's hasher: the key's hash is already computed ([`SlotKey`]).
#[derive(Debug, Default)]
struct Prehashed(u64);

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used; anything else is still hashed, if poorly.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type ShardMap = HashMap<SlotKey, OnlineEntry, BuildHasherDefault<Prehashed>>;

/// The latest row of an attribute view for one entity.
#[derive(Debug, Clone, PartialEq)]
pub struct AttributeRow {
    /// Event time of the row.
    pub ts: i64,
    /// Ingestion sequence number of the record.
    pub seq: u64,
    /// Attribute values, in the view's attribute order.
    pub values: Vec<Value>,
}

/// What the online store holds for one entity of one view.
#[derive(Debug, Clone)]
pub enum OnlineEntry {
    /// An attribute view's latest pushed row.
    Attributes(AttributeRow),
    /// An aggregate view's events, tiled.
    Aggregates(Series),
}

/// What each view keeps, resolved once.
#[derive(Debug, Clone)]
enum Keep {
    /// Aggregates: the spec, and per input whether only `count` reads it (then only whether
    /// the value is null matters, and a unique string need not be stored).
    /// The last field: keep every event ([`Retention::Everything`]).
    Window(SeriesSpec, Vec<bool>, bool),
    /// Attributes: the TTL, if any.
    Ttl(Option<i64>),
}

impl Keep {
    /// Clock time between two sweeps of a shard.
    fn sweep_every(&self) -> i64 {
        let kept = match self {
            Keep::Window(spec, ..) => spec.reach(),
            Keep::Ttl(ttl) => ttl.unwrap_or(i64::MAX),
        };
        (kept / SWEEPS_PER_REACH).max(MIN_SWEEP_EVERY)
    }
}

#[derive(Debug, Default)]
struct Shard {
    entities: ShardMap,
    /// Clock time of the last sweep.
    swept_at: i64,
    /// The sum of [`Size::of`] over `entities`, kept as they change, so that
    /// [`OnlineStore::stats`] costs a few additions per shard, not a walk of every entity.
    size: Size,
}

/// What entries hold, summed ([`OnlineStats`] but the map's own slots).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Size {
    events: usize,
    tiles: usize,
    rows: usize,
    bytes: usize,
}

impl Size {
    /// One entry's share: `O(1)` for an aggregate view (its series keeps its footprint), the
    /// row's values for an attribute view.
    fn of(key: &SlotKey, entry: &OnlineEntry) -> Size {
        let mut size = Size {
            bytes: key.heap(),
            ..Size::default()
        };
        size.add(match entry {
            OnlineEntry::Aggregates(s) => Size::of_series(s),
            OnlineEntry::Attributes(row) => Size::of_row(row),
        });
        size
    }

    fn of_series(s: &Series) -> Size {
        let (tiles, bytes) = s.footprint();
        Size {
            events: s.len(),
            tiles,
            rows: 0,
            bytes,
        }
    }

    fn of_row(row: &AttributeRow) -> Size {
        Size {
            rows: 1,
            bytes: row.values.capacity() * std::mem::size_of::<Value>()
                + row.values.iter().map(value_heap).sum::<usize>(),
            ..Size::default()
        }
    }

    /// Replaces `before` by `after` in this sum.
    fn change(&mut self, before: Size, after: Size) {
        self.sub(before);
        self.add(after);
    }

    fn add(&mut self, other: Size) {
        self.events += other.events;
        self.tiles += other.tiles;
        self.rows += other.rows;
        self.bytes += other.bytes;
    }

    fn sub(&mut self, other: Size) {
        self.events = self.events.saturating_sub(other.events);
        self.tiles = self.tiles.saturating_sub(other.tiles);
        self.rows = self.rows.saturating_sub(other.rows);
        self.bytes = self.bytes.saturating_sub(other.bytes);
    }
}

impl Shard {
    /// Adds a new entity (its [`Size`] joins the shard's).
    fn insert(&mut self, key: SlotKey, entry: OnlineEntry) {
        self.size.add(Size::of(&key, &entry));
        if let Some(old) = self.entities.insert(key.clone(), entry) {
            self.size.sub(Size::of(&key, &old));
        }
    }

    /// Removes an entity.
    fn remove(&mut self, key: &SlotKey) {
        if let Some(old) = self.entities.remove(key) {
            self.size.sub(Size::of(key, &old));
        }
    }

    /// Sweeps the shard when due: every entity's unservable events or expired row go.
    fn maybe_sweep(&mut self, keep: &Keep, now: i64) {
        if now.saturating_sub(self.swept_at) < keep.sweep_every() {
            return;
        }
        self.sweep(keep, now);
    }

    fn sweep(&mut self, keep: &Keep, now: i64) {
        self.swept_at = now;
        match keep {
            Keep::Window(_, _, true) => {}
            Keep::Window(spec, ..) => {
                let horizon = spec.horizon(now);
                let size = &mut self.size;
                self.entities.retain(|k, e| match e {
                    OnlineEntry::Aggregates(s) => {
                        if s.first_ts().is_none_or(|ts| ts >= horizon) {
                            return true;
                        }
                        size.sub(Size::of(k, e));
                        if let OnlineEntry::Aggregates(s) = e {
                            s.evict_before(spec, horizon);
                        }
                        let keep = matches!(e, OnlineEntry::Aggregates(s) if !s.is_empty());
                        if keep {
                            size.add(Size::of(k, e));
                        }
                        keep
                    }
                    OnlineEntry::Attributes(_) => true,
                });
            }
            Keep::Ttl(Some(ttl)) => {
                let size = &mut self.size;
                self.entities.retain(|k, e| {
                    let keep = match e {
                        OnlineEntry::Attributes(row) => servable(row.ts, *ttl, now),
                        OnlineEntry::Aggregates(_) => true,
                    };
                    if !keep {
                        size.sub(Size::of(k, e));
                    }
                    keep
                });
            }
            Keep::Ttl(None) => {}
        }
    }
}

/// The serving rule of an attribute row: visible while `now < ts + ttl`.
fn servable(ts: i64, ttl: i64, now: i64) -> bool {
    now < ts.saturating_add(ttl)
}

impl OnlineStats {
    /// Adds one shard: its kept sums, its entities and its map's slots (one control byte
    /// each, and the entry).
    fn add_shard(&mut self, entities: &ShardMap, size: Size) {
        self.entities += entities.len();
        self.events += size.events;
        self.tiles += size.tiles;
        self.rows += size.rows;
        self.estimated_bytes +=
            size.bytes + entities.capacity() * (std::mem::size_of::<(SlotKey, OnlineEntry)>() + 1);
    }
}

/// Sizes of the online store, for `/_mock/health`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct OnlineStats {
    /// Entities stored, summed over views.
    pub entities: usize,
    /// Events stored in aggregate views.
    pub events: usize,
    /// Fine tiles stored in aggregate views.
    pub tiles: usize,
    /// Attribute rows stored.
    pub rows: usize,
    /// Estimated heap bytes of everything above (keys, events, values, partials, rows, maps).
    pub estimated_bytes: usize,
}

/// The online store of one mock instance: per feature view, a sharded map of entities.
#[derive(Debug)]
pub struct OnlineStore {
    views: Vec<Vec<RwLock<Shard>>>,
    keep: Vec<Keep>,
    hasher: KeyHasher,
}

impl OnlineStore {
    /// An empty store for the repository's feature views.
    pub fn new(repo: &Repository, retention: Retention) -> Self {
        let everything = retention == Retention::Everything;
        let hasher = KeyHasher::default();
        OnlineStore {
            views: repo
                .feature_views
                .iter()
                .map(|_| (0..SHARDS).map(|_| RwLock::new(Shard::default())).collect())
                .collect(),
            keep: repo
                .feature_views
                .iter()
                .map(|v| match v.series_spec() {
                    Some(spec) => {
                        let count_only = (0..spec.input_count())
                            .map(|i| {
                                spec.aggregations
                                    .iter()
                                    .filter(|a| a.input == i)
                                    .all(|a| a.function == crate::engine::AggregateFunction::Count)
                            })
                            .collect();
                        Keep::Window(spec, count_only, everything)
                    }
                    None => Keep::Ttl(v.ttl().filter(|_| !everything)),
                })
                .collect(),
            hasher,
        }
    }

    fn slot_key(&self, key: &EntityKey) -> SlotKey {
        SlotKey::new(key, &self.hasher)
    }

    /// The store's key for `key`.
    pub fn key(&self, key: &EntityKey) -> StoreKey {
        StoreKey(self.slot_key(key))
    }

    /// The store's key for the join keys in `columns` of `record` (values in source-schema
    /// order), built without allocating for short keys; `None` when a join key is missing or
    /// neither a string nor an integer.
    pub fn record_key(&self, record: &[Value], columns: &[usize]) -> Option<StoreKey> {
        SlotKey::of_record(record, columns, &self.hasher).map(StoreKey)
    }

    fn shard_index(key: &SlotKey) -> usize {
        // Middle bits: the map inside the shard uses the low ones for the bucket and the top
        // seven for its control bytes.
        (key.hash >> 32) as usize % SHARDS
    }

    fn read(&self, view: usize, key: &SlotKey) -> Option<RwLockReadGuard<'_, Shard>> {
        let shard = self.views.get(view)?.get(Self::shard_index(key))?;
        Some(shard.read().unwrap_or_else(|p| p.into_inner()))
    }

    fn write(&self, view: usize, key: &SlotKey) -> Option<RwLockWriteGuard<'_, Shard>> {
        let shard = self.views.get(view)?.get(Self::shard_index(key))?;
        Some(shard.write().unwrap_or_else(|p| p.into_inner()))
    }

    /// Per input of an aggregate view, whether only `count` reads it: such an input is stored
    /// as a marker of its null-ness, not its value (empty for an attribute view).
    pub fn counted_only(&self, view: usize) -> &[bool] {
        match self.keep.get(view) {
            Some(Keep::Window(_, count_only, _)) => count_only,
            _ => &[],
        }
    }

    /// The aggregation spec of an aggregate view.
    pub fn spec(&self, view: usize) -> Option<&SeriesSpec> {
        match self.keep.get(view)? {
            Keep::Window(spec, ..) => Some(spec),
            Keep::Ttl(_) => None,
        }
    }

    /// Writes an attribute row at clock time `now`: attribute `i` is `record[columns[i]]` (a
    /// missing one reads as null). The most recently *pushed* row wins even when its event time
    /// is older: that is Tecton's documented overwrite rule, and how a reordering sink creates
    /// skew. A row the TTL no longer serves at `now` is not kept (the entity then serves
    /// nothing, as it would with the row stored).
    #[allow(clippy::too_many_arguments)]
    pub fn put_attributes(
        &self,
        view: usize,
        key: &StoreKey,
        ts: i64,
        seq: u64,
        record: &[Value],
        columns: &[usize],
        now: i64,
    ) {
        let Some(keep) = self.keep.get(view) else {
            return;
        };
        let key = &key.0;
        let Some(mut shard) = self.write(view, key) else {
            return;
        };
        let value = |c: &usize| record.get(*c).cloned().unwrap_or(Value::Null);
        match keep {
            Keep::Ttl(Some(ttl)) if !servable(ts, *ttl, now) => {
                shard.remove(key);
            }
            _ => match shard.entities.get_mut(key) {
                // Overwritten in place: the row's vector and strings are reused.
                Some(OnlineEntry::Attributes(row)) if row.values.len() == columns.len() => {
                    let before = Size::of_row(row);
                    row.ts = ts;
                    row.seq = seq;
                    for (dst, c) in row.values.iter_mut().zip(columns) {
                        match (dst, record.get(*c)) {
                            (Value::String(d), Some(Value::String(s))) => d.clone_from(s),
                            (dst, src) => *dst = src.cloned().unwrap_or(Value::Null),
                        }
                    }
                    let after = Size::of_row(row);
                    shard.size.change(before, after);
                }
                _ => {
                    let row = AttributeRow {
                        ts,
                        seq,
                        values: columns.iter().map(value).collect(),
                    };
                    shard.insert(key.clone(), OnlineEntry::Attributes(row));
                }
            },
        }
        shard.maybe_sweep(keep, now);
    }

    /// Adds an event to an aggregate view at clock time `now`: input `i` of the view is
    /// `record[columns[i]]` (a missing one reads as null). An event with the same entity and
    /// timestamp replaces the stored one (last write wins). An event no window can reach at
    /// `now` any more is not kept; returns whether it was.
    #[allow(clippy::too_many_arguments)]
    pub fn put_event(
        &self,
        view: usize,
        key: &StoreKey,
        ts: i64,
        seq: u64,
        record: &[Value],
        columns: &[usize],
        now: i64,
    ) -> bool {
        let Some(keep @ Keep::Window(spec, count_only, everything)) = self.keep.get(view) else {
            return false;
        };
        let key = &key.0;
        let Some(mut shard) = self.write(view, key) else {
            return false;
        };
        let kept = *everything || ts >= spec.horizon(now);
        if kept {
            // Straight from the record into the tile's packed rows: nothing allocated per event.
            insert_event(&mut shard, spec, key, |series| {
                series.insert_record(
                    spec,
                    ts,
                    seq,
                    record,
                    columns,
                    count_only,
                    SameTimestamp::Replace,
                );
            });
        }
        shard.maybe_sweep(keep, now);
        kept
    }

    /// Adds an event given as the view's inputs, with an explicit rule for a stored event with
    /// the same entity and timestamp (a stream's TIME_INTERVAL tiles keep both; CONTINUOUS rows
    /// replace), at clock time `now`. Otherwise as [`OnlineStore::put_event`].
    #[allow(clippy::too_many_arguments)]
    pub fn put_event_with(
        &self,
        view: usize,
        key: EntityKey,
        ts: i64,
        seq: u64,
        mut values: Vec<Value>,
        same_ts: SameTimestamp,
        now: i64,
    ) -> bool {
        let Some(keep @ Keep::Window(spec, count_only, everything)) = self.keep.get(view) else {
            return false;
        };
        let key = self.slot_key(&key);
        let Some(mut shard) = self.write(view, &key) else {
            return false;
        };
        let kept = *everything || ts >= spec.horizon(now);
        if kept {
            for (v, &only_counted) in values.iter_mut().zip(count_only) {
                if only_counted && !v.is_null() {
                    *v = Value::Bool(true);
                }
            }
            insert_event(&mut shard, spec, &key, |series| {
                series.insert_values(spec, ts, seq, &values, same_ts);
            });
        }
        shard.maybe_sweep(keep, now);
        kept
    }

    /// Batch precedence for an aggregate view: replaces one entity's events stamped in
    /// `[start, end)` by `events` (`(ts, seq, view inputs)`, every one kept, like the batch
    /// source's rows), at clock time `now`; its events outside the interval stay. Returns how
    /// many of `events` the store kept (what no window can reach at `now` is not).
    #[allow(clippy::too_many_arguments)]
    pub fn replace_events(
        &self,
        view: usize,
        key: &EntityKey,
        start: i64,
        end: i64,
        events: Vec<(i64, u64, Vec<Value>)>,
        now: i64,
    ) -> usize {
        let Some(keep @ Keep::Window(spec, count_only, everything)) = self.keep.get(view) else {
            return 0;
        };
        let key = &self.slot_key(key);
        let Some(mut shard) = self.write(view, key) else {
            return 0;
        };
        let shard = &mut *shard;
        if let Some(OnlineEntry::Aggregates(series)) = shard.entities.get_mut(key) {
            if series.events().any(|(ts, _, _)| start <= ts && ts < end) {
                let before = Size::of_series(series);
                // A series has no removal: rebuild it from the events that stay.
                let mut kept = Series::new(spec);
                for (ts, seq, values) in series.events() {
                    if ts < start || ts >= end {
                        kept.insert(spec, ts, seq, values, SameTimestamp::Keep);
                    }
                }
                *series = kept;
                shard.size.change(before, Size::of_series(series));
            }
        }
        let horizon = if *everything {
            i64::MIN
        } else {
            spec.horizon(now)
        };
        let mut stored = 0;
        for (ts, seq, mut values) in events {
            if ts < horizon {
                continue;
            }
            for (v, &only_counted) in values.iter_mut().zip(count_only) {
                if only_counted && !v.is_null() {
                    *v = Value::Bool(true);
                }
            }
            insert_event(shard, spec, key, |series| {
                series.insert_values(spec, ts, seq, &values, SameTimestamp::Keep);
            });
            stored += 1;
        }
        if matches!(shard.entities.get(key), Some(OnlineEntry::Aggregates(s)) if s.is_empty()) {
            shard.remove(key);
        }
        shard.maybe_sweep(keep, now);
        stored
    }

    /// Evaluates one entity's aggregate features at `t` without copying its events: one value
    /// per aggregation in declaration order, or `None` when the entity has no events.
    pub fn evaluate(&self, view: usize, key: &EntityKey, t: i64) -> Option<Vec<Value>> {
        let spec = self.spec(view)?;
        let key = &self.slot_key(key);
        match self.read(view, key)?.entities.get(key)? {
            OnlineEntry::Aggregates(series) => Some(series.evaluate(spec, t)),
            OnlineEntry::Attributes(_) => None,
        }
    }

    /// A copy of one entity's entry.
    pub fn get(&self, view: usize, key: &EntityKey) -> Option<OnlineEntry> {
        let key = &self.slot_key(key);
        self.read(view, key)?.entities.get(key).cloned()
    }

    /// Every entity of a view, sorted by key (for dumps).
    pub fn dump(&self, view: usize) -> Vec<(EntityKey, OnlineEntry)> {
        let mut out = Vec::new();
        for shard in self.views.get(view).into_iter().flatten() {
            let shard = shard.read().unwrap_or_else(|p| p.into_inner());
            out.extend(
                shard
                    .entities
                    .iter()
                    .map(|(k, e)| (k.entity_key(), e.clone())),
            );
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Number of entities stored for a view.
    pub fn len(&self, view: usize) -> usize {
        self.views.get(view).map_or(0, |shards| {
            shards
                .iter()
                .map(|s| s.read().unwrap_or_else(|p| p.into_inner()).entities.len())
                .sum()
        })
    }

    /// Drops everything no request at `now` or later can read, in every shard of every view.
    /// The write path does this incrementally; this is for callers that move the clock and
    /// want the store trimmed at once (tests, the end of a simulated interval).
    pub fn evict(&self, now: i64) {
        for (shards, keep) in self.views.iter().zip(&self.keep) {
            for shard in shards {
                shard
                    .write()
                    .unwrap_or_else(|p| p.into_inner())
                    .sweep(keep, now);
            }
        }
    }

    /// Sizes of the store: a few additions per shard (each shard keeps its sums as it
    /// changes, and is locked for reading briefly), so `/_mock/health` costs the same with
    /// millions of events stored.
    pub fn stats(&self) -> OnlineStats {
        let mut st = OnlineStats::default();
        for shard in self.views.iter().flatten() {
            let shard = shard.read().unwrap_or_else(|p| p.into_inner());
            st.add_shard(&shard.entities, shard.size);
        }
        st
    }

    /// [`OnlineStore::stats`] by walking every entity (tests check the kept sums against it).
    #[cfg(test)]
    fn walked_stats(&self) -> OnlineStats {
        let mut st = OnlineStats::default();
        for shard in self.views.iter().flatten() {
            let shard = shard.read().unwrap_or_else(|p| p.into_inner());
            let mut size = Size::default();
            for (k, e) in &shard.entities {
                size.add(Size::of(k, e));
            }
            st.add_shard(&shard.entities, size);
        }
        st
    }

    /// Empties every view.
    pub fn clear(&self) {
        for shard in self.views.iter().flatten() {
            let mut shard = shard.write().unwrap_or_else(|p| p.into_inner());
            shard.entities.clear();
            shard.size = Size::default();
        }
    }
}

/// Inserts an event into an entity's series with `insert`, creating the series for a new
/// entity.
fn insert_event(
    shard: &mut Shard,
    spec: &SeriesSpec,
    key: &SlotKey,
    insert: impl FnOnce(&mut Series),
) {
    match shard.entities.get_mut(key) {
        Some(OnlineEntry::Aggregates(series)) => {
            let before = Size::of_series(series);
            insert(series);
            shard.size.change(before, Size::of_series(series));
        }
        Some(OnlineEntry::Attributes(_)) => {}
        None => {
            let mut series = Series::new(spec);
            insert(&mut series);
            shard.insert(key.clone(), OnlineEntry::Aggregates(series));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const HOUR: i64 = 3_600_000_000_000;
    /// 2024-06-01T00:00:00Z.
    const NOW: i64 = 1_717_200_000_000_000_000;

    /// One write to the demo's views, or the clock moving.
    #[derive(Debug, Clone)]
    enum Op {
        /// A transaction of user `u`, `age` hours before the clock, amount `amt` (null when
        /// negative), merchant `m`.
        Event {
            u: u8,
            age: i64,
            amt: i64,
            m: u8,
        },
        /// Batch precedence over `[clock − age h, clock − age h + 1 h)` for user `u`.
        Replace {
            u: u8,
            age: i64,
            n: u8,
        },
        /// The clock moves by `h` hours and the store is swept.
        Advance {
            h: i64,
        },
        Clear,
    }

    fn arb_op() -> impl Strategy<Value = Op> {
        prop_oneof![
            8 => (0u8..6, 0i64..100, -2i64..50, 0u8..4)
                .prop_map(|(u, age, amt, m)| Op::Event { u, age, amt, m }),
            1 => (0u8..6, 0i64..100, 0u8..4).prop_map(|(u, age, n)| Op::Replace { u, age, n }),
            1 => (0i64..30).prop_map(|h| Op::Advance { h }),
            1 => Just(Op::Clear),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// The sums each shard keeps (what `/_mock/health` reads) equal a walk of every entity
        /// after any sequence of writes, replacements, sweeps and clears.
        #[test]
        fn kept_stats_equal_a_walk(ops in prop::collection::vec(arb_op(), 1..120)) {
            let repo = Repository::demo();
            let store = OnlineStore::new(&repo, Retention::Servable);
            let plan = crate::ingest::IngestPlan::new(&repo);
            let mut now = NOW;
            for (seq, op) in ops.iter().enumerate() {
                let seq = seq as u64;
                match *op {
                    Op::Event { u, age, amt, m } => {
                        let amt = if amt < 0 { Value::Null } else { Value::Float(amt as f64 + 0.5) };
                        let record = vec![
                            Value::String(format!("user_{u}")),
                            Value::String(format!("t{seq}")),
                            Value::String(format!("merchant_{m}")),
                            amt,
                            Value::Int(0),
                            Value::Timestamp(now - age * HOUR),
                        ];
                        for sub in plan.subscriptions(0) {
                            sub.apply_online(&store, now - age * HOUR, seq, &record, now);
                        }
                    }
                    Op::Replace { u, age, n } => {
                        let key = EntityKey(vec![KeyPart::Str(format!("user_{u}"))]);
                        let start = now - age * HOUR;
                        for view in 0..repo.feature_views.len() {
                            let Some(spec) = store.spec(view) else { continue };
                            let width = spec.input_count();
                            let events = (0..i64::from(n))
                                .map(|i| (start + i * 60_000_000_000, seq, vec![Value::Float(1.0); width]))
                                .collect();
                            store.replace_events(view, &key, start, start + HOUR, events, now);
                        }
                    }
                    Op::Advance { h } => {
                        now += h * HOUR;
                        store.evict(now);
                    }
                    Op::Clear => store.clear(),
                }
                prop_assert_eq!(store.stats(), store.walked_stats(), "after {:?}", op);
            }
        }
    }

    #[test]
    fn slot_keys_decode_to_the_key_inline_or_not_and_differ_when_keys_do() {
        let hasher = KeyHasher::default();
        let keys = [
            EntityKey(vec![KeyPart::Str("user_1".into())]),
            EntityKey(vec![KeyPart::Str(String::new())]),
            EntityKey(vec![KeyPart::Str("a-much-longer-user-id-than-fits".into())]),
            EntityKey(vec![KeyPart::Int(-7), KeyPart::Int(i64::MAX)]),
            EntityKey(vec![KeyPart::Str("u".into()), KeyPart::Int(3)]),
            EntityKey(vec![KeyPart::Str("u\u{3}".into())]),
            EntityKey(vec![KeyPart::Str("é".into()), KeyPart::Str("x".into())]),
        ];
        let slots: Vec<SlotKey> = keys.iter().map(|k| SlotKey::new(k, &hasher)).collect();
        assert!(matches!(slots[0].bytes, KeyBytes::Inline(..)));
        assert!(matches!(slots[2].bytes, KeyBytes::Heap(_)));
        for (k, s) in keys.iter().zip(&slots) {
            assert_eq!(&s.entity_key(), k);
            assert_eq!(s, &SlotKey::new(k, &hasher), "encoding is deterministic");
        }
        for (i, a) in slots.iter().enumerate() {
            for b in &slots[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }
}
