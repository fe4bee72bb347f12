//! Tecton's answers for your own [`wiremock`](::wiremock) `MockServer` (cargo feature
//! `wiremock`).
//!
//! Three [`Respond`] implementations, answering with the same code as the mock server, so the
//! bodies are the same byte for byte:
//!
//! - [`IngestResponder`]: the Stream Ingest API (`/ingest`, `/v2/ingest`) over a feature
//!   repository: it checks the key, the request and every record, writes the accepted records
//!   to an in-memory store and answers 200 with ingest metrics, 400 with `recordErrors` or
//!   `requestError`, 401, 403, 404 or 413.
//! - [`FeaturesResponder`]: the feature server (`get-features`, `get-features-batch`,
//!   `metadata`) over the same store: what was ingested, or seeded with [`Tecton::seed`].
//! - [`ErrorResponder`]: a Tecton error body for any status, with an optional `Retry-After`,
//!   to test retries.
//!
//! A [`Tecton`] holds the repository and the stores; its responders share them.
//!
//! ```
//! use mock_tecton::wiremock::{ErrorResponder, StatusCode, Tecton};
//! use mock_tecton::Config;
//! use serde_json::json;
//! use wiremock::matchers::{method, path};
//! use wiremock::{Mock, MockServer};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let server = MockServer::start().await;
//! // The embedded fraud demo repository, on a clock stopped at 2024-06-01T00:00:00Z so the
//! // record below is within its feature views' TTL (`Tecton::demo()` uses the wall clock).
//! let tecton = Tecton::with_config(Config::default().virtual_clock(1_717_200_000_000_000_000));
//! // The first ingest request is throttled, then the mock Tecton answers.
//! Mock::given(method("POST"))
//!     .and(path("/ingest"))
//!     .respond_with(ErrorResponder::new(StatusCode::TOO_MANY_REQUESTS).retry_after(1))
//!     .up_to_n_times(1)
//!     .mount(&server)
//!     .await;
//! Mock::given(path("/ingest"))
//!     .respond_with(tecton.ingest_responder())
//!     .mount(&server)
//!     .await;
//! Mock::given(path("/api/v1/feature-service/get-features"))
//!     .respond_with(tecton.features_responder())
//!     .mount(&server)
//!     .await;
//!
//! // The client under test would do this:
//! let http = reqwest::Client::new();
//! let ingest = json!({
//!     "workspace_name": "prod",
//!     "dry_run": false,
//!     "records": {"transactions": [{"record": {
//!         "user_id": "u1", "transaction_id": "t1", "merchant": "acme",
//!         "amt": 12.5, "is_fraud": 0, "timestamp": "2024-05-31T10:00:00Z"
//!     }}]}
//! });
//! let send = || {
//!     http.post(format!("{}/ingest", server.uri()))
//!         .header("Authorization", "Tecton-key demo-editor-key")
//!         .json(&ingest)
//!         .send()
//! };
//! let throttled = send().await?;
//! assert_eq!(throttled.status(), 429);
//! assert_eq!(throttled.headers()["retry-after"], "1");
//! let accepted = send().await?;
//! assert_eq!(accepted.status(), 200);
//!
//! let features: serde_json::Value = http
//!     .post(format!("{}/api/v1/feature-service/get-features", server.uri()))
//!     .header("Authorization", "Tecton-key demo-consumer-key")
//!     .json(&json!({"params": {
//!         "workspaceName": "prod",
//!         "featureServiceName": "fraud_detection",
//!         "joinKeyMap": {"user_id": "u1"}
//!     }}))
//!     .send()
//!     .await?
//!     .json()
//!     .await?;
//! assert!(features["result"]["features"].is_array());
//! # Ok(())
//! # }
//! ```

use std::path::Path;
use std::sync::Arc;

use ::wiremock::{Request, Respond, ResponseTemplate};
pub use axum::http::StatusCode;
use axum::http::{header, HeaderValue};

use crate::exchange::{self, Answer, Api};
use crate::ingest::{Dialect, IngestError};
use crate::rejection::{reject, ErrorFormat, Rejection};
use crate::repo::RepoErrors;
use crate::serving::Endpoint;
use crate::state::MockState;
use crate::{Config, Repository};

/// An in-memory Tecton: a feature repository and the stores its responders read and write.
/// Clones share the stores.
#[derive(Debug, Clone)]
pub struct Tecton {
    state: Arc<MockState>,
}

impl Default for Tecton {
    /// The embedded fraud demo repository.
    fn default() -> Self {
        Tecton::demo()
    }
}

impl Tecton {
    /// Over the embedded fraud demo repository (`tecton-sim repo show-default` prints it).
    pub fn demo() -> Self {
        Tecton::new(Repository::demo())
    }

    /// Over a repository.
    pub fn new(repository: Repository) -> Self {
        Tecton::with_config(Config::new(repository))
    }

    /// Over a repository in TOML, as `serve --config` reads it.
    pub fn from_toml(text: &str) -> Result<Self, RepoErrors> {
        Ok(Tecton::new(Repository::from_toml(text, "repository")?))
    }

