//! Batch sources over HTTP: a repository whose sources have `batch_config` files in JSON Lines,
//! CSV and Parquet is backfilled at start; get-features answers the backfilled values and
//! offline retrieval agrees; scheduled jobs run as the virtual clock moves; a late row needs a
//! manual run. Plus the repository checks of `batch_config`.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use mock_tecton::{Config, Repository};
use serde_json::{json, Value};

/// 2024-06-01T12:30:00Z.
const NOW: i64 = 1_717_245_000_000_000_000;

fn scratch(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("tecton-sim-batch-it-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

const REPO: &str = r#"
[[workspaces]]
name = "prod"

[[service_accounts]]
name = "reader"
api_key = "reader-key"
roles = { prod = "consumer" }

[[entities]]
name = "user"
join_keys = [{ name = "user_id", type = "String" }]

[[push_sources]]
name = "clicks"
schema = [
  { name = "user_id", type = "String" },
  { name = "amt", type = "Float64" },
  { name = "ts", type = "Timestamp" },
]
batch_config = { path = "clicks.jsonl" }

[[push_sources]]
name = "orders"
schema = [
  { name = "user_id", type = "String" },
  { name = "amt", type = "Float64" },
  { name = "ts", type = "Timestamp" },
]
batch_config = { path = "data/orders.csv", format = "csv" }

[[stream_sources]]
name = "payments"
topic = "payments"
schema = [
  { name = "user_id", type = "String" },
  { name = "amt", type = "Float64" },
  { name = "ts", type = "Timestamp" },
]
batch_config = { path = "payments.parquet", format = "parquet", timestamp_field = "event_time" }

[[feature_views]]
name = "click_sum"
sources = ["clicks"]
entities = ["user"]
feature_start_time = "2024-01-01T00:00:00Z"
batch_schedule = "1h"
aggregations = [{ column = "amt", function = "sum", window = "1d" }]

[[feature_views]]
name = "order_last"
sources = ["orders"]
entities = ["user"]
feature_start_time = "2024-01-01T00:00:00Z"
attributes = ["amt"]

[[feature_views]]
name = "payment_sum"
sources = ["payments"]
entities = ["user"]
feature_start_time = "2024-01-01T00:00:00Z"
aggregation_interval = "1h"
aggregations = [{ column = "amt", function = "sum", window = "1d" }]

[[feature_services]]
name = "svc"
features = ["click_sum", "order_last", "payment_sum"]
"#;

/// Writes `payments.parquet`: user_id, amt and a nanosecond `event_time` (pyarrow's default
/// for pandas timestamps).
fn write_parquet(path: &Path, rows: &[(&str, f64, i64)]) {
    use parquet::data_type::{ByteArray, ByteArrayType, DoubleType, Int64Type};
    use parquet::file::properties::WriterProperties;
    use parquet::file::writer::SerializedFileWriter;
    use parquet::schema::parser::parse_message_type;

    let schema = parse_message_type(
        "message payments {
            REQUIRED BYTE_ARRAY user_id (UTF8);
            REQUIRED DOUBLE amt;
            REQUIRED INT64 event_time (TIMESTAMP(NANOS,true));
        }",
    )
    .expect("schema");
    let file = std::fs::File::create(path).expect("parquet file");
    let mut writer = SerializedFileWriter::new(
        file,
        Arc::new(schema),
        Arc::new(WriterProperties::builder().build()),
    )
    .expect("writer");
    let mut group = writer.next_row_group().expect("row group");
    let users: Vec<ByteArray> = rows.iter().map(|r| ByteArray::from(r.0)).collect();
    let amts: Vec<f64> = rows.iter().map(|r| r.1).collect();
    let times: Vec<i64> = rows.iter().map(|r| r.2).collect();
    let mut col = group.next_column().expect("column").expect("user_id");
    col.typed::<ByteArrayType>()
        .write_batch(&users, None, None)
        .expect("user_id");
    col.close().expect("close");
    let mut col = group.next_column().expect("column").expect("amt");
    col.typed::<DoubleType>()
        .write_batch(&amts, None, None)
        .expect("amt");
    col.close().expect("close");
    let mut col = group.next_column().expect("column").expect("event_time");
    col.typed::<Int64Type>()
        .write_batch(&times, None, None)
        .expect("event_time");
    col.close().expect("close");
    group.close().expect("row group");
    writer.close().expect("parquet written");
}

fn ns(s: &str) -> i64 {
    mock_tecton::schema::parse_timestamp(s).expect("timestamp")
}

/// A repository directory with the three batch files.
fn repo_dir(name: &str) -> PathBuf {
    let dir = scratch(name);
    std::fs::write(dir.join("repo.toml"), REPO).expect("repo");
    std::fs::write(
        dir.join("clicks.jsonl"),
        [
            r#"{"user_id": "u1", "amt": 1.0, "ts": "2024-06-01T10:00:00Z"}"#,
            r#"{"user_id": "u1", "amt": 2.0, "ts": "2024-06-01T11:00:00Z"}"#,
            r#"{"user_id": "u2", "amt": 5.0, "ts": "2024-06-01T11:30:00Z"}"#,
            r#"{"user_id": "u1", "amt": 4.0, "ts": "2024-06-01T12:10:00Z"}"#,
        ]
        .join("\n"),
    )
    .expect("jsonl");
    std::fs::create_dir_all(dir.join("data")).expect("data dir");
    std::fs::write(
        dir.join("data/orders.csv"),
        "ts,user_id,amt,extra\n\
         2024-05-30T09:00:00Z,u1,7.5,x\n\
         2024-05-31T09:00:00Z,u1,\"9.25\",y\n\
         2024-05-31T10:00:00Z,u2,,z\n",
    )
    .expect("csv");
    write_parquet(
        &dir.join("payments.parquet"),
        &[
            ("u1", 10.0, ns("2024-06-01T09:15:00Z")),
            ("u1", 20.0, ns("2024-06-01T11:45:00Z")),
            ("u2", 40.0, ns("2024-06-01T11:50:00Z")),
        ],
    );
    dir
}

async fn start(dir: &Path) -> common::Harness {
    let repo = Repository::from_file(&dir.join("repo.toml")).expect("repository is valid");
    common::start(Config::new(repo).virtual_clock(NOW)).await
}

/// get-features for `user` as `{feature: value}`, with the names from the metadata.
async fn online(h: &common::Harness, user: &str) -> Value {
    let body = json!({"params": {"workspaceName": "prod", "featureServiceName": "svc",
        "joinKeyMap": {"user_id": user}, "metadataOptions": {"includeNames": true}}});
    let (status, resp) = h
        .post_raw(
            "/api/v1/feature-service/get-features",
            Some("reader-key"),
            body.to_string(),
        )
        .await;
    assert_eq!(status, 200, "{resp}");
    let names = resp["metadata"]["features"]
        .as_array()
        .expect("metadata.features");
    let values = resp["result"]["features"].as_array().expect("features");
    names
        .iter()
        .zip(values)
        .map(|(n, v)| {
            (
                n["name"].as_str().unwrap_or("").replace('.', "__"),
                v.clone(),
            )
        })
        .collect::<serde_json::Map<_, _>>()
        .into()
}

/// Offline features for `user` at `at`.
async fn offline(h: &common::Harness, user: &str, at: &str) -> Value {
    let (status, resp) = h
        .post_raw(
            "/_mock/offline/features",
            None,
            json!({"spine": [{"user_id": user, "timestamp": at}]}).to_string(),
        )
        .await;
    assert_eq!(status, 200, "{resp}");
    resp["rows"][0].clone()
}

#[tokio::test]
async fn jsonl_csv_and_parquet_batch_sources_are_backfilled_online_and_offline() {
    let dir = repo_dir("backfill");
    let h = start(&dir).await;
    let on = online(&h, "u1").await;
    // JSONL: the rows before the last hourly boundary (12:00); 12:10 waits for its job.
    assert_eq!(on["click_sum__amt_sum_1d_continuous"], json!(3.0), "{on}");
    // CSV: the attribute's latest row (daily schedule; quoted cells, extra columns ignored).
    assert_eq!(on["order_last__amt"], json!(9.25), "{on}");
    // Parquet with its own event-time column, into a stream source's TIME_INTERVAL view.
    assert_eq!(on["payment_sum__amt_sum_1d_1h"], json!(30.0), "{on}");
    // An empty CSV cell is null.
    let u2 = online(&h, "u2").await;
    assert_eq!(u2["order_last__amt"], Value::Null, "{u2}");
    assert_eq!(u2["payment_sum__amt_sum_1d_1h"], json!(40.0), "{u2}");

    // Offline retrieval agrees at the same time.
    let off = offline(&h, "u1", "2024-06-01T12:30:00Z").await;
    for f in [
        "click_sum__amt_sum_1d_continuous",
        "order_last__amt",
        "payment_sum__amt_sum_1d_1h",
    ] {
        assert_eq!(off[f], on[f], "{f}: offline {off} online {on}");
    }

    let jobs = h.admin("/batch/jobs").await;
    let kinds: Vec<&str> = jobs["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .filter_map(|j| j["kind"].as_str())
        .collect();
    assert_eq!(kinds, ["backfill", "backfill", "backfill"], "{jobs}");
    let sources = jobs["sources"].as_array().expect("sources");
    assert_eq!(sources.len(), 3);
    assert!(sources.iter().all(|s| s["invalid"] == json!(0)), "{jobs}");
    h.mock.shutdown().await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn scheduled_jobs_follow_the_clock_and_a_late_row_needs_a_rerun() {
    let dir = repo_dir("schedule");
    let h = start(&dir).await;
    // 13:00: the [12:00, 13:00) job of click_sum takes the 12:10 row.
    let (status, _) = h
        .post_raw("/_mock/clock", None, json!({"advance": "30m"}).to_string())
        .await;
    assert_eq!(status, 200);
    let on = online(&h, "u1").await;
    assert_eq!(on["click_sum__amt_sum_1d_continuous"], json!(7.0), "{on}");

    // A row for that window reaches the batch source after its job ran.
    let (status, appended) = h
        .post_raw(
            "/_mock/batch/sources/clicks/rows",
            None,
            concat!(
                r#"{"user_id": "u1", "amt": 8.0, "ts": "2024-06-01T12:40:00Z"}"#,
                "\n",
                r#"{"user_id": "u1", "amt": "oops", "ts": "2024-06-01T12:40:00Z"}"#
            ),
        )
        .await;
    assert_eq!(status, 200, "{appended}");
    assert_eq!(appended["appended"], json!(1), "{appended}");
    assert_eq!(
        appended["invalid"][0]["at"],
        json!("records[1]"),
        "{appended}"
    );
    let (status, _) = h
        .post_raw("/_mock/clock", None, json!({"advance": "1h"}).to_string())
        .await;
    assert_eq!(status, 200);
    let on = online(&h, "u1").await;
    assert_eq!(on["click_sum__amt_sum_1d_continuous"], json!(7.0), "{on}");
    let jobs = h.admin("/batch/jobs?view=click_sum").await;
    let window = jobs["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .find(|j| j["start"] == json!("2024-06-01T12:00:00Z"))
        .cloned()
        .expect("the 12:00 job");
    assert_eq!(window["arrived_after"], json!(1), "{jobs}");

    // An overwrite run of the window brings it in, online and offline.
    let (status, run) = h
        .post_raw(
            "/_mock/batch/click_sum/run",
            None,
            json!({"start": "2024-06-01T12:00:00Z", "end": "2024-06-01T13:00:00Z"}).to_string(),
        )
        .await;
    assert_eq!(status, 200, "{run}");
    assert_eq!(run["kind"], json!("manual"));
    assert_eq!(run["rows"], json!(2));
    let on = online(&h, "u1").await;
    assert_eq!(on["click_sum__amt_sum_1d_continuous"], json!(15.0), "{on}");
    let off = offline(&h, "u1", "2024-06-01T14:00:00Z").await;
    assert_eq!(
        off["click_sum__amt_sum_1d_continuous"],
        json!(15.0),
        "{off}"
    );

    // Refusals: an unknown view, a window that is not start < end.
    let (status, _) = h
        .post_raw(
            "/_mock/batch/nope/run",
            None,
            json!({"start": "2024-06-01T12:00:00Z", "end": "2024-06-01T13:00:00Z"}).to_string(),
        )
        .await;
    assert_eq!(status, 404);
    let (status, err) = h
        .post_raw(
            "/_mock/batch/click_sum/run",
            None,
            json!({"start": "2024-06-01T13:00:00Z", "end": "2024-06-01T12:00:00Z"}).to_string(),
        )
        .await;
    assert_eq!(status, 400, "{err}");
    h.mock.shutdown().await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_missing_batch_file_stops_the_start_with_its_name() {
    let dir = repo_dir("missing");
    std::fs::remove_file(dir.join("data/orders.csv")).expect("remove");
    let repo = Repository::from_file(&dir.join("repo.toml")).expect("repository is valid");
    let err = mock_tecton::MockTecton::start(Config::new(repo).virtual_clock(NOW))
        .await
        .expect_err("the mock must not start");
    let msg = err.to_string();
    assert!(msg.contains("data/orders.csv"), "{msg}");
    assert!(msg.contains("`orders`"), "{msg}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn bad_batch_configs_are_all_reported_with_their_fields() {
    let toml = r#"
[[workspaces]]
name = "prod"

[[entities]]
name = "user"
join_keys = [{ name = "user_id", type = "String" }]

[[push_sources]]
name = "a"
schema = [{ name = "user_id", type = "String" }, { name = "ts", type = "Timestamp" }]
batch_config = { path = "", format = "xml", extra = 1 }

[[push_sources]]
name = "b"
schema = [{ name = "user_id", type = "String" }, { name = "ts", type = "Timestamp" }]
batch_config = { path = "history.bin" }

[[push_sources]]
name = "c"
schema = [{ name = "user_id", type = "String" }, { name = "ts", type = "Timestamp" }]
batch_config = "c.jsonl"

[[push_sources]]
name = "d"
schema = [{ name = "user_id", type = "String" }, { name = "ts", type = "Timestamp" }]
batch_config = { format = "csv" }

[[push_sources]]
name = "e"
schema = [{ name = "user_id", type = "String" }, { name = "n", type = "Int64" }, { name = "ts", type = "Timestamp" }]
batch_config = { path = "e.csv" }

[[feature_views]]
name = "v"
sources = ["e"]
entities = ["user"]
feature_start_time = "2024-01-01T00:00:00Z"
stream_processing_mode = "TIME_INTERVAL"
aggregation_interval = "10m"
batch_schedule = "15m"
aggregations = [{ column = "n", function = "sum", window = "1h" }]
"#;
    let errors: Vec<String> = Repository::from_toml(toml, "repo.toml")
        .expect_err("invalid")
        .0
        .iter()
        .map(ToString::to_string)
        .collect();
    let has = |field: &str, text: &str| {
        errors
            .iter()
            .any(|e| e.contains(&format!(": {field}: ")) && e.contains(text))
    };
    assert!(
        has(
            "push_sources[0].batch_config.extra",
            "unknown field `extra`"
        ),
        "{errors:#?}"
    );
    assert!(
        has("push_sources[0].batch_config.path", "must name a file"),
        "{errors:#?}"
    );
    assert!(
        has(
            "push_sources[0].batch_config.format",
            "unknown format `xml`"
        ),
        "{errors:#?}"
    );
    assert!(
        has(
            "push_sources[1].batch_config.format",
            "cannot tell the format"
        ),
        "{errors:#?}"
    );
    assert!(
        has("push_sources[2].batch_config", "expected a table"),
        "{errors:#?}"
    );
    assert!(
        has("push_sources[3].batch_config.path", "missing"),
        "{errors:#?}"
    );
    assert!(
        has(
            "feature_views[0].batch_schedule",
            "multiple of the aggregation_interval 10m"
        ),
        "{errors:#?}"
    );
    // Every error names the file and a line.
    assert!(
        errors.iter().all(|e| e.starts_with("repo.toml:")),
        "{errors:#?}"
    );
    assert_eq!(errors.len(), 7, "{errors:#?}");
}

#[tokio::test]
async fn a_batch_job_replaces_the_stream_tiles_of_its_keys_and_interval() {
    let dir = repo_dir("stream");
    let h = start(&dir).await;
    // The stream writes u1 and u2 into the [12:00, 13:00) tile of payment_sum.
    let (status, offsets) = h
        .post_raw(
            "/_mock/topics/payments",
            None,
            concat!(
                r#"{"user_id": "u1", "amt": 100.0, "ts": "2024-06-01T12:05:00Z"}"#,
                "\n",
                r#"{"user_id": "u2", "amt": 7.0, "ts": "2024-06-01T12:05:00Z"}"#
            ),
        )
        .await;
    assert_eq!(status, 200, "{offsets}");
    // The batch source has u1 only in that interval.
    let (status, _) = h
        .post_raw(
            "/_mock/batch/sources/payments/rows",
            None,
            r#"{"user_id": "u1", "amt": 1.0, "event_time": "2024-06-01T12:15:00Z"}"#,
        )
        .await;
    assert_eq!(status, 200);
    // 13:00: the tile is complete; the stream's values serve until the job has run.
    let (status, _) = h
        .post_raw(
            "/_mock/clock",
            None,
            json!({"set": "2024-06-01T12:59:59Z"}).to_string(),
        )
        .await;
    assert_eq!(status, 200);
    let streams = h.admin("/streams").await;
    assert!(
        streams["streams"][0]["queries"][0]["rows_written"]
            .as_u64()
            .is_some_and(|n| n >= 2),
        "{streams}"
    );
    let (status, _) = h
        .post_raw("/_mock/clock", None, json!({"advance": "1s"}).to_string())
        .await;
    assert_eq!(status, 200);
    let u1 = online(&h, "u1").await;
    assert_eq!(u1["payment_sum__amt_sum_1d_1h"], json!(31.0), "{u1}");
    let u2 = online(&h, "u2").await;
    assert_eq!(u2["payment_sum__amt_sum_1d_1h"], json!(47.0), "{u2}");
    // Offline, a stream view's rows come from its batch source (the stream writes online only).
    let off = offline(&h, "u1", "2024-06-01T13:00:00Z").await;
    assert_eq!(off["payment_sum__amt_sum_1d_1h"], json!(31.0), "{off}");
    h.mock.shutdown().await;
    let _ = std::fs::remove_dir_all(dir);
}
