//! `tecton-sim serve`: the mock as a standalone server.

use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;
use mock_tecton::profile::TectonProfile;
use mock_tecton::{decisions, Config, MockTecton};

use super::RepoSource;

/// Arguments of `serve`.
#[derive(Args)]
pub struct ServeArgs {
    #[command(flatten)]
    repo: RepoSource,
    /// Port to listen on (0 picks a free one).
    #[arg(long, short = 'p', default_value_t = 8080)]
    port: u16,
    /// Address to bind; keep the default unless other machines must reach the mock.
    #[arg(long, default_value = "127.0.0.1")]
    bind: IpAddr,
    /// Records per push source per ingest request before a 400.
    #[arg(long, default_value_t = decisions::DEFAULT_RECORDS_PER_SOURCE)]
    records_per_source: usize,
    /// Request bodies larger than this many bytes get a 413.
    #[arg(long, default_value_t = decisions::DEFAULT_MAX_BODY_BYTES)]
    max_body_bytes: usize,
    /// Journal entries kept before the oldest are let go.
    #[arg(long, default_value_t = decisions::DEFAULT_JOURNAL_CAPACITY)]
    journal_capacity: usize,
    /// Start on a virtual clock stopped at this ISO-8601 time (move it with POST /_mock/clock).
    #[arg(long, value_name = "TIMESTAMP")]
    virtual_clock: Option<String>,
    /// Fault rules to install at start (TOML; change them live with POST /_mock/faults).
    #[arg(long, value_name = "FILE")]
    faults: Option<std::path::PathBuf>,
    /// Latency and capacity: `raw` answers as fast as this machine can; `tecton` adds Tecton's
    /// documented ingest latency, 429s while ingest scales, ~200 QPS feature server capacity
    /// and its 2 s timeout.
    #[arg(long, value_enum, default_value_t = ProfileName::Raw)]
    profile: ProfileName,
    /// Every number of the `tecton` profile from a TOML file (implies `--profile tecton`).
    #[arg(long, value_name = "FILE")]
    profile_file: Option<std::path::PathBuf>,
    /// Seed of the profile's latency draws (overrides the file's).
    #[arg(long, value_name = "N")]
    profile_seed: Option<u64>,
}

/// The latency and capacity profiles `serve` knows.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ProfileName {
    /// The raw mock: no added latency, no capacity limits.
    Raw,
    /// Tecton's documented latency and capacity.
    Tecton,
}

/// The profile the flags ask for, if any.
fn profile(args: &ServeArgs) -> anyhow::Result<Option<TectonProfile>> {
    let mut profile = match &args.profile_file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            TectonProfile::from_toml(&text)
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
        }
        None if args.profile == ProfileName::Tecton => TectonProfile::default(),
        None => return Ok(None),
    };
    if let Some(seed) = args.profile_seed {
        profile.seed = seed;
    }
    Ok(Some(profile))
}

/// Serves until Ctrl-C, then lets in-flight requests finish.
pub fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    super::init_tracing();
    let mut config = Config::new(args.repo.load()?)
        .bind(SocketAddr::new(args.bind, args.port))
        .records_per_source(args.records_per_source)
        .max_body_bytes(args.max_body_bytes)
        .journal_capacity(args.journal_capacity);
    if let Some(at) = &args.virtual_clock {
        let ns = mock_tecton::schema::parse_timestamp(at).context("--virtual-clock")?;
        config = config.virtual_clock(ns);
    }
    if let Some(path) = &args.faults {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let set = mock_tecton::faults::FaultSet::from_toml(&text)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        config = config.faults(set);
    }
    if let Some(profile) = profile(&args)? {
        config = config.profile(profile);
    }
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async {
        let mock = MockTecton::start(config)
            .await
            .with_context(|| format!("cannot listen on {}:{}", args.bind, args.port))?;
        println!("mock Tecton serving at {}", mock.url());
        println!("  ingest:  POST {}/ingest", mock.url());
        println!("  admin:   GET  {}/_mock/health", mock.url());
        if let Some(p) = &mock.state().profile {
            println!("  profile: tecton (seed {})", p.knobs().seed);
        }
        tokio::signal::ctrl_c()
            .await
            .context("cannot wait for Ctrl-C")?;
        tracing::info!("Ctrl-C received; finishing in-flight requests");
        mock.shutdown().await;
        Ok(ExitCode::SUCCESS)
    })
}
