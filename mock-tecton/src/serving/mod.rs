//! Tecton's feature serving API: `get-features`, `get-features-batch`, `metadata`,
//! `query-features` and `get-feature-service-state` under `/api/v1/feature-service/`, and the
//! v2 per-workspace paths of feature server groups.
//!
//! Values are read from the online store at the mock clock's "now": attributes while inside
//! their TTL, aggregates evaluated over their windows. Responses follow Tecton's encodings:
//! int64 as strings, structs as arrays, `metadata` only when asked for, a missing entity as
//! nulls with `MISSING_DATA`. Reading features needs the Consumer role (Editor includes it).

mod error;
mod request;
mod vector;

use std::time::Instant;

use serde_json::{json, Map, Value as Json};

pub use error::ServingError;
pub use request::{parse as parse_params, MetadataOptions, Params};
pub use vector::{
    entity_key, input_join_keys, online_vector, served_features, FeatureValue, ServedFeature,
    Status, UnknownEntity,
};

use crate::repo::{FeatureService, Repository, Role, ServiceAccount};
use crate::schema::format_rfc3339;
use crate::store::OnlineStore;

/// A feature server endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `get-features`.
    GetFeatures,
    /// `get-features-batch`.
    GetFeaturesBatch,
    /// `metadata`.
    Metadata,
    /// `query-features`.
    QueryFeatures,
    /// `get-feature-service-state`.
    ServiceState,
}

impl Endpoint {
    /// The endpoint for the last path segment.
    pub(crate) fn from_segment(s: &str) -> Option<Self> {
        Some(match s {
            "get-features" => Endpoint::GetFeatures,
            "get-features-batch" => Endpoint::GetFeaturesBatch,
            "metadata" => Endpoint::Metadata,
            "query-features" => Endpoint::QueryFeatures,
            "get-feature-service-state" => Endpoint::ServiceState,
            _ => return None,
        })
    }
}

/// What the serving path needs from the mock.
#[derive(Debug)]
pub struct ServingContext<'a> {
    /// The repository.
    pub repo: &'a Repository,
    /// The online store.
    pub online: &'a OnlineStore,
    /// Mock time now.
    pub now: i64,
}

/// The workspace and service of a v2 path (`/api/v2/workspaces/{ws}/feature-services/{fs}/…`).
#[derive(Debug, Clone, Copy)]
pub struct PathTarget<'a> {
    /// Workspace from the path.
    pub workspace: &'a str,
    /// Feature service from the path.
    pub service: &'a str,
}

/// Handles one request with a parsed body (`Json::Null` for a bodiless GET).
pub fn handle(
    ctx: &ServingContext<'_>,
    account: &ServiceAccount,
    endpoint: Endpoint,
    body: &Json,
    target: Option<PathTarget<'_>>,
) -> Result<Json, ServingError> {
    if endpoint == Endpoint::ServiceState {
        return service_state(ctx, account, body);
    }
    // A v2 GET metadata has no body; everything else carries `params`.
    let params = match (target, body) {
        (Some(_), Json::Null) => Params::default(),
        _ => parse_params(body)?,
    };
    let workspace = target
        .map(|t| t.workspace.to_owned())
        .or(params.workspace.clone())
        .unwrap_or_default();
    let service_name = target
        .map(|t| t.service.to_owned())
        .or(params.feature_service.clone())
        .ok_or_else(|| ServingError::invalid("Missing required field `featureServiceName`"))?;
    let service = resolve(ctx.repo, account, &workspace, &service_name)?;
    let started = Instant::now();
    let features = served_features(ctx.repo, service);
    let vector_for = |keys: &Map<String, Json>| {
        online_vector(
            ctx.repo,
            ctx.online,
            &features,
            keys,
            ctx.now,
            unknown_policy(&params),
        )
    };
    match endpoint {
        Endpoint::GetFeatures => {
            let vector = vector_for(&params.join_keys)?;
            let mut out = json!({"result": result_json(&vector)});
            if let Some(meta) = metadata(&features, &[&vector], &params.metadata, started) {
                out["metadata"] = meta;
            }
            Ok(out)
        }
        Endpoint::GetFeaturesBatch => {
            if params.rows.is_empty() {
                return Err(ServingError::invalid(
                    "`requestData` must list at least one row",
                ));
            }
            let vectors = params
                .rows
                .iter()
                .map(vector_for)
                .collect::<Result<Vec<_>, _>>()?;
            let result: Vec<Json> = vectors.iter().map(|v| result_json(v)).collect();
            let mut out = json!({"result": result});
            let refs: Vec<&Vec<FeatureValue>> = vectors.iter().collect();
            if let Some(meta) = metadata(&features, &refs, &params.metadata, started) {
                out["metadata"] = meta;
            }
            Ok(out)
        }
        Endpoint::QueryFeatures => {
            let entities = matching_entities(ctx, service, &params.join_keys);
            let mut vectors = Vec::with_capacity(entities.len());
            for keys in &entities {
                vectors.push(vector_for(keys)?);
            }
            let results: Vec<Json> = vectors.iter().map(|v| result_json(v)).collect();
            let mut out = json!({"results": results});
            let options = MetadataOptions {
                serving_status: false,
                effective_times: false,
                ..params.metadata
            };
            if let Some(meta) = metadata(&features, &[], &options, started) {
                out["metadata"] = meta;
            }
            Ok(out)
        }
        Endpoint::Metadata => Ok(service_metadata(ctx.repo, service, &features)),
        Endpoint::ServiceState => Err(ServingError::invalid("unreachable")),
    }
}

/// One `result`: `{"features": [...]}` and nothing else (the Python client rejects extra keys).
fn result_json(vector: &[FeatureValue]) -> Json {
    json!({"features": vector.iter().map(|f| f.value.to_serving_json()).collect::<Vec<_>>()})
}

