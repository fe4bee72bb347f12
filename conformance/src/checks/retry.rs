//! Retries: transient failures are retried, definite ones are not, and no record is attempted
//! more often than the budget allows. Attempts are recognised by the record ids they carry.

use std::collections::HashSet;

use serde_json::Value as Json;

use super::observation::{summarize_ids, Class, Observation};
use super::{CheckId, CheckResult};

/// [`CheckId::RetryRetryable`].
pub(super) fn retry_retryable(obs: &Observation) -> CheckResult {
    let id = CheckId::RetryRetryable;
    let budget = obs.env.max_retries as usize + 1;
    let sends = obs.sends_by_id();
    let all_acked = {
        let acked = obs.acked_ids();
        obs.input.iter().all(|r| acked.contains(r.id.as_str()))
    };
    let mut retried = 0usize;
    let mut spent = 0usize;
    let mut problems = Vec::new();
    for (i, e) in obs.exchanges.iter().enumerate() {
        if !e.class.retryable() {
            continue;
        }
        if e.body.is_none() {
            // The mock never read this body, so its records are unknown: it was retried if
            // anything followed it, or nothing was left to deliver. As the last exchange, it
            // may have spent the budget when it ends a run of at least that many failures.
            let streak = obs.exchanges[..=i]
                .iter()
                .rev()
                .take_while(|x| x.class.retryable())
                .count();
            if i + 1 < obs.exchanges.len() || all_acked {
                retried += 1;
            } else if streak >= budget {
                spent += 1;
            } else {
                problems.push(obs.describe(e).with_note(
                    "nothing was sent after it although records were still unacknowledged",
                ));
            }
            continue;
        }
        if e.records.is_empty() {
            continue;
        }
        // Attempts reset before the mock read their body carry no ids; those since the last
        // acknowledgement may have been earlier attempts of these very records.
        let unread = obs.exchanges[..i]
            .iter()
            .rev()
            .take_while(|x| x.class != Class::Acked)
            .filter(|x| x.body.is_none() && x.class.retryable())
            .count();
        // Likewise, such attempts after this one, before the next acknowledgement, may have
        // been its retries.
        let unread_after = obs.exchanges[i + 1..]
            .iter()
            .take_while(|x| x.class != Class::Acked)
            .any(|x| x.body.is_none() && x.class.retryable());
        let mut dropped = Vec::new();
        let mut exhausted = false;
        let mut pending = 0usize;
        for rid in e.ids() {
            let at = sends.get(rid).map(Vec::as_slice).unwrap_or_default();
            let delivered = at
                .iter()
                .any(|&p| p < i && obs.exchanges[p].class == Class::Acked);
            if delivered {
                // Already acknowledged: a failed re-send of it needs no retry.
                continue;
            }
            pending += 1;
            let later = unread_after || at.iter().any(|&p| p > i);
            let used = at.iter().filter(|&&p| p <= i).count();
            if later {
                continue;
            }
            if used + unread >= budget {
                exhausted = true;
            } else {
                dropped.push(rid);
            }
        }
        if pending == 0 {
            continue;
        }
        if dropped.is_empty() {
            if exhausted {
                spent += 1;
            } else {
                retried += 1;
            }
        } else if e.class == Class::Unreadable && obs.outcome.succeeded() {
            // A 200 the sink took at its word (it claims success): `ack_body` warns about that.
        } else {
            let used = dropped
                .iter()
                .filter_map(|r| sends.get(r))
                .map(|v| v.iter().filter(|&&p| p <= i).count())
                .max()
                .unwrap_or(1);
            problems.push(obs.describe(e).with_note(format!(
                "{} never sent again after {used} of {budget} allowed attempt(s)",
                summarize_ids(dropped.iter().copied())
            )));
        }
    }
    if !problems.is_empty() {
        return CheckResult::fail(
            id,
            format!(
                "{} retryable failure(s) were not retried. 429, 408, 5xx, connection resets, \
                 timeouts and unreadable responses are transient: re-send the same records, \
                 after a backoff, up to SINK_MAX_RETRIES = {} times before giving up.",
                problems.len(),
                obs.env.max_retries
            ),
        )
        .with_evidence(problems);
    }
    if retried + spent == 0 {
        return CheckResult::pass(id, "No retryable failure happened in this run.");
    }
    let spent_note = if spent > 0 {
        format!(" ({spent} more ended a batch whose retry budget was spent)")
    } else {
        String::new()
    };
    CheckResult::pass(
        id,
        format!("{retried} retryable failure(s), each followed by a re-send of its records{spent_note}."),
    )
}

