//! The one path every exchange with a Tecton API takes.
//!
//! It flows one way: the exchange takes a journal sequence number; faults that act before the
//! body is read get their say; the method, key and body size are checked; the body is parsed
//! strictly; faults that filter on workspace or source get their say; the API module handles
//! the request (writing the stores); the response leaves, possibly misbehaving; and the
//! exchange is journaled, including when the client goes away first or a fault cuts it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use http_body_util::{BodyExt, LengthLimitError, Limited};

use super::body::ScriptedBody;
use super::conn::ConnControl;
use super::Api;
use crate::clock::wall_now;
use crate::decisions;
use crate::faults::{Decision, FaultAction, RequestFacts};
use crate::ingest::{self, Dialect, IngestError};
use crate::journal::{Entry, Outcome};
use crate::profile::Traffic;
use crate::repo::ServiceAccount;
use crate::serving::{self, Endpoint, PathTarget, ServingContext, ServingError};
use crate::state::MockState;

pub(super) async fn ingest_v1(State(state): State<Arc<MockState>>, req: Request) -> Response {
    exchange(state, Api::Ingest(Dialect::V1), req).await
}

pub(super) async fn ingest_v2(State(state): State<Arc<MockState>>, req: Request) -> Response {
    exchange(state, Api::Ingest(Dialect::V2), req).await
}

pub(super) async fn serving_v1(
    State(state): State<Arc<MockState>>,
    Path(endpoint): Path<String>,
    req: Request,
) -> Response {
    match Endpoint::from_segment(&endpoint) {
        Some(endpoint) => {
            exchange(
                state,
                Api::Serving {
                    endpoint,
                    target: None,
                },
                req,
            )
            .await
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
            exchange(
                state,
                Api::Serving {
                    endpoint,
                    target: Some((workspace, service)),
                },
                req,
            )
            .await
        }
        _ => unknown_path(State(state), req).await,
    }
}

pub(super) async fn unknown_path(State(state): State<Arc<MockState>>, req: Request) -> Response {
    let record = ExchangeRecord::begin(state, req.method(), req.uri().path(), None);
    let message = format!("No such endpoint: {} {}", req.method(), req.uri().path());
    let Answer(status, body, headers) = reject(
        ErrorFormat::for_path(req.uri().path()),
        Reject::NotFound(message),
    );
    record.respond(status, body, headers)
}

/// Records an exchange when dropped, so a client that hangs up, or a fault that cuts the
/// connection, still leaves a journal entry with the right outcome.
struct ExchangeRecord {
    state: Arc<MockState>,
    entry: Entry,
    started: Instant,
    control: Option<Arc<ConnControl>>,
}

impl ExchangeRecord {
    fn begin(
        state: Arc<MockState>,
        method: &Method,
        path: &str,
        control: Option<Arc<ConnControl>>,
    ) -> Self {
        let entry = Entry {
            seq: state.journal.next_seq(),
            received_at: wall_now(),
            mock_time: state.clock.now(),
            method: method.to_string(),
            path: path.to_owned(),
            // Until a response leaves, the exchange counts as abandoned by the client.
            outcome: Outcome::ClientGone,
            ..Entry::default()
        };
        ExchangeRecord {
            state,
            entry,
            started: Instant::now(),
            control,
        }
    }

    fn note_fault(&mut self, decision: &Decision) {
        self.entry.fault = Some(decision.label.clone());
        self.entry.fault_action = Some(decision.action.clone());
    }

    /// Builds the response and marks the exchange answered.
    fn respond(self, status: StatusCode, body: Bytes, headers: HeaderMap) -> Response {
        self.respond_with(status, body, headers, None)
    }

    /// Builds a response whose body misbehaves; the exchange is journaled when that body ends,
    /// so a client that leaves mid-body shows as gone.
    fn respond_scripted(
        self,
        status: StatusCode,
        body: Bytes,
        headers: HeaderMap,
        scripted: ScriptedBody,
    ) -> Response {
        self.respond_with(status, body, headers, Some(scripted))
    }

