//! Attach mode: judge a sink that runs elsewhere (a Flink or Beam job, a service in a
//! container) and writes to the mock's URL on its own.
//!
//! An [`AttachedSink`] delivers nothing. Its run waits until a [`Completion`] condition holds on
//! the mock's journal, or until its timeout. The records handed to it are ignored: the sink
//! under test reads its input from wherever it is configured to.

use std::sync::Arc;
use std::time::{Duration, Instant};

use mock_tecton::journal::{Entry, Outcome};
use mock_tecton::state::MockState;
use serde_json::Value as Json;

use super::{BoxFuture, Record, Sink, SinkEnv, SinkOutcome};

/// Default overall timeout of an attached run.
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// How often the journal is read.
const POLL: Duration = Duration::from_millis(20);

/// Ingest paths whose acknowledged records count.
const INGEST_PATHS: [&str; 2] = ["/ingest", "/v2/ingest"];

/// When an attached sink is considered done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completion {
    /// This many records have been acknowledged: the records in the bodies of ingest requests
    /// answered 200 (duplicates count each time they are sent).
    Records(u64),
    /// No new exchange reached the journal for this long, after at least one did.
    Quiet(Duration),
}

/// A sink running elsewhere, observed through the mock.
#[derive(Debug, Clone)]
pub struct AttachedSink {
    state: Arc<MockState>,
    completion: Completion,
    timeout: Duration,
    name: String,
}

impl AttachedSink {
    /// Observes the mock whose state is `state` (`mock.state().clone()`) until `completion`
    /// holds, for at most `DEFAULT_TIMEOUT`.
    pub fn new(state: Arc<MockState>, completion: Completion) -> Self {
        AttachedSink {
            state,
            completion,
            timeout: DEFAULT_TIMEOUT,
            name: "attached".into(),
        }
    }

    /// Gives up after `timeout` (the outcome then says `timed_out`).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// A name for reports (default `attached`).
    pub(crate) fn named(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Waits for the completion condition.
    pub(crate) async fn wait(&self) -> SinkOutcome {
        let started = Instant::now();
        // When the journal last changed, as seen by this observer.
        let mut last_change = started;
        let mut last_total = self.state.journal().counters().total;
        let mut seen_any = last_total > 0;
        loop {
            let total = self.state.journal().counters().total;
            if total != last_total {
                last_total = total;
                last_change = Instant::now();
                seen_any = true;
            }
            let done = match self.completion {
                Completion::Records(n) => acknowledged_records(&self.journal()) >= n,
                Completion::Quiet(quiet) => seen_any && last_change.elapsed() >= quiet,
            };
            if done {
                return SinkOutcome {
                    exit_code: Some(0),
                    timed_out: false,
                    stderr: String::new(),
                    metrics: None,
                    elapsed: started.elapsed(),
                };
            }
            if started.elapsed() >= self.timeout {
                let seen = match self.completion {
                    Completion::Records(n) => format!(
                        "{} of {n} records acknowledged",
                        acknowledged_records(&self.journal())
                    ),
                    Completion::Quiet(quiet) if seen_any => format!(
                        "the journal never stayed quiet for {} s",
                        quiet.as_secs_f64()
                    ),
                    Completion::Quiet(_) => "no request reached the mock".into(),
                };
                return SinkOutcome {
                    exit_code: None,
                    timed_out: true,
                    stderr: format!(
                        "[harness] attached sink not done after {} s: {seen}\n",
                        self.timeout.as_secs_f64()
                    ),
                    metrics: None,
                    elapsed: started.elapsed(),
                };
            }
            tokio::time::sleep(POLL).await;
        }
    }

    fn journal(&self) -> Vec<Entry> {
        self.state.journal().entries(0, usize::MAX)
    }
}

impl Sink for AttachedSink {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn run<'a>(&'a self, _env: &'a SinkEnv, _records: Vec<Record>) -> BoxFuture<'a, SinkOutcome> {
        Box::pin(self.wait())
    }
}

/// Records acknowledged in `entries`: records in the request bodies of ingest exchanges that
/// were answered 200.
pub(crate) fn acknowledged_records(entries: &[Entry]) -> u64 {
    entries
        .iter()
        .filter(|e| {
            e.status == 200
                && e.outcome == Outcome::Responded
                && INGEST_PATHS.contains(&e.path.as_str())
        })
        .map(records_in)
        .sum()
}

/// Records carried by one acknowledged ingest exchange. The journal may cut long bodies; then
/// the count comes from the success body's per-view counts (exact for one push source).
fn records_in(entry: &Entry) -> u64 {
    if let Ok(Json::Object(body)) = serde_json::from_slice::<Json>(&entry.request_body) {
        if let Some(Json::Object(sources)) = body.get("records") {
            return sources
                .values()
                .filter_map(Json::as_array)
                .map(|records| records.len() as u64)
                .sum();
        }
    }
    let Ok(response) = serde_json::from_slice::<Json>(&entry.response_body) else {
        return 0;
    };
    response
        .pointer("/ingestMetrics/featureViewIngestMetrics")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
        .filter_map(|m| m.get("onlineRecordIngestCount"))
        .filter_map(|c| match c {
            Json::String(s) => s.parse::<u64>().ok(),
            other => other.as_u64(),
        })
        .max()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(status: u16, path: &str, request: &str, response: &str) -> Entry {
        Entry {
            status,
            path: path.into(),
            outcome: Outcome::Responded,
            request_body: request.to_owned().into(),
            response_body: response.to_owned().into(),
            ..Entry::default()
        }
    }

    #[test]
    fn counts_records_of_acknowledged_ingest_requests_only() {
        let body = r#"{"workspace_name":"prod","dry_run":false,"records":{"a":[{"record":{}},{"record":{}}],"b":[{"record":{}}]}}"#;
        let cut = r#"{"workspace_name":"prod","dry_ru"#;
        let ok = r#"{"workspaceName":"prod","ingestMetrics":{"featureViewIngestMetrics":[{"onlineRecordIngestCount":"4"},{"onlineRecordIngestCount":"4"}]}}"#;
        let entries = [
            entry(200, "/ingest", body, ok),
            entry(200, "/v2/ingest", body, ok),
            entry(400, "/ingest", body, "{}"),
            entry(200, "/_mock/health", body, ok),
            entry(200, "/ingest", cut, ok),
        ];
        assert_eq!(acknowledged_records(&entries), 3 + 3 + 4);
    }
}
