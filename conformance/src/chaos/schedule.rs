//! A fault schedule: the scenario shape (records, hints) and fault rules in the mock's own
//! vocabulary, drawn from seed bytes with [`arbitrary`], and judged fair or not.
//!
//! **Fairness.** A schedule is only ever run when a well-behaved sink must pass it, for one of
//! two reasons ([`Schedule::expected`]):
//!
//! * *Survivable* (expect `success`): only transient faults, and every rule's firings are
//!   bounded so that all of them together are at most `SINK_MAX_RETRIES`. Even if every fault
//!   lands on the same batch, a sink that retries what is retryable, within its budget, still
//!   delivers everything. This holds whatever the sink's concurrency, since it counts faults,
//!   not where they land.
//! * *Fatal* (expect `give_up`): the first rule, on every `/ingest` request from the n-th on
//!   (n below the number of batches, so every good sink gets there), is either definite (a 4xx
//!   or a schema drift) or a transient fault that fires at least `SINK_MAX_RETRIES + 1` times
//!   in a row. No sink can deliver everything; a good one gives up and says so.
//!
//! Anything else (an unbounded transient rule that is not first, a definite fault that may or
//! may not be reached) is neither, and is never generated or kept by the shrinker.

use std::time::Duration;

use arbitrary::{Arbitrary, Unstructured};
use mock_tecton::faults::{DriftField, FaultAction, FaultRule, StateStep};
use mock_tecton::rng::SplitMix64;

use crate::checks::ExpectedOutcome;

/// Seed bytes drawn per schedule (far more than a schedule consumes).
const SEED_BYTES: usize = 1024;
/// The path every ingest-wide filter uses.
pub(crate) const INGEST_PATH: &str = "/ingest";
/// The push source of the embedded demo, which chaos scenarios write to.
pub(crate) const SOURCE: &str = crate::scenario::DEMO_PUSH_SOURCE;

/// A fault schedule and the shape of the scenario it runs in.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    /// Generated input records.
    pub records: usize,
    /// Distinct keys (`user_id`s) among them.
    pub keys: usize,
    /// `SINK_BATCH_SIZE`.
    pub batch_size: usize,
    /// `SINK_MAX_RETRIES`.
    pub max_retries: u32,
    /// `SINK_TIMEOUT_S`, in ms.
    pub timeout_ms: u64,
    /// The fault rules, in the order the mock tries them.
    pub rules: Vec<FaultRule>,
}

impl Schedule {
    /// The schedule generated from `seed`: [`Unstructured`] over bytes of the project's
    /// seeded generator, so the same seed gives the same schedule.
    pub(crate) fn from_seed(seed: u64) -> Schedule {
        let mut rng = SplitMix64::new(seed);
        let bytes: Vec<u8> = (0..SEED_BYTES / 8)
            .flat_map(|_| rng.next_u64().to_le_bytes())
            .collect();
        let mut u = Unstructured::new(&bytes);
        // Running out of bytes yields the smallest choices, never an error, for every draw
        // below; the fallback keeps this total anyway.
        Schedule::arbitrary(&mut u).unwrap_or_else(|_| Schedule::healthy())
    }

    /// No faults: 10 records, the default hints.
    pub(crate) fn healthy() -> Schedule {
        Schedule {
            records: 10,
            keys: 2,
            batch_size: 10,
            max_retries: 3,
            timeout_ms: 300,
            rules: Vec::new(),
        }
    }

    /// Requests a sink that batches as asked needs at the least.
    pub(crate) fn batches(&self) -> u64 {
        self.records.div_ceil(self.batch_size.max(1)) as u64
    }

    /// What a well-behaved sink must achieve under this schedule, or `None` when the schedule
    /// is not fair (see the module docs).
    pub(crate) fn expected(&self) -> Option<ExpectedOutcome> {
        if self.records == 0 || self.batch_size == 0 || self.keys == 0 {
            return None;
        }
        if self.rules.iter().any(|r| r.validate().is_err()) {
            return None;
        }
        if let Some(first) = self.rules.first() {
            if self.is_stopper(first) {
                return Some(ExpectedOutcome::GiveUp);
            }
        }
        let mut total = 0u64;
        for rule in &self.rules {
            if rule_actions(rule).any(is_definite) {
                return None;
            }
            total = total.saturating_add(fault_bound(rule)?);
        }
        (total <= u64::from(self.max_retries)).then_some(ExpectedOutcome::Success)
    }

