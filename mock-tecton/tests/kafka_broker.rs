//! End to end through a real Kafka-protocol broker: records produced to the stream source's
//! topic on two partitions are consumed by the mock (`Config::kafka`, as `serve
//! --kafka-bootstrap` does), materialized by the micro-batch engine and served by get-features;
//! records that are not JSON or do not match the schema are counted and the consumer goes on.
//!
//! The broker comes from `scripts/kafka-broker.sh start` (tansu on 127.0.0.1, in-memory), whose
//! address `scripts/test.sh` passes in `TECTON_SIM_KAFKA_BOOTSTRAP`. Without it the test FAILS
//! when `CI` is set and otherwise prints a `SKIPPED: ...` notice and passes.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::time::{Duration, Instant};

use mock_tecton::kafka::{KafkaConfig, StartAt};
use mock_tecton::repo::DEMO_TOML;
use mock_tecton::stream::StreamConfig;
use mock_tecton::{Config, MockTecton, Repository};
use rskafka::chrono::{TimeZone, Utc};
use rskafka::client::partition::{Compression, PartitionClient, UnknownTopicHandling};
use rskafka::client::{Client, ClientBuilder};
use rskafka::record::Record;
use serde_json::{json, Value};

/// 2024-06-01T00:00:00Z.
const NOW: i64 = 1_717_200_000_000_000_000;

fn bootstrap() -> Option<String> {
    if let Ok(addr) = std::env::var("TECTON_SIM_KAFKA_BOOTSTRAP") {
        if !addr.is_empty() {
            return Some(addr);
        }
    }
    if std::env::var_os("CI").is_some() {
        panic!("TECTON_SIM_KAFKA_BOOTSTRAP is not set: CI must start the broker (scripts/kafka-broker.sh start, as scripts/test.sh does)");
    }
    // Written to the stderr handle: libtest hides eprintln! output of a passing test.
    let notice = "\n==================================================================\n\
         SKIPPED: kafka_broker: no broker (TECTON_SIM_KAFKA_BOOTSTRAP is not set).\n\
         \x20        Run `scripts/kafka-broker.sh start` and export its address.\n\
         ==================================================================\n\n";
    let _ = std::io::stderr().write_all(notice.as_bytes());
    None
}

fn tx(user: &str, id: &str, amt: f64, ts: &str) -> Vec<u8> {
    json!({"user_id": user, "transaction_id": id, "merchant": "acme", "amt": amt,
           "is_fraud": 0, "timestamp": ts})
    .to_string()
    .into_bytes()
}

async fn produce(client: &PartitionClient, values: Vec<Vec<u8>>) {
    let records = values
        .into_iter()
        .map(|v| Record {
            key: None,
            value: Some(v),
            headers: Default::default(),
            timestamp: Utc.timestamp_nanos(NOW - 60_000_000_000),
        })
        .collect();
    client
        .produce(records, Compression::NoCompression)
        .await
        .unwrap();
}

async fn partition(client: &Client, topic: &str, p: i32) -> PartitionClient {
    client
        .partition_client(topic, p, UnknownTopicHandling::Retry)
        .await
        .unwrap()
}

