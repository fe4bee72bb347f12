//! Timing: backoff that waits and grows, jitter, `Retry-After`, per-request timeouts.
//!
//! A retry gap is the time from the end of a failed exchange (the mock answered, cut the
//! connection, or closed it) to the arrival of the next attempt of the same records. Gaps after
//! a client-side timeout are left out of the backoff statistics, because the mock notices a
//! client hanging up only within its polling interval; gaps after a `Retry-After` answer are
//! judged by [`retry_after`] instead. Every tolerance is in [`super::tolerance`].

use std::time::Duration;

use mock_tecton::journal::Outcome;

use super::observation::{FaultKind, Observation};
use super::tolerance::{self as tol};
use super::{ms, CheckId, CheckParams, CheckResult, Evidence};

/// One retry gap.
#[derive(Debug, Clone, Copy)]
struct Gap {
    /// Which chain (batch).
    chain: usize,
    /// 0 before the first retry, 1 before the second, …
    position: usize,
    /// The failed exchange's position in the journal.
    failed: usize,
    /// The retry's position in the journal.
    retry: usize,
    /// The wait.
    gap: Duration,
}

fn has_retry_after(k: &FaultKind) -> bool {
    matches!(
        k,
        FaultKind::Status {
            retry_after_s: Some(_),
            ..
        }
    )
}

fn gaps(obs: &Observation) -> Vec<Gap> {
    let mut out = Vec::new();
    for (c, chain) in obs.chains().iter().enumerate() {
        for (k, pair) in chain.windows(2).enumerate() {
            let (a, b) = (&obs.exchanges[pair[0]], &obs.exchanges[pair[1]]);
            if !a.class.retryable()
                || a.outcome == Outcome::ClientGone
                || has_retry_after(&a.fault_kind)
            {
                continue;
            }
            let gap = u64::try_from(b.arrived_ns - a.ended_ns()).unwrap_or(0);
            out.push(Gap {
                chain: c,
                position: k,
                failed: pair[0],
                retry: pair[1],
                gap: Duration::from_nanos(gap),
            });
        }
    }
    out
}

fn mean(xs: &[Duration]) -> Duration {
    if xs.is_empty() {
        return Duration::ZERO;
    }
    xs.iter().sum::<Duration>() / u32::try_from(xs.len()).unwrap_or(u32::MAX)
}

fn median(xs: &mut [Duration]) -> Duration {
    if xs.is_empty() {
        return Duration::ZERO;
    }
    xs.sort_unstable();
    let n = xs.len();
    if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2
    }
}

/// A retry gap as evidence about the retry: its exchange's facts, and the wait in the text.
fn gap_line(obs: &Observation, g: &Gap) -> Evidence {
    let mut e = obs.describe(&obs.exchanges[g.retry]);
    e.text = format!(
        "retry {} of seq {} came in seq {} after {}",
        g.position + 1,
        obs.exchanges[g.failed].seq,
        obs.exchanges[g.retry].seq,
        ms(g.gap)
    );
    e
}

