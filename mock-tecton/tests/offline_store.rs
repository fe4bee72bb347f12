//! The offline store on disk, through the HTTP API: what a 200 makes visible before and after a
//! flush, health, reset emptying the data directory, keeping the files, refusing a used directory.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{batch, start, txn, Harness, NOW};
use mock_tecton::{Config, MockTecton};
use serde_json::{json, Value};

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "tecton-sim-offline-it-{name}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Every `.parquet` file under `dir`.
fn parquet_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries {
        let path = e.unwrap().path();
        if path.is_dir() {
            out.extend(parquet_files(&path));
        } else if path.extension().is_some_and(|x| x == "parquet") {
            out.push(path);
        }
    }
    out.sort();
    out
}

fn config(dir: &Path, flush_rows: usize) -> Config {
    Config::default()
        .virtual_clock(NOW)
        .data_dir(dir)
        // Never by time: the test decides when a flush happens.
        .offline_flush(flush_rows, Duration::from_secs(3600))
}

const EDITOR: &str = "demo-editor-key";

/// Records on three event dates, one with nanoseconds.
fn records(prefix: &str) -> Vec<Value> {
    vec![
        txn("u1", &format!("{prefix}1"), 10.0, "2024-05-30T12:00:00Z"),
        txn(
            "u1",
            &format!("{prefix}2"),
            2.5,
            "2024-05-31T23:30:00.123456789Z",
        ),
        txn("u2", &format!("{prefix}3"), 7.0, "2024-05-31T23:45:00Z"),
        txn("u1", &format!("{prefix}4"), 1.0, "2024-05-29T01:00:00Z"),
    ]
}

/// What every reader of the offline store shows: the dump, and point-in-time features.
async fn readers(h: &Harness) -> (Value, Value) {
    let dump = h.admin("/offline?source=transactions").await;
    let (status, features) = h
        .post_raw(
            "/_mock/offline/features",
            None,
            json!({"spine": [
                {"user_id": "u1", "timestamp": "2024-06-01T00:00:00Z"},
                {"user_id": "u2", "timestamp": "2024-06-01T00:00:00Z"},
            ]})
            .to_string(),
        )
        .await;
    assert_eq!(status, 200, "{features}");
    (dump, features)
}

