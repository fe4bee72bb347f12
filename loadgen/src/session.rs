//! One load run point from start to finish: reset the mock, drive the pattern, collect the
//! pattern's freshness, and hand back a [`RunPoint`].

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reports::load::{FreshnessMs, Pattern, RunPoint};
use serde_json::Value;

use crate::broker::Producer;
use crate::plan::Plan;
use crate::records::{EventSpec, RecordSource, RecordsError};
use crate::rng::Rng;
use crate::run::{self, RunError, RunSpec};
use crate::target::Target;

/// Everything a run needs apart from its pattern and plan.
#[derive(Debug, Clone)]
pub struct Setup {
    /// Base URL of the mock.
    pub url: String,
    /// Editor key for pushes (and the sink's `TECTON_API_KEY`).
    pub api_key: String,
    /// Workspace.
    pub workspace: String,
    /// Push source (`push` and `sink` patterns).
    pub push_source: String,
    /// Stream source (`kafka` pattern): its progress holds the freshness figures.
    pub stream_source: String,
    /// The stream source's topic.
    pub topic: String,
    /// A real Kafka-protocol broker (`HOST:PORT`) for the `kafka` pattern; `None`: the mock's
    /// in-memory topic. The mock must consume from the same broker.
    pub kafka_bootstrap: Option<String>,
    /// Generated events, unless `input` is set.
    pub events: EventSpec,
    /// Records from a JSONL file instead of generated ones.
    pub input: Option<PathBuf>,
    /// The one seed.
    pub seed: u64,
    /// Pool size, batch sizes, late threshold, timeout, progress bar.
    pub connections: usize,
    /// Records per request: uniform in `min..=max`.
    pub batch: (u64, u64),
    /// A send that starts more than this after its due time is late.
    pub late_after: Duration,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Live progress on a terminal.
    pub progress: bool,
    /// The user's sink command (`sink` pattern).
    pub sink_command: Option<String>,
    /// How long to wait after the last send for the stream to catch up (`kafka`, `sink`).
    pub settle: Duration,
    /// Keys checked through get-features after a push or kafka point (0: none). Needs the
    /// demo's feature service (`check_service`) and generated records.
    pub check_keys: usize,
    /// Feature service read by the check, with a Consumer key.
    pub check_service: String,
    /// Consumer key for the check.
    pub consumer_key: String,
}

impl Setup {
    /// The embedded demo's names and the generator's defaults, against `url`.
    pub fn demo(url: impl Into<String>, seed: u64) -> Setup {
        Setup {
            url: url.into(),
            api_key: "demo-editor-key".into(),
            workspace: "prod".into(),
            push_source: "transactions".into(),
            stream_source: "transactions_stream".into(),
            topic: "transactions".into(),
            kafka_bootstrap: None,
            events: EventSpec::default(),
            input: None,
            seed,
            connections: 64,
            batch: (1, 10),
            late_after: Duration::from_millis(10),
            timeout: Duration::from_secs(10),
            progress: false,
            sink_command: None,
            settle: Duration::from_secs(60),
            check_keys: 20,
            check_service: "fraud_detection".into(),
            consumer_key: "demo-consumer-key".into(),
        }
    }

    /// The records of a point: the same sequence for every point of a run (same seed), so
    /// patterns are compared on the same events.
    pub fn records(&self) -> Result<RecordSource, RecordsError> {
        match &self.input {
            Some(path) => RecordSource::file(path),
            None => RecordSource::generated(self.events.clone(), self.seed),
        }
    }

    fn spec(&self, plan: Plan) -> RunSpec {
        RunSpec {
            plan,
            connections: self.connections,
            batch: self.batch,
            late_after: self.late_after,
            timeout: self.timeout,
            progress: self.progress,
            sample_keys: if self.input.is_none() {
                self.check_keys
            } else {
                0
            },
        }
    }
}

