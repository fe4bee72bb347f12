//! Tecton's Stream Ingest API: `POST /ingest` and `POST /v2/ingest`.
//!
//! A request is checked in this order, and the first failure answers: the key (401), the body
//! size (413, in the server), the JSON (400), the envelope (400), the workspace (404), the key's
//! role (403), the workspace being live (400), each push source (404), the per-source record
//! limit (400), then every record against its schema and its feature views' TTLs (400 with
//! `recordErrors`). Only a request with no error writes anything, and it writes the online and
//! offline stores before the 200 is returned.

mod apply;
mod error;
mod fast;
mod plan;
mod request;

use std::borrow::Cow;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

pub use apply::{Applied, Applier, Event, UnknownSource, NO_REQUEST};
pub(crate) use error::request_error;
pub use error::{IngestError, RecordError};
pub use plan::{IngestPlan, Subscription};
pub use request::{parse as parse_request, Dialect, IngestRequest};

use crate::decisions::error_type;
use crate::duration::Human;
use crate::faults::FaultAction;
use crate::repo::{Repository, Role, ServiceAccount};
use crate::schema::{format_rfc3339, validate_record, Field, Schema, Value};
use crate::store::{OfflineLog, OfflineRow, OnlineStore, StoreKey};

/// What the ingest path needs from the mock.
#[derive(Debug)]
pub struct IngestContext<'a> {
    /// The repository.
    pub repo: &'a Repository,
    /// Precomputed routing of sources to views.
    pub plan: &'a IngestPlan,
    /// The online store.
    pub online: &'a OnlineStore,
    /// The offline log.
    pub offline: &'a OfflineLog,
    /// Record sequence numbers.
    pub record_seq: &'a AtomicU64,
    /// Max records per push source per request.
    pub records_per_source: usize,
    /// Mock time now.
    pub now: i64,
    /// Journal sequence number of this request.
    pub request_seq: u64,
    /// A schema drift fault in force for this request, if any.
    pub drift: Option<&'a FaultAction>,
    /// Refuse records outside a view's serving TTL (the Stream Ingest API does; a backfill of
    /// history, like a batch source, does not).
    pub check_ttl: bool,
}

impl IngestContext<'_> {
    /// The schema records of `source` are checked against: the source's own, or as changed by
    /// a schema drift fault.
    fn schema_for(&self, source: usize) -> Cow<'_, Schema> {
        let schema = &self.repo.push_sources[source].schema;
        let Some(FaultAction::SchemaDrift {
            add,
            remove,
            retype,
        }) = self.drift
        else {
            return Cow::Borrowed(schema);
        };
        let mut drifted = schema.clone();
        drifted.fields.retain(|f| !remove.contains(&f.name));
        for change in retype {
            if let (Some(f), Ok(t)) = (
                drifted.fields.iter_mut().find(|f| f.name == change.name),
                change.data_type.parse(),
            ) {
                f.data_type = t;
            }
        }
        for new in add {
            if let Ok(t) = new.data_type.parse() {
                drifted.fields.push(Field {
                    name: new.name.clone(),
                    data_type: t,
                    nullable: false,
                });
            }
        }
        Cow::Owned(drifted)
    }
}

/// The documented success body.
#[derive(Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct IngestResponse {
    /// The workspace written.
    pub workspace_name: String,
    /// Counts per feature view.
    pub ingest_metrics: IngestMetrics,
}

/// `ingestMetrics` of the success body.
#[derive(Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct IngestMetrics {
    /// One entry per feature view subscribed to a source in the request.
    pub feature_view_ingest_metrics: Vec<FeatureViewMetric>,
}

/// Counts for one feature view; int64 counts are strings, as in protobuf JSON.
#[derive(Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct FeatureViewMetric {
    /// The feature view.
    pub feature_view_name: String,
    /// Records written to the online store.
    pub online_record_ingest_count: String,
    /// Records written to the offline store.
    pub offline_record_ingest_count: String,
    /// The view's id.
    pub feature_view_id: String,
}

/// A record that passed validation, ready to write.
struct Checked {
    source: usize,
    values: Vec<Value>,
    ts: i64,
}

/// Handles a raw request body for an authenticated account: strict JSON, the envelope of
/// `dialect`, then `ingest`. The server and the property tests both enter here.
///
/// A valid request is parsed straight into typed values (`fast`); any other body takes the
/// full path, whose errors are the ones documented.
pub fn handle_body(
    ctx: &IngestContext<'_>,
    account: &ServiceAccount,
    dialect: Dialect,
    body: &[u8],
) -> Result<IngestResponse, IngestError> {
    if let Some(ok) = fast::try_ingest(ctx, account, dialect, body) {
        return Ok(ok);
    }
    handle_body_slowly(ctx, account, dialect, body)
}

