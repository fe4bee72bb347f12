//! Chaos search: random fault schedules, run one after the other under the normal checks; the
//! first that makes a check fail is shrunk to a minimal schedule that still fails it, and
//! written as a scenario file that replays the failure.
//!
//! Schedule `i` of a search from seed `S` is generated from seed `S + i` (see
//! `Schedule::from_seed`) and run with that seed as the run's seed (`SINK_SEED`, the faults'
//! randomness), so `--chaos 1 --seed S+i` repeats it exactly, generation and search alike.
//! Only fair schedules are generated (a well-behaved sink passes them, see `schedule`), so a
//! failure is the sink's.
//!
//! ```no_run
//! # async fn demo() {
//! use conformance::chaos::{search, ChaosOptions};
//! use conformance::runner::Subject;
//! use conformance::sink::{Mutant, MutantSink};
//!
//! let sink = MutantSink::new(Mutant::NoRetry);
//! let run = search(&Subject::Sink(&sink), &ChaosOptions::new(20, 1), |_| {}).await;
//! if let Some(found) = &run.found {
//!     println!("{} after {} schedule(s):\n{}", found.check, found.index, found.scenario_toml);
//! }
//! # }
//! ```

pub(crate) mod schedule;
pub(crate) mod shrink;

use std::path::{Path, PathBuf};

use mock_tecton::faults::FaultRule;
use serde::Serialize;

pub use schedule::Schedule;

use crate::checks::{CheckId, ExpectedOutcome, Verdict};
use crate::runner::{run_scenario, HarnessError, RunOptions, ScenarioResult, Subject, SuiteRun};
use crate::scenario::{Scenario, ScenarioError};

/// Shrink runs allowed by default, after a failure is found.
pub const DEFAULT_SHRINK_RUNS: u32 = 60;

/// The timing checks every chaos scenario lists (the core checks run anyway).
pub(crate) const LISTED_CHECKS: [CheckId; 4] = [
    CheckId::Backoff,
    CheckId::Jitter,
    CheckId::RetryAfter,
    CheckId::Timeout,
];

/// The `timeout` check's slack in chaos scenarios, in place of its 150 ms default: a search
/// runs hundreds of hangs, so a loaded machine's scheduling delay must not fail a good sink.
/// Hangs are held three times the timeout, far past `timeout × 1.25 + 500 ms`, so a sink
/// without a timeout is still seen.
pub(crate) const TIMEOUT_SLACK_MS: i64 = 500;

/// How a search runs.
#[derive(Debug, Clone)]
pub struct ChaosOptions {
    /// Schedules to try before declaring the sink sound.
    pub schedules: u64,
    /// The seed of the first schedule.
    pub seed: u64,
    /// The most runs spent shrinking a failure.
    pub shrink_runs: u32,
    /// Warnings count as failures.
    pub deny_warnings: bool,
    /// Where the minimal failing scenario is written (`<name>.toml`), if anywhere.
    pub out_dir: Option<PathBuf>,
    /// The command line that runs the sink under test, without `--chaos` or `--seed`
    /// (`tecton-sim conformance --sink '…'`), for replay lines.
    pub replay_prefix: Option<String>,
}

impl ChaosOptions {
    /// `schedules` schedules from `seed`, the default shrink budget, nothing written.
    pub fn new(schedules: u64, seed: u64) -> Self {
        ChaosOptions {
            schedules,
            seed,
            shrink_runs: DEFAULT_SHRINK_RUNS,
            deny_warnings: false,
            out_dir: None,
            replay_prefix: None,
        }
    }
}

/// What the search tells its caller as it goes.
#[derive(Debug)]
pub enum Progress<'a> {
    /// Schedule `index` (1-based) of `of` ran.
    Schedule {
        /// 1-based.
        index: u64,
        /// Schedules in the search.
        of: u64,
        /// The schedule.
        schedule: &'a Schedule,
        /// Its run.
        result: &'a ScenarioResult,
    },
    /// Shrink run `run` tried a candidate; `kept` when it still failed the same check.
    Shrink {
        /// 1-based.
        run: u32,
        /// The candidate.
        schedule: &'a Schedule,
        /// Whether it replaced the current schedule.
        kept: bool,
    },
}