    /// Over a repository TOML file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, RepoErrors> {
        Ok(Tecton::new(Repository::from_file(path.as_ref())?))
    }

    /// With the mock's settings: its repository, limits (records per source, body size) and
    /// clock (a virtual clock makes TTLs and served values reproducible). Faults, the Tecton
    /// profile and the bind address do not apply: use [`ErrorResponder`] and wiremock's own
    /// delays instead.
    pub fn with_config(config: Config) -> Self {
        Tecton {
            state: Arc::new(MockState::new(&config)),
        }
    }

    /// Answers the Stream Ingest API, writing to these stores.
    pub fn ingest_responder(&self) -> IngestResponder {
        IngestResponder {
            tecton: self.clone(),
        }
    }

    /// Answers the feature server from these stores.
    pub fn features_responder(&self) -> FeaturesResponder {
        FeaturesResponder {
            tecton: self.clone(),
        }
    }

    /// Writes records of a push source directly, as an ingest request of an editor of
    /// `workspace` would (validated, but without the TTL check, like a backfill); returns how
    /// many were written, or why a batch was refused.
    pub fn seed(
        &self,
        workspace: &str,
        push_source: &str,
        records: Vec<serde_json::Map<String, serde_json::Value>>,
    ) -> Result<usize, IngestError> {
        self.state.load_records(workspace, push_source, records)
    }

    /// The shared state: repository, clock and stores.
    pub fn state(&self) -> &MockState {
        &self.state
    }

    /// Runs the synchronous core on a wiremock request.
    fn answer(&self, api: &Api, request: &Request) -> Answer {
        let req = exchange::Request {
            method: &request.method,
            path: request.url.path(),
            headers: &request.headers,
            body: Ok(bytes::Bytes::copy_from_slice(&request.body)),
            seq: self.state.journal.next_seq(),
        };
        exchange::answer(&self.state, api, req)
    }
}

/// The Stream Ingest API: `POST /ingest` and `POST /v2/ingest` (the dialect follows the path).
/// Any other path gets the mock's 404.
#[derive(Debug, Clone)]
pub struct IngestResponder {
    tecton: Tecton,
}

impl IngestResponder {
    /// Over the embedded demo repository, with stores of its own.
    pub fn demo() -> Self {
        Tecton::demo().ingest_responder()
    }

    /// The in-memory Tecton it writes to.
    pub fn tecton(&self) -> &Tecton {
        &self.tecton
    }
}

impl Respond for IngestResponder {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let path = request.url.path();
        match route(path) {
            Some(api @ Api::Ingest(_)) => template(self.tecton.answer(&api, request)),
            Some(Api::Serving { .. }) | None => template(unknown_path(request)),
        }
    }
}

/// The feature server: `/api/v1/feature-service/{get-features, get-features-batch, metadata,
/// …}` and `/api/v2/workspaces/{workspace}/feature-services/{service}/{endpoint}`. Any other
/// path gets the mock's 404.
#[derive(Debug, Clone)]
pub struct FeaturesResponder {
    tecton: Tecton,
}

impl FeaturesResponder {
    /// The in-memory Tecton it reads.
    pub fn tecton(&self) -> &Tecton {
        &self.tecton
    }
}

impl Respond for FeaturesResponder {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        match route(request.url.path()) {
            Some(api @ Api::Serving { .. }) => template(self.tecton.answer(&api, request)),
            Some(Api::Ingest(_)) | None => template(unknown_path(request)),
        }
    }
}

/// A Tecton error for any status: the feature server's body for paths under `/api/`, Stream
/// Ingest's `requestError` otherwise, exactly as the mock's `status` fault answers.
#[derive(Debug, Clone)]
pub struct ErrorResponder {
    status: StatusCode,
    retry_after_s: Option<u64>,
    message: Option<String>,
}

impl ErrorResponder {
    /// Answers `status` with the standard message for it.
    pub fn new(status: StatusCode) -> Self {
        ErrorResponder {
            status,
            retry_after_s: None,
            message: None,
        }
    }

    /// Adds `Retry-After: seconds`.
    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after_s = Some(seconds);
        self
    }

    /// Replaces the standard message.
    pub fn message(mut self, message: impl Into<String>) -> Self {
        self.message = Some(message.into());
        self
    }
}

impl Respond for ErrorResponder {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let why = Rejection::Status {
            status: self.status,
            message: self.message.clone(),
        };
        let mut answer = reject(ErrorFormat::for_path(request.url.path()), why);
        if let Some(s) = self.retry_after_s {
            answer
                .headers
                .insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        template(answer)
    }
}

/// The API of a path, as the mock's router decides it (path segments percent-decoded).
fn route(path: &str) -> Option<Api> {
    let segments: Vec<String> = path
        .strip_prefix('/')?
        .split('/')
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8()
                .map(String::from)
        })
        .collect::<Result<_, _>>()
        .ok()?;
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    match segments.as_slice() {
        ["ingest"] => Some(Api::Ingest(Dialect::V1)),
        ["v2", "ingest"] => Some(Api::Ingest(Dialect::V2)),
        ["api", "v1", "feature-service", endpoint] => Some(Api::Serving {
            endpoint: Endpoint::from_segment(endpoint)?,
            target: None,
        }),
        ["api", "v2", "workspaces", workspace, "feature-services", service, endpoint] => {
            match Endpoint::from_segment(endpoint)? {
                endpoint @ (Endpoint::GetFeatures
                | Endpoint::GetFeaturesBatch
                | Endpoint::Metadata) => Some(Api::Serving {
                    endpoint,
                    target: Some(((*workspace).to_owned(), (*service).to_owned())),
                }),
                Endpoint::QueryFeatures | Endpoint::ServiceState => None,
            }
        }
        _ => None,
    }
}

/// The mock's 404 for a path it does not serve.
fn unknown_path(request: &Request) -> Answer {
    let path = request.url.path();
    let message = format!("No such endpoint: {} {path}", request.method);
    reject(ErrorFormat::for_path(path), Rejection::NotFound(message))
}

fn template(answer: Answer) -> ResponseTemplate {
    let mut template = ResponseTemplate::new(answer.status.as_u16())
        .set_body_raw(answer.body.to_vec(), "application/json");
    for (name, value) in &answer.headers {
        template = template.append_header(name.clone(), value.clone());
    }
    template
}
