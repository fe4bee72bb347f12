//! Feature repository TOML: loads, or names every error with its place.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mock_tecton::fuzz::{check_repo, RepoCase};

fuzz_target!(|case: RepoCase| {
    if let Err(finding) = check_repo(&case) {
        panic!("{finding}\n{case:#?}");
    }
});
