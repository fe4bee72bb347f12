//! Soak: the `tecton-sim serve` binary under sustained ingest of unique events, beside a bare
//! axum handler that parses the same bodies, in one run.
//!
//! Each server runs as its own child process (so its RSS is its own), and one client process
//! (this one) keeps `SOAK_CONNS` keep-alive connections (default 16) busy, one thread each,
//! posting `/ingest` bodies of 10 records to the demo's `transactions` source: 5,000 users,
//! unique transaction ids, event times spread over the last 20 days (most outside the demo's
//! 3-day windows, all inside its 30-day TTL). Phases:
//!
//! 1. bare axum (`serde_json::from_slice` of the body, a small JSON answer), unique bodies,
//!    `SOAK_PEER_SECS` seconds (default 15);
//! 2. the mock, unique bodies, `SOAK_SECS` seconds (default 60): req/s and the server's RSS per
//!    10-second interval, and the online store's counts from `/_mock/health`;
//! 3. bare axum, then the mock, with one repeated body, `SOAK_PEER_SECS` each;
//! 4. the mock with the offline log switched off (`log_offline = false`), unique bodies,
//!    `SOAK_NO_OFFLINE_SECS` (default `SOAK_SECS`): the growth of what stays in memory by design (online store and journal)
//!    apart from the offline rows;
//! 5. bare axum with unique bodies again: the unique-body peer is the mean of phases 1 and 5,
//!    since a shared host's speed drifts over a run.
//!
//! Printed at the end: unique-event throughput as a ratio to bare axum (target ≥ 0.3×),
//! repeated-body ratio (≥ 0.5×), and RSS growth per ingested event between the 20th and the
//! 60th second (≤ 64 bytes; with a shorter `SOAK_SECS`, between 20 s and the end).
//!
//! Besides req/s and RSS, each interval shows the online store's events and estimated bytes,
//! the journal's estimated bytes and the offline rows still in memory (not yet in a Parquet
//! file), all from `/_mock/health`, and the machine's one-minute load average.
//!
//! `cargo bench --bench soak` (`SOAK_SECS=600 SOAK_NO_OFFLINE_SECS=60` for a ten-minute soak;
//! `SOAK_MOCK_BIN=path` to run another build of `tecton-sim`). Loopback only.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// As the binary does, so the peer parses with the same allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const USERS: u64 = 5_000;
const RECORDS: usize = 10;
const SPREAD_NS: i64 = 20 * 24 * 3_600 * 1_000_000_000;
const INTERVAL: Duration = Duration::from_secs(10);

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    if std::env::var("SOAK_ROLE").as_deref() == Ok("bare") {
        bare_axum();
        return;
    }
    let secs: u64 = env_or("SOAK_SECS", 60);
    let peer_secs: u64 = env_or("SOAK_PEER_SECS", 15);
    let conns: usize = env_or("SOAK_CONNS", 16);
    let no_offline_secs: u64 = env_or("SOAK_NO_OFFLINE_SECS", secs);
    println!("soak: {conns} connections, {RECORDS} records per request, {USERS} users, event times over 20 days");

    let bare = Server::bare();
    let bare_unique = run(&bare, Body::Unique, peer_secs, conns, "bare axum, unique").rate;
    drop(bare);

    let mock = Server::mock(None);
    let unique = run(&mock, Body::Unique, secs, conns, "mock, unique");
    drop(mock);

    let bare = Server::bare();
    let bare_repeated = run(
        &bare,
        Body::Repeated,
        peer_secs,
        conns,
        "bare axum, repeated",
    )
    .rate;
    drop(bare);
    let mock = Server::mock(None);
    let repeated = run(&mock, Body::Repeated, peer_secs, conns, "mock, repeated").rate;
    drop(mock);

    let no_offline =
        std::env::temp_dir().join(format!("soak-no-offline-{}.toml", std::process::id()));
    std::fs::write(
        &no_offline,
        mock_tecton::repo::DEMO_TOML.replace("log_offline = true", "log_offline = false"),
    )
    .expect("temp repository");
    let mock = Server::mock(Some(&no_offline));
    let online_only = run(
        &mock,
        Body::Unique,
        no_offline_secs,
        conns,
        "mock, unique, no offline log",
    );
    drop(mock);
    let _ = std::fs::remove_file(&no_offline);

    // The host's speed drifts: the peer is measured again at the end and the two averaged.
    let bare = Server::bare();
    let bare_again = run(
        &bare,
        Body::Unique,
        peer_secs,
        conns,
        "bare axum, unique, again",
    )
    .rate;
    drop(bare);
    let bare_unique = (bare_unique + bare_again) / 2.0;

    println!();
    println!("| measure | value | target |");
    println!("|---|---:|---:|");
    println!(
        "| unique events, mock / bare axum | {:.0} / {:.0} req/s = {:.2}x | >= 0.3x |",
        unique.rate,
        bare_unique,
        unique.rate / bare_unique
    );
    println!(
        "| repeated body, mock / bare axum | {:.0} / {:.0} req/s = {:.2}x | >= 0.5x |",
        repeated,
        bare_repeated,
        repeated / bare_repeated
    );
    for (label, outcome) in [("", &unique), (", no offline log", &online_only)] {
        match outcome.growth {
            Some((from, to, per_event)) => println!(
                "| RSS growth per ingested event{label}, {from} s to {to} s | {per_event:.1} bytes | <= 64 |"
            ),
            None => println!("| RSS growth per ingested event{label} | (run at least 30 s) | <= 64 |"),
        }
    }
    println!(
        "| unique events, no offline log / bare axum | {:.0} / {:.0} req/s = {:.2}x | |",
        online_only.rate,
        bare_unique,
        online_only.rate / bare_unique
    );
}

