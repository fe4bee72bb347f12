//! The open-loop engine: sends each request when the plan says it is due, whatever the
//! server is doing, and measures it from then.
//!
//! One dispatcher walks the plan in order. For each request it draws a batch size, builds
//! the body, sleeps until the request's due time (the due time of its last record: a batch
//! is complete then), waits for a free slot of the connection pool and hands the request to
//! its own task. A slow server therefore never slows the schedule: it only makes sends late
//! (counted, and charged to their corrected latency) once every connection is busy.
//!
//! The timer wakes at millisecond granularity, so at rates above 1000/s the sends due
//! within one millisecond go out together; their latency is still measured from each one's
//! own due time.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use reports::load::Pattern;
use tokio::sync::Semaphore;

use crate::plan::Plan;
use crate::recorder::{Outcome, Recorder};
use crate::records::Record;
use crate::records::RecordSource;
use crate::rng::Rng;
use crate::target::{Http, Target};

/// How a run is driven, apart from what it sends.
#[derive(Debug, Clone)]
pub struct RunSpec {
    /// When records are due.
    pub plan: Plan,
    /// Most requests in flight at once (the connection pool's size).
    pub connections: usize,
    /// Records per request: uniform in `min..=max`.
    pub batch: (u64, u64),
    /// A send that starts more than this after its due time counts as late.
    pub late_after: Duration,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Draw a live progress bar (only on a terminal).
    pub progress: bool,
    /// Keys (`user_id`s) whose acknowledged records are counted, for a check through the
    /// feature server afterwards: the first this many distinct keys sent.
    pub sample_keys: usize,
}

impl RunSpec {
    /// A spec with the defaults: 64 connections, one record per request, late after 10 ms,
    /// 10 s timeout, no progress bar.
    pub fn new(plan: Plan) -> Self {
        RunSpec {
            plan,
            connections: 64,
            batch: (1, 1),
            late_after: Duration::from_millis(10),
            timeout: Duration::from_secs(10),
            progress: false,
            sample_keys: 0,
        }
    }
}

/// The result of one run: the recorder and the measured length of the run.
#[derive(Debug)]
pub struct Finished {
    /// Everything measured.
    pub recorder: Recorder,
    /// The planned duration, or longer when sends fell behind.
    pub duration: Duration,
    /// When the run started (Unix ns), the zero of every due time.
    pub started_ns: i64,
    /// The sampled keys and how many of their records were acknowledged.
    pub sample: Vec<(String, u64)>,
}

impl Finished {
    /// The run point for `pattern`.
    pub fn point(&self, pattern: Pattern, offered_rate: f64) -> reports::load::RunPoint {
        self.recorder.point(pattern, offered_rate, self.duration)
    }
}

/// Why a run could not start.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A setting out of range.
    #[error("{0}")]
    Invalid(String),
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client: {0}")]
    Client(#[from] reqwest::Error),
}

pub(crate) fn lock(r: &Mutex<Recorder>) -> MutexGuard<'_, Recorder> {
    r.lock().unwrap_or_else(|p| p.into_inner())
}

pub(crate) fn unix_now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

/// How the engine hands a batch of records to the system under test: build the request
/// while the schedule waits, send it on its own task when it is due.
pub(crate) trait Sender: Send + Sync + 'static {
    /// A request, ready to go.
    type Request: Send + 'static;
    /// The request carrying `records`, due at `due_ns` (Unix ns).
    fn request(&self, records: Vec<Record>, due_ns: i64) -> Self::Request;
    /// Sends one request and says how it ended, within the sender's timeout.
    fn send(&self, req: Self::Request) -> impl std::future::Future<Output = Outcome> + Send;
    /// Whether an acknowledgement means the records are servable (push), so that the
    /// request's latency is also its records' freshness.
    fn ack_is_servable(&self) -> bool;
}

/// An HTTP target and its pooled client.
struct HttpSender {
    target: Target,
    client: Http,
}

impl Sender for HttpSender {
    type Request = crate::target::Request;

