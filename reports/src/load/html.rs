//! `report.html`: one self-contained page (inline SVG and CSS, no scripts, no network).
//! Verdicts and the recommendation first, then four plots against the offered rate (achieved
//! rate, latency, freshness, errors), then the tables the Markdown report also has.

use std::fmt::Write as _;

use super::markdown::{band_label, cost_cells, name, provenance, result_cells, title, value_cell};
use super::svg::{self, esc, Chart, Mark, Scale, Series};
use super::{
    costs, fmt_int, fmt_ms, fmt_pct, fmt_usd, recommend, Choice, LoadReport, Pattern,
    Recommendation, ReportOptions, RunPoint,
};

/// Series colours per pattern; chosen to stay apart for colour-blind readers (blue/orange/teal).
pub(crate) const PUSH_COLOR: &str = "#1f6fd1";
/// Kafka's colour.
pub(crate) const KAFKA_COLOR: &str = "#e8730c";
/// The user's sink's colour.
pub(crate) const SINK_COLOR: &str = "#129e84";

/// Pale shades of the pattern colours, for a baseline run's lines.
fn baseline_color(p: Option<Pattern>) -> &'static str {
    match p {
        Some(Pattern::Push) => "#97b9e6",
        Some(Pattern::Kafka) => "#f2bd8f",
        Some(Pattern::Sink) => "#8fd1c4",
        None => "#b8bec8",
    }
}

fn color(p: Option<Pattern>) -> &'static str {
    match p {
        Some(Pattern::Push) => PUSH_COLOR,
        Some(Pattern::Kafka) => KAFKA_COLOR,
        Some(Pattern::Sink) => SINK_COLOR,
        None => "#6b7280",
    }
}

