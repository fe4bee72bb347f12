//! The runner: for each scenario and seed, a fresh mock (the scenario's repository, the
//! virtual clock, its faults), the sink run against it, and the checks on what happened.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use conformance::runner::{run_scenario, RunOptions, Subject};
//! use conformance::scenario::Scenario;
//! use conformance::sink::ReferenceSink;
//!
//! let scenario = Scenario::load_file("scenarios/throttled-429.toml".as_ref())?;
//! let sink = ReferenceSink::new();
//! let run = run_scenario(&scenario, 1, &Subject::Sink(&sink), &RunOptions::default()).await?;
//! for r in &run.results {
//!     println!("{} {}: {}", r.verdict.label(), r.id, r.explanation);
//! }
//! # Ok(()) }
//! ```
//!
//! A [`HarnessError`] (the mock could not start, the scenario is invalid, the sink command
//! could not be started) says nothing about the sink and is kept apart from check failures.

mod determinism;

use std::fmt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use mock_tecton::{Config, MockTecton};

pub use determinism::{determinism_check, DeterminismReport};

use crate::checks::{self, CheckResult, Observation, ObservationParts, Verdict, WrittenRow};
use crate::scenario::{Scenario, ScenarioError, VIRTUAL_NOW_NS};
use crate::sink::attach::{AttachedSink, Completion};
use crate::sink::command::{is_harness_error, CommandSink};
use crate::sink::{Record, Sink, SinkEnv, SinkOutcome};

/// After the sink ends, the journal must stay unchanged this long before it is read, so that
/// exchanges the mock is still closing (a hang noticing its client left) are recorded.
pub(crate) const SETTLE_QUIET: Duration = Duration::from_millis(60);
/// The longest wait for the journal to settle.
pub(crate) const SETTLE_MAX: Duration = Duration::from_secs(2);
/// How long a mock may take to shut down after a scenario before the runner moves on.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

/// What is under test.
pub enum Subject<'a> {
    /// A sink the harness runs: a Rust type in-process, or any [`Sink`].
    Sink(&'a dyn Sink),
    /// A protocol-v1 command; the runner gives each run the scenario's wall-clock limit.
    Command(CommandSink),
    /// A sink running elsewhere: the runner serves the mock and waits for completion.
    Attached(AttachOptions),
}

impl std::fmt::Debug for Subject<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Subject::Sink(s) => f.debug_tuple("Sink").field(&s.name()).finish(),
            Subject::Command(c) => f.debug_tuple("Command").field(&c.command()).finish(),
            Subject::Attached(a) => f.debug_tuple("Attached").field(a).finish(),
        }
    }
}

impl Subject<'_> {
    /// The sink's name for reports.
    pub(crate) fn name(&self) -> String {
        match self {
            Subject::Sink(s) => s.name(),
            Subject::Command(c) => c.command().to_owned(),
            Subject::Attached(_) => "attached sink".into(),
        }
    }
}

/// How an attached run decides the sink is done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttachOptions {
    /// Done when this many records were acknowledged (default: the scenario's input size).
    pub records: Option<u64>,
    /// Done when the journal stayed quiet this long (takes precedence over `records`).
    pub quiet: Option<Duration>,
}

/// What an attached sink needs to know when a scenario's mock is ready.
#[derive(Debug, Clone)]
pub struct Ready {
    /// The scenario.
    pub scenario: String,
    /// The run's seed.
    pub seed: u64,
    /// The environment a protocol-v1 sink would get (url, key, workspace, source, hints).
    pub env: SinkEnv,
    /// The scenario's input as a JSONL file, for a sink that can be pointed at it.
    pub input: Option<PathBuf>,
}

/// A callback told when a scenario's mock is ready.
pub type OnReady = Box<dyn Fn(&Ready) + Send + Sync>;

