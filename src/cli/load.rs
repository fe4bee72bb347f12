//! `tecton-sim load run|sweep`: open-loop load on the mock through one or more ingestion
//! patterns, written as `report.html`, `report.md` and `report.json`.
//!
//! Exit status: 0 when every `--threshold` held (or none was given), 1 when one failed, 2 when
//! the run could not be made.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Subcommand, ValueEnum};
use loadgen::plan::{self, Burst, Plan, Shape};
use loadgen::records::EventSpec;
use loadgen::session::{self, Setup};
use mock_tecton::{Config, MockTecton, Repository};
use reports::load::{LoadReport, Pattern, ReportOptions, RunPoint, Threshold, LOAD_SCHEMA_VERSION};

use super::RepoSource;

/// `load` subcommands.
#[derive(Subcommand)]
pub(crate) enum LoadCommand {
    /// One pattern at one rate shape (constant, ramp, steps, with an optional burst).
    Run(RunArgs),
    /// Several patterns at several constant rates, side by side.
    Sweep(SweepArgs),
}

/// The pattern names on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PatternArg {
    /// Batches of records to the Stream Ingest API.
    Push,
    /// Produce to the stream source's topic (micro-batch materialization).
    Kafka,
    /// Feed the records to --sink-command (sink protocol v1).
    Sink,
}

impl From<PatternArg> for Pattern {
    fn from(p: PatternArg) -> Pattern {
        match p {
            PatternArg::Push => Pattern::Push,
            PatternArg::Kafka => Pattern::Kafka,
            PatternArg::Sink => Pattern::Sink,
        }
    }
}

/// Arguments of `load run`.
#[derive(Args)]
pub(crate) struct RunArgs {
    /// How records reach the features.
    #[arg(long, value_enum, default_value = "push")]
    pattern: PatternArg,
    /// Offered records/s: `1000` (constant), `100..5000` (ramp), `100,500,1000` (equal steps).
    #[arg(long, default_value = "100")]
    rate: String,
    /// A burst over the rate: `RATE@START+LEN`, e.g. `5000@10s+2s`.
    #[arg(long)]
    burst: Option<String>,
    #[command(flatten)]
    common: CommonArgs,
}

/// Arguments of `load sweep`.
#[derive(Args)]
pub(crate) struct SweepArgs {
    /// Patterns to compare, comma-separated.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "push,kafka")]
    patterns: Vec<PatternArg>,
    /// Constant offered rates in records/s, comma-separated; each is one point per pattern.
    #[arg(long, value_delimiter = ',', required = true)]
    rates: Vec<String>,
    #[command(flatten)]
    common: CommonArgs,
}

