//! The command driver: runs any program that speaks sink protocol v1.
//!
//! The command runs as `sh -c "<command>"` in a process group of its own, with protocol v1's
//! environment (see [`protocol`]). Its records are written to a temporary
//! JSONL file (`SINK_INPUT`, removed afterwards) and to its stdin, which is then closed: EOF
//! means "flush and exit". Stdout and stderr are read concurrently with the run, so a chatty
//! sink never blocks on a full pipe; the last `OUTPUT_KEEP_BYTES` of each are kept. The last
//! stdout line that is a metrics object becomes [`SinkOutcome::metrics`].
//!
//! At the wall-clock limit the whole process group is killed and the outcome says
//! `timed_out: true, exit_code: None`.
//!
//! **Harness errors.** When the command cannot be started at all (no `sh`, a bad working
//! directory, the input file cannot be written), [`CommandSink::try_run`] returns a
//! [`CommandError`]; through the [`Sink`] trait the same failure is an outcome with
//! `exit_code: None`, `timed_out: false` and stderr starting with [`START_FAILURE`], which
//! [`is_harness_error`] recognises. A command the shell cannot find is *not* a harness error:
//! the shell starts and exits 127, and the outcome says so.

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;

use super::{protocol, BoxFuture, Record, Sink, SinkEnv, SinkOutcome};

/// Default wall-clock limit of one run.
pub(crate) const DEFAULT_WALL_LIMIT: Duration = Duration::from_secs(120);

/// How much of the end of stdout and of stderr is kept.
pub(crate) const OUTPUT_KEEP_BYTES: usize = 1 << 20;

/// How the stderr of an outcome begins when the command could not be started.
pub const START_FAILURE: &str = "cannot start sink command: ";

/// How long output may keep flowing after the sink's shell has exited (a background process
/// may still hold the pipes) before the process group is killed.
const DRAIN_GRACE: Duration = Duration::from_secs(2);

/// Why a command could not be started: a problem of the harness or its configuration, not a
/// verdict on the sink.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The `SINK_INPUT` file could not be written.
    #[error("{START_FAILURE}cannot write the input file {path}: {source}")]
    Input {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// `sh` could not be spawned (missing shell, bad working directory, no resources).
    #[error("{START_FAILURE}`sh -c {command:?}`: {source}")]
    Spawn {
        /// The command.
        command: String,
        /// The cause.
        source: std::io::Error,
    },
}

/// Whether an outcome reports that the harness could not start the command (see the module
/// docs), as opposed to a sink that ran and failed.
pub fn is_harness_error(outcome: &SinkOutcome) -> bool {
    outcome.exit_code.is_none() && !outcome.timed_out && outcome.stderr.starts_with(START_FAILURE)
}

/// A sink run as a shell command speaking protocol v1.
#[derive(Debug, Clone)]
pub struct CommandSink {
    command: String,
    wall_limit: Duration,
    current_dir: Option<PathBuf>,
}

impl CommandSink {
    /// A sink run as `sh -c "<command>"`, with the default 120 s wall-clock limit.
    pub fn new(command: impl Into<String>) -> Self {
        CommandSink {
            command: command.into(),
            wall_limit: DEFAULT_WALL_LIMIT,
            current_dir: None,
        }
    }

    /// Kills the command (its whole process group) when it runs longer than `limit`.
    pub fn wall_limit(mut self, limit: Duration) -> Self {
        self.wall_limit = limit;
        self
    }

    /// Runs the command in `dir` (default: the harness's working directory).
    pub fn current_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.current_dir = Some(dir.into());
        self
    }

    /// The shell command.
    pub(crate) fn command(&self) -> &str {
        &self.command
    }

    /// Runs the command once; `Err` only when it could not be started.
    /// `env.input_path` is ignored: the driver writes its own `SINK_INPUT` file.
    pub async fn try_run(
        &self,
        env: &SinkEnv,
        records: Vec<Record>,
    ) -> Result<SinkOutcome, CommandError> {
        let started = Instant::now();
        let input = protocol::to_jsonl(&records);
        drop(records);
        let input_file = TempInput::create(&input)?;
        let env = SinkEnv {
            input_path: Some(input_file.path().to_owned()),
            ..env.clone()
        };

        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(&self.command)
            .envs(protocol::env_vars(&env))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own group, so that the kill at the limit reaches everything it started.
            .process_group(0)
            .kill_on_drop(true);
        if let Some(dir) = &self.current_dir {
            command.current_dir(dir);
        }
        let mut child = command.spawn().map_err(|source| CommandError::Spawn {
            command: self.command.clone(),
            source,
        })?;
        let group = child.id();
        // If this future is dropped mid-run, `kill_on_drop` only reaches the shell.
        let mut guard = GroupGuard(group);

        let stdin = child.stdin.take().map(|mut stdin| {
            tokio::spawn(async move {
                // A sink may exit without reading all of stdin; a broken pipe is its business.
                let _ = stdin.write_all(&input).await;
                let _ = stdin.shutdown().await;
            })
        });
        let mut stdout = Capture::start(child.stdout.take());
        let mut stderr = Capture::start(child.stderr.take());

        let remaining = self.wall_limit.saturating_sub(started.elapsed());
        let (status, timed_out) = match tokio::time::timeout(remaining, child.wait()).await {
            Ok(status) => (status, false),
            Err(_) => {
                kill_group(group, &mut child).await;
                (child.wait().await, true)
            }
        };

        // The shell is gone; anything still holding its pipes is a straggler of its group.
        if !(stdout.finished(DRAIN_GRACE).await && stderr.finished(DRAIN_GRACE).await) {
            kill_group(group, &mut child).await;
            stdout.finished(DRAIN_GRACE).await;
            stderr.finished(DRAIN_GRACE).await;
        }
        guard.disarm();
        if let Some(task) = stdin {
            task.abort();
        }

        let stdout = stdout.take();
        let mut stderr = stderr.take();
        let exit_code = if timed_out {
            note(
                &mut stderr,
                &format!(
                    "killed at the wall-clock limit of {} s",
                    self.wall_limit.as_secs_f64()
                ),
            );
            None
        } else {
            match status {
                Ok(status) => exit_code(status, &self.command, &mut stderr),
                Err(e) => {
                    note(&mut stderr, &format!("could not wait for the command: {e}"));
                    None
                }
            }
        };
        Ok(SinkOutcome {
            exit_code,
            timed_out,
            metrics: protocol::parse_metrics(&stdout),
            stderr,
            elapsed: started.elapsed(),
        })
    }
}

