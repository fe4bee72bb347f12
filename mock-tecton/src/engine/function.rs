//! The built-in aggregation functions: how they are spelled, named and typed.
//!
//! Spelling in the repository file follows Tecton's SDK: `sum`, `count`, `last_distinct(3)`,
//! `approx_count_distinct(8)`, `approx_percentile(0.95, 100)`. Names and result types follow
//! docs/semantics.md.

use std::fmt;
use std::str::FromStr;

use crate::schema::DataType;

/// One built-in aggregation function with its parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AggregateFunction {
    /// Non-null values; 0 for an empty window.
    Count,
    /// Sum of non-null values.
    Sum,
    /// Arithmetic mean of non-null values.
    Mean,
    /// Smallest non-null value.
    Min,
    /// Largest non-null value.
    Max,
    /// Newest non-null value.
    Last,
    /// The oldest `n` non-null values, oldest first.
    FirstN(u32),
    /// The newest `n` non-null values, oldest first.
    LastN(u32),
    /// The oldest `n` distinct non-null values, oldest first.
    FirstDistinctN(u32),
    /// The newest `n` distinct non-null values, oldest first.
    LastDistinctN(u32),
    /// Sample variance; null for fewer than two values.
    VarSamp,
    /// Population variance.
    VarPop,
    /// Sample standard deviation.
    StddevSamp,
    /// Population standard deviation.
    StddevPop,
    /// HyperLogLog distinct count with `precision` bits of index (4..=16).
    ApproxCountDistinct {
        /// Index bits; standard error is `1.04 / sqrt(2^precision)`.
        precision: u8,
    },
    /// t-digest quantile.
    ApproxPercentile {
        /// The quantile in `[0, 1]`.
        percentile: f64,
        /// t-digest compression (20..=500).
        precision: u32,
    },
}

/// Why a function spelling was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown aggregation function `{input}`: {reason}")]
pub struct FunctionError {
    input: String,
    reason: String,
}

/// An aggregation function given a column type it does not accept (`sum` over a String).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{function} does not accept a {input} column")]
pub struct InputTypeError {
    function: AggregateFunction,
    input: DataType,
}

impl AggregateFunction {
    /// The function part of a default feature name (`sum`, `last_distinct_3`,
    /// `approx_percentile_p0_95`).
    pub fn name_fragment(&self) -> String {
        use AggregateFunction::{
            ApproxCountDistinct, ApproxPercentile, Count, FirstDistinctN, FirstN, Last,
            LastDistinctN, LastN, Max, Mean, Min, StddevPop, StddevSamp, Sum, VarPop, VarSamp,
        };
        match self {
            Count => "count".into(),
            Sum => "sum".into(),
            Mean => "mean".into(),
            Min => "min".into(),
            Max => "max".into(),
            Last => "last".into(),
            FirstN(n) => format!("first_{n}"),
            LastN(n) => format!("last_{n}"),
            FirstDistinctN(n) => format!("first_distinct_{n}"),
            LastDistinctN(n) => format!("last_distinct_{n}"),
            VarSamp => "var_samp".into(),
            VarPop => "var_pop".into(),
            StddevSamp => "stddev_samp".into(),
            StddevPop => "stddev_pop".into(),
            ApproxCountDistinct { .. } => "approx_count_distinct".into(),
            ApproxPercentile { percentile, .. } => {
                format!(
                    "approx_percentile_p{}",
                    percentile.to_string().replace('.', "_")
                )
            }
        }
    }

