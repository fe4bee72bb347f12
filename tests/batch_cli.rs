//! `tecton-sim offline` and `consistency` on a repository with a batch source: the in-process
//! mock loads and backfills its `batch_config` file as `serve` does at start.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Output;

fn outside(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "tecton-sim-batch-cli-{name}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn run(dir: &Path, args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_tecton-sim"))
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

const REPO: &str = r#"
[[workspaces]]
name = "prod"
live = true

[[entities]]
name = "user"
join_keys = [{ name = "user_id", type = "String" }]

[[push_sources]]
name = "clicks"
log_offline = true
timestamp_field = "ts"
schema = [
  { name = "user_id", type = "String" },
  { name = "amt", type = "Float64" },
  { name = "ts", type = "Timestamp" },
]
batch_config = { path = "history/clicks.jsonl" }

[[feature_views]]
name = "click_sum"
sources = ["clicks"]
entities = ["user"]
feature_start_time = "2024-01-01T00:00:00Z"
batch_schedule = "1h"
aggregations = [{ column = "amt", function = "sum", window = "1d" }]

[[feature_services]]
name = "clicks_service"
features = ["click_sum"]
"#;

/// The batch source's history: two rows for u1, one for u2, all on 2024-05-31.
const HISTORY: &str = r#"{"user_id":"u1","amt":1.5,"ts":"2024-05-31T10:00:00Z"}
{"user_id":"u1","amt":2.0,"ts":"2024-05-31T11:00:00Z"}
{"user_id":"u2","amt":7.0,"ts":"2024-05-31T11:30:00Z"}
"#;

fn repository(dir: &Path) {
    std::fs::create_dir_all(dir.join("history")).unwrap();
    std::fs::write(dir.join("repo.toml"), REPO).unwrap();
    std::fs::write(dir.join("history/clicks.jsonl"), HISTORY).unwrap();
    std::fs::write(
        dir.join("spine.jsonl"),
        "{\"user_id\":\"u1\",\"timestamp\":\"2024-05-31T12:00:00Z\"}\n{\"user_id\":\"u2\",\"timestamp\":\"2024-05-31T12:00:00Z\"}\n",
    )
    .unwrap();
}

fn rows(out: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn offline_reads_the_batch_sources_history_with_or_without_events() {
    let dir = outside("offline");
    repository(&dir);
    // Only the batch file: its rows are the features.
    let out = run(
        &dir,
        &["offline", "--config", "repo.toml", "--spine", "spine.jsonl"],
    );
    assert!(out.status.success(), "{}", text(&out));
    let got = rows(&out);
    assert_eq!(got.len(), 2, "{}", text(&out));
    assert_eq!(
        got[0]["click_sum__amt_sum_1d_continuous"],
        3.5,
        "{}",
        text(&out)
    );
    assert_eq!(
        got[1]["click_sum__amt_sum_1d_continuous"],
        7.0,
        "{}",
        text(&out)
    );

    // Pushed records of the same keys and window: the batch job's rows take precedence
    // offline, as they do in a served mock.
    std::fs::write(
        dir.join("events.jsonl"),
        "{\"user_id\":\"u1\",\"amt\":100.0,\"ts\":\"2024-05-31T10:30:00Z\"}\n",
    )
    .unwrap();
    let out = run(
        &dir,
        &[
            "offline",
            "--config",
            "repo.toml",
            "--events",
            "events.jsonl",
            "--spine",
            "spine.jsonl",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        rows(&out)[0]["click_sum__amt_sum_1d_continuous"],
        3.5,
        "{}",
        text(&out)
    );
}

fn consistency(dir: &Path, points: &str) -> (Output, serde_json::Value) {
    std::fs::write(dir.join("points.jsonl"), points).unwrap();
    let out = run(
        dir,
        &[
            "consistency",
            "--config",
            "repo.toml",
            "--points",
            "points.jsonl",
            "--format",
            "json",
        ],
    );
    let report =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)));
    (out, report)
}

#[test]
fn consistency_of_a_batch_only_repository_sees_its_jobs_online_from_when_they_ran() {
    let dir = outside("consistency");
    repository(&dir);
    // The in-process mock starts at the first point (12:00): the backfill there materialized
    // every row, online and offline, so both sides agree at and after it.
    let (out, report) = consistency(
        &dir,
        "{\"user_id\":\"u1\",\"timestamp\":\"2024-05-31T12:00:00Z\"}\n\
         {\"user_id\":\"u2\",\"timestamp\":\"2024-05-31T12:00:00Z\"}\n\
         {\"user_id\":\"u1\",\"timestamp\":\"2024-05-31T18:00:00Z\"}\n",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(report["consistent"], true, "{}", text(&out));
    assert_eq!(report["points"], 3, "{}", text(&out));
    let f = &report["features"][0];
    assert_eq!(f["mismatch_rate"], 0.0, "{}", text(&out));
    assert_eq!(f["missing_rate"], 0.0, "{}", text(&out));

    // Starting at 11:45, the backfill covers up to 11:00; the [11:00, 12:00) job runs at 12:00.
    // At 11:45 online has u1's 10:00 row only, offline both: Tecton's batch freshness skew.
    let (out, report) = consistency(
        &dir,
        "{\"user_id\":\"u1\",\"timestamp\":\"2024-05-31T11:45:00Z\"}\n\
         {\"user_id\":\"u1\",\"timestamp\":\"2024-05-31T12:00:00Z\"}\n",
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_eq!(
        report["features"][0]["mismatch_rate"],
        0.5,
        "{}",
        text(&out)
    );
    let row = &report["differences"][0];
    assert_eq!(row["timestamp"], "2024-05-31T11:45:00Z", "{}", text(&out));
    assert_eq!(row["online"], 1.5, "{}", text(&out));
    assert_eq!(row["offline"], 3.5, "{}", text(&out));
    assert_eq!(
        row["causes"][0],
        "batch job ran after the point",
        "{}",
        text(&out)
    );
    assert_eq!(report["differences"].as_array().map(Vec::len), Some(1));
}

#[test]
fn a_missing_batch_file_is_named() {
    let dir = outside("missing");
    repository(&dir);
    std::fs::remove_file(dir.join("history/clicks.jsonl")).unwrap();
    let out = run(
        &dir,
        &["offline", "--config", "repo.toml", "--spine", "spine.jsonl"],
    );
    assert!(!out.status.success());
    assert!(text(&out).contains("clicks.jsonl"), "{}", text(&out));
}
