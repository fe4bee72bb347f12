//! Hostile and generated input: every body gets a Tecton-format answer and never a panic, and
//! every acknowledged record is kept.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use mock_tecton::ingest::{handle_body, Dialect, IngestError};
use mock_tecton::state::MockState;
use mock_tecton::store::OnlineEntry;
use mock_tecton::Config;
use proptest::prelude::*;
use serde_json::{json, Value};

fn request_error_message(body: &Value) -> &str {
    body["requestError"]["errorMessage"]
        .as_str()
        .unwrap_or_else(|| panic!("not a requestError: {body}"))
}

#[tokio::test]
async fn each_kind_of_hostile_body_gets_a_clear_400() {
    let h = demo().await;
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let huge_number = r#"{"workspace_name":"prod","dry_run":false,"records":{"transactions":[{"record":{"user_id":"u","transaction_id":"t","merchant":"m","amt":1e999,"is_fraud":0,"timestamp":"2024-05-31T00:00:00Z"}}]}}"#;
    let huge_int = r#"{"workspace_name":"prod","dry_run":false,"records":{"transactions":[{"record":{"user_id":"u","transaction_id":"t","merchant":"m","amt":1,"is_fraud":99999999999999999999999,"timestamp":"2024-05-31T00:00:00Z"}}]}}"#;
    let duplicate = r#"{"workspace_name":"prod","dry_run":true,"dry_run":false,"records":{}}"#;
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("invalid UTF-8", b"{\"workspace_name\": \"\xff\xfe\"}".to_vec(), "not valid UTF-8"),
        ("deep nesting", deep.into_bytes(), "nested too deeply"),
        ("huge float", huge_number.as_bytes().to_vec(), "number out of range"),
        ("duplicate keys", duplicate.as_bytes().to_vec(), "duplicate key `dry_run`"),
        ("empty body", Vec::new(), "body is empty"),
        ("not an object", b"[1,2,3]".to_vec(), "must be a JSON object"),
        ("records not an object", br#"{"workspace_name":"prod","dry_run":false,"records":[]}"#.to_vec(), "must be an object"),
        ("unwrapped v1 record", br#"{"workspace_name":"prod","dry_run":false,"records":{"transactions":[{"user_id":"u"}]}}"#.to_vec(), "{\"record\": {...}}"),
        ("dry_run as string", br#"{"workspace_name":"prod","dry_run":"false","records":{}}"#.to_vec(), "`dry_run` must be a boolean"),
        ("unknown field", br#"{"workspace_name":"prod","dry_run":false,"records":{},"dryRun":true}"#.to_vec(), "Unknown field `dryRun`"),
    ];
    for (what, bytes, needle) in cases {
        let (status, body) = h.post_raw("/ingest", Some("demo-editor-key"), bytes).await;
        assert_eq!(status, 400, "{what}: {body}");
        assert_eq!(
            body["requestError"]["errorType"], "RequestValidationError",
            "{what}"
        );
        assert!(
            request_error_message(&body).contains(needle),
            "{what}: {body}"
        );
    }
    // A huge integer is valid JSON (a float), but not an Int64: a record error, not a crash.
    let (status, body) = h
        .post_raw("/ingest", Some("demo-editor-key"), huge_int)
        .await;
    assert_eq!(status, 400);
    assert!(
        body["recordErrors"][0]["errorMessage"]
            .as_str()
            .unwrap()
            .contains("expected Int64"),
        "{body}"
    );
    // NaN spelled as a string is refused for Float64 fields (see decisions::ingest_float).
    let nan = json!({"record": {"user_id": "u", "transaction_id": "t", "merchant": "m", "amt": "NaN", "is_fraud": 0, "timestamp": "2024-05-31T00:00:00Z"}});
    let (status, body) = h.ingest("demo-editor-key", &batch(false, vec![nan])).await;
    assert_eq!(status, 400);
    assert!(body["recordErrors"][0]["errorMessage"]
        .as_str()
        .unwrap()
        .contains("expected Float64, got string \"NaN\""));
    // The mock is still healthy after all of it.
    assert_eq!(h.admin("/health").await["status"], "ok");
}

fn demo_state() -> MockState {
    MockState::new(&Config::default().virtual_clock(NOW))
}

fn run(state: &MockState, bytes: &[u8]) -> Result<(), IngestError> {
    let account = state.repo().account_for_key("demo-editor-key").unwrap();
    handle_body(&state.ingest_context(0), account, Dialect::V1, bytes).map(|_| ())
}

/// JSON values shaped a bit like ingest bodies, with wrong types in every position.
fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        "[a-z_]{0,12}".prop_map(Value::from),
        Just(json!("2024-05-31T00:00:00Z")),
        Just(json!("prod")),
        Just(json!("transactions")),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("workspace_name".to_owned()),
                    Just("dry_run".to_owned()),
                    Just("records".to_owned()),
                    Just("record".to_owned()),
                    Just("transactions".to_owned()),
                    Just("user_id".to_owned()),
                    Just("amt".to_owned()),
                    Just("timestamp".to_owned()),
                    "[a-z]{1,8}",
                ],
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn garbage_bytes_get_a_tecton_error_never_a_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let state = demo_state();
        if let Err(e) = run(&state, &bytes) {
            prop_assert!(matches!(e.status().as_u16(), 400 | 404));
            let body = e.body();
            prop_assert!(body.get("requestError").is_some() || body.get("recordErrors").is_some());
        }
    }

    #[test]
    fn generated_json_gets_a_tecton_answer(value in arb_json()) {
        let state = demo_state();
        let bytes = serde_json::to_vec(&value).unwrap();
        match run(&state, &bytes) {
            Ok(()) => {}
            Err(e) => {
                prop_assert!(matches!(e.status().as_u16(), 400 | 403 | 404), "{e:?}");
                let body = e.body();
                prop_assert!(body.get("requestError").is_some() || body.get("recordErrors").is_some());
            }
        }
    }

    /// Valid records in random batches: every acknowledged record is in the offline log in
    /// order, and the online attribute row of each user is the last one pushed.
    #[test]
    fn acknowledged_records_are_never_lost(
        batches in prop::collection::vec(
            prop::collection::vec((0..5u8, -1.0e6..1.0e6f64, 0..86_400i64), 1..=10),
            1..12,
        )
    ) {
        let state = demo_state();
        let mut sent = Vec::new();
        for (b, batch_records) in batches.iter().enumerate() {
            let records: Vec<Value> = batch_records.iter().enumerate().map(|(i, (user, amt, secs))| {
                let ts = mock_tecton::schema::format_rfc3339(NOW - (secs + 1) * 1_000_000_000);
                txn(&format!("u{user}"), &format!("b{b}r{i}"), *amt, &ts)
            }).collect();
            let bytes = serde_json::to_vec(&batch(false, records)).unwrap();
            prop_assert!(run(&state, &bytes).is_ok());
            sent.extend(batch_records.iter().enumerate().map(|(i, (user, amt, _))| (format!("b{b}r{i}"), *user, *amt)));
        }
        let rows = state.offline().rows(0).unwrap();
        let logged: Vec<String> = rows.iter().map(|r| match &r.values[1] {
            mock_tecton::schema::Value::String(s) => s.to_string(),
            other => panic!("transaction_id is a string, got {other:?}"),
        }).collect();
        let expected: Vec<String> = sent.iter().map(|(id, _, _)| id.clone()).collect();
        prop_assert_eq!(logged, expected);
        let attr_view = state.repo().feature_views.iter().position(|v| v.name == "user_last_transaction").unwrap();
        for user in 0..5u8 {
            let last = sent.iter().rev().find(|(_, u, _)| *u == user);
            let key = mock_tecton::store::EntityKey(vec![mock_tecton::store::KeyPart::Str(format!("u{user}"))]);
            match (last, state.online().get(attr_view, &key)) {
                (None, None) => {}
                (Some((_, _, amt)), Some(OnlineEntry::Attributes(row))) => {
                    prop_assert_eq!(&row.values[0], &mock_tecton::schema::Value::Float(*amt));
                }
                (l, o) => prop_assert!(false, "user u{user}: sent {l:?}, online {o:?}"),
            }
        }
    }
}
