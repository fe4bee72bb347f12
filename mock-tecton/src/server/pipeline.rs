//! The one path every exchange with a Tecton API takes on the server.
//!
//! It flows one way: the exchange takes a journal sequence number; faults that act before the
//! body is read get their say; the body is read under the size limit; the synchronous core
//! checks the method, key and body and parses it ([`exchange::admit`]); faults that filter on
//! workspace or source get their say, then the Tecton profile; the API module handles the
//! request, writing the stores ([`exchange::handle`]); the response leaves, possibly
//! misbehaving; and the exchange is journaled, including when the client goes away first or a
//! fault cuts it.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use http_body_util::{BodyExt, LengthLimitError, Limited};

use super::conn::ConnControl;
use super::effects::{act_before_handling, cut_connection, deliver, serving_timeout, Early};
use super::record::ExchangeRecord;
use crate::exchange::{self, Admission, Answer, Api, BodyError};
use crate::faults::{Decision, FaultAction, RequestFacts};
use crate::ingest::{self, Dialect};
use crate::journal::Outcome;
use crate::profile::Traffic;
use crate::rejection::{reject, ErrorFormat, Rejection};
use crate::serving::Endpoint;
use crate::state::MockState;

pub(super) async fn ingest_v1(State(state): State<Arc<MockState>>, req: Request) -> Response {
    serve(state, Api::Ingest(Dialect::V1), req).await
}

pub(super) async fn ingest_v2(State(state): State<Arc<MockState>>, req: Request) -> Response {
    serve(state, Api::Ingest(Dialect::V2), req).await
}

pub(super) async fn serving_v1(
    State(state): State<Arc<MockState>>,
    Path(endpoint): Path<String>,
    req: Request,
) -> Response {
    match Endpoint::from_segment(&endpoint) {
        Some(endpoint) => {
            let api = Api::Serving {
                endpoint,
                target: None,
            };
            serve(state, api, req).await
        }
        None => unknown_path(State(state), req).await,
    }
}

pub(super) async fn serving_v2(
    State(state): State<Arc<MockState>>,
    Path((workspace, service, endpoint)): Path<(String, String, String)>,
    req: Request,
) -> Response {
    match Endpoint::from_segment(&endpoint) {
        Some(
            endpoint @ (Endpoint::GetFeatures | Endpoint::GetFeaturesBatch | Endpoint::Metadata),
        ) => {
            let api = Api::Serving {
                endpoint,
                target: Some((workspace, service)),
            };
            serve(state, api, req).await
        }
        // The v1 endpoints have no v2 path.
        Some(Endpoint::QueryFeatures | Endpoint::ServiceState) | None => {
            unknown_path(State(state), req).await
        }
    }
}

pub(super) async fn unknown_path(State(state): State<Arc<MockState>>, req: Request) -> Response {
    let record = ExchangeRecord::begin(state, req.method(), req.uri().path(), None);
    let message = format!("No such endpoint: {} {}", req.method(), req.uri().path());
    let format = ErrorFormat::for_path(req.uri().path());
    record.respond(reject(format, Rejection::NotFound(message)))
}

async fn serve(state: Arc<MockState>, api: Api, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let control = parts.extensions.get::<Arc<ConnControl>>().cloned();
    let path = parts.uri.path().to_owned();
    let mut record = ExchangeRecord::begin(state.clone(), &parts.method, &path, control.clone());

    let mut fault = if state.faults.is_empty() {
        None
    } else {
        state.faults.decide(RequestFacts {
            path: &path,
            workspace: None,
            sources: &[],
            body_read: false,
        })
    };
    if let Some(decision) = &fault {
        record.note_fault(decision);
        if decision.action == FaultAction::ResetBeforeBody {
            return cut_connection(&mut record, control.as_deref(), Outcome::Reset).await;
        }
    }
    // Every other fault acts after the body is read, so the journal shows what each exchange
    // carried (checks identify retries by their records).
    let body = read_body(body, &parts.headers, state.max_body_bytes).await;
    match &body {
        Ok(bytes) => {
            record.entry.request_bytes = bytes.len();
            record.entry.request_body = bytes.clone();
        }
        Err(BodyError::TooLarge(n)) => record.entry.request_bytes = *n,
        Err(BodyError::Unreadable) => {}
    }
    // Under the Tecton profile the feature server answers 504 at its timeout, whatever held
    // the request (the profile's latency, an injected latency or hang).
    let deadline = match (&api, &state.profile) {
        (Api::Serving { .. }, Some(p)) => Some(p.serving_timeout()),
        _ => None,
    };
    let handled = async {
        if let Some(decision) = &fault {
            if let Some(early) =
                act_before_handling(decision, &mut record, control.as_deref(), &api).await
            {
                return Err(early);
            }
        }
        let request = exchange::Request {
            method: &parts.method,
            path: &path,
            headers: &parts.headers,
            body,
            seq: record.entry.seq,
        };
        admit_and_handle(
            &state,
            &api,
            request,
            &mut record,
            &mut fault,
            control.as_deref(),
        )
        .await
    };
    let outcome = match deadline {
        None => handled.await,
        Some(limit) => match tokio::time::timeout(limit, handled).await {
            Ok(outcome) => outcome,
            Err(_) => Err(serving_timeout(&mut record, limit)),
        },
    };
    match outcome {
        Ok(answer) => deliver(record, control.as_deref(), answer, fault.map(|d| d.action)).await,
        Err(early) => early.into_response(record),
    }
}

