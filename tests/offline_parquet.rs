//! The offline store's Parquet files, read by pyarrow (pinned in `scripts/setup-python.sh`).
//!
//! Starts the mock on a repository whose push source has a field of every Tecton type, ingests
//! records over HTTP (nulls, nanosecond timestamps, nested values, three event dates), flushes,
//! then runs `tests/python/offline_read.py`, which opens `<data-dir>/offline/<source>` as a
//! hive-partitioned pyarrow dataset. The test asserts that pyarrow finds the same rows as the
//! mock's own reader, field by field, with the documented column types and a `date` partition.
//!
//! When `.venv/bin/python` is missing or cannot import pyarrow, the test FAILS if the `CI`
//! environment variable is set, and otherwise prints a `SKIPPED: ...` notice and passes.
#![allow(clippy::unwrap_used)]

mod support;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use mock_tecton::schema::Value;
use mock_tecton::store::encode_json;
use mock_tecton::{Config, MockTecton, Repository};
use serde_json::{json, Value as Json};

const REPO: &str = r#"
[[workspaces]]
name = "prod"

[[service_accounts]]
name = "pipeline"
api_key = "editor-key"
roles = { prod = "editor" }

[[push_sources]]
name = "readings"
timestamp_field = "ts"
schema = [
  { name = "device", type = "String" },
  { name = "count", type = "Int64" },
  { name = "small", type = "Int32" },
  { name = "value", type = "Float64" },
  { name = "ratio", type = "Float32" },
  { name = "ok", type = "Bool" },
  { name = "seen_at", type = "Timestamp" },
  { name = "tags", type = "Array<String>" },
  { name = "scores", type = "Map<String, Float64>" },
  { name = "place", type = "Struct<lat: Float64, lon: Float64, since: Timestamp>" },
  { name = "ts", type = "Timestamp" },
]

[[entities]]
name = "device"
join_keys = [{ name = "device", type = "String" }]

[[feature_views]]
name = "last_reading"
sources = ["readings"]
entities = ["device"]
feature_start_time = "2024-01-01T00:00:00Z"
attributes = ["value", "tags"]
ttl = "30d"
"#;

const NESTED: [&str; 3] = ["tags", "scores", "place"];

fn record(i: usize) -> Json {
    let day = 1 + i % 3;
    if i % 4 == 3 {
        // Every nullable field null.
        return json!({"record": {"device": "d-null", "count": null, "small": null, "value": null,
            "ratio": null, "ok": null, "seen_at": null, "tags": null, "scores": null, "place": null,
            "ts": format!("2024-05-0{day}T10:00:00Z")}});
    }
    json!({"record": {
        "device": format!("d{i} ✓"),
        "count": -9_007_199_254_740_993_i64 + i as i64,
        "small": -2_147_483_648_i64 + i as i64,
        "value": 0.1 * i as f64,
        "ratio": 1.0 / 3.0,
        "ok": i.is_multiple_of(2),
        "seen_at": format!("2024-05-0{day}T10:00:00.{:09}Z", 123_456_789 + i),
        "tags": ["a", null, format!("t{i}")],
        "scores": {"z": 1.5, "a": -2.0},
        "place": {"lat": 52.52, "lon": 13.405, "since": "2024-01-01T00:00:00.000000001Z"},
        "ts": format!("2024-05-0{day}T{:02}:00:00.{:09}Z", i % 24, i),
    }})
}

/// A mock value as pyarrow reports it: timestamps as nanoseconds, nested values as their JSON.
fn as_pyarrow(ty: &mock_tecton::schema::DataType, v: &Value) -> Json {
    match v {
        Value::Null => Json::Null,
        Value::Timestamp(ns) => json!(ns),
        Value::Array(_) | Value::Map(_) | Value::Struct(_) => encode_json(ty, v),
        other => other.to_plain_json(),
    }
}

#[tokio::test]
async fn pyarrow_reads_the_same_rows_from_the_parquet_files() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let Some(python) = support::venv_python(
        "offline_parquet",
        ".venv",
        &["pyarrow.dataset"],
        "Run scripts/setup-python.sh to test reading the Parquet files.",
    ) else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("tecton-sim-pyarrow-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let repo = Repository::from_toml(REPO, "readings.toml").unwrap();
    let now = mock_tecton::schema::parse_timestamp("2024-05-04T00:00:00Z").unwrap();
    let config = Config::new(repo)
        .virtual_clock(now)
        .data_dir(&dir)
        .records_per_source(100)
        .offline_flush(usize::MAX, Duration::from_secs(3600));
    let mock = MockTecton::start(config).await.unwrap();
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    for chunk in (0..40).map(record).collect::<Vec<_>>().chunks(10) {
        let body =
            json!({"workspace_name": "prod", "dry_run": false, "records": {"readings": chunk}});
        let resp = http
            .post(format!("{}/ingest", mock.url()))
            .header("Authorization", "Tecton-key editor-key")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        let status = resp.status();
        assert_eq!(status, 200, "{}", resp.text().await.unwrap());
    }
    mock.state().offline().flush().unwrap();
    let expected = mock.offline_rows("readings").unwrap();
    assert_eq!(expected.len(), 40);
    let schema = mock.state().repo().push_sources[0].schema.clone();

    let source_dir = dir.join("offline/readings");
    let out = tokio::task::spawn_blocking(move || {
        Command::new(&python)
            .arg("-B")
            .arg(root.join("tests/python/offline_read.py"))
            .arg(&source_dir)
            .args(NESTED)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "offline_read.py failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    let read: Json = serde_json::from_str(stdout.trim()).unwrap();

    let types = &read["schema"];
    for (column, ty) in [
        ("device", "string"),
        ("count", "int64"),
        ("small", "int32"),
        ("value", "double"),
        ("ratio", "double"),
        ("ok", "bool"),
        ("seen_at", "timestamp[ns, tz=UTC]"),
        ("tags", "string"),
        ("ts", "timestamp[ns, tz=UTC]"),
        ("_seq", "uint64"),
        ("_request", "uint64"),
        ("_ingested_at", "timestamp[ns, tz=UTC]"),
    ] {
        assert_eq!(types[column], ty, "{column} in {types}");
    }
    assert!(
        types.get("date").is_some(),
        "the hive partition column: {types}"
    );

    let rows = read["rows"].as_array().unwrap();
    assert_eq!(
        rows.len(),
        expected.len(),
        "pyarrow found another row count"
    );
    for (got, want) in rows.iter().zip(&expected) {
        assert_eq!(got["_seq"], want.seq);
        assert_eq!(got["_request"], want.request);
        assert_eq!(got["_ingested_at"], want.ingested_at);
        let date = mock_tecton::schema::format_rfc3339(want.ts);
        assert_eq!(got["date"], date[..10], "row {}", want.seq);
        for (field, value) in schema.fields.iter().zip(&want.values) {
            assert_eq!(
                got[&field.name],
                as_pyarrow(&field.data_type, value),
                "row {} field {}",
                want.seq,
                field.name
            );
        }
    }
    mock.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}
