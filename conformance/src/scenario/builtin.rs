//! The built-in scenarios, compiled into the binary so that conformance runs from any
//! directory. Their files live in the repository's `scenarios/`; a test checks that this list
//! and that directory agree.

use std::path::Path;

use super::{Scenario, ScenarioError};

/// The directory the built-in scenarios appear to live in, in their paths and errors.
pub const BUILTIN_DIR: &str = "<built-in>";

macro_rules! embedded {
    ($($file:literal),* $(,)?) => {
        &[$(($file, include_str!(concat!("../../../scenarios/", $file)))),*]
    };
}

/// `(path relative to scenarios/, text)` of every built-in scenario and file they refer to.
pub(crate) const FILES: &[(&str, &str)] = embedded![
    "backoff-jitter.toml",
    "batch-size-one.toml",
    "batching-thresholds.toml",
    "connection-reset.toml",
    "garbage-response.toml",
    "invalid-key.toml",
    "large-input.toml",
    "malformed-records.toml",
    "mixed-faults.toml",
    "out-of-order-events.toml",
    "persistent-503.toml",
    "reset-after-write.toml",
    "retry-after.toml",
    "schema-drift.toml",
    "schema-mismatch.toml",
    "server-errors-5xx.toml",
    "slow-responses.toml",
    "source-not-found.toml",
    "success.toml",
    "throttled-429.toml",
    "timeout-hang.toml",
    "truncated-response.toml",
    "workspace-not-found.toml",
    "repos/transactions-with-country.toml",
];

/// Reads a file of the built-in set by its `<built-in>/…` path.
fn read(path: &Path) -> std::io::Result<String> {
    let relative = path.strip_prefix(BUILTIN_DIR).unwrap_or(path);
    FILES
        .iter()
        .find(|(name, _)| Path::new(name) == relative)
        .map(|(_, text)| (*text).to_owned())
        .ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "not among the built-in scenario files",
            )
        })
}

/// The text of a built-in scenario (`throttled-429`) or of a file it refers to
/// (`repos/transactions-with-country.toml`).
pub fn builtin_text(name: &str) -> Option<&'static str> {
    let file = if name.ends_with(".toml") {
        name.to_owned()
    } else {
        format!("{name}.toml")
    };
    FILES.iter().find(|(n, _)| *n == file).map(|(_, t)| *t)
}

/// Every built-in scenario, sorted by name, each loaded and validated.
pub fn builtin() -> Vec<Result<Scenario, ScenarioError>> {
    FILES
        .iter()
        .filter(|(name, _)| !name.contains('/'))
        .map(|(name, text)| Scenario::parse_with(text, &Path::new(BUILTIN_DIR).join(name), &read))
        .collect()
}

/// The built-in scenarios, then every `*.toml` file directly in `dir` (if given): a file named
/// like a built-in scenario replaces it, any other is added. Sorted by name.
pub fn load_builtin(
    dir: Option<&Path>,
) -> Result<Vec<Result<Scenario, ScenarioError>>, ScenarioError> {
    let mut all = builtin();
    if let Some(dir) = dir {
        for loaded in super::load_dir(dir)? {
            let name = name_of(&loaded);
            all.retain(|s| name_of(s) != name);
            all.push(loaded);
        }
    }
    all.sort_by_key(name_of);
    Ok(all)
}

fn name_of(s: &Result<Scenario, ScenarioError>) -> String {
    match s {
        Ok(s) => s.name.clone(),
        Err(e) => e.scenario_name(),
    }
}

/// Where a built-in file would be on disk, for tests that compare the two.
#[cfg(test)]
fn on_disk(name: &str) -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../scenarios")
        .join(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_in_scenarios_is_built_in_and_identical() {
        let dir = on_disk("");
        let mut on_disk_names: Vec<String> = Vec::new();
        for sub in ["", "repos"] {
            let Ok(entries) = std::fs::read_dir(dir.join(sub)) else {
                continue;
            };
            for e in entries.flatten() {
                let p = e.path();
                if p.extension().is_some_and(|x| x == "toml") {
                    let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
                    let name = name.unwrap_or_default();
                    on_disk_names.push(if sub.is_empty() {
                        name
                    } else {
                        format!("{sub}/{name}")
                    });
                }
            }
        }
        on_disk_names.sort();
        let mut built_in: Vec<String> = FILES.iter().map(|(n, _)| (*n).to_owned()).collect();
        built_in.sort();
        assert_eq!(
            built_in, on_disk_names,
            "scenario/builtin.rs must list every file"
        );
        for (name, text) in FILES {
            assert_eq!(
                std::fs::read_to_string(on_disk(name)).ok().as_deref(),
                Some(*text)
            );
        }
    }

    #[test]
    fn built_in_scenarios_load_and_find_their_repositories() {
        let all = builtin();
        assert_eq!(all.len(), FILES.len() - 1);
        for s in &all {
            assert!(s.is_ok(), "{:?}", s.as_ref().err().map(ToString::to_string));
        }
        let mismatch = all
            .iter()
            .flatten()
            .find(|s| s.name == "schema-mismatch")
            .and_then(|s| s.repository_path.clone());
        assert_eq!(
            mismatch,
            Some(std::path::PathBuf::from(
                "<built-in>/repos/transactions-with-country.toml"
            ))
        );
    }
}
