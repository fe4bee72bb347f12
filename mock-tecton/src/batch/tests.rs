//! The batch rules, one test each: `[start, end)` windows, late arrival, precedence over the
//! stream for the same keys and interval only, feature_start_time.

use std::path::PathBuf;

use serde_json::{json, Value as Json};

use crate::config::Config;
use crate::ingest::Event;
use crate::repo::Repository;
use crate::retrieval::{offline_features, rows_to_json, SpineRow};
use crate::schema::{parse_timestamp, Value};
use crate::state::MockState;
use crate::store::{EntityKey, KeyPart, OnlineEntry};

fn t(s: &str) -> i64 {
    parse_timestamp(s).expect("test timestamp")
}

/// A unique file under the system's temporary directory holding `jsonl`.
fn batch_file(name: &str, jsonl: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tecton-sim-batch-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("history.jsonl");
    std::fs::write(&path, jsonl).expect("batch file written");
    path
}

/// `events` (user_id, amt, ts) with a JSONL batch source; `spend`: CONTINUOUS sum over 1d with
/// hourly batch jobs; `tiles`: TIME_INTERVAL 1h tiles, sum over 2h; `last_amt`: attribute with
/// feature_start_time 2024-06-01.
fn repo(path: &std::path::Path) -> Repository {
    let toml = format!(
        r#"
[[workspaces]]
name = "prod"

[[entities]]
name = "user"
join_keys = [{{ name = "user_id", type = "String" }}]

[[push_sources]]
name = "events"
schema = [
  {{ name = "user_id", type = "String" }},
  {{ name = "amt", type = "Float64" }},
  {{ name = "ts", type = "Timestamp" }},
]
batch_config = {{ path = "{}", format = "jsonl" }}

[[feature_views]]
name = "spend"
sources = ["events"]
entities = ["user"]
feature_start_time = "2024-01-01T00:00:00Z"
batch_schedule = "1h"
aggregations = [{{ column = "amt", function = "sum", window = "1d" }}]

[[feature_views]]
name = "tiles"
sources = ["events"]
entities = ["user"]
feature_start_time = "2024-01-01T00:00:00Z"
stream_processing_mode = "TIME_INTERVAL"
aggregation_interval = "1h"
aggregations = [{{ column = "amt", function = "sum", window = "2h" }}]

[[feature_views]]
name = "last_amt"
sources = ["events"]
entities = ["user"]
feature_start_time = "2024-06-01T00:00:00Z"
batch_schedule = "1h"
attributes = ["amt"]

[[feature_services]]
name = "svc"
features = ["spend", "tiles", "last_amt"]
"#,
        path.display()
    );
    Repository::from_toml(&toml, "repo.toml").expect("test repository is valid")
}

fn row(user: &str, amt: f64, ts: &str) -> String {
    json!({"user_id": user, "amt": amt, "ts": ts}).to_string()
}

/// A started state on a virtual clock at `now` with `rows` in the batch file.
fn state(name: &str, rows: &[String], now: &str) -> MockState {
    let path = batch_file(name, &(rows.join("\n") + "\n"));
    let repo = repo(&path);
    let state = MockState::new(&Config::new(repo).virtual_clock(t(now)));
    state.start_batch().expect("batch file loads");
    state
}

fn key(u: &str) -> EntityKey {
    EntityKey(vec![KeyPart::Str(u.into())])
}

fn view(state: &MockState, name: &str) -> usize {
    state
        .repo
        .feature_views
        .iter()
        .position(|v| v.name == name)
        .expect("view exists")
}

/// The online value of an aggregate view's first feature for `user` at `at`.
fn online_sum(state: &MockState, name: &str, user: &str, at: &str) -> Value {
    state
        .online
        .evaluate(view(state, name), &key(user), t(at))
        .and_then(|v| v.into_iter().next())
        .unwrap_or(Value::Null)
}

