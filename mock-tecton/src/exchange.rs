//! The synchronous core of an exchange with a Tecton API: method, headers and body bytes in;
//! status, headers and body out. No socket, no runtime: the server wraps it with the journal
//! and the fault effects (latency, hangs, resets, slow bodies), and the `wiremock` responders
//! call it directly, so both answer with the same code.
//!
//! It runs in two steps so faults can be decided between them on what the body names (its
//! workspace and sources): [`admit`] checks the method, the key and the body and parses it;
//! [`handle`] lets the API module answer (writing the stores). [`answer`] is both, for a mock
//! without faults.

use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use bytes::Bytes;

use crate::faults::FaultAction;
use crate::ingest::{self, Dialect};
use crate::rejection::{reject, ErrorFormat, Rejection};
use crate::repo::ServiceAccount;
use crate::serving::{self, Endpoint, PathTarget, ServingContext};
use crate::state::MockState;

/// Which Tecton API an exchange belongs to; decides the handler and the error body format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Api {
    /// The Stream Ingest API.
    Ingest(Dialect),
    /// The feature serving API; `target` is the workspace and service of a v2 path.
    Serving {
        /// The endpoint.
        endpoint: Endpoint,
        /// `(workspace, service)` from a v2 path.
        target: Option<(String, String)>,
    },
}

impl Api {
    /// The v2 metadata endpoint is a GET; everything else is a POST.
    fn bodiless(&self) -> bool {
        matches!(
            self,
            Api::Serving {
                endpoint: Endpoint::Metadata,
                target: Some(_)
            }
        )
    }
}

/// What the mock answers: status, extra headers (the body is always JSON, or garbage on
/// purpose) and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Answer {
    /// The status.
    pub(crate) status: StatusCode,
    /// Headers beside `Content-Type: application/json`.
    pub(crate) headers: HeaderMap,
    /// The body.
    pub(crate) body: Bytes,
}

/// Why a body could not be had in full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyError {
    /// Larger than the limit; how many bytes were declared or seen.
    TooLarge(usize),
    /// The connection failed mid-body.
    Unreadable,
}

/// A request as the core sees it.
#[derive(Debug)]
pub(crate) struct Request<'r> {
    /// The method.
    pub(crate) method: &'r Method,
    /// The path, for messages.
    pub(crate) path: &'r str,
    /// The headers (`Authorization` is read).
    pub(crate) headers: &'r HeaderMap,
    /// The body, or why it could not be read.
    pub(crate) body: Result<Bytes, BodyError>,
    /// The exchange's sequence number, which the stores record with each row.
    pub(crate) seq: u64,
}

/// The outcome of [`admit`].
#[derive(Debug)]
pub(crate) enum Admission<'s> {
    /// Already answered: refused, or served by the fast ingest path.
    Answered {
        /// The answer.
        answer: Answer,
        /// The caller, when the key was known before the refusal.
        account: Option<&'s ServiceAccount>,
    },
    /// Authenticated and parsed: ready for [`handle`].
    Admitted {
        /// The caller.
        account: &'s ServiceAccount,
        /// The parsed body (`null` for a bodiless GET).
        json: serde_json::Value,
    },
}

impl Admission<'_> {
    /// The caller, once known.
    pub(crate) fn account(&self) -> Option<&ServiceAccount> {
        match self {
            Admission::Answered { account, .. } => *account,
            Admission::Admitted { account, .. } => Some(account),
        }
    }
}

