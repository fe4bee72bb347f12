//! The scenario file as written, before validation. Every table refuses unknown keys, so a
//! misspelt key is an error that names it rather than a setting silently ignored.

use std::path::PathBuf;

use mock_tecton::faults::FaultSet;
use serde::Deserialize;

/// A whole scenario file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ScenarioFile {
    pub name: Option<String>,
    pub description: String,
    pub repository: Option<PathBuf>,
    #[serde(default)]
    pub target: TargetFile,
    pub input: InputFile,
    #[serde(default)]
    pub hints: HintsFile,
    #[serde(default)]
    pub faults: FaultSet,
    pub expect: ExpectFile,
}

/// `[target]`: what the sink is told to write to.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TargetFile {
    pub api_key: Option<String>,
    pub workspace: Option<String>,
    pub push_source: Option<String>,
}

/// `[input]`: exactly one of `records`, `file` or `count`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct InputFile {
    pub records: Option<Vec<toml::Table>>,
    pub file: Option<PathBuf>,
    pub count: Option<usize>,
    pub keys: Option<usize>,
    pub disorder: Option<f64>,
    pub seed: Option<u64>,
    pub start: Option<String>,
    pub step_ms: Option<u64>,
    pub id_field: Option<String>,
    pub key_field: Option<String>,
}

/// `[hints]`: protocol v1's `SINK_*` hints.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct HintsFile {
    pub batch_size: Option<usize>,
    pub max_retries: Option<u32>,
    pub timeout_s: Option<f64>,
}

/// `[expect]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ExpectFile {
    pub outcome: crate::checks::ExpectedOutcome,
    #[serde(default)]
    pub checks: Vec<toml::Value>,
    pub wall_limit_s: Option<f64>,
}
