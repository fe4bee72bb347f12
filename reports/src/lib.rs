//! Rendering of the harness's results. This crate knows nothing of the mock or the sinks: it
//! renders the plain data types it defines, which the other crates fill in.
