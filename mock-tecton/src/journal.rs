//! The journal: every exchange with the mock's Tecton APIs, in arrival order.
//!
//! Requests take a sequence number from an atomic counter when they arrive and are stored in one
//! of several shards chosen by that number, so concurrent requests never wait on one global
//! lock. Reads merge the shards by sequence number. Each shard is a bounded ring: under long load
//! runs the oldest entries are let go and counted, while the totals keep counting.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use bytes::Bytes;
use serde::Serialize;

const SHARDS: usize = 16;

/// How an exchange ended from the connection's point of view.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// A response was produced and handed to the connection.
    Responded,
    /// The client went away before the response was ready (it timed out or reset).
    #[default]
    ClientGone,
    /// A fault reset the connection (TCP RST) without a response.
    Reset,
    /// A fault cut the response body short and closed the connection.
    Truncated,
    /// A hang fault reached its limit and closed the connection without a response.
    Abandoned,
}

/// One request and its response. As JSON, its times appear twice: as ns since the epoch and as
/// RFC 3339 text beside them (`received_at_rfc3339`, `mock_time_rfc3339`).
#[derive(Debug, Clone, Default, Serialize)]
#[serde(into = "EntryJson")]
pub struct Entry {
    /// Arrival order, from 0.
    pub seq: u64,
    /// Wall-clock arrival time, ns since the epoch.
    pub received_at: i64,
    /// The mock clock's time at arrival (equals `received_at` on the wall clock).
    pub mock_time: i64,
    /// HTTP method.
    pub method: String,
    /// Request path.
    pub path: String,
    /// The service account whose key was presented, if the key was known.
    pub key_id: Option<String>,
    /// Request body size in bytes (as received, before any cut).
    pub request_bytes: usize,
    /// The request body, cut to the journal's body limit.
    pub request_body: Bytes,
    /// HTTP status sent (0 when none was).
    pub status: u16,
    /// The response body, cut to the journal's body limit.
    pub response_body: Bytes,
    /// Time from arrival to response, in microseconds.
    pub duration_us: u64,
    /// How the exchange ended.
    pub outcome: Outcome,
    /// The fault applied to this exchange, if any, as `rule name: action`.
    pub fault: Option<String>,
    /// The same fault's action, structured (e.g. its `retry_after_s`).
    pub fault_action: Option<crate::faults::FaultAction>,
}

/// [`Entry`] as JSON: the same fields plus readable times.
#[derive(Serialize)]
struct EntryJson {
    seq: u64,
    received_at: i64,
    received_at_rfc3339: String,
    mock_time: i64,
    mock_time_rfc3339: String,
    method: String,
    path: String,
    key_id: Option<String>,
    request_bytes: usize,
    #[serde(serialize_with = "as_text")]
    request_body: Bytes,
    status: u16,
    #[serde(serialize_with = "as_text")]
    response_body: Bytes,
    duration_us: u64,
    outcome: Outcome,
    fault: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    fault_action: Option<crate::faults::FaultAction>,
}

impl From<Entry> for EntryJson {
    fn from(e: Entry) -> Self {
        EntryJson {
            seq: e.seq,
            received_at: e.received_at,
            received_at_rfc3339: crate::schema::format_rfc3339(e.received_at),
            mock_time: e.mock_time,
            mock_time_rfc3339: crate::schema::format_rfc3339(e.mock_time),
            method: e.method,
            path: e.path,
            key_id: e.key_id,
            request_bytes: e.request_bytes,
            request_body: e.request_body,
            status: e.status,
            response_body: e.response_body,
            duration_us: e.duration_us,
            outcome: e.outcome,
            fault: e.fault,
            fault_action: e.fault_action,
        }
    }
}

fn as_text<S: serde::Serializer>(b: &Bytes, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&String::from_utf8_lossy(b))
}

/// Totals that survive the ring's eviction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counters {
    /// Exchanges recorded since the last reset.
    pub total: u64,
    /// Entries let go because the ring was full.
    pub dropped: u64,
}

/// What the journal holds now (see [`Journal::footprint`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct JournalSize {
    /// Entries held (at most the capacity).
    pub entries: usize,
    /// Estimated heap bytes of those entries.
    pub estimated_bytes: usize,
}

/// The journal of one mock instance.
#[derive(Debug)]
pub struct Journal {
    next_seq: AtomicU64,
    recorded: AtomicU64,
    dropped: AtomicU64,
    per_shard: usize,
    body_limit: usize,
    shards: Vec<Mutex<VecDeque<Entry>>>,
}

impl Journal {
    /// A journal that keeps about `capacity` entries and `body_limit` bytes of each body.
    pub fn new(capacity: usize, body_limit: usize) -> Self {
        Journal {
            next_seq: AtomicU64::new(0),
            recorded: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            per_shard: capacity.div_ceil(SHARDS).max(1),
            body_limit,
            shards: (0..SHARDS).map(|_| Mutex::new(VecDeque::new())).collect(),
        }
    }

