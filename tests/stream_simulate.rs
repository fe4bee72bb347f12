//! `tecton-sim stream simulate`: what the report says of the stores and of the state it holds.
#![allow(clippy::unwrap_used)]

fn simulate(extra: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tecton-sim"))
        .current_dir(std::env::temp_dir())
        .args([
            "stream",
            "simulate",
            "--rate",
            "100",
            "--duration",
            "2m",
            "--users",
            "30",
            "--seed",
            "5",
        ])
        .args(extra)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

fn state_line(text: &str) -> &str {
    text.lines().find(|l| l.starts_with("state:")).unwrap()
}

/// The first number after `prefix` in `line`.
fn number_after(line: &str, prefix: &str) -> u64 {
    let rest = &line[line.find(prefix).unwrap() + prefix.len()..];
    rest.split(|c: char| !c.is_ascii_digit())
        .find(|s| !s.is_empty())
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn the_online_store_is_written_on_request_and_the_report_says_which() {
    let engine = simulate(&[]);
    assert!(
        state_line(&engine).contains("online store not written (--materialize writes it)"),
        "{engine}"
    );
    let written = simulate(&["--materialize"]);
    // Thirty users, three views: every entity is in every view's online store.
    assert!(
        state_line(&written).contains("; 90 online entities"),
        "{written}"
    );
    // Writing the store changes nothing the engine decides.
    let figures = |t: &str| {
        t.lines()
            .filter(|l| l.starts_with("user_") || l.starts_with("freshness"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(figures(&engine), figures(&written));
}

#[test]
fn views_sharing_a_deduplication_state_hold_its_keys_once() {
    let text = simulate(&[]);
    let line = state_line(&text);
    let counted = number_after(line, "state: ");
    let held = number_after(line, "keys at the end (");
    // Every view counts the deduplication keys as its own (12,000 records, a few let go early
    // as late); the two 30 s views share one state, so memory holds one copy fewer.
    assert!(held < counted, "{line}");
    assert!((11_000..=12_000).contains(&(counted - held)), "{line}");
    let cpu = text.lines().find(|l| l.starts_with("wall time")).unwrap();
    assert!(cpu.contains("(CPU "), "{cpu}");
}
