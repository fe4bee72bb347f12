//! A local server that answers Tecton's Stream Ingest API the way Tecton does, for testing
//! anything that writes to Tecton.
//!
//! Start it in-process on an ephemeral loopback port, point the code under test at
//! [`MockTecton::url`], then read what happened from the journal and the stores:
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use mock_tecton::{Config, MockTecton};
//!
//! let mock = MockTecton::start(Config::default()).await?; // the embedded fraud demo
//! // ... run the sink against format!("{}/ingest", mock.url()) ...
//! for entry in mock.journal() {
//!     println!("{} {} -> {}", entry.method, entry.path, entry.status);
//! }
//! # Ok(()) }
//! ```
//!
//! Modules are named after Tecton's domain: [`repo`] (feature repository), [`schema`] (types,
//! timestamps, record validation), [`ingest`] (Stream Ingest API), [`store`] (online and
//! offline stores), [`engine`] (aggregations), [`clock`], [`journal`], `admin` (the
//! `/_mock/` API), [`stream`] (topics and the micro-batch engine of the Kafka + Spark pattern),
//! [`batch`] (batch sources, backfill and batch materialization jobs).
//! [`decisions`] holds every choice made where Tecton's behaviour is unknown.

mod admin;
pub mod batch;
pub mod clock;
mod config;
pub mod consistency;
pub mod decisions;
pub mod duration;
pub mod engine;
mod exchange;
pub mod faults;
#[cfg(feature = "fuzzing")]
pub mod fuzz;
pub mod ingest;
pub mod journal;
mod json;
pub mod kafka;
pub mod profile;
mod rejection;
pub mod repo;
pub mod retrieval;
pub mod rng;
pub mod schema;
mod server;
pub mod serving;
pub mod state;
pub mod store;
pub mod stream;
#[cfg(feature = "wiremock")]
pub mod wiremock;

// The types most users name; everything else lives in its domain module.
pub use config::{Config, Retention};
pub use faults::{FaultAction, FaultRule, FaultSet};
pub use journal::Entry;
pub use repo::Repository;
pub use schema::Value;
pub use server::MockTecton;
pub use state::MockState;
