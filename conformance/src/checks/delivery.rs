//! Delivery: the exit matches the expectation, nothing is silently dropped, nothing
//! acknowledged is lost, and duplicates only follow indefinite failures.

use std::collections::{BTreeMap, HashSet};

use super::observation::{summarize_ids, Class, Observation};
use super::ExpectedOutcome;
use super::{tail, CheckId, CheckResult, Evidence};
use crate::sink::SinkOutcome;

/// How the sink ended, in words (`exited 0`, `was killed at the wall-clock limit after 3.0 s`).
pub fn describe_exit(o: &SinkOutcome) -> String {
    match (o.exit_code, o.timed_out) {
        (_, true) => format!(
            "was killed at the wall-clock limit after {:.1} s",
            o.elapsed.as_secs_f64()
        ),
        (Some(c), false) => format!("exited {c}"),
        (None, false) => "ended without an exit code (killed by a signal?)".into(),
    }
}

fn stderr_evidence(o: &SinkOutcome) -> Option<Evidence> {
    let t = tail(&o.stderr, 3);
    (!t.is_empty()).then(|| format!("stderr (last lines): {t}").into())
}

/// [`CheckId::Outcome`].
pub(super) fn outcome(obs: &Observation) -> CheckResult {
    let id = CheckId::Outcome;
    let o = &obs.outcome;
    let exit = describe_exit(o);
    let refused: Vec<Evidence> = obs
        .exchanges
        .iter()
        .filter(|e| e.class != Class::Acked)
        .map(|e| obs.describe(e))
        .collect();
    let result = match obs.expected {
        ExpectedOutcome::Success if o.succeeded() => CheckResult::pass(
            id,
            "The sink exited 0, as expected: every failure in this scenario is transient and \
             fits within its retry budget.",
        ),
        ExpectedOutcome::Success => CheckResult::fail(
            id,
            format!(
                "Expected the sink to deliver every record and exit 0 (this scenario's failures \
                 are transient and fit within SINK_MAX_RETRIES = {} with SINK_TIMEOUT_S = {} s), \
                 but it {exit}. Its stderr and the exchanges that failed are below; the checks \
                 that failed alongside this one usually say why the sink stopped.",
                obs.env.max_retries,
                obs.env.timeout.as_secs_f64()
            ),
        )
        .with_evidence(stderr_evidence(o).into_iter().chain(refused)),
        ExpectedOutcome::GiveUp => match (o.exit_code, o.timed_out) {
            (Some(c), false) if c != 0 => CheckResult::pass(
                id,
                format!(
                    "The sink gave up with exit {c}, as it must here: the failures in this \
                     scenario are definite or outlast the retry budget."
                ),
            ),
            (Some(0), false) => CheckResult::fail(
                id,
                "The sink exited 0, which claims that every record was acknowledged, but this \
                 scenario refuses records for good (definite errors, or failures that outlast \
                 the retry budget). A sink must exit non-zero when it gives up on any record, \
                 and say which ones on stderr, so that its operator learns about the loss.",
            )
            .with_evidence(refused),
            _ => CheckResult::fail(
                id,
                format!(
                    "Expected the sink to give up and exit non-zero, but it {exit}. A sink must \
                     finish on its own: bound every request with SINK_TIMEOUT_S and every batch \
                     with SINK_MAX_RETRIES."
                ),
            )
            .with_evidence(stderr_evidence(o)),
        },
    };
    result
}

