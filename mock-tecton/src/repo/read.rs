//! Reading a repository file's TOML into its raw shape, reporting every shape mistake at once:
//! unknown fields (with the accepted ones), values of the wrong kind (with what is accepted),
//! missing required fields. A bad value is left out rather than guessed, and its path is
//! remembered so that later checks do not report its consequences again.

use std::ops::Range;

use toml::Spanned;
use toml_edit::{ImDocument, Item, Table, TableLike, Value};

use super::diag::Diag;
use super::model::{Role, StreamProcessingMode};
use super::raw::{
    RawAggregation, RawEntity, RawField, RawRepo, RawService, RawServiceAccount, RawSource,
    RawView, RawWorkspace,
};

type S<T> = Spanned<T>;

/// A node of the document: a top-level item, a value inside an array, or an `[[array]]` table.
#[derive(Clone, Copy)]
pub(super) enum Node<'a> {
    Item(&'a Item),
    Value(&'a Value),
    Table(&'a Table),
}

impl<'a> Node<'a> {
    pub(super) fn span(self) -> Option<Range<usize>> {
        match self {
            Node::Item(i) => i.span(),
            Node::Value(v) => v.span(),
            Node::Table(t) => t.span(),
        }
    }

    fn value(self) -> Option<&'a Value> {
        match self {
            Node::Item(Item::Value(v)) | Node::Value(v) => Some(v),
            _ => None,
        }
    }

    pub(super) fn table(self) -> Option<&'a dyn TableLike> {
        match self {
            Node::Item(i) => i.as_table_like(),
            Node::Value(Value::InlineTable(t)) => Some(t),
            Node::Table(t) => Some(t),
            Node::Value(_) => None,
        }
    }

    /// The elements of an array or an array of tables.
    fn elements(self) -> Option<Vec<Node<'a>>> {
        match self {
            Node::Item(Item::ArrayOfTables(a)) => Some(a.iter().map(Node::Table).collect()),
            _ => match self.value()? {
                Value::Array(a) => Some(a.iter().map(Node::Value).collect()),
                _ => None,
            },
        }
    }

    /// What the value is, for messages: `an integer (30)`.
    fn describe(self) -> String {
        match self {
            Node::Item(Item::Table(_)) | Node::Table(_) => "a table".into(),
            Node::Item(Item::ArrayOfTables(_)) => "an array of tables".into(),
            Node::Item(Item::None) => "nothing".into(),
            _ => match self.value() {
                Some(Value::String(s)) => format!("the string {:?}", s.value()),
                Some(Value::Integer(i)) => format!("an integer ({})", i.value()),
                Some(Value::Float(f)) => format!("a float ({})", f.value()),
                Some(Value::Boolean(b)) => format!("a boolean ({})", b.value()),
                Some(Value::Datetime(d)) => format!("a date-time ({})", d.value()),
                Some(Value::Array(_)) => "an array".into(),
                Some(Value::InlineTable(_)) => "a table".into(),
                None => "nothing".into(),
            },
        }
    }
}

/// What a field accepts, as messages say it.
const STRING: &str = "a string";
const NAME_LIST: &str = "an array of strings, e.g. [\"a\", \"b\"]";
const BOOL: &str = "true or false";
const DURATION: &str = "a duration string, e.g. \"30d\" or \"1h30m\"";
const TIMESTAMP: &str =
    "an RFC 3339 timestamp, as a string \"2024-01-01T00:00:00Z\" or a TOML date-time 2024-01-01T00:00:00Z";

/// Reads a table's fields, checking each is known and of the right kind.
pub(super) struct Fields<'d, 'a, 't> {
    pub(super) d: &'d mut Diag<'t>,
    pub(super) table: &'a dyn TableLike,
    pub(super) span: Option<Range<usize>>,
    pub(super) path: String,
}

impl<'a> Fields<'_, 'a, '_> {
    /// Reports every key not in `accepted`.
    pub(super) fn only(&mut self, accepted: &[&str]) {
        for (key, _) in self.table.iter() {
            if !accepted.contains(&key) {
                let span = self
                    .table
                    .key(key)
                    .and_then(|k| k.span())
                    .or_else(|| self.span.clone());
                self.d.at_opt(
                    span,
                    self.field(key),
                    format!("unknown field `{key}`; accepted: {}", accepted.join(", ")),
                );
            }
        }
    }

    pub(super) fn field(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    pub(super) fn node(&self, key: &str) -> Option<Node<'a>> {
        self.table.get(key).map(Node::Item)
    }

