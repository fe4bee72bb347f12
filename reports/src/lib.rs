//! Rendering of the harness's results. This crate knows nothing of the mock or the sinks: it
//! renders the plain data types it defines, which the other crates fill in.
//!
//! - [`conformance`]: a conformance suite's results (suite → scenarios → checks) and their
//!   renderers: Markdown for people, JSON for machines, JUnit XML for CI systems.
//! - [`load`]: load runs and sweeps (pattern, offered and achieved rate, latency, freshness) and
//!   their reports: a self-contained HTML page with SVG plots, Markdown, JSON with a published
//!   schema; thresholds, comparison with a stored run, a cost model and the pattern
//!   recommendation.

pub mod conformance;
pub mod load;
