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

/// A view of [`BASE`] with the given extra lines.
fn with_view(lines: &str) -> String {
    format!(
        "{BASE}
[[feature_views]]
name = \"v\"
sources = [\"events\"]
entities = [\"user\"]
{lines}
"
    )
}

/// The bug: only the unknown field was reported, the other two mistakes were hidden behind it.
#[test]
fn repo_check_reports_every_mistake_at_once() {
    let text = with_view(
        "colour = \"red\"
feature_start_time = \"2024-01-01T00:00:00Z\"
attributes = [\"amt\"]
ttl = 30

[[feature_views]]
name = \"w\"
sources = [\"events\"]
entities = [\"user\"]
feature_start_time = \"2024-01-01T00:00:00Z\"
aggregations = [{ column = \"amt\", function = \"median\", window = \"1h\" }]",
    );
    let errs = errors(&text);
    assert_eq!(errs.len(), 3, "{errs:#?}");
    assert!(
        errs[0].starts_with("repo.toml:21:1: feature_views[0].colour: unknown field `colour`; accepted: name, sources,"),
        "{}",
        errs[0]
    );
    assert!(
        errs[1].starts_with("repo.toml:24:7: feature_views[0].ttl: expected a duration string, e.g. \"30d\" or \"1h30m\", found an integer (30)"),
        "{}",
        errs[1]
    );
    assert!(
        errs[2].contains(
            "feature_views[1].aggregations[0].function: unknown aggregation function `median`"
        ),
        "{}",
        errs[2]
    );
}

/// The bug: messages of the TOML decoder leaked (`untagged enum OneOrMany`, `invalid type: map,
/// expected a string`, `expected usize`) without saying what is accepted.
#[test]
fn repo_errors_name_the_field_path_and_what_is_accepted_never_decoder_internals() {
    let text = format!(
        "{}
[[service_accounts]]
name = {{ first = \"a\" }}
api_key = \"k\"
roles = {{ prod = 5 }}

[[service_accounts]]
name = \"b\"
api_key = \"k2\"
roles = {{ prod = [\"editor\", \"owner\"] }}",
        with_view("feature_start_time = { at = 1 }\nattributes = \"amt\"\nonline = \"yes\"")
    );
    let errs = errors(&text);
    let all = errs.join("\n");
    for leak in [
        "untagged",
        "OneOrMany",
        "invalid type",
        "usize",
        "variant",
        "map",
    ] {
        assert!(!all.contains(leak), "`{leak}` leaked:\n{all}");
    }
    for needle in [
        "feature_views[0].feature_start_time: expected an RFC 3339 timestamp",
        "feature_views[0].attributes: expected an array of strings",
        "feature_views[0].online: expected true or false, found the string \"yes\"",
        "service_accounts[0].name: expected a string, found a table",
        "service_accounts[0].roles.prod: expected a role (\"editor\", \"viewer\" or \"consumer\") or an array of roles, found an integer (5)",
        "service_accounts[1].roles.prod: expected a role",
    ] {
        assert!(all.contains(needle), "missing {needle:?} in\n{all}");
    }
    // Each line has a position and a field path.
    for e in &errs {
        assert!(
            e.starts_with("repo.toml:") && e.matches(": ").count() >= 2,
            "{e}"
        );
    }
}

#[test]
fn toml_datetimes_are_accepted_where_a_timestamp_is_expected() {
    let text = with_view("feature_start_time = 2024-01-01T00:00:00Z\nattributes = [\"amt\"]");
    let repo = Repository::from_toml(&text, "repo.toml").unwrap();
    assert_eq!(
        repo.feature_view("v").unwrap().feature_start_time,
        Some(1_704_067_200_000_000_000)
    );
    let text = with_view("feature_start_time = 2024-01-01T00:00:00+02:00\nattributes = [\"amt\"]");
    let repo = Repository::from_toml(&text, "repo.toml").unwrap();
    assert_eq!(
        repo.feature_view("v").unwrap().feature_start_time,
        Some(1_704_060_000_000_000_000)
    );
    // A local date-time has no zone: refused with the reason.
    let errs = errors(&with_view(
        "feature_start_time = 2024-01-01T00:00:00\nattributes = [\"amt\"]",
    ));
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert!(errs[0].contains("feature_views[0].feature_start_time: the date-time 2024-01-01T00:00:00 has no date, time or time zone"), "{}", errs[0]);
}

/// The bug: one bad type in a schema added five follow-on errors (every use of the column, the
/// missing event-time field, the service's reference).
#[test]
fn one_bad_type_is_reported_once_without_follow_on_errors() {
    let text = format!(
        "{}
[[feature_views]]
name = \"w\"
sources = [\"events\"]
entities = [\"user\"]
feature_start_time = \"2024-01-01T00:00:00Z\"
attributes = [\"amt\"]

[[feature_services]]
name = \"fs\"
features = [\"v.amt_sum_1h_continuous\", \"w.amt\", \"v\"]",
        with_view(
            "feature_start_time = \"2024-01-01T00:00:00Z\"
aggregations = [
  { column = \"amt\", function = \"sum\", window = \"1h\" },
  { column = \"amt\", function = \"count\", window = \"1d\" },
]"
        )
    )
    .replace(
        "{ name = \"amt\", type = \"Float64\" }",
        "{ name = \"amt\", type = \"Flaot64\" }",
    );
    let errs = errors(&text);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert!(
        errs[0].contains("push_sources[0].schema[1].type"),
        "{}",
        errs[0]
    );

    // The same for a bad event-time type and for an entity left out.
    let text = BASE
        .replace(
            "{ name = \"ts\", type = \"Timestamp\" }",
            "{ name = \"ts\", type = 5 }",
        )
        .replace("name = \"user\"", "name = [\"user\"]");
    let errs = errors(
        &with_view(&format!(
            "{}\nfeature_start_time = \"2024-01-01T00:00:00Z\"\nattributes = [\"amt\"]",
            ""
        ))
        .replace(BASE, &text),
    );
    assert_eq!(errs.len(), 2, "{errs:#?}");
    assert!(
        errs[0].contains("entities[0].name: expected a string"),
        "{errs:#?}"
    );
    assert!(
        errs[1].contains("push_sources[0].schema[2].type: expected a string, found an integer (5)"),
        "{errs:#?}"
    );
}
