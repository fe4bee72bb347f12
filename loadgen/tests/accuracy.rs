//! The generator's accuracy against a bare local HTTP server (wiremock): the schedule it
//! keeps, the coordinated-omission correction, and memory that does not grow with a run.
//! Runs are short and loopback-only; tolerances leave room for a busy machine.

#![allow(clippy::unwrap_used)] // helpers outside #[test] functions

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use loadgen::plan::{Plan, Shape};
use loadgen::records::{EventSpec, RecordSource};
use loadgen::rng::Rng;
use loadgen::run::{run_http, Finished, RunSpec};
use loadgen::target::Target;
use reports::load::Pattern;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const SEED: u64 = 20_261_201;

/// One timing test at a time: on a small machine they would otherwise measure each other.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Answers 200 at once, except every `stall_every`-th request, which waits `stall` first;
/// notes when each request arrived.
struct Server {
    seen: AtomicU64,
    stall_every: u64,
    stall: Duration,
    arrivals: Mutex<Vec<Instant>>,
}

struct Shared(Arc<Server>);

impl Respond for Shared {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let this = &self.0;
        this.arrivals.lock().unwrap().push(Instant::now());
        let n = this.seen.fetch_add(1, Ordering::Relaxed) + 1;
        let ok = ResponseTemplate::new(200).set_body_string("{}");
        if this.stall_every > 0 && n.is_multiple_of(this.stall_every) {
            ok.set_delay(this.stall)
        } else {
            ok
        }
    }
}

async fn server(stall_every: u64, stall: Duration) -> (MockServer, Arc<Server>) {
    let mock = MockServer::start().await;
    let state = Arc::new(Server {
        seen: AtomicU64::new(0),
        stall_every,
        stall,
        arrivals: Mutex::new(Vec::new()),
    });
    Mock::given(method("POST"))
        .and(path("/ingest"))
        .respond_with(Shared(state.clone()))
        .mount(&mock)
        .await;
    (mock, state)
}

