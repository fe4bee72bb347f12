//! A source's `batch_config`: the file that holds the source's history (Tecton's batch source),
//! read and checked like the rest of the repository. The file itself is read when the mock
//! starts ([`crate::batch`]); here only its declaration is checked.
//!
//! ```toml
//! [[stream_sources]]
//! name = "transactions_stream"
//! batch_config = { path = "history.jsonl", format = "jsonl", timestamp_field = "event_time" }
//! ```

use std::path::{Path, PathBuf};

use toml::Spanned;

use super::diag::Diag;
use super::model::{FeatureView, PushSource, StreamProcessingMode, StreamSource, ViewKind};
use super::raw::RawRepo;
use super::read::Fields;
use crate::duration;
use crate::schema::DataType;

type S<T> = Spanned<T>;

/// The format of a batch source file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BatchFormat {
    /// JSON Lines: one JSON object per line, as the Stream Ingest API's records.
    Jsonl,
    /// CSV with a header row naming the columns.
    Csv,
    /// Apache Parquet.
    Parquet,
}

impl BatchFormat {
    /// The format a file name suggests: `.jsonl`/`.ndjson`/`.json`, `.csv`, `.parquet`/`.pq`.
    pub fn from_extension(path: &str) -> Option<BatchFormat> {
        let ext = Path::new(path).extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "jsonl" | "ndjson" | "json" => Some(BatchFormat::Jsonl),
            "csv" => Some(BatchFormat::Csv),
            "parquet" | "pq" => Some(BatchFormat::Parquet),
            _ => None,
        }
    }
}

/// A source's batch source: the file backfilled at start and read by batch materialization jobs.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchSource {
    /// The push or stream source it belongs to.
    pub source: String,
    /// The file, resolved against the repository file's directory.
    pub path: PathBuf,
    /// How the file is read.
    pub format: BatchFormat,
    /// The file's event-time column (default: the source's `timestamp_field`); its values become
    /// the source's event time.
    pub timestamp_field: String,
}

/// `batch_config` as written.
pub(super) struct RawBatchConfig {
    pub path: Option<S<String>>,
    pub format: Option<S<String>>,
    pub timestamp_field: Option<S<String>>,
    pub span: Option<std::ops::Range<usize>>,
}

const FORMATS: &str = "\"jsonl\", \"csv\" or \"parquet\"";

/// Reads a source's `batch_config` inline table, when present.
pub(super) fn read(f: &mut Fields<'_, '_, '_>) -> Option<RawBatchConfig> {
    let node = f.node("batch_config")?;
    let Some(table) = node.table() else {
        f.wrong(
            "batch_config",
            node,
            "a table, e.g. { path = \"history.jsonl\", format = \"jsonl\" }",
        );
        return None;
    };
    let span = node.span().or_else(|| f.span.clone());
    let path = f.field("batch_config");
    let mut inner = Fields {
        d: &mut *f.d,
        table,
        span,
        path,
    };
    inner.only(&["path", "format", "timestamp_field"]);
    let path = inner.required_string("path");
    Some(RawBatchConfig {
        path,
        format: inner.opt_string("format", FORMATS),
        timestamp_field: inner.opt_string("timestamp_field", "a string"),
        span: node.span(),
    })
}

