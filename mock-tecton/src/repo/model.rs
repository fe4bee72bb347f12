//! The validated objects of a repository. Everything here has passed [`super::load`]'s checks:
//! references resolve, types parse, and names are unique.

use std::collections::HashMap;

use crate::engine::AggregateFunction;
use crate::schema::{DataType, Schema};

/// A validated feature repository.
#[derive(Debug, Clone)]
pub struct Repository {
    /// Workspaces the repository is applied to.
    pub workspaces: Vec<Workspace>,
    /// Service accounts and their keys.
    pub service_accounts: Vec<ServiceAccount>,
    /// Entities with their join keys.
    pub entities: Vec<Entity>,
    /// Push sources (written through the Stream Ingest API).
    pub push_sources: Vec<PushSource>,
    /// Stream sources (the Kafka + Spark pattern).
    pub stream_sources: Vec<StreamSource>,
    /// Stream feature views.
    pub feature_views: Vec<FeatureView>,
    /// Feature services.
    pub feature_services: Vec<FeatureService>,
    /// The sources' batch sources (`batch_config`), in source order.
    pub batch_sources: Vec<super::BatchSource>,
}

impl Repository {
    /// A workspace by name.
    pub fn workspace(&self, name: &str) -> Option<&Workspace> {
        self.workspaces.iter().find(|w| w.name == name)
    }

    /// The service account that owns an API key.
    pub fn account_for_key(&self, key: &str) -> Option<&ServiceAccount> {
        self.service_accounts.iter().find(|a| a.api_key == key)
    }

    /// A push source by name.
    pub fn push_source(&self, name: &str) -> Option<&PushSource> {
        self.push_sources.iter().find(|s| s.name == name)
    }

    /// A feature view by name.
    pub fn feature_view(&self, name: &str) -> Option<&FeatureView> {
        self.feature_views.iter().find(|v| v.name == name)
    }

    /// A feature service by name.
    pub fn feature_service(&self, name: &str) -> Option<&FeatureService> {
        self.feature_services.iter().find(|s| s.name == name)
    }

    /// Indices of the feature views that read from `source`, in repository order.
    pub fn views_of_source(&self, source: &str) -> Vec<usize> {
        self.feature_views
            .iter()
            .enumerate()
            .filter(|(_, v)| v.sources.iter().any(|s| s == source))
            .map(|(i, _)| i)
            .collect()
    }
}

/// A workspace. Only a live workspace accepts writes that are not `dry_run`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workspace {
    /// Its name.
    pub name: String,
    /// Live workspaces materialize features; development workspaces only validate.
    pub live: bool,
}

/// What a service account may do in one workspace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Ingest, dry-run, and read features.
    Editor,
    /// Dry-run ingest only.
    Viewer,
    /// Read features only.
    Consumer,
}

impl Role {
    /// Whether this role may write records (not a dry run).
    pub fn may_write(self) -> bool {
        self == Role::Editor
    }

    /// Whether this role may validate records with `dry_run`.
    pub fn may_dry_run(self) -> bool {
        matches!(self, Role::Editor | Role::Viewer)
    }

    /// Whether this role may read features from the feature server.
    pub fn may_read_features(self) -> bool {
        matches!(self, Role::Editor | Role::Consumer)
    }
}

/// A service account: a named API key with roles per workspace.
#[derive(Debug, Clone)]
pub struct ServiceAccount {
    /// Its name; the journal records this, never the key.
    pub name: String,
    /// The key sent as `Authorization: Tecton-key <key>`.
    pub api_key: String,
    /// Roles by workspace name.
    pub roles: HashMap<String, Vec<Role>>,
}

impl ServiceAccount {
    /// Whether any of the account's roles in `workspace` satisfies `allowed`.
    pub fn can(&self, workspace: &str, allowed: impl Fn(Role) -> bool) -> bool {
        self.roles
            .get(workspace)
            .is_some_and(|roles| roles.iter().copied().any(allowed))
    }
}

/// An entity and its join keys.
#[derive(Debug, Clone)]
pub struct Entity {
    /// Its name.
    pub name: String,
    /// Join keys with their types, in order.
    pub join_keys: Vec<(String, DataType)>,
}

/// A push source: records arrive through the Stream Ingest API.
#[derive(Debug, Clone)]
pub struct PushSource {
    /// Its name, used as the key of `records` in ingest requests.
    pub name: String,
    /// The record schema.
    pub schema: Schema,
    /// The event-time field (a `Timestamp`).
    pub timestamp_field: String,
    /// Whether records are also logged to the offline store.
    pub log_offline: bool,
}

/// A stream source for the Kafka + Spark Structured Streaming pattern.
#[derive(Debug, Clone)]
pub struct StreamSource {
    /// Its name.
    pub name: String,
    /// The topic it reads.
    pub topic: String,
    /// The record schema.
    pub schema: Schema,
    /// The event-time field.
    pub timestamp_field: String,
    /// How late an event may be before Spark may drop it (default 24h).
    pub watermark_delay_threshold: i64,
    /// Columns that identify duplicates, if any.
    pub deduplication_columns: Vec<String>,
    /// The micro-batch trigger interval of its stream jobs (ns), replacing the defaults.
    pub trigger_interval: Option<i64>,
}

/// How a stream feature view turns events into aggregates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StreamProcessingMode {
    /// Every event is written; windows are computed at request time.
    Continuous,
    /// Events are folded into epoch-aligned tiles of `aggregation_interval`.
    TimeInterval,
}

