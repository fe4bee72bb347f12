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
use std::hash::BuildHasherDefault;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use serde::Serialize;

use super::key::{KeyHasher, Prehashed, SlotKey};
use super::EntityKey;
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

/// One shard's entities: series for an aggregate view, rows for an attribute view. A map per
/// kind, not one of [`OnlineEntry`]: a series is several hundred bytes inline (its newest
/// tiles live in it), and every attribute row's slot would pay for that.
type ShardMap<E> = HashMap<SlotKey, E, BuildHasherDefault<Prehashed>>;

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

/// What the online store holds for one entity of one view, as copied out of it (the store
/// keeps series and rows in maps of their own).
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)] // A copy handed out, never held in bulk by the store.
pub enum OnlineEntry {
    /// An attribute view's latest pushed row.
    Attributes(AttributeRow),
    /// An aggregate view's events, tiled.
    Aggregates(Series),
}

/// One view's shards, with what the view keeps, resolved once.
#[derive(Debug)]
enum ViewStore {
    /// An aggregate view: its spec, per input whether only `count` reads it (then only whether
    /// the value is null matters, and a unique string need not be stored), and whether every
    /// event is kept ([`Retention::Everything`]).
    Aggregates {
        shards: Vec<RwLock<Shard<Series>>>,
        spec: SeriesSpec,
        count_only: Vec<bool>,
        everything: bool,
    },
    /// An attribute view and its TTL, if rows expire.
    Attributes {
        shards: Vec<RwLock<Shard<AttributeRow>>>,
        ttl: Option<i64>,
    },
}

/// Clock time between two sweeps of a shard of a view that keeps `kept` nanoseconds.
fn sweep_every(kept: i64) -> i64 {
    (kept / SWEEPS_PER_REACH).max(MIN_SWEEP_EVERY)
}

#[derive(Debug)]
struct Shard<E> {
    entities: ShardMap<E>,
    /// Clock time of the last sweep.
    swept_at: i64,
    /// The sum of [`Entry::size`] over `entities`, kept as they change, so that
    /// [`OnlineStore::stats`] costs a few additions per shard, not a walk of every entity.
    size: Size,
}

impl<E> Default for Shard<E> {
    fn default() -> Self {
        Shard {
            entities: ShardMap::default(),
            swept_at: 0,
            size: Size::default(),
        }
    }
}

/// What one entity of a view holds.
trait Entry: Clone {
    /// Its share of the store's sizes: `O(1)` for a series (it keeps its footprint), the
    /// values for a row.
    fn size(&self) -> Size;

    /// As the public [`OnlineEntry`].
    fn to_entry(&self) -> OnlineEntry;
}

impl Entry for Series {
    fn size(&self) -> Size {
        let (tiles, bytes) = self.footprint();
        Size {
            events: self.len(),
            tiles,
            rows: 0,
            bytes,
        }
    }

    fn to_entry(&self) -> OnlineEntry {
        OnlineEntry::Aggregates(self.clone())
    }
}

impl Entry for AttributeRow {
    fn size(&self) -> Size {
        Size {
            rows: 1,
            bytes: self.values.capacity() * std::mem::size_of::<Value>()
                + self.values.iter().map(value_heap).sum::<usize>(),
            ..Size::default()
        }
    }

