//! Helpers shared by the integration tests: a started mock and a small HTTP client.
#![allow(dead_code)]

use mock_tecton::{Config, MockTecton, Repository};
use serde_json::{json, Value};

/// 2024-06-01T00:00:00Z: the virtual "now" of tests that depend on TTLs.
pub(crate) const NOW: i64 = 1_717_200_000_000_000_000;

pub(crate) struct Harness {
    pub mock: MockTecton,
    pub http: reqwest::Client,
}

pub(crate) async fn demo() -> Harness {
    start(Config::default().virtual_clock(NOW)).await
}

pub(crate) async fn start(config: Config) -> Harness {
    let mock = MockTecton::start(config).await.expect("mock starts");
    Harness {
        mock,
        http: reqwest::Client::new(),
    }
}

pub(crate) fn docs_repo() -> Repository {
    Repository::from_toml(
        include_str!("../fixtures/docs_sample.toml"),
        "docs_sample.toml",
    )
    .expect("fixture is valid")
}

impl Harness {
    /// POSTs raw bytes with an optional key; returns status and JSON body.
    pub(crate) async fn post_raw(
        &self,
        path: &str,
        key: Option<&str>,
        body: impl Into<reqwest::Body>,
    ) -> (u16, Value) {
        let mut req = self
            .http
            .post(format!("{}{path}", self.mock.url()))
            .body(body);
        if let Some(key) = key {
            req = req.header("Authorization", format!("Tecton-key {key}"));
        }
        let resp = req.send().await.expect("request is answered");
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("body is readable");
        let json =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("non-JSON body ({e}): {text}"));
        (status, json)
    }

    pub(crate) async fn ingest(&self, key: &str, body: &Value) -> (u16, Value) {
        self.post_raw("/ingest", Some(key), body.to_string()).await
    }

    pub(crate) async fn admin(&self, path: &str) -> Value {
        self.http
            .get(format!("{}/_mock{path}", self.mock.url()))
            .send()
            .await
            .expect("admin answers")
            .json()
            .await
            .expect("admin JSON")
    }
}

/// A valid `transactions` record of the demo repository.
pub(crate) fn txn(user: &str, id: &str, amt: f64, ts: &str) -> Value {
    json!({"record": {"user_id": user, "transaction_id": id, "merchant": "acme", "amt": amt, "is_fraud": 0, "timestamp": ts}})
}

/// An ingest body for the demo repository.
pub(crate) fn batch(dry_run: bool, records: Vec<Value>) -> Value {
    json!({"workspace_name": "prod", "dry_run": dry_run, "records": {"transactions": records}})
}
