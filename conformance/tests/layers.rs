//! The crate's modules depend on each other one way only: what a sink is, then what a check
//! judges, then what a scenario asks for, then the runner, then what is built on runs. A
//! reference against that order (code or doc link, `crate::x` or `super::x`) fails here and
//! names the file and line, so a cycle such as checks ↔ scenario or mutants ↔ reference
//! cannot come back unnoticed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

/// Top-level modules, lowest first: each may refer only to those at its rank or below.
const CRATE_ORDER: [&[&str]; 6] = [
    &["answer"],
    &["sink"],
    &["checks"],
    &["scenario"],
    &["runner"],
    &["chaos", "report"],
];

/// The sink's submodules, lowest first.
const SINK_ORDER: [&[&str]; 4] = [
    &["defect", "backoff", "protocol"],
    &["reference", "command"],
    &["mutants", "attach"],
    // `mod.rs` re-exports everything.
    &["mod"],
];

fn rank(order: &[&[&str]], name: &str) -> Option<usize> {
    order.iter().position(|tier| tier.contains(&name))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every identifier following `prefix` in `line`.
fn references<'a>(line: &'a str, prefix: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    line.match_indices(prefix).map(move |(i, _)| {
        let rest = &line[i + prefix.len()..];
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        &rest[..end]
    })
}

#[test]
fn modules_depend_one_way() {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut problems = Vec::new();
    let mut seen = 0usize;
    for file in &files {
        let rel = file.strip_prefix(&src).unwrap();
        let parts: Vec<String> = rel
            .iter()
            .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_owned())
            .collect();
        let top = parts[0].as_str();
        let Some(from) = rank(&CRATE_ORDER, top) else {
            continue; // lib.rs and the binaries sit above everything
        };
        let text = std::fs::read_to_string(file).unwrap();
        for (n, line) in text.lines().enumerate() {
            for target in references(line, "crate::") {
                seen += 1;
                if let Some(to) = rank(&CRATE_ORDER, target) {
                    if to > from {
                        problems.push(format!(
                            "{}:{}: `{top}` refers up to `{target}`: {}",
                            rel.display(),
                            n + 1,
                            line.trim()
                        ));
                    }
                }
            }
            if top == "sink" && parts.len() == 2 {
                let me = parts[1].as_str();
                let Some(from) = rank(&SINK_ORDER, me) else {
                    problems.push(format!("{}: sink module `{me}` has no rank", rel.display()));
                    continue;
                };
                for target in references(line, "super::") {
                    if let Some(to) = rank(&SINK_ORDER, target) {
                        if to > from {
                            problems.push(format!(
                                "{}:{}: `sink::{me}` refers up to `sink::{target}`: {}",
                                rel.display(),
                                n + 1,
                                line.trim()
                            ));
                        }
                    }
                }
            }
        }
    }
    assert!(seen > 20, "the scan found only {seen} references");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
