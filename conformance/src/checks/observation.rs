//! What the checks look at: one run's input, the mock's journal parsed into [`Exchange`]s, the
//! rows the offline store holds, and how the sink ended.
//!
//! Retries are recognised by content, never by timing: two exchanges carrying the same set of
//! record ids are attempts of the same batch (a *chain*), and an id seen in several exchanges
//! was sent several times.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use mock_tecton::faults::FaultAction;
use mock_tecton::journal::{Entry, Outcome};
use mock_tecton::schema::Value;
use mock_tecton::store::OfflineRow;
use serde_json::Value as Json;

use super::{Evidence, ExpectedOutcome};
use crate::answer::{is_retryable_status, is_success_body};
use crate::sink::{Record, SinkEnv, SinkOutcome};

/// One input record.
#[derive(Debug, Clone, PartialEq)]
pub struct InputRecord {
    /// Position in the input, from 0.
    pub position: usize,
    /// Its id (the scenario's id field).
    pub id: String,
    /// Its key (the scenario's key field), `""` when absent.
    pub key: String,
    /// The record.
    pub record: Record,
}

/// One record in a request body.
#[derive(Debug, Clone, PartialEq)]
pub struct SentRecord {
    /// Its id, `""` when it has none.
    pub id: String,
    /// The push source it was sent for.
    pub source: String,
    /// Whether it was wrapped as `{"record": {...}}`.
    pub wrapped: bool,
    /// The record's fields (the inside of the wrapper, or the item itself).
    pub fields: Json,
}

/// The fault the mock applied to an exchange, read from the journal's label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultKind {
    /// No fault.
    None,
    /// An error status, with its `Retry-After` seconds.
    Status {
        /// The status.
        status: u16,
        /// `Retry-After`, if sent.
        retry_after_s: Option<u64>,
    },
    /// Delayed, then handled.
    Latency,
    /// Held without an answer.
    Hang,
    /// Reset before the body was read (nothing written).
    ResetBeforeBody,
    /// Reset after the body was read (written unless the rule said otherwise).
    ResetAfterBody,
    /// Response cut mid-body (written).
    Truncate,
    /// Response sent slowly.
    Dribble,
    /// Non-JSON answer (nothing written).
    Garbage,
    /// Records validated against a changed schema.
    SchemaDrift,
}

impl FaultKind {
    /// The kind of the fault applied to an exchange, from the journal's structured action.
    pub(crate) fn from_action(action: Option<&FaultAction>) -> FaultKind {
        match action {
            None | Some(FaultAction::Pass) => FaultKind::None,
            Some(FaultAction::Status {
                status,
                retry_after_s,
                ..
            }) => FaultKind::Status {
                status: *status,
                retry_after_s: *retry_after_s,
            },
            Some(FaultAction::Latency { .. }) => FaultKind::Latency,
            Some(FaultAction::Hang { .. }) => FaultKind::Hang,
            Some(FaultAction::ResetBeforeBody) => FaultKind::ResetBeforeBody,
            Some(FaultAction::ResetAfterBody { .. }) => FaultKind::ResetAfterBody,
            Some(FaultAction::Truncate) => FaultKind::Truncate,
            Some(FaultAction::Dribble { .. }) => FaultKind::Dribble,
            Some(FaultAction::Garbage { .. }) => FaultKind::Garbage,
            Some(FaultAction::SchemaDrift { .. }) => FaultKind::SchemaDrift,
        }
    }
}

/// What an exchange means for the records it carried, from the sink's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// 200 with Tecton's success body: written and acknowledged.
    Acked,
    /// A retryable error status (429, 5xx, …): definitely not written; worth retrying.
    RetryableStatus,
    /// A definite error (4xx other than 408/425/429): not written; retrying cannot help.
    Definite,
    /// No complete response (reset, cut, hung up, abandoned): may or may not have been written.
    Indefinite,
    /// A complete 2xx whose body is not Tecton's success body (a proxy's page, garbage): as
    /// indefinite as a lost response, since whoever answered may not be Tecton. Retrying it is
    /// right; trusting it is a warning ([`super::CheckId::AckBody`]).
    Unreadable,
}

