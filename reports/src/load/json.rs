//! `report.json`: the [`LoadReport`] as it is, plus an optional `analysis` object with what the
//! other reports derive from it (costs, recommendation, thresholds, comparison). A reader that
//! knows only [`LoadReport`] ignores `analysis`.

use std::fmt;
use std::path::Path;

use serde::Serialize;

use super::{
    costs, recommend, Comparison, CostModel, LoadReport, PointCost, Recommendation, ReportOptions,
    ThresholdResult, LOAD_SCHEMA_VERSION,
};

#[derive(Serialize)]
struct JsonReport<'a> {
    #[serde(flatten)]
    report: &'a LoadReport,
    analysis: Analysis<'a>,
}

#[derive(Serialize)]
struct Analysis<'a> {
    cost_model: &'a CostModel,
    given: Given<'a>,
    costs: Vec<PointCost>,
    recommendation: Recommendation,
    thresholds: &'a [ThresholdResult],
    #[serde(skip_serializing_if = "Option::is_none")]
    comparison: Option<&'a Comparison>,
}

/// The settings the user gave; every other cost parameter is an example default and every
/// other criterion the default.
#[derive(Serialize)]
struct Given<'a> {
    cost_model: &'a [&'static str],
    criteria: &'a [&'static str],
}

/// Renders `report.json`. Its `schema_version` is always [`LOAD_SCHEMA_VERSION`]: the file is
/// written in this version's layout whatever the input says.
pub fn render_json(report: &LoadReport, opts: &ReportOptions) -> String {
    let mut report = report.clone();
    report.schema_version = LOAD_SCHEMA_VERSION;
    let out = JsonReport {
        report: &report,
        analysis: Analysis {
            cost_model: &opts.cost,
            given: Given {
                cost_model: &opts.cost_given,
                criteria: &opts.criteria_given,
            },
            costs: costs(&report, &opts.cost),
            recommendation: recommend(&report, &opts.cost, &opts.criteria),
            thresholds: &opts.thresholds,
            comparison: opts.comparison.as_ref(),
        },
    };
    // Plain structs of strings and numbers always serialize.
    serde_json::to_string_pretty(&out).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
}

/// Why a stored report could not be read.
#[derive(Debug)]
pub enum ReadError {
    /// The file could not be read.
    Io(std::io::Error),
    /// The file is not a load report.
    Json(serde_json::Error),
    /// The file is a load report of another schema version.
    Version(u32),
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::Io(e) => write!(f, "cannot read the report: {e}"),
            ReadError::Json(e) => write!(f, "not a load report (report.json): {e}"),
            ReadError::Version(v) => write!(
                f,
                "load report schema_version {v} is not supported (this tool reads 1 and {LOAD_SCHEMA_VERSION})"
            ),
        }
    }
}

impl std::error::Error for ReadError {}

/// Reads a `report.json` (for `--compare OLD.json`), checking its schema version.
pub fn read_report(path: &Path) -> Result<LoadReport, ReadError> {
    let text = std::fs::read_to_string(path).map_err(ReadError::Io)?;
    parse_report(&text)
}

/// Parses the text of a `report.json`.
pub fn parse_report(text: &str) -> Result<LoadReport, ReadError> {
    let report: LoadReport = serde_json::from_str(text).map_err(ReadError::Json)?;
    if !super::LOAD_SCHEMA_VERSIONS_READ.contains(&report.schema_version) {
        return Err(ReadError::Version(report.schema_version));
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::sample::{sweep, SWEEP_JSON};

    fn err(text: &str) -> String {
        match parse_report(text) {
            Ok(_) => panic!("accepted {text:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn a_stored_report_of_another_kind_or_version_is_refused_clearly() {
        let newer = SWEEP_JSON.replacen("\"schema_version\": 2", "\"schema_version\": 3", 1);
        assert_eq!(
            err(&newer),
            "load report schema_version 3 is not supported (this tool reads 1 and 2)"
        );
        // A version 1 report has the same points: it is still a baseline.
        let older = SWEEP_JSON.replacen("\"schema_version\": 2", "\"schema_version\": 1", 1);
        assert_eq!(parse_report(&older).map(|r| r.points.len()).ok(), Some(12));
        assert!(err("{\"sink\": \"x\", \"scenarios\": []}").starts_with("not a load report"));
        assert!(err("not json").starts_with("not a load report"));
        let missing = read_report(Path::new("/nonexistent/report.json"));
        assert!(matches!(missing, Err(ReadError::Io(_))));
    }

    #[test]
    fn the_written_version_is_always_the_current_one() {
        let mut r = sweep();
        r.schema_version = 0;
        let back = parse_report(&render_json(&r, &ReportOptions::default()));
        assert_eq!(
            back.map(|b| b.schema_version).ok(),
            Some(LOAD_SCHEMA_VERSION)
        );
    }
}