/// Offline features of the service for `user` at `at`, as plain JSON by `view__feature`.
fn offline(state: &MockState, user: &str, at: &str) -> Json {
    let fs = state.repo.feature_service("svc").expect("service");
    let features = crate::serving::served_features(&state.repo, fs);
    let spine = vec![SpineRow {
        join_keys: json!({"user_id": user})
            .as_object()
            .cloned()
            .unwrap_or_default(),
        timestamp: t(at),
    }];
    let rows = offline_features(state, &features, &spine).expect("offline retrieval");
    rows_to_json(&features, &spine, &rows)
        .into_iter()
        .next()
        .unwrap_or(Json::Null)
}

fn advance_to(state: &MockState, at: &str) {
    state.clock.set(t(at));
    state.run_streams();
}

/// Pushes one record through the in-process ingest path (the stream's writes).
fn push(state: &MockState, user: &str, amt: f64, ts: &str) {
    let e = Event::new(vec![
        Value::String(user.into()),
        Value::Float(amt),
        Value::Timestamp(t(ts)),
    ]);
    let applied = state.apply_events("events", vec![e]).expect("push source");
    assert_eq!(applied.events, 1);
}

#[test]
fn a_window_holds_its_start_and_not_its_end() {
    let s = state(
        "window",
        &[
            row("u1", 1.0, "2024-06-01T10:00:00Z"),
            row("u1", 2.0, "2024-06-01T11:59:59.999999999Z"),
            row("u1", 4.0, "2024-06-01T12:00:00Z"),
            row("u1", 8.0, "2024-06-01T13:00:00Z"),
        ],
        "2024-06-01T12:30:00Z",
    );
    // The backfill ends at the last boundary (12:00): the 12:00 row waits for its window.
    assert_eq!(
        online_sum(&s, "spend", "u1", "2024-06-01T12:30:00Z"),
        Value::Float(3.0)
    );
    advance_to(&s, "2024-06-01T13:00:00Z");
    // [12:00, 13:00) took the row at 12:00, not the one at 13:00.
    assert_eq!(
        online_sum(&s, "spend", "u1", "2024-06-01T13:00:00Z"),
        Value::Float(7.0)
    );
    let jobs = s.batch.jobs();
    let spend = view(&s, "spend");
    let last = jobs.iter().rfind(|j| j.view == spend).expect("a job ran");
    assert_eq!(
        (last.start, last.end, last.rows),
        (t("2024-06-01T12:00:00Z"), t("2024-06-01T13:00:00Z"), 1)
    );
    advance_to(&s, "2024-06-01T14:00:00Z");
    assert_eq!(
        online_sum(&s, "spend", "u1", "2024-06-01T14:00:00Z"),
        Value::Float(15.0)
    );
    // Offline retrieval agrees with the batch output.
    assert_eq!(
        offline(&s, "u1", "2024-06-01T14:00:00Z")["spend__amt_sum_1d_continuous"],
        json!(15.0)
    );
}

#[test]
fn a_row_arriving_after_its_window_ran_is_left_out_until_a_rerun() {
    let s = state(
        "late",
        &[row("u1", 1.0, "2024-06-01T12:10:00Z")],
        "2024-06-01T12:30:00Z",
    );
    advance_to(&s, "2024-06-01T13:00:00Z");
    assert_eq!(
        online_sum(&s, "spend", "u1", "2024-06-01T13:00:00Z"),
        Value::Float(1.0)
    );
    // A row for [12:00, 13:00) reaches the batch source after that job ran.
    let appended = s
        .batch_append(
            "events",
            &[json!({"user_id": "u1", "amt": 2.0, "ts": "2024-06-01T12:20:00Z"})],
        )
        .expect("append");
    assert_eq!(appended.appended, 1);
    // The next job covers only its own window.
    advance_to(&s, "2024-06-01T14:00:00Z");
    assert_eq!(
        online_sum(&s, "spend", "u1", "2024-06-01T14:00:00Z"),
        Value::Float(1.0)
    );
    assert_eq!(
        offline(&s, "u1", "2024-06-01T14:00:00Z")["spend__amt_sum_1d_continuous"],
        json!(1.0)
    );
    let spend = view(&s, "spend");
    let ran = s
        .batch
        .jobs()
        .into_iter()
        .find(|j| j.view == spend && j.start == t("2024-06-01T12:00:00Z"))
        .expect("the 12:00 job");
    assert_eq!(ran.to_json(&s)["arrived_after"], json!(1));
    // An overwrite job of the window picks it up, online and offline.
    let rerun = super::schedule::run_now(
        &s,
        "spend",
        t("2024-06-01T12:00:00Z"),
        t("2024-06-01T13:00:00Z"),
    )
    .expect("rerun");
    assert_eq!(rerun.rows, 2);
    assert_eq!(
        online_sum(&s, "spend", "u1", "2024-06-01T14:00:00Z"),
        Value::Float(3.0)
    );
    assert_eq!(
        offline(&s, "u1", "2024-06-01T14:00:00Z")["spend__amt_sum_1d_continuous"],
        json!(3.0)
    );
}