    /// Reports a field that must be present and is not.
    fn missing(&mut self, key: &str, accepted: &str) {
        let field = self.field(key);
        self.d.at_opt(
            self.span.clone(),
            field,
            format!("missing; expected {accepted}"),
        );
    }

    pub(super) fn wrong(&mut self, key: &str, node: Node<'_>, accepted: &str) {
        let field = self.field(key);
        self.d.at_opt(
            node.span().or_else(|| self.span.clone()),
            field,
            format!("expected {accepted}, found {}", node.describe()),
        );
    }

    /// An optional string; `Err` when present but not a string (already reported).
    fn string(&mut self, key: &str, accepted: &str) -> Result<Option<S<String>>, ()> {
        let Some(node) = self.node(key) else {
            return Ok(None);
        };
        match node.value().and_then(Value::as_str) {
            Some(s) => Ok(Some(spanned(node, s.to_owned()))),
            None => {
                self.wrong(key, node, accepted);
                Err(())
            }
        }
    }

    pub(super) fn opt_string(&mut self, key: &str, accepted: &str) -> Option<S<String>> {
        self.string(key, accepted).ok().flatten()
    }

    pub(super) fn required_string(&mut self, key: &str) -> Option<S<String>> {
        match self.string(key, STRING) {
            Ok(Some(s)) => Some(s),
            Ok(None) => {
                self.missing(key, STRING);
                None
            }
            Err(()) => None,
        }
    }

    /// A timestamp: a string, or a TOML offset date-time turned into its RFC 3339 text.
    fn timestamp(&mut self, key: &str) -> Option<S<String>> {
        let node = self.node(key)?;
        match node.value() {
            Some(Value::String(s)) => Some(spanned(node, s.value().clone())),
            Some(Value::Datetime(dt)) => {
                let dt = dt.value();
                match (dt.date, dt.time, dt.offset) {
                    (Some(_), Some(_), Some(_)) => Some(spanned(node, dt.to_string())),
                    _ => {
                        let field = self.field(key);
                        self.d.at_opt(
                            node.span(),
                            field,
                            format!("the date-time {dt} has no date, time or time zone; expected {TIMESTAMP}"),
                        );
                        None
                    }
                }
            }
            _ => {
                self.wrong(key, node, TIMESTAMP);
                None
            }
        }
    }

    fn bool(&mut self, key: &str, default: bool) -> bool {
        self.opt_bool(key).map_or(default, |b| *b.get_ref())
    }

    fn opt_bool(&mut self, key: &str) -> Option<S<bool>> {
        let node = self.node(key)?;
        match node.value().and_then(Value::as_bool) {
            Some(b) => Some(spanned(node, b)),
            None => {
                self.wrong(key, node, BOOL);
                None
            }
        }
    }

    /// An array of strings; a bad element is reported and left out.
    fn names(&mut self, key: &str) -> Option<S<Vec<S<String>>>> {
        let node = self.node(key)?;
        let Some(elements) = node.elements() else {
            self.wrong(key, node, NAME_LIST);
            return None;
        };
        let mut out = Vec::new();
        for (i, e) in elements.into_iter().enumerate() {
            match e.value().and_then(Value::as_str) {
                Some(s) => out.push(spanned(e, s.to_owned())),
                None => self.wrong(&format!("{key}[{i}]"), e, STRING),
            }
        }
        Some(spanned(node, out))
    }

    fn required_names(&mut self, key: &str) -> Option<S<Vec<S<String>>>> {
        if self.node(key).is_none() {
            self.missing(key, NAME_LIST);
            return None;
        }
        self.names(key)
    }

