//! Each pattern end to end against the in-process mock: what is acknowledged is servable
//! (checked through get-features), and freshness means what the docs say it means.

#![allow(clippy::unwrap_used)] // helpers outside #[test] functions

use std::time::Duration;

use loadgen::plan::Plan;
use loadgen::session::{run_point, Measured, Setup};
use mock_tecton::stream::StreamConfig;
use mock_tecton::{Config, MockTecton, Repository};
use reports::load::Pattern;

const SEED: u64 = 424_242;

async fn mock(trigger: Option<Duration>) -> MockTecton {
    let config = Config::new(Repository::demo()).stream(StreamConfig {
        trigger_interval: trigger,
        ..StreamConfig::default()
    });
    MockTecton::start(config).await.unwrap()
}

async fn point(setup: &Setup, pattern: Pattern, rate: f64, secs: f64) -> Measured {
    let plan = Plan::constant(rate, Duration::from_secs_f64(secs)).unwrap();
    run_point(setup, pattern, plan)
        .await
        .unwrap_or_else(|e| panic!("seed {SEED}: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_acknowledges_every_record_and_the_feature_server_serves_them() {
    let mock = mock(None).await;
    let setup = Setup::demo(mock.url(), SEED);
    let m = point(&setup, Pattern::Push, 300.0, 1.5).await;
    let p = &m.point;
    assert_eq!(p.records_sent, 450, "seed {SEED}");
    assert_eq!(p.records_acknowledged, 450, "seed {SEED}: {:?}", p.errors);
    assert!(p.errors.is_empty());
    // Batches of 1..10 records: fewer requests than records.
    assert!((45..450).contains(&p.requests), "{} requests", p.requests);
    let fresh = p
        .freshness_ms
        .expect("push freshness is the time to the 200");
    assert!(fresh.max <= p.latency_ms.max + 0.01);
    let check = m.check.expect("the demo's keys are checked");
    assert_eq!(check.checked, 20, "seed {SEED}");
    assert_eq!(
        check.agreed, check.checked,
        "seed {SEED}: {:?}",
        check.disagreements
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_freshness_is_the_time_to_the_micro_batch_that_served_it() {
    // Every query triggers each 500 ms: a record waits for the next micro-batch.
    let mock = mock(Some(Duration::from_millis(500))).await;
    let mut setup = Setup::demo(mock.url(), SEED);
    setup.settle = Duration::from_secs(10);
    let m = point(&setup, Pattern::Kafka, 200.0, 1.0).await;
    let p = &m.point;
    assert_eq!(p.records_acknowledged, 200, "seed {SEED}: {:?}", p.errors);
    let fresh = p.freshness_ms.expect("the stream's progress has freshness");
    // Produce latency is milliseconds; freshness is up to a trigger interval more.
    assert!(
        fresh.p90 > p.latency_ms.p50,
        "seed {SEED}: {fresh:?} vs {:?}",
        p.latency_ms
    );
    assert!(fresh.max < 5_000.0, "seed {SEED}: {fresh:?}");
    let check = m.check.expect("the demo's keys are checked");
    assert_eq!(
        check.agreed, check.checked,
        "seed {SEED}: {:?}",
        check.disagreements
    );
}

/// A sink in Python's standard library that posts every `SINK_BATCH_SIZE` lines as they come
/// (`stream`), or reads all of stdin before posting anything (`hoard`).
const PY_SINK: &str = r#"
import json, os, sys, urllib.request
url = os.environ["TECTON_URL"] + "/ingest"
size = int(os.environ["SINK_BATCH_SIZE"])
def post(batch):
    body = {"workspace_name": os.environ["TECTON_WORKSPACE"], "dry_run": False,
            "records": {os.environ["TECTON_PUSH_SOURCE"]: [{"record": r} for r in batch]}}
    req = urllib.request.Request(url, json.dumps(body).encode(), {"Authorization": "Tecton-key " + os.environ["TECTON_API_KEY"]})
    urllib.request.urlopen(req).read()
lines = iter(sys.stdin.readline, "") if sys.argv[1] == "stream" else sys.stdin.readlines()
batch = []
for line in lines:
    batch.append(json.loads(line))
    if len(batch) == size:
        post(batch); batch = []
if batch:
    post(batch)
"#;

fn python() -> Option<&'static str> {
    let found = std::process::Command::new("python3")
        .arg("--version")
        .output()
        .is_ok();
    if !found {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "python3 is needed under CI"
        );
        eprintln!("NOTICE: python3 not found; the sink-pattern test is skipped");
        return None;
    }
    Some("python3")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sink_pattern_measures_a_sink_end_to_end() {
    let Some(py) = python() else { return };
    let dir = std::env::temp_dir().join(format!("loadgen-sink-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("sink.py");
    std::fs::write(&script, PY_SINK).unwrap();
    let mock = mock(None).await;
    let mut setup = Setup::demo(mock.url(), SEED);
    setup.batch = (5, 5);
    setup.settle = Duration::from_secs(20);

    setup.sink_command = Some(format!("{py} {} stream", script.display()));
    let streaming = point(&setup, Pattern::Sink, 100.0, 1.5).await.point;
    setup.sink_command = Some(format!("{py} {} hoard", script.display()));
    let hoarding = point(&setup, Pattern::Sink, 100.0, 1.5).await.point;
    std::fs::remove_dir_all(&dir).unwrap();

    for p in [&streaming, &hoarding] {
        assert_eq!(p.records_acknowledged, 150, "seed {SEED}: {:?}", p.errors);
        assert_eq!(p.requests, 30, "the sink's own requests, from the journal");
        assert!(p.errors.is_empty(), "{:?}", p.errors);
    }
    // Holding everything until EOF costs about the run's length, half of it at the median;
    // posting as batches fill costs one batch's wait (50 ms at 100 records/s).
    assert!(
        hoarding.latency_ms.p50 >= 500.0,
        "hoarding {:?}",
        hoarding.latency_ms
    );
    assert!(
        streaming.latency_ms.p50 < 400.0,
        "streaming {:?}",
        streaming.latency_ms
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sink_that_fails_is_an_error_not_a_silent_zero() {
    let mock = mock(None).await;
    let mut setup = Setup::demo(mock.url(), SEED);
    setup.sink_command = Some("cat >/dev/null; echo gave up >&2; exit 3".into());
    let p = point(&setup, Pattern::Sink, 50.0, 0.5).await.point;
    assert_eq!(p.records_sent, 25);
    assert_eq!(p.records_acknowledged, 0);
    assert_eq!(p.errors.get("sink_exit_3"), Some(&1), "{:?}", p.errors);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sink_that_stops_reading_is_declared_stalled_not_waited_on_forever() {
    let mock = mock(None).await;
    let mut setup = Setup::demo(mock.url(), SEED);
    setup.settle = Duration::from_millis(500);
    // Never reads stdin, never exits on its own: the pipe fills after some 64 KiB.
    setup.sink_command = Some("sleep 30".into());
    let p = point(&setup, Pattern::Sink, 2000.0, 1.0).await.point;
    assert_eq!(p.errors.get("sink_stalled"), Some(&1), "{:?}", p.errors);
    assert!(p.records_sent < 2000, "{} lines written", p.records_sent);
    assert_eq!(p.records_acknowledged, 0);
}
