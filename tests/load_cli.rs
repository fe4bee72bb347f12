//! `tecton-sim load` as a user runs it: reports written, the seed printed and replayable,
//! thresholds deciding the exit code, bad flags refused before any load.
#![allow(clippy::unwrap_used)]

mod support;

use std::path::PathBuf;
use std::process::Output;

fn load(args: &[&str]) -> Output {
    support::bin(&std::env::temp_dir())
        .arg("load")
        .args(args)
        .output()
        .unwrap()
}

fn out_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tecton-sim-load-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn a_run_writes_three_reports_and_thresholds_set_the_exit_code() {
    let dir = out_dir("run");
    let d = dir.to_str().unwrap();
    let common = [
        "run",
        "--rate",
        "200",
        "--duration",
        "1s",
        "--seed",
        "7",
        "--out",
        d,
    ];

    let out = load(&[&common[..], &["--threshold", "push.achieved_ratio>=50%"]].concat());
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("seed 7 (replay with --seed 7)"), "{stdout}");
    assert!(stdout.contains("20/20 sampled keys"), "{stdout}");
    for f in ["report.html", "report.md", "report.json"] {
        assert!(dir.join(f).is_file(), "{f} missing");
    }
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap()).unwrap();
    assert_eq!(json["seed"], 7);
    let p = &json["points"][0];
    assert_eq!(p["pattern"], "push");
    assert_eq!(p["records_sent"], 200);
    assert_eq!(p["records_acknowledged"], 200);
    for field in ["p50", "p90", "p99", "p999", "max"] {
        assert!(p["latency_ms"][field].is_number(), "latency_ms.{field}");
        assert!(p["latency_uncorrected_ms"][field].is_number());
    }

    // No loopback push takes under a microsecond: this threshold must fail, and say so.
    let out = load(&[&common[..], &["--threshold", "push.latency.p50<0.001ms"]].concat());
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(text(&out.stdout).contains("threshold FAIL"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn cost_and_criteria_flags_reach_every_report_labelled() {
    let dir = out_dir("settings");
    let d = dir.to_str().unwrap();
    let out = load(&[
        "sweep",
        "--patterns",
        "push",
        "--rates",
        "100",
        "--duration",
        "1s",
        "--seed",
        "5",
        "--out",
        d,
        "--cost",
        "spark_cluster_usd_per_hour=4.2,push_usd_per_million_requests=0.5",
        // No loopback push is servable within a microsecond: push cannot be chosen.
        "--freshness-target",
        "1us",
        "--max-error-rate",
        "0.5%",
    ]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains("p99 freshness target: 1 µs (given)"),
        "{stdout}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap()).unwrap();
    assert_eq!(json["schema_version"], 2);
    let a = &json["analysis"];
    assert_eq!(a["cost_model"]["spark_cluster_usd_per_hour"], 4.2);
    assert_eq!(a["cost_model"]["push_usd_per_million_requests"], 0.5);
    // Unset parameters keep their example values.
    assert_eq!(a["cost_model"]["stream_usd_per_hour"], 0.6);
    assert_eq!(
        a["given"]["cost_model"],
        serde_json::json!([
            "spark_cluster_usd_per_hour",
            "push_usd_per_million_requests"
        ])
    );
    assert_eq!(
        a["given"]["criteria"],
        serde_json::json!(["freshness_target", "max_error_rate"])
    );
    let criteria = &a["recommendation"]["criteria"];
    assert_eq!(criteria["freshness_target_ms"], 0.001);
    assert_eq!(criteria["max_error_rate"], 0.005);
    assert_eq!(criteria["min_achieved_ratio"], 0.99);
    // The target decides: push held the rate but missed it.
    let band = &a["recommendation"]["bands"][0];
    assert_eq!(band["choice"], "neither", "{band}");
    assert!(
        band["because"]
            .as_str()
            .unwrap()
            .contains("freshness target"),
        "{band}"
    );

    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(
        md.contains("`spark_cluster_usd_per_hour=4.2` (given)"),
        "{md}"
    );
    assert!(md.contains("`stream_usd_per_hour=0.6` (example)"), "{md}");
    assert!(
        md.contains("2 of 7 parameters given, the rest EXAMPLES"),
        "{md}"
    );
    assert!(md.contains("with at most 0.50% errors (given)"), "{md}");
    assert!(md.contains("at least 99.0% of it (default)"), "{md}");
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(html.contains("<code>spark_cluster_usd_per_hour=4.2</code> (given)"));
    assert!(html.contains("<code>stream_usd_per_hour=0.6</code> (example)"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_flags_are_clear_errors_before_any_load() {
    for (args, says) in [
        (vec!["run", "--rate", "fast"], "rate `fast` is not a number"),
        (vec!["run", "--batch", "0"], "--batch `0`"),
        (vec!["run", "--duration", "soon"], "duration `soon`"),
        (
            vec!["run", "--burst", "5@9s+1s", "--duration", "2s"],
            "burst must start and end",
        ),
        (vec!["run", "--pattern", "sink"], "needs --sink-command"),
        (vec!["run", "--threshold", "push.nope<1"], "push.nope<1"),
        (vec!["sweep", "--rates", "1..5"], "constant rates"),
        (vec!["run", "--users", "0"], "users must be"),
        (vec!["run", "--cost", "spark=x"], "--cost"),
        (
            vec!["run", "--cost", "stream_usd_per_hour=1,nope=2"],
            "unknown cost parameter `nope`",
        ),
        (
            vec!["run", "--freshness-target", "soon"],
            "--freshness-target: bad criterion",
        ),
        (
            vec!["run", "--min-achieved-ratio", "150%"],
            "between 0 and 100%",
        ),
        (
            vec!["run", "--input", "/nonexistent.jsonl"],
            "cannot read /nonexistent.jsonl",
        ),
    ] {
        let out = load(&args);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert!(
            !text(&out.stdout).contains("records/s for"),
            "{args:?} made load"
        );
    }
}

#[test]
fn an_unreachable_mock_is_a_clear_error() {
    let out = load(&["run", "--url", "http://127.0.0.1:1", "--duration", "1s"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("cannot reach the mock at http://127.0.0.1:1"),
        "{err}"
    );
}

#[test]
fn the_kafka_pattern_produces_through_a_real_broker() {
    let Some(addr) = support::kafka_bootstrap("load_cli kafka") else {
        return;
    };
    let dir = out_dir("broker");
    std::fs::create_dir_all(&dir).unwrap();
    // A topic of its own, so reruns against the same broker start clean.
    let topic = format!(
        "load_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis()
    );
    let config = dir.join("repo.toml");
    std::fs::write(
        &config,
        mock_tecton::repo::DEMO_TOML
            .replace("topic = \"transactions\"", &format!("topic = \"{topic}\"")),
    )
    .unwrap();
    let out = load(&[
        "run",
        "--pattern",
        "kafka",
        "--rate",
        "300",
        "--duration",
        "1s",
        "--seed",
        "11",
        // The CONTINUOUS view is servable at once; the 30 s-trigger views are not waited for.
        "--settle",
        "3s",
        "--kafka-bootstrap",
        &addr,
        "--config",
        config.to_str().unwrap(),
        "--out",
        dir.to_str().unwrap(),
        "--threshold",
        "kafka.achieved_ratio>=99%",
        "--threshold",
        "kafka.errors.rate==0",
    ]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains(&format!("producing to topic `{topic}` on {addr}")),
        "{stdout}"
    );
    // Every sampled user serves exactly the records acknowledged by the broker.
    assert!(stdout.contains("20/20 sampled keys"), "{stdout}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap()).unwrap();
    let p = &json["points"][0];
    assert_eq!(p["pattern"], "kafka");
    assert_eq!(p["records_sent"], 300);
    assert_eq!(p["records_acknowledged"], 300);
    let fresh = &p["freshness_ms"];
    assert!(fresh["p50"].as_f64().is_some_and(|v| v > 0.0), "{fresh}");
    // Event sent → servable through a broker, a consumer and a micro-batch: not instant, and
    // within the settle time.
    assert!(
        fresh["max"].as_f64().is_some_and(|v| v < 3_000.0),
        "{fresh}"
    );

    // The records are on the broker (not in the mock's in-memory topic): 300 of them.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let on_broker = rt.block_on(async {
        use rskafka::client::partition::{OffsetAt, UnknownTopicHandling};
        let client = rskafka::client::ClientBuilder::new(vec![addr.clone()])
            .build()
            .await
            .unwrap();
        let mut total = 0;
        for t in client.list_topics().await.unwrap() {
            if t.name != topic {
                continue;
            }
            for p in t.partitions {
                let pc = client
                    .partition_client(topic.as_str(), p, UnknownTopicHandling::Error)
                    .await
                    .unwrap();
                // Read every record back: offsets alone may have gaps.
                let end = pc.get_offset(OffsetAt::Latest).await.unwrap();
                let mut offset = pc.get_offset(OffsetAt::Earliest).await.unwrap();
                while offset < end {
                    let (records, _) = pc.fetch_records(offset, 1..1_000_000, 1_000).await.unwrap();
                    let Some(last) = records.last() else { break };
                    offset = last.offset + 1;
                    total += records.len();
                }
            }
        }
        total
    });
    assert_eq!(on_broker, 300);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_demo_serves_judges_the_reference_sink_and_writes_a_report() {
    let dir = out_dir("demo");
    let out = support::bin(&std::env::temp_dir())
        .args(["demo", "--duration", "1s", "--rates", "100,1000", "--out"])
        .arg(&dir)
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    // The mock answered a push and served its features.
    assert!(
        stdout.contains("POST /ingest (Editor key, one transaction) → 200 OK"),
        "{stdout}"
    );
    assert!(stdout.contains("amt_count_1d_continuous=\"1\""), "{stdout}");
    // The reference sink passes the whole suite.
    let suite = stdout
        .lines()
        .find(|l| l.contains(" scenarios: "))
        .unwrap_or_default();
    assert!(
        suite.contains("passed, 0 warned, 0 failed, 0 could not run"),
        "{stdout}"
    );
    // Both patterns at both rates, with Tecton's profile, and a recommendation.
    assert!(stdout.contains("recommendation: "), "{stdout}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap()).unwrap();
    assert_eq!(json["profile"], "tecton");
    let points: Vec<(String, f64)> = json["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["pattern"].as_str().unwrap().to_owned(),
                p["offered_rate"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(points.len(), 4, "{points:?}");
    assert!(json["points"][1]["freshness_ms"]["p99"].is_number());
    assert!(stdout.contains(&format!("Open {}", dir.join("report.html").display())));
    assert!(dir.join("report.html").is_file());
    std::fs::remove_dir_all(&dir).unwrap();
}
