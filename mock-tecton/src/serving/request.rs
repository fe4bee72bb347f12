//! Reading feature server requests. Tecton's feature server parses protobuf JSON, which accepts
//! both the lowerCamelCase and the original snake_case name of every field, and clients really
//! send both (the Python client camelCase, the Java client snake_case), so both are read here.

use serde_json::{Map, Value as Json};

use super::ServingError;

/// Which metadata the caller asked for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MetadataOptions {
    /// `includeNames`.
    pub names: bool,
    /// `includeEffectiveTimes`.
    pub effective_times: bool,
    /// `includeDataTypes` (or the legacy `includeTypes`).
    pub data_types: bool,
    /// `includeSloInfo`.
    pub slo_info: bool,
    /// `includeServingStatus`.
    pub serving_status: bool,
}

impl MetadataOptions {
    /// Whether any per-feature metadata was asked for.
    pub(crate) fn any_feature_metadata(&self) -> bool {
        self.names || self.effective_times || self.data_types || self.serving_status
    }
}

/// The parameters of get-features, get-features-batch, query-features and metadata.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Params {
    /// `featureServiceName`.
    pub feature_service: Option<String>,
    /// `workspaceName`.
    pub workspace: Option<String>,
    /// `joinKeyMap` (`null` reads as empty).
    pub join_keys: Map<String, Json>,
    /// `requestData[]` of a batch request: one join-key map per row.
    pub rows: Vec<Map<String, Json>>,
    /// `metadataOptions`.
    pub metadata: MetadataOptions,
    /// `requestOptions.coerceNullCountsToZero`.
    pub coerce_null_counts: bool,
}

/// A field by either of its names.
fn field<'a>(obj: &'a Map<String, Json>, camel: &str, snake: &str) -> Option<&'a Json> {
    obj.get(camel)
        .or_else(|| obj.get(snake))
        .filter(|v| !v.is_null())
}

fn flag(obj: &Map<String, Json>, camel: &str, snake: &str) -> Result<bool, ServingError> {
    match field(obj, camel, snake) {
        None => Ok(false),
        Some(Json::Bool(b)) => Ok(*b),
        Some(_) => Err(ServingError::invalid(format!(
            "`{camel}` must be a boolean"
        ))),
    }
}

fn object(
    obj: &Map<String, Json>,
    camel: &str,
    snake: &str,
) -> Result<Map<String, Json>, ServingError> {
    match field(obj, camel, snake) {
        None => Ok(Map::new()),
        Some(Json::Object(m)) => Ok(m.clone()),
        Some(_) => Err(ServingError::invalid(format!(
            "`{camel}` must be an object"
        ))),
    }
}

fn string(
    obj: &Map<String, Json>,
    camel: &str,
    snake: &str,
) -> Result<Option<String>, ServingError> {
    match field(obj, camel, snake) {
        None => Ok(None),
        Some(Json::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ServingError::invalid(format!("`{camel}` must be a string"))),
    }
}

/// Reads `{"params": {...}}`. Unknown fields are ignored, as protobuf JSON parsing with
/// `ignore_unknown_fields` does, since newer clients send options older servers lack.
pub fn parse(body: &Json) -> Result<Params, ServingError> {
    let Some(params) = body.get("params") else {
        return Err(ServingError::invalid("Missing required field `params`"));
    };
    let Json::Object(p) = params else {
        return Err(ServingError::invalid("`params` must be an object"));
    };
    let metadata = object(p, "metadataOptions", "metadata_options")?;
    let options = object(p, "requestOptions", "request_options")?;
    let mut rows = Vec::new();
    if let Some(data) = field(p, "requestData", "request_data") {
        let Json::Array(items) = data else {
            return Err(ServingError::invalid("`requestData` must be an array"));
        };
        for (i, item) in items.iter().enumerate() {
            let Json::Object(row) = item else {
                return Err(ServingError::invalid(format!(
                    "`requestData[{i}]` must be an object"
                )));
            };
            rows.push(object(row, "joinKeyMap", "join_key_map")?);
        }
    }
    Ok(Params {
        feature_service: string(p, "featureServiceName", "feature_service_name")?,
        workspace: string(p, "workspaceName", "workspace_name")?,
        join_keys: object(p, "joinKeyMap", "join_key_map")?,
        rows,
        metadata: MetadataOptions {
            names: flag(&metadata, "includeNames", "include_names")?,
            effective_times: flag(
                &metadata,
                "includeEffectiveTimes",
                "include_effective_times",
            )?,
            data_types: flag(&metadata, "includeDataTypes", "include_data_types")?
                || flag(&metadata, "includeTypes", "include_types")?,
            slo_info: flag(&metadata, "includeSloInfo", "include_slo_info")?,
            serving_status: flag(&metadata, "includeServingStatus", "include_serving_status")?,
        },
        coerce_null_counts: flag(
            &options,
            "coerceNullCountsToZero",
            "coerce_null_counts_to_zero",
        )?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn both_casings_and_null_maps() {
        let camel = parse(&json!({"params": {"featureServiceName": "fs", "workspaceName": "prod", "joinKeyMap": {"user_id": "u1"}, "requestContextMap": null, "metadataOptions": {"includeNames": true}}})).unwrap();
        let snake = parse(&json!({"params": {"feature_service_name": "fs", "workspace_name": "prod", "join_key_map": {"user_id": "u1"}, "request_context_map": null, "metadata_options": {"include_names": true}}})).unwrap();
        assert_eq!(camel, snake);
        assert!(camel.metadata.names && !camel.metadata.data_types);
        let nulls =
            parse(&json!({"params": {"featureServiceName": "fs", "joinKeyMap": null}})).unwrap();
        assert!(nulls.join_keys.is_empty());
    }

    #[test]
    fn wrong_shapes_are_invalid_arguments() {
        assert_eq!(parse(&json!({})).unwrap_err().code(), 3);
        assert!(parse(&json!({"params": {"joinKeyMap": [1]}})).is_err());
        assert!(parse(&json!({"params": {"metadataOptions": {"includeNames": "yes"}}})).is_err());
    }
}
