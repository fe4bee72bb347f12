//! One Parquet part file of the offline store: the column layout of a push source's rows, and
//! writing and reading a batch of rows with the low-level column API.
//!
//! Column mapping (every source field is OPTIONAL; the bookkeeping columns are REQUIRED):
//!
//! | Tecton type | Parquet column |
//! |---|---|
//! | `String` | `BYTE_ARRAY` (`STRING`) |
//! | `Int64` / `Int32` | `INT64` / `INT32` |
//! | `Float64` / `Float32` | `DOUBLE` (a `Float32` field keeps the value as ingested, which a 32-bit column would round) |
//! | `Bool` | `BOOLEAN` |
//! | `Timestamp` | `INT64` `TIMESTAMP(NANOS, UTC)` |
//! | `Array` / `Map` / `Struct` | `BYTE_ARRAY` (`STRING`) holding JSON ([`encode_json`]) |
//!
//! plus `_seq` and `_request` (`INT64` unsigned) and `_ingested_at` (`TIMESTAMP(NANOS, UTC)`).

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use parquet::basic::{Compression, IntType, LogicalType, Repetition, TimeUnit, Type as Physical};
use parquet::column::reader::{ColumnReader, ColumnReaderImpl};
use parquet::data_type::{
    BoolType, ByteArray, ByteArrayType, DataType as ParquetType, DoubleType, Int32Type, Int64Type,
};
use parquet::errors::ParquetError;
use parquet::file::properties::{WriterProperties, WriterPropertiesPtr};
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::{Type, TypePtr};
use serde_json::Value as Json;

use super::OfflineRow;
use crate::schema::{format_rfc3339, parse_timestamp, DataType, Schema, Value};

/// Names of the bookkeeping columns after the source fields.
pub(crate) const SEQ_COLUMN: &str = "_seq";
/// The journal sequence number of the request that carried the row.
pub(crate) const REQUEST_COLUMN: &str = "_request";
/// Mock time at ingestion.
pub(crate) const INGESTED_AT_COLUMN: &str = "_ingested_at";

/// The Parquet layout of one push source.
#[derive(Debug)]
pub(super) struct PartLayout {
    fields: Vec<DataType>,
    timestamp_field: usize,
    schema: TypePtr,
    props: WriterPropertiesPtr,
}

impl PartLayout {
    /// The layout of a source schema; `timestamp_field` is the event-time field's position.
    pub(super) fn new(schema: &Schema, timestamp_field: usize) -> Result<Self, ParquetError> {
        let mut columns: Vec<TypePtr> = Vec::with_capacity(schema.fields.len() + 3);
        for f in &schema.fields {
            columns.push(Arc::new(column(
                &f.name,
                &f.data_type,
                Repetition::OPTIONAL,
            )?));
        }
        let unsigned = Some(LogicalType::Integer(IntType {
            bit_width: 64,
            is_signed: false,
        }));
        for name in [SEQ_COLUMN, REQUEST_COLUMN] {
            columns.push(Arc::new(
                Type::primitive_type_builder(name, Physical::INT64)
                    .with_repetition(Repetition::REQUIRED)
                    .with_logical_type(unsigned.clone())
                    .build()?,
            ));
        }
        columns.push(Arc::new(column(
            INGESTED_AT_COLUMN,
            &DataType::Timestamp,
            Repetition::REQUIRED,
        )?));
        let schema_type = Type::group_type_builder("offline_row")
            .with_fields(columns)
            .build()?;
        let props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            // Offline rows carry unique values (ids): a dictionary is built, then abandoned.
            .set_dictionary_enabled(false)
            .set_statistics_enabled(parquet::file::properties::EnabledStatistics::Chunk)
            .set_created_by(format!("tecton-sim {}", env!("CARGO_PKG_VERSION")))
            .build();
        Ok(PartLayout {
            fields: schema.fields.iter().map(|f| f.data_type.clone()).collect(),
            timestamp_field,
            schema: Arc::new(schema_type),
            props: Arc::new(props),
        })
    }

