//! `report.md`: the load report for a pull request. Verdicts first (thresholds, regressions),
//! then the recommendation, the measurements, the example costs and the comparison.

use std::fmt::Write as _;

use super::threshold::pattern_name;
use super::{
    costs, fmt_int, fmt_ms, fmt_pct, fmt_usd, recommend, Choice, LoadReport, Pattern,
    ReportOptions, RunPoint,
};

/// Renders the report as GitHub-flavoured Markdown.
pub(super) fn render(report: &LoadReport, opts: &ReportOptions) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# Load report: {}\n", title(report));
    let _ = writeln!(out, "{}\n", provenance(report));
    verdicts(&mut out, opts);
    recommendation(&mut out, report, opts);
    results(&mut out, report);
    cost(&mut out, report, opts);
    thresholds(&mut out, opts);
    comparison(&mut out, report, opts);
    out
}

/// `push vs kafka`, from the patterns present in run order.
pub(super) fn title(report: &LoadReport) -> String {
    let mut names: Vec<&str> = Vec::new();
    for p in &report.points {
        let n = name(p.pattern);
        if !names.contains(&n) {
            names.push(n);
        }
    }
    if names.is_empty() {
        "no points".to_owned()
    } else {
        names.join(" vs ")
    }
}

/// The line that says how the run was made.
pub(super) fn provenance(report: &LoadReport) -> String {
    format!(
        "Profile `{}` · seed {} · started {} · tecton-sim {} · {} point(s)",
        report.profile,
        report.seed,
        report.started_at,
        report.tool_version,
        report.points.len()
    )
}

pub(super) fn name(p: Option<Pattern>) -> &'static str {
    p.map(pattern_name).unwrap_or("unknown")
}

fn verdicts(out: &mut String, opts: &ReportOptions) {
    if !opts.thresholds.is_empty() {
        let passed = opts.thresholds.iter().filter(|t| t.passed).count();
        let _ = writeln!(
            out,
            "**Thresholds: {}** ({passed} of {} passed).\n",
            if passed == opts.thresholds.len() {
                "PASS"
            } else {
                "FAIL"
            },
            opts.thresholds.len()
        );
    }
    if let Some(c) = &opts.comparison {
        let n = c.regressions().count();
        let _ = writeln!(
            out,
            "**Regressions against the baseline: {}**.\n",
            if n == 0 {
                "none".to_owned()
            } else {
                n.to_string()
            }
        );
    }
}

fn recommendation(out: &mut String, report: &LoadReport, opts: &ReportOptions) {
    let rec = recommend(report, &opts.cost, &opts.criteria);
    out.push_str("## Recommendation\n\n");
    if rec.bands.is_empty() {
        out.push_str("No push or kafka point: nothing to recommend.\n\n");
        return;
    }
    let _ = writeln!(out, "{}\n", rec.crossover_sentence());
    out.push_str(
        "| Rate band (records/s) | Choose | Because | Push: achieved · freshness p99 · cost/h | Kafka: achieved · freshness p99 · cost/h |\n",
    );
    out.push_str("|---|---|---|---|---|\n");
    let rpr = rec.crossover.records_per_request;
    for b in &rec.bands {
        let cell = |p: Pattern| {
            super::find_point(report, Some(p), b.to_rate)
                .map(|pt| {
                    let usd = if p == Pattern::Kafka {
                        opts.cost.kafka_usd_per_hour(b.to_rate)
                    } else {
                        opts.cost.push_usd_per_hour(b.to_rate, rpr)
                    };
                    format!(
                        "{} · {} · {}",
                        fmt_pct(pt.achieved_ratio()),
                        pt.freshness_ms
                            .map(|f| fmt_ms(f.p99))
                            .unwrap_or_else(|| "n/a".into()),
                        fmt_usd(usd)
                    )
                })
                .unwrap_or_else(|| "not measured".into())
        };
        let choice = match b.choice {
            Choice::Neither => "**neither**".to_owned(),
            c => format!("**{}**", c.label()),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} |",
            band_label(b.from_rate, b.to_rate),
            choice,
            b.because,
            cell(Pattern::Push),
            cell(Pattern::Kafka)
        );
    }
    let _ = writeln!(
        out,
        "\n{} Each band is judged at its upper edge. Costs use {}.\n",
        opts.criteria_sentence(),
        opts.prices_label()
    );
}

/// `≤ 100`, `100–500`.
pub(super) fn band_label(from: f64, to: f64) -> String {
    if from <= 0.0 {
        format!("≤ {}", fmt_int(to))
    } else {
        format!("{}–{}", fmt_int(from), fmt_int(to))
    }
}

