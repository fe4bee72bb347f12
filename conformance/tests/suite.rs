//! The whole suite against the reference sink and against every mutant.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use conformance::checks::{CheckId, Verdict};
use conformance::runner::{run_suite, RunOptions, Subject, SuiteRun};
use conformance::scenario::{load_dir, Scenario, ScenarioError};
use conformance::sink::{ReferenceSink, Sink};

fn scenarios() -> Vec<Result<Scenario, ScenarioError>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    load_dir(&dir).expect("the scenarios directory is readable")
}

async fn suite(sink: &dyn Sink, seed: u64) -> SuiteRun {
    run_suite(
        &scenarios(),
        seed..seed + 1,
        &Subject::Sink(sink),
        &RunOptions::default(),
        |_| {},
    )
    .await
}

fn summary(run: &SuiteRun) -> String {
    let mut out = String::new();
    for r in &run.results {
        match &r.run {
            Err(e) => out.push_str(&format!("ERROR {} (seed {}): {e}\n", r.scenario, r.seed)),
            Ok(s) => {
                for c in &s.results {
                    if c.verdict != Verdict::Pass {
                        out.push_str(&format!(
                            "{} {} {} (seed {}): {}\n    {}\n",
                            c.verdict.label(),
                            r.scenario,
                            c.id,
                            r.seed,
                            c.explanation,
                            c.evidence.join("\n    ")
                        ));
                    }
                }
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reference_sink_passes_every_scenario() {
    let started = std::time::Instant::now();
    let run = suite(&ReferenceSink::new(), 1).await;
    let s = summary(&run);
    eprintln!(
        "suite wall time {:.1} s\n{s}",
        started.elapsed().as_secs_f64()
    );
    assert!(run.harness_errors().next().is_none(), "{s}");
    assert!(run.failures().is_empty(), "{s}");
    let _ = CheckId::Outcome;
}
