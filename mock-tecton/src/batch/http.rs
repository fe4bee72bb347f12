//! The batch admin routes, nested under `/_mock`: job runs, manual runs and appends to a batch
//! source.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value as Json_};

use super::BatchError;
use crate::schema::parse_timestamp;
use crate::state::MockState;

type AppState = State<Arc<MockState>>;

/// The batch routes.
pub(crate) fn routes() -> Router<Arc<MockState>> {
    Router::new()
        .route("/batch/jobs", get(jobs))
        .route("/batch/{view}/run", post(run))
        .route("/batch/sources/{source}/rows", post(append))
}

impl IntoResponse for BatchError {
    fn into_response(self) -> Response {
        let status = match self {
            BatchError::UnknownSource(_) | BatchError::UnknownView(_) => StatusCode::NOT_FOUND,
            BatchError::BadRequest(_) => StatusCode::BAD_REQUEST,
            BatchError::File { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        };
        (status, Json(json!({"error": self.to_string()}))).into_response()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JobsQuery {
    view: Option<String>,
    limit: Option<usize>,
}

async fn jobs(State(s): AppState, Query(q): Query<JobsQuery>) -> Response {
    if let Some(v) = &q.view {
        if s.batch.view_slot(&s.repo, v).is_none() {
            return BatchError::UnknownView(v.clone()).into_response();
        }
    }
    let all = s.batch.jobs();
    let selected: Vec<_> = all
        .iter()
        .filter(|j| {
            q.view
                .as_ref()
                .is_none_or(|v| s.repo.feature_views[j.view].name == *v)
        })
        .collect();
    let limit = q.limit.unwrap_or(100);
    let jobs: Vec<Json_> = selected[selected.len().saturating_sub(limit)..]
        .iter()
        .map(|j| j.to_json(&s))
        .collect();
    let mut body = super::schedule::views_json(&s);
    body["jobs"] = Json_::Array(jobs);
    Json(body).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RunBody {
    start: String,
    end: String,
}

async fn run(State(s): AppState, Path(view): Path<String>, body: axum::body::Bytes) -> Response {
    let req: RunBody = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return BatchError::BadRequest(format!(
                "expected {{\"start\": \"<RFC 3339>\", \"end\": \"<RFC 3339>\"}}: {e}"
            ))
            .into_response()
        }
    };
    let window = parse_timestamp(&req.start)
        .map_err(|e| format!("start: {e}"))
        .and_then(|start| {
            parse_timestamp(&req.end)
                .map(|end| (start, end))
                .map_err(|e| format!("end: {e}"))
        });
    let (start, end) = match window {
        Ok(w) => w,
        Err(e) => return BatchError::BadRequest(e).into_response(),
    };
    match super::schedule::run_now(&s, &view, start, end) {
        Ok(run) => Json(run.to_json(&s)).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn append(
    State(s): AppState,
    Path(source): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let records = match crate::stream::http::parse_records(&body) {
        Ok(r) => r,
        Err(e) => return BatchError::BadRequest(e.to_string()).into_response(),
    };
    match s.batch_append(&source, &records) {
        Ok(out) => Json(json!(out)).into_response(),
        Err(e) => e.into_response(),
    }
}