fn results(out: &mut String, report: &LoadReport) {
    out.push_str("## Results\n\n");
    if report.points.is_empty() {
        out.push_str("No run points.\n\n");
        return;
    }
    out.push_str(
        "| Pattern | Offered/s | Achieved/s | Achieved | Errors | 429 | Late sends | Latency p50 | p99 | p99.9 | max | p99 uncorrected | Freshness p50 | Freshness p99 |\n",
    );
    out.push_str("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for p in &report.points {
        let mut row = format!("| {} |", name(p.pattern));
        for cell in result_cells(p) {
            let _ = write!(row, " {cell} |");
        }
        out.push_str(&row);
        out.push('\n');
    }
    out.push_str(
        "\nLatency is measured from each request's intended start (coordinated omission \
         corrected); the uncorrected p99 is from its actual start. Freshness is event sent → \
         servable.\n\n",
    );
}

/// `1.20% (429: 40, timeout: 2)`.
/// The cells of a point's results row after the pattern, in the table's column order (the
/// errors cell unescaped), so the Markdown and HTML tables cannot drift apart.
pub(super) fn result_cells(p: &RunPoint) -> [String; 13] {
    let (fp50, fp99) = p
        .freshness_ms
        .map(|f| (fmt_ms(f.p50), fmt_ms(f.p99)))
        .unwrap_or_else(|| ("n/a".into(), "n/a".into()));
    [
        fmt_int(p.offered_rate),
        fmt_int(p.achieved_rate),
        fmt_pct(p.achieved_ratio()),
        errors_cell(p),
        fmt_pct(p.error_rate(Some("429"))),
        fmt_int(p.late_sends as f64),
        fmt_ms(p.latency_ms.p50),
        fmt_ms(p.latency_ms.p99),
        fmt_ms(p.latency_ms.p999),
        fmt_ms(p.latency_ms.max),
        fmt_ms(p.latency_uncorrected_ms.p99),
        fp50,
        fp99,
    ]
}

/// The errors of a point by cause, for a table cell.
pub(super) fn errors_cell(p: &RunPoint) -> String {
    let total = p.error_count(None);
    if total == 0 {
        return "0%".to_owned();
    }
    let causes: Vec<String> = p
        .errors
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(k, n)| format!("{k}: {}", fmt_int(*n as f64)))
        .collect();
    format!("{} ({})", fmt_pct(p.error_rate(None)), causes.join(", "))
}

fn cost(out: &mut String, report: &LoadReport, opts: &ReportOptions) {
    if report.points.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "## Cost per hour of sustained load ({})\n",
        opts.prices_label()
    );
    out.push_str(if opts.prices_are_examples() {
        "> The prices are examples, not quotes; set each parameter below with `--cost key=value`.\n\n"
    } else {
        "> Parameters marked (example) are example defaults, not quotes; set them with `--cost key=value`.\n\n"
    });
    out.push_str("| Pattern | Offered/s | Records/request | Requests/h | Spark cluster-h/h | Cost/h | Cost per 1M records |\n");
    out.push_str("|---|---:|---:|---:|---:|---:|---:|\n");
    for c in costs(report, &opts.cost) {
        let [rpr, requests, spark] = cost_cells(&c);
        let _ = writeln!(
            out,
            "| {} | {} | {rpr} | {requests} | {spark} | {} | {} |",
            name(c.pattern),
            fmt_int(c.offered_rate),
            fmt_usd(c.usd_per_hour),
            fmt_usd(c.usd_per_million_records)
        );
    }
    out.push_str("\nModel parameters: ");
    let params: Vec<String> = opts
        .cost
        .parameters()
        .iter()
        .map(|(k, v)| format!("`{k}={v}` ({})", opts.cost_source(k)))
        .collect();
    let _ = writeln!(out, "{}.\n", params.join(", "));
}

/// Records/request, requests/h and Spark cluster-h/h, with `–` where a pattern has none.
pub(super) fn cost_cells(c: &super::PointCost) -> [String; 3] {
    if c.pattern == Some(Pattern::Kafka) {
        [
            "–".into(),
            "–".into(),
            format!("{}", c.spark_cluster_hours_per_hour),
        ]
    } else {
        [
            format!("{:.1}", c.records_per_request),
            fmt_int(c.requests_per_hour),
            "–".into(),
        ]
    }
}