    fn to_entry(&self) -> OnlineEntry {
        OnlineEntry::Attributes(self.clone())
    }
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
    /// One entity's share: its key's heap bytes and its entry's.
    fn of<E: Entry>(key: &SlotKey, entry: &E) -> Size {
        let mut size = Size {
            bytes: key.heap(),
            ..Size::default()
        };
        size.add(entry.size());
        size
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

impl<E: Entry> Shard<E> {
    /// Adds a new entity (its [`Size`] joins the shard's).
    fn insert(&mut self, key: SlotKey, entry: E) {
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

    /// Whether a sweep is due at `now` for a view that keeps `kept` nanoseconds.
    fn sweep_due(&self, kept: i64, now: i64) -> bool {
        now.saturating_sub(self.swept_at) >= sweep_every(kept)
    }
}

impl Shard<Series> {
    /// Sweeps the shard when due: every entity's unservable events go.
    fn maybe_sweep(&mut self, spec: &SeriesSpec, everything: bool, now: i64) {
        if self.sweep_due(spec.reach(), now) {
            self.sweep(spec, everything, now);
        }
    }

    fn sweep(&mut self, spec: &SeriesSpec, everything: bool, now: i64) {
        self.swept_at = now;
        if everything {
            return;
        }
        let horizon = spec.horizon(now);
        let size = &mut self.size;
        self.entities.retain(|k, s| {
            if s.first_ts().is_none_or(|ts| ts >= horizon) {
                return true;
            }
            size.sub(Size::of(k, s));
            s.evict_before(spec, horizon);
            let keep = !s.is_empty();
            if keep {
                size.add(Size::of(k, s));
            }
            keep
        });
    }
}

impl Shard<AttributeRow> {
    /// Sweeps the shard when due: every expired row goes.
    fn maybe_sweep(&mut self, ttl: Option<i64>, now: i64) {
        if self.sweep_due(ttl.unwrap_or(i64::MAX), now) {
            self.sweep(ttl, now);
        }
    }

    fn sweep(&mut self, ttl: Option<i64>, now: i64) {
        self.swept_at = now;
        let Some(ttl) = ttl else {
            return;
        };
        let size = &mut self.size;
        self.entities.retain(|k, row| {
            let keep = servable(row.ts, ttl, now);
            if !keep {
                size.sub(Size::of(k, row));
            }
            keep
        });
    }
}

/// The serving rule of an attribute row: visible while `now < ts + ttl`.
fn servable(ts: i64, ttl: i64, now: i64) -> bool {
    now < ts.saturating_add(ttl)
}

impl OnlineStats {
    /// Adds one shard: its kept sums, its entities and its map's slots (one control byte
    /// each, and the entry).
    fn add_shard<E>(&mut self, entities: &ShardMap<E>, size: Size) {
        self.entities += entities.len();
        self.events += size.events;
        self.tiles += size.tiles;
        self.rows += size.rows;
        self.estimated_bytes +=
            size.bytes + entities.capacity() * (std::mem::size_of::<(SlotKey, E)>() + 1);
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
    views: Vec<ViewStore>,
    hasher: KeyHasher,
}

/// An aggregate view's parts: shards, spec, count-only inputs, whether every event is kept.
type AggregateView<'a> = (
    &'a [RwLock<Shard<Series>>],
    &'a SeriesSpec,
    &'a [bool],
    bool,
);

fn shards<E>() -> Vec<RwLock<Shard<E>>> {
    (0..SHARDS).map(|_| RwLock::new(Shard::default())).collect()
}

fn lock_read<E>(shard: &RwLock<Shard<E>>) -> RwLockReadGuard<'_, Shard<E>> {
    shard.read().unwrap_or_else(|p| p.into_inner())
}

fn lock_write<E>(shard: &RwLock<Shard<E>>) -> RwLockWriteGuard<'_, Shard<E>> {
    shard.write().unwrap_or_else(|p| p.into_inner())
}

/// The shard of `key`.
fn shard_of<'a, E>(shards: &'a [RwLock<Shard<E>>], key: &SlotKey) -> Option<&'a RwLock<Shard<E>>> {
    // Middle bits: the map inside the shard uses the low ones for the bucket and the top
    // seven for its control bytes.
    shards.get((key.hash >> 32) as usize % SHARDS)
}

/// Every entity of some shards as public entries.
fn dump_shards<E: Entry>(shards: &[RwLock<Shard<E>>], out: &mut Vec<(EntityKey, OnlineEntry)>) {
    for shard in shards {
        let shard = lock_read(shard);
        out.extend(
            shard
                .entities
                .iter()
                .map(|(k, e)| (k.entity_key(), e.to_entry())),
        );
    }
}

