//! Feature vectors: the values of a feature service's features for one entity at one time,
//! read from the online store. Offline retrieval ([`crate::retrieval`]) builds the same shape
//! from the offline log, so the two can be compared feature by feature.

use serde_json::{Map, Value as Json};

use super::ServingError;
use crate::engine::AggregateFunction;
use crate::repo::{FeatureService, FeatureView, Repository, StreamProcessingMode, ViewKind};
use crate::schema::{DataType, Value};
use crate::store::{EntityKey, KeyPart, OnlineEntry, OnlineStore};

/// Whether a feature value was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Found (an empty window is still present: its count is 0).
    Present,
    /// No row for the entity, outside the TTL, or before feature_start_time.
    MissingData,
}

impl Status {
    /// Tecton's spelling.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Status::Present => "PRESENT",
            Status::MissingData => "MISSING_DATA",
        }
    }
}

/// One served feature's value.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureValue {
    /// The value (null when missing).
    pub value: Value,
    /// Found or not.
    pub status: Status,
    /// When the value became effective (row time, request time, or end of the last whole tile).
    pub effective_time: Option<i64>,
}

/// One feature as a service serves it: `view.feature` and its type.
#[derive(Debug, Clone, PartialEq)]
pub struct ServedFeature {
    /// `view.feature`.
    pub name: String,
    /// The feature's type.
    pub data_type: DataType,
    /// Index of the view in the repository.
    pub view: usize,
    /// Whether it is a count-like aggregate (0 rather than null under `coerceNullCountsToZero`).
    pub count_like: bool,
}

/// The features of a service in Tecton's serving order (views alphabetical, features
/// alphabetical within a view; the service's selection already follows it).
pub fn served_features(repo: &Repository, service: &FeatureService) -> Vec<ServedFeature> {
    let mut out = Vec::new();
    for sv in &service.views {
        let Some(view_idx) = repo.feature_views.iter().position(|v| v.name == sv.view) else {
            continue;
        };
        let view = &repo.feature_views[view_idx];
        let types = view.features();
        for f in &sv.features {
            let Some((_, t)) = types.iter().find(|(n, _)| n == f) else {
                continue;
            };
            out.push(ServedFeature {
                name: format!("{}.{f}", view.name),
                data_type: t.clone(),
                view: view_idx,
                count_like: is_count_like(view, f),
            });
        }
    }
    out
}

fn is_count_like(view: &FeatureView, feature: &str) -> bool {
    match &view.kind {
        ViewKind::Aggregates { features, .. } => features.iter().any(|a| {
            a.name == feature
                && matches!(
                    a.function,
                    AggregateFunction::Count | AggregateFunction::ApproxCountDistinct { .. }
                )
        }),
        ViewKind::Attributes { .. } => false,
    }
}

/// The join keys a service needs, in first-use order, with their types.
pub fn input_join_keys(repo: &Repository, service: &FeatureService) -> Vec<(String, DataType)> {
    let mut out: Vec<(String, DataType)> = Vec::new();
    for sv in &service.views {
        if let Some(view) = repo.feature_view(&sv.view) {
            for (k, t) in &view.join_keys {
                if !out.iter().any(|(n, _)| n == k) {
                    out.push((k.clone(), t.clone()));
                }
            }
        }
    }
    out
}

/// The entity key of `view` from a request's join-key map. A missing join key is a 400; a
/// `null` one matches no entity (`None`). Strings and numbers are both accepted: a number for a
/// String key is read as its decimal text, a decimal string for an Int64 key as the integer.
pub fn entity_key(
    view: &FeatureView,
    join_keys: &Map<String, Json>,
) -> Result<Option<EntityKey>, ServingError> {
    let mut parts = Vec::with_capacity(view.join_keys.len());
    for (name, ty) in &view.join_keys {
        let part = match (join_keys.get(name), ty) {
            (None, _) => {
                return Err(ServingError::invalid(format!(
                    "Missing required join key: `{name}`"
                )))
            }
            (Some(Json::Null), _) => return Ok(None),
            (Some(Json::String(s)), DataType::String) => KeyPart::Str(s.clone()),
            (Some(Json::Number(n)), DataType::String) => KeyPart::Str(n.to_string()),
            (Some(Json::Number(n)), _) => {
                KeyPart::Int(n.as_i64().ok_or_else(|| bad_key(name, ty))?)
            }
            (Some(Json::String(s)), _) => KeyPart::Int(s.parse().map_err(|_| bad_key(name, ty))?),
            (Some(_), _) => return Err(bad_key(name, ty)),
        };
        parts.push(part);
    }
    Ok(Some(EntityKey(parts)))
}

fn bad_key(name: &str, ty: &DataType) -> ServingError {
    ServingError::invalid(format!("Join key `{name}` must be a {ty} value"))
}

