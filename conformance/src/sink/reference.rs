//! The reference sink: how a good production sink writes to Tecton's Stream Ingest API.
//!
//! * **Batching**: input records, in order, into requests of at most `SINK_BATCH_SIZE` records
//!   (and never more than `MAX_RECORDS_PER_REQUEST`, Tecton's recommended batch); the final
//!   partial batch is flushed.
//! * **Order**: one request in flight at a time, batches in input order, so records of one key
//!   reach Tecton in the order they were produced.
//! * **Timeouts**: every attempt is bounded by `SINK_TIMEOUT_S`, response body included.
//! * **Retries**: on an indefinite or transient failure (408, 425, 429, any 5xx, a
//!   connection error, a timeout, a 200 whose body is not Tecton's success response) the batch
//!   is re-sent up to `SINK_MAX_RETRIES` times, after a capped exponential backoff with full
//!   jitter (seeded by `SINK_SEED`, see [`Backoff`]), and never sooner than a `Retry-After`
//!   header asks.
//! * **Definite failures** (400, 401, 403, 404, 413 and any other status) are never retried:
//!   re-sending the same request cannot succeed. The sink gives up on that batch and stops, and
//!   says on stderr which input records were not written and why, quoting Tecton's
//!   `errorMessage`.
//!
//! A [`Mutant`] switches one defect on in this same code (the mutant sinks wrap it); each
//! decision point below asks whether its defect is on.

use std::fmt;
use std::time::{Duration, Instant};

use serde_json::{json, Value as Json};

use mock_tecton::rng::SplitMix64;

use super::backoff::Backoff;
use super::defect::Mutant;
use super::{BoxFuture, Record, Sink, SinkEnv, SinkMetrics, SinkOutcome};
use crate::answer::{is_retryable_status, is_success_body};

/// The most records the reference sink puts in one request, whatever `SINK_BATCH_SIZE` says:
/// Tecton recommends 10 and the mock enforces 10 by default.
pub(crate) const MAX_RECORDS_PER_REQUEST: usize = 10;

/// Records per request of [`Mutant::OversizeBatches`].
const OVERSIZE_BATCH: usize = 25;
/// Attempts per batch of [`Mutant::UnboundedRetries`].
const UNBOUNDED_ATTEMPTS: u32 = 50;
/// Every n-th batch is sent twice by [`Mutant::DuplicatesAfterSuccess`].
const DUPLICATE_EVERY: usize = 3;
/// How much of an unexpected response body is quoted in messages.
const QUOTE_CHARS: usize = 200;

/// The reference sink. Runs in-process; the `reference-sink` binary runs it as a protocol-v1
/// command.
#[derive(Debug, Clone, Default)]
pub struct ReferenceSink {
    defect: Option<Mutant>,
    backoff: Backoff,
}

impl ReferenceSink {
    /// The reference sink with the default backoff (50 ms base, 2 s cap).
    pub fn new() -> Self {
        ReferenceSink::default()
    }

    /// The same sink with a different backoff policy (tests use a short one).
    pub(crate) fn with_backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// The sink with `defect` switched on; `None` is the reference itself.
    pub(crate) fn with_defect(defect: Option<Mutant>) -> Self {
        ReferenceSink {
            defect,
            backoff: Backoff::default(),
        }
    }

    /// The defect switched on, if any.
    pub fn defect(&self) -> Option<Mutant> {
        self.defect
    }

    /// Delivers `records` and reports how it went (the body of [`Sink::run`]).
    pub(crate) async fn deliver(&self, env: &SinkEnv, records: Vec<Record>) -> SinkOutcome {
        let started = Instant::now();
        let mut builder = reqwest::Client::builder()
            // A redirected POST would silently turn into a GET.
            .redirect(reqwest::redirect::Policy::none());
        if is_loopback(&env.url) {
            // An HTTP proxy from the environment cannot reach this host's loopback.
            builder = builder.no_proxy();
        }
        let mut outcome = match builder.build() {
            Ok(client) => {
                let mut run = Run {
                    env,
                    defect: self.defect,
                    backoff: self.backoff,
                    client,
                    rng: SplitMix64::new(env.seed),
                    metrics: SinkMetrics::default(),
                    stderr: String::new(),
                };
                run.deliver(&records).await
            }
            Err(e) => SinkOutcome {
                exit_code: Some(1),
                stderr: format!("cannot build an HTTP client: {e}\n"),
                metrics: Some(SinkMetrics::default()),
                ..SinkOutcome::default()
            },
        };
        outcome.elapsed = started.elapsed();
        outcome
    }
}

