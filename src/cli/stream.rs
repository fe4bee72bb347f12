//! `tecton-sim stream`: the Kafka + Spark pattern without a server. `replay` runs hand-written
//! micro-batches through a stream source's queries and prints what each batch did; `simulate`
//! runs generated load through the topic and the engine on the virtual clock.

use std::io::{IsTerminal as _, Write as _};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use mock_tecton::stream::replay::{parse_input, replay};
use mock_tecton::stream::simulate::Simulation;
use mock_tecton::stream::{SparkVersion, StreamConfig};

use super::RepoSource;

/// `stream` subcommands.
#[derive(Subcommand)]
pub(crate) enum StreamCommand {
    /// Run micro-batches from a JSON Lines file and print each batch's watermark, drops and writes.
    Replay(ReplayArgs),
    /// Run generated events through a topic and the micro-batch engine on the virtual clock.
    Simulate(SimulateArgs),
}

/// Arguments of `stream replay`.
#[derive(Args)]
pub(crate) struct ReplayArgs {
    #[command(flatten)]
    repo: RepoSource,
    /// The stream source (default: the repository's first).
    #[arg(long)]
    source: Option<String>,
    /// JSON Lines: `{"batch": <int>, "record": {...}}`, or `{"batch": <int>}` for an empty batch.
    #[arg(long, value_name = "FILE")]
    input: std::path::PathBuf,
    /// Late-row rule: 3.4 (Spark 3.4 and later, the default) or 3.3 (Spark 3.3 and earlier).
    #[arg(long, default_value = "3.4")]
    spark: SparkVersion,
}

/// Arguments of `stream simulate`.
#[derive(Args)]
pub(crate) struct SimulateArgs {
    #[command(flatten)]
    repo: RepoSource,
    /// The stream source (default: the repository's first).
    #[arg(long)]
    source: Option<String>,
    /// Records per second of virtual time.
    #[arg(long, default_value_t = 1000.0)]
    rate: f64,
    /// Virtual time to simulate (`24h`, `30m`, ...).
    #[arg(long, default_value = "24h")]
    duration: String,
    /// Distinct entities.
    #[arg(long, default_value_t = 10_000)]
    users: u64,
    /// Share of records that arrive late, up to twice the watermark delay behind.
    #[arg(long, default_value_t = 0.05)]
    late_share: f64,
    /// Seed of every random choice.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Virtual start time.
    #[arg(long, default_value = "2024-06-01T00:00:00Z")]
    start: String,
    /// Trigger interval for every query (default: 30 s TIME_INTERVAL, 0 s CONTINUOUS).
    #[arg(long)]
    trigger_interval: Option<String>,
    /// Duration of every micro-batch, whatever its size: its rows are servable at its end and
    /// the next starts no earlier (default: 800ms, local Spark's per-batch cost).
    #[arg(long)]
    batch_overhead: Option<String>,
    /// Processing time per input row, added to the batch's duration (e.g. `2us`; default 0).
    #[arg(long)]
    row_cost: Option<String>,
    /// Late-row rule: 3.4 or 3.3.
    #[arg(long, default_value = "3.4")]
    spark: SparkVersion,
    /// Also write the online store, as Tecton's stream job does (the demo's CONTINUOUS view then
    /// holds every event of its 3-day window in memory: keep the run short).
    #[arg(long)]
    materialize: bool,
    /// Also append every record to the offline store, as the source's batch source holds it.
    #[arg(long)]
    offline: bool,
}

/// Parses a duration flag (`30s`, `800ms`, `0s`).
pub(crate) fn duration_flag(flag: &str, text: &str) -> anyhow::Result<std::time::Duration> {
    let ns = mock_tecton::duration::parse(text).with_context(|| format!("--{flag}"))?;
    Ok(std::time::Duration::from_nanos(u64::try_from(ns).map_err(
        |_| anyhow::anyhow!("--{flag} must not be negative"),
    )?))
}

/// Runs a `stream` subcommand.
pub(crate) fn run(cmd: StreamCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        StreamCommand::Replay(args) => run_replay(args),
        StreamCommand::Simulate(args) => run_simulate(args),
    }
}

fn source_name(repo: &mock_tecton::Repository, given: Option<String>) -> anyhow::Result<String> {
    given
        .or_else(|| repo.stream_sources.first().map(|s| s.name.clone()))
        .ok_or_else(|| anyhow::anyhow!("the repository has no stream source"))
}

fn run_replay(args: ReplayArgs) -> anyhow::Result<ExitCode> {
    let repo = args.repo.load()?;
    let source = source_name(&repo, args.source)?;
    let text = std::fs::read_to_string(&args.input)
        .with_context(|| format!("cannot read {}", args.input.display()))?;
    let batches =
        parse_input(&text).map_err(|e| anyhow::anyhow!("{}: {e}", args.input.display()))?;
    let lines = replay(&repo, &source, &batches, args.spark)?;
    let mut out = std::io::stdout().lock();
    for line in lines {
        writeln!(out, "{line}")?;
    }
    Ok(ExitCode::SUCCESS)
}

