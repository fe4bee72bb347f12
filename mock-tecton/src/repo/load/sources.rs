//! Push and stream sources: their schemas, event-time fields, watermarks and deduplication
//! columns.

use std::collections::HashSet;

use super::super::diag::Diag;
use super::super::model::{PushSource, StreamSource};
use super::super::raw::{RawField, RawRepo, RawSource};
use crate::duration;
use crate::schema::{DataType, Field, Schema};

pub(super) fn parse_type(d: &mut Diag<'_>, f: &RawField, field: String) -> Option<DataType> {
    match f.ty.get_ref().parse::<DataType>() {
        Ok(t) => Some(t),
        Err(e) => {
            d.at(f.ty.span(), field, e.to_string());
            None
        }
    }
}

/// Builds a schema, checking names and types; fields are nullable until a view says otherwise.
/// A field with a bad type is left out and remembered as `source.field` in `d.broken`.
fn schema(d: &mut Diag<'_>, source: &str, fields: &[RawField], path: &str) -> Schema {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for (k, f) in fields.iter().enumerate() {
        if !seen.insert(f.name.get_ref().clone()) {
            d.at(
                f.name.span(),
                format!("{path}.schema[{k}].name"),
                format!("field `{}` is declared twice", f.name.get_ref()),
            );
        }
        match parse_type(d, f, format!("{path}.schema[{k}].type")) {
            Some(t) => out.push(Field {
                name: f.name.get_ref().clone(),
                data_type: t,
                nullable: true,
            }),
            None => {
                d.broken.insert(format!("{source}.{}", f.name.get_ref()));
            }
        }
    }
    Schema { fields: out }
}

/// The event-time field: named, or else the schema's only Timestamp field.
fn timestamp_field(d: &mut Diag<'_>, s: &RawSource, schema: &Schema, path: &str) -> String {
    if let Some(ts) = &s.timestamp_field {
        match schema.fields.iter().find(|f| &f.name == ts.get_ref()) {
            Some(f) if f.data_type == DataType::Timestamp => {}
            Some(f) => d.at(
                ts.span(),
                format!("{path}.timestamp_field"),
                format!("`{}` is {}, not Timestamp", f.name, f.data_type),
            ),
            None if d
                .broken
                .contains(&format!("{}.{}", s.name.get_ref(), ts.get_ref())) => {}
            None => d.at(
                ts.span(),
                format!("{path}.timestamp_field"),
                format!("no field `{}` in the schema", ts.get_ref()),
            ),
        }
        return ts.get_ref().clone();
    }
    let ts: Vec<_> = schema
        .fields
        .iter()
        .filter(|f| f.data_type == DataType::Timestamp)
        .collect();
    let prefix = format!("{}.", s.name.get_ref());
    let bad_types = d.broken.iter().any(|b| b.starts_with(&prefix));
    match ts.as_slice() {
        [one] => one.name.clone(),
        // A field whose type was refused may be the Timestamp one: already reported.
        [] if bad_types => String::new(),
        [] => {
            d.at(
                s.name.span(),
                format!("{path}.timestamp_field"),
                "the schema has no Timestamp field for event time",
            );
            String::new()
        }
        _ => {
            d.at(
                s.name.span(),
                format!("{path}.timestamp_field"),
                "several Timestamp fields: name the event-time one with timestamp_field",
            );
            String::new()
        }
    }
}

fn mark_not_null(schema: &mut Schema, name: &str) {
    if let Some(f) = schema.fields.iter_mut().find(|f| f.name == name) {
        f.nullable = false;
    }
}

