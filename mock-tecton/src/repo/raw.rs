//! The raw shape of a repository file, as [`super::read`] builds it from TOML: every value has
//! the right kind and keeps its byte span for error positions; what the values mean is checked
//! by [`super::load`].

use toml::Spanned;

use super::model::{Role, StreamProcessingMode};

pub(super) type S<T> = Spanned<T>;

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