/// Checks every source's `batch_config` and resolves its path against the repository file's
/// directory (`origin`); also checks the `batch_schedule` of views reading a batch source.
pub(super) fn sources(
    raw: &RawRepo,
    push: &[PushSource],
    stream: &[StreamSource],
    views: &[FeatureView],
    d: &mut Diag<'_>,
) -> Vec<BatchSource> {
    let base = Path::new(d.origin())
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let declared = raw
        .push_sources
        .iter()
        .enumerate()
        .map(|(i, s)| (format!("push_sources[{i}]"), s))
        .chain(
            raw.stream_sources
                .iter()
                .enumerate()
                .map(|(i, s)| (format!("stream_sources[{i}]"), s)),
        );
    let mut out = Vec::new();
    for (path, s) in declared {
        let Some(cfg) = &s.batch_config else {
            continue;
        };
        let field = format!("{path}.batch_config");
        let name = s.name.get_ref();
        // The validated source (absent when it had mistakes of its own, already reported).
        let schema = push
            .iter()
            .find(|p| &p.name == name)
            .map(|p| (&p.schema, &p.timestamp_field))
            .or_else(|| {
                stream
                    .iter()
                    .find(|st| &st.name == name)
                    .map(|st| (&st.schema, &st.timestamp_field))
            });
        let Some(file) = &cfg.path else { continue };
        let named = !file.get_ref().trim().is_empty();
        if !named {
            d.at_opt(
                Some(file.span()),
                format!("{field}.path"),
                "must name a file",
            );
        }
        let format = match &cfg.format {
            Some(f) => match f.get_ref().to_ascii_lowercase().as_str() {
                "jsonl" | "json" => Some(BatchFormat::Jsonl),
                "csv" => Some(BatchFormat::Csv),
                "parquet" => Some(BatchFormat::Parquet),
                other => {
                    d.at_opt(
                        Some(f.span()),
                        format!("{field}.format"),
                        format!("unknown format `{other}`; expected {FORMATS}"),
                    );
                    None
                }
            },
            None => {
                let guessed = BatchFormat::from_extension(file.get_ref());
                if guessed.is_none() && named {
                    d.at_opt(
                        cfg.span.clone(),
                        format!("{field}.format"),
                        format!(
                            "cannot tell the format of `{}` from its extension; give format = {FORMATS}",
                            file.get_ref()
                        ),
                    );
                }
                guessed
            }
        };
        let timestamp_field = match (&cfg.timestamp_field, schema) {
            (Some(ts), _) if ts.get_ref().trim().is_empty() => {
                d.at_opt(
                    Some(ts.span()),
                    format!("{field}.timestamp_field"),
                    "must name the file's event-time column",
                );
                None
            }
            (Some(ts), _) => Some(ts.get_ref().clone()),
            (None, Some((_, ts))) => Some(ts.clone()),
            (None, None) => None,
        };
        if let Some((schema, ts)) = schema {
            if schema
                .fields
                .iter()
                .find(|f| &f.name == ts)
                .is_some_and(|f| f.data_type != DataType::Timestamp)
            {
                continue; // reported with the source
            }
        }
        if let (true, Some(format), Some(timestamp_field)) = (named, format, timestamp_field) {
            let file_path = PathBuf::from(file.get_ref());
            out.push(BatchSource {
                source: name.clone(),
                path: if file_path.is_absolute() {
                    file_path
                } else {
                    base.join(file_path)
                },
                format,
                timestamp_field,
            });
        }
    }
    schedules(raw, views, &out, d);
    out
}

/// A TIME_INTERVAL view reading a batch source materializes whole tiles: its `batch_schedule`
/// must be a multiple of its `aggregation_interval` (as Tecton requires).
fn schedules(raw: &RawRepo, views: &[FeatureView], batch: &[BatchSource], d: &mut Diag<'_>) {
    for (i, v) in raw.feature_views.iter().enumerate() {
        let Some(view) = views.iter().find(|fv| &fv.name == v.name.get_ref()) else {
            continue;
        };
        if !view
            .sources
            .iter()
            .any(|s| batch.iter().any(|b| &b.source == s))
        {
            continue;
        }
        let (
            Some(schedule),
            Some(raw_schedule),
            ViewKind::Aggregates {
                mode: StreamProcessingMode::TimeInterval,
                aggregation_interval: Some(iv),
                ..
            },
        ) = (view.batch_schedule, &v.batch_schedule, &view.kind)
        else {
            continue;
        };
        if schedule % iv != 0 {
            d.at_opt(
                Some(raw_schedule.span()),
                format!("feature_views[{i}].batch_schedule"),
                format!(
                    "must be a multiple of the aggregation_interval {} (a batch job writes whole tiles)",
                    duration::Human(*iv)
                ),
            );
        }
    }
}