/// Ids a `recordErrors` response names as invalid (`"record 3: ..."` messages index the
/// request's records).
fn rejected_ids(e: &super::Exchange) -> HashSet<&str> {
    let mut out = HashSet::new();
    let Ok(Json::Object(top)) = serde_json::from_str::<Json>(&e.response) else {
        return out;
    };
    let Some(Json::Array(errors)) = top.get("recordErrors") else {
        return out;
    };
    for err in errors {
        let message = err.get("errorMessage").and_then(Json::as_str).unwrap_or("");
        let source = err.get("pushSourceName").and_then(Json::as_str);
        let index = message
            .strip_prefix("record ")
            .and_then(|m| m.split(':').next())
            .and_then(|n| n.trim().parse::<usize>().ok());
        if let Some(n) = index {
            if let Some(r) = e
                .records
                .iter()
                .filter(|r| source.is_none_or(|s| s == r.source))
                .nth(n)
            {
                out.insert(r.id.as_str());
            }
        }
    }
    out
}

/// [`CheckId::NoRetryDefinite`].
pub(super) fn no_retry_definite(obs: &Observation) -> CheckResult {
    let id = CheckId::NoRetryDefinite;
    let mut problems = Vec::new();
    let mut definite = 0usize;
    let mut unread = 0usize;
    for (i, e) in obs.exchanges.iter().enumerate() {
        if e.class != Class::Definite {
            continue;
        }
        definite += 1;
        if e.body.is_none() {
            unread += 1;
            continue;
        }
        if e.records.is_empty() {
            continue;
        }
        let set: HashSet<&str> = e.ids().collect();
        let bad = rejected_ids(e);
        for later in &obs.exchanges[i + 1..] {
            let ids: HashSet<&str> = later.ids().collect();
            if set.is_subset(&ids) {
                problems.push(
                    obs.describe(e)
                        .with_note(format!("seq {} re-sent the same records", later.seq)),
                );
                break;
            }
            if let Some(b) = bad.iter().find(|b| ids.contains(*b)) {
                problems.push(obs.describe(e).with_note(format!(
                    "it rejected record {b}; seq {} sent it again unchanged",
                    later.seq
                )));
                break;
            }
        }
    }
    // Requests refused before their body was read (401) cannot be matched by content: more of
    // them than the input has batches means refused requests were sent again.
    let batch = obs.env.batch_size.min(obs.records_per_source).max(1);
    let batches = obs.input.len().div_ceil(batch).max(1);
    if unread > batches {
        let refused: Vec<super::Evidence> = obs
            .exchanges
            .iter()
            .filter(|e| e.class == Class::Definite && e.body.is_none())
            .map(|e| obs.describe(e))
            .collect();
        problems.push(
            format!(
                "{unread} requests were refused before their body was read, more than the \
                 {batches} batch(es) the input makes: refused requests were sent again"
            )
            .into(),
        );
        problems.extend(refused.into_iter().take(2));
    }
    if !problems.is_empty() {
        return CheckResult::fail(
            id,
            format!(
                "{} definite failure(s) were retried. A 400, 401, 403, 404 or 413 means the same \
                 request can never succeed: retrying only delays the report and burns quota. \
                 Give up on those records (or fix them) at once, and say which and why.",
                problems.len()
            ),
        )
        .with_evidence(problems);
    }
    if definite == 0 {
        CheckResult::pass(id, "No definite failure happened in this run.")
    } else {
        CheckResult::pass(
            id,
            format!("{definite} definite failure(s); none of their records was re-sent as is."),
        )
    }
}

/// [`CheckId::RetryBound`].
pub(super) fn retry_bound(obs: &Observation) -> CheckResult {
    let id = CheckId::RetryBound;
    let budget = obs.env.max_retries as usize + 1;
    let sends = obs.sends_by_id();
    let mut over: Vec<(usize, String)> = Vec::new();
    let mut most = 0usize;
    for r in &obs.input {
        let Some(at) = sends.get(r.id.as_str()) else {
            continue;
        };
        // Attempts up to and including the first acknowledgement: a re-send after a 200 is a
        // duplicate (judged by `duplicates`), not a retry.
        let until = at
            .iter()
            .position(|&p| obs.exchanges[p].class == Class::Acked)
            .map_or(at.len(), |k| k + 1);
        most = most.max(until);
        if until > budget {
            let seqs: Vec<String> = at[..until]
                .iter()
                .map(|&p| obs.exchanges[p].seq.to_string())
                .collect();
            over.push((
                until,
                format!("{}: {until} attempts (seq {})", r.id, seqs.join(", ")),
            ));
        }
    }
    if over.is_empty() && most == 0 {
        return CheckResult::pass(
            id,
            "No request body carrying input records was read, so there are no attempts to count.",
        );
    }
    if over.is_empty() {
        return CheckResult::pass(
            id,
            format!(
                "No record took more than {most} attempt(s); the budget is 1 + SINK_MAX_RETRIES = {budget}."
            ),
        );
    }
    over.sort_by_key(|o| std::cmp::Reverse(o.0));
    CheckResult::fail(
        id,
        format!(
            "{} record(s) were attempted more than 1 + SINK_MAX_RETRIES = {budget} times (up to \
             {}). Count attempts per batch and give up when the budget is spent: exit non-zero \
             and name the records, so that a persistent failure surfaces instead of stalling \
             the pipeline.",
            over.len(),
            over[0].0
        ),
    )
    .with_evidence(over.into_iter().map(|(_, l)| l))
}
