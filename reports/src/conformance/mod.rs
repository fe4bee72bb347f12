//! A conformance suite's results as plain data: a [`SuiteReport`] holds one
//! [`ScenarioReport`] per scenario run (a scenario at one seed), each holding one
//! [`CheckReport`] per check that judged it.
//!
//! Renderers: [`markdown::render`], [`json::render`], [`junit::render`].

pub mod json;
pub mod junit;
pub mod markdown;

use serde::{Deserialize, Serialize};

/// How one check judged one scenario run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The sink did what the check requires.
    Pass,
    /// Not a defect, but worth the sink author's attention (for example poor batching).
    Warn,
    /// A defect.
    Fail,
}

impl Verdict {
    /// `PASS`, `WARN` or `FAIL`.
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::Warn => "WARN",
            Verdict::Fail => "FAIL",
        }
    }
}

/// How a whole scenario run ended: the worst of its checks, or a harness error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScenarioVerdict {
    /// Every check passed.
    Pass,
    /// No check failed, at least one warned.
    Warn,
    /// At least one check failed.
    Fail,
    /// The harness could not run or judge the scenario (no verdict on the sink).
    Error,
}

impl ScenarioVerdict {
    /// `PASS`, `WARN`, `FAIL` or `ERROR`.
    pub fn label(self) -> &'static str {
        match self {
            ScenarioVerdict::Pass => "PASS",
            ScenarioVerdict::Warn => "WARN",
            ScenarioVerdict::Fail => "FAIL",
            ScenarioVerdict::Error => "ERROR",
        }
    }
}

/// One check's judgement of one scenario run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckReport {
    /// Stable check id, like `backoff` or `no_lost_ack`.
    pub id: String,
    /// A short title, like "Backoff grows and is not immediate".
    pub title: String,
    /// Pass, warn or fail.
    pub verdict: Verdict,
    /// One paragraph a sink author can act on.
    pub explanation: String,
    /// Journal sequence numbers, record ids and timings that support the verdict.
    pub evidence: Vec<String>,
}

/// One scenario run at one seed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScenarioReport {
    /// Scenario name (its file stem).
    pub name: String,
    /// What the scenario does to the sink.
    pub description: String,
    /// The seed that drove every random choice of this run.
    pub seed: u64,
    /// A command line that replays exactly this run.
    pub replay: String,
    /// Wall time of the run, in milliseconds.
    pub elapsed_ms: u64,
    /// How the sink ended, in words (`exit 0`, `exit 1`, `killed at the 10 s limit`).
    pub sink_exit: String,
    /// Set when the harness could not run or judge the scenario; `checks` is then empty.
    pub harness_error: Option<String>,
    /// The checks, in the order they ran.
    pub checks: Vec<CheckReport>,
}

impl ScenarioReport {
    /// The worst check verdict, or [`ScenarioVerdict::Error`] after a harness error.
    pub fn verdict(&self) -> ScenarioVerdict {
        if self.harness_error.is_some() {
            return ScenarioVerdict::Error;
        }
        match self.checks.iter().map(|c| c.verdict).max() {
            Some(Verdict::Fail) => ScenarioVerdict::Fail,
            Some(Verdict::Warn) => ScenarioVerdict::Warn,
            Some(Verdict::Pass) | None => ScenarioVerdict::Pass,
        }
    }

    /// The checks with the given verdict.
    pub fn checks_with(&self, verdict: Verdict) -> impl Iterator<Item = &CheckReport> {
        self.checks.iter().filter(move |c| c.verdict == verdict)
    }
}

/// A whole conformance run of one sink.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SuiteReport {
    /// The sink under test, as the user named it (its command, or a Rust type's name).
    pub sink: String,
    /// One entry per scenario and seed, in run order.
    pub scenarios: Vec<ScenarioReport>,
}

/// How many scenario runs ended each way.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Every check passed.
    pub pass: usize,
    /// Warnings only.
    pub warn: usize,
    /// At least one failed check.
    pub fail: usize,
    /// The harness could not decide.
    pub error: usize,
}

impl SuiteReport {
    /// Scenario runs by verdict.
    pub fn counts(&self) -> Counts {
        let mut c = Counts::default();
        for s in &self.scenarios {
            match s.verdict() {
                ScenarioVerdict::Pass => c.pass += 1,
                ScenarioVerdict::Warn => c.warn += 1,
                ScenarioVerdict::Fail => c.fail += 1,
                ScenarioVerdict::Error => c.error += 1,
            }
        }
        c
    }

