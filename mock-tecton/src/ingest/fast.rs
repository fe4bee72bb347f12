//! The fast path of `POST /ingest`: a valid request parsed straight from its bytes into typed
//! values against each push source's schema, with no `serde_json::Value` tree or maps.
//!
//! It takes only what it can prove valid exactly as the full path would: the envelope's three
//! fields (each once), push sources of the repository, records whose every field is present
//! once, of a scalar type (String, Int64, Int32, Float64, Float32, Bool, Timestamp) and of
//! the right JSON kind, and every check of [`super::ingest`] passing. Anything else (a
//! mistake, a duplicate key, a nested type, an unknown source, a refused record) makes it step
//! aside *before writing anything*, and the full path answers, so every error body stays the
//! one the full path gives. The values it produces are those of [`crate::schema::validate_record`]
//! for the same bytes: the same JSON parser feeds both, and numbers convert by the same rules
//! ([`crate::decisions::ingest_int`], [`crate::decisions::ingest_float`]).

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::{admit, commit, ttl_errors, Checked, Dialect, IngestContext, IngestResponse};
use crate::repo::ServiceAccount;
use crate::schema::{parse_timestamp, DataType, Schema, Value};

/// Handles `body` if it is a valid request the fast path takes; `None` means "use the full
/// path" (nothing was written).
pub(crate) fn try_ingest(
    ctx: &IngestContext<'_>,
    account: &ServiceAccount,
    dialect: Dialect,
    body: &[u8],
) -> Option<IngestResponse> {
    if ctx.drift.is_some() {
        return None;
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let request = EnvelopeSeed { ctx, dialect }.deserialize(&mut de).ok()?;
    de.end().ok()?;
    let names: Vec<(&str, usize)> = request
        .records
        .iter()
        .map(|(name, _, records)| (name.as_str(), records.len()))
        .collect();
    let (ws, sources) = admit(ctx, account, &request.workspace, request.dry_run, &names).ok()?;
    let mut checked = Vec::with_capacity(names.iter().map(|n| n.1).sum());
    let mut errors = Vec::new();
    for (name, source, records) in request.records {
        let ts_col = ctx.plan.timestamp_index(source);
        for (i, values) in records.into_iter().enumerate() {
            let Some(Value::Timestamp(ts)) = values.get(ts_col) else {
                return None;
            };
            let ts = *ts;
            ttl_errors(ctx, &name, source, i, ts, &mut errors);
            if !errors.is_empty() {
                return None;
            }
            checked.push(Checked { source, values, ts });
        }
    }
    Some(commit(ctx, ws, &sources, request.dry_run, checked))
}

/// The fast path steps aside (the message is never shown: the full path gives the error).
fn aside<E: de::Error>() -> E {
    E::custom("aside")
}

struct Request {
    workspace: String,
    dry_run: bool,
    /// Per push source: its name, index, and records' values in schema order.
    records: Vec<(String, usize, Vec<Vec<Value>>)>,
}

struct EnvelopeSeed<'c, 'a> {
    ctx: &'c IngestContext<'a>,
    dialect: Dialect,
}

impl<'de> DeserializeSeed<'de> for EnvelopeSeed<'_, '_> {
    type Value = Request;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Request, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for EnvelopeSeed<'_, '_> {
    type Value = Request;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an ingest request")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Request, A::Error> {
        let [ws_key, dry_key, rec_key] = self.dialect.names();
        let (mut workspace, mut dry_run, mut records) = (None, None, None);
        while let Some(key) = map.next_key::<Key<'de>>()? {
            let key = key.0;
            if key == ws_key && workspace.is_none() {
                let ws: String = map.next_value()?;
                if ws.is_empty() {
                    return Err(aside());
                }
                workspace = Some(ws);
            } else if key == dry_key && dry_run.is_none() {
                dry_run = Some(map.next_value::<bool>()?);
            } else if key == rec_key && records.is_none() {
                records = Some(map.next_value_seed(SourcesSeed {
                    ctx: self.ctx,
                    dialect: self.dialect,
                })?);
            } else {
                return Err(aside());
            }
        }
        match (workspace, dry_run, records) {
            (Some(workspace), Some(dry_run), Some(records)) => Ok(Request {
                workspace,
                dry_run,
                records,
            }),
            _ => Err(aside()),
        }
    }
}

/// An object key, borrowed from the body when it has no escapes.
struct Key<'de>(std::borrow::Cow<'de, str>);

impl<'de> de::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(std::borrow::Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(std::borrow::Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

struct SourcesSeed<'c, 'a> {
    ctx: &'c IngestContext<'a>,
    dialect: Dialect,
}

impl<'de> DeserializeSeed<'de> for SourcesSeed<'_, '_> {
    type Value = Vec<(String, usize, Vec<Vec<Value>>)>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for SourcesSeed<'_, '_> {
    type Value = Vec<(String, usize, Vec<Vec<Value>>)>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("records by push source")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out: Self::Value = Vec::new();
        while let Some(Key(name)) = map.next_key::<Key<'de>>()? {
            let source = self.ctx.plan.source_index(&name).ok_or_else(aside)?;
            if out.iter().any(|(n, _, _)| *n == name) {
                return Err(aside());
            }
            let schema = &self.ctx.repo.push_sources[source].schema;
            let records = map.next_value_seed(RecordsSeed {
                schema,
                dialect: self.dialect,
                limit: self.ctx.records_per_source,
            })?;
            out.push((name.into_owned(), source, records));
        }
        if out.is_empty() {
            return Err(aside());
        }
        Ok(out)
    }
}

