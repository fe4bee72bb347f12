//! The `kafka` pattern against a real Kafka-protocol broker (`--kafka-bootstrap HOST:PORT`):
//! each batch is produced to the stream source's topic with `rskafka` (the client the mock
//! consumes with), and the mock, started with the same bootstrap, consumes it into the stream
//! engine.
//!
//! - Records are partitioned by a hash of their `user_id`, so one user's records stay in order
//!   through one partition, as a keyed Kafka producer would do. A batch that spans partitions
//!   goes out as one produce call per partition, sent together; the batch is acknowledged when
//!   every call returned its offsets, and counts as one request.
//! - Each record's Kafka timestamp is the request's due time. The mock takes that timestamp as
//!   the record's produced-at time, so freshness is measured from the due time, as with the
//!   in-memory topic. Kafka timestamps have millisecond precision: freshness may read up to
//!   1 ms high.
//! - A topic that does not exist is created with one partition.

use std::sync::Arc;
use std::time::Duration;

use rskafka::chrono::{TimeZone, Utc};
use rskafka::client::error::{Error as KafkaError, ProtocolError};
use rskafka::client::partition::{Compression, PartitionClient, UnknownTopicHandling};
use rskafka::client::ClientBuilder;
use rskafka::record::Record as KafkaRecord;
use rskafka::BackoffConfig;

use crate::recorder::Outcome;
use crate::records::Record;
use crate::run::Sender;

/// A producer to every partition of one topic.
pub(crate) struct Producer {
    topic: String,
    partitions: Vec<Arc<PartitionClient>>,
    timeout: Duration,
}

impl std::fmt::Debug for Producer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer")
            .field("topic", &self.topic)
            .field("partitions", &self.partitions.len())
            .finish()
    }
}

/// Why the producer could not start.
#[derive(Debug, thiserror::Error)]
#[error("Kafka broker {bootstrap}: {message}")]
pub struct BrokerError {
    /// The bootstrap address.
    pub bootstrap: String,
    /// What went wrong.
    pub message: String,
}

impl Producer {
    /// Connects to `bootstrap`, creates `topic` (one partition) when it does not exist, and
    /// opens a client per partition. Each produce call is bounded by `timeout`.
    pub(crate) async fn connect(
        bootstrap: &str,
        topic: &str,
        timeout: Duration,
    ) -> Result<Producer, BrokerError> {
        let fail = |message: String| BrokerError {
            bootstrap: bootstrap.to_owned(),
            message,
        };
        let client = ClientBuilder::new(vec![bootstrap.to_owned()])
            .client_id("tecton-sim-load")
            .backoff_config(BackoffConfig {
                deadline: Some(timeout),
                ..BackoffConfig::default()
            })
            .build()
            .await
            .map_err(|e| fail(format!("cannot connect: {e}")))?;
        let mut partitions = partitions_of(&client, topic).await.map_err(fail)?;
        if partitions.is_empty() {
            let created = client
                .controller_client()
                .map_err(|e| fail(format!("no controller: {e}")))?
                .create_topic(topic, 1, 1, 5_000)
                .await;
            match created {
                Ok(()) => {}
                // Another producer created it in the meantime.
                Err(KafkaError::ServerError {
                    protocol_error: ProtocolError::TopicAlreadyExists,
                    ..
                }) => {}
                Err(e) => return Err(fail(format!("cannot create topic `{topic}`: {e}"))),
            }
            partitions = partitions_of(&client, topic).await.map_err(fail)?;
            if partitions.is_empty() {
                partitions = vec![0];
            }
        }
        let mut clients = Vec::with_capacity(partitions.len());
        for p in partitions {
            let pc = client
                .partition_client(topic, p, UnknownTopicHandling::Retry)
                .await
                .map_err(|e| fail(format!("cannot open partition {topic}/{p}: {e}")))?;
            clients.push(Arc::new(pc));
        }
        Ok(Producer {
            topic: topic.to_owned(),
            partitions: clients,
            timeout,
        })
    }

    /// Partitions of the topic.
    pub(crate) fn partition_count(&self) -> usize {
        self.partitions.len()
    }

