//! Sinks under test and the contract between them and the harness (sink protocol v1).
//!
//! The harness gives a sink a [`SinkEnv`] (where Tecton is, which key, workspace and push
//! source, and hints) and the input records; the sink delivers them and reports a
//! [`SinkOutcome`]. A command sink gets the same as environment variables and stdin JSON Lines.
//!
//! The sinks the harness can run:
//! * [`ReferenceSink`]: how a good production sink behaves (batching, retries with jittered
//!   backoff, timeouts, order, honest exit), in-process.
//! * [`MutantSink`]: the reference with exactly one [`Mutant`] defect, to prove the checks bite.
//! * [`CommandSink`]: any program speaking protocol v1 ([`protocol`]), run as a shell command;
//!   the `reference-sink` binary is the reference sink as such a program.
//! * [`AttachedSink`]: a sink running elsewhere; the harness only waits for a [`Completion`].

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub mod attach;
pub mod backoff;
pub mod command;
pub mod defect;
pub(crate) mod mutants;
pub mod protocol;
pub mod reference;

pub use attach::{AttachedSink, Completion};
pub use command::CommandSink;
pub use defect::Mutant;
pub use mutants::MutantSink;
pub use reference::ReferenceSink;

/// One input record: the fields of a push-source record (not wrapped in `{"record": …}`).
pub type Record = serde_json::Map<String, serde_json::Value>;

/// A boxed future, so that sinks can be used as `dyn Sink`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What the harness tells a sink: protocol v1's environment variables.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SinkEnv {
    /// `TECTON_URL`: the mock's base URL (the sink posts to `{url}/ingest`).
    pub url: String,
    /// `TECTON_API_KEY`.
    pub api_key: String,
    /// `TECTON_WORKSPACE`.
    pub workspace: String,
    /// `TECTON_PUSH_SOURCE`.
    pub push_source: String,
    /// `SINK_BATCH_SIZE`: records per request the sink should send at most.
    pub batch_size: usize,
    /// `SINK_MAX_RETRIES`: retries per request after the first attempt.
    pub max_retries: u32,
    /// `SINK_TIMEOUT_S` (fractional seconds allowed): per-request timeout.
    pub timeout: Duration,
    /// `SINK_INPUT`: a JSONL file with the records (also sent on stdin).
    pub input_path: Option<PathBuf>,
    /// `SINK_SEED`: seed for the sink's own random choices (jitter), for replayable runs.
    pub seed: u64,
}

/// The optional metrics line a sink prints at exit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SinkMetrics {
    /// Records acknowledged by Tecton.
    pub records_written: u64,
    /// HTTP requests sent, retries included.
    pub write_requests: u64,
    /// Requests that failed.
    pub write_errors: u64,
}

/// How a sink run ended.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SinkOutcome {
    /// Exit code; `Some(0)` means every record was acknowledged. `None` when it was killed.
    pub exit_code: Option<i32>,
    /// Whether the harness killed it at the wall-clock limit.
    pub timed_out: bool,
    /// What it said on stderr (the reason it gave up, if it did).
    pub stderr: String,
    /// Its metrics line, if it printed one.
    pub metrics: Option<SinkMetrics>,
    /// Wall-clock run time.
    pub elapsed: Duration,
}

impl SinkOutcome {
    /// Whether the sink claims every record was acknowledged.
    pub fn succeeded(&self) -> bool {
        self.exit_code == Some(0) && !self.timed_out
    }
}

/// A sink under test. Implement this for a Rust sink to run it in-process.
pub trait Sink: Send + Sync {
    /// A short name for reports.
    fn name(&self) -> String;

    /// Delivers `records` to Tecton as `env` says, flushes, and reports how it ended.
    fn run<'a>(&'a self, env: &'a SinkEnv, records: Vec<Record>) -> BoxFuture<'a, SinkOutcome>;
}