/// [`CheckId::Backoff`].
pub(super) fn backoff(obs: &Observation, params: &CheckParams) -> CheckResult {
    let id = CheckId::Backoff;
    let all = gaps(obs);
    if all.len() < tol::BACKOFF_MIN_GAPS {
        return CheckResult::pass(
            id,
            format!(
                "Only {} retry gap(s) to judge; at least {} are needed, since full jitter may \
                 legitimately draw a near-zero delay.",
                all.len(),
                tol::BACKOFF_MIN_GAPS
            ),
        )
        .with_evidence(all.iter().map(|g| gap_line(obs, g)));
    }
    let largest = all.iter().map(|g| g.gap).max().unwrap_or_default();
    if largest < tol::MIN_BACKOFF {
        return CheckResult::fail(
            id,
            format!(
                "All {} retries came within {} of the failure they answer (the longest wait was \
                 {}): the sink retries immediately. Immediate retries hammer a throttled or \
                 failing service and use up the retry budget in milliseconds. Wait before each \
                 retry, doubling the wait each time (capped) and randomizing it.",
                all.len(),
                ms(tol::MIN_BACKOFF),
                ms(largest)
            ),
        )
        .with_evidence(all.iter().map(|g| gap_line(obs, g)));
    }
    let min_growth = params.min_growth.unwrap_or(tol::GROWTH_MIN_RATIO);
    let early: Vec<Duration> = all
        .iter()
        .filter(|g| g.position == 0)
        .map(|g| g.gap)
        .collect();
    let late: Vec<Duration> = all
        .iter()
        .filter(|g| g.position >= 2)
        .map(|g| g.gap)
        .collect();
    let mut long_chains: Vec<usize> = all
        .iter()
        .filter(|g| g.position >= 2)
        .map(|g| g.chain)
        .collect();
    long_chains.dedup();
    if long_chains.len() < tol::GROWTH_MIN_CHAINS || early.is_empty() {
        return CheckResult::pass(
            id,
            format!(
                "{} retry gaps, the longest {}: the sink waits before retrying. Growth is not \
                 judged: fewer than {} batches were retried three times or more.",
                all.len(),
                ms(largest),
                tol::GROWTH_MIN_CHAINS
            ),
        );
    }
    let (e, l) = (mean(&early), mean(&late));
    let ratio = l.as_secs_f64() / e.as_secs_f64().max(1e-9);
    let summary = format!(
        "mean wait before first retries {} ({} samples), before third and later retries {} ({} \
         samples): ratio {ratio:.2}",
        ms(e),
        early.len(),
        ms(l),
        late.len()
    );
    if ratio < min_growth {
        return CheckResult::fail(
            id,
            format!(
                "The backoff does not grow: {summary}, below {min_growth}. A fixed delay keeps \
                 pressure on a service that is struggling; double the delay with each retry of \
                 a batch (capped), with jitter."
            ),
        )
        .with_evidence(all.iter().map(|g| gap_line(obs, g)));
    }
    CheckResult::pass(id, format!("The sink waits and the wait grows: {summary}."))
}

/// [`CheckId::Jitter`].
pub(super) fn jitter(obs: &Observation) -> CheckResult {
    let id = CheckId::Jitter;
    let all = gaps(obs);
    let top = (0..=all.iter().map(|g| g.position).max().unwrap_or(0))
        .max_by_key(|p| all.iter().filter(|g| g.position == *p).count())
        .unwrap_or(0);
    let mut at: Vec<Duration> = all
        .iter()
        .filter(|g| g.position == top)
        .map(|g| g.gap)
        .collect();
    if at.len() < tol::JITTER_MIN_SAMPLES {
        return CheckResult::pass(
            id,
            format!(
                "Jitter is not judged: at most {} retries at the same position (first retry, \
                 second, …), and {} are needed.",
                at.len(),
                tol::JITTER_MIN_SAMPLES
            ),
        );
    }
    let med = median(&mut at);
    if med < tol::MIN_BACKOFF {
        return CheckResult::pass(
            id,
            "Retries are immediate, so there is no delay to randomize; see `backoff`.",
        );
    }
    let mut dev: Vec<Duration> = at.iter().map(|g| g.abs_diff(med)).collect();
    let mad = median(&mut dev);
    let rel = mad.as_secs_f64() / med.as_secs_f64();
    let summary = format!(
        "{} waits before retry {}: median {}, median absolute deviation {} ({:.1}%)",
        at.len(),
        top + 1,
        ms(med),
        ms(mad),
        rel * 100.0
    );
    if rel < tol::JITTER_MIN_REL_MAD {
        let lines: Vec<Evidence> = all
            .iter()
            .filter(|g| g.position == top)
            .map(|g| gap_line(obs, g))
            .collect();
        return CheckResult::fail(
            id,
            format!(
                "The backoff is deterministic: {summary}, below {:.0}%. Clients that failed \
                 together then retry together and fail together again. Randomize each delay, \
                 for example full jitter: uniform(0, min(cap, base * 2^attempt)).",
                tol::JITTER_MIN_REL_MAD * 100.0
            ),
        )
        .with_evidence(lines);
    }
    CheckResult::pass(id, format!("Retry delays are randomized: {summary}."))
}

