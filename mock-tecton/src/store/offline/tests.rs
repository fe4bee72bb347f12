//! The offline store on its own: Parquet round trips, visibility across flushes, a failing disk.
#![allow(clippy::unwrap_used)]

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::repo::Repository;

/// Every Tecton type in one push source, with nullable fields.
pub(crate) const ALL_TYPES_REPO: &str = r#"
[[workspaces]]
name = "prod"

[[push_sources]]
name = "every type"
timestamp_field = "ts"
schema = [
  { name = "s", type = "String" },
  { name = "i", type = "Int64" },
  { name = "i32", type = "Int32" },
  { name = "f", type = "Float64" },
  { name = "f32", type = "Float32" },
  { name = "b", type = "Bool" },
  { name = "at", type = "Timestamp" },
  { name = "tags", type = "Array<String>" },
  { name = "m", type = "Map<String, Array<Float64>>" },
  { name = "loc", type = "Struct<lat: Float64, when: Timestamp, n: Int32>" },
  { name = "ts", type = "Timestamp" },
]
"#;

fn repo() -> Repository {
    Repository::from_toml(ALL_TYPES_REPO, "all_types.toml").unwrap()
}

/// A unique data directory under the system's temporary directory.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "tecton-sim-offline-test-{name}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn settings(dir: &Path, flush_rows: usize) -> OfflineSettings {
    OfflineSettings {
        data_dir: Some(dir.to_path_buf()),
        keep_data: false,
        flush_rows,
        // Long: these tests flush by hand unless they say otherwise.
        flush_interval: Duration::from_secs(3600),
    }
}

const DAY: i64 = NANOS_PER_DAY;
/// 2024-06-01T00:00:00Z.
const JUNE_1: i64 = 1_717_200_000_000_000_000;

fn row(seq: u64, ts: i64, with_values: bool) -> OfflineRow {
    let values = if with_values {
        vec![
            Value::String(format!("s{seq} ✓").into()),
            Value::Int(-(seq as i64) * 1_000_000_000_007),
            Value::Int(i64::from(i32::MIN) + seq as i64),
            Value::Float(if seq.is_multiple_of(3) {
                f64::NAN
            } else {
                0.1 * seq as f64
            }),
            Value::Float(-0.0),
            Value::Bool(seq.is_multiple_of(2)),
            Value::Timestamp(ts + 123),
            Value::Array(vec![Value::String("a".into()), Value::Null]),
            Value::Map(vec![
                ("z".into(), Value::Array(vec![Value::Float(f64::INFINITY)])),
                ("a".into(), Value::Null),
            ]),
            Value::Struct(vec![
                Value::Float(1.5),
                Value::Timestamp(ts + 1),
                Value::Null,
            ]),
            Value::Timestamp(ts),
        ]
    } else {
        let mut v = vec![Value::Null; 10];
        v.push(Value::Timestamp(ts));
        v
    };
    OfflineRow {
        seq,
        request: if seq == 0 { u64::MAX } else { seq / 3 },
        ingested_at: JUNE_1 + seq as i64,
        ts,
        values,
    }
}

/// Value equality with NaN equal to itself, as the bits are what must survive.
fn same(a: &[OfflineRow], b: &[OfflineRow]) -> bool {
    format!("{a:?}") == format!("{b:?}")
}

#[test]
fn every_type_and_null_survives_a_parquet_round_trip() {
    let dir = scratch("round-trip");
    let log = OfflineLog::new(&repo(), &settings(&dir, usize::MAX));
    // Three event dates, one of them before 1970, nanosecond precision, nulls everywhere.
    let rows: Vec<OfflineRow> = (0..50)
        .map(|i| row(i, JUNE_1 + (i as i64 % 3) * DAY + 987_654_321, i % 5 != 4))
        .chain([row(50, -DAY - 1, true)])
        .collect();
    for r in rows.iter().rev() {
        log.append(0, r.clone());
    }
    let before = log.rows(0).unwrap();
    assert!(same(&before, &rows), "tail rows come back in seq order");
    log.flush().unwrap();
    let stats = log.stats();
    assert_eq!((stats.rows_on_disk, stats.rows_in_memory), (51, 0));
    assert_eq!(stats.files, 4, "one file per event date");
    assert!(stats.bytes_on_disk > 0);
    let after = log.rows(0).unwrap();
    assert!(same(&after, &rows), "{after:?}");
    for date in ["1969-12-30", "2024-06-01", "2024-06-02", "2024-06-03"] {
        let part = dir.join("offline/every_type").join(format!("date={date}"));
        let files: Vec<_> = std::fs::read_dir(&part).unwrap().collect();
        assert_eq!(files.len(), 1, "{}", part.display());
    }
}

