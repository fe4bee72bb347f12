//! `tecton-sim offline` and `tecton-sim consistency`: point-in-time features for a spine, and
//! online versus offline features at a set of points.
//!
//! Both read their data either from a running mock (`--url`, through its admin API) or from a
//! file of push-source records loaded into an in-process mock (`--events`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context as _};
use clap::{Args, ValueEnum};
use mock_tecton::state::MockState;
use mock_tecton::{Config, Repository};
use serde_json::{json, Map, Value};

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
    /// Output format.
    #[arg(long, value_enum, default_value_t = ReportFormat::Md)]
    format: ReportFormat,
    /// Write here instead of stdout.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

fn read_jsonl(path: &Path) -> anyhow::Result<Vec<Value>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l)
                .with_context(|| format!("{}:{}: not a JSON object", path.display(), i + 1))
        })
        .collect()
}

/// The feature service named by `--service`, or the repository's first.
fn service_name(data: &DataSource, repo: &Repository) -> anyhow::Result<String> {
    match (&data.service, repo.feature_services.first()) {
        (Some(s), _) if repo.feature_services.iter().any(|fs| &fs.name == s) => Ok(s.clone()),
        (Some(s), _) => {
            let valid: Vec<&str> = repo
                .feature_services
                .iter()
                .map(|fs| fs.name.as_str())
                .collect();
            bail!(
                "no feature service named `{s}`; the repository has: {}",
                valid.join(", ")
            )
        }
        (None, Some(fs)) => Ok(fs.name.clone()),
        (None, None) => bail!("the repository has no feature service"),
    }
}

/// An in-process mock holding the `--events` records (loaded as a backfill: no TTL check).
fn in_process(repo: Repository, data: &DataSource) -> anyhow::Result<MockState> {
    let Some(path) = &data.events else {
        bail!("give --url (a running mock) or --events (records to load)");
    };
    let source = match (&data.source, repo.push_sources.first()) {
        (Some(s), _) => s.clone(),
        (None, Some(p)) => p.name.clone(),
        (None, None) => bail!("the repository has no push source"),
    };
    let workspace = repo
        .workspaces
        .iter()
        .find(|w| w.live)
        .map(|w| w.name.clone())
        .context("the repository has no live workspace")?;
    let records: Vec<Map<String, Value>> = read_jsonl(path)?
        .into_iter()
        .enumerate()
        .map(|(i, v)| match v {
            // Accept both bare records and the ingest API's {"record": {...}} wrapping.
            Value::Object(mut o)
                if o.len() == 1 && o.get("record").is_some_and(Value::is_object) =>
            {
                match o.remove("record") {
                    Some(Value::Object(r)) => Ok(r),
                    _ => bail!("{}:{}: not a record", path.display(), i + 1),
                }
            }
            Value::Object(o) => Ok(o),
            _ => bail!(
                "{}:{}: a record must be a JSON object",
                path.display(),
                i + 1
            ),
        })
        .collect::<anyhow::Result<_>>()?;
    let state = MockState::new(&Config::new(repo));
    state
        .load_records(&workspace, &source, records)
        .map_err(|e| anyhow::anyhow!("{}: records refused: {}", path.display(), e.body()))?;
    Ok(state)
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
    let spine_json = read_jsonl(&args.spine)?;
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
        let state = in_process(repo, &args.data)?;
        let fs = state
            .repo
            .feature_service(&service)
            .with_context(|| format!("no feature service named `{service}`"))?;
        let features = mock_tecton::serving::served_features(&state.repo, fs);
        let spine =
            mock_tecton::retrieval::spine_from_json(&spine_json, &args.data.timestamp_field)
                .map_err(|e| anyhow::anyhow!("{}: {e}", args.spine.display()))?;
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
    let points_json = read_jsonl(&args.points)?;
    let report: mock_tecton::consistency::ConsistencyReport = if let Some(url) = &args.data.url {
        let mut body = json!({"spine": points_json, "timestamp_field": args.data.timestamp_field, "max_rows": args.max_rows});
        if let Some(s) = &args.data.service {
            body["service"] = json!(s);
        }
        let value = remote(url, "consistency", &body)?;
        serde_json::from_value(value)
            .context("the mock's consistency report has an unexpected shape")?
    } else {
        let repo = args.data.repo.load()?;
        let service = service_name(&args.data, &repo)?;
        let state = in_process(repo, &args.data)?;
        let points =
            mock_tecton::retrieval::spine_from_json(&points_json, &args.data.timestamp_field)
                .map_err(|e| anyhow::anyhow!("{}: {e}", args.points.display()))?;
        mock_tecton::consistency::check(&state, &service, &points, args.max_rows)
            .map_err(|e| anyhow::anyhow!("{}", e.message))?
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
