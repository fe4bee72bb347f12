//! The wiremock responders answer exactly like the mock server: the same requests sent to a
//! `MockServer` with the responders and to a started mock get the same status, headers that
//! matter (`Allow`, `Retry-After`, `Content-Type`) and body bytes. Both run on the same stopped
//! virtual clock, so no answer differs by time.
#![allow(clippy::unwrap_used)]

use mock_tecton::faults::FaultSet;
use mock_tecton::wiremock::{ErrorResponder, StatusCode, Tecton};
use mock_tecton::{Config, MockTecton};
use serde_json::{json, Value};
use wiremock::matchers::{path, path_regex};
use wiremock::{Mock, MockServer};

/// 2024-06-01T00:00:00Z.
const NOW: i64 = 1_717_200_000_000_000_000;
const EDITOR: &str = "demo-editor-key";
const VIEWER: &str = "demo-viewer-key";
const CONSUMER: &str = "demo-consumer-key";

fn config() -> Config {
    Config::default()
        .virtual_clock(NOW)
        .max_body_bytes(16 * 1024)
}

fn txn(user: &str, id: &str, amt: f64, ts: &str) -> Value {
    json!({"record": {"user_id": user, "transaction_id": id, "merchant": "acme", "amt": amt, "is_fraud": 0, "timestamp": ts}})
}

fn ingest(workspace: &str, source: &str, dry_run: bool, records: Vec<Value>) -> String {
    json!({"workspace_name": workspace, "dry_run": dry_run, "records": {source: records}})
        .to_string()
}

fn get_features(service: &str, keys: Value, metadata: Value) -> String {
    json!({"params": {"workspaceName": "prod", "featureServiceName": service, "joinKeyMap": keys, "metadataOptions": metadata}})
        .to_string()
}

/// What a client sees of an answer.
#[derive(Debug, PartialEq, Eq)]
struct Seen {
    status: u16,
    content_type: Option<String>,
    allow: Option<String>,
    retry_after: Option<String>,
    body: String,
}

async fn send(
    http: &reqwest::Client,
    base: &str,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: &str,
) -> Seen {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = http
        .request(method, format!("{base}{path}"))
        .body(body.to_owned());
    if let Some(key) = key {
        req = req.header("Authorization", format!("Tecton-key {key}"));
    }
    let resp = req.send().await.unwrap();
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    Seen {
        status: resp.status().as_u16(),
        content_type: header("content-type"),
        allow: header("allow"),
        retry_after: header("retry-after"),
        body: resp.text().await.unwrap(),
    }
}

async fn wiremock_with(tecton: &Tecton) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(path_regex("^/api/"))
        .respond_with(tecton.features_responder())
        .mount(&server)
        .await;
    Mock::given(path_regex("^/[^a]"))
        .respond_with(tecton.ingest_responder())
        .mount(&server)
        .await;
    server
}

