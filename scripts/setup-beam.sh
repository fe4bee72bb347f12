#!/usr/bin/env bash
# Prepares the virtualenv of the Apache Beam example sink: <repo>/.venv-beam with apache-beam
# from PyPI (DirectRunner, no cloud extras). Kept apart from .venv because Beam pins its own
# pyarrow, numpy and protobuf ranges. Idempotent: a second run only checks.
#
#   scripts/setup-beam.sh        # prints the interpreter path on success
#
# tests/beam_sink.rs fails under CI=true when .venv-beam/bin/python is missing.
set -euo pipefail

BEAM_PIN="apache-beam==2.77.0"
BEAM_VERSION="${BEAM_PIN##*==}"

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$repo_root/.venv-beam"
python="${PYTHON:-python3}"

if [[ -x "$venv/bin/python" ]] && ! "$venv/bin/python" -c 'import sys' >/dev/null 2>&1; then
    echo "setup-beam: $venv is broken; recreating it" >&2
    rm -rf "$venv"
fi
if [[ ! -x "$venv/bin/python" ]]; then
    "$python" -m venv "$venv" || {
        rm -rf "$venv"
        echo "setup-beam: '$python -m venv' failed; run scripts/setup-python.sh first (it installs python3-venv where needed)" >&2
        exit 1
    }
fi

vpy="$venv/bin/python"
installed="$("$vpy" -c 'import importlib.metadata as m
try:
    print(m.version("apache-beam"))
except m.PackageNotFoundError:
    pass' 2>/dev/null || true)"
if [[ "$installed" != "$BEAM_VERSION" ]]; then
    "$vpy" -m pip install --quiet --disable-pip-version-check --no-input "$BEAM_PIN"
fi

"$vpy" -c 'import apache_beam, requests' >/dev/null 2>&1
echo "$vpy"
