//! feature_start_time at its edges, online and offline alike: aggregations keep events from
//! before the start and are null while the request time is before it; attribute views ignore
//! rows stamped before it.
#![allow(clippy::unwrap_used)]

use mock_tecton::retrieval::{offline_features, SpineRow};
use mock_tecton::schema::{format_rfc3339, Value};
use mock_tecton::serving::{online_vector, served_features, FeatureValue, UnknownEntity};
use mock_tecton::state::MockState;
use mock_tecton::{Config, Repository};
use serde_json::{json, Map};

/// The fixture's feature_start_time, 2024-05-01T01:00:00Z, for every view.
const START: i64 = 1_714_525_200_000_000_000;
const MICRO: i64 = 1_000;

fn state() -> MockState {
    let repo = Repository::from_toml(
        include_str!("fixtures/all_functions.toml"),
        "all_functions.toml",
    )
    .unwrap();
    // The online store keeps what its clock can still serve: the clock stands at the start.
    MockState::new(&Config::new(repo).virtual_clock(START))
}

fn push(state: &MockState, user: &str, x: f64, ts: i64) {
    let record: Map<String, serde_json::Value> = json!({"user_id": user, "x": x, "n": 1, "s": "a",
        "ts": format_rfc3339(ts)})
    .as_object()
    .unwrap()
    .clone();
    state.load_records("prod", "events", vec![record]).unwrap();
}

/// `feature -> value` online (as get-features answers) and offline at `t`.
fn both(state: &MockState, user: &str, t: i64) -> Vec<(String, Value, Value)> {
    let fs = state.repo().feature_service("all").unwrap();
    let features = served_features(state.repo(), fs);
    let keys: Map<String, serde_json::Value> =
        [("user_id".to_owned(), json!(user))].into_iter().collect();
    let online = online_vector(
        state.repo(),
        state.online(),
        &features,
        &keys,
        t,
        UnknownEntity::Null,
    )
    .unwrap();
    let offline = offline_features(
        state,
        &features,
        &[SpineRow {
            join_keys: keys,
            timestamp: t,
        }],
    )
    .unwrap();
    features
        .iter()
        .zip(online)
        .zip(&offline[0])
        .map(|((f, on), off): ((_, FeatureValue), _)| (f.name.clone(), on.value, off.value.clone()))
        .collect()
}

fn value<'a>(rows: &'a [(String, Value, Value)], name: &str) -> (&'a Value, &'a Value) {
    let (_, on, off) = rows.iter().find(|(n, _, _)| n == name).unwrap();
    (on, off)
}

#[test]
fn an_event_1us_before_the_start_counts_in_a_1h_window_at_the_start() {
    let s = state();
    push(&s, "u1", 4.0, START - MICRO);
    let rows = both(&s, "u1", START);
    for name in ["cont.x_count_1h_continuous", "tiled.x_count_1h_10m"] {
        assert_eq!(
            value(&rows, name),
            (&Value::Int(1), &Value::Int(1)),
            "{name}"
        );
    }
    assert_eq!(
        value(&rows, "cont.x_sum_1h_continuous"),
        (&Value::Float(4.0), &Value::Float(4.0))
    );
}

#[test]
fn every_aggregate_is_null_1us_before_the_start_count_included() {
    let s = state();
    push(&s, "u1", 4.0, START - 10 * 60 * 1_000_000_000);
    let rows = both(&s, "u1", START - MICRO);
    let aggregates: Vec<_> = rows
        .iter()
        .filter(|(n, _, _)| !n.starts_with("attrs."))
        .collect();
    assert!(aggregates.len() > 20);
    for (name, on, off) in aggregates {
        assert_eq!((on, off), (&Value::Null, &Value::Null), "{name}");
    }
}

#[test]
fn an_attribute_row_1us_before_the_start_is_ignored() {
    let s = state();
    push(&s, "u1", 4.0, START - MICRO);
    for t in [START, START + 3_600_000_000_000] {
        let rows = both(&s, "u1", t);
        assert_eq!(value(&rows, "attrs.x"), (&Value::Null, &Value::Null));
    }
    // Not even as the previous row: a later row is served, then the early one changes nothing.
    push(&s, "u1", 7.0, START);
    push(&s, "u1", 9.0, START - 2 * MICRO);
    let rows = both(&s, "u1", START + MICRO);
    assert_eq!(
        value(&rows, "attrs.x"),
        (&Value::Float(7.0), &Value::Float(7.0))
    );
    // The aggregates count all three events.
    assert_eq!(
        value(&rows, "cont.x_count_1h_continuous"),
        (&Value::Int(3), &Value::Int(3))
    );
}
