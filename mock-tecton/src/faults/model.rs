//! The fault rules' data model, as written in TOML or JSON.
//!
//! ```toml
//! seed = 7
//!
//! [[rules]]
//! name = "throttle twice"
//! path = "/ingest"
//! times = 2
//! action = { kind = "status", status = 429, retry_after_s = 1 }
//!
//! [[rules]]
//! name = "flaky then healthy"
//! script = [
//!   { action = { kind = "status", status = 503 }, times = 2 },
//!   { action = { kind = "hang", max_ms = 10000 }, times = 1 },
//!   { action = { kind = "pass" } },
//! ]
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Why fault rules cannot be installed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FaultError {
    /// The fault file is not valid TOML of the rules' shape.
    #[error("{0}")]
    Syntax(String),
    /// A rule contradicts itself or names something impossible.
    #[error("fault rule `{rule}`: {problem}")]
    Rule {
        /// The rule's name, or `(unnamed)`.
        rule: String,
        /// What is wrong with it.
        problem: String,
    },
}

/// A set of rules with the seed that drives their randomness.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSet {
    /// Seed for every random choice (default 0).
    #[serde(default)]
    pub seed: u64,
    /// Rules, tried in order.
    #[serde(default)]
    pub rules: Vec<FaultRule>,
}

/// One fault rule.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultRule {
    /// A name for the journal and reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Only requests to this exact path (`/ingest`, `/v2/ingest`, a serving path).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Only ingest requests naming this workspace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace: Option<String>,
    /// Only ingest requests carrying records for this push source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Only from the n-th request that passes the filters above (0-based, inclusive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_request: Option<u64>,
    /// Only before the n-th request that passes the filters (exclusive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until_request: Option<u64>,
    /// Only requests arriving at least this many ms after the rules were installed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_ms: Option<u64>,
    /// Only requests arriving less than this many ms after the rules were installed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before_ms: Option<u64>,
    /// Fire on each matching request with this probability (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probability: Option<f64>,
    /// Fire at most this many times (default: no limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub times: Option<u64>,
    /// The fault, for a rule with a single action.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<FaultAction>,
    /// A linear script: each step applies to `times` matching requests, then the next.
    /// After the last step the rule passes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub script: Vec<ScriptStep>,
    /// Named states with transitions; starts at `initial`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub states: BTreeMap<String, StateStep>,
    /// The first state of a state machine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial: Option<String>,
}

/// One step of a linear script.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScriptStep {
    /// What to do.
    pub action: FaultAction,
    /// For how many matching requests (default: all remaining).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub times: Option<u64>,
}

/// One state of a state machine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateStep {
    /// What to do while in this state.
    pub action: FaultAction,
    /// For how many matching requests before moving to `next` (default: stay forever).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub times: Option<u64>,
    /// The state that follows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// What a fault does to one exchange.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum FaultAction {
    /// Handle the request normally.
    Pass,
    /// Answer with this status and a Tecton-format error body, without handling the request
    /// (a definite failure: nothing is written).
    Status {
        /// Any 4xx or 5xx status.
        status: u16,
        /// Send `Retry-After: <seconds>`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after_s: Option<u64>,
        /// The error message (default: a standard one for the status).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
    },
    /// Wait, then handle the request normally.
    Latency {
        /// Fixed delay in ms, or the lower bound with `max_ms`.
        ms: u64,
        /// Upper bound of a uniform delay.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_ms: Option<u64>,
    },
    /// Never answer: hold the request until the client gives up (or `max_ms` passes, then close
    /// the connection without a response). Nothing is written.
    Hang {
        /// Longest hold (default 60 000 ms).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_ms: Option<u64>,
    },
    /// Reset the connection before reading the body. Nothing is written.
    ResetBeforeBody,
    /// Read the body, optionally handle it (the write lands), then reset the connection
    /// without a response: the indefinite failure that makes retries produce duplicates.
    ResetAfterBody {
        /// Handle the request before resetting (default true).
        #[serde(default = "yes")]
        process: bool,
    },
    /// Handle the request, then send only the first half of the response body and close.
    Truncate,
    /// Handle the request, then send the response body slowly.
    Dribble {
        /// Bytes per chunk (default 8).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        chunk_bytes: Option<usize>,
        /// Pause between chunks in ms (default 100).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        interval_ms: Option<u64>,
    },
    /// Answer with bytes that are not JSON (seeded), with this status (default 200).
    /// The request is not handled.
    Garbage {
        /// The status to send with the garbage.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        status: Option<u16>,
    },
    /// Validate records against a changed schema (fields added, removed or retyped), as when a
    /// source's schema changes under a running sink.
    SchemaDrift {
        /// Fields that records must now also carry: `[{ name, type }]`.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        add: Vec<DriftField>,
        /// Fields that are no longer in the schema.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        remove: Vec<String>,
        /// Fields whose type changes.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        retype: Vec<DriftField>,
    },
}

/// A field in a schema drift.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DriftField {
    /// Field name.
    pub name: String,
    /// Tecton type, like `Int64` or `Array<String>`.
    #[serde(rename = "type")]
    pub data_type: String,
}

fn yes() -> bool {
    true
}

