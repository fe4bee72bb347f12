//! A strict JSON reader for request bodies.
//!
//! `serde_json::Value` silently keeps the last of two equal keys; a request with
//! `{"dry_run": false, "dry_run": true}` is ambiguous, so the mock refuses it. Nesting depth is
//! bounded by serde_json's recursion limit, so hostile input gets an error instead of a stack
//! overflow.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// Parses `bytes` as one JSON value, refusing duplicate object keys and invalid UTF-8.
pub(crate) fn parse_strict(bytes: &[u8]) -> Result<Value, String> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err("the request body is empty; expected a JSON object".into());
    }
    let text = std::str::from_utf8(bytes).map_err(|e| {
        format!(
            "the request body is not valid UTF-8 (invalid byte at offset {})",
            e.valid_up_to()
        )
    })?;
    let mut de = serde_json::Deserializer::from_str(text);
    let value = Strict::deserialize(&mut de).map_err(describe)?;
    de.end().map_err(describe)?;
    Ok(value.0)
}

fn describe(e: serde_json::Error) -> String {
    let what = e.to_string();
    // serde_json reports its recursion limit this way; say what it means for a request.
    if what.starts_with("recursion limit exceeded") {
        format!(
            "JSON nested too deeply at line {} column {}",
            e.line(),
            e.column()
        )
    } else {
        format!("invalid JSON: {what}")
    }
}

struct Strict(Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        serde_json::Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("number out of range"))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(Strict(v)) = seq.next_element()? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if out.contains_key(&key) {
                let shown: String = key.chars().take(64).collect();
                return Err(de::Error::custom(format_args!("duplicate key `{shown}`")));
            }
            let Strict(v) = map.next_value()?;
            out.insert(key, v);
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_duplicates_at_any_depth() {
        assert!(parse_strict(br#"{"a":1,"a":2}"#)
            .unwrap_err()
            .contains("duplicate key `a`"));
        assert!(parse_strict(br#"{"x":[{"b":1,"b":1}]}"#).is_err());
        assert!(parse_strict(br#"{"a":{"a":1}}"#).is_ok());
    }

    /// serde_json's fast float parser can land one ULP off; a mock that alters pushed values
    /// would report skew that the sink did not cause.
    #[test]
    fn regression_floats_parse_exactly_not_one_ulp_off() {
        let x = -932_399.532_089_643_1_f64;
        let text = serde_json::to_string(&x).unwrap();
        assert_eq!(parse_strict(text.as_bytes()).unwrap().as_f64(), Some(x));
    }

    #[test]
    fn hostile_bodies_get_errors_not_panics() {
        let deep = "[".repeat(100_000);
        assert!(parse_strict(deep.as_bytes())
            .unwrap_err()
            .contains("nested too deeply"));
        assert!(parse_strict(b"").unwrap_err().contains("empty"));
        assert!(parse_strict(b"\xff\xfe").unwrap_err().contains("UTF-8"));
        assert!(parse_strict(b"1e999").is_err());
        assert!(parse_strict(b"{} {}").unwrap_err().contains("trailing"));
        assert_eq!(
            parse_strict(b"123456789012345678901234567890").map(|v| v.is_f64()),
            Ok(true)
        );
    }
}
