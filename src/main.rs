//! `tecton-sim`: a mock Tecton, scenarios and conformance checks for anything that writes to
//! Tecton. This binary only parses arguments and wires the library crates together.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use mock_tecton::{Config, MockTecton, Repository};

#[derive(Parser)]
#[command(name = "tecton-sim", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the mock Tecton APIs until Ctrl-C.
    Serve(ServeArgs),
    /// Check or print a feature repository file.
    #[command(subcommand)]
    Repo(RepoCommand),
}

#[derive(Args)]
struct RepoSource {
    /// Feature repository TOML file (default: the embedded fraud demo).
    #[arg(long, short = 'c', value_name = "FILE")]
    config: Option<PathBuf>,
}

impl RepoSource {
    fn load(&self) -> anyhow::Result<Repository> {
        match &self.config {
            // The error lists every mistake with file:line:column, so print it as is.
            Some(path) => Repository::from_file(path).map_err(|e| anyhow::anyhow!("{e}")),
            None => Ok(Repository::demo()),
        }
    }
}

#[derive(Args)]
struct ServeArgs {
    #[command(flatten)]
    repo: RepoSource,
    /// Port to listen on (0 picks a free one).
    #[arg(long, short = 'p', default_value_t = 8080)]
    port: u16,
    /// Address to bind; keep the default unless other machines must reach the mock.
    #[arg(long, default_value = "127.0.0.1")]
    bind: IpAddr,
    /// Records per push source per ingest request before a 400.
    #[arg(long, default_value_t = mock_tecton::decisions::DEFAULT_RECORDS_PER_SOURCE)]
    records_per_source: usize,
    /// Request bodies larger than this many bytes get a 413.
    #[arg(long, default_value_t = mock_tecton::decisions::DEFAULT_MAX_BODY_BYTES)]
    max_body_bytes: usize,
    /// Journal entries kept before the oldest are let go.
    #[arg(long, default_value_t = mock_tecton::decisions::DEFAULT_JOURNAL_CAPACITY)]
    journal_capacity: usize,
    /// Start on a virtual clock stopped at this ISO-8601 time (move it with POST /_mock/clock).
    #[arg(long, value_name = "TIMESTAMP")]
    virtual_clock: Option<String>,
}

#[derive(Subcommand)]
enum RepoCommand {
    /// Validate a repository file and summarize it.
    Check(RepoSource),
    /// Print the embedded demo repository, a starting point for your own.
    ShowDefault,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => serve(args),
        Command::Repo(RepoCommand::ShowDefault) => {
            print!("{}", mock_tecton::repo::DEMO_TOML);
            Ok(())
        }
        Command::Repo(RepoCommand::Check(src)) => {
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
            Ok(())
        }
    }
}

fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    init_tracing();
    let mut config = Config::new(args.repo.load()?)
        .bind(SocketAddr::new(args.bind, args.port))
        .records_per_source(args.records_per_source)
        .max_body_bytes(args.max_body_bytes)
        .journal_capacity(args.journal_capacity);
    if let Some(at) = &args.virtual_clock {
        let ns = mock_tecton::schema::parse_timestamp(at).context("--virtual-clock")?;
        config = config.virtual_clock(ns);
    }
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async {
        let mock = MockTecton::start(config)
            .await
            .with_context(|| format!("cannot listen on {}:{}", args.bind, args.port))?;
        println!("mock Tecton serving at {}", mock.url());
        println!("  ingest:  POST {}/ingest", mock.url());
        println!("  admin:   GET  {}/_mock/health", mock.url());
        tokio::signal::ctrl_c()
            .await
            .context("cannot wait for Ctrl-C")?;
        tracing::info!("Ctrl-C received; finishing in-flight requests");
        mock.shutdown().await;
        Ok(())
    })
}