/// [`CheckId::Completeness`].
pub(super) fn completeness(obs: &Observation) -> CheckResult {
    let id = CheckId::Completeness;
    let acked = obs.acked_ids();
    let missing: Vec<&str> = obs
        .input
        .iter()
        .map(|r| r.id.as_str())
        .filter(|i| !acked.contains(i))
        .collect();
    let n = obs.input.len();
    let o = &obs.outcome;
    let sends = obs.sends_by_id();
    let missing_evidence = || {
        let mut lines = vec![Evidence {
            text: format!(
                "not acknowledged: {}",
                summarize_ids(missing.iter().copied())
            ),
            records: missing.iter().map(|m| (*m).to_owned()).collect(),
            ..Evidence::default()
        }];
        for m in missing.iter().take(3) {
            match sends.get(m).and_then(|v| v.last()) {
                Some(&i) => lines.push(
                    obs.describe(&obs.exchanges[i])
                        .with_prefix(format!("{m} last sent in ")),
                ),
                None => lines.push(format!("{m} was never sent").into()),
            }
        }
        lines
    };
    // Records whose last send got a 200 with a body that is not Tecton's: the sink could not
    // know they were lost, and `ack_body` warns about trusting such an answer.
    let trusted: Vec<&str> = missing
        .iter()
        .copied()
        .filter(|m| {
            sends
                .get(m)
                .and_then(|v| v.last())
                .is_some_and(|&i| obs.exchanges[i].class == Class::Unreadable)
        })
        .collect();
    if o.succeeded() {
        if !missing.is_empty() && trusted.len() == missing.len() {
            return CheckResult::pass(
                id,
                format!(
                    "{} of {n} records were answered only by a 200 whose body is not Tecton's \
                     success body, which the sink took as an acknowledgement; `ack_body` judges \
                     that. Every other record was acknowledged.",
                    trusted.len()
                ),
            )
            .with_evidence(missing_evidence());
        }
        if missing.is_empty() {
            return CheckResult::pass(
                id,
                format!(
                    "All {n} input records were acknowledged by a 200 before the sink exited 0."
                ),
            );
        }
        return CheckResult::fail(
            id,
            format!(
                "The sink exited 0, which claims that every record was acknowledged, but {} of \
                 {n} records never were (no request carrying them was answered 200 with \
                 Tecton's success body). Flush every batch, including the last partial one, and \
                 exit non-zero naming the records you gave up on.",
                missing.len()
            ),
        )
        .with_evidence(missing_evidence());
    }
    match (o.exit_code, o.timed_out) {
        (Some(c), false) if c != 0 => {
            let said = tail(&o.stderr, 2);
            if said.is_empty() {
                CheckResult::fail(
                    id,
                    format!(
                        "The sink exited {c} without a word on stderr, with {} of {n} records \
                         unacknowledged. A sink that gives up must say so: which records were \
                         not written and why (quote Tecton's errorMessage).",
                        missing.len()
                    ),
                )
                .with_evidence(missing_evidence())
            } else {
                CheckResult::pass(
                    id,
                    format!(
                        "The sink exited {c} and said why on stderr; {} of {n} records were not \
                         acknowledged, which its non-zero exit reports.",
                        missing.len()
                    ),
                )
                .with_evidence([format!("stderr (last lines): {said}")])
            }
        }
        _ if missing.is_empty() => CheckResult::pass(
            id,
            format!(
                "All {n} records were acknowledged, although the sink {}.",
                describe_exit(o)
            ),
        ),
        _ => CheckResult::fail(
            id,
            format!(
                "The sink {} with {} of {n} records unacknowledged, and never reported it with \
                 a non-zero exit. Bound every request and every batch's retries so that the sink \
                 always finishes and says what it could not deliver.",
                describe_exit(o),
                missing.len()
            ),
        )
        .with_evidence(missing_evidence()),
    }
}

/// [`CheckId::NoLostAck`].
pub(super) fn no_lost_ack(obs: &Observation) -> CheckResult {
    let id = CheckId::NoLostAck;
    let Some(written) = &obs.written else {
        return CheckResult::pass(
            id,
            "The push source keeps no offline log in this repository (or does not exist), so \
             stored records cannot be compared with acknowledgements.",
        );
    };
    let stored: HashSet<(u64, &str)> = written.iter().map(|r| (r.request, r.id.as_str())).collect();
    let mut lost = Vec::new();
    let mut acked = 0usize;
    for e in obs
        .exchanges
        .iter()
        .filter(|e| e.class == Class::Acked && !e.dry_run())
    {
        for r in e.records.iter().filter(|r| r.source == obs.env.push_source) {
            acked += 1;
            if !stored.contains(&(e.seq, r.id.as_str())) {
                lost.push(format!(
                    "{} acknowledged by seq {} but not stored",
                    r.id, e.seq
                ));
            }
        }
    }
    if lost.is_empty() {
        CheckResult::pass(
            id,
            format!("All {acked} acknowledged record copies are in the offline store."),
        )
    } else {
        CheckResult::fail(
            id,
            format!(
                "{} record(s) in requests answered 200 are missing from the offline store. A 200 \
                 means Tecton wrote them; this points at the mock or the journal rather than the \
                 sink. Please report it with the seed ({}).",
                lost.len(),
                obs.seed
            ),
        )
        .with_evidence(lost)
    }
}

