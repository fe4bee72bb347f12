//! The admin API under `/_mock/`: health, reset, configuration, journal, store dumps and the
//! clock. JSON in and out; never confused with Tecton's own paths, and never journaled.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value as Json_};

use crate::duration;
use crate::faults::FaultSet;
use crate::rejection::{reject, ErrorFormat, Rejection};
use crate::schema::{format_rfc3339, parse_timestamp};
use crate::state::MockState;
use crate::store::OnlineEntry;

type AppState = State<Arc<MockState>>;

/// The admin routes, to be nested under `/_mock`.
pub(crate) fn routes() -> Router<Arc<MockState>> {
    Router::new()
        .route("/health", get(health))
        .route("/reset", post(reset))
        .route("/config", get(config))
        .route("/journal", get(journal))
        .route("/online", get(online))
        .route("/offline", get(offline))
        .route("/clock", get(clock).post(set_clock))
        .route("/faults", get(faults).post(set_faults).delete(clear_faults))
        .route("/offline/features", post(offline_features))
        .route("/consistency", post(consistency))
        .route("/kafka", get(kafka))
        .merge(crate::stream::http::routes())
        .merge(crate::batch::http::routes())
        .layer(axum::middleware::from_fn(json_errors))
}

/// Every admin error is JSON `{"error": "..."}`, including the ones axum's extractors and
/// router produce as plain text (an oversized body, a bad query string, a wrong method), and
/// every admin request gets one log line.
async fn json_errors(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let started = std::time::Instant::now();
    let (method, path) = (req.method().clone(), req.uri().path().to_owned());
    let resp = next.run(req).await;
    let status = resp.status();
    tracing::info!(
        method = %method,
        path = %format!("/_mock{path}"),
        status = status.as_u16(),
        fault = %"-",
        ms = started.elapsed().as_secs_f64() * 1e3,
        "admin request"
    );
    let is_json = resp
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let text = axum::body::to_bytes(body, 64 * 1024)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .unwrap_or_default();
    let message = if text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_owned()
    } else {
        text
    };
    parts.headers.remove(axum::http::header::CONTENT_LENGTH);
    parts.headers.insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/json"),
    );
    let why = Rejection::Status {
        status,
        message: Some(message),
    };
    Response::from_parts(
        parts,
        axum::body::Body::from(reject(ErrorFormat::Admin, why).body),
    )
}

fn bad_request(message: impl Into<String>) -> Response {
    reject(ErrorFormat::Admin, Rejection::Invalid(message.into())).into_response()
}

fn not_found(message: impl Into<String>) -> Response {
    reject(ErrorFormat::Admin, Rejection::NotFound(message.into())).into_response()
}

async fn health(State(s): AppState) -> Json<Json_> {
    Json(health_body(&s))
}

/// Status, version, and what each store holds: counts and estimated bytes, so a long run can
/// watch memory level off. Each store reports its own section.
pub(crate) fn health_body(s: &MockState) -> Json_ {
    let counters = s.journal.counters();
    let journal = s.journal.footprint();
    let offline = s.offline.stats();
    json!({
        // A failing disk keeps acknowledged rows in memory: still serving, but not healthy.
        "status": if offline.error.is_some() { "degraded" } else { "ok" },
        "version": env!("CARGO_PKG_VERSION"),
        "journal": {
            "total": counters.total,
            "dropped": counters.dropped,
            "entries": journal.entries,
            "capacity": s.journal.capacity(),
            "estimated_bytes": journal.estimated_bytes,
        },
        "online": s.online.stats(),
        "offline": offline,
    })
}

async fn reset(State(s): AppState) -> Response {
    match s.reset() {
        Ok(()) => Json(json!({"reset": true})).into_response(),
        Err(e) => internal_error(e.to_string()),
    }
}

fn internal_error(message: impl Into<String>) -> Response {
    reject(ErrorFormat::Admin, Rejection::Internal(message.into())).into_response()
}

