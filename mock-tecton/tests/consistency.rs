//! Online/offline consistency: canonical scenarios as snapshots, the property that a sink
//! delivering events in order creates no skew for any function at any point in time (before,
//! between and after events), and the property that every skew names its cause.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use insta::assert_json_snapshot;
use mock_tecton::consistency::{check, Arrival, Cause, CheckOptions, ConsistencyReport};
use mock_tecton::retrieval::SpineRow;
use mock_tecton::schema::parse_timestamp;
use mock_tecton::state::MockState;
use mock_tecton::{Config, Repository};
use proptest::prelude::*;
use serde_json::{json, Map, Value};

fn opts(max_rows: usize) -> CheckOptions {
    CheckOptions {
        max_rows,
        ..CheckOptions::default()
    }
}

/// The features that differ somewhere.
fn skewed(report: &ConsistencyReport) -> Vec<&str> {
    report
        .features
        .iter()
        .filter(|f| f.mismatch_rate > 0.0)
        .map(|f| f.feature.as_str())
        .collect()
}

/// Every cause named in the listed rows, deduplicated.
fn causes(report: &ConsistencyReport) -> Vec<Cause> {
    let mut out: Vec<Cause> = Vec::new();
    for c in report.differences.iter().flat_map(|d| &d.causes) {
        if !out.contains(c) {
            out.push(*c);
        }
    }
    out
}

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
                timestamp: parse_timestamp(t).unwrap(),
            })
        })
        .collect()
}

/// In event-time order: pushed as they are, each arrives at its event time.
fn events() -> Vec<Value> {
    vec![
        txn("u1", "a", 10.0, "2024-05-31T22:00:00Z"),
        txn("u1", "b", 20.0, "2024-05-31T23:00:00Z"),
        txn("u2", "d", 5.0, "2024-05-31T23:10:00Z"),
        txn("u1", "c", 30.0, "2024-05-31T23:30:00Z"),
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
        &opts(10),
    )
    .unwrap();
    assert!(report.consistent, "{}", report.to_markdown());
    assert_json_snapshot!("in_order", report);
}

#[test]
fn a_sink_that_reorders_one_key_skews_the_attribute_view() {
    let state = demo_state();
    let mut e = events();
    e.swap(1, 3); // u1's newest event is pushed before an older one
    push(&state, &e);
    let report = check(
        &state,
        "fraud_detection",
        &points(&["u1", "u2"], &TIMES),
        &opts(10),
    )
    .unwrap();
    assert!(!report.consistent);
    assert_eq!(
        skewed(&report),
        ["user_last_transaction.amt"],
        "aggregates do not depend on push order"
    );
    assert_eq!(causes(&report), [Cause::PushedOutOfOrder]);
    assert_json_snapshot!("reordered_one_key", report);
}

#[test]
fn a_duplicated_event_skews_counts_and_sums() {
    let state = demo_state();
    let mut e = events();
    e.push(e[3].clone()); // the same event again: online keeps one, the offline log both
    push(&state, &e);
    let report = check(
        &state,
        "fraud_detection",
        &points(&["u1"], &TIMES),
        &opts(10),
    )
    .unwrap();
    assert!(!report.consistent);
    assert!(
        skewed(&report)
            .iter()
            .all(|f| f.starts_with("user_transaction")),
        "{:?}",
        skewed(&report)
    );
    assert_eq!(causes(&report), [Cause::SameKeyAndTimestamp]);
    assert_json_snapshot!("duplicated_event", report);
}

#[test]
fn a_late_event_overwrites_the_online_attribute() {
    let state = demo_state();
    let mut e = events();
    e.push(txn("u2", "late", 99.0, "2024-05-31T20:00:00Z"));
    push(&state, &e);
    let report = check(
        &state,
        "fraud_detection",
        &points(&["u2"], &TIMES),
        &opts(10),
    )
    .unwrap();
    assert_eq!(skewed(&report), ["user_last_transaction.amt"]);
    // It arrives after u2's newer row and replaces it online.
    assert_eq!(causes(&report), [Cause::PushedOutOfOrder]);
    assert_json_snapshot!("late_event", report);
}

