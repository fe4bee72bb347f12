//! Scenario files: the shipped ones load, and broken ones give errors that name the file and
//! the field without stopping the others from loading.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use conformance::checks::ExpectedOutcome;
use conformance::runner::{run_suite, HarnessError, RunOptions, Subject};
use conformance::scenario::{load_dir, Input};
use conformance::sink::ReferenceSink;

fn shipped() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scenarios")
}

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("conformance-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn every_shipped_scenario_loads() {
    let loaded = load_dir(&shipped()).unwrap();
    let errors: Vec<String> = loaded
        .iter()
        .filter_map(|r| r.as_ref().err().map(ToString::to_string))
        .collect();
    assert!(errors.is_empty(), "{}", errors.join("\n"));
    let names: Vec<String> = loaded.into_iter().map(|s| s.unwrap().name).collect();
    for wanted in [
        "success",
        "batching-thresholds",
        "invalid-key",
        "workspace-not-found",
        "source-not-found",
        "schema-mismatch",
        "malformed-records",
        "throttled-429",
        "retry-after",
        "server-errors-5xx",
        "connection-reset",
        "reset-after-write",
        "timeout-hang",
        "slow-responses",
        "schema-drift",
        "large-input",
    ] {
        assert!(
            names.iter().any(|n| n == wanted),
            "missing scenario {wanted}"
        );
    }
}

#[test]
fn shipped_scenarios_cover_both_outcomes_and_large_input() {
    let loaded: Vec<_> = load_dir(&shipped())
        .unwrap()
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert!(loaded.iter().any(|s| s.outcome == ExpectedOutcome::GiveUp));
    assert!(loaded.iter().any(|s| s.outcome == ExpectedOutcome::Success));
    assert!(loaded
        .iter()
        .any(|s| matches!(&s.input, Input::Generated(g) if g.count >= 2000)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_scenario_is_a_clear_harness_error_and_the_others_still_run() {
    let dir = temp_dir("malformed");
    std::fs::write(
        dir.join("broken.toml"),
        "description = \"x\"\n[input]\ncount = 5\n[hints]\ntimeout_s = -1\n[expect]\noutcome = \"success\"\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("typo.toml"),
        "description = \"x\"\n[input]\ncount = 5\n[expect]\noutcome = \"success\"\nchecks = [\"retry_budget\"]\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("good.toml"),
        "description = \"fine\"\n[input]\ncount = 5\n[expect]\noutcome = \"success\"\nwall_limit_s = 5\n",
    )
    .unwrap();
    let loaded = load_dir(&dir).unwrap();
    let errors: Vec<String> = loaded
        .iter()
        .filter_map(|r| r.as_ref().err().map(ToString::to_string))
        .collect();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(
        errors[0]
            .contains("broken.toml: `hints.timeout_s`: -1 must be a number of seconds above 0"),
        "{}",
        errors[0]
    );
    assert!(
        errors[1]
            .contains("typo.toml: `expect.checks[0]`: unknown check `retry_budget`; known checks:"),
        "{}",
        errors[1]
    );

    let sink = ReferenceSink::new();
    let run = run_suite(
        &loaded,
        3..4,
        &Subject::Sink(&sink),
        &RunOptions::default(),
        |_| {},
    )
    .await;
    assert_eq!(run.results.len(), 3);
    let harness: Vec<&str> = run
        .harness_errors()
        .map(|(r, _)| r.scenario.as_str())
        .collect();
    assert_eq!(harness, ["broken", "typo"]);
    assert!(matches!(run.results[0].run, Err(HarnessError::Scenario(_))));
    assert!(run.results[1].run.is_ok(), "good.toml runs");
    assert_eq!(run.exit_code(), 2, "harness errors and no failure: exit 2");
    assert!(run.results[0]
        .replay
        .ends_with("--scenario broken --seed 3"));
}

#[test]
fn an_unreadable_directory_or_repository_is_named() {
    let missing = std::env::temp_dir().join("conformance-no-such-dir-xyz");
    let e = load_dir(&missing).err().unwrap().to_string();
    assert!(e.contains("conformance-no-such-dir-xyz"), "{e}");
    let dir = temp_dir("repo");
    std::fs::write(
        dir.join("r.toml"),
        "description = \"x\"\nrepository = \"nope.toml\"\n[input]\ncount = 1\n[expect]\noutcome = \"success\"\n",
    )
    .unwrap();
    let e = load_dir(&dir).unwrap().remove(0).err().unwrap().to_string();
    assert!(e.contains("r.toml: `repository`:"), "{e}");
    assert!(e.contains("nope.toml"), "{e}");
}
