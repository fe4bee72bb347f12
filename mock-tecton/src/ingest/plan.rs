//! Which feature views each push source feeds, with column positions resolved once at start-up
//! so the request path does no name lookups.

use crate::repo::{Repository, ViewKind};
use crate::schema::Value;
use crate::store::{EntityKey, OnlineStore, StoreKey};

/// One feature view subscribed to one push source.
#[derive(Debug, Clone)]
pub struct Subscription {
    /// Index of the feature view in the repository.
    pub view: usize,
    /// Source columns of the view's join keys, in order.
    pub key_columns: Vec<usize>,
    /// Source columns of the view's inputs ([`crate::repo::FeatureView::input_columns`]).
    pub value_columns: Vec<usize>,
    /// Whether the view is an attribute view.
    pub attributes: bool,
    /// The view's TTL (attribute views).
    pub ttl: Option<i64>,
    /// The view's feature_start_time.
    pub feature_start_time: Option<i64>,
    /// Written online.
    pub online: bool,
    /// Written offline.
    pub offline: bool,
}

impl Subscription {
    /// Whether this view keeps a record stamped `ts` at all: attribute views ignore rows before
    /// `feature_start_time` ([`crate::decisions::attribute_row_kept`]); aggregations keep every
    /// event.
    pub fn keeps(&self, ts: i64) -> bool {
        !self.attributes || crate::decisions::attribute_row_kept(self.feature_start_time, ts)
    }

    /// Applies one validated record (values in source-schema order) to the online store at
    /// clock time `now` (which decides what the store still keeps): the ingest path and the
    /// consistency replay both write through here. False when the view is not online, does not
    /// keep the row, or the record has no usable entity key.
    pub fn apply_online(
        &self,
        online: &OnlineStore,
        ts: i64,
        seq: u64,
        record: &[Value],
        now: i64,
    ) -> bool {
        if !self.online || !self.keeps(ts) {
            return false;
        }
        let Some(key) = online.record_key(record, &self.key_columns) else {
            return false;
        };
        self.put_online(online, &key, ts, seq, record, now);
        true
    }

    /// Writes a record to this view's online entry for `key` (already checked to be kept).
    pub(crate) fn put_online(
        &self,
        online: &OnlineStore,
        key: &StoreKey,
        ts: i64,
        seq: u64,
        record: &[Value],
        now: i64,
    ) {
        if self.attributes {
            online.put_attributes(self.view, key, ts, seq, record, &self.value_columns, now);
        } else {
            online.put_event(self.view, key, ts, seq, record, &self.value_columns, now);
        }
    }

    /// The entity key of a record (values in source-schema order) for this view; `None` when a
    /// join key is missing or not a string or integer.
    pub fn entity_key(&self, record: &[Value]) -> Option<EntityKey> {
        EntityKey::from_values(self.key_columns.iter().filter_map(|&c| record.get(c)))
            .filter(|k| k.0.len() == self.key_columns.len())
    }
}

/// Routing for every push source.
#[derive(Debug, Clone)]
pub struct IngestPlan {
    names: Vec<String>,
    timestamp: Vec<usize>,
    subscriptions: Vec<Vec<Subscription>>,
}

impl IngestPlan {
    /// Resolves every push source's subscriptions. The repository is validated, so every
    /// column exists; a column that does not is skipped rather than panicking.
    pub fn new(repo: &Repository) -> Self {
        let mut plan = IngestPlan {
            names: Vec::new(),
            timestamp: Vec::new(),
            subscriptions: Vec::new(),
        };
        for source in &repo.push_sources {
            let col = |name: &str| source.schema.index_of(name);
            let mut subs = Vec::new();
            for view_idx in repo.views_of_source(&source.name) {
                let view = &repo.feature_views[view_idx];
                let attributes = matches!(view.kind, ViewKind::Attributes { .. });
                subs.push(Subscription {
                    view: view_idx,
                    key_columns: view.join_keys.iter().filter_map(|(k, _)| col(k)).collect(),
                    value_columns: view.input_columns().into_iter().filter_map(col).collect(),
                    attributes,
                    ttl: view.ttl(),
                    feature_start_time: view.feature_start_time,
                    online: view.online,
                    offline: view.offline,
                });
            }
            plan.names.push(source.name.clone());
            plan.timestamp
                .push(col(&source.timestamp_field).unwrap_or(0));
            plan.subscriptions.push(subs);
        }
        plan
    }

    /// A push source's index by name.
    pub fn source_index(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }

    /// The views fed by a source.
    pub fn subscriptions(&self, source: usize) -> &[Subscription] {
        &self.subscriptions[source]
    }

    /// The column of a source's event time.
    pub fn timestamp_index(&self, source: usize) -> usize {
        self.timestamp[source]
    }
}