    /// The elements of an array of tables (`[[key]]` or `key = [{...}]`), each read by `read`.
    fn tables<T>(
        &mut self,
        key: &str,
        read: impl Fn(&mut Fields<'_, '_, '_>) -> Option<T>,
    ) -> Option<S<Vec<T>>> {
        let node = self.node(key)?;
        let Some(elements) = node.elements() else {
            self.wrong(key, node, "an array of tables");
            return None;
        };
        let mut out = Vec::new();
        for (i, e) in elements.into_iter().enumerate() {
            let path = format!("{}[{i}]", self.field(key));
            let Some(table) = e.table() else {
                self.d.at_opt(
                    e.span().or_else(|| node.span()),
                    path,
                    format!("expected a table, found {}", e.describe()),
                );
                continue;
            };
            let mut fields = Fields {
                d: &mut *self.d,
                table,
                span: e.span().or_else(|| node.span()),
                path,
            };
            match read(&mut fields) {
                Some(t) => out.push(t),
                // References to it must not be reported as dangling too.
                // Without a readable name, any unresolved reference may be to it.
                None => {
                    let name = table.get("name").and_then(|n| n.as_str());
                    self.d
                        .broken
                        .insert(name.map_or_else(|| format!("{key}[*]"), str::to_owned));
                }
            }
        }
        Some(spanned(node, out))
    }
}

fn spanned<T>(node: Node<'_>, value: T) -> S<T> {
    S::new(node.span().unwrap_or(0..0), value)
}

fn list<T>(tables: Option<S<Vec<T>>>) -> Vec<T> {
    tables.map(S::into_inner).unwrap_or_default()
}

/// Parses `text` and reads its shape, or reports why it cannot be read.
pub(super) fn read(text: &str, d: &mut Diag<'_>) -> Option<RawRepo> {
    let doc = match ImDocument::parse(text) {
        Ok(doc) => doc,
        Err(e) => {
            let message = e.message().trim().replace('\n', "; ");
            d.at_opt(
                e.span(),
                String::new(),
                format!("not valid TOML: {message}"),
            );
            return None;
        }
    };
    let root: &Table = doc.as_table();
    let mut f = Fields {
        d,
        table: root,
        span: Some(0..0),
        path: String::new(),
    };
    f.only(&[
        "workspaces",
        "service_accounts",
        "entities",
        "push_sources",
        "stream_sources",
        "feature_views",
        "feature_services",
    ]);
    Some(RawRepo {
        workspaces: list(f.tables("workspaces", workspace)),
        service_accounts: list(f.tables("service_accounts", account)),
        entities: list(f.tables("entities", entity)),
        push_sources: list(f.tables("push_sources", source)),
        stream_sources: list(f.tables("stream_sources", source)),
        feature_views: list(f.tables("feature_views", view)),
        feature_services: list(f.tables("feature_services", service)),
    })
}

fn workspace(f: &mut Fields<'_, '_, '_>) -> Option<RawWorkspace> {
    f.only(&["name", "live"]);
    let live = f.bool("live", true);
    Some(RawWorkspace {
        name: f.required_string("name")?,
        live,
    })
}

fn account(f: &mut Fields<'_, '_, '_>) -> Option<RawServiceAccount> {
    f.only(&["name", "api_key", "roles"]);
    let name = f.required_string("name");
    let api_key = f.required_string("api_key");
    let mut roles = Vec::new();
    const ROLES: &str = "a role (\"editor\", \"viewer\" or \"consumer\") or an array of roles";
    if let Some(node) = f.node("roles") {
        match node.table() {
            None => f.wrong(
                "roles",
                node,
                "a table of workspace = role, e.g. { prod = \"editor\" }",
            ),
            Some(table) => {
                for (ws, item) in table.iter() {
                    let node = Node::Item(item);
                    let key = format!("roles.{ws}");
                    let one = |n: Node<'_>| n.value().and_then(Value::as_str).and_then(role);
                    let list = match (one(node), node.elements()) {
                        (Some(r), _) => Some(vec![r]),
                        (None, Some(elements)) => elements.into_iter().map(one).collect(),
                        (None, None) => None,
                    };
                    match list {
                        Some(list) => roles.push((ws.to_owned(), spanned(node, list))),
                        None => f.wrong(&key, node, ROLES),
                    }
                }
            }
        }
    }
    Some(RawServiceAccount {
        name: name?,
        api_key: api_key?,
        roles,
    })
}

fn role(s: &str) -> Option<Role> {
    match s {
        "editor" => Some(Role::Editor),
        "viewer" => Some(Role::Viewer),
        "consumer" => Some(Role::Consumer),
        _ => None,
    }
}

fn field(f: &mut Fields<'_, '_, '_>) -> Option<RawField> {
    f.only(&["name", "type"]);
    let name = f.required_string("name");
    let ty = f.required_string("type");
    Some(RawField {
        name: name?,
        ty: ty?,
    })
}

fn entity(f: &mut Fields<'_, '_, '_>) -> Option<RawEntity> {
    f.only(&["name", "join_keys"]);
    let name = f.required_string("name");
    let join_keys = match f.tables("join_keys", field) {
        Some(keys) => keys.into_inner(),
        None => {
            if f.node("join_keys").is_none() {
                f.missing("join_keys", "an array of { name, type } tables");
            }
            Vec::new()
        }
    };
    Some(RawEntity {
        name: name?,
        join_keys,
    })
}

fn source(f: &mut Fields<'_, '_, '_>) -> Option<RawSource> {
    f.only(&[
        "name",
        "schema",
        "schema_from",
        "timestamp_field",
        "log_offline",
        "topic",
        "watermark_delay_threshold",
        "deduplication_columns",
        "trigger_interval",
        "batch_config",
    ]);
    let name = f.required_string("name");
    let schema = list(f.tables("schema", field));
    // Fields left out for a bad type are not reported again where views use them.
    if let (Some(name), Some(all)) = (&name, f.node("schema").and_then(Node::elements)) {
        for e in all {
            let field = e
                .table()
                .and_then(|t| t.get("name"))
                .and_then(|n| n.as_str());
            if let Some(field) = field.filter(|n| !schema.iter().any(|k| k.name.get_ref() == n)) {
                f.d.broken.insert(format!("{}.{field}", name.get_ref()));
            }
        }
    }
    Some(RawSource {
        schema,
        schema_from: f.opt_string("schema_from", STRING),
        timestamp_field: f.opt_string("timestamp_field", STRING),
        log_offline: f.opt_bool("log_offline"),
        topic: f.opt_string("topic", STRING),
        watermark_delay_threshold: f.opt_string("watermark_delay_threshold", DURATION),
        trigger_interval: f.opt_string("trigger_interval", DURATION),
        batch_config: super::batch::read(f),
        deduplication_columns: f
            .names("deduplication_columns")
            .map(S::into_inner)
            .unwrap_or_default(),
        name: name?,
    })
}

fn view(f: &mut Fields<'_, '_, '_>) -> Option<RawView> {
    f.only(&[
        "name",
        "sources",
        "entities",
        "timestamp_field",
        "online",
        "offline",
        "feature_start_time",
        "batch_schedule",
        "stream_processing_mode",
        "aggregation_interval",
        "aggregations",
        "attributes",
        "ttl",
    ]);
    let name = f.required_string("name");
    let sources = f.required_names("sources");
    let entities = f.required_names("entities");
    const MODES: &str = "\"CONTINUOUS\" or \"TIME_INTERVAL\"";
    let mode = match f.string("stream_processing_mode", MODES) {
        Ok(Some(m)) => match m.get_ref().as_str() {
            "CONTINUOUS" => Some(S::new(m.span(), StreamProcessingMode::Continuous)),
            "TIME_INTERVAL" => Some(S::new(m.span(), StreamProcessingMode::TimeInterval)),
            other => {
                let field = f.field("stream_processing_mode");
                f.d.at_opt(
                    Some(m.span()),
                    field,
                    format!("unknown mode `{other}`; expected {MODES}"),
                );
                None
            }
        },
        _ => None,
    };
    let raw = RawView {
        timestamp_field: f.opt_string("timestamp_field", STRING),
        online: f.bool("online", true),
        offline: f.bool("offline", true),
        feature_start_time: f.timestamp("feature_start_time"),
        batch_schedule: f.opt_string("batch_schedule", DURATION),
        stream_processing_mode: mode,
        aggregation_interval: f.opt_string("aggregation_interval", DURATION),
        aggregations: f.tables("aggregations", aggregation),
        attributes: f.names("attributes"),
        ttl: f.opt_string("ttl", DURATION),
        name: name.clone()?,
        sources: sources?,
        entities: entities?,
    };
    Some(raw)
}

fn aggregation(f: &mut Fields<'_, '_, '_>) -> Option<RawAggregation> {
    f.only(&["column", "function", "window", "offset", "name"]);
    let column = f.required_string("column");
    let function = f.required_string("function");
    let window = match f.string("window", DURATION) {
        Ok(Some(w)) => Some(w),
        Ok(None) => {
            f.missing("window", DURATION);
            None
        }
        Err(()) => None,
    };
    Some(RawAggregation {
        offset: f.opt_string("offset", DURATION),
        name: f.opt_string("name", STRING),
        column: column?,
        function: function?,
        window: window?,
    })
}

fn service(f: &mut Fields<'_, '_, '_>) -> Option<RawService> {
    f.only(&["name", "features"]);
    let name = f.required_string("name");
    let features = f.required_names("features");
    Some(RawService {
        name: name?,
        features: features?.into_inner(),
    })
}
