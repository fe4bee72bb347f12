//! Reading a batch source file (JSON Lines, CSV or Parquet) through its source's schema.
//!
//! Every row becomes a JSON record and is checked by the same rules as an ingested record
//! ([`crate::schema::validate_record`]): the file's event-time column is read as the source's
//! timestamp field, columns the schema does not name are ignored
//! ([`crate::decisions::BATCH_EXTRA_COLUMNS_IGNORED`]). A row that does not fit is skipped and
//! reported with its line (or Parquet row number); a file that cannot be read at all is an error.

use std::path::Path;

use serde_json::{Map, Value as Json};

use crate::repo::{BatchFormat, BatchSource};
use crate::schema::{format_rfc3339, validate_record, DataType, Schema, Value};

/// A batch file that cannot be read at all, or a request the batch API refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    /// The file cannot be opened or is not in its declared format.
    #[error("batch source `{source_name}`: {path}{}: {message}", line.map(|l| format!(":{l}")).unwrap_or_default())]
    File {
        /// The source.
        source_name: String,
        /// The file.
        path: String,
        /// The 1-based line (CSV, JSON Lines) where reading failed, when known.
        line: Option<usize>,
        /// What is wrong.
        message: String,
    },
    /// No source with a `batch_config` has this name.
    #[error("no source named `{0}` has a batch_config")]
    UnknownSource(String),
    /// No feature view reads a batch source under this name.
    #[error("no feature view named `{0}` reads a source with a batch_config")]
    UnknownView(String),
    /// A bad request to the batch API (a window that is not `start < end`, a bad body).
    #[error("{0}")]
    BadRequest(String),
}

/// A row of a batch file that does not fit the schema.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RowError {
    /// Where: `path:line` (JSON Lines, CSV) or `path:row N` (Parquet, 1-based).
    pub at: String,
    /// Why.
    pub error: String,
}

/// The rows read from a file: `(event time, values in schema order)`, and the rows refused.
#[derive(Debug, Default)]
pub(crate) struct Read {
    /// Valid rows in file order.
    pub rows: Vec<(i64, Vec<Value>)>,
    /// Refused rows, in file order.
    pub errors: Vec<RowError>,
}

/// How one record is checked: the schema, where the event time is, the file's time column.
#[derive(Debug)]
pub(crate) struct Checker<'a> {
    schema: &'a Schema,
    timestamp: usize,
    source_ts: &'a str,
    file_ts: &'a str,
}

impl<'a> Checker<'a> {
    /// A checker for records of a source whose event time is `source_ts`, read from files whose
    /// event-time column is `file_ts`.
    pub(crate) fn new(schema: &'a Schema, source_ts: &'a str, file_ts: &'a str) -> Self {
        Checker {
            schema,
            timestamp: schema.index_of(source_ts).unwrap_or(0),
            source_ts,
            file_ts,
        }
    }

    /// The file's column that carries a schema field.
    fn column<'n>(&'n self, field: &'n str) -> &'n str {
        if field == self.source_ts {
            self.file_ts
        } else {
            field
        }
    }

    /// Checks one record (keyed by the file's column names): its event time and values.
    pub(crate) fn check(&self, mut record: Map<String, Json>) -> Result<(i64, Vec<Value>), String> {
        let mut fields = Map::new();
        for f in &self.schema.fields {
            if let Some(v) = record.remove(self.column(&f.name)) {
                fields.insert(f.name.clone(), v);
            }
        }
        let values = validate_record(self.schema, &fields).map_err(|errors| {
            errors
                .iter()
                .map(|e| {
                    if e.field == self.source_ts && self.file_ts != self.source_ts {
                        format!("column `{}` (event time): {}", self.file_ts, e.message)
                    } else {
                        e.to_string()
                    }
                })
                .collect::<Vec<_>>()
                .join("; ")
        })?;
        match values.get(self.timestamp) {
            Some(Value::Timestamp(ts)) => Ok((*ts, values)),
            _ => Err(format!("column `{}`: no event time", self.file_ts)),
        }
    }
}