impl Class {
    /// Whether a sink should retry the records of such an exchange.
    pub(crate) fn retryable(self) -> bool {
        matches!(
            self,
            Class::RetryableStatus | Class::Indefinite | Class::Unreadable
        )
    }

    /// Whether the sink cannot know if the records were written, so that a re-send (and the
    /// duplicate it may make) is allowed.
    pub(crate) fn indefinite(self) -> bool {
        matches!(self, Class::Indefinite | Class::Unreadable)
    }
}

/// One journaled exchange, parsed.
#[derive(Debug, Clone)]
pub struct Exchange {
    /// Journal sequence number (arrival order).
    pub seq: u64,
    /// HTTP method.
    pub method: String,
    /// Request path.
    pub path: String,
    /// Arrival, wall-clock ns since the epoch.
    pub arrived_ns: i64,
    /// How long the mock held it (until it answered, cut it, or noticed the client leave).
    pub duration: Duration,
    /// Status sent, 0 when none.
    pub status: u16,
    /// How the exchange ended.
    pub outcome: Outcome,
    /// The fault label, if any.
    pub fault: Option<String>,
    /// The fault, parsed.
    pub fault_kind: FaultKind,
    /// The service account of the presented key, when the key was accepted.
    pub key_id: Option<String>,
    /// The request body, parsed; `None` when the mock did not read it.
    pub body: Option<Result<Json, String>>,
    /// The records it carried (empty when the body is unknown or has none).
    pub records: Vec<SentRecord>,
    /// The response body as text.
    pub response: String,
    /// What an error response said (Tecton's `errorMessage`), when it is one of Tecton's.
    pub message: Option<String>,
    /// What it means for its records.
    pub class: Class,
}

impl Exchange {
    /// Parses a journal entry; `id_field` identifies records.
    pub(crate) fn from_entry(e: &Entry, id_field: &str) -> Exchange {
        let fault_kind = FaultKind::from_action(e.fault_action.as_ref());
        let body = if e.request_body.is_empty() {
            None
        } else {
            Some(serde_json::from_slice::<Json>(&e.request_body).map_err(|err| err.to_string()))
        };
        let records = match &body {
            Some(Ok(json)) => sent_records(json, id_field),
            _ => Vec::new(),
        };
        let response = String::from_utf8_lossy(&e.response_body).into_owned();
        let class = classify(e.outcome, e.status, &e.response_body);
        let message = if e.status >= 400 {
            crate::answer::error_message(&e.response_body)
        } else {
            None
        };
        Exchange {
            seq: e.seq,
            method: e.method.clone(),
            path: e.path.clone(),
            arrived_ns: e.received_at,
            duration: Duration::from_micros(e.duration_us),
            status: e.status,
            outcome: e.outcome,
            fault: e.fault.clone(),
            fault_kind,
            key_id: e.key_id.clone(),
            body,
            records,
            response,
            message,
            class,
        }
    }

    /// When the mock was done with it (arrival plus duration), ns since the epoch.
    pub(crate) fn ended_ns(&self) -> i64 {
        self.arrived_ns
            .saturating_add(i64::try_from(self.duration.as_nanos()).unwrap_or(i64::MAX))
    }

    /// The ids it carried.
    pub(crate) fn ids(&self) -> impl Iterator<Item = &str> {
        self.records.iter().map(|r| r.id.as_str())
    }

