//! Scenario scripts: what a sink is asked to deliver, what the mock does to it meanwhile, and
//! what the sink is expected to achieve.
//!
//! A scenario is a TOML file in `scenarios/` (its file stem is its name):
//!
//! ```toml
//! description = "Three 429s in a row, then healthy: the sink backs off and delivers everything"
//! # repository = "repos/other.toml"      # default: the embedded fraud demo
//!
//! [target]                               # defaults: demo-editor-key, prod, transactions
//! workspace = "prod"
//!
//! [input]                                # one of: count (generated), records, file
//! count = 30                             # generated from the run's seed ...
//! keys = 4                               # ... over 4 user_ids ...
//! disorder = 0.1                         # ... 10% of event times shuffled nearby
//!
//! [hints]                                # SINK_BATCH_SIZE, SINK_MAX_RETRIES, SINK_TIMEOUT_S
//! batch_size = 10
//! max_retries = 5
//! timeout_s = 0.3
//!
//! [faults]                               # mock_tecton::faults::FaultSet, as in `serve --faults`
//! seed = 1
//! [[faults.rules]]
//! source = "transactions"                # decided after the body is read: the journal keeps it
//! script = [{ action = { kind = "status", status = 429 }, times = 3 }]
//!
//! [expect]
//! outcome = "success"                    # or "give_up"
//! checks = ["retry_retryable", "backoff", { id = "batching_efficiency", min_mean = 3.0 }]
//! wall_limit_s = 10
//! ```
//!
//! Every scenario is judged by the [core checks](crate::checks::CORE) plus the ones it lists.
//! Files are validated on load; errors name the file and the field.
//!
//! **Seeds.** A run has one seed. It is the sink's `SINK_SEED`, and it is mixed with the
//! file's `input.seed` and `faults.seed` (see `mix_seed`) to drive the generated input and the
//! fault rules' randomness, so `--seed` replays a run and `--runs` sweeps all of it.

mod builtin;
mod file;
mod input;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use mock_tecton::faults::FaultSet;
use mock_tecton::Repository;

pub use builtin::{builtin, builtin_text, load_builtin, BUILTIN_DIR};
pub use input::{Generator, Input, DISORDER_WINDOW};

use crate::checks::{CheckId, CheckParams, CheckSpec, ExpectedOutcome};
use crate::sink::{Record, SinkEnv};
use mock_tecton::rng::SplitMix64;

/// The embedded demo's Editor key, the default `TECTON_API_KEY`.
pub(crate) const DEMO_API_KEY: &str = "demo-editor-key";
/// The embedded demo's live workspace, the default `TECTON_WORKSPACE`.
pub(crate) const DEMO_WORKSPACE: &str = "prod";
/// The embedded demo's push source, the default `TECTON_PUSH_SOURCE`.
pub(crate) const DEMO_PUSH_SOURCE: &str = "transactions";
/// The mock's virtual clock during a scenario: 2024-06-01T00:00:00Z. Generated event times are
/// in May 2024, inside the demo's 30-day TTL.
pub(crate) const VIRTUAL_NOW_NS: i64 = 1_717_200_000_000_000_000;
/// Event time of the first generated record: 2024-05-20T00:00:00Z.
pub(crate) const GENERATED_START_NS: i64 = 1_716_163_200_000_000_000;
/// The field that identifies a record (how retries and duplicates are recognised).
pub(crate) const DEFAULT_ID_FIELD: &str = "transaction_id";
/// The field whose per-value order the sink must keep.
pub(crate) const DEFAULT_KEY_FIELD: &str = "user_id";
/// `SINK_BATCH_SIZE` when a scenario does not say.
pub(crate) const DEFAULT_BATCH_SIZE: usize = 10;
/// `SINK_MAX_RETRIES` when a scenario does not say.
pub(crate) const DEFAULT_MAX_RETRIES: u32 = 3;
/// `SINK_TIMEOUT_S` when a scenario does not say.
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);
/// How long a sink may run when a scenario does not say.
pub(crate) const DEFAULT_WALL_LIMIT: Duration = Duration::from_secs(20);

