//! Conformance checks: each judges one run (the [`Observation`]: the journal, the offline store
//! and the sink's exit) and returns pass, fail or warn with a paragraph a sink author can act
//! on and the evidence behind it (journal sequence numbers, record ids, timings).
//!
//! Check ids are defined once, in [`CheckId`]; tolerances of the timing checks once, in
//! `tolerance`; what counts as retryable once, in [`crate::answer`] and [`Class`]. The [`CORE`] checks judge every scenario; scenarios add the timing checks and
//! anything else they exercise.

mod delivery;
mod observation;
mod order;
mod retry;
mod timing;
pub(crate) mod tolerance;
mod wire;

use std::fmt;
use std::str::FromStr;

pub use delivery::describe_exit;
pub use observation::{
    outcome_name, summarize_ids, Class, Exchange, FaultKind, InputRecord, Observation,
    ObservationParts, SentRecord, WrittenRow,
};
pub use reports::conformance::{Evidence, Verdict};

use serde::{Deserialize, Serialize};

/// At most this many evidence lines per check; the rest are counted.
pub(crate) const MAX_EVIDENCE: usize = 8;

/// Every check, by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CheckId {
    /// The sink's exit matches the scenario's expected outcome (success or give up).
    Outcome,
    /// Every input record was acknowledged, or the sink exited non-zero and said so.
    Completeness,
    /// Every record in a request answered 200 is in the offline store.
    NoLostAck,
    /// A record is written twice only when an earlier copy's exchange ended indefinitely.
    Duplicates,
    /// No request carries more records than `SINK_BATCH_SIZE` or Tecton's per-source limit.
    BatchLimit,
    /// Requests authenticate with `Authorization: Tecton-key <the key given>`.
    AuthHeader,
    /// Bodies are the snake_case v1 envelope on `/ingest`, records wrapped and unchanged.
    RequestShape,
    /// Retryable failures (429, 5xx, resets, timeouts, unreadable answers) are retried.
    RetryRetryable,
    /// Definite 4xx failures are not retried.
    NoRetryDefinite,
    /// No record is attempted more than `1 + SINK_MAX_RETRIES` times.
    RetryBound,
    /// Retries wait, and the wait grows.
    Backoff,
    /// Retry delays are randomized.
    Jitter,
    /// A retry after `Retry-After: s` waits at least `s` seconds.
    RetryAfter,
    /// A hung request is abandoned within `SINK_TIMEOUT_S` (plus slack).
    Timeout,
    /// Records of one key are first written in input order.
    KeyOrder,
    /// Requests carry several records when the batch size allows (warns, never fails).
    BatchingEfficiency,
    /// Only Tecton's success body is taken as an acknowledgement; a 200 with any other body
    /// is indefinite (warns, never fails).
    AckBody,
}

/// Checks that judge every scenario (they pass with a note when a run gives them nothing to
/// judge). Timing checks run only where a scenario lists them.
pub const CORE: [CheckId; 13] = [
    CheckId::Outcome,
    CheckId::Completeness,
    CheckId::NoLostAck,
    CheckId::Duplicates,
    CheckId::BatchLimit,
    CheckId::AuthHeader,
    CheckId::RequestShape,
    CheckId::RetryRetryable,
    CheckId::NoRetryDefinite,
    CheckId::RetryBound,
    CheckId::KeyOrder,
    CheckId::BatchingEfficiency,
    CheckId::AckBody,
];

impl CheckId {
    /// Every check.
    pub const ALL: [CheckId; 17] = [
        CheckId::Outcome,
        CheckId::Completeness,
        CheckId::NoLostAck,
        CheckId::Duplicates,
        CheckId::BatchLimit,
        CheckId::AuthHeader,
        CheckId::RequestShape,
        CheckId::RetryRetryable,
        CheckId::NoRetryDefinite,
        CheckId::RetryBound,
        CheckId::Backoff,
        CheckId::Jitter,
        CheckId::RetryAfter,
        CheckId::Timeout,
        CheckId::KeyOrder,
        CheckId::BatchingEfficiency,
        CheckId::AckBody,
    ];

    /// The id used in scenario files and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            CheckId::Outcome => "outcome",
            CheckId::Completeness => "completeness",
            CheckId::NoLostAck => "no_lost_ack",
            CheckId::Duplicates => "duplicates",
            CheckId::BatchLimit => "batch_limit",
            CheckId::AuthHeader => "auth_header",
            CheckId::RequestShape => "request_shape",
            CheckId::RetryRetryable => "retry_retryable",
            CheckId::NoRetryDefinite => "no_retry_definite",
            CheckId::RetryBound => "retry_bound",
            CheckId::Backoff => "backoff",
            CheckId::Jitter => "jitter",
            CheckId::RetryAfter => "retry_after",
            CheckId::Timeout => "timeout",
            CheckId::KeyOrder => "key_order",
            CheckId::BatchingEfficiency => "batching_efficiency",
            CheckId::AckBody => "ack_body",
        }
    }

    /// A short title for reports.
    pub fn title(self) -> &'static str {
        match self {
            CheckId::Outcome => "Exit matches the expected outcome",
            CheckId::Completeness => "Every record acknowledged, or the sink said it gave up",
            CheckId::NoLostAck => "Every acknowledged record is stored",
            CheckId::Duplicates => "Duplicates only after an indefinite failure",
            CheckId::BatchLimit => "Requests stay within the batch size",
            CheckId::AuthHeader => "Authorization: Tecton-key <key>",
            CheckId::RequestShape => "Request bodies have Tecton's v1 shape",
            CheckId::RetryRetryable => "Retryable failures are retried",
            CheckId::NoRetryDefinite => "Definite errors are not retried",
            CheckId::RetryBound => "Retries stay within SINK_MAX_RETRIES",
            CheckId::Backoff => "Backoff waits, and grows",
            CheckId::Jitter => "Backoff has jitter",
            CheckId::RetryAfter => "Retry-After is honoured",
            CheckId::Timeout => "Per-request timeout is honoured",
            CheckId::KeyOrder => "Per-key order is kept",
            CheckId::BatchingEfficiency => "Requests carry several records",
            CheckId::AckBody => "Only Tecton's success body acknowledges",
        }
    }
}

