//! The checks on handmade journals: each defect is named with its evidence, and what the
//! definite/indefinite rule allows passes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use conformance::checks::{
    judge, CheckId, CheckParams, Observation, ObservationParts, Verdict, WrittenRow,
};
use conformance::checks::{CheckSpec, ExpectedOutcome};
use conformance::sink::{Record, SinkEnv, SinkOutcome};
use mock_tecton::faults::FaultAction;
use mock_tecton::journal::{Entry, Outcome};

const OK: &str = r#"{"workspaceName":"prod","ingestMetrics":{"featureViewIngestMetrics":[]}}"#;
const MS: i64 = 1_000_000;

fn record(i: usize, user: &str) -> Record {
    serde_json::json!({
        "user_id": user, "transaction_id": format!("t{i}"), "merchant": "m",
        "amt": 1.5, "is_fraud": 0, "timestamp": "2024-05-20T00:00:00Z"
    })
    .as_object()
    .cloned()
    .unwrap()
}

fn body(records: &[Record]) -> String {
    let wrapped: Vec<_> = records
        .iter()
        .map(|r| serde_json::json!({ "record": r }))
        .collect();
    serde_json::json!({"workspace_name": "prod", "dry_run": false, "records": {"transactions": wrapped}})
        .to_string()
}

/// The structured action the mock journals beside each fault label used in these tests.
fn action_of(label: &str) -> FaultAction {
    match label.rsplit_once(": ").map_or(label, |(_, a)| a) {
        "status 429 retry-after 1s" => FaultAction::Status {
            status: 429,
            retry_after_s: Some(1),
            message: None,
        },
        "status 503" => FaultAction::Status {
            status: 503,
            retry_after_s: None,
            message: None,
        },
        "hang" => FaultAction::Hang { max_ms: None },
        "reset_after_body (written)" => FaultAction::ResetAfterBody { process: true },
        other => panic!("no action for the test label `{other}`"),
    }
}

/// A journal being written: exchanges at given times.
struct Journal {
    input: Vec<Record>,
    entries: Vec<Entry>,
    written: Vec<WrittenRow>,
}

impl Journal {
    fn new(input: Vec<Record>) -> Self {
        Journal {
            input,
            entries: Vec::new(),
            written: Vec::new(),
        }
    }

