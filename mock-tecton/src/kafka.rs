//! Consuming stream sources from a real Kafka-protocol broker (`serve --kafka-bootstrap`).
//!
//! One task per (topic, partition) of every stream source's topic fetches records in offset
//! order and hands each record's value, untouched, to a `TopicLog` (the stream engine's topic
//! log), with the partition, the record's timestamp and its broker offset. The consumer never
//! judges a record: schema checks happen in the log, so a record that does not match is counted
//! and journaled there and the consumer moves on. The consumer only stops with the mock.
//!
//! Offsets live in the consumer (no consumer group, no commits): every start begins at the
//! earliest or latest offset, as `--kafka-start` says; a partition that appears later (a topic
//! created or grown after the start) is read from its earliest offset, so nothing produced to
//! it is missed. An offset that falls out of the broker's range (records deleted) restarts the
//! partition at its earliest offset, counted in the status.
//!
//! The client is `rskafka`: pure Rust, so no C library or cmake in the build.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use bytes::Bytes;
use rskafka::client::error::{Error as ClientError, ProtocolError};
use rskafka::client::partition::{OffsetAt, PartitionClient, UnknownTopicHandling};
use rskafka::client::{Client, ClientBuilder};
use rskafka::BackoffConfig;
use serde::Serialize;
use tokio::task::JoinSet;

use crate::state::MockState;

/// Where the consumer puts records: the topic log of the stream engine.
pub(crate) trait TopicLog: Send + Sync + 'static {
    /// Appends one record's value as consumed from `topic`/`partition` at `broker_offset`;
    /// `produced_at_ns` is the record's timestamp (ns since the epoch). An error is counted and
    /// the consumer goes on with the next record.
    fn append(
        &self,
        topic: &str,
        partition: u32,
        payload: Bytes,
        produced_at_ns: i64,
        broker_offset: Option<u64>,
    ) -> Result<(), AppendError>;
}

/// Why a consumed record was not appended.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AppendError {
    /// The mock the consumer feeds has stopped.
    #[error("the mock has stopped")]
    Stopped,
    /// The stream engine refused the record.
    #[error(transparent)]
    Refused(#[from] crate::stream::StreamError),
}

/// The mock's own topics: each consumed record goes through [`MockState::append`], which
/// decodes and validates it for the stream engine. Weak, so the consumer never keeps a stopped
/// mock alive.
impl TopicLog for Weak<MockState> {
    fn append(
        &self,
        topic: &str,
        partition: u32,
        payload: Bytes,
        produced_at_ns: i64,
        broker_offset: Option<u64>,
    ) -> Result<(), AppendError> {
        let state = self.upgrade().ok_or(AppendError::Stopped)?;
        state.append(topic, partition, payload, produced_at_ns, broker_offset)?;
        Ok(())
    }
}

/// Where a partition's reading starts when the consumer starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StartAt {
    /// Every record still on the broker.
    #[default]
    Earliest,
    /// Only records produced after the consumer started.
    Latest,
}

/// A start position other than `earliest` or `latest`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown start `{0}`: use `earliest` or `latest`")]
pub struct UnknownStart(pub String);

impl std::str::FromStr for StartAt {
    type Err = UnknownStart;

    fn from_str(s: &str) -> Result<Self, UnknownStart> {
        match s {
            "earliest" => Ok(StartAt::Earliest),
            "latest" => Ok(StartAt::Latest),
            other => Err(UnknownStart(other.to_owned())),
        }
    }
}

/// How to reach the broker and where to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaConfig {
    /// `HOST:PORT` of one broker.
    pub bootstrap: String,
    /// Where partitions present at the start begin.
    pub start: StartAt,
    /// How long a fetch waits on the broker for new records.
    pub max_wait: Duration,
    /// How often topic metadata is re-read to find new topics and partitions.
    pub refresh: Duration,
    /// Most bytes asked for in one fetch.
    pub fetch_max_bytes: i32,
}