/// [`CheckId::Duplicates`].
pub(super) fn duplicates(obs: &Observation) -> CheckResult {
    let id = CheckId::Duplicates;
    let Some(written) = &obs.written else {
        return CheckResult::pass(
            id,
            "The push source keeps no offline log in this repository (or does not exist), so \
             duplicates cannot be counted.",
        );
    };
    let mut by_id: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    for r in written {
        by_id.entry(r.id.as_str()).or_default().push(r.request);
    }
    let mut excused = Vec::new();
    let mut defects = Vec::new();
    for (rid, requests) in by_id.iter().filter(|(_, v)| v.len() > 1) {
        for pair in requests.windows(2) {
            let (first, again) = (pair[0], pair[1]);
            let line = match obs.exchange(first) {
                Some(e) if e.class.indefinite() => {
                    excused.push(format!(
                        "{rid}: written by seq {first} ({}) and again by seq {again}",
                        super::observation::outcome_name(e.outcome)
                    ));
                    continue;
                }
                Some(e) => format!(
                    "{rid}: written by seq {first}, which was answered {} ({}), then again by seq {again}",
                    e.status,
                    super::observation::outcome_name(e.outcome)
                ),
                None => format!("{rid}: written by seq {first} (not in the journal) and again by seq {again}"),
            };
            defects.push(line);
        }
    }
    if !defects.is_empty() {
        return CheckResult::fail(
            id,
            format!(
                "{} record(s) were written again although an earlier copy had been acknowledged. \
                 Re-sending is only allowed when the earlier attempt ended indefinitely (a reset, \
                 a cut or timed-out response), because then the sink cannot know whether it \
                 landed. A duplicate after a 200 doubles counts and sums in every aggregation \
                 and skews online against offline features.",
                defects.len()
            ),
        )
        .with_evidence(defects);
    }
    if excused.is_empty() {
        CheckResult::pass(id, "No record was written twice.")
    } else {
        CheckResult::pass(
            id,
            format!(
                "{} record(s) were written twice, each after an indefinite failure that the sink \
                 could not tell from a failed write, which at-least-once delivery allows.",
                excused.len()
            ),
        )
        .with_evidence(excused)
    }
}

/// [`CheckId::AckBody`].
pub(super) fn ack_body(obs: &Observation) -> CheckResult {
    let id = CheckId::AckBody;
    let sends = obs.sends_by_id();
    let unreadable: Vec<usize> = obs
        .exchanges
        .iter()
        .enumerate()
        .filter(|(_, e)| e.class == Class::Unreadable && !e.records.is_empty())
        .map(|(i, _)| i)
        .collect();
    if unreadable.is_empty() {
        return CheckResult::pass(
            id,
            "No request carrying records was answered by a 200 whose body is not Tecton's \
             success body.",
        );
    }
    if !obs.outcome.succeeded() {
        return CheckResult::pass(
            id,
            "The sink did not claim success, so it took no unreadable 200 as an acknowledgement; \
             whether it should have retried is `retry_retryable`'s call.",
        );
    }
    let budget = obs.env.max_retries as usize + 1;
    let mut trusted = Vec::new();
    let mut trusted_ids: Vec<&str> = Vec::new();
    let mut retried = 0usize;
    for &i in &unreadable {
        let e = &obs.exchanges[i];
        let mut dropped = Vec::new();
        let mut spent = false;
        for rid in e.ids() {
            let at = sends.get(rid).map(Vec::as_slice).unwrap_or_default();
            if at
                .iter()
                .any(|&p| p < i && obs.exchanges[p].class == Class::Acked)
            {
                continue;
            }
            if at.iter().any(|&p| p > i) {
                continue;
            }
            if at.iter().filter(|&&p| p <= i).count() >= budget {
                spent = true;
            } else {
                dropped.push(rid);
            }
        }
        if !dropped.is_empty() && !spent {
            trusted_ids.extend(dropped.iter().copied());
            trusted.push(obs.describe(e).with_note(format!(
                "{} never sent again",
                summarize_ids(dropped.iter().copied())
            )));
        } else {
            retried += 1;
        }
    }
    if trusted.is_empty() {
        return CheckResult::pass(
            id,
            format!(
                "{retried} answer(s) were a 200 whose body is not Tecton's success body; the sink \
                 re-sent their records, which is right: such an answer is indefinite."
            ),
        );
    }
    let stored: HashSet<&str> = obs
        .written
        .iter()
        .flatten()
        .map(|r| r.id.as_str())
        .collect();
    let lost = trusted_ids.iter().filter(|i| !stored.contains(*i)).count();
    let in_this_run = if obs.written.is_some() {
        format!(
            " (in this run {lost} of those {} records were never written)",
            trusted_ids.len()
        )
    } else {
        String::new()
    };
    CheckResult::warn(
        id,
        format!(
            "{} answer(s) were a 200 whose body is not Tecton's success body, and the sink took \
             them as acknowledgements: their records were never sent again. Such an answer is \
             indefinite: it may come from a proxy or a load balancer rather than Tecton, and \
             the records may not have been written{in_this_run}. Treat it like a lost \
             response: re-send the records (the duplicate it may create is allowed) or at least \
             report them. Many HTTP clients, Tecton's own Python ingestion client among them, \
             trust the status alone, so this is a warning; `--deny-warnings` makes it fail.",
            trusted.len()
        ),
    )
    .with_evidence(trusted)
}
