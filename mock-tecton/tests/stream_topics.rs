//! The stream data path over HTTP: produce to a topic, micro-batches on the virtual clock, the
//! online store and the progress endpoints.

use mock_tecton::{Config, MockTecton};
use serde_json::{json, Value};

const T0: &str = "2024-06-01T00:00:00Z";

fn tx(user: &str, id: &str, amt: f64, ts: &str) -> Value {
    json!({"user_id": user, "transaction_id": id, "merchant": "acme", "amt": amt, "is_fraud": 0, "timestamp": ts})
}

async fn start() -> MockTecton {
    let ns = mock_tecton::schema::parse_timestamp(T0).expect("time");
    MockTecton::start(Config::default().virtual_clock(ns))
        .await
        .expect("mock starts")
}

#[tokio::test]
async fn produce_answers_offsets_in_input_order_and_refuses_bad_bodies() {
    let mock = start().await;
    let http = reqwest::Client::new();
    let url = format!("{}/_mock/topics/transactions", mock.url());
    let body = [
        tx("u1", "t1", 1.0, T0),
        tx("u1", "t2", 2.0, T0),
        tx("u2", "t3", 3.0, T0),
    ]
    .iter()
    .map(Value::to_string)
    .collect::<Vec<_>>()
    .join("\n");
    let r = http.post(&url).body(body).send().await.expect("send");
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["topic"], "transactions");
    let offsets = v["offsets"].as_array().expect("offsets");
    assert_eq!(offsets.len(), 3);
    // Same key, same partition, consecutive offsets.
    assert_eq!(offsets[0]["partition"], offsets[1]["partition"]);
    assert_eq!(
        offsets[1]["offset"].as_u64(),
        offsets[0]["offset"].as_u64().map(|o| o + 1)
    );

    // A JSON array with an explicit partition; a record that does not match is still appended.
    let r = http
        .post(format!(
            "{url}?partition=3&produced_at_ns=1717200000000000000"
        ))
        .json(&json!([tx("u9", "t9", 1.0, T0), {"user_id": "u9"}]))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.expect("json");
    let o = &v["offsets"];
    assert_eq!(
        (o[0]["partition"].as_u64(), o[1]["partition"].as_u64()),
        (Some(3), Some(3))
    );
    assert_eq!(
        o[1]["offset"].as_u64(),
        o[0]["offset"].as_u64().map(|x| x + 1)
    );

    let r = http
        .post(&url)
        .body("{not json")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 400);
    assert!(r.text().await.expect("text").contains("line 1"));
    let r = http
        .post(format!("{}/_mock/topics/nope", mock.url()))
        .body("{}")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 404);
    let v: Value = r.json().await.expect("json");
    assert!(v["error"].as_str().expect("error").contains("nope"));
}

