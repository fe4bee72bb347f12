//! The online store: per feature view, per entity, what the feature server needs.

use dashmap::DashMap;

use super::EntityKey;
use crate::schema::Value;

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

/// One projected event of an aggregate view.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    /// Event time.
    pub ts: i64,
    /// Ingestion sequence number (orders equal timestamps).
    pub seq: u64,
    /// Input value of each aggregate feature, in the view's aggregation order.
    pub values: Vec<Value>,
}

/// What the online store holds for one entity of one view.
#[derive(Debug, Clone, PartialEq)]
pub enum OnlineEntry {
    /// An attribute view's latest pushed row.
    Attributes(AttributeRow),
    /// An aggregate view's events, in (ts, seq) order.
    Events(Vec<StoredEvent>),
}

/// The online store of one mock instance: one concurrent map per feature view.
#[derive(Debug)]
pub struct OnlineStore {
    views: Vec<DashMap<EntityKey, OnlineEntry>>,
}

impl OnlineStore {
    /// An empty store for `view_count` feature views.
    pub fn new(view_count: usize) -> Self {
        OnlineStore {
            views: (0..view_count).map(|_| DashMap::new()).collect(),
        }
    }

    /// Writes an attribute row. The most recently *pushed* row wins even when its event time is
    /// older: that is Tecton's documented overwrite rule, and how a reordering sink creates skew.
    pub fn put_attributes(&self, view: usize, key: EntityKey, row: AttributeRow) {
        self.views[view].insert(key, OnlineEntry::Attributes(row));
    }

    /// Adds an event to an aggregate view. An event with the same entity and timestamp replaces
    /// the stored one (last write wins).
    pub fn put_event(&self, view: usize, key: EntityKey, event: StoredEvent) {
        let mut entry = self.views[view]
            .entry(key)
            .or_insert_with(|| OnlineEntry::Events(Vec::new()));
        if let OnlineEntry::Events(events) = entry.value_mut() {
            match events.binary_search_by(|e| e.ts.cmp(&event.ts)) {
                Ok(i) => events[i] = event,
                Err(i) => events.insert(i, event),
            }
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