#[test]
fn a_row_is_seen_exactly_once_while_flushes_run() {
    let dir = scratch("concurrent");
    let mut s = settings(&dir, 64);
    s.flush_interval = Duration::from_millis(2);
    let log = Arc::new(OfflineLog::new(&repo(), &s));
    let done = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..3u64)
        .map(|w| {
            let log = log.clone();
            std::thread::spawn(move || {
                for i in 0..1_000u64 {
                    log.append(0, row(i * 3 + w, JUNE_1 + (i as i64 % 4) * DAY, false));
                    if i % 100 == 99 {
                        // Lets the flusher run between bursts, as requests would.
                        std::thread::sleep(Duration::from_millis(3));
                    }
                }
            })
        })
        .collect();
    let reader = {
        let (log, done) = (log.clone(), done.clone());
        std::thread::spawn(move || {
            let mut last = 0;
            while !done.load(Ordering::SeqCst) {
                let rows = log.rows(0).unwrap();
                let mut seqs: Vec<u64> = rows.iter().map(|r| r.seq).collect();
                seqs.dedup();
                assert_eq!(seqs.len(), rows.len(), "a row was seen twice");
                assert!(
                    rows.len() >= last,
                    "rows disappeared: {} after {last}",
                    rows.len()
                );
                last = rows.len();
            }
        })
    };
    for w in writers {
        w.join().unwrap();
    }
    done.store(true, Ordering::SeqCst);
    reader.join().unwrap();
    let seqs: Vec<u64> = log.rows(0).unwrap().iter().map(|r| r.seq).collect();
    assert_eq!(seqs, (0..3_000).collect::<Vec<_>>());
    log.flush().unwrap();
    let stats = log.stats();
    assert_eq!((stats.rows, stats.rows_on_disk), (3_000, 3_000));
    assert!(
        stats.flushes > 1,
        "the size and time triggers flushed: {stats:?}"
    );
}

#[test]
fn a_failed_flush_keeps_the_rows_visible_and_says_so() {
    let dir = scratch("bad-disk");
    let log = OfflineLog::new(&repo(), &settings(&dir, usize::MAX));
    log.prepare().unwrap();
    log.append(0, row(0, JUNE_1, true));
    log.flush().unwrap();
    // The disk "breaks": the source's directory becomes a plain file.
    let source_dir = dir.join("offline/every_type");
    std::fs::rename(&source_dir, dir.join("moved")).unwrap();
    std::fs::write(&source_dir, b"not a directory").unwrap();
    log.append(0, row(1, JUNE_1 + DAY, true));
    log.append(0, row(2, JUNE_1, true));
    let err = log.flush().unwrap_err();
    assert!(err.message.contains("cannot create"), "{err}");
    let stats = log.stats();
    assert_eq!(stats.failed_flushes, 1);
    assert!(
        stats
            .error
            .as_deref()
            .is_some_and(|e| e.contains("every_type")),
        "{stats:?}"
    );
    assert_eq!(stats.rows_in_memory, 2, "acknowledged rows wait in memory");
    // Row 0's file is gone with the directory; rows 1 and 2 are still served from memory.
    assert!(
        log.rows(0).is_err(),
        "a vanished file is an error, not silently fewer rows"
    );
    std::fs::remove_file(&source_dir).unwrap();
    std::fs::rename(dir.join("moved"), &source_dir).unwrap();
    assert_eq!(log.rows(0).unwrap().len(), 3);
    // The disk is back: the next flush writes the waiting rows once.
    log.flush().unwrap();
    let stats = log.stats();
    assert_eq!((stats.rows_on_disk, stats.rows_in_memory), (3, 0));
    assert_eq!(stats.error, None);
    let seqs: Vec<u64> = log.rows(0).unwrap().iter().map(|r| r.seq).collect();
    assert_eq!(seqs, vec![0, 1, 2]);
}