/// A server under test, killed when dropped.
struct Server {
    child: Child,
    addr: String,
}

impl Server {
    fn mock(config: Option<&std::path::Path>) -> Server {
        // `SOAK_MOCK_BIN` runs another build of the binary (e.g. one without mimalloc).
        let exe = std::env::var("SOAK_MOCK_BIN")
            .unwrap_or_else(|_| env!("CARGO_BIN_EXE_tecton-sim").to_owned());
        let mut command = Command::new(exe);
        command.args(["serve", "--port", "0"]);
        if let Some(path) = config {
            command.arg("--config").arg(path);
        }
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("tecton-sim serve starts");
        let addr = read_addr(&mut child, "serving at http://");
        Server { child, addr }
    }

    fn bare() -> Server {
        let exe = std::env::current_exe().expect("own path");
        let mut child = Command::new(exe)
            .env("SOAK_ROLE", "bare")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("bare server starts");
        let addr = read_addr(&mut child, "serving at http://");
        Server { child, addr }
    }

    /// `/_mock/health` (`null` for the bare peer).
    fn health(&self) -> serde_json::Value {
        let Ok(mut stream) = TcpStream::connect(&self.addr) else {
            return serde_json::Value::Null;
        };
        let _ = stream
            .write_all(b"GET /_mock/health HTTP/1.1\r\nHost: soak\r\nConnection: close\r\n\r\n");
        let mut text = String::new();
        let _ = stream.read_to_string(&mut text);
        text.split_once("\r\n\r\n")
            .and_then(|(_, body)| serde_json::from_str(body).ok())
            .unwrap_or(serde_json::Value::Null)
    }

    /// Resident set size of the server process, in bytes.
    fn rss(&self) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmRSS:"))
                    .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            })
            .map_or(0, |kb| kb * 1024)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn read_addr(child: &mut Child, marker: &str) -> String {
    let out = child.stdout.take().expect("piped stdout");
    let mut lines = BufReader::new(out).lines();
    for line in lines.by_ref() {
        let line = line.expect("server output");
        if let Some(at) = line.find(marker) {
            let addr = line[at + marker.len()..].trim().to_owned();
            // Keep draining its output so the server never blocks on a full pipe.
            std::thread::spawn(move || lines.for_each(drop));
            return addr;
        }
    }
    panic!("the server exited before listening");
}

#[derive(Clone, Copy, PartialEq)]
enum Body {
    /// Every request different: new ids, random users and event times.
    Unique,
    /// The same body every time.
    Repeated,
}

struct Outcome {
    rate: f64,
    /// (from s, to s, RSS bytes per ingested event).
    growth: Option<(u64, u64, f64)>,
}

fn run(server: &Server, body: Body, secs: u64, conns: usize, label: &str) -> Outcome {
    println!("\n{label}: {secs} s");
    println!("| t (s) | req/s | events/s | RSS (MiB) | online events | online (MiB, est.) | journal (MiB, est.) | offline rows in memory | load avg |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let threads: Vec<_> = (0..conns)
        .map(|c| {
            let (addr, done, failed, stop) = (
                server.addr.clone(),
                done.clone(),
                failed.clone(),
                stop.clone(),
            );
            std::thread::spawn(move || client(&addr, c as u64, body, &done, &failed, &stop))
        })
        .collect();
    let started = Instant::now();
    let mut samples: Vec<(u64, u64, u64)> = vec![(0, 0, server.rss())];
    let mut last = 0;
    while started.elapsed() < Duration::from_secs(secs) {
        let left = Duration::from_secs(secs).saturating_sub(started.elapsed());
        std::thread::sleep(INTERVAL.min(left));
        let t = started.elapsed().as_secs_f64().round() as u64;
        let (now, rss) = (done.load(Ordering::Relaxed), server.rss());
        let prev_t = samples.last().map_or(0, |s| s.0);
        let rate = (now - last) as f64 / (t.saturating_sub(prev_t).max(1)) as f64;
        let health = server.health();
        let mib = |v: &serde_json::Value| {
            v.as_f64()
                .map_or("-".to_owned(), |b| format!("{:.0}", b / 1_048_576.0))
        };
        println!(
            "| {t} | {rate:.0} | {:.0} | {:.0} | {} | {} | {} | {} | {} |",
            rate * RECORDS as f64,
            rss as f64 / 1_048_576.0,
            health["online"]["events"],
            mib(&health["online"]["estimated_bytes"]),
            mib(&health["journal"]["estimated_bytes"]),
            health["offline"]["rows_in_memory"],
            load_average(),
        );
        samples.push((t, now, rss));
        last = now;
    }
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        let _ = t.join();
    }
    let elapsed = started.elapsed().as_secs_f64();
    let total = done.load(Ordering::Relaxed);
    let failures = failed.load(Ordering::Relaxed);
    if failures > 0 {
        println!("  {failures} requests were not answered 200");
    }
    let from = samples.iter().find(|s| s.0 >= 20);
    let to = samples.iter().rev().find(|s| s.0 <= 60);
    let growth = match (from, to) {
        (Some(a), Some(b)) if b.0 > a.0 && b.1 > a.1 => Some((
            a.0,
            b.0,
            (b.2 as f64 - a.2 as f64) / ((b.1 - a.1) as f64 * RECORDS as f64),
        )),
        _ => None,
    };
    Outcome {
        rate: total as f64 / elapsed,
        growth,
    }
}

