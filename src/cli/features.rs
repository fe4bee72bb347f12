//! `tecton-sim offline` and `tecton-sim consistency`: point-in-time features for a spine, and
//! online versus offline features at a set of points.
//!
//! Both read their data either from a running mock (`--url`, through its admin API) or from a
//! file of push-source records loaded into an in-process mock (`--events`).

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context as _};
use clap::{Args, ValueEnum};
use mock_tecton::consistency::{check, Arrival, CheckOptions, ConsistencyReport};
use mock_tecton::state::MockState;
use mock_tecton::{Config, Repository};
use serde_json::{json, Value};

use super::RepoSource;

/// Where the features come from.
#[derive(Args)]
pub struct DataSource {
    #[command(flatten)]
    repo: RepoSource,
    /// A running mock to query (its admin API), e.g. http://127.0.0.1:8080.
    #[arg(long, conflicts_with = "events")]
    url: Option<String>,
    /// JSON Lines of push-source records to load into an in-process mock first.
    #[arg(long, value_name = "FILE")]
    events: Option<PathBuf>,
    /// The push source the events belong to (default: the repository's first).
    #[arg(long)]
    source: Option<String>,
    /// The feature service (default: the repository's first).
    #[arg(long)]
    service: Option<String>,
    /// Name of the time column in the spine or points file.
    #[arg(long, default_value = "timestamp")]
    timestamp_field: String,
}

/// Output formats of `offline`.
#[derive(Clone, Copy, ValueEnum)]
pub enum RowFormat {
    /// One JSON object per line.
    Jsonl,
    /// Comma-separated values with a header row.
    Csv,
}

/// Output formats of `consistency`.
#[derive(Clone, Copy, ValueEnum)]
pub enum ReportFormat {
    /// The report as JSON.
    Json,
    /// The report as Markdown.
    Md,
}

/// Arrival rules of `consistency` (besides `--arrival-field`).
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ArrivalRule {
    /// An event arrives at its event time, or at the previous event's arrival when later.
    EventTime,
    /// An event arrives when the mock acknowledged it (needs --url).
    Ingestion,
}

/// Arguments of `offline`.
#[derive(Args)]
pub struct OfflineArgs {
    #[command(flatten)]
    data: DataSource,
    /// JSON Lines of spine rows: join keys and a timestamp.
    #[arg(long, value_name = "FILE")]
    spine: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = RowFormat::Jsonl)]
    format: RowFormat,
    /// Write here instead of stdout.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

/// Arguments of `consistency`.
#[derive(Args)]
pub struct ConsistencyArgs {
    #[command(flatten)]
    data: DataSource,
    /// JSON Lines of points: join keys and a timestamp.
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

/// The non-blank lines of a JSON Lines file, parsed, each with its 1-based line number.
fn read_jsonl(path: &Path) -> anyhow::Result<Vec<(usize, Value)>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l)
                .map(|v| (i + 1, v))
                .with_context(|| format!("{}:{}: not valid JSON", path.display(), i + 1))
        })
        .collect()
}

/// Reads a spine or points file, naming the file and line of a bad row.
fn read_spine(
    path: &Path,
    timestamp_field: &str,
) -> anyhow::Result<(Vec<Value>, Vec<mock_tecton::retrieval::SpineRow>)> {
    let (lines, rows): (Vec<usize>, Vec<Value>) = read_jsonl(path)?.into_iter().unzip();
    let spine = mock_tecton::retrieval::spine_from_json(&rows, timestamp_field)
        .map_err(|e| anyhow::anyhow!("{}:{}: {}", path.display(), lines[e.index], e.message))?;
    Ok((rows, spine))
}

/// The feature service named by `--service`, or the repository's first.
fn service_name(data: &DataSource, repo: &Repository) -> anyhow::Result<String> {
    match (&data.service, repo.feature_services.first()) {
        (Some(s), _) => Ok(s.clone()),
        (None, Some(fs)) => Ok(fs.name.clone()),
        (None, None) => bail!("the repository has no feature service"),
    }
}

/// Most bad lines listed before giving up, so one systematic mistake does not flood the screen.
const MAX_LINE_ERRORS: usize = 20;