#[test]
fn batch_output_replaces_the_streams_rows_for_its_keys_and_interval_only() {
    let s = state(
        "precedence",
        &[row("u1", 1.0, "2024-06-01T12:20:00Z")],
        "2024-06-01T12:30:00Z",
    );
    // The stream wrote u1 and u2 in [12:00, 13:00), and u1 after it.
    push(&s, "u1", 100.0, "2024-06-01T12:10:00Z");
    push(&s, "u2", 50.0, "2024-06-01T12:10:00Z");
    push(&s, "u1", 1000.0, "2024-06-01T13:10:00Z");
    assert_eq!(
        online_sum(&s, "spend", "u1", "2024-06-01T12:30:00Z"),
        Value::Float(100.0)
    );
    advance_to(&s, "2024-06-01T13:30:00Z");
    // u1's interval now holds the batch row only; its later stream row stays.
    assert_eq!(
        online_sum(&s, "spend", "u1", "2024-06-01T13:30:00Z"),
        Value::Float(1001.0)
    );
    // u2 is not in the batch output: its stream row stays.
    assert_eq!(
        online_sum(&s, "spend", "u2", "2024-06-01T13:30:00Z"),
        Value::Float(50.0)
    );
    // TIME_INTERVAL: the [12:00, 13:00) tile of u1 is the batch's.
    assert_eq!(
        online_sum(&s, "tiles", "u1", "2024-06-01T13:30:00Z"),
        Value::Float(1.0)
    );
    // Attributes: the online row of u1 is the stream's 13:10 row (newer than the interval).
    match s.online.get(view(&s, "last_amt"), &key("u1")) {
        Some(OnlineEntry::Attributes(r)) => assert_eq!(r.values, [Value::Float(1000.0)]),
        other => panic!("expected an attribute row, got {other:?}"),
    }
    // Offline retrieval agrees with online for both keys.
    let u1 = offline(&s, "u1", "2024-06-01T13:30:00Z");
    assert_eq!(u1["spend__amt_sum_1d_continuous"], json!(1001.0));
    assert_eq!(u1["tiles__amt_sum_2h_1h"], json!(1.0));
    assert_eq!(u1["last_amt__amt"], json!(1000.0));
    let u2 = offline(&s, "u2", "2024-06-01T13:30:00Z");
    assert_eq!(u2["spend__amt_sum_1d_continuous"], json!(50.0));
    // Before 13:10, the attribute is the batch row (the stream's 12:10 row was replaced).
    let u1_early = offline(&s, "u1", "2024-06-01T12:50:00Z");
    assert_eq!(u1_early["last_amt__amt"], json!(1.0));
}

#[test]
fn feature_start_time_filters_attribute_rows_not_aggregate_ones() {
    let s = state(
        "fst",
        &[
            row("u3", 5.0, "2024-05-31T23:00:00Z"),
            row("u4", 5.0, "2024-05-31T23:00:00Z"),
            row("u4", 6.0, "2024-06-01T01:00:00Z"),
        ],
        "2024-06-01T12:30:00Z",
    );
    let last = view(&s, "last_amt");
    // last_amt starts 2024-06-01: u3's only row is before it.
    assert!(s.online.get(last, &key("u3")).is_none());
    match s.online.get(last, &key("u4")) {
        Some(OnlineEntry::Attributes(r)) => assert_eq!(r.values, [Value::Float(6.0)]),
        other => panic!("expected u4's row, got {other:?}"),
    }
    // Aggregates keep every event: `spend` (start 2024-01-01) counts u3.
    assert_eq!(
        online_sum(&s, "spend", "u3", "2024-06-01T12:30:00Z"),
        Value::Float(5.0)
    );
    // An aggregate view's backfill starts one reach before its start.
    let spend = &s.repo.feature_views[view(&s, "spend")];
    let reach = spend.series_spec().map(|sp| sp.reach()).unwrap_or(0);
    assert_eq!(
        crate::decisions::backfill_start(spend),
        t("2024-01-01T00:00:00Z") - reach
    );
    assert_eq!(
        crate::decisions::backfill_start(&s.repo.feature_views[last]),
        t("2024-06-01T00:00:00Z")
    );
}