    fn request(&self, records: Vec<Record>, due_ns: i64) -> Self::Request {
        self.target.request(records, due_ns)
    }

    fn send(&self, req: Self::Request) -> impl std::future::Future<Output = Outcome> + Send {
        self.client.send(req)
    }

    fn ack_is_servable(&self) -> bool {
        matches!(self.target, Target::Push { .. })
    }
}

/// Runs `spec` against an HTTP `target` with records from `source`; batch sizes come from
/// `rng`.
pub async fn run_http(
    spec: &RunSpec,
    target: &Target,
    source: &mut RecordSource,
    rng: &mut Rng,
) -> Result<Finished, RunError> {
    check(spec)?;
    let sender = HttpSender {
        target: target.clone(),
        client: target.client(spec.connections, spec.timeout),
    };
    run_with(spec, Arc::new(sender), source, rng).await
}

/// Runs `spec` producing to a real Kafka-protocol broker through `producer`.
pub(crate) async fn run_broker(
    spec: &RunSpec,
    producer: Arc<crate::broker::Producer>,
    source: &mut RecordSource,
    rng: &mut Rng,
) -> Result<Finished, RunError> {
    run_with(spec, producer, source, rng).await
}

fn check(spec: &RunSpec) -> Result<(), RunError> {
    let (min, max) = spec.batch;
    if min == 0 || max < min {
        return Err(RunError::Invalid(format!(
            "batch size range {min}..{max} is empty"
        )));
    }
    if spec.connections == 0 {
        return Err(RunError::Invalid("connections must be at least 1".into()));
    }
    Ok(())
}

/// The open loop itself, over any [`Sender`].
pub(crate) async fn run_with<S: Sender>(
    spec: &RunSpec,
    sender: Arc<S>,
    source: &mut RecordSource,
    rng: &mut Rng,
) -> Result<Finished, RunError> {
    check(spec)?;
    let (min, max) = spec.batch;
    let is_push = sender.ack_is_servable();
    let recorder = Arc::new(Mutex::new(Recorder::new()));
    let slots = Arc::new(Semaphore::new(spec.connections));
    let progress = Progress::new(spec.progress, spec.plan.total_records());

    let start = Instant::now();
    let started_ns = unix_now_ns();
    let ticker = spawn_ticker(start, recorder.clone(), progress.clone());

    let mut sample = Sample::new(spec.sample_keys);
    let total = spec.plan.total_records();
    let cutoff = start + spec.plan.duration() + grace(spec.plan.duration());
    let mut k = 0u64;
    while k < total {
        let n = rng.range(min, max).min(total - k);
        if Instant::now() > cutoff {
            // Behind by more than the grace: what is left is never sent, and each request
            // of it counts as late (k6's dropped iterations).
            let mut unsent = 1;
            k += n;
            while k < total {
                k += rng.range(min, max).min(total - k);
                unsent += 1;
            }
            lock(&recorder).unsent(unsent);
            break;
        }
        let last = k + n - 1;
        let Some(due) = spec.plan.due(last) else {
            break;
        };
        let due_ns = started_ns + due.as_nanos() as i64;
        let records: Vec<_> = (k..=last)
            .map(|i| {
                let at = spec.plan.due(i).unwrap_or(due);
                source.next(started_ns + at.as_nanos() as i64)
            })
            .collect();
        let hits = sample.hits(&records);
        let req = sender.request(records, due_ns);
        let intended = start + due;
        if intended > Instant::now() {
            tokio::time::sleep_until(intended.into()).await;
        }
        let Ok(permit) = slots.clone().acquire_owned().await else {
            break;
        };
        let actual = Instant::now();
        let late = actual.saturating_duration_since(intended) > spec.late_after;
        lock(&recorder).sent(n, late, actual - start);
        let (sender, recorder, acked) = (sender.clone(), recorder.clone(), sample.acked.clone());
        tokio::spawn(async move {
            let outcome = sender.send(req).await;
            if outcome == Outcome::Ok {
                for i in hits {
                    acked[i].fetch_add(1, Ordering::Relaxed);
                }
            }
            let done = Instant::now();
            let corrected = done - intended;
            let mut r = lock(&recorder);
            if is_push && outcome == Outcome::Ok {
                // Push: a 200 means the records are servable; this is an upper bound.
                r.fresh(corrected, n);
            }
            r.completed(n, corrected, done - actual, outcome);
            drop(permit);
        });
        if let Some(p) = &progress {
            p.bar.inc(n);
        }
        k += n;
    }
    // Every slot back means every request has ended.
    let _all = slots.acquire_many(spec.connections as u32).await;
    ticker.abort();
    let elapsed = start.elapsed();
    let mut r = lock(&recorder);
    r.tick(elapsed.as_secs_f64().floor());
    if let Some(p) = &progress {
        p.bar.finish_and_clear();
    }
    let duration = spec.plan.duration().max(r.last_send());
    let recorder = std::mem::take(&mut *r);
    Ok(Finished {
        recorder,
        duration,
        started_ns,
        sample: sample.counts(),
    })
}

