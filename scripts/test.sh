#!/usr/bin/env bash
# The project's test command: everything a fresh machine needs, then the checks CI gates on.
#
#   scripts/test.sh            # what .ci/run calls (CI=true there)
#
# 1. the Python virtualenvs: the official tecton-client (client compatibility test), jsonschema
#    (load report schema test), pyarrow, pyspark, apache-beam and apache-flink (the Beam and Flink
#    example sinks, each in its own venv), and headless Chromium (HTML load report test),
# 2. a Kafka-protocol broker on loopback (tansu, built once from crates.io and cached) for the
#    end-to-end Kafka test, stopped when this script ends,
# 3. formatting and lints (rustfmt, clippy with warnings as errors),
# 4. every test of the workspace (unit, integration, property and snapshot tests; the
#    conformance suite against the reference sink, every mutant and the Python example sink).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

step() { printf '\n==> %s\n' "$*"; }

if [[ -n "${CI:-}" ]]; then
    # A clean clone builds once: incremental caches would only cost disk (1.7 GB here).
    export CARGO_INCREMENTAL=0
fi

step "Python environment for the official client"
scripts/setup-python.sh

step "Headless Chromium for the HTML report test"
scripts/setup-browser.sh

step "Python environment for the Beam example sink"
scripts/setup-beam.sh

step "Python environment for the Flink example sink"
# apache-flink (PyFlink, runs on the machine's Java 17) and kafka-python, in .venv-flink: about
# 850 MB, about 5 minutes from an empty pip cache. tests/flink_sink.rs fails under CI without it.
scripts/setup-flink.sh

step "Kafka-protocol broker for the end-to-end Kafka test"
# The test reads the broker's address from TECTON_SIM_KAFKA_BOOTSTRAP; under CI it fails
# without one, elsewhere it skips with a notice.
if address="$(scripts/kafka-broker.sh start)"; then
    export TECTON_SIM_KAFKA_BOOTSTRAP="${address}"
    trap 'scripts/kafka-broker.sh stop' EXIT
elif [[ -n "${CI:-}" ]]; then
    echo "the Kafka broker could not be started" >&2
    exit 1
else
    echo "warning: no Kafka broker; the end-to-end Kafka test will skip" >&2
fi

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo test"
# Snapshots never update themselves in CI: a changed body is a failure to review.
cargo test --workspace --locked
