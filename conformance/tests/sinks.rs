//! The sinks against a real mock on 127.0.0.1: the reference sink (in-process, as a command,
//! and its Python twin), each mutant's defect as the journal shows it, the command driver's
//! process handling, and attach mode.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use conformance::sink::attach::{AttachedSink, Completion};
use conformance::sink::backoff::Backoff;
use conformance::sink::command::{self, CommandSink};
use conformance::sink::reference::ReferenceSink;
use conformance::sink::{Mutant, MutantSink};
use conformance::sink::{Record, Sink, SinkEnv, SinkMetrics, SinkOutcome};
use mock_tecton::faults::{FaultAction, FaultRule, FaultSet};
use mock_tecton::journal::{Entry, Outcome};
use mock_tecton::rng::SplitMix64;
use mock_tecton::schema::Value;
use mock_tecton::{Config, MockTecton};
use serde_json::{json, Value as Json};

/// 2024-06-01T00:00:00Z: the mock's virtual now; records are stamped the day before.
const NOW: i64 = 1_717_200_000_000_000_000;
const SEED: u64 = 7;
const TIMEOUT: Duration = Duration::from_millis(300);
const REFERENCE_BIN: &str = env!("CARGO_BIN_EXE_reference-sink");

async fn mock() -> MockTecton {
    MockTecton::start(Config::default().virtual_clock(NOW))
        .await
        .unwrap()
}

async fn mock_with(rules: Vec<FaultRule>) -> MockTecton {
    let mock = mock().await;
    mock.set_faults(FaultSet { seed: 1, rules }).unwrap();
    mock
}

fn env(mock: &MockTecton) -> SinkEnv {
    SinkEnv {
        url: mock.url(),
        api_key: "demo-editor-key".into(),
        workspace: "prod".into(),
        push_source: "transactions".into(),
        batch_size: 10,
        max_retries: 3,
        timeout: TIMEOUT,
        input_path: None,
        seed: SEED,
    }
}

/// `n` valid records; record `i` has transaction id `t{i}`, users rotate so keys repeat.
fn records(n: usize) -> Vec<Record> {
    (0..n)
        .map(|i| {
            let Json::Object(r) = json!({
                "user_id": format!("u{}", i % 3),
                "transaction_id": format!("t{i}"),
                "merchant": "acme",
                "amt": i as f64 + 0.5,
                "is_fraud": 0,
                "timestamp": format!("2024-05-31T{:02}:{:02}:00Z", i / 60, i % 60),
            }) else {
                unreachable!()
            };
            r
        })
        .collect()
}

fn ids(range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("t{i}")).collect()
}