impl Sink for ReferenceSink {
    fn name(&self) -> String {
        match self.defect {
            None => "reference".into(),
            Some(m) => format!("mutant:{m}"),
        }
    }

    fn run<'a>(&'a self, env: &'a SinkEnv, records: Vec<Record>) -> BoxFuture<'a, SinkOutcome> {
        Box::pin(self.deliver(env, records))
    }
}

/// One batch: consecutive input records starting at input position `first`.
#[derive(Debug, Clone, Copy)]
struct Batch<'r> {
    first: usize,
    records: &'r [Record],
}

/// Why one attempt failed.
#[derive(Debug)]
enum Failure {
    /// An error status (Tecton's `errorType`/`errorMessage` when the body has them).
    Status {
        status: u16,
        message: String,
        retry_after: Option<Duration>,
    },
    /// A 200 whose body is not Tecton's success response (cut, garbled, or something else).
    NotSuccessBody(String),
    /// No complete response within the per-request timeout.
    Timeout(Duration),
    /// The connection failed (refused, reset, closed mid-response).
    Connection(String),
}

impl Failure {
    /// Whether sending the same request again may succeed.
    fn retryable(&self) -> bool {
        match self {
            Failure::Status { status, .. } => is_retryable_status(*status),
            Failure::NotSuccessBody(_) | Failure::Timeout(_) | Failure::Connection(_) => true,
        }
    }

    /// The HTTP status, for a failure that has one.
    fn status(&self) -> Option<u16> {
        match self {
            Failure::Status { status, .. } => Some(*status),
            Failure::NotSuccessBody(_) | Failure::Timeout(_) | Failure::Connection(_) => None,
        }
    }

    /// How long the server asked the client to wait.
    fn retry_after(&self) -> Option<Duration> {
        match self {
            Failure::Status { retry_after, .. } => *retry_after,
            Failure::NotSuccessBody(_) | Failure::Timeout(_) | Failure::Connection(_) => None,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Status {
                status, message, ..
            } => write!(f, "HTTP {status}: {message}"),
            Failure::NotSuccessBody(body) => write!(
                f,
                "HTTP 200 with a body that is not Tecton's success response: {body}"
            ),
            Failure::Timeout(t) => write!(f, "no response within {} s", t.as_secs_f64()),
            Failure::Connection(e) => write!(f, "connection failed: {e}"),
        }
    }
}

/// The state of one delivery.
struct Run<'e> {
    env: &'e SinkEnv,
    defect: Option<Mutant>,
    backoff: Backoff,
    client: reqwest::Client,
    rng: SplitMix64,
    metrics: SinkMetrics,
    stderr: String,
}

