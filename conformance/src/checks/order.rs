//! Order: for each key, records are first written in the order they were input.

use std::collections::{BTreeMap, HashMap};

use super::observation::{Class, Observation};
use super::{CheckId, CheckResult};

/// [`CheckId::KeyOrder`].
pub(super) fn key_order(obs: &Observation) -> CheckResult {
    let id = CheckId::KeyOrder;
    // When each id was first written: the offline store's ingestion order, or (without an
    // offline log) the order of acknowledged requests and of records within them.
    let mut first: HashMap<&str, (u64, u64)> = HashMap::new();
    match &obs.written {
        Some(rows) => {
            for r in rows {
                first.entry(r.id.as_str()).or_insert((r.seq, r.request));
            }
        }
        None => {
            let mut n = 0u64;
            for e in obs.exchanges.iter().filter(|e| e.class == Class::Acked) {
                for rid in e.ids() {
                    first.entry(rid).or_insert((n, e.seq));
                    n += 1;
                }
            }
        }
    }
    let mut by_key: BTreeMap<&str, Vec<(usize, &str, u64, u64)>> = BTreeMap::new();
    for r in &obs.input {
        if let Some(&(order, request)) = first.get(r.id.as_str()) {
            by_key.entry(r.key.as_str()).or_default().push((
                r.position,
                r.id.as_str(),
                order,
                request,
            ));
        }
    }
    let mut problems = Vec::new();
    let mut keys_judged = 0usize;
    for (key, written) in &by_key {
        if written.len() > 1 {
            keys_judged += 1;
        }
        // The earliest-input record written after a later-input one.
        for w in written.windows(2) {
            let (a, b) = (w[0], w[1]);
            if b.2 < a.2 {
                problems.push(format!(
                    "key {key}: {} (input #{}) was first written by seq {}, after {} (input #{}) written by seq {}",
                    a.1, a.0, a.3, b.1, b.0, b.3
                ));
                break;
            }
        }
    }
    if problems.is_empty() {
        return CheckResult::pass(
            id,
            format!(
                "For each of the {keys_judged} key(s) with several written records, records were \
                 first written in input order."
            ),
        );
    }
    CheckResult::fail(
        id,
        format!(
            "Records of {} key(s) reached Tecton out of input order. Tecton serves the most \
             recently pushed value of a key, so a reordered push serves stale features and makes \
             online and offline features disagree. Keep batches of one key in order: one request \
             in flight per key, and retry a failed batch before sending later ones.",
            problems.len()
        ),
    )
    .with_evidence(problems)
}
