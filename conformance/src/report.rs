//! Turns a [`SuiteRun`] into the plain [`reports::conformance`] data types, which the
//! `reports` crate renders as Markdown, JSON and JUnit XML.

use reports::conformance::{CheckReport, ScenarioReport, SuiteReport};

use crate::checks::describe_exit;
use crate::runner::{ScenarioResult, SuiteRun};

/// The report of a suite run.
pub fn suite_report(run: &SuiteRun) -> SuiteReport {
    SuiteReport {
        sink: run.sink.clone(),
        scenarios: run.results.iter().map(scenario_report).collect(),
    }
}

/// The report of one scenario run.
pub fn scenario_report(r: &ScenarioResult) -> ScenarioReport {
    match &r.run {
        Ok(run) => ScenarioReport {
            name: r.scenario.clone(),
            description: r.description.clone(),
            seed: r.seed,
            replay: r.replay.clone(),
            elapsed_ms: u64::try_from(run.elapsed.as_millis()).unwrap_or(u64::MAX),
            sink_exit: describe_exit(&run.observation.outcome),
            harness_error: None,
            checks: run
                .results
                .iter()
                .map(|c| CheckReport {
                    id: c.id.as_str().to_owned(),
                    title: c.id.title().to_owned(),
                    verdict: c.verdict,
                    explanation: c.explanation.clone(),
                    evidence: c.evidence.clone(),
                })
                .collect(),
        },
        Err(e) => ScenarioReport {
            name: r.scenario.clone(),
            description: r.description.clone(),
            seed: r.seed,
            replay: r.replay.clone(),
            elapsed_ms: 0,
            sink_exit: "not run".into(),
            harness_error: Some(e.to_string()),
            checks: Vec::new(),
        },
    }
}
