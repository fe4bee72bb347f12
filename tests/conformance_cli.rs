//! `tecton-sim conformance` and `tecton-sim scenarios` as a user runs them: the installed
//! binary, from a directory outside the repository, with the reports it writes read back as a
//! machine would (the JSON against its published schema, the JUnit XML with an XML parser).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

use serde_json::Value as Json;

mod support;
use support::{bin, outside, text};

/// Whether `python3` runs; without it the test is skipped with a notice, except under CI.
fn python_available(test: &str) -> bool {
    let ok = Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "{test}: python3 is required under CI"
        );
        eprintln!("SKIPPED: {test}: python3 is not installed");
    }
    ok
}

/// The example Python sink with one change: any 200 counts as an acknowledgement, as most HTTP
/// clients do. It batches, keeps order, times out and retries transient failures correctly.
fn trusting_sink(dir: &Path) -> String {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/python-sink/sink.py");
    let source = std::fs::read_to_string(example).unwrap();
    let check = "if status == 200 and is_success_body(payload):";
    assert!(source.contains(check), "the example sink changed shape");
    let path = dir.join("trusting_sink.py");
    std::fs::write(&path, source.replace(check, "if status == 200:")).unwrap();
    format!("python3 {}", path.display())
}

#[test]
fn a_sink_that_trusts_a_200_passes_the_whole_suite_with_one_warning_from_any_directory() {
    if !python_available("trusting sink suite") {
        return;
    }
    let dir = outside("trusting");
    let sink = trusting_sink(&dir);
    let out = bin(&dir)
        .args(["conformance", "--sink", &sink])
        .args([
            "--json",
            "out/report.json",
            "--junit",
            "out/report.xml",
            "--report",
            "out/report.md",
        ])
        .output()
        .unwrap();
    let said = text(&out);
    assert_eq!(out.status.code(), Some(0), "{said}");
    // The warning's explanation is on stdout, once, in the per-check summary.
    assert!(
        said.contains("WARN ack_body in 1 scenario run(s): garbage-response (seed 1)"),
        "{said}"
    );
    assert!(
        said.contains("a 200 whose body is not Tecton's success body"),
        "{said}"
    );
    assert!(!said.contains("FAIL"), "{said}");
    // Stdout is not a terminal here: no escape sequences, nothing a terminal would act on.
    assert!(!out.stdout.contains(&0x1b), "escape codes on stdout");
    assert!(!out.stderr.contains(&0x1b), "escape codes on stderr");

    let json: Json =
        serde_json::from_str(&std::fs::read_to_string(dir.join("out/report.json")).unwrap())
            .unwrap();
    let schema_path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("reports/schema/conformance-report.schema.json");
    let schema: Json =
        serde_json::from_str(&std::fs::read_to_string(schema_path).unwrap()).unwrap();
    let errors = schema_check::validate(&schema, &json);
    assert!(
        errors.is_empty(),
        "the report breaks its schema:\n{}",
        errors.join("\n")
    );
    assert_eq!(json["verdict"], "warn");
    assert_eq!(json["exit_code"], 0);
    assert_eq!(json["base_seed"], 1);
    assert_eq!(json["tool_version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(json["totals"]["scenarios"]["fail"], 0);
    assert_eq!(json["totals"]["scenarios"]["warn"], 1);
    assert!(json["totals"]["scenario_runs"].as_u64().unwrap() >= 23);
    let garbage = json["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "garbage-response")
        .unwrap();
    assert_eq!(garbage["sink_exit"], 0);
    let ack = garbage["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "ack_body")
        .unwrap();
    assert_eq!(ack["verdict"], "warn");
    let evidence = &ack["evidence"][0];
    assert_eq!(evidence["status"], 200);
    assert_eq!(evidence["outcome"], "responded");
    assert!(evidence["seq"].is_u64() && evidence["at_ms"].is_number());
    assert_eq!(evidence["records"].as_array().unwrap().len(), 10);

    let xml = std::fs::read_to_string(dir.join("out/report.xml")).unwrap();
    let cases = junit::cases(&xml);
    assert!(cases.len() > 23 * 12, "{} test cases", cases.len());
    assert!(
        cases.iter().all(|c| c.failure.is_none()),
        "no failure without --deny-warnings"
    );
    assert!(cases
        .iter()
        .any(|c| c.name == "ack_body" && c.system_out.contains("WARN: ")));
}

#[test]
fn deny_warnings_fails_the_run_and_junit_says_what_went_wrong() {
    if !python_available("deny warnings") {
        return;
    }
    let dir = outside("deny");
    let sink = trusting_sink(&dir);
    let out = bin(&dir)
        .args([
            "conformance",
            "--sink",
            &sink,
            "--scenario",
            "garbage-response",
        ])
        .args([
            "--deny-warnings",
            "--junit",
            "j.xml",
            "--json",
            "r.json",
            "--journal",
            "journals",
        ])
        .output()
        .unwrap();
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains("FAIL ack_body"), "{said}");
    assert!(said.contains("--deny-warnings"), "{said}");
    let xml = std::fs::read_to_string(dir.join("j.xml")).unwrap();
    let failed: Vec<junit::Case> = junit::cases(&xml)
        .into_iter()
        .filter(|c| c.failure.is_some())
        .collect();
    assert_eq!(failed.len(), 1, "{xml}");
    let message = failed[0].failure.clone().unwrap();
    assert!(
        message.contains("2 answer(s) were a 200 whose body is not Tecton's"),
        "{message}"
    );
    assert_ne!(
        message, "Only Tecton's success body acknowledges",
        "the title is not a reason"
    );
    let json: Json =
        serde_json::from_str(&std::fs::read_to_string(dir.join("r.json")).unwrap()).unwrap();
    assert_eq!(json["exit_code"], 1);
    assert_eq!(json["deny_warnings"], true);
    // --journal wrote the failing run's journal: the two garbage answers are in it.
    let journal: Json = serde_json::from_str(
        &std::fs::read_to_string(dir.join("journals/garbage-response-seed1.journal.json")).unwrap(),
    )
    .unwrap();
    let faults = journal
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["fault"].as_str().is_some_and(|f| f.contains("garbage")))
        .count();
    assert_eq!(faults, 2);
}

#[test]
fn scenarios_are_built_in_listed_shown_and_checked() {
    let dir = outside("scenarios");
    let out = bin(&dir).args(["scenarios", "list"]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let list = String::from_utf8_lossy(&out.stdout);
    assert_eq!(list.lines().count(), 23, "{list}");
    assert!(list.lines().all(|l| l.ends_with("[built-in]")), "{list}");

    let out = bin(&dir)
        .args(["scenarios", "show", "throttled-429"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(shown.contains("status = 429"), "{shown}");

    // A directory adds scenarios and replaces a built-in one of the same name.
    let mine = dir.join("mine");
    std::fs::create_dir_all(&mine).unwrap();
    std::fs::write(
        mine.join("success.toml"),
        "description = \"my own success\"\n[input]\ncount = 3\n[expect]\noutcome = \"success\"\n",
    )
    .unwrap();
    std::fs::write(
        mine.join("tiny.toml"),
        "description = \"tiny\"\n[input]\ncount = 1\n[expect]\noutcome = \"success\"\n",
    )
    .unwrap();
    let out = bin(&dir)
        .args(["scenarios", "list"])
        .env("TECTON_SIM_SCENARIOS", &mine)
        .output()
        .unwrap();
    let list = String::from_utf8_lossy(&out.stdout);
    assert_eq!(list.lines().count(), 24, "{list}");
    assert!(list.contains("my own success"), "{list}");
    assert!(list.lines().any(|l| l.starts_with("tiny")), "{list}");

    // `check` lints files without a sink; a bad one names the field and fails.
    std::fs::write(
        mine.join("broken.toml"),
        "description = \"x\"\n[input]\ncount = 3\n[hints]\nbatch_size = 0\n[expect]\noutcome = \"success\"\n",
    )
    .unwrap();
    let out = bin(&dir)
        .args(["scenarios", "check"])
        .arg(&mine)
        .output()
        .unwrap();
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains("broken.toml: `hints.batch_size`: must be at least 1"),
        "{said}"
    );
    assert!(
        said.contains("3 scenario file(s), 2 valid, 1 invalid"),
        "{said}"
    );
}

#[test]
fn an_invalid_scenario_is_reported_once_and_bad_flags_get_a_human_message() {
    let dir = outside("invalid");
    let mine = dir.join("mine");
    std::fs::create_dir_all(&mine).unwrap();
    std::fs::write(
        mine.join("broken.toml"),
        "description = \"x\"\n[input]\ncount = 3\n[hints]\nbatch_size = 0\n[expect]\noutcome = \"success\"\n",
    )
    .unwrap();
    let out = bin(&dir)
        .args([
            "conformance",
            "--sink",
            "true",
            "--scenario",
            "broken",
            "--runs",
            "3",
        ])
        .arg("--scenarios")
        .arg(&mine)
        .output()
        .unwrap();
    let said = text(&out);
    assert_eq!(out.status.code(), Some(2), "{said}");
    assert_eq!(
        said.matches("must be at least 1").count(),
        1,
        "the error once:\n{said}"
    );
    assert_eq!(said.matches("ERROR broken (seed ").count(), 3, "{said}");

    let out = bin(&dir)
        .args(["conformance", "--sink", "true", "--runs", "0"])
        .output()
        .unwrap();
    let said = text(&out);
    assert_eq!(out.status.code(), Some(2), "{said}");
    assert!(said.contains("must be at least 1"), "{said}");

    let out = bin(&dir)
        .args(["conformance", "--sink", "true", "--scenarios", "nope"])
        .output()
        .unwrap();
    let said = text(&out);
    assert_eq!(out.status.code(), Some(2), "{said}");
    assert!(said.contains("nope: cannot read the directory"), "{said}");
}

/// A JUnit reader: every `<testcase>` with its failure message and system-out.
mod junit {
    use quick_xml::events::Event;
    use quick_xml::Reader;

    #[derive(Debug, Clone, Default)]
    pub(crate) struct Case {
        pub name: String,
        pub failure: Option<String>,
        pub system_out: String,
    }

    pub(crate) fn cases(xml: &str) -> Vec<Case> {
        let mut reader = Reader::from_str(xml);
        let mut out: Vec<Case> = Vec::new();
        let mut in_out = false;
        loop {
            match reader.read_event().expect("well-formed XML") {
                Event::Start(e) | Event::Empty(e) if e.name().as_ref() == b"testcase" => {
                    let name = attr(&e, b"name").unwrap_or_default();
                    out.push(Case {
                        name,
                        ..Case::default()
                    });
                }
                Event::Start(e) | Event::Empty(e) if e.name().as_ref() == b"failure" => {
                    if let Some(c) = out.last_mut() {
                        c.failure = Some(attr(&e, b"message").unwrap_or_default());
                    }
                }
                Event::Start(e) if e.name().as_ref() == b"system-out" => in_out = true,
                Event::End(e) if e.name().as_ref() == b"system-out" => in_out = false,
                Event::Text(t) if in_out => {
                    if let Some(c) = out.last_mut() {
                        c.system_out.push_str(&t.decode().unwrap_or_default());
                    }
                }
                Event::Eof => break,
                _ => {}
            }
        }
        out
    }

    fn attr(e: &quick_xml::events::BytesStart<'_>, key: &[u8]) -> Option<String> {
        e.attributes()
            .flatten()
            .find(|a| a.key.as_ref() == key)
            .and_then(|a| a.unescape_value().ok().map(|v| v.into_owned()))
    }
}

/// A validator for the JSON Schema keywords the report's schema uses (`type`, `const`,
/// `enum`, `required`, `properties`, `additionalProperties: false`, `items`, `minItems`,
/// `minimum`, `maximum`, `oneOf`, local `$ref`). An unknown keyword is an error, so the schema
/// cannot silently outgrow this check.
mod schema_check {
    use serde_json::Value as Json;

    const KNOWN: [&str; 17] = [
        "$schema",
        "$id",
        "$defs",
        "title",
        "description",
        "type",
        "const",
        "enum",
        "required",
        "properties",
        "additionalProperties",
        "items",
        "minItems",
        "minimum",
        "maximum",
        "oneOf",
        "$ref",
    ];

    pub(crate) fn validate(schema: &Json, doc: &Json) -> Vec<String> {
        let mut errors = Vec::new();
        check(schema, schema, doc, "$", &mut errors);
        errors
    }

    fn type_ok(t: &str, v: &Json) -> bool {
        match t {
            "object" => v.is_object(),
            "array" => v.is_array(),
            "string" => v.is_string(),
            "integer" => v.is_i64() || v.is_u64(),
            "number" => v.is_number(),
            "boolean" => v.is_boolean(),
            "null" => v.is_null(),
            _ => false,
        }
    }

    fn check(root: &Json, s: &Json, v: &Json, at: &str, errors: &mut Vec<String>) {
        let Some(s) = s.as_object() else {
            errors.push(format!("{at}: schema is not an object"));
            return;
        };
        for k in s.keys() {
            if !KNOWN.contains(&k.as_str()) {
                errors.push(format!("{at}: unsupported schema keyword `{k}`"));
            }
        }
        if let Some(r) = s.get("$ref").and_then(Json::as_str) {
            let target = r
                .strip_prefix("#/$defs/")
                .and_then(|name| root["$defs"].get(name));
            match target {
                Some(t) => check(root, t, v, at, errors),
                None => errors.push(format!("{at}: unresolved $ref {r}")),
            }
        }
        match s.get("type") {
            Some(Json::String(t)) if !type_ok(t, v) => errors.push(format!("{at}: not {t}: {v}")),
            Some(Json::Array(ts))
                if !ts.iter().any(|t| t.as_str().is_some_and(|t| type_ok(t, v))) =>
            {
                errors.push(format!("{at}: none of {ts:?}: {v}"))
            }
            _ => {}
        }
        if let Some(c) = s.get("const") {
            if c != v {
                errors.push(format!("{at}: {v} is not {c}"));
            }
        }
        if let Some(Json::Array(options)) = s.get("enum") {
            if !options.contains(v) {
                errors.push(format!("{at}: {v} not in {options:?}"));
            }
        }
        if let Some(Json::Array(options)) = s.get("oneOf") {
            let matching = options
                .iter()
                .filter(|o| {
                    let mut e = Vec::new();
                    check(root, o, v, at, &mut e);
                    e.is_empty()
                })
                .count();
            if matching != 1 {
                errors.push(format!("{at}: matches {matching} of oneOf"));
            }
        }
        if let Some(n) = v.as_f64() {
            if s.get("minimum")
                .and_then(Json::as_f64)
                .is_some_and(|m| n < m)
            {
                errors.push(format!("{at}: {n} below minimum"));
            }
            if s.get("maximum")
                .and_then(Json::as_f64)
                .is_some_and(|m| n > m)
            {
                errors.push(format!("{at}: {n} above maximum"));
            }
        }
        if let Some(obj) = v.as_object() {
            if let Some(Json::Array(required)) = s.get("required") {
                for r in required.iter().filter_map(Json::as_str) {
                    if !obj.contains_key(r) {
                        errors.push(format!("{at}: missing `{r}`"));
                    }
                }
            }
            let props = s.get("properties").and_then(Json::as_object);
            for (k, child) in obj {
                match props.and_then(|p| p.get(k)) {
                    Some(ps) => check(root, ps, child, &format!("{at}.{k}"), errors),
                    None if s.get("additionalProperties") == Some(&Json::Bool(false)) => {
                        errors.push(format!("{at}: unexpected `{k}`"))
                    }
                    None => {}
                }
            }
        }
        if let Some(items) = v.as_array() {
            if s.get("minItems")
                .and_then(Json::as_u64)
                .is_some_and(|m| (items.len() as u64) < m)
            {
                errors.push(format!("{at}: fewer than minItems"));
            }
            if let Some(is) = s.get("items") {
                for (i, item) in items.iter().enumerate() {
                    check(root, is, item, &format!("{at}[{i}]"), errors);
                }
            }
        }
    }

    #[test]
    fn the_validator_rejects_what_the_schema_forbids() {
        let schema: Json = serde_json::json!({
            "type": "object", "required": ["a"], "additionalProperties": false,
            "properties": {"a": {"$ref": "#/$defs/n"}}, "$defs": {"n": {"type": "integer", "minimum": 0}}
        });
        assert!(validate(&schema, &serde_json::json!({"a": 1})).is_empty());
        assert_eq!(validate(&schema, &serde_json::json!({"a": -1})).len(), 1);
        assert_eq!(
            validate(&schema, &serde_json::json!({"a": 1, "b": 2})).len(),
            1
        );
        assert_eq!(validate(&schema, &serde_json::json!({})).len(), 1);
        assert_eq!(validate(&schema, &serde_json::json!({"a": "x"})).len(), 1);
    }
}

#[test]
fn one_root_cause_is_summarised_once_and_raw_bytes_are_escaped() {
    let dir = outside("noisy");
    // Reads its input, sends nothing, and gives up saying something unprintable on stderr.
    let sink = r"cat > /dev/null; printf '\033[2J\000\377 gave up\n' >&2; exit 1";
    let out = bin(&dir)
        .args([
            "conformance",
            "--sink",
            sink,
            "--json",
            "r.json",
            "--report",
            "r.md",
        ])
        .output()
        .unwrap();
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert_eq!(said.matches("FAIL outcome in ").count(), 1, "{said}");
    let line = said
        .lines()
        .find(|l| l.starts_with("FAIL outcome in "))
        .unwrap();
    assert!(line.contains(" scenario run(s): "), "{line}");
    // One line per scenario plus one block per failing check, not one block per failure.
    assert!(
        said.lines().count() < 23 + 60,
        "{} lines:\n{said}",
        said.lines().count()
    );
    for bytes in [&out.stdout, &out.stderr] {
        assert!(
            !bytes.contains(&0x1b) && !bytes.contains(&0),
            "raw control bytes in the output"
        );
    }
    let report = std::fs::read(dir.join("r.json")).unwrap();
    let md = std::fs::read(dir.join("r.md")).unwrap();
    for bytes in [&report, &md] {
        assert!(
            !bytes.contains(&0x1b) && !bytes.contains(&0),
            "raw control bytes in a report"
        );
    }
    let json: Json = serde_json::from_slice(&report).unwrap();
    let all_text = json.to_string();
    assert!(
        all_text.contains(r"\\u{1b}[2J"),
        "the escape is shown, escaped"
    );
}

#[test]
fn a_refused_request_shows_tectons_message_in_the_evidence() {
    if !python_available("refused request message") {
        return;
    }
    let dir = outside("refused");
    // Sends everything in one request, ignores the answer and exits 0.
    let script = dir.join("careless.py");
    std::fs::write(
        &script,
        r#"import json, os, sys, urllib.request
records = [{"record": json.loads(l)} for l in sys.stdin if l.strip()]
body = {"workspace_name": os.environ["TECTON_WORKSPACE"], "dry_run": False,
        "records": {os.environ["TECTON_PUSH_SOURCE"]: records[:10]}}
req = urllib.request.Request(os.environ["TECTON_URL"] + "/ingest", json.dumps(body).encode(),
                             {"Authorization": "Tecton-key " + os.environ["TECTON_API_KEY"]})
try:
    urllib.request.urlopen(req, timeout=5)
except Exception:
    pass
"#,
    )
    .unwrap();
    let sink = format!("python3 {}", script.display());
    let out = bin(&dir)
        .args([
            "conformance",
            "--sink",
            &sink,
            "--scenario",
            "invalid-key",
            "--json",
            "r.json",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let json: Json =
        serde_json::from_str(&std::fs::read_to_string(dir.join("r.json")).unwrap()).unwrap();
    let outcome = json["scenarios"][0]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "outcome")
        .unwrap();
    assert_eq!(outcome["verdict"], "fail");
    let evidence = &outcome["evidence"][0];
    assert_eq!(evidence["status"], 401);
    let message = evidence["message"].as_str().unwrap();
    assert!(message.starts_with("UnauthenticatedError: "), "{message}");
    assert!(
        evidence["text"].as_str().unwrap().contains(message),
        "{evidence}"
    );
}

/// A sink that takes two seconds to start (as a JVM job does) is killed at a one-second wall
/// limit, and passes once `--start-allowance` moves the deadline; the replay line keeps it.
#[test]
fn a_slow_starting_sink_passes_with_a_start_allowance() {
    if !python_available("slow-starting sink") {
        return;
    }
    let dir = outside("allowance");
    let scenarios = dir.join("scenarios");
    std::fs::create_dir_all(&scenarios).unwrap();
    let success = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/success.toml"),
    )
    .unwrap();
    assert!(
        success.contains("wall_limit_s = 10"),
        "success.toml changed shape"
    );
    std::fs::write(
        scenarios.join("slow-start.toml"),
        success.replace("wall_limit_s = 10", "wall_limit_s = 1"),
    )
    .unwrap();
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/python-sink/sink.py");
    let sink = format!("sleep 2; exec python3 {}", example.display());
    let run = |extra: &[&str]| {
        bin(&dir)
            .args(["conformance", "--sink", &sink, "--scenarios"])
            .arg(&scenarios)
            .args(["--scenario", "slow-start"])
            .args(extra)
            .output()
            .unwrap()
    };

    let killed = run(&[]);
    assert_eq!(killed.status.code(), Some(1), "{}", text(&killed));
    assert!(
        text(&killed).contains("wall-clock limit"),
        "{}",
        text(&killed)
    );

    let allowed = run(&["--start-allowance", "20"]);
    assert_eq!(allowed.status.code(), Some(0), "{}", text(&allowed));

    let bad = run(&["--start-allowance", "4000"]);
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad));
    assert!(text(&bad).contains("between 0 and 3600"), "{}", text(&bad));
}
