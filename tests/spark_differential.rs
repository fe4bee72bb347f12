//! Differential test: `tecton-sim stream replay` against real Spark Structured Streaming.
//!
//! Generates micro-batch cases from one seed (late events, events exactly on tile ends and on
//! the watermark, empty batches, three watermark delays including none), runs them through
//! `tests/python/spark_stream_check.py` (withWatermark -> 10-minute tumbling groupBy ->
//! sum/count, update mode, one file per micro-batch, one Spark session for all cases) and
//! through `tecton-sim stream replay`, and requires per micro-batch: the same rows read, the same
//! watermark in force, the same number of rows dropped as late, the same emitted (entity, tile)
//! rows with the same running sums and counts, and `watermark_after` equal to Spark's next
//! watermark.
//!
//! Needs `pyspark` in `.venv` (`scripts/setup-python.sh`) and Java 17. When either is missing
//! the test FAILS under `CI=true` and otherwise prints `SKIPPED: ...` and passes.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};

mod support;

const SPARK_TEST: &str = "stream_replay_matches_spark_structured_streaming";

const SEED: u64 = 20_240_601;
const CASES: usize = 5;
const MINUTE: i64 = 60;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> i64 {
        (self.next() % n) as i64
    }
}

/// Seconds after 2024-06-01T12:00:00Z as an RFC 3339 time.
fn time(s: i64) -> String {
    let t = 12 * 3600 + s;
    format!(
        "2024-06-{:02}T{:02}:{:02}:{:02}Z",
        1 + t / 86_400,
        t % 86_400 / 3600,
        t % 3600 / 60,
        t % 60
    )
}

/// One case: its watermark delay (s) and its batches of records.
fn generate(rng: &mut Rng, n: usize) -> (i64, Vec<Vec<Value>>) {
    let delay = [10 * MINUTE, 5 * MINUTE, 0][n % 3];
    let mut frontier = 30 * MINUTE;
    let mut max_seen = i64::MIN;
    let mut watermark = 0i64;
    let mut batches = Vec::new();
    let mut id = 0;
    for _ in 0..(5 + rng.below(3)) {
        if rng.below(5) == 0 {
            batches.push(Vec::new());
            watermark = watermark.max(max_seen.saturating_sub(delay));
            continue;
        }
        frontier += rng.below(16) * MINUTE;
        let mut batch = Vec::new();
        for _ in 0..(1 + rng.below(5)) {
            let ts = match rng.below(7) {
                // On time, near the frontier.
                0 | 1 => frontier - rng.below(5) * MINUTE - rng.below(2) * 30,
                // Late by the delay and then some.
                2 | 6 => frontier - delay - (10 + rng.below(30)) * MINUTE,
                // Exactly on a tile end near the watermark.
                3 => {
                    let w = (frontier - delay).max(0);
                    w - w % (10 * MINUTE) - rng.below(2) * 10 * MINUTE
                }
                // Exactly on the watermark in force.
                4 => watermark.max(0),
                // One second before a tile end.
                _ => (frontier - frontier % (10 * MINUTE)) - 1 - rng.below(2) * 10 * MINUTE,
            }
            .max(0);
            max_seen = max_seen.max(ts);
            id += 1;
            batch.push(json!({
                "user_id": format!("u{}", rng.below(3)),
                "id": format!("e{id}"),
                // Multiples of 0.5 sum exactly in binary floating point.
                "amt": (1 + rng.below(20)) as f64 / 2.0,
                "ts": time(ts),
            }));
        }
        batches.push(batch);
        watermark = watermark.max(max_seen.saturating_sub(delay));
    }
    (delay, batches)
}

/// The project's `.venv` with pyspark, when Java runs too; `None` after a skip notice.
fn venv_python() -> Option<PathBuf> {
    let fix = "Run scripts/setup-python.sh (pyspark) with Java 17 on the machine.";
    let java = Command::new("java")
        .arg("-version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !java {
        support::skip_or_fail(SPARK_TEST, "java does not run", fix);
        return None;
    }
    support::venv_python(SPARK_TEST, ".venv", &["pyspark"], fix)
}

fn rows_of_replay(line: &Value) -> Vec<(String, String, String, f64, f64)> {
    let mut rows: Vec<_> = line["writes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            (
                w["join_keys"]["user_id"].as_str().unwrap().to_owned(),
                w["tile_start"].as_str().unwrap().to_owned(),
                w["tile_end"].as_str().unwrap().to_owned(),
                w["partials"]["amt_sum"].as_f64().unwrap(),
                w["partials"]["amt_count"].as_f64().unwrap(),
            )
        })
        .collect();
    rows.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    rows
}

