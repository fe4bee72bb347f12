//! Refusals: the one place where a request the mock will not serve becomes a status and a JSON
//! body, in the error format of the API it was sent to.
//!
//! Each [`Rejection`] kind carries its HTTP status; [`reject`] renders it as Stream Ingest's
//! `requestError`, the feature server's `{"error","message","code"}` or the admin API's
//! `{"error"}`, through the API's own error type ([`IngestError`], [`ServingError`]).

use axum::http::{HeaderMap, StatusCode};
use bytes::Bytes;
use serde_json::json;

use crate::decisions;
use crate::exchange::{Answer, Api};
use crate::ingest::{self, IngestError};
use crate::serving::ServingError;

/// The error body shape of an API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ErrorFormat {
    /// Stream Ingest: `{"requestError": {"errorMessage", "errorType"}}`.
    Ingest,
    /// The feature server: `{"error", "message", "code"}`.
    Serving,
    /// The mock's own `/_mock/` API: `{"error"}`.
    Admin,
}

impl ErrorFormat {
    /// The format of a Tecton API.
    pub(crate) fn of(api: &Api) -> Self {
        match api {
            Api::Ingest(_) => ErrorFormat::Ingest,
            Api::Serving { .. } => ErrorFormat::Serving,
        }
    }

    /// For a path no route matched: under `/api/` it is the feature server's.
    pub(crate) fn for_path(path: &str) -> Self {
        if path.starts_with("/api/") {
            ErrorFormat::Serving
        } else {
            ErrorFormat::Ingest
        }
    }
}

/// Why a request is refused before (or instead of) its API handling it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Rejection {
    /// 400: unreadable or malformed.
    Invalid(String),
    /// 401: no usable key. The feature server answers its own fixed message.
    Unauthenticated(String),
    /// 404: no such path or object.
    NotFound(String),
    /// 405: the wrong method.
    MethodNotAllowed(String),
    /// 413: a body over `limit` bytes.
    PayloadTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// 500: the mock failed itself.
    Internal(String),
    /// Any status, as a fault rule, the Tecton profile or the admin API's framework answers;
    /// without a message, the API's standard one for the status.
    Status {
        /// The HTTP status.
        status: StatusCode,
        /// The message, when not the standard one.
        message: Option<String>,
    },
}

impl Rejection {
    /// The HTTP status, the same in every format.
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            Rejection::Invalid(_) => StatusCode::BAD_REQUEST,
            Rejection::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            Rejection::NotFound(_) => StatusCode::NOT_FOUND,
            Rejection::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Rejection::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Rejection::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Rejection::Status { status, .. } => *status,
        }
    }

    fn ingest_body(self) -> serde_json::Value {
        let error = match self {
            Rejection::Invalid(m) => IngestError::Invalid(m),
            Rejection::Unauthenticated(m) => IngestError::Unauthenticated(m),
            Rejection::NotFound(m) => IngestError::NotFound(m),
            Rejection::MethodNotAllowed(m) => IngestError::MethodNotAllowed(m),
            Rejection::PayloadTooLarge { limit } => IngestError::PayloadTooLarge { limit },
            Rejection::Internal(m) => {
                return injected_ingest(StatusCode::INTERNAL_SERVER_ERROR, Some(m))
            }
            Rejection::Status { status, message } => return injected_ingest(status, message),
        };
        error.body()
    }

    fn serving_error(self) -> ServingError {
        match self {
            Rejection::Invalid(m) => ServingError::Invalid(m),
            Rejection::Unauthenticated(_) => ServingError::Unauthenticated,
            Rejection::NotFound(m) => ServingError::NotFound(m),
            Rejection::MethodNotAllowed(m) => ServingError::MethodNotAllowed(m),
            Rejection::PayloadTooLarge { limit } => ServingError::PayloadTooLarge { limit },
            Rejection::Internal(m) => ServingError::Internal(m),
            Rejection::Status { status, message } => ServingError::Status {
                status,
                message: message
                    .unwrap_or_else(|| decisions::injected_serving_message(status).to_owned()),
            },
        }
    }

    fn admin_body(self) -> serde_json::Value {
        let message = match self {
            Rejection::Invalid(m)
            | Rejection::Unauthenticated(m)
            | Rejection::NotFound(m)
            | Rejection::MethodNotAllowed(m)
            | Rejection::Internal(m)
            | Rejection::Status {
                message: Some(m), ..
            } => m,
            Rejection::PayloadTooLarge { limit } => {
                format!("The request body is larger than the limit of {limit} bytes")
            }
            Rejection::Status {
                status,
                message: None,
            } => status.canonical_reason().unwrap_or("error").to_owned(),
        };
        json!({ "error": message })
    }
}

/// A `requestError` body for a status the ingest handler itself never answers.
fn injected_ingest(status: StatusCode, message: Option<String>) -> serde_json::Value {
    let (kind, default) = decisions::injected_error(status);
    ingest::request_error(kind, message.as_deref().unwrap_or(default))
}

/// The one place a refusal becomes an answer, in the API's own error format.
pub(crate) fn reject(format: ErrorFormat, why: Rejection) -> Answer {
    let status = why.status();
    let body = match format {
        ErrorFormat::Ingest => why.ingest_body(),
        ErrorFormat::Serving => why.serving_error().body(),
        ErrorFormat::Admin => why.admin_body(),
    };
    Answer::json(status, &body)
}

impl From<IngestError> for Answer {
    fn from(e: IngestError) -> Self {
        Answer::json(e.status(), &e.body())
    }
}

impl From<ServingError> for Answer {
    fn from(e: ServingError) -> Self {
        Answer::json(e.status(), &e.body())
    }
}

impl Answer {
    /// A JSON answer without extra headers.
    pub(crate) fn json(status: StatusCode, body: &serde_json::Value) -> Self {
        Answer {
            status,
            headers: HeaderMap::new(),
            body: Bytes::from(body.to_string()),
        }
    }
}