/// [`CheckId::RetryAfter`].
pub(super) fn retry_after(obs: &Observation, params: &CheckParams) -> CheckResult {
    let id = CheckId::RetryAfter;
    let early = params
        .slack_ms
        .map_or(tol::RETRY_AFTER_EARLY, Duration::from_millis);
    let mut honoured = Vec::new();
    let mut problems = Vec::new();
    let mut seen = 0usize;
    for (i, e) in obs.exchanges.iter().enumerate() {
        let FaultKind::Status {
            retry_after_s: Some(s),
            status,
        } = e.fault_kind
        else {
            continue;
        };
        seen += 1;
        let asked = Duration::from_secs(s);
        let ids: std::collections::HashSet<&str> = e.ids().collect();
        let next = obs.exchanges[i + 1..]
            .iter()
            .find(|n| n.ids().any(|x| ids.contains(x)));
        let Some(next) = next else {
            continue;
        };
        let waited =
            Duration::from_nanos(u64::try_from(next.arrived_ns - e.ended_ns()).unwrap_or(0));
        let line = format!(
            "seq {} answered {status} with Retry-After: {s}; its records came back in seq {} after {}",
            e.seq,
            next.seq,
            ms(waited)
        );
        if waited + early < asked {
            problems.push(line);
        } else {
            honoured.push(line);
        }
    }
    if !problems.is_empty() {
        return CheckResult::fail(
            id,
            format!(
                "{} retry(ies) came sooner than Retry-After asked. When Tecton (or a proxy in \
                 front of it) sends Retry-After with a 429 or 503, wait at least that long \
                 before re-sending: it is the server saying when it can take the load again.",
                problems.len()
            ),
        )
        .with_evidence(problems);
    }
    if seen == 0 {
        return CheckResult::pass(id, "No response carried Retry-After in this run.");
    }
    CheckResult::pass(
        id,
        "Every retry after a Retry-After answer waited at least as long as asked.",
    )
    .with_evidence(honoured)
}

/// [`CheckId::Timeout`].
pub(super) fn timeout(obs: &Observation, params: &CheckParams) -> CheckResult {
    let id = CheckId::Timeout;
    let t = obs.env.timeout;
    let allow = tol::timeout_allowance(t, params.slack_ms.map(Duration::from_millis));
    let mut problems = Vec::new();
    let mut ok = Vec::new();
    for (i, e) in obs.exchanges.iter().enumerate() {
        if e.fault_kind != FaultKind::Hang {
            continue;
        }
        match e.outcome {
            Outcome::ClientGone => {
                let line = format!("seq {}: the client hung up after {}", e.seq, ms(e.duration));
                if e.duration > allow {
                    problems.push(line);
                } else {
                    ok.push(line);
                }
            }
            Outcome::Abandoned => {
                // The mock may have missed the hang-up; a re-send of the same records while it
                // still held this one proves the client had given up.
                let ids: std::collections::HashSet<&str> = e.ids().collect();
                let resent = obs.exchanges[i + 1..]
                    .iter()
                    .find(|n| n.arrived_ns < e.ended_ns() && n.ids().any(|x| ids.contains(x)));
                match resent {
                    Some(n) => {
                        let bound = Duration::from_nanos(
                            u64::try_from(n.arrived_ns - e.arrived_ns).unwrap_or(0),
                        );
                        let line = format!(
                            "seq {}: held until the hang's limit, but its records were re-sent in seq {} after {}",
                            e.seq,
                            n.seq,
                            ms(bound)
                        );
                        if bound > allow + tol::TIMEOUT_RETRY_GRACE {
                            problems.push(line);
                        } else {
                            ok.push(line);
                        }
                    }
                    None => problems.push(format!(
                        "seq {}: held for {} (the hang's limit) and the client never gave up",
                        e.seq,
                        ms(e.duration)
                    )),
                }
            }
            _ => {}
        }
    }
    if !problems.is_empty() {
        return CheckResult::fail(
            id,
            format!(
                "The sink waited on a request that never answered far longer than SINK_TIMEOUT_S \
                 = {} s (allowed: {}). Without a per-request timeout, one stalled connection \
                 stalls the whole pipeline. Bound every attempt, the whole response included, \
                 then retry it.",
                t.as_secs_f64(),
                ms(allow)
            ),
        )
        .with_evidence(problems);
    }
    if ok.is_empty() {
        return CheckResult::pass(id, "No request hung in this run.");
    }
    CheckResult::pass(
        id,
        format!(
            "Every hung request was abandoned within SINK_TIMEOUT_S = {} s plus slack ({}).",
            t.as_secs_f64(),
            ms(allow)
        ),
    )
    .with_evidence(ok)
}
