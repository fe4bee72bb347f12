//! What `offline` and `consistency` share: where the features come from (a running mock through
//! its admin API with `--url`, or push-source records loaded into an in-process mock with
//! `--events`), reading spine files, and writing the output.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use clap::Args;
use mock_tecton::state::MockState;
use mock_tecton::{Config, Repository};
use serde_json::Value;

use super::RepoSource;

/// Where the features come from.
#[derive(Args)]
pub(crate) struct DataSource {
    #[command(flatten)]
    pub(super) repo: RepoSource,
    /// A running mock to query (its admin API), e.g. http://127.0.0.1:8080.
    #[arg(long, conflicts_with = "events")]
    pub(super) url: Option<String>,
    /// JSON Lines of push-source records to load into an in-process mock first. The
    /// repository's batch sources are loaded and backfilled before them, as `serve` does at
    /// start; with batch sources, the records may be left out.
    #[arg(long, value_name = "FILE")]
    pub(super) events: Option<PathBuf>,
    /// The push source the events belong to (default: the repository's first).
    #[arg(long)]
    pub(super) source: Option<String>,
    /// The feature service (default: the repository's first).
    #[arg(long)]
    pub(super) service: Option<String>,
    /// Name of the time column in the spine or points file.
    #[arg(long, default_value = "timestamp")]
    pub(super) timestamp_field: String,
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
pub(super) fn read_spine(
    path: &Path,
    timestamp_field: &str,
) -> anyhow::Result<(Vec<Value>, Vec<mock_tecton::retrieval::SpineRow>)> {
    let (lines, rows): (Vec<usize>, Vec<Value>) = read_jsonl(path)?.into_iter().unzip();
    let spine = mock_tecton::retrieval::spine_from_json(&rows, timestamp_field)
        .map_err(|e| anyhow::anyhow!("{}:{}: {}", path.display(), lines[e.index], e.message))?;
    Ok((rows, spine))
}

/// The feature service named by `--service`, or the repository's first.
pub(super) fn service_name(data: &DataSource, repo: &Repository) -> anyhow::Result<String> {
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

/// Most bad lines listed before giving up, so one systematic mistake does not flood the screen.
const MAX_LINE_ERRORS: usize = 20;

/// An in-process mock holding the `--events` records (loaded as a backfill: no TTL check), and
/// when `arrival_field` is given, each record's arrival time by record sequence number. With
/// `points` (the first and last point in time), the mock starts at the first (see
/// [`batch_loaded`]).
pub(super) fn in_process(
    repo: Repository,
    data: &DataSource,
    arrival_field: Option<&str>,
    points: Option<(i64, i64)>,
) -> anyhow::Result<(MockState, HashMap<u64, i64>)> {
    let Some(path) = &data.events else {
        if repo.batch_sources.is_empty() {
            bail!("give --url (a running mock) or --events (records to load)");
        }
        // The batch sources' files alone are the history.
        let state = batch_loaded(repo, points)?;
        return Ok((state, HashMap::new()));
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
    let state = batch_loaded(repo, points)?;
    let first = state.record_seq();
    state
        .load_records(&workspace, &source, records)
        .map_err(|e| anyhow::anyhow!("{}: records refused: {}", path.display(), e.body()))?;
    let arrivals = (first..).zip(arrivals).collect();
    Ok((state, arrivals))
}

/// An in-process mock for `repo` whose batch sources are loaded and backfilled as `serve` does
/// at start, before any record is loaded. Without `points` the mock starts now: one backfill
/// materializes the history. With `points` (the first and last point in time, the first earlier
/// than now) it starts at the first, on a virtual clock: the backfill covers what precedes it,
/// and each later `batch_schedule` window's job runs when the window ends, as in a mock serving
/// through that history; the consistency check replays those jobs at the times they ran. Jobs
/// run up to now, or only until every window holding a point has ended: later windows hold
/// nothing a point reads.
fn batch_loaded(repo: Repository, points: Option<(i64, i64)>) -> anyhow::Result<MockState> {
    let now = mock_tecton::clock::wall_now();
    let points = points.filter(|&(first, _)| first < now && !repo.batch_sources.is_empty());
    let longest = repo
        .feature_views
        .iter()
        .map(mock_tecton::decisions::batch_schedule)
        .max()
        .unwrap_or(0);
    // A replayed history is evaluated at past points: the online store keeps all of it.
    let mut config = Config::new(repo).retention(mock_tecton::Retention::Everything);
    if let Some((first, _)) = points {
        config = config.virtual_clock(first);
    }
    let state = MockState::new(&config);
    state.start_batch().map_err(|e| anyhow::anyhow!("{e}"))?;
    if let Some((_, last)) = points {
        let until = last
            .saturating_add(longest)
            .saturating_add(mock_tecton::decisions::BATCH_DATA_DELAY);
        state.run_batch_jobs_through(until.min(now));
    }
    Ok(state)
}

/// POSTs to a running mock's admin API.
pub(super) fn remote(url: &str, endpoint: &str, body: &Value) -> anyhow::Result<Value> {
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

pub(super) fn write_out(out: Option<&Path>, text: &str) -> anyhow::Result<()> {
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