/// Why a point could not be measured.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Bad records settings or input file.
    #[error(transparent)]
    Records(#[from] RecordsError),
    /// The run could not start.
    #[error(transparent)]
    Run(#[from] RunError),
    /// The mock answered its admin API unexpectedly.
    #[error("{0}")]
    Mock(String),
    /// The sink command could not be run.
    #[error("{0}")]
    Sink(String),
    /// The Kafka broker could not be used.
    #[error(transparent)]
    Broker(#[from] crate::broker::BrokerError),
}

/// A measured point and the check of its sampled keys through the feature server.
#[derive(Debug, Clone)]
pub struct Measured {
    /// The measurements.
    pub point: RunPoint,
    /// The get-features check (`None` when not made).
    pub check: Option<KeyCheck>,
}

/// Sampled keys read back through get-features: does the served count of each key's records
/// equal the records acknowledged for it?
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KeyCheck {
    /// Keys read.
    pub checked: usize,
    /// Keys whose served count matched.
    pub agreed: usize,
    /// The first disagreements: key, acknowledged records, served count (or the error).
    pub disagreements: Vec<(String, u64, String)>,
}

/// The feature the check reads: records of a key in the last day (a CONTINUOUS count, so a
/// record counts as soon as it is servable).
const CHECK_FEATURE: &str = "user_transaction_amount_totals.amt_count_1d_continuous";

/// Runs one point: `pattern` at `plan` against the mock at `setup.url`.
pub async fn run_point(setup: &Setup, pattern: Pattern, plan: Plan) -> Result<Measured, LoadError> {
    let admin = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(RunError::Client)?;
    reset(&admin, &setup.url).await?;
    let offered = plan.offered_rate();
    let mut records = setup.records()?;
    let mut rng = Rng::new(setup.seed, 2);
    match pattern {
        Pattern::Push => {
            let target = Target::Push {
                url: setup.url.clone(),
                api_key: setup.api_key.clone(),
                workspace: setup.workspace.clone(),
                source: setup.push_source.clone(),
            };
            let done = run::run_http(&setup.spec(plan), &target, &mut records, &mut rng).await?;
            let check = check_keys(&admin, setup, &done.sample).await;
            Ok(Measured {
                point: done.point(pattern, offered),
                check,
            })
        }
        Pattern::Kafka => {
            let done = match &setup.kafka_bootstrap {
                None => {
                    let target = Target::Kafka {
                        url: setup.url.clone(),
                        topic: setup.topic.clone(),
                    };
                    run::run_http(&setup.spec(plan), &target, &mut records, &mut rng).await?
                }
                Some(bootstrap) => {
                    let producer =
                        Producer::connect(bootstrap, &setup.topic, setup.timeout).await?;
                    consumer_caught_up(&admin, setup, producer.partition_count()).await?;
                    // What the consumer read before this point is not this point's.
                    reset(&admin, &setup.url).await?;
                    let spec = setup.spec(plan);
                    run::run_broker(&spec, Arc::new(producer), &mut records, &mut rng).await?
                }
            };
            let mut point = done.point(pattern, offered);
            point.freshness_ms =
                stream_freshness(&admin, setup, point.records_acknowledged).await?;
            let check = check_keys(&admin, setup, &done.sample).await;
            Ok(Measured { point, check })
        }
        Pattern::Sink => crate::sink::run_sink(setup, &setup.spec(plan), &mut records, &admin)
            .await
            .map(|done| Measured {
                point: done.point(pattern, offered),
                check: None,
            }),
    }
}

/// `POST /_mock/reset`: empty stores, journal and stream state, so each point starts alike.
pub(crate) async fn reset(admin: &reqwest::Client, url: &str) -> Result<(), LoadError> {
    let resp = admin
        .post(format!("{url}/_mock/reset"))
        .send()
        .await
        .map_err(|e| LoadError::Mock(format!("cannot reach the mock at {url}: {e}")))?;
    if !resp.status().is_success() {
        return Err(LoadError::Mock(format!(
            "POST {url}/_mock/reset answered {}: is {url} a tecton-sim mock?",
            resp.status()
        )));
    }
    Ok(())
}

/// Waits until the mock consumes every partition of the topic from the broker with no lag, so
/// that the run starts from a quiet topic and none of its records is skipped (a consumer that
/// starts at `latest` skips what came before its first offset). At most `settle`.
async fn consumer_caught_up(
    admin: &reqwest::Client,
    setup: &Setup,
    partitions: usize,
) -> Result<(), LoadError> {
    let url = format!("{}/_mock/kafka", setup.url);
    let deadline = Instant::now() + setup.settle.max(Duration::from_secs(5));
    loop {
        let resp = admin
            .get(&url)
            .send()
            .await
            .map_err(|e| LoadError::Mock(format!("GET {url}: {e}")))?;
        if resp.status() == reqwest::StatusCode::NOT_FOUND {
            return Err(LoadError::Mock(format!(
                "the mock at {} does not consume from Kafka: start it with `tecton-sim serve \
                 --kafka-bootstrap {}` (or leave out --url)",
                setup.url,
                setup.kafka_bootstrap.as_deref().unwrap_or("HOST:PORT")
            )));
        }
        let body: Value = resp
            .json()
            .await
            .map_err(|e| LoadError::Mock(format!("GET {url}: {e}")))?;
        let ready: Vec<&Value> = body["partitions"]
            .as_array()
            .map(|ps| {
                ps.iter()
                    .filter(|p| p["topic"] == setup.topic.as_str())
                    .filter(|p| p["next_offset"].is_i64() && p["lag"] == 0)
                    .collect()
            })
            .unwrap_or_default();
        if ready.len() >= partitions {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(LoadError::Mock(format!(
                "the mock at {} did not catch up with topic `{}` on the broker within {:?}: \
                 is it consuming from {}? (GET {url}: {body})",
                setup.url,
                setup.topic,
                setup.settle,
                setup.kafka_bootstrap.as_deref().unwrap_or_default()
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until every query of the stream source has made each acknowledged record servable
/// or dropped it (or `settle` passes), then reads the source's freshness histogram: servable
/// time minus produced time (the due time sent as `produced_at_ns`), kept by the mock for
/// every view's materialized events.
async fn stream_freshness(
    admin: &reqwest::Client,
    setup: &Setup,
    acknowledged: u64,
) -> Result<Option<FreshnessMs>, LoadError> {
    let url = format!(
        "{}/_mock/streams/{}/progress?recent=0",
        setup.url, setup.stream_source
    );
    let deadline = Instant::now() + setup.settle;
    let mut last: Option<Value> = None;
    loop {
        // A busy mock may miss the admin client's timeout while it materializes a large
        // backlog: that is worth another try, not the end of the run.
        let read = match admin.get(&url).send().await {
            Ok(resp) if resp.status().is_success() => resp
                .json::<Value>()
                .await
                .map_err(|e| format!("GET {url}: {e}")),
            Ok(resp) => {
                return Err(LoadError::Mock(format!(
                    "GET {url} answered {}: no stream source `{}`?",
                    resp.status(),
                    setup.stream_source
                )))
            }
            Err(e) => Err(format!("GET {url}: {e}")),
        };
        let mut failure = None;
        match read {
            Ok(body) => {
                if caught_up(&body, acknowledged) {
                    return Ok(freshness(&body["freshness_ms"]));
                }
                last = Some(body);
            }
            Err(e) => failure = Some(e),
        }
        if Instant::now() >= deadline {
            let Some(body) = last else {
                eprintln!(
                    "      could not read the stream's progress within --settle {:?} ({}); freshness not measured",
                    setup.settle,
                    failure.unwrap_or_default()
                );
                return Ok(None);
            };
            eprintln!(
                "      the stream had not processed every record after --settle {:?}; freshness covers those it had",
                setup.settle
            );
            return Ok(freshness(&body["freshness_ms"]));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Whether every query has materialized or dropped `acknowledged` records.
fn caught_up(progress: &Value, acknowledged: u64) -> bool {
    let Some(queries) = progress["queries"].as_array() else {
        return false;
    };
    queries.iter().all(|q| {
        let done = q["freshness_ms"]["count"].as_u64().unwrap_or(0);
        let dropped: u64 = q["dropped"]
            .as_object()
            .map_or(0, |d| d.values().filter_map(Value::as_u64).sum());
        done + dropped >= acknowledged
    })
}

/// `{"count","p50","p90","p99","max"}` (nulls when empty) as [`FreshnessMs`].
fn freshness(v: &Value) -> Option<FreshnessMs> {
    Some(FreshnessMs {
        p50: v["p50"].as_f64()?,
        p90: v["p90"].as_f64()?,
        p99: v["p99"].as_f64()?,
        max: v["max"].as_f64()?,
    })
}

/// Reads each sampled key's record count through get-features and compares it with the
/// records acknowledged for it. `None` when there is nothing to check or the feature service
/// does not serve the checked feature (another repository).
async fn check_keys(
    admin: &reqwest::Client,
    setup: &Setup,
    sample: &[(String, u64)],
) -> Option<KeyCheck> {
    let url = format!("{}/api/v1/feature-service/get-features", setup.url);
    let mut check = KeyCheck::default();
    for (key, acked) in sample.iter().filter(|(_, n)| *n > 0) {
        let body = serde_json::json!({"params": {
            "workspaceName": setup.workspace,
            "featureServiceName": setup.check_service,
            "joinKeyMap": {"user_id": key},
            "metadataOptions": {"includeNames": true},
        }});
        let resp = admin
            .post(&url)
            .header(
                "Authorization",
                format!("Tecton-key {}", setup.consumer_key),
            )
            .json(&body)
            .send()
            .await;
        let served = match resp {
            Ok(r) if r.status().is_success() => r.json::<Value>().await.ok(),
            _ => None,
        };
        let Some(served) = served else {
            check.checked += 1;
            check
                .disagreements
                .push((key.clone(), *acked, "get-features failed".into()));
            continue;
        };
        let names = served["metadata"]["features"].as_array()?;
        let at = names.iter().position(|f| f["name"] == CHECK_FEATURE)?;
        let value = &served["result"]["features"][at];
        let count = value
            .as_str()
            .and_then(|s| s.parse::<u64>().ok())
            .or_else(|| value.as_u64());
        check.checked += 1;
        if count == Some(*acked) {
            check.agreed += 1;
        } else if check.disagreements.len() < 5 {
            check
                .disagreements
                .push((key.clone(), *acked, value.to_string()));
        }
    }
    (check.checked > 0).then_some(check)
}
