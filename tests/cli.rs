//! The `tecton-sim` binary as a user runs it.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};

mod support;

/// The binary, run from a directory outside the repository.
fn bin() -> Command {
    support::bin(&std::env::temp_dir())
}

#[test]
fn repo_check_names_file_line_and_field_of_each_mistake() {
    let dir = std::env::temp_dir().join(format!("tecton-sim-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bad.toml");
    std::fs::write(&path, "[[workspaces]]\nname = \"prod\"\n\n[[entities]]\nname = \"user\"\njoin_keys = [{ name = \"id\", type = \"Strng\" }]\n").unwrap();
    let out = bin()
        .args(["repo", "check", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.toml:6:"), "{err}");
    assert!(err.contains("entities[0].join_keys[0].type"), "{err}");
    assert!(err.contains("`Strng` is not a Tecton type"), "{err}");

    let out = bin().args(["repo", "check"]).output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("amt_sum_1h_continuous"));
}

#[test]
fn serve_answers_and_stops_gracefully_on_sigint() {
    let mut child = bin()
        .args(["serve", "--port", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let url = first
        .rsplit(' ')
        .next()
        .unwrap()
        .trim_start_matches("http://")
        .to_owned();
    let mut sock = TcpStream::connect(&url).unwrap();
    write!(
        sock,
        "GET /_mock/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut resp = String::new();
    sock.read_to_string(&mut resp).unwrap();
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    assert!(resp.contains("\"status\":\"ok\""), "{resp}");
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "graceful shutdown exits 0, got {status}");
}

/// `tecton-sim offline --events events.jsonl --spine spine.jsonl EXTRA…` run in `dir`.
fn offline_in(dir: &std::path::Path, extra: &[&str]) -> std::process::Output {
    bin()
        .current_dir(dir)
        .args([
            "offline",
            "--events",
            "events.jsonl",
            "--spine",
            "spine.jsonl",
        ])
        .args(extra)
        .output()
        .unwrap()
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("tecton-sim-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

const EVENTS: &str = r#"{"user_id":"u1","transaction_id":"a","merchant":"acme","amt":10.0,"is_fraud":0,"timestamp":"2024-05-31T22:00:00Z"}
{"user_id":"u1","transaction_id":"b","merchant":"zeta, inc","amt":20.5,"is_fraud":0,"timestamp":"2024-05-31T23:00:00Z"}
{"record":{"user_id":"u2","transaction_id":"c","merchant":"acme","amt":5.0,"is_fraud":1,"timestamp":"2024-05-31T23:10:00Z"}}
"#;

#[test]
fn offline_writes_point_in_time_rows_as_jsonl_and_csv() {
    let dir = temp_dir("offline");
    std::fs::write(dir.join("events.jsonl"), EVENTS).unwrap();
    std::fs::write(dir.join("spine.jsonl"), "{\"user_id\":\"u1\",\"timestamp\":\"2024-05-31T22:30:00Z\"}\n{\"user_id\":\"u1\",\"timestamp\":\"2024-06-01T00:00:00Z\"}\n").unwrap();
    let out = offline_in(&dir, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 2);
    // At 22:30 only the 22:00 event is known; at midnight both are, and the attribute is the newer.
    assert_eq!(rows[0]["user_last_transaction__amt"], 10.0);
    assert_eq!(
        rows[0]["user_transaction_amount_totals__amt_count_1h_continuous"],
        1
    );
    assert_eq!(rows[1]["user_last_transaction__amt"], 20.5);
    assert_eq!(
        rows[1]["user_transaction_amount_totals__amt_sum_3d_continuous"],
        30.5
    );

    let out = offline_in(&dir, &["--format", "csv"]);
    let csv = String::from_utf8_lossy(&out.stdout);
    let mut lines = csv.lines();
    assert!(
        lines.next().unwrap().starts_with(
            "user_id,timestamp,user_last_transaction__amt,user_last_transaction__merchant,"
        ),
        "{csv}"
    );
    assert!(
        lines
            .nth(1)
            .unwrap()
            .starts_with("u1,2024-06-01T00:00:00Z,20.5,\"zeta, inc\","),
        "{csv}"
    );
}

#[test]
fn consistency_exits_1_and_shows_rows_when_online_and_offline_differ() {
    let dir = temp_dir("consistency");
    std::fs::write(
        dir.join("points.jsonl"),
        "{\"user_id\":\"u1\",\"timestamp\":\"2024-06-01T00:00:00Z\"}\n",
    )
    .unwrap();
    std::fs::write(dir.join("events.jsonl"), EVENTS).unwrap();
    let out = bin()
        .current_dir(&dir)
        .args([
            "consistency",
            "--events",
            "events.jsonl",
            "--points",
            "points.jsonl",
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("online equals offline for every feature")
    );

    // The newest event pushed first: the online attribute keeps the older value.
    let reordered: String = {
        let lines: Vec<&str> = EVENTS.lines().collect();
        format!("{}\n{}\n{}\n", lines[1], lines[0], lines[2])
    };
    std::fs::write(dir.join("reordered.jsonl"), reordered).unwrap();
    let out = bin()
        .current_dir(&dir)
        .args([
            "consistency",
            "--events",
            "reordered.jsonl",
            "--points",
            "points.jsonl",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        report["differences"][0]["feature"],
        "user_last_transaction.amt"
    );
    assert_eq!(
        (
            report["differences"][0]["online"].as_f64(),
            report["differences"][0]["offline"].as_f64()
        ),
        (Some(10.0), Some(20.5))
    );
}

#[test]
fn offline_reports_bad_input_clearly() {
    let dir = temp_dir("offline-bad");
    std::fs::write(
        dir.join("events.jsonl"),
        "{\"user_id\":\"u1\",\"amt\":\"x\"}\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("spine.jsonl"),
        "{\"user_id\":\"u1\",\"timestamp\":\"2024-06-01T00:00:00Z\"}\n",
    )
    .unwrap();
    let out = offline_in(&dir, &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("events.jsonl:1: ") && err.contains("expected Float64"),
        "{err}"
    );
}

/// The bug: errors said `record 4` for line 15 (a per-request index), mixing 0- and 1-based
/// numbers. Now every bad line is named by file and 1-based line, blank lines counted.
#[test]
fn offline_events_errors_name_the_file_and_its_1_based_line() {
    let dir = temp_dir("offline-lines");
    let good = EVENTS.lines().next().unwrap();
    let mut text = String::new();
    for i in 1..=16 {
        match i {
            3 => text.push('\n'), // a blank line still counts
            7 => text.push_str("{\"user_id\":\"u1\",\"amt\":1.0}\n"),
            15 => text.push_str(&good.replace("10.0", "\"ten\"")),
            _ => text.push_str(good),
        }
        if i != 3 && i != 7 {
            text.push('\n');
        }
    }
    std::fs::write(dir.join("events.jsonl"), text).unwrap();
    std::fs::write(
        dir.join("spine.jsonl"),
        "{\"user_id\":\"u1\",\"timestamp\":\"2024-06-01T00:00:00Z\"}\n",
    )
    .unwrap();
    let out = offline_in(&dir, &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("events.jsonl:7: field `transaction_id`"),
        "{err}"
    );
    assert!(err.contains("events.jsonl:15: field `amt`"), "{err}");
    assert!(!err.contains("record "), "{err}");

    // A bad spine row is named by its line too.
    std::fs::write(
        dir.join("spine.jsonl"),
        "{\"user_id\":\"u1\",\"timestamp\":\"2024-06-01T00:00:00Z\"}\n\n{\"user_id\":\"u1\",\"timestamp\":\"yesterday\"}\n",
    )
    .unwrap();
    let out = offline_in(&dir, &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("spine.jsonl:3: field `timestamp`"), "{err}");
}

/// The bug: with u1's events at 10:00 (amt 10) and 11:00 (amt 20) and a point at 10:30, the
/// online side was read after both were pushed (20.0) and the check exited 1.
#[test]
fn consistency_of_clean_events_with_a_point_between_them_exits_0() {
    let dir = temp_dir("consistency-between");
    std::fs::write(
        dir.join("clean.jsonl"),
        concat!(
            r#"{"user_id":"u1","transaction_id":"a","merchant":"acme","amt":10.0,"is_fraud":0,"timestamp":"2024-05-31T10:00:00Z"}"#,
            "\n",
            r#"{"user_id":"u1","transaction_id":"b","merchant":"acme","amt":20.0,"is_fraud":0,"timestamp":"2024-05-31T11:00:00Z"}"#,
            "\n"
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("points.jsonl"),
        "{\"user_id\":\"u1\",\"timestamp\":\"2024-05-31T10:30:00Z\"}\n",
    )
    .unwrap();
    let out = bin()
        .current_dir(&dir)
        .args([
            "consistency",
            "--events",
            "clean.jsonl",
            "--points",
            "points.jsonl",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("online equals offline for every feature"),
        "{stdout}"
    );
}

/// `--arrival-field`: a column saying when each event reached the online store. The 10:00
/// event arrives at 10:45, so at 10:30 the feature server had nothing; the report says why.
#[test]
fn consistency_arrival_field_shows_a_late_arrival_with_its_cause() {
    let dir = temp_dir("consistency-arrival");
    std::fs::write(
        dir.join("late.jsonl"),
        concat!(
            r#"{"user_id":"u1","transaction_id":"a","merchant":"acme","amt":10.0,"is_fraud":0,"timestamp":"2024-05-31T10:00:00Z","arrived":"2024-05-31T10:45:00Z"}"#,
            "\n",
            r#"{"user_id":"u1","transaction_id":"b","merchant":"acme","amt":20.0,"is_fraud":0,"timestamp":"2024-05-31T11:00:00Z","arrived":"2024-05-31T11:00:00Z"}"#,
            "\n"
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("points.jsonl"),
        "{\"user_id\":\"u1\",\"timestamp\":\"2024-05-31T10:30:00Z\"}\n{\"user_id\":\"u1\",\"timestamp\":\"2024-05-31T11:30:00Z\"}\n",
    )
    .unwrap();
    let run = |extra: &[&str]| {
        bin()
            .current_dir(&dir)
            .args([
                "consistency",
                "--events",
                "late.jsonl",
                "--points",
                "points.jsonl",
            ])
            .args(extra)
            .output()
            .unwrap()
    };
    let out = run(&["--arrival-field", "arrived", "--format", "json"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = report["differences"].as_array().unwrap();
    assert!(!rows.is_empty());
    for row in rows {
        assert_eq!(row["timestamp"], "2024-05-31T10:30:00Z", "{row}");
        assert_eq!(row["causes"], serde_json::json!(["late arrival"]), "{row}");
    }
    let md = String::from_utf8_lossy(&run(&["--arrival-field", "arrived"]).stdout).to_string();
    assert!(md.contains("| late arrival |"), "{md}");

    // Without the column the file is not valid for the schema: the extra field is named.
    let out = run(&[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("late.jsonl:1: "));
    let out = run(&["--arrival-field", "nope"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("late.jsonl:1: no arrival field `nope`"));
}
/// Starts `serve` with `args`; returns the child, its `host:port` and the offline directory it
/// printed.
fn serve(args: &[&str]) -> (std::process::Child, String, std::path::PathBuf) {
    let mut child = bin()
        .args(["serve", "--port", "0"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lines: Vec<String> = BufReader::new(child.stdout.take().unwrap())
        .lines()
        .take(4)
        .map(Result::unwrap)
        .collect();
    let addr = lines[0]
        .rsplit(' ')
        .next()
        .unwrap()
        .trim_start_matches("http://")
        .to_owned();
    let offline = lines[3]
        .trim()
        .strip_prefix("offline: ")
        .and_then(|l| l.split(" (").next())
        .unwrap_or_else(|| panic!("no offline line: {lines:?}"));
    (child, addr, offline.into())
}

fn post(addr: &str, path: &str, key: &str, body: &str) -> String {
    let mut sock = TcpStream::connect(addr).unwrap();
    write!(
        sock,
        "POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Tecton-key {key}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut resp = String::new();
    sock.read_to_string(&mut resp).unwrap();
    resp
}

fn sigterm(child: &mut std::process::Child) {
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "SIGTERM exits 0, got {status}");
}

#[test]
fn serve_writes_kept_offline_data_on_sigterm_and_deletes_a_temporary_store() {
    let dir = temp_dir("keep-data");
    let _ = std::fs::remove_dir_all(dir.join("offline"));
    let (mut child, addr, offline) = serve(&[
        "--virtual-clock",
        "2024-06-01T00:00:00Z",
        "--data-dir",
        dir.to_str().unwrap(),
        "--keep-data",
    ]);
    assert_eq!(offline, dir.join("offline"));
    let body = r#"{"workspace_name": "prod", "dry_run": false, "records": {"transactions": [
        {"record": {"user_id": "u1", "transaction_id": "t1", "merchant": "acme", "amt": 1.5, "is_fraud": 0, "timestamp": "2024-05-31T23:00:00Z"}}]}}"#;
    let resp = post(&addr, "/ingest", "demo-editor-key", body);
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    // Far below the size trigger and the 5 s timer: only the shutdown path writes this row.
    sigterm(&mut child);
    let part = offline.join("transactions/date=2024-05-31");
    let files: Vec<_> = std::fs::read_dir(&part)
        .unwrap_or_else(|e| panic!("{}: {e}", part.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(files, ["part-00000.parquet"]);
    std::fs::remove_dir_all(&dir).unwrap();

    let (mut child, _, offline) = serve(&[]);
    assert!(offline.is_dir(), "{} made at start", offline.display());
    sigterm(&mut child);
    assert!(
        !offline.parent().unwrap().exists(),
        "the temporary data directory outlived the mock"
    );
}
