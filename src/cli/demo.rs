//! `tecton-sim demo`: what a new user should see first, in under a minute and on loopback
//! only. It serves the embedded mock, pushes a record and reads its features back, runs the
//! conformance suite on the reference sink, and runs a short push-versus-Kafka sweep with
//! Tecton's latency profile, which writes `report.html`, `report.md` and `report.json`.
//!
//! Exit status: 0 when every step worked, 1 when the reference sink failed a check, 2 when a
//! step could not run.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::{Args, Parser};
use conformance::runner::{run_suite, RunOptions, Subject};
use conformance::sink::ReferenceSink;
use mock_tecton::profile::TectonProfile;
use mock_tecton::stream::StreamConfig;
use mock_tecton::{Config, MockTecton, Repository};
use serde_json::{json, Value};

use super::load::LoadCommand;

/// Arguments of `demo`.
#[derive(Args)]
pub(crate) struct DemoArgs {
    /// Length of each load point of the sweep.
    #[arg(long, default_value = "3s")]
    duration: String,
    /// Offered rates of the sweep, records/s (push and Kafka at each).
    #[arg(long, default_value = "200,2000")]
    rates: String,
    /// Where the load reports go.
    #[arg(long, default_value = "tecton-sim-demo")]
    out: PathBuf,
    /// The seed of every random choice.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Open report.html with the desktop's opener (`xdg-open`, `open`) at the end; never
    /// under CI.
    #[arg(long)]
    open: bool,
}

/// `load …` parsed from words, so the demo runs exactly what a user would type.
#[derive(Parser)]
#[command(name = "tecton-sim")]
struct LoadLine {
    #[command(subcommand)]
    load: Load,
}

#[derive(clap::Subcommand)]
enum Load {
    #[command(subcommand)]
    Load(LoadCommand),
}

/// Runs the demo.
pub(crate) fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;

    // 1. The mock on the embedded demo, with Tecton's latencies. Stream triggers are 0 s so
    //    the Kafka points finish within seconds (Tecton's default is 30 s for windowed views).
    let config = Config::new(Repository::demo())
        .profile(TectonProfile {
            seed: args.seed,
            ..Default::default()
        })
        .stream(StreamConfig {
            trigger_interval: Some(Duration::ZERO),
            ..StreamConfig::default()
        });
    let mock = runtime
        .block_on(MockTecton::start(config))
        .context("cannot start the mock")?;
    let url = mock.url();
    step(
        1,
        &format!("the mock Tecton serves the embedded fraud demo at {url}"),
    );
    runtime.block_on(round_trip(&url))?;

    // 2. The conformance suite on the reference sink, each scenario on a fresh mock.
    step(
        2,
        "the conformance suite judges the reference sink (sink protocol v1)",
    );
    let scenarios = super::conformance::load_scenarios(None)?;
    let sink = ReferenceSink::new();
    let opts = RunOptions {
        replay_prefix: Some("tecton-sim conformance --sink '<your sink>'".into()),
        ..RunOptions::default()
    };
    let suite = runtime.block_on(run_suite(
        &scenarios,
        args.seed..args.seed + 1,
        &Subject::Sink(&sink),
        &opts,
        |_| {},
    ));
    let report = conformance::report::suite_report(&suite, false);
    let c = report.counts();
    println!(
        "   {} scenarios: {} passed, {} warned, {} failed, {} could not run",
        c.pass + c.warn + c.fail + c.error,
        c.pass,
        c.warn,
        c.fail,
        c.error
    );
    println!("   yours: tecton-sim conformance --sink 'python3 my_sink.py'");
    let conformance_code = report.exit_code();

    // 3. Push versus Kafka + Spark at a low and a high rate, against the same mock.
    step(
        3,
        &format!(
            "push vs Kafka + Spark at {} records/s, {} per point",
            args.rates, args.duration
        ),
    );
    println!(
        "   (micro-batches start back to back here, so Kafka freshness is ~2 s; with Tecton's \
         30 s trigger it is ~10-20 s: see `load sweep --profile tecton` in the README)"
    );
    let out = args.out.to_string_lossy().into_owned();
    let seed = args.seed.to_string();
    let words = [
        "tecton-sim",
        "load",
        "sweep",
        "--patterns",
        "push,kafka",
        "--rates",
        &args.rates,
        "--duration",
        &args.duration,
        "--url",
        &url,
        "--profile",
        "tecton",
        "--settle",
        "20s",
        "--seed",
        &seed,
        "--out",
        &out,
        "--quiet",
    ];
    let line = LoadLine::try_parse_from(words).map_err(|e| anyhow::anyhow!("{e}"))?;
    let Load::Load(cmd) = line.load;
    let load_code = super::load::run(cmd)?;
    runtime.block_on(mock.shutdown());

    let html = args.out.join("report.html");
    println!(
        "\ndone in {:.0} s. Open {} in a browser (one file, no network).",
        started.elapsed().as_secs_f64(),
        html.display()
    );
    println!("Next: `tecton-sim serve` keeps the mock running at http://127.0.0.1:8080.");
    if args.open && std::env::var_os("CI").is_none() {
        open(&html);
    }
    Ok(match (conformance_code, load_code == ExitCode::SUCCESS) {
        (0, true) => ExitCode::SUCCESS,
        (0, false) => ExitCode::from(2),
        (code, _) => ExitCode::from(code),
    })
}

fn step(n: u32, what: &str) {
    println!("\n[{n}/3] {what}");
}

/// Pushes one transaction and reads the user's features back, printing both like curl would.
async fn round_trip(url: &str) -> anyhow::Result<()> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let now = mock_tecton::schema::format_rfc3339(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as i64),
    );
    let push = json!({"workspace_name": "prod", "dry_run": false, "records": {"transactions": [
        {"record": {"user_id": "demo-user", "transaction_id": "t1", "merchant": "acme",
                    "amt": 12.5, "is_fraud": 0, "timestamp": now}}]}});
    let resp = client
        .post(format!("{url}/ingest"))
        .header("Authorization", "Tecton-key demo-editor-key")
        .json(&push)
        .send()
        .await
        .context("POST /ingest")?;
    println!(
        "   POST /ingest (Editor key, one transaction) → {}",
        resp.status()
    );
    let get = json!({"params": {"workspaceName": "prod", "featureServiceName": "fraud_detection",
        "joinKeyMap": {"user_id": "demo-user"}, "metadataOptions": {"includeNames": true}}});
    let served: Value = client
        .post(format!("{url}/api/v1/feature-service/get-features"))
        .header("Authorization", "Tecton-key demo-consumer-key")
        .json(&get)
        .send()
        .await
        .context("POST get-features")?
        .json()
        .await
        .context("get-features answer")?;
    let names = served["metadata"]["features"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let values = served["result"]["features"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let shown: Vec<String> = names
        .iter()
        .zip(values.iter())
        .filter(|(_, v)| !v.is_null())
        .take(3)
        .map(|(n, v)| format!("{}={v}", n["name"].as_str().unwrap_or_default()))
        .collect();
    println!(
        "   POST /api/v1/feature-service/get-features (Consumer key) → {}",
        shown.join(", ")
    );
    Ok(())
}

fn open(path: &std::path::Path) {
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else {
        "xdg-open"
    };
    if let Err(e) = std::process::Command::new(opener).arg(path).spawn() {
        println!("(could not run {opener}: {e})");
    }
}
