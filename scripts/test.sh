#!/usr/bin/env bash
# The project's test command: everything a fresh machine needs, then the checks CI gates on.
#
#   scripts/test.sh            # what .ci/run calls (CI=true there)
#
# 1. the Python virtualenv with the official tecton-client (for the client compatibility test)
#    and jsonschema (for the load report schema test), and headless Chromium (for the HTML
#    load report test),
# 2. formatting and lints (rustfmt, clippy with warnings as errors),
# 3. every test of the workspace (unit, integration, property and snapshot tests; the
#    conformance suite against the reference sink, every mutant and the Python example sink).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

step() { printf '\n==> %s\n' "$*"; }

step "Python environment for the official client"
scripts/setup-python.sh

step "Headless Chromium for the HTML report test"
scripts/setup-browser.sh

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo test"
# Snapshots never update themselves in CI: a changed body is a failure to review.
cargo test --workspace --locked