impl KafkaConfig {
    /// Defaults for a bootstrap address.
    pub fn new(bootstrap: impl Into<String>) -> Self {
        KafkaConfig {
            bootstrap: bootstrap.into(),
            start: StartAt::Earliest,
            max_wait: Duration::from_millis(200),
            refresh: Duration::from_secs(1),
            fetch_max_bytes: 1024 * 1024,
        }
    }

    /// Sets where partitions begin.
    pub fn start(mut self, start: StartAt) -> Self {
        self.start = start;
        self
    }
}

/// What one partition's reader has done.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct PartitionProgress {
    /// The next offset to read.
    pub next_offset: Option<i64>,
    /// The broker's high watermark at the last fetch.
    pub high_watermark: Option<i64>,
    /// Records behind the high watermark.
    pub lag: Option<i64>,
    /// Records handed to the topic log.
    pub consumed: u64,
    /// Records the topic log refused (or that had no value).
    pub refused: u64,
    /// Times the offset fell out of the broker's range and restarted at the earliest.
    pub offset_resets: u64,
    /// The last error, if the last attempt failed.
    pub last_error: Option<String>,
}

/// The consumer's progress, shared with `GET /_mock/kafka`.
#[derive(Debug, Default)]
pub struct KafkaStatus {
    bootstrap: String,
    start: StartAt,
    topics: Vec<String>,
    inner: Mutex<StatusInner>,
}

#[derive(Debug, Default)]
struct StatusInner {
    connected: bool,
    last_error: Option<String>,
    partitions: BTreeMap<(String, u32), PartitionProgress>,
}

impl KafkaStatus {
    /// The status of a consumer of `topics` (each once) that has not connected yet.
    pub fn new(config: &KafkaConfig, topics: impl IntoIterator<Item = String>) -> Self {
        KafkaStatus {
            bootstrap: config.bootstrap.clone(),
            start: config.start,
            topics: topics
                .into_iter()
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect(),
            inner: Mutex::default(),
        }
    }

    fn update<R>(&self, f: impl FnOnce(&mut StatusInner) -> R) -> R {
        f(&mut self.inner.lock().unwrap_or_else(|p| p.into_inner()))
    }

    fn partition<R>(
        &self,
        topic: &str,
        partition: u32,
        f: impl FnOnce(&mut PartitionProgress) -> R,
    ) -> R {
        self.update(|s| {
            f(s.partitions
                .entry((topic.to_owned(), partition))
                .or_default())
        })
    }

    /// Records handed to the topic log, over every partition.
    pub fn consumed(&self) -> u64 {
        self.update(|s| s.partitions.values().map(|p| p.consumed).sum())
    }

    /// The progress of one partition.
    pub fn progress(&self, topic: &str, partition: u32) -> Option<PartitionProgress> {
        self.update(|s| s.partitions.get(&(topic.to_owned(), partition)).cloned())
    }

    /// Everything, as JSON.
    pub fn to_json(&self) -> serde_json::Value {
        self.update(|s| {
            serde_json::json!({
                "bootstrap": self.bootstrap,
                "start": self.start,
                "topics": self.topics,
                "connected": s.connected,
                "last_error": s.last_error,
                "partitions": s.partitions.iter().map(|((topic, partition), p)| {
                    let mut v = serde_json::to_value(p).unwrap_or_default();
                    v["topic"] = topic.as_str().into();
                    v["partition"] = (*partition).into();
                    v
                }).collect::<Vec<_>>(),
            })
        })
    }
}

/// A running consumer; dropping it stops every reader.
#[derive(Debug)]
pub(crate) struct KafkaConsumer {
    status: Arc<KafkaStatus>,
    task: tokio::task::JoinHandle<()>,
}

impl KafkaConsumer {
    /// Starts consuming the status's topics into `log` in the background (on the current
    /// runtime), reporting to `status`.
    pub(crate) fn spawn(
        config: KafkaConfig,
        status: Arc<KafkaStatus>,
        log: Arc<dyn TopicLog>,
    ) -> Self {
        let task = tokio::spawn(run(config, log, status.clone()));
        KafkaConsumer { status, task }
    }

    /// The consumer's progress.
    pub(crate) fn status(&self) -> &Arc<KafkaStatus> {
        &self.status
    }
}