impl fmt::Display for CheckId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A check id that is not one of [`CheckId::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown check `{0}`; known checks: {known}", known = CheckId::ALL.map(CheckId::as_str).join(", "))]
pub struct UnknownCheck(pub String);

impl FromStr for CheckId {
    type Err = UnknownCheck;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CheckId::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| UnknownCheck(s.to_owned()))
    }
}

/// Parameters a scenario may give a check (`{ id = "backoff", min_growth = 1.5 }`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CheckParams {
    /// `batching_efficiency`: the mean records per request below which it warns.
    pub min_mean: Option<f64>,
    /// `backoff`: the growth ratio it requires.
    pub min_growth: Option<f64>,
    /// `timeout`, `retry_after`: the slack, in ms, replacing the default.
    pub slack_ms: Option<u64>,
}

/// What the sink is expected to achieve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ExpectedOutcome {
    /// Deliver every record and exit 0 (the faults are within its retry budget).
    Success,
    /// Give up, exit non-zero and say why (the failures are definite or outlast the budget).
    GiveUp,
}

/// One check a scenario asks for, with its parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckSpec {
    /// Which check.
    pub id: CheckId,
    /// Its parameters (defaults where the scenario gives none).
    pub params: CheckParams,
}

/// One check's judgement.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckResult {
    /// Which check.
    pub id: CheckId,
    /// Pass, warn or fail.
    pub verdict: Verdict,
    /// One paragraph a sink author can act on.
    pub explanation: String,
    /// Journal sequence numbers, record ids, timings.
    pub evidence: Vec<Evidence>,
}

impl CheckResult {
    fn new(id: CheckId, verdict: Verdict, explanation: impl Into<String>) -> Self {
        CheckResult {
            id,
            verdict,
            explanation: explanation.into(),
            evidence: Vec::new(),
        }
    }

    /// A pass.
    pub(crate) fn pass(id: CheckId, explanation: impl Into<String>) -> Self {
        Self::new(id, Verdict::Pass, explanation)
    }

    /// A failure.
    pub(crate) fn fail(id: CheckId, explanation: impl Into<String>) -> Self {
        Self::new(id, Verdict::Fail, explanation)
    }

    /// A warning.
    pub(crate) fn warn(id: CheckId, explanation: impl Into<String>) -> Self {
        Self::new(id, Verdict::Warn, explanation)
    }

    /// Adds evidence lines, keeping at most [`MAX_EVIDENCE`] and counting the rest.
    pub(crate) fn with_evidence<E: Into<Evidence>>(
        mut self,
        lines: impl IntoIterator<Item = E>,
    ) -> Self {
        let lines: Vec<Evidence> = lines.into_iter().map(Into::into).collect();
        let n = lines.len();
        self.evidence.extend(lines.into_iter().take(MAX_EVIDENCE));
        if n > MAX_EVIDENCE {
            self.evidence
                .push(format!("… and {} more", n - MAX_EVIDENCE).into());
        }
        self
    }
}

/// Runs one check.
pub fn judge(spec: &CheckSpec, obs: &Observation) -> CheckResult {
    let p = &spec.params;
    match spec.id {
        CheckId::Outcome => delivery::outcome(obs),
        CheckId::Completeness => delivery::completeness(obs),
        CheckId::NoLostAck => delivery::no_lost_ack(obs),
        CheckId::Duplicates => delivery::duplicates(obs),
        CheckId::BatchLimit => wire::batch_limit(obs),
        CheckId::AuthHeader => wire::auth_header(obs),
        CheckId::RequestShape => wire::request_shape(obs),
        CheckId::BatchingEfficiency => wire::batching_efficiency(obs, p),
        CheckId::RetryRetryable => retry::retry_retryable(obs),
        CheckId::NoRetryDefinite => retry::no_retry_definite(obs),
        CheckId::RetryBound => retry::retry_bound(obs),
        CheckId::Backoff => timing::backoff(obs, p),
        CheckId::Jitter => timing::jitter(obs),
        CheckId::RetryAfter => timing::retry_after(obs, p),
        CheckId::Timeout => timing::timeout(obs, p),
        CheckId::KeyOrder => order::key_order(obs),
        CheckId::AckBody => delivery::ack_body(obs),
    }
}

/// Runs every check of `specs`, in order.
pub(crate) fn judge_all(specs: &[CheckSpec], obs: &Observation) -> Vec<CheckResult> {
    specs.iter().map(|s| judge(s, obs)).collect()
}

/// Milliseconds with one decimal.
pub(crate) fn ms(d: std::time::Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

/// The last `n` non-empty lines of a text, joined by ` / ` (for quoting a sink's stderr).
pub(crate) fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let start = lines.len().saturating_sub(n);
    lines[start..].join(" / ")
}
