//! The `sink` pattern: the user's own sink command (sink protocol v1) fed at the target rate,
//! measured end to end through the mock's journal.
//!
//! Records go to the command's stdin one JSON line each, written when due. The command
//! pushes them to the mock however it likes (its own batching, retries, back-off). Meanwhile
//! the journal is read: every `/ingest` request the sink sent counts as a request, every
//! failed one as an error by status, and every record of a 200 counts once as acknowledged,
//! with an end-to-end latency from the record's due time to the 200 that made it servable.
//! Generated records carry their index in `transaction_id`, which is how a record in a
//! request body is matched to its due time without keeping a table per record.
//!
//! The uncorrected view, for this pattern, is the mock's own handling time of the write
//! request that carried the record: what the sink's HTTP client saw at best.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use conformance::sink::{protocol, SinkEnv};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;

use crate::recorder::{Outcome, Recorder};
use crate::records::RecordSource;
use crate::run::{lock, spawn_ticker, unix_now_ns, Finished, Progress, RunSpec};
use crate::session::{LoadError, Setup};

/// How much of the sink's stderr is kept for the error message.
const STDERR_KEEP: usize = 4096;

/// Runs the sink command of `setup` at `spec`'s rate.
pub(crate) async fn run_sink(
    setup: &Setup,
    spec: &RunSpec,
    source: &mut RecordSource,
    admin: &reqwest::Client,
) -> Result<Finished, LoadError> {
    let Some(command) = &setup.sink_command else {
        return Err(LoadError::Sink(
            "the sink pattern needs --sink-command".into(),
        ));
    };
    if !matches!(source, RecordSource::Generated(_)) {
        return Err(LoadError::Sink(
            "the sink pattern measures generated records only (their ids carry their due time); drop --input"
                .into(),
        ));
    }
    let env = SinkEnv {
        url: setup.url.clone(),
        api_key: setup.api_key.clone(),
        workspace: setup.workspace.clone(),
        push_source: setup.push_source.clone(),
        batch_size: setup.batch.1 as usize,
        max_retries: protocol::defaults::MAX_RETRIES,
        timeout: setup.timeout,
        input_path: None,
        seed: setup.seed,
    };
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(command)
        .envs(protocol::env_vars(&env))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        // Its own process group, so that a kill reaches whatever the shell started.
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| LoadError::Sink(format!("cannot start `sh -c {command:?}`: {e}")))?;
    let group = child.id();
    let mut stdin = child.stdin.take();
    let stderr = child.stderr.take().map(|mut s| {
        tokio::spawn(async move {
            let mut buf = Vec::new();
            let _ = s.read_to_end(&mut buf).await;
            let cut = buf.len().saturating_sub(STDERR_KEEP);
            String::from_utf8_lossy(&buf[cut..]).into_owned()
        })
    });

    let recorder = Arc::new(Mutex::new(Recorder::new()));
    let progress = Progress::new(spec.progress, spec.plan.total_records());
    let start = Instant::now();
    let started_ns = unix_now_ns();
    let ticker = spawn_ticker(start, recorder.clone(), progress.clone());
    // The journal is read beside the writer, so that reading it never delays a due line.
    let mut journal = JournalReader::new(setup, spec, started_ns, admin.clone());
    let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
    let reader = {
        let recorder = recorder.clone();
        tokio::spawn(async move {
            loop {
                let result = journal.poll(&recorder).await;
                if result.is_err() {
                    return (journal, result);
                }
                tokio::select! {
                    _ = &mut stopped => break,
                    () = tokio::time::sleep(Duration::from_millis(200)) => {}
                }
            }
            let result = journal.poll(&recorder).await;
            (journal, result)
        })
    };

    let total = spec.plan.total_records();
    let mut line = Vec::with_capacity(512);
    let cutoff = start + spec.plan.duration() + crate::run::grace(spec.plan.duration());
    for k in 0..total {
        let Some(due) = spec.plan.due(k) else { break };
        if Instant::now() > cutoff {
            lock(&recorder).unsent(total - k);
            break;
        }
        let record = source.next(started_ns + due.as_nanos() as i64);
        let intended = start + due;
        if intended > Instant::now() {
            if let Some(s) = stdin.as_mut() {
                let _ = s.flush().await;
            }
            tokio::time::sleep_until(intended.into()).await;
        }
        line.clear();
        let _ = serde_json::to_writer(&mut line, &record);
        line.push(b'\n');
        // A sink that stops reading fills the pipe; after --settle it is declared stalled.
        let written = match stdin.as_mut() {
            Some(s) => tokio::time::timeout(setup.settle, s.write_all(&line)).await,
            None => Ok(Err(std::io::ErrorKind::BrokenPipe.into())),
        };
        if written.is_err() {
            lock(&recorder).completed(
                0,
                Duration::ZERO,
                Duration::ZERO,
                Outcome::Failed("sink_stalled".into()),
            );
        }
        if !matches!(written, Ok(Ok(()))) {
            // The sink closed its stdin (it exited) or stopped reading: the rest of the plan
            // cannot be delivered.
            stdin = None;
            break;
        }
        let actual = Instant::now();
        lock(&recorder).sent(1, actual - intended > spec.late_after, actual - start);
        if let Some(p) = &progress {
            p.bar.inc(1);
        }
    }
    if let Some(mut s) = stdin.take() {
        let _ = s.shutdown().await;
    }
    // EOF means flush and exit; give the sink the settle time to do so.
    let status = match tokio::time::timeout(setup.settle, child.wait()).await {
        Ok(status) => status.ok(),
        Err(_) => {
            kill_group(group).await;
            let _ = child.kill().await;
            lock(&recorder).completed(
                0,
                Duration::ZERO,
                Duration::ZERO,
                Outcome::Failed("sink_timeout".into()),
            );
            None
        }
    };
    let _ = stop.send(());
    let (journal, polled) = reader
        .await
        .map_err(|e| LoadError::Mock(format!("the journal reader failed: {e}")))?;
    polled?;
    ticker.abort();
    // Anything of the group still running (a background process holding stderr) goes too.
    kill_group(group).await;
    let tail = match stderr {
        Some(task) => tokio::time::timeout(Duration::from_secs(2), task)
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default(),
        None => String::new(),
    };
    if let Some(status) = status {
        if !status.success() {
            let cause = format!("sink_exit_{}", status.code().unwrap_or(-1));
            lock(&recorder).completed(0, Duration::ZERO, Duration::ZERO, Outcome::Failed(cause));
            if !tail.trim().is_empty() {
                eprintln!(
                    "the sink exited with {status}; the end of its stderr:\n{}",
                    tail.trim_end()
                );
            }
        }
    }
    let elapsed = start.elapsed();
    let mut r = lock(&recorder);
    r.tick(elapsed.as_secs_f64().floor());
    r.set_requests(journal.requests);
    if let Some(p) = &progress {
        p.bar.finish_and_clear();
    }
    let duration = spec.plan.duration().max(r.last_send());
    let recorder = std::mem::take(&mut *r);
    Ok(Finished {
        recorder,
        duration,
        started_ns,
        sample: Vec::new(),
    })
}

