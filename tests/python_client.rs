//! The official Python client, `tecton-client==0.4.0` from PyPI, unmodified, against the mock.
//!
//! Starts the mock in-process on a virtual clock (2024-06-01T00:00:00Z), ingests a few
//! `transactions` records over HTTP, then runs `tests/python/client_check.py`, which calls
//! `get_features` (all metadata options), `get_feature_service_metadata`, and provokes the
//! client's typed 404 and 401 errors, printing one JSON object. This test asserts on it:
//!
//! - `get_features_dict()` values for `u1`: the last attributes, continuous 1h/1d/3d sums and
//!   counts (counts are `int`s after the client converts Tecton's int64 strings), and the
//!   10-minute-tile aggregates including `merchant_last_distinct_3_1d_10m`; every status is
//!   `PRESENT` and `sloInfo` parses;
//! - the service metadata lists the 16 features of `fraud_detection` in Tecton's order, the
//!   same order as get-features, and the join key `user_id`;
//! - an unknown feature service raises `NotFoundError` and a bad key `UnauthorizedError`,
//!   each carrying the mock's message.
//!
//! The virtualenv comes from `scripts/setup-python.sh`. When `.venv/bin/python` is missing
//! the test FAILS if the `CI` environment variable is set (CI must have run the script), and
//! otherwise prints a `SKIPPED: ...` notice to stderr and passes, so that `cargo test` works
//! on a machine without Python or PyPI access.
#![allow(clippy::unwrap_used)]

mod support;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mock_tecton::{Config, MockTecton};
use serde_json::{json, Value};

/// 2024-06-01T00:00:00Z: "now" on the mock's virtual clock.
const NOW: i64 = 1_717_200_000_000_000_000;

/// Upper bound for the Python run. It normally takes well under a second; the bound only
/// keeps a wedged interpreter from hanging `cargo test`.
const PYTHON_DEADLINE: Duration = Duration::from_secs(60);

/// The features of `fraud_detection` in Tecton's serving order: views alphabetical, features
/// alphabetical within a view, default aggregate names (`{column}_{function}_{window}_{interval}`).
const EXPECTED_FEATURES: [&str; 16] = [
    "user_last_transaction.amt",
    "user_last_transaction.merchant",
    "user_transaction_amount_totals.amt_count_1d_continuous",
    "user_transaction_amount_totals.amt_count_1h_continuous",
    "user_transaction_amount_totals.amt_count_3d_continuous",
    "user_transaction_amount_totals.amt_mean_1d_continuous",
    "user_transaction_amount_totals.amt_mean_1h_continuous",
    "user_transaction_amount_totals.amt_mean_3d_continuous",
    "user_transaction_amount_totals.amt_sum_1d_continuous",
    "user_transaction_amount_totals.amt_sum_1h_continuous",
    "user_transaction_amount_totals.amt_sum_3d_continuous",
    "user_transaction_counts.amt_max_1h_10m",
    "user_transaction_counts.amt_stddev_samp_1d_10m",
    "user_transaction_counts.merchant_last_distinct_3_1d_10m",
    "user_transaction_counts.transaction_id_count_1d_10m",
    "user_transaction_counts.transaction_id_count_1h_10m",
];

/// One `transactions` record of the demo repository.
fn txn(user: &str, id: &str, merchant: &str, amt: f64, ts: &str) -> Value {
    json!({"record": {"user_id": user, "transaction_id": id, "merchant": merchant, "amt": amt, "is_fraud": 0, "timestamp": ts}})
}

