//! JSON for machines: the report's data with its totals, verdict and exit code spelled out, in a
//! document whose shape is published as a JSON Schema ([`SCHEMA`],
//! `reports/schema/conformance-report.schema.json`). `schema_version` changes only when a field
//! is removed or changes meaning; new fields may appear within a version.

use serde::Serialize;

use super::{CheckReport, CheckSummary, Counts, ScenarioReport, ScenarioVerdict, SuiteReport};

/// The version of the document's shape.
pub(crate) const SCHEMA_VERSION: u32 = 1;

/// The JSON Schema (draft 2020-12) every rendered report satisfies.
pub const SCHEMA: &str = include_str!("../../schema/conformance-report.schema.json");

#[derive(Serialize)]
struct Document<'a> {
    schema_version: u32,
    tool: &'static str,
    tool_version: &'a str,
    sink: &'a str,
    base_seed: u64,
    deny_warnings: bool,
    verdict: ScenarioVerdict,
    exit_code: u8,
    summary: String,
    totals: Totals,
    check_summary: Vec<CheckSummary>,
    scenarios: Vec<Scenario<'a>>,
}

#[derive(Serialize)]
struct Totals {
    scenario_runs: usize,
    scenarios: Counts,
    checks: CheckCounts,
}

#[derive(Serialize)]
struct CheckCounts {
    pass: usize,
    warn: usize,
    fail: usize,
}

#[derive(Serialize)]
struct Scenario<'a> {
    name: &'a str,
    description: &'a str,
    seed: u64,
    verdict: ScenarioVerdict,
    replay: &'a str,
    elapsed_ms: u64,
    sink_exit: Option<i32>,
    sink_ended: &'a str,
    harness_error: Option<&'a str>,
    checks: &'a [CheckReport],
}

impl<'a> Scenario<'a> {
    fn of(s: &'a ScenarioReport) -> Self {
        Scenario {
            name: &s.name,
            description: &s.description,
            seed: s.seed,
            verdict: s.verdict(),
            replay: &s.replay,
            elapsed_ms: s.elapsed_ms,
            sink_exit: s.sink_exit,
            sink_ended: &s.sink_ended,
            harness_error: s.harness_error.as_deref(),
            checks: &s.checks,
        }
    }
}

/// Renders the report as pretty-printed JSON.
pub fn render(report: &SuiteReport) -> String {
    let checks = report.check_counts();
    let doc = Document {
        schema_version: SCHEMA_VERSION,
        tool: "tecton-sim",
        tool_version: &report.tool_version,
        sink: &report.sink,
        base_seed: report.base_seed,
        deny_warnings: report.deny_warnings,
        verdict: report.verdict(),
        exit_code: report.exit_code(),
        summary: report.summary(),
        totals: Totals {
            scenario_runs: report.scenarios.len(),
            scenarios: report.counts(),
            checks: CheckCounts {
                pass: checks.pass,
                warn: checks.warn,
                fail: checks.fail,
            },
        },
        check_summary: report.check_summary(),
        scenarios: report.scenarios.iter().map(Scenario::of).collect(),
    };
    // Plain structs of strings and numbers: serializing cannot fail (non-finite floats become
    // `null`).
    serde_json::to_string_pretty(&doc).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn document_carries_the_totals_and_structured_evidence() {
        let report = super::super::sample::report();
        let doc: serde_json::Value = serde_json::from_str(&render(&report)).unwrap_or_default();
        assert_eq!(doc["schema_version"], 1);
        assert_eq!(doc["exit_code"], 1);
        assert_eq!(doc["verdict"], "fail");
        assert_eq!(doc["totals"]["scenarios"]["error"], 1);
        assert_eq!(doc["scenarios"][0]["sink_exit"], 0);
        let evidence = &doc["scenarios"][1]["checks"][0]["evidence"][0];
        assert_eq!(evidence["seq"], 0);
        assert_eq!(evidence["status"], 429);
        assert_eq!(evidence["records"][9], "t00009");
        assert!(serde_json::from_str::<serde_json::Value>(SCHEMA).is_ok());
    }
}
