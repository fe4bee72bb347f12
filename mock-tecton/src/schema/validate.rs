//! Checking one ingested JSON record against a source schema.
//!
//! The rules for JSON encodings that Tecton leaves unstated (whether `"1"` is an Int64, whether
//! `"NaN"` is a Float64) are decided in [`crate::decisions`]; this module applies them.

use serde_json::{Map, Value as Json};

use super::{parse_timestamp, DataType, Value};
use crate::decisions;

/// One field of a source schema.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    /// The field's name as it appears in records.
    pub name: String,
    /// Its declared type.
    pub data_type: DataType,
    /// Whether `null` is accepted. Join keys and the event timestamp are never nullable.
    pub nullable: bool,
}

/// The ordered fields of a push or stream source.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Schema {
    /// Fields in declaration order; records are stored in this order.
    pub fields: Vec<Field>,
}

impl Schema {
    /// The position of a field by name.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.fields.iter().position(|f| f.name == name)
    }
}

/// A record that does not match its schema: which field, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// The field (dotted for nested struct fields, `[i]` for array elements).
    pub field: String,
    /// What is wrong, in words a sink author can act on.
    pub message: String,
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "field `{}`: {}", self.field, self.message)
    }
}

/// Validates a record against `schema`, returning its values in schema order or every problem
/// found (missing, extra and mistyped fields are all reported, not only the first).
pub fn validate_record(
    schema: &Schema,
    record: &Map<String, Json>,
) -> Result<Vec<Value>, Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut values = Vec::with_capacity(schema.fields.len());
    for field in &schema.fields {
        match record.get(&field.name) {
            None => errors.push(FieldError {
                field: field.name.clone(),
                message: format!(
                    "missing; the source schema requires it ({})",
                    field.data_type
                ),
            }),
            Some(Json::Null) if !field.nullable => errors.push(FieldError {
                field: field.name.clone(),
                message: "is null; join keys and the event timestamp must have a value".into(),
            }),
            Some(json) => match convert(&field.data_type, json) {
                Ok(v) => values.push(v),
                Err(message) => errors.push(FieldError {
                    field: field.name.clone(),
                    message,
                }),
            },
        }
    }
    for key in record.keys() {
        if schema.index_of(key).is_none() {
            errors.push(FieldError {
                field: key.chars().take(128).collect(),
                message: "is not in the source schema".into(),
            });
        }
    }
    if errors.is_empty() {
        Ok(values)
    } else {
        Err(errors)
    }
}

fn convert(ty: &DataType, json: &Json) -> Result<Value, String> {
    let mismatch = || format!("expected {ty}, got {}", describe(json));
    if json.is_null() {
        return Ok(Value::Null);
    }
    Ok(match ty {
        DataType::String => Value::String(json.as_str().ok_or_else(mismatch)?.into()),
        DataType::Bool => Value::Bool(json.as_bool().ok_or_else(mismatch)?),
        DataType::Int64 => Value::Int(decisions::ingest_int(json).ok_or_else(mismatch)?),
        DataType::Int32 => {
            let i = decisions::ingest_int(json).ok_or_else(mismatch)?;
            if i32::try_from(i).is_err() {
                return Err(format!("{i} does not fit in Int32"));
            }
            Value::Int(i)
        }
        DataType::Float64 => Value::Float(decisions::ingest_float(json).ok_or_else(mismatch)?),
        DataType::Float32 => {
            let f = decisions::ingest_float(json).ok_or_else(mismatch)?;
            if f.abs() > f64::from(f32::MAX) {
                return Err(format!("{f} does not fit in Float32"));
            }
            Value::Float(f)
        }
        DataType::Timestamp => {
            let s = json.as_str().ok_or_else(mismatch)?;
            Value::Timestamp(parse_timestamp(s).map_err(|e| e.to_string())?)
        }
        DataType::Array(elem) => {
            let items = json.as_array().ok_or_else(mismatch)?;
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                out.push(convert(elem, item).map_err(|m| format!("element [{i}]: {m}"))?);
            }
            Value::Array(out)
        }
        DataType::Map(val) => {
            let obj = json.as_object().ok_or_else(mismatch)?;
            let mut out = Vec::with_capacity(obj.len());
            for (k, v) in obj {
                out.push((
                    k.clone(),
                    convert(val, v).map_err(|m| format!("key `{k}`: {m}"))?,
                ));
            }
            Value::Map(out)
        }
        DataType::Struct(fields) => {
            let obj = json.as_object().ok_or_else(mismatch)?;
            let mut out = Vec::with_capacity(fields.len());
            for (name, fty) in fields {
                let v = obj
                    .get(name)
                    .ok_or_else(|| format!("struct field `{name}` is missing"))?;
                out.push(convert(fty, v).map_err(|m| format!("struct field `{name}`: {m}"))?);
            }
            if let Some(extra) = obj.keys().find(|k| !fields.iter().any(|(n, _)| n == *k)) {
                return Err(format!("struct field `{extra}` is not in {ty}"));
            }
            Value::Struct(out)
        }
    })
}