/// Where the sink is told to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `TECTON_API_KEY`.
    pub api_key: String,
    /// `TECTON_WORKSPACE`.
    pub workspace: String,
    /// `TECTON_PUSH_SOURCE`.
    pub push_source: String,
}

/// Protocol v1's hints to the sink.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hints {
    /// `SINK_BATCH_SIZE`.
    pub batch_size: usize,
    /// `SINK_MAX_RETRIES`.
    pub max_retries: u32,
    /// `SINK_TIMEOUT_S`.
    pub timeout: Duration,
}

/// A validated scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Its name (the file stem).
    pub name: String,
    /// What it does to the sink, in one sentence.
    pub description: String,
    /// The file it was read from, if any.
    pub path: Option<PathBuf>,
    /// The repository file, when not the embedded demo.
    pub repository_path: Option<PathBuf>,
    /// The loaded repository.
    pub repository: Repository,
    /// Key, workspace and push source given to the sink.
    pub target: Target,
    /// The input records.
    pub input: Input,
    /// The field identifying a record.
    pub id_field: String,
    /// The field whose per-value order must be kept.
    pub key_field: String,
    /// Hints given to the sink.
    pub hints: Hints,
    /// The mock's fault rules (their seed is mixed with the run's seed).
    pub faults: FaultSet,
    /// The expected outcome.
    pub outcome: ExpectedOutcome,
    /// The checks the scenario lists (the core checks run as well).
    pub listed_checks: Vec<CheckSpec>,
    /// The sink is killed after this long.
    pub wall_limit: Duration,
}

/// A scenario file that cannot be used, with the file and the field at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioError {
    /// The file.
    pub file: PathBuf,
    /// The field (`hints.batch_size`, `faults.rules[1]`), when the error is about one.
    pub field: Option<String>,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl ScenarioError {
    fn new(file: &Path, field: impl Into<Option<String>>, message: impl Into<String>) -> Self {
        ScenarioError {
            file: file.to_owned(),
            field: field.into(),
            message: message.into(),
        }
    }

    /// The scenario's name as its file stem says, for reports.
    pub fn scenario_name(&self) -> String {
        self.file.file_stem().map_or_else(
            || self.file.display().to_string(),
            |s| s.to_string_lossy().into_owned(),
        )
    }
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.field {
            Some(field) => write!(f, "{}: `{field}`: {}", self.file.display(), self.message),
            None => write!(f, "{}: {}", self.file.display(), self.message),
        }
    }
}

impl std::error::Error for ScenarioError {}

/// Mixes a run's seed with a per-scenario salt (SplitMix64 of both), so one `--seed` drives
/// every random choice while different scenarios and purposes get different streams.
pub(crate) fn mix_seed(seed: u64, salt: u64) -> u64 {
    let mut a = SplitMix64::new(seed);
    let mut b = SplitMix64::new(salt ^ 0xA076_1D64_78BD_642F);
    a.next_u64() ^ b.next_u64().rotate_left(17)
}

/// Loads every `*.toml` file directly in `dir`, sorted by name. The outer error is an
/// unreadable directory; each file is `Ok` or its own error, so one bad file does not hide the
/// others.
pub fn load_dir(dir: &Path) -> Result<Vec<Result<Scenario, ScenarioError>>, ScenarioError> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| ScenarioError::new(dir, None, format!("cannot read the directory: {e}")))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(ScenarioError::new(
            dir,
            None,
            "no scenario files (*.toml) in this directory",
        ));
    }
    Ok(files.iter().map(|f| Scenario::load_file(f)).collect())
}

