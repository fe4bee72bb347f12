use super::*;

#[test]
fn demo_repository_matches_the_design() {
    let repo = Repository::demo();
    assert_eq!(
        repo.workspaces,
        vec![Workspace {
            name: "prod".into(),
            live: true
        }]
    );
    let totals = repo.feature_view("user_transaction_amount_totals").unwrap();
    let names: Vec<_> = totals.features().into_iter().map(|(n, _)| n).collect();
    assert!(
        names.contains(&"amt_sum_1h_continuous".to_owned()),
        "{names:?}"
    );
    assert!(names.contains(&"amt_mean_3d_continuous".to_owned()));
    let counts = repo.feature_view("user_transaction_counts").unwrap();
    let names: Vec<_> = counts.features().into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        [
            "amt_max_1h_10m",
            "amt_stddev_samp_1d_10m",
            "merchant_last_distinct_3_1d_10m",
            "transaction_id_count_1d_10m",
            "transaction_id_count_1h_10m",
        ]
    );
    let last = repo.feature_view("user_last_transaction").unwrap();
    assert_eq!(last.ttl(), Some(30 * crate::duration::DAY));
    assert_eq!(repo.views_of_source("transactions").len(), 3);
    assert_eq!(
        repo.feature_service("fraud_detection").unwrap().views.len(),
        3
    );
    let editor = repo.account_for_key("demo-editor-key").unwrap();
    assert!(editor.can("prod", Role::may_write));
    let viewer = repo.account_for_key("demo-viewer-key").unwrap();
    assert!(!viewer.can("prod", Role::may_write) && viewer.can("prod", Role::may_dry_run));
}

fn errors(toml: &str) -> Vec<String> {
    Repository::from_toml(toml, "repo.toml")
        .unwrap_err()
        .0
        .iter()
        .map(ToString::to_string)
        .collect()
}

const BASE: &str = r#"
[[workspaces]]
name = "prod"

[[entities]]
name = "user"
join_keys = [{ name = "user_id", type = "String" }]

[[push_sources]]
name = "events"
schema = [
  { name = "user_id", type = "String" },
  { name = "amt", type = "Float64" },
  { name = "ts", type = "Timestamp" },
]
"#;

#[test]
fn each_mistake_names_file_line_and_field() {
    let text = format!(
        "{BASE}
[[feature_views]]
name = \"v\"
sources = [\"events\"]
entities = [\"user\"]
feature_start_time = \"2024-01-01T00:00:00Z\"
aggregations = [
  {{ column = \"amt\", function = \"median\", window = \"1h\" }},
  {{ column = \"nope\", function = \"sum\", window = \"1h\" }},
  {{ column = \"amt\", function = \"sum\", window = \"1w\" }},
]
"
    );
    let errs = errors(&text);
    assert_eq!(errs.len(), 3, "{errs:#?}");
    assert!(errs[0].starts_with("repo.toml:23:32: feature_views[0].aggregations[0].function: unknown aggregation function `median`"), "{}", errs[0]);
    assert!(errs[1].starts_with("repo.toml:24:14: feature_views[0].aggregations[1].column: source `events` has no field `nope`"), "{}", errs[1]);
    assert!(
        errs[2].contains("aggregations[2].window: invalid duration `1w`"),
        "{}",
        errs[2]
    );
}

#[test]
fn time_interval_without_interval_is_a_configuration_error() {
    let text = format!(
        "{BASE}
[[feature_views]]
name = \"v\"
sources = [\"events\"]
entities = [\"user\"]
feature_start_time = \"2024-01-01T00:00:00Z\"
stream_processing_mode = \"TIME_INTERVAL\"
aggregations = [{{ column = \"amt\", function = \"sum\", window = \"1h\" }}]
"
    );
    let errs = errors(&text);
    assert!(
        errs.iter()
            .any(|e| e.contains("TIME_INTERVAL needs an aggregation_interval")),
        "{errs:#?}"
    );
}

#[test]
fn syntax_errors_and_unknown_fields_have_positions() {
    let errs = errors("[[workspaces]]\nname = \"prod\"\nlive = yes\n");
    assert!(errs[0].starts_with("repo.toml:3:8"), "{errs:?}");
    let errs = errors("[[workspaces]]\nname = \"prod\"\ncolour = \"red\"\n");
    assert!(
        errs[0].starts_with("repo.toml:3:1") && errs[0].contains("unknown field `colour`"),
        "{errs:?}"
    );
}

#[test]
fn dangling_references_are_reported() {
    let text = format!(
        "{BASE}
[[service_accounts]]
name = \"a\"
api_key = \"k\"
roles = {{ staging = \"editor\" }}

[[feature_views]]
name = \"v\"
sources = [\"missing\"]
entities = [\"ghost\"]
feature_start_time = \"2024-01-01T00:00:00Z\"
attributes = [\"amt\"]

[[feature_services]]
name = \"fs\"
features = [\"v.amt\", \"w\"]
"
    );
    let errs = errors(&text).join("\n");
    for needle in [
        "no workspace named `staging`",
        "no push or stream source named `missing`",
        "no entity named `ghost`",
        "no feature view named `w`",
    ] {
        assert!(errs.contains(needle), "missing {needle:?} in\n{errs}");
    }
}

#[test]
fn explicit_names_offsets_and_ids() {
    let text = format!(
        "{BASE}
[[feature_views]]
name = \"v\"
sources = [\"events\"]
entities = [\"user\"]
feature_start_time = \"2024-01-01T00:00:00Z\"
stream_processing_mode = \"TIME_INTERVAL\"
aggregation_interval = \"10m\"
aggregations = [
  {{ column = \"amt\", function = \"sum\", window = \"1h\", offset = \"10m\" }},
  {{ column = \"amt\", function = \"sum\", window = \"1h\", name = \"spent\" }},
]
"
    );
    let repo = Repository::from_toml(&text, "repo.toml").unwrap();
    let v = repo.feature_view("v").unwrap();
    let names: Vec<_> = v.features().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["amt_sum_1h_10m_offset_10m", "spent"]);
    assert_eq!(v.id.len(), 32);
    assert_ne!(v.id, load::object_id("w"));
}
