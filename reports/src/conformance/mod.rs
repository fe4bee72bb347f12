//! A conformance suite's results as plain data: a [`SuiteReport`] holds one
//! [`ScenarioReport`] per scenario run (a scenario at one seed), each holding one
//! [`CheckReport`] per check that judged it.
//!
//! Renderers: [`markdown::render`], [`json::render`] (its schema is
//! [`json::SCHEMA`], `reports/schema/conformance-report.schema.json`), [`junit::render`].

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

/// One piece of evidence behind a verdict: a line for people and, when it is about an
/// exchange, that exchange's facts for machines.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// The line for people (control characters escaped).
    pub text: String,
    /// Journal sequence number of the exchange it is about.
    pub seq: Option<u64>,
    /// When that exchange arrived, in ms after the run's first exchange.
    pub at_ms: Option<f64>,
    /// The HTTP status sent (0: none).
    pub status: Option<u16>,
    /// How the exchange ended (`responded`, `reset`, `truncated`, `client_gone`, `abandoned`).
    pub outcome: Option<String>,
    /// The fault the mock applied, as `rule: action`.
    pub fault: Option<String>,
    /// What an error response said (Tecton's `errorMessage`).
    pub message: Option<String>,
    /// The record ids involved.
    pub records: Vec<String>,
}

impl Evidence {
    /// Adds a clause after the text (`…; never sent again`).
    pub fn with_note(mut self, note: impl std::fmt::Display) -> Self {
        self.text = format!("{}; {note}", self.text);
        self
    }

    /// Puts words before the text (`t00003 last sent in …`).
    pub fn with_prefix(mut self, prefix: impl std::fmt::Display) -> Self {
        self.text = format!("{prefix}{}", self.text);
        self
    }

    /// The same evidence with every text field's control characters escaped.
    pub fn escaped(self) -> Self {
        Evidence {
            text: escape_control(&self.text),
            fault: self.fault.as_deref().map(escape_control),
            message: self.message.as_deref().map(escape_control),
            records: self.records.iter().map(|r| escape_control(r)).collect(),
            ..self
        }
    }
}

impl From<String> for Evidence {
    fn from(text: String) -> Self {
        Evidence {
            text,
            ..Evidence::default()
        }
    }
}

impl From<&str> for Evidence {
    fn from(text: &str) -> Self {
        Evidence::from(text.to_owned())
    }
}

impl std::fmt::Display for Evidence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// `text` with control characters (which move terminal cursors, ring bells and make `grep` call
/// output binary) written as `\u{…}` escapes; tabs and newlines are kept.
///
/// ```
/// assert_eq!(reports::conformance::escape_control("a\u{1b}[2Jb\tc"), "a\\u{1b}[2Jb\tc");
/// ```
pub fn escape_control(text: &str) -> String {
    if !text.chars().any(needs_escape) {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if needs_escape(c) {
            out.push_str(&format!("\\u{{{:x}}}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    out
}

fn needs_escape(c: char) -> bool {
    c.is_control() && c != '\n' && c != '\t'
}

/// One check's judgement of one scenario run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    pub evidence: Vec<Evidence>,
}

/// One scenario run at one seed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    /// The sink's exit code (an attached sink that completed counts as 0); `None` when it was
    /// killed or never ran.
    pub sink_exit: Option<i32>,
    /// How the sink ended, in words (`exited 0`, `was killed at the wall-clock limit`).
    pub sink_ended: String,
    /// Set when the harness could not run or judge the scenario; `checks` is then empty.
    pub harness_error: Option<String>,
    /// The checks, in the order they ran.
    pub checks: Vec<CheckReport>,
}

impl ScenarioReport {
    /// The worst check verdict, or [`ScenarioVerdict::Error`] after a harness error.
    pub(crate) fn verdict(&self) -> ScenarioVerdict {
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
    pub(crate) fn checks_with(&self, verdict: Verdict) -> impl Iterator<Item = &CheckReport> {
        self.checks.iter().filter(move |c| c.verdict == verdict)
    }
}

/// A whole conformance run of one sink.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SuiteReport {
    /// The version of the tool that judged the sink.
    pub tool_version: String,
    /// The sink under test, as the user named it (its command, or a Rust type's name).
    pub sink: String,
    /// The seed of the first run (`--seed`); run `k` used `base_seed + k`.
    pub base_seed: u64,
    /// Whether warnings were turned into failures (`--deny-warnings`). When set, every check
    /// that warned is reported as failed, its explanation saying so.
    pub deny_warnings: bool,
    /// One entry per scenario and seed, in run order.
    pub scenarios: Vec<ScenarioReport>,
}

/// One check that failed or warned somewhere in a suite, with where and one example.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckSummary {
    /// The check id.
    pub id: String,
    /// Its title.
    pub title: String,
    /// Fail or warn.
    pub verdict: Verdict,
    /// The scenario runs where it did, as `name (seed s)`.
    pub scenarios: Vec<String>,
    /// The first such scenario run.
    pub example_scenario: String,
    /// Its seed.
    pub example_seed: u64,
    /// The check's explanation there.
    pub example_explanation: String,
    /// Its first piece of evidence there, if any.
    pub example_evidence: Option<Evidence>,
    /// The command that replays that run.
    pub example_replay: String,
}

/// How many scenario runs (or checks) ended each way.
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

    /// Checks by verdict, over every scenario run.
    pub fn check_counts(&self) -> Counts {
        let mut c = Counts::default();
        for check in self.scenarios.iter().flat_map(|s| &s.checks) {
            match check.verdict {
                Verdict::Pass => c.pass += 1,
                Verdict::Warn => c.warn += 1,
                Verdict::Fail => c.fail += 1,
            }
        }
        c
    }

    /// Every check that failed or warned somewhere: failures first, then warnings, each in the
    /// order it first appeared, with the scenario runs where it did and one example. This is
    /// the end of a noisy run: one line per root cause rather than one per scenario.
    pub fn check_summary(&self) -> Vec<CheckSummary> {
        let mut out: Vec<CheckSummary> = Vec::new();
        for verdict in [Verdict::Fail, Verdict::Warn] {
            for s in &self.scenarios {
                for c in s.checks_with(verdict) {
                    let run = format!("{} (seed {})", s.name, s.seed);
                    match out
                        .iter_mut()
                        .find(|o| o.id == c.id && o.verdict == verdict)
                    {
                        Some(o) => o.scenarios.push(run),
                        None => out.push(CheckSummary {
                            id: c.id.clone(),
                            title: c.title.clone(),
                            verdict,
                            scenarios: vec![run],
                            example_scenario: s.name.clone(),
                            example_seed: s.seed,
                            example_explanation: c.explanation.clone(),
                            example_evidence: c.evidence.first().cloned(),
                            example_replay: s.replay.clone(),
                        }),
                    }
                }
            }
        }
        out
    }

    /// Harness errors, each distinct message once, with the runs it stopped.
    pub fn harness_errors(&self) -> Vec<(String, Vec<String>)> {
        let mut out: Vec<(String, Vec<String>)> = Vec::new();
        for s in &self.scenarios {
            let Some(e) = &s.harness_error else { continue };
            let run = format!("{} (seed {})", s.name, s.seed);
            match out.iter_mut().find(|(m, _)| m == e) {
                Some((_, runs)) => runs.push(run),
                None => out.push((e.clone(), vec![run])),
            }
        }
        out
    }
}