impl Run<'_> {
    /// Whether `mutant`'s defect is switched on.
    fn has(&self, mutant: Mutant) -> bool {
        self.defect == Some(mutant)
    }

    fn say(&mut self, line: impl fmt::Display) {
        use fmt::Write as _;
        let _ = writeln!(self.stderr, "{line}");
    }

    fn batch_size(&self) -> usize {
        if self.has(Mutant::NoBatching) {
            1
        } else if self.has(Mutant::OversizeBatches) {
            OVERSIZE_BATCH
        } else {
            self.env.batch_size.clamp(1, MAX_RECORDS_PER_REQUEST)
        }
    }

    async fn deliver(&mut self, records: &[Record]) -> SinkOutcome {
        let size = self.batch_size();
        let mut batches: Vec<Batch<'_>> = records
            .chunks(size)
            .enumerate()
            .map(|(i, chunk)| Batch {
                first: i * size,
                records: chunk,
            })
            .collect();
        if self.has(Mutant::DropsLastBatch)
            && batches.last().is_some_and(|b| b.records.len() < size)
        {
            batches.pop();
        }
        if self.has(Mutant::Reorders) {
            batches.reverse();
        }

        let total = batches.len();
        let mut gave_up = false;
        for (i, batch) in batches.iter().enumerate() {
            let label = format!(
                "batch {} of {total} (records {})",
                i + 1,
                span(batch.first, batch.records.len())
            );
            let body = self.body(batch.records);
            if let Err((failure, attempts)) = self.send(&body, batch.records.len(), &label).await {
                let tries = if attempts == 1 {
                    "1 attempt".to_owned()
                } else {
                    format!("{attempts} attempts")
                };
                self.say(format!("gave up on {label} after {tries}: {failure}"));
                let unwritten: Vec<usize> = batches[i..]
                    .iter()
                    .flat_map(|b| b.first..b.first + b.records.len())
                    .collect();
                self.say(format!(
                    "{} of {} records were not written (input positions {}, counted from 0)",
                    unwritten.len(),
                    records.len(),
                    ranges(unwritten)
                ));
                gave_up = true;
                break;
            }
            if self.has(Mutant::DuplicatesAfterSuccess) && (i + 1) % DUPLICATE_EVERY == 0 {
                // Sent again although Tecton acknowledged it: every record becomes a duplicate.
                if self.attempt(&body).await.is_err() {
                    self.metrics.write_errors += 1;
                }
                self.metrics.write_requests += 1;
            }
        }

        let exit_code = if gave_up && !self.has(Mutant::LiesAboutSuccess) {
            1
        } else {
            0
        };
        SinkOutcome {
            exit_code: Some(exit_code),
            timed_out: false,
            stderr: std::mem::take(&mut self.stderr),
            metrics: Some(self.metrics),
            elapsed: Duration::ZERO,
        }
    }

    /// The request body for a batch.
    fn body(&self, records: &[Record]) -> Vec<u8> {
        let wrapped: Vec<Json> = records.iter().map(|r| json!({ "record": r })).collect();
        let mut sources = serde_json::Map::new();
        sources.insert(self.env.push_source.clone(), Json::Array(wrapped));
        let (workspace_key, dry_run_key) = if self.has(Mutant::CamelCaseBody) {
            ("workspaceName", "dryRun")
        } else {
            ("workspace_name", "dry_run")
        };
        let body = json!({
            workspace_key: self.env.workspace,
            dry_run_key: false,
            "records": sources,
        });
        serde_json::to_vec(&body).unwrap_or_default()
    }

    /// Sends one batch until it is acknowledged, retrying what is worth retrying. On giving up,
    /// the last failure and the number of attempts made.
    async fn send(&mut self, body: &[u8], count: usize, label: &str) -> Result<(), (Failure, u32)> {
        let max_attempts = if self.has(Mutant::NoRetry) {
            1
        } else if self.has(Mutant::UnboundedRetries) {
            UNBOUNDED_ATTEMPTS
        } else {
            self.env.max_retries.saturating_add(1)
        };
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            let result = self.attempt(body).await;
            self.metrics.write_requests += 1;
            let failure = match result {
                Ok(()) => {
                    self.metrics.records_written += count as u64;
                    return Ok(());
                }
                Err(failure) => failure,
            };
            self.metrics.write_errors += 1;
            let retryable = failure.retryable()
                || (self.has(Mutant::RetriesDefinite4xx)
                    && matches!(failure.status(), Some(400 | 401 | 403 | 404)));
            if !retryable || attempts >= max_attempts {
                return Err((failure, attempts));
            }
            let delay = self.delay(attempts - 1, failure.retry_after());
            self.say(format!(
                "{label}: {failure}; retry {attempts} of {} in {} ms",
                max_attempts - 1,
                delay.as_millis()
            ));
            tokio::time::sleep(delay).await;
        }
    }

    /// The wait before retry number `retry` (0 for the first retry).
    fn delay(&mut self, retry: u32, retry_after: Option<Duration>) -> Duration {
        let backoff = if self.has(Mutant::NoBackoff) {
            Duration::ZERO
        } else if self.has(Mutant::NoJitter) {
            self.backoff.ceiling(retry)
        } else {
            self.backoff.full_jitter(retry, &mut self.rng)
        };
        match retry_after {
            Some(asked) if !self.has(Mutant::IgnoresRetryAfter) => backoff.max(asked),
            _ => backoff,
        }
    }

    /// One HTTP attempt: `Ok` only for a 200 with Tecton's success body.
    async fn attempt(&self, body: &[u8]) -> Result<(), Failure> {
        let env = self.env;
        let scheme = if self.has(Mutant::WrongAuthScheme) {
            "Bearer"
        } else {
            "Tecton-key"
        };
        let request = self
            .client
            .post(format!("{}/ingest", env.url.trim_end_matches('/')))
            .header(
                reqwest::header::AUTHORIZATION,
                format!("{scheme} {}", env.api_key),
            )
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_vec());
        let exchange = async {
            let response = request.send().await?;
            let status = response.status().as_u16();
            let retry_after = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(parse_retry_after);
            let bytes = response.bytes().await?;
            Ok::<_, reqwest::Error>((status, retry_after, bytes))
        };
        let result = if self.has(Mutant::NoTimeout) {
            exchange.await
        } else {
            // Bounds connecting, sending and reading the whole body: a stalled or dribbled
            // response is a timeout too.
            match tokio::time::timeout(env.timeout, exchange).await {
                Ok(r) => r,
                Err(_) => return Err(Failure::Timeout(env.timeout)),
            }
        };
        let (status, retry_after, bytes) =
            result.map_err(|e| Failure::Connection(error_chain(&e)))?;
        if status == 200 {
            return if is_success_body(&bytes) || self.has(Mutant::TrustsAny200) {
                Ok(())
            } else {
                Err(Failure::NotSuccessBody(quote(&bytes)))
            };
        }
        Err(Failure::Status {
            status,
            message: error_message(&bytes),
            retry_after,
        })
    }
}