    fn respond_with(
        mut self,
        status: StatusCode,
        body: Bytes,
        headers: HeaderMap,
        scripted: Option<ScriptedBody>,
    ) -> Response {
        self.entry.status = status.as_u16();
        self.entry.response_body = body.clone();
        // A fault may have held the request past the client's patience: then nobody reads this.
        let held_and_gone = self.entry.fault.is_some()
            && self
                .control
                .as_deref()
                .is_some_and(ConnControl::client_closed);
        if self.entry.outcome == Outcome::ClientGone && !held_and_gone {
            self.entry.outcome = Outcome::Responded;
        }
        let mut resp = Response::new(Body::empty());
        *resp.status_mut() = status;
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        resp.headers_mut().extend(headers);
        match scripted {
            None => *resp.body_mut() = Body::from(body),
            Some(scripted) => {
                // The declared length is the full body's, so a cut body is a short read.
                resp.headers_mut()
                    .insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
                let mut record = self;
                *resp.body_mut() = Body::new(scripted.on_end(move |completed| {
                    if !completed && record.entry.outcome == Outcome::Responded {
                        record.entry.outcome = Outcome::ClientGone;
                    }
                    drop(record);
                }));
            }
        }
        resp
    }
}

impl Drop for ExchangeRecord {
    fn drop(&mut self) {
        let mut entry = std::mem::take(&mut self.entry);
        entry.duration_us = u64::try_from(self.started.elapsed().as_micros()).unwrap_or(u64::MAX);
        tracing::info!(
            method = %entry.method,
            path = %entry.path,
            status = entry.status,
            fault = %entry.fault.as_deref().unwrap_or("-"),
            ms = entry.duration_us as f64 / 1e3,
            outcome = ?entry.outcome,
            "request"
        );
        self.state.journal.record(entry);
    }
}

/// What the API module answered: status, body and extra headers.
struct Answer(StatusCode, Bytes, HeaderMap);

