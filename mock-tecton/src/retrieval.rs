//! Point-in-time offline retrieval: the features of a feature service for a spine of
//! (join keys, timestamp) rows, computed from the offline log as Tecton's training-data queries
//! compute them.
//!
//! Aggregates follow the window rules of `crate::engine` over every logged event, duplicates
//! and events from before feature_start_time included; every aggregate is null while the spine
//! time is before the start. An entity with no events gets the empty-window values (count 0,
//! lists `[]`). Attributes take the row with the latest *event time* at or before the spine
//! time (later ingestion wins a tie), valid while `t < ts + ttl`; rows stamped before
//! feature_start_time are ignored ([`crate::decisions::attribute_row_kept`]).

use std::collections::HashMap;

use serde_json::{Map, Value as Json};

use crate::engine::{SameTimestamp, Series};
use crate::repo::{FeatureView, ViewKind};
use crate::schema::Value;
use crate::serving::{entity_key, FeatureValue, ServedFeature, ServingError, Status};
use crate::state::MockState;
use crate::store::EntityKey;

/// One spine row: join keys and the point in time.
#[derive(Debug, Clone, PartialEq)]
pub struct SpineRow {
    /// Join-key values by name.
    pub join_keys: Map<String, Json>,
    /// The time to compute features at (ns since the epoch).
    pub timestamp: i64,
}

/// One view's offline data, indexed by entity.
enum ViewData {
    Aggregates(HashMap<EntityKey, Series>),
    /// Rows as `(ts, seq, values)`, sorted by `(ts, seq)`.
    Attributes(HashMap<EntityKey, Vec<(i64, u64, Vec<Value>)>>),
}

/// Features for every spine row, in the order of `features`.
pub fn offline_features(
    state: &MockState,
    features: &[ServedFeature],
    spine: &[SpineRow],
) -> Result<Vec<Vec<FeatureValue>>, ServingError> {
    let mut views: Vec<usize> = features.iter().map(|f| f.view).collect();
    views.sort_unstable();
    views.dedup();
    let data: Vec<(usize, ViewData)> = views
        .iter()
        .map(|&v| Ok((v, index_view(state, v)?)))
        .collect::<Result<_, ServingError>>()?;
    let mut out = Vec::with_capacity(spine.len());
    for row in spine {
        let mut per_view: Vec<(usize, Vec<(String, FeatureValue)>)> = Vec::new();
        for (v, d) in &data {
            let view = &state.repo.feature_views[*v];
            let key = entity_key(view, &row.join_keys)?;
            per_view.push((
                *v,
                point_in_time(state, *v, view, d, key.as_ref(), row.timestamp),
            ));
        }
        let vector = features
            .iter()
            .map(|f| {
                let short = f.name.split_once('.').map_or(f.name.as_str(), |(_, n)| n);
                per_view
                    .iter()
                    .find(|(v, _)| *v == f.view)
                    .and_then(|(_, vals)| vals.iter().find(|(n, _)| n == short))
                    .map(|(_, fv)| fv.clone())
                    .unwrap_or(FeatureValue {
                        value: Value::Null,
                        status: Status::MissingData,
                        effective_time: None,
                    })
            })
            .collect();
        out.push(vector);
    }
    Ok(out)
}

/// Reads a view's events from the offline logs of its push sources.
fn index_view(state: &MockState, view_idx: usize) -> Result<ViewData, ServingError> {
    let view = &state.repo.feature_views[view_idx];
    let spec = view.series_spec();
    let mut aggs: HashMap<EntityKey, Series> = HashMap::new();
    let mut attrs: HashMap<EntityKey, Vec<(i64, u64, Vec<Value>)>> = HashMap::new();
    let mut add = |key: EntityKey, ts: i64, seq: u64, values: Vec<Value>| match &spec {
        Some(spec) => aggs.entry(key).or_insert_with(|| Series::new(spec)).insert(
            spec,
            ts,
            seq,
            values,
            SameTimestamp::Keep,
        ),
        None => attrs.entry(key).or_default().push((ts, seq, values)),
    };
    // Batch precedence: where a batch job materialized a key's interval, its rows replace the
    // logged ones (crate::batch::precedence).
    let batch = if view.offline {
        crate::batch::precedence::read(state, view_idx)
            .map_err(|e| ServingError::Internal(e.to_string()))?
    } else {
        None
    };
    for source_name in &view.sources {
        let Some(source) = state.plan.source_index(source_name) else {
            continue;
        };
        let push = &state.repo.push_sources[source];
        if !push.log_offline || !view.offline {
            continue;
        }
        let col = |n: &str| push.schema.index_of(n);
        let keys: Vec<usize> = view.join_keys.iter().filter_map(|(k, _)| col(k)).collect();
        let inputs: Vec<usize> = view.input_columns().into_iter().filter_map(col).collect();
        let rows = state
            .offline
            .rows(source)
            .map_err(|e| ServingError::Internal(e.to_string()))?;
        for row in rows {
            if spec.is_none()
                && !crate::decisions::attribute_row_kept(view.feature_start_time, row.ts)
            {
                continue;
            }
            let Some(key) = EntityKey::from_values(keys.iter().map(|&c| &row.values[c])) else {
                continue;
            };
            if batch.as_ref().is_some_and(|b| b.covers(&key, row.ts)) {
                continue;
            }
            let values: Vec<Value> = inputs.iter().map(|&c| row.values[c].clone()).collect();
            add(key, row.ts, row.seq, values);
        }
    }
    for (key, row) in batch.iter().flat_map(|b| b.rows()) {
        add(key.clone(), row.ts, row.seq, row.values.clone());
    }
    Ok(if spec.is_some() {
        ViewData::Aggregates(aggs)
    } else {
        for rows in attrs.values_mut() {
            rows.sort_by_key(|(ts, seq, _)| (*ts, *seq));
        }
        ViewData::Attributes(attrs)
    })
}

