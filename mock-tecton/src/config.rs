//! How a mock instance is set up. Every default lives in [`crate::decisions`] or here.

use std::net::SocketAddr;

use crate::decisions;
use crate::faults::FaultSet;
use crate::profile::TectonProfile;
use crate::repo::Repository;
use crate::store::OfflineSettings;

/// Settings for one mock instance.
#[derive(Debug, Clone)]
pub struct Config {
    /// The feature repository (default: the embedded demo).
    pub repository: Repository,
    /// Address to bind (default `127.0.0.1:0`, an ephemeral loopback port).
    pub bind: SocketAddr,
    /// Records per push source per ingest request.
    pub records_per_source: usize,
    /// Request bodies larger than this get 413.
    pub max_body_bytes: usize,
    /// Journal entries kept before the oldest are let go.
    pub journal_capacity: usize,
    /// Bytes of each request and response body kept in the journal.
    pub journal_body_bytes: usize,
    /// Start on a virtual clock stopped at this time (ns since the epoch) instead of the wall clock.
    pub virtual_start: Option<i64>,
    /// Fault rules installed at start.
    pub faults: FaultSet,
    /// Tecton's latency and capacity (`None`: the raw mock, as fast as this machine).
    pub profile: Option<TectonProfile>,
    /// The micro-batch engine of stream sources.
    pub stream: crate::stream::StreamConfig,
    /// Consume the stream sources' topics from a real Kafka-protocol broker.
    pub kafka: Option<crate::kafka::KafkaConfig>,
    /// The offline store's data directory and flush policy.
    pub offline: OfflineSettings,
    /// What the online store keeps (default: what the clock can still serve).
    pub retention: Retention,
}

/// What the online store keeps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Retention {
    /// Only what a request at the clock's time or later can read: memory stays bounded under
    /// sustained load (see [`crate::store::OnlineStore`]).
    #[default]
    Servable,
    /// Every event and row, whatever the clock: for replaying a history and evaluating it at
    /// past points (the in-process `offline` and `consistency` commands). Grows without bound.
    Everything,
}

impl Default for Config {
    fn default() -> Self {
        Config::new(Repository::demo())
    }
}

impl Config {
    /// Defaults with the given repository.
    pub fn new(repository: Repository) -> Self {
        Config {
            repository,
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            records_per_source: decisions::DEFAULT_RECORDS_PER_SOURCE,
            max_body_bytes: decisions::DEFAULT_MAX_BODY_BYTES,
            journal_capacity: decisions::DEFAULT_JOURNAL_CAPACITY,
            journal_body_bytes: decisions::JOURNAL_BODY_BYTES,
            virtual_start: None,
            faults: FaultSet::default(),
            profile: None,
            stream: crate::stream::StreamConfig::default(),
            kafka: None,
            offline: OfflineSettings::default(),
            retention: Retention::default(),
        }
    }

    /// Sets the bind address.
    pub fn bind(mut self, addr: SocketAddr) -> Self {
        self.bind = addr;
        self
    }

    /// Sets the per-source record limit.
    pub fn records_per_source(mut self, n: usize) -> Self {
        self.records_per_source = n;
        self
    }

    /// Sets the body size limit.
    pub fn max_body_bytes(mut self, n: usize) -> Self {
        self.max_body_bytes = n;
        self
    }

    /// Sets the journal capacity (entries).
    pub fn journal_capacity(mut self, n: usize) -> Self {
        self.journal_capacity = n;
        self
    }

    /// Installs fault rules at start.
    pub fn faults(mut self, faults: FaultSet) -> Self {
        self.faults = faults;
        self
    }

    /// Answers with Tecton's latency and capacity (see [`crate::profile`]).
    pub fn profile(mut self, profile: TectonProfile) -> Self {
        self.profile = Some(profile);
        self
    }

    /// Sets the micro-batch engine's configuration.
    pub fn stream(mut self, stream: crate::stream::StreamConfig) -> Self {
        self.stream = stream;
        self
    }

    /// Consumes every stream source's topic from a Kafka-protocol broker (see [`crate::kafka`]).
    pub fn kafka(mut self, kafka: crate::kafka::KafkaConfig) -> Self {
        self.kafka = Some(kafka);
        self
    }

    /// Writes the offline store under `dir` (default: a fresh temporary directory).
    pub fn data_dir(mut self, dir: impl Into<std::path::PathBuf>) -> Self {
        self.offline.data_dir = Some(dir.into());
        self
    }

    /// Keeps the offline store's files when the mock ends (default: removed).
    pub fn keep_data(mut self, keep: bool) -> Self {
        self.offline.keep_data = keep;
        self
    }

    /// Flushes the offline store's memory tail to disk at `rows` waiting rows or every
    /// `interval`, whichever comes first.
    pub fn offline_flush(mut self, rows: usize, interval: std::time::Duration) -> Self {
        self.offline.flush_rows = rows;
        self.offline.flush_interval = interval;
        self
    }

    /// Sets what the online store keeps.
    pub fn retention(mut self, retention: Retention) -> Self {
        self.retention = retention;
        self
    }

    /// Starts on a virtual clock at `ns`.
    pub fn virtual_clock(mut self, ns: i64) -> Self {
        self.virtual_start = Some(ns);
        self
    }
}
