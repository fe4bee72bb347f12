//! The whole suite against the reference sink and against every mutant.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use conformance::checks::{CheckId, Verdict};
use conformance::runner::{
    determinism_check, run_scenario, run_suite, RunOptions, Subject, SuiteRun,
};
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
                            c.evidence
                                .iter()
                                .map(|e| e.text.as_str())
                                .collect::<Vec<_>>()
                                .join("\n    ")
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
    // Every scenario judged something: the core checks at least.
    for r in &run.results {
        let checks = r.run.as_ref().map(|s| s.results.len()).unwrap_or(0);
        assert!(checks >= conformance::checks::CORE.len(), "{}", r.scenario);
    }
}

fn scenario(name: &str) -> Scenario {
    scenarios()
        .into_iter()
        .filter_map(Result::ok)
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no scenario {name}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_seed_same_journal_and_verdicts() {
    let sink = ReferenceSink::new();
    for name in ["mixed-faults", "throttled-429", "reset-after-write"] {
        let report = determinism_check(&scenario(name), 7, &sink).await.unwrap();
        assert!(
            report.identical(),
            "{name} (seed 7) differs between two runs:\n{}",
            report.differences.join("\n")
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn different_seeds_change_the_generated_input_and_faults() {
    let sink = ReferenceSink::new();
    let s = scenario("mixed-faults");
    let opts = RunOptions::default();
    let a = run_scenario(&s, 1, &Subject::Sink(&sink), &opts)
        .await
        .unwrap();
    let b = run_scenario(&s, 2, &Subject::Sink(&sink), &opts)
        .await
        .unwrap();
    let faults = |r: &conformance::runner::ScenarioRun| {
        r.observation
            .exchanges
            .iter()
            .map(|e| e.fault.clone())
            .collect::<Vec<_>>()
    };
    assert_ne!(a.observation.input, b.observation.input);
    assert_ne!(faults(&a), faults(&b));
    assert!(a.failures().next().is_none() && b.failures().next().is_none());
    assert_eq!(a.verdict(CheckId::Completeness), Some(Verdict::Pass));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_example_sink_passes_every_scenario_through_the_command_driver() {
    let found = std::process::Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        eprintln!("python3 not found: skipping the Python example sink suite");
        return;
    }
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/python-sink/sink.py"
    );
    let sink = conformance::sink::CommandSink::new(format!("python3 '{script}'"));
    let run = run_suite(
        &scenarios(),
        1..2,
        &Subject::Command(sink),
        &RunOptions::default(),
        |_| {},
    )
    .await;
    let s = summary(&run);
    assert!(run.harness_errors().next().is_none(), "{s}");
    assert!(run.failures().is_empty(), "{s}");
    assert!(run.results[0]
        .replay
        .starts_with("tecton-sim conformance --sink 'python3 '\\''"));
}