/// Checks the method, the key and the body, then parses the body strictly. With `fast` (no
/// fault and no profile can apply), a valid ingest request is served here straight from its
/// bytes; anything else, every error included, goes the full way.
pub(crate) fn admit<'s>(
    state: &'s MockState,
    api: &Api,
    req: Request<'_>,
    fast: bool,
) -> Admission<'s> {
    let format = ErrorFormat::of(api);
    let refuse = |why, account| Admission::Answered {
        answer: reject(format, why),
        account,
    };
    let bodiless = api.bodiless();
    let method = if bodiless { Method::GET } else { Method::POST };
    if *req.method != method {
        let mut answer = reject(
            format,
            Rejection::MethodNotAllowed(format!(
                "{} is not allowed on {}; use {method}",
                req.method, req.path
            )),
        );
        // RFC 9110: a 405 lists the methods the path accepts.
        answer.headers.insert(
            header::ALLOW,
            HeaderValue::from_static(if bodiless { "GET" } else { "POST" }),
        );
        return Admission::Answered {
            answer,
            account: None,
        };
    }
    let account = match authenticate(state, req.headers) {
        Ok(a) => a,
        Err(m) => return refuse(Rejection::Unauthenticated(m.to_string()), None),
    };
    let limit = state.max_body_bytes;
    let bytes = match req.body {
        Ok(b) if b.len() <= limit => b,
        Ok(_) | Err(BodyError::TooLarge(_)) => {
            return refuse(Rejection::PayloadTooLarge { limit }, Some(account));
        }
        Err(BodyError::Unreadable) => {
            let why = Rejection::Invalid("The request body could not be read".into());
            return refuse(why, Some(account));
        }
    };
    if let (Api::Ingest(dialect), true) = (api, fast) {
        let ctx = state.ingest_context(req.seq);
        if let Some(ok) = ingest::handle_fast(&ctx, account, *dialect, &bytes) {
            return Admission::Answered {
                answer: ok_json(serde_json::to_vec(&ok).unwrap_or_default()),
                account: Some(account),
            };
        }
    }
    let json = if bodiless && bytes.is_empty() {
        serde_json::Value::Null
    } else {
        match crate::json::parse_strict(&bytes) {
            Ok(j) => j,
            Err(e) => return refuse(Rejection::Invalid(e.to_string()), Some(account)),
        }
    };
    Admission::Admitted { account, json }
}

/// Lets the API module answer an admitted request, writing the stores. `drift` is a schema
/// drift fault to apply to the records.
pub(crate) fn handle(
    state: &MockState,
    api: &Api,
    account: &ServiceAccount,
    json: serde_json::Value,
    seq: u64,
    drift: Option<&FaultAction>,
) -> Answer {
    match api {
        Api::Ingest(dialect) => {
            let mut ctx = state.ingest_context(seq);
            ctx.drift = drift;
            match ingest::handle_value(&ctx, account, *dialect, json) {
                Ok(ok) => ok_json(serde_json::to_vec(&ok).unwrap_or_default()),
                Err(e) => e.into(),
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
                Ok(ok) => ok_json(ok.to_string().into_bytes()),
                Err(e) => e.into(),
            }
        }
    }
}

/// The whole exchange for a mock without faults or profile: [`admit`], then [`handle`].
#[cfg_attr(not(feature = "wiremock"), allow(dead_code))]
pub(crate) fn answer(state: &MockState, api: &Api, req: Request<'_>) -> Answer {
    let seq = req.seq;
    match admit(state, api, req, true) {
        Admission::Answered { answer, .. } => answer,
        Admission::Admitted { account, json } => handle(state, api, account, json, seq, None),
    }
}

impl axum::response::IntoResponse for Answer {
    fn into_response(self) -> axum::response::Response {
        let mut resp = (self.status, self.headers, self.body).into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        resp
    }
}

fn ok_json(body: Vec<u8>) -> Answer {
    Answer {
        status: StatusCode::OK,
        headers: HeaderMap::new(),
        body: Bytes::from(body),
    }
}

/// Why a request carries no usable key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum KeyError {
    /// No `Authorization` header.
    #[error("Missing `Authorization: Tecton-key <API key>` header")]
    Missing,
    /// Another scheme than `Tecton-key`.
    #[error("The Authorization header must be of the form `Tecton-key <API key>`")]
    Malformed,
    /// No service account has the key.
    #[error("invalid 'Tecton-key' authorization header. Note that newly created credentials may take up to 60 seconds to be usable.")]
    Unknown,
}

/// Finds the service account of an `Authorization: Tecton-key <key>` header.
fn authenticate<'s>(
    state: &'s MockState,
    headers: &HeaderMap,
) -> Result<&'s ServiceAccount, KeyError> {
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or(KeyError::Missing)?;
    let value = value.to_str().unwrap_or_default().trim();
    let key = match value.split_once(' ') {
        Some((scheme, key)) if scheme.eq_ignore_ascii_case("Tecton-key") => key.trim(),
        _ => return Err(KeyError::Malformed),
    };
    state.repo.account_for_key(key).ok_or(KeyError::Unknown)
}
