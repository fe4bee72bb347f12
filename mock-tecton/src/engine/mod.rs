//! The feature engine: aggregation functions, tiles and window evaluation.

pub mod function;

pub use function::AggregateFunction;
