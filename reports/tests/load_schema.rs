//! `report.json` against its published JSON Schema (`reports/schema/load-report.schema.json`).
//!
//! The schema uses a small part of JSON Schema 2020-12 (`type`, `properties`, `required`,
//! `additionalProperties`, `items`, `enum`, `const`, `minimum`, `exclusiveMinimum`, `anyOf`,
//! local `$ref`); this file checks exactly that part with a small validator instead of a
//! validator crate, whose dependency tree would cost more to compile than the whole reports
//! crate. The validator is itself tested: every mutation below must be rejected.
//!
//! What the tests prove:
//! - reports written by `write_all` (sweep, single point, with and without thresholds and a
//!   comparison, an empty report) conform, and so does the raw fixture without `analysis`;
//! - every object is closed (`additionalProperties: false`) and lists all its fields as
//!   `required` (except `analysis` and `comparison`), so a field added to the Rust types but not
//!   to the schema fails here;
//! - every property of the schema has a `description`;
//! - the schema's `schema_version` is the crate's `LOAD_SCHEMA_VERSION`;
//! - a reference validator (Python `jsonschema`, installed into `.venv` by
//!   `scripts/setup-python.sh`) accepts the schema as valid 2020-12 and agrees on a written
//!   report and on a broken one. When that interpreter is missing the test FAILS under `CI`
//!   and otherwise prints a `SKIPPED: ...` notice and passes.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::Command;

use reports::load::{
    compare, evaluate_with, parse_report, render_json, write_all, LoadReport, ReportOptions,
    RunPoint, Threshold, LOAD_REPORT_SCHEMA, LOAD_SCHEMA_VERSION,
};
use serde_json::Value;

const SWEEP: &str = include_str!("fixtures/two-pattern-sweep.json");

fn schema() -> Value {
    serde_json::from_str(LOAD_REPORT_SCHEMA).unwrap()
}

/// Checks `v` against `s`; returns every violation with its JSON path.
fn validate(root: &Value, s: &Value, v: &Value, path: &str, errs: &mut Vec<String>) {
    if let Some(r) = s.get("$ref").and_then(Value::as_str) {
        let name = r.strip_prefix("#/$defs/").expect("only local $defs refs");
        let target = &root["$defs"][name];
        assert!(!target.is_null(), "dangling $ref {r}");
        validate(root, target, v, path, errs);
    }
    if let Some(any) = s.get("anyOf").and_then(Value::as_array) {
        let ok = any.iter().any(|alt| {
            let mut e = Vec::new();
            validate(root, alt, v, path, &mut e);
            e.is_empty()
        });
        if !ok {
            errs.push(format!("{path}: matches no anyOf alternative"));
        }
    }
    if let Some(t) = s.get("type") {
        let types: Vec<&str> = match t {
            Value::String(t) => vec![t.as_str()],
            Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
            _ => panic!("bad type at {path}"),
        };
        let ok = types.iter().any(|t| match *t {
            "object" => v.is_object(),
            "array" => v.is_array(),
            "string" => v.is_string(),
            "boolean" => v.is_boolean(),
            "null" => v.is_null(),
            "number" => v.is_number(),
            "integer" => v.is_u64() || v.is_i64(),
            other => panic!("unknown type {other}"),
        });
        if !ok {
            errs.push(format!("{path}: {v} is not of type {types:?}"));
            return;
        }
    }
    if let Some(e) = s.get("enum").and_then(Value::as_array) {
        if !e.contains(v) {
            errs.push(format!("{path}: {v} not in {e:?}"));
        }
    }
    if let Some(c) = s.get("const") {
        if c != v {
            errs.push(format!("{path}: {v} is not {c}"));
        }
    }
    if let (Some(min), Some(n)) = (s.get("minimum").and_then(Value::as_f64), v.as_f64()) {
        if n < min {
            errs.push(format!("{path}: {n} < minimum {min}"));
        }
    }
    if let (Some(min), Some(n)) = (
        s.get("exclusiveMinimum").and_then(Value::as_f64),
        v.as_f64(),
    ) {
        if n <= min {
            errs.push(format!("{path}: {n} <= exclusiveMinimum {min}"));
        }
    }
    if let Some(obj) = v.as_object() {
        let props = s.get("properties").and_then(Value::as_object);
        if let Some(req) = s.get("required").and_then(Value::as_array) {
            for r in req.iter().filter_map(Value::as_str) {
                if !obj.contains_key(r) {
                    errs.push(format!("{path}: missing required `{r}`"));
                }
            }
        }
        for (k, val) in obj {
            let p = format!("{path}.{k}");
            match props.and_then(|ps| ps.get(k)) {
                Some(ps) => validate(root, ps, val, &p, errs),
                None => match s.get("additionalProperties") {
                    Some(Value::Bool(false)) => errs.push(format!("{p}: not in the schema")),
                    Some(extra @ Value::Object(_)) => validate(root, extra, val, &p, errs),
                    _ => {}
                },
            }
        }
    }
    if let (Some(items), Some(arr)) = (s.get("items"), v.as_array()) {
        for (i, item) in arr.iter().enumerate() {
            validate(root, items, item, &format!("{path}[{i}]"), errs);
        }
    }
}