async fn config(State(s): AppState) -> Json<Json_> {
    let repo = &s.repo;
    Json(json!({
        "records_per_source": s.records_per_source,
        "max_body_bytes": s.max_body_bytes,
        "journal_body_bytes": s.journal.body_limit(),
        "workspaces": repo.workspaces.iter().map(|w| json!({"name": w.name, "live": w.live})).collect::<Vec<_>>(),
        "service_accounts": repo.service_accounts.iter().map(|a| json!({"name": a.name, "roles": a.roles})).collect::<Vec<_>>(),
        "push_sources": repo.push_sources.iter().map(|p| json!({
            "name": p.name,
            "timestamp_field": p.timestamp_field,
            "log_offline": p.log_offline,
            "schema": p.schema.fields.iter().map(|f| json!({"name": f.name, "type": f.data_type.to_string()})).collect::<Vec<_>>(),
            "feature_views": repo.views_of_source(&p.name).into_iter().map(|i| &repo.feature_views[i].name).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "feature_views": repo.feature_views.iter().map(|v| json!({
            "name": v.name,
            "id": v.id,
            "sources": v.sources,
            "join_keys": v.join_keys.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            "online": v.online,
            "offline": v.offline,
            "ttl": v.ttl().map(|t| duration::Human(t).to_string()),
            "feature_start_time": v.feature_start_time.map(format_rfc3339),
            "features": v.features().into_iter().map(|(n, t)| json!({"name": n, "type": t.to_string()})).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "feature_services": repo.feature_services.iter().map(|fs| json!({
            "name": fs.name,
            "features": fs.views.iter().flat_map(|v| v.features.iter().map(move |f| format!("{}.{f}", v.view))).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    }))
}

#[derive(Deserialize)]
struct JournalQuery {
    #[serde(default)]
    since: u64,
    limit: Option<usize>,
}

async fn journal(State(s): AppState, Query(q): Query<JournalQuery>) -> Json<Json_> {
    let entries = s.journal.entries(q.since, q.limit.unwrap_or(10_000));
    let next = entries.last().map_or(q.since, |e| e.seq + 1);
    Json(json!({"counters": s.journal.counters(), "next": next, "entries": entries}))
}

#[derive(Deserialize)]
struct ViewQuery {
    view: Option<String>,
}

async fn online(State(s): AppState, Query(q): Query<ViewQuery>) -> Response {
    let repo = &s.repo;
    let views: Vec<usize> = match &q.view {
        Some(name) => match repo.feature_views.iter().position(|v| &v.name == name) {
            Some(i) => vec![i],
            None => return not_found(format!("no feature view named `{name}`")),
        },
        None => (0..repo.feature_views.len()).collect(),
    };
    let mut out = Vec::new();
    for i in views {
        let view = &repo.feature_views[i];
        let keys: Vec<String> = view.join_keys.iter().map(|(k, _)| k.clone()).collect();
        let columns = view.input_columns();
        // Inputs read only by `count` are stored as null-ness markers: not shown.
        let counted_only = s.online.counted_only(i);
        let shown = |k: usize| !counted_only.get(k).copied().unwrap_or(false);
        let entities: Vec<Json_> = s
            .online
            .dump(i)
            .into_iter()
            .map(|(key, entry)| match entry {
                OnlineEntry::Attributes(row) => json!({
                    "join_keys": key.to_json(&keys),
                    "timestamp": format_rfc3339(row.ts),
                    "seq": row.seq,
                    "values": columns.iter().zip(&row.values).map(|(c, v)| (c.to_string(), v.to_plain_json())).collect::<serde_json::Map<_, _>>(),
                }),
                OnlineEntry::Aggregates(series) => json!({
                    "join_keys": key.to_json(&keys),
                    "events": series.events().map(|(ts, seq, values)| json!({
                        "timestamp": format_rfc3339(ts),
                        "seq": seq,
                        "values": columns.iter().zip(values).enumerate().filter(|(k, _)| shown(*k)).map(|(_, (c, v))| (c.to_string(), v.to_plain_json())).collect::<serde_json::Map<_, _>>(),
                    })).collect::<Vec<_>>(),
                }),
            })
            .collect();
        out.push(json!({"feature_view": view.name, "entities": entities}));
    }
    Json(json!({"online": out})).into_response()
}

#[derive(Deserialize)]
struct SourceQuery {
    source: Option<String>,
}

async fn offline(State(s): AppState, Query(q): Query<SourceQuery>) -> Response {
    let repo = &s.repo;
    let sources: Vec<usize> = match &q.source {
        Some(name) => match repo.push_sources.iter().position(|p| &p.name == name) {
            Some(i) => vec![i],
            None => return not_found(format!("no push source named `{name}`")),
        },
        None => (0..repo.push_sources.len()).collect(),
    };
    let mut out = Vec::new();
    for i in sources {
        let source = &repo.push_sources[i];
        let rows = match s.offline.rows(i) {
            Ok(rows) => rows,
            Err(e) => return internal_error(e.to_string()),
        };
        let rows: Vec<Json_> = rows
            .into_iter()
            .map(|r| {
                let record: serde_json::Map<_, _> = source
                    .schema
                    .fields
                    .iter()
                    .zip(&r.values)
                    .map(|(f, v)| (f.name.clone(), v.to_plain_json()))
                    .collect();
                json!({"seq": r.seq, "request": r.request, "ingested_at": format_rfc3339(r.ingested_at), "record": record})
            })
            .collect();
        out.push(json!({"push_source": source.name, "rows": rows}));
    }
    Json(json!({"offline": out})).into_response()
}

fn clock_json(s: &MockState) -> Json_ {
    let now = s.clock.now();
    json!({"now": format_rfc3339(now), "now_ns": now, "virtual": s.clock.is_virtual()})
}

async fn clock(State(s): AppState) -> Json<Json_> {
    Json(clock_json(&s))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClockChange {
    set: Option<String>,
    advance: Option<String>,
    #[serde(default)]
    wall: bool,
}

async fn set_clock(State(s): AppState, body: axum::body::Bytes) -> Response {
    let change: ClockChange = match serde_json::from_slice(&body) {
        Ok(c) => c,
        Err(e) => return bad_request(format!("expected {{\"set\": \"<timestamp>\"}}, {{\"advance\": \"10m\"}} or {{\"wall\": true}}: {e}")),
    };
    if change.wall {
        s.clock.use_wall();
    }
    if let Some(at) = &change.set {
        match parse_timestamp(at) {
            Ok(ns) => s.clock.set(ns),
            Err(e) => return bad_request(e.to_string()),
        }
    }
    if let Some(by) = &change.advance {
        match duration::parse(by) {
            Ok(d) => {
                s.clock.advance(d);
            }
            Err(e) => return bad_request(e.to_string()),
        }
    }
    // On the virtual clock, time reaches the micro-batch engine here.
    s.run_streams();
    Json(clock_json(&s)).into_response()
}

async fn faults(State(s): AppState) -> Json<Json_> {
    Json(s.faults.status())
}

/// Installs fault rules (JSON of the fault file's shape: `{"seed": 1, "rules": [...]}`),
/// replacing any installed ones.
async fn set_faults(State(s): AppState, body: axum::body::Bytes) -> Response {
    let set: FaultSet = match serde_json::from_slice(&body) {
        Ok(set) => set,
        Err(e) => return bad_request(format!("expected {{\"seed\": 1, \"rules\": [...]}}: {e}")),
    };
    match s.faults.install(set) {
        Ok(()) => Json(s.faults.status()).into_response(),
        Err(e) => bad_request(e.to_string()),
    }
}

async fn clear_faults(State(s): AppState) -> Json<Json_> {
    s.faults.clear();
    Json(s.faults.status())
}

/// An admin request that cannot be served.
enum AdminError {
    BadRequest(String),
    NotFound(String),
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        match self {
            AdminError::BadRequest(m) => bad_request(m),
            AdminError::NotFound(m) => not_found(m),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SpineRequest {
    /// The feature service (default: the repository's first).
    service: Option<String>,
    /// Spine rows: join keys plus `timestamp_field`.
    #[serde(alias = "points")]
    spine: Vec<Json_>,
    #[serde(default = "default_timestamp_field")]
    timestamp_field: String,
    #[serde(default = "default_max_rows")]
    max_rows: usize,
    /// Consistency only: `"event_time"` (default) or `"ingestion"`.
    arrival: Option<String>,
    /// Consistency only: a field of the push source holding each record's arrival time.
    arrival_field: Option<String>,
}

fn default_timestamp_field() -> String {
    "timestamp".into()
}

fn default_max_rows() -> usize {
    crate::consistency::DEFAULT_MAX_ROWS
}

impl SpineRequest {
    /// The request, its feature service's name and its spine.
    fn parse(
        s: &MockState,
        body: &[u8],
    ) -> Result<(Self, String, Vec<crate::retrieval::SpineRow>), AdminError> {
        let req: SpineRequest = serde_json::from_slice(body).map_err(|e| {
            AdminError::BadRequest(format!("expected {{\"service\": \"...\", \"spine\": [{{<join keys>, \"timestamp\": \"...\"}}]}}: {e}"))
        })?;
        let service = req
            .service
            .clone()
            .or_else(|| s.repo.feature_services.first().map(|f| f.name.clone()))
            .ok_or_else(|| {
                AdminError::BadRequest("the repository has no feature service".into())
            })?;
        if s.repo.feature_service(&service).is_none() {
            return Err(AdminError::NotFound(format!(
                "no feature service named `{service}`"
            )));
        }
        let spine = crate::retrieval::spine_from_json(&req.spine, &req.timestamp_field)
            .map_err(|e| AdminError::BadRequest(e.to_string()))?;
        Ok((req, service, spine))
    }
}

/// Point-in-time features for a spine, from the offline store.
async fn offline_features(
    State(s): AppState,
    body: axum::body::Bytes,
) -> Result<Json<Json_>, AdminError> {
    let (_, service, spine) = SpineRequest::parse(&s, &body)?;
    let fs = s
        .repo
        .feature_service(&service)
        .ok_or_else(|| AdminError::NotFound(service.clone()))?;
    let features = crate::serving::served_features(&s.repo, fs);
    let rows = crate::retrieval::offline_features(&s, &features, &spine)
        .map_err(|e| AdminError::BadRequest(e.message()))?;
    Ok(Json(
        json!({"rows": crate::retrieval::rows_to_json(&features, &spine, &rows)}),
    ))
}

/// Online versus offline features at a set of points.
async fn consistency(
    State(s): AppState,
    body: axum::body::Bytes,
) -> Result<Json<Json_>, AdminError> {
    let (req, service, points) = SpineRequest::parse(&s, &body)?;
    use crate::consistency::{check, Arrival, CheckOptions};
    let arrival = match (req.arrival.as_deref(), req.arrival_field) {
        (None | Some("event_time"), None) => Arrival::EventTime,
        (Some("ingestion"), None) => Arrival::Ingestion,
        (None, Some(field)) => Arrival::Field(field),
        (Some(_), Some(_)) => {
            return Err(AdminError::BadRequest(
                "give either `arrival` or `arrival_field`, not both".into(),
            ))
        }
        (Some(other), None) => {
            return Err(AdminError::BadRequest(format!(
                "arrival `{other}`: expected \"event_time\" or \"ingestion\""
            )))
        }
    };
    let options = CheckOptions {
        arrival,
        max_rows: req.max_rows,
    };
    let report = check(&s, &service, &points, &options).map_err(|e| match e.status() {
        StatusCode::NOT_FOUND => AdminError::NotFound(e.message()),
        _ => AdminError::BadRequest(e.message()),
    })?;
    Ok(Json(json!(report)))
}

/// The Kafka consumer's progress: per partition, the next offset, lag and counts.
async fn kafka(State(s): AppState) -> Response {
    match &s.kafka {
        Some(status) => Json(status.to_json()).into_response(),
        None => {
            not_found("not consuming from Kafka (start with `serve --kafka-bootstrap HOST:PORT`)")
        }
    }
}
