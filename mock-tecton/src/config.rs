//! How a mock instance is set up. Every default lives in [`crate::decisions`] or here.

use std::net::SocketAddr;

use crate::decisions;
use crate::faults::FaultSet;
use crate::profile::TectonProfile;
use crate::repo::Repository;

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
    /// The micro-batch engine of stream sources.
    pub stream: crate::stream::StreamConfig,
    /// Tecton's latency and capacity (`None`: the raw mock, as fast as this machine).
    pub profile: Option<TectonProfile>,
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
            stream: crate::stream::StreamConfig::default(),
            profile: None,
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

    /// Sets the micro-batch engine's configuration.
    pub fn stream(mut self, stream: crate::stream::StreamConfig) -> Self {
        self.stream = stream;
        self
    }

    /// Answers with Tecton's latency and capacity (see [`crate::profile`]).
    pub fn profile(mut self, profile: TectonProfile) -> Self {
        self.profile = Some(profile);
        self
    }

    /// Starts on a virtual clock at `ns`.
    pub fn virtual_clock(mut self, ns: i64) -> Self {
        self.virtual_start = Some(ns);
        self
    }
}
