//! Markdown: a summary table, then every failure and warning with its evidence and the command
//! that replays it, then harness errors.

use std::fmt::Write as _;

use super::{SuiteReport, Verdict};

/// Renders the report as GitHub-flavoured Markdown.
pub fn render(report: &SuiteReport) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# Conformance report: `{}`\n", report.sink);
    let _ = writeln!(
        out,
        "**Result: {}**: {}.\n",
        report.verdict().label(),
        report.summary()
    );
    out.push_str("| Scenario | Seed | Result | Checks passed | Failed or warned | Sink | Time |\n");
    out.push_str("|---|---:|---|---:|---|---|---:|\n");
    for s in &report.scenarios {
        let passed = s.checks_with(Verdict::Pass).count();
        let flagged: Vec<String> = s
            .checks
            .iter()
            .filter(|c| c.verdict != Verdict::Pass)
            .map(|c| format!("`{}` ({})", c.id, c.verdict.label().to_lowercase()))
            .collect();
        let _ = writeln!(
            out,
            "| {} | {} | {} | {}/{} | {} | {} | {} |",
            cell(&s.name),
            s.seed,
            s.verdict().label(),
            passed,
            s.checks.len(),
            cell(&flagged.join(", ")),
            cell(&s.sink_ended),
            seconds(s.elapsed_ms)
        );
    }
    let summary = report.check_summary();
    if !summary.is_empty() {
        out.push_str(
            "\n## By check\n\n| Check | Result | Scenario runs | Example |\n|---|---|---:|---|\n",
        );
        for c in &summary {
            let _ = writeln!(
                out,
                "| `{}` | {} | {} | {} (seed {}): {} |",
                c.id,
                c.verdict.label(),
                c.scenarios.len(),
                cell(&c.example_scenario),
                c.example_seed,
                cell(&c.example_explanation)
            );
        }
    }
    section(&mut out, report, Verdict::Fail, "Failures");
    section(&mut out, report, Verdict::Warn, "Warnings");
    let errors = report.harness_errors();
    if !errors.is_empty() {
        out.push_str("\n## Harness errors\n\nThe harness could not run or judge these; they say nothing about the sink.\n");
        for (error, runs) in errors {
            let _ = writeln!(out, "\n- {} — {}", cell(&error), runs.join(", "));
        }
    }
    out
}

fn section(out: &mut String, report: &SuiteReport, verdict: Verdict, heading: &str) {
    let mut first = true;
    for s in &report.scenarios {
        for c in s.checks_with(verdict) {
            if first {
                let _ = writeln!(out, "\n## {heading}");
                first = false;
            }
            let _ = writeln!(
                out,
                "\n### {} `{}`: `{}` (seed {})\n\n*{}.* {}\n",
                verdict.label(),
                s.name,
                c.id,
                s.seed,
                c.title,
                c.explanation
            );
            if !c.evidence.is_empty() {
                out.push_str("Evidence:\n");
                for e in &c.evidence {
                    let _ = writeln!(out, "- {e}");
                }
                out.push('\n');
            }
            let _ = writeln!(out, "Replay: `{}`", s.replay);
        }
    }
}

/// Escapes what would break a table cell.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

fn seconds(ms: u64) -> String {
    format!("{}.{:02} s", ms / 1000, (ms % 1000) / 10)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot() {
        insta::assert_snapshot!(render(&super::super::sample::report()));
    }
}
