//! Every choice the mock makes where Tecton's behaviour is not documented, in one place.
//!
//! Each item names the gap and what the mock does about it. When Tecton's behaviour
//! becomes known, this is the file to change.

use serde_json::Value as Json;

/// Records per push source in one ingest request. Tecton documents no hard limit; its Kafka
/// Connect sink recommends 10 and Snowflake's successor API enforces 10, so the mock does too
/// (configurable). Over the limit is a 400 `RequestValidationError`.
pub const DEFAULT_RECORDS_PER_SOURCE: usize = 10;

/// Largest request body accepted before answering 413. Tecton documents none for ingest; the
/// feature server caps request data at 4 MB, which the mock uses for both.
pub const DEFAULT_MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// Journal entries kept before the oldest are let go (counters keep counting).
pub const DEFAULT_JOURNAL_CAPACITY: usize = 100_000;

/// Request and response bodies longer than this are cut in the journal (the size is still kept).
pub const JOURNAL_BODY_BYTES: usize = 64 * 1024;

/// JSON nesting deeper than this is refused with a 400 before any validation.
pub const MAX_JSON_DEPTH: usize = 64;

/// Int64/Int32 fields accept JSON integers only: `"1"` and `1.0` are schema mismatches. Tecton's
/// examples send numbers; coercion is unconfirmed, and a strict mock catches sinks that
/// stringify numbers.
pub fn ingest_int(json: &Json) -> Option<i64> {
    json.as_i64()
}

/// Float64/Float32 fields accept any JSON number. The strings `"NaN"`, `"Infinity"` and
/// `"-Infinity"` (the feature server's output encoding) are refused on ingest: acceptance is
/// unconfirmed and a sink that emits them is likely sending garbage.
pub fn ingest_float(json: &Json) -> Option<f64> {
    json.as_f64()
}

/// How long a `hang` fault holds a request when its rule gives no `max_ms`.
pub const DEFAULT_HANG_MS: u64 = 60_000;

/// The Stream Ingest API error body of an injected status: `errorType` and default message.
/// Tecton documents the 429 and 5xx causes (throttling while scaling, internal errors,
/// server-side timeouts) but not their bodies; the `requestError` shape is used for all.
pub fn injected_error(status: u16) -> (&'static str, &'static str) {
    use error_type::*;
    match status {
        400 => (REQUEST_VALIDATION, "The request is invalid"),
        401 => (UNAUTHENTICATED, "invalid 'Tecton-key' authorization header"),
        403 => (
            PERMISSION_DENIED,
            "Not authorized to write to this workspace",
        ),
        404 => (NOT_FOUND, "Not found"),
        405 => (METHOD_NOT_ALLOWED, "Method not allowed"),
        413 => (PAYLOAD_TOO_LARGE, "The request body is too large"),
        429 => (
            RESOURCE_EXHAUSTED,
            "Too many requests: the service is scaling up, please retry later",
        ),
        502 => (INTERNAL, "Bad gateway"),
        503 => (INTERNAL, "Service temporarily unavailable"),
        504 => (INTERNAL, "Timed out"),
        s if s >= 500 => (
            INTERNAL,
            "Internal Server Error. Please contact Tecton Support",
        ),
        _ => (REQUEST_VALIDATION, "The request failed"),
    }
}

/// The feature server's message for an injected status; Tecton's client fixtures give the
/// texts for 429, 503 and 504.
pub fn injected_serving_message(status: u16) -> &'static str {
    match status {
        429 => "GetFeatures exceeded the concurrent request limit, please retry later",
        503 => "503 Service Temporarily Unavailable",
        504 => "Timed out",
        s if s >= 500 => "Internal error",
        _ => "The request failed",
    }
}

/// `errorType` values for ingest failures that Tecton does not document. Only
/// `RequestValidationError` and `TectonObjectValidationError` are documented.
pub mod error_type {
    /// Documented: a malformed request.
    pub const REQUEST_VALIDATION: &str = "RequestValidationError";
    /// Documented: a record that fails validation against a feature view.
    pub const TECTON_OBJECT_VALIDATION: &str = "TectonObjectValidationError";
    /// 401: the `Authorization` header is missing or the key is unknown.
    pub const UNAUTHENTICATED: &str = "UnauthenticatedError";
    /// 403: the key's role may not write to the workspace.
    pub const PERMISSION_DENIED: &str = "PermissionDeniedError";
    /// 404: no such workspace, push source, or no online feature view subscribed to it.
    pub const NOT_FOUND: &str = "NotFoundError";
    /// 405: the path exists but not for this method.
    pub const METHOD_NOT_ALLOWED: &str = "MethodNotAllowedError";
    /// 413: the body is larger than the configured limit.
    pub const PAYLOAD_TOO_LARGE: &str = "PayloadTooLargeError";
    /// 429: throttled (only ever produced by an injected fault).
    pub const RESOURCE_EXHAUSTED: &str = "ResourceExhaustedError";
    /// 5xx: internal error (only ever produced by an injected fault).
    pub const INTERNAL: &str = "InternalError";
}

/// Whether an attribute view keeps a row stamped `ts`. Tecton's point-in-time query removes
/// feature rows stamped before `feature_start_time` (its `RespectFeatureStartTimeNode`); the mock
/// ignores such a row everywhere, so it is never served online and never found by retrieval.
///
/// Aggregations are different: their offline store holds partial aggregates from before the
/// start so that the first served aggregate is complete. The mock stores and aggregates every
/// event whatever its time, and instead nulls every aggregate feature (count included) while
/// the request time is before the start (TIME_INTERVAL: while `fl(t)` is), online and offline
/// alike ([`crate::engine::SeriesSpec::before_start`]).
pub fn attribute_row_kept(feature_start_time: Option<i64>, ts: i64) -> bool {
    feature_start_time.is_none_or(|fst| ts >= fst)
}
/// The offline store writes a push source's waiting rows to a Parquet file once this many have
/// arrived. Large enough that a file is worth opening, small enough to bound the memory tail.
pub const DEFAULT_OFFLINE_FLUSH_ROWS: usize = 65_536;

/// The offline store also writes waiting rows at least this often, so a quiet source reaches disk
/// soon.
pub const DEFAULT_OFFLINE_FLUSH_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);
