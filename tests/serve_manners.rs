//! `tecton-sim serve` as an operator runs it: logs fit for a file, signals drain, errors are
//! machine-readable, and bad flags get a sentence rather than a stack of numbers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};

mod support;

/// The binary, run from a directory outside the repository.
fn bin() -> Command {
    support::bin(&std::env::temp_dir())
}

/// Starts `serve --port 0` with stderr captured (not a terminal); returns it and its address.
fn serve(rust_log: Option<&str>) -> (Child, String) {
    let mut cmd = bin();
    cmd.args(["serve", "--port", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    match rust_log {
        Some(l) => cmd.env("RUST_LOG", l),
        None => cmd.env_remove("RUST_LOG"),
    };
    let mut child = cmd.spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let addr = first
        .rsplit(' ')
        .next()
        .unwrap()
        .trim_start_matches("http://")
        .to_owned();
    // Keep draining stdout so the server never blocks on it.
    std::thread::spawn(move || for _ in lines {});
    (child, addr)
}

/// One HTTP/1.1 exchange; the raw response.
fn http(addr: &str, method: &str, path: &str, body: &[u8]) -> String {
    let mut sock = TcpStream::connect(addr).unwrap();
    write!(
        sock,
        "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    let _ = sock.write_all(body);
    let mut resp = Vec::new();
    let _ = sock.read_to_end(&mut resp);
    String::from_utf8_lossy(&resp).into_owned()
}

fn json_body(resp: &str) -> serde_json::Value {
    let body = resp.split("\r\n\r\n").nth(1).unwrap_or_default();
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {resp}"))
}

fn stop(mut child: Child, signal: &str) -> String {
    Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    assert!(
        status.success(),
        "draining exits 0 after {signal}, got {status}"
    );
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    err
}

#[test]
fn requests_are_logged_without_colour_and_sigterm_drains() {
    let (child, addr) = serve(None);
    let resp = http(&addr, "POST", "/ingest", b"{}");
    assert!(resp.starts_with("HTTP/1.1 401"), "{resp}");
    let err = stop(child, "-TERM");
    assert!(
        !err.contains('\u{1b}'),
        "escape codes in a log that is not a terminal:\n{err:?}"
    );
    let line = err
        .lines()
        .find(|l| l.contains("request") && l.contains("path=/ingest"))
        .unwrap_or_else(|| panic!("no request line:\n{err}"));
    assert!(line.contains(" INFO "), "{line}");
    assert!(
        line.contains("method=POST") && line.contains("status=401"),
        "{line}"
    );
    assert!(line.contains("fault=-") && line.contains("ms="), "{line}");
    assert!(
        err.contains("SIGTERM received; finishing in-flight requests"),
        "{err}"
    );

    let (child, addr) = serve(Some("warn"));
    http(&addr, "POST", "/ingest", b"{}");
    let err = stop(child, "-INT");
    assert!(
        !err.contains("path=/ingest"),
        "RUST_LOG=warn silences request lines:\n{err}"
    );
}

#[test]
fn wrong_methods_and_admin_mistakes_get_allow_and_json() {
    let (child, addr) = serve(Some("warn"));
    let resp = http(&addr, "GET", "/ingest", b"");
    assert!(resp.starts_with("HTTP/1.1 405"), "{resp}");
    assert!(
        resp.to_ascii_lowercase().contains("\r\nallow: post\r\n"),
        "{resp}"
    );
    let resp = http(
        &addr,
        "POST",
        "/api/v2/workspaces/prod/feature-services/fraud_detection/metadata",
        b"",
    );
    assert!(resp.starts_with("HTTP/1.1 405"), "{resp}");
    assert!(
        resp.to_ascii_lowercase().contains("\r\nallow: get\r\n"),
        "{resp}"
    );

    let resp = http(&addr, "GET", "/_mock/journal?limit=lots", b"");
    assert!(resp.starts_with("HTTP/1.1 400"), "{resp}");
    assert!(
        json_body(&resp)["error"]
            .as_str()
            .unwrap()
            .contains("limit"),
        "{resp}"
    );
    let big = vec![b' '; 3 * 1024 * 1024];
    let resp = http(&addr, "POST", "/_mock/faults", &big);
    assert!(resp.starts_with("HTTP/1.1 413"), "{resp}");
    assert!(json_body(&resp)["error"].is_string(), "{resp}");
    let resp = http(&addr, "PUT", "/_mock/clock", b"");
    assert!(resp.starts_with("HTTP/1.1 405"), "{resp}");
    assert!(json_body(&resp)["error"].is_string(), "{resp}");

    // The journal gives readable times beside the nanoseconds.
    let resp = http(&addr, "GET", "/_mock/journal", b"");
    let first = &json_body(&resp)["entries"][0];
    let ns = first["received_at"].as_i64().unwrap();
    let text = first["received_at_rfc3339"].as_str().unwrap();
    assert!(text.ends_with('Z') && text.contains('T'), "{text}");
    let back = mock_tecton::schema::parse_timestamp(text).unwrap();
    assert_eq!(back, ns);
    assert!(first["mock_time_rfc3339"].is_string());
    stop(child, "-INT");
}

#[test]
fn bad_flags_get_a_sentence() {
    let out = bin()
        .args(["serve", "--max-body-bytes", "0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("must be at least 1"), "{err}");

    let dir = std::env::temp_dir().join(format!("tecton-sim-manners-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("events.jsonl"), "{\"user_id\":\"u1\",\"transaction_id\":\"a\",\"merchant\":\"m\",\"amt\":1.0,\"is_fraud\":0,\"timestamp\":\"2024-05-31T22:00:00Z\"}\n").unwrap();
    std::fs::write(
        dir.join("spine.jsonl"),
        "{\"user_id\":\"u1\",\"timestamp\":\"2024-05-31T22:30:00Z\"}\n",
    )
    .unwrap();
    let out = bin()
        .current_dir(&dir)
        .args([
            "offline",
            "--events",
            "events.jsonl",
            "--spine",
            "spine.jsonl",
            "--service",
            "nope",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no feature service named `nope`; the repository has: fraud_detection"),
        "{err}"
    );

    let out = bin().args(["repo", "show-default"]).output().unwrap();
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(shown.contains("tecton-sim repo show-default"), "{shown}");
    assert!(
        !shown.contains("--print-default"),
        "names a flag that does not exist"
    );
}