/// `kill -KILL -- -<pgid>`: the sink's whole process group (std has no safe call for it).
async fn kill_group(group: Option<u32>) {
    if let Some(pid) = group {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{pid}")])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .await;
    }
}

/// Reads the mock's journal from where it left off and records what the sink's writes did.
struct JournalReader {
    url: String,
    source: String,
    id_prefix: String,
    plan: crate::plan::Plan,
    started_ns: i64,
    admin: reqwest::Client,
    next: u64,
    requests: u64,
    /// One bit per planned record: acknowledged already (retried duplicates count once).
    seen: Vec<u64>,
}

impl JournalReader {
    fn new(setup: &Setup, spec: &RunSpec, started_ns: i64, admin: reqwest::Client) -> Self {
        JournalReader {
            url: setup.url.clone(),
            source: setup.push_source.clone(),
            id_prefix: format!("t{:x}-", setup.seed),
            plan: spec.plan.clone(),
            started_ns,
            admin,
            next: 0,
            requests: 0,
            seen: vec![0; (spec.plan.total_records() as usize).div_ceil(64)],
        }
    }

    async fn poll(&mut self, recorder: &Mutex<Recorder>) -> Result<(), LoadError> {
        loop {
            let url = format!("{}/_mock/journal?since={}&limit=5000", self.url, self.next);
            let body: Value = self
                .admin
                .get(&url)
                .send()
                .await
                .and_then(|r| r.error_for_status())
                .map_err(|e| LoadError::Mock(format!("GET {url}: {e}")))?
                .json()
                .await
                .map_err(|e| LoadError::Mock(format!("GET {url}: {e}")))?;
            let entries = body["entries"].as_array().cloned().unwrap_or_default();
            let n = entries.len();
            let mut r = lock(recorder);
            for e in &entries {
                self.entry(e, &mut r);
            }
            drop(r);
            match body["next"].as_u64() {
                Some(next) => self.next = next,
                None => break,
            }
            if n < 5000 {
                break;
            }
        }
        Ok(())
    }

    fn entry(&mut self, e: &Value, r: &mut Recorder) {
        let path = e["path"].as_str().unwrap_or("");
        if e["method"] != "POST" || !(path == "/ingest" || path == "/v2/ingest") {
            return;
        }
        self.requests += 1;
        let status = e["status"].as_u64().unwrap_or(0);
        let handled = Duration::from_micros(e["duration_us"].as_u64().unwrap_or(0));
        if status != 200 {
            let cause = if status == 0 {
                "reset".to_owned()
            } else {
                status.to_string()
            };
            r.completed(0, handled, handled, Outcome::Failed(cause));
            return;
        }
        let answered_ns = e["received_at"].as_i64().unwrap_or(0) + handled.as_nanos() as i64;
        let Ok(body) = serde_json::from_str::<Value>(e["request_body"].as_str().unwrap_or(""))
        else {
            return;
        };
        let records = body["records"][&self.source]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for rec in records {
            let Some(k) = rec["record"]["transaction_id"]
                .as_str()
                .and_then(|id| id.strip_prefix(&self.id_prefix))
                .and_then(|k| k.parse::<u64>().ok())
            else {
                continue;
            };
            let Some(due) = self.plan.due(k) else {
                continue;
            };
            let (word, bit) = ((k / 64) as usize, 1u64 << (k % 64));
            if self.seen[word] & bit != 0 {
                continue;
            }
            self.seen[word] |= bit;
            let e2e = Duration::from_nanos(
                (answered_ns - self.started_ns - due.as_nanos() as i64).max(0) as u64,
            );
            r.completed(1, e2e, handled, Outcome::Ok);
            r.fresh(e2e, 1);
        }
    }
}