/// The fast path alone: `Some` for a valid request it handled, `None` (nothing written) for
/// any body the full path must answer.
pub fn handle_fast(
    ctx: &IngestContext<'_>,
    account: &ServiceAccount,
    dialect: Dialect,
    body: &[u8],
) -> Option<IngestResponse> {
    fast::try_ingest(ctx, account, dialect, body)
}

/// [`handle_body`] without the fast path: strict JSON into a tree, the envelope, then
/// `ingest` (tests compare the two).
pub fn handle_body_slowly(
    ctx: &IngestContext<'_>,
    account: &ServiceAccount,
    dialect: Dialect,
    body: &[u8],
) -> Result<IngestResponse, IngestError> {
    let json = crate::json::parse_strict(body).map_err(IngestError::Invalid)?;
    handle_value(ctx, account, dialect, json)
}

/// Handles an already parsed body: the envelope of `dialect`, then [`ingest`].
pub(crate) fn handle_value(
    ctx: &IngestContext<'_>,
    account: &ServiceAccount,
    dialect: Dialect,
    json: serde_json::Value,
) -> Result<IngestResponse, IngestError> {
    let request = parse_request(json, dialect)?;
    ingest(ctx, account, request)
}

/// The workspace and push sources a body names, read leniently (for fault rules that filter on
/// them); anything malformed is simply absent.
pub(crate) fn target_of(json: &serde_json::Value, dialect: Dialect) -> (Option<&str>, Vec<&str>) {
    let ws_key = match dialect {
        Dialect::V1 => "workspace_name",
        Dialect::V2 => "workspaceName",
    };
    let workspace = json.get(ws_key).and_then(serde_json::Value::as_str);
    let sources = json
        .get("records")
        .and_then(serde_json::Value::as_object)
        .map(|m| m.keys().map(String::as_str).collect())
        .unwrap_or_default();
    (workspace, sources)
}

/// Handles one parsed ingest request for an authenticated account.
pub(crate) fn ingest(
    ctx: &IngestContext<'_>,
    account: &ServiceAccount,
    req: IngestRequest,
) -> Result<IngestResponse, IngestError> {
    let repo = ctx.repo;
    let names: Vec<(&str, usize)> = req
        .records
        .iter()
        .map(|(name, records)| (name.as_str(), records.len()))
        .collect();
    let (ws, sources) = admit(ctx, account, &req.workspace, req.dry_run, &names)?;

    let mut checked = Vec::new();
    let mut errors = Vec::new();
    for ((name, records), &source) in req.records.iter().zip(&sources) {
        let schema = ctx.schema_for(source);
        let subs = ctx.plan.subscriptions(source);
        for (i, record) in records.iter().enumerate() {
            match validate_record(&schema, record) {
                Err(field_errors) => {
                    let message = field_errors
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("; ");
                    for sub in subs {
                        errors.push(RecordError {
                            feature_view_name: repo.feature_views[sub.view].name.clone(),
                            push_source_name: name.clone(),
                            error_type: error_type::TECTON_OBJECT_VALIDATION,
                            error_message: format!("record {i}: {message}"),
                        });
                    }
                }
                Ok(values) => {
                    let ts = match values.get(ctx.plan.timestamp_index(source)) {
                        Some(Value::Timestamp(ts)) => *ts,
                        // The schema marks the event-time field non-null Timestamp.
                        _ => continue,
                    };
                    ttl_errors(ctx, name, source, i, ts, &mut errors);
                    checked.push(Checked { source, values, ts });
                }
            }
        }
    }
    if !errors.is_empty() {
        return Err(IngestError::Records {
            workspace: ws.name.clone(),
            errors,
        });
    }
    Ok(commit(ctx, ws, &sources, req.dry_run, checked))
}

/// The checks before any record is looked at, in the documented order: the workspace, the
/// key's role, the workspace being live, each push source, the per-source record limit.
/// `names` are the request's push sources with their record counts; returns the workspace and
/// the sources' indices.
fn admit<'r>(
    ctx: &IngestContext<'r>,
    account: &ServiceAccount,
    workspace: &str,
    dry_run: bool,
    names: &[(&str, usize)],
) -> Result<(&'r crate::repo::Workspace, Vec<usize>), IngestError> {
    let ws = ctx
        .repo
        .workspace(workspace)
        .ok_or_else(|| IngestError::NotFound(format!("Workspace `{workspace}` not found")))?;
    let allowed = if dry_run {
        Role::may_dry_run
    } else {
        Role::may_write
    };
    if !account.can(&ws.name, allowed) {
        let what = if dry_run {
            "validate records in"
        } else {
            "write to"
        };
        return Err(IngestError::PermissionDenied(format!(
            "Service account `{}` is not authorized to {what} workspace `{}`",
            account.name, ws.name
        )));
    }
    if !ws.live && !dry_run {
        return Err(IngestError::Invalid(format!(
            "Workspace `{}` is not a live workspace; only dry_run requests are accepted",
            ws.name
        )));
    }
    let mut sources = Vec::with_capacity(names.len());
    for &(name, count) in names {
        let source = ctx.plan.source_index(name).ok_or_else(|| {
            IngestError::NotFound(format!(
                "Push source `{name}` not found in workspace `{}`",
                ws.name
            ))
        })?;
        let subs = ctx.plan.subscriptions(source);
        if !subs.iter().any(|s| s.online) && !dry_run {
            return Err(IngestError::NotFound(format!(
                "No online Stream Feature View is subscribed to push source `{name}`"
            )));
        }
        if count > ctx.records_per_source {
            return Err(IngestError::Invalid(format!(
                "Too many records for push source `{name}`: {count} (at most {} per request)",
                ctx.records_per_source
            )));
        }
        sources.push(source);
    }
    Ok((ws, sources))
}

