//! Shrinking, the way quickcheck's `Arbitrary::shrink` does it: a schedule proposes simpler
//! versions of itself, biggest simplifications first, and the search keeps the first one that
//! still fails the same check, then asks that one for its own simpler versions. Every count and
//! delay shrinks along quickcheck's own integer sequence ([`smaller`]); quickcheck's generator
//! is not used, because it cannot be seeded from the run's one seed.
//!
//! Simpler means, in this order: fewer rules; a script or state machine replaced by its first
//! fault; no probability and no request-index filters; fewer `times`; a plainer action (a 503,
//! no `Retry-After`, shorter delays); fewer records and keys; the default batch size, and fewer
//! retries. Every candidate must still be fair ([`Schedule::expected`]); the others are
//! dropped here, so the search never runs an unfair schedule.

use mock_tecton::faults::{FaultAction, FaultRule};
use quickcheck::Arbitrary;

use super::schedule::{fault_bound, rule_actions, Schedule, INGEST_PATH};

/// The simpler versions of `s`, most aggressive first, each fair and different from `s`.
pub(crate) fn candidates(s: &Schedule) -> Vec<Schedule> {
    let mut out: Vec<Schedule> = Vec::new();
    let mut push = |c: Schedule| {
        if c != *s && c.expected().is_some() && !out.contains(&c) {
            out.push(c);
        }
    };

    // Fewer rules: all at once, then one at a time.
    if s.rules.len() > 1 {
        push(Schedule {
            rules: Vec::new(),
            ..s.clone()
        });
    }
    for i in 0..s.rules.len() {
        let mut c = s.clone();
        c.rules.remove(i);
        push(c);
    }

    for i in 0..s.rules.len() {
        for rule in rule_candidates(&s.rules[i]) {
            let mut c = s.clone();
            c.rules[i] = rule;
            push(c);
        }
    }

    // A stopper needs more firings than retries; with fewer retries it needs fewer.
    for max_retries in smaller(s.max_retries, 1) {
        push(Schedule {
            max_retries,
            ..s.clone()
        });
    }

    for records in smaller(s.records, 1) {
        push(Schedule {
            records,
            keys: s.keys.min(records),
            ..s.clone()
        });
    }
    if s.keys > 1 {
        push(Schedule {
            keys: 1,
            ..s.clone()
        });
    }
    if s.batch_size != 10 {
        push(Schedule {
            batch_size: 10,
            ..s.clone()
        });
    }
    out
}

/// Simpler versions of one rule.
fn rule_candidates(r: &FaultRule) -> Vec<FaultRule> {
    let mut out = Vec::new();

    // A script or state machine becomes its first fault, as many times as it could fault.
    if r.action.is_none() {
        if let Some(first) = rule_actions(r).find(|a| **a != FaultAction::Pass) {
            out.push(FaultRule {
                action: Some(first.clone()),
                script: Vec::new(),
                states: Default::default(),
                initial: None,
                times: fault_bound(r),
                ..r.clone()
            });
        }
    }

    if r.probability.is_some() {
        out.push(FaultRule {
            probability: None,
            ..r.clone()
        });
    }
    if r.from_request.is_some() || r.until_request.is_some() {
        out.push(FaultRule {
            from_request: None,
            until_request: None,
            ..r.clone()
        });
    }

    if let Some(t) = r.times {
        for fewer in smaller(t, 1) {
            out.push(FaultRule {
                times: Some(fewer),
                ..r.clone()
            });
        }
    }
    // Script steps fire fewer times.
    for (i, step) in r.script.iter().enumerate() {
        for fewer in step.times.into_iter().flat_map(|t| smaller(t, 1)) {
            let mut c = r.clone();
            c.script[i].times = Some(fewer);
            out.push(c);
        }
    }

    if let Some(action) = &r.action {
        for simpler in action_candidates(action) {
            let mut c = FaultRule {
                action: Some(simpler.clone()),
                ..r.clone()
            };
            if simpler != FaultAction::ResetBeforeBody && c.path.as_deref() == Some(INGEST_PATH) {
                // Keep it a rule on every ingest request, as a stopper must be.
                c.workspace = None;
                c.source = None;
            }
            out.push(c);
        }
    }
    out
}