    /// An exchange at `at_ms` carrying input records `ids`, answered `status` after `dur_ms`.
    fn send(
        &mut self,
        at_ms: i64,
        ids: &[usize],
        status: u16,
        outcome: Outcome,
        fault: Option<&str>,
        dur_ms: u64,
    ) -> &mut Self {
        let records: Vec<Record> = ids.iter().map(|&i| self.input[i].clone()).collect();
        let seq = self.entries.len() as u64;
        let response = match status {
            200 => OK.to_owned(),
            0 => String::new(),
            s => format!(r#"{{"requestError":{{"errorMessage":"status {s}","errorType":"X"}}}}"#),
        };
        self.entries.push(Entry {
            seq,
            received_at: 1_700_000_000_000 * MS + at_ms * MS,
            method: "POST".into(),
            path: "/ingest".into(),
            key_id: Some("demo-editor".into()),
            request_body: body(&records).into_bytes().into(),
            status,
            response_body: response.into_bytes().into(),
            duration_us: dur_ms * 1000,
            outcome,
            fault: fault.map(str::to_owned),
            fault_action: fault.map(action_of),
            ..Entry::default()
        });
        let writes = (status == 200 && outcome == Outcome::Responded)
            || matches!(outcome, Outcome::Reset | Outcome::Truncated);
        if writes {
            for r in &records {
                self.written.push(WrittenRow {
                    seq: self.written.len() as u64,
                    request: seq,
                    id: r["transaction_id"].as_str().unwrap().to_owned(),
                    key: r["user_id"].as_str().unwrap().to_owned(),
                });
            }
        }
        self
    }

    /// A 200 whose body is garbage (bytes that are not JSON, with control characters):
    /// nothing written.
    fn garbage(&mut self, at_ms: i64, ids: &[usize]) -> &mut Self {
        self.send(at_ms, ids, 200, Outcome::Responded, None, 1);
        let last = self.entries.last_mut().unwrap();
        last.response_body = b"\x1b[2J\x00\xff garbage".to_vec().into();
        let seq = last.seq;
        self.written.retain(|w| w.request != seq);
        self
    }

    fn ok(&mut self, at_ms: i64, ids: &[usize]) -> &mut Self {
        self.send(at_ms, ids, 200, Outcome::Responded, None, 1)
    }

    fn observe(&self, exit: i32, stderr: &str) -> Observation {
        Observation::new(ObservationParts {
            scenario: "handmade".into(),
            seed: 1,
            env: SinkEnv {
                url: "http://127.0.0.1:1".into(),
                api_key: "demo-editor-key".into(),
                workspace: "prod".into(),
                push_source: "transactions".into(),
                batch_size: 10,
                max_retries: 3,
                timeout: Duration::from_millis(300),
                input_path: None,
                seed: 1,
            },
            expected: if exit == 0 {
                ExpectedOutcome::Success
            } else {
                ExpectedOutcome::GiveUp
            },
            key_account: Some("demo-editor".into()),
            records_per_source: 10,
            id_field: "transaction_id".into(),
            key_field: "user_id".into(),
            input: self.input.clone(),
            journal: self.entries.clone(),
            written: Some(self.written.clone()),
            outcome: SinkOutcome {
                exit_code: Some(exit),
                stderr: stderr.into(),
                ..SinkOutcome::default()
            },
            journal_dropped: 0,
        })
    }
}

fn check(id: CheckId, obs: &Observation) -> (Verdict, String) {
    let r = judge(
        &CheckSpec {
            id,
            params: CheckParams::default(),
        },
        obs,
    );
    (
        r.verdict,
        format!(
            "{}\n{}",
            r.explanation,
            r.evidence
                .iter()
                .map(|e| e.text.as_str())
                .collect::<Vec<_>>()
                .join("\n")
        ),
    )
}

fn input(n: usize) -> Vec<Record> {
    (0..n)
        .map(|i| record(i, if i % 2 == 0 { "a" } else { "b" }))
        .collect()
}

#[test]
fn a_duplicate_after_a_reset_is_allowed_but_not_after_a_200() {
    let mut j = Journal::new(input(2));
    j.send(
        0,
        &[0, 1],
        200,
        Outcome::Reset,
        Some("lost: reset_after_body (written)"),
        1,
    )
    .ok(60, &[0, 1]);
    assert_eq!(
        check(CheckId::Duplicates, &j.observe(0, "")).0,
        Verdict::Pass
    );

    let mut j = Journal::new(input(2));
    j.ok(0, &[0, 1]).ok(60, &[0, 1]);
    let (v, text) = check(CheckId::Duplicates, &j.observe(0, ""));
    assert_eq!(v, Verdict::Fail);
    assert!(
        text.contains("t0: written by seq 0, which was answered 200"),
        "{text}"
    );
}

#[test]
fn success_claimed_with_records_missing_fails_completeness() {
    let mut j = Journal::new(input(3));
    j.ok(0, &[0, 1]);
    let (v, text) = check(CheckId::Completeness, &j.observe(0, ""));
    assert_eq!(v, Verdict::Fail);
    assert!(text.contains("t2 was never sent"), "{text}");

    let (v, _) = check(CheckId::Completeness, &j.observe(1, ""));
    assert_eq!(v, Verdict::Fail, "giving up silently is a defect");
    let (v, _) = check(CheckId::Completeness, &j.observe(1, "gave up on t2: 503"));
    assert_eq!(v, Verdict::Pass);
}

#[test]
fn a_retry_before_retry_after_fails() {
    let mut j = Journal::new(input(1));
    j.send(
        0,
        &[0],
        429,
        Outcome::Responded,
        Some("t: status 429 retry-after 1s"),
        1,
    )
    .ok(300, &[0]);
    let (v, text) = check(CheckId::RetryAfter, &j.observe(0, ""));
    assert_eq!(v, Verdict::Fail);
    assert!(text.contains("came back in seq 1 after 299.0 ms"), "{text}");

    let mut j = Journal::new(input(1));
    j.send(
        0,
        &[0],
        429,
        Outcome::Responded,
        Some("t: status 429 retry-after 1s"),
        1,
    )
    .ok(1001, &[0]);
    assert_eq!(
        check(CheckId::RetryAfter, &j.observe(0, "")).0,
        Verdict::Pass
    );
}

/// Twelve batches, each failing once with 503 and retried after `gap(i)` ms.
fn retried_once(gap: impl Fn(usize) -> i64) -> Observation {
    let mut j = Journal::new(input(12));
    let mut t = 0;
    for i in 0..12 {
        j.send(t, &[i], 503, Outcome::Responded, Some("x: status 503"), 0);
        t += gap(i);
        j.ok(t, &[i]);
        t += 5;
    }
    j.observe(0, "")
}

#[test]
fn deterministic_delays_fail_jitter_and_immediate_ones_fail_backoff() {
    let (v, text) = check(CheckId::Jitter, &retried_once(|_| 50));
    assert_eq!(v, Verdict::Fail, "{text}");
    assert!(
        text.contains("12 waits before retry 1: median 50.0 ms"),
        "{text}"
    );
    let (v, text) = check(
        CheckId::Jitter,
        &retried_once(|i| 10 + (i as i64 * 37) % 41),
    );
    assert_eq!(v, Verdict::Pass, "{text}");

    let (v, text) = check(CheckId::Backoff, &retried_once(|_| 0));
    assert_eq!(v, Verdict::Fail, "{text}");
    assert!(text.contains("retries immediately"), "{text}");
    assert_eq!(
        check(CheckId::Jitter, &retried_once(|_| 0)).0,
        Verdict::Pass,
        "see backoff"
    );
}

#[test]
fn a_fixed_delay_fails_growth() {
    // Four batches, each failing four times, retried after `delay(k)` ms before retry k.
    let build = |delay: fn(u32) -> i64| {
        let mut j = Journal::new(input(4));
        let mut t = 0;
        for i in 0..4 {
            for k in 0..4 {
                j.send(t, &[i], 503, Outcome::Responded, Some("x: status 503"), 0);
                t += delay(k) + i as i64;
            }
            j.ok(t, &[i]);
            t += 1;
        }
        j.observe(0, "")
    };
    let (v, text) = check(CheckId::Backoff, &build(|_| 40));
    assert_eq!(v, Verdict::Fail, "{text}");
    assert!(text.contains("does not grow"), "{text}");
    let (v, text) = check(CheckId::Backoff, &build(|k| 20 << k));
    assert_eq!(v, Verdict::Pass, "{text}");
}

#[test]
fn a_hang_the_client_never_gives_up_on_fails_timeout() {
    let mut j = Journal::new(input(1));
    j.send(0, &[0], 0, Outcome::Abandoned, Some("s: hang"), 2500)
        .ok(2600, &[0]);
    let (v, text) = check(CheckId::Timeout, &j.observe(0, ""));
    assert_eq!(v, Verdict::Fail);
    assert!(text.contains("the client never gave up"), "{text}");

    let mut j = Journal::new(input(1));
    j.send(0, &[0], 0, Outcome::ClientGone, Some("s: hang"), 310)
        .ok(400, &[0]);
    assert_eq!(check(CheckId::Timeout, &j.observe(0, "")).0, Verdict::Pass);
}

#[test]
fn later_records_of_a_key_overtaking_earlier_ones_fail_key_order() {
    let mut j = Journal::new(input(4));
    j.ok(0, &[2, 3]).ok(5, &[0, 1]);
    let (v, text) = check(CheckId::KeyOrder, &j.observe(0, ""));
    assert_eq!(v, Verdict::Fail);
    assert!(
        text.contains("key a: t0 (input #0) was first written by seq 1, after t2 (input #2)"),
        "{text}"
    );
}

#[test]
fn retried_definite_errors_and_unretried_transient_ones_fail() {
    let mut j = Journal::new(input(2));
    j.send(0, &[0, 1], 404, Outcome::Responded, None, 1).send(
        50,
        &[0, 1],
        404,
        Outcome::Responded,
        None,
        1,
    );
    let (v, text) = check(CheckId::NoRetryDefinite, &j.observe(1, "gave up"));
    assert_eq!(v, Verdict::Fail);
    assert!(text.contains("seq 1 re-sent the same records"), "{text}");

    let mut j = Journal::new(input(2));
    j.send(
        0,
        &[0, 1],
        503,
        Outcome::Responded,
        Some("x: status 503"),
        1,
    );
    let (v, text) = check(CheckId::RetryRetryable, &j.observe(1, "gave up"));
    assert_eq!(v, Verdict::Fail);
    assert!(
        text.contains("never sent again after 1 of 4 allowed attempt(s)"),
        "{text}"
    );

    // Four attempts spend the budget of 1 + 3 retries: giving up then is right.
    let mut j = Journal::new(input(1));
    for k in 0..4 {
        j.send(
            k * 100,
            &[0],
            503,
            Outcome::Responded,
            Some("x: status 503"),
            1,
        );
    }
    assert_eq!(
        check(CheckId::RetryRetryable, &j.observe(1, "gave up")).0,
        Verdict::Pass
    );
    assert_eq!(
        check(CheckId::RetryBound, &j.observe(1, "gave up")).0,
        Verdict::Pass
    );
    j.send(500, &[0], 503, Outcome::Responded, Some("x: status 503"), 1);
    let (v, text) = check(CheckId::RetryBound, &j.observe(1, "gave up"));
    assert_eq!(v, Verdict::Fail);
    assert!(
        text.contains("t0: 5 attempts (seq 0, 1, 2, 3, 4)"),
        "{text}"
    );
}

#[test]
fn changed_or_unwrapped_records_fail_request_shape() {
    let mut j = Journal::new(input(1));
    j.ok(0, &[0]);
    let mut obs = j.observe(0, "");
    assert_eq!(check(CheckId::RequestShape, &obs).0, Verdict::Pass);
    obs.input[0]
        .record
        .insert("amt".into(), serde_json::json!(2.5));
    let (v, text) = check(CheckId::RequestShape, &obs);
    assert_eq!(v, Verdict::Fail);
    assert!(
        text.contains("record t0 was changed: field `amt`: 2.5 became 1.5"),
        "{text}"
    );
}

#[test]
fn check_ids_round_trip_and_are_unique() {
    for id in CheckId::ALL {
        assert_eq!(id.as_str().parse::<CheckId>(), Ok(id));
        assert!(!id.title().is_empty());
    }
}

/// No sink can make the mock lose an acknowledged record, so no mutant trips `no_lost_ack`;
/// this journal, where a 200-answered record never reached the offline store, shows it fails.
#[test]
fn an_acknowledged_record_missing_from_the_store_fails_no_lost_ack() {
    let mut j = Journal::new(input(3));
    j.ok(0, &[0, 1, 2]);
    let (v, _) = check(CheckId::NoLostAck, &j.observe(0, ""));
    assert_eq!(v, Verdict::Pass);
    j.written.retain(|w| w.id != "t1");
    let (v, text) = check(CheckId::NoLostAck, &j.observe(0, ""));
    assert_eq!(v, Verdict::Fail);
    assert!(
        text.contains("t1"),
        "the evidence names the lost record: {text}"
    );
}

#[test]
fn trusting_an_unreadable_200_warns_and_retrying_it_passes() {
    let input: Vec<Record> = (0..4).map(|i| record(i, "u1")).collect();

    // Trusted: the sink took the garbage 200 for an acknowledgement and exited 0.
    let mut j = Journal::new(input.clone());
    j.garbage(0, &[0, 1]).ok(10, &[2, 3]);
    let obs = j.observe(0, "");
    let (verdict, text) = check(CheckId::AckBody, &obs);
    assert_eq!(verdict, Verdict::Warn, "{text}");
    assert!(
        text.contains("2 of those 2 records were never written"),
        "{text}"
    );
    assert!(text.contains("seq 0"), "{text}");
    // The other checks leave the judgement to ack_body instead of calling the records lost.
    assert_eq!(check(CheckId::Completeness, &obs).0, Verdict::Pass);
    assert_eq!(check(CheckId::RetryRetryable, &obs).0, Verdict::Pass);

    // Retried: right, and the records landed on the second attempt.
    let mut j = Journal::new(input.clone());
    j.garbage(0, &[0, 1]).ok(60, &[0, 1]).ok(70, &[2, 3]);
    let obs = j.observe(0, "");
    assert_eq!(check(CheckId::AckBody, &obs).0, Verdict::Pass);
    assert_eq!(check(CheckId::Completeness, &obs).0, Verdict::Pass);
    assert_eq!(check(CheckId::Duplicates, &obs).0, Verdict::Pass);

    // Gave up at once and said so: not trust, but a retryable answer that was not retried.
    let mut j = Journal::new(input);
    j.garbage(0, &[0, 1]);
    let obs = j.observe(
        1,
        "gave up on batch 1: HTTP 200 with a body that is not Tecton's",
    );
    assert_eq!(check(CheckId::AckBody, &obs).0, Verdict::Pass);
    assert_eq!(check(CheckId::RetryRetryable, &obs).0, Verdict::Fail);
}

#[test]
fn resets_before_the_body_count_toward_the_budget_of_the_records_sent_next() {
    // The mock resets before reading the body, so those attempts carry no ids.
    let reset = |j: &mut Journal, at: i64| {
        j.send(at, &[], 0, Outcome::Reset, None, 1);
        j.entries.last_mut().unwrap().request_body = Vec::new().into();
    };
    // One reset, then three 503s of records 0-1: four attempts, all of 1 + max_retries (3).
    let mut j = Journal::new(input(2));
    reset(&mut j, 0);
    for at in [50, 150, 350] {
        j.send(at, &[0, 1], 503, Outcome::Responded, Some("status 503"), 1);
    }
    let (v, why) = check(CheckId::RetryRetryable, &j.observe(1, "gave up"));
    assert_eq!(v, Verdict::Pass, "{why}");

    // Three resets, the last ending the run: the budget may have been spent there too.
    let mut j = Journal::new(input(2));
    j.send(0, &[0, 1], 503, Outcome::Responded, Some("status 503"), 1);
    for at in [50, 150, 350] {
        reset(&mut j, at);
    }
    let (v, why) = check(CheckId::RetryRetryable, &j.observe(1, "gave up"));
    assert_eq!(v, Verdict::Pass, "{why}");

    // A sink that stops after two attempts is still caught, with or without bodies.
    let mut j = Journal::new(input(2));
    reset(&mut j, 0);
    j.send(50, &[0, 1], 503, Outcome::Responded, Some("status 503"), 1);
    let (v, why) = check(CheckId::RetryRetryable, &j.observe(1, "gave up"));
    assert_eq!(v, Verdict::Fail, "{why}");
    let mut j = Journal::new(input(2));
    j.send(0, &[0, 1], 503, Outcome::Responded, Some("status 503"), 1);
    reset(&mut j, 50);
    let (v, why) = check(CheckId::RetryRetryable, &j.observe(1, "gave up"));
    assert_eq!(v, Verdict::Fail, "{why}");
}
