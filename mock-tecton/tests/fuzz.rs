//! The fuzzing properties of `mock_tecton::fuzz`, bounded and seeded for CI: each target runs a
//! fixed number of cases whose bytes come from seeds 0..N, so a failure names the seed that
//! replays it (`FUZZ_SEED=<seed> cargo test -p mock-tecton --test fuzz`). `cargo fuzz` runs the
//! same properties open-ended (see `fuzz/README.md`).
#![allow(clippy::unwrap_used)]

use arbitrary::Arbitrary;
use mock_tecton::fuzz::{
    case_from_bytes, check_faults, check_ingest, check_repo, demo_state, FaultCase, IngestCase,
    RepoCase,
};
use proptest::prelude::Rng;
use proptest::test_runner::{RngAlgorithm, TestRng};

/// Cases per target in CI.
const CASES: u64 = 3_000;

/// The bytes of case `seed`: a length between 16 and 2 KiB, then that many bytes.
fn bytes_for(seed: u64) -> Vec<u8> {
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    let mut rng = TestRng::from_seed(RngAlgorithm::ChaCha, &key);
    let len = 16 + (rng.next_u32() % 2048) as usize;
    let mut bytes = vec![0u8; len];
    rng.fill_bytes(&mut bytes);
    bytes
}

/// The seeds to run: `FUZZ_SEED` alone when set (a replay), else 0..CASES.
fn seeds() -> Vec<u64> {
    match std::env::var("FUZZ_SEED") {
        Ok(s) => vec![s.parse().expect("FUZZ_SEED is a number")],
        Err(_) => (0..CASES).collect(),
    }
}

/// Runs `check` on the case built from each seed's bytes; fails naming the seed and the case.
fn run<T, F>(target: &str, mut check: F)
where
    T: for<'a> Arbitrary<'a> + std::fmt::Debug,
    F: FnMut(u64, &T) -> Result<(), String>,
{
    let mut built = 0;
    for seed in seeds() {
        let bytes = bytes_for(seed);
        let Ok(case) = case_from_bytes::<T>(&bytes) else {
            continue;
        };
        built += 1;
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(seed, &case)));
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(finding)) => panic!(
                "{target}: {finding}\nreplay: FUZZ_SEED={seed} cargo test -p mock-tecton --test fuzz {target}\ncase: {case:#?}"
            ),
            Err(_) => panic!(
                "{target}: panicked\nreplay: FUZZ_SEED={seed} cargo test -p mock-tecton --test fuzz {target}\ncase: {case:#?}"
            ),
        }
    }
    assert!(built > 0, "{target}: no case could be built");
}

#[test]
fn ingest_requests_get_tecton_errors_or_round_trip_to_the_offline_store() {
    let state = demo_state();
    let mut accepted = 0;
    run::<IngestCase, _>("ingest", |seed, case| {
        let before = state.offline().rows(0).map_err(|e| e.to_string())?.len();
        check_ingest(&state, case, seed)?;
        accepted += usize::from(state.offline().rows(0).map_err(|e| e.to_string())?.len() > before);
        Ok(())
    });
    // The generator must reach the write path, or the round-trip property proves nothing.
    if std::env::var("FUZZ_SEED").is_err() {
        assert!(accepted >= 20, "only {accepted} cases wrote records");
    }
}

#[test]
fn repository_files_load_or_name_every_error() {
    run::<RepoCase, _>("repository", |_, case| check_repo(case));
}

#[test]
fn fault_rules_parse_install_and_decide_without_panic() {
    run::<FaultCase, _>("faults", |_, case| check_faults(case));
}
