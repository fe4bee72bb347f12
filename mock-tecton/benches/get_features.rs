//! Feature serving latency: `get-features` for the demo's `fraud_detection` service (all three
//! views, 16 features) at an open-loop 1,000 requests/s.
//!
//! The online store is filled first: 1,000 users × 3 days of `transactions`, one event per
//! user every 10 minutes (432 per user, 432,000 in all), through the ingest path
//! ([`mock_tecton::ingest::handle_body`]). Then, for `BENCH_SECS` seconds each (default 5) at
//! `BENCH_RATE` requests/s (default 1,000):
//!
//! - **in-process**: one thread calls [`mock_tecton::serving::handle`] directly, including the
//!   JSON parse of the request and serialization of the response, as the server does;
//! - **HTTP**: a reqwest client posts to `/api/v1/feature-service/get-features` over loopback
//!   (server and client in one process, journal on).
//!
//! Requests are sent on a fixed schedule whatever the answers do (open loop), and each
//! latency is measured from the request's *intended* start, so a stall is charged to every
//! request it delays (coordinated omission corrected). Both modes run for the demo as shipped
//! and for a variant whose `user_transaction_counts` windows are widened from 1d to 3d (3-day
//! windows over 10-minute tiles, the worst case for tile aggregation). The target is p99 under
//! 1 ms in-process; numbers are printed, not asserted.
//!
//! `cargo bench -p mock-tecton --bench get_features`

use std::sync::mpsc;
use std::time::{Duration, Instant};

use mock_tecton::ingest::{handle_body, Dialect};
use mock_tecton::serving::{self, Endpoint, ServingContext};
use mock_tecton::{Config, MockTecton, Repository};
use serde_json::{json, Value as Json};

/// 2024-06-01T00:00:00Z: the virtual "now"; events fill the three days before it.
const NOW: i64 = 1_717_200_000_000_000_000;
const SECOND: i64 = 1_000_000_000;
const USERS: usize = 1_000;
const DAYS: i64 = 3;
const EVENT_EVERY: i64 = 600 * SECOND;
/// Records per ingest call while filling the store.
const BATCH: usize = 1_000;
const MERCHANTS: [&str; 8] = [
    "acme", "zeta", "umbra", "kappa", "delta", "orbit", "nova", "lumen",
];

fn main() {
    let secs: u64 = env_or("BENCH_SECS", 5);
    let rate: u64 = env_or("BENCH_RATE", 1_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let variants = [
        ("demo", Repository::demo()),
        ("counts-3d", counts_3d_repository()),
    ];
    for (label, repo) in variants {
        runtime.block_on(run_variant(label, repo, secs, rate));
    }
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The demo with every 1d window of `user_transaction_counts` widened to 3d, so that view
/// aggregates 432 ten-minute tiles per request instead of 144.
fn counts_3d_repository() -> Repository {
    let demo = mock_tecton::repo::DEMO_TOML;
    let start = demo
        .find("name = \"user_transaction_counts\"")
        .expect("the demo has user_transaction_counts");
    let end = demo[start..].find("[[").map_or(demo.len(), |i| start + i);
    let section = demo[start..end].replace("window = \"1d\"", "window = \"3d\"");
    let text = format!("{}{section}{}", &demo[..start], &demo[end..]);
    Repository::from_toml(&text, "counts-3d").expect("the widened demo is valid")
}

async fn run_variant(label: &str, repo: Repository, secs: u64, rate: u64) {
    let config = Config::new(repo)
        .virtual_clock(NOW)
        .records_per_source(BATCH);
    let mock = MockTecton::start(config).await.expect("mock starts");
    let filled = Instant::now();
    let events = populate(&mock);
    println!(
        "get_features [{label}]: {USERS} users x {DAYS} days, {events} events ingested in {:.1}s",
        filled.elapsed().as_secs_f64()
    );
    println!("  [{label}] after filling the store: {}", vm_rss());
    let bodies: Vec<String> = (0..USERS).map(request_body).collect();
    check_answer(&mock, &bodies[0]);

    let per_request = service_time(&mock, &bodies);
    println!(
        "  [{label}] in-process service time: {per_request:.1?}/request back to back (capacity ~{:.0} req/s on one thread)",
        1.0 / per_request.as_secs_f64()
    );
    let run = in_process(&mock, &bodies, secs, rate);
    report(&format!("[{label}] in-process serving::handle"), &run);
    let run = over_http(&mock, &bodies, secs, rate).await;
    report(&format!("[{label}] HTTP loopback reqwest   "), &run);
    mock.shutdown().await;
}

/// Fills the store through the ingest path, in time order across users as a stream would.
fn populate(mock: &MockTecton) -> usize {
    let state = mock.state();
    let account = state
        .repo()
        .account_for_key("demo-editor-key")
        .expect("demo editor key");
    let start = NOW - DAYS * 86_400 * SECOND;
    let mut records = Vec::with_capacity(BATCH);
    let mut total = 0;
    let mut request = 0;
    let mut flush = |records: &mut Vec<Json>| {
        if records.is_empty() {
            return;
        }
        let body = json!({"workspace_name": "prod", "dry_run": false, "records": {"transactions": records}});
        let bytes = serde_json::to_vec(&body).expect("serializable");
        handle_body(&state.ingest_context(request), account, Dialect::V1, &bytes)
            .expect("generated records are accepted");
        request += 1;
        records.clear();
    };
    let mut slot = 0i64;
    while start + slot * EVENT_EVERY < NOW {
        for user in 0..USERS {
            // A per-user offset inside the 10-minute slot spreads events across tiles' edges.
            let offset = (user as i64 * 37 % 600) * SECOND;
            let ts = start + slot * EVENT_EVERY + offset;
            if ts >= NOW {
                continue;
            }
            let n = slot as usize * USERS + user;
            records.push(json!({"record": {
                "user_id": format!("user_{user}"),
                "transaction_id": format!("t{n}"),
                "merchant": MERCHANTS[(n * 7 + user) % MERCHANTS.len()],
                "amt": ((n * 31) % 50_000) as f64 / 100.0,
                "is_fraud": i64::from(n.is_multiple_of(97)),
                "timestamp": mock_tecton::schema::format_rfc3339(ts),
            }}));
            total += 1;
            if records.len() == BATCH {
                flush(&mut records);
            }
        }
        slot += 1;
    }
    flush(&mut records);
    total
}

/// The process's resident set size, from `/proc/self/status` (Linux only). After the first
/// variant it includes whatever the allocator kept from the previous, shut-down instance.
fn vm_rss() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .map(str::to_owned)
        })
        .map_or_else(
            || "VmRSS: unavailable".to_owned(),
            |l| l.split_whitespace().collect::<Vec<_>>().join(" "),
        )
}