/// Plainer versions of an action: a bare 503 first, then the same kind with smaller numbers.
fn action_candidates(a: &FaultAction) -> Vec<FaultAction> {
    let plain = FaultAction::Status {
        status: 503,
        retry_after_s: None,
        message: None,
    };
    let mut out = Vec::new();
    match a {
        FaultAction::Status {
            status,
            retry_after_s,
            message,
        } => {
            if retry_after_s.is_some() {
                out.push(FaultAction::Status {
                    status: *status,
                    retry_after_s: None,
                    message: message.clone(),
                });
            }
            if *status >= 500 || *status == 429 {
                out.push(plain);
            }
        }
        FaultAction::Hang { max_ms } => {
            out.push(plain);
            // A hang shorter than a second is a latency, not a hang.
            for ms in max_ms.iter().flat_map(|ms| smaller(*ms, 1_000)) {
                out.push(FaultAction::Hang { max_ms: Some(ms) });
            }
        }
        FaultAction::Latency { ms, max_ms } => {
            if max_ms.is_some() {
                out.push(FaultAction::Latency {
                    ms: *ms,
                    max_ms: None,
                });
            }
            for less in smaller(*ms, 1) {
                out.push(FaultAction::Latency {
                    ms: less,
                    // The range moves down with its lower bound and keeps its width.
                    max_ms: max_ms.map(|m| m - (ms - less)),
                });
            }
        }
        FaultAction::Dribble { interval_ms, .. } => out.push(FaultAction::Latency {
            ms: interval_ms.unwrap_or(100),
            max_ms: None,
        }),
        FaultAction::ResetAfterBody { process: true } => {
            out.push(FaultAction::ResetAfterBody { process: false });
            out.push(plain);
        }
        FaultAction::ResetBeforeBody
        | FaultAction::ResetAfterBody { process: false }
        | FaultAction::Truncate
        | FaultAction::Garbage { .. } => out.push(plain),
        FaultAction::SchemaDrift { .. } => out.push(FaultAction::Status {
            status: 400,
            retry_after_s: None,
            message: None,
        }),
        FaultAction::Pass => {}
    }
    out.retain(|c| c != a);
    out
}

/// The values below `n` and at least `floor`, smallest first: `floor` itself, then
/// quickcheck's shrink sequence for `n` (halfway down, then ever closer to `n`).
fn smaller<T>(n: T, floor: T) -> Vec<T>
where
    T: Arbitrary + Ord + Copy,
{
    let mut out = Vec::new();
    for v in std::iter::once(floor).chain(n.shrink()) {
        if v >= floor && v < n && !out.contains(&v) {
            out.push(v);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_are_fair_simpler_and_end() {
        for seed in 0..300 {
            let s = Schedule::from_seed(seed);
            // Always taking the first candidate must end: each step simplifies something.
            let mut current = s.clone();
            for step in 0.. {
                assert!(step < 500, "seed {seed}: shrinking does not end");
                let next = candidates(&current);
                assert!(next.iter().all(|c| c.expected().is_some()));
                match next.into_iter().next() {
                    Some(c) => current = c,
                    None => break,
                }
            }
            assert!(current.rules.is_empty(), "seed {seed}: {current:?}");
        }
    }

    #[test]
    fn counts_shrink_from_the_floor_up_and_never_below_it() {
        assert_eq!(smaller(8u32, 1), vec![1, 4, 6, 7]);
        assert_eq!(smaller(1u32, 1), Vec::<u32>::new());
        assert!(smaller(5_000u64, 1_000)
            .iter()
            .all(|v| (1_000..5_000).contains(v)));
        assert_eq!(smaller(5_000u64, 1_000).first(), Some(&1_000));
    }
}