async fn run(mock: &MockServer, plan: Plan, connections: usize) -> Finished {
    let target = Target::Push {
        url: mock.uri(),
        api_key: "k".into(),
        workspace: "prod".into(),
        source: "transactions".into(),
    };
    let mut spec = RunSpec::new(plan);
    spec.connections = connections;
    let mut records = RecordSource::generated(EventSpec::default(), SEED).unwrap();
    run_http(&spec, &target, &mut records, &mut Rng::new(SEED, 2))
        .await
        .unwrap_or_else(|e| panic!("seed {SEED}: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_exactly_the_planned_requests_at_the_planned_spacing() {
    let _one = SERIAL.lock().await;
    let (mock, state) = server(0, Duration::ZERO).await;
    // Two steps: 50/s for one second, then 250/s for one second.
    let plan = Plan::new(
        &Shape::Steps(vec![50.0, 250.0]),
        None,
        Duration::from_secs(2),
    )
    .unwrap();
    let done = run(&mock, plan, 32).await;
    let point = done.point(Pattern::Push, 150.0);

    let arrivals = state.arrivals.lock().unwrap().clone();
    assert_eq!(arrivals.len(), 300, "seed {SEED}: requests received");
    assert_eq!(point.requests, 300);
    assert_eq!(point.records_acknowledged, 300);
    let t0 = arrivals[0];
    let secs: Vec<f64> = arrivals.iter().map(|a| (*a - t0).as_secs_f64()).collect();
    // The first step's 50 requests arrive in its second, 20 ms apart; the second step's 250,
    // 4 ms apart, in the next. A closed-loop or timer-paced tool would drift from this.
    let first = secs.iter().filter(|s| **s < 0.99).count();
    assert!(
        (48..=51).contains(&first),
        "seed {SEED}: {first} arrivals in the first second"
    );
    let gaps: Vec<f64> = secs.windows(2).map(|w| w[1] - w[0]).collect();
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let slow = median(gaps[..45].to_vec());
    let fast = median(gaps[55..].to_vec());
    assert!(
        (slow - 0.020).abs() < 0.003,
        "seed {SEED}: median gap {slow} s, planned 0.020"
    );
    assert!(
        (fast - 0.004).abs() < 0.0015,
        "seed {SEED}: median gap {fast} s, planned 0.004"
    );
    let span = secs[secs.len() - 1];
    assert!(
        (1.95..2.2).contains(&span),
        "seed {SEED}: the sends spanned {span} s, planned 2"
    );
    assert!(
        (point.achieved_rate - 150.0).abs() / 150.0 < 0.01,
        "seed {SEED}: achieved {} of 150 records/s",
        point.achieved_rate
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalling_server_shows_in_the_corrected_latency_only() {
    let _one = SERIAL.lock().await;
    // One connection, 50 requests/s, and every 20th request (5 %) stalls 200 ms: each stall
    // holds back the ~10 requests due during it. A closed-loop measurement sees only the
    // stalled requests themselves; measured from the due time, the held-back ones count too.
    let (mock, _state) = server(20, Duration::from_millis(200)).await;
    let plan = Plan::constant(50.0, Duration::from_secs(4)).unwrap();
    let point = run(&mock, plan, 1).await.point(Pattern::Push, 50.0);

    assert_eq!(point.records_acknowledged, 200, "seed {SEED}");
    let (c, u) = (point.latency_ms, point.latency_uncorrected_ms);
    eprintln!(
        "corrected {c:?}\nuncorrected {u:?}\nlate sends {}",
        point.late_sends
    );
    assert!(c.p99 >= 200.0, "seed {SEED}: corrected p99 {} ms", c.p99);
    // 5 % of requests stalled, so p90 of what the server did is fast; but about a quarter of
    // all requests waited behind a stall.
    assert!(u.p90 < 50.0, "seed {SEED}: uncorrected p90 {} ms", u.p90);
    assert!(c.p90 >= 100.0, "seed {SEED}: corrected p90 {} ms", c.p90);
    assert!(
        point.late_sends >= 40,
        "seed {SEED}: {} late sends",
        point.late_sends
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_does_not_grow_with_the_length_of_a_run() {
    let _one = SERIAL.lock().await;
    let (mock, _state) = server(0, Duration::ZERO).await;
    let short = run(
        &mock,
        Plan::constant(1000.0, Duration::from_millis(300)).unwrap(),
        32,
    )
    .await;
    let long = run(
        &mock,
        Plan::constant(1000.0, Duration::from_secs(3)).unwrap(),
        32,
    )
    .await;
    let p = long.point(Pattern::Push, 1000.0);
    // Nothing sent is lost, and a busy machine shows up as late sends, not missing records.
    assert_eq!(
        p.records_acknowledged, p.records_sent,
        "seed {SEED}: {:?}",
        p.errors
    );
    assert!(p.records_sent + p.late_sends >= 3000, "seed {SEED}");
    assert!(
        p.records_sent >= 2000,
        "seed {SEED}: sent {}",
        p.records_sent
    );
    // Ten times the requests, the same bytes: histograms, not lists of samples.
    assert_eq!(
        short.recorder.footprint_bytes(),
        long.recorder.footprint_bytes()
    );
    // Per-second intervals are the only thing that grows: one per second.
    assert!(
        (3..=4).contains(&p.intervals.len()),
        "{} intervals",
        p.intervals.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_cannot_keep_up_stops_at_its_end_and_counts_what_it_could_not_send() {
    let _one = SERIAL.lock().await;
    // Every request takes 50 ms on one connection: 20 requests/s at best, 100/s planned.
    let (mock, _state) = server(1, Duration::from_millis(50)).await;
    let started = Instant::now();
    let done = run(
        &mock,
        Plan::constant(100.0, Duration::from_secs(1)).unwrap(),
        1,
    )
    .await;
    let took = started.elapsed();
    let p = done.point(Pattern::Push, 100.0);
    // It stops at the end plus the 1 s grace (and the last request's 50 ms), not after the
    // five seconds the whole plan would need at this pace.
    assert!(
        took < Duration::from_millis(3500),
        "seed {SEED}: took {took:?}"
    );
    assert!(
        (20..=50).contains(&p.records_sent),
        "seed {SEED}: sent {}",
        p.records_sent
    );
    // Everything unsent or sent behind schedule is a late send; nothing vanishes.
    assert!(
        p.late_sends >= 100 - p.records_sent,
        "seed {SEED}: {} late",
        p.late_sends
    );
    assert!(
        p.achieved_rate < 30.0,
        "seed {SEED}: achieved {}",
        p.achieved_rate
    );
}
