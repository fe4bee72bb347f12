//! In-memory topics: a partitioned, offset-addressed log per stream source topic, the embedded
//! stand-in for a Kafka topic.
//!
//! Like Kafka, a topic accepts any bytes: a record that does not match its stream source's schema
//! is still appended, and the micro-batch engine drops and counts it as `invalid`. Each record is
//! decoded once, when it is appended, for every stream source that reads the topic, so the
//! feature views of a source share one parse. Records every reader has consumed are let go
//! (retention), so a long run keeps only what the engine has not read yet; offsets keep counting.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use bytes::Bytes;

use crate::repo::StreamSource;
use crate::schema::{validate_record, Value};

/// A record decoded against one stream source's schema: its values in schema order and its
/// event time, or why it does not match.
pub(crate) type Decoded = Result<Row, String>;

/// A record that matches its source's schema.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Field values in source-schema order.
    pub values: Vec<Value>,
    /// Event time (ns since the epoch).
    pub ts: i64,
}

/// One record of a topic partition.
#[derive(Debug, Clone)]
pub struct TopicRecord {
    /// The partition.
    pub partition: u32,
    /// Its offset in the partition (0-based, dense).
    pub offset: u64,
    /// The producer's timestamp (like Kafka's CreateTime), ns since the epoch.
    pub produced_at: i64,
    /// Mock time when the record was appended; a micro-batch reads what was appended by its start.
    pub appended_at: i64,
    /// The offset in a real broker's partition, when the record was consumed from one.
    pub broker_offset: Option<u64>,
    /// The value bytes as produced.
    pub payload: Bytes,
    /// The payload decoded for each reader of the topic, in reader order.
    pub decoded: Arc<[Decoded]>,
}

/// How many records ahead a pass over records reads their shared memory: a record is cloned
/// and dropped long after it was written, when its memory has left the cache, and reads started
/// ahead overlap their misses instead of queueing them.
const AHEAD: usize = 16;

impl TopicRecord {
    /// Reads the record's shared block (its reference count and decoded rows).
    fn touch_shared(&self) -> u64 {
        self.decoded.first().map_or(0, |d| u64::from(d.is_ok()))
    }

    /// Reads the first reader's values (behind the shared block, so read after it).
    fn touch_values(&self) -> u64 {
        match self.decoded.first() {
            Some(Ok(row)) => row.values.first().map_or(0, |v| u64::from(v.is_null())),
            _ => 0,
        }
    }
}

/// Drops every record of `records`, reading each one's memory ahead of dropping it (its shared
/// block [`AHEAD`] records ahead, its values half as far), and leaves the buffer empty for
/// reuse.
pub(crate) fn free(records: &mut Vec<TopicRecord>) {
    let mut seen = 0u64;
    let mut drain = records.drain(..);
    loop {
        let rest = drain.as_slice();
        if let Some(r) = rest.get(AHEAD) {
            seen ^= r.touch_shared();
        }
        if let Some(r) = rest.get(AHEAD / 2) {
            seen ^= r.touch_values();
        }
        if drain.next().is_none() {
            break;
        }
    }
    std::hint::black_box(seen);
}

/// Where a produced record landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Offset {
    /// The partition.
    pub partition: u32,
    /// The record's offset in it.
    pub offset: u64,
}

#[derive(Debug, Default)]
struct Partition {
    /// Offset of `records[0]`.
    base: u64,
    records: VecDeque<TopicRecord>,
}

/// A topic: partitions of records plus the stream sources that read it.
#[derive(Debug)]
pub struct Topic {
    name: String,
    /// Stream sources reading the topic (indices into the repository's stream sources).
    readers: Vec<usize>,
    /// Decoding inputs per reader.
    schemas: Vec<StreamSource>,
    /// Join-key fields hashed to choose a partition.
    key_fields: Vec<String>,
    partitions: RwLock<Vec<Arc<Mutex<Partition>>>>,
    /// Records ever appended (all partitions), so a reader can tell cheaply that it is caught up.
    appended: AtomicU64,
}

impl Topic {
    /// An empty topic with `partitions` partitions (at least one).
    pub fn new(
        name: &str,
        readers: Vec<(usize, StreamSource)>,
        key_fields: Vec<String>,
        partitions: u32,
    ) -> Self {
        let (readers, schemas) = readers.into_iter().unzip();
        Topic {
            name: name.to_owned(),
            readers,
            schemas,
            key_fields,
            partitions: RwLock::new(
                (0..partitions.max(1))
                    .map(|_| Arc::new(Mutex::new(Partition::default())))
                    .collect(),
            ),
            appended: AtomicU64::new(0),
        }
    }

