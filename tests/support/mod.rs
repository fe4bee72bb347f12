//! What the CLI tests share: the built binary run from a directory outside the repository, as
//! a user runs the installed tool, and its output read as one text.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The built `tecton-sim`, run in `dir`, with no scenario directory from the environment.
pub(crate) fn bin(dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tecton-sim"));
    c.current_dir(dir).env_remove("TECTON_SIM_SCENARIOS");
    c
}

/// A fresh directory outside the repository, unique to this test process and `name`.
pub(crate) fn outside(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tecton-sim-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    assert!(!dir.starts_with(env!("CARGO_MANIFEST_DIR")));
    dir
}

/// Stdout then stderr, for assertions and failure messages.
pub(crate) fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
