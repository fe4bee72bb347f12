//! Fault injection over real connections: each action as a client sees it, and in the journal.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use mock_tecton::faults::{DriftField, FaultAction, FaultRule, FaultSet};
use mock_tecton::journal::Outcome;
use mock_tecton::Config;
use serde_json::json;

async fn with_faults(rules: Vec<FaultRule>) -> Harness {
    start(
        Config::default()
            .virtual_clock(NOW)
            .faults(FaultSet { seed: 1, rules }),
    )
    .await
}

fn one() -> serde_json::Value {
    batch(false, vec![txn("u1", "t1", 1.0, "2024-05-31T10:00:00Z")])
}

async fn send(
    h: &Harness,
    timeout: Duration,
) -> Result<(u16, reqwest::header::HeaderMap, String), reqwest::Error> {
    let resp = h
        .http
        .post(format!("{}/ingest", h.mock.url()))
        .header("Authorization", "Tecton-key demo-editor-key")
        .body(one().to_string())
        .timeout(timeout)
        .send()
        .await?;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    Ok((status, headers, resp.text().await?))
}

/// Journal entries are written when the exchange ends, which for a cut connection can be a
/// moment after the client saw the error.
async fn settled_journal(h: &Harness, n: usize) -> Vec<mock_tecton::journal::Entry> {
    for _ in 0..100 {
        let j = h.mock.journal();
        if j.len() >= n {
            return j;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    h.mock.journal()
}

#[tokio::test]
async fn status_with_retry_after_then_normal_service() {
    let rule = FaultRule::new(FaultAction::Status {
        status: 429,
        retry_after_s: Some(2),
        message: None,
    })
    .named("throttle")
    .times(1);
    let h = with_faults(vec![rule]).await;
    let (status, headers, body) = send(&h, Duration::from_secs(5)).await.unwrap();
    assert_eq!(status, 429);
    assert_eq!(headers["retry-after"], "2");
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["requestError"]["errorType"], "ResourceExhaustedError");
    assert_eq!(
        send(&h, Duration::from_secs(5)).await.unwrap().0,
        200,
        "the rule fired once"
    );
    let j = settled_journal(&h, 2).await;
    assert_eq!(
        j[0].fault.as_deref(),
        Some("throttle: status 429 retry-after 2s")
    );
    assert_eq!(j[1].fault, None);
    assert_eq!(
        h.mock.offline_rows("transactions").len(),
        1,
        "the throttled request wrote nothing"
    );
}

#[tokio::test]
async fn linear_script_429_then_hang_then_ok() {
    let rule = FaultRule::script([
        (
            FaultAction::Status {
                status: 503,
                retry_after_s: None,
                message: None,
            },
            Some(1),
        ),
        (
            FaultAction::Hang {
                max_ms: Some(5_000),
            },
            Some(1),
        ),
    ]);
    let h = with_faults(vec![rule]).await;
    assert_eq!(send(&h, Duration::from_secs(5)).await.unwrap().0, 503);
    let started = Instant::now();
    let err = send(&h, Duration::from_millis(300)).await.unwrap_err();
    assert!(err.is_timeout(), "{err}");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(send(&h, Duration::from_secs(5)).await.unwrap().0, 200);
    let j = settled_journal(&h, 3).await;
    let outcomes: Vec<Outcome> = j.iter().map(|e| e.outcome).collect();
    assert_eq!(
        outcomes,
        [Outcome::Responded, Outcome::ClientGone, Outcome::Responded],
        "{j:#?}"
    );
    assert_eq!(h.mock.offline_rows("transactions").len(), 1);
}

#[tokio::test]
async fn hang_past_its_limit_closes_without_answer() {
    let h = with_faults(vec![FaultRule::new(FaultAction::Hang {
        max_ms: Some(200),
    })])
    .await;
    let err = send(&h, Duration::from_secs(5)).await.unwrap_err();
    assert!(
        !err.is_timeout(),
        "the mock closed the connection before the client's timeout: {err}"
    );
    let j = settled_journal(&h, 1).await;
    assert_eq!(j[0].outcome, Outcome::Abandoned);
    assert_eq!(j[0].status, 0);
}

#[tokio::test]
async fn reset_before_body_writes_nothing() {
    let h = with_faults(vec![FaultRule::new(FaultAction::ResetBeforeBody)]).await;
    let err = send(&h, Duration::from_secs(5)).await.unwrap_err();
    assert!(
        err.is_request() || err.is_connect() || err.to_string().contains("connection"),
        "{err:?}"
    );
    let j = settled_journal(&h, 1).await;
    assert_eq!(j[0].outcome, Outcome::Reset);
    assert!(h.mock.offline_rows("transactions").is_empty());
}

#[tokio::test]
async fn reset_after_body_lands_the_write_but_no_answer() {
    let h = with_faults(vec![FaultRule::new(FaultAction::ResetAfterBody {
        process: true,
    })])
    .await;
    assert!(send(&h, Duration::from_secs(5)).await.is_err());
    let j = settled_journal(&h, 1).await;
    assert_eq!(j[0].outcome, Outcome::Reset);
    assert_eq!(
        j[0].status, 200,
        "the journal keeps the status the write would have got"
    );
    assert_eq!(
        h.mock.offline_rows("transactions").len(),
        1,
        "the write landed"
    );

    let h = with_faults(vec![FaultRule::new(FaultAction::ResetAfterBody {
        process: false,
    })])
    .await;
    assert!(send(&h, Duration::from_secs(5)).await.is_err());
    assert!(h.mock.offline_rows("transactions").is_empty());
}

#[tokio::test]
async fn truncated_response_after_a_landed_write() {
    let h = with_faults(vec![FaultRule::new(FaultAction::Truncate)]).await;
    assert!(
        send(&h, Duration::from_secs(5)).await.is_err(),
        "reading the cut body fails"
    );
    let j = settled_journal(&h, 1).await;
    assert_eq!(j[0].outcome, Outcome::Truncated);
    assert_eq!(h.mock.offline_rows("transactions").len(), 1);
}

#[tokio::test]
async fn dribbled_response_arrives_whole_but_slowly() {
    let h = with_faults(vec![FaultRule::new(FaultAction::Dribble {
        chunk_bytes: Some(64),
        interval_ms: Some(30),
    })])
    .await;
    let started = Instant::now();
    let (status, _, body) = send(&h, Duration::from_secs(10)).await.unwrap();
    assert_eq!(status, 200);
    let chunks = body.len().div_ceil(64) as u32;
    assert!(
        started.elapsed() >= Duration::from_millis(30) * (chunks - 1),
        "{chunks} chunks in {:?}",
        started.elapsed()
    );
    assert!(serde_json::from_str::<serde_json::Value>(&body).is_ok());
}

#[tokio::test]
async fn latency_delays_then_serves() {
    let h = with_faults(vec![FaultRule::new(FaultAction::Latency {
        ms: 150,
        max_ms: None,
    })])
    .await;
    let started = Instant::now();
    assert_eq!(send(&h, Duration::from_secs(5)).await.unwrap().0, 200);
    assert!(started.elapsed() >= Duration::from_millis(150));
}

#[tokio::test]
async fn garbage_body_is_not_json() {
    let h = with_faults(vec![FaultRule::new(FaultAction::Garbage { status: None })]).await;
    let (status, _, body) = send(&h, Duration::from_secs(5)).await.unwrap();
    assert_eq!(status, 200);
    assert!(serde_json::from_str::<serde_json::Value>(&body).is_err());
    assert!(
        h.mock.offline_rows("transactions").is_empty(),
        "a garbage answer means the request was not handled"
    );
}

#[tokio::test]
async fn schema_drift_from_a_point_in_the_run() {
    let drift = FaultAction::SchemaDrift {
        add: vec![DriftField {
            name: "channel".into(),
            data_type: "String".into(),
        }],
        remove: vec![],
        retype: vec![],
    };
    let rule = FaultRule::new(drift).from_request(1);
    let h = with_faults(vec![rule]).await;
    assert_eq!(send(&h, Duration::from_secs(5)).await.unwrap().0, 200);
    let (status, _, body) = send(&h, Duration::from_secs(5)).await.unwrap();
    assert_eq!(status, 400);
    assert!(body.contains("field `channel`: missing"), "{body}");
}

#[tokio::test]
async fn source_filter_applies_after_the_body_is_read() {
    let rule = FaultRule {
        source: Some("clicks".into()),
        ..FaultRule::status(500)
    };
    let h = with_faults(vec![rule]).await;
    assert_eq!(
        send(&h, Duration::from_secs(5)).await.unwrap().0,
        200,
        "requests for other sources are untouched"
    );
}

#[tokio::test]
async fn faults_are_installed_live_through_the_admin_api() {
    let h = demo().await;
    let url = format!("{}/_mock/faults", h.mock.url());
    let bad = h
        .http
        .post(&url)
        .json(&json!({"rules": [{"action": {"kind": "status", "status": 200}}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status().as_u16(), 400);
    assert!(bad.text().await.unwrap().contains("not an error status"));
    let ok = h.http.post(&url).json(&json!({"seed": 3, "rules": [{"name": "boom", "times": 1, "action": {"kind": "status", "status": 502}}]})).send().await.unwrap();
    assert_eq!(ok.status().as_u16(), 200);
    assert_eq!(send(&h, Duration::from_secs(5)).await.unwrap().0, 502);
    assert_eq!(send(&h, Duration::from_secs(5)).await.unwrap().0, 200);
    let status: serde_json::Value = h.http.get(&url).send().await.unwrap().json().await.unwrap();
    assert_eq!(
        (
            status["rules"][0]["matched"].as_u64(),
            status["rules"][0]["fired"].as_u64()
        ),
        (Some(2), Some(1))
    );
    h.http.delete(&url).send().await.unwrap();
    let status: serde_json::Value = h.http.get(&url).send().await.unwrap().json().await.unwrap();
    assert_eq!(status["rules"], json!([]));
}

/// The bug: after a `times = 2` rule answered 429, 429, 200, 200 the status showed fired 4,
/// equal to matched, while the journal held 2 faults.
#[tokio::test]
async fn faults_status_counts_fired_as_what_fired_not_what_matched() {
    let h = demo().await;
    let url = format!("{}/_mock/faults", h.mock.url());
    let ok = h.http.post(&url).json(&json!({"seed": 1, "rules": [{"name": "throttle", "times": 2, "action": {"kind": "status", "status": 429}}]})).send().await.unwrap();
    assert_eq!(ok.status().as_u16(), 200);
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(send(&h, Duration::from_secs(5)).await.unwrap().0);
    }
    assert_eq!(statuses, [429, 429, 200, 200]);
    let status: serde_json::Value = h.http.get(&url).send().await.unwrap().json().await.unwrap();
    assert_eq!(
        (
            status["rules"][0]["matched"].as_u64(),
            status["rules"][0]["fired"].as_u64()
        ),
        (Some(4), Some(2))
    );
    let journal = h.admin("/journal").await;
    let faults = journal["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| !e["fault"].is_null())
        .count();
    assert_eq!(faults, 2);
}

#[tokio::test]
async fn same_seed_same_faults() {
    let run = |seed: u64| async move {
        let h = start(Config::default().virtual_clock(NOW).faults(FaultSet {
            seed,
            rules: vec![FaultRule::status(500).probability(0.5)],
        }))
        .await;
        let mut statuses = Vec::new();
        for _ in 0..30 {
            statuses.push(send(&h, Duration::from_secs(5)).await.unwrap().0);
        }
        statuses
    };
    let a = run(11).await;
    assert_eq!(a, run(11).await);
    assert_ne!(a, run(12).await);
}

#[tokio::test]
async fn faulted_exchanges_keep_their_records_and_structured_fault_in_the_journal() {
    let rule = FaultRule::new(FaultAction::Status {
        status: 429,
        retry_after_s: Some(3),
        message: None,
    })
    .times(1);
    let h = with_faults(vec![rule]).await;
    assert_eq!(send(&h, Duration::from_secs(5)).await.unwrap().0, 429);
    let j = settled_journal(&h, 1).await;
    assert!(
        String::from_utf8_lossy(&j[0].request_body).contains("\"t1\""),
        "the throttled request's records are journaled"
    );
    assert_eq!(
        j[0].fault_action,
        Some(FaultAction::Status {
            status: 429,
            retry_after_s: Some(3),
            message: None
        })
    );
}

#[tokio::test]
async fn a_client_that_leaves_during_latency_or_a_dribble_is_journaled_as_gone() {
    let h = with_faults(vec![FaultRule::new(FaultAction::Latency {
        ms: 400,
        max_ms: None,
    })])
    .await;
    assert!(send(&h, Duration::from_millis(100))
        .await
        .unwrap_err()
        .is_timeout());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let j = settled_journal(&h, 1).await;
    assert_eq!(j[0].outcome, Outcome::ClientGone);
    assert!(
        h.mock.offline_rows("transactions").is_empty(),
        "latency delays before handling: a client that leaves first wrote nothing"
    );

    let h = with_faults(vec![FaultRule::new(FaultAction::Dribble {
        chunk_bytes: Some(16),
        interval_ms: Some(100),
    })])
    .await;
    assert!(send(&h, Duration::from_millis(250)).await.is_err());
    let j = settled_journal(&h, 1).await;
    for _ in 0..100 {
        if h.mock.journal().first().map(|e| e.outcome) == Some(Outcome::ClientGone) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(h.mock.journal()[0].outcome, Outcome::ClientGone, "{j:?}");
}