impl Scenario {
    /// Reads and validates one scenario file.
    pub fn load_file(path: &Path) -> Result<Scenario, ScenarioError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ScenarioError::new(path, None, format!("cannot read: {e}")))?;
        Scenario::parse(&text, path)
    }

    /// Parses and validates scenario text; `path` names it in errors, gives its default name
    /// and anchors relative `repository` and `input.file` paths, which are read from disk.
    pub(crate) fn parse(text: &str, path: &Path) -> Result<Scenario, ScenarioError> {
        Scenario::parse_with(text, path, &|p: &Path| std::fs::read_to_string(p))
    }

    /// [`Scenario::parse`] reading the files it refers to with `read` (the built-in scenarios
    /// read theirs from the binary).
    pub(crate) fn parse_with(
        text: &str,
        path: &Path,
        read: &dyn Fn(&Path) -> std::io::Result<String>,
    ) -> Result<Scenario, ScenarioError> {
        let raw: file::ScenarioFile = toml::from_str(text)
            .map_err(|e| ScenarioError::new(path, None, e.to_string().trim_end().to_owned()))?;
        let err =
            |field: &str, message: String| ScenarioError::new(path, field.to_owned(), message);
        let base = path.parent().unwrap_or_else(|| Path::new("."));
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();

        let name = raw.name.unwrap_or(stem);
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(err(
                "name",
                format!("`{name}` must be letters, digits, `-` and `_` only"),
            ));
        }
        if raw.description.trim().is_empty() {
            return Err(err("description", "must say what the scenario does".into()));
        }

        let (repository_path, repository) = match raw.repository {
            None => (None, Repository::demo()),
            Some(p) => {
                let full = base.join(&p);
                let text = read(&full).map_err(|e| {
                    err("repository", format!("cannot read {}: {e}", full.display()))
                })?;
                let repo = Repository::from_toml(&text, &full.display().to_string())
                    .map_err(|e| err("repository", e.to_string()))?;
                (Some(full), repo)
            }
        };

        let target = Target {
            api_key: raw.target.api_key.unwrap_or_else(|| DEMO_API_KEY.into()),
            workspace: raw
                .target
                .workspace
                .unwrap_or_else(|| DEMO_WORKSPACE.into()),
            push_source: raw
                .target
                .push_source
                .unwrap_or_else(|| DEMO_PUSH_SOURCE.into()),
        };

        let batch_size = raw.hints.batch_size.unwrap_or(DEFAULT_BATCH_SIZE);
        if batch_size == 0 {
            return Err(err("hints.batch_size", "must be at least 1".into()));
        }
        let max_retries = raw.hints.max_retries.unwrap_or(DEFAULT_MAX_RETRIES);
        if max_retries > 100 {
            return Err(err(
                "hints.max_retries",
                format!("{max_retries} is more than 100; scenarios must stay short"),
            ));
        }
        let timeout = match raw.hints.timeout_s {
            None => DEFAULT_TIMEOUT,
            Some(s) => seconds(s, 600.0).map_err(|m| err("hints.timeout_s", m))?,
        };
        let hints = Hints {
            batch_size,
            max_retries,
            timeout,
        };

        let id_field = raw
            .input
            .id_field
            .clone()
            .unwrap_or_else(|| DEFAULT_ID_FIELD.into());
        let key_field = raw
            .input
            .key_field
            .clone()
            .unwrap_or_else(|| DEFAULT_KEY_FIELD.into());
        let input = input_of(raw.input, base, &id_field, path, read)?;

        raw.faults
            .validate()
            .map_err(|m| err("faults.rules", m.to_string()))?;

        let wall_limit = match raw.expect.wall_limit_s {
            None => DEFAULT_WALL_LIMIT,
            Some(s) => seconds(s, 3600.0).map_err(|m| err("expect.wall_limit_s", m))?,
        };
        let mut listed_checks = Vec::new();
        for (i, v) in raw.expect.checks.iter().enumerate() {
            let spec = check_spec(v).map_err(|m| err(&format!("expect.checks[{i}]"), m))?;
            if listed_checks.iter().any(|c: &CheckSpec| c.id == spec.id) {
                return Err(err(
                    &format!("expect.checks[{i}]"),
                    format!("`{}` is listed twice", spec.id),
                ));
            }
            listed_checks.push(spec);
        }

        Ok(Scenario {
            name,
            description: raw.description.trim().to_owned(),
            path: Some(path.to_owned()),
            repository_path,
            repository,
            target,
            input,
            id_field,
            key_field,
            hints,
            faults: raw.faults,
            outcome: raw.expect.outcome,
            listed_checks,
            wall_limit,
        })
    }

    /// The input records of a run with `seed`.
    pub fn records(&self, seed: u64) -> Vec<Record> {
        self.input.records(seed)
    }

    /// The fault rules of a run with `seed` (the file's fault seed mixed with the run's).
    pub(crate) fn fault_set(&self, seed: u64) -> FaultSet {
        FaultSet {
            seed: mix_seed(seed, self.faults.seed),
            rules: self.faults.rules.clone(),
        }
    }

    /// The checks that judge this scenario: every [core check](crate::checks::CORE), then the
    /// listed ones, each once (a listed core check keeps its place among the core checks but
    /// takes the listed parameters).
    pub fn checks(&self) -> Vec<CheckSpec> {
        let mut out: Vec<CheckSpec> = crate::checks::CORE
            .iter()
            .map(|&id| {
                self.listed_checks
                    .iter()
                    .find(|c| c.id == id)
                    .cloned()
                    .unwrap_or(CheckSpec {
                        id,
                        params: CheckParams::default(),
                    })
            })
            .collect();
        for c in &self.listed_checks {
            if !out.iter().any(|o| o.id == c.id) {
                out.push(c.clone());
            }
        }
        out
    }

    /// The environment a sink gets for a run against `url` with `seed`.
    pub(crate) fn env(&self, url: &str, seed: u64) -> SinkEnv {
        SinkEnv {
            url: url.to_owned(),
            api_key: self.target.api_key.clone(),
            workspace: self.target.workspace.clone(),
            push_source: self.target.push_source.clone(),
            batch_size: self.hints.batch_size,
            max_retries: self.hints.max_retries,
            timeout: self.hints.timeout,
            input_path: None,
            seed,
        }
    }
}

