//! JUnit XML for CI systems: one `<testsuite>` per scenario run, one `<testcase>` per check.
//! A failed check is a `<failure>`; a warning is a passing test case with the warning in its
//! `<system-out>`; a harness error is a single `harness` test case with an `<error>`.

use std::time::Duration;

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use super::{Evidence, ScenarioReport, SuiteReport, Verdict};

/// Why the XML could not be produced.
#[derive(Debug)]
pub struct RenderError(String);

impl std::fmt::Display for RenderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot render JUnit XML: {}", self.0)
    }
}

impl std::error::Error for RenderError {}

/// Renders the report as JUnit XML.
pub fn render(report: &SuiteReport) -> Result<String, RenderError> {
    let mut junit = Report::new(format!("tecton-sim conformance: {}", report.sink));
    for s in &report.scenarios {
        junit.add_test_suite(suite(s));
    }
    junit.to_string().map_err(|e| RenderError(e.to_string()))
}

fn suite(s: &ScenarioReport) -> TestSuite {
    let mut suite = TestSuite::new(format!("{} (seed {})", s.name, s.seed));
    suite.set_time(Duration::from_millis(s.elapsed_ms));
    suite.add_property(("scenario", s.name.as_str()));
    suite.add_property(("seed", s.seed.to_string().as_str()));
    suite.add_property(("replay", s.replay.as_str()));
    let exit = s
        .sink_exit
        .map_or_else(|| "none".to_owned(), |c| c.to_string());
    suite.add_property(("sink_exit", exit.as_str()));
    suite.add_property(("sink_ended", s.sink_ended.as_str()));
    let classname = format!("conformance.{}", s.name);
    if let Some(error) = &s.harness_error {
        let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
        status.set_message(error.as_str());
        status.set_description(format!("{error}\nReplay: {}", s.replay));
        let mut case = TestCase::new("harness", status);
        case.set_classname(classname.as_str());
        suite.add_test_case(case);
        return suite;
    }
    for c in &s.checks {
        let details = details(&c.explanation, &c.evidence, &s.replay);
        let mut case = match c.verdict {
            Verdict::Pass => TestCase::new(c.id.as_str(), TestCaseStatus::success()),
            Verdict::Warn => {
                let mut case = TestCase::new(c.id.as_str(), TestCaseStatus::success());
                case.set_system_out(format!("WARN: {details}"));
                case
            }
            Verdict::Fail => {
                let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
                status.set_message(headline(&c.explanation));
                status.set_type(c.id.as_str());
                status.set_description(details);
                TestCase::new(c.id.as_str(), status)
            }
        };
        case.set_classname(classname.as_str());
        suite.add_test_case(case);
    }
    suite
}

/// What went wrong, in a line: the explanation's first sentence.
fn headline(explanation: &str) -> String {
    const MAX: usize = 240;
    let first = explanation
        .split_inclusive(". ")
        .next()
        .unwrap_or(explanation)
        .trim_end();
    let mut line: String = first.chars().take(MAX).collect();
    if line.len() < first.len() {
        line.push('…');
    }
    line
}

fn details(explanation: &str, evidence: &[Evidence], replay: &str) -> String {
    let mut text = explanation.to_owned();
    if !evidence.is_empty() {
        text.push_str("\nEvidence:");
        for e in evidence {
            text.push_str("\n- ");
            text.push_str(&e.text);
        }
    }
    text.push_str("\nReplay: ");
    text.push_str(replay);
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot() {
        let xml = render(&super::super::sample::report());
        insta::assert_snapshot!(xml.unwrap_or_else(|e| e.to_string()));
    }

    #[test]
    fn a_failure_message_says_what_went_wrong() {
        assert_eq!(
            headline("Retries came 0.4 ms after the failure. A sink must wait."),
            "Retries came 0.4 ms after the failure."
        );
        assert_eq!(headline("No full stop"), "No full stop");
    }
}