/// The core's two steps with the fault and profile decisions that need the parsed body
/// between them.
async fn admit_and_handle(
    state: &MockState,
    api: &Api,
    request: exchange::Request<'_>,
    record: &mut ExchangeRecord,
    fault: &mut Option<Decision>,
    control: Option<&ConnControl>,
) -> Result<Answer, Early> {
    let path = request.path;
    let seq = request.seq;
    // The fast path skips fault and profile decisions, so it runs only when neither applies.
    let fast = fault.is_none() && state.faults.is_empty() && state.profile.is_none();
    let admission = exchange::admit(state, api, request, fast);
    if let Some(account) = admission.account() {
        record.entry.key_id = Some(account.name.clone());
    }
    let (account, json) = match admission {
        Admission::Answered { answer, .. } => return Ok(answer),
        Admission::Admitted { account, json } => (account, json),
    };
    if fault.is_none() && !state.faults.is_empty() {
        let (workspace, sources) = match api {
            Api::Ingest(dialect) => ingest::target_of(&json, *dialect),
            Api::Serving { .. } => (None, Vec::new()),
        };
        *fault = state.faults.decide(RequestFacts {
            path,
            workspace,
            sources: &sources,
            body_read: true,
        });
        if let Some(decision) = fault.as_ref() {
            record.note_fault(decision);
            if let Some(early) = act_before_handling(decision, record, control, api).await {
                return Err(early);
            }
        }
    }
    if let (None, Some(profile)) = (fault.as_ref(), &state.profile) {
        let traffic = match api {
            Api::Ingest(_) => Traffic::of_ingest(&json),
            Api::Serving { .. } => Traffic::of_serving(&json),
        };
        let decision = fault.insert(profile.decide(traffic));
        record.note_fault(decision);
        if let Some(early) = act_before_handling(decision, record, control, api).await {
            return Err(early);
        }
    }
    let (drift, process) = match fault.as_ref().map(|d| &d.action) {
        Some(a @ FaultAction::SchemaDrift { .. }) => (Some(a), true),
        Some(FaultAction::ResetAfterBody { process }) => (None, *process),
        None
        | Some(
            FaultAction::Pass
            | FaultAction::Status { .. }
            | FaultAction::Latency { .. }
            | FaultAction::Hang { .. }
            | FaultAction::ResetBeforeBody
            | FaultAction::Truncate
            | FaultAction::Dribble { .. }
            | FaultAction::Garbage { .. },
        ) => (None, true),
    };
    if !process {
        return Ok(Answer {
            status: StatusCode::OK,
            headers: HeaderMap::new(),
            body: Bytes::new(),
        });
    }
    Ok(exchange::handle(state, api, account, json, seq, drift))
}

/// Reads a body under `limit` without buffering more than `limit` bytes of it.
async fn read_body(body: Body, headers: &HeaderMap, limit: usize) -> Result<Bytes, BodyError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if let Some(n) = declared.filter(|n| *n > limit) {
        return Err(BodyError::TooLarge(n));
    }
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
            Err(BodyError::TooLarge(declared.unwrap_or(limit + 1)))
        }
        Err(_) => Err(BodyError::Unreadable),
    }
}