    /// The partition of a record: a hash of its `user_id` (partition 0 without one).
    fn partition_of(&self, record: &Record) -> usize {
        let key = record
            .get("user_id")
            .and_then(|v| v.as_str())
            .unwrap_or_default();
        (fnv1a(key.as_bytes()) % self.partitions.len() as u64) as usize
    }
}

/// Topic partitions as listed by the broker, in order (empty when the topic does not exist).
async fn partitions_of(client: &rskafka::client::Client, topic: &str) -> Result<Vec<i32>, String> {
    let listed = client
        .list_topics()
        .await
        .map_err(|e| format!("cannot list topics: {e}"))?;
    Ok(listed
        .into_iter()
        .find(|t| t.name == topic)
        .map(|t| t.partitions.into_iter().collect())
        .unwrap_or_default())
}

/// 64-bit FNV-1a: stable across runs and platforms, so a seed replays the same partitioning.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// One batch, split by partition.
#[derive(Debug)]
pub(crate) struct Produce {
    groups: Vec<(Arc<PartitionClient>, Vec<KafkaRecord>)>,
}

impl Sender for Producer {
    type Request = Produce;

    fn request(&self, records: Vec<Record>, due_ns: i64) -> Produce {
        let timestamp = Utc.timestamp_nanos(due_ns);
        let mut by_partition: Vec<Vec<KafkaRecord>> = vec![Vec::new(); self.partitions.len()];
        for r in records {
            let p = self.partition_of(&r);
            let key = r
                .get("user_id")
                .and_then(|v| v.as_str())
                .map(|k| k.as_bytes().to_vec());
            by_partition[p].push(KafkaRecord {
                key,
                // A map of JSON values always serializes.
                value: Some(serde_json::to_vec(&r).unwrap_or_default()),
                headers: Default::default(),
                timestamp,
            });
        }
        Produce {
            groups: self
                .partitions
                .iter()
                .cloned()
                .zip(by_partition)
                .filter(|(_, rs)| !rs.is_empty())
                .collect(),
        }
    }

    fn send(&self, req: Produce) -> impl std::future::Future<Output = Outcome> + Send {
        let timeout = self.timeout;
        async move {
            // Calls to different partitions go out together, each on its own task.
            let calls: Vec<_> = req
                .groups
                .into_iter()
                .map(|(client, records)| {
                    tokio::spawn(async move {
                        client.produce(records, Compression::NoCompression).await
                    })
                })
                .collect();
            let all = async {
                let mut failure = None;
                for call in calls {
                    match call.await {
                        Ok(Ok(_offsets)) => {}
                        Ok(Err(e)) => failure = failure.or(Some(error_kind(&e))),
                        Err(_) => failure = failure.or(Some("kafka_client".to_owned())),
                    }
                }
                failure
            };
            match tokio::time::timeout(timeout, all).await {
                Err(_) => Outcome::Failed("timeout".into()),
                Ok(None) => Outcome::Ok,
                Ok(Some(kind)) => Outcome::Failed(kind),
            }
        }
    }

    fn ack_is_servable(&self) -> bool {
        false
    }
}

/// The `errors` key of a failed produce call: `kafka_` and the broker's error code in
/// snake case (`kafka_not_leader_or_follower`), or `kafka_connection`/`kafka_client`.
fn error_kind(e: &KafkaError) -> String {
    match e {
        KafkaError::ServerError { protocol_error, .. } => {
            format!("kafka_{}", snake(&format!("{protocol_error:?}")))
        }
        KafkaError::Connection(_) => "kafka_connection".into(),
        KafkaError::Timeout => "timeout".into(),
        _ => "kafka_client".into(),
    }
}

fn snake(camel: &str) -> String {
    let mut out = String::with_capacity(camel.len() + 4);
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else if c.is_ascii_alphanumeric() {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitioning_is_stable_and_error_kinds_are_snake_case() {
        // FNV-1a test vectors.
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(snake("NotLeaderOrFollower"), "not_leader_or_follower");
        assert_eq!(snake("Unknown(42)"), "unknown42");
    }
}