/// Arguments shared by `run` and `sweep`.
#[derive(Args)]
struct CommonArgs {
    /// Length of each point: `60s`, `2m`, `500ms`.
    #[arg(long, default_value = "10s")]
    duration: String,
    /// A running mock (`tecton-sim serve`); without it the mock starts in-process.
    #[arg(long)]
    url: Option<String>,
    #[command(flatten)]
    repo: RepoSource,
    /// The mock's latency and capacity profile: `raw` (as fast as this machine) or `tecton`
    /// (Tecton's documented latencies and capacities; seeded with --seed). Applies to the
    /// in-process mock; with --url it only labels the report (start `serve --profile tecton`).
    #[arg(long, default_value = "raw", value_parser = ["raw", "tecton"])]
    profile: String,
    /// Editor API key for pushes and the sink.
    #[arg(long, default_value = "demo-editor-key")]
    api_key: String,
    /// Workspace.
    #[arg(long, default_value = "prod")]
    workspace: String,
    /// Push source (push and sink patterns).
    #[arg(long, default_value = "transactions")]
    source: String,
    /// Stream source (kafka pattern).
    #[arg(long, default_value = "transactions_stream")]
    stream_source: String,
    /// The kafka pattern produces to the stream source's topic on this Kafka-protocol broker
    /// (`HOST:PORT`) instead of the mock's in-memory topic; the in-process mock consumes from
    /// it (with --url, start the mock with `serve --kafka-bootstrap` on the same broker).
    #[arg(long, value_name = "HOST:PORT")]
    kafka_bootstrap: Option<String>,
    /// Most requests in flight at once (the connection pool's size).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    connections: u64,
    /// Records per request: `N` or `MIN..MAX` (drawn uniformly per request).
    #[arg(long, default_value = "1..10")]
    batch: String,
    /// A send that starts later than this after its due time counts as late.
    #[arg(long, default_value = "10ms")]
    late_after: String,
    /// Per-request timeout.
    #[arg(long, default_value = "10s")]
    timeout: String,
    /// How long to wait after the last send for the stream or the sink to finish.
    #[arg(long, default_value = "60s")]
    settle: String,
    /// The seed of every random choice (default: a fresh one, printed).
    #[arg(long)]
    seed: Option<u64>,
    /// Distinct users in generated events.
    #[arg(long, default_value_t = 10_000)]
    users: u64,
    /// Distinct merchants in generated events.
    #[arg(long, default_value_t = 500)]
    merchants: u64,
    /// Zipf exponent of the user draw: 0 uniform, 1 classic Zipf, higher is hotter.
    #[arg(long, default_value_t = 1.0)]
    key_skew: f64,
    /// Share of generated events stamped late (0..1).
    #[arg(long, default_value_t = 0.0)]
    late_share: f64,
    /// How late a late event is at most.
    #[arg(long, default_value = "10m")]
    max_lateness: String,
    /// Send the records of this JSONL file (one object per line, repeated as needed) instead
    /// of generated events.
    #[arg(long, value_name = "FILE")]
    input: Option<PathBuf>,
    /// The sink under test for `--pattern sink` (run as `sh -c`).
    #[arg(long, value_name = "COMMAND")]
    sink_command: Option<String>,
    /// Directory for report.html, report.md and report.json.
    #[arg(long, default_value = "load-report")]
    out: PathBuf,
    /// Pass/fail expression, e.g. `push.freshness.p99<500ms` (repeatable); a failure exits 1.
    #[arg(long = "threshold", value_name = "EXPR")]
    thresholds: Vec<String>,
    /// A stored report.json to compare with: regressions are shown in the reports.
    #[arg(long, value_name = "OLD.json")]
    compare: Option<PathBuf>,
    /// Cost model prices and capacities, e.g. `spark_cluster_usd_per_hour=4.2,push_usd_per_million_requests=0.5`
    /// (comma-separated or repeated; unset ones are EXAMPLE prices, labelled so in the reports).
    #[arg(long = "cost", value_name = "KEY=VALUE,...", value_delimiter = ',')]
    costs: Vec<String>,
    /// The p99 freshness (event sent → servable) a pattern must reach for the recommendation to
    /// choose it, e.g. `1s`, `500ms` (default: no target).
    #[arg(long, value_name = "DURATION")]
    freshness_target: Option<String>,
    /// The recommendation's share of the offered rate a pattern must achieve to hold it, e.g.
    /// `99%` or `0.99` (default 99%).
    #[arg(long, value_name = "RATIO")]
    min_achieved_ratio: Option<String>,
    /// The recommendation's largest share of failed requests for a pattern to hold a rate,
    /// e.g. `1%` (default 1%).
    #[arg(long, value_name = "RATIO")]
    max_error_rate: Option<String>,
    /// No progress bar, even on a terminal.
    #[arg(long)]
    quiet: bool,
}

/// Runs a `load` subcommand.
pub(crate) fn run(cmd: LoadCommand) -> anyhow::Result<ExitCode> {
    let (points, common) = match cmd {
        LoadCommand::Run(a) => {
            let duration = plan::duration(&a.common.duration)?;
            let shape = Shape::parse(&a.rate)?;
            let burst = a.burst.as_deref().map(Burst::parse).transpose()?;
            let plan = Plan::new(&shape, burst, duration)?;
            (vec![(a.pattern.into(), plan)], a.common)
        }
        LoadCommand::Sweep(a) => {
            let duration = plan::duration(&a.common.duration)?;
            let mut points = Vec::new();
            for rate in &a.rates {
                let Shape::Constant(r) = Shape::parse(rate)? else {
                    anyhow::bail!("--rates takes constant rates (`100,500,1000`), not `{rate}`");
                };
                for p in &a.patterns {
                    points.push(((*p).into(), Plan::constant(r, duration)?));
                }
            }
            (points, a.common)
        }
    };
    run_points(points, common)
}

