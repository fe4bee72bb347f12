//! The feature engine: aggregation kernel (tiles, partial aggregates, window evaluation).
//!
//! - `function`: the built-in aggregation functions ([`AggregateFunction`]), their spelling,
//!   names and result types;
//! - `partial`: `Partial`, the mergeable state of one function over a set of events;
//! - `hll`: `Hll`, the HyperLogLog behind `approx_count_distinct`;
//! - `tdigest`: `TDigest`, the t-digest behind `approx_percentile`;
//! - `series`: [`Series`], one entity's events in one feature view, tiled, and window
//!   evaluation at a request time under CONTINUOUS or TIME_INTERVAL rules.
pub(crate) mod function;
pub(crate) mod hll;
pub(crate) mod partial;
pub(crate) mod series;
pub(crate) mod tdigest;

pub use function::{AggregateFunction, FunctionError, InputTypeError};
pub(crate) use partial::Partial;
pub(crate) use series::value_heap;
pub use series::{Aggregation, Mode, SameTimestamp, Series, SeriesSpec};
