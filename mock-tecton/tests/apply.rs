//! The in-process ingest path writes what `/ingest` writes for the same records, and refuses
//! malformed events without writing anything.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use mock_tecton::ingest::{handle_body, Dialect, Event, UnknownSource, NO_REQUEST};
use mock_tecton::schema::{validate_record, Value};
use mock_tecton::state::MockState;
use mock_tecton::Config;

fn state() -> MockState {
    MockState::new(&Config::default().virtual_clock(NOW))
}

fn records() -> Vec<serde_json::Value> {
    (0..30)
        .map(|i| {
            let ts = mock_tecton::schema::format_rfc3339(NOW - (i % 7) * 3_600_000_000_000 - i);
            txn(
                &format!("u{}", i % 4),
                &format!("t{i}"),
                i as f64 * 1.5,
                &ts,
            )
        })
        .collect()
}

#[test]
fn applied_events_reach_the_stores_as_ingested_records_do() {
    let (http, applied) = (state(), state());
    let account = http
        .repo()
        .account_for_key("demo-editor-key")
        .unwrap()
        .clone();
    for (i, chunk) in records().chunks(10).enumerate() {
        let body = batch(false, chunk.to_vec()).to_string();
        handle_body(
            &http.ingest_context(i as u64),
            &account,
            Dialect::V1,
            body.as_bytes(),
        )
        .unwrap();
    }
    let schema = &applied.repo().push_sources[0].schema;
    let events: Vec<Event> = records()
        .iter()
        .map(|r| {
            let record = r["record"].as_object().unwrap();
            Event::new(validate_record(schema, record).unwrap())
        })
        .collect();
    let done = applied.apply_events("transactions", events).unwrap();
    assert_eq!((done.events, done.skipped), (30, 0));

    for view in 0..http.repo().feature_views.len() {
        assert_eq!(
            format!("{:?}", http.online().dump(view)),
            format!("{:?}", applied.online().dump(view)),
            "view {view}"
        );
    }
    let (a, b) = (
        http.offline().rows(0).unwrap(),
        applied.offline().rows(0).unwrap(),
    );
    assert_eq!(a.len(), 30);
    for (x, y) in a.iter().zip(&b) {
        assert_eq!((x.seq, x.ts, &x.values), (y.seq, y.ts, &y.values));
        assert_eq!(y.request, NO_REQUEST);
    }
    assert!(
        applied.journal().entries(0, usize::MAX).is_empty(),
        "no exchange"
    );
}

#[test]
fn malformed_events_are_skipped_and_counted_and_unknown_sources_refused() {
    let state = state();
    let good = vec![
        Value::String("u1".into()),
        Value::String("t1".into()),
        Value::String("acme".into()),
        Value::Float(1.0),
        Value::Int(0),
        Value::Timestamp(NOW - 1),
    ];
    let mut short = good.clone();
    short.pop();
    let mut no_time = good.clone();
    no_time[5] = Value::Null;
    let done = state
        .apply_events(
            "transactions",
            [good, short, no_time].into_iter().map(Event::new),
        )
        .unwrap();
    assert_eq!((done.events, done.skipped), (1, 2));
    assert_eq!(state.offline().rows(0).unwrap().len(), 1);
    assert_eq!(
        state.applier("nope").unwrap_err(),
        UnknownSource("nope".into())
    );
}
