//! Deciding, per exchange, which fault applies.
//!
//! The installed rules sit behind an [`ArcSwap`], so the request path reads them without a
//! lock; each rule counts its matches and firings with atomics. Only a rule with a script or a
//! state machine takes a lock, its own, to advance its cursor.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use arc_swap::ArcSwap;

use super::model::{FaultAction, FaultRule, FaultSet};

/// What the request path knows about an exchange when it asks for a decision.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RequestFacts<'a> {
    /// Request path.
    pub path: &'a str,
    /// The ingest request's workspace, once the body has been read.
    pub workspace: Option<&'a str>,
    /// The ingest request's push sources, once the body has been read.
    pub sources: &'a [&'a str],
    /// Whether the body has been read (rules filtering on workspace or source wait for it).
    pub body_read: bool,
}

/// A fault that fired.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// The action to apply.
    pub action: FaultAction,
    /// `rule name: action` for the journal.
    pub label: String,
    /// A per-decision random number from the seed, for seeded choices (latency, garbage).
    pub random: u64,
}

#[derive(Debug)]
struct RuleState {
    rule: FaultRule,
    matched: AtomicU64,
    fired: AtomicU64,
    cursor: Mutex<Cursor>,
}

#[derive(Debug, Default)]
struct Cursor {
    /// Script step index, or the current state's name.
    step: usize,
    state: Option<String>,
    /// Requests served by the current step or state.
    used: u64,
}

#[derive(Debug)]
struct Installed {
    seed: u64,
    at: Instant,
    rules: Vec<RuleState>,
}

/// The fault rules of one mock instance.
#[derive(Debug)]
pub(crate) struct FaultEngine {
    installed: ArcSwap<Installed>,
}

impl Default for FaultEngine {
    fn default() -> Self {
        Self::new(FaultSet::default())
    }
}

impl FaultEngine {
    /// An engine with `set` installed.
    pub(crate) fn new(set: FaultSet) -> Self {
        FaultEngine {
            installed: ArcSwap::from_pointee(Self::build(set)),
        }
    }

    fn build(set: FaultSet) -> Installed {
        Installed {
            seed: set.seed,
            at: Instant::now(),
            rules: set
                .rules
                .into_iter()
                .map(|rule| RuleState {
                    cursor: Mutex::new(Cursor {
                        state: rule.initial.clone(),
                        ..Cursor::default()
                    }),
                    rule,
                    matched: AtomicU64::new(0),
                    fired: AtomicU64::new(0),
                })
                .collect(),
        }
    }

    /// Replaces every rule (after validating them); counters and scripts start over.
    pub(crate) fn install(&self, set: FaultSet) -> Result<(), crate::faults::FaultError> {
        set.validate()?;
        self.installed.store(Arc::new(Self::build(set)));
        Ok(())
    }

    /// Removes every rule.
    pub(crate) fn clear(&self) {
        self.installed
            .store(Arc::new(Self::build(FaultSet::default())));
    }

    /// The installed rules with how often each matched (passed its filters) and fired (applied
    /// its fault: a `pass` step or a spent `times` limit is not a firing).
    pub(crate) fn status(&self) -> serde_json::Value {
        let inst = self.installed.load();
        serde_json::json!({
            "seed": inst.seed,
            "rules": inst.rules.iter().map(|r| serde_json::json!({
                "rule": r.rule,
                "matched": r.matched.load(Ordering::Relaxed),
                "fired": r.fired.load(Ordering::Relaxed),
            })).collect::<Vec<_>>(),
        })
    }

    /// Whether any rule is installed (the request path skips all fault work otherwise).
    pub(crate) fn is_empty(&self) -> bool {
        self.installed.load().rules.is_empty()
    }

