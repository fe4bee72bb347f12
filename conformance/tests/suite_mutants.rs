//! Every mutant sink is caught by the check meant for it, and by no unrelated check.
//!
//! A mutant is the reference sink with exactly one defect. The table below says which checks
//! must flag it (fail; a warning for `NoBatching` and `TrustsAny200`, whose checks only ever
//! warn) and which
//! other checks may fail as a consequence (a sink that gives up where it should have
//! delivered also fails `outcome`). Any other failing check is a false positive.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use conformance::checks::{CheckId, Verdict};
use conformance::runner::{run_suite, RunOptions, Subject, SuiteRun};
use conformance::scenario::load_dir;
use conformance::sink::backoff::Backoff;
use conformance::sink::{Mutant, MutantSink};

use CheckId::*;

/// Mutant → (checks that must flag it, checks that may also fail as a consequence).
const EXPECTED: [(Mutant, &[CheckId], &[CheckId]); 16] = [
    (Mutant::NoBatching, &[BatchingEfficiency], &[]),
    (Mutant::OversizeBatches, &[BatchLimit], &[Outcome]),
    (Mutant::NoRetry, &[RetryRetryable], &[Outcome]),
    (Mutant::RetriesDefinite4xx, &[NoRetryDefinite], &[]),
    (Mutant::UnboundedRetries, &[RetryBound], &[Outcome]),
    (Mutant::NoBackoff, &[Backoff], &[]),
    (Mutant::NoJitter, &[Jitter], &[]),
    (Mutant::IgnoresRetryAfter, &[RetryAfter], &[]),
    (Mutant::NoTimeout, &[Timeout], &[]),
    (Mutant::Reorders, &[KeyOrder], &[]),
    (Mutant::LiesAboutSuccess, &[Completeness], &[Outcome]),
    (Mutant::DuplicatesAfterSuccess, &[Duplicates], &[]),
    (Mutant::WrongAuthScheme, &[AuthHeader], &[Outcome]),
    (Mutant::CamelCaseBody, &[RequestShape], &[Outcome]),
    (Mutant::DropsLastBatch, &[Completeness], &[Outcome]),
    // Retries transient failures and trusts a 200 status: the whole suite passes, with warnings.
    (Mutant::TrustsAny200, &[AckBody], &[]),
];

/// Mutant suites run this many at a time (the suite is mostly waiting on backoff sleeps, but
/// the timing checks want a quiet machine).
const PARALLEL: usize = 3;

fn flagged(run: &SuiteRun, verdict: Verdict) -> BTreeSet<CheckId> {
    run.results
        .iter()
        .filter_map(|r| r.run.as_ref().ok())
        .flat_map(|s| s.results.iter())
        .filter(|c| c.verdict == verdict)
        .map(|c| c.id)
        .collect()
}

fn where_flagged(run: &SuiteRun, id: CheckId) -> Vec<String> {
    run.results
        .iter()
        .filter_map(|r| r.run.as_ref().ok().map(|s| (r, s)))
        .flat_map(|(r, s)| {
            s.results
                .iter()
                .filter(move |c| c.id == id && c.verdict != Verdict::Pass)
                .map(move |c| format!("{} (seed {}): {}", r.scenario, r.seed, c.explanation))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_mutant_is_caught_by_its_check_and_no_other() {
    assert_eq!(
        EXPECTED.iter().map(|e| e.0).collect::<Vec<_>>(),
        Mutant::ALL,
        "the table must list every mutant, in Mutant::ALL order"
    );
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let scenarios = Arc::new(load_dir(&dir).unwrap());
    let gate = Arc::new(tokio::sync::Semaphore::new(PARALLEL));
    let mut tasks = tokio::task::JoinSet::new();
    for (mutant, _, _) in EXPECTED {
        let scenarios = scenarios.clone();
        let gate = gate.clone();
        tasks.spawn(async move {
            let _permit = gate.acquire().await.unwrap();
            let sink = MutantSink::new(mutant);
            // Its gaps are a fixed delay plus the scheduler's lateness, judged against 4% of
            // their median: a longer base delay keeps a loaded machine's few milliseconds of
            // lateness under that line. The delay stays exactly as deterministic.
            let sink = if mutant == Mutant::NoJitter {
                sink.with_backoff(Backoff {
                    base: Duration::from_millis(150),
                    cap: Duration::from_secs(2),
                })
            } else {
                sink
            };
            let started = std::time::Instant::now();
            let run = run_suite(
                &scenarios,
                1..2,
                &Subject::Sink(&sink),
                &RunOptions::default(),
                |_| {},
            )
            .await;
            (mutant, run, started.elapsed())
        });
    }
    let mut problems = Vec::new();
    while let Some(done) = tasks.join_next().await {
        let (mutant, run, took) = done.unwrap();
        let (_, must, may) = EXPECTED.iter().find(|e| e.0 == mutant).unwrap();
        let fails = flagged(&run, Verdict::Fail);
        let warns = flagged(&run, Verdict::Warn);
        eprintln!(
            "{mutant:<26} {:>5.1} s  fail: {:?}  warn: {:?}",
            took.as_secs_f64(),
            fails,
            warns
        );
        assert!(
            run.harness_errors().next().is_none(),
            "{mutant}: harness error"
        );
        for id in *must {
            let caught = if matches!(id, BatchingEfficiency | AckBody) {
                warns.contains(id) || fails.contains(id)
            } else {
                fails.contains(id)
            };
            if !caught {
                problems.push(format!("{mutant}: not caught by `{id}`"));
            }
        }
        for id in fails
            .iter()
            .filter(|f| !must.contains(f) && !may.contains(f))
        {
            problems.push(format!(
                "{mutant}: unrelated check `{id}` failed:\n  {}",
                where_flagged(&run, *id).join("\n  ")
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