/// The bug: the online side was read after every event was pushed, so an event from after the
/// point leaked into it.
#[test]
fn points_between_in_order_events_show_no_skew() {
    let state = demo_state();
    push(&state, &events());
    let times = [
        "2024-05-31T21:00:00Z", // before the first event
        "2024-05-31T22:00:00Z", // at the first
        "2024-05-31T22:30:00Z", // between events
        "2024-05-31T23:05:00Z",
        "2024-05-31T23:15:00Z",
        "2024-05-31T23:29:59.999999Z",
        "2024-05-31T23:30:00Z", // at the last
        "2024-06-01T00:00:00Z", // after the last
    ];
    let report = check(
        &state,
        "fraud_detection",
        &points(&["u1", "u2", "u3"], &times),
        &opts(10),
    )
    .unwrap();
    assert!(report.consistent, "{}", report.to_markdown());
    assert_json_snapshot!("points_between_events", report);
}

/// An event pushed after a newer one arrives late: until it arrives, offline counts it and
/// the feature server cannot; once it has, the aggregates agree again.
#[test]
fn a_late_arrival_skews_the_points_before_it_arrives() {
    let state = demo_state();
    let mut e = events();
    e.swap(1, 3); // b (23:00) is pushed after c (23:30), so it arrives at 23:30
    push(&state, &e);
    let between = points(&["u1"], &["2024-05-31T23:15:00Z"]);
    let report = check(&state, "fraud_detection", &between, &opts(50)).unwrap();
    assert!(!report.consistent);
    assert!(skewed(&report).contains(&"user_transaction_amount_totals.amt_count_1h_continuous"));
    assert_eq!(causes(&report), [Cause::LateArrival]);
    let count = report
        .differences
        .iter()
        .find(|d| d.feature == "user_transaction_amount_totals.amt_count_1h_continuous")
        .unwrap();
    assert_eq!(
        (count.online.clone(), count.offline.clone()),
        (json!(0), json!(1))
    );
    assert!(
        count.detail.contains("2024-05-31T23:00:00Z"),
        "{}",
        count.detail
    );

    let after = points(&["u1"], &["2024-05-31T23:45:00Z"]);
    let report = check(&state, "fraud_detection", &after, &opts(50)).unwrap();
    assert_eq!(skewed(&report), ["user_last_transaction.amt"]);
}

/// Explicit arrival times: an event delivered an hour after its time is missing online for
/// that hour only.
#[test]
fn explicit_arrival_times_decide_what_was_online() {
    let state = demo_state();
    push(&state, &events());
    let ts = |s: &str| parse_timestamp(s).unwrap();
    // Records 0..4 in push order; u2's event (seq 2, 23:10) arrives at 00:10.
    let times = [
        (0, ts("2024-05-31T22:00:00Z")),
        (1, ts("2024-05-31T23:00:00Z")),
        (2, ts("2024-06-01T00:10:00Z")),
        (3, ts("2024-05-31T23:30:00Z")),
    ];
    let options = CheckOptions {
        arrival: Arrival::Times(times.into_iter().collect()),
        max_rows: 50,
    };
    let report = check(
        &state,
        "fraud_detection",
        &points(&["u2"], &["2024-06-01T00:00:00Z"]),
        &options,
    )
    .unwrap();
    assert!(!report.consistent);
    assert!(report
        .differences
        .iter()
        .all(|d| d.causes == [Cause::LateArrival]));
    assert!(skewed(&report).contains(&"user_last_transaction.amt"));
    let report = check(
        &state,
        "fraud_detection",
        &points(&["u2"], &["2024-06-01T00:10:00Z"]),
        &options,
    )
    .unwrap();
    assert!(report.consistent, "{}", report.to_markdown());
}