/// Ingest exchanges, once `n` of them are in the journal (an exchange cut by the client is
/// journaled a moment after the client has moved on).
async fn ingest_entries(mock: &MockTecton, n: usize) -> Vec<Entry> {
    let ingest = || -> Vec<Entry> {
        mock.journal()
            .into_iter()
            .filter(|e| e.path == "/ingest")
            .collect()
    };
    for _ in 0..200 {
        let entries = ingest();
        if entries.len() >= n {
            return entries;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    ingest()
}

/// Transaction ids in one request body, in order.
fn ids_in(entry: &Entry) -> Vec<String> {
    let body: Json = serde_json::from_slice(&entry.request_body).unwrap();
    body["records"]["transactions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["record"]["transaction_id"].as_str().unwrap().to_owned())
        .collect()
}

fn batch_sizes(entries: &[Entry]) -> Vec<usize> {
    entries.iter().map(|e| ids_in(e).len()).collect()
}

/// Transaction ids in the offline store, in ingestion order.
fn offline_ids(mock: &MockTecton) -> Vec<String> {
    mock.offline_rows("transactions")
        .unwrap()
        .into_iter()
        .map(|row| match &row.values[1] {
            Value::String(s) => s.to_string(),
            other => panic!("transaction_id is {other:?}"),
        })
        .collect()
}

fn statuses(entries: &[Entry]) -> Vec<u16> {
    entries.iter().map(|e| e.status).collect()
}

/// Time between consecutive arrivals.
fn gaps(entries: &[Entry]) -> Vec<Duration> {
    entries
        .windows(2)
        .map(|w| Duration::from_nanos(u64::try_from(w[1].received_at - w[0].received_at).unwrap()))
        .collect()
}

fn metrics(records_written: u64, write_requests: u64, write_errors: u64) -> Option<SinkMetrics> {
    Some(SinkMetrics {
        records_written,
        write_requests,
        write_errors,
    })
}

fn status_rule(status: u16, retry_after_s: Option<u64>, message: Option<&str>) -> FaultRule {
    FaultRule::new(FaultAction::Status {
        status,
        retry_after_s,
        message: message.map(Into::into),
    })
}

/// A backoff short enough for tests that retry many times.
fn quick() -> Backoff {
    Backoff {
        base: Duration::from_millis(1),
        cap: Duration::from_millis(2),
    }
}

/// The fault-free expectation every sink that behaves like the reference must meet:
/// 25 records, 3 requests of 10, 10 and 5 in input order, everything stored, exit 0.
async fn assert_delivers_25_in_three_ordered_batches(sink: &dyn Sink) -> SinkOutcome {
    let mock = mock().await;
    let outcome = sink.run(&env(&mock), records(25)).await;
    assert!(outcome.succeeded(), "{}: {outcome:?}", sink.name());
    let entries = ingest_entries(&mock, 3).await;
    assert_eq!(batch_sizes(&entries), [10, 10, 5], "{}", sink.name());
    let sent: Vec<String> = entries.iter().flat_map(ids_in).collect();
    assert_eq!(sent, ids(0..25), "requests keep input order");
    assert_eq!(statuses(&entries), [200, 200, 200]);
    assert_eq!(offline_ids(&mock), ids(0..25), "every record stored once");
    outcome
}

// ---- the reference sink, in-process ----------------------------------------------------

#[tokio::test]
async fn reference_batches_in_input_order_and_flushes_the_last_partial_batch() {
    let outcome = assert_delivers_25_in_three_ordered_batches(&ReferenceSink::new()).await;
    assert_eq!(outcome.exit_code, Some(0));
    assert_eq!(outcome.metrics, metrics(25, 3, 0));
    assert!(outcome.stderr.is_empty(), "{}", outcome.stderr);
}

#[tokio::test]
async fn reference_caps_batches_at_ten_whatever_the_hint() {
    let mock = mock().await;
    let env = SinkEnv {
        batch_size: 50,
        ..env(&mock)
    };
    let outcome = ReferenceSink::new().run(&env, records(12)).await;
    assert!(outcome.succeeded(), "{outcome:?}");
    assert_eq!(batch_sizes(&ingest_entries(&mock, 2).await), [10, 2]);
}

#[tokio::test]
async fn reference_waits_at_least_retry_after_before_retrying_a_429() {
    let mock = mock_with(vec![status_rule(429, Some(1), None).times(1)]).await;
    let outcome = ReferenceSink::new().run(&env(&mock), records(5)).await;
    assert!(outcome.succeeded(), "{outcome:?}");
    assert_eq!(outcome.metrics, metrics(5, 2, 1));
    let entries = ingest_entries(&mock, 2).await;
    assert_eq!(statuses(&entries), [429, 200]);
    assert!(entries[0]
        .fault
        .as_deref()
        .is_some_and(|f| f.contains("status 429 retry-after 1s")));
    assert!(
        gaps(&entries)[0] >= Duration::from_secs(1),
        "{:?}",
        gaps(&entries)
    );
    assert_eq!(offline_ids(&mock), ids(0..5));
}

#[tokio::test]
async fn reference_backs_off_with_seeded_full_jitter_on_503() {
    let mock = mock_with(vec![FaultRule::status(503).times(2)]).await;
    let outcome = ReferenceSink::new().run(&env(&mock), records(5)).await;
    assert!(outcome.succeeded(), "{outcome:?}");
    assert_eq!(outcome.metrics, metrics(5, 3, 2));
    let entries = ingest_entries(&mock, 3).await;
    assert_eq!(statuses(&entries), [503, 503, 200]);
    // The same seed gives the same delays; each gap is that delay plus one round trip.
    let mut rng = SplitMix64::new(SEED);
    let backoff = Backoff::default();
    for (retry, gap) in gaps(&entries).into_iter().enumerate() {
        let delay = backoff.full_jitter(u32::try_from(retry).unwrap(), &mut rng);
        assert!(
            gap >= delay && gap < delay + Duration::from_millis(250),
            "retry {retry}: gap {gap:?}, jittered delay {delay:?}"
        );
    }
    assert_eq!(offline_ids(&mock), ids(0..5));
}

#[tokio::test]
async fn reference_never_retries_a_400_and_says_what_was_not_written() {
    let mock = mock_with(vec![status_rule(
        400,
        None,
        Some("schema mismatch in the first batch"),
    )])
    .await;
    let outcome = ReferenceSink::new().run(&env(&mock), records(25)).await;
    assert_eq!(outcome.exit_code, Some(1));
    assert_eq!(outcome.metrics, metrics(0, 1, 1));
    assert!(
        outcome
            .stderr
            .contains("HTTP 400: RequestValidationError: schema mismatch in the first batch"),
        "{}",
        outcome.stderr
    );
    assert!(
        outcome
            .stderr
            .contains("25 of 25 records were not written (input positions 0-24"),
        "{}",
        outcome.stderr
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(statuses(&ingest_entries(&mock, 1).await), [400]);
}

#[tokio::test]
async fn reference_gives_up_on_record_errors_from_the_mock_itself() {
    let mock = mock().await;
    let mut input = records(15);
    // Outside the 30-day serving TTL of user_last_transaction: a genuine recordErrors 400.
    input[12].insert("timestamp".into(), json!("2023-01-01T00:00:00Z"));
    let outcome = ReferenceSink::new().run(&env(&mock), input).await;
    assert_eq!(outcome.exit_code, Some(1));
    assert_eq!(outcome.metrics, metrics(10, 2, 1));
    assert!(
        outcome
            .stderr
            .contains("gave up on batch 2 of 2 (records 10-14) after 1 attempt")
            && outcome.stderr.contains("TectonObjectValidationError")
            && outcome.stderr.contains("serving TTL"),
        "{}",
        outcome.stderr
    );
    assert_eq!(statuses(&ingest_entries(&mock, 2).await), [200, 400]);
    assert_eq!(offline_ids(&mock), ids(0..10));
}

#[tokio::test]
async fn reference_times_out_a_hung_request_and_retries() {
    let hang = FaultAction::Hang {
        max_ms: Some(5_000),
    };
    let mock = mock_with(vec![FaultRule::new(hang).times(1)]).await;
    let outcome = ReferenceSink::new().run(&env(&mock), records(3)).await;
    assert!(outcome.succeeded(), "{outcome:?}");
    assert_eq!(outcome.metrics, metrics(3, 2, 1));
    assert!(
        outcome.stderr.contains("no response within 0.3 s"),
        "{}",
        outcome.stderr
    );
    let entries = ingest_entries(&mock, 2).await;
    assert_eq!(entries[0].outcome, Outcome::ClientGone);
    assert_eq!(entries[1].status, 200);
    // The retry follows the timeout plus at most the first jittered delay (< 50 ms).
    let gap = gaps(&entries)[0];
    assert!(
        gap >= TIMEOUT && gap < TIMEOUT + Duration::from_millis(300),
        "{gap:?}"
    );
}

#[tokio::test]
async fn reference_stops_after_max_retries_of_a_persistent_503() {
    let mock = mock_with(vec![FaultRule::status(503)]).await;
    let outcome = ReferenceSink::new().run(&env(&mock), records(12)).await;
    assert_eq!(outcome.exit_code, Some(1));
    assert_eq!(outcome.metrics, metrics(0, 4, 4));
    assert!(
        outcome.stderr.contains("after 4 attempts: HTTP 503"),
        "{}",
        outcome.stderr
    );
    assert_eq!(
        ingest_entries(&mock, 4).await.len(),
        4,
        "no request after giving up"
    );
}

#[tokio::test]
async fn reference_retries_a_200_that_is_not_the_success_body() {
    let garbage = FaultAction::Garbage { status: None };
    let mock = mock_with(vec![FaultRule::new(garbage).times(1)]).await;
    let outcome = ReferenceSink::new().run(&env(&mock), records(4)).await;
    assert!(outcome.succeeded(), "{outcome:?}");
    assert_eq!(outcome.metrics, metrics(4, 2, 1));
    assert!(
        outcome.stderr.contains("not Tecton's success response"),
        "{}",
        outcome.stderr
    );
    assert_eq!(offline_ids(&mock), ids(0..4));
}

#[tokio::test]
async fn reference_retries_a_truncated_response_which_may_duplicate() {
    let mock = mock_with(vec![FaultRule::new(FaultAction::Truncate).times(1)]).await;
    let outcome = ReferenceSink::new().run(&env(&mock), records(2)).await;
    assert!(outcome.succeeded(), "{outcome:?}");
    assert_eq!(outcome.metrics, metrics(2, 2, 1));
    // The first write landed before the cut: a duplicate an indefinite failure excuses.
    assert_eq!(offline_ids(&mock), ["t0", "t1", "t0", "t1"]);
}

#[tokio::test]
async fn reference_retries_a_connection_reset() {
    let mock = mock_with(vec![FaultRule::new(FaultAction::ResetBeforeBody).times(2)]).await;
    let outcome = ReferenceSink::new().run(&env(&mock), records(2)).await;
    assert!(outcome.succeeded(), "{outcome:?}");
    assert_eq!(outcome.metrics, metrics(2, 3, 2));
    assert!(
        outcome.stderr.contains("connection failed"),
        "{}",
        outcome.stderr
    );
    assert_eq!(offline_ids(&mock), ids(0..2));
}

#[tokio::test]
async fn reference_with_no_records_sends_nothing_and_succeeds() {
    let mock = mock().await;
    let outcome = ReferenceSink::new().run(&env(&mock), Vec::new()).await;
    assert!(outcome.succeeded());
    assert_eq!(outcome.metrics, metrics(0, 0, 0));
    assert!(mock.journal().is_empty());
}

#[tokio::test]
async fn reference_reports_an_unreachable_tecton() {
    let mock = mock().await;
    let mut env = env(&mock);
    mock.shutdown().await;
    env.max_retries = 1;
    let outcome = ReferenceSink::new().run(&env, records(1)).await;
    assert_eq!(outcome.exit_code, Some(1));
    assert_eq!(outcome.metrics, metrics(0, 2, 2));
    assert!(
        outcome.stderr.contains("connection failed"),
        "{}",
        outcome.stderr
    );
}

// ---- the command driver ----------------------------------------------------------------

#[tokio::test]
async fn command_runs_the_reference_sink_binary() {
    let sink = CommandSink::new(REFERENCE_BIN).wall_limit(Duration::from_secs(20));
    let outcome = assert_delivers_25_in_three_ordered_batches(&sink).await;
    assert_eq!(outcome.exit_code, Some(0));
    assert!(!outcome.timed_out);
    assert_eq!(outcome.metrics, metrics(25, 3, 0), "metrics line parsed");
}

#[tokio::test]
async fn command_reference_binary_gives_up_with_exit_1_and_its_reason() {
    let mock = mock_with(vec![status_rule(403, None, Some("no writes for you"))]).await;
    let sink = CommandSink::new(REFERENCE_BIN).wall_limit(Duration::from_secs(20));
    let outcome = sink.run(&env(&mock), records(3)).await;
    assert_eq!(outcome.exit_code, Some(1));
    assert_eq!(outcome.metrics, metrics(0, 1, 1));
    assert!(outcome.stderr.contains("HTTP 403"), "{}", outcome.stderr);
    assert!(
        outcome.stderr.contains("no writes for you"),
        "{}",
        outcome.stderr
    );
}

#[tokio::test]
async fn command_reference_binary_runs_a_mutant() {
    let mock = mock().await;
    let sink = CommandSink::new(format!("{REFERENCE_BIN} --mutant no-batching"));
    let outcome = sink.run(&env(&mock), records(5)).await;
    assert!(outcome.succeeded(), "{outcome:?}");
    assert_eq!(
        batch_sizes(&ingest_entries(&mock, 5).await),
        [1, 1, 1, 1, 1]
    );
}

#[tokio::test]
async fn command_passes_the_protocol_environment_stdin_and_input_file() {
    let mock = mock().await;
    let script = r#"
        echo "url=$TECTON_URL key=$TECTON_API_KEY ws=$TECTON_WORKSPACE src=$TECTON_PUSH_SOURCE" >&2
        echo "batch=$SINK_BATCH_SIZE retries=$SINK_MAX_RETRIES timeout=$SINK_TIMEOUT_S seed=$SINK_SEED" >&2
        echo "file=$(wc -l < "$SINK_INPUT") stdin=$(wc -l)" >&2
        echo "path=$SINK_INPUT" >&2
        echo 'not metrics'
        echo '{"records_written":7,"write_requests":2,"write_errors":1}'
        echo 'trailing noise'
    "#;
    let outcome = CommandSink::new(script).run(&env(&mock), records(7)).await;
    assert_eq!(outcome.exit_code, Some(0), "{outcome:?}");
    let expected = format!(
        "url={} key=demo-editor-key ws=prod src=transactions\nbatch=10 retries=3 timeout=0.3 seed=7\nfile=7 stdin=7\n",
        mock.url()
    );
    assert!(outcome.stderr.starts_with(&expected), "{}", outcome.stderr);
    assert_eq!(outcome.metrics, metrics(7, 2, 1));
    let path = outcome
        .stderr
        .lines()
        .nth(3)
        .unwrap()
        .trim_start_matches("path=");
    assert!(
        !std::path::Path::new(path).exists(),
        "input file {path} removed"
    );
}

#[tokio::test]
async fn command_is_killed_at_the_wall_limit_with_its_whole_process_group() {
    let mock = mock().await;
    // A background child keeps the pipes open: killing only the shell would hang the reader.
    let sink = CommandSink::new("sleep 30 & sleep 30").wall_limit(Duration::from_secs(1));
    let outcome = sink.run(&env(&mock), records(1)).await;
    assert!(outcome.timed_out, "{outcome:?}");
    assert_eq!(outcome.exit_code, None);
    assert!(!outcome.succeeded());
    assert!(outcome.elapsed >= Duration::from_secs(1));
    assert!(
        outcome.elapsed < Duration::from_secs(5),
        "{:?}",
        outcome.elapsed
    );
    assert!(
        outcome.stderr.contains("wall-clock limit"),
        "{}",
        outcome.stderr
    );
    assert!(!command::is_harness_error(&outcome));
}

#[tokio::test]
async fn command_sleep_30_is_killed_at_one_second() {
    let mock = mock().await;
    let sink = CommandSink::new("sleep 30").wall_limit(Duration::from_secs(1));
    let outcome = sink.run(&env(&mock), records(1)).await;
    assert!(
        outcome.timed_out && outcome.exit_code.is_none(),
        "{outcome:?}"
    );
    assert!(
        outcome.elapsed < Duration::from_secs(5),
        "{:?}",
        outcome.elapsed
    );
}

#[tokio::test]
async fn command_abandoned_mid_run_takes_its_process_group_with_it() {
    let mock = mock().await;
    let pid_file = std::env::temp_dir().join(format!("sinks-test-{}.pid", std::process::id()));
    let sink = CommandSink::new(format!(
        "sleep 30 & echo $! > '{}'; wait",
        pid_file.display()
    ));
    let env = env(&mock);
    let run = sink.run(&env, records(1));
    assert!(tokio::time::timeout(Duration::from_millis(500), run)
        .await
        .is_err());
    let pid = std::fs::read_to_string(&pid_file).unwrap();
    let _ = std::fs::remove_file(&pid_file);
    // Gone, or a zombie waiting for its reaper: either way no longer running. SIGKILL takes
    // effect asynchronously, so look for a moment.
    let stat_path = format!("/proc/{}/stat", pid.trim());
    let mut stat = String::new();
    for _ in 0..100 {
        stat = std::fs::read_to_string(&stat_path).unwrap_or_default();
        let state = stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .split_whitespace()
            .next();
        if matches!(state, None | Some("Z" | "X")) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("background sleep still running: {stat}");
}

#[tokio::test]
async fn command_exit_code_is_reported() {
    let mock = mock().await;
    let outcome = CommandSink::new("echo 'giving up: reasons' >&2; exit 3")
        .run(&env(&mock), records(1))
        .await;
    assert_eq!(outcome.exit_code, Some(3));
    assert!(!outcome.timed_out);
    assert_eq!(outcome.metrics, None);
    assert_eq!(outcome.stderr, "giving up: reasons\n");
}

#[tokio::test]
async fn command_that_does_not_exist_is_reported_clearly() {
    let mock = mock().await;
    let outcome = CommandSink::new("no-such-sink-command-xyz --flag")
        .run(&env(&mock), records(1))
        .await;
    assert_eq!(outcome.exit_code, Some(127));
    assert!(
        outcome.stderr.contains("not found")
            && outcome.stderr.contains("[harness] exit status 127"),
        "{}",
        outcome.stderr
    );
    assert!(
        !command::is_harness_error(&outcome),
        "the shell itself started"
    );
}

#[tokio::test]
async fn command_that_cannot_start_is_a_harness_error() {
    let mock = mock().await;
    let sink = CommandSink::new("true").current_dir("/nonexistent/dir/for/the/sink");
    let outcome = sink.run(&env(&mock), records(1)).await;
    assert!(command::is_harness_error(&outcome), "{outcome:?}");
    assert!(outcome.stderr.starts_with(command::START_FAILURE));
    assert!(sink.try_run(&env(&mock), records(1)).await.is_err());
}

#[tokio::test]
async fn command_with_big_stdin_and_big_output_does_not_deadlock() {
    let mock = mock().await;
    // Writes 4 MB before reading 3000 records of stdin: both pipes fill up at once.
    let script = "head -c 4000000 /dev/zero | tr '\\0' 'x'; echo; wc -l >&2; \
                  echo '{\"records_written\":1,\"write_requests\":1,\"write_errors\":0}'";
    let sink = CommandSink::new(script).wall_limit(Duration::from_secs(20));
    let outcome = sink.run(&env(&mock), records(3000)).await;
    assert_eq!(outcome.exit_code, Some(0), "{}", outcome.stderr);
    assert_eq!(outcome.stderr.trim(), "3000");
    assert_eq!(
        outcome.metrics,
        metrics(1, 1, 0),
        "the tail of stdout is kept"
    );
}

// ---- the Python example ----------------------------------------------------------------

fn python_sink() -> Option<CommandSink> {
    let found = std::process::Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        println!("python3 not found: skipping the Python example sink test");
        return None;
    }
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/python-sink/sink.py"
    );
    Some(CommandSink::new(format!("python3 '{script}'")).wall_limit(Duration::from_secs(30)))
}

#[tokio::test]
async fn python_example_behaves_like_the_reference() {
    let Some(sink) = python_sink() else { return };
    let outcome = assert_delivers_25_in_three_ordered_batches(&sink).await;
    assert_eq!(outcome.metrics, metrics(25, 3, 0));

    // Retries a 503 and a hang (per-request timeout), honours Retry-After.
    let hang = FaultAction::Hang {
        max_ms: Some(5_000),
    };
    let mock = mock_with(vec![FaultRule::script([
        (
            FaultAction::Status {
                status: 503,
                retry_after_s: Some(1),
                message: None,
            },
            Some(1),
        ),
        (hang, Some(1)),
    ])])
    .await;
    let outcome = sink.run(&env(&mock), records(3)).await;
    assert!(outcome.succeeded(), "{outcome:?}");
    assert_eq!(outcome.metrics, metrics(3, 3, 2));
    let entries = ingest_entries(&mock, 3).await;
    let gaps = gaps(&entries);
    assert!(
        gaps[0] >= Duration::from_secs(1),
        "Retry-After honoured: {gaps:?}"
    );
    assert!(
        gaps[1] >= TIMEOUT && gaps[1] < TIMEOUT + Duration::from_millis(400),
        "{gaps:?}"
    );
    assert_eq!(offline_ids(&mock), ids(0..3));

    // Never retries a definite failure; exit 1 naming Tecton's message.
    let mock = mock_with(vec![status_rule(401, None, Some("bad key here"))]).await;
    let outcome = sink.run(&env(&mock), records(3)).await;
    assert_eq!(outcome.exit_code, Some(1));
    assert_eq!(outcome.metrics, metrics(0, 1, 1));
    assert!(
        outcome.stderr.contains("HTTP 401") && outcome.stderr.contains("bad key here"),
        "{}",
        outcome.stderr
    );
}

// ---- mutants: each defect, as the journal shows it -------------------------------------

/// Runs a mutant with the test environment (UnboundedRetries with a short backoff, so that its
/// 50 attempts stay fast).
async fn run_mutant(mutant: Mutant, env: SinkEnv, n: usize) -> SinkOutcome {
    let backoff = if mutant == Mutant::UnboundedRetries {
        quick()
    } else {
        Backoff::default()
    };
    MutantSink::new(mutant)
        .with_backoff(backoff)
        .run(&env, records(n))
        .await
}

#[tokio::test]
async fn mutant_no_batching_sends_one_record_per_request() {
    let mock = mock().await;
    let outcome = run_mutant(Mutant::NoBatching, env(&mock), 25).await;
    assert!(outcome.succeeded());
    assert_eq!(batch_sizes(&ingest_entries(&mock, 25).await), vec![1; 25]);
}

#[tokio::test]
async fn mutant_oversize_batches_sends_25_and_is_refused() {
    let mock = mock().await;
    let outcome = run_mutant(Mutant::OversizeBatches, env(&mock), 25).await;
    assert_eq!(outcome.exit_code, Some(1));
    let entries = ingest_entries(&mock, 1).await;
    assert_eq!(batch_sizes(&entries), [25]);
    assert_eq!(statuses(&entries), [400]);
    assert!(
        outcome.stderr.contains("Too many records"),
        "{}",
        outcome.stderr
    );
}

#[tokio::test]
async fn mutant_no_retry_gives_up_on_the_first_503() {
    let mock = mock_with(vec![FaultRule::status(503).times(1)]).await;
    let outcome = run_mutant(Mutant::NoRetry, env(&mock), 5).await;
    assert_eq!(outcome.exit_code, Some(1));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(statuses(&ingest_entries(&mock, 1).await), [503]);
}

#[tokio::test]
async fn mutant_retries_definite_4xx_resends_after_a_400() {
    let mock = mock_with(vec![FaultRule::status(400).times(1)]).await;
    let outcome = run_mutant(Mutant::RetriesDefinite4xx, env(&mock), 5).await;
    assert!(outcome.succeeded(), "{outcome:?}");
    assert_eq!(statuses(&ingest_entries(&mock, 2).await), [400, 200]);
}

#[tokio::test]
async fn mutant_unbounded_retries_makes_50_attempts() {
    let mock = mock_with(vec![FaultRule::status(503)]).await;
    let outcome = run_mutant(Mutant::UnboundedRetries, env(&mock), 5).await;
    assert_eq!(outcome.exit_code, Some(1));
    assert_eq!(
        ingest_entries(&mock, 50).await.len(),
        50,
        "max_retries is 3"
    );
}

#[tokio::test]
async fn mutant_no_backoff_retries_at_once() {
    let mock = mock_with(vec![FaultRule::status(503).times(3)]).await;
    let outcome = run_mutant(Mutant::NoBackoff, env(&mock), 5).await;
    assert!(outcome.succeeded());
    let gaps = gaps(&ingest_entries(&mock, 4).await);
    assert!(
        gaps.iter().all(|g| *g < Duration::from_millis(25)),
        "{gaps:?}"
    );
}

#[tokio::test]
async fn mutant_no_jitter_waits_exactly_base_times_two_to_the_attempt() {
    let mock = mock_with(vec![FaultRule::status(503).times(3)]).await;
    let outcome = run_mutant(Mutant::NoJitter, env(&mock), 5).await;
    assert!(outcome.succeeded());
    let gaps = gaps(&ingest_entries(&mock, 4).await);
    for (gap, ms) in gaps.iter().zip([50, 100, 200]) {
        let exact = Duration::from_millis(ms);
        assert!(
            *gap >= exact && *gap < exact + Duration::from_millis(60),
            "{gaps:?}"
        );
    }
}

#[tokio::test]
async fn mutant_ignores_retry_after_comes_back_early() {
    let mock = mock_with(vec![status_rule(429, Some(1), None).times(1)]).await;
    let outcome = run_mutant(Mutant::IgnoresRetryAfter, env(&mock), 5).await;
    assert!(outcome.succeeded());
    let gaps = gaps(&ingest_entries(&mock, 2).await);
    assert!(gaps[0] < Duration::from_millis(500), "{gaps:?}");
}

#[tokio::test]
async fn mutant_no_timeout_waits_out_a_hang() {
    let hang = FaultAction::Hang {
        max_ms: Some(1_200),
    };
    let mock = mock_with(vec![FaultRule::new(hang).times(1)]).await;
    let outcome = run_mutant(Mutant::NoTimeout, env(&mock), 3).await;
    assert!(outcome.succeeded(), "{outcome:?}");
    let entries = ingest_entries(&mock, 2).await;
    assert_eq!(
        entries[0].outcome,
        Outcome::Abandoned,
        "the server gave up, not the sink"
    );
    assert!(gaps(&entries)[0] >= Duration::from_millis(1_200));
}

#[tokio::test]
async fn mutant_reorders_sends_batches_last_first() {
    let mock = mock().await;
    let outcome = run_mutant(Mutant::Reorders, env(&mock), 25).await;
    assert!(outcome.succeeded());
    let sent: Vec<String> = ingest_entries(&mock, 3)
        .await
        .iter()
        .flat_map(ids_in)
        .collect();
    let expected: Vec<String> = [ids(20..25), ids(10..20), ids(0..10)].concat();
    assert_eq!(sent, expected);
}

#[tokio::test]
async fn mutant_lies_about_success_exits_0_after_giving_up() {
    let mock = mock_with(vec![FaultRule::status(400)]).await;
    let outcome = run_mutant(Mutant::LiesAboutSuccess, env(&mock), 5).await;
    assert_eq!(outcome.exit_code, Some(0));
    assert_eq!(outcome.metrics, metrics(0, 1, 1));
    assert!(offline_ids(&mock).is_empty());
}

#[tokio::test]
async fn mutant_duplicates_after_success_resends_every_third_batch() {
    let mock = mock().await;
    let outcome = run_mutant(Mutant::DuplicatesAfterSuccess, env(&mock), 30).await;
    assert!(outcome.succeeded());
    let entries = ingest_entries(&mock, 4).await;
    assert_eq!(statuses(&entries), [200; 4]);
    assert_eq!(entries[2].request_body, entries[3].request_body);
    assert_eq!(offline_ids(&mock).len(), 40);
}

#[tokio::test]
async fn mutant_wrong_auth_scheme_gets_401() {
    let mock = mock().await;
    let outcome = run_mutant(Mutant::WrongAuthScheme, env(&mock), 5).await;
    assert_eq!(outcome.exit_code, Some(1));
    assert_eq!(statuses(&ingest_entries(&mock, 1).await), [401]);
}

#[tokio::test]
async fn mutant_camel_case_body_gets_400() {
    let mock = mock().await;
    let outcome = run_mutant(Mutant::CamelCaseBody, env(&mock), 5).await;
    assert_eq!(outcome.exit_code, Some(1));
    let entries = ingest_entries(&mock, 1).await;
    assert_eq!(statuses(&entries), [400]);
    let body: Json = serde_json::from_slice(&entries[0].request_body).unwrap();
    assert!(body.get("workspaceName").is_some() && body.get("dryRun").is_some());
    assert!(
        outcome.stderr.contains("workspace_name"),
        "{}",
        outcome.stderr
    );
}

#[tokio::test]
async fn mutant_drops_last_batch_exits_0_with_records_missing() {
    let mock = mock().await;
    let outcome = run_mutant(Mutant::DropsLastBatch, env(&mock), 25).await;
    assert_eq!(outcome.exit_code, Some(0));
    assert_eq!(batch_sizes(&ingest_entries(&mock, 2).await), [10, 10]);
    assert_eq!(offline_ids(&mock), ids(0..20));
}

// ---- attach mode -----------------------------------------------------------------------

#[tokio::test]
async fn attached_sink_waits_for_records_pushed_by_another_task() {
    let mock = mock().await;
    let env = env(&mock);
    let pusher = {
        let env = env.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(150)).await;
            ReferenceSink::new().run(&env, records(12)).await
        })
    };
    let attached = AttachedSink::new(mock.state().clone(), Completion::Records(12))
        .timeout(Duration::from_secs(5));
    let outcome = attached.run(&env, Vec::new()).await;
    assert_eq!(outcome.exit_code, Some(0), "{outcome:?}");
    assert!(outcome.elapsed >= Duration::from_millis(150));
    assert!(pusher.await.unwrap().succeeded());

    let quiet = AttachedSink::new(
        mock.state().clone(),
        Completion::Quiet(Duration::from_millis(200)),
    )
    .run(&env, Vec::new())
    .await;
    assert_eq!(quiet.exit_code, Some(0));

    let more = AttachedSink::new(mock.state().clone(), Completion::Records(13))
        .timeout(Duration::from_millis(300))
        .run(&env, Vec::new())
        .await;
    assert!(more.timed_out && more.exit_code.is_none(), "{more:?}");
    assert!(more.stderr.contains("12 of 13 records"), "{}", more.stderr);
}

#[tokio::test]
async fn attached_sink_times_out_when_nothing_arrives() {
    let mock = mock().await;
    let outcome = AttachedSink::new(
        mock.state().clone(),
        Completion::Quiet(Duration::from_millis(50)),
    )
    .timeout(Duration::from_millis(200))
    .run(&env(&mock), Vec::new())
    .await;
    assert!(outcome.timed_out, "{outcome:?}");
    assert!(
        outcome.stderr.contains("no request reached the mock"),
        "{}",
        outcome.stderr
    );
}
