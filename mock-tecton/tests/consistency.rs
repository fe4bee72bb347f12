//! Online/offline consistency: canonical scenarios as snapshots, and the property that a sink
//! delivering events in order creates no skew for any function at any time.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use insta::assert_json_snapshot;
use mock_tecton::consistency::{check, same};
use mock_tecton::retrieval::{offline_features, SpineRow};
use mock_tecton::serving::{online_vector, served_features, UnknownEntity};
use mock_tecton::state::MockState;
use mock_tecton::{Config, Repository};
use proptest::prelude::*;
use serde_json::{json, Map, Value};

fn demo_state() -> MockState {
    MockState::new(&Config::default().virtual_clock(NOW))
}

/// Pushes records one request at a time, in the order given, as a sink would.
fn push(state: &MockState, records: &[Value]) {
    for r in records {
        let records = vec![r["record"].as_object().unwrap().clone()];
        state.load_records("prod", "transactions", records).unwrap();
    }
}

fn points(users: &[&str], times: &[&str]) -> Vec<SpineRow> {
    users
        .iter()
        .flat_map(|u| {
            times.iter().map(move |t| SpineRow {
                join_keys: [("user_id".to_owned(), json!(u))].into_iter().collect(),
                timestamp: mock_tecton::schema::parse_timestamp(t).unwrap(),
            })
        })
        .collect()
}

fn events() -> Vec<Value> {
    vec![
        txn("u1", "a", 10.0, "2024-05-31T22:00:00Z"),
        txn("u1", "b", 20.0, "2024-05-31T23:00:00Z"),
        txn("u1", "c", 30.0, "2024-05-31T23:30:00Z"),
        txn("u2", "d", 5.0, "2024-05-31T23:10:00Z"),
    ]
}

const TIMES: [&str; 2] = ["2024-05-31T23:59:00Z", "2024-06-01T00:00:00Z"];

#[test]
fn in_order_delivery_has_no_skew() {
    let state = demo_state();
    push(&state, &events());
    let report = check(
        &state,
        "fraud_detection",
        &points(&["u1", "u2", "u3"], &TIMES),
        10,
    )
    .unwrap();
    assert!(report.consistent, "{}", report.to_markdown());
    assert_json_snapshot!("in_order", report);
}

#[test]
fn a_sink_that_reorders_one_key_skews_the_attribute_view() {
    let state = demo_state();
    let mut e = events();
    e.swap(1, 2); // u1's newest event is pushed before an older one
    push(&state, &e);
    let report = check(
        &state,
        "fraud_detection",
        &points(&["u1", "u2"], &TIMES),
        10,
    )
    .unwrap();
    assert!(!report.consistent);
    let skewed: Vec<&str> = report
        .features
        .iter()
        .filter(|f| f.mismatch_rate > 0.0)
        .map(|f| f.feature.as_str())
        .collect();
    assert_eq!(
        skewed,
        ["user_last_transaction.amt"],
        "aggregates do not depend on arrival order"
    );
    assert_json_snapshot!("reordered_one_key", report);
}

#[test]
fn a_duplicated_event_skews_counts_and_sums() {
    let state = demo_state();
    let mut e = events();
    e.push(e[2].clone()); // the same event again: online keeps one, the offline log both
    push(&state, &e);
    let report = check(&state, "fraud_detection", &points(&["u1"], &TIMES), 10).unwrap();
    assert!(!report.consistent);
    assert_json_snapshot!("duplicated_event", report);
}

#[test]
fn a_late_event_overwrites_the_online_attribute() {
    let state = demo_state();
    let mut e = events();
    e.push(txn("u2", "late", 99.0, "2024-05-31T20:00:00Z"));
    push(&state, &e);
    let report = check(&state, "fraud_detection", &points(&["u2"], &TIMES), 10).unwrap();
    let skewed: Vec<&str> = report
        .features
        .iter()
        .filter(|f| f.mismatch_rate > 0.0)
        .map(|f| f.feature.as_str())
        .collect();
    assert_eq!(skewed, ["user_last_transaction.amt"]);
    assert_json_snapshot!("late_event", report);
}

fn all_functions() -> MockState {
    let repo = Repository::from_toml(
        include_str!("fixtures/all_functions.toml"),
        "all_functions.toml",
    )
    .unwrap();
    // The online store keeps what its clock can still serve; at BASE every generated event is
    // servable, so the points before and after them all compare the full event set.
    MockState::new(&Config::new(repo).virtual_clock(BASE))
}

/// 2024-05-01T00:00:00Z.
const BASE: i64 = 1_714_521_600_000_000_000;
const SEC: i64 = 1_000_000_000;

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Events delivered in event-time order (no duplicate timestamps per key): online equals
    /// point-in-time offline for every aggregate at any time, and for attributes from the
    /// entity's last event on (before it, online serves the newest row by design).
    #[test]
    fn in_order_delivery_keeps_online_equal_to_offline(
        raw in prop::collection::vec((0..3u8, 0..(6 * 3600i64), prop::option::of(-1.0e3..1.0e3f64), -50..50i64, 0..4u8), 1..60),
        times in prop::collection::vec((0..4u8, 0..(48 * 3600i64)), 1..12),
    ) {
        let state = all_functions();
        let mut events = raw;
        events.sort_by_key(|e| (e.1, e.0));
        events.dedup_by_key(|e| (e.0, e.1));
        let mut last_ts = [i64::MIN; 4];
        for (user, secs, x, n, s) in &events {
            let ts = BASE + secs * SEC;
            let record: Map<String, Value> = json!({"user_id": format!("u{user}"), "x": x, "n": n, "s": format!("s{s}"),
                "ts": mock_tecton::schema::format_rfc3339(ts)}).as_object().unwrap().clone();
            state.load_records("prod", "events", vec![record]).unwrap();
            last_ts[*user as usize] = ts;
        }
        let fs = state.repo.feature_service("all").unwrap();
        let features = served_features(&state.repo, fs);
        let spine: Vec<SpineRow> = times.iter().map(|(u, secs)| SpineRow {
            join_keys: [("user_id".to_owned(), json!(format!("u{u}")))].into_iter().collect(),
            timestamp: BASE + secs * SEC,
        }).collect();
        let offline = offline_features(&state, &features, &spine).unwrap();
        for (point, off) in spine.iter().zip(&offline) {
            let user = point.join_keys["user_id"].as_str().unwrap()[1..].parse::<usize>().unwrap();
            let on = online_vector(&state.repo, &state.online, &features, &point.join_keys, point.timestamp, UnknownEntity::EmptyWindow).unwrap();
            for (i, f) in features.iter().enumerate() {
                let attribute = f.name.starts_with("attrs.");
                if attribute && point.timestamp < last_ts[user] {
                    continue;
                }
                prop_assert!(same(&on[i].value, &off[i].value), "{} at {}: online {:?} offline {:?}", f.name, point.timestamp, on[i].value, off[i].value);
            }
        }
    }
}
