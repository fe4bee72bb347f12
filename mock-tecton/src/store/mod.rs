//! The online store (what the feature server reads) and the offline store (the event log that
//! point-in-time retrieval reads).
//!
//! Both are written synchronously by the ingest path before its 200 leaves. Neither takes a
//! global lock: the online store is a concurrent map per feature view, and the offline log's
//! in-memory tail is sharded by record sequence number; a background thread moves the tail to
//! Parquet files.

pub(crate) mod key;
mod offline;
mod online;

pub use offline::{
    encode_json, OfflineError, OfflineLog, OfflineRow, OfflineSettings, OfflineStats,
};
pub use online::{AttributeRow, OnlineEntry, OnlineStats, OnlineStore, StoreKey};

use crate::schema::Value;

/// One part of an entity key. Join keys are strings or integers, so keys hash and compare.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KeyPart {
    /// A String join key.
    Str(String),
    /// An Int64 or Int32 join key.
    Int(i64),
}

/// The join-key values of one entity, in the feature view's join-key order.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EntityKey(pub Vec<KeyPart>);

impl EntityKey {
    /// Builds a key from validated join-key values; `None` if a value is not a string or integer.
    pub fn from_values<'a>(values: impl IntoIterator<Item = &'a Value>) -> Option<EntityKey> {
        values
            .into_iter()
            .map(|v| match v {
                Value::String(s) => Some(KeyPart::Str(s.to_string())),
                Value::Int(i) => Some(KeyPart::Int(*i)),
                _ => None,
            })
            .collect::<Option<Vec<_>>>()
            .map(EntityKey)
    }

    /// The key as a JSON object `{join_key: value}` for dumps and reports.
    pub fn to_json(&self, names: &[String]) -> serde_json::Value {
        names
            .iter()
            .zip(&self.0)
            .map(|(n, p)| {
                let v = match p {
                    KeyPart::Str(s) => serde_json::Value::from(s.as_str()),
                    KeyPart::Int(i) => serde_json::Value::from(*i),
                };
                (n.clone(), v)
            })
            .collect::<serde_json::Map<_, _>>()
            .into()
    }
}
