//! `conformance --chaos N`: the chaos search on the command line. A progress line per schedule
//! when stderr is a terminal, then a summary on stdout, the minimal failing scenario (written
//! to `--chaos-out DIR`, or printed), and the usual reports over every schedule run.

use std::io::IsTerminal as _;
use std::process::ExitCode;

use anyhow::Context as _;
use conformance::chaos::{search, ChaosOptions, ChaosRun, Progress};
use conformance::checks::Verdict;
use conformance::runner::{shell_quote, Subject};
use conformance::sink::CommandSink;

use super::{write_journals, write_reports, ConformanceArgs};

/// Runs the search and reports it.
pub(super) fn run(args: &ConformanceArgs, schedules: u64) -> anyhow::Result<ExitCode> {
    let Some(command) = &args.sink else {
        anyhow::bail!("--chaos needs --sink COMMAND");
    };
    let mut prefix = format!("tecton-sim conformance --sink {}", shell_quote(command));
    if args.deny_warnings {
        prefix.push_str(" --deny-warnings");
    }
    if args.start_allowance > 0.0 {
        prefix.push_str(&format!(" --start-allowance {}", args.start_allowance));
    }
    let opts = ChaosOptions {
        schedules,
        seed: args.seed,
        shrink_runs: args.shrink_runs,
        deny_warnings: args.deny_warnings,
        out_dir: args.chaos_out.clone(),
        replay_prefix: Some(prefix),
        start_allowance: std::time::Duration::from_secs_f64(args.start_allowance),
    };
    let subject = Subject::Command(CommandSink::new(command.clone()));
    let tty = std::io::stderr().is_terminal();
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let started = std::time::Instant::now();
    let chaos = runtime.block_on(search(&subject, &opts, |p| {
        if tty {
            progress_line(&p);
        }
    }));
    print_summary(&chaos, &opts, started.elapsed());

    let report = conformance::report::suite_report(&chaos.suite, args.deny_warnings);
    let mut write_failed = write_reports(args, &report);
    if let Some(dir) = &args.journal {
        if let Err(e) = write_journals(dir, &chaos.suite) {
            eprintln!("error: cannot write journals to {}: {e}", dir.display());
            write_failed = true;
        }
    }
    if write_failed {
        return Ok(ExitCode::from(2));
    }
    Ok(ExitCode::from(chaos.exit_code()))
}

/// One line per schedule (and per shrink run), on stderr.
fn progress_line(p: &Progress<'_>) {
    match p {
        Progress::Schedule {
            index,
            of,
            result,
            schedule,
        } => {
            let verdict = match &result.run {
                Err(_) => "ERROR".to_owned(),
                Ok(run) => {
                    let flagged: Vec<String> = run
                        .results
                        .iter()
                        .filter(|c| c.verdict != Verdict::Pass)
                        .map(|c| format!("{} {}", c.verdict.label(), c.id))
                        .collect();
                    if flagged.is_empty() {
                        "PASS".to_owned()
                    } else {
                        flagged.join(", ")
                    }
                }
            };
            eprintln!(
                "[{index}/{of}] seed {}: {} rule(s), {verdict}",
                result.seed,
                schedule.rules.len()
            );
        }
        Progress::Shrink {
            run,
            schedule,
            kept,
        } => eprintln!(
            "  shrink run {run}: {} rule(s), {} record(s): {}",
            schedule.rules.len(),
            schedule.records,
            if *kept { "still fails, kept" } else { "passes" }
        ),
    }
}

fn print_summary(chaos: &ChaosRun, opts: &ChaosOptions, took: std::time::Duration) {
    if let Some(e) = &chaos.error {
        println!(
            "ERROR after {} schedule(s) (seed {}): {e}",
            chaos.schedules_run,
            opts.seed + chaos.schedules_run.saturating_sub(1)
        );
        return;
    }
    let Some(f) = &chaos.found else {
        println!(
            "PASS: {} chaos schedule(s) from seed {}, no check failed ({:.1} s).",
            chaos.schedules_run,
            opts.seed,
            took.as_secs_f64()
        );
        return;
    };
    println!(
        "FAIL `{}` after {} schedule(s): schedule seed {} ({} rule(s)); shrunk in {} run(s) to \
         {} rule(s), {} record(s):",
        f.check,
        f.index,
        f.seed,
        f.original.rules.len(),
        f.shrink_runs,
        f.schedule.rules.len(),
        f.schedule.records
    );
    println!("  {}", f.schedule.describe());
    if let Some(r) = chaos
        .suite
        .results
        .last()
        .and_then(|r| r.run.as_ref().ok())
        .and_then(|run| run.results.iter().find(|c| c.id == f.check))
    {
        println!("  {}", r.explanation);
        for e in r.evidence.iter().take(3) {
            println!("    {e}");
        }
    }
    match (&f.written, &chaos.write_error) {
        (Some(path), _) => println!("  scenario: {}", path.display()),
        (None, Some(e)) => println!("  error: {e}"),
        (None, None) => println!("\n{}", f.scenario_toml),
    }
    println!("  replay: {}", f.replay);
    println!(
        "  the search again: {} --chaos 1 --seed {}",
        opts.replay_prefix
            .as_deref()
            .unwrap_or("tecton-sim conformance"),
        f.seed
    );
}