/// A failure the search found and shrank.
#[derive(Debug, Clone)]
pub struct Found {
    /// Found after this many schedules.
    pub index: u64,
    /// The seed that generated the failing schedule and ran it.
    pub seed: u64,
    /// The check it failed (the one shrinking preserved).
    pub check: CheckId,
    /// The schedule as generated.
    pub original: Schedule,
    /// The minimal schedule that still fails `check`.
    pub schedule: Schedule,
    /// Runs spent shrinking, and how many of them were kept.
    pub shrink_runs: u32,
    /// Shrink steps kept.
    pub shrink_steps: u32,
    /// The minimal scenario's name (its file stem).
    pub scenario_name: String,
    /// The minimal scenario, as TOML.
    pub scenario_toml: String,
    /// Where it was written, if it was.
    pub written: Option<PathBuf>,
    /// The command line that replays the minimal scenario.
    pub replay: String,
}

/// A whole search.
#[derive(Debug, Clone)]
pub struct ChaosRun {
    /// Every run: the schedules tried, then the minimal failing one if any. Reports render it
    /// like a suite run.
    pub suite: SuiteRun,
    /// Schedules run.
    pub schedules_run: u64,
    /// The failure found, shrunk.
    pub found: Option<Found>,
    /// A harness error that stopped the search (the sink could not start, …).
    pub error: Option<HarnessError>,
    /// The minimal scenario could not be written.
    pub write_error: Option<String>,
}

impl ChaosRun {
    /// 0: no failure; 1: a failure was found; 2: the harness stopped the search, or the
    /// scenario file could not be written.
    pub fn exit_code(&self) -> u8 {
        if self.error.is_some() || self.write_error.is_some() {
            2
        } else if self.found.is_some() {
            1
        } else {
            0
        }
    }
}

/// The name of the scenario of schedule `seed`.
pub(crate) fn scenario_name(seed: u64, minimal: bool) -> String {
    if minimal {
        format!("chaos-seed{seed}-min")
    } else {
        format!("chaos-seed{seed}")
    }
}

