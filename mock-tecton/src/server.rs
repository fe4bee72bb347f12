//! The HTTP server: routes, the one path every Tecton API exchange takes, and the
//! [`MockTecton`] handle.
//!
//! Every request to a Tecton path flows one way: it takes a journal sequence number, is
//! authenticated, its body is read under the size limit, parsed strictly, handed to its API
//! module, and the exchange is journaled, including when the client goes away first.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::Response;
use axum::routing::any;
use axum::Router;
use bytes::Bytes;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::admin;
use crate::clock::wall_now;
use crate::config::Config;
use crate::ingest::{self, Dialect, IngestError};
use crate::journal::{Entry, Outcome};
use crate::repo::ServiceAccount;
use crate::state::MockState;

/// A running mock Tecton. Dropping the handle stops the server.
///
/// ```no_run
/// # async fn demo() -> std::io::Result<()> {
/// use mock_tecton::{Config, MockTecton};
/// let mock = MockTecton::start(Config::default()).await?;
/// let ingest_url = format!("{}/ingest", mock.url());
/// # let _ = ingest_url;
/// mock.shutdown().await;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct MockTecton {
    addr: SocketAddr,
    state: Arc<MockState>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<io::Result<()>>>,
}

impl MockTecton {
    /// Binds `config.bind` (default `127.0.0.1:0`) and serves in the background.
    pub async fn start(config: Config) -> io::Result<MockTecton> {
        let listener = tokio::net::TcpListener::bind(config.bind).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(MockState::new(&config));
        let (stop, stopped) = oneshot::channel::<()>();
        let app = router(state.clone());
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
        });
        tracing::info!(%addr, "mock Tecton listening");
        Ok(MockTecton {
            addr,
            state,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// The base URL, like `http://127.0.0.1:41234`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The shared state: repository, clock, journal and stores.
    pub fn state(&self) -> &Arc<MockState> {
        &self.state
    }

    /// Every journaled exchange still kept, in arrival order.
    pub fn journal(&self) -> Vec<Entry> {
        self.state.journal.entries(0, usize::MAX)
    }

    /// Stops accepting, lets in-flight requests finish, and waits for the server to end.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            match task.await {
                Ok(Err(e)) => tracing::warn!(error = %e, "mock server ended with an error"),
                Err(e) => tracing::warn!(error = %e, "mock server task failed"),
                Ok(Ok(())) => {}
            }
        }
    }
}

impl Drop for MockTecton {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

fn router(state: Arc<MockState>) -> Router {
    Router::new()
        .route("/ingest", any(ingest_v1))
        .route("/v2/ingest", any(ingest_v2))
        .nest("/_mock", admin::routes())
        .fallback(unknown_path)
        .with_state(state)
}

async fn ingest_v1(State(state): State<Arc<MockState>>, req: Request) -> Response {
    exchange(state, Dialect::V1, req).await
}

async fn ingest_v2(State(state): State<Arc<MockState>>, req: Request) -> Response {
    exchange(state, Dialect::V2, req).await
}

/// Records an exchange when dropped, so a client that hangs up still leaves a journal entry.
struct ExchangeRecord {
    state: Arc<MockState>,
    entry: Entry,
    finished: bool,
    started: Instant,
}

impl ExchangeRecord {
    fn begin(state: Arc<MockState>, method: &Method, path: &str) -> Self {
        let entry = Entry {
            seq: state.journal.next_seq(),
            received_at: wall_now(),
            mock_time: state.clock.now(),
            method: method.to_string(),
            path: path.to_owned(),
            key_id: None,
            request_bytes: 0,
            request_body: Bytes::new(),
            status: 0,
            response_body: Bytes::new(),
            duration_us: 0,
            outcome: Outcome::ClientGone,
            fault: None,
        };
        ExchangeRecord {
            state,
            entry,
            finished: false,
            started: Instant::now(),
        }
    }

    fn entry(&mut self) -> &mut Entry {
        &mut self.entry
    }

