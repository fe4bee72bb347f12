//! The feature serving API over HTTP: values, encodings, metadata and errors as Tecton's
//! clients expect them.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use insta::assert_json_snapshot;
use serde_json::{json, Value};

const CONSUMER: &str = "demo-consumer-key";

async fn seeded() -> Harness {
    let h = demo().await;
    let (status, body) = h
        .ingest(
            "demo-editor-key",
            &batch(
                false,
                vec![
                    txn("u1", "t1", 12.5, "2024-05-31T23:30:00Z"),
                    txn("u1", "t2", 7.5, "2024-05-31T23:45:00Z"),
                    txn("u2", "t3", 100.0, "2024-05-29T00:00:00Z"),
                ],
            ),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    h
}

async fn post(h: &Harness, path: &str, key: Option<&str>, body: Value) -> (u16, Value) {
    h.post_raw(path, key, body.to_string()).await
}

fn get_features(keys: Value, metadata: Value) -> Value {
    json!({"params": {"workspaceName": "prod", "featureServiceName": "fraud_detection", "joinKeyMap": keys, "metadataOptions": metadata}})
}

#[tokio::test]
async fn get_features_values_in_tecton_order_and_encoding() {
    let h = seeded().await;
    let (status, body) = post(
        &h,
        "/api/v1/feature-service/get-features",
        Some(CONSUMER),
        get_features(json!({"user_id": "u1"}), json!({})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        body.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["result"],
        "no metadata unless asked"
    );
    assert_eq!(
        body["result"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        ["features"],
        "result holds only features"
    );
    assert_json_snapshot!("get_features_u1", body);
}

#[tokio::test]
async fn metadata_options_each_add_their_field() {
    let h = seeded().await;
    let all = json!({"includeNames": true, "includeDataTypes": true, "includeEffectiveTimes": true, "includeServingStatus": true});
    let (status, body) = post(
        &h,
        "/api/v1/feature-service/get-features",
        Some(CONSUMER),
        get_features(json!({"user_id": "u1"}), all),
    )
    .await;
    assert_eq!(status, 200);
    assert_json_snapshot!("get_features_all_metadata", body);
    let (_, names_only) = post(
        &h,
        "/api/v1/feature-service/get-features",
        Some(CONSUMER),
        get_features(json!({"user_id": "u1"}), json!({"includeNames": true})),
    )
    .await;
    assert_eq!(
        names_only["metadata"]["features"][0],
        json!({"name": "user_last_transaction.amt"})
    );
    let (_, slo) = post(
        &h,
        "/api/v1/feature-service/get-features",
        Some(CONSUMER),
        get_features(json!({"user_id": "u1"}), json!({"includeSloInfo": true})),
    )
    .await;
    assert_eq!(slo["metadata"]["sloInfo"]["sloEligible"], true);
    assert!(slo["metadata"].get("features").is_none());
}

#[tokio::test]
async fn missing_entity_is_200_with_nulls_and_missing_data() {
    let h = seeded().await;
    let (status, body) = post(
        &h,
        "/api/v1/feature-service/get-features",
        Some(CONSUMER),
        get_features(
            json!({"user_id": "nobody"}),
            json!({"includeServingStatus": true}),
        ),
    )
    .await;
    assert_eq!(status, 200);
    assert!(body["result"]["features"]
        .as_array()
        .unwrap()
        .iter()
        .all(Value::is_null));
    assert!(body["metadata"]["features"]
        .as_array()
        .unwrap()
        .iter()
        .all(|f| f["status"] == "MISSING_DATA"));
    let coerced = json!({"params": {"workspaceName": "prod", "featureServiceName": "fraud_detection", "joinKeyMap": {"user_id": "nobody"}, "requestOptions": {"coerceNullCountsToZero": true}}});
    let (_, body) = post(
        &h,
        "/api/v1/feature-service/get-features",
        Some(CONSUMER),
        coerced,
    )
    .await;
    assert_eq!(
        body["result"]["features"][2], "0",
        "counts become 0 with coerceNullCountsToZero"
    );
}

#[tokio::test]
async fn snake_case_numbers_and_null_maps_are_accepted() {
    let h = seeded().await;
    let snake = json!({"params": {"workspace_name": "prod", "feature_service_name": "fraud_detection", "join_key_map": {"user_id": "u1"}, "request_context_map": null}});
    let camel = get_features(json!({"user_id": "u1"}), json!({}));
    let (s1, a) = post(
        &h,
        "/api/v1/feature-service/get-features",
        Some(CONSUMER),
        snake,
    )
    .await;
    let (s2, b) = post(
        &h,
        "/api/v1/feature-service/get-features",
        Some(CONSUMER),
        camel,
    )
    .await;
    assert_eq!((s1, s2), (200, 200));
    assert_eq!(a, b);
    // A number for a String join key reads as its decimal text.
    let (status, _) = post(
        &h,
        "/api/v1/feature-service/get-features",
        Some(CONSUMER),
        get_features(json!({"user_id": 42}), json!({})),
    )
    .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn error_statuses_carry_grpc_codes() {
    let h = seeded().await;
    let path = "/api/v1/feature-service/get-features";
    let (s400, b400) = post(&h, path, Some(CONSUMER), get_features(json!({}), json!({}))).await;
    let (s401, b401) = post(
        &h,
        path,
        Some("nope"),
        get_features(json!({"user_id": "u1"}), json!({})),
    )
    .await;
    let (s403, b403) = post(
        &h,
        path,
        Some("demo-viewer-key"),
        get_features(json!({"user_id": "u1"}), json!({})),
    )
    .await;
    let unknown = json!({"params": {"workspaceName": "prod", "featureServiceName": "nope", "joinKeyMap": {"user_id": "u1"}}});
    let (s404, b404) = post(&h, path, Some(CONSUMER), unknown).await;
    let (sjson, bjson) = h.post_raw(path, Some(CONSUMER), "{not json").await;
    assert_eq!((s400, s401, s403, s404, sjson), (400, 401, 403, 404, 400));
    assert_json_snapshot!(
        "serving_errors",
        json!({"400": b400, "401": b401, "403": b403, "404": b404, "400_json": bjson})
    );
}

#[tokio::test]
async fn batch_metadata_query_state_and_v2_paths() {
    let h = seeded().await;
    let batch_req = json!({"params": {"workspaceName": "prod", "featureServiceName": "fraud_detection",
        "requestData": [{"joinKeyMap": {"user_id": "u1"}}, {"joinKeyMap": {"user_id": "nobody"}}],
        "metadataOptions": {"includeNames": true, "includeServingStatus": true}}});
    let (status, batch) = post(
        &h,
        "/api/v1/feature-service/get-features-batch",
        Some(CONSUMER),
        batch_req.clone(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(batch["result"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        batch["metadata"]["features"][0]["status"],
        json!(["PRESENT", "MISSING_DATA"]),
        "batch status is per row"
    );

    let (_, single) = post(
        &h,
        "/api/v1/feature-service/get-features",
        Some(CONSUMER),
        get_features(json!({"user_id": "u1"}), json!({})),
    )
    .await;
    assert_eq!(batch["result"][0]["features"], single["result"]["features"]);

    let (status, meta) = post(
        &h,
        "/api/v1/feature-service/metadata",
        Some(CONSUMER),
        json!({"params": {"featureServiceName": "fraud_detection", "workspaceName": "prod"}}),
    )
    .await;
    assert_eq!(status, 200);
    assert_json_snapshot!("metadata_fraud_detection", meta);

    let resp = h
        .http
        .get(format!(
            "{}/api/v2/workspaces/prod/feature-services/fraud_detection/metadata",
            h.mock.url()
        ))
        .header("Authorization", format!("Tecton-key {CONSUMER}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(
        resp.json::<Value>().await.unwrap(),
        meta,
        "v2 GET metadata equals v1"
    );
    let (status, v2) = post(
        &h,
        "/api/v2/workspaces/prod/feature-services/fraud_detection/get-features",
        Some(CONSUMER),
        json!({"params": {"joinKeyMap": {"user_id": "u1"}}}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(v2["result"], single["result"]);

    let (status, q) = post(&h, "/api/v1/feature-service/query-features", Some(CONSUMER), json!({"params": {"workspaceName": "prod", "featureServiceName": "fraud_detection", "joinKeyMap": {}}})).await;
    assert_eq!(status, 200);
    assert_eq!(
        q["results"].as_array().map(Vec::len),
        Some(2),
        "both stored users"
    );

    let state = |fs: &str| json!({"featureServiceLocator": {"featureServiceName": fs, "workspaceName": "prod"}});
    assert_eq!(
        post(
            &h,
            "/api/v1/feature-service/get-feature-service-state",
            Some(CONSUMER),
            state("fraud_detection")
        )
        .await,
        (200, json!({}))
    );
    assert_eq!(
        post(
            &h,
            "/api/v1/feature-service/get-feature-service-state",
            Some(CONSUMER),
            state("nope")
        )
        .await
        .0,
        404
    );
}

#[tokio::test]
async fn ttl_expires_exactly_at_ts_plus_ttl() {
    let h = seeded().await;
    let clock = format!("{}/_mock/clock", h.mock.url());
    let amt = |h: &Harness| {
        let http = h.http.clone();
        let url = format!("{}/api/v1/feature-service/get-features", h.mock.url());
        async move {
            let body = get_features(json!({"user_id": "u1"}), json!({}));
            let v: Value = http
                .post(url)
                .header("Authorization", format!("Tecton-key {CONSUMER}"))
                .body(body.to_string())
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            v["result"]["features"][0].clone()
        }
    };
    // u1's last row is stamped 2024-05-31T23:45:00Z; the TTL is 30d.
    h.http
        .post(&clock)
        .json(&json!({"set": "2024-06-30T23:44:59.999999999Z"}))
        .send()
        .await
        .unwrap();
    assert_eq!(amt(&h).await, json!(7.5));
    h.http
        .post(&clock)
        .json(&json!({"set": "2024-06-30T23:45:00Z"}))
        .send()
        .await
        .unwrap();
    assert_eq!(amt(&h).await, Value::Null);
}

#[tokio::test]
async fn serving_faults_use_the_serving_error_shape() {
    let h = seeded().await;
    h.mock
        .set_faults(mock_tecton::faults::FaultSet {
            seed: 0,
            rules: vec![mock_tecton::faults::FaultRule::status(429)
                .on_path("/api/v1/feature-service/get-features")],
        })
        .unwrap();
    let (status, body) = post(
        &h,
        "/api/v1/feature-service/get-features",
        Some(CONSUMER),
        get_features(json!({"user_id": "u1"}), json!({})),
    )
    .await;
    assert_eq!(status, 429);
    assert_eq!(
        body,
        json!({"error": "GetFeatures exceeded the concurrent request limit, please retry later", "message": "GetFeatures exceeded the concurrent request limit, please retry later", "code": 8})
    );
}

#[tokio::test]
async fn unknown_endpoints_answer_in_their_api_error_shape() {
    let h = seeded().await;
    let (status, body) = post(
        &h,
        "/api/v1/feature-service/get-feature",
        Some(CONSUMER),
        json!({}),
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(
        body["code"], 5,
        "feature server paths use the serving error shape: {body}"
    );
    let (status, body) = post(&h, "/ingestion", Some("demo-editor-key"), json!({})).await;
    assert_eq!(status, 404);
    assert_eq!(body["requestError"]["errorType"], "NotFoundError", "{body}");
}