/// The body tecton-client 0.4.0 sends with `MetadataOptions.all()`.
fn request_body(user: usize) -> String {
    json!({"params": {
        "workspaceName": "prod",
        "featureServiceName": "fraud_detection",
        "joinKeyMap": {"user_id": format!("user_{user}")},
        "requestContextMap": {},
        "allowPartialResults": false,
        "metadataOptions": {
            "includeNames": true, "includeDataTypes": true, "includeEffectiveTimes": true,
            "includeSloInfo": true, "includeServingStatus": true,
            "includeFeatureDescriptions": true, "includeFeatureTags": true,
        },
        "requestOptions": {},
    }})
    .to_string()
}

/// Fails fast if the benchmark would measure error answers or empty windows.
fn check_answer(mock: &MockTecton, body: &str) {
    let answer = serve_once(mock, body);
    let features = answer["result"]["features"]
        .as_array()
        .expect("a feature vector");
    assert_eq!(features.len(), 16, "{answer}");
    assert!(features.iter().all(|f| !f.is_null()), "{answer}");
}

/// One request through the serving path as the server runs it: parse, handle, serialize.
fn serve_once(mock: &MockTecton, body: &str) -> Json {
    let state = mock.state();
    let account = state
        .repo()
        .account_for_key("demo-consumer-key")
        .expect("demo consumer key");
    let parsed: Json = serde_json::from_str(body).expect("valid body");
    let ctx = ServingContext {
        repo: state.repo(),
        online: state.online(),
        now: state.clock().now(),
    };
    serving::handle(&ctx, account, Endpoint::GetFeatures, &parsed, None).expect("served")
}

/// Mean time of one request served back to back (closed loop, after a warm-up): what the
/// serving path costs without any waiting, and so how much of the latency is queueing.
fn service_time(mock: &MockTecton, bodies: &[String]) -> Duration {
    const N: u32 = 2_000;
    for body in bodies.iter().take(500) {
        std::hint::black_box(serde_json::to_vec(&serve_once(mock, body)).expect("serializable"));
    }
    let started = Instant::now();
    for i in 0..N {
        let answer = serve_once(mock, &bodies[pick(u64::from(i))]);
        std::hint::black_box(serde_json::to_vec(&answer).expect("serializable"));
    }
    started.elapsed() / N
}

/// Sleeps, then spins, until `t`: `thread::sleep` alone overshoots by tens of microseconds,
/// which would be charged to the server since latencies start at the intended time.
fn wait_until(t: Instant) {
    loop {
        let now = Instant::now();
        if now >= t {
            return;
        }
        let left = t - now;
        if left > Duration::from_micros(300) {
            std::thread::sleep(left - Duration::from_micros(200));
        } else {
            std::hint::spin_loop();
        }
    }
}