async fn exchange(state: Arc<MockState>, api: Api, req: Request) -> Response {
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
        read_and_handle(
            &state,
            &api,
            &parts,
            body,
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
    let (status, bytes, headers) = match outcome {
        Ok(Answer(s, b, h)) => (s, b, h),
        Err(early) => return early.into_response(record),
    };

    match fault.map(|d| d.action) {
        Some(FaultAction::ResetAfterBody { .. }) => {
            record.entry.status = status.as_u16();
            record.entry.response_body = bytes;
            cut_connection(&mut record, control.as_deref(), Outcome::Reset).await
        }
        Some(FaultAction::Truncate) => {
            record.entry.outcome = Outcome::Truncated;
            record.respond_scripted(
                status,
                bytes.clone(),
                headers,
                ScriptedBody::truncated(bytes),
            )
        }
        Some(FaultAction::Dribble {
            chunk_bytes,
            interval_ms,
        }) => {
            let interval = Duration::from_millis(interval_ms.unwrap_or(100));
            let scripted = ScriptedBody::dribble(bytes.clone(), chunk_bytes.unwrap_or(8), interval);
            record.respond_scripted(status, bytes, headers, scripted)
        }
        _ => record.respond(status, bytes, headers),
    }
}

/// An exchange that ends before (or instead of) normal handling.
enum Early {
    /// Answer with this.
    Answer(StatusCode, Bytes, HeaderMap),
    /// The connection was (or will be) cut; the journal entry is already complete.
    Cut(Response),
}

impl Early {
    fn into_response(self, record: ExchangeRecord) -> Response {
        match self {
            Early::Answer(s, b, h) => record.respond(s, b, h),
            Early::Cut(resp) => {
                drop(record);
                resp
            }
        }
    }
}

/// Applies the faults that act before the request is handled: error statuses, garbage,
/// latency, hangs and resets before the body is read. `None` means "go on handling".
async fn act_before_handling(
    decision: &Decision,
    record: &mut ExchangeRecord,
    control: Option<&ConnControl>,
    api: &Api,
) -> Option<Early> {
    match &decision.action {
        FaultAction::Status {
            status,
            retry_after_s,
            message,
        } => {
            let status = StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let body = match api {
                Api::Ingest(_) => {
                    let (kind, default) = decisions::injected_error(status.as_u16());
                    ingest::request_error(kind, message.as_deref().unwrap_or(default))
                }
                Api::Serving { .. } => {
                    let default = decisions::injected_serving_message(status.as_u16());
                    ServingError::new(status.as_u16(), message.as_deref().unwrap_or(default)).body()
                }
            };
            let mut headers = HeaderMap::new();
            if let Some(s) = retry_after_s {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*s));
            }
            Some(Early::Answer(
                status,
                Bytes::from(body.to_string()),
                headers,
            ))
        }
        FaultAction::Garbage { status } => {
            let status = StatusCode::from_u16(status.unwrap_or(200)).unwrap_or(StatusCode::OK);
            Some(Early::Answer(
                status,
                garbage(decision.random),
                HeaderMap::new(),
            ))
        }
        FaultAction::Latency { ms, max_ms } => {
            tokio::time::sleep(Duration::from_millis(latency_ms(
                *ms,
                *max_ms,
                decision.random,
            )))
            .await;
            None
        }
        FaultAction::Hang { max_ms } => {
            let max = Duration::from_millis(max_ms.unwrap_or(decisions::DEFAULT_HANG_MS));
            Some(hang(record, control, max).await)
        }
        // The exchange resets before reading for rules decided early; a rule decided after the
        // body (validation forbids that combination) would still get the reset it asked for.
        FaultAction::ResetBeforeBody => Some(Early::Cut(
            cut_connection(record, control, Outcome::Reset).await,
        )),
        FaultAction::Pass
        | FaultAction::ResetAfterBody { .. }
        | FaultAction::Truncate
        | FaultAction::Dribble { .. }
        | FaultAction::SchemaDrift { .. } => None,
    }
}

/// The feature server's 504 when a request outlives the profile's timeout.
fn serving_timeout(record: &mut ExchangeRecord, limit: Duration) -> Early {
    let label = format!("tecton profile: 504 after {} ms", limit.as_millis());
    record.entry.fault = Some(match record.entry.fault.take() {
        Some(earlier) => format!("{earlier}; {label}"),
        None => label,
    });
    let body = ServingError::new(504, decisions::injected_serving_message(504)).body();
    Early::Answer(
        StatusCode::GATEWAY_TIMEOUT,
        Bytes::from(body.to_string()),
        HeaderMap::new(),
    )
}

