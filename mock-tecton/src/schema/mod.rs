//! Tecton's data types, typed values, and validation of ingested JSON against a source schema.
//!
//! A push source declares its fields with Tecton types (`String`, `Int64`, `Array<String>`, …).
//! Every record that arrives through the Stream Ingest API is checked here, field by field, and
//! turned into [`Value`]s that the stores and the feature engine share.

mod timestamp;
mod types;
mod validate;

pub use smol_str::SmolStr;
pub use timestamp::{format_rfc3339, parse_timestamp, TimestampError};
pub use types::{DataType, TypeError};
pub use validate::{validate_record, Field, FieldError, Schema};

/// A typed value of a Tecton field or feature.
///
/// `Int32` values are widened to [`Value::Int`] and `Float32` to [`Value::Float`]; the declared
/// [`DataType`] keeps the original width. Timestamps are nanoseconds since the Unix epoch, UTC.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// An explicit JSON `null`.
    Null,
    /// A `Bool`.
    Bool(bool),
    /// An `Int64` or `Int32`.
    Int(i64),
    /// A `Float64` or `Float32`.
    Float(f64),
    /// A `String`: inline up to 23 bytes, shared (not copied) by clones when longer.
    String(SmolStr),
    /// A `Timestamp`, in nanoseconds since the Unix epoch.
    Timestamp(i64),
    /// An `Array`; elements may be null.
    Array(Vec<Value>),
    /// A `Map` with string keys, in the order they arrived.
    Map(Vec<(String, Value)>),
    /// A `Struct`: field values in the order of the declared fields.
    Struct(Vec<Value>),
}

impl Value {
    /// True for [`Value::Null`].
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// The value as JSON the way Tecton's feature server encodes it: int64 as a decimal string,
    /// non-finite floats as `"NaN"`/`"Infinity"`/`"-Infinity"`, timestamps as RFC 3339 strings,
    /// structs as arrays of their field values.
    pub fn to_serving_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Int(i) => J::String(i.to_string()),
            Value::Float(f) => float_json(*f),
            Value::String(s) => J::String(s.to_string()),
            Value::Timestamp(ns) => J::String(format_rfc3339(*ns)),
            Value::Array(items) | Value::Struct(items) => {
                J::Array(items.iter().map(Value::to_serving_json).collect())
            }
            Value::Map(entries) => J::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.clone(), v.to_serving_json()))
                    .collect(),
            ),
        }
    }

    /// The value as plain JSON for dumps and offline output: numbers stay numbers.
    pub fn to_plain_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            Value::Int(i) => J::from(*i),
            Value::Array(items) | Value::Struct(items) => {
                J::Array(items.iter().map(Value::to_plain_json).collect())
            }
            Value::Map(entries) => J::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.clone(), v.to_plain_json()))
                    .collect(),
            ),
            other => other.to_serving_json(),
        }
    }
}

fn float_json(f: f64) -> serde_json::Value {
    if f.is_nan() {
        "NaN".into()
    } else if f == f64::INFINITY {
        "Infinity".into()
    } else if f == f64::NEG_INFINITY {
        "-Infinity".into()
    } else {
        serde_json::Number::from_f64(f)
            .map(serde_json::Value::Number)
            .unwrap_or(serde_json::Value::Null)
    }
}
