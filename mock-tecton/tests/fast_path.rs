//! The ingest fast path (bytes straight to typed values) answers exactly as the full path
//! (JSON tree, envelope, schema validation): the same success or error body, byte for byte,
//! and the same stores afterwards, for valid bodies and for nearly valid ones.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use mock_tecton::ingest::{handle_body, handle_body_slowly, handle_fast, Dialect};
use mock_tecton::state::MockState;
use mock_tecton::Config;
use proptest::prelude::*;

fn state() -> MockState {
    MockState::new(&Config::default().virtual_clock(NOW))
}

/// One field of a generated record: a valid value most of the time, else something the schema
/// refuses or the fast path leaves to the full path.
fn arb_field(name: &'static str) -> impl Strategy<Value = Option<String>> {
    let valid: BoxedStrategy<String> = match name {
        "user_id" | "transaction_id" | "merchant" => prop_oneof![
            "[a-z0-9]{1,6}".prop_map(|s| format!("\"{s}\"")),
            Just("\"esc\\u00e9\\n\"".to_owned()),
        ]
        .boxed(),
        "amt" => prop_oneof![
            (-1.0e6..1.0e6f64).prop_map(|f| f.to_string()),
            any::<i64>().prop_map(|i| i.to_string()),
            Just("18446744073709551616".to_owned()),
            Just("-0".to_owned()),
            Just("1e2".to_owned()),
            Just("null".to_owned()),
        ]
        .boxed(),
        "is_fraud" => prop_oneof![
            (-5..5i64).prop_map(|i| i.to_string()),
            Just("9223372036854775808".to_owned()),
            Just("1.0".to_owned()),
            Just("null".to_owned()),
        ]
        .boxed(),
        _ => prop_oneof![
            (0..40 * 86_400i64).prop_map(|s| format!(
                "\"{}\"",
                mock_tecton::schema::format_rfc3339(NOW - s * 1_000_000_000)
            )),
            Just("\"2024-05-31T23:00:00.123456789+02:00\"".to_owned()),
            Just("\"yesterday\"".to_owned()),
        ]
        .boxed(),
    };
    prop_oneof![
        60 => valid.prop_map(Some),
        1 => Just(None),
        1 => prop_oneof![
            Just("[1]".to_owned()),
            Just("{\"a\":1}".to_owned()),
            Just("true".to_owned()),
            Just("\"7\"".to_owned()),
            Just("null".to_owned()),
        ]
        .prop_map(Some),
    ]
}

const FIELDS: [&str; 6] = [
    "user_id",
    "transaction_id",
    "merchant",
    "amt",
    "is_fraud",
    "timestamp",
];

fn arb_record() -> impl Strategy<Value = String> {
    (
        FIELDS.map(arb_field),
        prop::sample::select(vec![
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            ",\"extra\":1",
            ",\"amt\":2",
        ]),
        any::<bool>(),
    )
        .prop_map(|(fields, tail, reverse)| {
            let mut parts: Vec<String> = FIELDS
                .iter()
                .zip(fields)
                .filter_map(|(n, v)| v.map(|v| format!("\"{n}\":{v}")))
                .collect();
            if reverse {
                parts.reverse();
            }
            format!("{{{}{tail}}}", parts.join(","))
        })
}

fn arb_body() -> impl Strategy<Value = (Dialect, String)> {
    (
        any::<bool>(),
        prop::collection::vec((arb_record(), 0..12u8), 0..8),
        prop::sample::select(vec![
            "prod", "prod", "prod", "prod", "prod", "prod", "nope", "",
        ]),
        prop::sample::select(vec!["false", "false", "false", "false", "true", "0"]),
        prop::sample::select(
            vec!["transactions"; 7]
                .into_iter()
                .chain(["other"])
                .collect::<Vec<_>>(),
        ),
        prop::sample::select(vec![
            "",
            "",
            "",
            "",
            "",
            "",
            ",\"extra\":1",
            ",\"dry_run\":false",
        ]),
    )
        .prop_map(|(v2, records, ws, dry, source, tail)| {
            let dialect = if v2 { Dialect::V2 } else { Dialect::V1 };
            let items: Vec<String> = records
                .into_iter()
                .map(|(r, wrap)| match (wrap, v2) {
                    // v2 also takes bare records; a second key makes a wrapper a bare record.
                    (0, true) => r,
                    (1, _) => format!("{{\"record\":{r},\"x\":1}}"),
                    _ => format!("{{\"record\":{r}}}"),
                })
                .collect();
            let (w, d, rec) = if v2 {
                ("workspaceName", "dryRun", "records")
            } else {
                ("workspace_name", "dry_run", "records")
            };
            let tail = tail.replace("dry_run", d);
            (
                dialect,
                format!(
                    "{{\"{rec}\":{{\"{source}\":[{}]}},\"{w}\":\"{ws}\",\"{d}\":{dry}{tail}}}",
                    items.join(",")
                ),
            )
        })
}

/// What a mock holds after a request, comparable across two mocks.
fn stores(state: &MockState) -> String {
    let online: Vec<String> = (0..state.repo().feature_views.len())
        .map(|v| format!("{:?}", state.online().dump(v)))
        .collect();
    format!("{online:?}\n{:?}", state.offline().rows(0).unwrap())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 600, ..ProptestConfig::default() })]

    #[test]
    fn the_fast_path_answers_as_the_full_path(bodies in prop::collection::vec(arb_body(), 1..4)) {
        let (fast, full) = (state(), state());
        let account = fast.repo().account_for_key("demo-editor-key").unwrap().clone();
        for (i, (dialect, body)) in bodies.iter().enumerate() {
            let answer = |state: &MockState, slow: bool| {
                let mut ctx = state.ingest_context(i as u64);
                ctx.records_per_source = 10;
                let r = if slow {
                    handle_body_slowly(&ctx, &account, *dialect, body.as_bytes())
                } else {
                    handle_body(&ctx, &account, *dialect, body.as_bytes())
                };
                match r {
                    Ok(ok) => (200, serde_json::to_string(&ok).unwrap()),
                    Err(e) => (e.status().as_u16(), e.body().to_string()),
                }
            };
            let (a, b) = (answer(&fast, false), answer(&full, true));
            prop_assert_eq!(&a, &b, "body {}", body);
            prop_assert_eq!(stores(&fast), stores(&full), "body {}", body);
        }
    }
}

/// The generator reaches the fast path, not only the fallback.
#[test]
fn valid_bodies_take_the_fast_path() {
    let state = state();
    let account = state
        .repo()
        .account_for_key("demo-editor-key")
        .unwrap()
        .clone();
    let ctx = state.ingest_context(0);
    let body = batch(false, vec![txn("u1", "a", 1.5, "2024-05-31T23:00:00Z")]).to_string();
    assert!(handle_fast(&ctx, &account, Dialect::V1, body.as_bytes()).is_some());
    let bad = body.replace("1.5", "\"1.5\"");
    assert!(handle_fast(&ctx, &account, Dialect::V1, bad.as_bytes()).is_none());
    assert_eq!(
        state.offline().rows(0).unwrap().len(),
        1,
        "the refused body wrote nothing"
    );
}
