//! `tecton-sim conformance`: runs the scenario suite against a sink and says whether it
//! batches, retries, backs off, times out, keeps order and loses nothing.
//!
//! Exit status: 0 when no check failed (warnings allowed, unless `--deny-warnings`), 1 when a
//! check failed, 2 when the harness could not decide (a scenario file is invalid, the mock or
//! the sink could not start).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use conformance::checks::Verdict;
use conformance::runner::{
    run_suite, shell_quote, AttachOptions, OnReady, Ready, RunOptions, ScenarioResult, Subject,
    SuiteRun,
};
use conformance::scenario::{load_builtin, Scenario, ScenarioError};
use conformance::sink::CommandSink;
use reports::conformance::SuiteReport;

mod chaos;

/// The environment variable naming a scenarios directory when `--scenarios` is not given.
pub(crate) const SCENARIOS_ENV: &str = "TECTON_SIM_SCENARIOS";

/// Evidence lines shown per check in the end-of-run summary.
const SUMMARY_EVIDENCE: usize = 3;
/// Scenario runs named per check in the end-of-run summary (the reports list them all).
const SUMMARY_RUNS: usize = 6;

/// Arguments of `conformance`.
#[derive(Args, Debug)]
pub(crate) struct ConformanceArgs {
    /// The sink under test: a shell command speaking sink protocol v1 (run as `sh -c`).
    #[arg(
        long,
        value_name = "COMMAND",
        conflicts_with = "attach",
        required_unless_present = "attach"
    )]
    sink: Option<String>,
    /// Judge a sink that runs elsewhere: serve each scenario's mock, print its URL, and wait
    /// until the sink is done (see --attach-records and --attach-quiet-ms).
    #[arg(long)]
    attach: bool,
    /// Attach mode: done when this many records were acknowledged (default: the scenario's
    /// input size).
    #[arg(long, value_name = "N", conflicts_with = "sink")]
    attach_records: Option<u64>,
    /// Attach mode: done when no request arrived for this many milliseconds.
    #[arg(long, value_name = "MS", conflicts_with = "sink")]
    attach_quiet_ms: Option<u64>,
    /// Port for the mock on 127.0.0.1 (attach mode: a fixed port the sink is configured with).
    #[arg(long, short = 'p')]
    port: Option<u16>,
    /// Directory of scenario files (*.toml) added to the built-in ones; a file named like a
    /// built-in scenario replaces it. Default: $TECTON_SIM_SCENARIOS, if set.
    #[arg(long, value_name = "DIR")]
    scenarios: Option<PathBuf>,
    /// Run only this scenario (repeat for several).
    #[arg(long, value_name = "NAME")]
    scenario: Vec<String>,
    /// The seed of the first run: drives the generated input, the faults and SINK_SEED.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Runs per scenario, with seeds SEED, SEED+1, … (at least 1).
    #[arg(long, default_value_t = 1, value_parser = parse_runs)]
    runs: u64,
    /// Seconds added to every scenario's wall-clock limit, for a sink that is slow to start
    /// (a JVM, a Flink or Beam job). Only the kill deadline moves; no check is loosened.
    #[arg(long, value_name = "SECONDS", default_value_t = 0.0, value_parser = parse_allowance)]
    start_allowance: f64,
    /// Treat warnings as failures (exit 1), for a strict gate.
    #[arg(long)]
    deny_warnings: bool,
    /// Write the journal of every run that failed or warned here, as JSON
    /// (`<scenario>-seed<s>.journal.json`), for offline study.
    #[arg(long, value_name = "DIR")]
    journal: Option<PathBuf>,
    /// Write a JUnit XML report here.
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// Write a Markdown report here.
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,
    /// Write a JSON report here.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Chaos search: run the sink under N random fault schedules (schedule i from seed
    /// SEED+i); shrink the first failure to a minimal schedule and print it as a scenario.
    #[arg(
        long,
        value_name = "N",
        requires = "sink",
        conflicts_with_all = ["scenario", "runs"],
        value_parser = parse_chaos
    )]
    chaos: Option<u64>,
    /// Chaos search: write the minimal failing scenario here (`chaos-seed<S>-min.toml`), for
    /// `--scenarios DIR` to replay.
    #[arg(long, value_name = "DIR", requires = "chaos")]
    chaos_out: Option<PathBuf>,
    /// Chaos search: at most this many runs spent shrinking a failure.
    #[arg(long, value_name = "N", requires = "chaos", default_value_t = conformance::chaos::DEFAULT_SHRINK_RUNS)]
    shrink_runs: u32,
}