const STYLE: &str = r#"
:root{--fg:#1b2430;--muted:#5b6676;--line:#dfe4ea;--bg:#f5f7fa;--card:#fff;--ok:#177a3c;--bad:#c42b1c}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif}
main{max-width:1260px;margin:0 auto;padding:24px 20px 40px}
h1{font-size:24px;margin:0 0 4px}
h2{font-size:17px;margin:0 0 10px}
.prov{color:var(--muted);margin:0 0 14px}
.chips{display:flex;gap:8px;flex-wrap:wrap;margin-bottom:16px}
.chip{display:inline-block;padding:3px 10px;border-radius:999px;font-weight:600;font-size:13px;border:1px solid var(--line);background:var(--card)}
.chip.ok{color:var(--ok);border-color:#9fd3b1;background:#eefaf2}
.chip.bad{color:var(--bad);border-color:#f0b2ab;background:#fdf0ee}
.card{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:16px 18px;margin-bottom:16px;box-shadow:0 1px 2px rgba(20,30,40,.04)}
.lead{font-size:16px;margin:0 0 12px}
.grid{display:grid;grid-template-columns:repeat(2,minmax(0,1fr));gap:16px;margin-bottom:16px}
.grid .card{margin:0;padding:10px 10px 4px}
svg.chart{width:100%;height:auto;display:block}
svg .ct{font-size:15px;font-weight:600;fill:var(--fg)}
svg .plot{fill:#fbfcfd;stroke:#c9d1db}
svg .grid{stroke:#e6eaef;stroke-width:1}
svg .tick{font-size:11px;fill:var(--muted)}
svg .axis{font-size:12px;fill:var(--fg)}
svg .legend{font-size:12px;fill:var(--fg)}
svg .series{fill:none;stroke-width:2.2;stroke-linejoin:round;stroke-linecap:round}
svg .ref{stroke:#8a94a3;stroke-width:1.2;stroke-dasharray:4 4}
svg .mark{stroke:#7b3fc4;stroke-width:1.5;stroke-dasharray:6 3}
svg .band{fill:#7b3fc4;fill-opacity:.07}
svg .markt{font-size:11px;fill:#7b3fc4;font-weight:600}
svg .nodata{font-size:14px;fill:var(--muted)}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{padding:6px 8px;border-bottom:1px solid var(--line);text-align:right;vertical-align:top;white-space:nowrap}
td.l,td.wrap{white-space:normal}
td.wrap{min-width:150px}
details summary{cursor:pointer;color:var(--muted);margin-top:10px}
th{background:#f0f3f7;font-weight:600;color:#333d4a;white-space:normal}
.scroll{overflow-x:auto}
td.l,th.l{text-align:left}
.why{color:var(--muted);font-size:12px}
.pill{display:inline-block;padding:1px 8px;border-radius:6px;color:#fff;font-weight:600;font-size:12px;white-space:nowrap}
.pill.push{background:#1f6fd1}.pill.kafka{background:#e8730c}.pill.neither{background:#6b7280}
.swatch{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:6px;vertical-align:baseline}
.pass{color:var(--ok);font-weight:600}.fail{color:var(--bad);font-weight:600}
.note{color:var(--muted);font-size:12.5px;margin:8px 0 0}
.example{display:inline-block;background:#fff4d6;border:1px solid #f1d48a;color:#7a5600;border-radius:6px;padding:1px 8px;font-weight:600;font-size:12px}
code{font:12px ui-monospace,SFMono-Regular,Menlo,Consolas,"DejaVu Sans Mono",monospace;background:#f0f3f7;padding:1px 4px;border-radius:4px}
@media (max-width:900px){.grid{grid-template-columns:1fr}}
"#;

/// Renders the page.
pub(super) fn render(report: &LoadReport, opts: &ReportOptions) -> String {
    let rec = recommend(report, &opts.cost, &opts.criteria);
    let mut out = String::new();
    let _ = write!(
        out,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>Load report: {t}</title><style>{STYLE}</style></head><body><main>\
         <h1>Load report: {t}</h1><p class=\"prov\">{}</p>",
        esc(&provenance(report)),
        t = esc(&title(report))
    );
    chips(&mut out, opts);
    recommendation(&mut out, opts, &rec);
    charts(&mut out, report, opts, &rec);
    results(&mut out, report);
    cost(&mut out, report, opts);
    thresholds(&mut out, opts);
    comparison(&mut out, report, opts);
    out.push_str(
        "<p class=\"note\">Latency is measured from each request's intended start (coordinated \
         omission corrected); the uncorrected p99 is from its actual start. Freshness is the time \
         from an event's send to its being servable. Hover a point for its value.</p>",
    );
    out.push_str("</main></body></html>\n");
    out
}

fn chips(out: &mut String, opts: &ReportOptions) {
    out.push_str("<div class=\"chips\">");
    if !opts.thresholds.is_empty() {
        let passed = opts.thresholds.iter().filter(|t| t.passed).count();
        let ok = passed == opts.thresholds.len();
        let _ = write!(
            out,
            "<span class=\"chip {}\">Thresholds {}: {passed} of {} passed</span>",
            if ok { "ok" } else { "bad" },
            if ok { "PASS" } else { "FAIL" },
            opts.thresholds.len()
        );
    }
    if let Some(c) = &opts.comparison {
        let n = c.regressions().count();
        let _ = write!(
            out,
            "<span class=\"chip {}\">{}</span>",
            if n == 0 { "ok" } else { "bad" },
            if n == 0 {
                "No regressions against the baseline".to_owned()
            } else {
                format!("{n} regression(s) against the baseline")
            }
        );
    }
    out.push_str("</div>");
}

fn recommendation(out: &mut String, opts: &ReportOptions, rec: &Recommendation) {
    out.push_str("<section class=\"card\" id=\"recommendation\"><h2>Recommendation</h2>");
    if rec.bands.is_empty() {
        out.push_str(
            "<p class=\"lead\">No push or kafka point: nothing to recommend.</p></section>",
        );
        return;
    }
    let _ = write!(
        out,
        "<p class=\"lead\">{}</p><p class=\"note\">{}</p>",
        esc(&rec.crossover_sentence()),
        esc(&rec.crossover.by_criterion())
    );
    out.push_str(
        "<table><tr><th class=\"l\">Rate band (records/s)</th><th class=\"l\">Choose</th>\
         <th class=\"l\">Why</th></tr>",
    );
    for b in &rec.bands {
        let (class, label) = match b.choice {
            Choice::Push => ("push", "push"),
            Choice::Kafka => ("kafka", "Kafka + Spark"),
            Choice::Neither => ("neither", "neither held"),
        };
        let _ = write!(
            out,
            "<tr><td class=\"l\">{}</td><td class=\"l\"><span class=\"pill {class}\">{label}</span></td>\
             <td class=\"l\">{}<div class=\"why\">{}</div></td></tr>",
            esc(&band_label(b.from_rate, b.to_rate)),
            esc(&b.because),
            b.reasons.iter().map(|r| esc(r)).collect::<Vec<_>>().join("<br>")
        );
    }
    let _ = write!(
        out,
        "</table><p class=\"note\">{} Each band is judged by the measurements at its upper \
         edge. The crossover is the lowest rate where Kafka + Spark costs no more (cost model), \
         push stops holding the rate while Kafka holds it, or push's p99 freshness is no better \
         than Kafka's. Costs use <span class=\"example\">{}</span>.</p></section>",
        esc(&opts.criteria_sentence()),
        esc(&opts.prices_label())
    );
}

/// Points of one pattern, lowest offered rate first.
fn by_pattern(report: &LoadReport) -> Vec<(Option<Pattern>, Vec<&RunPoint>)> {
    let mut groups: Vec<(Option<Pattern>, Vec<&RunPoint>)> = Vec::new();
    for p in &report.points {
        match groups.iter_mut().find(|g| g.0 == p.pattern) {
            Some(g) => g.1.push(p),
            None => groups.push((p.pattern, vec![p])),
        }
    }
    groups.sort_by_key(|g| g.0);
    for g in &mut groups {
        g.1.sort_by(|a, b| a.offered_rate.total_cmp(&b.offered_rate));
    }
    groups
}

fn series(
    label: String,
    pattern: Option<Pattern>,
    dash: Option<&'static str>,
    points: &[&RunPoint],
    f: impl Fn(&RunPoint) -> Option<f64>,
) -> Series {
    Series {
        label,
        color: color(pattern),
        dash,
        width: None,
        points: points
            .iter()
            .filter_map(|p| f(p).map(|v| (p.offered_rate, v)))
            .collect(),
    }
}

/// `100`, `2k`, `10k`, `1.5k`.
fn rate_tick(v: f64) -> String {
    if v >= 1_000_000.0 {
        format!("{}M", trim(v / 1_000_000.0))
    } else if v >= 1000.0 {
        format!("{}k", trim(v / 1000.0))
    } else {
        trim(v)
    }
}

fn ms_tick(v: f64) -> String {
    if v >= 1000.0 {
        format!("{} s", trim(v / 1000.0))
    } else {
        format!("{} ms", trim(v))
    }
}

fn pct_tick(v: f64) -> String {
    format!("{}%", trim(v))
}

fn trim(v: f64) -> String {
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

fn charts(out: &mut String, report: &LoadReport, opts: &ReportOptions, rec: &Recommendation) {
    let groups = by_pattern(report);
    // A measured crossover lies between two swept rates: shade that bracket.
    let c = &rec.crossover;
    let marks: Vec<Mark> = c
        .rate
        .map(|r| {
            let from = c.below.filter(|_| c.basis.as_deref() != Some("cost"));
            let caption = match from {
                Some(b) => format!("crossover {}–{}/s", rate_tick(b), rate_tick(r)),
                None => format!("crossover {}/s", fmt_int(r)),
            };
            vec![Mark {
                from,
                at: r,
                caption,
            }]
        })
        .unwrap_or_default();
    let base = |title: &str, y_label: &str, y_scale, y_fmt: fn(f64) -> String| Chart {
        title: title.to_owned(),
        x_label: "offered rate (records/s, log scale)".to_owned(),
        y_label: y_label.to_owned(),
        x_scale: Scale::Log,
        y_scale,
        series: Vec::new(),
        underlay: Vec::new(),
        marks: marks.clone(),
        diagonal: false,
        x_fmt: rate_tick,
        y_fmt,
    };

    let mut achieved = base(
        "Achieved vs offered rate",
        "achieved (records/s)",
        Scale::Log,
        rate_tick,
    );
    achieved.diagonal = true;
    let mut latency = base(
        "Latency percentiles vs rate (corrected)",
        "latency (log scale)",
        Scale::Log,
        ms_tick,
    );
    let mut freshness = base(
        "Freshness vs rate (send → servable)",
        "freshness (log scale)",
        Scale::Log,
        ms_tick,
    );
    let mut errors = base(
        "Errors and 429s vs rate",
        "share of requests (%)",
        Scale::Linear,
        pct_tick,
    );
    for (pattern, pts) in &groups {
        let n = name(*pattern);
        // Patterns that keep up coincide here: earlier ones are drawn wider underneath, so
        // each stays visible as a band around the next.
        let mut line = series(n.to_owned(), *pattern, None, pts, |p| Some(p.achieved_rate));
        line.width = Some(2.2 + 2.4 * (groups.len() - 1 - achieved.series.len()) as f64);
        achieved.series.push(line);
        for (stat, dash, f) in [
            (
                "p50",
                None,
                (|p: &RunPoint| p.latency_ms.p50) as fn(&RunPoint) -> f64,
            ),
            ("p99", Some("7 4"), |p: &RunPoint| p.latency_ms.p99),
            ("p99.9", Some("2 3"), |p: &RunPoint| p.latency_ms.p999),
        ] {
            latency
                .series
                .push(series(format!("{n} {stat}"), *pattern, dash, pts, |p| {
                    Some(f(p))
                }));
        }
        if pts.iter().any(|p| p.freshness_ms.is_some()) {
            freshness
                .series
                .push(series(format!("{n} p50"), *pattern, None, pts, |p| {
                    p.freshness_ms.map(|f| f.p50)
                }));
            freshness.series.push(series(
                format!("{n} p99"),
                *pattern,
                Some("7 4"),
                pts,
                |p| p.freshness_ms.map(|f| f.p99),
            ));
        }
        errors
            .series
            .push(series(format!("{n} errors"), *pattern, None, pts, |p| {
                Some(p.error_rate(None) * 100.0)
            }));
        errors.series.push(series(
            format!("{n} 429"),
            *pattern,
            Some("7 4"),
            pts,
            |p| Some(p.error_rate(Some("429")) * 100.0),
        ));
    }
    if let Some(c) = &opts.comparison {
        // The baseline's headline figure per chart, in a pale shade of each pattern's colour,
        // under this run's lines.
        for (chart, metric, scale) in [
            (&mut achieved, "achieved_rate", 1.0),
            (&mut latency, "latency.p99", 1.0),
            (&mut freshness, "freshness.p99", 1.0),
            (&mut errors, "errors.rate", 100.0),
        ] {
            for (pattern, _) in &groups {
                let points: Vec<(f64, f64)> = c
                    .points
                    .iter()
                    .filter(|p| p.pattern == *pattern)
                    .filter_map(|p| {
                        let m = p.metrics.iter().find(|m| m.metric == metric)?;
                        Some((p.offered_rate, m.old? * scale))
                    })
                    .collect();
                if !points.is_empty() {
                    let what = match metric {
                        "achieved_rate" => "",
                        "errors.rate" => " errors",
                        _ => " p99",
                    };
                    let label = format!("{}{what} baseline", name(*pattern));
                    chart.underlay.push(Series {
                        label,
                        color: baseline_color(*pattern),
                        dash: Some("3 3"),
                        width: None,
                        points,
                    });
                }
            }
        }
    }
    // A single run is best read over time first; its rate plots have one point each.
    let single = report.points.len() == 1;
    if single {
        timeline(out, report);
    }
    out.push_str("<div class=\"grid\" id=\"plots\">");
    for (id, chart) in [
        ("plot-achieved", &achieved),
        ("plot-latency", &latency),
        ("plot-freshness", &freshness),
        ("plot-errors", &errors),
    ] {
        let _ = write!(
            out,
            "<section class=\"card\" id=\"{id}\">{}</section>",
            svg::render(chart)
        );
    }
    out.push_str("</div>");
    if !single {
        timeline(out, report);
    }
}

/// At most this many points get per-interval plots; beyond it the lines would be a tangle.
const TIMELINE_MAX_POINTS: usize = 4;

/// Per-interval plots (acknowledged records/s and p99 latency over the run) for a single run or
/// a small sweep: they show how a run followed its plan (ramps, steps, bursts) and when it fell
/// behind, which the per-point figures average away.
fn timeline(out: &mut String, report: &LoadReport) {
    let points: Vec<&RunPoint> = report
        .points
        .iter()
        .filter(|p| p.intervals.len() >= 2)
        .collect();
    if points.is_empty() || report.points.len() > TIMELINE_MAX_POINTS {
        return;
    }
    // Lines of one pattern at several rates are told apart by their dash.
    const DASHES: [Option<&str>; 4] = [None, Some("7 4"), Some("2 3"), Some("10 3 2 3")];
    let chart = |title: &str, y_label: &str, y_scale, y_fmt: fn(f64) -> String| Chart {
        title: title.to_owned(),
        x_label: "seconds since the run started".to_owned(),
        y_label: y_label.to_owned(),
        x_scale: Scale::Linear,
        y_scale,
        series: Vec::new(),
        underlay: Vec::new(),
        marks: Vec::new(),
        diagonal: false,
        x_fmt: trim,
        y_fmt,
    };
    let mut acked = chart(
        "Acknowledged records per second",
        "records/s",
        Scale::Linear,
        rate_tick,
    );
    let mut p99 = chart(
        "Latency p99 per interval (corrected)",
        "latency (log scale)",
        Scale::Log,
        ms_tick,
    );
    for (i, p) in points.iter().enumerate() {
        let label = format!("{} {}/s", name(p.pattern), rate_tick(p.offered_rate));
        let dash = DASHES[i % DASHES.len()];
        let mut rate = Vec::new();
        for (j, iv) in p.intervals.iter().enumerate() {
            // An interval lasts until the next one starts; the last one as long as the one before.
            let next = p.intervals.get(j + 1).map(|n| n.t_s - iv.t_s);
            let prev = j.checked_sub(1).map(|k| iv.t_s - p.intervals[k].t_s);
            let dt = next.or(prev).filter(|d| *d > 0.0).unwrap_or(1.0);
            rate.push((iv.t_s, iv.records_acknowledged as f64 / dt));
        }
        acked.series.push(Series {
            label: label.clone(),
            color: color(p.pattern),
            dash,
            width: None,
            points: rate,
        });
        p99.series.push(Series {
            label,
            color: color(p.pattern),
            dash,
            width: None,
            points: p
                .intervals
                .iter()
                .map(|iv| (iv.t_s, iv.latency_p99_ms))
                .collect(),
        });
    }
    out.push_str("<div class=\"grid\" id=\"timeline\">");
    for (id, c) in [
        ("plot-acked-over-time", &acked),
        ("plot-p99-over-time", &p99),
    ] {
        let _ = write!(
            out,
            "<section class=\"card\" id=\"{id}\">{}</section>",
            svg::render(c)
        );
    }
    out.push_str("</div>");
}

fn swatch(p: Option<Pattern>) -> String {
    format!(
        "<span class=\"swatch\" style=\"background:{}\"></span>{}",
        color(p),
        name(p)
    )
}

fn results(out: &mut String, report: &LoadReport) {
    out.push_str("<section class=\"card\" id=\"results\"><h2>Results</h2>");
    if report.points.is_empty() {
        out.push_str("<p>No run points.</p></section>");
        return;
    }
    out.push_str(
        "<div class=\"scroll\"><table><tr><th class=\"l\">Pattern</th><th>Offered/s</th><th>Achieved/s</th>\
         <th>Achieved</th><th>Errors</th><th>429</th><th>Late sends</th><th>Latency p50</th>\
         <th>p99</th><th>p99.9</th><th>max</th><th>p99 uncorr.</th><th>Freshness p50</th>\
         <th>Freshness p99</th></tr>",
    );
    for p in &report.points {
        let _ = write!(out, "<tr><td class=\"l\">{}</td>", swatch(p.pattern));
        for (i, cell) in result_cells(p).iter().enumerate() {
            // The errors cell (the fourth) is free text and wraps.
            if i == 3 {
                let _ = write!(out, "<td class=\"wrap\">{}</td>", esc(cell));
            } else {
                let _ = write!(out, "<td>{}</td>", esc(cell));
            }
        }
        out.push_str("</tr>");
    }
    out.push_str("</table></div></section>");
}

fn cost(out: &mut String, report: &LoadReport, opts: &ReportOptions) {
    if report.points.is_empty() {
        return;
    }
    let _ = write!(
        out,
        "<section class=\"card\" id=\"cost\"><h2>Cost per hour of sustained load \
         <span class=\"example\">{}</span></h2>\
         <table><tr><th class=\"l\">Pattern</th><th>Offered/s</th><th>Records/request</th>\
         <th>Requests/h</th><th>Spark cluster-h/h</th><th>Cost/h</th><th>Cost per 1M records</th></tr>",
        esc(&opts.prices_label())
    );
    for c in costs(report, &opts.cost) {
        let [rpr, requests, spark] = cost_cells(&c);
        let _ = write!(
            out,
            "<tr><td class=\"l\">{}</td><td>{}</td><td>{rpr}</td><td>{requests}</td><td>{spark}</td><td>{}</td><td>{}</td></tr>",
            swatch(c.pattern),
            fmt_int(c.offered_rate),
            fmt_usd(c.usd_per_hour),
            fmt_usd(c.usd_per_million_records)
        );
    }
    out.push_str(
        "</table><p class=\"note\">Model parameters (each settable with <code>--cost \
         key=value</code>): ",
    );
    let params: Vec<String> = opts
        .cost
        .parameters()
        .iter()
        .map(|(k, v)| format!("<code>{k}={v}</code> ({})", opts.cost_source(k)))
        .collect();
    let _ = write!(
        out,
        "{}. Push and sink pay per request plus online writes; Kafka + Spark pays the stream, \
         whole Spark clusters and the same online writes.</p></section>",
        params.join(", ")
    );
}

fn thresholds(out: &mut String, opts: &ReportOptions) {
    if opts.thresholds.is_empty() {
        return;
    }
    out.push_str(
        "<section class=\"card\" id=\"thresholds\"><h2>Thresholds</h2><table><tr>\
         <th class=\"l\">Threshold</th><th class=\"l\">Result</th><th class=\"l\">Detail</th></tr>",
    );
    for t in &opts.thresholds {
        let _ = write!(
            out,
            "<tr><td class=\"l\"><code>{}</code></td><td class=\"l {}\">{}</td><td class=\"l\">{}</td></tr>",
            esc(&t.threshold.to_string()),
            if t.passed { "pass" } else { "fail" },
            if t.passed { "pass" } else { "FAIL" },
            esc(&t.detail)
        );
    }
    out.push_str("</table></section>");
}

fn comparison(out: &mut String, report: &LoadReport, opts: &ReportOptions) {
    let Some(c) = &opts.comparison else {
        return;
    };
    let _ = write!(
        out,
        "<section class=\"card\" id=\"comparison\"><h2>Comparison with the run of {} \
         (tecton-sim {})</h2>",
        esc(&c.baseline_started_at),
        esc(&c.baseline_tool_version)
    );
    if c.baseline_profile != report.profile {
        let _ = write!(
            out,
            "<p class=\"fail\">The baseline used profile <code>{}</code> and this run <code>{}</code>: \
             the numbers are not comparable.</p>",
            esc(&c.baseline_profile),
            esc(&report.profile)
        );
    }
    let regressions: Vec<_> = c.regressions().collect();
    if regressions.is_empty() {
        let _ = write!(
            out,
            "<p class=\"pass\">No regressions across {} matched point(s).</p>",
            c.points.len()
        );
    } else {
        delta_table(out, regressions.into_iter());
    }
    out.push_str("<details><summary>Every compared metric</summary>");
    delta_table(
        out,
        c.points
            .iter()
            .flat_map(|p| p.metrics.iter().map(move |m| (p, m))),
    );
    out.push_str("</details>");
    let t = &c.tolerance;
    let _ = write!(
        out,
        "<p class=\"note\">Red: a regression, i.e. a latency or freshness rise above {} and {}, \
         an achieved-rate drop above {} of the offered rate, or an error or late-send rate rise \
         above {}.",
        fmt_pct(t.time_relative),
        fmt_ms(t.time_absolute_ms),
        fmt_pct(t.rate_drop),
        fmt_pct(t.share_increase)
    );
    for (label, list) in [
        ("Only in the baseline", &c.only_in_baseline),
        ("Only in this run", &c.only_in_new),
    ] {
        if !list.is_empty() {
            let pts: Vec<String> = list
                .iter()
                .map(|u| format!("{} at {}/s", name(u.pattern), fmt_int(u.offered_rate)))
                .collect();
            let _ = write!(out, " {label}: {}.", esc(&pts.join(", ")));
        }
    }
    out.push_str("</p></section>");
}

fn delta_table<'a>(
    out: &mut String,
    rows: impl Iterator<Item = (&'a super::PointDelta, &'a super::MetricDelta)>,
) {
    out.push_str(
        "<table><tr><th class=\"l\">Pattern</th><th>Offered/s</th><th class=\"l\">Metric</th>\
         <th>Baseline</th><th>This run</th><th>Change</th></tr>",
    );
    for (p, m) in rows {
        let _ = write!(
            out,
            "<tr><td class=\"l\">{}</td><td>{}</td><td class=\"l\"><code>{}</code></td><td>{}</td>\
             <td>{}</td><td class=\"{}\">{}</td></tr>",
            swatch(p.pattern),
            fmt_int(p.offered_rate),
            esc(&m.metric),
            value_cell(&m.metric, m.old),
            value_cell(&m.metric, m.new),
            if m.regression { "fail" } else { "" },
            esc(&m.change)
        );
    }
    out.push_str("</table>");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::sample::sweep;

    #[test]
    fn the_page_is_self_contained_with_four_plots() {
        let page = render(&sweep(), &ReportOptions::default());
        assert_eq!(page.matches("<svg class=\"chart\"").count(), 4);
        for id in [
            "plot-achieved",
            "plot-latency",
            "plot-freshness",
            "plot-errors",
        ] {
            assert!(page.contains(&format!("id=\"{id}\"")), "{id}");
        }
        // Two patterns: p50, p99 and p99.9 latency lines for each, one achieved line each.
        assert_eq!(page.matches("<polyline").count(), 2 + 6 + 4 + 4);
        assert!(!page.contains("<script") && !page.contains("<link") && !page.contains(" src="));
        // The only URL is the SVG namespace, which is a name, not a fetch.
        assert_eq!(
            page.matches("http").count(),
            page.matches("http://www.w3.org/2000/svg").count()
        );
        assert!(
            page.contains("crossover 2k–5k/s"),
            "the measured crossover bracket is marked"
        );
        assert!(page.contains("EXAMPLE prices"));
    }

    #[test]
    fn a_single_run_gets_plots_over_time() {
        let mut r = sweep();
        r.points.truncate(1);
        let page = render(&r, &ReportOptions::default());
        assert!(page.contains("id=\"plot-acked-over-time\""));
        assert!(page.contains("id=\"plot-p99-over-time\""));
        // 100 records acknowledged in each one-second interval.
        assert!(
            page.contains("push 100/s: 1 → 100"),
            "tooltip of the second interval"
        );
        // A twelve-point sweep does not.
        assert!(!render(&sweep(), &ReportOptions::default()).contains("plot-acked-over-time"));
    }

    #[test]
    fn text_from_the_report_is_escaped() {
        let mut r = sweep();
        r.profile = "<script>alert(1)</script>".into();
        r.points[0].errors.insert("<b>".into(), 1);
        let page = render(&r, &ReportOptions::default());
        assert!(!page.contains("<script>") && !page.contains("<b>"));
        assert!(page.contains("&lt;script&gt;"));
    }
}
