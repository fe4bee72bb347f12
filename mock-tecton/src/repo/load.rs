//! Reading a repository file: TOML in, validated [`Repository`] out, or every mistake with its
//! file, line, column and field.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::ops::Range;

use toml::Spanned;

use super::model::*;
use crate::duration;
use crate::engine::AggregateFunction;
use crate::schema::{parse_timestamp, DataType, Field, Schema};

/// One mistake in a repository file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoError {
    /// The file (or `<embedded demo>`).
    pub origin: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// 1-based column, when known.
    pub column: Option<usize>,
    /// The field path, like `feature_views[1].aggregations[0].function`.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for RepoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.origin)?;
        if let (Some(l), Some(c)) = (self.line, self.column) {
            write!(f, ":{l}:{c}")?;
        }
        if !self.field.is_empty() {
            write!(f, ": {}", self.field)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// All mistakes found in a repository file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct RepoErrors(pub Vec<RepoError>);

impl RepoErrors {
    pub(super) fn io(origin: &str, e: &std::io::Error) -> Self {
        RepoErrors(vec![RepoError {
            origin: origin.to_owned(),
            line: None,
            column: None,
            field: String::new(),
            message: format!("cannot read the repository file: {e}"),
        }])
    }
}

impl fmt::Display for RepoErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        writeln!(
            f,
            "the feature repository has {n} error{}:",
            if n == 1 { "" } else { "s" }
        )?;
        for e in &self.0 {
            writeln!(f, "  {e}")?;
        }
        Ok(())
    }
}

type S<T> = Spanned<T>;

// The raw shape of a repository file, as `read` builds it: every value here has the right
// kind; what the values mean is checked below.

pub(super) struct RawRepo {
    pub workspaces: Vec<RawWorkspace>,
    pub service_accounts: Vec<RawServiceAccount>,
    pub entities: Vec<RawEntity>,
    pub push_sources: Vec<RawSource>,
    pub stream_sources: Vec<RawSource>,
    pub feature_views: Vec<RawView>,
    pub feature_services: Vec<RawService>,
}

pub(super) struct RawWorkspace {
    pub name: S<String>,
    pub live: bool,
}

pub(super) struct RawServiceAccount {
    pub name: S<String>,
    pub api_key: S<String>,
    /// Workspace name and its roles, in file order.
    pub roles: Vec<(String, S<Vec<Role>>)>,
}

pub(super) struct RawField {
    pub name: S<String>,
    pub ty: S<String>,
}

pub(super) struct RawEntity {
    pub name: S<String>,
    pub join_keys: Vec<RawField>,
}

/// Push and stream sources share a shape; stream-only fields are refused on push sources.
pub(super) struct RawSource {
    pub name: S<String>,
    pub schema: Vec<RawField>,
    pub schema_from: Option<S<String>>,
    pub timestamp_field: Option<S<String>>,
    pub log_offline: Option<S<bool>>,
    pub topic: Option<S<String>>,
    pub watermark_delay_threshold: Option<S<String>>,
    pub deduplication_columns: Vec<S<String>>,
    pub trigger_interval: Option<S<String>>,
    pub batch_config: Option<super::batch::RawBatchConfig>,
}

pub(super) struct RawView {
    pub name: S<String>,
    pub sources: S<Vec<S<String>>>,
    pub entities: S<Vec<S<String>>>,
    pub timestamp_field: Option<S<String>>,
    pub online: bool,
    pub offline: bool,
    pub feature_start_time: Option<S<String>>,
    pub batch_schedule: Option<S<String>>,
    pub stream_processing_mode: Option<S<StreamProcessingMode>>,
    pub aggregation_interval: Option<S<String>>,
    pub aggregations: Option<S<Vec<RawAggregation>>>,
    pub attributes: Option<S<Vec<S<String>>>>,
    pub ttl: Option<S<String>>,
}

pub(super) struct RawAggregation {
    pub column: S<String>,
    pub function: S<String>,
    pub window: S<String>,
    pub offset: Option<S<String>>,
    pub name: Option<S<String>>,
}