#[cfg(test)]
pub(crate) mod sample {
    //! A small handmade report for the renderers' snapshot tests.
    use super::*;

    pub(crate) fn report() -> SuiteReport {
        SuiteReport {
            tool_version: "0.1.0".into(),
            sink: "python3 examples/python-sink/sink.py".into(),
            base_seed: 1,
            deny_warnings: false,
            scenarios: vec![
                ScenarioReport {
                    name: "success".into(),
                    description: "25 records, no faults".into(),
                    seed: 1,
                    replay: "tecton-sim conformance --sink 'python3 examples/python-sink/sink.py' --scenario success --seed 1".into(),
                    elapsed_ms: 42,
                    sink_exit: Some(0),
                    sink_ended: "exited 0".into(),
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
                    sink_exit: Some(0),
                    sink_ended: "exited 0".into(),
                    harness_error: None,
                    checks: vec![
                        CheckReport {
                            id: "backoff".into(),
                            title: "Backoff grows and is not immediate".into(),
                            verdict: Verdict::Fail,
                            explanation: "Retries came 0.4 ms after the failure | a sink must wait.".into(),
                            evidence: vec![
                                Evidence {
                                    text: "seq 0 at +0.0 ms: POST /ingest -> 429 [fault throttle: status 429] after 0.3 ms, 10 record(s) t00000 … t00009 (10)".into(),
                                    seq: Some(0),
                                    at_ms: Some(0.0),
                                    status: Some(429),
                                    outcome: Some("responded".into()),
                                    fault: Some("throttle: status 429".into()),
                                    message: Some("too many requests".into()),
                                    records: (0..10).map(|i| format!("t{i:05}")).collect(),
                                },
                                "seq 1 at +0.4 ms: same records, body \\u{1b}[31m".into(),
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
                    sink_exit: None,
                    sink_ended: "not run".into(),
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
    fn summary_groups_checks_and_errors() {
        let mut r = sample::report();
        r.scenarios.push(r.scenarios[1].clone());
        r.scenarios[3].seed = 2;
        let summary = r.check_summary();
        let ids: Vec<(&str, Verdict, usize)> = summary
            .iter()
            .map(|c| (c.id.as_str(), c.verdict, c.scenarios.len()))
            .collect();
        assert_eq!(
            ids,
            [
                ("backoff", Verdict::Fail, 2),
                ("batching_efficiency", Verdict::Warn, 2)
            ]
        );
        assert_eq!(summary[0].example_seed, 1);
        assert_eq!(r.harness_errors().len(), 1);
        assert_eq!(
            r.check_counts(),
            Counts {
                pass: 1,
                warn: 2,
                fail: 2,
                error: 0
            }
        );
    }

    #[test]
    fn control_characters_are_escaped() {
        let e = Evidence::from("a\u{1b}[2J\u{0}b\n").escaped();
        assert_eq!(e.text, "a\\u{1b}[2J\\u{0}b\n");
        assert_eq!(escape_control("plain – text"), "plain – text");
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
