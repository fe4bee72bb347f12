//! The shape of an ingest request: `/ingest` (snake_case, each record wrapped in
//! `{"record": …}`) and `/v2/ingest` (camelCase; records wrapped or bare).

use serde_json::{Map, Value as Json};

use super::IngestError;

/// Which ingest path a request came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// `POST /ingest`: `workspace_name`, `dry_run`, `records`.
    V1,
    /// `POST /v2/ingest`: `workspaceName`, `dryRun`, `records`.
    V2,
}

impl Dialect {
    pub(super) fn names(self) -> [&'static str; 3] {
        match self {
            Dialect::V1 => ["workspace_name", "dry_run", "records"],
            Dialect::V2 => ["workspaceName", "dryRun", "records"],
        }
    }
}

/// A structurally valid ingest request; records are not yet checked against schemas.
#[derive(Debug)]
pub struct IngestRequest {
    /// The workspace.
    pub workspace: String,
    /// Validate only.
    pub dry_run: bool,
    /// Records per push source, in request order.
    pub records: Vec<(String, Vec<Map<String, Json>>)>,
}

/// Checks the request envelope.
pub fn parse(body: Json, dialect: Dialect) -> Result<IngestRequest, IngestError> {
    let [ws_key, dry_key, rec_key] = dialect.names();
    let Json::Object(mut top) = body else {
        return Err(IngestError::Invalid(
            "The request body must be a JSON object".into(),
        ));
    };
    // Missing fields are reported in the order Tecton's docs list them.
    for key in [ws_key, dry_key, rec_key] {
        if !top.contains_key(key) {
            return Err(IngestError::Invalid(format!(
                "Required field `{key}` is missing in the request"
            )));
        }
    }
    if let Some(extra) = top
        .keys()
        .find(|k| ![ws_key, dry_key, rec_key].contains(&k.as_str()))
    {
        return Err(IngestError::Invalid(format!(
            "Unknown field `{}` in the request; expected `{ws_key}`, `{dry_key}` and `{rec_key}`",
            extra.chars().take(64).collect::<String>()
        )));
    }
    let workspace = match top.remove(ws_key) {
        Some(Json::String(s)) if !s.is_empty() => s,
        _ => {
            return Err(IngestError::Invalid(format!(
                "Field `{ws_key}` must be a non-empty string"
            )))
        }
    };
    let dry_run = match top.remove(dry_key) {
        Some(Json::Bool(b)) => b,
        _ => {
            return Err(IngestError::Invalid(format!(
                "Field `{dry_key}` must be a boolean"
            )))
        }
    };
    let Some(Json::Object(sources)) = top.remove(rec_key) else {
        return Err(IngestError::Invalid(format!(
            "Field `{rec_key}` must be an object mapping push source names to arrays of records"
        )));
    };
    if sources.is_empty() {
        return Err(IngestError::Invalid(format!(
            "Field `{rec_key}` names no push source"
        )));
    }
    let mut records = Vec::with_capacity(sources.len());
    for (source, list) in sources {
        let Json::Array(items) = list else {
            return Err(IngestError::Invalid(format!(
                "`{rec_key}.{source}` must be an array of records"
            )));
        };
        if items.is_empty() {
            return Err(IngestError::Invalid(format!(
                "`{rec_key}.{source}` has no records"
            )));
        }
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.into_iter().enumerate() {
            out.push(unwrap_record(item, dialect).ok_or_else(|| {
                IngestError::Invalid(match dialect {
                    Dialect::V1 => format!("`{rec_key}.{source}[{i}]` must be an object of the form {{\"record\": {{...}}}}"),
                    Dialect::V2 => format!("`{rec_key}.{source}[{i}]` must be a record object"),
                })
            })?);
        }
        records.push((source, out));
    }
    Ok(IngestRequest {
        workspace,
        dry_run,
        records,
    })
}

fn unwrap_record(item: Json, dialect: Dialect) -> Option<Map<String, Json>> {
    let Json::Object(mut obj) = item else {
        return None;
    };
    let wrapped = obj.len() == 1 && obj.get("record").is_some_and(Json::is_object);
    match (dialect, wrapped) {
        (_, true) => match obj.remove("record") {
            Some(Json::Object(r)) => Some(r),
            _ => None,
        },
        // The two v2 samples in Tecton's docs disagree on wrapping, so v2 takes both.
        (Dialect::V2, false) => Some(obj),
        (Dialect::V1, false) => None,
    }
}
