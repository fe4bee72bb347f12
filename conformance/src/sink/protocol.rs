//! Sink protocol v1 on the wire: environment variable names, the JSON Lines input, and the
//! metrics line. The command driver writes these; a protocol-v1 sink (such as the
//! `reference-sink` binary) reads them.

use std::time::Duration;

use super::{Record, SinkEnv, SinkMetrics};

/// `TECTON_URL`: the base URL; the sink posts to `{url}/ingest`.
pub(crate) const TECTON_URL: &str = "TECTON_URL";
/// `TECTON_API_KEY`: sent as `Authorization: Tecton-key <key>`.
pub(crate) const TECTON_API_KEY: &str = "TECTON_API_KEY";
/// `TECTON_WORKSPACE`: the workspace to write.
pub(crate) const TECTON_WORKSPACE: &str = "TECTON_WORKSPACE";
/// `TECTON_PUSH_SOURCE`: the push source the records belong to.
pub(crate) const TECTON_PUSH_SOURCE: &str = "TECTON_PUSH_SOURCE";
/// `SINK_BATCH_SIZE`: at most this many records per request.
pub(crate) const SINK_BATCH_SIZE: &str = "SINK_BATCH_SIZE";
/// `SINK_MAX_RETRIES`: retries per request after the first attempt.
pub(crate) const SINK_MAX_RETRIES: &str = "SINK_MAX_RETRIES";
/// `SINK_TIMEOUT_S`: per-request timeout in (fractional) seconds.
pub(crate) const SINK_TIMEOUT_S: &str = "SINK_TIMEOUT_S";
/// `SINK_INPUT`: a JSONL file holding the same records as stdin.
pub(crate) const SINK_INPUT: &str = "SINK_INPUT";
/// `SINK_SEED`: seed for the sink's random choices.
pub(crate) const SINK_SEED: &str = "SINK_SEED";

/// Hint defaults a protocol-v1 sink uses when the harness leaves a hint out.
pub mod defaults {
    /// Records per request (Tecton's recommendation).
    pub(crate) const BATCH_SIZE: usize = 10;
    /// Retries per request.
    pub const MAX_RETRIES: u32 = 3;
    /// Per-request timeout, seconds.
    pub(crate) const TIMEOUT_S: f64 = 10.0;
    /// Seed.
    pub(crate) const SEED: u64 = 0;
}

/// The environment variables that describe `env` to a command sink (`SINK_INPUT` included when
/// `env.input_path` is set).
pub fn env_vars(env: &SinkEnv) -> Vec<(&'static str, String)> {
    let mut vars = vec![
        (TECTON_URL, env.url.clone()),
        (TECTON_API_KEY, env.api_key.clone()),
        (TECTON_WORKSPACE, env.workspace.clone()),
        (TECTON_PUSH_SOURCE, env.push_source.clone()),
        (SINK_BATCH_SIZE, env.batch_size.to_string()),
        (SINK_MAX_RETRIES, env.max_retries.to_string()),
        (SINK_TIMEOUT_S, env.timeout.as_secs_f64().to_string()),
        (SINK_SEED, env.seed.to_string()),
    ];
    if let Some(path) = &env.input_path {
        vars.push((SINK_INPUT, path.display().to_string()));
    }
    vars
}

/// Why a protocol-v1 environment or input cannot be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProtocolError {
    /// A required variable is missing or empty.
    #[error("environment variable {0} is not set")]
    Missing(&'static str),
    /// A hint does not parse as its type.
    #[error("environment variable {name}={value:?} is not a valid value")]
    Invalid {
        /// The variable.
        name: &'static str,
        /// What it held.
        value: String,
    },
    /// `SINK_TIMEOUT_S` is zero, negative or not finite.
    #[error("environment variable {SINK_TIMEOUT_S}={0} must be a positive number of seconds")]
    Timeout(f64),
    /// An input line is JSON but not an object.
    #[error("input line {line} is not a JSON object")]
    NotAnObject {
        /// 1-based line number.
        line: usize,
    },
    /// An input line is not JSON.
    #[error("input line {line} is not valid JSON: {message}")]
    BadJson {
        /// 1-based line number.
        line: usize,
        /// The parser's message.
        message: String,
    },
}

/// Reads a [`SinkEnv`] through `get` (normally `std::env::var`): the four `TECTON_*` variables
/// are required, the `SINK_*` hints fall back to [`defaults`]. Errors name the variable.
pub fn env_from(get: impl Fn(&str) -> Option<String>) -> Result<SinkEnv, ProtocolError> {
    let required = |name: &'static str| {
        get(name)
            .filter(|v| !v.trim().is_empty())
            .ok_or(ProtocolError::Missing(name))
    };
    fn parsed<T: std::str::FromStr>(
        get: &impl Fn(&str) -> Option<String>,
        name: &'static str,
        default: T,
    ) -> Result<T, ProtocolError> {
        match get(name) {
            None => Ok(default),
            Some(v) if v.trim().is_empty() => Ok(default),
            Some(v) => v.trim().parse().map_err(|_| ProtocolError::Invalid {
                name,
                value: v.clone(),
            }),
        }
    }
    let timeout_s: f64 = parsed(&get, SINK_TIMEOUT_S, defaults::TIMEOUT_S)?;
    let timeout = Duration::try_from_secs_f64(timeout_s)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or(ProtocolError::Timeout(timeout_s))?;
    Ok(SinkEnv {
        url: required(TECTON_URL)?.trim_end_matches('/').to_owned(),
        api_key: required(TECTON_API_KEY)?,
        workspace: required(TECTON_WORKSPACE)?,
        push_source: required(TECTON_PUSH_SOURCE)?,
        batch_size: parsed(&get, SINK_BATCH_SIZE, defaults::BATCH_SIZE)?,
        max_retries: parsed(&get, SINK_MAX_RETRIES, defaults::MAX_RETRIES)?,
        timeout,
        input_path: get(SINK_INPUT).filter(|v| !v.is_empty()).map(Into::into),
        seed: parsed(&get, SINK_SEED, defaults::SEED)?,
    })
}