#[test]
fn bad_rows_are_counted_and_named_by_line() {
    let s = state(
        "bad",
        &[
            row("u1", 1.0, "2024-06-01T10:00:00Z"),
            "{\"user_id\": \"u1\", \"amt\": \"x\", \"ts\": \"2024-06-01T10:00:00Z\"}".into(),
            "not json".into(),
        ],
        "2024-06-01T12:30:00Z",
    );
    let views = super::schedule::views_json(&s);
    let src = &views["sources"][0];
    assert_eq!(src["rows"], json!(1));
    assert_eq!(src["invalid"], json!(2));
    let at: Vec<&str> = src["errors"]
        .as_array()
        .map(|a| a.iter().filter_map(|e| e["at"].as_str()).collect())
        .unwrap_or_default();
    assert!(at[0].ends_with("history.jsonl:2"), "{at:?}");
    assert!(at[1].ends_with("history.jsonl:3"), "{at:?}");
}

#[test]
fn a_missing_file_is_a_start_error_naming_it() {
    let repo = repo(std::path::Path::new("/nonexistent/history.jsonl"));
    let s = MockState::new(&Config::new(repo).virtual_clock(t("2024-06-01T12:30:00Z")));
    let err = s.start_batch().expect_err("missing file");
    let msg = err.to_string();
    assert!(msg.contains("/nonexistent/history.jsonl"), "{msg}");
    assert!(msg.contains("`events`"), "{msg}");
}

#[test]
fn reset_forgets_jobs_and_appended_rows_but_keeps_the_file() {
    let s = state(
        "reset",
        &[row("u1", 1.0, "2024-06-01T10:00:00Z")],
        "2024-06-01T12:30:00Z",
    );
    s.batch_append(
        "events",
        &[json!({"user_id": "u1", "amt": 2.0, "ts": "2024-06-01T10:30:00Z"})],
    )
    .expect("append");
    s.reset().expect("reset");
    assert!(s.batch.jobs().is_empty());
    let spend = view(&s, "spend");
    assert!(s.batch.materialized(spend).is_some_and(|m| m.is_empty()));
    assert_eq!(
        online_sum(&s, "spend", "u1", "2024-06-01T12:30:00Z"),
        Value::Null
    );
    // A manual run finds the file's row again, not the appended one.
    let run = super::schedule::run_now(
        &s,
        "spend",
        t("2024-06-01T00:00:00Z"),
        t("2024-06-01T12:00:00Z"),
    )
    .expect("run");
    assert_eq!(run.rows, 1);
    assert_eq!(
        online_sum(&s, "spend", "u1", "2024-06-01T12:30:00Z"),
        Value::Float(1.0)
    );
}

