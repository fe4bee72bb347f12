//! The Stream Ingest API, row by row of the status table in Tecton's docs, driven over HTTP.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use insta::assert_json_snapshot;
use mock_tecton::Config;
use serde_json::json;

#[tokio::test]
async fn docs_sample_request_returns_documented_shape() {
    let h = start(Config::new(docs_repo())).await;
    // The sample request from Tecton's Stream Ingest API docs, values verbatim.
    let sample = json!({
        "workspace_name": "ingestapi-test",
        "dry_run": false,
        "records": {
            "impressions_event_source": [
                {"record": {"timestamp": "2023-01-02T00:25:06Z", "user_id": "C18947Z5", "clicked": 1}},
                {"record": {"timestamp": "2022-12-29T00:25:06Z", "user_id": "C98FG569", "clicked": 1}}
            ]
        }
    });
    let (status, body) = h.ingest("sample-key", &sample).await;
    assert_eq!(status, 200);
    assert_json_snapshot!("200_docs_sample", body);
}

#[tokio::test]
async fn success_writes_online_and_offline_before_responding() {
    let h = demo().await;
    let (status, body) = h
        .ingest(
            "demo-editor-key",
            &batch(
                false,
                vec![
                    txn("u1", "t1", 10.5, "2024-05-31T10:00:00Z"),
                    txn("u1", "t2", 4.5, "2024-05-31T11:00:00.123456789Z"),
                    txn("u2", "t3", 1.0, "2024-05-31T12:00:00+02:00"),
                ],
            ),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_json_snapshot!("200_demo_three_records", body);

    // Read-after-write: the response has arrived, so both stores must already hold the records.
    let online = h.admin("/online?view=user_last_transaction").await;
    let entities = &online["online"][0]["entities"];
    assert_eq!(entities.as_array().map(Vec::len), Some(2));
    assert_eq!(entities[0]["join_keys"], json!({"user_id": "u1"}));
    assert_eq!(
        entities[0]["values"],
        json!({"amt": 4.5, "merchant": "acme"})
    );
    assert_eq!(entities[0]["timestamp"], "2024-05-31T11:00:00.123456789Z");
    assert_eq!(
        entities[1]["timestamp"], "2024-05-31T10:00:00Z",
        "offsets are converted to UTC"
    );

    let offline = h.admin("/offline?source=transactions").await;
    let ids: Vec<&str> = offline["offline"][0]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["record"]["transaction_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["t1", "t2", "t3"]);
}

#[tokio::test]
async fn dry_run_validates_and_writes_nothing() {
    let h = demo().await;
    let (status, body) = h
        .ingest(
            "demo-viewer-key",
            &batch(true, vec![txn("u1", "t1", 1.0, "2024-05-31T10:00:00Z")]),
        )
        .await;
    assert_eq!(status, 200, "viewers may dry-run: {body}");
    assert_eq!(
        body["ingestMetrics"]["featureViewIngestMetrics"][0]["onlineRecordIngestCount"],
        "0"
    );
    let (status, _) = h
        .ingest(
            "demo-editor-key",
            &batch(
                true,
                vec![txn("u1", "t1", f64::MAX, "2024-05-31T10:00:00Z")],
            ),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(h.admin("/online").await["online"][0]["entities"], json!([]));
    assert_eq!(h.admin("/offline").await["offline"][0]["rows"], json!([]));

    let (status, body) = h
        .ingest(
            "demo-viewer-key",
            &batch(true, vec![txn("u1", "t1", 1.0, "not a time")]),
        )
        .await;
    assert_eq!(status, 400, "dry runs still validate");
    assert_eq!(
        body["recordErrors"][0]["errorType"],
        "TectonObjectValidationError"
    );
}

#[tokio::test]
async fn missing_required_fields_are_request_errors() {
    let h = demo().await;
    for (missing, expected) in [
        ("workspace_name", "400_missing_workspace_name"),
        ("dry_run", "400_missing_dry_run"),
        ("records", "400_missing_records"),
    ] {
        let mut b = batch(false, vec![txn("u1", "t1", 1.0, "2024-05-31T10:00:00Z")]);
        b.as_object_mut().unwrap().remove(missing);
        let (status, resp) = h.ingest("demo-editor-key", &b).await;
        assert_eq!(status, 400);
        assert_json_snapshot!(expected, resp);
    }
}

#[tokio::test]
async fn json_syntax_error_is_a_request_error() {
    let h = demo().await;
    let (status, body) = h
        .post_raw(
            "/ingest",
            Some("demo-editor-key"),
            "{\"workspace_name\": \"prod\",",
        )
        .await;
    assert_eq!(status, 400);
    assert_json_snapshot!("400_json_syntax", body);
}

#[tokio::test]
async fn schema_mismatch_yields_record_errors_per_feature_view() {
    let h = demo().await;
    let bad = json!({"record": {"user_id": "u1", "transaction_id": "t9", "merchant": "acme", "amt": "12.5",
                                "is_fraud": 0, "timestamp": "2024-05-31T10:00:00Z", "channel": "web"}});
    let (status, body) = h
        .ingest(
            "demo-editor-key",
            &batch(
                false,
                vec![txn("u1", "t1", 1.0, "2024-05-31T10:00:00Z"), bad],
            ),
        )
        .await;
    assert_eq!(status, 400);
    assert_json_snapshot!("400_record_errors_schema", body);
    assert_eq!(
        h.admin("/offline").await["offline"][0]["rows"],
        json!([]),
        "a refused request writes nothing, not even its valid records"
    );
}

#[tokio::test]
async fn timestamps_missing_unparsable_or_outside_ttl_are_record_errors() {
    let h = demo().await;
    let mut missing = txn("u1", "t1", 1.0, "x");
    missing["record"]
        .as_object_mut()
        .unwrap()
        .remove("timestamp");
    let (status, body) = h
        .ingest(
            "demo-editor-key",
            &batch(
                false,
                vec![
                    missing,
                    txn("u1", "t2", 1.0, "2024/05/31 10:00"),
                    // 31 days before the virtual now: outside user_last_transaction's 30d TTL.
                    txn("u1", "t3", 1.0, "2024-05-01T00:00:00Z"),
                    // Exactly at now - ttl: also outside (valid iff now < ts + ttl).
                    txn("u1", "t4", 1.0, "2024-05-02T00:00:00Z"),
                    txn("u1", "t5", 1.0, "2024-05-02T00:00:00.000000001Z"),
                ],
            ),
        )
        .await;
    assert_eq!(status, 400);
    assert_json_snapshot!("400_record_errors_timestamps", body);
}

#[tokio::test]
async fn unauthenticated_requests_get_401() {
    let h = demo().await;
    let b = batch(false, vec![txn("u1", "t1", 1.0, "2024-05-31T10:00:00Z")]).to_string();
    let (status, missing) = h.post_raw("/ingest", None, b.clone()).await;
    assert_eq!(status, 401);
    assert_json_snapshot!("401_missing_header", missing);
    let (status, unknown) = h.post_raw("/ingest", Some("no-such-key"), b.clone()).await;
    assert_eq!(status, 401);
    assert_json_snapshot!("401_unknown_key", unknown);
    let resp = h
        .http
        .post(format!("{}/ingest", h.mock.url()))
        .header("Authorization", "Bearer demo-editor-key")
        .body(b)
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status().as_u16(),
        401,
        "only the Tecton-key scheme is accepted for ingest"
    );
}

#[tokio::test]
async fn roles_decide_who_may_write() {
    let h = demo().await;
    let (status, body403) = h
        .ingest(
            "demo-viewer-key",
            &batch(false, vec![txn("u1", "t1", 1.0, "2024-05-31T10:00:00Z")]),
        )
        .await;
    assert_eq!(status, 403);
    assert_json_snapshot!("403_viewer_write", body403);
    let (status, _) = h
        .ingest(
            "demo-consumer-key",
            &batch(true, vec![txn("u1", "t1", 1.0, "2024-05-31T10:00:00Z")]),
        )
        .await;
    assert_eq!(
        status, 403,
        "consumers read features; they may not even dry-run"
    );
}

#[tokio::test]
async fn unknown_workspace_or_source_is_404() {
    let h = demo().await;
    let mut b = batch(false, vec![txn("u1", "t1", 1.0, "2024-05-31T10:00:00Z")]);
    b["workspace_name"] = json!("staging");
    let (status, ws) = h.ingest("demo-editor-key", &b).await;
    assert_eq!(status, 404);
    assert_json_snapshot!("404_workspace", ws);
    let b = json!({"workspace_name": "prod", "dry_run": false, "records": {"clicks": [txn("u1", "t1", 1.0, "2024-05-31T10:00:00Z")]}});
    let (status, src) = h.ingest("demo-editor-key", &b).await;
    assert_eq!(status, 404);
    assert_json_snapshot!("404_push_source", src);
}

#[tokio::test]
async fn oversized_bodies_get_413_without_being_read_whole() {
    let h = start(Config::default().virtual_clock(NOW).max_body_bytes(1024)).await;
    let (status, body) = h
        .post_raw("/ingest", Some("demo-editor-key"), vec![b' '; 64 * 1024])
        .await;
    assert_eq!(status, 413);
    assert_json_snapshot!("413_payload_too_large", body);
    // A chunked body with no Content-Length is cut off at the limit too.
    let raw = raw_chunked_post(&h, "/ingest", 64, 1024).await;
    assert!(raw.starts_with("HTTP/1.1 413"), "{raw}");
    assert!(raw.contains("PayloadTooLargeError"), "{raw}");
    let journal = h.mock.journal();
    assert_eq!(
        journal[0].request_bytes,
        64 * 1024,
        "the declared size is journaled"
    );
    assert!(
        journal[0].request_body.is_empty(),
        "nothing of an oversized declared body was buffered"
    );
}

/// Sends `chunks` chunks of `size` spaces with chunked encoding over a raw socket and returns
/// the raw response text. The server may answer before reading everything, so write errors
/// after the response has started are expected.
async fn raw_chunked_post(h: &Harness, path: &str, chunks: usize, size: usize) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut sock = tokio::net::TcpStream::connect(h.mock.addr()).await.unwrap();
    let head = format!("POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Tecton-key demo-editor-key\r\nTransfer-Encoding: chunked\r\n\r\n");
    sock.write_all(head.as_bytes()).await.unwrap();
    let chunk = format!("{size:x}\r\n{}\r\n", " ".repeat(size));
    for _ in 0..chunks {
        if sock.write_all(chunk.as_bytes()).await.is_err() {
            break;
        }
    }
    let _ = sock.write_all(b"0\r\n\r\n").await;
    let mut out = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        sock.read_to_end(&mut out),
    )
    .await;
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn record_limit_per_source_is_enforced() {
    let h = demo().await;
    let records: Vec<_> = (0..11)
        .map(|i| txn("u1", &format!("t{i}"), 1.0, "2024-05-31T10:00:00Z"))
        .collect();
    let (status, body) = h.ingest("demo-editor-key", &batch(false, records)).await;
    assert_eq!(status, 400);
    assert_json_snapshot!("400_too_many_records", body);
    let h = start(Config::default().virtual_clock(NOW).records_per_source(20)).await;
    let records: Vec<_> = (0..20)
        .map(|i| txn("u1", &format!("t{i}"), 1.0, "2024-05-31T10:00:00Z"))
        .collect();
    assert_eq!(
        h.ingest("demo-editor-key", &batch(false, records)).await.0,
        200,
        "the limit is configurable"
    );
}

#[tokio::test]
async fn non_live_workspace_accepts_only_dry_runs() {
    let h = start(Config::new(docs_repo())).await;
    let rec =
        json!({"record": {"timestamp": "2023-01-02T00:25:06Z", "user_id": "u", "clicked": 1}});
    let b = |dry| json!({"workspace_name": "ingestapi-dev", "dry_run": dry, "records": {"impressions_event_source": [rec.clone()]}});
    assert_eq!(h.ingest("sample-key", &b(true)).await.0, 200);
    let (status, body) = h.ingest("sample-key", &b(false)).await;
    assert_eq!(status, 400);
    assert!(body["requestError"]["errorMessage"]
        .as_str()
        .unwrap()
        .contains("not a live workspace"));
}

#[tokio::test]
async fn v2_path_takes_camel_case_and_bare_or_wrapped_records() {
    let h = demo().await;
    let wrapped = txn("u1", "t1", 1.0, "2024-05-31T10:00:00Z");
    let bare = wrapped["record"].clone();
    let b = json!({"workspaceName": "prod", "dryRun": false, "records": {"transactions": [wrapped, bare]}});
    let (status, body) = h
        .post_raw("/v2/ingest", Some("demo-editor-key"), b.to_string())
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["ingestMetrics"]["featureViewIngestMetrics"][0]["onlineRecordIngestCount"],
        "2"
    );
    let snake = body_v1_on_v2();
    let (status, body) = h
        .post_raw("/v2/ingest", Some("demo-editor-key"), snake.to_string())
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        body["requestError"]["errorMessage"],
        "Required field `workspaceName` is missing in the request"
    );
}