fn violations(v: &Value) -> Vec<String> {
    let root = schema();
    let mut errs = Vec::new();
    validate(&root, &root, v, "$", &mut errs);
    errs
}

fn assert_valid(json: &str) {
    let v: Value = serde_json::from_str(json).unwrap();
    let errs = violations(&v);
    assert!(
        errs.is_empty(),
        "report.json violates its schema:\n{}",
        errs.join("\n")
    );
}

fn sweep() -> LoadReport {
    parse_report(SWEEP).unwrap()
}

fn full_options(report: &LoadReport) -> ReportOptions {
    let mut baseline = report.clone();
    baseline.points[0].freshness_ms = None;
    baseline.points.pop();
    let thresholds: Vec<Threshold> = [
        "push.freshness.p99<500ms",
        "kafka.latency.p99<=2s",
        "push.errors.rate<1%",
        "sink.achieved_rate>=900",
        "push.latency.p99.change<10%",
    ]
    .iter()
    .map(|t| t.parse().unwrap())
    .collect();
    let mut opts = ReportOptions {
        thresholds: evaluate_with(report, &thresholds, Some(&baseline)),
        comparison: Some(compare(&baseline, report)),
        ..ReportOptions::default()
    };
    // Given settings, as `--cost` and `--freshness-target` would set them.
    opts.set_cost("spark_cluster_usd_per_hour=4.2").unwrap();
    opts.set_criterion("freshness_target=3s").unwrap();
    opts
}

#[test]
fn written_reports_conform_to_the_schema() {
    let report = sweep();
    assert_valid(&render_json(&report, &ReportOptions::default()));
    assert_valid(&render_json(&report, &full_options(&report)));
    assert_valid(&render_json(
        &LoadReport::default(),
        &ReportOptions::default(),
    ));
    let single = LoadReport {
        points: vec![report.points[3].clone()],
        ..report.clone()
    };
    assert_valid(&render_json(&single, &ReportOptions::default()));
    // A point with nothing measured: no freshness, no requests, no pattern.
    let bare = LoadReport {
        points: vec![RunPoint::default()],
        ..report.clone()
    };
    assert_valid(&render_json(&bare, &ReportOptions::default()));
    // The file on disk, as write_all leaves it.
    let dir = tempfile::tempdir().unwrap();
    write_all(dir.path(), &report, &full_options(&report)).unwrap();
    assert_valid(&std::fs::read_to_string(dir.path().join("report.json")).unwrap());
}

#[test]
fn the_raw_data_without_analysis_conforms() {
    assert_valid(SWEEP);
}

#[test]
fn written_reports_read_back_as_the_same_data() {
    let report = sweep();
    let json = render_json(&report, &full_options(&report));
    assert_eq!(parse_report(&json).unwrap(), report);
}

/// A change that breaks a valid report.
type Mutation = Box<dyn Fn(&mut Value)>;

#[test]
fn the_validator_rejects_what_the_schema_forbids() {
    let good: Value =
        serde_json::from_str(&render_json(&sweep(), &full_options(&sweep()))).unwrap();
    let mutations: Vec<(&str, Mutation)> = vec![
        (
            "missing field",
            Box::new(|v| {
                v["points"][0].as_object_mut().unwrap().remove("late_sends");
            }),
        ),
        (
            "undocumented field",
            Box::new(|v| v["points"][0]["p95"] = 1.into()),
        ),
        (
            "wrong type",
            Box::new(|v| v["points"][0]["requests"] = "12".into()),
        ),
        (
            "negative count",
            Box::new(|v| v["points"][0]["requests"] = (-1).into()),
        ),
        (
            "unknown pattern",
            Box::new(|v| v["points"][0]["pattern"] = "kinesis".into()),
        ),
        (
            "bad error count",
            Box::new(|v| v["points"][0]["errors"]["429"] = 1.5.into()),
        ),
        (
            "wrong version",
            Box::new(|v| v["schema_version"] = 1.into()),
        ),
        (
            "unknown given cost parameter",
            Box::new(|v| v["analysis"]["given"]["cost_model"][0] = "spark".into()),
        ),
        (
            "bad freshness target",
            Box::new(|v| {
                v["analysis"]["recommendation"]["criteria"]["freshness_target_ms"] = "1s".into()
            }),
        ),
        (
            "bad freshness",
            Box::new(|v| v["points"][0]["freshness_ms"] = "fast".into()),
        ),
        (
            "bad choice",
            Box::new(|v| v["analysis"]["recommendation"]["bands"][0]["choice"] = "flink".into()),
        ),
        (
            "bad comparison",
            Box::new(|v| {
                v["analysis"]["comparison"]["points"][0]["metrics"][0]["regression"] = 1.into()
            }),
        ),
        (
            "bad interval",
            Box::new(|v| {
                v["points"][0]["intervals"][0]
                    .as_object_mut()
                    .unwrap()
                    .remove("t_s");
            }),
        ),
    ];
    assert!(violations(&good).is_empty());
    for (what, mutate) in mutations {
        let mut v = good.clone();
        mutate(&mut v);
        assert!(
            !violations(&v).is_empty(),
            "the validator accepted a {what}"
        );
    }
}