pub(super) struct RawService {
    pub name: S<String>,
    pub features: Vec<S<String>>,
}

/// Collects errors with positions computed from byte spans.
pub(super) struct Diag<'a> {
    text: &'a str,
    origin: &'a str,
    errors: Vec<RepoError>,
    /// Names of objects (or `source.column`s) left out because of a reported mistake:
    /// references to them are not reported again.
    pub broken: HashSet<String>,
}

impl Diag<'_> {
    fn at(&mut self, span: Range<usize>, field: impl Into<String>, message: impl Into<String>) {
        self.at_opt(Some(span), field, message);
    }

    /// An error at a position when one is known.
    pub(super) fn at_opt(
        &mut self,
        span: Option<Range<usize>>,
        field: impl Into<String>,
        message: impl Into<String>,
    ) {
        let (line, column) = span.map_or((None, None), |s| {
            let (l, c) = line_col(self.text, s.start);
            (Some(l), Some(c))
        });
        self.errors.push(RepoError {
            origin: self.origin.to_owned(),
            line,
            column,
            field: field.into(),
            message: message.into(),
        });
    }

    /// The file being read, as errors name it.
    pub(super) fn origin(&self) -> &str {
        self.origin
    }

    /// Whether an error was already reported for this field path.
    pub(super) fn reported(&self, field: &str) -> bool {
        self.errors.iter().any(|e| e.field == field)
    }

    fn duration(&mut self, s: &S<String>, field: &str) -> Option<i64> {
        match duration::parse(s.get_ref()) {
            Ok(d) if d > 0 => Some(d),
            Ok(_) => {
                self.at(s.span(), field, "must be longer than zero");
                None
            }
            Err(e) => {
                self.at(s.span(), field, e.to_string());
                None
            }
        }
    }

    fn unique<'n>(&mut self, names: impl IntoIterator<Item = (&'n S<String>, String)>, what: &str) {
        let mut seen = HashSet::new();
        for (name, field) in names {
            if name.get_ref().is_empty() {
                self.at(name.span(), field, format!("{what} name must not be empty"));
            } else if !seen.insert(name.get_ref().clone()) {
                self.at(
                    name.span(),
                    field,
                    format!("{what} `{}` is defined twice", name.get_ref()),
                );
            }
        }
    }
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rfind('\n')
        .map_or(before.len(), |nl| before.len() - nl - 1)
        + 1;
    (line, column)
}

pub(super) fn load(text: &str, origin: &str) -> Result<Repository, RepoErrors> {
    let mut d = Diag {
        text,
        origin,
        errors: Vec::new(),
        broken: HashSet::new(),
    };
    let repo = super::read::read(text, &mut d).map(|raw| validate(raw, &mut d));
    match repo {
        Some(repo) if d.errors.is_empty() => Ok(repo),
        _ => {
            // In file order, so a reader can fix them top to bottom.
            d.errors
                .sort_by_key(|e| (e.line.unwrap_or(usize::MAX), e.column.unwrap_or(0)));
            Err(RepoErrors(d.errors))
        }
    }
}

fn validate(raw: RawRepo, d: &mut Diag<'_>) -> Repository {
    d.unique(
        raw.workspaces
            .iter()
            .enumerate()
            .map(|(i, w)| (&w.name, format!("workspaces[{i}].name"))),
        "workspace",
    );
    let workspaces: Vec<Workspace> = raw
        .workspaces
        .iter()
        .map(|w| Workspace {
            name: w.name.get_ref().clone(),
            live: w.live,
        })
        .collect();
    if workspaces.is_empty() {
        d.errors.push(RepoError {
            origin: d.origin.to_owned(),
            line: None,
            column: None,
            field: "workspaces".into(),
            message: "declare at least one [[workspaces]] entry".into(),
        });
    }

    let service_accounts = accounts(&raw, &workspaces, d);
    let entities = entities(&raw, d);
    let push_sources = push_sources(&raw, d);
    let stream_sources = stream_sources(&raw, &push_sources, d);
    let feature_views = views(&raw, &entities, &push_sources, &stream_sources, d);
    let feature_services = services(&raw, &feature_views, d);
    let batch_sources =
        super::batch::sources(&raw, &push_sources, &stream_sources, &feature_views, d);
    Repository {
        batch_sources,
        workspaces,
        service_accounts,
        entities,
        push_sources,
        stream_sources,
        feature_views,
        feature_services,
    }
}