/// What an aggregate feature of an entity the online store has never seen reads as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnknownEntity {
    /// Null, as Tecton's feature server answers by default.
    Null,
    /// Null except counts, which are 0 (`requestOptions.coerceNullCountsToZero`).
    CountsZero,
    /// The empty-window values offline retrieval gives (count 0, lists `[]`), so that a
    /// consistency check reports only skew that data caused.
    EmptyWindow,
}

/// The values of `features` for one request's join keys at time `t`, from the online store.
pub fn online_vector(
    repo: &Repository,
    online: &OnlineStore,
    features: &[ServedFeature],
    join_keys: &Map<String, Json>,
    t: i64,
    unknown: UnknownEntity,
) -> Result<Vec<FeatureValue>, ServingError> {
    let mut out = Vec::with_capacity(features.len());
    let mut cache: Vec<(usize, Vec<(String, FeatureValue)>)> = Vec::new();
    for f in features {
        if !cache.iter().any(|(v, _)| *v == f.view) {
            let view = &repo.feature_views[f.view];
            let key = entity_key(view, join_keys)?;
            cache.push((
                f.view,
                view_values(view, f.view, online, key.as_ref(), t, unknown),
            ));
        }
        let values = cache
            .iter()
            .find(|(v, _)| *v == f.view)
            .map(|(_, vals)| vals);
        let short = f.name.split_once('.').map_or(f.name.as_str(), |(_, n)| n);
        let mut fv = values
            .and_then(|vals| vals.iter().find(|(n, _)| n == short))
            .map(|(_, v)| v.clone())
            .unwrap_or(FeatureValue {
                value: Value::Null,
                status: Status::MissingData,
                effective_time: None,
            });
        // Before feature_start_time every feature stays null, counts included.
        let started = online.spec(f.view).is_none_or(|s| !s.before_start(t));
        if unknown == UnknownEntity::CountsZero && f.count_like && fv.value.is_null() && started {
            fv.value = Value::Int(0);
        }
        out.push(fv);
    }
    Ok(out)
}

/// Every feature of one view for one entity at `t`, by feature name.
fn view_values(
    view: &FeatureView,
    view_idx: usize,
    online: &OnlineStore,
    key: Option<&EntityKey>,
    t: i64,
    unknown: UnknownEntity,
) -> Vec<(String, FeatureValue)> {
    let missing = |name: &str| {
        (
            name.to_owned(),
            FeatureValue {
                value: Value::Null,
                status: Status::MissingData,
                effective_time: None,
            },
        )
    };
    match &view.kind {
        ViewKind::Attributes { attributes, ttl } => {
            let row = key
                .and_then(|k| online.get(view_idx, k))
                .and_then(|e| match e {
                    OnlineEntry::Attributes(row) => Some(row),
                    OnlineEntry::Aggregates(_) => None,
                });
            match row {
                Some(row) if ttl.is_none_or(|ttl| t < row.ts.saturating_add(ttl)) => attributes
                    .iter()
                    .zip(row.values)
                    .map(|(a, v)| {
                        (
                            a.name.clone(),
                            FeatureValue {
                                value: v,
                                status: Status::Present,
                                effective_time: Some(row.ts),
                            },
                        )
                    })
                    .collect(),
                _ => attributes.iter().map(|a| missing(&a.name)).collect(),
            }
        }
        ViewKind::Aggregates {
            features,
            mode,
            aggregation_interval,
        } => {
            let spec = online.spec(view_idx);
            let before = spec.is_some_and(|s| s.before_start(t));
            let values = if before {
                None
            } else {
                key.and_then(|k| online.evaluate(view_idx, k, t))
            };
            let effective = match (mode, aggregation_interval) {
                (StreamProcessingMode::TimeInterval, Some(i)) => t - t.rem_euclid(*i),
                (StreamProcessingMode::Continuous, _)
                | (StreamProcessingMode::TimeInterval, None) => t,
            };
            let values = match (values, spec) {
                (None, Some(spec)) if !before && unknown == UnknownEntity::EmptyWindow => {
                    let empty = crate::engine::Series::new(spec).evaluate(spec, t);
                    return features
                        .iter()
                        .zip(empty)
                        .map(|(f, v)| {
                            (
                                f.name.clone(),
                                FeatureValue {
                                    value: v,
                                    status: Status::MissingData,
                                    effective_time: None,
                                },
                            )
                        })
                        .collect();
                }
                (v, _) => v,
            };
            match values {
                Some(vals) => features
                    .iter()
                    .zip(vals)
                    .map(|(f, v)| {
                        (
                            f.name.clone(),
                            FeatureValue {
                                value: v,
                                status: Status::Present,
                                effective_time: Some(effective),
                            },
                        )
                    })
                    .collect(),
                None => features.iter().map(|f| missing(&f.name)).collect(),
            }
        }
    }
}
