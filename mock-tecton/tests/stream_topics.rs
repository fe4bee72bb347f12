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
            .repo
            .feature_views
            .iter()
            .position(|v| v.name == name)
            .expect("view")
    };
    let events = |name: &str| match mock.state().online.get(view(name), &key("u1")) {
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