/// How runs are set up and reported.
#[derive(Default)]
pub struct RunOptions {
    /// Bind the mock to this port on 127.0.0.1 (attach mode); default: an ephemeral port.
    pub port: Option<u16>,
    /// The command that replays a run, without `--scenario`/`--seed` (default: a
    /// `tecton-sim conformance --sink '<name>'` line).
    pub replay_prefix: Option<String>,
    /// Called when a scenario's mock is up, before the sink starts (attach mode prints it).
    pub on_ready: Option<OnReady>,
    /// Added to every scenario's wall-clock limit, for sinks that take long to start (a JVM,
    /// a Flink or Beam job). Only the kill deadline moves; no check reads it.
    pub start_allowance: Duration,
}

impl std::fmt::Debug for RunOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunOptions")
            .field("port", &self.port)
            .field("replay_prefix", &self.replay_prefix)
            .field("on_ready", &self.on_ready.as_ref().map(|_| "callback"))
            .field("start_allowance", &self.start_allowance)
            .finish()
    }
}

impl RunOptions {
    /// The replay command of a run.
    pub(crate) fn replay(&self, subject: &str, scenario: &str, seed: u64) -> String {
        let prefix = self
            .replay_prefix
            .clone()
            .unwrap_or_else(|| format!("tecton-sim conformance --sink {}", shell_quote(subject)));
        format!("{prefix} --scenario {scenario} --seed {seed}")
    }
}

/// Quotes a word for `sh` (single quotes, with embedded ones escaped).
pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Why the harness could not run or judge a scenario.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HarnessError {
    /// The scenario file is invalid.
    Scenario(ScenarioError),
    /// The mock could not start (port taken, faults refused) or could not record the whole run.
    Mock(String),
    /// The sink could not be started.
    Sink(String),
}

impl HarnessError {
    /// What kind of harness error, in a few words (`invalid scenario`, `mock`, `sink start`).
    pub fn kind(&self) -> &'static str {
        match self {
            HarnessError::Scenario(_) => "invalid scenario",
            HarnessError::Mock(_) => "the mock failed",
            HarnessError::Sink(_) => "the sink could not be started",
        }
    }
}

impl fmt::Display for HarnessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HarnessError::Scenario(e) => write!(f, "invalid scenario: {e}"),
            HarnessError::Mock(e) => write!(f, "mock: {e}"),
            HarnessError::Sink(e) => write!(f, "the sink could not be started: {e}"),
        }
    }
}

impl std::error::Error for HarnessError {}

/// One scenario run that the harness completed.
#[derive(Debug, Clone)]
pub struct ScenarioRun {
    /// Everything the checks judged.
    pub observation: Observation,
    /// The checks' verdicts, in order.
    pub results: Vec<CheckResult>,
    /// The mock's journal of the run, as recorded (for `--journal`).
    pub journal: Vec<mock_tecton::journal::Entry>,
    /// Wall time of the run (mock start to judgement).
    pub elapsed: Duration,
}

impl ScenarioRun {
    /// The failed checks.
    pub fn failures(&self) -> impl Iterator<Item = &CheckResult> {
        self.results.iter().filter(|r| r.verdict == Verdict::Fail)
    }

    /// The verdict of one check, if it ran.
    pub fn verdict(&self, id: checks::CheckId) -> Option<Verdict> {
        self.results.iter().find(|r| r.id == id).map(|r| r.verdict)
    }
}

/// A scenario at one seed: its run, or why the harness could not complete it.
#[derive(Debug, Clone)]
pub struct ScenarioResult {
    /// Scenario name.
    pub scenario: String,
    /// Its description (empty for an invalid scenario).
    pub description: String,
    /// The seed.
    pub seed: u64,
    /// The command that replays it.
    pub replay: String,
    /// The run, or the harness error.
    pub run: Result<ScenarioRun, HarnessError>,
}

/// A whole suite run of one sink.
#[derive(Debug, Clone)]
pub struct SuiteRun {
    /// The sink's name.
    pub sink: String,
    /// The seed of the first run.
    pub base_seed: u64,
    /// One result per scenario and seed, in run order.
    pub results: Vec<ScenarioResult>,
}

impl SuiteRun {
    /// Every failed check with its scenario result.
    pub fn failures(&self) -> Vec<(&ScenarioResult, &CheckResult)> {
        self.results
            .iter()
            .filter_map(|r| r.run.as_ref().ok().map(|run| (r, run)))
            .flat_map(|(r, run)| run.failures().map(move |c| (r, c)))
            .collect()
    }

