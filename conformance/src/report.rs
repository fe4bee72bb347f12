//! Turns a [`SuiteRun`] into the plain [`reports::conformance`] data types, which the
//! `reports` crate renders as Markdown, JSON and JUnit XML. Every text that may quote what a
//! sink or a response said has its control characters escaped here, once.

use reports::conformance::{escape_control, CheckReport, ScenarioReport, SuiteReport, Verdict};

use crate::checks::describe_exit;
use crate::runner::{ScenarioResult, SuiteRun};

/// The report of a suite run. With `deny_warnings`, every check that warned is reported as
/// failed (its explanation says so), so every renderer and the exit code agree.
pub fn suite_report(run: &SuiteRun, deny_warnings: bool) -> SuiteReport {
    SuiteReport {
        tool_version: env!("CARGO_PKG_VERSION").to_owned(),
        sink: escape_control(&run.sink),
        base_seed: run.base_seed,
        deny_warnings,
        scenarios: run
            .results
            .iter()
            .map(|r| scenario_report(r, deny_warnings))
            .collect(),
    }
}

/// The report of one scenario run.
pub(crate) fn scenario_report(r: &ScenarioResult, deny_warnings: bool) -> ScenarioReport {
    match &r.run {
        Ok(run) => ScenarioReport {
            name: r.scenario.clone(),
            description: r.description.clone(),
            seed: r.seed,
            replay: escape_control(&r.replay),
            elapsed_ms: u64::try_from(run.elapsed.as_millis()).unwrap_or(u64::MAX),
            sink_exit: run.observation.outcome.exit_code,
            sink_ended: describe_exit(&run.observation.outcome),
            harness_error: None,
            checks: run
                .results
                .iter()
                .map(|c| {
                    let denied = deny_warnings && c.verdict == Verdict::Warn;
                    let explanation = escape_control(&c.explanation);
                    CheckReport {
                        id: c.id.as_str().to_owned(),
                        title: c.id.title().to_owned(),
                        verdict: if denied { Verdict::Fail } else { c.verdict },
                        explanation: if denied {
                            format!("(A warning, failed by --deny-warnings.) {explanation}")
                        } else {
                            explanation
                        },
                        evidence: c.evidence.iter().cloned().map(|e| e.escaped()).collect(),
                    }
                })
                .collect(),
        },
        Err(e) => ScenarioReport {
            name: r.scenario.clone(),
            description: r.description.clone(),
            seed: r.seed,
            replay: escape_control(&r.replay),
            elapsed_ms: 0,
            sink_exit: None,
            sink_ended: "not run".into(),
            harness_error: Some(escape_control(&e.to_string())),
            checks: Vec::new(),
        },
    }
}