#[test]
fn materialized_rows_are_parquet_files_in_the_offline_store_and_read_back_the_same() {
    let path = batch_file(
        "parquet",
        &[
            row("u1", 1.0, "2024-06-01T10:00:00Z"),
            row("u1", 2.0, "2024-06-01T11:00:00Z"),
            row("u2", 4.0, "2024-06-01T11:30:00Z"),
        ]
        .join("\n"),
    );
    let dir = std::env::temp_dir().join(format!("tecton-sim-batch-parquet-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let s = MockState::new(
        &Config::new(repo(&path))
            .virtual_clock(t("2024-06-01T12:30:00Z"))
            .data_dir(&dir)
            .keep_data(true),
    );
    s.start_batch().expect("batch file loads");
    let before = offline(&s, "u1", "2024-06-01T12:00:00Z");
    assert_eq!(before["spend__amt_sum_1d_continuous"], json!(3.0));
    assert_eq!(before["last_amt__amt"], json!(2.0));
    // The mock's own copy keeps no values: they are in the offline store.
    let spend = view(&s, "spend");
    let memory = s
        .batch
        .materialized(spend)
        .expect("spend reads a batch source");
    assert_eq!(memory.len(), 3);
    assert!(memory.rows().all(|(_, r)| r.values.is_empty()));
    s.offline.flush().expect("flush");
    let files: Vec<PathBuf> =
        std::fs::read_dir(dir.join("offline/_materialized.spend/date=2024-06-01"))
            .expect("the view's partition directory")
            .map(|e| e.expect("entry").path())
            .collect();
    assert!(
        files
            .iter()
            .any(|p| p.extension().is_some_and(|e| e == "parquet")),
        "{files:?}"
    );
    let index = crate::store::OfflineLog::materialized_index(&s.repo, spend);
    assert_eq!(s.offline.rows(index).expect("rows").len(), 3);
    // Read back from the files, retrieval answers as before, and the consistency check's
    // replay finds the backfill there too.
    assert_eq!(offline(&s, "u1", "2024-06-01T12:00:00Z"), before);
    let report = consistency(
        &s,
        &[
            ("u1", "2024-06-01T12:30:00Z"),
            ("u2", "2024-06-01T12:30:00Z"),
        ],
        crate::consistency::Arrival::EventTime,
    );
    assert!(report.consistent, "{}", report.to_markdown());
    // A rerun of the window replaces the key's rows there: the newer job wins on read-back.
    s.batch_append(
        "events",
        &[json!({"user_id": "u1", "amt": 10.0, "ts": "2024-06-01T10:30:00Z"})],
    )
    .expect("append");
    crate::batch::schedule::run_now(
        &s,
        "spend",
        t("2024-06-01T10:00:00Z"),
        t("2024-06-01T12:00:00Z"),
    )
    .expect("manual run");
    assert_eq!(
        offline(&s, "u1", "2024-06-01T12:00:00Z")["spend__amt_sum_1d_continuous"],
        json!(13.0)
    );
    s.offline.flush().expect("flush");
    assert_eq!(
        s.offline.rows(index).expect("rows").len(),
        7,
        "the backfill's 3 rows and the rerun's 4 are logged"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The consistency check of the service at `points` (user, time), every differing row listed.
fn consistency(
    state: &MockState,
    points: &[(&str, &str)],
    arrival: crate::consistency::Arrival,
) -> crate::consistency::ConsistencyReport {
    let spine: Vec<SpineRow> = points
        .iter()
        .map(|(u, at)| SpineRow {
            join_keys: json!({"user_id": u})
                .as_object()
                .cloned()
                .unwrap_or_default(),
            timestamp: t(at),
        })
        .collect();
    let options = crate::consistency::CheckOptions {
        arrival,
        max_rows: 1_000,
    };
    crate::consistency::check(state, "svc", &spine, &options).expect("consistency check")
}

/// The differing rows as `(user, time, feature, online, offline, first cause)`.
fn differing(
    report: &crate::consistency::ConsistencyReport,
) -> Vec<(
    String,
    String,
    String,
    Json,
    Json,
    crate::consistency::Cause,
)> {
    report
        .differences
        .iter()
        .map(|d| {
            (
                d.join_keys["user_id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                d.timestamp.clone(),
                d.feature.clone(),
                d.online.clone(),
                d.offline.clone(),
                d.causes[0],
            )
        })
        .collect()
}

#[test]
fn the_consistency_checks_online_side_holds_the_backfill_from_when_it_ran() {
    use crate::consistency::{Arrival, Cause};
    // The mock starts at 12:30: the backfill writes the rows before 12:00, online and offline.
    let s = state(
        "consistency-backfill",
        &[
            row("u1", 1.0, "2024-06-01T10:00:00Z"),
            row("u1", 2.0, "2024-06-01T11:00:00Z"),
            row("u2", 4.0, "2024-06-01T11:30:00Z"),
        ],
        "2024-06-01T12:30:00Z",
    );
    // No record was pushed: at and after the backfill, online is what offline retrieval gives.
    let after = [
        ("u1", "2024-06-01T12:30:00Z"),
        ("u2", "2024-06-01T12:30:00Z"),
        ("u1", "2024-06-01T12:59:00Z"),
        ("u2", "2024-06-01T12:59:00Z"),
    ];
    let report = consistency(&s, &after, Arrival::EventTime);
    assert!(report.consistent, "{}", report.to_markdown());
    for f in &report.features {
        assert_eq!(
            (f.mismatch_rate, f.missing_rate, f.extra_rate),
            (0.0, 0.0, 0.0),
            "{}",
            report.to_markdown()
        );
    }
    // And the values are the backfill's, not empty windows on both sides.
    assert_eq!(
        offline(&s, "u1", "2024-06-01T12:30:00Z")["spend__amt_sum_1d_continuous"],
        json!(3.0)
    );
    // Before the mock started nothing was served: offline has the rows, online is missing them
    // because the job ran after the point.
    let report = consistency(&s, &[("u2", "2024-06-01T12:00:00Z")], Arrival::EventTime);
    let spend = report
        .features
        .iter()
        .find(|f| f.feature == "spend.amt_sum_1d_continuous")
        .expect("spend is served");
    assert_eq!(spend.missing_rate, 1.0, "{}", report.to_markdown());
    let rows = differing(&report);
    assert_eq!(rows.len(), 3, "every feature differs: {rows:?}");
    assert!(
        rows.iter()
            .all(|r| r.3 == Json::Null && r.4 == json!(4.0) && r.5 == Cause::BatchJobAfterPoint),
        "{rows:?}"
    );
}

#[test]
fn a_scheduled_job_replaces_the_streams_tiles_online_from_when_it_ran() {
    use crate::consistency::{Arrival, Cause};
    let s = state(
        "consistency-scheduled",
        &[
            row("u1", 1.0, "2024-06-01T12:20:00Z"),
            row("u2", 2.0, "2024-06-01T12:20:00Z"),
        ],
        "2024-06-01T12:30:00Z",
    );
    // The stream writes both keys in [12:00, 13:00) before its job runs at 13:30.
    push(&s, "u1", 100.0, "2024-06-01T12:10:00Z");
    push(&s, "u2", 50.0, "2024-06-01T12:10:00Z");
    advance_to(&s, "2024-06-01T13:30:00Z");
    // At the job's instant and after it, a record for u1 in the materialized interval: too late
    // for its job, so it stays online while offline reads the batch rows (Tecton's skew).
    push(&s, "u1", 1000.0, "2024-06-01T12:40:00Z");
    let points = [
        ("u1", "2024-06-01T12:45:00Z"),
        ("u2", "2024-06-01T12:45:00Z"),
        ("u2", "2024-06-01T13:30:00Z"),
        ("u1", "2024-06-01T13:45:00Z"),
        ("u2", "2024-06-01T13:45:00Z"),
    ];
    let report = consistency(&s, &points, Arrival::Ingestion);
    let rows = differing(&report);
    let at = |u: &str, time: &str, feature: &str| {
        rows.iter()
            .find(|r| r.0 == u && r.1 == time && r.2 == feature)
            .map(|r| (r.3.clone(), r.4.clone(), r.5))
    };
    const SPEND: &str = "spend.amt_sum_1d_continuous";
    // Before the job ran, online serves the stream's values; offline already reads the job's.
    assert_eq!(
        at("u1", "2024-06-01T12:45:00Z", SPEND),
        Some((json!(100.0), json!(1.0), Cause::BatchJobAfterPoint)),
        "{}",
        report.to_markdown()
    );
    assert_eq!(
        at("u2", "2024-06-01T12:45:00Z", SPEND),
        Some((json!(50.0), json!(2.0), Cause::BatchJobAfterPoint)),
        "{}",
        report.to_markdown()
    );
    // After it ran, u2 agrees on every feature: the job replaced its stream tile and row.
    assert!(
        rows.iter()
            .all(|r| !(r.0 == "u2" && r.1.as_str() >= "2024-06-01T13:30:00Z")),
        "{}",
        report.to_markdown()
    );
    assert_eq!(
        online_sum(&s, "spend", "u2", "2024-06-01T13:45:00Z"),
        Value::Float(2.0)
    );
    // u1's late record shows online (as the running mock serves it), not offline.
    assert_eq!(
        at("u1", "2024-06-01T13:45:00Z", SPEND),
        Some((json!(1001.0), json!(1.0), Cause::AfterBatchJob)),
        "{}",
        report.to_markdown()
    );
    assert_eq!(
        online_sum(&s, "spend", "u1", "2024-06-01T13:45:00Z"),
        Value::Float(1001.0)
    );
    assert_eq!(
        at("u1", "2024-06-01T13:45:00Z", "last_amt.amt"),
        Some((json!(1000.0), json!(1.0), Cause::AfterBatchJob)),
        "{}",
        report.to_markdown()
    );
    // A manual run of the window after the late record takes it back into the batch's hands.
    advance_to(&s, "2024-06-01T13:50:00Z");
    super::schedule::run_now(
        &s,
        "spend",
        t("2024-06-01T12:00:00Z"),
        t("2024-06-01T13:00:00Z"),
    )
    .expect("manual run");
    let report = consistency(&s, &[("u1", "2024-06-01T13:55:00Z")], Arrival::Ingestion);
    let spend = report
        .features
        .iter()
        .find(|f| f.feature == SPEND)
        .expect("spend is served");
    assert_eq!(spend.mismatch_rate, 0.0, "{}", report.to_markdown());
}

#[test]
fn running_jobs_through_a_stretch_runs_each_window_when_it_ended() {
    use crate::consistency::Arrival;
    let s = state(
        "through",
        &[
            row("u1", 1.0, "2024-06-01T12:20:00Z"),
            row("u1", 2.0, "2024-06-01T13:20:00Z"),
        ],
        "2024-06-01T12:30:00Z",
    );
    s.run_batch_jobs_through(t("2024-06-01T15:10:00Z"));
    assert_eq!(s.clock.now(), t("2024-06-01T15:10:00Z"));
    let spend = view(&s, "spend");
    let ran: Vec<(i64, i64, usize)> = s
        .batch
        .jobs()
        .into_iter()
        .filter(|j| j.view == spend && j.kind == super::schedule::JobKind::Scheduled)
        .map(|j| (j.end, j.ran_at, j.rows))
        .collect();
    let h = |s: &str| t(&format!("2024-06-01T{s}:00:00Z"));
    assert_eq!(
        ran,
        [
            (h("13"), h("13"), 1),
            (h("14"), h("14"), 1),
            (h("15"), h("15"), 0)
        ]
    );
    // The check sees each row online from its window's end: at 13:10 the 12:20 row only, while
    // offline already counts the 13:20 row at 13:30.
    let report = consistency(
        &s,
        &[
            ("u1", "2024-06-01T13:10:00Z"),
            ("u1", "2024-06-01T14:00:00Z"),
        ],
        Arrival::EventTime,
    );
    assert!(report.consistent, "{}", report.to_markdown());
    let report = consistency(&s, &[("u1", "2024-06-01T13:30:00Z")], Arrival::EventTime);
    let rows = differing(&report);
    assert!(
        rows.iter().any(|r| r.2 == "spend.amt_sum_1d_continuous"
            && r.3 == json!(1.0)
            && r.4 == json!(3.0)),
        "{rows:?}"
    );
}

/// One step of a random history: a record pushed, the clock moved (scheduled jobs run), a row
/// appended to the batch source, or a manual run of a window.
#[derive(Debug, Clone)]
enum Step {
    Push { user: u8, amt: u8, minute: u16 },
    Advance { tens: u8 },
    Append { user: u8, amt: u8, minute: u16 },
    Manual { view: u8, hour: u8, hours: u8 },
}

fn step() -> impl proptest::strategy::Strategy<Value = Step> {
    use proptest::prelude::*;
    prop_oneof![
        3 => (0u8..2, 1u8..100, 0u16..300).prop_map(|(user, amt, minute)| Step::Push { user, amt, minute }),
        2 => (1u8..9).prop_map(|tens| Step::Advance { tens }),
        1 => (0u8..2, 1u8..100, 0u16..300).prop_map(|(user, amt, minute)| Step::Append { user, amt, minute }),
        1 => (0u8..3, 9u8..15, 1u8..3).prop_map(|(view, hour, hours)| Step::Manual { view, hour, hours }),
    ]
}

fn at_minute(minute: u16) -> String {
    crate::schema::format_rfc3339(
        t("2024-06-01T10:00:00Z") + i64::from(minute) * crate::duration::MINUTE,
    )
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 64, ..Default::default() })]

    /// Whatever mix of records, clock moves, appends and manual runs: the replay's online side at
    /// the end is what the running mock serves then (its jobs applied as the mock applied
    /// them), and every difference from offline names a cause.
    #[test]
    fn the_replay_with_batch_jobs_ends_where_the_running_mock_is(
        history in proptest::collection::vec((0u8..2, 1u8..100, 0u16..300), 0..4),
        steps in proptest::collection::vec(step(), 0..16),
    ) {
        let users = ["u1", "u2"];
        let rows: Vec<String> = history
            .iter()
            .map(|&(u, amt, m)| row(users[usize::from(u)], f64::from(amt), &at_minute(m)))
            .collect();
        let s = state("replay-property", &rows, "2024-06-01T12:30:00Z");
        for st in &steps {
            match *st {
                Step::Push { user, amt, minute } => {
                    push(&s, users[usize::from(user)], f64::from(amt), &at_minute(minute));
                }
                Step::Advance { tens } => {
                    s.clock.advance(i64::from(tens) * 10 * crate::duration::MINUTE);
                    s.run_streams();
                }
                Step::Append { user, amt, minute } => {
                    s.batch_append(
                        "events",
                        &[json!({"user_id": users[usize::from(user)], "amt": amt, "ts": at_minute(minute)})],
                    )
                    .expect("append");
                }
                Step::Manual { view, hour, hours } => {
                    let start = t("2024-06-01T00:00:00Z") + i64::from(hour) * crate::duration::HOUR;
                    super::schedule::run_now(
                        &s,
                        ["spend", "tiles", "last_amt"][usize::from(view)],
                        start,
                        start + i64::from(hours) * crate::duration::HOUR,
                    )
                    .expect("manual run");
                }
            }
        }
        // Every difference at any time names a cause.
        let times: Vec<String> = (0..16)
            .map(|i| at_minute(120 + i * 20))
            .collect();
        let past: Vec<(&str, &str)> = ["u1", "u2"]
            .iter()
            .flat_map(|u| times.iter().map(move |at| (*u, at.as_str())))
            .collect();
        let report = consistency(&s, &past, crate::consistency::Arrival::Ingestion);
        for r in differing(&report) {
            proptest::prop_assert!(
                r.5 != crate::consistency::Cause::Unexplained,
                "{}",
                report.to_markdown()
            );
        }
        let now = crate::schema::format_rfc3339(s.clock.now());
        let points: Vec<(&str, &str)> = ["u1", "u2", "u3"].iter().map(|u| (*u, now.as_str())).collect();
        let report = consistency(&s, &points, crate::consistency::Arrival::Ingestion);
        let rows = differing(&report);
        let fs = s.repo.feature_service("svc").expect("service");
        let features = crate::serving::served_features(&s.repo, fs);
        for (user, _) in &points {
            let keys = json!({"user_id": user}).as_object().cloned().unwrap_or_default();
            let live = crate::serving::online_vector(
                &s.repo,
                &s.online,
                &features,
                &keys,
                s.clock.now(),
                crate::serving::UnknownEntity::EmptyWindow,
            )
            .expect("live vector");
            let offline = offline(&s, user, &now);
            for (f, v) in features.iter().zip(live) {
                let replayed = rows
                    .iter()
                    .find(|r| r.0 == *user && r.2 == f.name)
                    .map_or_else(|| offline[f.name.replacen('.', "__", 1)].clone(), |r| r.3.clone());
                proptest::prop_assert_eq!(
                    &replayed,
                    &v.value.to_plain_json(),
                    "{} {}: {}",
                    user,
                    &f.name,
                    report.to_markdown()
                );
            }
        }
    }
}