/// The sampled keys of a run and their acknowledged records.
struct Sample {
    keys: Vec<String>,
    max: usize,
    acked: Arc<Vec<AtomicU64>>,
}

impl Sample {
    fn new(max: usize) -> Self {
        Sample {
            keys: Vec::with_capacity(max),
            max,
            acked: Arc::new((0..max).map(|_| AtomicU64::new(0)).collect()),
        }
    }

    /// The sample indices of `records` (one per record of a sampled key), adding new keys
    /// while there is room.
    fn hits(&mut self, records: &[crate::records::Record]) -> Vec<usize> {
        let mut out = Vec::new();
        for r in records {
            let Some(key) = r.get("user_id").and_then(|v| v.as_str()) else {
                continue;
            };
            match self.keys.iter().position(|k| k == key) {
                Some(i) => out.push(i),
                None if self.keys.len() < self.max => {
                    out.push(self.keys.len());
                    self.keys.push(key.to_owned());
                }
                None => {}
            }
        }
        out
    }

    fn counts(&self) -> Vec<(String, u64)> {
        self.keys
            .iter()
            .zip(self.acked.iter())
            .map(|(k, n)| (k.clone(), n.load(Ordering::Relaxed)))
            .collect()
    }
}

/// How long past its planned end a run may still send: a tenth of the duration, at least 1 s.
pub(crate) fn grace(duration: Duration) -> Duration {
    (duration / 10).max(Duration::from_secs(1))
}

/// Closes an interval every second and refreshes the progress line.
pub(crate) fn spawn_ticker(
    start: Instant,
    recorder: Arc<Mutex<Recorder>>,
    progress: Option<Progress>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut every = tokio::time::interval_at(
            (start + Duration::from_secs(1)).into(),
            Duration::from_secs(1),
        );
        let mut t = 0u64;
        loop {
            every.tick().await;
            let mut r = lock(&recorder);
            r.tick(t as f64);
            if let Some(p) = &progress {
                let rate = r.last_interval().map_or(0, |i| i.records_acknowledged);
                let p99 = crate::recorder::latency_ms(r.corrected()).p99;
                p.bar.set_message(format!(
                    "{rate} rec/s acked  p99 {p99:.1} ms  errors {}",
                    r.error_count()
                ));
            }
            t += 1;
        }
    })
}

/// The live progress line, on a terminal only.
#[derive(Clone)]
pub(crate) struct Progress {
    pub(crate) bar: indicatif::ProgressBar,
}

impl Progress {
    pub(crate) fn new(enabled: bool, total: u64) -> Option<Progress> {
        use std::io::IsTerminal as _;
        if !enabled || !std::io::stderr().is_terminal() {
            return None;
        }
        let bar = indicatif::ProgressBar::new(total);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{elapsed_precise} [{bar:30}] {pos}/{len} records  {msg}",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        Some(Progress { bar })
    }
}