impl Drop for KafkaConsumer {
    fn drop(&mut self) {
        // The readers live in the task's JoinSet, which aborts them when dropped.
        self.task.abort();
    }
}

/// Connects (retrying), then keeps one reader per partition of every wanted topic.
async fn run(config: KafkaConfig, log: Arc<dyn TopicLog>, status: Arc<KafkaStatus>) {
    let topics = status.topics.clone();
    let client = loop {
        let built = ClientBuilder::new(vec![config.bootstrap.clone()])
            .client_id("tecton-sim")
            .backoff_config(BackoffConfig {
                deadline: Some(Duration::from_secs(5)),
                ..BackoffConfig::default()
            })
            .build()
            .await;
        match built {
            Ok(client) => break Arc::new(client),
            Err(e) => {
                let message = format!("cannot reach the broker at {}: {e}", config.bootstrap);
                tracing::warn!("{message}");
                status.update(|s| s.last_error = Some(message));
                tokio::time::sleep(config.refresh).await;
            }
        }
    };
    status.update(|s| {
        s.connected = true;
        s.last_error = None;
    });
    tracing::info!(bootstrap = %config.bootstrap, ?topics, "consuming stream sources from Kafka");
    let mut readers = JoinSet::new();
    let mut started: BTreeSet<(String, i32)> = BTreeSet::new();
    let mut first_listing = true;
    loop {
        match client.list_topics().await {
            Ok(listed) => {
                status.update(|s| s.last_error = None);
                for topic in listed.iter().filter(|t| topics.contains(&t.name)) {
                    for &partition in &topic.partitions {
                        let (Ok(index), true) = (
                            u32::try_from(partition),
                            started.insert((topic.name.clone(), partition)),
                        ) else {
                            continue;
                        };
                        // Partitions found after the first listing are new: read them whole.
                        let start = if first_listing {
                            config.start
                        } else {
                            StartAt::Earliest
                        };
                        readers.spawn(read_partition(
                            client.clone(),
                            config.clone(),
                            topic.name.clone(),
                            index,
                            start,
                            log.clone(),
                            status.clone(),
                        ));
                    }
                }
                first_listing = false;
            }
            Err(e) => {
                let message = format!("cannot list topics: {e}");
                tracing::warn!("{message}");
                status.update(|s| s.last_error = Some(message));
            }
        }
        tokio::time::sleep(config.refresh).await;
    }
}

/// The pause after an empty fetch that came back at once.
const EMPTY_FETCH_PAUSE: Duration = Duration::from_millis(20);