fn point_in_time(
    state: &MockState,
    view_idx: usize,
    view: &FeatureView,
    data: &ViewData,
    key: Option<&EntityKey>,
    t: i64,
) -> Vec<(String, FeatureValue)> {
    let present = |v: Value, at: i64| FeatureValue {
        value: v,
        status: Status::Present,
        effective_time: Some(at),
    };
    let missing = || FeatureValue {
        value: Value::Null,
        status: Status::MissingData,
        effective_time: None,
    };
    match (&view.kind, data) {
        (ViewKind::Aggregates { features, .. }, ViewData::Aggregates(series)) => {
            let Some(spec) = state.online.spec(view_idx) else {
                return Vec::new();
            };
            if spec.before_start(t) {
                return features
                    .iter()
                    .map(|f| (f.name.clone(), missing()))
                    .collect();
            }
            let empty = Series::new(spec);
            let s = key.and_then(|k| series.get(k)).unwrap_or(&empty);
            features
                .iter()
                .zip(s.evaluate(spec, t))
                .map(|(f, v)| (f.name.clone(), present(v, t)))
                .collect()
        }
        (ViewKind::Attributes { attributes, ttl }, ViewData::Attributes(rows)) => {
            let row = key
                .and_then(|k| rows.get(k))
                .and_then(|rows| rows.iter().rev().find(|(ts, _, _)| *ts <= t))
                .filter(|(ts, _, _)| ttl.is_none_or(|ttl| t < ts.saturating_add(ttl)));
            match row {
                Some((ts, _, values)) => attributes
                    .iter()
                    .zip(values)
                    .map(|(a, v)| (a.name.clone(), present(v.clone(), *ts)))
                    .collect(),
                None => attributes
                    .iter()
                    .map(|a| (a.name.clone(), missing()))
                    .collect(),
            }
        }
        // A view's data always has its kind; a mismatch has no rows.
        (ViewKind::Aggregates { .. } | ViewKind::Attributes { .. }, _) => Vec::new(),
    }
}

/// A spine row that cannot be read: its 0-based position in the input and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpineError {
    /// Position of the row in the input (0-based).
    pub index: usize,
    /// What is wrong with it.
    pub message: String,
}

impl std::fmt::Display for SpineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "spine[{}]: {}", self.index, self.message)
    }
}

/// Reads a spine from JSON objects: join keys plus a `timestamp_field` (ISO-8601).
pub fn spine_from_json(rows: &[Json], timestamp_field: &str) -> Result<Vec<SpineRow>, SpineError> {
    rows.iter()
        .enumerate()
        .map(|(index, row)| {
            let err = |message: String| SpineError { index, message };
            let Json::Object(obj) = row else {
                return Err(err("expected a JSON object".into()));
            };
            let ts = obj
                .get(timestamp_field)
                .and_then(Json::as_str)
                .ok_or_else(|| err(format!("missing string field `{timestamp_field}`")))?;
            let timestamp = crate::schema::parse_timestamp(ts)
                .map_err(|e| err(format!("field `{timestamp_field}`: {e}")))?;
            let mut join_keys = obj.clone();
            join_keys.shift_remove(timestamp_field);
            Ok(SpineRow {
                join_keys,
                timestamp,
            })
        })
        .collect()
}

/// Offline rows as JSON objects: the spine's join keys and `timestamp`, then one column per
/// feature named `view__feature`, as Tecton names offline columns.
pub fn rows_to_json(
    features: &[ServedFeature],
    spine: &[SpineRow],
    rows: &[Vec<FeatureValue>],
) -> Vec<Json> {
    spine
        .iter()
        .zip(rows)
        .map(|(point, values)| {
            let mut obj = point.join_keys.clone();
            obj.insert(
                "timestamp".into(),
                crate::schema::format_rfc3339(point.timestamp).into(),
            );
            for (f, v) in features.iter().zip(values) {
                obj.insert(f.name.replacen('.', "__", 1), v.value.to_plain_json());
            }
            Json::Object(obj)
        })
        .collect()
}