#[test]
fn clear_deletes_the_files_and_close_removes_what_is_not_kept() {
    let dir = scratch("clear");
    let log = OfflineLog::new(&repo(), &settings(&dir, usize::MAX));
    log.prepare().unwrap();
    log.append(0, row(0, JUNE_1, true));
    log.flush().unwrap();
    log.append(0, row(1, JUNE_1, true));
    log.clear().unwrap();
    assert!(log.rows(0).unwrap().is_empty());
    assert_eq!(log.stats().files, 0);
    assert_eq!(std::fs::read_dir(dir.join("offline")).unwrap().count(), 0);
    log.append(0, row(2, JUNE_1, true));
    log.close();
    assert!(!dir.join("offline").exists(), "not kept: removed at close");
    assert!(dir.exists(), "a named directory itself stays");

    let mut kept = settings(&dir, usize::MAX);
    kept.keep_data = true;
    let log = OfflineLog::new(&repo(), &kept);
    log.prepare().unwrap();
    log.append(0, row(0, JUNE_1, true));
    drop(log);
    let part = dir.join("offline/every_type/date=2024-06-01");
    assert_eq!(
        std::fs::read_dir(&part).unwrap().count(),
        1,
        "kept: flushed at close"
    );
    let again = OfflineLog::new(&repo(), &kept);
    let err = again.prepare().unwrap_err();
    assert!(err.to_string().contains("earlier run"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_temporary_directory_is_removed_at_close() {
    let log = OfflineLog::new(&repo(), &OfflineSettings::default());
    log.prepare().unwrap();
    let root = log.data_dir().to_path_buf();
    log.append(0, row(0, JUNE_1, true));
    log.flush().unwrap();
    assert!(root.join("offline/every_type").is_dir());
    drop(log);
    assert!(!root.exists());
}

#[test]
fn an_earlier_runs_store_is_never_written_into_nor_deleted() {
    let dir = scratch("earlier");
    let old = dir.join("offline/every_type/date=2024-06-01/part-00000.parquet");
    std::fs::create_dir_all(old.parent().unwrap()).unwrap();
    std::fs::write(&old, b"an earlier run's file").unwrap();
    // Not prepared (as a library caller might): the first flush refuses, reset and close
    // leave the old file alone, and the rows stay readable from memory.
    let log = OfflineLog::new(&repo(), &settings(&dir, usize::MAX));
    log.append(0, row(0, JUNE_1, true));
    let err = log.flush().unwrap_err();
    assert!(err.message.contains("earlier run"), "{err}");
    assert_eq!(log.rows(0).unwrap().len(), 1);
    log.clear().unwrap();
    drop(log);
    assert!(old.is_file());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_producer_faster_than_the_flusher_is_held_to_a_bounded_tail() {
    let dir = scratch("bounded-tail");
    let flush_rows = 16;
    let log = OfflineLog::new(&repo(), &settings(&dir, flush_rows));
    let bound = (flush_rows * decisions::OFFLINE_MAX_WAITING_FLUSHES) as u64;
    let mut most = 0;
    for seq in 0..2_000u64 {
        // Two dates, so each flush writes two files, as a spread of event times does.
        log.append(0, row(seq, JUNE_1 + (seq as i64 % 2) * DAY, false));
        most = most.max(log.stats().rows_in_memory);
    }
    // A tight loop appends far faster than Parquet files are written: without the bound the
    // tail would hold most of the 2,000 rows.
    assert!(most <= bound, "{most} rows waited in memory; bound {bound}");
    let rows = log.rows(0).unwrap();
    assert_eq!(rows.len(), 2_000);
    assert!(rows.iter().enumerate().all(|(i, r)| r.seq == i as u64));
    log.flush().unwrap();
    assert_eq!(log.stats().rows_on_disk, 2_000);
    drop(log);
    let _ = std::fs::remove_dir_all(&dir);
}
