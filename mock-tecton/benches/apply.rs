//! In-process ingest: [`mock_tecton::ingest::Applier`] applying validated events to the demo's
//! stores on one thread, without HTTP or JSON.
//!
//! Two runs, each printing events/s for the apply calls alone (events are built beforehand):
//!
//! - **fill**: 1,000 users × 3 days, one event per user every 10 minutes (432,000 events, all
//!   inside the windows), on a virtual clock at the end of the three days;
//! - **simulated traffic**: `SIM_MINUTES` minutes (default 10) of traffic at `SIM_RATE` records/s
//!   (default 1,000) over 5,000 users, the virtual clock moving one second per batch, so
//!   eviction runs as it would for a whole day. Prints the store's size at the end: it stays at
//!   about one longest window of events.
//!
//! The peers, in the same run: for the fill, the same events through `ingest::handle_body` (JSON
//! bodies of 1,000 records, as `/ingest` parses them); for the simulated traffic, a trivial loop
//! over the same batches that does the least any store must (one hash-map update per event, then
//! the events dropped). Target: ≥ 1M events/s for the applier on one core, so that a simulated
//! day at 1,000 records/s (86.4M events) takes under 90 s.
//!
//! Rates are given per second of the thread's time on a CPU (Linux's
//! `/proc/thread-self/schedstat`), so a busy machine that takes the core away does not count;
//! wall-clock rates are printed beside them.
//!
//! `cargo bench -p mock-tecton --bench apply`

use std::time::{Duration, Instant};

/// As in the `tecton-sim` binary (`BENCH_SYSTEM_ALLOC=1` cannot switch it at run time; build
/// without this line to compare).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use mock_tecton::ingest::{handle_body, Dialect, Event};
use mock_tecton::schema::{format_rfc3339, Value};
use mock_tecton::state::MockState;
use mock_tecton::Config;
use serde_json::json;

/// 2024-06-01T00:00:00Z.
const NOW: i64 = 1_717_200_000_000_000_000;
const SECOND: i64 = 1_000_000_000;
const MERCHANTS: [&str; 8] = [
    "acme", "zeta", "umbra", "kappa", "delta", "orbit", "nova", "lumen",
];

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn event(user: usize, n: u64, ts: i64) -> Event {
    Event::new(vec![
        Value::String(format!("user_{user}").into()),
        Value::String(format!("t{n}").into()),
        Value::String(MERCHANTS[(n % 8) as usize].into()),
        Value::Float((n % 997) as f64 + 0.25),
        Value::Int(i64::from(n.is_multiple_of(50))),
        Value::Timestamp(ts),
    ])
}

/// 1,000 users × 3 days, every 10 minutes, in event-time order.
fn fill_events() -> Vec<Event> {
    let mut out = Vec::with_capacity(432_000);
    let start = NOW - 3 * 24 * 3600 * SECOND;
    for step in 0..432i64 {
        for user in 0..1_000usize {
            let n = (step as u64) * 1_000 + user as u64;
            out.push(event(user, n, start + step * 600 * SECOND + user as i64));
        }
    }
    out
}

fn rate(events: usize, took: Duration) -> f64 {
    events as f64 / took.as_secs_f64().max(1e-9)
}

/// This thread's time on a CPU so far (zero where Linux's schedstat is unavailable).
fn cpu_time() -> Duration {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .map_or(Duration::ZERO, Duration::from_nanos)
}

/// Wall and CPU time of `f`.
fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration, Duration) {
    let (wall, cpu) = (Instant::now(), cpu_time());
    let out = f();
    (out, wall.elapsed(), cpu_time().saturating_sub(cpu))
}

fn show(label: &str, events: usize, wall: Duration, cpu: Duration) -> f64 {
    let on_cpu = rate(events, cpu);
    println!(
        "  {label:<48} {on_cpu:>12.0} events/s on CPU ({:>10.0} wall)",
        rate(events, wall)
    );
    on_cpu
}