impl FaultAction {
    /// A short label for the journal (`status 429`, `hang`, `reset_after_body`).
    pub fn label(&self) -> String {
        match self {
            FaultAction::Pass => "pass".into(),
            FaultAction::Status {
                status,
                retry_after_s: Some(s),
                ..
            } => format!("status {status} retry-after {s}s"),
            FaultAction::Status { status, .. } => format!("status {status}"),
            FaultAction::Latency {
                ms,
                max_ms: Some(max),
            } => format!("latency {ms}..{max}ms"),
            FaultAction::Latency { ms, .. } => format!("latency {ms}ms"),
            FaultAction::Hang { .. } => "hang".into(),
            FaultAction::ResetBeforeBody => "reset_before_body".into(),
            FaultAction::ResetAfterBody { process: true } => "reset_after_body (written)".into(),
            FaultAction::ResetAfterBody { process: false } => {
                "reset_after_body (not written)".into()
            }
            FaultAction::Truncate => "truncate".into(),
            FaultAction::Dribble { .. } => "dribble".into(),
            FaultAction::Garbage { .. } => "garbage".into(),
            FaultAction::SchemaDrift { .. } => "schema_drift".into(),
        }
    }

    /// Whether the request is handled (and may write) under this action.
    pub fn handles_request(&self) -> bool {
        matches!(
            self,
            FaultAction::Pass
                | FaultAction::Latency { .. }
                | FaultAction::ResetAfterBody { process: true }
                | FaultAction::Truncate
                | FaultAction::Dribble { .. }
                | FaultAction::SchemaDrift { .. }
        )
    }
}

impl FaultRule {
    /// A rule that applies `action` to every request.
    pub fn new(action: FaultAction) -> Self {
        FaultRule {
            action: Some(action),
            ..FaultRule::default()
        }
    }

    /// A rule answering with `status` (a Tecton-format error body).
    pub fn status(status: u16) -> Self {
        Self::new(FaultAction::Status {
            status,
            retry_after_s: None,
            message: None,
        })
    }

    /// A linear script of `(action, times)` steps; `None` times means "for the rest".
    pub fn script(steps: impl IntoIterator<Item = (FaultAction, Option<u64>)>) -> Self {
        FaultRule {
            script: steps
                .into_iter()
                .map(|(action, times)| ScriptStep { action, times })
                .collect(),
            ..FaultRule::default()
        }
    }

    /// Names the rule.
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Fires at most `n` times.
    pub fn times(mut self, n: u64) -> Self {
        self.times = Some(n);
        self
    }

    /// Only on this path.
    pub fn on_path(mut self, path: impl Into<String>) -> Self {
        self.path = Some(path.into());
        self
    }

    /// Fires with probability `p`.
    pub fn probability(mut self, p: f64) -> Self {
        self.probability = Some(p);
        self
    }

    /// Only from the n-th matching request on.
    pub fn from_request(mut self, n: u64) -> Self {
        self.from_request = Some(n);
        self
    }

    /// Checks the rule: one of action/script/states, valid statuses and probabilities,
    /// reachable states, parseable drift types, and no body-level filter on a fault that acts
    /// before the body is read.
    pub fn validate(&self) -> Result<(), FaultError> {
        let name = self.name.as_deref().unwrap_or("(unnamed)");
        let err = |problem: String| {
            Err(FaultError::Rule {
                rule: name.to_owned(),
                problem,
            })
        };
        let kinds = usize::from(self.action.is_some())
            + usize::from(!self.script.is_empty())
            + usize::from(!self.states.is_empty());
        if kinds != 1 {
            return err("give exactly one of `action`, `script` or `states`".into());
        }
        if let Some(p) = self.probability {
            if !(0.0..=1.0).contains(&p) {
                return err(format!("probability {p} is not within 0..=1"));
            }
        }
        let mut actions: Vec<&FaultAction> = self.action.iter().collect();
        actions.extend(self.script.iter().map(|s| &s.action));
        actions.extend(self.states.values().map(|s| &s.action));
        for a in actions {
            match a {
                FaultAction::Status { status, .. } if !(400..=599).contains(status) => {
                    return err(format!(
                        "status {status} is not an error status (400..=599)"
                    ));
                }
                FaultAction::Garbage { status: Some(s) } if !(200..=599).contains(s) => {
                    return err(format!("status {s} is not a valid status"));
                }
                FaultAction::ResetBeforeBody
                    if self.workspace.is_some() || self.source.is_some() =>
                {
                    return err("reset_before_body acts before the body is read, so it cannot filter on workspace or source".into());
                }
                FaultAction::SchemaDrift { add, retype, .. } => {
                    for f in add.iter().chain(retype) {
                        if let Err(e) = f.data_type.parse::<crate::schema::DataType>() {
                            return err(e.to_string());
                        }
                    }
                }
                FaultAction::Pass
                | FaultAction::Status { .. }
                | FaultAction::Latency { .. }
                | FaultAction::Hang { .. }
                | FaultAction::ResetBeforeBody
                | FaultAction::ResetAfterBody { .. }
                | FaultAction::Truncate
                | FaultAction::Dribble { .. }
                | FaultAction::Garbage { .. } => {}
            }
        }
        if !self.states.is_empty() {
            let Some(initial) = &self.initial else {
                return err("a state machine needs `initial`".into());
            };
            if !self.states.contains_key(initial) {
                return err(format!("initial state `{initial}` is not defined"));
            }
            for (state, step) in &self.states {
                if let Some(next) = &step.next {
                    if !self.states.contains_key(next) {
                        return err(format!("state `{state}` moves to undefined state `{next}`"));
                    }
                }
            }
        }
        Ok(())
    }
}

impl FaultSet {
    /// Parses a fault file (TOML).
    pub fn from_toml(text: &str) -> Result<FaultSet, FaultError> {
        let set: FaultSet = toml::from_str(text).map_err(|e| FaultError::Syntax(e.to_string()))?;
        set.validate()?;
        Ok(set)
    }

    /// Validates every rule.
    pub fn validate(&self) -> Result<(), FaultError> {
        self.rules.iter().try_for_each(FaultRule::validate)
    }
}