/// Whether `url`'s host is this machine's loopback.
fn is_loopback(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host.split(':').next().unwrap_or(""),
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// `Retry-After` as delta-seconds (fractions accepted). The HTTP-date form is not honoured: the
/// mock never sends it and a clock-skewed date is worse than the sink's own backoff.
fn parse_retry_after(value: &str) -> Option<Duration> {
    let secs: f64 = value.trim().parse().ok()?;
    Duration::try_from_secs_f64(secs).ok()
}

/// What an error body says (Tecton's messages when it has them), or the start of the raw body.
fn error_message(bytes: &[u8]) -> String {
    match crate::answer::error_message(bytes) {
        Some(m) => m,
        None if bytes.is_empty() => "(empty body)".into(),
        None => quote(bytes),
    }
}

/// The start of a body, as text.
fn quote(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut cut: String = text.chars().take(QUOTE_CHARS).collect();
    if cut.len() < text.len() {
        cut.push('…');
    }
    format!("{cut:?}")
}

/// An error and its causes, one after the other (reqwest's own text omits the cause).
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// `first..first+len-1` as text.
fn span(first: usize, len: usize) -> String {
    ranges(first..first + len)
}

/// Positions as compact ranges: `0-9, 20-24`.
fn ranges(positions: impl IntoIterator<Item = usize>) -> String {
    let mut sorted: Vec<usize> = positions.into_iter().collect();
    sorted.sort_unstable();
    sorted.dedup();
    let mut parts: Vec<String> = Vec::new();
    let mut iter = sorted.into_iter().peekable();
    while let Some(start) = iter.next() {
        let mut end = start;
        while iter.peek() == Some(&(end + 1)) {
            end += 1;
            iter.next();
        }
        parts.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
    }
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_compact() {
        assert_eq!(ranges([3, 0, 1, 2, 7, 9, 8]), "0-3, 7-9");
        assert_eq!(ranges([5]), "5");
        assert_eq!(ranges(std::iter::empty()), "");
    }

    #[test]
    fn error_bodies_are_summarised() {
        let request =
            br#"{"requestError":{"errorMessage":"bad key","errorType":"UnauthenticatedError"}}"#;
        assert_eq!(error_message(request), "UnauthenticatedError: bad key");
        let records = br#"{"workspaceName":"prod","recordErrors":[{"featureViewName":"v","pushSourceName":"s","errorType":"TectonObjectValidationError","errorMessage":"record 0: ttl"}]}"#;
        assert_eq!(
            error_message(records),
            "TectonObjectValidationError (v): record 0: ttl"
        );
        assert_eq!(error_message(b"<html>"), "\"<html>\"");
        assert_eq!(error_message(b""), "(empty body)");
    }

    #[test]
    fn loopback_urls_are_recognised() {
        assert!(is_loopback("http://127.0.0.1:4000"));
        assert!(is_loopback("http://localhost/x"));
        assert!(is_loopback("http://[::1]:80/"));
        assert!(!is_loopback("https://preview.acme.tecton.ai"));
        assert!(!is_loopback("http://10.0.0.1:80"));
    }

    #[test]
    fn retry_after_is_seconds() {
        assert_eq!(parse_retry_after(" 2 "), Some(Duration::from_secs(2)));
        assert_eq!(parse_retry_after("0.5"), Some(Duration::from_millis(500)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(parse_retry_after("-1"), None);
    }
}