/// Reads a batch source's file through `schema` (whose event time is `source_ts`).
pub(crate) fn read_file(
    cfg: &BatchSource,
    schema: &Schema,
    source_ts: &str,
) -> Result<Read, BatchError> {
    let checker = Checker::new(schema, source_ts, &cfg.timestamp_field);
    let path = cfg.path.display().to_string();
    let fail = |line: Option<usize>, message: String| BatchError::File {
        source_name: cfg.source.clone(),
        path: path.clone(),
        line,
        message,
    };
    match cfg.format {
        BatchFormat::Jsonl => {
            let text = std::fs::read_to_string(&cfg.path).map_err(|e| fail(None, e.to_string()))?;
            Ok(read_jsonl(&text, &path, &checker))
        }
        BatchFormat::Csv => read_csv(&cfg.path, &path, schema, &checker, &fail),
        BatchFormat::Parquet => read_parquet(&cfg.path, &path, schema, &checker, &fail),
    }
}

/// JSON Lines: one object per line; blank lines are skipped.
pub(crate) fn read_jsonl(text: &str, path: &str, checker: &Checker<'_>) -> Read {
    let mut out = Read::default();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let record = match serde_json::from_str::<Json>(line) {
            Ok(Json::Object(m)) => Ok(m),
            Ok(_) => Err("expected a JSON object".to_owned()),
            Err(e) => Err(format!("not JSON: {e}")),
        };
        match record.and_then(|r| checker.check(r)) {
            Ok(row) => out.rows.push(row),
            Err(error) => out.errors.push(RowError {
                at: format!("{path}:{}", i + 1),
                error,
            }),
        }
    }
    out
}

fn read_csv(
    file: &Path,
    path: &str,
    schema: &Schema,
    checker: &Checker<'_>,
    fail: &dyn Fn(Option<usize>, String) -> BatchError,
) -> Result<Read, BatchError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_path(file)
        .map_err(|e| fail(None, e.to_string()))?;
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| fail(Some(1), e.to_string()))?
        .iter()
        .map(str::to_owned)
        .collect();
    // Every schema field needs a column: without one, every row would be refused.
    let mut columns = Vec::new();
    for f in &schema.fields {
        let name = checker.column(&f.name);
        match header.iter().position(|h| h == name) {
            Some(c) => columns.push((c, f)),
            None => {
                return Err(fail(
                    Some(1),
                    format!("no column `{name}` in the header ({})", header.join(", ")),
                ))
            }
        }
    }
    let mut out = Read::default();
    for record in reader.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(0, csv::Position::line);
                out.errors.push(RowError {
                    at: format!("{path}:{line}"),
                    error: e.to_string(),
                });
                continue;
            }
        };
        let line = record.position().map_or(0, csv::Position::line);
        let mut map = Map::new();
        let mut error = None;
        for (c, f) in &columns {
            let cell = record.get(*c).unwrap_or("");
            match csv_cell(&f.data_type, cell) {
                Ok(v) => {
                    map.insert(checker.column(&f.name).to_owned(), v);
                }
                Err(e) => {
                    error = Some(format!("field `{}`: {e}", f.name));
                    break;
                }
            }
        }
        match error.map_or_else(|| checker.check(map), Err) {
            Ok(row) => out.rows.push(row),
            Err(error) => out.errors.push(RowError {
                at: format!("{path}:{line}"),
                error,
            }),
        }
    }
    Ok(out)
}

/// A CSV cell as the JSON an ingested record would carry: numbers and booleans parsed by the
/// field's type, timestamps kept as text (ISO-8601, parsed like ingested ones), arrays, maps
/// and structs as JSON text, and an empty cell as null
/// ([`crate::decisions::BATCH_CSV_EMPTY_IS_NULL`]).
fn csv_cell(ty: &DataType, cell: &str) -> Result<Json, String> {
    if cell.is_empty() && crate::decisions::BATCH_CSV_EMPTY_IS_NULL {
        return Ok(Json::Null);
    }
    let t = cell.trim();
    match ty {
        DataType::String | DataType::Timestamp => Ok(Json::from(cell)),
        DataType::Int64 | DataType::Int32 => t
            .parse::<i64>()
            .map(Json::from)
            .map_err(|_| format!("`{cell}` is not an integer")),
        DataType::Float64 | DataType::Float32 => t
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Json::Number)
            .ok_or_else(|| format!("`{cell}` is not a finite number")),
        DataType::Bool => match t.to_ascii_lowercase().as_str() {
            "true" => Ok(Json::Bool(true)),
            "false" => Ok(Json::Bool(false)),
            _ => Err(format!("`{cell}` is not true or false")),
        },
        DataType::Array(_) | DataType::Map(_) | DataType::Struct(_) => {
            serde_json::from_str(t).map_err(|e| format!("`{cell}` is not JSON: {e}"))
        }
    }
}