    /// The sorted, de-duplicated set of ids it carried, as one key.
    pub(crate) fn id_set(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.ids().map(str::to_owned).collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// Whether the request asked for `dry_run` (`dryRun`) true.
    pub(crate) fn dry_run(&self) -> bool {
        let Some(Ok(Json::Object(top))) = &self.body else {
            return false;
        };
        top.get("dry_run")
            .or_else(|| top.get("dryRun"))
            .and_then(Json::as_bool)
            .unwrap_or(false)
    }
}

/// The one place that decides what an exchange means for its records.
fn classify(outcome: Outcome, status: u16, response: &[u8]) -> Class {
    match outcome {
        Outcome::Responded => {}
        Outcome::ClientGone | Outcome::Reset | Outcome::Truncated | Outcome::Abandoned => {
            return Class::Indefinite
        }
    }
    match status {
        0 => Class::Indefinite,
        200 if is_success_body(response) => Class::Acked,
        200..=299 => Class::Unreadable,
        s if is_retryable_status(s) => Class::RetryableStatus,
        _ => Class::Definite,
    }
}

fn id_text(v: Option<&Json>) -> String {
    match v {
        Some(Json::String(s)) => s.clone(),
        Some(Json::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

fn sent_records(body: &Json, id_field: &str) -> Vec<SentRecord> {
    let Some(Json::Object(sources)) = body.get("records") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (source, items) in sources {
        let Json::Array(items) = items else { continue };
        for item in items {
            let (wrapped, fields) = match item {
                Json::Object(m) if m.len() == 1 && m.get("record").is_some_and(Json::is_object) => {
                    (true, m.get("record").cloned().unwrap_or(Json::Null))
                }
                other => (false, other.clone()),
            };
            out.push(SentRecord {
                id: id_text(fields.get(id_field)),
                source: source.clone(),
                wrapped,
                fields,
            });
        }
    }
    out
}

/// One row of the offline store, reduced to what the checks need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenRow {
    /// Ingestion order.
    pub seq: u64,
    /// Journal sequence number of the request that wrote it.
    pub request: u64,
    /// The record's id.
    pub id: String,
    /// The record's key.
    pub key: String,
}

impl WrittenRow {
    /// Reduces an offline row; `id_col` and `key_col` are the fields' schema positions.
    pub(crate) fn from_offline(
        row: &OfflineRow,
        id_col: Option<usize>,
        key_col: Option<usize>,
    ) -> Self {
        let text = |col: Option<usize>| match col.and_then(|c| row.values.get(c)) {
            Some(Value::String(s)) => s.to_string(),
            Some(v) => v.to_plain_json().to_string(),
            None => String::new(),
        };
        WrittenRow {
            seq: row.seq,
            request: row.request,
            id: text(id_col),
            key: text(key_col),
        }
    }
}

/// Everything a check judges.
#[derive(Debug, Clone)]
pub struct Observation {
    /// Scenario name.
    pub scenario: String,
    /// The run's seed.
    pub seed: u64,
    /// What the sink was told.
    pub env: SinkEnv,
    /// What the scenario expects.
    pub expected: ExpectedOutcome,
    /// The service account of `env.api_key`; `None` when the repository does not know the key
    /// (invalid-key scenarios).
    pub key_account: Option<String>,
    /// The mock's per-source record limit.
    pub records_per_source: usize,
    /// The input, in order.
    pub input: Vec<InputRecord>,
    /// The journal, parsed, in arrival order.
    pub exchanges: Vec<Exchange>,
    /// The offline store's rows of the push source, in ingestion order; `None` when the
    /// source does not exist or does not log offline.
    pub written: Option<Vec<WrittenRow>>,
    /// How the sink ended.
    pub outcome: SinkOutcome,
    /// Journal entries the mock let go (the checks are incomplete when this is not 0).
    pub journal_dropped: u64,
}

/// The raw material of an [`Observation`].
#[derive(Debug, Clone)]
pub struct ObservationParts {
    /// Scenario name.
    pub scenario: String,
    /// The run's seed.
    pub seed: u64,
    /// What the sink was told.
    pub env: SinkEnv,
    /// What the scenario expects.
    pub expected: ExpectedOutcome,
    /// The service account of `env.api_key`, if the repository knows it.
    pub key_account: Option<String>,
    /// The mock's per-source record limit.
    pub records_per_source: usize,
    /// The id field.
    pub id_field: String,
    /// The key field.
    pub key_field: String,
    /// The input records.
    pub input: Vec<Record>,
    /// The journal.
    pub journal: Vec<Entry>,
    /// Offline rows, reduced.
    pub written: Option<Vec<WrittenRow>>,
    /// The sink's outcome.
    pub outcome: SinkOutcome,
    /// Journal entries let go.
    pub journal_dropped: u64,
}

impl Observation {
    /// Parses the journal and indexes the input.
    pub fn new(p: ObservationParts) -> Observation {
        let input = p
            .input
            .into_iter()
            .enumerate()
            .map(|(position, record)| InputRecord {
                position,
                id: id_text(record.get(&p.id_field)),
                key: match record.get(&p.key_field) {
                    Some(Json::String(s)) => s.clone(),
                    Some(v) => v.to_string(),
                    None => String::new(),
                },
                record,
            })
            .collect();
        let exchanges = p
            .journal
            .iter()
            .map(|e| Exchange::from_entry(e, &p.id_field))
            .collect();
        Observation {
            scenario: p.scenario,
            seed: p.seed,
            env: p.env,
            expected: p.expected,
            key_account: p.key_account,
            records_per_source: p.records_per_source,
            input,
            exchanges,
            written: p.written,
            outcome: p.outcome,
            journal_dropped: p.journal_dropped,
        }
    }

    /// The exchange with journal sequence number `seq`.
    pub(crate) fn exchange(&self, seq: u64) -> Option<&Exchange> {
        self.exchanges.iter().find(|e| e.seq == seq)
    }

    /// Exchanges that carried at least one record.
    pub(crate) fn with_records(&self) -> impl Iterator<Item = &Exchange> {
        self.exchanges.iter().filter(|e| !e.records.is_empty())
    }

    /// Ids acknowledged by a 200 with Tecton's success body (dry runs excluded).
    pub(crate) fn acked_ids(&self) -> HashSet<&str> {
        self.exchanges
            .iter()
            .filter(|e| e.class == Class::Acked && !e.dry_run())
            .flat_map(Exchange::ids)
            .collect()
    }

    /// For each id, the positions (in `exchanges`) of the exchanges that carried it.
    pub(crate) fn sends_by_id(&self) -> HashMap<&str, Vec<usize>> {
        let mut map: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, e) in self.exchanges.iter().enumerate() {
            let mut seen = HashSet::new();
            for id in e.ids() {
                if seen.insert(id) {
                    map.entry(id).or_default().push(i);
                }
            }
        }
        map
    }

    /// Chains: positions of exchanges carrying exactly the same non-empty set of ids, in
    /// arrival order; chains ordered by their first exchange.
    pub(crate) fn chains(&self) -> Vec<Vec<usize>> {
        let mut by_set: BTreeMap<Vec<String>, Vec<usize>> = BTreeMap::new();
        for (i, e) in self.exchanges.iter().enumerate() {
            if !e.records.is_empty() {
                by_set.entry(e.id_set()).or_default().push(i);
            }
        }
        let mut chains: Vec<Vec<usize>> = by_set.into_values().collect();
        chains.sort_by_key(|c| c.first().copied());
        chains
    }

    /// Milliseconds from the first exchange's arrival to `ns`.
    pub(crate) fn rel_ms(&self, ns: i64) -> f64 {
        let t0 = self.exchanges.first().map_or(ns, |e| e.arrived_ns);
        (ns - t0) as f64 / 1e6
    }

    /// Evidence about an exchange: a line for people and its facts for machines.
    pub(crate) fn describe(&self, e: &Exchange) -> Evidence {
        let status = match (e.status, e.outcome) {
            (s, Outcome::Responded) => format!("{s}"),
            (0, o) => outcome_name(o).to_owned(),
            (s, o) => format!("{s} then {}", outcome_name(o)),
        };
        let fault = e
            .fault
            .as_deref()
            .map(|f| format!(" [fault {f}]"))
            .unwrap_or_default();
        let carried = if e.body.is_none() {
            "body not read".to_owned()
        } else if e.records.is_empty() {
            "no records".to_owned()
        } else {
            format!("{} record(s) {}", e.records.len(), summarize_ids(e.ids()))
        };
        let said = e
            .message
            .as_deref()
            .map(|m| format!(": {}", quote_message(m)))
            .unwrap_or_default();
        let at_ms = self.rel_ms(e.arrived_ns);
        Evidence {
            text: format!(
                "seq {} at +{at_ms:.1} ms: {} {} -> {status}{said}{fault} after {:.1} ms, {carried}",
                e.seq,
                e.method,
                e.path,
                e.duration.as_secs_f64() * 1e3,
            ),
            seq: Some(e.seq),
            at_ms: Some((at_ms * 10.0).round() / 10.0),
            status: Some(e.status),
            outcome: Some(outcome_key(e.outcome).to_owned()),
            fault: e.fault.clone(),
            message: e.message.clone(),
            records: e.ids().map(str::to_owned).collect(),
        }
    }
}

/// The journal's name for an outcome.
pub fn outcome_name(o: Outcome) -> &'static str {
    match o {
        Outcome::Responded => "responded",
        Outcome::ClientGone => "client gone",
        Outcome::Reset => "reset",
        Outcome::Truncated => "truncated",
        Outcome::Abandoned => "abandoned",
    }
}

/// The journal's JSON key for an outcome.
fn outcome_key(o: Outcome) -> &'static str {
    match o {
        Outcome::Responded => "responded",
        Outcome::ClientGone => "client_gone",
        Outcome::Reset => "reset",
        Outcome::Truncated => "truncated",
        Outcome::Abandoned => "abandoned",
    }
}

