//! `tecton-sim`: a mock Tecton, scenarios and conformance checks for anything that writes to
//! Tecton. This binary only parses arguments and hands each subcommand to its module in
//! `cli/`, which wires the library crates together.

mod cli;

/// mimalloc instead of the system allocator: the mock's write path allocates small, short-lived
/// objects from many threads (request buffers, keys, values), where glibc's malloc spends most
/// of its time consolidating and unlinking chunks under sustained ingest (see
/// `docs/performance.md` for the measurements).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "tecton-sim", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the mock Tecton APIs until Ctrl-C.
    Serve(cli::serve::ServeArgs),
    /// Check or print a feature repository file.
    #[command(subcommand)]
    Repo(cli::repo::RepoCommand),
    /// Point-in-time features for a spine, from the offline store.
    Offline(cli::offline::OfflineArgs),
    /// Compare online and point-in-time offline features; exits 1 when they differ.
    Consistency(cli::consistency::ConsistencyArgs),
    /// Run the conformance scenarios against a sink; exits 1 when a check fails.
    Conformance(cli::conformance::ConformanceArgs),
    /// List, show or validate conformance scenarios without running a sink.
    #[command(subcommand)]
    Scenarios(cli::scenarios::ScenariosCommand),
    /// Stream sources (Kafka + Spark pattern): replay micro-batches, simulate load.
    #[command(subcommand)]
    Stream(cli::stream::StreamCommand),
    /// Open-loop load through the push, Kafka or sink pattern; writes HTML, Markdown and JSON.
    #[command(subcommand)]
    Load(Box<cli::load::LoadCommand>),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => cli::serve::run(args),
        Command::Repo(cmd) => cli::repo::run(cmd),
        Command::Offline(args) => cli::offline::run(args),
        Command::Consistency(args) => cli::consistency::run(args),
        Command::Conformance(args) => cli::conformance::run(args),
        Command::Scenarios(cmd) => cli::scenarios::run(cmd),
        Command::Stream(cmd) => cli::stream::run(cmd),
        Command::Load(cmd) => cli::load::run(*cmd),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
