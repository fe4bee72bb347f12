//! `tecton-sim stream replay` and `stream simulate` as a user runs them.
#![allow(clippy::unwrap_used)]

use std::process::Command;

mod support;

/// The binary, run from a directory outside the repository.
fn bin() -> Command {
    support::bin(&std::env::temp_dir())
}

fn temp(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("tecton-sim-stream-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn replay_prints_one_line_per_micro_batch_and_names_bad_lines() {
    let dir = temp("replay");
    let input = dir.join("in.jsonl");
    let tx = |b: u32, id: &str, ts: &str| {
        format!(
            r#"{{"batch": {b}, "record": {{"user_id": "u1", "transaction_id": "{id}", "merchant": "m", "amt": 1.5, "is_fraud": 0, "timestamp": "{ts}"}}}}"#
        )
    };
    let text = [
        tx(0, "t1", "2024-06-01T00:00:00Z"),
        "{\"batch\": 1}".to_owned(),
        tx(2, "t1", "2024-06-01T00:05:00Z"),
    ]
    .join("\n");
    std::fs::write(&input, text).unwrap();
    let out = bin()
        .args([
            "stream",
            "replay",
            "--source",
            "transactions_stream",
            "--input",
        ])
        .arg(&input)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[1]["num_input_rows"], 0);
    assert_eq!(
        lines[2]["dropped"],
        serde_json::json!([{"seq": 1, "reason": "duplicate"}])
    );

    std::fs::write(&input, "{\"batch\": 0}\nnot json\n").unwrap();
    let out = bin()
        .args(["stream", "replay", "--input"])
        .arg(&input)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 2"), "{err}");
    let out = bin()
        .args(["stream", "replay", "--spark", "2.0", "--input"])
        .arg(&input)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn simulate_is_deterministic_for_a_seed_and_reports_drops_and_freshness() {
    let run = || {
        let out = bin()
            .args([
                "stream",
                "simulate",
                "--rate",
                "50",
                "--duration",
                "3m",
                "--users",
                "20",
                "--late-share",
                "0.5",
                "--seed",
                "7",
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let a = run();
    let b = run();
    let without_wall = |s: &str| {
        s.lines()
            .filter(|l| {
                !["wall time", "peers", "peak RSS"]
                    .iter()
                    .any(|t| l.starts_with(t))
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(
        without_wall(&a),
        without_wall(&b),
        "same seed, same figures"
    );
    assert!(a.contains("9000 records"), "{a}");
    let counts = a
        .lines()
        .find(|l| l.starts_with("user_transaction_counts"))
        .unwrap();
    // Half the records trail by up to 48 h under a 24 h watermark: the tiles see late drops.
    let late: u64 = counts.split_whitespace().nth(3).unwrap().parse().unwrap();
    assert!(late > 0, "{a}");
    assert!(a.contains("freshness (all views): p50"), "{a}");
    assert!(a.contains("wall time"), "{a}");
}

#[test]
fn simulate_counts_add_up_and_a_zero_second_trigger_follows_the_batch_duration() {
    let out = bin()
        .args([
            "stream",
            "simulate",
            "--rate",
            "200",
            "--duration",
            "2m",
            "--users",
            "50",
            "--late-share",
            "0.2",
            "--seed",
            "3",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("24000 records"), "{text}");
    let row = |view: &str| -> Vec<u64> {
        let line = text.lines().find(|l| l.starts_with(view)).unwrap();
        line.split_whitespace()
            .skip(1)
            .take(5)
            .map(|n| n.parse().unwrap())
            .collect()
    };
    let mut batches = 0;
    for view in [
        "user_transaction_amount_totals",
        "user_transaction_counts",
        "user_last_transaction",
    ] {
        let r = row(view);
        // Every record is either written or dropped for a reason, once.
        assert_eq!(r[1] + r[2] + r[3] + r[4], 24_000, "{view}: {text}");
        batches += r[0];
    }
    // CONTINUOUS (0 s trigger): one micro-batch per 800 ms batch duration while records flow.
    let continuous = row("user_transaction_amount_totals")[0];
    assert!((148..=151).contains(&continuous), "{text}");
    // TIME_INTERVAL and attributes: one per 30 s trigger, from the start to the last records.
    assert_eq!(row("user_transaction_counts")[0], 5, "{text}");
    assert!(
        row("user_transaction_counts")[2] > 0,
        "late rows dropped: {text}"
    );
    assert!(
        text.contains(&format!("micro-batches: {batches} in all")),
        "{text}"
    );
    for needle in [
        "records/s",
        "faster than simulated time",
        "peers on the first",
        "peak RSS",
    ] {
        assert!(text.contains(needle), "{needle}: {text}");
    }
}