fn rows_of_spark(batch: &Value) -> Vec<(String, String, String, f64, f64)> {
    batch["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["user_id"].as_str().unwrap().to_owned(),
                r["tile_start"].as_str().unwrap().to_owned(),
                r["tile_end"].as_str().unwrap().to_owned(),
                r["amt_sum"].as_f64().unwrap(),
                r["amt_count"].as_f64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn stream_replay_matches_spark_structured_streaming() {
    // The venv's pyspark is 4.x (the 3.4 rule). To check the 3.3 rule by hand, point
    // SPARK_CHECK_PYTHON at an interpreter with pyspark 3.3 and set SPARK_RULE=3.3.
    let spark_rule = std::env::var("SPARK_RULE").unwrap_or_else(|_| "3.4".into());
    let Some(python) = std::env::var_os("SPARK_CHECK_PYTHON")
        .map(PathBuf::from)
        .or_else(venv_python)
    else {
        return;
    };
    let work = std::env::temp_dir().join(format!("tecton-sim-spark-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).unwrap();
    let mut rng = Rng(SEED);
    let cases: Vec<(String, i64, Vec<Vec<Value>>)> = (0..CASES)
        .map(|n| {
            let (delay, batches) = generate(&mut rng, n);
            (format!("case{n}"), delay, batches)
        })
        .collect();
    let spec: Vec<Value> = cases
        .iter()
        .map(|(name, delay, batches)| json!({"name": name, "delay_s": delay, "batches": batches}))
        .collect();
    let cases_path = work.join("cases.json");
    std::fs::write(&cases_path, serde_json::to_vec(&spec).unwrap()).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/spark_stream_check.py");
    let spark_dir = work.join("spark");
    std::fs::create_dir_all(&spark_dir).unwrap();
    let out = Command::new(&python)
        .arg(&script)
        .arg(&cases_path)
        .arg(&spark_dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "Spark job failed (seed {SEED}):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The result is the last line; some Spark versions log to stdout before it.
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    let spark: Value = serde_json::from_str(last).unwrap_or_else(|e| {
        panic!(
            "Spark printed no JSON ({e}):\n{}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    eprintln!("compared against Spark {}", spark["spark"]);

    let repo_text = include_str!("../mock-tecton/tests/stream/tiles.toml");
    // What the cases exercised, so that the comparison cannot pass on trivial input.
    let (mut late_drops, mut empty_batches, mut emitted) = (0, 0, 0);
    for (name, delay, batches) in &cases {
        let repo = work.join(format!("{name}.toml"));
        std::fs::write(
            &repo,
            repo_text.replace(
                "watermark_delay_threshold = \"10m\"",
                &format!("watermark_delay_threshold = \"{delay}s\""),
            ),
        )
        .unwrap();
        let mut input = String::new();
        for (b, batch) in batches.iter().enumerate() {
            if batch.is_empty() {
                input.push_str(&format!("{{\"batch\": {b}}}\n"));
            }
            for r in batch {
                input.push_str(&json!({"batch": b, "record": r}).to_string());
                input.push('\n');
            }
        }
        let input_path = work.join(format!("{name}.jsonl"));
        std::fs::write(&input_path, &input).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_tecton-sim"))
            .args([
                "stream",
                "replay",
                "--source",
                "events",
                "--spark",
                &spark_rule,
                "--config",
            ])
            .arg(&repo)
            .arg("--input")
            .arg(&input_path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let ours: Vec<Value> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let theirs = spark["cases"][name].as_array().unwrap();
        let ctx = || format!("seed {SEED}, {name} (delay {delay}s), input:\n{input}");
        assert_eq!(ours.len(), batches.len(), "{}", ctx());
        assert_eq!(
            theirs.len(),
            batches.len(),
            "Spark ran other batches: {theirs:?}\n{}",
            ctx()
        );
        for (b, (o, t)) in ours.iter().zip(theirs).enumerate() {
            let at = || format!("batch {b}: ours {o}\nSpark {t}\n{}", ctx());
            assert_eq!(o["num_input_rows"], t["num_input_rows"], "{}", at());
            assert_eq!(o["watermark"], t["watermark"], "{}", at());
            let late = o["dropped"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|d| d["reason"] == "late")
                .count();
            assert_eq!(json!(late), t["dropped_late"], "{}", at());
            late_drops += late;
            empty_batches += usize::from(batches[b].is_empty());
            emitted += rows_of_replay(o).len();
            assert_eq!(rows_of_replay(o), rows_of_spark(t), "{}", at());
            if let Some(next) = theirs.get(b + 1) {
                assert_eq!(o["watermark_after"], next["watermark"], "{}", at());
            }
        }
    }
    assert!(
        late_drops > 0 && empty_batches > 0 && emitted > 0,
        "seed {SEED} exercised too little: {late_drops} late drops, {empty_batches} empty batches, {emitted} rows"
    );
    eprintln!(
        "{late_drops} late drops, {empty_batches} empty batches, {emitted} emitted rows agreed"
    );
    let _ = std::fs::remove_dir_all(&work);
}