    /// Scenario results the harness could not complete.
    pub fn harness_errors(&self) -> impl Iterator<Item = (&ScenarioResult, &HarnessError)> {
        self.results
            .iter()
            .filter_map(|r| r.run.as_ref().err().map(|e| (r, e)))
    }

    /// 0 when nothing failed (warnings allowed), 1 when a check failed, 2 when the harness
    /// could not decide some scenario and nothing failed.
    pub fn exit_code(&self) -> u8 {
        if !self.failures().is_empty() {
            1
        } else if self.harness_errors().next().is_some() {
            2
        } else {
            0
        }
    }
}

/// Runs every scenario (or its load error) at every seed of `seeds`, one after the other,
/// calling `progress` after each.
pub async fn run_suite(
    scenarios: &[Result<Scenario, ScenarioError>],
    seeds: std::ops::Range<u64>,
    subject: &Subject<'_>,
    opts: &RunOptions,
    mut progress: impl FnMut(&ScenarioResult),
) -> SuiteRun {
    let sink = subject.name();
    let base_seed = seeds.start;
    let mut results = Vec::new();
    for seed in seeds {
        for loaded in scenarios {
            let result = match loaded {
                Ok(s) => ScenarioResult {
                    scenario: s.name.clone(),
                    description: s.description.clone(),
                    seed,
                    replay: opts.replay(&sink, &s.name, seed),
                    run: run_scenario(s, seed, subject, opts).await,
                },
                Err(e) => ScenarioResult {
                    scenario: e.scenario_name(),
                    description: String::new(),
                    seed,
                    replay: opts.replay(&sink, &e.scenario_name(), seed),
                    run: Err(HarnessError::Scenario(e.clone())),
                },
            };
            progress(&result);
            results.push(result);
        }
    }
    SuiteRun {
        sink,
        base_seed,
        results,
    }
}

/// Runs one scenario at one seed and judges it.
pub async fn run_scenario(
    scenario: &Scenario,
    seed: u64,
    subject: &Subject<'_>,
    opts: &RunOptions,
) -> Result<ScenarioRun, HarnessError> {
    let started = Instant::now();
    let mut config = Config::new(scenario.repository.clone())
        .virtual_clock(VIRTUAL_NOW_NS)
        .faults(scenario.fault_set(seed));
    if let Some(port) = opts.port {
        config = config.bind(std::net::SocketAddr::from(([127, 0, 0, 1], port)));
    }
    let records_per_source = config.records_per_source;
    let mock = MockTecton::start(config)
        .await
        .map_err(|e| HarnessError::Mock(format!("cannot start: {e}")))?;
    let env = scenario.env(&mock.url(), seed);
    let records = scenario.records(seed);

    if let Some(on_ready) = &opts.on_ready {
        on_ready(&Ready {
            scenario: scenario.name.clone(),
            seed,
            env: env.clone(),
            input: write_input(&scenario.name, seed, &records),
        });
    }
    let limit = scenario.wall_limit + opts.start_allowance;
    let outcome = drive(subject, &mock, limit, &env, records.clone()).await;
    let outcome = match outcome {
        Ok(o) => o,
        Err(e) => {
            shutdown(mock).await;
            return Err(e);
        }
    };
    settle(&mock).await;
    if matches!(subject, Subject::Command(_))
        && matches!(outcome.exit_code, Some(126 | 127))
        && mock.journal().is_empty()
    {
        // `sh` could not find or execute the command, and nothing reached the mock.
        shutdown(mock).await;
        return Err(HarnessError::Sink(format!(
            "the shell could not run the command (exit {}): {}",
            outcome.exit_code.unwrap_or_default(),
            checks::tail(&outcome.stderr, 2)
        )));
    }

    let state = mock.state();
    let key_account = state
        .repo()
        .account_for_key(&env.api_key)
        .map(|a| a.name.clone());
    let written = match state
        .push_source_index(&env.push_source)
        .filter(|&i| state.repo().push_sources[i].log_offline)
        .map(|i| {
            let schema = &state.repo().push_sources[i].schema;
            let id_col = schema.index_of(&scenario.id_field);
            let key_col = schema.index_of(&scenario.key_field);
            // Files, rows being written and the memory tail: everything acknowledged.
            state.offline().rows(i).map(|rows| {
                rows.iter()
                    .map(|r| WrittenRow::from_offline(r, id_col, key_col))
                    .collect::<Vec<_>>()
            })
        })
        .transpose()
    {
        Ok(written) => written,
        Err(e) => {
            shutdown(mock).await;
            return Err(HarnessError::Mock(format!(
                "the offline store could not be read, so the checks cannot judge the run: {e}"
            )));
        }
    };
    let journal = mock.journal();
    let observation = Observation::new(ObservationParts {
        scenario: scenario.name.clone(),
        seed,
        env,
        expected: scenario.outcome,
        key_account,
        records_per_source,
        id_field: scenario.id_field.clone(),
        key_field: scenario.key_field.clone(),
        input: records,
        journal: journal.clone(),
        written,
        outcome,
        journal_dropped: state.journal().counters().dropped,
    });
    shutdown(mock).await;
    if observation.journal_dropped > 0 {
        return Err(HarnessError::Mock(format!(
            "the journal let go of {} exchange(s), so the checks would judge an incomplete \
             record; make the scenario smaller",
            observation.journal_dropped
        )));
    }
    let results = checks::judge_all(&scenario.checks(), &observation);
    Ok(ScenarioRun {
        observation,
        results,
        journal,
        elapsed: started.elapsed(),
    })
}

