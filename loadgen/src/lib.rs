//! An open-loop load generator for the mock Tecton, and the measurements that choose between
//! ingestion patterns: push through the Stream Ingest API, produce to a stream source's topic
//! (Kafka + Spark micro-batches; the mock's in-memory topic, or a real broker through
//! [`broker`]), or feed the user's own sink command.
//!
//! The schedule comes from the [`plan`] alone; latency is measured from each request's due
//! time (coordinated-omission corrected) beside the uncorrected view; every percentile comes
//! from an HdrHistogram ([`recorder`]). Every random choice is drawn from one seed ([`rng`]).
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use loadgen::{plan::Plan, records::{EventSpec, RecordSource}, rng::Rng, run, target::Target};
//!
//! let plan = Plan::constant(500.0, Duration::from_secs(10))?;
//! let target = Target::Push {
//!     url: "http://127.0.0.1:8080".into(),
//!     api_key: "demo-editor-key".into(),
//!     workspace: "prod".into(),
//!     source: "transactions".into(),
//! };
//! let mut records = RecordSource::generated(EventSpec::default(), 7)?;
//! let done = run::run_http(&run::RunSpec::new(plan), &target, &mut records, &mut Rng::new(7, 0)).await?;
//! println!("{:?}", done.point(reports::load::Pattern::Push, 500.0).latency_ms);
//! # Ok(()) }
//! ```

pub mod broker;
pub mod plan;
pub mod recorder;
pub mod records;
pub mod rng;
pub mod run;
pub mod session;
mod sink;
pub mod target;
