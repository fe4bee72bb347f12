//! The determinism self-check: the same scenario, seed and (deterministic) sink must produce
//! the same exchanges and the same verdicts. Timings are excluded; everything a check reads
//! apart from them is compared: request bodies, statuses, outcomes, faults, written records.

use super::{run_scenario, HarnessError, RunOptions, ScenarioRun, Subject};
use crate::scenario::Scenario;
use crate::sink::Sink;

/// The result of running one scenario twice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeterminismReport {
    /// Scenario name.
    pub scenario: String,
    /// The seed both runs used.
    pub seed: u64,
    /// Every difference found, in words; empty when the runs agree.
    pub differences: Vec<String>,
}

impl DeterminismReport {
    /// Whether the two runs agree.
    pub fn identical(&self) -> bool {
        self.differences.is_empty()
    }
}

/// What is compared of one run: per exchange (path, status, outcome, fault, request body),
/// the written records (id and the journal seq that wrote them), and per check its verdict.
fn fingerprint(run: &ScenarioRun) -> (Vec<String>, Vec<String>, Vec<String>) {
    let obs = &run.observation;
    let exchanges = obs
        .exchanges
        .iter()
        .map(|e| {
            let body = match &e.body {
                None => "(body not read)".to_owned(),
                Some(Ok(j)) => j.to_string(),
                Some(Err(_)) => "(not JSON)".to_owned(),
            };
            format!(
                "seq {} {} {} -> {} {:?} fault={:?} body={body}",
                e.seq, e.method, e.path, e.status, e.outcome, e.fault
            )
        })
        .collect();
    let written = obs
        .written
        .iter()
        .flatten()
        .map(|w| format!("{} by seq {}", w.id, w.request))
        .collect();
    let verdicts = run
        .results
        .iter()
        .map(|r| format!("{} {}", r.id, r.verdict.label()))
        .collect();
    (exchanges, written, verdicts)
}

fn compare(what: &str, a: &[String], b: &[String], out: &mut Vec<String>) {
    if a.len() != b.len() {
        out.push(format!(
            "{what}: {} in the first run, {} in the second",
            a.len(),
            b.len()
        ));
    }
    if let Some((x, y)) = a.iter().zip(b).find(|(x, y)| x != y) {
        out.push(format!(
            "{what}: first difference:\n  first:  {x}\n  second: {y}"
        ));
    }
}

/// Runs `scenario` twice with `seed` against `sink` and compares the runs.
pub async fn determinism_check(
    scenario: &Scenario,
    seed: u64,
    sink: &dyn Sink,
) -> Result<DeterminismReport, HarnessError> {
    let opts = RunOptions::default();
    let first = run_scenario(scenario, seed, &Subject::Sink(sink), &opts).await?;
    let second = run_scenario(scenario, seed, &Subject::Sink(sink), &opts).await?;
    let (ea, wa, va) = fingerprint(&first);
    let (eb, wb, vb) = fingerprint(&second);
    let mut differences = Vec::new();
    compare("exchanges", &ea, &eb, &mut differences);
    compare("written records", &wa, &wb, &mut differences);
    compare("verdicts", &va, &vb, &mut differences);
    Ok(DeterminismReport {
        scenario: scenario.name.clone(),
        seed,
        differences,
    })
}