#[tokio::test]
async fn responders_answer_like_the_mock_byte_for_byte() {
    let mock = MockTecton::start(config()).await.unwrap();
    let server = wiremock_with(&Tecton::with_config(config())).await;
    let http = reqwest::Client::new();
    let three = vec![
        txn("u1", "t1", 10.5, "2024-05-31T10:00:00Z"),
        txn("u1", "t2", 4.5, "2024-05-31T11:00:00.123456789Z"),
        txn("u2", "t3", 1.0, "2024-05-31T12:00:00+02:00"),
    ];
    let big = ingest(
        "prod",
        "transactions",
        false,
        (0..400)
            .map(|i| txn("u9", &format!("t{i}"), 1.0, "2024-05-31T10:00:00Z"))
            .collect(),
    );
    let v2 = json!({"workspaceName": "prod", "dryRun": false, "records": {"transactions": [txn("u3", "t9", 2.0, "2024-05-31T09:00:00Z")]}}).to_string();
    let cases: Vec<(&str, &str, Option<&str>, String)> = vec![
        // Stream Ingest: every row of the status table.
        (
            "POST",
            "/ingest",
            Some(EDITOR),
            ingest("prod", "transactions", false, three.clone()),
        ),
        (
            "POST",
            "/ingest",
            Some(EDITOR),
            ingest("prod", "transactions", true, three),
        ),
        ("POST", "/v2/ingest", Some(EDITOR), v2),
        (
            "POST",
            "/ingest",
            Some(EDITOR),
            ingest(
                "prod",
                "transactions",
                false,
                vec![json!({"record": {"user_id": 7, "timestamp": "yesterday"}})],
            ),
        ),
        (
            "POST",
            "/ingest",
            Some(EDITOR),
            "{\"workspace_name\": ".into(),
        ),
        (
            "POST",
            "/ingest",
            Some(EDITOR),
            json!({"workspace_name": "prod", "records": {}}).to_string(),
        ),
        (
            "POST",
            "/ingest",
            None,
            ingest("prod", "transactions", false, vec![]),
        ),
        (
            "POST",
            "/ingest",
            Some("no-such-key"),
            ingest("prod", "transactions", false, vec![]),
        ),
        (
            "POST",
            "/ingest",
            Some(VIEWER),
            ingest(
                "prod",
                "transactions",
                false,
                vec![txn("u1", "t4", 1.0, "2024-05-31T10:00:00Z")],
            ),
        ),
        (
            "POST",
            "/ingest",
            Some(EDITOR),
            ingest(
                "nowhere",
                "transactions",
                false,
                vec![txn("u1", "t4", 1.0, "2024-05-31T10:00:00Z")],
            ),
        ),
        (
            "POST",
            "/ingest",
            Some(EDITOR),
            ingest(
                "prod",
                "nothing",
                false,
                vec![txn("u1", "t4", 1.0, "2024-05-31T10:00:00Z")],
            ),
        ),
        ("POST", "/ingest", Some(EDITOR), big),
        ("GET", "/ingest", Some(EDITOR), String::new()),
        ("POST", "/ingest/extra", Some(EDITOR), String::new()),
        // The feature server reads what was ingested above.
        (
            "POST",
            "/api/v1/feature-service/get-features",
            Some(CONSUMER),
            get_features("fraud_detection", json!({"user_id": "u1"}), json!({})),
        ),
        (
            "POST",
            "/api/v1/feature-service/get-features",
            Some(CONSUMER),
            get_features(
                "fraud_detection",
                json!({"user_id": "u3"}),
                json!({"includeNames": true, "includeEffectiveTimes": true, "includeDataTypes": true}),
            ),
        ),
        (
            "POST",
            "/api/v1/feature-service/get-features",
            Some(CONSUMER),
            get_features("fraud_detection", json!({}), json!({})),
        ),
        (
            "POST",
            "/api/v1/feature-service/get-features",
            Some(CONSUMER),
            get_features("nope", json!({"user_id": "u1"}), json!({})),
        ),
        (
            "POST",
            "/api/v1/feature-service/get-features",
            None,
            get_features("fraud_detection", json!({"user_id": "u1"}), json!({})),
        ),
        (
            "POST",
            "/api/v1/feature-service/get-features",
            Some(CONSUMER),
            "{1}".into(),
        ),
        (
            "GET",
            "/api/v1/feature-service/get-features",
            Some(CONSUMER),
            String::new(),
        ),
        (
            "POST",
            "/api/v1/feature-service/metadata",
            Some(CONSUMER),
            json!({"params": {"workspaceName": "prod", "featureServiceName": "fraud_detection"}})
                .to_string(),
        ),
        (
            "GET",
            "/api/v2/workspaces/prod/feature-services/fraud_detection/metadata",
            Some(CONSUMER),
            String::new(),
        ),
        (
            "POST",
            "/api/v2/workspaces/prod/feature-services/fraud%5Fdetection/get-features",
            Some(CONSUMER),
            json!({"params": {"joinKeyMap": {"user_id": "u2"}}}).to_string(),
        ),
        (
            "POST",
            "/api/v1/feature-service/no-such-endpoint",
            Some(CONSUMER),
            String::new(),
        ),
    ];
    for (method, path, key, body) in &cases {
        let from_mock = send(&http, &mock.url(), method, path, *key, body).await;
        let from_wiremock = send(&http, &server.uri(), method, path, *key, body).await;
        assert_eq!(from_wiremock, from_mock, "{method} {path} {body:.200}");
    }
    // The cases cover every status the responders are documented to answer.
    let mut statuses = Vec::new();
    for (method, path, key, body) in &cases {
        statuses.push(
            send(&http, &mock.url(), method, path, *key, body)
                .await
                .status,
        );
    }
    for status in [200, 400, 401, 403, 404, 405, 413] {
        assert!(statuses.contains(&status), "no case answers {status}");
    }
}

