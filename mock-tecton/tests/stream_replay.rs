//! `stream replay` on hand-made micro-batches: the exact output external checks read, pinned
//! with snapshots. Each case names the rule it shows.

use mock_tecton::stream::replay::{parse_input, replay};
use mock_tecton::stream::SparkVersion;
use mock_tecton::Repository;

fn tiles_repo(delay: &str) -> Repository {
    let text = include_str!("stream/tiles.toml").replace(
        "watermark_delay_threshold = \"10m\"",
        &format!("watermark_delay_threshold = \"{delay}\""),
    );
    Repository::from_toml(&text, "tiles.toml").expect("valid repository")
}

fn rec(batch: i64, user: &str, id: &str, amt: f64, hhmm: &str) -> String {
    format!(
        r#"{{"batch": {batch}, "record": {{"user_id": "{user}", "id": "{id}", "amt": {amt}, "ts": "2024-06-01T{hhmm}:00Z"}}}}"#
    )
}

fn run(repo: &Repository, source: &str, lines: &[String], spark: SparkVersion) -> String {
    let batches = parse_input(&lines.join("\n")).expect("valid input");
    replay(repo, source, &batches, spark)
        .expect("replay runs")
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// The worked example: previous max 12:34 gives watermark 12:24; a row of the 12:10 tile is
/// accepted once more on Spark 3.4 (filtered with the previous watermark), then dropped.
fn late_case() -> Vec<String> {
    vec![
        rec(0, "u1", "a", 1.0, "12:34"),
        rec(0, "u2", "b", 2.0, "12:05"),
        rec(1, "u1", "c", 4.0, "12:13"),
        rec(1, "u1", "d", 8.0, "12:21"),
        rec(2, "u1", "e", 16.0, "12:14"),
        rec(2, "u1", "f", 32.0, "12:21"),
        rec(2, "u1", "g", 64.0, "12:30"),
    ]
}

#[test]
fn late_rows_spark_3_4() {
    let out = run(
        &tiles_repo("10m"),
        "events",
        &late_case(),
        SparkVersion::V3_4,
    );
    insta::assert_snapshot!(out);
}

#[test]
fn late_rows_spark_3_3() {
    let out = run(
        &tiles_repo("10m"),
        "events",
        &late_case(),
        SparkVersion::V3_3,
    );
    insta::assert_snapshot!(out);
}

#[test]
fn empty_batches_and_events_on_tile_ends_and_the_watermark() {
    let lines = vec![
        rec(0, "u1", "a", 1.0, "12:30"),
        // An empty batch: the watermark catches up, so both Spark rules agree afterwards.
        r#"{"batch": 1}"#.to_owned(),
        // 12:20 is both the watermark and the start of a tile: its tile [12:20, 12:30) is alive.
        rec(2, "u1", "b", 1.0, "12:20"),
        // 12:10's tile ends exactly on the watermark 12:20: late.
        rec(2, "u1", "c", 1.0, "12:10"),
        rec(2, "u1", "d", 1.0, "12:19"),
        // Labels need not be dense; an unknown field type is invalid and never stops the stream.
        r#"{"batch": 7, "record": {"user_id": "u1", "id": "x", "amt": "lots", "ts": "2024-06-01T12:40:00Z"}}"#.to_owned(),
        rec(7, "u2", "e", 3.5, "12:40"),
    ];
    let out = run(&tiles_repo("10m"), "events", &lines, SparkVersion::V3_4);
    insta::assert_snapshot!(out);
}

#[test]
fn without_a_watermark_nothing_is_late() {
    let lines = vec![
        rec(0, "u1", "a", 1.0, "23:00"),
        rec(1, "u1", "b", 2.0, "00:00"),
        rec(1, "u1", "c", 3.0, "00:05"),
    ];
    let out = run(&tiles_repo("0s"), "events", &lines, SparkVersion::V3_4);
    insta::assert_snapshot!(out);
}

#[test]
fn the_demo_stream_drops_duplicate_transactions() {
    let tx = |batch: i64, id: &str, ts: &str| {
        format!(
            r#"{{"batch": {batch}, "record": {{"user_id": "u1", "transaction_id": "{id}", "merchant": "m{id}", "amt": 2.5, "is_fraud": 0, "timestamp": "{ts}"}}}}"#
        )
    };
    let lines = vec![
        tx(0, "t1", "2024-06-01T00:01:00Z"),
        tx(0, "t1", "2024-06-01T00:01:00Z"),
        tx(1, "t1", "2024-06-01T00:02:00Z"),
        tx(1, "t2", "2024-06-01T00:12:00Z"),
    ];
    let out = run(
        &Repository::demo(),
        "transactions_stream",
        &lines,
        SparkVersion::V3_4,
    );
    insta::assert_snapshot!(out);
}

#[test]
fn bad_input_names_the_line() {
    let err = parse_input("{\"batch\": 0}\n{\"record\": {}}").expect_err("no batch");
    assert_eq!(err.line, 2, "{err}");
    assert!(err.to_string().starts_with("line 2:"), "{err}");
    let err = parse_input("[1]").expect_err("not an object");
    assert_eq!(err.line, 1, "{err}");
    let err = replay(&Repository::demo(), "nope", &[], SparkVersion::V3_4).expect_err("no source");
    assert!(err.to_string().contains("transactions_stream"), "{err}");
}
