//! Fault rules: parse, validate, install and decide without a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mock_tecton::fuzz::{check_faults, FaultCase};

fuzz_target!(|case: FaultCase| {
    if let Err(finding) = check_faults(&case) {
        panic!("{finding}\n{case:#?}");
    }
});
