//! What goes over the wire: batch sizes, the authorization header, and the request body.

use std::collections::HashMap;

use serde_json::Value as Json;

use super::observation::Observation;
use super::{tolerance, CheckId, CheckParams, CheckResult};

/// [`CheckId::BatchLimit`].
pub(super) fn batch_limit(obs: &Observation) -> CheckResult {
    let id = CheckId::BatchLimit;
    let hint = obs.env.batch_size;
    let limit = obs.records_per_source;
    let mut over = Vec::new();
    let mut largest = 0usize;
    for e in obs.with_records() {
        let mut per_source: HashMap<&str, usize> = HashMap::new();
        for r in &e.records {
            *per_source.entry(r.source.as_str()).or_default() += 1;
        }
        let most = per_source.values().copied().max().unwrap_or(0);
        largest = largest.max(e.records.len());
        if e.records.len() > hint || most > limit {
            over.push(obs.describe(e));
        }
    }
    if over.is_empty() {
        CheckResult::pass(
            id,
            format!(
                "Every request carried at most {largest} record(s) (SINK_BATCH_SIZE {hint}, \
                 Tecton's limit {limit} per push source)."
            ),
        )
    } else {
        CheckResult::fail(
            id,
            format!(
                "{} request(s) carried more records than allowed; the largest had {largest}. \
                 SINK_BATCH_SIZE is {hint} and Tecton accepts at most {limit} records per push \
                 source per request (more is a 400 RequestValidationError). Cut batches at \
                 min(SINK_BATCH_SIZE, {limit}).",
                over.len()
            ),
        )
        .with_evidence(over)
    }
}

/// [`CheckId::AuthHeader`].
pub(super) fn auth_header(obs: &Observation) -> CheckResult {
    let id = CheckId::AuthHeader;
    let mut problems = Vec::new();
    let mut accepted = 0usize;
    let mut refused_key = 0usize;
    for e in &obs.exchanges {
        if let Some(account) = &e.key_id {
            accepted += 1;
            if obs.key_account.as_ref().is_some_and(|a| a != account) {
                problems.push(obs.describe(e).with_note(format!(
                    "presented the key of `{account}`, not the key it was given"
                )));
            }
            continue;
        }
        if e.status != 401 {
            // A fault ended the exchange before the key was looked at.
            continue;
        }
        let message = error_message(&e.response);
        if message.starts_with("invalid 'Tecton-key'") {
            refused_key += 1;
            if obs.key_account.is_some() {
                problems.push(
                    obs.describe(e)
                        .with_note("the key presented is not the one it was given"),
                );
            }
        } else {
            problems.push(obs.describe(e));
        }
    }
    if !problems.is_empty() {
        return CheckResult::fail(
            id,
            format!(
                "{} request(s) were refused for their Authorization header. Tecton's ingest API \
                 expects exactly `Authorization: Tecton-key <TECTON_API_KEY>` (not Bearer, not \
                 a bare key, not a different key).",
                problems.len()
            ),
        )
        .with_evidence(problems);
    }
    let explanation = if obs.key_account.is_none() && refused_key > 0 {
        format!(
            "All {refused_key} request(s) used the `Tecton-key` scheme; the key is deliberately \
             unknown in this scenario and was refused with 401."
        )
    } else {
        format!("All {accepted} request(s) that reached authentication presented `Tecton-key` with the key given.")
    };
    CheckResult::pass(id, explanation)
}

/// `requestError.errorMessage` of an error body, or the body.
fn error_message(body: &str) -> String {
    serde_json::from_str::<Json>(body)
        .ok()
        .and_then(|j| {
            j.pointer("/requestError/errorMessage")
                .and_then(Json::as_str)
                .map(str::to_owned)
        })
        .unwrap_or_else(|| body.chars().take(200).collect())
}