/// A row whose arrival is before its event time is served online at once; offline it is
/// outside the point's window.
#[test]
fn a_row_arriving_before_its_event_time_is_outside_the_window_offline() {
    let state = demo_state();
    push(&state, &events());
    let ts = |s: &str| parse_timestamp(s).unwrap();
    let times = [
        (0, ts("2024-05-31T22:00:00Z")),
        (1, ts("2024-05-31T22:30:00Z")), // stamped 23:00
        (2, ts("2024-05-31T23:10:00Z")),
        (3, ts("2024-05-31T23:30:00Z")),
    ];
    let options = CheckOptions {
        arrival: Arrival::Times(times.into_iter().collect()),
        max_rows: 50,
    };
    let report = check(
        &state,
        "fraud_detection",
        &points(&["u1"], &["2024-05-31T22:45:00Z"]),
        &options,
    )
    .unwrap();
    // Both rows name the same merchant: only the amount differs.
    assert_eq!(skewed(&report), ["user_last_transaction.amt"]);
    assert_eq!(causes(&report), [Cause::OutsideWindowOnlineOnly]);
}

fn all_functions() -> MockState {
    let repo = Repository::from_toml(
        include_str!("fixtures/all_functions.toml"),
        "all_functions.toml",
    )
    .unwrap();
    MockState::new(&Config::new(repo))
}

/// 2024-05-01T00:00:00Z.
const BASE: i64 = 1_714_521_600_000_000_000;
const SEC: i64 = 1_000_000_000;

/// Pushes generated events `(user, seconds after BASE, x, n, s)` one request each, in order.
fn push_generated(state: &MockState, events: &[(u8, i64, Option<f64>, i64, u8)]) {
    for (user, secs, x, n, s) in events {
        let record: Map<String, Value> =
            json!({"user_id": format!("u{user}"), "x": x, "n": n, "s": format!("s{s}"),
            "ts": mock_tecton::schema::format_rfc3339(BASE + secs * SEC)})
            .as_object()
            .unwrap()
            .clone();
        state.load_records("prod", "events", vec![record]).unwrap();
    }
}

