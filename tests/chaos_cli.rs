//! `tecton-sim conformance --chaos` as a user runs it: the binary, from a directory outside the
//! repository, with a sink command that claims success without sending anything. The search
//! finds it, shrinks the schedule to no fault at all, writes the scenario, and
//! `--scenarios DIR` replays the same failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value as Json;

mod support;
use support::{bin, outside, text};

/// Reads its input and exits 0 without writing a record.
const SILENT_SINK: &str = "cat > /dev/null; exit 0";

#[test]
fn a_silent_sink_is_found_shrunk_written_and_replayed() {
    let dir = outside("silent");
    let out = bin(&dir)
        .args(["conformance", "--sink", SILENT_SINK])
        .args(["--chaos", "5", "--seed", "3", "--chaos-out", "found"])
        .args(["--json", "report.json"])
        .output()
        .unwrap();
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains("FAIL `completeness` after 1 schedule(s)"),
        "{said}"
    );
    assert!(said.contains("shrunk in"), "{said}");
    // Not a terminal: no progress lines.
    assert!(!said.contains("[1/5]"), "{said}");
    let file = dir.join("found/chaos-seed3-min.toml");
    let scenario = std::fs::read_to_string(&file).unwrap();
    assert!(scenario.contains("outcome = \"success\""), "{scenario}");
    // A sink that sends nothing fails without any fault: shrinking removed them all.
    assert!(!scenario.contains("[[faults.rules]]"), "{scenario}");
    let replay = said
        .lines()
        .find_map(|l| l.trim().strip_prefix("replay: "))
        .unwrap()
        .to_owned();
    assert!(
        replay.contains("--scenario chaos-seed3-min --seed 3"),
        "{replay}"
    );

    // The JSON report lists the schedule run and the minimal one, both failed.
    let report: Json =
        serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap()).unwrap();
    let names: Vec<&str> = report["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["chaos-seed3", "chaos-seed3-min"], "{report}");

    // The written scenario replays the failure through the ordinary suite.
    let out = bin(&dir)
        .args(["conformance", "--sink", SILENT_SINK])
        .args([
            "--scenarios",
            "found",
            "--scenario",
            "chaos-seed3-min",
            "--seed",
            "3",
        ])
        .output()
        .unwrap();
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains("FAIL completeness"), "{said}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn chaos_flags_are_checked() {
    let dir = outside("flags");
    for args in [
        vec!["--chaos", "0"],
        vec!["--chaos", "x"],
        vec!["--chaos-out", "d"],
        vec!["--chaos", "3", "--runs", "2"],
        vec!["--chaos", "3", "--scenario", "success"],
    ] {
        let out = bin(&dir)
            .args(["conformance", "--sink", SILENT_SINK])
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
    }
    let out = bin(&dir)
        .args(["conformance", "--attach", "--chaos", "3"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let _ = std::fs::remove_dir_all(&dir);
}

/// A sink that starts more slowly than a schedule's wall-clock limit (as a JVM or Flink job
/// does) is killed by the chaos search; `--start-allowance` moves only the kill deadline, so
/// the same schedule then passes, and the replay line of a failure keeps the allowance.
#[test]
fn a_slow_starting_sink_passes_chaos_with_a_start_allowance() {
    let python = std::process::Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !python {
        assert!(
            std::env::var_os("CI").is_none(),
            "python3 is required under CI"
        );
        eprintln!("SKIPPED: a_slow_starting_sink_passes_chaos_with_a_start_allowance: no python3");
        return;
    }
    let dir = outside("chaos-allowance");
    let chaos = |sink: &str, seed: u64, extra: &[&str]| {
        bin(&dir)
            .args(["conformance", "--sink", sink])
            .args([
                "--chaos",
                "1",
                "--seed",
                &seed.to_string(),
                "--shrink-runs",
                "0",
            ])
            .args(extra)
            .output()
            .unwrap()
    };
    // Each schedule's limit, read from the scenario the search writes for a sink that fails at
    // once: the shortest among a few seeds keeps the test short.
    let (seed, limit_s) = (1..=6u64)
        .map(|seed| {
            let out = chaos(SILENT_SINK, seed, &["--chaos-out", "limits"]);
            assert_eq!(out.status.code(), Some(1), "{}", text(&out));
            let toml =
                std::fs::read_to_string(dir.join(format!("limits/chaos-seed{seed}-min.toml")))
                    .unwrap();
            let limit: f64 = toml
                .lines()
                .find_map(|l| l.trim().strip_prefix("wall_limit_s = "))
                .unwrap()
                .parse()
                .unwrap();
            (seed, limit)
        })
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .unwrap();
    let example =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/python-sink/sink.py");
    // Starts two seconds after the schedule's limit.
    let slow = format!(
        "sleep {}; exec python3 '{}'",
        limit_s.ceil() as u64 + 2,
        example.display()
    );

    let killed = chaos(&slow, seed, &["--start-allowance", "0.5"]);
    let said = text(&killed);
    assert_eq!(killed.status.code(), Some(1), "seed {seed}: {said}");
    assert!(said.contains("wall-clock limit"), "seed {seed}: {said}");
    let replay = said
        .lines()
        .find_map(|l| l.trim().strip_prefix("replay: "))
        .unwrap();
    assert!(replay.contains("--start-allowance 0.5"), "{replay}");

    let allowed = chaos(&slow, seed, &["--start-allowance", "30"]);
    let said = text(&allowed);
    assert_eq!(allowed.status.code(), Some(0), "seed {seed}: {said}");
    assert!(said.contains("PASS: 1 chaos schedule(s)"), "{said}");
    let _ = std::fs::remove_dir_all(&dir);
}
