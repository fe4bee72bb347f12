//! Feature server errors: `{"error", "message", "code"}` with the gRPC code Tecton pairs with
//! each HTTP status (as Tecton's feature server documents them). The one place a serving error
//! becomes a status and a body.

use axum::http::StatusCode;
use serde_json::json;

/// Why the feature server refused a request. Each kind has one HTTP status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServingError {
    /// 400, gRPC INVALID_ARGUMENT: a malformed request.
    #[error("{0}")]
    Invalid(String),
    /// 401, gRPC UNAUTHENTICATED: no usable key.
    #[error("{}", UNAUTHENTICATED)]
    Unauthenticated,
    /// 403, gRPC PERMISSION_DENIED: the key may not read the workspace.
    #[error("{}", PERMISSION_DENIED)]
    PermissionDenied,
    /// 404 for an unknown feature service, or a workspace that is missing or not live.
    #[error("Unable to query FeatureService `{service}` for workspace `{workspace}`. Newly created feature services may take up to 60 seconds to query. Also, ensure that the workspace is a live workspace.")]
    ServiceNotFound {
        /// The feature service asked for.
        service: String,
        /// The workspace asked for.
        workspace: String,
    },
    /// 404 for anything else that does not exist (a path, a service named in the admin API).
    #[error("{0}")]
    NotFound(String),
    /// 405: the wrong method for the path.
    #[error("{0}")]
    MethodNotAllowed(String),
    /// 413: a body over the configured limit.
    #[error("The request body is larger than the limit of {limit} bytes")]
    PayloadTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// 500: the mock could not read its own stores.
    #[error("{0}")]
    Internal(String),
    /// Any other status, as a fault rule or the Tecton profile's timeout answers.
    #[error("{message}")]
    Status {
        /// The HTTP status.
        status: StatusCode,
        /// The message.
        message: String,
    },
}

const UNAUTHENTICATED: &str = "invalid 'Tecton-key' authorization header. Note that newly created credentials may take up to 60 seconds to be usable.";
const PERMISSION_DENIED: &str =
    "Not Authorized. Note that access control changes may take up to 60 seconds to apply.";

impl ServingError {
    /// 400, gRPC INVALID_ARGUMENT.
    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        ServingError::Invalid(message.into())
    }

    /// 403, gRPC PERMISSION_DENIED.
    pub(crate) fn permission_denied() -> Self {
        ServingError::PermissionDenied
    }

    /// 404 for an unknown feature service or a workspace that is missing or not live.
    pub(crate) fn service_not_found(service: &str, workspace: &str) -> Self {
        ServingError::ServiceNotFound {
            service: service.to_owned(),
            workspace: workspace.to_owned(),
        }
    }

    /// The HTTP status.
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            ServingError::Invalid(_) => StatusCode::BAD_REQUEST,
            ServingError::Unauthenticated => StatusCode::UNAUTHORIZED,
            ServingError::PermissionDenied => StatusCode::FORBIDDEN,
            ServingError::ServiceNotFound { .. } | ServingError::NotFound(_) => {
                StatusCode::NOT_FOUND
            }
            ServingError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ServingError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ServingError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ServingError::Status { status, .. } => *status,
        }
    }

    /// The message clients show (`tecton-client` reads `message`).
    pub(crate) fn message(&self) -> String {
        self.to_string()
    }

    /// The gRPC status code paired with the HTTP status.
    pub(crate) fn code(&self) -> u16 {
        match self.status().as_u16() {
            400 | 413 => 3,
            401 => 16,
            403 => 7,
            404 => 5,
            405 => 12,
            429 => 8,
            503 => 14,
            504 => 4,
            _ => 13,
        }
    }

    /// The response body.
    pub(crate) fn body(&self) -> serde_json::Value {
        let message = self.message();
        json!({"error": message, "message": message, "code": self.code()})
    }
}
