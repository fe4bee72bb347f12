//! Renders a stored `report.json` again, e.g. with other example prices or thresholds:
//!
//! ```sh
//! cargo run -p reports --example render_load_report -- IN.json OUT_DIR \
//!     [--cost key=value]... [--criterion key=value]... [--threshold EXPR]... [--compare OLD.json]
//! ```
//!
//! Exits 1 when a threshold fails, 2 on bad input.

use std::path::PathBuf;
use std::process::ExitCode;

use reports::load::{compare, evaluate_with, read_report, write_all, ReportOptions, Threshold};

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("render_load_report: {e}");
            ExitCode::from(2)
        }
    }
}

fn run() -> Result<ExitCode, Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: render_load_report IN.json OUT_DIR [--cost k=v]... [--criterion k=v]... [--threshold EXPR]... [--compare OLD.json]";
    let input = PathBuf::from(args.next().ok_or(usage)?);
    let out = PathBuf::from(args.next().ok_or(usage)?);
    let report = read_report(&input)?;
    let mut opts = ReportOptions::default();
    let mut thresholds = Vec::new();
    let mut baseline = None;
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--cost" => opts.set_cost(&value)?,
            "--criterion" => opts.set_criterion(&value)?,
            "--threshold" => thresholds.push(value.parse::<Threshold>()?),
            "--compare" => baseline = Some(read_report(&PathBuf::from(value))?),
            other => return Err(format!("unknown option {other}; {usage}").into()),
        }
    }
    opts.thresholds = evaluate_with(&report, &thresholds, baseline.as_ref());
    opts.comparison = baseline.as_ref().map(|old| compare(old, &report));
    write_all(&out, &report, &opts)?;
    println!("{}/report.{{html,md,json}}", out.display());
    for t in &opts.thresholds {
        println!(
            "threshold {}: {} ({})",
            if t.passed { "pass" } else { "FAIL" },
            t.threshold,
            t.detail
        );
    }
    Ok(if opts.thresholds_passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