impl Sink for CommandSink {
    fn name(&self) -> String {
        format!("command: {}", self.command)
    }

    fn run<'a>(&'a self, env: &'a SinkEnv, records: Vec<Record>) -> BoxFuture<'a, SinkOutcome> {
        Box::pin(async move {
            let started = Instant::now();
            self.try_run(env, records)
                .await
                .unwrap_or_else(|e| SinkOutcome {
                    exit_code: None,
                    timed_out: false,
                    stderr: e.to_string(),
                    metrics: None,
                    elapsed: started.elapsed(),
                })
        })
    }
}

/// The exit code, with a note on stderr when the status needs explaining.
fn exit_code(status: ExitStatus, command: &str, stderr: &mut String) -> Option<i32> {
    use std::os::unix::process::ExitStatusExt as _;
    match status.code() {
        Some(127) => note(
            stderr,
            &format!("exit status 127: the shell could not find the command in `{command}`"),
        ),
        Some(126) => note(
            stderr,
            &format!("exit status 126: the command in `{command}` is not executable"),
        ),
        Some(_) => {}
        None => note(
            stderr,
            &format!(
                "the command was killed by signal {}",
                status.signal().unwrap_or(0)
            ),
        ),
    }
    status.code()
}

/// Appends a line from the harness to a sink's stderr.
fn note(stderr: &mut String, text: &str) {
    if !stderr.is_empty() && !stderr.ends_with('\n') {
        stderr.push('\n');
    }
    stderr.push_str("[harness] ");
    stderr.push_str(text);
    stderr.push('\n');
}

/// Kills every process of the group led by `group` (the shell and whatever it started), and
/// the shell itself in case the group is already gone.
async fn kill_group(group: Option<u32>, child: &mut Child) {
    if let Some(pid) = group {
        let _ = Command::from(kill_group_command(pid)).status().await;
    }
    let _ = child.start_kill();
}

/// `kill -KILL -- -<pgid>`: a negative pid signals the whole group, and std has no safe API
/// for it.
fn kill_group_command(pgid: u32) -> std::process::Command {
    let mut kill = std::process::Command::new("kill");
    kill.args(["-KILL", "--", &format!("-{pgid}")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    kill
}

/// Kills the process group when dropped while armed: the run was abandoned half-way.
struct GroupGuard(Option<u32>);

impl GroupGuard {
    fn disarm(&mut self) {
        self.0 = None;
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(pid) = self.0 {
            let _ = kill_group_command(pid).status();
        }
    }
}

/// The tail of one output stream, read in the background.
struct Capture {
    kept: Arc<Mutex<Vec<u8>>>,
    task: Option<JoinHandle<()>>,
}

impl Capture {
    fn start(stream: Option<impl AsyncRead + Unpin + Send + 'static>) -> Self {
        let kept = Arc::new(Mutex::new(Vec::new()));
        let task = stream.map(|mut stream| {
            let kept = kept.clone();
            tokio::spawn(async move {
                let mut chunk = vec![0u8; 64 * 1024];
                while let Ok(n) = stream.read(&mut chunk).await {
                    if n == 0 {
                        break;
                    }
                    let mut kept = kept.lock().unwrap_or_else(|p| p.into_inner());
                    kept.extend_from_slice(&chunk[..n]);
                    if kept.len() > OUTPUT_KEEP_BYTES {
                        let excess = kept.len() - OUTPUT_KEEP_BYTES;
                        kept.drain(..excess);
                    }
                }
            })
        });
        Capture { kept, task }
    }

    /// Waits up to `grace` for the stream to end; whether it did.
    async fn finished(&mut self, grace: Duration) -> bool {
        let Some(task) = &mut self.task else {
            return true;
        };
        if tokio::time::timeout(grace, task).await.is_ok() {
            self.task = None;
            return true;
        }
        false
    }

    /// What was read, as text; stops the reader if it is still going.
    fn take(mut self) -> String {
        if let Some(task) = self.task.take() {
            task.abort();
        }
        let bytes = std::mem::take(&mut *self.kept.lock().unwrap_or_else(|p| p.into_inner()));
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

/// The `SINK_INPUT` file, removed when dropped.
struct TempInput {
    path: PathBuf,
}

impl TempInput {
    fn create(contents: &[u8]) -> Result<Self, CommandError> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let path = std::env::temp_dir().join(format!(
            "tecton-sim-sink-input-{}-{}-{nanos}.jsonl",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let write = || -> std::io::Result<()> {
            use std::io::Write as _;
            // `create_new`: never write through a file (or link) someone else put there.
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)?;
            file.write_all(contents)
        };
        match write() {
            Ok(()) => Ok(TempInput { path }),
            Err(source) => {
                let _ = std::fs::remove_file(&path);
                Err(CommandError::Input { path, source })
            }
        }
    }

    fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempInput {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