fn read_parquet(
    file: &Path,
    path: &str,
    schema: &Schema,
    checker: &Checker<'_>,
    fail: &dyn Fn(Option<usize>, String) -> BatchError,
) -> Result<Read, BatchError> {
    use parquet::basic::{LogicalType, TimeUnit};
    use parquet::file::reader::{FileReader, SerializedFileReader};
    use parquet::record::Field;

    let f = std::fs::File::open(file).map_err(|e| fail(None, e.to_string()))?;
    let reader = SerializedFileReader::new(f).map_err(|e| fail(None, e.to_string()))?;
    let descr = reader.metadata().file_metadata().schema_descr_ptr();
    let top: Vec<String> = descr
        .root_schema()
        .get_fields()
        .iter()
        .map(|t| t.name().to_owned())
        .collect();
    for f in &schema.fields {
        let name = checker.column(&f.name);
        if !top.iter().any(|t| t == name) {
            return Err(fail(
                None,
                format!("no column `{name}` in the file ({})", top.join(", ")),
            ));
        }
    }
    // Nanosecond timestamps come out of the record API as plain integers.
    let mut nanos = std::collections::HashSet::new();
    for c in descr.columns() {
        if let Some(LogicalType::Timestamp(t)) = c.logical_type_ref() {
            if !matches!(t.unit, TimeUnit::NANOS) {
                continue;
            }
            nanos.insert(c.path().parts().first().cloned().unwrap_or_default());
        }
    }
    fn to_json(field: &Field, nanos: bool) -> Json {
        match field {
            Field::Null => Json::Null,
            Field::Bool(b) => Json::Bool(*b),
            Field::Byte(n) => Json::from(*n),
            Field::Short(n) => Json::from(*n),
            Field::Int(n) => Json::from(*n),
            Field::Long(n) if nanos => Json::from(format_rfc3339(*n)),
            Field::Long(n) => Json::from(*n),
            Field::UByte(n) => Json::from(*n),
            Field::UShort(n) => Json::from(*n),
            Field::UInt(n) => Json::from(*n),
            Field::ULong(n) => Json::from(*n),
            Field::Float(n) => Json::from(f64::from(*n)),
            Field::Double(n) => Json::from(*n),
            Field::Str(s) => Json::from(s.as_str()),
            Field::TimestampMillis(ms) => Json::from(format_rfc3339(ms.saturating_mul(1_000_000))),
            Field::TimestampMicros(us) => Json::from(format_rfc3339(us.saturating_mul(1_000))),
            Field::Group(row) => Json::Object(
                row.get_column_iter()
                    .map(|(k, v)| (k.clone(), to_json(v, false)))
                    .collect(),
            ),
            Field::ListInternal(list) => {
                Json::Array(list.elements().iter().map(|v| to_json(v, false)).collect())
            }
            Field::MapInternal(map) => Json::Object(
                map.entries()
                    .iter()
                    .map(|(k, v)| {
                        let key = match to_json(k, false) {
                            Json::String(s) => s,
                            other => other.to_string(),
                        };
                        (key, to_json(v, false))
                    })
                    .collect(),
            ),
            other => Json::from(other.to_string()),
        }
    }
    let rows = reader
        .get_row_iter(None)
        .map_err(|e| fail(None, e.to_string()))?;
    let mut out = Read::default();
    for (i, row) in rows.enumerate() {
        let at = format!("{path}:row {}", i + 1);
        let row = match row {
            Ok(r) => r,
            Err(e) => {
                // A row the reader cannot decode means the rest cannot be trusted either.
                return Err(fail(None, format!("row {}: {e}", i + 1)));
            }
        };
        let map: Map<String, Json> = row
            .get_column_iter()
            .map(|(k, v)| (k.clone(), to_json(v, nanos.contains(k))))
            .collect();
        match checker.check(map) {
            Ok(r) => out.rows.push(r),
            Err(error) => out.errors.push(RowError { at, error }),
        }
    }
    Ok(out)
}
