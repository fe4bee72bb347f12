//! The online store: per feature view, per entity, what the feature server needs.

use dashmap::DashMap;

use super::EntityKey;
use crate::engine::{SameTimestamp, Series, SeriesSpec};
use crate::repo::Repository;
use crate::schema::Value;

const SHARDS: usize = 64;

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

/// The online store of one mock instance: one concurrent map per feature view.
#[derive(Debug)]
pub struct OnlineStore {
    views: Vec<DashMap<EntityKey, OnlineEntry>>,
    specs: Vec<Option<SeriesSpec>>,
}

impl OnlineStore {
    /// An empty store for the repository's feature views.
    pub fn new(repo: &Repository) -> Self {
        OnlineStore {
            // Many shards keep two writers of different entities off each other's spin locks.
            views: repo
                .feature_views
                .iter()
                .map(|_| DashMap::with_shard_amount(SHARDS))
                .collect(),
            specs: repo.feature_views.iter().map(|v| v.series_spec()).collect(),
        }
    }

    /// The aggregation spec of an aggregate view.
    pub fn spec(&self, view: usize) -> Option<&SeriesSpec> {
        self.specs.get(view)?.as_ref()
    }

    /// Writes an attribute row. The most recently *pushed* row wins even when its event time is
    /// older: that is Tecton's documented overwrite rule, and how a reordering sink creates skew.
    pub fn put_attributes(&self, view: usize, key: EntityKey, row: AttributeRow) {
        self.views[view].insert(key, OnlineEntry::Attributes(row));
    }

    /// Adds an event to an aggregate view. An event with the same entity and timestamp replaces
    /// the stored one (last write wins).
    pub fn put_event(&self, view: usize, key: EntityKey, ts: i64, seq: u64, values: Vec<Value>) {
        let Some(spec) = self.spec(view) else { return };
        let mut entry = self.views[view]
            .entry(key)
            .or_insert_with(|| OnlineEntry::Aggregates(Series::new(spec)));
        if let OnlineEntry::Aggregates(series) = entry.value_mut() {
            series.insert(spec, ts, seq, values, SameTimestamp::Replace);
        }
    }

    /// Adds an event to an aggregate view with an explicit rule for a stored event with the same
    /// entity and timestamp (a stream's TIME_INTERVAL tiles keep both; CONTINUOUS rows replace).
    pub fn put_event_with(
        &self,
        view: usize,
        key: EntityKey,
        ts: i64,
        seq: u64,
        values: Vec<Value>,
        same_ts: SameTimestamp,
    ) {
        let Some(spec) = self.spec(view) else { return };
        let mut entry = self.views[view]
            .entry(key)
            .or_insert_with(|| OnlineEntry::Aggregates(Series::new(spec)));
        if let OnlineEntry::Aggregates(series) = entry.value_mut() {
            series.insert(spec, ts, seq, values, same_ts);
        }
    }

    /// Evaluates one entity's aggregate features at `t` without copying its events: one value
    /// per aggregation in declaration order, or `None` when the entity has no events.
    pub fn evaluate(&self, view: usize, key: &EntityKey, t: i64) -> Option<Vec<Value>> {
        let spec = self.spec(view)?;
        match self.views.get(view)?.get(key)?.value() {
            OnlineEntry::Aggregates(series) => Some(series.evaluate(spec, t)),
            OnlineEntry::Attributes(_) => None,
        }
    }

    /// A copy of one entity's entry.
    pub fn get(&self, view: usize, key: &EntityKey) -> Option<OnlineEntry> {
        self.views.get(view)?.get(key).map(|e| e.value().clone())
    }

    /// Every entity of a view, sorted by key (for dumps).
    pub fn dump(&self, view: usize) -> Vec<(EntityKey, OnlineEntry)> {
        let mut out: Vec<_> = self.views[view]
            .iter()
            .map(|e| (e.key().clone(), e.value().clone()))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Number of entities stored for a view.
    pub fn len(&self, view: usize) -> usize {
        self.views[view].len()
    }

    /// Empties every view.
    pub fn clear(&self) {
        self.views.iter().for_each(DashMap::clear);
    }
}
