//! The online store keeps what the clock can still serve, and no more: edges of eviction, late
//! events, attribute TTLs, and memory that levels off while online still equals offline.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use mock_tecton::consistency::same;
use mock_tecton::duration::{DAY, MINUTE};
use mock_tecton::ingest::Event;
use mock_tecton::retrieval::offline_features;
use mock_tecton::retrieval::SpineRow;
use mock_tecton::schema::Value;
use mock_tecton::serving::{online_vector, served_features, UnknownEntity};
use mock_tecton::state::MockState;
use mock_tecton::store::{EntityKey, KeyPart, OnlineEntry};
use mock_tecton::Config;
use serde_json::json;

/// The demo's views, by index in the repository.
const TOTALS: usize = 0; // CONTINUOUS, windows up to 3d, 5-minute fine tiles
const COUNTS: usize = 1; // TIME_INTERVAL 10m, windows up to 1d
const LAST: usize = 2; // attributes, TTL 30d
const MICROSECOND: i64 = 1_000;

fn state() -> MockState {
    MockState::new(&Config::default().virtual_clock(NOW))
}

fn key(user: &str) -> EntityKey {
    EntityKey(vec![KeyPart::Str(user.into())])
}

fn event(user: &str, id: &str, amt: f64, ts: i64) -> Event {
    Event::new(vec![
        Value::String(user.into()),
        Value::String(id.into()),
        Value::String("acme".into()),
        Value::Float(amt),
        Value::Int(0),
        Value::Timestamp(ts),
    ])
}

fn stored_events(state: &MockState, view: usize, user: &str) -> Option<usize> {
    match state.online().get(view, &key(user))? {
        OnlineEntry::Aggregates(series) => Some(series.len()),
        OnlineEntry::Attributes(_) => None,
    }
}

#[test]
fn an_event_at_the_oldest_servable_edge_stays_and_one_a_microsecond_older_goes() {
    let state = state();
    for view in [TOTALS, COUNTS] {
        let spec = state.online().spec(view).unwrap().clone();
        // Longest window + one fine tile: 3d + 5 min, and 1d + the 10-minute interval.
        let reach = if view == TOTALS {
            3 * DAY + 5 * MINUTE
        } else {
            DAY + 10 * MINUTE
        };
        assert_eq!(spec.reach(), reach);
        let edge = state.clock().now() - reach;
        let (at_edge, older) = (format!("edge{view}"), format!("older{view}"));
        let applied = state
            .apply_events(
                "transactions",
                vec![
                    event(&at_edge, "a", 1.0, edge),
                    event(&older, "b", 2.0, edge - MICROSECOND),
                ],
            )
            .unwrap();
        assert_eq!(applied.events, 2);
        assert_eq!(
            stored_events(&state, view, &at_edge),
            Some(1),
            "view {view}"
        );
        assert_eq!(stored_events(&state, view, &older), None, "view {view}");

        // One microsecond later the edge has moved past the first event too.
        state.clock().advance(MICROSECOND);
        state.online().evict(state.clock().now());
        assert_eq!(stored_events(&state, view, &at_edge), None, "view {view}");
    }
    // Both events of each view reached the offline log.
    assert_eq!(state.offline().rows(0).unwrap().len(), 4);
}

#[tokio::test]
async fn a_late_event_older_than_every_window_is_logged_offline_and_not_kept_online() {
    let h = demo().await;
    // Ten days old: inside the 30-day TTL, so accepted, but outside every window (3d at most).
    let body = batch(false, vec![txn("late", "t1", 7.0, "2024-05-22T00:00:00Z")]);
    let (status, _) = h.ingest("demo-editor-key", &body).await;
    assert_eq!(status, 200);
    let state = h.mock.state();
    let rows = state.offline().rows(0).unwrap();
    assert_eq!(rows.len(), 1, "logged offline");
    assert_eq!(stored_events(state, TOTALS, "late"), None);
    assert_eq!(stored_events(state, COUNTS, "late"), None);
    // The attribute view still serves it: its TTL reaches back 30 days.
    assert!(matches!(
        state.online().get(LAST, &key("late")),
        Some(OnlineEntry::Attributes(row)) if row.values[0] == Value::Float(7.0)
    ));
    let health = h.admin("/health").await;
    assert_eq!(health["online"]["events"], 0);
    assert_eq!(health["online"]["rows"], 1);
    assert_eq!(health["online"]["entities"], 1);
}