fn accounts(raw: &RawRepo, workspaces: &[Workspace], d: &mut Diag<'_>) -> Vec<ServiceAccount> {
    let list = &raw.service_accounts;
    d.unique(
        list.iter()
            .enumerate()
            .map(|(i, a)| (&a.name, format!("service_accounts[{i}].name"))),
        "service account",
    );
    let mut keys = HashSet::new();
    let mut out = Vec::new();
    for (i, a) in list.iter().enumerate() {
        if a.api_key.get_ref().trim().is_empty()
            || a.api_key.get_ref().contains(char::is_whitespace)
        {
            d.at(
                a.api_key.span(),
                format!("service_accounts[{i}].api_key"),
                "must be non-empty without spaces",
            );
        } else if !keys.insert(a.api_key.get_ref().clone()) {
            d.at(
                a.api_key.span(),
                format!("service_accounts[{i}].api_key"),
                "this key belongs to another service account too",
            );
        }
        let mut roles = HashMap::new();
        for (ws, r) in &a.roles {
            if !workspaces.iter().any(|w| &w.name == ws) {
                d.at(
                    r.span(),
                    format!("service_accounts[{i}].roles.{ws}"),
                    format!("no workspace named `{ws}`"),
                );
            }
            roles.insert(ws.clone(), r.get_ref().clone());
        }
        out.push(ServiceAccount {
            name: a.name.get_ref().clone(),
            api_key: a.api_key.get_ref().clone(),
            roles,
        });
    }
    out
}

fn parse_type(d: &mut Diag<'_>, f: &RawField, field: String) -> Option<DataType> {
    match f.ty.get_ref().parse::<DataType>() {
        Ok(t) => Some(t),
        Err(e) => {
            d.at(f.ty.span(), field, e.to_string());
            None
        }
    }
}