    /// The first rule that fires for this exchange, if any. Before the body is read only rules
    /// without workspace or source filters are considered; after, only the others, so each rule
    /// sees each request once.
    pub(crate) fn decide(&self, facts: RequestFacts<'_>) -> Option<Decision> {
        let inst = self.installed.load();
        let elapsed_ms = u64::try_from(inst.at.elapsed().as_millis()).unwrap_or(u64::MAX);
        for (index, state) in inst.rules.iter().enumerate() {
            let rule = &state.rule;
            let needs_body = rule.workspace.is_some() || rule.source.is_some();
            if needs_body != facts.body_read {
                continue;
            }
            if !filters_pass(rule, facts, elapsed_ms) {
                continue;
            }
            let nth = state.matched.fetch_add(1, Ordering::Relaxed);
            if rule.from_request.is_some_and(|from| nth < from)
                || rule.until_request.is_some_and(|until| nth >= until)
            {
                continue;
            }
            let random = mix(inst.seed, index as u64, nth);
            if let Some(p) = rule.probability {
                if unit(random) >= p {
                    continue;
                }
            }
            // Claim one of the rule's firings before taking its action, so concurrent requests
            // never fire it more than `times`; give the claim back when nothing fires.
            let limit = rule.times.unwrap_or(u64::MAX);
            if state
                .fired
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |f| {
                    (f < limit).then_some(f + 1)
                })
                .is_err()
            {
                continue;
            }
            let Some(action) = next_action(state) else {
                state.fired.fetch_sub(1, Ordering::Relaxed);
                continue;
            };
            if action == FaultAction::Pass {
                state.fired.fetch_sub(1, Ordering::Relaxed);
                return None;
            }
            let name = rule.name.clone().unwrap_or_else(|| format!("rule {index}"));
            return Some(Decision {
                label: format!("{name}: {}", action.label()),
                action,
                random: mix(random, 0x5eed, 1),
            });
        }
        None
    }
}

fn filters_pass(rule: &FaultRule, facts: RequestFacts<'_>, elapsed_ms: u64) -> bool {
    rule.path.as_deref().is_none_or(|p| p == facts.path)
        && rule
            .workspace
            .as_deref()
            .is_none_or(|w| facts.workspace == Some(w))
        && rule
            .source
            .as_deref()
            .is_none_or(|s| facts.sources.contains(&s))
        && rule.after_ms.is_none_or(|a| elapsed_ms >= a)
        && rule.before_ms.is_none_or(|b| elapsed_ms < b)
}

/// The action of a single-action rule, or the current step of a script or state machine
/// (advancing it); `None` once a script has run out.
fn next_action(state: &RuleState) -> Option<FaultAction> {
    let rule = &state.rule;
    if let Some(a) = &rule.action {
        return Some(a.clone());
    }
    let mut cursor = state.cursor.lock().unwrap_or_else(|p| p.into_inner());
    if !rule.script.is_empty() {
        let step = rule.script.get(cursor.step)?;
        cursor.used += 1;
        if step.times.is_some_and(|t| cursor.used >= t) {
            cursor.step += 1;
            cursor.used = 0;
        }
        return Some(step.action.clone());
    }
    let name = cursor.state.clone()?;
    let step = rule.states.get(&name)?;
    cursor.used += 1;
    if step.times.is_some_and(|t| cursor.used >= t) {
        if let Some(next) = &step.next {
            cursor.state = Some(next.clone());
            cursor.used = 0;
        }
    }
    Some(step.action.clone())
}

/// SplitMix64's output function over the seed, rule and match index: a deterministic draw per
/// decision.
pub(crate) fn mix(seed: u64, a: u64, b: u64) -> u64 {
    crate::rng::mix64(
        seed ^ a.wrapping_mul(crate::rng::GAMMA) ^ b.wrapping_mul(0xbf58_476d_1ce4_e5b9),
    )
}

