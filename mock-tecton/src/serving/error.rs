//! Feature server errors: `{"error", "message", "code"}` with the gRPC code Tecton pairs with
//! each HTTP status (as Tecton's feature server documents them). The one place a serving error becomes a body.

use serde_json::json;

/// A feature server error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServingError {
    /// HTTP status.
    pub status: u16,
    /// The message clients show (`tecton-client` reads `message`).
    pub message: String,
}

impl ServingError {
    /// 400, gRPC INVALID_ARGUMENT.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(400, message)
    }

    /// 401, gRPC UNAUTHENTICATED.
    pub fn unauthenticated() -> Self {
        Self::new(
            401,
            "invalid 'Tecton-key' authorization header. Note that newly created credentials may take up to 60 seconds to be usable.",
        )
    }

    /// 403, gRPC PERMISSION_DENIED.
    pub fn permission_denied() -> Self {
        Self::new(
            403,
            "Not Authorized. Note that access control changes may take up to 60 seconds to apply.",
        )
    }

    /// 404 for an unknown feature service or a workspace that is missing or not live.
    pub fn service_not_found(service: &str, workspace: &str) -> Self {
        Self::new(
            404,
            format!(
                "Unable to query FeatureService `{service}` for workspace `{workspace}`. Newly created feature services may take up to 60 seconds to query. Also, ensure that the workspace is a live workspace."
            ),
        )
    }

    /// Any status with a message.
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        ServingError {
            status,
            message: message.into(),
        }
    }

    /// The gRPC status code paired with the HTTP status.
    pub fn code(&self) -> u16 {
        match self.status {
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
    pub fn body(&self) -> serde_json::Value {
        json!({"error": self.message, "message": self.message, "code": self.code()})
    }
}