/// A stream feature view.
#[derive(Debug, Clone)]
pub struct FeatureView {
    /// Its name, the namespace of its features.
    pub name: String,
    /// A stable 32-hex-digit id, as Tecton reports in `featureViewId`.
    pub id: String,
    /// The sources it reads (push and/or stream sources with the same columns).
    pub sources: Vec<String>,
    /// The join keys of its entities, in order, with their types.
    pub join_keys: Vec<(String, DataType)>,
    /// The event-time field in its sources.
    pub timestamp_field: String,
    /// Whether features are written to the online store.
    pub online: bool,
    /// Whether features are written to the offline store.
    pub offline: bool,
    /// Before this time every feature is null and no event is materialized.
    pub feature_start_time: Option<i64>,
    /// Batch materialization cadence.
    pub batch_schedule: Option<i64>,
    /// Attributes or aggregates.
    pub kind: ViewKind,
}

impl FeatureView {
    /// The output features with their types, in the order Tecton serves them (alphabetical
    /// within a view).
    pub fn features(&self) -> Vec<(String, DataType)> {
        let mut out: Vec<(String, DataType)> = match &self.kind {
            ViewKind::Attributes { attributes, .. } => attributes
                .iter()
                .map(|a| (a.name.clone(), a.data_type.clone()))
                .collect(),
            ViewKind::Aggregates { features, .. } => features
                .iter()
                .map(|f| (f.name.clone(), f.result_type.clone()))
                .collect(),
        };
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// The source columns this view stores per event, each once, in first-use order: the
    /// attribute columns, or the distinct columns its aggregations read.
    pub fn input_columns(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        let columns: Vec<&str> = match &self.kind {
            ViewKind::Attributes { attributes, .. } => {
                attributes.iter().map(|a| a.column.as_str()).collect()
            }
            ViewKind::Aggregates { features, .. } => {
                features.iter().map(|f| f.column.as_str()).collect()
            }
        };
        for c in columns {
            if !out.contains(&c) {
                out.push(c);
            }
        }
        out
    }

    /// What the engine needs to aggregate this view, or `None` for an attribute view.
    /// Aggregations are in declaration order; each reads its column from
    /// [`FeatureView::input_columns`].
    pub fn series_spec(&self) -> Option<crate::engine::SeriesSpec> {
        use crate::engine::{Aggregation, Mode, SeriesSpec};
        let ViewKind::Aggregates {
            mode,
            aggregation_interval,
            features,
        } = &self.kind
        else {
            return None;
        };
        let inputs = self.input_columns();
        Some(SeriesSpec {
            mode: match mode {
                StreamProcessingMode::Continuous => Mode::Continuous,
                // Validation guarantees an interval for TIME_INTERVAL views.
                StreamProcessingMode::TimeInterval => Mode::TimeInterval {
                    interval: aggregation_interval.unwrap_or(crate::duration::MINUTE),
                },
            },
            aggregations: features
                .iter()
                .map(|f| Aggregation {
                    function: f.function,
                    input_type: f.input_type.clone(),
                    window: f.window,
                    offset: f.offset,
                    input: inputs
                        .iter()
                        .position(|c| *c == f.column)
                        .unwrap_or(usize::MAX),
                })
                .collect(),
            feature_start_time: self.feature_start_time,
        })
    }

    /// The serving TTL of an attribute view, if any.
    pub fn ttl(&self) -> Option<i64> {
        match &self.kind {
            ViewKind::Attributes { ttl, .. } => *ttl,
            ViewKind::Aggregates { .. } => None,
        }
    }
}

/// The two kinds of stream feature view.
#[derive(Debug, Clone)]
pub enum ViewKind {
    /// Latest values of some columns, valid for `ttl`.
    Attributes {
        /// The attribute features.
        attributes: Vec<Attribute>,
        /// Values older than this are not served; `None` keeps them until overwritten.
        ttl: Option<i64>,
    },
    /// Time-window aggregations.
    Aggregates {
        /// CONTINUOUS or TIME_INTERVAL.
        mode: StreamProcessingMode,
        /// Tile size; required for TIME_INTERVAL.
        aggregation_interval: Option<i64>,
        /// The aggregate features.
        features: Vec<AggregateFeature>,
    },
}

/// An attribute feature: a source column served as is.
#[derive(Debug, Clone)]
pub struct Attribute {
    /// The feature name (the column's name).
    pub name: String,
    /// The source column.
    pub column: String,
    /// Its type.
    pub data_type: DataType,
}

/// A time-window aggregate feature.
#[derive(Debug, Clone)]
pub struct AggregateFeature {
    /// The feature name (explicit, or Tecton's default like `amt_sum_1h_continuous`).
    pub name: String,
    /// The source column aggregated.
    pub column: String,
    /// The function.
    pub function: AggregateFunction,
    /// The window length.
    pub window: i64,
    /// The window offset, `<= 0` (a window that ends before the request time).
    pub offset: i64,
    /// The input column's type.
    pub input_type: DataType,
    /// The feature's type.
    pub result_type: DataType,
}

/// A feature service: the features served together.
#[derive(Debug, Clone)]
pub struct FeatureService {
    /// Its name.
    pub name: String,
    /// Feature views served, with the selected features of each (all by default).
    pub views: Vec<ServedView>,
}

/// One feature view as served by a feature service.
#[derive(Debug, Clone)]
pub struct ServedView {
    /// The feature view's name.
    pub view: String,
    /// Selected feature names, in serving order.
    pub features: Vec<String>,
}