/// An error message in quotes, cut to a readable length.
fn quote_message(m: &str) -> String {
    const MAX: usize = 160;
    let mut cut: String = m.chars().take(MAX).collect();
    if cut.len() < m.len() {
        cut.push('…');
    }
    format!("\"{cut}\"")
}

/// `a, b, c` or `first … last` for long lists.
pub fn summarize_ids<'a>(ids: impl IntoIterator<Item = &'a str>) -> String {
    let ids: Vec<&str> = ids.into_iter().collect();
    match ids.len() {
        0 => "(none)".into(),
        1..=4 => ids.join(", "),
        n => format!("{} … {} ({n})", ids[0], ids[n - 1]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_kinds_come_from_the_structured_action() {
        let throttle = FaultAction::Status {
            status: 429,
            retry_after_s: Some(1),
            message: None,
        };
        assert_eq!(
            FaultKind::from_action(Some(&throttle)),
            FaultKind::Status {
                status: 429,
                retry_after_s: Some(1)
            }
        );
        assert_eq!(
            FaultKind::from_action(Some(&FaultAction::Hang { max_ms: None })),
            FaultKind::Hang
        );
        assert_eq!(
            FaultKind::from_action(Some(&FaultAction::ResetAfterBody { process: true })),
            FaultKind::ResetAfterBody
        );
        assert_eq!(FaultKind::from_action(None), FaultKind::None);
    }

    #[test]
    fn classes() {
        let ok = r#"{"workspaceName":"prod","ingestMetrics":{}}"#;
        let ok = ok.as_bytes();
        assert_eq!(classify(Outcome::Responded, 200, ok), Class::Acked);
        let junk = classify(Outcome::Responded, 200, b"\0junk");
        assert_eq!(junk, Class::Unreadable);
        assert!(junk.indefinite() && junk.retryable());
        assert_eq!(
            classify(Outcome::Responded, 503, b"{}"),
            Class::RetryableStatus
        );
        assert_eq!(classify(Outcome::Responded, 404, b"{}"), Class::Definite);
        assert_eq!(classify(Outcome::Reset, 200, ok), Class::Indefinite);
        assert_eq!(classify(Outcome::Responded, 0, b""), Class::Indefinite);
    }

    #[test]
    fn records_are_read_wrapped_or_not() {
        let body: Json = serde_json::json!({"workspace_name":"prod","dry_run":false,"records":{"s":[
            {"record":{"transaction_id":"t1"}},
            {"transaction_id":"t2"},
            {"record":{"transaction_id":7}}
        ]}});
        let r = sent_records(&body, "transaction_id");
        let ids: Vec<&str> = r.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["t1", "t2", "7"]);
        assert_eq!(r.iter().filter(|s| s.wrapped).count(), 2);
        assert_eq!(summarize_ids(["a", "b", "c", "d", "e"]), "a … e (5)");
    }
}