/// Runs the search.
pub async fn search(
    subject: &Subject<'_>,
    opts: &ChaosOptions,
    mut progress: impl FnMut(Progress<'_>),
) -> ChaosRun {
    let prefix = opts
        .replay_prefix
        .clone()
        .unwrap_or_else(|| format!("tecton-sim conformance --sink '{}'", subject.name()));
    let mut run = ChaosRun {
        suite: SuiteRun {
            sink: subject.name(),
            base_seed: opts.seed,
            results: Vec::new(),
        },
        schedules_run: 0,
        found: None,
        error: None,
        write_error: None,
    };
    for index in 1..=opts.schedules {
        let seed = opts.seed.wrapping_add(index - 1);
        let schedule = Schedule::from_seed(seed);
        let name = scenario_name(seed, false);
        let replay = format!("{prefix} --chaos 1 --seed {seed}");
        let result = run_schedule(&schedule, &name, seed, subject, replay).await;
        run.schedules_run = index;
        progress(Progress::Schedule {
            index,
            of: opts.schedules,
            schedule: &schedule,
            result: &result,
        });
        let failed = match &result.run {
            Err(e) => {
                run.error = Some(e.clone());
                None
            }
            Ok(r) => target_check(&r.results, opts.deny_warnings),
        };
        run.suite.results.push(result.clone());
        if run.error.is_some() {
            break;
        }
        let Some(check) = failed else { continue };

        let (minimal, last, runs, steps) =
            shrink_failure(&schedule, result, check, subject, opts, &mut progress).await;
        let name = scenario_name(seed, true);
        let dir_word = opts
            .out_dir
            .as_ref()
            .map_or_else(|| "DIR".to_owned(), |d| d.display().to_string());
        let replay = format!(
            "{prefix} --scenarios {} --scenario {name} --seed {seed}",
            crate::runner::shell_quote(&dir_word)
        );
        let toml = match scenario_text(
            &minimal,
            &name,
            &format!(
                "Shrunk by the chaos search from schedule seed {seed}: fails `{check}` \
                 ({} rule(s), was {})",
                minimal.rules.len(),
                schedule.rules.len()
            ),
        ) {
            Ok(t) => format!(
                "# Found by `{prefix} --chaos N`: schedule seed {seed}, shrunk in {runs} run(s).\n\
                 # Replay: {replay}\n{t}"
            ),
            Err(e) => {
                run.write_error = Some(e);
                String::new()
            }
        };
        let mut written = None;
        if let (Some(dir), false) = (&opts.out_dir, toml.is_empty()) {
            match write_scenario(dir, &name, &toml) {
                Ok(p) => written = Some(p),
                Err(e) => run.write_error = Some(format!("cannot write to {}: {e}", dir.display())),
            }
        }
        let mut last = last;
        last.replay = replay.clone();
        run.suite.results.push(last);
        run.found = Some(Found {
            index,
            seed,
            check,
            original: schedule,
            schedule: minimal,
            shrink_runs: runs,
            shrink_steps: steps,
            scenario_name: name,
            scenario_toml: toml,
            written,
            replay,
        });
        break;
    }
    run
}

/// Shrinks a failing schedule: the minimal one, its failing run, runs spent, steps kept.
async fn shrink_failure(
    original: &Schedule,
    failed: ScenarioResult,
    check: CheckId,
    subject: &Subject<'_>,
    opts: &ChaosOptions,
    progress: &mut impl FnMut(Progress<'_>),
) -> (Schedule, ScenarioResult, u32, u32) {
    let seed = failed.seed;
    let name = scenario_name(seed, true);
    let mut current = original.clone();
    // The original's run, under the minimal scenario's name, until a candidate replaces it.
    let mut last = ScenarioResult {
        scenario: name.clone(),
        ..failed
    };
    let mut runs = 0u32;
    let mut steps = 0u32;
    'shrinking: loop {
        for candidate in shrink::candidates(&current) {
            if runs >= opts.shrink_runs {
                break 'shrinking;
            }
            runs += 1;
            let result = run_schedule(&candidate, &name, seed, subject, String::new()).await;
            let kept = result
                .run
                .as_ref()
                .is_ok_and(|r| fails(&r.results, check, opts.deny_warnings));
            progress(Progress::Shrink {
                run: runs,
                schedule: &candidate,
                kept,
            });
            if kept {
                current = candidate;
                last = result;
                steps += 1;
                continue 'shrinking;
            }
        }
        break;
    }
    (current, last, runs, steps)
}

/// Whether `check` failed (or warned, with `deny_warnings`).
fn fails(results: &[crate::checks::CheckResult], check: CheckId, deny_warnings: bool) -> bool {
    results
        .iter()
        .any(|r| r.id == check && is_failure(r.verdict, deny_warnings))
}

fn is_failure(v: Verdict, deny_warnings: bool) -> bool {
    v == Verdict::Fail || (deny_warnings && v == Verdict::Warn)
}

/// The check a failure is shrunk for: the first that failed other than `outcome` (which fails
/// alongside whatever made the sink stop), else `outcome`.
fn target_check(results: &[crate::checks::CheckResult], deny_warnings: bool) -> Option<CheckId> {
    let failed: Vec<CheckId> = results
        .iter()
        .filter(|r| is_failure(r.verdict, deny_warnings))
        .map(|r| r.id)
        .collect();
    failed
        .iter()
        .copied()
        .find(|c| *c != CheckId::Outcome)
        .or_else(|| failed.first().copied())
}

/// Runs one schedule as the scenario `name` at `seed`.
async fn run_schedule(
    schedule: &Schedule,
    name: &str,
    seed: u64,
    subject: &Subject<'_>,
    replay: String,
) -> ScenarioResult {
    let description = schedule.describe();
    let run = match schedule.scenario(name, &description) {
        Ok(s) => run_scenario(&s, seed, subject, &RunOptions::default()).await,
        Err(e) => Err(HarnessError::Scenario(e)),
    };
    ScenarioResult {
        scenario: name.to_owned(),
        description,
        seed,
        replay,
        run,
    }
}

fn write_scenario(dir: &Path, name: &str, text: &str) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text)?;
    Ok(path)
}

impl Schedule {
    /// One line: the shape and every rule's label.
    pub fn describe(&self) -> String {
        let outcome = match self.expected() {
            Some(ExpectedOutcome::Success) => "success",
            Some(ExpectedOutcome::GiveUp) => "give up",
            None => "unfair",
        };
        let rules: Vec<String> = self.rules.iter().map(rule_label).collect();
        format!(
            "Chaos schedule: {} records over {} keys, batch {}, {} retries, timeout {} ms; {}; \
             expect {outcome}",
            self.records,
            self.keys,
            self.batch_size,
            self.max_retries,
            self.timeout_ms,
            if rules.is_empty() {
                "no faults".to_owned()
            } else {
                rules.join("; ")
            }
        )
    }

