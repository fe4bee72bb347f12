//! What an answer of Tecton's Stream Ingest API means to a sink. The checks and the reference
//! sink both read answers through these functions, so they cannot disagree about which statuses
//! are worth a retry or what an acknowledgement looks like.

use serde_json::Value as Json;

/// Whether a request answered with `status` may succeed when sent again: request timeouts
/// (408), "too early" (425), throttling (429) and every server error (5xx). Every other error
/// status is definite: the same request can never succeed.
///
/// ```
/// use conformance::answer::is_retryable_status;
/// assert!(is_retryable_status(429) && is_retryable_status(503));
/// assert!(!is_retryable_status(400) && !is_retryable_status(404));
/// ```
pub fn is_retryable_status(status: u16) -> bool {
    matches!(status, 408 | 425 | 429 | 500..=599)
}

/// Whether a 200's body is Tecton's success body: a JSON object with a `workspaceName` string
/// and an `ingestMetrics` object. Anything else (a proxy's page, a cut or garbled body) does
/// not say the records were written.
///
/// ```
/// use conformance::answer::is_success_body;
/// assert!(is_success_body(br#"{"workspaceName":"prod","ingestMetrics":{}}"#));
/// assert!(!is_success_body(b"<html>502 Bad Gateway</html>"));
/// ```
pub fn is_success_body(bytes: &[u8]) -> bool {
    match serde_json::from_slice::<Json>(bytes) {
        Ok(Json::Object(top)) => {
            top.get("workspaceName").is_some_and(Json::is_string)
                && top.get("ingestMetrics").is_some_and(Json::is_object)
        }
        _ => false,
    }
}

/// What an error body says, when it is one of Tecton's: `requestError`'s type and message,
/// every `recordErrors` message, or the feature server's `message`.
pub(crate) fn error_message(bytes: &[u8]) -> Option<String> {
    let Ok(Json::Object(top)) = serde_json::from_slice::<Json>(bytes) else {
        return None;
    };
    let text = |v: &Json, k: &str| v.get(k).and_then(Json::as_str).unwrap_or("").to_owned();
    if let Some(e) = top.get("requestError") {
        let kind = e.get("errorType").and_then(Json::as_str).unwrap_or("error");
        return Some(format!("{kind}: {}", text(e, "errorMessage")));
    }
    if let Some(Json::Array(errors)) = top.get("recordErrors") {
        let messages: Vec<String> = errors
            .iter()
            .map(|e| {
                let kind = e.get("errorType").and_then(Json::as_str).unwrap_or("error");
                let message = text(e, "errorMessage");
                match e.get("featureViewName").and_then(Json::as_str) {
                    Some(view) => format!("{kind} ({view}): {message}"),
                    None => format!("{kind}: {message}"),
                }
            })
            .collect();
        return Some(messages.join("; "));
    }
    top.get("message").and_then(Json::as_str).map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success_body_must_be_tectons() {
        assert!(is_success_body(
            br#"{"workspaceName":"prod","ingestMetrics":{"featureViewIngestMetrics":[]}}"#
        ));
        assert!(!is_success_body(br#"{"workspaceName":"prod"}"#));
        assert!(!is_success_body(
            br#"{"workspaceName":"prod","ingestMetrics":"x"}"#
        ));
        assert!(!is_success_body(b"\x00\xffgarbage"));
    }

    #[test]
    fn error_bodies_are_summarised() {
        let request =
            br#"{"requestError":{"errorMessage":"bad key","errorType":"UnauthenticatedError"}}"#;
        assert_eq!(
            error_message(request).as_deref(),
            Some("UnauthenticatedError: bad key")
        );
        let records = br#"{"workspaceName":"prod","recordErrors":[{"featureViewName":"v","pushSourceName":"s","errorType":"TectonObjectValidationError","errorMessage":"record 0: ttl"}]}"#;
        assert_eq!(
            error_message(records).as_deref(),
            Some("TectonObjectValidationError (v): record 0: ttl")
        );
        assert_eq!(
            error_message(br#"{"error":"x","message":"m","code":5}"#).as_deref(),
            Some("m")
        );
        assert_eq!(error_message(b"<html>"), None);
    }

    #[test]
    fn retryable_statuses_are_transient_ones() {
        let retryable: Vec<u16> = (100..600).filter(|&s| is_retryable_status(s)).collect();
        assert_eq!(retryable[..3], [408, 425, 429]);
        assert_eq!(retryable.len(), 3 + 100);
    }

    #[test]
    fn the_python_example_sink_retries_the_same_statuses() {
        // The example sink cannot call this crate; this pins its list to the one above.
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../examples/python-sink/sink.py"
        );
        let text = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            text.contains("RETRYABLE_STATUSES = {408, 425, 429} | set(range(500, 600))"),
            "examples/python-sink/sink.py must retry exactly is_retryable_status's statuses"
        );
    }
}