#[test]
fn an_attribute_row_goes_when_its_ttl_no_longer_serves_it() {
    let state = state();
    let ttl = 30 * DAY;
    let ts = NOW - ttl + MICROSECOND;
    state
        .apply_events("transactions", vec![event("u1", "a", 1.0, ts)])
        .unwrap();
    assert!(state.online().get(LAST, &key("u1")).is_some());
    // Served while now < ts + ttl: at exactly ts + ttl it is gone.
    state.clock().set(ts + ttl - 1);
    state.online().evict(state.clock().now());
    assert!(state.online().get(LAST, &key("u1")).is_some());
    state.clock().set(ts + ttl);
    state.online().evict(state.clock().now());
    assert!(state.online().get(LAST, &key("u1")).is_none());
    // A row pushed already expired is logged but not kept.
    state
        .apply_events("transactions", vec![event("u2", "b", 1.0, NOW - 2 * ttl)])
        .unwrap();
    assert!(state.online().get(LAST, &key("u2")).is_none());
    assert_eq!(state.offline().rows(0).unwrap().len(), 2);
}

/// Six simulated days, one event per user every 20 minutes, the clock moving with them and no
/// explicit eviction: writes sweep their shards, so the store holds about one longest window of
/// events, and online still equals offline at now.
#[test]
fn memory_levels_off_as_the_clock_moves_and_online_still_equals_offline() {
    let state = state();
    let users: Vec<String> = (0..40).map(|u| format!("u{u}")).collect();
    let steps = 6 * 24 * 3;
    let mut peak_after_warmup = 0;
    for step in 0..steps {
        let now = state.clock().advance(20 * MINUTE);
        let events = users.iter().enumerate().map(|(u, user)| {
            event(
                user,
                &format!("{step}-{u}"),
                (step * 7 + u) as f64,
                now - u as i64,
            )
        });
        state.apply_events("transactions", events).unwrap();
        if step >= 4 * 24 * 3 {
            peak_after_warmup = peak_after_warmup.max(state.online().stats().events);
        }
    }
    let stats = state.online().stats();
    assert_eq!(stats.entities, 3 * users.len(), "every user in every view");
    // 3d + 5 min of 20-minute events in the CONTINUOUS view, 1d + 10 min in the other, plus the
    // events of one sweep interval (1/64 of each reach: at most 4 and 2 per user).
    let bound = users.len()
        * ((3 * DAY + 5 * MINUTE) / (20 * MINUTE) + (DAY + 10 * MINUTE) / (20 * MINUTE) + 2 + 6)
            as usize;
    assert!(peak_after_warmup <= bound, "{peak_after_warmup} > {bound}");
    assert!(stats.estimated_bytes > 0);
    assert_eq!(state.offline().rows(0).unwrap().len(), steps * users.len());

    // The live (bounded) store serves at now what point-in-time retrieval over the whole
    // offline log gives.
    let now = state.clock().now();
    let points: Vec<SpineRow> = users
        .iter()
        .map(|u| SpineRow {
            join_keys: [("user_id".to_owned(), json!(u))].into_iter().collect(),
            timestamp: now,
        })
        .collect();
    let fs = state.repo().feature_service("fraud_detection").unwrap();
    let features = served_features(state.repo(), fs);
    let offline = offline_features(&state, &features, &points).unwrap();
    for (point, off) in points.iter().zip(&offline) {
        let on = online_vector(
            state.repo(),
            state.online(),
            &features,
            &point.join_keys,
            point.timestamp,
            UnknownEntity::EmptyWindow,
        )
        .unwrap();
        for (i, f) in features.iter().enumerate() {
            assert!(
                same(&on[i].value, &off[i].value),
                "{} for {:?}: online {:?} offline {:?}",
                f.name,
                point.join_keys,
                on[i].value,
                off[i].value
            );
        }
    }
}
