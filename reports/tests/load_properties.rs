//! Properties of the load reports over generated input: threshold expressions survive a round
//! trip through their canonical form and arbitrary text never panics the parser; any report,
//! however odd its numbers (NaN, infinities, negatives, zeros), renders all three files without a
//! panic, and no plot coordinate is NaN or infinite.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use proptest::prelude::*;
use reports::load::{
    evaluate, render_html, render_json, render_markdown, FreshnessMs, IntervalStats, LatencyMs,
    LoadReport, Pattern, ReportOptions, RunPoint, Threshold,
};

fn expression() -> impl Strategy<Value = String> {
    let pattern = prop::sample::select(vec!["push", "kafka", "sink"]);
    let metric = prop::sample::select(vec![
        ("latency.p50", "ms"),
        ("latency.p999", "s"),
        ("latency_uncorrected.max", "us"),
        ("freshness.p99", "ms"),
        ("errors.rate", "%"),
        ("errors.429.rate", ""),
        ("errors.count", ""),
        ("errors.timeout.count", ""),
        ("achieved_rate", "/s"),
        ("achieved_ratio", "%"),
        ("late_sends", ""),
        ("late_sends.rate", "%"),
        ("latency.p99.change", "%"),
    ]);
    let op = prop::sample::select(vec!["<", "<=", ">", ">=", "=="]);
    (pattern, metric, op, 0u32..100_000, 0u32..4).prop_map(|(p, (m, unit), op, n, decimals)| {
        let value = n as f64 / 10f64.powi(decimals as i32);
        format!("{p}.{m}{op}{value}{unit}")
    })
}

fn any_f64() -> impl Strategy<Value = f64> {
    prop_oneof![
        4 => 0.0..1e6f64,
        1 => Just(0.0),
        1 => Just(f64::NAN),
        1 => Just(f64::INFINITY),
        1 => -1e6..0.0f64,
    ]
}

fn latency() -> impl Strategy<Value = LatencyMs> {
    (any_f64(), any_f64(), any_f64(), any_f64(), any_f64()).prop_map(|(a, b, c, d, e)| LatencyMs {
        p50: a,
        p90: b,
        p99: c,
        p999: d,
        max: e,
    })
}

fn point() -> impl Strategy<Value = RunPoint> {
    let pattern = prop::option::of(prop::sample::select(vec![
        Pattern::Push,
        Pattern::Kafka,
        Pattern::Sink,
    ]));
    let freshness = prop::option::of((any_f64(), any_f64(), any_f64(), any_f64()).prop_map(
        |(a, b, c, d)| FreshnessMs {
            p50: a,
            p90: b,
            p99: c,
            max: d,
        },
    ));
    let intervals = prop::collection::vec(
        (any_f64(), 0u64..10_000, any_f64()).prop_map(|(t, n, l)| IntervalStats {
            t_s: t,
            records_sent: n,
            records_acknowledged: n / 2,
            errors: n / 10,
            latency_p99_ms: l,
        }),
        0..5,
    );
    (
        pattern,
        prop::sample::select(vec![0.0, 1.0, 100.0, 1000.0, 10_000.0, f64::NAN]),
        any_f64(),
        (0u64..1_000_000, 0u64..1_000_000, 0u64..1_000),
        latency(),
        latency(),
        freshness,
        intervals,
    )
        .prop_map(
            |(
                pattern,
                offered,
                achieved,
                (requests, records, errs),
                lat,
                unc,
                fresh,
                intervals,
            )| {
                let mut errors = BTreeMap::new();
                if errs > 0 {
                    errors.insert("429".to_owned(), errs);
                }
                RunPoint {
                    pattern,
                    offered_rate: offered,
                    achieved_rate: achieved,
                    duration_s: 10.0,
                    requests,
                    records_sent: records,
                    records_acknowledged: records / 2,
                    errors,
                    late_sends: errs,
                    latency_ms: lat,
                    latency_uncorrected_ms: unc,
                    freshness_ms: fresh,
                    intervals,
                }
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn thresholds_round_trip_through_their_canonical_form(s in expression()) {
        let t: Threshold = s.parse().unwrap();
        let canonical = t.to_string();
        let again: Threshold = canonical.parse().unwrap();
        prop_assert_eq!(again.to_string(), canonical);
        prop_assert_eq!((again.pattern, again.metric, again.op, again.change), (t.pattern, t.metric, t.op, t.change));
        prop_assert!((again.limit - t.limit).abs() <= 1e-6 * t.limit.abs().max(1.0));
    }

    #[test]
    fn arbitrary_text_never_panics_the_threshold_parser(s in "\\PC{0,40}") {
        let _ = s.parse::<Threshold>();
    }

    #[test]
    fn any_report_renders_without_panics_or_broken_coordinates(
        points in prop::collection::vec(point(), 0..7),
        thresholds in prop::collection::vec(expression(), 0..3),
    ) {
        let report = LoadReport {
            schema_version: reports::load::LOAD_SCHEMA_VERSION,
            tool_version: "0.1.0".into(),
            seed: 1,
            profile: "raw".into(),
            started_at: "2026-01-01T00:00:00Z".into(),
            points,
        };
        let thresholds: Vec<Threshold> = thresholds.iter().map(|t| t.parse().unwrap()).collect();
        let opts = ReportOptions {
            thresholds: evaluate(&report, &thresholds),
            comparison: Some(reports::load::compare(&report, &report)),
            ..ReportOptions::default()
        };
        let html = render_html(&report, &opts);
        for attr in ["points=\"", "cx=\"", "cy=\"", " x=\"", " y=\""] {
            for piece in html.split(attr).skip(1) {
                let value = &piece[..piece.find('"').unwrap()];
                prop_assert!(
                    !value.contains("NaN") && !value.contains("inf"),
                    "{}{}", attr, value
                );
            }
        }
        let _ = render_markdown(&report, &opts);
        let json: serde_json::Value = serde_json::from_str(&render_json(&report, &opts)).unwrap();
        prop_assert!(json.get("analysis").is_some());
    }
}
