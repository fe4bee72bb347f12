//! The stream admin routes, nested under `/_mock`: produce to a topic, read progress and the
//! per-event journal of each stream.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value as Json_};

use super::StreamError;
use crate::state::MockState;

type AppState = State<Arc<MockState>>;

/// The stream routes.
pub(crate) fn routes() -> Router<Arc<MockState>> {
    Router::new()
        .route("/topics", get(topics))
        .route("/topics/{topic}", post(produce).get(topic))
        .route("/streams", get(streams))
        .route("/streams/{source}/progress", get(progress))
        .route("/streams/{source}/journal", get(journal))
}

impl IntoResponse for StreamError {
    fn into_response(self) -> Response {
        let status = match self {
            StreamError::UnknownTopic(_) | StreamError::UnknownSource(_) => StatusCode::NOT_FOUND,
            StreamError::BadBody(_) => StatusCode::BAD_REQUEST,
        };
        (status, Json(json!({"error": self.to_string()}))).into_response()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProduceQuery {
    partition: Option<u32>,
    produced_at_ns: Option<i64>,
}

/// Reads a produce body: a JSON array of records, or JSON Lines (one record per line; a single
/// JSON object is one line).
pub(crate) fn parse_records(body: &[u8]) -> Result<Vec<Json_>, StreamError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(StreamError::BadBody(
            "the body is empty; expected JSON Lines or a JSON array of records".into(),
        ));
    }
    if let Ok(value) = crate::json::parse_strict(body) {
        return Ok(match value {
            Json_::Array(items) => items,
            other => vec![other],
        });
    }
    let mut out = Vec::new();
    for (n, line) in body.split(|b| *b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let value = crate::json::parse_strict(line).map_err(|e| {
            StreamError::BadBody(format!(
                "line {}: {e}; expected JSON Lines or a JSON array of records",
                n + 1
            ))
        })?;
        out.push(value);
    }
    Ok(out)
}

async fn produce(
    State(s): AppState,
    Path(topic): Path<String>,
    query: Result<Query<ProduceQuery>, axum::extract::rejection::QueryRejection>,
    body: axum::body::Bytes,
) -> Result<Json<Json_>, StreamError> {
    let Query(q) = query.map_err(|e| {
        StreamError::BadBody(format!(
            "query: {e}; expected partition=<n> and produced_at_ns=<unix ns>"
        ))
    })?;
    if s.streams.topic(&topic).is_none() {
        return Err(StreamError::UnknownTopic(topic));
    }
    let records = parse_records(&body)?;
    let offsets = s.produce(&topic, &records, q.partition, q.produced_at_ns)?;
    Ok(Json(json!({"topic": topic, "offsets": offsets})))
}

async fn topics(State(s): AppState) -> Json<Json_> {
    Json(json!({"topics": s.streams.topics().iter().map(topic_json).collect::<Vec<_>>()}))
}

async fn topic(State(s): AppState, Path(topic): Path<String>) -> Result<Json<Json_>, StreamError> {
    let t = s
        .streams
        .topic(&topic)
        .ok_or(StreamError::UnknownTopic(topic))?;
    Ok(Json(topic_json(t)))
}

fn topic_json(t: &super::Topic) -> Json_ {
    json!({
        "topic": t.name(),
        "partitions": t.partition_count(),
        "end_offsets": t.end_offsets(),
        "records_held": t.held(),
    })
}

async fn streams(State(s): AppState) -> Json<Json_> {
    Json(s.streams.summary(&s.repo))
}

#[derive(Deserialize)]
struct RecentQuery {
    recent: Option<usize>,
    limit: Option<usize>,
}

fn source_index(s: &MockState, name: &str) -> Result<usize, StreamError> {
    s.repo
        .stream_sources
        .iter()
        .position(|x| x.name == name)
        .ok_or_else(|| StreamError::UnknownSource(name.to_owned()))
}

async fn progress(
    State(s): AppState,
    Path(source): Path<String>,
    Query(q): Query<RecentQuery>,
) -> Result<Json<Json_>, StreamError> {
    let i = source_index(&s, &source)?;
    Ok(Json(s.streams.progress(&s.repo, i, q.recent.unwrap_or(10))))
}

async fn journal(
    State(s): AppState,
    Path(source): Path<String>,
    Query(q): Query<RecentQuery>,
) -> Result<Json<Json_>, StreamError> {
    let i = source_index(&s, &source)?;
    Ok(Json(s.streams.journal(
        &s.repo,
        i,
        q.limit.unwrap_or(1_000),
    )))
}
