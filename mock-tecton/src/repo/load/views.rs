//! Feature views: the sources and entities they read, their event-time field and start time,
//! and one function per kind: attribute views ([`attributes`]) and aggregate views
//! ([`aggregates`]).

use toml::Spanned;

use super::super::diag::Diag;
use super::super::model::{
    AggregateFeature, Attribute, Entity, FeatureView, PushSource, StreamProcessingMode,
    StreamSource, ViewKind,
};
use super::super::raw::{RawAggregation, RawRepo, RawView, S};
use super::object_id;
use crate::duration;
use crate::engine::AggregateFunction;
use crate::schema::{parse_timestamp, DataType, Schema};

pub(super) fn views(
    raw: &RawRepo,
    entities: &[Entity],
    push: &[PushSource],
    stream: &[StreamSource],
    d: &mut Diag<'_>,
) -> Vec<FeatureView> {
    d.unique(
        raw.feature_views
            .iter()
            .enumerate()
            .map(|(i, v)| (&v.name, format!("feature_views[{i}].name"))),
        "feature view",
    );
    let mut out = Vec::new();
    for (i, v) in raw.feature_views.iter().enumerate() {
        match view(&format!("feature_views[{i}]"), v, entities, push, stream, d) {
            Some(view) => out.push(view),
            // References to a view left out are not reported again.
            None => {
                d.broken.insert(v.name.get_ref().clone());
            }
        }
    }
    out
}

/// The sources a view reads, each with its schema and event-time field.
struct Sources<'r> {
    schemas: Vec<(&'r str, &'r Schema, &'r str)>,
}

impl<'r> Sources<'r> {
    fn resolve(
        v: &RawView,
        path: &str,
        push: &'r [PushSource],
        stream: &'r [StreamSource],
        d: &mut Diag<'_>,
    ) -> Self {
        let mut schemas: Vec<(&str, &Schema, &str)> = Vec::new();
        if v.sources.get_ref().is_empty() {
            d.at(
                v.sources.span(),
                format!("{path}.sources"),
                "a feature view needs at least one source",
            );
        }
        for (k, s) in v.sources.get_ref().iter().enumerate() {
            if let Some(p) = push.iter().find(|p| &p.name == s.get_ref()) {
                schemas.push((&p.name, &p.schema, &p.timestamp_field));
            } else if let Some(st) = stream.iter().find(|st| &st.name == s.get_ref()) {
                schemas.push((&st.name, &st.schema, &st.timestamp_field));
            } else if !d.broken.contains(s.get_ref())
                && !d.broken.contains("push_sources[*]")
                && !d.broken.contains("stream_sources[*]")
            {
                d.at(
                    s.span(),
                    format!("{path}.sources[{k}]"),
                    format!("no push or stream source named `{}`", s.get_ref()),
                );
            }
        }
        Sources { schemas }
    }

    /// The type of `col`, which every source must carry with the same type.
    fn column_type(&self, d: &mut Diag<'_>, col: &S<String>, field: String) -> Option<DataType> {
        let mut ty: Option<DataType> = None;
        for (src, sch, _) in &self.schemas {
            match sch.fields.iter().find(|f| &f.name == col.get_ref()) {
                None if d.broken.contains(&format!("{src}.{}", col.get_ref())) => return None,
                None => {
                    d.at(
                        col.span(),
                        field,
                        format!("source `{src}` has no field `{}`", col.get_ref()),
                    );
                    return None;
                }
                Some(f) => match &ty {
                    Some(t) if *t != f.data_type => {
                        d.at(
                            col.span(),
                            field,
                            format!(
                                "`{}` is {t} in one source and {} in `{src}`",
                                col.get_ref(),
                                f.data_type
                            ),
                        );
                        return None;
                    }
                    _ => ty = Some(f.data_type.clone()),
                },
            }
        }
        ty
    }

    /// Whether every source is a push source.
    fn only_push(&self, push: &[PushSource]) -> bool {
        self.schemas
            .iter()
            .all(|(n, _, _)| push.iter().any(|p| p.name == *n))
    }
}

