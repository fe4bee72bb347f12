//! Everything one mock instance shares between requests. No field is behind a global lock.

use std::sync::atomic::AtomicU64;

use crate::clock::Clock;
use crate::config::Config;
use crate::faults::FaultEngine;
use crate::ingest::{IngestContext, IngestPlan};
use crate::journal::Journal;
use crate::profile::Profile;
use crate::repo::Repository;
use crate::store::{OfflineLog, OnlineStore};

/// Shared state of a running mock.
#[derive(Debug)]
pub struct MockState {
    /// The feature repository.
    pub(crate) repo: Repository,
    /// Source-to-view routing.
    pub(crate) plan: IngestPlan,
    /// Now.
    pub(crate) clock: Clock,
    /// Every exchange.
    pub(crate) journal: Journal,
    /// What the feature server reads.
    pub(crate) online: OnlineStore,
    /// Every logged record.
    pub(crate) offline: OfflineLog,
    /// Next record sequence number.
    pub(crate) record_seq: AtomicU64,
    /// Per-source record limit.
    pub(crate) records_per_source: usize,
    /// Body size limit.
    pub(crate) max_body_bytes: usize,
    /// Installed fault rules.
    pub(crate) faults: FaultEngine,
    /// Tecton's latency and capacity, when the profile is on.
    pub(crate) profile: Option<Profile>,
    /// Topics and micro-batch queries of the stream sources.
    pub(crate) streams: crate::stream::Streams,
    /// The Kafka consumer's progress, when consuming from a broker.
    pub(crate) kafka: Option<std::sync::Arc<crate::kafka::KafkaStatus>>,
    /// Batch sources and batch materialization jobs.
    pub(crate) batch: crate::batch::Batches,
}

impl MockState {
    /// Builds the state for a configuration.
    pub fn new(config: &Config) -> Self {
        let repo = config.repository.clone();
        let clock = config
            .virtual_start
            .map_or_else(Clock::wall, Clock::virtual_at);
        let mut stream = config.stream.clone();
        // The profile's micro-batch overhead applies unless the stream configuration sets one.
        if let (Some(p), true) = (&config.profile, stream.batch_overhead.is_zero()) {
            stream.batch_overhead = std::time::Duration::from_millis(p.spark_batch_overhead_ms);
        }
        MockState {
            plan: IngestPlan::new(&repo),
            streams: crate::stream::Streams::new(&repo, stream, clock.now()),
            kafka: config.kafka.as_ref().map(|k| {
                let topics = repo.stream_sources.iter().map(|s| s.topic.clone());
                std::sync::Arc::new(crate::kafka::KafkaStatus::new(k, topics))
            }),
            clock,
            journal: Journal::new(config.journal_capacity, config.journal_body_bytes),
            online: OnlineStore::new(&repo, config.retention),
            offline: OfflineLog::new(&repo, &config.offline),
            record_seq: AtomicU64::new(0),
            records_per_source: config.records_per_source,
            max_body_bytes: config.max_body_bytes,
            faults: FaultEngine::new(config.faults.clone()),
            profile: config.profile.clone().map(Profile::new),
            batch: crate::batch::Batches::new(&repo),
            repo,
        }
    }

    /// The feature repository.
    pub fn repo(&self) -> &Repository {
        &self.repo
    }

    /// The mock's clock: now, and moving it when virtual.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Every exchange, in arrival order.
    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    /// What the feature server reads.
    pub fn online(&self) -> &OnlineStore {
        &self.online
    }

    /// Every logged record: the offline store.
    pub fn offline(&self) -> &OfflineLog {
        &self.offline
    }

    /// The next record sequence number (how many records were logged since the last reset).
    pub fn record_seq(&self) -> u64 {
        self.record_seq.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Tecton's latency and capacity, when the profile is on.
    pub fn profile(&self) -> Option<&Profile> {
        self.profile.as_ref()
    }

    /// A push source's index by name (the index the offline store and the journal use).
    pub fn push_source_index(&self, name: &str) -> Option<usize> {
        self.plan.source_index(name)
    }

    /// Topics and micro-batch queries of the stream sources.
    pub fn streams(&self) -> &crate::stream::Streams {
        &self.streams
    }

    /// The ingest path's view of the state.
    pub fn ingest_context(&self, request_seq: u64) -> IngestContext<'_> {
        IngestContext {
            repo: &self.repo,
            plan: &self.plan,
            online: &self.online,
            offline: &self.offline,
            record_seq: &self.record_seq,
            records_per_source: self.records_per_source,
            now: self.clock.now(),
            request_seq,
            drift: None,
            check_ttl: true,
        }
    }

    /// Loads history into a push source through the ingest path (same validation and writes,
    /// but no TTL check, as for a batch-source backfill), in batches of the per-source limit,
    /// as an internal Editor of `workspace`.
    /// Stops at the first refused batch; returns how many records were written.
    pub fn load_records(
        &self,
        workspace: &str,
        source: &str,
        records: Vec<serde_json::Map<String, serde_json::Value>>,
    ) -> Result<usize, crate::ingest::IngestError> {
        let loader = crate::repo::ServiceAccount {
            name: "tecton-sim loader".into(),
            api_key: String::new(),
            roles: [(workspace.to_owned(), vec![crate::repo::Role::Editor])].into(),
        };
        let mut written = 0;
        for chunk in records.chunks(self.records_per_source.max(1)) {
            let request = crate::ingest::IngestRequest {
                workspace: workspace.to_owned(),
                dry_run: false,
                records: vec![(source.to_owned(), chunk.to_vec())],
            };
            let mut ctx = self.ingest_context(u64::MAX);
            ctx.check_ttl = false;
            crate::ingest::ingest(&ctx, &loader, request)?;
            written += chunk.len();
        }
        Ok(written)
    }

    /// Empties stores (the offline store's files too) and journal and removes fault rules; the
    /// repository and clock stay. Everything else is emptied even when the files cannot be.
    pub fn reset(&self) -> Result<(), crate::store::OfflineError> {
        self.faults.clear();
        self.online.clear();
        let offline = self.offline.clear();
        self.journal.clear();
        self.streams.reset(&self.repo, self.clock.now());
        self.batch.reset(self.clock.now());
        self.record_seq
            .store(0, std::sync::atomic::Ordering::Relaxed);
        offline
    }
}