fn thresholds(out: &mut String, opts: &ReportOptions) {
    if opts.thresholds.is_empty() {
        return;
    }
    out.push_str("## Thresholds\n\n| Threshold | Result | Detail |\n|---|---|---|\n");
    for t in &opts.thresholds {
        let _ = writeln!(
            out,
            "| `{}` | {} | {} |",
            t.threshold,
            if t.passed { "pass" } else { "**FAIL**" },
            t.detail
        );
    }
    out.push('\n');
}

fn comparison(out: &mut String, report: &LoadReport, opts: &ReportOptions) {
    let Some(c) = &opts.comparison else {
        return;
    };
    let _ = writeln!(
        out,
        "## Comparison with the run of {} (tecton-sim {})\n",
        c.baseline_started_at, c.baseline_tool_version
    );
    if c.baseline_profile != report.profile {
        let _ = writeln!(
            out,
            "> The baseline used profile `{}` and this run `{}`: the numbers are not comparable.\n",
            c.baseline_profile, report.profile
        );
    }
    let t = &c.tolerance;
    let _ = writeln!(
        out,
        "A regression is a latency or freshness rise above {} and {}, an achieved-rate drop \
         above {} of the offered rate, or an error or late-send rate rise above {}.\n",
        fmt_pct(t.time_relative),
        fmt_ms(t.time_absolute_ms),
        fmt_pct(t.rate_drop),
        fmt_pct(t.share_increase)
    );
    if c.has_regressions() {
        out.push_str("| Pattern | Offered/s | Metric | Baseline | This run | Change |\n");
        out.push_str("|---|---:|---|---:|---:|---:|\n");
        for (p, m) in c.regressions() {
            let _ = writeln!(
                out,
                "| {} | {} | `{}` | {} | {} | **{}** |",
                name(p.pattern),
                fmt_int(p.offered_rate),
                m.metric,
                value_cell(&m.metric, m.old),
                value_cell(&m.metric, m.new),
                m.change
            );
        }
        out.push('\n');
    } else {
        let _ = writeln!(
            out,
            "No regressions across {} matched point(s).\n",
            c.points.len()
        );
    }
    for (label, list) in [
        ("Only in the baseline", &c.only_in_baseline),
        ("Only in this run", &c.only_in_new),
    ] {
        if !list.is_empty() {
            let pts: Vec<String> = list
                .iter()
                .map(|u| format!("{} at {}/s", name(u.pattern), fmt_int(u.offered_rate)))
                .collect();
            let _ = writeln!(out, "{label}: {}.\n", pts.join(", "));
        }
    }
}

/// A compared metric's value in its unit.
pub(super) fn value_cell(metric: &str, v: Option<f64>) -> String {
    let Some(v) = v else {
        return "n/a".to_owned();
    };
    if metric.starts_with("latency") || metric.starts_with("freshness") {
        fmt_ms(v)
    } else if metric.ends_with("rate") && metric != "achieved_rate" {
        fmt_pct(v)
    } else if metric == "achieved_rate" {
        format!("{}/s", fmt_int(v))
    } else {
        fmt_int(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::sample::sweep;
    use crate::load::{compare, evaluate_with, Threshold};

    #[test]
    fn sweep_snapshot() {
        insta::assert_snapshot!(render(&sweep(), &ReportOptions::default()));
    }

    #[test]
    fn sweep_with_thresholds_and_comparison_snapshot() {
        let report = sweep();
        let mut baseline = report.clone();
        baseline.started_at = "2026-01-14T10:00:00Z".into();
        baseline.points[1].latency_ms.p99 = 80.0;
        baseline.points[10].achieved_rate = 5000.0;
        baseline.points.remove(0);
        let thresholds: Vec<Threshold> = [
            "push.freshness.p99<500ms",
            "kafka.latency.p99<=2s",
            "push.errors.rate<1%",
            "push.latency.p99.change<10%",
        ]
        .iter()
        .filter_map(|t| t.parse().ok())
        .collect();
        let opts = ReportOptions {
            thresholds: evaluate_with(&report, &thresholds, Some(&baseline)),
            comparison: Some(compare(&baseline, &report)),
            ..ReportOptions::default()
        };
        insta::assert_snapshot!(render(&report, &opts));
    }

    #[test]
    fn an_empty_report_renders_without_tables() {
        let out = render(&LoadReport::default(), &ReportOptions::default());
        assert!(out.contains("# Load report: no points"));
        assert!(out.contains("nothing to recommend"));
        assert!(out.contains("No run points."));
        assert!(!out.contains("## Cost"));
    }
}