#[tokio::test]
async fn seeded_records_are_served() {
    let tecton = Tecton::with_config(config());
    let record = txn("u5", "t1", 3.25, "2024-05-31T10:00:00Z")["record"]
        .as_object()
        .unwrap()
        .clone();
    assert_eq!(tecton.seed("prod", "transactions", vec![record]), Ok(1));
    let server = MockServer::start().await;
    Mock::given(path("/api/v1/feature-service/get-features"))
        .respond_with(tecton.features_responder())
        .mount(&server)
        .await;
    let body = get_features(
        "fraud_detection",
        json!({"user_id": "u5"}),
        json!({"includeNames": true}),
    );
    let seen = send(
        &reqwest::Client::new(),
        &server.uri(),
        "POST",
        "/api/v1/feature-service/get-features",
        Some(CONSUMER),
        &body,
    )
    .await;
    assert_eq!(seen.status, 200, "{}", seen.body);
    let value: Value = serde_json::from_str(&seen.body).unwrap();
    let names = value["metadata"]["features"].as_array().unwrap();
    let amt = names
        .iter()
        .position(|f| f["name"] == "user_last_transaction.amt")
        .expect("the demo serves the last amount");
    assert_eq!(value["result"]["features"][amt], json!(3.25));
}

#[tokio::test]
async fn error_responder_answers_like_a_status_fault() {
    let http = reqwest::Client::new();
    for (status, retry_after, message) in [
        (429, Some(2), None),
        (503, None, None),
        (500, None, Some("disk on fire")),
        (401, Some(0), None),
    ] {
        let mut rule = format!("[[rules]]\naction = {{ kind = \"status\", status = {status}");
        if let Some(s) = retry_after {
            rule.push_str(&format!(", retry_after_s = {s}"));
        }
        if let Some(m) = message {
            rule.push_str(&format!(", message = \"{m}\""));
        }
        rule.push_str(" }\n");
        let mock = MockTecton::start(config().faults(FaultSet::from_toml(&rule).unwrap()))
            .await
            .unwrap();
        let mut responder = ErrorResponder::new(StatusCode::from_u16(status).unwrap());
        if let Some(s) = retry_after {
            responder = responder.retry_after(s);
        }
        if let Some(m) = message {
            responder = responder.message(m);
        }
        let server = MockServer::start().await;
        Mock::given(path_regex(".*"))
            .respond_with(responder)
            .mount(&server)
            .await;
        for path in ["/ingest", "/api/v1/feature-service/get-features"] {
            let body = "{}";
            let from_mock = send(&http, &mock.url(), "POST", path, Some(EDITOR), body).await;
            let from_wiremock = send(&http, &server.uri(), "POST", path, Some(EDITOR), body).await;
            assert_eq!(from_wiremock, from_mock, "status {status} on {path}");
            assert_eq!(from_mock.status, status);
        }
    }
}