fn view(
    path: &str,
    v: &RawView,
    entities: &[Entity],
    push: &[PushSource],
    stream: &[StreamSource],
    d: &mut Diag<'_>,
) -> Option<FeatureView> {
    let sources = Sources::resolve(v, path, push, stream, d);
    let join_keys = join_keys(path, v, entities, &sources, d);
    let timestamp_field = match &v.timestamp_field {
        Some(ts) => {
            if sources
                .column_type(d, ts, format!("{path}.timestamp_field"))
                .is_some_and(|t| t != DataType::Timestamp)
            {
                d.at(
                    ts.span(),
                    format!("{path}.timestamp_field"),
                    "the event-time field must be a Timestamp",
                );
            }
            ts.get_ref().clone()
        }
        None => sources
            .schemas
            .first()
            .map(|(_, _, ts)| (*ts).to_owned())
            .unwrap_or_default(),
    };
    let feature_start_time =
        v.feature_start_time
            .as_ref()
            .and_then(|s| match parse_timestamp(s.get_ref()) {
                Ok(t) => Some(t),
                Err(e) => {
                    d.at(
                        s.span(),
                        format!("{path}.feature_start_time"),
                        e.to_string(),
                    );
                    None
                }
            });
    if (v.online || v.offline)
        && v.feature_start_time.is_none()
        && !d.reported(&format!("{path}.feature_start_time"))
    {
        d.at(
            v.name.span(),
            format!("{path}.feature_start_time"),
            "required when online or offline is true (as in Tecton)",
        );
    }
    let batch_schedule = v
        .batch_schedule
        .as_ref()
        .and_then(|b| d.duration(b, &format!("{path}.batch_schedule")));

    let kind = match (&v.aggregations, &v.attributes) {
        (Some(_), Some(a)) => {
            d.at(
                a.span(),
                format!("{path}.attributes"),
                "a feature view has either aggregations or attributes, not both",
            );
            return None;
        }
        (None, None) => {
            if !d.reported(&format!("{path}.aggregations"))
                && !d.reported(&format!("{path}.attributes"))
            {
                d.at(v.name.span(), path, "give aggregations or attributes");
            }
            return None;
        }
        (None, Some(attrs)) => attributes(path, v, attrs, &sources, d),
        (Some(aggs), None) => aggregates(path, v, aggs, &sources, push, d),
    };
    Some(FeatureView {
        name: v.name.get_ref().clone(),
        id: object_id(v.name.get_ref()),
        sources: v
            .sources
            .get_ref()
            .iter()
            .map(|s| s.get_ref().clone())
            .collect(),
        join_keys,
        timestamp_field,
        online: v.online,
        offline: v.offline,
        feature_start_time,
        batch_schedule,
        kind,
    })
}

/// The join keys of the view's entities, each checked against the sources' columns.
fn join_keys(
    path: &str,
    v: &RawView,
    entities: &[Entity],
    sources: &Sources<'_>,
    d: &mut Diag<'_>,
) -> Vec<(String, DataType)> {
    let mut join_keys = Vec::new();
    if v.entities.get_ref().is_empty() {
        d.at(
            v.entities.span(),
            format!("{path}.entities"),
            "a feature view needs at least one entity",
        );
    }
    for (k, e) in v.entities.get_ref().iter().enumerate() {
        match entities.iter().find(|en| &en.name == e.get_ref()) {
            None if d.broken.contains(e.get_ref()) || d.broken.contains("entities[*]") => {}
            None => d.at(
                e.span(),
                format!("{path}.entities[{k}]"),
                format!("no entity named `{}`", e.get_ref()),
            ),
            Some(en) => {
                for (key, kt) in &en.join_keys {
                    let spanned = Spanned::new(e.span(), key.clone());
                    let field = format!("{path}.entities[{k}]");
                    if let Some(t) = sources.column_type(d, &spanned, field.clone()) {
                        if t != *kt {
                            d.at(
                                e.span(),
                                field,
                                format!(
                                    "join key `{key}` is {kt} in the entity but {t} in the source"
                                ),
                            );
                        }
                    }
                    join_keys.push((key.clone(), kt.clone()));
                }
            }
        }
    }
    join_keys
}

/// An attribute view: columns served as they are, for `ttl`.
fn attributes(
    path: &str,
    v: &RawView,
    attrs: &S<Vec<S<String>>>,
    sources: &Sources<'_>,
    d: &mut Diag<'_>,
) -> ViewKind {
    for (key, span) in [
        (
            "stream_processing_mode",
            v.stream_processing_mode.as_ref().map(Spanned::span),
        ),
        (
            "aggregation_interval",
            v.aggregation_interval.as_ref().map(Spanned::span),
        ),
    ] {
        if let Some(span) = span {
            d.at(
                span,
                format!("{path}.{key}"),
                "only views with aggregations take this field",
            );
        }
    }
    let mut attributes = Vec::new();
    for (k, a) in attrs.get_ref().iter().enumerate() {
        match sources.column_type(d, a, format!("{path}.attributes[{k}]")) {
            Some(t) => attributes.push(Attribute {
                name: a.get_ref().clone(),
                column: a.get_ref().clone(),
                data_type: t,
            }),
            None => {
                d.broken.insert(v.name.get_ref().clone());
            }
        }
    }
    let ttl = v
        .ttl
        .as_ref()
        .and_then(|t| d.duration(t, &format!("{path}.ttl")));
    ViewKind::Attributes { attributes, ttl }
}

