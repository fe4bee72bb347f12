//! The offline store: every logged record of every push source, as ingested.
//!
//! Rows are never replaced: a duplicate stays a duplicate, as in Tecton's batch source, which is
//! what lets the consistency check show skew from duplicated or reordered pushes.

use std::sync::Mutex;

use crate::schema::Value;

const SHARDS: usize = 16;

/// One logged record.
#[derive(Debug, Clone, PartialEq)]
pub struct OfflineRow {
    /// Ingestion sequence number of the record (global order of acknowledgement).
    pub seq: u64,
    /// Journal sequence number of the request that carried it.
    pub request: u64,
    /// Mock time at ingestion.
    pub ingested_at: i64,
    /// Event time.
    pub ts: i64,
    /// All field values in source-schema order.
    pub values: Vec<Value>,
}

/// The offline log of one mock instance: per push source, sharded by record sequence number.
#[derive(Debug)]
pub struct OfflineLog {
    sources: Vec<Vec<Mutex<Vec<OfflineRow>>>>,
}

impl OfflineLog {
    /// An empty log for `source_count` push sources.
    pub fn new(source_count: usize) -> Self {
        OfflineLog {
            sources: (0..source_count)
                .map(|_| (0..SHARDS).map(|_| Mutex::new(Vec::new())).collect())
                .collect(),
        }
    }

    /// Appends a row to a source's log.
    pub fn append(&self, source: usize, row: OfflineRow) {
        let shard = &self.sources[source][(row.seq % SHARDS as u64) as usize];
        shard.lock().unwrap_or_else(|p| p.into_inner()).push(row);
    }

    /// A source's rows in ingestion order.
    pub fn rows(&self, source: usize) -> Vec<OfflineRow> {
        let mut out = Vec::new();
        for shard in &self.sources[source] {
            out.extend(
                shard
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .iter()
                    .cloned(),
            );
        }
        out.sort_unstable_by_key(|r| r.seq);
        out
    }

    /// Empties every source.
    pub fn clear(&self) {
        for shard in self.sources.iter().flatten() {
            shard.lock().unwrap_or_else(|p| p.into_inner()).clear();
        }
    }
}