struct RecordsSeed<'s> {
    schema: &'s Schema,
    dialect: Dialect,
    limit: usize,
}

impl<'de> DeserializeSeed<'de> for RecordsSeed<'_> {
    type Value = Vec<Vec<Value>>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for RecordsSeed<'_> {
    type Value = Vec<Vec<Value>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of records")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(self.limit));
        while let Some(values) = seq.next_element_seed(ItemSeed {
            schema: self.schema,
            dialect: self.dialect,
        })? {
            // Past the limit the full path answers with its error.
            if out.len() == self.limit {
                return Err(aside());
            }
            out.push(values);
        }
        if out.is_empty() {
            return Err(aside());
        }
        Ok(out)
    }
}

/// One element of a source's array: `{"record": {...}}`, or for v2 also the bare record.
struct ItemSeed<'s> {
    schema: &'s Schema,
    dialect: Dialect,
}

impl<'de> DeserializeSeed<'de> for ItemSeed<'_> {
    type Value = Vec<Value>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Vec<Value>, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ItemSeed<'_> {
    type Value = Vec<Value>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a record")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Vec<Value>, A::Error> {
        let Some(Key(first)) = map.next_key::<Key<'de>>()? else {
            return Err(aside());
        };
        if first == "record" {
            let values = map.next_value_seed(RecordSeed(self.schema))?;
            // `{"record": {...}, ...}` is a bare v2 record with a field named "record": the
            // full path decides.
            if map.next_key::<IgnoredAny>()?.is_some() {
                return Err(aside());
            }
            Ok(values)
        } else if self.dialect == Dialect::V2 {
            read_fields(self.schema, Some(first), &mut map)
        } else {
            Err(aside())
        }
    }
}

/// A record object, field by field against the schema.
struct RecordSeed<'s>(&'s Schema);

impl<'de> DeserializeSeed<'de> for RecordSeed<'_> {
    type Value = Vec<Value>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Vec<Value>, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RecordSeed<'_> {
    type Value = Vec<Value>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a record object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Vec<Value>, A::Error> {
        read_fields(self.0, None, &mut map)
    }
}

/// Reads a record's fields (the first key possibly read already): every schema field once,
/// no other.
fn read_fields<'de, A: MapAccess<'de>>(
    schema: &Schema,
    first: Option<std::borrow::Cow<'de, str>>,
    map: &mut A,
) -> Result<Vec<Value>, A::Error> {
    let fields = &schema.fields;
    let mut slots: Vec<Option<Value>> = vec![None; fields.len()];
    let mut key = first;
    loop {
        let name = match key.take() {
            Some(k) => k,
            None => match map.next_key::<Key<'de>>()? {
                Some(Key(k)) => k,
                None => break,
            },
        };
        let i = fields
            .iter()
            .position(|f| f.name == name)
            .ok_or_else(aside)?;
        if slots[i].is_some() {
            return Err(aside());
        }
        let field = &fields[i];
        slots[i] = Some(map.next_value_seed(FieldSeed {
            ty: &field.data_type,
            nullable: field.nullable,
        })?);
    }
    slots.into_iter().map(|v| v.ok_or_else(aside)).collect()
}

/// One field value of a scalar type.
struct FieldSeed<'t> {
    ty: &'t DataType,
    nullable: bool,
}

impl<'de> DeserializeSeed<'de> for FieldSeed<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for FieldSeed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a scalar field")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        if self.nullable {
            Ok(Value::Null)
        } else {
            Err(aside())
        }
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        match self.ty {
            DataType::Bool => Ok(Value::Bool(v)),
            _ => Err(aside()),
        }
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        match self.ty {
            DataType::Int64 => Ok(Value::Int(v)),
            DataType::Int32 if i32::try_from(v).is_ok() => Ok(Value::Int(v)),
            // As `serde_json::Number::as_f64` converts an integer.
            DataType::Float64 => Ok(Value::Float(v as f64)),
            DataType::Float32 => float32(v as f64),
            _ => Err(aside()),
        }
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        match (self.ty, i64::try_from(v)) {
            (DataType::Int64 | DataType::Int32, Ok(i)) => self.visit_i64(i),
            (DataType::Float64, _) => Ok(Value::Float(v as f64)),
            (DataType::Float32, _) => float32(v as f64),
            _ => Err(aside()),
        }
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        // The strict reader refuses non-finite numbers.
        if !v.is_finite() {
            return Err(aside());
        }
        match self.ty {
            DataType::Float64 => Ok(Value::Float(v)),
            DataType::Float32 => float32(v),
            _ => Err(aside()),
        }
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        match self.ty {
            DataType::String => Ok(Value::String(v.into())),
            DataType::Timestamp => parse_timestamp(v)
                .map(Value::Timestamp)
                .map_err(|_| aside()),
            _ => Err(aside()),
        }
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        match self.ty {
            DataType::String => Ok(Value::String(v.into())),
            _ => self.visit_str(&v),
        }
    }
}

fn float32<E: de::Error>(f: f64) -> Result<Value, E> {
    if f.abs() > f64::from(f32::MAX) {
        Err(aside())
    } else {
        Ok(Value::Float(f))
    }
}