/// A short description of a JSON value for error messages, never echoing large input.
fn describe(json: &Json) -> String {
    match json {
        Json::Null => "null".into(),
        Json::Bool(b) => format!("boolean {b}"),
        Json::Number(n) => format!("number {n}"),
        Json::String(s) if s.chars().count() > 32 => {
            format!("string \"{}…\"", s.chars().take(32).collect::<String>())
        }
        Json::String(s) => format!("string {s:?}"),
        Json::Array(_) => "an array".into(),
        Json::Object(_) => "an object".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Schema {
        let f = |name: &str, ty: &str, nullable| Field {
            name: name.into(),
            data_type: ty.parse().unwrap(),
            nullable,
        };
        Schema {
            fields: vec![
                f("user_id", "String", false),
                f("n", "Int32", true),
                f("amt", "Float64", true),
                f("tags", "Array<String>", true),
                f("loc", "Struct<lat: Float64, lon: Float64>", true),
                f("timestamp", "Timestamp", false),
            ],
        }
    }

    fn rec(v: Json) -> Map<String, Json> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn valid_record_yields_values_in_schema_order() {
        let values = validate_record(
            &schema(),
            &rec(
                json!({"timestamp": "2024-01-01T00:00:00Z", "user_id": "u1", "n": 3, "amt": 2,
                        "tags": ["a", null], "loc": {"lat": 1.5, "lon": -2.0}}),
            ),
        )
        .unwrap();
        assert_eq!(values[0], Value::String("u1".into()));
        assert_eq!(values[2], Value::Float(2.0), "integers are valid Float64");
        assert_eq!(
            values[3],
            Value::Array(vec![Value::String("a".into()), Value::Null])
        );
        assert_eq!(
            values[4],
            Value::Struct(vec![Value::Float(1.5), Value::Float(-2.0)])
        );
    }

    #[test]
    fn reports_every_problem_at_once() {
        let errs = validate_record(
            &schema(),
            &rec(
                json!({"user_id": null, "n": 1.5, "amt": "NaN", "tags": [1], "loc": {"lat": 1},
                        "extra": true}),
            ),
        )
        .unwrap_err();
        let fields: Vec<_> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            ["user_id", "n", "amt", "tags", "loc", "timestamp", "extra"]
        );
        assert!(
            errs[2]
                .message
                .contains("expected Float64, got string \"NaN\""),
            "{}",
            errs[2]
        );
        assert!(errs[5].message.contains("missing"));
    }

    #[test]
    fn int32_range_is_enforced() {
        let r = rec(
            json!({"user_id": "u", "n": 3_000_000_000i64, "amt": null, "tags": null,
                          "loc": null, "timestamp": "2024-01-01T00:00:00Z"}),
        );
        let errs = validate_record(&schema(), &r).unwrap_err();
        assert!(errs[0].message.contains("does not fit in Int32"));
    }
}