/// Points at generated offsets from the events: exactly at an event, 1 s or 1 µs either side,
/// before the first and after the last, plus free times over two days.
fn spine(
    events: &[(u8, i64, Option<f64>, i64, u8)],
    near: &[(u8, usize, i8)],
    free: &[(u8, i64)],
) -> Vec<SpineRow> {
    let row = |u: u8, t: i64| SpineRow {
        join_keys: [("user_id".to_owned(), json!(format!("u{u}")))]
            .into_iter()
            .collect(),
        timestamp: t,
    };
    let mut out: Vec<SpineRow> = free
        .iter()
        .map(|(u, secs)| row(*u, BASE + secs * SEC))
        .collect();
    let first = events.iter().map(|e| e.1).min().unwrap_or(0);
    let last = events.iter().map(|e| e.1).max().unwrap_or(0);
    out.push(row(0, BASE + first * SEC - 1));
    out.push(row(1, BASE + last * SEC + 1));
    for (u, i, delta) in near {
        let e = &events[i % events.len()];
        let d = match delta {
            -2 => -SEC,
            -1 => -1_000,
            1 => 1_000,
            2 => SEC,
            _ => 0,
        };
        out.push(row(*u, BASE + e.1 * SEC + d));
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Events delivered in event-time order (no duplicate timestamps per key): online as of each
    /// point equals point-in-time offline for every function in both modes and for attributes,
    /// at points before the first event, between events, at events and after the last.
    #[test]
    fn in_order_delivery_keeps_online_equal_to_offline(
        raw in prop::collection::vec((0..3u8, 0..(6 * 3600i64), prop::option::of(-1.0e3..1.0e3f64), -50..50i64, 0..4u8), 1..60),
        near in prop::collection::vec((0..4u8, 0..1000usize, -2..3i8), 1..16),
        free in prop::collection::vec((0..4u8, -3600..(48 * 3600i64)), 0..8),
    ) {
        let state = all_functions();
        let mut events = raw;
        events.sort_by_key(|e| (e.1, e.0));
        events.dedup_by_key(|e| (e.0, e.1));
        push_generated(&state, &events);
        let points = spine(&events, &near, &free);
        let report = check(&state, "all", &points, &opts(5)).unwrap();
        prop_assert!(report.consistent, "{}", report.to_markdown());
    }

    /// Events pushed in any order, duplicates included: wherever online and offline differ,
    /// the report names a cause, never `unexplained`; and the aggregates agree at every point
    /// after the last arrival unless a key and timestamp repeat.
    #[test]
    fn every_skew_has_a_cause(
        raw in prop::collection::vec((0..3u8, 0..(6 * 3600i64), prop::option::of(-1.0e3..1.0e3f64), -50..50i64, 0..4u8), 1..40),
        near in prop::collection::vec((0..4u8, 0..1000usize, -2..3i8), 1..16),
        free in prop::collection::vec((0..4u8, -3600..(48 * 3600i64)), 0..8),
        dup in prop::option::of(0..1000usize),
    ) {
        let state = all_functions();
        let mut events = raw;
        if let Some(d) = dup {
            let e = events[d % events.len()];
            events.push(e);
        }
        push_generated(&state, &events);
        let points = spine(&events, &near, &free);
        let report = check(&state, "all", &points, &opts(usize::MAX)).unwrap();
        for d in &report.differences {
            prop_assert!(!d.causes.is_empty() && !d.causes.contains(&Cause::Unexplained), "{d:?}\n{}", report.to_markdown());
        }
    }
}

/// The admin endpoint: the default rule, `"arrival": "ingestion"` (the mock's clock when each
/// request was acknowledged) and bad arrival options.
#[tokio::test]
async fn admin_consistency_replays_by_event_time_or_by_ingestion_time() {
    // The virtual clock starts at 23:00 and moves on as records are pushed.
    let h = start(Config::default().virtual_clock(NOW - 3_600_000_000_000)).await;
    let clock = format!("{}/_mock/clock", h.mock.url());
    let u1 = |id: &str, amt: f64, ts: &str| txn("u1", id, amt, ts);
    let (status, body) = h
        .ingest(
            "demo-editor-key",
            &batch(false, vec![u1("a", 10.0, "2024-05-31T22:00:00Z")]),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    // Two hours pass before the next event is delivered: it arrives at 01:00.
    h.http
        .post(&clock)
        .json(&json!({"advance": "2h"}))
        .send()
        .await
        .unwrap();
    let (status, body) = h
        .ingest(
            "demo-editor-key",
            &batch(false, vec![u1("b", 20.0, "2024-05-31T23:30:00Z")]),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    let url = format!("{}/_mock/consistency", h.mock.url());
    let ask = |body: Value| {
        let req = h.http.post(&url).json(&body);
        async move {
            let resp = req.send().await.unwrap();
            (resp.status().as_u16(), resp.json::<Value>().await.unwrap())
        }
    };
    let spine = json!([{"user_id": "u1", "timestamp": "2024-06-01T00:00:00Z"}]);
    let (status, report) = ask(json!({"spine": spine})).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["consistent"], true, "{report}");

    let (status, report) = ask(json!({"spine": spine, "arrival": "ingestion"})).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["consistent"], false, "{report}");
    let rows = report["differences"].as_array().unwrap();
    assert!(
        rows.iter().all(|r| r["causes"] == json!(["late arrival"])),
        "{report}"
    );
    assert!(rows
        .iter()
        .any(|r| r["feature"] == "user_last_transaction.amt"
            && r["online"] == json!(10.0)
            && r["offline"] == json!(20.0)));

    let (status, body) = ask(json!({"spine": spine, "arrival": "whenever"})).await;
    assert_eq!(status, 400);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("\"event_time\" or \"ingestion\""),
        "{body}"
    );
    let (status, body) = ask(json!({"spine": spine, "arrival_field": "nope"})).await;
    assert_eq!(status, 400);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("push source `transactions` has no such field"),
        "{body}"
    );
}