    /// Whether `rule`, placed first, makes every good sink give up.
    fn is_stopper(&self, rule: &FaultRule) -> bool {
        let Some(action) = &rule.action else {
            return false;
        };
        let every_ingest = rule.path.as_deref() == Some(INGEST_PATH)
            && rule.workspace.is_none()
            && rule.source.is_none();
        let reached = rule.from_request.unwrap_or(0) < self.batches();
        let certain = rule.probability.is_none()
            && rule.until_request.is_none()
            && rule.after_ms.is_none()
            && rule.before_ms.is_none();
        let outlasts = if is_definite(action) {
            rule.times.is_none_or(|t| t >= 1)
        } else {
            is_failure(action) && rule.times.is_none_or(|t| t > u64::from(self.max_retries))
        };
        every_ingest && reached && certain && outlasts
    }

    /// The fault firings this schedule can make, at most (`None`: unbounded).
    pub fn fault_bound(&self) -> Option<u64> {
        self.rules
            .iter()
            .try_fold(0u64, |sum, r| Some(sum.saturating_add(fault_bound(r)?)))
    }

    /// The longest a well-behaved sink should need, with room for the sink's backoff cap
    /// (2 s in the reference), a `Retry-After` and the fault's own delay for every fault.
    pub(crate) fn wall_limit(&self) -> Duration {
        let faults = self
            .rules
            .iter()
            .map(|r| fault_bound(r).unwrap_or(u64::from(self.max_retries) + 1))
            .sum::<u64>()
            .min(u64::from(self.max_retries) * 3 + 3);
        let per_fault_ms = self.timeout_ms + 3_500;
        Duration::from_millis(10_000 + faults * per_fault_ms)
    }
}

/// Every action a rule can take.
pub(crate) fn rule_actions(rule: &FaultRule) -> impl Iterator<Item = &FaultAction> {
    rule.action
        .iter()
        .chain(rule.script.iter().map(|s| &s.action))
        .chain(rule.states.values().map(|s| &s.action))
}

/// A failure no retry can fix: a 4xx other than 408/425/429, or records checked against a
/// changed schema.
pub(crate) fn is_definite(action: &FaultAction) -> bool {
    match action {
        FaultAction::Status { status, .. } => {
            !crate::answer::is_retryable_status(*status) && *status < 500
        }
        FaultAction::SchemaDrift { .. } => true,
        FaultAction::Pass
        | FaultAction::Latency { .. }
        | FaultAction::Hang { .. }
        | FaultAction::ResetBeforeBody
        | FaultAction::ResetAfterBody { .. }
        | FaultAction::Truncate
        | FaultAction::Dribble { .. }
        | FaultAction::Garbage { .. } => false,
    }
}

/// Whether the action fails the attempt for certain (a slow answer may still arrive in time).
fn is_failure(action: &FaultAction) -> bool {
    match action {
        FaultAction::Status { .. }
        | FaultAction::Hang { .. }
        | FaultAction::ResetBeforeBody
        | FaultAction::ResetAfterBody { .. }
        | FaultAction::Truncate
        | FaultAction::Garbage { .. }
        | FaultAction::SchemaDrift { .. } => true,
        FaultAction::Pass | FaultAction::Latency { .. } | FaultAction::Dribble { .. } => false,
    }
}

/// The most firings of a non-`pass` action this rule can make (every one counted as a possible
/// failure, slow answers included, since one may outlast the timeout); `None` when unbounded.
pub(crate) fn fault_bound(rule: &FaultRule) -> Option<u64> {
    let by_steps = if rule.action.is_some() {
        None
    } else if !rule.script.is_empty() {
        rule.script
            .iter()
            .filter(|s| s.action != FaultAction::Pass)
            .try_fold(0u64, |sum, s| Some(sum.saturating_add(s.times?)))
    } else {
        // A state machine may loop forever; only the rule's `times` bounds it, unless no
        // state faults at all.
        rule.states
            .values()
            .all(|s| s.action == FaultAction::Pass)
            .then_some(0)
    };
    match (rule.times, by_steps) {
        (Some(t), Some(s)) => Some(t.min(s)),
        (Some(t), None) => Some(t),
        (None, s) => s,
    }
}

/// True with probability `percent` / 100.
fn chance(u: &mut Unstructured<'_>, percent: u8) -> arbitrary::Result<bool> {
    Ok(u.int_in_range(0u8..=99)? < percent)
}