fn seconds(s: f64, max: f64) -> Result<Duration, String> {
    if !s.is_finite() || s <= 0.0 || s > max {
        return Err(format!(
            "{s} must be a number of seconds above 0 and at most {max}"
        ));
    }
    Ok(Duration::from_secs_f64(s))
}

fn input_of(
    raw: file::InputFile,
    base: &Path,
    id_field: &str,
    path: &Path,
    read: &dyn Fn(&Path) -> std::io::Result<String>,
) -> Result<Input, ScenarioError> {
    let err = |field: &str, message: String| ScenarioError::new(path, field.to_owned(), message);
    let kinds = usize::from(raw.records.is_some())
        + usize::from(raw.file.is_some())
        + usize::from(raw.count.is_some());
    if kinds != 1 {
        return Err(err(
            "input",
            "give exactly one of `count` (generated records), `records` (inline) or `file` (JSONL)"
                .into(),
        ));
    }
    let generator_only = [
        ("keys", raw.keys.is_some()),
        ("disorder", raw.disorder.is_some()),
        ("seed", raw.seed.is_some()),
        ("start", raw.start.is_some()),
        ("step_ms", raw.step_ms.is_some()),
    ];
    if raw.count.is_none() {
        if let Some((k, _)) = generator_only.iter().find(|(_, set)| *set) {
            return Err(err(
                &format!("input.{k}"),
                "only applies to generated input (`count`)".into(),
            ));
        }
    }
    let records = if let Some(count) = raw.count {
        if count == 0 || count > 1_000_000 {
            return Err(err(
                "input.count",
                format!("{count} is not within 1..=1000000"),
            ));
        }
        let keys = raw.keys.unwrap_or(5);
        if keys == 0 {
            return Err(err("input.keys", "must be at least 1".into()));
        }
        let disorder = raw.disorder.unwrap_or(0.0);
        if !(0.0..=1.0).contains(&disorder) {
            return Err(err(
                "input.disorder",
                format!("{disorder} is not within 0..=1"),
            ));
        }
        let start = match &raw.start {
            None => GENERATED_START_NS,
            Some(s) => mock_tecton::schema::parse_timestamp(s)
                .map_err(|e| err("input.start", e.to_string()))?,
        };
        if id_field != DEFAULT_ID_FIELD {
            return Err(err(
                "input.id_field",
                format!("generated records are identified by `{DEFAULT_ID_FIELD}`"),
            ));
        }
        return Ok(Input::Generated(Generator {
            count,
            keys,
            disorder,
            start,
            step: Duration::from_millis(raw.step_ms.unwrap_or(1000)),
            salt: raw.seed.unwrap_or(0),
        }));
    } else if let Some(tables) = raw.records {
        tables
            .iter()
            .map(|t| {
                t.iter()
                    .map(|(k, v)| (k.clone(), input::toml_to_json(v)))
                    .collect::<Record>()
            })
            .collect::<Vec<Record>>()
    } else if let Some(file) = raw.file {
        let full = base.join(&file);
        let text = read(&full)
            .map_err(|e| err("input.file", format!("cannot read {}: {e}", full.display())))?;
        input::parse_jsonl(&text)
            .map_err(|m| err("input.file", format!("{}: {m}", full.display())))?
    } else {
        Vec::new()
    };
    if records.is_empty() {
        return Err(err("input", "has no records".into()));
    }
    let mut seen = std::collections::HashMap::new();
    for (i, r) in records.iter().enumerate() {
        let id = match r.get(id_field) {
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(v @ serde_json::Value::Number(_)) => v.to_string(),
            _ => {
                return Err(err(
                    &format!("input.records[{i}]"),
                    format!("has no `{id_field}` (a string or number): every record needs a unique id so that retries and duplicates can be recognised"),
                ))
            }
        };
        if let Some(first) = seen.insert(id.clone(), i) {
            return Err(err(
                &format!("input.records[{i}]"),
                format!("`{id_field}` `{id}` repeats record {first}; ids must be unique"),
            ));
        }
    }
    Ok(Input::Records(records))
}