fn body_v1_on_v2() -> serde_json::Value {
    batch(false, vec![txn("u1", "t1", 1.0, "2024-05-31T10:00:00Z")])
}

#[tokio::test]
async fn content_type_is_ignored_and_pretty_bodies_are_fine() {
    let h = demo().await;
    let pretty = serde_json::to_string_pretty(&batch(
        false,
        vec![txn("u1", "t1", 1.0, "2024-05-31T10:00:00Z")],
    ))
    .unwrap();
    let resp = h
        .http
        .post(format!("{}/ingest", h.mock.url()))
        .header("Authorization", "Tecton-key demo-editor-key")
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(pretty)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
}

#[tokio::test]
async fn same_key_and_timestamp_last_write_wins_online_but_offline_keeps_both() {
    let h = demo().await;
    let ts = "2024-05-31T10:00:00Z";
    assert_eq!(
        h.ingest(
            "demo-editor-key",
            &batch(
                false,
                vec![txn("u1", "a", 1.0, ts), txn("u1", "b", 2.0, ts)]
            )
        )
        .await
        .0,
        200
    );
    let online = h.admin("/online?view=user_transaction_amount_totals").await;
    let events = &online["online"][0]["entities"][0]["events"];
    assert_eq!(events.as_array().map(Vec::len), Some(1));
    assert_eq!(events[0]["values"], json!({"amt": 2.0}));
    assert_eq!(
        h.admin("/offline").await["offline"][0]["rows"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );
}

#[tokio::test]
async fn events_before_feature_start_time_feed_aggregates_but_not_attributes() {
    // 2024-01-10T00:00:00Z, so both events are inside the attribute view's 30d TTL.
    let h = start(Config::default().virtual_clock(1_704_844_800_000_000_000)).await;
    let (status, body) = h
        .ingest(
            "demo-editor-key",
            &batch(
                false,
                vec![
                    txn("u1", "old", 1.0, "2023-12-31T23:59:59Z"),
                    txn("u1", "new", 1.0, "2024-01-09T00:00:00Z"),
                ],
            ),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let counts: Vec<(&str, &str, &str)> = body["ingestMetrics"]["featureViewIngestMetrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["featureViewName"].as_str().unwrap(),
                m["onlineRecordIngestCount"].as_str().unwrap(),
                m["offlineRecordIngestCount"].as_str().unwrap(),
            )
        })
        .collect();
    for (view, online, offline) in counts {
        let expected = if view == "user_last_transaction" {
            "1"
        } else {
            "2"
        };
        assert_eq!((online, offline), (expected, expected), "{view}");
    }
}