fn entities(raw: &RawRepo, d: &mut Diag<'_>) -> Vec<Entity> {
    d.unique(
        raw.entities
            .iter()
            .enumerate()
            .map(|(i, e)| (&e.name, format!("entities[{i}].name"))),
        "entity",
    );
    let mut out = Vec::new();
    for (i, e) in raw.entities.iter().enumerate() {
        if e.join_keys.is_empty() {
            d.at(
                e.name.span(),
                format!("entities[{i}].join_keys"),
                "an entity needs at least one join key",
            );
        }
        let mut keys = Vec::new();
        for (k, f) in e.join_keys.iter().enumerate() {
            let field = format!("entities[{i}].join_keys[{k}].type");
            if let Some(t) = parse_type(d, f, field.clone()) {
                if !matches!(t, DataType::String | DataType::Int64 | DataType::Int32) {
                    d.at(
                        f.ty.span(),
                        field,
                        format!("join keys must be String, Int64 or Int32, not {t}"),
                    );
                }
                keys.push((f.name.get_ref().clone(), t));
            }
        }
        out.push(Entity {
            name: e.name.get_ref().clone(),
            join_keys: keys,
        });
    }
    out
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

fn push_sources(raw: &RawRepo, d: &mut Diag<'_>) -> Vec<PushSource> {
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

fn stream_sources(raw: &RawRepo, push: &[PushSource], d: &mut Diag<'_>) -> Vec<StreamSource> {
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

/// A stable 32-hex-digit id from a name (two FNV-1a passes with different bases).
pub(crate) fn object_id(name: &str) -> String {
    let fnv = |basis: u64| {
        name.bytes().fold(basis, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        })
    };
    format!(
        "{:016x}{:016x}",
        fnv(0xcbf2_9ce4_8422_2325),
        fnv(0x6c62_272e_07bb_0142)
    )
}

fn views(
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
        let path = format!("feature_views[{i}]");
        // Resolve sources to their schemas.
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
        // Every source must carry a column with the same type.
        let column_type = |d: &mut Diag<'_>, col: &S<String>, field: String| -> Option<DataType> {
            let mut ty: Option<DataType> = None;
            for (src, sch, _) in &schemas {
                match sch.fields.iter().find(|f| &f.name == col.get_ref()) {
                    None if d.broken.contains(&format!("{src}.{}", col.get_ref())) => return None,
                    None => {
                        d.at(
                            col.span(),
                            field.clone(),
                            format!("source `{src}` has no field `{}`", col.get_ref()),
                        );
                        return None;
                    }
                    Some(f) => match &ty {
                        Some(t) if *t != f.data_type => {
                            d.at(
                                col.span(),
                                field.clone(),
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
        };

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
                        if let Some(t) = column_type(d, &spanned, format!("{path}.entities[{k}]")) {
                            if t != *kt {
                                d.at(e.span(), format!("{path}.entities[{k}]"), format!("join key `{key}` is {kt} in the entity but {t} in the source"));
                            }
                        }
                        join_keys.push((key.clone(), kt.clone()));
                    }
                }
            }
        }
        let timestamp_field = match &v.timestamp_field {
            Some(ts) => {
                if column_type(d, ts, format!("{path}.timestamp_field"))
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
            None => schemas
                .first()
                .map(|(_, _, ts)| ts.to_string())
                .unwrap_or_default(),
        };
        let feature_start_time = v
            .feature_start_time
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
                None
            }
            (None, None) => {
                if !d.reported(&format!("{path}.aggregations"))
                    && !d.reported(&format!("{path}.attributes"))
                {
                    d.at(
                        v.name.span(),
                        path.clone(),
                        "give aggregations or attributes",
                    );
                }
                None
            }
            (None, Some(attrs)) => {
                for (key, span) in [
                    (
                        "stream_processing_mode",
                        v.stream_processing_mode.as_ref().map(|m| m.span()),
                    ),
                    (
                        "aggregation_interval",
                        v.aggregation_interval.as_ref().map(|m| m.span()),
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
                    match column_type(d, a, format!("{path}.attributes[{k}]")) {
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
                Some(ViewKind::Attributes { attributes, ttl })
            }
            (Some(aggs), None) => {
                if let Some(t) = &v.ttl {
                    d.at(t.span(), format!("{path}.ttl"), "ttl applies to attribute views only; aggregates are bounded by their windows");
                }
                // Tecton defaults push-source views to CONTINUOUS, others to TIME_INTERVAL.
                let only_push = schemas
                    .iter()
                    .all(|(n, _, _)| push.iter().any(|p| p.name == *n));
                let mode = v.stream_processing_mode.as_ref().map_or(
                    if only_push {
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
                        (None, _) => d.at(v.name.span(), format!("{path}.aggregation_interval"), "TIME_INTERVAL needs an aggregation_interval (the tile size), e.g. \"10m\""),
                        (Some(s), Some(iv)) if iv < duration::MINUTE || iv % duration::MINUTE != 0 => {
                            d.at(s.span(), format!("{path}.aggregation_interval"), "must be a whole number of minutes, at least 1m")
                        }
                        _ => {}
                    }
                }
                let mut features: Vec<AggregateFeature> = Vec::new();
                for (k, a) in aggs.get_ref().iter().enumerate() {
                    let fpath = format!("{path}.aggregations[{k}]");
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
                    let input = column_type(d, &a.column, format!("{fpath}.column"));
                    let window = d.duration(&a.window, &format!("{fpath}.window"));
                    let offset = a
                        .offset
                        .as_ref()
                        .map(|o| d.duration(o, &format!("{fpath}.offset")).map(|o| -o));
                    // A feature left out is not reported again where a service names it.
                    let (Some(function), Some(input), Some(window)) = (function, input, window)
                    else {
                        d.broken.insert(v.name.get_ref().clone());
                        continue;
                    };
                    let offset = match offset {
                        Some(None) => {
                            d.broken.insert(v.name.get_ref().clone());
                            continue;
                        }
                        Some(Some(o)) => o,
                        None => 0,
                    };
                    let result_type = match function.result_type(&input) {
                        Ok(t) => t,
                        Err(e) => {
                            d.at(a.function.span(), format!("{fpath}.function"), e);
                            d.broken.insert(v.name.get_ref().clone());
                            continue;
                        }
                    };
                    if let (StreamProcessingMode::TimeInterval, Some(iv)) = (mode, interval) {
                        if window % iv != 0 || offset % iv != 0 {
                            d.at(a.window.span(), format!("{fpath}.window"), format!("window and offset must be multiples of the aggregation_interval {}", duration::Human(iv)));
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
                    if features.iter().any(|f| f.name == name) {
                        d.at(
                            a.function.span(),
                            fpath.clone(),
                            format!("two aggregations are both named `{name}`; give one a name"),
                        );
                    }
                    features.push(AggregateFeature {
                        name,
                        column: a.column.get_ref().clone(),
                        function,
                        window,
                        offset,
                        input_type: input,
                        result_type,
                    });
                }
                Some(ViewKind::Aggregates {
                    mode,
                    aggregation_interval: interval,
                    features,
                })
            }
        };
        let Some(kind) = kind else {
            d.broken.insert(v.name.get_ref().clone());
            continue;
        };
        out.push(FeatureView {
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
        });
    }
    out
}

/// Tecton's default aggregate feature name: `{column}_{fn}_{window}_{interval}[_offset_{off}]`.
pub(crate) fn default_name(
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

fn services(raw: &RawRepo, views: &[FeatureView], d: &mut Diag<'_>) -> Vec<FeatureService> {
    d.unique(
        raw.feature_services
            .iter()
            .enumerate()
            .map(|(i, s)| (&s.name, format!("feature_services[{i}].name"))),
        "feature service",
    );
    let mut out = Vec::new();
    for (i, s) in raw.feature_services.iter().enumerate() {
        let mut served: Vec<ServedView> = Vec::new();
        for (k, f) in s.features.iter().enumerate() {
            let field = format!("feature_services[{i}].features[{k}]");
            let (view_name, feature) = match f.get_ref().split_once('.') {
                Some((v, feat)) => (v, Some(feat)),
                None => (f.get_ref().as_str(), None),
            };
            let Some(view) = views.iter().find(|v| v.name == view_name) else {
                if !d.broken.contains(view_name) && !d.broken.contains("feature_views[*]") {
                    d.at(
                        f.span(),
                        field,
                        format!("no feature view named `{view_name}`"),
                    );
                }
                continue;
            };
            let all: Vec<String> = view.features().into_iter().map(|(n, _)| n).collect();
            let selected = match feature {
                None => all,
                Some(feat) if all.iter().any(|n| n == feat) => vec![feat.to_owned()],
                Some(feat) => {
                    if !d.broken.contains(view_name) {
                        d.at(
                            f.span(),
                            field,
                            format!("feature view `{view_name}` has no feature `{feat}`"),
                        );
                    }
                    continue;
                }
            };
            match served.iter_mut().find(|sv| sv.view == view.name) {
                Some(sv) => sv.features.extend(selected),
                None => served.push(ServedView {
                    view: view.name.clone(),
                    features: selected,
                }),
            }
        }
        // Tecton serves views alphabetically and features alphabetically within a view.
        served.sort_by(|a, b| a.view.cmp(&b.view));
        for sv in &mut served {
            sv.features.sort();
            sv.features.dedup();
        }
        out.push(FeatureService {
            name: s.name.get_ref().clone(),
            views: served,
        });
    }
    out
}