    /// Records ever appended to the topic, over all partitions.
    pub fn appended(&self) -> u64 {
        self.appended.load(Ordering::Acquire)
    }

    /// The topic's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The stream sources reading the topic (indices into the repository's stream sources).
    pub fn readers(&self) -> &[usize] {
        &self.readers
    }

    /// How many partitions the topic has now.
    pub fn partition_count(&self) -> u32 {
        u32::try_from(self.read_partitions().len()).unwrap_or(u32::MAX)
    }

    fn read_partitions(&self) -> std::sync::RwLockReadGuard<'_, Vec<Arc<Mutex<Partition>>>> {
        self.partitions.read().unwrap_or_else(|p| p.into_inner())
    }

    fn partition(&self, p: u32) -> Option<Arc<Mutex<Partition>>> {
        self.read_partitions().get(p as usize).cloned()
    }

    /// The partition a JSON record goes to when the producer names none: a stable hash
    /// (FNV-1a) of its join-key values, so one entity's records stay in order in one partition.
    pub fn partition_for(&self, record: &serde_json::Value) -> u32 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for field in &self.key_fields {
            let text = match record.get(field) {
                Some(serde_json::Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
                None => String::new(),
            };
            for b in text.bytes().chain(std::iter::once(0xff)) {
                h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
            }
        }
        let n = u64::from(self.partition_count().max(1));
        u32::try_from(h % n).unwrap_or(0)
    }

    /// Decodes a payload for every reader: strict JSON, an object, the source's schema.
    pub fn decode(&self, payload: &[u8]) -> Arc<[Decoded]> {
        let json = crate::json::parse_strict(payload);
        self.schemas
            .iter()
            .map(|source| decode_one(source, &json))
            .collect()
    }

    /// Appends a record to partition `partition` (created, with any partitions before it, when a
    /// broker's topic has more partitions than this one) and returns its offset.
    pub fn append(
        &self,
        partition: u32,
        payload: Bytes,
        decoded: Arc<[Decoded]>,
        produced_at: i64,
        appended_at: i64,
        broker_offset: Option<u64>,
    ) -> u64 {
        let part = match self.partition(partition) {
            Some(p) => p,
            None => {
                let mut parts = self.partitions.write().unwrap_or_else(|p| p.into_inner());
                while parts.len() <= partition as usize {
                    parts.push(Arc::new(Mutex::new(Partition::default())));
                }
                parts[partition as usize].clone()
            }
        };
        let mut part = part.lock().unwrap_or_else(|p| p.into_inner());
        let offset = part.base + part.records.len() as u64;
        part.records.push_back(TopicRecord {
            partition,
            offset,
            produced_at,
            appended_at,
            broker_offset,
            payload,
            decoded,
        });
        self.appended.fetch_add(1, Ordering::AcqRel);
        offset
    }

    /// The next offset of each partition (its end), in partition order.
    pub fn end_offsets(&self) -> Vec<u64> {
        self.read_partitions()
            .iter()
            .map(|p| {
                let p = p.lock().unwrap_or_else(|p| p.into_inner());
                p.base + p.records.len() as u64
            })
            .collect()
    }

    /// Records of `partition` from offset `from` that were appended at or before `until`, up to
    /// the first one appended later (appends are in time order, so this is a prefix).
    pub fn read(&self, partition: u32, from: u64, until: i64) -> Vec<TopicRecord> {
        let Some(part) = self.partition(partition) else {
            return Vec::new();
        };
        let part = part.lock().unwrap_or_else(|p| p.into_inner());
        let start = (from.saturating_sub(part.base) as usize).min(part.records.len());
        part.records
            .range(start..)
            .take_while(|r| r.appended_at <= until)
            .cloned()
            .collect()
    }

    /// [`Topic::read`] into `out`, returning how many records it added.
    pub fn read_into(
        &self,
        partition: u32,
        from: u64,
        until: i64,
        out: &mut Vec<TopicRecord>,
    ) -> usize {
        let Some(part) = self.partition(partition) else {
            return 0;
        };
        let part = part.lock().unwrap_or_else(|p| p.into_inner());
        let start = (from.saturating_sub(part.base) as usize).min(part.records.len());
        let before = out.len();
        // Cloning a record writes its shared block's count: read it ahead (see [`free`]).
        let mut seen = 0u64;
        for i in start..part.records.len() {
            let r = &part.records[i];
            if r.appended_at > until {
                break;
            }
            if let Some(ahead) = part.records.get(i + AHEAD) {
                seen ^= ahead.touch_shared();
            }
            out.push(r.clone());
        }
        std::hint::black_box(seen);
        out.len() - before
    }

    /// When the first record of `partition` at or after `from` was appended, if there is one.
    pub fn first_appended_at(&self, partition: u32, from: u64) -> Option<i64> {
        let part = self.partition(partition)?;
        let part = part.lock().unwrap_or_else(|p| p.into_inner());
        let start = from.saturating_sub(part.base) as usize;
        part.records.get(start).map(|r| r.appended_at)
    }

    /// Lets go of each partition's records before its offset in `offsets` (partition order).
    pub(crate) fn release_before(&self, offsets: &[u64]) {
        for (p, &o) in offsets.iter().enumerate() {
            self.release(u32::try_from(p).unwrap_or(u32::MAX), o);
        }
    }

    /// Lets go of the records of `partition` before `offset` (every reader has consumed them).
    pub fn release(&self, partition: u32, offset: u64) {
        let Some(part) = self.partition(partition) else {
            return;
        };
        let mut part = part.lock().unwrap_or_else(|p| p.into_inner());
        while part.base < offset && !part.records.is_empty() {
            part.records.pop_front();
            part.base += 1;
        }
    }

    /// Records still held (not yet consumed by every reader).
    pub fn held(&self) -> usize {
        self.read_partitions()
            .iter()
            .map(|p| p.lock().unwrap_or_else(|p| p.into_inner()).records.len())
            .sum()
    }

    /// Empties every partition; offsets start again at 0.
    pub fn clear(&self) {
        for p in self.read_partitions().iter() {
            *p.lock().unwrap_or_else(|p| p.into_inner()) = Partition::default();
        }
        self.appended.store(0, Ordering::Release);
    }
}

