//! One module per subcommand. Each exposes its clap arguments and a `run` that returns the
//! process exit code; errors become `error: …` on stderr and exit code 2.

pub(crate) mod conformance;
pub(crate) mod consistency;
pub(crate) mod demo;
pub(crate) mod features;
pub(crate) mod load;
pub(crate) mod offline;
pub(crate) mod repo;
pub(crate) mod scenarios;
pub(crate) mod serve;
pub(crate) mod stream;

use std::path::PathBuf;

use clap::Args;
use mock_tecton::Repository;

/// `--config FILE`: the feature repository, or the embedded demo without it.
#[derive(Args, Debug, Clone)]
pub(crate) struct RepoSource {
    /// Feature repository TOML file (default: the embedded fraud demo).
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: Option<PathBuf>,
}

impl RepoSource {
    /// Loads and validates the repository.
    pub(crate) fn load(&self) -> anyhow::Result<Repository> {
        match &self.config {
            // The error lists every mistake with file:line:column, so print it as is.
            Some(path) => Repository::from_file(path).map_err(|e| anyhow::anyhow!("{e}")),
            None => Ok(Repository::demo()),
        }
    }
}

/// Structured logs to stderr; `RUST_LOG` overrides the `info` default (one line per request
/// at `info`: `RUST_LOG=warn` silences them). Colours only when stderr is a terminal.
pub(crate) fn init_tracing() {
    use std::io::IsTerminal as _;
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .try_init();
}