    fn finish(mut self, status: StatusCode, body: Bytes) -> Response {
        let e = self.entry();
        e.status = status.as_u16();
        e.response_body = body.clone();
        e.outcome = Outcome::Responded;
        self.finished = true;
        Response::builder()
            .status(status)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body))
            .unwrap_or_else(|_| Response::new(Body::empty()))
    }
}

impl Drop for ExchangeRecord {
    fn drop(&mut self) {
        let mut entry = std::mem::take(&mut self.entry);
        if !self.finished {
            entry.outcome = Outcome::ClientGone;
        }
        entry.duration_us = u64::try_from(self.started.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.state.journal.record(entry);
    }
}

async fn exchange(state: Arc<MockState>, dialect: Dialect, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let mut record = ExchangeRecord::begin(state.clone(), &parts.method, parts.uri.path());
    let result = async {
        if parts.method != Method::POST {
            return Err(IngestError::MethodNotAllowed(format!(
                "{} is not allowed on {}; use POST",
                parts.method,
                parts.uri.path()
            )));
        }
        let account = authenticate(&state, &parts.headers).map_err(IngestError::Unauthenticated)?;
        record.entry().key_id = Some(account.name.clone());
        let bytes = read_body(body, &parts.headers, state.max_body_bytes).await;
        if let Ok(b) | Err(BodyError::Unreadable(b)) = &bytes {
            record.entry().request_bytes = b.len();
            record.entry().request_body = b.clone();
        }
        let bytes = match bytes {
            Ok(b) => b,
            Err(BodyError::TooLarge(n)) => {
                record.entry().request_bytes = n;
                return Err(IngestError::PayloadTooLarge {
                    limit: state.max_body_bytes,
                });
            }
            Err(BodyError::Unreadable(_)) => {
                return Err(IngestError::Invalid(
                    "The request body could not be read".into(),
                ));
            }
        };
        let ctx = state.ingest_context(record.entry().seq);
        ingest::handle_body(&ctx, account, dialect, &bytes)
    }
    .await;
    let (status, body) = match result {
        Ok(ok) => (StatusCode::OK, serde_json::to_vec(&ok)),
        Err(e) => (
            StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST),
            serde_json::to_vec(&e.body()),
        ),
    };
    record.finish(status, Bytes::from(body.unwrap_or_default()))
}

/// Finds the service account of an `Authorization: Tecton-key <key>` header.
fn authenticate<'s>(
    state: &'s MockState,
    headers: &HeaderMap,
) -> Result<&'s ServiceAccount, String> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err("Missing `Authorization: Tecton-key <API key>` header".into());
    };
    let value = value.to_str().unwrap_or_default().trim();
    let key = match value.split_once(' ') {
        Some((scheme, key)) if scheme.eq_ignore_ascii_case("Tecton-key") => key.trim(),
        _ => {
            return Err(
                "The Authorization header must be of the form `Tecton-key <API key>`".into(),
            )
        }
    };
    state
        .repo
        .account_for_key(key)
        .ok_or_else(|| "invalid 'Tecton-key' authorization header. Note that newly created credentials may take up to 60 seconds to be usable.".into())
}

enum BodyError {
    /// Larger than the limit; how many bytes were seen (the declared length, if any).
    TooLarge(usize),
    /// The connection failed mid-body; what arrived.
    Unreadable(Bytes),
}

/// Reads a body under `limit` without buffering more than `limit` bytes of it.
async fn read_body(body: Body, headers: &HeaderMap, limit: usize) -> Result<Bytes, BodyError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if let Some(n) = declared.filter(|n| *n > limit) {
        return Err(BodyError::TooLarge(n));
    }
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
            Err(BodyError::TooLarge(declared.unwrap_or(limit + 1)))
        }
        Err(_) => Err(BodyError::Unreadable(Bytes::new())),
    }
}

async fn unknown_path(State(state): State<Arc<MockState>>, req: Request) -> Response {
    let record = ExchangeRecord::begin(state, req.method(), req.uri().path());
    let body = ingest::request_error(
        crate::decisions::error_type::NOT_FOUND,
        &format!("No such endpoint: {} {}", req.method(), req.uri().path()),
    );
    record.finish(StatusCode::NOT_FOUND, Bytes::from(body.to_string()))
}