/// [`CheckId::RequestShape`].
pub(super) fn request_shape(obs: &Observation) -> CheckResult {
    let id = CheckId::RequestShape;
    let inputs: HashMap<&str, &serde_json::Map<String, Json>> = obs
        .input
        .iter()
        .map(|r| (r.id.as_str(), &r.record))
        .collect();
    let mut problems = Vec::new();
    let mut judged = 0usize;
    for e in &obs.exchanges {
        let Some(body) = &e.body else { continue };
        judged += 1;
        let mut issues: Vec<String> = Vec::new();
        if e.method != "POST" || e.path != "/ingest" {
            issues.push(format!(
                "sent {} {}; the v1 Stream Ingest API is POST {{TECTON_URL}}/ingest",
                e.method, e.path
            ));
        }
        match body {
            Err(err) => issues.push(format!("the body is not JSON ({err})")),
            Ok(Json::Object(top)) => envelope_issues(obs, top, &mut issues),
            Ok(_) => issues.push("the body is not a JSON object".into()),
        }
        for r in &e.records {
            if !r.wrapped {
                issues.push(format!(
                    "record {} is not wrapped as {{\"record\": {{...}}}}",
                    show_id(&r.id)
                ));
                continue;
            }
            match inputs.get(r.id.as_str()) {
                None => issues.push(format!(
                    "record {} is not one of the input records",
                    show_id(&r.id)
                )),
                Some(input) => {
                    if let Some(diff) = record_diff(input, &r.fields) {
                        issues.push(format!("record {} was changed: {diff}", r.id));
                    }
                }
            }
        }
        if let Some(first) = issues.first() {
            let more = if issues.len() > 1 {
                format!(" (and {} more issue(s))", issues.len() - 1)
            } else {
                String::new()
            };
            problems.push(format!("seq {}: {first}{more}", e.seq));
        }
    }
    if problems.is_empty() {
        return CheckResult::pass(
            id,
            format!(
                "All {judged} request bodies the mock read are the v1 envelope \
                 (workspace_name, dry_run false, records by push source) on /ingest, with every \
                 record wrapped as {{\"record\": ...}} and sent exactly as it was input."
            ),
        );
    }
    CheckResult::fail(
        id,
        format!(
            "{} request(s) do not have Tecton's v1 shape. POST to /ingest a JSON object \
             {{\"workspace_name\": TECTON_WORKSPACE, \"dry_run\": false, \"records\": \
             {{TECTON_PUSH_SOURCE: [{{\"record\": {{...}}}}, ...]}}}} (snake_case keys, each record \
             wrapped, its fields unchanged).",
            problems.len()
        ),
    )
    .with_evidence(problems)
}

fn show_id(id: &str) -> String {
    if id.is_empty() {
        "(without an id)".into()
    } else {
        id.to_owned()
    }
}

fn envelope_issues(
    obs: &Observation,
    top: &serde_json::Map<String, Json>,
    issues: &mut Vec<String>,
) {
    for camel in ["workspaceName", "dryRun"] {
        if top.contains_key(camel) {
            issues.push(format!(
                "uses `{camel}`, the camelCase spelling of /v2/ingest; /ingest takes snake_case"
            ));
        }
    }
    for key in top.keys() {
        if ![
            "workspace_name",
            "dry_run",
            "records",
            "workspaceName",
            "dryRun",
        ]
        .contains(&key.as_str())
        {
            issues.push(format!("has an unknown top-level key `{key}`"));
        }
    }
    match top.get("workspace_name") {
        None => issues.push("misses `workspace_name`".into()),
        Some(Json::String(w)) if *w == obs.env.workspace => {}
        Some(w) => issues.push(format!(
            "names workspace {w}, but TECTON_WORKSPACE is `{}`",
            obs.env.workspace
        )),
    }
    match top.get("dry_run") {
        None => issues.push("misses `dry_run`".into()),
        Some(Json::Bool(false)) => {}
        Some(v) => issues.push(format!(
            "has `dry_run` {v}; a sink writes with `dry_run: false`"
        )),
    }
    match top.get("records") {
        None => issues.push("misses `records`".into()),
        Some(Json::Object(sources)) => {
            for (name, items) in sources {
                if *name != obs.env.push_source {
                    issues.push(format!(
                        "writes to push source `{name}`, but TECTON_PUSH_SOURCE is `{}`",
                        obs.env.push_source
                    ));
                }
                if !items.is_array() {
                    issues.push(format!("`records.{name}` is not an array"));
                }
            }
        }
        Some(_) => issues.push("`records` is not an object keyed by push source".into()),
    }
}

