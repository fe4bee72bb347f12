//! `tecton-sim consistency`: online versus offline features at a set of points; exits 1 when
//! they differ.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context as _};
use clap::{Args, ValueEnum};
use mock_tecton::consistency::{check, Arrival, CheckOptions, ConsistencyReport};
use serde_json::json;

use super::features::{in_process, read_spine, remote, service_name, write_out, DataSource};

/// Output formats of `consistency`.
#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum ReportFormat {
    /// The report as JSON.
    Json,
    /// The report as Markdown.
    Md,
}

/// Arrival rules of `consistency` (besides `--arrival-field`).
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ArrivalRule {
    /// An event arrives at its event time, or at the previous event's arrival when later.
    EventTime,
    /// An event arrives when the mock acknowledged it (needs --url).
    Ingestion,
}

/// Arguments of `consistency`.
#[derive(Args)]
pub(crate) struct ConsistencyArgs {
    #[command(flatten)]
    data: DataSource,
    /// JSON Lines of points: join keys and a timestamp. Without --url, the in-process mock starts
    /// at the earliest point (its batch backfill runs then) and runs each later batch window's
    /// job when the window ends.
    #[arg(long, value_name = "FILE")]
    points: PathBuf,
    /// How many differing rows to list.
    #[arg(long, default_value_t = 20)]
    max_rows: usize,
    /// A field of each event holding the time it reached the online store (default: its event
    /// time, or the previous event's arrival when that is later). Taken off the record before
    /// loading when the push source's schema does not have it; with --url it must be a field of
    /// the push source.
    #[arg(long, value_name = "FIELD", conflicts_with = "arrival")]
    arrival_field: Option<String>,
    /// How arrival times are decided when no --arrival-field is given: `ingestion` (the mock
    /// time each record was acknowledged) needs --url.
    #[arg(long, value_enum, default_value_t = ArrivalRule::EventTime)]
    arrival: ArrivalRule,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ReportFormat::Md)]
    format: ReportFormat,
    /// Write here instead of stdout.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

/// Runs `consistency`; exits 1 when online and offline differ.
pub(crate) fn run(args: ConsistencyArgs) -> anyhow::Result<ExitCode> {
    let (points_json, points) = read_spine(&args.points, &args.data.timestamp_field)?;
    let report: ConsistencyReport = if let Some(url) = &args.data.url {
        let mut body = json!({"spine": points_json, "timestamp_field": args.data.timestamp_field, "max_rows": args.max_rows});
        if let Some(s) = &args.data.service {
            body["service"] = json!(s);
        }
        match (&args.arrival_field, args.arrival) {
            (Some(field), _) => body["arrival_field"] = json!(field),
            (None, ArrivalRule::Ingestion) => body["arrival"] = json!("ingestion"),
            (None, ArrivalRule::EventTime) => {}
        }
        let value = remote(url, "consistency", &body)?;
        serde_json::from_value(value)
            .context("the mock's consistency report has an unexpected shape")?
    } else {
        if args.arrival == ArrivalRule::Ingestion {
            bail!("--arrival ingestion needs --url: records loaded from --events are all ingested at one instant");
        }
        let repo = args.data.repo.load()?;
        let service = service_name(&args.data, &repo)?;
        // The in-process mock starts at the first point, so every point sees the batch jobs
        // that had run by then (the backfill included) and no later one.
        let times = points.iter().map(|p| p.timestamp);
        let span = times.clone().min().zip(times.max());
        let (state, times) = in_process(repo, &args.data, args.arrival_field.as_deref(), span)?;
        let options = CheckOptions {
            arrival: match args.arrival_field {
                Some(_) => Arrival::Times(times),
                None => Arrival::EventTime,
            },
            max_rows: args.max_rows,
        };
        let mut report =
            check(&state, &service, &points, &options).map_err(|e| anyhow::anyhow!("{e}"))?;
        if let Some(field) = &args.arrival_field {
            report.arrival = format!("the `{field}` field of {}", display(&args.data.events));
        }
        report
    };
    let text = match args.format {
        ReportFormat::Json => format!("{}\n", serde_json::to_string_pretty(&report)?),
        ReportFormat::Md => report.to_markdown(),
    };
    write_out(args.out.as_deref(), &text)?;
    Ok(if report.consistent {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn display(path: &Option<PathBuf>) -> String {
    path.as_deref()
        .map_or_else(String::new, |p| p.display().to_string())
}