    /// Writes `rows` as one row group to `path` (created or truncated); returns the file size.
    pub(super) fn write(&self, path: &Path, rows: &[&OfflineRow]) -> Result<u64, ParquetError> {
        let file = File::create(path)?;
        let mut writer = SerializedFileWriter::new(file, self.schema.clone(), self.props.clone())?;
        let mut group = writer.next_row_group()?;
        let mut index = 0;
        while let Some(mut col) = group.next_column()? {
            if let Some(ty) = self.fields.get(index) {
                write_field(&mut col, ty, index, rows)?;
            } else {
                let values: Vec<i64> = match index - self.fields.len() {
                    // Unsigned 64-bit columns store the bit pattern.
                    0 => rows.iter().map(|r| r.seq as i64).collect(),
                    1 => rows.iter().map(|r| r.request as i64).collect(),
                    _ => rows.iter().map(|r| r.ingested_at).collect(),
                };
                col.typed::<Int64Type>().write_batch(&values, None, None)?;
            }
            col.close()?;
            index += 1;
        }
        group.close()?;
        // Not synced to the device: the files are complete and readable by every process once
        // renamed into place, and a mock has nothing to recover after a machine crash (its
        // in-memory tail is gone then anyway), while a sync per file would make every flush wait
        // on the device once per event date it holds.
        let file = writer.into_inner()?;
        Ok(file.metadata()?.len())
    }

    /// Reads every row of a part file written with this layout.
    pub(super) fn read(&self, path: &Path) -> Result<Vec<OfflineRow>, ParquetError> {
        let reader = SerializedFileReader::new(File::open(path)?)?;
        let width = self.fields.len() + 3;
        let columns = reader
            .metadata()
            .file_metadata()
            .schema_descr()
            .num_columns();
        if columns != width {
            return Err(ParquetError::General(format!(
                "{} has {columns} columns; the source's layout has {width}",
                path.display()
            )));
        }
        let mut out = Vec::new();
        for g in 0..reader.num_row_groups() {
            let group = reader.get_row_group(g)?;
            let n = usize::try_from(group.metadata().num_rows()).unwrap_or(0);
            let mut rows: Vec<OfflineRow> = (0..n)
                .map(|_| OfflineRow {
                    seq: 0,
                    request: 0,
                    ingested_at: 0,
                    ts: 0,
                    values: Vec::with_capacity(self.fields.len()),
                })
                .collect();
            for (i, ty) in self.fields.iter().enumerate() {
                let values = read_field(group.get_column_reader(i)?, ty, n)?;
                for (row, v) in rows.iter_mut().zip(values) {
                    row.values.push(v);
                }
            }
            for k in 0..3 {
                let (_, values) = read_typed::<Int64Type>(
                    group.get_column_reader(self.fields.len() + k)?,
                    n,
                    false,
                )?;
                for (row, v) in rows.iter_mut().zip(values) {
                    match k {
                        0 => row.seq = v as u64,
                        1 => row.request = v as u64,
                        _ => row.ingested_at = v,
                    }
                }
            }
            for row in &mut rows {
                row.ts = match row.values.get(self.timestamp_field) {
                    Some(Value::Timestamp(ts)) => *ts,
                    _ => {
                        return Err(ParquetError::General(format!(
                            "{}: a row has no event time",
                            path.display()
                        )))
                    }
                };
            }
            out.append(&mut rows);
        }
        Ok(out)
    }
}

fn column(name: &str, ty: &DataType, repetition: Repetition) -> Result<Type, ParquetError> {
    let string = Some(LogicalType::String);
    let (physical, logical) = match ty {
        DataType::String | DataType::Array(_) | DataType::Map(_) | DataType::Struct(_) => {
            (Physical::BYTE_ARRAY, string)
        }
        DataType::Int64 => (Physical::INT64, None),
        DataType::Int32 => (Physical::INT32, None),
        DataType::Float64 | DataType::Float32 => (Physical::DOUBLE, None),
        DataType::Bool => (Physical::BOOLEAN, None),
        DataType::Timestamp => (
            Physical::INT64,
            Some(LogicalType::timestamp(true, TimeUnit::NANOS)),
        ),
    };
    Type::primitive_type_builder(name, physical)
        .with_repetition(repetition)
        .with_logical_type(logical)
        .build()
}

fn mismatch(index: usize, ty: &DataType, v: &Value) -> ParquetError {
    ParquetError::General(format!(
        "field {index} ({ty}) holds a value of another type: {v:?}"
    ))
}