/// Holds the request until the client hangs up, or until `max`, then closes without answering.
async fn hang(record: &mut ExchangeRecord, control: Option<&ConnControl>, max: Duration) -> Early {
    let deadline = Instant::now() + max;
    while Instant::now() < deadline {
        if control.is_some_and(ConnControl::client_closed) {
            record.entry.outcome = Outcome::ClientGone;
            return Early::Cut(Response::new(Body::empty()));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    record.entry.outcome = Outcome::Abandoned;
    match control {
        Some(c) => {
            c.close();
            std::future::pending::<()>().await;
            Early::Cut(Response::new(Body::empty()))
        }
        None => Early::Cut(Response::new(Body::empty())),
    }
}

/// Resets the connection; the handler is dropped by the connection task, which journals it.
async fn cut_connection(
    record: &mut ExchangeRecord,
    control: Option<&ConnControl>,
    outcome: Outcome,
) -> Response {
    record.entry.outcome = outcome;
    if let Some(c) = control {
        c.reset();
        std::future::pending::<()>().await;
    }
    Response::new(Body::empty())
}

fn latency_ms(ms: u64, max_ms: Option<u64>, random: u64) -> u64 {
    match max_ms {
        Some(max) if max > ms => ms + random % (max - ms + 1),
        _ => ms,
    }
}

/// Seeded bytes that are not JSON.
fn garbage(random: u64) -> Bytes {
    let mut x = random;
    let mut out = b"\x00<garbage>".to_vec();
    for _ in 0..48 {
        x = crate::faults::mix(x, 1, 2);
        out.push((x & 0xff) as u8);
    }
    Bytes::from(out)
}

/// The error body shape of an API: Stream Ingest's `requestError`, or the feature server's
/// `{"error","message","code"}`.
#[derive(Debug, Clone, Copy)]
enum ErrorFormat {
    Ingest,
    Serving,
}

impl ErrorFormat {
    fn of(api: &Api) -> Self {
        match api {
            Api::Ingest(_) => ErrorFormat::Ingest,
            Api::Serving { .. } => ErrorFormat::Serving,
        }
    }

    /// For a path no route matched: under `/api/` it is the feature server's.
    fn for_path(path: &str) -> Self {
        if path.starts_with("/api/") {
            ErrorFormat::Serving
        } else {
            ErrorFormat::Ingest
        }
    }
}

/// Why a request is refused before its API module sees it.
enum Reject {
    NotFound(String),
    Method(String),
    Unauthenticated(String),
    TooLarge(usize),
    Invalid(String),
}

/// The one place a pre-handling refusal becomes a response, in the API's own error format.
fn reject(format: ErrorFormat, why: Reject) -> Answer {
    let (status, body) = match format {
        ErrorFormat::Ingest => {
            let e = match why {
                Reject::NotFound(m) => IngestError::NotFound(m),
                Reject::Method(m) => IngestError::MethodNotAllowed(m),
                Reject::Unauthenticated(m) => IngestError::Unauthenticated(m),
                Reject::TooLarge(limit) => IngestError::PayloadTooLarge { limit },
                Reject::Invalid(m) => IngestError::Invalid(m),
            };
            (e.status(), e.body())
        }
        ErrorFormat::Serving => {
            let e = match why {
                Reject::NotFound(m) => ServingError::new(404, m),
                Reject::Method(m) => ServingError::new(405, m),
                Reject::Unauthenticated(_) => ServingError::unauthenticated(),
                Reject::TooLarge(limit) => ServingError::new(
                    413,
                    format!("The request body is larger than the limit of {limit} bytes"),
                ),
                Reject::Invalid(m) => ServingError::invalid(m),
            };
            (e.status, e.body())
        }
    };
    Answer(
        StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
        Bytes::from(body.to_string()),
        HeaderMap::new(),
    )
}

async fn read_and_handle(
    state: &MockState,
    api: &Api,
    parts: &axum::http::request::Parts,
    body: Result<Bytes, BodyError>,
    record: &mut ExchangeRecord,
    fault: &mut Option<Decision>,
    control: Option<&ConnControl>,
) -> Result<Answer, Early> {
    // The v2 metadata endpoint is a GET; everything else is a POST.
    let bodiless = matches!(
        api,
        Api::Serving {
            endpoint: Endpoint::Metadata,
            target: Some(_)
        }
    );
    let method = if bodiless { Method::GET } else { Method::POST };
    if parts.method != method {
        let mut answer = reject(
            ErrorFormat::of(api),
            Reject::Method(format!(
                "{} is not allowed on {}; use {method}",
                parts.method,
                parts.uri.path()
            )),
        );
        // RFC 9110: a 405 lists the methods the path accepts.
        answer.2.insert(
            header::ALLOW,
            HeaderValue::from_static(if bodiless { "GET" } else { "POST" }),
        );
        return Ok(answer);
    }
    let account = match authenticate(state, &parts.headers) {
        Ok(a) => a,
        Err(m) => return Ok(reject(ErrorFormat::of(api), Reject::Unauthenticated(m))),
    };
    record.entry.key_id = Some(account.name.clone());
    let bytes = match body {
        Ok(b) => b,
        Err(BodyError::TooLarge(_)) => {
            return Ok(reject(
                ErrorFormat::of(api),
                Reject::TooLarge(state.max_body_bytes),
            ));
        }
        Err(BodyError::Unreadable) => {
            return Ok(reject(
                ErrorFormat::of(api),
                Reject::Invalid("The request body could not be read".into()),
            ))
        }
    };
    // The fast path skips fault and profile decisions, so it runs only when neither applies.
    let plain = state.faults.is_empty() && state.profile.is_none();
    if let (Api::Ingest(dialect), None, true) = (api, fault.as_ref(), plain) {
        // A valid request goes straight from bytes to typed values; anything else (including
        // every error) takes the full path below.
        let ctx = state.ingest_context(record.entry.seq);
        if let Some(ok) = ingest::handle_fast(&ctx, account, *dialect, &bytes) {
            return Ok(Answer(
                StatusCode::OK,
                Bytes::from(serde_json::to_vec(&ok).unwrap_or_default()),
                HeaderMap::new(),
            ));
        }
    }
    let json = if bodiless && bytes.is_empty() {
        serde_json::Value::Null
    } else {
        match crate::json::parse_strict(&bytes) {
            Ok(j) => j,
            Err(m) => return Ok(reject(ErrorFormat::of(api), Reject::Invalid(m))),
        }
    };
    if fault.is_none() && !state.faults.is_empty() {
        let (workspace, sources) = match api {
            Api::Ingest(dialect) => ingest::target_of(&json, *dialect),
            Api::Serving { .. } => (None, Vec::new()),
        };
        *fault = state.faults.decide(RequestFacts {
            path: parts.uri.path(),
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
        _ => (None, true),
    };
    if !process {
        return Ok(Answer(StatusCode::OK, Bytes::new(), HeaderMap::new()));
    }
    let (status, body) = match api {
        Api::Ingest(dialect) => {
            let mut ctx = state.ingest_context(record.entry.seq);
            ctx.drift = drift;
            match ingest::handle_value(&ctx, account, *dialect, json) {
                Ok(ok) => (200, serde_json::to_vec(&ok).unwrap_or_default()),
                Err(e) => (e.status(), e.body().to_string().into_bytes()),
            }
        }
        Api::Serving { endpoint, target } => {
            let ctx = ServingContext {
                repo: &state.repo,
                online: &state.online,
                now: state.clock.now(),
            };
            let target = target
                .as_ref()
                .map(|(workspace, service)| PathTarget { workspace, service });
            match serving::handle(&ctx, account, *endpoint, &json, target) {
                Ok(ok) => (200, ok.to_string().into_bytes()),
                Err(e) => (e.status, e.body().to_string().into_bytes()),
            }
        }
    };
    Ok(Answer(
        StatusCode::from_u16(status).unwrap_or(StatusCode::OK),
        Bytes::from(body),
        HeaderMap::new(),
    ))
}

/// Finds the service account of an `Authorization: Tecton-key <key>` header.
fn authenticate<'s>(
    state: &'s MockState,
    headers: &HeaderMap,
) -> Result<&'s ServiceAccount, String> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err("Missing `Authorization: Tecton-key <API key>` header".into());
    };
    let value = value.to_str().unwrap_or_default().trim();
    let key = match value.split_once(' ') {
        Some((scheme, key)) if scheme.eq_ignore_ascii_case("Tecton-key") => key.trim(),
        _ => {
            return Err(
                "The Authorization header must be of the form `Tecton-key <API key>`".into(),
            )
        }
    };
    state
        .repo
        .account_for_key(key)
        .ok_or_else(|| "invalid 'Tecton-key' authorization header. Note that newly created credentials may take up to 60 seconds to be usable.".into())
}

enum BodyError {
    /// Larger than the limit; how many bytes were declared or seen.
    TooLarge(usize),
    /// The connection failed mid-body.
    Unreadable,
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