fn check_spec(v: &toml::Value) -> Result<CheckSpec, String> {
    let parse_id = |s: &str| s.parse::<CheckId>().map_err(|e| e.to_string());
    match v {
        toml::Value::String(s) => Ok(CheckSpec {
            id: parse_id(s)?,
            params: CheckParams::default(),
        }),
        toml::Value::Table(t) => {
            let Some(toml::Value::String(id)) = t.get("id") else {
                return Err("a check with parameters needs `id = \"<check>\"`".into());
            };
            let id = parse_id(id)?;
            let mut params = CheckParams::default();
            for (k, v) in t {
                let number = || {
                    v.as_float()
                        .or_else(|| v.as_integer().map(|i| i as f64))
                        .filter(|x| x.is_finite() && *x >= 0.0)
                        .ok_or_else(|| format!("`{k}` must be a non-negative number"))
                };
                match k.as_str() {
                    "id" => {}
                    "min_mean" => params.min_mean = Some(number()?),
                    "min_growth" => params.min_growth = Some(number()?),
                    "slack_ms" => params.slack_ms = Some(number()? as u64),
                    other => {
                        return Err(format!(
                            "unknown parameter `{other}` (known: min_mean, min_growth, slack_ms)"
                        ))
                    }
                }
            }
            Ok(CheckSpec { id, params })
        }
        _ => Err("a check is a name like \"backoff\" or a table like { id = \"backoff\", min_growth = 1.5 }".into()),
    }
}

#[cfg(test)]
mod tests;