fn parse_chaos(text: &str) -> Result<u64, String> {
    match text.parse::<u64>() {
        Ok(0) => Err("must be at least 1: the number of fault schedules to try".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("`{text}` is not a whole number of schedules")),
    }
}

fn parse_allowance(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(s) if (0.0..=3600.0).contains(&s) => Ok(s),
        Ok(_) => Err("must be between 0 and 3600 seconds".into()),
        Err(_) => Err(format!("`{text}` is not a number of seconds")),
    }
}

fn parse_runs(text: &str) -> Result<u64, String> {
    match text.parse::<u64>() {
        Ok(0) => Err(
            "must be at least 1: each scenario runs that many times, with seeds SEED, SEED+1, …"
                .into(),
        ),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("`{text}` is not a whole number of runs")),
    }
}

/// The scenarios directory in effect: `--scenarios`, else `$TECTON_SIM_SCENARIOS`.
fn scenarios_dir(flag: Option<&Path>) -> Option<PathBuf> {
    flag.map(Path::to_owned).or_else(|| {
        std::env::var_os(SCENARIOS_ENV)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    })
}

/// Loads the built-in scenarios plus those of the directory in effect.
pub(crate) fn load_scenarios(
    flag: Option<&Path>,
) -> anyhow::Result<Vec<Result<Scenario, ScenarioError>>> {
    let dir = scenarios_dir(flag);
    load_builtin(dir.as_deref()).map_err(|e| match (flag, &dir) {
        (None, Some(_)) => anyhow::anyhow!("{e} (from ${SCENARIOS_ENV})"),
        _ => anyhow::anyhow!("{e}"),
    })
}

/// Runs the suite and writes the reports.
pub(crate) fn run(args: ConformanceArgs) -> anyhow::Result<ExitCode> {
    if let Some(n) = args.chaos {
        return chaos::run(&args, n);
    }
    let mut scenarios = load_scenarios(args.scenarios.as_deref())?;
    if !args.scenario.is_empty() {
        let name_of = |s: &Result<Scenario, ScenarioError>| match s {
            Ok(s) => s.name.clone(),
            Err(e) => e.scenario_name(),
        };
        let available: Vec<String> = scenarios.iter().map(name_of).collect();
        for wanted in &args.scenario {
            if !available.contains(wanted) {
                anyhow::bail!(
                    "no scenario `{wanted}`; available: {}",
                    available.join(", ")
                );
            }
        }
        scenarios.retain(|s| args.scenario.contains(&name_of(s)));
    }

    let subject = match &args.sink {
        Some(command) => Subject::Command(CommandSink::new(command.clone())),
        None => Subject::Attached(AttachOptions {
            records: args.attach_records,
            quiet: args.attach_quiet_ms.map(Duration::from_millis),
        }),
    };
    let opts = RunOptions {
        port: args.port,
        replay_prefix: Some(replay_prefix(&args)),
        on_ready: args.attach.then(|| Box::new(announce) as OnReady),
        start_allowance: Duration::from_secs_f64(args.start_allowance),
    };

    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let seeds = args.seed..args.seed.saturating_add(args.runs);
    let suite = runtime.block_on(run_suite(&scenarios, seeds, &subject, &opts, print_line));
    let report = conformance::report::suite_report(&suite, args.deny_warnings);
    print_summary(&report);

    let mut write_failed = false;
    if let Some(dir) = &args.journal {
        if let Err(e) = write_journals(dir, &suite) {
            eprintln!("error: cannot write journals to {}: {e}", dir.display());
            write_failed = true;
        }
    }
    write_failed |= write_reports(&args, &report);
    if write_failed {
        return Ok(ExitCode::from(2));
    }
    Ok(ExitCode::from(report.exit_code()))
}

