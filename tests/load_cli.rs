//! `tecton-sim load` as a user runs it: reports written, the seed printed and replayable,
//! thresholds deciding the exit code, bad flags refused before any load.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::{Command, Output};

fn load(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tecton-sim"))
        .arg("load")
        .args(args)
        .output()
        .unwrap()
}

fn out_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tecton-sim-load-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn a_run_writes_three_reports_and_thresholds_set_the_exit_code() {
    let dir = out_dir("run");
    let d = dir.to_str().unwrap();
    let common = [
        "run",
        "--rate",
        "200",
        "--duration",
        "1s",
        "--seed",
        "7",
        "--out",
        d,
    ];

    let out = load(&[&common[..], &["--threshold", "push.achieved_ratio>=50%"]].concat());
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("seed 7 (replay with --seed 7)"), "{stdout}");
    assert!(stdout.contains("20/20 sampled keys"), "{stdout}");
    for f in ["report.html", "report.md", "report.json"] {
        assert!(dir.join(f).is_file(), "{f} missing");
    }
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap()).unwrap();
    assert_eq!(json["seed"], 7);
    let p = &json["points"][0];
    assert_eq!(p["pattern"], "push");
    assert_eq!(p["records_sent"], 200);
    assert_eq!(p["records_acknowledged"], 200);
    for field in ["p50", "p90", "p99", "p999", "max"] {
        assert!(p["latency_ms"][field].is_number(), "latency_ms.{field}");
        assert!(p["latency_uncorrected_ms"][field].is_number());
    }

    // No loopback push takes under a microsecond: this threshold must fail, and say so.
    let out = load(&[&common[..], &["--threshold", "push.latency.p50<0.001ms"]].concat());
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(text(&out.stdout).contains("threshold FAIL"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_flags_are_clear_errors_before_any_load() {
    for (args, says) in [
        (vec!["run", "--rate", "fast"], "rate `fast` is not a number"),
        (vec!["run", "--batch", "0"], "--batch `0`"),
        (vec!["run", "--duration", "soon"], "duration `soon`"),
        (
            vec!["run", "--burst", "5@9s+1s", "--duration", "2s"],
            "burst must start and end",
        ),
        (vec!["run", "--pattern", "sink"], "needs --sink-command"),
        (vec!["run", "--threshold", "push.nope<1"], "push.nope<1"),
        (vec!["sweep", "--rates", "1..5"], "constant rates"),
        (vec!["run", "--users", "0"], "users must be"),
        (vec!["run", "--cost", "spark=x"], "--cost"),
        (
            vec!["run", "--input", "/nonexistent.jsonl"],
            "cannot read /nonexistent.jsonl",
        ),
    ] {
        let out = load(&args);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert!(
            !text(&out.stdout).contains("records/s for"),
            "{args:?} made load"
        );
    }
}

#[test]
fn an_unreachable_mock_is_a_clear_error() {
    let out = load(&["run", "--url", "http://127.0.0.1:1", "--duration", "1s"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("cannot reach the mock at http://127.0.0.1:1"),
        "{err}"
    );
}