fn main() {
    if std::env::var("APPLY_SIM_ONLY").is_ok() {
        simulated_day();
        return;
    }
    let events = fill_events();
    let n = events.len();

    // Peer: the same events as JSON bodies through the ingest path.
    let state = MockState::new(
        &Config::default()
            .virtual_clock(NOW)
            .records_per_source(1_000),
    );
    let bodies: Vec<Vec<u8>> = events
        .chunks(1_000)
        .map(|chunk| {
            let records: Vec<_> = chunk
                .iter()
                .map(|e| {
                    let v = &e.values;
                    let s = |i: usize| match &v[i] {
                        Value::String(s) => s.to_string(),
                        _ => String::new(),
                    };
                    let (amt, fraud, ts) = match (&v[3], &v[4], &v[5]) {
                        (Value::Float(a), Value::Int(f), Value::Timestamp(t)) => (*a, *f, *t),
                        _ => (0.0, 0, 0),
                    };
                    json!({"record": {"user_id": s(0), "transaction_id": s(1), "merchant": s(2),
                        "amt": amt, "is_fraud": fraud, "timestamp": format_rfc3339(ts)}})
                })
                .collect();
            json!({"workspace_name": "prod", "dry_run": false, "records": {"transactions": records}})
                .to_string()
                .into_bytes()
        })
        .collect();
    let editor = state
        .repo()
        .account_for_key("demo-editor-key")
        .expect("demo editor")
        .clone();
    let ((), json_wall, json_cpu) = timed(|| {
        for (i, body) in bodies.iter().enumerate() {
            let ctx = state.ingest_context(i as u64);
            handle_body(&ctx, &editor, Dialect::V1, body).expect("accepted");
        }
    });
    drop(state);

    let state = MockState::new(&Config::default().virtual_clock(NOW));
    let applier = state.applier("transactions").expect("demo source");
    let mut batches: Vec<Vec<Event>> = Vec::new();
    let mut events = events.into_iter();
    loop {
        let batch: Vec<Event> = events.by_ref().take(1_000).collect();
        if batch.is_empty() {
            break;
        }
        batches.push(batch);
    }
    let (applied, wall, cpu) = timed(|| {
        batches
            .into_iter()
            .map(|batch| applier.apply(batch).events)
            .sum::<usize>()
    });
    let stats = state.online().stats();
    println!("fill: {n} events (1,000 users x 3 days, every 10 minutes), one thread");
    let json_rate = show(
        "ingest::handle_body (JSON, 1,000 records/body)",
        n,
        json_wall,
        json_cpu,
    );
    let apply_rate = show("Applier::apply (batches of 1,000)", applied, wall, cpu);
    println!("  ratio: {:.1}x", apply_rate / json_rate);
    println!(
        "  online store: {} entities, {} events, {} tiles, ~{} MB",
        stats.entities,
        stats.events,
        stats.tiles,
        stats.estimated_bytes / 1_000_000
    );
    drop(state);

    simulated_day();
}

/// The events of second `sec` of the simulated traffic (`n` counts events across seconds).
fn traffic(now: i64, per_second: usize, users: usize, n: &mut u64) -> Vec<Event> {
    (0..per_second)
        .map(|i| {
            *n += 1;
            let user = (n.wrapping_mul(2_654_435_761) % users as u64) as usize;
            // Spread over the second, in order, as a stream delivers them.
            event(
                user,
                *n,
                now + (i as i64) * (SECOND / per_second.max(1) as i64),
            )
        })
        .collect()
}

/// The peer of the simulated traffic: per event, one hash-map update keyed by the user (a
/// running count and sum of `amt`), then the events dropped, as the applier drops what it
/// does not keep.
fn trivial_loop(minutes: i64, per_second: usize, users: usize) -> (usize, Duration, Duration) {
    let mut totals: std::collections::HashMap<String, (u64, f64), foldhash::fast::RandomState> =
        std::collections::HashMap::default();
    let (mut wall, mut cpu, mut total, mut n) = (Duration::ZERO, Duration::ZERO, 0usize, 0u64);
    for sec in 0..minutes * 60 {
        let batch = traffic(NOW + sec * SECOND, per_second, users, &mut n);
        let (count, w, c) = timed(|| {
            let mut count = 0;
            for e in batch {
                if let (Value::String(user), Value::Float(amt)) = (&e.values[0], &e.values[3]) {
                    match totals.get_mut(user.as_str()) {
                        Some(t) => *t = (t.0 + 1, t.1 + amt),
                        None => {
                            totals.insert(user.to_string(), (1, *amt));
                        }
                    }
                    count += 1;
                }
            }
            count
        });
        total += count;
        wall += w;
        cpu += c;
    }
    std::hint::black_box(&totals);
    (total, wall, cpu)
}

/// Records at a fixed rate, the virtual clock moving one second per batch.
fn simulated_day() {
    let minutes: i64 = env_or("SIM_MINUTES", 10);
    let per_second: usize = env_or("SIM_RATE", 1_000);
    let users = 5_000usize;
    let start = NOW;
    let mut repo = mock_tecton::Repository::demo();
    if std::env::var("APPLY_NO_OFFLINE").is_ok() {
        repo.push_sources[0].log_offline = false;
    }
    let state = MockState::new(&Config::new(repo).virtual_clock(start));
    let applier = state.applier("transactions").expect("demo source");
    let (mut wall, mut cpu) = (Duration::ZERO, Duration::ZERO);
    let mut total = 0usize;
    let mut n = 0u64;
    for sec in 0..minutes * 60 {
        let now = start + sec * SECOND;
        state.clock().set(now);
        let batch = traffic(now, per_second, users, &mut n);
        let (applied, w, c) = timed(|| applier.apply(batch).events);
        total += applied;
        wall += w;
        cpu += c;
    }
    let stats = state.online().stats();
    println!(
        "simulated {minutes} min at {per_second} records/s over {users} users: {total} events"
    );
    let on_cpu = show("Applier::apply (one batch per second)", total, wall, cpu);
    let (peer_total, peer_wall, peer_cpu) = trivial_loop(minutes, per_second, users);
    let peer = show(
        "peer: one hash-map update per event",
        peer_total,
        peer_wall,
        peer_cpu,
    );
    println!("  ratio: {:.2}x the peer", on_cpu / peer);
    println!(
        "  a simulated day at this rate: {:.0} s on one core (target: under 90 s)",
        86_400.0 * per_second as f64 / on_cpu
    );
    println!(
        "  online store at the end: {} entities, {} events, {} tiles, ~{} MB",
        stats.entities,
        stats.events,
        stats.tiles,
        stats.estimated_bytes / 1_000_000
    );
}