    /// The feature's type for an input column of type `input`, or why the input is not accepted.
    pub fn result_type(&self, input: &DataType) -> Result<DataType, InputTypeError> {
        use AggregateFunction::{
            ApproxCountDistinct, ApproxPercentile, Count, FirstDistinctN, FirstN, Last,
            LastDistinctN, LastN, Max, Mean, Min, StddevPop, StddevSamp, Sum, VarPop, VarSamp,
        };
        use DataType as T;
        let numeric = matches!(input, T::Int64 | T::Int32 | T::Float64 | T::Float32);
        let ok = match self {
            Count => true,
            Sum | Mean | VarSamp | VarPop | StddevSamp | StddevPop => {
                matches!(input, T::Int64 | T::Int32 | T::Float64)
            }
            Min | Max => numeric || *input == T::String,
            Last => numeric || matches!(input, T::Bool | T::String | T::Array(_)),
            FirstN(_) | LastN(_) => {
                matches!(
                    input,
                    T::String | T::Int64 | T::Float32 | T::Float64 | T::Bool | T::Array(_)
                )
            }
            FirstDistinctN(_) | LastDistinctN(_) => matches!(input, T::String | T::Int64),
            ApproxCountDistinct { .. } => matches!(input, T::String | T::Int32 | T::Int64),
            ApproxPercentile { .. } => numeric,
        };
        if !ok {
            return Err(InputTypeError {
                function: *self,
                input: input.clone(),
            });
        }
        Ok(match self {
            Count => T::Int64,
            ApproxCountDistinct { .. } => T::Int64,
            Mean | VarSamp | VarPop | StddevSamp | StddevPop | ApproxPercentile { .. } => {
                T::Float64
            }
            Sum | Min | Max | Last => match input {
                T::Int32 => T::Int64,
                other => other.clone(),
            },
            FirstN(_) | LastN(_) | FirstDistinctN(_) | LastDistinctN(_) => {
                T::Array(Box::new(input.clone()))
            }
        })
    }
}

impl fmt::Display for AggregateFunction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use AggregateFunction::{
            ApproxCountDistinct, ApproxPercentile, FirstDistinctN, FirstN, LastDistinctN, LastN,
        };
        match self {
            FirstN(n) => write!(f, "first({n})"),
            LastN(n) => write!(f, "last({n})"),
            FirstDistinctN(n) => write!(f, "first_distinct({n})"),
            LastDistinctN(n) => write!(f, "last_distinct({n})"),
            ApproxCountDistinct { precision } => write!(f, "approx_count_distinct({precision})"),
            ApproxPercentile {
                percentile,
                precision,
            } => write!(f, "approx_percentile({percentile}, {precision})"),
            other => f.write_str(&other.name_fragment()),
        }
    }
}

impl FromStr for AggregateFunction {
    type Err = FunctionError;