/// The first difference between an input record and what was sent, if any. Numbers compare
/// by value (`1.50` equals `1.5`).
fn record_diff(input: &serde_json::Map<String, Json>, sent: &Json) -> Option<String> {
    let Json::Object(sent) = sent else {
        return Some("not an object".into());
    };
    for (k, v) in input {
        match sent.get(k) {
            None => return Some(format!("field `{k}` was dropped")),
            Some(s) if !json_eq(v, s) => return Some(format!("field `{k}`: {v} became {s}")),
            Some(_) => {}
        }
    }
    sent.keys()
        .find(|k| !input.contains_key(*k))
        .map(|k| format!("field `{k}` was added"))
}

fn json_eq(a: &Json, b: &Json) -> bool {
    match (a, b) {
        (Json::Number(x), Json::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(i), Some(j)) => i == j,
            _ => x.as_f64() == y.as_f64(),
        },
        (Json::Array(x), Json::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_eq(p, q))
        }
        (Json::Object(x), Json::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

/// [`CheckId::BatchingEfficiency`].
pub(super) fn batching_efficiency(obs: &Observation, params: &CheckParams) -> CheckResult {
    let id = CheckId::BatchingEfficiency;
    let min_mean = params.min_mean.unwrap_or(tolerance::MIN_MEAN_BATCH);
    let allowed = obs.env.batch_size.min(obs.records_per_source);
    if allowed <= 1 {
        return CheckResult::pass(id, "The batch size is 1: there is no batching to judge.");
    }
    let requests: Vec<usize> = obs.with_records().map(|e| e.records.len()).collect();
    let total: usize = requests.iter().sum();
    if requests.is_empty() || (obs.input.len() as f64) < 2.0 * min_mean {
        return CheckResult::pass(id, "Too few records to judge batching.");
    }
    let mean = total as f64 / requests.len() as f64;
    let line = format!(
        "{} request(s) carried {total} record(s): {mean:.2} per request",
        requests.len()
    );
    if mean < min_mean.min(allowed as f64) {
        CheckResult::warn(
            id,
            format!(
                "Requests carried {mean:.2} records on average, although SINK_BATCH_SIZE allows \
                 {allowed}. Every request costs a round trip and counts against Tecton's request \
                 rate; collect up to SINK_BATCH_SIZE records per request (flush a partial batch \
                 on a short timer if latency matters)."
            ),
        )
        .with_evidence([line])
    } else {
        CheckResult::pass(
            id,
            format!("Requests carried {mean:.2} records on average (batch size {allowed})."),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_compare_by_value_and_diffs_name_the_field() {
        let input: serde_json::Map<String, Json> =
            serde_json::from_str(r#"{"a":1.5,"b":"x","n":2}"#).unwrap_or_default();
        let same: Json = serde_json::from_str(r#"{"a":1.50,"b":"x","n":2}"#).unwrap_or_default();
        assert_eq!(record_diff(&input, &same), None);
        let changed: Json =
            serde_json::from_str(r#"{"a":"1.5","b":"x","n":2}"#).unwrap_or_default();
        assert_eq!(
            record_diff(&input, &changed).as_deref(),
            Some("field `a`: 1.5 became \"1.5\"")
        );
        let added: Json =
            serde_json::from_str(r#"{"a":1.5,"b":"x","n":2,"z":0}"#).unwrap_or_default();
        assert_eq!(
            record_diff(&input, &added).as_deref(),
            Some("field `z` was added")
        );
    }
}
