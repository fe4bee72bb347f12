//! Ingest throughput on loopback: 10-record batches to `POST /ingest`, journal on.
//!
//! Closed loop with `BENCH_CONNECTIONS` concurrent keep-alive connections (default 32) for
//! `BENCH_SECS` seconds (default 5), client and server in one process. Run with
//! `cargo bench -p mock-tecton --bench ingest_throughput`. Prints requests/s, records/s and
//! latency percentiles; the target is at least 20,000 requests/s on a 2-core machine.

use std::sync::Arc;
use std::time::{Duration, Instant};

use mock_tecton::{Config, MockTecton};

fn main() {
    let secs: u64 = env_or("BENCH_SECS", 5);
    let connections: usize = env_or("BENCH_CONNECTIONS", 32);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run(secs, connections));
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn run(secs: u64, connections: usize) {
    // A virtual clock keeps every generated timestamp inside the attribute view's TTL.
    let now = 1_717_200_000_000_000_000;
    let mock = MockTecton::start(Config::default().virtual_clock(now))
        .await
        .expect("mock starts");
    let url = format!("{}/ingest", mock.url());
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(connections)
        .build()
        .expect("client");
    let deadline = Instant::now() + Duration::from_secs(secs);
    let bodies: Arc<Vec<String>> = Arc::new((0..256).map(|i| body(i, now)).collect());

    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..connections {
        let (client, url, bodies) = (client.clone(), url.clone(), bodies.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0u64;
            let mut i = c;
            while Instant::now() < deadline {
                let t = Instant::now();
                let resp = client
                    .post(&url)
                    .header("Authorization", "Tecton-key demo-editor-key")
                    .body(bodies[i % bodies.len()].clone())
                    .send()
                    .await;
                match resp {
                    Ok(r) if r.status().is_success() => {
                        let _ = r.bytes().await;
                        latencies.push(t.elapsed());
                    }
                    _ => errors += 1,
                }
                i += connections;
            }
            (latencies, errors)
        }));
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await.expect("task");
        latencies.extend(l);
        errors += e;
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort();
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    let n = latencies.len() as f64;
    let journal = mock.state().journal().counters();
    println!(
        "ingest_throughput: {connections} connections, {secs}s, 10 records/request, journal on"
    );
    println!("  requests/s: {:>10.0}", n / elapsed);
    println!("  records/s:  {:>10.0}", n * 10.0 / elapsed);
    println!("  errors:     {errors}");
    println!(
        "  latency p50 {:?}  p90 {:?}  p99 {:?}  max {:?}",
        pct(0.5),
        pct(0.9),
        pct(0.99),
        latencies.last().copied().unwrap_or_default()
    );
    println!(
        "  journal: {} recorded, {} let go (bounded)",
        journal.total, journal.dropped
    );
    // Read while the store is still alive: the memory the online store and journal hold.
    println!("  {}", vm_rss());
    mock.shutdown().await;
}

/// The process's resident set size, from `/proc/self/status` (Linux only).
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

fn body(i: usize, now: i64) -> String {
    let records: Vec<String> = (0..10)
        .map(|r| {
            let ts = mock_tecton::schema::format_rfc3339(now - ((i * 10 + r) as i64 + 1) * 1_000_000_000);
            format!(
                r#"{{"record":{{"user_id":"user_{}","transaction_id":"t{i}_{r}","merchant":"m{}","amt":{}.25,"is_fraud":0,"timestamp":"{ts}"}}}}"#,
                (i * 7 + r) % 1000,
                r % 5,
                i + r
            )
        })
        .collect();
    format!(
        r#"{{"workspace_name":"prod","dry_run":false,"records":{{"transactions":[{}]}}}}"#,
        records.join(",")
    )
}