/// A transient fault. `before_body` allows a reset before the body is read (such a rule cannot
/// filter on the push source, so scripts never use it).
fn transient(
    u: &mut Unstructured<'_>,
    before_body: bool,
    timeout_ms: u64,
) -> arbitrary::Result<FaultAction> {
    let kinds = if before_body { 10 } else { 9 };
    Ok(match u.int_in_range(0..=kinds - 1)? {
        0 => FaultAction::Status {
            status: 429,
            retry_after_s: chance(u, 35)?.then_some(1),
            message: None,
        },
        1 => FaultAction::Status {
            status: *u.choose(&[500, 502, 503, 504])?,
            retry_after_s: None,
            message: None,
        },
        // Held well past the timeout, so a sink without one is seen waiting.
        2 => FaultAction::Hang {
            max_ms: Some(u.int_in_range(timeout_ms * 3..=timeout_ms * 3 + 1_000)?),
        },
        3 => FaultAction::ResetAfterBody {
            process: u.arbitrary()?,
        },
        4 => FaultAction::Truncate,
        5 => FaultAction::Garbage {
            status: Some(*u.choose(&[200, 502])?),
        },
        6 => {
            let ms = u.int_in_range(10..=120)?;
            FaultAction::Latency {
                ms,
                max_ms: if u.arbitrary()? {
                    Some(ms + u.int_in_range(10..=100)?)
                } else {
                    None
                },
            }
        }
        7 => FaultAction::Dribble {
            chunk_bytes: Some(u.int_in_range(16..=64)?),
            interval_ms: Some(u.int_in_range(5..=30)?),
        },
        8 => FaultAction::Status {
            status: 503,
            retry_after_s: None,
            message: None,
        },
        _ => FaultAction::ResetBeforeBody,
    })
}

/// A definite fault: a 4xx no retry fixes, or a required field added to the schema.
fn definite(u: &mut Unstructured<'_>) -> arbitrary::Result<FaultAction> {
    // Not 401: `auth_header` reads every 401 as a verdict on the key the sink presented.
    Ok(match u.int_in_range(0u8..=3)? {
        0 => FaultAction::SchemaDrift {
            add: vec![DriftField {
                name: "country".into(),
                data_type: "String".into(),
            }],
            remove: Vec::new(),
            retype: Vec::new(),
        },
        n => FaultAction::Status {
            status: [400, 403, 404][usize::from(n) - 1],
            retry_after_s: None,
            message: None,
        },
    })
}

/// The filters of a rule that faults after the body is read (or before, for a reset).
fn filtered(action: &FaultAction, rule: FaultRule) -> FaultRule {
    if *action == FaultAction::ResetBeforeBody {
        rule.on_path(INGEST_PATH)
    } else {
        FaultRule {
            source: Some(SOURCE.into()),
            ..rule
        }
    }
}

/// One rule firing at most `budget` faults.
fn bounded_rule(
    u: &mut Unstructured<'_>,
    budget: u64,
    index: usize,
    timeout_ms: u64,
) -> arbitrary::Result<FaultRule> {
    let mut rule = match u.int_in_range(0u8..=9)? {
        // One action, a few times.
        0..=3 => {
            let action = transient(u, true, timeout_ms)?;
            let times = u.int_in_range(1..=budget.min(4))?;
            filtered(&action, FaultRule::new(action.clone()).times(times))
        }
        // A script: faults with healthy stretches between, then healthy for good.
        4 | 5 => {
            let mut left = budget;
            let mut steps = Vec::new();
            for i in 0..u.int_in_range(2..=4)? {
                if left == 0 {
                    break;
                }
                if i % 2 == 1 {
                    steps.push((FaultAction::Pass, Some(u.int_in_range(1..=3)?)));
                } else {
                    let times = u.int_in_range(1..=left.min(3))?;
                    left -= times;
                    steps.push((transient(u, false, timeout_ms)?, Some(times)));
                }
            }
            filtered(&FaultAction::Pass, FaultRule::script(steps))
        }
        // Every other request (or every third) fails, for `times` faults: spreads single
        // failures over many batches, which is what backoff and jitter are judged on.
        _ => {
            let action = transient(u, false, timeout_ms)?;
            let healthy = u.int_in_range(1..=2)?;
            // Often the whole budget: jitter is judged on eight or more same-position retries.
            let times = if chance(u, 70)? {
                budget
            } else {
                u.int_in_range(1..=budget)?
            };
            let states = [
                (
                    "fail".to_owned(),
                    StateStep {
                        action,
                        times: Some(1),
                        next: Some("pass".into()),
                    },
                ),
                (
                    "pass".to_owned(),
                    StateStep {
                        action: FaultAction::Pass,
                        times: Some(healthy),
                        next: Some("fail".into()),
                    },
                ),
            ];
            filtered(
                &FaultAction::Pass,
                FaultRule {
                    states: states.into_iter().collect(),
                    initial: Some("fail".into()),
                    times: Some(times),
                    ..FaultRule::default()
                },
            )
        }
    };
    if chance(u, 30)? {
        rule.from_request = Some(u.int_in_range(0..=4)?);
    }
    if chance(u, 25)? {
        rule.probability = Some(*u.choose(&[0.25, 0.5, 0.75])?);
    }
    rule.name = Some(format!("chaos {index}"));
    Ok(rule)
}