/// Finds a live workspace's feature service the account may read.
fn resolve<'r>(
    repo: &'r Repository,
    account: &ServiceAccount,
    workspace: &str,
    service: &str,
) -> Result<&'r FeatureService, ServingError> {
    let live = repo.workspace(workspace).is_some_and(|w| w.live);
    let found = repo.feature_service(service).filter(|_| live);
    if repo.workspace(workspace).is_some() && !account.can(workspace, Role::may_read_features) {
        return Err(ServingError::permission_denied());
    }
    found.ok_or_else(|| ServingError::service_not_found(service, workspace))
}

fn service_state(
    ctx: &ServingContext<'_>,
    account: &ServiceAccount,
    body: &Json,
) -> Result<Json, ServingError> {
    let locator = body
        .get("featureServiceLocator")
        .or_else(|| body.get("feature_service_locator"))
        .and_then(Json::as_object)
        .ok_or_else(|| ServingError::invalid("Missing required field `featureServiceLocator`"))?;
    let get = |camel: &str, snake: &str| {
        locator
            .get(camel)
            .or_else(|| locator.get(snake))
            .and_then(Json::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let service = get("featureServiceName", "feature_service_name");
    let workspace = get("workspaceName", "workspace_name");
    resolve(ctx.repo, account, &workspace, &service)?;
    Ok(json!({}))
}

/// `metadata` of a response, or `None` when nothing was asked for (Tecton then omits it).
/// With several vectors (a batch), `status` is an array with one entry per row.
fn metadata(
    features: &[ServedFeature],
    vectors: &[&Vec<FeatureValue>],
    options: &MetadataOptions,
    started: Instant,
) -> Option<Json> {
    if !options.any_feature_metadata() && !options.slo_info {
        return None;
    }
    let batch = vectors.len() != 1;
    let mut meta = Map::new();
    if options.any_feature_metadata() {
        let items: Vec<Json> = features
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let mut item = Map::new();
                if options.names {
                    item.insert("name".into(), f.name.clone().into());
                }
                if options.data_types {
                    item.insert("dataType".into(), f.data_type.to_serving_json());
                }
                if options.effective_times {
                    if let Some(t) = vectors
                        .iter()
                        .filter_map(|v| v.get(i)?.effective_time)
                        .max()
                    {
                        item.insert("effectiveTime".into(), format_rfc3339(t).into());
                    }
                }
                if options.serving_status {
                    let statuses: Vec<Json> = vectors
                        .iter()
                        .filter_map(|v| v.get(i))
                        .map(|fv| fv.status.as_str().into())
                        .collect();
                    let value = if batch {
                        Json::Array(statuses)
                    } else {
                        statuses.into_iter().next().unwrap_or(Json::Null)
                    };
                    item.insert("status".into(), value);
                }
                Json::Object(item)
            })
            .collect();
        meta.insert("features".into(), Json::Array(items));
    }
    if options.slo_info {
        let seconds = started.elapsed().as_secs_f64();
        let slo = json!({"sloEligible": true, "sloServerTimeSeconds": seconds, "serverTimeSeconds": seconds, "storeMaxLatency": 0.0, "storeResponseSizeBytes": 0});
        if batch {
            meta.insert(
                "sloInfo".into(),
                Json::Array(vectors.iter().map(|_| slo.clone()).collect()),
            );
            meta.insert("batchSloInfo".into(), slo);
        } else {
            meta.insert("sloInfo".into(), slo);
        }
    }
    Some(Json::Object(meta))
}

fn service_metadata(
    repo: &Repository,
    service: &FeatureService,
    features: &[ServedFeature],
) -> Json {
    let typed = |name: &str, t: &crate::schema::DataType| {
        let dt = t.to_serving_json();
        json!({"name": name, "dataType": dt, "type": dt["type"]})
    };
    json!({
        "featureServiceType": "DEFAULT",
        "inputJoinKeys": input_join_keys(repo, service).iter().map(|(k, t)| typed(k, t)).collect::<Vec<_>>(),
        "inputRequestContextKeys": [],
        "featureValues": features.iter().map(|f| typed(&f.name, &f.data_type)).collect::<Vec<_>>(),
    })
}

/// For query-features: every stored entity whose join keys match the given (partial) ones, as
/// full join-key maps, in key order.
fn matching_entities(
    ctx: &ServingContext<'_>,
    service: &FeatureService,
    given: &Map<String, Json>,
) -> Vec<Map<String, Json>> {
    let mut found: Vec<(crate::store::EntityKey, Map<String, Json>)> = Vec::new();
    for sv in &service.views {
        let Some(view_idx) = ctx
            .repo
            .feature_views
            .iter()
            .position(|v| v.name == sv.view)
        else {
            continue;
        };
        let view = &ctx.repo.feature_views[view_idx];
        let names: Vec<String> = view.join_keys.iter().map(|(k, _)| k.clone()).collect();
        for (key, _) in ctx.online.dump(view_idx) {
            let Json::Object(map) = key.to_json(&names) else {
                continue;
            };
            let matches = given.iter().all(|(k, v)| {
                map.get(k).is_none_or(|have| {
                    have == v || have.as_str().is_some_and(|s| v.as_str() == Some(s))
                })
            });
            if matches && !found.iter().any(|(k, _)| *k == key) {
                found.push((key, map));
            }
        }
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));
    found.into_iter().map(|(_, m)| m).collect()
}

/// The request's choice for entities the online store has never seen.
fn unknown_policy(params: &Params) -> UnknownEntity {
    if params.coerce_null_counts {
        UnknownEntity::CountsZero
    } else {
        UnknownEntity::Null
    }
}