    /// The scenario that runs this schedule, built by parsing [`scenario_text`], so every
    /// schedule run is exactly what its file replays.
    pub(crate) fn scenario(
        &self,
        name: &str,
        description: &str,
    ) -> Result<Scenario, ScenarioError> {
        let path = PathBuf::from(format!("{name}.toml"));
        let text = scenario_text(self, name, description).map_err(|message| ScenarioError {
            file: path.clone(),
            field: None,
            message,
        })?;
        Scenario::parse(&text, &path)
    }
}

/// A rule in a few words: `status 503 ×2 from #1 p=0.5`.
fn rule_label(r: &FaultRule) -> String {
    let what = match (&r.action, r.script.is_empty()) {
        (Some(a), _) => a.label(),
        (None, false) => format!(
            "script [{}]",
            r.script
                .iter()
                .map(|s| match s.times {
                    Some(t) => format!("{} ×{t}", s.action.label()),
                    None => s.action.label(),
                })
                .collect::<Vec<_>>()
                .join(", ")
        ),
        (None, true) => format!(
            "cycle [{}]",
            r.states
                .values()
                .map(|s| s.action.label())
                .collect::<Vec<_>>()
                .join(" / ")
        ),
    };
    let mut out = what;
    if let Some(t) = r.times {
        out.push_str(&format!(" ×{t}"));
    }
    if let Some(f) = r.from_request {
        out.push_str(&format!(" from #{f}"));
    }
    if let Some(p) = r.probability {
        out.push_str(&format!(" p={p}"));
    }
    out
}

/// The scenario file of a schedule.
#[derive(Serialize)]
struct ScenarioDoc<'a> {
    description: &'a str,
    input: InputDoc,
    hints: HintsDoc,
    faults: FaultsDoc<'a>,
    expect: ExpectDoc,
}

#[derive(Serialize)]
struct InputDoc {
    count: usize,
    keys: usize,
}

#[derive(Serialize)]
struct HintsDoc {
    batch_size: usize,
    max_retries: u32,
    timeout_s: f64,
}

#[derive(Serialize)]
struct FaultsDoc<'a> {
    rules: &'a [FaultRule],
}

#[derive(Serialize)]
struct ExpectDoc {
    outcome: ExpectedOutcome,
    checks: Vec<toml::Value>,
    wall_limit_s: f64,
}

/// The schedule as a scenario file (`name` only appears in errors: a scenario's name is its
/// file stem). Fails only for a schedule that is not fair.
pub(crate) fn scenario_text(s: &Schedule, name: &str, description: &str) -> Result<String, String> {
    let outcome = s
        .expected()
        .ok_or_else(|| format!("{name}: the schedule is not fair: {}", s.describe()))?;
    let doc = ScenarioDoc {
        description,
        input: InputDoc {
            count: s.records,
            keys: s.keys,
        },
        hints: HintsDoc {
            batch_size: s.batch_size,
            max_retries: s.max_retries,
            timeout_s: s.timeout_ms as f64 / 1000.0,
        },
        faults: FaultsDoc { rules: &s.rules },
        expect: ExpectDoc {
            outcome,
            checks: LISTED_CHECKS
                .iter()
                .map(|c| match c {
                    CheckId::Timeout => toml::Value::Table(toml::Table::from_iter([
                        ("id".to_owned(), toml::Value::from(c.as_str())),
                        ("slack_ms".to_owned(), toml::Value::from(TIMEOUT_SLACK_MS)),
                    ])),
                    _ => toml::Value::from(c.as_str()),
                })
                .collect(),
            wall_limit_s: s.wall_limit().as_secs_f64(),
        },
    };
    toml::to_string(&doc).map_err(|e| format!("{name}: cannot write the scenario: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_schedule_round_trips_through_the_scenario_parser() {
        for seed in 0..300 {
            let s = Schedule::from_seed(seed);
            let scenario = s
                .scenario("chaos-test", "round trip")
                .unwrap_or_else(|e| panic!("seed {seed}: {e}\n{s:?}"));
            assert_eq!(scenario.faults.rules, s.rules, "seed {seed}");
            assert_eq!(scenario.hints.batch_size, s.batch_size);
            assert_eq!(scenario.hints.max_retries, s.max_retries);
            assert_eq!(scenario.records(seed).len(), s.records);
            assert_eq!(Some(scenario.outcome), s.expected());
            assert!(scenario.checks().iter().any(|c| c.id == CheckId::Jitter));
        }
    }
}