/// Records as JSON Lines, one object per line.
pub(crate) fn to_jsonl(records: &[Record]) -> Vec<u8> {
    let mut out = Vec::new();
    for r in records {
        // Serializing a map of JSON values cannot fail.
        if serde_json::to_writer(&mut out, r).is_ok() {
            out.push(b'\n');
        }
    }
    out
}

/// Parses JSON Lines into records; blank lines are skipped, anything else that is not a JSON
/// object is an error naming its line (1-based).
pub fn from_jsonl(text: &str) -> Result<Vec<Record>, ProtocolError> {
    let mut records = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<serde_json::Value>(line) {
            Ok(serde_json::Value::Object(map)) => records.push(map),
            Ok(_) => return Err(ProtocolError::NotAnObject { line: i + 1 }),
            Err(e) => {
                return Err(ProtocolError::BadJson {
                    line: i + 1,
                    message: e.to_string(),
                })
            }
        }
    }
    Ok(records)
}

/// The metrics line a sink prints at exit, fields in protocol order.
pub fn metrics_line(m: &SinkMetrics) -> String {
    format!(
        r#"{{"records_written":{},"write_requests":{},"write_errors":{}}}"#,
        m.records_written, m.write_requests, m.write_errors
    )
}

/// The last line of `stdout` that is a JSON object with the three metrics fields (extra fields
/// are ignored), if any.
pub(crate) fn parse_metrics(stdout: &str) -> Option<SinkMetrics> {
    stdout
        .lines()
        .rev()
        .filter(|l| l.trim_start().starts_with('{'))
        .find_map(|l| serde_json::from_str::<SinkMetrics>(l.trim()).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env() -> SinkEnv {
        SinkEnv {
            url: "http://127.0.0.1:1".into(),
            api_key: "k".into(),
            workspace: "prod".into(),
            push_source: "transactions".into(),
            batch_size: 7,
            max_retries: 2,
            timeout: Duration::from_millis(300),
            input_path: Some("/tmp/in.jsonl".into()),
            seed: 42,
        }
    }

    #[test]
    fn env_round_trips_through_variables() {
        let vars: HashMap<&str, String> = env_vars(&env()).into_iter().collect();
        assert_eq!(vars[SINK_TIMEOUT_S], "0.3");
        let back = env_from(|k| vars.get(k).cloned());
        assert_eq!(back, Ok(env()));
    }

    #[test]
    fn missing_and_bad_variables_are_named() {
        let err = env_from(|_| None)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains(TECTON_URL), "{err}");
        let mut vars: HashMap<&str, String> = env_vars(&env()).into_iter().collect();
        vars.insert(SINK_BATCH_SIZE, "ten".into());
        let err = env_from(|k| vars.get(k).cloned())
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains(SINK_BATCH_SIZE), "{err}");
        vars.insert(SINK_BATCH_SIZE, "3".into());
        vars.insert(SINK_TIMEOUT_S, "-1".into());
        let err = env_from(|k| vars.get(k).cloned())
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains(SINK_TIMEOUT_S), "{err}");
    }

    #[test]
    fn metrics_line_is_found_last_among_noise() {
        let m = SinkMetrics {
            records_written: 5,
            write_requests: 2,
            write_errors: 1,
        };
        let out = format!(
            "starting\n{{\"records_written\":1,\"write_requests\":1,\"write_errors\":0}}\n{{\"other\":1}}\n{}\nbye\n",
            metrics_line(&m)
        );
        assert_eq!(
            metrics_line(&m),
            r#"{"records_written":5,"write_requests":2,"write_errors":1}"#
        );
        assert_eq!(parse_metrics(&out), Some(m));
        assert_eq!(parse_metrics("no metrics\n{broken"), None);
    }

    #[test]
    fn jsonl_round_trips_and_names_bad_lines() {
        let text = "{\"a\":1}\n\n{\"b\":\"x\"}\n";
        let records = from_jsonl(text).unwrap_or_default();
        assert_eq!(records.len(), 2);
        assert_eq!(to_jsonl(&records), b"{\"a\":1}\n{\"b\":\"x\"}\n");
        assert_eq!(
            from_jsonl("{}\n[1]\n").err(),
            Some(ProtocolError::NotAnObject { line: 2 })
        );
    }
}