/// `user_transaction_amount_totals.amt_sum_1h_continuous` for a user, through get-features.
async fn sum_1h(mock: &MockTecton, user: &str) -> Value {
    let resp: Value = reqwest::Client::new()
        .post(format!(
            "{}/api/v1/feature-service/get-features",
            mock.url()
        ))
        .header("Authorization", "Tecton-key demo-consumer-key")
        .body(
            json!({"params": {"workspaceName": "prod", "featureServiceName": "fraud_detection",
                              "joinKeyMap": {"user_id": user},
                              "metadataOptions": {"includeNames": true}}})
            .to_string(),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names = resp["metadata"]["features"].as_array().unwrap();
    let i = names
        .iter()
        .position(|f| f["name"] == "user_transaction_amount_totals.amt_sum_1h_continuous")
        .unwrap();
    resp["result"]["features"][i].clone()
}

/// A topic of its own with `partitions` partitions (so reruns against the same broker start
/// clean), the demo repository reading it, and a client of the broker.
async fn fresh_topic(addr: &str, prefix: &str, partitions: i32) -> (String, Repository, Client) {
    let topic = format!(
        "{prefix}_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis()
    );
    let repo = Repository::from_toml(
        &DEMO_TOML.replace("topic = \"transactions\"", &format!("topic = \"{topic}\"")),
        "demo.toml",
    )
    .unwrap();
    let client = ClientBuilder::new(vec![addr.to_owned()])
        .build()
        .await
        .unwrap();
    client
        .controller_client()
        .unwrap()
        .create_topic(topic.as_str(), partitions, 1, 5_000)
        .await
        .unwrap();
    (topic, repo, client)
}

/// A mock on the virtual clock reading the repository's topics from `addr`, starting at
/// `start`, its micro-batches triggered as soon as records arrive.
async fn start_mock(repo: Repository, addr: String, start: StartAt) -> MockTecton {
    let config = Config::new(repo)
        .virtual_clock(NOW)
        .stream(StreamConfig {
            trigger_interval: Some(Duration::ZERO),
            ..StreamConfig::default()
        })
        .kafka(KafkaConfig::new(addr).start(start));
    MockTecton::start(config).await.unwrap()
}

/// Waits until the consumer has handed over `n` records.
async fn consumed(mock: &MockTecton, n: u64) {
    let status = mock.kafka().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while status.consumed() < n {
        assert!(
            Instant::now() < deadline,
            "the consumer handed over {} of {n} records in 60 s: {}",
            status.consumed(),
            status.to_json()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_materialize_get_features_through_a_real_broker() {
    let Some(addr) = bootstrap() else { return };
    let (topic, repo, client) = fresh_topic(&addr, "transactions", 2).await;
    let (p0, p1) = (
        partition(&client, &topic, 0).await,
        partition(&client, &topic, 1).await,
    );
    // Before the mock starts: `earliest` must find these.
    produce(
        &p0,
        vec![
            tx("u1", "t1", 10.0, "2024-05-31T23:50:00Z"),
            b"{not json".to_vec(),
            br#"{"user_id": "u1", "amt": "twelve"}"#.to_vec(),
            tx("u1", "t2", 5.0, "2024-05-31T23:55:00Z"),
        ],
    )
    .await;
    produce(&p1, vec![tx("u2", "t3", 7.0, "2024-05-31T23:52:00Z")]).await;

    let mock = start_mock(repo, addr, StartAt::Earliest).await;
    consumed(&mock, 5).await;
    // While it runs: a record produced now arrives too.
    produce(&p1, vec![tx("u2", "t4", 3.0, "2024-05-31T23:58:00Z")]).await;
    consumed(&mock, 6).await;
    mock.advance_clock(1_000_000_000);

    assert_eq!(sum_1h(&mock, "u1").await, json!(15.0));
    assert_eq!(sum_1h(&mock, "u2").await, json!(10.0));

    // Offsets per partition, nothing left behind.
    let status = mock.kafka().unwrap();
    let (s0, s1) = (
        status.progress(&topic, 0).unwrap(),
        status.progress(&topic, 1).unwrap(),
    );
    assert_eq!((s0.next_offset, s0.lag), (Some(4), Some(0)), "{s0:?}");
    assert_eq!((s1.next_offset, s1.lag), (Some(2), Some(0)), "{s1:?}");
    assert_eq!(s0.consumed + s1.consumed, 6);

    // The two bad records are in the stream's progress as invalid, with their reasons; the
    // records after them were still materialized (u1's sum includes t2).
    let progress: Value = reqwest::get(format!(
        "{}/_mock/streams/transactions_stream/progress",
        mock.url()
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let views = progress["queries"].as_array().unwrap().len() as u64;
    assert_eq!(progress["dropped"]["counts"]["invalid"], json!(2 * views));
    let kafka: Value = reqwest::get(format!("{}/_mock/kafka", mock.url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(kafka["connected"], true);
    assert_eq!(kafka["partitions"].as_array().unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latest_skips_what_was_there_and_reads_what_comes() {
    let Some(addr) = bootstrap() else { return };
    let (topic, repo, client) = fresh_topic(&addr, "latest", 1).await;
    let p0 = partition(&client, &topic, 0).await;
    produce(&p0, vec![tx("u1", "old", 100.0, "2024-05-31T23:50:00Z")]).await;
    let mock = start_mock(repo, addr, StartAt::Latest).await;
    // Wait until the reader has its starting offset, then produce.
    let status = mock.kafka().unwrap().clone();
    let deadline = Instant::now() + Duration::from_secs(60);
    while status.progress(&topic, 0).and_then(|p| p.next_offset) != Some(1) {
        assert!(Instant::now() < deadline, "{}", status.to_json());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    produce(&p0, vec![tx("u1", "new", 1.0, "2024-05-31T23:51:00Z")]).await;
    consumed(&mock, 1).await;
    mock.advance_clock(1_000_000_000);
    assert_eq!(sum_1h(&mock, "u1").await, json!(1.0));
}

/// `latest` is the end of the log even where the broker lists less: a partition written in one
/// producer batch of 50 records starts its reader at offset 50, with no lag, and what comes
/// next is read exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latest_starts_at_the_end_of_a_batched_partition() {
    let Some(addr) = bootstrap() else { return };
    let (topic, repo, client) = fresh_topic(&addr, "batched", 1).await;
    let p0 = partition(&client, &topic, 0).await;
    let old: Vec<Vec<u8>> = (0..50)
        .map(|i| tx("u1", &format!("old{i}"), 100.0, "2024-05-31T23:50:00Z"))
        .collect();
    produce(&p0, old).await;
    let mock = start_mock(repo, addr, StartAt::Latest).await;
    let status = mock.kafka().unwrap().clone();
    let deadline = Instant::now() + Duration::from_secs(60);
    let start = loop {
        if let Some(offset) = status.progress(&topic, 0).and_then(|p| p.next_offset) {
            break offset;
        }
        assert!(Instant::now() < deadline, "{}", status.to_json());
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        start,
        50,
        "the reader must start at the end: {}",
        status.to_json()
    );
    produce(&p0, vec![tx("u1", "new", 1.0, "2024-05-31T23:51:00Z")]).await;
    consumed(&mock, 1).await;
    let p = status.progress(&topic, 0).unwrap();
    assert_eq!(
        (p.next_offset, p.lag),
        (Some(51), Some(0)),
        "{}",
        status.to_json()
    );
    mock.advance_clock(1_000_000_000);
    assert_eq!(sum_1h(&mock, "u1").await, json!(1.0));
}
