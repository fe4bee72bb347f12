//! Ingest failures and their Tecton-format bodies: the one place where an ingest error becomes
//! a status code and a JSON body.

use axum::http::StatusCode;
use serde::Serialize;
use serde_json::json;

use crate::decisions::error_type;

/// A record that failed validation for one feature view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordError {
    /// The feature view the record was meant for.
    pub feature_view_name: String,
    /// The push source it arrived on.
    pub push_source_name: String,
    /// `TectonObjectValidationError`.
    pub error_type: &'static str,
    /// What is wrong, naming the record's index.
    pub error_message: String,
}

/// Why an ingest request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IngestError {
    /// 400 `RequestValidationError`: malformed JSON, missing or mistyped request fields, too
    /// many records.
    Invalid(String),
    /// 400 with `recordErrors`: one or more records do not fit their source or feature view.
    Records {
        /// The workspace named in the request.
        workspace: String,
        /// Every record error found.
        errors: Vec<RecordError>,
    },
    /// 401: no usable `Authorization: Tecton-key` header, or an unknown key.
    Unauthenticated(String),
    /// 403: the key's role may not do this in the workspace.
    PermissionDenied(String),
    /// 404: no such workspace or push source, or nothing subscribed to it.
    NotFound(String),
    /// 405: wrong method for an ingest path.
    MethodNotAllowed(String),
    /// 413: body over the configured limit.
    PayloadTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
}

impl IngestError {
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            IngestError::Invalid(_) | IngestError::Records { .. } => StatusCode::BAD_REQUEST,
            IngestError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            IngestError::PermissionDenied(_) => StatusCode::FORBIDDEN,
            IngestError::NotFound(_) => StatusCode::NOT_FOUND,
            IngestError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            IngestError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        }
    }

    /// The response body: `recordErrors` for record failures, `requestError` for the rest.
    pub fn body(&self) -> serde_json::Value {
        let (kind, message) = match self {
            IngestError::Records { workspace, errors } => {
                return json!({"workspaceName": workspace, "recordErrors": errors});
            }
            IngestError::Invalid(m) => (error_type::REQUEST_VALIDATION, m.clone()),
            IngestError::Unauthenticated(m) => (error_type::UNAUTHENTICATED, m.clone()),
            IngestError::PermissionDenied(m) => (error_type::PERMISSION_DENIED, m.clone()),
            IngestError::NotFound(m) => (error_type::NOT_FOUND, m.clone()),
            IngestError::MethodNotAllowed(m) => (error_type::METHOD_NOT_ALLOWED, m.clone()),
            IngestError::PayloadTooLarge { limit } => (
                error_type::PAYLOAD_TOO_LARGE,
                format!("The request body is larger than the limit of {limit} bytes"),
            ),
        };
        request_error(kind, &message)
    }
}

/// A `requestError` body.
pub(crate) fn request_error(error_type: &str, message: &str) -> serde_json::Value {
    json!({"requestError": {"errorMessage": message, "errorType": error_type}})
}
