//! Where the HTTP patterns send: the Stream Ingest API (`push`) or a stream source's topic
//! (`kafka`), and how each answer counts.

use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use serde_json::{json, Value};

use crate::recorder::Outcome;
use crate::records::Record;

/// Where and how records are sent.
#[derive(Debug, Clone)]
pub enum Target {
    /// `POST {url}/ingest` with an Editor key: one batch per request.
    Push {
        /// Base URL of the mock (or of anything that speaks the Stream Ingest API).
        url: String,
        /// API key sent as `Tecton-key …`.
        api_key: String,
        /// Workspace name.
        workspace: String,
        /// Push source that receives the records.
        source: String,
    },
    /// `POST {url}/_mock/topics/{topic}?produced_at_ns=…` on the mock's in-memory topic.
    Kafka {
        /// Base URL of the mock.
        url: String,
        /// Topic of the stream source.
        topic: String,
    },
}

/// One request, ready to go.
#[derive(Debug)]
pub struct Request {
    /// Full URL.
    pub url: String,
    /// JSON body.
    pub body: Bytes,
}

impl Target {
    /// The request that carries `records`, due at `due_ns` (Unix ns).
    pub fn request(&self, records: Vec<Record>, due_ns: i64) -> Request {
        match self {
            Target::Push {
                url,
                workspace,
                source,
                ..
            } => {
                let batch: Vec<Value> = records
                    .into_iter()
                    .map(|r| json!({ "record": r }))
                    .collect();
                let body = json!({
                    "workspace_name": workspace,
                    "dry_run": false,
                    "records": { source.as_str(): batch },
                });
                Request {
                    url: format!("{url}/ingest"),
                    body: to_bytes(&body),
                }
            }
            Target::Kafka { url, topic } => {
                let body = Value::Array(records.into_iter().map(Value::Object).collect());
                Request {
                    url: format!("{url}/_mock/topics/{topic}?produced_at_ns={due_ns}"),
                    body: to_bytes(&body),
                }
            }
        }
    }

    /// The HTTP client for this target: a pool of up to `connections` kept-alive
    /// connections, each request bounded by `timeout`.
    pub fn client(
        &self,
        connections: usize,
        timeout: Duration,
    ) -> reqwest::Result<reqwest::Client> {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Target::Push { api_key, .. } = self {
            if let Ok(v) = HeaderValue::from_str(&format!("Tecton-key {api_key}")) {
                headers.insert(AUTHORIZATION, v);
            }
        }
        reqwest::Client::builder()
            .default_headers(headers)
            .pool_max_idle_per_host(connections)
            .pool_idle_timeout(Duration::from_secs(90))
            .tcp_nodelay(true)
            .timeout(timeout)
            .build()
    }
}

fn to_bytes(v: &Value) -> Bytes {
    // Serializing a `Value` cannot fail.
    Bytes::from(serde_json::to_vec(v).unwrap_or_default())
}

/// Sends one request and says how it ended. The body is read to the end so that the
/// connection goes back to the pool.
pub async fn send(client: &reqwest::Client, req: Request) -> Outcome {
    match client.post(&req.url).body(req.body).send().await {
        Ok(resp) => {
            let status = resp.status();
            let body = resp.bytes().await;
            match body {
                Ok(_) if status.is_success() => Outcome::Ok,
                Ok(_) => Outcome::Failed(status.as_u16().to_string()),
                Err(e) => Outcome::Failed(kind(&e).into()),
            }
        }
        Err(e) => Outcome::Failed(kind(&e).into()),
    }
}

/// The error kind of a transport failure.
pub fn kind(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect"
    } else {
        // The connection ended without a whole response: a reset, a close or a cut body.
        "reset"
    }
}