/// An in-process mock holding the `--events` records (loaded as a backfill: no TTL check), and
/// when `arrival_field` is given, each record's arrival time by record sequence number.
fn in_process(
    repo: Repository,
    data: &DataSource,
    arrival_field: Option<&str>,
) -> anyhow::Result<(MockState, HashMap<u64, i64>)> {
    let Some(path) = &data.events else {
        bail!("give --url (a running mock) or --events (records to load)");
    };
    let source = match (&data.source, repo.push_sources.first()) {
        (Some(s), _) => s.clone(),
        (None, Some(p)) => p.name.clone(),
        (None, None) => bail!("the repository has no push source"),
    };
    let schema = repo
        .push_sources
        .iter()
        .find(|p| p.name == source)
        .map(|p| p.schema.clone())
        .with_context(|| format!("the repository has no push source named `{source}`"))?;
    let workspace = repo
        .workspaces
        .iter()
        .find(|w| w.live)
        .map(|w| w.name.clone())
        .context("the repository has no live workspace")?;
    let mut records = Vec::new();
    let mut arrivals = Vec::new();
    let mut errors = Vec::new();
    for (line, value) in read_jsonl(path)? {
        let at = format!("{}:{line}", path.display());
        // Accept both bare records and the ingest API's {"record": {...}} wrapping.
        let value = match value {
            Value::Object(mut o)
                if o.len() == 1 && o.get("record").is_some_and(Value::is_object) =>
            {
                o.remove("record").unwrap_or_default()
            }
            v => v,
        };
        let Value::Object(mut record) = value else {
            errors.push(format!("{at}: a record must be a JSON object"));
            continue;
        };
        if let Some(field) = arrival_field {
            let time = match record.get(field) {
                Some(Value::String(s)) => mock_tecton::schema::parse_timestamp(s)
                    .map_err(|e| format!("{at}: field `{field}`: {e}")),
                Some(_) => Err(format!(
                    "{at}: field `{field}` must be an ISO-8601 timestamp string"
                )),
                None => Err(format!("{at}: no arrival field `{field}`")),
            };
            match time {
                Ok(t) => arrivals.push(t),
                Err(e) => errors.push(e),
            }
            if schema.index_of(field).is_none() {
                record.shift_remove(field);
            }
        }
        if let Err(field_errors) = mock_tecton::schema::validate_record(&schema, &record) {
            let message: Vec<String> = field_errors.iter().map(ToString::to_string).collect();
            errors.push(format!("{at}: {}", message.join("; ")));
        }
        records.push(record);
    }
    if !errors.is_empty() {
        let more = errors.len().saturating_sub(MAX_LINE_ERRORS);
        errors.truncate(MAX_LINE_ERRORS);
        if more > 0 {
            errors.push(format!("… and {more} more"));
        }
        bail!(
            "{} has records push source `{source}` refuses:\n  {}",
            path.display(),
            errors.join("\n  ")
        );
    }
    let state = MockState::new(&Config::new(repo));
    let first = state.record_seq.load(std::sync::atomic::Ordering::Relaxed);
    state
        .load_records(&workspace, &source, records)
        .map_err(|e| anyhow::anyhow!("{}: records refused: {}", path.display(), e.body()))?;
    let arrivals = (first..).zip(arrivals).collect();
    Ok((state, arrivals))
}

/// POSTs to a running mock's admin API.
fn remote(url: &str, endpoint: &str, body: &Value) -> anyhow::Result<Value> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let target = format!("{}/_mock/{endpoint}", url.trim_end_matches('/'));
        let resp = reqwest::Client::new()
            .post(&target)
            .json(body)
            .send()
            .await
            .with_context(|| format!("cannot reach {target}"))?;
        let status = resp.status();
        let value: Value = resp
            .json()
            .await
            .with_context(|| format!("{target} did not answer JSON"))?;
        if !status.is_success() {
            bail!("{target} answered {status}: {}", value["error"]);
        }
        Ok(value)
    })
}

fn write_out(out: Option<&Path>, text: &str) -> anyhow::Result<()> {
    match out {
        Some(path) => {
            std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
        }
        None => {
            std::io::stdout().write_all(text.as_bytes())?;
            Ok(())
        }
    }
}

/// Runs `offline`.
pub fn run_offline(args: OfflineArgs) -> anyhow::Result<ExitCode> {
    let (spine_json, spine) = read_spine(&args.spine, &args.data.timestamp_field)?;
    let rows: Vec<Value> = if let Some(url) = &args.data.url {
        let mut body = json!({"spine": spine_json, "timestamp_field": args.data.timestamp_field});
        if let Some(s) = &args.data.service {
            body["service"] = json!(s);
        }
        match remote(url, "offline/features", &body)?
            .get_mut("rows")
            .map(Value::take)
        {
            Some(Value::Array(rows)) => rows,
            _ => bail!("the mock's answer has no rows"),
        }
    } else {
        let repo = args.data.repo.load()?;
        let service = service_name(&args.data, &repo)?;
        let (state, _) = in_process(repo, &args.data, None)?;
        let fs = state
            .repo
            .feature_service(&service)
            .with_context(|| format!("no feature service named `{service}`"))?;
        let features = mock_tecton::serving::served_features(&state.repo, fs);
        let values = mock_tecton::retrieval::offline_features(&state, &features, &spine)
            .map_err(|e| anyhow::anyhow!("{}", e.message))?;
        mock_tecton::retrieval::rows_to_json(&features, &spine, &values)
    };
    let text = match args.format {
        RowFormat::Jsonl => rows.iter().map(|r| format!("{r}\n")).collect(),
        RowFormat::Csv => to_csv(&rows),
    };
    write_out(args.out.as_deref(), &text)?;
    Ok(ExitCode::SUCCESS)
}

/// Runs `consistency`; exits 1 when online and offline differ.
pub fn run_consistency(args: ConsistencyArgs) -> anyhow::Result<ExitCode> {
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
        let (state, times) = in_process(repo, &args.data, args.arrival_field.as_deref())?;
        let options = CheckOptions {
            arrival: match args.arrival_field {
                Some(_) => Arrival::Times(times),
                None => Arrival::EventTime,
            },
            max_rows: args.max_rows,
        };
        let mut report = check(&state, &service, &points, &options)
            .map_err(|e| anyhow::anyhow!("{}", e.message))?;
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

/// RFC 4180 CSV: the union of keys in first-seen order; nested values as JSON text.
fn to_csv(rows: &[Value]) -> String {
    let mut columns: Vec<String> = Vec::new();
    for row in rows {
        if let Value::Object(o) = row {
            for k in o.keys() {
                if !columns.contains(k) {
                    columns.push(k.clone());
                }
            }
        }
    }
    let quote = |s: &str| {
        if s.contains([',', '"', '\n', '\r']) {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s.to_owned()
        }
    };
    let mut out = columns
        .iter()
        .map(|c| quote(c))
        .collect::<Vec<_>>()
        .join(",");
    out.push('\n');
    for row in rows {
        let cells: Vec<String> = columns
            .iter()
            .map(|c| match row.get(c) {
                None | Some(Value::Null) => String::new(),
                Some(Value::String(s)) => quote(s),
                Some(other) => quote(&other.to_string()),
            })
            .collect();
        out.push_str(&cells.join(","));
        out.push('\n');
    }
    out
}