pub(super) fn push_sources(raw: &RawRepo, d: &mut Diag<'_>) -> Vec<PushSource> {
    d.unique(
        raw.push_sources
            .iter()
            .enumerate()
            .map(|(i, s)| (&s.name, format!("push_sources[{i}].name"))),
        "push source",
    );
    let mut out = Vec::new();
    for (i, s) in raw.push_sources.iter().enumerate() {
        let path = format!("push_sources[{i}]");
        for (present, key) in [
            (s.topic.as_ref().map(|t| t.span()), "topic"),
            (
                s.watermark_delay_threshold.as_ref().map(|t| t.span()),
                "watermark_delay_threshold",
            ),
            (s.schema_from.as_ref().map(|t| t.span()), "schema_from"),
            (
                s.deduplication_columns.first().map(|t| t.span()),
                "deduplication_columns",
            ),
            (
                s.trigger_interval.as_ref().map(|t| t.span()),
                "trigger_interval",
            ),
        ] {
            if let Some(span) = present {
                d.at(
                    span,
                    format!("{path}.{key}"),
                    "only stream_sources take this field",
                );
            }
        }
        if s.schema.is_empty() {
            d.at(
                s.name.span(),
                format!("{path}.schema"),
                "a push source needs a schema",
            );
        }
        let mut sch = schema(d, s.name.get_ref(), &s.schema, &path);
        let ts = timestamp_field(d, s, &sch, &path);
        mark_not_null(&mut sch, &ts);
        out.push(PushSource {
            name: s.name.get_ref().clone(),
            schema: sch,
            timestamp_field: ts,
            log_offline: s.log_offline.as_ref().is_none_or(|b| *b.get_ref()),
        });
    }
    out
}

pub(super) fn stream_sources(
    raw: &RawRepo,
    push: &[PushSource],
    d: &mut Diag<'_>,
) -> Vec<StreamSource> {
    let all = raw
        .push_sources
        .iter()
        .map(|s| &s.name)
        .chain(raw.stream_sources.iter().map(|s| &s.name));
    d.unique(
        all.enumerate()
            .map(|(i, n)| (n, format!("sources[{i}].name"))),
        "source",
    );
    let mut out = Vec::new();
    for (i, s) in raw.stream_sources.iter().enumerate() {
        let path = format!("stream_sources[{i}]");
        if let Some(l) = &s.log_offline {
            d.at(
                l.span(),
                format!("{path}.log_offline"),
                "only push_sources take this field",
            );
        }
        let (mut sch, ts) = match (&s.schema_from, s.schema.is_empty()) {
            (Some(from), true) => match push.iter().find(|p| &p.name == from.get_ref()) {
                Some(p) => (
                    p.schema.clone(),
                    s.timestamp_field
                        .as_ref()
                        .map_or(p.timestamp_field.clone(), |t| t.get_ref().clone()),
                ),
                None => {
                    d.at(
                        from.span(),
                        format!("{path}.schema_from"),
                        format!("no push source named `{}`", from.get_ref()),
                    );
                    (Schema::default(), String::new())
                }
            },
            (None, false) => {
                let sch = schema(d, s.name.get_ref(), &s.schema, &path);
                let ts = timestamp_field(d, s, &sch, &path);
                (sch, ts)
            }
            _ => {
                d.at(
                    s.name.span(),
                    format!("{path}.schema"),
                    "give exactly one of schema or schema_from",
                );
                (Schema::default(), String::new())
            }
        };
        mark_not_null(&mut sch, &ts);
        let watermark = match &s.watermark_delay_threshold {
            Some(w) => match duration::parse(w.get_ref()) {
                Ok(v) => v,
                Err(e) => {
                    d.at(
                        w.span(),
                        format!("{path}.watermark_delay_threshold"),
                        e.to_string(),
                    );
                    0
                }
            },
            None => 24 * duration::HOUR,
        };
        for (k, c) in s.deduplication_columns.iter().enumerate() {
            if sch.index_of(c.get_ref()).is_none() && !sch.fields.is_empty() {
                d.at(
                    c.span(),
                    format!("{path}.deduplication_columns[{k}]"),
                    format!("no field `{}` in the schema", c.get_ref()),
                );
            }
        }
        let topic = match &s.topic {
            Some(t) => t.get_ref().clone(),
            None => {
                d.at(
                    s.name.span(),
                    format!("{path}.topic"),
                    "a stream source needs a topic",
                );
                String::new()
            }
        };
        let trigger_interval = match &s.trigger_interval {
            Some(t) => match duration::parse(t.get_ref()) {
                Ok(v) => Some(v),
                Err(e) => {
                    d.at(t.span(), format!("{path}.trigger_interval"), e.to_string());
                    None
                }
            },
            None => None,
        };
        out.push(StreamSource {
            trigger_interval,
            name: s.name.get_ref().clone(),
            topic,
            schema: sch,
            timestamp_field: ts,
            watermark_delay_threshold: watermark,
            deduplication_columns: s
                .deduplication_columns
                .iter()
                .map(|c| c.get_ref().clone())
                .collect(),
        });
    }
    out
}
