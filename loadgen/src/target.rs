//! Where the HTTP patterns send: the Stream Ingest API (`push`) or a stream source's topic
//! (`kafka`), and how each answer counts.
//!
//! Requests go through hyper's pooled HTTP/1.1 client directly: at tens of thousands of
//! requests per second the generator's own cost per request decides how much of the machine is
//! left to the server under test.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use hyper::Uri;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

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
pub(crate) struct Request {
    /// Full URL.
    pub url: String,
    /// JSON body.
    pub body: Bytes,
}

impl Target {
    /// The request that carries `records`, due at `due_ns` (Unix ns).
    pub(crate) fn request(&self, records: Vec<Record>, due_ns: i64) -> Request {
        // Written straight into one buffer: no intermediate JSON tree per request.
        let mut buf = Vec::with_capacity(64 + 192 * records.len());
        match self {
            Target::Push {
                url,
                workspace,
                source,
                ..
            } => {
                buf.extend_from_slice(b"{\"workspace_name\":");
                write_json(&mut buf, workspace);
                buf.extend_from_slice(b",\"dry_run\":false,\"records\":{");
                write_json(&mut buf, source);
                buf.extend_from_slice(b":[");
                for (i, r) in records.iter().enumerate() {
                    if i > 0 {
                        buf.push(b',');
                    }
                    buf.extend_from_slice(b"{\"record\":");
                    write_json(&mut buf, r);
                    buf.push(b'}');
                }
                buf.extend_from_slice(b"]}}");
                Request {
                    url: format!("{url}/ingest"),
                    body: Bytes::from(buf),
                }
            }
            Target::Kafka { url, topic } => {
                buf.push(b'[');
                for (i, r) in records.iter().enumerate() {
                    if i > 0 {
                        buf.push(b',');
                    }
                    write_json(&mut buf, r);
                }
                buf.push(b']');
                Request {
                    url: format!("{url}/_mock/topics/{topic}?produced_at_ns={due_ns}"),
                    body: Bytes::from(buf),
                }
            }
        }
    }

    /// The HTTP client for this target: a pool of up to `connections` kept-alive
    /// connections, each request bounded by `timeout`.
    pub(crate) fn client(&self, connections: usize, timeout: Duration) -> Http {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(connections)
            .pool_idle_timeout(Duration::from_secs(90))
            .build(connector);
        let auth = match self {
            Target::Push { api_key, .. } => {
                HeaderValue::from_str(&format!("Tecton-key {api_key}")).ok()
            }
            Target::Kafka { .. } => None,
        };
        Http {
            client,
            auth,
            timeout,
        }
    }
}

fn write_json<T: serde::Serialize + ?Sized>(buf: &mut Vec<u8>, v: &T) {
    // Strings and maps of JSON values always serialize.
    let _ = serde_json::to_writer(buf, v);
}

/// A pooled HTTP/1.1 client with the target's headers and a per-request timeout.
#[derive(Clone, Debug)]
pub(crate) struct Http {
    client: Client<HttpConnector, Full<Bytes>>,
    auth: Option<HeaderValue>,
    timeout: Duration,
}

enum Failure {
    Request(hyper_util::client::legacy::Error),
    Body,
}

impl Http {
    /// Sends one request and says how it ended. The body is read to the end so that the
    /// connection goes back to the pool.
    pub(crate) async fn send(&self, req: Request) -> Outcome {
        let uri = match req.url.parse::<Uri>() {
            Ok(uri) => uri,
            Err(_) => return Outcome::Failed("bad_url".into()),
        };
        let mut builder = hyper::Request::post(uri)
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Some(auth) = &self.auth {
            builder = builder.header(AUTHORIZATION, auth.clone());
        }
        let Ok(request) = builder.body(Full::new(req.body)) else {
            return Outcome::Failed("bad_url".into());
        };
        let exchange = async {
            let resp = self
                .client
                .request(request)
                .await
                .map_err(Failure::Request)?;
            let status = resp.status();
            resp.into_body()
                .collect()
                .await
                .map_err(|_| Failure::Body)?;
            Ok::<_, Failure>(status)
        };
        match tokio::time::timeout(self.timeout, exchange).await {
            Err(_) => Outcome::Failed("timeout".into()),
            Ok(Ok(status)) if status.is_success() => Outcome::Ok,
            Ok(Ok(status)) => Outcome::Failed(status.as_u16().to_string()),
            Ok(Err(Failure::Request(e))) if e.is_connect() => Outcome::Failed("connect".into()),
            // The connection ended without a whole response: a reset, a close or a cut body.
            Ok(Err(_)) => Outcome::Failed("reset".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;

    fn records() -> Vec<Record> {
        let r = json!({"user_id": "u\"1", "amt": 1.5});
        vec![r.as_object().unwrap().clone(); 2]
    }

    #[test]
    fn push_body_is_the_ingest_request_and_kafka_body_an_array() {
        let push = Target::Push {
            url: "http://h".into(),
            api_key: "k".into(),
            workspace: "prod".into(),
            source: "tx".into(),
        };
        let req = push.request(records(), 5);
        assert_eq!(req.url, "http://h/ingest");
        let body: Value = serde_json::from_slice(&req.body).unwrap();
        assert_eq!(
            body,
            json!({"workspace_name": "prod", "dry_run": false, "records": {"tx": [
                {"record": {"user_id": "u\"1", "amt": 1.5}},
                {"record": {"user_id": "u\"1", "amt": 1.5}}]}})
        );

        let kafka = Target::Kafka {
            url: "http://h".into(),
            topic: "t".into(),
        };
        let req = kafka.request(records(), 1_700_000_000_000_000_123);
        assert_eq!(
            req.url,
            "http://h/_mock/topics/t?produced_at_ns=1700000000000000123"
        );
        let body: Value = serde_json::from_slice(&req.body).unwrap();
        assert_eq!(body.as_array().map(Vec::len), Some(2));
    }
}