#[tokio::test]
async fn journal_records_every_exchange_in_order() {
    let h = demo().await;
    h.ingest(
        "demo-editor-key",
        &batch(false, vec![txn("u1", "t1", 1.0, "2024-05-31T10:00:00Z")]),
    )
    .await;
    h.post_raw("/ingest", Some("nobody"), "{}").await;
    h.post_raw("/nowhere", None, "").await;
    let j = h.admin("/journal").await;
    let entries = j["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 3);
    let summary: Vec<(u64, &str, u64, Option<&str>)> = entries
        .iter()
        .map(|e| {
            (
                e["seq"].as_u64().unwrap(),
                e["path"].as_str().unwrap(),
                e["status"].as_u64().unwrap(),
                e["key_id"].as_str(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (0, "/ingest", 200, Some("demo-editor")),
            (1, "/ingest", 401, None),
            (2, "/nowhere", 404, None)
        ]
    );
    assert_eq!(entries[0]["outcome"], "responded");
    assert!(entries[0]["request_body"]
        .as_str()
        .unwrap()
        .contains("\"t1\""));
    assert!(entries[0]["response_body"]
        .as_str()
        .unwrap()
        .contains("featureViewIngestMetrics"));
    assert!(
        !entries[0]["request_body"]
            .as_str()
            .unwrap()
            .contains("Tecton-key"),
        "keys never reach the journal"
    );
    assert_eq!(
        h.admin("/journal?since=2").await["entries"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );

    reqwest::Client::new()
        .post(format!("{}/_mock/reset", h.mock.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(h.admin("/journal").await["entries"], json!([]));
    assert_eq!(h.admin("/offline").await["offline"][0]["rows"], json!([]));
}

#[tokio::test]
async fn wrong_methods_get_405_in_tecton_format() {
    let h = demo().await;
    let resp = h
        .http
        .get(format!("{}/ingest", h.mock.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 405);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_json_snapshot!("405_get_ingest", body);
}

#[tokio::test]
async fn clock_is_controlled_through_the_admin_api() {
    let h = demo().await;
    let set = |v: serde_json::Value| {
        let http = h.http.clone();
        let url = format!("{}/_mock/clock", h.mock.url());
        async move {
            http.post(url)
                .json(&v)
                .send()
                .await
                .unwrap()
                .json::<serde_json::Value>()
                .await
                .unwrap()
        }
    };
    assert_eq!(h.admin("/clock").await["now"], "2024-06-01T00:00:00Z");
    assert_eq!(
        set(json!({"advance": "1h30m"})).await["now"],
        "2024-06-01T01:30:00Z"
    );
    assert_eq!(
        set(json!({"set": "2025-01-01T00:00:00Z"})).await["now"],
        "2025-01-01T00:00:00Z"
    );
    // At the new time the same record is outside the 30d TTL.
    let (status, _) = h
        .ingest(
            "demo-editor-key",
            &batch(false, vec![txn("u1", "t1", 1.0, "2024-05-31T10:00:00Z")]),
        )
        .await;
    assert_eq!(status, 400);
}
