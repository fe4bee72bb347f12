//! The Tecton latency and capacity profile over real connections. Bounds are generous: the
//! distributions and limiters are tested exactly as units in `profile.rs`; these tests show a
//! client sees them.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use mock_tecton::faults::{FaultAction, FaultRule, FaultSet};
use mock_tecton::profile::TectonProfile;
use mock_tecton::Config;
use serde_json::json;

const SEED: u64 = 11;

fn profiled(knobs: TectonProfile) -> Config {
    Config::default().virtual_clock(NOW).profile(knobs)
}

fn get_features_body() -> String {
    json!({"params": {"workspaceName": "prod", "featureServiceName": "fraud_detection",
                      "joinKeyMap": {"user_id": "u1"}}})
    .to_string()
}

async fn get_features(h: &Harness) -> (u16, Duration) {
    let started = Instant::now();
    let resp = h
        .http
        .post(format!(
            "{}/api/v1/feature-service/get-features",
            h.mock.url()
        ))
        .header("Authorization", "Tecton-key demo-consumer-key")
        .body(get_features_body())
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let _ = resp.text().await.unwrap();
    (status, started.elapsed())
}

#[tokio::test]
async fn ingest_takes_tecton_time_and_says_so_in_the_journal() {
    let h = start(profiled(TectonProfile {
        seed: SEED,
        ..TectonProfile::default()
    }))
    .await;
    let mut took = Vec::new();
    for i in 0..15 {
        let body = batch(
            false,
            vec![txn("u1", &format!("t{i}"), 1.0, "2024-05-31T10:00:00Z")],
        );
        let started = Instant::now();
        let (status, _) = h.ingest("demo-editor-key", &body).await;
        took.push(started.elapsed());
        assert_eq!(status, 200, "seed {SEED}");
    }
    took.sort();
    // Drawn around a 55 ms median: the raw mock answers in well under a millisecond.
    let median = took[took.len() / 2];
    assert!(
        median >= Duration::from_millis(25) && median <= Duration::from_millis(400),
        "seed {SEED}: median {median:?}"
    );
    let journal = h.mock.journal();
    assert!(journal.iter().all(|e| e
        .fault
        .as_deref()
        .is_some_and(|f| f.starts_with("tecton profile: latency"))));
}

#[tokio::test]
async fn feature_server_refuses_beyond_capacity_with_tecton_429s() {
    let h = start(profiled(TectonProfile {
        seed: SEED,
        serving_capacity_qps: 5.0,
        serving_p50_ms: 1.0,
        serving_p99_ms: 2.0,
        ..TectonProfile::default()
    }))
    .await;
    // Twenty requests at once against 5 QPS with one second of burst: five pass.
    let all = futures_join(&h, 20).await;
    let ok = all.iter().filter(|s| **s == 200).count();
    let throttled = all.iter().filter(|s| **s == 429).count();
    assert!((4..=7).contains(&ok), "seed {SEED}: {all:?}");
    assert_eq!(ok + throttled, 20, "{all:?}");
    let resp = h
        .http
        .post(format!(
            "{}/api/v1/feature-service/get-features",
            h.mock.url()
        ))
        .header("Authorization", "Tecton-key demo-consumer-key")
        .body(get_features_body())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 429);
    assert!(resp.headers().get("retry-after").is_none());
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["code"], 8, "feature server error format: {body}");
}

async fn futures_join(h: &Harness, n: usize) -> Vec<u16> {
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..n {
        let http = h.http.clone();
        let url = format!("{}/api/v1/feature-service/get-features", h.mock.url());
        tasks.spawn(async move {
            http.post(url)
                .header("Authorization", "Tecton-key demo-consumer-key")
                .body(get_features_body())
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        });
    }
    let mut statuses = Vec::new();
    while let Some(s) = tasks.join_next().await {
        statuses.push(s.unwrap());
    }
    statuses
}

#[tokio::test]
async fn a_held_feature_request_gets_504_at_the_timeout() {
    let mut config = profiled(TectonProfile {
        seed: SEED,
        serving_timeout_ms: 300,
        ..TectonProfile::default()
    });
    config = config.faults(FaultSet {
        seed: SEED,
        rules: vec![FaultRule::new(FaultAction::Latency {
            ms: 5_000,
            max_ms: None,
        })
        .on_path("/api/v1/feature-service/get-features")],
    });
    let h = start(config).await;
    let (status, took) = get_features(&h).await;
    assert_eq!(status, 504);
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_millis(4_000),
        "{took:?}"
    );
    let entry = h.mock.journal().pop().unwrap();
    assert_eq!(entry.status, 504);
    assert!(entry
        .fault
        .unwrap()
        .ends_with("tecton profile: 504 after 300 ms"));
}

#[tokio::test]
async fn the_raw_mock_stays_the_default() {
    let h = demo().await;
    let (status, took) = get_features(&h).await;
    assert_eq!(status, 200);
    assert!(took < Duration::from_secs(2));
    assert!(h.mock.journal().iter().all(|e| e.fault.is_none()));
    assert!(h.mock.state().profile().is_none());
}

#[tokio::test]
async fn the_profile_gives_micro_batches_their_spark_overhead_unless_set() {
    let h = start(profiled(TectonProfile::default())).await;
    assert_eq!(
        h.mock.state().streams().config().batch_overhead,
        Duration::from_millis(800)
    );
    let own = mock_tecton::stream::StreamConfig {
        batch_overhead: Duration::from_millis(50),
        ..Default::default()
    };
    let h = start(profiled(TectonProfile::default()).stream(own)).await;
    assert_eq!(
        h.mock.state().streams().config().batch_overhead,
        Duration::from_millis(50)
    );
}
