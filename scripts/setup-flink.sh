#!/usr/bin/env bash
# Prepares the virtualenv of the Apache Flink example sink: <repo>/.venv-flink with apache-flink
# (PyFlink; it runs a local mini-cluster on the machine's Java 17) and kafka-python, all from
# PyPI. Kept apart from .venv and .venv-beam because apache-flink pins its own apache-beam,
# pyarrow, numpy and protobuf ranges. Idempotent: a second run only checks.
#
#   scripts/setup-flink.sh        # prints the interpreter path on success
#
# kafka-python is the Kafka mode's producer: Flink's Kafka connector is a jar that is not on
# PyPI, and kafka-python is pure Python (no native library to build or bundle).
#
# tests/flink_sink.rs fails under CI=true when .venv-flink/bin/python is missing.
set -euo pipefail

PINS=("apache-flink==2.3.0" "kafka-python==3.0.12")

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$repo_root/.venv-flink"
python="${PYTHON:-python3}"

if ! command -v java >/dev/null 2>&1; then
    echo "setup-flink: PyFlink needs Java (11 or 17) on PATH; none found" >&2
    exit 1
fi
if [[ -x "$venv/bin/python" ]] && ! "$venv/bin/python" -c 'import sys' >/dev/null 2>&1; then
    echo "setup-flink: $venv is broken; recreating it" >&2
    rm -rf "$venv"
fi
if [[ ! -x "$venv/bin/python" ]]; then
    "$python" -m venv "$venv" || {
        rm -rf "$venv"
        echo "setup-flink: '$python -m venv' failed; run scripts/setup-python.sh first (it installs python3-venv where needed)" >&2
        exit 1
    }
fi

vpy="$venv/bin/python"
missing=()
for pin in "${PINS[@]}"; do
    name="${pin%%==*}"
    version="${pin##*==}"
    installed="$("$vpy" -c 'import importlib.metadata as m, sys
try:
    print(m.version(sys.argv[1]))
except m.PackageNotFoundError:
    pass' "$name" 2>/dev/null || true)"
    [[ "$installed" == "$version" ]] || missing+=("$pin")
done
if ((${#missing[@]})); then
    "$vpy" -m pip install --quiet --disable-pip-version-check --no-input "${missing[@]}"
fi

"$vpy" -c 'import pyflink, kafka, requests' >/dev/null 2>&1 || {
    echo "setup-flink: pyflink, kafka or requests does not import from $vpy" >&2
    exit 1
}
echo "$vpy"
