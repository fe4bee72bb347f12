//! The feature engine: aggregation kernel (tiles, partial aggregates, window evaluation).
//!
//! - [`function`]: the built-in aggregation functions, their spelling, names and result types;
//! - [`partial`]: [`Partial`], the mergeable state of one function over a set of events;
//! - [`hll`]: [`Hll`], the HyperLogLog behind `approx_count_distinct`;
//! - [`tdigest`]: [`TDigest`], the t-digest behind `approx_percentile`;
//! - [`series`]: [`Series`], one entity's events in one feature view, tiled, and window
//!   evaluation at a request time under CONTINUOUS or TIME_INTERVAL rules.
pub mod function;
pub mod hll;
pub mod partial;
pub mod series;
pub mod tdigest;

pub use function::AggregateFunction;
pub use hll::Hll;
pub use partial::Partial;
pub use series::{value_heap, Aggregation, Mode, SameTimestamp, Series, SeriesSpec};
pub use tdigest::TDigest;