impl<'a> Arbitrary<'a> for Schedule {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        // Up to 80 records in batches as small as 1: jitter needs eight or more batches that
        // each fail once.
        let records = u.int_in_range(5..=80)?;
        let batch_size = *u.choose(&[1, 2, 3, 5, 7, 10, 10, 10])?;
        let keys = u.int_in_range(1..=6)?;
        // Generous next to the built-in scenarios' 0.3 s: a loaded machine must not make a good
        // sink time out on a healthy answer.
        let timeout_ms = *u.choose(&[500, 750, 1_000])?;
        let fatal = chance(u, 20)?;
        let mut s = Schedule {
            records,
            keys,
            batch_size,
            max_retries: if fatal {
                u.int_in_range(1..=4)?
            } else {
                *u.choose(&[2, 3, 4, 5, 6, 8, 10, 12, 12, 16])?
            },
            timeout_ms,
            rules: Vec::new(),
        };
        if fatal {
            let action = if chance(u, 40)? {
                definite(u)?
            } else {
                match transient(u, true, s.timeout_ms)? {
                    // A slow answer stops nothing: a fatal schedule needs a failure.
                    a if !is_failure(&a) => FaultAction::Status {
                        status: 503,
                        retry_after_s: None,
                        message: None,
                    },
                    a => a,
                }
            };
            // Definite: once is enough. Transient: one firing more than the retry budget, or a
            // few more, so a sink that ignores the budget is seen retrying past it.
            let times = if is_definite(&action) {
                None
            } else {
                Some(u64::from(s.max_retries) + 1 + u.int_in_range(0..=2)?)
            };
            let mut stopper = FaultRule::new(action).on_path(INGEST_PATH).named("stopper");
            stopper.times = times;
            if chance(u, 50)? {
                stopper.from_request = Some(u.int_in_range(0..=s.batches() - 1)?);
            }
            s.rules.push(stopper);
        }
        let mut budget = u64::from(s.max_retries);
        for index in 1..=u.int_in_range(0..=3)? {
            if budget == 0 {
                break;
            }
            let rule = bounded_rule(u, budget, index, s.timeout_ms)?;
            budget -= fault_bound(&rule).unwrap_or(budget).min(budget);
            s.rules.push(rule);
        }
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_generated_schedule_is_fair_and_seeds_replay() {
        let mut fatal = 0;
        let mut with_rules = 0;
        for seed in 0..2_000 {
            let s = Schedule::from_seed(seed);
            assert_eq!(s, Schedule::from_seed(seed), "seed {seed}");
            let expected = s.expected();
            assert!(expected.is_some(), "seed {seed}: {s:?}");
            fatal += usize::from(expected == Some(ExpectedOutcome::GiveUp));
            with_rules += usize::from(!s.rules.is_empty());
        }
        assert!((200..=600).contains(&fatal), "{fatal} fatal schedules");
        assert!(with_rules > 1_500, "{with_rules} schedules with rules");
    }

    #[test]
    fn unfair_schedules_are_refused() {
        let mut s = Schedule::healthy();
        assert_eq!(s.expected(), Some(ExpectedOutcome::Success));
        // More faults than retries, not first: neither survivable nor certain.
        s.rules
            .push(FaultRule::status(503).times(4).on_path(INGEST_PATH));
        assert_eq!(s.expected(), Some(ExpectedOutcome::GiveUp));
        s.rules.insert(0, FaultRule::status(429).times(1));
        assert_eq!(s.expected(), None);
        // A definite fault that may never be reached.
        let mut s = Schedule::healthy();
        s.rules
            .push(FaultRule::status(400).on_path(INGEST_PATH).from_request(5));
        assert_eq!(s.expected(), None);
        s.rules[0].from_request = Some(0);
        assert_eq!(s.expected(), Some(ExpectedOutcome::GiveUp));
        // A probabilistic stopper is not certain.
        s.rules[0].probability = Some(0.5);
        assert_eq!(s.expected(), None);
        // Unbounded transient faults.
        let mut s = Schedule::healthy();
        s.rules.push(FaultRule::status(503).on_path("/v2/ingest"));
        assert_eq!(s.expected(), None);
    }
}
