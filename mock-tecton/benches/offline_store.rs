//! Offline store write and read throughput against its peer, the all-in-memory log it replaced.
//!
//! `BENCH_ROWS` rows (default 2,000,000) of the demo `transactions` schema, unique users, event
//! times over 20 days, appended from `BENCH_THREADS` threads (default 2), as fast as possible or
//! at `BENCH_RATE` rows/s, to:
//!
//! - `heap log`: per-source shards of `Mutex<Vec<OfflineRow>>`, every row kept forever (the
//!   former offline store, reproduced here as the peer);
//! - `parquet store`: [`OfflineLog`] with the default flush policy, files in a temporary
//!   directory.
//!
//! Prints append rows/s (what the ingest path pays), rows/s until every row is in a file, read
//! rows/s, bytes on disk per row, and the process's resident memory once every row is appended
//! (meaningful for whichever store runs first in the process: `BENCH_ONLY=heap` runs the heap
//! log alone). Run with `cargo bench -p mock-tecton --bench offline_store`.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use mock_tecton::repo::Repository;
use mock_tecton::schema::Value;
use mock_tecton::store::{OfflineLog, OfflineRow, OfflineSettings};

const SHARDS: usize = 16;
const NANOS_PER_DAY: i64 = 86_400_000_000_000;
/// 2024-06-01T00:00:00Z.
const NOW: i64 = 1_717_200_000_000_000_000;

/// The peer: the offline log as it was, every row on the heap.
struct HeapLog {
    shards: Vec<Mutex<Vec<OfflineRow>>>,
}

impl HeapLog {
    fn append(&self, row: OfflineRow) {
        let shard = &self.shards[(row.seq % SHARDS as u64) as usize];
        shard.lock().expect("shard").push(row);
    }

    fn rows(&self) -> Vec<OfflineRow> {
        let mut out = Vec::new();
        for s in &self.shards {
            out.extend(s.lock().expect("shard").iter().cloned());
        }
        out.sort_unstable_by_key(|r| r.seq);
        out
    }
}

fn row(seq: u64) -> OfflineRow {
    // A cheap deterministic spread: users, merchants and event times vary per row.
    let mix = seq.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let ts = NOW - (mix % (20 * NANOS_PER_DAY as u64)) as i64;
    OfflineRow {
        seq,
        request: seq / 10,
        ingested_at: NOW + seq as i64,
        ts,
        values: vec![
            Value::String(format!("user-{}", mix % 5_000).into()),
            Value::String(format!("txn-{seq}").into()),
            Value::String(format!("merchant-{}", mix % 97).into()),
            Value::Float((mix % 100_000) as f64 / 100.0),
            Value::Int((mix % 2) as i64),
            Value::Timestamp(ts),
        ],
    }
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Resident memory of this process in MiB (Linux), for the trend between phases.
fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// Appends `rows` rows from `threads` threads, at most `BENCH_RATE` rows/s in all when set;
/// returns the seconds taken.
fn append_all(rows: u64, threads: u64, append: Arc<dyn Fn(OfflineRow) + Send + Sync>) -> f64 {
    let rate = env_or("BENCH_RATE", 0) as f64 / threads as f64;
    let started = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let append = append.clone();
            std::thread::spawn(move || {
                let mut seq = t;
                let mut sent = 0u64;
                while seq < rows {
                    append(row(seq));
                    seq += threads;
                    sent += 1;
                    if rate > 0.0 && sent.is_multiple_of(1_000) {
                        let due = std::time::Duration::from_secs_f64(sent as f64 / rate);
                        if let Some(wait) = due.checked_sub(started.elapsed()) {
                            std::thread::sleep(wait);
                        }
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("writer");
    }
    started.elapsed().as_secs_f64()
}

fn main() {
    let rows = env_or("BENCH_ROWS", 2_000_000);
    let threads = env_or("BENCH_THREADS", 2).max(1);
    let repo = Repository::demo();
    println!(
        "offline store: {rows} rows from {threads} threads; RSS at start {:.0} MiB",
        rss_mib()
    );
    println!("| store | append rows/s | rows/s until all in files | read rows/s | bytes on disk/row | RSS after append (MiB) |");
    println!("|---|---:|---:|---:|---:|---:|");

    let only = std::env::var("BENCH_ONLY").unwrap_or_default();
    let mut parquet_append = f64::NAN;
    if only != "heap" {
        parquet_append = parquet_phase(&repo, rows, threads);
    }
    if only != "parquet" {
        let heap_append = heap_phase(rows, threads);
        println!(
            "append throughput, parquet store / heap log: {:.2}x",
            parquet_append / heap_append
        );
    }
}

/// Runs the Parquet store; returns its append rows/s.
fn parquet_phase(repo: &Repository, rows: u64, threads: u64) -> f64 {
    let store = Arc::new(OfflineLog::new(repo, &OfflineSettings::default()));
    store.prepare().expect("temporary data directory");
    let s = store.clone();
    let append_secs = append_all(rows, threads, Arc::new(move |r| s.append(0, r)));
    let rss_appended = rss_mib();
    let waiting = store.stats().rows_in_memory;
    let flush_started = Instant::now();
    store.flush().expect("flush");
    let flush_secs = flush_started.elapsed().as_secs_f64();
    let durable_secs = append_secs + flush_secs;
    let read_started = Instant::now();
    let read = store.rows(0).expect("read").len();
    let read_secs = read_started.elapsed().as_secs_f64();
    assert_eq!(read as u64, rows, "every row read back");
    let stats = store.stats();
    println!(
        "| parquet store | {:.0} | {:.0} | {:.0} | {:.1} | {:.0} |",
        rows as f64 / append_secs,
        rows as f64 / durable_secs,
        rows as f64 / read_secs,
        stats.bytes_on_disk as f64 / rows as f64,
        rss_appended
    );
    println!(
        "(parquet store: {waiting} rows still in memory when the last append returned; the \
         final flush wrote them at {:.0} rows/s)",
        waiting as f64 / flush_secs
    );
    rows as f64 / append_secs
}

/// Runs the peer; returns its append rows/s.
fn heap_phase(rows: u64, threads: u64) -> f64 {
    let heap = Arc::new(HeapLog {
        shards: (0..SHARDS).map(|_| Mutex::new(Vec::new())).collect(),
    });
    let h = heap.clone();
    let append_secs = append_all(rows, threads, Arc::new(move |r| h.append(r)));
    let rss_appended = rss_mib();
    let read_started = Instant::now();
    let read = heap.rows().len();
    let read_secs = read_started.elapsed().as_secs_f64();
    assert_eq!(read as u64, rows);
    println!(
        "| heap log (peer) | {:.0} | n/a (never leaves memory) | {:.0} | 0 | {:.0} |",
        rows as f64 / append_secs,
        rows as f64 / read_secs,
        rss_appended
    );
    rows as f64 / append_secs
}
