//! Tecton's field types and their spelling in the repository file and on the wire.

use std::fmt;
use std::str::FromStr;

/// A Tecton data type, as declared in a source schema or produced by a feature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataType {
    /// `String`
    String,
    /// `Int64`
    Int64,
    /// `Int32`
    Int32,
    /// `Float64`
    Float64,
    /// `Float32`
    Float32,
    /// `Bool`
    Bool,
    /// `Timestamp`
    Timestamp,
    /// `Array<T>`
    Array(Box<DataType>),
    /// `Map<String, V>`: Tecton maps always have string keys.
    Map(Box<DataType>),
    /// `Struct<name: T, …>`
    Struct(Vec<(String, DataType)>),
}

/// Why a type spelling was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown type `{input}`: {reason} (types are String, Int64, Int32, Float64, Float32, Bool, Timestamp, Array<T>, Map<String, T>, Struct<name: T, ...>)")]
pub struct TypeError {
    input: String,
    reason: String,
}

impl DataType {
    /// True for the numeric types.
    pub fn is_numeric(&self) -> bool {
        matches!(
            self,
            DataType::Int64 | DataType::Int32 | DataType::Float64 | DataType::Float32
        )
    }

    /// The `dataType` object of Tecton's feature server (`{"type": "array", "elementType": …}`).
    pub fn to_serving_json(&self) -> serde_json::Value {
        use serde_json::json;
        match self {
            DataType::String => json!({"type": "string"}),
            // The serving API has no int32; Tecton widens it.
            DataType::Int64 | DataType::Int32 => json!({"type": "int64"}),
            DataType::Float64 => json!({"type": "float64"}),
            DataType::Float32 => json!({"type": "float32"}),
            DataType::Bool => json!({"type": "boolean"}),
            DataType::Timestamp => json!({"type": "timestamp"}),
            DataType::Array(e) => json!({"type": "array", "elementType": e.to_serving_json()}),
            DataType::Map(v) => json!({
                "type": "map",
                "keyType": {"type": "string"},
                "valueType": v.to_serving_json(),
            }),
            DataType::Struct(fields) => json!({
                "type": "struct",
                "fields": fields
                    .iter()
                    .map(|(n, t)| json!({"name": n, "dataType": t.to_serving_json()}))
                    .collect::<Vec<_>>(),
            }),
        }
    }
}

impl fmt::Display for DataType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DataType::String => f.write_str("String"),
            DataType::Int64 => f.write_str("Int64"),
            DataType::Int32 => f.write_str("Int32"),
            DataType::Float64 => f.write_str("Float64"),
            DataType::Float32 => f.write_str("Float32"),
            DataType::Bool => f.write_str("Bool"),
            DataType::Timestamp => f.write_str("Timestamp"),
            DataType::Array(e) => write!(f, "Array<{e}>"),
            DataType::Map(v) => write!(f, "Map<String, {v}>"),
            DataType::Struct(fields) => {
                f.write_str("Struct<")?;
                for (i, (n, t)) in fields.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{n}: {t}")?;
                }
                f.write_str(">")
            }
        }
    }
}

impl FromStr for DataType {
    type Err = TypeError;

    fn from_str(input: &str) -> Result<Self, TypeError> {
        let mut p = Parser { s: input, i: 0 };
        let t = p.ty().map_err(|reason| TypeError {
            input: input.to_owned(),
            reason,
        })?;
        p.ws();
        if p.i != input.len() {
            return Err(TypeError {
                input: input.to_owned(),
                reason: format!("unexpected `{}`", &input[p.i..]),
            });
        }
        Ok(t)
    }
}

struct Parser<'a> {
    s: &'a str,
    i: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.s[self.i..].starts_with(char::is_whitespace) {
            self.i += 1;
        }
    }

    fn ident(&mut self) -> &str {
        self.ws();
        let start = self.i;
        while self.s[self.i..].starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_') {
            self.i += 1;
        }
        &self.s[start..self.i]
    }

    fn eat(&mut self, c: char) -> Result<(), String> {
        self.ws();
        if self.s[self.i..].starts_with(c) {
            self.i += 1;
            Ok(())
        } else {
            Err(format!("expected `{c}` at position {}", self.i))
        }
    }

    fn ty(&mut self) -> Result<DataType, String> {
        let name = self.ident().to_owned();
        Ok(match name.as_str() {
            "String" => DataType::String,
            "Int64" => DataType::Int64,
            "Int32" => DataType::Int32,
            "Float64" => DataType::Float64,
            "Float32" => DataType::Float32,
            "Bool" => DataType::Bool,
            "Timestamp" => DataType::Timestamp,
            "Array" => {
                self.eat('<')?;
                let e = self.ty()?;
                self.eat('>')?;
                DataType::Array(Box::new(e))
            }
            "Map" => {
                self.eat('<')?;
                if self.ty()? != DataType::String {
                    return Err("map keys must be String".into());
                }
                self.eat(',')?;
                let v = self.ty()?;
                self.eat('>')?;
                DataType::Map(Box::new(v))
            }
            "Struct" => {
                self.eat('<')?;
                let mut fields = Vec::new();
                loop {
                    let n = self.ident().to_owned();
                    if n.is_empty() {
                        return Err("struct fields are written `name: Type`".into());
                    }
                    if fields.iter().any(|(f, _)| *f == n) {
                        return Err(format!("struct field `{n}` appears twice"));
                    }
                    self.eat(':')?;
                    fields.push((n, self.ty()?));
                    self.ws();
                    if self.s[self.i..].starts_with(',') {
                        self.i += 1;
                    } else {
                        break;
                    }
                }
                self.eat('>')?;
                DataType::Struct(fields)
            }
            "" => return Err("expected a type name".into()),
            other => return Err(format!("`{other}` is not a Tecton type")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_types_round_trip() {
        for s in [
            "String",
            "Array<Int64>",
            "Map<String, Array<Float32>>",
            "Struct<a: String, b: Array<Bool>, c: Map<String, Timestamp>>",
        ] {
            let t: DataType = s.parse().unwrap();
            assert_eq!(t.to_string(), s);
        }
    }

    #[test]
    fn refuses_bad_spellings() {
        for s in [
            "string",
            "Array<>",
            "Map<Int64, String>",
            "Struct<a: String, a: Int64>",
            "Array<String",
        ] {
            assert!(s.parse::<DataType>().is_err(), "{s}");
        }
    }
}