/// What one measured run gives.
struct Run {
    /// One latency per answered request, from its intended start.
    latencies: Vec<Duration>,
    /// Requests that failed or got a non-2xx answer.
    errors: u64,
    /// From the first intended start to the last completion.
    span: Duration,
}

fn in_process(mock: &MockTecton, bodies: &[String], secs: u64, rate: u64) -> Run {
    let period = Duration::from_secs(1) / u32::try_from(rate).expect("rate fits u32");
    let n = secs * rate;
    let mut latencies = Vec::with_capacity(n as usize);
    let start = Instant::now() + Duration::from_millis(10);
    for i in 0..n {
        let intended = start + period * u32::try_from(i).expect("request count fits u32");
        wait_until(intended);
        let answer = serve_once(mock, &bodies[pick(i)]);
        let bytes = serde_json::to_vec(&answer).expect("serializable");
        std::hint::black_box(bytes);
        latencies.push(intended.elapsed());
    }
    Run {
        latencies,
        errors: 0,
        span: start.elapsed(),
    }
}

/// The user of request `i`: a fixed pseudo-random walk over all users, so consecutive
/// requests do not hit the same shard.
fn pick(i: u64) -> usize {
    (i.wrapping_mul(2_654_435_761) % USERS as u64) as usize
}

async fn over_http(mock: &MockTecton, bodies: &[String], secs: u64, rate: u64) -> Run {
    let url = format!("{}/api/v1/feature-service/get-features", mock.url());
    let client = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(256)
        .build()
        .expect("client");
    // Warm-up at the same rate opens the connections the measured run reuses.
    let warmup = rate.min(500);
    let _ = open_loop(&client, &url, bodies, rate, warmup).await;
    open_loop(&client, &url, bodies, rate, secs * rate).await
}

/// Sends `n` requests at `rate`/s from a dedicated pacing thread (tokio's timer has 1 ms
/// granularity, as coarse as the schedule itself), each on its own task so a slow answer
/// never delays the next send.
async fn open_loop(
    client: &reqwest::Client,
    url: &str,
    bodies: &[String],
    rate: u64,
    n: u64,
) -> Run {
    let handle = tokio::runtime::Handle::current();
    let (tx, rx) = mpsc::channel::<Option<Duration>>();
    let period = Duration::from_secs(1) / u32::try_from(rate).expect("rate fits u32");
    let (client, url, bodies) = (client.clone(), url.to_owned(), bodies.to_vec());
    let start = Instant::now() + Duration::from_millis(10);
    let pacer = std::thread::spawn(move || {
        for i in 0..n {
            let intended = start + period * u32::try_from(i).expect("request count fits u32");
            wait_until(intended);
            let (client, url, tx) = (client.clone(), url.clone(), tx.clone());
            let body = bodies[pick(i)].clone();
            handle.spawn(async move {
                let resp = client
                    .post(&url)
                    .header("Authorization", "Tecton-key demo-consumer-key")
                    .body(body)
                    .send()
                    .await;
                let ok = match resp {
                    Ok(r) if r.status().is_success() => r.bytes().await.is_ok(),
                    _ => false,
                };
                let _ = tx.send(ok.then(|| intended.elapsed()));
            });
        }
    });
    // Collect off the runtime's workers: they are busy serving and sending.
    tokio::task::spawn_blocking(move || {
        let mut latencies = Vec::with_capacity(n as usize);
        let mut last = start;
        for _ in 0..n {
            match rx.recv_timeout(Duration::from_secs(30)) {
                Ok(Some(l)) => latencies.push(l),
                Ok(None) => {}
                // Unanswered for 30 s: report what came back rather than hang.
                Err(_) => break,
            }
            last = Instant::now();
        }
        pacer.join().expect("pacer");
        Run {
            // Errors plus any request never answered before the 30 s give-up.
            errors: n - latencies.len() as u64,
            latencies,
            span: last.saturating_duration_since(start),
        }
    })
    .await
    .expect("collector")
}

/// Prints p50/p90/p99/max and the achieved rate: answered requests over the span from the
/// first intended start to the last completion.
fn report(label: &str, run: &Run) {
    let mut sorted = run.latencies.clone();
    sorted.sort_unstable();
    let pct = |p: f64| {
        if sorted.is_empty() {
            return Duration::ZERO;
        }
        let rank = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len());
        sorted[rank - 1]
    };
    let achieved = sorted.len() as f64 / run.span.as_secs_f64().max(f64::MIN_POSITIVE);
    println!(
        "  {label}: p50 {:>9.1?}  p90 {:>9.1?}  p99 {:>9.1?}  max {:>9.1?}  achieved {achieved:.0} req/s ({} answered, {} errors)",
        pct(0.50),
        pct(0.90),
        pct(0.99),
        sorted.last().copied().unwrap_or_default(),
        sorted.len(),
        run.errors,
    );
}