    /// The suite's verdict: fail if any check failed, else error if the harness could not
    /// decide some scenario, else warn or pass.
    pub fn verdict(&self) -> ScenarioVerdict {
        let c = self.counts();
        if c.fail > 0 {
            ScenarioVerdict::Fail
        } else if c.error > 0 {
            ScenarioVerdict::Error
        } else if c.warn > 0 {
            ScenarioVerdict::Warn
        } else {
            ScenarioVerdict::Pass
        }
    }

    /// One sentence: how many scenario runs and how each ended.
    pub fn summary(&self) -> String {
        let c = self.counts();
        format!(
            "{} scenario run(s), {} pass, {} warn, {} fail, {} harness error(s)",
            self.scenarios.len(),
            c.pass,
            c.warn,
            c.fail,
            c.error
        )
    }

    /// The process exit code of a conformance run: 0 when nothing failed (warnings allowed),
    /// 1 when a check failed, 2 when the harness could not decide (and nothing failed).
    pub fn exit_code(&self) -> u8 {
        match self.verdict() {
            ScenarioVerdict::Pass | ScenarioVerdict::Warn => 0,
            ScenarioVerdict::Fail => 1,
            ScenarioVerdict::Error => 2,
        }
    }
}

#[cfg(test)]
pub(crate) mod sample {
    //! A small handmade report for the renderers' snapshot tests.
    use super::*;

    pub fn report() -> SuiteReport {
        SuiteReport {
            sink: "python3 examples/python-sink/sink.py".into(),
            scenarios: vec![
                ScenarioReport {
                    name: "success".into(),
                    description: "25 records, no faults".into(),
                    seed: 1,
                    replay: "tecton-sim conformance --sink 'python3 examples/python-sink/sink.py' --scenario success --seed 1".into(),
                    elapsed_ms: 42,
                    sink_exit: "exit 0".into(),
                    harness_error: None,
                    checks: vec![CheckReport {
                        id: "completeness".into(),
                        title: "Every record acknowledged, or the sink said it gave up".into(),
                        verdict: Verdict::Pass,
                        explanation: "All 25 input records were acknowledged by a 200.".into(),
                        evidence: vec![],
                    }],
                },
                ScenarioReport {
                    name: "throttled-429".into(),
                    description: "three 429s, then healthy".into(),
                    seed: 1,
                    replay: "tecton-sim conformance --sink 'python3 examples/python-sink/sink.py' --scenario throttled-429 --seed 1".into(),
                    elapsed_ms: 1250,
                    sink_exit: "exit 0".into(),
                    harness_error: None,
                    checks: vec![
                        CheckReport {
                            id: "backoff".into(),
                            title: "Backoff grows and is not immediate".into(),
                            verdict: Verdict::Fail,
                            explanation: "Retries came 0.4 ms after the failure | a sink must wait.".into(),
                            evidence: vec![
                                "seq 0: 429 (throttle: status 429) carrying t00000..t00009".into(),
                                "seq 1: +0.4 ms, same records".into(),
                            ],
                        },
                        CheckReport {
                            id: "batching_efficiency".into(),
                            title: "Requests carry several records".into(),
                            verdict: Verdict::Warn,
                            explanation: "Requests averaged 1.0 records although batch_size is 10.".into(),
                            evidence: vec!["25 requests for 25 records".into()],
                        },
                    ],
                },
                ScenarioReport {
                    name: "bad-repo".into(),
                    description: "a scenario whose repository cannot load".into(),
                    seed: 1,
                    replay: "tecton-sim conformance --sink 'python3 examples/python-sink/sink.py' --scenario bad-repo --seed 1".into(),
                    elapsed_ms: 0,
                    sink_exit: "not run".into(),
                    harness_error: Some("scenarios/bad-repo.toml: `repository`: no such file".into()),
                    checks: vec![],
                },
            ],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_roll_up_worst_first() {
        let r = sample::report();
        let v: Vec<ScenarioVerdict> = r.scenarios.iter().map(ScenarioReport::verdict).collect();
        assert_eq!(
            v,
            [
                ScenarioVerdict::Pass,
                ScenarioVerdict::Fail,
                ScenarioVerdict::Error
            ]
        );
        assert_eq!(r.verdict(), ScenarioVerdict::Fail);
        assert_eq!(r.exit_code(), 1);
        assert_eq!(
            r.counts(),
            Counts {
                pass: 1,
                warn: 0,
                fail: 1,
                error: 1
            }
        );
    }

    #[test]
    fn harness_errors_alone_exit_2_and_warnings_exit_0() {
        let mut r = sample::report();
        r.scenarios.remove(1);
        assert_eq!(r.exit_code(), 2);
        r.scenarios.pop();
        assert_eq!(r.exit_code(), 0);
    }
}