fn run_points(points: Vec<(Pattern, Plan)>, args: CommonArgs) -> anyhow::Result<ExitCode> {
    // Read everything that can be wrong before any load is made.
    let thresholds = args
        .thresholds
        .iter()
        .map(|t| t.parse::<Threshold>())
        .collect::<Result<Vec<_>, _>>()?;
    let baseline = args
        .compare
        .as_deref()
        .map(reports::load::read_report)
        .transpose()
        .context("--compare")?;
    let mut opts = ReportOptions::default();
    for setting in &args.costs {
        opts.set_cost(setting)
            .map_err(|e| anyhow::anyhow!("--cost: {e}"))?;
    }
    for (flag, key, value) in [
        (
            "--freshness-target",
            "freshness_target",
            &args.freshness_target,
        ),
        (
            "--min-achieved-ratio",
            "min_achieved_ratio",
            &args.min_achieved_ratio,
        ),
        ("--max-error-rate", "max_error_rate", &args.max_error_rate),
    ] {
        if let Some(v) = value {
            opts.set_criterion(&format!("{key}={v}"))
                .map_err(|e| anyhow::anyhow!("{flag}: {e}"))?;
        }
    }
    if points.iter().any(|(p, _)| *p == Pattern::Sink) && args.sink_command.is_none() {
        anyhow::bail!("the sink pattern needs --sink-command '<command>'");
    }
    let seed = args.seed.unwrap_or_else(loadgen::rng::fresh_seed);
    let repo = args.repo.load()?;
    let mut setup = setup(&args, &repo, seed)?;
    println!("seed {seed} (replay with --seed {seed})");

    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let started_at = mock_tecton::schema::format_rfc3339(unix_now_ns());
    let measured: anyhow::Result<Vec<RunPoint>> = runtime.block_on(async {
        let mock = match &args.url {
            Some(url) => {
                setup.url = url.trim_end_matches('/').to_owned();
                None
            }
            None => {
                let mut config = Config::new(repo.clone());
                if args.profile == "tecton" {
                    config = config.profile(mock_tecton::profile::TectonProfile {
                        seed,
                        ..Default::default()
                    });
                }
                if let Some(bootstrap) = &args.kafka_bootstrap {
                    // `latest`: records left on the broker by earlier runs are not this run's.
                    config = config.kafka(
                        mock_tecton::kafka::KafkaConfig::new(bootstrap.clone())
                            .start(mock_tecton::kafka::StartAt::Latest),
                    );
                }
                let mock = MockTecton::start(config)
                    .await
                    .context("cannot start the in-process mock")?;
                setup.url = mock.url();
                println!(
                    "mock Tecton started in-process at {} (profile {})",
                    mock.url(),
                    args.profile
                );
                if let Some(bootstrap) = &args.kafka_bootstrap {
                    println!(
                        "kafka: producing to topic `{}` on {bootstrap}, consumed by the mock",
                        setup.topic
                    );
                }
                Some(mock)
            }
        };
        let mut out = Vec::new();
        for (pattern, plan) in points {
            println!(
                "{:<5} {:>9.1} records/s for {:?} ({} records)",
                pattern_name(pattern),
                plan.offered_rate(),
                plan.duration(),
                plan.total_records()
            );
            let measured = session::run_point(&setup, pattern, plan).await?;
            println!("      {}", summary(&measured.point));
            if let Some(c) = &measured.check {
                println!(
                    "      get-features check: {}/{} sampled keys serve exactly their acknowledged records",
                    c.agreed, c.checked
                );
                for (key, acked, served) in &c.disagreements {
                    println!("        {key}: {acked} acknowledged, served {served}");
                }
            }
            out.push(measured.point);
        }
        if let Some(mock) = mock {
            mock.shutdown().await;
        }
        Ok(out)
    });
    let report = LoadReport {
        schema_version: LOAD_SCHEMA_VERSION,
        tool_version: env!("CARGO_PKG_VERSION").to_owned(),
        seed,
        profile: args.profile.clone(),
        started_at,
        points: measured?,
    };
    opts.thresholds = reports::load::evaluate_with(&report, &thresholds, baseline.as_ref());
    opts.comparison = baseline
        .as_ref()
        .map(|old| reports::load::compare(old, &report));
    reports::load::write_all(&args.out, &report, &opts)
        .with_context(|| format!("cannot write the reports into {}", args.out.display()))?;
    let rec = reports::load::recommend(&report, &opts.cost, &opts.criteria);
    if !rec.bands.is_empty() {
        println!("recommendation: {}", rec.crossover_sentence());
        println!(
            "  ({} Costs: {}.)",
            opts.criteria_sentence(),
            opts.prices_label()
        );
    }
    println!("reports: {}/report.{{html,md,json}}", args.out.display());
    for t in &opts.thresholds {
        let verdict = if t.passed { "pass" } else { "FAIL" };
        println!("threshold {verdict}: {} ({})", t.threshold, t.detail);
    }
    if opts.thresholds_passed() {
        Ok(ExitCode::SUCCESS)
    } else {
        println!("a threshold failed (seed {seed})");
        Ok(ExitCode::from(1))
    }
}

