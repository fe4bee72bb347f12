//! The HTTP server: routes, the accept loop, and the [`MockTecton`] handle.

mod body;
mod conn;
mod effects;
mod pipeline;
mod record;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::routing::any;
use axum::Router;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::admin;
use crate::config::Config;
use crate::faults::{FaultError, FaultSet};
use crate::journal::Entry;
use crate::kafka::KafkaConsumer;
use crate::state::MockState;
use crate::store::{OfflineError, OfflineRow};

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
    task: Option<JoinHandle<()>>,
    /// Stops consuming from Kafka when the handle goes.
    kafka: Option<KafkaConsumer>,
}

impl MockTecton {
    /// Binds `config.bind` (default `127.0.0.1:0`) and serves in the background.
    pub async fn start(config: Config) -> io::Result<MockTecton> {
        config
            .faults
            .validate()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        if let Some(profile) = &config.profile {
            profile
                .validate()
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        }
        let listener = tokio::net::TcpListener::bind(config.bind).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(MockState::new(&config));
        state.offline.prepare()?;
        state
            .start_batch()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        tokio::spawn(crate::batch::schedule::drive(Arc::downgrade(&state)));
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(conn::serve(listener, router(state.clone()), stopped));
        tokio::spawn(crate::stream::drive(Arc::downgrade(&state)));
        let kafka = match (&config.kafka, &state.kafka) {
            (Some(k), Some(status)) => Some(KafkaConsumer::spawn(
                k.clone(),
                status.clone(),
                Arc::new(Arc::downgrade(&state)),
            )),
            _ => None,
        };
        tracing::info!(%addr, "mock Tecton listening");
        Ok(MockTecton {
            addr,
            state,
            stop: Some(stop),
            task: Some(task),
            kafka,
        })
    }

    /// The Kafka consumer's progress, when consuming from a broker.
    pub fn kafka(&self) -> Option<&Arc<crate::kafka::KafkaStatus>> {
        self.kafka.as_ref().map(KafkaConsumer::status)
    }

    /// The base URL, like `http://127.0.0.1:41234`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The shared state: repository, clock, journal, stores and faults.
    pub fn state(&self) -> &Arc<MockState> {
        &self.state
    }

    /// Every journaled exchange still kept, in arrival order.
    pub fn journal(&self) -> Vec<Entry> {
        self.state.journal.entries(0, usize::MAX)
    }

    /// The offline log of a push source, in ingestion order (empty for an unknown source).
    pub fn offline_rows(&self, push_source: &str) -> Result<Vec<OfflineRow>, OfflineError> {
        self.state
            .plan
            .source_index(push_source)
            .map_or(Ok(Vec::new()), |i| self.state.offline.rows(i))
    }

    /// Produces JSON records to an in-memory topic (partition by join-key hash, produced now);
    /// returns each record's partition and offset in input order. See [`MockState::produce`].
    pub fn produce(
        &self,
        topic: &str,
        records: &[serde_json::Value],
    ) -> Result<Vec<crate::stream::Offset>, crate::stream::StreamError> {
        self.state.produce(topic, records, None, None)
    }

    /// Appends one record's value bytes to a topic partition, as a Kafka consumer does for each
    /// record it polls. See [`MockState::append`].
    pub fn append(
        &self,
        topic: &str,
        partition: u32,
        payload: bytes::Bytes,
        produced_at_ns: i64,
        broker_offset: Option<u64>,
    ) -> Result<u64, crate::stream::StreamError> {
        self.state
            .append(topic, partition, payload, produced_at_ns, broker_offset)
    }

    /// Moves the virtual clock forward by `ns` (a wall clock becomes virtual) and runs the
    /// micro-batches that became due.
    pub fn advance_clock(&self, ns: i64) -> i64 {
        let now = self.state.clock.advance(ns);
        self.state.run_streams();
        now
    }

    /// Sets the virtual clock to `ns` and runs the micro-batches that became due.
    pub fn set_clock(&self, ns: i64) {
        self.state.clock.set(ns);
        self.state.run_streams();
    }

    /// Replaces the fault rules (counters and scripts start over).
    pub fn set_faults(&self, faults: FaultSet) -> Result<(), FaultError> {
        self.state.faults.install(faults)
    }

    /// Removes every fault rule.
    pub fn clear_faults(&self) {
        self.state.faults.clear();
    }

    /// Stops accepting, lets in-flight requests finish, waits for the server to end, then
    /// writes the offline store's memory tail to disk when its files are kept.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            if let Err(e) = task.await {
                tracing::warn!(error = %e, "mock server task failed");
            }
        }
        // Only kept files outlive the mock; a temporary store is removed unflushed.
        if self.state.offline.keeps_data() {
            let state = self.state.clone();
            let flushed = tokio::task::spawn_blocking(move || state.offline.flush()).await;
            if let Ok(Err(e)) = flushed {
                tracing::error!(error = %e, "final offline flush failed; the rows stay in memory");
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
        .route("/ingest", any(pipeline::ingest_v1))
        .route("/v2/ingest", any(pipeline::ingest_v2))
        .route(
            "/api/v1/feature-service/{endpoint}",
            any(pipeline::serving_v1),
        )
        .route(
            "/api/v2/workspaces/{workspace}/feature-services/{service}/{endpoint}",
            any(pipeline::serving_v2),
        )
        .nest("/_mock", admin::routes())
        .fallback(pipeline::unknown_path)
        .with_state(state)
}
