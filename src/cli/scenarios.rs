//! `tecton-sim scenarios`: list, show and lint scenario files without running a sink.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};
use conformance::checks::ExpectedOutcome;
use conformance::scenario::{builtin_text, Scenario, BUILTIN_DIR};

use super::conformance::load_scenarios;

/// `scenarios` subcommands.
#[derive(Subcommand, Debug)]
pub(crate) enum ScenariosCommand {
    /// List the scenarios a conformance run would use: the built-in ones plus a directory's.
    List(Dir),
    /// Print one scenario's file (a built-in one comes from the binary).
    Show {
        /// The scenario's name, as `list` prints it.
        name: String,
        #[command(flatten)]
        dir: Dir,
    },
    /// Validate scenario files (every *.toml in a directory, or one file); exits 1 when any is
    /// invalid.
    Check {
        /// A directory of scenario files, or one file.
        path: PathBuf,
    },
}

/// `--scenarios DIR`, as for `conformance`.
#[derive(Args, Debug)]
pub(crate) struct Dir {
    /// Directory of scenario files added to the built-in ones (default: $TECTON_SIM_SCENARIOS).
    #[arg(long, value_name = "DIR")]
    scenarios: Option<PathBuf>,
}

/// Runs a `scenarios` subcommand.
pub(crate) fn run(cmd: ScenariosCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        ScenariosCommand::List(dir) => list(dir.scenarios.as_deref()),
        ScenariosCommand::Show { name, dir } => show(&name, dir.scenarios.as_deref()),
        ScenariosCommand::Check { path } => check(&path),
    }
}

fn origin(s: &Scenario) -> String {
    match &s.path {
        Some(p) if p.starts_with(BUILTIN_DIR) => "built-in".into(),
        Some(p) => p.display().to_string(),
        None => "in memory".into(),
    }
}

fn list(dir: Option<&Path>) -> anyhow::Result<ExitCode> {
    let all = load_scenarios(dir)?;
    let width = all
        .iter()
        .flatten()
        .map(|s| s.name.len())
        .max()
        .unwrap_or(0);
    let mut invalid = 0;
    for s in &all {
        match s {
            Ok(s) => {
                let expects = match s.outcome {
                    ExpectedOutcome::Success => "success",
                    ExpectedOutcome::GiveUp => "give_up",
                };
                println!(
                    "{:<width$}  {expects:<7}  {}  [{}]",
                    s.name,
                    s.description,
                    origin(s)
                );
            }
            Err(e) => {
                invalid += 1;
                println!("{:<width$}  INVALID  {e}", e.scenario_name());
            }
        }
    }
    Ok(if invalid > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn show(name: &str, dir: Option<&Path>) -> anyhow::Result<ExitCode> {
    let all = load_scenarios(dir)?;
    let found = all.iter().find(|s| match s {
        Ok(s) => s.name == name,
        Err(e) => e.scenario_name() == name,
    });
    let path = match found {
        Some(Ok(s)) => s.path.clone(),
        Some(Err(e)) => Some(e.file.clone()),
        None => {
            let names: Vec<String> = all
                .iter()
                .map(|s| match s {
                    Ok(s) => s.name.clone(),
                    Err(e) => e.scenario_name(),
                })
                .collect();
            anyhow::bail!("no scenario `{name}`; available: {}", names.join(", "));
        }
    };
    let text = match path {
        Some(p) if p.starts_with(BUILTIN_DIR) => builtin_text(name)
            .map(str::to_owned)
            .ok_or_else(|| anyhow::anyhow!("built-in scenario `{name}` has no text"))?,
        Some(p) => std::fs::read_to_string(&p)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", p.display()))?,
        None => anyhow::bail!("scenario `{name}` has no file"),
    };
    print!("{text}");
    Ok(ExitCode::SUCCESS)
}

fn check(path: &Path) -> anyhow::Result<ExitCode> {
    let loaded = if path.is_dir() {
        conformance::scenario::load_dir(path).map_err(|e| anyhow::anyhow!("{e}"))?
    } else {
        vec![Scenario::load_file(path)]
    };
    let mut invalid = 0usize;
    for s in &loaded {
        match s {
            Ok(s) => println!(
                "ok: {} ({} input record(s), {} check(s))",
                s.name,
                s.records(1).len(),
                s.checks().len()
            ),
            Err(e) => {
                invalid += 1;
                println!("error: {e}");
            }
        }
    }
    println!(
        "{} scenario file(s), {} valid, {invalid} invalid",
        loaded.len(),
        loaded.len() - invalid
    );
    Ok(if invalid > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
