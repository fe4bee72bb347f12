//! The chaos search finds a defective sink, shrinks the failure to a rule or two and writes a
//! scenario that replays it; the reference sink survives it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use conformance::chaos::{search, ChaosOptions, Progress};
use conformance::checks::Verdict;
use conformance::runner::{run_scenario, RunOptions, Subject};
use conformance::scenario::load_dir;
use conformance::sink::{Mutant, MutantSink, ReferenceSink, Sink};

fn temp_dir(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("tecton-sim-chaos-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mutant_is_found_shrunk_and_replayed_from_the_written_scenario() {
    let dir = temp_dir("no-retry");
    let sink = MutantSink::new(Mutant::NoRetry);
    let opts = ChaosOptions {
        out_dir: Some(dir.clone()),
        shrink_runs: 30,
        ..ChaosOptions::new(15, 1)
    };
    let run = search(&Subject::Sink(&sink), &opts, |_| {}).await;
    assert_eq!(run.exit_code(), 1, "{:?}", run.error);
    let found = run
        .found
        .as_ref()
        .expect("no-retry is found within 15 schedules");
    eprintln!(
        "found `{}` after {} schedule(s), seed {}, shrunk {} -> {} rule(s) in {} run(s):\n{}",
        found.check,
        found.index,
        found.seed,
        found.original.rules.len(),
        found.schedule.rules.len(),
        found.shrink_runs,
        found.scenario_toml
    );
    assert_eq!(found.check.as_str(), "retry_retryable");
    assert!(found.schedule.rules.len() <= 2, "{:?}", found.schedule);
    assert!(found.schedule.rules.len() <= found.original.rules.len());
    assert!(found.shrink_runs <= 30);
    // The report holds every schedule run, then the minimal one.
    assert_eq!(run.suite.results.len() as u64, found.index + 1);
    assert!(found.replay.contains("--scenario chaos-seed"));

    // The written file, loaded as `--scenarios DIR` loads it, fails the same check again.
    let path = found.written.clone().expect("written to --chaos-out");
    assert_eq!(path, dir.join(format!("{}.toml", found.scenario_name)));
    let loaded = load_dir(&dir).unwrap();
    let scenario = loaded.into_iter().next().unwrap().unwrap();
    assert_eq!(scenario.name, found.scenario_name);
    assert_eq!(scenario.faults.rules, found.schedule.rules);
    let replay = run_scenario(
        &scenario,
        found.seed,
        &Subject::Sink(&sink),
        &RunOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(
        replay.verdict(found.check),
        Some(Verdict::Fail),
        "{:?}",
        replay.results
    );
    // And the reference sink passes the same file.
    let reference = ReferenceSink::new();
    let good = run_scenario(
        &scenario,
        found.seed,
        &Subject::Sink(&reference),
        &RunOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(
        good.failures().count(),
        0,
        "{:?}",
        good.failures().collect::<Vec<_>>()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reference_sink_survives_a_chaos_search() {
    let sink = ReferenceSink::new();
    let started = Instant::now();
    let mut lines = Vec::new();
    let run = search(&Subject::Sink(&sink), &ChaosOptions::new(12, 100), |p| {
        if let Progress::Schedule {
            schedule, result, ..
        } = p
        {
            lines.push(format!("seed {}: {}", result.seed, schedule.describe()));
        }
    })
    .await;
    eprintln!(
        "12 schedules in {:.1} s\n{}",
        started.elapsed().as_secs_f64(),
        lines.join("\n")
    );
    assert!(run.error.is_none(), "{:?}", run.error);
    assert!(
        run.found.is_none(),
        "{:?}",
        run.found.map(|f| (f.check, f.scenario_toml))
    );
    assert_eq!(run.schedules_run, 12);
    assert_eq!(run.exit_code(), 0);
}

/// The mutant table of docs/chaos.md: `CHAOS_N=200 cargo test -p conformance --test chaos --
/// --ignored --nocapture mutant_table`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "minutes long; prints the table of docs/chaos.md"]
async fn mutant_table() {
    let n: u64 = std::env::var("CHAOS_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let seed: u64 = std::env::var("CHAOS_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let only = std::env::var("CHAOS_MUTANT").ok();
    println!("| mutant | found after | shrunk to | check failed | runs |");
    println!("|---|---|---|---|---|");
    let reference = ReferenceSink::new();
    let mutants: Vec<MutantSink> = Mutant::ALL.into_iter().map(MutantSink::new).collect();
    let sinks =
        std::iter::once(&reference as &dyn Sink).chain(mutants.iter().map(|m| m as &dyn Sink));
    for sink in sinks {
        let mutant = sink.name();
        if only.as_deref().is_some_and(|o| !mutant.ends_with(o)) {
            continue;
        }
        // The two whose checks only warn are searched with warnings denied.
        let deny = mutant.ends_with("no-batching") || mutant.ends_with("trusts-any-200");
        let opts = ChaosOptions {
            deny_warnings: deny,
            ..ChaosOptions::new(n, seed)
        };
        let started = Instant::now();
        let run = search(&Subject::Sink(sink), &opts, |_| {}).await;
        let took = started.elapsed().as_secs_f64();
        match &run.found {
            Some(f) => println!(
                "| {mutant}{} | {} | {} rule(s): {} | `{}` | {} shrink runs, {took:.0} s |",
                if deny { " (deny warnings)" } else { "" },
                f.index,
                f.schedule.rules.len(),
                f.schedule.describe(),
                f.check,
                f.shrink_runs
            ),
            None => println!(
                "| {mutant} | not in {} | | {:?} | {took:.0} s |",
                run.schedules_run, run.error
            ),
        }
    }
}
