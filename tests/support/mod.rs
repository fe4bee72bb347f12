//! What the CLI tests share: the built binary run from a directory outside the repository, as
//! a user runs the installed tool, and its output read as one text.
#![allow(clippy::unwrap_used)]
// Each test binary compiles this module and uses only some of it.
#![allow(dead_code)]

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

/// The repository's root, where the project's scripts put the virtualenvs.
pub(crate) fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Reports a missing requirement: under `CI` the test fails (CI must install it), elsewhere it
/// prints a `SKIPPED` notice and the test passes, so `cargo test` works without the extras.
pub(crate) fn skip_or_fail(test: &str, what: &str, fix: &str) {
    use std::io::Write as _;
    assert!(std::env::var_os("CI").is_none(), "{test}: {what}: {fix}");
    // Straight to the stderr handle: libtest hides eprintln! output of a passing test.
    let _ = writeln!(
        std::io::stderr(),
        "\n==================================================================\n\
         SKIPPED: {test}: {what}.\n\
         \x20        {fix}\n\
         ==================================================================\n"
    );
}

/// The interpreter of the project's virtualenv `venv` (`.venv`, `.venv-beam`, …) if it exists
/// and can import every module in `imports`; otherwise `None` after [`skip_or_fail`].
pub(crate) fn venv_python(test: &str, venv: &str, imports: &[&str], fix: &str) -> Option<PathBuf> {
    let python = root().join(venv).join("bin/python");
    let usable = python.is_file()
        && imports.iter().all(|module| {
            Command::new(&python)
                .args(["-c", &format!("import {module}")])
                .stdin(std::process::Stdio::null())
                .output()
                .is_ok_and(|o| o.status.success())
        });
    if usable {
        return Some(python);
    }
    let what = if imports.is_empty() {
        format!("{} is missing", python.display())
    } else {
        format!(
            "{} is missing or cannot import {}",
            python.display(),
            imports.join(", ")
        )
    };
    skip_or_fail(test, &what, fix);
    None
}

/// The Kafka-protocol broker that `scripts/kafka-broker.sh start` started (`scripts/test.sh`
/// exports its address), or `None` after [`skip_or_fail`].
pub(crate) fn kafka_bootstrap(test: &str) -> Option<String> {
    match std::env::var("TECTON_SIM_KAFKA_BOOTSTRAP") {
        Ok(addr) if !addr.is_empty() => Some(addr),
        _ => {
            skip_or_fail(
                test,
                "no broker (TECTON_SIM_KAFKA_BOOTSTRAP is not set)",
                "Run `scripts/kafka-broker.sh start` and export its address (scripts/test.sh does).",
            );
            None
        }
    }
}