fn write_field(
    col: &mut parquet::file::writer::SerializedColumnWriter<'_>,
    ty: &DataType,
    index: usize,
    rows: &[&OfflineRow],
) -> Result<(), ParquetError> {
    let defs: Vec<i16> = rows
        .iter()
        .map(|r| i16::from(!r.values[index].is_null()))
        .collect();
    let present = rows
        .iter()
        .map(|r| &r.values[index])
        .filter(|v| !v.is_null());
    match ty {
        DataType::String => {
            let values = present
                .map(|v| match v {
                    Value::String(s) => Ok(ByteArray::from(s.as_str())),
                    other => Err(mismatch(index, ty, other)),
                })
                .collect::<Result<Vec<_>, _>>()?;
            col.typed::<ByteArrayType>()
                .write_batch(&values, Some(&defs), None)?;
        }
        DataType::Array(_) | DataType::Map(_) | DataType::Struct(_) => {
            let values: Vec<ByteArray> = present
                .map(|v| ByteArray::from(encode_json(ty, v).to_string().into_bytes()))
                .collect();
            col.typed::<ByteArrayType>()
                .write_batch(&values, Some(&defs), None)?;
        }
        DataType::Int64 | DataType::Timestamp => {
            let values = present
                .map(|v| match v {
                    Value::Int(i) | Value::Timestamp(i) => Ok(*i),
                    other => Err(mismatch(index, ty, other)),
                })
                .collect::<Result<Vec<_>, _>>()?;
            col.typed::<Int64Type>()
                .write_batch(&values, Some(&defs), None)?;
        }
        DataType::Int32 => {
            let values = present
                .map(|v| match v {
                    Value::Int(i) => i32::try_from(*i).map_err(|_| mismatch(index, ty, v)),
                    other => Err(mismatch(index, ty, other)),
                })
                .collect::<Result<Vec<_>, _>>()?;
            col.typed::<Int32Type>()
                .write_batch(&values, Some(&defs), None)?;
        }
        DataType::Float64 | DataType::Float32 => {
            let values = present
                .map(|v| match v {
                    Value::Float(f) => Ok(*f),
                    other => Err(mismatch(index, ty, other)),
                })
                .collect::<Result<Vec<_>, _>>()?;
            col.typed::<DoubleType>()
                .write_batch(&values, Some(&defs), None)?;
        }
        DataType::Bool => {
            let values = present
                .map(|v| match v {
                    Value::Bool(b) => Ok(*b),
                    other => Err(mismatch(index, ty, other)),
                })
                .collect::<Result<Vec<_>, _>>()?;
            col.typed::<BoolType>()
                .write_batch(&values, Some(&defs), None)?;
        }
    }
    Ok(())
}

/// Reads `n` values of one column: definition levels (when `optional`) and the present values.
fn read_typed<T: ParquetType>(
    reader: ColumnReader,
    n: usize,
    optional: bool,
) -> Result<(Vec<i16>, Vec<T::T>), ParquetError>
where
    ColumnReaderImpl<T>: ReadInto<T>,
{
    let mut reader: ColumnReaderImpl<T> = T::get_column_reader(reader)
        .ok_or_else(|| ParquetError::General("a column has an unexpected physical type".into()))?;
    reader.read_into(n, optional)
}

/// `read_records` with the buffer types of the typed reader spelled out.
trait ReadInto<T: ParquetType> {
    fn read_into(
        &mut self,
        n: usize,
        optional: bool,
    ) -> Result<(Vec<i16>, Vec<T::T>), ParquetError>;
}

impl<T: ParquetType> ReadInto<T> for ColumnReaderImpl<T> {
    fn read_into(
        &mut self,
        n: usize,
        optional: bool,
    ) -> Result<(Vec<i16>, Vec<T::T>), ParquetError> {
        let mut defs = Vec::with_capacity(if optional { n } else { 0 });
        let mut values = Vec::with_capacity(n);
        let (records, _, _) =
            self.read_records(n, optional.then_some(&mut defs), None, &mut values)?;
        if records != n {
            return Err(ParquetError::General(format!(
                "a column holds {records} rows; its row group says {n}"
            )));
        }
        Ok((defs, values))
    }
}

/// Interleaves nulls (definition level 0) with the present values.
fn with_nulls<V>(
    defs: Vec<i16>,
    values: Vec<V>,
    mut to_value: impl FnMut(V) -> Result<Value, ParquetError>,
) -> Result<Vec<Value>, ParquetError> {
    let mut values = values.into_iter();
    defs.into_iter()
        .map(|d| match d {
            0 => Ok(Value::Null),
            _ => values
                .next()
                .ok_or_else(|| ParquetError::General("fewer values than levels".into()))
                .and_then(&mut to_value),
        })
        .collect()
}

