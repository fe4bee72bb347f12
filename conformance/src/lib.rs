//! Scenarios and conformance checks for anything that writes to Tecton's Stream Ingest API.
//!
//! A scenario starts a fresh [`mock_tecton::MockTecton`], installs its faults, hands its input
//! records to a [`sink::Sink`] (a command speaking sink protocol v1, a Rust type in-process, or
//! a sink running elsewhere that is attached), then judges the journal, the stores and the
//! sink's exit with checks that report pass, fail or warn with evidence.

pub mod answer;
pub mod checks;
pub mod sink;

pub mod report;
pub mod runner;
pub mod scenario;