fn setup(args: &CommonArgs, repo: &Repository, seed: u64) -> anyhow::Result<Setup> {
    let (min, max) = match args.batch.split_once("..") {
        Some((a, b)) => (a.trim().parse::<u64>(), b.trim().parse::<u64>()),
        None => (args.batch.trim().parse(), args.batch.trim().parse()),
    };
    let (Ok(min), Ok(max)) = (min, max) else {
        anyhow::bail!("--batch `{}`: expected N or MIN..MAX", args.batch);
    };
    if min == 0 || max < min {
        anyhow::bail!(
            "--batch `{}`: sizes must be at least 1 and MIN <= MAX",
            args.batch
        );
    }
    // The topic is the stream source's; a --url mock with another repository takes the demo's.
    let topic = repo
        .stream_sources
        .iter()
        .find(|s| s.name == args.stream_source)
        .map_or_else(|| "transactions".to_owned(), |s| s.topic.clone());
    let mut setup = Setup::demo(String::new(), seed);
    setup.api_key.clone_from(&args.api_key);
    setup.workspace.clone_from(&args.workspace);
    setup.push_source.clone_from(&args.source);
    setup.stream_source.clone_from(&args.stream_source);
    setup.topic = topic;
    if let Some(b) = &args.kafka_bootstrap {
        anyhow::ensure!(
            b.rsplit_once(':')
                .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok()),
            "--kafka-bootstrap `{b}`: expected HOST:PORT"
        );
    }
    setup.kafka_bootstrap.clone_from(&args.kafka_bootstrap);
    setup.events = EventSpec {
        users: args.users,
        merchants: args.merchants,
        key_skew: args.key_skew,
        late_share: args.late_share,
        max_lateness_ns: plan::duration(&args.max_lateness)?.as_nanos() as i64,
        ..EventSpec::default()
    };
    setup.input.clone_from(&args.input);
    setup.connections = args.connections as usize;
    setup.batch = (min, max);
    setup.late_after = plan::duration(&args.late_after)?;
    setup.timeout = nonzero(plan::duration(&args.timeout)?, "--timeout")?;
    setup.settle = plan::duration(&args.settle)?;
    setup.progress = !args.quiet;
    setup.sink_command.clone_from(&args.sink_command);
    // Fail on bad event settings or an unreadable file now, not after the mock started.
    setup.records()?;
    Ok(setup)
}

fn nonzero(d: Duration, flag: &str) -> anyhow::Result<Duration> {
    anyhow::ensure!(!d.is_zero(), "{flag} must be above 0");
    Ok(d)
}

fn unix_now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

fn pattern_name(p: Pattern) -> &'static str {
    match p {
        Pattern::Push => "push",
        Pattern::Kafka => "kafka",
        Pattern::Sink => "sink",
    }
}

fn summary(p: &RunPoint) -> String {
    let errors: u64 = p.errors.values().sum();
    let fresh = p
        .freshness_ms
        .map_or_else(|| "n/a".to_owned(), |f| format!("{:.1} ms", f.p99));
    format!(
        "achieved {:.1}/s  latency p50 {:.2} p99 {:.2} ms (uncorrected p99 {:.2})  freshness p99 {}  errors {}  late {}",
        p.achieved_rate,
        p.latency_ms.p50,
        p.latency_ms.p99,
        p.latency_uncorrected_ms.p99,
        fresh,
        errors,
        p.late_sends
    )
}
