//! Scenario parsing: every mistake names the file and the field.

use std::path::Path;

use super::*;

fn parse(text: &str) -> Result<Scenario, ScenarioError> {
    Scenario::parse(text, Path::new("scenarios/example.toml"))
}

const MINIMAL: &str = r#"
description = "d"
[input]
count = 3
[expect]
outcome = "success"
"#;

#[test]
fn a_minimal_scenario_gets_the_defaults() {
    let s = parse(MINIMAL).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.name, "example");
    assert_eq!(s.target.api_key, DEMO_API_KEY);
    assert_eq!(s.hints.batch_size, DEFAULT_BATCH_SIZE);
    assert_eq!(s.wall_limit, DEFAULT_WALL_LIMIT);
    assert_eq!(s.records(1).len(), 3);
    let ids: Vec<CheckId> = s.checks().iter().map(|c| c.id).collect();
    assert_eq!(ids, crate::checks::CORE);
}

#[test]
fn listed_checks_come_after_the_core_ones_with_their_parameters() {
    let text = MINIMAL.replace(
        "outcome = \"success\"",
        "outcome = \"success\"\nchecks = [\"jitter\", { id = \"batching_efficiency\", min_mean = 4 }]",
    );
    let s = parse(&text).unwrap_or_else(|e| panic!("{e}"));
    let checks = s.checks();
    assert_eq!(checks.last().map(|c| c.id), Some(CheckId::Jitter));
    let eff = checks
        .iter()
        .find(|c| c.id == CheckId::BatchingEfficiency)
        .map(|c| c.params.min_mean);
    assert_eq!(eff, Some(Some(4.0)));
}

fn error_of(text: &str) -> String {
    match parse(text) {
        Ok(_) => panic!("accepted: {text}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn errors_name_the_file_and_the_field() {
    let e = error_of(&MINIMAL.replace("count = 3", "count = 3\n[hints]\nbatch_size = 0"));
    assert_eq!(
        e,
        "scenarios/example.toml: `hints.batch_size`: must be at least 1"
    );
    let e = error_of(&MINIMAL.replace("count = 3", "count = 3\nrecords = []"));
    assert!(e.contains("`input`: give exactly one of"), "{e}");
    let e = error_of(&MINIMAL.replace(
        "outcome = \"success\"",
        "outcome = \"success\"\nchecks = [\"backof\"]",
    ));
    assert!(
        e.contains("`expect.checks[0]`: unknown check `backof`; known checks: outcome,"),
        "{e}"
    );
    let e = error_of(&MINIMAL.replace("outcome = \"success\"", "outcome = \"maybe\""));
    assert!(
        e.starts_with("scenarios/example.toml: TOML parse error"),
        "{e}"
    );
    assert!(e.contains("unknown variant `maybe`"), "{e}");
    let e = error_of(&MINIMAL.replace("count = 3", "count = 3\nbatch = 2"));
    assert!(e.contains("unknown field `batch`"), "{e}");
    let e = error_of(&MINIMAL.replace("description = \"d\"", "description = \" \""));
    assert!(e.contains("`description`"), "{e}");
}

#[test]
fn faults_are_validated() {
    let text =
        format!("{MINIMAL}\n[[faults.rules]]\naction = {{ kind = \"status\", status = 200 }}\n");
    let e = error_of(&text);
    assert!(e.contains("`faults.rules`"), "{e}");
    assert!(e.contains("not an error status"), "{e}");
}

#[test]
fn inline_records_need_unique_ids() {
    let text = r#"
description = "d"
[input]
records = [
  { transaction_id = "a", user_id = "u" },
  { transaction_id = "a", user_id = "u" },
]
[expect]
outcome = "success"
"#;
    let e = error_of(text);
    assert!(
        e.contains("`input.records[1]`: `transaction_id` `a` repeats record 0"),
        "{e}"
    );
    let text = text.replace(
        "{ transaction_id = \"a\", user_id = \"u\" },\n]",
        "{ user_id = \"u\" },\n]",
    );
    assert!(error_of(&text).contains("has no `transaction_id`"));
}

#[test]
fn toml_datetimes_in_records_become_text() {
    let text = r#"
description = "d"
[input]
records = [{ transaction_id = "a", timestamp = 2024-05-20T10:00:00Z }]
[expect]
outcome = "success"
"#;
    let s = parse(text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.records(0)[0]["timestamp"], "2024-05-20T10:00:00Z");
}

#[test]
fn the_run_seed_drives_generated_input_and_fault_seeds() {
    let s = parse(MINIMAL).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.records(5), s.records(5));
    assert_ne!(s.records(5), s.records(6));
    assert_ne!(s.fault_set(5).seed, s.fault_set(6).seed);
}