    /// Takes the next arrival sequence number.
    pub fn next_seq(&self) -> u64 {
        self.next_seq.fetch_add(1, Ordering::Relaxed)
    }

    /// The configured body limit.
    pub fn body_limit(&self) -> usize {
        self.body_limit
    }

    /// Most entries held at once: the capacity asked for, rounded up to a whole number per
    /// shard. Older entries are let go (and counted in [`Counters::dropped`]).
    pub fn capacity(&self) -> usize {
        self.per_shard * SHARDS
    }

    /// Stores a finished exchange.
    pub fn record(&self, mut entry: Entry) {
        entry.request_body = cut(entry.request_body, self.body_limit);
        entry.response_body = cut(entry.response_body, self.body_limit);
        let shard = &self.shards[(entry.seq % SHARDS as u64) as usize];
        let mut ring = shard.lock().unwrap_or_else(|p| p.into_inner());
        if ring.len() >= self.per_shard {
            ring.pop_front();
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
        ring.push_back(entry);
        drop(ring);
        self.recorded.fetch_add(1, Ordering::Relaxed);
    }

    /// Entries with `seq >= since`, in arrival order, at most `limit` of them.
    pub fn entries(&self, since: u64, limit: usize) -> Vec<Entry> {
        let mut all: Vec<Entry> = Vec::new();
        for shard in &self.shards {
            let ring = shard.lock().unwrap_or_else(|p| p.into_inner());
            all.extend(ring.iter().filter(|e| e.seq >= since).cloned());
        }
        all.sort_unstable_by_key(|e| e.seq);
        all.truncate(limit);
        all
    }

    /// Totals since the last reset.
    pub fn counters(&self) -> Counters {
        Counters {
            total: self.recorded.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
        }
    }

    /// Entries held now and an estimate of their heap bytes (entry, strings and kept bodies),
    /// walked shard by shard.
    pub fn footprint(&self) -> JournalSize {
        let mut size = JournalSize::default();
        for shard in &self.shards {
            let ring = shard.lock().unwrap_or_else(|p| p.into_inner());
            size.entries += ring.len();
            size.estimated_bytes += ring.capacity() * std::mem::size_of::<Entry>();
            for e in ring.iter() {
                size.estimated_bytes += e.method.capacity()
                    + e.path.capacity()
                    + e.key_id.as_ref().map_or(0, String::capacity)
                    + e.fault.as_ref().map_or(0, String::capacity)
                    + e.request_body.len()
                    + e.response_body.len();
            }
        }
        size
    }

    /// Forgets everything; sequence numbers restart at 0.
    pub fn clear(&self) {
        for shard in &self.shards {
            shard.lock().unwrap_or_else(|p| p.into_inner()).clear();
        }
        self.next_seq.store(0, Ordering::Relaxed);
        self.recorded.store(0, Ordering::Relaxed);
        self.dropped.store(0, Ordering::Relaxed);
    }
}

/// Keeps at most `limit` bytes in a buffer of their own: a request body is often a slice of the
/// connection's much larger read buffer, and holding the slice would pin all of it.
fn cut(b: Bytes, limit: usize) -> Bytes {
    Bytes::copy_from_slice(&b[..b.len().min(limit)])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(seq: u64) -> Entry {
        Entry {
            seq,
            received_at: 0,
            mock_time: 0,
            method: "POST".into(),
            path: "/ingest".into(),
            key_id: None,
            request_bytes: 10,
            request_body: Bytes::from_static(b"0123456789"),
            status: 200,
            response_body: Bytes::new(),
            duration_us: 1,
            outcome: Outcome::Responded,
            fault: None,
            fault_action: None,
        }
    }

    #[test]
    fn reads_back_in_arrival_order_whatever_the_finish_order() {
        let j = Journal::new(100, 4);
        for seq in [3, 0, 2, 1] {
            j.record(entry(seq));
        }
        let seqs: Vec<u64> = j.entries(0, usize::MAX).iter().map(|e| e.seq).collect();
        assert_eq!(seqs, [0, 1, 2, 3]);
        assert_eq!(j.entries(2, 1)[0].seq, 2);
        assert_eq!(
            &j.entries(0, 1)[0].request_body[..],
            b"0123",
            "bodies are cut to the limit"
        );
    }

    #[test]
    fn stays_bounded_and_counts_what_it_lets_go() {
        let j = Journal::new(32, 16);
        for seq in 0..1_000 {
            j.record(entry(seq));
        }
        let kept = j.entries(0, usize::MAX);
        assert_eq!(kept.len(), 32);
        assert_eq!(j.capacity(), 32);
        assert_eq!(j.footprint().entries, 32);
        assert_eq!(kept.last().map(|e| e.seq), Some(999));
        assert_eq!(
            j.counters(),
            Counters {
                total: 1_000,
                dropped: 968
            }
        );
    }
}