/// An aggregate view: its processing mode, tile size and features.
fn aggregates(
    path: &str,
    v: &RawView,
    aggs: &S<Vec<RawAggregation>>,
    sources: &Sources<'_>,
    push: &[PushSource],
    d: &mut Diag<'_>,
) -> ViewKind {
    if let Some(t) = &v.ttl {
        d.at(
            t.span(),
            format!("{path}.ttl"),
            "ttl applies to attribute views only; aggregates are bounded by their windows",
        );
    }
    // Tecton defaults push-source views to CONTINUOUS, others to TIME_INTERVAL.
    let mode = v.stream_processing_mode.as_ref().map_or(
        if sources.only_push(push) {
            StreamProcessingMode::Continuous
        } else {
            StreamProcessingMode::TimeInterval
        },
        |m| *m.get_ref(),
    );
    let interval = v
        .aggregation_interval
        .as_ref()
        .and_then(|s| d.duration(s, &format!("{path}.aggregation_interval")));
    if mode == StreamProcessingMode::TimeInterval {
        match (&v.aggregation_interval, interval) {
            (None, _) => d.at(
                v.name.span(),
                format!("{path}.aggregation_interval"),
                "TIME_INTERVAL needs an aggregation_interval (the tile size), e.g. \"10m\"",
            ),
            (Some(s), Some(iv)) if iv < duration::MINUTE || iv % duration::MINUTE != 0 => d.at(
                s.span(),
                format!("{path}.aggregation_interval"),
                "must be a whole number of minutes, at least 1m",
            ),
            _ => {}
        }
    }
    let mut features: Vec<AggregateFeature> = Vec::new();
    for (k, a) in aggs.get_ref().iter().enumerate() {
        let fpath = format!("{path}.aggregations[{k}]");
        match aggregate(&fpath, a, mode, interval, sources, d) {
            Some(f) => {
                if features.iter().any(|g| g.name == f.name) {
                    d.at(
                        a.function.span(),
                        fpath,
                        format!(
                            "two aggregations are both named `{}`; give one a name",
                            f.name
                        ),
                    );
                }
                features.push(f);
            }
            // A feature left out is not reported again where a service names it.
            None => {
                d.broken.insert(v.name.get_ref().clone());
            }
        }
    }
    ViewKind::Aggregates {
        mode,
        aggregation_interval: interval,
        features,
    }
}

/// One aggregation of an aggregate view, or `None` after reporting why it is left out.
fn aggregate(
    fpath: &str,
    a: &RawAggregation,
    mode: StreamProcessingMode,
    interval: Option<i64>,
    sources: &Sources<'_>,
    d: &mut Diag<'_>,
) -> Option<AggregateFeature> {
    let function = match a.function.get_ref().parse::<AggregateFunction>() {
        Ok(f) => Some(f),
        Err(e) => {
            d.at(
                a.function.span(),
                format!("{fpath}.function"),
                e.to_string(),
            );
            None
        }
    };
    let input = sources.column_type(d, &a.column, format!("{fpath}.column"));
    let window = d.duration(&a.window, &format!("{fpath}.window"));
    let offset = a
        .offset
        .as_ref()
        .map(|o| d.duration(o, &format!("{fpath}.offset")).map(|o| -o));
    let (Some(function), Some(input), Some(window)) = (function, input, window) else {
        return None;
    };
    let offset = match offset {
        Some(None) => return None,
        Some(Some(o)) => o,
        None => 0,
    };
    let result_type = match function.result_type(&input) {
        Ok(t) => t,
        Err(e) => {
            d.at(
                a.function.span(),
                format!("{fpath}.function"),
                e.to_string(),
            );
            return None;
        }
    };
    if let (StreamProcessingMode::TimeInterval, Some(iv)) = (mode, interval) {
        if window % iv != 0 || offset % iv != 0 {
            d.at(
                a.window.span(),
                format!("{fpath}.window"),
                format!(
                    "window and offset must be multiples of the aggregation_interval {}",
                    duration::Human(iv)
                ),
            );
        }
    }
    let name = match &a.name {
        Some(n) => n.get_ref().clone(),
        None => default_name(
            a.column.get_ref(),
            &function,
            window,
            offset,
            mode,
            interval,
        ),
    };
    Some(AggregateFeature {
        name,
        column: a.column.get_ref().clone(),
        function,
        window,
        offset,
        input_type: input,
        result_type,
    })
}

/// Tecton's default aggregate feature name: `{column}_{fn}_{window}_{interval}[_offset_{off}]`.
fn default_name(
    column: &str,
    f: &AggregateFunction,
    window: i64,
    offset: i64,
    mode: StreamProcessingMode,
    interval: Option<i64>,
) -> String {
    let suffix = match mode {
        StreamProcessingMode::Continuous => "continuous".to_owned(),
        StreamProcessingMode::TimeInterval => duration::Human(interval.unwrap_or(0)).to_string(),
    };
    let mut name = format!(
        "{column}_{}_{}_{suffix}",
        f.name_fragment(),
        duration::Human(window)
    );
    if offset != 0 {
        name.push_str(&format!("_offset_{}", duration::Human(offset)));
    }
    name
}