#[tokio::test]
async fn a_time_interval_view_materializes_at_its_30_second_trigger() {
    let mock = start().await;
    let view = |name: &str| {
        mock.state()
            .repo()
            .feature_views
            .iter()
            .position(|v| v.name == name)
            .expect("view")
    };
    let events = |name: &str| match mock.state().online().get(view(name), &key("u1")) {
        Some(mock_tecton::store::OnlineEntry::Aggregates(s)) => s.len(),
        Some(mock_tecton::store::OnlineEntry::Attributes(_)) => 1,
        None => 0,
    };
    // Every query's first trigger fires when it starts (T0): all three views see the record.
    mock.produce(
        "transactions",
        &[tx("u1", "t1", 5.0, "2024-05-31T23:55:00Z")],
    )
    .expect("produce");
    assert_eq!(events("user_transaction_amount_totals"), 1);
    assert_eq!(events("user_transaction_counts"), 1);
    // One second later: the CONTINUOUS view (0 s trigger) writes at once, the TIME_INTERVAL
    // view waits for its next 30 s boundary.
    mock.advance_clock(1_000_000_000);
    mock.produce(
        "transactions",
        &[tx("u1", "t2", 6.0, "2024-05-31T23:56:00Z")],
    )
    .expect("produce");
    assert_eq!(events("user_transaction_amount_totals"), 2);
    assert_eq!(events("user_transaction_counts"), 1);
    mock.advance_clock(28_000_000_000);
    assert_eq!(events("user_transaction_counts"), 1, "29 s: not yet");
    mock.advance_clock(1_000_000_000);
    assert_eq!(
        events("user_transaction_counts"),
        2,
        "30 s: the trigger fired"
    );

    let progress: Value = reqwest::get(format!(
        "{}/_mock/streams/transactions_stream/progress",
        mock.url()
    ))
    .await
    .expect("get")
    .json()
    .await
    .expect("json");
    let queries = progress["queries"].as_array().expect("queries");
    assert_eq!(queries.len(), 3);
    let counts = &queries[1];
    assert_eq!(counts["view"], "user_transaction_counts");
    let last = &counts["lastProgress"];
    assert_eq!(last["batchId"], 1);
    assert_eq!(last["numInputRows"], 1);
    assert_eq!(last["timestamp"], "2024-06-01T00:00:30.000Z");
    // After batch 0 saw 23:55, the watermark is 23:55 - 24h.
    assert_eq!(last["eventTime"]["watermark"], "2024-05-30T23:55:00.000Z");
    assert_eq!(
        last["stateOperators"][0]["numRowsTotal"], 1,
        "both events share one tile"
    );
    assert_eq!(last["stateOperators"][0]["numRowsUpdated"], 1);
    // Freshness: 3 views x 2 events; the TIME_INTERVAL one waited 29 s for its trigger.
    assert_eq!(progress["freshness_ms"]["count"], 6);
    assert_eq!(progress["freshness_ms"]["max"], 29_000.0);
    assert_eq!(progress["freshness_ms"]["p50"], 0.0);
}

fn key(user: &str) -> mock_tecton::store::EntityKey {
    mock_tecton::store::EntityKey(vec![mock_tecton::store::KeyPart::Str(user.into())])
}

async fn start_with(stream: mock_tecton::stream::StreamConfig) -> MockTecton {
    let ns = mock_tecton::schema::parse_timestamp(T0).expect("time");
    MockTecton::start(Config::default().virtual_clock(ns).stream(stream))
        .await
        .expect("mock starts")
}

fn batches(mock: &MockTecton) -> u64 {
    mock.state().streams().totals(0).batches
}

#[tokio::test]
async fn no_micro_batch_runs_without_new_data() {
    let mock = start().await;
    mock.produce(
        "transactions",
        &[tx("u1", "t1", 5.0, "2024-05-31T23:55:00Z")],
    )
    .expect("produce");
    let after_first = batches(&mock);
    assert_eq!(after_first, 3, "one batch per view");
    mock.advance_clock(3_600_000_000_000);
    assert_eq!(
        batches(&mock),
        after_first,
        "an hour without data runs nothing"
    );
}

#[tokio::test]
async fn batch_overhead_delays_servability_and_shows_in_freshness() {
    let mock = start_with(mock_tecton::stream::StreamConfig {
        batch_overhead: std::time::Duration::from_millis(800),
        trigger_interval: Some(std::time::Duration::ZERO),
        ..Default::default()
    })
    .await;
    mock.produce(
        "transactions",
        &[tx("u1", "t1", 5.0, "2024-05-31T23:55:00Z")],
    )
    .expect("produce");
    let view = mock
        .state()
        .repo()
        .feature_views
        .iter()
        .position(|v| v.name == "user_last_transaction")
        .expect("view");
    assert!(
        mock.state().online().get(view, &key("u1")).is_none(),
        "not servable before the overhead"
    );
    mock.advance_clock(799_000_000);
    assert!(mock.state().online().get(view, &key("u1")).is_none());
    mock.advance_clock(1_000_000);
    assert!(
        mock.state().online().get(view, &key("u1")).is_some(),
        "servable at start + 800 ms"
    );
    let f = mock.state().streams().freshness(0);
    assert_eq!(f.count(), 3);
    assert_eq!(f.quantile_ms(1.0).map(|v| v.round()), Some(800.0));
    // The overhead also holds the next batch back: Spark runs one batch at a time.
    let progress = mock.state().streams().progress(mock.state().repo(), 0, 10);
    assert_eq!(
        progress["queries"][0]["lastProgress"]["durationMs"]["triggerExecution"],
        800
    );
}