/// Adds an error per subscribed view whose TTL no longer serves a record at `ts` (when the
/// context checks TTLs): a value is servable while `now < ts + ttl`.
fn ttl_errors(
    ctx: &IngestContext<'_>,
    name: &str,
    source: usize,
    i: usize,
    ts: i64,
    errors: &mut Vec<RecordError>,
) {
    if !ctx.check_ttl {
        return;
    }
    for sub in ctx.plan.subscriptions(source) {
        if let Some(ttl) = sub.ttl {
            if ctx.now >= ts.saturating_add(ttl) {
                let view = &ctx.repo.feature_views[sub.view].name;
                errors.push(RecordError {
                    feature_view_name: view.clone(),
                    push_source_name: name.to_owned(),
                    error_type: error_type::TECTON_OBJECT_VALIDATION,
                    error_message: format!(
                        "record {i}: timestamp value {} is outside of the serving TTL ({}) defined for Feature View {view}",
                        format_rfc3339(ts),
                        Human(ttl)
                    ),
                });
            }
        }
    }
}

/// Writes the checked records (unless a dry run) and builds the success body.
fn commit(
    ctx: &IngestContext<'_>,
    ws: &crate::repo::Workspace,
    sources: &[usize],
    dry_run: bool,
    checked: Vec<Checked>,
) -> IngestResponse {
    let repo = ctx.repo;
    let mut metrics: Vec<(usize, u64, u64)> = Vec::new();
    for &source in sources {
        for sub in ctx.plan.subscriptions(source) {
            if !metrics.iter().any(|m| m.0 == sub.view) {
                metrics.push((sub.view, 0, 0));
            }
        }
    }
    if !dry_run {
        for rec in checked {
            write(ctx, rec.source, rec.ts, rec.values, Some(&mut metrics));
        }
    }
    IngestResponse {
        workspace_name: ws.name.clone(),
        ingest_metrics: IngestMetrics {
            feature_view_ingest_metrics: metrics
                .into_iter()
                .map(|(view, online, offline)| FeatureViewMetric {
                    feature_view_name: repo.feature_views[view].name.clone(),
                    online_record_ingest_count: online.to_string(),
                    offline_record_ingest_count: offline.to_string(),
                    feature_view_id: repo.feature_views[view].id.clone(),
                })
                .collect(),
        },
    }
}

/// Writes one validated record to the stores: each subscribed view online (an event no window
/// can reach any more is logged but not kept), then the offline log. `None` metrics: not counted.
pub(crate) fn write(
    ctx: &IngestContext<'_>,
    source: usize,
    ts: i64,
    values: Vec<Value>,
    mut metrics: Option<&mut [(usize, u64, u64)]>,
) {
    let seq = ctx.record_seq.fetch_add(1, Ordering::Relaxed);
    let push = &ctx.repo.push_sources[source];
    // Views over the same join keys (the common case) share one key, encoded and hashed once.
    let mut key: Option<(&[usize], Option<StoreKey>)> = None;
    for sub in ctx.plan.subscriptions(source) {
        // Attribute views ignore rows before feature_start_time; aggregations keep every event.
        if !sub.keeps(ts) {
            continue;
        }
        let mut m = match metrics.as_deref_mut() {
            Some(all) => match all.iter_mut().find(|m| m.0 == sub.view) {
                Some(m) => Some(m),
                None => continue,
            },
            None => None,
        };
        if sub.offline && push.log_offline {
            if let Some(m) = m.as_deref_mut() {
                m.2 += 1;
            }
        }
        if !sub.online {
            continue;
        }
        if key
            .as_ref()
            .is_none_or(|(cols, _)| *cols != sub.key_columns.as_slice())
        {
            key = Some((
                sub.key_columns.as_slice(),
                ctx.online.record_key(&values, &sub.key_columns),
            ));
        }
        let Some((_, Some(entity))) = &key else {
            continue;
        };
        sub.put_online(ctx.online, entity, ts, seq, &values, ctx.now);
        if let Some(m) = m {
            m.1 += 1;
        }
    }
    if push.log_offline {
        ctx.offline.append(
            source,
            OfflineRow {
                seq,
                request: ctx.request_seq,
                ingested_at: ctx.now,
                ts,
                values,
            },
        );
    }
}
