//! Scenarios and conformance checks for anything that writes to Tecton's Stream Ingest API.
//!
//! A scenario starts a fresh [`mock_tecton::MockTecton`], installs its faults, hands its input
//! records to a [`sink::Sink`] (a command speaking sink protocol v1, a Rust type in-process, or
//! a sink running elsewhere that is attached), then judges the journal, the stores and the
//! sink's exit with checks that report pass, fail or warn with evidence.
//!
//! The data flows one way: [`scenario`] (what to do) → [`runner`] (the mock and the sink) →
//! [`checks`] (the verdicts, reading answers through [`answer`]) → [`report`] (plain data for the
//! `reports` crate's renderers). [`chaos`] builds on the runner: random fault schedules, and
//! the first failure shrunk to a scenario file that replays it.
//!
//! # A Rust sink under the whole suite
//!
//! Implement [`sink::Sink`] and run it against the built-in scenarios:
//!
//! ```no_run
//! use conformance::runner::{run_suite, RunOptions, Subject};
//! use conformance::sink::{BoxFuture, Record, Sink, SinkEnv, SinkOutcome};
//!
//! struct MySink;
//!
//! impl Sink for MySink {
//!     fn name(&self) -> String {
//!         "my-sink".into()
//!     }
//!
//!     fn run<'a>(&'a self, env: &'a SinkEnv, records: Vec<Record>) -> BoxFuture<'a, SinkOutcome> {
//!         Box::pin(async move {
//!             // POST batches of `env.batch_size` records to format!("{}/ingest", env.url) with
//!             // `Authorization: Tecton-key {env.api_key}`, retrying up to `env.max_retries`.
//!             let _ = (env, records);
//!             SinkOutcome { exit_code: Some(0), ..SinkOutcome::default() }
//!         })
//!     }
//! }
//!
//! # async fn demo() {
//! let scenarios = conformance::scenario::builtin();
//! let run = run_suite(&scenarios, 1..2, &Subject::Sink(&MySink), &RunOptions::default(), |_| {}).await;
//! let report = conformance::report::suite_report(&run, false);
//! for check in report.check_summary() {
//!     eprintln!(
//!         "{} {} in {} run(s), e.g. {}: {}",
//!         check.verdict.label(),
//!         check.id,
//!         check.scenarios.len(),
//!         check.example_scenario,
//!         check.example_explanation
//!     );
//! }
//! assert_eq!(report.exit_code(), 0, "{}", report.summary());
//! # }
//! ```

pub mod answer;
pub mod chaos;
pub mod checks;
pub mod report;
pub mod runner;
pub mod scenario;
pub mod sink;
