//! Stream Ingest API requests: Tecton-format refusals, or records that reach the offline store
//! unchanged (`mock_tecton::fuzz::check_ingest`).
#![no_main]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use mock_tecton::fuzz::{check_ingest, demo_state, IngestCase};
use mock_tecton::state::MockState;

static STATE: OnceLock<MockState> = OnceLock::new();
static REQUEST: AtomicU64 = AtomicU64::new(0);

fuzz_target!(|case: IngestCase| {
    let state = STATE.get_or_init(demo_state);
    let seq = REQUEST.fetch_add(1, Ordering::Relaxed);
    if let Err(finding) = check_ingest(state, &case, seq) {
        panic!("{finding}\n{case:#?}");
    }
});