/// Writes the JUnit, Markdown and JSON reports asked for; true when one could not be written.
fn write_reports(args: &ConformanceArgs, report: &SuiteReport) -> bool {
    let mut write_failed = false;
    let mut write = |path: &Option<PathBuf>, text: Result<String, String>| {
        let Some(path) = path else { return };
        let result = text.and_then(|t| write_file(path, &t).map_err(|e| e.to_string()));
        if let Err(e) = result {
            eprintln!("error: cannot write {}: {e}", path.display());
            write_failed = true;
        }
    };
    write(
        &args.junit,
        reports::conformance::junit::render(report).map_err(|e| e.to_string()),
    );
    write(
        &args.report,
        Ok(reports::conformance::markdown::render(report)),
    );
    write(&args.json, Ok(reports::conformance::json::render(report)));
    write_failed
}

/// The end of a run: one block per check that failed or warned (where, and one example), each
/// distinct harness error once, and the verdict.
fn print_summary(report: &SuiteReport) {
    let summary = report.check_summary();
    if !summary.is_empty() {
        println!("\nBy check:");
    }
    for c in &summary {
        let n = c.scenarios.len();
        let mut runs = c.scenarios[..n.min(SUMMARY_RUNS)].join(", ");
        if n > SUMMARY_RUNS {
            runs.push_str(&format!(", … and {} more", n - SUMMARY_RUNS));
        }
        println!(
            "\n{} {} in {n} scenario run(s): {runs}",
            c.verdict.label(),
            c.id
        );
        println!(
            "  e.g. {} (seed {}): {}",
            c.example_scenario, c.example_seed, c.example_explanation
        );
        let evidence = report
            .scenarios
            .iter()
            .find(|s| s.name == c.example_scenario && s.seed == c.example_seed)
            .and_then(|s| s.checks.iter().find(|k| k.id == c.id))
            .map(|k| k.evidence.as_slice())
            .unwrap_or_default();
        for e in evidence.iter().take(SUMMARY_EVIDENCE) {
            println!("    {e}");
        }
        if evidence.len() > SUMMARY_EVIDENCE {
            println!(
                "    … {} more in the reports",
                evidence.len() - SUMMARY_EVIDENCE
            );
        }
        println!("  replay: {}", c.example_replay);
    }
    let errors = report.harness_errors();
    if !errors.is_empty() {
        println!();
    }
    for (error, runs) in &errors {
        println!("ERROR {error}\n  in: {}", runs.join(", "));
    }
    println!("\n{}: {}", report.verdict().label(), report.summary());
    if report.deny_warnings && report.check_counts().fail > 0 {
        println!("(--deny-warnings: warnings count as failures)");
    }
}

/// Writes the journal of every run that failed or warned, one JSON file each.
fn write_journals(dir: &Path, suite: &SuiteRun) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for r in &suite.results {
        let Ok(run) = &r.run else { continue };
        if run.results.iter().all(|c| c.verdict == Verdict::Pass) {
            continue;
        }
        let path = dir.join(format!("{}-seed{}.journal.json", r.scenario, r.seed));
        let text = serde_json::to_string_pretty(&run.journal).map_err(std::io::Error::other)?;
        std::fs::write(&path, text)?;
        println!(
            "journal of {} (seed {}): {}",
            r.scenario,
            r.seed,
            path.display()
        );
    }
    Ok(())
}

fn write_file(path: &Path, text: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, text)
}