/// Reads one partition forever, in offset order.
async fn read_partition(
    client: Arc<Client>,
    config: KafkaConfig,
    topic: String,
    partition: u32,
    start: StartAt,
    log: Arc<dyn TopicLog>,
    status: Arc<KafkaStatus>,
) {
    let note_error = |e: String| {
        tracing::warn!(%topic, partition, "{e}");
        status.partition(&topic, partition, |p| p.last_error = Some(e));
    };
    let client = loop {
        match client
            .partition_client(
                topic.as_str(),
                partition as i32,
                UnknownTopicHandling::Retry,
            )
            .await
        {
            Ok(c) => break c,
            Err(e) => note_error(format!("cannot open the partition: {e}")),
        }
        tokio::time::sleep(config.refresh).await;
    };
    let at = match start {
        StartAt::Earliest => OffsetAt::Earliest,
        StartAt::Latest => OffsetAt::Latest,
    };
    let mut offset = first_offset(&client, at, &config, &note_error).await;
    status.partition(&topic, partition, |p| p.next_offset = Some(offset));
    loop {
        let asked = std::time::Instant::now();
        let fetched = client
            .fetch_records(
                offset,
                1..config.fetch_max_bytes,
                i32::try_from(config.max_wait.as_millis()).unwrap_or(i32::MAX),
            )
            .await;
        match fetched {
            Ok((records, high_watermark)) => {
                // A broker that answers an empty fetch at once, instead of waiting for records,
                // would make this loop spin.
                if records.is_empty() && asked.elapsed() < EMPTY_FETCH_PAUSE {
                    tokio::time::sleep(EMPTY_FETCH_PAUSE).await;
                }
                let (mut consumed, mut refused) = (0, 0);
                for r in records {
                    // A fetch may start inside a compressed batch: skip what was read before.
                    if r.offset < offset {
                        continue;
                    }
                    offset = r.offset + 1;
                    let produced_at_ns = r.record.timestamp.timestamp_nanos_opt().unwrap_or(0);
                    let payload = r.record.value.map(Bytes::from).unwrap_or_default();
                    let appended = log.append(
                        &topic,
                        partition,
                        payload,
                        produced_at_ns,
                        u64::try_from(r.offset).ok(),
                    );
                    match appended {
                        Ok(()) => consumed += 1,
                        Err(e) => {
                            refused += 1;
                            tracing::debug!(%topic, partition, offset = r.offset, "record refused: {e}");
                        }
                    }
                }
                status.partition(&topic, partition, |p| {
                    p.consumed += consumed;
                    p.refused += refused;
                    p.next_offset = Some(offset);
                    p.high_watermark = Some(high_watermark);
                    p.lag = Some((high_watermark - offset).max(0));
                    p.last_error = None;
                });
            }
            Err(ClientError::ServerError {
                protocol_error: ProtocolError::OffsetOutOfRange,
                ..
            }) => {
                offset = first_offset(&client, OffsetAt::Earliest, &config, &note_error).await;
                status.partition(&topic, partition, |p| {
                    p.offset_resets += 1;
                    p.next_offset = Some(offset);
                });
            }
            Err(e) => {
                note_error(format!("fetch at offset {offset} failed: {e}"));
                tokio::time::sleep(config.refresh).await;
            }
        }
    }
}

/// The offset to start at, retrying until the broker answers.
async fn first_offset(
    client: &PartitionClient,
    at: OffsetAt,
    config: &KafkaConfig,
    note_error: &impl Fn(String),
) -> i64 {
    let listed = loop {
        match client.get_offset(at).await {
            Ok(offset) => break offset,
            Err(e) => note_error(format!("cannot read the {at:?} offset: {e}")),
        }
        tokio::time::sleep(config.refresh).await;
    };
    if !matches!(at, OffsetAt::Latest) {
        return listed;
    }
    // The end of the log is the high watermark. A broker may list a latest offset below it
    // (tansu 0.6 lists 1 for a partition written in producer batches): starting there would
    // report a lag that never closes, so a fetch's high watermark is taken when it is higher.
    match client.fetch_records(listed, 1..2, 0).await {
        Ok((_, high_watermark)) if high_watermark > listed => high_watermark,
        _ => listed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_parses_and_refuses_unknown_words() {
        assert_eq!("earliest".parse::<StartAt>(), Ok(StartAt::Earliest));
        assert_eq!("latest".parse::<StartAt>(), Ok(StartAt::Latest));
        assert!("newest"
            .parse::<StartAt>()
            .unwrap_err()
            .to_string()
            .contains("earliest"));
    }

    struct Nowhere;
    impl TopicLog for Nowhere {
        fn append(
            &self,
            _: &str,
            _: u32,
            _: Bytes,
            _: i64,
            _: Option<u64>,
        ) -> Result<(), AppendError> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn an_unreachable_broker_is_reported_not_fatal() {
        // Port 9 on loopback: nothing listens, so connecting fails at once.
        let config = KafkaConfig::new("127.0.0.1:9");
        let status = Arc::new(KafkaStatus::new(&config, ["t".into(), "t".into()]));
        let consumer = KafkaConsumer::spawn(config, status, Arc::new(Nowhere));
        let mut seen = None;
        for _ in 0..200 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let json = consumer.status().to_json();
            if json["last_error"].is_string() {
                seen = Some(json);
                break;
            }
        }
        let json = seen.expect("the failure shows in the status");
        assert_eq!(json["connected"], false);
        assert_eq!(json["topics"], serde_json::json!(["t"]));
        assert!(json["last_error"]
            .as_str()
            .unwrap_or_default()
            .contains("127.0.0.1:9"));
    }
}