fn decode_one(source: &StreamSource, json: &Result<serde_json::Value, String>) -> Decoded {
    let json = json.as_ref().map_err(Clone::clone)?;
    let serde_json::Value::Object(record) = json else {
        return Err("the record is not a JSON object".into());
    };
    let values = validate_record(&source.schema, record).map_err(|errors| {
        errors
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    })?;
    let ts = source
        .schema
        .index_of(&source.timestamp_field)
        .and_then(|i| match values.get(i) {
            Some(Value::Timestamp(ts)) => Some(*ts),
            _ => None,
        })
        .ok_or_else(|| format!("field `{}`: no event time", source.timestamp_field))?;
    Ok(Row { values, ts })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo::Repository;

    fn topic() -> Topic {
        let repo = Repository::demo();
        let source = repo.stream_sources[0].clone();
        Topic::new("transactions", vec![(0, source)], vec!["user_id".into()], 4)
    }

    #[test]
    fn offsets_are_dense_per_partition_and_survive_release() {
        let t = topic();
        let d = t.decode(b"{}");
        assert_eq!(t.append(1, Bytes::new(), d.clone(), 0, 0, None), 0);
        assert_eq!(t.append(1, Bytes::new(), d.clone(), 0, 0, None), 1);
        assert_eq!(t.append(0, Bytes::new(), d.clone(), 0, 0, None), 0);
        t.release(1, 1);
        assert_eq!(t.append(1, Bytes::new(), d.clone(), 0, 5, None), 2);
        assert_eq!(t.end_offsets(), vec![1, 3, 0, 0]);
        let read = t.read(1, 0, 4);
        assert_eq!(read.iter().map(|r| r.offset).collect::<Vec<_>>(), vec![1]);
        assert_eq!(t.held(), 3);
        // A broker partition beyond the topic's count is created on demand.
        assert_eq!(t.append(6, Bytes::new(), d, 0, 0, Some(99)), 0);
        assert_eq!(t.partition_count(), 7);
    }

    #[test]
    fn the_same_key_always_goes_to_the_same_partition() {
        let t = topic();
        let a = serde_json::json!({"user_id": "u1", "amt": 1});
        let b = serde_json::json!({"user_id": "u1", "amt": 2});
        assert_eq!(t.partition_for(&a), t.partition_for(&b));
        let spread: std::collections::HashSet<u32> = (0..64)
            .map(|i| t.partition_for(&serde_json::json!({"user_id": format!("u{i}")})))
            .collect();
        assert!(spread.len() > 1, "keys spread over partitions");
    }

    #[test]
    fn records_are_decoded_or_say_why_not() {
        let t = topic();
        let ok = t.decode(br#"{"user_id":"u1","transaction_id":"t1","merchant":"m","amt":1.5,"is_fraud":0,"timestamp":"2024-06-01T00:00:00Z"}"#);
        assert!(ok[0].is_ok());
        let missing = t.decode(br#"{"user_id":"u1"}"#);
        assert!(missing[0].as_ref().is_err_and(|e| e.contains("amt")));
        let garbage = t.decode(b"not json");
        assert!(garbage[0].is_err());
    }
}