/// The command line that replays a run, minus `--scenario` and `--seed`.
fn replay_prefix(args: &ConformanceArgs) -> String {
    let mut line = String::from("tecton-sim conformance");
    match &args.sink {
        Some(cmd) => {
            line.push_str(" --sink ");
            line.push_str(&shell_quote(cmd));
        }
        None => {
            line.push_str(" --attach");
            if let Some(n) = args.attach_records {
                line.push_str(&format!(" --attach-records {n}"));
            }
            if let Some(ms) = args.attach_quiet_ms {
                line.push_str(&format!(" --attach-quiet-ms {ms}"));
            }
            if let Some(p) = args.port {
                line.push_str(&format!(" --port {p}"));
            }
        }
    }
    if let Some(dir) = scenarios_dir(args.scenarios.as_deref()) {
        line.push_str(" --scenarios ");
        line.push_str(&shell_quote(&dir.display().to_string()));
    }
    if args.start_allowance > 0.0 {
        line.push_str(&format!(" --start-allowance {}", args.start_allowance));
    }
    if args.deny_warnings {
        line.push_str(" --deny-warnings");
    }
    line
}

/// Attach mode: tells the operator where the sink must write.
fn announce(r: &Ready) {
    println!(
        "scenario {} (seed {}): mock Tecton at {}  (TECTON_API_KEY={} TECTON_WORKSPACE={} TECTON_PUSH_SOURCE={} SINK_BATCH_SIZE={} SINK_MAX_RETRIES={} SINK_TIMEOUT_S={})",
        r.scenario,
        r.seed,
        r.env.url,
        r.env.api_key,
        r.env.workspace,
        r.env.push_source,
        r.env.batch_size,
        r.env.max_retries,
        r.env.timeout.as_secs_f64()
    );
    if let Some(input) = &r.input {
        println!("  input records: {}", input.display());
    }
}

/// One line per scenario run, as it finishes. A harness error's text is printed once, in the
/// summary at the end, however many runs it stopped.
fn print_line(r: &ScenarioResult) {
    match &r.run {
        Err(e) => println!(
            "ERROR {} (seed {}): {} (details at the end)",
            r.scenario,
            r.seed,
            e.kind()
        ),
        Ok(run) => {
            let flagged: Vec<String> = run
                .results
                .iter()
                .filter(|c| c.verdict != Verdict::Pass)
                .map(|c| format!("{} {}", c.verdict.label(), c.id))
                .collect();
            let label = if flagged.iter().any(|f| f.starts_with("FAIL")) {
                "FAIL"
            } else if flagged.is_empty() {
                "PASS"
            } else {
                "WARN"
            };
            let passed = run.results.len() - flagged.len();
            let detail = if flagged.is_empty() {
                String::new()
            } else {
                format!(": {}", flagged.join(", "))
            };
            println!(
                "{label:<5} {} (seed {}) {passed}/{} checks passed, sink {}, {:.2} s{detail}",
                r.scenario,
                r.seed,
                run.results.len(),
                conformance::checks::describe_exit(&run.observation.outcome),
                run.elapsed.as_secs_f64()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: ConformanceArgs,
    }

    fn parse(args: &[&str]) -> Result<ConformanceArgs, clap::Error> {
        Cli::try_parse_from(std::iter::once("conformance").chain(args.iter().copied()))
            .map(|c| c.args)
    }

    #[test]
    fn replay_lines_quote_the_command_and_keep_what_changes_the_run() {
        let a = parse(&["--sink", "python3 'my sink.py'"]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            replay_prefix(&a),
            r"tecton-sim conformance --sink 'python3 '\''my sink.py'\'''"
        );
        let a = parse(&[
            "--attach",
            "--attach-records",
            "5",
            "--port",
            "9000",
            "--scenarios",
            "x",
        ])
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            replay_prefix(&a),
            "tecton-sim conformance --attach --attach-records 5 --port 9000 --scenarios 'x'"
        );
    }

    #[test]
    fn a_sink_or_attach_is_required_and_not_both() {
        assert!(parse(&[]).is_err());
        assert!(parse(&["--sink", "x", "--attach"]).is_err());
        assert!(parse(&["--attach-records", "3", "--sink", "x"]).is_err());
        assert!(parse(&["--sink", "x", "--runs", "0"]).is_err());
    }
}