impl OnlineStore {
    /// An empty store for the repository's feature views.
    pub fn new(repo: &Repository, retention: Retention) -> Self {
        let everything = retention == Retention::Everything;
        let views = repo
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
                    ViewStore::Aggregates {
                        shards: shards(),
                        spec,
                        count_only,
                        everything,
                    }
                }
                None => ViewStore::Attributes {
                    shards: shards(),
                    ttl: v.ttl().filter(|_| !everything),
                },
            })
            .collect();
        OnlineStore {
            views,
            hasher: KeyHasher::default(),
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

    /// An aggregate view's shards, spec, count-only inputs and retention.
    fn aggregates(&self, view: usize) -> Option<AggregateView<'_>> {
        match self.views.get(view)? {
            ViewStore::Aggregates {
                shards,
                spec,
                count_only,
                everything,
            } => Some((shards, spec, count_only, *everything)),
            ViewStore::Attributes { .. } => None,
        }
    }

    /// Per input of an aggregate view, whether only `count` reads it: such an input is stored
    /// as a marker of its null-ness, not its value (empty for an attribute view).
    pub fn counted_only(&self, view: usize) -> &[bool] {
        self.aggregates(view).map_or(&[], |(_, _, c, _)| c)
    }

    /// The aggregation spec of an aggregate view.
    pub fn spec(&self, view: usize) -> Option<&SeriesSpec> {
        self.aggregates(view).map(|(_, spec, _, _)| spec)
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
        let Some(ViewStore::Attributes { shards, ttl }) = self.views.get(view) else {
            return;
        };
        let key = &key.0;
        let Some(mut shard) = shard_of(shards, key).map(lock_write) else {
            return;
        };
        let value = |c: &usize| record.get(*c).cloned().unwrap_or(Value::Null);
        match ttl {
            Some(ttl) if !servable(ts, *ttl, now) => {
                shard.remove(key);
            }
            _ => match shard.entities.get_mut(key) {
                // Overwritten in place: the row's vector and strings are reused.
                Some(row) if row.values.len() == columns.len() => {
                    let before = row.size();
                    row.ts = ts;
                    row.seq = seq;
                    for (dst, c) in row.values.iter_mut().zip(columns) {
                        match (dst, record.get(*c)) {
                            (Value::String(d), Some(Value::String(s))) => d.clone_from(s),
                            (dst, src) => *dst = src.cloned().unwrap_or(Value::Null),
                        }
                    }
                    let after = row.size();
                    shard.size.change(before, after);
                }
                _ => {
                    let row = AttributeRow {
                        ts,
                        seq,
                        values: columns.iter().map(value).collect(),
                    };
                    shard.insert(key.clone(), row);
                }
            },
        }
        shard.maybe_sweep(*ttl, now);
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
        let Some((shards, spec, count_only, everything)) = self.aggregates(view) else {
            return false;
        };
        let key = &key.0;
        let Some(mut shard) = shard_of(shards, key).map(lock_write) else {
            return false;
        };
        let kept = everything || ts >= spec.horizon(now);
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
        shard.maybe_sweep(spec, everything, now);
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
        let Some((shards, spec, count_only, everything)) = self.aggregates(view) else {
            return false;
        };
        let key = self.slot_key(&key);
        let Some(mut shard) = shard_of(shards, &key).map(lock_write) else {
            return false;
        };
        let kept = everything || ts >= spec.horizon(now);
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
        shard.maybe_sweep(spec, everything, now);
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
        let Some((shards, spec, count_only, everything)) = self.aggregates(view) else {
            return 0;
        };
        let key = &self.slot_key(key);
        let Some(mut shard) = shard_of(shards, key).map(lock_write) else {
            return 0;
        };
        let shard = &mut *shard;
        if let Some(series) = shard.entities.get_mut(key) {
            if series.events().any(|(ts, _, _)| start <= ts && ts < end) {
                let before = series.size();
                // A series has no removal: rebuild it from the events that stay.
                let mut kept = Series::new(spec);
                for (ts, seq, values) in series.events() {
                    if ts < start || ts >= end {
                        kept.insert(spec, ts, seq, values, SameTimestamp::Keep);
                    }
                }
                *series = kept;
                shard.size.change(before, series.size());
            }
        }
        let horizon = if everything {
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
        if shard.entities.get(key).is_some_and(Series::is_empty) {
            shard.remove(key);
        }
        shard.maybe_sweep(spec, everything, now);
        stored
    }

    /// Evaluates one entity's aggregate features at `t` without copying its events: one value
    /// per aggregation in declaration order, or `None` when the entity has no events.
    pub fn evaluate(&self, view: usize, key: &EntityKey, t: i64) -> Option<Vec<Value>> {
        let (shards, spec, _, _) = self.aggregates(view)?;
        let key = &self.slot_key(key);
        let shard = lock_read(shard_of(shards, key)?);
        Some(shard.entities.get(key)?.evaluate(spec, t))
    }

    /// A copy of one entity's entry.
    pub fn get(&self, view: usize, key: &EntityKey) -> Option<OnlineEntry> {
        let key = &self.slot_key(key);
        match self.views.get(view)? {
            ViewStore::Aggregates { shards, .. } => lock_read(shard_of(shards, key)?)
                .entities
                .get(key)
                .map(Entry::to_entry),
            ViewStore::Attributes { shards, .. } => lock_read(shard_of(shards, key)?)
                .entities
                .get(key)
                .map(Entry::to_entry),
        }
    }

    /// Every entity of a view, sorted by key (for dumps).
    pub fn dump(&self, view: usize) -> Vec<(EntityKey, OnlineEntry)> {
        let mut out = Vec::new();
        match self.views.get(view) {
            Some(ViewStore::Aggregates { shards, .. }) => dump_shards(shards, &mut out),
            Some(ViewStore::Attributes { shards, .. }) => dump_shards(shards, &mut out),
            None => {}
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Number of entities stored for a view.
    pub fn len(&self, view: usize) -> usize {
        fn count<E>(shards: &[RwLock<Shard<E>>]) -> usize {
            shards.iter().map(|s| lock_read(s).entities.len()).sum()
        }
        match self.views.get(view) {
            Some(ViewStore::Aggregates { shards, .. }) => count(shards),
            Some(ViewStore::Attributes { shards, .. }) => count(shards),
            None => 0,
        }
    }

    /// Drops everything no request at `now` or later can read, in every shard of every view.
    /// The write path does this incrementally; this is for callers that move the clock and
    /// want the store trimmed at once (tests, the end of a simulated interval).
    pub fn evict(&self, now: i64) {
        for view in &self.views {
            match view {
                ViewStore::Aggregates {
                    shards,
                    spec,
                    everything,
                    ..
                } => shards
                    .iter()
                    .for_each(|s| lock_write(s).sweep(spec, *everything, now)),
                ViewStore::Attributes { shards, ttl } => {
                    shards.iter().for_each(|s| lock_write(s).sweep(*ttl, now));
                }
            }
        }
    }

    /// Sizes of the store: a few additions per shard (each shard keeps its sums as it
    /// changes, and is locked for reading briefly), so `/_mock/health` costs the same with
    /// millions of events stored.
    pub fn stats(&self) -> OnlineStats {
        fn add<E>(st: &mut OnlineStats, shards: &[RwLock<Shard<E>>]) {
            for shard in shards {
                let shard = lock_read(shard);
                st.add_shard(&shard.entities, shard.size);
            }
        }
        let mut st = OnlineStats::default();
        for view in &self.views {
            match view {
                ViewStore::Aggregates { shards, .. } => add(&mut st, shards),
                ViewStore::Attributes { shards, .. } => add(&mut st, shards),
            }
        }
        st
    }

    /// [`OnlineStore::stats`] by walking every entity (tests check the kept sums against it).
    #[cfg(test)]
    fn walked_stats(&self) -> OnlineStats {
        fn add<E: Entry>(st: &mut OnlineStats, shards: &[RwLock<Shard<E>>]) {
            for shard in shards {
                let shard = lock_read(shard);
                let mut size = Size::default();
                for (k, e) in &shard.entities {
                    size.add(Size::of(k, e));
                }
                st.add_shard(&shard.entities, size);
            }
        }
        let mut st = OnlineStats::default();
        for view in &self.views {
            match view {
                ViewStore::Aggregates { shards, .. } => add(&mut st, shards),
                ViewStore::Attributes { shards, .. } => add(&mut st, shards),
            }
        }
        st
    }

    /// Empties every view.
    pub fn clear(&self) {
        fn empty<E>(shards: &[RwLock<Shard<E>>]) {
            for shard in shards {
                let mut shard = lock_write(shard);
                shard.entities.clear();
                shard.size = Size::default();
            }
        }
        for view in &self.views {
            match view {
                ViewStore::Aggregates { shards, .. } => empty(shards),
                ViewStore::Attributes { shards, .. } => empty(shards),
            }
        }
    }
}

/// Inserts an event into an entity's series with `insert`, creating the series for a new
/// entity.
fn insert_event(
    shard: &mut Shard<Series>,
    spec: &SeriesSpec,
    key: &SlotKey,
    insert: impl FnOnce(&mut Series),
) {
    match shard.entities.get_mut(key) {
        Some(series) => {
            let before = series.size();
            insert(series);
            shard.size.change(before, series.size());
        }
        None => {
            let mut series = Series::new(spec);
            insert(&mut series);
            shard.insert(key.clone(), series);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::KeyPart;
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
                            Value::String(format!("user_{u}").into()),
                            Value::String(format!("t{seq}").into()),
                            Value::String(format!("merchant_{m}").into()),
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
}