#[tokio::test]
async fn a_source_trigger_interval_in_the_repository_replaces_the_default() {
    let text = mock_tecton::repo::DEMO_TOML.replace(
        "deduplication_columns = [\"transaction_id\"]",
        "deduplication_columns = [\"transaction_id\"]\ntrigger_interval = \"5s\"",
    );
    let repo = mock_tecton::Repository::from_toml(&text, "demo").expect("valid");
    let ns = mock_tecton::schema::parse_timestamp(T0).expect("time");
    let mock = MockTecton::start(Config::new(repo).virtual_clock(ns))
        .await
        .expect("start");
    let summary = mock.state().streams().summary(mock.state().repo());
    for q in summary["streams"][0]["queries"]
        .as_array()
        .expect("queries")
    {
        assert_eq!(q["trigger_interval_ms"], 5_000);
    }
}

#[tokio::test]
async fn invalid_and_duplicate_records_never_stop_the_stream_and_are_reported() {
    let mock = start().await;
    let http = reqwest::Client::new();
    let body = json!([
        {"user_id": "u1", "amt": "not a number"},
        tx("u1", "t1", 1.0, "2024-05-31T23:55:00Z"),
        tx("u1", "t1", 1.0, "2024-05-31T23:55:00Z"),
        tx("u1", "t2", 2.0, "2024-05-31T23:56:00Z"),
    ]);
    let r = http
        .post(format!(
            "{}/_mock/topics/transactions?partition=0",
            mock.url()
        ))
        .json(&body)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200);
    let totals = mock.state().streams().totals(0);
    // Each of the three views judges every record.
    assert_eq!(totals.dropped, [0, 3, 3]);
    assert_eq!(totals.rows_written, 6);
    let progress: Value = http
        .get(format!(
            "{}/_mock/streams/transactions_stream/progress",
            mock.url()
        ))
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(
        progress["dropped"]["counts"],
        json!({"late": 0, "duplicate": 3, "invalid": 3})
    );
    let recent = progress["dropped"]["recent"].as_array().expect("recent");
    assert!(recent
        .iter()
        .any(|d| d["outcome"] == "invalid"
            && d["detail"].as_str().is_some_and(|m| m.contains("amt"))));
    let journal: Value = http
        .get(format!(
            "{}/_mock/streams/transactions_stream/journal",
            mock.url()
        ))
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    let entries = journal["entries"].as_array().expect("entries");
    assert_eq!(entries.len(), 12);
    assert!(entries
        .iter()
        .any(|e| e["outcome"] == "materialized" && e["freshness_ms"] == 0.0));
    // The offline store holds every valid record, the duplicate too (the batch source keeps it).
    let offline = mock
        .state()
        .offline()
        .rows(mock.state().repo().push_sources.len())
        .expect("offline rows");
    assert_eq!(offline.len(), 3);

    // Reset empties topics, state, journals and histograms.
    http.post(format!("{}/_mock/reset", mock.url()))
        .send()
        .await
        .expect("reset");
    let summary: Value = http
        .get(format!("{}/_mock/streams", mock.url()))
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(summary["streams"][0]["freshness_ms"]["count"], 0);
    assert_eq!(summary["streams"][0]["end_offsets"], json!([0, 0, 0, 0]));
}

#[tokio::test]
async fn the_wall_clock_driver_materializes_without_clock_moves() {
    let mock = MockTecton::start(Config::default().stream(mock_tecton::stream::StreamConfig {
        trigger_interval: Some(std::time::Duration::ZERO),
        ..Default::default()
    }))
    .await
    .expect("start");
    let now = mock_tecton::clock::wall_now();
    let ts = mock_tecton::schema::format_rfc3339(now);
    mock.produce("transactions", &[tx("u1", "t1", 5.0, &ts)])
        .expect("produce");
    let view = mock
        .state()
        .repo()
        .feature_views
        .iter()
        .position(|v| v.name == "user_last_transaction")
        .expect("view");
    for _ in 0..100 {
        if mock.state().online().get(view, &key("u1")).is_some() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("the record was not materialized within 2 s on the wall clock");
}