/// Every property schema, with its path.
fn properties<'a>(s: &'a Value, path: String, out: &mut Vec<(String, &'a Value)>) {
    if let Some(props) = s.get("properties").and_then(Value::as_object) {
        for (k, v) in props {
            out.push((format!("{path}.{k}"), v));
            properties(v, format!("{path}.{k}"), out);
        }
    }
    for key in ["items", "additionalProperties"] {
        if let Some(v) = s.get(key).filter(|v| v.is_object()) {
            out.push((format!("{path}.{key}"), v));
            properties(v, format!("{path}.{key}"), out);
        }
    }
}

#[test]
fn every_field_is_documented_and_every_object_closed() {
    let root = schema();
    let mut all = Vec::new();
    properties(&root, "$".into(), &mut all);
    for (name, def) in root["$defs"].as_object().unwrap() {
        assert!(
            def.get("description").is_some(),
            "$defs.{name} has no description"
        );
        properties(def, format!("$defs.{name}"), &mut all);
    }
    assert!(all.len() > 100, "only {} properties found", all.len());
    for (path, s) in &all {
        let is_item_ref = path.ends_with(".items") && s.get("$ref").is_some();
        assert!(
            is_item_ref || s.get("description").and_then(Value::as_str).is_some(),
            "{path} has no description"
        );
        if s.get("properties").is_some() {
            assert_eq!(
                s.get("additionalProperties"),
                Some(&Value::Bool(false)),
                "{path} is not closed"
            );
            let required: Vec<&str> = s["required"]
                .as_array()
                .map(|r| r.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            for key in s["properties"].as_object().unwrap().keys() {
                if key != "analysis" && key != "comparison" {
                    assert!(
                        required.contains(&key.as_str()),
                        "{path}.{key} is not required"
                    );
                }
            }
        }
    }
    assert_eq!(
        root["properties"]["schema_version"]["const"],
        Value::from(LOAD_SCHEMA_VERSION)
    );
}

/// `.venv/bin/python` with `jsonschema`, or `None` after a skip notice where skipping is allowed.
fn reference_python() -> Option<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let python = root.join(".venv/bin/python");
    let usable = Command::new(&python)
        .args(["-c", "import jsonschema"])
        .output()
        .is_ok_and(|o| o.status.success());
    if usable {
        return Some(python);
    }
    let msg = format!(
        "{} with jsonschema is missing; run scripts/setup-python.sh",
        python.display()
    );
    if std::env::var_os("CI").is_some() {
        panic!("{msg} (required when CI is set)");
    }
    eprintln!("SKIPPED: load_schema reference validator: {msg}");
    None
}

/// Prints one line per file: the number of violations the reference validator finds.
const CHECK: &str = r#"
import json, sys
from jsonschema import Draft202012Validator as V
schema = json.load(open(sys.argv[1]))
V.check_schema(schema)
for path in sys.argv[2:]:
    print(len(list(V(schema).iter_errors(json.load(open(path))))))
"#;

#[test]
fn a_reference_validator_agrees() {
    let Some(python) = reference_python() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let report = sweep();
    write_all(dir.path(), &report, &full_options(&report)).unwrap();
    let good = dir.path().join("report.json");
    let mut broken: Value = serde_json::from_str(&std::fs::read_to_string(&good).unwrap()).unwrap();
    broken["points"][2]["latency_ms"]["p99"] = "slow".into();
    let bad = dir.path().join("broken.json");
    std::fs::write(&bad, broken.to_string()).unwrap();
    let schema = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("schema/load-report.schema.json");
    let out = Command::new(python)
        .arg("-B")
        .arg("-c")
        .arg(CHECK)
        .args([&schema, &good, &bad])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "reference validator failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let counts = String::from_utf8(out.stdout).unwrap();
    let counts: Vec<&str> = counts.lines().collect();
    assert_eq!(
        counts,
        ["0", "1"],
        "violations found in (report.json, broken.json)"
    );
    assert!(
        !violations(&broken).is_empty(),
        "the local validator agrees on the broken file"
    );
}