/// Runs the sink under the wall-clock `limit`.
async fn drive(
    subject: &Subject<'_>,
    mock: &MockTecton,
    limit: Duration,
    env: &SinkEnv,
    records: Vec<Record>,
) -> Result<SinkOutcome, HarnessError> {
    let killed = |elapsed: Duration| SinkOutcome {
        exit_code: None,
        timed_out: true,
        stderr: format!(
            "[harness] killed at the wall-clock limit of {} s\n",
            limit.as_secs_f64()
        ),
        metrics: None,
        elapsed,
    };
    let started = Instant::now();
    match subject {
        Subject::Sink(sink) => Ok(tokio::time::timeout(limit, sink.run(env, records))
            .await
            .unwrap_or_else(|_| killed(started.elapsed()))),
        Subject::Command(command) => {
            let command = command.clone().wall_limit(limit);
            match command.try_run(env, records).await {
                Ok(o) if is_harness_error(&o) => Err(HarnessError::Sink(o.stderr)),
                Ok(o) => Ok(o),
                Err(e) => Err(HarnessError::Sink(e.to_string())),
            }
        }
        Subject::Attached(a) => {
            let completion = match (a.quiet, a.records) {
                (Some(q), _) => Completion::Quiet(q),
                (None, Some(n)) => Completion::Records(n),
                (None, None) => Completion::Records(records.len() as u64),
            };
            let sink = AttachedSink::new(mock.state().clone(), completion)
                .timeout(limit)
                .named("attached");
            Ok(sink.wait().await)
        }
    }
}

/// Waits until the journal has not changed for [`SETTLE_QUIET`] (at most [`SETTLE_MAX`]).
async fn settle(mock: &MockTecton) {
    let started = Instant::now();
    let mut last = mock.state().journal().counters().total;
    let mut quiet_since = Instant::now();
    while started.elapsed() < SETTLE_MAX {
        tokio::time::sleep(Duration::from_millis(10)).await;
        let now = mock.state().journal().counters().total;
        if now != last {
            last = now;
            quiet_since = Instant::now();
        } else if quiet_since.elapsed() >= SETTLE_QUIET {
            return;
        }
    }
}

async fn shutdown(mock: MockTecton) {
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, mock.shutdown()).await;
}

/// Writes a run's input as JSONL under the temp directory, for attached sinks.
fn write_input(scenario: &str, seed: u64, records: &[Record]) -> Option<PathBuf> {
    let path = std::env::temp_dir().join(format!("tecton-sim-{scenario}-seed{seed}.jsonl"));
    std::fs::write(&path, crate::sink::protocol::to_jsonl(records))
        .ok()
        .map(|()| path)
}