fn read_field(reader: ColumnReader, ty: &DataType, n: usize) -> Result<Vec<Value>, ParquetError> {
    match ty {
        DataType::String => {
            let (defs, values) = read_typed::<ByteArrayType>(reader, n, true)?;
            with_nulls(defs, values, |b| Ok(Value::String(b.as_utf8()?.into())))
        }
        DataType::Array(_) | DataType::Map(_) | DataType::Struct(_) => {
            let (defs, values) = read_typed::<ByteArrayType>(reader, n, true)?;
            with_nulls(defs, values, |b| {
                let json: Json = serde_json::from_slice(b.data())
                    .map_err(|e| ParquetError::General(format!("a {ty} value: {e}")))?;
                decode_json(ty, &json).map_err(ParquetError::General)
            })
        }
        DataType::Int64 => {
            let (defs, values) = read_typed::<Int64Type>(reader, n, true)?;
            with_nulls(defs, values, |i| Ok(Value::Int(i)))
        }
        DataType::Timestamp => {
            let (defs, values) = read_typed::<Int64Type>(reader, n, true)?;
            with_nulls(defs, values, |i| Ok(Value::Timestamp(i)))
        }
        DataType::Int32 => {
            let (defs, values) = read_typed::<Int32Type>(reader, n, true)?;
            with_nulls(defs, values, |i| Ok(Value::Int(i64::from(i))))
        }
        DataType::Float64 | DataType::Float32 => {
            let (defs, values) = read_typed::<DoubleType>(reader, n, true)?;
            with_nulls(defs, values, |f| Ok(Value::Float(f)))
        }
        DataType::Bool => {
            let (defs, values) = read_typed::<BoolType>(reader, n, true)?;
            with_nulls(defs, values, |b| Ok(Value::Bool(b)))
        }
    }
}

/// A nested value as the JSON stored in its column: arrays as arrays, maps and structs as
/// objects (struct fields by name, in declared order), timestamps as RFC 3339 strings with
/// every significant digit, non-finite floats as `"NaN"`, `"Infinity"`, `"-Infinity"`.
pub fn encode_json(ty: &DataType, v: &Value) -> Json {
    match (ty, v) {
        (DataType::Array(elem), Value::Array(items)) => {
            Json::Array(items.iter().map(|i| encode_json(elem, i)).collect())
        }
        (DataType::Map(val), Value::Map(entries)) => Json::Object(
            entries
                .iter()
                .map(|(k, v)| (k.clone(), encode_json(val, v)))
                .collect(),
        ),
        (DataType::Struct(fields), Value::Struct(values)) => Json::Object(
            fields
                .iter()
                .zip(values)
                .map(|((n, t), v)| (n.clone(), encode_json(t, v)))
                .collect(),
        ),
        (_, Value::Timestamp(ns)) => Json::String(format_rfc3339(*ns)),
        (_, other) => other.to_plain_json(),
    }
}

/// The inverse of [`encode_json`] for a value of type `ty`.
pub(crate) fn decode_json(ty: &DataType, json: &Json) -> Result<Value, String> {
    let bad = || format!("stored JSON {json} is not a {ty}");
    if json.is_null() {
        return Ok(Value::Null);
    }
    Ok(match ty {
        DataType::String => Value::String(json.as_str().ok_or_else(bad)?.into()),
        DataType::Bool => Value::Bool(json.as_bool().ok_or_else(bad)?),
        DataType::Int64 | DataType::Int32 => Value::Int(json.as_i64().ok_or_else(bad)?),
        DataType::Float64 | DataType::Float32 => Value::Float(match json.as_str() {
            Some("NaN") => f64::NAN,
            Some("Infinity") => f64::INFINITY,
            Some("-Infinity") => f64::NEG_INFINITY,
            _ => json.as_f64().ok_or_else(bad)?,
        }),
        DataType::Timestamp => Value::Timestamp(
            parse_timestamp(json.as_str().ok_or_else(bad)?).map_err(|e| e.to_string())?,
        ),
        DataType::Array(elem) => Value::Array(
            json.as_array()
                .ok_or_else(bad)?
                .iter()
                .map(|i| decode_json(elem, i))
                .collect::<Result<_, _>>()?,
        ),
        DataType::Map(val) => Value::Map(
            json.as_object()
                .ok_or_else(bad)?
                .iter()
                .map(|(k, v)| Ok((k.clone(), decode_json(val, v)?)))
                .collect::<Result<_, String>>()?,
        ),
        DataType::Struct(fields) => {
            let obj = json.as_object().ok_or_else(bad)?;
            Value::Struct(
                fields
                    .iter()
                    .map(|(n, t)| decode_json(t, obj.get(n).unwrap_or(&Json::Null)))
                    .collect::<Result<_, _>>()?,
            )
        }
    })
}