/// A draw as a float in `[0, 1)`.
fn unit(r: u64) -> f64 {
    crate::rng::unit_f64(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::faults::{ScriptStep, StateStep};

    fn facts(path: &str) -> RequestFacts<'_> {
        RequestFacts {
            path,
            workspace: None,
            sources: &[],
            body_read: false,
        }
    }

    fn labels(engine: &FaultEngine, n: usize) -> Vec<String> {
        (0..n)
            .map(|_| {
                engine
                    .decide(facts("/ingest"))
                    .map_or("ok".into(), |d| d.action.label())
            })
            .collect()
    }

    #[test]
    fn times_limits_firing() {
        let e = FaultEngine::new(FaultSet {
            seed: 0,
            rules: vec![FaultRule::status(429).times(2)],
        });
        assert_eq!(labels(&e, 4), ["status 429", "status 429", "ok", "ok"]);
    }

    #[test]
    fn linear_script_runs_in_order_then_passes() {
        let rule = FaultRule::script([
            (
                FaultAction::Status {
                    status: 429,
                    retry_after_s: None,
                    message: None,
                },
                Some(1),
            ),
            (FaultAction::Hang { max_ms: Some(10) }, Some(2)),
        ]);
        let e = FaultEngine::new(FaultSet {
            seed: 0,
            rules: vec![rule],
        });
        assert_eq!(labels(&e, 5), ["status 429", "hang", "hang", "ok", "ok"]);
    }

    #[test]
    fn state_machine_cycles() {
        let mut rule = FaultRule {
            initial: Some("down".into()),
            ..FaultRule::default()
        };
        rule.states.insert(
            "down".into(),
            StateStep {
                action: FaultAction::Status {
                    status: 503,
                    retry_after_s: None,
                    message: None,
                },
                times: Some(2),
                next: Some("up".into()),
            },
        );
        rule.states.insert(
            "up".into(),
            StateStep {
                action: FaultAction::Pass,
                times: Some(1),
                next: Some("down".into()),
            },
        );
        rule.validate().unwrap();
        let e = FaultEngine::new(FaultSet {
            seed: 0,
            rules: vec![rule],
        });
        assert_eq!(
            labels(&e, 6),
            [
                "status 503",
                "status 503",
                "ok",
                "status 503",
                "status 503",
                "ok"
            ]
        );
    }

    #[test]
    fn probability_is_seeded_and_repeatable() {
        let run = |seed| {
            let e = FaultEngine::new(FaultSet {
                seed,
                rules: vec![FaultRule::status(500).probability(0.3)],
            });
            labels(&e, 200)
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
        let fired = run(7).iter().filter(|l| *l == "status 500").count();
        assert!((30..=90).contains(&fired), "about 30% of 200, got {fired}");
    }

    #[test]
    fn request_window_and_path_filters() {
        let rule = FaultRule::status(500).on_path("/ingest").from_request(2);
        let rule = FaultRule {
            until_request: Some(4),
            ..rule
        };
        let e = FaultEngine::new(FaultSet {
            seed: 0,
            rules: vec![rule],
        });
        assert!(
            e.decide(facts("/v2/ingest")).is_none(),
            "other paths do not count as matches"
        );
        assert_eq!(
            labels(&e, 5),
            ["ok", "ok", "status 500", "status 500", "ok"]
        );
    }

    #[test]
    fn body_filters_wait_for_the_body() {
        let rule = FaultRule {
            source: Some("transactions".into()),
            ..FaultRule::status(400)
        };
        let e = FaultEngine::new(FaultSet {
            seed: 0,
            rules: vec![rule],
        });
        assert!(e.decide(facts("/ingest")).is_none());
        let sources = ["transactions"];
        let after = RequestFacts {
            path: "/ingest",
            workspace: Some("prod"),
            sources: &sources,
            body_read: true,
        };
        assert!(e.decide(after).is_some());
        let other = ["clicks"];
        assert!(e
            .decide(RequestFacts {
                sources: &other,
                ..after
            })
            .is_none());
    }

    #[test]
    fn validation_catches_mistakes() {
        assert!(FaultRule::status(200).validate().is_err());
        assert!(FaultRule::status(429).probability(1.5).validate().is_err());
        assert!(FaultRule {
            script: vec![ScriptStep {
                action: FaultAction::Pass,
                times: None
            }],
            ..FaultRule::status(429)
        }
        .validate()
        .is_err());
        let drift = FaultRule::new(FaultAction::SchemaDrift {
            add: vec![crate::faults::DriftField {
                name: "x".into(),
                data_type: "Nope".into(),
            }],
            remove: vec![],
            retype: vec![],
        });
        assert!(drift.validate().is_err());
        let before = FaultRule {
            source: Some("s".into()),
            ..FaultRule::new(FaultAction::ResetBeforeBody)
        };
        assert!(before.validate().is_err());
    }

    #[test]
    fn toml_format_round_trips() {
        let set = FaultSet::from_toml(
            r#"
seed = 7
[[rules]]
name = "throttle"
path = "/ingest"
times = 2
action = { kind = "status", status = 429, retry_after_s = 1 }

[[rules]]
script = [
  { action = { kind = "status", status = 503 }, times = 2 },
  { action = { kind = "reset_after_body" }, times = 1 },
]
"#,
        )
        .unwrap();
        assert_eq!(set.seed, 7);
        assert_eq!(
            set.rules[1].script[1].action,
            FaultAction::ResetAfterBody { process: true }
        );
        let json = serde_json::to_string(&set).unwrap();
        assert_eq!(serde_json::from_str::<FaultSet>(&json).unwrap(), set);
    }
}