    fn from_str(input: &str) -> Result<Self, FunctionError> {
        use AggregateFunction::{
            ApproxCountDistinct, ApproxPercentile, Count, FirstDistinctN, FirstN, Last,
            LastDistinctN, LastN, Max, Mean, Min, StddevPop, StddevSamp, Sum, VarPop, VarSamp,
        };
        let err = |reason: &str| FunctionError {
            input: input.to_owned(),
            reason: reason.to_owned(),
        };
        let s = input.trim();
        let (name, args) = match s.split_once('(') {
            Some((name, rest)) => {
                let inner = rest
                    .strip_suffix(')')
                    .ok_or_else(|| err("missing closing parenthesis"))?;
                let args: Vec<&str> = inner
                    .split(',')
                    .map(str::trim)
                    .filter(|a| !a.is_empty())
                    .collect();
                (name.trim(), args)
            }
            None => (s, Vec::new()),
        };
        let n = |args: &[&str]| -> Result<u32, FunctionError> {
            match args {
                [one] => match one.parse::<u32>() {
                    Ok(n) if (1..=1000).contains(&n) => Ok(n),
                    _ => Err(err("n must be a whole number from 1 to 1000")),
                },
                _ => Err(err("takes exactly one argument n, like last_distinct(3)")),
            }
        };
        let no_args = |f: AggregateFunction| {
            if args.is_empty() {
                Ok(f)
            } else {
                Err(err("takes no arguments"))
            }
        };
        match name {
            "count" => no_args(Count),
            "sum" => no_args(Sum),
            "mean" => no_args(Mean),
            "min" => no_args(Min),
            "max" => no_args(Max),
            "last" if args.is_empty() => Ok(Last),
            "last" => n(&args).map(LastN),
            "first" => n(&args).map(FirstN),
            "first_distinct" => n(&args).map(FirstDistinctN),
            "last_distinct" => n(&args).map(LastDistinctN),
            "var_samp" | "variance" => no_args(VarSamp),
            "var_pop" => no_args(VarPop),
            "stddev_samp" | "stddev" => no_args(StddevSamp),
            "stddev_pop" => no_args(StddevPop),
            "approx_count_distinct" => {
                let precision = match args.as_slice() {
                    [] => 8,
                    [p] => p
                        .parse()
                        .map_err(|_| err("precision must be a whole number"))?,
                    _ => return Err(err("takes at most one argument, the precision")),
                };
                if !(4..=16).contains(&precision) {
                    return Err(err("precision must be from 4 to 16"));
                }
                Ok(ApproxCountDistinct { precision })
            }
            "approx_percentile" => {
                let (p, prec) = match args.as_slice() {
                    [p] => (*p, "100"),
                    [p, prec] => (*p, *prec),
                    _ => return Err(err("takes the percentile and an optional precision")),
                };
                let percentile: f64 = p.parse().map_err(|_| err("percentile must be a number"))?;
                if !(0.0..=1.0).contains(&percentile) {
                    return Err(err("percentile must be from 0 to 1"));
                }
                let precision: u32 = prec
                    .parse()
                    .map_err(|_| err("precision must be a whole number"))?;
                if !(20..=500).contains(&precision) {
                    return Err(err("precision must be from 20 to 500"));
                }
                Ok(ApproxPercentile {
                    percentile,
                    precision,
                })
            }
            _ => Err(err(
                "known functions are count, sum, mean, min, max, last, first(n), last(n), \
                 first_distinct(n), last_distinct(n), var_samp, var_pop, stddev_samp, stddev_pop, \
                 approx_count_distinct(p), approx_percentile(q, precision)",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_parse_and_name_like_tecton() {
        let cases = [
            ("sum", "sum"),
            ("last_distinct(3)", "last_distinct_3"),
            ("last(3)", "last_3"),
            ("stddev", "stddev_samp"),
            ("approx_percentile(0.95, 100)", "approx_percentile_p0_95"),
            ("approx_count_distinct", "approx_count_distinct"),
        ];
        for (spelling, name) in cases {
            let f: AggregateFunction = spelling.parse().unwrap();
            assert_eq!(f.name_fragment(), name, "{spelling}");
            assert_eq!(f.to_string().parse::<AggregateFunction>().unwrap(), f);
        }
    }

    #[test]
    fn bounds_are_enforced() {
        for bad in [
            "last(0)",
            "last(1001)",
            "approx_count_distinct(3)",
            "approx_percentile(1.5)",
            "approx_percentile(0.5, 10)",
            "sum(1)",
            "median",
            "last(3",
        ] {
            assert!(bad.parse::<AggregateFunction>().is_err(), "{bad}");
        }
    }

    #[test]
    fn result_types_follow_the_spec() {
        let f = |s: &str| s.parse::<AggregateFunction>().unwrap();
        assert_eq!(
            f("count").result_type(&DataType::String),
            Ok(DataType::Int64)
        );
        assert_eq!(
            f("mean").result_type(&DataType::Int64),
            Ok(DataType::Float64)
        );
        assert_eq!(f("sum").result_type(&DataType::Int32), Ok(DataType::Int64));
        assert_eq!(
            f("last_distinct(3)").result_type(&DataType::String),
            Ok(DataType::Array(Box::new(DataType::String)))
        );
        assert_eq!(
            f("sum")
                .result_type(&DataType::String)
                .map_err(|e| e.to_string()),
            Err("sum does not accept a String column".to_owned())
        );
    }
}
