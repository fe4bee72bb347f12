//! `tecton-sim serve`: the mock as a standalone server.

use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;
use mock_tecton::kafka::KafkaConfig;
use mock_tecton::profile::TectonProfile;
use mock_tecton::{decisions, Config, MockTecton};

use super::RepoSource;

/// Arguments of `serve`.
#[derive(Args)]
pub(crate) struct ServeArgs {
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
    /// Request bodies larger than this many bytes get a 413 (at least 1).
    #[arg(long, default_value_t = decisions::DEFAULT_MAX_BODY_BYTES, value_parser = parse_max_body)]
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
    /// Consume every stream source's topic from this Kafka-protocol broker (JSON values, one
    /// record each) instead of only the in-memory topics.
    #[arg(long, value_name = "HOST:PORT")]
    kafka_bootstrap: Option<String>,
    /// Where partitions present at start are read from: `earliest` or `latest`.
    #[arg(
        long,
        value_name = "WHERE",
        default_value = "earliest",
        requires = "kafka_bootstrap"
    )]
    kafka_start: mock_tecton::kafka::StartAt,
    /// Micro-batch trigger of every stream query (default: 30s TIME_INTERVAL, 0s CONTINUOUS);
    /// a stream source's own `trigger_interval` still wins.
    #[arg(long, value_name = "DURATION")]
    trigger_interval: Option<String>,
    /// Extra time before a micro-batch's rows are servable (e.g. `800ms`).
    #[arg(long, value_name = "DURATION", default_value = "0s")]
    batch_overhead: String,
    /// Spark's late-row rule for stream sources: 3.4 (3.4 and later) or 3.3 (3.3 and earlier).
    #[arg(long, default_value = "3.4")]
    spark: mock_tecton::stream::SparkVersion,
    /// Write the offline store's Parquet files under DIR/offline (default: a fresh temporary
    /// directory).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<std::path::PathBuf>,
    /// Keep the offline store's files at exit (otherwise they are deleted).
    #[arg(long)]
    keep_data: bool,
}

fn parse_max_body(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) => Err("must be at least 1: with 0 every request with a body would get a 413".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("`{text}` is not a number of bytes")),
    }
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

/// Serves until Ctrl-C or SIGTERM, then lets in-flight requests finish and writes (with
/// `--keep-data`) or deletes the offline store's files.
pub(crate) fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    super::init_tracing();
    let mut config = Config::new(args.repo.load()?)
        .bind(SocketAddr::new(args.bind, args.port))
        .records_per_source(args.records_per_source)
        .max_body_bytes(args.max_body_bytes)
        .journal_capacity(args.journal_capacity)
        .keep_data(args.keep_data);
    config = config.stream(mock_tecton::stream::StreamConfig {
        trigger_interval: args
            .trigger_interval
            .as_deref()
            .map(|t| super::stream::duration_flag("trigger-interval", t))
            .transpose()?,
        batch_overhead: super::stream::duration_flag("batch-overhead", &args.batch_overhead)?,
        spark: args.spark,
        ..mock_tecton::stream::StreamConfig::default()
    });
    if let Some(dir) = &args.data_dir {
        config = config.data_dir(dir);
    }
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
    if let Some(bootstrap) = &args.kafka_bootstrap {
        config = config.kafka(KafkaConfig::new(bootstrap.clone()).start(args.kafka_start));
    }
    if let Some(profile) = profile(&args)? {
        config = config.profile(profile);
    }
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async {
        let mock = MockTecton::start(config)
            .await
            .with_context(|| format!("cannot start the mock on {}:{}", args.bind, args.port))?;
        let state = mock.state().clone();
        let mut stop = StopSignal::install()?;
        println!("mock Tecton serving at {}", mock.url());
        println!("  ingest:  POST {}/ingest", mock.url());
        println!("  admin:   GET  {}/_mock/health", mock.url());
        println!(
            "  offline: {}/offline ({})",
            state.offline().data_dir().display(),
            if args.keep_data {
                "kept at exit"
            } else {
                "deleted at exit; --keep-data keeps it"
            }
        );
        // Lines after the first four may find stdout closed by a reader that took only those.
        banner(format!(
            "  topics:  POST {}/_mock/topics/{{topic}}",
            mock.url()
        ));
        if let Some(k) = &args.kafka_bootstrap {
            banner(format!(
                "  kafka:   consuming from {k} (GET {}/_mock/kafka)",
                mock.url()
            ));
        }
        if let Some(p) = &mock.state().profile() {
            banner(format!("  profile: tecton (seed {})", p.knobs().seed));
        }
        let signal = stop.recv().await?;
        tracing::info!("{signal} received; finishing in-flight requests");
        mock.shutdown().await;
        // Flushes (kept) or deletes (not kept) now, whoever else still holds the state.
        tokio::task::spawn_blocking(move || state.offline().close())
            .await
            .context("closing the offline store")?;
        Ok(ExitCode::SUCCESS)
    })
}

/// Ctrl-C and (on Unix) SIGTERM, listened for from creation on, so that a signal sent as soon
/// as the banner is printed is not missed.
struct StopSignal {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl StopSignal {
    fn install() -> anyhow::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Ok(StopSignal {
                interrupt: signal(SignalKind::interrupt()).context("cannot listen for Ctrl-C")?,
                terminate: signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?,
            })
        }
        #[cfg(not(unix))]
        Ok(StopSignal {})
    }

    /// Waits for the first signal; returns its name.
    async fn recv(&mut self) -> anyhow::Result<&'static str> {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.interrupt.recv() => Ok("Ctrl-C"),
                _ = self.terminate.recv() => Ok("SIGTERM"),
            }
        }
        #[cfg(not(unix))]
        {
            tokio::signal::ctrl_c()
                .await
                .context("cannot wait for Ctrl-C")?;
            Ok("Ctrl-C")
        }
    }
}

/// Prints a banner line; a closed stdout is not a reason to stop serving.
fn banner(line: String) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stdout(), "{line}");
}