/// Runs the check script and returns its stdout, killing it past [`PYTHON_DEADLINE`].
fn run_check(python: &Path, script: &Path, url: &str) -> String {
    let mut cmd = Command::new(python);
    // -B: no bytecode files in the work tree or the venv.
    cmd.arg("-B")
        .arg(script)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // httpx honours proxy variables; the mock is on loopback and must be reached directly.
    for var in [
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("NO_PROXY", "127.0.0.1,localhost");
    let mut child = cmd.spawn().unwrap();
    // Drain both pipes on threads so a chatty child can never block on a full pipe.
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            r.read_to_string(&mut s).unwrap();
            s
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > PYTHON_DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "client_check.py did not finish in {PYTHON_DEADLINE:?}; stderr:\n{}",
                stderr.join().unwrap()
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let (stdout, stderr) = (stdout.join().unwrap(), stderr.join().unwrap());
    assert!(
        status.success(),
        "client_check.py failed ({status}):\n{stderr}\nstdout:\n{stdout}"
    );
    stdout
}

#[tokio::test]
async fn official_python_client_reads_features_metadata_and_typed_errors() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let Some(python) = support::venv_python(
        "python_client",
        ".venv",
        &[],
        "Run scripts/setup-python.sh to test the official client.",
    ) else {
        return;
    };
    let mock = MockTecton::start(Config::default().virtual_clock(NOW))
        .await
        .unwrap();
    let url = mock.url();

    // u1: two events in the last hour, one 36 h back (inside 3d only); u2 must not leak in.
    let body = json!({
        "workspace_name": "prod",
        "dry_run": false,
        "records": {"transactions": [
            txn("u1", "t0", "old", 100.0, "2024-05-30T12:00:00Z"),
            txn("u1", "t1", "acme", 12.5, "2024-05-31T23:30:00Z"),
            txn("u1", "t2", "zeta", 7.5, "2024-05-31T23:45:00Z"),
            txn("u2", "t3", "acme", 999.0, "2024-05-31T23:50:00Z"),
        ]},
    });
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let resp = http
        .post(format!("{url}/ingest"))
        .header("Authorization", "Tecton-key demo-editor-key")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let text = resp.text().await.unwrap();
    assert_eq!(status, 200, "ingest: {text}");

    // The client is synchronous; run it off the runtime so the in-process mock keeps serving.
    let script = root.join("tests/python/client_check.py");
    let stdout = tokio::task::spawn_blocking(move || run_check(&python, &script, &url))
        .await
        .unwrap();
    let out: Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("client_check.py printed non-JSON ({e}):\n{stdout}"));
    assert_eq!(out["client_version"], "0.4.0", "{out}");

    let f = &out["features"];
    let feature = |name: &str| {
        f.get(name)
            .unwrap_or_else(|| panic!("no feature {name} in {f}"))
    };
    assert_eq!(feature("user_last_transaction.amt"), &json!(7.5));
    assert_eq!(feature("user_last_transaction.merchant"), &json!("zeta"));
    assert_eq!(
        feature("user_transaction_amount_totals.amt_sum_1h_continuous"),
        &json!(20.0)
    );
    // Tecton sends int64 as a string; the client's dataType-driven conversion makes an int.
    let count_1d = feature("user_transaction_amount_totals.amt_count_1d_continuous");
    assert!(count_1d.is_i64(), "count is not an integer: {count_1d}");
    assert_eq!(count_1d, &json!(2));
    assert_eq!(
        feature("user_transaction_amount_totals.amt_sum_3d_continuous"),
        &json!(120.0)
    );
    assert_eq!(
        feature("user_transaction_amount_totals.amt_count_3d_continuous"),
        &json!(3)
    );
    assert_eq!(
        feature("user_transaction_counts.merchant_last_distinct_3_1d_10m"),
        &json!(["acme", "zeta"])
    );
    assert_eq!(
        feature("user_transaction_counts.transaction_id_count_1h_10m"),
        &json!(2)
    );
    assert_eq!(
        feature("user_transaction_counts.amt_max_1h_10m"),
        &json!(12.5)
    );
    for (name, status) in out["statuses"].as_object().unwrap() {
        assert_eq!(status, "PRESENT", "{name}");
    }
    assert_eq!(out["slo_eligible"], true);

    let metadata: Vec<&str> = out["metadata_features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(metadata, EXPECTED_FEATURES);
    // get-features and metadata agree on the order (the client's docs promise it).
    assert_eq!(out["feature_names"], json!(EXPECTED_FEATURES));
    assert_eq!(f.as_object().unwrap().len(), EXPECTED_FEATURES.len());
    assert_eq!(out["metadata_join_keys"], json!(["user_id"]));

    let not_found = &out["errors"]["not_found"];
    assert_eq!(not_found["class"], "NotFoundError", "{not_found}");
    assert_eq!(not_found["status"], 404);
    assert_eq!(
        not_found["message"],
        "404 Not Found: Unable to query FeatureService `no_such_service` for workspace `prod`. \
         Newly created feature services may take up to 60 seconds to query. Also, ensure that \
         the workspace is a live workspace."
    );
    let unauthorized = &out["errors"]["unauthorized"];
    assert_eq!(unauthorized["class"], "UnauthorizedError", "{unauthorized}");
    assert_eq!(unauthorized["status"], 401);
    assert_eq!(
        unauthorized["message"],
        "401 Unauthorized: invalid 'Tecton-key' authorization header. Note that newly created \
         credentials may take up to 60 seconds to be usable."
    );

    // The client really went through the mock: four feature-server calls were journaled.
    let serving = mock
        .journal()
        .iter()
        .filter(|e| e.path.starts_with("/api/v1/feature-service/"))
        .count();
    assert_eq!(serving, 4);
    mock.shutdown().await;
}
