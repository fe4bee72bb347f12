//! `tecton-sim repo`: validate or print a feature repository.

use std::process::ExitCode;

use clap::Subcommand;

use super::RepoSource;

/// `repo` subcommands.
#[derive(Subcommand)]
pub(crate) enum RepoCommand {
    /// Validate a repository file and summarize it.
    Check(RepoSource),
    /// Print the embedded demo repository, a starting point for your own.
    ShowDefault,
}

/// Runs a `repo` subcommand.
pub(crate) fn run(cmd: RepoCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        RepoCommand::ShowDefault => print!("{}", mock_tecton::repo::DEMO_TOML),
        RepoCommand::Check(src) => {
            let repo = src.load()?;
            println!(
                "ok: {} workspace(s), {} service account(s), {} push source(s), {} stream source(s), {} feature view(s), {} feature service(s)",
                repo.workspaces.len(),
                repo.service_accounts.len(),
                repo.push_sources.len(),
                repo.stream_sources.len(),
                repo.feature_views.len(),
                repo.feature_services.len()
            );
            for view in &repo.feature_views {
                let features: Vec<String> = view
                    .features()
                    .into_iter()
                    .map(|(n, t)| format!("{n}: {t}"))
                    .collect();
                println!("  {}: {}", view.name, features.join(", "));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