#[tokio::test]
async fn a_200_is_visible_to_every_reader_before_and_after_the_flush() {
    let dir = scratch("visible");
    let h = start(config(&dir, usize::MAX)).await;
    let (status, body) = h.ingest(EDITOR, &batch(false, records("t"))).await;
    assert_eq!(status, 200, "{body}");

    // Nothing is on disk yet: the rows are in the memory tail, and every reader sees them.
    assert!(parquet_files(&dir).is_empty());
    let before = readers(&h).await;
    let ids: Vec<&str> = before.0["offline"][0]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["record"]["transaction_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["t1", "t2", "t3", "t4"]);
    assert_eq!(
        before.0["offline"][0]["rows"][1]["record"]["timestamp"],
        "2024-05-31T23:30:00.123456789Z"
    );

    h.mock.state().offline().flush().unwrap();
    let files = parquet_files(&dir);
    let dates: Vec<String> = files
        .iter()
        .map(|f| {
            f.parent()
                .unwrap()
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert_eq!(
        dates,
        ["date=2024-05-29", "date=2024-05-30", "date=2024-05-31"],
        "one file per event date: {files:?}"
    );
    assert!(files
        .iter()
        .all(|f| f.starts_with(dir.join("offline/transactions"))));
    // Read back from Parquet, the same rows and the same features, bit for bit.
    assert_eq!(readers(&h).await, before);

    // More rows after the flush: files and tail together.
    let (status, _) = h.ingest(EDITOR, &batch(false, records("s"))).await;
    assert_eq!(status, 200);
    let rows = h.mock.offline_rows("transactions").unwrap();
    assert_eq!(rows.len(), 8);
    assert!(rows.windows(2).all(|w| w[0].seq < w[1].seq), "seq order");

    let health = h.admin("/health").await;
    assert_eq!(health["status"], "ok");
    let offline = &health["offline"];
    assert_eq!(offline["rows"], 8);
    assert_eq!(offline["rows_on_disk"], 4);
    assert_eq!(offline["rows_in_memory"], 4);
    assert_eq!(offline["files"], 3);
    assert!(offline["bytes_on_disk"].as_u64().unwrap() > 0);
    assert_eq!(offline["error"], Value::Null);
    assert_eq!(offline["data_dir"], dir.display().to_string());
    h.mock.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn the_size_trigger_flushes_off_the_request_path() {
    let dir = scratch("size");
    let h = start(config(&dir, 4)).await;
    let (status, _) = h.ingest(EDITOR, &batch(false, records("t"))).await;
    assert_eq!(status, 200);
    // The fourth row woke the background flusher; the request did not wait for it.
    let mut waited = Duration::ZERO;
    while h.admin("/health").await["offline"]["rows_on_disk"] != 4 {
        assert!(waited < Duration::from_secs(10), "no flush after 10 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
        waited += Duration::from_millis(20);
    }
    assert_eq!(parquet_files(&dir).len(), 3);
    h.mock.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn reset_empties_the_data_dir_too() {
    let dir = scratch("reset");
    let h = start(config(&dir, usize::MAX)).await;
    let (status, _) = h.ingest(EDITOR, &batch(false, records("t"))).await;
    assert_eq!(status, 200);
    h.mock.state().offline().flush().unwrap();
    let (status, _) = h.ingest(EDITOR, &batch(false, records("u"))).await;
    assert_eq!(status, 200);
    assert_eq!(parquet_files(&dir).len(), 3);

    let (status, body) = h.post_raw("/_mock/reset", None, "").await;
    assert_eq!(status, 200, "{body}");
    assert!(
        parquet_files(&dir).is_empty(),
        "reset left files: {:?}",
        parquet_files(&dir)
    );
    assert_eq!(
        std::fs::read_dir(dir.join("offline")).unwrap().count(),
        0,
        "no partition directories either"
    );
    assert_eq!(h.admin("/offline").await["offline"][0]["rows"], json!([]));
    let offline = &h.admin("/health").await["offline"];
    assert_eq!(
        (offline["rows"].as_u64(), offline["files"].as_u64()),
        (Some(0), Some(0))
    );

    // The mock carries on without a restart: new rows land in the emptied directory.
    let (status, _) = h
        .ingest(
            EDITOR,
            &batch(false, vec![txn("u9", "n1", 1.0, "2024-05-31T00:00:00Z")]),
        )
        .await;
    assert_eq!(status, 200);
    h.mock.state().offline().flush().unwrap();
    assert_eq!(parquet_files(&dir).len(), 1);
    let rows = h.mock.offline_rows("transactions").unwrap();
    assert_eq!((rows.len(), rows[0].seq), (1, 0));
    h.mock.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn kept_data_is_flushed_at_shutdown_and_a_used_dir_is_refused() {
    let dir = scratch("keep");
    let h = start(config(&dir, usize::MAX).keep_data(true)).await;
    let (status, _) = h.ingest(EDITOR, &batch(false, records("t"))).await;
    assert_eq!(status, 200);
    assert!(parquet_files(&dir).is_empty());
    let state = h.mock.state().clone();
    h.mock.shutdown().await;
    assert_eq!(parquet_files(&dir).len(), 3, "shutdown wrote the tail");
    assert_eq!(state.offline().stats().rows_on_disk, 4);
    drop(state);
    assert_eq!(parquet_files(&dir).len(), 3, "kept after the mock is gone");

    let err = MockTecton::start(config(&dir, usize::MAX))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("earlier run"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn the_default_temporary_directory_goes_with_the_mock() {
    let h = start(Config::default().virtual_clock(NOW)).await;
    let (status, _) = h.ingest(EDITOR, &batch(false, records("t"))).await;
    assert_eq!(status, 200);
    h.mock.state().offline().flush().unwrap();
    let root = h.mock.state().offline().data_dir().to_path_buf();
    assert!(root.starts_with(std::env::temp_dir()));
    assert_eq!(parquet_files(&root).len(), 3);
    h.mock.shutdown().await;
    assert!(!root.exists(), "{} outlived the mock", root.display());
}

#[tokio::test]
async fn a_failing_disk_shows_in_health_and_loses_no_acknowledged_row() {
    let dir = scratch("bad-disk");
    let h = start(config(&dir, usize::MAX)).await;
    // The disk "fails": where the source's partitions go is now a plain file.
    let source_dir = dir.join("offline/transactions");
    std::fs::write(&source_dir, b"in the way").unwrap();
    let (status, _) = h.ingest(EDITOR, &batch(false, records("t"))).await;
    assert_eq!(status, 200);
    assert!(h.mock.state().offline().flush().is_err());

    let health = h.admin("/health").await;
    assert_eq!(health["status"], "degraded", "{health}");
    let offline = &health["offline"];
    assert_eq!(
        (
            offline["rows_in_memory"].as_u64(),
            offline["failed_flushes"].as_u64()
        ),
        (Some(4), Some(1))
    );
    assert!(
        offline["error"]
            .as_str()
            .unwrap()
            .contains("offline/transactions"),
        "{offline}"
    );
    // Every reader still has the rows.
    assert_eq!(
        h.admin("/offline").await["offline"][0]["rows"]
            .as_array()
            .map(Vec::len),
        Some(4)
    );

    // The disk recovers; the next flush (here by hand, otherwise the timer) writes them once.
    std::fs::remove_file(&source_dir).unwrap();
    h.mock.state().offline().flush().unwrap();
    let health = h.admin("/health").await;
    assert_eq!(health["status"], "ok");
    assert_eq!(health["offline"]["rows_on_disk"], 4);
    assert_eq!(parquet_files(&dir).len(), 3);
    assert_eq!(h.mock.offline_rows("transactions").unwrap().len(), 4);
    h.mock.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}