/// The machine's one-minute load average (`-` where `/proc/loadavg` is unavailable).
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "-".to_owned())
}

/// A tiny deterministic generator (the client's choices need no quality, only variety).
struct Mix(u64);

impl Mix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

fn body_for(mix: &mut Mix, conn: u64, n: u64, now: i64, out: &mut String) {
    use std::fmt::Write as _;
    out.clear();
    out.push_str(r#"{"workspace_name":"prod","dry_run":false,"records":{"transactions":["#);
    for i in 0..RECORDS {
        let user = mix.next() % USERS;
        let ts = now - (mix.next() % SPREAD_NS as u64) as i64;
        let amt = (mix.next() % 100_000) as f64 / 100.0;
        let merchant = mix.next() % 50;
        if i > 0 {
            out.push(',');
        }
        let _ = write!(
            out,
            r#"{{"record":{{"user_id":"user_{user}","transaction_id":"c{conn}-{n}-{i}","merchant":"m{merchant}","amt":{amt},"is_fraud":0,"timestamp":"{}"}}}}"#,
            mock_tecton::schema::format_rfc3339(ts)
        );
    }
    out.push_str("]}}");
}

fn client(
    addr: &str,
    conn: u64,
    body: Body,
    done: &AtomicU64,
    failed: &AtomicU64,
    stop: &AtomicBool,
) {
    let Ok(stream) = TcpStream::connect(addr) else {
        return;
    };
    let _ = stream.set_nodelay(true);
    let mut writer = stream.try_clone().expect("clone stream");
    let mut reader = BufReader::with_capacity(16 * 1024, stream);
    let mut mix = Mix(conn.wrapping_mul(0x2545_F491_4F6C_DD1D) ^ 7);
    let mut json = String::new();
    let mut request = Vec::with_capacity(4096);
    let now = mock_tecton::clock::wall_now();
    body_for(&mut mix, conn, 0, now, &mut json);
    let mut n = 0u64;
    let mut line = String::new();
    let mut response = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        if body == Body::Unique {
            body_for(&mut mix, conn, n, mock_tecton::clock::wall_now(), &mut json);
        }
        request.clear();
        let _ = write!(
            request,
            "POST /ingest HTTP/1.1\r\nHost: soak\r\nAuthorization: Tecton-key demo-editor-key\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            json.len()
        );
        request.extend_from_slice(json.as_bytes());
        if writer.write_all(&request).is_err() {
            return;
        }
        // Status line, headers, then Content-Length bytes of body.
        line.clear();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let ok = line.split_whitespace().nth(1) == Some("200");
        let mut length = 0usize;
        loop {
            line.clear();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
        }
        response.resize(length, 0);
        if reader.read_exact(&mut response).is_err() {
            return;
        }
        if ok {
            done.fetch_add(1, Ordering::Relaxed);
        } else {
            failed.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The peer: an axum server whose handler parses the body as JSON and answers a small JSON
/// object, as a minimal ingest endpoint would.
fn bare_axum() {
    use axum::routing::post;
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let app = axum::Router::new().route(
            "/ingest",
            post(|body: axum::body::Bytes| async move {
                match serde_json::from_slice::<serde_json::Value>(&body) {
                    Ok(v) => {
                        let n = v["records"]["transactions"].as_array().map_or(0, Vec::len);
                        (
                            axum::http::StatusCode::OK,
                            format!(r#"{{"workspaceName":"prod","records":{n}}}"#),
                        )
                    }
                    Err(e) => (axum::http::StatusCode::BAD_REQUEST, e.to_string()),
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        println!("bare axum serving at http://{addr}");
        axum::serve(listener, app).await.expect("serve");
    });
}