fn run_simulate(args: SimulateArgs) -> anyhow::Result<ExitCode> {
    let repo = args.repo.load()?;
    let source = source_name(&repo, args.source)?;
    let duration = mock_tecton::duration::parse(&args.duration).context("--duration")?;
    if !(0.0..=1.0).contains(&args.late_share) {
        anyhow::bail!("--late-share must be between 0 and 1");
    }
    let start = mock_tecton::schema::parse_timestamp(&args.start).context("--start")?;
    let stream = StreamConfig {
        trigger_interval: args
            .trigger_interval
            .as_deref()
            .map(|t| duration_flag("trigger-interval", t))
            .transpose()?,
        batch_overhead: args
            .batch_overhead
            .as_deref()
            .map(|t| duration_flag("batch-overhead", t))
            .transpose()?
            .unwrap_or(mock_tecton::decisions::STREAM_BATCH_DURATION),
        row_cost: args
            .row_cost
            .as_deref()
            .map(|t| duration_flag("row-cost", t))
            .transpose()?
            .unwrap_or(mock_tecton::decisions::STREAM_ROW_COST),
        spark: args.spark,
        materialize: args.materialize,
        offline: args.offline,
        ..StreamConfig::default()
    };
    let sim = Simulation {
        source,
        rate: args.rate,
        duration,
        users: args.users,
        late_share: args.late_share,
        seed: args.seed,
        start,
    };
    let bar = std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} {wide_bar} {pos}/{len} records ({per_sec}, eta {eta})",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    });
    let report = sim.run(&repo, stream.clone(), |done, total| {
        if let Some(bar) = &bar {
            bar.set_length(total);
            bar.set_position(done);
        }
    })?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let secs = report.wall.as_secs_f64();
    println!(
        "simulated {} of `{}` at {} records/s: {} records, {} users, late share {}, seed {}",
        args.duration,
        sim.source,
        args.rate,
        report.records,
        args.users,
        args.late_share,
        args.seed
    );
    println!(
        "{:<34} {:>10} {:>12} {:>8} {:>9} {:>8} {:>10} {:>10} {:>10} {:>10}",
        "view", "batches", "rows", "late", "duplicate", "invalid", "fresh p50", "p90", "p99", "max"
    );
    let ms = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.0} ms"));
    for (name, batches, rows, drops, fresh) in &report.views {
        println!(
            "{:<34} {:>10} {:>12} {:>8} {:>9} {:>8} {:>10} {:>10} {:>10} {:>10}",
            name,
            batches,
            rows,
            drops[0],
            drops[1],
            drops[2],
            ms(fresh.quantile_ms(0.5)),
            ms(fresh.quantile_ms(0.9)),
            ms(fresh.quantile_ms(0.99)),
            ms(fresh.quantile_ms(1.0)),
        );
    }
    let f = &report.freshness;
    println!(
        "freshness (all views): p50 {} p90 {} p99 {} max {}",
        ms(f.quantile_ms(0.5)),
        ms(f.quantile_ms(0.9)),
        ms(f.quantile_ms(0.99)),
        ms(f.quantile_ms(1.0))
    );
    let online = if stream.materialize {
        format!("{} online entities", report.online_entities)
    } else {
        "online store not written (--materialize writes it)".to_owned()
    };
    println!(
        "state: {} keys at the end ({} in memory: views that share a deduplication state hold its keys once), {} at peak; topic held at most {} unread records; {online}",
        report.state_rows, report.state_rows_held, report.peak_state_rows, report.peak_topic_records
    );
    let batches: u64 = report.views.iter().map(|v| v.1).sum();
    println!(
        "micro-batches: {batches} in all; batch duration {} ms + {} us per row",
        stream.batch_overhead.as_millis(),
        stream.row_cost.as_secs_f64() * 1e6
    );
    let per_record = |d: std::time::Duration| d.as_secs_f64() * 1e9;
    let cpu = report.cpu.map_or(String::new(), |c| {
        format!(
            " (CPU {:.1} s, {:.0} ns per record)",
            c.as_secs_f64(),
            c.as_secs_f64() * 1e9 / (report.records.max(1) as f64)
        )
    });
    println!(
        "wall time {:.1} s: {:.0} records/s, {:.0}x faster than simulated time, {:.0} ns per record{cpu}",
        secs,
        report.records as f64 / secs.max(1e-9),
        duration as f64 / 1e9 / secs.max(1e-9),
        secs * 1e9 / (report.records.max(1) as f64)
    );
    let engine = secs * 1e9 / (report.records.max(1) as f64);
    let p = &report.peers;
    let mut peers = format!(
        "peers on the first {} records: generating alone {:.0} ns per record (the run takes {:.1}x that)",
        p.events,
        per_record(p.generate),
        engine / per_record(p.generate).max(1e-9)
    );
    if let Some((push, d)) = &p.apply {
        peers.push_str(&format!(
            "; in-process ingest into push source `{push}` (apply_events) {:.0} ns per record (the run takes {:.2}x that)",
            per_record(*d),
            engine / per_record(*d).max(1e-9)
        ));
    }
    println!("{peers}");
    match peak_rss_bytes() {
        Some(b) => println!("peak RSS {:.0} MiB", b as f64 / (1u64 << 20) as f64),
        None => println!("peak RSS unknown (no /proc/self/status)"),
    }
    Ok(ExitCode::SUCCESS)
}

/// The process's peak resident set size (`VmHWM`), on Linux.
fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}
